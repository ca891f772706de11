"""Per-call and batch throughput against the matching engines a Python user can install instead.

One stream of ``--messages`` (default 200,000) messages in the shape every peer can run: new
limit orders around a random-walk mid, IOC orders, cancels of live orders, market orders, and
modifications as cancel + a new limit order with a fresh id (requeue). It is drawn by
simulating it on ``orderbook.reference.OrderBook`` (deterministic from ``--seed``), so every
cancel names a live order. Each engine replays it on a fresh book, best of ``--repeats``
interleaved rounds (every path once per round), and its final book is checked against the
reference's: best bid and ask, resting orders and lots per side, and lots at each of the
reference's price levels. A peer that disagrees is reported, not timed into the table.

Paths (ours):
  orderbook/per-call          ``limit``/``market``/``ioc``/``cancel``, returning Event lists
  orderbook/per-call lean     the same calls with ``events=False`` (filled lots, no tuples)
  orderbook/batch             ``OrderBook.process(stream)``, one call, every event returned
  orderbook/batch out=        the same into a reused ``out=`` buffer
Peers (each skipped, with the reason, when not importable):
  limit-order-book 3.1.0      ``LimitOrderBook`` (C++; Python >= 3.13): limit_buy/limit_sell,
                              market_buy/market_sell, cancel; an IOC is a limit order cancelled
                              at once if it rests (it returns nothing, so ``has`` tells)
  pyorderbook                 ``Book.match(Order)`` with Decimal prices; a market order is a
                              limit at the far price, cancelled if anything rests
  liquibook, matching-engine  installable, but no adapter here yet: listed as skipped

The table gives messages per CPU second and each path's ratio to limit-order-book's per-call
rate in the same run (no ratio when it is absent), with the machine's load average. Setting up
a Python 3.13 environment with the peer: ``python3.13 -m venv /tmp/venv313 &&
/tmp/venv313/bin/pip install limit-order-book==3.1.0 pyorderbook . &&
/tmp/venv313/bin/python benchmarks/bench_peers.py``
(a non-editable install of this repository).

Run:  python benchmarks/bench_peers.py [--messages N] [--seed S] [--repeats K] [--quick] [--json]
With --json, stdout carries one JSON line per figure and the human output goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from orderbook import OrderBook
from orderbook.events import EVENT_DTYPE, MESSAGE_DTYPE, Kind
from orderbook.reference import OrderBook as ReferenceBook

LIMIT, MARKET, IOC, CANCEL = int(Kind.LIMIT), int(Kind.MARKET), int(Kind.IOC), int(Kind.CANCEL)
BUY, SELL = 1, -1
#: Every path is timed in CPU time (user + system, page faults included): on a shared machine
#: the wall time of a round depends on what else runs meanwhile, and moved the ratios by 2x
#: between two runs here.
clock = time.process_time


def make_stream(n: int, seed: int) -> np.ndarray:
    """``n`` messages (MESSAGE_DTYPE): 55% limits within 20 ticks of a random-walk mid, 10% IOC,
    20% cancels of a live order, 5% market orders, 10% modifications as cancel + new limit
    (two messages, counted as two). Quantities 1-50 lots; mid near 100,000 ticks."""
    rng = np.random.default_rng(seed)
    ref = ReferenceBook()
    rows, live = [], []
    next_id, mid = 1, 100_000

    def send(kind, oid, side=0, price=0, qty=0):
        rows.append((oid, 0, price, 0, qty, kind, side))
        if kind == CANCEL:
            ref.cancel(oid)
        else:
            ref.submit(kind, oid, side, price, qty)

    while len(rows) < n:
        mid += int(rng.integers(-1, 2))
        u = rng.random()
        side = BUY if rng.random() < 0.5 else SELL
        qty = int(rng.integers(1, 51))
        if len(rows) % 1_000 == 0:
            live = [oid for oid in live if oid in ref]   # drop the filled ones now and then
        if u < 0.20 and live:
            oid = live.pop(int(rng.integers(len(live))))
            if oid in ref:
                send(CANCEL, oid)
        elif u < 0.30 and live:
            oid = live.pop(int(rng.integers(len(live))))
            if oid in ref and len(rows) + 2 <= n:
                info = ref.order(oid)
                send(CANCEL, oid)
                price = info.price + int(rng.integers(-3, 4)) * -info.side
                send(LIMIT, next_id, info.side, max(price, 1), qty)
                live.append(next_id)
                next_id += 1
        elif u < 0.35:
            send(MARKET, next_id, side, 0, qty)
            next_id += 1
        elif u < 0.45:
            send(IOC, next_id, side, mid + side * int(rng.integers(0, 5)), qty)
            next_id += 1
        else:
            send(LIMIT, next_id, side, mid - side * int(rng.integers(-2, 21)), qty)
            live.append(next_id)
            next_id += 1
    return np.array(rows[:n], dtype=MESSAGE_DTYPE), ref


def reference_view(ref) -> dict:
    """What every engine's final book is compared on: touch, orders and lots per side, levels."""
    l2 = ref.l2(10**6)
    return {"bid": ref.best_bid(), "ask": ref.best_ask(),
            "orders": (int(l2.bid_orders.sum()), int(l2.ask_orders.sum())),
            "lots": (int(l2.bid_qty.sum()), int(l2.ask_qty.sum())),
            "levels": dict(zip(l2.bid_price.tolist() + l2.ask_price.tolist(),
                               l2.bid_qty.tolist() + l2.ask_qty.tolist(), strict=True))}


