"""The crossing check of accounts holding several positions (docs/market_wide.md section 3).

The compiled engine finds them through per-instrument allowance indexes; the reference evaluates
every account. Both must name the same crossed accounts, so every case runs on both engines.
The cases put an account exactly at the end of its allowances, where one more tick either
crosses it or only has it evaluated again.

Conventions: k = 1 (tick = lot = 1), INDEX marks moved with set_index, one exempt LP (100) on
the other side of every seeded position, and empty books: a crossed account's forced order
fills nothing, so it stays in the queue and ``crossed`` reads the round's crossed set there.
Allowances (ticks): S = E - MM, budget B = S (BELOW) or S - 1 (AT_OR_BELOW),
L = |q| (a long, or on the ENTRY basis) or |q| + ceil(|q| r_max / 10**6) (a short),
w = the mark, A_i = floor(B w_i / sum_j L_j w_j); a long's key is m - A, a short's m + A,
and only a mark strictly past the key has the account evaluated again.
"""

from __future__ import annotations

import random

import pytest

from orderbook.events import Asset, Instrument, MarginBasis, MarkRule, Settlement, Trigger
from orderbook.reference_engine import Engine as ReferenceEngine

LP = 100
A, B, C = 0, 1, 2
NO_MM = [(None, 0, 100_000)]                            # MM = 0: a long's E - MM falls |q|/tick
FIVE = [(None, 50_000, 100_000)]                        # MM = ceil(5% of N)
TEN = [(None, 100_000, 200_000)]                        # MM = ceil(10% of N)
TIERED = [(500, 50_000, 100_000), (None, 100_000, 200_000)]   # above 500: ceil(N / 10 - 25)


def venue(engine_cls, tiers, n=2, marks=(100, 100), **kw):
    eng = engine_cls(tiers=tiers, mark_rule=MarkRule.INDEX,
                     instruments=[Instrument(name) for name in "ABCDE"[:n]], **kw)
    eng.add_account(LP, 10**12, exempt=True)
    for i, mark in enumerate(marks):
        if mark is not None:
            eng.set_index(mark, instrument=i)
    return eng


def holding(eng, owner, collateral, *positions):
    """An account with ``positions`` of (instrument, signed lots, entry price)."""
    eng.add_account(owner, collateral)
    for instrument, lots, price in positions:
        if lots > 0:
            eng.seed_position(owner, LP, price, lots, instrument=instrument)
        else:
            eng.seed_position(LP, owner, price, -lots, instrument=instrument)


def move(eng, **marks):
    for name, mark in marks.items():
        eng.set_index(mark, instrument="ABCDE".index(name))


def crossed(eng):
    eng.liquidation_round()
    return sorted(eng.queue())


# ------------------------------------------------------------------------- longs, tight


def two_longs(engine_cls, collateral, **kw):
    """Long 10 A @ 100 and 10 B @ 100, MM = 0. At marks 100/100: E = collateral, MM = 0,
    L = 10 each, w = 100 each, sum L w = 2,000."""
    eng = venue(engine_cls, NO_MM, **kw)
    holding(eng, 1, collateral, (A, 10, 100), (B, 10, 100))
    return eng


def test_longs_at_the_end_of_their_allowances_are_safe_and_one_tick_more_crosses(engine_cls):
    # S = B = 200: A = floor(200 * 100 / 2,000) = 10 each, keys 90 and 90. At 90/90:
    # E = 200 - 100 - 100 = 0, not < 0; one tick more on A: E = -10 < 0.
    eng = two_longs(engine_cls, 200)
    move(eng, A=90, B=90)
    assert crossed(eng) == []
    move(eng, A=89)
    assert crossed(eng) == [1]


