"""The compiled limit order book and matching engine.

Same semantics as ``orderbook.reference.OrderBook`` (see docs/semantics.md), on C++ containers:
price levels in a price ladder (a window of slots around the touch, a ``std::map`` beyond it;
``_price_ladder.pxd``) holding an intrusive FIFO of slots in a preallocated order pool, an
open-addressing table from order id to slot (``_idtable.pxd``), and an event log of C structs
exposed as a numpy structured array. The per-call methods and the batch method ``process`` run
the same ``cdef`` core; the batch runs without the GIL. This module holds the book's entry
points: arguments checked and converted, refusals raised, events returned, reads, copies and
pickles. The containers and the matching rules are in ``_matching.pyx`` (``MatchingCore``, the
base of ``OrderBook``), the walks behind whole-book reads (L2, L3, stops, impact, the pickle's
order lists) in ``_depth.pyx``, and the C side's facts for the import-time layout check in
``_layout_facts.pyx``.
"""

cimport cython
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.bool cimport PyBool_Check
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_Check
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free
from libc.string cimport memset
from libcpp.vector cimport vector

cimport numpy as cnp
import numpy as np

from orderbook cimport _types as t
from orderbook._depth cimport impact_on, l2_columns, l3_rows, order_lists, resting_total, stop_rows
from orderbook._idtable cimport id_find
from orderbook._price_ladder cimport ladder_first
from orderbook._matching cimport MatchingCore
from orderbook._sink cimport (
    FLUSH_EVENTS, RECORD_ALL, RECORD_COUNTERS, RECORD_TRADES, EventSink, sink_free, sink_init,
    sink_reserve, sink_shrink, stream_fence,
)
from orderbook._types cimport (
    BUY, NO_SLOT, EventRec, Flight, Message, Order, is_caller_error, is_new_order, is_stop,
    level_key, oid_t, owner_t, price_t, qty_t, slot_t,
)

import warnings

from . import _layout, _validation as check
from .batch import BatchCounts, OutGrewWarning, out_buffer, record_mode
from ._layout_facts import c_layout
from .events import EVENT_DTYPE, AmendRule, Event, OrderInfo, Reason, SelfTradePrevention

__all__ = ["OrderBook"]

cnp.import_array()


cdef extern from *:
    """
    // An Event (a tuple subclass) made from twelve int64 fields without the intermediate
    // tuple and the tuple.__new__ call: perf put those at most of the per-call path's time.
    // Before 3.14 a tuple subclass instance is its type's tp_alloc plus the items; 3.14 caches
    // a tuple's hash in the object, which tp_alloc's zeroes would poison, so it goes through
    // tuple's own constructor.
    //
    // One call's events share most of their values (its message number, its order id, the
    // price of the level it trades at), and the caller's own arguments hold more: ints are
    // immutable, so a field whose value equals the one it had in the event before (or the
    // caller's argument, for the first) is handed that int again instead of an equal new one.
    // The references are borrowed, valid while their owners live: the caller's arguments and
    // the events of the list being built; the struct is dropped with that list, and on any
    // error. CPython's own -5..256 are read from a table taken once (PyLong_FromLongLong
    // costs tens of instructions even for them).
    typedef struct {
        int64_t values[12];
        PyObject* objects[12];     // NULL: nothing kept for that field yet
    } orderbook_ints;

    static PyObject* orderbook_small[262];   // -5 .. 256, owned; filled by orderbook_ints_init

    static int orderbook_ints_init(void) {
        int i;
        if (orderbook_small[0] != NULL) return 0;
        for (i = 0; i < 262; i++) {
            orderbook_small[i] = PyLong_FromLong(i - 5);
            if (orderbook_small[i] == NULL) return -1;
        }
        return 0;
    }

    static inline PyObject* orderbook_int(orderbook_ints* c, int field, int64_t v) {
        PyObject* o;
        if ((uint64_t)v + 5 < 262) {    // -5 .. 256, without overflowing near INT64_MAX
            o = orderbook_small[v + 5];
            Py_INCREF(o);
            return o;
        }
        o = c->objects[field];
        if (o != NULL && c->values[field] == v) {
            Py_INCREF(o);
            return o;
        }
        o = PyLong_FromLongLong(v);
        if (o != NULL) {
            c->values[field] = v;
            c->objects[field] = o;
        }
        return o;
    }

    static int orderbook_fill(PyObject** items, orderbook_ints* c, const int64_t* v) {
        // items[0..11] from v: 0, or -1 with the rest of items left NULL
        int i;
        for (i = 0; i < 12; i++) {
            items[i] = orderbook_int(c, i, v[i]);
            if (items[i] == NULL) return -1;
        }
        return 0;
    }

    static PyObject* orderbook_event(PyObject* type, orderbook_ints* c, int64_t a0, int64_t a1,
                                     int64_t a2, int64_t a3, int64_t a4, int64_t a5,
                                     int64_t a6, int64_t a7, int64_t a8, int64_t a9,
                                     int64_t a10, int64_t a11) {
        const int64_t v[12] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
        PyObject* result;
    #if PY_VERSION_HEX < 0x030E0000
        // tp_alloc zeroes the items, so a half-filled tuple deallocates cleanly
        result = ((PyTypeObject*)type)->tp_alloc((PyTypeObject*)type, 12);
        if (result != NULL && orderbook_fill(((PyTupleObject*)result)->ob_item, c, v) < 0)
            Py_CLEAR(result);
    #else
        PyObject* items[12] = {NULL};
        PyObject* fields = NULL;
        PyObject* args = NULL;
        int i;
        result = NULL;
        if (orderbook_fill(items, c, v) == 0 && (fields = PyTuple_New(12)) != NULL) {
            for (i = 0; i < 12; i++) PyTuple_SET_ITEM(fields, i, items[i]);  /* steals */
            args = PyTuple_Pack(1, fields);
            if (args != NULL) result = PyTuple_Type.tp_new((PyTypeObject*)type, args, NULL);
            Py_XDECREF(args);
            Py_DECREF(fields);
            return result;
        }
        for (i = 0; i < 12; i++) Py_XDECREF(items[i]);
    #endif
        return result;
    }
    """
    ctypedef struct orderbook_ints:
        int64_t values[12]
        PyObject* objects[12]
    int ints_init "orderbook_ints_init"() except -1
    object event_tuple "orderbook_event"(object type, orderbook_ints* c, int64_t seq, int64_t msg,
                                         int64_t kind, int64_t reason, int64_t side,
                                         int64_t order_id, int64_t owner, int64_t maker_id,
                                         int64_t maker_owner, int64_t price, int64_t stop_price,
                                         int64_t qty)

