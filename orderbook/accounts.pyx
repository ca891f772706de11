"""Margin accounts in C structs: settlement, tiered margin and the liquidation-price indexes.

Mirrors ``orderbook.reference_engine._Ledger`` (docs/liquidation.md). Money is int64 quote units
in storage; products that can pass int64 (notional x rate, sums of values) are taken in 128-bit
integers and are back in range by the bounds the Engine enforces.
"""

cimport cython
from cython.operator cimport dereference as deref
from libc.stdint cimport INT64_MAX, int32_t, int64_t
from libc.string cimport memcpy
from libcpp.vector cimport vector

import numpy as np

from orderbook cimport _types as t
from orderbook.accounts cimport Account, IndexKey, int128, money_t
from orderbook._types cimport BUY, PPM, SELL, EventRec, oid_t, owner_t, price_t, qty_t

from .events import EVENT_DTYPE

__all__ = ["Ledger"]


cdef int128 floor_div(int128 a, int128 b) noexcept nogil:
    # Python's // for b > 0, spelled out: C division truncates toward zero.
    cdef int128 q = cython.cdiv(a, b)
    if cython.cmod(a, b) != 0 and a < 0:
        q -= 1
    return q


cdef int128 ceil_div(int128 a, int128 b) noexcept nogil:
    return -floor_div(-a, b)


cdef object to_python(int128 v):
    """An int128 as a Python int."""
    cdef int64_t high = <int64_t>(v >> 64)
    cdef unsigned long long low = <unsigned long long>(v & <int128>0xFFFFFFFFFFFFFFFF)
    return (<object>high) * (1 << 64) + <object>low


cdef int128 from_python(object value) except? -1:
    """A Python int within int128 as an int128."""
    return (<int128><int64_t>(value >> 64)) * (<int128>1 << 64) + \
        <int128><unsigned long long>(value & 0xFFFFFFFFFFFFFFFF)


