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
less than wall time; wall time is printed beside it, and the CPU time split into user and system
time (``getrusage``), with a ratio from user time alone. Minor page faults per message show what
a fresh event buffer costs; the machine's load (``os.getloadavg``) is printed with the table.

The kernel's side of a fresh buffer is the machine's, not the engine's: before the rounds, the
benchmark times numpy writing one byte per 4 kB page of a fresh array as large as the biggest
call's events (``fresh memory``), three times in a row, and prints it beside the table. On a VM
whose host takes freed memory back (free page reporting, a balloon), every fresh large buffer
pays the host's page faults again; a machine without that pays only the kernel's zeroing.

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
    """Wall, user and system seconds to process ``msgs`` in batches of ``size`` on a fresh book,
    and the minor page faults."""
    book = OrderBook()
    process = book.process
    r0 = resource.getrusage(resource.RUSAGE_SELF)
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
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return (seconds, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime,
            r1.ru_minflt - r0.ru_minflt)


def fresh_memory(nbytes: int, rounds: int = 3) -> list[tuple[float, float]]:
    """(wall, system) seconds to write one byte in each 4 kB page of a fresh ``nbytes`` array,
    ``rounds`` times in a row (each array freed before the next)."""
    times = []
    for _ in range(rounds):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        a = np.empty(nbytes, dtype=np.uint8)
        a[::4096] = 1
        seconds = time.perf_counter() - t0
        times.append((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_stime - r0.ru_stime))
        del a
    return times


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

    # The largest call's events, as bytes: what a fresh result array of that call must touch.
    fresh_bytes = int(sizes[-1] * per_message * EVENT_DTYPE.itemsize)
    touches = fresh_memory(fresh_bytes)
    log(f"fresh memory: writing {fresh_bytes / 1e6:,.0f} MB of fresh pages took "
        + ", ".join(f"{w:.3f} s (system {s:.3f} s)" for w, s in touches)
        + " in three rounds; " + f"{touches[0][0] * 1e9 / fresh_bytes:.2f} ns/byte the first time")
    if args.json:
        print(json.dumps(dict(
            benchmark="bench_batch_size", figure="fresh_memory", bytes=fresh_bytes,
            seconds=[round(w, 6) for w, _ in touches],
            system_seconds=[round(s, 6) for _, s in touches],
            python=platform.python_version(), machine=platform.machine())), flush=True)

    inf = float("inf")
    best = {(s, m): (inf, inf, inf, 0) for s in sizes for m in MODES}
    for _ in range(args.repeats):
        for size in sizes:
            for mode in MODES:
                seconds, user, system, faults = run(msgs, size, mode, out)
                if user + system < sum(best[size, mode][1:3]):
                    best[size, mode] = (seconds, user, system, faults)
    load = os.getloadavg()[0]

    n = len(msgs)
    rate = {key: n / (user + system) for key, (_, user, system, _) in best.items()}
    user_rate = {key: n / user for key, (_, user, _, _) in best.items()}
    top = {m: max(rate[s, m] for s in sizes) for m in MODES}
    user_top = {m: max(user_rate[s, m] for s in sizes) for m in MODES}
    log(f"\n{'batch':>10} {'mode':<9} {'M msg/s':>8} {'ns/msg':>8} {'vs best':>8} "
        f"{'user ns':>8} {'sys ns':>7} {'user vs best':>13} {'wall ns/msg':>12} "
        f"{'faults/msg':>11}")
    for size in sizes:
        for mode in MODES:
            seconds, user, system, faults = best[size, mode]
            ratio = rate[size, mode] / top[mode]
            user_ratio = user_rate[size, mode] / user_top[mode]
            log(f"{size:>10,} {mode:<9} {rate[size, mode] / 1e6:>8.2f} "
                f"{(user + system) * 1e9 / n:>8.1f} {ratio:>7.2f}x "
                f"{user * 1e9 / n:>8.1f} {system * 1e9 / n:>7.1f} {user_ratio:>12.2f}x "
                f"{seconds * 1e9 / n:>12.1f} {faults / n:>11.4f}")
            if args.json:
                print(json.dumps(dict(
                    benchmark="bench_batch_size", batch=size, mode=mode, messages=n,
                    seconds=round(seconds, 6), cpu_seconds=round(user + system, 6),
                    user_seconds=round(user, 6), system_seconds=round(system, 6),
                    msgs_per_cpu_sec=round(rate[size, mode], 1),
                    ratio_vs_best_of_mode=round(ratio, 3),
                    user_ratio_vs_best_of_mode=round(user_ratio, 3), minor_faults=faults,
                    events_per_message=round(per_message, 3), best_of=args.repeats,
                    load_1min=load, python=platform.python_version(),
                    machine=platform.machine())), flush=True)
    worst = {m: min(rate[s, m] for s in sizes) / top[m] for m in MODES}
    user_worst = {m: min(user_rate[s, m] for s in sizes) / user_top[m] for m in MODES}
    log("\nworst batch size vs best, per mode: "
        + ", ".join(f"{m} {worst[m]:.2f}x" for m in MODES)
        + "; from user time alone: "
        + ", ".join(f"{m} {user_worst[m]:.2f}x" for m in MODES)
        + f"\nPython {platform.python_version()} on {platform.machine()}; seed {args.seed}; best "
          f"of {args.repeats} interleaved rounds; load average {load:.2f} on {os.cpu_count()} "
          f"CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
