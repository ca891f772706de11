"""Sweeps and comparisons of a market of several venues (orderbook.market_scenario): dotted
parameters (``venues.B.rules.mark_rule``, ``indexes.BTC.exclude_ppm``, ``arbitrageurs.0.capital``,
``steps``, ``seed``; :func:`with_params`, :func:`coerce_param`), :func:`sweep` over a grid of
them in processes, and :func:`compare` of rule sets applied to one venue or to every venue with
accounts. The names are also importable from ``orderbook.market_scenario``.

Units: as the market's (ticks, lots, each venue's quote units, ppm, steps).
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass, replace

from ._progress import reporting
from ._settings import (
    Bad,
    ConfigError,
    ConfigTypeError,
    UnknownKeyError,
    convert,
    integer,
    schema,
    show,
    type_name,
)
from .market_scenario import (
    _ARBITRAGEUR_KEYS,
    _INDEX_KEYS,
    _INDEX_RULE_KEYS,
    MarketScenario,
    _accounts,
    _legs,
    run,
)
from .metrics import unresolved_note
from .price_index import RULES as INDEX_RULES
from .scenario import (
    STATIC_MARK_NOTE,
    InertSettingWarning,
    Rules,
    Scenario,
    UnresolvedAccountsWarning,
    _counting,
    _map_runs,
    _point_text,
)
from .scenario import coerce_param as venue_coerce
from .scenario import with_params as venue_with_params

log = logging.getLogger(__name__)

__all__ = ["with_params", "coerce_param", "sweep", "compare", "MarketComparison"]


# ------------------------------------------------------------------------ dotted parameters
def _named_at(items: list, name: str, table: str, what: str) -> tuple[int, str]:
    """(position, key) of ``table.NAME.key`` among ``items`` (venues or indexes, by their
    ``name``); the longest name that fits wins, so a name may hold dots."""
    rest = name[len(table) + 1:]
    found = [(len(item.name), i) for i, item in enumerate(items)
             if rest.startswith(item.name + ".") and len(rest) > len(item.name) + 1]
    if not found:
        raise UnknownKeyError(f"parameter {name!r}: no {what} of the market fits "
                              f"({table}.NAME.key with NAME one of "
                              f"{', '.join(item.name for item in items) or 'none'})")
    _, i = max(found)
    return i, rest[len(items[i].name) + 1:]


def _arbitrageur_at(arbitrageurs: list, name: str) -> tuple[int, list]:
    parts = name.split(".")
    if len(parts) < 3 or not parts[1].isdigit() or int(parts[1]) >= len(arbitrageurs):
        raise UnknownKeyError(f"parameter {name!r}: arbitrageurs.N.key with N one of the "
                              f"market's {len(arbitrageurs)} arbitrageurs (0 .. "
                              f"{len(arbitrageurs) - 1})" if arbitrageurs else
                              f"parameter {name!r}: the market has no arbitrageurs")
    return int(parts[1]), parts[2:]


def _money(name: str, value):
    """A capital amount (quote units, >= 0) converted as a file's is."""
    try:
        return integer(0, 2**62)(value)
    except Bad as bad:
        raise bad.kind(f"parameter {name!r} = {show(value)} {bad.problem}") from None


