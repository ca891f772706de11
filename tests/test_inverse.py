"""Inverse (coin-margined) contracts (issue #13, step 4 of docs/market_wide.md, section 7), on
both engines.

Every expected number is computed by hand in the comments. The venue is XBTUSD-like: a contract
is 1 USD, the tick 0.5 USD, every balance in satoshi (quote_unit 1e-8 BTC), so
k = 1 / (0.5 x 1e-8) = 2 x 10**8 and q contracts at p ticks are worth V = floor(2e8 q / p) sat.
One tier: MM = ceil(0.5 % of V), IM = ceil(1 % of V).
"""

from __future__ import annotations

import copy
import math
import pickle
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from orderbook import Settlement, Side, run
from orderbook.config import ConfigError, load_scenario
from orderbook.events import ForcedKind, Instrument, MarkRule
from orderbook.margin import contract_value
from orderbook.testing import check_accounts

SAT = 10**8
K = 2 * 10**8        # sat x ticks per contract
HOUSE = 9            # exempt counterparty of every seeded position


def xbtusd(engine_cls, **kw):
    kw.setdefault("tiers", [(None, 5_000, 10_000)])
    eng = engine_cls("0.5", "1", "0.00000001", settlement=Settlement.INVERSE,
                     contract_value="1", mark_rule=MarkRule.INDEX, **kw)
    eng.add_account(HOUSE, 10**15, exempt=True)
    eng.set_index(40_000)   # 20,000 USD
    return eng


def test_the_venue_reports_its_settlement_and_k(engine_cls):
    eng = xbtusd(engine_cls)
    assert eng.settlement == Settlement.INVERSE and eng.k == K
    assert str(eng.contract_value) == "1" and str(eng.instruments[0].contract_value) == "1"
    # max_price defaults to k here (a contract at max_price is worth one satoshi)
    assert eng.max_price == K
    linear = engine_cls()
    assert linear.settlement == Settlement.LINEAR and linear.contract_value is None
    assert linear.max_price == 2**32 - 1


def test_worked_example_2_inverse_form(engine_cls):
    # Long 1,000 contracts at 20,000 USD (40,000 ticks) on 0.05 XBT: B = floor(2e11 / 40,000) =
    # 5,000,000 sat. E(m) = 5,000,000 + 5,000,000 - floor(2e11 / m), MM = ceil(V / 200).
    # At m = 20,100 ticks (10,050 USD): V = 9,950,248, E = 49,752, MM = ceil(49,751.24) =
    # 49,752: E < MM fails, safe. At 20,099: V = 9,950,743, E = 49,257 < MM 49,754.
    # So the liquidation price is 20,099 ticks, just under 10,050 USD = 1,005 / 0.1 (design
    # section 7). Bankrupt where V = 10**7: m = 20,000 ticks, 10,000 USD.
    eng = xbtusd(engine_cls)
    eng.add_account(1, 5_000_000)
    eng.seed_position(1, HOUSE, 40_000, 1_000)
    a = eng.account(1)
    assert (a.position, a.cost, a.equity) == (1_000, 5_000_000, 5_000_000)
    assert a.maintenance_margin == 25_000 and a.initial_margin == 50_000
    assert (a.liquidation_price, a.bankruptcy_price) == (20_099, 20_000)
    check_accounts(eng)
    eng.set_index(20_100)
    assert eng.account(1).equity == 49_752 and eng.account(1).maintenance_margin == 49_752
    assert len(eng.liquidate()) == 0
    eng.set_index(20_099)
    eng.liquidation_round()
    assert eng.queue() == [1]


def test_the_same_long_in_linear_form_on_coin_and_on_stablecoin_collateral():
    # The comparison of design section 7, at 1x and at 10x (the numbers the docs quote).
    # 1x: inverse 10,050 USD (above); linear with the coin as collateral (no haircut), E =
    # 0.05 m + 0.05 (m - 20,000) >= 0.005 x 0.05 m first at m = 1,000 / 0.09975 = 10,025.06;
    # on stablecoin 1,000 + 0.05 (m - 20,000) >= 0.00025 m at 2,010.05.
    # 10x (0.005 XBT, 100 USD): inverse E = 5,500,000 - 2e11 / m >= 0.005 x 2e11 / m from
    # m = 2.01e11 / 5.5e6 = 36,545.45 ticks = 18,272.7 USD; linear on coin 0.055 m - 1,000 >=
    # 0.00025 m from 18,264.8; on stablecoin 100 + 0.05 (m - 20,000) >= 0.00025 m from
    # 18,090.5. The inverse long's coin loss per tick grows as the price falls: it is
    # liquidated first.
    def inverse_edge(collateral_sat):
        # the first safe tick: 10**6 (C + B - V) >= 5,000 V, V = floor(K 1,000 / m)
        m = 1
        lo, hi = 1, K
        while lo < hi:
            m = (lo + hi) // 2
            v = contract_value(True, K, m, 1_000)
            if 10**6 * (collateral_sat + 5_000_000 - v) >= 5_000 * v:
                hi = m
            else:
                lo = m + 1
        return lo / 2   # USD

    assert inverse_edge(5_000_000) == pytest.approx(10_050, abs=0.5)
    assert inverse_edge(500_000) == pytest.approx(18_272.7, abs=0.5)
    assert 1_000 / 0.09975 == pytest.approx(10_025.06, abs=0.01)
    assert 1_000 / 0.05475 == pytest.approx(18_264.8, abs=0.1)
    assert 900 / 0.04975 == pytest.approx(18_090.5, abs=0.1)


