"""orderbook.ladder: the book snapshots a run keeps, and the data the ladder figures draw."""

import dataclasses

import numpy as np
import pytest

import orderbook
from orderbook import L2, ForcedKind, Rules, default_scenario
from orderbook._market import Market
from orderbook.ladder import (
    ALL_LEVELS,
    BookTape,
    Stage,
    depth_in_bins,
    fills_in_bins,
    forced_trades,
    lots_in_bins,
    price_bins,
    shock_trades,
)
from orderbook.metrics import LIQUIDATION_KINDS

LEVELS = 300


@pytest.fixture(scope="module")
def scenario():
    return default_scenario(0.05)


@pytest.fixture(scope="module")
def result(scenario):
    return orderbook.run(scenario, counterfactual=False, book_levels=LEVELS)


def same_l2(a: L2, b: L2) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# ------------------------------------------------------------------------------ snapshots
def test_the_book_before_the_shock_is_the_seeded_book(scenario, result):
    market = Market(scenario)
    seeded = market.engine.books[0].l2(ALL_LEVELS)
    before = result.book_before
    assert same_l2(before.l2, seeded)
    assert len(before.l2.bid_price) == scenario.book.levels   # every level, not a top few
    # at 0 ms, after the book's first print (one trade, before the run)
    assert (before.time, before.trades) == (0, len(market.engine.trades())) == (0, 1)


def test_the_book_after_is_taken_at_the_last_round_that_closed_positions(result):
    closing = np.isin(result.forced_orders["kind"], LIQUIDATION_KINDS)
    after = result.book_after
    assert after.time == result.record_time[closing].max()
    frames = result.book_frames
    (k,) = np.flatnonzero((frames.stage == Stage.ROUND) & (frames.time == after.time))
    assert frames.trades[k] == after.trades
    top = frames.l2(k)
    n = min(LEVELS, len(after.l2.bid_price))
    assert np.array_equal(top.bid_price, after.l2.bid_price[:n])
    assert np.array_equal(top.bid_qty, after.l2.bid_qty[:n])
    # the forced orders' trades all came before it
    assert forced_trades(result)["trade"].max() < after.trades


def test_a_run_without_liquidations_has_no_book_after(scenario):
    quiet = orderbook.run(dataclasses.replace(scenario, rules=Rules(liquidator=False)))
    assert quiet.book_before is not None
    assert quiet.book_after is None


def test_frames_are_kept_only_when_asked(scenario):
    plain = orderbook.run(dataclasses.replace(scenario, steps=5), counterfactual=False)
    assert plain.book_frames is None
    assert plain.book_before is not None


def test_frames_come_around_the_shock_after_each_closing_round_and_at_each_step_end(
        scenario, result):
    frames = result.book_frames
    assert frames.levels == LEVELS
    assert frames.bid_price.shape == (len(frames), LEVELS)
    assert list(frames.stage[:2]) == [Stage.BEFORE_SHOCK, Stage.AFTER_SHOCK]
    assert (frames.stage == Stage.STEP_END).sum() == scenario.steps
    closing = np.isin(result.forced_orders["kind"], LIQUIDATION_KINDS)
    rounds = np.unique(result.record_time[closing])
    assert np.array_equal(frames.time[frames.stage == Stage.ROUND], rounds)
    assert np.all(np.diff(frames.time) >= 0)
    # the trades settled at each frame: the shock's between its two frames, all at the end
    assert np.all(np.diff(frames.trades) >= 0)
    assert frames.trades[1] - frames.trades[0] == len(shock_trades(result))
    assert frames.trades[-1] == len(result.trades)
    # the frame before the shock is the top of book_before
    assert np.array_equal(frames.l2(0).bid_qty, result.book_before.l2.bid_qty[:LEVELS])


def test_frames_pad_a_side_shorter_than_the_levels_kept_with_zeros(scenario):
    book = orderbook.ExplicitBook(bids=((99, 5), (98, 7)), asks=((101, 4),))
    small = dataclasses.replace(scenario, book=book, steps=2,
                                shock=orderbook.Shock(sell=0),
                                population=orderbook.ExplicitPopulation())
    frames = orderbook.run(small, counterfactual=False, book_levels=3).book_frames
    assert frames.bid_price[0].tolist() == [99, 98, 0]
    assert frames.bid_qty[0].tolist() == [5, 7, 0]
    assert frames.ask_qty[0].tolist() == [3, 0, 0]    # the first print bought one lot
    assert frames.l2(0).bid_qty.tolist() == [5, 7]


