"""A built scenario: the engine, its seeded book and population, and the scenario's own
accounts (house, market maker, shocker, backstop, value trader) that act on it step by step.

``orderbook.scenario.run`` builds one per run (two with the counterfactual) and steps it; this
module is the simulation's machinery, the scenario module its settings and results.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING

import numpy as np

from .events import (
    SCENARIO_BACKSTOP,
    SCENARIO_HOUSE,
    SCENARIO_MAKER,
    SCENARIO_SHOCKER,
    SCENARIO_VALUE,
    EventKind,
    MarkRule,
    Side,
)
from .scenario import ExplicitPopulation

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


class Market:
    """A built scenario: the engine plus the bookkeeping of its liquidity providers."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        rng = np.random.default_rng(scenario.seed)
        rules = scenario.rules
        engine_cls = engine_class(scenario.engine)
        self.engine = engine_cls(
            scenario.tick_size, scenario.lot_size, scenario.quote_unit, **engine_settings(rules),
            backstop=BACKSTOP if rules.backstop_collateral else None)
        eng = self.engine
        big = 10**17
        eng.add_account(HOUSE, big, exempt=True)
        eng.add_account(MAKER, big, exempt=True)
        eng.add_account(SHOCKER, big, exempt=True)
        eng.add_account(VALUE, big, exempt=True)
        if rules.backstop_collateral:
            eng.add_account(BACKSTOP, rules.backstop_collateral, exempt=True)
        self.next_id = 0
        bid_px, bid_q, ask_px, ask_q = scenario.book.sides(rng)
        self.mid0 = int(scenario.book.mid)
        self.profile_bid = (self.mid0 - bid_px, bid_q)  # offsets below the mid, lots
        self.profile_ask = (ask_px - self.mid0, ask_q)
        for px, q in zip(bid_px.tolist(), bid_q.tolist(), strict=True):
            eng.limit(self._id(), Side.BUY, px, q, MAKER)
        for px, q in zip(ask_px.tolist(), ask_q.tolist(), strict=True):
            eng.limit(self._id(), Side.SELL, px, q, MAKER)
        if rules.mark_rule in (MarkRule.INDEX, MarkRule.INDEX_CLAMPED, MarkRule.FAIR):
            eng.set_index(self.mid0)
        # A first print at the touch gives LAST a mark before the shock.
        eng.market(self._id(), Side.BUY, 1, SHOCKER)
        self.population = self._seed_population(rng)

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
            collateral = np.array([math.ceil(int(e) * int(s) * eng.k / lev) for e, s, lev in
                                   zip(entry, size, leverage, strict=True)], dtype=np.int64)
        mark = eng.mark_price()
        kept = 0
        for i in range(len(side)):
            eng.add_account(i, int(collateral[i]))
            if side[i] > 0:
                eng.seed_position(i, HOUSE, int(entry[i]), int(size[i]))
            else:
                eng.seed_position(HOUSE, i, int(entry[i]), int(size[i]))
            info = eng.account(i)
            liq = info.liquidation_price
            if liq is not None and mark is not None and (
                    (info.position > 0 and liq >= mark) or (info.position < 0 and liq <= mark)):
                # Already liquidatable: hand the position back to the house, at the same price.
                if side[i] > 0:
                    eng.seed_position(HOUSE, i, int(entry[i]), int(size[i]))
                else:
                    eng.seed_position(i, HOUSE, int(entry[i]), int(size[i]))
                continue
            kept += 1
        return kept

    # -------------------------------------------------------------------------- stepping
    def refill(self) -> None:
        liquidity = self.scenario.liquidity
        if liquidity.half_life <= 0:
            return
        book, eng = self.engine.book, self.engine
        bid, ask = book.best_bid(), book.best_ask()
        # Anchored at the last trade, not the mid: after a sweep the far side still stands at
        # pre-shock prices, and refilling around the mid would walk the price straight back.
        mid = book.last_price if book.last_price is not None else self.mid0
        share = 1 - 2 ** (-1 / liquidity.half_life)
        for side, (offsets, lots) in ((Side.BUY, self.profile_bid), (Side.SELL, self.profile_ask)):
            budget = liquidity.rate
            for off, target in zip(offsets.tolist(), lots.tolist(), strict=True):
                if budget <= 0:
                    break
                price = mid - off if side == Side.BUY else mid + off
                if price < 1 or (side == Side.BUY and ask is not None and price >= ask) or (
                        side == Side.SELL and bid is not None and price <= bid):
                    continue
                missing = target - book.quantity_at(side, price)
                if missing <= 0:
                    continue
                add = min(budget, max(1, math.ceil(missing * share)))
                events = eng.post_only(self._id(), side, price, add, MAKER)
                if events and events[0].kind == EventKind.ACCEPTED:
                    budget -= add

    def recover(self, step: int) -> None:
        liquidity = self.scenario.liquidity
        last = self.engine.book.last_price
        if (liquidity.recovery_half_life <= 0 or liquidity.recovery_rate <= 0 or last is None
                or step < liquidity.recovery_delay):
            return
        gap = self.mid0 - last
        if gap == 0:
            return
        share = 1 - 2 ** (-1 / liquidity.recovery_half_life)
        move = max(1, round(abs(gap) * share))
        side = Side.BUY if gap > 0 else Side.SELL
        limit = last + move if gap > 0 else last - move
        self.engine.ioc(self._id(), side, limit, liquidity.recovery_rate, VALUE)

    def snapshot(self, step: int, liquidated: int) -> tuple:
        eng, book = self.engine, self.engine.book
        bid, ask = book.best_bid(), book.best_ask()
        last = book.last_price or 0
        mark = eng.mark_price() or 0
        mid = (bid + ask) / 2 if bid is not None and ask is not None else float(last)
        ref = mid if mid else float(self.mid0)
        return (step, last, mark, bid or 0, ask or 0, (ask - bid) if bid and ask else 0, mid,
                book.resting_qty(Side.BUY, math.ceil(ref * 0.99)),
                book.resting_qty(Side.SELL, math.floor(ref * 1.01)),
                book.resting_qty(Side.BUY, math.ceil(ref * 0.95)),
                book.resting_qty(Side.SELL, math.floor(ref * 1.05)),
                eng.open_interest(), eng.insurance_fund, liquidated, len(eng.queue()))

    def shock_at(self, step: int) -> None:
        shock, eng = self.scenario.shock, self.engine
        if step == 0:
            if shock.sell:
                eng.market(self._id(), Side.SELL, shock.sell, SHOCKER)
            if shock.buy:
                eng.market(self._id(), Side.BUY, shock.buy, SHOCKER)
        for when, side, qty in shock.orders:
            if when == step:
                eng.market(self._id(), side, qty, SHOCKER)
        if step < len(shock.funding_basis_path):
            eng.set_funding_basis(int(shock.funding_basis_path[step]))
        if step < len(shock.index_path):
            eng.set_index(int(shock.index_path[step]))
