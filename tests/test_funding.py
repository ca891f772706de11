"""Perpetual funding (docs/funding.md): ``Engine.settle_funding`` on both engines, and the rate
model of ``orderbook.funding``.

Every expected number is computed by hand in the comments. Engines: k = 1 (a lot at p ticks is
worth p quote units), one tier, MM 5 %, IM 10 %, the mark on the index. A rate is in units of
10**-8: 1_000_000 is 1 %.
"""

from __future__ import annotations

import copy
import pickle
from fractions import Fraction

import numpy as np
import pytest
from engine_helpers import B, rows
from hypothesis import given
from hypothesis import strategies as st

from orderbook import Asset, FundingSettlement, Instrument, LimitRule, MarkRule, Settlement
from orderbook.events import FUNDING_DTYPE, FUNDING_RATE_SCALE, INSURANCE_FUND
from orderbook.funding import (
    VENUES,
    FundingClock,
    FundingRule,
    funding_rate,
    impact_premium,
    impact_prices,
    premium,
    round_rate,
)
from orderbook.testing import check_accounts

TIERS = [(None, 50_000, 100_000)]
LP = 100


def venue(engine_cls, **kw):
    kw.setdefault("tiers", TIERS)
    eng = engine_cls(mark_rule=MarkRule.INDEX, **kw)
    eng.add_account(LP, 10**9, exempt=True)
    return eng


def balances(eng):
    return {o: eng.account(o).collateral for o in eng.owners()}


def conserved(eng):
    """Money is conserved: every equity and reserve (the fund's included) plus the fees equal the
    deposits, at the mark and at common marks."""
    assert eng.total_equity() + eng.fees_collected == eng.total_deposits
    for m in (1, 97, 1_000):
        assert eng.total_equity(m) + eng.fees_collected == eng.total_deposits


# ------------------------------------------------------------------ payments by hand


def test_a_long_pays_a_short_and_the_record_says_what_moved(engine_cls):
    # Long 10 @ 100 (owner 1) against a short 10 (owner 2); mark 100: each side is worth 1,000.
    # 0.01 %: the long pays ceil(1,000 x 10,000 / 10**8) = ceil(0.1) = 1, the short gets
    # floor(1 x 1,000 / 1,000) = 1.
    eng = venue(engine_cls)
    eng.add_account(1, 1_000)
    eng.add_account(2, 1_000)
    eng.seed_position(1, 2, 100, 10)
    eng.set_index(100)
    eng.advance_to(28_800_000)
    got = eng.settle_funding(10_000)
    assert isinstance(got, FundingSettlement)
    assert got == (28_800_000, 0, 10_000, 100, 1, 1, 0, 1, 1)
    assert (eng.account(1).collateral, eng.account(2).collateral) == (999, 1_001)
    hist = eng.funding_history()
    assert hist.dtype == FUNDING_DTYPE and [tuple(r) for r in hist.tolist()] == [tuple(got)]
    conserved(eng)


def test_rounding_payers_pay_the_ceiling_receivers_the_floor_the_fund_the_rest(engine_cls):
    # Long 10 (value 1,000) against shorts of 3 and 7 (300 and 700), mark 100.
    # +1.234567 %: the long pays ceil(12.34567) = 13; the shorts get floor(13 x 300 / 1,000) =
    # floor(3.9) = 3 and floor(13 x 700 / 1,000) = floor(9.1) = 9: 12; the fund 1.
    eng = venue(engine_cls, insurance_fund=50)
    for owner in (1, 2, 3):
        eng.add_account(owner, 1_000)
    eng.seed_position(1, 2, 100, 3)
    eng.seed_position(1, 3, 100, 7)
    eng.set_index(100)
    got = eng.settle_funding(1_234_567)
    assert got == (0, 0, 1_234_567, 100, 13, 12, 1, 1, 2)
    assert [eng.account(o).collateral for o in (1, 2, 3)] == [987, 1_003, 1_009]
    assert eng.insurance_fund == 51
    conserved(eng)
    # -1.234567 %: the shorts pay ceil(3.703701) = 4 and ceil(8.641969) = 9, 13 in all; the long
    # gets floor(13 x 1,000 / 1,000) = 13, nothing left over.
    got = eng.settle_funding(-1_234_567)
    assert got == (0, 0, -1_234_567, 100, 13, 13, 0, 2, 1)
    assert [eng.account(o).collateral for o in (1, 2, 3)] == [1_000, 999, 1_000]
    assert eng.insurance_fund == 51
    assert len(eng.funding_history()) == 2
    conserved(eng)


