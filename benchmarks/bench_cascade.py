"""Cascade benchmark: cost of one ``Engine.liquidate()`` as the population grows.

Setup (deterministic from ``--seed``; prices in ticks, k = 1 quote unit per tick x lot):

  * ``Engine(mark_rule=MarkRule.INDEX)`` with the default tiers (maintenance 0.5 %), full-size
    MARKET forced orders, no fees, no cap. The index starts at P0 = 1,000,000.
  * An exempt house account takes the other side of every ``seed_position``; an exempt LP account
    rests bids at P0 - 1, P0 - 2, ... (``--lots-per-level`` lots each), deep enough for 1.5x the
    lots the shock liquidates, plus a few asks above P0.
  * N accounts (owner ids 0 .. N-1), all entered at P0:
      - N - K "safe" accounts, half long and half short, leverage 1.5x .. 4x, so their liquidation
        prices lie at most ~0.75 P0 (longs) or at least ~1.25 P0 (shorts): far from the shock;
      - K "at risk" longs (random owner ids among the N), leverage 45x .. 100x, size 1 .. 20 lots,
        liquidation prices in ~[0.983, 0.995] P0. Their sizes come from a generator of their own,
        so the K accounts, the book and the liquidated lots are the same for every N.
  * Shock: ``set_index(0.975 * P0)``. With an INDEX mark the forced sells do not move the mark,
    so exactly the K at-risk accounts are liquidated (generation 0), whatever N is.

Timed: ``liquidate()`` only (gc disabled, best of ``--repeats`` fresh engines, since a cascade
can run only once per engine; the seeding time shown is that of the best run). Seeding
(add_account + seed_position, a Python loop of 2 calls per account) is timed separately.
Per N: time per cascade, per forced order, per distinct price level walked (distinct prices
of the forced trades: engine.trades() rows with order_id < 0), and the cascade time over the
N = 10^4 cascade time. The figure to read is that ratio at N = 10^6: near 1x, a cascade costs
what the accounts it liquidates cost, whatever the accounts held (the design aims at 2x or less).

A second series keeps N fixed (``--k-series-n``, default 10^5) and grows K (100, 1,000, 10,000)
to show that the cost follows the number liquidated.

Default run (N = 10^3 .. 10^6, K = 1,000, then the K series): about 30 s on a 2-core machine;
``--max-accounts`` caps N. With N = 10^3 and K = 1,000 every account is at risk.

Run:  python benchmarks/bench_cascade.py [--max-accounts N] [--k K] [--k-series-n N]
                                         [--repeats R] [--seed S] [--json]
With --json, stdout carries one JSON line per figure and the human output goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import sys
import time

import numpy as np

from orderbook import Engine, ForcedKind, MarkRule, Side

P0 = 1_000_000
SHOCK = 975_000                  # the index after the shock (-2.5 %)
HOUSE, LP = 10**12, 10**12 + 1
BIG = 10**15                     # exempt accounts' collateral


def build(n: int, k: int, seed: int, lots_per_level: int):
    """A seeded engine: (engine, seconds seeding the N accounts, seconds building the book,
    lots at risk)."""
    if k > n:
        raise ValueError(f"K={k} exceeds N={n}")
    rng = np.random.default_rng(seed)
    risky = np.zeros(n, dtype=bool)
    risky[rng.choice(n, size=k, replace=False)] = True
    # Safe accounts: half long, half short, 1 .. 400 lots, leverage 1.5 .. 4.
    safe_long = rng.random(n) < 0.5
    safe_size = rng.integers(1, 401, size=n)
    safe_lev = rng.uniform(1.5, 4.0, size=n)
    # At-risk accounts: their own generator, so they are the same for every N.
    rk = np.random.default_rng(seed + 1)
    risk_size = rk.integers(1, 21, size=k)
    risk_lev = rk.uniform(45.0, 100.0, size=k)
    size = safe_size.copy()
    lev = safe_lev.copy()
    size[risky] = risk_size
    lev[risky] = risk_lev
    is_long = safe_long | risky
    collateral = np.ceil(P0 * size / lev).astype(np.int64)

    eng = Engine(mark_rule=MarkRule.INDEX)
    eng.add_account(HOUSE, BIG, exempt=True)
    eng.add_account(LP, BIG, exempt=True)
    eng.set_index(P0)
    add, seed_pos = eng.add_account, eng.seed_position
    sizes, colls, longs = size.tolist(), collateral.tolist(), is_long.tolist()
    gc.disable()
    t0 = time.perf_counter()
    for i in range(n):
        add(i, colls[i])
        if longs[i]:
            seed_pos(i, HOUSE, P0, sizes[i])
        else:
            seed_pos(HOUSE, i, P0, sizes[i])
    seeding = time.perf_counter() - t0
    gc.enable()

    lots = int(risk_size.sum())
    levels = math.ceil(1.5 * lots / lots_per_level) + 10
    t0 = time.perf_counter()
    oid = 0
    for j in range(1, levels + 1):
        eng.limit(oid, Side.BUY, P0 - j, lots_per_level, LP)
        oid += 1
    for j in range(1, 11):
        eng.limit(oid, Side.SELL, P0 + j, lots_per_level, LP)
        oid += 1
    booking = time.perf_counter() - t0
    return eng, seeding, booking, lots


def cascade(eng: Engine) -> dict:
    """Shock, then time liquidate(); what it did."""
    eng.set_index(SHOCK)
    gc.disable()
    t0 = time.perf_counter()
    records = eng.liquidate()
    seconds = time.perf_counter() - t0
    gc.enable()
    trades = eng.trades()
    forced = trades[trades["order_id"] < 0]
    orders = records[records["kind"] == ForcedKind.ORDER]
    return dict(seconds=seconds, forced_orders=int(len(orders)),
                liquidated=len(set(orders["owner"].tolist())),
                levels=int(len(np.unique(forced["price"]))), forced_trades=int(len(forced)),
                filled=int(orders["filled"].sum()), rounds=int(records["round"].max()) + 1
                if len(records) else 0, queue_left=len(eng.queue()))


def measure(n, k, args):
    repeats = args.repeats
    best = None
    for _ in range(repeats):
        eng, seeding, booking, lots = build(n, k, args.seed, args.lots_per_level)
        res = cascade(eng)
        res.update(seeding=seeding, booking=booking, lots_at_risk=lots)
        if res["liquidated"] != k or res["filled"] != lots:
            raise SystemExit(f"N={n} K={k}: liquidated {res['liquidated']} accounts, filled "
                             f"{res['filled']} of {lots} lots: the setup is wrong")
        if best is None or res["seconds"] < best["seconds"]:
            best = res
        del eng
        gc.collect()
    best.update(n=n, k=k, repeats=repeats)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-accounts", type=int, default=1_000_000, help="cap on N")
    ap.add_argument("--k", type=int, default=1_000, help="accounts liquidated (N series)")
    ap.add_argument("--k-series-n", type=int, default=100_000, help="N of the K series")
    ap.add_argument("--k-series", default="100,1000,10000", help="K values of the K series")
    ap.add_argument("--lots-per-level", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3, help="best of R fresh engines")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--json", action="store_true", help="one JSON line per figure on stdout")
    args = ap.parse_args(argv)
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else \
        (lambda s: print(s, flush=True))
    start = time.perf_counter()

    # Warm-up (discarded): the first engine of the process pays for first-call costs.
    cascade(build(1_000, 100, args.seed, args.lots_per_level)[0])
    ns = [n for n in (10**3, 10**4, 10**5, 10**6) if n <= args.max_accounts]
    n_rows = []
    for n in ns:
        row = measure(n, args.k, args)
        n_rows.append(row)
        log(f"[N series] N={n:,} K={args.k:,}: seeded in {row['seeding']:.2f}s, cascade "
            f"{row['seconds'] * 1e3:.2f} ms")
    base = next((r["seconds"] for r in n_rows if r["n"] == 10_000), None)
    k_n = min(args.k_series_n, args.max_accounts)
    k_rows = []
    for k in (int(x) for x in args.k_series.split(",")):
        if k > k_n:
            continue
        row = measure(k_n, k, args)
        k_rows.append(row)
        log(f"[K series] N={k_n:,} K={k:,}: cascade {row['seconds'] * 1e3:.2f} ms")

    def emit(series, row, ratio_name, ratio):
        if args.json:
            print(json.dumps(dict(
                benchmark="bench_cascade", series=series, accounts=row["n"], liquidated=row["k"],
                seeding_seconds=round(row["seeding"], 4),
                seeding_us_per_account=round(row["seeding"] / row["n"] * 1e6, 3),
                cascade_seconds=round(row["seconds"], 6), forced_orders=row["forced_orders"],
                forced_trades=row["forced_trades"], price_levels=row["levels"],
                lots=row["filled"], rounds=row["rounds"],
                us_per_forced_order=round(row["seconds"] / row["forced_orders"] * 1e6, 3),
                us_per_price_level=round(row["seconds"] / row["levels"] * 1e6, 3),
                **{ratio_name: None if ratio is None else round(ratio, 3)},
                repeats=row["repeats"], python=platform.python_version(),
                machine=platform.machine())), flush=True)

    head = (f"{'N':>10} {'K':>7} {'seed s':>7} {'us/acct':>8} {'cascade ms':>11} "
            f"{'forced':>7} {'levels':>7} {'us/forced':>10} {'us/level':>9} ")
    log(f"\nN series (K = {args.k:,} liquidated, fixed)")
    log(head + f"{'vs N=10^4':>10}  runs")
    for row in n_rows:
        ratio = row["seconds"] / base if base else None
        log(f"{row['n']:>10,} {row['k']:>7,} {row['seeding']:>7.2f} "
            f"{row['seeding'] / row['n'] * 1e6:>8.2f} {row['seconds'] * 1e3:>11.3f} "
            f"{row['forced_orders']:>7,} {row['levels']:>7,} "
            f"{row['seconds'] / row['forced_orders'] * 1e6:>10.2f} "
            f"{row['seconds'] / row['levels'] * 1e6:>9.2f} "
            f"{'-' if ratio is None else f'{ratio:.2f}x':>10}  {row['repeats']}")
        emit("n", row, "ratio_vs_n_1e4", ratio)
    if k_rows:
        kbase = k_rows[0]["seconds"]
        log(f"\nK series (N = {k_n:,} accounts, fixed)")
        log(head + f"{'vs first':>10}  runs")
        for row in k_rows:
            ratio = row["seconds"] / kbase
            log(f"{row['n']:>10,} {row['k']:>7,} {row['seeding']:>7.2f} "
                f"{row['seeding'] / row['n'] * 1e6:>8.2f} {row['seconds'] * 1e3:>11.3f} "
                f"{row['forced_orders']:>7,} {row['levels']:>7,} "
                f"{row['seconds'] / row['forced_orders'] * 1e6:>10.2f} "
                f"{row['seconds'] / row['levels'] * 1e6:>9.2f} {ratio:>9.2f}x  "
                f"{row['repeats']}")
            emit("k", row, "ratio_vs_first_k", ratio)
    scaling = scaling_summary(n_rows, base, "a cascade")
    log(f"\n{scaling}Python {platform.python_version()} on {platform.machine()}; seed "
        f"{args.seed}; total {time.perf_counter() - start:.1f}s")
    return 0


def scaling_summary(rows, base, what: str) -> str:
    """One sentence on how ``what`` scaled from N = 10^4 (``base`` seconds) to N = 10^6 among
    ``rows`` (dicts with ``n`` and ``seconds``), ending in a newline; '' without both."""
    top = next((r for r in rows if r["n"] == 10**6), None)
    if not base or not top:
        return ""
    return (f"With the same accounts liquidated, {what} among 10^6 accounts took "
            f"{top['seconds'] / base:.2f}x its time among 10^4.\n")


if __name__ == "__main__":
    sys.exit(main())
