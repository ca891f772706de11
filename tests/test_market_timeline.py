"""A market of several venues on the clock (orderbook._timeline.MarketTimeline): the step model
unchanged, each venue's own liquidator cadence, agents that trade on their venue and read the
others, flows, and funding against the market's index."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from orderbook import Agent, Clock, Funding, MarkRule, Shock, Side, default_scenario
from orderbook._market import Market as Built
from orderbook._settings import ConfigError
from orderbook.agents import MarketMaker
from orderbook.events import SCENARIO_AGENTS
from orderbook.market import Market
from orderbook.market_scenario import (
    IndexSpec,
    Leg,
    MarketScenario,
    Venue,
    loads_market,
    run,
)
from orderbook.metrics import LIQUIDATION_KINDS

# the small runs end with accounts queued or unresolved, which warns: not what these test
pytestmark = pytest.mark.filterwarnings("ignore")


def venues(a_clock=None, b_clock=None, **b_changes):
    """A (marked LAST, sold into) and B (marked by an index of A, not sold into)."""
    a = default_scenario(0.05)
    b = replace(a, shock=Shock(), rules=replace(a.rules, mark_rule=MarkRule.INDEX), **b_changes)
    if a_clock is not None:
        a = replace(a, clock=a_clock)
    if b_clock is not None:
        b = replace(b, clock=b_clock)
    return a, b


def market(a, b, steps=40):
    return MarketScenario((Venue("A", a), Venue("B", b)),
                          (IndexSpec("BTC", (Leg("A"),), feeds=(Leg("B"),)),), steps=steps)


def step_model(ms: MarketScenario) -> dict:
    """The market's step model written out with the public Market.step: each step every
    venue's shock, one market step (indexes, a round per venue, indexes, arbitrageurs), then
    every venue's recovery and refill. {venue: (records, trades)}."""
    built = {v.name: Built(replace(v.scenario, steps=ms.steps)) for v in ms.venues}
    first = {name: len(b.engine.forced_orders()) for name, b in built.items()}
    m = Market({name: b.engine for name, b in built.items()})
    for ix in ms.indexes:
        m.add_index(ix.name, {(leg.venue, leg.instrument): leg.weight for leg in ix.legs},
                    rule=ix.rule, source=ix.source,
                    feeds=[(leg.venue, leg.instrument) for leg in ix.feeds])
    for step in range(ms.steps):
        for b in built.values():
            b.shock_at(step)
        m.step()
        for b in built.values():
            b.recover(step)
            b.refill()
    return {name: (b.engine.forced_orders()[first[name]:], b.engine.trades())
            for name, b in built.items()}


def test_on_the_default_clocks_a_market_run_is_the_step_model():
    ms = market(*venues())
    result = run(ms)
    expected = step_model(ms)
    for name, res in result.venues.items():
        records, trades = expected[name]
        assert res.forced_orders.tobytes() == records.tobytes(), name
        assert res.trades.tobytes() == trades.tobytes(), name
        assert (res.record_time == res.record_step * 1_000).all()
        assert res.series["time"].tolist() == [1_000 * k for k in range(ms.steps)]
    assert result.venues["B"].summary["liquidated_accounts"] > 0   # through the index alone


