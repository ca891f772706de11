"""Behavioural specification of matching, checked against the engine and the reference.

The rules of docs/semantics.md: FIFO within a price level and levels best first, amends and the
priority they keep or lose, order ids and liveness, IOC, market and FOK orders, post-only,
self-trade prevention, stops (arming, triggering, cascades, their order), int64 limits on prices
and on the quantity at one level or stop level, quantity conservation, and the id table under
churn. OrderBook's Python surface (bad input, units, the batch path, refusals, queries, copies)
is specified in test_book.py.

Every test takes the ``book`` or ``book_cls`` fixture, so it runs once per implementation.
Expected events are computed by hand from docs/semantics.md and compared field by field; the
helpers are in tests/book_helpers.py.
"""

import random

import pytest
from book_helpers import (
    B,
    S,
    accepted,
    amended,
    cancelled,
    evs,
    l3,
    l3_ids,
    msg,
    rejected,
    rest,
    state,
    trade,
    triggered,
)

from orderbook.events import (
    INT64_MAX,
    STOP_DTYPE,
    AmendRule,
    EventKind,
    Kind,
    Reason,
    SelfTradePrevention,
    array_to_events,
    messages,
)

# --------------------------------------------------------------------------- FIFO and levels


def test_cancel_head_and_middle_of_fifo_queue_then_sweep_trades_survivors_in_arrival_order(book):
    rest(book, *[(i, B, 100, 10) for i in range(1, 6)])
    assert evs(book.cancel(1)) == [cancelled(1, "USER", B, 100, 10)]
    assert evs(book.cancel(3)) == [cancelled(3, "USER", B, 100, 10)]
    assert evs(book.market(9, S, 30)) == [
        accepted(9, S, 0, 30), trade(9, 2, S, 100, 10), trade(9, 4, S, 100, 10),
        trade(9, 5, S, 100, 10),
    ]
    assert book.n_orders == 0


def test_scattered_cancels_in_deep_queue_keep_fifo_of_the_rest(book):
    rest(book, *[(i, S, 500, 1 + i % 4) for i in range(1, 201)])
    for i in range(3, 201, 3):
        book.cancel(i)
    survivors = [i for i in range(1, 201) if i % 3]
    total = sum(1 + i % 4 for i in survivors)
    assert book.quantity_at(S, 500) == total
    events = book.market(999, B, total)
    trades = [e for e in events if e.kind == EventKind.TRADE]
    assert [(e.maker_id, e.qty) for e in trades] == [(i, 1 + i % 4) for i in survivors]
    assert book.best_ask() is None


def test_multi_level_sweep_ending_on_a_level_boundary_removes_levels_and_next_becomes_best(book):
    rest(book, (1, S, 100, 2), (2, S, 100, 1), (3, S, 101, 3), (4, S, 102, 4))
    assert evs(book.limit(9, B, 105, 6)) == [
        accepted(9, B, 105, 6), trade(9, 1, B, 100, 2), trade(9, 2, B, 100, 1),
        trade(9, 3, B, 101, 3),
    ]
    assert book.best_ask() == 102
    assert book.best_bid() is None  # fully filled: nothing rests
    assert book.quantity_at(S, 100) == 0 and book.quantity_at(S, 101) == 0
    assert list(book.l2().ask_price) == [102]
    assert book.last_price == 101


@pytest.mark.parametrize("side", [B, S])
def test_non_ioc_limit_residual_becomes_new_best_price_on_its_side(book, side):
    # Mirror prices around 1000 so one scenario covers both sides.
    p = lambda off: 1000 + off * side  # noqa: E731  (more aggressive = larger offset)
    rest(book, (1, side, p(-5), 4), (2, -side, p(1), 1))
    assert evs(book.limit(9, side, p(2), 3)) == [
        accepted(9, side, p(2), 3), trade(9, 2, side, p(1), 1)]
    best = book.best_bid() if side == B else book.best_ask()
    assert best == p(2)
    assert book.quantity_at(side, p(2)) == 2
    assert (book.best_ask() if side == B else book.best_bid()) is None


