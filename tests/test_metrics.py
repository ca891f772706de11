"""The summary's money figures (docs/money.md): the fund's start, low and end, collateral lost,
liquidation penalties, forced-order slippage, ADL, and the quote-currency and price-unit twins.

Every expected number is computed by hand in the comments."""

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
from test_scenario import stuck_in_the_queue

from orderbook import (
    FORCED_DTYPE,
    INSURANCE_FUND,
    Deficit,
    ExplicitBook,
    ExplicitPopulation,
    ForcedKind,
    LimitRule,
    Liquidity,
    Rules,
    Scenario,
    Shock,
    Side,
    default_scenario,
    run,
)
from orderbook.metrics import (
    MONEY_FIGURES,
    add_twins,
    collateral_lost,
    fund_figures,
    slippage_costs,
)


def fund_dips(engine: str = "compiled") -> Scenario:
    """Three longs of 10 lots entered at 100 (tick 1, lot 1: one quote unit is 1 of quote
    currency; maintenance 5 %, liquidation fee 1 %, no trading fees, no refill, a fund of
    1,000). The first print buys 1 at 101, so each starts at equity collateral + 10.

    Step 0: the shock sells 2 @ 96, 3 @ 94; mark 94. Account 0 (collateral 100: equity
    40 < MM 47) sells 5 @ 85, 5 @ 84 = 845, below its bankruptcy price 90: collateral
    100 + 845 - 1000 = -55, no fee (no equity left), the fund covers 55 (1,000 -> 945).
    Step 1: at mark 84 account 1 (collateral 120: equity -40) sells 10 @ 84 = 840, ends at
    -40, the fund covers 40 (-> 905). Step 5: a sell of 6 takes 5 @ 84, 1 @ 52; mark 52.
    Account 2 (collateral 500: equity 20 < MM 26) sells 10 @ 51 = 510: collateral
    500 + 510 - 1000 = 10, fee ceil(510 x 1 %) = 6 <= 10 (-> fund 911, account 4).
    """
    return Scenario(
        tick_size="1", lot_size="1", engine=engine,
        book=ExplicitBook(bids=((96, 2), (94, 3), (85, 5), (84, 20), (52, 1), (51, 1000)),
                          asks=((101, 1000),)),
        population=ExplicitPopulation(side=(1, 1, 1), size=(10, 10, 10), entry=(100, 100, 100),
                                      collateral=(100, 120, 500)),
        liquidity=Liquidity(rate=0, half_life=0.0),
        rules=Rules(tiers=((None, 50_000, 100_000),), taker_fee_ppm=0, maker_fee_ppm=0,
                    liquidation_fee_ppm=10_000, insurance_fund=1000),
        shock=Shock(sell=5, orders=((5, Side.SELL, 6),)), steps=8)


@pytest.fixture(scope="module", params=["compiled", "reference"])
def dips(request):
    return run(fund_dips(request.param), counterfactual=False).summary


def test_the_fund_figures_are_its_start_its_low_and_its_end(dips):
    # 1,000 before the shock; 945 after step 0, 905 after step 1, 911 after account 2's fee
    assert (dips["insurance_fund_start"], dips["insurance_fund_min"],
            dips["insurance_fund_end"]) == (1000, 905, 911)
    assert dips["insurance_fund_min_quote"] == Decimal(905)


def test_collateral_lost_is_the_equity_liquidated_accounts_had_before_the_shock_less_what_they_keep(
        dips):
    # equity at the starting mark 101: 110, 130, 510; at the end 0 (the fund covered the rest),
    # 0 and 10 - 6 = 4: (110 - 0) + (130 - 0) + (510 - 4)
    assert dips["collateral_lost"] == 746


def test_liquidation_penalties_are_the_fees_paid_into_the_fund(dips):
    assert dips["liquidation_penalties"] == 6          # account 2's; 0 and 1 had no equity left


def test_forced_slippage_is_what_the_fills_paid_against_the_mark_each_order_was_sent_at(dips):
    # account 0: 10 lots at mark 94 are worth 940, its fills 845: 95; account 1: 840 at mark
    # 84, nothing; account 2: 520 at mark 52 against 510: 10
    assert dips["forced_slippage"] == 95 + 0 + 10


