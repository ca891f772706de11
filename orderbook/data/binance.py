"""Binance USD-M futures depth captures: read them, rebuild the L2 book, check it, seed a scenario.

A capture is a text file (gzip or plain), one message a line: the local receive time in
nanoseconds, a space, then the raw JSON. Websocket messages are combined-stream envelopes
(``{"stream": ..., "data": ...}``) of ``depthUpdate``, ``bookTicker`` and ``trade`` events; the REST
depth snapshot (``{"lastUpdateId", "E", "T", "bids", "asks"}``) sits on a line of its own, at the
time it was received. This is the layout of hftbacktest's collector.

The book is rebuilt following Binance's documented procedure for USD-M futures ("How to manage a
local order book correctly", developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams/How-to-manage-a-local-order-book-correctly), which differs from spot:

1. diffs received before the snapshot are buffered;
2. any diff with ``u < lastUpdateId`` of the snapshot is dropped (stale);
3. the first diff applied must have ``U <= lastUpdateId <= u``;
4. each later diff's ``pu`` must equal the previous diff's ``u``, otherwise updates were lost
   and the book must be re-initialised from a new snapshot;
5. quantities are absolute; a quantity of 0 removes the level (removing an absent level is
   normal).

The stream ``<symbol>@depth@0ms`` is not among the documented speeds (250, 500, 100 ms); the
rules above hold for it all the same. In the shared BTCUSDT capture (2024-08-08, 94k lines, 345 s)
its diffs arrive every 52 ms (median), each bundling ~2,900 update ids and 34 level changes; the
pu chain has no gap, the 4 diffs before the snapshot are stale, the first kept diff straddles
lastUpdateId, and the rebuilt touch equals the bookTicker stream at every diff boundary (see
:class:`TickerCheck`). The collector's clock ran ~1.27 s behind the exchange's ``E``: do not mix
local and exchange times.

Units: prices in integer ticks, quantities in integer lots (``tick_size``/``lot_size`` in quote and
base units, BTCUSDT: 0.1 USDT and 0.001 BTC), times in ns (local) or ms (exchange ``E``/``T``).
Decimal strings are converted exactly (string arithmetic, never floats).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import zlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum

import numpy as np

from ..events import INT64_MAX, Side
from .errors import DataError, DataTypeError
from .l2 import L2Book

__all__ = [
    "DIFF_DTYPE", "LEVEL_DTYPE", "BOOK_TICKER_DTYPE", "TRADE_DTYPE", "STATE_DTYPE", "GAP_DTYPE",
    "DISAGREEMENT_DTYPE", "StateKind", "GapKind", "Snapshot", "Capture", "L2Book", "Replay",
    "TickerCheck", "DataError", "DataTypeError",
    "DecimalGrid", "read_capture", "parse_lines", "replay",
]

# ------------------------------------------------------------------------------ record layouts
#: One ``depthUpdate``: ``first_id``/``last_id``/``prev_id`` are Binance's U/u/pu; its level
#: updates are ``Capture.levels[start:stop]``. ``line`` is 1-based in the capture.
DIFF_DTYPE = np.dtype([
    ("line", "<i8"), ("local_ns", "<i8"), ("event_ms", "<i8"), ("transact_ms", "<i8"),
    ("first_id", "<i8"), ("last_id", "<i8"), ("prev_id", "<i8"), ("start", "<i8"),
    ("stop", "<i8"),
])

#: One level update of a diff: side (+1 bid, -1 ask), price (ticks), absolute quantity (lots).
LEVEL_DTYPE = np.dtype([("side", "i1"), ("price", "<i8"), ("qty", "<i8")])

#: One ``bookTicker``: best bid/ask price (ticks) and quantity (lots) as of ``update_id`` (u).
BOOK_TICKER_DTYPE = np.dtype([
    ("line", "<i8"), ("local_ns", "<i8"), ("event_ms", "<i8"), ("transact_ms", "<i8"),
    ("update_id", "<i8"), ("bid_price", "<i8"), ("bid_qty", "<i8"), ("ask_price", "<i8"),
    ("ask_qty", "<i8"),
])

#: One ``trade``: price (ticks), quantity (lots), aggressor side (+1 buy, -1 sell; Binance's
#: ``m`` = buyer is maker means the seller took liquidity).
TRADE_DTYPE = np.dtype([
    ("line", "<i8"), ("local_ns", "<i8"), ("event_ms", "<i8"), ("transact_ms", "<i8"),
    ("trade_id", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("side", "i1"),
])

#: One state of the rebuilt book, in the order the states were reached. ``local_ns`` is when the
#: state became known locally (a buffered diff takes its snapshot's receive time) and
#: ``event_ms`` the exchange event time, both made non-decreasing; ``update_id`` is the last
#: update id the state includes (u of a diff, lastUpdateId of a snapshot; a GAP row holds the
#: first id missing); ``segment`` is the row of the snapshot the state grew from. Best prices in
#: ticks, quantities in lots, 0 for an empty side. A GAP row marks where the book stopped being
#: valid.
STATE_DTYPE = np.dtype([
    ("kind", "i1"), ("source", "<i8"), ("line", "<i8"), ("local_ns", "<i8"),
    ("event_ms", "<i8"), ("update_id", "<i8"), ("segment", "<i8"), ("best_bid", "<i8"),
    ("best_bid_qty", "<i8"), ("best_ask", "<i8"), ("best_ask_qty", "<i8"),
    ("bid_levels", "<i8"), ("ask_levels", "<i8"),
])

#: One break in the update-id sequence: ``expected`` the id the rules required (previous u for a
#: SEQUENCE gap, the snapshot's lastUpdateId for a BRIDGE gap), ``got`` the id received (pu, or U).
GAP_DTYPE = np.dtype([
    ("kind", "i1"), ("line", "<i8"), ("local_ns", "<i8"), ("expected", "<i8"), ("got", "<i8"),
])


class StateKind(IntEnum):
    """What produced a row of :data:`STATE_DTYPE`."""

    SNAPSHOT = 1  #: a REST snapshot was loaded
    DIFF = 2      #: a depth diff was applied
    GAP = 3       #: the sequence broke; no valid book until the next snapshot


class GapKind(IntEnum):
    """Which sequence rule a :data:`GAP_DTYPE` row broke."""

    SEQUENCE = 1  #: a diff's pu is not the previous diff's u (updates were lost)
    BRIDGE = 2    #: the first diff kept after a snapshot does not have U <= lastUpdateId <= u


# ------------------------------------------------------------------------- decimal conversion
class DecimalGrid:
    """Exact conversion of decimal strings to integer multiples of ``step``.

    ``"61800.20"`` on a 0.1 grid is 618002; ``"61800.25"`` is a ValueError. Parsing splits the
    string at the point and works on integers, so no float ever rounds a price. O(len(text)).

    Parameters
    ----------
    step : str or Decimal
        Grid step in quote units (prices) or base units (quantities), > 0.
    name : str
        What the grid measures ("price", "qty"), used in error messages.
    """

    def __init__(self, step, name: str, *, positive: bool = False):
        try:
            value = Decimal(str(step))
        except InvalidOperation:
            raise ValueError(f"{name} step must be a decimal number, got {step!r}") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{name} step must be a finite number > 0, got {step!r}")
        # step = units * 10**-places, with units an integer
        places = max(0, -value.normalize().as_tuple().exponent)
        if places > _MAX_PLACES or value.adjusted() > _MAX_PLACES:
            # Finer or coarser than that, no real price or size is a whole int64 of steps (and
            # a step of 1e-999999 would make every parse build a million-digit integer).
            raise ValueError(f"{name} step must be between 1e-{_MAX_PLACES} and "
                             f"1e{_MAX_PLACES}, got {step!r}")
        self.step = value
        self.name = name
        self.positive = positive
        self.places = places
        self.units = int(value.scaleb(places))

    def __call__(self, text) -> int:
        """Return ``text`` (a non-negative decimal string) in steps; ValueError if off-grid."""
        if not isinstance(text, str):
            raise TypeError(f"{self.name} must be a decimal string, got {text!r} "
                            f"({type(text).__name__})")
        whole, _, frac = text.partition(".")
        if not (whole.isascii() and whole.isdigit() and (not frac or (frac.isascii()
                                                                      and frac.isdigit()))):
            raise ValueError(f"{self.name} must be a non-negative decimal string, got {text!r}")
        if len(frac) > self.places:
            if frac[self.places:].strip("0"):
                raise ValueError(f"{self.name} {text!r} is not on the {self.step} grid")
            frac = frac[:self.places]
        if len(whole.lstrip("0")) > _MAX_DIGITS:
            raise ValueError(f"{self.name} {text:.40}... has more than {_MAX_DIGITS} digits")
        count, rest = divmod(int(whole + frac.ljust(self.places, "0")), self.units)
        if rest:
            raise ValueError(f"{self.name} {text!r} is not on the {self.step} grid")
        if count > INT64_MAX:
            raise ValueError(f"{self.name} {text!r} is {count} steps of {self.step}, more than "
                             f"an int64 holds")
        if self.positive and not count:
            raise ValueError(f"{self.name} must be > 0, got {text!r}")
        return count


# A step needs at most 18 decimal places (and at most 18 digits before the point): int64 counts
# 9.2e18 steps, so anything finer leaves no room for a real price.
_MAX_PLACES = 18
_MAX_DIGITS = 40  # digits of a decimal string's whole part; more cannot fit an int64 of steps


# ---------------------------------------------------------------------------------- capture
@dataclass(frozen=True)
class Snapshot:
    """A REST depth snapshot: ``bids``/``asks`` as (n, 2) int64 arrays of (price ticks, lots),
    best first, as Binance sent them; ``last_update_id`` is its lastUpdateId."""

    line: int
    local_ns: int
    event_ms: int
    transact_ms: int
    last_update_id: int
    bids: np.ndarray
    asks: np.ndarray


@dataclass(frozen=True)
class Capture:
    """A parsed capture: every message kind as a numpy structured array, in file order.

    Attributes
    ----------
    tick_size, lot_size : Decimal
        Price step (quote units) and quantity step (base units) of the integer conversion.
    symbol : str or None
        The symbol of the websocket messages (all must agree).
    lines : int
        Non-empty lines read.
    snapshots : tuple of Snapshot
    diffs : ndarray of DIFF_DTYPE
    levels : ndarray of LEVEL_DTYPE
        Level updates of all diffs, concatenated; diff i owns ``levels[start:stop]``.
    book_tickers : ndarray of BOOK_TICKER_DTYPE
    trades : ndarray of TRADE_DTYPE
    other : int
        Lines of other event types (kept out of the book; counted so nothing vanishes silently).
    source : str or None
        The file read (:func:`read_capture`), named in errors about the capture.
    """

    tick_size: Decimal
    lot_size: Decimal
    symbol: str | None
    lines: int
    snapshots: tuple
    diffs: np.ndarray
    levels: np.ndarray
    book_tickers: np.ndarray
    trades: np.ndarray
    other: int
    source: str | None = None


def read_capture(path, *, tick_size="0.1", lot_size="0.001") -> Capture:
    """Read a capture file, gzip-compressed (detected by its magic bytes) or plain text.

    Parameters
    ----------
    path : str or os.PathLike
    tick_size, lot_size : str or Decimal
        Price step in quote units and quantity step in base units (BTCUSDT: 0.1 and 0.001).

    Returns
    -------
    Capture

    Raises
    ------
    DataError
        A damaged file: a truncated or corrupted gzip stream, bytes that are not UTF-8, or any
        line :func:`parse_lines` refuses; the message names the file and the line.
    OSError
        The file cannot be opened (missing, a directory, no permission).

    Examples
    --------
    >>> capture = read_capture("usdm_btcusdt_20240808.gz")            # doctest: +SKIP
    >>> len(capture.diffs), len(capture.book_tickers)                  # doctest: +SKIP
    (6551, 66089)
    """
    path = os.fspath(path)
    # One read and one split: the whole capture (28 MB for ~6 minutes of BTCUSDT) is parsed in
    # memory faster than line-by-line file iteration.
    with open(path, "rb") as handle:
        body = handle.read()
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(f"damaged gzip stream: {exc}", path=path) from exc
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise DataError(f"byte {body[exc.start:exc.start + 1]!r} is not UTF-8", path=path,
                        line=line) from None
    try:
        capture = parse_lines(text.split("\n"), tick_size=tick_size, lot_size=lot_size)
    except DataError as exc:
        raise exc.in_file(path) from exc.__cause__
    return dataclasses.replace(capture, source=path)


def parse_lines(lines, *, tick_size="0.1", lot_size="0.001") -> Capture:
    """Parse capture lines (bytes or str, ``"<local ns> <json>"``); see :func:`read_capture`.

    O(characters); decimal strings are collected raw and converted column by column at the end,
    each distinct string once, which is what keeps 440,000 level updates cheap.

    Raises
    ------
    DataError
        A line without a timestamp, bytes that are not UTF-8, bad JSON, a missing field, an id
        or time that is not an integer in [0, 2**63), a price that is not > 0, a price or
        quantity off the grid or too large for an int64 of steps, or messages of two symbols;
        the message names the line (1-based) and the field. :class:`DataTypeError` (also a
        TypeError) when a field has the wrong JSON type (a number for a decimal string, ...).
    ValueError
        ``tick_size`` or ``lot_size`` is not a usable step.
    """
    price = DecimalGrid(tick_size, "price", positive=True)
    qty = DecimalGrid(lot_size, "qty")
    diffs, bid_counts, tickers, trades, snapshots = [], [], [], [], []
    level_price, level_qty = [], []
    symbol, count, other = None, 0, 0
    for number, raw in enumerate(lines, start=1):
        try:
            if isinstance(raw, bytes):
                raw = raw.decode()
            raw = raw.strip()
            if not raw:
                continue
            count += 1
            stamp, _, body = raw.partition(" ")
            local_ns = _timestamp(stamp)
            body = body.lstrip()
            message, end = _decode(body)
            if end != len(body):
                raise ValueError(f"extra data after the JSON object at column {end}")
            if not isinstance(message, dict):
                raise ValueError(f"expected a JSON object, got {type(message).__name__}")
            data = message["data"] if "stream" in message else message
            if not isinstance(data, dict):
                raise ValueError(f"field 'data' must be a JSON object, got {data!r:.60}")
            event = data.get("e")
            if event is None and "lastUpdateId" in data:
                snapshots.append(_snapshot(number, local_ns, data, price, qty))
                continue
            if not isinstance(event, str) or event not in _EVENTS:
                other += 1
                continue
            if symbol != data["s"]:
                if not isinstance(data["s"], str):
                    raise DataTypeError(f"field 's' must be a string, got {data['s']!r:.60}")
                if symbol is not None:
                    raise ValueError(f"symbol {data['s']!r} differs from {symbol!r} of earlier "
                                     f"lines")
                symbol = data["s"]
            if event == "depthUpdate":
                start = len(level_price)
                bids, asks = data["b"], data["a"]
                for key, pairs in (("b", bids), ("a", asks)):
                    _check_pairs(key, pairs)
                    if pairs:
                        prices, qtys = zip(*pairs, strict=True)
                        level_price += prices
                        level_qty += qtys
                bid_counts.append(len(bids))
                diffs.append((number, local_ns, *_ints(data, "E", "T", "U", "u", "pu"), start,
                              len(level_price)))
            elif event == "bookTicker":
                tickers.append((number, local_ns, *_ints(data, "E", "T", "u"), data["b"],
                                data["B"], data["a"], data["A"]))
            else:
                if not isinstance(data["m"], bool):
                    raise DataTypeError(f"field 'm' must be true or false, got "
                                        f"{data['m']!r:.60}")
                trades.append((number, local_ns, *_ints(data, "E", "T", "t"), data["p"],
                               data["q"], Side.SELL if data["m"] else Side.BUY))
        except DataError as exc:
            raise type(exc)(exc.problem, line=number, field=exc.field) from exc
        except KeyError as exc:
            raise DataError(f"missing field {exc}", line=number, field=str(exc.args[0])) from exc
        except TypeError as exc:
            raise DataTypeError(str(exc), line=number) from exc
        except ValueError as exc:  # bad timestamp, bad JSON, a malformed level, not UTF-8
            raise DataError(str(exc), line=number) from exc
        except RecursionError:
            raise DataError("JSON nested too deeply", line=number) from None

    diff_array = np.array(diffs, dtype=DIFF_DTYPE)

    def level_line(i: int) -> int:  # the line of the diff holding level update i
        return int(diff_array["line"][np.searchsorted(diff_array["stop"], i, side="right")])

    levels = np.zeros(len(level_price), dtype=LEVEL_DTYPE)
    levels["price"] = _column(level_price, price, level_line)
    levels["qty"] = _column(level_qty, qty, level_line)
    # Each diff's bids come first, then its asks: one run of +1s and one of -1s per diff.
    bid_counts = np.array(bid_counts, dtype=np.int64)
    runs = np.column_stack([bid_counts, diff_array["stop"] - diff_array["start"] - bid_counts])
    levels["side"] = np.repeat(np.tile(np.array([Side.BUY, Side.SELL], dtype=np.int8),
                                       len(diffs)), runs.ravel())
    return Capture(price.step, qty.step, symbol, count, tuple(snapshots), diff_array, levels,
                   _table(tickers, BOOK_TICKER_DTYPE, price, qty),
                   _table(trades, TRADE_DTYPE, price, qty), other)


_EVENTS = ("depthUpdate", "bookTicker", "trade")
# raw_decode skips json.loads' encoding detection and whitespace regexes: twice as fast per line.
_decode = json.JSONDecoder().raw_decode
# Which columns of a table hold decimal strings, and on which grid.
_DECIMALS = {"bid_price": "price", "ask_price": "price", "price": "price", "bid_qty": "qty",
             "ask_qty": "qty", "qty": "qty"}


def _check_pairs(key: str, pairs) -> None:
    if not isinstance(pairs, list) or pairs and set(map(_length, pairs)) != {2}:
        raise ValueError(f"field {key!r} must be a list of [price, qty] pairs, got {pairs!r:.80}")


def _timestamp(stamp: str) -> int:
    """The local receive time (ns) that starts a line: ASCII digits, within int64."""
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 19 or int(stamp) > INT64_MAX:
        raise DataError(f"the line must start with a local time in ns (digits, < 2**63), got "
                        f"{stamp[:40]!r}", field="local_ns")
    return int(stamp)


def _ints(data: dict, *keys: str) -> list[int]:
    """Integer fields (ids, exchange times in ms) of a message, each in [0, 2**63)."""
    out = []
    for key in keys:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataTypeError(f"field {key!r} must be an integer, got {value!r:.60}", field=key)
        if not 0 <= value <= INT64_MAX:
            raise DataError(f"field {key!r} = {value!r:.60} is outside [0, 2**63)", field=key)
        out.append(value)
    return out


def _length(item) -> int:
    return len(item) if isinstance(item, list) else -1


def _column(texts: list, grid: DecimalGrid, line_of=None) -> np.ndarray:
    """``texts`` converted on ``grid``: each distinct string parsed once, the rest looked up.

    ``line_of(i)`` names the line of element i in error messages.
    """
    # First-seen order, so the first bad value is reported. A value of the wrong type is not
    # hashable if it is a list or an object: those are checked (and refused) where they stand.
    first = {}
    for k, text in enumerate(texts):
        if not isinstance(text, str):
            _grid_value(grid, text, line_of(k) if line_of else None)
        first.setdefault(text, k)
    memo = {text: _grid_value(grid, text, line_of(k) if line_of else None)
            for text, k in first.items()}
    return np.fromiter(map(memo.__getitem__, texts), dtype=np.int64, count=len(texts))


def _grid_value(grid: DecimalGrid, text, line: int | None) -> int:
    try:
        return grid(text)
    except TypeError as exc:
        raise DataTypeError(str(exc), line=line, field=grid.name) from None
    except ValueError as exc:
        raise DataError(str(exc), line=line, field=grid.name) from None


def _table(rows: list, dtype: np.dtype, price: DecimalGrid, qty: DecimalGrid) -> np.ndarray:
    out = np.zeros(len(rows), dtype=dtype)
    if not rows:
        return out
    lines = [row[0] for row in rows]
    for name, column in zip(dtype.names, zip(*rows, strict=True), strict=True):
        if name in _DECIMALS:
            grid = price if _DECIMALS[name] == "price" else qty
            out[name] = _column(list(column), grid, lines.__getitem__)
        else:
            out[name] = column
    return out


def _snapshot(number: int, local_ns: int, data: dict, price: DecimalGrid,
              qty: DecimalGrid) -> Snapshot:
    """A REST snapshot's fields; errors carry no line (the caller adds it)."""
    sides = []
    for key in ("bids", "asks"):
        pairs = data[key]
        _check_pairs(key, pairs)
        out = np.zeros((len(pairs), 2), dtype=np.int64)
        if pairs:
            prices, qtys = zip(*pairs, strict=True)
            out[:, 0] = _column(list(prices), price)
            out[:, 1] = _column(list(qtys), qty)
        sides.append(out)
    times = {"E": 0, "T": 0, **{k: data[k] for k in ("E", "T") if k in data}}
    event_ms, transact_ms, last_update_id = _ints({**times, "lastUpdateId": data["lastUpdateId"]},
                                                  "E", "T", "lastUpdateId")
    return Snapshot(number, local_ns, event_ms, transact_ms, last_update_id, sides[0], sides[1])


