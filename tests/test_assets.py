"""Collateral assets besides the quote currency (issue #13, step 3 of docs/market_wide.md), on
both engines.

Every expected number is computed by hand in the comments. The venue: one instrument "BTC"
(tick 1 USDT, lot 0.01 BTC) in quote units of 0.01 USDT, so k = 1 quote unit per tick x lot; one
tier, MM = ceil(0.5% of N), IM = ceil(1% of N); marks follow the index. The asset "BTC" counts in
satoshi (unit 1e-8 BTC) and is valued at the BTC mark: one satoshi per tick is 1e-8 x 1 / 0.01 =
1/10**6 quote units, so b satoshi at mark m count floor(b m (1 - haircut) / 10**6).
"""

from __future__ import annotations

import copy
import pickle

import pytest

from orderbook import Asset, HoldingInfo
from orderbook.events import INSURANCE_FUND, ForcedKind, Instrument, MarkRule
from orderbook.testing import InvariantError, check_accounts

SAT = 10**8          # satoshi per BTC
HOUSE = 9            # exempt counterparty of every seeded position, and the bids


def venue(engine_cls, *, haircut_ppm=100_000, discount_ppm=0, **kw):
    eng = engine_cls(instruments=[Instrument("BTC", "1", "0.01")], quote_unit="0.01",
                     mark_rule=MarkRule.INDEX, tiers=[(None, 5_000, 10_000)],
                     assets=[Asset("BTC", "0.00000001", "BTC", haircut_ppm=haircut_ppm,
                                   conversion_discount_ppm=discount_ppm)], **kw)
    eng.add_account(HOUSE, 10**12, exempt=True)
    eng.set_index(20_000)
    return eng


def test_collateral_in_the_falling_asset_liquidates_far_sooner(engine_cls):
    # Account 1 holds 1 BTC as collateral (haircut 10%: counted 10**8 x 20,000 x 0.9 / 10**6 =
    # 1,800,000 quote units = 18,000 USDT); account 2 holds those 1,800,000 in USDT. Both go
    # long 1 BTC (100 lots) at 20,000: cost 2,000,000.
    eng = venue(engine_cls)
    eng.add_account(1, 0)
    eng.deposit(1, SAT, asset="BTC")
    eng.add_account(2, 1_800_000)
    for owner in (1, 2):
        eng.seed_position(owner, HOUSE, 20_000, 100)
    coin, stable = eng.account(1), eng.account(2)
    assert coin.equity == stable.equity == 1_800_000
    assert coin.assets == (HoldingInfo(0, SAT, 1_800_000),)
    assert stable.assets == ()
    # Stablecoin: E = 1,800,000 + 100 (m - 20,000) = 100 m - 200,000, MM = ceil(m / 2):
    # liquidatable when 99.5 m < 200,000, m <= 2,010; bankrupt at 200,000 / 100 = 2,000.
    assert (stable.liquidation_price, stable.bankruptcy_price) == (2_010, 2_000)
    # Coin: the collateral falls with the position, E = floor(90 m) + 100 m - 2,000,000 =
    # 190 m - 2,000,000: liquidatable when 189.5 m < 2,000,000, m <= 10,554 (a 47% fall, not
    # 90%); bankrupt where 190 m >= 2,000,000 first, 10,527.
    assert (coin.liquidation_price, coin.bankruptcy_price) == (10_554, 10_527)
    check_accounts(eng)

    eng.limit(1, 1, 5_000, 1_000, HOUSE)   # the only bid: 10 BTC at 5,000
    eng.set_index(10_555)
    # E = floor(10**8 x 10,555 x 0.9 / 10**6) + 100 x 10,555 - 2,000,000 = 949,950 +
    # 1,055,500 - 2,000,000 = 5,450 >= MM ceil(5,277.5) = 5,278: safe.
    assert eng.account(1).equity == 5_450 and eng.account(1).maintenance_margin == 5_278
    assert len(eng.liquidate()) == 0
    eng.set_index(10_554)
    # E = 949,860 + 1,055,400 - 2,000,000 = 5,260 < MM 5,277: liquidated, its 100 lots sold at
    # 5,000 (500,000): the
    # loss 1,500,000 leaves collateral -1,500,000; its BTC is sold to the venue at the mark,
    # 10**8 x 10,554 / 10**6 = 1,055,400 (no discount), leaving -444,600 for the (empty) fund.
    records = eng.liquidate()
    assert [(r["owner"], ForcedKind(r["kind"]), r["qty"], r["filled"], r["notional"],
             r["mark_before"], r["bad_debt"]) for r in records] == [
        (1, ForcedKind.ORDER, 100, 100, 500_000, 10_554, 0),
        (1, ForcedKind.CONVERSION, SAT, 0, 1_055_400, 10_554, 0),
        (1, ForcedKind.SHORTFALL, 0, 0, 0, 10_554, 444_600)]
    assert eng.conversions == ((SAT, 1_055_400),)
    assert eng.asset_deposits == (SAT,)
    assert eng.account(1).assets == () and eng.account(1).collateral == 0
    assert eng.account(2).position == 100   # the stablecoin account is untouched
    check_accounts(eng, settled=True)


