"""Sweeps and comparisons of a market of several venues (orderbook.market_sweep.sweep,
compare, with_params, coerce_param) and the `orderbook sweep` / `compare` commands on a
[[venues]] file."""

from __future__ import annotations

import json
import tomllib
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import pytest
from test_market_scenario import EXAMPLE, SMALL

import orderbook._market
from orderbook import (
    Aggregate,
    InertSettingWarning,
    MarkRule,
    Rules,
    Sizing,
    UnresolvedAccountsWarning,
)
from orderbook.cli import main
from orderbook.config import ConfigError, ConfigTypeError, UnknownKeyError
from orderbook.market_scenario import market_from_dict, run
from orderbook.market_sweep import coerce_param, compare, sweep, with_params
from orderbook.scenario import SerialExecutor


def _index_market() -> dict:
    """SMALL over 15 steps, B's mark an index of the mids of A (weight 1) and B (weight 2):
    the weighted mean moves a third of A's fall, the weighted median is B's own mid."""
    d = tomllib.loads(SMALL)
    d["steps"] = 15
    d["indexes"][0].update(legs=[{"venue": "A", "weight": 1}, {"venue": "B", "weight": 2}],
                           source="mid", aggregate="WEIGHTED_MEAN")
    return d


def _arbitrage_market() -> dict:
    """A deep venue A sold 30 BTC (the two_venues example in small), B marked at the mean of
    A's and B's last trades clamped to its touch, nobody refilling B's book: only an
    arbitrageur brings A's fall to B."""
    d = tomllib.loads(SMALL)
    d["steps"] = 15
    a, b = d["venues"]
    a["book"]["touch_qty"] = 40
    a["shock"]["sell"] = 30_000
    b["rules"]["mark_rule"] = "INDEX_CLAMPED"
    b["liquidity"] = {"half_life": 0.0, "recovery_rate": 0}
    d["indexes"][0].update(legs=[{"venue": "A", "weight": 1}, {"venue": "B", "weight": 1}],
                           aggregate="WEIGHTED_MEAN")
    d["arbitrageurs"] = [{"legs": [{"venue": "A"}, {"venue": "B"}], "capital": 2_000_000_000,
                          "threshold_ppm": 500, "max_lots": 300}]
    return d


@pytest.fixture(scope="module")
def index_market():
    return market_from_dict(_index_market())


@pytest.fixture(scope="module")
def arbitrage_market():
    return market_from_dict(_arbitrage_market())


def _liquidated(rows, venue):
    return [row["venues"][venue]["liquidated_accounts"] for row in rows]


# ----------------------------------------------------------------------------- parameters
def test_a_parameter_converts_as_a_files_value_does(index_market):
    ms = index_market
    assert coerce_param(ms, "venues.B.rules.mark_rule", "index_clamped") == \
        MarkRule.INDEX_CLAMPED
    assert coerce_param(ms, "venues.B.population.leverage", [2, 50]) == (2.0, 50.0)
    assert coerce_param(ms, "indexes.BTC.aggregate", "WEIGHTED_MEDIAN") == \
        Aggregate.WEIGHTED_MEDIAN
    assert coerce_param(ms, "steps", 10) == 10


def test_with_params_sets_each_part_of_the_market_and_leaves_the_original(
        index_market, arbitrage_market):
    ms = with_params(index_market, {"steps": 7, "seed": 11, "venues.B.seed": 40,
                                    "venues.A.shock.sell": 900,
                                    "indexes.BTC.exclude_ppm": 30_000})
    a, b = (v.scenario for v in ms.venues)
    assert ms.steps == a.steps == b.steps == 7
    assert (a.seed, b.seed) == (11, 40)       # seed + i, then B's own, whatever the order
    assert [v.scenario.seed for v in with_params(index_market, {"seed": 11}).venues] == [11, 12]
    assert a.shock.sell == 900 and b.shock.sell == 0
    assert ms.indexes[0].rule.exclude_ppm == 30_000
    assert index_market.steps == 15 and index_market.venues[0].scenario.shock.sell == 2_000
    arb = with_params(arbitrage_market, {"arbitrageurs.0.capital.B": 5,
                                         "arbitrageurs.0.max_lots": 7}).arbitrageurs[0]
    assert arb.capital == (("A", 2_000_000_000), ("B", 5)) and arb.max_lots == 7
    arb = with_params(arbitrage_market,
                      {"arbitrageurs.0.capital": {"B": 3, "A": 4}}).arbitrageurs[0]
    assert arb.capital == (("A", 4), ("B", 3))


