"""Agents (orderbook.agents): the protocol, notices, margined accounts, and the built-in
market maker and value trader."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from orderbook import (
    Agent,
    EventKind,
    Liquidity,
    MarketMaker,
    Reason,
    Shock,
    Side,
    ValueTrader,
    default_scenario,
    run,
)
from orderbook._market import Market
from orderbook._settings import ConfigError
from orderbook.config import loads_scenario, scenario_from_dict, scenario_to_dict
from orderbook.events import SCENARIO_AGENTS

SMALL = 0.05


# the small runs end with accounts queued or unresolved, which warns: not what these test
pytestmark = pytest.mark.filterwarnings("ignore")


def small(**changes):
    return replace(default_scenario(SMALL), **changes)


class Seller(Agent):
    collateral = 10**12
    every_ms = 10_000

    def __init__(self, lots=500):
        self.lots = lots
        self.times = []

    def on_timer(self, view):
        self.times.append(view.time)
        view.market(Side.SELL, self.lots)


def test_an_agent_acts_on_its_timer_through_the_engine():
    agent = Seller()
    result = run(small(), agents=[agent], counterfactual=False)
    mine = result.trades["owner"] == SCENARIO_AGENTS
    assert mine.sum() > 0
    assert set(result.trade_time[mine].tolist()) <= set(range(0, 120_000, 10_000))
    (summary,) = result.summary["agents"]
    assert summary["owner"] == SCENARIO_AGENTS and summary["kind"] == "Seller"
    assert summary["position"] == -result.trades["qty"][mine].sum()
    assert agent.times == []   # the run worked on a copy


def test_runs_work_on_copies_so_two_runs_agree():
    agent = Seller(lots=300)
    a = run(small(), agents=[agent], counterfactual=False)
    b = run(small(), agents=[agent], counterfactual=False)
    assert a.forced_orders.tobytes() == b.forced_orders.tobytes()
    assert np.array_equal(a.series["last"], b.series["last"])


def test_selling_agents_deepen_the_cascade():
    alone = run(small(), counterfactual=False).summary["liquidated_accounts"]
    pushed = run(small(), agents=[Seller(lots=800)], counterfactual=False)
    assert pushed.summary["liquidated_accounts"] > alone


class Listener(Agent):
    subscribe = frozenset({"trade", "fill", "mark"})
    collateral = 10**12

    def __init__(self):
        self.trades, self.fills, self.marks = [], [], []

    def on_start(self, view):
        # a bid below the touch: the shock fills it
        view.limit(Side.BUY, view.book().best_bid() - 100, 50)

    def on_trade(self, view, instrument, trades):
        self.trades.append((view.time, len(trades)))

    def on_fill(self, view, instrument, fills):
        assert ((fills["owner"] == view.owner) | (fills["maker_owner"] == view.owner)).all()
        self.fills.append(int(fills["qty"].sum()))
        type(self).last = self

    def on_mark(self, view, instrument, mark):
        assert mark == view.mark(instrument)
        self.marks.append(mark)


def test_notices_bring_trades_fills_and_marks():
    result = run(small(), agents=[Listener()], counterfactual=False)
    seen = Listener.last
    assert sum(n for _, n in seen.trades) == len(result.trades) - 1   # not the first print
    assert sum(seen.fills) == 50
    assert seen.marks and seen.marks[-1] == result.series["mark"][-1]


class Gambler(Agent):
    """Buys far more than its collateral can hold through a fall."""

    collateral = 250_000
    every_ms = None

    def on_start(self, view):
        view.market(Side.BUY, 20)


def test_an_agent_is_margined_and_can_be_liquidated():
    result = run(small(), agents=[Gambler()], counterfactual=False)
    (summary,) = result.summary["agents"]
    assert summary["liquidated"]
    assert (result.forced_orders["owner"] == SCENARIO_AGENTS).any()


def test_an_exempt_agent_is_never_liquidated():
    rich = type("Rich", (Gambler,), {"exempt": True})
    (summary,) = run(small(), agents=[rich()], counterfactual=False).summary["agents"]
    assert not summary["liquidated"]


class Clumsy(Agent):
    every_ms = 50_000

    def on_timer(self, view):
        events = view.limit(Side.BUY, view.book().best_bid(), 10**6)
        assert events[0].kind == EventKind.REJECTED
        assert events[0].reason == Reason.INSUFFICIENT_MARGIN
        with pytest.raises(KeyError, match="not a resting order of agent"):
            view.cancel(1)
        type(self).done = True


def test_a_refused_order_comes_back_rejected_and_another_order_cannot_be_cancelled():
    Clumsy.done = False
    run(small(), agents=[Clumsy()], counterfactual=False)
    assert Clumsy.done


class PingPong(Agent):
    """Two of these answer every trade with another one, forever."""

    collateral = 10**12
    exempt = True
    subscribe = frozenset({"trade"})
    every_ms = 50_000

    def on_timer(self, view):
        view.limit(Side.BUY, view.book().last_price, 1)
        view.market(Side.SELL, 1)

    def on_trade(self, view, instrument, trades):
        self.on_timer(view)


def test_agents_that_never_stop_trading_stop_the_run():
    with pytest.raises(RuntimeError, match="never lets the clock move"):
        run(small(), agents=[PingPong()], counterfactual=False)


def test_a_bad_agent_is_refused_naming_it():
    bad = type("Bad", (Agent,), {"subscribe": frozenset({"news"})})
    with pytest.raises(ValueError, match="subscribe must be a subset"):
        run(small(), agents=[bad()], counterfactual=False)
    bad = type("Bad", (Agent,), {"every_ms": 0})
    with pytest.raises(ValueError, match="every_ms must be an integer >= 1"):
        run(small(), agents=[bad()], counterfactual=False)


# ------------------------------------------------------------------------ value trader
def test_the_value_trader_trades_as_the_scenario_recovery_does():
    quiet = small(rules=replace(default_scenario().rules, liquidator=False),
                  liquidity=replace(default_scenario(SMALL).liquidity, recovery_rate=0))
    recovery = replace(quiet, liquidity=replace(quiet.liquidity, recovery_rate=300,
                                                recovery_half_life=4.0, recovery_delay=3))
    agent = ValueTrader(exempt=True, max_lots=300, half_life_ms=4_000, delay_ms=3_000,
                        fair_price=Market(quiet).mid0)
    a = run(recovery)
    b = run(quiet, agents=[agent])
    assert np.array_equal(a.series["last"], b.series["last"])
    assert a.series["last"][-1] > a.series["last"][1]


# ------------------------------------------------------------------------ market maker
def thin(**changes):
    """The built-in scenario without the refill, sold at 10 s: the market maker's book."""
    return small(liquidity=Liquidity(half_life=0.0),
                 shock=Shock(orders=((10, Side.SELL, 600),)), **changes)