def test_profit_is_in_the_coin_and_a_long_gains_as_the_price_rises(engine_cls):
    # Long 1,000 at 40,000 ticks (cost 5,000,000 sat), closed by selling at 44,000: it gets
    # back V = floor(2e11 / 44,000) = 4,545,454 for the contracts worth 5,000,000 at entry:
    # +454,546 sat. A short of 1,000 at 40,000 bought back at 36,000: V = 5,555,555, +555,555.
    eng = xbtusd(engine_cls, check_initial_margin=False)
    eng.add_account(1, 1_000_000)
    eng.add_account(2, 1_000_000)
    eng.seed_position(1, HOUSE, 40_000, 1_000)
    eng.seed_position(HOUSE, 2, 40_000, 1_000)
    eng.set_index(44_000)
    assert eng.account(1).equity == 1_454_546
    assert eng.account(2).equity == 1_000_000 + 4_545_454 - 5_000_000
    eng.limit(1, Side.BUY, 44_000, 1_000, HOUSE)
    eng.market(2, Side.SELL, 1_000, 1)
    assert (eng.account(1).position, eng.account(1).collateral) == (0, 1_454_546)
    eng.limit(3, Side.SELL, 36_000, 1_000, HOUSE)
    eng.market(4, Side.BUY, 1_000, 2)
    assert (eng.account(2).position, eng.account(2).collateral) == (0, 1_555_555)
    check_accounts(eng)


def test_a_fill_moves_one_value_on_both_sides_when_a_position_flips(engine_cls):
    # Account 1 long 3 at 40,000 (cost floor(6e8 / 40,000) = 15,000) sells 7 at 30,000: the
    # fill is worth V(30,000, 7) = floor(1.4e9 / 30,000) = 46,666 on both sides. Closing 3 is
    # worth V(30,000, 3) = 20,000: the long realises 15,000 - 20,000 = -5,000; the short of 4
    # opens at 46,666 - 20,000 = 26,666 (not V(30,000, 4) = 26,666.67 rounded on its own), so
    # the buyer's cost and the seller's add up to the same value and money is conserved.
    eng = xbtusd(engine_cls, check_initial_margin=False)
    eng.add_account(1, 1_000_000)
    eng.add_account(2, 1_000_000)
    eng.seed_position(1, HOUSE, 40_000, 3)
    eng.limit(1, Side.BUY, 30_000, 7, 2)
    eng.market(2, Side.SELL, 7, 1)
    a, b = eng.account(1), eng.account(2)
    assert (a.position, a.cost, a.collateral) == (-4, 26_666, 995_000)
    assert (b.position, b.cost, b.collateral) == (7, 46_666, 1_000_000)
    check_accounts(eng)


def test_fees_and_records_are_in_the_coin_with_a_harmonic_average_price(engine_cls):
    # The 10x long (500,000 sat on 1,000 contracts at 40,000) is sold into a bid of 1,000 at
    # 36,000 when the index reaches 36,500 (liquidation price 36,545, above). The fill is
    # worth floor(2e11 / 36,000) = 5,555,555 sat; avg_price = k x filled / notional =
    # 2e11 / 5,555,555 = 36,000.0036 (the fills' harmonic mean, as inverse venues report);
    # the liquidation fee 0.1 % of the value, ceil(5,555.555) = 5,556, capped by what is left:
    # 500,000 + 5,000,000 - 5,555,555 = -55,555 < 0, so no fee, and the loss goes to the fund.
    eng = xbtusd(engine_cls, liquidation_fee_ppm=1_000, insurance_fund=10**6)
    eng.add_account(1, 500_000)
    eng.seed_position(1, HOUSE, 40_000, 1_000)
    assert eng.account(1).liquidation_price == 36_545
    eng.limit(1, Side.BUY, 36_000, 1_000, HOUSE)
    eng.set_index(36_500)
    records = eng.liquidate()
    order = records[records["kind"] == int(ForcedKind.ORDER)][0]
    assert (order["filled"], order["notional"], order["fee"]) == (1_000, 5_555_555, 0)
    assert math.isclose(order["avg_price"], 2e11 / 5_555_555, rel_tol=1e-15)
    shortfall = records[records["kind"] == int(ForcedKind.SHORTFALL)][0]
    assert shortfall["fund_cover"] == 55_555
    assert eng.insurance_fund == 10**6 - 55_555
    check_accounts(eng, settled=True)


