"""Scenarios of several venues (orderbook.market_scenario): [[venues]] files, their runs, the
CLI and the figure."""

from __future__ import annotations

import json
import tomllib
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import orderbook._market
from orderbook import InertSettingWarning, Shock, UnresolvedAccountsWarning
from orderbook.cli import main
from orderbook.config import ConfigError, UnknownKeyError, load_scenario
from orderbook.market_scenario import (
    ARBITRAGEUR_OWNER,
    ArbitrageurSpec,
    IndexSpec,
    Leg,
    Venue,
    load_market,
    loads_market,
    market_from_dict,
    run,
)
from orderbook.price_index import Aggregate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "two_venues.toml"

_VENUE = """
[venues.book]
mid = 1_000_000
spread = 1
levels = 600
step = 50
touch_qty = 4
growth = 0.01
[venues.population]
count = 300
leverage = [5.0, 100.0]
size = [1, 100]
entry_dispersion = 0.002
[venues.liquidity]
rate = 100
half_life = 5.0
recovery_rate = 0
"""

#: Venue A (last-trade mark) takes a sell of 2 BTC at step 0; venue B marks at an index of A's last
#: trade and nobody sells there.
SMALL = f"""
steps = 20
seed = 3

[[venues]]
name = "A"
{_VENUE}
[venues.shock]
sell = 2_000
[venues.rules]
mark_rule = "LAST"

[[venues]]
name = "B"
{_VENUE}
[venues.shock]
sell = 0
[venues.rules]
mark_rule = "INDEX"

[[indexes]]
name = "BTC"
legs = [{{venue = "A", weight = 1}}]
feeds = [{{venue = "B"}}]
"""


def small() -> dict:
    return tomllib.loads(SMALL)


@pytest.fixture(scope="module")
def small_result():
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a clean run: nothing unresolved
        return run(market_from_dict(small()))


# ------------------------------------------------------------------------------- loading
def test_a_file_of_venues_loads_each_venue_as_a_one_venue_scenario():
    ms = loads_market(SMALL)
    assert [v.name for v in ms.venues] == ["A", "B"]
    a, b = (v.scenario for v in ms.venues)
    assert (a.shock.sell, b.shock.sell) == (2_000, 0)
    assert (a.population.count, a.book.touch_qty, a.liquidity.rate) == (300, 4, 100)
    assert (a.seed, b.seed) == (3, 4)        # seed + the venue's position
    assert a.steps == b.steps == ms.steps == 20
    (ix,) = ms.indexes
    assert ix.legs == (Leg("A", 0, 1),) and ix.feeds == (Leg("B"),)
    assert ix.rule.aggregate == Aggregate.WEIGHTED_MEDIAN and ix.source == "last"


def test_index_presets_arbitrageurs_and_per_venue_capital_load():
    d = small()
    d["indexes"][0].update(rule="bitmex", exclude_ppm=100_000,
                           legs=[{"venue": "A", "weight": 2}, {"venue": "B", "weight": 1,
                                                               "instrument": "main"}])
    d["arbitrageurs"] = [{"legs": [{"venue": "A"}, {"venue": "B", "instrument": 0}],
                          "capital": {"B": 7, "A": 5}, "threshold_ppm": 500, "max_lots": 30}]
    ms = market_from_dict(d)
    rule = ms.indexes[0].rule
    # BitMEX's preset (mean, readmission after 180 updates within 2 %), its exclusion changed
    assert (rule.aggregate, rule.exclude_ppm, rule.readmit_ppm, rule.readmit_updates) == (
        Aggregate.WEIGHTED_MEAN, 100_000, 20_000, 180)
    (arb,) = ms.arbitrageurs
    assert arb.capital == (("A", 5), ("B", 7))   # in the order of the legs
    assert (arb.threshold_ppm, arb.max_lots) == (500, 30)


def _set(d, path, value):
    """Set d[path...] (list indexes as ints); a value of _DROP deletes the key."""
    *head, last = path
    for key in head:
        d = d[key]
    if value is _DROP:
        del d[last]
    else:
        d[last] = value


_DROP = object()

