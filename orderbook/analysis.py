"""Static liquidation analysis of a venue's starting state: where the leveraged accounts'
liquidation prices sit beside the book's depth (:func:`liquidation_map`), and the cascade the
book and the shock imply when nothing else moves (:func:`cascade_forecast`).

Both read a state and change nothing: a :class:`~orderbook.scenario.Scenario` (its starting
state is built, before any shock, as :func:`~orderbook.scenario.run` builds it), a built
``orderbook._market.Market`` (the state it holds now), or an engine (``orderbook.Engine`` or
``orderbook.reference_engine.Engine``) as it stands.

Units: prices in ticks, sizes in lots, money in quote units (an inverse venue's coin units),
rates in ppm. Money and sizes are exact integers; only ratios are floats.

See docs/analysis.md for what they compute and what they assume.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .events import (
    INSURANCE_FUND,
    INT64_MAX,
    PPM,
    LimitRule,
    MarginBasis,
    MarkRule,
    Settlement,
    Sizing,
    Trigger,
)
from .margin import asset_value, contract_value, inverse_unit_value, unit_value

__all__ = ["MAP_DTYPE", "CRITICALITY_DTYPE", "FORECAST_INSTRUMENT_DTYPE", "LiquidationMap",
           "CascadeForecast", "liquidation_map", "cascade_forecast", "plot_liquidation_map",
           "DEFAULT_BAND_PPM", "ASSUMPTIONS"]

#: One price level (or band) of one instrument in a :class:`LiquidationMap`. ``price``: the
#: level in ticks (a band's lowest price). ``long_*``: the long positions whose liquidation
#: price is there (they SELL when liquidated), ``short_*``: the short ones (they BUY):
#: accounts, lots and notional (quote units, each position valued at its instrument's mark, as
#: ``PositionInfo.notional``). ``bid_*`` / ``ask_*``: the book's resting lots there and their
#: value at the level's price (quote units).
MAP_DTYPE = np.dtype([
    ("instrument", "<i4"), ("price", "<i8"),
    ("long_accounts", "<i8"), ("long_lots", "<i8"), ("long_notional", "<i8"),
    ("short_accounts", "<i8"), ("short_lots", "<i8"), ("short_notional", "<i8"),
    ("bid_lots", "<i8"), ("bid_notional", "<i8"), ("ask_lots", "<i8"), ("ask_notional", "<i8"),
])

#: One price band of a :class:`CascadeForecast`'s criticality table. ``direction`` -1: a band
#: below the reference price (long liquidations, bids), +1: above it (short liquidations,
#: asks). ``band``: its number counted from the reference outward (0 touches it); ``low`` and
#: ``high``: its prices in ticks, both included. ``liquidation_*``: the lots of the positions
#: whose liquidation price is in the band and their value at that price (quote units);
#: ``depth_*``: the resting lots that absorb them there and their value at their own prices.
#: ``ratio`` = liquidation_notional / depth_notional, the liquidation notional a move through
#: the band triggers per unit of the depth it meets there (inf when the band holds no depth,
#: 0 when no liquidation): above 1 the band's forced orders outweigh its depth.
#: ``cumulative_ratio`` = (the shock's lots that way + the liquidation lots of every band from
#: the reference to this one) / the depth lots of those bands: above 1 in every band down to
#: here, the shock and what it sets off outrun the book that far (roughly: a position in a
#: band triggers only once the price reaches its own level).
CRITICALITY_DTYPE = np.dtype([
    ("direction", "i1"), ("band", "<i8"), ("low", "<i8"), ("high", "<i8"),
    ("liquidation_lots", "<i8"), ("liquidation_notional", "<i8"),
    ("depth_lots", "<i8"), ("depth_notional", "<i8"),
    ("ratio", "<f8"), ("cumulative_ratio", "<f8"),
])

#: One instrument of a :class:`CascadeForecast` (``by_instrument``). ``low``/``high``: the
#: lowest sell / highest buy trade price of the walk (ticks; 0: no such trade).
#: ``liquidated_accounts``: accounts with a position closed on it; ``liquidated_lots``: their
#: lots sent to its book; ``liquidated_notional``: the value of what filled (quote units);
#: ``unfilled_lots``: lots (the shock's and forced) that found no resting order on an
#: exhausted side; ``book_exhausted``: a side ran out.
FORECAST_INSTRUMENT_DTYPE = np.dtype([
    ("instrument", "<i4"), ("low", "<i8"), ("high", "<i8"), ("liquidated_accounts", "<i8"),
    ("liquidated_lots", "<i8"), ("liquidated_notional", "<i8"), ("unfilled_lots", "<i8"),
    ("book_exhausted", "?"),
])

#: The criticality table's band width when none is given: 0.5 % of the reference price.
DEFAULT_BAND_PPM = 5_000

#: What :func:`cascade_forecast` assumes, whatever the venue's rules (``assumptions``).
ASSUMPTIONS = (
    "static: the starting book and the shock's market orders alone; no refill, no recovery, "
    "no agents, no clock (every shock order is sent first, whatever its step; index and "
    "funding-basis paths are not followed)",
    "only aggregated level quantities matter: market orders walk each side best level first",
    "each instrument's mark after a generation is the last level its orders reached in the "
    "direction that filled more lots (a LAST mark ending on the move; the starting mark when "
    "nothing traded)",
    "an account holding one position is crossed when that mark reaches its liquidation "
    "price; one holding several, or collateral assets, when its equity at the marks falls "
    "short of its maintenance margin, reckoned as the engine reckons it",
    "a crossed account's whole position on every instrument goes to the books as market "
    "orders at once: FULL sizing, MARKET limit, no round cap, no take-over, no ADL",
)


# --------------------------------------------------------------------------- the state
def _k(engine, spec) -> int:
    """Quote units one lot of ``spec`` (an Engine.instruments entry) is worth per tick (an
    inverse venue: the k of V = floor(k q / p)), as the engine derives it."""
    tick, lot = Decimal(spec.tick_size), Decimal(spec.lot_size)
    if engine.settlement == Settlement.INVERSE:
        value = spec.contract_value if spec.contract_value is not None else \
            engine.contract_value
        return inverse_unit_value(tick, lot, engine.quote_unit, value)[1]
    return unit_value(tick, lot, engine.quote_unit)[1]


def _engine_classes() -> tuple:
    from .engine import Engine as Compiled
    from .reference_engine import Engine as Reference

    return Compiled, Reference


class _Side:
    """One side of one book, best level first: prices (ticks), lots, and running sums of lots
    and of their value (quote units), as Python ints."""

    def __init__(self, prices, lots, inverse: bool, k: int):
        self.prices = [int(p) for p in prices]
        self.lots = [int(q) for q in lots]
        self.values = [contract_value(inverse, k, p, q)
                       for p, q in zip(self.prices, self.lots, strict=True)]
        self.cum_lots, self.cum_values = [], []
        lots_sum = value_sum = 0
        for q, v in zip(self.lots, self.values, strict=True):
            lots_sum += q
            value_sum += v
            self.cum_lots.append(lots_sum)
            self.cum_values.append(value_sum)
        self.total = lots_sum
        self.inverse, self.k = inverse, k

    def reached(self, lots: int) -> int | None:
        """The price of the last level a market order of ``lots`` reaches (ticks; the deepest
        level when the side holds fewer lots), None when it trades nothing."""
        if lots <= 0 or not self.prices:
            return None
        return self.prices[min(bisect_left(self.cum_lots, lots), len(self.prices) - 1)]

    def value_of(self, lots: int) -> int:
        """The value (quote units) of the first ``lots`` lots of the side, best first; all of
        the side's when it holds fewer."""
        if lots <= 0 or not self.prices:
            return 0
        i = bisect_left(self.cum_lots, lots)
        if i == len(self.prices):
            return self.cum_values[-1]
        before = self.cum_values[i - 1] if i else 0
        part = lots - (self.cum_lots[i - 1] if i else 0)
        return before + contract_value(self.inverse, self.k, self.prices[i], part)