BAD = [
    # (name, value, exception, fragments the message must hold)
    ("venues.C.rules.sizing", "FULL", UnknownKeyError, ["'venues.C.rules.sizing'", "A, B"]),
    ("venues.B.rules.sizing", "HALF", ConfigError, ["'venues.B.rules.sizing'",
                                                    "sizing = 'HALF'"]),
    ("venues.B.rules.band", 5, UnknownKeyError, ["'venues.B.rules.band'", "'band'"]),
    ("venues.B.population.count", "many", ConfigTypeError, ["'venues.B.population.count'",
                                                             "'many'"]),
    ("venues.B.steps", 5, ConfigError, ["'venues.B.steps'", "market's"]),
    # an index cannot move a last-trade mark: refused with the rest of the market
    ("venues.B.rules.mark_rule", "LAST", ConfigError, ["'venues.B.rules.mark_rule' = 'LAST'",
                                                       "mark rule is LAST"]),
    ("indexes.ETH.exclude_ppm", 5, UnknownKeyError, ["'indexes.ETH.exclude_ppm'", "BTC"]),
    ("indexes.BTC.exclude_ppm", -1, ConfigError, ["'indexes.BTC.exclude_ppm'",
                                                  "exclude_ppm = -1"]),
    ("indexes.BTC.rule", "nyse", ConfigError, ["'indexes.BTC.rule'", "'nyse'"]),
    ("indexes.BTC.readmit_ppm", 10, ConfigError, ["'indexes.BTC.readmit_ppm' = 10"]),
    ("arbitrageurs.0.capital", 5, UnknownKeyError, ["'arbitrageurs.0.capital'",
                                                    "no arbitrageurs"]),
    ("steps", 0, ConfigError, ["'steps'", "steps = 0"]),
    ("seed", 1.5, ConfigTypeError, ["'seed'", "1.5"]),
    ("colour", 1, UnknownKeyError, ["'colour'", "venues.NAME.key"]),
]


@pytest.mark.parametrize("name,value,error,fragments", BAD, ids=[b[0] for b in BAD])
def test_a_bad_name_or_value_is_refused_naming_it_before_any_run(
        index_market, name, value, error, fragments, monkeypatch):
    built = []
    real = orderbook._market.Market
    monkeypatch.setattr(orderbook._market, "Market",
                        lambda *a, **k: built.append(1) or real(*a, **k))
    with pytest.raises(error) as caught:
        sweep({"venues.A.shock.sell": [1_000], name: [value]}, index_market, workers=1)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert built == []


@pytest.mark.parametrize("name,value,fragments", [
    ("arbitrageurs.1.max_lots", 5, ["'arbitrageurs.1.max_lots'", "0 .. 0"]),
    ("arbitrageurs.0.capital", -1, ["'arbitrageurs.0.capital' = -1"]),
    ("arbitrageurs.0.capital.S", 5, ["'arbitrageurs.0.capital.S'", "'S'"]),
    ("arbitrageurs.0.threshold_ppm", 2_000_000, ["'arbitrageurs.0.threshold_ppm'"]),
])
def test_a_bad_arbitrageur_setting_is_refused_naming_it(arbitrage_market, name, value,
                                                        fragments):
    with pytest.raises(ConfigError) as caught:
        coerce_param(arbitrage_market, name, value)
    for fragment in fragments:
        assert fragment in str(caught.value), (fragment, str(caught.value))


def test_a_combination_that_does_not_fit_is_refused_before_any_run(index_market):
    # Each alone fits; together venue A's index mark makes it a default feed of the index,
    # which its own index path would fight.
    d = _index_market()
    d["indexes"][0].pop("feeds")
    d["venues"][1]["rules"]["mark_rule"] = "INDEX"
    ms = market_from_dict(d)
    grid = {"venues.A.rules.mark_rule": ["LAST", "INDEX"],
            "venues.A.shock.index_path": [[990_000] * 15]}
    with pytest.raises(ConfigError, match=r"parameters venues.A.rules.mark_rule=INDEX, "
                                          r"venues.A.shock.index_path=.*index_path"):
        sweep(grid, ms, workers=1)


