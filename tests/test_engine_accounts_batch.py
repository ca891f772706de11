"""Accounts and positions in one call (Engine.add_accounts, seed_positions, liquidatable), both
engines: the same state as the calls one by one, checked as a whole before anything changes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderbook import EQUITY_DTYPE, POSITION_DTYPE, Engine, Instrument
from orderbook.reference_engine import Engine as ReferenceEngine
from orderbook.testing import check_accounts

HOUSE = 10**12
TIERS = [(None, 50_000, 100_000)]


def venue(engine_cls, **kw):
    """A venue with an exempt house and a first print at 1,000 ticks (marks known)."""
    kw.setdefault("tiers", TIERS)
    eng = engine_cls("1", "1", "1", **kw)
    eng.add_account(HOUSE, 10**15, exempt=True)
    eng.add_account(HOUSE + 1, 10**15, exempt=True)
    eng.limit(1, 1, 1_000, 5, HOUSE)
    eng.market(2, -1, 5, HOUSE + 1)
    return eng


def positions_read_one_by_one(eng, owners=None) -> list:
    """What Engine.positions should give, from account() owner by owner."""
    rows = []
    for owner in eng.owners() if owners is None else owners:
        info = eng.account(owner)
        for p in info.positions:
            liq = p.liquidation_price
            rows.append((owner, p.instrument, p.position, p.cost, p.notional,
                         0 if liq is None else liq, liq is not None, info.exempt))
    return rows


def state(eng) -> bytes:
    """Everything that matters about the venue's accounts, as bytes."""
    return pickle.dumps([eng.account(o) for o in eng.owners()])


accounts = st.lists(st.tuples(st.integers(0, 50_000), st.integers(-1, 1).filter(bool),
                              st.integers(900, 1_100), st.integers(1, 400)),
                    max_size=30)


@pytest.mark.parametrize("engine_name", ["compiled", "reference"])
@given(rows=accounts)
def test_one_call_is_the_calls_one_by_one(engine_name, rows):
    engine_cls = ReferenceEngine if engine_name == "reference" else Engine
    one, many = venue(engine_cls), venue(engine_cls)
    for n, (collateral, side, entry, size) in enumerate(rows):
        one.add_account(n, collateral)
        long, short = (n, HOUSE) if side > 0 else (HOUSE, n)
        one.seed_position(long, short, entry, size)
    owners = np.arange(len(rows), dtype=np.int64)
    many.add_accounts(owners, [r[0] for r in rows])
    side = np.array([r[1] for r in rows], dtype=np.int64)
    house = np.full(len(rows), HOUSE)
    many.seed_positions(np.where(side > 0, owners, house), np.where(side > 0, house, owners),
                        [r[2] for r in rows], [r[3] for r in rows])
    assert state(one) == state(many)
    expected = [one.account(n).equity < one.account(n).maintenance_margin
                for n in range(len(rows))]
    assert many.liquidatable(owners).tolist() == expected
    assert many.positions().tolist() == positions_read_one_by_one(many)
    check_accounts(many)


def test_exempt_flags_and_instruments(engine_cls):
    eng = engine_cls("1", "1", "1", instruments=[Instrument("A"), Instrument("B")])
    eng.add_accounts([1, 2, 3], [10**6, 10**6, 10**6], exempt=np.array([True, False, True]))
    assert [eng.account(o).exempt for o in (1, 2, 3)] == [True, False, True]
    eng.seed_positions([1, 2], [3, 3], [100, 200], [5, 7], instrument="B")
    assert [p.position for p in eng.account(3).positions] == [-12]
    assert eng.account(3).positions[0].instrument == 1
    assert eng.total_deposits == 3 * 10**6


