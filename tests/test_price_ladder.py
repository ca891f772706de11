"""The price ladder (orderbook/_price_ladder.pxd) against the reference book, where it is hard.

The book's levels live in a window of contiguous slots around the touch and in a tree for the
rest; the window grows, shifts and re-centres as prices move. The other differential tests keep
prices within a few ticks, inside the first window, so here the prices jump far, drift for
thousands of ticks, sit at both ends of int64, and spread one order per level over wide ranges:
every move of the window, and every walk that crosses from window to tree, runs, and each
chunk's events and the whole book (every level, every order, every armed stop) must equal the
reference's.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook import MESSAGE_DTYPE, Kind, OrderBook
from orderbook.reference import OrderBook as ReferenceBook

INT64_MAX = 2**63 - 1
BUY, SELL = 1, -1


def _same_books(book, ref):
    assert book.best_bid() == ref.best_bid()
    assert book.best_ask() == ref.best_ask()
    mine, theirs = book.l2(10**9), ref.l2(10**9)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert book.l3().tobytes() == ref.l3().tobytes()
    assert book.stops().tobytes() == ref.stops().tobytes()
    for side in (BUY, SELL):
        touch = book.best_bid() if side == BUY else book.best_ask()
        if touch is not None:
            for away in (0, 1, 300, 5_000):
                price = max(1, touch - away) if side == BUY else min(INT64_MAX, touch + away)
                assert book.resting_qty(side, price) == ref.resting_qty(side, price)
        for lots in (1, 50, 10**6):
            # repr: an empty side's average is nan, which equals nothing
            assert repr(book.impact(side, lots)) == repr(ref.impact(side, lots))


def _run(rows, chunk=64):
    msgs = np.zeros(len(rows), dtype=MESSAGE_DTYPE)
    for i, row in enumerate(rows):
        for name, value in row.items():
            msgs[name][i] = value
    book, ref = OrderBook(), ReferenceBook()
    for start in range(0, len(msgs), chunk):
        part = msgs[start:start + chunk]
        assert book.process(part).tobytes() == ref.process(part).tobytes()
        _same_books(book, ref)
    return book


@st.composite
def wide_flow(draw):
    """Messages whose prices follow a centre that steps, drifts and jumps (ticks)."""
    centre = draw(st.sampled_from([50, 10_000, 2**40, INT64_MAX - 100]))
    rows, next_id = [], 1
    for _ in range(draw(st.integers(20, 160))):
        move = draw(st.sampled_from(["stay", "stay", "stay", "drift", "jump", "edge"]))
        if move == "drift":
            centre += draw(st.integers(-400, 400))
        elif move == "jump":
            centre += draw(st.sampled_from([-1, 1])) * draw(st.integers(250, 200_000))
        elif move == "edge":
            centre = draw(st.sampled_from([1, 3, INT64_MAX - 2, INT64_MAX]))
        centre = min(max(centre, 1), INT64_MAX)
        side = draw(st.sampled_from([BUY, SELL]))
        away = draw(st.sampled_from([0, 1, 2, 5, 40, 300, 3_000]))
        price = min(max(centre - side * away, 1), INT64_MAX)
        qty = draw(st.integers(1, 30))
        kind = draw(st.sampled_from([Kind.LIMIT] * 6 + [Kind.IOC, Kind.MARKET, Kind.CANCEL,
                                     Kind.AMEND, Kind.STOP_MARKET, Kind.STOP_LIMIT,
                                     Kind.FOK, Kind.POST_ONLY]))
        if kind in (Kind.CANCEL, Kind.AMEND):
            oid = draw(st.integers(1, next_id))
        else:
            oid, next_id = next_id, next_id + 1
        row = dict(kind=int(kind), order_id=oid, side=side, qty=qty, owner=oid % 3)
        if kind in (Kind.LIMIT, Kind.IOC, Kind.FOK, Kind.POST_ONLY, Kind.AMEND,
                    Kind.STOP_LIMIT):
            row["price"] = price
        if kind in (Kind.STOP_MARKET, Kind.STOP_LIMIT):
            row["stop_price"] = min(max(centre + side * draw(st.integers(0, 600)), 1),
                                    INT64_MAX)
        rows.append(row)
    return rows


# Each example checks the whole book after every chunk (~0.12 s an example): the CI profile's
# 2,000 would take four minutes, so it runs at most 400.
@settings(max_examples=min(settings.default.max_examples, 400))
@given(wide_flow(), st.sampled_from([1, 7, 64]))
def test_wide_prices_match_the_reference(rows, chunk):
    _run(rows, chunk)


def _limit(oid, side, price, qty=1):
    return dict(kind=int(Kind.LIMIT), order_id=oid, side=side, price=price, qty=qty)


def test_one_order_per_level_over_a_wide_range_then_a_sweep():
    # 6,000 bids one tick apart (the window grows by 5/4 steps), then 6,000 asks placed from
    # the far end inwards (each a new best: the window re-centres or grows), then sweeps.
    rows = [_limit(i + 1, BUY, 100_000 - i) for i in range(6_000)]
    rows += [_limit(10_001 + i, SELL, 120_000 - 3 * i) for i in range(6_000)]
    rows += [dict(kind=int(Kind.MARKET), order_id=30_000, side=SELL, qty=4_000),
             dict(kind=int(Kind.MARKET), order_id=30_001, side=BUY, qty=5_999),
             _limit(30_002, SELL, 99_000, 10),
             dict(kind=int(Kind.MARKET), order_id=30_003, side=SELL, qty=10**6)]
    book = _run(rows, chunk=2_048)
    assert book.best_bid() is None and book.best_ask() == 99_000 and book.n_orders == 2


def test_a_crash_drags_the_window_down_a_million_ticks():
    # The touch falls 1,000 ticks a step; each step rests new asks at the touch and a bid
    # 20 ticks below, and a market sell eats through the bids. Stale asks stay behind.
    rows, oid, top = [], 1, 2_000_000
    for step in range(1_000):
        top -= 1_000
        for k in range(3):
            rows.append(_limit(oid, SELL, top + k, 2))
            oid += 1
        rows.append(_limit(oid, BUY, top - 20, 3))
        oid += 1
        rows.append(dict(kind=int(Kind.MARKET), order_id=oid, side=SELL, qty=5))
        oid += 1
        if step % 7 == 0:
            rows.append(dict(kind=int(Kind.CANCEL), order_id=oid - 5))
    _run(rows, chunk=500)
