"""Reading a capture: its record layouts, Snapshot and Capture, read_capture() and parse_lines()."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import zlib
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ..._progress import reporting
from ...events import INT64_MAX, Side
from ..errors import DataError, DataTypeError
from .grid import DecimalGrid

log = logging.getLogger(__name__)

#: Lines between two calls of read_capture's progress hook.
PROGRESS_EVERY = 65_536

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


def read_capture(path, *, tick_size="0.1", lot_size="0.001", progress=None) -> Capture:
    """Read a capture file, gzip-compressed (detected by its magic bytes) or plain text.

    Parameters
    ----------
    path : str or os.PathLike
    tick_size, lot_size : str or Decimal
        Price step in quote units and quantity step in base units (BTCUSDT: 0.1 and 0.001).
    progress : callable, True or None
        ``progress(done, total)`` in lines of the file, every 65,536 lines and at the end
        (``total``: its lines); True draws a bar on stderr (a terminal only).

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
    lines = text.split("\n")
    with reporting(progress, [("read capture", len(lines))], "lines") as report:
        try:
            capture = parse_lines(lines if report is None else _reported(lines, report),
                                  tick_size=tick_size, lot_size=lot_size)
        except DataError as exc:
            raise exc.in_file(path) from exc.__cause__
    log.info("read %s: %s lines, %s snapshots, %s diffs", path, f"{len(lines):,}",
             len(capture.snapshots), f"{len(capture.diffs):,}")
    return dataclasses.replace(capture, source=path)


def _reported(lines: list, report):
    """``lines``, calling ``report(done, total)`` every PROGRESS_EVERY lines and at the end
    (a generator: parse_lines itself checks nothing per line)."""
    total = len(lines)
    for start in range(0, total, PROGRESS_EVERY):
        yield from lines[start:start + PROGRESS_EVERY]
        report(min(start + PROGRESS_EVERY, total), total)


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
