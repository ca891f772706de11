"""Perpetual funding rates: the premium index, the rate formula and venue presets.

``Engine.settle_funding(rate)`` moves one payment at a rate given to it; this module is where a
rate comes from (docs/funding.md). Rates are integers in units of 10**-8 of a position's value
(``FUNDING_RATE_SCALE``: exchanges publish rates with 8 decimals, 0.0100 % is 10_000); prices
are ticks (any common unit: the premium is a ratio); times are ms. Everything is exact
(``Fraction``) until the rate is rounded, once, to the nearest 10**-8, halves away from zero.

The rate of one funding interval, with ``P`` the average of the premium samples taken in it and
``I``, ``c`` the rule's interest rate and clamp (per ``rate_period_ms``)::

    F = (P + clamp(I - P, -c, +c)) x interval_ms / rate_period_ms     (c None: P + I)

rounded, then held within ``+-cap`` and ``+-FUNDING_RATE_SCALE``. A premium sample is
``(price - index) / index`` for a price (the mark, or the book's mid) or, from the impact prices
of a notional on each side of the book, ``(max(0, bid - index) - max(0, index - ask)) / index``.

>>> from orderbook.funding import FundingClock, VENUES
>>> clock = FundingClock(VENUES["binance"])
>>> clock.sample(0, 100_100, 100_000)     # the mark 0.1 % over the index
True
>>> clock.due(8 * 3600 * 1000)           # P = 0.1 %: F = 0.1 % + clamp(-0.09 %) = 0.05 %
50000
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from . import _validation as check
from .events import FUNDING_RATE_SCALE

__all__ = ["FUNDING_RATE_SCALE", "FundingRule", "FundingClock", "VENUES", "premium",
           "impact_premium", "impact_prices", "funding_rate", "round_rate"]

#: How a rule averages its premium samples: "equal" weights, or "linear" (the i-th of n
#: samples weighs i: Bybit's "the closer to the funding fee settlement time, the greater the
#: coefficient").
WEIGHTINGS = ("equal", "linear")

_HOUR = 3_600_000


@dataclass(frozen=True)
class FundingRule:
    """A venue's funding rule (docs/funding.md). Times in ms; rates in units of 10**-8.

    ``interval_ms``: time between payments; ``sample_ms``: time between premium samples;
    ``interest_e8``: the interest rate per ``rate_period_ms``; ``clamp_e8``: the bound on
    ``I - P`` (None: no clamp term, ``F = P + I``); ``cap_e8``: the bound on the rate paid per
    interval (None: only ``+-FUNDING_RATE_SCALE``); ``rate_period_ms``: the period the formula's
    rate is quoted for (None: the interval; Hyperliquid and dYdX quote an 8-hour rate and pay
    it hourly, an eighth each hour); ``weighting``: how the samples are averaged (WEIGHTINGS).
    Every field is checked (TypeError/ValueError naming it).
    """

    interval_ms: int
    sample_ms: int
    interest_e8: int = 0
    clamp_e8: int | None = None
    cap_e8: int | None = None
    rate_period_ms: int | None = None
    weighting: str = "equal"

    def __post_init__(self):
        for name in ("interval_ms", "sample_ms"):
            if check.as_int64(name, getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 ms, got {getattr(self, name)}")
        if self.sample_ms > self.interval_ms:
            raise ValueError(f"sample_ms {self.sample_ms} exceeds interval_ms "
                             f"{self.interval_ms}: no sample would fall in an interval")
        if not -FUNDING_RATE_SCALE <= check.as_int64("interest_e8", self.interest_e8) \
                <= FUNDING_RATE_SCALE:
            raise ValueError(f"interest_e8 must be within +-{FUNDING_RATE_SCALE}, got "
                             f"{self.interest_e8}")
        for name in ("clamp_e8", "cap_e8"):
            value = getattr(self, name)
            if value is not None and not 0 <= check.as_int64(name, value) <= FUNDING_RATE_SCALE:
                raise ValueError(f"{name} must be None or in [0, {FUNDING_RATE_SCALE}], got "
                                 f"{value}")
        if self.rate_period_ms is not None and check.as_int64(
                "rate_period_ms", self.rate_period_ms) < 1:
            raise ValueError(f"rate_period_ms must be None or >= 1 ms, got "
                             f"{self.rate_period_ms}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got "
                             f"{self.weighting!r}")

    @property
    def scale(self) -> Fraction:
        """interval_ms / rate_period_ms: the share of the quoted rate paid per interval."""
        return Fraction(self.interval_ms, self.rate_period_ms or self.interval_ms)


def _price(name: str, value) -> Fraction:
    # A price: an int or a Fraction (an impact price is an average), > 0 for an index.
    if isinstance(value, Fraction):
        return value
    return Fraction(check.as_int64(name, value))


def premium(price, index) -> Fraction:
    """``(price - index) / index``, exact: the premium of ``price`` (the mark, or the book's
    mid) over ``index`` (ticks, > 0)."""
    index = _price("index", index)
    if index <= 0:
        raise ValueError(f"index must be > 0, got {index}")
    return (_price("price", price) - index) / index


def impact_premium(impact_bid, impact_ask, index) -> Fraction:
    """``(max(0, bid - index) - max(0, index - ask)) / index``, exact (Binance, Bybit,
    Hyperliquid, dYdX): positive when the book bids above the index, negative when it offers
    below it, 0 when the index lies between. A side with no impact price (None) counts 0."""
    index = _price("index", index)
    if index <= 0:
        raise ValueError(f"index must be > 0, got {index}")
    up = max(Fraction(0), _price("impact_bid", impact_bid) - index) \
        if impact_bid is not None else Fraction(0)
    down = max(Fraction(0), index - _price("impact_ask", impact_ask)) \
        if impact_ask is not None else Fraction(0)
    return (up - down) / index


def impact_prices(book, qty) -> tuple[Fraction | None, Fraction | None]:
    """The average fill prices (ticks, exact) of a market sell and a market buy of ``qty`` lots
    on ``book`` now (``Engine.book`` or any book with ``impact``), without trading: the impact
    bid and ask of a notional of ``qty`` lots; None for a side that cannot fill all of it."""
    qty = check.as_positive("qty", qty)
    out = []
    for side in (-1, 1):
        impact = book.impact(side, qty)
        out.append(Fraction(int(impact.notional), qty) if int(impact.filled) == qty else None)
    return out[0], out[1]


def round_rate(value: Fraction) -> int:
    """A rate as a fraction of the value, in units of 10**-8, to the nearest unit, halves away
    from zero (a rate and its negation round alike)."""
    scaled = Fraction(value) * FUNDING_RATE_SCALE
    magnitude = (2 * abs(scaled.numerator) + scaled.denominator) // (2 * scaled.denominator)
    return magnitude if scaled >= 0 else -magnitude


def funding_rate(rule: FundingRule, premiums) -> int:
    """The rate of one interval under ``rule`` from its premium samples (in order, exact
    fractions), in units of 10**-8: ``(P + clamp(I - P, -c, c)) x scale`` rounded, within
    ``+-cap`` and ``+-FUNDING_RATE_SCALE``. No samples: ``P = 0``."""
    samples = [Fraction(p) for p in premiums]
    if not samples:
        average = Fraction(0)
    elif rule.weighting == "linear":
        average = sum((i * p for i, p in enumerate(samples, 1)), Fraction(0)) / (
            len(samples) * (len(samples) + 1) // 2)
    else:
        average = sum(samples, Fraction(0)) / len(samples)
    interest = Fraction(rule.interest_e8, FUNDING_RATE_SCALE)
    if rule.clamp_e8 is None:
        rate = average + interest
    else:
        bound = Fraction(rule.clamp_e8, FUNDING_RATE_SCALE)
        rate = average + min(max(interest - average, -bound), bound)
    out = round_rate(rate * rule.scale)
    cap = FUNDING_RATE_SCALE if rule.cap_e8 is None else rule.cap_e8
    return max(-cap, min(cap, out))


class FundingClock:
    """A rule's premium samples and payment times, for a run that calls it as time passes.

    Intervals start at ``start_ms`` and follow each other every ``rule.interval_ms``; within one,
    samples are due every ``rule.sample_ms`` from its start. ``sample`` keeps the first premium
    offered at or after each sample time (a later one in the same slot is ignored), and
    ``due(t)`` returns the interval's rate once ``t`` reaches its end (None before) and starts
    the next. Times never go back (ValueError), and a sample at or past the end of the current
    interval is refused until ``due`` has closed it, so no sample lands in the wrong interval.
    One rate per ``due`` call: after a long gap, call it until it returns None (intervals with
    no sample pay the interest term alone).
    """

    def __init__(self, rule: FundingRule, start_ms: int = 0):
        if not isinstance(rule, FundingRule):
            raise TypeError(f"rule must be a FundingRule, got {type(rule).__name__}")
        self.rule = rule
        self.start_ms = check.as_int64("start_ms", start_ms)
        self._next_sample = self.start_ms
        self._now = self.start_ms
        self.premiums: list[Fraction] = []   #: the current interval's samples, in order

    @property
    def next_funding_ms(self) -> int:
        """The end of the current interval, when its rate is due."""
        return self.start_ms + self.rule.interval_ms

    def _at(self, time_ms) -> int:
        time_ms = check.as_int64("time_ms", time_ms)
        if time_ms < self._now:
            raise ValueError(f"time_ms {time_ms} is before the clock's time {self._now}")
        return time_ms

    def _take(self, time_ms: int, value: Fraction) -> bool:
        if time_ms >= self.next_funding_ms:
            raise ValueError(f"time_ms {time_ms} is past the interval ending at "
                             f"{self.next_funding_ms}: call due({time_ms}) first")
        self._now = time_ms
        if time_ms < self._next_sample:
            return False
        self.premiums.append(value)
        passed = (time_ms - self.start_ms) // self.rule.sample_ms + 1
        self._next_sample = self.start_ms + passed * self.rule.sample_ms
        return True

    def sample(self, time_ms, mark, index) -> bool:
        """Offer the premium of ``mark`` (or the mid) over ``index`` at ``time_ms``; return
        whether it was taken (the first offer in its sample slot is)."""
        time_ms = self._at(time_ms)
        return self._take(time_ms, premium(mark, index))

    def sample_impact(self, time_ms, impact_bid, impact_ask, index) -> bool:
        """Offer the impact premium (``impact_premium``) at ``time_ms``, as ``sample``."""
        time_ms = self._at(time_ms)
        return self._take(time_ms, impact_premium(impact_bid, impact_ask, index))

    def due(self, time_ms) -> int | None:
        """The rate (units of 10**-8) of the interval that ended at or before ``time_ms``, and
        the next interval started; None when the current one has not ended."""
        time_ms = self._at(time_ms)
        self._now = time_ms
        if time_ms < self.next_funding_ms:
            return None
        rate = funding_rate(self.rule, self.premiums)
        self.start_ms = self._next_sample = self.next_funding_ms
        self.premiums = []
        return rate


#: Presets for the venues whose rules the stored pages confirm (docs/funding.md cites each and
#: says what it approximates). BitMEX is left out: its rule could not be confirmed there.
VENUES: dict[str, FundingRule] = {
    # 8 h; the premium every 5 s, a time-weighted average of equally spaced samples; interest
    # 0.01 % per interval; clamp 0.05 %; the cap is set per symbol (none here)
    "binance": FundingRule(8 * _HOUR, 5_000, interest_e8=10_000, clamp_e8=50_000),
    # 8 h; the premium every minute, weighted 1, 2, ..., 480; interest 0.01 %; clamp 0.05 %
    "bybit": FundingRule(8 * _HOUR, 60_000, interest_e8=10_000, clamp_e8=50_000,
                         weighting="linear"),
    # 8 h; the mid's premium every minute, averaged; interest 0; no clamp term (F = P, which a
    # clamp of 0 gives); BTC-USDT's cap 0.375 %
    "okx": FundingRule(8 * _HOUR, 60_000, interest_e8=0, clamp_e8=0, cap_e8=375_000),
    # hourly, an eighth of the 8-hour rate P + clamp(0.01 % - P, +-0.05 %); the premium every
    # 5 s, averaged over the hour; cap 4 % an hour
    "hyperliquid": FundingRule(_HOUR, 5_000, interest_e8=10_000, clamp_e8=50_000,
                               cap_e8=4_000_000, rate_period_ms=8 * _HOUR),
    # hourly, premium / 8 + interest (0 by default); the premium every minute, the simple
    # average of the hour's 60
    "dydx": FundingRule(_HOUR, 60_000, interest_e8=0, rate_period_ms=8 * _HOUR),
}
