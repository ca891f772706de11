"""Settings: the converters that check one value of a scenario setting, and the errors they raise.

Each field of the :mod:`orderbook.scenario` dataclasses declares its converter once
(:func:`setting`); a scenario file's values (:mod:`orderbook.config`) and dotted parameters
(:func:`orderbook.scenario.with_params`, ``orderbook sweep --param``) both go through it. A
converter takes one value as a TOML file or a Python caller gives it and returns what the
dataclass holds (enums by name, ``"none"`` as None, arrays as tuples), or raises :class:`Bad`
with the problem; :func:`convert` turns that into a :class:`ConfigError` naming the table, the
key and the value.
"""

from __future__ import annotations

import dataclasses
import math
from enum import IntEnum
from numbers import Integral, Real

from . import _validation as check
from .events import INT64_MAX, PPM, Side
from .margin import MarginTiers

__all__ = ["ConfigError", "UnknownKeyError", "ConfigTypeError", "Bad", "setting", "schema",
           "renamed", "convert"]


# ---------------------------------------------------------------------------------- errors
class ConfigError(ValueError):
    """A scenario or rules file (or a parameter) that cannot be used; the message says why."""


class UnknownKeyError(ConfigError, KeyError):
    """A table or key the scenario layout does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigTypeError(ConfigError, TypeError):
    """A value of the wrong type (a string where an integer belongs, ...)."""


# Users meet these as orderbook.config's (tracebacks, pickles, docs); they live here only so
# that the scenario module below config can raise them.
for _error in (ConfigError, UnknownKeyError, ConfigTypeError):
    _error.__module__ = "orderbook.config"


def show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def where(table: str | None) -> str:
    return f"[{table}]" if table else "top-level"


class Bad(Exception):
    """Raised by converters; turned into a ConfigError naming table, key and value."""

    def __init__(self, problem: str, kind: type = ConfigError):
        super().__init__(problem)
        self.problem = problem
        self.kind = kind


# ------------------------------------------------------------------------------ converters
def type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def integer(lo: int | None = None, hi: int | None = None):
    def convert(value):
        if isinstance(value, bool) or not isinstance(value, Integral):
            if isinstance(value, float) and value.is_integer():
                raise Bad(f"must be an integer (write it without a decimal point or exponent), "
                          f"got {type_name(value)}", ConfigTypeError)
            raise Bad(f"must be an integer, got {type_name(value)}", ConfigTypeError)
        value = int(value)  # a numpy integer from a sweep grid becomes a Python int
        if lo is not None and value < lo or hi is not None and value > hi:
            raise Bad(f"must be in [{lo if lo is not None else '-inf'}, "
                      f"{hi if hi is not None else 'inf'}]")
        return value
    return convert


def lot_amount(hi: int):
    """A positive number of lots that may have a fraction (an average, such as a depth
    profile's touch): an integer, or a whole float, is kept as an int; any other finite float
    in (0, hi] as a float."""
    def convert(value):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise Bad(f"must be a positive number of lots, got {type_name(value)}",
                      ConfigTypeError)
        if not isinstance(value, Integral):
            value = float(value)
            if not math.isfinite(value):
                raise Bad(f"must be a finite number, got {value}")
        if not 0 < value <= hi:
            raise Bad(f"must be in (0, {hi}]")
        return int(value) if isinstance(value, Integral) or value.is_integer() else value
    return convert


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    def convert(value):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise Bad(f"must be a number, got {type_name(value)}", ConfigTypeError)
        try:
            value = float(value)
        except OverflowError:  # an integer beyond the float range
            raise Bad("must be a finite number, got an integer too large for a float") from None
        if not math.isfinite(value):
            # No field gives inf a meaning (a very long half-life is written as a large one).
            raise Bad(f"must be a finite number, got {value}")
        if lo is not None and (value <= lo if lo_open else value < lo) or \
                hi is not None and value > hi:
            raise Bad(f"must be in {'(' if lo_open else '['}"
                      f"{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]")
        return value
    return convert


def boolean(value):
    if not isinstance(value, bool):
        raise Bad(f"must be true or false, got {type_name(value)}", ConfigTypeError)
    return value


def decimal_text(value):
    """tick_size, lot_size: kept as the decimal string the engine parses."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Bad(f"must be a decimal string such as \"0.1\", got {type_name(value)}",
                  ConfigTypeError)
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        check.unit_size("size", text)
    except (TypeError, ValueError):
        raise Bad("must be a positive decimal number such as \"0.1\"") from None
    return text


def optional(convert):
    def optional(value):
        if value is None or isinstance(value, str) and value.lower() == "none":
            return None
        try:
            return convert(value)
        except Bad as bad:
            raise Bad(bad.problem + ' (or "none")', bad.kind) from None
    return optional


def enum_name(enum: type[IntEnum]):
    names = ", ".join(member.name for member in enum)

    def convert(value):
        if isinstance(value, enum):
            return value
        if not isinstance(value, str):
            raise Bad(f"must be a name, one of {names}; got {type_name(value)}",
                      ConfigTypeError)
        try:
            return enum[value.upper()]
        except KeyError:
            raise Bad(f"is not one of {names}") from None
    return convert


def choice(*options: str):
    def convert(value):
        if not isinstance(value, str):
            raise Bad(f"must be one of {', '.join(options)}; got {type_name(value)}",
                      ConfigTypeError)
        if value not in options:
            raise Bad(f"is not one of {', '.join(options)}")
        return value
    return convert


