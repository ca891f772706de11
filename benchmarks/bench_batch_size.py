"""Batch-size independence: ``OrderBook.process`` over one stream cut into batches of 10^3 .. 10^7.

One stream of ``--messages`` messages (default 10^7) runs through a fresh book once per batch
size and record mode, each batch one ``process`` call:

  events     ``process(batch)``: a new EVENT_DTYPE array per call (the default)
  out=       ``process(batch, out=buf)``: the events written to one buffer reused by every call
             (2 rows per message of the largest batch, touched once before timing)
  counters   ``process(batch, record="counters")``: no rows, a BatchCounts per call

Figures are best of ``--repeats`` rounds, interleaved (each round runs every size and mode once),
and each ratio is against the best rate of the same mode in the same run (1.00 is the best batch
size; the target is >= 0.83, i.e. within 1.2x, at every size). Rates and ratios are from CPU
time (user + system, page faults included), which other processes on a shared machine disturb
less than wall time; wall time is printed beside it. Minor page faults per message
(getrusage) show what a fresh event buffer costs; the machine's load (``os.getloadavg``) is
printed with the table.

The stream is ``orderbook.flows.benchmark_stream("mixed", ...)`` (about 1 s per 100,000
messages to draw): up to 10^6 messages drawn, longer streams repeat that draw with every order
id shifted past the previous copy's, so each copy cancels and amends its own orders; the
orders a copy leaves resting stay in the book (it grows by ~10,000 orders per copy).

Run:  python benchmarks/bench_batch_size.py [--messages N] [--seed S] [--repeats K] [--quick]
                                            [--json]
--quick: 10^6 messages, batches 10^3 .. 10^6, 2 rounds (about a minute). With --json, stdout
carries one JSON line per figure and the human output goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np

from orderbook import OrderBook
from orderbook.events import EVENT_DTYPE
from orderbook.flows import benchmark_stream

MODES = ("events", "out=", "counters")
DRAWN_MAX = 1_000_000


def stream(n: int, seed: int) -> np.ndarray:
    """``n`` mixed messages: one draw of up to 10^6, repeated with shifted ids past that."""
    drawn, _ = benchmark_stream("mixed", min(n, DRAWN_MAX), seed)
    if n <= len(drawn):
        return drawn
    copies = []
    shift = int(drawn["order_id"].max()) + 1
    for k in range(-(-n // len(drawn))):
        copy = drawn.copy()
        copy["order_id"] += k * shift
        copies.append(copy)
    return np.concatenate(copies)[:n]


def run(msgs: np.ndarray, size: int, mode: str, out: np.ndarray | None):
    """Wall and CPU seconds to process ``msgs`` in batches of ``size`` on a fresh book, and the
    minor page faults."""
    book = OrderBook()
    process = book.process
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    c0 = time.process_time()
    t0 = time.perf_counter()
    if mode == "events":
        for start in range(0, len(msgs), size):
            process(msgs[start:start + size])
    elif mode == "out=":
        for start in range(0, len(msgs), size):
            process(msgs[start:start + size], out=out)
    else:
        for start in range(0, len(msgs), size):
            process(msgs[start:start + size], record="counters")
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return seconds, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; best of them")
    ap.add_argument("--quick", action="store_true", help="10^6 messages, 2 rounds")
    ap.add_argument("--json", action="store_true", help="one JSON line per figure on stdout")
    args = ap.parse_args(argv)
    if args.quick:
        args.messages, args.repeats = 1_000_000, 2
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else \
        (lambda s: print(s, flush=True))

    t0 = time.perf_counter()
    msgs = stream(args.messages, args.seed)
    sizes = [10**k for k in range(3, 8) if 10**k <= len(msgs)]
    n_events = len(OrderBook().process(msgs[:min(len(msgs), 200_000)]))
    per_message = n_events / min(len(msgs), 200_000)
    log(f"{len(msgs):,} messages in {time.perf_counter() - t0:.1f}s; "
        f"{per_message:.2f} events per message (first 200,000)")
    out = np.zeros(2 * sizes[-1] + 4096, dtype=EVENT_DTYPE)
    out.fill(0)   # touched once, so no run pays its first faults

    best = {(s, m): (float("inf"), float("inf"), 0) for s in sizes for m in MODES}
    for _ in range(args.repeats):
        for size in sizes:
            for mode in MODES:
                seconds, cpu, faults = run(msgs, size, mode, out)
                if cpu < best[size, mode][1]:
                    best[size, mode] = (seconds, cpu, faults)
    load = os.getloadavg()[0]

    rate = {key: len(msgs) / cpu for key, (_, cpu, _) in best.items()}
    top = {m: max(rate[s, m] for s in sizes) for m in MODES}
    log(f"\n{'batch':>10} {'mode':<9} {'M msg/s':>8} {'ns/msg':>8} {'vs best':>8} "
        f"{'wall ns/msg':>12} {'faults/msg':>11}")
    for size in sizes:
        for mode in MODES:
            seconds, cpu, faults = best[size, mode]
            ratio = rate[size, mode] / top[mode]
            log(f"{size:>10,} {mode:<9} {rate[size, mode] / 1e6:>8.2f} "
                f"{cpu * 1e9 / len(msgs):>8.1f} {ratio:>7.2f}x "
                f"{seconds * 1e9 / len(msgs):>12.1f} {faults / len(msgs):>11.4f}")
            if args.json:
                print(json.dumps(dict(
                    benchmark="bench_batch_size", batch=size, mode=mode, messages=len(msgs),
                    seconds=round(seconds, 6), cpu_seconds=round(cpu, 6),
                    msgs_per_cpu_sec=round(rate[size, mode], 1),
                    ratio_vs_best_of_mode=round(ratio, 3), minor_faults=faults,
                    events_per_message=round(per_message, 3), best_of=args.repeats,
                    load_1min=load, python=platform.python_version(),
                    machine=platform.machine())), flush=True)
    worst = {m: min(rate[s, m] for s in sizes) / top[m] for m in MODES}
    log("\nworst batch size vs best, per mode: "
        + ", ".join(f"{m} {worst[m]:.2f}x" for m in MODES)
        + f"\nPython {platform.python_version()} on {platform.machine()}; seed {args.seed}; best "
          f"of {args.repeats} interleaved rounds; load average {load:.2f} on {os.cpu_count()} "
          f"CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
