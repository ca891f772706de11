"""The progress hooks (orderbook._progress): one contract, progress(done, total) with done
increasing to total, for every long call; and the CLI's bars, drawn on a terminal only."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

import orderbook._progress as progress_module
from orderbook import MarkRule, Rules, Shock, Sizing, compare, default_scenario, run, sweep
from orderbook.cli import main
from orderbook.data.binance import capture as binance_capture
from orderbook.data.binance import read_capture
from orderbook.data.lobster import read_messages, replay_files
from orderbook.data.lobster import replayer as lobster_replayer
from orderbook.market_scenario import IndexSpec, Leg, MarketScenario, Venue
from orderbook.market_scenario import run as run_market
from orderbook.market_sweep import compare as compare_market
from orderbook.market_sweep import sweep as sweep_market
from orderbook.scenario import SerialExecutor

DATA = Path(__file__).resolve().parent / "data"
AAPL = DATA / "lobster_aapl_l10_message.csv"
AAPL_BOOK = DATA / "lobster_aapl_l10_orderbook.csv"
BINANCE = DATA / "binance_btcusdt_small.gz"
STEPS = 12

# the small runs may end unresolved or with an inert setting; their warnings are not the subject
pytestmark = [pytest.mark.filterwarnings("ignore::orderbook.UnresolvedAccountsWarning"),
              pytest.mark.filterwarnings("ignore::orderbook.InertSettingWarning")]


class Recorder:
    """A progress hook that keeps every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, done, total):
        self.calls.append((done, total))


def assert_contract(calls, total):
    """done rises strictly, never past total, and ends at it; total never changes."""
    assert calls, "the hook was never called"
    dones = [done for done, _ in calls]
    assert all(t == total for _, t in calls), calls
    assert all(a < b for a, b in zip(dones, dones[1:], strict=False)), dones
    assert 0 < dones[0] and dones[-1] == total


@pytest.fixture(scope="module")
def small():
    return replace(default_scenario(0.05), steps=STEPS)


@pytest.fixture(scope="module")
def market(small):
    b = replace(small, shock=Shock(), rules=replace(small.rules, mark_rule=MarkRule.INDEX))
    return MarketScenario((Venue("A", small), Venue("B", b)),
                          (IndexSpec("BTC", (Leg("A"),), feeds=(Leg("B"),)),), steps=STEPS)