class _Venue:
    """What both analyses read of a venue, taken once: its books, every non-exempt account's
    positions with their liquidation prices, the marks, and the shock of each instrument."""

    def __init__(self, engine, shocks: list):
        self.engine = engine
        specs = engine.instruments
        self.names = [spec.name for spec in specs]
        self.inverse = engine.settlement == Settlement.INVERSE
        self.ks = [_k(engine, spec) for spec in specs]
        self.shocks = shocks
        count = len(specs)
        self.marks = [engine.mark_price(i) for i in range(count)]
        self.mids = [engine.books[i].mid() for i in range(count)]
        self.bids, self.asks, self.stops = [], [], 0
        for i, book in enumerate(engine.books):
            # every level: a book holds at most as many levels a side as it holds orders
            l2 = book.l2(book.n_orders)
            self.bids.append(_Side(l2.bid_price.tolist(), l2.bid_qty.tolist(), self.inverse,
                                   self.ks[i]))
            self.asks.append(_Side(l2.ask_price.tolist(), l2.ask_qty.tolist(), self.inverse,
                                   self.ks[i]))
            self.stops += book.n_stops
        # Every non-exempt account's open positions, by owner (POSITION_DTYPE): read in one
        # call, as a population of millions would take seconds through account().
        rows = engine.positions()
        rows = rows[~rows["exempt"] & (rows["owner"] != INSURANCE_FUND)]
        self.positions = rows
        # legs[i]: instrument i's rows (owner, position, liquidation price, notional, ...)
        self.legs = [rows[rows["instrument"] == i] for i in range(count)]
        # Accounts holding several positions, or one and collateral assets, are not found by
        # a liquidation price (theirs moves with the other marks): the engine evaluates each
        # of them at the marks every round, and so does the forecast, with these figures.
        self.baskets = {}           # owner -> (collateral, legs, holdings)
        self.approximate = set()    # baskets whose margin the forecast could not reproduce
        self.sign = -1 if self.inverse else 1   # an inverse long profits as V falls
        self.entry_basis = engine.mm_basis == MarginBasis.ENTRY
        self.at_or_below = engine.trigger == Trigger.AT_OR_BELOW
        self.tiers = [spec.tiers for spec in specs]
        owners, counts = np.unique(rows["owner"], return_counts=True)
        # a venue with collateral assets: who holds them is read account by account
        candidates = owners if engine.assets else owners[counts > 1]
        parts = engine._asset_parts()
        for owner in candidates.tolist():
            info = engine.account(owner)
            assets = [(parts[h.asset]["instrument"], h.balance, parts[h.asset]["num"],
                       parts[h.asset]["den"], parts[h.asset]["haircut_ppm"])
                      for h in info.assets if h.balance]
            if len(info.positions) > 1 or assets:
                costs = [(p.instrument, p.position, p.cost) for p in info.positions]
                self.baskets[owner] = (info.collateral, costs, assets)
                # the check that makes the evaluation the engine's: its equity and
                # maintenance margin at the starting marks, reproduced exactly
                if self.margin(owner, self.marks) != (info.equity, info.maintenance_margin):
                    self.approximate.add(owner)

    def leg_tuples(self, i: int) -> list:
        """Instrument ``i``'s legs as (owner, signed lots, liquidation price or None, notional
        at the mark) tuples."""
        legs = self.legs[i]
        liq = [p if has else None for p, has in zip(legs["liquidation_price"].tolist(),
                                                    legs["has_liquidation_price"].tolist(),
                                                    strict=True)]
        return list(zip(legs["owner"].tolist(), legs["position"].tolist(), liq,
                        legs["notional"].tolist(), strict=True))

    def margin(self, owner: int, marks: list) -> tuple[int, int] | None:
        """(equity, maintenance margin) of basket ``owner`` (quote units) at ``marks`` (ticks,
        one per instrument), as the engine's ledger reckons them; None when a mark it needs is
        unknown (the engine liquidates no account holding an unmarked instrument)."""
        collateral, legs, assets = self.baskets[owner]
        equity, margin = collateral, 0
        for i, lots, cost in legs:
            price = marks[i]
            if price is None:
                return None
            value = contract_value(self.inverse, self.ks[i], price, abs(lots))
            equity += self.sign * (value - cost if lots > 0 else cost - value)
            margin += self.tiers[i].maintenance(cost if self.entry_basis else value)
        for i, units, num, den, haircut in assets:
            if marks[i] is None:
                return None
            equity += asset_value(units, marks[i], num, den, haircut)
        return equity, margin

    def crossed(self, owner: int, marks: list) -> bool:
        """Whether basket ``owner`` is liquidatable at ``marks`` (the engine's trigger)."""
        figures = self.margin(owner, marks)
        if figures is None:
            return False
        equity, margin = figures
        return equity <= margin if self.at_or_below else equity < margin

    def value(self, i: int, price: int, lots: int) -> int:
        return contract_value(self.inverse, self.ks[i], price, lots)