@pytest.mark.parametrize("levels", [0, -1, True, 1.5, "10"])
def test_book_levels_must_be_a_whole_number_of_at_least_one(scenario, levels):
    with pytest.raises(ValueError, match="book_levels"):
        BookTape(Market(scenario).engine, levels)


# ------------------------------------------------------------------------------ fills
def test_forced_fills_sum_to_each_generations_filled_lots(result):
    fills = forced_trades(result)
    records = result.forced_orders
    orders = (records["kind"] == ForcedKind.ORDER) & (records["instrument"] == 0)
    assert fills["qty"].sum() == records["filled"][orders].sum()
    for gen in np.unique(records["generation"]):
        mine = orders & (records["generation"] == gen)
        assert fills["qty"][fills["generation"] == gen].sum() == records["filled"][mine].sum()


def test_each_fill_belongs_to_its_record(result):
    fills = forced_trades(result)
    records = result.forced_orders[fills["record"]]
    assert np.array_equal(fills["side"], records["side"])
    assert np.array_equal(fills["time"], result.record_time[fills["record"]])
    trades = result.trades[fills["trade"]]
    assert np.all(trades["order_id"] < 0)
    assert np.array_equal(trades["price"], fills["price"])
    # a record's average price is its fills' (notional over lots, in ticks)
    for row in np.unique(fills["record"])[:50]:
        mine = fills[fills["record"] == row]
        avg = (mine["price"] * mine["qty"]).sum() / mine["qty"].sum()
        assert avg == pytest.approx(result.forced_orders["avg_price"][row])


def test_fills_that_do_not_pair_with_the_records_are_refused(result):
    records = result.forced_orders.copy()
    first = np.flatnonzero(records["filled"] > 0)[0]
    records["filled"][first] += 1
    with pytest.raises(ValueError, match="forced_trades: "):
        forced_trades(dataclasses.replace(result, forced_orders=records))


def test_the_shocks_trades_are_the_shockers_in_the_run(result):
    rows = shock_trades(result)
    # the whole sell (the book is deep enough), not the first print before the run
    assert result.trades["qty"][rows].sum() == result.scenario.shock.sell
    assert np.all(result.trade_time[rows] == 0)
    assert rows.min() == result.book_before.trades


# ------------------------------------------------------------------------------ bins
def test_price_bins_are_fixed_multiples_of_a_round_width():
    assert price_bins(995, 1012, target=4).tolist() == [995, 1000, 1005, 1010, 1015]
    # the same bands whatever part of the range is asked: they do not follow the price
    a, b = price_bins(9_000, 10_000, 50), price_bins(9_130, 9_870, 50)
    assert set(b.tolist()) <= set(range(0, 20_000, 50))
    assert (a % (a[1] - a[0]) == 0).all() and (b % (b[1] - b[0]) == 0).all()
    # a price on the last edge still has a band
    assert price_bins(0, 100, target=10)[-1] > 100


def test_price_bins_refuse_a_reversed_range():
    with pytest.raises(ValueError, match="high"):
        price_bins(10, 5)


def test_lots_in_bins_are_half_open_and_leave_out_what_is_outside():
    edges = np.array([10, 15, 20])
    assert lots_in_bins([9, 10, 14, 15, 19, 20], [1, 2, 3, 4, 5, 6], edges).tolist() == [5, 9]


def test_depth_in_bins_sums_each_sides_levels():
    l2 = L2(np.array([99, 98, 90]), np.array([5, 7, 11]), np.zeros(3, np.int64),
            np.array([101, 104]), np.array([4, 6]), np.zeros(2, np.int64))
    bids, asks = depth_in_bins(l2, np.array([95, 100, 105]))
    assert bids.tolist() == [12, 0]    # 90 is below the first band
    assert asks.tolist() == [0, 10]


def test_fills_in_bins_add_up_to_the_fills(result):
    fills = forced_trades(result)
    edges = price_bins(int(fills["price"].min()), int(fills["price"].max()), 50)
    gens = int(result.forced_orders["generation"].max()) + 1
    taken = fills_in_bins(fills, edges, gens)
    assert taken.shape == (gens, len(edges) - 1)
    assert taken.sum() == fills["qty"].sum()
    for gen in range(gens):
        assert taken[gen].sum() == fills["qty"][fills["generation"] == gen].sum()
