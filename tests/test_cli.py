"""The command line, end to end in-process (main([...]) with capsys) and as a real process."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import pytest

import orderbook
from orderbook.cli import builtin_rule_sets, main
from orderbook.config import loads_scenario
from orderbook.events import LimitRule, MarkRule, Sizing
from orderbook.scenario import SerialExecutor, default_scenario

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, *argv):
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def _assert_usage_error(code, err, *fragments):
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("orderbook")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ------------------------------------------------------------------------------------ run
def test_run_json(capsys):
    summary = _json(capsys, "run", "--scale", "0.05", "--json")
    assert summary["generations"] >= 2
    assert summary["scenario"] == "built-in scenario at scale 0.05"
    assert summary["accounts"] > 500
    assert summary["liquidated_accounts"] > 0
    assert summary["amplification"] > 1
    gens = summary["liquidations_by_generation"]
    assert 2 <= len(gens) <= summary["generations"]
    assert sum(gens) >= summary["liquidated_accounts"]
    assert summary["quote_unit"] == "0.0001"
    assert summary["liquidated_notional_quote"] == str(
        summary["liquidated_notional"] * __import__("decimal").Decimal("0.0001"))
    assert summary["trough_step"] >= 0 and summary["peak_step_liquidated"] > 0


def test_run_json_prints_the_library_summary(capsys):
    from orderbook.cli import _jsonable

    printed = _json(capsys, "run", "--scale", "0.05", "--json", "--no-counterfactual")
    result = orderbook.run(default_scenario(0.05), counterfactual=False)
    assert printed.pop("scenario") == "built-in scenario at scale 0.05"
    assert (printed.pop("tick_size"), printed.pop("lot_size")) == ("0.1", "0.001")
    assert printed == _jsonable(result.summary)


def test_run_table(capsys):
    code, out, err = _run(capsys, "run", "--scale", "0.05")
    assert code == 0, err
    for label in ("accounts", "liquidated notional", "max drawdown", "amplification",
                  "generations", "bad debt", "ADL count", "insurance fund",
                  "steps to half recovery", "liquidations by generation"):
        assert label in out, label
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    value_end = header.index("value") + len("value")
    unit_start = header.index("unit")
    rows = {line.split("  ")[0].strip(): line for line in lines[lines.index(header) + 2:]
            if line and not line.startswith("liquidations")}
    # values right-aligned under "value", units in their own column
    for label in ("accounts", "liquidated notional", "max drawdown", "insurance fund"):
        row = rows[label]
        assert row[value_end - 1] != " " and row[value_end] == " ", row
    assert rows["liquidated notional"][unit_start:].startswith("quote")
    assert rows["max drawdown"][unit_start:].startswith("%")
    assert "ticks" in rows["max drawdown"]
    assert rows["amplification"][unit_start:].startswith("x")
    # quote currency: 10**11 quote units of 0.0001 is 10,000,000.00
    assert "start 10,000,000.00" in rows["insurance fund"]
    # the money figures of the summary, each in quote currency (docs/money.md)
    result = orderbook.run(default_scenario(0.05))
    for label, key in (("collateral lost", "collateral_lost"),
                       ("liquidation penalties", "liquidation_penalties"),
                       ("forced-order slippage", "forced_slippage"),
                       ("ADL notional", "adl_notional"),
                       ("insurance fund low", "insurance_fund_min")):
        value = f"{result.summary[key + '_quote']:,.2f}"
        assert rows[label][:value_end].rstrip().endswith(" " + value), (label, rows[label])
        assert rows[label][unit_start:].startswith("quote"), label
    assert f"from mid {result.summary['start_mid_px']:,}" in rows["max drawdown"]
    gen_header = lines.index("liquidations by generation")
    assert lines[gen_header + 1].split() == ["generation", "accounts"]
    assert lines[gen_header + 3].split()[0] == "0"


def test_run_options(capsys, tmp_path):
    code, out, err = _run(capsys, "run", str(EXAMPLES / "thin_book.toml"), "--scale", "0.1",
                          "--no-counterfactual", "--csv", str(tmp_path / "out"))
    assert code == 0, err
    assert "thin_book.toml at scale 0.1" in out
    assert "300 accounts" in out
    assert "no counterfactual run" in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "series.csv", "forced_orders.csv", "trades.csv", "summary.csv"}


def test_run_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    if importlib.util.find_spec("orderbook.plot") is None:
        pytest.skip("orderbook.plot not there yet")
    path = tmp_path / "run.png"
    code, out, err = _run(capsys, "run", "--scale", "0.05", "--no-counterfactual", "--json",
                          "--plot", str(path))
    assert code == 0, err
    json.loads(out)                          # the note about the file goes to stderr
    assert path.stat().st_size > 0 and f"wrote {path}" in err


def test_run_ladder_and_animation(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from orderbook import _plot_ladder

    monkeypatch.setattr(_plot_ladder, "MAX_FRAMES", 3)   # a quick GIF
    ladder, gif = tmp_path / "ladder.png", tmp_path / "cascade.gif"
    code, out, err = _run(capsys, "run", "--scale", "0.05", "--no-counterfactual",
                          "--ladder", str(ladder), "--animate", str(gif))
    assert code == 0, err
    assert f"wrote {ladder}" in out and f"wrote {gif}" in out
    assert ladder.read_bytes().startswith(b"\x89PNG") and gif.read_bytes().startswith(b"GIF89a")


def _stuck_file(tmp_path, deficit="SOCIALIZE") -> str:
    """tests/test_scenario.py's stuck_in_the_queue as a scenario file: two longs end queued
    at -140 quote units (-0.70 of quote currency) on 15 lots."""
    from test_scenario import stuck_in_the_queue

    from orderbook.config import scenario_to_toml
    from orderbook.events import Deficit

    path = tmp_path / "stuck.toml"
    path.write_text(scenario_to_toml(stuck_in_the_queue(Deficit[deficit])))
    return str(path)


UNRESOLVED_LINE = ("orderbook: warning: {}2 accounts ended with negative equity (-140 quote "
                   "units = -0.700 in quote currency, on 15 open lots), which bad_debt and "
                   "socialized do not include; 2 accounts still queued for liquidation")


def test_run_prints_the_accounts_it_leaves_unresolved(capsys, tmp_path):
    code, out, err = _run(capsys, "run", _stuck_file(tmp_path))
    assert code == 0, err
    rows = {line[:26].strip(): line[26:].split() for line in out.splitlines()}
    assert rows["unresolved accounts"][0] == "2"
    assert rows["unresolved lots"][:2] == ["15", "lots"]
    assert rows["unresolved equity"][:3] == ["-0.70", "quote", "-140"]
    assert rows["queue left"][0] == "2"
    assert err.splitlines() == [UNRESOLVED_LINE.format("")]   # once, not also as a Python warning


def test_run_json_carries_the_unresolved_figures(capsys, tmp_path):
    code, out, err = _run(capsys, "run", _stuck_file(tmp_path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["unresolved_accounts"], summary["unresolved_lots"],
            summary["unresolved_equity"], summary["unresolved_equity_quote"]) == (
        2, 15, -140, "-0.700")
    assert err.splitlines() == [UNRESOLVED_LINE.format("")]


def test_a_resolved_run_prints_no_warning(capsys):
    code, out, err = _run(capsys, "run", "--scale", "0.05", "--no-counterfactual")
    assert code == 0 and err == ""


def test_compare_and_sweep_print_the_accounts_each_run_leaves_unresolved(capsys, tmp_path):
    path = _stuck_file(tmp_path, "ADL")
    (tmp_path / "adl.toml").write_text('[rules]\ndeficit = "ADL"\n')
    (tmp_path / "none.toml").write_text('[rules]\ndeficit = "NONE"\n')
    code, out, err = _run(capsys, "compare", path, "--rules", f"adl={tmp_path / 'adl.toml'}",
                          "--rules", f"none={tmp_path / 'none.toml'}")
    assert code == 0, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rules "))
    assert lines[header].split("  ")[-3:] == ["unresolved", "unres. lots",
                                              "unres. equity (quote)"]
    assert lines[header + 2].split()[-3:] == ["0", "0", "0.00"]        # adl
    assert lines[header + 3].split()[-3:] == ["2", "15", "-0.70"]      # none
    assert err.splitlines() == [UNRESOLVED_LINE.format("rules 'none': ")]
    code, out, err = _run(capsys, "sweep", path, "--param", "rules.deficit=ADL,NONE",
                          "--workers", "1", "--quiet")
    assert code == 0, err
    assert out.splitlines()[-1].split()[-3:] == ["2", "15", "-0.70"]
    assert err.splitlines() == [UNRESOLVED_LINE.format("rules.deficit=NONE: ")]


# -------------------------------------------------------------------------------- compare
def test_compare_builtin(capsys):
    code, out, err = _run(capsys, "compare", "--scale", "0.05", "--no-counterfactual")
    assert code == 0, err
    names = list(builtin_rule_sets(default_scenario()))
    assert names == ["full market", "partial 25%", "bankruptcy IOC + fund", "band 1% + cap"]
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rules "))
    body = lines[header + 2:]
    assert [line[:len(name)] for line, name in zip(body, names, strict=False)] == names
    assert len(body) == 4
    for column in ("liq. notional (quote)", "drawdown %", "gens", "ADL", "fund end (quote)"):
        assert column in lines[header]


def test_compare_json(capsys):
    rows = _json(capsys, "compare", "--scale", "0.05", "--json")
    assert [row["rules"] for row in rows] == list(builtin_rule_sets(default_scenario()))
    full, partial = rows[0], rows[1]
    assert full["generations"] >= 2 and partial["generations"] > full["generations"]
    assert all(row["amplification"] is not None for row in rows)


def test_builtin_rule_sets():
    sets = builtin_rule_sets(default_scenario())
    assert sets["partial 25%"].sizing == Sizing.FRACTION
    assert sets["partial 25%"].fraction_ppm == 250_000
    assert sets["bankruptcy IOC + fund"].limit_rule == LimitRule.BANKRUPTCY
    band = sets["band 1% + cap"]
    assert band.limit_rule == LimitRule.BAND and band.band_ppm == 10_000
    assert band.round_cap == 1_000_000 * 30_000 // 6        # a sixth of the shock's notional


def test_compare_rules_files(capsys):
    code, out, err = _run(
        capsys, "compare", str(EXAMPLES / "full_vs_partial.toml"), "--scale", "0.1",
        "--no-counterfactual", "--rules", f"full={EXAMPLES / 'rules_full.toml'}",
        "--rules", f"partial={EXAMPLES / 'rules_partial.toml'}",
        "--rules", str(EXAMPLES / "rules_restore.toml"))
    assert code == 0, err
    body = out.splitlines()[5:]
    assert [line.split()[0] for line in body] == ["full", "partial", "rules_restore"]


@pytest.mark.parametrize("scale", ["0.0001", "0.0003", "0.05", "2"])
def test_scale_gives_the_same_scenario_for_the_builtin_and_its_file(capsys, tmp_path, scale):
    code, builtin, err = _run(capsys, "show")
    assert code == 0, err
    path = tmp_path / "builtin.toml"
    path.write_text(builtin)
    code, scaled_builtin, err = _run(capsys, "show", "--scale", scale)
    assert code == 0, err
    code, scaled_file, err = _run(capsys, "show", str(path), "--scale", scale)
    assert code == 0, err
    assert scaled_file == scaled_builtin


# ---------------------------------------------------------------------------------- sweep
def test_sweep_workers_agree(capsys):
    argv = ["sweep", "--scale", "0.05", "--param", "rules.band_ppm=0,20000", "--json"]
    code, out, err = _run(capsys, *argv, "--workers", "1")
    assert code == 0, err
    serial = json.loads(out)
    # no progress bar on a stderr that is not a terminal: only the line saying that band_ppm
    # cannot act under the MARKET rule
    assert err == ("orderbook: warning: rules.band_ppm=20,000: rules.band_ppm = 20000 cannot "
                   "act: it needs limit_rule BAND; these rules have limit_rule MARKET\n")
    pooled = _json(capsys, *argv, "--workers", "2")
    assert serial == pooled
    assert [row["rules.band_ppm"] for row in serial] == [0, 20_000]
    assert all(row["generations"] >= 2 for row in serial)


def test_sweep_table(capsys):
    code, out, err = _run(capsys, "sweep", "--scale", "0.05", "--no-counterfactual",
                          "--workers", "1", "--param", "rules.sizing=FULL,FRACTION",
                          "--param", "rules.round_cap=none,1000000000")
    assert code == 0, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("rules.sizing"))
    assert "rules.round_cap" in lines[header]
    cells = [line.split()[:2] for line in lines[header + 2:]]
    assert cells == [["FULL", "none"], ["FULL", "1,000,000,000"], ["FRACTION", "none"],
                     ["FRACTION", "1,000,000,000"]]
    assert "sweep: 4 runs" in out


def test_sweep_takes_the_venue_liquidation_settings(capsys):
    rows = _json(capsys, "sweep", "--scale", "0.01", "--no-counterfactual", "--workers", "1",
                 "--param", "steps=5", "--param", "rules.sizing=TIER_STEP,FRACTION",
                 "--param", "rules.fraction_above=0,100000000000",
                 "--param", "rules.takeover_below_ppm=666667",
                 "--param", "rules.mark_rule=LAST_CLAMPED",
                 "--param", "rules.cooldown_rounds=2", "--param", "rules.increment=200000",
                 "--json")
    assert [(row["rules.sizing"], row["rules.fraction_above"], row["rules.takeover_below_ppm"])
            for row in rows] == [("TIER_STEP", 0, 666_667), ("TIER_STEP", 10**11, 666_667),
                                 ("FRACTION", 0, 666_667), ("FRACTION", 10**11, 666_667)]
    assert {row["rules.mark_rule"] for row in rows} == {"LAST_CLAMPED"}
    assert {row["rules.cooldown_rounds"] for row in rows} == {2}
    assert {row["rules.increment"] for row in rows} == {200_000}
    assert all(row["accounts"] > 0 for row in rows)


def test_the_run_header_names_the_venue_liquidation_settings():
    from orderbook.cli.output import _describe
    from orderbook.scenario import Rules

    plain = _describe(default_scenario(), "default")
    assert "over" not in plain and "taken over" not in plain
    rules = Rules(sizing=Sizing.FRACTION, fraction_above=10**9, cooldown_rounds=3)
    text = _describe(replace(default_scenario(), rules=rules), "default")
    assert "sizing FRACTION 25% over 100,000.00 then whole for 3 rounds" in text
    tiered = _describe(replace(default_scenario(), rules=Rules(sizing=Sizing.TIER_STEP)), "x")
    assert "sizing TIER_STEP" in tiered
    # 200,000 quote units of 0.0001 (tick 0.1 x lot 0.001): 20.00 a step
    stepped = Rules(sizing=Sizing.INCREMENTAL, increment=200_000)
    assert "sizing INCREMENTAL of 20.00 a step" in _describe(
        replace(default_scenario(), rules=stepped), "x")
    vault = _describe(replace(default_scenario(), rules=Rules(takeover_below_ppm=666_667)), "x")
    assert "taken over below 66.6667% of MM" in vault
    clamped = _describe(replace(default_scenario(), rules=Rules(mark_rule=MarkRule.LAST_CLAMPED)),
                        "x")
    assert "mark LAST_CLAMPED" in clamped


def test_sweep_scheduler_without_distributed(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)     # import distributed fails
    code, out, err = _run(capsys, "sweep", "--scale", "0.05", "--param", "steps=5",
                          "--scheduler", "tcp://127.0.0.1:8786")
    _assert_usage_error(code, err, "dask", "orderbook-cascade[dask]")


def test_sweep_on_a_dask_cluster(capsys):
    distributed = pytest.importorskip("distributed")
    argv = ["sweep", "--scale", "0.05", "--param", "rules.band_ppm=0,20000", "--json",
            "--no-counterfactual"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        on_cluster = _json(capsys, *argv, "--scheduler", cluster.scheduler_address)
    assert on_cluster == _json(capsys, *argv, "--workers", "1")


def test_serial_executor():
    ex = SerialExecutor()
    calls = []
    future = ex.submit(lambda x: calls.append(x) or x * 2, 21)
    assert calls == [21] and isinstance(future, Future) and future.done()
    assert future.result() == 42
    failed = ex.submit(lambda: 1 / 0)
    assert isinstance(failed.exception(), ZeroDivisionError)
    assert list(ex.map(abs, [-1, -2])) == [1, 2]
    with ex:
        pass
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)


# --------------------------------------------------------------------------------- show
def test_show_round_trips(capsys):
    code, out, err = _run(capsys, "show", str(EXAMPLES / "deep_book.toml"))
    assert code == 0, err
    from orderbook.config import load_scenario

    assert loads_scenario(out) == load_scenario(EXAMPLES / "deep_book.toml")


# -------------------------------------------------------------------------------- errors
def _write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, fragments", [
    ("[rules]\nband = 10000\n", ["bad.toml", "[rules] unknown key 'band'", "band_ppm"]),
    ("[rules]\nsizing = 'HALF'\n", ["[rules] sizing = 'HALF' is not one of FULL, FRACTION"]),
    ('steps = "ten"\n', ["steps = 'ten'", "integer"]),
    ("[rules]\ntiers = [[100, 1000, 2000], [50, 2000, 4000]]\n", ["tiers", "must exceed"]),
    ("steps = [\n", ["bad.toml", "invalid TOML"]),
    ("[book]\nbids = [[99, 1]]\nasks = [[101, 1]]\n", ["--scale", "explicit"]),
])
def test_bad_scenario_files(capsys, tmp_path, text, fragments):
    code, out, err = _run(capsys, "run", _write(tmp_path, text), "--scale", "0.5")
    _assert_usage_error(code, err, *fragments)
    assert out == ""


@pytest.mark.parametrize("argv, fragments", [
    (["run", "missing.toml"], ["scenario file missing.toml not found"]),
    (["run", "--scale", "0"], ["--scale", "positive"]),
    (["run", "--scale", "big"], ["--scale", "'big'"]),
    (["run", "--bogus"], ["unrecognized arguments: --bogus"]),
    ([], ["required", "COMMAND"]),
    (["sweep", "--scale", "0.05"], ["--param"]),
    (["sweep", "--param", "rules.band_ppm"], ["rules.band_ppm", "NAME=VALUE"]),
    (["sweep", "--param", "rules.band=1,2"], ["[rules] unknown key 'band'"]),
    (["sweep", "--param", "rules.sizing=FULL,HALF"], ["sizing = 'HALF' is not one of"]),
    (["sweep", "--param", "steps=ten"], ["steps = 'ten'"]),
    (["sweep", "--param", "steps=1", "--param", "steps=2"], ["given twice"]),
    (["sweep", "--param", "steps=1", "--workers", "0"], ["--workers"]),
    (["compare", "--rules", "x="], ["NAME=RULES.toml"]),
    (["compare", "--rules", "x=nowhere.toml"],
     ["--rules x=nowhere.toml", "nowhere.toml not found"]),
])
def test_bad_arguments(capsys, argv, fragments):
    code, out, err = _run(capsys, *argv)
    _assert_usage_error(code, err, *fragments)


def test_bad_rules_file(capsys, tmp_path):
    path = _write(tmp_path, "[rules]\nlimit = 'STOP'\n", "rules_bad.toml")
    code, out, err = _run(capsys, "compare", "--scale", "0.05", "--rules", f"bad={path}")
    _assert_usage_error(code, err, "rules_bad.toml", "[rules] limit = 'STOP' is not one of")


def test_help_exits_zero(capsys):
    code, out, err = _run(capsys, "sweep", "--help")
    assert code == 0 and "--param" in out and "--scheduler" in out


# ------------------------------------------------------------------------ real process
def test_python_dash_m(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "orderbook", "run", "--scale", "0.05", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["generations"] >= 2
    bad = subprocess.run([sys.executable, "-m", "orderbook", "run", "missing.toml"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "orderbook: error: scenario file missing.toml not found"


def test_console_script(tmp_path):
    exe = shutil.which("orderbook")
    if exe is None:
        pytest.skip("the orderbook console script is not installed")
    proc = subprocess.run([exe, "show"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert loads_scenario(proc.stdout) == default_scenario()
