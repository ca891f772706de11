#!/usr/bin/env python3
"""Run the fuzz targets under atheris (coverage-guided), a bounded time each; one JSON line each.

Usage: ``python tests/fuzz/run.py [--seconds N] [TARGET ...]``. Targets are the
``tests/fuzz/fuzz_<name>.py`` modules (all of them by default); each runs for ``--seconds``
(default: $FUZZ_SECONDS, else 20). It starts from the committed corpus in
``tests/fuzz/corpus/<name>/``, which it only reads: new inputs go to a temporary directory. A
crash leaves its input in ``tests/fuzz/crashes/`` (commit it to the target's corpus with the fix,
so pytest replays it every run) and makes the script exit 1.

The guidance is Python coverage: atheris instruments the ``orderbook`` package's interpreted
modules as the target imports them (instrumenting everything loaded, numpy included, costs a
minute per target). The compiled modules are exercised, not instrumented, so run this against
the sanitizer build to catch memory errors there (``.ci/run`` does).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def targets() -> list[str]:
    return sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))


def run(name: str, seconds: int) -> dict:
    corpus = HERE / "corpus" / name
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as fresh:
        cmd = [sys.executable, __file__, "--child", name, f"-max_total_time={seconds}",
               f"-artifact_prefix={crashes}/{name}-", "-rss_limit_mb=4096", "-timeout=60",
               "-print_final_stats=1", fresh]
        if corpus.is_dir():
            cmd.append(str(corpus))
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        found = len(os.listdir(fresh))
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    done = re.findall(r"Done (\d+) runs", proc.stderr)
    report = {
        "target": name, "seconds": seconds, "status": "ok" if proc.returncode == 0 else "crash",
        "runs": int((runs or done or [0])[-1]),
        "corpus_seeds": len(list(corpus.iterdir())) if corpus.is_dir() else 0,
        "new_inputs": found,
    }
    if proc.returncode != 0:
        report["output_tail"] = proc.stderr[-4000:]
    return report


def child(name: str, libfuzzer_args: list[str]) -> None:
    """Load one target with the orderbook package instrumented, then hand over to libFuzzer."""
    import atheris

    with atheris.instrument_imports(include=["orderbook"]):
        spec = importlib.util.spec_from_file_location(f"fuzz_{name}", HERE / f"fuzz_{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    atheris.Setup([sys.argv[0], *libfuzzer_args], module.test_one_input)
    atheris.Fuzz()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2:])
        return 0  # not reached: libFuzzer exits the process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(targets()))
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 20)))
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(targets())
    if unknown:
        parser.error(f"unknown target(s) {sorted(unknown)}; targets are {targets()}")
    failed = False
    for name in args.targets or targets():
        report = run(name, args.seconds)
        failed |= report["status"] != "ok"
        tail = report.pop("output_tail", None)
        print(json.dumps(report), flush=True)
        if tail:
            print(tail, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
