"""The differential harness: a book against the reference, event by event; refusals checked."""

from __future__ import annotations

import numpy as np

from ..book import OrderBook
from ..events import (
    MESSAGE_DTYPE,
    AmendRule,
    Event,
    EventKind,
    Reason,
    SelfTradePrevention,
    array_to_events,
)
from ..reference import OrderBook as ReferenceOrderBook
from .invariants import InvariantError, _as_events, _require, check_book
from .messages import InvalidOrder, Message, _enum_repr, message_array


def _snapshot(book) -> tuple:
    return (book.l3().tolist(), book.stops().tolist(), book.last_price, book.best_bid(),
            book.best_ask(), book.n_orders, book.n_stops, book.message_count, book.event_count)


_SNAPSHOT_NAMES = ("l3", "stops", "last_price", "best_bid", "best_ask", "n_orders", "n_stops",
                   "message_count", "event_count")


def _event_tuples(events) -> list[tuple[int, ...]]:
    return [tuple(int(x) for x in ev) for ev in _as_events(events)]


def _event_repr(fields: tuple[int, ...]) -> str:
    try:
        return repr(Event(*fields))
    except ValueError:  # a REJECTED event echoes values no enum knows
        return f"Event{fields}"


def assert_same_events(a, b, *, names: tuple[str, str] = ("left", "right")) -> None:
    """Assert that two event sequences are identical, field by field.

    Parameters
    ----------
    a, b : list of Event or EVENT_DTYPE array
        Events as the per-call API returns them or as ``process`` does.
    names : (str, str)
        What to call ``a`` and ``b`` in the message.

    Raises
    ------
    InvariantError
        Naming the first event that differs (index and both events) or the lengths.
    """
    ta, tb = _event_tuples(a), _event_tuples(b)
    # Only the common prefix here; a length difference is reported next.
    for i, (x, y) in enumerate(zip(ta, tb, strict=False)):
        _require(x == y, "same events",
                 lambda i=i, x=x, y=y: f"event {i} differs:\n  {names[0]}: {_event_repr(x)}\n  "
                                       f"{names[1]}: {_event_repr(y)}")
    _require(len(ta) == len(tb), "same events",
             lambda: f"{names[0]} has {len(ta)} events, {names[1]} {len(tb)}; the first extra: "
                     f"{_event_repr((ta + tb)[min(len(ta), len(tb))])}")


def _refusal(exc: Exception) -> tuple[type, str]:
    # A refusal as its built-in class and text: orderbook's OrderError counts as the ValueError it
    # is and UnknownOrderError as the KeyError, so a book raising the built-ins compares equal.
    kind = next(c for c in (KeyError, TypeError, ValueError) if isinstance(exc, c))
    return kind, str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _outcome(book, message: Message):
    try:
        return "events", _event_tuples(message.submit(book))
    except (TypeError, ValueError, KeyError) as exc:
        kind, text = _refusal(exc)
        return kind.__name__, text


def compare_with_reference(msgs, *, book_cls=None, path: str = "call",
                           stp=SelfTradePrevention.NONE,
                           amend_rule=AmendRule.REDUCE_KEEPS_PRIORITY) -> list[Event]:
    """Run messages through a book and :class:`ReferenceOrderBook`; assert identical results.

    Both books start empty with the same settings. Per call, each message must give the same
    events or raise the same exception type with the same text (TypeError, ValueError or
    KeyError: an ``OrderError`` counts as the built-in it is); in a batch, ``process`` must
    return the same events. Then both must be in the same state (``l3``, ``stops``, last price,
    best prices, counts and counters), and :func:`check_book`, with the event log, must pass on
    both.

    Parameters
    ----------
    msgs : sequence of Message, or a MESSAGE_DTYPE array
        The messages, valid or not.
    book_cls : type, optional
        The implementation under test, called as ``book_cls(stp=..., amend_rule=...)``; default
        the compiled :class:`orderbook.OrderBook`.
    path : {"call", "batch"}
        Send the messages one by one through ``submit``, or all at once through ``process``.
    stp, amend_rule
        The books' self-trade prevention and amend rule.

    Returns
    -------
    list of Event
        The events of the book under test.

    Raises
    ------
    InvariantError
        At the first difference, naming the message (by index) and both outcomes.
    """
    if isinstance(msgs, np.ndarray):
        if msgs.dtype != MESSAGE_DTYPE:
            raise TypeError(f"messages must have dtype MESSAGE_DTYPE, got {msgs.dtype}")
        msgs = [Message(**{name: int(row[name]) for name in MESSAGE_DTYPE.names}) for row in msgs]
    msgs = list(msgs)
    cls = OrderBook if book_cls is None else book_cls
    book = cls(stp=stp, amend_rule=amend_rule)
    reference = ReferenceOrderBook(stp=stp, amend_rule=amend_rule)
    events: list[Event] = []
    ref_events: list[Event] = []
    if path == "batch":
        batch = message_array(msgs)
        events = array_to_events(book.process(batch))
        ref_events = array_to_events(reference.process(batch))
        assert_same_events(events, ref_events, names=("book", "reference"))
    elif path == "call":
        for i, m in enumerate(msgs):
            got, want = _outcome(book, m), _outcome(reference, m)
            _require(got == want, "same outcome as the reference",
                     lambda i=i, m=m, got=got, want=want:
                         f"message {i} {m!r}:\n  book:      {_fmt_outcome(got)}\n  "
                         f"reference: {_fmt_outcome(want)}")
            if got[0] == "events":
                events += [Event(*t) for t in got[1]]
                ref_events += [Event(*t) for t in want[1]]
    else:
        raise ValueError(f"path must be 'call' or 'batch', got {path!r}")
    a, b = _snapshot(book), _snapshot(reference)
    for name, x, y in zip(_SNAPSHOT_NAMES, a, b, strict=True):
        _require(x == y, "same state as the reference",
                 f"after {len(msgs)} messages {name} is {x} in the book, {y} in the reference")
    check_book(book, events)
    check_book(reference, ref_events)
    return events


