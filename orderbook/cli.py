"""Command line: ``orderbook run | compare | sweep | show | replay | depth`` (also
``python -m orderbook``). ``replay`` and ``depth`` read real market data (see
:mod:`orderbook._cli_data`).

Each command takes an optional scenario TOML file (see :mod:`orderbook.config`); without one it
uses the built-in :func:`~orderbook.scenario.default_scenario`. ``--scale`` shrinks or grows the
scenario (accounts, depth, refill, shock, per-round cap) the way ``default_scenario(scale)`` does.

Errors in files or arguments end the command with exit status 2 and one line on stderr
(``ORDERBOOK_TRACEBACK=1`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from enum import IntEnum
from pathlib import Path

import numpy as np

from ._cli_data import add_commands as add_data_commands
from .config import ConfigError, load_rules, load_scenario, parse_values, scenario_to_toml
from .events import LimitRule, Sizing
from .scenario import (
    Scenario, SerialExecutor, builtin_rule_sets, coerce_param, compare, default_scenario,
    quote_unit, run, scale_rules, scale_scenario, sweep, usable_cpus, worker_count,
)

__all__ = ["main", "builtin_rule_sets"]

PROG = "orderbook"


class CLIError(Exception):
    """A bad argument; reported on one line with exit status 2."""


class _Progress:
    """A progress bar on stderr: tqdm when installed, else a one-line counter."""

    def __init__(self, total: int, label: str = "sweep", stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream if stream is not None else sys.stderr
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, desc=label, unit="run", file=self.stream, leave=False)
        self._draw()

    def advance(self) -> None:
        self.update(self.done + 1)

    def __call__(self, done: int, total: int | None = None) -> None:  # sweep's progress hook
        self.update(done)

    def update(self, done: int) -> None:
        done = min(max(done, self.done), self.total)
        if done == self.done:
            return
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done
        self._draw()

    def _draw(self) -> None:
        if self.bar is None:
            self.stream.write(f"\r{self.label}: {self.done}/{self.total} runs")
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------------------ formatting
def _money(units, unit: Decimal) -> str:
    """Quote units as an amount of quote currency, thousands separated, to the cent (exact
    amounts are in the JSON output)."""
    if units is None:
        return "-"
    value = Decimal(int(units)) * unit
    places = 0 if unit == unit.to_integral_value() else 2
    return f"{value:,.{places}f}"


def _price(ticks, tick: Decimal) -> str:
    value = Decimal(repr(float(ticks))) * tick if not float(ticks).is_integer() else \
        Decimal(int(ticks)) * tick
    return f"{value.normalize():,f}"


def _num(value, fmt: str = ",") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, fmt)


def _param_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    return str(value)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Decimal):
        return str(value)
    return value


def _print_json(obj) -> None:
    print(json.dumps(_jsonable(obj), allow_nan=False))


# --------------------------------------------------------------------------------- summaries
def _summary_json(result, source: str) -> dict:
    out = {"scenario": source}
    for key, value in result.summary.items():
        if key == "quote_unit":  # the scenario's own sizes, beside the unit they make
            out["tick_size"], out["lot_size"] = result.scenario.tick_size, result.scenario.lot_size
        out[key] = value
    return out


def _describe(s: Scenario, source: str, rules_label: str = "rules") -> str:
    pop = s.population
    accounts = f"{pop.count:,} accounts" if hasattr(pop, "count") else \
        f"{len(pop.side):,} explicit accounts"
    r = s.rules
    rules = [f"mark {r.mark_rule.name}", f"sizing {r.sizing.name}"
             + (f" {r.fraction_ppm / 1e4:g}%" if r.sizing == Sizing.FRACTION else ""),
             f"limit {r.limit.name}" + (f" {r.band_ppm / 1e4:g}%" if r.limit == LimitRule.BAND
                                        else ""),
             f"round cap {_money(r.round_cap, quote_unit(s)) if r.round_cap else 'none'}",
             f"deficit {r.deficit.name}"]
    return (f"scenario: {source}: {accounts}, {s.steps} steps, tick {s.tick_size}, "
            f"lot {s.lot_size}, quote unit {quote_unit(s)}\n"
            f"{rules_label}: {', '.join(rules)}")


def _format_run(result, source: str) -> str:
    s, sm = result.scenario, result.summary
    unit, tick = quote_unit(s), Decimal(s.tick_size)
    fund0 = s.rules.insurance_fund
    amp = sm["amplification"]
    half = sm["steps_to_half_recovery"]
    rows = [
        ["accounts", f"{sm['accounts']:,}", "", "seeded, not liquidatable at the start"],
        ["liquidated accounts", f"{sm['liquidated_accounts']:,}", "",
         f"{sm['liquidated_accounts_pct']:.1f} % of accounts"],
        ["forced orders", f"{sm['forced_orders']:,}", "", ""],
        ["liquidated notional", _money(sm["liquidated_notional"], unit), "quote",
         f"{sm['liquidated_notional']:,} quote units of {unit}"],
        ["max drawdown", f"{sm['max_drawdown_pct']:.2f}", "%",
         f"{sm['max_drawdown_ticks']:,.0f} ticks = {_price(sm['max_drawdown_ticks'], tick)} "
         f"in price, from mid {_price(sm['start_mid'], tick)}"],
    ]
    rows += [
        ["trough at step", "-" if sm["trough_step"] is None else f"{sm['trough_step']:,}",
         "", "step of the lowest mid"],
        ["peak liquidated / step", _money(sm["peak_step_liquidated"], unit), "quote",
         "largest notional liquidated in one step"],
    ]
    if "counterfactual_drawdown_ticks" in sm:
        rows.append(["drawdown w/o liquidations", f"{sm['counterfactual_drawdown_pct']:.2f}", "%",
                     f"{sm['counterfactual_drawdown_ticks']:,.0f} ticks"])
    rows += [
        ["amplification", "n/a" if amp is None else _num(amp, ".2f"), "x",
         "drawdown / drawdown without liquidations" if amp is not None
         else "no counterfactual run"],
        ["generations", f"{sm['generations']:,}", "", "cascade depth (rounds that liquidated)"],
        ["bad debt", _money(sm["bad_debt"], unit), "quote", ""],
        ["socialized loss", _money(sm["socialized"], unit), "quote", ""],
        ["ADL count", f"{sm['adl_count']:,}", "", "positions closed by auto-deleveraging"],
        ["insurance fund", _money(sm["insurance_fund_end"], unit), "quote",
         f"start {_money(fund0, unit)}, change {'+' if sm['insurance_fund_end'] >= fund0 else '-'}"
         f"{_money(abs(sm['insurance_fund_end'] - fund0), unit)}"],
        ["steps to half recovery", "-" if half is None else f"{half:,}", "steps",
         f"not within {s.steps} steps" if half is None else "from the trough"],
        ["queue left", f"{sm['queue_left']:,}", "", "accounts still queued at the end"],
    ]
    out = [_describe(s, source), "", _table(["metric", "value", "unit", "note"], rows, right={1})]
    gens = sm["liquidations_by_generation"]
    if gens:
        top = max(gens)
        grows = [[f"{g}", f"{n:,}", "#" * max(1 if n else 0, round(40 * n / top))]
                 for g, n in enumerate(gens)]
        out += ["", "liquidations by generation",
                _table(["generation", "accounts", ""], grows, right={0, 1})]
    else:
        out += ["", "no liquidations"]
    return "\n".join(out)


def _table(headers, rows, right: set) -> str:
    """Aligned columns: those in ``right`` right-aligned, the others left-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths)]
                     + [line(r) for r in rows])


