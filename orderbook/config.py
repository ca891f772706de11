"""Scenarios as TOML files: load, validate, write back.

A scenario file sets any of the :class:`~orderbook.scenario.Scenario` fields; everything it leaves
out keeps the value of the **built-in scenario** :func:`~orderbook.scenario.default_scenario`
(not the bare dataclass defaults, which differ: the built-in book is 1,000 levels 50 ticks apart,
the population 20,000 accounts at 2-75x, and so on). ``orderbook show`` prints the effective
scenario of a file with every value filled in.

Layout (units as in :mod:`orderbook.scenario`: ticks, lots, quote units, ppm, steps)::

    tick_size = "0.1"          # decimal strings (numbers are accepted too)
    lot_size = "0.001"
    quote_unit = "none"        # "none": tick_size * lot_size
    steps = 120
    seed = 7
    engine = "compiled"        # or "reference"

    [book]                     # a synthetic DepthProfile ...
    mid = 1_000_000
    levels = 1000
    step = 50
    touch_qty = 60             # lots at the touch on average; may have a fraction (1.2)
    # ... or an ExplicitBook instead: bids = [[price, lots], ...], asks = [[price, lots], ...]
    # ... or real depth from a Binance USD-M capture, read when the file is loaded:
    # binance = "capture.gz"   (relative to the scenario file), at = "end" | "snapshot" | local
    # ns | "HH:MM[:SS]" (UTC), within_ppm = 20_000 (levels within 2 % of the mid),
    # covered_only = false (every known level; true: only the snapshot's price window, where
    # the depth is complete); tick_size/lot_size as the scenario's

    [population]               # Population fields (leverage and size as [low, high]) ...
    count = 20_000
    leverage = [2.0, 75.0]
    # ... or an ExplicitPopulation: side = [1, -1, ...], size, entry, collateral (equal lengths)

    [liquidity]
    rate = 2_000
    half_life = 10.0

    [shock]
    sell = 30_000
    index_path = []            # ticks, one per step (index mark rules)
    funding_basis_path = []    # ppm, one per step (the FAIR mark: index x (1 + basis))
    orders = [[5, "SELL", 1_000]]   # [step, side, lots]

    [rules]
    venue = "binance"               # optional: start from a venue's preset (orderbook.venues)
    mark_rule = "INDEX_CLAMPED"     # enums by name: MarkRule, Sizing, LimitRule, Deficit, ...
    sizing = "FRACTION"
    fraction_above = 0              # quote units: FRACTION closes positions worth no more whole
    cooldown_rounds = 0             # rounds of whole orders after a partial FRACTION step
    increment = 0                   # quote units of notional per INCREMENTAL step (>= 1 there)
    limit_rule = "BAND"             # (formerly limit, still accepted)
    deficit = "ADL"
    takeover_below_ppm = 0          # ppm of MM: take over below it (Hyperliquid 666_667)
    adl_ranking = "BITMEX"          # AdlRanking: BITMEX, PNL_RATIO, BINANCE
    trigger = "BELOW"               # Trigger: BELOW (E < MM), AT_OR_BELOW (E <= MM)
    mm_basis = "MARK"               # MarginBasis: MARK (mark notional), ENTRY (entry value)
    close_order = "ALL"             # CloseOrder: ALL, LARGEST_MM, LARGEST_LOSS, PRO_RATA
    round_cap = "none"              # optional values take "none"
    tiers = [[2_000_000_000, 4_000, 8_000], ["none", 25_000, 50_000]]

Unknown tables or keys, values of the wrong type and values out of range raise
:class:`ConfigError` (a ValueError; :class:`UnknownKeyError` is also a KeyError and
:class:`ConfigTypeError` also a TypeError) with a message naming the table, the key and the value,
e.g. ``[rules] sizing = 'HALF' is not one of FULL, FRACTION, RESTORE``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import replace
from enum import IntEnum
from pathlib import Path

from ._settings import (
    ConfigError,
    ConfigTypeError,
    UnknownKeyError,
    convert,
    renamed,
    schema,
    show,
    type_name,
)
from .events import Side
from .scenario import (
    TABLES,
    Clock,
    Contract,
    DepthProfile,
    ExplicitBook,
    ExplicitPopulation,
    Flow,
    Funding,
    IndexModel,
    Liquidity,
    Population,
    Rules,
    Scenario,
    Shock,
    coerce_param,
    contract_units,
    default_scenario,
    quote_unit,
    scale_scenario,
)

__all__ = [
    "ConfigError", "UnknownKeyError", "ConfigTypeError", "load_scenario", "loads_scenario",
    "scenario_from_dict", "scenario_to_dict", "scenario_to_toml", "save_scenario", "load_rules",
    "rules_from_dict", "rules_table", "coerce_param", "parse_values", "scale_scenario",
    "dumps_toml",
]



# ----------------------------------------------------------------------------------- schema
# Each key's converter is declared once, on its dataclass field in orderbook.scenario.
_TOP = schema(Scenario)
_DEPTH = schema(DepthProfile)
_EXPLICIT_BOOK = schema(ExplicitBook)
_BINANCE_BOOK = ("binance", "at", "within_ppm", "covered_only")
_POPULATION = schema(Population)
_EXPLICIT_POPULATION = schema(ExplicitPopulation)
_LIQUIDITY = schema(Liquidity)
_SHOCK = schema(Shock)
_CLOCK = schema(Clock)
_FUNDING = schema(Funding)
_RULES = schema(Rules)
_RULES_RENAMED = renamed(Rules)
_CONTRACT = schema(Contract)
_INDEX_MODEL = schema(IndexModel)


def _fields(table: str | None, d, keys: dict, old_names: dict | None = None) -> dict:
    """A table's values converted, by key; an older key name ({old: key}) counts as its key."""
    if not isinstance(d, dict):
        raise ConfigTypeError(f"[{table}] must be a table, got {type_name(d)} {show(d)}")
    out = {}
    for key, value in d.items():
        name = old_names.get(key, key) if old_names else key
        if name != key and name in d:
            raise ConfigError(f"[{table}] {key} is the older name of {name}; give {name} only")
        out[name] = convert(table, key, value, keys, old_names)
    return out


