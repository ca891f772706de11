"""Specification tests of the liquidator (docs/liquidation.md): the worked examples, rounds and
the queue, sizing, limit rules, round cap, fees, backstop, insurance fund, ADL, socialised loss,
shortfall and the liquidation records.

Expected numbers are computed by hand; the conventions (k = 1, one 5 % / 10 % tier, the victim
"A") are in tests/engine_helpers.py. Every test runs on both engines (``engine_cls``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from engine_helpers import (
    B,
    S,
    _index_engine,
    assert_conserved,
    fund_balances,
    kind,
    make,
    of_kind,
    old_state,
    rows,
    victim_a,
)
from hypothesis import given
from hypothesis import strategies as st

from orderbook.events import (
    INSURANCE_FUND,
    NO_COUNTERPARTY,
    Deficit,
    LimitRule,
    MarginBasis,
    MarkRule,
    Sizing,
    Trigger,
)
from orderbook.liquidator import _nearest_quotient
from orderbook.testing import check_accounts

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


def test_forced_orders_from_a_start_read_only_what_is_new(engine_cls):
    eng = make(engine_cls)
    _setup_lp(eng)
    victim_a(eng, owner=1)                          # L = 94
    victim_a(eng, owner=2, collateral=120)          # L = 92
    _three_level_book(eng, [(94, 4), (93, 3), (92, 5), (91, 2), (90, 20)])
    assert eng.forced_order_count == 0
    assert eng.liquidation_round()                  # A, at mark 94
    first = eng.forced_order_count
    assert first == len(eng.forced_orders()) == 1
    assert eng.liquidation_round()                  # B, at mark 92
    every = eng.forced_orders()
    assert eng.forced_order_count == len(every) == 2
    assert eng.forced_orders(start=first).tobytes() == every[first:].tobytes()
    assert len(eng.forced_orders(start=2)) == 0
    with pytest.raises(ValueError, match="start must be at most the forced-order count 2, got 3"):
        eng.forced_orders(start=3)
    with pytest.raises(ValueError, match="start must be >= 0, got -1"):
        eng.forced_orders(start=-1)
    with pytest.raises(TypeError, match="start must be an integer"):
        eng.forced_orders(start=1.0)
    assert eng.forced_order_count == 2


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
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BANKRUPTCY,
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


def _a_at_94(engine_cls, **kw):
    # Victim A (liquidation price 94) on an INDEX mark at 94, with 50 lots bid at 94.
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, **kw)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng)
    eng.limit(1, B, 94, 50, 101)
    eng.set_index(94)
    return eng


def test_example5_restore_stops_after_one_step(engine_cls):
    eng = _a_at_94(engine_cls, sizing=Sizing.RESTORE)
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
    eng = _a_at_94(engine_cls, sizing=Sizing.FRACTION,
                   fraction_ppm=250_000)
    records = rows(eng.liquidate())
    # x = max(1, ceil(10 * 25%)) = ceil(2.5) = 3; sells 3 @ 94: R = 300, PnL = 282 - 300 = -18
    # -> coll 82, C 700, q 7; E = 82 + 658 - 700 = 40 >= MM ceil(32.9) = 33: done
    assert [(r["round"], r["qty"], r["filled"]) for r in records] == [(0, 3, 3)]
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (7, 700, 82)
    assert list(eng.queue()) == []


def test_fraction_steps_again_next_round(engine_cls):
    eng = _a_at_94(engine_cls, sizing=Sizing.FRACTION,
                   fraction_ppm=100_000)
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


@pytest.mark.parametrize("above, qty", [(940, 10), (939, 3)])
def test_fraction_above_closes_a_position_worth_no_more_whole(engine_cls, above, qty):
    eng = _a_at_94(engine_cls, sizing=Sizing.FRACTION,
                   fraction_ppm=250_000, fraction_above=above)
    eng.liquidation_round()
    # V(94, 10) = 940: at most fraction_above = 940 -> all 10 lots (sold @ 94: PnL -60 ->
    # collateral 40, flat); one unit above 939 -> the fraction, ceil(10 x 25 %) = 3 lots
    assert [(r["qty"], r["filled"]) for r in rows(eng.forced_orders())] == [(qty, qty)]
    a = eng.account(1)
    assert (a.position, a.collateral) == ((0, 40) if qty == 10 else (7, 82))
    assert_conserved(eng, [1, 100, 101])


# =========================================================================== FRACTION's cooldown


def _cooldown_engine(engine_cls, cooldown_rounds):
    """Owner 1 long 10 @ 100 with collateral 70 (E = 10 at the INDEX mark 94, MM 47), 10 %
    steps, LP 101 bidding only 3 lots at 94."""
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, sizing=Sizing.FRACTION,
               fraction_ppm=100_000, cooldown_rounds=cooldown_rounds)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng, collateral=70)
    eng.limit(1, B, 94, 3, 101)
    eng.set_index(94)
    return eng


def test_after_a_partial_step_the_cooldown_closes_the_whole_position(engine_cls):
    eng = _cooldown_engine(engine_cls, 1)
    eng.liquidate()
    # Fills at the mark keep E = 10. Round 0: ceil(10 x 10 %) = 1 lot (9 left, E 10 < 43): a
    # partial step, so round 1 (the next cooldown_rounds = 1 round) asks for the whole 9;
    # the bids hold 2: 7 left (E 10 < 33), not a partial order (9 of 9 asked). Round 2 asks
    # for the fraction again, ceil(0.7) = 1, and the empty book stops the run.
    recs = rows(eng.forced_orders())
    assert [(r["round"], r["qty"], r["filled"]) for r in recs] == [(0, 1, 1), (1, 9, 2)]
    eng.limit(2, B, 94, 50, 101)
    eng.liquidate()
    # round 2: 1 lot (6 left, E 10 < 29), a partial step; round 3: the whole 6
    recs = rows(eng.forced_orders())
    assert [(r["round"], r["qty"], r["filled"]) for r in recs] == [
        (0, 1, 1), (1, 9, 2), (2, 1, 1), (3, 6, 6)]
    a = eng.account(1)
    # collateral 70 - 6 - 12 - 6 - 36 = 10: every lot sold at 94 lost 6
    assert (a.position, a.collateral) == (0, 10)
    assert_conserved(eng, [1, 100, 101])


def test_no_cooldown_keeps_stepping_by_the_fraction(engine_cls):
    eng = _cooldown_engine(engine_cls, 0)
    eng.liquidate()
    # 1 lot a round until the 3 bid lots are gone: 9, 8, 7 left
    assert [(r["round"], r["qty"], r["filled"]) for r in rows(eng.forced_orders())] == [
        (0, 1, 1), (1, 1, 1), (2, 1, 1)]


def test_a_running_cooldown_is_kept_by_copies_and_pickles(engine_cls):
    import copy
    import pickle

    eng = _cooldown_engine(engine_cls, 1)
    eng.liquidation_round()                      # the partial step: 9 lots left
    for other in (eng.copy(), copy.deepcopy(eng), pickle.loads(pickle.dumps(eng))):
        assert other.cooldown_rounds == 1
        other.liquidation_round()
        assert rows(other.forced_orders())[-1]["qty"] == 9
    # A state saved before the cooldown existed (version 1, queue rows of two) has none
    # running: the next order is the fraction again.
    restore, (args, kwargs, state) = eng.__reduce__()
    state = old_state(state, 1)
    del kwargs["cooldown_rounds"]
    old = restore(args, kwargs, state)
    assert old.cooldown_rounds == 0
    old.liquidation_round()
    assert rows(old.forced_orders())[-1]["qty"] == 1


# ============================================================ the clock and the cooldown in ms


def _ms_engine(engine_cls, cooldown_ms, cooldown_rounds=0):
    """_cooldown_engine's story (victim long 10 @ 100, collateral 70, INDEX mark 94, 10 % steps,
    3 lots bid at 94) with a cooldown of ``cooldown_ms`` on the engine's clock."""
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, sizing=Sizing.FRACTION,
               fraction_ppm=100_000, cooldown_ms=cooldown_ms, cooldown_rounds=cooldown_rounds)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    victim_a(eng, collateral=70)
    eng.limit(1, B, 94, 3, 101)
    eng.set_index(94)
    return eng


