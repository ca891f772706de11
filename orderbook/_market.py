"""A built scenario: the engine, its seeded book and population, and the scenario's own
accounts (house, market maker, shocker, backstop, value trader) that act on it step by step.

``orderbook.scenario.run`` builds one per run (two with the counterfactual) and steps it; this
module is the simulation's machinery, the scenario module its settings and results.
"""

from __future__ import annotations

import copy
import math
from dataclasses import fields
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from ._settings import ConfigError, convert, schema
from .events import (
    MESSAGE_DTYPE,
    SCENARIO_BACKSTOP,
    SCENARIO_HOUSE,
    SCENARIO_MAKER,
    SCENARIO_SHOCKER,
    SCENARIO_VALUE,
    Asset,
    EventKind,
    Instrument,
    Kind,
    MarkRule,
    Settlement,
    Side,
    Trigger,
)
from .margin import PPM, contract_value, inverse_unit_value, unit_value
from .scenario import DepthProfile, ExplicitPopulation, Shock

if TYPE_CHECKING:
    from .scenario import Scenario

__all__ = ["Market", "engine_class", "engine_settings"]

#: Rules fields that are the scenario's, not the engine's: the backstop account's collateral
#: (the scenario opens that account) and the switch that runs the liquidator at all.
_SCENARIO_ONLY = ("backstop_collateral", "liquidator")

# Owner ids of the scenario's own accounts; the population takes 0 .. count - 1.
HOUSE, MAKER, SHOCKER, BACKSTOP, VALUE = (SCENARIO_HOUSE, SCENARIO_MAKER, SCENARIO_SHOCKER,
                                          SCENARIO_BACKSTOP, SCENARIO_VALUE)


def engine_class(name: str):
    """The Engine class a scenario's ``engine`` setting names."""
    if name == "compiled":
        from .engine import Engine
    elif name == "reference":
        from .reference_engine import Engine
    else:
        raise ValueError(f"engine must be 'compiled' or 'reference', got {name!r}")
    return Engine


def engine_settings(rules) -> dict:
    """The Engine keywords of ``rules``: every Rules field under its own name but the
    scenario's own (``_SCENARIO_ONLY``); the backstop account is the caller's to name."""
    return {f.name: getattr(rules, f.name) for f in fields(rules)
            if f.name not in _SCENARIO_ONLY}


def _held(prices: np.ndarray, level_prices: np.ndarray, level_qty: np.ndarray) -> np.ndarray:
    """Lots resting at each of ``prices`` on a side whose levels are ``level_prices`` (best
    first, so monotonic) holding ``level_qty``; 0 where no level rests."""
    if not len(level_prices):
        return np.zeros(len(prices), dtype=np.int64)
    ascending = level_prices if level_prices[0] <= level_prices[-1] else level_prices[::-1]
    qty = level_qty if level_prices[0] <= level_prices[-1] else level_qty[::-1]
    at = np.minimum(np.searchsorted(ascending, prices), len(ascending) - 1)
    return np.where(ascending[at] == prices, qty[at], 0)


def _margin_at(inverse: bool, k: int, entry: np.ndarray, size: np.ndarray,
               leverage: np.ndarray) -> np.ndarray:
    """Each account's collateral, quote units: ``ceil(V(entry, size) / leverage)``, V as
    ``margin.contract_value``; in int64 and float64 arithmetic where every value fits (the
    same IEEE division as Python's int / float), else one Python int at a time."""
    top = int(entry.max(initial=1)) * int(size.max(initial=1)) * k
    if not inverse and top < 2**53:
        values = entry * size * k
        return np.ceil(values.astype(np.float64) / leverage).astype(np.int64)
    return np.array([math.ceil(contract_value(inverse, k, int(e), int(s)) / lev)
                     for e, s, lev in zip(entry, size, leverage, strict=True)], dtype=np.int64)


