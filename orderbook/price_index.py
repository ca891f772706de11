"""Index prices from several venues' prices, as index providers compute them (issue #13).

An index is a weighted aggregate of constituent prices (integer ticks, integer weights) with an
outlier rule; :class:`PriceIndex` keeps the state a rule needs between updates (who is excluded
and since when). The rules are those venues publish (docs/market_wide_sources.md section 4):

- ``WEIGHTED_MEDIAN`` (Hyperliquid's oracle): the lowest price whose cumulative weight, prices
  ascending, reaches half the total weight (``2 * cumulative >= total``), so a tie at exactly
  half takes the lower price. No rounding: the index is one of the prices.
- ``WEIGHTED_MEAN`` (Binance's, BitMEX's .BXBT): sum(w * p) / sum(w), rounded to the nearest
  tick, halves up.
- ``exclude_ppm``: a constituent farther than this from the median of all live prices (ppm of
  the median, compared exactly: ``10**6 * |p - median| > exclude_ppm * median``) gets weight 0
  (Binance 50,000 = 5 %, BitMEX 250,000 = 25 %). The median is the plain one (the lower middle
  of an even count). With ``readmit_ppm`` and ``readmit_updates`` an excluded constituent comes
  back at the first update after it has stayed within ``readmit_ppm`` of the median of the
  others for ``readmit_updates`` update intervals (BitMEX: 2 % for 15 minutes, 180 intervals of
  5 s); without them it comes back as soon as it is within ``exclude_ppm`` again (Binance).
- ``clamp_ppm``: every price is clamped to the median ± this first (Binance P2P 30,000, Deribit
  5,000), rounded toward the median.
- ``min_constituents``: fewer live (not excluded, price known) constituents than this and the
  index keeps its last value (BitMEX's frozen index).

Units: prices in ticks of the instrument the index feeds, weights positive integers, rates in
ppm.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from . import _validation as check

__all__ = ["Aggregate", "IndexRule", "PriceIndex", "weighted_median", "weighted_mean",
           "median"]

PPM = 1_000_000


class Aggregate(IntEnum):
    """How an index combines its constituents' prices."""

    WEIGHTED_MEDIAN = 0
    WEIGHTED_MEAN = 1


def weighted_median(prices, weights) -> int:
    """The lowest price whose cumulative weight (prices ascending, ties by input order)
    reaches half the total: ``2 * cumulative >= total``. ValueError without positive weight.
    O(n log n)."""
    pairs = sorted((int(p), int(w)) for p, w in zip(prices, weights, strict=True) if w > 0)
    total = sum(w for _, w in pairs)
    if total <= 0:
        raise ValueError("weighted_median needs at least one positive weight")
    cumulative = 0
    for price, weight in pairs:
        cumulative += weight
        if 2 * cumulative >= total:
            return price
    raise AssertionError("unreachable: the cumulative weight reaches the total")


def weighted_mean(prices, weights) -> int:
    """sum(w * p) / sum(w) to the nearest tick, halves up. ValueError without positive
    weight."""
    pairs = [(int(p), int(w)) for p, w in zip(prices, weights, strict=True) if w > 0]
    total = sum(w for _, w in pairs)
    if total <= 0:
        raise ValueError("weighted_mean needs at least one positive weight")
    return (2 * sum(p * w for p, w in pairs) + total) // (2 * total)