_DYNAMICS_HEADERS = ["trough step", "peak/step (quote)"]
_METRIC_HEADERS = ["liq. accts", "liq. notional (quote)", "drawdown %", "ticks", "amp. x",
                   "gens", "bad debt (quote)", "ADL", "fund end (quote)", "half rec. (steps)",
                   "queue left"]


def _metric_cells(summary: dict, unit: Decimal) -> list[str]:
    amp = summary["amplification"]
    half = summary["steps_to_half_recovery"]
    return [f"{summary['liquidated_accounts']:,}", _money(summary["liquidated_notional"], unit),
            f"{summary['max_drawdown_pct']:.2f}", f"{summary['max_drawdown_ticks']:,.0f}",
            "n/a" if amp is None else _num(amp, ".2f"), f"{summary['generations']:,}",
            _money(summary["bad_debt"], unit), f"{summary['adl_count']:,}",
            _money(summary["insurance_fund_end"], unit), "-" if half is None else f"{half:,}",
            f"{summary['queue_left']:,}"]


# --------------------------------------------------------------------------------- scenarios
def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _load(args) -> tuple[Scenario, Scenario, str]:
    """(unscaled scenario, scenario to run, description of its source)."""
    if args.scenario is None:
        unscaled, source = default_scenario(), "built-in scenario"
    else:
        unscaled, source = load_scenario(args.scenario), str(args.scenario)
    scenario = scale_scenario(unscaled, args.scale)
    return unscaled, scenario, source + (f" at scale {args.scale:g}" if args.scale != 1 else "")