cdef extern from *:
    """
    // 1 and *out = the value for an exact int that CPython stores in one 30-bit digit (every
    // price, size and id below 2**30), else 0 without touching the exception state: the per-call
    // path reads its arguments with this before anything slower. 3.12 gave the compact form a
    // (provisional) API; 3.11's digits are read directly.
    static inline int orderbook_compact_int(PyObject* o, int64_t* out) {
        if (!PyLong_CheckExact(o)) return 0;
    #if PY_VERSION_HEX >= 0x030C0000
        if (!PyUnstable_Long_IsCompact((PyLongObject*)o)) return 0;
        *out = (int64_t)PyUnstable_Long_CompactValue((PyLongObject*)o);
        return 1;
    #else
        Py_ssize_t size = Py_SIZE(o);
        if (size < -1 || size > 1) return 0;
        *out = size * (int64_t)((PyLongObject*)o)->ob_digit[0];
        return 1;
    #endif
    }
    """
    bint compact_int "orderbook_compact_int"(object value, int64_t* out) noexcept

ints_init()

BUSY_MESSAGE = ("this OrderBook is busy in another thread (processing a batch or another "
                "call); one book serves one thread at a time")


# ----------------------------------------------------------------------------- small helpers

cdef inline int small_int(object value, int64_t* out) except -1:
    # 1 and the value in out for an int (or int subclass such as Side, not bool) within int64,
    # else 0: the per-call fast path, read without raising (no exception state saved or
    # restored), where a cast in try/except paid for both.
    cdef int overflow = 0
    cdef long long v
    if not PyLong_Check(value) or PyBool_Check(value):
        return 0
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0:
        return 0
    out[0] = v
    return 1


cdef inline int64_t as_i64(object value, str name) except? -1:
    # Inlined at each argument: a one-digit int is read in place; the rest is another call.
    cdef int64_t v
    if compact_int(value, &v):
        return v
    return wide_i64(value, name)


cdef int64_t wide_i64(object value, str name) except? -1:
    # Fast path for plain ints in range; everything else goes to the shared checks, which
    # convert numpy integers and raise the documented TypeError/ValueError.
    cdef int64_t v
    if small_int(value, &v):
        return v
    return check.as_int64(name, value)


cdef inline int as_side(object value) except 0:
    cdef int64_t v
    if (compact_int(value, &v) or small_int(value, &v)) and (v == 1 or v == -1):
        return <int>v
    return check.as_side(value)


cdef inline int order_side(object value) except 0:
    # A new order's side: a bad one is refused as the batch would (OrderError, INVALID_SIDE).
    cdef int64_t v
    if (compact_int(value, &v) or small_int(value, &v)) and (v == 1 or v == -1):
        return <int>v
    return check.order_side(value)


