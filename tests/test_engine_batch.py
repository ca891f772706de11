"""The engine's batch path, ``Engine.process`` (docs/liquidation.md, "Batches").

Differential property tests: ``process(rows)`` on one copy of an engine must give what the
per-call loop ``submit(...)`` per row gives on another copy (a refused row, which raises
``OrderError`` per call, being one REJECTED event with its reason that takes a sequence and a
message number, as in ``OrderBook.process``): the same events once numbered alike, accounts,
trades, queue, fund, forced records, books and marks; with ``liquidate_every`` the per-call loop
runs ``liquidation_round()`` after every n-th row. Both on the compiled engine and on the
reference, and the compiled engine's ``process`` against the reference's on the same inputs.
Engines are drawn with ``orderbook.strategies`` (rules, account populations), then rows valid
and invalid (bad kinds, sides, prices past max_price, quantities, duplicate and unknown ids,
orders too large for the margin or max_position) from several owners. A second machine drives a
venue of three instruments (a spot book, isolated accounts). Then: the caller's errors raise
before anything runs and change nothing; threads (one engine refuses a second caller, two
engines run their batches in parallel).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from orderbook import OrderError
from orderbook.events import (
    EVENT_DTYPE,
    FORCED_DTYPE,
    INSURANCE_FUND,
    MESSAGE_DTYPE,
    AmendRule,
    Asset,
    BatchResult,
    Event,
    EventKind,
    Instrument,
    Kind,
    Reason,
    SelfTradePrevention,
    Side,
    events_to_array,
)
from orderbook.strategies import account_populations, engine_rules

MID = 100
BACKSTOP = 50
NEW_KINDS = [Kind.LIMIT, Kind.MARKET, Kind.IOC, Kind.FOK, Kind.POST_ONLY, Kind.STOP_MARKET,
             Kind.STOP_LIMIT]


def _classes():
    from orderbook import Engine
    from orderbook.reference_engine import Engine as Reference

    return Engine, Reference


# --------------------------------------------------------------------------- observing


def _plain(value):
    """Python values with NaN made comparable."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if not hasattr(value, "_fields") else \
            tuple(_plain(v) for v in value)
    return value


def _rows(arr, numbered=True):
    names = [n for n in arr.dtype.names if numbered or n not in ("seq", "msg")]
    return _plain(arr[names].tolist())


def observe(engine, numbered=True):
    """Everything an engine shows, per instrument; ``numbered=False`` leaves out the numbers
    (seq, msg, the books' counters) a refusal takes only on the batch path."""
    n = len(engine.instruments)
    out = {
        "owners": engine.owners(),
        "accounts": [_plain(tuple(engine.account(o))) for o in engine.owners()],
        "queue": engine.queue(),
        "fund": engine.insurance_fund,
        "fees": engine.fees_collected,
        "deposits": engine.total_deposits,
        "forced": _rows(engine.forced_orders()),
        "fund_history": engine.fund_history().tolist(),
    }
    for i in range(n):
        book = engine.books[i]
        out[i] = {"l3": book.l3().tolist(), "stops": book.stops().tolist(),
                  "last": book.last_price, "mark": engine.mark_price(i),
                  "trades": _rows(engine.trades(i), numbered),
                  "open_interest": engine.open_interest(i)}
        if numbered:
            out[i]["counts"] = (book.event_count, book.message_count)
    return out


def per_call(engine, rows, instrument=0, every=0):
    """The per-call loop ``process`` stands for; each row's outcome: ("ok", events) or
    ("refused", reason, event_count, message_count) with the book's counters then."""
    book = engine.books[instrument]
    out = []
    for n, row in enumerate(rows.tolist(), 1):
        order_id, owner, price, stop_price, qty, kind, side = row
        try:
            out.append(("ok", engine.submit(kind, order_id, side, price, qty, owner, stop_price,
                                            instrument=instrument)))
        except OrderError as exc:
            out.append(("refused", exc.reason, book.event_count, book.message_count))
        if every and n % every == 0:
            engine.liquidation_round()
    return out


def expected_events(outcomes, rows):
    """The batch's events from the per-call outcomes: a refusal is one REJECTED event echoing
    its row and takes one sequence and one message number, shifting what follows."""
    seq_off = msg_off = 0
    out = []
    for outcome, row in zip(outcomes, rows.tolist(), strict=True):
        if outcome[0] == "ok":
            out += [e._replace(seq=e.seq + seq_off, msg=e.msg + msg_off) for e in outcome[1]]
            continue
        order_id, owner, price, stop_price, qty, kind, side = row
        _, reason, seq, msg = outcome
        out.append(Event(seq + seq_off, msg + msg_off, int(EventKind.REJECTED), int(reason),
                         side, order_id, owner, 0, 0, price, stop_price, qty))
        seq_off += 1
        msg_off += 1
    return events_to_array(out), (seq_off, msg_off)


