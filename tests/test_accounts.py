"""Specification tests of the ledger (docs/liquidation.md): settlement, fees, conservation of
money, margin, liquidation and bankruptcy prices, isolated margin, deposits and the trade log.

Expected numbers are computed by hand; the conventions (k = 1, one 5 % / 10 % tier, the victim
"A") are in tests/engine_helpers.py. Every test runs on both engines (``engine_cls``).
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from engine_helpers import TIERS, B, S, _index_engine, assert_conserved, make, victim_a

from orderbook.events import MarginBasis, MarkRule, Trigger

# =========================================================================== settlement


def test_settlement_open_add_reduce_flip(engine_cls):
    eng = make(engine_cls)
    eng.add_account(1, 1000)
    eng.add_account(101, 1_000_000, exempt=True)

    # open: X buys 3 @ 100 -> q = 3, C = V(100, 3) = 300
    eng.limit(1, S, 100, 3, 101)
    eng.market(2, B, 3, 1)
    x = eng.account(1)
    assert (x.position, x.cost, x.collateral) == (3, 300, 1000)

    # add: buys 4 @ 111 -> q = 7, C = 300 + 444 = 744
    eng.limit(3, S, 111, 4, 101)
    eng.market(4, B, 4, 1)
    x = eng.account(1)
    assert (x.position, x.cost, x.collateral) == (7, 744, 1000)

    # reduce: sells 3 @ 105; R = floor(744 * 3 / 7) = floor(318.857) = 318 (floor, not round);
    # PnL = V(105, 3) - R = 315 - 318 = -3; C = 744 - 318 = 426, q = 4
    eng.limit(5, B, 105, 3, 101)
    eng.market(6, S, 3, 1)
    x = eng.account(1)
    assert (x.position, x.cost, x.collateral) == (4, 426, 997)
    # the LP (short 7, C = 744) bought 3 @ 105: R = 318, short PnL = 318 - 315 = +3
    lp = eng.account(101)
    assert (lp.position, lp.cost, lp.collateral) == (-4, 426, 1_000_003)

    # flip: sells 6 @ 120 in one fill; c = min(6, 4) = 4, R = floor(426 * 4 / 4) = 426,
    # PnL = 480 - 426 = +54 -> collateral 1051; rest 2 opens short at V(120, 2) = 240
    eng.limit(7, B, 120, 6, 101)
    eng.market(8, S, 6, 1)
    x = eng.account(1)
    assert (x.position, x.cost, x.collateral) == (-2, 240, 1051)
    # LP: short 4 (C 426) buys 6 @ 120: PnL = 426 - 480 = -54, then long 2 at 240
    lp = eng.account(101)
    assert (lp.position, lp.cost, lp.collateral) == (2, 240, 1_000_003 - 54)

    # reduce a short: buys 1 @ 100; R = floor(240 * 1 / 2) = 120, PnL = R - V = 120 - 100 = +20
    eng.limit(9, S, 100, 1, 101)
    eng.market(10, B, 1, 1)
    x = eng.account(1)
    assert (x.position, x.cost, x.collateral) == (-1, 120, 1071)
    # LP: long 2 (C 240) sells 1 @ 100: R = 120, PnL = 100 - 120 = -20
    lp = eng.account(101)
    assert (lp.position, lp.cost, lp.collateral) == (1, 120, 1_000_003 - 54 - 20)

    # money only moved between the two: 1071 + 999_929 == 1000 + 1_000_000
    assert x.collateral + lp.collateral == 1_001_000
    assert eng.total_deposits == 1_001_000
    assert_conserved(eng, [1, 101])


def test_settlement_flat_cost_is_zero_and_seed_pays_no_fees(engine_cls):
    eng = make(engine_cls, taker_fee_ppm=10_000, maker_fee_ppm=10_000)
    eng.add_account(1, 500)
    eng.add_account(2, 700)
    # seed: bilateral fill at 101 for 3 lots, no fees: long C = short C = V(101, 3) = 303
    eng.seed_position(1, 2, 101, 3)
    a, b = eng.account(1), eng.account(2)
    assert (a.position, a.cost, a.collateral) == (3, 303, 500)
    assert (b.position, b.cost, b.collateral) == (-3, 303, 700)
    assert eng.fees_collected == 0
    # seed the reverse at 101: both flat, cost 0, PnL 0 (R = 303, V = 303)
    eng.seed_position(2, 1, 101, 3)
    a, b = eng.account(1), eng.account(2)
    assert (a.position, a.cost, a.collateral) == (0, 0, 500)
    assert (b.position, b.cost, b.collateral) == (0, 0, 700)
    assert a.bankruptcy_price is None and a.liquidation_price is None


def test_quote_unit_scales_values(engine_cls):
    # k = tick_size * lot_size / quote_unit = 0.5 * 2 / 0.1 = 10
    eng = make(engine_cls, tick_size="0.5", lot_size="2", quote_unit="0.1",
               mark_rule=MarkRule.INDEX)
    eng.add_account(1, 1000)
    eng.add_account(2, 1000)
    eng.seed_position(1, 2, 40, 3)
    # C = V(40, 3) = 40 * 3 * 10 = 1200
    assert eng.account(1).cost == 1200
    assert eng.account(2).cost == 1200
    eng.set_index(50)
    # long: E = 1000 + 50*3*10 - 1200 = 1300; N = 1500, MM = ceil(1500 * 5%) = 75
    a = eng.account(1)
    assert (a.equity, a.maintenance_margin, a.initial_margin) == (1300, 75, 150)
    # short: E = 1000 + 1200 - 1500 = 700
    assert eng.account(2).equity == 700
    assert_conserved(eng, [1, 2], k=10)


def test_quote_unit_must_give_whole_k(engine_cls):
    # k = 0.5 * 1 / 1 = 0.5: not a positive integer
    with pytest.raises(ValueError):
        make(engine_cls, tick_size="0.5", lot_size="1", quote_unit="1")


# =========================================================================== fees


def test_fees_ceil_rounding(engine_cls):
    eng = make(engine_cls, taker_fee_ppm=500, maker_fee_ppm=200)
    eng.add_account(1, 10_000)
    eng.add_account(101, 1_000_000, exempt=True)

    # 3 @ 101: V = 303; taker ceil(303 * 500 / 1e6) = ceil(0.1515) = 1;
    #                   maker ceil(303 * 200 / 1e6) = ceil(0.0606) = 1
    eng.limit(1, S, 101, 3, 101)
    eng.market(2, B, 3, 1)
    assert eng.account(1).collateral == 9_999
    assert eng.account(101).collateral == 999_999
    assert eng.fees_collected == 2

    # 7 @ 1234: V = 8638; taker ceil(4.319) = 5; maker ceil(1.7276) = 2
    eng.limit(3, S, 1234, 7, 101)
    eng.market(4, B, 7, 1)
    assert eng.account(1).collateral == 9_994
    assert eng.account(101).collateral == 999_997
    assert eng.fees_collected == 9

    # 10 @ 1000: V = 10_000; taker exactly 5 (ceil of an integer is itself), maker exactly 2.
    # X closes long 10 (C = 303 + 8638 = 8941): PnL = 10_000 - 8941 = +1059
    eng.limit(5, B, 1000, 10, 101)
    eng.market(6, S, 10, 1)
    assert eng.account(1).collateral == 9_994 - 5 + 1059          # 11_048
    assert eng.account(101).collateral == 999_997 - 2 - 1059      # 998_936
    assert eng.fees_collected == 16
    assert eng.account(1).collateral + eng.account(101).collateral + 16 == 1_010_000
    assert_conserved(eng, [1, 101])


def test_forced_orders_pay_no_taker_fee_makers_pay_maker_fee(engine_cls):
    eng = make(engine_cls, taker_fee_ppm=5_000, maker_fee_ppm=1_000)
    eng.add_account(100, 100_000, exempt=True)  # seed counterparty (short 10 @ 100)
    eng.add_account(101, 100_000, exempt=True)  # bids
    eng.add_account(102, 100_000, exempt=True)  # shock seller
    victim_a(eng)
    eng.limit(1, B, 94, 4, 101)
    eng.limit(2, B, 93, 3, 101)
    eng.limit(3, B, 92, 5, 101)
    # shock: 102 sells 1 @ 94; taker fee ceil(94 * 0.005) = ceil(0.47) = 1,
    # maker fee ceil(94 * 0.001) = ceil(0.094) = 1 -> fees 2, mark (LAST) 94
    eng.market(4, S, 1, 102)
    assert eng.fees_collected == 2
    eng.liquidate()
    # forced sell of 10: 3 @ 94 (V 282), 3 @ 93 (V 279), 4 @ 92 (V 368): no taker fee for A;
    # the maker pays ceil(0.282) + ceil(0.279) + ceil(0.368) = 1 + 1 + 1 = 3
    assert eng.fees_collected == 5
    # A: PnL = 929 - 1000 = -71, no fee: collateral 100 - 71 = 29
    assert eng.account(1).collateral == 29
    assert eng.account(101).collateral == 100_000 - 1 - 3
    assert_conserved(eng, [1, 100, 101, 102])


# =========================================================================== conservation


def test_money_conservation_scripted(engine_cls):
    eng = make(engine_cls, taker_fee_ppm=700, maker_fee_ppm=300, liquidation_fee_ppm=20_000,
               insurance_fund=50)
    owners = [1, 2, 3, 101, 102]
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(102, 100_000, exempt=True)
    eng.add_account(1, 100)
    eng.add_account(2, 120)
    eng.add_account(3, 5_000)
    # total deposits = 100_000 * 2 + 100 + 120 + 5000 + fund 50
    assert eng.total_deposits == 205_270
    assert_conserved(eng, owners)
    eng.seed_position(1, 102, 100, 10)
    assert_conserved(eng, owners)
    eng.seed_position(2, 102, 100, 10)
    assert_conserved(eng, owners)
    oid = 0
    for price, qty in ((95, 5), (93, 5), (91, 5), (89, 30)):
        oid += 1
        eng.limit(oid, B, price, qty, 101)
        assert_conserved(eng, owners)
    eng.limit(50, S, 105, 10, 102)
    eng.market(51, B, 3, 3)          # 3 @ 105, both pay fees
    assert_conserved(eng, owners)
    eng.limit(52, S, 95, 2, 3)       # crosses the 95 bid: 2 @ 95
    assert_conserved(eng, owners)
    eng.deposit(3, 77)
    assert eng.total_deposits == 205_347
    assert_conserved(eng, owners)
    eng.market(53, S, 3, 102)        # takes the rest of 95
    assert_conserved(eng, owners)
    eng.market(54, S, 1, 102)        # 1 @ 93: mark 93 crosses A (liquidation price 94)
    assert_conserved(eng, owners)
    for _ in range(6):
        eng.liquidation_round()
        assert_conserved(eng, owners)
    eng.cancel(50)
    assert_conserved(eng, owners)
    # at the engine's own mark the reported equities add up the same way
    total = sum(eng.account(o).equity for o in owners)
    assert total + eng.insurance_fund + eng.fees_collected == eng.total_deposits


# =========================================================================== margin, prices


def test_liquidation_and_bankruptcy_prices_by_hand(engine_cls):
    eng = _index_engine(engine_cls)
    # 1: long 10 @ 100, coll 100 -> L = 94, B = ceil(900 / 10) = 90
    victim_a(eng, owner=1)
    # 2: short 10 @ 100, coll 100: E = 1100 - 10m, MM = ceil(m / 2)
    #    m = 105: E = 50 < 53 (liquidatable); m = 104: E = 60 >= 52 -> L = 105
    #    B = floor((1000 + 100) / 10) = 110
    eng.add_account(2, 100)
    eng.seed_position(100, 2, 100, 10)
    # 3: long 3 @ 100, coll 50: E = 3m - 250, MM = ceil(0.15 m)
    #    m = 88: E = 14, MM = ceil(13.2) = 14 -> 14 < 14 false (boundary is strict)
    #    m = 87: E = 11, MM = ceil(13.05) = 14 -> liquidatable; L = 87
    #    B = ceil(250 / 3) = ceil(83.33) = 84
    eng.add_account(3, 50)
    eng.seed_position(3, 100, 100, 3)
    # 4: short 3 @ 100, coll 50: E = 350 - 3m, MM = ceil(0.15 m)
    #    m = 111: E = 17, MM = ceil(16.65) = 17 -> not; m = 112: E = 14 < 17 -> L = 112
    #    B = floor(350 / 3) = 116
    eng.add_account(4, 50)
    eng.seed_position(100, 4, 100, 3)
    eng.set_index(100)
    expected = {1: (94, 90), 2: (105, 110), 3: (87, 84), 4: (112, 116)}
    for owner, (liq, bk) in expected.items():
        acc = eng.account(owner)
        assert (acc.liquidation_price, acc.bankruptcy_price) == (liq, bk), owner


@pytest.mark.parametrize("owner,side,liq,eq_mm_at_liq,eq_mm_one_better", [
    # long 10 @ 100 coll 100: at 94 E = 40, MM = 47; at 95 E = 50, MM = 48
    (1, +1, 94, (40, 47), (50, 48)),
    # short 10 @ 100 coll 100: at 105 E = 50, MM = ceil(52.5) = 53; at 104 E = 60, MM = 52
    (2, -1, 105, (50, 53), (60, 52)),
    # long 3 @ 100 coll 50: at 87 E = 11, MM = 14; at 88 E = 14 = MM (not liquidatable)
    (3, +1, 87, (11, 14), (14, 14)),
    # short 3 @ 100 coll 50: at 112 E = 14, MM = ceil(16.8) = 17; at 111 E = 17 = MM
    (4, -1, 112, (14, 17), (17, 17)),
])
def test_liquidation_price_consistency(engine_cls, owner, side, liq, eq_mm_at_liq,
                                       eq_mm_one_better):
    eng = _index_engine(engine_cls)
    collateral, qty = (100, 10) if owner in (1, 2) else (50, 3)
    eng.add_account(owner, collateral)
    if side > 0:
        eng.seed_position(owner, 100, 100, qty)
    else:
        eng.seed_position(100, owner, 100, qty)
    eng.set_index(100)
    assert eng.account(owner).liquidation_price == liq
    # at the liquidation price: liquidatable (E < MM)
    eng.set_index(liq)
    acc = eng.account(owner)
    assert (acc.equity, acc.maintenance_margin) == eq_mm_at_liq
    assert acc.equity < acc.maintenance_margin
    # one tick better for the account (up for a long, down for a short): E >= MM
    eng.set_index(liq + side)
    acc = eng.account(owner)
    assert (acc.equity, acc.maintenance_margin) == eq_mm_one_better
    assert acc.equity >= acc.maintenance_margin
    # the liquidation price does not depend on the mark
    assert acc.liquidation_price == liq


@pytest.mark.parametrize("owner,side,collateral,qty,bk,eq_at_bk,eq_one_worse", [
    (1, +1, 100, 10, 90, 0, -10),   # long 10 @100: E(90) = 100 + 900 - 1000 = 0; E(89) = -10
    (2, -1, 100, 10, 110, 0, -10),  # short 10 @100: E(110) = 1100 - 1100 = 0; E(111) = -10
    (3, +1, 50, 3, 84, 2, -1),      # long 3 @100: E(84) = 50 + 252 - 300 = 2; E(83) = -1
    (4, -1, 50, 3, 116, 2, -1),     # short 3 @100: E(116) = 350 - 348 = 2; E(117) = -1
])
def test_bankruptcy_price(engine_cls, owner, side, collateral, qty, bk, eq_at_bk, eq_one_worse):
    eng = _index_engine(engine_cls)
    eng.add_account(owner, collateral)
    if side > 0:
        eng.seed_position(owner, 100, 100, qty)
    else:
        eng.seed_position(100, owner, 100, qty)
    eng.set_index(bk)
    acc = eng.account(owner)
    assert acc.bankruptcy_price == bk
    assert acc.equity == eq_at_bk and acc.equity >= 0
    eng.set_index(bk - side)  # one tick worse: down for a long, up for a short
    acc = eng.account(owner)
    assert acc.equity == eq_one_worse and acc.equity < 0


def test_liquidation_price_none(engine_cls):
    eng = _index_engine(engine_cls)
    # long 10 @ 100 with collateral 1000 >= cost: at P = 0, E = 0 and MM = 0 -> 0 < 0 false;
    # above 0, E = 10P >= ceil(P / 2) -> never liquidatable
    eng.add_account(1, 1000)
    eng.seed_position(1, 100, 100, 10)
    # flat account
    eng.add_account(2, 10)
    # exempt account deep under water is never liquidatable
    eng.add_account(3, 0, exempt=True)
    eng.seed_position(3, 100, 100, 10)
    eng.set_index(50)
    assert eng.account(1).liquidation_price is None
    assert eng.account(2).liquidation_price is None
    assert eng.account(2).bankruptcy_price is None
    assert eng.account(3).liquidation_price is None
    assert eng.account(3).exempt is True
    assert eng.account(1).exempt is False


def test_margin_fields_at_mark(engine_cls):
    eng = _index_engine(engine_cls)
    victim_a(eng)
    eng.set_index(94)
    a = eng.account(1)
    # N = 940: MM = ceil(47) = 47, IM = ceil(94) = 94; E = 40; ratio = 47 / 40
    assert (a.owner, a.collateral, a.position, a.cost) == (1, 100, 10, 1000)
    assert (a.equity, a.maintenance_margin, a.initial_margin) == (40, 47, 94)
    assert a.margin_ratio == pytest.approx(47 / 40)
    eng.set_index(85)
    a = eng.account(1)
    # E = 850 - 900 = -50 <= 0 with MM = ceil(42.5) = 43 > 0 -> ratio inf
    assert (a.equity, a.maintenance_margin) == (-50, 43)
    assert a.margin_ratio == math.inf


def test_tier_selection_and_continuity(engine_cls):
    tiers = [(1000, 10_000, 20_000), (5000, 25_000, 50_000), (None, 50_000, 100_000)]
    # deductions (quote units x ppm):
    #   MM: D1 = 0, D2 = 1000 * (25_000 - 10_000) = 15e6, D3 = 15e6 + 5000 * 25_000 = 140e6
    #   IM: D1 = 0, D2 = 1000 * (50_000 - 20_000) = 30e6, D3 = 30e6 + 5000 * 50_000 = 280e6
    eng = make(engine_cls, tiers=tiers, mark_rule=MarkRule.INDEX)
    eng.add_account(100, 10_000_000, exempt=True)
    eng.add_account(1, 1_000_000)
    eng.seed_position(1, 100, 1000, 1)  # one lot, so N = mark
    cases = {
        # N: (MM, IM)
        500: (5, 10),        # tier 1: ceil(500 * 1%) = 5, ceil(500 * 2%) = 10
        999: (10, 20),       # ceil(9.99) = 10, ceil(19.98) = 20
        1000: (10, 20),      # last of tier 1 (N <= max_notional): 10, 20
        1001: (11, 21),      # tier 2: ceil((25_025_000 - 15e6)/1e6) = ceil(10.025) = 11;
                             #         ceil((50_050_000 - 30e6)/1e6) = ceil(20.05) = 21
        5000: (110, 220),    # tier 2: (125e6 - 15e6)/1e6 = 110; (250e6 - 30e6)/1e6 = 220
        5001: (111, 221),    # tier 3: ceil((250_050_000 - 140e6)/1e6) = ceil(110.05) = 111;
                             #         ceil((500_100_000 - 280e6)/1e6) = ceil(220.1) = 221
        10_000: (360, 720),  # tier 3: (500e6 - 140e6)/1e6 = 360; (1e9 - 280e6)/1e6 = 720
    }
    for n, (mm, im) in cases.items():
        eng.set_index(n)
        acc = eng.account(1)
        assert (acc.maintenance_margin, acc.initial_margin) == (mm, im), n
    # continuity: across each boundary the requirement moves by at most one rounding step
    for lo in (1000, 5000):
        eng.set_index(lo)
        before = eng.account(1).maintenance_margin
        eng.set_index(lo + 1)
        after = eng.account(1).maintenance_margin
        assert 0 <= after - before <= 1


def test_tiers_change_liquidation_price(engine_cls):
    tiers = [(1000, 10_000, 20_000), (5000, 25_000, 50_000), (None, 50_000, 100_000)]
    eng = make(engine_cls, tiers=tiers, mark_rule=MarkRule.INDEX)
    eng.add_account(100, 10_000_000, exempt=True)
    victim_a(eng)
    eng.set_index(100)
    # N = 10m <= 1000 for m <= 100 -> tier 1, MM = ceil(m / 10); E = 10m - 900
    # m = 91: E = 10 >= ceil(9.1) = 10 (safe); m = 90: E = 0 < 9 -> L = 90 (= B here)
    acc = eng.account(1)
    assert (acc.liquidation_price, acc.bankruptcy_price) == (90, 90)
    assert acc.maintenance_margin == 10  # N = 1000 at m = 100: ceil(10) = 10


# =========================================================================== isolated margin


def test_isolated_account_risks_only_its_margin(engine_cls):
    # Same position as A (long 10 @ 100, cost 1000) with collateral 1000, of which only 100 is
    # isolated margin: it is liquidated like A (liquidation price 94, bankruptcy price 90), and the
    # reserve of 900 is untouched; a cross account with collateral 1000 would have a liquidation
    # price where 1000 + 10m - 1000 < ceil(m / 2), i.e. never for m >= 0.
    eng = make(engine_cls)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(1, 1000, isolated_margin=100)
    eng.add_account(2, 1000)
    eng.seed_position(1, 100, 100, 10)
    eng.seed_position(2, 100, 100, 10)
    iso, cross = eng.account(1), eng.account(2)
    assert (iso.collateral, iso.reserve, iso.isolated) == (100, 900, True)
    assert (cross.collateral, cross.reserve, cross.isolated) == (1000, 0, False)
    assert iso.liquidation_price == 94 and iso.bankruptcy_price == 90
    assert cross.liquidation_price is None and cross.bankruptcy_price == 0


def test_deposit_goes_to_reserve_and_add_margin_moves_it(engine_cls):
    # add_margin 50: margin 150, E(m) = 150 + 10m - 1000 < ceil(m / 2) -> m <= 89 (at 89:
    # 40 < 45; at 90: 50 >= 45), so the liquidation price falls from 94 to 89.
    eng = make(engine_cls)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(1, 1000, isolated_margin=100)
    eng.seed_position(1, 100, 100, 10)
    eng.deposit(1, 30)
    assert (eng.account(1).collateral, eng.account(1).reserve) == (100, 930)
    eng.add_margin(1, 50)
    acc = eng.account(1)
    assert (acc.collateral, acc.reserve, acc.liquidation_price) == (150, 880, 89)
    before = eng.account(1)
    with pytest.raises(ValueError, match="reserve"):
        eng.add_margin(1, 881)
    with pytest.raises(ValueError, match="isolated_margin"):
        eng.add_account(2, 10, isolated_margin=11)
    eng.add_account(3, 10)
    with pytest.raises(ValueError, match="cross-margin"):
        eng.add_margin(3, 1)
    assert eng.account(1) == before


# =========================================================================== trade log


def test_trade_log_and_open_interest(engine_cls):
    # User trade 3 @ 100 (1 buys from 2), then the forced sell of example 1's victim shows in
    # the log too; open interest counts long lots only: 1 holds 3 after its buy.
    eng = make(engine_cls)
    eng.add_account(1, 10_000)
    eng.add_account(2, 10_000)
    eng.limit(1, S, 100, 5, 2)
    eng.market(2, B, 3, 1)
    trades = eng.trades()
    assert [(int(r["order_id"]), int(r["maker_id"]), int(r["price"]), int(r["qty"]))
            for r in trades] == [(2, 1, 100, 3)]
    assert eng.open_interest() == 3


# ================================================= trigger and MM basis (issue #12 settings)


def _long_and_short(engine_cls, collateral, qty, tiers=TIERS, **kw):
    # Owner 1: long qty @ 100, owner 2: short qty @ 100, each with ``collateral``; LP 100.
    eng = _index_engine(engine_cls, tiers=tiers, **kw)
    eng.add_account(1, collateral)
    eng.add_account(2, collateral)
    eng.seed_position(1, 100, 100, qty)
    eng.seed_position(100, 2, 100, qty)
    eng.set_index(100)
    return eng


def test_settings_default_to_below_and_mark(engine_cls):
    eng = make(engine_cls)
    assert (eng.trigger, eng.mm_basis) == (Trigger.BELOW, MarginBasis.MARK)
    assert isinstance(eng.trigger, Trigger) and isinstance(eng.mm_basis, MarginBasis)


@pytest.mark.parametrize("name", ["trigger", "mm_basis"])
def test_settings_are_checked(engine_cls, name):
    with pytest.raises(ValueError, match=f"{name} must be one of .* got 2"):
        make(engine_cls, **{name: 2})
    with pytest.raises(TypeError, match=name):
        make(engine_cls, **{name: "1"})


def test_trigger_at_or_below_moves_the_boundary_one_tick(engine_cls):
    # long 3 @ 100 coll 50: E = 3m - 250, MM = ceil(0.15 m). At 88 E = 14 = MM: not
    # liquidatable under BELOW (L = 87), liquidatable under AT_OR_BELOW; at 89 E = 17 > MM 14
    # -> L = 88. Short 3 @ 100 coll 50: E = 350 - 3m; at 111 E = 17 = MM = ceil(16.65): L = 111
    # under AT_OR_BELOW (112 under BELOW); at 110 E = 20 > 17.
    below = _long_and_short(engine_cls, 50, 3)
    at = _long_and_short(engine_cls, 50, 3, trigger=Trigger.AT_OR_BELOW)
    assert [below.account(o).liquidation_price for o in (1, 2)] == [87, 112]
    assert [at.account(o).liquidation_price for o in (1, 2)] == [88, 111]
    at.set_index(88)
    a = at.account(1)
    assert (a.equity, a.maintenance_margin, a.margin_ratio) == (14, 14, 1.0)
    # the queue takes the account at its liquidation price, not one tick better
    at.set_index(89)
    at.liquidate()
    assert list(at.queue()) == []
    at.set_index(88)
    at.liquidate()
    assert list(at.queue()) == [1]


def test_trigger_at_or_below_with_no_margin_takes_positions_with_no_equity(engine_cls):
    # MM = 0 at every size. Long 10 @ 100 coll 0: E = 10m - 1000. BELOW: E < 0 below 100 (L =
    # 99); AT_OR_BELOW: E <= 0 up to 100 (L = 100). Coll 1000: E = 10m, 0 only at m = 0:
    # AT_OR_BELOW gives L = 0 (a price no mark reaches), BELOW none. A flat account, even
    # with no collateral (E = 0 = MM), is never liquidatable.
    tiers = [(None, 0, 100_000)]
    for trigger, liq in ((Trigger.BELOW, (99, None)), (Trigger.AT_OR_BELOW, (100, 0))):
        eng = _index_engine(engine_cls, tiers=tiers, trigger=trigger)
        for owner, collateral in ((1, 0), (2, 1000), (3, 0)):
            eng.add_account(owner, collateral)
        eng.seed_position(1, 100, 100, 10)
        eng.seed_position(2, 100, 100, 10)
        eng.set_index(100)
        assert (eng.account(1).liquidation_price, eng.account(2).liquidation_price) == liq
        assert eng.account(3).liquidation_price is None
        eng.liquidate()
        assert list(eng.queue()) == ([1] if trigger == Trigger.AT_OR_BELOW else [])


def test_entry_basis_fixes_mm_at_the_cost(engine_cls):
    # MM 20 % (tiers (None, 20 %, 50 %)), 10 lots @ 100, coll 300, cost 1000. ENTRY: MM =
    # 200 at every mark. Long: E = 10m - 700 < 200 below 90 -> L = 89 (BELOW), 90
    # (AT_OR_BELOW). Short: E = 1300 - 10m < 200 above 110 -> L = 111 (BELOW), 110. MARK: MM =
    # ceil(2m), long 8m < 700 -> L = 87, short 12m > 1300 -> L = 109 (BELOW).
    tiers = [(None, 200_000, 500_000)]
    cases = {(Trigger.BELOW, MarginBasis.MARK): [87, 109],
             (Trigger.BELOW, MarginBasis.ENTRY): [89, 111],
             (Trigger.AT_OR_BELOW, MarginBasis.ENTRY): [90, 110]}
    for (trigger, basis), liq in cases.items():
        eng = _long_and_short(engine_cls, 300, 10, tiers, trigger=trigger, mm_basis=basis)
        assert [eng.account(o).liquidation_price for o in (1, 2)] == liq, (trigger, basis)
    eng = _long_and_short(engine_cls, 300, 10, tiers, mm_basis=MarginBasis.ENTRY)
    for mark in (50, 89, 100, 150):
        eng.set_index(mark)
        a = eng.account(1)
        # MM stays on the entry value; IM is on the mark notional; the ratio is MM / E
        assert (a.maintenance_margin, a.initial_margin) == (200, 5 * mark)
        assert a.margin_ratio == (200 / a.equity if a.equity > 0 else math.inf)


def test_entry_basis_index_follows_the_cost(engine_cls):
    # Long 10 @ 100, coll 300, ENTRY, MM 20 %: L = 89. Owner 1 sells 5 @ 100 off the book
    # (no PnL): q = 5, C = 500, MM = 100, E = 5m - 200 < 100 below 60 -> L = 59. Buying 5 @ 80
    # back: q = 10, C = 900, MM = 180, E = 300 + 10m - 900 < 180 below 78 -> L = 77.
    eng = _long_and_short(engine_cls, 300, 10, [(None, 200_000, 500_000)],
                          mm_basis=MarginBasis.ENTRY)
    assert eng.account(1).liquidation_price == 89
    eng.seed_position(100, 1, 100, 5)
    a = eng.account(1)
    assert (a.position, a.cost, a.maintenance_margin, a.liquidation_price) == (5, 500, 100, 59)
    eng.set_index(60)
    eng.liquidate()
    assert 1 not in list(eng.queue())
    eng.seed_position(1, 100, 80, 5)
    a = eng.account(1)
    assert (a.position, a.cost, a.maintenance_margin, a.liquidation_price) == (10, 900, 180, 77)
    eng.set_index(78)
    eng.liquidate()
    assert 1 not in list(eng.queue())
    eng.set_index(77)
    eng.liquidate()
    assert 1 in list(eng.queue())


@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("basis", list(MarginBasis))
def test_liquidation_price_is_the_last_liquidatable_price(engine_cls, trigger, basis):
    # Under every setting, over many collaterals and sizes: liquidatable at L (by the reported
    # E and MM at the mark L), not one tick better; none when not even the extreme price is.
    for collateral in (0, 7, 50, 113, 400, 1000, 1500):
        for qty in (1, 3, 10):
            eng = _long_and_short(engine_cls, collateral, qty, [(300, 50_000, 100_000),
                                                                (None, 150_000, 200_000)],
                                  trigger=trigger, mm_basis=basis)
            for owner, better in ((1, +1), (2, -1)):
                liq = eng.account(owner).liquidation_price
                short = (lambda a: a.equity <= a.maintenance_margin) if (
                    trigger == Trigger.AT_OR_BELOW) else (
                    lambda a: a.equity < a.maintenance_margin)
                if liq is not None and liq >= 1:
                    eng.set_index(liq)
                    assert short(eng.account(owner)), (collateral, qty, owner, liq)
                nxt = (liq + better) if liq is not None else (1 if better > 0 else 2**32 - 1)
                if 1 <= nxt <= 2**32 - 1:
                    eng.set_index(nxt)
                    assert not short(eng.account(owner)), (collateral, qty, owner, liq)


# Worked examples of docs/venues.md, in units that make them exact: tick 0.01 USDT, lot 1 (ETH
# or BTC), quote unit 0.01 USDT, so k = 1 and a price of 1,000 USDT is 100,000 ticks.
def _usdt_engine(engine_cls, tiers, **kw):
    eng = engine_cls("0.01", "1", "0.01", tiers=tiers, mark_rule=MarkRule.INDEX, **kw)
    eng.add_account(100, 10**12, exempt=True)
    return eng


@pytest.mark.parametrize("trigger,basis,liq", [
    (Trigger.AT_OR_BELOW, MarginBasis.ENTRY, 51_000),   # 510.00: BitMEX's published figure
    (Trigger.BELOW, MarginBasis.ENTRY, 50_999),         # one tick short of it
    (Trigger.AT_OR_BELOW, MarginBasis.MARK, 50_505),    # 505.05 on the mark notional
])
def test_bitmex_bm1_liquidation_510_bankruptcy_500(engine_cls, trigger, basis, liq):
    # BM-1: wallet 10,000 USDT (1,000,000 units), long 20 ETHUSDT @ 1,000 (100,000 ticks), cross;
    # one tier, MM 1 %, IM 2 % (50x). Cost 2,000,000; ENTRY: MM = 20,000 (200 USDT), E = 20P -
    # 1,000,000 <= 20,000 up to P = 51,000. MARK: 20P - 1,000,000 <= ceil(0.2P) up to 50,505
    # (E 10,100, MM 10,101; at 50,506 E 10,120 > MM 10,102). Bankruptcy: ceil(1,000,000 / 20)
    # = 50,000 (500 USDT).
    eng = _usdt_engine(engine_cls, [(None, 10_000, 20_000)], trigger=trigger, mm_basis=basis)
    eng.add_account(1, 1_000_000)
    eng.seed_position(1, 100, 100_000, 20)
    eng.set_index(100_000)
    a = eng.account(1)
    assert (a.liquidation_price, a.bankruptcy_price) == (liq, 50_000)
    assert a.initial_margin == 40_000   # 400 USDT
    if basis == MarginBasis.ENTRY:
        assert a.maintenance_margin == 20_000   # 200 USDT
        eng.set_index(51_000)
        assert (eng.account(1).equity, eng.account(1).maintenance_margin) == (20_000, 20_000)


@pytest.mark.parametrize("basis,long_liq,short_liq", [
    (MarginBasis.ENTRY, 985_000, 816_000),   # 9,850 and 8,160 USDT: Bybit's published figures
    (MarginBasis.MARK, 984_925, 815_920),    # 9,849.25 and 8,159.20 on the mark notional
])
def test_bybit_by1_isolated_liquidation_prices(engine_cls, basis, long_liq, short_liq):
    # BY-1, isolated, trigger E <= MM: long 1 BTC @ 10,000 (1,000,000 ticks), 50x: margin 2 % =
    # 200 USDT (20,000 units), MM 0.5 %. ENTRY: MM = 5,000; E = 20,000 + P - 1,000,000 <= 5,000
    # up to P = 985,000. MARK: E <= ceil(0.005 P) up to 984,925 (E 4,925, MM 4,925). Short 1
    # BTC @ 8,000, 40x: margin 2.5 % = 20,000, ENTRY MM = 4,000: E = 820,000 - P <= 4,000 from
    # 816,000; MARK: at 815,920 E = 4,080 = MM = ceil(4,079.6); at 815,919 E = 4,081 > 4,080.
    # BY-2: the long's bankruptcy price ceil(1,000,000 - 20,000) = 980,000 (9,800 USDT).
    for side, entry, imr, liq in ((+1, 1_000_000, 20_000, long_liq),
                                  (-1, 800_000, 25_000, short_liq)):
        eng = _usdt_engine(engine_cls, [(None, 5_000, imr)], trigger=Trigger.AT_OR_BELOW,
                           mm_basis=basis)
        eng.add_account(1, 20_000, isolated_margin=20_000)
        if side > 0:
            eng.seed_position(1, 100, entry, 1)
        else:
            eng.seed_position(100, 1, entry, 1)
        eng.set_index(entry)
        a = eng.account(1)
        assert a.liquidation_price == liq
        if side > 0:
            assert a.bankruptcy_price == 980_000
        # the mark at the liquidation price queues the account; one tick better does not
        eng.set_index(liq + side)
        eng.liquidate()
        assert list(eng.queue()) == []
        eng.set_index(liq)
        eng.liquidate()
        assert list(eng.queue()) == [1]


def test_settings_are_kept_by_copies_and_pickles(engine_cls):
    # Long 10 @ 100 coll 300, MM 20 %: L = 90 under AT_OR_BELOW + ENTRY (see above); the
    # rebuilt indexes use the settings. A pickle made before the settings existed lacks them and
    # loads with today's behaviour: BELOW + MARK, L = 87.
    eng = _long_and_short(engine_cls, 300, 10, [(None, 200_000, 500_000)],
                          trigger=Trigger.AT_OR_BELOW, mm_basis=MarginBasis.ENTRY)
    for other in (pickle.loads(pickle.dumps(eng)), eng.copy(), copy.deepcopy(eng)):
        assert (other.trigger, other.mm_basis) == (Trigger.AT_OR_BELOW, MarginBasis.ENTRY)
        assert other.account(1).liquidation_price == 90
        other.set_index(90)
        other.liquidate()
        assert list(other.queue()) == [1]
    restore, (args, kwargs, state) = eng.__reduce__()
    del kwargs["trigger"], kwargs["mm_basis"]
    old = restore(args, kwargs, state)
    assert (old.trigger, old.mm_basis) == (Trigger.BELOW, MarginBasis.MARK)
    assert old.account(1).liquidation_price == 87


# =========================================================================== the owner table
# The compiled ledger finds an account by open addressing (orderbook/_slottable.pxd): owner
# o's home bucket is the top bits of (o >> 4) * PHI, its place in its block of 16 (o & 15)
# folded in, and its tag the next seven bits. These tests reach the table through the public
# API, where every lookup of an owner goes; the reference engine runs them too.

PHI = 0x9E3779B97F4A7C15
INT64_MAX = 2**63 - 1


def _found(eng, owners, collateral):
    got = eng.equities(owners)
    assert got["owner"].tolist() == list(owners)
    assert got["collateral"].tolist() == list(collateral)


def _absent(eng, owners):
    for owner in owners:
        with pytest.raises(KeyError):
            eng.account(owner)
        with pytest.raises(KeyError):
            eng.equities([owner])


def _sharing_home_and_tag(count, place):
    """``count`` owners whose block products agree in their top 24 bits, all at ``place`` in
    their block: one home bucket and one tag in every table up to 2**17 buckets."""
    inverse = pow(PHI, -1, 2**64)
    owners, step = [], 0
    while len(owners) < count:
        step += 1
        product = (0xABCDEF << 40) | (step * 0x9E3779B97 % 2**40)
        block = product * inverse % 2**64
        if block < 2**59:
            owners.append(block << 4 | place)
    return owners


def test_owners_at_the_int64_extremes_have_their_own_accounts(engine_cls):
    eng = make(engine_cls)
    owners = [0, 1, 15, 16, INT64_MAX, INT64_MAX - 1, INT64_MAX - 15, INT64_MAX - 16, 2**62]
    for k, owner in enumerate(owners):
        eng.add_account(owner, 1000 + k)
    _found(eng, owners, [1000 + k for k in range(len(owners))])
    assert eng.insurance_fund == 0
    _absent(eng, [2, 14, 17, INT64_MAX - 2, INT64_MAX - 17, 2**62 + 1, 2**61])
    for owner in owners:
        with pytest.raises(ValueError, match="already has an account"):
            eng.add_account(owner, 1)


def test_owners_sharing_a_home_bucket_and_tag_are_told_apart(engine_cls):
    # 40 owners probe one run of buckets whose tags all match: each lookup must compare owners,
    # and one of the family that has no account must be missed, not mistaken for a neighbour.
    family = _sharing_home_and_tag(48, 5)
    eng = make(engine_cls)
    for k, owner in enumerate(family[:40]):
        eng.add_account(owner, 1000 + k)
    _found(eng, family[:40], [1000 + k for k in range(40)])
    _found(eng, family[39::-1], [1000 + k for k in range(39, -1, -1)])
    _absent(eng, family[40:])


@pytest.mark.parametrize("pattern", ["sequential", "one per block", "strided", "random"])
def test_accounts_stay_found_through_many_growths(engine_cls, pattern):
    # 20,000 accounts: the table doubles from 16 to 32,768 buckets, half the owners entered one
    # by one and half in bulk; owner 0 and the fund were there before any growth.
    n = 20_000
    if pattern == "sequential":
        owners = np.arange(1, n + 1)
    elif pattern == "one per block":      # every owner at the same place of its block
        owners = np.arange(1, n + 1) * 16
    elif pattern == "strided":
        owners = np.arange(1, n + 1) * (2**40 + 3)
    else:
        owners = np.random.default_rng(7).choice(INT64_MAX, n, replace=False) + 1
    owners = owners.astype(np.int64)
    collateral = 10 + np.arange(n, dtype=np.int64) % 997
    eng = make(engine_cls)
    eng.add_account(0, 5)
    for owner, c in zip(owners[: n // 2].tolist(), collateral[: n // 2].tolist(), strict=True):
        eng.add_account(owner, c)
    eng.add_accounts(owners[n // 2:], collateral[n // 2:])
    _found(eng, [0, *owners.tolist()], [5, *collateral.tolist()])
    _found(eng, owners[::-1].tolist(), collateral[::-1].tolist())
    assert eng.account(0).collateral == 5 and eng.insurance_fund == 0
    absent = np.setdiff1d(np.concatenate([owners + 1, owners - 1, owners ^ 15]), owners)
    _absent(eng, [int(x) for x in absent[absent > 0][:200]])
    with pytest.raises(ValueError, match="already"):
        eng.add_accounts(owners[-1:], [1])


def test_a_copy_takes_accounts_without_touching_the_original(engine_cls):
    eng = make(engine_cls)
    eng.add_accounts(np.arange(100), np.full(100, 7))
    for other in (eng.copy(), copy.deepcopy(eng)):
        # enough new accounts to grow the copy's table more than once
        other.add_accounts(np.arange(100, 3_000), np.full(2_900, 9))
        _found(other, list(range(3_000)), [7] * 100 + [9] * 2_900)
        _absent(eng, [100, 101, 2_999])
        _found(eng, list(range(100)), [7] * 100)
    # the original, grown after the copies, takes the copies' owners with its own collateral
    eng.add_accounts(np.arange(100, 3_000), np.full(2_900, 11))
    _found(eng, list(range(3_000)), [7] * 100 + [11] * 2_900)


def test_a_pickled_engine_finds_every_owner_and_takes_new_ones(engine_cls):
    owners = [0, INT64_MAX, *_sharing_home_and_tag(20, 0), *range(1, 2_000)]
    eng = make(engine_cls)
    eng.add_accounts(owners, list(range(100, 100 + len(owners))))
    eng.add_account(10**12, 10, exempt=True)
    eng.seed_position(1, 10**12, 100, 2)
    back = pickle.loads(pickle.dumps(eng))
    _found(back, owners, list(range(100, 100 + len(owners))))
    assert back.account(1).position == 2 and back.account(10**12).position == -2
    _absent(back, [2_000, INT64_MAX - 1, *_sharing_home_and_tag(24, 0)[20:]])
    with pytest.raises(ValueError, match="already has an account"):
        back.add_account(INT64_MAX, 1)
    back.add_accounts(np.arange(2_001, 6_000), np.full(3_999, 3))
    _found(back, [0, 2_001, 5_999, INT64_MAX], [100, 3, 3, 101])
    _absent(eng, [2_001, 5_999])