# One spare event buffer: the records of the last result array that died, if their allocation
# took between SPARE_MIN and SPARE_MAX bytes, kept for a later batch whose reservation fits in it.
# A fresh buffer that size has pages the kernel must zero (and this VM's host back) on first
# touch, a fifth of a 2 * 10^5-message batch's time, and malloc returns such blocks to the
# kernel when they are freed. Smaller blocks malloc keeps for reuse on its own; larger ones are
# not held. Taken and given back with the GIL held (process reserves before it releases the
# GIL, and a result dies under it), so no two threads touch it at once.
cdef enum:
    SPARE_MIN = 1 << 20
    SPARE_MAX = 32 << 20
    # Bytes of expected log from which a batch writes it with stores that bypass the cache
    # (_sink.pxd): far past the cache a log's lines were read in only to be overwritten; one
    # call of 10^6 mixed messages into out= went from 80 to 61 ns a message of user time.
    STREAM_MIN = 64 << 20

cdef EventRec* spare_rows = NULL
cdef size_t spare_bytes = 0


cdef void keep_spare(EventRec* rows, size_t nbytes) noexcept:
    # Keep rows (malloc'd, nbytes long) as the spare if its size fits, else free it.
    global spare_rows, spare_bytes
    if SPARE_MIN <= nbytes <= SPARE_MAX:
        free(spare_rows)
        spare_rows = rows
        spare_bytes = nbytes
    else:
        free(rows)


cdef void take_spare(EventSink* sink, Py_ssize_t rows) noexcept:
    # Hand the spare to a sink about to reserve ``rows`` rows, if they fit in it.
    global spare_rows, spare_bytes
    if spare_rows != NULL and <size_t>rows * sizeof(EventRec) <= spare_bytes:
        sink.rows = spare_rows
        sink.capacity = <Py_ssize_t>(spare_bytes // sizeof(EventRec))
        sink.owned = True
        spare_rows = NULL
        spare_bytes = 0


@cython.final
cdef class _EventLog:
    """Owns one batch's malloc'd event records; the EVENT_DTYPE array ``process`` returns views
    them, and keeps them as the spare buffer (or frees them) when the last view goes."""
    cdef EventRec* records
    cdef Py_ssize_t nbytes
    cdef Py_ssize_t itemsize
    cdef size_t allocated        # bytes malloc gave records (>= nbytes)

    def __cinit__(self):
        self.records = NULL

    def __dealloc__(self):
        if self.records != NULL:
            keep_spare(self.records, self.allocated)

    def __getbuffer__(self, Py_buffer* view, int flags):
        view.buf = <void*>self.records
        view.obj = self
        view.len = self.nbytes
        view.readonly = 0
        view.itemsize = 1
        view.format = "B"
        view.ndim = 1
        view.shape = &self.nbytes
        view.strides = &self.itemsize
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer* view):
        pass


# ---------------------------------------------------------------------------------- the book