def test_a_popped_account_that_is_safe_gets_fresh_allowances_that_still_catch_it(engine_cls):
    # Keys 90/90 (above). A to 89 passes A's key: E = 200 - 110 = 90, safe. Evaluated again at
    # 89/100: S = 90, sum L w = 890 + 1,000 = 1,890, A_A = floor(90 * 89 / 1,890) = 4 (key 85),
    # A_B = floor(9,000 / 1,890) = 4 (key 96). A to 80 passes 85: E = 200 - 200 = 0, safe;
    # S = 0, so both allowances are 0 (keys 80 and 100). B to 99: E = -10, crossed.
    eng = two_longs(engine_cls, 200)
    move(eng, A=89)
    assert crossed(eng) == []
    move(eng, A=80)
    assert crossed(eng) == []
    move(eng, B=99)
    assert crossed(eng) == [1]


def test_at_or_below_takes_one_unit_off_the_budget(engine_cls):
    # AT_OR_BELOW: B = S - 1. Collateral 201: B = 200, keys 90/90; at 90/90 E = 1 > 0 (safe),
    # A to 89: E = -9 <= 0. Collateral 200: B = 199, A = floor(19,900 / 2,000) = 9 (keys 91):
    # at 90/90 E = 0 <= 0 crosses, found because 90 passed both keys.
    eng = two_longs(engine_cls, 201, trigger=Trigger.AT_OR_BELOW)
    move(eng, A=90, B=90)
    assert crossed(eng) == []
    move(eng, A=89)
    assert crossed(eng) == [1]
    eng = two_longs(engine_cls, 200, trigger=Trigger.AT_OR_BELOW)
    move(eng, A=90, B=90)
    assert crossed(eng) == [1]


def test_a_winning_move_is_free_and_a_losing_one_after_it_is_still_caught(engine_cls):
    # MM 5%: a long's E - MM rises with its mark (E by 10 a tick, MM by at most 1). Long 10 A and
    # 10 B @ 100, collateral 120: at 100/100 E = 120, MM = 100, S = 20, L = 10 each,
    # A = floor(20 * 100 / 2,000) = 1 (keys 99/99). A to 200 (no key on a long's upper side):
    # E = 1,120, MM = 150. B to 10 passes B's key: E = 220, MM = 100 + 5 = 105, safe, fresh
    # allowances. B to 1: E = 130, MM = 101, safe. A back to 100: E = 120 - 990 = -870 < 51.
    eng = venue(engine_cls, FIVE)
    holding(eng, 1, 120, (A, 10, 100), (B, 10, 100))
    move(eng, A=200)
    assert crossed(eng) == []
    move(eng, B=10)
    assert crossed(eng) == []
    move(eng, B=1)
    assert crossed(eng) == []
    move(eng, A=100)
    assert crossed(eng) == [1]


# ------------------------------------------------------------------------ shorts, tiered MM


def two_shorts(engine_cls, collateral, **kw):
    """Short 10 A @ 100 and 10 B @ 100 (cost 1,000 each) on TIERED: N = 1,000 is in the second
    tier, MM = ceil(1,000 / 10 - 25) = 75 each. L = 10 + ceil(10 * 100,000 / 10**6) = 11 each,
    exact there: a tick up costs 10 of E and 1 of MM. Sum L w = 2 * 11 * 100 = 2,200."""
    eng = venue(engine_cls, TIERED, **kw)
    holding(eng, 1, collateral, (A, -10, 100), (B, -10, 100))
    return eng


def test_shorts_with_tiered_mm_at_the_end_of_their_allowances(engine_cls):
    # Collateral 370: S = 370 - 150 = 220, A = floor(220 * 100 / 2,200) = 10 each, keys 110.
    # At 110/110: E = 370 - 100 - 100 = 170, MM = 2 * ceil(110 - 25) = 170: not E < MM.
    # A to 111: E = 160, MM = 86 + 85 = 171: crossed.
    eng = two_shorts(engine_cls, 370)
    move(eng, A=110, B=110)
    assert crossed(eng) == []
    move(eng, A=111)
    assert crossed(eng) == [1]