class _Contract:
    """One instrument's book as the scenario's liquidity providers see it: the starting mid,
    the depth profile the refill restores around the last trade, and its shock."""

    def __init__(self, index: int, book, shock, rng, place):
        self.index = index
        self.shock = shock
        self.index_path = shock.index_path   # ticks per step (an IndexModel's, when given)
        bid_px, bid_q, ask_px, ask_q = book.sides(rng)
        self.mid0 = int(book.mid)
        self.profile_bid = (self.mid0 - bid_px, bid_q)  # offsets below the mid, lots
        self.profile_ask = (ask_px - self.mid0, ask_q)
        for offsets, _ in (self.profile_bid, self.profile_ask):
            if (np.diff(offsets) <= 0).any():   # the refill reads each level once
                raise ValueError("a depth profile's levels must be distinct, nearest first")
        for px, q in zip(bid_px.tolist(), bid_q.tolist(), strict=True):
            place(Side.BUY, px, q)
        for px, q in zip(ask_px.tolist(), ask_q.tolist(), strict=True):
            place(Side.SELL, px, q)


class Market:
    """A built scenario: the engine plus the bookkeeping of its liquidity providers; one
    instrument, or several (``scenario.instruments``) with a population holding baskets."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        rng = np.random.default_rng(scenario.seed)
        rules = scenario.rules
        engine_cls = engine_class(scenario.engine)
        settings = engine_settings(rules)
        backstop = BACKSTOP if rules.backstop_collateral else None
        contracts = scenario.instruments
        # an inverse venue (docs/liquidation.md, "Inverse contracts"): its two keywords
        inverse = scenario.settlement == Settlement.INVERSE
        venue = ({"settlement": scenario.settlement, "contract_value": scenario.contract_value}
                 if inverse or scenario.contract_value is not None else {})
        if contracts:
            if scenario.shock != Shock() or scenario.book != DepthProfile():
                raise ConfigError("a scenario with instruments takes each instrument's book "
                                  "and shock (Contract.book, Contract.shock), not the "
                                  "scenario's own: leave book and shock at their defaults")
            specs = [Instrument(c.name, c.tick_size, c.lot_size,
                                tiers=rules.tiers if c.tiers is None else c.tiers,
                                mark_rule=rules.mark_rule if c.mark_rule is None
                                else c.mark_rule, contract_value=c.contract_value,
                                spot=c.spot)
                     for c in contracts]
            for c in contracts:
                if c.spot and c.haircut_ppm is None:
                    raise ConfigError(f"instrument {c.name!r} is a spot book: it needs a "
                                      f"haircut_ppm (its base asset, the one it trades, is "
                                      f"then collateral)")
            if inverse and any(c.haircut_ppm is not None for c in contracts):
                raise ConfigError("haircut_ppm makes a contract's base asset collateral, which "
                                  "an inverse venue (margined in its coin alone) refuses")
            # a contract with a haircut: its base asset is collateral too, counted in millionths
            # of a lot (whole lots would round a small account's collateral far up)
            assets = [Asset(c.name, Decimal(c.lot_size) / COIN_UNITS_PER_LOT, c.name,
                            haircut_ppm=c.haircut_ppm,
                            conversion_discount_ppm=c.conversion_discount_ppm)
                      for c in contracts if c.haircut_ppm is not None]
            self.engine = engine_cls(quote_unit=scenario.quote_unit, instruments=specs,
                                     assets=assets or None, **settings, backstop=backstop,
                                     **venue)
        else:
            if not isinstance(scenario.population, ExplicitPopulation) and (
                    scenario.population.coin_fraction or scenario.population.coin):
                raise ConfigError("population coin_fraction and coin need a scenario with "
                                  "instruments, one of them with a haircut_ppm (its asset)")
            self.engine = engine_cls(scenario.tick_size, scenario.lot_size, scenario.quote_unit,
                                     **settings, backstop=backstop, **venue)
        eng = self.engine
        big = 10**17
        eng.add_account(HOUSE, big, exempt=True)
        eng.add_account(MAKER, big, exempt=True)
        eng.add_account(SHOCKER, big, exempt=True)
        eng.add_account(VALUE, big, exempt=True)
        if rules.backstop_collateral:
            eng.add_account(BACKSTOP, rules.backstop_collateral, exempt=True)
        for n, part in enumerate(eng._asset_parts() if contracts else ()):
            if contracts[part["instrument"]].spot:
                # the scenario's own accounts quote, shock and trade the spot book with coin
                # they hold: an eighth of what the asset's bound allows, each
                for owner in (HOUSE, MAKER, SHOCKER, VALUE):
                    eng.deposit(owner, part["max_total"] // 8, asset=n)
        self.next_id = 0
        try:
            if contracts:
                self.contracts = [
                    _Contract(i, c.book, c.shock, rng, self._placer(i))
                    for i, c in enumerate(contracts)]
            else:
                self.contracts = [_Contract(0, scenario.book, scenario.shock, rng,
                                            self._placer(0))]
        except ValueError as exc:
            # the maker that lays out the book is an account like any other: a book deeper
            # than its max_position (the engine's bound on any position) cannot be laid out
            raise ConfigError(f"[book] cannot be laid out: {exc} (a shallower book: fewer "
                              f"levels or a smaller touch_qty)") from None
        self.mid0 = self.contracts[0].mid0
        if scenario.index_model is not None:
            self._model_paths(scenario)
        for c, spec in zip(self.contracts, eng.instruments, strict=True):
            if spec.mark_rule in (MarkRule.INDEX, MarkRule.INDEX_CLAMPED, MarkRule.FAIR):
                eng.set_index(c.mid0, instrument=c.index)
        # A first print at the touch gives LAST a mark before the shock.
        for c in self.contracts:
            eng.market(self._id(), Side.BUY, 1, SHOCKER, instrument=c.index)
        self.population = (self._seed_baskets(rng) if contracts
                           else self._seed_population(rng))
        # The state before the shock, which the summary's insurance_fund_start and
        # collateral_lost start from (quote units): read here, once, because nothing after
        # the run can recover it.
        self.fund_start = eng.insurance_fund
        accounts = eng.equities()
        accounts = accounts[(accounts["owner"] >= 0) & (accounts["owner"] < HOUSE)]
        self.start_equity = dict(zip(accounts["owner"].tolist(), accounts["equity"].tolist(),
                                     strict=True))

    def copy(self) -> Market:
        """The market as it stands with an engine of its own: a second run (the counterfactual)
        from the same starting state without seeding the population again. The rest (the
        contracts' profiles and paths, the population's figures) is only read by a run."""
        other = copy.copy(self)
        other.engine = self.engine.copy()
        return other

    def _model_paths(self, scenario) -> None:
        model, contracts = scenario.index_model, scenario.instruments
        if not contracts:
            raise ConfigError("index_model needs a scenario with instruments")
        m = len(contracts)
        for key, check in schema(type(model)).items():   # as a file's values are checked
            convert("index_model", key, _plain_list(getattr(model, key)), {key: check})
        for key in ("drift_ppm", "vol_ppm", "correlation"):
            if len(getattr(model, key)) != m:
                raise ConfigError(f"index_model {key} has {len(getattr(model, key))} entries "
                                  f"for {m} instruments")
        for c in contracts:
            if c.shock.index_path:
                raise ConfigError(f"instrument {c.name!r} gives an index_path and the scenario "
                                  f"an index_model: give one")
        paths = _model_paths_of(model, [c.mid0 for c in self.contracts], scenario.steps,
                                scenario.seed)
        for c, path in zip(self.contracts, paths, strict=True):
            c.index_path = path

    def _placer(self, instrument: int):
        def place(side, price, qty):
            self.engine.limit(self._id(), side, price, qty, MAKER, instrument=instrument)
        return place

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _seed_population(self, rng) -> int:
        eng, pop = self.engine, self.scenario.population
        if isinstance(pop, ExplicitPopulation):
            side = np.array(pop.side, dtype=np.int64)
            size = np.array(pop.size, dtype=np.int64)
            entry = np.array(pop.entry, dtype=np.int64)
            collateral = np.array(pop.collateral, dtype=np.int64)
        else:
            n = pop.count
            side = np.where(rng.random(n) < pop.long_fraction, 1, -1)
            lo, hi = pop.leverage
            leverage = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
            lo, hi = pop.size
            size = np.floor(np.exp(rng.uniform(math.log(lo), math.log(hi + 1), n))).astype(np.int64)
            size = np.clip(size, lo, hi)
            entry = np.rint(self.mid0 * (1 + pop.entry_dispersion * rng.standard_normal(n)))
            entry = np.maximum(entry, 1).astype(np.int64)
            inverse = eng.settlement == Settlement.INVERSE
            collateral = _margin_at(inverse, eng.k, entry, size, leverage)
        owners = np.arange(len(side), dtype=np.int64)
        eng.add_accounts(owners, collateral)
        return self._seed_positions(owners, side, entry, size)

    def _seed_positions(self, owners, side, entry, size) -> int:
        """Seed one position in instrument 0 per owner (side +1 long, -1 short; entry ticks,
        size lots) against the house, in one call; hand back, at the same prices, those of the
        accounts already liquidatable at the starting marks (they would be gone already).
        Returns how many were kept."""
        eng = self.engine
        house = np.full(len(owners), HOUSE, dtype=np.int64)
        longs = np.where(side > 0, owners, house)
        shorts = np.where(side > 0, house, owners)
        eng.seed_positions(longs, shorts, entry, size)
        crossed = eng.liquidatable(owners)
        if crossed.any():
            eng.seed_positions(shorts[crossed], longs[crossed], entry[crossed], size[crossed])
        return int(len(owners) - crossed.sum())

    def _seed_baskets(self, rng) -> int:
        """The population as baskets across the instruments (Population's docstring)."""
        eng, pop = self.engine, self.scenario.population
        if isinstance(pop, ExplicitPopulation):
            raise ConfigError("a scenario with instruments needs a synthetic [population] (an "
                              "explicit one names no instruments)")
        contracts = self.scenario.instruments
        n, m = pop.count, len(contracts)
        side0 = np.where(rng.random(n) < pop.long_fraction, 1, -1)
        lo, hi = pop.leverage
        leverage = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
        size_z = _scores(rng, n, m, pop.size_correlation)
        entry_z = _scores(rng, n, m, pop.entry_correlation)
        keep_side = rng.random((n, m)) < pop.same_side
        fresh_side = np.where(rng.random((n, m)) < pop.long_fraction, 1, -1)
        holds = rng.random((n, m)) < np.array([c.hold for c in contracts])
        inverse = eng.settlement == Settlement.INVERSE
        ks = [_k(spec, eng.quote_unit, inverse) for spec in eng.instruments]
        coin = self._coin(pop, contracts)
        kept = 0
        self.holders = [set() for _ in contracts]
        for a in range(n):
            legs = []
            for i, c in enumerate(contracts):
                if not holds[a, i] or c.spot:   # (no position on a spot book)
                    continue
                lo, hi = c.size if c.size is not None else pop.size
                u = 0.5 * (1 + math.erf(size_z[a, i] / math.sqrt(2)))
                size = int(min(hi, max(lo, math.floor(math.exp(
                    math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))))))
                mid = self.contracts[i].mid0
                entry = max(1, int(np.rint(mid * (1 + pop.entry_dispersion * entry_z[a, i]))))
                side = int(side0[a]) if keep_side[a, i] else int(fresh_side[a, i])
                legs.append((i, side, entry, size))
            if not legs:
                continue
            notional = sum(contract_value(inverse, ks[i], entry, size)
                           for i, _, entry, size in legs)
            collateral = math.ceil(notional / leverage[a])
            if coin is None:
                eng.add_account(a, collateral)
            else:
                # the coin's share: the fewest units that count that much after the haircut
                j, per_lot, haircut = coin
                share = math.ceil(collateral * pop.coin_fraction)
                eng.add_account(a, collateral - share)
                units = -(-share * PPM * COIN_UNITS_PER_LOT // (per_lot * (PPM - haircut)))
                if units:
                    eng.deposit(a, units, asset=self.coin_asset)
            if self._seed_account(a, legs):
                kept += 1
                for i, _, _, _ in legs:
                    self.holders[i].add(a)
        return kept

    def _coin(self, pop, contracts):
        """(instrument, quote units one lot of the coin is worth at its starting mark, its
        haircut) of the population's collateral coin, or None without one (its asset's name in
        ``coin_asset``)."""
        if not pop.coin_fraction and not pop.coin:
            return None
        keys = schema(type(pop))
        for key in ("coin_fraction", "coin"):   # checked as a file's values are
            convert("population", key, getattr(pop, key), keys)
        for i, c in enumerate(contracts):
            keys = schema(type(c))
            for key in ("haircut_ppm", "conversion_discount_ppm"):
                convert(f"instruments[{i}]", key, getattr(c, key), keys)
        with_asset = [i for i, c in enumerate(contracts) if c.haircut_ppm is not None]
        names = [contracts[i].name for i in with_asset]
        if not with_asset:
            raise ConfigError("population coin_fraction needs an instrument with a haircut_ppm "
                              "(its base asset is then collateral)")
        if pop.coin and pop.coin not in names:
            raise ConfigError(f"population coin {pop.coin!r} is not an instrument with a "
                              f"haircut_ppm: {names}")
        j = with_asset[names.index(pop.coin)] if pop.coin else with_asset[0]
        self.coin_asset = contracts[j].name
        eng = self.engine
        mark = eng.mark_price(j) or self.contracts[j].mid0
        return j, mark * _k(eng.instruments[j], eng.quote_unit), contracts[j].haircut_ppm

    def _seed_account(self, owner: int, legs) -> int:
        """Seed ``owner``'s positions ((instrument, side, entry, size), ...) against the house;
        hand them all back, at the same prices, when the account is already liquidatable at
        the starting marks (it would be gone already). Returns 1 if kept, else 0."""
        eng = self.engine

        def seed(legs, sign):
            for i, side, entry, size in legs:
                if side * sign > 0:
                    eng.seed_position(owner, HOUSE, entry, size, instrument=i)
                else:
                    eng.seed_position(HOUSE, owner, entry, size, instrument=i)

        seed(legs, 1)
        info = eng.account(owner)
        # (a short its own coin outweighs has no liquidation price: the account's own margin
        # says whether it is crossed)
        crossed = info.equity < info.maintenance_margin or (
            eng.trigger == Trigger.AT_OR_BELOW and info.equity == info.maintenance_margin)
        for p in info.positions or ():
            mark = eng.mark_price(p.instrument)
            liq = p.liquidation_price
            if liq is not None and mark is not None and (
                    (p.position > 0 and liq >= mark) or (p.position < 0 and liq <= mark)):
                crossed = True
        if crossed:
            seed(legs, -1)
            return 0
        return 1

    # -------------------------------------------------------------------------- stepping
    def refill(self) -> None:
        for c in self.contracts:
            self._refill(c)

    def _refill(self, c: _Contract) -> None:
        liquidity = self.scenario.liquidity
        if liquidity.half_life <= 0:
            return
        eng = self.engine
        book = eng.books[c.index]
        bid, ask = book.best_bid(), book.best_ask()
        # Anchored at the last trade, not the mid: after a sweep the far side still stands at
        # pre-shock prices, and refilling around the mid would walk the price straight back.
        mid = book.last_price if book.last_price is not None else c.mid0
        share = 1 - 2 ** (-1 / liquidity.half_life)
        depth = book.l2(2**62)   # every level: what each profile price already holds
        sent, accepted, top_bid = [], 0, bid
        for side, (offsets, lots) in ((Side.BUY, c.profile_bid), (Side.SELL, c.profile_ask)):
            if side == Side.BUY:
                prices = mid - offsets
                placeable = (prices >= 1) & (prices < ask if ask is not None else True)
                held = _held(prices, depth.bid_price, depth.bid_qty)
            else:
                prices = mid + offsets
                placeable = (prices >= 1) & (prices > bid if bid is not None else True)
                held = _held(prices, depth.ask_price, depth.ask_qty)
            missing = lots - held
            # The profile's prices are distinct, so an order placed at one leaves what the
            # others hold as read above. The orders go through the engine in one batch, so
            # which post-only orders rest is known here: a bid never takes (every one is below
            # the ask read above), an ask takes (and is rejected, spending none of the budget)
            # at or below the best bid the new bids made. Nearest level first, each order
            # asks for a share of what its level misses (at least a lot) while the side's
            # budget (``liquidity.rate`` lots a step) lasts; the last gets what is left.
            wanted = placeable & (missing > 0)
            price = prices[wanted]
            # (a level's lots are within max_position <= 2**61, so the ceiling fits int64)
            want = np.minimum(np.maximum(1, np.ceil(missing[wanted] * share)).astype(np.int64),
                              liquidity.rate)
            if len(want) and float(want.sum()) >= 2.0**62:   # sums in Python ints
                want = want.astype(object)
            rests = (np.ones(len(price), dtype=bool) if side == Side.BUY or top_bid is None
                     else price > top_bid)
            spent = np.cumsum(np.where(rests, want, 0))
            left = liquidity.rate - (spent - np.where(rests, want, 0))   # before each order
            sending = left > 0
            price, rests = price[sending], rests[sending]
            add = np.minimum(left[sending], want[sending])
            if side == Side.BUY and len(price):
                top_bid = int(price.max()) if top_bid is None else max(top_bid, int(price.max()))
            accepted += int(rests.sum())
            sent.append((price, add, np.full(len(price), side, dtype=np.int8)))
        price, qty, side = (np.concatenate(column) for column in zip(*sent, strict=True))
        if not len(price):
            return
        messages = np.zeros(len(price), dtype=MESSAGE_DTYPE)
        messages["order_id"] = self.next_id + 1 + np.arange(len(price))
        self.next_id += len(price)
        messages["price"], messages["qty"], messages["side"] = price, qty, side
        messages["owner"], messages["kind"] = MAKER, Kind.POST_ONLY
        events = eng.process(messages, instrument=c.index).events
        rested = int(np.count_nonzero(events["kind"] == EventKind.ACCEPTED))
        if rested != accepted:
            raise RuntimeError(f"the refill expected {accepted} of its {len(price)} post-only "
                               f"orders to rest and {rested} did")

    def recover(self, step: int) -> None:
        for c in self.contracts:
            self._recover(c, step)

    def _recover(self, c: _Contract, step: int) -> None:
        liquidity = self.scenario.liquidity
        last = self.engine.books[c.index].last_price
        if (liquidity.recovery_half_life <= 0 or liquidity.recovery_rate <= 0 or last is None
                or step < liquidity.recovery_delay):
            return
        gap = c.mid0 - last
        if gap == 0:
            return
        share = 1 - 2 ** (-1 / liquidity.recovery_half_life)
        move = max(1, round(abs(gap) * share))
        side = Side.BUY if gap > 0 else Side.SELL
        limit = last + move if gap > 0 else last - move
        self.engine.ioc(self._id(), side, limit, liquidity.recovery_rate, VALUE,
                        instrument=c.index)

    def snapshot(self, step: int, liquidated: int, instrument: int = 0,
                 time: int | None = None) -> tuple:
        """One SERIES_DTYPE row of an instrument after ``step``, at ``time`` ms (None: the
        step's start); ``liquidated``: the notional the liquidator took there since the last
        row (quote units)."""
        if time is None:
            time = step * self.scenario.clock.step_ms
        c = self.contracts[instrument]
        eng, book = self.engine, self.engine.books[instrument]
        bid, ask = book.best_bid(), book.best_ask()
        last = book.last_price or 0
        mark = eng.mark_price(instrument) or 0
        mid = (bid + ask) / 2 if bid is not None and ask is not None else float(last)
        ref = mid if mid else float(c.mid0)
        return (step, time, last, mark, bid or 0, ask or 0, (ask - bid) if bid and ask else 0, mid,
                book.resting_qty(Side.BUY, math.ceil(ref * 0.99)),
                book.resting_qty(Side.SELL, math.floor(ref * 1.01)),
                book.resting_qty(Side.BUY, math.ceil(ref * 0.95)),
                book.resting_qty(Side.SELL, math.floor(ref * 1.05)),
                eng.open_interest(instrument), eng.insurance_fund, liquidated,
                len(eng.queue()))

    def shock_at(self, step: int) -> None:
        eng = self.engine
        for c in self.contracts:
            shock, i = c.shock, c.index
            if step == 0:
                if shock.sell:
                    eng.market(self._id(), Side.SELL, shock.sell, SHOCKER, instrument=i)
                if shock.buy:
                    eng.market(self._id(), Side.BUY, shock.buy, SHOCKER, instrument=i)
            for when, side, qty in shock.orders:
                if when == step:
                    eng.market(self._id(), side, qty, SHOCKER, instrument=i)
            if step < len(shock.funding_basis_path):
                eng.set_funding_basis(int(shock.funding_basis_path[step]), instrument=i)
            if step < len(c.index_path):
                eng.set_index(int(c.index_path[step]), instrument=i)


def _model_paths_of(model, mids, steps: int, seed: int) -> list[tuple]:
    """Index paths (ticks per step) of an IndexModel from the starting ``mids``: see its
    docstring. A random stream of its own, so the book and population draws stay as they
    are."""
    rng = np.random.default_rng([seed, 13])
    m = len(mids)
    mu = np.array(model.drift_ppm, dtype=float) / 1e6
    sigma = np.array(model.vol_ppm, dtype=float) / 1e6
    lower = np.linalg.cholesky(np.array(model.correlation, dtype=float) + 1e-12 * np.eye(m))
    scores = rng.standard_normal((steps, m)) @ lower.T
    logs = np.log(np.array(mids, dtype=float)) + np.cumsum(
        mu - sigma**2 / 2 + sigma * scores, axis=0)
    ticks = np.maximum(1, np.rint(np.exp(logs))).astype(np.int64)
    return [tuple(ticks[:, i].tolist()) for i in range(m)]


def _plain_list(value):
    return [_plain_list(v) for v in value] if isinstance(value, (tuple, list)) else value


def _scores(rng, n: int, m: int, rho: float) -> np.ndarray:
    """(n, m) standard normal scores, each row's correlated ``rho`` through one shared draw."""
    shared = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, m))
    return rho * shared + math.sqrt(max(0.0, 1 - rho * rho)) * own


#: A scenario's collateral coin counts in millionths of its contract's lot.
COIN_UNITS_PER_LOT = 10**6


def _k(spec, unit, inverse=False) -> int:
    """Quote units per tick x lot of an instrument spec (Engine.instruments) at ``unit``
    (inverse: coin units x ticks per lot, V = floor(k q / p))."""
    if inverse:
        return inverse_unit_value(Decimal(spec.tick_size), Decimal(spec.lot_size), unit,
                                  spec.contract_value)[1]
    return unit_value(Decimal(spec.tick_size), Decimal(spec.lot_size), unit)[1]