def _orders(eng):
    return [(r["qty"], r["filled"]) for r in rows(eng.forced_orders())]


def test_the_clock_starts_at_0_and_never_goes_back(engine_cls):
    eng = make(engine_cls)
    assert eng.time == 0
    eng.advance_to(0)
    eng.advance_to(5)
    eng.advance_to(5)            # standing still is allowed
    assert eng.time == 5
    with pytest.raises(ValueError, match=r"time_ms 4 is before the engine's time 5 ms"):
        eng.advance_to(4)
    with pytest.raises(ValueError, match=r"time_ms -1 is before"):
        eng.advance_to(-1)
    with pytest.raises(ValueError, match="time_ms must fit in int64"):
        eng.advance_to(2**63)
    for bad in (5.0, "6", None, True, [6]):
        with pytest.raises(TypeError, match="time_ms must be an integer"):
            eng.advance_to(bad)
    assert eng.time == 5
    eng.advance_to(np.int64(2**63 - 1))
    assert eng.time == 2**63 - 1 and type(eng.time) is int


def test_after_a_partial_step_orders_are_whole_for_cooldown_ms(engine_cls):
    eng = _ms_engine(engine_cls, 30_000)
    eng.advance_to(1_000)
    eng.liquidation_round()      # 1 lot of 10 at t = 1,000: a partial step, whole until 31,000
    eng.advance_to(31_000)       # the last ms of the window (t <= 1,000 + 30,000)
    eng.liquidation_round()      # the whole 9 asked, the bids hold 2: 7 left (not partial)
    assert _orders(eng) == [(1, 1), (9, 2)]
    eng.limit(2, B, 94, 50, 101)
    eng.advance_to(31_001)       # the window is closed: the fraction again, ceil(0.7) = 1
    eng.liquidation_round()
    eng.liquidation_round()      # a partial step at 31,001 opened a new window: the whole 6
    assert _orders(eng) == [(1, 1), (9, 2), (1, 1), (6, 6)]
    a = eng.account(1)
    assert (a.position, a.collateral) == (0, 10)   # every lot sold at 94 lost 6
    assert_conserved(eng, [1, 100, 101])
    check_accounts(eng)


def test_no_cooldown_ms_steps_by_the_fraction_at_any_time(engine_cls):
    eng = _ms_engine(engine_cls, 0)
    eng.liquidate()
    assert _orders(eng) == [(1, 1), (1, 1), (1, 1)]


def test_orders_are_whole_while_either_cooldown_is_open(engine_cls):
    # 1 round and 5,000 ms after the partial step at t = 0: round 1 (both open) asks 9; at
    # t = 5,000 round 2 is past the rounds' window but inside the ms one: the whole 7 again.
    eng = _ms_engine(engine_cls, 5_000, cooldown_rounds=1)
    eng.liquidation_round()
    eng.liquidation_round()
    eng.limit(2, B, 94, 50, 101)
    eng.advance_to(5_000)
    eng.liquidation_round()
    assert _orders(eng) == [(1, 1), (9, 2), (7, 7)]
    # 3 rounds and 1 ms: at t = 10 the ms window is closed, the rounds' open: whole
    eng = _ms_engine(engine_cls, 1, cooldown_rounds=3)
    eng.liquidation_round()
    eng.advance_to(10)
    eng.liquidation_round()
    assert _orders(eng) == [(1, 1), (9, 2)]


def test_a_cooldown_ms_window_ends_with_its_episode(engine_cls):
    # The window belongs to the episode: an account that leaves the queue and is crossed again
    # starts with none, whatever the clock says.
    eng = _ms_engine(engine_cls, 10**9)
    eng.limit(2, B, 94, 50, 101)
    eng.liquidation_round()      # 1 lot (9 left, E 10 < MM 43): partial, the window opens
    eng.deposit(1, 40)           # E 50 >= 43: the next round drops it from the queue
    assert not eng.liquidation_round()
    assert eng.queue() == [] and eng.account(1).position == 9
    eng.set_index(90)            # E = 104 + 810 - 900 = 14 < MM ceil(40.5) = 41: crossed again
    eng.liquidation_round()
    assert _orders(eng) == [(1, 1), (1, 1)]   # a new episode: the fraction of 9, not all 9


def test_the_clock_and_a_running_cooldown_ms_survive_copies_and_pickles(engine_cls):
    import copy
    import pickle

    eng = _ms_engine(engine_cls, 30_000)
    eng.advance_to(7)
    eng.liquidation_round()      # partial at t = 7: whole until 30,007
    for other in (eng.copy(), copy.copy(eng), copy.deepcopy(eng),
                  pickle.loads(pickle.dumps(eng))):
        assert (other.time, other.cooldown_ms) == (7, 30_000)
        other.advance_to(30_007)
        other.liquidation_round()
        assert _orders(other)[-1] == (9, 2)
    assert eng.time == 7         # the copies' clocks are their own
    # A version 4 state (before the clock) loads at time 0 with no window in ms running.
    restore, (args, kwargs, state) = eng.__reduce__()
    old = {key: value for key, value in state.items()
           if key not in ("time", "funding_history")}
    old.update(version=4, queue=[row[:3] for row in state["queue"]])
    del kwargs["cooldown_ms"]
    loaded = restore(args, kwargs, old)
    assert (loaded.time, loaded.cooldown_ms) == (0, 0)
    loaded.liquidation_round()
    assert _orders(loaded)[-1] == (1, 1)