def check_batch_matches_per_call(batch_engine, call_engine, rows, instrument=0, every=0):
    """Run ``rows`` through ``process`` on one engine and per call on the other; compare."""
    first = len(call_engine.forced_orders())
    before = [(b.event_count, b.message_count) for b in call_engine.books]
    outcomes = per_call(call_engine, rows, instrument, every)
    result = batch_engine.process(rows, instrument=instrument, liquidate_every=every)
    assert isinstance(result, BatchResult)
    events, forced = result
    assert events.dtype == EVENT_DTYPE and forced.dtype == FORCED_DTYPE
    want, (seq_off, msg_off) = expected_events(outcomes, rows)
    assert events.tolist() == want.tolist()
    assert _rows(forced) == _rows(call_engine.forced_orders()[first:])
    assert observe(batch_engine, numbered=False) == observe(call_engine, numbered=False)
    for i, (b, c, start) in enumerate(zip(batch_engine.books, call_engine.books, before,
                                          strict=True)):
        shift = (seq_off, msg_off) if i == instrument else (0, 0)
        assert (b.event_count - shift[0], b.message_count - shift[1]) == (
            c.event_count, c.message_count), i
        assert c.message_count >= start[1]
    for outcome in outcomes:
        event(f"row {outcome[1].name if outcome[0] == 'refused' else 'ran'}")
    if len(forced):
        event("forced orders inside the batch")
    return events


# --------------------------------------------------------------------------- rows


@st.composite
def message_rows(draw, owners, max_price, next_id, mid=MID, max_size=30):
    """Rows for an engine whose accounts are ``owners``: new orders near ``mid`` (some large
    enough for margin or max_position to refuse), cancels and amends of live, dead and unknown
    ids, ids reused; one row in four has one field spoiled (a bad kind, side, price or stop
    price, a price past ``max_price``, a quantity below 1)."""
    row = st.tuples(
        st.integers(0, next_id + 20), st.sampled_from(owners), st.integers(mid - 25, mid + 25),
        st.integers(mid - 20, mid + 20), st.integers(1, 30) | st.sampled_from([400, 5_000]),
        st.sampled_from([*NEW_KINDS, *NEW_KINDS[:3], Kind.CANCEL, Kind.AMEND, Kind.AMEND]),
        st.sampled_from([1, -1]))
    spoil = st.sampled_from([None, None, None, ("kind", 5, [0, 10, 255]),
                             ("side", 6, [0, 2, -7]), ("price", 2, [0, -3, max_price + 1]),
                             ("stop", 3, [0, max_price + 1]), ("qty", 4, [0, -1])])
    rows = []
    for base, how in draw(st.lists(st.tuples(row, spoil), min_size=1, max_size=max_size),
                           label="rows"):
        base = list(base)
        if how is not None:
            base[how[1]] = draw(st.sampled_from(how[2]), label=how[0])
        rows.append(tuple(base))
    return np.array(rows, dtype=MESSAGE_DTYPE)


# --------------------------------------------------------------------------- one instrument


@st.composite
def drawn_setup(draw):
    kw = draw(engine_rules(backstop=BACKSTOP), label="rules")
    kw.update(draw(st.fixed_dictionaries({
        "stp": st.sampled_from(list(SelfTradePrevention)),
        "amend_rule": st.sampled_from(list(AmendRule)),
        "max_position": st.sampled_from([None, 400]),
        "max_price": st.sampled_from([None, 200]),
    }), label="book and bounds"))
    population = draw(account_populations(backstop=kw.get("backstop")), label="population")
    return kw, population