def test_a_zero_rate_moves_nothing_and_is_recorded(engine_cls):
    eng = venue(engine_cls)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 10)
    eng.set_index(100)
    before = balances(eng)
    assert eng.settle_funding(0) == (0, 0, 0, 100, 0, 0, 0, 0, 0)
    assert balances(eng) == before and len(eng.funding_history()) == 1


def test_the_mark_values_the_positions_not_their_entry(engine_cls):
    # Long 10 entered at 100, mark 120: it pays on 1,200: 1 % is 12, the exempt LP gets 12.
    eng = venue(engine_cls)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 10)
    eng.set_index(120)
    assert eng.settle_funding(1_000_000)[4:] == (12, 12, 0, 1, 1)
    assert eng.account(1).collateral == 988 and eng.account(LP).collateral == 10**9 + 12


def test_exempt_accounts_pay_and_receive_like_anyone(engine_cls):
    # The exempt LP is short 10 against owner 1's long: at -1 % the LP pays ceil(10) = 10.
    eng = venue(engine_cls)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 10)
    eng.set_index(100)
    assert eng.settle_funding(-1_000_000)[4:] == (10, 10, 0, 1, 1)
    assert eng.account(LP).collateral == 10**9 - 10 and eng.account(1).collateral == 1_010
    conserved(eng)


def test_isolated_accounts_pay_from_their_margin_and_keep_their_reserve(engine_cls):
    # Owner 1: 1,000 deposited, 200 of it the isolated margin; long 10 @ 100. At 2.5 % it pays
    # 25 from its margin (200 -> 175), the reserve 800 untouched; owner 2 (short) gets 25.
    eng = venue(engine_cls)
    eng.add_account(1, 1_000, isolated_margin=200)
    eng.add_account(2, 1_000)
    eng.seed_position(1, 2, 100, 10)
    eng.set_index(100)
    eng.settle_funding(2_500_000)
    a = eng.account(1)
    assert (a.collateral, a.reserve, a.isolated) == (175, 800, True)
    assert eng.account(2).collateral == 1_025
    conserved(eng)


def test_the_fund_position_neither_pays_nor_receives_and_takes_the_rest(engine_cls):
    # The fund holds a long it took over (owner 1's 10 lots, from exempt 5, at its bankruptcy
    # price); the LP is long 10 against owner 2. At +1 % the longs pay: the LP ceil(10) = 10,
    # the fund nothing; the shorts 5 and 2 get floor(10 x 1,000 / 2,000) = 5 each.
    eng = venue(engine_cls, limit_rule=LimitRule.BANKRUPTCY, insurance_fund=10_000)
    eng.add_account(1, 60)
    eng.add_account(2, 10_000)
    eng.add_account(5, 10_000, exempt=True)
    eng.seed_position(1, 5, 100, 10)
    eng.seed_position(LP, 2, 100, 10)
    eng.set_index(94)       # E = 60 - 60 = 0 < MM 47; no bids: the fund takes it over at 94
    eng.liquidate()
    fund = eng.account(INSURANCE_FUND)
    assert [(p.instrument, p.position) for p in fund.positions] == [(0, 10)]
    eng.set_index(100)
    before = balances(eng)
    got = eng.settle_funding(1_000_000)
    assert got[4:] == (10, 10, 0, 1, 2)
    after = balances(eng)
    assert after[INSURANCE_FUND] == before[INSURANCE_FUND]
    assert after[LP] == before[LP] - 10
    assert (after[2], after[5]) == (before[2] + 5, before[5] + 5)
    conserved(eng)