def test_the_fund_moves_by_the_penalties_less_the_shortfalls_it_covered(dips):
    # no take-over, no funding: 911 - 1,000 = 6 - (55 + 40)
    assert dips["insurance_fund_end"] - dips["insurance_fund_start"] == (
        dips["liquidation_penalties"] - 55 - 40)


@pytest.mark.parametrize("rules", [Rules(), Rules(limit_rule=LimitRule.BANKRUPTCY)],
                         ids=["market", "bankruptcy and fund take-overs"])
def test_the_fund_is_conserved_to_the_unit(rules):
    # Every quote unit the fund gains or loses is in a record: the liquidation fees, less the
    # shortfalls it covers and the bad debt charged to it, plus what it takes in trading the
    # positions it took over (bought at the bankruptcy price in a FUND_TAKEOVER, sold by its
    # own forced orders; it ends flat, so all of it is realised). No funding here.
    result = run(replace(default_scenario(0.05), rules=rules), counterfactual=False)
    records, summary = result.forced_orders, result.summary
    own = records["owner"] == INSURANCE_FUND
    taken = records[records["kind"] == ForcedKind.FUND_TAKEOVER]   # side: the account's
    sold = records[own & (records["kind"] == ForcedKind.ORDER)]    # side: the fund's
    side_t, side_s = taken["side"].astype(np.int64), sold["side"].astype(np.int64)
    assert sum((side_s * sold["filled"]).tolist()) == sum((side_t * taken["filled"]).tolist())
    trading = (sum((side_t * taken["notional"]).tolist())
               - sum((side_s * sold["notional"]).tolist()))
    assert summary["insurance_fund_end"] - summary["insurance_fund_start"] == (
        summary["liquidation_penalties"] - sum(records["fund_cover"].tolist())
        - sum(records["bad_debt"][~own].tolist()) + trading)
    if rules.limit_rule == LimitRule.BANKRUPTCY:
        assert len(taken) and len(sold)                     # the case the test is for


def test_adl_notional_and_accounts_are_what_adl_closed_and_against_whom():
    # stuck_in_the_queue under ADL: both longs are closed against the house, the only short,
    # at their bankruptcy prices: 10 lots at 90 and 5 at 88 (k = 1), 1,340 quote units of
    # 0.005 of quote currency (tick 0.5 x lot 0.01)
    summary = run(stuck_in_the_queue(Deficit.ADL)).summary
    assert (summary["adl_notional"], summary["adl_accounts"]) == (900 + 440, 1)
    assert summary["adl_notional_quote"] == Decimal("6.7")
    assert summary["adl_count"] == 2


def test_a_price_figure_has_a_twin_in_price_units():
    # stuck_in_the_queue's tick is 0.5: mid 100 ticks before the shock, (80 + 101) / 2 =
    # 90.5 after it, a fall of 9.5 ticks; the static forecast walks to the bid at 80
    summary = run(stuck_in_the_queue(Deficit.ADL)).summary
    assert (summary["start_mid"], summary["max_drawdown_ticks"]) == (100.0, 9.5)
    assert summary["start_mid_px"] == Decimal("50")
    assert summary["max_drawdown_px"] == Decimal("4.75")
    assert summary["counterfactual_drawdown_px"] == Decimal("4.75")
    assert summary["forecast_trough_px"] == Decimal(summary["forecast_trough"]) / 2


def test_every_money_figure_has_its_twin_in_quote_currency():
    summary = run(default_scenario(0.05), counterfactual=False).summary
    unit = summary["quote_unit"]
    present = [key for key in MONEY_FIGURES if key in summary]
    assert {"insurance_fund_start", "collateral_lost", "forced_slippage",
            "adl_notional"} <= set(present)
    for key in present:
        assert summary[f"{key}_quote"] == Decimal(summary[key]) * unit, key
        assert isinstance(summary[f"{key}_quote"], Decimal), key


def test_funding_paid_is_in_quote_currency_as_a_decimal():
    from orderbook import Funding

    scenario = replace(default_scenario(0.05), steps=20,
                       funding=Funding(venue="binance", interval_ms=5_000, sample_ms=1_000))
    summary = run(scenario, counterfactual=False).summary
    assert summary["funding_paid"] > 0
    assert summary["funding_paid_quote"] == Decimal(summary["funding_paid"]) * Decimal("0.0001")