def test_conversion_sells_the_fewest_units_that_cover_the_deficit(engine_cls):
    # Haircut 50%, conversion discount 2.5% (Binance's auto-exchange example divides by
    # 97.5%). Account 1: 2 BTC collateral, long 100 lots at 20,000: E = floor(2 x 10**8 x m x
    # 0.5 / 10**6) + 100 m - 2,000,000 = 200 m - 2,000,000, liquidatable when 199.5 m <
    # 2,000,000: m <= 10,025.
    eng = venue(engine_cls, haircut_ppm=500_000, discount_ppm=25_000, insurance_fund=1_000)
    eng.add_account(1, 0)
    eng.deposit(1, 2 * SAT, asset=0)
    eng.seed_position(1, HOUSE, 20_000, 100)
    assert eng.account(1).liquidation_price == 10_025
    eng.limit(1, 1, 10_000, 100, HOUSE)
    eng.set_index(10_025)
    records = eng.liquidate()
    # Sold at 10,000: collateral 100 x (10,000 - 20,000) = -1,000,000. One satoshi fetches
    # 10,025 x 0.975 / 10**6 quote units: ceil(10**6 x 10**12 / (10,025 x 975,000)) =
    # 102,308,332 satoshi are the fewest that cover it, paid floor(102,308,332 x 10,025 x
    # 975,000 / 10**12) = 1,000,000 (102,308,331 would fetch 999,999); the rest stays.
    assert [(ForcedKind(r["kind"]), r["qty"], r["notional"]) for r in records] == [
        (ForcedKind.ORDER, 100, 1_000_000), (ForcedKind.CONVERSION, 102_308_332, 1_000_000)]
    assert 102_308_331 * 10_025 * 975_000 // 10**12 == 999_999
    left = 2 * SAT - 102_308_332
    after = eng.account(1)
    assert (after.collateral, after.position) == (0, 0)
    # 97,691,668 satoshi at 10,025 with the 50% haircut: floor(489,679.4...) = 489,679.
    assert after.assets == (HoldingInfo(0, left, 489_679),)
    assert after.equity == 489_679
    assert eng.insurance_fund == 1_000   # nothing was left for the fund to cover
    assert eng.conversions == ((102_308_332, 1_000_000),)
    check_accounts(eng, settled=True)


def two_instrument_venue(engine_cls):
    # BTC as before; ETH (tick 1, lot 0.1 ETH, k = 10) has no asset of its own.
    eng = engine_cls(instruments=[Instrument("BTC", "1", "0.01"), Instrument("ETH", "1", "0.1")],
                     quote_unit="0.01", mark_rule=MarkRule.INDEX, tiers=[(None, 5_000, 10_000)],
                     assets=[Asset("BTC", "0.00000001", "BTC", haircut_ppm=100_000)])
    eng.add_account(HOUSE, 10**12, exempt=True)
    eng.set_index(20_000, instrument="BTC")
    eng.set_index(1_000, instrument="ETH")
    return eng


