"""ADL benchmark: cost of one auto-deleveraging take-over as the population grows.

Setup (deterministic; prices in ticks, k = 1): ``Engine(mark_rule=INDEX, limit_rule=BANKRUPTCY,
deficit=ADL)`` with the default tiers and an empty insurance fund. N profitable shorts (owners
0 .. N-1, 1 .. 20 lots each, entered at P0 with 2x .. 10x leverage) face an exempt house long.
V victims (50x longs of 5 lots at P0) fall through the shock ``set_index(0.97 P0)``; the book has
no bids, so every victim's forced IOC fills nothing, the fund cannot take the remainder and the
whole position goes to the best-ranked shorts (a handful of them cover each victim).

Timed: ``liquidate()`` (gc disabled, best of ``--repeats`` fresh engines), reported per victim:
that is the cost of one ADL take-over round, ranking included.

Run:  python benchmarks/bench_adl.py [--sizes 2000 20000] [--victims V] [--repeats R] [--json]

Measured on the shared 2-core development machine (December 2026, 10 victims, best of 1):
  before (a Python Fraction per opposing account, full sort): N = 2,000: 22.7 ms, N = 20,000: 206 ms
  after (int128 keys in C, 256-bit cross products, a heap):   N = 2,000: 0.14 ms, N = 20,000: 2.6 ms
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time

from orderbook import Deficit, Engine, LimitRule, MarkRule

P0 = 1_000_000
SHOCK = 970_000
HOUSE = 10**12
BIG = 10**15


def build(n: int, victims: int, seed: int) -> Engine:
    """An engine with n profitable-to-be shorts and ``victims`` 50x longs, before the shock."""
    rng = random.Random(seed)
    eng = Engine(mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BANKRUPTCY, deficit=Deficit.ADL,
                 max_price=2 * P0)
    eng.set_index(P0)
    eng.add_account(HOUSE, BIG, exempt=True)
    for owner in range(n):
        lots = rng.randint(1, 20)
        eng.add_account(owner, P0 * lots // rng.randint(2, 10))
        eng.seed_position(HOUSE, owner, P0, lots)
    for v in range(victims):
        owner = n + v
        eng.add_account(owner, P0 * 5 // 50)
        eng.seed_position(owner, HOUSE, P0, 5)
    return eng


def run(n: int, victims: int, repeats: int, seed: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        eng = build(n, victims, seed)
        eng.set_index(SHOCK)
        gc.disable()
        start = time.perf_counter()
        records = eng.liquidate()
        elapsed = time.perf_counter() - start
        gc.enable()
        adl = int((records["kind"] == 4).sum())
        if adl < victims:
            raise RuntimeError(f"expected every victim to be deleveraged, got {adl} ADL records")
        if int(eng.account(n).position) != 0:
            raise RuntimeError("victim still holds a position")
        best = min(best, elapsed)
    return best / victims


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--victims", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    for n in args.sizes:
        per = run(n, args.victims, args.repeats, args.seed)
        print(f"N = {n:>7,}: {per * 1e3:9.3f} ms per ADL take-over", file=out)
        if args.json:
            print(json.dumps({"benchmark": "adl_takeover", "accounts": n,
                              "victims": args.victims, "seconds_per_takeover": per}))


if __name__ == "__main__":
    main()
