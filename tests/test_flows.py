"""Background order flows (orderbook.flows, docs/flows.md): the models' rates, marks and state,
the resolver to messages, validation, and the benchmark streams moved from benchmarks/.

Statistical tests use fixed seeds, so they are deterministic; their tolerances are 5 standard
deviations of the model's own count distribution, so a correct model passes with any seed.
"""

import hashlib
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook
from orderbook import MESSAGE_DTYPE, EventKind, Kind, OrderBook, Side
from orderbook.config import ConfigError
from orderbook.flows import (
    BENCHMARK_REGIMES,
    FLOW_DTYPE,
    Anchor,
    HawkesFlow,
    MarketState,
    OrderSize,
    PoissonFlow,
    Rates,
    benchmark_stream,
    limit_price,
    power_law_profile,
    to_messages,
)

LIMIT, MARKET, CANCEL = int(Kind.LIMIT), int(Kind.MARKET), int(Kind.CANCEL)
# The properties below are about arithmetic on arrays, not about rare paths: a few hundred
# examples cover them, and the ci profile's 2000 would cost half a minute.
CAPPED = settings(max_examples=min(settings.default.max_examples, 300))


def _within(count, expected, sd, k=5.0):
    assert abs(count - expected) <= k * sd, f"{count} vs {expected} +- {k} x {sd:.1f}"


def _pieces(stream, bounds, state=None):
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    return np.concatenate([stream.between(a, b, state) for a, b in pairs])


# ------------------------------------------------------------------------------ layout
def test_flow_rows_use_the_library_kind_and_side_values():
    assert FLOW_DTYPE.names == ("time", "offset", "qty", "pick", "kind", "side", "anchor")
    rows = PoissonFlow(market_rate_per_s=5, cancel_rate_per_s=5, seed=1).start().between(0, 5000)
    assert set(rows["kind"].tolist()) == {LIMIT, MARKET, CANCEL}
    assert set(rows[rows["kind"] != CANCEL]["side"].tolist()) == {int(Side.BUY), int(Side.SELL)}
    assert (rows[rows["kind"] == CANCEL]["side"] == 0).all()
    assert (rows[rows["kind"] == CANCEL]["qty"] == 0).all()


def test_flows_is_a_public_submodule():
    assert "flows" in orderbook.__all__
    assert orderbook.flows.PoissonFlow is PoissonFlow


# ---------------------------------------------------------------------- Poisson: streams
def test_the_same_seed_gives_the_same_rows_and_another_seed_others():
    flow = PoissonFlow(limit_rate_per_s=30, market_rate_per_s=3, cancel_rate_per_s=3, seed=11)
    a, b = flow.start().between(0, 60_000), flow.start().between(0, 60_000)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, flow.start(seed=12).between(0, 60_000))
    assert np.array_equal(flow.start(seed=12).between(0, 60_000),
                          PoissonFlow(limit_rate_per_s=30, market_rate_per_s=3,
                                      cancel_rate_per_s=3, seed=12).start().between(0, 60_000))


def test_poisson_rows_are_the_same_however_the_horizon_is_split():
    flow = PoissonFlow(limit_rate_per_s=80, market_rate_per_s=8, cancel_rate_per_s=20, seed=4)
    whole = flow.start().between(1_000, 301_000)
    assert len(whole) > 30_000  # several chunks of draws
    for bounds in ([1_000, 1_001, 1_001, 2_500, 150_000, 301_000],
                   list(range(1_000, 301_001, 997)) + [301_000]):
        assert np.array_equal(_pieces(flow.start(), bounds), whole)


@CAPPED
@given(st.lists(st.integers(0, 20_000), max_size=8), st.integers(0, 2**32))
def test_poisson_split_invariance_holds_for_any_cut_points(cuts, seed):
    flow = PoissonFlow(limit_rate_per_s=20, market_rate_per_s=5, cancel_rate_per_s=5, seed=seed)
    bounds = [0, *sorted(cuts), 20_000]
    assert np.array_equal(_pieces(flow.start(), bounds), flow.start().between(0, 20_000))


def test_time_left_out_between_calls_loses_its_arrivals_and_shifts_nothing():
    flow = PoissonFlow(market_rate_per_s=5, cancel_rate_per_s=5, seed=2)
    whole = flow.start().between(0, 20_000)
    stream = flow.start()
    got = np.concatenate([stream.between(0, 3_000), stream.between(9_000, 20_000)])
    keep = (whole["time"] < 3_000) | (whole["time"] >= 9_000)
    assert np.array_equal(got, whole[keep])