# =========================================================================== take-over below MM

#: Victim A at the INDEX mark 94: E = 40, MM = 47, bankruptcy price 90. 10**6 x 40 = 40,000,000
#: against ppm x 47: 851,063 x 47 = 39,999,961 (not below: to the book), 851,064 x 47 =
#: 40,000,008 (below: taken over).
AT_THRESHOLD, BELOW_THRESHOLD = 851_063, 851_064


def _takeover_engine(engine_cls, ppm, **kw):
    eng = _a_at_94(engine_cls, takeover_below_ppm=ppm, **kw)
    if kw.get("backstop") is not None:
        eng.add_account(50, 10_000, exempt=True)
    return eng


def test_an_account_at_the_takeover_threshold_goes_to_the_book(engine_cls):
    eng = _takeover_engine(engine_cls, AT_THRESHOLD, backstop=50)
    # 10**6 E = 40,000,000 >= 39,999,961: FULL market sell of 10 @ 94, PnL -60 -> collateral 40
    recs = rows(eng.liquidate())
    assert [(kind(r), r["qty"], r["filled"], r["counterparty"]) for r in recs] == [
        ("ORDER", 10, 10, NO_COUNTERPARTY)]
    assert (eng.account(1).position, eng.account(1).collateral) == (0, 40)
    assert eng.account(50).position == 0
    assert_conserved(eng, [1, 50, 100, 101])


def test_an_account_below_the_takeover_threshold_goes_to_the_backstop_whole(engine_cls):
    eng = _takeover_engine(engine_cls, BELOW_THRESHOLD, backstop=50, sizing=Sizing.FRACTION,
                           round_cap=100)
    # 10**6 E = 40,000,000 < 40,000,008: the whole 10 lots (not the fraction, not cut by the
    # round cap) to the backstop at bp 90: R = 1,000, PnL 900 - 1,000 = -100 -> collateral 0
    recs = rows(eng.liquidate())
    assert [(kind(r), r["qty"], r["filled"], r["avg_price"], r["counterparty"])
            for r in recs] == [("BACKSTOP", 10, 10, 90.0, 50)]
    a, backstop = eng.account(1), eng.account(50)
    assert (a.position, a.cost, a.collateral) == (0, 0, 0)
    assert (backstop.position, backstop.cost, backstop.collateral) == (10, 900, 10_000)
    assert eng.book.quantity_at(B, 94) == 50          # nothing went to the book
    assert list(eng.queue()) == [] and eng.insurance_fund == 0
    assert_conserved(eng, [1, 50, 100, 101])
    check_accounts(eng, settled=True)


def test_an_account_below_the_takeover_threshold_goes_to_the_fund_without_a_backstop(
        engine_cls):
    eng = _takeover_engine(engine_cls, BELOW_THRESHOLD, insurance_fund=1_000)
    # round 0: the fund takes 10 @ 90 (its equity at 94 after: 1,000 + 940 - 900 = 1,040 >=
    # MM 47); A: PnL -100 -> collateral 0. Round 1: the fund unwinds its 10 lots with a
    # MARKET sell @ 94: +40 -> 1,040.
    recs = rows(eng.liquidate())
    assert [(r["round"], kind(r), r["owner"], r["qty"], r["filled"], r["avg_price"],
             r["counterparty"]) for r in recs] == [
        (0, "FUND_TAKEOVER", 1, 10, 10, 90.0, INSURANCE_FUND),
        (1, "ORDER", INSURANCE_FUND, 10, 10, 94.0, NO_COUNTERPARTY)]
    assert (eng.account(1).position, eng.account(1).collateral) == (0, 0)
    assert eng.insurance_fund == 1_040
    assert_conserved(eng, [1, 100, 101])
    check_accounts(eng, settled=True)


def test_a_takeover_nobody_can_take_leaves_the_account_queued_off_the_book(engine_cls):
    eng = _takeover_engine(engine_cls, BELOW_THRESHOLD, insurance_fund=0)
    # the fund cannot take (0 + 940 - 900 = 40 < MM 47), no backstop, Deficit.NONE: nothing
    # moves, as for a BANKRUPTCY remainder; the account waits in the queue
    assert len(eng.liquidate()) == 0
    assert (eng.account(1).position, eng.account(1).collateral) == (10, 100)
    assert list(eng.queue()) == [1]
    assert eng.book.quantity_at(B, 94) == 50
    assert_conserved(eng, [1, 100, 101])
    check_accounts(eng)


# =========================================================================== tier step-down

#: Four tiers (caps 1,000 / 2,000 / 3,000 / none; MM 1 %, 2 %, 3 %, 5 %). Deductions:
#: D = 0, 1,000 x 1 % = 10, 10 + 2,000 x 1 % = 30, 30 + 3,000 x 2 % = 90 (quote units), so
#: MM(3,500) = 175 - 90 = 85, MM(3,000) = 90 - 30 = 60, MM(2,000) = 40 - 10 = 30,
#: MM(1,000) = 10, MM(800) = 8.
TIERS4 = [(1_000, 10_000, 20_000), (2_000, 20_000, 40_000), (3_000, 30_000, 60_000),
          (None, 50_000, 100_000)]


def _tier_step_engine(engine_cls, qty, collateral, mark=100, **kw):
    """Owner 1 long ``qty`` @ 100 with ``collateral``, LP 101 bidding 100 lots at ``mark``, the
    INDEX mark at ``mark``: the forced sells fill at the mark."""
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, sizing=Sizing.TIER_STEP, tiers=TIERS4,
               **kw)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, collateral)
    eng.seed_position(1, 100, 100, qty)
    eng.limit(1, B, mark, 100, 101)
    eng.set_index(mark)
    return eng


def test_tier_step_steps_down_one_tier_a_round_then_closes(engine_cls):
    eng = _tier_step_engine(engine_cls, 35, 5)
    # E = 5 at 100 throughout (fills at the mark realise 0). Round 0: V = 3,500 is in tier 3,
    # x = 35 - floor(3,000 / 100) = 5 -> 30 lots (E 5 < MM 60: queued). Round 1: 3,000 is in
    # tier 2 (not past its cap), x = 30 - floor(2,000 / 100) = 10 -> 20 (5 < 30). Round 2:
    # tier 1, x = 20 - 10 = 10 -> 10 (5 < 10). Round 3: tier 0, the whole 10.
    records = rows(eng.liquidate())
    assert [(r["round"], r["qty"], r["filled"]) for r in records] == [
        (0, 5, 5), (1, 10, 10), (2, 10, 10), (3, 10, 10)]
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (0, 0, 5)
    assert list(eng.queue()) == []
    assert_conserved(eng, [1, 100, 101])


