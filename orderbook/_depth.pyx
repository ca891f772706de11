"""Reads of an order book's depth: walks over its price levels, off the matching path.

They copy the levels out (the L2 columns, the L3 and armed-stop arrays, the order lists a pickle
carries, one owner's ids) or add them up (resting quantity, market impact). No message of the
matching core (_matching.pyx) calls them; each runs in O(levels + orders walked), so they live
apart from the book's rules (_matching.pyx) and entry points (book.pyx). The C-level API is
declared in _depth.pxd; the book hands its containers in, so this module does not import it.
"""

from cython.operator cimport dereference as deref
from libc.stdint cimport int64_t, uint8_t
from libcpp.algorithm cimport sort
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

import numpy as np

from orderbook._price_ladder cimport Ladder, ladder_first, ladder_next, ladder_size
from orderbook._types cimport (
    BUY, NO_SLOT, SELL, L3Rec, Level, Order, StopRec, level_key, oid_t, owner_t, price_t,
    qty_t, slot_t,
)

from .events import L3_DTYPE, STOP_DTYPE, L2, Impact

__all__ = []


cdef inline price_t stop_price_of(unordered_map[slot_t, price_t]* stop_prices,
                                  slot_t slot) noexcept nogil:
    # As OrderBook.stop_price_of: 0 unless the order in ``slot`` is an armed stop.
    cdef unordered_map[slot_t, price_t].iterator it = stop_prices.find(slot)
    return 0 if it == stop_prices.end() else deref(it).second


cdef object l2_columns(Ladder* bids, Ladder* asks, int64_t depth):
    columns = []
    cdef Ladder* levels
    cdef Level* level
    cdef price_t key
    cdef int64_t i, count
    cdef int pass_, side
    cdef int64_t[::1] price, qty, orders
    for pass_ in range(2):
        side = BUY if pass_ == 0 else SELL
        levels = bids if pass_ == 0 else asks
        count = min(depth, ladder_size(levels))
        prices_arr = np.empty(count, dtype=np.int64)
        qty_arr = np.empty(count, dtype=np.int64)
        orders_arr = np.empty(count, dtype=np.int64)
        price, qty, orders = prices_arr, qty_arr, orders_arr
        level = ladder_first(levels, &key)
        for i in range(count):
            price[i] = level_key(side, key)
            qty[i] = level.total
            orders[i] = level.count
            level = ladder_next(levels, key, &key)
        columns += [prices_arr, qty_arr, orders_arr]
    return L2(*columns)


cdef object l3_rows(Ladder* bids, Ladder* asks, const Order* pool, int64_t count):
    # zeros, not empty: the dtype's padding bytes are part of the result's bytes (hashes)
    out = np.zeros(count, dtype=L3_DTYPE)
    cdef uint8_t[::1] raw
    if len(out) == 0:
        return out
    raw = out.view(np.uint8)
    cdef L3Rec* row = <L3Rec*>&raw[0]
    cdef Ladder* levels
    cdef Level* level
    cdef price_t key
    cdef slot_t slot
    cdef const Order* o
    cdef int pass_
    for pass_ in range(2):
        levels = bids if pass_ == 0 else asks
        level = ladder_first(levels, &key)
        while level != NULL:
            slot = level.head
            while slot != NO_SLOT:
                o = &pool[slot]
                row.order_id = o.order_id
                row.owner = o.owner
                row.price = o.price
                row.qty = o.qty
                row.side = o.side
                row += 1
                slot = o.next
            level = ladder_next(levels, key, &key)
    return out


cdef object stop_rows(Ladder* sell_stops, Ladder* buy_stops, const Order* pool,
                      unordered_map[slot_t, price_t]* stop_prices, int64_t count):
    out = np.zeros(count, dtype=STOP_DTYPE)
    cdef uint8_t[::1] raw
    if len(out) == 0:
        return out
    raw = out.view(np.uint8)
    cdef StopRec* row = <StopRec*>&raw[0]
    cdef Ladder* levels
    cdef Level* level
    cdef price_t key
    cdef slot_t slot
    cdef const Order* o
    cdef int pass_
    for pass_ in range(2):
        levels = sell_stops if pass_ == 0 else buy_stops
        level = ladder_first(levels, &key)
        while level != NULL:
            slot = level.head
            while slot != NO_SLOT:
                o = &pool[slot]
                row.order_id = o.order_id
                row.owner = o.owner
                row.stop_price = stop_price_of(stop_prices, slot)
                row.price = o.price
                row.qty = o.qty
                row.kind = o.kind
                row.side = o.side
                row += 1
                slot = o.next
            level = ladder_next(levels, key, &key)
    return out


