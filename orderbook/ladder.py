"""The book's depth ladder through a run: L2 snapshots taken where they happen, and the data
the ladder figures draw (:func:`orderbook.plot.plot_ladder`, :func:`orderbook.plot.
animate_cascade`).

A run (:func:`orderbook.run`) keeps two :class:`BookSnapshot` s of its first instrument's
book, every level of it: :attr:`~orderbook.scenario.Result.book_before`, just before step 0's
shock, and :attr:`~orderbook.scenario.Result.book_after`, just after the last liquidator round
that closed a position. Each costs one ``OrderBook.l2`` call (about 20 µs for the built-in
book's 2,000 levels), taken once and after each round that liquidated. With
``run(..., book_levels=N)`` the run also keeps :class:`BookFrames`: the top N levels a side
around the shock, after every such round and at every step's end, for animations.

Prices are in ticks, sizes in lots, times in ms of the run's clock. No matplotlib here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np

from .events import L2, SCENARIO_SHOCKER, EventKind, ForcedKind
from .metrics import LIQUIDATION_KINDS
from .views import _records_of

__all__ = ["Stage", "BookSnapshot", "BookFrames", "BookTape", "FORCED_TRADE_DTYPE", "forced_trades",
           "shock_trades", "price_bins", "lots_in_bins", "depth_in_bins", "fills_in_bins",
           "level_step", "liquidation_span"]

#: ``OrderBook.l2`` depth that means every level (the book clips it to its size).
ALL_LEVELS = 2**62


class Stage(IntEnum):
    """When a book frame was taken (:attr:`BookFrames.stage`)."""

    BEFORE_SHOCK = 0   #: at 0 ms, before the shock's orders
    AFTER_SHOCK = 1    #: at 0 ms, after the shock's orders, before the liquidator's first round
    ROUND = 2          #: right after a liquidator wake-up that closed positions
    STEP_END = 3       #: at a step's sample, after the recovery and the refill


class BookSnapshot(NamedTuple):
    """One book at one moment: ``time`` (ms of the run's clock), ``trades`` (how many rows of
    the run's ``Result.trades`` had settled then: the rows before it are the past), and
    ``l2``, every level (:class:`~orderbook.L2`: ticks, lots, order counts)."""

    time: int
    trades: int
    l2: L2


class BookFrames(NamedTuple):
    """Snapshots of one book's top N levels a side, in time order.

    ``time`` (ms), ``stage`` (:class:`Stage`) and ``trades`` (how many rows of the run's
    ``Result.trades`` had settled then) have one entry per frame; ``bid_price``, ``bid_qty``,
    ``ask_price``, ``ask_qty`` are ``(frames, N)`` int64 arrays, best level first, in ticks
    and lots, padded with zeros where a side has fewer than N levels. Memory: 32 N bytes a
    frame.
    """

    time: np.ndarray
    stage: np.ndarray
    trades: np.ndarray
    bid_price: np.ndarray
    bid_qty: np.ndarray
    ask_price: np.ndarray
    ask_qty: np.ndarray

    @property
    def levels(self) -> int:
        """N, the levels kept a side."""
        return int(self.bid_price.shape[1])

    def __len__(self) -> int:  # the number of frames, not of fields
        return len(self.time)

    def l2(self, k: int) -> L2:
        """Frame ``k`` as an :class:`~orderbook.L2` (its empty slots dropped; order counts 0)."""
        bids, asks = self.bid_qty[k] > 0, self.ask_qty[k] > 0
        return L2(self.bid_price[k][bids], self.bid_qty[k][bids],
                  np.zeros(int(bids.sum()), np.int64), self.ask_price[k][asks],
                  self.ask_qty[k][asks], np.zeros(int(asks.sum()), np.int64))


class BookTape:
    """Records an engine's first book during a run (the Timeline calls it; see the module's
    docstring).

    ``levels``: None keeps only :attr:`before` and :attr:`after` (every level); N also keeps
    frames of the top N levels, read back with :meth:`frames`.
    """

    def __init__(self, engine, levels: int | None = None):
        if levels is not None and (isinstance(levels, bool) or not isinstance(levels, int)
                                   or levels < 1):
            raise ValueError(f"book_levels must be a whole number >= 1 or None, got {levels!r}")
        self.engine = engine
        self.book = engine.books[0]
        self.levels = levels
        self.before: BookSnapshot | None = None
        self.after: BookSnapshot | None = None
        self._trades = 0    # the first book's trades settled when last counted
        self._frames: list[tuple[int, int, int, L2]] = []

    def shock(self, now: int, done: bool) -> None:
        """Around step 0's shock: before it (``done`` False) and after it."""
        if not done:
            self.before = self._snapshot(now)
        self._frame(now, Stage.AFTER_SHOCK if done else Stage.BEFORE_SHOCK)

    def round(self, now: int, liquidated: bool) -> None:
        """After a liquidator wake-up; ``liquidated``: it closed positions."""
        if liquidated:
            self.after = self._snapshot(now)
            self._frame(now, Stage.ROUND)

    def step_end(self, now: int) -> None:
        """At a step's sample."""
        self._frame(now, Stage.STEP_END)

    def _count(self) -> int:
        # (reads only the trades new since the last count)
        self._trades += len(self.engine.trades(0, start=self._trades))
        return self._trades

    def _snapshot(self, now: int) -> BookSnapshot:
        return BookSnapshot(now, self._count(), self.book.l2(ALL_LEVELS))

    def _frame(self, now: int, stage: Stage) -> None:
        if self.levels is not None:
            self._frames.append((now, int(stage), self._count(), self.book.l2(self.levels)))

    def frames(self) -> BookFrames | None:
        """The frames recorded (None when ``levels`` is None)."""
        if self.levels is None:
            return None
        n, count = self.levels, len(self._frames)
        columns = [np.zeros((count, n), dtype=np.int64) for _ in range(4)]
        for k, (*_, l2) in enumerate(self._frames):
            for column, values in zip(columns, (l2.bid_price, l2.bid_qty, l2.ask_price,
                                                l2.ask_qty), strict=True):
                column[k, :len(values)] = values
        time, stage, trades = (np.array([f[n] for f in self._frames], dtype=dtype)
                               for n, dtype in enumerate((np.int64, np.uint8, np.int64)))
        return BookFrames(time, stage, trades, *columns)