@pytest.fixture
def terminal(monkeypatch):
    """The stderr console the bars draw on, replaced by a terminal-like one; its text."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    monkeypatch.setattr(progress_module, "_STDERR", console)
    return buffer


# ------------------------------------------------------------------------------ the library
def test_run_counts_the_counterfactuals_steps_then_the_runs(small):
    hook = Recorder()
    run(small, progress=hook)
    assert hook.calls == [(k, 2 * STEPS) for k in range(1, 2 * STEPS + 1)]


def test_run_without_a_counterfactual_counts_its_own_steps(small):
    hook = Recorder()
    run(small, counterfactual=False, progress=hook)
    assert hook.calls == [(k, STEPS) for k in range(1, STEPS + 1)]


def test_a_run_with_the_liquidator_off_is_its_own_counterfactual(small):
    hook = Recorder()
    run(replace(small, rules=replace(small.rules, liquidator=False)), progress=hook)
    assert_contract(hook.calls, STEPS)


def test_the_hook_changes_nothing_in_the_result(small):
    assert run(small, progress=Recorder()).summary == run(small).summary


def test_compare_counts_every_rule_sets_steps(small):
    hook = Recorder()
    compare({"full": Rules(), "partial": Rules(sizing=Sizing.FRACTION)}, small,
            counterfactual=False, progress=hook)
    assert_contract(hook.calls, 2 * STEPS)
    assert len(hook.calls) == 2 * STEPS


def test_sweep_reports_each_run_as_it_ends_in_this_process(small):
    hook = Recorder()
    seen = []

    class Watching(SerialExecutor):
        def submit(self, fn, /, *args, **kwargs):
            seen.append(len(hook.calls))   # runs reported before this one starts
            return super().submit(fn, *args, **kwargs)

    sweep({"steps": [3, 4, 5]}, small, executor=Watching(),
          counterfactual=False, progress=hook)
    assert hook.calls == [(1, 3), (2, 3), (3, 3)]
    assert seen == [0, 1, 2]


def test_market_run_counts_the_markets_steps(market):
    hook = Recorder()
    run_market(market, progress=hook)
    assert hook.calls == [(k, STEPS) for k in range(1, STEPS + 1)]


def test_market_compare_counts_every_rule_sets_steps(market):
    hook = Recorder()
    compare_market({"full": {"sizing": "FULL"}, "partial": {"sizing": "FRACTION"}}, market,
                   progress=hook)
    assert_contract(hook.calls, 2 * STEPS)


def test_market_sweep_counts_runs(market):
    hook = Recorder()
    sweep_market({"venues.A.shock.sell": [500, 1500]}, market, workers=1, progress=hook)
    assert hook.calls == [(1, 2), (2, 2)]


def test_replay_counts_messages(monkeypatch):
    monkeypatch.setattr(lobster_replayer, "PROGRESS_EVERY", 64)
    hook = Recorder()
    result = replay_files(AAPL, AAPL_BOOK, progress=hook)
    total = len(read_messages(AAPL))
    assert_contract(hook.calls, total)
    assert [done for done, _ in hook.calls] == [64, 128, 192, total]
    assert result.n_rows == total


def test_replay_by_default_reports_once_at_the_end():
    hook = Recorder()
    replay_files(AAPL, AAPL_BOOK, progress=hook)
    assert hook.calls == [(len(read_messages(AAPL)), len(read_messages(AAPL)))]


def test_read_capture_counts_lines(monkeypatch):
    monkeypatch.setattr(binance_capture, "PROGRESS_EVERY", 50)
    hook = Recorder()
    plain = read_capture(BINANCE)
    reported = read_capture(BINANCE, progress=hook)
    total = hook.calls[-1][1]
    assert_contract(hook.calls, total)
    assert len(hook.calls) == -(-total // 50)
    assert len(reported.diffs) == len(plain.diffs) and reported.lines == plain.lines


@pytest.mark.parametrize("bad", [3, "yes", 1.5])
def test_a_progress_that_is_not_a_hook_is_a_type_error_before_any_run(small, bad):
    with pytest.raises(TypeError, match="progress must be None, True or a callable"):
        run(small, progress=bad)


def test_progress_true_draws_nothing_on_a_stderr_that_is_not_a_terminal(small, capsys):
    run(small, counterfactual=False, progress=True)
    assert capsys.readouterr().err == ""


def test_progress_true_draws_a_bar_a_run_on_a_terminal(small, terminal):
    run(small, progress=True)
    text = terminal.getvalue()
    assert "counterfactual" in text and "run" in text
    assert f"{STEPS}/{STEPS}" in text and "\x1b[" in text


# ---------------------------------------------------------------------------------- the CLI
def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


@pytest.mark.parametrize("argv, labels", [
    (["run", "--scale", "0.05"], ["counterfactual", "run", "steps"]),
    (["compare", "--scale", "0.05", "--no-counterfactual"], ["full", "steps"]),
    (["sweep", "--scale", "0.05", "--workers", "1", "--no-counterfactual", "--param",
      "steps=3,4"], ["sweep", "2/2", "runs"]),
    (["replay", str(AAPL), "--orderbook", str(AAPL_BOOK)], ["replay", "messages"]),
    (["depth", str(BINANCE)], ["read capture", "lines"]),
])
def test_cli_draws_its_bar_on_a_terminal_and_not_with_quiet(capsys, terminal, argv, labels):
    out, err = _cli(capsys, *argv)
    text = terminal.getvalue()
    for label in labels:
        assert label in text, (label, text)
    assert "\x1b[" not in out          # stdout (not a terminal here) stays plain
    terminal.seek(0)
    terminal.truncate()
    quiet_out, _ = _cli(capsys, *argv, "--quiet")
    assert terminal.getvalue() == ""


def test_cli_market_run_draws_its_bar(capsys, terminal):
    market_file = Path(__file__).resolve().parent.parent / "examples" / "two_venues.toml"
    _cli(capsys, "run", str(market_file), "--scale", "0.05")
    assert "market run" in terminal.getvalue()


def test_cli_bars_leave_a_piped_stderr_and_the_json_clean(capsys):
    out, err = _cli(capsys, "run", "--scale", "0.05", "--json")
    assert err == ""
    quiet, _ = _cli(capsys, "run", "--scale", "0.05", "--json", "--quiet")
    assert out == quiet and json.loads(out)["generations"] >= 2