cdef class OrderBook(MatchingCore):
    """Limit order book with price-time priority, compiled.

    Parameters
    ----------
    tick_size, lot_size : str, int, Decimal or float
        Size of one tick (quote units) and one lot (base units); positive. Stored as Decimal.
    stp : SelfTradePrevention
        What happens when a taker meets a resting order of its own owner.
    amend_rule : AmendRule
        When an amend keeps queue priority.

    Notes
    -----
    Prices are int64 ticks in [1, 2**63-1], quantities int64 lots in [1, 2**63-1]. Adding an
    order costs O(log L) for L price levels (O(1) amortised at an existing level after the
    lookup), a cancel O(1) plus the level lookup, a match O(1) per maker filled.

    Examples
    --------
    A bid of 5 lots at 100 ticks rests; a market sell of 3 lots fills against it:

    >>> from orderbook import OrderBook, Side
    >>> book = OrderBook()
    >>> book.limit(1, Side.BUY, 100, 5, owner=7)
    [Event(#0 ACCEPTED BUY id=1 owner=7 price=100 qty=5 msg=0)]
    >>> for event in book.market(2, Side.SELL, 3, owner=8):
    ...     print(event)
    Event(#1 ACCEPTED SELL id=2 owner=8 price=0 qty=3 msg=1)
    Event(#2 TRADE SELL id=2 owner=8 maker=1 maker_owner=7 price=100 qty=3 msg=1)
    >>> book.best_bid(), book.quantity_at(Side.BUY, 100)
    (100, 2)
    """

    def __cinit__(self):
        self.busy = False

    def __init__(self, tick_size="1", lot_size="1", *, stp=SelfTradePrevention.NONE,
                 amend_rule=AmendRule.REDUCE_KEEPS_PRIORITY):
        self.tick_size = check.unit_size("tick_size", tick_size)
        self.lot_size = check.unit_size("lot_size", lot_size)
        self.stp = check.as_enum("stp", stp, SelfTradePrevention)
        self.amend_rule = check.as_enum("amend_rule", amend_rule, AmendRule)

    # ------------------------------------------------------------------ settings and units
    @property
    def stp(self):
        """Self-trade prevention mode (SelfTradePrevention)."""
        return SelfTradePrevention(self.stp)

    @property
    def amend_rule(self):
        """Amend-priority rule (AmendRule)."""
        return AmendRule(self.amend_rule)

    def to_ticks(self, price):
        """Price in quote units (str, Decimal, int or float) to ticks; ValueError if off grid."""
        return check.to_units("price", price, self.tick_size)

    def to_lots(self, qty):
        """Quantity in base units to lots; ValueError if not a whole number of lots."""
        return check.to_units("qty", qty, self.lot_size)

    def to_price(self, ticks):
        """Ticks to a price in quote units (Decimal)."""
        return check.from_units(check.as_int64("ticks", ticks), self.tick_size)

    def to_qty(self, lots):
        """Lots to a quantity in base units (Decimal)."""
        return check.from_units(check.as_int64("lots", lots), self.lot_size)

    # -------------------------------------------------------------------------- per call
    def limit(self, order_id, side, price, qty, owner=0, *, events=True):
        """Good-till-cancel limit order at ``price`` ticks for ``qty`` lots; returns its events."""
        return self._submit(t.K_LIMIT, order_id, side, price, qty, owner, 0, events)

    def market(self, order_id, side, qty, owner=0, *, events=True):
        """Market order for ``qty`` lots; what cannot fill is cancelled."""
        return self._submit(t.K_MARKET, order_id, side, 0, qty, owner, 0, events)

    def ioc(self, order_id, side, price, qty, owner=0, *, events=True):
        """Immediate-or-cancel limit order."""
        return self._submit(t.K_IOC, order_id, side, price, qty, owner, 0, events)

    def fok(self, order_id, side, price, qty, owner=0, *, events=True):
        """Fill-or-kill limit order: fills all ``qty`` lots at once or nothing."""
        return self._submit(t.K_FOK, order_id, side, price, qty, owner, 0, events)

    def post_only(self, order_id, side, price, qty, owner=0, *, events=True):
        """Limit order rejected (POST_ONLY_WOULD_TAKE) if it would take liquidity."""
        return self._submit(t.K_POST_ONLY, order_id, side, price, qty, owner, 0, events)

    def stop_market(self, order_id, side, stop_price, qty, owner=0, *, events=True):
        """Market order armed until a trade prints at ``stop_price`` or through it."""
        return self._submit(t.K_STOP_MARKET, order_id, side, 0, qty, owner, stop_price, events)

    def stop_limit(self, order_id, side, stop_price, price, qty, owner=0, *, events=True):
        """Limit order at ``price`` armed until a trade prints at ``stop_price`` or through it."""
        return self._submit(t.K_STOP_LIMIT, order_id, side, price, qty, owner, stop_price, events)

    def cancel(self, order_id, *, events=True):
        """Cancel a resting order or an armed stop; UnknownOrderError if the id is not live."""
        return self._submit(t.K_CANCEL, order_id, 0, 0, 0, 0, 0, events)

    def amend(self, order_id, price, qty, *, events=True):
        """Set a resting order's price (ticks) and remaining quantity (lots)."""
        return self._submit(t.K_AMEND, order_id, 0, price, qty, 0, 0, events)

    def submit(self, kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0, *,
               events=True):
        """Process one message of any kind; return its events.

        A message the batch would reject for a caller error raises OrderError carrying that
        reason (UnknownOrderError for UNKNOWN_ORDER) and changes nothing; a value that is not
        an integer raises TypeError, one outside int64 ValueError.

        With ``events=False`` (every per-call method takes it) the same message runs the same
        way, but no Event tuples are built: the call returns the lots the message's own order
        filled as taker (an int; 0 for a cancel, an order that rests untouched, or one refused
        with a REJECTED or CANCELLED event). The book's reads tell the rest.
        """
        return self._submit(as_i64(kind, "kind"), order_id, side, price, qty, owner, stop_price,
                            events)

    cdef object _submit(self, int64_t kind, order_id, side, price, qty, owner, stop_price,
                        bint events):
        self._enter()
        self.tally = not events
        try:
            self._submit_one(kind, order_id, side, price, qty, owner, stop_price)
            return self._event_list(order_id, price, qty) if events else self.tally_filled
        finally:
            self.tally = False
            self.busy = False

    cdef qty_t _filled(self) noexcept:
        # Lots the message in the event buffer filled as taker: its TRADE events (a stop it
        # triggers trades under its own id). One order's fills sum to at most its quantity.
        cdef qty_t total = 0
        cdef const EventRec* e
        cdef size_t i
        cdef oid_t taker
        if self.events.empty():
            return 0
        taker = self.events[0].order_id
        for i in range(self.events.size()):
            e = &self.events[i]
            if e.kind == t.EV_TRADE and e.order_id == taker:
                total += e.qty
        return total

    cdef int _submit_one(self, int64_t kind, order_id, side, price, qty, owner,
                         stop_price) except -1:
        cdef Message m
        cdef int reason
        cdef slot_t found
        m.kind = <uint8_t>kind if 0 <= kind <= 255 else 0
        m.order_id = as_i64(order_id, "order_id")
        m.side = order_side(side) if is_new_order(kind) else 0
        m.price = as_i64(price, "price")
        m.qty = as_i64(qty, "qty")
        m.owner = as_i64(owner, "owner")
        m.stop_price = as_i64(stop_price, "stop_price")
        if not is_new_order(kind) and kind != t.K_CANCEL and kind != t.K_AMEND:
            raise check.error_for(Reason.INVALID_KIND, kind, m.order_id, m.side, m.price,
                                  m.stop_price, m.qty)
        # Not run(): a caller error raises before anything changes (no REJECTED event, no
        # sequence number), so the check sits between validation and execution.
        reason = self.validate(&m, &found)
        if is_caller_error(reason):
            raise check.error_for(reason, kind, m.order_id, m.side, m.price, m.stop_price, m.qty)
        self.events.clear()
        self.tally_id = m.order_id
        self.tally_filled = 0
        self.execute(&m, reason, found)
        return 0

    cdef list _event_list(self, order_id=None, price=None, qty=None):
        # Sized once and filled in place (no append growth); the type looked up once. The
        # message's own order_id, price and qty objects (exact ints only: never a bool or a
        # subclass) seed the int cache (orderbook_int), so an event repeating them holds the
        # caller's objects. Field numbers are the Event's: 5 order_id, 9 price, 11 qty.
        cdef Py_ssize_t n = <Py_ssize_t>self.events.size()
        cdef list out = PyList_New(n)
        cdef const EventRec* e
        cdef Py_ssize_t i
        cdef object event_type = Event
        cdef orderbook_ints ints
        memset(ints.objects, 0, sizeof(ints.objects))
        if order_id is not None and compact_int(order_id, &ints.values[5]):
            ints.objects[5] = <PyObject*>order_id
        if price is not None and compact_int(price, &ints.values[9]):
            ints.objects[9] = <PyObject*>price
        if qty is not None and compact_int(qty, &ints.values[11]):
            ints.objects[11] = <PyObject*>qty
        for i in range(n):
            e = &self.events[i]
            item = event_tuple(event_type, &ints, e.seq, e.msg, e.kind, e.reason, e.side,
                               e.order_id, e.owner, e.maker_id, e.maker_owner, e.price,
                               e.stop_price, e.qty)
            Py_INCREF(item)   # PyList_SET_ITEM steals the reference
            PyList_SET_ITEM(out, i, item)
        return out

    # ----------------------------------------------------------------------------- batch
    def process(self, messages, *, out=None, record="all"):
        """Process a ``MESSAGE_DTYPE`` array with the GIL released; return an ``EVENT_DTYPE`` array.

        Malformed messages become REJECTED events (never exceptions) and change nothing; every
        other message runs to completion, stops it triggers included, before the next one. The
        array may be non-contiguous or unaligned; it is read, never written.

        ``record`` chooses what is kept (``orderbook.batch``): ``"all"`` events, ``"trades"``
        (TRADE and REJECTED events) or ``"counters"``, which returns a ``BatchCounts`` instead
        of rows. ``out`` is an EVENT_DTYPE array to write the events to, reused across calls
        (the result is then ``out[:k]``); if they outgrow it, a larger new array is returned
        and ``OutGrewWarning`` is issued. A bad ``out`` or ``record`` raises before anything
        changes. The book and its ``seq``/``msg`` counters end the same in every mode.

        A returned array whose records took 1-32 MB leaves them, when it is garbage, as the
        process's one spare buffer, which the next batch that fits reuses instead of having
        fresh pages mapped (at most 32 MB stay held).
        """
        # Taken before anything that can let another thread run (numpy's copy releases the
        # GIL for large arrays), so two callers can never both be inside the containers.
        self._enter()
        try:
            messages = check.message_array(messages)
            mode = record_mode(record)
            return self._process(messages, out_buffer(out, mode, messages), mode)
        finally:
            self.busy = False

    cdef object _process(self, cnp.ndarray messages, out, int record):
        cdef Py_ssize_t n = messages.shape[0]
        cdef const uint8_t* rows
        cdef EventSink sink
        # The data pointer straight from the array: a byte view and a typed memoryview cost a
        # few microseconds a call, a tenth of the run for batches of 1,000 messages.
        if not cnp.PyArray_IS_C_CONTIGUOUS(messages):
            messages = np.ascontiguousarray(messages)
        rows = <const uint8_t*>cnp.PyArray_DATA(messages)
        self._open_sink(&sink, out, record, n)
        with nogil:
            self.run_batch(rows, n, &sink)
            if sink.stream:
                stream_fence()
        return self._sink_result(&sink, out, n)

    cdef int _open_sink(self, EventSink* sink, out, int record, Py_ssize_t n) except -1:
        cdef Py_ssize_t rows
        cdef Py_ssize_t expected = 0       # rows the batch is expected to keep
        if record != RECORD_COUNTERS and n:
            expected = self._rows_estimate(n, record)
        if out is not None:
            # out passed batch.out_buffer: a writable, aligned, C-contiguous EVENT_DTYPE array.
            rows = cnp.PyArray_DIM(<cnp.ndarray>out, 0)
            sink_init(sink, record, True,
                      <EventRec*>cnp.PyArray_DATA(<cnp.ndarray>out) if rows else NULL, rows)
        else:
            sink_init(sink, record, False, NULL, 0)
            if expected:
                take_spare(sink, expected)
                sink_reserve(sink, expected)
        # A log well past the cache is streamed to memory (_sink.pxd, stream_copy).
        sink.stream = (record == RECORD_ALL
                       and <size_t>expected * sizeof(EventRec) >= STREAM_MIN)
        return 0

    cdef Py_ssize_t _rows_estimate(self, Py_ssize_t n, int record) noexcept:
        # Rows to reserve for n messages: this book's events per message so far (1.5 before it
        # has seen enough), with an eighth to spare. A short reservation only costs a realloc,
        # which moves no bytes for a large block; reserved pages never touched cost nothing.
        cdef double per_message = 1.5
        if self.msg >= FLUSH_EVENTS:
            per_message = <double>self.seq / <double>self.msg
        if record == RECORD_TRADES:
            per_message /= 4
        return <Py_ssize_t>(n * per_message * 1.125) + FLUSH_EVENTS

    cdef object _sink_result(self, EventSink* sink, out, Py_ssize_t n):
        # What a batch returns from its sink (see process); frees what it does not hand over.
        cdef _EventLog log
        cdef int64_t* c = sink.counts
        try:
            if sink.failed:
                raise MemoryError(f"the batch ran all {n} messages, but its events past row "
                                  f"{sink.size} were lost: no memory for more")
            if sink.record == RECORD_COUNTERS:
                return BatchCounts(n, c[1] + c[2] + c[3] + c[4] + c[5] + c[6], c[t.EV_ACCEPTED],
                                   c[t.EV_TRADE], c[t.EV_CANCELLED], c[t.EV_AMENDED],
                                   c[t.EV_REJECTED], c[t.EV_STOP_TRIGGERED], sink.traded)
            if not sink.owned:
                return out[:sink.size] if out is not None else np.empty(0, dtype=EVENT_DTYPE)
            if sink.outgrew:
                warnings.warn(OutGrewWarning(
                    f"out has {len(out)} rows but the batch kept {sink.size} events: they are "
                    f"returned in a new array, not in out"), stacklevel=3)
            if sink.size == 0:
                return np.empty(0, dtype=EVENT_DTYPE)
            # The records move into an owner the array views, instead of being copied: perf
            # put that copy and its fresh pages at a tenth of a batch's time.
            if <size_t>sink.capacity * sizeof(EventRec) > SPARE_MAX:
                sink_shrink(sink)    # too large to be kept as the spare: give the rest back
            log = _EventLog.__new__(_EventLog)
            log.records = sink.rows
            log.allocated = <size_t>sink.capacity * sizeof(EventRec)
            sink.owned = False
            log.nbytes = <Py_ssize_t>(sink.size * sizeof(EventRec))
            log.itemsize = 1
            return np.frombuffer(log, dtype=EVENT_DTYPE)
        finally:
            sink_free(sink)

    cdef int _enter(self) except -1:
        # Check-and-set with no Python call in between is atomic under the GIL: at most one
        # thread at a time works on the containers; any other caller gets the RuntimeError.
        if self.busy:
            raise RuntimeError(BUSY_MESSAGE)
        self.busy = True
        return 0

    cdef int _idle(self) except -1:
        # For reads that make no Python call while they touch the containers.
        if self.busy:
            raise RuntimeError(BUSY_MESSAGE)
        return 0

    @property
    def busy(self):
        """True while a call (``process``'s batch without the GIL, or any other) uses the book.

        One book serves one thread at a time: a call from another thread meanwhile raises
        RuntimeError instead of racing. Separate books run in parallel.
        """
        return self.busy

    # --------------------------------------------------------------------------- queries
    def best_bid(self):
        """Highest bid price in ticks, or None. O(1)."""
        self._idle()
        cdef price_t key
        return None if ladder_first(&self.bids, &key) == NULL else -key

    def best_ask(self):
        """Lowest ask price in ticks, or None. O(1)."""
        self._idle()
        cdef price_t key
        return None if ladder_first(&self.asks, &key) == NULL else key

    def spread(self):
        """Best ask minus best bid in ticks, or None if a side is empty."""
        self._idle()
        cdef price_t bid_key, ask_key
        if ladder_first(&self.bids, &bid_key) == NULL or ladder_first(&self.asks, &ask_key) == NULL:
            return None
        return ask_key + bid_key

    def mid(self):
        """Mid price in ticks as a float, or None if a side is empty."""
        self._idle()
        cdef price_t bid_key, ask_key
        if ladder_first(&self.bids, &bid_key) == NULL or ladder_first(&self.asks, &ask_key) == NULL:
            return None
        return (<object>ask_key - bid_key) / 2

    @property
    def last_price(self):
        """Price of the last trade in ticks, or None before the first trade."""
        self._idle()
        return self.last if self.has_last else None

    @property
    def n_orders(self):
        """Number of resting orders."""
        self._idle()
        return self.ids.count - self.stop_count

    @property
    def n_stops(self):
        """Number of armed stop orders."""
        self._idle()
        return self.stop_count

    @property
    def message_count(self):
        """Number of messages processed (per call and in batches), rejected ones included."""
        self._idle()
        return self.msg

    @property
    def event_count(self):
        """Number of events emitted so far, i.e. the next event's ``seq``."""
        self._idle()
        return self.seq

    def quantity_at(self, side, price):
        """Lots resting at ``price`` ticks on ``side``. O(log L)."""
        cdef int s = as_side(side)
        cdef price_t p = as_i64(price, "price")
        self._idle()
        # no level rests below 1 tick; clamped, -price (level_key) cannot overflow
        return self.level_total(s, p) if p >= 1 else 0

    def resting_qty(self, side, price):
        """Lots resting on ``side`` at ``price`` or better (bids >= price, asks <= price)."""
        cdef int s
        self._enter()
        try:
            s = as_side(side)
            # (no level rests below 1 tick: a price below 0 reads as 0, whose key negates)
            return resting_total(&self.bids if s == BUY else &self.asks, s,
                                 max(as_i64(price, "price"), 0))
        finally:
            self.busy = False

    def l2(self, n=10):
        """Top ``n`` levels per side, best first: prices (ticks), lots, order counts (L2)."""
        self._enter()
        try:
            return l2_columns(&self.bids, &self.asks, check.as_count("n", n))
        finally:
            self.busy = False

    def l3(self):
        """Every resting order (L3_DTYPE): bids best first, then asks best first, FIFO."""
        self._enter()
        try:
            return l3_rows(&self.bids, &self.asks, self.pool.data(),
                           self.ids.count - self.stop_count)
        finally:
            self.busy = False

    def stops(self):
        """Every armed stop (STOP_DTYPE) in trigger order: sell stops, then buy stops."""
        self._enter()
        try:
            return stop_rows(&self.sell_stops, &self.buy_stops, self.pool.data(),
                             &self.stop_prices, self.stop_count)
        finally:
            self.busy = False

    def order(self, order_id):
        """The live order (resting or armed stop) with this id as OrderInfo.

        Raises UnknownOrderError (a KeyError) if the id is not live. O(1) expected.
        """
        cdef oid_t oid = as_i64(order_id, "order_id")
        self._idle()
        return self._order_info(oid)

    cdef object _order_info(self, oid_t oid):
        cdef slot_t slot = id_find(&self.ids, self.pool.data(), oid)
        if slot == NO_SLOT:
            raise check.unknown_order(oid)
        # Copied out before any Python object is built: building one may let another thread in.
        cdef Order o = self.pool[slot]
        cdef price_t stop_price = self.stop_price_of(slot)
        return OrderInfo(o.order_id, o.owner, o.side, o.kind, o.price, stop_price, o.qty)

    def __contains__(self, order_id):
        """Whether ``order_id`` is a live order (resting or armed); False for non-integer ids."""
        cdef oid_t oid
        try:
            oid = as_i64(order_id, "order_id")
        except (TypeError, ValueError):
            return False
        self._idle()
        return id_find(&self.ids, self.pool.data(), oid) != NO_SLOT

    def orders_of(self, owner):
        """Ids of ``owner``'s live orders (resting and armed stops) as a sorted list of ints.

        O(n + L + k log k) for n live orders on L price and stop levels, k of them ``owner``'s.
        """
        cdef owner_t who = as_i64(owner, "owner")
        cdef vector[oid_t] owned
        self._idle()
        self.ids_of(who, &owned)
        return [oid for oid in owned]

    def impact(self, side, qty):
        """What a market order of ``side`` for ``qty`` lots would fill now (Impact); no change."""
        cdef int s
        self._enter()
        try:
            s = as_side(side)
            return impact_on(&self.asks if s == BUY else &self.bids, s,
                             check.as_positive("qty", qty))
        finally:
            self.busy = False

    # ---------------------------------------------------------------------------- copies
    def copy(self):
        """An independent book with the same state and the same future behaviour."""
        self._enter()
        try:
            return self._copy()
        finally:
            self.busy = False

    cdef OrderBook _copy(self):
        cdef OrderBook other = OrderBook.__new__(OrderBook)
        self.copy_into(other)
        other.tick_size = self.tick_size
        other.lot_size = self.lot_size
        return other

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        """Pickle the book's public state; unpickling rebuilds it through checked paths."""
        self._enter()
        try:
            resting, armed = order_lists(&self.bids, &self.asks, &self.sell_stops,
                                         &self.buy_stops, self.pool.data(), &self.stop_prices)
            state = (resting, armed, self.last if self.has_last else None, self.seq, self.msg)
        finally:
            self.busy = False
        return (_restore, (str(self.tick_size), str(self.lot_size), int(self.stp),
                           int(self.amend_rule), state))

    cdef int _restore_state(self, list resting, list armed) except -1:
        # Each entry has passed check.book_state; here each must also be a message the book
        # accepts as it stands (no duplicate id, no level past int64) and a resting order must
        # not cross, so a damaged pickle raises instead of corrupting the containers.
        cdef Flight o
        cdef Message m
        cdef slot_t found
        cdef int i
        for i, entry in enumerate(resting + armed):
            name = f"resting[{i}]" if i < len(resting) else f"armed[{i - len(resting)}]"
            m.order_id, m.owner, m.side, m.kind = (entry["order_id"], entry["owner"],
                                                   entry["side"], entry["kind"])
            m.price, m.stop_price, m.qty = entry["price"], entry["stop_price"], entry["qty"]
            reason = self.validate(&m, &found)
            if reason != t.R_NONE:
                raise ValueError(f"corrupt OrderBook state: {name} {entry} cannot be restored "
                                 f"({Reason(reason).name})")
            # Copied once validated: in the pool the side and kind are bit-fields
            # (_types.pxd), which a value out of their range would wrap in.
            o.order_id, o.owner, o.side, o.kind = m.order_id, m.owner, m.side, m.kind
            o.price, o.qty = m.price, m.qty
            if is_stop(o.kind):
                self.stop_prices[self.link(&self.buy_stops if o.side == BUY
                                           else &self.sell_stops,
                                           level_key(-o.side, m.stop_price), &o)] = m.stop_price
                self.stop_count += 1
            else:
                if self.would_cross(o.side, o.price):
                    raise ValueError(f"corrupt OrderBook state: {name} {entry} crosses the "
                                     f"book")
                self.link(&self.bids if o.side == BUY else &self.asks,
                          level_key(o.side, o.price), &o)
        return 0

    def __repr__(self):
        if self.busy:
            return "OrderBook(<in use by another thread>)"
        return (f"OrderBook(bid={self.best_bid()}, ask={self.best_ask()}, "
                f"orders={self.n_orders}, stops={self.n_stops}, last={self.last_price})")


def _restore(tick_size, lot_size, stp, amend_rule, state):
    """Rebuild a pickled OrderBook; ValueError naming the field if the pickle is damaged."""
    cdef OrderBook book = OrderBook(tick_size, lot_size, stp=stp, amend_rule=amend_rule)
    resting, armed, last_price, seq, msg = check.book_state(state)
    book._restore_state(resting, armed)
    book.has_last = last_price is not None
    book.last = last_price if last_price is not None else 0
    book.seq = seq
    book.msg = msg
    return book


def _set_max_live(OrderBook book, limit):
    """Test hook: let ``book`` hold at most ``limit`` live orders (0 .. MAX_LIVE_ORDERS), so the
    BOOK_FULL rule can be tested without 2**28 orders; the reference's twin is its ``_max_live``.
    """
    cdef int64_t n = check.as_int64("limit", limit)
    if not 0 <= n <= t.MAX_LIVE_ORDERS:
        raise ValueError(f"limit must be in [0, {t.MAX_LIVE_ORDERS}], got {n}")
    book.max_live = n


# ------------------------------------------------------------------------ import-time check

# Before any batch can run: a disagreement between _types.pxd and events.py fails the import.
_layout.check(*c_layout())