def test_one_kinds_rate_change_leaves_the_other_kinds_rows_alone():
    flow = PoissonFlow(limit_rate_per_s=20, market_rate_per_s=5, vol_sensitivity=1.0, seed=3)
    calm, busy = flow.start(), flow.start()
    calm_rows = _pieces(calm, [0, 5_000, 10_000])
    busy_rows = np.concatenate([busy.between(0, 5_000),
                                busy.between(5_000, 10_000, MarketState(volatility_ppm=300))])
    early = lambda r: r[r["time"] < 5_000]  # noqa: E731
    assert np.array_equal(early(calm_rows), early(busy_rows))
    # the same limit orders (marks), only their times stretched by 1 + v = 4
    calm_late = calm_rows[(calm_rows["time"] >= 5_000) & (calm_rows["kind"] == LIMIT)]
    busy_late = busy_rows[(busy_rows["time"] >= 5_000) & (busy_rows["kind"] == LIMIT)]
    n = len(busy_late)
    assert 0 < n < len(calm_late)
    for field in ("side", "offset", "qty"):
        assert np.array_equal(busy_late[field], calm_late[field][:n])


def test_rows_are_sorted_and_inside_the_interval():
    stream = PoissonFlow(limit_rate_per_s=500, market_rate_per_s=50, cancel_rate_per_s=100,
                         seed=5).start()
    for t0, t1 in ((0, 7), (7, 7), (10, 1_000), (1_000, 1_001)):
        rows = stream.between(t0, t1)
        assert (np.diff(rows["time"]) >= 0).all()
        assert ((rows["time"] >= t0) & (rows["time"] < t1)).all()
    assert len(stream.between(2_000, 2_000)) == 0


# ------------------------------------------------------------------------ Poisson: rates
def test_counts_per_kind_match_the_configured_rates():
    flow = PoissonFlow(limit_rate_per_s=50, market_rate_per_s=5, cancel_rate_per_s=40,
                       cancel_per_order_per_s=0, seed=21)
    seconds = 2_000
    rows = flow.start().between(0, seconds * 1000)
    for kind, rate in ((LIMIT, 50), (MARKET, 5), (CANCEL, 40)):
        expected = rate * seconds
        _within(int((rows["kind"] == kind).sum()), expected, math.sqrt(expected))


def test_limit_offsets_follow_the_profile():
    profile = (4.0, 0.0, 2.0, 1.0, 1.0)
    rows = PoissonFlow(limit_rate_per_s=100, market_rate_per_s=0, cancel_per_order_per_s=0,
                       limit_profile=profile, seed=8).start().between(0, 500_000)
    counts = np.bincount(rows["offset"], minlength=len(profile))
    n, p = counts.sum(), np.array(profile) / sum(profile)
    assert counts[1] == 0 and len(counts) == len(profile)
    for c, q in zip(counts, p, strict=True):
        _within(c, n * q, math.sqrt(n * q * (1 - q)))
    # chi-square over the levels with weight, against its 1e-6 quantile (Wilson-Hilferty)
    used = p > 0
    chi2 = float((((counts - n * p) ** 2)[used] / (n * p[used])).sum())
    dof = int(used.sum()) - 1
    bound = dof * (1 - 2 / (9 * dof) + 4.75 * math.sqrt(2 / (9 * dof))) ** 3
    assert chi2 < bound


def test_the_default_profile_is_a_power_law_of_the_distance_from_the_opposite_quote():
    flow = PoissonFlow()
    assert flow.anchor == Anchor.OPPOSITE
    w = np.array(flow.limit_profile)
    assert len(w) == 10 and math.isclose(w.sum(), 1.0)
    assert np.allclose(w / w[0], np.arange(1, 11) ** -0.52)


def test_buy_share_sets_the_share_of_buy_orders():
    rows = PoissonFlow(limit_rate_per_s=40, market_rate_per_s=10, buy_share=0.8,
                       seed=9).start().between(0, 1_000_000)
    for kind in (LIMIT, MARKET):
        sides = rows[rows["kind"] == kind]["side"]
        n = len(sides)
        _within(int((sides == 1).sum()), 0.8 * n, math.sqrt(n * 0.16))


def test_per_order_cancellations_scale_with_the_flows_resting_orders():
    flow = PoissonFlow(limit_rate_per_s=0, market_rate_per_s=0, cancel_rate_per_s=1,
                       cancel_per_order_per_s=0.5, seed=10)
    assert flow.rates(MarketState(own_orders=40)) == Rates(0.0, 0.0, 21.0)
    rows = flow.start().between(0, 200_000, MarketState(own_orders=40))
    _within(len(rows), 21 * 200, math.sqrt(21 * 200))
    assert ((rows["pick"] >= 0) & (rows["pick"] < 1)).all()


# ------------------------------------------------------------------- Poisson: modulation
def test_volatility_speeds_up_takers_and_cancels_and_thins_out_limits():
    flow = PoissonFlow(limit_rate_per_s=30, market_rate_per_s=3, cancel_rate_per_s=6,
                       cancel_per_order_per_s=0, vol_sensitivity=0.5, vol_reference_ppm=200)
    stressed = MarketState(volatility_ppm=600)  # v = 0.5 x 600 / 200 = 1.5
    assert flow.rates() == Rates(30.0, 3.0, 6.0)
    assert flow.rates(stressed) == Rates(12.0, 7.5, 15.0)
    rows = flow.start().between(0, 1_000_000, stressed)
    for kind, rate in ((LIMIT, 12.0), (MARKET, 7.5), (CANCEL, 15.0)):
        _within(int((rows["kind"] == kind).sum()), rate * 1000, math.sqrt(rate * 1000))