def _shock_of(value, where: str):
    """``value`` checked as a Shock (its sell, buy and orders as a scenario file's are)."""
    from ._settings import convert, schema
    from .scenario import Shock

    if not isinstance(value, Shock):
        raise TypeError(f"{where} must be an orderbook.Shock, got {type(value).__name__} "
                        f"{value!r}")
    keys = schema(Shock)
    for key in ("sell", "buy", "orders"):
        convert(where, key, getattr(value, key), keys)
    return value


def _venue(source, shock=None) -> _Venue:
    """The state of ``source`` (a Scenario, a built Market or an engine) and its shocks; an
    explicit ``shock`` (a Shock, or one per instrument) replaces them."""
    from ._market import Market
    from .scenario import Scenario, Shock

    if shock is not None:   # checked before a scenario is built
        single = isinstance(shock, Shock)
        given = [shock] if single else shock
        if not isinstance(given, (list, tuple)):
            raise TypeError(f"shock must be a Shock or a sequence of one Shock per instrument, "
                            f"got {type(shock).__name__} {shock!r}")
        given = [_shock_of(s, "shock" if single else f"shock[{i}]")
                 for i, s in enumerate(given)]
    if isinstance(source, Scenario):
        source = Market(source)
    if isinstance(source, Market):
        engine, shocks = source.engine, [c.shock for c in source.contracts]
    elif isinstance(source, _engine_classes()):
        engine, shocks = source, [Shock()] * len(source.instruments)
    else:
        raise TypeError(f"source must be a Scenario, a built orderbook._market.Market or an "
                        f"Engine, got {type(source).__name__}")
    if shock is not None:
        if len(given) != len(engine.instruments):
            raise ValueError(f"shock must give one Shock per instrument "
                             f"({len(engine.instruments)}), got {len(given)}")
        shocks = given
    return _Venue(engine, shocks)


def _instrument(names: list, instrument, name: str = "instrument") -> int:
    """The index of ``instrument`` (an index or a name) among ``names``, a venue's
    instruments; KeyError for an unknown name, ValueError for an index out of range,
    TypeError for anything else."""
    if isinstance(instrument, str):
        if instrument not in names:
            raise KeyError(f"{name} {instrument!r} is not an instrument of the venue (its "
                           f"instruments: {', '.join(names)})")
        return list(names).index(instrument)
    if isinstance(instrument, bool) or not isinstance(instrument, (int, np.integer)):
        raise TypeError(f"{name} must be an instrument's index or name, got "
                        f"{type(instrument).__name__} {instrument!r}")
    if not 0 <= instrument < len(names):
        raise ValueError(f"{name} must be in [0, {len(names) - 1}] (the venue has "
                         f"{len(names)} instrument{'s' if len(names) > 1 else ''}), got "
                         f"{int(instrument)}")
    return int(instrument)


def _instrument_type(instrument, name: str = "instrument") -> None:
    """TypeError unless ``instrument`` can name an instrument (an int index or a str)."""
    if isinstance(instrument, bool) or not isinstance(instrument, (str, int, np.integer)):
        raise TypeError(f"{name} must be an instrument's index or name, got "
                        f"{type(instrument).__name__} {instrument!r}")