# -------------------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class TickerCheck:
    """Best bid/ask of the rebuilt book against the ``bookTicker`` stream.

    bookTicker ``u`` ("order book updateId") and depth ``U``/``u`` number the same sequence of
    book updates, but a depth@0ms diff bundles every update in (pu, u] while a bookTicker is
    pushed for each change of the touch. The book is known only at diff boundaries, so a
    bookTicker is compared with the state after the diff whose (pu, u] holds its id. That
    comparison is exact only when no later update in the same diff moved the touch again, i.e.
    for the **last** bookTicker of each diff (``final``); an earlier one (``superseded``)
    describes an intermediate touch the depth stream never shows, and is reported but expected to
    disagree sometimes. bookTickers outside the valid book (before the first snapshot, after the
    last diff, inside a gap) are ``uncovered``.

    On the shared capture: 629 of 66,056 checked bookTickers have an id equal to a diff's u; the
    5,702 final ones all agree on price and quantity, as do all 6,546 book states with the
    prevailing bookTicker; over all bookTickers 80.2 % agree on price and 9.3 % on price and
    quantity, the rest being intermediate touches inside a bundled diff.

    ``state_*`` checks the other direction: every book state against the latest bookTicker at or
    before its update id (the touch prevailing then, as the bookTicker stream pushes every change).

    ``on_boundary`` counts the checked bookTickers whose id is exactly a state's update id. Rates
    are agreed / checked (NaN when nothing was checked); price-only compares both prices, full
    also both quantities.
    """

    checked: int
    price_agreed: int
    full_agreed: int
    on_boundary: int
    final: int
    final_price_agreed: int
    final_full_agreed: int
    superseded: int
    superseded_price_agreed: int
    superseded_full_agreed: int
    uncovered: int
    state_checked: int
    state_price_agreed: int
    state_full_agreed: int
    disagreements: np.ndarray

    @property
    def price_rate(self) -> float:
        """Share of checked bookTickers whose bid and ask prices agree."""
        return self.price_agreed / self.checked if self.checked else float("nan")

    @property
    def full_rate(self) -> float:
        """Share of checked bookTickers agreeing on both prices and both quantities."""
        return self.full_agreed / self.checked if self.checked else float("nan")

    @property
    def final_full_rate(self) -> float:
        """Full agreement among the last bookTicker of each diff (the exact comparison)."""
        return self.final_full_agreed / self.final if self.final else float("nan")

    @property
    def state_full_rate(self) -> float:
        """Share of book states whose touch equals the prevailing bookTicker's."""
        return (self.state_full_agreed / self.state_checked if self.state_checked
                else float("nan"))