def _binance_book(d, tick_size, lot_size, root) -> ExplicitBook:
    # Real depth is read once, here, into an ExplicitBook: the Scenario stays a frozen,
    # picklable value that does not depend on the file still being there.
    from .data.binance import read_capture, replay

    extra = set(d) - set(_BINANCE_BOOK)
    if extra:
        raise UnknownKeyError(f"[book] key {sorted(extra)[0]!r} cannot go with binance "
                              f"(known: {', '.join(_BINANCE_BOOK)})")
    path = d["binance"]
    if not isinstance(path, str):
        raise ConfigTypeError(f"[book] binance must be a file path string, got {show(path)}")
    at = d.get("at", "end")
    if isinstance(at, bool) or not (at in ("end", "snapshot") or isinstance(at, int)
                                    or isinstance(at, str) and ":" in at):
        # checked before the capture is read, so a typo does not cost a parse
        raise ConfigError(f"[book] at must be \"end\", \"snapshot\", a local time in ns or "
                          f"a clock time \"HH:MM[:SS]\" (UTC), got {show(at)}")
    within = d.get("within_ppm", 20_000)
    if isinstance(within, bool) or not isinstance(within, int) or not 0 < within < 1_000_000:
        raise ConfigError(f"[book] within_ppm must be an integer in (0, 1000000), got "
                          f"{show(within)}")
    covered = d.get("covered_only", False)
    if not isinstance(covered, bool):
        raise ConfigTypeError(f"[book] covered_only must be true or false, got {show(covered)}")
    if "\0" in path or not path:
        raise ConfigError(f"[book] binance must be a file path, got {show(path)}")
    full = Path(path) if Path(path).is_absolute() else Path(root) / path
    try:
        rebuilt = replay(read_capture(full, tick_size=tick_size, lot_size=lot_size))
        state = rebuilt.book_when(at, name="[book] at")
    except OSError as exc:
        raise ConfigError(f"[book] binance = {show(path)}: cannot read {full}: "
                          f"{exc.strerror or exc}") from None
    except ValueError as exc:  # DataError (a damaged capture), or steps it cannot use
        raise ConfigError(f"[book] binance = {show(path)}: {exc}") from None
    if state.best_bid() is None or state.best_ask() is None:
        raise ConfigError(f"[book] binance = {show(path)}: the book at {show(at)} has "
                          f"{len(state.bids)} bid and {len(state.asks)} ask levels; a scenario "
                          f"needs both sides")
    mid = (state.best_bid()[0] + state.best_ask()[0]) // 2
    book = ExplicitBook.from_l2(
        state, price_range=(mid - mid * within // 1_000_000, mid + mid * within // 1_000_000),
        covered_only=covered)
    try:
        _check_explicit_book(book)
    except ConfigError as exc:
        raise ConfigError(f"[book] binance = {show(path)} at {show(at)} within_ppm = "
                          f"{within}: {str(exc).removeprefix('[book] ')}") from None
    return book


def _check_explicit_book(book: ExplicitBook) -> None:
    if not book.bids or not book.asks:
        raise ConfigError(f"[book] an explicit book needs both bids and asks, got "
                          f"{len(book.bids)} bid and {len(book.asks)} ask levels")
    best_bid, best_ask = max(p for p, _ in book.bids), min(p for p, _ in book.asks)
    if best_bid >= best_ask:
        raise ConfigError(f"[book] bids and asks cross: best bid {best_bid} >= best ask "
                          f"{best_ask}")


def _book(d, base, tick_size="0.1", lot_size="0.001", root=".", *,
          table: str = "book") -> DepthProfile | ExplicitBook:
    if not isinstance(d, dict):
        raise ConfigTypeError(f"[{table}] must be a table, got {type_name(d)} {show(d)}")
    if "binance" in d:
        return _binance_book(d, tick_size, lot_size, root)
    if set(d) & set(_EXPLICIT_BOOK):
        extra = set(d) - set(_EXPLICIT_BOOK)
        if extra:
            raise UnknownKeyError(
                f"[{table}] key {sorted(extra)[0]!r} cannot go with bids/asks: an explicit book "
                f"takes only bids and asks (a synthetic one: {', '.join(_DEPTH)})")
        book = ExplicitBook(**_fields(table, d, _EXPLICIT_BOOK))
        _check_explicit_book(book)
        return book
    unknown = set(d) - set(_DEPTH)
    if unknown:
        key = sorted(unknown)[0]
        raise UnknownKeyError(f"[{table}] unknown key {key!r} (known: {', '.join(_DEPTH)}; or "
                              f"bids and asks for an explicit book)")
    start = base if isinstance(base, DepthProfile) else DepthProfile()
    return replace(start, **_fields(table, d, _DEPTH))


def _population(d, base) -> Population | ExplicitPopulation:
    if not isinstance(d, dict):
        raise ConfigTypeError(f"[population] must be a table, got {type_name(d)} {show(d)}")
    explicit_only = set(_EXPLICIT_POPULATION) - set(_POPULATION)  # side, entry, collateral
    if set(d) & explicit_only:
        extra = set(d) - set(_EXPLICIT_POPULATION)
        if extra:
            raise UnknownKeyError(
                f"[population] key {sorted(extra)[0]!r} cannot go with side/entry/collateral: "
                f"an explicit population takes only {', '.join(_EXPLICIT_POPULATION)}")
        missing = [k for k in _EXPLICIT_POPULATION if k not in d]
        if missing:
            raise ConfigError(f"[population] an explicit population needs all of "
                              f"{', '.join(_EXPLICIT_POPULATION)}; missing {', '.join(missing)}")
        pop = ExplicitPopulation(**_fields("population", d, _EXPLICIT_POPULATION))
        lengths = {k: len(getattr(pop, k)) for k in _EXPLICIT_POPULATION}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"[population] side, size, entry and collateral must have the same "
                              f"length, got {lengths}")
        return pop
    unknown = set(d) - set(_POPULATION)
    if unknown:
        key = sorted(unknown)[0]
        raise UnknownKeyError(f"[population] unknown key {key!r} (known: {', '.join(_POPULATION)}"
                              f"; or side, size, entry, collateral for an explicit population)")
    start = base if isinstance(base, Population) else Population()
    return replace(start, **_fields("population", d, _POPULATION))