def test_cancelling_best_level_leaves_no_phantom_best_price(book):
    rest(book, (1, B, 100, 5), (2, B, 99, 5), (3, S, 105, 1))
    book.cancel(1)
    assert book.best_bid() == 99
    assert book.spread() == 6
    book.cancel(2)
    assert book.best_bid() is None
    assert book.spread() is None and book.mid() is None
    assert book.quantity_at(B, 100) == 0 and book.quantity_at(B, 99) == 0
    assert len(book.l2().bid_price) == 0
    assert book.market(9, S, 1)[-1].reason == Reason.IOC_RESIDUAL  # nothing left to hit


def test_marketable_limit_stops_at_its_own_price_and_rests_the_rest(book):
    rest(book, (1, S, 100, 2), (2, S, 101, 2), (3, S, 102, 2))
    assert evs(book.limit(9, B, 101, 6)) == [
        accepted(9, B, 101, 6), trade(9, 1, B, 100, 2), trade(9, 2, B, 101, 2)]
    assert l3(book) == [(9, B, 101, 2), (3, S, 102, 2)]


def test_one_order_sweeps_five_thousand_makers(book):
    rest(book, *[(i, S, 1000 + (i - 1) // 100, 2) for i in range(1, 5001)])
    events = book.market(0, B, 10_000)
    trades = [e for e in events if e.kind == EventKind.TRADE]
    assert len(trades) == 5000
    assert sum(e.qty for e in trades) == 10_000
    assert [e.maker_id for e in trades] == list(range(1, 5001))
    assert events[-1].kind == EventKind.TRADE  # no residual
    assert book.best_ask() is None and book.n_orders == 0
    assert book.last_price == 1049


# --------------------------------------------------------------------------- amend


def test_amend_buy_up_through_asks_fills_at_makers_prices(book):
    rest(book, (1, S, 101, 2), (2, S, 102, 2), (10, B, 99, 3))
    assert evs(book.amend(10, 102, 3)) == [
        amended(10, "REQUEUED", B, 102, 3), trade(10, 1, B, 101, 2), trade(10, 2, B, 102, 1)]
    assert l3(book) == [(2, S, 102, 1)]


def test_amend_sell_down_through_bids_fills_at_makers_prices(book):
    rest(book, (1, B, 99, 2), (2, B, 98, 2), (10, S, 101, 3))
    assert evs(book.amend(10, 98, 3)) == [
        amended(10, "REQUEUED", S, 98, 3), trade(10, 1, S, 99, 2), trade(10, 2, S, 98, 1)]
    assert l3(book) == [(2, B, 98, 1)]


def test_amend_across_the_book_rests_its_residual_at_the_new_price(book):
    rest(book, (1, S, 101, 2), (10, B, 99, 5))
    assert evs(book.amend(10, 101, 5)) == [
        amended(10, "REQUEUED", B, 101, 5), trade(10, 1, B, 101, 2)]
    assert l3(book) == [(10, B, 101, 3)]


def test_amending_one_of_two_same_price_orders_keeps_the_other_and_its_priority(book):
    rest(book, (1, B, 100, 5), (2, B, 100, 5))
    book.amend(1, 99, 5)
    assert l3(book) == [(2, B, 100, 5), (1, B, 99, 5)]
    rest(book, (3, B, 100, 1))
    book.amend(3, 100, 9)  # requeued at the back of its level, behind 2 still
    assert l3(book) == [(2, B, 100, 5), (3, B, 100, 9), (1, B, 99, 5)]
    assert [e.maker_id for e in book.market(8, S, 6) if e.kind == EventKind.TRADE] == [2, 3]


@pytest.mark.parametrize("rule, amend, reason, order", [
    (AmendRule.REDUCE_KEEPS_PRIORITY, (1, 100, 3), "KEPT_PRIORITY", [1, 2, 3]),
    (AmendRule.REDUCE_KEEPS_PRIORITY, (1, 100, 5), "KEPT_PRIORITY", [1, 2, 3]),
    (AmendRule.REDUCE_KEEPS_PRIORITY, (1, 100, 6), "REQUEUED", [2, 1, 3]),
    (AmendRule.REDUCE_KEEPS_PRIORITY, (1, 99, 5), "REQUEUED", [2, 3, 1]),
    (AmendRule.ALWAYS_REQUEUE, (1, 100, 3), "REQUEUED", [2, 1, 3]),
], ids=["reduce-keeps", "same-qty-keeps", "increase-loses", "price-change-loses",
        "always-requeue-reduce-loses"])
def test_amend_priority_rules(book_cls, rule, amend, reason, order):
    book = book_cls(amend_rule=rule)
    rest(book, (1, B, 100, 5), (2, B, 100, 5), (3, B, 99, 5))
    oid, price, qty = amend
    assert evs(book.amend(oid, price, qty)) == [amended(oid, reason, B, price, qty)]
    assert l3_ids(book) == order
    assert book.order(1).qty == qty and book.order(1).price == price


def test_partial_fill_then_cancel_cancels_the_remaining_qty(book):
    rest(book, (1, S, 100, 5))
    book.limit(9, B, 100, 2)
    assert evs(book.cancel(1)) == [cancelled(1, "USER", S, 100, 3)]
    assert book.n_orders == 0 and 1 not in book


def test_partial_fill_then_amend_compares_against_remaining_qty(book):
    rest(book, (1, S, 100, 5), (2, S, 100, 1))
    book.limit(9, B, 100, 2)  # 1 has 3 left
    assert book.order(1).qty == 3
    assert evs(book.amend(1, 100, 3)) == [amended(1, "KEPT_PRIORITY", S, 100, 3)]
    assert l3_ids(book) == [1, 2]
    assert evs(book.amend(1, 100, 4)) == [amended(1, "REQUEUED", S, 100, 4)]  # 4 > 3 left
    assert l3(book) == [(2, S, 100, 1), (1, S, 100, 4)]
    assert book.quantity_at(S, 100) == 5


# --------------------------------------------------------------------------- ids and liveness


def test_cancel_and_amend_after_full_fill_raise_key_error(book):
    rest(book, (1, S, 100, 5))
    book.limit(9, B, 100, 5)
    before = state(book)
    for call in (lambda: book.cancel(1), lambda: book.amend(1, 100, 1),
                 lambda: book.cancel(9), lambda: book.amend(9, 100, 1)):
        with pytest.raises(KeyError):
            call()
    assert state(book) == before


def test_cancel_and_amend_after_full_fill_are_rejected_in_a_batch(book):
    rest(book, (1, S, 100, 5))
    book.limit(9, B, 100, 5)
    out = array_to_events(book.process(messages([
        msg(Kind.CANCEL, 1), msg(Kind.AMEND, 1, price=100, qty=1)])))
    assert evs(out) == [rejected(1, "UNKNOWN_ORDER"), rejected(1, "UNKNOWN_ORDER")]
    assert book.n_orders == 0


def test_cancel_of_never_issued_id_on_empty_book_is_rejected(book):
    with pytest.raises(KeyError):
        book.cancel(42)
    assert book.message_count == 0 and book.event_count == 0
    out = array_to_events(book.process(messages([msg(Kind.CANCEL, 42)])))
    assert evs(out) == [rejected(42, "UNKNOWN_ORDER")]


def test_id_can_be_reused_after_cancel(book):
    rest(book, (1, B, 100, 5))
    book.cancel(1)
    assert evs(book.limit(1, S, 105, 2)) == [accepted(1, S, 105, 2)]
    assert l3(book) == [(1, S, 105, 2)]


def test_id_can_be_reused_after_fill_by_maker_and_taker(book):
    rest(book, (1, S, 100, 5))
    book.market(2, B, 5)
    assert evs(book.limit(1, B, 90, 1)) == [accepted(1, B, 90, 1)]
    assert evs(book.limit(2, B, 91, 1)) == [accepted(2, B, 91, 1)]


def test_reusing_a_live_id_raises_value_error_and_changes_nothing(book):
    rest(book, (1, B, 100, 5))
    book.stop_market(5, S, 90, 1)
    before = state(book)
    for call in (lambda: book.limit(1, B, 99, 1), lambda: book.ioc(1, S, 200, 1),
                 lambda: book.market(5, B, 1), lambda: book.limit(5, S, 200, 1),
                 lambda: book.stop_limit(1, B, 300, 300, 1)):
        with pytest.raises(ValueError):
            call()
    assert state(book) == before


def test_reusing_a_live_id_in_a_batch_is_rejected_duplicate_id(book):
    rest(book, (1, B, 100, 5))
    book.stop_market(5, S, 90, 1)
    out = array_to_events(book.process(messages([
        msg(Kind.LIMIT, 1, B, 99, 1), msg(Kind.MARKET, 5, B, qty=1),
        msg(Kind.LIMIT, 6, B, 98, 1)])))
    assert evs(out) == [rejected(1, "DUPLICATE_ID"), rejected(5, "DUPLICATE_ID"),
                        accepted(6, B, 98, 1)]


# --------------------------------------------------------------------------- IOC, market, FOK


def test_ioc_residual_is_cancelled_not_rested(book):
    rest(book, (1, S, 100, 2))
    assert evs(book.ioc(9, B, 100, 5)) == [
        accepted(9, B, 100, 5), trade(9, 1, B, 100, 2), cancelled(9, "IOC_RESIDUAL", B, 100, 3)]
    assert book.n_orders == 0 and 9 not in book


def test_market_residual_is_cancelled_with_price_zero(book):
    rest(book, (1, S, 100, 2), (2, S, 150, 1))
    assert evs(book.market(9, B, 5)) == [
        accepted(9, B, 0, 5), trade(9, 1, B, 100, 2), trade(9, 2, B, 150, 1),
        cancelled(9, "IOC_RESIDUAL", B, 0, 2)]
    assert book.n_orders == 0


def test_market_order_on_empty_book_is_accepted_then_cancelled(book):
    assert evs(book.market(9, S, 5)) == [
        accepted(9, S, 0, 5), cancelled(9, "IOC_RESIDUAL", S, 0, 5)]
    assert book.last_price is None and book.n_orders == 0


def test_fillable_fok_fills_completely(book):
    rest(book, (1, S, 100, 2), (2, S, 101, 2))
    assert evs(book.fok(9, B, 101, 3)) == [
        accepted(9, B, 101, 3), trade(9, 1, B, 100, 2), trade(9, 2, B, 101, 1)]
    assert l3(book) == [(2, S, 101, 1)]


def test_unfillable_fok_is_cancelled_and_book_unchanged(book):
    rest(book, (1, S, 100, 2), (2, S, 101, 2), (3, B, 95, 1))
    before = book.l3().tolist()
    assert evs(book.fok(9, B, 100, 3)) == [
        accepted(9, B, 100, 3), cancelled(9, "FOK_UNFILLABLE", B, 100, 3)]
    assert book.l3().tolist() == before
    assert book.last_price is None


# --------------------------------------------------------------------------- post-only


def test_post_only_rests_when_not_crossing(book):
    rest(book, (1, S, 101, 1))
    assert evs(book.post_only(9, B, 100, 2)) == [accepted(9, B, 100, 2)]
    assert l3(book) == [(9, B, 100, 2), (1, S, 101, 1)]


@pytest.mark.parametrize("side, price", [(B, 101), (B, 102), (S, 99), (S, 98)])
def test_post_only_that_would_take_is_rejected_and_book_unchanged(book, side, price):
    rest(book, (1, S, 101, 1), (2, B, 99, 1))
    before = book.l3().tolist()
    count = book.event_count
    assert evs(book.post_only(9, side, price, 2)) == [rejected(9, "POST_ONLY_WOULD_TAKE")]
    assert book.l3().tolist() == before
    assert book.event_count == count + 1 and 9 not in book


def test_amend_of_post_only_order_into_a_cross_is_rejected_and_order_unchanged(book):
    rest(book, (1, S, 101, 1))
    book.post_only(9, B, 100, 2)
    before = book.l3().tolist()
    info = book.order(9)
    assert evs(book.amend(9, 101, 2)) == [rejected(9, "POST_ONLY_WOULD_TAKE")]
    assert book.l3().tolist() == before and book.order(9) == info
    assert book.last_price is None


# --------------------------------------------------------------------------- self-trade prevention


@pytest.mark.parametrize("stp, expected, book_after", [
    (SelfTradePrevention.NONE,
     [trade(10, 1, B, 100, 3), trade(10, 2, B, 100, 3)],
     [(2, S, 100, 2)]),
    (SelfTradePrevention.CANCEL_TAKER,
     [trade(10, 1, B, 100, 3), cancelled(10, "SELF_TRADE", B, 100, 3)],
     [(2, S, 100, 5)]),
    (SelfTradePrevention.CANCEL_MAKER,
     [trade(10, 1, B, 100, 3), cancelled(2, "SELF_TRADE", S, 100, 5)],
     [(10, B, 100, 3)]),
    (SelfTradePrevention.CANCEL_BOTH,
     [trade(10, 1, B, 100, 3), cancelled(2, "SELF_TRADE", S, 100, 5),
      cancelled(10, "SELF_TRADE", B, 100, 3)],
     []),
], ids=["NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH"])
def test_self_trade_prevention(book_cls, stp, expected, book_after):
    # Maker 1 belongs to owner 8, maker 2 to owner 7; the taker belongs to owner 7.
    book = book_cls(stp=stp)
    rest(book, (1, S, 100, 3, 8), (2, S, 100, 5, 7))
    events = book.limit(10, B, 100, 6, owner=7)
    assert evs(events) == [accepted(10, B, 100, 6)] + expected
    assert l3(book) == book_after
    first_trade = events[1]
    assert (first_trade.owner, first_trade.maker_owner) == (7, 8)
    assert all(e.owner == 7 for e in events if e.kind == EventKind.CANCELLED)


# --------------------------------------------------------------------------- stops


def test_buy_stop_market_triggers_on_trade_at_or_above_stop(book):
    rest(book, (1, S, 100, 1), (2, S, 102, 1), (3, S, 103, 5))
    assert evs(book.stop_market(10, B, 101, 2)) == [accepted(10, B, 0, 2)]
    book.limit(20, B, 100, 1)  # trade at 100 < 101: still armed
    assert book.n_stops == 1
    events = book.limit(21, B, 102, 1)
    assert evs(events) == [
        accepted(21, B, 102, 1), trade(21, 2, B, 102, 1), triggered(10, B, 0, 2),
        trade(10, 3, B, 103, 2)]
    assert events[2].stop_price == 101
    assert book.n_stops == 0 and book.last_price == 103


def test_sell_stop_limit_triggers_on_trade_at_or_below_stop_and_rests_at_its_limit(book):
    rest(book, (1, B, 100, 1), (2, B, 99, 1), (3, B, 97, 5))
    accept = book.stop_limit(10, S, 99, 98, 3)
    assert evs(accept) == [accepted(10, S, 98, 3)] and accept[0].stop_price == 99
    book.limit(20, S, 100, 1)  # trade at 100 > 99: still armed
    assert 10 in book and book.order(10).kind == Kind.STOP_LIMIT
    events = book.limit(21, S, 99, 1)
    assert evs(events) == [accepted(21, S, 99, 1), trade(21, 2, S, 99, 1), triggered(10, S, 98, 3)]
    assert events[2].stop_price == 99
    assert l3(book) == [(3, B, 97, 5), (10, S, 98, 3)]


def test_triggered_stop_market_residual_is_cancelled_with_price_zero(book):
    rest(book, (1, S, 100, 1), (2, S, 101, 1))
    book.stop_market(10, B, 100, 5)
    assert evs(book.limit(20, B, 100, 1)) == [
        accepted(20, B, 100, 1), trade(20, 1, B, 100, 1), triggered(10, B, 0, 5),
        trade(10, 2, B, 101, 1), cancelled(10, "IOC_RESIDUAL", B, 0, 4)]


def test_stop_that_would_trigger_immediately_is_rejected(book):
    rest(book, (1, S, 100, 1))
    book.limit(2, B, 100, 1)  # last price 100
    assert evs(book.stop_market(10, B, 100, 1)) == [rejected(10, "STOP_WOULD_TRIGGER")]
    assert evs(book.stop_limit(11, S, 100, 90, 1)) == [rejected(11, "STOP_WOULD_TRIGGER")]
    assert evs(book.stop_market(12, S, 101, 1)) == [rejected(12, "STOP_WOULD_TRIGGER")]
    assert book.n_stops == 0
    assert evs(book.stop_market(10, B, 101, 1)) == [accepted(10, B, 0, 1)]
    assert evs(book.stop_limit(11, S, 99, 90, 1)) == [accepted(11, S, 90, 1)]
    assert book.n_stops == 2


def test_triggered_stops_run_after_the_triggering_order_finishes(book):
    rest(book, (1, B, 100, 1), (2, B, 99, 1), (3, B, 98, 10))
    book.stop_market(10, S, 100, 1)
    book.stop_market(11, S, 99, 1)
    assert evs(book.ioc(20, S, 99, 3)) == [
        accepted(20, S, 99, 3),
        trade(20, 1, S, 100, 1), triggered(10, S, 0, 1),
        trade(20, 2, S, 99, 1), triggered(11, S, 0, 1),
        cancelled(20, "IOC_RESIDUAL", S, 99, 1),
        trade(10, 3, S, 98, 1),
        trade(11, 3, S, 98, 1),
    ]
    assert book.n_stops == 0 and l3(book) == [(3, B, 98, 8)]


def test_stop_cascade_within_one_call(book):
    rest(book, (1, B, 100, 1), (2, B, 99, 1), (3, B, 98, 10))
    book.stop_market(10, S, 100, 1)
    book.stop_market(11, S, 99, 1)
    book.stop_limit(12, S, 98, 97, 20)
    events = book.market(20, S, 1)
    assert evs(events) == [
        accepted(20, S, 0, 1),
        trade(20, 1, S, 100, 1), triggered(10, S, 0, 1),
        trade(10, 2, S, 99, 1), triggered(11, S, 0, 1),
        trade(11, 3, S, 98, 1), triggered(12, S, 97, 20),
        trade(12, 3, S, 98, 9),
    ]
    assert [e.stop_price for e in events if e.kind == EventKind.STOP_TRIGGERED] == [100, 99, 98]
    assert len({e.msg for e in events}) == 1
    assert l3(book) == [(12, S, 97, 11)]
    assert book.n_stops == 0 and book.last_price == 98


def test_stops_trigger_order_sells_highest_first_then_buys_lowest_first(book):
    rest(book, (1, S, 100, 1))
    # Triggered sell stop-limits rest at 200 and buy stop-limits at 1, so nothing else trades.
    book.stop_limit(13, S, 100, 200, 1)
    book.stop_limit(15, B, 100, 1, 1)
    book.stop_limit(17, S, 90, 200, 1)
    book.stop_limit(11, S, 101, 200, 1)
    book.stop_limit(16, B, 105, 1, 1)
    book.stop_limit(14, B, 99, 1, 1)
    book.stop_limit(12, S, 100, 200, 1)
    assert [int(r["order_id"]) for r in book.stops()] == [11, 13, 12, 17, 14, 15, 16]
    assert book.stops().dtype == STOP_DTYPE
    events = book.limit(2, B, 100, 1)
    assert evs(events) == [
        accepted(2, B, 100, 1), trade(2, 1, B, 100, 1),
        triggered(11, S, 200, 1), triggered(13, S, 200, 1), triggered(12, S, 200, 1),
        triggered(14, B, 1, 1), triggered(15, B, 1, 1)]
    assert [int(r["order_id"]) for r in book.stops()] == [17, 16]
    assert l3(book) == [(14, B, 1, 1), (15, B, 1, 1),
                        (11, S, 200, 1), (13, S, 200, 1), (12, S, 200, 1)]


def test_cancel_of_an_armed_stop(book):
    book.stop_limit(10, B, 105, 106, 3)
    events = book.cancel(10)
    assert evs(events) == [cancelled(10, "USER", B, 106, 3)]
    assert events[0].stop_price == 105
    assert book.n_stops == 0 and 10 not in book and len(book.stops()) == 0


def test_amend_of_an_armed_stop_is_rejected_not_amendable(book):
    book.stop_market(10, S, 95, 3)
    before = book.stops().tolist()
    assert evs(book.amend(10, 96, 3)) == [rejected(10, "NOT_AMENDABLE")]
    assert book.stops().tolist() == before
    out = array_to_events(book.process(messages([msg(Kind.AMEND, 10, price=96, qty=3)])))
    assert evs(out) == [rejected(10, "NOT_AMENDABLE")]


# --------------------------------------------------------------------------- int64 limits


def test_price_at_int64_max_rests_and_trades(book):
    assert evs(book.limit(1, S, INT64_MAX, 5)) == [accepted(1, S, INT64_MAX, 5)]
    assert book.best_ask() == INT64_MAX
    assert evs(book.limit(2, B, INT64_MAX, 2)) == [
        accepted(2, B, INT64_MAX, 2), trade(2, 1, B, INT64_MAX, 2)]
    assert book.last_price == INT64_MAX
    assert book.quantity_at(S, INT64_MAX) == 3


def test_price_above_int64_raises_value_error(book):
    with pytest.raises(ValueError, match="price"):
        book.limit(1, S, 2**63, 5)
    assert book.n_orders == 0 and book.message_count == 0


def test_level_quantity_overflow_raises_value_error(book):
    book.limit(1, B, 100, 2**62)
    with pytest.raises(ValueError):
        book.limit(2, B, 100, 2**62)  # 2**63 > INT64_MAX at one level
    book.limit(2, B, 100, 2**62 - 1)  # exactly INT64_MAX is fine
    assert book.quantity_at(B, 100) == INT64_MAX
    before = state(book)
    with pytest.raises(ValueError):
        book.post_only(3, B, 100, 1)
    with pytest.raises(ValueError):
        book.amend(2, 100, 2**62)
    assert state(book) == before
    book.limit(3, B, 101, 2**62)  # another level is independent
    out = array_to_events(book.process(messages([msg(Kind.LIMIT, 4, B, 100, 1)])))
    assert evs(out) == [rejected(4, "QTY_OVERFLOW")]


def test_two_stops_at_one_stop_price_cannot_take_the_stop_level_past_int64(book_cls):
    book = book_cls()
    book.stop_market(1, B, 100, INT64_MAX - 1)
    with pytest.raises(ValueError, match="stop level at stop_price 100"):
        book.stop_market(2, B, 100, 2)
    out = array_to_events(book.process(messages([
        {"kind": Kind.STOP_LIMIT, "order_id": 3, "side": B, "price": 120, "stop_price": 100,
         "qty": 2}])))
    assert [(e.kind, e.reason) for e in out] == [(EventKind.REJECTED, Reason.QTY_OVERFLOW)]
    book.stop_market(4, B, 101, 2)            # another stop price is another level
    assert book.stops()["qty"].tolist() == [INT64_MAX - 1, 2]
    book.cancel(1)
    book.stop_market(2, B, 100, 2)
    assert book.n_stops == 2


# --------------------------------------------------------------------------- conservation


def test_quantity_is_conserved_per_order_over_a_random_script(book):
    rng = random.Random(20240531)
    kinds = [Kind.LIMIT] * 5 + [Kind.MARKET, Kind.IOC, Kind.FOK, Kind.POST_ONLY,
                                Kind.STOP_MARKET, Kind.STOP_LIMIT, Kind.CANCEL, Kind.CANCEL]
    events = []
    for oid in range(1, 1501):
        kind = rng.choice(kinds)
        if kind == Kind.CANCEL:
            live = [int(r["order_id"]) for r in book.l3()] + [int(r["order_id"])
                                                              for r in book.stops()]
            if live:
                events += book.cancel(rng.choice(live))
            continue
        side = rng.choice((B, S))
        price = rng.randint(95, 105)
        events += book.submit(kind, oid, side, price, rng.randint(1, 10),
                              owner=rng.randint(1, 5), stop_price=rng.randint(95, 105))
    submitted, traded, cancelled_qty, resting = {}, {}, {}, {}
    for e in events:
        if e.kind == EventKind.ACCEPTED:
            submitted[e.order_id] = submitted.get(e.order_id, 0) + e.qty
        elif e.kind == EventKind.TRADE:
            for oid in (e.order_id, e.maker_id):
                traded[oid] = traded.get(oid, 0) + e.qty
        elif e.kind == EventKind.CANCELLED:
            cancelled_qty[e.order_id] = cancelled_qty.get(e.order_id, 0) + e.qty
    for r in list(book.l3()) + list(book.stops()):
        resting[int(r["order_id"])] = int(r["qty"])
    assert sum(1 for e in events if e.kind == EventKind.TRADE) > 100  # the script did trade
    assert set(traded) | set(cancelled_qty) | set(resting) <= set(submitted)
    for oid, qty in submitted.items():
        assert qty == traded.get(oid, 0) + resting.get(oid, 0) + cancelled_qty.get(oid, 0), oid


# --------------------------------------------------------------------------- id table churn


def test_id_lookup_survives_heavy_churn_with_adversarial_ids(book_cls):
    # The compiled book's id table is open addressing with backward-shift deletion; sequential,
    # strided, negative and extreme ids, growth and long probe chains must all keep every live
    # id findable and every dead one absent.
    rng = random.Random(20261130)
    pools = [list(range(0, 3000)), [i << 32 for i in range(1, 1500)],
             [-i for i in range(1, 1500)], [INT64_MAX - i for i in range(1500)],
             [-(2**63) + i for i in range(1500)], [i * 1024 for i in range(1500)]]
    candidates = [i for p in pools for i in p]
    book, live = book_cls(), {}
    for step in range(12_000):
        oid = rng.choice(candidates)
        if oid in live and rng.random() < 0.6:
            book.cancel(oid)
            del live[oid]
        elif oid not in live:
            side = B if rng.random() < 0.5 else S
            price = rng.randrange(1, 50) if side == B else rng.randrange(60, 110)
            book.limit(oid, side, price, 1 + step % 7)
            live[oid] = (side, price)
        if step % 1000 == 0:
            assert book.n_orders == len(live)
            assert all(oid in book for oid in live)
    assert book.n_orders == len(live)
    for oid, (side, price) in live.items():
        info = book.order(oid)
        assert (info.side, info.price) == (side, price)
    dead = [i for i in candidates if i not in live]
    assert not any(i in book for i in dead)
    copy = book.copy()
    for oid in list(live)[::2]:
        copy.cancel(oid)
    assert book.n_orders == len(live) and all(oid in book for oid in live)