def test_shorts_with_tiered_mm_at_or_below(engine_cls):
    # Collateral 371: B = 221 - 1 = 220, keys 110. At 110/110: E = 171 > 170; A to 111:
    # E = 161 <= 171.
    eng = two_shorts(engine_cls, 371, trigger=Trigger.AT_OR_BELOW)
    move(eng, A=110, B=110)
    assert crossed(eng) == []
    move(eng, A=111)
    assert crossed(eng) == [1]


def test_a_short_crossing_from_the_low_tier_into_the_high_one(engine_cls):
    # Short 4 A @ 100 (N = 400, first tier: MM = 20) and short 10 B @ 100 (MM 75), collateral
    # 200: S = 105. L_A = 4 + ceil(0.4) = 5, L_B = 11; sum L w = 500 + 1,100 = 1,600;
    # A_A = floor(105 * 100 / 1,600) = 6 (key 106), A_B = 6 (key 106). A to 130: E = 200 - 120
    # = 80, MM = ceil(520 / 10 - 25) = 27 + 75 = 102: crossed (E < MM).
    eng = venue(engine_cls, TIERED)
    holding(eng, 1, 200, (A, -4, 100), (B, -10, 100))
    move(eng, A=106, B=106)
    # E = 200 - 24 - 60 = 116, MM = ceil(424 * 5%) = 22 (first tier) + ceil(106 - 25) = 81:
    # 103, safe.
    assert crossed(eng) == []
    move(eng, A=130)
    assert crossed(eng) == [1]


# ------------------------------------------------------------------------------ ENTRY basis


def test_entry_basis_allowances_do_not_count_the_margin(engine_cls):
    # ENTRY, MM 10% of cost: short 10 A @ 100 and long 10 B @ 100, MM = 100 + 100 = 200 at any
    # mark. Collateral 400: S = 200, L = 10 each (MM fixed), A = floor(200 * 100 / 2,000) = 10:
    # keys A (short) 110, B (long) 90. At 110/90: E = 400 - 100 - 100 = 200, not < 200;
    # A to 111: E = 190 < 200.
    eng = venue(engine_cls, TEN, mm_basis=MarginBasis.ENTRY)
    holding(eng, 1, 400, (A, -10, 100), (B, 10, 100))
    move(eng, A=110, B=90)
    assert crossed(eng) == []
    move(eng, A=111)
    assert crossed(eng) == [1]


# ------------------------------------------------------------------- instruments with no mark


def test_an_account_in_an_instrument_with_no_mark_waits_for_it(engine_cls):
    # B has no mark: the account (long 10 A, long 10 B @ 100, collateral 100, MM 5%) cannot be
    # liquidatable however far A falls. B's first mark, 100: E = 100 - 500 = -400 < 25 + 50.
    eng = venue(engine_cls, FIVE, marks=(100, None))
    holding(eng, 1, 100, (A, 10, 100), (B, 10, 100))
    move(eng, A=50)
    assert crossed(eng) == []
    move(eng, B=100)
    assert crossed(eng) == [1]


def test_an_account_waiting_for_a_mark_is_given_allowances_when_it_comes(engine_cls):
    # Two longs, MM 0, collateral 200 (two_longs), B unmarked at first: B's first mark, 100,
    # finds it safe (E = 200) and gives it keys 90/90 (A is at 100); A to 89 with B to 90 then
    # crosses (E = 200 - 110 - 100 = -10).
    eng = venue(engine_cls, NO_MM, marks=(100, None))
    holding(eng, 1, 200, (A, 10, 100), (B, 10, 100))
    assert crossed(eng) == []
    move(eng, B=100)
    assert crossed(eng) == []
    move(eng, A=89, B=90)
    assert crossed(eng) == [1]


# ---------------------------------------------------------------------- money moves the keys


def test_a_deposit_renews_the_allowances(engine_cls):
    # Keys 90/90 for collateral 200 (two_longs). A deposit of 100 makes S = 300 at 100/100:
    # A = 15 each, keys 85. At 85/85: E = 300 - 150 - 150 = 0, safe; A to 84: E = -10, crossed.
    eng = two_longs(engine_cls, 200)
    eng.deposit(1, 100)
    move(eng, A=85, B=85)
    assert crossed(eng) == []
    move(eng, A=84)
    assert crossed(eng) == [1]


