"""Specification tests of the margin engine and liquidator (docs/liquidation.md).

Every expected number below is computed by hand from docs/liquidation.md (the arithmetic is in
the comments), never taken from running an implementation. Each test takes the ``engine_cls``
fixture, so it runs against the pure-Python reference ``orderbook.reference_engine.Engine`` and,
once it exists, the compiled ``orderbook.Engine``.

Conventions used throughout (unless a test says otherwise):

* ``k = 1`` (tick_size = lot_size = 1, default quote_unit), so ``V(p, q) = p * q``.
* one margin tier, ``TIERS = [(None, 50_000, 100_000)]``: MM = ceil(5% of N), IM = ceil(10% of N).
* owners 1..9 are ordinary accounts; 100+ are exempt liquidity providers (LPs); 50 the backstop.
* "A" is the standard victim: long 10 lots at 100 (cost 1000) with collateral 100, seeded
  against an exempt LP. At mark m: E = 100 + 10m - 1000 = 10m - 900, MM = ceil(10m * 5%) =
  ceil(m / 2).  m = 95: E = 50 >= MM = ceil(47.5) = 48 (safe); m = 94: E = 40 < MM = 47
  (liquidatable), so its liquidation price is 94; bankruptcy price ceil((1000 - 100) / 10) = 90.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from orderbook.events import Side

B, S = Side.BUY, Side.SELL

TIERS = [(None, 50_000, 100_000)]


# --------------------------------------------------------------------------- implementations


def _reference_cls():
    from orderbook.reference_engine import Engine

    return Engine


def _compiled_cls():
    try:
        import orderbook
    except ImportError:  # pragma: no cover - the package itself always imports
        return None
    return getattr(orderbook, "Engine", None)


@pytest.fixture(params=[
    "reference",
    pytest.param("compiled", marks=pytest.mark.skipif(
        _compiled_cls() is None,
        reason="orderbook.Engine (the compiled engine) does not exist yet; only the reference "
               "orderbook.reference_engine.Engine is tested")),
])
def engine_cls(request):
    """The Engine class under test: the pure-Python reference or the compiled engine."""
    return _reference_cls() if request.param == "reference" else _compiled_cls()


from orderbook.events import (  # noqa: E402
    NO_COUNTERPARTY, Deficit, ForcedKind, LimitRule, MarkRule, Sizing,
)

# --------------------------------------------------------------------------- helpers


def make(engine_cls, **kw):
    kw.setdefault("tiers", TIERS)
    return engine_cls(**kw)


def rows(records):
    """Liquidation records (structured array or list of dicts) as a list of plain dicts."""
    if isinstance(records, np.ndarray):
        return [{name: r[name].item() for name in records.dtype.names} for r in records]
    return [dict(r) for r in records]


def kind(row):
    return ForcedKind(int(row["kind"])).name


def of_kind(records, name, owner=None):
    return [r for r in rows(records) if kind(r) == name and (owner is None or r["owner"] == owner)]


def fund_balances(eng):
    hist = eng.fund_history()
    if isinstance(hist, np.ndarray) and hist.dtype.names and "balance" in hist.dtype.names:
        return [int(x) for x in hist["balance"]]
    return [int(x) for x in hist]


def equity_at(acc, m, k=1):
    """Equity of an account at mark m, straight from the spec: collateral + U(m)."""
    q, c = acc.position, acc.cost
    if q > 0:
        return acc.collateral + q * m * k - c
    if q < 0:
        return acc.collateral + c - (-q) * m * k
    return acc.collateral


def assert_conserved(eng, owners, k=1):
    """sum(equity(m)) + insurance_fund + fees_collected == total_deposits for any common m,
    and positions sum to zero (the insurance fund holds no position in these scenarios)."""
    accs = [eng.account(o) for o in owners]
    assert sum(a.position for a in accs) == 0
    for m in (1, 93, 100, 12_345):
        total = sum(equity_at(a, m, k) for a in accs) + eng.insurance_fund + eng.fees_collected
        assert total == eng.total_deposits, f"conservation broken at common mark {m}"


def victim_a(eng, owner=1, lp=100, collateral=100):
    """Account `owner`: long 10 @ 100 (cost 1000), collateral `collateral`, against LP `lp`."""
    eng.add_account(owner, collateral)
    eng.seed_position(owner, lp, 100, 10)


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


def test_ioc_amend_cancel_route_through_engine_and_settle(engine_cls):
    eng = make(engine_cls)
    eng.add_account(1, 1000)
    eng.add_account(101, 1_000_000, exempt=True)
    eng.limit(1, S, 100, 5, 101)
    eng.limit(2, B, 90, 2, 1)                 # rests, no fill
    assert eng.account(1).position == 0
    eng.amend(2, 101, 2)                      # requeued at 101: crosses the ask, 2 @ 100
    x = eng.account(1)
    assert (x.position, x.cost) == (2, 200)
    eng.ioc(3, B, 99, 1, 1)                   # nothing at or below 99: no fill
    assert eng.account(1).position == 2
    eng.ioc(4, B, 100, 1, 1)                  # 1 @ 100 -> long 3, C 300
    x = eng.account(1)
    assert (x.position, x.cost) == (3, 300)
    eng.cancel(1)                             # LP's remaining 2 lots
    assert eng.book.n_orders == 0
    assert eng.account(101).position == -3
    assert eng.book.last_price == 100
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


def _index_engine(engine_cls, **kw):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, **kw)
    eng.add_account(100, 10_000_000, exempt=True)
    return eng


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


# =========================================================================== mark rules


def _lp_engine(engine_cls, **kw):
    eng = make(engine_cls, **kw)
    eng.add_account(101, 1_000_000, exempt=True)
    eng.add_account(102, 1_000_000, exempt=True)
    return eng


def test_mark_last(engine_cls):
    eng = _lp_engine(engine_cls, mark_rule=MarkRule.LAST)
    assert eng.mark_price() is None          # no trade yet
    eng.limit(1, B, 99, 5, 101)
    eng.limit(2, S, 102, 5, 102)
    assert eng.mark_price() is None          # quotes alone are no trade
    eng.market(3, B, 1, 101)                 # trades at 102
    assert eng.mark_price() == 102
    eng.market(4, S, 2, 102)                 # trades at 99
    assert eng.mark_price() == 99
    eng.cancel(1)
    eng.cancel(2)
    assert eng.mark_price() == 99            # an empty book does not erase the last price


def test_mark_mid(engine_cls):
    eng = _lp_engine(engine_cls, mark_rule=MarkRule.MID)
    assert eng.mark_price() is None
    eng.limit(1, B, 99, 5, 101)
    assert eng.mark_price() is None          # one side empty, no previous mark
    eng.limit(2, S, 102, 5, 102)
    assert eng.mark_price() == 100           # floor((99 + 102) / 2) = floor(100.5) = 100
    eng.limit(3, B, 100, 5, 101)
    assert eng.mark_price() == 101           # floor((100 + 102) / 2) = 101
    eng.cancel(2)
    assert eng.mark_price() == 101           # ask side empty: the previous mark stands


def test_mark_index(engine_cls):
    eng = _lp_engine(engine_cls, mark_rule=MarkRule.INDEX)
    assert eng.mark_price() is None
    eng.limit(1, B, 99, 5, 101)
    eng.limit(2, S, 102, 5, 102)
    eng.market(3, B, 1, 101)
    assert eng.mark_price() is None          # trades and quotes do not set an index
    eng.set_index(123)
    assert eng.mark_price() == 123
    eng.set_index(90)
    assert eng.mark_price() == 90


def test_mark_index_clamped(engine_cls):
    eng = _lp_engine(engine_cls, mark_rule=MarkRule.INDEX_CLAMPED)
    assert eng.mark_price() is None
    eng.set_index(150)
    assert eng.mark_price() == 150           # both sides empty: the index alone
    eng.limit(1, B, 99, 5, 101)
    eng.limit(2, S, 102, 5, 102)
    assert eng.mark_price() == 102           # median(150, 99, 102)
    eng.set_index(50)
    assert eng.mark_price() == 99            # median(50, 99, 102)
    eng.set_index(100)
    assert eng.mark_price() == 100           # median(100, 99, 102)
    eng.cancel(2)
    eng.set_index(150)
    assert eng.mark_price() == 150           # ask side empty: the index alone


def test_no_mark_nobody_liquidated(engine_cls):
    eng = _index_engine(engine_cls)
    eng.add_account(1, 0)                    # long 10 @ 100 with no collateral at all
    eng.seed_position(1, 100, 100, 10)
    assert eng.mark_price() is None
    assert len(rows(eng.liquidate())) == 0
    assert list(eng.queue()) == []
    assert eng.account(1).position == 10


# =========================================================================== worked examples


def _three_level_book(eng, levels):
    """LP 101 bids at the given (price, qty) levels; LP 102 then sells 1 lot into the top bid,
    which sets the LAST mark to that price."""
    for i, (price, qty) in enumerate(levels):
        eng.limit(1000 + i, B, price, qty, 101)
    eng.market(2000, S, 1, 102)


def _setup_lp(eng):
    eng.add_account(100, 100_000, exempt=True)   # seed counterparty
    eng.add_account(101, 100_000, exempt=True)   # bids
    eng.add_account(102, 100_000, exempt=True)   # shock seller


def test_example1_liquidation_through_three_levels(engine_cls):
    eng = make(engine_cls, liquidation_fee_ppm=10_000, insurance_fund=1000)
    _setup_lp(eng)
    victim_a(eng)
    # bids 94 x 4, 93 x 3, 92 x 5; the shock sells 1 @ 94 -> mark 94, bids 94 x 3, 93 x 3, 92 x 5
    _three_level_book(eng, [(94, 4), (93, 3), (92, 5)])
    assert eng.mark_price() == 94
    assert eng.account(1).liquidation_price == 94
    records = rows(eng.liquidate())
    # round 0: A crossed (94 <= 94), FULL market sell of 10:
    #   3 @ 94: R = floor(1000 * 3/10) = 300, PnL = 282 - 300 = -18 (C 700, q 7)
    #   3 @ 93: R = floor(700 * 3/7)   = 300, PnL = 279 - 300 = -21 (C 400, q 4)
    #   4 @ 92: R = 400,                      PnL = 368 - 400 = -32 (flat)
    #   realised -71; collateral 100 - 71 = 29
    #   liquidation fee ceil(929 * 1%) = ceil(9.29) = 10 <= equity 29 -> collateral 19, fund 1010
    assert len(records) == 1
    r = records[0]
    assert kind(r) == "ORDER"
    assert (r["round"], r["generation"], r["owner"], r["side"]) == (0, 0, 1, -1)
    assert (r["qty"], r["filled"]) == (10, 10)
    assert r["avg_price"] == pytest.approx(92.9)          # 929 / 10
    assert (r["mark_before"], r["mark_after"]) == (94, 92)
    assert r["slippage"] == pytest.approx(1.1)           # sell: 94 - 92.9, worse for A
    assert r["fee"] == 10
    assert r["fund_cover"] == 0
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (0, 0, 19)
    assert eng.insurance_fund == 1010
    balances = fund_balances(eng)
    assert balances[0] == 1010 and balances[-1] == 1010
    # the book: the three levels are consumed exactly as computed, 92 x 1 left
    l3 = eng.book.l3()
    assert [(int(o["price"]), int(o["qty"])) for o in l3] == [(92, 1)]
    # LP 101 bought 1 + 10 lots
    assert eng.account(101).position == 11
    assert list(eng.queue()) == []
    assert_conserved(eng, [1, 100, 101, 102])
    # forced_orders() keeps the same row
    assert len(rows(eng.forced_orders())) == 1


def test_order_record_has_no_counterparty(engine_cls):
    # docs/liquidation.md, Records: a forced order through the book has no counterparty, so the
    # field is NO_COUNTERPARTY (0 is a valid owner id and -1 is the insurance fund).
    eng = make(engine_cls)
    _setup_lp(eng)
    victim_a(eng)
    _three_level_book(eng, [(94, 4), (93, 3), (92, 5)])
    records = rows(eng.liquidate())
    assert [kind(r) for r in records] == ["ORDER"]
    assert records[0]["counterparty"] == NO_COUNTERPARTY


def test_example2_two_generation_cascade(engine_cls):
    eng = make(engine_cls)
    _setup_lp(eng)
    victim_a(eng, owner=1)                          # L = 94
    # B: long 10 @ 100, coll 120: E = 10m - 880; m = 93: E = 50 >= ceil(46.5) = 47 (safe);
    #    m = 92: E = 40 < 46 -> L = 92; bankruptcy ceil(880 / 10) = 88
    victim_a(eng, owner=2, collateral=120)
    _three_level_book(eng, [(94, 4), (93, 3), (92, 5), (91, 2), (90, 20)])
    assert eng.account(2).liquidation_price == 92
    records = rows(eng.liquidate())
    assert [(r["round"], r["generation"], r["owner"]) for r in records] == [(0, 0, 1), (1, 1, 2)]
    ra, rb = records
    # round 0 at mark 94: only A crossed (B's 92 < 94). A sells 3 @ 94, 3 @ 93, 4 @ 92 -> last 92
    assert (ra["qty"], ra["filled"], ra["mark_before"], ra["mark_after"]) == (10, 10, 94, 92)
    assert ra["avg_price"] == pytest.approx(92.9)
    # round 1 at mark 92 crosses B (generation 1). B sells 1 @ 92, 2 @ 91, 7 @ 90 = 904:
    #   1 @ 92: R = 100, PnL -8 (C 900, q 9); 2 @ 91: R = floor(900*2/9) = 200, PnL -18 (C 700);
    #   7 @ 90: R = 700, PnL -70 -> realised -96, collateral 120 - 96 = 24
    assert (rb["qty"], rb["filled"], rb["mark_before"], rb["mark_after"]) == (10, 10, 92, 90)
    assert rb["avg_price"] == pytest.approx(90.4)        # 904 / 10
    assert rb["slippage"] == pytest.approx(1.6)          # 92 - 90.4
    assert eng.account(1).collateral == 29
    assert eng.account(2).collateral == 24
    assert eng.account(2).position == 0
    assert eng.mark_price() == 90
    assert [(int(o["price"]), int(o["qty"])) for o in eng.book.l3()] == [(90, 13)]
    assert_conserved(eng, [1, 2, 100, 101, 102])


def test_example3_bankruptcy_covered_by_insurance_fund(engine_cls):
    eng = make(engine_cls, liquidation_fee_ppm=10_000, insurance_fund=1000)
    _setup_lp(eng)
    victim_a(eng)                                    # bankruptcy price 90
    # bids 94 x 2, 85 x 20; the shock takes 1 @ 94 -> mark 94, bids 94 x 1, 85 x 20
    _three_level_book(eng, [(94, 2), (85, 20)])
    records = rows(eng.liquidate())
    # A sells 1 @ 94 (R 100, PnL -6) and 9 @ 85 (below the bankruptcy price 90; R 900, PnL -135):
    #   collateral 100 - 141 = -41. Liquidation fee ceil(859 * 1%) = 9 but capped at the equity
    #   after the fills, max(0, -41) = 0. Shortfall 41 paid by the fund: 1000 -> 959, A -> 0.
    orders = of_kind(records, "ORDER", owner=1)
    assert len(orders) == 1
    r = orders[0]
    assert (r["qty"], r["filled"], r["fee"]) == (10, 10, 0)
    assert r["avg_price"] == pytest.approx(85.9)         # 859 / 10
    assert r["slippage"] == pytest.approx(8.1)           # 94 - 85.9
    assert sum(x["fund_cover"] for x in records if x["owner"] == 1) == 41
    assert sum(x["socialized"] + x["bad_debt"] for x in records) == 0
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (0, 0, 0)
    assert eng.insurance_fund == 959
    assert fund_balances(eng)[0] == 959
    assert_conserved(eng, [1, 100, 101, 102])


def test_shortfall_beyond_fund_under_none_leaves_fund_negative(engine_cls):
    eng = make(engine_cls, insurance_fund=30, deficit=Deficit.NONE)
    _setup_lp(eng)
    victim_a(eng)
    _three_level_book(eng, [(94, 2), (85, 20)])
    records = rows(eng.liquidate())
    # as in example 3, collateral -41; the fund pays min(41, 30) = 30 and the remaining 11
    # stays with the fund, which goes to 30 - 30 - 11 = -11; A ends at 0
    assert eng.account(1).collateral == 0
    assert eng.insurance_fund == -11
    assert sum(x["fund_cover"] for x in records) == 30
    assert sum(x["bad_debt"] for x in records) == 11     # "the record says so"
    assert_conserved(eng, [1, 100, 101, 102])


def test_example4_bankruptcy_exhausts_fund_then_adl_by_ranking(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit=LimitRule.BANKRUPTCY,
               deficit=Deficit.ADL, insurance_fund=10)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, 100)
    eng.add_account(2, 440)      # S1: short 5 @ 104 (C 520)
    eng.add_account(3, 60)       # S2: short 5 @ 96  (C 480)
    eng.seed_position(1, 2, 104, 5)
    eng.seed_position(1, 3, 96, 5)
    # A: long 10, C = 520 + 480 = 1000, collateral 100 -> bankruptcy ceil(900 / 10) = 90
    eng.limit(1, B, 90, 4, 101)
    eng.limit(2, B, 80, 50, 101)
    eng.set_index(92)            # A: E = 920 - 900 = 20 < MM 46
    assert eng.account(1).bankruptcy_price == 90
    records = rows(eng.liquidate())
    # IOC sell 10 @ 90 fills 4 @ 90: R = 400, PnL -40 -> coll 60, C 600, q 6 (bankruptcy stays 90)
    # remainder 6: no backstop; fund 10 < MM of 6 lots at mark 92 = ceil(552 * 5%) = 28 -> ADL.
    # ranking at 92, (U / C) * (N / E):
    #   S1: U = 520 - 460 = 60, E = 440 + 60 = 500: (60/520) * (460/500) = 0.106
    #   S2: U = 480 - 460 = 20, E =  60 + 20 =  80: (20/480) * (460/80)  = 0.240  -> first
    # S2 closes its whole 5 @ 90, then S1 closes 1 @ 90.
    order = of_kind(records, "ORDER", owner=1)
    assert len(order) == 1
    assert (order[0]["qty"], order[0]["filled"]) == (10, 4)
    assert order[0]["avg_price"] == pytest.approx(90.0)
    adl = of_kind(records, "ADL", owner=1)
    assert [(r["counterparty"], r["filled"]) for r in adl] == [(3, 5), (2, 1)]
    assert all(r["avg_price"] == pytest.approx(90.0) for r in adl)
    assert not of_kind(records, "FUND_TAKEOVER")
    a, s1, s2 = eng.account(1), eng.account(2), eng.account(3)
    # A sells 6 @ 90 against C 600: PnL -60 -> collateral 0, flat (no shortfall)
    assert (a.position, a.cost, a.collateral) == (0, 0, 0)
    # S2: R = 480, short PnL = 480 - 450 = +30 -> 90, flat
    assert (s2.position, s2.cost, s2.collateral) == (0, 0, 90)
    # S1: R = floor(520 * 1 / 5) = 104, PnL = 104 - 90 = +14 -> 454; q -4, C 416
    assert (s1.position, s1.cost, s1.collateral) == (-4, 416, 454)
    assert eng.account(101).position == 4
    assert eng.insurance_fund == 10
    assert [(int(o["price"]), int(o["qty"])) for o in eng.book.l3()] == [(80, 50)]
    assert_conserved(eng, [1, 2, 3, 101])


def test_example5_restore_stops_after_one_step(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, sizing=Sizing.RESTORE)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)
    eng.limit(1, B, 94, 50, 101)
    eng.set_index(94)
    # E = 40, MM(10 lots) = 47. RESTORE: fewest x with MM(V(94, 10 - x)) <= 40:
    #   x = 1: ceil(846 * 5%) = ceil(42.3) = 43 > 40; x = 2: ceil(752 * 5%) = ceil(37.6) = 38 <= 40
    records = rows(eng.liquidate())
    assert len(records) == 1
    r = records[0]
    assert (r["round"], r["generation"], r["owner"], r["qty"], r["filled"]) == (0, 0, 1, 2, 2)
    # sells 2 @ 94: R = 200, PnL = 188 - 200 = -12 -> coll 88, C 800, q 8
    # at 94: E = 88 + 752 - 800 = 40 >= MM 38 -> no longer liquidatable, leaves the queue
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (8, 800, 88)
    assert (a.equity, a.maintenance_margin) == (40, 38)
    assert list(eng.queue()) == []
    # new liquidation price: E = 8m - 712 vs ceil(0.4 m): 94 -> 40 >= 38; 93 -> 32 < 38
    assert a.liquidation_price == 93
    assert_conserved(eng, [1, 100, 101])


def test_fraction_stops_after_one_step(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, sizing=Sizing.FRACTION,
               fraction_ppm=250_000)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)
    eng.limit(1, B, 94, 50, 101)
    eng.set_index(94)
    records = rows(eng.liquidate())
    # x = max(1, ceil(10 * 25%)) = ceil(2.5) = 3; sells 3 @ 94: R = 300, PnL = 282 - 300 = -18
    # -> coll 82, C 700, q 7; E = 82 + 658 - 700 = 40 >= MM ceil(32.9) = 33: done
    assert [(r["round"], r["qty"], r["filled"]) for r in records] == [(0, 3, 3)]
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (7, 700, 82)
    assert list(eng.queue()) == []


def test_fraction_steps_again_next_round(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, sizing=Sizing.FRACTION,
               fraction_ppm=100_000)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)
    eng.limit(1, B, 94, 50, 101)
    eng.set_index(94)
    eng.liquidation_round()
    # round 0: x = max(1, ceil(10 * 10%)) = 1; sells 1 @ 94: R = 100, PnL -6 -> coll 94, C 900,
    # q 9; E = 94 + 846 - 900 = 40 < MM ceil(42.3) = 43 -> still liquidatable, stays queued
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (9, 900, 94)
    assert list(eng.queue()) == [1]
    eng.liquidate()
    # round 1: x = max(1, ceil(9 * 10%)) = ceil(0.9) = 1; sells 1 @ 94 -> coll 88, C 800, q 8;
    # E = 40 >= MM 38 -> done
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (8, 800, 88)
    assert list(eng.queue()) == []
    records = rows(eng.forced_orders())
    assert [(r["round"], r["generation"], r["qty"], r["filled"]) for r in records] == [
        (0, 0, 1, 1), (1, 0, 1, 1)]


# =========================================================================== round cap, limits


def test_round_cap_queues_until_next_round(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, round_cap=1000)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    # owner 2 is added first and is the worse off (coll 90: E = 10m - 910; m = 96: 50 >= 48,
    # m = 95: 40 < 48 -> L = 95 > A's 94), yet the queue is in ascending owner id.
    victim_a(eng, owner=2, collateral=90)
    victim_a(eng, owner=1)
    assert eng.account(2).liquidation_price == 95
    eng.limit(1, B, 94, 100, 101)
    eng.set_index(94)
    eng.liquidation_round()
    # round 0: queue [1, 2]. A: V(94, 10) = 940 <= 1000 -> sells 10, 60 left.
    # B: V(94, 10) = 940 > 60 -> x shrinks to floor(60 / 94) = 0 -> B waits.
    assert eng.account(1).position == 0
    assert eng.account(1).collateral == 40     # PnL 940 - 1000 = -60
    assert eng.account(2).position == 10
    assert list(eng.queue()) == [2]
    eng.liquidation_round()
    # round 1: the cap is fresh; B sells 10 @ 94 -> collateral 90 - 60 = 30
    assert eng.account(2).position == 0
    assert eng.account(2).collateral == 30
    assert list(eng.queue()) == []
    records = rows(eng.forced_orders())
    assert [(r["round"], r["generation"], r["owner"], r["filled"]) for r in records] == [
        (0, 0, 1, 10), (1, 0, 2, 10)]
    assert_conserved(eng, [1, 2, 100, 101])


def test_band_limit_leaves_remainder_queued(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit=LimitRule.BAND, band_ppm=20_000)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)
    eng.limit(1, B, 93, 1, 101)
    eng.limit(2, B, 90, 50, 101)
    eng.set_index(94)
    eng.liquidation_round()
    # sell limit = ceil(94 * 980_000 / 1e6) = ceil(92.12) = 93: fills 1 @ 93, 90 is out of band.
    # 1 @ 93: R = 100, PnL -7 -> coll 93, C 900, q 9; E(94) = 93 + 846 - 900 = 39 < MM 43
    recs = rows(eng.forced_orders())
    assert [(r["round"], r["side"], r["qty"], r["filled"]) for r in recs] == [(0, -1, 10, 1)]
    assert recs[0]["avg_price"] == pytest.approx(93.0)
    assert recs[0]["slippage"] == pytest.approx(1.0)
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (9, 900, 93)
    assert list(eng.queue()) == [1]
    assert eng.book.quantity_at(B, 90) == 50
    # more liquidity inside the band; round 1 sells the remaining 9 @ 93:
    # R = 900, PnL = 837 - 900 = -63 -> collateral 30
    eng.limit(3, B, 93, 20, 101)
    eng.liquidation_round()
    recs = rows(eng.forced_orders())
    assert [(r["round"], r["generation"], r["qty"], r["filled"]) for r in recs] == [
        (0, 0, 10, 1), (1, 0, 9, 9)]
    a = eng.account(1)
    assert (a.position, a.collateral) == (0, 30)
    assert list(eng.queue()) == []
    assert_conserved(eng, [1, 100, 101])


def test_band_limit_for_a_short_is_floor(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit=LimitRule.BAND, band_ppm=20_000)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, 100)
    eng.seed_position(100, 1, 100, 10)       # short 10 @ 100, coll 100: L = 105
    eng.limit(1, S, 107, 1, 101)
    eng.limit(2, S, 109, 50, 101)
    eng.set_index(106)                       # E = 1100 - 1060 = 40 < MM ceil(53) = 53
    eng.liquidation_round()
    # buy limit = floor(106 * 1_020_000 / 1e6) = floor(108.12) = 108: fills 1 @ 107 only.
    # R = 100, short PnL = 100 - 107 = -7 -> coll 93, C 900, q -9;
    # E(106) = 93 + 900 - 954 = 39 < MM ceil(47.7) = 48 -> still queued
    recs = rows(eng.forced_orders())
    assert [(r["side"], r["qty"], r["filled"]) for r in recs] == [(1, 10, 1)]
    assert recs[0]["avg_price"] == pytest.approx(107.0)
    assert recs[0]["slippage"] == pytest.approx(1.0)   # buy: 107 - 106, worse for the short
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (-9, 900, 93)
    assert list(eng.queue()) == [1]
    assert eng.book.quantity_at(S, 109) == 50


def test_liquidation_fee_capped_by_remaining_equity(engine_cls):
    eng = make(engine_cls, liquidation_fee_ppm=50_000, insurance_fund=1000)
    _setup_lp(eng)
    victim_a(eng)
    _three_level_book(eng, [(94, 4), (93, 3), (92, 5)])
    records = rows(eng.liquidate())
    # fills as in example 1: collateral 29 after the fills, flat (equity 29 at any mark);
    # fee ceil(929 * 5%) = ceil(46.45) = 47 > 29 -> fee 29, collateral 0, fund 1029
    assert [r["fee"] for r in records] == [29]
    assert eng.account(1).collateral == 0
    assert eng.insurance_fund == 1029
    assert sum(r["fund_cover"] for r in records) == 0
    assert_conserved(eng, [1, 100, 101, 102])


def test_exempt_accounts_never_liquidated(engine_cls):
    eng = _index_engine(engine_cls)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, 10_000)
    eng.add_account(3, 0, exempt=True)
    eng.seed_position(3, 1, 100, 10)         # exempt long 10 @ 100 with no collateral
    eng.limit(1, B, 50, 100, 101)
    eng.set_index(50)                        # E = 500 - 1000 = -500 < MM 25, but exempt
    assert len(rows(eng.liquidate())) == 0
    assert list(eng.queue()) == []
    assert eng.account(3).position == 10
    assert eng.account(3).collateral == 0
    assert eng.book.quantity_at(B, 50) == 100


def test_backstop_takeover_at_discount(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit=LimitRule.BANKRUPTCY, backstop=50,
               backstop_discount_ppm=100_000, insurance_fund=1000)
    eng.add_account(50, 100_000, exempt=True)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)                            # bankruptcy 90
    eng.limit(1, B, 90, 4, 101)
    eng.set_index(92)
    eng.liquidation_round()
    records = rows(eng.forced_orders())
    # IOC sell 10 @ 90: 4 @ 90 -> coll 60, C 600, q 6 (bankruptcy price stays 90)
    # backstop takes 6 at 90 moved 10% in its favour (it buys): 90 * 0.9 = 81
    # A: PnL = 6 * 81 - 600 = -114 -> coll -54; the fund covers 54: 1000 -> 946, A -> 0
    order = of_kind(records, "ORDER", owner=1)
    assert [(r["qty"], r["filled"]) for r in order] == [(10, 4)]
    back = of_kind(records, "BACKSTOP", owner=1)
    assert [(r["counterparty"], r["filled"]) for r in back] == [(50, 6)]
    assert back[0]["avg_price"] == pytest.approx(81.0)
    assert sum(r["fund_cover"] for r in records) == 54
    a, bs = eng.account(1), eng.account(50)
    assert (a.position, a.cost, a.collateral) == (0, 0, 0)
    assert (bs.position, bs.cost, bs.collateral) == (6, 486, 100_000)
    assert eng.insurance_fund == 946
    assert_conserved(eng, [1, 50, 100, 101])


def test_fund_takeover_at_bankruptcy_price(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit=LimitRule.BANKRUPTCY,
               insurance_fund=1000)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)
    eng.limit(1, B, 90, 4, 101)
    eng.set_index(92)
    eng.liquidation_round()
    records = rows(eng.forced_orders())
    # 4 @ 90 through the book, then the fund (1000 >= MM of 6 lots at 92 = 28) takes 6 @ 90:
    # A: PnL = 540 - 600 = -60 -> collateral 60 - 60 = 0, flat, no shortfall
    order = of_kind(records, "ORDER", owner=1)
    assert [(r["qty"], r["filled"]) for r in order] == [(10, 4)]
    take = of_kind(records, "FUND_TAKEOVER", owner=1)
    assert [r["filled"] for r in take] == [6]
    assert take[0]["avg_price"] == pytest.approx(90.0)
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (0, 0, 0)


def test_socialised_loss_pro_rata_largest_remainder(engine_cls):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, deficit=Deficit.SOCIALIZE, insurance_fund=8)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, 100)
    for owner in (2, 3, 4):
        eng.add_account(owner, 100)
    eng.seed_position(1, 2, 100, 4)          # S1 short 4 @ 100
    eng.seed_position(1, 3, 100, 3)          # S2 short 3 @ 100
    eng.seed_position(1, 4, 100, 3)          # S3 short 3 @ 100 (A: long 10, C 1000)
    eng.limit(1, B, 85, 20, 101)
    eng.set_index(85)
    records = rows(eng.liquidate())
    # A sells 10 @ 85: PnL = 850 - 1000 = -150 -> collateral -50. Fund pays min(50, 8) = 8 -> 0.
    # 42 left, shared over positive unrealised PnL at 85 (LP 101 bought at 85: U = 0, excluded):
    #   S1: U = 400 - 340 = 60 -> 42 * 60/150 = 16.8; S2, S3: U = 45 -> 12.6 each
    #   floors 16 + 12 + 12 = 40; 2 left by largest remainder: S1 (.8), then S2/S3 tie (.6)
    #   broken by owner id -> S2. Charges 17, 13, 12.
    assert eng.insurance_fund == 0
    assert eng.account(1).collateral == 0
    assert [eng.account(o).collateral for o in (2, 3, 4)] == [100 - 17, 100 - 13, 100 - 12]
    assert sum(r["fund_cover"] for r in records) == 8
    assert sum(r["socialized"] for r in records) == 42
    assert sum(r["bad_debt"] for r in records) == 0
    assert_conserved(eng, [1, 2, 3, 4, 101])


def test_forced_order_triggers_stops_in_the_same_call(engine_cls):
    eng = make(engine_cls)
    _setup_lp(eng)
    victim_a(eng)
    eng.add_account(3, 1000)
    eng.seed_position(3, 100, 100, 2)        # C: long 2 @ 100, never liquidatable
    # bids 94 x 4, 93 x 3, 92 x 5, 91 x 10; shock 1 @ 94
    _three_level_book(eng, [(94, 4), (93, 3), (92, 5), (91, 10)])
    eng.stop_market(77, S, 93, 2, 3)         # armed: last 94 > 93
    eng.liquidate()
    # A's forced sell: 3 @ 94, 3 @ 93 (triggers C's stop), 4 @ 92; then the stop sells
    # 1 @ 92 (R 100, PnL -8) and 1 @ 91 (R 100, PnL -9) -> C collateral 983, flat
    rec = of_kind(eng.forced_orders(), "ORDER", owner=1)
    assert [(r["qty"], r["filled"]) for r in rec] == [(10, 10)]
    assert rec[0]["avg_price"] == pytest.approx(92.9)
    assert eng.book.n_stops == 0
    c = eng.account(3)
    assert (c.position, c.collateral) == (0, 983)
    assert eng.account(1).collateral == 29
    assert eng.book.quantity_at(B, 91) == 9
    assert_conserved(eng, [1, 3, 100, 101, 102])


# =========================================================================== bad input


def test_add_account_bad_input(engine_cls):
    eng = make(engine_cls, insurance_fund=5)
    with pytest.raises(ValueError):
        eng.add_account(1, -5)               # negative collateral
    with pytest.raises(KeyError):
        eng.account(1)                       # nothing was added
    with pytest.raises(ValueError):
        eng.add_account(-2, 10)              # owner ids are >= 0
    assert eng.total_deposits == 5
    eng.add_account(1, 10)
    with pytest.raises(ValueError):
        eng.deposit(1, -1)
    assert eng.account(1).collateral == 10
    assert eng.total_deposits == 15


def test_unknown_account_raises_keyerror_and_changes_nothing(engine_cls):
    eng = make(engine_cls)
    eng.add_account(1, 10)
    with pytest.raises(KeyError):
        eng.account(999)
    with pytest.raises(KeyError):
        eng.deposit(999, 10)
    with pytest.raises(KeyError):
        eng.seed_position(1, 999, 100, 1)
    with pytest.raises(KeyError):
        eng.seed_position(999, 1, 100, 1)
    with pytest.raises(KeyError):
        eng.limit(1, B, 100, 1, 999)
    assert eng.book.n_orders == 0
    acc = eng.account(1)
    assert (acc.position, acc.cost, acc.collateral) == (0, 0, 10)
    assert eng.total_deposits == 10


def test_negative_user_order_id_refused(engine_cls):
    eng = make(engine_cls)
    eng.add_account(1, 10)
    with pytest.raises(ValueError):
        eng.limit(-1, B, 100, 1, 1)          # negative ids belong to the liquidator
    assert eng.book.n_orders == 0


@pytest.mark.parametrize("name", ["taker_fee_ppm", "maker_fee_ppm", "liquidation_fee_ppm",
                                  "fraction_ppm", "band_ppm", "backstop_discount_ppm"])
@pytest.mark.parametrize("value", [-1, 10**6 + 1])
def test_rates_outside_ppm_range(engine_cls, name, value):
    with pytest.raises(ValueError, match=name):
        make(engine_cls, **{name: value})
    make(engine_cls, **{name: 10**6})        # the bounds themselves are fine
    make(engine_cls, **{name: 0})


@pytest.mark.parametrize("tiers", [
    [(1000, 10_000, 20_000), (1000, 20_000, 30_000)],      # max_notional not strictly increasing
    [(5000, 10_000, 20_000), (1000, 20_000, 30_000)],      # decreasing
    [(None, 10_000, 20_000), (1000, 20_000, 30_000)],      # None not last
    [(1000, 20_000, 30_000), (None, 10_000, 40_000)],      # maintenance rate decreasing
    [(1000, 20_000, 40_000), (None, 30_000, 30_000)],      # initial rate decreasing
    [(None, 60_000, 50_000)],                              # maintenance > initial
    [(None, -1, 10_000)],                                  # rate below 0
    [(None, 10_000, 10**6 + 1)],                           # rate above 10**6
])
def test_tiers_validation(engine_cls, tiers):
    with pytest.raises(ValueError, match="tiers"):
        make(engine_cls, tiers=tiers)


def test_max_price_and_max_position(engine_cls):
    eng = make(engine_cls, max_price=1000, max_position=10)
    eng.add_account(1, 1_000_000)
    eng.add_account(101, 1_000_000, exempt=True)
    with pytest.raises(ValueError):
        eng.limit(1, B, 1001, 1, 1)          # above max_price
    eng.limit(1, B, 1000, 1, 1)              # at max_price: fine
    eng.cancel(1)
    eng.seed_position(1, 101, 100, 8)        # position +8
    with pytest.raises(ValueError):
        eng.limit(2, B, 50, 3, 1)            # 8 + 3 = 11 > 10
    eng.limit(2, B, 50, 2, 1)                # 8 + 2 = 10: fine
    with pytest.raises(ValueError):
        eng.limit(3, B, 49, 1, 1)            # 8 + 2 resting + 1 = 11 > 10
    with pytest.raises(ValueError):
        eng.market(4, B, 1, 1)               # the same exposure through a market order
    with pytest.raises(ValueError):
        eng.limit(5, S, 200, 19, 1)          # 8 - 19 = -11
    eng.limit(5, S, 200, 18, 1)              # 8 - 18 = -10: fine
    assert eng.book.n_orders == 2
    assert eng.account(1).position == 8


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


def test_isolated_shortfall_is_covered_by_the_fund_not_the_reserve(engine_cls):
    # The isolated long is closed at 80 (bids only there): realised 10 * 80 - 1000 = -200,
    # margin 100 - 200 = -100; the fund (500) pays 100; the reserve of 900 stays.
    eng = make(engine_cls, insurance_fund=500)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(1, 1000, isolated_margin=100)
    eng.seed_position(1, 100, 100, 10)
    eng.limit(1, B, 80, 10, 100)
    eng.limit(2, S, 81, 1, 100)
    eng.market(3, S, 1, 100)     # last = 80: mark 80, below the liquidation price 94
    eng.limit(4, B, 80, 1, 100)  # restore the 10 lots of bids at 80
    eng.liquidate()
    iso = eng.account(1)
    assert (iso.position, iso.collateral, iso.reserve) == (0, 0, 900)
    assert eng.insurance_fund == 400
    assert eng.total_equity() + eng.fees_collected == eng.total_deposits


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


def test_entering_liquidation_cancels_the_accounts_own_orders(engine_cls):
    # With CANCEL_TAKER, A's own bid at 94 would cancel every forced sell forever; entering the
    # queue cancels it (and A's armed stop), so the forced sell fills 10 @ 93 against the LP.
    from orderbook import SelfTradePrevention

    eng = make(engine_cls, stp=SelfTradePrevention.CANCEL_TAKER, mark_rule=MarkRule.INDEX)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)
    eng.limit(1, B, 94, 1, 1)             # A's own bid
    eng.stop_market(2, S, 80, 1, 1)       # A's own armed stop
    eng.limit(3, B, 93, 100, 101)
    eng.set_index(94)
    records = rows(eng.liquidate())
    assert 1 not in eng.book and 2 not in eng.book
    assert [(r["owner"], r["filled"], r["avg_price"]) for r in records] == [(1, 10, 93.0)]
    assert eng.account(1).position == 0


def test_looking_at_the_mark_does_not_change_what_happens(engine_cls):
    # MID mark: with both sides the mark is 94 (A liquidatable); when the ask side empties the
    # previous mark stands. It must be 94 whether or not anything asked for it in between.
    outcomes = []
    for look in (False, True):
        eng = make(engine_cls, mark_rule=MarkRule.MID)
        eng.add_account(100, 10**6, exempt=True)
        eng.add_account(101, 10**6, exempt=True)
        victim_a(eng)
        eng.limit(1, B, 90, 50, 101)
        eng.limit(2, S, 98, 1, 100)       # mid (90 + 98) // 2 = 94
        if look:
            eng.account(1)
        eng.market(3, B, 1, 101)          # the ask side empties
        outcomes.append((len(eng.liquidate()), eng.account(1).position))
    assert outcomes[0] == outcomes[1] == (1, 0)


def test_a_cancel_that_moves_a_mid_mark_is_followed_by_another_look(engine_cls):
    # MID mark. Bids 90 (LP), asks: A's own 98, the LP's 104 -> mid (90 + 98) // 2 = 94, so A
    # (long 10 @ 100, collateral 100, liquidation price 94) enters the queue and loses its ask.
    # The mid is now (90 + 104) // 2 = 97: A is safe again (E 70 >= MM 49), but B, short 10 @ 100
    # with collateral 5 (E = 1005 - 10m < ceil(m / 2) from m = 96), is crossed. The run must not
    # stop there: the next round liquidates B (generation 1), buying 10 @ 104.
    eng = make(engine_cls, mark_rule=MarkRule.MID)
    eng.add_account(100, 100_000, exempt=True)
    victim_a(eng)
    eng.add_account(3, 5)
    eng.seed_position(100, 3, 100, 10)
    assert eng.account(3).liquidation_price == 96
    eng.limit(1, B, 90, 50, 100)
    eng.limit(2, S, 104, 50, 100)
    eng.limit(3, S, 98, 1, 1)
    assert eng.mark_price() == 94
    records = rows(eng.liquidate())
    assert 3 not in eng.book
    assert [(r["owner"], r["generation"], r["filled"], r["avg_price"])
            for r in of_kind(records, "ORDER")] == [(3, 1, 10, 104.0)]
    # B realises 1000 - 1040 = -40: collateral 5 - 40 = -35, which the empty fund cannot cover
    assert sum(r["bad_debt"] for r in of_kind(records, "SHORTFALL")) == 35
    assert list(eng.queue()) == [] and eng.account(3).position == 0


def test_forced_order_records_have_zeroed_padding_so_equal_runs_are_byte_equal(engine_cls):
    outputs = []
    for _ in range(2):
        eng = make(engine_cls)
        _setup_lp(eng)
        victim_a(eng, owner=1)
        victim_a(eng, owner=2, collateral=120)
        _three_level_book(eng, [(94, 4), (93, 3), (92, 5), (91, 2), (90, 20)])
        eng.liquidate()
        outputs.append((eng.forced_orders(), eng.trades()))
    for first, second in zip(*outputs):
        used = set()
        for name in first.dtype.names:
            field, offset = first.dtype.fields[name][:2]
            used.update(range(offset, offset + field.itemsize))
        pad = sorted(set(range(first.dtype.itemsize)) - used)
        raw = first.view(np.uint8).reshape(len(first), first.dtype.itemsize)
        assert len(first) and not raw[:, pad].any()
        assert first.tobytes() == second.tobytes()