def _set_param(parts: dict, name: str, value):
    """Set the dotted parameter ``name`` to ``value`` in ``parts``, the market's pieces as
    lists ({"venues", "indexes", "arbitrageurs", "steps"}), and return the value converted as
    a file's value is; the whole is checked when the pieces are put back together."""
    top = schema(Scenario)
    if name == "steps":
        value = convert(None, "steps", value, top)
        parts["steps"] = value
        parts["venues"] = [replace(v, scenario=replace(v.scenario, steps=value))
                           for v in parts["venues"]]
    elif name == "seed":
        # As a file's top-level seed: venue i draws from seed + i (a venue's own seed is
        # replaced; venues.NAME.seed sets one venue's).
        value = convert(None, "seed", value, top)
        parts["venues"] = [replace(v, scenario=replace(v.scenario, seed=value + i))
                           for i, v in enumerate(parts["venues"])]
    elif name.startswith("venues."):
        i, key = _named_at(parts["venues"], name, "venues", "venue")
        if key == "steps":
            raise ConfigError(f"parameter {name!r}: the steps are the market's; sweep steps")
        v = parts["venues"][i]
        try:
            value = venue_coerce(v.scenario, key, value)
            parts["venues"][i] = replace(v, scenario=venue_with_params(v.scenario, {key: value}))
        except ConfigError as exc:
            raise type(exc)(f"parameter {name!r}: {exc}") from None
    elif name.startswith("indexes."):
        n, key = _named_at(parts["indexes"], name, "indexes", "index")
        ix = parts["indexes"][n]
        where = f"indexes.{ix.name}"
        if key == "name":
            raise UnknownKeyError(f"parameter {name!r}: an index's name is not a parameter")
        value = convert(where, key, value, _INDEX_KEYS)
        if key == "rule":       # a preset: the whole rule, as a file's rule = "..." starts
            ix = replace(ix, rule=INDEX_RULES[value])
        elif key in _INDEX_RULE_KEYS:
            try:
                ix = replace(ix, rule=replace(ix.rule, **{key: value}))
            except ValueError as exc:
                raise ConfigError(f"parameter {name!r} = {show(value)}: {exc}") from None
        elif key == "legs":     # the value stays as given (tables), so it can be given again
            ix = replace(ix, legs=_legs(f"{where}.legs", value, True))
        elif key == "feeds":
            ix = replace(ix, feeds=None if value in (None, "none")
                         else _legs(f"{where}.feeds", value, False))
        else:
            ix = replace(ix, source=value)
        parts["indexes"][n] = ix
    elif name.startswith("arbitrageurs."):
        j, keys = _arbitrageur_at(parts["arbitrageurs"], name)
        a = parts["arbitrageurs"][j]
        where = f"arbitrageurs.{j}"
        if keys[0] == "capital" and len(keys) == 2:   # one venue's capital
            capital = dict(a.capital)
            if keys[1] not in capital:
                raise UnknownKeyError(f"parameter {name!r}: arbitrageur {j} has no leg on venue "
                                      f"{keys[1]!r} (its venues: {', '.join(capital)})")
            value = capital[keys[1]] = _money(name, value)
            a = replace(a, capital=tuple(capital.items()))
        elif len(keys) != 1:
            raise UnknownKeyError(f"parameter {name!r}: no such key (arbitrageurs.N.key, key "
                                  f"one of {', '.join(_ARBITRAGEUR_KEYS)}, or "
                                  f"arbitrageurs.N.capital.VENUE)")
        else:
            value = convert(where, keys[0], value, _ARBITRAGEUR_KEYS)
            held = value
            if keys[0] == "legs":
                held = _legs(f"{where}.legs", value, False)
            elif keys[0] == "capital":
                # one amount for every leg's venue, or a table {venue: amount}
                value = {v: _money(f"{name}.{v}", x) for v, x in value.items()} \
                    if isinstance(value, dict) else _money(name, value)
                held = tuple(value.items()) if isinstance(value, dict) else value
            a = replace(a, **{keys[0]: held})
        parts["arbitrageurs"][j] = a
    else:
        raise UnknownKeyError(f"parameter {name!r} is not a market's (steps, seed, "
                              f"venues.NAME.key, indexes.NAME.key or arbitrageurs.N.key)")
    return value


def _set_named(parts: dict, name, value):
    """:func:`_set_param`, its errors starting with the parameter's name."""
    if not isinstance(name, str):
        raise UnknownKeyError(f"parameter names are dotted strings, got {show(name)}")
    try:
        return _set_param(parts, name, value)
    except ConfigError as exc:
        if str(exc).startswith(f"parameter {name!r}"):
            raise
        raise type(exc)(f"parameter {name!r}: {exc}") from None