def test_each_venue_liquidates_at_its_own_cadence():
    ms = market(*venues(Clock(liquidator_ms=250), Clock(block_ms=2_000)))
    result = run(ms)
    a, b = result.venues["A"], result.venues["B"]
    assert len(a.record_time) and (a.record_time % 250 == 0).all()
    assert (a.record_time % 1_000 != 0).any()
    assert len(b.record_time) and (b.record_time % 2_000 == 0).all()
    for res in (a, b):
        closed = np.isin(res.forced_orders["kind"], LIQUIDATION_KINDS)
        # every round shows in the series row at or after it
        assert res.series["liquidated_notional"].sum() == \
            res.forced_orders["notional"][closed].sum()
        assert (res.record_step == -(-res.record_time // 1_000)).all()
    # the same cascade on A, over sooner: its rounds come four times a step
    base = run(market(*venues())).venues["A"]
    assert a.record_time.max() < base.record_time.max()


def test_the_venues_must_share_their_step():
    a, b = venues(b_clock=Clock(step_ms=500))
    with pytest.raises(ConfigError, match=r"venues\[1\] \('B'\) clock.step_ms = 500"):
        run(market(a, b))


def test_a_step_of_its_own_length_changes_only_the_times():
    a, b = venues()
    fast = run(market(replace(a, clock=Clock(step_ms=250)), replace(b, clock=Clock(step_ms=250))))
    slow = run(market(a, b))
    for name in ("A", "B"):
        assert fast.venues[name].forced_orders.tobytes() == \
            slow.venues[name].forced_orders.tobytes()
        assert (fast.venues[name].record_time * 4 == slow.venues[name].record_time).all()


class Watcher(Agent):
    """On B: reads A's book and the index every second, and buys 50 lots on B while A's last
    trade is under its starting mid."""

    collateral = 10**13
    every_ms = 1_000

    def __init__(self):
        self.seen = []

    def on_timer(self, view):
        a = view.venue("A")
        last_a = a.book().last_price
        self.seen.append((view.time, view.name, view.venues, last_a, view.market_index("BTC"),
                          view.index(), a.name))
        if last_a is not None and last_a < 1_000_000:
            view.market(Side.BUY, 50)


def test_an_agent_trades_on_its_venue_and_reads_the_others():
    ms = market(*venues())
    watcher = Watcher()
    result = run(ms, agents={"B": [watcher]})
    (summary,) = result.venues["B"].summary["agents"]
    assert summary["owner"] == SCENARIO_AGENTS and summary["kind"] == "Watcher"
    b_trades = result.venues["B"].trades
    mine = b_trades["owner"] == SCENARIO_AGENTS
    assert mine.any() and summary["position"] == b_trades["qty"][mine].sum()
    assert not (result.venues["A"].trades["owner"] == SCENARIO_AGENTS).any()
    assert "agents" not in result.venues["A"].summary
    assert watcher.seen == []      # the run worked on a copy
    # what it read: on the copy the run kept, through a run of a fresh agent
    probe = Watcher()

    class Keep(Watcher):
        def on_timer(self, view):
            super().on_timer(view)
            probe.seen.append(self.seen[-1])

    run(ms, agents={"B": [Keep()]})
    time, name, names, last_a, index, own_index, other = probe.seen[5]
    assert (name, names, other) == ("B", ("A", "B"), "A")
    assert index == own_index      # B's index is the market's BTC index, which feeds it
    assert last_a < 1_000_000      # A has fallen


def test_agents_for_an_unknown_venue_or_a_bad_name_are_refused():
    ms = market(*venues())
    with pytest.raises(KeyError, match="venue 'C'"):
        run(ms, agents={"C": [Watcher()]})

    class Nosy(Agent):
        every_ms = 1_000

        def on_timer(self, view):
            view.venue("Z")

    with pytest.raises(KeyError, match="venue 'Z' is not one of"):
        run(ms, agents={"A": [Nosy()]})


def test_a_market_maker_that_withdraws_on_one_venue_changes_its_cascade():
    maker = dict(every_ms=250, levels=20, level_lots=4, half_spread_ticks=50,
                 level_step_ticks=50)
    a, b = venues()
    thin = replace(b, liquidity=replace(b.liquidity, half_life=0.0, recovery_rate=0))
    ms = market(a, thin, steps=60)
    stays = run(ms, agents={"B": [MarketMaker(**maker)]})
    pulls = run(ms, agents={"B": [MarketMaker(**maker, withdraw_ppm=2_000, calm_ms=30_000)]})
    assert stays.venues["B"].forced_orders.tobytes() != pulls.venues["B"].forced_orders.tobytes()
    # A never sees B's maker: without arbitrageurs its run is the same
    assert stays.venues["A"].forced_orders.tobytes() == pulls.venues["A"].forced_orders.tobytes()


def test_funding_on_a_venue_fed_by_an_index_samples_against_that_index():
    a, b = venues(funding=Funding("binance", interval_ms=10_000, sample_ms=1_000))
    result = run(market(a, b))
    funding = result.venues["B"].funding
    assert len(funding) == 3       # at 10, 20 and 30 s of a 39 s run
    sm = result.venues["B"].summary
    assert sm["funding_payments"] == 3 and sm["funding_paid"] == int(funding["paid"].sum())
    # after A's fall the index (A's last trade) sits below B's mark: longs pay
    assert (funding["rate"] > 0).any()
    # the payments are exact: what payers paid is what receivers got plus the fund's rest
    assert (funding["paid"] == funding["received"] + funding["remainder"]).all()


def test_a_market_file_gives_each_venue_its_clock_agents_flows_and_funding():
    text = """
steps = 30
[[venues]]
name = "A"
[venues.book]
mid = 1_000_000
[venues.population]
count = 500
[venues.shock]
sell = 1_500
[venues.rules]
mark_rule = "LAST"
[venues.clock]
liquidator_ms = 500
[[venues.flows]]
kind = "poisson"

[[venues]]
name = "B"
[venues.book]
mid = 1_000_000
[venues.population]
count = 500
[venues.shock]
sell = 0
[venues.rules]
mark_rule = "INDEX"
[venues.clock]
block_ms = 2_000
[venues.funding]
venue = "binance"
interval_ms = 10_000
[[venues.agents]]
kind = "market_maker"
every_ms = 500

[[indexes]]
name = "BTC"
legs = [{venue = "A"}]
feeds = [{venue = "B"}]
"""
    ms = loads_market(text)
    assert ms.venue("A").scenario.clock == Clock(liquidator_ms=500)
    result = run(ms)
    a, b = result.venues["A"].summary, result.venues["B"].summary
    assert a["flows"][0]["sent"] > 0 and "agents" not in a
    assert b["agents"][0]["kind"] == "MarketMaker" and b["funding_payments"] == 2
    again = run(ms)
    for name in ("A", "B"):
        assert again.venues[name].forced_orders.tobytes() == \
            result.venues[name].forced_orders.tobytes()
        assert again.venues[name].trades.tobytes() == result.venues[name].trades.tobytes()


def test_the_market_figure_puts_time_on_its_axis(tmp_path):
    pytest.importorskip("matplotlib")
    result = run(market(*venues(Clock(liquidator_ms=500))))
    path = tmp_path / "market.png"
    result.plot(path)
    assert path.stat().st_size > 10_000


def test_a_market_on_the_clock_gives_the_same_events_on_the_reference_engine():
    """The differential check of a market on the clock: agents, a flow and funding on the
    venues, the compiled engines against the pure-Python reference."""
    from orderbook import Flow
    from orderbook.flows import OrderSize, PoissonFlow

    a, b = venues(Clock(liquidator_ms=500), Clock(block_ms=2_000),
                  funding=Funding("binance", interval_ms=10_000, sample_ms=1_000))
    a = replace(a, flows=(Flow(PoissonFlow(limit_rate_per_s=5, market_rate_per_s=1,
                                        limit_size=OrderSize(2), market_size=OrderSize(2))),))
    b = replace(b, agents=(MarketMaker(every_ms=500, levels=5, level_lots=3, withdraw_ppm=2_000,
                                    calm_ms=5_000),))
    ms = MarketScenario((Venue("A", a), Venue("B", b)),
                        (IndexSpec("BTC", (Leg("A"),), feeds=(Leg("B"),)),), steps=12)
    compiled = run(ms, agents={"B": [Watcher()]})
    reference = run(replace(ms, venues=tuple(replace(v, scenario=replace(v.scenario,
                                                                         engine="reference"))
                                             for v in ms.venues)),
                    agents={"B": [Watcher()]})
    for name in ("A", "B"):
        c, r = compiled.venues[name], reference.venues[name]
        assert c.trades.tobytes() == r.trades.tobytes(), name
        assert c.forced_orders.tobytes() == r.forced_orders.tobytes(), name
        assert c.series.tobytes() == r.series.tobytes(), name
        assert c.funding.tobytes() == r.funding.tobytes(), name
    assert len(compiled.venues["B"].funding) and len(compiled.venues["A"].forced_orders)
    assert len(compiled.venues["B"].forced_orders)
    assert compiled.venues["A"].summary["flows"][0]["sent"] > 0


def test_the_example_prints_b_under_each_market_maker(capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "two_venues_agents.py"
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    assert done.value.code == 0
    rows = {line[:28].strip(): line[28:].split() for line in
            capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"no market maker on B", "B's maker stays", "B's maker pulls its quotes"}
    liquidated = {name: int(row[0]) for name, row in rows.items()}
    assert liquidated["B's maker pulls its quotes"] > liquidated["B's maker stays"]