def test_a_wide_spread_thins_out_limits_only():
    flow = PoissonFlow(limit_rate_per_s=30, market_rate_per_s=3, spread_sensitivity=0.25)
    assert flow.rates(MarketState(best_bid=100, best_ask=101)).limit == 30.0
    wide = MarketState(best_bid=100, best_ask=109)  # w = 0.25 x (9 - 1) = 2
    assert flow.rates(wide) == Rates(10.0, 3.0, 0.0)
    assert flow.rates(MarketState(best_bid=100)) == flow.rates()  # no spread: no signal
    rows = flow.start().between(0, 1_000_000, wide)
    _within(int((rows["kind"] == LIMIT).sum()), 10_000, 100)


# ----------------------------------------------------------------------------- sizes
def test_geometric_sizes_have_the_configured_mean_and_are_at_least_one():
    lots = OrderSize(7.5).draw(np.random.default_rng(1), 200_000)
    assert lots.dtype == np.int64 and lots.min() == 1
    sd = math.sqrt(7.5 * 6.5 / 200_000)  # geometric variance (1 - p) / p**2
    _within(lots.mean(), 7.5, sd)


def test_fixed_lognormal_and_capped_sizes():
    rng = np.random.default_rng(2)
    assert (OrderSize(3, "fixed").draw(rng, 10) == 3).all()
    lots = OrderSize(200, "lognormal", sigma=0.5).draw(rng, 200_000)
    assert lots.min() >= 1
    sd = 200 * math.sqrt(math.exp(0.25) - 1) / math.sqrt(200_000)
    _within(lots.mean(), 200, sd + 0.5 / math.sqrt(200_000) + 0.01)
    capped = OrderSize(50, "geometric", max_lots=20).draw(rng, 10_000)
    assert capped.max() == 20 and capped.min() >= 1
    assert (OrderSize(1).draw(rng, 100) == 1).all()


# --------------------------------------------------------------------------------- Hawkes
def test_hawkes_mean_rate_is_baseline_over_one_minus_the_branching_ratio():
    flow = HawkesFlow(baseline_per_s=2.0, alpha_per_s=3.0, beta_per_s=6.0, seed=1)
    assert flow.branching_ratio == 0.5 and flow.mean_rate_per_s == 4.0
    seconds = 20_000
    n = len(flow.start().between(0, seconds * 1000))
    # Var N(T) ~ T mu / (1 - n)**3 for a stationary Hawkes process, T large
    _within(n, 4.0 * seconds, math.sqrt(seconds * 2.0 / 0.5**3))


def test_hawkes_rows_are_market_orders_on_the_flows_side():
    rows = HawkesFlow(side=Side.BUY, size=OrderSize(4, "fixed"), seed=2).start().between(
        0, 100_000)
    assert len(rows) > 0
    assert (rows["kind"] == MARKET).all() and (rows["side"] == 1).all()
    assert (rows["offset"] == 0).all() and (rows["qty"] == 4).all()


def test_hawkes_rows_are_the_same_however_the_horizon_is_split():
    flow = HawkesFlow(baseline_per_s=3, alpha_per_s=4, beta_per_s=5, seed=7)
    whole = flow.start().between(0, 400_000)
    assert len(whole) > 2 * 512  # past a chunk of uniforms and of sizes
    for bounds in ([0, 1, 1, 99_999, 400_000], list(range(0, 400_000, 333)) + [400_000]):
        assert np.array_equal(_pieces(flow.start(), bounds), whole)


def test_hawkes_intensity_carries_across_calls():
    # no baseline: every order after the first call descends from the jump at t = 0
    flow = HawkesFlow(baseline_per_s=0, alpha_per_s=0.5, beta_per_s=1,
                      excite_per_forced_lot=1.0, seed=3)
    stream = flow.start()
    assert stream.intensity_per_s == 0.0
    assert len(stream.between(0, 1, MarketState(forced_sell_lots=10))) == 0
    assert math.isclose(stream.intensity_per_s, 10 * math.exp(-0.001))
    later = stream.between(1, 600_000)
    # a jump of 10/s decaying at 1/s triggers 10 orders on average, 20 with their offspring
    assert 5 <= len(later) <= 60
    assert stream.intensity_per_s < 1e-9  # the cluster has died out ten minutes on
    assert len(flow.start().between(1, 600_000)) == 0