@given(setup=drawn_setup(), data=st.data())
def test_process_is_the_per_call_loop_compiled_and_reference(setup, data):
    kw, population = setup
    engines = []
    for cls in _classes():
        engine = cls(**kw)
        population.apply(engine)
        engines.append(engine)
    compiled, reference = engines
    owners = [a[0] for a in population.accounts]
    rows = data.draw(message_rows(owners, compiled.max_price, population.next_order_id),
                     label="messages")
    every = data.draw(st.sampled_from([0, 0, 1, 3]), label="liquidate_every")
    note(f"rows = {rows.tolist()!r}, liquidate_every={every}")
    batches = []
    for engine in engines:
        other = engine.copy()
        batches.append((check_batch_matches_per_call(engine, other, rows, every=every),
                        engine))
    # compiled vs reference, process() on the same inputs: identical numbering too
    (c_events, c_engine), (r_events, r_engine) = batches
    assert c_events.tolist() == r_events.tolist()
    assert observe(c_engine) == observe(r_engine)
    # and a batch in chunks is the batch
    if every == 0 and len(rows) > 1:
        whole, parts = compiled.copy(), compiled.copy()
        cut = len(rows) // 2
        joined = np.concatenate([p.process(rows[a:b]).events for p, (a, b) in (
            (parts, (0, cut)), (parts, (cut, len(rows))))])
        assert joined.tolist() == whole.process(rows).events.tolist()


# --------------------------------------------------------------------------- several instruments

SAT = 10**8
PERP, SPOT, ETH = 0, 1, 2
LP, PRINTER = 90, 91
ISOLATED = (3, 4)


def venue(cls):
    """Three books (a perp, a spot book whose asset is collateral, another perp), an exempt LP
    and printer, users 1-2 cross (2 with BTC), 3-4 isolated with a position in the first perp."""
    eng = cls(instruments=[Instrument("BTC-PERP"), Instrument("BTCUSDT", spot=True),
                           Instrument("ETH-PERP")],
              tiers=[(None, 50_000, 100_000)], taker_fee_ppm=300, maker_fee_ppm=100,
              assets=[Asset("BTC", "0.00000001", "BTCUSDT", haircut_ppm=100_000)])
    eng.add_account(LP, 10**12, exempt=True)
    eng.deposit(LP, 1_000 * SAT, asset="BTC")
    eng.add_account(PRINTER, 10**9, exempt=True)
    eng.add_account(1, 5_000)
    eng.add_account(2, 20_000)
    eng.deposit(2, 50, asset="BTC")
    for owner in ISOLATED:
        eng.add_account(owner, 3_000, isolated_margin=2_000)
        eng.seed_position(owner, LP, MID, 5)
    oid = 0
    for i in (PERP, SPOT, ETH):
        for k in range(1, 4):
            eng.limit(oid, Side.SELL, MID + k, 10, LP, instrument=i)
            eng.limit(oid + 1, Side.BUY, MID - k, 10, LP, instrument=i)
            oid += 2
        eng.market(oid, Side.BUY, 1, PRINTER, instrument=i)   # a print: the marks
        oid += 1
    return eng, oid


@given(data=st.data())
def test_process_is_the_per_call_loop_on_a_venue_of_several_instruments(data):
    compiled, next_id = venue(_classes()[0])
    reference, _ = venue(_classes()[1])
    instrument = data.draw(st.sampled_from([PERP, SPOT, ETH]), label="instrument")
    owners = [LP, PRINTER, 1, 2] + ([] if instrument == SPOT else list(ISOLATED))
    rows = data.draw(message_rows(owners, compiled.max_price, next_id), label="messages")
    every = data.draw(st.sampled_from([0, 2]), label="liquidate_every")
    note(f"instrument={instrument}, rows = {rows.tolist()!r}, liquidate_every={every}")
    batches = [check_batch_matches_per_call(eng, eng.copy(), rows, instrument, every)
               for eng in (compiled, reference)]
    assert batches[0].tolist() == batches[1].tolist()
    assert observe(compiled) == observe(reference)


