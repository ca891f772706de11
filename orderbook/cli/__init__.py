"""Command line: ``orderbook run | compare | sweep | show | map | replay | depth`` (also
``python -m orderbook``). ``replay`` and ``depth`` read real market data (see
:mod:`orderbook.cli.data`).

Each command takes an optional scenario TOML file (see :mod:`orderbook.config`); without one it
uses the built-in :func:`~orderbook.scenario.default_scenario`. ``run`` also takes a file of
several venues (``[[venues]]``, :mod:`orderbook.market_scenario`), and so do ``sweep`` (its
``--param`` names address the market: ``venues.B.rules.mark_rule``, ``indexes.BTC.exclude_ppm``,
``arbitrageurs.0.capital``) and ``compare`` (``--rules`` files change the rules of
``--venue-name``, default every venue with accounts). ``--scale`` shrinks or grows the
scenario (accounts, depth, refill, shock, per-round cap) the way ``default_scenario(scale)`` does.

Errors in files or arguments end the command with exit status 2 and one line on stderr
(``ORDERBOOK_TRACEBACK=1`` shows the traceback instead).

The long commands (``run``, ``compare``, ``sweep``, ``replay``, ``depth``) draw a progress bar
on stderr when it is a terminal (``--quiet``: none). ``-v`` shows the library's diagnostics
(the ``orderbook`` logger) on stderr at INFO, ``-vv`` at DEBUG.

The parts: this module holds the parser, :func:`main` and the one-line error handling;
:mod:`~orderbook.cli.scenarios` runs ``run``, ``compare``, ``sweep`` and ``show``,
:mod:`~orderbook.cli.data` ``replay`` and ``depth``, and :mod:`~orderbook.cli.output` formats
what they print.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys

from .. import __version__
from ..scenario import builtin_rule_sets
from ..venues import names as venue_names
from .analysis import add_commands as add_analysis_commands
from .data import add_commands as add_data_commands
from .output import PROG, CLIError
from .output import _jsonable as _jsonable  # tests/test_cli.py imports it from here
from .scenarios import cmd_compare, cmd_run, cmd_show, cmd_sweep

__all__ = ["main", "builtin_rule_sets"]


# ----------------------------------------------------------------------------------- parser
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
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p, counterfactual=True):
        p.add_argument("scenario", nargs="?", metavar="SCENARIO.toml",
                       help="scenario file (default: the built-in scenario)")
        p.add_argument("--scale", type=_scale, default=1.0, metavar="S",
                       help="scale accounts, depth, refill, shock and per-round cap by S "
                            "(default 1)")
        p.add_argument("--venue", metavar="NAME",
                       help="start from venue NAME's liquidation rules (one of "
                            f"{', '.join(venue_names())}; docs/venues.md)")
        if counterfactual:
            p.add_argument("--no-counterfactual", action="store_true",
                           help="skip the run without liquidations (no amplification figure)")

    p = sub.add_parser("run", help="run one scenario and print its summary",
                       description="Run one scenario and print its summary.")
    common(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--plot", metavar="FILE.png", help="draw the run (needs matplotlib)")
    p.add_argument("--ladder", metavar="FILE.png",
                   help="draw the book's depth ladder before the shock and after the cascade, "
                        "the levels each generation's forced orders took and the price path "
                        "(needs matplotlib)")
    p.add_argument("--animate", metavar="FILE.gif",
                   help="animate the cascade frame by frame: the ladder and the price (.gif, "
                        "or .mp4 with ffmpeg; needs matplotlib)")
    p.add_argument("--csv", metavar="DIR", help="write series, forced orders, trades and "
                                                "summary as CSV files into DIR")
    p.add_argument("--contagion", action="store_true",
                   help="with several instruments: also run each shocked instrument's shock "
                        "alone and print what it liquidated on every instrument")
    p.add_argument("--no-arbitrage", action="store_true",
                   help="with several venues ([[venues]]): open the arbitrageurs' accounts "
                        "but let them never trade (the counterfactual)")
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
    p.add_argument("--venues", metavar="NAME,NAME,...|all",
                   help="one rule set per venue preset (orderbook.venues), instead of --rules")
    p.add_argument("--venue-name", metavar="NAME",
                   help="with several venues ([[venues]]): the venue whose rules each rule set "
                        "changes (default: every venue with accounts)")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    p.add_argument("--plot", metavar="FILE.png", help="draw the price paths (needs matplotlib)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sweep", help="run a grid of parameters",
                       description="Run every combination of the --param values (in parallel).")
    common(p)
    p.add_argument("--param", action="append", metavar="NAME=V1,V2,...",
                   help="a dotted parameter and its values as TOML values, e.g. "
                        "rules.band_ppm=0,10000,20000 or population.leverage=[2,50],[2,100] or "
                        "rules.sizing=FULL,FRACTION (repeatable); with several venues "
                        "([[venues]]) venues.NAME.KEY, indexes.NAME.KEY, arbitrageurs.N.KEY, "
                        "steps or seed, e.g. venues.B.rules.mark_rule=INDEX,INDEX_CLAMPED")
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="worker processes (default: one per CPU; at most one per CPU and one "
                        "per run; 1 runs in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a dask.distributed cluster at ADDRESS "
                        "(needs orderbook-cascade[dask])")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("show", help="print the effective scenario as TOML",
                       description="Print the scenario with every value filled in, as TOML.")
    common(p, counterfactual=False)
    p.set_defaults(func=cmd_show)

    add_analysis_commands(sub, common)
    add_data_commands(sub)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show what the library does on stderr: -v at INFO (runs, their "
                             "sizes and times, files read), -vv at DEBUG")
    for name, p in sub.choices.items():
        # after the command too (orderbook run -v); SUPPRESS keeps a -v given before it
        p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="as orderbook -v")
        if name in _LONG_COMMANDS and not any("--quiet" in a.option_strings
                                              for a in p._actions):
            p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


#: The commands that draw a progress bar on stderr (when it is a terminal; --quiet: none).
_LONG_COMMANDS = ("run", "compare", "sweep", "replay", "depth")


def _log_to_stderr(verbose: int):
    """A handler showing the ``orderbook`` logger's records on stderr at INFO (``verbose``
    1) or DEBUG (2 or more): rich's on a terminal (sharing the progress bar's console), a
    plain one otherwise; None for 0. The caller removes it (:func:`main`)."""
    if not verbose:
        return None
    from .._progress import stderr_console

    console = stderr_console()
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(name)s: "
                                               f"%(message)s"))
    logger = logging.getLogger("orderbook")
    handler.level = logging.INFO if verbose == 1 else logging.DEBUG
    logger.addHandler(handler)
    logger.setLevel(min(logger.getEffectiveLevel(), handler.level))
    return handler


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"  # not "[Errno 21] Is a directory: 'x'"
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def _preflight(args) -> None:
    """What a command needs and can be checked before it simulates: its input files exist
    (named with their option) and its figures can be written (matplotlib present, the
    directory there and writable; for ``--animate`` a .gif or .mp4 whose writer is
    available)."""
    scenario = getattr(args, "scenario", None)
    if scenario is not None and not os.path.exists(scenario):
        raise CLIError(f"scenario file {scenario} not found")
    for spec in getattr(args, "rules", None) or ():
        _, sep, path = spec.partition("=")
        path = path.strip() if sep else spec   # (an empty path: --rules' own message)
        if path and not os.path.exists(path):
            raise CLIError(f"--rules {spec}: file {path} not found")
    for option in ("plot", "ladder", "animate"):
        path = getattr(args, option, None)
        if path:
            _check_figure(f"--{option}", path)


def _check_figure(option: str, path: str) -> None:
    """CLIError naming ``option`` unless a figure can be written at ``path``."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError(f"{option} needs matplotlib: "
                       "pip install 'orderbook-cascade[plot]'") from None
    if option == "--animate":
        from ..plot import animation_writer

        try:
            animation_writer(path)
        except (ValueError, RuntimeError) as exc:
            raise CLIError(f"--animate {path}: {exc}") from None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{option} {path}: directory {folder} not found")
    if not os.access(folder, os.W_OK) or (os.path.exists(path)
                                           and not os.access(path, os.W_OK)):
        raise CLIError(f"{option} {path}: not writable")


def main(argv=None) -> int:
    """Entry point of the ``orderbook`` command; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    level = logging.getLogger("orderbook").level
    handler = _log_to_stderr(args.verbose)
    try:
        _preflight(args)
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (``orderbook run | head``): nothing more to say, and the
        # interpreter must not complain when it flushes stdout on the way out
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141   # as a process ended by SIGPIPE
    except (CLIError, ValueError, KeyError, TypeError, OSError, ImportError) as exc:
        if os.environ.get("ORDERBOOK_TRACEBACK"):
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        if handler is not None:
            logger = logging.getLogger("orderbook")
            logger.removeHandler(handler)
            logger.setLevel(level)
