"""Compiled-only checks of the several-instrument venue (issue #13 step 1): bad input changes
nothing, records name their instrument, copies are independent. The behaviour both engines
share is tests/test_instruments.py's."""

import pytest

from orderbook import Engine, Side
from orderbook.events import Instrument

TIERS = [(None, 50_000, 100_000)]   # 5 % maintenance, 10 % initial


def two_longs():
    # Owner 1: 1,000 of collateral, long 1 lot at 10,000 in A and in B; 2 is the exempt seller.
    eng = Engine(instruments=[Instrument("A"), Instrument("B")], tiers=TIERS)
    eng.add_account(1, 1_000)
    eng.add_account(2, 10**9, exempt=True)
    eng.add_account(3, 10**6)
    eng.seed_position(1, 2, 10_000, 1)
    eng.seed_position(1, 2, 10_000, 1, instrument="B")
    return eng


def test_an_isolated_seed_in_a_second_instrument_is_refused_and_changes_nothing():
    eng = two_longs()
    eng.add_account(9, 100, isolated_margin=50)
    eng.seed_position(9, 2, 10_000, 1)
    before = ([tuple(eng.account(o)) for o in eng.owners()], eng.total_deposits)
    with pytest.raises(ValueError, match="'B' needs an account of its own"):
        eng.seed_position(2, 9, 10_000, 1, instrument="B")
    assert ([tuple(eng.account(o)) for o in eng.owners()], eng.total_deposits) == before


def test_an_unknown_instrument_is_a_key_error_naming_it():
    eng = two_longs()
    with pytest.raises(KeyError, match="instrument 'C'"):
        eng.limit(1, Side.BUY, 9_000, 1, 2, instrument="C")
    with pytest.raises(KeyError, match="instrument 2"):
        eng.mark_price(instrument=2)
    assert len(eng.books[0].l3()) == 0 and len(eng.books[1].l3()) == 0


def test_total_equity_needs_one_mark_per_instrument():
    eng = two_longs()
    with pytest.raises(ValueError, match="mark"):
        eng.total_equity(9_000)
    # At 9,400 and 9,900 the longs lose 600 + 100 against the seller's gain: the sum is kept.
    assert eng.total_equity([9_400, 9_900]) == eng.total_equity() == 10**9 + 10**6 + 1_000


def test_both_positions_close_and_each_record_names_its_instrument():
    eng = two_longs()
    eng.limit(1, Side.BUY, 9_400, 5, 2)
    eng.limit(1, Side.BUY, 9_900, 5, 2, instrument=1)
    eng.market(2, Side.SELL, 1, 3)                  # A's mark: 9,400
    eng.market(2, Side.SELL, 1, 3, instrument=1)    # B's mark: 9,900
    # E = 1,000 - 600 - 100 = 300 < MM = 470 + 495: both sold into the bids, A first.
    records = eng.liquidate()
    assert records[["owner", "filled", "avg_price", "instrument"]].tolist() == [
        (1, 1, 9_400.0, 0), (1, 1, 9_900.0, 1)]
    info = eng.account(1)
    assert (info.collateral, info.positions) == (1_000 - 600 - 100, ())


def test_a_copy_is_independent_of_its_original():
    eng = two_longs()
    other = eng.copy()
    other.limit(1, Side.BUY, 9_000, 1, 2, instrument="B")
    assert len(eng.books[1].l3()) == 0 and len(other.books[1].l3()) == 1
    assert other.account(1) == eng.account(1)