def rules_from_dict(d: dict, base: Rules | None = None, *, table: str = "rules",
                    scenario: Scenario | None = None) -> Rules:
    """Rules from a ``[rules]`` table's contents, unset keys taken from ``base`` (default: the
    built-in scenario's rules). A ``venue`` key starts from that venue's preset instead
    (:mod:`orderbook.venues`, in ``scenario``'s units; default the built-in scenario's), and
    the table's other keys change it."""
    base = default_scenario().rules if base is None else base
    if isinstance(d, dict) and "venue" in d:
        from .venues import rules as venue_rules

        d = dict(d)
        name = d.pop("venue")
        try:
            base = venue_rules(name, replace(scenario or default_scenario(), rules=base))
        except TypeError as exc:
            raise ConfigTypeError(f"[{table}] venue = {show(name)}: {exc}") from None
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"[{table}] venue = {show(name)}: {exc.args[0]}") from None
    return replace(base, **_fields(table, d, _RULES, _RULES_RENAMED))


def scenario_from_dict(d: dict, base: Scenario | None = None, *, root=".") -> Scenario:
    """A Scenario from a dict laid out like a scenario file (see the module docstring).

    Tables and keys ``d`` leaves out keep their values in ``base``, by default the built-in
    :func:`~orderbook.scenario.default_scenario` (whose values differ from the bare dataclass
    defaults). Relative data paths (``[book] binance``) are taken from ``root``. Raises
    :class:`ConfigError` (ValueError, KeyError or TypeError) naming the table, key and value of
    the first problem.
    """
    base = default_scenario() if base is None else base
    if not isinstance(d, dict):
        raise ConfigTypeError(f"a scenario must be a table, got {type_name(d)}")
    if "venues" in d:
        raise ConfigError("[[venues]] makes this a scenario of several venues: `orderbook run`, "
                          "`compare` and `sweep` run it; from Python, "
                          "orderbook.market_scenario.load_market reads it")
    changes = {}
    for key, value in d.items():
        if key in TABLES or key in ("instruments", "index_model", "agents", "flows"):
            continue
        if key not in _TOP:
            raise UnknownKeyError(f"unknown top-level key {key!r} (known: "
                                  f"{', '.join(list(_TOP) + [f'[{t}]' for t in TABLES])}, "
                                  f"[[instruments]], [[agents]], [[flows]])")
        changes[key] = convert(None, key, value, _TOP)
    if "index_model" in d:
        model = d["index_model"]
        changes["index_model"] = None if model == "none" else IndexModel(
            **_fields("index_model", model, _INDEX_MODEL))
    if "agents" in d:
        changes["agents"] = _agents(d["agents"])
    if "flows" in d:
        changes["flows"] = _flows(d["flows"])
    if "instruments" in d:
        changes["instruments"] = _contracts(d["instruments"], root)
        if changes["instruments"]:
            for table in ("book", "shock"):
                if table in d:
                    raise ConfigError(f"[{table}] cannot go with [[instruments]]: give each "
                                      f"instrument its own ([instruments.{table}])")
            # The base's book and shock (the built-in one sells) belong to its one instrument.
            changes["book"], changes["shock"] = DepthProfile(), Shock()
    if "book" in d:
        changes["book"] = _book(d["book"], base.book,
                                changes.get("tick_size", base.tick_size),
                                changes.get("lot_size", base.lot_size), root)
    if "population" in d:
        changes["population"] = _population(d["population"], base.population)
    if "liquidity" in d:
        changes["liquidity"] = replace(base.liquidity, **_fields("liquidity", d["liquidity"],
                                                                   _LIQUIDITY))
    if "shock" in d:
        changes["shock"] = replace(base.shock, **_fields("shock", d["shock"], _SHOCK))
    if "clock" in d:
        changes["clock"] = replace(base.clock, **_fields("clock", d["clock"], _CLOCK))
    if "funding" in d:
        changes["funding"] = replace(base.funding, **_fields("funding", d["funding"],
                                                             _FUNDING))
    if "rules" in d:
        if not isinstance(d["rules"], dict):
            raise ConfigTypeError(f"[rules] must be a table, got {type_name(d['rules'])} "
                                  f"{show(d['rules'])}")
        changes["rules"] = rules_from_dict(d["rules"], base.rules,
                                           scenario=replace(base, **changes))
    scenario = replace(base, **changes)
    _check_units(scenario)
    return scenario


