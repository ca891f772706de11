"""Message, InvalidOrder and message_array: what orderbook.strategies draws, as plain values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..events import INT64_MAX, INT64_MIN, MESSAGE_DTYPE, Event, Kind, Reason, Side, messages

_FIELD_RANGE = {
    "kind": (0, 255), "side": (-128, 127), "order_id": (INT64_MIN, INT64_MAX),
    "owner": (INT64_MIN, INT64_MAX), "price": (INT64_MIN, INT64_MAX),
    "stop_price": (INT64_MIN, INT64_MAX), "qty": (INT64_MIN, INT64_MAX),
}


def _enum_repr(enum, value) -> str:
    try:
        return f"{enum.__name__}.{enum(value).name}"
    except (ValueError, TypeError):
        return repr(value)


@dataclass(frozen=True)
class Message:
    """One message for a book or an engine, in the argument order of ``OrderBook.submit``.

    Fields hold whatever the caller wants to send, valid or not (``orderbook.strategies`` draws
    both); ``price``/``stop_price`` in ticks, ``qty`` in lots. ``submit(book)`` sends it per call
    and :func:`message_array` packs messages into a ``MESSAGE_DTYPE`` batch.

    Examples
    --------
    >>> from orderbook import Kind, OrderBook, Side
    >>> Message(Kind.LIMIT, 7, Side.BUY, price=100, qty=3).submit(OrderBook())
    [Event(#0 ACCEPTED BUY id=7 owner=0 price=100 qty=3 msg=0)]
    """

    kind: object
    order_id: object
    side: object = 0
    price: object = 0
    qty: object = 0
    owner: object = 0
    stop_price: object = 0

    def submit(self, book) -> list[Event]:
        """Send the message through ``book.submit`` (an OrderBook or an Engine); its events."""
        return book.submit(self.kind, self.order_id, self.side, self.price, self.qty,
                           self.owner, self.stop_price)

    def row(self) -> dict:
        """The message as a dict of ``MESSAGE_DTYPE`` field names (for ``events.messages``)."""
        return {name: getattr(self, name) for name in MESSAGE_DTYPE.names}

    def representable(self) -> bool:
        """Whether every field is an integer in its ``MESSAGE_DTYPE`` range (so it can batch)."""
        for name, (lo, hi) in _FIELD_RANGE.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                return False
            if not lo <= int(value) <= hi:
                return False
        return True

    def __repr__(self) -> str:
        parts = [_enum_repr(Kind, self.kind), f"order_id={self.order_id!r}"]
        for name in ("side", "price", "qty", "owner", "stop_price"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value != 0:
                parts.append(f"{name}={_enum_repr(Side, value) if name == 'side' else repr(value)}")
        return f"Message({', '.join(parts)})"


def message_array(msgs: Iterable[Message]) -> np.ndarray:
    """Pack messages into a ``MESSAGE_DTYPE`` array for ``OrderBook.process``.

    Parameters
    ----------
    msgs : iterable of Message
        Every field must be an integer in its ``MESSAGE_DTYPE`` range.

    Returns
    -------
    numpy.ndarray of MESSAGE_DTYPE, one row per message.

    Raises
    ------
    ValueError
        A message has a non-integer or out-of-range field (numpy would truncate or wrap it).
    """
    msgs = list(msgs)
    for m in msgs:
        if not m.representable():
            raise ValueError(f"{m!r} cannot be a MESSAGE_DTYPE row: every field must be an "
                             f"integer in its dtype's range")
    return messages(m.row() for m in msgs)


@dataclass(frozen=True)
class InvalidOrder:
    """A message the book must refuse, after ``setup`` (valid messages) from an empty book.

    ``reason`` is the reason of the one REJECTED event the batch path (``process``) reports, or
    None when the message cannot be a ``MESSAGE_DTYPE`` row (a non-integer or an out-of-int64
    value). ``error`` is the exception the per-call API raises (``TypeError``, ``ValueError`` or
    ``KeyError``), or None for a market refusal (POST_ONLY_WOULD_TAKE, STOP_WOULD_TRIGGER,
    NOT_AMENDABLE), which both paths report as one REJECTED event. See :func:`assert_rejected`.
    """

    setup: tuple[Message, ...]
    message: Message
    reason: Reason | None
    error: type[Exception] | None
