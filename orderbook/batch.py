"""What a batch records and where: the ``record=`` and ``out=`` options of ``process``.

``OrderBook.process`` and ``Engine.process`` take the same two options:

- ``record``: ``"all"`` (every event, the default), ``"trades"`` (TRADE and REJECTED events
  only, in order, with their usual ``seq``) or ``"counters"`` (no rows: a :class:`BatchCounts`).
- ``out``: a caller-owned EVENT_DTYPE array the events are written to, reused across calls so a
  batch faults in no fresh memory. The result is then ``out[:k]``, a view of it. When the events
  outgrow it, the batch still runs to the end (a batch never stops half way): its events go to
  a larger new array, which is returned instead of a view, and :class:`OutGrewWarning` says so.
  ``out``'s first rows then hold the start of the batch's events.

The checks raise before anything changes and name the argument.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .events import EVENT_DTYPE

__all__ = ["RECORD_MODES", "BatchCounts", "OutGrewWarning", "record_mode", "out_buffer"]

#: The ``record=`` values, in the order of the C core's codes (_sink.pxd RECORD_*).
RECORD_MODES = ("all", "trades", "counters")


class OutGrewWarning(RuntimeWarning):
    """A batch's events did not fit in ``out=``: the returned array is a new, larger one."""


class BatchCounts(NamedTuple):
    """What ``process(..., record="counters")`` returns: the batch's events counted by kind.

    Counts are numbers of events; ``traded_qty`` is lots (sum of the TRADE events' ``qty``).
    """

    messages: int         #: messages processed (rejected ones included)
    events: int           #: events emitted, all kinds
    accepted: int         #: ACCEPTED events
    trades: int           #: TRADE events (one per maker fill)
    cancelled: int        #: CANCELLED events
    amended: int          #: AMENDED events
    rejected: int         #: REJECTED events
    stops_triggered: int  #: STOP_TRIGGERED events
    traded_qty: int       #: lots traded

    @classmethod
    def of(cls, messages: int, events: np.ndarray) -> BatchCounts:
        """The counts of an EVENT_DTYPE array (what ``record="all"`` returned) for ``messages``
        messages. O(len(events))."""
        per_kind = np.bincount(events["kind"], minlength=7)
        trades = events["kind"] == 2
        return cls(messages, len(events), *(int(c) for c in per_kind[1:7]),
                   int(events["qty"][trades].sum()))


def record_mode(record) -> int:
    """``record`` as the core's code (index in RECORD_MODES); ValueError/TypeError naming it."""
    if not isinstance(record, str):
        raise TypeError(f"record must be one of {', '.join(map(repr, RECORD_MODES))}, got "
                        f"{type(record).__name__}")
    try:
        return RECORD_MODES.index(record)
    except ValueError:
        raise ValueError(f"record must be one of {', '.join(map(repr, RECORD_MODES))}, got "
                         f"{record!r}") from None


def out_buffer(out, record: int, messages: np.ndarray) -> np.ndarray | None:
    """Check an ``out=`` argument for a batch of ``messages`` recorded as ``record`` (a code).

    None passes (the batch allocates). Otherwise ``out`` must be a one-dimensional, writable,
    C-contiguous, aligned numpy array of EVENT_DTYPE that shares no memory with ``messages``;
    with ``record="all"`` it needs at least one row per message (each emits one event or
    more); ``record="counters"`` writes no rows and takes no ``out``. TypeError or ValueError
    naming ``out``.
    """
    if out is None:
        return None
    if not isinstance(out, np.ndarray) or out.dtype != EVENT_DTYPE:
        raise TypeError(f"out must be a numpy array of EVENT_DTYPE, got "
                        f"{getattr(out, 'dtype', type(out).__name__)}")
    if out.ndim != 1:
        raise ValueError(f"out must be one-dimensional, got shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writable, got a read-only array")
    if not (out.flags.c_contiguous and out.flags.aligned):
        raise ValueError("out must be C-contiguous and aligned, got a strided or unaligned view")
    if RECORD_MODES[record] == "counters":
        raise ValueError("out must be None with record='counters' (no rows are written)")
    if RECORD_MODES[record] == "all" and len(out) < len(messages):
        raise ValueError(f"out must have at least one row per message with record='all', got "
                         f"{len(out)} rows for {len(messages)} messages")
    if np.may_share_memory(out, messages):
        raise ValueError("out must not share memory with messages")
    return out
