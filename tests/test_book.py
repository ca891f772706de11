"""Specification of OrderBook's Python surface, checked against the engine and the reference.

Bad input per call and refusals naming the argument, units (ticks, lots, tick and lot sizes), the
batch path (``process``: bad messages, dtypes, numbering, equality with the per-call path),
refusal reasons and OrderError, queries (top of book, levels, l2, l3, order, orders_of, impact),
copies and pickles (damaged ones included), a book busy with a batch in another thread, result
arrays' padding, unaligned and strided input, and membership. The matching rules themselves are
specified in test_matching.py.

Most tests take the ``book`` or ``book_cls`` fixture (a hypothesis test loops over both classes),
so they run once per implementation; the busy, damaged-engine-pickle, padding and alignment tests
run on the compiled book. Expected events are computed by hand from docs/semantics.md; the
helpers shared with test_matching.py are in tests/book_helpers.py.
"""

import gc
import math
import pickle
import re
from decimal import Decimal

import numpy as np
import pytest
from book_helpers import B, S, accepted, evs, l3, msg, rejected, rest, state
from hypothesis import given

from orderbook import OrderBook
from orderbook import strategies as obst
from orderbook.book import _set_max_live
from orderbook.errors import OrderError, UnknownOrderError
from orderbook.events import (
    EVENT_DTYPE,
    INT64_MAX,
    L3_DTYPE,
    MAX_LIVE_ORDERS,
    MESSAGE_DTYPE,
    AmendRule,
    EventKind,
    Kind,
    OrderInfo,
    Reason,
    SelfTradePrevention,
    Side,
    array_to_events,
    messages,
)
from orderbook.reference import OrderBook as ReferenceOrderBook
from orderbook.testing import message_array

# --------------------------------------------------------------------------- helpers


def run(book, script):
    """Apply message dicts through the per-call path; return all events."""
    out = []
    for m in script:
        out.extend(book.submit(**m))
    return out


def without_numbering(events):
    return [e._replace(seq=0, msg=0) for e in events]


# --------------------------------------------------------------------------- bad input per call

BAD_CALLS = [
    ("float-price", TypeError, "price", lambda b: b.limit(50, B, 100.0, 5)),
    ("bool-price", TypeError, "price", lambda b: b.limit(50, B, True, 5)),
    ("str-price", TypeError, "price", lambda b: b.limit(50, B, "100", 5)),
    ("nan-price", TypeError, "price", lambda b: b.limit(50, B, float("nan"), 5)),
    ("zero-price", ValueError, "price", lambda b: b.limit(50, B, 0, 5)),
    ("negative-price", ValueError, "price", lambda b: b.ioc(50, B, -1, 5)),
    ("huge-price", ValueError, "price", lambda b: b.fok(50, B, 2**63, 5)),
    ("zero-stop", ValueError, "stop_price", lambda b: b.stop_market(50, B, 0, 5)),
    ("zero-qty", ValueError, "qty", lambda b: b.limit(50, B, 100, 0)),
    ("negative-qty", ValueError, "qty", lambda b: b.market(50, S, -5)),
    ("bool-qty", TypeError, "qty", lambda b: b.limit(50, B, 100, True)),
    ("side-0", ValueError, "side", lambda b: b.limit(50, 0, 100, 5)),
    ("side-2", ValueError, "side", lambda b: b.post_only(50, 2, 100, 5)),
    ("float-side", TypeError, "side", lambda b: b.limit(50, 1.0, 100, 5)),
    ("unknown-kind", ValueError, "kind", lambda b: b.submit(99, 50, 1, 100, 5)),
    ("kind-0", ValueError, "kind", lambda b: b.submit(0, 50, 1, 100, 5)),
    ("huge-id", ValueError, "order_id", lambda b: b.limit(2**63, B, 100, 5)),
    ("tiny-id", ValueError, "order_id", lambda b: b.limit(-(2**63) - 1, B, 100, 5)),
    ("str-id", TypeError, "order_id", lambda b: b.cancel("1")),
    ("huge-owner", ValueError, "owner", lambda b: b.limit(50, B, 100, 5, owner=2**63)),
    ("amend-zero-price", ValueError, "price", lambda b: b.amend(2, 0, 5)),
    ("amend-zero-qty", ValueError, "qty", lambda b: b.amend(2, 99, 0)),
    ("amend-float-qty", TypeError, "qty", lambda b: b.amend(2, 99, 5.0)),
]


def seeded(book):
    """A book with resting orders, an armed stop and a last price."""
    rest(book, (1, S, 101, 5), (2, B, 99, 5), (3, S, 100, 1), (4, B, 100, 1))
    book.stop_market(5, B, 105, 2)
    return book


