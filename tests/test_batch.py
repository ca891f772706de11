"""The batch options (``orderbook.batch``: ``record=``, ``out=``) and the lean per-call path.

Differential tests: on copies of one book (or engine), ``process`` with a reused ``out=`` buffer
and with each record mode gives the default path's events (all of them, the TRADE and REJECTED
ones, or their counts) and leaves the same state; ``events=False`` per call leaves the same book
and returns the lots the event-building call's TRADE events show. A bad ``out=`` or ``record=``
raises, naming it, before anything changes; a buffer the events outgrow gives them in a new
array with OutGrewWarning.
"""

from __future__ import annotations

import os
import resource
import warnings

import numpy as np
import pytest
from book_helpers import state
from hypothesis import given, note
from hypothesis import strategies as st
from test_engine_batch import _rows, drawn_setup, message_rows, observe

from orderbook import Engine, OrderBook
from orderbook import strategies as obst
from orderbook.batch import RECORD_MODES, BatchCounts, OutGrewWarning
from orderbook.errors import OrderError
from orderbook.events import EVENT_DTYPE, MESSAGE_DTYPE, EventKind
from orderbook.flows import benchmark_stream

TRADE, REJECTED = int(EventKind.TRADE), int(EventKind.REJECTED)


def kept(events: np.ndarray, record: str):
    """What ``record`` keeps of the default path's ``events``."""
    if record == "trades":
        return events[(events["kind"] == TRADE) | (events["kind"] == REJECTED)]
    return events