def median(prices) -> int:
    """The plain median of integer prices, the lower middle of an even count."""
    ordered = sorted(int(p) for p in prices)
    if not ordered:
        raise ValueError("median needs at least one price")
    return ordered[(len(ordered) - 1) // 2]


def _far(price: int, centre: int, ppm: int) -> bool:
    return PPM * abs(price - centre) > ppm * centre


@dataclass(frozen=True)
class IndexRule:
    """An index's aggregate and outlier rule (see the module docstring); rates in ppm, 0 off."""

    aggregate: Aggregate = Aggregate.WEIGHTED_MEDIAN
    exclude_ppm: int = 0
    clamp_ppm: int = 0
    readmit_ppm: int = 0
    readmit_updates: int = 0
    min_constituents: int = 1

    def __post_init__(self):
        try:
            aggregate = Aggregate(check.as_int64("aggregate", self.aggregate))
        except ValueError:
            raise ValueError(f"aggregate must be one of "
                             f"{', '.join(a.name for a in Aggregate)}, got "
                             f"{self.aggregate!r}") from None
        object.__setattr__(self, "aggregate", aggregate)
        for name in ("exclude_ppm", "clamp_ppm", "readmit_ppm"):
            value = check.as_int64(name, getattr(self, name))
            if not 0 <= value <= PPM:
                raise ValueError(f"{name} must be in [0, {PPM}] ppm, got {value}")
        if check.as_int64("readmit_updates", self.readmit_updates) < 0:
            raise ValueError(f"readmit_updates must be >= 0, got {self.readmit_updates}")
        if (self.readmit_ppm > 0) != (self.readmit_updates > 0):
            raise ValueError("readmit_ppm and readmit_updates go together (both 0: back as "
                             "soon as within exclude_ppm)")
        if self.readmit_ppm and not self.exclude_ppm:
            raise ValueError("readmit_ppm needs exclude_ppm (nothing is excluded without it)")
        if check.as_int64("min_constituents", self.min_constituents) < 1:
            raise ValueError(f"min_constituents must be >= 1, got {self.min_constituents}")


#: Published rules: Binance futures (5 % exclusion, weighted mean), BitMEX (25 % exclusion,
#: back within 2 % for 15 minutes = 180 updates of 5 s, at least 1 constituent), Hyperliquid
#: (weighted median), Deribit (clamp to the median +- 0.5 %, equal-weight mean).
RULES = {
    "binance": IndexRule(Aggregate.WEIGHTED_MEAN, exclude_ppm=50_000),
    "bitmex": IndexRule(Aggregate.WEIGHTED_MEAN, exclude_ppm=250_000, readmit_ppm=20_000,
                        readmit_updates=180),
    "hyperliquid": IndexRule(Aggregate.WEIGHTED_MEDIAN),
    "deribit": IndexRule(Aggregate.WEIGHTED_MEAN, clamp_ppm=5_000),
}


class PriceIndex:
    """An index over named constituents with integer ``weights`` ({name: weight >= 1}) under
    ``rule``; :meth:`update` takes their prices and returns the index (ticks)."""

    def __init__(self, weights: dict, rule: IndexRule | None = None):
        if not isinstance(weights, dict) or not weights:
            raise ValueError(f"weights must be a non-empty dict {{constituent: weight}}, got "
                             f"{weights!r}")
        self.weights = {}
        for name, weight in weights.items():
            w = check.as_int64(f"weights[{name!r}]", weight)
            if w < 1:
                raise ValueError(f"weights[{name!r}] must be >= 1, got {w}")
            self.weights[name] = w
        self.rule = rule if rule is not None else IndexRule()
        if not isinstance(self.rule, IndexRule):
            raise TypeError(f"rule must be an IndexRule, got {type(self.rule).__name__}")
        self.excluded: set = set()
        self.streak: dict = {}      # excluded constituent -> consecutive updates within band
        self.value: int | None = None

    def update(self, prices: dict) -> int | None:
        """The index at ``prices`` ({constituent: ticks or None for no price}); constituents
        left out have no price. Keeps the last value when too few constituents are live
        (None before any)."""
        unknown = set(prices) - set(self.weights)
        if unknown:
            raise KeyError(f"prices name constituents the index does not have: "
                           f"{sorted(unknown, key=str)}")
        live = {}
        for name, price in prices.items():
            if price is None:
                continue
            p = check.as_int64(f"prices[{name!r}]", price)
            if p < 1:
                raise ValueError(f"prices[{name!r}] must be >= 1 tick, got {p}")
            live[name] = p
        rule = self.rule
        if not live:
            return self.value
        centre = median(live.values())
        if rule.clamp_ppm:
            band = rule.clamp_ppm * centre
            live = {name: max(min(p, centre + band // PPM), centre - band // PPM)
                    for name, p in live.items()}
        if rule.exclude_ppm:
            self._exclude(live, centre)
        counted = {name: p for name, p in live.items() if name not in self.excluded}
        if len(counted) < rule.min_constituents or not counted:
            return self.value
        names = list(counted)
        weights = [self.weights[name] for name in names]
        prices_ = [counted[name] for name in names]
        if rule.aggregate == Aggregate.WEIGHTED_MEDIAN:
            self.value = weighted_median(prices_, weights)
        else:
            self.value = weighted_mean(prices_, weights)
        return self.value

    def _exclude(self, live: dict, centre: int) -> None:
        rule = self.rule
        for name, price in live.items():
            # Back in at the first update after readmit_updates intervals within the band.
            if name in self.excluded and rule.readmit_updates and (
                    self.streak[name] - 1 >= rule.readmit_updates):
                self.excluded.discard(name)
                del self.streak[name]
            if name not in self.excluded:
                if _far(price, centre, rule.exclude_ppm):
                    self.excluded.add(name)
                    self.streak[name] = 0
                continue
            if not rule.readmit_updates:
                if not _far(price, centre, rule.exclude_ppm):
                    self.excluded.discard(name)
                    del self.streak[name]
                continue
            others = [p for other, p in live.items()
                      if other != name and other not in self.excluded]
            within = bool(others) and not _far(price, median(others), rule.readmit_ppm)
            self.streak[name] = self.streak[name] + 1 if within else 0
