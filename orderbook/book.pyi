from decimal import Decimal
from typing import Any, Literal, SupportsIndex, final, overload

import numpy as np
from numpy.typing import NDArray

from ._matching import MatchingCore
from .batch import BatchCounts
from .events import L2, AmendRule, Event, Impact, OrderInfo, SelfTradePrevention

__all__ = ["OrderBook"]

# An integer argument (ticks, lots, ids): an int or anything with __index__, such as a numpy
# integer; bool is refused. A side: Side.BUY/Side.SELL (+1/-1) or "buy"/"bid"/"sell"/"ask".
_Int = SupportsIndex
_Side = _Int | str
# A price or size in real units: a decimal string, Decimal, int or float, exact on the grid.
_Real = str | Decimal | float | SupportsIndex

@final
class OrderBook(MatchingCore):
    """Limit order book with price-time priority, compiled (see docs/semantics.md).

    Per-call refusals raise ``orderbook.errors.OrderError`` (a ValueError) with the batch's
    ``reason``, ``UnknownOrderError`` (also a KeyError) for an id that is not live. Arrays are
    numpy structured arrays of the dtype named beside each method (``orderbook.events``).
    """

    @property
    def tick_size(self) -> Decimal: ...
    @property
    def lot_size(self) -> Decimal: ...
    def __init__(
        self,
        tick_size: _Real = "1",
        lot_size: _Real = "1",
        *,
        stp: SelfTradePrevention | _Int = ...,
        amend_rule: AmendRule | _Int = ...,
    ) -> None: ...
    @property
    def stp(self) -> SelfTradePrevention: ...
    @property
    def amend_rule(self) -> AmendRule: ...
    def to_ticks(self, price: _Real) -> int: ...
    def to_lots(self, qty: _Real) -> int: ...
    def to_price(self, ticks: _Int) -> Decimal: ...
    def to_qty(self, lots: _Int) -> Decimal: ...
    @overload
    def limit(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def limit(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[False],
    ) -> int: ...
    @overload
    def market(
        self,
        order_id: _Int,
        side: _Side,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def market(
        self, order_id: _Int, side: _Side, qty: _Int, owner: _Int = 0, *, events: Literal[False]
    ) -> int: ...
    @overload
    def ioc(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def ioc(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[False],
    ) -> int: ...
    @overload
    def fok(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def fok(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[False],
    ) -> int: ...
    @overload
    def post_only(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def post_only(
        self,
        order_id: _Int,
        side: _Side,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[False],
    ) -> int: ...
    @overload
    def stop_market(
        self,
        order_id: _Int,
        side: _Side,
        stop_price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def stop_market(
        self,
        order_id: _Int,
        side: _Side,
        stop_price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[False],
    ) -> int: ...
    @overload
    def stop_limit(
        self,
        order_id: _Int,
        side: _Side,
        stop_price: _Int,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def stop_limit(
        self,
        order_id: _Int,
        side: _Side,
        stop_price: _Int,
        price: _Int,
        qty: _Int,
        owner: _Int = 0,
        *,
        events: Literal[False],
    ) -> int: ...
    @overload
    def cancel(
        self, order_id: _Int, *, events: Literal[True] = True
    ) -> list[Event]: ...
    @overload
    def cancel(
        self, order_id: _Int, *, events: Literal[False]
    ) -> int: ...
    @overload
    def amend(
        self, order_id: _Int, price: _Int, qty: _Int, *, events: Literal[True] = True
    ) -> list[Event]: ...
    @overload
    def amend(
        self, order_id: _Int, price: _Int, qty: _Int, *, events: Literal[False]
    ) -> int: ...
    @overload
    def submit(
        self,
        kind: _Int,
        order_id: _Int,
        side: _Side = 0,
        price: _Int = 0,
        qty: _Int = 0,
        owner: _Int = 0,
        stop_price: _Int = 0,
        *,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def submit(
        self,
        kind: _Int,
        order_id: _Int,
        side: _Side = 0,
        price: _Int = 0,
        qty: _Int = 0,
        owner: _Int = 0,
        stop_price: _Int = 0,
        *,
        events: Literal[False],
    ) -> int: ...
    # messages: MESSAGE_DTYPE rows; returns EVENT_DTYPE rows (out[:k] when given out), or the
    # counts with record="counters" (orderbook.batch).
    @overload
    def process(
        self,
        messages: NDArray[np.void],
        *,
        out: NDArray[np.void] | None = None,
        record: Literal["all", "trades"] = "all",
    ) -> NDArray[np.void]: ...
    @overload
    def process(
        self, messages: NDArray[np.void], *, out: None = None, record: Literal["counters"]
    ) -> BatchCounts: ...
    def best_bid(self) -> int | None: ...
    def best_ask(self) -> int | None: ...
    def spread(self) -> int | None: ...
    def mid(self) -> float | None: ...
    @property
    def last_price(self) -> int | None: ...
    @property
    def busy(self) -> bool: ...
    @property
    def n_orders(self) -> int: ...
    @property
    def n_stops(self) -> int: ...
    @property
    def message_count(self) -> int: ...
    @property
    def event_count(self) -> int: ...
    def quantity_at(self, side: _Side, price: _Int) -> int: ...
    def resting_qty(self, side: _Side, price: _Int) -> int: ...
    def l2(self, n: _Int = 10) -> L2: ...
    def l3(self) -> NDArray[np.void]: ...  # L3_DTYPE rows
    def stops(self) -> NDArray[np.void]: ...  # STOP_DTYPE rows
    def order(self, order_id: _Int) -> OrderInfo: ...
    def orders_of(self, owner: _Int) -> list[int]: ...
    def __contains__(self, order_id: object) -> bool: ...  # False for any non-integer
    def impact(self, side: _Side, qty: _Int) -> Impact: ...
    def copy(self) -> OrderBook: ...
    def __copy__(self) -> OrderBook: ...
    def __deepcopy__(self, memo: dict[int, Any]) -> OrderBook: ...