def test_grid_values_must_be_a_list(index_market):
    with pytest.raises(TypeError, match="'steps'.*must be a list"):
        sweep({"steps": 5}, index_market, workers=1)
    with pytest.raises(ValueError, match="'steps' has no values"):
        sweep({"steps": []}, index_market, workers=1)
    with pytest.raises(TypeError, match="executor or workers"):
        sweep({"steps": [5]}, index_market, workers=1, executor=SerialExecutor())


# ---------------------------------------------------------------------------------- sweeps
def test_a_larger_sell_on_a_liquidates_more_on_b(index_market):
    rows = sweep({"venues.A.shock.sell": [1_000, 2_000, 4_000]}, index_market, workers=1)
    assert [row["venues.A.shock.sell"] for row in rows] == [1_000, 2_000, 4_000]
    a, b = _liquidated(rows, "A"), _liquidated(rows, "B")
    assert a[0] < a[1] < a[2]
    assert b[0] < b[1] < b[2]


def test_an_index_at_the_median_shields_b_from_as_fall(index_market):
    rows = sweep({"indexes.BTC.aggregate": ["WEIGHTED_MEAN", "WEIGHTED_MEDIAN"]},
                 index_market, workers=1)
    mean, median = rows
    assert mean["indexes.BTC.aggregate"] == Aggregate.WEIGHTED_MEAN
    # the mean follows a third of A's fall; the median is B's own mid, which nobody moves
    assert mean["venues"]["B"]["liquidated_accounts"] > 0
    assert mean["indexes"]["BTC"] < 1_000_000
    assert median["venues"]["B"]["liquidated_accounts"] == 0
    assert median["indexes"]["BTC"] == 1_000_000
    # A's own cascade is the same either way
    assert mean["venues"]["A"] == median["venues"]["A"]


def test_the_arbitrageurs_capital_carries_as_fall_to_b(arbitrage_market):
    rows = sweep({"arbitrageurs.0.capital": [0, 10_000_000]}, arbitrage_market, workers=1)
    broke, funded = rows
    assert broke["arbitrageurs"][0]["lots"] == 0
    assert broke["venues"]["B"]["liquidated_accounts"] == 0
    assert funded["arbitrageurs"][0]["lots"] > 0
    assert funded["venues"]["B"]["liquidated_accounts"] > 0
    assert broke["venues"]["A"]["liquidated_accounts"] == \
        funded["venues"]["A"]["liquidated_accounts"] > 0
    (idle,) = sweep({"arbitrageurs.0.capital": [10_000_000]}, arbitrage_market, workers=1,
                    arbitrage=False)
    assert idle["arbitrageurs"][0]["lots"] == 0 and not idle["arbitrage"]
    assert idle["venues"]["B"]["liquidated_accounts"] == 0