# ----------------------------------------------------------------------------------- ours

def ours_per_call(rows, events=True):
    book = OrderBook()
    limit, market, ioc, cancel = book.limit, book.market, book.ioc, book.cancel
    t0 = clock()
    for oid, _owner, price, _stop, qty, kind, side in rows:
        if kind == LIMIT:
            limit(oid, side, price, qty, events=events)
        elif kind == CANCEL:
            cancel(oid, events=events)
        elif kind == MARKET:
            market(oid, side, qty, events=events)
        else:
            ioc(oid, side, price, qty, events=events)
    return clock() - t0, book


def ours_lean(rows):
    return ours_per_call(rows, events=False)


def ours_batch(msgs, out=None):
    book = OrderBook()
    t0 = clock()
    book.process(msgs, out=out)
    return clock() - t0, book


def ours_view(book) -> dict:
    return reference_view(book)


# ---------------------------------------------------------------------------------- peers

def lob_replay(rows):
    from limit_order_book import LimitOrderBook

    book = LimitOrderBook()
    lb, ls, mb, ms, cancel, has = (book.limit_buy, book.limit_sell, book.market_buy,
                                   book.market_sell, book.cancel, book.has)
    t0 = clock()
    for oid, _owner, price, _stop, qty, kind, side in rows:
        if kind == LIMIT:
            (lb if side == BUY else ls)(oid, qty, price)
        elif kind == CANCEL:
            cancel(oid)
        elif kind == MARKET:
            (mb if side == BUY else ms)(oid, qty)
        else:
            (lb if side == BUY else ls)(oid, qty, price)
            if has(oid):
                cancel(oid)
    return clock() - t0, book


def lob_view(book, levels) -> dict:
    bid, ask = book.best_buy(), book.best_sell()
    return {"bid": bid or None, "ask": ask or None,
            "orders": (book.count_buy(), book.count_sell()),
            "lots": (book.volume_buy(), book.volume_sell()),
            "levels": {p: book.volume(p) for p in levels}}


def pyorderbook_replay(rows):
    from pyorderbook import Book, Order, Side

    book = Book()
    orders = {}
    far = {BUY: 10**9, SELL: 1}
    t0 = clock()
    for oid, _owner, price, _stop, qty, kind, side in rows:
        if kind == CANCEL:
            book.cancel(orders.pop(oid))
            continue
        order = Order(Side.BID if side == BUY else Side.ASK, "X",
                      far[side] if kind == MARKET else price, qty)
        book.match(order)
        if book.get_order(order.id) is not None:
            if kind == LIMIT:
                orders[oid] = order
            else:
                book.cancel(order)
    return clock() - t0, (book, orders)


def pyorderbook_view(state, levels) -> dict:
    from decimal import Decimal

    book, orders = state
    live = [o for o in orders.values() if book.get_order(o.id) is not None]
    bids = [o for o in live if o.side.value == "bid"]
    asks = [o for o in live if o.side.value == "ask"]
    per_level: dict[int, int] = {}
    for o in live:
        per_level[int(o.price)] = per_level.get(int(o.price), 0) + o.quantity
    assert all(o.price == Decimal(int(o.price)) for o in live)
    return {"bid": max((int(o.price) for o in bids), default=None),
            "ask": min((int(o.price) for o in asks), default=None),
            "orders": (len(bids), len(asks)),
            "lots": (sum(o.quantity for o in bids), sum(o.quantity for o in asks)),
            "levels": {p: per_level.get(p, 0) for p in levels}}


