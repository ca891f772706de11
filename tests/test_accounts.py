"""Specification tests of the ledger (docs/liquidation.md): settlement, fees, conservation of
money, margin, liquidation and bankruptcy prices, isolated margin, deposits and the trade log.

Expected numbers are computed by hand; the conventions (k = 1, one 5 % / 10 % tier, the victim
"A") are in tests/engine_helpers.py. Every test runs on both engines (``engine_cls``).
"""

from __future__ import annotations

import math

import pytest
from engine_helpers import B, S, _index_engine, assert_conserved, make, victim_a

from orderbook.events import MarkRule

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