def array(value, length: int | None = None) -> list:
    if not isinstance(value, (list, tuple)):
        raise Bad(f"must be an array, got {type_name(value)}", ConfigTypeError)
    if length is not None and len(value) != length:
        raise Bad(f"must be an array of {length} values, got {len(value)}")
    return list(value)


def each(convert, what: str):
    """Apply ``convert`` to one element, saying which one failed."""
    def at(i, value):
        try:
            return convert(value)
        except Bad as bad:
            raise Bad(f"{what}[{i}] = {show(value)} {bad.problem}", bad.kind) from None
    return at


def pair(convert):
    """[low, high] with low <= high."""
    def pair(value):
        items = array(value, 2)
        at = each(convert, "element ")
        lo, hi = at(0, items[0]), at(1, items[1])
        if lo > hi:
            raise Bad("must be [low, high] with low <= high")
        return (lo, hi)
    return pair


def int_list(lo: int | None = None, hi: int | None = None):
    def convert(value):
        at = each(integer(lo, hi), "element ")
        return tuple(at(i, v) for i, v in enumerate(array(value)))
    return convert


def number_list(lo: float | None = None, hi: float | None = None):
    def convert(value):
        at = each(number(lo, hi), "element ")
        return tuple(at(i, v) for i, v in enumerate(array(value)))
    return convert


def order_side(value):
    if isinstance(value, str):
        try:
            return Side(check.as_side(value))
        except ValueError:
            raise Bad('must be "BUY" or "SELL" (or 1 / -1)') from None
    if isinstance(value, bool) or not isinstance(value, int) or value not in (1, -1):
        raise Bad('must be "BUY" or "SELL" (or 1 / -1)',
                  ConfigTypeError if not isinstance(value, int) else ConfigError)
    return Side(value)


def sides(value):
    at = each(order_side, "element ")
    return tuple(int(at(i, v)) for i, v in enumerate(array(value)))


def price_levels(value):
    """[[price ticks, lots], ...] of an explicit book."""
    rows = []
    for i, row in enumerate(array(value)):
        try:
            price, lots = array(row, 2)
            price = integer(1, INT64_MAX)(price)
            lots = integer(1, INT64_MAX)(lots)
        except Bad as bad:
            raise Bad(f"level [{i}] = {show(row)} must be [price ticks >= 1, lots >= 1]: "
                      f"{bad.problem}", bad.kind) from None
        rows.append((price, lots))
    return tuple(rows)


def shock_orders(value):
    """[[step, side, lots], ...] of a shock."""
    rows = []
    for i, row in enumerate(array(value)):
        try:
            step, side, lots = array(row, 3)
            rows.append((integer(0, INT64_MAX)(step), int(order_side(side)),
                         integer(1, INT64_MAX)(lots)))
        except Bad as bad:
            raise Bad(f"order [{i}] = {show(row)} must be [step >= 0, \"BUY\" or \"SELL\", "
                      f"lots >= 1]: {bad.problem}", bad.kind) from None
    return tuple(rows)


ppm = integer(0, PPM)


def tier_table(value):
    """[[max_notional or "none", maintenance ppm, initial ppm], ...], validated by MarginTiers."""
    rows = []
    for i, row in enumerate(array(value)):
        try:
            cap, mm, im = array(row, 3)
            rows.append((optional(integer(1, INT64_MAX))(cap), ppm(mm), ppm(im)))
        except Bad as bad:
            raise Bad(f"tier [{i}] = {show(row)} must be [max_notional or \"none\", "
                      f"maintenance_ppm, initial_ppm]: {bad.problem}", bad.kind) from None
    try:
        MarginTiers(rows)
    except (TypeError, ValueError) as exc:
        raise Bad(f"is not a valid tier table: {exc}") from None
    return tuple(rows)


# ----------------------------------------------------------------------------------- schema
def setting(default, convert, *, old_names: tuple[str, ...] = ()):
    """A dataclass field holding a setting: ``default``, checked and converted by ``convert``.

    ``old_names`` are earlier names of the key that files and parameters may still use.
    """
    return dataclasses.field(default=default, metadata={"convert": convert,
                                                        "old_names": old_names})


def schema(cls) -> dict:
    """{key: converter} of a settings dataclass, in field order (its nested tables left out)."""
    return {f.name: f.metadata["convert"] for f in dataclasses.fields(cls)
            if "convert" in f.metadata}


def renamed(cls) -> dict:
    """{old name: key} of a settings dataclass: the older key names it still accepts."""
    return {old: f.name for f in dataclasses.fields(cls)
            for old in f.metadata.get("old_names", ())}


def convert(table: str | None, key: str, value, keys: dict, old_names: dict | None = None):
    """``value`` converted by ``keys[key]``; a ConfigError naming the table, key and value if
    the key is unknown or the value bad. ``table`` None is the top level. A key in
    ``old_names`` ({old name: key}) is converted as the key it names, and named as written."""
    name = old_names.get(key, key) if old_names else key
    if name not in keys:
        raise UnknownKeyError(f"{where(table)} unknown key {key!r} (known: "
                              f"{', '.join(keys)})")
    try:
        return keys[name](value)
    except Bad as bad:
        raise bad.kind(f"{where(table)} {key} = {show(value)} {bad.problem}") from None