def test_forced_selling_begets_selling():
    flow = HawkesFlow(baseline_per_s=2, alpha_per_s=3, beta_per_s=6, excite_per_forced_lot=0.5,
                      seed=1)
    quiet, forced = flow.start(), flow.start()
    liquidations = MarketState(forced_sell_lots=100)  # +50/s at each interval's start
    n_quiet = sum(len(quiet.between(t, t + 1000)) for t in range(0, 200_000, 1000))
    n_forced = sum(len(forced.between(t, t + 1000, liquidations))
                   for t in range(0, 200_000, 1000))
    # each jump of 50/s adds about 50/6 x (1 - e**-6) direct orders, doubled by branching
    extra = 200 * 50 / 6 * (1 - math.exp(-6)) * 2
    assert n_forced - n_quiet > extra / 2
    _within(n_quiet, 800, math.sqrt(200 * 2 / 0.125))


def test_a_buy_flow_is_excited_by_forced_buying_not_selling():
    flow = HawkesFlow(baseline_per_s=1, alpha_per_s=0, beta_per_s=1, side=Side.BUY,
                      excite_per_forced_lot=1.0, seed=4)
    base = flow.start().between(0, 10_000)
    sells = flow.start().between(0, 10_000, MarketState(forced_sell_lots=1000))
    buys = flow.start().between(0, 10_000, MarketState(forced_buy_lots=1000))
    assert np.array_equal(base, sells)
    assert len(buys) > len(base) + 500  # 1000/s decaying at 1/s: about 1000 extra orders


def test_volatility_raises_the_hawkes_baseline():
    flow = HawkesFlow(baseline_per_s=2, alpha_per_s=0, beta_per_s=1, vol_sensitivity=1.0,
                      vol_reference_ppm=100, seed=5)
    assert flow.baseline(MarketState(volatility_ppm=300)) == 8.0
    n = len(flow.start().between(0, 100_000, MarketState(volatility_ppm=300)))
    _within(n, 800, math.sqrt(800))


def test_a_branching_ratio_of_one_or_more_is_refused():
    with pytest.raises(ValueError, match=r"alpha_per_s / beta_per_s = 2\.0 / 2\.0 = 1"):
        HawkesFlow(alpha_per_s=2.0, beta_per_s=2.0)
    with pytest.raises(ValueError, match="branching ratio"):
        HawkesFlow(alpha_per_s=3.0, beta_per_s=2.0)


# -------------------------------------------------------------------------- resolving
def _rows(*specs):
    """(kind, side, offset, qty, pick, anchor) tuples as FLOW_DTYPE rows."""
    rows = np.zeros(len(specs), FLOW_DTYPE)
    for i, (kind, side, offset, qty, pick, anchor) in enumerate(specs):
        rows[i] = (i, offset, qty, pick, kind, side, anchor)
    return rows


SAME, OPP = int(Anchor.SAME), int(Anchor.OPPOSITE)


def test_limit_rows_are_priced_from_their_anchor_quote():
    rows = _rows((LIMIT, 1, 0, 5, 0, SAME), (LIMIT, 1, 3, 5, 0, SAME), (LIMIT, -1, 2, 5, 0, SAME),
                 (LIMIT, 1, 0, 5, 0, OPP), (LIMIT, -1, 1, 5, 0, OPP), (LIMIT, 1, -2, 5, 0, SAME))
    r = to_messages(rows, best_bid=100, best_ask=105, next_order_id=50, owner=7)
    assert r.messages["price"].tolist() == [100, 97, 107, 104, 102, 102]
    assert r.messages["order_id"].tolist() == list(range(50, 56))
    assert (r.messages["owner"] == 7).all() and (r.messages["kind"] == LIMIT).all()
    assert r.messages["side"].tolist() == [1, 1, -1, 1, -1, 1]
    assert r.next_order_id == 56 and r.reasons == {} and len(r.skipped) == 0
    assert r.source.tolist() == list(range(6))


def test_unresolvable_rows_are_skipped_and_counted_never_priced():
    rows = _rows((LIMIT, 1, 0, 5, 0, SAME),     # no bid
                 (LIMIT, -1, -5, 5, 0, SAME),   # 105 - 5 = 100 would meet... no bid: fine
                 (LIMIT, 1, 0, 5, 0, OPP),      # 104
                 (LIMIT, 1, 104, 5, 0, OPP),    # 0 ticks
                 (LIMIT, -1, 0, 5, 0, OPP),     # no bid to anchor on
                 (MARKET, -1, 0, 9, 0, SAME),
                 (CANCEL, 0, 0, 0, 0.5, SAME))  # nothing live
    r = to_messages(rows, best_bid=None, best_ask=105, next_order_id=1, owner=3)
    assert r.messages[["order_id", "price", "qty", "kind"]].tolist() == [
        (1, 100, 5, LIMIT), (2, 104, 5, LIMIT), (3, 0, 9, MARKET)]
    assert r.source.tolist() == [1, 2, 5]
    assert r.reasons == {"no_quote": 2, "below_one_tick": 1, "nothing_to_cancel": 1}
    assert np.array_equal(r.skipped, rows[[0, 3, 4, 6]])


