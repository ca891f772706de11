"""Spot books and conversion through them (issue #13: "collateral in other assets may be sold,
converted through its own book"; docs/market_wide.md section 8), on both engines.

Every expected number is computed by hand in the comments. The venue: a BTC perpetual and a
BTC/USDT spot book (tick 1 USDT, lot 0.01 BTC, quote units of 0.01 USDT: k = 1 quote unit per
tick x lot); the asset "BTC" counts in satoshi, a lot is 10**6 of them, and it is valued at the
spot book's mark less a 10 % haircut: b satoshi at m count floor(b m 0.9 / 10**6).
One tier, MM = ceil(0.5 % of N). Marks follow the last trade.
"""

from __future__ import annotations

import copy
import pickle
import random

import numpy as np
import pytest

from orderbook import Asset, Instrument, MarkRule, Side
from orderbook.errors import OrderError
from orderbook.events import ForcedKind, Reason
from orderbook.testing import check_accounts

SAT = 10**8
LP, PRINTER = 9, 8
PERP, SPOT = 0, 1


def venue(engine_cls, **kw):
    kw.setdefault("tiers", [(None, 5_000, 10_000)])
    eng = engine_cls(instruments=[Instrument("BTC-PERP", "1", "0.01"),
                                  Instrument("BTCUSDT", "1", "0.01", spot=True)],
                     quote_unit="0.01", mark_rule=MarkRule.LAST,
                     assets=[Asset("BTC", "0.00000001", "BTCUSDT", haircut_ppm=100_000)], **kw)
    eng.add_account(LP, 10**12, exempt=True)
    eng.deposit(LP, 100 * SAT, asset="BTC")
    eng.add_account(PRINTER, 10**9, exempt=True)
    for i in (PERP, SPOT):   # a print at 20,000 on each book: the marks
        eng.limit(1, Side.SELL, 20_000, 1, LP, instrument=i)
        eng.market(2, Side.BUY, 1, PRINTER, instrument=i)
    return eng


def test_a_spot_trade_moves_the_asset_and_quote_and_opens_no_position(engine_cls):
    # The printer bought a perp lot (a position, cost 20,000, collateral unchanged) and a spot
    # lot: 10**6 satoshi for 20,000 quote units from the LP, and no position on the spot book.
    eng = venue(engine_cls)
    p, lp = eng.account(PRINTER), eng.account(LP)
    assert p.collateral == 10**9 - 20_000 and [h.balance for h in p.assets] == [10**6]
    assert [(q.instrument, q.position) for q in p.positions] == [(PERP, 1)]
    assert lp.collateral == 10**12 + 20_000 and lp.assets[0].balance == 100 * SAT - 10**6
    assert eng.mark_price(SPOT) == 20_000 and eng.open_interest(SPOT) == 0
    check_accounts(eng)


