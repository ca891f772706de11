"""Compare ``OrderBook().process(msgs)`` with a plain C++ baseline order book on the same streams.

For each regime of ``orderbook.flows.benchmark_stream`` (mixed, deep, crash, and the shapes of
public matching-engine benchmarks: static, normal, swing25, swing40, flash), the MESSAGE_DTYPE
stream is written to a temp file as raw bytes, ``cpp_baseline.cpp`` (std::map price levels,
intrusive FIFO lists in a preallocated pool, std::unordered_map ids; no STP) is compiled with
the system compiler (``g++ -O3 -std=c++17``, else ``c++``) and run on it (processing loop only,
std::chrono::steady_clock). The C++ trade count, traded qty and checksum (sum of price*qty, mod
2**64) must equal those of the engine's TRADE events, and its count of refused messages (a stop
that would trigger at once) the engine's REJECTED events, else the script reports the
difference and exits 1.

Each round runs, one after the other on the same stream and each in a fresh process (as a user's
script would meet it): the C++ baseline, the engine's ``process(msgs)`` in one call with its full
event log returned, the same into an ``out=`` buffer reused from an earlier call (its pages already
faulted in: what chunked processing with a reused buffer pays), and ``process(msgs,
record="counters")``; the figures are the best of ``--repeats`` rounds, so the machine's state at
any moment weighs on every contender alike. The figure to read is the speed over the C++ baseline's
(its time over the engine's): 1.00x is as fast, 2.00x twice as fast. The baseline neither validates
messages nor writes an event log.

``--baseline-tree DIR`` times, in the same rounds, the engine of another checkout built in place
(``git worktree add DIR REV`` then ``python setup.py build_ext --inplace`` there): this is how
the price ladder (orderbook/_price_ladder.pxd) was weighed against the std::map levels it
replaced.

Run:  python benchmarks/bench_cpp.py [--messages N] [--seed S] [--regime NAME|all]
                                     [--repeats K] [--baseline-tree DIR] [--json]
With --json, stdout carries one JSON line per regime and the human output goes to stderr. Its
``speed_vs_cpp`` (events) and ``counters_speed_vs_cpp`` are the figures;
``ratio_engine_time_over_cpp`` (the inverse of the first) and ``within_target`` (that ratio at
most 1.5) are kept for readers of earlier output.
The bench streams use the default STP NONE, so the baseline's lack of STP does not matter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import orderbook
from orderbook import MESSAGE_DTYPE, EventKind
from orderbook.flows import BENCHMARK_REGIMES as REGIMES
from orderbook.flows import benchmark_stream as generate

SOURCE = Path(__file__).resolve().parent / "cpp_baseline.cpp"
# The design goal for the batch path (engine time / C++ time); only the JSON's within_target
# reports it, for readers of earlier output.
DESIGN_RATIO = 1.5
REJECTED, TRADE = int(EventKind.REJECTED), int(EventKind.TRADE)


def find_compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


# Times an engine on a stream file in a fresh process, as the C++ baseline is timed: the
# orderbook package comes from sys.argv[1] (this checkout's, or --baseline-tree's). Prints
# {"events": seconds, "counters": seconds}; with a third argument, also saves the events there.
_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from orderbook import MESSAGE_DTYPE, OrderBook
msgs = np.fromfile(sys.argv[2], dtype=MESSAGE_DTYPE)
book = OrderBook()
t0 = time.perf_counter()
events = book.process(msgs)
out = {"events": time.perf_counter() - t0}
book = OrderBook()
t0 = time.perf_counter()
book.process(msgs, record="counters")
out["counters"] = time.perf_counter() - t0
# the log into a buffer the caller reuses (out=), its pages faulted in by a first run on
# another book: the matching and the log without the kernel's fresh pages
buffer = np.empty(len(events) + 1, dtype=events.dtype)
OrderBook().process(msgs, out=buffer)
book = OrderBook()
t0 = time.perf_counter()
book.process(msgs, out=buffer)
out["reused"] = time.perf_counter() - t0
if len(sys.argv) > 3:
    np.save(sys.argv[3], events)
print(json.dumps(out))
"""
HERE = str(Path(orderbook.__file__).resolve().parent.parent)


