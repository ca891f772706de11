"""DecimalGrid: exact conversion of decimal strings (prices, quantities) to integer steps."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ...events import INT64_MAX


class DecimalGrid:
    """Exact conversion of decimal strings to integer multiples of ``step``.

    ``"61800.20"`` on a 0.1 grid is 618002; ``"61800.25"`` is a ValueError. Parsing splits the
    string at the point and works on integers, so no float ever rounds a price. O(len(text)).

    Parameters
    ----------
    step : str or Decimal
        Grid step in quote units (prices) or base units (quantities), > 0.
    name : str
        What the grid measures ("price", "qty"), used in error messages.
    """

    def __init__(self, step, name: str, *, positive: bool = False):
        try:
            value = Decimal(str(step))
        except InvalidOperation:
            raise ValueError(f"{name} step must be a decimal number, got {step!r}") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{name} step must be a finite number > 0, got {step!r}")
        # step = units * 10**-places, with units an integer
        places = max(0, -value.normalize().as_tuple().exponent)
        if places > _MAX_PLACES or value.adjusted() > _MAX_PLACES:
            # Finer or coarser than that, no real price or size is a whole int64 of steps (and
            # a step of 1e-999999 would make every parse build a million-digit integer).
            raise ValueError(f"{name} step must be between 1e-{_MAX_PLACES} and "
                             f"1e{_MAX_PLACES}, got {step!r}")
        self.step = value
        self.name = name
        self.positive = positive
        self.places = places
        self.units = int(value.scaleb(places))

    def __call__(self, text) -> int:
        """Return ``text`` (a non-negative decimal string) in steps; ValueError if off-grid."""
        if not isinstance(text, str):
            raise TypeError(f"{self.name} must be a decimal string, got {text!r} "
                            f"({type(text).__name__})")
        whole, _, frac = text.partition(".")
        if not (whole.isascii() and whole.isdigit() and (not frac or (frac.isascii()
                                                                      and frac.isdigit()))):
            raise ValueError(f"{self.name} must be a non-negative decimal string, got {text!r}")
        if len(frac) > self.places:
            if frac[self.places:].strip("0"):
                raise ValueError(f"{self.name} {text!r} is not on the {self.step} grid")
            frac = frac[:self.places]
        if len(whole.lstrip("0")) > _MAX_DIGITS:
            raise ValueError(f"{self.name} {text:.40}... has more than {_MAX_DIGITS} digits")
        count, rest = divmod(int(whole + frac.ljust(self.places, "0")), self.units)
        if rest:
            raise ValueError(f"{self.name} {text!r} is not on the {self.step} grid")
        if count > INT64_MAX:
            raise ValueError(f"{self.name} {text!r} is {count} steps of {self.step}, more than "
                             f"an int64 holds")
        if self.positive and not count:
            raise ValueError(f"{self.name} must be > 0, got {text!r}")
        return count


# A step needs at most 18 decimal places (and at most 18 digits before the point): int64 counts
# 9.2e18 steps, so anything finer leaves no room for a real price.
_MAX_PLACES = 18
_MAX_DIGITS = 40  # digits of a decimal string's whole part; more cannot fit an int64 of steps
