"""Specification tests of the Engine's public face (docs/liquidation.md): routing messages to
the book, the mark price rules, and the refusal of bad input.

Expected numbers are computed by hand; the conventions (k = 1, one 5 % / 10 % tier, the victim
"A") are in tests/engine_helpers.py. Every test runs on both engines (``engine_cls``). Copies,
pickles, bounds and threads are in test_engine_safety.py.
"""

from __future__ import annotations

import pickle

import pytest
from engine_helpers import (
    B,
    S,
    _index_engine,
    assert_conserved,
    make,
    old_state,
    rows,
    victim_a,
)

from orderbook.events import MarkRule

# =========================================================================== routing


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


def test_trades_from_a_start_read_only_what_is_new(engine_cls):
    eng = make(engine_cls)
    eng.add_account(1, 10_000)
    eng.add_account(101, 1_000_000, exempt=True)
    eng.limit(1, S, 100, 5, 101)
    eng.ioc(2, B, 100, 2, 1)
    eng.ioc(3, B, 100, 1, 1)
    every = eng.trades()
    assert len(every) == 2
    assert eng.trades(start=1).tobytes() == every[1:].tobytes()
    assert len(eng.trades(start=2)) == 0
    with pytest.raises(ValueError, match="start must be at most the trade count 2, got 3"):
        eng.trades(start=3)
    with pytest.raises(ValueError, match="start must be >= 0, got -1"):
        eng.trades(start=-1)
    with pytest.raises(TypeError, match="start must be an integer"):
        eng.trades(start=1.0)


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


def test_mark_last_clamped(engine_cls):
    eng = _lp_engine(engine_cls, mark_rule=MarkRule.LAST_CLAMPED)
    assert eng.mark_price() is None
    eng.limit(1, B, 99, 5, 101)
    eng.limit(2, S, 102, 5, 102)
    assert eng.mark_price() is None          # no trade yet: the touch alone makes no mark
    eng.market(3, B, 1, 101)                 # a trade at 102
    assert eng.mark_price() == 102           # median(102, 99, 102)
    eng.cancel(2)
    eng.limit(4, B, 105, 5, 101)
    assert eng.mark_price() == 102           # ask side empty: the last trade alone
    eng.limit(5, S, 108, 5, 102)
    assert eng.mark_price() == 105           # median(102, 105, 108): clamped up to the bid
    eng.cancel(4)
    assert eng.mark_price() == 102           # median(102, 99, 108)
    eng.cancel(1)
    assert eng.mark_price() == 102           # bid side empty: the last trade alone
    eng.limit(6, B, 107, 1, 101)
    eng.market(7, S, 1, 102)                 # a trade at 107 empties the bids again
    assert eng.mark_price() == 107
    eng.limit(8, S, 106, 1, 102)
    eng.limit(9, B, 100, 1, 101)
    assert eng.mark_price() == 106           # median(107, 100, 106): clamped down to the ask


def _a_over_bids_at_93(engine_cls, mark_rule):
    eng = make(engine_cls, mark_rule=mark_rule)
    eng.add_account(100, 10**6, exempt=True)
    eng.add_account(101, 10**6, exempt=True)
    victim_a(eng)                            # liquidation price 94
    eng.limit(1, B, 93, 50, 101)
    return eng


def test_a_last_clamped_mark_liquidates_at_the_touch(engine_cls):
    eng = _a_over_bids_at_93(engine_cls, MarkRule.LAST_CLAMPED)
    eng.limit(2, S, 120, 50, 100)
    eng.limit(3, B, 96, 1, 101)
    eng.market(4, S, 1, 100)                 # a trade at 96 leaves bid 93, ask 120
    assert eng.mark_price() == 96            # median(96, 93, 120): A is safe at 96
    assert len(eng.liquidate()) == 0
    eng.cancel(2)
    eng.limit(5, S, 94, 1, 100)              # ask 94: median(96, 93, 94) = 94
    assert eng.mark_price() == 94
    records = rows(eng.liquidate())
    # A crossed at 94: FULL market sell of 10 into the bids: 10 @ 93, PnL -70 -> collateral 30
    assert [(r["owner"], r["filled"], r["avg_price"], r["mark_before"]) for r in records] == [
        (1, 10, 93.0, 94)]
    assert eng.account(1).collateral == 30


