"""The run's clock (orderbook._timeline, Scenario.clock): the step model unchanged, a finer
liquidator cadence, blocks, and the times every series row, record and trade carries."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from orderbook import Agent, Clock, Side, default_scenario, run
from orderbook._settings import ConfigError
from orderbook.config import loads_scenario, scenario_from_dict, scenario_to_dict
from orderbook.metrics import LIQUIDATION_KINDS

SMALL = 0.05


# the small runs end with accounts queued or unresolved, which warns: not what these test
pytestmark = pytest.mark.filterwarnings("ignore")


def small(**clock):
    s = default_scenario(SMALL)
    return replace(s, clock=Clock(**clock)) if clock else s


def test_the_default_clock_is_the_step_model_a_step_a_second():
    result = run(small(), counterfactual=False)
    assert result.summary["liquidated_accounts"] == 85
    assert result.series["time"].tolist() == [1_000 * k for k in range(result.scenario.steps)]
    assert (result.record_time == result.record_step * 1_000).all()


def test_the_length_of_a_step_changes_the_times_and_nothing_else():
    a = run(small(), counterfactual=False)
    b = run(small(step_ms=250), counterfactual=False)
    for name in a.series.dtype.names:
        if name != "time":
            assert np.array_equal(a.series[name], b.series[name]), name
    assert a.forced_orders.tobytes() == b.forced_orders.tobytes()
    assert (b.series["time"] == a.series["time"] // 4).all()
    assert (b.record_time == a.record_time // 4).all()
    assert (b.trade_time == a.trade_time // 4).all()


@pytest.mark.parametrize("cadence", [100, 250, 3_000])
def test_the_liquidator_runs_at_its_cadence_and_the_series_counts_every_round(cadence):
    result = run(small(liquidator_ms=cadence), counterfactual=False)
    times = result.record_time
    assert len(times) and (times % cadence == 0).all()
    assert (np.diff(times) >= 0).all()
    # a round between two rows of the series shows in the later one
    assert (result.record_step == -(-times // 1_000)).all()
    closed = np.isin(result.forced_orders["kind"], LIQUIDATION_KINDS)
    assert result.series["liquidated_notional"].sum() == \
        result.forced_orders["notional"][closed].sum()


def test_a_faster_liquidator_ends_the_cascade_sooner():
    slow = run(small(liquidator_ms=2_000), counterfactual=False)
    fast = run(small(liquidator_ms=100), counterfactual=False)
    assert fast.record_time.max() < slow.record_time.max()


def test_more_rounds_per_wake_run_the_cascade_in_fewer_wakes():
    one = run(small(), counterfactual=False)
    many = run(small(liquidator_rounds=50), counterfactual=False)
    assert len(np.unique(many.record_time)) < len(np.unique(one.record_time))
    assert many.record_time.max() < one.record_time.max()


class Clocked(Agent):
    """Records the times it was called at."""

    every_ms = 300

    def __init__(self):
        self.calls = []

    def on_timer(self, view):
        self.calls.append(view.time)
        type(self).seen = list(self.calls)


def test_in_blocks_orders_wait_for_the_end_of_their_block():
    run(small(block_ms=1_000), agents=[Clocked()], counterfactual=False)
    calls = Clocked.seen
    assert calls and all(t % 1_000 == 0 for t in calls)
    run(small(), agents=[Clocked()], counterfactual=False)
    assert Clocked.seen[:4] == [0, 300, 600, 900]


def test_blocks_run_the_liquidator_every_block():
    result = run(small(block_ms=500), counterfactual=False)
    assert (result.record_time % 500 == 0).all()
    assert (result.record_time % 1_000 != 0).any()


def test_trade_times_follow_the_trades():
    result = run(small(liquidator_ms=250), counterfactual=False)
    assert len(result.trade_time) == len(result.trades)
    assert (np.diff(result.trade_time) >= 0).all()
    assert result.trade_time[0] == 0   # the first print, before the run
    assert result.trade_time.max() <= result.series["time"][-1]


def test_a_clock_that_cannot_be_is_refused_naming_its_values():
    with pytest.raises(ConfigError, match="liquidator_ms must be a multiple of block_ms"):
        Clock(block_ms=300, liquidator_ms=500)
    with pytest.raises(ConfigError, match=r"\[clock\] step_ms = 0"):
        loads_scenario("[clock]\nstep_ms = 0\n")
    with pytest.raises(ConfigError, match="unknown key 'tick'"):
        loads_scenario("[clock]\ntick = 5\n")


def test_a_clock_goes_through_a_scenario_file():
    s = loads_scenario("[clock]\nstep_ms = 200\nliquidator_ms = 50\nliquidator_rounds = 2\n")
    assert s.clock == Clock(step_ms=200, liquidator_ms=50, liquidator_rounds=2)
    assert scenario_from_dict(scenario_to_dict(s)) == s


def test_the_counterfactual_runs_on_the_same_clock():
    result = run(small(liquidator_ms=250))
    assert result.summary["amplification"] >= 1.0


def test_shock_orders_at_a_step_arrive_at_its_time():
    s = replace(small(step_ms=500), shock=replace(small().shock, sell=0,
                                                  orders=((4, Side.SELL, 400),)))
    result = run(s, counterfactual=False)
    shocked = result.trades[result.trades["owner"] == 10**12 + 2]
    times = result.trade_time[result.trades["owner"] == 10**12 + 2]
    assert len(shocked) > 1 and set(times[1:].tolist()) == {2_000}


# ------------------------------------------------------------------------------- flows
def with_flows(*models, **changes):
    from orderbook.scenario import Flow

    return replace(small(), flows=tuple(Flow(m) for m in models), **changes)


def poisson(**kw):
    from orderbook.flows import OrderSize, PoissonFlow

    return PoissonFlow(**{"limit_rate_per_s": 20, "market_rate_per_s": 2,
                          "limit_size": OrderSize(3), "market_size": OrderSize(3), **kw})


def hawkes(**kw):
    from orderbook.flows import HawkesFlow, OrderSize

    return HawkesFlow(**{"baseline_per_s": 0.2, "alpha_per_s": 0.5, "beta_per_s": 1.0,
                         "size": OrderSize(5), **kw})


def test_flows_send_their_rows_through_the_engine_at_their_times():
    from orderbook.events import SCENARIO_FLOWS

    result = run(with_flows(poisson()), counterfactual=False)
    (flow,) = result.summary["flows"]
    assert flow["sent"] > 1_000 and flow["owner"] == SCENARIO_FLOWS
    mine = (result.trades["owner"] == SCENARIO_FLOWS) | (
        result.trades["maker_owner"] == SCENARIO_FLOWS)
    times = result.trade_time[mine]
    assert mine.sum() > 100 and (times % 1_000 != 0).any()   # between the steps
    again = run(with_flows(poisson()), counterfactual=False)
    assert again.trades.tobytes() == result.trades.tobytes()


def test_the_scenario_seed_varies_the_flow():
    a = run(with_flows(poisson()), counterfactual=False)
    b = run(with_flows(poisson(), seed=8), counterfactual=False)
    assert a.summary["flows"][0]["sent"] != b.summary["flows"][0]["sent"]


def test_forced_selling_excites_a_hawkes_flow():
    calm = run(with_flows(hawkes()), counterfactual=False).summary["flows"][0]["sent"]
    excited = run(with_flows(hawkes(excite_per_forced_lot=0.05)),
                  counterfactual=False).summary["flows"][0]["sent"]
    assert excited > calm


def test_in_blocks_flow_rows_wait_for_the_end_of_their_block():
    from orderbook.events import SCENARIO_FLOWS

    result = run(with_flows(poisson(), clock=Clock(block_ms=500)), counterfactual=False)
    mine = result.trades["owner"] == SCENARIO_FLOWS
    assert mine.any() and (result.trade_time[mine] % 500 == 0).all()


def test_flows_go_through_a_scenario_file_and_scale():
    from orderbook.config import scenario_to_toml
    from orderbook.scenario import scale_scenario

    s = with_flows(poisson(), hawkes(excite_per_forced_lot=0.01))
    assert loads_scenario(scenario_to_toml(s)) == s
    text = '[[flows]]\nkind = "hawkes"\nbaseline_per_s = 1.0\n[flows.size]\nmean_lots = 40\n'
    (flow,) = loads_scenario(text).flows
    assert flow.model.size.mean_lots == 40.0
    assert scale_scenario(loads_scenario(text), 0.1).flows[0].model.size.mean_lots == 4.0
    with pytest.raises(ConfigError, match=r"\[flows\[0\]\] kind = 'zi'"):
        loads_scenario('[[flows]]\nkind = "zi"\n')
    with pytest.raises(ConfigError, match=r"flows\[0\].*branching ratio"):
        loads_scenario('[[flows]]\nkind = "hawkes"\nalpha_per_s = 2.0\n')


def test_a_flow_on_an_instrument_the_scenario_lacks_is_refused():
    from orderbook.scenario import Flow

    s = replace(small(), flows=(Flow(poisson(), instrument=3),))
    with pytest.raises(ConfigError, match=r"flows\[0\] instrument = 3"):
        run(s, counterfactual=False)


def test_the_engine_keeps_the_run_s_time_so_cooldowns_in_ms_run_on_it():
    from orderbook import Sizing
    from orderbook._market import Market
    from orderbook.scenario import _simulate

    rules = replace(default_scenario().rules, sizing=Sizing.FRACTION, fraction_ppm=100_000)
    market = Market(replace(small(liquidator_ms=250), rules=rules))
    _simulate(market, market.scenario.steps, True)
    assert market.engine.time == (market.scenario.steps - 1) * 1_000
    # a partial step starts a 3 s cooldown: forced orders close whole positions meanwhile,
    # so the cascade needs fewer partial orders than without it
    plain = run(replace(small(liquidator_ms=250), rules=rules), counterfactual=False)
    cooled = run(replace(small(liquidator_ms=250),
                         rules=replace(rules, cooldown_ms=3_000)), counterfactual=False)
    assert cooled.summary["forced_orders"] < plain.summary["forced_orders"]


# ----------------------------------------------------------------------------- funding
def with_funding(venue="binance", interval_ms=10_000, sample_ms=1_000, **changes):
    from orderbook import Funding

    return replace(small(**changes), funding=Funding(venue=venue, interval_ms=interval_ms,
                                                     sample_ms=sample_ms))


def test_funding_is_paid_at_each_interval_and_conserved():
    from orderbook._market import Market
    from orderbook.scenario import _simulate

    scenario = with_funding()
    result = run(scenario, counterfactual=False)
    funding = result.funding
    assert result.summary["funding_payments"] == len(funding) == 11   # 10 s .. 110 s
    assert funding["time"].tolist() == list(range(10_000, 120_000, 10_000))
    # after the fall the mark is under the index (the starting mid): shorts pay longs
    assert (funding["rate"] < 0).all()
    assert (funding["paid"] == funding["received"] + funding["remainder"]).all()
    assert result.summary["funding_paid"] == funding["paid"].sum() > 0
    market = Market(scenario)
    _simulate(market, scenario.steps, True)
    eng = market.engine
    assert eng.total_equity() + eng.fees_collected == eng.total_deposits


def test_no_funding_unless_the_scenario_names_a_venue():
    result = run(small(), counterfactual=False)
    assert len(result.funding) == 0 and "funding_payments" not in result.summary


def test_funding_goes_through_a_scenario_file():
    from orderbook import Funding

    s = loads_scenario('[funding]\nvenue = "hyperliquid"\ninterval_ms = 5_000\n')
    assert s.funding == Funding(venue="hyperliquid", interval_ms=5_000)
    assert scenario_from_dict(scenario_to_dict(s)) == s
    assert s.funding.rule().interval_ms == 5_000
    with pytest.raises(ConfigError, match=r"\[funding\] venue = 'ftx' must be one of"):
        loads_scenario('[funding]\nvenue = "ftx"\n')
