"""Tiered margin brackets: validation and exact integer margin requirements.

A bracket table is what venues publish: notional caps with a maintenance and an initial rate each.
Deductions are derived so that each requirement is continuous where the tiers meet. All values are
integers: notionals and margins in quote units, rates in ppm (parts per million).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import NamedTuple

from . import _validation as check
from .events import PPM

#: max_price * max_position * k may not pass this, so every notional fits int64 with room.
MONEY_BOUND = 2**61
#: Total deposits may not pass this (quote units).
DEPOSIT_BOUND = 2**62

__all__ = ["MarginTiers", "Tier", "PPM", "ceil_div", "rate_ppm", "unit_value", "MONEY_BOUND",
           "DEPOSIT_BOUND", "DEFAULT_TIERS", "asset_value", "conversion", "contract_value",
           "inverse_unit_value", "lots_within"]


def rate_ppm(name: str, value) -> int:
    """A rate in parts per million, checked to lie in [0, 10**6]."""
    rate = check.as_int64(name, value)
    if not 0 <= rate <= PPM:
        raise ValueError(f"{name} must be in [0, {PPM}] ppm, got {rate}")
    return rate


def unit_value(tick_size: Decimal, lot_size: Decimal, quote_unit) -> tuple[Decimal, int]:
    """The quote unit and k, the whole number of quote units one lot is worth per tick."""
    unit = tick_size * lot_size if quote_unit is None else check.unit_size("quote_unit", quote_unit)
    with localcontext() as ctx:
        ctx.prec = 80
        k = tick_size * lot_size / unit
    if k != k.to_integral_value():
        raise ValueError(f"tick_size * lot_size ({tick_size * lot_size}) must be a whole number "
                         f"of quote_unit ({unit})")
    return unit, int(k)


def inverse_unit_value(tick_size: Decimal, lot_size: Decimal, quote_unit,
                       contract_value) -> tuple[Decimal, int]:
    """An inverse contract's coin unit and k = contract_value x lot_size / (tick_size x unit), the
    whole number with V(p, q) = floor(k q / p) coin units for q lots at p ticks."""
    if quote_unit is None:
        raise ValueError("quote_unit (the coin's unit, e.g. '0.00000001') is required for "
                         "settlement INVERSE: every balance is counted in it")
    unit = check.unit_size("quote_unit", quote_unit)
    value = check.unit_size("contract_value", contract_value)
    with localcontext() as ctx:
        ctx.prec = 80
        k = value * lot_size / (tick_size * unit)
    if k != k.to_integral_value():
        raise ValueError(f"contract_value * lot_size / (tick_size * quote_unit) = {k} must be a "
                         f"whole number (a lot at one tick worth a whole number of coin units)")
    return unit, int(k)


def contract_value(inverse: bool, k: int, price: int, qty: int) -> int:
    """V(price, qty): the value of ``qty`` lots at ``price`` ticks. Linear: ``price x qty x k``
    quote units; inverse: ``floor(k x qty / price)`` coin units, price 0 counted as 1 tick (the
    lowest a trade can print), so V never falls as the price falls."""
    if inverse:
        return k * qty // (price if price > 1 else 1)
    return price * qty * k


def lots_within(inverse: bool, k: int, price: int, budget: int) -> int:
    """The most lots whose value at ``price`` (> 0 for a linear contract) is at most ``budget``
    (>= 0): ``floor(budget / (price k))``, or for an inverse contract the largest s with
    ``floor(k s / p) <= budget``, i.e. ``floor(((budget + 1) p - 1) / k)``."""
    if inverse:
        return ((budget + 1) * (price if price > 1 else 1) - 1) // k
    return budget // (price * k)


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a / b for integers, b > 0."""
    return -((-a) // b)


def asset_value(balance: int, mark: int | None, num: int, den: int, haircut_ppm: int) -> int:
    """Quote units a collateral balance (asset units, >= 0) counts for in equity: at ``mark``
    ticks of its instrument, one unit being worth ``num / den`` quote units per tick, less the
    haircut, rounded down (against the account); 0 without a mark."""
    if mark is None or balance == 0:
        return 0
    return balance * mark * num * (PPM - haircut_ppm) // (den * PPM)


def conversion(deficit: int, balance: int, mark: int, num: int, den: int,
               discount_ppm: int) -> tuple[int, int]:
    """(units, quote units) of a collateral sale covering ``deficit`` quote units (> 0) at
    ``mark`` (> 0) less ``discount_ppm``: the fewest units whose price, rounded down, covers it,
    at most the ``balance``; the price paid for them."""
    per = mark * num * (PPM - discount_ppm)       # den x PPM times the price of one unit
    units = min(balance, ceil_div(deficit * den * PPM, per))
    return units, units * per // (den * PPM)


class Tier(NamedTuple):
    """One bracket: notional up to ``max_notional`` (quote units, None = no cap), rates in ppm."""

    max_notional: int | None
    maintenance_ppm: int
    initial_ppm: int


def _rows(tiers) -> list[Tier]:
    """The rows of a tier table, each checked to be three values; errors name the row."""
    if isinstance(tiers, MarginTiers):
        return tiers.rows()
    if isinstance(tiers, (str, bytes)) or not hasattr(tiers, "__iter__"):
        raise TypeError(f"tiers must be a sequence of (max_notional, maintenance_ppm, "
                        f"initial_ppm) rows, got {tiers!r} ({type(tiers).__name__})")
    rows = []
    for i, row in enumerate(tiers):
        if isinstance(row, (str, bytes, dict)) or not hasattr(row, "__iter__"):
            raise TypeError(f"tiers[{i}] must be a (max_notional, maintenance_ppm, initial_ppm) "
                            f"row, got {row!r} ({type(row).__name__})")
        values = tuple(row)
        if len(values) != 3:
            raise ValueError(f"tiers[{i}] must have 3 values (max_notional, maintenance_ppm, "
                             f"initial_ppm), got {len(values)}: {row!r}")
        rows.append(Tier(*values))
    return rows


class MarginTiers:
    """A validated bracket table with its derived deductions (quote units × ppm).

    Parameters
    ----------
    tiers : sequence of (max_notional, maintenance_ppm, initial_ppm)
        ``max_notional`` strictly increasing (only the last may be None), rates in [0, 10**6],
        non-decreasing from tier to tier, and ``maintenance_ppm <= initial_ppm`` in each tier.
    """

    def __init__(self, tiers):
        rows = _rows(tiers)
        if not rows:
            raise ValueError(f"tiers must have at least one tier, got {tiers!r}")
        caps, mm, im = [], [], []
        for i, row in enumerate(rows):
            cap = row.max_notional
            if cap is None:
                if i != len(rows) - 1:
                    raise ValueError(f"tiers[{i}].max_notional is None but it is not the last "
                                     f"tier (of {len(rows)})")
            else:
                cap = check.as_positive(f"tiers[{i}].max_notional", cap)
                if caps and cap <= caps[-1]:
                    raise ValueError(f"tiers[{i}].max_notional {cap} must exceed the previous "
                                     f"tier's {caps[-1]}")
            rates = []
            for name in ("maintenance_ppm", "initial_ppm"):
                rate = check.as_int64(f"tiers[{i}].{name}", getattr(row, name))
                if not 0 <= rate <= PPM:
                    raise ValueError(f"tiers[{i}].{name} must be in [0, {PPM}], got {rate}")
                rates.append(rate)
            if rates[0] > rates[1]:
                raise ValueError(f"tiers[{i}].maintenance_ppm {rates[0]} exceeds initial_ppm "
                                 f"{rates[1]}")
            if mm and (rates[0] < mm[-1] or rates[1] < im[-1]):
                raise ValueError(f"tiers[{i}] rates must not decrease from the previous tier's "
                                 f"({mm[-1]}, {im[-1]}) ppm, got ({rates[0]}, {rates[1]})")
            caps.append(cap)
            mm.append(rates[0])
            im.append(rates[1])
        self.caps: list[int | None] = caps
        self.maintenance_ppm: list[int] = mm
        self.initial_ppm: list[int] = im
        self.maintenance_deduction = self._deductions(mm)
        self.initial_deduction = self._deductions(im)

    def _deductions(self, rates: list[int]) -> list[int]:
        deductions = [0]
        for i in range(1, len(rates)):
            deductions.append(deductions[-1] + self.caps[i - 1] * (rates[i] - rates[i - 1]))
        return deductions

    def tier_of(self, notional: int) -> int:
        """Index of the tier a notional (quote units) falls in. O(tiers)."""
        for i, cap in enumerate(self.caps):
            if cap is None or notional <= cap:
                return i
        # Past the last cap: the last tier's rate applies, as venues quote no higher bracket.
        return len(self.caps) - 1

    def maintenance(self, notional: int) -> int:
        """Maintenance margin in quote units for a notional in quote units (rounded up)."""
        i = self.tier_of(notional)
        return max(0, ceil_div(notional * self.maintenance_ppm[i] - self.maintenance_deduction[i],
                               PPM))

    def initial(self, notional: int) -> int:
        """Initial margin in quote units for a notional in quote units (rounded up)."""
        i = self.tier_of(notional)
        return max(0, ceil_div(notional * self.initial_ppm[i] - self.initial_deduction[i], PPM))

    def rows(self) -> list[Tier]:
        """The table as given (validated)."""
        return [Tier(c, m, i) for c, m, i in
                zip(self.caps, self.maintenance_ppm, self.initial_ppm, strict=True)]

    def __repr__(self) -> str:
        return f"MarginTiers({self.rows()})"


#: A single bracket: 0.5 % maintenance, 1 % initial (100x), no cap.
DEFAULT_TIERS = ((None, 5_000, 10_000),)
