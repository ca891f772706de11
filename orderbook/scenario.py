"""Scenarios: seed a book and a leveraged population, apply a shock, run the cascade, measure it.

A :class:`Scenario` is plain data (frozen dataclasses, so it pickles to worker processes and
round-trips through TOML). :func:`run` builds an :class:`~orderbook.Engine`, steps it through time
(one liquidation round per step, liquidity providers refilling the book between rounds) and
returns a :class:`Result`; :func:`compare` runs one scenario under several rule sets from the same
starting state, and :func:`sweep` runs a parameter grid, in parallel through any
``concurrent.futures.Executor``.

Units: prices in ticks, sizes in lots, money in quote units, rates in ppm, time in steps.
"""

from __future__ import annotations

import copy
import enum
import itertools
import logging
import math
import multiprocessing
import os
import time
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from ._executors import SerialExecutor
from ._export import write_csv, write_parquet
from ._progress import reporting
from ._settings import (
    Bad,
    ConfigError,
    ConfigTypeError,
    UnknownKeyError,
    array,
    boolean,
    choice,
    convert,
    decimal_text,
    enum_name,
    int_list,
    integer,
    lot_amount,
    number,
    number_list,
    optional,
    pair,
    ppm,
    price_levels,
    renamed,
    schema,
    setting,
    shock_orders,
    sides,
    tier_table,
    type_name,
)
from .agents import agent_summary
from .analysis import cascade_forecast
from .events import (
    FUNDING_BASIS_BOUND,
    INSURANCE_FUND,
    INT64_MAX,
    AdlRanking,
    CloseOrder,
    Deficit,
    LimitRule,
    MarginBasis,
    MarkRule,
    Settlement,
    Side,
    Sizing,
    Trigger,
)
from .ladder import BookFrames, BookSnapshot, BookTape
from .margin import contract_value, inverse_unit_value, unit_value
from .metrics import (
    LIQUIDATION_KINDS,
    add_twins,
    drawdown,
    instrument_figures,
    summarize,
    unresolved_note,
)

if TYPE_CHECKING:
    from ._market import Market

log = logging.getLogger(__name__)

__all__ = [
    "DepthProfile", "ExplicitBook", "Population", "ExplicitPopulation", "Liquidity", "Shock",
    "Rules", "Clock", "Flow", "Funding", "Scenario", "Contract", "IndexModel", "Result",
    "Comparison", "run", "run_parts", "compare", "sweep", "SERIES_DTYPE", "Contagion", "contagion",
    "contagion_origins",
    "default_scenario", "with_params", "SerialExecutor", "usable_cpus", "worker_count",
    "quote_unit", "contract_units", "coerce_param", "TABLES", "scale_scenario", "scale_rules",
    "builtin_rule_sets",
    "UnresolvedAccountsWarning",
    "InertSettingWarning",
    "inert_settings",
]


class UnresolvedAccountsWarning(RuntimeWarning):
    """A run ended with accounts at negative equity or still queued for liquidation.

    Their loss is in the run's summary (``unresolved_accounts``, ``unresolved_lots``,
    ``unresolved_equity``, ``queue_left``), not in ``bad_debt`` or ``socialized``. One per run;
    filter it like any warning: ``warnings.simplefilter("ignore", UnresolvedAccountsWarning)``.
    """


class InertSettingWarning(UserWarning):
    """A scenario setting cannot act under the others, so the run cannot show its effect.

    A mark that cannot move: ``rules.mark_rule = INDEX`` (or ``FAIR``) with no
    ``shock.index_path`` (nor, for FAIR, ``shock.funding_basis_path``), where no account can
    cross its liquidation price (the run's summary says ``static_mark``). A rules setting that
    needs another (:func:`inert_settings`: band_ppm without limit_rule BAND, ...), set away
    from its default, swept or compared (the summary's ``inert_settings``). One per setting
    and run.
    """


#: What a run whose mark cannot move says (InertSettingWarning, the CLI's warning line).
STATIC_MARK_NOTE = ("rules.mark_rule follows the index alone and the shock has no index_path: the "
                    "mark stays where it starts, so no account can be liquidated (give "
                    "shock.index_path, ticks per step, or a mark rule that follows the book)")


# What each rules setting needs of the others to act (docs/liquidation.md): whether it can act
# under ``rules``, what it needs (said in the note), and the settings that decide it.
_BACKSTOP_ACTS = ("limit_rule BANKRUPTCY or takeover_below_ppm > 0 (the backstop takes over "
                  "only what those take off the book)")
_NEEDS = {
    "band_ppm": (lambda r: r.limit_rule == LimitRule.BAND, "limit_rule BAND", ("limit_rule",)),
    "fraction_ppm": (lambda r: r.sizing == Sizing.FRACTION, "sizing FRACTION", ("sizing",)),
    "fraction_above": (lambda r: r.sizing == Sizing.FRACTION, "sizing FRACTION", ("sizing",)),
    "cooldown_rounds": (lambda r: r.sizing == Sizing.FRACTION,
                        "sizing FRACTION (a cooldown follows a partial step)", ("sizing",)),
    "cooldown_ms": (lambda r: r.sizing == Sizing.FRACTION,
                    "sizing FRACTION (a cooldown follows a partial step)", ("sizing",)),
    "increment": (lambda r: r.sizing == Sizing.INCREMENTAL, "sizing INCREMENTAL", ("sizing",)),
    "backstop_collateral": (
        lambda r: r.limit_rule == LimitRule.BANKRUPTCY or r.takeover_below_ppm > 0,
        _BACKSTOP_ACTS, ("limit_rule", "takeover_below_ppm")),
    "backstop_discount_ppm": (
        lambda r: r.backstop_collateral > 0 and (r.limit_rule == LimitRule.BANKRUPTCY
                                                 or r.takeover_below_ppm > 0),
        f"a backstop (backstop_collateral > 0) and {_BACKSTOP_ACTS}",
        ("backstop_collateral", "limit_rule", "takeover_below_ppm")),
    "adl_ranking": (lambda r: r.deficit == Deficit.ADL, "deficit ADL", ("deficit",)),
}
# The settings that act only through the liquidator (rules.liquidator = false turns it off).
_LIQUIDATION_SETTINGS = (*_NEEDS, "sizing", "limit_rule", "round_cap", "liquidation_fee_ppm",
                         "takeover_below_ppm", "deficit", "close_order")


def inert_settings(scenario, names=None) -> tuple[str, ...]:
    """Notes, one per rules setting of ``scenario`` that cannot act under the others (band_ppm
    without limit_rule BAND, a fraction without sizing FRACTION, a backstop discount without a
    backstop, any liquidation rule with the liquidator off, ...), so that a run cannot show its
    effect. ``names``: the settings to check whatever their values (``"band_ppm"`` or
    ``"rules.band_ppm"``; others are ignored); None: those set away from their defaults. A run
    warns with each (InertSettingWarning) and its summary lists them (``inert_settings``)."""
    rules, default = scenario.rules, Rules()
    if names is None:
        chosen = [f.name for f in fields(Rules)
                  if getattr(rules, f.name) != getattr(default, f.name)]
    else:
        chosen = [n.removeprefix("rules.") for n in names
                  if n.startswith("rules.") or "." not in n]
    notes = []
    for name in chosen:
        value = _shown(getattr(rules, name, None))
        if not rules.liquidator and name in _LIQUIDATION_SETTINGS:
            notes.append(f"rules.{name} = {value} cannot act: rules.liquidator is false, so "
                         f"nothing is liquidated")
        elif name in _NEEDS and not _NEEDS[name][0](rules):
            _, needs, deciding = _NEEDS[name]
            here = ", ".join(f"{key} {_shown(getattr(rules, key))}" for key in deciding)
            notes.append(f"rules.{name} = {value} cannot act: it needs {needs}; these rules "
                         f"have {here}")
    return tuple(notes)


def _shown(value) -> str:
    return value.name if isinstance(value, enum.Enum) else str(value)


def static_mark(scenario) -> bool:
    """Whether ``scenario``'s mark cannot move: the liquidator is on, the mark is the INDEX (or
    FAIR with a funding basis path of zeros) and the shock gives no index path (the summary's
    ``static_mark``)."""
    rules = scenario.rules
    if scenario.instruments:
        # every instrument's mark follows an index that nothing moves
        return bool(rules.liquidator and scenario.index_model is None and all(
            _static(rules.mark_rule if c.mark_rule is None else c.mark_rule, c.shock)
            for c in scenario.instruments))
    return bool(rules.liquidator and _static(rules.mark_rule, scenario.shock))


def _static(mark_rule, shock) -> bool:
    return not shock.index_path and (
        mark_rule == MarkRule.INDEX
        or mark_rule == MarkRule.FAIR and not any(shock.funding_basis_path))


#: One row per step of a run, at ``time`` ms (``step * Clock.step_ms``); ``liquidated_notional``
#: is what the liquidator closed since the previous row.
SERIES_DTYPE = np.dtype([
    ("step", "<i8"), ("time", "<i8"), ("last", "<i8"), ("mark", "<i8"), ("best_bid", "<i8"),
    ("best_ask", "<i8"),
    ("spread", "<i8"), ("mid", "<f8"), ("bid_depth_1pct", "<i8"), ("ask_depth_1pct", "<i8"),
    ("bid_depth_5pct", "<i8"), ("ask_depth_5pct", "<i8"), ("open_interest", "<i8"),
    ("insurance_fund", "<i8"), ("liquidated_notional", "<i8"), ("queue", "<i8"),
])