MAKER = dict(level_lots=5, levels=40, level_step_ticks=50, half_spread_ticks=50)


def test_the_market_maker_quotes_around_the_last_price():
    class Look(Agent):
        every_ms = 500

        def on_timer(self, view):
            if view.time == 500:
                book = view.book()
                quotes = [book.order(o) for o in book.orders_of(SCENARIO_AGENTS)]
                type(self).seen = (book.last_price, sorted(
                    (int(q.side), q.price, q.qty) for q in quotes))
    run(thin(), agents=[MarketMaker(**MAKER), Look()], counterfactual=False)
    last, quotes = Look.seen
    step, half, lots = MAKER["level_step_ticks"], MAKER["half_spread_ticks"], MAKER["level_lots"]
    bids = sorted((Side.BUY, last - half - k * step, lots)
                  for k in range(MAKER["levels"]))
    asks = sorted((Side.SELL, last + half + k * step, lots) for k in range(MAKER["levels"]))
    assert quotes == sorted([(int(s), p, q) for s, p, q in asks + bids])


def test_the_market_maker_around_the_mid_quotes_around_the_others_mid():
    class Look(Agent):
        every_ms = 500

        def on_timer(self, view):
            if view.time == 500:
                rows = view.book().l3()
                others = rows[rows["owner"] != SCENARIO_AGENTS]
                bid = others["price"][others["side"] == Side.BUY].max()
                ask = others["price"][others["side"] == Side.SELL].min()
                mine = rows[rows["owner"] == SCENARIO_AGENTS]
                type(self).seen = (int(bid + ask) // 2, sorted(
                    (int(q["side"]), int(q["price"]), int(q["qty"])) for q in mine))
    run(thin(), agents=[MarketMaker(**MAKER, around="mid"), Look()], counterfactual=False)
    mid, quotes = Look.seen
    step, half, lots = MAKER["level_step_ticks"], MAKER["half_spread_ticks"], MAKER["level_lots"]
    expected = ([(int(Side.BUY), mid - half - k * step, lots) for k in range(MAKER["levels"])]
                + [(int(Side.SELL), mid + half + k * step, lots)
                   for k in range(MAKER["levels"])])
    assert quotes == sorted(expected)
    with pytest.raises(ValueError, match="around = 'middle' is not one of last, mid"):
        MarketMaker(around="middle")


def test_the_market_maker_withdraws_under_stress_and_the_cascade_deepens():
    stays = run(thin(), agents=[MarketMaker(**MAKER)], counterfactual=False)
    pulls = run(thin(), agents=[MarketMaker(**MAKER, withdraw_ppm=2_000, calm_ms=30_000)],
                counterfactual=False)
    assert pulls.summary["liquidated_accounts"] > stays.summary["liquidated_accounts"]
    assert pulls.summary["max_drawdown_pct"] > stays.summary["max_drawdown_pct"]


