"""Thread safety of the compiled book: the batch path releases the GIL, so users run books on
threads.

One book serves one thread at a time: a call from another thread while a batch (or any other call)
is inside the book raises RuntimeError and changes nothing. Separate books run in parallel and give
the same results as run one after the other.
"""

import copy
import pickle
import threading

import numpy as np

from orderbook import OrderBook
from orderbook.events import MESSAGE_DTYPE, Kind, Side
from orderbook.testing import check_book

B, S = Side.BUY, Side.SELL


def stream(n, seed, *, strided=False):
    """``n`` mixed messages (limits, markets, cancels, amends, stops) with stale ids."""
    rng = np.random.default_rng(seed)
    out = np.zeros(2 * n if strided else n, dtype=MESSAGE_DTYPE)
    view = out[::2] if strided else out
    view["kind"] = rng.choice([Kind.LIMIT] * 6 + [Kind.MARKET, Kind.CANCEL, Kind.CANCEL,
                                                  Kind.AMEND, Kind.STOP_MARKET], n)
    view["side"] = rng.choice([1, -1], n)
    view["order_id"] = rng.integers(0, n // 4 + 1, n)
    view["price"] = rng.integers(9_900, 10_100, n)
    view["stop_price"] = rng.integers(9_800, 10_200, n)
    view["qty"] = rng.integers(1, 50, n)
    view["owner"] = rng.integers(0, 20, n)
    return view


def long_batch(n=2_000_000):
    """Resting limits only: a batch that keeps the book busy for a while and grows every table."""
    out = np.zeros(n, dtype=MESSAGE_DTYPE)
    out["kind"] = Kind.LIMIT
    out["side"] = np.where(np.arange(n) % 2 == 0, 1, -1)
    out["price"] = np.where(out["side"] == 1, 1 + np.arange(n) % 5_000,
                            10_001 + np.arange(n) % 5_000)
    out["qty"] = 1
    out["order_id"] = np.arange(n)
    return out


def test_two_threads_processing_one_book_serialise_or_refuse_and_never_corrupt_it():
    # Non-contiguous input makes process() copy it first: the copy (which releases the GIL for
    # large arrays) used to run before the busy flag was taken, and two batches then ran at once.
    book = OrderBook()
    batches = [stream(40_000, seed, strided=True) for seed in range(12)]
    done, refused = [], []
    lock = threading.Lock()

    def worker(ids):
        for i in ids:
            try:
                events = book.process(batches[i])
            except RuntimeError as exc:
                assert "busy in another thread" in str(exc)
                with lock:
                    refused.append(i)
            else:
                with lock:
                    done.append((int(events["seq"][0]), i))

    threads = [threading.Thread(target=worker, args=(range(k, 12, 2),)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) + len(refused) == 12 and done
    check_book(book)
    # The batches that ran, in the order the book numbered their events, replayed on one
    # thread give the same book.
    serial = OrderBook()
    for _, i in sorted(done):
        serial.process(batches[i])
    assert serial.l3().tobytes() == book.l3().tobytes()
    assert serial.stops().tobytes() == book.stops().tobytes()
    assert (serial.event_count, serial.message_count) == (book.event_count, book.message_count)


# Every public name of OrderBook, with a call that exercises it. A name missing here fails the
# coverage test below, so a new method cannot skip the busy check unnoticed.
CALLS = {
    "limit": lambda b: b.limit(-1, S, 20_000, 1),
    "market": lambda b: b.market(-2, B, 1),
    "ioc": lambda b: b.ioc(-3, B, 10_001, 1),
    "fok": lambda b: b.fok(-4, B, 10_001, 1),
    "post_only": lambda b: b.post_only(-5, S, 30_000, 1),
    "stop_market": lambda b: b.stop_market(-6, S, 1, 1),
    "stop_limit": lambda b: b.stop_limit(-7, S, 1, 1, 1),
    "cancel": lambda b: b.cancel(0),
    "amend": lambda b: b.amend(0, 1, 1),
    "submit": lambda b: b.submit(Kind.LIMIT, -8, B, 1, 1),
    "process": lambda b: b.process(np.zeros(3, dtype=MESSAGE_DTYPE)[::2]),
    "best_bid": lambda b: b.best_bid(),
    "best_ask": lambda b: b.best_ask(),
    "spread": lambda b: b.spread(),
    "mid": lambda b: b.mid(),
    "last_price": lambda b: b.last_price,
    "n_orders": lambda b: b.n_orders,
    "n_stops": lambda b: b.n_stops,
    "message_count": lambda b: b.message_count,
    "event_count": lambda b: b.event_count,
    "quantity_at": lambda b: b.quantity_at(B, 1),
    "resting_qty": lambda b: b.resting_qty(B, 1),
    "l2": lambda b: b.l2(5),
    "l3": lambda b: b.l3(),
    "stops": lambda b: b.stops(),
    "order": lambda b: b.order(0),
    "orders_of": lambda b: b.orders_of(0),
    "__contains__": lambda b: 12345 in b,
    "impact": lambda b: b.impact(S, 10),
    "copy": lambda b: b.copy(),
    "__copy__": lambda b: copy.copy(b),
    "__deepcopy__": lambda b: copy.deepcopy(b),
    "__reduce__": lambda b: pickle.dumps(b),
    # Safe during a batch: they read settings fixed at construction, or the flag itself.
    "busy": lambda b: b.busy,
    "tick_size": lambda b: b.tick_size,
    "lot_size": lambda b: b.lot_size,
    "stp": lambda b: b.stp,
    "amend_rule": lambda b: b.amend_rule,
    "to_ticks": lambda b: b.to_ticks("5"),
    "to_lots": lambda b: b.to_lots("5"),
    "to_price": lambda b: b.to_price(5),
    "to_qty": lambda b: b.to_qty(5),
    "__repr__": lambda b: repr(b),
}
SAFE = {"busy", "tick_size", "lot_size", "stp", "amend_rule", "to_ticks", "to_lots", "to_price",
        "to_qty", "__repr__"}


def test_the_thread_table_covers_every_public_method():
    public = {n for n in dir(OrderBook) if not n.startswith("_")}
    assert public <= set(CALLS), sorted(public - set(CALLS))


def test_every_public_method_called_during_a_batch_raises_or_is_safe():
    book = OrderBook()
    batch = long_batch()
    result = []
    worker = threading.Thread(target=lambda: result.append(book.process(batch)))
    worker.start()
    while not book.busy and worker.is_alive():
        pass  # nothing may run before the batch starts: its events are compared below
    outcomes = {name: set() for name in CALLS}
    while worker.is_alive():
        for name, call in CALLS.items():
            try:
                call(book)
            except RuntimeError as exc:
                assert "busy in another thread" in str(exc), (name, exc)
                outcomes[name].add("refused")
            except (KeyError, ValueError):
                outcomes[name].add("ran")  # an answer about the book, e.g. no order 0 yet
            else:
                outcomes[name].add("ran")
    worker.join()
    # Each method met the batch at least once (a 2 M-message batch outlasts many rounds of
    # calls) and refused it; the safe ones never refuse.
    for name, seen in outcomes.items():
        assert ("refused" in seen) == (name not in SAFE), (name, seen)
    # Nothing got into the batch: its events are those of the batch run alone. (Calls after
    # the batch ended may have run, so the book itself is not compared.)
    assert result[0].tobytes() == OrderBook().process(batch).tobytes()


def test_separate_books_run_their_batches_in_parallel_with_serial_results():
    streams = [stream(400_000, seed) for seed in (1, 2)]
    expected = [OrderBook().process(s).tobytes() for s in streams]
    books = [OrderBook(), OrderBook()]
    results = [None, None]
    barrier = threading.Barrier(3)

    def run(k):
        barrier.wait()
        results[k] = books[k].process(streams[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    barrier.wait()
    both_busy = False
    while any(t.is_alive() for t in threads):
        # Seen from this thread, both flags up at once means both batches were inside their
        # GIL-free loops at the same moment (and this thread ran meanwhile).
        both_busy = both_busy or (books[0].busy and books[1].busy)
    for t in threads:
        t.join()
    assert [r.tobytes() for r in results] == expected
    assert both_busy


def test_queries_through_an_engines_book_refuse_while_the_engine_works_and_vice_versa():
    # The engine drives its book through the book's C core; a query through engine.book from
    # another thread must never walk containers that the engine is changing (an l3() sized
    # before an engine call added orders would write past its array).
    import sys

    from orderbook import Engine
    from orderbook.testing import check_accounts

    engine = Engine(insurance_fund=10**9)
    for owner in range(8):
        engine.add_account(owner, 10**12)
    refusals = {"engine": 0, "book": 0}
    stop = threading.Event()

    def trader():
        # At least 3,000 steps, and on until the threads have met at least once (a refusal
        # either way): how soon they do is the scheduler's, and a faster engine call leaves a
        # smaller window (one CI run met none in 3,000 steps).
        oid = 0
        step = -1
        while step < 3_000 or (sum(refusals.values()) == 0 and step < 300_000):
            step += 1
            try:
                oid += 1
                side = 1 if step % 2 else -1
                engine.limit(oid, side, 10_000 - side * (1 + step % 40), 1 + step % 5, step % 8)
                if step % 3 == 0:
                    engine.market(10**6 + oid, -side, 3, (step + 1) % 8)
                if step % 7 == 0 and oid - 5 in engine.book:
                    engine.cancel(oid - 5)
            except RuntimeError as exc:
                assert "busy in another thread" in str(exc)
                refusals["engine"] += 1
        stop.set()

    def reader():
        while not stop.is_set():
            try:
                engine.book.l3()
                engine.book.stops()
                engine.book.l2(20)
            except RuntimeError as exc:
                assert "busy in another thread" in str(exc)
                refusals["book"] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=trader), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert sum(refusals.values()) > 0
    check_book(engine.book)
    check_accounts(engine)