def test_tier_step_closes_a_lowest_tier_position_at_once(engine_cls):
    eng = _tier_step_engine(engine_cls, 8, 5)
    # V = 800 is in tier 0: E = 5 < MM 8, the whole 8 lots in one order
    assert [(r["round"], r["qty"], r["filled"]) for r in rows(eng.liquidate())] == [(0, 8, 8)]
    assert eng.account(1).position == 0


def test_tier_step_that_restores_the_account_leaves_the_queue(engine_cls):
    eng = _tier_step_engine(engine_cls, 35, 70)
    # E = 70 < MM(3,500) = 85; x = 5 -> 30 lots, E = 70 >= MM(3,000) = 60: out of the queue
    assert [(r["round"], r["qty"]) for r in rows(eng.liquidate())] == [(0, 5)]
    a = eng.account(1)
    assert (a.position, a.equity, a.maintenance_margin) == (30, 70, 60)
    assert list(eng.queue()) == []


def test_tier_step_is_still_limited_by_the_round_cap(engine_cls):
    eng = _tier_step_engine(engine_cls, 35, 5, round_cap=300)
    # round 0: x = 5, but V(100, 5) = 500 > 300 -> 300 // 100 = 3 lots -> 32
    assert eng.liquidation_round()
    assert (eng.account(1).position, list(eng.queue())) == (32, [1])
    # round 1: V = 3,200, tier 3: x = 32 - 30 = 2 (200 <= 300) -> 30
    assert eng.liquidation_round()
    assert eng.account(1).position == 30
    eng.liquidate()
    # then 3 a round within a tier, the rest of a step when less: 30 -> 27 -> 24 -> 21 -> 20
    # (tier 1) -> 17 -> 14 -> 11 -> 10 (tier 0: the whole 10, 3 a round) -> 7 -> 4, where
    # E = 5 >= MM(400) = 4: out of the queue
    qtys = [int(r["qty"]) for r in rows(eng.forced_orders())]
    assert qtys == [3, 2, 3, 3, 3, 1, 3, 3, 3, 1, 3, 3]
    assert (eng.account(1).position, list(eng.queue())) == (4, [])


def test_tier_step_takes_the_tier_on_the_mark_notional_under_the_entry_basis(engine_cls):
    eng = _tier_step_engine(engine_cls, 35, 705, mark=80, mm_basis=MarginBasis.ENTRY)
    # MM on the cost 3,500 is 85; E at 80 = 705 + 2,800 - 3,500 = 5 < 85. The step's tier is
    # that of the mark notional 2,800 (tier 2), not of the cost (tier 3):
    # x = 35 - floor(2,000 / 80) = 35 - 25 = 10. Sells 10 @ 80: R = 1,000, PnL -200 ->
    # collateral 505, C 2,500, q 25; E = 505 + 2,000 - 2,500 = 5 < MM(2,500) = 75 - 30 = 45.
    eng.liquidation_round()
    assert [(r["qty"], r["filled"]) for r in rows(eng.forced_orders())] == [(10, 10)]
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral, a.maintenance_margin) == (25, 2_500, 505, 45)
    assert list(eng.queue()) == [1]


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
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BAND, band_ppm=20_000)
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
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BAND, band_ppm=20_000)
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
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BANKRUPTCY, backstop=50,
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
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BANKRUPTCY,
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


# =========================================================================== isolated margin


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


# =========================================================================== queue, records


def test_entering_liquidation_cancels_the_accounts_own_orders(engine_cls):
    # With CANCEL_TAKER, A's own bid at 94 would cancel every forced sell forever; entering the
    # queue cancels it (and A's armed stop), so the forced sell fills 10 @ 93 against the LP.
    from orderbook import SelfTradePrevention

    # The initial margin check is off: A's bid would need IM ceil(10 % x 11 x 94) = 104 against
    # equity 40 at 94 (no mark yet, so the order's price stands in), and this test is about the
    # cancel, not that refusal (test_engine.py's "Initial margin" section has it).
    eng = make(engine_cls, stp=SelfTradePrevention.CANCEL_TAKER, mark_rule=MarkRule.INDEX,
               check_initial_margin=False)
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
    for first, second in zip(*outputs, strict=True):
        used = set()
        for name in first.dtype.names:
            field, offset = first.dtype.fields[name][:2]
            used.update(range(offset, offset + field.itemsize))
        pad = sorted(set(range(first.dtype.itemsize)) - used)
        raw = first.view(np.uint8).reshape(len(first), first.dtype.itemsize)
        assert len(first) and not raw[:, pad].any()
        assert first.tobytes() == second.tobytes()


# =========================================================================== ADL (issue #12)


def _adl_hand_case(engine_cls, with_profitable_shorts=True):
    """Issue #12, defect 8: fund 0, BANKRUPTCY + ADL, one tier MM 0.5 % / IM 1 %. Owner 1 is
    long 10 @ 100 with 50 of collateral (bankruptcy price ceil(950 / 10) = 95); owner 4, with 40,
    is short 10 @ 50. With ``with_profitable_shorts`` owner 1's shorts are 5 lots of owner 2
    (collateral 100) and 5 of the exempt owner 3 (collateral 0); without, the exempt LP 100
    sells them and buys owner 4's 10 lots back, so owner 4 is the only opposing account."""
    eng = engine_cls(tiers=[(None, 5_000, 10_000)], limit_rule=LimitRule.BANKRUPTCY,
                     deficit=Deficit.ADL, insurance_fund=0)
    eng.add_account(1, 50)
    eng.add_account(4, 40)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(102, 100_000, exempt=True)
    if with_profitable_shorts:
        eng.add_account(2, 100)
        eng.add_account(3, 0, exempt=True)
        eng.seed_position(1, 2, 100, 5)
        eng.seed_position(1, 3, 100, 5)
        eng.seed_position(101, 4, 50, 10)
    else:
        eng.seed_position(1, 100, 100, 10)
        eng.seed_position(100, 4, 50, 10)    # the LP closes its short at 50: flat
    eng.limit(1, B, 40, 20, 101)             # bids only at 40
    eng.market(2, S, 1, 102)                 # a print at 40: the LAST mark is 40
    assert eng.mark_price() == 40 and eng.account(1).bankruptcy_price == 95
    return eng


