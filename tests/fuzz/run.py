#!/usr/bin/env python3
"""Run the fuzz targets under atheris (coverage-guided), a bounded time each; one JSON line each.

Usage: ``python tests/fuzz/run.py [--seconds N] [--keep DIR] [TARGET ...]``, then optionally
``python tests/fuzz/run.py --replay DIR [TARGET ...]``.

Targets are the ``tests/fuzz/fuzz_<name>.py`` modules (all of them by default); each runs for
``--seconds`` (default: $FUZZ_SECONDS, else 20), starting from the committed corpus in
``tests/fuzz/corpus/<name>/``, which it only reads: new inputs go to a temporary directory, or to
``DIR/<name>/`` with ``--keep``. A crash leaves its input in ``tests/fuzz/crashes/`` (commit it to
the target's corpus with the fix, so pytest replays it every run) and makes the script exit 1.

The guidance is Python coverage: atheris instruments the ``orderbook`` package's interpreted
modules as the target imports them (instrumenting everything loaded, numpy included, costs a
minute per target). The compiled modules are exercised, not instrumented. Memory errors in them
are caught by ``--replay``: run under the sanitizer build, it feeds every kept input and the
committed corpus through each target again, in process. (Fuzzing under the sanitizers directly
gives no guidance: gcc's preloaded runtimes take over libFuzzer's coverage hooks.) ``.ci/run``
does both.
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


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", HERE / f"fuzz_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, seconds: int, keep: Path | None) -> dict:
    corpus = HERE / "corpus" / name
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        fresh = Path(scratch) if keep is None else keep / name
        fresh.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--child", name, f"-max_total_time={seconds}",
               f"-artifact_prefix={crashes}/{name}-", "-rss_limit_mb=4096", "-timeout=60",
               "-print_final_stats=1", fresh]
        if corpus.is_dir():
            cmd.append(str(corpus))
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        found = len(os.listdir(fresh))
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    done = re.findall(r"Done (\d+) runs", proc.stderr)
    coverage = re.findall(r" cov: (\d+)", proc.stderr)
    report = {
        "target": name, "seconds": seconds, "status": "ok" if proc.returncode == 0 else "crash",
        "runs": int((runs or done or [0])[-1]),
        "coverage_edges": int((coverage or [0])[-1]),
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
        module = load(name)
    atheris.Setup([sys.argv[0], *libfuzzer_args], module.test_one_input)
    atheris.Fuzz()


def replay(name: str, kept: Path) -> dict:
    """Every kept input and the committed corpus through the target once, in this process."""
    test_one_input = load(name).test_one_input
    paths = [p for d in (kept / name, HERE / "corpus" / name) if d.is_dir()
             for p in sorted(d.iterdir()) if p.is_file()]
    for path in paths:
        try:
            test_one_input(path.read_bytes())
        except Exception:
            crashes = HERE / "crashes"
            crashes.mkdir(exist_ok=True)
            (crashes / f"{name}-replay-{path.name}").write_bytes(path.read_bytes())
            import traceback

            return {"target": name, "replayed": len(paths), "status": "crash",
                    "input": str(path), "output_tail": traceback.format_exc()[-4000:]}
    return {"target": name, "replayed": len(paths), "status": "ok"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2:])
        return 0  # not reached: libFuzzer exits the process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(targets()))
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 20)))
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep new inputs in DIR/<target>")
    parser.add_argument("--replay", type=Path, metavar="DIR",
                        help="replay DIR/<target> and the corpus in process instead of fuzzing")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(targets())
    if unknown:
        parser.error(f"unknown target(s) {sorted(unknown)}; targets are {targets()}")
    failed = False
    for name in args.targets or targets():
        report = replay(name, args.replay) if args.replay else run(name, args.seconds, args.keep)
        failed |= report["status"] != "ok"
        tail = report.pop("output_tail", None)
        print(json.dumps(report), flush=True)
        if tail:
            print(tail, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