def test_an_inside_offset_that_would_cross_is_skipped():
    rows = _rows((LIMIT, 1, -3, 5, 0, SAME), (LIMIT, 1, -4, 5, 0, SAME),
                 (LIMIT, -1, -1, 5, 0, OPP))
    r = to_messages(rows, best_bid=100, best_ask=104, next_order_id=1, owner=3)
    assert r.messages["price"].tolist() == [103]
    assert r.reasons == {"would_cross": 2}


def test_cancels_pick_among_the_owners_live_orders_each_once():
    rows = _rows((CANCEL, 0, 0, 0, 0.99, SAME), (CANCEL, 0, 0, 0, 0.0, SAME),
                 (CANCEL, 0, 0, 0, 0.5, SAME), (CANCEL, 0, 0, 0, 0.1, SAME))
    r = to_messages(rows, best_bid=1, best_ask=2, next_order_id=1, owner=3,
                    live_orders=[11, 12, 13])
    # floor(0.99 x 3) = 2 -> 13; floor(0 x 2) = 0 -> 11; floor(0.5 x 1) = 0 -> 12; none left
    assert r.messages["order_id"].tolist() == [13, 11, 12]
    assert (r.messages["kind"] == CANCEL).all()
    assert r.reasons == {"nothing_to_cancel": 1} and r.live_orders == ()
    assert r.next_order_id == 1


def test_limit_price_prices_one_row_against_the_current_quotes():
    row = PoissonFlow(anchor="same", limit_profile=(0, 0, 1), seed=1).start().between(
        0, 10_000)[0]
    assert row["offset"] == 2
    assert limit_price(row, 100, 110) == (98 if row["side"] == 1 else 112)
    assert limit_price({"side": 1, "offset": 0, "anchor": OPP}, None, 1) is None
    assert limit_price({"side": -1, "offset": 0, "anchor": OPP}, 2**63 - 2, None) == 2**63 - 1
    assert limit_price({"side": -1, "offset": 1, "anchor": OPP}, 2**63 - 2, None) is None
    with pytest.raises(ValueError, match="best_bid = 0"):
        limit_price(row, 0, 5)


def test_flows_drive_an_order_book_without_rejections():
    book = OrderBook()
    for i in range(10):
        book.limit(1 + i, Side.BUY, 999 - i, 20, 1)
        book.limit(101 + i, Side.SELL, 1001 + i, 20, 1)
    stream = PoissonFlow(limit_rate_per_s=50, market_rate_per_s=5, cancel_per_order_per_s=0.5,
                         seed=6).start()
    next_id, sent = 1_000, 0
    for t0 in range(0, 30_000, 250):
        state = MarketState.from_book(book, time=t0, owner=2)
        rows = stream.between(t0, t0 + 250, state)
        r = to_messages(rows, best_bid=state.best_bid, best_ask=state.best_ask,
                        next_order_id=next_id, owner=2, live_orders=book.orders_of(2))
        next_id = r.next_order_id
        events = book.process(r.messages)
        sent += len(r.messages)
        rejected = events[events["kind"] == int(EventKind.REJECTED)]
        # only a cancel of an order a market order of the same batch already filled
        assert (rejected["reason"] == int(orderbook.Reason.UNKNOWN_ORDER)).all()
    assert sent > 1_000 and book.best_bid() is not None and book.best_ask() is not None
    assert 0 < len(book.orders_of(2))


def test_to_messages_refuses_bad_input():
    rows = _rows((LIMIT, 1, 0, 5, 0, SAME))
    kw = dict(best_bid=10, best_ask=12, next_order_id=1, owner=1)
    with pytest.raises(TypeError, match="FLOW_DTYPE"):
        to_messages(np.zeros(1, MESSAGE_DTYPE), **kw)
    with pytest.raises(ValueError, match="best_bid = 12 must be below best_ask = 12"):
        to_messages(rows, **{**kw, "best_bid": 12})
    with pytest.raises(ValueError, match="best_ask = -3"):
        to_messages(rows, **{**kw, "best_ask": -3})
    with pytest.raises(TypeError, match="next_order_id"):
        to_messages(rows, **{**kw, "next_order_id": 1.5})
    with pytest.raises(TypeError, match="live_orders"):
        to_messages(rows, **kw, live_orders=[1.5])
    bad = rows.copy()
    bad["kind"] = Kind.AMEND
    with pytest.raises(ValueError, match=r"rows\[0\]\.kind = 9"):
        to_messages(bad, **kw)
    empty = to_messages(rows[:0], **kw)
    assert len(empty.messages) == 0 and empty.messages.dtype == MESSAGE_DTYPE