def test_funding_that_takes_an_account_under_maintenance_gets_it_liquidated(engine_cls):
    # Long 10 @ 100 with 60: E = 60 + 10 (P - 100), MM = ceil(P / 2). At mark 100 E = 60 >=
    # 50, safe; liquidatable from 98 down (E 40 < 49; at 99 E 50 = MM 50). 2 % costs ceil(20)
    # = 20: E = 40 < 50, liquidatable up to 101 (E 50 < 51; at 102 E 60 > 51): the next round
    # queues it, as a price move would, and sells it into the LP's bid at 100.
    eng = venue(engine_cls)
    eng.add_account(1, 60)
    eng.seed_position(1, LP, 100, 10)
    eng.limit(1, B, 100, 10, LP)
    eng.set_index(100)
    assert eng.account(1).liquidation_price == 98
    assert len(eng.liquidate()) == 0 and eng.queue() == []
    eng.settle_funding(2_000_000)
    a = eng.account(1)
    assert (a.collateral, a.equity, a.maintenance_margin) == (40, 40, 50)
    assert a.liquidation_price == 101
    records = rows(eng.liquidate())
    assert [(r["owner"], r["qty"], r["filled"]) for r in records] == [(1, 10, 10)]
    assert eng.account(1).position == 0 and eng.account(1).collateral == 40
    check_accounts(eng, settled=True)
    conserved(eng)


def test_funding_on_a_venue_of_several_instruments_names_its_instrument(engine_cls):
    # Owner 1 long 10 ETH @ 50 (k = 1), long 1 BTC @ 1,000: funding on ETH only (by name).
    eng = engine_cls(instruments=[Instrument("BTC", "1", "1"), Instrument("ETH", "1", "1")],
                     tiers=TIERS, mark_rule=MarkRule.INDEX)
    eng.add_account(LP, 10**9, exempt=True)
    eng.add_account(1, 5_000)
    eng.seed_position(1, LP, 1_000, 1, instrument="BTC")
    eng.seed_position(1, LP, 50, 10, instrument="ETH")
    eng.set_index(1_000, instrument=0)
    with pytest.raises(ValueError, match="'ETH' has no mark yet"):
        eng.settle_funding(1_000_000, instrument="ETH")
    eng.set_index(50, instrument=1)
    got = eng.settle_funding(1_000_000, instrument="ETH")   # 1 % of 500
    assert got.instrument == 1 and got[4:] == (5, 5, 0, 1, 1)
    assert eng.account(1).collateral == 4_995
    check_accounts(eng)


def test_an_inverse_venue_pays_in_coin(engine_cls):
    # XBTUSD-like: contract 1 USD, tick 0.5, satoshi balances: k = 2 x 10**8, 1,000 contracts
    # at 40,000 ticks (20,000 USD) are worth floor(2e11 / 40,000) = 5,000,000 sat. At 0.01 %
    # the long pays ceil(500) = 500 sat; the house (short, exempt) gets 500.
    eng = engine_cls("0.5", "1", "0.00000001", settlement=Settlement.INVERSE,
                     contract_value="1", mark_rule=MarkRule.INDEX, tiers=TIERS)
    eng.add_account(LP, 10**15, exempt=True)
    eng.add_account(1, 5_000_000)
    eng.seed_position(1, LP, 40_000, 1_000)
    eng.set_index(40_000)
    assert eng.settle_funding(10_000)[4:] == (500, 500, 0, 1, 1)
    assert eng.account(1).collateral == 4_999_500
    # Owner 2 long 3 contracts, worth floor(6e8 / 40,000) = 15,000 sat. At 0.0123 % owner 1
    # pays ceil(5,000,000 x 0.000123) = 615, owner 2 ceil(1.845) = 2: 617 to the house.
    eng.add_account(2, 10**6)
    eng.seed_position(2, LP, 40_000, 3)
    got = eng.settle_funding(12_300)
    assert got[4:] == (617, 617, 0, 2, 1)
    check_accounts(eng)


