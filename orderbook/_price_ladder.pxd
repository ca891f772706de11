# The price levels of one side of a book (or of one side's armed stops): a price ladder.
#
# Levels are keyed as in _types.level_key, so the least key is always the best level (bids by
# -price, asks by +price; sell stops by -stop price, buy stops by +stop price). A contiguous
# window of ``cap`` Level records holds every level whose key lies in [base, base + cap), with
# an occupancy bitmap; levels outside the window sit in a std::map (``far``). The window is
# placed around the touch and follows it: when a new best level falls before the window, or the
# window empties while far levels remain, it is re-centred on the new best; while the book's
# levels would fill at least 1/DENSITY of it, it grows (doubling, or to a quarter more than the
# levels' span) to cover a new level instead. So the
# touch, where nearly every message lands, costs an array index and a bit, and a level far
# from it a tree descent, as before. This is the route of hftbacktest's ROI vector depth and
# of the fastest published matching engines; benchmarks/bench_cpp.py --baseline-tree shows what
# it buys over std::map alone on each regime.
#
# Header-only, as _idtable.pxd: every function is inline in the module that cimports it.
# Invariants: a level with key k is in the window (its bit set) iff base <= k < base + cap, else
# in far; and every far key is >= base + cap (far levels are deeper than the window: each move
# of the window puts its base at or before the best key). Any call that adds or erases a level
# may move the window's levels, so a Level* obtained before it is stale after it (far levels'
# addresses are stable, window ones not).

from cython.operator cimport dereference as deref
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint64_t
from libcpp.utility cimport pair
from libcpp.vector cimport vector

from orderbook._types cimport NO_SLOT, Level, LevelMap, price_t


cdef extern from *:
    int ctz64 "__builtin_ctzll"(unsigned long long) nogil
    int clz64 "__builtin_clzll"(unsigned long long) nogil


cdef enum:
    LADDER_MIN_CAP = 256     # the first window's width (levels); a multiple of 64
    LADDER_DENSITY = 4       # the window may grow while the levels fill >= 1/4 of it
    LADDER_MAX_CAP = 1 << 26  # 64 M levels (1.5 GB): past this, levels go to far


cdef struct Ladder:
    vector[Level] slots     # the window: slots[i] is the level of key base + i when bit i is set
    vector[uint64_t] bits   # occupancy of the window, one bit per slot
    LevelMap far            # levels whose key lies outside the window
    price_t base            # key of slots[0]
    int64_t cap             # len(slots): 0 before the first level, else a multiple of 64
    int64_t count           # levels in the window
    int64_t lo              # lowest and highest occupied window index (when count > 0)
    int64_t hi


cdef inline int64_t ladder_size(const Ladder* L) noexcept nogil:
    # The number of levels.
    return L.count + <int64_t>L.far.size()


cdef inline bint in_window(const Ladder* L, price_t key) noexcept nogil:
    # base <= key < base + cap, without overflow (the window lies within int64 by construction)
    return key >= L.base and <uint64_t>key - <uint64_t>L.base < <uint64_t>L.cap


cdef inline int64_t scan_up(const uint64_t* bits, int64_t i, int64_t hi) noexcept nogil:
    # The least set bit index in [i, hi], or -1.
    cdef int64_t w = i >> 6, last = hi >> 6
    cdef uint64_t word
    if i > hi:
        return -1
    word = bits[w] & (~<uint64_t>0 << (i & 63))
    while word == 0:
        w += 1
        if w > last:
            return -1
        word = bits[w]
    i = (w << 6) + ctz64(word)
    return i if i <= hi else -1


cdef inline int64_t scan_down(const uint64_t* bits, int64_t i, int64_t lo) noexcept nogil:
    # The greatest set bit index in [lo, i], or -1.
    cdef int64_t w = i >> 6, first = lo >> 6
    cdef uint64_t word
    if i < lo:
        return -1
    word = bits[w] & (~<uint64_t>0 >> (63 - (i & 63)))
    while word == 0:
        w -= 1
        if w < first:
            return -1
        word = bits[w]
    i = (w << 6) + 63 - clz64(word)
    return i if i >= lo else -1