@pytest.mark.parametrize("exc, field, call", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_naming_the_field_and_changes_nothing(book, exc, field, call):
    seeded(book)
    before = state(book)
    with pytest.raises(exc) as info:
        call(book)
    assert field in str(info.value)
    assert state(book) == before


def test_numpy_integers_are_accepted(book):
    events = book.limit(np.int64(1), np.int8(-1), np.int64(100), np.int32(5), owner=np.uint16(3))
    assert evs(events) == [accepted(1, S, 100, 5)] and events[0].owner == 3


@pytest.mark.parametrize("value", [0, 1, 2**30 - 1, 2**30, 2**31 + 5, 2**60, 2**62 + 3,
                                   2**63 - 1])
def test_every_int64_argument_width_reads_exactly(book, value):
    # The per-call path reads one-digit ints in place and wider ones through the C API.
    price = max(value, 1)
    events = book.limit(value, B, price, 5, owner=value)
    assert (events[0].order_id, events[0].price, events[0].owner) == (value, price, value)
    lean = {"events": False} if isinstance(book, OrderBook) else {}   # the reference has none
    sold = book.limit(-value - 1, S, price, 2, owner=-value, **lean)
    assert (sold == 2) if lean else ([e.qty for e in sold if e.kind == EventKind.TRADE] == [2])
    assert book.order(value).qty == 3
    book.cancel(value, **lean)
    assert value not in book


# ----------------------------------------------------------------- the live-order limit


def limited(book_cls, limit):
    """A fresh book that holds at most ``limit`` live orders (the test hooks of both books)."""
    book = book_cls()
    if isinstance(book, OrderBook):
        _set_max_live(book, limit)
    else:
        book._max_live = limit
    return book


def test_the_live_order_limit_is_the_order_records_slot_range():
    assert MAX_LIVE_ORDERS == 2**28 == ReferenceOrderBook._max_live
    with pytest.raises(ValueError, match="limit must be in"):
        _set_max_live(OrderBook(), MAX_LIVE_ORDERS + 1)


def test_a_full_book_refuses_orders_that_could_rest_and_changes_nothing(book_cls):
    book = limited(book_cls, 3)
    rest(book, (1, B, 99, 5), (2, S, 101, 5))
    book.stop_market(3, S, 90, 1)
    before = state(book)
    refused = [lambda: book.limit(4, B, 98, 1), lambda: book.post_only(4, S, 102, 1),
               lambda: book.stop_limit(4, B, 110, 111, 1), lambda: book.stop_market(4, S, 80, 1),
               lambda: book.limit(4, B, 101, 1)]   # even one that would fill at once
    for call in refused:
        with pytest.raises(OrderError) as info:
            call()
        assert info.value.reason == Reason.BOOK_FULL and "order_id 4" in str(info.value)
        assert state(book) == before
    # orders that never rest are not refused
    assert [e.kind for e in book.ioc(5, B, 101, 2)] == [EventKind.ACCEPTED, EventKind.TRADE]
    assert [e.kind for e in book.market(6, S, 1)][:2] == [EventKind.ACCEPTED, EventKind.TRADE]
    book.cancel(3)
    assert [e.kind for e in book.limit(7, B, 97, 1)] == [EventKind.ACCEPTED]
    assert book.n_orders + book.n_stops == 3


def test_a_triggered_stop_rests_again_in_a_book_at_its_limit(book_cls):
    # The stop gives its slot back when it triggers, so resting again never needs a new one.
    book = limited(book_cls, 3)
    rest(book, (1, B, 99, 5), (2, S, 101, 1))
    book.stop_limit(3, B, 101, 100, 2)
    book.ioc(4, B, 101, 1)
    assert book.order(3).price == 100 and book.n_orders == 2 and book.n_stops == 0


@given(stream=obst.message_arrays(max_size=60, max_id=15))
def test_the_compiled_and_reference_books_refuse_the_same_orders_when_full(stream):
    compiled, reference = limited(OrderBook, 4), limited(ReferenceOrderBook, 4)
    got = compiled.process(stream)
    assert got.tobytes() == reference.process(stream).tobytes()
    assert l3(compiled) == l3(reference)


# --------------------------------------------------------------------------- units




class Ticks(int):
    """An int subclass, as a caller's own price type might be."""


def test_per_call_events_hold_plain_ints_equal_to_the_batchs(book_cls):
    # The per-call path hands a field the int it made for the event before, or the caller's
    # own argument when that is an exact int: the values must still be the batch's, and every
    # field a plain int (never the caller's subclass, never a bool).
    big = 2**40
    calls = [("limit", (big + 1, S, big, 3), {"owner": 9}),
             ("limit", (big + 2, S, big, 4), {"owner": 9}),
             ("limit", (big + 3, S, big + 1, 5), {"owner": 300}),
             ("limit", (Ticks(big + 4), B, Ticks(big + 1), Ticks(8)), {"owner": Ticks(7)}),
             ("market", (42, B, 2), {"owner": 1000}),
             ("cancel", (big + 3,), {})]
    book, batch = book_cls(), book_cls()
    for name, args, kwargs in calls:
        events = getattr(book, name)(*args, **kwargs)
        assert all(type(x) is int for e in events for x in e), events
        kind = {"limit": Kind.LIMIT, "market": Kind.MARKET, "cancel": Kind.CANCEL}[name]
        if name == "limit":
            row = msg(kind, int(args[0]), args[1], int(args[2]), int(args[3]),
                      int(kwargs["owner"]))
        elif name == "market":
            row = msg(kind, int(args[0]), args[1], 0, args[2], kwargs["owner"])
        else:
            row = msg(kind, args[0])
        expected = [tuple(e) for e in array_to_events(batch.process(messages([row])))]
        assert [tuple(e) for e in events] == expected
    assert len(book.l3()) == len(batch.l3())
def test_unit_conversions(book_cls):
    book = book_cls(tick_size="0.01", lot_size="0.001")
    assert book.to_ticks("1.23") == 123
    assert book.to_ticks(Decimal("1.23")) == 123
    assert book.to_price(123) == Decimal("1.23")
    assert book.to_lots("0.005") == 5
    assert book.to_qty(5) == Decimal("0.005")
    for bad in ("1.234", float("nan"), float("inf"), Decimal(2**63) / 100):
        with pytest.raises(ValueError):
            book.to_ticks(bad)
    with pytest.raises(ValueError):
        book.to_lots("0.0005")


@pytest.mark.parametrize("value", [
    "1e-999999999",                      # underflows decimal's default context to 0
    "0." + "1" + "0" * 120 + "1",        # more digits than any rounding context keeps
    "0.30000000000000004",
    "1e999999999",                       # far outside int64, refused before converting
])
def test_off_grid_or_absurd_prices_raise_naming_the_value_and_the_grid(book_cls, value):
    book = book_cls(tick_size="0.1")
    with pytest.raises(ValueError, match=r"price '.*' (is not a multiple of 0\.1|is .* units)"):
        book.to_ticks(value)


@pytest.mark.parametrize("size", ["1e999999999", "1e-999999999", "1e19", "1e-19", "0",
                                  "-0.1", "0.1234567890123456789"])
def test_absurd_tick_and_lot_sizes_are_refused_at_construction(book_cls, size):
    with pytest.raises(ValueError, match="tick_size"):
        book_cls(tick_size=size)
    with pytest.raises(ValueError, match="lot_size"):
        book_cls(lot_size=size)


def test_numpy_floats_are_converted_exactly_like_python_floats(book_cls):
    book = book_cls(tick_size=np.float64(0.1), lot_size=np.float64(0.001))
    assert (book.tick_size, book.lot_size) == (Decimal("0.1"), Decimal("0.001"))
    assert book.to_ticks(np.float64(0.3)) == 3
    with pytest.raises(ValueError, match="not a multiple"):
        book.to_ticks(np.float64(0.1) + np.float64(0.2))
    with pytest.raises(TypeError, match="tick_size"):
        book_cls(tick_size=np.array([0.1]))


# --------------------------------------------------------------------------- batch path


BAD_MESSAGES = [
    ("kind", msg(99, 2, B, 100, 1, owner=9), "INVALID_KIND"),
    ("side", msg(Kind.LIMIT, 2, 0, 100, 1, owner=9), "INVALID_SIDE"),
    ("price", msg(Kind.LIMIT, 2, B, 0, 1, owner=9), "INVALID_PRICE"),
    ("negative-price", msg(Kind.IOC, 2, B, -5, 1), "INVALID_PRICE"),
    ("stop-price", msg(Kind.STOP_MARKET, 2, B, qty=1, stop_price=0), "INVALID_STOP_PRICE"),
    ("qty", msg(Kind.LIMIT, 2, S, 100, 0), "INVALID_QTY"),
    ("duplicate", msg(Kind.LIMIT, 1, B, 90, 1), "DUPLICATE_ID"),
    ("unknown", msg(Kind.CANCEL, 77), "UNKNOWN_ORDER"),
    ("amend-price", msg(Kind.AMEND, 1, price=0, qty=1), "INVALID_PRICE"),
    ("overflow", msg(Kind.LIMIT, 2, S, 100, INT64_MAX), "QTY_OVERFLOW"),
]


@pytest.mark.parametrize("bad, reason", [c[1:] for c in BAD_MESSAGES],
                         ids=[c[0] for c in BAD_MESSAGES])
def test_batch_with_a_bad_message_rejects_it_and_processes_the_rest(book_cls, bad, reason):
    valid = [msg(Kind.LIMIT, 1, S, 100, 5), msg(Kind.LIMIT, 3, B, 100, 2),
             msg(Kind.AMEND, 1, price=101, qty=2), msg(Kind.LIMIT, 4, S, 102, 1)]
    batch_book, call_book = book_cls(), book_cls()
    out = batch_book.process(messages(valid[:1] + [bad] + valid[1:]))
    assert out.dtype == EVENT_DTYPE
    events = array_to_events(out)
    expected = run(call_book, valid)

    rejections = [e for e in events if e.kind == EventKind.REJECTED]
    assert evs(rejections) == [rejected(bad["order_id"], reason)]
    r = rejections[0]
    assert (r.msg, r.owner, r.side, r.price, r.stop_price, r.qty) == (
        1, bad["owner"], bad["side"], bad["price"], bad["stop_price"], bad["qty"])
    others = [e for e in events if e.kind != EventKind.REJECTED]
    assert without_numbering(others) == without_numbering(expected)
    assert [e.msg for e in events] == [0, 1, 2, 2, 3, 4]
    assert [e.seq for e in events] == list(range(len(events)))
    assert batch_book.message_count == 5 and batch_book.event_count == len(events)
    assert batch_book.l3().tolist() == call_book.l3().tolist()


# --------------------------------------------------------------------------- refusal reasons


@pytest.mark.parametrize("bad, reason", [c[1:] for c in BAD_MESSAGES],
                         ids=[c[0] for c in BAD_MESSAGES])
def test_a_per_call_refusal_carries_the_reason_the_batch_reports(book_cls, bad, reason):
    call_book, batch_book = book_cls(), book_cls()
    for book in (call_book, batch_book):
        book.limit(1, S, 100, 5)
    before = state(call_book)
    with pytest.raises(OrderError) as info:
        call_book.submit(**bad)
    [event] = array_to_events(batch_book.process(messages([bad])))
    assert info.value.reason is Reason[reason] == Reason(event.reason)
    assert isinstance(info.value, UnknownOrderError) == (reason == "UNKNOWN_ORDER")
    assert state(call_book) == before


@given(case=obst.invalid_orders(reasons=obst.INVALID_REASONS))
def test_every_caller_error_per_call_carries_the_reason_a_batch_reports(case):
    for book_cls in (OrderBook, ReferenceOrderBook):
        call_book, batch_book = book_cls(), book_cls()
        for m in case.setup:
            m.submit(call_book)
            m.submit(batch_book)
        with pytest.raises(OrderError) as info:
            case.message.submit(call_book)
        [event] = array_to_events(batch_book.process(message_array([case.message])))
        assert event.kind == EventKind.REJECTED
        assert info.value.reason is case.reason == Reason(event.reason)
        assert isinstance(info.value, case.error)
        assert isinstance(info.value, UnknownOrderError) == (case.reason == Reason.UNKNOWN_ORDER)


def test_an_id_that_is_not_live_is_an_unknown_order_error_with_an_unquoted_message(book):
    book.limit(1, B, 100, 5)
    for call in (lambda: book.cancel(7), lambda: book.amend(7, 100, 1), lambda: book.order(7)):
        with pytest.raises(UnknownOrderError) as info:
            call()
        exc = info.value
        assert isinstance(exc, OrderError) and isinstance(exc, KeyError)
        assert isinstance(exc, ValueError)
        assert exc.reason is Reason.UNKNOWN_ORDER
        assert str(exc) == "order_id 7 is not a live order"


@pytest.mark.parametrize("side", [0, 2, -2, 127, 5000, "sideways"])
def test_a_bad_side_of_a_new_order_is_an_order_error_invalid_side(book, side):
    with pytest.raises(OrderError, match="^side must be ") as info:
        book.limit(1, side, 100, 5)
    assert info.value.reason is Reason.INVALID_SIDE


@pytest.mark.parametrize("exc, call", [
    (TypeError, lambda b: b.limit(1, B, 100.0, 5)),
    (TypeError, lambda b: b.limit(1, 1.0, 100, 5)),
    (ValueError, lambda b: b.limit(1, 2**63, 100, 5)),
    (ValueError, lambda b: b.limit(2**63, B, 100, 5)),
    (ValueError, lambda b: b.amend(1, -(2**63) - 1, 5)),
    (ValueError, lambda b: b.quantity_at(2, 100)),
])
def test_a_value_no_message_field_can_hold_or_a_bad_query_is_not_an_order_error(book, exc, call):
    with pytest.raises(exc) as info:
        call(book)
    assert not isinstance(info.value, OrderError)


def test_order_errors_pickle_with_their_reason():
    for exc in (OrderError("qty must be in [1, 5] lots, got 0", Reason.INVALID_QTY),
                UnknownOrderError("order_id 3 is not a live order")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and back.reason is exc.reason and str(back) == str(exc)


def test_order_errors_are_public():
    import orderbook

    assert {"OrderError", "UnknownOrderError"} <= set(orderbook.__all__)
    assert orderbook.OrderError is OrderError and orderbook.UnknownOrderError is UnknownOrderError
    assert issubclass(OrderError, ValueError) and issubclass(UnknownOrderError, KeyError)


# ------------------------------------------------------------- batch path against the per-call path


SCRIPT = [
    msg(Kind.LIMIT, 1, S, 101, 5, owner=1), msg(Kind.LIMIT, 2, S, 102, 5, owner=2),
    msg(Kind.LIMIT, 3, B, 99, 4, owner=1), msg(Kind.POST_ONLY, 4, B, 98, 6, owner=3),
    msg(Kind.STOP_MARKET, 5, S, qty=2, owner=4, stop_price=100),
    msg(Kind.STOP_LIMIT, 6, B, 103, 3, owner=4, stop_price=102),
    msg(Kind.LIMIT, 7, B, 102, 7, owner=5), msg(Kind.AMEND, 3, price=99, qty=2),
    msg(Kind.IOC, 8, S, 98, 3, owner=6), msg(Kind.FOK, 9, S, 90, 50, owner=6),
    msg(Kind.MARKET, 10, B, qty=4, owner=7), msg(Kind.CANCEL, 4),
    msg(Kind.LIMIT, 11, S, 99, 2, owner=8), msg(Kind.AMEND, 11, price=97, qty=3),
]


def test_batch_of_valid_messages_equals_per_call_path_exactly(book_cls):
    call_book, batch_book = book_cls(), book_cls()
    expected = run(call_book, SCRIPT)
    events = array_to_events(batch_book.process(messages(SCRIPT)))
    assert events == expected
    assert state(batch_book) == state(call_book)
    # and a second batch continues the numbering
    more = array_to_events(batch_book.process(messages([msg(Kind.LIMIT, 20, B, 50, 1)])))
    assert (more[0].seq, more[0].msg) == (len(events), len(SCRIPT))


def test_batch_events_stay_valid_after_more_batches_calls_and_the_book_is_gone(book_cls):
    # The compiled path hands its event records to the array without copying them.
    book = book_cls()
    first = book.process(messages(SCRIPT))
    kept = first.copy()
    book.process(messages(SCRIPT))      # every id again: all rejected as duplicates
    book.limit(99, B, 1, 1)
    del book
    gc.collect()
    assert first.flags.writeable
    assert (first == kept).all()
    assert (pickle.loads(pickle.dumps(first)) == kept).all()


def test_process_rejects_wrong_dtype(book):
    with pytest.raises(TypeError):
        book.process(np.zeros(3, dtype=EVENT_DTYPE))
    with pytest.raises(TypeError):
        book.process(np.zeros(3, dtype=np.int64))
    assert len(book.process(np.zeros(0, dtype=MESSAGE_DTYPE))) == 0


def test_seq_and_msg_numbering_per_call(book):
    assert [(e.seq, e.msg) for e in book.limit(1, S, 100, 1)] == [(0, 0)]
    with pytest.raises(ValueError):
        book.limit(1, S, 100, 1)  # a raising call uses no numbers
    assert [(e.seq, e.msg) for e in book.limit(2, B, 100, 1)] == [(1, 1), (2, 1)]
    assert [(e.seq, e.msg) for e in book.post_only(3, B, 100, 1)] == [(3, 2)]
    assert book.event_count == 4 and book.message_count == 3


# --------------------------------------------------------------------------- queries


def query_book(book):
    rest(book, (1, B, 100, 5), (2, B, 100, 3, 42), (3, B, 98, 4), (4, S, 102, 2), (5, S, 103, 6))
    return book


def test_top_of_book_queries(book):
    assert (book.best_bid(), book.best_ask(), book.spread(), book.mid()) == (None,) * 4
    query_book(book)
    assert (book.best_bid(), book.best_ask(), book.spread()) == (100, 102, 2)
    assert book.mid() == 101.0
    assert book.last_price is None
    book.market(9, B, 1)
    assert book.last_price == 102


def test_quantity_at_and_resting_qty(book):
    query_book(book)
    assert [book.quantity_at(B, p) for p in (100, 99, 98)] == [8, 0, 4]
    assert [book.quantity_at(S, p) for p in (102, 103, 100)] == [2, 6, 0]
    assert [book.resting_qty(B, p) for p in (101, 100, 99, 98, 1)] == [0, 8, 8, 12, 12]
    assert [book.resting_qty(S, p) for p in (101, 102, 103, 500)] == [0, 2, 8, 8]


def test_l2_arrays(book):
    query_book(book)
    top = book.l2(1)
    assert [list(a) for a in top] == [[100], [8], [2], [102], [2], [1]]
    full = book.l2()
    assert [list(a) for a in full] == [[100, 98], [8, 4], [2, 1], [102, 103], [2, 6], [1, 1]]
    assert all(isinstance(a, np.ndarray) and a.dtype == np.int64 for a in full)


def test_l3_lists_bids_best_first_then_asks_in_fifo_order(book):
    query_book(book)
    snap = book.l3()
    assert snap.dtype == L3_DTYPE
    assert l3(book) == [(1, B, 100, 5), (2, B, 100, 3), (3, B, 98, 4),
                        (4, S, 102, 2), (5, S, 103, 6)]
    assert int(snap[1]["owner"]) == 42


def test_order_lookup_and_membership(book):
    query_book(book)
    book.stop_limit(6, S, 97, 96, 2, owner=7)
    assert book.order(2) == OrderInfo(2, 42, B, Kind.LIMIT, 100, 0, 3)
    assert book.order(6) == OrderInfo(6, 7, S, Kind.STOP_LIMIT, 96, 97, 2)
    assert 2 in book and 6 in book and 99 not in book
    with pytest.raises(KeyError):
        book.order(99)
    assert (book.n_orders, book.n_stops) == (5, 1)


def test_orders_of_lists_an_owners_resting_orders_and_armed_stops_by_id(book):
    rest(book, (9, B, 100, 5, 7), (2, S, 103, 1, 7), (4, B, 99, 2, 8), (5, S, 104, 3, 7))
    book.stop_market(3, S, 90, 2, owner=7)
    book.stop_limit(1, B, 110, 111, 1, owner=8)
    assert book.orders_of(7) == [2, 3, 5, 9]
    assert book.orders_of(8) == [1, 4]
    assert book.orders_of(np.int64(8)) == [1, 4]
    assert book.orders_of(0) == []


def test_orders_of_forgets_filled_cancelled_and_triggered_orders(book):
    rest(book, (1, S, 100, 2, 7), (2, S, 101, 5, 7), (3, B, 95, 1, 7))
    book.stop_market(4, S, 99, 1, owner=7)
    book.stop_limit(5, B, 100, 90, 1, owner=7)
    book.cancel(3)
    book.market(10, B, 2, owner=8)  # fills 1 at 100: buy stop 5 triggers and rests at 90
    assert book.orders_of(7) == [2, 4, 5]
    assert book.order(5).kind == Kind.LIMIT
    book.market(11, S, 1, owner=8)  # fills 5 at 90: sell stop 4 triggers, finds no bid
    assert book.orders_of(7) == [2]
    assert book.orders_of(8) == []


def test_orders_of_refuses_an_owner_that_is_not_an_int64(book):
    with pytest.raises(TypeError, match="^owner "):
        book.orders_of(1.5)
    with pytest.raises(ValueError, match="^owner "):
        book.orders_of(2**63)


@pytest.mark.parametrize("side, qty, expected", [
    (B, 5, (5, 2 * 102 + 3 * 103, 102.6, 103, 2)),
    (B, 100, (8, 2 * 102 + 6 * 103, 822 / 8, 103, 2)),
    (S, 10, (10, 8 * 100 + 2 * 98, 99.6, 98, 2)),
    (S, 3, (3, 300, 100.0, 100, 1)),
])
def test_impact_of_a_hypothetical_market_order(book, side, qty, expected):
    query_book(book)
    before = state(book)
    imp = book.impact(side, qty)
    filled, notional, average, worst, levels = expected
    assert (imp.filled, imp.notional, imp.worst_price, imp.levels) == (
        filled, notional, worst, levels)
    assert imp.average_price == pytest.approx(average)
    assert state(book) == before


def test_impact_on_empty_side(book):
    rest(book, (1, B, 100, 5))
    imp = book.impact(B, 5)
    assert (imp.filled, imp.notional, imp.worst_price, imp.levels) == (0, 0, 0, 0)
    assert math.isnan(imp.average_price)


# --------------------------------------------------------------------------- copies


def copy_book(book_cls):
    book = book_cls(stp=SelfTradePrevention.CANCEL_BOTH, amend_rule=AmendRule.ALWAYS_REQUEUE)
    run(book, SCRIPT)  # leaves ask 11 (owner 8) at 97 and last price 98
    rest(book, (20, B, 96, 4, 5), (21, B, 95, 2, 6), (22, S, 100, 5, 5))
    book.stop_market(30, S, 95, 1, owner=9)
    book.stop_limit(31, B, 110, 111, 2, owner=9)
    return book


FUTURE = [
    msg(Kind.LIMIT, 40, B, 97, 1, owner=8),  # self-trade with ask 11: both cancelled
    msg(Kind.AMEND, 20, price=96, qty=3),    # a reduction, requeued under ALWAYS_REQUEUE
    msg(Kind.MARKET, 41, S, qty=20, owner=1),  # sweeps the bids, triggers stop 30
    msg(Kind.CANCEL, 31), msg(Kind.LIMIT, 42, B, 101, 1),
]


def assert_same_book_and_future(original, clone):
    assert clone is not original
    assert state(clone) == state(original)
    ref = run(original, FUTURE)
    assert run(clone, FUTURE) == ref
    assert state(clone) == state(original)


def test_copy_has_identical_state_and_identical_future(book_cls):
    book = copy_book(book_cls)
    assert_same_book_and_future(book, book.copy())


def test_pickle_round_trip_has_identical_state_and_identical_future(book_cls):
    book = copy_book(book_cls)
    assert_same_book_and_future(book, pickle.loads(pickle.dumps(book)))


def test_copy_is_independent(book_cls):
    book = copy_book(book_cls)
    before = state(book)
    clone = book.copy()
    run(clone, FUTURE)
    clone.limit(99, B, 1, 1)
    assert state(book) == before
    assert state(clone) != before


# --------------------------------------------------------------------------- threads


def test_a_book_busy_with_a_batch_in_another_thread_refuses_other_calls():
    import threading

    from orderbook import OrderBook

    book = OrderBook()
    n = 3_000_000
    batch = np.zeros(n, dtype=MESSAGE_DTYPE)
    batch["kind"] = Kind.LIMIT
    batch["side"] = Side.BUY
    batch["price"] = 1 + np.arange(n) % 1000
    batch["qty"] = 1
    batch["order_id"] = np.arange(n)
    worker = threading.Thread(target=book.process, args=(batch,))
    worker.start()
    seen_busy = False
    while worker.is_alive() and not seen_busy:
        seen_busy = book.busy
    if seen_busy:
        with pytest.raises(RuntimeError, match="processing a batch"):
            book.limit(-1, Side.SELL, 5, 1)
        with pytest.raises(RuntimeError, match="processing a batch"):
            book.l3()
    worker.join()
    assert not book.busy
    assert book.n_orders == n
    if not seen_busy:
        pytest.skip("the batch finished before the main thread was scheduled")


# ------------------------------------------- reliability: damaged pickles and extreme values


def test_restoring_a_damaged_engine_pickle_raises_instead_of_corrupting():
    from orderbook import OrderBook

    book = OrderBook()
    book.limit(1, Side.BUY, 100, 5)
    book.limit(2, Side.SELL, 101, 5)
    func, (tick, lot, stp, rule, state) = book.__reduce__()
    resting, armed, last, seq, msg = state
    crossed = [(1, 0, Side.BUY, Kind.LIMIT, 102, 5), (2, 0, Side.SELL, Kind.LIMIT, 101, 5)]
    with pytest.raises(ValueError, match="corrupt"):
        func(tick, lot, stp, rule, (crossed[::-1], armed, last, seq, msg))
    duplicate = [(1, 0, Side.BUY, Kind.LIMIT, 100, 5), (1, 0, Side.BUY, Kind.LIMIT, 99, 5)]
    with pytest.raises(ValueError, match="corrupt"):
        func(tick, lot, stp, rule, (duplicate, armed, last, seq, msg))
    assert pickle.loads(pickle.dumps(book)).l3().tolist() == book.l3().tolist()


def _pickled_state(book_cls):
    """A book with a resting bid and ask, an armed stop of each kind and a last price."""
    book = book_cls()
    book.limit(1, B, 100, 5)
    book.limit(2, S, 101, 5)
    book.limit(3, S, 102, 5)
    book.market(4, B, 5)                      # last price 101
    book.stop_market(5, S, 90, 2)
    book.stop_limit(6, B, 110, 111, 2)
    func, args = book.__reduce__()
    return book, func, args


def test_resting_and_armed_orders_read_the_same_bytes_on_both_books():
    # padding included: the reference's records are zeroed as the compiled book's are
    from orderbook.reference import OrderBook as ReferenceBook

    books = [_pickled_state(cls)[0] for cls in (OrderBook, ReferenceBook)]
    assert books[0].l3().tobytes() == books[1].l3().tobytes()
    assert books[0].stops().tobytes() == books[1].stops().tobytes()


def test_pickled_state_round_trips_with_every_kind_of_order(book_cls):
    book, func, args = _pickled_state(book_cls)
    copy = func(*args)
    assert copy.l3().tobytes() == book.l3().tobytes()
    assert copy.stops().tobytes() == book.stops().tobytes()
    assert (copy.last_price, copy.event_count, copy.message_count) == (
        101, book.event_count, book.message_count)


@pytest.mark.parametrize("field, damage", [
    ("resting[0].price", lambda r, a, s: r.__setitem__(0, r[0][:4] + (0,) + r[0][5:])),
    ("resting[0].qty", lambda r, a, s: r.__setitem__(0, r[0][:5] + (5.0,))),
    ("resting[0].kind", lambda r, a, s: r.__setitem__(0, r[0][:3] + (Kind.MARKET,) + r[0][4:])),
    ("resting[0].side", lambda r, a, s: r.__setitem__(0, r[0][:2] + (True,) + r[0][3:])),
    ("resting[0]", lambda r, a, s: r.__setitem__(0, r[0][:5])),
    ("armed[0].stop_price", lambda r, a, s: a.__setitem__(0, a[0][:5] + (101,) + a[0][6:])),
    ("armed[0].price", lambda r, a, s: a.__setitem__(0, a[0][:4] + (95,) + a[0][5:])),
    ("armed[1].price", lambda r, a, s: a.__setitem__(1, a[1][:4] + (0,) + a[1][5:])),
    ("armed[0].kind", lambda r, a, s: a.__setitem__(0, a[0][:3] + (Kind.LIMIT,) + a[0][4:])),
    ("seq", lambda r, a, s: s.__setitem__(3, -1)),
    ("msg", lambda r, a, s: s.__setitem__(4, s[3] + 1)),
    ("last_price", lambda r, a, s: s.__setitem__(2, 0)),
    ("last_price", lambda r, a, s: s.__setitem__(2, 101.0)),
])
def test_a_damaged_book_pickle_raises_value_error_naming_the_field(book_cls, field, damage):
    _, func, (tick, lot, stp, rule, state) = _pickled_state(book_cls)
    resting, armed = list(state[0]), list(state[1])
    fields = list(state)
    damage(resting, armed, fields)
    fields[0], fields[1] = resting, armed
    with pytest.raises(ValueError, match=r"corrupt OrderBook state: " + re.escape(field)):
        func(tick, lot, stp, rule, tuple(fields))


def _padding_bytes(dtype):
    """Offsets of the bytes in one record of ``dtype`` that belong to no field."""
    used = set()
    for name in dtype.names:
        field, offset = dtype.fields[name][:2]
        used.update(range(offset, offset + field.itemsize))
    return sorted(set(range(dtype.itemsize)) - used)


def test_result_arrays_have_zeroed_padding_so_equal_runs_are_byte_equal():
    from orderbook import OrderBook

    rng = np.random.default_rng(7)
    n = 5_000
    batch = np.zeros(n, dtype=MESSAGE_DTYPE)
    batch["kind"] = rng.choice([Kind.LIMIT, Kind.MARKET, Kind.CANCEL, Kind.STOP_MARKET], n)
    batch["side"] = rng.choice([1, -1], n)
    batch["order_id"] = rng.integers(0, 2_000, n)
    batch["price"] = rng.integers(90, 110, n)
    batch["stop_price"] = rng.integers(80, 120, n)
    batch["qty"] = rng.integers(1, 20, n)
    runs = []
    for _ in range(2):
        book = OrderBook()
        runs.append((book.process(batch), book.l3(), book.stops()))
    for first, second in zip(*runs, strict=True):
        pad = _padding_bytes(first.dtype)
        assert pad, first.dtype                  # the dtypes are aligned, so padding exists
        raw = first.view(np.uint8).reshape(len(first), first.dtype.itemsize)
        assert not raw[:, pad].any()
        assert first.tobytes() == second.tobytes()


def test_process_reads_unaligned_and_strided_message_arrays():
    from orderbook import OrderBook

    rows = [{"kind": Kind.LIMIT, "order_id": i, "side": B if i % 2 else S,
             "price": 100 + (i % 7) - (3 if i % 2 else -3), "qty": 1 + i % 5} for i in range(64)]
    aligned = messages(rows)
    raw = np.zeros(aligned.nbytes + 1, dtype=np.uint8)
    raw[1:] = aligned.view(np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=MESSAGE_DTYPE, offset=1)
    assert not unaligned.flags.aligned
    strided = np.repeat(aligned, 2)[::2]
    assert not strided.flags.c_contiguous
    expected = OrderBook().process(aligned).tobytes()
    assert OrderBook().process(unaligned).tobytes() == expected
    assert OrderBook().process(strided).tobytes() == expected


def test_process_refuses_anything_but_a_one_dimensional_message_array(book_cls):
    book = book_cls()
    with pytest.raises(ValueError, match="one-dimensional"):
        book.process(np.zeros((), dtype=MESSAGE_DTYPE))
    with pytest.raises(ValueError, match="one-dimensional"):
        book.process(np.zeros((2, 2), dtype=MESSAGE_DTYPE))
    with pytest.raises(TypeError, match="MESSAGE_DTYPE"):
        book.process([(1, 0, 100, 0, 1, 1, 1)])
    assert book.message_count == 0


@pytest.mark.parametrize("value", [True, False, 1.0, [1], (1,), "1", None, 2**64,
                                   np.array([1]), np.float64(1.0)])
def test_membership_is_false_for_anything_but_an_integer_id(book_cls, value):
    book = book_cls()
    book.limit(1, B, 100, 5)
    book.limit(0, B, 99, 5)
    assert (value in book) is False
    assert (np.int64(1) in book) is True


@pytest.mark.parametrize("call, name", [
    (lambda b: b.limit(np.array([5]), B, 100, 1), "order_id"),
    (lambda b: b.limit(1, B, np.array([100, 101]), 1), "price"),
    (lambda b: b.limit(1, B, 100, np.array([1])), "qty"),
    (lambda b: b.l2(np.array([3])), "n"),
    (lambda b: b.impact(B, np.array([3])), "qty"),
    (lambda b: type(b)(stp=5), "stp"),
    (lambda b: type(b)(amend_rule=7), "amend_rule"),
    (lambda b: type(b)(stp="cancel"), "stp"),
])
def test_every_refusal_names_the_argument(book_cls, call, name):
    book = book_cls()
    with pytest.raises((TypeError, ValueError), match=rf"^{name} "):
        call(book)
    assert book.message_count == 0 and book.n_orders == 0


def test_quantities_at_the_lowest_int64_price_are_read_without_overflow():
    # found by the book_calls fuzzer under UBSan: -INT64_MIN overflowed in the level key
    from orderbook import OrderBook, Side

    book = OrderBook()
    book.limit(1, Side.BUY, 5, 3, 1)
    book.limit(2, Side.SELL, 7, 4, 1)
    low = -(2**63)
    assert book.quantity_at(Side.BUY, low) == book.quantity_at(Side.SELL, low) == 0
    assert book.resting_qty(Side.BUY, low) == 3 and book.resting_qty(Side.SELL, low) == 0
