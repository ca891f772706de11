"""What a replay reports: ReplayResult, with an InjectionReport per injected order and the
Divergence of the hybrid book from history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .files import LobsterBook
from .injection import Injection

#: One fill of an injected order: before which message row it happened (the row it shows in),
#: price (ticks), qty (lots), counterparty order id (0 = an anonymous historical taker), and
#: whether the injected order was the aggressor.
FILL_DTYPE = np.dtype([
    ("row", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("counterparty", "<i8"), ("aggressor", "?"),
])


@dataclass(frozen=True, eq=False)
class InjectionReport:
    """What happened to one injected order.

    ``row`` is the message index it arrived before; ``touch_before`` the best opposite price
    then (ticks, 0 if that side was empty). ``filled`` lots at ``notional`` tick*lots (exact),
    ``avg_price`` = notional / filled (ticks, NaN without fills). ``slippage`` is the average
    price's distance from ``touch_before`` in ticks, positive when worse for the injected order.
    ``levels`` is the number of price levels the order took on arrival, ``beyond_window`` the
    lots it took on arrival beyond the N levels the book showed (liquidity the files do not
    publish there: stale or seeded guesses). ``resting`` lots are still in the book at the end.
    ``fills`` is a :data:`FILL_DTYPE` array, arrival fills first.
    """

    injection: Injection
    order_id: int
    row: int
    touch_before: int
    filled: int
    notional: int
    avg_price: float
    slippage: float
    levels: int
    beyond_window: int
    resting: int
    fills: np.ndarray


class Divergence(NamedTuple):
    """How far the hybrid book drifted from history, over rows ``first_row`` .. end.

    ``matched`` rows equal history by the replay's definition (exact, or differing only at a
    window-entering slot of a side no injection touched); ``inconsistent`` rows needed a
    correction inside the window to agree with history plus the injections' effects (0 when
    that book-keeping holds). Best-price differences are in ticks, over rows where both books
    have that side; ``empty_*_rows`` count rows where the hybrid side is empty and history's
    is not (everything the files showed there was taken).
    """

    first_row: int
    rows: int
    matched: int
    inconsistent: int
    mean_abs_bid_diff: float
    mean_abs_ask_diff: float
    max_abs_bid_diff: int
    max_abs_ask_diff: int
    empty_bid_rows: int
    empty_ask_rows: int


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """The outcome of :func:`replay` (:mod:`orderbook.data.lobster` defines the terms).

    Notes
    -----
    Counts: ``n_rows`` rows; ``n_matched`` = ``n_exact`` (no correction needed) + ``n_entering``
    (matched after a window-entering resync); ``match_rate`` = n_matched / n_rows;
    ``mismatches`` lists ``(row, description)`` for rows before the first injection.
    ``n_resync`` levels resynchronised, of which ``n_resync_entering`` window-entering and
    ``n_resync_inside`` inside the window (mismatches). ``n_unknown`` messages named an id never
    submitted; ``n_reattributed`` shortfalls or excesses were moved to other liquidity at the
    level; ``n_dropped`` found nothing to act on; ``n_reconciled`` were cut down or dropped
    because injected orders took that liquidity; ``n_crossed`` historical submissions traded.

    Series, one entry per row: ``time`` seconds after midnight; ``best_bid``, ``best_ask`` ticks
    (0 = empty side); ``spread`` ticks (0 when a side is empty); ``bid_depth``, ``ask_depth``
    lots in the N levels; ``matched`` and ``exact`` flags; ``ask_price``, ``ask_size``,
    ``bid_price``, ``bid_size`` the replayed book's N levels (``(rows, N)``, after that row's
    resync, dummies as in the file); ``history`` the orderbook file's rows it was compared with
    (a :class:`LobsterBook`, the same shape: with injections, the historical book beside the
    hybrid one).
    """

    levels: int
    n_rows: int
    n_matched: int
    n_exact: int
    n_entering: int
    match_rate: float
    mismatches: tuple
    n_unknown: int
    n_resync: int
    n_resync_entering: int
    n_resync_inside: int
    n_reattributed: int
    n_dropped: int
    n_reconciled: int
    n_crossed: int
    messages_per_second: float
    seconds: float
    time: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    spread: np.ndarray
    bid_depth: np.ndarray
    ask_depth: np.ndarray
    matched: np.ndarray
    exact: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    injections: tuple = ()
    divergence: Divergence | None = None
    history: LobsterBook | None = None

    def summary(self) -> str:
        """A few lines of plain text: match figures, corrections, speed, injected fills."""
        lines = [
            f"LOBSTER replay: {self.n_rows:,} rows, {self.levels} level(s) per side",
            f"  matched {self.n_matched:,} / {self.n_rows:,} ({100 * self.match_rate:.3f} %): "
            f"{self.n_exact:,} exact, {self.n_entering:,} after a window-entering resync; "
            f"{len(self.mismatches):,} mismatched",
            f"  resyncs: {self.n_resync:,} levels ({self.n_resync_entering:,} window-entering, "
            f"{self.n_resync_inside:,} inside the window)",
            f"  unknown-order messages {self.n_unknown:,}, reattributed {self.n_reattributed:,}, "
            f"dropped {self.n_dropped:,}, reconciled {self.n_reconciled:,}, "
            f"crossed {self.n_crossed:,}",
            f"  {self.messages_per_second:,.0f} messages/s ({self.seconds:.3f} s)",
        ]
        for row, text in self.mismatches[:5]:
            lines.append(f"  mismatch at row {row}: {text}")
        for rep in self.injections:
            inj = rep.injection
            what = "market" if inj.kind == "market" else f"limit @ {inj.price}"
            lines += [
                f"  injected {inj.side.name.lower()} {inj.qty:,} {what} before row {rep.row}:",
                f"    filled {rep.filled:,} at avg {rep.avg_price:,.2f} ticks; touch before "
                f"{rep.touch_before:,}; slippage {rep.slippage:,.2f} ticks",
                f"    {rep.levels} levels taken on arrival, {rep.beyond_window:,} lots of them "
                f"beyond the published window; {rep.resting:,} lots still resting",
            ]
        div = self.divergence
        if div is not None:
            lines += [
                f"  from row {div.first_row}: {div.matched:,} / {div.rows:,} rows match history "
                f"({div.inconsistent:,} inconsistent)",
                f"    mean |best bid diff| {div.mean_abs_bid_diff:.2f} ticks "
                f"(max {div.max_abs_bid_diff:,}), mean |best ask diff| "
                f"{div.mean_abs_ask_diff:.2f} ticks (max {div.max_abs_ask_diff:,})",
                f"    hybrid side empty where history's is not: {div.empty_bid_rows:,} rows (bid), "
                f"{div.empty_ask_rows:,} rows (ask)",
            ]
        return "\n".join(lines)
