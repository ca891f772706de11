"""Argument checks and error messages shared by the engine's per-call path and the reference.

The engine checks the common case (a plain ``int`` in range) inline and calls into this module
only when a value needs converting or is wrong, so the messages users see come from one place.
A message refused for a reason a batch would report raises an ``errors.OrderError`` carrying
that reason; a value that cannot be a ``MESSAGE_DTYPE`` field at all (not an integer, outside
int64) raises a plain TypeError or ValueError.
"""

from __future__ import annotations

import math
import operator
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    Clamped,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Rounded,
    localcontext,
)

import numpy as np

from .errors import OrderError, UnknownOrderError
from .events import (
    INT64_MAX,
    INT64_MIN,
    MAX_LIVE_ORDERS,
    MESSAGE_DTYPE,
    RESTING_KINDS,
    STOP_KINDS,
    Kind,
    Reason,
)

_SIDE_NAMES = {"buy": 1, "bid": 1, "sell": -1, "ask": -1}


def trade_start(start) -> int:
    """``Engine.trades``'s ``start``: an int64 >= 0 (the engine checks it against its count)."""
    number = as_int64("start", start)
    if number < 0:
        raise ValueError(f"start must be >= 0, got {number}")
    return number


def log_start(start, count: int, log: str) -> int:
    """A ``start`` into a log of ``count`` rows (the ``log`` names it in the message): an int64
    in [0, count]."""
    number = trade_start(start)
    if number > count:
        raise ValueError(f"start must be at most the {log} count {count}, got {number}")
    return number


def as_int64(name: str, value) -> int:
    """Return ``value`` as a Python int in int64 range; TypeError/ValueError naming ``name``."""
    if isinstance(value, (bool, float)) or not hasattr(value, "__index__"):
        hint = ""
        if name in ("price", "stop_price"):
            hint = "; use OrderBook.to_ticks() to convert a price in quote units"
        elif name == "qty":
            hint = "; use OrderBook.to_lots() to convert a quantity in base units"
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}){hint}")
    try:
        number = operator.index(value)
    except TypeError:
        # numpy arrays have __index__ but refuse it unless they are 0-d integer arrays
        raise TypeError(f"{name} must be an integer, got {value!r} "
                        f"({type(value).__name__})") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64, got {number}")
    return number


def as_side(value, error=ValueError) -> int:
    """Return a side as +1/-1 from a Side, an int or 'buy'/'sell'; ``error`` otherwise.

    ``error`` is called with the message; a value that is not an integer raises TypeError and
    one outside int64 ValueError whatever ``error`` is.
    """
    if isinstance(value, str):
        try:
            return _SIDE_NAMES[value.lower()]
        except KeyError:
            raise error(f"side must be 'buy' or 'sell', got {value!r}") from None
    side = as_int64("side", value)
    if side not in (1, -1):
        raise error(f"side must be Side.BUY (1) or Side.SELL (-1), got {side}")
    return side


def _invalid_side(text: str) -> OrderError:
    return OrderError(text, Reason.INVALID_SIDE)


def order_side(value) -> int:
    """The side of a new order: as :func:`as_side`, refusing a bad one with OrderError."""
    return as_side(value, _invalid_side)


def as_enum(name: str, value, enum):
    """``value`` as a member of the IntEnum ``enum``; TypeError/ValueError naming ``name``."""
    number = as_int64(name, value)
    try:
        return enum(number)
    except ValueError:
        choices = ", ".join(f"{m.name} ({m.value})" for m in enum)
        raise ValueError(f"{name} must be one of {choices}, got {number}") from None


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


# Unit conversions are exact: any rounding, underflow or lost digit is an error, never a silent
# change of the user's number (decimal's default context rounds to 28 digits and flushes tiny
# values to zero).
_EXACT = Context(prec=100, Emin=MIN_EMIN, Emax=MAX_EMAX,
                 traps=[InvalidOperation, Inexact, Rounded, Clamped])

# Tick and lot sizes outside this range are refused: no market quotes in units finer than 1e-18
# or coarser than 1e18, and within it every int64 count of units is exact in _EXACT.
UNIT_SIZE_MIN = Decimal("1e-18")
UNIT_SIZE_MAX = Decimal("1e18")
UNIT_SIZE_DIGITS = 18