# ---------------------------------------------------------------------------- fills
#: One trade of a forced order: when (ms), at which price (ticks), how many lots, the forced
#: order's side, its record's generation, the row of ``Result.forced_orders`` and the row of
#: ``Result.trades``. (:func:`orderbook.views.forced_fills` merges them by price level.)
FORCED_TRADE_DTYPE = np.dtype([
    ("time", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("side", "i1"), ("generation", "<i8"),
    ("record", "<i8"), ("trade", "<i8"),
])


def forced_trades(result) -> np.ndarray:
    """Every trade of a forced order on the run's first instrument, with its generation.

    Forced orders are paired with their records as :func:`orderbook.views.forced_fills` pairs
    them; the lots each order's trades add up to are checked against its record's ``filled``.

    Returns
    -------
    numpy.ndarray
        :data:`FORCED_TRADE_DTYPE`, in trade order. O(trades log trades + records).

    Raises
    ------
    ValueError
        The trades and the records do not pair (a run whose engine numbers forced orders
        otherwise).
    """
    trades, records = result.trades, result.forced_orders
    forced = (trades["order_id"] < 0) & (trades["kind"] == EventKind.TRADE)
    fills = trades[forced]
    candidates = np.flatnonzero(
        (records["instrument"] == 0)
        & np.isin(records["kind"], (ForcedKind.ORDER, ForcedKind.CONVERSION))
        & (records["filled"] > 0))
    out = np.zeros(len(fills), dtype=FORCED_TRADE_DTYPE)
    out["record"] = _records_of(records, fills, candidates, "forced_trades")
    out["time"] = _trade_times(result)[forced]
    out["price"] = fills["price"]
    out["qty"] = fills["qty"]
    out["side"] = fills["side"]
    out["trade"] = np.flatnonzero(forced)
    out["generation"] = records["generation"][out["record"]]
    return out


def shock_trades(result) -> np.ndarray:
    """The rows of ``Result.trades`` (the first instrument's) that the scenario's shock took:
    the shocker's trades from the run's start on (its first print before the run, which
    gives the last price a value, is not the shock's)."""
    trades = result.trades
    before = result.book_before
    rows = np.flatnonzero((trades["owner"] == SCENARIO_SHOCKER)
                          & (trades["kind"] == EventKind.TRADE))
    return rows[rows >= (before.trades if before is not None else 0)]


def _trade_times(result) -> np.ndarray:
    times = getattr(result, "trade_time", None)
    if times is None or len(times) != len(result.trades):
        return np.zeros(len(result.trades), dtype=np.int64)
    return np.asarray(times, dtype=np.int64)


def liquidation_span(result) -> tuple[int, int] | None:
    """(first, last) ms of the run's liquidator rounds that closed positions, or None."""
    closing = np.isin(result.forced_orders["kind"], LIQUIDATION_KINDS)
    if not closing.any():
        return None
    times = np.asarray(result.record_time)[closing]
    return int(times.min()), int(times.max())


# ---------------------------------------------------------------------------- bins
def price_bins(low: int, high: int, step: int = 1, *, target: int = 60) -> np.ndarray:
    """Edges (ticks) of fixed price bins covering [low, high]: a width of 1, 2 or 5 x 10^k
    times ``step`` ticks (the book's level spacing, or 1), the narrowest that needs at most
    ``target`` bins, edges at multiples of the width. Fixed: they do not move with the price.

    >>> price_bins(995, 1012, target=4).tolist()
    [995, 1000, 1005, 1010, 1015]
    """
    if high < low:
        raise ValueError(f"high ({high}) must be >= low ({low})")
    step = max(1, int(step))
    span = max(high - low, 1)
    width = next(step * m * 10**k for k in range(19) for m in (1, 2, 5)
                 if span <= target * step * m * 10**k)
    first = (low // width) * width
    last = -(-high // width) * width
    if last <= high:   # a price on the last edge belongs to the bin above it
        last += width
    return np.arange(first, last + 1, width, dtype=np.int64)


def depth_in_bins(l2: L2, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bid lots, ask lots) resting in each bin [edges[i], edges[i+1]) of ``l2``'s levels."""
    return (lots_in_bins(l2.bid_price, l2.bid_qty, edges),
            lots_in_bins(l2.ask_price, l2.ask_qty, edges))


def fills_in_bins(fills: np.ndarray, edges: np.ndarray, generations: int) -> np.ndarray:
    """Lots the forced orders of each generation took in each price bin: a
    ``(generations, bins)`` int64 array (``fills``: :data:`FORCED_TRADE_DTYPE`)."""
    out = np.zeros((generations, len(edges) - 1), dtype=np.int64)
    for gen in range(generations):
        mine = fills[fills["generation"] == gen]
        out[gen] = lots_in_bins(mine["price"], mine["qty"], edges)
    return out


def lots_in_bins(prices, lots, edges: np.ndarray) -> np.ndarray:
    """Lots per half-open bin [edges[i], edges[i+1]) (int64, exact); prices outside every bin
    are left out (numpy's histogram would close the last bin).

    >>> lots_in_bins([10, 14, 15, 20], [1, 2, 3, 4], np.array([10, 15, 20])).tolist()
    [3, 3]
    """
    at = np.searchsorted(edges, np.asarray(prices), side="right") - 1
    inside = (at >= 0) & (at < len(edges) - 1)
    out = np.zeros(len(edges) - 1, dtype=np.int64)
    np.add.at(out, at[inside], np.asarray(lots, dtype=np.int64)[inside])   # exact, in int64
    return out


def level_step(*books: L2) -> int:
    """The smallest gap (ticks) between neighbouring levels of the books, 1 if none."""
    gaps = []
    for l2 in books:
        for prices in (l2.bid_price, l2.ask_price):
            if len(prices) > 1:
                gaps.append(int(np.abs(np.diff(prices)).min()))
    return max(1, min(gaps)) if gaps else 1