def test_accounts_with_collateral_assets_pay_from_their_quote_balance(engine_cls):
    # A cross account with BTC collateral and no quote balance: its payment takes the quote
    # balance negative (as a trading loss would), the BTC stays.
    eng = engine_cls(instruments=[Instrument("BTC", "1", "0.01")], quote_unit="0.01",
                     tiers=TIERS, mark_rule=MarkRule.INDEX,
                     assets=[Asset("BTC", "0.00000001", "BTC")])
    eng.add_account(LP, 10**12, exempt=True)
    eng.add_account(1, 0)
    eng.deposit(1, 10**8, asset="BTC")             # 1 BTC
    eng.seed_position(LP, 1, 20_000, 10)           # owner 1 short 0.1 BTC at 20,000
    eng.set_index(20_000)
    assert eng.settle_funding(-1_000_000)[4:] == (2_000, 2_000, 0, 1, 1)   # 1 % of 200,000
    a = eng.account(1)
    assert a.collateral == -2_000 and a.assets[0].balance == 10**8
    check_accounts(eng)


# ------------------------------------------------------------------ refusals


def test_a_spot_book_has_no_funding(engine_cls):
    eng = engine_cls(instruments=[Instrument("BTC-PERP", "1", "0.01"),
                                  Instrument("BTCUSDT", "1", "0.01", spot=True)],
                     quote_unit="0.01", tiers=TIERS,
                     assets=[Asset("BTC", "0.00000001", "BTCUSDT")])
    with pytest.raises(ValueError, match="'BTCUSDT' is a spot book: funding is for perpetuals"):
        eng.settle_funding(10_000, instrument="BTCUSDT")
    assert len(eng.funding_history()) == 0


@pytest.mark.parametrize("rate, error", [
    (1.5, TypeError), ("10000", TypeError), (None, TypeError), (True, TypeError),
    (Fraction(1, 3), TypeError), (10**8 + 1, ValueError), (-(10**8) - 1, ValueError),
    (2**63, ValueError),
])
def test_a_bad_rate_is_refused_naming_it_and_nothing_changes(engine_cls, rate, error):
    eng = venue(engine_cls)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 10)
    eng.set_index(100)
    before = balances(eng)
    with pytest.raises(error, match="rate"):
        eng.settle_funding(rate)
    assert balances(eng) == before and len(eng.funding_history()) == 0
    eng.settle_funding(np.int64(10**8))      # 100 %: the bound itself is a rate
    assert eng.account(1).collateral == 0


def test_no_mark_or_no_such_instrument_is_refused(engine_cls):
    eng = venue(engine_cls)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 10)
    with pytest.raises(ValueError, match="no mark yet"):
        eng.settle_funding(10_000)
    eng.set_index(100)
    with pytest.raises(KeyError, match="instrument"):
        eng.settle_funding(10_000, instrument=1)
    with pytest.raises(KeyError, match="instrument"):
        eng.settle_funding(10_000, instrument="nope")
    assert len(eng.funding_history()) == 0


def test_payments_past_2_62_are_refused_before_anything_moves(engine_cls):
    # Three longs of max_position lots at max_price, each worth 2**61, against three shorts: at
    # 100 % the longs would pay 3 x 2**61, past 2**62.
    eng = engine_cls(tiers=TIERS, mark_rule=MarkRule.INDEX, max_price=2**20,
                     max_position=2**41)
    for owner in range(1, 7):
        eng.add_account(owner, 0, exempt=True)
    for owner in (1, 2, 3):
        eng.seed_position(owner, owner + 3, 2**20, 2**41)
    eng.set_index(2**20)
    with pytest.raises(ValueError, match=r"rate 100000000 would move 6917529027641081856 quote "
                                         r"units, past 2\*\*62"):
        eng.settle_funding(10**8)
    assert balances(eng) == {o: 0 for o in eng.owners()}
    got = eng.settle_funding(10**7)        # 10 %: ceil(2**61 / 10) from each long
    assert got.paid == 3 * -(-(2**61) // 10) and got.remainder == 0
    conserved(eng)


# ------------------------------------------------------------------ copies and state


def test_the_funding_history_survives_copies_and_pickles(engine_cls):
    eng = venue(engine_cls)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 10)
    eng.set_index(100)
    eng.advance_to(3_600_000)
    eng.settle_funding(10_000)
    for other in (eng.copy(), copy.copy(eng), copy.deepcopy(eng),
                  pickle.loads(pickle.dumps(eng))):
        assert other.funding_history().tolist() == eng.funding_history().tolist()
        other.settle_funding(10_000)
        assert len(other.funding_history()) == 2
    assert len(eng.funding_history()) == 1
    # a version 4 state (before funding) loads with no funding paid
    restore, (args, kwargs, state) = eng.__reduce__()
    old = {k: v for k, v in state.items() if k not in ("time", "funding_history")}
    old.update(version=4, queue=[row[:3] for row in state["queue"]])
    assert len(restore(args, kwargs, old).funding_history()) == 0


