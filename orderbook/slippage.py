"""Slippage of a forced market order against a book, measured by actually executing it.

The order runs through the matching engine on a copy of the book (the book itself is left as it
was) and the result is cross-checked against :meth:`OrderBook.impact`, so a figure here is what
the engine would really do, not an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from ._validation import as_int64, as_side
from .events import PROBE_ID, EventKind

__all__ = ["Slippage", "slippage"]



@dataclass(frozen=True)
class Slippage:
    """A market order of ``lots`` on ``side`` and what it got.

    Prices are ticks, sizes lots, ``notional`` and ``cost`` tick·lots (exact integers).
    ``touch`` is the best opposite price before the order; ``cost`` is what the fills gave up
    against trading everything at the touch (always >= 0); ``cost_bps`` is that cost in basis
    points of ``touch × filled`` (a float, for display).
    """

    side: int
    lots: int
    filled: int
    notional: int
    touch: int
    worst_price: int
    levels: int

    @property
    def unfilled(self) -> int:
        """Lots the book could not absorb."""
        return self.lots - self.filled

    @property
    def average_price(self) -> Fraction | None:
        """Volume-weighted fill price in ticks (exact), None when nothing filled."""
        return Fraction(self.notional, self.filled) if self.filled else None

    @property
    def cost(self) -> int:
        """Tick·lots given up against filling everything at the touch."""
        return self.side * (self.notional - self.touch * self.filled)

    @property
    def cost_bps(self) -> float:
        """``cost`` in basis points of the touch notional (NaN when nothing filled)."""
        return 1e4 * self.cost / (self.touch * self.filled) if self.filled else float("nan")

    def in_units(self, tick_size, lot_size) -> dict:
        """The figures as exact decimals in quote/base units (prices per base unit)."""
        tick, lot = Decimal(str(tick_size)), Decimal(str(lot_size))
        avg = self.average_price
        return {
            "size": self.lots * lot, "filled": self.filled * lot, "unfilled": self.unfilled * lot,
            "touch": self.touch * tick, "worst_price": self.worst_price * tick,
            "average_price": None if avg is None
            else Decimal(avg.numerator) / Decimal(avg.denominator) * tick,
            "levels": self.levels, "cost": self.cost * tick * lot, "cost_bps": self.cost_bps,
        }


def slippage(book, side, lots: int) -> Slippage:
    """Execute a market order of ``lots`` on ``side`` (``"sell"``/-1 or ``"buy"``/+1) against a
    copy of ``book`` and report its fills.

    Raises ValueError when ``lots`` < 1 or the opposite side is empty, and AssertionError if the
    engine's fills ever disagree with ``book.impact`` (they are the same walk, so they must not).
    Complexity: one market order on a copy of the book, O(orders in the book).
    """
    side = as_side(side)
    lots = as_int64("lots", lots)
    if lots < 1:
        raise ValueError(f"lots must be >= 1, got {lots}")
    touch = book.best_bid() if side < 0 else book.best_ask()
    if touch is None:
        raise ValueError(f"the book has no {'bids' if side < 0 else 'asks'} for a market "
                         f"{side_name(side)}")
    trial = book.copy()
    if PROBE_ID in trial:
        raise ValueError(f"order id {PROBE_ID} (the probe's) is live in the book")
    fills = [e for e in trial.market(PROBE_ID, side, lots, PROBE_ID) if e.kind == EventKind.TRADE]
    filled = sum(e.qty for e in fills)
    notional = sum(e.price * e.qty for e in fills)
    impact = book.impact(side, lots)
    if (filled, notional) != (impact.filled, impact.notional):
        raise AssertionError(f"market order filled {filled} lots for {notional} tick-lots, "
                             f"impact() said {impact.filled} / {impact.notional}")
    return Slippage(side=side, lots=lots, filled=filled, notional=notional, touch=touch,
                    worst_price=impact.worst_price, levels=impact.levels)


def side_name(side: int) -> str:
    """'sell' for -1, 'buy' for +1."""
    return "sell" if side < 0 else "buy"