BAD = [
    # (changes, exception, fragments the message must hold)
    ({("book",): {"mid": 5}}, ConfigError, ["[book]", "cannot go with [[venues]]"]),
    ({("shock",): {"sell": 5}}, ConfigError, ["[shock]", "cannot go with [[venues]]"]),
    ({("instruments",): [{"name": "X"}]}, ConfigError, ["[[instruments]]", "[[venues]]"]),
    ({("tick_size",): "0.1"}, ConfigError, ["tick_size", "[[venues]]"]),
    ({("colour",): 1}, KeyError, ["'colour'"]),
    ({("indexes", 0, "legs"): [{"venue": "C"}]}, KeyError,
     ["indexes[0]", "legs[0]", "venue = 'C'"]),
    ({("indexes", 0, "feeds"): [{"venue": "Z"}]}, KeyError, ["feeds[0]", "'Z'"]),
    ({("indexes", 0, "legs"): [{"venue": "A", "instrument": "ETH"}]}, KeyError,
     ["legs[0]", "instrument = 'ETH'", "main"]),
    ({("indexes", 0, "legs"): []}, ValueError, ["indexes[0]", "'BTC'", "legs = []"]),
    ({("indexes", 0, "legs"): _DROP}, ValueError, ["indexes[0]", "legs"]),
    ({("indexes", 0, "legs"): [{"venue": "A", "weight": 0}]}, ValueError,
     ["legs[0]", "weight = 0"]),
    ({("indexes", 0, "feeds"): [{"venue": "A"}]}, ValueError,
     ["feeds[0]", "'A'", "mark rule is LAST"]),
    ({("indexes", 0, "exclude"): 5}, KeyError, ["indexes[0]", "'exclude'"]),
    ({("indexes", 0, "rule"): "nyse"}, ValueError, ["indexes[0]", "rule = 'nyse'"]),
    ({("indexes", 0, "readmit_ppm"): 10}, ValueError, ["indexes[0]", "readmit_ppm"]),
    ({("arbitrageurs",): [{"legs": [{"venue": "A"}, {"venue": "C"}]}]}, KeyError,
     ["arbitrageurs[0]", "legs[1]", "'C'"]),
    ({("arbitrageurs",): [{"legs": [{"venue": "A"}]}]}, ValueError,
     ["arbitrageurs[0]", "at least two"]),
    ({("arbitrageurs",): [{"legs": [{"venue": "A"}, {"venue": "B"}],
                           "capital": {"A": 1, "B": 1, "S": 1}}]}, KeyError,
     ["arbitrageurs[0]", "capital", "'S'"]),
    ({("arbitrageurs",): [{"legs": [{"venue": "A"}, {"venue": "B"}], "capital": -1}]},
     ValueError, ["arbitrageurs[0]", "capital", "-1"]),
    ({("venues", 1, "book"): _DROP}, ValueError, ["venues[1]", "'B'", "no instruments"]),
    ({("venues", 1, "instruments"): [], ("venues", 1, "book"): _DROP}, ValueError,
     ["venues[1]", "no instruments"]),
    ({("venues", 1, "population", "count"): 0}, ValueError,
     ["venues[1]", "'B'", "no accounts", "population.count = 0"]),
    ({("venues", 1, "name"): "A"}, ValueError, ["venues[1]", "name = 'A'", "twice"]),
    ({("venues", 1, "name"): _DROP}, ValueError, ["venues[1]", "name"]),
    ({("venues", 1, "steps"): 5}, ValueError, ["venues[1]", "steps", "top level"]),
    ({("venues", 0, "book", "mid"): -1}, ValueError, ["venues[0]", "'A'", "[book] mid = -1"]),
    ({("venues", 0, "rules", "venue"): "nyse"}, ValueError, ["venues[0]", "venue = 'nyse'"]),
    ({("venues", 1, "shock", "index_path"): [5]}, ValueError,
     ["feeds[0]", "'B'", "index_path"]),
    ({("steps",): 0}, ValueError, ["steps = 0"]),
]


@pytest.mark.parametrize("changes,error,fragments", BAD,
                         ids=[f"{'.'.join(map(str, next(iter(c))))}" for c, _, _ in BAD])
def test_bad_input_is_refused_naming_the_field_before_anything_is_built(
        changes, error, fragments, monkeypatch):
    built = []
    real = orderbook._market.Market
    monkeypatch.setattr(orderbook._market, "Market",
                        lambda *a, **k: built.append(1) or real(*a, **k))
    d = small()
    for path, value in changes.items():
        _set(d, path, value)
    with pytest.raises(error) as caught:
        market_from_dict(d)
    message = str(caught.value.args[0]) if caught.value.args else str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert built == []     # refused at load: no venue was built