cdef class Ledger:
    """The accounts of one Engine (internal; the Engine is the public face)."""

    def __init__(self, int64_t k, price_t max_price, qty_t max_position, tiers):
        self.k = k
        self.max_price = max_price
        self.max_position = max_position
        for cap in tiers.caps:
            self.caps.push_back(INT64_MAX if cap is None else cap)
        for rate in tiers.maintenance_ppm:
            self.mm_ppm.push_back(rate)
        for rate in tiers.initial_ppm:
            self.im_ppm.push_back(rate)
        for deduction in tiers.maintenance_deduction:
            self.mm_deduction.push_back(from_python(deduction))
        for deduction in tiers.initial_deduction:
            self.im_deduction.push_back(from_python(deduction))

    def __reduce__(self):
        # No automatic pickling of raw slots and indexes: the Engine pickles checked state.
        raise TypeError("a Ledger cannot be pickled on its own; pickle its Engine")

    cdef int32_t open_account(self, owner_t owner, money_t collateral, bint exempt, bint isolated,
                              money_t reserve) except -1:
        """A new account, flat, in the next slot; returns the slot. Amortised O(1)."""
        cdef Account a
        a.owner = owner
        a.collateral = collateral
        a.reserve = reserve
        a.isolated = isolated
        a.queued = False
        a.position = 0
        a.cost = 0
        a.open_buy = 0
        a.open_sell = 0
        a.liq_price = 0
        a.indexed = 0
        a.exempt = exempt
        self.slot_of[owner] = <int32_t>self.accounts.size()
        self.accounts.push_back(a)
        return <int32_t>self.accounts.size() - 1

    # ------------------------------------------------------------------ money and margin
    cdef int32_t slot(self, owner_t owner) noexcept nogil:
        it = self.slot_of.find(owner)
        if it == self.slot_of.end():
            return -1
        return deref(it).second

    cdef int128 value(self, price_t price, qty_t qty) noexcept nogil:
        return <int128>price * qty * self.k

    cdef int128 unrealised(self, const Account* a, price_t mark, bint has_mark) noexcept nogil:
        if a.position == 0 or not has_mark:
            return 0
        if a.position > 0:
            return self.value(mark, a.position) - a.cost
        return a.cost - self.value(mark, -a.position)

    cdef int128 equity(self, const Account* a, price_t mark, bint has_mark) noexcept nogil:
        return a.collateral + self.unrealised(a, mark, has_mark)

    cdef int128 requirement(self, int128 notional, bint initial) noexcept nogil:
        cdef size_t i = 0
        cdef size_t last = self.caps.size() - 1
        while i < last and notional > self.caps[i]:
            i += 1
        cdef int128 rate = self.im_ppm[i] if initial else self.mm_ppm[i]
        cdef int128 deduction = self.im_deduction[i] if initial else self.mm_deduction[i]
        cdef int128 margin = ceil_div(notional * rate - deduction, PPM)
        return margin if margin > 0 else 0

    cdef int128 maintenance(self, const Account* a, price_t mark, bint has_mark) noexcept nogil:
        # The maintenance margin of a's position on the ledger's basis: its notional at the
        # mark (0 without one), or its entry value, which needs no mark.
        cdef qty_t size = a.position if a.position > 0 else -a.position
        if self.mm_basis == t.BASIS_ENTRY:
            return self.requirement(a.cost, False)
        return self.requirement(self.value(mark if has_mark else 0, size), False)

    cdef bint short_of(self, int128 equity, int128 margin) noexcept nogil:
        # The trigger: equity below the margin, or at or below it.
        if self.trigger == t.TRIGGER_AT_OR_BELOW:
            return equity <= margin
        return equity < margin

    cdef bint liquidatable_at(self, const Account* a, price_t price) noexcept nogil:
        if a.exempt or a.position == 0:
            return False
        return self.short_of(self.equity(a, price, True), self.maintenance(a, price, True))

    cdef bint liquidation_price(self, const Account* a, price_t* out) noexcept nogil:
        # Liquidatable-ness is monotone in the price, so a binary search finds the boundary;
        # on the entry basis MM does not move with the price and the boundary is solved for.
        cdef price_t lo, hi, mid
        if a.exempt or a.position == 0:
            return False
        if self.mm_basis == t.BASIS_ENTRY:
            return self.entry_liquidation_price(a, out)
        if a.position > 0:
            if not self.liquidatable_at(a, 0):
                return False
            lo, hi = 0, self.max_price + 1
            while hi - lo > 1:
                mid = lo + (hi - lo) // 2
                if self.liquidatable_at(a, mid):
                    lo = mid
                else:
                    hi = mid
            out[0] = lo
            return True
        if not self.liquidatable_at(a, self.max_price):
            return False
        lo, hi = -1, self.max_price
        while hi - lo > 1:
            mid = lo + (hi - lo) // 2
            if self.liquidatable_at(a, mid):
                hi = mid
            else:
                lo = mid
        out[0] = hi
        return True

    cdef bint entry_liquidation_price(self, const Account* a, price_t* out) noexcept nogil:
        # MM fixed at M = MM(C): a long is liquidatable at P when W + P|q|k - C < M (or <=),
        # i.e. P|q|k < M + C - W: the largest such P is ceil((M + C - W) / (|q|k)) - 1 (or
        # floor(...) for <=); a short when W + C - P|q|k < M (or <=), i.e. P|q|k > W + C - M:
        # the smallest is floor((W + C - M) / (|q|k)) + 1 (or ceil(...)). Clamped to
        # [0, max_price], None where that leaves no price.
        cdef int128 margin = self.requirement(a.cost, False)
        cdef bint at = self.trigger == t.TRIGGER_AT_OR_BELOW
        cdef int128 size = a.position if a.position > 0 else -a.position
        cdef int128 step = size * self.k   # quote units the equity moves per tick
        cdef int128 price
        if a.position > 0:
            price = floor_div(margin + a.cost - a.collateral, step) if at else (
                ceil_div(margin + a.cost - a.collateral, step) - 1)
            if price < 0:
                return False
            out[0] = <price_t>(price if price < self.max_price else self.max_price)
            return True
        price = ceil_div(<int128>a.collateral + a.cost - margin, step) if at else (
            floor_div(<int128>a.collateral + a.cost - margin, step) + 1)
        if price > self.max_price:
            return False
        out[0] = <price_t>(price if price > 0 else 0)
        return True

    cdef bint bankruptcy_price(self, const Account* a, price_t* out) noexcept nogil:
        cdef int128 price
        if a.position == 0:
            return False
        if a.position > 0:
            price = ceil_div(<int128>a.cost - a.collateral, <int128>a.position * self.k)
        else:
            price = floor_div(<int128>a.cost + a.collateral, <int128>(-a.position) * self.k)
        out[0] = <price_t>(price if price > 0 else 0)
        return True

    # ------------------------------------------------------------------ the indexes
    cdef void reindex(self, int32_t slot) noexcept nogil:
        cdef Account* a = &self.accounts[slot]
        cdef price_t price = 0
        if a.indexed > 0:
            self.longs.erase(IndexKey(a.liq_price, a.owner))
        elif a.indexed < 0:
            self.shorts.erase(IndexKey(a.liq_price, a.owner))
        a.indexed = 0
        if self.liquidation_price(a, &price):
            a.liq_price = price
            if a.position > 0:
                self.longs.insert(IndexKey(price, a.owner))
                a.indexed = 1
            else:
                self.shorts.insert(IndexKey(price, a.owner))
                a.indexed = -1

    # ------------------------------------------------------------------ settlement
    cdef void settle(self, int32_t slot, qty_t delta, price_t price) noexcept nogil:
        # A fill of delta lots (signed) at price, without fees, then the index follows.
        self.apply_fill(&self.accounts[slot], delta, price)
        self.reindex(slot)

    cdef void apply_fill(self, Account* a, qty_t delta, price_t price) noexcept nogil:
        # The settlement arithmetic of docs/liquidation.md, on any account record.
        cdef qty_t q = a.position
        cdef qty_t size = delta if delta > 0 else -delta
        cdef qty_t held = q if q > 0 else -q
        cdef qty_t closed, rest
        cdef money_t released
        cdef int128 closed_value
        if q == 0 or (q > 0) == (delta > 0):
            a.position = q + delta
            a.cost += <money_t>self.value(price, size)
        else:
            closed = size if size < held else held
            released = <money_t>floor_div(<int128>a.cost * closed, held)
            closed_value = self.value(price, closed)
            if q > 0:
                a.collateral += <money_t>(closed_value - released)
            else:
                a.collateral += <money_t>(released - closed_value)
            a.cost -= released
            a.position = q + (closed if delta > 0 else -closed)
            rest = size - closed
            if rest:
                a.position = rest if delta > 0 else -rest
                a.cost = <money_t>self.value(price, rest)

    cdef void charge(self, int32_t slot, money_t amount, bint to_fund) noexcept nogil:
        # A fee of amount quote units: to the insurance fund (a liquidation fee) or out of the
        # accounts (a trading fee).
        self.accounts[slot].collateral -= amount
        if to_fund:
            self.accounts[self.slot(t.INSURANCE_FUND)].collateral += amount
        else:
            self.fees_collected += amount
        self.reindex(slot)

    cdef void transfer(self, int32_t buyer, int32_t seller, price_t price,
                       qty_t qty) noexcept nogil:
        # An off-book trade of qty lots at price, without fees.
        self.settle(buyer, qty, price)
        self.settle(seller, -qty, price)

    cdef void move(self, int32_t slot, int32_t taker, int direction, price_t price,
                   qty_t qty) noexcept nogil:
        # A liquidated account's lots to the taker of its remainder (backstop, fund, ADL);
        # direction +1: the taker buys (the account was long).
        if direction > 0:
            self.transfer(taker, slot, price, qty)
        else:
            self.transfer(slot, taker, price, qty)

    cdef void settle_events(self, const vector[EventRec]& events, oid_t message_id,
                            bint own_order_counts) noexcept nogil:
        # Settle the trades the book just reported for message ``message_id``, with their fees,
        # and keep each account's open order quantity (what the exposure check adds to the
        # position) in step with the events. ``own_order_counts``: the message's own order
        # counts toward open quantity (false for a market, IOC or FOK order and a forced one,
        # which never rest).
        cdef size_t i
        cdef const EventRec* e
        cdef int32_t taker, maker
        cdef int128 value
        for i in range(events.size()):
            e = &events[i]
            if e.kind == t.EV_TRADE:
                self.trade_log.push_back(e[0])
                taker = self.slot(e.owner)
                maker = self.slot(e.maker_owner)
                self.settle(taker, e.side * e.qty, e.price)
                self.settle(maker, -e.side * e.qty, e.price)
                value = self.value(e.price, e.qty)
                if e.order_id >= 0:   # forced orders (negative ids) pay no taker fee
                    self.charge(taker, <money_t>ceil_div(value * self.taker_fee_ppm, PPM), False)
                self.charge(maker, <money_t>ceil_div(value * self.maker_fee_ppm, PPM), False)
                self.track_open(maker, -e.side, -e.qty)
                if self.counted(e.order_id, message_id, own_order_counts):
                    self.track_open(taker, e.side, -e.qty)
            elif e.kind == t.EV_ACCEPTED:
                if e.order_id == message_id and own_order_counts:
                    self.track_open(self.slot(e.owner), e.side, e.qty)
            elif e.kind == t.EV_CANCELLED:
                if self.counted(e.order_id, message_id, own_order_counts):
                    self.track_open(self.slot(e.owner), e.side, -e.qty)
            elif e.kind == t.EV_AMENDED:
                # The amended order's previous quantity left with it; the new one is counted.
                self.track_open(self.slot(e.owner), e.side, e.qty)

    cdef bint counted(self, oid_t order_id, oid_t message_id,
                      bint own_order_counts) noexcept nogil:
        # Every live order counts toward open quantity except the message's own market, IOC or
        # FOK order and forced orders, which never rest.
        if order_id < 0:
            return False
        return order_id != message_id or own_order_counts

    cdef void track_open(self, int32_t slot, int side, qty_t qty) noexcept nogil:
        if side == BUY:
            self.accounts[slot].open_buy += qty
        else:
            self.accounts[slot].open_sell += qty

    # ------------------------------------------------------------------ copies and saved state
    cdef Ledger copy(self):
        """An independent ledger with the same accounts, indexes, fees and trade log. O(state)."""
        cdef Ledger other = Ledger.__new__(Ledger)
        other.accounts = self.accounts
        other.slot_of = self.slot_of
        other.longs = self.longs
        other.shorts = self.shorts
        other.k = self.k
        other.max_price = self.max_price
        other.max_position = self.max_position
        other.caps = self.caps
        other.mm_ppm = self.mm_ppm
        other.im_ppm = self.im_ppm
        other.mm_deduction = self.mm_deduction
        other.im_deduction = self.im_deduction
        other.taker_fee_ppm = self.taker_fee_ppm
        other.maker_fee_ppm = self.maker_fee_ppm
        other.fees_collected = self.fees_collected
        other.trigger = self.trigger
        other.mm_basis = self.mm_basis
        other.trade_log = self.trade_log
        return other

    cdef list account_rows(self):
        """The saved state's accounts: (owner, collateral, position, cost, reserve, exempt,
        isolated) in slot order."""
        cdef size_t i
        cdef const Account* a
        rows = []
        for i in range(self.accounts.size()):
            a = &self.accounts[i]
            rows.append((a.owner, a.collateral, a.position, a.cost, a.reserve, bool(a.exempt),
                         bool(a.isolated)))
        return rows

    cdef int load_accounts(self, list rows, dict open_qty) except -1:
        # Rows that passed check_state, into an empty ledger. What is derived is rebuilt: the
        # indexes, and the open quantities from the book's orders (check_state's "open").
        cdef int32_t slot
        cdef Account* a
        for owner, collateral, position, cost, reserve, exempt, isolated in rows:
            slot = self.open_account(owner, collateral, exempt, isolated, reserve)
            a = &self.accounts[slot]
            a.position = position
            a.cost = cost
            a.open_buy = open_qty.get((owner, BUY), 0)
            a.open_sell = open_qty.get((owner, SELL), 0)
        for slot in range(<int32_t>self.accounts.size()):
            self.reindex(slot)
        return 0

    cdef object trades_array(self):
        """The trade log as EVENT_DTYPE rows (a copy). O(trades)."""
        cdef unsigned char[::1] raw
        out = np.empty(self.trade_log.size(), dtype=EVENT_DTYPE)
        if self.trade_log.size():
            raw = out.view(np.uint8)
            memcpy(&raw[0], self.trade_log.data(), self.trade_log.size() * sizeof(EventRec))
        return out

    cdef int load_trades(self, object trades) except -1:
        # A checked EVENT_DTYPE array into an empty trade log.
        cdef const unsigned char[::1] raw
        trades = np.ascontiguousarray(trades)
        if len(trades):
            self.trade_log.resize(len(trades))
            raw = trades.view(np.uint8)
            memcpy(self.trade_log.data(), &raw[0], self.trade_log.size() * sizeof(EventRec))
        return 0
