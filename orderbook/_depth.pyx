"""Reads of an order book's depth: walks over its price levels, off the matching path.

They copy the levels out (the L2 columns, the L3 and armed-stop arrays, the order lists a pickle
carries, one owner's ids) or add them up (resting quantity, market impact). No message of the
matching core (_matching.pyx) calls them; each runs in O(levels + orders walked), so they live
apart from the book's rules (_matching.pyx) and entry points (book.pyx). The C-level API is
declared in _depth.pxd; the book hands its containers in, so this module does not import it.
"""

from cython.operator cimport dereference as deref, preincrement as inc
from libc.stdint cimport int64_t, uint8_t
from libcpp.algorithm cimport sort
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

import numpy as np

from orderbook._types cimport (
    BUY, NO_SLOT, SELL, L3Rec, LevelMap, Order, StopRec, level_key, oid_t, owner_t, price_t,
    qty_t, slot_t,
)

from .events import L3_DTYPE, STOP_DTYPE, L2, Impact

__all__ = []


cdef inline price_t stop_price_of(unordered_map[slot_t, price_t]* stop_prices,
                                  slot_t slot) noexcept nogil:
    # As OrderBook.stop_price_of: 0 unless the order in ``slot`` is an armed stop.
    cdef unordered_map[slot_t, price_t].iterator it = stop_prices.find(slot)
    return 0 if it == stop_prices.end() else deref(it).second


cdef object l2_columns(LevelMap* bids, LevelMap* asks, int64_t depth):
    columns = []
    cdef LevelMap* levels
    cdef LevelMap.iterator it
    cdef int64_t i, count
    cdef int pass_, side
    cdef int64_t[::1] price, qty, orders
    for pass_ in range(2):
        side = BUY if pass_ == 0 else SELL
        levels = bids if pass_ == 0 else asks
        count = min(depth, <int64_t>levels.size())
        prices_arr = np.empty(count, dtype=np.int64)
        qty_arr = np.empty(count, dtype=np.int64)
        orders_arr = np.empty(count, dtype=np.int64)
        price, qty, orders = prices_arr, qty_arr, orders_arr
        it = levels.begin()
        for i in range(count):
            price[i] = level_key(side, deref(it).first)
            qty[i] = deref(it).second.total
            orders[i] = deref(it).second.count
            inc(it)
        columns += [prices_arr, qty_arr, orders_arr]
    return L2(*columns)


cdef object l3_rows(LevelMap* bids, LevelMap* asks, const Order* pool, int64_t count):
    # zeros, not empty: the dtype's padding bytes are part of the result's bytes (hashes)
    out = np.zeros(count, dtype=L3_DTYPE)
    cdef uint8_t[::1] raw
    if len(out) == 0:
        return out
    raw = out.view(np.uint8)
    cdef L3Rec* row = <L3Rec*>&raw[0]
    cdef LevelMap* levels
    cdef LevelMap.iterator it
    cdef slot_t slot
    cdef const Order* o
    cdef int pass_
    for pass_ in range(2):
        levels = bids if pass_ == 0 else asks
        it = levels.begin()
        while it != levels.end():
            slot = deref(it).second.head
            while slot != NO_SLOT:
                o = &pool[slot]
                row.order_id = o.order_id
                row.owner = o.owner
                row.price = o.price
                row.qty = o.qty
                row.side = o.side
                row += 1
                slot = o.next
            inc(it)
    return out


cdef object stop_rows(LevelMap* sell_stops, LevelMap* buy_stops, const Order* pool,
                      unordered_map[slot_t, price_t]* stop_prices, int64_t count):
    out = np.zeros(count, dtype=STOP_DTYPE)
    cdef uint8_t[::1] raw
    if len(out) == 0:
        return out
    raw = out.view(np.uint8)
    cdef StopRec* row = <StopRec*>&raw[0]
    cdef LevelMap* levels
    cdef LevelMap.iterator it
    cdef slot_t slot
    cdef const Order* o
    cdef int pass_
    for pass_ in range(2):
        levels = sell_stops if pass_ == 0 else buy_stops
        it = levels.begin()
        while it != levels.end():
            slot = deref(it).second.head
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
            inc(it)
    return out