def _contracts(items, root) -> tuple:
    """``[[instruments]]``: each a table of Contract keys with optional book and shock tables."""
    if not isinstance(items, list):
        raise ConfigTypeError(f"[[instruments]] must be an array of tables, got "
                              f"{type_name(items)} {show(items)}")
    out, names = [], set()
    for i, item in enumerate(items):
        table = f"instruments[{i}]"
        if not isinstance(item, dict):
            raise ConfigTypeError(f"[{table}] must be a table, got {type_name(item)} "
                                  f"{show(item)}")
        plain = {k: v for k, v in item.items() if k not in ("book", "shock")}
        fields = _fields(table, plain, _CONTRACT)
        contract = Contract(**fields)
        if "book" in item:
            contract = replace(contract, book=_book(item["book"], contract.book,
                                                    contract.tick_size, contract.lot_size,
                                                    root, table=f"{table}.book"))
        if "shock" in item:
            contract = replace(contract, shock=replace(
                Shock(), **_fields(f"{table}.shock", item["shock"], _SHOCK)))
        if contract.name in names:
            raise ConfigError(f"[{table}] name = {show(contract.name)} is given twice")
        names.add(contract.name)
        out.append(contract)
    return tuple(out)


def _kind_tables(key: str, items, kinds: dict, what: str, hint: str = ""):
    """Each table of an ``[[key]]`` array with the class its ``kind`` names in ``kinds``:
    (table name, class, the table's other keys); a ConfigError naming the first bad one."""
    if not isinstance(items, list):
        raise ConfigTypeError(f"[[{key}]] must be an array of tables, got "
                              f"{type_name(items)} {show(items)}")
    for i, item in enumerate(items):
        table = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigTypeError(f"[{table}] must be a table, got {type_name(item)} "
                                  f"{show(item)}")
        kind = item.get("kind")
        if kind not in kinds:
            raise ConfigError(f"[{table}] kind = {show(kind)} is not {what} (one of "
                              f"{', '.join(kinds)}){hint}")
        yield table, kinds[kind], {k: v for k, v in item.items() if k != "kind"}