def test_to_messages_refuses_ids_past_int64():
    rows = _rows((LIMIT, 1, 0, 5, 0, SAME), (MARKET, 1, 0, 5, 0, SAME))
    kw = dict(best_bid=10, best_ask=12, owner=1)
    assert to_messages(rows[:1], **kw, next_order_id=2**63 - 1).next_order_id == 2**63
    with pytest.raises(ValueError, match=f"next_order_id = {2**63 - 1} leaves no room for 2"):
        to_messages(rows, **kw, next_order_id=2**63 - 1)


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("cls", "field", "value", "error", "text"), [
    (PoissonFlow, "limit_rate_per_s", -1.0, ValueError, r"limit_rate_per_s = -1\.0"),
    (PoissonFlow, "market_rate_per_s", math.inf, ValueError, "market_rate_per_s = inf"),
    (PoissonFlow, "cancel_rate_per_s", math.nan, ValueError, "cancel_rate_per_s = nan"),
    (PoissonFlow, "cancel_per_order_per_s", -0.1, ValueError, "cancel_per_order_per_s"),
    (PoissonFlow, "market_rate_per_s", "fast", TypeError, "market_rate_per_s = 'fast'"),
    (PoissonFlow, "buy_share", 1.5, ValueError, r"buy_share = 1\.5"),
    (PoissonFlow, "limit_profile", (0, 0), ValueError, "limit_profile .* weight > 0"),
    (PoissonFlow, "limit_profile", (1, -1), ValueError,
     r"limit_profile = \(1, -1\) weight \[1\] = -1 must be in \[0\.0, inf\]"),
    (PoissonFlow, "limit_profile", (), ValueError, "limit_profile = \\(\\) must have 1"),
    (PoissonFlow, "anchor", "middle", ValueError, "anchor = 'middle' is not one of SAME"),
    (PoissonFlow, "limit_size", 5, TypeError, "limit_size = 5 must be an OrderSize"),
    (PoissonFlow, "market_size", {"mean_lots": 0}, ValueError,
     r"market_size = \{'mean_lots': 0\} is not a valid OrderSize: \[OrderSize\] mean_lots = 0"),
    (PoissonFlow, "limit_size", {"mean": 3}, TypeError, "limit_size = .* its fields are mean_lots"),
    (PoissonFlow, "vol_sensitivity", -1, ValueError, "vol_sensitivity = -1"),
    (PoissonFlow, "spread_sensitivity", -1, ValueError, "spread_sensitivity = -1"),
    (PoissonFlow, "vol_reference_ppm", 0, ValueError, "vol_reference_ppm = 0"),
    (PoissonFlow, "seed", -1, ValueError, "seed = -1"),
    (PoissonFlow, "seed", 1.0, TypeError, r"seed = 1\.0"),
    (HawkesFlow, "baseline_per_s", -1, ValueError, "baseline_per_s = -1"),
    (HawkesFlow, "alpha_per_s", -1, ValueError, "alpha_per_s = -1"),
    (HawkesFlow, "beta_per_s", 0, ValueError, "beta_per_s = 0"),
    (HawkesFlow, "side", 0, ValueError, "side = 0"),
    (HawkesFlow, "excite_per_forced_lot", -2, ValueError, "excite_per_forced_lot = -2"),
    (OrderSize, "mean_lots", 0.5, ValueError, r"mean_lots = 0\.5"),
    (OrderSize, "dist", "pareto", ValueError, "dist = 'pareto' is not one of fixed"),
    (OrderSize, "sigma", -1, ValueError, "sigma = -1"),
    (OrderSize, "max_lots", 0, ValueError, "max_lots = 0"),
    (MarketState, "best_bid", 0, ValueError, "best_bid = 0"),
    (MarketState, "volatility_ppm", -5, ValueError, "volatility_ppm = -5"),
    (MarketState, "forced_sell_lots", -1, ValueError, "forced_sell_lots = -1"),
    (MarketState, "own_orders", 2.5, TypeError, r"own_orders = 2\.5"),
])
def test_each_setting_is_checked_and_the_error_names_it(cls, field, value, error, text):
    with pytest.raises(error, match=rf"\[{cls.__name__}\] {text}"):
        cls(**{field: value})


def test_cross_field_checks_name_the_values():
    with pytest.raises(ConfigError, match=r"mean_lots = 2\.5 must be a whole number"):
        OrderSize(2.5, "fixed")
    with pytest.raises(ValueError, match="best_bid = 10 must be below best_ask = 10"):
        MarketState(best_bid=10, best_ask=10)


def test_settings_are_converted_as_a_scenario_file_would_give_them():
    flow = PoissonFlow(anchor="same", limit_profile=[1, 2], limit_size={"mean_lots": 3},
                       limit_rate_per_s=np.int64(4))
    assert flow.anchor is Anchor.SAME and flow.limit_profile == (1.0, 2.0)
    assert flow.limit_size == OrderSize(3.0) and flow.limit_rate_per_s == 4.0
    assert HawkesFlow(side="buy").side is Side.BUY