def _whole(name: str, value, lo: int, hi: int = INT64_MAX) -> int:
    """``value`` as an int in [lo, hi]; TypeError (not an integer) or ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {int(value)}")
    return int(value)


def _int64(name: str, value: int) -> int:
    if value > INT64_MAX:
        raise OverflowError(f"{name} {value} passes int64")
    return value


# ---------------------------------------------------------------------- liquidation map
@dataclass(frozen=True, eq=False)
class LiquidationMap:
    """Where the leveraged accounts' liquidation prices sit, per instrument and price level,
    beside the book's resting depth (:func:`liquidation_map`).

    Attributes
    ----------
    levels : numpy.ndarray
        MAP_DTYPE rows, by instrument then price ascending: only levels (bands) holding a
        liquidation price or resting depth.
    instruments : tuple of str
        Every instrument's name; ``levels["instrument"]`` indexes it.
    tick_sizes, lot_sizes : tuple of Decimal
        Price units per tick and base units per lot of each instrument.
    quote_unit : Decimal
        Quote currency (an inverse venue's coin) per quote unit.
    ks : tuple of int
        Each instrument's k: quote units one lot is worth per tick (an inverse venue: the k of
        V = floor(k q / p) coin units); ``orderbook.margin.contract_value`` values lots with it.
    money : str
        ``"quote"``, or ``"coin"`` on an inverse venue.
    marks : tuple of int or None
        Each instrument's mark when the map was taken (ticks).
    mids : tuple of float or None
        Each instrument's book mid then (ticks; None when a side is empty).
    band_ticks : int or None
        The band width the levels are aggregated into (ticks), None: one row per level.
    unpriced : numpy.ndarray
        MAP_DTYPE, one row per instrument mapped (``price`` -1): positions with no
        liquidation price (a long its collateral covers down to 0, a short whose price would
        pass ``max_price`` or whose own collateral asset outweighs it), which no move of that
        instrument alone liquidates; zero depth.
    """

    levels: np.ndarray
    instruments: tuple
    tick_sizes: tuple
    lot_sizes: tuple
    quote_unit: Decimal
    ks: tuple
    money: str
    marks: tuple
    mids: tuple
    band_ticks: int | None
    unpriced: np.ndarray

    def of(self, instrument) -> np.ndarray:
        """The rows of one instrument (its index or name)."""
        return self.levels[self.levels["instrument"] == _instrument(self.instruments,
                                                                     instrument)]

    def to_rows(self) -> list[dict]:
        """The levels as plain dicts (instrument by name), for JSON."""
        names = self.instruments
        return [{"instrument": names[int(row["instrument"])],
                 **{key: int(row[key]) for key in MAP_DTYPE.names[1:]}} for row in self.levels]


def _side_choice(side) -> str | None:
    if side is None:
        return None
    if not isinstance(side, str):
        raise TypeError(f"side must be None, 'long' or 'short', got {type(side).__name__} "
                        f"{side!r}")
    if side not in ("long", "short"):
        raise ValueError(f"side must be None, 'long' or 'short', got {side!r}")
    return side


def liquidation_map(source, *, instrument=None, side=None,
                    band_ticks: int | None = None) -> LiquidationMap:
    """The liquidation notional each price level would trigger, beside the book's depth there.

    Every non-exempt account's position (house, makers, the backstop and the insurance fund
    are left out, and so are flat positions) is put at its own liquidation price
    (``PositionInfo.liquidation_price``, ticks): longs, which SELL when liquidated, at the
    highest price at which a fall takes them; shorts, which BUY, at the lowest at which a rise
    does. A cross account holding several instruments has one liquidation price per
    position, each computed holding its other positions (and collateral assets) at their
    marks, so a move of several instruments at once liquidates it elsewhere
    (:func:`cascade_forecast` evaluates such accounts at every mark at once instead). The
    book's resting depth is given at the same levels: bids below the price, asks above.

    Parameters
    ----------
    source : Scenario, Market or Engine
        A Scenario (its starting state is built as ``run`` builds it, before the shock), a
        built ``orderbook._market.Market`` or an engine, read as it stands; never changed.
    instrument : int, str or None
        One instrument (index or name); None: every instrument.
    side : {None, "long", "short"}
        ``"long"``: long liquidations and bids only; ``"short"``: short liquidations and asks
        only; None: both.
    band_ticks : int or None
        Aggregate levels into bands of this many ticks (``price`` = ``band_ticks`` x
        floor(level / ``band_ticks``), the band's lowest price); None: every level.

    Returns
    -------
    LiquidationMap
        Its ``levels`` (MAP_DTYPE): lots and exact notional (quote units) per level and side.
        Positions are valued at their mark (``PositionInfo.notional``), depth at its level's
        price; the totals of ``long_notional`` and ``short_notional`` plus ``unpriced`` are
        the population's longs' and shorts' notional.

    Raises
    ------
    TypeError, ValueError, KeyError
        A bad ``source``, ``instrument`` (KeyError: an unknown name), ``side`` or
        ``band_ticks``, named with its value.
    """
    side = _side_choice(side)
    if band_ticks is not None:
        band_ticks = _whole("band_ticks", band_ticks, 1)
    if instrument is not None:
        _instrument_type(instrument)   # before a scenario is built
    venue = _venue(source)
    only = None if instrument is None else _instrument(venue.names, instrument)
    return _map(venue, only, side, band_ticks)


def _map(venue: _Venue, only: int | None, side: str | None,
         band_ticks: int | None) -> LiquidationMap:
    count = len(venue.names)
    chosen = range(count) if only is None else [only]
    fields = MAP_DTYPE.names[2:]
    rows, unpriced = [], []
    for i in chosen:
        cells = {}            # price -> [the ten figures of MAP_DTYPE after instrument, price]
        loose = [0] * len(fields)

        def at(price, _cells=cells):
            key = price if band_ticks is None else price // band_ticks * band_ticks
            return _cells.setdefault(key, [0] * len(fields))

        for _, lots, liq, notional in venue.leg_tuples(i):
            long = lots > 0
            if side is not None and long != (side == "long"):
                continue
            cell = loose if liq is None else at(liq)
            base = 0 if long else 3
            cell[base] += 1
            cell[base + 1] += abs(lots)
            cell[base + 2] += notional
        for book, base, name in ((venue.bids[i], 6, "long"), (venue.asks[i], 8, "short")):
            if side is not None and side != name:
                continue
            for price, lots, value in zip(book.prices, book.lots, book.values, strict=True):
                cell = at(price)
                cell[base] += lots
                cell[base + 1] += value
        for price in sorted(cells):
            rows.append((i, price, *(_int64(f"liquidation map {venue.names[i]} at {price}",
                                            v) for v in cells[price])))
        unpriced.append((i, -1, *loose))
    return LiquidationMap(
        levels=np.array(rows, dtype=MAP_DTYPE), instruments=tuple(venue.names),
        tick_sizes=tuple(Decimal(s.tick_size) for s in venue.engine.instruments),
        lot_sizes=tuple(Decimal(s.lot_size) for s in venue.engine.instruments),
        quote_unit=venue.engine.quote_unit, ks=tuple(venue.ks),
        money="coin" if venue.inverse else "quote", marks=tuple(venue.marks),
        mids=tuple(venue.mids), band_ticks=band_ticks,
        unpriced=np.array(unpriced, dtype=MAP_DTYPE))


# --------------------------------------------------------------------- cascade forecast
@dataclass(frozen=True, eq=False)
class CascadeForecast:
    """The static cascade of a starting state (:func:`cascade_forecast`): what the shock and
    the liquidations it sets off reach on the starting book with nothing else moving.

    Attributes
    ----------
    instrument : int
        The instrument the price figures are of (index into ``Engine.instruments``).
    name : str
        Its name.
    tick_size : Decimal
        Its price units per tick.
    quote_unit : Decimal
        Quote currency (an inverse venue's coin) per quote unit.
    money : str
        ``"quote"``, or ``"coin"`` on an inverse venue.
    start_mark : int or None
        Its mark before the shock (ticks).
    reference : int or None
        The criticality bands' origin: its book mid before the shock rounded down (the mark
        when a side is empty; ticks).
    trough : int or None
        The extreme trade price of the walk in the move's direction (ticks): the lowest sell
        trade for a fall, the highest buy trade for a rise; None when nothing traded there.
        With ``book_exhausted`` it is the deepest level the book had, not an extrapolation.
    direction : int
        -1 a fall (more lots sold than bought on the instrument), +1 a rise, 0 no trade.
    low, high : int or None
        The lowest sell / highest buy trade price on the instrument (ticks), None: none.
    shock_sell_lots, shock_buy_lots : int
        The lots the shock sells / buys on the instrument (all its orders).
    liquidated_accounts : int
        Accounts the fixed point liquidates, on every instrument of the venue (each once).
    liquidated_lots : int
        Lots of their positions on this instrument sent to its book.
    liquidated_notional : int
        The value of what those forced orders filled there (quote units), at the levels the
        walk took them to (an inverse venue: each level's fill valued as one).
    unfilled_lots : int
        Lots (the shock's and forced) that found no resting order on this instrument's
        exhausted side(s).
    rounds : int
        Generations of the walk, as a run's ``generations`` count them: generation 0 is
        crossed by the shock alone (or at the starting mark when nothing traded), generation
        n + 1 by generation n's forced orders.
    accounts_by_round : tuple of int
        Accounts first crossed in each generation.
    book_exhausted : bool
        A side of this instrument's book ran out of orders.
    band_ppm : int
        The criticality bands' width in ppm of ``reference``.
    band_ticks : int
        That width in ticks (at least 1).
    criticality : numpy.ndarray
        CRITICALITY_DTYPE rows, downward bands then upward ones, from the reference outward;
        only bands holding a liquidation price or depth. From the starting state.
    by_instrument : numpy.ndarray
        FORECAST_INSTRUMENT_DTYPE, one row per instrument of the venue.
    assumptions : tuple of str
        What the calculation assumes (``ASSUMPTIONS``).
    caveats : tuple of str
        Where this venue's rules or state differ from those assumptions, so that a run of it
        will differ from the forecast; empty when a run must agree with it.
    """

    instrument: int
    name: str
    tick_size: Decimal
    quote_unit: Decimal
    money: str
    start_mark: int | None
    reference: int | None
    trough: int | None
    direction: int
    low: int | None
    high: int | None
    shock_sell_lots: int
    shock_buy_lots: int
    liquidated_accounts: int
    liquidated_lots: int
    liquidated_notional: int
    unfilled_lots: int
    rounds: int
    accounts_by_round: tuple
    book_exhausted: bool
    band_ppm: int
    band_ticks: int
    criticality: np.ndarray
    by_instrument: np.ndarray
    assumptions: tuple
    caveats: tuple

    @property
    def critical_bands(self) -> np.ndarray:
        """The criticality rows whose ratio passes 1 (forced orders outweigh the depth)."""
        return self.criticality[self.criticality["ratio"] > 1]

    def summary(self) -> dict:
        """The headline figures under ``forecast_*`` keys (ticks, lots, quote units), to sit
        beside a run's summary."""
        return {"forecast_trough": self.trough, "forecast_direction": self.direction,
                "forecast_liquidated_accounts": self.liquidated_accounts,
                "forecast_liquidated_lots": self.liquidated_lots,
                "forecast_liquidated_notional": self.liquidated_notional,
                "forecast_rounds": self.rounds,
                "forecast_book_exhausted": self.book_exhausted,
                "forecast_unfilled_lots": self.unfilled_lots}

    def to_dict(self) -> dict:
        """Every field as plain values (arrays as lists of dicts), for JSON."""
        out = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if isinstance(value, np.ndarray):
                value = [{name: row[name].item() for name in value.dtype.names}
                         for row in value]
            elif isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out


def cascade_forecast(source, *, instrument=0, shock=None,
                     band_ppm: int = DEFAULT_BAND_PPM) -> CascadeForecast:
    """The cascade the starting book and the shock imply when nothing else moves: a fixed
    point.

    The shock's market orders (``Shock.sell`` and ``buy``, then its ``orders`` whatever their
    step; on a venue of several instruments each instrument's own) walk the starting book,
    each side best level first (only the levels' total lots matter). Each instrument's mark
    is then the last level reached in the direction that filled more lots. Every account the
    marks cross is liquidated: one holding a single position when the mark reaches its
    liquidation price (at or below it for a long, at or above for a short), one holding
    several positions or collateral assets when its equity at the marks falls short of its
    maintenance margin, both exactly as the engine decides (the engine indexes the first
    kind by liquidation price and evaluates the second at the marks each round). Its whole
    position on every instrument goes to that instrument's book as a market order. The
    forced orders walk the books further and cross more accounts; the walk repeats until a
    generation crosses no new account (the fixed point) or a side runs out of orders
    (``book_exhausted``: the price then stays at the deepest level there was, and the lots
    left are ``unfilled_lots``).

    This is the static answer, by design: it assumes FULL sizing, a MARKET limit, no round
    cap and no take-over below MM, a mark that is the last trade price, and no refill,
    recovery, agents or clock (``ASSUMPTIONS``); ``caveats`` says where the venue's rules
    differ (FRACTION, RESTORE, TIER_STEP or INCREMENTAL sizing close less than the whole
    position a round and may stop once an account is restored; a BAND or BANKRUPTCY limit
    leaves lots unfilled; a MID or index mark moves differently from the trades).

    Against the scenario runner (``orderbook.run``) with refill and recovery off
    (``Liquidity(half_life=0)``), the shock at step 0 and those rules: where every instrument's
    forced orders go one way (one instrument, or baskets whose legs all lie on one side), the
    forecast is the run's fixed point, exactly: ``trough`` is the run's lowest
    ``series["last"]``, ``liquidated_accounts`` and ``rounds`` its summary's
    ``liquidated_accounts`` and ``generations``, and the ``liquidated_notional`` of every
    instrument summed is its ``liquidated_notional`` (on an inverse venue up to one coin unit a
    fill more: the forecast values each level's fills as one, floor(k q / p) once). Where an
    instrument's forced orders go both ways (baskets long one instrument and short another) a
    run's LAST mark is whichever forced order traded last: a short's forced buy at the ask lifts
    it back across the spread and longs crossed at the bid are not crossed in that round, so a
    run can stop short of the forecast, which holds the mark on the move (``basket.toml`` with
    refill off: 459 accounts forecast, 396 liquidated). Refill and recovery only add bids and
    buying between rounds, so on a one-way fall a run stops no deeper than the forecast (the
    built-in scenario at scale 0.05, seeds 0-19, with its refill and recovery: the same accounts
    and generations in all 20, the same trough in 19 and one level higher in the other).

    Parameters
    ----------
    source : Scenario, Market or Engine
        A Scenario (its starting state is built as ``run`` builds it), a built
        ``orderbook._market.Market`` before its shock (``run`` can pass its own, at no extra
        cost) or an engine as it stands (no shock of its own); never changed.
    instrument : int or str
        The instrument whose trough, lots, notional and criticality are reported (index or
        name); the walk covers every instrument.
    shock : Shock, sequence of Shock, or None
        Replaces the source's shock: a Shock for a venue of one instrument, or one per
        instrument. None: the scenario's (an engine's: no orders).
    band_ppm : int
        Width of the criticality bands in ppm of the reference price (default 5,000 =
        0.5 %), in [1, 10**6]; at least one tick.

    Returns
    -------
    CascadeForecast

    Raises
    ------
    TypeError, ValueError, KeyError
        A bad ``source``, ``instrument`` (KeyError: an unknown name), ``shock`` or
        ``band_ppm``, named with its value.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from orderbook import default_scenario
    >>> from orderbook.analysis import cascade_forecast
    >>> from orderbook.scenario import Liquidity
    >>> scenario = replace(default_scenario(scale=0.05), liquidity=Liquidity(half_life=0))
    >>> f = cascade_forecast(scenario)
    >>> f.trough, f.liquidated_accounts, f.rounds, f.book_exhausted
    (981900, 85, 8, False)
    """
    band_ppm = _whole("band_ppm", band_ppm, 1, PPM)
    _instrument_type(instrument)   # before a scenario is built
    venue = _venue(source, shock)
    return _forecast(venue, _instrument(venue.names, instrument), band_ppm)


def _forecast(venue: _Venue, chosen: int, band_ppm: int) -> CascadeForecast:
    count = len(venue.names)
    shock_sold, shock_bought = [0] * count, [0] * count
    for i, s in enumerate(venue.shocks):
        shock_sold[i] += s.sell
        shock_bought[i] += s.buy
        for _, side, lots in s.orders:
            if side > 0:
                shock_bought[i] += lots
            else:
                shock_sold[i] += lots
    sold, bought = list(shock_sold), list(shock_bought)
    # The order in which a falling (rising) price crosses each instrument's one-position
    # accounts (and, by its positions' own prices, a basket the forecast cannot reckon):
    # liquidation prices (and owners) descending for the longs, ascending for the shorts.
    reckoned = np.array(sorted(set(venue.baskets) - venue.approximate), dtype=np.int64)
    longs, shorts = [], []
    for legs in venue.legs:
        found = legs["has_liquidation_price"] & ~np.isin(legs["owner"], reckoned)
        for crossed, out in ((found & (legs["position"] > 0), longs),
                             (found & (legs["position"] < 0), shorts)):
            liq, owner = legs["liquidation_price"][crossed], legs["owner"][crossed]
            order = np.lexsort((owner, liq))
            if out is longs:
                order = order[::-1]
            out.append((liq[order], owner[order]))
    # the instruments whose prices each reckoned basket depends on
    depends = {owner: {i for i, _, _ in legs} | {i for i, *_ in assets}
               for owner, (_, legs, assets) in venue.baskets.items()
               if owner not in venue.approximate}
    held = venue.positions   # by owner: a liquidated account's every position
    next_long, next_short = [0] * count, [0] * count
    liquidated = np.zeros(0, dtype=np.int64)   # sorted
    by_round = []
    accounts_on = [0] * count
    before = None
    while True:
        prices = [_price_after(venue, i, sold[i], bought[i]) for i in range(count)]
        moved = set(range(count)) if before is None else {
            i for i in range(count) if prices[i] != before[i]}
        before = prices
        new = []
        for i in range(count):
            price = prices[i]
            if price is None:
                continue
            liq, owner = longs[i]
            at = int(np.searchsorted(-liq, -price, side="right"))   # every liq >= price
            new.append(owner[next_long[i]:max(at, next_long[i])])
            next_long[i] = max(at, next_long[i])
            liq, owner = shorts[i]
            at = int(np.searchsorted(liq, price, side="right"))     # every liq <= price
            new.append(owner[next_short[i]:max(at, next_short[i])])
            next_short[i] = max(at, next_short[i])
        # a basket is looked at again only when a price it depends on moved
        new.append(np.array([owner for owner, on in depends.items()
                             if on & moved and not _holds(liquidated, owner)
                             and venue.crossed(owner, prices)], dtype=np.int64))
        fresh = np.setdiff1d(np.concatenate(new), liquidated)
        if not len(fresh):
            break
        by_round.append(len(fresh))
        liquidated = np.union1d(liquidated, fresh)
        rows = _rows_of(held["owner"], fresh)
        for i in range(count):
            lots = held["position"][rows][held["instrument"][rows] == i]
            accounts_on[i] += len(lots)
            sold[i] += _exact_sum(lots[lots > 0])
            bought[i] -= _exact_sum(lots[lots < 0])
    rows = []
    for i in range(count):
        bids, asks = venue.bids[i], venue.asks[i]
        forced = (bids.value_of(sold[i]) - bids.value_of(shock_sold[i])
                  + asks.value_of(bought[i]) - asks.value_of(shock_bought[i]))
        unfilled = max(0, sold[i] - bids.total) + max(0, bought[i] - asks.total)
        rows.append((i, bids.reached(sold[i]) or 0, asks.reached(bought[i]) or 0,
                     accounts_on[i],
                     _int64("liquidated lots", sold[i] - shock_sold[i] + bought[i]
                            - shock_bought[i]),
                     _int64("liquidated notional", forced), _int64("unfilled lots", unfilled),
                     sold[i] > bids.total or bought[i] > asks.total))
    by_instrument = np.array(rows, dtype=FORECAST_INSTRUMENT_DTYPE)
    row = by_instrument[chosen]
    low = int(row["low"]) or None
    high = int(row["high"]) or None
    reference = _reference(venue, chosen)
    direction = _direction(venue, chosen, sold[chosen], bought[chosen])
    trough = low if direction < 0 else high if direction > 0 else None
    band_ticks, criticality = _criticality(venue, chosen, reference, band_ppm,
                                           (shock_sold[chosen], shock_bought[chosen]))
    spec = venue.engine.instruments[chosen]
    return CascadeForecast(
        instrument=chosen, name=venue.names[chosen], tick_size=Decimal(spec.tick_size),
        quote_unit=venue.engine.quote_unit, money="coin" if venue.inverse else "quote",
        start_mark=venue.marks[chosen], reference=reference, trough=trough,
        direction=direction, low=low, high=high, shock_sell_lots=shock_sold[chosen],
        shock_buy_lots=shock_bought[chosen], liquidated_accounts=len(liquidated),
        liquidated_lots=int(row["liquidated_lots"]),
        liquidated_notional=int(row["liquidated_notional"]),
        unfilled_lots=int(row["unfilled_lots"]), rounds=len(by_round),
        accounts_by_round=tuple(by_round), book_exhausted=bool(row["book_exhausted"]),
        band_ppm=band_ppm, band_ticks=band_ticks, criticality=criticality,
        by_instrument=by_instrument, assumptions=ASSUMPTIONS,
        caveats=_caveats(venue) + _two_way(venue, sold, bought, shock_sold, shock_bought))


def _holds(ordered: np.ndarray, owner: int) -> bool:
    """Whether the sorted array ``ordered`` holds ``owner``."""
    at = int(np.searchsorted(ordered, owner))
    return at < len(ordered) and int(ordered[at]) == owner


def _rows_of(owners: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The indices of ``owners`` (sorted) whose owner is one of ``chosen`` (sorted, unique)."""
    lo = np.searchsorted(owners, chosen, side="left")
    counts = np.searchsorted(owners, chosen, side="right") - lo
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    return starts + np.arange(int(counts.sum()))


def _values(venue: _Venue, i: int, prices: np.ndarray, lots: np.ndarray) -> np.ndarray:
    """V(price, lots) of instrument ``i`` row by row (``margin.contract_value``): int64 where
    no value can pass it, else Python ints (an object array)."""
    k = venue.ks[i]
    if not len(prices):
        return np.zeros(0, dtype=np.int64)
    top = float(lots.max()) * k * (1.0 if venue.inverse else float(prices.max()))
    if top < 2.0**62:
        return k * lots // np.maximum(prices, 1) if venue.inverse else prices * lots * k
    return np.array([contract_value(venue.inverse, k, p, q)
                     for p, q in zip(prices.tolist(), lots.tolist(), strict=True)],
                    dtype=object)


def _exact_sums(groups: np.ndarray, count: int, values: np.ndarray) -> list:
    """The sum of ``values`` in each of ``count`` groups (``groups``: each row's), exactly,
    as Python ints."""
    if values.dtype != object and (
            not len(values) or len(values) * float(np.abs(values).max()) < 2.0**62):
        sums = np.zeros(count, dtype=np.int64)
        np.add.at(sums, groups, values)
        return sums.tolist()
    sums = [0] * count
    for g, v in zip(groups.tolist(), values.tolist(), strict=True):
        sums[g] += v
    return sums


def _exact_sum(values: np.ndarray) -> int:
    """The sum of int64 ``values`` as a Python int."""
    return _exact_sums(np.zeros(len(values), dtype=np.intp), 1, values)[0]


def _direction(venue: _Venue, i: int, sold: int, bought: int) -> int:
    """-1 when the walk filled more sells than buys on instrument ``i`` (a fall), +1 more
    buys, 0 neither; as many each way: the side whose last trade lies farther from the
    starting mark (the fall on a tie)."""
    down = min(sold, venue.bids[i].total)
    up = min(bought, venue.asks[i].total)
    if down != up:
        return -1 if down > up else 1
    if down == 0:
        return 0
    low, high = venue.bids[i].reached(sold), venue.asks[i].reached(bought)
    mark = venue.marks[i] if venue.marks[i] is not None else (low + high) // 2
    return -1 if mark - low >= high - mark else 1


def _price_after(venue: _Venue, i: int, sold: int, bought: int) -> int | None:
    """Instrument ``i``'s mark after market orders selling ``sold`` and buying ``bought`` lots
    walked its starting book: the last level reached in the direction that filled more lots
    (a LAST mark ending on the move), the starting mark when nothing traded (ticks)."""
    direction = _direction(venue, i, sold, bought)
    if direction < 0:
        return venue.bids[i].reached(sold)
    if direction > 0:
        return venue.asks[i].reached(bought)
    return venue.marks[i]


def _reference(venue: _Venue, i: int) -> int | None:
    """The mid before the shock rounded down (ticks), the mark when a side is empty, else the
    one side's best price; None for an empty book without a mark."""
    bids, asks = venue.bids[i], venue.asks[i]
    if bids.prices and asks.prices:
        return (bids.prices[0] + asks.prices[0]) // 2
    if venue.marks[i] is not None:
        return venue.marks[i]
    side = bids if bids.prices else asks
    return side.prices[0] if side.prices else None


def _criticality(venue: _Venue, i: int, reference: int | None, band_ppm: int,
                 shock_lots: tuple[int, int]) -> tuple[int, np.ndarray]:
    """(band width in ticks, CRITICALITY_DTYPE rows) of instrument ``i`` around
    ``reference``: long liquidations and bids in the bands below it, short liquidations and
    asks above; ``shock_lots``: the shock's (sold, bought) lots there."""
    if reference is None:
        return 1, np.zeros(0, dtype=CRITICALITY_DTYPE)
    width = max(1, reference * band_ppm // PPM)
    bands = {}   # (direction, band) -> [liquidation lots, notional, depth lots, notional]

    def band_of(direction, price):
        # the band index of each price (arrays) moving that way from the reference; a price on
        # the wrong side of it (a long already crossed there) counts in the first band
        distance = np.where(direction < 0, reference - price, price - reference - 1)
        return np.maximum(0, distance) // width

    legs = venue.legs[i][venue.legs[i]["has_liquidation_price"]]
    lots, liq = legs["position"], legs["liquidation_price"]
    direction = np.where(lots > 0, -1, 1)
    band = band_of(direction, liq)
    order = np.lexsort((band, direction))
    direction, band, lots, liq = direction[order], band[order], lots[order], liq[order]
    first = np.ones(len(direction), dtype=bool)   # each row that starts a group
    first[1:] = (direction[1:] != direction[:-1]) | (band[1:] != band[:-1])
    where = np.cumsum(first) - 1   # each row's (direction, band) group
    count = int(first.sum())
    size = np.abs(lots)
    lot_sums = _exact_sums(where, count, size)
    # what each is worth where it triggers
    value_sums = _exact_sums(where, count, _values(venue, i, liq, size))
    for k, (d, b) in enumerate(zip(direction[first].tolist(), band[first].tolist(),
                                   strict=True)):
        bands[d, b] = [lot_sums[k], value_sums[k], 0, 0]
    for book, direction in ((venue.bids[i], -1), (venue.asks[i], 1)):
        banded = band_of(direction, np.array(book.prices, dtype=np.int64)).tolist()
        for b, lots, value in zip(banded, book.lots, book.values, strict=True):
            cell = bands.setdefault((direction, b), [0, 0, 0, 0])
            cell[2] += lots
            cell[3] += value
    rows = []
    for direction in (-1, 1):
        # what pushes the price that way: the shock's lots, then every band's liquidations
        pushed = shock_lots[0] if direction < 0 else shock_lots[1]
        absorbed = 0
        for band in sorted(b for d, b in bands if d == direction):
            liq_lots, liq_value, depth_lots, depth_value = bands[direction, band]
            pushed += liq_lots
            absorbed += depth_lots
            if direction < 0:
                low, high = reference - (band + 1) * width + 1, reference - band * width
            else:
                low, high = reference + band * width + 1, reference + (band + 1) * width
            rows.append((direction, band, low, high,
                         _int64("liquidation lots", liq_lots),
                         _int64("liquidation notional", liq_value),
                         _int64("depth lots", depth_lots), _int64("depth notional", depth_value),
                         _ratio(liq_value, depth_value), _ratio(pushed, absorbed)))
    return width, np.array(rows, dtype=CRITICALITY_DTYPE)


def _two_way(venue: _Venue, sold: list, bought: list, shock_sold: list,
             shock_bought: list) -> tuple:
    """A caveat per instrument whose forced orders went both ways in the walk: a run's LAST
    mark there is whichever traded last."""
    out = []
    for i, name in enumerate(venue.names):
        down, up = sold[i] - shock_sold[i], bought[i] - shock_bought[i]
        if down and up:
            out.append(f"instrument {name!r}: forced orders go both ways ({down:,} lots sold, "
                       f"{up:,} bought): a run's LAST mark is whichever traded last, and a "
                       f"forced buy at the ask (sell at the bid) lifts (drops) it back across "
                       f"the spread for a round, where the forecast holds it on the move")
    return tuple(out)


def _ratio(num: int, den: int) -> float:
    if num == 0:
        return 0.0
    return math.inf if den == 0 else num / den


def _caveats(venue: _Venue) -> tuple:
    """Where ``venue``'s rules and state differ from the forecast's assumptions."""
    eng = venue.engine
    out = []
    if eng.sizing != Sizing.FULL:
        out.append(f"sizing is {eng.sizing.name}: the run closes part of a position a round "
                   f"and may stop once the account is restored; the forecast closes it whole")
    if eng.limit_rule != LimitRule.MARKET:
        out.append(f"limit_rule is {eng.limit_rule.name}: the run's forced orders stop at a "
                   f"price limit (lots left over are taken over, or wait); the forecast sends "
                   f"market orders")
    if eng.round_cap is not None:
        out.append("round_cap limits what a round sends: the run spreads the cascade over more "
                   "rounds (the fixed point is the same only without refill)")
    if eng.takeover_below_ppm:
        out.append("takeover_below_ppm: the run takes deeply underwater accounts off the book; "
                   "the forecast sends every one to it")
    rules = {spec.mark_rule for spec in eng.instruments}
    if rules != {MarkRule.LAST}:
        names = ", ".join(sorted(rule.name for rule in rules))
        out.append(f"mark rule {names}: the run's mark is not the last trade price that the "
                   f"forecast crosses liquidation prices with")
    if venue.approximate:
        out.append(f"{len(venue.approximate):,} accounts holding several positions (or "
                   f"collateral assets) are crossed by their positions' liquidation prices, "
                   f"each holding the others at their starting marks: the forecast could not "
                   f"reproduce their margin")
    if any(spec.spot for spec in eng.instruments):
        out.append("a liquidated account's collateral sold through a spot book (and the "
                   "conversions that move its mark) is not followed")
    if venue.stops:
        out.append(f"{venue.stops} armed stop orders are not triggered")
    for name, s in zip(venue.names, venue.shocks, strict=True):
        if s.index_path or s.funding_basis_path:
            out.append(f"instrument {name!r}: the shock's index or funding-basis path is not "
                       f"followed")
        if any(step for step, _, _ in s.orders):
            out.append(f"instrument {name!r}: shock orders after step 0 are sent first")
    return tuple(out)


# ---------------------------------------------------------------------------- figure
def plot_liquidation_map(map_or_source, path, *, instrument=0, forecast=None,
                         band_ticks: int | None = None, price_range=None) -> None:
    """Draw one instrument's liquidation map beside its book's depth and save it as PNG.

    Horizontal bars per price band: on the left the notional whose liquidation each band
    would trigger (longs below the mid, shorts above), on the right the book's resting depth
    there (bids, asks) and, in a third panel, both summed from the mid outward (where the
    liquidation curve passes the depth curve, forced orders outweigh the book). The mid
    before the shock is marked, and the forecast trough when a forecast is given (or
    computed: a Scenario or Market source). Prices in price units (ticks x tick size), money
    in quote currency (quote units x quote unit; an inverse venue's coin). Needs matplotlib.

    Parameters
    ----------
    map_or_source : LiquidationMap, Scenario, Market or Engine
        A map (drawn as it is) or a source for :func:`liquidation_map`.
    path : str or path-like
        Where the PNG goes.
    instrument : int or str
        The instrument drawn.
    forecast : CascadeForecast or None
        Its trough is marked; None: computed for a Scenario or Market source (whose shock it
        uses), none for a map or an engine.
    band_ticks : int or None
        Bar height in ticks; None: about 120 bars over the range drawn (at least the map's
        own band).
    price_range : (int, int) or None
        The prices drawn (ticks, low and high); None: the book's extent and the trough, with a
        margin.
    """
    from ._plot_map import plot_map

    if band_ticks is not None:
        band_ticks = _whole("band_ticks", band_ticks, 1)
    if price_range is not None:
        try:
            lo, hi = price_range
        except (TypeError, ValueError):
            raise TypeError(f"price_range must be (low, high) ticks, got "
                            f"{price_range!r}") from None
        lo, hi = _whole("price_range low", lo, 0), _whole("price_range high", hi, 0)
        if lo >= hi:
            raise ValueError(f"price_range must have low < high, got ({lo}, {hi})")
        price_range = (lo, hi)
    if forecast is not None and not isinstance(forecast, CascadeForecast):
        raise TypeError(f"forecast must be a CascadeForecast or None, got "
                        f"{type(forecast).__name__}")
    if isinstance(map_or_source, LiquidationMap):
        chosen = _instrument(map_or_source.instruments, instrument)
        the_map = map_or_source
    else:
        from ._market import Market
        from .scenario import Scenario

        venue = _venue(map_or_source)
        chosen = _instrument(venue.names, instrument)
        the_map = _map(venue, chosen, None, None)
        if forecast is None and isinstance(map_or_source, (Scenario, Market)):
            forecast = _forecast(venue, chosen, DEFAULT_BAND_PPM)
    if forecast is not None and forecast.name != the_map.instruments[chosen]:
        raise ValueError(f"forecast is of instrument {forecast.name!r}, the figure of "
                         f"{the_map.instruments[chosen]!r}")
    plot_map(the_map, chosen, path, forecast=forecast, band_ticks=band_ticks,
             price_range=price_range)