cdef object resting_total(LevelMap* levels, int side, price_t limit):
    cdef LevelMap.iterator it = levels.begin()
    cdef price_t level_price
    total = 0  # a Python int: a side's total may pass int64
    while it != levels.end():
        level_price = level_key(side, deref(it).first)
        if level_price < limit if side == BUY else level_price > limit:
            break
        total += deref(it).second.total
        inc(it)
    return total


cdef object impact_on(LevelMap* opposite, int side, qty_t wanted):
    cdef LevelMap.iterator it = opposite.begin()
    cdef qty_t filled = 0, take
    cdef price_t price = 0
    cdef int64_t levels = 0
    notional = 0  # a Python int: price x lots passes int64 near the limits
    while it != opposite.end() and filled < wanted:
        price = level_key(-side, deref(it).first)
        take = min(wanted - filled, deref(it).second.total)
        filled += take
        notional += <object>take * price
        levels += 1
        inc(it)
    average = notional / filled if filled else float("nan")
    return Impact(filled, notional, average, price if levels else 0, levels)


cdef price_t reach_price(LevelMap* opposite, int side, qty_t wanted) noexcept nogil:
    # impact_on's walk without its Python totals, for the Engine's initial margin check.
    cdef LevelMap.iterator it = opposite.begin()
    cdef price_t price = 0
    while it != opposite.end():
        price = level_key(-side, deref(it).first)
        if deref(it).second.total >= wanted:
            break
        wanted -= deref(it).second.total
        inc(it)
    return price


cdef tuple order_lists(LevelMap* bids, LevelMap* asks, LevelMap* sell_stops,
                       LevelMap* buy_stops, const Order* pool,
                       unordered_map[slot_t, price_t]* stop_prices):
    # Resting orders in priority order with their kind (post-only matters for amends), then
    # armed stops in trigger order: reinserting them in that order rebuilds every FIFO.
    cdef list resting = [], armed = []
    cdef LevelMap* walk[4]
    walk[0], walk[1], walk[2], walk[3] = bids, asks, sell_stops, buy_stops
    cdef LevelMap* levels
    cdef LevelMap.iterator it
    cdef slot_t slot
    cdef Order o
    cdef int pass_
    for pass_ in range(4):
        levels = walk[pass_]
        it = levels.begin()
        while it != levels.end():
            slot = deref(it).second.head
            while slot != NO_SLOT:
                o = pool[slot]
                if pass_ < 2:
                    resting.append((o.order_id, o.owner, o.side, o.kind, o.price, o.qty))
                else:
                    armed.append((o.order_id, o.owner, o.side, o.kind, o.price,
                                  stop_price_of(stop_prices, slot), o.qty))
                slot = o.next
            inc(it)
    return resting, armed


cdef void owner_ids(LevelMap* bids, LevelMap* asks, LevelMap* sell_stops, LevelMap* buy_stops,
                    const Order* pool, owner_t owner, vector[oid_t]* out) noexcept nogil:
    # Walks the levels rather than the id table: the table keeps the size of the most orders
    # ever live, the levels hold only the live ones. O(n + L + k log k) for n live orders on L
    # levels, k of them owner's.
    cdef LevelMap* walk[4]
    walk[0], walk[1], walk[2], walk[3] = bids, asks, sell_stops, buy_stops
    cdef LevelMap* levels
    cdef LevelMap.iterator it
    cdef slot_t slot
    cdef int pass_
    out.clear()
    for pass_ in range(4):
        levels = walk[pass_]
        it = levels.begin()
        while it != levels.end():
            slot = deref(it).second.head
            while slot != NO_SLOT:
                if pool[slot].owner == owner:
                    out.push_back(pool[slot].order_id)
                slot = pool[slot].next
            inc(it)
    sort(out.begin(), out.end())