def test_between_refuses_intervals_out_of_order_and_bad_times():
    stream = PoissonFlow(seed=1).start()
    with pytest.raises(ValueError, match="t1_ms = 5 must be >= t0_ms = 10"):
        stream.between(10, 5)
    with pytest.raises(TypeError, match=r"t0_ms = 1\.5"):
        stream.between(1.5, 5)
    with pytest.raises(TypeError, match="state must be a MarketState"):
        stream.between(0, 5, {"volatility_ppm": 1})
    assert stream.time_ms is None  # refused calls change nothing
    stream.between(0, 1_000)
    with pytest.raises(ValueError, match="t0_ms = 999 is before the end of the previous "
                                         "interval, 1000 ms"):
        stream.between(999, 2_000)
    hawkes = HawkesFlow().start()
    hawkes.between(100, 200)
    with pytest.raises(ValueError, match="t0_ms = 0 is before"):
        hawkes.between(0, 300)
    with pytest.raises(ValueError, match="seed = -3"):
        PoissonFlow().start(seed=-3)


def test_power_law_profile_checks_its_arguments():
    with pytest.raises(ValueError, match="levels = 0"):
        power_law_profile(0)
    with pytest.raises(ValueError, match="exponent = -1"):
        power_law_profile(5, -1)
    assert power_law_profile(4, 0.0) == (0.25, 0.25, 0.25, 0.25)


# ----------------------------------------------------------- configuration objects
def test_configurations_are_frozen_picklable_and_short_to_print():
    flows = [PoissonFlow(limit_rate_per_s=5, limit_profile=(1, 1)),
             HawkesFlow(side=Side.BUY, size=OrderSize(3, "fixed")), MarketState(best_bid=4)]
    for flow in flows:
        assert pickle.loads(pickle.dumps(flow)) == flow
        with pytest.raises(AttributeError):
            flow.seed = 3
    assert repr(PoissonFlow()) == "PoissonFlow()"
    assert repr(flows[0]) == "PoissonFlow(limit_rate_per_s=5.0, limit_profile=(1.0, 1.0))"
    assert repr(flows[1]) == "HawkesFlow(side=BUY, size=OrderSize(mean_lots=3.0, dist='fixed'))"
    assert repr(MarketState(best_bid=4, best_ask=6)) == "MarketState(best_bid=4, best_ask=6)"
    assert MarketState(best_bid=4, best_ask=6).spread == 2 and MarketState().spread is None


def test_a_pickled_stream_goes_on_exactly_where_it_was():
    for flow in (PoissonFlow(market_rate_per_s=10, seed=3), HawkesFlow(seed=3)):
        stream = flow.start()
        stream.between(0, 5_000)
        copy = pickle.loads(pickle.dumps(stream))
        assert np.array_equal(copy.between(5_000, 60_000), stream.between(5_000, 60_000))
        assert repr(copy).endswith("at 60000 ms)")


def test_a_buy_and_a_sell_hawkes_flow_with_one_seed_draw_differently():
    buy = HawkesFlow(side=Side.BUY, seed=5).start().between(0, 100_000)
    sell = HawkesFlow(side=Side.SELL, seed=5).start().between(0, 100_000)
    assert not np.array_equal(buy["time"], sell["time"])


def test_market_state_from_book_reads_the_quotes_and_the_owners_orders():
    book = OrderBook()
    book.limit(1, Side.BUY, 99, 5, 7)
    book.limit(2, Side.BUY, 98, 5, 7)
    book.limit(3, Side.SELL, 103, 5, 8)
    state = MarketState.from_book(book, time=250, owner=7, volatility_ppm=40.0)
    assert state == MarketState(time=250, best_bid=99, best_ask=103, volatility_ppm=40.0,
                                own_orders=2)
    assert MarketState.from_book(OrderBook(), time=0) == MarketState()


# ------------------------------------------------------------------------- properties
@CAPPED
@given(limit=st.floats(0, 200), market=st.floats(0, 50), cancel=st.floats(0, 50),
       vol=st.floats(0, 1_000), hawkes_alpha=st.floats(0, 0.99),
       steps=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 3_000)), min_size=1,
                      max_size=5),
       size=st.sampled_from([OrderSize(1), OrderSize(5, "fixed"), OrderSize(30, "lognormal")]),
       seed=st.integers(0, 2**32))