def _pieces(ms: MarketScenario) -> dict:
    return {"venues": list(ms.venues), "indexes": list(ms.indexes),
            "arbitrageurs": list(ms.arbitrageurs), "steps": ms.steps}


def _whole(parts: dict) -> MarketScenario:
    return MarketScenario(tuple(parts["venues"]), tuple(parts["indexes"]),
                          tuple(parts["arbitrageurs"]), parts["steps"])


def _ordered(params: dict) -> list:
    # The market's seed before a venue's own seed, an index's preset before its fields: the
    # order a file gives them (a whole table before its keys), whatever the grid's order.
    def rank(name: str) -> int:
        return 0 if name == "seed" else 1 if name.startswith("indexes.") and \
            name.endswith(".rule") else 2
    return sorted(params.items(), key=lambda item: rank(item[0]))


def with_params(ms: MarketScenario, params: dict) -> MarketScenario:
    """A copy of ``ms`` with dotted parameters set, each value converted and checked as a
    market file's value is (:func:`coerce_param`), the whole checked as a MarketScenario is.

    ``steps``, ``seed`` (venue i then draws from seed + i), ``venues.NAME.<key>`` with any
    one-venue parameter of :func:`orderbook.scenario.with_params` (``venues.B.rules.mark_rule``,
    ``venues.A.shock.sell``, ``venues.A.instruments.BTC.shock.sell``, ``venues.B.rules`` a
    whole Rules), ``indexes.NAME.<key>`` (``source``, ``rule`` a preset, ``aggregate``,
    ``exclude_ppm``, ``clamp_ppm``, ``readmit_ppm``, ``readmit_updates``,
    ``min_constituents``, ``legs``, ``feeds``) and ``arbitrageurs.N.<key>`` (``capital``,
    ``capital.VENUE``, ``threshold_ppm``, ``max_lots``, ``legs``). Raises ConfigError
    (UnknownKeyError for a name the market does not have, ConfigTypeError for a wrong type)
    naming the parameter and the value (all the parameters when only their combination does
    not fit); ``ms`` is unchanged.
    """
    if not isinstance(ms, MarketScenario):
        raise TypeError(f"with_params needs a MarketScenario, got {type(ms).__name__}")
    parts = _pieces(ms)
    for name, value in _ordered(params):
        _set_named(parts, name, value)
    try:
        return _whole(parts)
    except ConfigError as exc:
        raise type(exc)(f"parameters {_point_text(params)}: {exc}") from None


def coerce_param(ms: MarketScenario, name: str, value):
    """``value`` of the dotted parameter ``name`` of ``ms`` (see :func:`with_params`) as a
    market file's value converts (``"INDEX"`` becomes ``MarkRule.INDEX``, a capital table a
    ``{venue: units}`` dict), checked with the rest of ``ms`` (a mark rule an index cannot
    move on a venue it feeds is refused). ConfigError naming the parameter and the value."""
    if not isinstance(ms, MarketScenario):
        raise TypeError(f"coerce_param needs a MarketScenario, got {type(ms).__name__}")
    parts = _pieces(ms)
    converted = _set_named(parts, name, value)
    try:
        _whole(parts)
    except ConfigError as exc:
        raise type(exc)(f"parameter {name!r} = {show(value)}: {exc}") from None
    return converted


# ---------------------------------------------------------------------------- sweep, compare
def _run_point(task) -> dict:
    ms, params, arbitrage = task
    # A worker's warnings would be lost (or printed by another process): sweep warns for each
    # row in the caller's process instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedAccountsWarning)
        warnings.simplefilter("ignore", InertSettingWarning)
        return {**params, **run(ms, arbitrage=arbitrage).summary}


