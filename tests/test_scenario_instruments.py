"""Scenarios over several instruments (issue #13): baskets on one collateral, per-instrument
books, shocks, series and figures, in Python, TOML and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from orderbook import Contract, DepthProfile, Liquidity, Population, Scenario, Shock, run
from orderbook.config import (
    ConfigError,
    load_scenario,
    loads_scenario,
    scenario_from_dict,
    scenario_to_dict,
    scenario_to_toml,
)
from orderbook.scenario import ExplicitPopulation, scale_scenario
from orderbook.testing import check_accounts

ROOT = Path(__file__).resolve().parent.parent
BASKET = ROOT / "examples" / "basket.toml"


def small(engine="compiled", count=40, steps=8, **population):
    """Two instruments (BTC k = 1, ETH k = 1 at quote unit 0.0001), a BTC sell."""
    return Scenario(
        quote_unit="0.0001",
        instruments=(
            Contract("BTC", "0.1", "0.001",
                     book=DepthProfile(mid=1_000_000, spread=1, levels=300, step=50,
                                       touch_qty=2, growth=0.01, noise=0.3),
                     shock=Shock(sell=600)),
            Contract("ETH", "0.01", "0.01", hold=0.7, size=(1, 30),
                     book=DepthProfile(mid=300_000, spread=1, levels=300, step=15, touch_qty=2,
                                       growth=0.01, noise=0.3))),
        population=Population(count=count, leverage=(5.0, 100.0), size=(1, 30),
                              entry_dispersion=0.002, **population),
        liquidity=Liquidity(rate=10, half_life=5.0), shock=Shock(), steps=steps, engine=engine)


def quiet_run(scenario, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(scenario, **kw)


def test_the_compiled_and_reference_engines_run_a_basket_scenario_alike():
    compiled, reference = quiet_run(small()), quiet_run(small("reference"))
    assert compiled.forced_orders.tobytes() == reference.forced_orders.tobytes()
    assert compiled.summary == reference.summary
    for name in ("BTC", "ETH"):
        assert np.array_equal(compiled.instrument_series[name],
                              reference.instrument_series[name])
        assert np.array_equal(compiled.instrument_trades[name], reference.instrument_trades[name])


def test_a_btc_sell_liquidates_baskets_and_sells_their_eth():
    result = quiet_run(small())
    sm = result.summary
    # Every ETH liquidation is a basket's (the shock sold BTC only); some accounts that hold
    # no BTC can then fall with ETH.
    assert sm["instrument.BTC.liquidated_accounts"] > 0
    assert sm["instrument.ETH.liquidated_accounts"] > 0
    assert sm["instrument.BTC.first_generation"] == 0
    records = result.forced_orders
    assert set(records["instrument"].tolist()) == {0, 1}
    assert sum(sm[f"instrument.{n}.liquidated_notional"] for n in ("BTC", "ETH")) == \
        sm["liquidated_notional"]
    # Series per instrument; series and trades are instrument 0's.
    assert result.series.tobytes() == result.instrument_series["BTC"].tobytes()
    assert result.trades.tobytes() == result.instrument_trades["BTC"].tobytes()
    eth = result.instrument_series["ETH"]
    assert int(eth["liquidated_notional"].sum()) == sm["instrument.ETH.liquidated_notional"]


def test_the_basket_example_shows_contagion_to_accounts_without_btc():
    result = quiet_run(load_scenario(BASKET))
    sm = result.summary
    assert sm["liquidated_accounts_unshocked"] > 0
    assert sm["generations"] > 3
    assert sm["instrument.ETH.max_drawdown_pct"] > 1.0   # ETH falls with no ETH shock


def test_a_basket_run_leaves_consistent_accounts():
    from orderbook._market import Market
    from orderbook.scenario import _simulate

    market = Market(small())
    _simulate(market, 8, liquidator=True)
    check_accounts(market.engine)


def test_correlations_shape_the_baskets():
    from orderbook._market import Market

    def sizes(**population):
        eng = Market(small(count=400, **population)).engine
        out = []
        for owner in range(400):
            if owner in eng.owners():
                held = {p.instrument: abs(p.position) for p in eng.account(owner).positions}
                if len(held) == 2:
                    out.append((held[0], held[1]))
        return np.array(out, dtype=float)

    tied, free = sizes(size_correlation=1.0), sizes(size_correlation=0.0)
    assert np.corrcoef(np.log(tied).T)[0, 1] > 0.9
    assert abs(np.corrcoef(np.log(free).T)[0, 1]) < 0.2


def test_a_scenario_with_instruments_round_trips_through_toml():
    s = small()
    assert scenario_from_dict(scenario_to_dict(s)) == s
    assert loads_scenario(scenario_to_toml(s)) == s
    example = load_scenario(BASKET)
    assert [c.name for c in example.instruments] == ["BTC", "ETH", "SOL"]
    assert example.shock == Shock()
    assert loads_scenario(scenario_to_toml(example)) == example


def test_scaling_scales_every_instrument():
    s = scale_scenario(small(count=1000), 0.5)
    assert s.population.count == 500
    assert [c.book.touch_qty for c in s.instruments] == [1, 1]
    assert s.instruments[0].shock.sell == 300


@pytest.mark.parametrize("text,match", [
    ('[[instruments]]\nname = "A"\n[[instruments]]\nname = "A"\n', "given twice"),
    ('[[instruments]]\nname = "A"\nspeed = 3\n', r"\[instruments\[0\]\] unknown key 'speed'"),
    ('[[instruments]]\nname = "A"\n[shock]\nsell = 1\n', r"\[shock\] cannot go with"),
    ('[[instruments]]\nname = "A"\n[book]\nmid = 5\n', r"\[book\] cannot go with"),
    ('[[instruments]]\nname = ""\n', r"\[instruments\[0\]\] name"),
    ('[[instruments]]\nname = "A"\nhold = 2\n', r"\[instruments\[0\]\] hold"),
    ('[[instruments]]\nname = "A"\n[instruments.book]\nmid = 0\n',
     r"\[instruments\[0\]\.book\] mid"),
    ('instruments = 3\n', r"\[\[instruments\]\] must be an array of tables"),
    ('[[instruments]]\nname = "A"\ntick_size = "0.5"\n[[instruments]]\nname = "B"\n'
     'tick_size = "0.3"\n', "do not fit"),
])
def test_bad_instruments_in_a_file_are_refused_naming_them(text, match):
    with pytest.raises(ConfigError, match=match):
        loads_scenario(text)


def test_a_run_refuses_what_instruments_cannot_use():
    with pytest.raises(ConfigError, match="each instrument's book and shock"):
        run(replace(small(), shock=Shock(sell=1)))
    with pytest.raises(ConfigError, match="each instrument's book and shock"):
        run(replace(small(), book=DepthProfile(mid=5)))
    explicit = ExplicitPopulation(side=(1,), size=(1,), entry=(1_000_000,), collateral=(10**9,))
    with pytest.raises(ConfigError, match="synthetic"):
        run(replace(small(), population=explicit))


def test_the_cli_prints_each_instrument(tmp_path):
    out = subprocess.run([sys.executable, "-m", "orderbook", "run", str(BASKET), "--scale",
                          "0.2", "--json"], capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)
    assert {"instrument.BTC.liquidated_accounts", "instrument.SOL.first_generation",
            "liquidated_accounts_unshocked"} <= set(summary)
    text = subprocess.run([sys.executable, "-m", "orderbook", "run", str(BASKET), "--scale",
                           "0.2"], capture_output=True, text=True, check=True).stdout
    assert "by instrument" in text and "instruments BTC (tick 0.1, lot 0.001)" in text


def test_the_figure_draws_a_panel_per_instrument(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "basket.png"
    quiet_run(small()).plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_and_compare_reach_each_instruments_settings():
    from orderbook.scenario import coerce_param, sweep, with_params

    s = small()
    assert coerce_param(s, "instruments.BTC.shock.sell", 7) == 7
    assert with_params(s, {"instruments.ETH.hold": 0.5}).instruments[1].hold == 0.5
    changed = with_params(s, {"instruments.BTC.book.touch_qty": 3, "instruments.BTC.shock.sell":
                              50})
    assert changed.instruments[0].book.touch_qty == 3
    assert changed.instruments[0].shock.sell == 50 and changed.instruments[1] == s.instruments[1]
    with pytest.raises(ConfigError, match="no instrument 'SOL'"):
        coerce_param(s, "instruments.SOL.hold", 0.5)
    with pytest.raises(ConfigError, match=r"instruments\.BTC\] hold = 2"):
        coerce_param(s, "instruments.BTC.hold", 2)
    with pytest.raises(ConfigError, match="book and shock"):
        coerce_param(s, "instruments.BTC.rules.x", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = sweep({"instruments.BTC.shock.sell": [100, 600]}, s, workers=1,
                     counterfactual=False)
    assert [row["instruments.BTC.shock.sell"] for row in rows] == [100, 600]
    assert rows[0]["liquidated_accounts"] <= rows[1]["liquidated_accounts"]


def modelled(**model):
    from orderbook import MarkRule
    from orderbook.scenario import IndexModel

    model.setdefault("drift_ppm", (-2_000, -2_000))
    model.setdefault("vol_ppm", (3_000, 3_000))
    model.setdefault("correlation", ((1.0, 0.8), (0.8, 1.0)))
    s = small(steps=30)
    return replace(s, rules=replace(s.rules, mark_rule=MarkRule.INDEX),
                   instruments=tuple(replace(c, shock=Shock()) for c in s.instruments),
                   index_model=IndexModel(**model))


def test_an_index_model_draws_correlated_index_paths():
    from orderbook._market import Market, _model_paths_of

    s = modelled()
    market = Market(s)
    btc, eth = (c.index_path for c in market.contracts)
    assert len(btc) == len(eth) == 30
    assert market.contracts[0].index_path == Market(s).contracts[0].index_path   # the seed
    # Over many steps the log returns correlate as stated (0.8) and drift down.
    flat = replace(s.index_model, drift_ppm=(0, 0))
    long = _model_paths_of(flat, [10**8, 10**8], 20_000, 7)
    returns = np.diff(np.log(np.array(long, dtype=float)), axis=1)
    assert abs(np.corrcoef(returns)[0, 1] - 0.8) < 0.02
    assert btc[-1] < 1_000_000 and eth[-1] < 300_000     # -0.2 % a step over 30 steps
    # The run follows them: both marks fall, and the summary says nothing is static.
    result = quiet_run(s)
    assert not result.summary["static_mark"]
    assert result.instrument_series["ETH"]["mark"][-1] < 300_000


def test_an_index_model_round_trips_and_is_checked():
    s = modelled()
    assert loads_scenario(scenario_to_toml(s)) == s
    with pytest.raises(ConfigError, match="positive semi-definite"):
        quiet_run(modelled(correlation=((1.0, 0.99, 0.0), (0.99, 1.0, 0.99),
                                        (0.0, 0.99, 1.0))))
    with pytest.raises(ConfigError, match="1 on the diagonal"):
        quiet_run(modelled(correlation=((0.5, 0.0), (0.0, 1.0))))
    with pytest.raises(ConfigError, match="symmetric"):
        loads_scenario(scenario_to_toml(s).replace("[0.8, 1.0]", "[0.3, 1.0]"))
    with pytest.raises(ConfigError, match="vol_ppm has 1 entries for 2 instruments"):
        quiet_run(modelled(vol_ppm=(3_000,)))
    s = modelled()
    with pytest.raises(ConfigError, match="give one"):
        quiet_run(replace(s, instruments=(replace(s.instruments[0], shock=Shock(
            index_path=(5,))),) + s.instruments[1:]))


def test_the_contagion_matrix_runs_each_origin_alone():
    from orderbook.scenario import contagion

    s = small()
    both = replace(s, instruments=(s.instruments[0], replace(s.instruments[1],
                                                             shock=Shock(sell=300))))
    spread = contagion(both)
    assert spread.origins == ["BTC", "ETH"] and spread.instruments == ["BTC", "ETH"]
    # Row BTC is the run with the BTC sell alone: what small() itself liquidates.
    alone = quiet_run(s, counterfactual=False).summary
    assert spread.notional[0] == [alone["instrument.BTC.liquidated_notional"],
                                  alone["instrument.ETH.liquidated_notional"]]
    assert spread.table[0]["origin"] == "BTC"
    with pytest.raises(ValueError, match="no single origin"):
        contagion(modelled())
    with pytest.raises(ValueError, match="at least one shocked instrument"):
        contagion(replace(s, instruments=tuple(replace(c, shock=Shock())
                                               for c in s.instruments)))
    with pytest.raises(ValueError, match="needs a scenario with instruments"):
        contagion(Scenario())


def test_the_cli_prints_the_contagion_matrix():
    out = subprocess.run([sys.executable, "-m", "orderbook", "run", str(BASKET), "--scale",
                          "0.2", "--contagion", "--json"], capture_output=True, text=True,
                         check=True)
    spread = json.loads(out.stdout)["contagion"]
    assert spread["origins"] == ["BTC"] and spread["instruments"] == ["BTC", "ETH", "SOL"]
    bad = subprocess.run([sys.executable, "-m", "orderbook", "run", "--contagion"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--contagion: contagion needs a scenario with instruments" \
        in bad.stderr


# ------------------------------------------------------------------ collateral in the coin


def coined(engine="compiled", count=60, **population):
    """``small`` with BTC's base asset as collateral (haircut 10 %, conversion at 1 % below
    the mark) and ``population`` (coin_fraction ...)."""
    base = small(engine, count=count, **population)
    btc, eth = base.instruments
    return replace(base, instruments=(replace(btc, haircut_ppm=100_000,
                                              conversion_discount_ppm=10_000), eth))


def test_a_coin_fraction_holds_that_share_of_the_collateral_in_the_coin():
    from orderbook._market import COIN_UNITS_PER_LOT, Market

    market = Market(coined(coin_fraction=0.5, coin="BTC"))
    eng = market.engine
    assert [a.name for a in eng.assets] == ["BTC"]
    assert eng.assets[0].unit == "0.000000001"   # a millionth of the 0.001 BTC lot
    mark = eng.mark_price(0)
    held = 0
    for owner in range(60):
        info = eng.account(owner)
        if not info.positions:
            continue
        [coin] = info.assets
        # half the collateral at the start (rounded up) in the fewest units whose value
        # after the 10 % haircut (mark x k / 10**6 per unit, k = 1) covers it
        share = coin.value
        assert share == coin.balance * mark * 9 // 10 // COIN_UNITS_PER_LOT
        assert (coin.balance - 1) * mark * 9 // 10 // COIN_UNITS_PER_LOT < share
        assert abs(info.collateral - share) <= mark   # the two halves, within a unit's worth
        held += 1
    assert held > 30
    check_accounts(eng)


def test_coin_collateral_deepens_the_cascade_and_is_converted():
    plain, coin = quiet_run(coined()), quiet_run(coined(coin_fraction=1.0))
    assert plain.summary["conversions"] == 0
    assert coin.summary["conversions"] > 0
    assert coin.summary["converted_notional"] > 0
    assert coin.summary["liquidated_accounts"] >= plain.summary["liquidated_accounts"]
    records = coin.forced_orders
    conversions = records[records["kind"] == 6]
    assert (conversions["instrument"] == 0).all() and (conversions["filled"] == 0).all()
    assert int(conversions["notional"].sum()) == coin.summary["converted_notional"]


def test_the_reference_engine_runs_coin_collateral_alike():
    compiled = quiet_run(coined(coin_fraction=0.7))
    reference = quiet_run(coined("reference", coin_fraction=0.7))
    assert compiled.forced_orders.tobytes() == reference.forced_orders.tobytes()
    assert compiled.summary == reference.summary


def test_coin_collateral_round_trips_through_toml():
    scenario = coined(coin_fraction=0.25, coin="BTC")
    text = scenario_to_toml(scenario)
    assert "haircut_ppm = 100000" in text and "coin_fraction = 0.25" in text
    assert loads_scenario(text) == scenario


@pytest.mark.parametrize("change,match", [
    (dict(coin_fraction=0.5, coin="ETH"), "coin 'ETH' is not an instrument with a haircut"),
    (dict(coin_fraction=1.5), "coin_fraction"),
])
def test_bad_coin_settings_are_refused(change, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        quiet_run(coined(**change))


def test_a_coin_needs_an_instrument_with_a_haircut():
    with pytest.raises(ConfigError, match="needs an instrument with a haircut_ppm"):
        quiet_run(small(coin_fraction=0.5))
    with pytest.raises(ConfigError, match="need a scenario with instruments"):
        quiet_run(Scenario(population=Population(count=10, coin_fraction=0.5)))


@pytest.mark.parametrize("name", ["coin_margined.toml", "multi_asset.toml"])
def test_the_collateral_examples_liquidate_more_with_the_coin(name):
    scenario = load_scenario(ROOT / "examples" / name)
    with_coin = quiet_run(scenario, counterfactual=False)
    on_usdt = quiet_run(replace(scenario, population=replace(scenario.population,
                                                             coin_fraction=0.0)),
                        counterfactual=False)
    assert with_coin.summary["conversions"] > 0
    assert with_coin.summary["liquidated_accounts"] > on_usdt.summary["liquidated_accounts"]