def test_a_scenario_built_in_python_is_checked_the_same_way():
    ms = loads_market(SMALL)
    with pytest.raises(KeyError, match=r"indexes\[0\] \('X'\) legs\[0\] venue = 'C'"):
        replace(ms, indexes=(IndexSpec("X", (Leg("C"),)),))
    with pytest.raises(ValueError, match=r"indexes\[0\] \('X'\) legs = \(\)"):
        replace(ms, indexes=(IndexSpec("X", ()),))
    with pytest.raises(ValueError, match=r"venues\[1\] \('B'\) has no accounts"):
        replace(ms, venues=(ms.venues[0], Venue("B", replace(
            ms.venues[1].scenario, population=replace(ms.venues[1].scenario.population,
                                                      count=0)))))
    with pytest.raises(TypeError, match=r"legs\[0\] must be a Leg"):
        replace(ms, arbitrageurs=(ArbitrageurSpec((("A", 0), ("B", 0))),))
    assert ms == loads_market(SMALL)     # the original is untouched (frozen, rebuilt whole)


def test_a_spot_venue_with_only_an_arbitrageur_has_accounts():
    d = small()
    d["venues"][1]["population"]["count"] = 0
    d["arbitrageurs"] = [{"legs": [{"venue": "A"}, {"venue": "B"}], "capital": 10**9}]
    assert market_from_dict(d).arbitrageurs[0].capital == (("A", 10**9), ("B", 10**9))