# numpy's OpenBLAS starts a thread per core that can spin beside the engine (7-8 % of perf's
# samples on a 2-core VM); the engine makes no BLAS call, and the C++ baseline has no such
# threads, so the children run with one.
CHILD_ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def timed(tree: str, path: str, save: str | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, tree, path, *([save] if save else [])],
                         capture_output=True, text=True, env=CHILD_ENV)
    if out.returncode != 0:
        raise RuntimeError(f"the engine of {tree} failed: {out.stderr}")
    return json.loads(out.stdout)


def check_stats(events: np.ndarray) -> dict:
    tr = events[events["kind"] == TRADE]
    checksum = int((tr["price"].astype(np.uint64) * tr["qty"].astype(np.uint64)).sum(
        dtype=np.uint64))
    return dict(trades=len(tr), traded_qty=int(tr["qty"].sum()), checksum=checksum,
                rejected=int((events["kind"] == REJECTED).sum()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000,
                    help="messages per regime, processed in one call (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--regime", choices=[*REGIMES, "all"], default="all")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; best of K for each")
    ap.add_argument("--baseline-tree", metavar="DIR",
                    help="also time the engine of this checkout (built in place)")
    ap.add_argument("--json", action="store_true", help="one JSON line per regime on stdout")
    args = ap.parse_args(argv)
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else \
        (lambda s: print(s, flush=True))
    cxx = find_compiler()
    if cxx is None:
        log("SKIPPED: no C++ compiler found (tried $CXX, g++, c++, clang++); nothing to compare")
        return 0
    tree = None
    if args.baseline_tree:
        tree = str(Path(args.baseline_tree).resolve())
        if not (Path(tree) / "orderbook" / "__init__.py").exists():
            log(f"ERROR: --baseline-tree {tree} holds no orderbook package")
            return 2
    assert MESSAGE_DTYPE.itemsize == 48, MESSAGE_DTYPE.itemsize
    start = time.perf_counter()
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="bench_cpp_") as tmp:
        exe = os.path.join(tmp, "cpp_baseline")
        cmd = [cxx, "-O3", "-std=c++17", "-o", exe, str(SOURCE)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            log(f"ERROR: compiling the C++ baseline failed: {' '.join(cmd)}\n{res.stderr}")
            return 1
        cxx_version = subprocess.run([cxx, "--version"], capture_output=True,
                                     text=True).stdout.splitlines()[0]
        log(f"compiled {SOURCE.name} with {cxx_version} (-O3 -std=c++17)")
        for regime in (REGIMES if args.regime == "all" else [args.regime]):
            t0 = time.perf_counter()
            msgs, summary = generate(regime, args.messages, args.seed)
            path = os.path.join(tmp, f"{regime}.bin")
            np.ascontiguousarray(msgs).tofile(path)
            log(f"[{regime}] {len(msgs):,} messages generated in {time.perf_counter() - t0:.1f}s: "
                f"{summary['mix']}; {summary['resting_mean']:,} resting on average")
            best = dict(cpp=float("inf"), events=float("inf"), reused=float("inf"),
                        counters=float("inf"), tree_events=float("inf"),
                        tree_reused=float("inf"), tree_counters=float("inf"))
            cpp = events = None
            for _ in range(args.repeats):
                out = subprocess.run([exe, path, "1"], capture_output=True, text=True)
                if out.returncode != 0:
                    log(f"ERROR: C++ baseline failed on {regime}: {out.stderr}")
                    return 1
                cpp = json.loads(out.stdout)
                best["cpp"] = min(best["cpp"], cpp["seconds"])
                save = os.path.join(tmp, f"{regime}.npy") if events is None else None
                mine = timed(HERE, path, save)
                if save:
                    events = np.load(save)
                for mode in ("events", "reused", "counters"):
                    best[mode] = min(best[mode], mine[mode])
                if tree:
                    other = timed(tree, path)
                    for mode in ("events", "reused", "counters"):
                        best["tree_" + mode] = min(best["tree_" + mode], other[mode])
            eng = check_stats(events)
            bad = [k for k in ("trades", "traded_qty", "checksum", "rejected") if cpp[k] != eng[k]]
            if bad:
                ok = False
                log(f"[{regime}] results differ from the C++ baseline's: " + ", ".join(
                    f"{k} C++ {cpp[k]} != engine {eng[k]}" for k in bad))
            else:
                log(f"[{regime}] check OK: {eng['trades']:,} trades, {eng['traded_qty']:,} lots, "
                    f"checksum {eng['checksum']}, {eng['rejected']:,} rejected")
            n = len(msgs)
            speed = {k: best["cpp"] / v for k, v in best.items() if k != "cpp" and v < 1e300}
            rows.append((regime, n, best, speed))
            if args.json:
                line = dict(
                    benchmark="bench_cpp", regime=regime, messages=n, repeats=args.repeats,
                    cpp_seconds=round(best["cpp"], 6),
                    cpp_msgs_per_sec=round(n / best["cpp"], 1),
                    engine_batch_seconds=round(best["events"], 6),
                    engine_batch_msgs_per_sec=round(n / best["events"], 1),
                    engine_counters_seconds=round(best["counters"], 6),
                    engine_reused_out_seconds=round(best["reused"], 6),
                    speed_vs_cpp=round(speed["events"], 3),
                    reused_out_speed_vs_cpp=round(speed["reused"], 3),
                    counters_speed_vs_cpp=round(speed["counters"], 3),
                    ratio_engine_time_over_cpp=round(1 / speed["events"], 3),
                    within_target=1 / speed["events"] <= DESIGN_RATIO,
                    results_match=not bad, trades=eng["trades"],
                    resting_mean=summary["resting_mean"], compiler=cxx_version,
                    python=platform.python_version(), machine=platform.machine())
                if tree:
                    line.update(baseline_tree=tree,
                                tree_speed_vs_cpp=round(speed["tree_events"], 3),
                                tree_reused_out_speed_vs_cpp=round(speed["tree_reused"], 3),
                                tree_counters_speed_vs_cpp=round(speed["tree_counters"], 3))
                print(json.dumps(line), flush=True)
    head = f"{'regime':<8} {'messages':>9} {'C++ msg/s':>11} {'events msg/s':>13} {'vs C++':>7} " \
           f"{'reused out=':>12} {'counters msg/s':>15} {'vs C++':>7}"
    if tree:
        head += f" {'tree events':>12} {'tree out=':>10} {'tree counters':>14}"
    log("\n" + head)
    for regime, n, best, speed in rows:
        line = (f"{regime:<8} {n:>9,} {n / best['cpp']:>11,.0f} {n / best['events']:>13,.0f} "
                f"{speed['events']:>6.2f}x {speed['reused']:>11.2f}x "
                f"{n / best['counters']:>15,.0f} {speed['counters']:>6.2f}x")
        if tree:
            line += (f" {speed['tree_events']:>11.2f}x {speed['tree_reused']:>9.2f}x "
                     f"{speed['tree_counters']:>13.2f}x")
        log(line)
    log(f"\nSpeed is the C++ baseline's time over the engine's (higher is faster); "
        f"{'the same trades, lots, checksum and refusals' if ok else 'RESULTS DIFFER, above'}.\n"
        f"Best of {args.repeats} interleaved rounds; one call per stream; seed {args.seed}; "
        f"Python {platform.python_version()} on {platform.machine()}; "
        f"total {time.perf_counter() - start:.1f}s."
        + (f"\n'tree' columns: the engine of {tree}, in the same rounds." if tree else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
