"""Pure-Python reference order book: the executable specification of ``orderbook.OrderBook``.

Written for reading, not speed: every rule of ``docs/semantics.md`` appears once, in plain Python,
on ``sortedcontainers.SortedDict`` price levels. The compiled engine must produce the same events
and the same state for every sequence of messages; ``tests/test_differential.py`` checks that.

Data layout
-----------
- ``_bids`` and ``_asks``: SortedDict from a sort key to a ``_Level``, best level first (bids are
  keyed by ``-price``). A level holds a ``dict`` from order id to ``_Order`` (dicts keep insertion
  order, which is time priority, and delete in O(1)) and the total of its lots.
- ``_sell_stops`` / ``_buy_stops``: the same shape for armed stops, keyed so that the first level is
  the next to trigger (sell stops by ``-stop_price``, buy stops by ``stop_price``); their levels
  are plain dicts, as nothing needs their totals.
- ``_live``: every resting order and armed stop by id.

Complexity: adding at an existing level O(1), at a new level O(log L); cancel O(1) plus O(log L)
when a level empties; a match costs O(1) per maker filled plus O(log L) per level emptied.
"""

from __future__ import annotations

import copy as _copy
from collections import deque
from decimal import Decimal

import numpy as np
from sortedcontainers import SortedDict

from . import _validation as check
from .events import (
    CALLER_ERRORS,
    INT64_MAX,
    L2,
    L3_DTYPE,
    MAX_LIVE_ORDERS,
    NEW_ORDER_KINDS,
    PRICED_KINDS,
    RESTING_KINDS,
    STOP_DTYPE,
    STOP_KINDS,
    AmendRule,
    Event,
    EventKind,
    Impact,
    Kind,
    OrderInfo,
    Reason,
    SelfTradePrevention,
    Side,
    events_to_array,
)

__all__ = ["OrderBook"]

_KINDS = frozenset(int(k) for k in Kind)


def _records(rows: list, dtype: np.dtype) -> np.ndarray:
    """``rows`` (tuples) as an array of an aligned record dtype, its padding zeroed as the
    compiled book's is (np.array leaves it as the allocator found it, so the bytes would
    differ from run to run)."""
    out = np.zeros(len(rows), dtype=dtype)
    out[:] = rows
    return out

class _Order:
    """A live order. ``price`` 0 means no limit (market); ``kind`` changes when a stop triggers."""

    __slots__ = ("order_id", "owner", "side", "kind", "price", "stop_price", "qty", "post_only")

    def __init__(self, order_id, owner, side, kind, price, stop_price, qty):
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.kind = kind
        self.price = price
        self.stop_price = stop_price
        self.qty = qty
        self.post_only = kind == Kind.POST_ONLY

    @property
    def armed(self) -> bool:
        return self.kind in STOP_KINDS


class _Level:
    """One price level: its orders in time priority and the lots they hold."""

    __slots__ = ("orders", "total")

    def __init__(self):
        self.orders: dict[int, _Order] = {}
        self.total = 0