def test_mark_fair(engine_cls):
    # BitMEX's fair price: index x (1 + funding basis), to the nearest tick, halves up.
    eng = _lp_engine(engine_cls, mark_rule=MarkRule.FAIR, max_price=1_000)
    assert eng.mark_price() is None and eng.funding_basis_ppm == 0
    eng.set_funding_basis(10_000)            # no index yet: no mark
    assert eng.mark_price() is None
    eng.set_index(150)
    assert eng.mark_price() == 152           # 150 x 1.01 = 151.5, half up
    eng.set_funding_basis(-10_000)
    assert eng.mark_price() == 149           # 148.5, half up
    eng.set_funding_basis(-3_334)
    assert eng.mark_price() == 149           # 149.4999: down
    eng.set_funding_basis(-3_333)
    assert eng.mark_price() == 150           # 149.50005: up
    eng.set_index(1)
    eng.set_funding_basis(-500_000)
    assert eng.mark_price() == 1             # 0.5, half up: never below a tick
    eng.limit(1, B, 99, 5, 101)
    eng.market(2, S, 1, 102)                 # trades and quotes do not move it
    assert eng.mark_price() == 1
    eng.set_index(400)
    for other in (pickle.loads(pickle.dumps(eng)), eng.copy()):
        assert (other.funding_basis_ppm, other.mark_price()) == (-500_000, 200)
        other.set_index(300)
        assert other.mark_price() == 150
    # a state saved before the funding basis existed loads with 0
    restore, (args, kwargs, state) = eng.__reduce__()
    state = old_state(state, 2)
    del state["funding_basis_ppm"]
    assert restore(args, kwargs, state).funding_basis_ppm == 0
    state["funding_basis_ppm"] = 500_001
    with pytest.raises(ValueError, match="corrupt Engine state: funding_basis_ppm"):
        restore(args, kwargs, state)


def test_fair_mark_refusals_change_nothing(engine_cls):
    eng = _lp_engine(engine_cls, mark_rule=MarkRule.FAIR, max_price=1_000)
    eng.set_index(800)
    eng.set_funding_basis(250_000)
    assert eng.mark_price() == 1_000         # exactly max_price
    with pytest.raises(ValueError, match="basis_ppm must be in"):
        eng.set_funding_basis(500_001)
    with pytest.raises(TypeError, match="basis_ppm"):
        eng.set_funding_basis(0.5)
    eng.set_funding_basis(250_624)           # 1000.4992: still 1000
    with pytest.raises(ValueError, match="fair price of index 800 and funding basis 250626 ppm"):
        eng.set_funding_basis(250_626)       # 1000.5008: 1001
    eng.set_funding_basis(250_000)
    assert (eng.funding_basis_ppm, eng.mark_price()) == (250_000, 1_000)
    with pytest.raises(ValueError, match="exceeds max_price 1000"):
        eng.set_index(801)                   # 1001.25
    assert eng.mark_price() == 1_000
    # under another rule the basis is kept but cannot refuse an index
    other = _lp_engine(engine_cls, mark_rule=MarkRule.INDEX, max_price=1_000)
    other.set_funding_basis(500_000)
    other.set_index(1_000)
    assert other.mark_price() == 1_000


def test_a_funding_basis_move_liquidates_under_fair(engine_cls):
    eng = _a_over_bids_at_93(engine_cls, MarkRule.FAIR)
    eng.set_index(100)
    assert eng.mark_price() == 100 and len(eng.liquidate()) == 0
    eng.set_funding_basis(-50_000)           # 100 x 0.95 = 95: still safe
    assert eng.mark_price() == 95 and len(eng.liquidate()) == 0
    eng.set_funding_basis(-60_000)           # 94: A crosses, sold into the bids at 93
    assert [(r["owner"], r["filled"], r["mark_before"]) for r in rows(eng.liquidate())] == [
        (1, 10, 94)]


def test_no_mark_nobody_liquidated(engine_cls):
    eng = _index_engine(engine_cls)
    eng.add_account(1, 0)                    # long 10 @ 100 with no collateral at all
    eng.seed_position(1, 100, 100, 10)
    assert eng.mark_price() is None
    assert len(rows(eng.liquidate())) == 0
    assert list(eng.queue()) == []
    assert eng.account(1).position == 10


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
                                  "fraction_ppm", "band_ppm", "backstop_discount_ppm",
                                  "takeover_below_ppm"])
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


# =========================================================================== initial margin
# docs/liquidation.md, "Initial margin". One tier: IM = ceil(10 % of N) (at most 10x), k = 1.
# W = q + s (O_s + x) is the worst-case position; an order passes when it reduces (|W| <= |q|,
# W of q's sign or 0) or when IM(V(P, |W|)) + open loss <= equity at the mark.


def _im_engine(engine_cls, collateral, mark=100, **kw):
    """Trader 1 with ``collateral``; exempt LPs 100 (asks 110 x 100, bids 90 x 100) and 101;
    with ``mark``, one trade between the LPs at it makes the (LAST) mark."""
    eng = make(engine_cls, **kw)
    eng.add_account(1, collateral)
    eng.add_account(100, 10**6, exempt=True)
    eng.add_account(101, 10**6, exempt=True)
    if mark is not None:
        eng.limit(900, S, mark, 1, 100)
        eng.market(901, B, 1, 101)
    eng.limit(902, S, 110, 100, 100)
    eng.limit(903, B, 90, 100, 100)
    return eng


