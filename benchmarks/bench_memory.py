"""Memory benchmark: bytes per resting order, bytes per account, flat RSS under churn.

Each measurement runs in a fresh child process (this script with ``--part NAME``), so its
baseline is a small interpreter and its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
belongs to that measurement alone. Two figures per structure:

  rss    current resident set (``/proc/self/statm``) after minus before, over the count;
  peak   peak RSS after minus current RSS before, over the count (includes the transient of the
         last std::vector / bucket-array doubling, when old and new buffers are both alive).

Parts (``--count``, default 1,000,000):

  orders/100-per-level  ``OrderBook.limit`` of COUNT resting bids on 10,000 price levels
  orders/1-per-level    COUNT resting bids, each on its own price level (worst case for levels)
  accounts/flat         ``Engine.add_account`` of COUNT accounts, no position
  accounts/positioned   the same, each then given a position against one exempt house account
                        (``seed_position``), which puts it in the liquidation-price index
  index/...             the liquidation-price index alone (orderbook/_btree.pxd): COUNT keys
                        inserted at random, ascending, descending, or at 1,000 places (price
                        i % 1,000, owner i, as accounts/positioned's), and at random followed by
                        COUNT erase-and-insert pairs (churn); RSS and node bytes per key
  churn                 a book holding a steady 10,000 orders; ``--cycles`` (default 1,000,000)
                        add/cancel cycles (add a new order, cancel the oldest), RSS after every
                        100,000 cycles, and the largest growth over the RSS after the fill.

tracemalloc does not see these structures: the book and ledger live in C++ containers
(std::vector, std::unordered_map, std::map/std::set, the index's B+-tree) allocated with
operator new, not through Python's allocator. The ``tracemalloc`` part shows it: it traces the
Python heap while adding 100,000 orders and finds next to nothing per order. RSS is the only
honest measure here.

Structure sizes (x86-64, libstdc++; the structs mirror orderbook/_types.pxd and accounts.pxd via
ctypes, node sizes are libstdc++'s layouts rounded up to glibc malloc's 16-byte chunks):

  Order (pool vector)             40 B (side and kind in the links' spare bits; an armed stop's
                                  stop price sits in a side map); the vector's capacity is a
                                  power of two (up to 2x)
  order id table                  5 B per bucket (a slot and a one-byte tag), open addressing at
                                  most 3/4 full, so 6.7 to 13.3 B per live order (10.5 B at
                                  exactly 1,000,000)
  owner table (accounts)          the order id table's layout (orderbook/_slottable.pxd): 5 B
                                  per bucket, so 6.7 to 13.3 B per account (10.5 B at exactly
                                  1,000,000); the std::unordered_map it replaced cost a 32 B
                                  node and an 8 B bucket pointer, 40 B
  price ladder (_price_ladder.pxd)  a 24 B Level slot per price in the window around the touch
                                  (up to 1/4 spare, plus a bit), shared by the orders resting at
                                  that price; levels away from it in a std::map node: 32 B
                                  header + 8 B key + 24 B Level = 64 B -> 80 B chunk
  Account (accounts vector)       88 B (instrument 0's 56-byte Position inside it; positions
                                  in other instruments sit in a pool, 56 B each)
  liquidation-price index key     (positioned accounts) a B+-tree leaf of up to 32 16-byte keys
                                  behind 24 B of header: 536 B -> 544 B chunk, 17 B a key when
                                  full; its fill policy keeps leaves 2/3 to full (about 18 B a key
                                  at 1,000 places, 21 at random; index/* measures it), branches
                                  add about 1 B. (A std::set node, before: 32 B header + 16 B
                                  key = 48 B -> 64 B chunk.)

So a resting order costs about 40 + 10.5 = 50.5 B plus its share of a level and the vectors'
spare capacity, and an account about 88 + 10.5 = 98.5 B (+ about 19 B once it holds a position)
plus spare capacity. The table gives each figure beside that estimate, and RSS over the estimate
(the share of spare capacity and allocator overhead).

With --json, each structure's line also carries ``target`` (the design budget: 64 B per resting
order, 128 B per account), ``target_met`` (RSS per item within it) and ``core_target_met`` (the
estimate within it), names kept for readers of earlier output.

Default run: about 17 s on a 2-core machine.

Run:  python benchmarks/bench_memory.py [--count N] [--cycles C] [--json]
With --json, stdout carries one JSON line per figure and the human output goes to stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
# Design budgets in bytes, reported only in the JSON lines (``target``), for earlier readers.
ORDER_TARGET, ACCOUNT_TARGET = 64, 128


def rss() -> int:
    """Current resident set size, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak() -> int:
    """Peak resident set size of this process, bytes (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Order(ctypes.Structure):  # orderbook/_types.pxd
    _fields_ = [("order_id", ctypes.c_int64), ("owner", ctypes.c_int64),
                ("price", ctypes.c_int64), ("qty", ctypes.c_int64),
                ("side", ctypes.c_int32, 3), ("prev", ctypes.c_int32, 29),
                ("kind", ctypes.c_uint32, 3), ("next", ctypes.c_int32, 29)]


class Level(ctypes.Structure):  # orderbook/_types.pxd
    _fields_ = [("total", ctypes.c_int64), ("head", ctypes.c_int32), ("tail", ctypes.c_int32),
                ("count", ctypes.c_int32)]


class Position(ctypes.Structure):  # orderbook/accounts.pxd
    _fields_ = [("position", ctypes.c_int64), ("cost", ctypes.c_int64),
                ("open_buy", ctypes.c_int64), ("open_sell", ctypes.c_int64),
                ("liq_price", ctypes.c_int64), ("instrument", ctypes.c_int32),
                ("next", ctypes.c_int32), ("indexed", ctypes.c_int8)]


class Account(ctypes.Structure):  # orderbook/accounts.pxd (instrument 0's Position inside)
    _fields_ = [("owner", ctypes.c_int64), ("collateral", ctypes.c_int64),
                ("reserve", ctypes.c_int64), ("pos", Position),
                ("exempt", ctypes.c_uint8), ("isolated", ctypes.c_uint8),
                ("queued", ctypes.c_uint8), ("multi", ctypes.c_uint8),
                ("holdings", ctypes.c_int32)]


def _chunk(n: int) -> int:
    """glibc malloc chunk for an n-byte request (8 B header, 16 B alignment, 32 B minimum)."""
    return max(32, (n + 8 + 15) // 16 * 16)


def id_table_bytes(count: int) -> int:
    """Bytes of the book's order id table holding ``count`` ids, or of the ledger's owner table
    holding ``count`` accounts: 5 B buckets (slot and tag), a power of two from 16 up, doubled
    whenever it would pass 3/4 full (orderbook/_idtable.pxd, _slottable.pxd)."""
    size = 16
    while count * 4 > size * 3:
        size *= 2
    return 5 * size


def structure_sizes() -> dict:
    level_node = _chunk(32 + 8 + ctypes.sizeof(Level))
    # a key at bench_memory's 1,000 places: a 544 B leaf over 32 keys at 93 % full (index/places
    # measures it), branches' share included
    index_key = 19.0
    # a price in the ladder's window: its Level slot and its occupancy bit
    level_slot = ctypes.sizeof(Level) + 1 / 8
    return dict(order=ctypes.sizeof(Order), level=ctypes.sizeof(Level), level_slot=level_slot,
                account=ctypes.sizeof(Account),
                level_node=level_node, index_node=index_key)


# ----------------------------------------------------------------------------- parts (children)
def part_orders(count: int, per_level: int) -> dict:
    from orderbook import OrderBook, Side
    book = OrderBook()
    levels = max(1, count // per_level)
    limit, buy = book.limit, Side.BUY
    gc.collect()
    r0, t0 = rss(), time.perf_counter()
    for i in range(count):
        limit(i, buy, 2_000_000 - (i % levels), 1 + (i & 7), i & 1023)
    seconds = time.perf_counter() - t0
    gc.collect()
    r1, p1 = rss(), peak()
    assert book.n_orders == count, book.n_orders
    return dict(count=count, levels=levels, rss_bytes=r1 - r0, peak_bytes=p1 - r0,
                seconds=seconds)


def part_accounts(count: int, positioned: bool) -> dict:
    from orderbook import Engine
    eng = Engine()
    house = 10**12
    eng.add_account(house, 10**15, exempt=True)
    add, seed = eng.add_account, eng.seed_position
    gc.collect()
    r0, t0 = rss(), time.perf_counter()
    if positioned:
        for i in range(count):
            add(i, 1_000_000)
            seed(i, house, 1_000_000 + (i % 1000), 1)
    else:
        for i in range(count):
            add(i, 1_000_000)
    seconds = time.perf_counter() - t0
    gc.collect()
    r1, p1 = rss(), peak()
    return dict(count=count, rss_bytes=r1 - r0, peak_bytes=p1 - r0, seconds=seconds)


def part_index(count: int, churn: int, pattern: int) -> dict:
    from orderbook.accounts import _index_fill
    gc.collect()
    r0, t0 = rss(), time.perf_counter()
    size, node_bytes, r1 = _index_fill(count, churn, pattern, 12345, rss)
    return dict(count=size, rss_bytes=r1 - r0, node_bytes=node_bytes,
                seconds=time.perf_counter() - t0)


INDEX_PARTS = {  # part: (label, pattern (accounts.pyx _index_fill), erase-and-insert pairs)
    "index_random": ("random", 0, False),
    "index_ascending": ("ascending", 1, False),
    "index_descending": ("descending", 2, False),
    "index_places": ("at 1,000 places", 3, False),
    "index_churn": ("random, then churn", 0, True),
}


def part_churn(cycles: int, steady: int = 10_000, every: int = 100_000) -> dict:
    from orderbook import OrderBook, Side
    book = OrderBook()
    limit, cancel, buy, sell = book.limit, book.cancel, Side.BUY, Side.SELL
    # Bids below 1,000,000 and asks above, so nothing ever trades: the book stays at `steady`.
    for i in range(steady):
        if i & 1:
            limit(i, buy, 999_999 - (i * 7919) % 500, 1 + (i & 7), 0)
        else:
            limit(i, sell, 1_000_001 + (i * 7919) % 500, 1 + (i & 7), 0)
    gc.collect()
    base = rss()
    samples = []
    t0 = time.perf_counter()
    for c in range(cycles):
        i = steady + c
        if i & 1:
            limit(i, buy, 999_999 - (i * 7919) % 500, 1 + (i & 7), 0)
        else:
            limit(i, sell, 1_000_001 + (i * 7919) % 500, 1 + (i & 7), 0)
        cancel(c)
        if (c + 1) % every == 0:
            samples.append((c + 1, rss(), book.n_orders))
    seconds = time.perf_counter() - t0
    assert book.n_orders == steady, book.n_orders
    return dict(cycles=cycles, steady=steady, base=base, samples=samples, seconds=seconds)


def part_tracemalloc(count: int) -> dict:
    import tracemalloc

    from orderbook import OrderBook, Side
    book = OrderBook()
    limit, buy = book.limit, Side.BUY
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    r0 = rss()
    for i in range(count):
        limit(i, buy, 2_000_000 - (i % 10_000), 1, 0)
    gc.collect()
    r1 = rss()
    after = tracemalloc.take_snapshot()
    traced = sum(s.size_diff for s in after.compare_to(before, "filename"))
    tracemalloc.stop()
    return dict(count=count, traced_bytes=traced, rss_bytes=r1 - r0)


PARTS = {
    "orders100": lambda a: part_orders(a.count, 100),
    "orders1": lambda a: part_orders(a.count, 1),
    "accounts": lambda a: part_accounts(a.count, False),
    "accounts_pos": lambda a: part_accounts(a.count, True),
    "churn": lambda a: part_churn(a.cycles),
    "tracemalloc": lambda a: part_tracemalloc(100_000),
    **{name: (lambda a, p=pattern, c=churn: part_index(a.count, a.count if c else 0, p))
       for name, (_, pattern, churn) in INDEX_PARTS.items()},
}


def child(name: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--part", name, "--count", str(args.count),
           "--cycles", str(args.cycles)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="orders / accounts added")
    ap.add_argument("--cycles", type=int, default=1_000_000, help="add/cancel cycles (churn)")
    ap.add_argument("--json", action="store_true", help="one JSON line per figure on stdout")
    ap.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.part:
        print(json.dumps(PARTS[args.part](args)))
        return 0
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else \
        (lambda s: print(s, flush=True))
    start = time.perf_counter()
    sizes = structure_sizes()
    common = dict(python=platform.python_version(), machine=platform.machine())

    def jline(**kw):
        if args.json:
            print(json.dumps(dict(benchmark="bench_memory", **kw, **common)), flush=True)

    order_core = sizes["order"] + id_table_bytes(args.count) / args.count
    account_core = sizes["account"] + id_table_bytes(args.count) / args.count
    rows = []
    for name, label, target, core in (
            ("orders100", "resting order, 100/level", ORDER_TARGET,
             order_core + sizes["level_slot"] / 100),
            ("orders1", "resting order, 1/level", ORDER_TARGET,
             order_core + sizes["level_slot"]),
            ("accounts", "account, flat", ACCOUNT_TARGET, account_core),
            ("accounts_pos", "account, with position", ACCOUNT_TARGET,
             account_core + sizes["index_node"])):
        r = child(name, args)
        per_rss, per_peak = r["rss_bytes"] / r["count"], r["peak_bytes"] / r["count"]
        rows.append((label, r["count"], per_rss, per_peak, core))
        log(f"[{name}] {r['count']:,} added in {r['seconds']:.2f}s: "
            f"RSS +{r['rss_bytes'] / 2**20:.1f} MiB, peak +{r['peak_bytes'] / 2**20:.1f} MiB")
        jline(figure=name, what=label, count=r["count"], rss_bytes=r["rss_bytes"],
              peak_bytes=r["peak_bytes"], bytes_each_rss=round(per_rss, 1),
              bytes_each_peak=round(per_peak, 1), structure_estimate=round(core, 1),
              target=target, target_met=per_rss <= target, core_target_met=core <= target)
    log(f"\n{'index key (B+-tree)':<26} {'count':>10} {'B each (RSS)':>13} {'node B each':>12}")
    for name, (label, _, _) in INDEX_PARTS.items():
        r = child(name, args)
        per_rss, per_node = r["rss_bytes"] / r["count"], r["node_bytes"] / r["count"]
        log(f"{label:<26} {r['count']:>10,} {per_rss:>13.1f} {per_node:>12.1f}")
        jline(figure=name, what=f"index key, {label}", count=r["count"],
              rss_bytes=r["rss_bytes"], bytes_each_rss=round(per_rss, 1),
              node_bytes_each=round(per_node, 1))
    tm = child("tracemalloc", args)
    log(f"[tracemalloc] {tm['count']:,} orders: tracemalloc saw {tm['traced_bytes']:+,} B "
        f"({tm['traced_bytes'] / tm['count']:.2f} B/order); RSS grew {tm['rss_bytes']:,} B "
        f"({tm['rss_bytes'] / tm['count']:.1f} B/order)")
    jline(figure="tracemalloc", count=tm["count"], traced_bytes=tm["traced_bytes"],
          traced_bytes_each=round(tm["traced_bytes"] / tm["count"], 2),
          rss_bytes_each=round(tm["rss_bytes"] / tm["count"], 1))
    ch = child("churn", args)

    log(f"\n{'structure':<26} {'count':>10} {'B each (RSS)':>13} {'B each (peak)':>14} "
        f"{'est. core':>10} {'RSS / est.':>11}")
    for label, count, per_rss, per_peak, core in rows:
        log(f"{label:<26} {count:>10,} {per_rss:>13.1f} {per_peak:>14.1f} {core:>10.1f} "
            f"{per_rss / core:>10.2f}x")
    log(f"(est. core = struct + id table share (orders) or owner table share (accounts) "
        f"[+ ladder level share | + index key], no spare capacity; sizes: Order "
        f"{sizes['order']} B, Level {sizes['level']} B, Account {sizes['account']} B, id table "
        f"{id_table_bytes(args.count) / args.count:.1f} B/order at this count (the owner table "
        f"the same per account), ladder level slot {sizes['level_slot']:.1f} B (a level away "
        f"from the touch: map node {sizes['level_node']} B), index key "
        f"{sizes['index_node']} B)")

    log(f"\nchurn: steady {ch['steady']:,} orders, {ch['cycles']:,} add/cancel cycles in "
        f"{ch['seconds']:.1f}s; RSS after the fill {ch['base'] / 2**20:.2f} MiB")
    log(f"{'cycles':>10} {'RSS MiB':>9} {'vs fill KiB':>12} {'orders':>7}")
    growth = 0
    for cycles, r, n in ch["samples"]:
        growth = max(growth, r - ch["base"])
        log(f"{cycles:>10,} {r / 2**20:>9.2f} {(r - ch['base']) / 1024:>+12.0f} {n:>7,}")
        jline(figure="churn_rss", cycles=cycles, rss_bytes=r, growth_bytes=r - ch["base"],
              resting=n)
    first = ch["samples"][0][1] if ch["samples"] else ch["base"]
    after_first = max((r - first for _, r, _ in ch["samples"]), default=0)
    log(f"max growth over the fill: {growth / 1024:.0f} KiB; over the first 100,000 cycles' "
        f"sample: {after_first / 1024:.0f} KiB")
    jline(figure="churn_max_growth", cycles=ch["cycles"], steady=ch["steady"],
          max_growth_bytes=growth, max_growth_after_first_sample_bytes=after_first)
    log(f"\nPython {platform.python_version()} on {platform.machine()}; "
        f"total {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