def importable(module: str) -> str | None:
    """None if ``module`` imports, else why not (the skip reason)."""
    try:
        __import__(module)
    except Exception as exc:  # noqa: BLE001 - any failure to import is a reason to skip
        return f"{type(exc).__name__}: {exc}"
    return None


NOT_WIRED = {"liquibook": "liquibook", "matching-engine": "matching_engine"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds; best of them")
    ap.add_argument("--quick", action="store_true", help="20,000 messages, 2 rounds")
    ap.add_argument("--json", action="store_true", help="one JSON line per figure on stdout")
    args = ap.parse_args(argv)
    if args.quick:
        args.messages, args.repeats = 20_000, 2
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else \
        (lambda s: print(s, flush=True))

    t0 = time.perf_counter()
    msgs, ref = make_stream(args.messages, args.seed)
    rows = msgs.tolist()
    want = reference_view(ref)
    kinds = np.bincount(msgs["kind"], minlength=9)
    log(f"{len(msgs):,} messages in {time.perf_counter() - t0:.1f}s: {kinds[LIMIT]:,} limit, "
        f"{kinds[IOC]:,} IOC, {kinds[CANCEL]:,} cancel, {kinds[MARKET]:,} market; final book "
        f"{want['orders'][0]:,} bids / {want['orders'][1]:,} asks")

    out = np.zeros(4 * len(msgs), dtype=EVENT_DTYPE)
    paths = [("orderbook/per-call", lambda: ours_per_call(rows), ours_view),
             ("orderbook/per-call lean", lambda: ours_lean(rows), ours_view),
             ("orderbook/batch", lambda: ours_batch(msgs), ours_view),
             ("orderbook/batch out=", lambda: ours_batch(msgs, out), ours_view)]
    skipped = []
    for name, module, replay, view in (
            ("limit-order-book", "limit_order_book", lob_replay, lob_view),
            ("pyorderbook", "pyorderbook", pyorderbook_replay, pyorderbook_view)):
        reason = importable(module)
        if reason:
            skipped.append((name, reason))
        else:
            paths.append((f"{name}/per-call", lambda r=replay: r(rows),
                          lambda b, v=view: v(b, want["levels"])))
    for name, module in NOT_WIRED.items():
        reason = importable(module)
        skipped.append((name, reason or "installed; no adapter to this stream yet"))

    best = {name: float("inf") for name, _, _ in paths}
    agree = {}
    for _ in range(args.repeats):
        for name, run, view in paths:
            seconds, book = run()
            best[name] = min(best[name], seconds)
            if name not in agree:
                agree[name] = view(book) == want
    base = best.get("limit-order-book/per-call")
    base_rate = len(msgs) / base if base else None
    load = os.getloadavg()[0]
    log(f"\n{'path':<26} {'M msg/s':>8} {'vs limit-order-book':>20}  book")
    for name, _, _ in paths:
        rate = len(msgs) / best[name]
        ratio = rate / base_rate if base_rate else None
        log(f"{name:<26} {rate / 1e6:>8.2f} {'' if ratio is None else f'{ratio:.2f}x':>20}  "
            f"{'agrees' if agree[name] else 'DIFFERS'}")
        if args.json:
            print(json.dumps(dict(
                benchmark="bench_peers", path=name, messages=len(msgs),
                cpu_seconds=round(best[name], 6), msgs_per_cpu_sec=round(rate, 1),
                ratio_vs_limit_order_book=None if ratio is None else round(ratio, 3),
                book_agrees=agree[name], best_of=args.repeats, load_1min=load,
                python=platform.python_version(), machine=platform.machine())), flush=True)
    for name, reason in skipped:
        log(f"{name:<26} skipped: {reason}")
    log(f"\nPython {platform.python_version()} on {platform.machine()}; seed {args.seed}; best "
        f"of {args.repeats} interleaved rounds; load average {load:.2f}")
    return 0 if all(agree.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