def _state(eng):
    """What a refused order must not change."""
    return ([tuple(eng.account(o)) for o in eng.owners()], eng.book.l3().tolist(),
            eng.book.stops().tolist(), len(eng.trades()), eng.mark_price(), eng.fees_collected)


def _refused(eng, method, *args, match=None):
    from orderbook import OrderError, Reason

    before = _state(eng)
    with pytest.raises(OrderError, match=match) as info:
        getattr(eng, method)(*args)
    assert info.value.reason == Reason.INSUFFICIENT_MARGIN
    assert _state(eng) == before


def test_issue_case_market_buy_at_1000x_refused(engine_cls):
    # Issue #12 defect 5: collateral 10, the tier's maximum 10x, market buy 100 lots at 100.
    # W = 100; the book fills 100 lots at 100 (the last level), no mark: P = m = 100;
    # IM = ceil(10 % x 100 x 100) = 1000 > equity 10.
    eng = make(engine_cls)
    eng.add_account(1, 10)
    eng.add_account(100, 10**6, exempt=True)
    eng.limit(900, S, 100, 100, 100)                     # event seq 0, message 0
    _refused(eng, "market", 1, B, 100, 1,
             match=r"owner 1's equity 10 does not cover the order's initial margin 1000 plus "
                   r"open loss 0")
    assert eng.book.n_orders == 1 and eng.account(1).position == 0
    out = eng.limit(2, B, 50, 1, 1)                      # IM ceil(10 % x 50) = 5 <= 10
    assert (out[0].seq, out[0].msg) == (1, 1)            # the refusal used no number


def test_issue_case_accepted_with_the_check_off(engine_cls):
    eng = make(engine_cls, check_initial_margin=False)
    assert eng.check_initial_margin is False
    eng.add_account(1, 10)
    eng.add_account(100, 10**6, exempt=True)
    eng.limit(900, S, 100, 100, 100)
    eng.market(1, B, 100, 1)
    a = eng.account(1)
    assert (a.position, a.cost, a.collateral) == (100, 10_000, 10)
    assert a.initial_margin == 1000                      # reported, not enforced


def test_reducing_order_accepted_with_zero_equity(engine_cls):
    # Long 10 @ 100 with collateral 0: equity 0 at the mark 100.
    eng = _im_engine(engine_cls, 0)
    eng.seed_position(1, 100, 100, 10)
    assert eng.account(1).equity == 0
    # Selling 11 flips to W = -1: not reducing. P = max(bids reached: 90, mark 100) = 100,
    # IM = ceil(10 % x 100) = 10 > 0.
    _refused(eng, "market", 1, S, 11, 1)
    eng.market(2, S, 10, 1)                              # W = 0: reducing, fills 10 @ 90
    a = eng.account(1)
    assert (a.position, a.collateral) == (0, 900 - 1000)


def test_resting_orders_count_toward_the_worst_position(engine_cls):
    # Collateral 200, flat, mark 100. Buy 10 @ 100: W = 10, IM ceil(10 % x 1000) = 100.
    # Buy 11 @ 99 alone: W = 11, P = max(99, 100) = 100, IM 110. Both: W = 21, IM 210 > 200.
    eng = _im_engine(engine_cls, 200)
    eng.limit(1, B, 100, 10, 1)
    _refused(eng, "limit", 2, B, 99, 11, 1)
    eng.cancel(1)
    eng.limit(2, B, 99, 11, 1)
    # A stop counts too: a buy stop-market of 9 lots at stop 95 with 11 resting: W = 20,
    # P = max(asks reached: 110, stop 95, mark 100) = 110, IM ceil(10 % x 20 x 110) = 220.
    _refused(eng, "stop_market", 3, B, 95, 9, 1)


def test_stop_market_priced_at_its_stop(engine_cls):
    # Collateral 100, mark 100, asks 110. Buy stop-market at 120: it fills only after a trade
    # at 120, so P = max(110, 120, 100) = 120. 9 lots: IM ceil(10 % x 9 x 120) = 108 > 100;
    # 8 lots: 96.
    eng = _im_engine(engine_cls, 100)
    _refused(eng, "stop_market", 1, B, 120, 9, 1)
    eng.stop_market(1, B, 120, 8, 1)


