"""LOBSTER message and orderbook files: reading them, replaying them into an order book, and
replaying them with injected orders (a hybrid of history and a what-if).

LOBSTER (lobsterdata.com) reconstructs NASDAQ books from TotalView-ITCH. A day comes as two CSV
files of equal length: message ``i`` (time, type, order id, size, price, direction) and row ``i``
of the orderbook file, the book *after* message ``i`` at levels 1..N (ask price 1, ask size 1,
bid price 1, bid size 1, ask price 2, ...). Empty levels hold the dummies ask 9999999999 /
bid -9999999999 with size 0. Direction is the side of the *resting* order (+1 bid, -1 ask).

Units: prices are LOBSTER price units (US dollars x 10,000), used as ticks (1 tick = $0.0001);
sizes are shares, used as lots (1 lot = 1 share); time is seconds after midnight (float). All
book arithmetic is on exact integers.

Replay
------
The book is seeded with the state *before* message 0: row 0 with message 0 undone (a submission
taken out of its level, a cancel or execution put back), one synthetic resting order per level.
Synthetic orders stand for liquidity no message introduces (the seed, and levels that come into
view later); their ids are negative, so they never collide with LOBSTER ids (>= 0). Then:

- type 1 (submission): a limit order with the LOBSTER id.
- type 2 (partial cancel), type 4 (visible execution): the named order is reduced by the size
  (an execution reduces that very order, so its queue place stays as history had it); type 3
  (deletion): the named order is removed.
- an id the replay never saw submitted is *unknown* (it rested before the open, or arrived while
  its level was deeper than N): it acts on the synthetic liquidity at its price, oldest first.
- types 5 (hidden execution), 6 (cross trade) and 7 (halt) leave the visible book unchanged.

LOBSTER only reports messages inside the N published levels, so the replayed book goes stale
below level N: orders pushed deeper are kept, but their later cancels are never seen. When a
message then names an order with less (more) quantity than it carries, the difference is taken
from (given back to) other liquidity at the same price level - synthetic first, then real
orders from the back of the queue - which keeps every level's total equal to history's.
Such a move is *reattributed*; one that finds nothing to take is *dropped*.

What a matching row is
----------------------
After message ``i`` and *before any correction*, the top N levels of each side of the replayed
book (price and size, empty levels as dummies) are compared with row ``i``:

- **exact**: all 4N numbers agree.
- **entering**: a side differs only in its deepest slot (level N), and that slot is
  *window-entering*: its price in row ``i`` is not among that side's prices in row ``i - 1``,
  and message ``i`` is not a submission on that side at that price. Such a slot shows liquidity
  that was deeper than level N a message ago (or shows that there is none, a dummy), which the
  message file never describes; only the orderbook file can tell it. The slot is then
  resynchronised to the file (a *window-entering resync*) and the row still counts as matched.
- **mismatch**: any other difference, in particular any difference in a slot that was inside
  the window. The side is resynchronised to the file so that one error does not propagate, and
  the row is listed in ``mismatches``.

Resyncs work price by price through the deepest published price: levels the replay has there
but the file does not (stale ones) are emptied, levels of the wrong size are cut (synthetic
orders first, then real ones from the back of the queue) or topped up with a synthetic order.
When the file's row lies across the replayed other side (rows out of order), the crossing part
of the other side is emptied first, so a resync never trades.
``match_rate`` = (exact + entering rows) / rows; ``n_exact`` counts exact rows alone. Row 0
matches by construction of the seed.

Hybrid replay
-------------
:class:`Injection` puts a user order into the real book just before a given message: a market
order, or a limit order whose resting part joins its level's queue at the back (a normal
arrival), the front, or any index. It trades with the real resting orders as makers. From then
on the replay keeps, per price level, ``delta`` = hybrid lots - history's lots:

- liquidity an injected order takes lowers ``delta``; a later message that removes liquidity
  already taken is cut down or dropped (*reconciled*) and raises it back;
- a historical execution (type 4) that a resting injected order would have met first (better
  price, or ahead in the queue) fills the injected order instead; the named order keeps the
  difference (it stays in the hybrid book until history deletes it). Hidden executions
  (type 5) fill injected orders at or better than their price the same way, as displayed
  liquidity goes before hidden liquidity;
- a historical submission that crosses the hybrid book trades (both sides are then short of
  history, and reconciled later).

Each hybrid row is compared with history as above (an entering slot only counts as matched if
no injection changed that side's published prices); rows from the first injection on are not
listed in ``mismatches`` (their differences are the point) and :class:`Divergence` measures
them. The book is then corrected towards history + ``delta`` (levels entering the window, stale
levels); ``Divergence.inconsistent`` counts hybrid rows that needed a correction inside the
window, which would mean the ``delta`` book-keeping failed (0 on the sample files). Liquidity
deeper than level N at the injection is the replay's stale memory, not data: the report says
how many lots an injected order took there (``beyond_window``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..events import INT64_MAX, Side
from ._lobster_replay import DUMMY_ASK_PRICE, DUMMY_BID_PRICE, EventType, Replayer
from .errors import DataError

__all__ = [
    "EventType", "LOBSTER_MESSAGE_DTYPE", "FILL_DTYPE", "DUMMY_ASK_PRICE", "DUMMY_BID_PRICE",
    "LobsterBook", "Injection", "InjectionReport", "Divergence", "ReplayResult", "DataError",
    "read_messages", "read_orderbook", "orderbook_path_for", "replay", "replay_files",
]

_EXACT_FLOAT = 2**53  # integers below this survive a float64 round trip


#: One LOBSTER message: time (s after midnight), type, order id, size (shares), price ($ x 10^4),
#: direction (side of the resting order: +1 bid, -1 ask).
LOBSTER_MESSAGE_DTYPE = np.dtype([
    ("time", "<f8"), ("type", "i1"), ("order_id", "<i8"), ("size", "<i8"), ("price", "<i8"),
    ("direction", "i1"),
])

#: One fill of an injected order: before which message row it happened (the row it shows in),
#: price (ticks), qty (lots), counterparty order id (0 = an anonymous historical taker), and
#: whether the injected order was the aggressor.
FILL_DTYPE = np.dtype([
    ("row", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("counterparty", "<i8"), ("aggressor", "?"),
])


class LobsterBook(NamedTuple):
    """The columns of a LOBSTER orderbook file as ``(rows, N)`` int64 arrays, best level first.

    Prices in ticks ($ x 10^4), sizes in shares; empty levels hold the dummy prices.
    """

    ask_price: np.ndarray
    ask_size: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray

    @property
    def levels(self) -> int:
        """N, the number of published levels per side."""
        return int(self.ask_price.shape[1])


# --------------------------------------------------------------------------- reading

def read_messages(path, *, nrows: int | None = None) -> np.ndarray:
    """Read a LOBSTER message file.

    Parameters
    ----------
    path : str or Path
        ``TICKER_DATE_START_END_message_N.csv`` (6 columns, no header).
    nrows : int, optional
        Read only the first ``nrows`` messages.

    Returns
    -------
    numpy.ndarray
        :data:`LOBSTER_MESSAGE_DTYPE` array. O(rows).

    Raises
    ------
    DataError
        A damaged file (not UTF-8, a missing or extra column, a value that is not a number or
        does not fit, a value out of range, times going backwards), naming the file, the row
        and the field of the first problem.
    OSError
        The file cannot be opened (missing, a directory, no permission).
    """
    path = Path(path)
    raw_dtype = [("time", "<f8")] + [(name, "<i8") for name in LOBSTER_MESSAGE_DTYPE.names[1:]]
    raw = _loadtxt(path, raw_dtype, nrows, "message")
    try:
        _check_messages(raw)
    except DataError as exc:
        raise exc.in_file(path) from None
    return raw.astype(LOBSTER_MESSAGE_DTYPE)


def read_orderbook(path, *, nrows: int | None = None) -> LobsterBook:
    """Read a LOBSTER orderbook file of any level N.

    Parameters
    ----------
    path : str or Path
        ``TICKER_DATE_START_END_orderbook_N.csv`` (4N integer columns, no header).
    nrows : int, optional
        Read only the first ``nrows`` rows.

    Returns
    -------
    LobsterBook
        ``(ask_price, ask_size, bid_price, bid_size)``, each ``(rows, N)`` int64. O(rows x N).

    Raises
    ------
    DataError, OSError
        As :func:`read_messages`; also rows that are crossed or whose levels do not run best
        first.
    """
    path = Path(path)
    data = _loadtxt(path, np.int64, nrows, "orderbook")
    if data.ndim == 1:
        data = data.reshape(1, -1)
    if data.shape[1] % 4:
        raise DataError(f"an orderbook file has 4 columns per level, got {data.shape[1]} "
                        f"columns", path=path)
    book = LobsterBook(*(np.ascontiguousarray(data[:, k::4]) for k in range(4)))
    try:
        _check_orderbook(book)
    except DataError as exc:
        raise exc.in_file(path) from None
    return book


def _loadtxt(path: Path, dtype, nrows, what: str) -> np.ndarray:
    if nrows is not None and (not _is_int(nrows) or not 1 <= nrows <= INT64_MAX):
        raise ValueError(f"nrows must be a positive integer (at most 2**63 - 1), got {nrows!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file: reported below
            data = np.loadtxt(path, delimiter=",", dtype=dtype, ndmin=1,
                              max_rows=None if nrows is None else int(nrows), encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not a LOBSTER {what} file: byte {exc.object[exc.start:exc.start + 1]!r}"
                        f" is not UTF-8", path=path) from None
    except ValueError as exc:
        # numpy's advice to pass usecols is for callers of loadtxt, not for a damaged file
        problem = str(exc).split("; use `usecols`")[0]
        raise DataError(f"not a LOBSTER {what} file: {problem}", path=path) from None
    if data.size == 0:
        raise DataError(f"the {what} file is empty", path=path)
    return data


def orderbook_path_for(message_path) -> Path:
    """The orderbook file beside a message file: the last ``message`` in the name becomes
    ``orderbook`` (LOBSTER naming: ``..._message_10.csv`` -> ``..._orderbook_10.csv``)."""
    message_path = Path(message_path)
    name = message_path.name
    at = name.rfind("message")
    if at < 0:
        raise ValueError(f"cannot find the orderbook file for {message_path}: its name has no "
                         f"'message' (pass orderbook_path explicitly)")
    return message_path.with_name(name[:at] + "orderbook" + name[at + len("message"):])


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if len(bad) else None


def _check_messages(msgs: np.ndarray) -> None:
    """ValueError naming the first row and field that is not a valid LOBSTER message."""
    kind, size, price = msgs["type"], msgs["size"], msgs["price"]
    book_changing = (kind >= EventType.SUBMISSION) & (kind <= EventType.EXECUTION)
    checks = (
        ("time", ~np.isfinite(msgs["time"]), "a finite number of seconds"),
        ("type", (kind < min(EventType)) | (kind > max(EventType)), "1..7 (EventType)"),
        ("direction", (msgs["direction"] != 1) & (msgs["direction"] != -1), "1 or -1"),
        ("order_id", msgs["order_id"] < 0, ">= 0"),
        ("size", book_changing & ((size < 1) | (size >= _EXACT_FLOAT)), ">= 1 for types 1-4"),
        ("price", book_changing & ((price < 1) | (price >= _EXACT_FLOAT)), ">= 1 for types 1-4"),
    )
    for name, mask, expected in checks:
        row = _first_bad(mask)
        if row is not None:
            raise DataError(f"messages[{row}]['{name}'] = {msgs[name][row].item()!r}; "
                            f"expected {expected}", row=row, field=name)
    row = _first_bad(np.diff(msgs["time"]) < 0)
    if row is not None:
        raise DataError(f"messages[{row + 1}]['time'] = {msgs['time'][row + 1].item()!r} is "
                        f"earlier than the message before it ({msgs['time'][row].item()!r})",
                        row=row + 1,
                        field="time")


def _check_orderbook(book: LobsterBook) -> None:
    shapes = {a.shape for a in book}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"orderbook arrays must be 2-D of one shape, got {sorted(shapes)}")
    for name, price, size, dummy in (("ask", book.ask_price, book.ask_size, DUMMY_ASK_PRICE),
                                     ("bid", book.bid_price, book.bid_size, DUMMY_BID_PRICE)):
        empty = price == dummy
        # Below 2**53, like message sizes and prices: the replay sums a level's orders and
        # compares with these, and the sums must stay far from int64's end.
        bad = np.argwhere((empty & (size != 0)) | (~empty & (
            (price < 1) | (price >= _EXACT_FLOAT) | (size < 1) | (size >= _EXACT_FLOAT))))
        if len(bad):
            row, level = (int(x) for x in bad[0])
            raise DataError(f"orderbook row {row}, {name} level {level + 1}: price "
                            f"{int(price[row, level])}, size {int(size[row, level])}; expected "
                            f"price and size in [1, 2**53), or the dummy price {dummy} and "
                            f"size 0", row=row, field=f"{name} level {level + 1}")
        # Levels run best first: asks strictly up, bids strictly down, empty levels last.
        step = np.diff(price, axis=1) * (1 if name == "ask" else -1)
        bad = np.argwhere((~empty[:, 1:] & (empty[:, :-1] | (step <= 0))))
        if len(bad):
            row, level = int(bad[0][0]), int(bad[0][1]) + 1
            raise DataError(f"orderbook row {row}, {name} level {level + 1}: price "
                            f"{int(price[row, level])} does not come after level {level} "
                            f"({int(price[row, level - 1])}); levels must run best first",
                            row=row, field=f"{name} level {level + 1}")
    both = (book.ask_size[:, 0] > 0) & (book.bid_size[:, 0] > 0)
    row = _first_bad(both & (book.ask_price[:, 0] <= book.bid_price[:, 0]))
    if row is not None:
        raise DataError(f"orderbook row {row} is crossed: best ask {int(book.ask_price[row, 0])}"
                        f" <= best bid {int(book.bid_price[row, 0])}", row=row,
                        field="ask level 1")


# --------------------------------------------------------------------------- injections

@dataclass(frozen=True)
class Injection:
    """A user order put into the historical book during a replay.

    Parameters
    ----------
    side : Side, int or str
        The injected order's side: ``Side.SELL`` / -1 / "sell" or ``Side.BUY`` / +1 / "buy".
    qty : int
        Lots (shares).
    kind : {"market", "limit"}
        A market order takes what it can and the rest is cancelled; a limit order takes what
        crosses ``price`` and rests with the remainder.
    price : int, optional
        Limit price in ticks ($ x 10^4); required for ``"limit"``, not allowed for ``"market"``.
    at : int, optional
        Message index: the order arrives just before message ``at`` (after row ``at - 1``).
    time : float, optional
        Seconds after midnight: the order arrives before the first message stamped ``>= time``.
        Give exactly one of ``at`` and ``time``.
    position : "back", "front" or int
        Where the resting part of a limit order joins its level's queue: the back (a normal
        arrival), the front, or that 0-based index (capped at the back).

    Examples
    --------
    >>> Injection(side="sell", qty=5_000, time=36_000.0).side
    <Side.SELL: -1>
    >>> Injection(side="buy", qty=100, kind="limit", price=2_241_000, at=500, position="front").at
    500
    """

    side: Side | int | str
    qty: int
    kind: str = "market"
    price: int | None = None
    at: int | None = None
    time: float | None = None
    position: str | int = "back"

    def __post_init__(self):
        side = self.side
        if isinstance(side, str):
            names = {"buy": Side.BUY, "bid": Side.BUY, "sell": Side.SELL, "ask": Side.SELL}
            if side.lower() not in names:
                raise ValueError(f"Injection.side = {side!r}; expected 'buy' or 'sell'")
            side = names[side.lower()]
        elif not _is_int(side):
            raise TypeError(f"Injection.side = {side!r}; expected +1, -1, 'buy' or 'sell'")
        elif side not in (1, -1):
            raise ValueError(f"Injection.side = {side!r}; expected +1 (buy) or -1 (sell)")
        object.__setattr__(self, "side", Side(int(side)))
        if not _is_int(self.qty):
            raise TypeError(f"Injection.qty = {self.qty!r}; expected an integer number of lots")
        if not 1 <= self.qty <= INT64_MAX:
            raise ValueError(f"Injection.qty = {self.qty!r}; expected 1 to 2**63 - 1 lots")
        if self.kind not in ("market", "limit"):
            raise ValueError(f"Injection.kind = {self.kind!r}; expected 'market' or 'limit'")
        if self.kind == "limit":
            if not _is_int(self.price):
                raise TypeError(f"Injection.price = {self.price!r}; a limit order needs an "
                                f"integer price in ticks")
            if not 1 <= self.price <= INT64_MAX:
                raise ValueError(f"Injection.price = {self.price!r}; expected 1 to 2**63 - 1 "
                                 f"ticks")
        elif self.price is not None:
            raise ValueError(f"Injection.price = {self.price!r}; a market order has no price")
        if (self.at is None) == (self.time is None):
            raise ValueError(f"Injection needs exactly one of at (message index) and time "
                             f"(seconds), got at={self.at!r}, time={self.time!r}")
        if self.at is not None:
            if not _is_int(self.at):
                raise TypeError(f"Injection.at = {self.at!r}; expected a message index")
            if self.at < 0:
                raise ValueError(f"Injection.at = {self.at!r}; expected >= 0")
        elif isinstance(self.time, bool) or not isinstance(self.time, (int, float, np.number)) \
                or not math.isfinite(self.time):
            raise TypeError(f"Injection.time = {self.time!r}; expected finite seconds after "
                            f"midnight")
        position = self.position
        if isinstance(position, str):
            if position not in ("back", "front"):
                raise ValueError(f"Injection.position = {position!r}; expected 'back', 'front' "
                                 f"or a queue index")
        elif not _is_int(position):
            raise TypeError(f"Injection.position = {position!r}; expected 'back', 'front' or "
                            f"a queue index")
        elif position < 0:
            raise ValueError(f"Injection.position = {position!r}; expected a queue index >= 0")


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
    """The outcome of :func:`replay` (see the module notes for the definitions).

    Counts
    ------
    ``n_rows`` rows; ``n_matched`` = ``n_exact`` (no correction needed) + ``n_entering``
    (matched after a window-entering resync); ``match_rate`` = n_matched / n_rows;
    ``mismatches`` lists ``(row, description)`` for rows before the first injection.
    ``n_resync`` levels resynchronised, of which ``n_resync_entering`` window-entering and
    ``n_resync_inside`` inside the window (mismatches). ``n_unknown`` messages named an id never
    submitted; ``n_reattributed`` shortfalls or excesses were moved to other liquidity at the
    level; ``n_dropped`` found nothing to act on; ``n_reconciled`` were cut down or dropped
    because injected orders took that liquidity; ``n_crossed`` historical submissions traded.

    Series (one entry per row)
    --------------------------
    ``time`` seconds after midnight; ``best_bid``, ``best_ask`` ticks (0 = empty side);
    ``spread`` ticks (0 when a side is empty); ``bid_depth``, ``ask_depth`` lots in the N
    levels; ``matched`` and ``exact`` flags; ``ask_price``, ``ask_size``, ``bid_price``,
    ``bid_size`` the replayed book's N levels (``(rows, N)``, after that row's resync, dummies
    as in the file).
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


