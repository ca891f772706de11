# The order id table: live order id -> pool slot, by open addressing with linear probing.
#
# A data structure of its own, with its own invariants (a power-of-two bucket array whose live
# entries and tombstones fill at most 3/4 of it; every probe sequence unbroken), so it is kept
# apart from the matching rules (_matching.pyx).
# Header-only, numpy.random's _common.pxd habit: the functions are cdef inline and compiled into
# the module that cimports them, so the book's hot path calls them as before, with no call
# across modules. A bucket holds a pool slot (NO_SLOT when empty) and its key is
# pool[slot].order_id, so an id costs 5 bytes / load factor instead of an unordered_map node and
# bucket pointer: it beat std::unordered_map on speed and memory in benchmarks/bench_memory.py
# and bench_book.py. Beside each bucket a one-byte tag (0 when empty, else 0x80 and seven bits
# of the id's hash below the ones that chose its home) lets a probe pass over other ids without
# reading their order record: a lookup of a new id (every new order's duplicate check) reads
# the tags' cache line and no order at all, where each probe used to cost a miss in the pool
# (perf on the mixed benchmark stream put half of the batch loop's samples on those reads).
# An erased entry leaves a tombstone (tag 1, bucket NO_SLOT) that probes pass over and inserts
# reuse, so an erase reads no other order record either (backward-shift deletion read the
# order of every entry it considered moving: a miss per entry on every cancel and every filled
# maker); a tombstone with an empty bucket after it becomes empty at once, and a growth that
# finds the table mostly tombstones rebuilds it at the same size.
# Lookups and inserts read the tags sixteen at a time (one SSE2 compare for the id's tag and
# one for empty, or the high bits for free, where the CPU has it; a plain loop elsewhere), so a
# probe through a long run of other ids and tombstones costs a group, not a branch per bucket.
# The tags vector carries GROUP more bytes than there are buckets, a copy of the first GROUP
# tags, so a group may start at any bucket and run past the end without wrapping.
# The functions take the pool (the order records the slots index) beside the table; after a
# pool reallocation the caller passes its new address.

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy
from libcpp.vector cimport vector

from orderbook._types cimport NO_SLOT, Order, oid_t, slot_t


cdef struct IdTable:
    vector[slot_t] buckets    # pool slots, NO_SLOT when empty; 0 or a power of two >= 16 long
    # one tag per bucket (TAG_EMPTY, TAG_DELETED, or id_tag of its id), then a copy of the
    # first GROUP tags (put_tag keeps it)
    vector[uint8_t] tags
    int64_t count             # live ids (resting orders and armed stops)
    int64_t deleted           # tombstones
    int shift                 # 64 - log2(len(buckets)): Fibonacci hashing's shift


cdef enum:
    TAG_EMPTY = 0
    TAG_DELETED = 1           # a tombstone: live tags have the high bit set
    GROUP = 16                # tags a lookup compares at once


cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    // Bit j of the result: whether p[j] == tag, for j < 16; *empty gets the same for 0.
    static inline unsigned orderbook_tag_group(const uint8_t* p, uint8_t tag, unsigned* empty) {
    #if defined(__SSE2__)
        __m128i group = _mm_loadu_si128((const __m128i*)p);
        *empty = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(group, _mm_setzero_si128()));
        return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(group, _mm_set1_epi8((char)tag)));
    #else
        unsigned match = 0, none = 0;
        int j;
        for (j = 0; j < 16; j++) {
            match |= (unsigned)(p[j] == tag) << j;
            none |= (unsigned)(p[j] == 0) << j;
        }
        *empty = none;
        return match;
    #endif
    }
    // Bit j: whether p[j] is free (empty or a tombstone: its high bit clear), for j < 16.
    static inline unsigned orderbook_tag_free(const uint8_t* p) {
    #if defined(__SSE2__)
        return ~(unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i*)p)) & 0xFFFFu;
    #else
        unsigned free_ = 0;
        int j;
        for (j = 0; j < 16; j++) free_ |= (unsigned)(p[j] < 0x80) << j;
        return free_;
    #endif
    }
    """
    unsigned tag_group "orderbook_tag_group"(const uint8_t* p, uint8_t tag,
                                             unsigned* empty) noexcept nogil
    unsigned tag_free "orderbook_tag_free"(const uint8_t* p) noexcept nogil
    int lowest_bit "__builtin_ctz"(unsigned x) noexcept nogil


cdef inline void put_tag(IdTable* table, size_t i, uint8_t tag) noexcept nogil:
    # Set bucket i's tag, and its copy past the end when i is among the first GROUP.
    table.tags[i] = tag
    if i < GROUP:
        table.tags[table.buckets.size() + i] = tag


cdef inline size_t free_bucket(const IdTable* table, size_t i) noexcept nogil:
    # The first free bucket (empty or a tombstone) from i on, sixteen tags at a time.
    cdef size_t mask = table.buckets.size() - 1
    cdef unsigned free_
    while True:
        free_ = tag_free(table.tags.data() + i)
        if free_:
            return (i + <size_t>lowest_bit(free_)) & mask
        i = (i + GROUP) & mask


cdef inline size_t id_home(oid_t order_id, int shift) noexcept nogil:
    # Fibonacci hashing: the top bits of id * 2^64/phi.
    return <size_t>((<uint64_t>order_id * <uint64_t>0x9E3779B97F4A7C15ULL) >> shift)


cdef inline uint8_t id_tag(oid_t order_id, int shift) noexcept nogil:
    # The seven bits of the same product just below the home's, with the high bit set (shift
    # is at most 60, so they exist).
    return <uint8_t>(0x80 | (((<uint64_t>order_id * <uint64_t>0x9E3779B97F4A7C15ULL)
                              >> (shift - 7)) & 0x7F))


cdef inline int bit_length(size_t x) noexcept nogil:
    cdef int n = 0
    while x:
        n += 1
        x >>= 1
    return n


cdef inline slot_t find_slot(const IdTable* table, size_t i, uint8_t tag, const char* keys,
                             size_t stride, int64_t key) noexcept nogil:
    # The slot whose record holds ``key`` (the int64 at keys + slot * stride), probing from
    # bucket i for ``tag``; NO_SLOT if none. Shared with the accounts' owner table
    # (_slottable.pxd); inlined, the stride is a constant again.
    cdef size_t mask = table.buckets.size() - 1, k
    cdef const uint8_t* tags = table.tags.data()
    cdef unsigned match, empty
    cdef slot_t slot
    while True:
        match = tag_group(tags + i, tag, &empty)
        if empty:
            match &= (empty & (0 - empty)) - 1    # only the buckets before the first empty one
        while match:
            k = (i + <size_t>lowest_bit(match)) & mask
            slot = table.buckets[k]
            if (<const int64_t*>(keys + <size_t>slot * stride))[0] == key:
                return slot
            match &= match - 1
        if empty:
            return NO_SLOT
        i = (i + GROUP) & mask


cdef inline slot_t id_find(const IdTable* table, const Order* pool,
                           oid_t order_id) noexcept nogil:
    # The slot of the live order with this id, or NO_SLOT. Expected O(1): the table is at most
    # 3/4 full and Fibonacci hashing spreads even sequential ids over it.
    if table.count == 0:
        return NO_SLOT
    return find_slot(table, id_home(order_id, table.shift), id_tag(order_id, table.shift),
                     <const char*>&pool[0].order_id, sizeof(Order), order_id)


cdef inline void id_grow(IdTable* table, const Order* pool) noexcept nogil:
    # Put every live entry back into 16 buckets at first, twice as many while they would fill
    # half, else as many (the tombstones dropped). Amortised O(1) per insert.
    cdef vector[slot_t] old
    old.swap(table.buckets)
    cdef size_t size = 16
    if not old.empty():
        size = 2 * old.size() if (table.count + 1) * 2 > <int64_t>old.size() else old.size()
    table.buckets.assign(size, NO_SLOT)
    table.tags.assign(size + GROUP, 0)
    table.shift = 64 - bit_length(size - 1)
    cdef size_t i
    cdef slot_t slot
    for slot in old:
        if slot != NO_SLOT:
            i = free_bucket(table, id_home(pool[slot].order_id, table.shift))
            table.buckets[i] = slot
            put_tag(table, i, id_tag(pool[slot].order_id, table.shift))
    table.deleted = 0


cdef inline void id_insert(IdTable* table, const Order* pool, slot_t slot) noexcept nogil:
    # Enter pool[slot] under its order id; the caller has checked that the id is not live.
    if (table.count + table.deleted + 1) * 4 > <int64_t>table.buckets.size() * 3:
        id_grow(table, pool)
    cdef size_t i = free_bucket(table, id_home(pool[slot].order_id, table.shift))
    if table.tags[i] == TAG_DELETED:
        table.deleted -= 1
    table.buckets[i] = slot
    put_tag(table, i, id_tag(pool[slot].order_id, table.shift))
    table.count += 1


cdef inline void id_erase(IdTable* table, const Order* pool, slot_t slot) noexcept nogil:
    # Remove pool[slot], which is in the table, leaving a tombstone unless no probe sequence
    # runs past it (the next bucket is empty); then the tombstones just before it go too.
    cdef size_t mask = table.buckets.size() - 1
    cdef size_t i = id_home(pool[slot].order_id, table.shift)
    while table.buckets[i] != slot:
        i = (i + 1) & mask
    table.buckets[i] = NO_SLOT
    table.count -= 1
    if table.tags[(i + 1) & mask] != TAG_EMPTY:
        put_tag(table, i, TAG_DELETED)
        table.deleted += 1
        return
    put_tag(table, i, TAG_EMPTY)
    i = (i - 1) & mask
    while table.tags[i] == TAG_DELETED:
        put_tag(table, i, TAG_EMPTY)
        table.deleted -= 1
        i = (i - 1) & mask


cdef extern from *:
    void prefetch "__builtin_prefetch"(const void* address) noexcept nogil


cdef enum:
    PREFETCH_AHEAD = 8   # messages: a batch asks for the tags of the id 8 messages ahead


cdef inline void prefetch_id(const IdTable* table, const uint8_t* row) noexcept nogil:
    # Bring in the tag line an upcoming message's id will probe (its order_id is the row's
    # first int64, read unaligned), so the lookup does not wait on the cache.
    cdef oid_t order_id
    if table.count == 0:
        return
    memcpy(&order_id, row, sizeof(oid_t))
    cdef size_t home = id_home(order_id, table.shift)
    prefetch(table.tags.data() + home)
    prefetch(table.buckets.data() + home)
