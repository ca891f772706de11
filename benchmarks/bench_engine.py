"""Throughput benchmark of the margin engine: ``Engine.process`` against the per-call path.

What it measures (messages per second, the same stream with owners for every path, each run on a
fresh copy of one prepared engine; the copy is not timed):

  per-call          a Python loop calling ``engine.submit(kind, order_id, side, price, qty,
                    owner, stop_price)`` once per message (matching, settlement, fees, the mark)
  batch             ``engine.process(msgs)``: one call, the loop without the GIL
  chunks-N          ``engine.process`` on consecutive chunks of N messages (``--chunks``)
  reference/...     the pure-Python reference engine's per-call loop and ``process`` on a prefix
                    of ``--ref-messages`` messages (one run each; the ratio stays comparable)

The engine: k = 1, the default tier (0.5 % maintenance, 1 % initial margin, checked on every
order), taker fee 5 bp, maker fee 2 bp; ``--accounts`` margined accounts (default 1,000) with
10**10 quote units each (enough that no order is refused) and an exempt maker with 10**15.
Workloads: ``orderbook.flows.benchmark_stream`` (mixed, deep, crash; it documents them), whose
new orders get owners from ``np.random.default_rng(seed)``: half the exempt maker, half one of
the margined accounts drawn uniformly (so trades settle between margined accounts, against the
maker, and each account's margin check sees its own positions and open orders).

The paths run interleaved, best of ``--repeats`` (default 3) each, and the ratio column is each
path's rate over the engine's per-call rate in the same run. A sanity check then asserts that
the batch's events equal the per-call path's (every one, numbered alike: nothing is refused),
that both engines end with equal trades, fees, accounts (every owner) and books, and that the
reference engine's ``process`` gives the compiled engine's events on the prefix; the script
exits 1 otherwise. Default run (3 regimes x 200,000 messages, the reference on 10,000): about
1.5 min on a 2-core machine.

Run:  python benchmarks/bench_engine.py [--messages N] [--seed S] [--regime mixed|deep|crash|all]
                                        [--accounts A] [--repeats K] [--chunks N,N]
                                        [--ref-messages P] [--json]
With --json, stdout carries one JSON line per figure and the human output goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from orderbook import Engine, events_to_array
from orderbook.flows import BENCHMARK_REGIMES as REGIMES
from orderbook.flows import benchmark_stream as generate
from orderbook.reference_engine import Engine as ReferenceEngine

MAKER = 0   # the exempt maker's owner id (margined accounts are 1..accounts, however many)
SETTINGS = {"taker_fee_ppm": 500, "maker_fee_ppm": 200}


def with_owners(msgs: np.ndarray, accounts: int, seed: int) -> np.ndarray:
    """``msgs`` with an owner on every new order: half the maker, half a margined account."""
    out = msgs.copy()
    rng = np.random.default_rng(seed)
    new = (out["kind"] >= 1) & (out["kind"] <= 7)
    users = rng.integers(1, accounts + 1, len(out))
    out["owner"] = np.where(new, np.where(rng.random(len(out)) < 0.5, MAKER, users), 0)
    return out


def prepared(cls, accounts: int):
    engine = cls(**SETTINGS)
    engine.add_account(MAKER, 10**15, exempt=True)
    for owner in range(1, accounts + 1):
        engine.add_account(owner, 10**10)
    return engine


def per_call(engine, rows) -> list:
    submit = engine.submit
    events = []
    for oid, owner, price, stop, qty, kind, side in rows:
        events += submit(kind, oid, side, price, qty, owner, stop)
    return events


def chunked(size: int):
    def run(engine, msgs):
        return [engine.process(msgs[i:i + size]).events for i in range(0, len(msgs), size)]
    return run


def state(engine) -> tuple:
    # Records by their fields' values: their bytes include the aligned dtypes' padding, which
    # numpy leaves uninitialised in the reference's arrays (it differed between two calls).
    owners = engine.owners()
    return (engine.trades().tolist(), engine.fees_collected, engine.total_equity(),
            [engine.account(o) for o in owners], engine.book.l3().tolist(),
            engine.book.stops().tolist(), engine.mark_price())


def bench_regime(regime, args, out) -> bool:
    t0 = time.perf_counter()
    raw, s = generate(regime, args.messages, args.seed)
    msgs = with_owners(raw, args.accounts, args.seed)
    out(f"[{regime}] {len(msgs):,} messages generated in {time.perf_counter() - t0:.1f}s: "
        f"{s['mix']}; resting orders mean {s['resting_mean']:,}; {s['trades']:,} trades")
    template = prepared(Engine, args.accounts)
    rows = msgs.tolist()
    paths = [("per-call", per_call, rows), ("batch", lambda e, m: e.process(m).events, msgs)]
    paths += [(f"chunks-{n}", chunked(n), msgs) for n in args.chunks]
    best = {name: float("inf") for name, _, _ in paths}
    results = {}
    for _ in range(args.repeats):   # interleaved: every path once per repeat
        for name, fn, data in paths:
            engine = template.copy()
            start = time.perf_counter()
            result = fn(engine, data)
            best[name] = min(best[name], time.perf_counter() - start)
            results[name] = (engine, result)
    # reference engine, one run each on a prefix
    prefix = msgs[:args.ref_messages]
    ref_template = prepared(ReferenceEngine, args.accounts)
    ref_rows = prefix.tolist()
    for name, fn, data in (("reference/per-call", per_call, ref_rows),
                           ("reference/batch", lambda e, m: e.process(m).events, prefix)):
        engine = ref_template.copy()
        start = time.perf_counter()
        result = fn(engine, data)
        best[name] = time.perf_counter() - start
        results[name] = (engine, result)
    # sanity
    call_engine, call_events = results["per-call"]
    call_events = events_to_array(call_events)
    batch_engine, batch_events = results["batch"]
    ok = np.array_equal(call_events, batch_events)
    ok_state = state(call_engine) == state(batch_engine)
    for name, _, _ in paths[2:]:
        engine, parts = results[name]
        ok &= np.array_equal(np.concatenate(parts), batch_events)
        ok_state &= state(engine) == state(batch_engine)
    small = template.copy()
    ref_same = np.array_equal(small.process(prefix).events, results["reference/batch"][1])
    ref_same &= np.array_equal(events_to_array(results["reference/per-call"][1]),
                               results["reference/batch"][1])
    ref_same &= state(small) == state(results["reference/batch"][0])
    rejected = int((batch_events["kind"] == 5).sum())
    out(f"[{regime}] sanity: batch events {'==' if ok else '!='} per-call events "
        f"({len(batch_events):,} events, {len(batch_events) / len(msgs):.2f} per message, "
        f"{rejected} rejected); end states {'agree' if ok_state else 'DIFFER'}; reference on "
        f"the first {len(prefix):,}: {'agrees' if ref_same else 'DIFFERS'}")
    base = len(msgs) / best["per-call"]
    for name in best:
        n = len(prefix) if name.startswith("reference") else len(msgs)
        rate = n / best[name]
        note = "1 run, prefix" if name.startswith("reference") else f"best of {args.repeats}"
        args.rows.append((regime, name, n, best[name], rate, rate / base, note))
        if args.json:
            print(json.dumps(dict(
                benchmark="bench_engine", regime=regime, path=name, messages=n,
                accounts=args.accounts, seconds=round(best[name], 6),
                msgs_per_sec=round(rate, 1), ratio_vs_per_call=round(rate / base, 2),
                python=platform.python_version(), machine=platform.machine())), flush=True)
    return ok and ok_state and ref_same


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=200_000, help="stream length")
    ap.add_argument("--ref-messages", type=int, default=10_000,
                    help="run the reference engine on this prefix")
    ap.add_argument("--accounts", type=int, default=1_000, help="margined accounts")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--regime", choices=[*REGIMES, "all"], default="all")
    ap.add_argument("--repeats", type=int, default=3, help="best of K, interleaved")
    ap.add_argument("--chunks", default="1000,100",
                    help="comma-separated chunk sizes for the chunked batch paths")
    ap.add_argument("--json", action="store_true", help="one JSON line per figure on stdout")
    args = ap.parse_args(argv)
    args.chunks = [int(c) for c in args.chunks.split(",") if c]
    args.rows = []
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else \
        (lambda s: print(s, flush=True))
    start = time.perf_counter()
    ok = True
    for regime in (REGIMES if args.regime == "all" else [args.regime]):
        ok &= bench_regime(regime, args, log)
    log(f"\n{'regime':<7} {'path':<19} {'messages':>9} {'seconds':>9} {'msgs/s':>12} "
        f"{'vs per-call':>11}  note")
    for regime, name, n, seconds, rate, ratio, note in args.rows:
        log(f"{regime:<7} {name:<19} {n:>9,} {seconds:>9.4f} {rate:>12,.0f} {ratio:>10.2f}x  "
            f"{note}")
    log(f"\nPython {platform.python_version()} on {platform.machine()}; {args.accounts:,} "
        f"margined accounts; seed {args.seed}; total {time.perf_counter() - start:.1f}s; "
        f"sanity {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