# ----------------------------------------------------------------------- the functions alone
def records(*rows) -> np.ndarray:
    """FORCED_DTYPE rows from dicts (missing fields 0)."""
    out = np.zeros(len(rows), dtype=FORCED_DTYPE)
    for i, row in enumerate(rows):
        for name, value in row.items():
            out[i][name] = value
    return out


def test_slippage_costs_are_positive_when_the_fills_are_worse_than_the_mark():
    order = int(ForcedKind.ORDER)
    recs = records(
        # a sell of 3 lots at 98 against mark 100, k 1: 300 - 294
        {"kind": order, "side": -1, "mark_before": 100, "filled": 3, "notional": 294},
        # a buy of 1 lot at 105 against mark 100 on instrument 1, k 2: 210 - 200
        {"kind": order, "side": 1, "mark_before": 100, "filled": 1, "notional": 210,
         "instrument": 1},
        # a sell above the mark (an index mark under the book) gains: 300 - 303
        {"kind": order, "side": -1, "mark_before": 100, "filled": 3, "notional": 303},
        # not an order that filled: no cost
        {"kind": order, "side": -1, "mark_before": 100, "filled": 0, "notional": 0},
        {"kind": int(ForcedKind.ADL), "side": -1, "mark_before": 100, "filled": 3,
         "notional": 270})
    assert slippage_costs(recs, [1, 2]) == [6, 10, -3, None, None]


def test_slippage_costs_need_a_k_for_every_instrument():
    recs = records({"kind": int(ForcedKind.ORDER), "side": -1, "mark_before": 100,
                    "filled": 1, "notional": 99, "instrument": 1})
    with pytest.raises(ValueError, match=r"ks must give an integer k >= 1 for each of the 2 "
                                         r"instruments the records name, got \[1\]"):
        slippage_costs(recs, [1])
    with pytest.raises(ValueError, match="got \\[1, 0\\]"):
        slippage_costs(recs, [1, 0])


def test_slippage_costs_turn_on_an_inverse_venue():
    # V(p, q) = floor(k q / p) coin units, k = 1,000: a sell of 2 lots at 40 is worth
    # floor(2,000 / 40) = 50 coin units against floor(2,000 / 50) = 40 at the mark 50: the
    # seller of an inverse contract gives 10 more coin units of value by selling low
    recs = records({"kind": int(ForcedKind.ORDER), "side": -1, "mark_before": 50,
                    "filled": 2, "notional": 50},
                   {"kind": int(ForcedKind.ORDER), "side": 1, "mark_before": 50,
                    "filled": 2, "notional": 33})   # bought at ~60.6: 40 - 33 = 7 coin units
    assert slippage_costs(recs, [1000], inverse=True) == [10, 7]


def test_collateral_lost_counts_what_is_left_at_zero_at_worst():
    # owner 2 ended at -20: it lost its 50, and the 20 past zero is someone else's loss;
    # owner 99 opened after the start (an agent): not counted
    assert collateral_lost([1, 2, 99], {1: 100, 2: 50}, {1: 30, 2: -20, 99: -5}) == 70 + 50


def test_the_fund_low_is_the_lowest_balance_seen():
    assert fund_figures(10, np.array([12, 7, 9]), 11) == {
        "insurance_fund_start": 10, "insurance_fund_min": 7, "insurance_fund_end": 11}
    assert fund_figures(10, [], 4)["insurance_fund_min"] == 4
    assert fund_figures(None, [6], 8)["insurance_fund_min"] == 6


def test_add_twins_gives_each_figure_its_twin_and_none_for_none():
    summary = add_twins({"bad_debt": 3, "insurance_fund_start": None, "start_mid": 100.5,
                         "instrument.BTC.liquidated_notional": 7, "accounts": 4},
                        Decimal("0.01"), Decimal("0.5"))
    assert summary["bad_debt_quote"] == Decimal("0.03")
    assert summary["insurance_fund_start_quote"] is None
    assert summary["start_mid_px"] == Decimal("50.25")
    assert summary["instrument.BTC.liquidated_notional_quote"] == Decimal("0.07")
    assert "accounts_quote" not in summary