def run_with_options(target, messages, record, out_rows, **kw):
    """``target.process(messages, record=..., out=np.zeros(out_rows))`` (no out when
    out_rows is None); the result, the buffer and the warnings issued."""
    out = None if out_rows is None else np.zeros(out_rows, dtype=EVENT_DTYPE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = target.process(messages, out=out, record=record, **kw)
    return result, out, [w.category for w in caught]


def check_same_as_default(want: np.ndarray, got, out, caught, n_messages: int, record: str):
    if record == "counters":
        assert got == BatchCounts.of(n_messages, want)
        return
    expected = kept(want, record)
    assert got.dtype == EVENT_DTYPE
    assert got.tolist() == expected.tolist()
    if out is None:
        assert caught == []
    elif len(expected) <= len(out):
        assert caught == []
        assert np.shares_memory(got, out) or len(expected) == 0
    else:
        assert not np.shares_memory(got, out) and caught == [OutGrewWarning]
        # out holds the start of the batch's events
        assert out.tolist() == expected[:len(out)].tolist()


def out_sizes(messages_len: int):
    """None (no buffer), a buffer too small for most batches, and a roomy one."""
    return st.sampled_from([None, messages_len, messages_len + 3, 4 * messages_len + 8])


# --------------------------------------------------------------------------- OrderBook


@given(book=obst.books(max_size=25), data=st.data())
def test_book_out_and_record_modes_give_the_default_path(book, data):
    messages = data.draw(obst.message_arrays(max_size=40) |
                         obst.message_arrays(max_size=40, loose=True), label="messages")
    record = data.draw(st.sampled_from(RECORD_MODES), label="record")
    rows = data.draw(out_sizes(len(messages)), label="out rows")
    if record == "counters":
        rows = None
    base, other = book.copy(), book.copy()
    want = base.process(messages)
    got, out, caught = run_with_options(other, messages, record, rows)
    note(f"record={record}, out rows={rows}, events={len(want)}")
    check_same_as_default(want, got, out, caught, len(messages), record)
    assert state(other) == state(base)


@pytest.mark.parametrize("record", RECORD_MODES)
def test_book_long_batch_crosses_the_scratch_flushes(record):
    # 6,000 messages emit several scratch buffers' worth (FLUSH_EVENTS = 2,048 events).
    messages, _ = benchmark_stream("crash", 6_000, seed=3)
    base, other = OrderBook(), OrderBook()
    want = base.process(messages)
    got, out, caught = run_with_options(other, messages, record, None)
    check_same_as_default(want, got, out, caught, len(messages), record)
    assert state(other) == state(base)
    if record != "counters":
        got, out, caught = run_with_options(OrderBook(), messages, record, len(want) + 1)
        check_same_as_default(want, got, out, caught, len(messages), record)


def test_book_out_is_reused_across_batches():
    messages, _ = benchmark_stream("mixed", 3_000, seed=4)
    out = np.zeros(3 * len(messages), dtype=EVENT_DTYPE)
    book, base = OrderBook(), OrderBook()
    for part in np.array_split(messages, 3):
        got = book.process(part, out=out)
        assert np.shares_memory(got, out)
        assert got.tolist() == base.process(part).tolist()
    assert state(book) == state(base)


def test_book_counters_count_by_kind():
    book = OrderBook()
    messages = np.array([(1, 7, 100, 0, 5, 1, 1), (2, 8, 0, 0, 3, 2, -1), (3, 8, 0, 0, 0, 2, -1)],
                        dtype=MESSAGE_DTYPE)
    # a bid of 5 rests; a market sell of 3 fills against it; a market sell of 0 lots is rejected
    assert book.process(messages, record="counters") == BatchCounts(
        messages=3, events=4, accepted=2, trades=1, cancelled=0, amended=0, rejected=1,
        stops_triggered=0, traded_qty=3)
    assert (book.message_count, book.event_count, book.quantity_at(1, 100)) == (3, 4, 2)


def bad_outs(n: int):
    """(out, record, the words the error must contain) for a batch of n messages."""
    read_only = np.zeros(2 * n, dtype=EVENT_DTYPE)
    read_only.flags.writeable = False
    return [
        (np.zeros(2 * n, dtype=MESSAGE_DTYPE), "all", "EVENT_DTYPE"),
        ([0] * (2 * n), "all", "EVENT_DTYPE"),
        (np.zeros((2, n), dtype=EVENT_DTYPE), "all", "one-dimensional"),
        (read_only, "all", "writable"),
        (np.zeros(4 * n, dtype=EVENT_DTYPE)[::2], "all", "C-contiguous"),
        (np.zeros(n - 1, dtype=EVENT_DTYPE), "all", "at least one row per message"),
        (np.zeros(2 * n, dtype=EVENT_DTYPE), "counters", "record='counters'"),
    ]


def four_sells(buffer=None):
    rows = [(10 + i, 0, 100, 0, 1, 1, -1) for i in range(4)]
    if buffer is None:
        return np.array(rows, dtype=MESSAGE_DTYPE)
    messages = buffer.view(MESSAGE_DTYPE)
    messages[:] = np.array(rows, dtype=MESSAGE_DTYPE)
    return messages


@pytest.mark.parametrize("case", range(8))
def test_book_bad_out_raises_naming_it_and_changes_nothing(case):
    book = OrderBook()
    book.limit(1, 1, 100, 5)
    if case < 7:
        out, record, words = bad_outs(4)[case]
        messages = four_sells()
    else:
        # out overlapping the messages it would overwrite while they are read
        raw = np.zeros(4 * 48 + 4 * 80, dtype=np.uint8)
        messages = four_sells(raw[:4 * 48])
        out, record, words = raw[160:160 + 4 * 80].view(EVENT_DTYPE), "all", "share memory"
    before = state(book)
    with pytest.raises((TypeError, ValueError), match="out") as info:
        book.process(messages, out=out, record=record)
    assert words in str(info.value)
    assert state(book) == before


@pytest.mark.parametrize("record, error", [("events", ValueError), (None, TypeError),
                                           (1, TypeError), ("ALL", ValueError)])
def test_book_bad_record_raises_naming_it_and_changes_nothing(record, error):
    book = OrderBook()
    before = state(book)
    with pytest.raises(error, match="record"):
        book.process(np.zeros(2, dtype=MESSAGE_DTYPE), record=record)
    assert state(book) == before


def test_book_empty_batch_in_every_mode():
    empty = np.zeros(0, dtype=MESSAGE_DTYPE)
    out = np.zeros(0, dtype=EVENT_DTYPE)
    assert len(OrderBook().process(empty, out=out)) == 0
    assert len(OrderBook().process(empty, record="trades")) == 0
    assert OrderBook().process(empty, record="counters") == BatchCounts(0, 0, 0, 0, 0, 0, 0, 0, 0)


# --------------------------------------------------------------------------- lean per call


def fills_of(events, order_id) -> int:
    return sum(e.qty for e in events if e.kind == TRADE and e.order_id == order_id)


@given(book=obst.books(max_size=10),
       messages=obst.message_sequences(max_size=40, refusals=True))
def test_book_lean_submit_leaves_the_same_book_and_reports_the_fills(book, messages):
    full, lean = book.copy(), book.copy()
    for m in messages:
        args = (m.kind, m.order_id, m.side, m.price, m.qty, m.owner, m.stop_price)
        try:
            events = full.submit(*args)
        except OrderError as exc:
            with pytest.raises(type(exc)) as info:
                lean.submit(*args, events=False)
            assert info.value.reason == exc.reason
            continue
        assert lean.submit(*args, events=False) == fills_of(events, m.order_id)
    assert state(lean) == state(full)


def test_book_lean_named_methods_return_the_fills():
    book = OrderBook()
    assert book.limit(1, 1, 100, 5, owner=7, events=False) == 0
    assert book.limit(2, 1, 101, 2, owner=7, events=False) == 0
    assert book.market(3, -1, 4, owner=8, events=False) == 4     # 2 at 101, 2 at 100
    assert book.ioc(4, -1, 100, 9, events=False) == 3            # the 3 left at 100
    assert book.post_only(5, 1, 99, 1, events=False) == 0
    assert book.amend(5, 99, 3, events=False) == 0
    assert book.fok(6, -1, 99, 4, events=False) == 0             # only 3 rest: killed
    assert book.stop_market(7, -1, 50, 1, events=False) == 0
    assert book.stop_limit(8, -1, 50, 49, 1, events=False) == 0
    assert book.cancel(7, events=False) == 0
    assert (book.n_orders, book.n_stops, book.best_bid()) == (1, 1, 99)


# --------------------------------------------------------------------------- Engine


def engine_pair(setup):
    kw, population = setup
    engine = Engine(**kw)
    population.apply(engine)
    return engine, [a[0] for a in population.accounts], population


@given(setup=drawn_setup(), data=st.data())
def test_engine_out_and_record_modes_give_the_default_path(setup, data):
    engine, owners, population = engine_pair(setup)
    rows = data.draw(message_rows(owners, engine.max_price, population.next_order_id),
                     label="messages")
    record = data.draw(st.sampled_from(RECORD_MODES), label="record")
    out_rows = None if record == "counters" else data.draw(out_sizes(len(rows)), label="out")
    every = data.draw(st.sampled_from([0, 2]), label="liquidate_every")
    base, other = engine.copy(), engine.copy()
    want = base.process(rows, liquidate_every=every)
    got, out, caught = run_with_options(other, rows, record, out_rows, liquidate_every=every)
    check_same_as_default(want.events, got.events, out, caught, len(rows), record)
    assert _rows(got.forced_orders) == _rows(want.forced_orders)  # NaN made comparable
    assert observe(other) == observe(base)


@given(setup=drawn_setup(), data=st.data())
def test_engine_lean_submit_leaves_the_same_engine_and_reports_the_fills(setup, data):
    engine, owners, population = engine_pair(setup)
    rows = data.draw(message_rows(owners, engine.max_price, population.next_order_id),
                     label="messages")
    full, lean = engine.copy(), engine.copy()
    for order_id, owner, price, stop, qty, kind, side in rows.tolist():
        args = (kind, order_id, side, price, qty, owner, stop)
        try:
            events = full.submit(*args)
        except (OrderError, KeyError, ValueError, TypeError) as exc:
            with pytest.raises(type(exc)) as info:
                lean.submit(*args, events=False)
            assert str(info.value) == str(exc)
            continue
        assert lean.submit(*args, events=False) == fills_of(events, order_id)
    assert observe(lean) == observe(full)


def test_engine_bad_out_raises_naming_it_and_changes_nothing():
    engine = Engine()
    engine.add_account(1, 10**9)
    rows = np.array([(10 + i, 1, 100, 0, 1, 1, 1) for i in range(4)], dtype=MESSAGE_DTYPE)
    before = observe(engine)
    for out, record in ((np.zeros(3, dtype=EVENT_DTYPE), "all"),
                        (np.zeros(8, dtype=MESSAGE_DTYPE), "all"),
                        (np.zeros(8, dtype=EVENT_DTYPE), "counters")):
        with pytest.raises((TypeError, ValueError), match="out"):
            engine.process(rows, out=out, record=record)
    with pytest.raises(ValueError, match="record"):
        engine.process(rows, record="nothing")
    assert observe(engine) == before


def test_a_dead_results_buffer_is_reused_and_a_live_ones_never_is():
    # A result of 1-32 MB goes back to the books as a spare buffer when it dies; a result
    # alive is never written to, and the next one made in the spare holds exactly its events.
    msgs, _ = benchmark_stream("mixed", 20_000, seed=3)       # ~2.7 MB of events reserved
    first = OrderBook().process(msgs)
    expected = first.tobytes()
    second = OrderBook().process(msgs)                        # first alive: a buffer of its own
    assert second.ctypes.data != first.ctypes.data
    assert second.tobytes() == expected
    where = first.ctypes.data
    del first
    book = OrderBook()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    third = book.process(msgs)                                # made in first's buffer
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    assert third.ctypes.data == where
    if not os.environ.get("ASAN_OPTIONS"):   # ASan's allocator and shadow memory fault apart
        # a fresh buffer faults its pages in (557 minor faults here); the spare's are mapped
        assert faults < 100, f"{faults} minor page faults: the spare buffer was not reused"
    assert third.tobytes() == expected and second.tobytes() == expected
    half = OrderBook().process(msgs[:10_000])                 # smaller: fits a dead one's too
    del third
    fourth = OrderBook().process(msgs[:10_000], record="trades")
    fifth = OrderBook().process(msgs[:10_000])
    assert fifth.tobytes() == half.tobytes()
    # (field by field: numpy's fancy indexing leaves the padding bytes of its copy unset)
    assert np.array_equal(fourth, half[np.isin(half["kind"], [EventKind.TRADE,
                                                             EventKind.REJECTED])])


def test_a_log_streamed_past_the_cache_holds_exactly_the_events_of_small_batches():
    # From 64 MB of expected log (book.pyx, STREAM_MIN) a batch writes its rows with stores that
    # bypass the cache, into its own buffer, into out=, and on through out='s outgrowing copy.
    drawn, _ = benchmark_stream("mixed", 20_000, seed=5)
    shift = int(drawn["order_id"].max()) + 1
    copies = []
    for k in range(27):                       # 540,000 messages: ~68 MB reserved at first
        copy = drawn.copy()
        copy["order_id"] += k * shift
        copies.append(copy)
    msgs = np.concatenate(copies)
    small = OrderBook()
    expected = b"".join(small.process(msgs[i:i + 20_000]).tobytes()
                        for i in range(0, len(msgs), 20_000))
    assert OrderBook().process(msgs).tobytes() == expected
    out = np.zeros(2 * len(msgs), dtype=EVENT_DTYPE)
    got = OrderBook().process(msgs, out=out)
    assert got.ctypes.data == out.ctypes.data and got.tobytes() == expected
    with pytest.warns(OutGrewWarning):
        grown = OrderBook().process(msgs, out=np.zeros(len(msgs), dtype=EVENT_DTYPE))
    assert grown.tobytes() == expected
