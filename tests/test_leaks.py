"""Memory stays flat: books, engines and scenarios created, used, copied and pickled many times.

Each test runs a warm-up, reads the resident set size, runs 10^5 cycles (scenarios: a few dozen
runs) and reads it again. A leak of a few dozen bytes per cycle shows as megabytes. These run in
``.ci/run`` (``python -m pytest -m leak``), not in the default quick run.
"""

import copy
import gc
import os
import pickle

import numpy as np
import pytest

from orderbook import Engine, OrderBook
from orderbook.events import MESSAGE_DTYPE, Kind

pytestmark = [
    pytest.mark.leak,
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS read from /proc"),
]

CYCLES = 100_000
# Allowance for the allocator's own growth (arenas, numpy's caches): far below what a leak of
# 32 bytes per cycle over 10^5 cycles would add (3.2 MB).
ALLOWED_BYTES = 2 * 1024 * 1024


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def assert_flat(cycle, cycles=CYCLES, warmup=None):
    warmup = warmup if warmup is not None else max(cycles // 10, 1)
    for i in range(warmup):
        cycle(i)
    before = rss()
    for i in range(cycles):
        cycle(i)
    grown = rss() - before
    assert grown <= ALLOWED_BYTES, f"RSS grew {grown:,} bytes over {cycles:,} cycles"


def small_batch():
    out = np.zeros(24, dtype=MESSAGE_DTYPE)
    out["kind"] = [Kind.LIMIT] * 8 + [Kind.MARKET] * 4 + [Kind.CANCEL] * 4 + [Kind.AMEND] * 4 \
        + [Kind.STOP_MARKET] * 2 + [99, Kind.LIMIT]        # one invalid kind, one duplicate id
    out["order_id"] = list(range(8)) + list(range(8, 12)) + [0, 2, 40, 41] + [1, 3, 5, 7] \
        + [20, 21, 99, 1]
    out["side"] = [1, -1] * 12
    out["price"] = [100, 101, 99, 102, 98, 103, 97, 104] + [0] * 4 + [0] * 4 + [99, 103, 96, 105] \
        + [0, 0, 0, 100]
    out["stop_price"] = [0] * 20 + [110, 90, 0, 0]
    out["qty"] = 3
    return out


def test_books_created_used_copied_and_pickled_keep_memory_flat():
    batch = small_batch()

    def cycle(i):
        book = OrderBook("0.01", "0.001")
        book.process(batch)
        book.limit(1000 + i % 7, 1, 95, 2)
        try:
            book.limit(1000 + i % 7, 1, 95, 2)        # duplicate id: the error path too
        except ValueError:
            pass
        book.l2(5)
        book.l3()
        book.stops()
        book.impact(-1, 5)
        assert (5 in book) in (True, False)
        book.copy().market(2000, -1, 1)
        pickle.loads(pickle.dumps(book))

    assert_flat(cycle)


def test_engines_created_used_copied_and_pickled_keep_memory_flat():
    def cycle(i):
        engine = Engine(insurance_fund=10_000)
        for owner in range(4):
            engine.add_account(owner, 100_000)
        engine.limit(1, 1, 99, 10, 0)
        engine.limit(2, -1, 101, 10, 1)
        engine.seed_position(2, 3, 100, 5)
        engine.market(3, 1, 4, 2)
        engine.account(3)
        engine.liquidate()
        engine.forced_orders()
        engine.trades()
        copy.deepcopy(engine)
        pickle.loads(pickle.dumps(engine))

    assert_flat(cycle, cycles=CYCLES // 4)


def test_repeated_scenario_runs_keep_memory_flat():
    from orderbook import default_scenario, run

    scenario = default_scenario(0.01)
    assert_flat(lambda i: run(scenario), cycles=40, warmup=5)