def test_trading_fees_are_charged_on_the_coin_value(engine_cls):
    # 1,000 contracts at 40,000 are worth 5,000,000 sat: taker 0.05 % = 2,500, maker 0.01 % =
    # 500.
    eng = xbtusd(engine_cls, taker_fee_ppm=500, maker_fee_ppm=100)
    eng.add_account(1, 10**7)
    eng.limit(1, Side.SELL, 40_000, 1_000, HOUSE)
    eng.market(2, Side.BUY, 1_000, 1)
    assert eng.account(1).collateral == 10**7 - 2_500
    assert eng.fees_collected == 3_000
    check_accounts(eng)


def test_the_initial_margin_check_takes_the_coin_notional_at_the_lower_price(engine_cls):
    # A buy of 1,000 at 39,000 with the mark at 40,000: the coin notional is larger at the
    # lower price, floor(2e11 / 39,000) = 5,128,205, IM 1 % = 51,283 (ceil); no open loss (a
    # buy below the mark). 51,282 sat is refused, 51,283 accepted.
    eng = xbtusd(engine_cls)
    eng.add_account(1, 51_282)
    eng.add_account(2, 51_283)
    with pytest.raises(Exception, match="margin"):
        eng.limit(1, Side.BUY, 39_000, 1_000, 1)
    eng.limit(2, Side.BUY, 39_000, 1_000, 2)
    # A buy above the mark pays its open loss: at 41,000, V = 4,878,048 against 5,000,000 at
    # the mark, loss 121,952, IM on the mark's 5,000,000 = 50,000.
    eng.add_account(3, 171_951)
    with pytest.raises(Exception, match="margin"):
        eng.limit(3, Side.BUY, 41_000, 1_000, 3)
    eng.deposit(3, 1)
    eng.limit(4, Side.BUY, 41_000, 1_000, 3)


@pytest.mark.parametrize("kw,error,match", [
    ({"contract_value": "1"}, ValueError, "contract_value .* needs settlement INVERSE"),
    ({"settlement": Settlement.INVERSE, "quote_unit": "0.00000001"}, ValueError,
     "contract_value .* is required"),
    ({"settlement": Settlement.INVERSE, "contract_value": "1"}, ValueError,
     "quote_unit .* is required"),
    ({"settlement": Settlement.INVERSE, "contract_value": "1", "quote_unit": "0.3"},
     ValueError, "must be a whole number"),
    ({"settlement": Settlement.INVERSE, "contract_value": "1", "quote_unit": "0.00000001",
      "max_price": 10**9}, ValueError, "max_price 1000000000 ticks exceeds k"),
    ({"settlement": 7, "contract_value": "1"}, ValueError, "settlement"),
    ({"settlement": Settlement.INVERSE, "contract_value": "-1", "quote_unit": "0.00000001"},
     ValueError, "contract_value"),
])
def test_a_bad_inverse_setting_is_refused_naming_it(engine_cls, kw, error, match):
    with pytest.raises(error, match=match):
        engine_cls(**kw)


def test_collateral_assets_are_refused_on_an_inverse_venue(engine_cls):
    from orderbook import Asset
    with pytest.raises(ValueError, match="inverse venue is margined in its coin alone"):
        engine_cls(instruments=[Instrument("XBT", "0.5")], quote_unit="0.00000001",
                   settlement=Settlement.INVERSE, contract_value="1",
                   assets=[Asset("ETH", "0.00000001", "XBT")])