def test_rows_are_sorted_inside_their_interval_and_well_formed(limit, market, cancel, vol,
                                                               hawkes_alpha, steps, size, seed):
    streams = [PoissonFlow(limit_rate_per_s=limit, market_rate_per_s=market,
                           cancel_rate_per_s=cancel, vol_sensitivity=1.0, limit_size=size,
                           market_size=size, seed=seed).start(),
               HawkesFlow(baseline_per_s=market, alpha_per_s=hawkes_alpha, beta_per_s=1.0,
                          excite_per_forced_lot=0.1, size=size, seed=seed).start()]
    t = 0
    for gap, length in steps:
        t0, t1 = t + gap, t + gap + length
        state = MarketState(time=t0, volatility_ppm=vol, forced_sell_lots=gap)
        for stream in streams:
            rows = stream.between(t0, t1, state)
            assert rows.dtype == FLOW_DTYPE
            assert (np.diff(rows["time"]) >= 0).all()
            assert ((rows["time"] >= t0) & (rows["time"] < t1)).all()
            orders = rows[rows["kind"] != CANCEL]
            assert (orders["qty"] >= 1).all() and np.isin(orders["side"], (1, -1)).all()
            assert ((rows["pick"] >= 0) & (rows["pick"] < 1)).all()
            assert (rows["offset"] >= 0).all()
        t = t1


# ------------------------------------------------------------------ benchmark streams
def _digest(msgs: np.ndarray) -> str:
    h = hashlib.sha256()
    for name in MESSAGE_DTYPE.names:  # field by field: the aligned dtype's padding is no data
        h.update(np.ascontiguousarray(msgs[name]).tobytes())
    return h.hexdigest()


# Computed from benchmarks/bench_book.py's generate() before it moved here: the streams
# must not change, or benchmark figures stop being comparable across versions.
BENCHMARK_DIGESTS = {
    ("mixed", 500, 3): "e0c8f89ea9501bfbe08e3589edb2a7c55a9033d1f2303b726f6344fabf32eb01",
    ("mixed", 3000, 7): "40472df8e55e4b8df8ff741215e51d2c412d5c9f5761fda7f499a8cde3d5c421",
    ("deep", 500, 3): "1bc27a9353f2168ad03973f2926f6231ddcb7a52ab1327f0b23bd356b898e7cb",
    ("deep", 3000, 7): "023a30765ac41b1670a2946525fc477168382d45237c015e1678d568c913b9c0",
    ("crash", 500, 3): "8b44ed8ac0490e69aabbf67aa4ba017d4a44377689dc717e0d33ea63d48985b9",
    ("crash", 3000, 7): "4a3898d5a3a37094e06ed1880e6fbb3f465e79f3889595553d9626aa6d81243c",
    # the regimes added later, from their first version
    ("static", 3000, 7): "45c6ae13b514a863f2277f8876f826e0a4e8dc1834a2400e17077b8e3b32a5bc",
    ("normal", 3000, 7): "8e75a21be5dc5433b33211a736f4459c36ba3db590ba979caf0bfa03779fe368",
    ("swing25", 3000, 7): "2bad00e5a204a7108f6edaf13477a379ecdbe2b810c78a3fe4ba63e893c28902",
    ("swing40", 3000, 7): "76f57914c8972261fc64096547426d0da65e5bba76ae73292d1b0edf0bf0aaae",
    ("flash", 3000, 7): "0bbef3fdb4592fdd57266dc0ccbb709fa9938e62aed2a14aee6a9a24ae82f206",
}


@pytest.mark.parametrize(("regime", "n", "seed"), list(BENCHMARK_DIGESTS))
def test_benchmark_streams_are_unchanged_by_the_move(regime, n, seed):
    msgs, info = benchmark_stream(regime, n, seed)
    assert len(msgs) == n and _digest(msgs) == BENCHMARK_DIGESTS[regime, n, seed]
    # the padding is zeroed, so the raw bytes are as deterministic as the fields
    assert msgs.tobytes() == benchmark_stream(regime, n, seed)[0].tobytes()


def test_benchmark_stream_summaries_are_unchanged_by_the_move():
    assert benchmark_stream("crash", 3000, 7)[1] == {
        "mix": "limit 79%, amend 6%, cancel 5%, market 5%, ioc 3%, stop_market 2%",
        "resting_mean": 24, "resting_final": 54, "trades": 2288, "rejected": 0,
        "mid_start": 999986, "mid_end": 959986}


def test_benchmark_stream_refuses_unknown_regimes_and_sizes():
    assert BENCHMARK_REGIMES == ("mixed", "deep", "crash", "static", "normal", "swing25",
                                 "swing40", "flash")
    with pytest.raises(ValueError, match="regime = 'calm' is not one of mixed, deep, crash, "
                                         "static, normal, swing25, swing40, flash"):
        benchmark_stream("calm", 10, 1)
    with pytest.raises(ValueError, match="n = 0"):
        benchmark_stream("mixed", 0, 1)
    with pytest.raises(ValueError, match="seed = -1"):
        benchmark_stream("mixed", 10, -1)


# ------------------------------------------------------------------------------ docs
def test_the_example_in_docs_flows_md_runs():
    text = (Path(__file__).parent.parent / "docs" / "flows.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/flows.md", "exec"), namespace)
    book = namespace["book"]
    assert book.best_bid() is not None and book.best_ask() is not None
    assert namespace["sent"] > 0
