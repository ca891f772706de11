"""The order book's matching core: its containers and the rules that change them.

``MatchingCore`` holds the price levels (a price ladder keyed by ``level_key``,
``_price_ladder.pxd``, each an intrusive FIFO of slots in a preallocated order pool), the armed
stops, the id table (``_idtable.pxd``) and the event buffer, and runs one message at a time:
``validate`` then ``execute``, the spec's steps in docs/semantics.md. It is the base of
``book.OrderBook``, which adds the Python entry points (per call, batch, queries, copies), the way
numpy.random's generators build on ``BitGenerator``. Every method here is C-level, never raises,
and is ``final`` (so calls inside the core are direct C calls); the message path runs without the
GIL.
"""

cimport cython
from cython.operator cimport dereference as deref
from libc.stdint cimport INT64_MAX, uint8_t
from libc.string cimport memcpy, memset
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

from orderbook cimport _types as t
from orderbook._depth cimport owner_ids
from orderbook._idtable cimport PREFETCH_AHEAD, id_erase, id_find, id_insert, prefetch_id
from orderbook._price_ladder cimport (
    Ladder, ladder_add, ladder_erase, ladder_find, ladder_first, ladder_next,
)
from orderbook._sink cimport RECORD_COUNTERS, EventSink, sink_count, sink_take
from orderbook._types cimport (
    BUY, NO_SLOT, SELL, EventRec, Flight, Level, Message, Order, is_new_order, is_priced,
    in_flight, is_stop, level_key, oid_t, owner_t, packed, price_t, qty_t, rests, slot_t,
)

__all__ = ["MatchingCore"]


# ----------------------------------------------------------------------------- small helpers

cdef inline bint stop_triggers(int side, price_t stop_price, price_t trade_price) noexcept nogil:
    if side == BUY:
        return trade_price >= stop_price
    return trade_price <= stop_price