def test_adl_never_takes_more_than_the_counterpartys_profit(engine_cls):
    # Defect 8 (issue #12). At 40 owner 1's IOC sell of 10 @ 95 finds no bid, the empty fund
    # cannot take the 10 lots, so they go to ADL, ranked (U/C) x (N/E) at 40:
    #   owner 4: U = 500 - 400 = 100, E = 140: (100/500) x (400/140) = 0.571  (first)
    #   owner 3: U = 500 - 200 = 300, E = 300: (300/500) x (200/300) = 0.4
    #   owner 2: U = 300, E = 400:             (300/500) x (200/400) = 0.3
    #   (the print's seller 102 is short 1 @ 40: U = 0, key 0, last)
    # Closing owner 4 at 95 would realise 500 - 950 = -450 (collateral 40 -> -410): its cap is
    # the better of the mark and its no-loss price floor(500 / 10) = 50, below 95, so it is
    # passed over. Owners 3 and 2 close 5 each at 95 (their no-loss price is 100):
    #   each realises 500 - 475 = +25: owner 3 -> 25, owner 2 -> 125; owner 1 sells 10 @ 95:
    #   950 - 1000 = -50 -> collateral 0, flat, no shortfall.
    eng = _adl_hand_case(engine_cls)
    records = rows(eng.liquidate())
    assert [(kind(r), r["counterparty"], r["filled"], r["avg_price"]) for r in records] == [
        ("ADL", 3, 5, 95.0), ("ADL", 2, 5, 95.0)]
    assert [eng.account(o).collateral for o in (1, 2, 3, 4)] == [0, 125, 25, 40]
    assert [eng.account(o).position for o in (1, 2, 3, 4)] == [0, 0, 0, -10]
    assert eng.insurance_fund == 0
    assert_conserved(eng, [1, 2, 3, 4, 100, 101, 102])


def test_adl_counterparty_left_alone_closes_at_its_cap_and_the_rest_is_bad_debt(engine_cls):
    # Defect 8 (issue #12), no other candidate: owner 4 (short 10 @ 50) and the print's seller
    # 102 (short 1 @ 40, U = 0) are both capped below 95, so the second pass closes them best
    # ranked first: owner 4 buys 10 at its cap min(95, max(40, floor(500 / 10))) = 50, realising
    # 0 (collateral stays 40). Owner 1 sells 10 @ 50: 500 - 1000 = -500 -> collateral -450, flat:
    # the empty fund pays 0 and the 450 is bad debt (Deficit.ADL), the fund -450.
    eng = _adl_hand_case(engine_cls, with_profitable_shorts=False)
    records = rows(eng.liquidate())
    assert [(kind(r), r["counterparty"], r["filled"], r["avg_price"]) for r in records
            if kind(r) == "ADL"] == [("ADL", 4, 10, 50.0)]
    short = of_kind(records, "SHORTFALL", owner=1)
    assert [(r["fund_cover"], r["socialized"], r["bad_debt"]) for r in short] == [(0, 0, 450)]
    assert (eng.account(4).position, eng.account(4).collateral) == (0, 40)
    assert (eng.account(1).position, eng.account(1).collateral) == (0, 0)
    assert eng.insurance_fund == -450
    assert_conserved(eng, [1, 4, 100, 101, 102])


def _losing_shorts(engine_cls, ranking):
    # Owner 1 long 10 (C 920, collateral 20: bankruptcy ceil(900 / 10) = 90) against owner 2
    # short 2 @ 100 (collateral 100), owners 3 and 4 short 4 @ 90 each (collateral 100 and 50).
    from orderbook import AdlRanking

    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BANKRUPTCY,
               deficit=Deficit.ADL, adl_ranking=AdlRanking[ranking])
    eng.add_account(101, 100_000, exempt=True)
    for owner, collateral in ((1, 20), (2, 100), (3, 100), (4, 50)):
        eng.add_account(owner, collateral)
    eng.seed_position(1, 2, 100, 2)
    eng.seed_position(1, 3, 90, 4)
    eng.seed_position(1, 4, 90, 4)
    eng.limit(1, B, 80, 5, 101)
    eng.set_index(92)            # owner 1: E = 20 + 920 - 920 = 20 < MM ceil(46) = 46
    return eng


@pytest.mark.parametrize(("ranking", "order"), [
    # at 92, owner 2: U = 200 - 184 = 16, E 116, N 184; owners 3, 4: U = 360 - 368 = -8,
    # E 92 and 42, N 368.
    # BITMEX: 2: (16/200) x (184/116) > 0; 3: (-8/360) / (368/92), 4: (-8/360) / (368/42),
    #   the smaller loss key magnitude (owner 4's) ranks first among the losers.
    ("BITMEX", [(2, 2), (4, 4), (3, 4)]),
    # PNL_RATIO: 2: 16/200; 3 and 4: -8/360, a tie broken by owner id.
    ("PNL_RATIO", [(2, 2), (3, 4), (4, 4)]),
    # BINANCE: 2: 16 x MM(184) / (100 x 116) = 16 x 10 / 11600 > 0; 3 and 4: 0, by owner id.
    ("BINANCE", [(2, 2), (3, 4), (4, 4)]),
])
def test_adl_ranks_losing_opposing_positions_after_profitable_ones(engine_cls, ranking, order):
    # Defect 4 (issue #12): once the one profitable short is used up, the losing shorts take
    # the rest. IOC sell 10 @ 90 fills nothing (bid 80), the empty fund cannot take the 10
    # lots, ADL closes all of them at 90 (below the mark 92, so no cap binds):
    #   owner 2: 200 - 180 = +20 -> 120; owners 3 and 4: 360 - 360 = 0; owner 1: 900 - 920 = -20
    #   -> collateral 0, flat.
    eng = _losing_shorts(engine_cls, ranking)
    records = rows(eng.liquidate())
    assert [(r["counterparty"], r["filled"]) for r in of_kind(records, "ADL")] == order
    assert all(r["avg_price"] == 90.0 for r in of_kind(records, "ADL"))
    assert [eng.account(o).collateral for o in (1, 2, 3, 4)] == [0, 120, 100, 50]
    assert all(eng.account(o).position == 0 for o in (1, 2, 3, 4))
    assert_conserved(eng, [1, 2, 3, 4, 101])


def test_adl_ranking_is_a_setting_kept_by_copies_and_pickles(engine_cls):
    import pickle

    from orderbook import AdlRanking

    eng = make(engine_cls)
    assert eng.adl_ranking is AdlRanking.BITMEX
    eng = make(engine_cls, adl_ranking=2)
    assert eng.adl_ranking is AdlRanking.BINANCE
    assert pickle.loads(pickle.dumps(eng)).adl_ranking is AdlRanking.BINANCE
    assert eng.copy().adl_ranking is AdlRanking.BINANCE
    with pytest.raises(ValueError, match="adl_ranking must be one of .* got 3"):
        make(engine_cls, adl_ranking=3)
    with pytest.raises(TypeError, match="adl_ranking"):
        make(engine_cls, adl_ranking="BITMEX")
    # a pickle made before the setting existed has no adl_ranking: today's default
    restore, (args, kwargs, state) = make(engine_cls, adl_ranking=1).__reduce__()
    del kwargs["adl_ranking"]
    assert restore(args, kwargs, state).adl_ranking is AdlRanking.BITMEX


