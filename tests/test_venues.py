"""Venue presets (orderbook.venues): each against its venue's published worked example.

Every expected number is the venue's own (docs/venues.md, tagged there with its source) or our
arithmetic from the venue's published rule, shown in the comments. Each engine test runs on both
engines (the ``engine_cls`` fixture).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from orderbook import (
    AdlRanking,
    Deficit,
    ForcedKind,
    InertSettingWarning,
    LimitRule,
    MarginBasis,
    MarkRule,
    Rules,
    Scenario,
    Sizing,
    Trigger,
    compare,
    default_scenario,
    run,
    venues,
)
from orderbook._market import engine_settings
from orderbook.cli import main
from orderbook.config import ConfigError, loads_scenario
from orderbook.testing import check_accounts

LP = 100   # an exempt liquidity provider on the other side of every seeded position


@pytest.fixture
def run_cli(capsys):
    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def usdt_scenario(tick="0.01", lot="1", quote="0.01", mid=10_000_000) -> Scenario:
    """A scenario whose units make the worked examples exact (k = 1 when quote = tick x lot)."""
    base = default_scenario()
    return replace(base, tick_size=tick, lot_size=lot, quote_unit=quote,
                   book=replace(base.book, mid=mid))


def engine(engine_cls, scenario, rules, **overrides):
    """An engine of ``scenario``'s units under ``rules`` (as a scenario run builds it), with an
    exempt liquidity provider and the mark on the index."""
    kw = {**engine_settings(rules), "mark_rule": MarkRule.INDEX, **overrides}
    eng = engine_cls(scenario.tick_size, scenario.lot_size, scenario.quote_unit, **kw)
    eng.add_account(LP, 10**15, exempt=True)
    return eng


def long_over_bids(eng, collateral, lots, bid_lots, entry=100_000, mark=99_000):
    """Account 1 long ``lots`` at ``entry`` with ``collateral``, ``bid_lots`` bid at ``mark``
    by the liquidity provider, and the index (the mark) at ``mark``."""
    eng.add_account(1, collateral)
    eng.seed_position(1, LP, entry, lots)
    eng.limit(1, 1, mark, bid_lots, LP)   # side 1 = buy
    eng.set_index(mark)
    return eng


# ----------------------------------------------------------------------------- the presets
def test_names_are_the_documented_venues():
    assert venues.names() == ("binance", "bitmex", "bybit", "hyperliquid", "dydx", "deribit",
                              "okx")


@pytest.mark.parametrize("name", venues.names())
def test_each_preset_is_valid_rules_in_any_units(name):
    for scenario in (default_scenario(), usdt_scenario(), usdt_scenario("0.5", "0.01", None)):
        rules = venues.rules(name, scenario)
        assert isinstance(rules, Rules)
        venue = venues.VENUES[name]
        for field in venue.kept:       # unsourced: the scenario's own value
            assert getattr(rules, field) == getattr(scenario.rules, field), field
        for field, value in venue.settings.items():
            if field not in venues._MONEY:   # money: converted to quote units
                assert getattr(rules, field) == value, field


def test_unknown_or_repeated_venue_is_refused():
    with pytest.raises(KeyError, match="unknown venue 'nasdaq'; choose from binance, bitmex"):
        venues.rules("nasdaq")
    with pytest.raises(TypeError, match="venue must be a name"):
        venues.rules(3)
    with pytest.raises(ValueError, match="'okx' is given twice"):
        venues.rule_sets(["okx", "OKX"])
    with pytest.raises(ValueError, match="no venues given"):
        venues.rule_sets([])
    assert list(venues.rule_sets(None)) == list(venues.names())


def test_money_and_base_caps_follow_the_scenario_units():
    # Hyperliquid's 100k USDC threshold and 150M USDC tier cap: at 0.0001 per quote unit
    # (tick 0.1 x lot 0.001) 10**9 and 1.5 x 10**12 units; at 0.01, 10**7 and 1.5 x 10**10.
    hl = venues.rules("hyperliquid")
    assert hl.fraction_above == 10**9 and hl.tiers[0][0] == 15 * 10**11
    hl = venues.rules("hyperliquid", usdt_scenario())
    assert hl.fraction_above == 10**7 and hl.tiers[0][0] == 15 * 10**9
    # BitMEX's 200 XBT first risk limit at the built-in mid 100,000: 20M USDT = 2 x 10**11 units.
    assert venues.rules("bitmex").tiers[0] == (2 * 10**11, 5_000, 10_000)


# ----------------------------------------------------------------------- worked examples
def test_binance_bn1_liquidation_price_25_100_40(engine_cls):
    # BN-1 [BN9]: wallet 500 USDT, long 0.02 BTC at 50,000 (1,000 USDT at 20x), bracket 1 (MMR
    # 0.4 %), E <= MM on the mark notional: LP = (500 - 1,000) / (0.02 (0.004 - 1)) = 25,100.4016.
    # Units: tick 0.01, lot 0.001, quote unit 0.00001 (k = 1): 20 lots, entry 5,000,000 ticks,
    # E = 20P - 50,000,000, MM = ceil(0.08 P). P = 2,510,040: E = 200,800 <= MM = 200,804;
    # P = 2,510,041: E = 200,820 > 200,804. So 2,510,040 ticks = 25,100.40 USDT.
    scenario = usdt_scenario("0.01", "0.001", "0.00001", mid=5_000_000)
    rules = venues.rules("binance", scenario)
    assert (rules.trigger, rules.mm_basis) == (Trigger.AT_OR_BELOW, MarginBasis.MARK)
    eng = engine(engine_cls, scenario, rules)
    eng.add_account(1, 50_000_000)
    eng.seed_position(1, LP, 5_000_000, 20)
    eng.set_index(5_000_000)
    assert eng.account(1).liquidation_price == 2_510_040


def test_bitmex_bm1_liquidation_510_bankruptcy_500(engine_cls):
    # BM-1 [BM6]: wallet 10,000 USDT, long 20 ETHUSDT at 1,000, MM 1 % of the entry value
    # (200 USDT): E = 10,000 + 20 (P - 1,000) = 200 at P = 510, 0 at 500. The preset's
    # conventions (E <= MM, MM on entry) with the example's own ETH tier (MM 1 %, IM 2 %).
    scenario = usdt_scenario()
    rules = replace(venues.rules("bitmex", scenario), tiers=((None, 10_000, 20_000),))
    eng = engine(engine_cls, scenario, rules)
    eng.add_account(1, 1_000_000)
    eng.seed_position(1, LP, 100_000, 20)
    eng.set_index(100_000)
    a = eng.account(1)
    assert (a.liquidation_price, a.bankruptcy_price) == (51_000, 50_000)
    assert (a.maintenance_margin, a.initial_margin) == (20_000, 40_000)


def test_bybit_by1_by2_isolated_prices(engine_cls):
    # BY-1 [BY2]: long 1 BTC at 10,000, 50x (margin 200 USDT), tier 1 MMR 0.5 % of the entry
    # value: 10,000 x (1 - 2 % + 0.5 %) = 9,850; short 1 BTC at 8,000, 40x (margin 200):
    # 8,000 x (1 + 2.5 % - 0.5 %) = 8,160. BY-2 [BY10]: the long's bankruptcy price
    # 10,000 x (1 - 2 %) = 9,800. Units: tick 0.01, lot 1, quote unit 0.01.
    scenario = usdt_scenario()
    rules = venues.rules("bybit", scenario)
    assert rules.tiers[0] == (2 * 10**8, 5_000, 10_000)
    for side, entry, liq in ((+1, 1_000_000, 985_000), (-1, 800_000, 816_000)):
        eng = engine(engine_cls, scenario, rules)
        eng.add_account(1, 20_000, isolated_margin=20_000)
        if side > 0:
            eng.seed_position(1, LP, entry, 1)
        else:
            eng.seed_position(LP, 1, entry, 1)
        eng.set_index(entry)
        a = eng.account(1)
        assert a.liquidation_price == liq
        if side > 0:
            assert a.bankruptcy_price == 980_000


def test_hyperliquid_liquidation_price_follows_its_formula(engine_cls):
    # [HL7]: liq = price - side x margin_available / size / (1 - l x side), l = 1 / maintenance
    # leverage. Long 1 BTC at 100,000 with 5,000 USDC, tier 1 MMR 1.25 %: margin available
    # 5,000 - 1,250 = 3,750, liq = 100,000 - 3,750 / 0.9875 = 96,202.5316. E < MM: in units
    # of 0.01 (lot 1, tick 0.01) E = P - 9,500,000 and MM = ceil(0.0125 P); P = 9,620,253:
    # E = 120,253 < 120,254; P = 9,620,254: E = 120,254 = MM. So 9,620,253 = 96,202.53.
    scenario = usdt_scenario()
    rules = venues.rules("hyperliquid", scenario)
    eng = engine(engine_cls, scenario, rules)
    eng.add_account(1, 500_000)
    eng.seed_position(1, LP, 10_000_000, 1)
    eng.set_index(10_000_000)
    assert eng.account(1).liquidation_price == 9_620_253


def _hyperliquid_victim(engine_cls, collateral, lots):
    # Long `lots` lots of 0.01 BTC (lot "0.01") at 100,000 with `collateral` units of 0.01
    # USDC (k = 1 with tick 1): notional 1,000 x lots USDC; bids for all of it at 98,900.
    scenario = usdt_scenario("1", "0.01", "0.01", mid=100_000)
    rules = venues.rules("hyperliquid", scenario)
    eng = engine(engine_cls, scenario, rules, insurance_fund=10**12)
    eng.add_account(1, collateral)
    eng.seed_position(1, LP, 100_000, lots)
    eng.limit(1, 1, 98_900, 10 * lots, LP)   # side 1 = buy
    return eng


def test_hyperliquid_sends_20_percent_above_100k_then_the_whole_position(engine_cls):
    # 200 lots = 200,000 USDC at entry (over the 100k threshold). At the mark 99,000 the value
    # is 19,800,000 units (198,000 USDC), MM = ceil(1.25 % of it) = 247,500; with collateral
    # 400,000 E = 400,000 - 200,000 = 200,000 < MM and >= 2/3 MM = 165,000: the book, 20 % =
    # 40 lots, sold at 98,900 (loss 44,000; forced orders pay no taker fee, the preset no
    # liquidation fee). Then E = 356,000 - 160,000 = 196,000 < MM = ceil(1.25 % of 15,840,000)
    # = 198,000 and above 2/3 of it: in its cooldown the next order is the whole rest, 160 lots.
    eng = _hyperliquid_victim(engine_cls, 400_000, 200)
    eng.set_index(99_000)
    records = eng.liquidate(max_rounds=1)
    assert [(int(r["kind"]), int(r["qty"])) for r in records] == [(ForcedKind.ORDER, 40)]
    eng.set_index(99_000)
    records = eng.liquidate(max_rounds=1)
    assert [(int(r["kind"]), int(r["qty"])) for r in records] == [(ForcedKind.ORDER, 160)]
    check_accounts(eng)


def test_hyperliquid_cooldown_lasts_30_seconds_on_the_engine_clock(engine_cls):
    # The partial step (40 of 200 lots) at t = 5,000 ms opens the window to 35,000 inclusive:
    # there the next order is the whole 160; a millisecond later it is the fraction again,
    # ceil(20 % of 160) = 32 (158,400 USDC at the mark, still over the 100k threshold).
    eng = _hyperliquid_victim(engine_cls, 400_000, 200)
    assert (eng.cooldown_ms, eng.cooldown_rounds) == (30_000, 0)
    eng.set_index(99_000)
    eng.advance_to(5_000)
    assert [int(r["qty"]) for r in eng.liquidate(max_rounds=1)] == [40]
    inside = eng.copy()
    inside.advance_to(35_000)
    assert [int(r["qty"]) for r in inside.liquidate(max_rounds=1)] == [160]
    eng.advance_to(35_001)
    assert [int(r["qty"]) for r in eng.liquidate(max_rounds=1)] == [32]
    check_accounts(eng)


def test_hyperliquid_closes_positions_up_to_100k_whole(engine_cls):
    # 100 lots: 99,000 USDC at the mark 99,000, not over the threshold: one order for all 100.
    # MM = ceil(1.25 % of 9,900,000) = 123,750; collateral 200,000: E = 100,000 < MM, >= 82,500.
    eng = _hyperliquid_victim(engine_cls, 200_000, 100)
    eng.set_index(99_000)
    records = eng.liquidate(max_rounds=1)
    assert [(int(r["kind"]), int(r["qty"])) for r in records] == [(ForcedKind.ORDER, 100)]


def test_hyperliquid_takes_over_below_two_thirds_of_maintenance(engine_cls):
    # 200 lots, collateral 360,000: at 99,000 E = 160,000 < 2/3 x 247,500 = 165,000 (exactly:
    # 10**6 x 160,000 < 666,667 x 247,500): no order to the book, the whole position goes to
    # the vault (here the insurance fund; the scenario has no backstop account).
    eng = _hyperliquid_victim(engine_cls, 360_000, 200)
    eng.set_index(99_000)
    records = eng.liquidate(max_rounds=1)
    assert [(int(r["kind"]), int(r["qty"])) for r in records] == [
        (ForcedKind.FUND_TAKEOVER, 200)]
    assert eng.account(1).position == 0
    check_accounts(eng)


def test_dydx_dy1_isolated_liquidation_price(engine_cls):
    # DY-1 [DY10]: deposit 1,000, short 3 ETH at 3,000, MMF 5 %: p' = (e - s p) / (|s| MMF - s)
    # = 10,000 / 3.15 = 3,174.6032. E < MM on the mark: 10,000 - 3P < 0.15 P from P >
    # 3,174.6032, so the first liquidatable tick is 3,174.61 (317,461). The preset's
    # conventions with the example's own tier (MM 5 %).
    scenario = usdt_scenario()
    rules = replace(venues.rules("dydx", scenario), tiers=((None, 50_000, 100_000),))
    eng = engine(engine_cls, scenario, rules)
    eng.add_account(1, 100_000)
    eng.seed_position(LP, 1, 300_000, 3)
    eng.set_index(300_000)
    assert eng.account(1).liquidation_price == 317_461


def test_deribit_dr2_margins_at_100k(engine_cls):
    # DR-2 [DR2], BTC at 100,000: MM at 25 BTC = 1 % + 25 x 0.005 % = 1.125 % -> 28,125 USDC;
    # IM at 25 BTC 2.125 % -> 53,125 USDC; IM at 350 BTC 3.75 % -> 1,312,500 USDC. The preset's
    # brackets are exact at those sizes. Units of the built-in scenario: 0.0001 USDC.
    scenario = default_scenario()
    rules = venues.rules("deribit", scenario)
    eng = engine(engine_cls, scenario, rules)
    for owner, lots in ((1, 25_000), (2, 350_000)):
        eng.add_account(owner, 10**13)
        eng.seed_position(owner, LP, 1_000_000, lots)
    eng.set_index(1_000_000)
    assert eng.account(1).maintenance_margin == 281_250_000
    assert eng.account(1).initial_margin == 531_250_000
    assert eng.account(2).initial_margin == 13_125_000_000


def test_deribit_liquidates_in_steps_of_2000_until_safe(engine_cls):
    # Steps of 2,000 USDC of notional [DR4]; units: tick 1 USDC, lot 0.01 BTC, quote unit 0.01
    # USDC (k = 1), so 200,000 units, floor(200,000 / 99,000) = 2 lots a step at the mark
    # 99,000. Long 100 lots at 100,000 with 205,000: value 9,900,000, MM at 1.125 % (the first
    # bracket) = 111,375, E = 105,000 < MM. Each step sells 2 lots at the mark (bids there)
    # and pays the 0.75 % fee, 1,485: after n steps E = 105,000 - 1,485 n and MM =
    # ceil(111,375 - 2,227.5 n). n = 8: 93,120 < 93,555; n = 9: 91,635 >= 91,328: 9 steps.
    scenario = usdt_scenario("1", "0.01", "0.01", mid=100_000)
    rules = venues.rules("deribit", scenario)
    assert (rules.sizing, rules.increment) == (Sizing.INCREMENTAL, 200_000)
    eng = long_over_bids(engine(engine_cls, scenario, rules), 205_000, 100, 1_000)
    records = eng.liquidate(max_rounds=1)
    assert [(int(r["qty"]), int(r["filled"]), int(r["fee"])) for r in records] == [
        (2, 2, 1_485)] * 9
    assert eng.account(1).position == 82 and eng.queue() == []
    check_accounts(eng)


def test_okx_steps_down_one_tier_per_round(engine_cls):
    # OKX publishes no BTC table: the scenario's tiers (cap 200,000 and 2,000,000 USDT at
    # 0.4 % / 1 % / 2.5 %). A long of 2,500 lots of 0.001 BTC... in units of the built-in
    # scenario; simpler here: lot 1 BTC, tick 1, quote unit 1 USDT, caps 200,000 / 2,000,000.
    # Long 30 BTC at 100,000 (3,000,000: tier 3) with collateral 50,000; at the mark 99,000
    # the value is 2,970,000 (tier 3), MM = 2.5 % x 2,970,000 - D3 (D2 = 200,000 x 0.6 % =
    # 1,200; D3 = 1,200 + 2,000,000 x 1.5 % = 31,200) = 43,050; E = 50,000 - 30,000 = 20,000
    # <= MM. Step: keep floor(2,000,000 / 99,000) = 20 BTC, close 10.
    scenario = usdt_scenario("1", "1", "1", mid=100_000)
    rules = venues.rules("okx", scenario)
    assert rules.tiers == scenario.rules.tiers and rules.sizing == Sizing.TIER_STEP
    rules = replace(rules, tiers=((200_000, 4_000, 8_000), (2_000_000, 10_000, 20_000),
                                  (None, 25_000, 50_000)))
    eng = long_over_bids(engine(engine_cls, scenario, rules), 50_000, 30, 100)
    records = eng.liquidate(max_rounds=1)
    assert [int(r["qty"]) for r in records] == [10]


def test_presets_set_the_documented_conventions():
    table = {name: venues.rules(name) for name in venues.names()}
    assert table["binance"].adl_ranking == AdlRanking.BINANCE
    assert table["bitmex"].mm_basis == MarginBasis.ENTRY
    assert table["hyperliquid"].limit_rule == LimitRule.MARKET
    assert table["hyperliquid"].takeover_below_ppm == 666_667
    assert table["dydx"].limit_rule == LimitRule.BAND and table["dydx"].band_ppm == 18_000
    assert table["deribit"].deficit == Deficit.SOCIALIZE
    assert all(r.liquidator for r in table.values())


# --------------------------------------------------------------- Python, TOML and the CLI
def test_compare_runs_the_presets_on_the_built_in_scenario():
    scenario = default_scenario(scale=0.02)
    comparison = compare(venues.rule_sets(["binance", "hyperliquid", "deribit"], scenario),
                         scenario, counterfactual=False)
    rows = {row["rules"]: row for row in comparison.table}
    assert list(rows) == ["binance", "hyperliquid", "deribit"]
    kinds = {name: {ForcedKind(k).name for k in result.forced_orders["kind"].tolist()}
             for name, result in comparison.results.items()}
    # Binance: bankruptcy-price IOCs, the rest taken over by the fund; Hyperliquid: market
    # orders, and the vault (the fund here) below 2/3 of MM; Deribit: orders only, the loss
    # beyond the fund socialised.
    assert kinds["binance"] <= {"ORDER", "FUND_TAKEOVER", "ADL", "SHORTFALL"}
    assert {"ORDER", "FUND_TAKEOVER"} <= kinds["hyperliquid"]
    assert "FUND_TAKEOVER" not in kinds["deribit"] and "ORDER" in kinds["deribit"]
    assert all(row["liquidated_accounts"] > 0 and not row["static_mark"]
               for row in rows.values())


def test_an_index_mark_that_cannot_move_is_flagged():
    # dYdX marks at the oracle (INDEX); with no index path the shock moves only the book.
    scenario = default_scenario(scale=0.02)
    rules = venues.rules("dydx", scenario)
    with pytest.warns(InertSettingWarning, match="the mark stays where it starts"):
        result = run(replace(scenario, rules=rules), counterfactual=False)
    assert result.summary["static_mark"] and result.summary["liquidated_accounts"] == 0
    # an index path that falls 4 % moves it, and the flag is down
    path = tuple(1_000_000 - 4_000 * min(step, 10) for step in range(scenario.steps))
    moved = replace(scenario, rules=rules, shock=replace(scenario.shock, index_path=path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InertSettingWarning)
        result = run(moved, counterfactual=False)
    assert not result.summary["static_mark"] and result.summary["liquidated_accounts"] > 0


def test_toml_venue_key_starts_from_the_preset():
    scenario = loads_scenario('[rules]\nvenue = "dydx"\nband_ppm = 20000\n')
    expected = replace(venues.rules("dydx"), band_ppm=20_000)
    assert scenario.rules == expected
    with pytest.raises(ConfigError, match=r"\[rules\] venue = 'cme': unknown venue"):
        loads_scenario('[rules]\nvenue = "cme"\n')
    with pytest.raises(ConfigError, match=r"\[rules\] venue = 5: venue must be a name"):
        loads_scenario('[rules]\nvenue = 5\n')


def test_toml_venue_uses_the_file_units():
    text = ('tick_size = "0.01"\nlot_size = "1"\nquote_unit = "0.01"\n'
            '[rules]\nvenue = "hyperliquid"\n')
    assert loads_scenario(text).rules.fraction_above == 10**7


def test_cli_compare_venues(run_cli):
    code, out, err = run_cli("compare", "--venues", "binance,okx", "--scale", "0.02",
                             "--no-counterfactual", "--json")
    assert code == 0, err
    assert [row["rules"] for row in json.loads(out)] == ["binance", "okx"]
    code, out, err = run_cli("compare", "--venues", "dydx,deribit", "--scale", "0.02",
                             "--no-counterfactual")
    assert code == 0, err
    assert "  dydx: mark INDEX, sizing FULL, limit BAND 1.8%" in out
    assert "dydx (mark fixed)" in out and "deribit (mark fixed)" not in out
    assert "warning: rules 'dydx': rules.mark_rule follows the index alone" in err
    code, out, err = run_cli("compare", "--venues", "binance,ftx", "--scale", "0.02")
    assert code != 0 and "--venues: unknown venue 'ftx'" in err
    rules = str(Path(__file__).resolve().parent.parent / "examples" / "rules_full.toml")
    code, out, err = run_cli("compare", "--venues", "all", "--rules", rules)
    assert code != 0 and "give --rules or --venues, not both" in err


def test_cli_run_venue(run_cli):
    code, out, err = run_cli("run", "--venue", "bybit", "--scale", "0.02", "--no-counterfactual")
    assert code == 0, err
    assert "with bybit's rules" in out


def test_bitmex_fair_price_follows_the_funding_basis_path():
    # BitMEX marks at index x (1 + funding basis): with neither path the mark cannot move;
    # a basis falling to -3 % over ten steps moves it (the index stays at the starting mid).
    scenario = default_scenario(scale=0.02)
    rules = venues.rules("bitmex", scenario)
    assert rules.mark_rule == MarkRule.FAIR
    with pytest.warns(InertSettingWarning):
        still = run(replace(scenario, rules=rules), counterfactual=False)
    assert still.summary["static_mark"] and still.summary["liquidated_accounts"] == 0
    path = tuple(-3_000 * min(step, 10) for step in range(12))
    moved = replace(scenario, rules=rules,
                    shock=replace(scenario.shock, funding_basis_path=path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InertSettingWarning)
        result = run(moved, counterfactual=False)
    assert result.series["mark"][-1] == 970_000      # 1,000,000 x (1 - 3 %)
    assert not result.summary["static_mark"] and result.summary["liquidated_accounts"] > 0


def test_toml_funding_basis_path():
    scenario = loads_scenario('[shock]\nfunding_basis_path = [0, -10_000, -20_000]\n')
    assert scenario.shock.funding_basis_path == (0, -10_000, -20_000)
    with pytest.raises(ConfigError, match=r"funding_basis_path.*600000"):
        loads_scenario('[shock]\nfunding_basis_path = [600_000]\n')


def test_caps_in_coin_on_an_inverse_venue_are_that_many_coins():
    """On an inverse venue money is the coin: BitMEX's 200 XBT risk limit is 200 XBT of
    quote units (satoshi here), not 200 XBT valued in USD and read as satoshi."""
    from dataclasses import replace as _replace
    from decimal import Decimal as _Decimal

    from orderbook import Settlement
    from orderbook import default_scenario as _default

    s = _replace(_default(), settlement=Settlement.INVERSE, contract_value="1",
                 tick_size="0.5", lot_size="1", quote_unit="0.00000001")
    rules = venues.rule_sets(["bitmex"], s)["bitmex"]
    first_cap = rules.tiers[0][0]
    assert first_cap * _Decimal(s.quote_unit) == 200