def _fmt_outcome(outcome) -> str:
    if outcome[0] == "events":
        return "[" + ", ".join(map(_event_repr, outcome[1])) + "]"
    return f"raised {outcome[0]}({outcome[1]})"


def assert_rejected(book, case: InvalidOrder, *, path: str = "call") -> None:
    """Apply ``case.setup`` to an empty ``book``, then check that ``case.message`` is refused.

    Per call (``path="call"``): ``case.error`` is raised and nothing changes (no event, no
    message number used), or, for a market refusal, exactly one REJECTED event with
    ``case.reason`` is returned and only the counters move. In a batch (``path="batch"``, the
    message alone through ``process``): exactly one REJECTED event with ``case.reason``, and the
    orders and stops do not change. :func:`check_book` must pass afterwards. An ``OrderError``
    counts as the ValueError it is, an ``UnknownOrderError`` as the KeyError, and its ``reason``
    must be ``case.reason``.

    Parameters
    ----------
    book : OrderBook-like
        An empty book.
    case : InvalidOrder
        As drawn by ``orderbook.strategies.invalid_orders``.
    path : {"call", "batch"}

    Raises
    ------
    InvariantError
        If the message is accepted, raises something else, or changes the book.
    """
    for m in case.setup:
        m.submit(book)
    before = _snapshot(book)
    label = _enum_repr(Reason, case.reason) if case.reason is not None else "no batch reason"
    if path == "call":
        if case.error is not None:
            try:
                got = case.message.submit(book)
            except Exception as exc:  # noqa: BLE001 - the type is what is being checked
                kind, text = (_refusal(exc) if isinstance(exc, (TypeError, ValueError, KeyError))
                              else (type(exc), str(exc)))
                _require(kind is case.error, "rejection by exception",
                         f"{case.message!r} raised {kind.__name__}({text}), expected "
                         f"{case.error.__name__} ({label})")
                # orderbook's own books say why in a code too (OrderError.reason)
                _require(getattr(exc, "reason", case.reason) == case.reason,
                         "rejection by exception",
                         f"{case.message!r} raised {type(exc).__name__} with reason "
                         f"{getattr(exc, 'reason', None)!r}, expected {label}")
            else:
                raise InvariantError("rejection by exception",
                                     f"{case.message!r} returned {got}, expected "
                                     f"{case.error.__name__} ({label})")
            after = _snapshot(book)
            _require(after == before, "a refused message changes nothing",
                     f"{case.message!r} raised but changed the book: {before} -> {after}")
        else:
            got = _event_tuples(case.message.submit(book))
            ok = (len(got) == 1 and got[0][2] == EventKind.REJECTED
                  and got[0][3] == case.reason)
            _require(ok, "rejection by event",
                     lambda: f"{case.message!r} gave {_fmt_outcome(('events', got))}, expected "
                             f"one REJECTED({label})")
            _same_orders(before, _snapshot(book), case)
    elif path == "batch":
        if case.reason is None:
            raise ValueError(f"{case.message!r} cannot be a MESSAGE_DTYPE row; use path='call'")
        got = _event_tuples(book.process(message_array([case.message])))
        ok = len(got) == 1 and got[0][2] == EventKind.REJECTED and got[0][3] == case.reason
        _require(ok, "rejection by event",
                 lambda: f"{case.message!r} gave {_fmt_outcome(('events', got))} in a batch, "
                         f"expected one REJECTED({label})")
        _same_orders(before, _snapshot(book), case)
    else:
        raise ValueError(f"path must be 'call' or 'batch', got {path!r}")
    check_book(book)


def _same_orders(before, after, case) -> None:
    # A REJECTED event takes a sequence and a message number; nothing else may change.
    _require(before[:7] == after[:7], "a refused message changes nothing",
             f"{case.message!r} was rejected but changed the book: {before[:7]} -> {after[:7]}")
    _require((after[7] - before[7], after[8] - before[8]) == (1, 1),
             "a rejection counts one message and one event",
             f"message_count/event_count went from {before[7:]} to {after[7:]}")