@pytest.mark.parametrize("which", [0, 1], ids=["compiled", "reference"])
def test_the_engines_refusals_are_rejected_events_with_their_reasons(which):
    eng, oid = venue(_classes()[which])
    big = 10**6
    rows = np.array([
        (oid, 1, MID, 0, big, Kind.LIMIT, 1),                 # initial margin
        (oid + 1, 3, MID, 0, 1, Kind.LIMIT, 1),               # isolated, holds BTC-PERP
        (oid + 2, 1, 2**40, 0, 1, Kind.LIMIT, 1),             # past max_price
        (oid + 3, 1, MID, 2**40, 1, Kind.STOP_LIMIT, 1),      # stop past max_price
        (oid + 4, 1, MID, 0, 1, Kind.LIMIT, 0),               # side
        (oid + 5, 1, MID, 0, 1, 42, 1),                       # kind
        (oid + 6, 1, MID, 0, 1, Kind.AMEND, 0),               # unknown order
        (oid + 7, 1, MID - 10, 0, 2, Kind.LIMIT, 1),          # rests
        (oid + 7, 1, MID - 10, 0, 2, Kind.LIMIT, 1),          # duplicate
    ], dtype=MESSAGE_DTYPE)
    events = eng.process(rows, instrument=ETH).events
    rejected = events[events["kind"] == int(EventKind.REJECTED)]
    assert [Reason(r).name for r in rejected["reason"]] == [
        "INSUFFICIENT_MARGIN", "ISOLATED_ELSEWHERE", "INVALID_PRICE", "INVALID_STOP_PRICE",
        "INVALID_SIDE", "INVALID_KIND", "UNKNOWN_ORDER", "DUPLICATE_ID"]
    assert (rejected["msg"] - events["msg"][0]).tolist() == [0, 1, 2, 3, 4, 5, 6, 8]
    # per call: the same refusals as OrderError with those reasons, and the same words as ever
    with pytest.raises(OrderError, match="does not cover the order's initial margin") as info:
        eng.limit(oid + 20, 1, MID, big, 1, instrument=ETH)
    assert info.value.reason == Reason.INSUFFICIENT_MARGIN
    with pytest.raises(OrderError, match="isolated account with a position") as info:
        eng.limit(oid + 20, 1, MID, 1, 3, instrument=ETH)
    assert info.value.reason == Reason.ISOLATED_ELSEWHERE
    with pytest.raises(OrderError, match=r"price must be in \[1, max_price=") as info:
        eng.limit(oid + 20, 1, 2**40, 1, 1, instrument=ETH)
    assert info.value.reason == Reason.INVALID_PRICE


@pytest.mark.parametrize("which", [0, 1], ids=["compiled", "reference"])
def test_max_position_is_a_position_limit_refusal(which):
    eng = _classes()[which](max_position=10)
    eng.add_account(1, 10**9, exempt=True)
    eng.add_account(2, 10**9)
    with pytest.raises(OrderError, match="past max_position 10") as info:
        eng.limit(1, Side.BUY, 100, 11, 1)
    assert info.value.reason == Reason.POSITION_LIMIT
    rows = np.array([(1, 1, 100, 0, 8, Kind.LIMIT, 1), (2, 1, 100, 0, 3, Kind.LIMIT, 1),
                     (1, 0, 100, 0, 12, Kind.AMEND, 0), (3, 2, 100, 0, 0, Kind.LIMIT, 1)],
                    dtype=MESSAGE_DTYPE)
    events = eng.process(rows).events
    assert [(EventKind(e["kind"]).name, Reason(e["reason"]).name) for e in events] == [
        ("ACCEPTED", "NONE"), ("REJECTED", "POSITION_LIMIT"), ("REJECTED", "POSITION_LIMIT"),
        ("REJECTED", "INVALID_QTY")]


# --------------------------------------------------------------------------- the caller's errors


BAD_BATCHES = [
    ("no-account", lambda r: r.__setitem__(2, (50, 77, MID, 0, 1, Kind.LIMIT, 1)), KeyError,
     r"messages\[2\]: owner 77 has no account"),
    ("negative-id", lambda r: r.__setitem__(3, (-4, 1, 0, 0, 0, Kind.CANCEL, 0)), ValueError,
     r"messages\[3\]: order_id must be >= 0"),
    ("fund", lambda r: r.__setitem__(1, (51, INSURANCE_FUND, MID, 0, 1, Kind.LIMIT, 1)),
     ValueError, r"messages\[1\]: orders cannot be sent for the insurance fund"),
]


@pytest.mark.parametrize("which", [0, 1], ids=["compiled", "reference"])
@pytest.mark.parametrize("name, spoil, exc, match", BAD_BATCHES,
                         ids=[b[0] for b in BAD_BATCHES])
def test_the_callers_errors_raise_before_anything_runs(which, name, spoil, exc, match):
    eng, oid = venue(_classes()[which])
    rows = np.array([(oid + k, 1 + k % 2, MID - 1 + k % 3, 0, 1, Kind.LIMIT, 1 - 2 * (k % 2))
                     for k in range(6)], dtype=MESSAGE_DTYPE)
    spoil(rows)
    # an owner without an account in a CANCEL or AMEND is no error (they use none)
    rows[5] = (0, 12345, MID + 1, 0, 10, Kind.AMEND, 0)
    before = observe(eng)
    with pytest.raises(exc, match=match):
        eng.process(rows, instrument=PERP)
    assert observe(eng) == before
    assert not eng.busy