# --------------------------------------------------------------------------- replay

def replay(messages: np.ndarray, orderbook, *, inject=(), book_cls=None) -> ReplayResult:
    """Replay LOBSTER messages into an order book and compare it with the orderbook file.

    Parameters
    ----------
    messages : numpy.ndarray
        :data:`LOBSTER_MESSAGE_DTYPE` (or any array with its field names), as from
        :func:`read_messages`.
    orderbook : LobsterBook or 4-tuple of arrays
        ``(ask_price, ask_size, bid_price, bid_size)``, each ``(len(messages), N)``.
    inject : iterable of Injection
        User orders to put into the book (hybrid replay; see the module notes).
    book_cls : class, optional
        Order book class with the :class:`orderbook.OrderBook` API; default the compiled one
        (``orderbook.reference.OrderBook`` gives the same result, slower).

    Returns
    -------
    ReplayResult
        O(messages x N) plus O(book) per correction.

    Examples
    --------
    Row 0 shows 15 shares bid at 100 after order 7 added 5, so the seed holds the other 10:

    >>> import numpy as np
    >>> from orderbook.data.lobster import LOBSTER_MESSAGE_DTYPE, LobsterBook, replay
    >>> msgs = np.array([(34200.0, 1, 7, 5, 100, 1)], dtype=LOBSTER_MESSAGE_DTYPE)
    >>> book = LobsterBook(*(np.array([[x]]) for x in (101, 10, 100, 15)))
    >>> result = replay(msgs, book)
    >>> result.n_exact, result.spread.tolist(), result.bid_depth.tolist()
    (1, [1], [15])
    """
    messages, book = _check_inputs(messages, orderbook)
    inject = tuple(inject) if not isinstance(inject, Injection) else (inject,)
    for k, inj in enumerate(inject):
        if not isinstance(inj, Injection):
            raise TypeError(f"inject[{k}] = {inj!r}; expected an Injection")
    if book_cls is None:
        from ..book import OrderBook as book_cls
    engine = Replayer(messages, book, inject, book_cls)
    seconds = engine.run()
    return _result(engine, inject, seconds)