def test_a_fall_of_the_collateral_alone_liquidates_a_position_in_another_instrument(
        engine_cls):
    # Account 1: 0.1 BTC collateral (counted 10**7 x 20,000 x 0.9 / 10**6 = 180,000) and long
    # 10 ETH (100 lots, k = 10) at 1,000: cost 1,000,000, MM ceil(1,000,000 x 0.5%) = 5,000.
    # ETH never moves; E = floor(9 m) + 0 falls with the BTC mark m alone: liquidatable when
    # 9 m < 5,000, m <= 555.
    eng = two_instrument_venue(engine_cls)
    eng.add_account(1, 0)
    eng.deposit(1, SAT // 10, asset="BTC")
    eng.seed_position(1, HOUSE, 1_000, 100, instrument="ETH")
    info = eng.account(1)
    assert (info.equity, info.maintenance_margin) == (180_000, 5_000)
    # The ETH position's own prices hold the BTC collateral at its value, 180,000: liquidatable
    # when 180,000 + 1,000 (p - 1,000) < ceil(5 p), 995 p < 820,000, p <= 824; bankrupt at
    # 820,000 / 1,000 = 820.
    assert (info.positions[0].liquidation_price, info.positions[0].bankruptcy_price) == (
        824, 820)
    eng.limit(1, 1, 990, 1_000, HOUSE, instrument="ETH")
    check_accounts(eng)
    for mark in (10_000, 1_000, 556):
        eng.set_index(mark, instrument="BTC")
        assert len(eng.liquidate()) == 0, mark
        check_accounts(eng, settled=True)
    eng.set_index(555, instrument="BTC")   # 9 x 555 = 4,995 < 5,000
    records = eng.liquidate()
    # Sold at 990: collateral 100 x 10 x (990 - 1,000) = -10,000. Its 10**7 satoshi fetch only
    # 10**7 x 555 / 10**6 = 5,550 at the BTC mark; the fund (empty) is short of the other
    # 4,450, recorded as bad debt. The conversion record names the BTC instrument.
    assert [(ForcedKind(r["kind"]), r["instrument"], r["qty"], r["notional"], r["bad_debt"])
            for r in records] == [(ForcedKind.ORDER, 1, 100, 990_000, 0),
                                  (ForcedKind.CONVERSION, 0, SAT // 10, 5_550, 0),
                                  (ForcedKind.SHORTFALL, 1, 0, 0, 4_450)]
    after = eng.account(1)
    assert after.positions == () and after.assets == () and after.collateral == 0
    check_accounts(eng, settled=True)


def test_collateral_assets_count_as_binance_multi_assets_mode_example():
    # MA-1 (docs/market_wide_sources.md): USDT at index 0.99 with a 1% bid buffer counts
    # 0.9801 USD; 200 USDT and 220 USDC make 200 x 0.9801 + 220 = 416.02. Here USDC is the
    # quote currency (unit 0.01: cents) and USDT an asset (unit 0.01) valued at a USDTUSD
    # instrument (tick 0.0001, lot 100: k = 1) marked at 9,900 ticks with a 1% haircut: one
    # USDT unit per tick is 0.01 x 0.0001 / 0.01 = 1/10**4 cents, so 20,000 units count
    # floor(20,000 x 9,900 x 0.99 / 10**4) = 19,602 cents.
    from orderbook import Engine
    from orderbook.reference_engine import Engine as Reference

    for engine_cls in (Engine, Reference):
        eng = engine_cls(instruments=[Instrument("USDTUSD", "0.0001", "100")], quote_unit="0.01",
                         mark_rule=MarkRule.INDEX,
                         assets=[Asset("USDT", "0.01", "USDTUSD", haircut_ppm=10_000)])
        eng.add_account(1, 22_000)
        eng.deposit(1, 20_000, asset="USDT")
        assert eng.account(1).equity == 22_000   # no mark yet: the asset counts nothing
        eng.set_index(9_900)
        assert eng.account(1).equity == 41_602   # 416.02 USD
        check_accounts(eng)


def test_an_asset_is_named_or_numbered_and_reported(engine_cls):
    eng = venue(engine_cls)
    eng.add_account(1, 5)
    eng.deposit(1, 3, asset=0)
    eng.deposit(1, 4, asset="BTC")
    assert eng.account(1).assets == (HoldingInfo(0, 7, 7 * 20_000 * 9 // 10 // 10**6),)
    assert eng.assets == (Asset("BTC", "0.00000001", "BTC", 100_000, 0),)
    assert eng.asset_deposits == (7,)
    assert eng.total_equity() == 10**12 + 5 + 0   # 7 satoshi count floor(0.126) = 0
    assert eng.total_equity(2_000_000) == 10**12 + 5 + 7 * 2_000_000 * 9 // 10 // 10**6


@pytest.mark.parametrize("assets,error,match", [
    ("BTC", TypeError, "assets must be a sequence of Asset"),
    ([("BTC", "1", "BTC")], TypeError, r"assets\[0\] must be an Asset"),
    ([Asset("", "1", "BTC")], ValueError, r"assets\[0\]\.name must be a non-empty str"),
    ([Asset("A", "1", "BTC"), Asset("A", "1", "ETH")], ValueError, "is given twice"),
    ([Asset("A", "1", "SOL")], KeyError, r"assets\[0\]\.instrument: instrument 'SOL'"),
    ([Asset("A", "1", 2)], KeyError, r"assets\[0\]\.instrument: instrument 2"),
    ([Asset("A", "1", "BTC"), Asset("B", "1", 0)], ValueError, "already values another"),
    ([Asset("A", "0", "BTC")], ValueError, r"assets\[0\]\.unit must be positive"),
    ([Asset("A", "1", "BTC", haircut_ppm=10**6)], ValueError,
     r"assets\[0\]\.haircut_ppm must be below 1000000"),
    ([Asset("A", "1", "BTC", haircut_ppm=-1)], ValueError,
     r"assets\[0\]\.haircut_ppm must be in \[0, 1000000\]"),
    ([Asset("A", "1", "BTC", conversion_discount_ppm=10**6)], ValueError,
     r"assets\[0\]\.conversion_discount_ppm must be below"),
    ([Asset("A", "100000000", "BTC")], ValueError, "worth more than 2\\*\\*61"),
    ([Asset("A", "1000000000000", "BTC")], ValueError, "past 2\\*\\*40"),
    ([Asset("A", "0.000000000000000007", "BTC")], ValueError, "past 2\\*\\*40"),
])
def test_a_bad_asset_is_refused_naming_the_field(engine_cls, assets, error, match):
    with pytest.raises(error, match=match):
        engine_cls(instruments=[Instrument("BTC", "1", "0.01"), Instrument("ETH", "1", "0.1")],
                   quote_unit="0.01", assets=assets)


def test_a_bad_deposit_is_refused_and_changes_nothing(engine_cls):
    eng = venue(engine_cls)
    eng.add_account(1, 100)
    eng.add_account(2, 100, isolated_margin=50)
    eng.deposit(1, 5, asset="BTC")
    before = (eng.account(1), eng.account(2), eng.asset_deposits, eng.total_deposits)
    limit = eng._asset_parts()[0]["max_total"]
    for owner, amount, asset, error, match in [
            (1, 5, "ETH", KeyError, "asset 'ETH' is not one of the venue's collateral assets"),
            (1, 5, 1, KeyError, "asset 1 is not one of the venue's 1 collateral assets"),
            (1, 5, 1.5, TypeError, "asset"),
            (1, 0, "BTC", ValueError, "amount must be in"),
            (2, 5, "BTC", ValueError, "isolated account"),
            (INSURANCE_FUND, 5, "BTC", ValueError, "insurance fund holds quote currency"),
            (3, 5, "BTC", KeyError, "owner 3 has no account"),
            (1, limit, "BTC", ValueError, "would reach"),
    ]:
        with pytest.raises(error, match=match):
            eng.deposit(owner, amount, asset=asset)
        assert (eng.account(1), eng.account(2), eng.asset_deposits,
                eng.total_deposits) == before


def test_assets_survive_copies_and_pickles(engine_cls):
    eng = venue(engine_cls, discount_ppm=25_000)
    eng.add_account(1, 0)
    eng.deposit(1, 2 * SAT, asset="BTC")
    eng.seed_position(1, HOUSE, 20_000, 100)
    eng.limit(1, 1, 10_000, 100, HOUSE)
    eng.set_index(7_155)   # E = 280 m - 2,000,000 < ceil(m / 2) from 7,155 down
    eng.liquidate()
    assert eng.conversions[0][0] > 0
    for other in (eng.copy(), copy.deepcopy(eng), pickle.loads(pickle.dumps(eng))):
        assert other.assets == eng.assets
        assert other.conversions == eng.conversions
        assert other.asset_deposits == eng.asset_deposits
        assert other.account(1) == eng.account(1)
        check_accounts(other)
        other.deposit(1, 1, asset="BTC")   # independent of the original
        assert other.asset_deposits != eng.asset_deposits


def state_of(eng) -> tuple:
    restore, (args, kwargs, state) = eng.__reduce__()
    return restore, args, kwargs, state


def test_a_version_3_state_loads_without_assets(engine_cls):
    eng = engine_cls(quote_unit="0.01")
    eng.add_account(1, 100)
    restore, args, kwargs, state = state_of(eng)
    old = dict(state, version=3, accounts=[row[:6] for row in state["accounts"]],
               queue=[row[:3] for row in state["queue"]])
    del old["asset_deposits"], old["conversions"], old["time"], old["funding_history"]
    assert restore(args, kwargs, old).account(1) == eng.account(1)


@pytest.mark.parametrize("change,match", [
    (lambda s: s.update(accounts=[row[:6] + (((0, -1),),) if row[0] == 1 else row
                                  for row in s["accounts"]]), r"holdings\[0\]\.units"),
    (lambda s: s.update(accounts=[row[:6] + (((0, 5), (0, 5)),) if row[0] == 1 else row
                                  for row in s["accounts"]]), "must ascend"),
    (lambda s: s.update(asset_deposits=[SAT + 1]), "must conserve asset 'BTC'"),
    (lambda s: s.update(conversions=[(0, 1)]), "must conserve money"),
    (lambda s: s.update(conversions=[]), "conversions must be a list of 1"),
])
def test_a_corrupt_asset_state_is_refused(engine_cls, change, match):
    eng = venue(engine_cls)
    eng.add_account(1, 0)
    eng.deposit(1, SAT, asset="BTC")
    restore, args, kwargs, state = state_of(eng)
    state = dict(state)
    change(state)
    with pytest.raises(ValueError, match=match):
        restore(args, kwargs, state)


def test_check_accounts_sees_an_asset_created_from_nothing():
    from orderbook.reference_engine import Engine as Reference

    eng = venue(Reference)
    eng.add_account(1, 0)
    eng.deposit(1, SAT, asset="BTC")
    check_accounts(eng)
    eng._accounts[1].holdings[0] += 1
    with pytest.raises(InvariantError, match="asset conservation"):
        check_accounts(eng)


def test_adl_at_the_mark_can_take_quote_collateral_below_zero_when_the_coin_backs_it(
        engine_cls):
    # Found by the venue machine (its ADL check assumed quote collateral covers a counterparty's
    # loss at the mark). k = 1, the asset (unit 1) counts m per unit. Account 3: 0 quote, 1
    # coin, long 1 at 95. A sell prints 80 (the LAST mark); the shorts' liquidations leave a
    # remainder that ADL closes against the longs, 3 among them, at its cap: no worse for it
    # than min(mark 80, break-even 95) = 80. It realises -15 while its coin (80) keeps its
    # equity at 65 > 0; flat, with a coin, it is left alone with its negative quote balance.
    eng = engine_cls(tiers=[(200, 5000, 5000)], deficit=1, check_initial_margin=False,
                     instruments=[Instrument("BTC")], assets=[Asset("BTC", "1", "BTC")])
    eng.add_account(100, 10_000_000, exempt=True)
    for owner in range(1, 9):
        eng.add_account(owner, 0)
    for owner in (3, 7, 8):
        eng.deposit(owner, 1, asset=0)
    for long_owner, short_owner, price, qty in [
            (100, 1, 95, 1), (1, 7, 95, 13), (1, 2, 95, 1), (3, 100, 95, 1), (100, 4, 95, 1),
            (100, 4, 95, 1), (1, 5, 95, 1), (100, 5, 95, 1), (100, 6, 95, 1), (1, 7, 95, 1),
            (7, 2, 103, 13), (1, 8, 95, 1)]:
        eng.seed_position(long_owner, short_owner, price, qty)
    eng.limit(1, 1, 80, 1, 100)
    eng.limit(2, -1, 101, 1, 100)
    eng.market(3, -1, 1, 100)
    records = eng.liquidate()
    adl = records[(records["kind"] == ForcedKind.ADL) & (records["counterparty"] == 3)]
    assert len(adl) == 1 and adl[0]["notional"] == 80
    after = eng.account(3)
    assert (after.collateral, after.position, after.equity) == (-15, 0, 65)
    assert after.assets == (HoldingInfo(0, 1, 80),)
    check_accounts(eng, settled=True)