@pytest.mark.parametrize("which", [0, 1], ids=["compiled", "reference"])
def test_an_isolated_account_on_a_spot_book_and_bad_arrays_raise_first(which):
    eng, oid = venue(_classes()[which])
    before = observe(eng)
    rows = np.array([(oid, 1, MID, 0, 1, Kind.LIMIT, 1), (oid + 1, 4, MID, 0, 1, Kind.LIMIT, 1)],
                    dtype=MESSAGE_DTYPE)
    with pytest.raises(ValueError, match=r"messages\[1\]: owner 4 is an isolated account"):
        eng.process(rows, instrument=SPOT)
    eng.process(rows[:0], instrument=SPOT)   # empty: nothing
    for bad, error in ((np.zeros(3, dtype=EVENT_DTYPE), TypeError),
                       (np.zeros((2, 2), dtype=MESSAGE_DTYPE), ValueError),
                       (rows.tolist(), TypeError)):
        with pytest.raises(error):
            eng.process(bad)
    for bad, error in (({"liquidate_every": -1}, ValueError),
                       ({"liquidate_every": 1.5}, TypeError),
                       ({"instrument": "XRP"}, KeyError)):
        with pytest.raises(error):
            eng.process(rows, **bad)
    assert observe(eng) == before
    # a strided, unaligned array is read as is (a private copy)
    raw = np.zeros(len(rows) * MESSAGE_DTYPE.itemsize * 2 + 1, np.uint8)
    strided = np.frombuffer(raw.data, MESSAGE_DTYPE, count=2 * len(rows) - 1, offset=1)[::2]
    strided[:] = rows
    out = eng.copy().process(rows[:1], instrument=PERP).events
    assert eng.process(strided[:1], instrument=PERP).events.tolist() == out.tolist()


# --------------------------------------------------------------------------- threads


def _stream(n, seed, accounts=50):
    from orderbook.flows import benchmark_stream

    msgs, _ = benchmark_stream("mixed", n, seed)
    rng = np.random.default_rng(seed)
    new = (msgs["kind"] >= 1) & (msgs["kind"] <= 7)
    msgs["owner"] = np.where(new, rng.integers(0, accounts + 1, len(msgs)), 0)
    return msgs


def _engine(accounts=50):
    from orderbook import Engine

    eng = Engine(taker_fee_ppm=500, maker_fee_ppm=200)
    eng.add_account(0, 10**15, exempt=True)
    for owner in range(1, accounts + 1):
        eng.add_account(owner, 10**10)
    return eng


def test_a_second_caller_is_refused_while_an_engine_runs_a_batch():
    msgs = _stream(300_000, 1)
    engine, fresh = _engine(), _engine()
    result = []
    worker = threading.Thread(target=lambda: result.append(engine.process(msgs)))
    worker.start()
    while not engine.busy and worker.is_alive():
        pass
    refused = set()
    calls = {
        "process": lambda: engine.process(msgs[:10]),
        "submit": lambda: engine.submit(Kind.LIMIT, 10**9, 1, 10, 1, 1),
        "account": lambda: engine.account(1),
        "liquidate": lambda: engine.liquidate(),
        "book.l3": lambda: engine.book.l3(),
        "copy": lambda: engine.copy(),
    }
    while worker.is_alive():
        for name, call in calls.items():
            try:
                call()
            except RuntimeError as exc:
                assert "busy in another thread" in str(exc)
                refused.add(name)
    worker.join()
    assert refused == set(calls)   # the batch outlasts many rounds of calls
    # nothing got into the batch: its events are those of the batch alone
    assert result[0].events.tobytes() == fresh.process(msgs).events.tobytes()


def test_two_engines_run_their_batches_in_parallel_with_serial_results():
    streams = [_stream(200_000, seed) for seed in (2, 3)]
    expected = [_engine().process(s).events.tobytes() for s in streams]
    engines = [_engine(), _engine()]
    results = [None, None]
    barrier = threading.Barrier(3)

    def run(k):
        barrier.wait()
        results[k] = engines[k].process(streams[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    barrier.wait()
    both_busy = False
    while any(t.is_alive() for t in threads):
        # both flags up at once, seen from this thread: both batches were in their GIL-free
        # loops at the same moment while this thread ran
        both_busy = both_busy or (engines[0].busy and engines[1].busy)
    for t in threads:
        t.join()
    assert [r.events.tobytes() for r in results] == expected
    assert both_busy