def test_an_account_that_recovers_leaves_the_queue_and_is_caught_again(engine_cls):
    # Two longs at collateral 200: 89/90 crosses (E = -10); back to 100/100 (E = 200) it leaves
    # the queue when served; 89/90 again crosses again.
    eng = two_longs(engine_cls, 200)
    move(eng, A=89, B=90)
    assert crossed(eng) == [1]
    move(eng, A=100, B=100)
    assert crossed(eng) == []
    move(eng, A=89, B=90)
    assert crossed(eng) == [1]


# ------------------------------------------------------------------------- collateral assets


def test_a_collateral_asset_has_an_allowance_of_its_own(engine_cls):
    # Asset XB (unit 1) valued at B's mark, no haircut: b units count b m_B. Account 1: no
    # quote collateral, long 10 A @ 100 and 10 XB. At 100/100: E = 1,000 + 10 (m_A - 100), MM
    # = 0, S = 1,000; L = 10 for the position and ceil(10 x 1) = 10 for the asset, w = 100
    # each: A = floor(1,000 x 100 / 2,000) = 50 each, keys 50 (A) and 50 (XB's, on B).
    eng = venue(engine_cls, NO_MM, assets=[Asset("XB", "1", "B")])
    holding(eng, 1, 0, (A, 10, 100))
    eng.deposit(1, 10, asset="XB")
    move(eng, A=50, B=50)   # E = 500 - 500 = 0, not < 0
    assert crossed(eng) == []
    move(eng, B=49)          # E = 490 - 500 = -10
    assert crossed(eng) == [1]


def test_the_asset_alone_moving_crosses_an_account_without_a_position_there(engine_cls):
    # Account 1: long 10 A @ 100 and 5 XB (value 5 m_B), MM = ceil(5% of 10 m_A) = 50 at 100.
    # A never moves: E = 5 m_B >= 50 down to m_B = 10; at 9, 45 < 50.
    eng = venue(engine_cls, FIVE, assets=[Asset("XB", "1", "B")])
    holding(eng, 1, 0, (A, 10, 100))
    eng.deposit(1, 5, asset="XB")
    for mark in (60, 20, 10):
        move(eng, B=mark)
        assert crossed(eng) == [], mark
    move(eng, B=9)
    assert crossed(eng) == [1]


# --------------------------------------------------------------- randomized, against the spec


def random_population(rng, engine_cls, spec):
    eng = venue(engine_cls, spec["tiers"], n=spec["instruments"], marks=spec["marks"],
                trigger=spec["trigger"], mm_basis=spec["basis"],
                assets=spec.get("assets"), **spec.get("settlement", {}))
    for owner, collateral, positions in spec["accounts"]:
        holding(eng, owner, collateral, *positions)
    for owner, asset, units in spec.get("holdings", ()):
        eng.deposit(owner, units, asset=asset)
    return eng


def random_spec(rng):
    n = rng.randint(2, 4)
    tiers = rng.choice([FIVE, TEN, TIERED, NO_MM,
                        [(300, 20_000, 50_000), (2_000, 60_000, 120_000),
                         (None, 150_000, 300_000)]])
    marks = tuple(rng.choice([100, 100, 100, None]) for _ in range(n))
    accounts = []
    for owner in range(1, 41):
        held = rng.sample(range(n), min(n, rng.choice([1, 2, 2, 3, 4])))
        positions = []
        notional = 0
        for i in held:
            lots = rng.randint(1, 20) * rng.choice([1, -1])
            price = rng.randint(90, 110)
            positions.append((i, lots, price))
            notional += abs(lots) * price
        # Buffers of a few percent of the notional: marks moving by a few ticks cross some.
        accounts.append((owner, notional * rng.randint(5, 25) // 100 + rng.randint(0, 50),
                         positions))
    return {"instruments": n, "tiers": tiers, "marks": marks, "accounts": accounts,
            "trigger": rng.choice(list(Trigger)), "basis": rng.choice(list(MarginBasis))}