def sweep(grid: dict, market: MarketScenario, *, executor=None, workers: int | None = None,
          progress=None, arbitrage: bool = True) -> list[dict]:
    """Run ``market`` at every combination of ``grid`` ({dotted parameter: [values]}, the
    names of :func:`with_params`); one row per combination, in grid order: the parameters'
    values as :func:`coerce_param` converts them, then :attr:`MarketResult.summary`
    (``venues``: {venue: its summary}, ``indexes``, ``arbitrageurs``, ``arbitrage``).

    Every value and every combination is checked before any run starts (ConfigError naming
    the parameter, or the combination). Runs go through ``executor``, or a process pool of
    ``workers`` (:func:`orderbook.scenario.worker_count`), as :func:`orderbook.sweep`'s do;
    the rows are the same either way (each venue draws from its own seed). ``progress(done,
    total)`` is called after each run, in runs (``total``: the grid's size), in grid order
    (``progress=True``: a bar on stderr); a venue left unresolved or with a mark nothing
    moves warns here, in the caller's process. ``arbitrage`` false runs every point with
    idle arbitrageurs (:func:`run`'s counterfactual).

    Examples
    --------
    Under a spawn or forkserver start method, call it from an ``if __name__ == "__main__":``
    block, as for any process pool.

    Venue B marks by an index of A's last trade; the larger the sell on A, the more
    accounts B liquidates:

    >>> from dataclasses import replace
    >>> from orderbook import MarkRule, Shock, default_scenario
    >>> from orderbook.market_scenario import IndexSpec, Leg, MarketScenario, Venue
    >>> from orderbook.market_sweep import sweep
    >>> a = default_scenario(0.05)
    >>> b = replace(a, shock=Shock(), rules=replace(a.rules, mark_rule=MarkRule.INDEX))
    >>> ms = MarketScenario((Venue("A", a), Venue("B", b)),
    ...                     (IndexSpec("BTC", (Leg("A"),), feeds=(Leg("B"),)),), steps=40)
    >>> rows = sweep({"venues.A.shock.sell": [500, 1500]}, ms, workers=1)
    >>> [(row["venues.A.shock.sell"], row["venues"]["B"]["liquidated_accounts"])
    ...  for row in rows]
    [(500, 18), (1500, 85)]
    """
    if executor is not None and workers is not None:
        raise TypeError("give executor or workers, not both (size your executor yourself)")
    if not isinstance(market, MarketScenario):
        raise TypeError(f"sweep needs a MarketScenario, got {type(market).__name__}")
    if not isinstance(grid, dict):
        raise ConfigTypeError(f"grid must be a dict {{parameter: [values]}}, got "
                              f"{type_name(grid)}")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)):
            raise ConfigTypeError(f"parameter {name!r}: its values must be a list, got "
                                  f"{type_name(values)} {show(values)}")
        if not values:
            raise ConfigError(f"parameter {name!r} has no values")
    # Checked here, in this process, so a bad name, value or combination fails before any run.
    grid = {name: [coerce_param(market, name, v) for v in values]
            for name, values in grid.items()}
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    tasks = [(with_params(market, point), point, arbitrage) for point in points]
    with reporting(progress, [("sweep", len(tasks))], "runs") as report:
        rows = list(_map_runs(_run_point, tasks, executor=executor, workers=workers,
                              progress=report))
    for i, row in enumerate(rows):
        for name, summary in row["venues"].items():
            at = f"sweep run {_point_text(points[i])}: venue {name!r}"
            if summary.get("static_mark"):
                warnings.warn(f"{at}: {STATIC_MARK_NOTE}", InertSettingWarning, stacklevel=2)
            for text in summary.get("inert_settings", ()):
                warnings.warn(f"{at}: {text}", InertSettingWarning, stacklevel=2)
            note = unresolved_note(summary)
            if note is not None:
                warnings.warn(f"{at} ended unresolved: {note}", UnresolvedAccountsWarning,
                              stacklevel=2)
    return rows