@pytest.mark.parametrize("limit_rule", [LimitRule.MARKET, LimitRule.BAND])
def test_adl_covers_what_the_fund_cannot_under_market_and_band(engine_cls, limit_rule):
    # Defect 3 (issue #12): fund first, then ADL, whatever the limit rule. Owner 1 (A: long
    # 10 @ 100, collateral 100, bankruptcy 90) against owner 2 short 10 @ 100 (collateral
    # 1000); fund 10; bids 89 x 2 and 60 x 50; index 92 (A: E 20 < MM 46).
    # The fund-covered limit: budget = fund 10 + A's equity at 90 (100 + 900 - 1000 = 0) = 10,
    # 10 // (10 lots x k 1) = 1 tick below 90: 89 (tighter than BAND 40 %'s ceil(55.2) = 56).
    # IOC sell 10 @ 89 fills 2: R = 200, 178 - 200 = -22 -> collateral 78, C 800, q 8.
    # The 8 lots the rule would sell at 60 are ADL'd at 90 against owner 2 (U = 1000 - 920 > 0;
    # its cap max(92, 800 / 8 = 100) is above 90): owner 2 realises 800 - 720 = +80 -> 1080,
    # short 2 (C 200); A realises 720 - 800 = -80 -> collateral -2, flat: the fund pays 2 -> 8.
    # Before: the market order sold 8 @ 60, A's collateral -242, the fund -232 in bad debt
    # while owner 2 kept its profit.
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=limit_rule, band_ppm=400_000,
               deficit=Deficit.ADL, insurance_fund=10)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, 100)
    eng.add_account(2, 1000)
    eng.seed_position(1, 2, 100, 10)
    eng.limit(1, B, 89, 2, 101)
    eng.limit(2, B, 60, 50, 101)
    eng.set_index(92)
    records = rows(eng.liquidate())
    assert [(kind(r), r["filled"], r["avg_price"], r["counterparty"]) for r in records
            if kind(r) != "SHORTFALL"] == [("ORDER", 2, 89.0, NO_COUNTERPARTY),
                                           ("ADL", 8, 90.0, 2)]
    assert [(r["fund_cover"], r["bad_debt"]) for r in of_kind(records, "SHORTFALL")] == [(2, 0)]
    assert eng.insurance_fund == 8
    assert (eng.account(2).position, eng.account(2).cost, eng.account(2).collateral) == (
        -2, 200, 1080)
    assert (eng.account(1).position, eng.account(1).collateral) == (0, 0)
    assert eng.book.quantity_at(B, 60) == 50
    assert_conserved(eng, [1, 2, 101])


# =========================================================================== RESTORE (issue #12)


def _restore_case(engine_cls, fee_ppm, collateral, bids):
    # Owner 1: long 4 @ 100 (cost 400) with ``collateral``; index mark 100, so E = collateral and
    # MM(4 lots) = ceil(400 x 5 %) = 20, MM(3) = 15, MM(2) = 10, MM(1) = 5. LP 101 bids.
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, sizing=Sizing.RESTORE,
               liquidation_fee_ppm=fee_ppm)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, collateral)
    eng.seed_position(1, 100, 100, 4)
    for i, (price, qty) in enumerate(bids):
        eng.limit(10 + i, B, price, qty, 101)
    eng.set_index(100)
    return eng


def test_restore_with_a_fee_at_the_maintenance_rate_closes_in_one_order(engine_cls):
    # Defect 1 (issue #12): MM 5 %, fee 5 %, E = 19. Selling x lots at the mark costs nothing
    # but the fee 5 x: x = 1: 19 - 5 = 14 < MM(3) 15; x = 2: 19 - 10 = 9 < 10; x = 3: 4 < 5. No
    # x < 4 restores, so one order closes all 4: fee min(20, 19) = 19, collateral 0. (Sized
    # without the fee, it took four 1-lot orders, fees 5, 5, 5, 4, to the same end.)
    eng = _restore_case(engine_cls, 50_000, 19, [(100, 50)])
    records = rows(eng.liquidate())
    assert [(r["qty"], r["filled"], r["fee"]) for r in records] == [(4, 4, 19)]
    assert (eng.account(1).position, eng.account(1).collateral) == (0, 0)
    assert eng.insurance_fund == 19
    assert_conserved(eng, [1, 100, 101])


def test_restore_with_a_small_fee_restores_in_one_step(engine_cls):
    # Fee 1 %: x = 1 leaves 19 - 1 = 18 >= MM(3) 15: one lot, then the account leaves the queue.
    eng = _restore_case(engine_cls, 10_000, 19, [(100, 50)])
    records = rows(eng.liquidate())
    assert [(r["qty"], r["filled"], r["fee"]) for r in records] == [(1, 1, 1)]
    a = eng.account(1)
    assert (a.position, a.collateral, a.equity, a.maintenance_margin) == (3, 18, 18, 15)
    assert list(eng.queue()) == []


def test_restore_sizes_with_the_fee(engine_cls):
    # Fee 2 %, E = 16: x = 1 leaves 16 - 2 = 14 < 15 (sized without the fee, x = 1 and a second
    # step); x = 2 leaves 16 - 4 = 12 >= MM(2) 10: one order of 2 lots.
    eng = _restore_case(engine_cls, 20_000, 16, [(100, 50)])
    records = rows(eng.liquidate())
    assert [(r["qty"], r["filled"], r["fee"]) for r in records] == [(2, 2, 4)]
    a = eng.account(1)
    assert (a.position, a.collateral, a.equity, a.maintenance_margin) == (2, 12, 12, 10)
    assert list(eng.queue()) == []


def test_restore_sizes_with_the_books_execution_cost(engine_cls):
    # No fee, E = 15, bids only at 99: x = 1 fills 1 @ 99, 1 below the mark: 15 - 1 = 14 < 15
    # (sized at the mark, x = 1 and a second step); x = 2: 15 - 2 = 13 >= MM(2) 10. Selling
    # 2 @ 99: R = 200, 198 - 200 = -2 -> collateral 13, 2 lots, E = 13 at 100.
    eng = _restore_case(engine_cls, 0, 15, [(99, 50)])
    records = rows(eng.liquidate())
    assert [(r["qty"], r["filled"], r["avg_price"]) for r in records] == [(2, 2, 99.0)]
    a = eng.account(1)
    assert (a.position, a.collateral, a.equity) == (2, 13, 13)
    assert list(eng.queue()) == []


def test_restore_closes_everything_when_the_book_cannot_restore(engine_cls):
    # No fee, E = 15, 1 lot bid at 100 then 5 at 90: x = 1 fills at 100 (15 >= 15 restores).
    # With only the 90s: x = 1: 15 - 10 = 5 < 15; x = 2: -5; x = 3: -15: none, so all 4
    # lots go in one order: 4 @ 90, R = 400, 360 - 400 = -40 -> collateral -25 -> shortfall.
    eng = _restore_case(engine_cls, 0, 15, [(100, 1), (90, 5)])
    assert [(r["qty"], r["filled"]) for r in rows(eng.liquidate())] == [(1, 1)]
    eng = _restore_case(engine_cls, 0, 15, [(90, 5)])
    records = rows(eng.liquidate())
    assert [(kind(r), r["qty"], r["filled"]) for r in records] == [
        ("ORDER", 4, 4), ("SHORTFALL", 0, 0)]
    assert records[1]["bad_debt"] == 25