@pytest.mark.parametrize("call, error, match", [
    (lambda e: e.add_accounts([5, 6, 5], [1, 1, 1]), ValueError, r"owners\[2\] = 5 is given twice"),
    (lambda e: e.add_accounts([7, HOUSE], [1, 1]), ValueError, r"owners\[1\] = .* already has"),
    (lambda e: e.add_accounts([7, -3], [1, 1]), ValueError, r"owners\[1\] = -3 must be >= 0"),
    (lambda e: e.add_accounts([7, 8], [1, -1]), ValueError, r"collateral\[1\] = -1 must be >= 0"),
    (lambda e: e.add_accounts([7, 8], [1]), ValueError, "collateral has 1 values, the owners 2"),
    (lambda e: e.add_accounts([7.0], [1]), TypeError, "owners must hold integers"),
    (lambda e: e.add_accounts([7], [True]), TypeError, "collateral must hold integers"),
    (lambda e: e.add_accounts([7], [2**62]), ValueError, "past 2\\*\\*62"),
    (lambda e: e.add_accounts([[7]], [1]), ValueError, "1-D"),
    (lambda e: e.add_accounts([7], [1], exempt=[1]), TypeError, "exempt must be a bool"),
    (lambda e: e.seed_positions([HOUSE, 9], [HOUSE + 1, HOUSE], [10, 10], [1, 1]), KeyError,
     r"long_owners\[1\] 9"),
    (lambda e: e.seed_positions([HOUSE], [HOUSE], [10], [1]), ValueError, "row 0: .*two different"),
    (lambda e: e.seed_positions([HOUSE], [-1], [10], [1]), ValueError, "insurance fund"),
    (lambda e: e.seed_positions([HOUSE, HOUSE], [HOUSE + 1, HOUSE + 1], [10, 0], [1, 1]),
     ValueError, r"prices\[1\] must be in \[1, max_price"),
    (lambda e: e.seed_positions([HOUSE], [HOUSE + 1], [10], [0]), ValueError, r"qtys\[0\]"),
    (lambda e: e.seed_positions([HOUSE, HOUSE], [HOUSE + 1, HOUSE + 1], [10, 10], [1, 1],
                                instrument=3), KeyError, "instrument"),
    (lambda e: e.liquidatable([HOUSE, 77]), KeyError, r"owners\[1\] 77"),
])
def test_bad_batches_are_refused_naming_the_entry_and_change_nothing(engine_cls, call, error,
                                                                      match):
    eng = venue(engine_cls)
    before = state(eng), eng.total_deposits
    with pytest.raises(error, match=match):
        call(eng)
    assert (state(eng), eng.total_deposits) == before


def test_positions_are_bounded_after_every_row_as_one_by_one(engine_cls):
    eng = venue(engine_cls, max_position=10)
    eng.add_accounts([1, 2], [10**6, 10**6])
    # 1 goes to +8 then back to +2: within the bound after every row
    eng.seed_positions([1, 2], [2, 1], [100, 100], [8, 6])
    assert eng.account(1).position == 2
    before = state(eng)
    # row 1 would take 1 to +12 although row 2 would bring it back
    with pytest.raises(ValueError, match="row 1: qty 10 would take owner 1's position past "
                                         "max_position 10"):
        eng.seed_positions([2, 1, 2], [1, 2, 1], [100, 100, 100], [1, 10, 9])
    assert state(eng) == before


def test_empty_batches_do_nothing(engine_cls):
    eng = venue(engine_cls)
    before = state(eng)
    eng.add_accounts([], [])
    eng.seed_positions([], [], [], [])
    assert eng.liquidatable([]).tolist() == []
    assert state(eng) == before


def test_equities_are_what_account_gives(engine_cls):
    eng = venue(engine_cls)
    eng.add_accounts([1, 2, 3], [5_000, 300, 10**6])
    eng.seed_positions([1, HOUSE, 3], [HOUSE, 2, HOUSE], [1_000, 1_100, 900], [40, 3, 7])
    table = eng.equities()
    assert table.dtype == EQUITY_DTYPE
    assert table["owner"].tolist() == eng.owners()
    for row in table:
        info = eng.account(int(row["owner"]))
        assert (row["collateral"], row["equity"], row["maintenance_margin"], row["exempt"]) == \
            (info.collateral, info.equity, info.maintenance_margin, info.exempt)
        assert row["lots"] == sum(abs(p.position) for p in info.positions)
    picked = eng.equities([3, 1])
    assert picked["owner"].tolist() == [3, 1] and picked["lots"].tolist() == [7, 40]
    assert len(eng.equities([])) == 0
    with pytest.raises(KeyError, match=r"owners\[1\] 99"):
        eng.equities([1, 99])


def test_positions_are_what_account_gives_on_every_instrument(engine_cls):
    eng = engine_cls("1", "1", "1", instruments=[Instrument("A"), Instrument("B")],
                     tiers=TIERS)
    eng.add_accounts([1, 2, 3, 4, HOUSE], [5_000, 300, 10**6, 0, 10**15],
                     exempt=np.array([False, False, False, False, True]))
    for instrument, price in (("A", 1_000), ("B", 50)):   # marks on both books
        eng.limit(1 if instrument == "A" else 3, 1, price, 1, HOUSE, instrument=instrument)
    eng.seed_positions([1, HOUSE, 3], [HOUSE, 2, HOUSE], [1_000, 1_100, 900], [40, 3, 7])
    eng.seed_positions([1, 3], [HOUSE, HOUSE], [50, 60], [9, 2], instrument="B")
    table = eng.positions()
    assert table.dtype == POSITION_DTYPE
    assert table.tolist() == positions_read_one_by_one(eng)
    # two legs for 1 and 3, one for 2, none for the flat 4, the exempt house's two
    assert table["owner"].tolist() == [1, 1, 2, 3, 3, HOUSE, HOUSE]
    assert table["has_liquidation_price"][table["exempt"]].tolist() == [False, False]
    assert eng.positions([3, 4]).tolist() == positions_read_one_by_one(eng, [3, 4])
    assert len(eng.positions([])) == 0
    before = state(eng)
    with pytest.raises(KeyError, match=r"owners\[1\] 99"):
        eng.positions([1, 99])
    assert state(eng) == before
