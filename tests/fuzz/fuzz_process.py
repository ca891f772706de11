"""Fuzz target: ``OrderBook.process`` on arbitrary bytes viewed as MESSAGE_DTYPE rows.

The first byte picks how the rest is read: as raw rows (any bit pattern, mostly invalid kinds and
extreme values), or as rows whose fields are folded into a small market (valid kinds, sides, a
few prices near each other, small and int64-edge quantities) so that matching, stops, amends and
overflow checks are reached. Either way the compiled book must give the reference's events byte
for byte, keep the book's invariants, and survive a copy and a pickle round trip.

Run with atheris (``python tests/fuzz/run.py``); pytest replays the corpus in tests/fuzz/corpus.
"""

import pickle

import numpy as np

from orderbook import OrderBook
from orderbook.events import INT64_MAX, MESSAGE_DTYPE
from orderbook.reference import OrderBook as ReferenceBook
from orderbook.testing import check_book

MAX_MESSAGES = 256
QTYS = np.array([1, 2, 3, 5, 8, 13, INT64_MAX - 1, INT64_MAX], dtype=np.int64)


def messages_from(data: bytes) -> np.ndarray:
    """MESSAGE_DTYPE rows from fuzz bytes (see the module docstring)."""
    if not data:
        return np.zeros(0, dtype=MESSAGE_DTYPE)
    count = min((len(data) - 1) // MESSAGE_DTYPE.itemsize, MAX_MESSAGES)
    # A read-only view at offset 1: unaligned rows, as np.frombuffer gives users.
    rows = np.frombuffer(data, dtype=MESSAGE_DTYPE, count=count, offset=1)
    if data[0] % 2 == 0:
        return rows
    rows = rows.copy()
    rows["kind"] = 1 + rows["kind"] % 9
    rows["side"] = np.where(rows["side"] % 2 == 0, 1, -1)
    rows["order_id"] = rows["order_id"] % 32
    rows["owner"] = rows["owner"] % 4
    rows["price"] = 95 + rows["price"] % 12
    rows["stop_price"] = 95 + rows["stop_price"] % 12
    rows["qty"] = QTYS[rows["qty"] % len(QTYS)]
    return rows


def test_one_input(data: bytes) -> None:
    rows = messages_from(data)
    book, reference = OrderBook(), ReferenceBook()
    half = len(rows) // 2
    first = book.process(rows[:half])
    assert first.tobytes() == reference.process(rows[:half]).tobytes()
    # The second half runs on a copy and on an unpickled book: both must carry on identically.
    copied, restored = book.copy(), pickle.loads(pickle.dumps(book))
    second = reference.process(rows[half:]).tobytes()
    for other in (book, copied, restored):
        assert other.process(rows[half:]).tobytes() == second
        check_book(other)
    assert book.l3().tobytes() == reference.l3().tobytes()
    assert book.stops().tobytes() == reference.stops().tobytes()

