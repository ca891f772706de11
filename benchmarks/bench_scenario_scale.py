"""Scenario benchmark: the built-in scenario's whole run as its population grows.

``orderbook.run(default_scenario(scale))`` with its counterfactual (the CLI's ``orderbook run
--scale S``), at 10^4, 10^5 and 10^6 accounts (scales 0.5, 5 and 50: 20,000 accounts a unit of
scale). The book and the shock grow with the population, so about the same share of it is
liquidated at every size; the question is whether the run's cost grows with its work (the
accounts) and no faster, and what 10^6 accounts cost.

Per size: seconds of the best of ``--repeats`` runs (wall clock, gc on, as users run it), and
the phases of that run: building the market (engine, book, population), the static forecast,
the two simulations (the run and its counterfactual) and the summary; seconds per 10^4
accounts and the ratio of that to the smallest size's (1.00x is linear). Sizes run
interleaved: repeat r of every size before repeat r + 1 of any.

Run:  python benchmarks/bench_scenario_scale.py [--max-accounts N] [--repeats R] [--json]
With --json, stdout carries one JSON line per size and the table goes to stderr. The default
(10^4 .. 10^6, 3 repeats) takes about a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from contextlib import contextmanager

import orderbook.scenario as scenario_module
from orderbook import default_scenario, run

ACCOUNTS_PER_SCALE = 20_000


@contextmanager
def phases(into: dict):
    """Time ``run``'s phases (seconds into ``into``) by wrapping what it calls: the market's
    construction, the forecast, each simulation and the summary (names as in scenario.py)."""
    import orderbook._market as market_module

    def timer(name, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                into[name] = into.get(name, 0.0) + time.perf_counter() - t
        return timed

    build = market_module.Market.__init__
    names = ("cascade_forecast", "_simulate", "venue_summary")
    originals = {name: getattr(scenario_module, name) for name in names}
    try:
        market_module.Market.__init__ = timer("market", build)
        for name in names:
            setattr(scenario_module, name, timer(name, originals[name]))
        yield
    finally:
        market_module.Market.__init__ = build
        for name in names:
            setattr(scenario_module, name, originals[name])


def one_run(scale: float) -> dict:
    parts: dict = {}
    with phases(parts):
        t = time.perf_counter()
        result = run(default_scenario(scale=scale))
        seconds = time.perf_counter() - t
    s = result.summary
    return dict(seconds=seconds, market=parts.get("market", 0.0),
                forecast=parts.get("cascade_forecast", 0.0),
                simulate=parts.get("_simulate", 0.0), summary=parts.get("venue_summary", 0.0),
                liquidated=int(s["liquidated_accounts"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-accounts", type=int, default=1_000_000, help="largest population")
    ap.add_argument("--repeats", type=int, default=3, help="best of R runs a size")
    ap.add_argument("--json", action="store_true", help="one JSON line per size on stdout")
    args = ap.parse_args(argv)
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else \
        (lambda s: print(s, flush=True))
    sizes = [n for n in (10**4, 10**5, 10**6) if n <= args.max_accounts]
    if not sizes:
        raise SystemExit("--max-accounts must be at least 10,000")
    run(default_scenario(scale=0.05))   # warm-up: imports and first calls, discarded
    best: dict = {}
    for _ in range(args.repeats):
        for n in sizes:
            row = one_run(n / ACCOUNTS_PER_SCALE)
            if n not in best or row["seconds"] < best[n]["seconds"]:
                best[n] = row
    base = best[sizes[0]]["seconds"] / sizes[0]
    log(f"{'accounts':>10} {'liquidated':>10} {'share':>6} {'run s':>7} {'market':>7} "
        f"{'forecast':>8} {'2 sims':>7} {'summary':>7} {'s/10^4 acc':>10} {'vs 10^4':>8}")
    for n in sizes:
        row = best[n]
        per = row["seconds"] / n * 1e4
        ratio = row["seconds"] / n / base
        log(f"{n:>10,} {row['liquidated']:>10,} {row['liquidated'] / n:>6.1%} "
            f"{row['seconds']:>7.2f} {row['market']:>7.2f} {row['forecast']:>8.2f} "
            f"{row['simulate']:>7.2f} {row['summary']:>7.2f} {per:>10.3f} {ratio:>7.2f}x")
        if args.json:
            print(json.dumps(dict(
                benchmark="bench_scenario_scale", accounts=n, liquidated=row["liquidated"],
                seconds=round(row["seconds"], 3), market_seconds=round(row["market"], 3),
                forecast_seconds=round(row["forecast"], 3),
                simulate_seconds=round(row["simulate"], 3),
                summary_seconds=round(row["summary"], 3),
                seconds_per_1e4_accounts=round(per, 4), ratio_per_account_vs_first=round(ratio, 3),
                repeats=args.repeats, counterfactual=True, python=platform.python_version(),
                machine=platform.machine())), flush=True)
    log(f"Best of {args.repeats} interleaved runs each, with the counterfactual; Python "
        f"{platform.python_version()} on {platform.machine()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