cdef class MatchingCore:
    """The book's containers and matching rules; the base of ``OrderBook`` (C-level only)."""

    def __cinit__(self):
        self.has_last = False
        self.seq = 0
        self.msg = 0
        self.stop_count = 0
        self.max_live = t.MAX_LIVE_ORDERS
        self.level_peak = 0
        self.tally = False

    @cython.final
    cdef void run_batch(self, const uint8_t* rows, Py_ssize_t n, EventSink* sink) noexcept nogil:
        cdef Py_ssize_t i
        cdef Message m
        cdef slot_t found
        cdef int reason
        self.events.clear()
        self.direct = sink
        for i in range(n):
            # A copy per message: the input may be unaligned (np.frombuffer at an odd
            # offset), and the message that is validated is the one that is executed even
            # if another thread writes to the caller's array meanwhile. Two statements: C++
            # may evaluate execute()'s arguments in any order, found before validate() writes
            # it.
            memcpy(&m, rows + i * sizeof(Message), sizeof(Message))
            if i + PREFETCH_AHEAD < n:
                prefetch_id(&self.ids, rows + (i + PREFETCH_AHEAD) * sizeof(Message))
            reason = self.validate(&m, &found)
            self.execute(&m, reason, found)
        self.direct = NULL

    @cython.final
    cdef int run(self, const Message* m) noexcept nogil:
        cdef slot_t found
        cdef int reason = self.validate(m, &found)
        self.events.clear()
        self.execute(m, reason, found)
        return reason

    @cython.final
    cdef int validate(self, const Message* m, slot_t* found) noexcept nogil:
        cdef int kind = m.kind
        cdef slot_t slot
        cdef const Order* o
        cdef qty_t others
        found[0] = NO_SLOT
        if not (t.K_LIMIT <= kind <= t.K_AMEND):
            return t.R_INVALID_KIND
        if is_new_order(kind) and m.side != BUY and m.side != SELL:
            return t.R_INVALID_SIDE
        if is_priced(kind) and m.price < 1:
            return t.R_INVALID_PRICE
        if is_stop(kind) and m.stop_price < 1:
            return t.R_INVALID_STOP_PRICE
        if kind != t.K_CANCEL and m.qty < 1:
            return t.R_INVALID_QTY
        slot = id_find(&self.ids, self.pool.data(), m.order_id)
        found[0] = slot
        if is_new_order(kind):
            if slot != NO_SLOT:
                return t.R_DUPLICATE_ID
            # The pool's links hold slots below MAX_LIVE_ORDERS (_types.pxd). Only a new order
            # adds a live one (a triggered stop gives its slot back before it rests again), so
            # this one check bounds the pool.
            if self.ids.count >= self.max_live and not t.is_immediate(kind):
                return t.R_BOOK_FULL
            # level_peak bounds every level's total, so the exact (tree walk) check is only
            # needed when the bound itself is near the int64 limit.
            if (rests(kind) and self.level_peak > INT64_MAX - m.qty
                    and self.level_total(m.side, m.price) > INT64_MAX - m.qty):
                return t.R_QTY_OVERFLOW
            # Stop levels keep totals as well (link/unlink), under the same bound.
            if (is_stop(kind) and self.level_peak > INT64_MAX - m.qty
                    and self.stop_level_total(m.side, m.stop_price) > INT64_MAX - m.qty):
                return t.R_QTY_OVERFLOW
            return t.R_NONE
        if slot == NO_SLOT:
            return t.R_UNKNOWN_ORDER
        if kind == t.K_AMEND:
            o = &self.pool[slot]
            if not is_stop(o.kind):
                others = self.level_total(o.side, m.price)
                if m.price == o.price:
                    others -= o.qty
                if others > INT64_MAX - m.qty:
                    return t.R_QTY_OVERFLOW
        return t.R_NONE

    @cython.final
    cdef void execute(self, const Message* m, int reason, slot_t found) noexcept nogil:
        cdef Flight o
        if reason != t.R_NONE:
            self.emit(t.EV_REJECTED, reason, m.side, m.order_id, m.owner, 0, 0, m.price,
                      m.stop_price, m.qty)
        elif m.kind == t.K_CANCEL:
            self.cancel_order(found)
        elif m.kind == t.K_AMEND:
            self.amend_order(found, m)
        else:
            o.order_id = m.order_id
            o.owner = m.owner
            o.side = m.side
            o.kind = m.kind
            o.price = 0 if (m.kind == t.K_MARKET or m.kind == t.K_STOP_MARKET) else m.price
            o.qty = m.qty
            self.new_order(&o, m.stop_price if is_stop(m.kind) else 0)
        self.msg += 1

    @cython.final
    cdef void emit(self, int kind, int reason, int side, oid_t order_id, owner_t owner,
                   oid_t maker_id, owner_t maker_owner, price_t price, price_t stop_price,
                   qty_t qty) noexcept nogil:
        cdef EventRec e
        if self.direct != NULL and self.direct.record == RECORD_COUNTERS:
            # counted as sink_take would, with no record written
            sink_count(self.direct, kind, qty)
            self.seq += 1
            return
        if self.tally:
            if kind == t.EV_TRADE and order_id == self.tally_id:
                self.tally_filled += qty
            self.seq += 1
            return
        # Zero the padding too, so equal runs give byte-equal event arrays (hashable results).
        memset(&e, 0, sizeof(EventRec))
        e.seq = self.seq
        e.msg = self.msg
        e.kind = kind
        e.reason = reason
        e.side = side
        e.order_id = order_id
        e.owner = owner
        e.maker_id = maker_id
        e.maker_owner = maker_owner
        e.price = price
        e.stop_price = stop_price
        e.qty = qty
        if self.direct != NULL:
            sink_take(self.direct, &e, 1)
        else:
            self.events.push_back(e)
        self.seq += 1

    @cython.final
    cdef void new_order(self, Flight* o, price_t stop_price) noexcept nogil:
        if o.kind == t.K_POST_ONLY and self.would_cross(o.side, o.price):
            self.emit(t.EV_REJECTED, t.R_POST_ONLY_WOULD_TAKE, o.side, o.order_id, o.owner, 0, 0,
                      o.price, 0, o.qty)
            return
        if is_stop(o.kind) and self.has_last and stop_triggers(o.side, stop_price, self.last):
            self.emit(t.EV_REJECTED, t.R_STOP_WOULD_TRIGGER, o.side, o.order_id, o.owner, 0, 0,
                      o.price, stop_price, o.qty)
            return
        self.emit(t.EV_ACCEPTED, t.R_NONE, o.side, o.order_id, o.owner, 0, 0, o.price,
                  stop_price, o.qty)
        if is_stop(o.kind):
            self.stop_prices[self.link(&self.buy_stops if o.side == BUY else &self.sell_stops,
                                       level_key(-o.side, stop_price), o)] = stop_price
            self.stop_count += 1
            return
        if o.kind == t.K_FOK and not self.can_fill(o):
            self.emit(t.EV_CANCELLED, t.R_FOK_UNFILLABLE, o.side, o.order_id, o.owner, 0, 0,
                      o.price, 0, o.qty)
            return
        self.take(o)
        self.run_triggered()

    @cython.final
    cdef void take(self, Flight* taker) noexcept nogil:
        # The one matching loop (spec steps 3-4): walk the opposite side best level first,
        # FIFO within a level, then rest or cancel what is left of the taker.
        cdef Ladder* opposite = &self.asks if taker.side == BUY else &self.bids
        cdef Level* level
        cdef Order* maker
        cdef slot_t slot, next_slot
        cdef price_t level_price, key
        cdef qty_t fill
        cdef bint stopped_by_stp = False
        while taker.qty > 0 and not stopped_by_stp:
            level = ladder_first(opposite, &key)
            if level == NULL:
                break
            level_price = key if taker.side == BUY else -key
            if taker.price != 0 and (level_price > taker.price if taker.side == BUY
                                     else level_price < taker.price):
                break
            slot = level.head
            while slot != NO_SLOT and taker.qty > 0:
                maker = &self.pool[slot]
                next_slot = maker.next
                if self.stp != t.STP_NONE and maker.owner == taker.owner:
                    if self.stp == t.STP_CANCEL_MAKER or self.stp == t.STP_CANCEL_BOTH:
                        self.emit(t.EV_CANCELLED, t.R_SELF_TRADE, maker.side, maker.order_id,
                                  maker.owner, 0, 0, maker.price, 0, maker.qty)
                        self.unlink(level, slot)
                    if self.stp == t.STP_CANCEL_TAKER or self.stp == t.STP_CANCEL_BOTH:
                        stopped_by_stp = True
                        break
                    slot = next_slot
                    continue
                fill = taker.qty if taker.qty < maker.qty else maker.qty
                self.emit(t.EV_TRADE, t.R_NONE, taker.side, taker.order_id, taker.owner,
                          maker.order_id, maker.owner, level_price, 0, fill)
                taker.qty -= fill
                maker.qty -= fill
                level.total -= fill
                if maker.qty == 0:
                    self.unlink(level, slot)
                self.trigger_stops(level_price)
                slot = next_slot
            if level.count == 0:
                ladder_erase(opposite, key)
        if stopped_by_stp:
            self.emit(t.EV_CANCELLED, t.R_SELF_TRADE, taker.side, taker.order_id, taker.owner,
                      0, 0, taker.price, 0, taker.qty)
        elif taker.qty > 0:
            if rests(taker.kind):
                self.rest(taker)
            else:
                self.emit(t.EV_CANCELLED, t.R_IOC_RESIDUAL, taker.side, taker.order_id,
                          taker.owner, 0, 0, taker.price, 0, taker.qty)

    @cython.final
    cdef void rest(self, Flight* o) noexcept nogil:
        if (self.level_peak > INT64_MAX - o.qty
                and self.level_total(o.side, o.price) > INT64_MAX - o.qty):
            # Only a triggered stop-limit can get here: new orders were checked on entry.
            self.emit(t.EV_CANCELLED, t.R_QTY_OVERFLOW, o.side, o.order_id, o.owner, 0, 0,
                      o.price, 0, o.qty)
            return
        self.link(&self.bids if o.side == BUY else &self.asks, level_key(o.side, o.price), o)

    @cython.final
    cdef slot_t link(self, Ladder* levels, price_t key, const Flight* o) noexcept nogil:
        # Copy ``o`` into a pool slot at the back of the level under ``key``; return the slot.
        cdef slot_t slot
        cdef Level* level = ladder_find(levels, key)
        if level == NULL:
            level = ladder_add(levels, key)
        if self.free_slots.empty():
            slot = <slot_t>self.pool.size()
            self.pool.push_back(packed(o, level.tail))
        else:
            slot = self.free_slots.back()
            self.free_slots.pop_back()
            self.pool[slot] = packed(o, level.tail)
        if level.tail == NO_SLOT:
            level.head = slot
        else:
            self.pool[level.tail].next = slot
        level.tail = slot
        level.count += 1
        level.total += o.qty
        if level.total > self.level_peak:
            self.level_peak = level.total
        id_insert(&self.ids, self.pool.data(), slot)
        return slot

    @cython.final
    cdef price_t stop_price_of(self, slot_t slot) noexcept nogil:
        # Stop price of the order in ``slot``: 0 unless it is an armed stop.
        cdef unordered_map[slot_t, price_t].iterator it = self.stop_prices.find(slot)
        return 0 if it == self.stop_prices.end() else deref(it).second

    @cython.final
    cdef void unlink(self, Level* level, slot_t slot) noexcept nogil:
        # Take the order in ``slot`` out of its level's FIFO and free its slot and id. The caller
        # erases the level from its map when its count reaches 0.
        cdef Order* o = &self.pool[slot]
        if o.prev == NO_SLOT:
            level.head = o.next
        else:
            self.pool[o.prev].next = o.next
        if o.next == NO_SLOT:
            level.tail = o.prev
        else:
            self.pool[o.next].prev = o.prev
        level.count -= 1
        level.total -= o.qty
        id_erase(&self.ids, self.pool.data(), slot)
        self.free_slots.push_back(slot)

    @cython.final
    cdef void remove(self, slot_t slot) noexcept nogil:
        # Remove a resting order or an armed stop, wherever it stands.
        cdef Order* o = &self.pool[slot]
        cdef Ladder* levels
        cdef price_t key
        if is_stop(o.kind):
            levels = &self.buy_stops if o.side == BUY else &self.sell_stops
            key = level_key(-o.side, self.stop_price_of(slot))
            self.stop_prices.erase(slot)
            self.stop_count -= 1
        else:
            levels = &self.bids if o.side == BUY else &self.asks
            key = level_key(o.side, o.price)
        cdef Level* level = ladder_find(levels, key)
        self.unlink(level, slot)
        if level.count == 0:
            ladder_erase(levels, key)

    @cython.final
    cdef bint can_fill(self, const Flight* o) noexcept nogil:
        # FOK pre-check (spec step 2): counts down what is still needed, so no sum can overflow.
        cdef Ladder* opposite = &self.asks if o.side == BUY else &self.bids
        cdef price_t level_price, key
        cdef Level* level = ladder_first(opposite, &key)
        cdef slot_t slot
        cdef const Order* maker
        cdef qty_t needed = o.qty
        while level != NULL:
            level_price = key if o.side == BUY else -key
            if level_price > o.price if o.side == BUY else level_price < o.price:
                return False
            slot = level.head
            while slot != NO_SLOT:
                maker = &self.pool[slot]
                slot = maker.next
                if self.stp != t.STP_NONE and maker.owner == o.owner:
                    if self.stp == t.STP_CANCEL_MAKER:
                        continue
                    return False
                if maker.qty >= needed:
                    return True
                needed -= maker.qty
            level = ladder_next(opposite, key, &key)
        return False

    @cython.final
    cdef bint would_cross(self, int side, price_t price) noexcept nogil:
        cdef price_t key
        if side == BUY:
            return ladder_first(&self.asks, &key) != NULL and key <= price
        return ladder_first(&self.bids, &key) != NULL and -key >= price

    @cython.final
    cdef qty_t level_total(self, int side, price_t price) noexcept nogil:
        cdef Level* level = ladder_find(&self.bids if side == BUY else &self.asks,
                                        level_key(side, price))
        return 0 if level == NULL else level.total

    @cython.final
    cdef qty_t stop_level_total(self, int side, price_t stop_price) noexcept nogil:
        cdef Level* level = ladder_find(&self.buy_stops if side == BUY else &self.sell_stops,
                                        level_key(-side, stop_price))
        return 0 if level == NULL else level.total

    @cython.final
    cdef void trigger_stops(self, price_t trade_price) noexcept nogil:
        # Record the trade price and queue every stop it triggers: sell stops first (highest
        # stop first), then buy stops (lowest first), FIFO within a stop price.
        cdef Ladder* stops
        cdef Level* level
        cdef slot_t slot
        cdef Order* o
        cdef int pass_, side
        cdef price_t stop_price, key
        self.last = trade_price
        self.has_last = True
        for pass_ in range(2):
            stops = &self.sell_stops if pass_ == 0 else &self.buy_stops
            side = SELL if pass_ == 0 else BUY
            while True:
                level = ladder_first(stops, &key)
                if level == NULL:
                    break
                stop_price = level_key(-side, key)  # the key is +-stop price
                if not stop_triggers(side, stop_price, trade_price):
                    break
                slot = level.head
                while slot != NO_SLOT:
                    o = &self.pool[slot]
                    self.triggered.push_back(in_flight(o))
                    self.emit(t.EV_STOP_TRIGGERED, t.R_NONE, o.side, o.order_id, o.owner, 0, 0,
                              o.price, stop_price, o.qty)
                    self.stop_prices.erase(slot)
                    id_erase(&self.ids, self.pool.data(), slot)
                    self.free_slots.push_back(slot)
                    self.stop_count -= 1
                    slot = o.next
                ladder_erase(stops, key)

    @cython.final
    cdef void run_triggered(self) noexcept nogil:
        cdef Flight o
        while not self.triggered.empty():
            o = self.triggered.front()
            self.triggered.pop_front()
            o.kind = t.K_MARKET if o.kind == t.K_STOP_MARKET else t.K_LIMIT
            self.take(&o)

    @cython.final
    cdef void cancel_order(self, slot_t slot) noexcept nogil:
        cdef Order o = self.pool[slot]
        cdef price_t stop_price = self.stop_price_of(slot)
        self.remove(slot)
        self.emit(t.EV_CANCELLED, t.R_USER, o.side, o.order_id, o.owner, 0, 0, o.price,
                  stop_price, o.qty)

    @cython.final
    cdef void amend_order(self, slot_t slot, const Message* m) noexcept nogil:
        cdef Flight o = in_flight(&self.pool[slot])
        cdef bint keeps_priority
        cdef Level* level
        if is_stop(o.kind):
            self.emit(t.EV_REJECTED, t.R_NOT_AMENDABLE, o.side, o.order_id, o.owner, 0, 0,
                      m.price, 0, m.qty)
            return
        keeps_priority = (self.amend_rule == t.AMEND_REDUCE_KEEPS_PRIORITY
                          and m.price == o.price and m.qty <= o.qty)
        if not keeps_priority and o.kind == t.K_POST_ONLY and self.would_cross(o.side, m.price):
            self.emit(t.EV_REJECTED, t.R_POST_ONLY_WOULD_TAKE, o.side, o.order_id, o.owner, 0, 0,
                      m.price, 0, m.qty)
            return
        self.emit(t.EV_AMENDED, t.R_KEPT_PRIORITY if keeps_priority else t.R_REQUEUED, o.side,
                  o.order_id, o.owner, 0, 0, m.price, 0, m.qty)
        if keeps_priority:
            level = ladder_find(&self.bids if o.side == BUY else &self.asks,
                                level_key(o.side, o.price))
            level.total -= o.qty - m.qty
            self.pool[slot].qty = m.qty
            return
        self.remove(slot)
        o.price = m.price
        o.qty = m.qty
        self.take(&o)
        self.run_triggered()

    @cython.final
    cdef void ids_of(self, owner_t owner, vector[oid_t]* out) noexcept nogil:
        owner_ids(&self.bids, &self.asks, &self.sell_stops, &self.buy_stops, self.pool.data(),
                  owner, out)

    @cython.final
    cdef void copy_into(self, MatchingCore other) noexcept:
        other.bids = self.bids
        other.asks = self.asks
        other.sell_stops = self.sell_stops
        other.buy_stops = self.buy_stops
        other.pool = self.pool
        other.stop_prices = self.stop_prices
        other.free_slots = self.free_slots
        other.ids = self.ids
        other.seq = self.seq
        other.msg = self.msg
        other.stop_count = self.stop_count
        other.level_peak = self.level_peak
        other.last = self.last
        other.has_last = self.has_last
        other.stp = self.stp
        other.amend_rule = self.amend_rule