# ================================================= trigger and MM basis (issue #12 settings)


def _long_10_at_100(engine_cls, collateral, bid, mark, **kw):
    # Owner 1 long 10 @ 100 with ``collateral`` against LP 100, LP 101 bidding 50 lots at
    # ``bid``, an INDEX mark at ``mark``.
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, **kw)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, collateral)
    eng.seed_position(1, 100, 100, 10)
    eng.limit(1, B, bid, 50, 101)
    eng.set_index(mark)
    return eng

@pytest.mark.parametrize("trigger,basis,lots", [
    (Trigger.BELOW, MarginBasis.MARK, 1),
    (Trigger.AT_OR_BELOW, MarginBasis.MARK, 2),
    (Trigger.BELOW, MarginBasis.ENTRY, 2),
    (Trigger.AT_OR_BELOW, MarginBasis.ENTRY, 3),
])
def test_restore_uses_the_trigger_and_the_basis(engine_cls, trigger, basis, lots):
    # MM 10 %; long 10 @ 100 (cost 1000), coll 200; index mark 88: E = 80, liquidatable under
    # every setting (MARK: MM = 88; ENTRY: MM = 100). Bids at 88 (the mark): selling x lots
    # leaves E' = 80. MARK: MM(10 - x) = ceil(8.8 (10 - x)): x = 1 -> 80 (E' >= MM, not
    # E' > MM), x = 2 -> 71. ENTRY: the cost kept is 1000 - floor(1000 x / 10) = 1000 - 100 x,
    # MM = 100 - 10 x: x = 2 -> 80 (>= only), x = 3 -> 70.
    eng = _long_10_at_100(engine_cls, 200, 88, 88, tiers=[(None, 100_000, 200_000)],
                          sizing=Sizing.RESTORE, trigger=trigger, mm_basis=basis)
    records = rows(eng.liquidate())
    assert [(r["owner"], r["qty"], r["filled"]) for r in records] == [(1, lots, lots)]
    a = eng.account(1)
    assert (a.position, a.equity) == (10 - lots, 80)
    assert list(eng.queue()) == []
    assert_conserved(eng, [1, 100, 101])


@pytest.mark.parametrize("trigger,lots", [(Trigger.BELOW, 5), (Trigger.AT_OR_BELOW, 6)])
def test_restore_with_no_margin_needs_equity_above_zero_at_or_below(engine_cls, trigger, lots):
    # MM 0: long 10 @ 100, coll 0, mark 99: E = -10 (liquidatable either way). Bids at 101: each
    # lot sold adds 2 to the equity at 99, E'(x) = 2x - 10. BELOW needs E' >= 0: x = 5;
    # AT_OR_BELOW needs E' > 0: x = 6.
    eng = make(engine_cls, tiers=[(None, 0, 100_000)], mark_rule=MarkRule.INDEX,
               sizing=Sizing.RESTORE, trigger=trigger)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(101, 100_000, exempt=True)
    eng.add_account(1, 0)
    eng.seed_position(1, 100, 100, 10)
    eng.limit(1, B, 101, 50, 101)
    eng.set_index(99)
    records = rows(eng.liquidate())
    assert [(r["qty"], r["filled"]) for r in records] == [(lots, lots)]
    assert eng.account(1).equity == 2 * lots - 10
    assert list(eng.queue()) == []
    assert_conserved(eng, [1, 100, 101])


@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("basis,fund,takes", [
    (MarginBasis.ENTRY, 5, True), (MarginBasis.ENTRY, 4, False),
    (MarginBasis.MARK, 5, False), (MarginBasis.MARK, 7, True),
])
def test_fund_takeover_needs_equity_at_least_mm_on_the_basis(engine_cls, trigger, basis, fund,
                                                             takes):
    # BANKRUPTCY limit, no bids: long 10 @ 100 coll 100 (bp ceil(900 / 10) = 90) at mark 94 is
    # liquidatable under every setting (E = 40; MM 47 on the mark, 50 on the entry value). Its
    # IOC at 90 fills nothing; the fund would hold long 10 @ 90 (cost 900) with equity
    # fund + 940 - 900 at 94, against MM 45 on ENTRY, ceil(0.05 x 940) = 47 on MARK. It takes
    # them when equity >= MM under either trigger (the fund is never liquidated, so the check
    # is not the trigger): ENTRY 45 >= 45 takes, 44 does not; MARK 45 < 47 does not, 47 does.
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BANKRUPTCY,
               insurance_fund=fund, trigger=trigger, mm_basis=basis)
    eng.add_account(100, 100_000, exempt=True)
    eng.add_account(1, 100)
    eng.seed_position(1, 100, 100, 10)
    eng.set_index(94)
    records = rows(eng.liquidate())
    took = of_kind(records, "FUND_TAKEOVER")
    assert [(r["owner"], r["qty"]) for r in took] == ([(1, 10)] if takes else [])
    assert eng.account(1).position == (0 if takes else 10)


# =========================================================================== INCREMENTAL steps


def _step_engine(engine_cls, increment, **kw):
    """Owner 1 long 10 @ 100 with collateral 0 and MM 0 % at the INDEX mark 99: E = -10 < 0 =
    MM. LP 101 bids 50 lots at 101, above the mark: each lot sold there realises +1 and drops
    an unrealised -1, so x lots sold leave E(x) = 2x - 10 at 99 (docs/venues.md 7.4: Deribit
    closes small parts in the market until MM is below equity again)."""
    return _long_10_at_100(engine_cls, 0, 101, 99, tiers=[(None, 0, 100_000)],
                           sizing=Sizing.INCREMENTAL, increment=increment, **kw)


@pytest.mark.parametrize("increment, trigger, steps", [
    # floor(1 / 99) = 0 -> 1 lot a step. BELOW goes on while E(x) < 0: x = 5 leaves E = 0.
    (1, Trigger.BELOW, [1, 1, 1, 1, 1]),
    # AT_OR_BELOW goes on while E(x) <= 0: one more step, x = 6, E = 2.
    (1, Trigger.AT_OR_BELOW, [1, 1, 1, 1, 1, 1]),
    # floor(198 / 99) = 2 lots a step: E = -6, -2, then 2 >= 0 after the third.
    (198, Trigger.BELOW, [2, 2, 2]),
])
def test_incremental_steps_stop_when_the_account_is_out_of_liquidation(engine_cls, increment,
                                                                       trigger, steps):
    eng = _step_engine(engine_cls, increment, trigger=trigger)
    records = rows(eng.liquidate())
    # every step its own ORDER record, all in round 0, each at the mark it saw (99)
    assert [(kind(r), r["round"], r["qty"], r["filled"], r["mark_before"]) for r in records] == [
        ("ORDER", 0, q, q, 99) for q in steps]
    a = eng.account(1)
    assert (a.position, a.equity) == (10 - sum(steps), 2 * sum(steps) - 10)
    assert list(eng.queue()) == []
    assert_conserved(eng, [1, 100, 101])
    check_accounts(eng)