@dataclass(frozen=True)
class DepthProfile:
    """A synthetic book: ``levels`` price levels a side, ``step`` ticks apart, around ``mid``.

    The exact depth of level i (0 at the touch) is ``touch_qty * (1 + growth * i)`` lots times a
    lognormal noise of sigma ``noise`` (drawn from the scenario's seed; the same draws whatever
    ``touch_qty``), a real number: ``touch_qty`` may have a fraction (1.2 lots on average at the
    touch). The book holds whole lots, rounded so that every run of levels from the touch holds
    its exact depth rounded to the nearest lot (cumulative rounding): each level is within one
    lot of its exact depth, the depth within any distance of the touch within half a lot, and a
    level whose share rounds to nothing is left empty. So scaling ``touch_qty`` scales the whole
    depth curve, not a rounded touch (:func:`scale_scenario`).
    """

    mid: int = setting(1_000_000, integer(1, 2**32 - 1))
    spread: int = setting(2, integer(1, 2**32 - 1))
    levels: int = setting(400, integer(1, 10**7))
    step: int = setting(1, integer(1, 2**32 - 1))
    touch_qty: int | float = setting(40, lot_amount(2**40))
    growth: float = setting(0.03, number())
    noise: float = setting(0.3, number(0.0))

    def exact_sides(self, rng: np.random.Generator):
        """(bid prices, exact bid depth, ask prices, exact ask depth), best first: prices in
        ticks, depth in lots as floats, bids only down to 1 tick."""
        i = np.arange(self.levels)
        bid_px = self.mid - self.spread // 2 - i * self.step
        ask_px = self.mid + (self.spread - self.spread // 2) + i * self.step
        base = self.touch_qty * (1 + self.growth * i)
        bid_x = base * rng.lognormal(0, self.noise, self.levels)
        ask_x = base * rng.lognormal(0, self.noise, self.levels)
        keep = bid_px >= 1  # a prefix: prices fall away from the touch
        return bid_px[keep].astype(np.int64), bid_x[keep], ask_px.astype(np.int64), ask_x

    def sides(self, rng: np.random.Generator):
        """(bid prices, bid lots, ask prices, ask lots), best first; only levels with lots."""
        bid_px, bid_x, ask_px, ask_x = self.exact_sides(rng)
        bid_q, ask_q = _cumulative_round(bid_x), _cumulative_round(ask_x)
        return bid_px[bid_q > 0], bid_q[bid_q > 0], ask_px[ask_q > 0], ask_q[ask_q > 0]


def _cumulative_round(exact: np.ndarray) -> np.ndarray:
    """Whole lots per level whose running sums are the exact running sums rounded to the
    nearest lot (halves up): int64, each within one lot of its exact value, none negative."""
    totals = np.floor(np.cumsum(exact) + 0.5).astype(np.int64)
    return np.diff(totals, prepend=0)


@dataclass(frozen=True)
class ExplicitBook:
    """A book given level by level: ``bids`` and ``asks`` as ((price ticks, lots), ...)."""

    bids: tuple = setting((), price_levels)
    asks: tuple = setting((), price_levels)

    def sides(self, rng: np.random.Generator):
        """(bid prices, bid lots, ask prices, ask lots) as given."""
        bids = np.array(self.bids, dtype=np.int64).reshape(-1, 2)
        asks = np.array(self.asks, dtype=np.int64).reshape(-1, 2)
        return bids[:, 0], bids[:, 1], asks[:, 0], asks[:, 1]

    @classmethod
    def from_l2(cls, book, levels: int | None = None, *, price_range=None,
                covered_only: bool = False) -> ExplicitBook:
        """The levels of an aggregated book (an :class:`orderbook.data.l2.L2Book`, or anything
        with its ``levels`` method), best first: at most ``levels`` a side, prices within
        ``price_range`` (low, high ticks), every known level by default, and with
        ``covered_only`` only inside the snapshot's window, where the depth is known to be
        complete."""
        def side(s):
            return tuple(book.levels(s, levels, price_range=price_range,
                                     covered_only=covered_only))

        return cls(bids=side(Side.BUY), asks=side(Side.SELL))

    @property
    def mid(self) -> int:
        """Midpoint of the best bid and ask, in ticks (rounded down)."""
        if not self.bids or not self.asks:
            raise ValueError(f"ExplicitBook needs at least one bid and one ask, got "
                             f"{len(self.bids)} bids and {len(self.asks)} asks")
        return (max(p for p, _ in self.bids) + min(p for p, _ in self.asks)) // 2


def _contract_name(value, *, empty: bool = False) -> str:
    """A contract's name: a string, non-empty unless ``empty``."""
    if not isinstance(value, str) or not (value or empty):
        raise Bad(f"must be a {'' if empty else 'non-empty '}string, got {type_name(value)} "
                  f"{value!r}", ConfigTypeError if not isinstance(value, str) else ConfigError)
    return value


def _coin_name(value) -> str:
    return _contract_name(value, empty=True)


@dataclass(frozen=True)
class Population:
    """Leveraged accounts drawn from the scenario's seed.

    ``leverage`` and ``size`` (lots) are log-uniform between their bounds; entry prices are normal
    around the book's mid with relative std ``entry_dispersion``; a ``long_fraction`` of them are
    long. Collateral is the entry notional divided by the leverage, rounded up. Accounts that
    would already be liquidatable at the starting mark are dropped (they would be gone already).

    In a scenario with ``instruments`` each account holds a basket on one collateral (cross
    margin): instrument i with probability ``Contract.hold``, one leverage for the whole
    account (collateral = the basket's entry notional / leverage), and per instrument a size
    (log-uniform within ``Contract.size`` or ``size``), an entry and a side. Sizes and entries
    are drawn through Gaussian copulas: an account's normal score in instrument i is
    ``rho * z + sqrt(1 - rho**2) * e_i`` with one ``z`` per account, ``rho`` =
    ``size_correlation`` (``entry_correlation``); the size is the log-uniform quantile of the
    score, the entry ``mid_i * (1 + entry_dispersion * score)``. The side of each instrument is
    the account's own with probability ``same_side``, else drawn afresh (``long_fraction``).

    ``coin_fraction`` of each basket account's collateral is held in the collateral asset of
    the contract named ``coin`` (one whose ``haircut_ppm`` is set; "" : the first such): as
    many of its units (millionths of a lot) as count, at the starting mark after the haircut,
    for that share (rounded up), the rest in quote currency. With ``long_fraction`` 1 and the
    coin's own contract alone these are coin-margined longs; with ``long_fraction`` 0, basis
    traders (long the coin as collateral, short its perpetual).
    """

    count: int = setting(20_000, integer(0, 10**8))
    long_fraction: float = setting(0.65, number(0.0, 1.0))
    leverage: tuple = setting((3.0, 60.0), pair(number(0.0, lo_open=True)))
    entry_dispersion: float = setting(0.01, number(0.0))
    size: tuple = setting((1, 400), pair(integer(1, 2**40)))
    # Baskets (a scenario with ``instruments``): how an account's draws in one instrument
    # follow its draws in the others.
    size_correlation: float = setting(1.0, number(0.0, 1.0))
    entry_correlation: float = setting(1.0, number(0.0, 1.0))
    same_side: float = setting(1.0, number(0.0, 1.0))
    coin_fraction: float = setting(0.0, number(0.0, 1.0))
    coin: str = setting("", _coin_name)


@dataclass(frozen=True)
class ExplicitPopulation:
    """Accounts given one by one: sides (+1/-1), sizes (lots), entries (ticks), collateral."""

    side: tuple = setting((), sides)
    size: tuple = setting((), int_list(1, INT64_MAX))
    entry: tuple = setting((), int_list(1, INT64_MAX))
    collateral: tuple = setting((), int_list(0, INT64_MAX))


@dataclass(frozen=True)
class Liquidity:
    """Liquidity providers that refill the book, and value traders that pull the price back.

    Refill: each step every level of the profile (placed around the last trade price) gets back
    the share
    ``1 - 2**(-1/half_life)`` of what it lacks, nearest levels first, at most ``rate`` lots per
    side per step. ``half_life=0`` switches refilling off.

    Recovery: from step ``recovery_delay`` on, each step a value trader sends an IOC toward the
    pre-shock mid, for at most
    ``recovery_rate`` lots, limited to the last price moved by the share
    ``1 - 2**(-1/recovery_half_life)`` of its distance to that mid (at least one tick).
    ``recovery_half_life=0`` switches it off, and the price then stays where the cascade left it.
    """

    rate: int = setting(20_000, integer(0, INT64_MAX))
    half_life: float = setting(5.0, number(0.0))
    recovery_rate: int = setting(0, integer(0, INT64_MAX))
    recovery_half_life: float = setting(0.0, number(0.0))
    recovery_delay: int = setting(0, integer(0, INT64_MAX))


@dataclass(frozen=True)
class Flow:
    """Background order flow on one instrument (docs/flows.md): ``model`` is an
    ``orderbook.flows.PoissonFlow`` or ``HawkesFlow``, drawn one step at a time from the book's
    state at the step's start (spread, the mid's volatility over the last minute, the lots
    forced orders filled since the last step) and sent from an exempt account of its own,
    each row priced against the live book when it arrives (``[[flows]]`` in a file, with a
    ``kind`` of ``poisson`` or ``hawkes``). Its stream is seeded from the scenario's seed and
    the model's."""

    model: object
    instrument: int = setting(0, integer(0, 2**31 - 1))

    def __post_init__(self):
        from .flows import HawkesFlow, PoissonFlow

        if not isinstance(self.model, (PoissonFlow, HawkesFlow)):
            raise TypeError(f"Flow model must be a PoissonFlow or a HawkesFlow, got "
                            f"{type(self.model).__name__}")


def _funding_venue(value):
    from .funding import VENUES

    if value is None or value == "none":
        return None
    if value not in VENUES:
        raise Bad(f"must be one of {', '.join(VENUES)} (orderbook.funding.VENUES) or none")
    return value


@dataclass(frozen=True)
class Funding:
    """Perpetual funding in a run (docs/funding.md, "In a scenario"): ``venue`` names a rule
    of ``orderbook.funding.VENUES`` (None: no funding). Its premium is sampled every
    ``sample_ms`` from each perpetual's mark against its index (in a market of venues the
    market index feeding the instrument; else the instrument's index path where the scenario
    gives one, else its starting mid: the price the market was at), and
    at the end of every ``interval_ms`` the rate is paid through ``Engine.settle_funding``,
    exactly and conserved. ``interval_ms`` and ``sample_ms`` override the venue's (a real
    8-hour interval never ends within a two-minute cascade: compress it to see funding act)."""

    venue: str | None = setting(None, _funding_venue)
    interval_ms: int | None = setting(None, optional(integer(1, 10**12)))
    sample_ms: int | None = setting(None, optional(integer(1, 10**12)))

    def rule(self):
        """The venue's ``orderbook.funding.FundingRule`` with the overrides; None when off."""
        from .funding import VENUES

        if self.venue is None:
            return None
        rule = VENUES[self.venue]
        interval = self.interval_ms or rule.interval_ms
        sample = min(self.sample_ms or rule.sample_ms, interval)
        if interval != rule.interval_ms and rule.rate_period_ms is None:
            # the venue quotes its rate per interval: keep that rate per the venue's interval
            # and pay the interval's share of it
            return replace(rule, interval_ms=interval, sample_ms=sample,
                           rate_period_ms=rule.interval_ms)
        return replace(rule, interval_ms=interval, sample_ms=sample)


@dataclass(frozen=True)
class Clock:
    """The run's timeline, in milliseconds (docs/time.md).

    A run lasts ``steps`` steps of ``step_ms`` ms: the series has one row per step (at
    ``step * step_ms``), and the settings counted in steps (``Shock.orders`` and paths,
    ``Liquidity`` rates and delays) keep that unit. The liquidator runs ``liquidator_rounds``
    rounds every ``liquidator_ms`` (None: every step, today's step model). With ``block_ms``
    the venue works in blocks (dYdX, Hyperliquid): orders from agents and flows arriving
    within a block are matched at its end, in arrival order, and the liquidator runs at every
    block end after them (``liquidator_ms`` must then be None or a multiple of ``block_ms``).
    """

    step_ms: int = setting(1_000, integer(1, 10**12))
    liquidator_ms: int | None = setting(None, optional(integer(1, 10**12)))
    liquidator_rounds: int = setting(1, integer(1, 10**6))
    block_ms: int | None = setting(None, optional(integer(1, 10**12)))

    def __post_init__(self):
        if (self.block_ms is not None and self.liquidator_ms is not None
                and self.liquidator_ms % self.block_ms):
            raise ConfigError(f"clock liquidator_ms must be a multiple of block_ms "
                              f"({self.block_ms}), got {self.liquidator_ms}")

    @property
    def cadence_ms(self) -> int:
        """The liquidator's period in ms."""
        if self.liquidator_ms is not None:
            return self.liquidator_ms
        return self.block_ms if self.block_ms is not None else self.step_ms


@dataclass(frozen=True)
class Shock:
    """What hits the market: market orders of ``sell``/``buy`` lots at step 0, an index path
    (ticks per step, for index mark rules), a funding-basis path (ppm per step, for the FAIR
    mark; see Engine.set_funding_basis), and ``orders`` as ((step, side, lots), ...). A path
    shorter than the run keeps its last value."""

    sell: int = setting(0, integer(0, INT64_MAX))
    buy: int = setting(0, integer(0, INT64_MAX))
    index_path: tuple = setting((), int_list(1, INT64_MAX))
    funding_basis_path: tuple = setting((), int_list(-FUNDING_BASIS_BOUND, FUNDING_BASIS_BOUND))
    orders: tuple = setting((), shock_orders)


@dataclass(frozen=True)
class Rules:
    """The liquidation rule set and margin settings (see docs/liquidation.md)."""

    tiers: tuple = setting(((2_000_000_000, 4_000, 8_000), (20_000_000_000, 10_000, 20_000),
                            (None, 25_000, 50_000)), tier_table)
    mark_rule: MarkRule = setting(MarkRule.LAST, enum_name(MarkRule))
    sizing: Sizing = setting(Sizing.FULL, enum_name(Sizing))
    fraction_ppm: int = setting(250_000, ppm)
    fraction_above: int = setting(0, integer(0, 2**62))   # quote units; 0: always the fraction
    cooldown_rounds: int = setting(0, integer(0, INT64_MAX))  # whole orders after a FRACTION step
    cooldown_ms: int = setting(0, integer(0, INT64_MAX))  # ms of whole orders after a FRACTION step
    increment: int = setting(0, integer(0, 2**62))   # quote units: one INCREMENTAL step
    limit_rule: LimitRule = setting(LimitRule.MARKET, enum_name(LimitRule), old_names=("limit",))
    band_ppm: int = setting(0, ppm)
    round_cap: int | None = setting(None, optional(integer(1, INT64_MAX)))
    liquidation_fee_ppm: int = setting(5_000, ppm)
    insurance_fund: int = setting(10**11, integer(0, 2**62))
    backstop_collateral: int = setting(0, integer(0, 2**62))
    backstop_discount_ppm: int = setting(0, ppm)
    takeover_below_ppm: int = setting(0, ppm)   # of MM; 0: never (Hyperliquid: 666_667)
    deficit: Deficit = setting(Deficit.ADL, enum_name(Deficit))
    adl_ranking: AdlRanking = setting(AdlRanking.BITMEX, enum_name(AdlRanking))
    trigger: Trigger = setting(Trigger.BELOW, enum_name(Trigger))
    mm_basis: MarginBasis = setting(MarginBasis.MARK, enum_name(MarginBasis))
    close_order: CloseOrder = setting(CloseOrder.ALL, enum_name(CloseOrder))
    taker_fee_ppm: int = setting(500, ppm)
    maker_fee_ppm: int = setting(200, ppm)
    liquidator: bool = setting(True, boolean)


@dataclass(frozen=True)
class Contract:
    """One instrument of a scenario over several (``Scenario.instruments``, ``[[instruments]]``
    in a file): its name, tick and lot, its book and its shock; ``tiers`` and ``mark_rule``
    default to the scenario's rules (None), ``hold`` is the probability that an account of the
    population holds it and ``size`` its size range in lots (None: the population's).

    With ``haircut_ppm`` set, the contract's base asset is also a collateral asset of the venue
    (``orderbook.Asset`` named as the contract, counted in millionths of a lot, valued at its
    mark less the haircut; a liquidated account's units are sold to the venue at the mark less
    ``conversion_discount_ppm``): ``Population.coin_fraction`` of the collateral may be held
    in it. With ``spot`` the contract is that asset's spot book: the population holds no
    position in it, the scenario's own accounts quote it with coin they hold, and a
    liquidated account's coin is sold through it instead of to the venue."""

    name: str = setting("main", _contract_name)
    tick_size: str = setting("0.1", decimal_text)
    lot_size: str = setting("0.001", decimal_text)
    book: DepthProfile | ExplicitBook = field(default_factory=DepthProfile)
    shock: Shock = field(default_factory=Shock)
    tiers: tuple | None = setting(None, optional(tier_table))
    mark_rule: MarkRule | None = setting(None, optional(enum_name(MarkRule)))
    hold: float = setting(1.0, number(0.0, 1.0))
    size: tuple | None = setting(None, optional(pair(integer(1, 2**40))))
    haircut_ppm: int | None = setting(None, optional(integer(0, 999_999)))
    conversion_discount_ppm: int = setting(0, integer(0, 999_999))
    #: quote currency per contract on an inverse venue (None: the scenario's contract_value)
    contract_value: str | None = setting(None, optional(decimal_text))
    #: a spot book of the contract's base asset (it needs ``haircut_ppm``: the asset it
    #: trades): no positions are seeded on it, and a liquidated account's coin is sold
    #: through it, moving its mark (docs/liquidation.md, "Collateral assets")
    spot: bool = setting(False, boolean)


def _correlation(value):
    """A correlation matrix: rows of numbers in [-1, 1], square, symmetric, unit diagonal,
    positive semi-definite (a Cholesky factor exists, with a 1e-12 ridge)."""
    rows = [tuple(number(-1.0, 1.0)(x) for x in array(row)) for row in array(value)]
    n = len(rows)
    if any(len(row) != n for row in rows):
        raise Bad(f"must be a square matrix, got rows of lengths {[len(r) for r in rows]}")
    for i in range(n):
        if rows[i][i] != 1.0:
            raise Bad(f"must have 1 on the diagonal, got {rows[i][i]} at [{i}][{i}]")
        for j in range(i):
            if rows[i][j] != rows[j][i]:
                raise Bad(f"must be symmetric, got {rows[i][j]} at [{i}][{j}] and "
                          f"{rows[j][i]} at [{j}][{i}]")
    if n:
        try:
            np.linalg.cholesky(np.array(rows) + 1e-12 * np.eye(n))
        except np.linalg.LinAlgError:
            raise Bad("must be positive semi-definite (a correlation matrix)") from None
    return tuple(rows)


@dataclass(frozen=True)
class IndexModel:
    """Correlated index paths for a scenario with instruments (a factor model): from each
    instrument's book mid, ``log p[t+1] = log p[t] + mu_i - sigma_i**2 / 2 + sigma_i * z[t, i]``
    with ``mu_i = drift_ppm[i] / 10**6`` and ``sigma_i = vol_ppm[i] / 10**6`` per step and the
    normal scores ``z[t] = L e[t]``, ``L`` the Cholesky factor of ``correlation`` and ``e[t]``
    independent standard normals drawn from the scenario's seed; the index of step t is
    ``p[t + 1]`` to the nearest tick (at least 1). It replaces the instruments' index paths
    (``[index_model]`` in a file); their marks follow it under INDEX, INDEX_CLAMPED or FAIR."""

    drift_ppm: tuple = setting((), number_list(-10.0**6, 10.0**6))
    vol_ppm: tuple = setting((), number_list(0.0, 10.0**6))
    correlation: tuple = setting((), _correlation)


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs; frozen and picklable. Units: ticks, lots, quote units, steps.

    With ``instruments`` (a tuple of :class:`Contract`) the run is a venue of several
    instruments (docs/market_wide.md): each contract brings its own tick, lot, book and shock;
    ``tick_size`` and ``lot_size`` here are not used, and ``book`` and ``shock`` must stay at
    their defaults (a run refuses others); the population holds baskets across them.
    """

    tick_size: str = setting("0.1", decimal_text)
    lot_size: str = setting("0.001", decimal_text)
    quote_unit: str | None = setting(None, optional(decimal_text))
    book: DepthProfile | ExplicitBook = field(default_factory=DepthProfile)
    population: Population | ExplicitPopulation = field(default_factory=Population)
    liquidity: Liquidity = field(default_factory=Liquidity)
    rules: Rules = field(default_factory=Rules)
    shock: Shock = field(default_factory=lambda: Shock(sell=30_000))
    clock: Clock = field(default_factory=Clock)
    #: agents (orderbook.agents) acting in every run of the scenario (``[[agents]]`` in a file)
    agents: tuple = ()
    #: background order flows (:class:`Flow`; ``[[flows]]`` in a file)
    flows: tuple = ()
    funding: Funding = field(default_factory=Funding)
    steps: int = setting(120, integer(1, 10**9))
    seed: int = setting(7, integer(0, INT64_MAX))
    engine: str = setting("compiled", choice("compiled", "reference"))
    instruments: tuple = ()
    index_model: IndexModel | None = None
    #: INVERSE: a coin-margined venue (docs/liquidation.md, "Inverse contracts"): quote_unit is
    #: the coin's unit, every amount of money (collateral, fund, caps, tiers, summaries) counts
    #: it, and a contract is ``contract_value`` of quote currency
    settlement: Settlement = setting(Settlement.LINEAR, enum_name(Settlement))
    contract_value: str | None = setting(None, optional(decimal_text))


#: The tables of a Scenario (in the order a scenario file lists them) and the classes each holds.
_TABLE_CLASSES = {"book": (DepthProfile, ExplicitBook),
                  "population": (Population, ExplicitPopulation),
                  "liquidity": (Liquidity,), "shock": (Shock,), "rules": (Rules,),
                  "clock": (Clock,), "funding": (Funding,)}
TABLES = tuple(_TABLE_CLASSES)


def default_scenario(scale: float = 1.0) -> Scenario:
    """The built-in perpetual market: a BTC-like book (tick 0.1, lot 0.001, mid 100,000.0) with
    depth over 5 % each side, 20,000 leveraged accounts (2-75x, 65 % long), a market sell of
    30 BTC, and value traders pulling the price back from step 15 on. ``scale`` shrinks accounts,
    depth, shock, refill and recovery together (:func:`scale_scenario`; the depth curve exactly,
    within a lot per level), so a small scale keeps the same dynamics: from 0.01 to 1 the share
    of accounts liquidated, averaged over seeds 0-9, stays within 1.5 points of scale 1's 9.5 %
    (one seed's cascade varies more, the more so the fewer its accounts). The tests run it at
    0.05."""
    return scale_scenario(Scenario(
        book=DepthProfile(mid=1_000_000, spread=1, levels=1000, step=50, touch_qty=60,
                          growth=0.01, noise=0.3),
        population=Population(count=20_000, long_fraction=0.65, leverage=(2.0, 75.0),
                              entry_dispersion=0.005, size=(1, 100)),
        liquidity=Liquidity(rate=2_000, half_life=10.0, recovery_rate=1_000,
                            recovery_half_life=15.0, recovery_delay=15),
        shock=Shock(sell=30_000),
        steps=120,
    ), scale)


def builtin_rule_sets(scenario: Scenario) -> dict[str, Rules]:
    """The rule sets ``orderbook compare`` runs without ``--rules``, each a change of
    ``scenario``'s rules: full market closes; 25 % partial closes; IOC at the bankruptcy price
    with the rest taken over by the insurance fund; a 1 % band around the mark plus a per-round
    cap (quote units) of one sixth of the shock's notional at the starting mid."""
    base = scenario.rules
    shock = scenario.shock
    lots = max(shock.sell, shock.buy, sum(q for _, _, q in shock.orders), 1)
    _, k = _units(scenario)
    cap = max(1, contract_value(scenario.settlement == Settlement.INVERSE, k,
                                int(scenario.book.mid), lots) // 6)
    return {
        "full market": replace(base, sizing=Sizing.FULL, limit_rule=LimitRule.MARKET),
        "partial 25%": replace(base, sizing=Sizing.FRACTION, fraction_ppm=250_000,
                               limit_rule=LimitRule.MARKET),
        "bankruptcy IOC + fund": replace(base, sizing=Sizing.FULL,
                                         limit_rule=LimitRule.BANKRUPTCY),
        "band 1% + cap": replace(base, sizing=Sizing.FULL, limit_rule=LimitRule.BAND,
                                 band_ppm=10_000, round_cap=cap),
    }


# ------------------------------------------------------------------------------- scaling
def scale_scenario(s: Scenario, scale: float) -> Scenario:
    """Shrink (or grow) a synthetic scenario: accounts, book depth (``touch_qty``), refill and
    recovery rates, shock sizes and the per-round cap times ``scale``. Money (insurance fund,
    backstop collateral), prices, rates and each account's size are not scaled.

    The book's depth is scaled exactly: ``touch_qty`` becomes ``touch_qty * scale`` with its
    fraction (to 12 significant digits), and the book rounds the scaled depth curve as a whole
    (:class:`DepthProfile`), so every level holds its exact scaled depth within one lot and
    every run of levels from the touch within half a lot. Rounding the touch alone would move
    the whole curve: at scale 0.02 a touch of 60 lots is 1.2, and rounding it to 1 took 17 %
    of the depth off every level.

    Each count (accounts, lots a step, shock lots, the cap in quote units) becomes
    ``max(1, round(n * scale))``: the nearest integer (ties to even, as
    Python's ``round`` of the float product), and at least 1, so that a setting that is on
    stays on; 0 (off) stays 0. There is no other floor: one above 1 would grow a small count
    when shrinking it, and a scenario file would then scale differently from the same scenario
    built in Python. ``default_scenario(scale)`` is this applied to ``default_scenario()``.

    Flows' mean order sizes scale (at least one lot), their rates do not. The built-in
    agents' sizes (a market maker's ``level_lots`` and ``max_inventory``, a value
    trader's ``max_lots``) scale as counts; an agent of your own is left as it is.

    An explicit book or population cannot be scaled (ConfigError unless ``scale == 1``). A
    scale that takes a value past what a scenario file may hold (20,000 accounts times 1e308)
    is a ConfigError naming the value, not an overflow.
    """
    _check_scale(scale)
    if scale == 1:
        return s
    books = [c.book for c in s.instruments] or [s.book]
    if any(isinstance(b, ExplicitBook) for b in books) or isinstance(s.population,
                                                                    ExplicitPopulation):
        raise ConfigError("--scale needs a synthetic book and population; this scenario gives "
                          "an explicit one")
    population, liquidity = s.population, s.liquidity

    def sc(table: str, key: str, n: int) -> int:
        return _scaled(table, key, n, scale, schema(type(getattr(s, table)))[key])

    def book_of(book, table="book"):
        return replace(book, touch_qty=_scaled_depth(book.touch_qty, scale,
                                                     schema(DepthProfile)["touch_qty"], table))

    def shock_of(shock, table="shock"):
        return replace(shock, sell=_scaled(table, "sell", shock.sell, scale, _ORDER_LOTS),
                       buy=_scaled(table, "buy", shock.buy, scale, _ORDER_LOTS),
                       orders=tuple((when, side, _scaled(table, "orders", lots, scale,
                                                         _ORDER_LOTS))
                                    for when, side, lots in shock.orders))

    return replace(
        s,
        book=s.book if s.instruments else book_of(s.book),
        population=replace(population, count=sc("population", "count", population.count)),
        liquidity=replace(liquidity, rate=sc("liquidity", "rate", liquidity.rate),
                          recovery_rate=sc("liquidity", "recovery_rate",
                                           liquidity.recovery_rate)),
        shock=shock_of(s.shock),
        instruments=tuple(replace(c, book=book_of(c.book, f"instruments[{i}].book"),
                                  shock=shock_of(c.shock, f"instruments[{i}].shock"))
                          for i, c in enumerate(s.instruments)),
        rules=scale_rules(s.rules, scale),
        agents=tuple(_scaled_agent(agent, scale, i) for i, agent in enumerate(s.agents)),
        flows=tuple(_scaled_flow(f, scale) for f in s.flows),
    )


def _scaled_flow(flow, scale: float):
    """A flow with its orders' mean size times ``scale`` (at least one lot): the book it
    trades against is scaled so; its rates are not."""
    from .flows import HawkesFlow

    spec = flow if isinstance(flow, Flow) else Flow(flow)
    model = spec.model
    names = ("size",) if isinstance(model, HawkesFlow) else ("limit_size", "market_size")

    def scaled(size):
        # a fixed size stays a whole number of lots
        mean = size.mean_lots * scale
        return replace(size, mean_lots=float(max(1, round(mean))) if size.dist == "fixed"
                       else max(1.0, mean))

    return replace(spec, model=replace(model, **{name: scaled(getattr(model, name))
                                                 for name in names}))


def _scaled_agent(agent, scale: float, i: int):
    """A built-in agent's sizes (``SCALED_LOTS`` of its class) scaled as counts are; an agent
    of your own is left as it is."""
    keys = getattr(type(agent), "SCALED_LOTS", ())
    return replace(agent, **{key: _scaled(f"agents[{i}]", key, getattr(agent, key), scale,
                                          _ORDER_LOTS) for key in keys}) if keys else agent


def scale_rules(rules: Rules, scale: float) -> Rules:
    """``rules`` with the per-round cap (quote units) scaled as :func:`scale_scenario` scales
    it; the other rules are rates or money, which do not scale."""
    _check_scale(scale)
    if scale == 1 or rules.round_cap is None:
        return rules
    return replace(rules, round_cap=_scaled("rules", "round_cap", rules.round_cap, scale,
                                            schema(Rules)["round_cap"]))


_ORDER_LOTS = integer(1, INT64_MAX)  # the lots of one [shock] order


def _check_scale(scale) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0 \
            or not math.isfinite(scale):
        raise ConfigError(f"scale must be a positive number, got {scale!r}")


def _scaled_depth(touch_qty, scale: float, check, table: str = "book"):
    """``touch_qty * scale``, not rounded to a lot (the book rounds the whole depth curve,
    see DepthProfile), but to 12 significant digits, so that 60 x 0.07 is 4.2 and not
    4.2000000000000002; a whole result is an int. ConfigError if ``check`` refuses it."""
    scaled = touch_qty * scale
    value = float(f"{scaled:.12g}") if math.isfinite(scaled) else scaled
    try:
        return check(value)
    except Bad as bad:
        raise ConfigError(f"scale {scale:g} makes [{table}] touch_qty {touch_qty:,} x "
                          f"{scale:g} = {scaled:g}, which {bad.problem}") from None


def _scaled(table: str, key: str, n: int, scale: float, check) -> int:
    """``max(1, round(n * scale))``, 0 for 0; ConfigError if ``check`` (the setting's
    converter) refuses it."""
    if not n:
        return 0
    scaled = n * scale
    if not scaled < 2**63:  # also inf
        raise ConfigError(f"scale {scale:g} makes [{table}] {key} {n:,} x {scale:g} = "
                          f"{scaled:g}, more than an int64 holds")
    value = max(1, round(scaled))
    try:
        check(value)
    except Bad as bad:
        raise ConfigError(f"scale {scale:g} makes [{table}] {key} {n:,} x {scale:g} = "
                          f"{value:,}, which {bad.problem}") from None
    return value


def quote_unit(scenario: Scenario) -> Decimal:
    """The quote currency one quote unit of ``scenario`` is worth: its ``quote_unit`` setting,
    or ``tick_size * lot_size`` when that is None (exact). ValueError if they do not fit (one
    lot must be worth a whole number of quote units per tick)."""
    unit, _ = _units(scenario)
    return unit


def _units(scenario: Scenario) -> tuple[Decimal, int]:
    """(quote unit, k: the quote units one lot is worth per tick; of instrument 0 in a
    scenario with instruments; inverse: the coin unit and k of V = floor(k q / p))."""
    first = scenario.instruments[0] if scenario.instruments else scenario
    return contract_units(scenario, first)


def contract_units(scenario: Scenario, contract) -> tuple[Decimal, int]:
    """(quote unit, k) of one contract of ``scenario`` (a Contract, or the scenario itself for
    its one instrument), linear or inverse as the scenario's settlement says."""
    tick, lot = Decimal(contract.tick_size), Decimal(contract.lot_size)
    if scenario.settlement == Settlement.INVERSE:
        value = getattr(contract, "contract_value", None) or scenario.contract_value
        return inverse_unit_value(tick, lot, scenario.quote_unit, value)
    if scenario.contract_value is not None or getattr(contract, "contract_value", None):
        raise ValueError("contract_value is the size of an inverse contract: it needs "
                         "settlement INVERSE")
    return unit_value(tick, lot, scenario.quote_unit)


# ------------------------------------------------------------------------------ results
@dataclass
class Result:
    """What one run produced: per-step series, liquidation records, trades and a summary.

    ``record_time`` (int64 ms, one per row of ``forced_orders``) is when the liquidator's
    round made the record, and ``record_step`` the row of ``series`` that counts it (the first
    at or after it); a record's ``round`` is its round within a cascade, which restarts at 0
    when the queue empties, so it is not the step. ``trade_time`` (ms) is when each of
    ``trades`` settled (trades before the run, the book's first print, at 0). ``funding``
    holds the run's funding payments (``Scenario.funding``).

    ``book_before`` and ``book_after`` are the first instrument's book
    (:class:`orderbook.ladder.BookSnapshot`: time, trades settled by then, every level) just
    before step 0's shock and just after the last liquidator round that closed a position
    (None without liquidations); ``book_frames`` its top levels through the run when
    ``run(..., book_levels=N)`` asked for them (:class:`orderbook.ladder.BookFrames`).
    """

    scenario: Scenario
    series: np.ndarray
    forced_orders: np.ndarray
    trades: np.ndarray
    summary: dict
    accounts: int
    record_step: np.ndarray
    #: a scenario with instruments: each instrument's series and trades by name (``series``
    #: and ``trades`` are instrument 0's); empty otherwise
    instrument_series: dict = field(default_factory=dict)
    instrument_trades: dict = field(default_factory=dict)
    record_time: np.ndarray | None = None
    trade_time: np.ndarray | None = None
    instrument_trade_time: dict = field(default_factory=dict)
    #: the run's funding payments (FUNDING_DTYPE; empty without Scenario.funding)
    funding: np.ndarray | None = None
    book_before: BookSnapshot | None = None
    book_after: BookSnapshot | None = None
    book_frames: BookFrames | None = None

    def __post_init__(self):
        if self.record_time is None:   # a run in steps: each record at its step's start
            self.record_time = self.record_step * self.scenario.clock.step_ms

    def __repr__(self) -> str:
        # the arrays and the scenario would print tens of kilobytes: the headline instead
        sm = self.summary
        return (f"Result({self.accounts:,} accounts, {len(self.series)} steps of "
                f"{self.scenario.clock.step_ms:,} ms, {sm.get('liquidated_accounts', 0):,} "
                f"liquidated, {len(self.forced_orders):,} forced-order records, "
                f"{len(self.trades):,} trades, max drawdown "
                f"{sm.get('max_drawdown_pct', 0.0):.2f} %)")

    def to_pandas(self):
        """(series, forced_orders, trades) as pandas DataFrames, readable (needs the pandas
        extra; :mod:`orderbook.views`, docs/money.md).

        Every column of the arrays is kept, prices in ticks and money in integer quote units;
        ``side``, ``kind`` and ``reason`` are given by name (Categoricals of the enums'
        member names), each money column is followed by a ``<column>_quote`` twin (quote
        currency, an inverse venue's coin; exact Decimals) and each price column by a
        ``<column>_px`` twin (price units: ticks x tick size; exact Decimals). The forced
        orders gain ``avg_price_px`` and ``slippage_cost`` (quote units, each record's part of
        the summary's ``forced_slippage``) with its ``_quote``; the trades their ``notional``
        (quote units) and ``notional_quote``. With instruments, series and trades are
        instrument 0's, as ``series`` and ``trades`` are.
        """
        from .views import forced_frame, series_frame, trades_frame

        unit, ticks, ks, inverse = self._units()
        return (series_frame(self.series, unit, ticks[0]),
                forced_frame(self.forced_orders, unit, ticks, ks, inverse),
                trades_frame(self.trades, unit, ticks[0], ks[0], inverse))

    def forced_fills(self) -> np.ndarray:
        """The price levels each forced order took: one row per (forced order, level), in the
        order the liquidator sent them and each walked its levels (``views.FORCED_FILL_DTYPE``:
        the record's row in ``forced_orders``, order id, owner, instrument, side, the level's
        price in ticks, lots, notional in quote units, makers traded with). Each record's lots
        and notional are the sums of its rows. Derived from the trade log
        (:func:`orderbook.views.forced_fills`); O(trades log trades).

        Examples
        --------
        Record 10 of the built-in scenario at 5 % closes account 227's 59 lots through seven
        levels, 50 ticks apart:

        >>> from orderbook import default_scenario, run
        >>> result = run(default_scenario(scale=0.05), counterfactual=False)
        >>> fills = result.forced_fills()
        >>> mine = fills[fills["record"] == 10]
        >>> mine[["price", "lots"]].tolist()[:3], int(mine["lots"].sum())
        ([(988300, 4), (988250, 7), (988200, 13)], 59)
        >>> int(mine["notional"].sum()) == int(result.forced_orders["notional"][10])
        True
        """
        from .views import forced_fills

        _, _, ks, inverse = self._units()
        trades = list(self.instrument_trades.values()) or [self.trades]
        return forced_fills(self.forced_orders, trades, ks, inverse)

    def forced_fills_frame(self):
        """:meth:`forced_fills` as a pandas DataFrame (needs the pandas extra): ``side`` by
        name, ``price_px`` in price units, ``notional_quote`` in quote currency."""
        from .views import fills_frame

        unit, ticks, _, _ = self._units()
        return fills_frame(self.forced_fills(), unit, ticks)

    def _units(self) -> tuple:
        """(quote unit, tick size of each instrument (Decimal, price units per tick), k of
        each instrument, whether the venue is inverse)."""
        contracts = self.scenario.instruments or (self.scenario,)
        return (quote_unit(self.scenario), [Decimal(c.tick_size) for c in contracts],
                [contract_units(self.scenario, c)[1] for c in contracts],
                self.scenario.settlement == Settlement.INVERSE)

    def to_csv(self, directory) -> list:
        """Write series.csv, forced_orders.csv, trades.csv and summary.csv; return the paths."""
        return write_csv(directory, self._tables(), self.summary)

    def to_parquet(self, directory) -> list:
        """Write the three tables as Parquet files (needs pyarrow); return the paths."""
        return write_parquet(directory, self._tables())

    def _tables(self) -> dict:
        return {"series": self.series, "forced_orders": self.forced_orders,
                "trades": self.trades}

    def plot(self, path) -> None:
        """Draw the run on one figure and save it to ``path`` (needs matplotlib)."""
        from .plot import plot_result

        plot_result(self, path)

    def plot_ladder(self, path) -> None:
        """Draw the book's depth ladder before the shock and after the cascade beside the
        price path and save it as PNG to ``path`` (:func:`orderbook.plot.plot_ladder`)."""
        from .plot import plot_ladder

        plot_ladder(self, path)

    def animate(self, path, *, fps: float = 4.0) -> None:
        """Animate the cascade, the ladder and the price frame by frame, as GIF or MP4
        (:func:`orderbook.plot.animate_cascade`; needs ``run(..., book_levels=N)``)."""
        from .plot import animate_cascade

        animate_cascade(self, path, fps=fps)


def _flows(market: Market) -> list:
    """The scenario's flows as :class:`Flow` s, each on a perpetual of the built venue."""
    flows = [f if isinstance(f, Flow) else Flow(f) for f in market.scenario.flows]
    for n, f in enumerate(flows):
        if f.instrument >= len(market.contracts) or market.engine.instruments[
                f.instrument].spot:
            raise ConfigError(f"flows[{n}] instrument = {f.instrument}: not a perpetual of "
                              f"this scenario (it has {len(market.contracts)} instruments; "
                              f"flows on spot books are not supported)")
    return flows


def _lane(market: Market, steps: int, liquidator: bool, agents=(), **market_run):
    """A Timeline for ``market`` with copies of ``agents`` and the scenario's flows (a venue of
    a market run with ``market_run``: the schedule, venue name, index feeds and the world; a
    one-venue run's book tape)."""
    from ._timeline import Timeline, flow_seats
    from .agents import seats

    seated = seats(copy.deepcopy(list(agents)))
    return Timeline(market, steps, liquidator, seated,
                    flow_seats(_flows(market), market.scenario.seed), **market_run)


def _simulate(market: Market, steps: int, liquidator: bool, agents=(), tape=None,
              on_step=None):
    """Run ``market`` on its scenario's clock with copies of ``agents`` and the scenario's
    flows (and ``tape`` recording its first book; ``on_step(steps done)`` after each step);
    return (series, one per instrument in an (instruments, steps) array, the run's
    forced-order records, the time of each in ms, the Timeline)."""
    timeline = _lane(market, steps, liquidator, agents, tape=tape)
    timeline.on_step = on_step
    series, records, times = timeline.run()
    return series, records, times, timeline


def timeline_figures(scenario: Scenario, market: Market, timeline) -> dict:
    """What a run's clock added to its summary: the agents' and flows' end states and the
    funding paid (each only when the run had them)."""
    out: dict = {}
    if timeline.seats:
        out["agents"] = agent_summary(market.engine, timeline.seats)
    if timeline.flows:
        out["flows"] = [seat.summary(market.engine) for seat in timeline.flows]
    if scenario.funding.venue is not None:
        # what funding moved in the run (docs/funding.md): payments, and the total the paying
        # sides paid (quote units; received + to the fund)
        funding = timeline.funding()
        out["funding_payments"] = len(funding)
        out["funding_paid"] = int(funding["paid"].sum()) if len(funding) else 0
    return out


def start_mids(market: Market) -> list:
    """Each instrument's mid of a built venue before the shock (ticks; its profile's mid when a
    side is empty)."""
    return [market.engine.books[c.index].mid() or float(c.mid0) for c in market.contracts]


def venue_summary(scenario: Scenario, market: Market, every: np.ndarray, records: np.ndarray,
                  starts: list, cf_all: np.ndarray | None) -> dict:
    """The summary of one built venue after a run: :func:`~orderbook.metrics.summarize` over
    instrument 0's series and the run's ``records`` (FORCED_DTYPE), plus with instruments each
    one's figures and the accounts liquidated without holding a shocked one. ``every``: the
    (instruments, steps) SERIES_DTYPE array; ``starts``: each instrument's mid before the shock
    (ticks); ``cf_all``: the same series without liquidations, or None (no amplification)."""
    start = starts[0]
    series = every[0]
    cf_drawdown = None if cf_all is None else drawdown(cf_all[0], start)[0]
    eng = market.engine
    # Every account at the final mark, so that a loss still open (negative equity, no record
    # yet) shows in the summary; the fund's own balance is insurance_fund_end.
    end_accounts = eng.equities()
    end_accounts = end_accounts[end_accounts["owner"] != INSURANCE_FUND]
    contracts = scenario.instruments or (scenario,)
    # the fund's balance after every liquidation round and at every step: where its minimum is
    balances = np.concatenate([eng.fund_history()["balance"],
                               every["insurance_fund"].ravel()]).astype(np.int64)
    summary = summarize(series, records, accounts=market.population, start_mid=start,
                        insurance_fund=eng.insurance_fund, queue_left=len(eng.queue()),
                        quote_unit=quote_unit(scenario), counterfactual_drawdown=cf_drawdown,
                        end_accounts=end_accounts, insurance_fund_start=market.fund_start,
                        fund_balances=balances,
                        ks=[contract_units(scenario, c)[1] for c in contracts],
                        inverse=scenario.settlement == Settlement.INVERSE,
                        start_equity=market.start_equity,
                        tick_size=Decimal(contracts[0].tick_size))
    # what the amounts are in: quote currency, or an inverse venue's coin (the ``*_quote``
    # figures are then amounts of the coin)
    summary["money"] = "coin" if scenario.settlement == Settlement.INVERSE else "quote"
    if scenario.instruments:
        shocked = [c.index for c in market.contracts if c.shock != Shock() or c.index_path]
        if 0 < len(shocked) < len(market.contracts):
            # The contagion the issue is about: accounts liquidated that never held a shocked
            # instrument (left out when every instrument, or none, is shocked).
            exposed = set().union(*(market.holders[i] for i in shocked))
            liquidated = set(
                records["owner"][np.isin(records["kind"], LIQUIDATION_KINDS)].tolist())
            summary["liquidated_accounts_unshocked"] = len(
                liquidated - exposed - {INSURANCE_FUND})
        summary.update(instrument_figures(
            [c.name for c in scenario.instruments], every, records, starts,
            None if cf_all is None else [drawdown(cf_all[i], starts[i])[0]
                                         for i in range(len(starts))]))
        add_twins(summary, summary["quote_unit"])   # each instrument's liquidated notional
    return summary


def run(scenario: Scenario, *, counterfactual: bool = True, agents=(),
        book_levels: int | None = None, progress=None) -> Result:
    """Run a scenario; with ``counterfactual`` also run it with the liquidator off, from the same
    starting state, to compute the amplification (full move / move without liquidations). A run
    with the liquidator off (``rules.liquidator = false``) is its own counterfactual: its
    amplification is 1.0.

    ``agents`` (:class:`~orderbook.agents.Agent` objects) act besides the scenario's own
    (``Scenario.agents``), in the counterfactual too; each run works on copies of them.

    The result keeps the first instrument's book before the shock and after the cascade
    (``Result.book_before``, ``book_after``: every level). ``book_levels`` = N also keeps its
    top N levels a side at every step's end and around each liquidator round that closed
    positions (``Result.book_frames``, :class:`orderbook.ladder.BookFrames`, 32 N bytes a
    frame), which :func:`orderbook.plot.animate_cascade` draws.

    ``progress(done, total)`` is called after each step, in steps: ``total`` is ``steps``, or
    twice that when the counterfactual runs (its steps come first); ``progress=True`` draws a
    bar on stderr (a terminal only), None (the default) reports nothing.

    Examples
    --------
    The built-in scenario at 5 % of its size (1,000 accounts):

    >>> from orderbook import default_scenario, run
    >>> result = run(default_scenario(scale=0.05))
    >>> result.summary["liquidated_accounts"], result.summary["generations"]
    (85, 8)
    >>> len(result.forced_orders) == len(result.record_step)
    True
    """
    if scenario.steps < 1:
        raise ValueError(f"steps must be >= 1, got {scenario.steps}")
    with reporting(progress, run_parts(scenario, counterfactual), "steps") as report:
        return _run(scenario, counterfactual, agents, book_levels, report)


def run_parts(scenario: Scenario, counterfactual: bool = True) -> list[tuple[str, int]]:
    """The runs :func:`run` makes, in order, as (label, steps) pairs: the counterfactual
    (when it runs) then the run; what its ``progress`` counts."""
    twin = counterfactual and scenario.rules.liquidator
    return [("counterfactual", scenario.steps)] * twin + [("run", scenario.steps)]


def _run(scenario: Scenario, counterfactual: bool, agents, book_levels, report) -> Result:
    from ._market import Market  # the machinery imports the settings from here

    started = time.perf_counter()
    parts = run_parts(scenario, counterfactual)
    twin, total = len(parts) == 2, sum(n for _, n in parts)
    log.info("run: %s accounts, %s steps%s", f"{_accounts(scenario):,}", f"{scenario.steps:,}",
             ", and its counterfactual" if twin else "")
    agents = tuple(scenario.agents) + tuple(agents)
    market = Market(scenario)
    off = market.copy() if twin else None
    tape = BookTape(market.engine, book_levels)
    starts = start_mids(market)
    # the static answer from the starting state alone, to set beside what the run does
    forecast = cascade_forecast(market)
    log.debug("run: market built and forecast in %.2f s", time.perf_counter() - started)
    cf_all = None
    if off is not None:
        cf_all = _simulate(off, scenario.steps, False, agents,
                           on_step=_counting(report, 0, total))[0]
        log.info("run: counterfactual done in %.2f s", time.perf_counter() - started)
    every, records, times, timeline = _simulate(
        market, scenario.steps, scenario.rules.liquidator, agents, tape,
        on_step=_counting(report, total - scenario.steps, total))
    step_ms = scenario.clock.step_ms
    # the row of the series whose liquidated_notional counts the record: a round between two
    # rows shows in the later one
    steps = -(-times // step_ms)
    if not scenario.rules.liquidator:
        # With the liquidator off the run is its own counterfactual: amplification 1 by
        # definition, at no cost (no second run), whatever ``counterfactual`` says.
        cf_all = every
    series = every[0]
    summary = venue_summary(scenario, market, every, records, starts, cf_all)
    summary["static_mark"] = static_mark(scenario)
    if summary["static_mark"]:
        warnings.warn(STATIC_MARK_NOTE, InertSettingWarning, stacklevel=3)
    summary["inert_settings"] = inert_settings(scenario)
    for text in summary["inert_settings"]:
        warnings.warn(text, InertSettingWarning, stacklevel=3)
    note = unresolved_note(summary)
    if note is not None:
        warnings.warn(f"run ended unresolved: {note}", UnresolvedAccountsWarning, stacklevel=3)
    summary.update(forecast.summary())
    summary.update(timeline_figures(scenario, market, timeline))
    # the forecast's and funding's figures in quote currency and price units too
    add_twins(summary, quote_unit(scenario), Decimal((scenario.instruments or (scenario,))[0]
                                                     .tick_size))
    names = [c.name for c in scenario.instruments]
    trade_times = timeline.trade_times()
    log.info("run: done in %.2f s: %s accounts liquidated, %s forced orders",
             time.perf_counter() - started, f"{summary['liquidated_accounts']:,}",
             f"{summary['forced_orders']:,}")
    return Result(scenario, series, records, market.engine.trades(), summary, market.population,
                  steps, {name: every[i] for i, name in enumerate(names)},
                  {name: market.engine.trades(i) for i, name in enumerate(names)},
                  record_time=times, trade_time=trade_times[0],
                  instrument_trade_time={name: trade_times[i] for i, name in enumerate(names)},
                  funding=timeline.funding(), book_before=tape.before, book_after=tape.after,
                  book_frames=tape.frames())


def _accounts(scenario: Scenario) -> int:
    pop = scenario.population
    return pop.count if hasattr(pop, "count") else len(pop.side)


def _counting(report, before: int, total: int):
    """An ``on_step`` for a Timeline that reports ``before`` + its steps done out of ``total``
    to ``report`` (None for None: the timeline then checks nothing more)."""
    if report is None:
        return None
    return lambda done, _total=None: report(before + done, total)


@dataclass
class Contagion:
    """Liquidations on each instrument (columns) caused by each origin's shock alone (rows).

    ``notional[i][j]``: quote units liquidated on ``instruments[j]`` in a run of the scenario in
    which only ``origins[i]`` is shocked (the other instruments' shocks removed); ``accounts``
    likewise counts accounts liquidated there. Rows do not add up to the run with every shock:
    waves interact (a fall on one instrument makes another's shock cut deeper).
    """

    origins: list
    instruments: list
    notional: list
    accounts: list
    quote_unit: Decimal

    @property
    def table(self) -> list[dict]:
        """One row per origin: the origin and, per instrument, its notional (quote units)."""
        return [{"origin": origin, **dict(zip(self.instruments, row, strict=True))}
                for origin, row in zip(self.origins, self.notional, strict=True)]


def contagion_origins(scenario: Scenario) -> list[int]:
    """The instruments :func:`contagion` shocks one at a time (their indexes); ValueError when
    it cannot (see there)."""
    if not scenario.instruments:
        raise ValueError("contagion needs a scenario with instruments")
    if scenario.index_model is not None:
        raise ValueError("an index_model moves every instrument together: its waves have no "
                         "single origin")
    origins = [i for i, c in enumerate(scenario.instruments) if c.shock != Shock()]
    if not origins:
        raise ValueError("contagion needs at least one shocked instrument")
    return origins


def contagion(scenario: Scenario) -> Contagion:
    """Run ``scenario`` once per shocked instrument with only that instrument's shock (and
    index path) and return what each wave liquidated on every instrument (:class:`Contagion`).
    ValueError for a scenario without instruments, without a shocked one, or with an
    ``index_model`` (which moves every instrument at once: no single origin)."""
    origins = contagion_origins(scenario)
    names = [c.name for c in scenario.instruments]
    notional, accounts = [], []
    for origin in origins:
        alone = replace(scenario, instruments=tuple(
            c if i == origin else replace(c, shock=Shock())
            for i, c in enumerate(scenario.instruments)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnresolvedAccountsWarning)
            summary = run(alone, counterfactual=False).summary
        notional.append([summary[f"instrument.{n}.liquidated_notional"] for n in names])
        accounts.append([summary[f"instrument.{n}.liquidated_accounts"] for n in names])
    return Contagion([names[i] for i in origins], names, notional, accounts,
                     quote_unit(scenario))


# ------------------------------------------------------------------------ compare, sweep
@dataclass
class Comparison:
    """Results of one scenario under several rule sets, and their summaries side by side."""

    results: dict

    @property
    def table(self) -> list[dict]:
        """One row per rule set: its name and its summary."""
        return [{"rules": name, **result.summary} for name, result in self.results.items()]

    def to_pandas(self):
        """The table as a pandas DataFrame (needs the pandas extra)."""
        import pandas as pd

        return pd.DataFrame(self.table).set_index("rules")

    def plot(self, path) -> None:
        """Draw every rule set's price path on one figure (needs matplotlib)."""
        from .plot import plot_comparison

        plot_comparison(self, path)


def compare(rule_sets: dict, scenario: Scenario | None = None, *,
            counterfactual: bool = True, progress=None) -> Comparison:
    """Run ``scenario`` under each ``{name: Rules}`` from the same starting state.

    ``progress(done, total)`` is called after each step of each run, in steps: ``total`` adds
    up every rule set's steps, twice for those whose counterfactual runs (see :func:`run`);
    ``progress=True`` draws a bar a rule set on stderr (a terminal only).

    Examples
    --------
    >>> from orderbook import Rules, Sizing, compare, default_scenario
    >>> rules = {"full": Rules(), "partial": Rules(sizing=Sizing.FRACTION)}
    >>> table = compare(rules, default_scenario(scale=0.05)).table
    >>> [(row["rules"], row["liquidated_accounts"], row["forced_orders"]) for row in table]
    [('full', 85, 85), ('partial', 80, 513)]
    """
    scenario = scenario or default_scenario()
    for name, rules in rule_sets.items():
        if not isinstance(rules, Rules):
            raise TypeError(f"rule_sets[{name!r}] must be a Rules, got {type(rules).__name__}")
    runs = {name: with_params(scenario, {"rules": rules}) for name, rules in rule_sets.items()}
    sizes = {name: sum(n for _, n in run_parts(s, counterfactual)) for name, s in runs.items()}
    results = {}
    with reporting(progress, list(sizes.items()), "steps") as report:
        done, total = 0, sum(sizes.values())
        for name, s in runs.items():
            log.info("compare: rule set %r", name)
            results[name] = run(s, counterfactual=counterfactual,
                                progress=_counting(report, done, total))
            done += sizes[name]
    return Comparison(results)


# ------------------------------------------------------------------------ dotted parameters
def coerce_param(scenario: Scenario, name: str, value):
    """Check and convert one value of the dotted parameter ``name`` of ``scenario``
    (``rules.sizing``, ``steps``, ...) the way a scenario file's value is: ``"FRACTION"``
    becomes ``Sizing.FRACTION``, ``[2, 50]`` becomes ``(2.0, 50.0)``, ``"none"`` (or None)
    becomes None. A table name takes a whole table of its class (``"rules"``: a Rules), as is.
    An older name of a key (``rules.limit`` for ``rules.limit_rule``) is accepted too.

    Raises orderbook.config's ConfigError (a ValueError) naming the parameter and the value:
    UnknownKeyError (also a KeyError) for an unknown name, ConfigTypeError (also a TypeError)
    for a value of the wrong type.
    """
    parts = name.split(".")
    if parts[0] == "instruments":
        return _coerce_contract_param(scenario, name, parts, value)
    if len(parts) == 1:
        if parts[0] in TABLES:
            if isinstance(value, _TABLE_CLASSES[name]):
                return value
            first = next(iter(schema(type(getattr(scenario, name)))))
            raise UnknownKeyError(f"parameter {name!r} is a table; name one of its keys, "
                                  f"e.g. {name}.{first}")
        return convert(None, parts[0], value, schema(Scenario))
    if len(parts) != 2 or parts[0] not in TABLES:
        raise UnknownKeyError(f"unknown parameter {name!r} (a top-level key such as steps, or "
                              f"table.key with table one of {', '.join(TABLES)})")
    table, key = parts
    cls = type(getattr(scenario, table))
    return convert(table, key, value, schema(cls), renamed(cls))


def _contract_at(scenario: Scenario, name: str, label: str) -> int:
    names = [c.name for c in scenario.instruments]
    if label not in names:
        raise UnknownKeyError(f"parameter {name!r}: the scenario has no instrument {label!r} "
                              f"(its instruments: {', '.join(names) or 'none'})")
    return names.index(label)


def _coerce_contract_param(scenario: Scenario, name: str, parts: list, value):
    """``instruments.<name>.<key>`` (a Contract key) or ``instruments.<name>.book.<key>`` /
    ``.shock.<key>`` (its book's or shock's)."""
    if len(parts) not in (3, 4):
        raise UnknownKeyError(f"unknown parameter {name!r} (instruments.NAME.key, or "
                              f"instruments.NAME.book.key / instruments.NAME.shock.key)")
    contract = scenario.instruments[_contract_at(scenario, name, parts[1])]
    if len(parts) == 3:
        return convert(f"instruments.{parts[1]}", parts[2], value, schema(Contract))
    if parts[2] not in ("book", "shock"):
        raise UnknownKeyError(f"unknown parameter {name!r}: an instrument's tables are book "
                              f"and shock")
    cls = type(getattr(contract, parts[2]))
    return convert(f"instruments.{parts[1]}.{parts[2]}", parts[3], value, schema(cls))


def with_params(scenario: Scenario, params: dict) -> Scenario:
    """A copy of ``scenario`` with dotted parameters set, e.g. ``{"rules.band_ppm": 20_000}``
    or ``{"instruments.BTC.shock.sell": 5_000}``; each value is checked and converted by
    :func:`coerce_param` (ConfigError if bad)."""
    for name, value in params.items():
        value = coerce_param(scenario, name, value)
        if name.startswith("instruments."):
            parts = name.split(".")
            at = _contract_at(scenario, name, parts[1])
            contract = scenario.instruments[at]
            if len(parts) == 3:
                contract = replace(contract, **{parts[2]: value})
            else:
                contract = replace(contract, **{parts[2]: replace(getattr(contract, parts[2]),
                                                                  **{parts[3]: value})})
            scenario = replace(scenario, instruments=scenario.instruments[:at] + (contract,)
                               + scenario.instruments[at + 1:])
            continue
        table, _, key = name.rpartition(".")
        if table:
            key = renamed(type(getattr(scenario, table))).get(key, key)
            value = replace(getattr(scenario, table), **{key: value})
        scenario = replace(scenario, **{table or key: value})
    return scenario


def _run_point(args):
    scenario, params, counterfactual = args
    # A worker's warnings would be lost (or printed by another process): sweep warns for each
    # row in the caller's process instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)
        warnings.simplefilter("ignore", InertSettingWarning)
        summary = run(with_params(scenario, params), counterfactual=counterfactual).summary
    return {**params, **summary}


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def worker_count(requested: int | None, tasks: int) -> int:
    """Worker processes for ``tasks`` runs: ``requested`` (default: one per usable CPU), capped
    at the number of runs and at :func:`usable_cpus`. More processes than CPUs only share them
    (and each holds a scenario in memory), and more than runs sit idle. ValueError unless
    ``requested`` is None or an int >= 1."""
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int)
                                  or requested < 1):
        raise ValueError(f"workers must be an integer >= 1, got {requested!r}")
    cap = max(1, min(usable_cpus(), tasks))
    return cap if requested is None else min(requested, cap)


def sweep(grid: dict, scenario: Scenario | None = None, *, executor: Executor | None = None,
          counterfactual: bool = True, progress=None, workers: int | None = None) -> list[dict]:
    """Run every combination of ``grid`` ({dotted parameter: [values]}); one summary row each,
    which starts with the parameters' values as :func:`coerce_param` converts them.

    Runs go through ``executor`` (any ``concurrent.futures.Executor``: a process pool by default,
    or ``dask.distributed.Client(...).get_executor()`` for a cluster); rows come back in grid
    order whatever the executor. ``progress(done, total)`` is called after each run, in runs
    (``total``: the grid's size), in grid order; ``progress=True`` draws a bar on stderr. A
    run that ends with accounts unresolved warns (UnresolvedAccountsWarning) here, in the
    caller's process, whichever process ran it.
    ``workers`` sizes the default pool (default one per usable CPU); it is capped by
    :func:`worker_count` at the grid size and the CPU count, with a RuntimeWarning when the
    request was larger. Give ``executor`` or ``workers``, not both.

    Examples
    --------
    Under a spawn or forkserver start method, call it from an ``if __name__ == "__main__":``
    block, as for any process pool.

    >>> from orderbook import default_scenario, sweep
    >>> rows = sweep({"rules.sizing": ["FULL", "FRACTION"]}, default_scenario(scale=0.05),
    ...              workers=1)
    >>> [(row["rules.sizing"].name, row["forced_orders"]) for row in rows]
    [('FULL', 85), ('FRACTION', 513)]
    """
    if executor is not None and workers is not None:
        raise TypeError("give executor or workers, not both (size your executor yourself)")
    scenario = scenario or default_scenario()
    # Checked here, in this process, so a bad name or value fails before any run starts.
    grid = {name: [coerce_param(scenario, name, v) for v in values]
            for name, values in grid.items()}
    names = list(grid)
    points = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    tasks = [(scenario, point, counterfactual) for point in points]
    with reporting(progress, [("sweep", len(tasks))], "runs") as report:
        rows = list(_map_runs(_run_point, tasks, executor=executor, workers=workers,
                              progress=report))
    for i, row in enumerate(rows):
        note = unresolved_note(row)
        point = _point_text(points[i])
        if row.get("static_mark"):
            warnings.warn(f"sweep run {point}: {STATIC_MARK_NOTE}", InertSettingWarning,
                          stacklevel=2)
        # the swept settings whatever their values, and the others set away from defaults
        swept = inert_settings(with_params(scenario, points[i]), names)
        for text in dict.fromkeys(swept + tuple(row.get("inert_settings", ()))):
            warnings.warn(f"sweep run {point}: {text}", InertSettingWarning, stacklevel=2)
        if note is not None:
            warnings.warn(f"sweep run {point} ended unresolved: {note}",
                          UnresolvedAccountsWarning, stacklevel=2)
    return rows


def _point_text(point: dict) -> str:
    """A grid point as ``name=value, ...`` (enums by name) for warnings and errors."""
    return ", ".join(f"{name}={v.name if isinstance(v, IntEnum) else repr(v)}"
                     for name, v in point.items())


#: What to do when a process pool's workers re-run the caller's script (docs: the README).
_GUARD_NOTE = ("under the spawn and forkserver start methods (macOS, Windows, and Linux from "
               "Python 3.14) each worker imports your script, so a sweep at its top level "
               "runs again in every worker; call it from inside an `if __name__ == "
               "\"__main__\":` block, or pass executor=orderbook.SerialExecutor() to run "
               "in this process")


def _map_runs(fn, tasks: list, *, executor: Executor | None = None, workers: int | None = None,
             progress=None):
    """Yield ``fn(task)`` for each of ``tasks``, in their order, run through ``executor`` (a
    process pool of :func:`worker_count` ``workers`` by default, shut down at the end); call
    ``progress(done, total)`` after each. The machinery of :func:`sweep`, shared with
    :func:`orderbook.market_sweep.sweep`; ``fn`` must be a module-level function (a pool
    pickles it). Warns (RuntimeWarning, at its caller's caller) when ``workers`` is capped."""
    if executor is not None and workers is not None:
        raise TypeError("give executor or workers, not both (size your executor yourself)")
    own = executor is None
    if own:
        count = worker_count(workers, len(tasks))
        if workers is not None and count < workers:
            log.info("sweep: %s workers requested, using %s", workers, count)
            warnings.warn(f"sweep: {workers} workers requested, using {count} (grid of "
                          f"{len(tasks)} runs, {usable_cpus()} usable CPUs)", RuntimeWarning,
                          stacklevel=3)
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # a spawn or forkserver worker importing a script that sweeps at its top level
            raise RuntimeError(_GUARD_NOTE)
    pool = ProcessPoolExecutor(max_workers=count) if own else executor
    log.info("sweep: %s runs on %s", f"{len(tasks):,}",
             f"a process pool of {count} workers ({multiprocessing.get_start_method()})"
             if own else type(executor).__name__)
    try:
        # A SerialExecutor runs each task as it is submitted: submit one at a time, so that
        # progress reports each run as it ends rather than all of them at the end.
        futures = ((pool.submit(fn, task) for task in tasks) if isinstance(pool, SerialExecutor)
                   else [pool.submit(fn, task) for task in tasks])
        for i, future in enumerate(futures):
            try:
                yield future.result()
            except BrokenProcessPool as exc:
                if own and multiprocessing.get_start_method() != "fork":
                    raise RuntimeError(f"the sweep's worker processes died (start method "
                                       f"{multiprocessing.get_start_method()!r}): "
                                       f"{_GUARD_NOTE}") from exc
                raise
            log.debug("sweep: run %s of %s done", i + 1, len(tasks))
            if progress is not None:
                progress(i + 1, len(tasks))
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