def _decimal(name: str, value) -> Decimal:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a decimal string, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        # float.__repr__, not repr(): numpy's float64 subclasses float and reprs as np.float64(x)
        return Decimal(float.__repr__(value))
    if isinstance(value, (str, Decimal)) or hasattr(value, "__index__"):
        try:
            number = Decimal(value if isinstance(value, (str, Decimal)) else operator.index(value))
        except TypeError:  # numpy arrays have __index__ but refuse it
            raise TypeError(f"{name} must be a number or a decimal string, got {value!r} "
                            f"({type(value).__name__})") from None
        except InvalidOperation:
            raise ValueError(f"{name} must be a decimal number, got {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"{name} must be finite, got {value!r}")
        return number
    raise TypeError(f"{name} must be a number or a decimal string, got {value!r} "
                    f"({type(value).__name__})")


def unit_size(name: str, value) -> Decimal:
    """Parse a tick or lot size: a decimal in [1e-18, 1e18] with at most 18 significant digits."""
    size = _decimal(name, value)
    if size <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if not UNIT_SIZE_MIN <= size <= UNIT_SIZE_MAX:
        raise ValueError(f"{name} must be in [{UNIT_SIZE_MIN}, {UNIT_SIZE_MAX}], got {value!r}")
    if len(size.normalize().as_tuple().digits) > UNIT_SIZE_DIGITS:
        raise ValueError(f"{name} must have at most {UNIT_SIZE_DIGITS} significant digits, "
                         f"got {value!r}")
    return size


def to_units(name: str, value, unit: Decimal) -> int:
    """Convert ``value`` in real units to an integer count of ``unit``; ValueError if off grid.

    Exact: a value that is not a whole number of units, or whose count passes int64, raises
    ValueError naming the value and the grid; nothing is rounded.
    """
    number = _decimal(name, value)
    try:
        count = _EXACT.divide(number, unit)
    except (Inexact, Rounded, Clamped, InvalidOperation):
        # more digits than any int64 count of this unit can have: off grid or out of range
        count = None
    if count is None or count != count.to_integral_value():
        raise ValueError(f"{name} {value!r} is not a multiple of {unit} (the grid)")
    if count.adjusted() > 18:  # checked before int(): 1e999999999 would take forever to convert
        raise ValueError(f"{name} {value!r} is {count} units of {unit}, outside int64")
    count = int(count)
    if not INT64_MIN <= count <= INT64_MAX:
        raise ValueError(f"{name} {value!r} is {count} units of {unit}, outside int64")
    return count


def from_units(count: int, unit: Decimal) -> Decimal:
    """Convert an integer count of ``unit`` back to a Decimal in real units."""
    with localcontext() as ctx:
        ctx.prec = 80
        return count * unit


def message_array(messages) -> np.ndarray:
    """Check a batch argument: a one-dimensional numpy array of MESSAGE_DTYPE."""
    if not isinstance(messages, np.ndarray) or messages.dtype != MESSAGE_DTYPE:
        raise TypeError(f"messages must be a numpy array of MESSAGE_DTYPE, got "
                        f"{getattr(messages, 'dtype', type(messages).__name__)}")
    if messages.ndim != 1:
        raise ValueError(f"messages must be one-dimensional, got shape {messages.shape}")
    return messages


_RESTING_FIELDS = ("order_id", "owner", "side", "kind", "price", "qty")
_ARMED_FIELDS = ("order_id", "owner", "side", "kind", "price", "stop_price", "qty")


def _record(name: str, entry, fields: tuple[str, ...]) -> dict:
    if not isinstance(entry, (tuple, list)) or len(entry) != len(fields):
        raise ValueError(f"corrupt OrderBook state: {name} must be a tuple of {len(fields)} "
                         f"integers {fields}, got {entry!r}")
    try:
        return {field: as_int64(f"{name}.{field}", value) for field, value in
                zip(fields, entry, strict=True)}
    except TypeError as exc:
        raise ValueError(f"corrupt OrderBook state: {exc}") from None


def _state_error(name: str, what: str, value) -> ValueError:
    return ValueError(f"corrupt OrderBook state: {name} must be {what}, got {value!r}")


def _state_int(name: str, value, low: int, what: str) -> int:
    try:
        number = as_int64(name, value)
    except (TypeError, ValueError):
        raise _state_error(name, what, value) from None
    if number < low:
        raise _state_error(name, what, value)
    return number


def book_state(state) -> tuple[list[dict], list[dict], int | None, int, int]:
    """Check a pickled book's state field by field; ValueError naming the first bad one.

    ``state`` is ``(resting, armed, last_price, seq, msg)`` as ``OrderBook.__reduce__`` writes
    it. What depends on the book as a whole (duplicate ids, a crossed book, a level past int64)
    is checked by the book while it reinserts the orders.
    """
    if not isinstance(state, tuple) or len(state) != 5:
        raise _state_error("state", "(resting, armed, last_price, seq, msg)", state)
    resting, armed, last_price, seq, msg = state
    if last_price is not None:
        last_price = _state_int("last_price", last_price, 1, "None or an int in [1, 2**63-1]")
    seq = _state_int("seq", seq, 0, "an int in [0, 2**63-1]")
    msg = _state_int("msg", msg, 0, "an int in [0, 2**63-1]")
    if msg > seq:
        raise _state_error("msg", f"at most seq={seq} (every message emits an event)", msg)
    for name, rows in (("resting", resting), ("armed", armed)):
        if not isinstance(rows, list):
            raise _state_error(name, "a list", rows)
    orders = []
    for i, entry in enumerate(resting):
        name = f"resting[{i}]"
        o = _record(name, entry, _RESTING_FIELDS)
        o["stop_price"] = 0
        if o["kind"] not in RESTING_KINDS:
            raise _state_error(f"{name}.kind", "LIMIT (1) or POST_ONLY (5)", o["kind"])
        if o["price"] < 1:
            raise _state_error(f"{name}.price", "in [1, 2**63-1] ticks", o["price"])
        orders.append((name, o))
    stops = []
    for i, entry in enumerate(armed):
        name = f"armed[{i}]"
        o = _record(name, entry, _ARMED_FIELDS)
        if o["kind"] == Kind.STOP_MARKET:
            if o["price"] != 0:
                raise _state_error(f"{name}.price", "0 for a STOP_MARKET", o["price"])
        elif o["kind"] == Kind.STOP_LIMIT:
            if o["price"] < 1:
                raise _state_error(f"{name}.price", "in [1, 2**63-1] ticks", o["price"])
        else:
            raise _state_error(f"{name}.kind", "STOP_MARKET (6) or STOP_LIMIT (7)", o["kind"])
        if o["stop_price"] < 1:
            raise _state_error(f"{name}.stop_price", "in [1, 2**63-1] ticks", o["stop_price"])
        if last_price is not None and (last_price >= o["stop_price"] if o["side"] == 1
                                       else last_price <= o["stop_price"]):
            raise _state_error(f"{name}.stop_price", f"not yet triggered by last_price "
                               f"{last_price}", o["stop_price"])
        stops.append((name, o))
    for name, o in orders + stops:
        if o["side"] not in (1, -1):
            raise _state_error(f"{name}.side", "1 (buy) or -1 (sell)", o["side"])
        if o["qty"] < 1:
            raise _state_error(f"{name}.qty", "in [1, 2**63-1] lots", o["qty"])
    return ([o for _, o in orders], [o for _, o in stops], last_price, seq, msg)


_MESSAGES = {
    Reason.INVALID_KIND: "kind must be one of {kinds}, got {kind}",
    Reason.INVALID_SIDE: "side must be Side.BUY (1) or Side.SELL (-1), got {side}",
    Reason.INVALID_PRICE: "price must be in [1, {max}] ticks, got {price}",
    Reason.INVALID_STOP_PRICE: "stop_price must be in [1, {max}] ticks, got {stop_price}",
    Reason.INVALID_QTY: "qty must be in [1, {max}] lots, got {qty}",
    Reason.DUPLICATE_ID: "order_id {order_id} is already live (resting or an armed stop)",
    Reason.UNKNOWN_ORDER: "order_id {order_id} is not a live order",
    Reason.QTY_OVERFLOW: "qty {qty} would take the level at price {price} past {max} lots",
    Reason.BOOK_FULL: "order_id {order_id}: the book already holds its maximum of {live} live "
                      "orders (resting and armed stops); cancel some first",
}


def error_for(reason: int, kind: int, order_id: int, side: int, price: int, stop_price: int,
              qty: int) -> OrderError:
    """The exception the per-call API raises for a message that failed validation.

    An OrderError whose ``reason`` is ``reason``, an UnknownOrderError for UNKNOWN_ORDER.
    """
    template = _MESSAGES[Reason(reason)]
    if reason == Reason.QTY_OVERFLOW and kind in STOP_KINDS:
        template = "qty {qty} would take the stop level at stop_price {stop_price} past {max} lots"
    text = template.format(
        kinds=[k.name for k in Kind], kind=kind, side=side, price=price, stop_price=stop_price,
        qty=qty, order_id=order_id, max=INT64_MAX, live=MAX_LIVE_ORDERS)
    if reason == Reason.UNKNOWN_ORDER:
        return UnknownOrderError(text)
    return OrderError(text, reason)


def unknown_order(order_id: int) -> UnknownOrderError:
    """The exception a lookup (``order()``) of an id that is not live raises."""
    return UnknownOrderError(_MESSAGES[Reason.UNKNOWN_ORDER].format(order_id=order_id))