def test_incremental_round_cap_stops_the_steps(engine_cls):
    # 1-lot steps worth 99 each; a cap of 3 x 99 + 98 = 395 takes three (296, 197, 98 left) and
    # cuts the fourth to floor(98 / 99) = 0: E = -4, still queued. Round 1 has the cap afresh:
    # two steps take E to -2, then 0 >= 0.
    eng = _step_engine(engine_cls, 1, round_cap=395)
    records = rows(eng.liquidate())
    assert [(r["round"], r["qty"], r["filled"]) for r in records] == [
        (0, 1, 1), (0, 1, 1), (0, 1, 1), (1, 1, 1), (1, 1, 1)]
    assert (eng.account(1).position, eng.account(1).equity) == (5, 0)
    assert_conserved(eng, [1, 100, 101])
    check_accounts(eng)


def _falling_last_engine(engine_cls, sizing, **kw):
    """Victim A (long 10 @ 100, collateral 100; MM 5 %) under the LAST mark with a 1 % fee.
    LP 101 bids 94 x 2 and 92 x 8; LP 102 sells 1 into 94: mark 94, E = 40 < MM 47."""
    eng = make(engine_cls, sizing=sizing, liquidation_fee_ppm=10_000, **kw)
    _setup_lp(eng)
    victim_a(eng)
    _three_level_book(eng, [(94, 2), (92, 8)])
    assert eng.mark_price() == 94
    return eng


def test_incremental_steps_follow_a_falling_last_mark_past_what_restore_sizes(engine_cls):
    # RESTORE sizes once at the mark 94 from the book: x = 2 (1 @ 94, 1 @ 92, fee
    # ceil(1.86) = 2) leaves C = 100 - 6 - 8 - 2 = 84 and E = 84 + 8 x 94 - 800 = 36 < MM 38;
    # x = 3 (fee ceil(2.78) = 3) leaves C 75, E = 75 + 658 - 700 = 33 >= MM ceil(32.9) = 33.
    # Its order of 3 moves the LAST mark to 92, where E = 75 + 644 - 700 = 19 < MM 33.
    restore = _falling_last_engine(engine_cls, Sizing.RESTORE)
    restore.liquidation_round()
    assert [(r["qty"], r["filled"]) for r in rows(restore.forced_orders())] == [(3, 3)]
    assert restore.mark_price() == 92 and list(restore.queue()) == [1]
    # INCREMENTAL, increment 100: floor(100 / 94) = floor(100 / 92) = 1 lot a step, the mark
    # looked at before each, fee ceil(0.94) = ceil(0.92) = 1 a step:
    #   1 @ 94: C 93, q 9, E at 94 = 93 + 846 - 900 = 39 < MM 43
    #   1 @ 92 (sized at the mark 94 the first step left): C 84, q 8, the mark now 92:
    #     E = 84 + 736 - 800 = 20 < MM 37
    #   1 @ 92: C 75, q 7, E 19 < 33;  C 66, q 6, E 18 < 28;  C 57, q 5, E 17 < 23;
    #   C 48, q 4, E 16 < 19;  C 39, q 3, E = 39 + 276 - 300 = 15 >= MM ceil(13.8) = 14: done
    eng = _falling_last_engine(engine_cls, Sizing.INCREMENTAL, increment=100)
    eng.liquidation_round()
    records = rows(eng.forced_orders())
    assert [(r["round"], r["qty"], r["filled"], r["mark_before"], r["fee"]) for r in records] == [
        (0, 1, 1, 94, 1)] * 2 + [(0, 1, 1, 92, 1)] * 5
    a = eng.account(1)
    assert (a.position, a.collateral, a.equity) == (3, 39, 15)
    assert list(eng.queue()) == []
    assert eng.insurance_fund == 7
    assert_conserved(eng, [1, 100, 101, 102])
    check_accounts(eng)


def test_an_incremental_step_that_fills_nothing_stops_the_round(engine_cls):
    # BAND 2 %: a sell's limit is ceil(94 x 0.98) = 93. The first step sells 1 @ 94 (C 93, E 39
    # < MM 43); the second, at the mark 94, finds only bids at 92 below its limit and fills
    # nothing: the steps stop and A stays queued with 9 lots. The next round's first step
    # fills nothing either, so the run ends there.
    eng = _falling_last_engine(engine_cls, Sizing.INCREMENTAL, increment=100,
                               limit_rule=LimitRule.BAND, band_ppm=20_000)
    records = rows(eng.liquidate())
    assert [(r["round"], r["qty"], r["filled"]) for r in records] == [(0, 1, 1)]
    assert eng.account(1).position == 9 and list(eng.queue()) == [1]
    assert_conserved(eng, [1, 100, 101, 102])
    check_accounts(eng)


def test_incremental_needs_an_increment(engine_cls):
    with pytest.raises(ValueError, match="increment must be >= 1 quote units under "
                                         "Sizing.INCREMENTAL, got 0"):
        make(engine_cls, sizing=Sizing.INCREMENTAL)
    assert make(engine_cls, sizing=Sizing.INCREMENTAL, increment=1).increment == 1


# =========================================================================== record averages


@given(st.integers(-(2**127) + 1, 2**127 - 1), st.integers(1, 2**127 - 1))
def test_a_records_average_is_the_double_nearest_the_exact_quotient(num, den):
    # avg_price and slippage of records whose integers pass 53 bits (huge notional or k)
    assert _nearest_quotient(num, den) == float(Fraction(num, den))


@pytest.mark.parametrize("shift", [1, 2, 11, 64, 72])   # num stays < 2**127
@pytest.mark.parametrize("sticky", [-1, 0, 1])
def test_a_records_average_rounds_halfway_quotients_to_even(shift, sticky):
    for mantissa in (2**53 - 1, 2**53 - 2, 3 * 2**51 + 1, 2**52):
        num = (2 * mantissa + 1) * 2 ** (shift - 1) + sticky    # halfway between two doubles
        for sign in (1, -1):
            assert _nearest_quotient(sign * num, 2**shift) == float(Fraction(sign * num,
                                                                             2**shift))


def test_a_quotient_out_of_range_is_refused():
    with pytest.raises(ValueError, match="0 < den < 2\\*\\*127"):
        _nearest_quotient(1, 0)
    with pytest.raises(ValueError, match="0 < den < 2\\*\\*127"):
        _nearest_quotient(2**127, 1)