cdef object resting_total(Ladder* levels, int side, price_t limit):
    cdef price_t level_price, key
    cdef Level* level = ladder_first(levels, &key)
    total = 0  # a Python int: a side's total may pass int64
    while level != NULL:
        level_price = level_key(side, key)
        if level_price < limit if side == BUY else level_price > limit:
            break
        total += level.total
        level = ladder_next(levels, key, &key)
    return total


cdef object impact_on(Ladder* opposite, int side, qty_t wanted):
    cdef qty_t filled = 0, take
    cdef price_t price = 0, key
    cdef Level* level = ladder_first(opposite, &key)
    cdef int64_t levels = 0
    notional = 0  # a Python int: price x lots passes int64 near the limits
    while level != NULL and filled < wanted:
        price = level_key(-side, key)
        take = min(wanted - filled, level.total)
        filled += take
        notional += <object>take * price
        levels += 1
        level = ladder_next(opposite, key, &key)
    average = notional / filled if filled else float("nan")
    return Impact(filled, notional, average, price if levels else 0, levels)


cdef price_t reach_price(Ladder* opposite, int side, qty_t wanted) noexcept nogil:
    # impact_on's walk without its Python totals, for the Engine's initial margin check.
    cdef price_t price = 0, key
    cdef Level* level = ladder_first(opposite, &key)
    while level != NULL:
        price = level_key(-side, key)
        if level.total >= wanted:
            break
        wanted -= level.total
        level = ladder_next(opposite, key, &key)
    return price


cdef tuple order_lists(Ladder* bids, Ladder* asks, Ladder* sell_stops,
                       Ladder* buy_stops, const Order* pool,
                       unordered_map[slot_t, price_t]* stop_prices):
    # Resting orders in priority order with their kind (post-only matters for amends), then
    # armed stops in trigger order: reinserting them in that order rebuilds every FIFO.
    cdef list resting = [], armed = []
    cdef Ladder* walk[4]
    walk[0], walk[1], walk[2], walk[3] = bids, asks, sell_stops, buy_stops
    cdef Ladder* levels
    cdef Level* level
    cdef price_t key
    cdef slot_t slot
    cdef Order o
    cdef int pass_
    for pass_ in range(4):
        levels = walk[pass_]
        level = ladder_first(levels, &key)
        while level != NULL:
            slot = level.head
            while slot != NO_SLOT:
                o = pool[slot]
                if pass_ < 2:
                    resting.append((o.order_id, o.owner, o.side, o.kind, o.price, o.qty))
                else:
                    armed.append((o.order_id, o.owner, o.side, o.kind, o.price,
                                  stop_price_of(stop_prices, slot), o.qty))
                slot = o.next
            level = ladder_next(levels, key, &key)
    return resting, armed


cdef void owner_ids(Ladder* bids, Ladder* asks, Ladder* sell_stops, Ladder* buy_stops,
                    const Order* pool, owner_t owner, vector[oid_t]* out) noexcept nogil:
    # Walks the levels rather than the id table: the table keeps the size of the most orders
    # ever live, the levels hold only the live ones. O(n + L + k log k) for n live orders on L
    # levels, k of them owner's.
    cdef Ladder* walk[4]
    walk[0], walk[1], walk[2], walk[3] = bids, asks, sell_stops, buy_stops
    cdef Ladder* levels
    cdef Level* level
    cdef price_t key
    cdef slot_t slot
    cdef int pass_
    out.clear()
    for pass_ in range(4):
        levels = walk[pass_]
        level = ladder_first(levels, &key)
        while level != NULL:
            slot = level.head
            while slot != NO_SLOT:
                if pool[slot].owner == owner:
                    out.push_back(pool[slot].order_id)
                slot = pool[slot].next
            level = ladder_next(levels, key, &key)
    sort(out.begin(), out.end())
