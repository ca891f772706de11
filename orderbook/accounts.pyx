"""Margin accounts in C structs: settlement, tiered margin and the liquidation-price indexes.

Mirrors the account half of ``orderbook.reference_engine`` (docs/liquidation.md). Money is int64
quote units in storage; products that can pass int64 (notional x rate, sums of values) are taken
in 128-bit integers and are back in range by the bounds the Engine enforces.
"""

cimport cython
from cython.operator cimport dereference as deref
from libc.stdint cimport INT64_MAX, int32_t, int64_t

from orderbook.accounts cimport Account, IndexKey, int128, money_t
from orderbook._types cimport PPM, owner_t, price_t, qty_t


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

    cdef bint liquidatable_at(self, const Account* a, price_t price) noexcept nogil:
        if a.exempt or a.position == 0:
            return False
        cdef qty_t size = a.position if a.position > 0 else -a.position
        return self.equity(a, price, True) < self.requirement(self.value(price, size), False)

    cdef bint liquidation_price(self, const Account* a, price_t* out) noexcept nogil:
        # Liquidatable-ness is monotone in the price, so a binary search finds the boundary.
        cdef price_t lo, hi, mid
        if a.exempt or a.position == 0:
            return False
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
