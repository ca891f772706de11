"""Specification tests of the Engine's public face (docs/liquidation.md): routing messages to
the book, the mark price rules, and the refusal of bad input.

Expected numbers are computed by hand; the conventions (k = 1, one 5 % / 10 % tier, the victim
"A") are in tests/engine_helpers.py. Every test runs on both engines (``engine_cls``). Copies,
pickles, bounds and threads are in test_engine_safety.py.
"""

from __future__ import annotations

import pytest
from engine_helpers import B, S, _index_engine, assert_conserved, make, rows, victim_a

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