# --------------------------------------------------------------------------------- commands
def cmd_run(args) -> int:
    _, scenario, source = _load(args)
    result = run(scenario, counterfactual=not args.no_counterfactual)
    if args.json:
        _print_json(_summary_json(result, source))
    else:
        print(_format_run(result, source))
    notes = sys.stderr if args.json else sys.stdout
    if args.csv:
        paths = result.to_csv(args.csv)
        print(f"wrote {', '.join(str(p) for p in paths)}", file=notes)
    if args.plot:
        _plot(result, args.plot)
        print(f"wrote {args.plot}", file=notes)
    return 0


def _plot(obj, path) -> None:
    try:
        obj.plot(path)
    except ImportError as exc:
        if "matplotlib" in str(exc):
            raise CLIError("--plot needs matplotlib: pip install 'orderbook[plot]'") from None
        raise


def cmd_compare(args) -> int:
    unscaled, scenario, source = _load(args)
    if args.rules:
        rule_sets = {}
        for spec in args.rules:
            name, sep, path = spec.partition("=")
            if not sep:
                name, path = Path(spec).stem, spec
            name = name.strip()
            if not name or not path:
                raise CLIError(f"--rules {spec!r}: expected NAME=RULES.toml")
            if name in rule_sets:
                raise CLIError(f"--rules: the name {name!r} is given twice")
            rule_sets[name] = scale_rules(load_rules(path, unscaled.rules), args.scale)
    else:
        rule_sets = {name: scale_rules(r, args.scale)
                     for name, r in builtin_rule_sets(unscaled).items()}
    comparison = compare(rule_sets, scenario, counterfactual=not args.no_counterfactual)
    if args.json:
        _print_json(comparison.table)
    else:
        unit = quote_unit(scenario)
        rows = []
        for name, res in comparison.results.items():
            sm = res.summary
            cells = _metric_cells(sm, unit)
            rows.append([name, *cells[:4], f"{sm['trough_step']}",
                         _money(sm["peak_step_liquidated"], unit), *cells[4:]])
        headers = ["rules", *_METRIC_HEADERS[:4], *_DYNAMICS_HEADERS, *_METRIC_HEADERS[4:]]
        print(_describe(scenario, source, "scenario rules (each row changes them)"))
        print()
        print(_table(headers, rows, right=set(range(1, len(headers)))))
    if args.plot:
        _plot(comparison, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _grid(scenario: Scenario, specs: list[str]) -> dict:
    grid = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise CLIError(f"--param {spec!r}: expected NAME=VALUE[,VALUE...], e.g. "
                           f"rules.band_ppm=0,10000,20000")
        if name in grid:
            raise CLIError(f"--param {name!r} is given twice")
        try:
            values = parse_values(text)
        except ConfigError as exc:
            raise CLIError(f"--param {name}: {exc}") from None
        grid[name] = [coerce_param(scenario, name, v) for v in values]
    return grid


def cmd_sweep(args) -> int:
    _, scenario, source = _load(args)
    if not args.param:
        raise CLIError("sweep needs at least one --param NAME=VALUES")
    grid = _grid(scenario, args.param)
    total = math.prod(len(v) for v in grid.values())
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise CLIError("--scheduler needs dask.distributed: pip install "
                           "'orderbook[dask]'") from None
        try:
            client = Client(args.scheduler)
        except (OSError, TimeoutError, ValueError) as exc:
            raise CLIError(f"--scheduler {args.scheduler}: cannot connect: {exc}") from None
    workers = worker_count(args.workers, total)
    if client is None and args.workers is not None and workers < args.workers:
        print(f"{PROG}: note: --workers {args.workers} capped at {workers} ({total} runs, "
              f"{usable_cpus()} usable CPUs)", file=sys.stderr)
    progress = _Progress(total) if not args.quiet else None
    if client is not None:
        executor = client.get_executor()
    elif workers == 1:
        executor = SerialExecutor(on_done=progress.advance if progress else None)
    else:
        executor = ProcessPoolExecutor(max_workers=workers)
    try:
        rows = sweep(grid, scenario, executor=executor,
                     counterfactual=not args.no_counterfactual, progress=progress)
    finally:
        if progress is not None:
            progress.close()
        if client is not None:
            client.close()
        else:
            executor.shutdown()
    if args.json:
        _print_json(rows)
        return 0
    unit = quote_unit(scenario)
    names = list(grid)
    table = [[_param_text(row[n]) for n in names] + _metric_cells(row, unit) for row in rows]
    print(_describe(scenario, source))
    print(f"sweep: {total} runs over {', '.join(names)}")
    print()
    print(_table(names + _METRIC_HEADERS, table,
                 right=set(range(len(names) + len(_METRIC_HEADERS)))))
    return 0


def cmd_show(args) -> int:
    _, scenario, _ = _load(args)
    sys.stdout.write(scenario_to_toml(scenario))
    return 0


# ----------------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Liquidation-cascade simulator: run a scenario, compare liquidation rule "
                    "sets, sweep parameters. Scenario files are TOML (see examples/); without "
                    "one the built-in scenario runs.",
        epilog="Units: prices in ticks, sizes in lots, money in quote units (shown in quote "
               "currency), rates in ppm. Set ORDERBOOK_TRACEBACK=1 to see tracebacks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p, counterfactual=True):
        p.add_argument("scenario", nargs="?", metavar="SCENARIO.toml",
                       help="scenario file (default: the built-in scenario)")
        p.add_argument("--scale", type=_scale, default=1.0, metavar="S",
                       help="scale accounts, depth, refill, shock and per-round cap by S "
                            "(default 1)")
        if counterfactual:
            p.add_argument("--no-counterfactual", action="store_true",
                           help="skip the run without liquidations (no amplification figure)")

    p = sub.add_parser("run", help="run one scenario and print its summary",
                       description="Run one scenario and print its summary.")
    common(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--plot", metavar="FILE.png", help="draw the run (needs matplotlib)")
    p.add_argument("--csv", metavar="DIR", help="write series, forced orders, trades and "
                                                "summary as CSV files into DIR")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="run one scenario under several rule sets",
                       description="Run one scenario under several rule sets from the same "
                                   "starting state. Without --rules: full market closes, 25%% "
                                   "partial closes, bankruptcy-price IOC with fund takeover, "
                                   "1%% band with a per-round cap.")
    common(p)
    p.add_argument("--rules", action="append", metavar="NAME=RULES.toml",
                   help="a rule set: a TOML file with a [rules] table whose keys override the "
                        "scenario's rules (repeatable)")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    p.add_argument("--plot", metavar="FILE.png", help="draw the price paths (needs matplotlib)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sweep", help="run a grid of parameters",
                       description="Run every combination of the --param values (in parallel).")
    common(p)
    p.add_argument("--param", action="append", metavar="NAME=V1,V2,...",
                   help="a dotted parameter and its values as TOML values, e.g. "
                        "rules.band_ppm=0,10000,20000 or population.leverage=[2,50],[2,100] or "
                        "rules.sizing=FULL,FRACTION (repeatable)")
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="worker processes (default: one per CPU; at most one per CPU and one "
                        "per run; 1 runs in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a dask.distributed cluster at ADDRESS (needs orderbook[dask])")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("show", help="print the effective scenario as TOML",
                       description="Print the scenario with every value filled in, as TOML.")
    common(p, counterfactual=False)
    p.set_defaults(func=cmd_show)

    add_data_commands(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"  # not "[Errno 21] Is a directory: 'x'"
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def main(argv=None) -> int:
    """Entry point of the ``orderbook`` command; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return args.func(args)
    except (CLIError, ValueError, KeyError, TypeError, OSError, ImportError) as exc:
        if os.environ.get("ORDERBOOK_TRACEBACK"):
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