def _agents(items) -> tuple:
    """``[[agents]]``: each a table naming a built-in agent's ``kind`` and its settings."""
    from .agents import AGENT_KINDS

    out = []
    for table, cls, plain in _kind_tables("agents", items, AGENT_KINDS, "a built-in agent",
                                          "; agents of your own go to run() from Python"):
        try:
            out.append(cls(**_fields(table, plain, schema(cls))))
        except (ValueError, TypeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"[{table}] {exc}") from None
    return tuple(out)


#: The flow models a scenario file names in ``[[flows]]`` by ``kind``.
def _flow_kinds() -> dict:
    from .flows import HawkesFlow, PoissonFlow

    return {"poisson": PoissonFlow, "hawkes": HawkesFlow}


def _flows(items) -> tuple:
    """``[[flows]]``: each a table naming a flow model's ``kind``, its ``instrument`` (index,
    default 0) and the model's settings."""
    out = []
    for table, cls, plain in _kind_tables("flows", items, _flow_kinds(), "a flow model"):
        instrument = convert(table, "instrument", plain.pop("instrument", 0), schema(Flow))
        try:
            out.append(Flow(cls(**_fields(table, plain, schema(cls))), instrument))
        except ConfigError as exc:
            raise type(exc)(f"[{table}] {exc}") from None
    return tuple(out)