def replay_files(message_path, orderbook_path=None, *, nrows: int | None = None, inject=(),
                 book_cls=None) -> ReplayResult:
    """:func:`replay` of a LOBSTER file pair.

    Parameters
    ----------
    message_path : str or Path
        The message file.
    orderbook_path : str or Path, optional
        The orderbook file; by default the one :func:`orderbook_path_for` names.
    nrows : int, optional
        Replay only the first ``nrows`` messages.
    inject, book_cls
        As for :func:`replay`.

    Examples
    --------
    A forced market sell of 5,000 shares at 10:00 into the AMZN sample day:

    >>> from orderbook.data.lobster import Injection, replay_files
    >>> day = "AMZN_2012-06-21_34200000_57600000_message_1.csv"
    >>> plain = replay_files(day)  # doctest: +SKIP
    >>> plain.match_rate  # doctest: +SKIP
    1.0
    >>> forced = Injection(side="sell", qty=5_000, time=10 * 3600)
    >>> print(replay_files(day, inject=[forced]).summary())  # doctest: +SKIP
    """
    if orderbook_path is None:
        orderbook_path = orderbook_path_for(message_path)
    messages = read_messages(message_path, nrows=nrows)
    book = read_orderbook(orderbook_path, nrows=nrows)
    if book.ask_price.shape[0] != len(messages):
        raise DataError(f"{len(messages)} messages but {book.ask_price.shape[0]} orderbook rows "
                        f"in {orderbook_path}; the files must have one row per message",
                        path=message_path)
    try:
        return replay(messages, book, inject=inject, book_cls=book_cls)
    except DataError as exc:  # a message the book refuses (a live id resubmitted, ...)
        raise (exc if exc.path is not None else exc.in_file(message_path)) from None


