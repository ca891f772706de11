"""The simulation commands: ``orderbook run``, ``compare``, ``sweep`` and ``show``."""

from __future__ import annotations

import logging
import math
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..config import (
    ConfigError,
    load_rules,
    load_scenario,
    parse_values,
    rules_table,
    scenario_to_toml,
)
from ..market_scenario import is_market_file, load_market, scale_market
from ..market_scenario import run as run_market
from ..market_sweep import coerce_param as coerce_market_param
from ..market_sweep import compare as compare_market
from ..market_sweep import sweep as sweep_market
from ..scenario import (
    InertSettingWarning,
    Scenario,
    SerialExecutor,
    UnresolvedAccountsWarning,
    builtin_rule_sets,
    coerce_param,
    compare,
    contagion,
    contagion_origins,
    default_scenario,
    quote_unit,
    run,
    run_parts,
    scale_rules,
    scale_scenario,
    sweep,
    usable_cpus,
    worker_count,
)
from ..venues import rule_sets as venue_rule_sets
from .output import (
    _DYNAMICS_HEADERS,
    _METRIC_HEADERS,
    PROG,
    CLIError,
    _bar,
    _describe,
    _format_market,
    _format_market_rows,
    _format_run,
    _in_ccy,
    _metric_cells,
    _money,
    _param_text,
    _print_json,
    _rules_text,
    _summary_json,
    _table,
    _warn_unresolved,
)

__all__ = ["cmd_compare", "cmd_run", "cmd_show", "cmd_sweep"]

log = logging.getLogger(__name__)

#: Levels a side each frame of ``run --animate`` keeps (orderbook.ladder.BookFrames): the
#: built-in book's 1,000, at 32 kB a frame; deeper levels are shaded as unknown.
ANIMATION_LEVELS = 1_000


def _load(args) -> tuple[Scenario, Scenario, str]:
    """(unscaled scenario, scenario to run, description of its source)."""
    if args.scenario is None:
        unscaled, source = default_scenario(), "built-in scenario"
    else:
        unscaled, source = load_scenario(args.scenario), str(args.scenario)
    if args.venue is not None:
        (name, rules), = _venue_rules("--venue", [args.venue], unscaled).items()
        unscaled = replace(unscaled, rules=rules)
        source += f" with {name}'s rules"
    scenario = scale_scenario(unscaled, args.scale)
    return unscaled, scenario, source + (f" at scale {args.scale:g}" if args.scale != 1 else "")


def _venue_rules(option: str, chosen, scenario: Scenario) -> dict:
    try:
        return venue_rule_sets(chosen, scenario)
    except (KeyError, TypeError, ValueError) as exc:
        raise CLIError(f"{option}: {exc.args[0] if exc.args else exc}") from None