#: A bookTicker that disagrees with the book state it was compared with (``state`` is the row of
#: ``Replay.states``); ``final`` says whether it was the last bookTicker of its diff.
DISAGREEMENT_DTYPE = np.dtype([
    ("line", "<i8"), ("update_id", "<i8"), ("state", "<i8"), ("final", "?"),
    ("bid_price", "<i8"), ("bid_qty", "<i8"), ("ask_price", "<i8"), ("ask_qty", "<i8"),
    ("book_bid", "<i8"), ("book_bid_qty", "<i8"), ("book_ask", "<i8"), ("book_ask_qty", "<i8"),
])


class Replay:
    """A capture replayed through the documented sequence rules (see the module docstring).

    Build it with :func:`replay`. ``states`` (:data:`STATE_DTYPE`) lists every book state in the
    order it was reached, ``gaps`` (:data:`GAP_DTYPE`) every sequence break; counts are attributes.
    A book at any point is rebuilt on demand from its snapshot (O(diffs since the snapshot)).

    Attributes
    ----------
    snapshots, snapshots_applied : int
        Snapshots in the capture, and those loaded (one arriving while the book is in sync is not
        loaded: the diff chain already carries the book past it).
    diffs, diffs_applied, diffs_stale : int
        Diffs in the capture, applied, dropped as stale (u < lastUpdateId).
    diffs_unsynced : int
        Diffs that could not be applied: before any snapshot, or after a gap with no later
        snapshot.
    absent_deletes : int
        Deletes of levels the book did not hold. Normal per Binance: outside the snapshot window
        the level was never seen, and inside it a level can appear and vanish between two
        bundled diffs.
    """

    def __init__(self, capture: Capture):
        self.capture = capture
        self.snapshots = len(capture.snapshots)
        self.diffs = len(capture.diffs)
        self.snapshots_applied = self.diffs_applied = self.diffs_stale = 0
        self.diffs_unsynced = self.absent_deletes = 0
        self._states: list[tuple] = []
        self._gaps: list[tuple] = []
        self._run()
        self.states = np.array(self._states, dtype=STATE_DTYPE)
        self.gaps = np.array(self._gaps, dtype=GAP_DTYPE)
        # Times are made non-decreasing (a buffered diff can carry an E before its snapshot's)
        # so that "the state at time t" is a binary search.
        for name in ("local_ns", "event_ms"):
            np.maximum.accumulate(self.states[name], out=self.states[name])
        del self._states, self._gaps

    # The replay is a small state machine over file order: SYNCING (buffering diffs until a
    # snapshot), then IN SYNC (checking pu), falling back to SYNCING at a gap.
    def _run(self) -> None:
        cap = self.capture
        diffs = cap.diffs
        self._sides = cap.levels["side"].tolist()
        self._prices = cap.levels["price"].tolist()
        self._lots = cap.levels["qty"].tolist()
        self._book: L2Book | None = None
        self._buffer: list[int] = []
        self._synced = False
        self._segment = -1
        snaps = iter(cap.snapshots)
        snap = next(snaps, None)
        diff_lines = diffs["line"].tolist()
        for i, line in enumerate(diff_lines):
            while snap is not None and snap.line < line:
                self._on_snapshot(snap)
                snap = next(snaps, None)
            self._on_diff(i, None)
        while snap is not None:
            self._on_snapshot(snap)
            snap = next(snaps, None)
        self.diffs_unsynced += len(self._buffer)
        if self._book is not None:
            self.absent_deletes = self._book.absent_deletes
        # book_at() continues from the last book it built; start it with the final one.
        self._cache = ((len(self._states) - 1, self._book.copy()) if self._synced
                       else (0, None))
        del self._sides, self._prices, self._lots, self._buffer, self._book

    def _on_snapshot(self, snap: Snapshot) -> None:
        if self._synced:
            return
        self.snapshots_applied += 1
        absent = self._book.absent_deletes if self._book is not None else 0
        self._book = _book_from(snap, self.capture)
        self._book.absent_deletes = absent
        self._snapshot = snap
        self._synced, self._first = True, True
        self._segment = len(self._states)
        self._record(StateKind.SNAPSHOT, self.snapshots_applied - 1, snap.line, snap.local_ns,
                     snap.event_ms, snap.last_update_id)
        pending, self._buffer = self._buffer, []
        for i in pending:
            # Buffered diffs become known when the snapshot does: they take its receive time.
            self._on_diff(i, snap.local_ns)

    def _on_diff(self, i: int, local_ns: int | None) -> None:
        if not self._synced:
            self._buffer.append(i)
            return
        d = self.capture.diffs[i]
        first_id, last_id, prev_id = int(d["first_id"]), int(d["last_id"]), int(d["prev_id"])
        last_update_id = self._snapshot.last_update_id
        if last_id < last_update_id:
            self.diffs_stale += 1
            return
        if self._first:
            if first_id > last_update_id:
                self._gap(GapKind.BRIDGE, i, last_update_id, first_id)
                return
            self._first = False
        elif prev_id != self._book.update_id:
            self._gap(GapKind.SEQUENCE, i, self._book.update_id, prev_id)
            return
        start, stop = int(d["start"]), int(d["stop"])
        self._book.apply(self._sides[start:stop], self._prices[start:stop],
                         self._lots[start:stop], last_id)
        self.diffs_applied += 1
        self._record(StateKind.DIFF, i, int(d["line"]),
                     int(d["local_ns"]) if local_ns is None else local_ns, int(d["event_ms"]),
                     last_id)

    def _gap(self, kind: GapKind, i: int, expected: int, got: int) -> None:
        d = self.capture.diffs[i]
        self._gaps.append((kind, int(d["line"]), int(d["local_ns"]), expected, got))
        # The row claims the first id the book is missing, so update ids stay sorted and a
        # query at the last good id still finds the good state before it.
        self._record(StateKind.GAP, i, int(d["line"]), int(d["local_ns"]), int(d["event_ms"]),
                     self._book.update_id + 1, valid=False)
        # The diff that revealed the gap may bridge the next snapshot: keep it.
        self._synced = False
        self._buffer = [i]

    def _record(self, kind, source, line, local_ns, event_ms, update_id, valid=True) -> None:
        book = self._book
        bid = book.best_bid() if valid else None
        ask = book.best_ask() if valid else None
        self._states.append((
            kind, source, line, local_ns, event_ms, update_id, self._segment,
            bid[0] if bid else 0, bid[1] if bid else 0, ask[0] if ask else 0,
            ask[1] if ask else 0, len(book.bids) if valid else 0,
            len(book.asks) if valid else 0))

    # -------------------------------------------------------------------------- queries
    @property
    def valid_at_end(self) -> bool:
        """Whether the book is valid after the last message (no unresolved gap, a snapshot seen)."""
        return bool(len(self.states)) and bool(self.states["kind"][-1] != StateKind.GAP)

    def summary(self) -> dict:
        """The counts as a dict (for printing or a CSV row)."""
        return {
            "lines": self.capture.lines, "snapshots": self.snapshots,
            "snapshots_applied": self.snapshots_applied, "diffs": self.diffs,
            "diffs_applied": self.diffs_applied, "diffs_stale": self.diffs_stale,
            "diffs_unsynced": self.diffs_unsynced, "gaps": len(self.gaps),
            "absent_deletes": self.absent_deletes, "book_tickers": len(self.capture.book_tickers),
            "trades": len(self.capture.trades), "valid_at_end": self.valid_at_end,
        }

    def state_index(self, local_ns: int | None = None, *, event_ms: int | None = None,
                    update_id: int | None = None) -> int:
        """Row of ``states`` in force at a point: the last state reached at or before it.

        Give at most one of ``local_ns`` (local receive time, ns: what a trader on that machine
        knew), ``event_ms`` (exchange event time E, ms) or ``update_id`` (Binance update id);
        none means the end of the capture. :class:`DataError` (a ValueError) if no book is
        valid there.
        """
        given = [(n, v) for n, v in (("local_ns", local_ns), ("event_ms", event_ms),
                                     ("update_id", update_id)) if v is not None]
        if len(given) > 1:
            raise TypeError(f"give at most one of local_ns, event_ms, update_id; got "
                            f"{', '.join(n for n, _ in given)}")
        if not len(self.states):
            raise self._error("no book: the capture has no usable snapshot")
        if given:
            name, value = given[0]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            if name == "update_id":
                self._require_sorted_ids()
            k = int(np.searchsorted(self.states[name], value, side="right")) - 1
            if k < 0:
                raise self._error(f"no book at {name}={value}: the first book is at "
                                  f"{name}={int(self.states[name][0])}")
        else:
            name, value, k = "end", "", len(self.states) - 1
        if self.states["kind"][k] == StateKind.GAP:
            raise self._error(f"no valid book at {name}{'=' if given else ''}{value}: sequence "
                              f"gap at line {int(self.states['line'][k])} and no snapshot after "
                              f"it")
        return k

    def _error(self, problem: str) -> DataError:
        return DataError(problem, path=self.capture.source)

    def _require_sorted_ids(self) -> None:
        ids = self.states["update_id"]
        if not (ids[1:] >= ids[:-1]).all():
            raise self._error("the book's update ids go backwards (a snapshot older than the "
                              "book it replaced?): update-id queries are undefined")

    def book_at(self, local_ns: int | None = None, *, event_ms: int | None = None,
                update_id: int | None = None) -> L2Book:
        """The L2 book at a point (see :meth:`state_index`), rebuilt from its snapshot.

        O(level updates since that snapshot), or since the last book asked for when the point is
        later in the same stretch (the replay leaves the final book there, so the end is O(levels)).
        The book returned is the caller's own.
        """
        k = self.state_index(local_ns, event_ms=event_ms, update_id=update_id)
        states, cap = self.states, self.capture
        seg = int(states["segment"][k])
        done, cached = self._cache
        if cached is not None and int(states["segment"][done]) == seg and done <= k:
            book, first = cached.copy(), done + 1
        else:
            book = _book_from(cap.snapshots[int(states["source"][seg])], cap)
            first = seg + 1
        levels = cap.levels
        for i in states["source"][first:k + 1].tolist():
            d = cap.diffs[i]
            part = levels[int(d["start"]):int(d["stop"])]
            book.apply(part["side"].tolist(), part["price"].tolist(), part["qty"].tolist(),
                       int(d["last_id"]))
        self._cache = (k, book.copy())
        return book

    def book_when(self, when: str | int = "end", *, name: str = "when") -> L2Book:
        """:meth:`book_at` named the way the command line and scenario files name it: ``"end"``
        (the last state), ``"snapshot"`` (right after the first snapshot), or a local receive
        time in ns (an int or a string of digits). ValueError naming ``name`` for anything else.
        """
        if when == "end":
            return self.book_at()
        if when == "snapshot":
            if not len(self.states):
                raise self._error("no book: the capture has no usable snapshot")
            return self.book_at(local_ns=int(self.states["local_ns"][0]))
        if isinstance(when, str) and when.isdigit():
            when = int(when)
        if isinstance(when, bool) or not isinstance(when, (int, np.integer)):
            raise ValueError(f"{name} must be end, snapshot or a local time in ns, got {when!r}")
        return self.book_at(local_ns=int(when))

    def explicit_book(self, local_ns: int | None = None, *, levels: int | None = None,
                      price_range=None, covered_only: bool = True, event_ms: int | None = None,
                      update_id: int | None = None):
        """:meth:`book_at` as an :class:`~orderbook.scenario.ExplicitBook`; new code calls
        ``ExplicitBook.from_l2(self.book_at(...), levels, ...)``."""
        from ..scenario import ExplicitBook  # a documented alias: the only import upwards

        book = self.book_at(local_ns, event_ms=event_ms, update_id=update_id)
        return ExplicitBook.from_l2(book, levels, price_range=price_range,
                                    covered_only=covered_only)

    def order_book(self, local_ns: int | None = None, *, levels: int | None = None,
                   price_range=None, covered_only: bool = True, event_ms: int | None = None,
                   update_id: int | None = None):
        """:meth:`book_at` as a compiled :class:`~orderbook.OrderBook`, one order per level."""
        book = self.book_at(local_ns, event_ms=event_ms, update_id=update_id)
        return book.to_order_book(levels, price_range=price_range, covered_only=covered_only)

    def check_book_tickers(self) -> TickerCheck:
        """Compare the rebuilt touch with the bookTicker stream (see :class:`TickerCheck`).

        O((bookTickers + states) log states), vectorised.
        """
        self._require_sorted_ids()
        bt = self.capture.book_tickers
        bt = bt[np.argsort(bt["update_id"], kind="stable")]  # sorted already in a sane capture
        states = self.states
        valid = states["kind"] != StateKind.GAP
        ids = states["update_id"]
        # A valid state covers the ids from its segment's snapshot lastUpdateId up to its own u.
        seg_start = ids[states["segment"]] if len(states) else ids
        k = np.searchsorted(ids, bt["update_id"], side="left")
        kk = np.minimum(k, max(len(states) - 1, 0))
        covered = (k < len(states)) & (valid[kk] & (seg_start[kk] <= bt["update_id"])
                                       if len(states) else False)
        rows = np.nonzero(covered)[0]
        target = kk[rows]
        # The last bookTicker mapped to a state is the one whose touch the state must show.
        final = np.ones(len(rows), dtype=bool)
        final[:-1] = target[:-1] != target[1:]
        t, s = bt[rows], states[target]
        price_ok = (t["bid_price"] == s["best_bid"]) & (t["ask_price"] == s["best_ask"])
        full_ok = price_ok & (t["bid_qty"] == s["best_bid_qty"]) & (
            t["ask_qty"] == s["best_ask_qty"])
        bad = np.nonzero(~full_ok)[0]
        out = np.zeros(len(bad), dtype=DISAGREEMENT_DTYPE)
        out["line"], out["update_id"] = t["line"][bad], t["update_id"][bad]
        out["state"], out["final"] = target[bad], final[bad]
        for mine, theirs in (("bid_price", "bid_price"), ("bid_qty", "bid_qty"),
                             ("ask_price", "ask_price"), ("ask_qty", "ask_qty"),
                             ("book_bid", "best_bid"), ("book_bid_qty", "best_bid_qty"),
                             ("book_ask", "best_ask"), ("book_ask_qty", "best_ask_qty")):
            out[mine] = (t if mine == theirs else s)[theirs][bad]
        # State-centric: each valid state against the latest bookTicker with u <= its id, when
        # that bookTicker lies inside the same valid stretch.
        # (With no bookTicker at all, no state has one to compare with.)
        vs = np.nonzero(valid)[0] if len(bt) else np.zeros(0, dtype=np.intp)
        j = np.searchsorted(bt["update_id"], ids[vs], side="right") - 1
        ok = j >= 0
        jj = np.maximum(j, 0)
        ok &= bt["update_id"][jj] >= seg_start[vs]
        vs, jj = vs[ok], jj[ok]
        s2, t2 = states[vs], bt[jj]
        st_price = (t2["bid_price"] == s2["best_bid"]) & (t2["ask_price"] == s2["best_ask"])
        st_full = st_price & (t2["bid_qty"] == s2["best_bid_qty"]) & (
            t2["ask_qty"] == s2["best_ask_qty"])
        return TickerCheck(
            checked=len(rows), price_agreed=int(price_ok.sum()), full_agreed=int(full_ok.sum()),
            on_boundary=int((t["update_id"] == s["update_id"]).sum()),
            final=int(final.sum()), final_price_agreed=int((price_ok & final).sum()),
            final_full_agreed=int((full_ok & final).sum()), superseded=int((~final).sum()),
            superseded_price_agreed=int((price_ok & ~final).sum()),
            superseded_full_agreed=int((full_ok & ~final).sum()),
            uncovered=int(len(bt) - len(rows)), state_checked=len(vs),
            state_price_agreed=int(st_price.sum()), state_full_agreed=int(st_full.sum()),
            disagreements=out)


def _book_from(snapshot: Snapshot, capture: Capture) -> L2Book:
    return L2Book.from_levels(snapshot.bids, snapshot.asks, update_id=snapshot.last_update_id,
                              tick_size=capture.tick_size, lot_size=capture.lot_size)


def replay(capture: Capture) -> Replay:
    """Replay ``capture`` through Binance's USD-M sequence rules; see :class:`Replay`.

    O(level updates · log levels); about 0.5 s for 6,500 diffs / 440,000 level updates.

    Examples
    --------
    >>> r = replay(read_capture("usdm_btcusdt_20240808.gz"))          # doctest: +SKIP
    >>> r.summary()["gaps"], r.book_at().best_bid()                    # doctest: +SKIP
    (0, (616597, 1486))
    """
    if not isinstance(capture, Capture):
        raise TypeError(f"capture must be a Capture, got {type(capture).__name__}")
    return Replay(capture)