def test_a_one_venue_loader_points_to_the_market_loader(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(SMALL)
    with pytest.raises(ConfigError, match=r"m.toml: \[\[venues\]\].*load_market"):
        load_scenario(path)
    with pytest.raises(UnknownKeyError, match=r"m.toml: .*'colour'"):
        path.write_text(SMALL + "\ncolour = 1\n")
        load_market(path)


# ---------------------------------------------------------------------------------- runs
def test_the_index_carries_a_fall_on_a_into_bs_mark_and_liquidates_there(small_result):
    a, b = small_result.venues["A"], small_result.venues["B"]
    index = small_result.indexes["BTC"]
    # B's mark is the index, which is A's last trade, after every step
    assert np.array_equal(b.series["mark"], index)
    assert np.array_equal(index, a.series["last"])
    assert b.series["mark"][-1] < 1_000_000 - 1_000          # down more than 1 %
    assert b.summary["liquidated_accounts"] > 0
    assert a.summary["liquidated_accounts"] > 0
    # nobody traded on B of their own accord: its book's fall is its own forced sales
    liquidated_b = b.forced_orders["owner"][b.forced_orders["owner"] >= 0]
    assert set(liquidated_b.tolist()) <= set(range(300))
    assert len(b.forced_orders) == len(b.record_step)


def test_without_the_shock_on_a_nothing_is_liquidated_on_b(small_result):
    ms = loads_market(SMALL)
    calm = replace(ms, venues=(replace(ms.venues[0], scenario=replace(
        ms.venues[0].scenario, shock=Shock())), ms.venues[1]))
    result = run(calm)
    assert result.venues["B"].summary["liquidated_accounts"] == 0
    assert result.venues["A"].summary["liquidated_accounts"] == 0
    assert small_result.venues["B"].summary["liquidated_accounts"] > 0


def test_without_the_index_bs_mark_stays_and_the_run_says_so():
    ms = replace(loads_market(SMALL), indexes=())
    with pytest.warns(InertSettingWarning, match="venue 'B'"):
        result = run(ms)
    assert result.venues["B"].summary["liquidated_accounts"] == 0
    assert result.venues["B"].summary["static_mark"]
    assert set(result.venues["B"].series["mark"].tolist()) == {1_000_000}


def test_a_venue_with_its_liquidator_off_makes_no_records():
    d = small()
    d["venues"][1]["rules"]["liquidator"] = False
    with pytest.warns(UnresolvedAccountsWarning, match="venue 'B'"):
        result = run(market_from_dict(d))
    assert len(result.venues["B"].forced_orders) == 0
    # its accounts crossed all the same, and were left at negative equity
    assert result.venues["B"].summary["unresolved_accounts"] > 0


def test_the_same_seeds_give_the_same_run_bit_for_bit(small_result):
    again = run(loads_market(SMALL))
    for name, first in small_result.venues.items():
        second = again.venues[name]
        assert first.forced_orders.tobytes() == second.forced_orders.tobytes()
        assert first.series.tobytes() == second.series.tobytes()
        assert first.trades.tobytes() == second.trades.tobytes()
        assert np.array_equal(first.record_step, second.record_step)
    assert all(np.array_equal(small_result.indexes[k], again.indexes[k])
               for k in small_result.indexes)


def test_a_venue_on_the_reference_engine_makes_the_same_records(small_result):
    d = small()
    d["venues"][1]["engine"] = "reference"
    result = run(market_from_dict(d))
    for name in ("A", "B"):
        assert result.venues[name].forced_orders.tobytes() == \
            small_result.venues[name].forced_orders.tobytes()
    assert np.array_equal(result.indexes["BTC"], small_result.indexes["BTC"])


def test_the_table_has_a_row_per_venue_and_instrument(small_result):
    rows = small_result.table
    assert [(r["venue"], r["instrument"]) for r in rows] == [("A", "main"), ("B", "main")]
    b = small_result.venues["B"].summary
    assert rows[1]["liquidated_accounts"] == b["liquidated_accounts"] == \
        b["instrument.main.liquidated_accounts"]
    assert rows[1]["insurance_fund_end"] == b["insurance_fund_end"]


def several_instruments() -> dict:
    """SMALL with venue A holding BTC (shocked, in the index) and ETH (held by half of A's
    accounts)."""
    d = small()
    a = d["venues"][0]
    book, shock = a.pop("book"), a.pop("shock")
    a["instruments"] = [{"name": "BTC", "book": book, "shock": shock},
                        {"name": "ETH", "book": dict(book, mid=200_000), "hold": 0.5}]
    d["indexes"][0]["legs"] = [{"venue": "A", "instrument": "BTC", "weight": 1}]
    return d


def test_a_venue_of_several_instruments_gets_a_row_and_a_series_each():
    result = run(market_from_dict(several_instruments()))
    rows = {(r["venue"], r["instrument"]): r for r in result.table}
    assert list(rows) == [("A", "BTC"), ("A", "ETH"), ("B", "main")]
    # ETH is not shocked: its accounts go through the BTC accounts' forced ETH sales
    assert rows[("A", "ETH")]["liquidated_accounts"] > 0
    assert rows[("B", "main")]["liquidated_accounts"] > 0
    assert np.array_equal(result.series("B")["mark"], result.series("A", "BTC")["last"])
    assert result.series("A", 1)["last"][-1] < 200_000
    with pytest.raises(KeyError, match="'main'"):
        result.series("A", "main")


def test_the_figure_of_several_instruments_renders(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    path = tmp_path / "multi.png"
    run(market_from_dict(several_instruments())).plot(path)
    height, width = imread(str(path)).shape[:2]
    assert 600 <= width <= 4000 and 600 <= height <= 4000


# ------------------------------------------------------------------------------- example
def test_the_example_liquidates_on_b_only_with_the_arbitrageur():
    ms = load_market(EXAMPLE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a clean run: nothing unresolved, no inert mark
        on, off = run(ms), run(ms, arbitrage=False)
    liquidated = {name: (on.venues[name].summary["liquidated_accounts"],
                         off.venues[name].summary["liquidated_accounts"]) for name in "ABS"}
    assert liquidated["B"][0] > 50 and liquidated["B"][1] == 0
    assert liquidated["A"][0] == liquidated["A"][1] > 0       # A's own cascade either way
    assert on.arbitrageurs[0]["lots"] > 0 and off.arbitrageurs[0]["lots"] == 0
    assert on.arbitrageurs[0]["owner"] == ARBITRAGEUR_OWNER
    assert on.indexes["BTC"][-1] < off.indexes["BTC"][-1]


# ----------------------------------------------------------------------------------- CLI
def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_cli_run_prints_a_row_per_venue(capsys, small_file, small_result):
    code, out, err = _run(capsys, "run", small_file)
    assert code == 0, err
    assert "2 venues, 20 steps, arbitrage on" in out
    assert "index BTC: weighted median of A 1 (last trades), feeds B" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()[:2] in (["A", "main"], ["B", "main"])}
    liquidated = small_result.venues["B"].summary["liquidated_accounts"]
    assert rows["B"][3] == f"{liquidated:,}"


def test_cli_run_json_and_the_counterfactual(capsys, small_file, tmp_path):
    code, out, err = _run(capsys, "run", small_file, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["venues"]["B"]["liquidated_accounts"] > 0
    assert data["indexes"]["BTC"] < 1_000_000
    code, out, err = _run(capsys, "run", small_file, "--no-arbitrage", "--csv",
                          tmp_path / "csv")
    assert code == 0, err
    assert "arbitrage off" in out
    assert (tmp_path / "csv" / "B" / "forced_orders.csv").exists()


@pytest.mark.parametrize("argv,fragments", [
    (["--venue", "binance"], ["--venue", "[[venues]]"]),
    (["--contagion"], ["--contagion", "[[venues]]"]),
])
def test_cli_refuses_one_venue_options_on_a_market_file(capsys, small_file, argv, fragments):
    code, out, err = _run(capsys, "run", small_file, *argv)
    assert code == 2 and "Traceback" not in err and out == ""
    for fragment in fragments:
        assert fragment in err


def test_cli_refuses_a_file_mixing_venues_with_a_top_level_book(capsys, tmp_path):
    path = tmp_path / "mixed.toml"
    path.write_text("[book]\nmid = 5\n" + SMALL)
    code, out, err = _run(capsys, "run", path)
    assert code == 2 and out == ""
    assert "mixed.toml: top-level [book] cannot go with [[venues]]" in err
    code, _, err = _run(capsys, "run", "--no-arbitrage")
    assert code == 2 and "--no-arbitrage needs" in err


def test_cli_plot_draws_the_market(capsys, small_file, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    path = tmp_path / "market.png"
    code, out, err = _run(capsys, "run", small_file, "--plot", path)
    assert code == 0, err
    assert f"wrote {path}" in out
    height, width = imread(str(path)).shape[:2]
    assert 600 <= width <= 4000 and 600 <= height <= 4000


def test_the_readme_example_file_loads():
    readme = (ROOT / "README.md").read_text()
    text = readme.split("#### Several venues from a file")[1].split("```toml")[1]
    ms = loads_market(text.split("```")[0])
    assert [v.name for v in ms.venues] == ["A", "B"]
    assert ms.indexes[0].feeds == (Leg("B"),) and ms.arbitrageurs[0].max_lots == 300


# ---------------------------------------------------------------- an inverse venue among them
#: SMALL with venue B inverse (Binance COIN-M-like: a contract of 100 USD settled in BTC, every
#: amount in satoshi): the index of A's last trades still drives its mark.
INVERSE_B = SMALL.replace('''name = "B"
''', '''name = "B"
settlement = "INVERSE"
contract_value = "100"
quote_unit = "0.00000001"
lot_size = "1"
''')


def test_an_index_carries_a_fall_into_an_inverse_venue(capsys):
    ms = loads_market(INVERSE_B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(ms)
    b = result.venues["B"]
    assert b.summary["money"] == "coin" and result.venues["A"].summary["money"] == "quote"
    assert b.summary["liquidated_accounts"] > 0
    assert np.array_equal(b.series["mark"], result.indexes["BTC"])
    rows = {row["venue"]: row for row in result.table}
    assert (rows["A"]["money"], rows["B"]["money"]) == ("quote", "coin")


def test_the_cli_names_each_venues_money_when_they_differ(tmp_path, capsys):
    path = tmp_path / "inverse_b.toml"
    path.write_text(INVERSE_B)
    assert main(["run", str(path), "--no-counterfactual"]) == 0
    out = capsys.readouterr().out
    assert "venue B: 300 accounts, tick 0.1, lot 1, inverse, money in coin units of 1E-8" in out
    b_row = next(line for line in out.splitlines() if line.startswith("B "))
    assert b_row.count(" coin") == 2      # liquidated notional and fund, each in the coin


def test_an_arbitrageur_across_a_linear_and_an_inverse_venue_is_refused():
    text = INVERSE_B + """
[[arbitrageurs]]
legs = [{venue = "A"}, {venue = "B"}]
capital = {A = 1_000_000_000, B = 100_000_000}
"""
    with pytest.raises((ValueError, ConfigError), match="different amounts per lot .* A: 0.001 "
                                                         "base, B: 100 quote"):
        run(loads_market(text))
