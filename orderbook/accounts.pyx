"""Margin accounts in C structs: settlement, tiered margin and the trigger indexes.

Mirrors ``orderbook.reference_engine._Ledger`` (docs/liquidation.md). Money is int64 quote units
in storage; products that can pass int64 (notional x rate, sums of values) are taken in 128-bit
integers and are back in range by the bounds the Engine enforces.
"""

cimport cython
from cython.operator cimport dereference as deref, preincrement as inc, predecrement as dec
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint64_t
from libc.string cimport memcpy
from libcpp.algorithm cimport sort
from libcpp.set cimport set as cset
from libcpp.vector cimport vector

import numpy as np

from orderbook cimport _types as t
from orderbook._btree cimport KeySet
from orderbook.accounts cimport (
    IN_ALLOW_LONGS, IN_ALLOW_SHORTS, IN_ASIDE, IN_LONGS, IN_NONE, IN_SHORTS, MULTI_ALLOWED,
    MULTI_ASIDE, MULTI_CROSSED, MULTI_NONE, Account, AssetRec, Holding, IndexKey, InstrumentRec,
    Position, int128, money_t,
)
from orderbook._slottable cimport owner_find, owner_insert
from orderbook._types cimport BUY, PPM, EventRec, oid_t, owner_t, price_t, qty_t

from .events import EVENT_DTYPE

__all__ = ["Ledger"]

# Caps that keep the allowance arithmetic inside int128 and the keys inside int64 (ticks and quote
# units); a smaller buffer or allowance than the exact one is always safe, only less lasting.
cdef int128 BUDGET_CAP = (<int128>1) << 64
cdef int128 ALLOWANCE_CAP = (<int128>1) << 61


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


cdef inline int128 bracket_margin(const int64_t* caps, const int64_t* rates,
                                  const int128* deductions, size_t count,
                                  int128 notional) noexcept nogil:
    # The margin of one tier table (``count`` tiers) on a notional: its tier's rate less its
    # deduction, rounded up, at least 0. O(tiers).
    cdef size_t i = 0
    while i < count - 1 and notional > caps[i]:
        i += 1
    cdef int128 margin = ceil_div(notional * rates[i] - deductions[i], PPM)
    return margin if margin > 0 else 0


cdef inline int128 tier_requirement(
        Ledger ledger, int32_t instrument, int128 notional, bint initial) noexcept nogil:
    # Instrument ``instrument``'s margin on a notional (its slice of the tier vectors).
    cdef const InstrumentRec* r = &ledger.instruments[instrument]
    cdef size_t first = r.first_tier
    if initial:
        return bracket_margin(&ledger.all_caps[first], &ledger.all_im_ppm[first],
                              &ledger.all_im_deduction[first], r.tiers, notional)
    return bracket_margin(&ledger.all_caps[first], &ledger.all_mm_ppm[first],
                          &ledger.all_mm_deduction[first], r.tiers, notional)


