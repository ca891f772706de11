"""Diagnostics go through logging (the "orderbook" logger), never print: the library writes
nothing to stdout or stderr itself, and the CLI's -v shows the log lines on stderr."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest

from orderbook import default_scenario, run, sweep
from orderbook.cli import main
from orderbook.data.lobster import Injection, replay_files
from orderbook.scenario import SerialExecutor

PACKAGE = Path(__file__).resolve().parent.parent / "orderbook"
DATA = Path(__file__).resolve().parent / "data"
AAPL = DATA / "lobster_aapl_l10_message.csv"
AAPL_BOOK = DATA / "lobster_aapl_l10_orderbook.csv"

pytestmark = [pytest.mark.filterwarnings("ignore::orderbook.UnresolvedAccountsWarning"),
              pytest.mark.filterwarnings("ignore::orderbook.InertSettingWarning")]


def _library_modules():
    """Every .py module of the package outside orderbook/cli (the command line prints)."""
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "cli" not in p.relative_to(PACKAGE).parts]


def _writes(tree: ast.AST) -> list[str]:
    """The calls of print() and the uses of sys.stdout / sys.stderr in ``tree`` (doctest
    examples are inside docstrings, strings, so they do not count)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "print":
            found.append(f"line {node.lineno}: print(")
        if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                and isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(f"line {node.lineno}: sys.{node.attr}")
    return found


def test_the_scan_finds_prints_and_stream_writes():
    tree = ast.parse('import sys\nprint("x")\nsys.stderr.write("y")\n'
                     'def f():\n    """>>> print(1)"""\n')
    assert _writes(tree) == ["line 2: print(", "line 3: sys.stderr"]


def test_no_library_module_prints_or_writes_to_the_standard_streams():
    modules = _library_modules()
    assert len(modules) > 30 and PACKAGE / "scenario.py" in modules
    offenders = {str(p.relative_to(PACKAGE)): found for p in modules
                 if (found := _writes(ast.parse(p.read_text(), str(p))))}
    assert offenders == {}


def test_the_package_logger_has_a_null_handler():
    handlers = logging.getLogger("orderbook").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_run_logs_its_size_the_counterfactual_and_its_time(caplog):
    with caplog.at_level(logging.INFO, logger="orderbook"):
        run(default_scenario(0.05))
    messages = [r.getMessage() for r in caplog.records if r.name == "orderbook.scenario"]
    assert messages[0] == "run: 1,000 accounts, 120 steps, and its counterfactual"
    assert any(m.startswith("run: counterfactual done in ") for m in messages)
    assert messages[-1].startswith("run: done in ") and "85 accounts liquidated" in messages[-1]


def test_a_sweep_logs_its_executor(caplog):
    with caplog.at_level(logging.INFO, logger="orderbook"):
        sweep({"steps": [3, 4]}, default_scenario(0.05), executor=SerialExecutor(),
              counterfactual=False)
    assert "sweep: 2 runs on SerialExecutor" in caplog.messages


def test_a_replay_logs_the_files_read_and_each_injected_order(caplog):
    with caplog.at_level(logging.INFO, logger="orderbook"):
        replay_files(AAPL, AAPL_BOOK, inject=[Injection(side="sell", qty=100, at=50)])
    assert f"read {AAPL}: 200 messages" in caplog.messages
    assert f"read {AAPL_BOOK}: 200 rows of 10 levels" in caplog.messages
    assert "replay: injecting market sell 100 lots at row 50" in caplog.messages


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


@pytest.mark.parametrize("verbose", [["-v", "run"], ["run", "-v"]])
def test_cli_verbose_shows_the_log_lines_on_stderr_and_leaves_the_json_alone(capsys, verbose):
    argv = ["--scale", "0.05", "--json", "--no-counterfactual"]
    out, err = _cli(capsys, *verbose, *argv)
    lines = err.splitlines()
    assert lines[0] == "orderbook: INFO: orderbook.scenario: run: 1,000 accounts, 120 steps"
    assert lines[-1].startswith("orderbook: INFO: orderbook.scenario: run: done in ")
    assert not any("DEBUG" in line for line in lines)
    quiet_out, quiet_err = _cli(capsys, "run", *argv)
    assert out == quiet_out and quiet_err == ""
    assert json.loads(out)["liquidated_accounts"] == 85


def test_cli_vv_shows_debug_lines_and_removes_its_handler(capsys):
    before = list(logging.getLogger("orderbook").handlers)
    _, err = _cli(capsys, "-vv", "run", "--scale", "0.05", "--json", "--no-counterfactual")
    assert "orderbook: DEBUG: orderbook.scenario: run: market built and forecast in " in err
    assert logging.getLogger("orderbook").handlers == before
    _, err = _cli(capsys, "run", "--scale", "0.05", "--json", "--no-counterfactual")
    assert err == ""
