"""Thread safety of the compiled book: the batch path releases the GIL, so users run books on threads.

One book serves one thread at a time: a call from another thread while a batch (or any other call)
is inside the book raises RuntimeError and changes nothing. Separate books run in parallel and give
the same results as run one after the other.
"""

import copy
import pickle
import threading

import numpy as np
import pytest

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
    started = threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), book.process(batch)))
    worker.start()
    started.wait()
    outcomes = {name: set() for name in CALLS}
    while worker.is_alive():
        for name, call in CALLS.items():
            busy = book.busy
            try:
                call(book)
            except RuntimeError as exc:
                assert "busy in another thread" in str(exc), (name, exc)
                outcomes[name].add("refused")
            else:
                outcomes[name].add("ran" if not busy else "ran while busy")
    worker.join()
    for name in SAFE:
        assert "refused" not in outcomes[name], name
    refused = {name for name, seen in outcomes.items() if "refused" in seen}
    if not refused:
        pytest.skip("the batch ended before the main thread got to call anything")
    for name, seen in outcomes.items():
        assert "ran while busy" not in seen or name in SAFE, (name, seen)
    # None of the refused calls changed anything: the book is the batch's book.
    alone = OrderBook()
    alone.process(batch)
    assert book.l3().tobytes() == alone.l3().tobytes()
    assert (book.event_count, book.message_count) == (alone.event_count, alone.message_count)


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