def _flow_table(flow) -> dict:
    spec = flow if isinstance(flow, Flow) else Flow(flow)
    kinds = {cls: kind for kind, cls in _flow_kinds().items()}
    model = spec.model
    out = {"kind": kinds[type(model)], "instrument": spec.instrument}
    for name in schema(type(model)):
        value = getattr(model, name)
        out[name] = _table(value) if dataclasses.is_dataclass(value) else _plain(value)
    return out


def _agent_table(agent) -> dict:
    from .agents import AGENT_KINDS

    kinds = {cls: kind for kind, cls in AGENT_KINDS.items()}
    if type(agent) not in kinds:
        raise ConfigError(f"agent {type(agent).__name__} is not a built-in agent (one of "
                          f"{', '.join(AGENT_KINDS)}): a scenario file cannot hold it")
    return {"kind": kinds[type(agent)],
            **{name: _plain(getattr(agent, name)) for name in schema(type(agent))}}


def _check_units(s: Scenario) -> None:
    for c in s.instruments:
        # each instrument's k at the scenario's quote unit (instrument 0's tick x lot when None)
        try:
            contract_units(replace(s, quote_unit=str(quote_unit(s))), c)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[[instruments]] {c.name}: tick_size = {c.tick_size!r}, "
                              f"lot_size = {c.lot_size!r}, quote_unit = {s.quote_unit!r} do "
                              f"not fit: {exc}") from None
    if s.instruments:
        return
    try:
        quote_unit(s)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"top-level tick_size = {s.tick_size!r}, lot_size = {s.lot_size!r}, "
                          f"quote_unit = {s.quote_unit!r} do not fit: {exc}") from None


