"""The checkers and the differential harness of orderbook/testing/.

Each checker must pass on valid states (the compiled and the reference implementations) and
must catch a broken one: the broken states are made by corrupting a reference book's or
engine's internals, or by a test double that reports one query wrong, and each test asserts
the name of the invariant the checker reports and the values in its message.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from orderbook import Engine, OrderBook
from orderbook.events import (
    INSURANCE_FUND,
    MESSAGE_DTYPE,
    STOP_DTYPE,
    EventKind,
    Kind,
    OrderInfo,
    Reason,
    Side,
    events_to_array,
)
from orderbook.testing import (
    InvalidOrder,
    InvariantError,
    Message,
    ReferenceEngine,
    ReferenceOrderBook,
    assert_rejected,
    assert_same_events,
    check_accounts,
    check_book,
    compare_with_reference,
    message_array,
)

B, S = Side.BUY, Side.SELL
TIERS = [(None, 50_000, 100_000)]  # MM 5 %, IM 10 % of the notional


def raises(invariant: str, match: str = ""):
    """pytest.raises for an InvariantError of ``invariant`` whose message matches ``match``."""
    return pytest.raises(InvariantError, match=re.escape(f"{invariant}: ") + "(?s:.*)" + match)


class Double:
    """A book double: the queries of a real book, with some replaced by ``overrides``."""

    def __init__(self, book, **overrides):
        self._book = book
        self._overrides = overrides

    def __getattr__(self, name):
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._book, name)

    def __contains__(self, order_id):
        return order_id in self._book


def two_sided(book_cls=ReferenceOrderBook):
    """Bids 1 (3 lots) and 2 (2 lots) at 100, FIFO; ask 3 (4 lots) at 101; and their events."""
    book = book_cls()
    events = book.limit(1, B, 100, 3) + book.limit(2, B, 100, 2) + book.limit(3, S, 101, 4)
    return book, events


# ------------------------------------------------------------------------------ check_book


@pytest.mark.parametrize("book_cls", [OrderBook, ReferenceOrderBook])
def test_check_book_passes_on_a_valid_book_with_stops_and_its_log(book_cls):
    book, events = two_sided(book_cls)
    events += book.market(4, S, 1)              # trade at 100: order 1 has 2 left
    events += book.stop_market(5, S, 95, 1)
    events += book.stop_limit(6, B, 105, 106, 2)
    events += book.amend(2, 100, 1)             # keeps priority
    events += book.amend(1, 100, 5)             # requeued behind 2
    check_book(book, events)
    check_book(book, events_to_array(events))


def test_invariant_error_is_an_assertion_error_with_the_invariant_name():
    book, _ = two_sided()
    with pytest.raises(AssertionError) as info:
        check_book(Double(book, n_orders=5))
    assert isinstance(info.value, InvariantError) and info.value.invariant == "n_orders"


def test_check_book_catches_a_crossed_book():
    book, _ = two_sided()
    level = book._asks.pop(101)      # move the ask below the bid, behind the book's back
    level.orders[3].price = 99
    book._asks[99] = level
    with raises("uncrossed book", "best bid 100 >= best ask 99"):
        check_book(book)


def test_check_book_catches_fifo_broken_within_a_level_given_the_log():
    book, events = two_sided()
    level = book._bids[-100]
    level.orders = {2: level.orders[2], 1: level.orders[1]}  # 2 jumped ahead of 1
    check_book(book)  # the snapshot alone cannot show arrival order
    with raises("FIFO within a level", r"order 1 \(queued at seq 0\) is behind order 2"):
        check_book(book, events)


def test_check_book_catches_a_level_total_that_is_not_the_sum_of_its_orders():
    book, _ = two_sided()
    book._bids[-100].total += 1
    with raises("bid level quantities", r"l2\(\) gives \[6\], the orders in l3\(\) give \[5\]"):
        check_book(book)


def test_check_book_catches_an_order_resting_with_no_quantity():
    book, _ = two_sided()
    order = book._asks[101].orders[3]
    book._asks[101].total -= order.qty
    order.qty = 0
    with raises("positive resting quantity", "order 3 rests with qty 0 lots"):
        check_book(book)


def test_check_book_catches_bids_after_asks_and_price_priority():
    book, _ = two_sided()
    rows = book.l3()
    with raises("bids before asks"):
        check_book(Double(book, l3=lambda: rows[::-1]))
    with raises("price priority in l3", "order 5 at 101 follows a bid at 100"):
        worse_first = np.concatenate([rows[:2], rows[:1], rows[2:]])
        worse_first[2] = (5, 0, 101, 1, 1)
        check_book(Double(book, l3=lambda: worse_first))


def test_check_book_catches_an_id_listed_twice():
    book, _ = two_sided()
    rows = book.l3()
    with raises("unique order ids", r"\[1\]"):
        check_book(Double(book, l3=lambda: np.concatenate([rows[:1], rows])))


@pytest.mark.parametrize("query, value, invariant", [
    ("n_orders", 5, "n_orders"),
    ("n_stops", 1, "n_stops"),
    ("best_bid", lambda: 99, "best bid"),
    ("best_ask", lambda: None, "best ask"),
    ("spread", lambda: 2, "spread"),
    ("quantity_at", lambda side, price: 0, "quantity_at"),
    ("order", lambda oid: OrderInfo(oid, 0, 1, 1, 100, 0, 99), "order() of a live order"),
])
def test_check_book_catches_a_query_that_disagrees_with_the_snapshot(query, value, invariant):
    book, _ = two_sided()
    check_book(Double(book))
    with raises(invariant):
        check_book(Double(book, **{query: value}))


def test_check_book_catches_stops_out_of_trigger_order():
    book = ReferenceOrderBook()
    book.stop_market(5, S, 95, 1)
    book.stop_market(6, S, 90, 1)
    book._live[5].stop_price = 80   # now listed first though it triggers after 6
    with raises("stop trigger order", "stop 6 at 90 follows one at 80"):
        check_book(book)


def test_check_book_catches_a_stop_the_last_trade_should_have_triggered():
    book, _ = two_sided()
    book.stop_market(7, B, 110, 1)
    book.last_price = 120
    with raises("no armed stop already triggered", "buy stop 7 at 110 is still armed after a "
                                                   "trade at 120"):
        check_book(book)


def test_check_book_catches_a_malformed_stop():
    book = ReferenceOrderBook()
    book.stop_limit(5, S, 95, 94, 1)
    bad = book.stops()
    bad["kind"] = Kind.LIMIT
    with raises("stop kind", "kind 1"):
        check_book(Double(book, stops=lambda: bad))
    assert bad.dtype == STOP_DTYPE


def test_check_book_catches_a_log_that_does_not_give_the_book():
    book, events = two_sided()
    wrong_qty = [ev._replace(qty=9) if ev.order_id == 2 else ev for ev in events]
    with raises("remaining quantity from the event log", r"\(0, 1, 100, 2\), the events give "
                                                         r"\(0, 1, 100, 9\)"):
        check_book(book, wrong_qty)
    with raises("resting orders match the event log", r"l3\(\) has \[1, 2, 3\], the events "
                                                      r"leave \[1, 3\] resting"):
        check_book(book, [ev for ev in events if ev.order_id != 2])
    with raises("event seq increases"):
        check_book(book, events[::-1])


# -------------------------------------------------------------------------- check_accounts


def scripted(engine_cls=ReferenceEngine):
    """An LP (100), user 1 long 10 at 100 with 100 of collateral, user 2 who bought 2 at 101."""
    eng = engine_cls(tiers=TIERS, taker_fee_ppm=1_000, maker_fee_ppm=500)
    eng.add_account(100, 10**6, exempt=True)
    eng.add_account(1, 100)
    eng.add_account(2, 1_000)
    eng.seed_position(1, 100, 100, 10)
    eng.limit(1, B, 99, 5, 100)
    eng.limit(2, S, 101, 5, 100)
    eng.market(3, B, 2, 2)   # fees: taker ceil(202 * 0.1 %) = 1, maker ceil(202 * 0.05 %) = 1
    return eng


@pytest.mark.parametrize("engine_cls", [Engine, ReferenceEngine])
def test_check_accounts_passes_through_a_liquidation(engine_cls):
    eng = scripted(engine_cls)
    assert eng.fees_collected == 2
    check_accounts(eng, settled=True)
    eng.limit(4, B, 90, 50, 100)
    eng.market(5, S, 10, 2)   # the mark falls to 90: user 1 is liquidatable (E 0 < MM 45)
    check_accounts(eng)
    with raises("no liquidatable account after liquidate()", "account 1 has equity 0 < "
                                                              "maintenance margin 45"):
        check_accounts(eng, settled=True)
    eng.liquidate()
    check_accounts(eng, settled=True)


def test_check_accounts_catches_money_created_from_nothing():
    eng = scripted()
    eng._accounts[1].collateral += 1
    # deposits 10**6 + 100 + 1000 = 1001100; collateral 999999 (LP, after a maker fee of 1)
    # + 101 + 999 (after a taker fee of 1) = 1001099; costs: longs 1000 + 202, short 1202;
    # fees 2: 1001099 + 0 + 2 = 1001101, one quote unit too many
    with raises("money conservation", r"1001099 \+ short costs - long costs 0 \+ "
                                      "fees_collected 2 = 1001101 != total_deposits 1001100"):
        check_accounts(eng)


def test_check_accounts_catches_fees_collected_twice():
    eng = scripted()
    eng.fees_collected += 2
    with raises("money conservation", "fees_collected 4"):
        check_accounts(eng)


def test_check_accounts_catches_positions_that_do_not_net_to_zero():
    eng = scripted()
    eng._accounts[2].pos(0).position += 1
    with raises("positions sum to zero", "sum to 1 lots"):
        check_accounts(eng)


def test_check_accounts_catches_a_wrong_open_interest():
    class Engine2(ReferenceEngine):
        def open_interest(self):
            return super().open_interest() + 1

    eng = Engine2(tiers=TIERS)
    eng.add_account(100, 10**6, exempt=True)
    eng.add_account(1, 100)
    eng.seed_position(1, 100, 100, 3)
    with raises("open interest", r"open_interest\(\) is 4, the longs hold 3 lots"):
        check_accounts(eng)


def test_check_accounts_catches_a_negative_fund_without_recorded_bad_debt():
    eng = scripted()
    eng._accounts[INSURANCE_FUND].collateral -= 50   # moved to the LP: conservation holds
    eng._accounts[100].collateral += 50
    with raises("negative fund is recorded bad debt", "insurance fund -50"):
        check_accounts(eng)


def test_check_accounts_catches_a_reserve_on_a_cross_account_and_cost_when_flat():
    eng = scripted()
    eng._accounts[2].reserve += 5
    eng.total_deposits += 5
    with raises("reserve", r"account\(2\) has reserve 5 \(isolated=False\)"):
        check_accounts(eng)
    eng = scripted()
    eng.add_account(3, 10)
    eng._accounts[3].pos(0).cost = 7   # a flat account's cost is not money, but must be 0
    with raises("cost of a position", "position 0 lots and cost 7"):
        check_accounts(eng)


def test_check_accounts_catches_account_fields_that_disagree_with_the_docs():
    class Misreporting(ReferenceEngine):
        field = None

        def account(self, owner):
            info = super().account(owner)
            if owner == 1 and self.field:
                return info._replace(**{self.field: getattr(info, self.field) + 3})
            return info

    eng = scripted(Misreporting)
    check_accounts(eng)
    for field, invariant in (("liquidation_price", "liquidation price"),
                             ("bankruptcy_price", "bankruptcy price"),
                             ("maintenance_margin", "margin from the tiers"),
                             ("equity", "money conservation at the mark")):
        eng.field = field
        with raises(invariant):
            check_accounts(eng)


def test_check_accounts_catches_an_exempt_account_in_the_queue():
    class Queue(ReferenceEngine):
        def queue(self):
            return [100]

    with raises("queue holds liquidatable kinds of account", r"holds 100"):
        check_accounts(scripted(Queue))


# -------------------------------------------------------------- compare_with_reference


SCRIPT = [Message(Kind.LIMIT, 1, B, 100, 3), Message(Kind.LIMIT, 2, S, 101, 2, owner=1),
          Message(Kind.MARKET, 3, S, qty=4), Message(Kind.CANCEL, 9),
          Message(Kind.STOP_LIMIT, 4, S, 98, 2, stop_price=99), Message(Kind.AMEND, 2, 0, 102, 1)]


@pytest.mark.parametrize("path", ["call", "batch"])
def test_compare_with_reference_passes_and_returns_the_events(path):
    msgs = SCRIPT if path == "call" else SCRIPT[:3] + SCRIPT[4:]
    events = compare_with_reference(msgs, path=path)
    assert [ev.kind for ev in events[:2]] == [EventKind.ACCEPTED, EventKind.ACCEPTED]
    assert compare_with_reference(message_array(SCRIPT), path="batch")[-1].kind == \
        EventKind.AMENDED


class Skewed(ReferenceOrderBook):
    """A book that reports every trade one tick high."""

    def _emit(self, kind, reason, side, order_id, owner, maker_id=0, maker_owner=0, price=0,
              stop_price=0, qty=0):
        price += kind == EventKind.TRADE
        super()._emit(kind, reason, side, order_id, owner, maker_id, maker_owner, price,
                      stop_price, qty)


class Forgetful(ReferenceOrderBook):
    """A book whose best_bid() forgets the bids."""

    def best_bid(self):
        return None


def test_compare_with_reference_catches_different_events():
    with raises("same outcome as the reference", r"message 2 Message\(Kind.MARKET"):
        compare_with_reference(SCRIPT, book_cls=Skewed)
    with raises("same events", "event 3 differs"):
        compare_with_reference(SCRIPT[:3], book_cls=Skewed, path="batch")


def test_compare_with_reference_catches_a_different_state():
    with raises("same state as the reference", "best_bid is None in the book, 100 in the "
                                                "reference"):
        compare_with_reference(SCRIPT[:1], book_cls=Forgetful)


def test_compare_with_reference_catches_a_different_exception():
    class Lenient(ReferenceOrderBook):
        def cancel(self, order_id):
            return []

        def submit(self, kind, order_id, *args, **kwargs):
            if kind == Kind.CANCEL and order_id not in self:
                return []
            return super().submit(kind, order_id, *args, **kwargs)

    with raises("same outcome as the reference", r"raised KeyError"):
        compare_with_reference(SCRIPT, book_cls=Lenient)


def test_assert_same_events_names_the_first_difference():
    book, events = two_sided()
    assert_same_events(events, events_to_array(events))
    with raises("same events", "event 1 differs"):
        assert_same_events(events, [events[0], events[1]._replace(qty=7), events[2]])
    with raises("same events", "left has 3 events, right 2"):
        assert_same_events(events, events[:2])


# ------------------------------------------------------------------------ messages, cases


def test_message_repr_is_python_that_rebuilds_it():
    m = Message(Kind.STOP_LIMIT, 4, S, 98, 2, owner=1, stop_price=99)
    assert repr(m) == ("Message(Kind.STOP_LIMIT, order_id=4, side=Side.SELL, price=98, qty=2, "
                       "owner=1, stop_price=99)")
    assert eval(repr(m), {"Message": Message, "Kind": Kind, "Side": Side}) == m
    assert repr(Message(0, 1, 7)) == "Message(0, order_id=1, side=7)"


def test_message_array_refuses_values_numpy_would_mangle():
    arr = message_array(SCRIPT)
    assert arr.dtype == MESSAGE_DTYPE and arr["kind"].tolist() == [1, 1, 2, 8, 7, 9]
    for bad in (Message(Kind.LIMIT, 1, B, 100.5, 1), Message(Kind.LIMIT, 1, 300, 100, 1),
                Message(Kind.LIMIT, 2**63, B, 100, 1), Message(Kind.LIMIT, 1, True, 100, 1)):
        assert not bad.representable()
        with pytest.raises(ValueError, match="cannot be a MESSAGE_DTYPE row"):
            message_array([bad])


@pytest.mark.parametrize("engine_cls", [Engine, ReferenceEngine])
def test_message_submits_to_an_engine(engine_cls):
    eng = scripted(engine_cls)
    events = Message(Kind.LIMIT, 7, B, 98, 1, owner=2).submit(eng)
    assert events[0].kind == EventKind.ACCEPTED and 7 in eng.book


def test_assert_rejected_catches_a_wrong_claim():
    valid = InvalidOrder((), Message(Kind.LIMIT, 1, B, 100, 1), Reason.INVALID_QTY, ValueError)
    with raises("rejection by exception", "returned"):
        assert_rejected(OrderBook(), valid)
    with raises("rejection by event", "expected one REJECTED"):
        assert_rejected(OrderBook(), valid, path="batch")
    wrong_type = InvalidOrder((), Message(Kind.CANCEL, 1), Reason.UNKNOWN_ORDER, ValueError)
    with raises("rejection by exception", "raised KeyError"):
        assert_rejected(OrderBook(), wrong_type)
    assert_rejected(OrderBook(), InvalidOrder((), Message(Kind.CANCEL, 1),
                                              Reason.UNKNOWN_ORDER, KeyError))


# ------------------------------------------------------------------ docs/testing.md example


def _docs_example() -> str:
    text = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_the_example_in_docs_testing_md_runs():
    namespace: dict = {}
    exec(compile(_docs_example(), "docs/testing.md", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 5
    for test in tests:
        # the point is that the example runs as written; a few examples each show that
        settings(max_examples=10)(test)()


@pytest.mark.parametrize("engine_cls", [Engine, ReferenceEngine])
def test_check_accounts_lets_a_resting_fill_carry_a_seeded_position_past_max_position(
        engine_cls):
    # Found by the venue machine in CI: max_position bounds what an order may lead to when it
    # is sent, and seed_position ignores resting orders, so an LP's bid that rested before a
    # seed to max_position fills one lot past it. The engines allow it (docs/liquidation.md);
    # the checker holds the bound every position keeps, its int64 notional at max_price.
    eng = engine_cls(max_position=10, check_initial_margin=False)
    eng.add_account(100, 10**9, exempt=True)
    eng.add_account(1, 10**6)
    eng.add_account(2, 10**6)
    eng.limit(1, 1, 60, 1, 100)                 # the LP's bid rests
    eng.seed_position(100, 1, 90, 10)           # the LP long 10 = max_position
    eng.market(2, -1, 1, 2)                     # account 2 sells into the bid
    assert eng.account(100).position == 11
    check_accounts(eng)