class OrderBook:
    """Limit order book with price-time priority (reference implementation).

    Parameters
    ----------
    tick_size, lot_size : str, int, Decimal or float
        Size of one tick (quote units) and one lot (base units); positive.
    stp : SelfTradePrevention
        What happens when a taker meets a resting order of its own owner.
    amend_rule : AmendRule
        When an amend keeps queue priority.
    """

    #: Live orders this book may hold (docs/semantics.md, validation step 7); tests lower it on
    #: an instance, as ``orderbook.book._set_max_live`` does for the compiled book.
    _max_live = MAX_LIVE_ORDERS

    def __init__(self, tick_size="1", lot_size="1", *, stp=SelfTradePrevention.NONE,
                 amend_rule=AmendRule.REDUCE_KEEPS_PRIORITY):
        self.tick_size: Decimal = check.unit_size("tick_size", tick_size)
        self.lot_size: Decimal = check.unit_size("lot_size", lot_size)
        self.stp = check.as_enum("stp", stp, SelfTradePrevention)
        self.amend_rule = check.as_enum("amend_rule", amend_rule, AmendRule)
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._sell_stops: SortedDict = SortedDict()
        self._buy_stops: SortedDict = SortedDict()
        self._live: dict[int, _Order] = {}
        self._triggered: deque[_Order] = deque()
        self._events: list[Event] = []
        self.last_price: int | None = None
        self.message_count = 0
        self.event_count = 0

    # ------------------------------------------------------------------ units
    def to_ticks(self, price) -> int:
        """Price in quote units (str, Decimal, int or float) to ticks; ValueError if off grid."""
        return check.to_units("price", price, self.tick_size)

    def to_lots(self, qty) -> int:
        """Quantity in base units to lots; ValueError if not a whole number of lots."""
        return check.to_units("qty", qty, self.lot_size)

    def to_price(self, ticks: int) -> Decimal:
        """Ticks to a price in quote units."""
        return check.from_units(check.as_int64("ticks", ticks), self.tick_size)

    def to_qty(self, lots: int) -> Decimal:
        """Lots to a quantity in base units."""
        return check.from_units(check.as_int64("lots", lots), self.lot_size)

    # --------------------------------------------------------------- per call
    def limit(self, order_id, side, price, qty, owner=0) -> list[Event]:
        """Good-till-cancel limit order at ``price`` ticks for ``qty`` lots."""
        return self.submit(Kind.LIMIT, order_id, side, price, qty, owner)

    def market(self, order_id, side, qty, owner=0) -> list[Event]:
        """Market order for ``qty`` lots; what cannot fill is cancelled."""
        return self.submit(Kind.MARKET, order_id, side, 0, qty, owner)

    def ioc(self, order_id, side, price, qty, owner=0) -> list[Event]:
        """Immediate-or-cancel limit order."""
        return self.submit(Kind.IOC, order_id, side, price, qty, owner)

    def fok(self, order_id, side, price, qty, owner=0) -> list[Event]:
        """Fill-or-kill limit order: fills all ``qty`` lots at once or nothing."""
        return self.submit(Kind.FOK, order_id, side, price, qty, owner)

    def post_only(self, order_id, side, price, qty, owner=0) -> list[Event]:
        """Limit order rejected (POST_ONLY_WOULD_TAKE) if it would take liquidity."""
        return self.submit(Kind.POST_ONLY, order_id, side, price, qty, owner)

    def stop_market(self, order_id, side, stop_price, qty, owner=0) -> list[Event]:
        """Market order armed until a trade prints at ``stop_price`` or through it."""
        return self.submit(Kind.STOP_MARKET, order_id, side, 0, qty, owner, stop_price)

    def stop_limit(self, order_id, side, stop_price, price, qty, owner=0) -> list[Event]:
        """Limit order at ``price`` armed until a trade prints at ``stop_price`` or through it."""
        return self.submit(Kind.STOP_LIMIT, order_id, side, price, qty, owner, stop_price)

    def cancel(self, order_id) -> list[Event]:
        """Cancel a resting order or an armed stop; UnknownOrderError if the id is not live."""
        return self.submit(Kind.CANCEL, order_id)

    def amend(self, order_id, price, qty) -> list[Event]:
        """Set a resting order's price (ticks) and remaining quantity (lots)."""
        return self.submit(Kind.AMEND, order_id, 0, price, qty)

    def submit(self, kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0) -> list[Event]:
        """Process one message of any kind; return its events.

        A message the batch would reject for a caller error raises OrderError carrying that
        reason (UnknownOrderError for UNKNOWN_ORDER) and changes nothing; a value that is not
        an integer raises TypeError, one outside int64 ValueError.
        """
        kind = check.as_int64("kind", kind)
        order_id = check.as_int64("order_id", order_id)
        side = check.order_side(side) if kind in NEW_ORDER_KINDS else 0  # CANCEL/AMEND ignore it
        price = check.as_int64("price", price)
        qty = check.as_int64("qty", qty)
        owner = check.as_int64("owner", owner)
        stop_price = check.as_int64("stop_price", stop_price)
        reason = self._validate(kind, order_id, side, price, stop_price, qty)
        if reason in CALLER_ERRORS:
            raise check.error_for(reason, kind, order_id, side, price, stop_price, qty)
        return self._execute(kind, order_id, side, price, stop_price, qty, owner, reason)

    # ------------------------------------------------------------------ batch
    def process(self, messages: np.ndarray) -> np.ndarray:
        """Process a MESSAGE_DTYPE array; malformed messages become REJECTED events."""
        check.message_array(messages)
        events: list[Event] = []
        for row in messages.tolist():
            order_id, owner, price, stop_price, qty, kind, side = row
            reason = self._validate(kind, order_id, side, price, stop_price, qty)
            events.extend(self._execute(kind, order_id, side, price, stop_price, qty, owner,
                                        reason))
        return events_to_array(events)

    # ------------------------------------------------------------- validation
    def _validate(self, kind, order_id, side, price, stop_price, qty) -> Reason:
        """The first reason this message is malformed or impossible, or Reason.NONE."""
        if kind not in _KINDS:
            return Reason.INVALID_KIND
        if kind in NEW_ORDER_KINDS and side not in (Side.BUY, Side.SELL):
            return Reason.INVALID_SIDE
        if kind in PRICED_KINDS and price < 1:
            return Reason.INVALID_PRICE
        if kind in STOP_KINDS and stop_price < 1:
            return Reason.INVALID_STOP_PRICE
        if kind != Kind.CANCEL and qty < 1:
            return Reason.INVALID_QTY
        if kind in NEW_ORDER_KINDS and order_id in self._live:
            return Reason.DUPLICATE_ID
        if kind in (Kind.CANCEL, Kind.AMEND) and order_id not in self._live:
            return Reason.UNKNOWN_ORDER
        if (kind in RESTING_KINDS or kind in STOP_KINDS) and len(self._live) >= self._max_live:
            return Reason.BOOK_FULL
        if kind in RESTING_KINDS and self.quantity_at(side, price) + qty > INT64_MAX:
            return Reason.QTY_OVERFLOW
        if kind in STOP_KINDS and self._stop_level_total(side, stop_price) + qty > INT64_MAX:
            return Reason.QTY_OVERFLOW
        if kind == Kind.AMEND:
            order = self._live[order_id]
            if not order.armed:
                others = self.quantity_at(order.side, price)
                if price == order.price:
                    others -= order.qty
                if others + qty > INT64_MAX:
                    return Reason.QTY_OVERFLOW
        return Reason.NONE

    # -------------------------------------------------------------- execution
    def _execute(self, kind, order_id, side, price, stop_price, qty, owner, reason) -> list[Event]:
        """Run one message, whose validation gave ``reason``, to completion; return its events."""
        self._events = []
        if reason != Reason.NONE:
            self._emit(EventKind.REJECTED, reason, side, order_id, owner, price=price,
                       stop_price=stop_price, qty=qty)
        elif kind == Kind.CANCEL:
            self._cancel(self._live[order_id])
        elif kind == Kind.AMEND:
            self._amend(self._live[order_id], price, qty)
        else:
            self._new_order(_Order(order_id, owner, side, kind, price, stop_price, qty))
        self.message_count += 1
        return self._events

    def _emit(self, kind, reason, side, order_id, owner, maker_id=0, maker_owner=0, price=0,
              stop_price=0, qty=0):
        self._events.append(Event(self.event_count, self.message_count, int(kind), int(reason),
                                  side, order_id, owner, maker_id, maker_owner, price, stop_price,
                                  qty))
        self.event_count += 1

    def _new_order(self, order: _Order) -> None:
        if order.kind == Kind.MARKET or order.kind == Kind.STOP_MARKET:
            order.price = 0
        if order.kind not in STOP_KINDS:
            order.stop_price = 0
        if order.kind == Kind.POST_ONLY and self._would_cross(order.side, order.price):
            self._emit(EventKind.REJECTED, Reason.POST_ONLY_WOULD_TAKE, order.side, order.order_id,
                       order.owner, price=order.price, qty=order.qty)
            return
        if order.armed and self._stop_is_triggered(order, self.last_price):
            self._emit(EventKind.REJECTED, Reason.STOP_WOULD_TRIGGER, order.side, order.order_id,
                       order.owner, price=order.price, stop_price=order.stop_price, qty=order.qty)
            return
        self._emit(EventKind.ACCEPTED, Reason.NONE, order.side, order.order_id, order.owner,
                   price=order.price, stop_price=order.stop_price, qty=order.qty)
        if order.armed:
            self._arm(order)
            return
        if order.kind == Kind.FOK and self._fillable(order) < order.qty:
            self._emit(EventKind.CANCELLED, Reason.FOK_UNFILLABLE, order.side, order.order_id,
                       order.owner, price=order.price, qty=order.qty)
            return
        self._take(order)
        self._run_triggered()

    def _take(self, order: _Order) -> None:
        """Match ``order`` as the taker, then rest or cancel what is left (spec steps 3-4)."""
        opposite = self._asks if order.side == Side.BUY else self._bids
        stopped_by_stp = False
        while order.qty > 0 and opposite and not stopped_by_stp:
            key, level = opposite.peekitem(0)
            level_price = abs(key)
            if order.price and (level_price > order.price if order.side == Side.BUY
                                else level_price < order.price):
                break
            for maker in list(level.orders.values()):
                if order.qty == 0:
                    break
                if self.stp != SelfTradePrevention.NONE and maker.owner == order.owner:
                    if self.stp in (SelfTradePrevention.CANCEL_MAKER,
                                    SelfTradePrevention.CANCEL_BOTH):
                        self._remove(maker)
                        self._emit(EventKind.CANCELLED, Reason.SELF_TRADE, maker.side,
                                   maker.order_id, maker.owner, price=maker.price, qty=maker.qty)
                    if self.stp in (SelfTradePrevention.CANCEL_TAKER,
                                    SelfTradePrevention.CANCEL_BOTH):
                        stopped_by_stp = True
                        break
                    continue
                fill = min(order.qty, maker.qty)
                self._emit(EventKind.TRADE, Reason.NONE, order.side, order.order_id, order.owner,
                           maker.order_id, maker.owner, price=level_price, qty=fill)
                order.qty -= fill
                maker.qty -= fill
                level.total -= fill
                if maker.qty == 0:
                    self._remove(maker)
                self._trigger_stops(level_price)
        if stopped_by_stp:
            self._emit(EventKind.CANCELLED, Reason.SELF_TRADE, order.side, order.order_id,
                       order.owner, price=order.price, qty=order.qty)
        elif order.qty > 0:
            if order.kind in RESTING_KINDS:
                self._rest(order)
            else:
                self._emit(EventKind.CANCELLED, Reason.IOC_RESIDUAL, order.side, order.order_id,
                           order.owner, price=order.price, qty=order.qty)

    def _rest(self, order: _Order) -> None:
        if self.quantity_at(order.side, order.price) + order.qty > INT64_MAX:
            # Only a triggered stop-limit can get here: new orders were checked on entry.
            self._emit(EventKind.CANCELLED, Reason.QTY_OVERFLOW, order.side, order.order_id,
                       order.owner, price=order.price, qty=order.qty)
            return
        book = self._bids if order.side == Side.BUY else self._asks
        key = -order.price if order.side == Side.BUY else order.price
        level = book.setdefault(key, _Level())
        level.orders[order.order_id] = order
        level.total += order.qty
        self._live[order.order_id] = order

    def _remove(self, order: _Order) -> None:
        """Take a resting order out of its level (and the level out of the book if empty)."""
        book = self._bids if order.side == Side.BUY else self._asks
        key = -order.price if order.side == Side.BUY else order.price
        level = book[key]
        del level.orders[order.order_id]
        level.total -= order.qty
        if not level.orders:
            del book[key]
        del self._live[order.order_id]

    def _fillable(self, order: _Order) -> int:
        """Lots a FOK order could fill now, under self-trade prevention (spec step 2)."""
        opposite = self._asks if order.side == Side.BUY else self._bids
        total = 0
        for key, level in opposite.items():
            if (abs(key) > order.price) if order.side == Side.BUY else (abs(key) < order.price):
                break
            for maker in level.orders.values():
                if self.stp != SelfTradePrevention.NONE and maker.owner == order.owner:
                    if self.stp == SelfTradePrevention.CANCEL_MAKER:
                        continue
                    return total
                total += maker.qty
                if total >= order.qty:
                    return total
        return total

    def _would_cross(self, side: int, price: int) -> bool:
        if side == Side.BUY:
            return bool(self._asks) and self._asks.peekitem(0)[0] <= price
        return bool(self._bids) and -self._bids.peekitem(0)[0] >= price

    # ------------------------------------------------------------------ stops
    @staticmethod
    def _stop_is_triggered(order: _Order, trade_price: int | None) -> bool:
        if trade_price is None:
            return False
        if order.side == Side.BUY:
            return trade_price >= order.stop_price
        return trade_price <= order.stop_price

    def _stop_level_total(self, side: int, stop_price: int) -> int:
        stops, sign = self._stop_book(side)
        return sum(o.qty for o in stops.get(sign * stop_price, {}).values())

    def _stop_book(self, side: int) -> tuple[SortedDict, int]:
        if side == Side.BUY:
            return self._buy_stops, 1
        return self._sell_stops, -1

    def _arm(self, order: _Order) -> None:
        stops, sign = self._stop_book(order.side)
        stops.setdefault(sign * order.stop_price, {})[order.order_id] = order
        self._live[order.order_id] = order

    def _disarm(self, order: _Order) -> None:
        stops, sign = self._stop_book(order.side)
        level = stops[sign * order.stop_price]
        del level[order.order_id]
        if not level:
            del stops[sign * order.stop_price]
        del self._live[order.order_id]

    def _trigger_stops(self, trade_price: int) -> None:
        """Record the trade price and queue every stop it triggers, sells first."""
        self.last_price = trade_price
        for side in (Side.SELL, Side.BUY):
            stops, sign = self._stop_book(side)
            while stops:
                key, level = stops.peekitem(0)
                first = next(iter(level.values()))
                if not self._stop_is_triggered(first, trade_price):
                    break
                for stop in list(level.values()):
                    self._disarm(stop)
                    self._triggered.append(stop)
                    self._emit(EventKind.STOP_TRIGGERED, Reason.NONE, stop.side, stop.order_id,
                               stop.owner, price=stop.price, stop_price=stop.stop_price,
                               qty=stop.qty)

    def _run_triggered(self) -> None:
        """Run triggered stops in trigger order until none is left (spec step 5)."""
        while self._triggered:
            stop = self._triggered.popleft()
            stop.kind = Kind.MARKET if stop.kind == Kind.STOP_MARKET else Kind.LIMIT
            stop.stop_price = 0
            self._take(stop)

    # --------------------------------------------------------- cancel, amend
    def _cancel(self, order: _Order) -> None:
        if order.armed:
            self._disarm(order)
        else:
            self._remove(order)
        self._emit(EventKind.CANCELLED, Reason.USER, order.side, order.order_id, order.owner,
                   price=order.price, stop_price=order.stop_price, qty=order.qty)

    def _amend(self, order: _Order, price: int, qty: int) -> None:
        if order.armed:
            self._emit(EventKind.REJECTED, Reason.NOT_AMENDABLE, order.side, order.order_id,
                       order.owner, price=price, qty=qty)
            return
        keeps_priority = (self.amend_rule == AmendRule.REDUCE_KEEPS_PRIORITY
                          and price == order.price and qty <= order.qty)
        if not keeps_priority and order.post_only and self._would_cross(order.side, price):
            self._emit(EventKind.REJECTED, Reason.POST_ONLY_WOULD_TAKE, order.side,
                       order.order_id, order.owner, price=price, qty=qty)
            return
        reason = Reason.KEPT_PRIORITY if keeps_priority else Reason.REQUEUED
        self._emit(EventKind.AMENDED, reason, order.side, order.order_id, order.owner,
                   price=price, qty=qty)
        if keeps_priority:
            book = self._bids if order.side == Side.BUY else self._asks
            book[-order.price if order.side == Side.BUY else order.price].total -= order.qty - qty
            order.qty = qty
            return
        self._remove(order)
        order.price = price
        order.qty = qty
        self._take(order)
        self._run_triggered()

    # ---------------------------------------------------------------- queries
    def best_bid(self) -> int | None:
        """Highest bid price in ticks, or None. O(1)."""
        return -self._bids.peekitem(0)[0] if self._bids else None

    def best_ask(self) -> int | None:
        """Lowest ask price in ticks, or None. O(1)."""
        return self._asks.peekitem(0)[0] if self._asks else None

    def spread(self) -> int | None:
        """Best ask minus best bid in ticks, or None if a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else ask - bid

    def mid(self) -> float | None:
        """Mid price in ticks as a float, or None if a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else (bid + ask) / 2

    @property
    def busy(self) -> bool:
        """Always False: the reference never releases the GIL (the engine's ``process`` does)."""
        return False

    @property
    def n_orders(self) -> int:
        """Number of resting orders."""
        return len(self._live) - self.n_stops

    @property
    def n_stops(self) -> int:
        """Number of armed stop orders."""
        return sum(len(level) for book in (self._sell_stops, self._buy_stops)
                   for level in book.values())

    def _side_book(self, side) -> SortedDict:
        return self._bids if check.as_side(side) == Side.BUY else self._asks

    def quantity_at(self, side, price) -> int:
        """Lots resting at ``price`` ticks on ``side``. O(orders at the level)."""
        side = check.as_side(side)
        price = check.as_int64("price", price)
        level = self._side_book(side).get(-price if side == Side.BUY else price)
        return level.total if level else 0

    def resting_qty(self, side, price) -> int:
        """Lots resting on ``side`` at ``price`` or better (bids >= price, asks <= price)."""
        side = check.as_side(side)
        price = check.as_int64("price", price)
        total = 0
        for key, level in self._side_book(side).items():
            if (abs(key) < price) if side == Side.BUY else (key > price):
                break
            total += level.total
        return total

    def l2(self, n=10) -> L2:
        """Top ``n`` levels per side, best first (prices in ticks, lots, order counts)."""
        n = check.as_count("n", n)
        columns = []
        for book in (self._bids, self._asks):
            levels = list(book.items())[:n]
            columns += [np.array([abs(k) for k, _ in levels], dtype=np.int64),
                        np.array([lv.total for _, lv in levels], dtype=np.int64),
                        np.array([len(lv.orders) for _, lv in levels], dtype=np.int64)]
        return L2(*columns)

    def l3(self) -> np.ndarray:
        """Every resting order: bids best first, then asks best first, FIFO within a level."""
        rows = [(o.order_id, o.owner, o.price, o.qty, o.side)
                for book in (self._bids, self._asks) for level in book.values()
                for o in level.orders.values()]
        return _records(rows, L3_DTYPE)

    def stops(self) -> np.ndarray:
        """Every armed stop in trigger order: sell stops, then buy stops."""
        rows = [(o.order_id, o.owner, o.stop_price, o.price, o.qty, o.kind, o.side)
                for book in (self._sell_stops, self._buy_stops) for level in book.values()
                for o in level.values()]
        return _records(rows, STOP_DTYPE)

    def order(self, order_id) -> OrderInfo:
        """The live order (resting or armed stop) with this id; UnknownOrderError if none. O(1)."""
        order_id = check.as_int64("order_id", order_id)
        try:
            o = self._live[order_id]
        except KeyError:
            raise check.unknown_order(order_id) from None
        return OrderInfo(o.order_id, o.owner, o.side, int(o.kind), o.price, o.stop_price, o.qty)

    def orders_of(self, owner) -> list[int]:
        """Ids of ``owner``'s live orders (resting and armed stops), ascending.

        O(n + k log k) for n live orders, k of them ``owner``'s.
        """
        owner = check.as_int64("owner", owner)
        return sorted(o.order_id for o in self._live.values() if o.owner == owner)

    def __contains__(self, order_id) -> bool:
        """Whether ``order_id`` is a live order (resting or armed); False for non-integer ids."""
        try:
            return check.as_int64("order_id", order_id) in self._live
        except (TypeError, ValueError):
            return False

    def impact(self, side, qty) -> Impact:
        """What a market order of ``side`` for ``qty`` lots would fill now (the book unchanged)."""
        side = check.as_side(side)
        wanted = check.as_positive("qty", qty)
        opposite = self._asks if side == Side.BUY else self._bids
        filled = notional = worst = levels = 0
        for key, level in opposite.items():
            if filled == wanted:
                break
            take = min(wanted - filled, level.total)
            filled += take
            notional += take * abs(key)
            worst = abs(key)
            levels += 1
        average = notional / filled if filled else float("nan")
        return Impact(filled, notional, average, worst, levels)

    def copy(self) -> "OrderBook":
        """An independent book with the same state and the same future behaviour."""
        return _copy.deepcopy(self)

    def __reduce__(self):
        """Pickle the public state; unpickling rebuilds the book through checked paths."""
        resting = [(o.order_id, o.owner, o.side, int(o.kind), o.price, o.qty)
                   for book in (self._bids, self._asks) for level in book.values()
                   for o in level.orders.values()]
        armed = [(o.order_id, o.owner, o.side, int(o.kind), o.price, o.stop_price, o.qty)
                 for book in (self._sell_stops, self._buy_stops) for level in book.values()
                 for o in level.values()]
        state = (resting, armed, self.last_price, self.event_count, self.message_count)
        return (_restore, (str(self.tick_size), str(self.lot_size), int(self.stp),
                           int(self.amend_rule), state))

    def __repr__(self) -> str:
        return (f"reference.OrderBook(bid={self.best_bid()}, ask={self.best_ask()}, "
                f"orders={self.n_orders}, stops={self.n_stops}, last={self.last_price})")



def _restore(tick_size, lot_size, stp, amend_rule, state) -> OrderBook:
    """Rebuild a pickled OrderBook; ValueError naming the field if the pickle is damaged."""
    book = OrderBook(tick_size, lot_size, stp=stp, amend_rule=amend_rule)
    resting, armed, last_price, seq, msg = check.book_state(state)
    names = [f"resting[{i}]" for i in range(len(resting))] + [
        f"armed[{i}]" for i in range(len(armed))]
    for name, o in zip(names, resting + armed, strict=True):
        reason = book._validate(o["kind"], o["order_id"], o["side"], o["price"], o["stop_price"],
                                o["qty"])
        if reason != Reason.NONE:
            raise ValueError(f"corrupt OrderBook state: {name} {o} cannot be restored "
                             f"({reason.name})")
        order = _Order(o["order_id"], o["owner"], o["side"], Kind(o["kind"]), o["price"],
                       o["stop_price"], o["qty"])
        if order.armed:
            book._arm(order)
        elif book._would_cross(order.side, order.price):
            raise ValueError(f"corrupt OrderBook state: {name} {o} crosses the book")
        else:
            book._rest(order)
    book.last_price, book.event_count, book.message_count = last_price, seq, msg
    return book