def cmd_run(args) -> int:
    if args.scenario is not None and is_market_file(args.scenario):
        return _run_market(args)
    if args.no_arbitrage:
        raise CLIError("--no-arbitrage needs a scenario file of several venues ([[venues]])")
    _, scenario, source = _load(args)
    if args.contagion:
        try:
            contagion_origins(scenario)   # before any run: a scenario it cannot split fails now
        except ValueError as exc:
            raise CLIError(f"--contagion: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)  # said by _warn_unresolved
        warnings.simplefilter("ignore", InertSettingWarning)
        counterfactual = not args.no_counterfactual
        with _bar(args, run_parts(scenario, counterfactual), "steps") as bar:
            result = run(scenario, counterfactual=counterfactual,
                         book_levels=ANIMATION_LEVELS if args.animate else None, progress=bar)
    _warn_unresolved(result.summary)
    spread = None
    if args.contagion:
        try:
            spread = contagion(scenario)
        except ValueError as exc:
            raise CLIError(f"--contagion: {exc}") from None
    if args.json:
        out = _summary_json(result, source)
        if spread is not None:
            out["contagion"] = {"origins": spread.origins, "instruments": spread.instruments,
                                "notional": spread.notional, "accounts": spread.accounts}
        _print_json(out)
    else:
        print(_format_run(result, source))
        if spread is not None:
            print("\n" + _contagion_text(spread))
    notes = sys.stderr if args.json else sys.stdout
    if args.csv:
        paths = result.to_csv(args.csv)
        print(f"wrote {', '.join(str(p) for p in paths)}", file=notes)
    if args.plot:
        _plot(result, args.plot)
        print(f"wrote {args.plot}", file=notes)
    if args.ladder:
        result.plot_ladder(args.ladder)
        print(f"wrote {args.ladder}", file=notes)
    if args.animate:
        result.animate(args.animate)
        print(f"wrote {args.animate}", file=notes)
    return 0


def _is_market(args) -> bool:
    """Whether the command's scenario file is one of several venues ([[venues]])."""
    return args.scenario is not None and is_market_file(args.scenario)


def _refuse_on_market(*given) -> None:
    """A CLIError for the first of the (value, option, why) that was given with a file of
    several venues."""
    for value, option, why in given:
        if value:
            raise CLIError(f"{option} does not apply to a file of several venues ([[venues]]): "
                           f"{why}")


_OWN_RULES = "each venue gives its own rules ([venues.rules] venue = ...)"


def _load_market(args):
    """(market scenario scaled by --scale, description of its source)."""
    ms = scale_market(load_market(args.scenario), args.scale)
    return ms, str(args.scenario) + (f" at scale {args.scale:g}" if args.scale != 1 else "")


def _run_market(args) -> int:
    """``orderbook run`` on a file of several venues: the per-venue table, JSON, CSV, figure."""
    _refuse_on_market((args.venue, "--venue", _OWN_RULES),
                      (args.contagion, "--contagion",
                       "it splits the shocks of one venue's instruments"),
                      *((getattr(args, option), f"--{option}", "it draws one venue's book")
                        for option in ("ladder", "animate")))
    ms, source = _load_market(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)  # said by _warn_unresolved
        warnings.simplefilter("ignore", InertSettingWarning)
        with _bar(args, [("market run", ms.steps)], "steps") as bar:
            result = run_market(ms, arbitrage=not args.no_arbitrage, progress=bar)
    for name, venue in result.venues.items():
        _warn_unresolved(venue.summary, f"venue {name!r}: ")
    if args.json:
        _print_json({"scenario": source, **result.summary})
    else:
        print(_format_market(result, source))
    notes = sys.stderr if args.json else sys.stdout
    if args.csv:
        for name, venue in result.venues.items():
            paths = venue.to_csv(Path(args.csv) / name)
            print(f"wrote {', '.join(str(p) for p in paths)}", file=notes)
    if args.plot:
        _plot(result, args.plot)
        print(f"wrote {args.plot}", file=notes)
    return 0


def _contagion_text(spread) -> str:
    """The contagion matrix: one row per origin, liquidated notional (quote) and accounts on
    each instrument when only that origin is shocked."""
    rows = [[origin] + [f"{_money(n, spread.quote_unit)} ({a:,})"
                        for n, a in zip(notional, accounts, strict=True)]
            for origin, notional, accounts in zip(spread.origins, spread.notional,
                                                  spread.accounts, strict=True)]
    return ("contagion: liquidated notional, quote (accounts), on each instrument when only the "
            "row's instrument is shocked\n"
            + _table(["shocked alone"] + spread.instruments, rows,
                     right=set(range(1, len(spread.instruments) + 1))))


def _plot(obj, path) -> None:
    try:
        obj.plot(path)
    except ImportError as exc:
        if "matplotlib" in str(exc):
            raise CLIError("--plot needs matplotlib: "
                           "pip install 'orderbook-cascade[plot]'") from None
        raise


def _rules_files(specs: list[str]) -> dict:
    """{name: path} of the --rules NAME=RULES.toml options (a bare path is named by its
    stem)."""
    files = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).stem, spec
        name = name.strip()
        if not name or not path:
            raise CLIError(f"--rules {spec!r}: expected NAME=RULES.toml")
        if name in files:
            raise CLIError(f"--rules: the name {name!r} is given twice")
        files[name] = path
    return files


