"""Venue presets: named :class:`~orderbook.Rules` that follow a venue's published rulebook.

Each :class:`Venue` is a snapshot of what the venue publishes about liquidating its BTC
perpetual, as docs/venues.md reads it from the venue's own pages (every number there carries its
source). :meth:`Venue.rules` turns it into the ``Rules`` of a scenario: maintenance tiers, trigger
boundary, margin basis, mark rule, partial-liquidation scheme, order limit, fees, takeover and
deficit order. What a venue does not publish (in the stored pages) is not invented: the
scenario's own setting is kept, and :attr:`Venue.kept` names those settings. What the engine can
only approximate is listed in :attr:`Venue.approximations`; what it cannot express at all is in
docs/venues.md section 9.

>>> from orderbook import compare, default_scenario, venues
>>> scenario = default_scenario(scale=0.05)
>>> comparison = compare(venues.rule_sets(["binance", "hyperliquid"], scenario), scenario)
>>> [row["rules"] for row in comparison.table]
['binance', 'hyperliquid']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from .events import (
    AdlRanking,
    Deficit,
    LimitRule,
    MarginBasis,
    MarkRule,
    Settlement,
    Sizing,
    Trigger,
)
from .scenario import Rules, _units, default_scenario

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .scenario import Scenario

__all__ = ["VENUES", "Venue", "names", "rule_sets", "rules"]

#: The settings a preset may set whose values are money in the quote currency (converted to the
#: scenario's quote units); every other value is a rate in ppm, an enum, a count or a flag.
_MONEY = ("fraction_above", "increment")

#: What a preset sets when its venue does not use the mechanism at all (no per-round cap, no
#: backstop account, no band, no threshold or cooldown), unless it lists the field as kept.
_UNUSED = {"round_cap": None, "backstop_collateral": 0, "backstop_discount_ppm": 0,
           "band_ppm": 0, "fraction_above": 0, "cooldown_rounds": 0, "cooldown_ms": 0,
           "takeover_below_ppm": 0, "increment": 0,
           "liquidator": True}


@dataclass(frozen=True)
class Venue:
    """One venue's published liquidation rules for its BTC perpetual (docs/venues.md).

    ``tiers`` rows are (cap, maintenance ppm, initial ppm) as the engine takes them (marginal
    rates with deductions, the last cap None); a cap is an amount of the quote currency
    (``cap_unit == "quote"``) or of BTC valued at the scenario's starting mid
    (``cap_unit == "base"``). ``settings`` are further ``Rules`` fields, money among them in the
    quote currency.
    """

    name: str
    contract: str
    section: str                       #: docs/venues.md section
    tiers: tuple
    cap_unit: str
    settings: dict
    kept: tuple = ()                   #: Rules fields left at the scenario's value (unsourced)
    approximations: tuple = ()         #: where the preset approximates the venue's rule

    def rules(self, scenario: Scenario | None = None) -> Rules:
        """This venue's rules in ``scenario``'s units (default: the built-in scenario).

        Tier caps and money settings become quote units of ``scenario`` rounded to the nearest
        unit (a cap is a boundary, so half a unit cannot move a liquidation by a lot); caps in
        BTC are valued at the scenario's starting mid. Settings in :attr:`kept` keep
        ``scenario.rules``'s values; a mechanism the venue does not have (a per-round cap, a
        backstop account, a band, a partial threshold or cooldown) is switched off.
        """
        scenario = scenario or default_scenario()
        quote_unit, _ = _units(scenario)
        unit = Fraction(quote_unit)
        mid_price = Fraction(Decimal(scenario.tick_size)) * int(scenario.book.mid)
        if scenario.settlement == Settlement.INVERSE:
            # money is the coin (the base): a cap in base units is that many coins, one in
            # quote currency is worth cap / price of them
            per_cap = 1 / unit if self.cap_unit == "base" else 1 / (mid_price * unit)
        elif self.cap_unit == "base":
            per_cap = mid_price / unit
        else:
            per_cap = 1 / unit
        chosen = {**{k: v for k, v in _UNUSED.items() if k not in self.kept}, **self.settings}
        values = {key: (round(Fraction(value) / unit) if key in _MONEY and value else value)
                  for key, value in chosen.items()}
        if self.tiers:   # none published: the scenario's (listed in ``kept``)
            values["tiers"] = tuple(
                (None if cap is None else max(1, round(Fraction(cap) * per_cap)), mm, im)
                for cap, mm, im in self.tiers)
        return replace(scenario.rules, **values)


def _chords(sizes, base_ppm: int, slope_ppm: int) -> tuple:
    # Marginal rates that make a tax-bracket MM equal a rate linear in size, r(q) = base +
    # slope x q, at every breakpoint: on [a, b] the chord of q x r(q) has slope
    # base + slope x (a + b).
    rows = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        rows.append((b, base_ppm + slope_ppm * (a + b)))
    return tuple(rows)


def _deribit_tiers() -> tuple:
    sizes = (0, 25, 50, 100, 200, 350, 500, 1000, 2000, 3000)
    mm = _chords(sizes, 10_000, 50)     # 1 % + 0.005 % x size(BTC)
    im = _chords(sizes, 20_000, 50)     # 2 % + 0.005 % x size(BTC)
    rows = [(str(cap), rate, im_rate) for (cap, rate), (_, im_rate) in zip(mm, im, strict=True)]
    rows[-1] = (None, *rows[-1][1:])
    return tuple(rows)


def _bitmex_tiers() -> tuple:
    # XBTUSD risk limits: base 200 XBT at MM 0.50 % / IM 1.00 %, +0.50 % per 150 XBT step.
    rows = [(str(200 + 150 * i), 5_000 + 5_000 * i, 10_000 + 5_000 * i) for i in range(12)]
    rows[-1] = (None, *rows[-1][1:])
    return tuple(rows)


def _binance_tiers() -> tuple:
    caps = ("50000", "250000", "1000000", "10000000", "20000000", "50000000", "100000000",
            "200000000", "300000000", None)
    mmr = (4_000, 5_000, 10_000, 25_000, 50_000, 100_000, 125_000, 150_000, 250_000, 500_000)
    return tuple((cap, rate, min(2 * rate, 1_000_000)) for cap, rate in zip(caps, mmr,
                                                                            strict=True))


_BYBIT_TIERS = (
    ("2000000", 5_000, 10_000), ("2600000", 5_600, 11_112), ("3200000", 6_300, 12_500),
    ("3800000", 6_700, 13_334), ("4400000", 7_100, 14_286), ("5000000", 7_700, 15_385),
    ("5600000", 9_100, 18_182), ("8500000", 10_000, 20_000), ("10000000", 13_000, 22_223),
    ("14000000", 15_000, 25_000), ("20000000", 16_000, 28_572), ("28000000", 20_000, 33_334),
    ("38000000", 25_000, 40_000), ("50000000", 29_000, 50_000), ("55000000", 30_000, 52_632),
    ("60000000", 35_000, 55_556), ("65000000", 36_000, 58_824), ("70000000", 38_000, 62_500),
    ("75000000", 40_000, 66_667), (None, 45_000, 71_429))

_BOOK_ADL = {"deficit": Deficit.ADL, "limit_rule": LimitRule.BANKRUPTCY}

#: The presets by name (docs/venues.md sections 2-8; section 10 tabulates them).
VENUES: dict[str, Venue] = {v.name: v for v in (
    Venue(
        "binance", "BTCUSDT perpetual (USDⓈ-M, linear)", "2", _binance_tiers(), "quote",
        {"trigger": Trigger.AT_OR_BELOW, "mm_basis": MarginBasis.MARK,
         "mark_rule": MarkRule.INDEX_CLAMPED, "sizing": Sizing.TIER_STEP, **_BOOK_ADL,
         "adl_ranking": AdlRanking.BINANCE, "maker_fee_ppm": 200, "taker_fee_ppm": 500},
        kept=("liquidation_fee_ppm", "insurance_fund"),
        approximations=(
            "brackets from a 2021 reverse-engineered table (secondary); initial rate assumed "
            "2 x MMR (125x in bracket 1)",
            "mark: median(index, best bid, best ask) stands for median(index x funding factor, "
            "index + moving-average basis, last), which needs time",
            "smart liquidation: one tier step per round, then the bankruptcy-price IOC and "
            "fund takeover",
            "the fund's takeover cap of 100 % of its balance in notional: the engine checks "
            "the fund's equity against the MM of what it takes")),
    Venue(
        "bitmex", "XBTUSD risk limits, as a linear contract", "3", _bitmex_tiers(), "base",
        {"trigger": Trigger.AT_OR_BELOW, "mm_basis": MarginBasis.ENTRY,
         "mark_rule": MarkRule.FAIR,
         "sizing": Sizing.TIER_STEP, **_BOOK_ADL, "adl_ranking": AdlRanking.BITMEX,
         "liquidation_fee_ppm": 1_000_000, "maker_fee_ppm": 200, "taker_fee_ppm": 750},
        kept=("insurance_fund",),
        approximations=(
            "risk limits are whole-position steps; the engine's tiers deduct (tax brackets)",
            "XBTUSD's inverse PnL is taken as linear; its steps in XBT are valued at the "
            "starting mid",
            "trigger boundary not published; E <= MM, with which BM-1's liquidation price 510 "
            "reproduces (E < MM gives 509.99)",
            "fair price = index x (1 + funding basis) exactly, the basis an input "
            "(shock.funding_basis_path) until the engine has funding of its own",
            "the surplus over the bankruptcy price goes to the fund: a liquidation fee of "
            "100 % of equity, exact for full closes only")),
    Venue(
        "bybit", "BTCUSDT perpetual (linear), the 20-tier risk-limit table", "4", _BYBIT_TIERS,
        "quote",
        {"trigger": Trigger.AT_OR_BELOW, "mm_basis": MarginBasis.ENTRY,
         "sizing": Sizing.TIER_STEP, **_BOOK_ADL, "liquidation_fee_ppm": 1_000_000},
        kept=("mark_rule", "adl_ranking", "maker_fee_ppm", "taker_fee_ppm", "insurance_fund"),
        approximations=(
            "MM on entry value as in the worked examples (the unified account uses the mark)",
            "IM and MM without the estimated fee to close",
            "the surplus over the bankruptcy price goes to the fund: a liquidation fee of "
            "100 % of equity, exact for full closes only")),
    Venue(
        "hyperliquid", "BTC perpetual (USDC, linear)", "5",
        (("150000000", 12_500, 25_000), (None, 25_000, 50_000)), "quote",
        {"trigger": Trigger.BELOW, "mm_basis": MarginBasis.MARK,
         "mark_rule": MarkRule.LAST_CLAMPED, "sizing": Sizing.FRACTION,
         "fraction_ppm": 200_000, "fraction_above": "100000", "cooldown_ms": 30_000,
         "cooldown_rounds": 0,
         "limit_rule": LimitRule.MARKET, "takeover_below_ppm": 666_667,
         "deficit": Deficit.ADL, "liquidation_fee_ppm": 0, "maker_fee_ppm": 150,
         "taker_fee_ppm": 450},
        kept=("adl_ranking", "insurance_fund", "backstop_collateral"),
        approximations=(
            "mark: the book component median(best bid, best ask, last); the oracle and CEX "
            "components and their EMAs need time and other venues",
            "the 30 s cooldown runs on Engine.time, which a scenario run advances with its "
            "clock; it is kept per account (the venue's is per user)",
            "the liquidator vault is the scenario's backstop account if it has one, else the "
            "insurance fund",
            "ADL at the bankruptcy price, not the previous oracle price",
            "fees from secondary sources")),
    Venue(
        "dydx", "BTC-USD perpetual (v4, USDC, linear), Large-Cap tier", "6",
        ((None, 12_000, 20_000),), "quote",
        {"trigger": Trigger.BELOW, "mm_basis": MarginBasis.MARK, "mark_rule": MarkRule.INDEX,
         "sizing": Sizing.FULL, "limit_rule": LimitRule.BAND, "band_ppm": 18_000,
         "deficit": Deficit.ADL, "liquidation_fee_ppm": 15_000, "maker_fee_ppm": 100,
         "taker_fee_ppm": 500},
        kept=("adl_ranking", "insurance_fund", "round_cap"),
        approximations=(
            "IM and MM scaled by open interest: the base rates only",
            "the fillable price at its widest (1.5 x the MM rate from the oracle) as a band",
            "the penalty 'up to 1.5 %, leaving funds where possible' as a fee capped at equity",
            "deleveraging selection is not settled in the venue's pages (random or by profit "
            "and leverage): the scenario's ranking")),
    Venue(
        "deribit", "BTC_USDC-PERPETUAL (linear), standard margin", "7", _deribit_tiers(),
        "base",
        {"trigger": Trigger.BELOW, "mm_basis": MarginBasis.MARK,
         "mark_rule": MarkRule.LAST_CLAMPED, "sizing": Sizing.INCREMENTAL, "increment": "2000",
         "limit_rule": LimitRule.MARKET, "deficit": Deficit.SOCIALIZE,
         "liquidation_fee_ppm": 7_500, "maker_fee_ppm": 0, "taker_fee_ppm": 500},
        kept=("insurance_fund",),
        approximations=(
            "MM rate 1 % + 0.005 % per BTC as tax brackets exact at 25, 50, 100, 200, 350, "
            "500, 1000 and 2000 BTC (at the starting mid), linear between",
            "incremental liquidation: steps of 2,000 of notional (200 contracts of $10), one "
            "after another within a round until E >= MM; the venue's 20-25 steps a second "
            "have no clock here",
            "mark: index + EMA of (last clamped to the touch - index) without the EMA",
            "socialised loss charged to current unrealised profits, not 'the day's winners'")),
    Venue(
        "okx", "BTC-USDT-SWAP (linear)", "8", (), "quote",
        {"trigger": Trigger.AT_OR_BELOW, "mm_basis": MarginBasis.MARK,
         "sizing": Sizing.TIER_STEP, "limit_rule": LimitRule.MARKET, "deficit": Deficit.ADL,
         "maker_fee_ppm": 200, "taker_fee_ppm": 500},
        kept=("tiers", "mark_rule", "liquidation_fee_ppm", "adl_ranking", "insurance_fund"),
        approximations=(
            "no BTC-USDT-SWAP tier table in the stored pages: the scenario's tiers",
            "trigger E <= MM without the liquidation fee added to MM",
            "one tier step per round (the old article steps down to tier 1 at once)",
            "orders at 'a price slightly better than market price', retried each minute, as "
            "market orders (the engine has no limit pegged to the touch)",
            "ADL at the bankruptcy price, not the mark",
            "fees from secondary sources")),
)}


def names() -> tuple[str, ...]:
    """The preset names, in docs/venues.md's order."""
    return tuple(VENUES)


def _venue(name: str) -> Venue:
    if not isinstance(name, str):
        raise TypeError(f"venue must be a name (str), got {name!r} ({type(name).__name__})")
    try:
        return VENUES[name.strip().lower()]
    except KeyError:
        raise KeyError(f"unknown venue {name!r}; choose from {', '.join(VENUES)}") from None


def rules(name: str, scenario: Scenario | None = None) -> Rules:
    """The rules of the venue ``name`` in ``scenario``'s units (see :meth:`Venue.rules`).

    KeyError naming the choices for an unknown name.
    """
    return _venue(name).rules(scenario)


def rule_sets(venue_names: Iterable[str] | None = None,
              scenario: Scenario | None = None) -> dict[str, Rules]:
    """``{name: Rules}`` of several venues (default: all), for :func:`orderbook.compare`."""
    chosen = names() if venue_names is None else tuple(venue_names)
    out = {}
    for name in chosen:
        venue = _venue(name)
        if venue.name in out:
            raise ValueError(f"venue {venue.name!r} is given twice")
        out[venue.name] = venue.rules(scenario)
    if not out:
        raise ValueError("no venues given")
    return out
