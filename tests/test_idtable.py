"""The order id table (orderbook/_idtable.pxd) under churn, through the book.

Erases leave tombstones that probes pass over and inserts reuse, and a table that fills with
them is rebuilt at the same size; these tests churn ids the way a long-lived book does (adds
and cancels in every order, ids reused, sequential and scattered) and check every lookup the
book makes through the table (``in``, ``order``, a cancel of a dead id) against a set.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderbook import OrderBook, UnknownOrderError

BUY, SELL = 1, -1


def _place(book, oid):
    # bids below 1,000 and asks above: nothing ever trades, so only cancels take ids out
    if oid & 1:
        book.limit(oid, BUY, 999 - oid % 97, 1 + oid % 5, 0, events=False)
    else:
        book.limit(oid, SELL, 1_001 + oid % 89, 1 + oid % 5, 0, events=False)


def _check(book, live, probes):
    assert book.n_orders == len(live)
    for oid in probes:
        assert (oid in book) == (oid in live)
        if oid in live:
            assert book.order(oid).order_id == oid


@pytest.mark.parametrize("spread", [1, 7919, 2**40 + 3])
def test_a_million_adds_and_cancels_keep_every_lookup_right(spread):
    # a steady few thousand live ids, a million operations: the table rebuilds in place many
    # times over, as tombstones fill it
    rng = np.random.default_rng(spread)
    book, live, order = OrderBook(), set(), []
    for step in range(200_000):
        if len(live) < 3_000 or rng.random() < 0.5:
            oid = int(step * spread % (2**62))
            _place(book, oid)
            live.add(oid)
            order.append(oid)
        else:
            k = int(rng.integers(len(order)))
            oid = order[k]
            order[k] = order[-1]
            order.pop()
            book.cancel(oid, events=False)
            live.discard(oid)
        if step % 20_000 == 0:
            _check(book, live, list(live)[:500] + [int(x) for x in rng.integers(0, 2**62, 200)])
    _check(book, live, list(live) + order[:10])
    for oid in list(live):
        book.cancel(oid, events=False)
    assert book.n_orders == 0 and not any(oid in book for oid in order)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=400))
def test_reused_ids_in_a_small_space(ops):
    # ids 0..40 added and cancelled in any order: a tombstone's id comes back, an insert reuses
    # a tombstone, and a cancel of a dead id is refused without touching the table
    book, live = OrderBook(), set()
    for add, oid in ops:
        if add and oid not in live:
            _place(book, oid)
            live.add(oid)
        elif add:
            continue
        elif oid in live:
            book.cancel(oid, events=False)
            live.discard(oid)
        else:
            with pytest.raises(UnknownOrderError):
                book.cancel(oid)
        _check(book, live, range(41))
