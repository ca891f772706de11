# C-level API of the order book, for other Cython modules (the engine, the liquidator) to
# cimport. The containers and the matching rules (validate, execute, run, ids_of, ...) are
# MatchingCore's (_matching.pxd); OrderBook adds the Python-facing plumbing.

cimport cython
cimport numpy as cnp
from libc.stdint cimport int64_t
from libcpp cimport bool as cbool

from orderbook._matching cimport MatchingCore
from orderbook._sink cimport EventSink
from orderbook._types cimport oid_t, qty_t


@cython.final
cdef class OrderBook(MatchingCore):
    cdef cbool busy               # a call holds the book (a batch may run without the GIL)
    cdef readonly object tick_size
    cdef readonly object lot_size

    # Python-facing plumbing. Public methods take the busy flag (_enter, released in finally)
    # or check it (_idle, for reads that call no Python while they touch the containers), and
    # the cdef parts below assume they hold it.
    cdef int _enter(self) except -1
    cdef int _idle(self) except -1
    cdef object _submit(self, int64_t kind, order_id, side, price, qty, owner, stop_price,
                        bint events)
    # One message checked and run, its events (only) left in the event buffer; caller errors
    # raise with nothing changed.
    cdef int _submit_one(self, int64_t kind, order_id, side, price, qty, owner,
                         stop_price) except -1
    cdef qty_t _filled(self) noexcept
    cdef list _event_list(self, order_id=*, price=*, qty=*)
    cdef object _process(self, cnp.ndarray messages, out, int record)
    # A batch's sink (_sink.pxd) for n messages, writing to out (None: allocating), and what
    # the batch returns from it (freeing what it does not hand over).
    cdef int _open_sink(self, EventSink* sink, out, int record, Py_ssize_t n) except -1
    cdef Py_ssize_t _rows_estimate(self, Py_ssize_t n, int record) noexcept
    cdef object _sink_result(self, EventSink* sink, out, Py_ssize_t n)
    cdef object _order_info(self, oid_t oid)
    cdef OrderBook _copy(self)
    cdef int _restore_state(self, list resting, list armed) except -1