def _parse_toml(text: str) -> dict:
    """tomllib.loads with every failure a ConfigError (no path: the callers add it)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (sys.int_info)
        raise ConfigError(f"invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError("invalid TOML: arrays or tables nested too deeply") from None


def _read_toml(path) -> dict:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: byte {raw[exc.start:exc.start + 1]!r} is not "
                          f"UTF-8 (TOML files are UTF-8)") from None
    try:
        return _parse_toml(text)
    except ConfigError as exc:
        raise _in_file(path, exc) from None


def _in_file(path, exc: ConfigError) -> ConfigError:
    return type(exc)(f"{path}: {exc}")


def loads_scenario(text: str, base: Scenario | None = None) -> Scenario:
    """A Scenario from TOML text (see :func:`scenario_from_dict`)."""
    return scenario_from_dict(_parse_toml(text), base)


def _require_settings(path, d: dict, what: str) -> None:
    # An empty file (or /dev/null, or only comments) is almost always a mistake (a wrong path,
    # a file not yet written); running the built-in values silently would hide it.
    if not d:
        raise ConfigError(f"{path}: the {what} file sets nothing (it is empty or only "
                          f"comments); give it some settings, or leave it out to use the "
                          f"built-in {what}")


def load_scenario(path, base: Scenario | None = None) -> Scenario:
    """Read a scenario TOML file (stdlib ``tomllib``); omitted tables and keys keep the values of
    ``base``, by default the built-in :func:`~orderbook.scenario.default_scenario`.

    Errors are :class:`ConfigError` (ValueError; KeyError for unknown keys, TypeError for wrong
    types) whose message starts with the file name and names the table, key and value. A file
    that sets nothing (empty, only comments) is a ConfigError too, not the built-in scenario.
    """
    d = _read_toml(path)
    _require_settings(path, d, "scenario")
    try:
        return scenario_from_dict(d, base, root=Path(path).parent)
    except ConfigError as exc:
        raise _in_file(path, exc) from None


def load_rules(path, base: Rules | None = None, scenario: Scenario | None = None) -> Rules:
    """Read a rules file: a ``[rules]`` table (or the same keys at the top level). Keys it leaves
    out keep their values in ``base`` (default: the built-in scenario's rules); a ``venue`` key
    starts from that preset in ``scenario``'s units. A file that sets nothing is a
    :class:`ConfigError`."""
    d = rules_table(path)
    try:
        return rules_from_dict(d, base, scenario=scenario)
    except ConfigError as exc:
        raise _in_file(path, exc) from None


def rules_table(path) -> dict:
    """The ``[rules]`` table of a rules file (or its keys at the top level), as read, for
    :func:`rules_from_dict` with each venue's rules as the base (``orderbook compare`` on a
    file of several venues). A file that sets nothing, or holds more, is a
    :class:`ConfigError` naming it."""
    d = _read_toml(path)
    _require_settings(path, d, "rules")
    if "rules" not in d:
        return d
    if len(d) > 1:
        key = sorted(set(d) - {"rules"})[0]
        raise _in_file(path, UnknownKeyError(f"a rules file holds only a [rules] table (or its "
                                             f"keys at the top level), got {key!r} besides it"))
    return d["rules"]


# ------------------------------------------------------------------------------ writing
def _plain(value):
    """A dataclass value as TOML-ready data: enums by name, None as "none", tuples as lists."""
    if value is None:
        return "none"
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def scenario_to_dict(s: Scenario) -> dict:
    """The scenario as a dict in the file layout, every field present (TOML-ready: enums by name,
    None as ``"none"``). ``scenario_from_dict(scenario_to_dict(s)) == s``."""
    out = {f.name: _plain(getattr(s, f.name)) for f in dataclasses.fields(s)
           if f.name not in TABLES
           and f.name not in ("instruments", "index_model", "agents", "flows")}
    for table in TABLES:
        if not (s.instruments and table in ("book", "shock")):   # each instrument's instead
            out[table] = _table(getattr(s, table))
    if s.index_model is not None:
        out["index_model"] = _table(s.index_model)
    if s.agents:
        out["agents"] = [_agent_table(agent) for agent in s.agents]
    if s.flows:
        out["flows"] = [_flow_table(flow) for flow in s.flows]
    if s.instruments:
        out["instruments"] = [
            {**{name: _plain(getattr(c, name)) for name in _CONTRACT},
             "book": _table(c.book), "shock": _table(c.shock)} for c in s.instruments]
    return out


def _table(obj) -> dict:
    out = {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Shock):
        out["orders"] = [[when, Side(side).name, lots] for when, side, lots in obj.orders]
    return out


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _is_tables(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dumps_toml(d: dict) -> str:
    """Write a dict of scalars, arrays, one level of tables and arrays of tables (whose own
    tables are written as sub-tables) as TOML text."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items()
             if not isinstance(v, dict) and not _is_tables(v)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    for k, v in d.items():
        if _is_tables(v):
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {_toml_value(vv)}"
                                             for kk, vv in item.items()
                                             if not isinstance(vv, dict)]
                for kk, vv in item.items():
                    if isinstance(vv, dict):
                        lines += ["", f"[{k}.{kk}]"] + [
                            f"{kkk} = {_toml_value(vvv)}" for kkk, vvv in vv.items()]
    return "\n".join(lines) + "\n"


def scenario_to_toml(s: Scenario) -> str:
    """The scenario as TOML text that :func:`loads_scenario` reads back to an equal Scenario."""
    return dumps_toml(scenario_to_dict(s))


def save_scenario(s: Scenario, path) -> None:
    """Write the scenario as a TOML file (every field spelled out)."""
    Path(path).write_text(scenario_to_toml(s), encoding="utf-8")


# ------------------------------------------------------------------- parameters, scaling
def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    items, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items]


def parse_values(text: str) -> list:
    """Parse a comma-separated list of TOML values (``0,10000,20000``, ``[2,50],[2,100]``,
    ``"FULL","FRACTION"``); bare words (``FULL``, ``none``) are taken as strings."""
    values = []
    for item in _split_top(text):
        if not item:
            raise ConfigError(f"empty value in {text!r}")
        try:
            values.append(tomllib.loads(f"v = {item}")["v"])
        except tomllib.TOMLDecodeError:
            if all(c.isalnum() or c in "_-." for c in item):
                values.append(item)
            else:
                raise ConfigError(f"cannot read {item!r} as a TOML value") from None
    return values