def _check_inputs(messages, orderbook) -> tuple[np.ndarray, LobsterBook]:
    if not isinstance(messages, np.ndarray) or messages.dtype.names is None:
        raise TypeError(f"messages must be a structured numpy array (read_messages), got "
                        f"{type(messages).__name__}")
    missing = [f for f in LOBSTER_MESSAGE_DTYPE.names if f not in messages.dtype.names]
    if missing:
        raise TypeError(f"messages lack the field(s) {missing}; expected {LOBSTER_MESSAGE_DTYPE}")
    if messages.ndim != 1 or len(messages) == 0:
        raise ValueError(f"messages must be a non-empty 1-D array, got shape {messages.shape}")
    for name in LOBSTER_MESSAGE_DTYPE.names[1:]:
        if messages.dtype[name].kind not in "iu":
            raise TypeError(f"messages['{name}'] must be integers, got {messages.dtype[name]}")
    _check_messages(messages)
    messages = messages.astype(LOBSTER_MESSAGE_DTYPE)
    if not isinstance(orderbook, tuple) or len(orderbook) != 4:
        raise TypeError("orderbook must be a LobsterBook or a tuple (ask_price, ask_size, "
                        "bid_price, bid_size)")
    arrays = []
    for name, a in zip(LobsterBook._fields, orderbook):
        a = np.asarray(a)
        if a.dtype.kind not in "iu":
            raise TypeError(f"orderbook.{name} must be integers, got {a.dtype}")
        arrays.append(a.astype(np.int64))
    book = LobsterBook(*arrays)
    _check_orderbook(book)
    if book.ask_price.shape[0] != len(messages) or book.levels < 1:
        raise ValueError(f"orderbook has shape {book.ask_price.shape}; expected one row per "
                         f"message ({len(messages)}) and at least one level")
    return messages, book


