"""The LOBSTER file format (message and orderbook files) and its readers, which check every row."""

from __future__ import annotations

import logging
import warnings
from enum import IntEnum
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ...events import INT64_MAX
from ..errors import DataError

log = logging.getLogger(__name__)

#: Price of an empty ask level in a LOBSTER orderbook file (its size is 0).
DUMMY_ASK_PRICE = 9_999_999_999
#: Price of an empty bid level in a LOBSTER orderbook file (its size is 0).
DUMMY_BID_PRICE = -9_999_999_999


class EventType(IntEnum):
    """LOBSTER message type (column 2 of the message file)."""

    SUBMISSION = 1        #: new limit order
    CANCELLATION = 2      #: partial deletion of a limit order
    DELETION = 3          #: total deletion of a limit order
    EXECUTION = 4         #: execution of a visible limit order
    HIDDEN_EXECUTION = 5  #: execution of a hidden limit order (no visible change)
    CROSS_TRADE = 6       #: auction (cross) trade (no visible change)
    HALT = 7              #: trading halt, quoting or resumption (no visible change)


_EXACT_FLOAT = 2**53  # integers below this survive a float64 round trip


#: One LOBSTER message: time (s after midnight), type, order id, size (shares), price ($ x 10^4),
#: direction (side of the resting order: +1 bid, -1 ask).
LOBSTER_MESSAGE_DTYPE = np.dtype([
    ("time", "<f8"), ("type", "i1"), ("order_id", "<i8"), ("size", "<i8"), ("price", "<i8"),
    ("direction", "i1"),
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
    log.info("read %s: %s messages", path, f"{len(raw):,}")
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
    log.info("read %s: %s rows of %s levels", path, f"{len(data):,}", book.levels)
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
