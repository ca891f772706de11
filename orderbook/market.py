"""Several venues tied together: index prices computed from their books feed their marks, and
arbitrageurs trade the spread between them (issue #13, docs/market_wide.md section 5).

A :class:`Market` holds named venues, each an :class:`~orderbook.Engine` (or the reference
engine) with its own instruments, accounts, insurance fund and liquidator; an account lives on
one venue. :meth:`Market.add_index` computes an index (:class:`~orderbook.price_index.PriceIndex`)
from some venues' prices and sets it on the instruments whose mark follows an index (``INDEX``,
``INDEX_CLAMPED``, ``FAIR``), so a cascade on one venue moves the marks of the others.
:class:`Arbitrageur` buys on the venue with the lowest ask and sells on the one with the highest
bid while the gap pays, within its capital (each of its accounts is margined, and can be
liquidated, like any other). :meth:`Market.step` advances everything by one step.

Units: prices in ticks (every leg of an index or an arbitrageur has the same tick size), sizes in
lots, money in each venue's quote units, rates in ppm.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from . import _validation as check
from ._engine_args import instrument_arg
from .errors import OrderError
from .events import FORCED_DTYPE, EventKind, MarkRule, Side
from .price_index import IndexRule, PriceIndex

__all__ = ["Market", "Arbitrageur", "PRICE_SOURCES"]

#: What a constituent contributes to an index: the last trade or the mid of the best bid/ask.
PRICE_SOURCES = ("last", "mid")
_INDEX_MARKS = (MarkRule.INDEX, MarkRule.INDEX_CLAMPED, MarkRule.FAIR)


@dataclass
class _Index:
    name: str
    index: PriceIndex
    legs: list          # [(venue, instrument index)] in the order given
    feeds: list         # [(venue, instrument index)] whose set_index it calls
    source: str


class Arbitrageur:
    """Buys where an instrument is cheapest and sells where it is dearest, across venues.

    ``owner``: its account id on every venue of ``legs`` (``[(venue, instrument), ...]``; open
    the accounts, with their capital, before adding it). Each step, while the highest best bid
    passes the lowest best ask by more than ``threshold_ppm`` of that ask, it sends an IOC buy at
    the ask on the cheap venue and then an IOC sell, of what the buy filled, at the bid on the
    dear one: at most the lots at those two prices and ``max_lots`` a step. An order its capital
    cannot carry (the venue's initial margin check) ends its step; so does an empty side. Its
    orders take ids from ``first_order_id`` up, on every venue.
    """

    def __init__(self, owner, legs, *, threshold_ppm=0, max_lots=2**40,
                 first_order_id=2**61):
        self.owner = check.as_int64("owner", owner)
        self.legs = list(legs)
        if len(self.legs) < 2:
            raise ValueError(f"legs must name at least two (venue, instrument) pairs, got "
                             f"{legs!r}")
        self.threshold_ppm = check.as_int64("threshold_ppm", threshold_ppm)
        if not 0 <= self.threshold_ppm <= 10**6:
            raise ValueError(f"threshold_ppm must be in [0, 10**6], got {threshold_ppm}")
        self.max_lots = check.as_positive("max_lots", max_lots)
        self.next_id = check.as_int64("first_order_id", first_order_id)
        if self.next_id < 0:
            raise ValueError(f"first_order_id must be >= 0, got {first_order_id}")
        self.trades = 0     # round trips made
        self.lots = 0       # lots bought (= sold) in them

    def act(self, market: Market) -> None:
        """One step of arbitrage on ``market`` (the legs resolved by :meth:`Market.add`)."""
        made = 0
        while made < self.max_lots:
            quotes = []
            for venue, i in self._resolved:
                book = market.venues[venue].books[i]
                quotes.append((venue, i, book.best_bid(), book.best_ask()))
            asks = [(ask, n) for n, (_, _, _, ask) in enumerate(quotes) if ask is not None]
            bids = [(-bid, n) for n, (_, _, bid, _) in enumerate(quotes) if bid is not None]
            if not asks or not bids:
                return
            ask, low = min(asks)
            bid, high = min(bids)
            bid = -bid
            if low == high or 10**6 * (bid - ask) <= self.threshold_ppm * ask:
                return
            buy_venue, buy_i = quotes[low][:2]
            sell_venue, sell_i = quotes[high][:2]
            lots = min(self.max_lots - made,
                       market.venues[buy_venue].books[buy_i].quantity_at(Side.SELL, ask),
                       market.venues[sell_venue].books[sell_i].quantity_at(Side.BUY, bid))
            bought = self._fill(market, buy_venue, buy_i, Side.BUY, ask, lots)
            if not bought:
                return
            sold = self._fill(market, sell_venue, sell_i, Side.SELL, bid, bought)
            self.trades += 1
            self.lots += bought
            made += bought
            if sold < bought:
                return

    def _fill(self, market, venue, i, side, price, lots) -> int:
        order_id = self.next_id
        self.next_id += 1
        try:
            events = market.venues[venue].ioc(order_id, side, price, lots, self.owner,
                                              instrument=i)
        except OrderError:
            return 0   # its capital on that venue cannot carry it
        return sum(int(ev.qty) for ev in events
                   if ev.kind == EventKind.TRADE and ev.order_id == order_id)


class Market:
    """Named venues (``{name: Engine}``), their indexes and their arbitrageurs."""

    def __init__(self, venues: dict):
        if not isinstance(venues, dict) or not venues:
            raise ValueError(f"venues must be a non-empty dict {{name: Engine}}, got {venues!r}")
        for name, engine in venues.items():
            if not hasattr(engine, "instruments") or not engine.instruments:
                raise ValueError(f"venue {name!r} has no instruments")
        self.venues = dict(venues)
        self.indexes: list[_Index] = []
        self.arbitrageurs: list[Arbitrageur] = []
        self.steps = 0

    # ------------------------------------------------------------------------ wiring
    def _leg(self, leg, what: str) -> tuple[str, int]:
        if not isinstance(leg, tuple) or len(leg) != 2:
            raise TypeError(f"{what} must be (venue, instrument), got {leg!r}")
        venue, instrument = leg
        if venue not in self.venues:
            raise KeyError(f"{what}: venue {venue!r} is not one of {list(self.venues)}")
        names = [spec.name for spec in self.venues[venue].instruments]
        try:
            return venue, instrument_arg(instrument, names)   # the engines' own check
        except KeyError as exc:
            raise KeyError(f"{what} of venue {venue!r}: {exc.args[0]}") from None

    def _lot(self, leg) -> tuple[str, Decimal]:
        """What one lot of a leg is: base units (a linear contract's lot_size), or quote
        currency (an inverse contract's contract_value x lot_size)."""
        venue, i = leg
        spec = self.venues[venue].instruments[i]
        if spec.contract_value is not None:
            return "quote", (Decimal(spec.contract_value) * Decimal(spec.lot_size)).normalize()
        return "base", Decimal(spec.lot_size).normalize()

    def _tick(self, leg) -> Decimal:
        venue, i = leg
        return Decimal(self.venues[venue].instruments[i].tick_size)

    def add_index(self, name: str, weights: dict, *, rule: IndexRule | None = None,
                  feeds=None, source: str = "last") -> PriceIndex:
        """An index ``name`` over the (venue, instrument) legs of ``weights`` ({leg: integer
        weight}), priced at each leg's ``source`` (``"last"`` or ``"mid"``), set on the
        instruments of ``feeds`` (default: every leg whose mark rule follows an index) at
        every step. ValueError for a feed whose mark does not follow the index (it could not
        move it), legs of different tick sizes, or an unknown source."""
        if source not in PRICE_SOURCES:
            raise ValueError(f"source must be one of {PRICE_SOURCES}, got {source!r}")
        legs = {self._leg(leg, f"index {name!r} leg"): w for leg, w in weights.items()}
        ticks = {self._tick(leg) for leg in legs}
        if len(ticks) > 1:
            raise ValueError(f"index {name!r}: its legs have different tick sizes "
                             f"{sorted(ticks)}; prices in ticks would not compare")
        if feeds is None:
            fed = [leg for leg in legs if self._mark_rule(leg) in _INDEX_MARKS]
        else:
            fed = [self._leg(leg, f"index {name!r} feed") for leg in feeds]
            for leg in fed:
                if self._mark_rule(leg) not in _INDEX_MARKS:
                    raise ValueError(f"index {name!r} feed {leg}: its mark rule is "
                                     f"{self._mark_rule(leg).name}, which an index cannot move "
                                     f"(INDEX, INDEX_CLAMPED or FAIR can)")
                if self._tick(leg) not in ticks:
                    raise ValueError(f"index {name!r} feed {leg} has tick size "
                                     f"{self._tick(leg)}, the index's legs {ticks.pop()}")
        index = PriceIndex(legs, rule)
        self.indexes.append(_Index(name, index, list(legs), fed, source))
        self._refresh(self.indexes[-1])
        return index

    def _mark_rule(self, leg):
        venue, i = leg
        return MarkRule(int(self.venues[venue].instruments[i].mark_rule))

    def add(self, arbitrageur: Arbitrageur) -> None:
        """Let ``arbitrageur`` trade at every step; its legs must share a tick size and the
        amount a lot holds (it trades lot for lot: linear legs the same lot_size, inverse legs
        the same contract_value x lot_size), and its account must exist on each venue."""
        legs = [self._leg(leg, "arbitrageur leg") for leg in arbitrageur.legs]
        if len({self._tick(leg) for leg in legs}) > 1:
            raise ValueError("arbitrageur legs have different tick sizes")
        lots = {leg: self._lot(leg) for leg in legs}
        if len(set(lots.values())) > 1:
            # it buys and sells lot for lot: a lot must be the same amount on every leg
            held = ", ".join(f"{venue}: {amount:f} {what}"
                             for (venue, _), (what, amount) in lots.items())
            raise ValueError(f"arbitrageur legs hold different amounts per lot (it trades lot "
                             f"for lot): {held}")
        for venue, _ in legs:
            if arbitrageur.owner not in self.venues[venue].owners():
                raise KeyError(f"arbitrageur owner {arbitrageur.owner} has no account on venue "
                               f"{venue!r}")
        arbitrageur._resolved = legs
        self.arbitrageurs.append(arbitrageur)

    # ------------------------------------------------------------------------ running
    def _price(self, leg, source: str):
        venue, i = leg
        book = self.venues[venue].books[i]
        if source == "last":
            return book.last_price
        bid, ask = book.best_bid(), book.best_ask()
        return None if bid is None or ask is None else (bid + ask) // 2

    def _refresh(self, ix: _Index) -> int | None:
        value = ix.index.update({leg: self._price(leg, ix.source) for leg in ix.legs})
        if value is not None:
            for venue, i in ix.feeds:
                self.venues[venue].set_index(value, instrument=i)
        return value

    def refresh_indexes(self) -> dict:
        """Recompute every index from the venues' books and set it on its feeds; returns
        {index name: value (None before any price)}."""
        return {ix.name: self._refresh(ix) for ix in self.indexes}

    def step(self, *, liquidating=None) -> dict:
        """One step: the indexes from the books, one liquidation round on every venue (in
        order; only on the venues named in ``liquidating`` when given), the indexes again, then
        every arbitrageur. Returns {venue: the records its round made
        (FORCED_DTYPE)}."""
        self.refresh_indexes()
        out = {}
        for name, engine in self.venues.items():
            first = engine.forced_order_count
            if liquidating is None or name in liquidating:
                engine.liquidation_round()
            out[name] = engine.forced_orders(start=first)
        self.refresh_indexes()
        for arbitrageur in self.arbitrageurs:
            arbitrageur.act(self)
        self.steps += 1
        return out

    def run(self, steps: int) -> dict:
        """:meth:`step` ``steps`` times; returns {venue: all their records, with a ``step``
        array of the step that made each} as {venue: (records, steps)}."""
        count = check.as_count("steps", steps)
        made = {name: [] for name in self.venues}
        at = {name: [] for name in self.venues}
        for _ in range(count):
            for name, records in self.step().items():
                made[name].append(records)
                at[name].append(np.full(len(records), self.steps - 1, dtype=np.int64))
        return {name: (np.concatenate(made[name]) if made[name] else
                       np.zeros(0, dtype=FORCED_DTYPE),
                       np.concatenate(at[name]) if at[name] else np.zeros(0, np.int64))
                for name in self.venues}