def test_each_instrument_may_have_its_own_contract_value(engine_cls):
    # BTC 100 USD a contract at tick 0.1 (k = 100 / (0.1 x 1e-8) = 10**11), ETH 10 USD at
    # tick 0.01 (k = 10**11 too), both margined in the one coin.
    eng = engine_cls(instruments=[Instrument("BTCUSD", "0.1", contract_value="100",
                                             max_price=10**7),
                                  Instrument("ETHUSD", "0.01", contract_value="10",
                                             max_price=10**7)],
                     quote_unit="0.00000001", settlement=Settlement.INVERSE,
                     contract_value="100")
    assert [str(spec.contract_value) for spec in eng.instruments] == ["100", "10"]
    eng.add_account(1, 10**8)
    eng.add_account(HOUSE, 10**15, exempt=True)
    eng.seed_position(1, HOUSE, 200_000, 10)                  # 10 x 100 USD at 20,000
    eng.seed_position(1, HOUSE, 200_000, 10, instrument=1)    # 10 x 10 USD at 2,000
    positions = eng.account(1).positions
    # floor(1e11 x 10 / 200,000) = 5,000,000 sat each (1,000 USD at 20,000; 100 USD at 2,000)
    assert [(p.instrument, p.cost) for p in positions] == [(0, 5_000_000), (1, 5_000_000)]
    check_accounts(eng)


def test_an_inverse_engine_survives_copies_and_pickles(engine_cls):
    eng = xbtusd(engine_cls)
    eng.add_account(1, 500_000)
    eng.seed_position(1, HOUSE, 40_000, 1_000)
    for other in (eng.copy(), copy.copy(eng), copy.deepcopy(eng),
                  pickle.loads(pickle.dumps(eng))):
        assert other.settlement == Settlement.INVERSE and other.k == K
        assert other.account(1) == eng.account(1)
        other.set_index(36_500)
        other.liquidation_round()
        assert other.queue() == [1]
    assert eng.queue() == []


# ----------------------------------------------------------------------- scenario files

ROOT = Path(__file__).resolve().parent.parent
INVERSE = ROOT / "examples" / "inverse.toml"


def quiet_run(scenario, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(scenario, **kw)


def small_inverse(engine="compiled"):
    # the example's market with fewer accounts, a book of 400 levels and no refill (the
    # reference's exposure check walks the maker's orders at every refill order): the
    # reference runs it in about a second
    scenario = load_scenario(INVERSE)
    contract = scenario.instruments[0]
    contract = replace(contract, book=replace(contract.book, levels=400))
    return replace(scenario, engine=engine, steps=12, instruments=(contract,),
                   population=replace(scenario.population, count=300),
                   liquidity=replace(scenario.liquidity, half_life=0.0))


def test_the_compiled_and_reference_engines_run_an_inverse_scenario_alike():
    compiled = quiet_run(small_inverse(), counterfactual=False)
    reference = quiet_run(small_inverse("reference"), counterfactual=False)
    assert compiled.summary["liquidated_accounts"] > 0
    assert compiled.forced_orders.tobytes() == reference.forced_orders.tobytes()
    assert compiled.summary == reference.summary


def test_the_inverse_example_runs_with_its_money_in_the_coin(capsys):
    from orderbook.cli import main

    assert main(["run", str(INVERSE), "--no-counterfactual"]) == 0
    out = capsys.readouterr().out
    assert "settlement INVERSE (a contract is 100 of quote currency), money in coin units " \
           "of 1E-8" in out
    # the liquidated notional in BTC to the satoshi, labelled as the coin
    line = next(row for row in out.splitlines() if row.startswith("liquidated notional"))
    assert " coin " in line and "coin units of 1E-8" in line
    assert "  quote  " not in out   # no money cell in quote currency


def test_the_inverse_population_is_seeded_whole_and_the_cascade_ends_resolved():
    # Collateral is the coin value at entry / leverage, so no account is liquidatable at the
    # start (all 300 seeded); the shock liquidates some and the run ends with none queued.
    result = quiet_run(small_inverse(), counterfactual=False)
    assert result.summary["accounts"] == 300 and result.summary["liquidated_accounts"] > 0
    assert result.summary["queue_left"] == 0 and result.summary["unresolved_accounts"] == 0


@pytest.mark.parametrize("change,match", [
    ({"contract_value": None}, "contract_value .* is required"),
    ({"settlement": Settlement.LINEAR}, "contract_value .*needs settlement INVERSE"),
    ({"quote_unit": "0.3"}, "must be a whole number"),
])
def test_a_bad_inverse_scenario_is_refused_naming_the_setting(change, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        quiet_run(replace(small_inverse(), **change), counterfactual=False)


def test_an_inverse_scenario_refuses_a_collateral_coin():
    scenario = small_inverse()
    contract = replace(scenario.instruments[0], haircut_ppm=50_000)
    with pytest.raises(ConfigError, match="inverse venue .* refuses"):
        quiet_run(replace(scenario, instruments=(contract,)), counterfactual=False)


def test_an_inverse_scenario_file_is_validated_when_loaded(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(INVERSE.read_text().replace('contract_value = "100"', ""))
    with pytest.raises(ConfigError, match="contract_value"):
        load_scenario(path)
