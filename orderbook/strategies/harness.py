"""Strategies for the agent harness: steps of random flow that stay valid on a live book."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..events import NEW_ORDER_KINDS, STOP_KINDS, Kind
from ..testing import FLOW_OWNER, FlowOrder, IndexPrice, Liquidate, Wait
from ._common import SIDES

__all__ = ["FLOW_OWNERS", "flow_orders", "flow_steps"]

#: Owner ids of the flow's new orders by default: three traders, so that the flow trades with
#: itself whatever the engine's self-trade prevention.
FLOW_OWNERS = (FLOW_OWNER, FLOW_OWNER + 1, FLOW_OWNER + 2)

# How often each step is drawn, in sixteenths; hypothesis shrinks towards the first (an order).
_MIX = ("order",) * 12 + ("wait", "wait", "index", "liquidate")


def _checked_kinds(kinds) -> tuple[Kind, ...]:
    if kinds is None:
        return tuple(Kind)
    chosen = []
    for k in kinds:
        try:
            chosen.append(Kind(k))
        except ValueError:
            raise InvalidArgument(f"kinds: {k!r} is not a Kind") from None
    if not any(k in NEW_ORDER_KINDS for k in chosen):
        raise InvalidArgument(f"kinds must include a new-order kind, got {chosen}")
    return tuple(chosen)


def flow_orders(kinds=None, *, owners=None, min_price: int = 95, max_price: int = 105,
                max_qty: int = 10) -> st.SearchStrategy[FlowOrder]:
    """One :class:`~orderbook.testing.FlowOrder` of the random flow.

    A new order has every field in range (side, limit and stop prices in
    ``[min_price, max_price]`` ticks, 1..``max_qty`` lots, an owner from ``owners``); a CANCEL
    or AMEND draws ``pick`` in [0, 1), and an AMEND a new price and qty. Which order a CANCEL
    or AMEND names, and a new order's id, are decided when the harness applies it.

    Parameters
    ----------
    kinds : iterable of Kind, optional
        Kinds to draw (default all nine); must include a new-order kind.
    owners : strategy of int, optional
        Owner ids of new orders (default :data:`FLOW_OWNERS`).
    min_price, max_price : int
        Limit and stop prices in ticks, inclusive.
    max_qty : int
        Quantities are 1..max_qty lots.

    Returns
    -------
    SearchStrategy of FlowOrder
    """
    chosen = _checked_kinds(kinds)
    if not 1 <= min_price <= max_price:
        raise InvalidArgument(f"need 1 <= min_price <= max_price, got {min_price}, {max_price}")
    if max_qty < 1:
        raise InvalidArgument(f"max_qty must be >= 1 lot, got {max_qty}")
    prices, qtys = st.integers(min_price, max_price), st.integers(1, max_qty)
    who = st.sampled_from(FLOW_OWNERS) if owners is None else owners
    picks = st.floats(0, 1, exclude_max=True)

    @st.composite
    def one(draw):
        kind = draw(st.sampled_from(chosen), label="kind")
        if kind == Kind.CANCEL:
            return FlowOrder(kind, pick=draw(picks, label="pick"))
        if kind == Kind.AMEND:
            return FlowOrder(kind, price=draw(prices, label="price"),
                             qty=draw(qtys, label="qty"), pick=draw(picks, label="pick"))
        side = draw(SIDES, label="side")
        price = draw(prices, label="price") if kind not in (Kind.MARKET, Kind.STOP_MARKET) else 0
        stop = draw(prices, label="stop price") if kind in STOP_KINDS else 0
        return FlowOrder(kind, side, price, draw(qtys, label="qty"), draw(who, label="owner"),
                         stop)

    return one()


def flow_steps(*, min_size: int = 0, max_size: int = 30, kinds=None, owners=None,
               min_price: int = 95, max_price: int = 105, max_qty: int = 10,
               max_wait_ms: int = 2_000, index: bool = True, liquidations: bool = True
               ) -> st.SearchStrategy[list]:
    """Steps for :class:`~orderbook.testing.AgentHarness`: random flow, time, index moves and
    liquidations, valid whatever the agent does in between.

    About three steps in four are :func:`flow_orders`; the rest are a
    :class:`~orderbook.testing.Wait` of 1..``max_wait_ms`` ms (the agent's timer fires on the
    way), an :class:`~orderbook.testing.IndexPrice` in ``[min_price, max_price]`` and a
    :class:`~orderbook.testing.Liquidate`. A failing sequence shrinks towards fewer steps, plain
    orders, the oldest live order for a CANCEL or AMEND (``pick`` 0) and small numbers.

    Parameters
    ----------
    min_size, max_size : int
        Number of steps.
    kinds, owners, min_price, max_price, max_qty
        As in :func:`flow_orders`.
    max_wait_ms : int
        Longest wait in ms; 0 draws no waits (an agent with a timer then acts only at the start).
    index : bool
        Whether to draw index moves.
    liquidations : bool
        Whether to draw liquidator runs.

    Returns
    -------
    SearchStrategy of list of FlowOrder, Wait, IndexPrice and Liquidate
    """
    if not 0 <= min_size <= max_size:
        raise InvalidArgument(f"need 0 <= min_size <= max_size, got {min_size}, {max_size}")
    if max_wait_ms < 0:
        raise InvalidArgument(f"max_wait_ms must be >= 0 ms, got {max_wait_ms}")
    options = {
        "order": flow_orders(kinds, owners=owners, min_price=min_price, max_price=max_price,
                             max_qty=max_qty),
        "wait": st.integers(1, max(1, max_wait_ms)).map(Wait),
        "index": st.integers(min_price, max_price).map(IndexPrice),
        "liquidate": st.just(Liquidate()),
    }
    mix = [m for m in _MIX if m == "order" or (m == "wait" and max_wait_ms > 0)
           or (m == "index" and index) or (m == "liquidate" and liquidations)]
    actions = st.sampled_from(mix)

    @st.composite
    def step(draw):
        return draw(options[draw(actions, label="step")], label="step fields")

    return st.lists(step(), min_size=min_size, max_size=max_size)