def test_conversion_sells_through_the_spot_book_and_its_fall_liquidates_a_holder(engine_cls):
    # Account 2: 500 USDT (50,000) and 0.5 BTC, long 100 perp lots at 20,000 (cost 2,000,000).
    # Account 3: only 0.0015 BTC (150,000 sat: floor(150,000 x 20,000 x 0.9 / 10**6) = 2,700),
    # long 100 perp lots seeded at 5,000 (MM ceil(0.5 % of 500,000) = 2,500): safe while the
    # spot mark m keeps 0.135 m >= 2,500, i.e. m >= 18,519.
    eng = venue(engine_cls)
    eng.add_account(2, 50_000)
    eng.deposit(2, SAT // 2, asset="BTC")
    eng.seed_position(2, LP, 20_000, 100)
    eng.limit(10, Side.BUY, 5_000, 1_000, LP, instrument=PERP)
    eng.limit(11, Side.SELL, 5_000, 1, LP, instrument=PERP)
    eng.market(12, Side.BUY, 1, PRINTER, instrument=PERP)      # the perp prints 5,000
    eng.add_account(3, 0)
    eng.deposit(3, 150_000, asset="BTC")
    eng.seed_position(3, LP, 5_000, 100)
    assert eng.account(3).equity == 2_700 and eng.account(3).maintenance_margin == 2_500
    eng.limit(13, Side.BUY, 19_990, 10, LP, instrument=SPOT)   # thin spot bids
    eng.limit(14, Side.BUY, 15_000, 40, LP, instrument=SPOT)
    records = eng.liquidate()
    got = [(r["generation"], r["owner"], ForcedKind(r["kind"]), r["instrument"], r["qty"],
            r["filled"], r["notional"], r["mark_before"], r["mark_after"], r["bad_debt"])
           for r in records]
    # Round 0, account 2 (E = 50,000 + floor(0.5e8 x 20,000 x 0.9 / 10**6) = 900,000 + 100 x
    # (5,000 - 20,000) < 0): its 100 perp lots sell at 5,000 (500,000), leaving collateral
    # 50,000 + 500,000 - 2,000,000 = -1,450,000. Its 50 lots of BTC go to the spot book: the
    # fewest covering the deficit at the bids, all 50 (10 at 19,990 = 199,900, 40 at 15,000 =
    # 600,000: 799,900); -650,100 is left for the (empty) fund: bad debt.
    # The spot mark is now 15,000: account 3's coin counts floor(150,000 x 15,000 x 0.9 /
    # 10**6) = 2,025 < 2,500: it is crossed in round 1, the next generation, and its perp lots
    # sell at 5,000 (no loss, nothing to convert).
    assert got == [
        (0, 2, ForcedKind.ORDER, PERP, 100, 100, 500_000, 5_000, 5_000, 0),
        (0, 2, ForcedKind.CONVERSION, SPOT, 50, 50, 799_900, 20_000, 15_000, 0),
        (0, 2, ForcedKind.SHORTFALL, PERP, 0, 0, 0, 5_000, 5_000, 650_100),
        (1, 3, ForcedKind.ORDER, PERP, 100, 100, 500_000, 5_000, 5_000, 0)]
    assert eng.account(2).assets == () and eng.account(2).collateral == 0
    assert eng.account(3).assets[0].balance == 150_000 and eng.account(3).positions == ()
    assert eng.conversions == ((0, 0),)       # nothing bought by the venue itself
    assert eng.account(LP).assets[0].balance == 100 * SAT - 10**6 + SAT // 2
    check_accounts(eng, settled=True)


def test_orders_on_a_spot_book_must_be_paid_for_and_a_refusal_changes_nothing(engine_cls):
    eng = venue(engine_cls)
    eng.add_account(1, 30_000)
    eng.deposit(1, 10**6, asset="BTC")             # one lot
    before = eng.account(1)
    # selling 2 lots needs 2 x 10**6 satoshi
    with pytest.raises(OrderError, match="would sell 2000000 units .* holds 1000000") as err:
        eng.limit(3, Side.SELL, 21_000, 2, 1, instrument=SPOT)
    assert err.value.reason == Reason.INSUFFICIENT_MARGIN
    eng.limit(3, Side.SELL, 21_000, 1, 1, instrument=SPOT)    # its one lot rests
    with pytest.raises(OrderError, match="would sell 2000000 units"):   # open sells count
        eng.limit(4, Side.SELL, 22_000, 1, 1, instrument=SPOT)
    # buying 2 lots at 20,000 needs 40,000 quote units; it has 30,000
    with pytest.raises(OrderError, match="quote collateral 30000 does not pay for 40000"):
        eng.limit(5, Side.BUY, 20_000, 2, 1, instrument=SPOT)
    eng.limit(5, Side.BUY, 15_000, 2, 1, instrument=SPOT)     # 30,000: exactly paid
    with pytest.raises(ValueError, match="spot book: it holds no positions"):
        eng.seed_position(1, LP, 20_000, 1, instrument=SPOT)
    a = eng.account(1)
    assert (a.collateral, a.assets, a.positions) == (before.collateral, before.assets, ())
    eng.add_account(7, 1_000, isolated_margin=500)
    with pytest.raises(ValueError, match="isolated account; collateral assets"):
        eng.limit(6, Side.BUY, 1, 1, 7, instrument=SPOT)
    check_accounts(eng)


@pytest.mark.parametrize("change,match", [
    ({"assets": None}, "BTCUSDT' is a spot book, but no asset names it"),
    ({"assets": [Asset("BTC", "0.003", "BTCUSDT")]}, "must be a whole number of units"),
    ({"instruments": [Instrument("BTC-PERP", "1", "0.01"),
                      Instrument("BTCUSDT", "1", "0.01", spot="yes")]}, "spot must be True"),
])
def test_a_bad_spot_book_is_refused_naming_it(engine_cls, change, match):
    kw = {"instruments": [Instrument("BTC-PERP", "1", "0.01"),
                          Instrument("BTCUSDT", "1", "0.01", spot=True)],
          "quote_unit": "0.01", "assets": [Asset("BTC", "0.00000001", "BTCUSDT")]}
    kw.update(change)
    with pytest.raises((ValueError, TypeError), match=match):
        engine_cls(**kw)


def test_a_spot_venue_survives_copies_and_pickles(engine_cls):
    eng = venue(engine_cls)
    eng.limit(3, Side.BUY, 19_000, 5, LP, instrument=SPOT)
    for other in (eng.copy(), copy.copy(eng), copy.deepcopy(eng), pickle.loads(pickle.dumps(eng))):
        assert [spec.spot for spec in other.instruments] == [False, True]
        assert [other.account(o) for o in other.owners()] == [eng.account(o)
                                                               for o in eng.owners()]
        other.market(4, Side.SELL, 1, PRINTER, instrument=SPOT)   # it holds the lot it bought
        assert other.account(PRINTER).assets == ()
        assert other.mark_price(SPOT) == 19_000
    assert eng.account(PRINTER).assets[0].balance == 10**6


@pytest.mark.parametrize("seed", range(30))
def test_the_engines_agree_on_random_spot_cascades(seed):
    # Random accounts holding BTC and a quote balance with perp positions, a thin spot book and
    # a perp crash: both engines make the same records and show the same accounts.
    import orderbook
    from orderbook.reference_engine import Engine as ReferenceEngine

    rng = random.Random(seed)
    rules = {"liquidation_fee_ppm": rng.choice([0, 5_000]),
             "insurance_fund": rng.choice([0, 200_000]),
             "taker_fee_ppm": rng.choice([0, 500]), "maker_fee_ppm": rng.choice([0, 200])}
    accounts = [(owner, rng.randint(0, 200_000), rng.randint(1, SAT), rng.randint(1, 100),
                 rng.randint(18_000, 22_000)) for owner in range(20, 35)]
    bids = [(rng.randint(10_000, 19_999), rng.randint(1, 30)) for _ in range(6)]
    crash = rng.randint(3_000, 17_000)
    engines = []
    for cls in (orderbook.Engine, ReferenceEngine):
        eng = venue(cls, **rules)
        for owner, quote, sats, lots, entry in accounts:
            eng.add_account(owner, quote)
            eng.deposit(owner, sats, asset="BTC")
            eng.seed_position(owner, LP, entry, lots)
        for n, (price, qty) in enumerate(bids):
            eng.limit(100 + n, Side.BUY, price, qty, LP, instrument=SPOT)
        eng.limit(200, Side.BUY, crash, 10_000, LP, instrument=PERP)
        eng.limit(201, Side.SELL, crash, 1, LP, instrument=PERP)
        eng.market(202, Side.BUY, 1, PRINTER, instrument=PERP)
        eng.liquidate()
        engines.append(eng)
    compiled, reference = engines
    a, b = compiled.forced_orders(), reference.forced_orders()
    assert a.tolist() == b.tolist() or all(
        x == y or (x != x and y != y) for ra, rb in zip(a.tolist(), b.tolist(), strict=True)
        for x, y in zip(ra, rb, strict=True))
    assert [compiled.account(o) for o in compiled.owners()] == [
        reference.account(o) for o in reference.owners()]
    for eng in engines:
        check_accounts(eng, settled=True)


def test_a_scenario_file_sells_the_coin_through_its_spot_book():
    # examples/spot_conversion.toml at 400 accounts: the liquidated accounts' coin is sold
    # through the BTCUSDT book, whose price falls with it; no position is ever on it.
    import warnings
    from dataclasses import replace
    from pathlib import Path

    from orderbook import run
    from orderbook.config import load_scenario

    scenario = load_scenario(Path(__file__).resolve().parent.parent / "examples"
                             / "spot_conversion.toml")
    scenario = replace(scenario, steps=20,
                       population=replace(scenario.population, count=400))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(scenario, counterfactual=False)
    records = result.forced_orders
    through = records[(records["kind"] == int(ForcedKind.CONVERSION)) & (records["filled"] > 0)]
    assert len(through) > 0 and set(through["instrument"].tolist()) == {SPOT}
    assert result.summary["instrument.BTCUSDT.liquidated_accounts"] == 0
    assert result.summary["instrument.BTCUSDT.max_drawdown_pct"] > 0
    liquidating = records[np.isin(records["kind"], [int(ForcedKind.ORDER)])]
    assert set(liquidating["instrument"].tolist()) == {PERP}
