"""Per-call refusals of the order book, with the reason code a batch would report.

The per-call API (``limit``, ``cancel``, ``submit``, ..., ``order``) refuses a malformed or
impossible message by raising, where ``process`` would emit one REJECTED event. The exception
says why in words (its message) and in a code (its ``reason``), so callers can branch on the code
instead of parsing the text. Both classes keep the built-in bases callers already catch.
"""

from __future__ import annotations

from .events import Reason

__all__ = ["OrderError", "UnknownOrderError"]


class OrderError(ValueError):
    """A message the book or the margin engine refuses: ``reason`` is the Reason a batch reports
    for it.

    Parameters
    ----------
    message : str
        What is wrong, naming the field and its value.
    reason : Reason
        One of the caller-error reasons (``events.CALLER_ERRORS``): INVALID_KIND, INVALID_SIDE,
        INVALID_PRICE, INVALID_STOP_PRICE, INVALID_QTY, DUPLICATE_ID, UNKNOWN_ORDER, BOOK_FULL
        or QTY_OVERFLOW; or, from ``Engine``, INSUFFICIENT_MARGIN (docs/liquidation.md, "Initial
        margin"), POSITION_LIMIT (``max_position``) or ISOLATED_ELSEWHERE.

    Examples
    --------
    >>> from orderbook import OrderBook, OrderError, Reason
    >>> book = OrderBook()
    >>> try:
    ...     book.limit(1, "buy", 0, 5)
    ... except OrderError as exc:
    ...     print(exc.reason.name, "-", exc)
    INVALID_PRICE - price must be in [1, 9223372036854775807] ticks, got 0
    """

    def __init__(self, message: str, reason: Reason):
        super().__init__(message)
        self.reason = Reason(reason)

    def __reduce__(self):
        # BaseException pickles ``args`` alone, which would lose the reason.
        return (type(self), (self.args[0], int(self.reason)))


class UnknownOrderError(OrderError, KeyError):
    """A cancel, amend or ``order()`` lookup of an id that is not live (Reason.UNKNOWN_ORDER)."""

    def __init__(self, message: str, reason: Reason = Reason.UNKNOWN_ORDER):
        super().__init__(message, reason)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
