# C-level API of the matching core (_matching.pyx): the book's containers and the rules that
# change them, for book.pyx (OrderBook derives from MatchingCore) and, through OrderBook, for the
# engine and the liquidator. Every method is final: no subclass overrides the rules.

cimport cython
from libc.stdint cimport int64_t, uint8_t
from libcpp cimport bool as cbool
from libcpp.deque cimport deque
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

from orderbook._idtable cimport IdTable
from orderbook._price_ladder cimport Ladder
from orderbook._sink cimport EventSink
from orderbook._types cimport (
    EventRec, Flight, Level, Message, Order, oid_t, owner_t, price_t, qty_t, slot_t,
)


cdef class MatchingCore:
    cdef Ladder bids              # price levels (_price_ladder.pxd), keyed by level_key
    cdef Ladder asks
    cdef Ladder sell_stops
    cdef Ladder buy_stops
    cdef vector[Order] pool
    cdef unordered_map[slot_t, price_t] stop_prices   # stop price (ticks) of each armed stop
    cdef vector[slot_t] free_slots
    cdef IdTable ids              # live order id -> pool slot (_idtable.pxd)
    cdef deque[Flight] triggered
    cdef vector[EventRec] events  # one message's events (run); empty in a batch
    cdef EventSink* direct        # run_batch's sink while it runs: emit() hands it each event
    # The per-call lean path (events=False): emit() records nothing, only adds the lots of each
    # TRADE whose taker is tally_id (the message's own order) to tally_filled.
    cdef cbool tally
    cdef oid_t tally_id
    cdef qty_t tally_filled
    cdef int64_t seq              # next event sequence number
    cdef int64_t msg              # number of messages processed
    cdef int64_t stop_count       # armed stops (ids.count - stop_count rest in the book)
    cdef int64_t max_live         # live orders the book may hold: MAX_LIVE_ORDERS (tests lower it)
    cdef qty_t level_peak         # upper bound on every level's total (lots): the largest seen
    cdef price_t last             # last trade price, valid when has_last
    cdef cbool has_last
    cdef int stp                  # SelfTradePrevention
    cdef int amend_rule           # AmendRule

    # The core: one message, validated then executed; the per-call and batch paths share it.
    # validate() returns a Reason code (R_NONE when the message may run), writes the pool slot
    # of the live order with m.order_id (NO_SLOT if none) to found, and changes nothing.
    # execute() runs the message with the reason and slot validate() gave for it, appending
    # its events (a REJECTED one when reason is not R_NONE) to the event buffer.
    # run() is both for one message on its own: it clears the event buffer first, so the
    # buffer then holds exactly that message's events; it returns the reason.
    @cython.final
    cdef int validate(self, const Message* m, slot_t* found) noexcept nogil

    @cython.final
    cdef void execute(self, const Message* m, int reason, slot_t found) noexcept nogil

    @cython.final
    cdef int run(self, const Message* m) noexcept nogil

    # The batch: validate then execute each of n MESSAGE_DTYPE rows at rows (any alignment),
    # each event handed to sink (_sink.pxd) as it is made, so a counters-only batch writes no
    # event record at all; the event buffer is left empty.
    @cython.final
    cdef void run_batch(self, const uint8_t* rows, Py_ssize_t n, EventSink* sink) noexcept nogil

    @cython.final
    cdef void emit(self, int kind, int reason, int side, oid_t order_id, owner_t owner,
                   oid_t maker_id, owner_t maker_owner, price_t price, price_t stop_price,
                   qty_t qty) noexcept nogil

    @cython.final
    cdef void new_order(self, Flight* o, price_t stop_price) noexcept nogil

    @cython.final
    cdef void take(self, Flight* taker) noexcept nogil

    @cython.final
    cdef void rest(self, Flight* o) noexcept nogil

    @cython.final
    cdef slot_t link(self, Ladder* levels, price_t key, const Flight* o) noexcept nogil

    @cython.final
    cdef price_t stop_price_of(self, slot_t slot) noexcept nogil

    @cython.final
    cdef void unlink(self, Level* level, slot_t slot) noexcept nogil

    @cython.final
    cdef void remove(self, slot_t slot) noexcept nogil

    @cython.final
    cdef bint can_fill(self, const Flight* o) noexcept nogil

    @cython.final
    cdef bint would_cross(self, int side, price_t price) noexcept nogil

    @cython.final
    cdef qty_t level_total(self, int side, price_t price) noexcept nogil

    @cython.final
    cdef qty_t stop_level_total(self, int side, price_t stop_price) noexcept nogil

    @cython.final
    cdef void trigger_stops(self, price_t trade_price) noexcept nogil

    @cython.final
    cdef void run_triggered(self) noexcept nogil

    @cython.final
    cdef void cancel_order(self, slot_t slot) noexcept nogil

    @cython.final
    cdef void amend_order(self, slot_t slot, const Message* m) noexcept nogil

    # Replaces out's contents with the ids of owner's live orders (resting and armed stops),
    # ascending; O(n + L + k log k) for n live orders on L levels, k of them owner's.
    @cython.final
    cdef void ids_of(self, owner_t owner, vector[oid_t]* out) noexcept nogil

    # Copies every container and counter into other (a fresh core), so both run alike from here.
    @cython.final
    cdef void copy_into(self, MatchingCore other) noexcept
