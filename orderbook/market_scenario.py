"""Scenarios of several venues tied by indexes and arbitrageurs (issue #13, docs/market_wide.md
section 5): plain data, read from TOML files with ``[[venues]]``, run step by step.

A :class:`MarketScenario` holds named :class:`Venue` s, each a one-venue
:class:`~orderbook.scenario.Scenario` (its book or instruments, population, liquidity, shock
and rules, a venue preset among them) built and stepped by the same machinery as a one-venue
run; :class:`IndexSpec` s computed from some venues' prices that feed the marks of others
(:meth:`orderbook.Market.add_index`); and :class:`ArbitrageurSpec` s trading between venues
(:class:`orderbook.Arbitrageur`). :func:`run` returns a :class:`MarketResult`: each venue's
:class:`~orderbook.scenario.Result` (series, forced orders, summary with per-instrument
figures), each index over the steps, and what each arbitrageur did.

A file (every key it leaves out in a venue keeps the built-in scenario's value, as in a
one-venue file; ``orderbook.config``)::

    steps = 60
    seed = 1                  # venue i draws from seed + i unless it gives its own seed

    [[venues]]
    name = "A"
    [venues.book]             # or [[venues.instruments]], each with its book and shock
    mid = 1_000_000
    [venues.population]
    count = 1_000
    [venues.shock]
    sell = 3_000
    [venues.rules]
    venue = "binance"         # a preset, as in [rules]
    mark_rule = "LAST"

    [[indexes]]
    name = "BTC"
    legs = [{venue = "A", weight = 2}, {venue = "B", instrument = "main", weight = 1}]
    source = "last"           # or "mid"
    rule = "bitmex"           # a preset of orderbook.price_index.RULES, then its fields:
    exclude_ppm = 250_000     # aggregate, exclude_ppm, clamp_ppm, readmit_ppm, ...
    feeds = [{venue = "B"}]   # default: every leg whose mark rule follows an index

    [[arbitrageurs]]
    legs = [{venue = "A"}, {venue = "B"}]
    capital = 2_000_000_000   # quote units on each venue, or a table {A = ..., B = ...}
    threshold_ppm = 500
    max_lots = 300

A leg's ``instrument`` is a name or an index (default 0; a one-instrument venue's is
``"main"``). Each step: every venue's shock, the indexes from the books, one liquidation round
on every venue (in the order given), the indexes again, every arbitrageur, then every venue's
value traders and liquidity refill. Deterministic for the venues' seeds.

Each venue may have a ``[venues.clock]`` (its liquidator's cadence or blocks; the venues'
``step_ms`` must agree), ``[[venues.agents]]``, ``[[venues.flows]]`` and ``[venues.funding]``:
the venues then run on one clock (``orderbook._timeline.MarketTimeline``, docs/time.md "A
market of several venues"), the step above becoming a market round at every time a venue's
liquidator is due. ``run(ms, agents={venue: [agent, ...]})`` adds agents to venues.

:func:`sweep` runs a market over a grid of dotted parameters (``venues.B.rules.mark_rule``,
``indexes.BTC.exclude_ppm``, ``arbitrageurs.0.capital``, ``steps``, ``seed``;
:func:`with_params`), in processes; :func:`compare` runs it under several rule sets applied
to one venue or to every venue with accounts. Those live in :mod:`orderbook.market_sweep` and
are importable from here too.

Units: prices in ticks (an index's or an arbitrageur's legs share a tick size), sizes in lots,
money in each venue's quote units, rates in ppm, time in steps of the venues' ``step_ms``.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import numpy as np

from ._progress import reporting
from ._settings import (
    Bad,
    ConfigError,
    ConfigTypeError,
    UnknownKeyError,
    choice,
    convert,
    enum_name,
    integer,
    ppm,
    schema,
    show,
    type_name,
)
from .events import INT64_MAX, MarkRule
from .market import PRICE_SOURCES, Arbitrageur, Market
from .metrics import add_twins, instrument_figures, unresolved_note
from .price_index import RULES as INDEX_RULES
from .price_index import Aggregate, IndexRule
from .scenario import (
    STATIC_MARK_NOTE,
    TABLES,
    ExplicitPopulation,
    InertSettingWarning,
    Result,
    Scenario,
    UnresolvedAccountsWarning,
    default_scenario,
    inert_settings,
    quote_unit,
    scale_scenario,
    start_mids,
    static_mark,
    venue_summary,
)

log = logging.getLogger(__name__)

__all__ = ["Venue", "Leg", "IndexSpec", "ArbitrageurSpec", "MarketScenario", "MarketResult",
           "run", "market_from_dict", "loads_market", "load_market", "is_market_file",
           "scale_market", "venue_instruments", "ARBITRAGEUR_OWNER"]
#: Names that live in orderbook.market_sweep, importable from here too (module __getattr__).
_SWEEP_NAMES = ("with_params", "coerce_param", "sweep", "compare", "MarketComparison")

#: The account id of the first arbitrageur on every venue it trades on (the next: + 1, ...);
#: above the one-venue scenario's own accounts (orderbook.events.SCENARIO_*).
ARBITRAGEUR_OWNER = 10**12 + 100
# Order ids of arbitrageur j: from 2**61 + j * 2**56, far above the venue's own (counted from 1).
_ARBITRAGEUR_IDS, _ARBITRAGEUR_ID_SPAN = 2**61, 2**56
_INDEX_MARKS = (MarkRule.INDEX, MarkRule.INDEX_CLAMPED, MarkRule.FAIR)


# ----------------------------------------------------------------------------- the settings
@dataclass(frozen=True)
class Leg:
    """One (venue, instrument) of an index or an arbitrageur: the venue's name, the instrument
    by name or index (default 0, the venue's first) and, in an index, its integer ``weight``
    (>= 1; unused elsewhere)."""

    venue: str
    instrument: str | int = 0
    weight: int = 1


@dataclass(frozen=True)
class Venue:
    """A named venue: a one-venue :class:`~orderbook.scenario.Scenario` (its ``steps`` is the
    market's)."""

    name: str
    scenario: Scenario = field(default_factory=default_scenario)


@dataclass(frozen=True)
class IndexSpec:
    """An index ``name`` over ``legs`` (each with its weight), priced at each leg's ``source``
    (``"last"`` trade or ``"mid"``), aggregated under ``rule``, set every step on the
    instruments of ``feeds`` (None: every leg whose mark rule is INDEX, INDEX_CLAMPED or
    FAIR)."""

    name: str
    legs: tuple = ()
    rule: IndexRule = field(default_factory=IndexRule)
    source: str = "last"
    feeds: tuple | None = None


@dataclass(frozen=True)
class ArbitrageurSpec:
    """An arbitrageur (:class:`orderbook.Arbitrageur`) over ``legs`` (at least two), with
    ``capital`` quote units on each of their venues (an int for all, or {venue: int}), acting
    while the gap passes ``threshold_ppm`` of the lower ask, at most ``max_lots`` lots a
    step."""

    legs: tuple = ()
    capital: int | dict | tuple = 0
    threshold_ppm: int = 0
    max_lots: int = 2**40


@dataclass(frozen=True)
class MarketScenario:
    """Venues, the indexes that tie their marks, their arbitrageurs, and the steps to run.

    Checked whole at construction (ValueError, KeyError for an unknown venue or instrument,
    TypeError; :class:`~orderbook.config.ConfigError` s naming the field and the value), so a
    run never stops half-built. ``capital`` is held as ((venue, quote units), ...) in the
    order of the arbitrageur's legs.
    """

    venues: tuple
    indexes: tuple = ()
    arbitrageurs: tuple = ()
    steps: int = 120

    def __post_init__(self):
        object.__setattr__(self, "venues", tuple(self.venues))
        object.__setattr__(self, "indexes", tuple(self.indexes))
        object.__setattr__(self, "arbitrageurs", tuple(
            replace(a, legs=tuple(a.legs), capital=_capital(f"arbitrageurs[{j}]", a))
            if isinstance(a, ArbitrageurSpec) else a for j, a in enumerate(self.arbitrageurs)))
        _check(self)

    def venue(self, name: str) -> Venue:
        """The venue called ``name`` (KeyError naming it if there is none)."""
        for v in self.venues:
            if v.name == name:
                return v
        raise UnknownKeyError(f"venue {name!r} is not one of {[v.name for v in self.venues]}")


# ------------------------------------------------------------------------------- checking
def _label(where: str, value) -> str:
    if not isinstance(value, str) or not value:
        kind = ConfigTypeError if not isinstance(value, str) else ConfigError
        raise kind(f"{where} must be a non-empty string, got {type_name(value)} {show(value)}")
    return value


def _instruments(s: Scenario) -> list:
    """[(name, tick size, mark rule)] of a venue scenario's instruments, in engine order."""
    if s.instruments:
        return [(c.name, Decimal(c.tick_size),
                 s.rules.mark_rule if c.mark_rule is None else c.mark_rule)
                for c in s.instruments]
    return [("main", Decimal(s.tick_size), s.rules.mark_rule)]


def _accounts(s: Scenario) -> int:
    pop = s.population
    return len(pop.side) if isinstance(pop, ExplicitPopulation) else pop.count


def _capital(where: str, a: ArbitrageurSpec) -> tuple:
    venues = list(dict.fromkeys(leg.venue for leg in a.legs if isinstance(leg, Leg)))
    cap = a.capital
    if isinstance(cap, tuple):
        cap = dict(cap)
    if isinstance(cap, dict):
        extra = [v for v in cap if v not in venues]
        if extra:
            raise UnknownKeyError(f"{where} capital names venue {extra[0]!r}, where it has no "
                                  f"leg (its legs' venues: {', '.join(venues)})")
        missing = [v for v in venues if v not in cap]
        if missing:
            raise ConfigError(f"{where} capital gives nothing for venue {missing[0]!r} (give "
                              f"every leg's venue, or one amount for all)")
        amounts = [(v, cap[v]) for v in venues]
    else:
        amounts = [(v, cap) for v in venues]
    for venue, amount in amounts:
        try:
            integer(0, 2**62)(amount)
        except Bad as bad:
            raise bad.kind(f"{where} capital of venue {venue!r} = {show(amount)} "
                           f"{bad.problem}") from None
    return tuple((v, int(x)) for v, x in amounts)


def _resolve(where: str, leg, venues: dict) -> tuple[str, int]:
    """(venue, instrument index) of ``leg``; UnknownKeyError naming an unknown one."""
    if not isinstance(leg, Leg):
        raise ConfigTypeError(f"{where} must be a Leg, got {type(leg).__name__} {show(leg)}")
    _label(f"{where} venue", leg.venue)
    if leg.venue not in venues:
        raise UnknownKeyError(f"{where} venue = {leg.venue!r} is not a venue of the market "
                              f"(its venues: {', '.join(venues)})")
    names = [name for name, _, _ in venues[leg.venue]]
    instrument = leg.instrument
    if isinstance(instrument, str):
        if instrument not in names:
            raise UnknownKeyError(f"{where} instrument = {instrument!r} is not one of venue "
                                  f"{leg.venue!r}'s ({', '.join(names)})")
        return leg.venue, names.index(instrument)
    if isinstance(instrument, bool) or not isinstance(instrument, int):
        raise ConfigTypeError(f"{where} instrument must be a name or an index, got "
                              f"{type_name(instrument)} {show(instrument)}")
    if not 0 <= instrument < len(names):
        raise UnknownKeyError(f"{where} instrument = {instrument} is not one of venue "
                              f"{leg.venue!r}'s {len(names)} (0 .. {len(names) - 1})")
    return leg.venue, instrument


def _same_tick(where: str, legs: list, venues: dict) -> Decimal:
    ticks = {venues[v][i][1] for v, i in legs}
    if len(ticks) > 1:
        raise ConfigError(f"{where} legs have different tick sizes {sorted(map(str, ticks))}; "
                          f"prices in ticks would not compare")
    return ticks.pop()


def _check(ms: MarketScenario) -> None:
    """Every setting of ``ms`` and every name it refers to (see MarketScenario)."""
    try:
        integer(1, 10**9)(ms.steps)
    except Bad as bad:
        raise bad.kind(f"steps = {show(ms.steps)} {bad.problem}") from None
    if not ms.venues:
        raise ConfigError("venues must hold at least one Venue, got none")
    venues: dict = {}
    for i, v in enumerate(ms.venues):
        if not isinstance(v, Venue):
            raise ConfigTypeError(f"venues[{i}] must be a Venue, got {type(v).__name__}")
        _label(f"venues[{i}] name", v.name)
        if v.name in venues:
            raise ConfigError(f"venues[{i}] name = {v.name!r} is given twice")
        if not isinstance(v.scenario, Scenario):
            raise ConfigTypeError(f"venues[{i}] ({v.name!r}) scenario must be a Scenario, got "
                                  f"{type(v.scenario).__name__}")
        step_ms = ms.venues[0].scenario.clock.step_ms
        if v.scenario.clock.step_ms != step_ms:
            # the venues' series rows and shocks line up step for step
            raise ConfigError(f"venues[{i}] ({v.name!r}) clock.step_ms = "
                              f"{v.scenario.clock.step_ms} differs from venues[0] "
                              f"({ms.venues[0].name!r})'s {step_ms}: a market's venues share "
                              f"one step (their liquidators may still run at their own "
                              f"liquidator_ms or block_ms)")
        venues[v.name] = _instruments(v.scenario)
    fed: dict = {}
    names = set()
    for n, ix in enumerate(ms.indexes):
        if not isinstance(ix, IndexSpec):
            raise ConfigTypeError(f"indexes[{n}] must be an IndexSpec, got {type(ix).__name__}")
        where = f"indexes[{n}] ({ix.name!r})"
        _label(f"indexes[{n}] name", ix.name)
        if ix.name in names:
            raise ConfigError(f"indexes[{n}] name = {ix.name!r} is given twice")
        names.add(ix.name)
        if not ix.legs:
            raise ConfigError(f"{where} legs = {show(ix.legs)}: an index needs at least one "
                              f"leg")
        legs = [_resolve(f"{where} legs[{k}]", leg, venues) for k, leg in enumerate(ix.legs)]
        for k, leg in enumerate(ix.legs):
            try:
                integer(1, INT64_MAX)(leg.weight)
            except Bad as bad:
                raise bad.kind(f"{where} legs[{k}] weight = {show(leg.weight)} "
                               f"{bad.problem}") from None
        if len(set(legs)) < len(legs):
            raise ConfigError(f"{where} legs name the same (venue, instrument) twice: "
                              f"{[(leg.venue, leg.instrument) for leg in ix.legs]}")
        tick = _same_tick(where, legs, venues)
        if ix.source not in PRICE_SOURCES:
            raise ConfigError(f"{where} source = {show(ix.source)} is not one of "
                              f"{', '.join(PRICE_SOURCES)}")
        if not isinstance(ix.rule, IndexRule):
            raise ConfigTypeError(f"{where} rule must be an IndexRule, got "
                                  f"{type(ix.rule).__name__}")
        if ix.feeds is None:
            feeds = [leg for leg in legs if venues[leg[0]][leg[1]][2] in _INDEX_MARKS]
        else:
            feeds = [_resolve(f"{where} feeds[{k}]", leg, venues)
                     for k, leg in enumerate(ix.feeds)]
        for k, (venue, i) in enumerate(feeds):
            name, feed_tick, mark = venues[venue][i]
            at = f"{where} feeds[{k}] ({venue!r}, {name!r})"
            if mark not in _INDEX_MARKS:
                raise ConfigError(f"{at}: its mark rule is {mark.name}, which an index cannot "
                                  f"move (INDEX, INDEX_CLAMPED or FAIR can)")
            if feed_tick != tick:
                raise ConfigError(f"{at} has tick size {feed_tick}, the index's legs {tick}")
            if (venue, i) in fed:
                raise ConfigError(f"{at} is fed by index {fed[(venue, i)]!r} already")
            s = ms.venue(venue).scenario
            shock = s.instruments[i].shock if s.instruments else s.shock
            if shock.index_path or s.index_model is not None:
                raise ConfigError(f"{at}: the venue's own index path (shock.index_path or "
                                  f"index_model) would set the same index; give one")
            fed[(venue, i)] = ix.name
    traders = set()
    for j, a in enumerate(ms.arbitrageurs):
        if not isinstance(a, ArbitrageurSpec):
            raise ConfigTypeError(f"arbitrageurs[{j}] must be an ArbitrageurSpec, got "
                                  f"{type(a).__name__}")
        where = f"arbitrageurs[{j}]"
        legs = [_resolve(f"{where} legs[{k}]", leg, venues) for k, leg in enumerate(a.legs)]
        if len(set(legs)) < 2:
            raise ConfigError(f"{where} legs = {show([(g.venue, g.instrument) for g in a.legs])}"
                              f": an arbitrageur needs at least two different (venue, "
                              f"instrument) legs")
        _same_tick(where, legs, venues)
        for key, check in (("threshold_ppm", ppm), ("max_lots", integer(1, INT64_MAX))):
            try:
                check(getattr(a, key))
            except Bad as bad:
                raise bad.kind(f"{where} {key} = {show(getattr(a, key))} "
                               f"{bad.problem}") from None
        traders |= {venue for venue, _ in legs}
    for i, v in enumerate(ms.venues):
        if not _accounts(v.scenario) and v.name not in traders:
            raise ConfigError(f"venues[{i}] ({v.name!r}) has no accounts: population.count = 0 "
                              f"and no arbitrageur trades there (give it a population, or "
                              f"leave it out)")


# ------------------------------------------------------------------------------ TOML files
_MARKET_KEYS = ("steps", "seed", "venues", "indexes", "arbitrageurs")
_LEG_KEYS = {"venue": lambda v: v, "instrument": lambda v: v,
             "weight": integer(1, INT64_MAX)}
_INDEX_RULE_KEYS = {"aggregate": enum_name(Aggregate), "exclude_ppm": ppm, "clamp_ppm": ppm,
                    "readmit_ppm": ppm, "readmit_updates": integer(0, INT64_MAX),
                    "min_constituents": integer(1, INT64_MAX)}
_INDEX_KEYS = {"name": lambda v: v, "legs": lambda v: v, "feeds": lambda v: v,
               "source": choice(*PRICE_SOURCES),
               "rule": choice(*INDEX_RULES), **_INDEX_RULE_KEYS}
_ARBITRAGEUR_KEYS = {"legs": lambda v: v, "capital": lambda v: v,
                     "threshold_ppm": ppm, "max_lots": integer(1, INT64_MAX)}


def _table(where: str, d) -> dict:
    if not isinstance(d, dict):
        raise ConfigTypeError(f"[{where}] must be a table, got {type_name(d)} {show(d)}")
    return d


def _tables(key: str, items) -> list:
    if not isinstance(items, list):
        raise ConfigTypeError(f"[[{key}]] must be an array of tables, got {type_name(items)} "
                              f"{show(items)}")
    return [_table(f"{key}[{i}]", item) for i, item in enumerate(items)]


def _legs(where: str, items, weights: bool) -> tuple:
    if not isinstance(items, list):
        raise ConfigTypeError(f"[{where}] must be an array of tables {{venue = ..., "
                              f"instrument = ...}}, got {type_name(items)} {show(items)}")
    keys = _LEG_KEYS if weights else {k: c for k, c in _LEG_KEYS.items() if k != "weight"}
    out = []
    for k, item in enumerate(items):
        item = _table(f"{where}[{k}]", item)
        values = {key: convert(f"{where}[{k}]", key, value, keys) for key, value in item.items()}
        if "venue" not in values:
            raise ConfigError(f"[{where}[{k}]] needs a venue, got {show(item)}")
        out.append(Leg(**values))
    return tuple(out)


def _venue(i: int, d: dict, steps: int, seed: int, root) -> Venue:
    from .config import scenario_from_dict  # config imports this module's callers, not it

    where = f"venues[{i}]"
    name = _label(f"[{where}] name", d.get("name"))
    if "steps" in d:
        raise ConfigError(f"[{where}] ({name!r}) steps: the steps are the market's; set steps "
                          f"at the top level")
    if "book" not in d and not d.get("instruments"):
        raise ConfigError(f"[{where}] ({name!r}) has no instruments: give it a [venues.book] "
                          f"(one instrument) or [[venues.instruments]]")
    rest = {k: v for k, v in d.items() if k != "name"}
    base = replace(default_scenario(), steps=steps, seed=seed + i)
    try:
        return Venue(name, scenario_from_dict(rest, base, root=root))
    except ConfigError as exc:
        raise type(exc)(f"[{where}] ({name!r}) {exc}") from None


def _index(n: int, d: dict) -> IndexSpec:
    where = f"indexes[{n}]"
    values = {key: convert(where, key, value, _INDEX_KEYS) for key, value in d.items()}
    name = _label(f"[{where}] name", values.get("name"))
    if not values.get("legs"):
        raise ConfigError(f"[{where}] ({name!r}) legs = {show(values.get('legs'))}: an index "
                          f"needs at least one leg, as legs = [{{venue = \"A\", weight = 1}}, "
                          f"...]")
    rule = INDEX_RULES.get(values.get("rule", ""), IndexRule())
    fields = {k: v for k, v in values.items() if k in _INDEX_RULE_KEYS}
    try:
        rule = replace(rule, **fields)
    except ValueError as exc:
        raise ConfigError(f"[{where}] ({name!r}) {exc}") from None
    feeds = values.get("feeds")
    return IndexSpec(name, _legs(f"{where}.legs", values["legs"], True), rule,
                     values.get("source", "last"),
                     None if feeds is None else _legs(f"{where}.feeds", feeds, False))


def _arbitrageur(j: int, d: dict) -> ArbitrageurSpec:
    where = f"arbitrageurs[{j}]"
    values = {key: convert(where, key, value, _ARBITRAGEUR_KEYS) for key, value in d.items()}
    legs = _legs(f"{where}.legs", values.pop("legs", []), False)
    capital = values.pop("capital", 0)
    if isinstance(capital, dict):
        capital = tuple(capital.items())
    return ArbitrageurSpec(legs, capital, **values)


def market_from_dict(d: dict, *, root=".") -> MarketScenario:
    """A MarketScenario from a dict laid out like a market file (the module docstring).
    Each venue table is read as a one-venue scenario file is (orderbook.config), its left-out
    keys the built-in scenario's. Raises :class:`~orderbook.config.ConfigError` (ValueError;
    KeyError, TypeError) naming the table, key and value of the first problem."""
    if not isinstance(d, dict):
        raise ConfigTypeError(f"a market scenario must be a table, got {type_name(d)}")
    for key in d:
        if key in _MARKET_KEYS:
            continue
        if key in TABLES or key in ("instruments", "index_model") or key in schema(Scenario):
            shown = "[[instruments]]" if key == "instruments" else (
                f"[{key}]" if key in TABLES or key == "index_model" else key)
            raise ConfigError(f"top-level {shown} cannot go with [[venues]]: each venue gives "
                              f"its own (in [[venues]] as {key})")
        raise UnknownKeyError(f"unknown top-level key {key!r} in a market scenario (known: "
                              f"{', '.join(_MARKET_KEYS)})")
    top = schema(Scenario)
    steps = convert(None, "steps", d.get("steps", default_scenario().steps), top)
    seed = convert(None, "seed", d.get("seed", default_scenario().seed), top)
    if "venues" not in d:
        raise ConfigError("a market scenario needs [[venues]]")
    venues = [_venue(i, v, steps, seed, root) for i, v in enumerate(_tables("venues", d["venues"]))]
    indexes = [_index(n, t) for n, t in enumerate(_tables("indexes", d.get("indexes", [])))]
    arbitrageurs = [_arbitrageur(j, t)
                    for j, t in enumerate(_tables("arbitrageurs", d.get("arbitrageurs", [])))]
    return MarketScenario(tuple(venues), tuple(indexes), tuple(arbitrageurs), steps)


def loads_market(text: str) -> MarketScenario:
    """A MarketScenario from TOML text (:func:`market_from_dict`)."""
    from .config import _parse_toml

    return market_from_dict(_parse_toml(text))


def is_market_file(path) -> bool:
    """Whether the TOML file at ``path`` is a market scenario (has ``[[venues]]``);
    ConfigError if it cannot be read."""
    from .config import _read_toml

    return "venues" in _read_toml(path)


def load_market(path) -> MarketScenario:
    """Read a market scenario file; errors are ConfigErrors whose message starts with the file
    name and names the table, key and value."""
    from .config import _in_file, _read_toml

    d = _read_toml(path)
    try:
        return market_from_dict(d, root=Path(path).parent)
    except ConfigError as exc:
        raise _in_file(path, exc) from None


def scale_market(ms: MarketScenario, scale: float) -> MarketScenario:
    """Every venue scaled as :func:`~orderbook.scenario.scale_scenario` scales a scenario
    (accounts, depth, refill, shocks, per-round cap); arbitrageurs' capital and lots are not
    scaled."""
    if scale == 1:
        return ms
    return replace(ms, venues=tuple(replace(v, scenario=scale_scenario(v.scenario, scale))
                                    for v in ms.venues))


# --------------------------------------------------------------------------------- running
@dataclass
class MarketResult:
    """What a market run produced.

    ``venues``: {venue name: its :class:`~orderbook.scenario.Result`}: per-step series of
    each instrument (``series`` is instrument 0's, ``instrument_series`` every one's by name
    when the venue has several), forced-order records with the step of each, trades and a
    summary with ``instrument.<name>.*`` figures for every instrument (one-venue figures, no
    amplification: no counterfactual run). ``indexes``: {index name: int64 ticks after each
    step, 0 before its first value}. ``arbitrageurs``: one {"owner", "legs", "trades",
    "lots"} per ArbitrageurSpec (round trips and lots bought; 0 when ``arbitrage`` was off).
    """

    scenario: MarketScenario
    venues: dict
    indexes: dict
    arbitrageurs: list
    arbitrage: bool = True

    def series(self, venue: str, instrument: str | int = 0) -> np.ndarray:
        """SERIES_DTYPE rows of one venue's instrument over the steps (last, mark, ...)."""
        result = self.venues[venue]
        if not result.instrument_series:
            if instrument not in (0, "main"):
                raise KeyError(f"venue {venue!r} has one instrument, 'main' (0), not "
                               f"{instrument!r}")
            return result.series
        names = list(result.instrument_series)
        key = names[instrument] if isinstance(instrument, int) else instrument
        return result.instrument_series[key]

    @property
    def table(self) -> list[dict]:
        """One row per venue and instrument: ``venue``, ``instrument``, ``accounts`` (the
        venue's, seeded), ``liquidated_accounts``, ``forced_orders``, ``liquidated_notional``
        (quote units) and ``max_drawdown_pct`` of the instrument, the venue's
        ``insurance_fund_end`` (quote units), ``quote_unit`` and ``money`` (what the amounts are
        in: "quote", or "coin" for an inverse venue)."""
        rows = []
        for name, result in self.venues.items():
            sm = result.summary
            for inst, _, _ in _instruments(result.scenario):
                key = f"instrument.{inst}."
                rows.append({"venue": name, "instrument": inst, "accounts": sm["accounts"],
                             "liquidated_accounts": sm[key + "liquidated_accounts"],
                             "forced_orders": sm[key + "forced_orders"],
                             "liquidated_notional": sm[key + "liquidated_notional"],
                             "max_drawdown_pct": sm[key + "max_drawdown_pct"],
                             "insurance_fund_end": sm["insurance_fund_end"],
                             "quote_unit": sm["quote_unit"], "money": sm["money"]})
        return rows

    @property
    def summary(self) -> dict:
        """{venue name: its summary}, {index name: its last value (ticks)} under
        ``"indexes"``, and the arbitrageurs under ``"arbitrageurs"``."""
        return {"venues": {name: r.summary for name, r in self.venues.items()},
                "indexes": {name: int(v[-1]) if len(v) else None
                            for name, v in self.indexes.items()},
                "arbitrageurs": self.arbitrageurs, "arbitrage": self.arbitrage}

    def plot(self, path) -> None:
        """Draw the run (needs matplotlib): :func:`orderbook.plot.plot_market`."""
        from .plot import plot_market

        plot_market(self, path)


def run(ms: MarketScenario, *, arbitrage: bool = True, agents=None,
        progress=None) -> MarketResult:
    """Run a market scenario (the module docstring's step); with ``arbitrage`` false the
    arbitrageurs' accounts are opened with their capital but never trade: the same start,
    without the spread being carried from venue to venue. ``agents``: {venue name:
    :class:`~orderbook.agents.Agent` objects}, trading on that venue beside its scenario's
    own (each run works on copies); KeyError for a venue the market does not have.

    ``progress(done, total)`` is called after each step of the market's clock, in steps
    (``total``: ``ms.steps``); ``progress=True`` draws a bar on stderr (a terminal only).

    Examples
    --------
    Venue A sells 1.5 BTC; venue B marks by an index of A's last trade and sells nothing:

    >>> from dataclasses import replace
    >>> from orderbook import MarkRule, Shock, default_scenario
    >>> from orderbook.market_scenario import IndexSpec, Leg, MarketScenario, Venue, run
    >>> a = default_scenario(0.05)
    >>> b = replace(a, shock=Shock(), rules=replace(a.rules, mark_rule=MarkRule.INDEX))
    >>> ms = MarketScenario((Venue("A", a), Venue("B", b)),
    ...                     (IndexSpec("BTC", (Leg("A"),), feeds=(Leg("B"),)),), steps=40)
    >>> result = run(ms)
    >>> [result.venues[v].summary["liquidated_accounts"] for v in ("A", "B")]
    [85, 85]
    """
    if not isinstance(ms, MarketScenario):
        raise TypeError(f"run needs a MarketScenario, got {type(ms).__name__}")
    with reporting(progress, [("market run", ms.steps)], "steps") as report:
        return _run(ms, arbitrage, agents, report)


def _run(ms: MarketScenario, arbitrage: bool, agents, report) -> MarketResult:
    from ._market import Market as Built  # a one-venue scenario's machinery, per venue
    from ._timeline import MarketTimeline, Schedule
    from .scenario import _lane, timeline_figures

    steps = ms.steps
    built = {v.name: Built(replace(v.scenario, steps=steps)) for v in ms.venues}
    starts = {name: start_mids(b) for name, b in built.items()}
    for j, a in enumerate(ms.arbitrageurs):
        for venue, capital in a.capital:
            built[venue].engine.add_account(ARBITRAGEUR_OWNER + j, capital)
    market = Market({name: b.engine for name, b in built.items()})
    for ix in ms.indexes:
        market.add_index(ix.name, {(leg.venue, leg.instrument): leg.weight for leg in ix.legs},
                         rule=ix.rule, source=ix.source,
                         feeds=None if ix.feeds is None else
                         [(leg.venue, leg.instrument) for leg in ix.feeds])
    arbitrageurs = [Arbitrageur(ARBITRAGEUR_OWNER + j,
                                [(leg.venue, leg.instrument) for leg in a.legs],
                                threshold_ppm=a.threshold_ppm, max_lots=a.max_lots,
                                first_order_id=_ARBITRAGEUR_IDS + j * _ARBITRAGEUR_ID_SPAN)
                    for j, a in enumerate(ms.arbitrageurs)]
    if arbitrage:
        for arbitrageur in arbitrageurs:
            market.add(arbitrageur)
    extra = {} if agents is None else dict(agents)
    unknown = sorted(set(extra) - set(built))
    if unknown:
        raise KeyError(f"agents name venue {unknown[0]!r}, not one of {list(built)}")
    # each venue on one schedule; an instrument fed by an index reads that index (funding
    # and the agents' view.index)
    step_ms = ms.venues[0].scenario.clock.step_ms   # every venue's (_check)
    schedule = Schedule((steps - 1) * step_ms)
    feeds: dict = {name: {} for name in built}
    for ix in market.indexes:
        for venue, i in ix.feeds:
            feeds[venue][i] = lambda index=ix.index: index.value
    world = MarketTimeline(market, schedule, step_ms,
                           {v.name for v in ms.venues if v.scenario.rules.liquidator}, steps)
    for v in ms.venues:
        world.lanes[v.name] = _lane(
            built[v.name], steps, False, tuple(v.scenario.agents) + tuple(extra.get(v.name, ())),
            schedule=schedule, venue=v.name, indexes=feeds[v.name], world=world)
    if report is not None:
        world.on_step = lambda done: report(done, steps)
    started = time.perf_counter()
    log.info("market run: %s venues, %s steps, arbitrage %s", len(ms.venues), f"{steps:,}",
             "on" if arbitrage else "off")
    done = world.run()
    log.info("market run: done in %.2f s", time.perf_counter() - started)
    fed = {(venue, i) for ix in market.indexes for venue, i in ix.feeds}
    results = {}
    for v in ms.venues:
        b, s, lane = built[v.name], v.scenario, world.lanes[v.name]
        every, records, times = done[v.name]
        summary = venue_summary(s, b, every, records, starts[v.name], None)
        if not s.instruments:
            summary.update(instrument_figures(["main"], every, records, starts[v.name]))
        summary["static_mark"] = static_mark(s) and not any(
            (v.name, i) in fed for i in range(len(b.contracts)))
        summary["inert_settings"] = inert_settings(s)
        summary.update(timeline_figures(s, b, lane))
        add_twins(summary, quote_unit(s), Decimal((s.instruments or (s,))[0].tick_size))
        names = [c.name for c in s.instruments]
        trade_times = lane.trade_times()
        results[v.name] = Result(
            replace(s, steps=steps), every[0], records, b.engine.trades(), summary,
            b.population, -(-times // s.clock.step_ms),
            {name: every[i] for i, name in enumerate(names)},
            {name: b.engine.trades(i) for i, name in enumerate(names)},
            record_time=times, trade_time=trade_times[0],
            instrument_trade_time={name: trade_times[i] for i, name in enumerate(names)},
            funding=lane.funding())
    index_values = world.index_values
    for name, result in results.items():
        if result.summary["static_mark"]:
            warnings.warn(f"venue {name!r}: {STATIC_MARK_NOTE}", InertSettingWarning,
                          stacklevel=3)
        for text in result.summary["inert_settings"]:
            warnings.warn(f"venue {name!r}: {text}", InertSettingWarning, stacklevel=3)
        note = unresolved_note(result.summary)
        if note is not None:
            warnings.warn(f"venue {name!r}: run ended unresolved: {note}",
                          UnresolvedAccountsWarning, stacklevel=3)
    trades = [{"owner": agent.owner, "legs": [(leg.venue, leg.instrument) for leg in a.legs],
               "trades": agent.trades, "lots": agent.lots}
              for agent, a in zip(arbitrageurs, ms.arbitrageurs, strict=True)]
    return MarketResult(ms, results, index_values, trades, arbitrage)


def venue_instruments(ms: MarketScenario, venue: str) -> list[str]:
    """The instrument names of ``venue`` in engine order (a one-instrument venue's: main)."""
    return [name for name, _, _ in _instruments(ms.venue(venue).scenario)]


def __getattr__(name: str):
    # sweep, compare and the dotted parameters live in orderbook.market_sweep (which imports
    # this module); imported from here on first use, so neither import order can cycle
    if name in _SWEEP_NAMES:
        from . import market_sweep
        return getattr(market_sweep, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
