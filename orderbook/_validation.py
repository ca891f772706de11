"""Argument checks and error messages shared by the engine's per-call path and the reference.

The engine checks the common case (a plain ``int`` in range) inline and calls into this module
only when a value needs converting or is wrong, so the messages users see come from one place.
"""

from __future__ import annotations

import math
import operator
from decimal import Decimal, InvalidOperation, localcontext

from .events import INT64_MAX, INT64_MIN, Kind, Reason

_SIDE_NAMES = {"buy": 1, "bid": 1, "sell": -1, "ask": -1}


def as_int64(name: str, value) -> int:
    """Return ``value`` as a Python int in int64 range; TypeError/ValueError naming ``name``."""
    if isinstance(value, (bool, float)) or not hasattr(value, "__index__"):
        hint = ""
        if name in ("price", "stop_price"):
            hint = "; use OrderBook.to_ticks() to convert a price in quote units"
        elif name == "qty":
            hint = "; use OrderBook.to_lots() to convert a quantity in base units"
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}){hint}")
    number = operator.index(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64, got {number}")
    return number


def as_side(value) -> int:
    """Return a side as +1/-1 from a Side, an int or 'buy'/'sell'; ValueError otherwise."""
    if isinstance(value, str):
        try:
            return _SIDE_NAMES[value.lower()]
        except KeyError:
            raise ValueError(f"side must be 'buy' or 'sell', got {value!r}") from None
    side = as_int64("side", value)
    if side not in (1, -1):
        raise ValueError(f"side must be Side.BUY (1) or Side.SELL (-1), got {side}")
    return side


def as_count(name: str, value) -> int:
    """Return a non-negative int (a number of levels, for instance)."""
    number = as_int64(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {number}")
    return number


def as_positive(name: str, value) -> int:
    """Return an int in [1, INT64_MAX]."""
    number = as_int64(name, value)
    if number < 1:
        raise ValueError(f"{name} must be in [1, {INT64_MAX}], got {number}")
    return number


def _decimal(name: str, value) -> Decimal:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a decimal string, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return Decimal(repr(value))
    if isinstance(value, (str, Decimal)) or hasattr(value, "__index__"):
        try:
            number = Decimal(value if isinstance(value, (str, Decimal)) else operator.index(value))
        except InvalidOperation:
            raise ValueError(f"{name} must be a decimal number, got {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"{name} must be finite, got {value!r}")
        return number
    raise TypeError(f"{name} must be a number or a decimal string, got {value!r} "
                    f"({type(value).__name__})")


def unit_size(name: str, value) -> Decimal:
    """Parse a tick or lot size: a positive, finite decimal."""
    size = _decimal(name, value)
    if size <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return size


def to_units(name: str, value, unit: Decimal) -> int:
    """Convert ``value`` in real units to an integer count of ``unit``; ValueError if off grid."""
    number = _decimal(name, value)
    with localcontext() as ctx:
        ctx.prec = 80
        count = number / unit
    if count != count.to_integral_value():
        raise ValueError(f"{name} {value!r} is not a multiple of {unit}")
    count = int(count)
    if not INT64_MIN <= count <= INT64_MAX:
        raise ValueError(f"{name} {value!r} is {count} units, outside int64")
    return count


def from_units(count: int, unit: Decimal) -> Decimal:
    """Convert an integer count of ``unit`` back to a Decimal in real units."""
    with localcontext() as ctx:
        ctx.prec = 80
        return count * unit


_MESSAGES = {
    Reason.INVALID_KIND: "kind must be one of {kinds}, got {kind}",
    Reason.INVALID_SIDE: "side must be Side.BUY (1) or Side.SELL (-1), got {side}",
    Reason.INVALID_PRICE: "price must be in [1, {max}] ticks, got {price}",
    Reason.INVALID_STOP_PRICE: "stop_price must be in [1, {max}] ticks, got {stop_price}",
    Reason.INVALID_QTY: "qty must be in [1, {max}] lots, got {qty}",
    Reason.DUPLICATE_ID: "order_id {order_id} is already live (resting or an armed stop)",
    Reason.UNKNOWN_ORDER: "order_id {order_id} is not a live order",
    Reason.QTY_OVERFLOW: "qty {qty} would take the level at price {price} past {max} lots",
}


def error_for(reason: int, kind: int, order_id: int, side: int, price: int, stop_price: int,
              qty: int) -> Exception:
    """The exception the per-call API raises for a message that failed validation."""
    text = _MESSAGES[Reason(reason)].format(
        kinds=[k.name for k in Kind], kind=kind, side=side, price=price, stop_price=stop_price,
        qty=qty, order_id=order_id, max=INT64_MAX)
    if reason == Reason.UNKNOWN_ORDER:
        return KeyError(text)
    return ValueError(text)
