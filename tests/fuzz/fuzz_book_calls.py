"""Fuzz target: the per-call API of the compiled book and the reference, with hostile values.

The input chooses a sequence of calls (every public method) and their arguments from a palette of
ordinary and hostile values: int64 edges and beyond, negative numbers, bools, floats (nan, inf),
None, strings, Decimals, numpy scalars and arrays, lists. Both books must do the same thing:
the same events or query results, or the same exception type with the same message; only
TypeError, ValueError and KeyError may be raised, and a refused call changes nothing.
"""

import math
from decimal import Decimal

import numpy as np

from orderbook import OrderBook
from orderbook.events import INT64_MAX, INT64_MIN, AmendRule, Kind, SelfTradePrevention
from orderbook.reference import OrderBook as ReferenceBook
from orderbook.testing import check_book

MAX_CALLS = 40
VALUES = [
    0, 1, 2, 3, -1, 95, 96, 100, 101, 105, 7, INT64_MAX, INT64_MAX - 1, INT64_MIN, 2**63, 2**64,
    -(2**63) - 1, True, False, 1.0, 0.5, math.nan, math.inf, None, "buy", "sell", "ask", "x",
    "1", "1e3", Decimal("1.5"), Decimal("100"), np.int64(100), np.int8(-1), np.uint64(2**64 - 1),
    np.float64(100.0), np.array([5]), np.array(5), [1], (1,), b"1", Kind.LIMIT, 1 + 2j,
]
UNIT_VALUES = ["0.1", "1", "0.001", 0.1, "1e-999999999", "0.1000000000000000000000001",
               Decimal("1e3"), 3, -1, None, np.float64(0.5)]
METHODS = {
    "limit": 5, "market": 4, "ioc": 5, "fok": 5, "post_only": 5, "stop_market": 5,
    "stop_limit": 6, "cancel": 1, "amend": 3, "submit": 7, "best_bid": 0, "best_ask": 0,
    "spread": 0, "mid": 0, "quantity_at": 2, "resting_qty": 2, "l2": 1, "l3": 0, "stops": 0,
    "order": 1, "orders_of": 1, "impact": 2, "to_ticks": 1, "to_lots": 1, "to_price": 1,
    "to_qty": 1, "contains": 1,
}
NAMES = sorted(METHODS)
ALLOWED = (TypeError, ValueError, KeyError)


def comparable(result):
    """A result in a form that compares equal across the two books (nan included)."""
    if isinstance(result, np.ndarray):
        return ("array", result.dtype.str, result.tobytes())
    if isinstance(result, tuple):
        return tuple(comparable(x) for x in result)
    if isinstance(result, list):
        return [comparable(x) for x in result]
    if isinstance(result, float) and math.isnan(result):
        return "nan"
    return result


def outcome(book, name, args):
    try:
        if name == "contains":
            return ("ok", args[0] in book)
        return ("ok", comparable(getattr(book, name)(*args)))
    except ALLOWED as exc:
        return (type(exc).__name__, str(exc))


def state(book):
    return (book.l3().tobytes(), book.stops().tobytes(), book.last_price, book.message_count,
            book.event_count)


def test_one_input(data: bytes) -> None:
    fdp = FuzzedData(data)
    settings = dict(tick_size=fdp.pick(UNIT_VALUES), lot_size=fdp.pick(UNIT_VALUES),
                    stp=fdp.pick([0, 1, 2, 3, 4, SelfTradePrevention.CANCEL_BOTH, "x"]),
                    amend_rule=fdp.pick([0, 1, AmendRule.ALWAYS_REQUEUE, 2, None]))
    made = []
    for cls in (OrderBook, ReferenceBook):
        try:
            made.append(("ok", cls(**settings)))
        except ALLOWED as exc:
            made.append((type(exc).__name__, str(exc)))
    assert [m[0] for m in made] == [m[0] for m in made[:1]] * 2, made
    if made[0][0] != "ok":
        assert made[0] == made[1], made
        return
    book, reference = made[0][1], made[1][1]
    for _ in range(MAX_CALLS):
        if fdp.exhausted():
            break
        name = fdp.pick(NAMES)
        args = [fdp.pick(VALUES) for _ in range(METHODS[name])]
        before = state(book)
        got, expected = outcome(book, name, args), outcome(reference, name, args)
        assert got == expected, (name, args, got, expected)
        if got[0] != "ok":
            assert state(book) == before, (name, args)
        assert state(book) == state(reference), (name, args)
    check_book(book)
    check_book(reference)


class FuzzedData:
    """Picks values from the fuzz input one byte at a time (zeros once it is used up)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def exhausted(self) -> bool:
        return self.pos >= len(self.data)

    def pick(self, options):
        byte = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return options[byte % len(options)]