@pytest.mark.parametrize("damage", [
    lambda s: s.update(funding_history=[(0,) * 8]),                       # a short row
    lambda s: s.update(funding_history=[(0, 0, 1, 100, 5, 4, 0, 1, 1)]),  # 5 != 4 + 0
    lambda s: s.update(funding_history=[(7, 0, 1, 100, 1, 1, 0, 1, 1)]),  # after the clock
    lambda s: s.update(funding_history=[(0, 1, 1, 100, 1, 1, 0, 1, 1)]),  # no instrument 1
    lambda s: s.update(funding_history=[(0, 0, 10**8 + 1, 100, 1, 1, 0, 1, 1)]),
    lambda s: s.update(funding_history=None),
    lambda s: s.update(time=-1),
    lambda s: s.update(time=1.0),
])
def test_a_damaged_funding_history_or_clock_is_refused(engine_cls, damage):
    eng = venue(engine_cls)
    restore, (args, kwargs, state) = eng.__reduce__()
    state = dict(state)
    damage(state)
    with pytest.raises(ValueError, match="corrupt Engine state"):
        restore(args, kwargs, state)


# ------------------------------------------------------------------ conservation


@st.composite
def populations(draw):
    """Users with random collateral (some isolated, some exempt), positions seeded between them
    and the LP at random prices, a random mark and rate."""
    users = draw(st.lists(st.integers(1, 40), min_size=1, max_size=12, unique=True))
    accounts = []
    for u in users:
        kind = draw(st.sampled_from(["cross", "isolated", "exempt"]))
        collateral = draw(st.integers(0, 10**6))
        accounts.append((u, collateral, kind, draw(st.integers(0, collateral))))
    seeds = []
    owners = users + [LP]
    for _ in range(draw(st.integers(1, 20))):
        long_, short = draw(st.lists(st.sampled_from(owners), min_size=2, max_size=2,
                                     unique=True))
        seeds.append((long_, short, draw(st.integers(1, 1_000)), draw(st.integers(1, 500))))
    return (accounts, seeds, draw(st.integers(1, 5_000)),
            draw(st.lists(st.integers(-FUNDING_RATE_SCALE, FUNDING_RATE_SCALE)
                          | st.integers(-100_000, 100_000), min_size=1, max_size=4)),
            draw(st.sampled_from([1, 2, 10])), draw(st.integers(0, 10_000)))


