# C-level API of the order book, for other Cython modules (the liquidator) to cimport.

cimport cython
from libc.stdint cimport int64_t
from libcpp cimport bool as cbool
from libcpp.deque cimport deque
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

from orderbook._idtable cimport IdTable
from orderbook._types cimport (
    EventRec, Level, LevelMap, Message, Order, oid_t, owner_t, price_t, qty_t, slot_t,
)


@cython.final
cdef class OrderBook:
    cdef LevelMap bids
    cdef LevelMap asks
    cdef LevelMap sell_stops
    cdef LevelMap buy_stops
    cdef vector[Order] pool
    cdef unordered_map[slot_t, price_t] stop_prices   # stop price (ticks) of each armed stop
    cdef vector[slot_t] free_slots
    cdef IdTable ids              # live order id -> pool slot (_idtable.pxd)
    cdef deque[Order] triggered
    cdef vector[EventRec] events
    cdef int64_t seq              # next event sequence number
    cdef int64_t msg              # number of messages processed
    cdef int64_t stop_count       # armed stops (ids.count - stop_count rest in the book)
    cdef qty_t level_peak         # upper bound on every level's total (lots): the largest seen
    cdef price_t last             # last trade price, valid when has_last
    cdef cbool has_last
    cdef cbool busy               # a batch is running without the GIL
    cdef int stp
    cdef int amend_rule
    cdef readonly object tick_size
    cdef readonly object lot_size

    # The core: one message, validated then executed; the per-call and batch paths share it.
    # validate() returns a Reason code (R_NONE when the message may run), writes the pool slot
    # of the live order with m.order_id (NO_SLOT if none) to found, and changes nothing.
    # execute() runs the message with the reason and slot validate() gave for it, appending
    # its events (a REJECTED one when reason is not R_NONE) to the event buffer.
    # run() is both for one message on its own: it clears the event buffer first, so the
    # buffer then holds exactly that message's events; it returns the reason.
    cdef int validate(self, const Message* m, slot_t* found) noexcept nogil
    cdef void execute(self, const Message* m, int reason, slot_t found) noexcept nogil
    cdef int run(self, const Message* m) noexcept nogil
    cdef void emit(self, int kind, int reason, int side, oid_t order_id, owner_t owner,
                   oid_t maker_id, owner_t maker_owner, price_t price, price_t stop_price,
                   qty_t qty) noexcept nogil
    cdef void new_order(self, Order* o, price_t stop_price) noexcept nogil
    cdef void take(self, Order* taker) noexcept nogil
    cdef void rest(self, Order* o) noexcept nogil
    cdef slot_t link(self, LevelMap* levels, price_t key, const Order* o) noexcept nogil
    cdef price_t stop_price_of(self, slot_t slot) noexcept nogil
    cdef void unlink(self, Level* level, slot_t slot) noexcept nogil
    cdef void remove(self, slot_t slot) noexcept nogil
    cdef bint can_fill(self, const Order* o) noexcept nogil
    cdef bint would_cross(self, int side, price_t price) noexcept nogil
    cdef qty_t level_total(self, int side, price_t price) noexcept nogil
    cdef qty_t stop_level_total(self, int side, price_t stop_price) noexcept nogil
    cdef void trigger_stops(self, price_t trade_price) noexcept nogil
    cdef void run_triggered(self) noexcept nogil
    cdef void cancel_order(self, slot_t slot) noexcept nogil
    cdef void amend_order(self, slot_t slot, const Message* m) noexcept nogil
    # Replaces out's contents with the ids of owner's live orders (resting and armed stops),
    # ascending; O(n + L + k log k) for n live orders on L levels, k of them owner's.
    cdef void ids_of(self, owner_t owner, vector[oid_t]* out) noexcept nogil

    # Python-facing plumbing. Public methods take the busy flag (_enter, released in finally)
    # or check it (_idle, for reads that call no Python while they touch the containers), and
    # the cdef parts below assume they hold it.
    cdef int _enter(self) except -1
    cdef int _idle(self) except -1
    cdef list _submit(self, int64_t kind, order_id, side, price, qty, owner, stop_price)
    cdef list _submit_one(self, int64_t kind, order_id, side, price, qty, owner, stop_price)
    cdef object _process(self, messages)
    cdef list _event_list(self)
    cdef object _event_array(self)
    cdef object _order_info(self, oid_t oid)
    cdef OrderBook _copy(self)
    cdef int _restore_state(self, list resting, list armed) except -1