def test_the_market_maker_comes_back_when_calm_returns():
    class Watch(MarketMaker):
        def on_timer(self, view):
            super().on_timer(view)
            type(self).log = list(self.withdrawals)
            if not self._quoting:
                assert not view.orders()
    Watch.__init__ = MarketMaker.__init__
    run(thin(), agents=[Watch(**MAKER, withdraw_ppm=2_000, calm_ms=20_000)],
        counterfactual=False)
    states = [quoting for _, quoting in Watch.log]
    assert states[:2] == [False, True]
    out, back = Watch.log[0][0], Watch.log[1][0]
    assert back - out >= 20_000


def test_the_market_maker_keeps_within_its_inventory():
    result = run(thin(), agents=[MarketMaker(**{**MAKER, "max_inventory": 60})],
                 counterfactual=False)
    (summary,) = result.summary["agents"]
    assert 0 < summary["position"] <= 60


def test_the_market_maker_stops_at_its_loss_limit():
    result = run(thin(), agents=[MarketMaker(**MAKER, max_loss=1)], counterfactual=False)
    free = run(thin(), agents=[MarketMaker(**MAKER)], counterfactual=False)
    assert result.summary["agents"][0]["position"] < free.summary["agents"][0]["position"]


@pytest.mark.parametrize("field, value, error", [
    ("levels", 0, ValueError), ("level_lots", -1, ValueError), ("every_ms", 1.5, TypeError),
    ("withdraw_ppm", 0, ValueError)])
def test_a_bad_market_maker_setting_is_refused_naming_it(field, value, error):
    with pytest.raises(error, match=f"MarketMaker {field} = "):
        MarketMaker(**{field: value})
    with pytest.raises(ValueError, match="resume_ppm = 5 needs a withdraw_ppm"):
        MarketMaker(resume_ppm=5)


def test_agents_go_through_a_scenario_file():
    s = loads_scenario('[[agents]]\nkind = "market_maker"\nlevels = 3\nwithdraw_ppm = 900\n'
                       '[[agents]]\nkind = "value_trader"\nmax_lots = 7\n')
    assert s.agents == (MarketMaker(levels=3, withdraw_ppm=900), ValueTrader(max_lots=7))
    assert scenario_from_dict(scenario_to_dict(s)) == s
    with pytest.raises(ConfigError, match=r"\[agents\[0\]\] kind = 'hft'"):
        loads_scenario('[[agents]]\nkind = "hft"\n')
    with pytest.raises(ConfigError, match=r"agents\[0\].*levels = 0"):
        loads_scenario('[[agents]]\nkind = "market_maker"\nlevels = 0\n')
    with pytest.raises(ConfigError, match="Seller is not a built-in agent"):
        scenario_to_dict(replace(s, agents=(Seller(),)))


def test_agents_held_by_the_scenario_act_in_every_run():
    s = small(agents=(MarketMaker(**MAKER),))
    a = run(s, counterfactual=False)
    b = run(small(), agents=[MarketMaker(**MAKER)], counterfactual=False)
    assert a.forced_orders.tobytes() == b.forced_orders.tobytes()
    assert copy.deepcopy(s) == s