@pytest.mark.parametrize("engine_name", ["compiled", "reference"])
@given(population=populations())
def test_funding_conserves_money_to_the_unit(engine_name, population):
    from orderbook import Engine
    from orderbook.reference_engine import Engine as Reference

    accounts, seeds, mark, rates, k, fund = population
    cls = Engine if engine_name == "compiled" else Reference
    eng = cls("1", str(k), "1", tiers=TIERS, mark_rule=MarkRule.INDEX, insurance_fund=fund)
    eng.add_account(LP, 10**9, exempt=True)
    isolated = set()
    for owner, collateral, kind, margin in accounts:
        if kind == "isolated":
            eng.add_account(owner, collateral, isolated_margin=margin)
            isolated.add(owner)
        else:
            eng.add_account(owner, collateral, exempt=kind == "exempt")
    for long_, short, price, qty in seeds:
        eng.seed_position(long_, short, price, qty)
    eng.set_index(mark)
    total = eng.total_equity() + eng.fees_collected
    for rate in rates:
        before = {o: eng.account(o) for o in eng.owners()}
        got = eng.settle_funding(rate)
        after = {o: eng.account(o) for o in eng.owners()}
        # what each account owed or was owed, by the rule
        owed = {}
        weight = 0
        for o, a in before.items():
            if o == INSURANCE_FUND or a.position == 0 or rate == 0:
                continue
            value = mark * k * abs(a.position)
            if (a.position > 0) == (rate > 0):
                owed[o] = -(-value * abs(rate) // FUNDING_RATE_SCALE)
            else:
                weight += value
        paid = sum(owed.values())
        assert got.paid == paid and got.received + got.remainder == paid
        assert got.payers == len(owed)
        for o, a in before.items():
            delta = after[o].collateral - a.collateral
            assert after[o].reserve == a.reserve
            if o in owed:
                assert delta == -owed[o]
            elif o == INSURANCE_FUND:
                assert delta == got.remainder
            elif a.position and rate:
                assert delta == paid * mark * k * abs(a.position) // weight
            else:
                assert delta == 0
        # each receiver's floor loses less than a unit; with none, the fund takes all
        assert 0 <= got.remainder < got.receivers if got.receivers else got.remainder == paid
        assert eng.total_equity() + eng.fees_collected == total == eng.total_deposits
        for m in (1, 97):
            assert eng.total_equity(m) + eng.fees_collected == eng.total_deposits
    check_accounts(eng)


def test_both_engines_agree_on_a_population(engine_cls):
    # A fixed mixed population (the differential state machine draws many more).
    from orderbook.reference_engine import Engine as Reference

    out = []
    for cls in (engine_cls, Reference):
        eng = cls(tiers=TIERS, mark_rule=MarkRule.INDEX, insurance_fund=7)
        eng.add_account(LP, 10**6, exempt=True)
        for owner, collateral in ((1, 500), (2, 700), (3, 900), (4, 300)):
            eng.add_account(owner, collateral)
        eng.seed_position(1, 2, 100, 3)
        eng.seed_position(3, 4, 99, 7)
        eng.seed_position(1, LP, 101, 5)
        eng.set_index(103)
        out.append(([tuple(eng.settle_funding(r)) for r in (333_333, -777_777, 1)],
                    balances(eng)))
    assert out[0] == out[1]


# ------------------------------------------------------------------ the rate model


def test_premium_by_hand():
    assert premium(100_100, 100_000) == Fraction(1, 1000)
    assert premium(99_950, 100_000) == Fraction(-1, 2000)
    # impact prices: bid above the index counts, ask below it counts, the index between: 0
    assert impact_premium(101, 103, 100) == Fraction(1, 100)
    assert impact_premium(97, 99, 100) == Fraction(-1, 100)
    assert impact_premium(99, 101, 100) == 0
    assert impact_premium(None, 99, 100) == Fraction(-1, 100)
    with pytest.raises(ValueError, match="index must be > 0"):
        premium(1, 0)
    with pytest.raises(TypeError, match="price"):
        premium(1.5, 100)


def test_impact_prices_from_a_book(engine_cls):
    # Bids 5 @ 99, 5 @ 98; asks 2 @ 101: selling 8 lots fills at (5 x 99 + 3 x 98) / 8.
    eng = venue(engine_cls)
    eng.limit(1, B, 99, 5, LP)
    eng.limit(2, B, 98, 5, LP)
    eng.limit(3, -1, 101, 2, LP)
    bid, ask = impact_prices(eng.book, 8)
    assert bid == Fraction(5 * 99 + 3 * 98, 8) and ask is None
    assert impact_prices(eng.book, 2) == (99, 101)


def test_round_rate_is_to_the_nearest_halves_away_from_zero():
    assert round_rate(Fraction(1, 10**8)) == 1
    assert round_rate(Fraction(3, 2 * 10**8)) == 2 and round_rate(Fraction(-3, 2 * 10**8)) == -2
    assert round_rate(Fraction(149, 100 * 10**8)) == 1
    assert round_rate(Fraction(-149, 100 * 10**8)) == -1
    assert round_rate(Fraction(0)) == 0


def test_the_rate_formula_by_hand():
    rule = FundingRule(8 * 3_600_000, 5_000, interest_e8=10_000, clamp_e8=50_000)
    # P = 0: F = clamp(0.01 %) = 0.01 %
    assert funding_rate(rule, []) == 10_000
    # P within 0.05 % of I: F = I
    assert funding_rate(rule, [Fraction(3, 10_000)]) == 10_000      # P 0.03 %
    # P = 0.1 %: F = 0.1 % - 0.05 % = 0.05 %; P = -0.2 %: F = -0.2 % + 0.05 % = -0.15 %
    assert funding_rate(rule, [Fraction(1, 1000)]) == 50_000
    assert funding_rate(rule, [Fraction(-2, 1000)]) == -150_000
    # the average of the samples: (0.1 % + 0.3 %) / 2 = 0.2 % -> 0.15 %
    assert funding_rate(rule, [Fraction(1, 1000), Fraction(3, 1000)]) == 150_000
    # linear weights: (1 x 0.1 % + 2 x 0.4 %) / 3 = 0.3 % -> 0.25 %
    linear = FundingRule(8 * 3_600_000, 60_000, interest_e8=10_000, clamp_e8=50_000,
                         weighting="linear")
    assert funding_rate(linear, [Fraction(1, 1000), Fraction(4, 1000)]) == 250_000
    # no clamp term: F = P + I
    assert funding_rate(FundingRule(1_000, 1_000, interest_e8=7), [Fraction(1, 10**6)]) == 107


def test_the_caps_hold_the_rate():
    capped = FundingRule(8 * 3_600_000, 60_000, interest_e8=0, clamp_e8=0, cap_e8=375_000)
    assert funding_rate(capped, [Fraction(1, 100)]) == 375_000          # 1 % -> 0.375 %
    assert funding_rate(capped, [Fraction(-1, 100)]) == -375_000
    assert funding_rate(capped, [Fraction(1, 1000)]) == 100_000         # 0.1 %: inside
    # no cap: still within +-100 % (what settle_funding takes)
    free = FundingRule(1_000, 1_000)
    assert funding_rate(free, [Fraction(5)]) == FUNDING_RATE_SCALE
    assert funding_rate(free, [Fraction(-5)]) == -FUNDING_RATE_SCALE


def test_hyperliquid_pays_an_eighth_of_the_8_hour_rate_each_hour_capped_at_4_percent():
    rule = VENUES["hyperliquid"]
    # P = 0: the 8-hour rate is the interest 0.01 %, an hour pays 0.00125 % = 1,250
    assert funding_rate(rule, []) == 1_250
    # P = 1 % (its docs' example: impact bid 10,100 over an oracle 10,000): 1 % - 0.05 % =
    # 0.95 % for 8 hours, 0.11875 % an hour = 118,750
    assert funding_rate(rule, [impact_premium(10_100, None, 10_000)]) == 118_750
    # P = 50 %: 49.95 % / 8 = 6.24375 % an hour, capped at 4 %
    assert funding_rate(rule, [Fraction(1, 2)]) == 4_000_000


def test_the_clock_samples_once_per_slot_and_pays_at_each_boundary():
    rule = FundingRule(60_000, 10_000, interest_e8=0, clamp_e8=0)   # F = P, 6 samples a minute
    clock = FundingClock(rule, start_ms=1_000)
    assert clock.sample(1_000, 101, 100)           # slot 0: P = 1 %
    assert not clock.sample(5_000, 150, 100)       # still slot 0: ignored
    assert clock.sample(31_000, 103, 100)          # slot 3 (slots 1, 2 had no offer)
    assert clock.due(60_999) is None
    with pytest.raises(ValueError, match="before the clock's time"):
        clock.sample(30_000, 100, 100)
    assert clock.due(61_000) == 2_000_000          # (1 % + 3 %) / 2 = 2 %
    assert clock.next_funding_ms == 121_000 and clock.premiums == []
    # a gap of two intervals: a sample there is refused until due() closes what is due; the
    # empty interval pays F = P = 0
    with pytest.raises(ValueError, match="call due"):
        clock.sample(200_000, 100, 100)
    assert clock.due(200_000) == 0                 # [61,000, 121,000) had no sample
    assert clock.due(200_000) == 0                 # nor [121,000, 181,000)
    assert clock.due(200_000) is None
    assert clock.sample_impact(200_000, 99, 101, 100) and clock.due(241_000) == 0


def test_bad_rules_and_clocks_are_refused():
    with pytest.raises(ValueError, match="interval_ms"):
        FundingRule(0, 1)
    with pytest.raises(ValueError, match="sample_ms 10 exceeds interval_ms 5"):
        FundingRule(5, 10)
    with pytest.raises(TypeError, match="sample_ms"):
        FundingRule(10, 1.5)
    with pytest.raises(ValueError, match="clamp_e8"):
        FundingRule(10, 1, clamp_e8=-1)
    with pytest.raises(ValueError, match="cap_e8"):
        FundingRule(10, 1, cap_e8=10**8 + 1)
    with pytest.raises(ValueError, match="interest_e8"):
        FundingRule(10, 1, interest_e8=-(10**8) - 1)
    with pytest.raises(ValueError, match="weighting"):
        FundingRule(10, 1, weighting="ema")
    with pytest.raises(ValueError, match="rate_period_ms"):
        FundingRule(10, 1, rate_period_ms=0)
    with pytest.raises(TypeError, match="FundingRule"):
        FundingClock({"interval_ms": 10})
    with pytest.raises(TypeError, match="time_ms"):
        FundingClock(VENUES["okx"]).due(1.0)


def test_the_presets_load_with_their_documented_numbers():
    hour = 3_600_000
    assert set(VENUES) == {"binance", "bybit", "okx", "hyperliquid", "dydx"}
    assert VENUES["binance"] == FundingRule(8 * hour, 5_000, 10_000, 50_000)
    assert VENUES["bybit"] == FundingRule(8 * hour, 60_000, 10_000, 50_000,
                                          weighting="linear")
    assert VENUES["okx"] == FundingRule(8 * hour, 60_000, 0, 0, 375_000)
    assert VENUES["hyperliquid"] == FundingRule(hour, 5_000, 10_000, 50_000, 4_000_000,
                                                8 * hour)
    assert VENUES["dydx"] == FundingRule(hour, 60_000, 0, None, None, 8 * hour)
    for rule in VENUES.values():
        # with no premium each pays its interest term (dYdX and OKX: none)
        assert funding_rate(rule, []) == round_rate(
            Fraction(rule.interest_e8, 10**8) * rule.scale)


def test_a_clock_drives_an_engine(engine_cls):
    # The scenario runner's loop in small: sample each step, settle what is due.
    eng = venue(engine_cls)
    eng.add_account(1, 10_000)
    eng.seed_position(1, LP, 100, 10)
    eng.set_index(100)
    clock = FundingClock(FundingRule(3_000, 1_000, interest_e8=0, clamp_e8=0))
    for t in range(0, 6_001, 1_000):
        eng.advance_to(t)
        rate = clock.due(t)
        if rate is not None:
            eng.settle_funding(rate)
        if t < 6_000:
            clock.sample(t, 101, 100)      # the mark 1 % over the index all along
    # two payments of 1 % of 1,000 at t = 3,000 and 6,000
    assert rows(eng.funding_history()) == [
        {"time": t, "instrument": 0, "rate": 1_000_000, "mark": 100, "paid": 10,
         "received": 10, "remainder": 0, "payers": 1, "receivers": 1} for t in (3_000, 6_000)]
    assert eng.account(1).collateral == 9_980
