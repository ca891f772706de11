# Where a batch's events go (OrderBook.process, Engine.process): the caller's ``out=`` buffer or
# memory the sink allocates, keeping every event, only TRADE and REJECTED events, or none (the
# counters alone). OrderBook's batch hands the sink each event as the matching core makes it (so
# a counters-only batch writes no record at all); the Engine's, each message's events after it
# has settled them.
#
# Why not one std::vector reserved up front (the old path): a vector cannot grow in place, so a
# batch that passed its reservation (one event per message; streams run ~1.1-1.6) copied every
# row and faulted in a fresh buffer twice the size. realloc() of a large block moves page table
# entries (mremap) instead of bytes, untouched reserved pages cost nothing, and huge pages cut
# the page faults of a fresh multi-megabyte buffer by up to 512x.

from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from orderbook cimport _types as t
from orderbook._types cimport EventRec, qty_t


cdef extern from "<sys/mman.h>" nogil:
    int madvise(void* addr, size_t length, int advice)
    int MADV_HUGEPAGE


cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    // Copy nbytes (a multiple of 8; dst and src 8-byte aligned) with stores that bypass the
    // cache where the CPU has them: a log far larger than the cache is written once and not
    // read back by the batch, so reading each line in before writing it (what a plain store
    // does) only doubles the memory traffic. orderbook_stream_fence() orders them before the
    // log is handed over.
    static inline void orderbook_stream_copy(void* dst, const void* src, size_t nbytes) {
    #if defined(__SSE2__) && defined(__x86_64__)
        long long* d = (long long*)dst;
        const long long* s = (const long long*)src;
        size_t i;
        for (i = 0; i < nbytes / 8; i++) _mm_stream_si64(d + i, s[i]);
    #else
        memcpy(dst, src, nbytes);
    #endif
    }
    static inline void orderbook_stream_fence(void) {
    #if defined(__SSE2__)
        _mm_sfence();
    #endif
    }
    """
    void stream_copy "orderbook_stream_copy"(void* dst, const void* src,
                                             size_t nbytes) noexcept nogil
    void stream_fence "orderbook_stream_fence"() noexcept nogil


cdef enum:
    RECORD_ALL = 0        # every event (the default)
    RECORD_TRADES = 1     # TRADE and REJECTED events only
    RECORD_COUNTERS = 2   # no rows: the counters alone
    SINK_KINDS = 8        # counts[] slots: indexed by event kind (EV_ACCEPTED .. EV_STOP_TRIGGERED)
    # Rows added to a growing buffer beyond the half again it grows by (and a first reserve's
    # margin): 2,048 x 80 B = 160 kB.
    FLUSH_EVENTS = 2048
    HUGE_PAGE = 2097152   # bytes; the x86-64 transparent huge page


cdef struct EventSink:
    EventRec* rows          # kept events: the caller's out= buffer, or malloc'd here (owned)
    Py_ssize_t capacity     # rows that fit at ``rows``
    Py_ssize_t size         # rows kept
    bint external           # the batch was given a caller's buffer (out=), even an empty one
    bint owned              # rows was malloc'd here: freed by sink_free or handed to the result
    bint outgrew            # the caller's buffer was too small: rows is now a larger copy
    bint failed             # an allocation failed: rows past ``size`` were lost
    bint stream             # write rows with stores that bypass the cache (stream_copy)
    int record              # RECORD_*
    int64_t counts[8]       # events seen per kind (index EV_*); kept in TRADES/COUNTERS modes
    qty_t traded            # lots traded (sum of TRADE qty); kept in TRADES/COUNTERS modes


cdef inline void sink_init(EventSink* s, int record, bint external, EventRec* rows,
                           Py_ssize_t capacity) noexcept nogil:
    # external: rows is the caller's buffer of capacity rows (NULL when it has none); otherwise
    # the sink allocates (sink_reserve).
    cdef int k
    s.rows = rows if external else NULL
    s.capacity = capacity if rows != NULL else 0
    s.size = 0
    s.external = external
    s.owned = False
    s.outgrew = False
    s.failed = False
    s.stream = False
    s.record = record
    s.traded = 0
    for k in range(SINK_KINDS):
        s.counts[k] = 0


cdef inline void advise_huge(void* p, size_t nbytes) noexcept nogil:
    # Ask for transparent huge pages on the whole 2 MB pages inside [p, p + nbytes); a hint
    # (THP may be off), so its result is ignored.
    cdef uintptr_t start = (<uintptr_t>p + HUGE_PAGE - 1) & ~(<uintptr_t>HUGE_PAGE - 1)
    cdef uintptr_t end = (<uintptr_t>p + nbytes) & ~(<uintptr_t>HUGE_PAGE - 1)
    if end > start:
        madvise(<void*>start, end - start, MADV_HUGEPAGE)


cdef inline int sink_reserve(EventSink* s, Py_ssize_t rows) noexcept nogil:
    # Room for ``rows`` kept rows in all: 0, or -1 (and ``failed``) if the allocation failed.
    cdef EventRec* p
    cdef size_t nbytes
    if rows <= s.capacity:
        return 0
    nbytes = <size_t>rows * sizeof(EventRec)
    if s.stream:
        stream_fence()    # the rows streamed so far reach memory before they move
    if s.owned:
        p = <EventRec*>realloc(s.rows, nbytes)
    else:
        p = <EventRec*>malloc(nbytes)
        if p != NULL and s.size:
            memcpy(p, s.rows, <size_t>s.size * sizeof(EventRec))
        if p != NULL and s.external:
            s.outgrew = True
    if p == NULL:
        s.failed = True
        return -1
    advise_huge(p, nbytes)
    s.rows = p
    s.capacity = rows
    s.owned = True
    return 0


cdef inline void sink_count(EventSink* s, int kind, qty_t qty) noexcept nogil:
    # Count one event of ``kind`` (``qty`` lots) in the counters of the TRADES/COUNTERS modes.
    s.counts[kind & 7] += 1
    if kind == t.EV_TRADE:
        s.traded += qty


cdef inline int sink_take(EventSink* s, const EventRec* ev, Py_ssize_t n) noexcept nogil:
    # Keep n events (one, or one message's) as s.record says; -1 if rows were
    # lost to a failed allocation. Growth is by half again, at least what this call needs.
    cdef Py_ssize_t i
    cdef int kind
    if s.failed:
        return -1
    if n <= 0:
        # nothing to keep; and memcpy's pointers must not be NULL even for 0 bytes (an empty
        # batch has no rows yet)
        return 0
    if s.record == RECORD_ALL:
        if s.size + n > s.capacity:
            if not s.owned and s.size < s.capacity:
                # The caller's buffer is filled first, so it holds the batch's first events.
                memcpy(s.rows + s.size, ev, <size_t>(s.capacity - s.size) * sizeof(EventRec))
                ev += s.capacity - s.size
                n -= s.capacity - s.size
                s.size = s.capacity
            if sink_reserve(s, max(s.size + n, s.capacity + s.capacity // 2 + FLUSH_EVENTS)) < 0:
                return -1
        if s.stream:
            stream_copy(s.rows + s.size, ev, <size_t>n * sizeof(EventRec))
        else:
            memcpy(s.rows + s.size, ev, <size_t>n * sizeof(EventRec))
        s.size += n
        return 0
    for i in range(n):
        kind = ev[i].kind
        sink_count(s, kind, ev[i].qty)
        if s.record == RECORD_TRADES and (kind == t.EV_TRADE or kind == t.EV_REJECTED):
            if s.size == s.capacity and sink_reserve(
                    s, s.capacity + s.capacity // 2 + FLUSH_EVENTS) < 0:
                return -1
            s.rows[s.size] = ev[i]
            s.size += 1
    return 0


cdef inline void sink_shrink(EventSink* s) noexcept nogil:
    # Give back an owned buffer's unused reservation (in place for a large block).
    cdef EventRec* p
    if s.owned and s.size and s.size < s.capacity:
        p = <EventRec*>realloc(s.rows, <size_t>s.size * sizeof(EventRec))
        if p != NULL:
            s.rows = p
            s.capacity = s.size


cdef inline void sink_free(EventSink* s) noexcept nogil:
    if s.owned:
        free(s.rows)
    s.rows = NULL
    s.owned = False
    s.capacity = 0