def cmd_compare(args) -> int:
    if _is_market(args):
        return _compare_market(args)
    if args.venue_name is not None:
        raise CLIError("--venue-name needs a file of several venues ([[venues]]): it names "
                       "the venue whose rules each rule set changes")
    unscaled, scenario, source = _load(args)
    if args.rules and args.venues:
        raise CLIError("give --rules or --venues, not both")
    if args.venues:
        chosen = None if args.venues.strip().lower() == "all" else [
            name for name in args.venues.split(",") if name.strip()]
        rule_sets = {name: scale_rules(r, args.scale)
                     for name, r in _venue_rules("--venues", chosen, unscaled).items()}
    elif args.rules:
        rule_sets = {name: scale_rules(load_rules(path, unscaled.rules, unscaled), args.scale)
                     for name, path in _rules_files(args.rules).items()}
    else:
        rule_sets = {name: scale_rules(r, args.scale)
                     for name, r in builtin_rule_sets(unscaled).items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)  # said by _warn_unresolved
        warnings.simplefilter("ignore", InertSettingWarning)
        counterfactual = not args.no_counterfactual
        parts = [(name, sum(n for _, n in run_parts(replace(scenario, rules=rules),
                                                      counterfactual)))
                 for name, rules in rule_sets.items()]
        with _bar(args, parts, "steps") as bar:
            comparison = compare(rule_sets, scenario, counterfactual=counterfactual,
                                 progress=bar)
    for name, res in comparison.results.items():
        _warn_unresolved(res.summary, f"rules {name!r}: ")
    if args.json:
        _print_json(comparison.table)
    else:
        unit = quote_unit(scenario)
        rows = []
        for name, res in comparison.results.items():
            sm = res.summary
            cells = _metric_cells(sm, unit)
            label = f"{name} (mark fixed)" if sm.get("static_mark") else name
            rows.append([label, *cells[:4], f"{sm['trough_step']}",
                         _money(sm["peak_step_liquidated"], unit), *cells[4:]])
        headers = _in_ccy(["rules", *_METRIC_HEADERS[:4], *_DYNAMICS_HEADERS,
                           *_METRIC_HEADERS[4:]], scenario)
        if args.venues:
            # the scenario line once, then each preset's rules (they replace the scenario's)
            print(_describe(scenario, source).splitlines()[0])
            print("venue presets (orderbook.venues; sources and approximations in "
                  "docs/venues.md):")
            for name, res in comparison.results.items():
                print(f"  {name}: {_rules_text(res.scenario)}")
        else:
            print(_describe(scenario, source, "scenario rules (each row changes them)"))
        print()
        print(_table(headers, rows, right=set(range(1, len(headers)))))
    if args.plot:
        _plot(comparison, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _compare_market(args) -> int:
    """``orderbook compare`` on a file of several venues: each --rules file changes the rules
    of the venue --venue-name (default: every venue with accounts); a row per run and
    venue."""
    _refuse_on_market(
        (args.venue, "--venue", _OWN_RULES + "; a --rules file with venue = \"NAME\" gives "
                                              "a preset"),
        (args.venues, "--venues", "give each preset as a --rules file holding "
                                  "venue = \"NAME\""),
        (args.scale != 1, "--scale", "the rules files change the venues as the file writes "
                                     "them; scale the venues in the file"))
    if not args.rules:
        raise CLIError("compare on a file of several venues needs --rules NAME=RULES.toml (at "
                       "least one): the built-in rule sets belong to one venue's shock")
    ms, source = _load_market(args)
    if args.venue_name is not None:
        try:
            ms.venue(args.venue_name)
        except KeyError as exc:
            raise CLIError(f"--venue-name {args.venue_name}: {exc}") from None
    # Each file's keys change each venue's own rules (a bad one: "rules 'NAME' on venue ...").
    rule_sets = {name: rules_table(path) for name, path in _rules_files(args.rules).items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)  # said below
        warnings.simplefilter("ignore", InertSettingWarning)
        with _bar(args, [(name, ms.steps) for name in rule_sets], "steps") as bar:
            comparison = compare_market(rule_sets, ms, venue=args.venue_name, progress=bar)
    for name, market in comparison.results.items():
        for venue, res in market.venues.items():
            _warn_unresolved(res.summary, f"rules {name!r}: venue {venue!r}: ")
    if args.json:
        _print_json(comparison.table)
    else:
        _print_market_comparison(comparison, ms, source)
    if args.plot:
        _plot(comparison, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _print_market_comparison(comparison, ms, source) -> None:
    ruled = comparison.ruled
    print(f"market scenario: {source}: {len(ms.venues)} venues, {ms.steps} steps; each rule "
          f"set changes the rules of {', '.join(ruled)}")
    for name, market in comparison.results.items():
        for venue in ruled:
            print(f"  {name} on {venue}: {_rules_text(market.venues[venue].scenario)}")
    print()
    runs = [([name], {venue: (res.summary, venue in ruled)
                      for venue, res in market.venues.items()})
            for name, market in comparison.results.items()]
    print(_format_market_rows(["rules"], runs))


def _grid(specs: list[str], coerce) -> dict:
    """{name: [values]} of the --param NAME=V1,V2 options, each value converted by
    ``coerce(name, value)``."""
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
        grid[name] = [coerce(name, v) for v in values]
    return grid


@contextmanager
def _executor(args, total: int):
    """(executor, progress) for ``total`` runs as --workers, --scheduler and --quiet ask:
    a dask cluster's, this process's (--workers 1) or a process pool; closed at the end."""
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise CLIError("--scheduler needs dask.distributed: pip install "
                           "'orderbook-cascade[dask]'") from None
        try:
            client = Client(args.scheduler)
        except (OSError, TimeoutError, ValueError) as exc:
            raise CLIError(f"--scheduler {args.scheduler}: cannot connect: {exc}") from None
    workers = worker_count(args.workers, total)
    if client is None and args.workers is not None and workers < args.workers:
        print(f"{PROG}: note: --workers {args.workers} capped at {workers} ({total} runs, "
              f"{usable_cpus()} usable CPUs)", file=sys.stderr)
    if client is not None:
        executor = client.get_executor()
    elif workers == 1:
        executor = SerialExecutor()
    else:
        executor = ProcessPoolExecutor(max_workers=workers)
    log.info("sweep: %s runs on %s", f"{total:,}",
             f"dask cluster {args.scheduler}" if client is not None
             else "this process" if workers == 1 else f"{workers} worker processes")
    try:
        with _bar(args, [("sweep", total)], "runs") as progress:
            yield executor, progress
    finally:
        if client is not None:
            client.close()
        else:
            executor.shutdown()


def cmd_sweep(args) -> int:
    if _is_market(args):
        return _sweep_market(args)
    _, scenario, source = _load(args)
    if not args.param:
        raise CLIError("sweep needs at least one --param NAME=VALUES")
    grid = _grid(args.param, lambda name, value: coerce_param(scenario, name, value))
    total = math.prod(len(v) for v in grid.values())
    with _executor(args, total) as (executor, progress), warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)  # said below
        warnings.simplefilter("ignore", InertSettingWarning)
        rows = sweep(grid, scenario, executor=executor,
                     counterfactual=not args.no_counterfactual, progress=progress)
    names = list(grid)
    for row in rows:
        _warn_unresolved(row, ", ".join(f"{n}={_param_text(row[n])}" for n in names) + ": ")
    if args.json:
        _print_json(rows)
        return 0
    unit = quote_unit(scenario)
    table = [[_param_text(row[n]) for n in names] + _metric_cells(row, unit) for row in rows]
    print(_describe(scenario, source))
    print(f"sweep: {total} runs over {', '.join(names)}")
    print()
    print(_table(names + _in_ccy(_METRIC_HEADERS, scenario), table,
                 right=set(range(len(names) + len(_METRIC_HEADERS)))))
    return 0


def _sweep_market(args) -> int:
    """``orderbook sweep`` on a file of several venues: --param names address the market
    (venues.NAME.key, indexes.NAME.key, arbitrageurs.N.key, steps, seed); a row per run and
    venue."""
    _refuse_on_market((args.venue, "--venue", _OWN_RULES + "; sweep one with --param "
                                                           "venues.NAME.rules.KEY=..."))
    ms, source = _load_market(args)
    if not args.param:
        raise CLIError("sweep needs at least one --param NAME=VALUES (on several venues: "
                       "venues.NAME.key, indexes.NAME.key, arbitrageurs.N.key, steps, seed)")
    grid = _grid(args.param, lambda name, value: coerce_market_param(ms, name, value))
    total = math.prod(len(v) for v in grid.values())
    with _executor(args, total) as (executor, progress), warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)  # said below
        warnings.simplefilter("ignore", InertSettingWarning)
        rows = sweep_market(grid, ms, executor=executor, progress=progress)
    names = list(grid)
    for row in rows:
        point = ", ".join(f"{n}={_param_text(row[n])}" for n in names)
        for venue, summary in row["venues"].items():
            _warn_unresolved(summary, f"{point}: venue {venue!r}: ")
    if args.json:
        _print_json(rows)
        return 0
    print(f"market scenario: {source}: {len(ms.venues)} venues, {ms.steps} steps")
    print(f"sweep: {total} runs over {', '.join(names)}")
    print()
    runs = [([_param_text(row[n]) for n in names],
             {venue: (summary, None) for venue, summary in row["venues"].items()})
            for row in rows]
    print(_format_market_rows(names, runs))
    return 0


def cmd_show(args) -> int:
    _, scenario, _ = _load(args)
    sys.stdout.write(scenario_to_toml(scenario))
    return 0