def _result(engine: Replayer, inject, seconds: float) -> ReplayResult:
    ours, n = engine.ours, engine.n
    ours[engine.exact] = engine.file[engine.exact]  # exact rows were not stored by the loop
    ask_px, ask_sz = ours[:, 0::4], ours[:, 1::4]
    bid_px, bid_sz = ours[:, 2::4], ours[:, 3::4]
    best_ask = np.where(ask_sz[:, 0] > 0, ask_px[:, 0], 0)
    best_bid = np.where(bid_sz[:, 0] > 0, bid_px[:, 0], 0)
    spread = np.where((best_ask > 0) & (best_bid > 0), best_ask - best_bid, 0)
    n_matched = int(engine.matched.sum())
    return ReplayResult(
        levels=engine.levels, n_rows=n, n_matched=n_matched, n_exact=int(engine.exact.sum()),
        n_entering=int(engine.n_entering), match_rate=n_matched / n,
        mismatches=tuple(engine.mismatches), n_unknown=engine.n_unknown,
        n_resync=engine.n_resync_entering + engine.n_resync_inside,
        n_resync_entering=engine.n_resync_entering, n_resync_inside=engine.n_resync_inside,
        n_reattributed=int(engine.n_reattributed), n_dropped=int(engine.n_dropped),
        n_reconciled=int(engine.n_reconciled), n_crossed=int(engine.n_crossed),
        messages_per_second=n / seconds if seconds > 0 else math.inf, seconds=seconds,
        time=engine.msgs["time"].copy(), best_bid=best_bid, best_ask=best_ask, spread=spread,
        bid_depth=bid_sz.sum(axis=1), ask_depth=ask_sz.sum(axis=1),
        matched=engine.matched, exact=engine.exact,
        ask_price=np.ascontiguousarray(ask_px), ask_size=np.ascontiguousarray(ask_sz),
        bid_price=np.ascontiguousarray(bid_px), bid_size=np.ascontiguousarray(bid_sz),
        injections=tuple(_report(engine, k) for k in range(len(inject))),
        divergence=_divergence(engine, best_bid, best_ask),
    )