cdef inline Level* ladder_first(Ladder* L, price_t* key) noexcept nogil:
    # The best level (least key) and its key, or NULL when the ladder is empty. O(1).
    cdef LevelMap.iterator it
    if L.count > 0:
        key[0] = L.base + L.lo
        return &L.slots[L.lo]
    if L.far.empty():
        return NULL
    it = L.far.begin()
    key[0] = deref(it).first
    return &deref(it).second


cdef inline Level* ladder_next(Ladder* L, price_t key, price_t* next_key) noexcept nogil:
    # The level with the least key greater than ``key`` (which need not be a level's), or NULL.
    cdef LevelMap.iterator it
    cdef int64_t i
    if L.count > 0 and key < L.base + L.hi:
        i = L.lo if key < L.base + L.lo else scan_up(L.bits.data(), key - L.base + 1, L.hi)
        next_key[0] = L.base + i
        return &L.slots[i]
    # past the window's last level: far levels are all deeper than the window
    it = L.far.upper_bound(key)
    if it == L.far.end():
        return NULL
    next_key[0] = deref(it).first
    return &deref(it).second


cdef inline Level* ladder_find(Ladder* L, price_t key) noexcept nogil:
    # The level of ``key``, or NULL.
    cdef int64_t i
    cdef LevelMap.iterator it
    if in_window(L, key):
        i = key - L.base
        if (L.bits[i >> 6] >> (i & 63)) & 1:
            return &L.slots[i]
        return NULL
    if L.far.empty():
        return NULL
    it = L.far.find(key)
    if it == L.far.end():
        return NULL
    return &deref(it).second


cdef inline Level empty_level() noexcept nogil:
    cdef Level level
    level.total = 0
    level.head = NO_SLOT
    level.tail = NO_SLOT
    level.count = 0
    return level


cdef inline Level* window_put(Ladder* L, price_t key) noexcept nogil:
    # Mark key's slot occupied (key is in the window and free) and return it, emptied.
    cdef int64_t i = key - L.base
    cdef Level* level = &L.slots[i]
    L.bits[i >> 6] |= (<uint64_t>1) << (i & 63)
    if L.count == 0:
        L.lo = i
        L.hi = i
    elif i < L.lo:
        L.lo = i
    elif i > L.hi:
        L.hi = i
    L.count += 1
    level[0] = empty_level()
    return level


cdef inline price_t window_base(price_t key, int64_t before, int64_t cap) noexcept nogil:
    # The base that puts ``key`` ``before`` slots into a window of ``cap``, moved as little as
    # needed to keep the whole window within int64 (so key order is index order).
    if key < INT64_MIN + before:
        return INT64_MIN
    if key - before > INT64_MAX - (cap - 1):
        return INT64_MAX - (cap - 1)
    return key - before


cdef inline void relayout(Ladder* L, price_t base, int64_t cap) noexcept nogil:
    # Move the window to [base, base + cap): window levels outside it go to far, far levels in
    # it come in. O(cap / 64 + levels moved).
    cdef vector[Level] old_slots
    cdef vector[uint64_t] old_bits
    cdef price_t old_base = L.base, key
    cdef int64_t i = L.lo if L.count > 0 else -1, old_hi = L.hi
    cdef bint had = L.count > 0
    cdef LevelMap.iterator it
    cdef Level* level
    old_slots.swap(L.slots)
    old_bits.swap(L.bits)
    L.slots.resize(cap)
    L.bits.assign(<size_t>(cap >> 6), 0)
    L.base = base
    L.cap = cap
    L.count = 0
    L.lo = 0
    L.hi = -1
    while had and i != -1:
        key = old_base + i
        if in_window(L, key):
            level = window_put(L, key)
            level[0] = old_slots[i]
        else:
            L.far.insert(pair[price_t, Level](key, old_slots[i]))
        i = scan_up(old_bits.data(), i + 1, old_hi)
    if not L.far.empty():
        it = L.far.lower_bound(base)
        while it != L.far.end() and in_window(L, deref(it).first):
            level = window_put(L, deref(it).first)
            level[0] = deref(it).second
            it = L.far.erase(it)


