"""Strategies for the order book: messages, valid sequences and arrays, books, invalid orders."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from .. import events
from ..events import (
    INT64_MAX,
    INT64_MIN,
    PRICED_KINDS,
    STOP_KINDS,
    AmendRule,
    EventKind,
    Kind,
    Reason,
    SelfTradePrevention,
    Side,
)
from ..testing import InvalidOrder, Message, ReferenceOrderBook, message_array
from ._common import SIDES, implementation, record

#: The kinds that open a new order (everything but CANCEL and AMEND), in Kind order: the sets of
#: ``orderbook.events`` as tuples, which hypothesis draws from in a stable order.
NEW_ORDER_KINDS = tuple(sorted(events.NEW_ORDER_KINDS))
#: Reasons of malformed or impossible messages: the per-call API raises, a batch rejects.
#: BOOK_FULL is one too, but no scene draws it: a full book takes 2**28 live orders.
INVALID_REASONS = tuple(sorted(events.CALLER_ERRORS - {Reason.BOOK_FULL}))
#: Reasons the market refuses a well-formed message for; both paths give one REJECTED event.
REFUSAL_REASONS = (Reason.POST_ONLY_WOULD_TAKE, Reason.STOP_WOULD_TRIGGER, Reason.NOT_AMENDABLE)
# New orders that carry a limit price (AMEND is priced too, but is not a new order).
_NEW_PRICED = PRICED_KINDS & events.NEW_ORDER_KINDS


def _kinds(kinds) -> tuple[Kind, ...]:
    chosen = tuple(Kind) if kinds is None else tuple(Kind(k) for k in kinds)
    if not chosen:
        raise InvalidArgument("kinds must name at least one Kind")
    return chosen


def _ranges(min_price: int, max_price: int, max_qty: int):
    if not 1 <= min_price <= max_price:
        raise InvalidArgument(f"need 1 <= min_price <= max_price, got {min_price}, {max_price}")
    if max_qty < 1:
        raise InvalidArgument(f"max_qty must be >= 1 lot, got {max_qty}")
    return st.integers(min_price, max_price), st.integers(1, max_qty)


def _strategy(value, default_values):
    """A strategy from a strategy, a fixed value, or None (draw from ``default_values``)."""
    if value is None:
        return st.sampled_from(list(default_values))
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value)


def _message(draw, kind: Kind, order_id: int, prices, qtys, owners) -> Message:
    """A message of ``kind`` whose every field passes validation steps 1-5."""
    if kind == Kind.CANCEL:
        return Message(Kind.CANCEL, order_id)
    if kind == Kind.AMEND:
        return Message(Kind.AMEND, order_id, price=draw(prices), qty=draw(qtys))
    side = draw(SIDES)
    price = draw(prices) if kind in _NEW_PRICED else 0
    stop = draw(prices) if kind in STOP_KINDS else 0
    return Message(kind, order_id, side, price, draw(qtys), draw(owners), stop)


# ------------------------------------------------------------------------------ messages


def orders(kinds=None, *, order_ids=None, owners=None, min_price: int = 95,
           max_price: int = 105, max_qty: int = 10) -> st.SearchStrategy[Message]:
    """Well-formed messages: kind, side, price, stop price and qty pass validation.

    Only the id check depends on the book: a new order is valid when its id is not live, a
    CANCEL or AMEND when it is. Use :func:`message_sequences` for messages valid in turn.

    Parameters
    ----------
    kinds : iterable of Kind, optional
        Kinds to draw from (default all nine).
    order_ids : strategy of int, optional
        Order ids (default 0..63).
    owners : strategy of int, optional
        Owners of new orders (default 0..3).
    min_price, max_price : int
        Limit and stop prices in ticks, inclusive.
    max_qty : int
        Quantities are 1..max_qty lots.

    Returns
    -------
    SearchStrategy of Message
    """
    chosen = _kinds(kinds)
    prices, qtys = _ranges(min_price, max_price, max_qty)
    ids = st.integers(0, 63) if order_ids is None else order_ids
    who = st.integers(0, 3) if owners is None else owners

    @st.composite
    def one(draw):
        kind = draw(st.sampled_from(chosen))
        return _message(draw, kind, draw(ids), prices, qtys, who)

    return one()


def _refused(book, m: Message, post_only: set[int]) -> bool:
    """Whether the market would refuse the well-formed message ``m`` (docs/semantics.md)."""
    kind = m.kind
    if kind == Kind.POST_ONLY:
        return _crosses(book, m.side, m.price)
    if kind in STOP_KINDS and book.last_price is not None:
        last = book.last_price
        return last >= m.stop_price if m.side == Side.BUY else last <= m.stop_price
    if kind == Kind.AMEND:
        info = book.order(m.order_id)
        if info.kind in STOP_KINDS:
            return True
        return m.order_id in post_only and _crosses(book, info.side, m.price)
    return False


def _crosses(book, side, price) -> bool:
    if side == Side.BUY:
        ask = book.best_ask()
        return ask is not None and price >= ask
    bid = book.best_bid()
    return bid is not None and price <= bid


def message_sequences(*, min_size: int = 0, max_size: int = 30, kinds=None, max_id: int = 63,
                      owners=None, min_price: int = 95, max_price: int = 105, max_qty: int = 10,
                      refusals: bool = True, stp=SelfTradePrevention.NONE,
                      amend_rule=AmendRule.REDUCE_KEEPS_PRIORITY
                      ) -> st.SearchStrategy[list[Message]]:
    """Message lists that pass validation one after another, starting from an empty book.

    Drawn while running a :class:`~orderbook.testing.ReferenceOrderBook` with the same ``stp`` and
    ``amend_rule``: new orders take ids that are not live (ids are reused once free), CANCEL and
    AMEND take live ones (some amends keep the price and reduce the qty, keeping priority). No
    message raises, per call or in a batch.

    Parameters
    ----------
    min_size, max_size : int
        Number of messages (fewer only if every id in 0..max_id is live).
    kinds : iterable of Kind, optional
        Kinds to draw (default all); must include a new-order kind. CANCEL/AMEND are drawn only
        while some order is live.
    max_id : int
        Order ids are 0..max_id.
    owners : strategy of int, optional
        Owners of new orders (default 0..3).
    min_price, max_price : int
        Prices and stop prices in ticks.
    max_qty : int
        Quantities 1..max_qty lots.
    refusals : bool
        Whether market refusals (POST_ONLY_WOULD_TAKE, STOP_WOULD_TRIGGER, NOT_AMENDABLE) may
        occur; with False every message is accepted.
    stp, amend_rule
        The settings of the book the sequence is meant for (they decide which ids stay live).

    Returns
    -------
    SearchStrategy of list of Message
    """
    chosen = _kinds(kinds)
    new_kinds = [k for k in chosen if k in NEW_ORDER_KINDS]
    if not new_kinds:
        raise InvalidArgument("kinds must include at least one new-order kind")
    if not 0 <= min_size <= max_size:
        raise InvalidArgument(f"need 0 <= min_size <= max_size, got {min_size}, {max_size}")
    prices, qtys = _ranges(min_price, max_price, max_qty)
    who = st.integers(0, 3) if owners is None else owners

    kind_strategy, new_kind_strategy = st.sampled_from(chosen), st.sampled_from(new_kinds)

    def pick(draw, ids: list[int], label: str) -> int:
        # an index is cheaper to draw than a fresh sampled_from, and shrinks to the lowest id
        return ids[draw(st.integers(0, len(ids) - 1), label=label)]

    @st.composite
    def sequence(draw):
        book = ReferenceOrderBook(stp=stp, amend_rule=amend_rule)
        post_only: set[int] = set()  # live ids entered post-only (an amend may be refused)
        out: list[Message] = []
        for _ in range(draw(st.integers(min_size, max_size), label="n_messages")):
            kind = draw(kind_strategy, label="kind")
            if kind in (Kind.CANCEL, Kind.AMEND):
                live = sorted(book.l3()["order_id"].tolist() + book.stops()["order_id"].tolist())
                if live:
                    oid = pick(draw, live, "live id")
                else:
                    kind = draw(new_kind_strategy, label="kind")
            if kind in NEW_ORDER_KINDS:
                free = [i for i in range(max_id + 1) if i not in book]
                if not free:
                    break
                oid = pick(draw, free, "free id")
            m = _message(draw, kind, oid, prices, qtys, who)
            if kind == Kind.AMEND:
                info = book.order(oid)
                if info.kind not in STOP_KINDS and draw(st.booleans(), label="keep price"):
                    qty = draw(st.integers(1, info.qty), label="reduced qty")
                    m = Message(Kind.AMEND, oid, price=info.price, qty=qty)
            if not refusals and _refused(book, m, post_only):
                continue
            events = m.submit(book)
            if kind in NEW_ORDER_KINDS:
                post_only.discard(oid)
                if kind == Kind.POST_ONLY:
                    post_only.add(oid)
            out.append(m)
            if not refusals and events[0].kind == EventKind.REJECTED:
                # a bug in _refused, not in the code under test
                raise AssertionError(f"message_sequences drew a refused message {m!r}: {events}")
        return out

    return sequence()


def _loose_rows(max_id, min_price, max_price, max_qty):
    """MESSAGE_DTYPE rows with any kind/side and edge values: what the batch path must take."""
    kinds = st.sampled_from([int(k) for k in Kind] + [0, 10, 255])
    sides = st.sampled_from([1, -1, 0, 2, -128, 127])
    prices = st.integers(min_price, max_price) | st.sampled_from([0, -1, INT64_MIN, INT64_MAX])
    qtys = st.integers(1, max_qty) | st.sampled_from([0, -1, INT64_MIN, INT64_MAX])
    ids = st.integers(0, max_id) | st.sampled_from([-1, INT64_MIN, INT64_MAX])
    return st.builds(Message, kinds, ids, sides, prices, qtys, st.integers(0, 3), prices)


def message_arrays(*, min_size: int = 0, max_size: int = 30, loose: bool = False,
                   **kwargs) -> st.SearchStrategy[np.ndarray]:
    """``MESSAGE_DTYPE`` arrays for ``OrderBook.process``.

    Parameters
    ----------
    min_size, max_size : int
        Number of rows.
    loose : bool
        False: a :func:`message_sequences` list packed into an array (every row valid in turn).
        True: independent rows with any kind (valid or 0, 10, 255), side (+-1, 0, 2, -128, 127)
        and edge prices, quantities and ids (0, -1, INT64_MIN, INT64_MAX), which the batch path
        must turn into events (REJECTED for the malformed ones) without raising.
    **kwargs
        Passed to :func:`message_sequences` (``max_id``, prices, ``max_qty``, ...).

    Returns
    -------
    SearchStrategy of numpy.ndarray of MESSAGE_DTYPE
    """
    if loose:
        rows = _loose_rows(kwargs.pop("max_id", 63), kwargs.pop("min_price", 95),
                           kwargs.pop("max_price", 105), kwargs.pop("max_qty", 10))
        if kwargs:
            raise InvalidArgument(f"loose arrays take no {sorted(kwargs)}")
        return st.lists(rows, min_size=min_size, max_size=max_size).map(message_array)
    return message_sequences(min_size=min_size, max_size=max_size, **kwargs).map(message_array)


def _compiled_book():
    from ..book import OrderBook

    return OrderBook


def _book_class(book_cls):
    return implementation("book_cls", book_cls, _compiled_book, ReferenceOrderBook)


def books(book_cls=None, *, stp=None, amend_rule=None, **kwargs):
    """Order books in arbitrary reachable states: a drawn valid sequence applied to an empty book.

    The messages are recorded with ``hypothesis.note``, so a failing example shows how to rebuild
    the book.

    Parameters
    ----------
    book_cls : {"compiled", "reference"} or type, optional
        The book to build (default the compiled ``orderbook.OrderBook``); a class is called as
        ``book_cls(stp=..., amend_rule=...)``.
    stp, amend_rule : value or strategy, optional
        The book's settings; drawn from every value when None.
    **kwargs
        Passed to :func:`message_sequences` (sizes, ids, prices, quantities, kinds, refusals).

    Returns
    -------
    SearchStrategy of OrderBook
    """
    cls = _book_class(book_cls)
    stps = _strategy(stp, SelfTradePrevention)
    rules = _strategy(amend_rule, AmendRule)
    # one sequence strategy per setting, built once: building strategies inside a draw is slow
    sequences = {(s, a): message_sequences(stp=s, amend_rule=a, **kwargs)
                 for s in SelfTradePrevention for a in AmendRule}

    @st.composite
    def book(draw):
        s, a = draw(stps, label="stp"), draw(rules, label="amend_rule")
        msgs = draw(sequences[SelfTradePrevention(s), AmendRule(a)], label="messages")
        out = cls(stp=s, amend_rule=a)
        for m in msgs:
            m.submit(out)
        record(f"book = {cls.__module__}.{cls.__name__}(stp={s!r}, amend_rule={a!r})\n"
              f"for m in {msgs!r}:\n    m.submit(book)")
        return out

    return book()


# ------------------------------------------------------------------------- invalid orders

_BAD_KIND = [0, 10, 11, 100, 255]
_BAD_SIDE = [0, 2, -2, 3, 127, -128]
_BAD_PRICE = [0, -1, -100, INT64_MIN]
_BAD_QTY = [0, -1, -7, INT64_MIN]
_BAD_TYPES = [1.0, 100.5, float("nan"), np.float64(3.0), True, False, "100", None, Decimal(100)]
_OUT_OF_INT64 = [2**63, INT64_MIN - 1, 2**64 + 5]


def _invalid_case(draw, reason, prices, qtys, owners, ids):
    """One InvalidOrder for ``reason`` (a Reason, or "type"/"range" for per-call-only errors)."""
    a = draw(ids, label="id")
    b = draw(ids.filter(lambda x: x != a), label="other id")
    c = draw(ids.filter(lambda x: x not in (a, b)), label="third id")
    owner = draw(owners, label="owner")
    # a second owner, so that self-trade prevention never stops the setup's trades
    other_owner = owner + 1 if owner < INT64_MAX else owner - 1

    def new(kind, /, oid=a, **fields):
        return replace(_message(draw, kind, oid, prices, qtys, st.just(owner)), **fields)

    def resting(oid=a, side=None, price=None, qty=None):
        side = draw(SIDES) if side is None else side
        return Message(Kind.LIMIT, oid, side, draw(prices) if price is None else price,
                       draw(qtys) if qty is None else qty, owner)

    if reason == Reason.INVALID_KIND:
        m = new(Kind.LIMIT, kind=draw(st.sampled_from(_BAD_KIND), label="bad kind"))
        return InvalidOrder((), m, reason, ValueError)
    if reason == Reason.INVALID_SIDE:
        m = new(draw(st.sampled_from(NEW_ORDER_KINDS)),
                side=draw(st.sampled_from(_BAD_SIDE), label="bad side"))
        return InvalidOrder((), m, reason, ValueError)
    if reason in (Reason.INVALID_PRICE, Reason.INVALID_QTY):
        kinds = sorted(_NEW_PRICED) if reason == Reason.INVALID_PRICE else list(NEW_ORDER_KINDS)
        kind = draw(st.sampled_from(kinds + [Kind.AMEND]), label="kind")
        field = "price" if reason == Reason.INVALID_PRICE else "qty"
        bad = draw(st.sampled_from(_BAD_PRICE if field == "price" else _BAD_QTY), label="bad")
        if kind == Kind.AMEND:
            setup = (resting(),)
            m = Message(Kind.AMEND, a, price=draw(prices), qty=draw(qtys))
            return InvalidOrder(setup, replace(m, **{field: bad}), reason, ValueError)
        return InvalidOrder((), new(kind, **{field: bad}), reason, ValueError)
    if reason == Reason.INVALID_STOP_PRICE:
        m = new(draw(st.sampled_from(sorted(STOP_KINDS))),
                stop_price=draw(st.sampled_from(_BAD_PRICE), label="bad stop"))
        return InvalidOrder((), m, reason, ValueError)
    if reason == Reason.DUPLICATE_ID:
        # A LIMIT or POST_ONLY in an empty book rests; a stop with no last trade stays armed.
        first = new(draw(st.sampled_from([Kind.LIMIT, Kind.POST_ONLY, Kind.STOP_MARKET,
                                          Kind.STOP_LIMIT]), label="live kind"))
        m = new(draw(st.sampled_from(NEW_ORDER_KINDS), label="kind"))
        return InvalidOrder((first,), m, reason, ValueError)
    if reason == Reason.UNKNOWN_ORDER:
        scene = draw(st.sampled_from(["empty", "other", "filled", "cancelled"]), label="scene")
        price, qty = draw(prices), draw(qtys)
        setup = {
            "empty": (),
            "other": (resting(oid=b),),
            "filled": (Message(Kind.LIMIT, a, Side.SELL, price, qty, owner),
                       Message(Kind.MARKET, b, Side.BUY, 0, qty, other_owner)),
            "cancelled": (resting(), Message(Kind.CANCEL, a)),
        }[scene]
        if draw(st.booleans(), label="amend"):
            m = Message(Kind.AMEND, a, price=draw(prices), qty=draw(qtys))
        else:
            m = Message(Kind.CANCEL, a)
        return InvalidOrder(setup, m, reason, KeyError)
    if reason == Reason.QTY_OVERFLOW:
        side = draw(SIDES, label="side")
        price = draw(prices, label="price")
        held = draw(st.integers(1, 10) | st.just(INT64_MAX), label="level qty")
        extra = draw(st.integers(1, min(held, 10)), label="excess")
        big = INT64_MAX - held + extra  # the level would hold INT64_MAX + extra lots
        first = resting(side=side, price=price, qty=held)
        if draw(st.booleans(), label="amend"):
            # at another price, as the first order may already fill its level to INT64_MAX
            second = resting(oid=b, side=side, price=price + 1 + draw(st.integers(0, 3)))
            m = Message(Kind.AMEND, b, price=price, qty=big)
            return InvalidOrder((first, second), m, reason, ValueError)
        kind = draw(st.sampled_from([Kind.LIMIT, Kind.POST_ONLY]), label="kind")
        m = Message(kind, b, side, price, big, owner)
        return InvalidOrder((first,), m, reason, ValueError)
    if reason == Reason.POST_ONLY_WOULD_TAKE:
        side = draw(SIDES, label="side")
        price = draw(prices, label="maker price")
        through = draw(st.integers(0, 3), label="ticks through")
        if draw(st.booleans(), label="amend"):
            # a post-only order rests 1+ ticks off the maker, then is amended through it
            gap = 1 + draw(st.integers(0, 3), label="gap")
            if side == Side.BUY:
                maker = Message(Kind.LIMIT, b, Side.SELL, price + gap, draw(qtys), other_owner)
                placed, cross = price, price + gap + through
            else:
                maker = Message(Kind.LIMIT, b, Side.BUY, price, draw(qtys), other_owner)
                placed, cross = price + gap, max(1, price - through)
            setup = (maker, Message(Kind.POST_ONLY, a, side, placed, draw(qtys), owner))
            m = Message(Kind.AMEND, a, price=cross, qty=draw(qtys))
            return InvalidOrder(setup, m, reason, None)
        maker = Message(Kind.LIMIT, b, -side, price, draw(qtys), other_owner)
        cross = price + through if side == Side.BUY else max(1, price - through)
        m = Message(Kind.POST_ONLY, a, side, cross, draw(qtys), owner)
        return InvalidOrder((maker,), m, reason, None)
    if reason == Reason.STOP_WOULD_TRIGGER:
        price, qty = draw(prices, label="trade price"), draw(qtys, label="trade qty")
        trade = (Message(Kind.LIMIT, b, Side.SELL, price, qty, owner),
                 Message(Kind.MARKET, c, Side.BUY, 0, qty, other_owner))
        side = draw(SIDES, label="side")
        past = draw(st.integers(0, 3), label="ticks past")
        stop = max(1, price - past) if side == Side.BUY else price + past
        m = new(draw(st.sampled_from(sorted(STOP_KINDS)), label="kind"), side=side, stop_price=stop)
        return InvalidOrder(trade, m, reason, None)
    if reason == Reason.NOT_AMENDABLE:
        stop = new(draw(st.sampled_from(sorted(STOP_KINDS)), label="kind"))
        m = Message(Kind.AMEND, a, price=draw(prices), qty=draw(qtys))
        return InvalidOrder((stop,), m, reason, None)
    # reason "type" or "range": a value the per-call API cannot take at all
    kind = draw(st.sampled_from(list(NEW_ORDER_KINDS) + [Kind.CANCEL, Kind.AMEND]), label="kind")
    setup = (resting(),) if kind in (Kind.CANCEL, Kind.AMEND) else ()
    m = _message(draw, kind, a, prices, qtys, st.just(owner))
    fields = ["kind", "order_id", "price", "qty", "owner", "stop_price"]
    if kind in NEW_ORDER_KINDS:
        fields.append("side")  # CANCEL and AMEND ignore side entirely
    field = draw(st.sampled_from(fields), label="bad field")
    if reason == "type":
        values = [v for v in _BAD_TYPES if field != "side" or not isinstance(v, str)]
        bad, error = draw(st.sampled_from(values), label="bad value"), TypeError
    else:
        bad, error = draw(st.sampled_from(_OUT_OF_INT64), label="bad value"), ValueError
    return InvalidOrder(setup, replace(m, **{field: bad}), None, error)


def invalid_orders(reasons=None, *, type_errors: bool = True, min_price: int = 95,
                   max_price: int = 105, max_qty: int = 10, owners=None
                   ) -> st.SearchStrategy[InvalidOrder]:
    """Messages an order book must refuse, each with the scene that makes it invalid.

    Each :class:`~orderbook.testing.InvalidOrder` holds valid ``setup`` messages (for an empty
    book, any ``stp`` and ``amend_rule``), the ``message`` and what must happen
    (:func:`orderbook.testing.assert_rejected` checks it):

    ======================  =====================================  ============  ==========
    reason                  message                                per call      batch
    ======================  =====================================  ============  ==========
    INVALID_KIND            kind 0, 10, 11, 100 or 255             ValueError    REJECTED
    INVALID_SIDE            new order, side not +1/-1              ValueError    REJECTED
    INVALID_PRICE           priced kind or AMEND, price <= 0       ValueError    REJECTED
    INVALID_STOP_PRICE      stop, stop price <= 0                  ValueError    REJECTED
    INVALID_QTY             new order or AMEND, qty <= 0           ValueError    REJECTED
    DUPLICATE_ID            new order reusing a live id            ValueError    REJECTED
    UNKNOWN_ORDER           CANCEL/AMEND of a never-used, other,   KeyError      REJECTED
                            filled or cancelled id
    QTY_OVERFLOW            LIMIT/POST_ONLY/AMEND taking a level   ValueError    REJECTED
                            past INT64_MAX lots
    POST_ONLY_WOULD_TAKE    crossing POST_ONLY, or AMEND of a      REJECTED      REJECTED
                            post-only order through the touch
    STOP_WOULD_TRIGGER      stop the last trade already satisfies  REJECTED      REJECTED
    NOT_AMENDABLE           AMEND of an armed stop                 REJECTED      REJECTED
    (None)                  a non-integer field (float, bool,      TypeError     -
                            str, None, Decimal)
    (None)                  a field outside int64                  ValueError    -
    ======================  =====================================  ============  ==========

    Parameters
    ----------
    reasons : iterable of Reason, optional
        Reasons to draw (default every one above).
    type_errors : bool
        Also draw the two per-call-only rows (``reason`` None); pass False for batch tests.
    min_price, max_price, max_qty, owners
        Ranges of the valid fields, as in :func:`orders`.

    Returns
    -------
    SearchStrategy of InvalidOrder
    """
    chosen: list = list(INVALID_REASONS + REFUSAL_REASONS) if reasons is None else [
        Reason(r) for r in reasons]
    unknown = [r for r in chosen if r not in INVALID_REASONS + REFUSAL_REASONS]
    if unknown:
        raise InvalidArgument(f"no invalid message is drawn for {unknown}")
    if type_errors and reasons is None:
        chosen += ["type", "range"]
    prices, qtys = _ranges(min_price, max_price, max_qty)
    who = st.integers(0, 3) if owners is None else owners
    ids = st.integers(0, 63)

    @st.composite
    def case(draw):
        reason = draw(st.sampled_from(chosen), label="reason")
        return _invalid_case(draw, reason, prices, qtys, who, ids)

    return case()