def test_a_row_is_the_runs_summary_after_the_parameters(index_market):
    (row,) = sweep({"venues.A.shock.sell": [2_000]}, index_market, workers=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alone = run(index_market)
    assert row == {"venues.A.shock.sell": 2_000, **alone.summary}


def test_rows_are_the_same_in_processes_and_in_this_one(index_market):
    grid = {"venues.B.rules.mark_rule": ["INDEX", "INDEX_CLAMPED"],
            "venues.A.shock.sell": [1_000, 3_000]}
    serial = sweep(grid, index_market, executor=SerialExecutor())
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = sweep(grid, index_market, executor=pool)
    assert pooled == serial
    assert [(r["venues.B.rules.mark_rule"], r["venues.A.shock.sell"]) for r in serial] == [
        (MarkRule.INDEX, 1_000), (MarkRule.INDEX, 3_000),
        (MarkRule.INDEX_CLAMPED, 1_000), (MarkRule.INDEX_CLAMPED, 3_000)]


def test_progress_is_called_after_each_run(index_market):
    calls = []
    sweep({"steps": [3, 4]}, index_market, workers=1, progress=lambda *a: calls.append(a))
    assert calls == [(1, 2), (2, 2)]


def test_a_venue_whose_mark_nothing_moves_warns_in_the_callers_process(index_market):
    ms = replace(index_market, indexes=())
    with pytest.warns(InertSettingWarning, match="sweep run steps=3: venue 'B'"):
        sweep({"steps": [3]}, ms, workers=1)


# -------------------------------------------------------------------------------- compare
def test_compare_changes_only_the_named_venues_rules(index_market):
    sets = {"full": {"sizing": "FULL"}, "partial": {"sizing": "FRACTION"}}
    comparison = compare(sets, index_market, venue="B")
    assert comparison.ruled == ("B",)
    rows = {(r["rules"], r["venue"]): r for r in comparison.table}
    assert list(rows) == [("full", "A"), ("full", "B"), ("partial", "A"), ("partial", "B")]
    assert not rows[("full", "A")]["ruled"] and rows[("full", "B")]["ruled"]
    # B: partial closes make more, smaller forced orders; A is untouched by either set
    assert rows[("partial", "B")]["forced_orders"] > rows[("full", "B")]["forced_orders"]
    assert rows[("partial", "B")]["liquidated_notional"] < \
        rows[("full", "B")]["liquidated_notional"]
    assert {k: v for k, v in rows[("full", "A")].items() if k != "rules"} == \
        {k: v for k, v in rows[("partial", "A")].items() if k != "rules"}
    b = comparison.results["partial"].venues["B"].scenario.rules
    assert b.sizing == Sizing.FRACTION and b.mark_rule == MarkRule.INDEX   # B's own mark kept


def test_compare_by_default_changes_every_venue_with_accounts(index_market):
    with pytest.warns(UnresolvedAccountsWarning, match="venue 'A'"):   # 1 left queued on A
        comparison = compare({"fraction": {"sizing": "FRACTION"}}, index_market)
    assert comparison.ruled == ("A", "B")
    market = comparison.results["fraction"]
    assert {v.scenario.rules.sizing for v in market.scenario.venues} == {Sizing.FRACTION}
    # a whole Rules replaces the venue's rules, its mark rule with them
    whole = compare({"r": Rules(mark_rule=MarkRule.INDEX_CLAMPED)}, index_market, venue="B")
    assert whole.results["r"].venues["B"].scenario.rules == \
        Rules(mark_rule=MarkRule.INDEX_CLAMPED)


def test_the_market_comparison_figure_tables_queue_left_and_the_fund_per_venue(index_market,
                                                                              tmp_path):
    pytest.importorskip("matplotlib")
    from orderbook._plot_market import _market_table
    from orderbook.scenario import quote_unit

    long = "fractions of a position, one step a round, on every venue with accounts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)   # 1 left queued on A
        comparison = compare({long: {"sizing": "FRACTION"}, "full": {"sizing": "FULL"}},
                             index_market)
    header, rows, _ = _market_table(comparison, ["A", "B"])
    assert header[1:4] == ["A: liquidated\naccounts", "A: queue left\n(queued at end)",
                           "A: insurance fund\n[quote ccy] start → end"]
    assert rows[0][0].replace("\n", " ") == long          # the whole name, wrapped
    a = comparison.results[long].venues["A"]
    assert a.summary["queue_left"] == 1 and rows[0][2] == "1"
    unit = float(quote_unit(a.scenario))
    start, end = a.scenario.rules.insurance_fund * unit, a.summary["insurance_fund_end"] * unit
    assert rows[0][3] == f"{start:,.0f} → {end:,.0f}"
    path = tmp_path / "market.png"
    comparison.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_refuses_a_bad_set_or_venue_naming_it(index_market):
    with pytest.raises(ConfigError, match=r"rules 'x' on venue 'B': \[rules\] sizing = 'HALF'"):
        compare({"x": {"sizing": "HALF"}}, index_market, venue="B")
    with pytest.raises(ConfigError, match=r"rules 'x' on 'B'.*mark rule is LAST"):
        compare({"x": {"mark_rule": "LAST"}}, index_market, venue="B")
    with pytest.raises(KeyError, match="'C'"):
        compare({"x": {}}, index_market, venue="C")
    with pytest.raises(TypeError, match=r"rule_sets\['x'\]"):
        compare({"x": "FULL"}, index_market)


# ------------------------------------------------------------------------------------ CLI
def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def market_file(tmp_path):
    path = tmp_path / "index.toml"
    path.write_text(SMALL.replace("steps = 20", "steps = 15"))
    return path


def test_cli_sweep_prints_a_row_per_run_and_venue(capsys, market_file, index_market):
    code, out, err = _run(capsys, "sweep", market_file, "--param",
                          "venues.B.rules.mark_rule=INDEX,INDEX_CLAMPED", "--workers", "1")
    assert code == 0, err
    assert "sweep: 2 runs over venues.B.rules.mark_rule" in out
    rows = [line.split() for line in out.splitlines()
            if line.split()[:1] in (["INDEX"], ["INDEX_CLAMPED"])]
    assert [r[:2] for r in rows] == [["INDEX", "A"], ["INDEX", "B"], ["INDEX_CLAMPED", "A"],
                                     ["INDEX_CLAMPED", "B"]]
    assert rows[3][3] == "0"          # clamped to B's untouched book: nobody liquidated on B
    assert int(rows[1][3]) > 0
    assert err == ""          # no progress bar on a stderr that is not a terminal


def test_cli_sweep_json_matches_the_library(capsys, market_file):
    code, out, err = _run(capsys, "sweep", market_file, "--param", "venues.A.shock.sell=1000,3000",
                          "--json", "--quiet", "--workers", "2")
    assert code == 0, err
    rows = json.loads(out)
    library = sweep({"venues.A.shock.sell": [1_000, 3_000]},
                    market_from_dict(tomllib.loads(market_file.read_text())), workers=1)
    assert [r["venues.A.shock.sell"] for r in rows] == [1_000, 3_000]
    assert [r["venues"]["B"]["liquidated_accounts"] for r in rows] == _liquidated(library, "B")
    assert rows[1]["venues"]["B"]["liquidated_accounts"] > \
        rows[0]["venues"]["B"]["liquidated_accounts"]


def test_cli_compare_on_one_venue_with_json(capsys, market_file, tmp_path):
    (tmp_path / "full.toml").write_text('[rules]\nsizing = "FULL"\n')
    (tmp_path / "partial.toml").write_text('sizing = "FRACTION"\n')
    argv = ["compare", market_file, "--rules", f"full={tmp_path / 'full.toml'}",
            "--rules", f"partial={tmp_path / 'partial.toml'}", "--venue-name", "B"]
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    rows = {(r["rules"], r["venue"]): r for r in json.loads(out)}
    assert rows[("partial", "B")]["forced_orders"] > rows[("full", "B")]["forced_orders"]
    assert rows[("partial", "A")]["forced_orders"] == rows[("full", "A")]["forced_orders"]
    assert rows[("full", "B")]["ruled"] and not rows[("full", "A")]["ruled"]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert "each rule set changes the rules of B" in out
    assert "partial on B: mark INDEX, sizing FRACTION" in out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("full")] == [
        ["full", "A", "(own"], ["full", "B", "300"]]


