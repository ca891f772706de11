# C-level API of _depth.pyx, for book.pyx and _matching.pyx: reads that walk a book's levels.
#
# The functions take the book's containers (_matching.pxd) as arguments rather than the book,
# so this module sits below _matching.pyx and book.pyx and imports still point down. ``pool``
# is the order pool's first record (pool.data()); ``stop_prices`` maps an armed stop's slot to
# its stop price in ticks. None of them changes anything; the caller holds the book's busy flag.

from libc.stdint cimport int64_t
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

from orderbook._price_ladder cimport Ladder
from orderbook._types cimport Order, oid_t, owner_t, price_t, qty_t, slot_t


# L2: the top ``depth`` levels of each side, best first.
cdef object l2_columns(Ladder* bids, Ladder* asks, int64_t depth)
# An L3_DTYPE array of the ``count`` resting orders: bids best first, then asks, FIFO.
cdef object l3_rows(Ladder* bids, Ladder* asks, const Order* pool, int64_t count)
# A STOP_DTYPE array of the ``count`` armed stops in trigger order: sell stops, then buy stops.
cdef object stop_rows(Ladder* sell_stops, Ladder* buy_stops, const Order* pool,
                      unordered_map[slot_t, price_t]* stop_prices, int64_t count)
# Lots on ``levels`` (the levels of ``side``) at ``limit`` ticks or better, as a Python int.
cdef object resting_total(Ladder* levels, int side, price_t limit)
# Impact of a market order of ``side`` for ``wanted`` lots on ``opposite``, the other side.
cdef object impact_on(Ladder* opposite, int side, qty_t wanted)
# The price (ticks) of the last level a market order of ``side`` for ``wanted`` lots would reach
# on ``opposite``, the deepest when they hold fewer lots, 0 when empty: Impact.worst_price in C.
cdef price_t reach_price(Ladder* opposite, int side, qty_t wanted) noexcept nogil
# The pickle's order lists (resting, armed), a tuple of each order's fields per entry, in the
# order that rebuilds every FIFO when reinserted (OrderBook._restore_state).
cdef tuple order_lists(Ladder* bids, Ladder* asks, Ladder* sell_stops,
                       Ladder* buy_stops, const Order* pool,
                       unordered_map[slot_t, price_t]* stop_prices)
# Replaces out's contents with the ids of owner's live orders, ascending.
cdef void owner_ids(Ladder* bids, Ladder* asks, Ladder* sell_stops, Ladder* buy_stops,
                    const Order* pool, owner_t owner, vector[oid_t]* out) noexcept nogil