def test_open_loss_counts(engine_cls):
    # Collateral 70, mark 100. Buy 5 @ 104 (rests below the asks at 110): P = 104,
    # IM ceil(10 % x 520) = 52, open loss 5 x (104 - 100) = 20; 72 > 70.
    eng = _im_engine(engine_cls, 70)
    _refused(eng, "limit", 1, B, 104, 5, 1,
             match="initial margin 52 plus open loss 20")
    # Sell 5 @ 96 (rests above the bids at 90): P = max(96, 100) = 100, IM 50, open loss
    # 5 x (100 - 96) = 20; 70 <= 70, accepted at the boundary.
    eng.limit(2, S, 96, 5, 1)
    assert 2 in eng.book


def test_amend_that_raises_qty_refused(engine_cls):
    # Collateral 100, mark 100. Buy 5 @ 100: IM 50. Amend to 11: the other open lots 5 - 5 = 0,
    # W = 11, IM 110 > 100: refused, the order stays 5 @ 100. To 10: IM 100 <= 100.
    eng = _im_engine(engine_cls, 100)
    eng.limit(1, B, 100, 5, 1)
    _refused(eng, "amend", 1, 100, 11)
    assert eng.book.order(1).qty == 5
    eng.amend(1, 100, 10)
    # Moving the price is checked too: 10 @ 101 needs ceil(10 % x 1010) = 101 + loss 10 > 100.
    _refused(eng, "amend", 1, 101, 10)
    eng.amend(1, 100, 3)                                 # smaller, same price: no check needed
    assert eng.book.order(1).qty == 3


def test_exempt_seeded_and_forced_unaffected(engine_cls):
    from orderbook.events import ForcedKind

    eng = _im_engine(engine_cls, 10)
    eng.seed_position(1, 100, 100, 10)                   # seeds are not orders: 10 lots on 10
    assert eng.account(1).position == 10
    eng.add_account(102, 0, exempt=True)
    eng.market(1, S, 50, 102)                            # exempt: short 50 on no collateral
    assert eng.account(102).position == -50              # 50 @ 90: the mark is 90
    # Trader 1 (E = 10 - 100 < MM at 90) is liquidated by a forced sell into the other 50 lots
    # bid at 90: the forced order is not checked (and would reduce anyway).
    records = rows(eng.liquidate())
    assert [(r["owner"], r["kind"], r["filled"]) for r in records][:1] == [
        (1, ForcedKind.ORDER, 10)]
    assert eng.account(1).position == 0


def test_check_initial_margin_setting(engine_cls):
    import copy
    import pickle

    eng = make(engine_cls, check_initial_margin=False)
    for other in (eng.copy(), copy.deepcopy(eng), pickle.loads(pickle.dumps(eng))):
        assert other.check_initial_margin is False
    assert make(engine_cls).check_initial_margin is True
    for bad in (1, None, "yes"):
        with pytest.raises(TypeError, match="check_initial_margin"):
            make(engine_cls, check_initial_margin=bad)
    # A pickle made before the setting existed has no such keyword: it loads with the check on.
    restore, (args, kwargs, state) = eng.__reduce__()
    del kwargs["check_initial_margin"]
    assert restore(args, kwargs, state).check_initial_margin is True


@pytest.mark.parametrize("name, value, bad", [
    ("fraction_above", 100_000, [(-1, ValueError), (2**62 + 1, ValueError), (1.5, TypeError),
                                 ("1", TypeError), (None, TypeError)]),
    ("takeover_below_ppm", 666_667, [(-1, ValueError), (10**6 + 1, ValueError),
                                     (0.5, TypeError), (None, TypeError)]),
    ("cooldown_rounds", 3, [(-1, ValueError), (2**63, ValueError), (1.0, TypeError),
                            (None, TypeError)]),
    ("cooldown_ms", 30_000, [(-1, ValueError), (2**63, ValueError), (1.0, TypeError),
                             ("1", TypeError), (None, TypeError)]),
    ("increment", 2_000, [(-1, ValueError), (2**62 + 1, ValueError), (1.5, TypeError),
                          (None, TypeError)]),
])
def test_venue_liquidation_settings_are_checked_copied_and_pickled(engine_cls, name, value, bad):
    import copy
    import pickle

    eng = make(engine_cls, **{name: value})
    assert getattr(eng, name) == value and getattr(make(engine_cls), name) == 0
    for other in (eng.copy(), copy.deepcopy(eng), pickle.loads(pickle.dumps(eng))):
        assert getattr(other, name) == value
    for arg, error in bad:
        with pytest.raises(error, match=name):
            make(engine_cls, **{name: arg})
    # A pickle made before the setting existed has no such keyword: it loads with 0 (off).
    restore, (args, kwargs, state) = eng.__reduce__()
    del kwargs[name]
    assert getattr(restore(args, kwargs, state), name) == 0