cdef class Ledger:
    """The accounts of one Engine (internal; the Engine is the public face).

    Built with instrument 0's settings; the Engine adds the others (add_instrument).
    """

    def __init__(self, int64_t k, price_t max_price, qty_t max_position, tiers,
                 bint inverse=False):
        self.cur = -1
        self.inverse = inverse
        self.sign = -1 if inverse else 1
        self.add_instrument(k, max_price, max_position, tiers)

    def __reduce__(self):
        # No automatic pickling of raw slots and indexes: the Engine pickles checked state.
        raise TypeError("a Ledger cannot be pickled on its own; pickle its Engine")

    cdef int add_instrument(self, int64_t k, price_t max_price, qty_t max_position,
                            tiers) except -1:
        """Instrument ``len(instruments)``: its k, bounds and margin tiers. O(tiers)."""
        cdef InstrumentRec rec
        cdef KeySet[IndexKey] empty
        cdef cset[owner_t] none
        cdef vector[EventRec] log
        rec.k = k
        rec.max_price = max_price
        rec.max_position = max_position
        rec.first_tier = self.all_caps.size()
        rec.tiers = len(tiers.caps)
        rec.spot_asset = -1
        rec.units_per_lot = 0
        for cap in tiers.caps:
            self.all_caps.push_back(INT64_MAX if cap is None else cap)
        for rate in tiers.maintenance_ppm:
            self.all_mm_ppm.push_back(rate)
        for rate in tiers.initial_ppm:
            self.all_im_ppm.push_back(rate)
        for deduction in tiers.maintenance_deduction:
            self.all_mm_deduction.push_back(from_python(deduction))
        for deduction in tiers.initial_deduction:
            self.all_im_deduction.push_back(from_python(deduction))
        self.instruments.push_back(rec)
        self.asset_of.push_back(-1)
        self.longs.push_back(empty)
        self.shorts.push_back(empty)
        self.allow_longs.push_back(empty)
        self.allow_shorts.push_back(empty)
        self.aside.push_back(none)
        self.marks.push_back(0)
        self.has_mark.push_back(False)
        self.long_lots.push_back(0)
        self.trade_logs.push_back(log)
        if self.cur < 0:
            self.select(0)
        return 0

    cdef void select(self, int32_t instrument) noexcept nogil:
        # Make ``instrument`` the one k, max_price, max_position and the tier vectors describe.
        # A no-op when it already is (always, in a one-instrument venue).
        cdef const InstrumentRec* r
        if instrument == self.cur:
            return
        r = &self.instruments[instrument]
        self.cur = instrument
        self.k = r.k
        self.max_price = r.max_price
        self.max_position = r.max_position
        self.caps.assign(self.all_caps.begin() + r.first_tier,
                         self.all_caps.begin() + r.first_tier + r.tiers)
        self.mm_ppm.assign(self.all_mm_ppm.begin() + r.first_tier,
                           self.all_mm_ppm.begin() + r.first_tier + r.tiers)
        self.im_ppm.assign(self.all_im_ppm.begin() + r.first_tier,
                           self.all_im_ppm.begin() + r.first_tier + r.tiers)
        self.mm_deduction.assign(self.all_mm_deduction.begin() + r.first_tier,
                                 self.all_mm_deduction.begin() + r.first_tier + r.tiers)
        self.im_deduction.assign(self.all_im_deduction.begin() + r.first_tier,
                                 self.all_im_deduction.begin() + r.first_tier + r.tiers)

    cdef int add_asset(self, int32_t instrument, int64_t num, int64_t den, int64_t haircut_ppm,
                       int64_t discount_ppm) except -1:
        """Collateral asset ``len(assets)``, valued at ``instrument``'s mark. O(1)."""
        cdef AssetRec rec
        cdef KeySet[IndexKey] empty
        rec.instrument = instrument
        rec.num = num
        rec.den = den
        rec.haircut_ppm = haircut_ppm
        rec.discount_ppm = discount_ppm
        self.asset_of[instrument] = <int32_t>self.assets.size()
        self.assets.push_back(rec)
        self.allow_assets.push_back(empty)
        self.converted_units.push_back(0)
        self.converted_paid.push_back(0)
        return 0

    cdef int32_t open_account(self, owner_t owner, money_t collateral, bint exempt, bint isolated,
                              money_t reserve) except -1:
        """A new account, flat, in the next slot; returns the slot. Amortised O(1)."""
        cdef Account a
        a.owner = owner
        a.collateral = collateral
        a.reserve = reserve
        a.isolated = isolated
        a.queued = False
        a.multi = MULTI_NONE
        a.holdings = -1
        a.pos.position = 0
        a.pos.cost = 0
        a.pos.open_buy = 0
        a.pos.open_sell = 0
        a.pos.liq_price = 0
        a.pos.instrument = 0
        a.pos.next = -1
        a.pos.indexed = IN_NONE
        a.exempt = exempt
        self.accounts.push_back(a)
        owner_insert(&self.slot_of, self.accounts.data(), <int32_t>self.accounts.size() - 1)
        return <int32_t>self.accounts.size() - 1

    # ------------------------------------------------------------------ positions
    cdef int32_t slot(self, owner_t owner) noexcept nogil:
        # The account's slot, -1 for an owner with none. Expected O(1).
        return owner_find(&self.slot_of, self.accounts.data(), owner)

    cdef Position* pos(self, int32_t slot, int32_t instrument) noexcept nogil:
        # The account's position record in ``instrument``, made (flat) if it has none yet.
        # O(positions of the account).
        cdef Account* a = &self.accounts[slot]
        cdef Position* p = &a.pos
        cdef Position fresh
        cdef int32_t index
        if instrument == 0:
            return p
        while p.next >= 0 and self.pool[p.next].instrument <= instrument:
            p = &self.pool[p.next]
        if p.instrument == instrument:
            return p
        fresh.position = 0
        fresh.cost = 0
        fresh.open_buy = 0
        fresh.open_sell = 0
        fresh.liq_price = 0
        fresh.instrument = instrument
        fresh.next = p.next
        fresh.indexed = IN_NONE
        index = <int32_t>self.pool.size()
        self.pool.push_back(fresh)
        p.next = index
        return &self.pool[index]

    cdef Position* find(self, const Account* a, int32_t instrument) noexcept nogil:
        # The account's position record in ``instrument``, or NULL (read-only lookups).
        cdef const Position* p = &a.pos
        while p != NULL and p.instrument < instrument:
            p = self.next_pos(a, p)
        if p != NULL and p.instrument == instrument:
            return <Position*>p
        return NULL

    cdef Position* next_pos(self, const Account* a, const Position* p) noexcept nogil:
        # The record after p in the account's ascending list, or NULL.
        if p.next < 0:
            return NULL
        return &self.pool[p.next]

    cdef Holding* holding(self, int32_t slot, int32_t asset) noexcept nogil:
        # The account's holding of ``asset``, made (at 0 units) if it has none yet, in ascending
        # asset. O(holdings of the account).
        cdef Account* a = &self.accounts[slot]
        cdef Holding fresh
        cdef int32_t index, before = -1, at = a.holdings
        while at >= 0 and self.holding_pool[at].asset < asset:
            before = at
            at = self.holding_pool[at].next
        if at >= 0 and self.holding_pool[at].asset == asset:
            return &self.holding_pool[at]
        fresh.units = 0
        fresh.key = 0
        fresh.asset = asset
        fresh.next = at
        fresh.indexed = IN_NONE
        index = <int32_t>self.holding_pool.size()
        self.holding_pool.push_back(fresh)
        if before < 0:
            a.holdings = index
        else:
            self.holding_pool[before].next = index
        return &self.holding_pool[index]

    cdef Holding* first_holding(self, const Account* a) noexcept nogil:
        # The account's first holding, or NULL.
        if a.holdings < 0:
            return NULL
        return &self.holding_pool[a.holdings]

    cdef Holding* next_holding(self, const Holding* h) noexcept nogil:
        # The holding after h in the account's ascending list, or NULL.
        if h.next < 0:
            return NULL
        return &self.holding_pool[h.next]

    cdef int128 holding_value_at(self, const Holding* h, price_t price) noexcept nogil:
        # Quote units h counts for were its instrument's mark at ``price`` (0 .. max_price),
        # after haircut, rounded down. Within int128: units x max_price x num <= 2**61 den
        # (the deposit bound) with den <= 2**40, times 10**6.
        cdef const AssetRec* r = &self.assets[h.asset]
        return (<int128>h.units * price * r.num * (PPM - r.haircut_ppm)
                // (<int128>r.den * PPM))

    cdef int128 holding_value(self, const Holding* h) noexcept nogil:
        # At its instrument's mark; 0 without one.
        cdef int32_t instrument = self.assets[h.asset].instrument
        if h.units == 0 or not self.has_mark[instrument]:
            return 0
        return self.holding_value_at(h, self.marks[instrument])

    cdef int128 holdings_value(self, const Account* a) noexcept nogil:
        cdef const Holding* h = self.first_holding(a)
        cdef int128 total = 0
        while h != NULL:
            total += self.holding_value(h)
            h = self.next_holding(h)
        return total

    cdef Holding* own_holding(self, const Account* a, int32_t instrument) noexcept nogil:
        # a's holding (with units) of the asset valued at ``instrument``'s mark, or NULL (each
        # asset names its own instrument: at most one).
        cdef Holding* h
        cdef int32_t asset
        if a.holdings < 0 or instrument < 0:
            return NULL
        asset = self.asset_of[instrument]
        if asset < 0:
            return NULL
        h = self.first_holding(a)
        while h != NULL and h.asset < asset:
            h = self.next_holding(h)
        if h != NULL and h.asset == asset and h.units:
            return h
        return NULL

    cdef bint own_outweighs(self, const Account* a, const Position* p) noexcept nogil:
        # A short whose own asset (valued at its instrument) loses more per tick of a fall
        # than the short gains: units num (10**6 - haircut) / den > |q| k. Its equity rises
        # with the price and E - MM need not be monotone: no single liquidation price.
        cdef const Holding* h
        cdef const AssetRec* r
        if p.position >= 0:
            return False
        h = self.own_holding(a, p.instrument)
        if h == NULL:
            return False
        r = &self.assets[h.asset]
        return (<int128>h.units * r.num * (PPM - r.haircut_ppm)
                > <int128>(-p.position) * self.instruments[p.instrument].k * r.den * PPM)

    cdef bint holds_assets(self, const Account* a) noexcept nogil:
        cdef const Holding* h = self.first_holding(a)
        while h != NULL:
            if h.units:
                return True
            h = self.next_holding(h)
        return False

    cdef int held(self, const Account* a) noexcept nogil:
        # How many nonzero positions the account holds.
        cdef const Position* p = &a.pos
        cdef int n = 0
        while p != NULL:
            n += p.position != 0
            p = self.next_pos(a, p)
        return n

    # ------------------------------------------------------------------ money and margin
    cdef int128 value(self, price_t price, qty_t qty) noexcept nogil:
        # V(price, qty) in the selected instrument (margin.contract_value).
        return self.value_at(self.k, price, qty)

    cdef int128 value_at(self, int64_t k, price_t price, qty_t qty) noexcept nogil:
        # Linear: price qty k quote units; inverse: floor(k qty / price) coin units, price 0
        # counted as one tick (margin.contract_value).
        if self.inverse:
            return <int128>k * qty // (price if price > 1 else 1)
        return <int128>price * qty * k

    cdef int128 lots_within(self, price_t price, int128 budget) noexcept nogil:
        # The most lots of the selected instrument worth at most budget (>= 0) at price (> 0
        # when linear): margin.lots_within.
        if self.inverse:
            return ((budget + 1) * (price if price > 1 else 1) - 1) // self.k
        return budget // (<int128>price * self.k)

    cdef int128 unrealised(self, const Position* p, price_t mark, bint has_mark) noexcept nogil:
        # Of a position in the selected instrument.
        if p.position == 0 or not has_mark:
            return 0
        if p.position > 0:
            return self.sign * (self.value(mark, p.position) - p.cost)
        return self.sign * (p.cost - self.value(mark, -p.position))

    cdef int128 equity(self, const Account* a, const Position* p, price_t mark,
                       bint has_mark) noexcept nogil:
        # The collateral, p's unrealised profit (p in the selected instrument) and the value of
        # the asset p's mark values, at ``mark``: the account's equity when p is its only
        # position and that its only asset (``others`` adds the rest).
        cdef const Holding* h
        cdef int128 e = a.collateral + self.unrealised(p, mark, has_mark)
        if a.holdings >= 0 and has_mark:
            h = self.own_holding(a, p.instrument)
            if h != NULL:
                e += self.holding_value_at(h, mark)
        return e

    cdef int128 requirement(self, int128 notional, bint initial) noexcept nogil:
        # The selected instrument's margin on a notional (on the copies of its tiers: this is
        # in the liquidation price's binary search).
        if initial:
            return bracket_margin(self.caps.data(), self.im_ppm.data(),
                                  self.im_deduction.data(), self.caps.size(), notional)
        return bracket_margin(self.caps.data(), self.mm_ppm.data(), self.mm_deduction.data(),
                              self.caps.size(), notional)

    cdef int128 maintenance(self, const Position* p, price_t mark, bint has_mark) noexcept nogil:
        # The maintenance margin of p (in the selected instrument) on the ledger's basis: its
        # notional at the mark (0 without one), or its entry value, which needs no mark.
        cdef qty_t size = p.position if p.position > 0 else -p.position
        if self.mm_basis == t.BASIS_ENTRY:
            return self.requirement(p.cost, False)
        return self.requirement(self.value(mark, size) if has_mark else 0, False)

    cdef void others(self, const Account* a, int32_t instrument, int128* u, int128* mm,
                     int128* im) noexcept nogil:
        # "Others held fixed": the sums over a's nonzero positions in instruments other than
        # ``instrument`` (-1: all of them) of U_j, MM_j and IM_j at the current marks (im may be
        # NULL); u also holds the value of a's collateral assets at the current marks but the
        # one valued at ``instrument``'s (``equity`` moves that one with p). O(positions +
        # holdings).
        cdef const Position* p = &a.pos
        cdef const InstrumentRec* r
        cdef price_t m
        cdef qty_t size
        cdef int128 notional
        cdef const Holding* h = self.first_holding(a)
        u[0] = 0
        while h != NULL:
            if self.assets[h.asset].instrument != instrument:
                u[0] += self.holding_value(h)
            h = self.next_holding(h)
        mm[0] = 0
        if im != NULL:
            im[0] = 0
        while p != NULL:
            if p.position != 0 and p.instrument != instrument:
                r = &self.instruments[p.instrument]
                m = self.marks[p.instrument] if self.has_mark[p.instrument] else 0
                size = p.position if p.position > 0 else -p.position
                notional = self.value_at(r.k, m, size) if self.has_mark[p.instrument] else 0
                if self.has_mark[p.instrument]:
                    u[0] += self.sign * (notional - p.cost if p.position > 0 else
                                         p.cost - notional)
                mm[0] += tier_requirement(self, p.instrument, <int128>p.cost if (
                    self.mm_basis == t.BASIS_ENTRY) else notional, False)
                if im != NULL:
                    im[0] += tier_requirement(self, p.instrument, notional, True)
            p = self.next_pos(a, p)

    cdef int128 total_equity_of(self, const Account* a) noexcept nogil:
        # E = C + sum_i U_i at the current marks.
        cdef int128 u, mm
        self.others(a, -1, &u, &mm, NULL)
        return a.collateral + u

    cdef int128 total_maintenance_of(self, const Account* a) noexcept nogil:
        # MM = sum_i MM_i at the current marks.
        cdef int128 u, mm
        self.others(a, -1, &u, &mm, NULL)
        return mm

    cdef bint liquidatable(self, const Account* a) noexcept nogil:
        # Not exempt, holds a position, every instrument it holds or that values an asset it
        # holds has a mark, and E short of MM.
        cdef const Position* p = &a.pos
        cdef const Holding* h = self.first_holding(a)
        cdef bint holds = False
        cdef int128 u, mm
        if a.exempt:
            return False
        while h != NULL:
            if h.units and not self.has_mark[self.assets[h.asset].instrument]:
                return False
            h = self.next_holding(h)
        while p != NULL:
            if p.position != 0:
                if not self.has_mark[p.instrument]:
                    return False
                holds = True
            p = self.next_pos(a, p)
        if not holds:
            return False
        self.others(a, -1, &u, &mm, NULL)
        return self.short_of(a.collateral + u, mm)

    cdef bint short_of(self, int128 equity, int128 margin) noexcept nogil:
        # The trigger: equity below the margin, or at or below it.
        if self.trigger == t.TRIGGER_AT_OR_BELOW:
            return equity <= margin
        return equity < margin

    cdef bint liquidatable_at(self, const Account* a, const Position* p, price_t price,
                              int128 ou, int128 om) noexcept nogil:
        # At ``price`` of p's (selected) instrument, the account's others held fixed at ou (their
        # unrealised profit) and om (their maintenance margin).
        if a.exempt or p.position == 0:
            return False
        return self.short_of(self.equity(a, p, price, True) + ou,
                             self.maintenance(p, price, True) + om)

    cdef bint liquidation_price(self, const Account* a, const Position* p, int128 ou, int128 om,
                                price_t* out) noexcept nogil:
        # Liquidatable-ness is monotone in the price, so a binary search finds the boundary;
        # on the entry basis MM does not move with the price and the boundary is solved for.
        # With an asset valued at p's mark (moving with it in ``equity``) the search is used on
        # both bases: E - MM stays monotone, but for a short its asset outweighs (no price).
        cdef price_t lo, hi, mid
        if a.exempt or p.position == 0 or self.own_outweighs(a, p):
            return False
        if (self.mm_basis == t.BASIS_ENTRY and self.own_holding(a, p.instrument) == NULL
                and not self.inverse):
            return self.entry_liquidation_price(a, p, ou, om, out)
        if p.position > 0:
            if not self.liquidatable_at(a, p, 0, ou, om):
                return False
            lo, hi = self.bracket(a, p, ou, om, 0, self.max_price + 1, True)
            while hi - lo > 1:
                mid = lo + (hi - lo) // 2
                if self.liquidatable_at(a, p, mid, ou, om):
                    lo = mid
                else:
                    hi = mid
            out[0] = lo
            return True
        if not self.liquidatable_at(a, p, self.max_price, ou, om):
            return False
        lo, hi = self.bracket(a, p, ou, om, -1, self.max_price, False)
        while hi - lo > 1:
            mid = lo + (hi - lo) // 2
            if self.liquidatable_at(a, p, mid, ou, om):
                hi = mid
            else:
                lo = mid
        out[0] = hi
        return True

    cdef (price_t, price_t) bracket(self, const Account* a, const Position* p, int128 ou,
                                    int128 om, price_t lo, price_t hi,
                                    bint long) noexcept nogil:
        # A narrower (lo, hi) around liquidation_price's boundary, for its binary search: the
        # same answer in a few evaluations instead of ~log2(max_price), which matters when a
        # population of millions is seeded. The guess is where the line through the margin
        # slack (E - MM) at the price the position was opened at and at the far end of the
        # search crosses zero (exact for one tier of a linear contract); steps of 1, 2, 4, ...
        # from it find prices on both sides, so any guess only costs steps. For a long,
        # liquidatable at lo and not at hi (hi may be max_price + 1, never evaluated); for a
        # short, not at lo (may be -1) and liquidatable at hi.
        cdef qty_t size = p.position if p.position > 0 else -p.position
        cdef price_t entry, guess, step, probe
        cdef price_t far = 0 if long else self.max_price
        cdef int128 s_far, s_entry
        cdef double root
        if p.cost <= 0:
            return lo, hi
        if self.inverse:
            entry = <price_t>(<double>self.k * size / p.cost)
        else:
            entry = <price_t>(<double>p.cost / (<double>self.k * size))
        if entry < 1 or entry >= self.max_price:
            return lo, hi
        s_far = (self.equity(a, p, far, True) + ou) - (self.maintenance(p, far, True) + om)
        s_entry = (self.equity(a, p, entry, True) + ou) - (self.maintenance(p, entry, True) + om)
        guess = entry
        if s_entry > 0 and s_far <= 0:
            root = far + (entry - far) * (<double>(-s_far) / (<double>s_entry - <double>s_far))
            if lo < root < hi:
                guess = <price_t>root
        if guess <= lo or guess >= hi:
            return lo, hi
        step = 1
        if self.liquidatable_at(a, p, guess, ou, om) == long:
            # on the liquidatable side for a long (the safe side for a short): walk up
            probe = guess
            while True:
                lo = probe
                probe = probe + step
                if probe >= hi:
                    return lo, hi
                if self.liquidatable_at(a, p, probe, ou, om) != long:
                    return lo, probe
                step *= 2
        probe = guess
        while True:
            hi = probe
            probe = probe - step
            if probe <= lo:
                return lo, hi
            if self.liquidatable_at(a, p, probe, ou, om) == long:
                return probe, hi
            step *= 2

    cdef bint entry_liquidation_price(self, const Account* a, const Position* p, int128 ou,
                                      int128 om, price_t* out) noexcept nogil:
        # MM fixed at M = om + MM(C) and W = collateral + ou: a long is liquidatable at P when
        # W + P|q|k - C < M (or <=), i.e. P|q|k < M + C - W: the largest such P is
        # ceil((M + C - W) / (|q|k)) - 1 (or floor(...) for <=); a short when W + C - P|q|k < M
        # (or <=), i.e. P|q|k > W + C - M: the smallest is floor((W + C - M) / (|q|k)) + 1 (or
        # ceil(...)). Clamped to [0, max_price], None where that leaves no price.
        cdef int128 margin = self.requirement(p.cost, False) + om
        cdef int128 wealth = a.collateral + ou
        cdef bint at = self.trigger == t.TRIGGER_AT_OR_BELOW
        cdef int128 size = p.position if p.position > 0 else -p.position
        cdef int128 step = size * self.k   # quote units the equity moves per tick
        cdef int128 price
        if p.position > 0:
            price = floor_div(margin + p.cost - wealth, step) if at else (
                ceil_div(margin + p.cost - wealth, step) - 1)
            if price < 0:
                return False
            out[0] = <price_t>(price if price < self.max_price else self.max_price)
            return True
        price = ceil_div(wealth + p.cost - margin, step) if at else (
            floor_div(wealth + p.cost - margin, step) + 1)
        if price > self.max_price:
            return False
        out[0] = <price_t>(price if price > 0 else 0)
        return True

    cdef bint bankruptcy_price(self, const Account* a, const Position* p, int128 ou,
                               price_t* out) noexcept nogil:
        # Where p's loss takes the collateral plus ou (the others' profit) to zero; with an
        # asset valued at p's mark, searched in [0, max_price] (the reference's solvent_edge).
        cdef int128 price
        cdef price_t lo, hi, mid
        if p.position == 0:
            return False
        if self.own_holding(a, p.instrument) != NULL or self.inverse:
            # (an inverse equity is not linear in the price: searched too)
            # "past the edge" holds from some price up (a long: solvent; a short: insolvent):
            # the first such price in [0, max_price], max_price + 1 if none
            lo, hi = -1, self.max_price + 1
            while hi - lo > 1:
                mid = lo + (hi - lo) // 2
                if (self.equity(a, p, mid, True) + ou >= 0) == (p.position > 0):
                    hi = mid
                else:
                    lo = mid
            if p.position > 0:
                out[0] = hi if hi <= self.max_price else self.max_price
            else:
                out[0] = hi - 1 if hi > 0 else 0
            return True
        if p.position > 0:
            price = ceil_div(<int128>p.cost - a.collateral - ou, <int128>p.position * self.k)
        else:
            price = floor_div(<int128>p.cost + a.collateral + ou, <int128>(-p.position) * self.k)
        out[0] = <price_t>(price if price > 0 else 0)
        return True

    # ------------------------------------------------------------------ the indexes
    cdef void unindex(self, Position* p, owner_t owner) noexcept nogil:
        # Out of whichever per-instrument structure ``indexed`` names. O(log n).
        if p.indexed == IN_LONGS:
            self.longs[p.instrument].erase(IndexKey(p.liq_price, owner))
        elif p.indexed == IN_SHORTS:
            self.shorts[p.instrument].erase(IndexKey(p.liq_price, owner))
        elif p.indexed == IN_ALLOW_LONGS:
            self.allow_longs[p.instrument].erase(IndexKey(p.liq_price, owner))
        elif p.indexed == IN_ALLOW_SHORTS:
            self.allow_shorts[p.instrument].erase(IndexKey(p.liq_price, owner))
        elif p.indexed == IN_ASIDE:
            self.aside[p.instrument].erase(owner)
        p.indexed = IN_NONE

    cdef void unindex_holding(self, Holding* h, owner_t owner) noexcept nogil:
        if h.indexed == IN_ALLOW_LONGS:
            self.allow_assets[h.asset].erase(IndexKey(h.key, owner))
        elif h.indexed == IN_ASIDE:
            self.aside[self.assets[h.asset].instrument].erase(owner)
        h.indexed = IN_NONE

    cdef void reindex(self, int32_t slot) noexcept nogil:
        # The trigger index after a change of the account's money or positions: one position
        # (in instrument i), no collateral asset, not exempt: in i's longs or shorts by its
        # liquidation price there; two or more, or one and an asset (whose value moves with
        # another mark): evaluated and given allowances (allow); none: nowhere.
        # O(positions (tiers + log n)), plus the liquidation price's search.
        cdef Account* a = &self.accounts[slot]
        cdef Position* p = &a.pos
        cdef Holding* h = self.first_holding(a)
        cdef bint has_assets = False
        cdef Position* only = NULL
        cdef int n = 0
        cdef int32_t selected = self.cur
        cdef price_t price = 0
        if a.multi == MULTI_CROSSED:
            self.crossing.erase(a.owner)
        a.multi = MULTI_NONE
        while p != NULL:
            self.unindex(p, a.owner)
            if p.position != 0:
                n += 1
                only = p
            p = self.next_pos(a, p)
        while h != NULL:
            self.unindex_holding(h, a.owner)
            has_assets |= h.units != 0
            h = self.next_holding(h)
        if (n >= 2 or (n == 1 and has_assets)) and not a.exempt:
            self.allow(a)
            return
        if only == NULL:
            return
        self.select(only.instrument)
        if self.liquidation_price(a, only, 0, 0, &price):
            only.liq_price = price
            if only.position > 0:
                self.longs[only.instrument].insert(IndexKey(price, a.owner))
                only.indexed = IN_LONGS
            else:
                self.shorts[only.instrument].insert(IndexKey(price, a.owner))
                only.indexed = IN_SHORTS
        self.select(selected)

    # The allowance index (docs/market_wide.md section 3). Write S = E - MM at the marks m_j of
    # an account's exact evaluation; under Trigger.BELOW it is liquidatable iff S < 0, under
    # AT_OR_BELOW iff S <= 0, so it is not liquidatable iff S - s >= 0 with s = 0 (BELOW) or 1
    # (AT_OR_BELOW); call B = S - s its budget. Claim: if every instrument's mark has moved, in
    # the position's losing direction (down for a long, up for a short), by d_i <= A_i ticks,
    # with A_i >= 0 and sum_i L_i A_i <= B, and any distance in the other direction, then
    # E' - MM' >= S - sum_i L_i d_i >= S - B = s, so the account is still not liquidatable.
    # Per position (q lots of instrument i, k = k_i), E - MM is a sum of independent terms
    # U_i(m_i) - MM_i(m_i), so it suffices that each falls by at most L_i d_i:
    # - MM_i(N) = max(0, ceil(g(N) / 10**6)) on the notional N = m|q|k, with
    #   g(N) = N r_t - d_t in tier t. The deductions d_t make g continuous (margin.py), g(0) = 0,
    #   and its slopes r_t are non-decreasing and at most r_max (the last tier's rate): so g is
    #   non-decreasing and g(N + D) - g(N) <= D r_max for D >= 0. As ceil(x + y) <= ceil(x) +
    #   ceil(y) and g >= 0, MM_i(N + D) - MM_i(N) <= ceil(D r_max / 10**6), and MM_i does not
    #   rise when N falls.
    # - A long, mark down by d: U falls by d|q|k exactly and MM does not rise: L = |q|k.
    #   Mark up by d: U rises by d|q|k = D and MM by at most ceil(D r_max / 10**6) <= D (D is a
    #   whole number, r_max <= 10**6): the term does not fall.
    # - A short, mark up by d: U falls by D = d|q|k, MM rises by at most ceil(D r_max / 10**6)
    #   <= d ceil(|q| k r_max / 10**6): L = |q|k + ceil(|q| k r_max / 10**6). Mark down: U rises,
    #   MM does not: the term does not fall.
    # - On the ENTRY basis MM does not move with the mark: L = |q|k on both sides.
    # The split: A_i = floor(B w_i / W) with w_i the mark clamped to [1, max_price] and
    # W = sum_j L_j w_j, so sum_i L_i A_i <= B sum_i L_i w_i / W = B: every instrument may move
    # by the same fraction B / W of its mark. The account is entered in i's allow_longs at
    # m_i - A_i (a long) or allow_shorts at m_i + A_i (a short): a mark strictly past that key
    # pops it and it is evaluated again (cross_multi).
    # Inverse (docs/market_wide.md section 7): V(m) = floor(K|q| / m) is convex, so no rate
    # per tick holds at every mark; one holds near the mark m of the evaluation. As
    # floor(x) - floor(y) <= ceil(x - y):
    # - A long, mark down by d <= m / 2 (allow caps its allowance there): V rises by at most
    #   ceil(K|q| d / ((m - d) m)) <= d ceil(2K|q| / m**2) = d c, U = B - V falls by that and
    #   MM on V rises by at most d ceil(c r_max / 10**6): L = c + ceil(c r_max / 10**6) (ENTRY:
    #   c). Mark up: V falls, U rises and MM does not: no fall.
    # - A short, mark up by any d: V falls by at most ceil(K|q| d / (m (m + d))) <=
    #   d ceil(K|q| / m**2), U = V - B falls by that and MM does not rise: L = ceil(K|q| / m**2).
    #   Mark down: U rises by the whole rise of V, MM by at most that (r_max <= 10**6).
    cdef int128 loss_rate(self, const Position* p) noexcept nogil:
        # L_i: quote units by which p's E - MM term can fall per tick of its instrument's mark
        # moving in the losing direction (the proof above). O(1).
        cdef const InstrumentRec* r = &self.instruments[p.instrument]
        cdef int128 step = <int128>(p.position if p.position > 0 else -p.position) * r.k
        cdef int128 m
        if self.inverse:
            m = self.marks[p.instrument]
            m = m if m > 1 else 1
            if p.position < 0:
                return ceil_div(step, m * m)
            step = ceil_div(2 * step, m * m)
            if self.mm_basis == t.BASIS_ENTRY:
                return step
            return step + ceil_div(step * self.all_mm_ppm[r.first_tier + r.tiers - 1], PPM)
        if p.position > 0 or self.mm_basis == t.BASIS_ENTRY:
            return step
        return step + ceil_div(step * self.all_mm_ppm[r.first_tier + r.tiers - 1], PPM)

    cdef int128 holding_loss_rate(self, const Holding* h) noexcept nogil:
        # L for a collateral asset: its value floor(c m), c = units num (10**6 - haircut) /
        # (den 10**6), falls by floor(c m) - floor(c (m - d)) <= ceil(c d) <= d ceil(c) when its
        # mark falls by d, and does not fall when it rises: L = ceil(c). O(1).
        cdef const AssetRec* r = &self.assets[h.asset]
        return ceil_div(<int128>h.units * r.num * (PPM - r.haircut_ppm), <int128>r.den * PPM)

    cdef void allow(self, Account* a) noexcept nogil:
        # The exact evaluation of an account holding two or more positions, or one and a
        # collateral asset, not exempt, out of every structure: aside in the first instrument it
        # holds (or that values an asset it holds) that has no mark; liquidatable: in crossing;
        # otherwise its allowances in the allow indexes, an asset's in allow_assets like a long
        # (its value falls with its mark). O((positions + holdings) (tiers + log n)).
        cdef Position* p = &a.pos
        cdef Holding* h
        cdef int128 u, mm, budget, allowance, total = 0
        cdef price_t mark
        cdef int32_t instrument
        while p != NULL:
            if p.position != 0 and not self.has_mark[p.instrument]:
                self.aside[p.instrument].insert(a.owner)
                p.indexed = IN_ASIDE
                a.multi = MULTI_ASIDE
                return
            p = self.next_pos(a, p)
        h = self.first_holding(a)
        while h != NULL:
            instrument = self.assets[h.asset].instrument
            if h.units and not self.has_mark[instrument]:
                self.aside[instrument].insert(a.owner)
                h.indexed = IN_ASIDE
                a.multi = MULTI_ASIDE
                return
            h = self.next_holding(h)
        self.others(a, -1, &u, &mm, NULL)
        budget = a.collateral + u - mm
        if self.trigger == t.TRIGGER_AT_OR_BELOW:
            budget -= 1
        if budget < 0:
            self.crossing.insert(a.owner)
            a.multi = MULTI_CROSSED
            return
        if budget > BUDGET_CAP:
            budget = BUDGET_CAP
        p = &a.pos
        while p != NULL:
            if p.position != 0:
                total += self.loss_rate(p) * self.allowance_weight(p)
            p = self.next_pos(a, p)
        h = self.first_holding(a)
        while h != NULL:
            if h.units:
                total += self.holding_loss_rate(h) * self.mark_weight(
                    self.assets[h.asset].instrument)
            h = self.next_holding(h)
        p = &a.pos
        while p != NULL:
            if p.position != 0:
                allowance = budget * self.allowance_weight(p) // total
                if allowance > ALLOWANCE_CAP:
                    allowance = ALLOWANCE_CAP
                mark = self.marks[p.instrument]
                if p.position > 0:
                    if self.inverse and allowance > mark // 2:
                        allowance = mark // 2   # where the inverse rate holds (loss_rate)
                    p.liq_price = mark - <price_t>allowance
                    self.allow_longs[p.instrument].insert(IndexKey(p.liq_price, a.owner))
                    p.indexed = IN_ALLOW_LONGS
                else:
                    p.liq_price = mark + <price_t>allowance
                    self.allow_shorts[p.instrument].insert(IndexKey(p.liq_price, a.owner))
                    p.indexed = IN_ALLOW_SHORTS
            p = self.next_pos(a, p)
        h = self.first_holding(a)
        while h != NULL:
            if h.units:
                instrument = self.assets[h.asset].instrument
                allowance = budget * self.mark_weight(instrument) // total
                if allowance > ALLOWANCE_CAP:
                    allowance = ALLOWANCE_CAP
                h.key = self.marks[instrument] - <price_t>allowance
                self.allow_assets[h.asset].insert(IndexKey(h.key, a.owner))
                h.indexed = IN_ALLOW_LONGS
            h = self.next_holding(h)
        a.multi = MULTI_ALLOWED

    cdef int128 allowance_weight(self, const Position* p) noexcept nogil:
        # w_i: the mark of p's instrument clamped to [1, max_price] (ticks).
        return self.mark_weight(p.instrument)

    cdef int128 mark_weight(self, int32_t instrument) noexcept nogil:
        cdef price_t mark = self.marks[instrument]
        cdef price_t top = self.instruments[instrument].max_price
        if mark > top:
            mark = top
        return mark if mark > 1 else 1

    cdef void pop_above(self, KeySet[IndexKey]* index, price_t mark,
                        vector[int32_t]* popped) noexcept nogil:
        # The slots of the entries of ``index`` keyed strictly above ``mark`` (a long's or an
        # asset's allowance the mark fell past), from the top. O(log n + popped).
        cdef KeySet[IndexKey].iterator it = index.end()
        while it != index.begin():
            dec(it)
            if deref(it).first <= mark:
                break
            popped.push_back(self.slot(deref(it).second))

    cdef void cross_multi(self, vector[owner_t]* crossed) noexcept nogil:
        # The crossing check of the accounts holding two or more positions, at the current
        # marks: every allowance a mark passed, and every account aside in an instrument that
        # now has a mark, evaluated again (allow); then every account in crossing that is still
        # liquidatable goes to ``crossed`` (the others get fresh allowances).
        # O(instruments log n + popped (positions (tiers + log n)) + crossing).
        cdef vector[int32_t] popped
        cdef vector[owner_t] listed
        cdef KeySet[IndexKey].iterator it
        cdef KeySet[IndexKey]* index
        cdef cset[owner_t].iterator waiting
        cdef price_t mark
        cdef size_t n, i
        for n in range(self.instruments.size()):
            if not self.has_mark[n]:
                continue
            mark = self.marks[n]
            self.pop_above(&self.allow_longs[n], mark, &popped)
            index = &self.allow_shorts[n]
            it = index.begin()
            while it != index.end() and deref(it).first < mark:
                popped.push_back(self.slot(deref(it).second))
                inc(it)
            # (the assets valued at this mark: allow_assets, by asset, below)
            waiting = self.aside[n].begin()
            while waiting != self.aside[n].end():
                popped.push_back(self.slot(deref(waiting)))
                inc(waiting)
        for n in range(self.assets.size()):
            if not self.has_mark[self.assets[n].instrument]:
                continue
            self.pop_above(&self.allow_assets[n], self.marks[self.assets[n].instrument], &popped)
        # An account popped on two instruments is evaluated once.
        sort(popped.begin(), popped.end())
        for i in range(popped.size()):
            if i == 0 or popped[i] != popped[i - 1]:
                self.reindex(popped[i])
        listed.assign(self.crossing.begin(), self.crossing.end())
        for i in range(listed.size()):
            if self.liquidatable(&self.accounts[self.slot(listed[i])]):
                crossed.push_back(listed[i])
            else:
                self.reindex(self.slot(listed[i]))

    # ------------------------------------------------------------------ settlement
    cdef void settle(self, int32_t slot, qty_t delta, price_t price) noexcept nogil:
        # A fill of delta lots (signed) at price in the selected instrument, without fees, then
        # the index follows.
        self.fill(slot, delta, price)
        self.reindex(slot)

    cdef void fill(self, int32_t slot, qty_t delta, price_t price) noexcept nogil:
        # settle without the index (the caller reindexes): the account's position and money,
        # and the open interest.
        cdef Position* p = self.pos(slot, self.cur)
        cdef qty_t before = p.position
        self.apply_fill(&self.accounts[slot], p, delta, price)
        self.long_lots[self.cur] += ((p.position if p.position > 0 else 0)
                                     - (before if before > 0 else 0))

    cdef void apply_fill(self, Account* a, Position* p, qty_t delta,
                         price_t price) noexcept nogil:
        # The settlement arithmetic of docs/liquidation.md, on any account and position record
        # (p in the selected instrument).
        cdef qty_t q = p.position
        cdef qty_t size = delta if delta > 0 else -delta
        cdef qty_t held = q if q > 0 else -q
        cdef qty_t closed, rest
        cdef money_t released
        cdef int128 closed_value
        if q == 0 or (q > 0) == (delta > 0):
            p.position = q + delta
            p.cost += <money_t>self.value(price, size)
        else:
            closed = size if size < held else held
            released = <money_t>floor_div(<int128>p.cost * closed, held)
            closed_value = self.value(price, closed)
            if q > 0:
                a.collateral += <money_t>(self.sign * (closed_value - released))
            else:
                a.collateral += <money_t>(self.sign * (released - closed_value))
            p.cost -= released
            p.position = q + (closed if delta > 0 else -closed)
            rest = size - closed
            if rest:
                # the rest opens at what the fill is worth less the closed part, so the fill
                # moves V(price, |delta|) in all on both sides (inverse values do not add up)
                p.position = rest if delta > 0 else -rest
                p.cost = <money_t>(self.value(price, size) - closed_value)

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

    cdef void exchange(self, int32_t buyer, int32_t seller, qty_t qty,
                       int128 value) noexcept nogil:
        # A fill on the selected spot book: qty lots of its asset from seller to buyer for
        # value quote units, no position (the reference's exchange).
        cdef const InstrumentRec* r = &self.instruments[self.cur]
        cdef money_t units = <money_t>(qty * r.units_per_lot)
        self.accounts[buyer].collateral -= <money_t>value
        self.holding(buyer, r.spot_asset).units += units
        self.accounts[seller].collateral += <money_t>value
        self.holding(seller, r.spot_asset).units -= units
        self.reindex(buyer)
        self.reindex(seller)

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
        # Settle the trades the selected instrument's book just reported for message
        # ``message_id``, with their fees,
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
                self.trade_logs[self.cur].push_back(e[0])
                taker = self.slot(e.owner)
                maker = self.slot(e.maker_owner)
                value = self.value(e.price, e.qty)
                if self.instruments[self.cur].spot_asset < 0:
                    self.settle(taker, e.side * e.qty, e.price)
                    self.settle(maker, -e.side * e.qty, e.price)
                elif e.side == BUY:
                    self.exchange(taker, maker, e.qty, value)
                else:
                    self.exchange(maker, taker, e.qty, value)
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
        # Open lots in the selected instrument's book.
        cdef Position* p = self.pos(slot, self.cur)
        if side == BUY:
            p.open_buy += qty
        else:
            p.open_sell += qty

    # ------------------------------------------------------------------ copies and saved state
    cdef Ledger copy(self):
        """An independent ledger with the same instruments, accounts, indexes, fees and trade
        logs. O(state)."""
        cdef Ledger other = Ledger.__new__(Ledger)
        other.accounts = self.accounts
        other.pool = self.pool
        other.slot_of = self.slot_of
        other.longs = self.longs
        other.shorts = self.shorts
        other.allow_longs = self.allow_longs
        other.allow_shorts = self.allow_shorts
        other.aside = self.aside
        other.crossing = self.crossing
        other.instruments = self.instruments
        other.marks = self.marks
        other.has_mark = self.has_mark
        other.long_lots = self.long_lots
        other.cur = self.cur
        other.k = self.k
        other.inverse = self.inverse
        other.sign = self.sign
        other.max_price = self.max_price
        other.max_position = self.max_position
        other.caps = self.caps
        other.mm_ppm = self.mm_ppm
        other.im_ppm = self.im_ppm
        other.mm_deduction = self.mm_deduction
        other.im_deduction = self.im_deduction
        other.all_caps = self.all_caps
        other.all_mm_ppm = self.all_mm_ppm
        other.all_im_ppm = self.all_im_ppm
        other.all_mm_deduction = self.all_mm_deduction
        other.all_im_deduction = self.all_im_deduction
        other.taker_fee_ppm = self.taker_fee_ppm
        other.maker_fee_ppm = self.maker_fee_ppm
        other.fees_collected = self.fees_collected
        other.trigger = self.trigger
        other.mm_basis = self.mm_basis
        other.trade_logs = self.trade_logs
        other.assets = self.assets
        other.asset_of = self.asset_of
        other.holding_pool = self.holding_pool
        other.allow_assets = self.allow_assets
        other.converted_units = self.converted_units
        other.converted_paid = self.converted_paid
        return other

    cdef list account_rows(self):
        """The saved state's accounts: (owner, collateral, reserve, exempt, isolated, positions,
        holdings) in slot order, positions a tuple of (instrument, position, cost), nonzero,
        ascending; holdings of (asset, units), nonzero, ascending."""
        cdef size_t i
        cdef const Account* a
        cdef const Position* p
        cdef const Holding* h
        rows = []
        for i in range(self.accounts.size()):
            a = &self.accounts[i]
            positions = []
            p = &a.pos
            while p != NULL:
                if p.position != 0:
                    positions.append((p.instrument, p.position, p.cost))
                p = self.next_pos(a, p)
            holdings = []
            h = self.first_holding(a)
            while h != NULL:
                if h.units:
                    holdings.append((h.asset, h.units))
                h = self.next_holding(h)
            rows.append((a.owner, a.collateral, a.reserve, bool(a.exempt), bool(a.isolated),
                         tuple(positions), tuple(holdings)))
        return rows

    cdef int load_accounts(self, list rows, dict open_qty) except -1:
        # Rows that passed check_state, into an empty ledger. What is derived is rebuilt: the
        # indexes, and the open quantities from the books' orders (check_state's "open",
        # (instrument, owner, side) -> lots).
        cdef int32_t slot, instrument
        cdef Position* p
        for owner, collateral, reserve, exempt, isolated, positions, holdings in rows:
            slot = self.open_account(owner, collateral, exempt, isolated, reserve)
            for instrument, position, cost in positions:
                p = self.pos(slot, instrument)
                p.position = position
                p.cost = cost
                if position > 0:
                    self.long_lots[instrument] += <qty_t>position
            for asset, units in holdings:
                self.holding(slot, asset).units = units
        for (instrument, owner, side), lots in open_qty.items():
            p = self.pos(self.slot(owner), instrument)
            if side == BUY:
                p.open_buy = lots
            else:
                p.open_sell = lots
        for slot in range(<int32_t>self.accounts.size()):
            self.reindex(slot)
        return 0

    cdef object trades_array(self, int32_t instrument, int64_t start=0):
        """An instrument's trade log from its ``start``-th trade as EVENT_DTYPE rows (a copy).
        O(rows copied); ``start`` past the end is a ValueError."""
        cdef unsigned char[::1] raw
        cdef vector[EventRec]* log = &self.trade_logs[instrument]
        cdef size_t count = log.size()
        if <uint64_t>start > count:
            raise ValueError(f"start must be at most the trade count {count}, got {start}")
        out = np.empty(count - <size_t>start, dtype=EVENT_DTYPE)
        if count > <size_t>start:
            raw = out.view(np.uint8)
            memcpy(&raw[0], log.data() + start, (count - <size_t>start) * sizeof(EventRec))
        return out

    cdef int load_trades(self, int32_t instrument, object trades) except -1:
        # A checked EVENT_DTYPE array into an instrument's empty trade log.
        cdef const unsigned char[::1] raw
        cdef vector[EventRec]* log = &self.trade_logs[instrument]
        trades = np.ascontiguousarray(trades)
        if len(trades):
            log.resize(len(trades))
            raw = trades.view(np.uint8)
            memcpy(log.data(), &raw[0], log.size() * sizeof(EventRec))
        return 0


# ---------------------------------------------------------------------- the index, for tests
cdef list index_keys(const KeySet[IndexKey]* index, bint backward):
    # Every key by ++ from begin(), or by -- from end().
    cdef KeySet[IndexKey].iterator it
    cdef list keys = []
    if backward:
        it = index.end()
        while it != index.begin():
            dec(it)
            keys.append((deref(it).first, deref(it).second))
    else:
        it = index.begin()
        while it != index.end():
            keys.append((deref(it).first, deref(it).second))
            inc(it)
    return keys


def _index_replay(ops):
    """Run ``ops`` on two of the Ledger's key sets (orderbook/_btree.pxd), for the tests.

    Each op is ``(name, a, b)``; set 0 is the one ops act on, set 1 a copy. ``insert`` and
    ``erase`` of the key ``(a, b)`` in set 0 return whether it was absent / 1 if it was in;
    ``insert_copy`` and ``erase_copy`` the same in set 1; ``copy`` assigns set 0 to set 1 and
    ``construct`` copy-constructs set 1 from set 0 (None); ``clear`` empties set 0 (None);
    ``seek`` steps ``a`` times forward from begin() (stopping at end()) then ``b`` times back
    (stopping at begin()) and returns the key there, None at end(). Both sets' invariants are
    checked after each op while they hold 4,096 keys or fewer, else after every 256th and the
    last (AssertionError naming the op). Returns the ops' results, then
    ``(size, forward keys, backward keys)`` of set 0 and of set 1.
    """
    cdef KeySet[IndexKey] sets[2]
    cdef KeySet[IndexKey].iterator it
    cdef list results = []
    cdef int64_t steps
    for k, (name, a, b) in enumerate(ops):
        if name == "insert" or name == "insert_copy":
            results.append(sets[name == "insert_copy"].insert(IndexKey(a, b)))
        elif name == "erase" or name == "erase_copy":
            results.append(sets[name == "erase_copy"].erase(IndexKey(a, b)))
        elif name == "copy":
            sets[1] = sets[0]
            results.append(None)
        elif name == "construct":
            sets[1] = KeySet[IndexKey](sets[0])
            results.append(None)
        elif name == "clear":
            sets[0].clear()
            results.append(None)
        elif name == "seek":
            it = sets[0].begin()
            steps = a
            while steps > 0 and it != sets[0].end():
                inc(it)
                steps -= 1
            steps = b
            while steps > 0 and it != sets[0].begin():
                dec(it)
                steps -= 1
            results.append(None if it == sets[0].end()
                           else (deref(it).first, deref(it).second))
        else:
            raise ValueError(f"unknown op {name!r}")
        # (a check is O(n): past 4,096 keys, one every 256 ops and at the end)
        if ((sets[0].size() + sets[1].size() <= 4096 or k % 256 == 0 or k + 1 == len(ops))
                and not (sets[0].valid() and sets[1].valid())):
            raise AssertionError(f"op {k} {(name, a, b)} broke an invariant")
    return results, [(sets[j].size(), index_keys(&sets[j], False), index_keys(&sets[j], True))
                     for j in range(2)]


def _index_fill(int64_t count, int64_t churn, int pattern, uint64_t seed, probe):
    """Node bytes per key of a key set (orderbook/_btree.pxd) after ``count`` inserts and then
    ``churn`` erase-and-insert pairs (a random key out, a new one in), for
    benchmarks/bench_memory.py. ``pattern`` 0: random keys; 1: ascending; 2: descending; 3: at
    1,000 places (price i % 1,000, owner i: bench_memory's positioned accounts). ``probe()`` is
    called with the set full, before it is freed; returns (size, node bytes, probe's result).
    """
    cdef KeySet[IndexKey] index
    cdef vector[IndexKey] keys
    cdef uint64_t state = seed
    cdef int64_t i
    cdef size_t j
    keys.reserve(count)
    for i in range(count):
        if pattern == 0:
            keys.push_back(IndexKey(<int64_t>splitmix(&state), <int64_t>splitmix(&state)))
        elif pattern == 1:
            keys.push_back(IndexKey(i, i))
        elif pattern == 2:
            keys.push_back(IndexKey(count - i, i))
        else:
            keys.push_back(IndexKey(i % 1000, i))
        index.insert(keys.back())
    for _ in range(churn):
        j = splitmix(&state) % keys.size()
        index.erase(keys[j])
        keys[j] = IndexKey(<int64_t>splitmix(&state), <int64_t>splitmix(&state))
        index.insert(keys[j])
    keys.clear()
    keys.shrink_to_fit()
    return index.size(), index.node_bytes(), probe()


cdef inline uint64_t splitmix(uint64_t* state) noexcept nogil:
    cdef uint64_t z
    state[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)