cdef inline int64_t window_cap(uint64_t span) noexcept nogil:
    # The width of a window over ``span`` keys with a quarter of it spare, in whole bitmap
    # words: growth by 5/4 at least, so moves cost O(1) amortised per level added.
    cdef uint64_t cap = span + (span >> 2) + 64
    cap = (cap + 63) & ~<uint64_t>63
    return <int64_t>cap if cap > <uint64_t>LADDER_MIN_CAP else LADDER_MIN_CAP


cdef inline Level* ladder_add(Ladder* L, price_t key) noexcept nogil:
    # A new, empty level for ``key``, which has none. May move the window (see the header).
    cdef price_t lo_key, hi_key, new_lo, new_hi
    cdef uint64_t span
    cdef int64_t cap
    if in_window(L, key):
        return window_put(L, key)
    if L.cap == 0 or L.count == 0:
        # the first level, or an empty window, which means an empty ladder (ladder_erase
        # re-centres an emptied window on far's best): a window a quarter of whose width lies
        # before this level (a better level may come; deeper ones are more likely)
        cap = L.cap if L.cap else LADDER_MIN_CAP
        relayout(L, window_base(key, cap >> 2, cap), cap)
        if in_window(L, key):
            return window_put(L, key)
    else:
        lo_key = L.base + L.lo
        hi_key = L.base + L.hi
        new_lo = key if key < lo_key else lo_key
        new_hi = key if key > hi_key else hi_key
        span = <uint64_t>new_hi - <uint64_t>new_lo + 1
        if span <= <uint64_t>LADDER_MAX_CAP - (<uint64_t>LADDER_MAX_CAP >> 2) - 64:
            cap = window_cap(span)
            if cap <= L.cap or cap <= LADDER_DENSITY * (ladder_size(L) + 1):
                # grow (or shift) to cover the new level with the window's: room for a quarter
                # of the slack before the best, the rest after the deepest
                if cap < L.cap:
                    cap = L.cap
                elif cap < 2 * L.cap and 2 * L.cap <= LADDER_DENSITY * (ladder_size(L) + 1):
                    # doubling while the density allows: fewer moves, and the windows given
                    # back along the way add up to less than the last (malloc keeps them)
                    cap = 2 * L.cap
                relayout(L, window_base(new_lo, <int64_t>((<uint64_t>cap - span) >> 2), cap),
                         cap)
                if in_window(L, key):
                    return window_put(L, key)
        if key < lo_key:
            # a new best level (far levels are deeper than the window) too far from the rest:
            # re-centre on it
            cap = L.cap
            relayout(L, window_base(key, cap >> 2, cap), cap)
            if in_window(L, key):
                return window_put(L, key)
    return &deref(L.far.insert(pair[price_t, Level](key, empty_level())).first).second


cdef inline void ladder_erase(Ladder* L, price_t key) noexcept nogil:
    # Remove the level of ``key``, which exists. May move the window (see the header).
    cdef int64_t i
    if not in_window(L, key):
        L.far.erase(key)
        return
    i = key - L.base
    L.bits[i >> 6] &= ~((<uint64_t>1) << (i & 63))
    L.count -= 1
    if L.count == 0:
        L.lo = 0
        L.hi = -1
        if not L.far.empty():
            # the touch has left the window: follow it
            relayout(L, window_base(deref(L.far.begin()).first, L.cap >> 2, L.cap), L.cap)
        return
    if i == L.lo:
        L.lo = scan_up(L.bits.data(), i + 1, L.hi)
    elif i == L.hi:
        L.hi = scan_down(L.bits.data(), i - 1, L.lo)