def random_assets(rng, spec):
    """Collateral assets (unit 0.1: b units count floor(b m (1 - haircut) / 10)) valued at one
    or two of the instruments, and holdings of them for about half the accounts: some hold a
    position in the instrument that values their asset, some not."""
    n = spec["instruments"]
    valued = rng.sample(range(n), rng.choice([1, 2]))
    spec["assets"] = [Asset(f"X{i}", "0.1", i, haircut_ppm=rng.choice([0, 100_000, 250_000]))
                      for i in valued]
    spec["holdings"], accounts = [], []
    for owner, collateral, positions in spec["accounts"]:
        roll = rng.random()
        if roll < 0.5:
            # most of the buffer in the asset (a unit counts about 10 (1 - haircut) at 100), so
            # its mark's moves alone take accounts to the edge
            kept = collateral // rng.choice([2, 4, 10])
            spec["holdings"].append((owner, rng.randrange(len(valued)),
                                     (collateral - kept) // 9 + 1))
            collateral = kept
        elif roll < 0.7:
            spec["holdings"].append((owner, rng.randrange(len(valued)), rng.randint(1, 40)))
        accounts.append((owner, collateral, positions))
    spec["accounts"] = accounts
    return spec


@pytest.mark.parametrize("seed,with_assets", [(seed, False) for seed in range(25)]
                         + [(seed, True) for seed in range(60)])
def test_the_compiled_crossed_set_is_the_references_on_random_populations(seed, with_assets):
    import orderbook

    rng = random.Random(seed)
    spec = random_spec(rng)
    if with_assets:
        spec = random_assets(rng, spec)
    engines = [random_population(rng, cls, spec) for cls in (orderbook.Engine, ReferenceEngine)]
    marks = [m if m is not None else 100 for m in spec["marks"]]
    for step in range(40):
        i = rng.randrange(spec["instruments"])
        roll = rng.random()
        if roll < 0.1:
            owner = rng.randint(1, 40)
            amount = rng.randint(1, 200)
            asset = rng.randrange(len(spec["assets"])) if with_assets and roll < 0.05 else None
            for eng in engines:
                eng.deposit(owner, amount, asset=asset)
        else:
            marks[i] = max(1, marks[i] + rng.randint(-8, 8))
            for eng in engines:
                eng.set_index(marks[i], instrument=i)
        sets = [crossed(eng) for eng in engines]
        assert sets[0] == sets[1], (seed, step)


@pytest.mark.parametrize("seed", range(40))
def test_the_compiled_crossed_set_is_the_references_on_random_inverse_populations(seed):
    # Inverse venues (docs/market_wide.md section 7): k = 1 / (1 x 0.0001) = 10,000 coin units
    # x ticks per lot, so a lot at 100 ticks is worth 100, as in the linear populations; the
    # marks move further (the inverse loss rate holds within half the mark of a long's key,
    # and the convexity shows over wide moves).
    import orderbook

    rng = random.Random(1_000 + seed)
    spec = random_spec(rng)
    spec["settlement"] = {"settlement": Settlement.INVERSE, "contract_value": "1",
                          "quote_unit": "0.0001"}
    engines = [random_population(rng, cls, spec) for cls in (orderbook.Engine, ReferenceEngine)]
    marks = [m if m is not None else 100 for m in spec["marks"]]
    for step in range(40):
        i = rng.randrange(spec["instruments"])
        if rng.random() < 0.1:
            owner, amount = rng.randint(1, 40), rng.randint(1, 200)
            for eng in engines:
                eng.deposit(owner, amount)
        else:
            marks[i] = max(1, marks[i] + rng.choice([rng.randint(-8, 8), rng.randint(-40, 40)]))
            for eng in engines:
                eng.set_index(marks[i], instrument=i)
        sets = [crossed(eng) for eng in engines]
        assert sets[0] == sets[1], (seed, step)