def test_the_market_maker_example_shows_the_pull_deepening_the_cascade(capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "market_maker.py"
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    assert done.value.code == 0
    rows = {line[:32].strip(): line[32:].split() for line in
            capsys.readouterr().out.splitlines()[1:]}
    stays, pulls = rows["market maker stays"], rows["market maker pulls its quotes"]
    assert int(pulls[0]) > int(stays[0]) and float(pulls[1]) > float(stays[1])


def test_agents_and_flows_give_the_same_events_on_the_reference_engine():
    """The differential check of agents' and flows' orders: the same scenario on the compiled
    engine and on the pure-Python reference gives the same trades, records and series."""
    from orderbook import Clock, Flow
    from orderbook.flows import HawkesFlow, OrderSize, PoissonFlow

    s = replace(thin(), steps=30, clock=Clock(liquidator_ms=250),
                population=replace(default_scenario(0.02).population),
                flows=(Flow(PoissonFlow(limit_rate_per_s=10, market_rate_per_s=1,
                                        limit_size=OrderSize(2), market_size=OrderSize(2))),
                       Flow(HawkesFlow(size=OrderSize(3), excite_per_forced_lot=0.02))),
                agents=(MarketMaker(**MAKER, withdraw_ppm=2_000, calm_ms=5_000),
                        ValueTrader(max_lots=20, delay_ms=15_000)))
    compiled = run(s, counterfactual=False)
    reference = run(replace(s, engine="reference"), counterfactual=False)
    assert compiled.summary["liquidated_accounts"] > 0
    assert compiled.trades.tobytes() == reference.trades.tobytes()
    assert compiled.forced_orders.tobytes() == reference.forced_orders.tobytes()
    assert compiled.series.tobytes() == reference.series.tobytes()
    assert compiled.summary["agents"] == reference.summary["agents"]


# ------------------------------------------------------------------ funding arbitrageur
def test_the_funding_arbitrageur_buys_the_discount_after_a_fall():
    from orderbook import Funding, FundingArbitrageur

    s = small(funding=Funding(venue="binance", interval_ms=10_000, sample_ms=1_000))
    alone = run(s, counterfactual=False)
    arb = FundingArbitrageur(lots_per_step=50, max_position=1_000)
    result = run(s, agents=[arb], counterfactual=False)
    (summary,) = result.summary["agents"]
    # under the index after the fall: it bought, within its limit, and paid for itself
    assert 0 < summary["position"] <= 1_000
    assert result.summary["liquidated_accounts"] < alone.summary["liquidated_accounts"]
    mine = result.trades["owner"] == summary["owner"]
    sides = result.trades["side"][mine]
    # it bought first; what it sold later was its unwinding as the price came back
    assert sides[0] == Side.BUY and sides.sum() > 0


def test_the_funding_arbitrageur_sells_a_premium_and_unwinds_when_it_closes():
    from orderbook import FundingArbitrageur

    class Seen(Agent):
        every_ms = 1_000

        def on_timer(self, view):
            type(self).index = view.index()

    # a buy shock lifts the mark over the starting mid: it sells
    s = small(shock=Shock(buy=1_500))
    arb = FundingArbitrageur(lots_per_step=20, max_position=200, enter_ppm=1_000)
    result = run(s, agents=[arb, Seen()], counterfactual=False)
    mine = result.trades["owner"] == result.summary["agents"][0]["owner"]
    assert (result.trades["side"][mine] == Side.SELL).any()
    assert Seen.index == Market(s).mid0


def test_a_bad_funding_arbitrageur_is_refused_naming_it():
    from orderbook import FundingArbitrageur

    with pytest.raises(ValueError, match="exit_ppm = 600 must be below enter_ppm = 500"):
        FundingArbitrageur(enter_ppm=500, exit_ppm=600)
    assert loads_scenario('[[agents]]\nkind = "funding_arbitrageur"\nenter_ppm = 900\n'
                          ).agents == (FundingArbitrageur(enter_ppm=900),)


def _basis_scenario():
    """The spot_conversion example's perpetual (BTC) and spot book (BTCUSDT), unshocked, the
    perpetual's index 1 % under its start: its mark stands over the index, longs pay."""
    from pathlib import Path

    from orderbook import Funding
    from orderbook.config import load_scenario

    s = load_scenario(Path(__file__).resolve().parents[1] / "examples" /
                      "spot_conversion.toml")
    perp, spot = s.instruments
    perp = replace(perp, shock=replace(perp.shock, sell=0, index_path=(990_000,)))
    return replace(s, instruments=(perp, spot), steps=15,
                   funding=Funding("binance", interval_ms=5_000, sample_ms=1_000))


def test_the_hedged_funding_arbitrageur_holds_the_coin_it_is_short():
    from orderbook import FundingArbitrageur

    s = _basis_scenario()
    arb = dict(lots_per_step=50, max_position=300, collateral=10**11)
    naked = run(s, agents=[FundingArbitrageur(**arb)], counterfactual=False)
    hedged = run(s, agents=[FundingArbitrageur(**arb, hedge_instrument=1)],
                 counterfactual=False)
    (n,), (h,) = naked.summary["agents"], hedged.summary["agents"]
    assert n["position"] == h["position"] == -300
    assert n["holdings"] == {}
    units_per_lot = 10**6   # the example's asset unit: a millionth of a lot
    assert h["holdings"] == {"BTCUSDT": 300 * units_per_lot}
    spot = hedged.instrument_trades["BTCUSDT"]
    mine = spot["owner"] == h["owner"]
    assert (spot["side"][mine] == Side.BUY).all() and spot["qty"][mine].sum() == 300


@pytest.mark.parametrize("hedge, match", [
    (0, "is its instrument"),
    (5, "not a spot book of the venue"),
])
def test_a_hedge_that_is_not_a_spot_book_is_refused(hedge, match):
    from orderbook import FundingArbitrageur

    with pytest.raises(ValueError, match=f"hedge_instrument = {hedge}.*{match}|{match}"):
        run(_basis_scenario(), agents=[FundingArbitrageur(hedge_instrument=hedge)],
            counterfactual=False)
    s = loads_scenario('[[agents]]\nkind = "funding_arbitrageur"\nhedge_instrument = 1\n')
    assert s.agents == (FundingArbitrageur(hedge_instrument=1),)