def _report(engine: Replayer, k: int) -> InjectionReport:
    inj, arrival = engine.inject[k], engine.arrival[k]
    fills = np.array(engine.fills[k], dtype=FILL_DTYPE).reshape(-1)
    filled = int(fills["qty"].sum())
    notional = sum(int(p) * int(q) for p, q in zip(fills["price"], fills["qty"]))  # exact
    avg = notional / filled if filled else math.nan
    touch = arrival["touch"]
    slippage = (touch - avg if inj.side == Side.SELL else avg - touch) if touch else math.nan
    oid = arrival["order_id"]
    resting = engine.book.order(oid).qty if oid in engine.book else 0
    return InjectionReport(
        injection=inj, order_id=oid, row=arrival["row"], touch_before=touch, filled=filled,
        notional=notional, avg_price=avg, slippage=slippage, levels=arrival["levels"],
        beyond_window=arrival["beyond"], resting=int(resting), fills=fills)


def _divergence(engine: Replayer, best_bid, best_ask) -> Divergence | None:
    if engine.first_injection is None:
        return None
    r0 = engine.first_injection
    file = engine.file[r0:]
    stats = []
    for ours, px, sz in ((best_bid[r0:], file[:, 2], file[:, 3]),
                         (best_ask[r0:], file[:, 0], file[:, 1])):
        both = (ours > 0) & (sz > 0)
        d = np.abs(ours[both] - px[both])
        stats.append((float(d.mean()) if len(d) else 0.0, int(d.max()) if len(d) else 0,
                      int(((ours == 0) & (sz > 0)).sum())))
    return Divergence(first_row=r0, rows=engine.n - r0, matched=int(engine.matched[r0:].sum()),
                      inconsistent=len(engine.inconsistent),
                      mean_abs_bid_diff=stats[0][0], mean_abs_ask_diff=stats[1][0],
                      max_abs_bid_diff=stats[0][1], max_abs_ask_diff=stats[1][1],
                      empty_bid_rows=stats[0][2], empty_ask_rows=stats[1][2])