def test_cli_compare_on_a_market_draws_a_panel_per_venue(capsys, market_file, tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "partial.toml").write_text('sizing = "FRACTION"\n')
    png = tmp_path / "cmp.png"
    code, out, err = _run(capsys, "compare", market_file, "--rules",
                          f"partial={tmp_path / 'partial.toml'}", "--venue-name", "B",
                          "--plot", str(png))
    assert code == 0, err
    assert f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


#: a rules file that exists (the CLI checks files before anything else)
RULES = str(EXAMPLE.parent / "rules_full.toml")


@pytest.mark.parametrize("argv,fragments", [
    (["sweep", "--venue", "binance", "--param", "steps=3"], ["--venue", "[[venues]]"]),
    (["sweep", "--param", "venues.B.rules.mark_rule=LAST"],
     ["'venues.B.rules.mark_rule' = 'LAST'", "mark rule is LAST"]),
    (["sweep", "--param", "venues.Z.steps=3"], ["'venues.Z.steps'", "A, B"]),
    (["sweep"], ["--param", "venues.NAME.key"]),
    (["compare"], ["--rules"]),
    (["compare", "--venues", "all"], ["--venues", "[[venues]]"]),
    (["compare", "--scale", "0.5", "--rules", RULES], ["--scale", "[[venues]]"]),
    (["compare", "--venue-name", "C", "--rules", RULES], ["--venue-name C", "'C'"]),
])
def test_cli_refuses_what_cannot_apply_to_a_market_file(capsys, market_file, argv, fragments):
    code, out, err = _run(capsys, argv[0], market_file, *argv[1:])
    assert code == 2 and out == "" and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_cli_venue_name_needs_a_market_file(capsys):
    code, out, err = _run(capsys, "compare", "--venue-name", "B")
    assert code == 2 and "--venue-name needs a file of several venues" in err


def test_the_sweep_names_still_import_from_market_scenario():
    import orderbook.market_scenario as ms
    import orderbook.market_sweep as mw

    for name in ("with_params", "coerce_param", "sweep", "compare", "MarketComparison"):
        assert getattr(ms, name) is getattr(mw, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ms.nothing  # noqa: B018