@dataclass
class MarketComparison:
    """Runs of one market under several rule sets, each set on the venues of ``ruled``."""

    results: dict
    ruled: tuple

    def plot(self, path) -> None:
        """Draw the runs (needs matplotlib): each venue's price path under each rule set and
        the accounts liquidated per venue and rule set
        (:func:`orderbook._plot_market.plot_market_comparison`)."""
        from ._plot_market import plot_market_comparison

        plot_market_comparison(self, path)

    @property
    def table(self) -> list[dict]:
        """One row per rule set and venue: ``rules`` (the set's name), ``venue``,
        ``ruled`` (whether the set was applied to this venue), then the venue's summary."""
        return [{"rules": name, "venue": venue, "ruled": venue in self.ruled,
                 **result.summary}
                for name, market in self.results.items()
                for venue, result in market.venues.items()]


def compare(rule_sets: dict, market: MarketScenario, *, venue: str | None = None,
            arbitrage: bool = True, progress=None) -> MarketComparison:
    """Run ``market`` under each of ``rule_sets`` ({name: Rules, or a dict of ``[rules]`` keys
    that change the venue's own rules, as a rules file does, ``venue = "binance"`` among
    them}), applied to the venue called ``venue`` (default: every venue with accounts),
    everything else as it is. Every set is checked on every venue before any run (ConfigError
    naming the set, the venue and the value; KeyError for an unknown venue).
    ``progress(done, total)`` is called after each step of each run, in steps (``total``: the
    rule sets times ``market.steps``); ``progress=True`` draws a bar a rule set on stderr.

    Examples
    --------
    The market of :func:`sweep`'s example, venue B's accounts closed whole or in part:

    >>> from dataclasses import replace
    >>> from orderbook import MarkRule, Shock, default_scenario
    >>> from orderbook.market_scenario import IndexSpec, Leg, MarketScenario, Venue
    >>> from orderbook.market_sweep import compare
    >>> a = default_scenario(0.05)
    >>> b = replace(a, shock=Shock(), rules=replace(a.rules, mark_rule=MarkRule.INDEX))
    >>> ms = MarketScenario((Venue("A", a), Venue("B", b)),
    ...                     (IndexSpec("BTC", (Leg("A"),), feeds=(Leg("B"),)),), steps=40)
    >>> sets = {"full": {"sizing": "FULL"}, "partial": {"sizing": "FRACTION"}}
    >>> table = compare(sets, ms, venue="B").table
    >>> [(row["rules"], row["liquidated_accounts"], row["forced_orders"])
    ...  for row in table if row["venue"] == "B"]
    [('full', 85, 85), ('partial', 85, 194)]
    """
    from .config import rules_from_dict  # config imports this module's callers, not it

    if not isinstance(market, MarketScenario):
        raise TypeError(f"compare needs a MarketScenario, got {type(market).__name__}")
    if not isinstance(rule_sets, dict) or not rule_sets:
        raise ConfigError(f"rule_sets must be a non-empty dict {{name: Rules}}, got "
                          f"{show(rule_sets)}")
    if venue is None:
        ruled = tuple(v.name for v in market.venues if _accounts(v.scenario))
    else:
        ruled = (market.venue(venue).name,)
    markets = {}
    for name, rules in rule_sets.items():
        if not isinstance(rules, (Rules, dict)):
            raise ConfigTypeError(f"rule_sets[{name!r}] must be a Rules or a dict of [rules] "
                                  f"keys, got {type_name(rules)}")
        params = {}
        for target in ruled:
            s = market.venue(target).scenario
            try:
                params[f"venues.{target}.rules"] = rules if isinstance(rules, Rules) else \
                    rules_from_dict(rules, s.rules, table="rules", scenario=s)
            except ConfigError as exc:
                raise type(exc)(f"rules {name!r} on venue {target!r}: {exc}") from None
        try:
            markets[name] = with_params(market, params)
        except ConfigError as exc:
            raise type(exc)(f"rules {name!r} on {', '.join(map(repr, ruled))}: {exc}") from None
    steps = market.steps
    results = {}
    with reporting(progress, [(name, steps) for name in markets], "steps") as report:
        for k, (name, ms) in enumerate(markets.items()):
            log.info("market compare: rule set %r", name)
            results[name] = run(ms, arbitrage=arbitrage,
                                progress=_counting(report, k * steps, len(markets) * steps))
    return MarketComparison(results, ruled)
