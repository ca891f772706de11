"""Pure-Python reference margin engine and liquidator: the executable spec of docs/liquidation.md.

Three classes, one per compiled module they specify: ``_Ledger`` here (accounts, money, margin,
settlement: accounts.pyx), ``_Liquidator`` in ``_reference_liquidator`` (queue, rounds, forced
orders, take-over, shortfall, ADL, socialised loss: liquidator.pyx) and ``Engine`` here (public
API, routing of messages to the book, the mark: engine.pyx), composed of the other two. Every
order, forced ones included, goes through a reference ``OrderBook``; every trade settles to the
accounts of its taker and maker. Written to be read next to docs/liquidation.md, rule by rule;
plain data structures (dicts, ``sortedcontainers.SortedList`` for the liquidation-price indexes),
no tricks.
"""

from __future__ import annotations

import numpy as np
from sortedcontainers import SortedList

from . import _validation as check
from ._bookview import BookView
from ._engine_args import (
    FUNDING_PAID_BOUND,
    RATES,
    asset_arg,
    asset_deposit,
    batch_messages,
    book_rules,
    deposit_amount,
    equity_marks,
    exposure,
    fair_mark_fits,
    funding_basis_arg,
    funding_rate_arg,
    funding_too_large,
    instrument_arg,
    insufficient_margin,
    insufficient_spot,
    int64_column,
    isolated_backstop,
    isolated_elsewhere,
    limit_price,
    limit_rule_arg,
    margin_amount,
    new_account,
    new_accounts,
    no_account,
    no_funding_mark,
    order_elsewhere,
    order_owner,
    order_price,
    parameters_section,
    seeded_position,
    seeded_positions,
    settings,
    spot_funding,
    spot_isolated,
    spot_position,
    time_arg,
    user_order_id,
    venue_assets,
    venue_instruments,
)
from ._engine_state import STATE_VERSION, check_state, constructor_args, saved_kwargs
from ._reference_liquidator import _Liquidator
from .errors import OrderError
from .events import (
    EQUITY_DTYPE,
    FUNDING_DTYPE,
    FUNDING_RATE_SCALE,
    INSURANCE_FUND,
    INT64_MAX,
    INT64_MIN,
    POSITION_DTYPE,
    PPM,
    PRICED_KINDS,
    STOP_KINDS,
    AccountInfo,
    AdlRanking,
    AmendRule,
    BatchResult,
    CloseOrder,
    Deficit,
    EventKind,
    FundingSettlement,
    HoldingInfo,
    Kind,
    MarginBasis,
    MarkRule,
    PositionInfo,
    Reason,
    SelfTradePrevention,
    Settlement,
    Side,
    Sizing,
    Trigger,
    array_to_events,
    events_to_array,
    fair_price,
)
from .margin import DEFAULT_TIERS, asset_value, ceil_div, contract_value, lots_within
from .reference import OrderBook

__all__ = ["Engine"]

_KINDS = frozenset(int(kind) for kind in Kind)


class _Position:
    __slots__ = ("position", "cost")

    def __init__(self, position: int = 0, cost: int = 0):
        self.position = position  # signed lots
        self.cost = cost          # entry value of |position|, quote units


class _Account:
    __slots__ = ("owner", "collateral", "positions", "exempt", "isolated", "reserve", "holdings")

    def __init__(self, owner: int, collateral: int, exempt: bool, isolated=False, reserve=0):
        self.owner = owner
        self.collateral = collateral  # backs the positions (an isolated account's margin)
        self.positions: dict[int, _Position] = {}  # by instrument; flat ones may stay
        self.exempt = exempt
        self.isolated = isolated
        self.reserve = reserve        # an isolated account's balance outside its margin
        self.holdings: dict[int, int] = {}  # collateral asset -> units (> 0; none at 0)

    def pos(self, i: int) -> _Position:
        """The position in instrument ``i`` (created flat on first use)."""
        p = self.positions.get(i)
        if p is None:
            p = self.positions[i] = _Position()
        return p

    def held(self) -> list[int]:
        """Instruments with a nonzero position, ascending."""
        return sorted(i for i, p in self.positions.items() if p.position)

    def trial(self) -> "_Account":
        """A copy to try a fill on (positions copied too)."""
        other = _Account(self.owner, self.collateral, self.exempt, self.isolated, self.reserve)
        other.positions = {i: _Position(p.position, p.cost) for i, p in self.positions.items()}
        other.holdings = dict(self.holdings)
        return other


class _Instrument:
    """One contract of the venue: its book, margin settings, mark inputs and indexes."""

    def __init__(self, index: int, name: str, k: int, tiers, max_price: int, max_position: int,
                 mark_rule, book: OrderBook):
        self.index, self.name, self.k, self.tiers = index, name, k, tiers
        self.max_price, self.max_position, self.mark_rule = max_price, max_position, mark_rule
        self.book = book
        # a spot book (Instrument.spot): the asset it trades and that asset's units per lot
        self.spot_asset: int | None = None
        self.units_per_lot = 0
        self.index_price: int | None = None
        self.funding_basis_ppm = 0
        self.mark: int | None = None
        self.longs = SortedList()   # (liquidation price, owner) of one-position longs here
        self.shorts = SortedList()  # (liquidation price, owner) of one-position shorts here
        self.trades: list = []      # every trade settled on this book, forced ones included


# ==================================================================================== ledger


class _Ledger:
    """The accounts of one Engine: money, margin, the liquidation-price indexes, settlement.

    ``instruments`` are the venue's (k: quote units per tick x lot of each); fees are in ppm of a
    trade's value. Positions are per instrument against one collateral (cross margin); where a
    rule looks at one position with the others held fixed, they are at their current marks.
    """

    def __init__(self, instruments: list[_Instrument], taker_fee_ppm: int, maker_fee_ppm: int,
                 trigger=Trigger.BELOW, mm_basis=MarginBasis.MARK, assets=(), inverse=False):
        self.instruments = instruments
        # Inverse (docs/market_wide.md section 7): values in coin units, floor(k q / p), and a
        # long profits as V falls: every profit below carries this sign.
        self.inverse = inverse
        self.sign = -1 if inverse else 1
        self.assets = list(assets)  # _engine_args.venue_assets dicts
        self.trigger, self.mm_basis = trigger, mm_basis
        self.taker_fee_ppm, self.maker_fee_ppm = taker_fee_ppm, maker_fee_ppm
        self.accounts: dict[int, _Account] = {}
        self.multi = set()          # owners holding two or more positions (not exempt)
        self.indexed: dict[int, tuple[SortedList, tuple[int, int]]] = {}
        self.fees_collected = 0     # quote units the trading fees took out of the accounts
        self.converted = [[0, 0] for _ in self.assets]  # per asset: units bought, quote paid

    # -------------------------------------------------------------------------- money
    def value(self, i: int, price: int, qty: int) -> int:
        """V(price, qty): quote (inverse: coin) units of ``qty`` lots of instrument ``i`` at
        ``price`` ticks (margin.contract_value)."""
        return contract_value(self.inverse, self.instruments[i].k, price, qty)

    def lots_within(self, i: int, price: int, budget: int) -> int:
        """The most lots of ``i`` worth at most ``budget`` at ``price`` (margin.lots_within)."""
        return lots_within(self.inverse, self.instruments[i].k, price, budget)

    def holdings_value(self, a: _Account, marks=None, skip: int | None = None) -> int:
        """Quote units a's collateral assets count for, each at the mark of its instrument
        (``marks``: one per instrument instead of the current ones), after haircut; without
        the asset valued at instrument ``skip``."""
        total = 0
        for n, units in a.holdings.items():
            asset = self.assets[n]
            i = asset["instrument"]
            if i != skip:
                mark = self.instruments[i].mark if marks is None else marks[i]
                total += asset_value(units, mark, asset["num"], asset["den"],
                                     asset["haircut_ppm"])
        return total

    def own_holding(self, a: _Account, i: int) -> tuple[int, dict] | None:
        """(units, asset dict) of a's holding of the asset valued at instrument ``i``, if any
        (each asset names its own instrument, so there is at most one)."""
        for n, units in a.holdings.items():
            if self.assets[n]["instrument"] == i:
                return units, self.assets[n]
        return None

    def own_value(self, a: _Account, i: int, price: int | None) -> int:
        """The value of a's asset valued at instrument ``i`` were that mark at ``price``."""
        own = self.own_holding(a, i)
        if own is None:
            return 0
        units, asset = own
        return asset_value(units, price, asset["num"], asset["den"], asset["haircut_ppm"])

    def own_outweighs(self, a: _Account, i: int) -> bool:
        """Whether a's short in ``i`` gains less per tick of a fall than the asset valued at
        ``i`` loses: units x num x (1 - haircut) / den > |q| k. Its equity then rises with the
        price, and E - MM need not be monotone: no single liquidation price."""
        own, p = self.own_holding(a, i), a.positions.get(i)
        if own is None or p is None or p.position >= 0:
            return False
        units, asset = own
        return (units * asset["num"] * (PPM - asset["haircut_ppm"])
                > -p.position * self.instruments[i].k * asset["den"] * PPM)

    def wealth(self, a: _Account, skip: int | None = None) -> int:
        """Collateral plus the collateral assets' value at the current marks, without the asset
        valued at instrument ``skip`` (which a rule moving that price moves with it)."""
        if not a.holdings:
            return a.collateral
        return a.collateral + self.holdings_value(a, skip=skip)

    def unrealised(self, a: _Account, i: int, mark: int | None) -> int:
        """Profit of a's position in ``i`` at ``mark`` (0 without one)."""
        p = a.positions.get(i)
        if p is None or p.position == 0 or mark is None:
            return 0
        if p.position > 0:
            return self.sign * (self.value(i, mark, p.position) - p.cost)
        return self.sign * (p.cost - self.value(i, mark, -p.position))

    def margin_of(self, i: int, p: _Position, mark: int | None) -> int:
        """MM of one position on ``mm_basis``: on its notional at the mark (0 without one), or
        on its entry value (the cost, which needs no mark). O(tiers)."""
        tiers = self.instruments[i].tiers
        if self.mm_basis == MarginBasis.ENTRY:
            return tiers.maintenance(p.cost)
        if mark is None:
            return tiers.maintenance(0)
        return tiers.maintenance(self.value(i, mark, abs(p.position)))

    def others(self, a: _Account, i: int) -> tuple[int, int]:
        """(unrealised profit, MM) of a's positions other than ``i``, at their marks."""
        profit = margin = 0
        for j in a.held():
            if j != i:
                mark = self.instruments[j].mark
                profit += self.unrealised(a, j, mark)
                margin += self.margin_of(j, a.positions[j], mark)
        return profit, margin

    def equity(self, a: _Account) -> int:
        """Collateral, its assets' value, and the unrealised profit of every position at its
        mark."""
        return self.wealth(a) + sum(self.unrealised(a, j, self.instruments[j].mark)
                                  for j in a.held())

    def maintenance(self, a: _Account) -> int:
        """The sum of the positions' MM at their marks."""
        return sum(self.margin_of(j, a.positions[j], self.instruments[j].mark)
                   for j in a.held())

    def equity_at(self, a: _Account, i: int, price: int | None) -> int:
        """Equity with instrument ``i`` at ``price`` (the asset it values too), the others at
        their marks."""
        return (self.wealth(a, skip=i) + self.others(a, i)[0] + self.unrealised(a, i, price)
                + self.own_value(a, i, price))

    def maintenance_at(self, a: _Account, i: int, price: int | None) -> int:
        """MM with instrument ``i`` at ``price``, the others at their marks."""
        return self.others(a, i)[1] + self.margin_of(i, a.pos(i), price)

    # ------------------------------------------------------------------------- margin
    def short_of(self, equity: int, margin: int) -> bool:
        """The trigger: ``equity < margin`` (BELOW) or ``equity <= margin`` (AT_OR_BELOW)."""
        if self.trigger == Trigger.AT_OR_BELOW:
            return equity <= margin
        return equity < margin

    def liquidatable(self, a: _Account) -> bool:
        """Not exempt, holding a position, every instrument it holds (or that values an asset it
        holds) marked, E short of MM."""
        held = a.held()
        if a.exempt or not held or any(self.instruments[j].mark is None for j in held):
            return False
        if any(self.instruments[self.assets[n]["instrument"]].mark is None for n in a.holdings):
            return False
        return self.short_of(self.equity(a), self.maintenance(a))

    def liquidatable_at(self, a: _Account, i: int, price: int, others=None) -> bool:
        """Whether a would be liquidatable with instrument ``i`` at ``price``, the others
        fixed (``others``: their (profit, MM) when the caller has them already)."""
        p = a.positions.get(i)
        if a.exempt or p is None or p.position == 0:
            return False
        profit, margin = self.others(a, i) if others is None else others
        return self.short_of(
            self.wealth(a, skip=i) + profit + self.unrealised(a, i, price)
            + self.own_value(a, i, price), margin + self.margin_of(i, p, price))

    def liquidation_price(self, a: _Account, i: int) -> int | None:
        """Position ``i``'s liquidation price, the others held at their marks (the asset valued
        at ``i`` moving with it). Long: the largest liquidatable price; short: the smallest
        (binary search, monotone): O(log max_price); on the entry basis without such an asset
        solved for: O(tiers). None for a short its own asset outweighs (own_outweighs)."""
        p = a.positions.get(i)
        if a.exempt or p is None or p.position == 0 or self.own_outweighs(a, i):
            return None
        if (self.mm_basis == MarginBasis.ENTRY and self.own_holding(a, i) is None
                and not self.inverse):
            return self.entry_liquidation_price(a, i)
        max_price = self.instruments[i].max_price
        others = self.others(a, i)   # fixed through the search

        def at(price: int) -> bool:
            return self.liquidatable_at(a, i, price, others)

        if p.position > 0:
            if not at(0):
                return None
            lo, hi = 0, max_price + 1  # liquidatable at lo, not at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if at(mid):
                    lo = mid
                else:
                    hi = mid
            return lo
        if not at(max_price):
            return None
        lo, hi = -1, max_price  # not liquidatable at lo, liquidatable at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if at(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def entry_liquidation_price(self, a: _Account, i: int) -> int | None:
        """The liquidation price with MM fixed at M = MM(C) (docs/liquidation.md, "Margin"):
        the equity is linear in the price, so the boundary is solved for exactly. The other
        positions enter as collateral (their profit) and margin (their MM)."""
        p = a.positions[i]
        profit, others_margin = self.others(a, i)
        collateral = self.wealth(a) + profit
        margin = others_margin + self.instruments[i].tiers.maintenance(p.cost)
        at = self.trigger == Trigger.AT_OR_BELOW
        step = abs(p.position) * self.instruments[i].k  # quote units the equity moves per tick
        max_price = self.instruments[i].max_price
        if p.position > 0:
            # liquidatable at P when collateral + P step - C < M (<= M for AT_OR_BELOW)
            need = margin + p.cost - collateral
            price = need // step if at else ceil_div(need, step) - 1
            return None if price < 0 else min(price, max_price)
        # liquidatable at P when collateral + C - P step < M (<= M)
        room = collateral + p.cost - margin
        price = ceil_div(room, step) if at else room // step + 1
        return None if price > max_price else max(price, 0)

    def bankruptcy_price(self, a: _Account, i: int) -> int | None:
        """Where position ``i`` leaves no equity, the others held at their marks. With an asset
        valued at ``i`` (moving with it), searched within [0, max_price]: a long's smallest
        price with equity >= 0 (max_price if none), a short's largest (0 if none)."""
        p = a.positions.get(i)
        if p is None or p.position == 0:
            return None
        collateral = self.wealth(a, skip=i) + self.others(a, i)[0]
        q, k = p.position, self.instruments[i].k
        if self.own_holding(a, i) is not None or self.inverse:
            # (an inverse equity is not linear in the price: searched too)
            def solvent(price: int) -> bool:
                return collateral + self.unrealised(a, i, price) + \
                    self.own_value(a, i, price) >= 0
            return self.solvent_edge(q > 0, solvent, self.instruments[i].max_price)
        if q > 0:
            return max(0, ceil_div(p.cost - collateral, q * k))
        return max(0, (p.cost + collateral) // (-q * k))

    @staticmethod
    def solvent_edge(long: bool, solvent, max_price: int) -> int:
        """The bankruptcy price searched within [0, max_price]: a long's smallest solvent
        price (its equity does not fall with the price), max_price if none; a short's
        largest, 0 if none (its equity moves one way, so the edge is found by halving either
        way). O(log max_price)."""
        # "past the edge" holds from some price up (a long: solvent; a short: insolvent); the
        # first such price in [0, max_price], max_price + 1 if none, is found by halving
        lo, hi = -1, max_price + 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if solvent(mid) == long:
                hi = mid
            else:
                lo = mid
        return min(hi, max_price) if long else max(hi - 1, 0)

    # -------------------------------------------------------------------- the indexes
    def reindex(self, a: _Account) -> None:
        """A one-position account under its liquidation price in its instrument's index
        (O(log n + log max_price)); an account holding several, or one and collateral assets
        (whose value moves with other marks), in ``multi``."""
        old = self.indexed.pop(a.owner, None)
        if old is not None:
            old[0].remove(old[1])
        self.multi.discard(a.owner)
        if a.exempt:
            return
        held = a.held()
        if len(held) > 1 or (held and a.holdings):
            self.multi.add(a.owner)
            return
        if not held:
            return
        i = held[0]
        price = self.liquidation_price(a, i)
        if price is not None:
            instrument = self.instruments[i]
            index = instrument.longs if a.positions[i].position > 0 else instrument.shorts
            key = (price, a.owner)
            index.add(key)
            self.indexed[a.owner] = (index, key)

    def crossed(self) -> list[int]:
        """Owners the marks make liquidatable: each instrument's indexes walked at its mark
        (O(log n + k)), and every account of ``multi`` evaluated (step 1 of
        docs/market_wide.md; O(multi))."""
        out = []
        for instrument in self.instruments:
            mark = instrument.mark
            if mark is None:
                continue
            for key in reversed(instrument.longs):
                if key[0] < mark:
                    break
                out.append(key[1])
            for key in instrument.shorts:
                if key[0] > mark:
                    break
                out.append(key[1])
        out.extend(owner for owner in self.multi if self.liquidatable(self.accounts[owner]))
        return out

    # --------------------------------------------------------------------- settlement
    def settle(self, a: _Account, i: int, delta: int, price: int) -> None:
        """Apply a fill of ``delta`` lots (signed) of ``i`` at ``price`` to an account."""
        self.apply_fill(a, i, delta, price)
        self.reindex(a)

    def apply_fill(self, a: _Account, i: int, delta: int, price: int) -> None:
        """The settlement arithmetic of docs/liquidation.md, on any account object."""
        p = a.pos(i)
        q = p.position
        if q == 0 or (q > 0) == (delta > 0):
            p.position = q + delta
            p.cost += self.value(i, price, abs(delta))
        else:
            closed = min(abs(delta), abs(q))
            released = p.cost * closed // abs(q)
            value = self.value(i, price, closed)
            a.collateral += self.sign * (value - released if q > 0 else released - value)
            p.cost -= released
            p.position = q + (closed if delta > 0 else -closed)
            rest = abs(delta) - closed
            if rest:
                # the rest opens at what the fill is worth less the closed part, so the fill
                # moves V(price, |delta|) in all on both sides (inverse values do not add up)
                p.position = rest if delta > 0 else -rest
                p.cost = self.value(i, price, abs(delta)) - value

    def charge(self, a: _Account, amount: int, to_fund: bool) -> None:
        """A fee: to the insurance fund (a liquidation fee) or out of the accounts (trading)."""
        a.collateral -= amount
        if to_fund:
            self.accounts[INSURANCE_FUND].collateral += amount
        else:
            self.fees_collected += amount
        self.reindex(a)

    def transfer(self, buyer: _Account, seller: _Account, i: int, price: int, qty: int) -> None:
        """An off-book trade of ``qty`` lots of ``i`` at ``price``, without fees."""
        self.settle(buyer, i, qty, price)
        self.settle(seller, i, -qty, price)

    def move(self, a: _Account, taker: _Account, i: int, direction: int, price: int,
             qty: int) -> None:
        """A liquidated account's lots of ``i`` to the taker of its remainder; ``direction``
        +1: the taker buys (the account was long)."""
        if direction > 0:
            self.transfer(taker, a, i, price, qty)
        else:
            self.transfer(a, taker, i, price, qty)

    def settle_events(self, i: int, events) -> None:
        """Settle the trades among a message's events on instrument ``i``, with their fees.
        O(events). (The compiled ledger also keeps open order quantities here; the reference
        counts the book's orders.)"""
        instr = self.instruments[i]
        for ev in events:
            if ev.kind != EventKind.TRADE:
                continue
            instr.trades.append(ev)
            taker, maker = self.accounts[ev.owner], self.accounts[ev.maker_owner]
            value = self.value(i, ev.price, ev.qty)
            if instr.spot_asset is None:
                self.settle(taker, i, ev.side * ev.qty, ev.price)
                self.settle(maker, i, -ev.side * ev.qty, ev.price)
            else:
                buyer, seller = (taker, maker) if ev.side == Side.BUY else (maker, taker)
                self.exchange(buyer, seller, instr, ev.qty, value)
            if ev.order_id >= 0:  # forced orders (negative ids) pay no taker fee
                self.charge(taker, ceil_div(value * self.taker_fee_ppm, PPM), to_fund=False)
            self.charge(maker, ceil_div(value * self.maker_fee_ppm, PPM), to_fund=False)

    def exchange(self, buyer: _Account, seller: _Account, instr: _Instrument, qty: int,
                 value: int) -> None:
        """A spot fill: ``qty`` lots of the book's asset from ``seller`` to ``buyer`` for
        ``value`` quote units; no position."""
        n, units = instr.spot_asset, qty * instr.units_per_lot
        buyer.collateral -= value
        buyer.holdings[n] = buyer.holdings.get(n, 0) + units
        seller.collateral += value
        seller.holdings[n] -= units
        if not seller.holdings[n]:
            del seller.holdings[n]
        self.reindex(buyer)
        self.reindex(seller)

    def fund(self, i: int, mark: int, rate: int) -> tuple[int, int, int, int, int]:
        """Move a funding payment at ``rate`` (units of 10**-8, > 0: longs pay) on the value of
        every position in ``i`` at ``mark`` (docs/funding.md): each account on the paying side
        pays ``ceil(V x |rate| / 10**8)``, each on the other side gets ``floor(paid x V /
        W)`` (W: that side's values summed), the remainder goes to the insurance fund, whose
        own positions neither pay nor receive. Exempt and isolated accounts (from their
        margin) take part like any other. Return (paid, received, remainder, payers,
        receivers); ValueError before anything moves if a balance would leave int64 or the
        payments pass 2**62. O(accounts + changed x reindex)."""
        payers, receivers = [], []
        for owner in sorted(self.accounts):
            a = self.accounts[owner]
            p = a.positions.get(i)
            if owner == INSURANCE_FUND or p is None or p.position == 0 or rate == 0:
                continue
            value = self.value(i, mark, abs(p.position))
            if (p.position > 0) == (rate > 0):
                payers.append((a, ceil_div(value * abs(rate), FUNDING_RATE_SCALE)))
            else:
                receivers.append((a, value))
        paid = sum(amount for _, amount in payers)
        if paid > FUNDING_PAID_BOUND:
            raise funding_too_large(rate, paid)
        weight = sum(value for _, value in receivers)
        shares = [(a, paid * value // weight) for a, value in receivers]
        received = sum(share for _, share in shares)
        fund = self.accounts[INSURANCE_FUND]
        if (any(a.collateral - amount < INT64_MIN for a, amount in payers)
                or any(a.collateral + share > INT64_MAX for a, share in shares)
                or fund.collateral + paid - received > INT64_MAX):
            raise funding_too_large(rate)
        for a, amount in payers:
            a.collateral -= amount
            self.reindex(a)
        for a, share in shares:
            a.collateral += share
            self.reindex(a)
        fund.collateral += paid - received
        return paid, received, paid - received, len(payers), len(receivers)

    # ------------------------------------------------------------------ saved state
    def account_rows(self) -> list[tuple]:
        """(owner, collateral, reserve, exempt, isolated, ((instrument, position, cost), ...),
        ((asset, units), ...)) per account, positions nonzero and ascending, holdings
        ascending."""
        return [(a.owner, a.collateral, a.reserve, a.exempt, a.isolated,
                 tuple((i, a.positions[i].position, a.positions[i].cost) for i in a.held()),
                 tuple(sorted(a.holdings.items())))
                for a in self.accounts.values()]

    def load_accounts(self, rows) -> None:
        """Checked rows into an empty ledger; the indexes are rebuilt."""
        for owner, collateral, reserve, exempt, isolated, positions, holdings in rows:
            account = _Account(owner, collateral, exempt, isolated, reserve)
            for i, position, cost in positions:
                account.positions[i] = _Position(position, cost)
            account.holdings = dict(holdings)
            self.accounts[owner] = account
        for account in self.accounts.values():
            self.reindex(account)


# ==================================================================================== engine


class Engine:
    # The keywords are described once, in orderbook.Engine's docstring; this one quotes them.
    __doc__ = "\n\n".join([
        "Margin accounts, mark price and liquidator around an order book (reference).",
        "See docs/liquidation.md for every rule. Money in quote units, prices in ticks, sizes in "
        "lots, rates in ppm.",
        parameters_section()])

    def __init__(self, tick_size="1", lot_size="1", quote_unit=None, *, tiers=DEFAULT_TIERS,
                 taker_fee_ppm=0, maker_fee_ppm=0, mark_rule=MarkRule.LAST, sizing=Sizing.FULL,
                 fraction_ppm=500_000, limit_rule=None, band_ppm=0, round_cap=None,
                 liquidation_fee_ppm=0, insurance_fund=0, backstop=None, backstop_discount_ppm=0,
                 deficit=Deficit.NONE, adl_ranking=AdlRanking.BITMEX,
                 trigger=Trigger.BELOW, mm_basis=MarginBasis.MARK,
                 stp=SelfTradePrevention.NONE, amend_rule=AmendRule.REDUCE_KEEPS_PRIORITY,
                 max_price=None, max_position=None, check_initial_margin=True,
                 fraction_above=0, takeover_below_ppm=0, cooldown_rounds=0, cooldown_ms=0,
                 increment=0, limit=None, instruments=None, close_order=CloseOrder.ALL,
                 assets=None, settlement=Settlement.LINEAR, contract_value=None):
        # The warning's stack level 2 is the caller of the constructor.
        limit_rule = limit_rule_arg(limit_rule, limit, 2)
        # The book's own refusals of these two do not name them; the engine's do.
        stp, amend_rule = book_rules(stp, amend_rule)
        book_kwargs = {"stp": stp, "amend_rule": amend_rule}

        def venue():
            return venue_instruments(instruments, tick_size, lot_size, quote_unit, tiers=tiers,
                                     max_price=max_price, max_position=max_position,
                                     mark_rule=mark_rule, book_type=OrderBook,
                                     book_kwargs=book_kwargs, settlement=settlement,
                                     contract_value=contract_value)

        if instruments is not None:
            specs, parts = venue()
            book = parts[0]["book"]
        else:
            book = OrderBook(tick_size, lot_size, **book_kwargs)
        given = settings(book.tick_size, book.lot_size, quote_unit, tiers=tiers,
                         insurance_fund=insurance_fund, backstop=backstop, round_cap=round_cap,
                         max_price=max_price, max_position=max_position,
                         taker_fee_ppm=taker_fee_ppm, maker_fee_ppm=maker_fee_ppm,
                         liquidation_fee_ppm=liquidation_fee_ppm, fraction_ppm=fraction_ppm,
                         band_ppm=band_ppm, backstop_discount_ppm=backstop_discount_ppm,
                         mark_rule=mark_rule, sizing=sizing, limit_rule=limit_rule,
                         deficit=deficit, adl_ranking=adl_ranking,
                         trigger=trigger, mm_basis=mm_basis,
                         check_initial_margin=check_initial_margin,
                         fraction_above=fraction_above,
                         takeover_below_ppm=takeover_below_ppm,
                         cooldown_rounds=cooldown_rounds, increment=increment,
                         close_order=close_order, settlement=settlement,
                         contract_value=(parts[0]["contract_value"] if instruments is not None
                                         else contract_value), cooldown_ms=cooldown_ms)
        if instruments is None:
            specs, parts = venue()
            parts[0]["book"] = book
        self.instruments = tuple(specs)
        self.quote_unit = given["quote_unit"]
        self.settlement, self.contract_value = given["settlement"], given["contract_value"]
        self.assets, self._assets = venue_assets(
            assets, [p["name"] for p in parts], [p["book"].tick_size for p in parts],
            [p["max_price"] for p in parts], self.quote_unit, self.settlement,
            [p["book"].lot_size for p in parts], [p["spot"] for p in parts])
        self._asset_deposits = [0] * len(self._assets)
        self.check_initial_margin = given["check_initial_margin"]
        for name in RATES:
            setattr(self, name, given[name])
        self.sizing = given["sizing"]
        self.limit_rule, self.deficit = given["limit_rule"], given["deficit"]
        self.adl_ranking = given["adl_ranking"]
        self.trigger, self.mm_basis = given["trigger"], given["mm_basis"]
        self.round_cap = given["round_cap"]
        self.fraction_above = given["fraction_above"]
        self.cooldown_rounds = given["cooldown_rounds"]
        self.cooldown_ms = given["cooldown_ms"]
        self.increment = given["increment"]
        self.close_order = given["close_order"]
        fund = given["insurance_fund"]
        self.backstop = given["backstop"]
        self._instruments = [
            _Instrument(i, p["name"], p["k"], p["tiers"], p["max_price"], p["max_position"],
                        p["mark_rule"], p["book"]) for i, p in enumerate(parts)]
        for n, part in enumerate(self._assets):
            if part["units_per_lot"]:
                instr = self._instruments[part["instrument"]]
                instr.spot_asset, instr.units_per_lot = n, part["units_per_lot"]
        self._names = [p["name"] for p in parts]
        self._set_books()
        self._assemble()
        self._accounts[INSURANCE_FUND] = _Account(INSURANCE_FUND, fund, True)
        self.total_deposits = fund
        self._funding: list[tuple] = []   # FundingSettlement rows (funding_history)

    def _set_books(self) -> None:
        self.books = tuple(BookView(instrument.book) for instrument in self._instruments)
        self.book = self.books[0]

    def _assemble(self) -> None:
        """The parts the settings configure: the ledger, and the liquidator over this engine's
        books, ledger and marks. Called again when a pickle replaces the books."""
        self._ledger = _Ledger(self._instruments, self.taker_fee_ppm, self.maker_fee_ppm,
                               self.trigger, self.mm_basis, self._assets,
                               self.settlement == Settlement.INVERSE)
        self._accounts = self._ledger.accounts  # one dict: the account methods use this name
        self._liquidator = _Liquidator(
            self._ledger, self._refresh_marks, sizing=self.sizing, limit_rule=self.limit_rule,
            deficit=self.deficit, adl_ranking=self.adl_ranking,
            fraction_ppm=self.fraction_ppm, band_ppm=self.band_ppm,
            liquidation_fee_ppm=self.liquidation_fee_ppm,
            backstop_discount_ppm=self.backstop_discount_ppm, round_cap=self.round_cap,
            backstop=self.backstop, fraction_above=self.fraction_above,
            takeover_below_ppm=self.takeover_below_ppm, cooldown_rounds=self.cooldown_rounds,
            increment=self.increment, close_order=self.close_order, cooldown_ms=self.cooldown_ms)

    # ------------------------------------------ instrument 0's settings (one-instrument API)
    @property
    def k(self) -> int:
        """Quote units per tick x lot of instrument 0."""
        return self._instruments[0].k

    @property
    def tiers(self):
        """Margin tiers of instrument 0."""
        return self._instruments[0].tiers

    @property
    def max_price(self) -> int:
        """Highest price of instrument 0, ticks."""
        return self._instruments[0].max_price

    @property
    def max_position(self) -> int:
        """Largest position in instrument 0, lots."""
        return self._instruments[0].max_position

    @property
    def mark_rule(self):
        """Mark price rule of instrument 0 (MarkRule)."""
        return self._instruments[0].mark_rule

    def _instrument(self, instrument) -> _Instrument:
        return self._instruments[instrument_arg(instrument, self._names)]

    # ------------------------------------------------------------------------ accounts
    def add_account(self, owner, collateral, *, exempt=False, isolated_margin=None) -> None:
        """Open an account with ``collateral`` quote units; exempt ones are never liquidated.

        With ``isolated_margin`` the account is isolated: only that much of its collateral backs
        the position (and can be lost); the rest is its reserve (one-instrument venues only).
        """
        owner, collateral, margin = new_account(owner, collateral, isolated_margin,
                                                self.total_deposits, self._accounts.__contains__)
        if isolated_margin is not None:
            isolated_backstop(owner, self.backstop, len(self._instruments))
        self._accounts[owner] = _Account(owner, margin, bool(exempt), isolated_margin is not None,
                                         collateral - margin)
        self.total_deposits += collateral

    def deposit(self, owner, amount, *, asset=None) -> None:
        """Add ``amount`` quote units (>= 1) to the collateral, or to an isolated reserve; with
        ``asset`` (a name or index of ``assets``), ``amount`` units of that collateral asset."""
        account = self._account(owner)
        if asset is not None:
            n = asset_arg(asset, [spec.name for spec in self.assets])
            amount = asset_deposit(account.owner, account.isolated, amount,
                                   self._asset_deposits[n], self._assets[n])
            account.holdings[n] = account.holdings.get(n, 0) + amount
            self._asset_deposits[n] += amount
            self._ledger.reindex(account)
            return
        amount = deposit_amount(amount, self.total_deposits)
        if account.isolated:
            account.reserve += amount
        else:
            account.collateral += amount
        self.total_deposits += amount
        self._ledger.reindex(account)

    def add_margin(self, owner, amount) -> None:
        """Move ``amount`` quote units of an isolated account's reserve into its margin."""
        account = self._account(owner)
        amount = margin_amount(account.owner, amount, account.isolated, account.reserve)
        account.reserve -= amount
        account.collateral += amount
        self._ledger.reindex(account)

    def _account(self, owner, name: str = "owner") -> _Account:
        owner = check.as_int64(name, owner)
        try:
            return self._accounts[owner]
        except KeyError:
            raise no_account(name, owner) from None

    def seed_position(self, long_owner, short_owner, price, qty, *, instrument=0) -> None:
        """Give two accounts opposite positions of ``qty`` lots at ``price`` ticks, off the book."""
        buyer = self._account(long_owner, "long_owner")
        seller = self._account(short_owner, "short_owner")
        instr = self._instrument(instrument)
        i = instr.index
        if instr.spot_asset is not None:
            raise spot_position(instr.name)
        price, qty = seeded_position(buyer.owner, seller.owner, buyer.pos(i).position,
                                     seller.pos(i).position, price, qty, instr.max_price,
                                     instr.max_position)
        self._check_isolated(buyer, i)
        self._check_isolated(seller, i)
        self._ledger.transfer(buyer, seller, i, price, qty)

    def add_accounts(self, owners, collateral, *, exempt=False) -> None:
        """Open many cross accounts at once, checked as a whole first (Engine.add_accounts)."""
        owners, collateral, exempt = new_accounts(
            owners, collateral, exempt, self.total_deposits,
            np.array(list(self._accounts), dtype=np.int64))
        for owner, amount, flag in zip(owners.tolist(), collateral.tolist(), exempt.tolist(),
                                       strict=True):
            self._accounts[owner] = _Account(owner, amount, flag, False, 0)
            self.total_deposits += amount

    def seed_positions(self, long_owners, short_owners, prices, qtys, *, instrument=0) -> None:
        """Seed positions row by row, checked as a whole first (Engine.seed_positions)."""
        instr = self._instrument(instrument)
        i = instr.index
        if instr.spot_asset is not None:
            raise spot_position(instr.name)
        longs = int64_column("long_owners", long_owners)
        shorts = int64_column("short_owners", short_owners)
        named = {}   # every owner named, in the order first named
        for name, column in (("long_owners", longs), ("short_owners", shorts)):
            for k, owner in enumerate(column.tolist()):
                if owner not in named:
                    if owner not in self._accounts:
                        raise no_account(f"{name}[{k}]", owner)
                    named[owner] = self._accounts[owner].pos(i).position

        def positions_of(owners):
            return np.array([named[o] for o in owners.tolist()], dtype=np.int64)

        longs, shorts, prices, qtys = seeded_positions(
            longs, shorts, prices, qtys, positions_of, instr.max_price, instr.max_position)
        for owner in named:
            self._check_isolated(self._accounts[owner], i)
        for buyer, seller, price, qty in zip(longs.tolist(), shorts.tolist(), prices.tolist(),
                                             qtys.tolist(), strict=True):
            self._ledger.transfer(self._accounts[buyer], self._accounts[seller], i, price, qty)

    def equities(self, owners=None) -> np.ndarray:
        """Each account's collateral, equity and maintenance margin at the current marks
        (EQUITY_DTYPE rows; Engine.equities)."""
        ids = self._owners_arg(owners)
        out = np.zeros(len(ids), dtype=EQUITY_DTYPE)
        for k, owner in enumerate(ids.tolist()):
            info = self.account(owner)
            lots = sum(abs(p.position) for p in info.positions)
            out[k] = (owner, info.collateral, info.equity, info.maintenance_margin,
                      info.exempt, lots)
        return out

    def _owners_arg(self, owners) -> np.ndarray:
        """equities()' and positions()' ``owners``: every owner ascending when None; KeyError
        naming the first without an account."""
        ids = (np.array(sorted(self._accounts), dtype=np.int64) if owners is None
               else int64_column("owners", owners))
        for k, owner in enumerate(ids.tolist()):
            if owner not in self._accounts:
                raise no_account(f"owners[{k}]", owner)
        return ids

    def positions(self, owners=None) -> np.ndarray:
        """Every open position of each account, by owner (POSITION_DTYPE rows;
        Engine.positions)."""
        ids = self._owners_arg(owners)
        rows = []
        for owner in ids.tolist():
            info = self.account(owner)
            for p in info.positions:
                notional = p.notional
                if not INT64_MIN <= notional <= INT64_MAX:
                    raise OverflowError(f"owner {owner}'s notional on instrument "
                                        f"{p.instrument} passes int64: read it with account()")
                liq = p.liquidation_price
                rows.append((owner, p.instrument, p.position, p.cost, notional,
                             0 if liq is None else liq, liq is not None, info.exempt))
        return np.array(rows, dtype=POSITION_DTYPE)

    def liquidatable(self, owners) -> np.ndarray:
        """Whether each account is liquidatable now, as the liquidator's trigger sees it
        (Engine.liquidatable)."""
        ids = int64_column("owners", owners)
        self._refresh_marks()
        out = np.zeros(len(ids), dtype=np.bool_)
        for k, owner in enumerate(ids.tolist()):
            if owner not in self._accounts:
                raise no_account(f"owners[{k}]", owner)
            out[k] = self._ledger.liquidatable(self._accounts[owner])
        return out

    def account(self, owner) -> AccountInfo:
        """An account's state evaluated at the current marks."""
        a = self._account(owner)
        self._refresh_marks()
        ledger = self._ledger
        equity = ledger.equity(a)
        # MM on the basis the trigger uses (the entry value needs no mark); IM on the notional.
        mm = ledger.maintenance(a)
        positions = []
        initial = 0
        for i in a.held():
            instr, p = self._instruments[i], a.positions[i]
            notional = 0 if instr.mark is None else ledger.value(i, instr.mark, abs(p.position))
            im = instr.tiers.initial(notional)
            initial += im
            positions.append(PositionInfo(
                i, p.position, p.cost, notional, ledger.unrealised(a, i, instr.mark),
                ledger.margin_of(i, p, instr.mark), im, ledger.liquidation_price(a, i),
                ledger.bankruptcy_price(a, i)))
        if equity > 0:
            ratio = mm / equity
        else:
            ratio = float("inf") if mm > 0 else 0.0
        first = a.positions.get(0) or _Position()
        holdings = []
        for n, units in sorted(a.holdings.items()):
            part = self._assets[n]
            holdings.append(HoldingInfo(n, units, asset_value(
                units, self._instruments[part["instrument"]].mark, part["num"], part["den"],
                part["haircut_ppm"])))
        return AccountInfo(a.owner, a.collateral, first.position, first.cost, equity, mm,
                           initial, ratio, ledger.liquidation_price(a, 0),
                           ledger.bankruptcy_price(a, 0), a.exempt, a.isolated, a.reserve,
                           tuple(positions), tuple(holdings))

    @property
    def busy(self) -> bool:
        """Always False: the reference has no busy guard (use it from one thread at a time)."""
        return False

    @property
    def insurance_fund(self) -> int:
        """The insurance fund's balance (collateral of its account), quote units."""
        return self._accounts[INSURANCE_FUND].collateral

    @property
    def fees_collected(self) -> int:
        """Trading fees taken out of the accounts so far, quote units."""
        return self._ledger.fees_collected

    def _asset_parts(self) -> list:
        """The checked collateral assets (``_engine_args.venue_assets`` dicts)."""
        return self._assets

    @property
    def asset_deposits(self) -> tuple:
        """Units of each collateral asset deposited so far (one int per ``assets`` entry)."""
        return tuple(self._asset_deposits)

    @property
    def conversions(self) -> tuple:
        """Per collateral asset, (units the venue bought from liquidated accounts, quote units
        it paid for them) so far (ForcedKind.CONVERSION records)."""
        return tuple((units, paid) for units, paid in self._ledger.converted)

    @fees_collected.setter
    def fees_collected(self, value: int) -> None:
        # Writable, as the plain attribute it was (tests plant inconsistencies through it).
        self._ledger.fees_collected = value

    def trades(self, instrument=0, *, start=0) -> np.ndarray:
        """Every trade the engine has settled on an instrument's book, forced ones included
        (EVENT_DTYPE rows); from the ``start``-th on (0 <= start <= the trade count)."""
        log = self._instrument(instrument).trades
        return events_to_array(log[check.log_start(start, len(log), "trade"):])

    def open_interest(self, instrument=0) -> int:
        """Lots of an instrument held long across all accounts (equal to the lots held short).
        O(accounts)."""
        i = self._instrument(instrument).index
        return sum(a.positions[i].position for a in self._accounts.values()
                   if i in a.positions and a.positions[i].position > 0)

    def owners(self) -> list[int]:
        """Owner ids of every account (the insurance fund's included), ascending."""
        return sorted(self._accounts)

    def total_equity(self, mark=None) -> int:
        """Sum of every account's equity and reserve (the fund's included) at ``mark`` (ticks,
        >= 0; one per instrument: an int for a one-instrument venue, else a sequence; default
        the current marks). O(accounts x positions)."""
        marks = equity_marks(mark, len(self._instruments))
        if marks is None:
            self._refresh_marks()
            marks = [instr.mark for instr in self._instruments]
        ledger = self._ledger
        return sum(a.collateral + a.reserve + ledger.holdings_value(a, marks)
                   + sum(ledger.unrealised(a, i, marks[i]) for i in a.held())
                   for a in self._accounts.values())

    # ------------------------------------------------------------------------- orders
    def _open_qty(self, instr: _Instrument, owner: int, side: int) -> int:
        orders = (instr.book.order(order_id) for order_id in instr.book.orders_of(owner))
        return sum(o.qty for o in orders if o.side == side)

    def submit(self, kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0, *,
               instrument=0):
        """Send one message to an instrument's book for an account; settle its trades; return
        its events."""
        kind = check.as_int64("kind", kind)
        order_id = user_order_id(order_id)
        instr = self._instrument(instrument)
        book = instr.book
        if kind not in _KINDS:
            raise check.error_for(Reason.INVALID_KIND, kind, order_id, 0, 0, 0, 0)
        if kind == Kind.AMEND:
            info = book.order(order_id)
            limit = order_price("price", price, instr.max_price)
            lots = check.as_int64("qty", qty)
            extra = lots - info.qty
            if instr.spot_asset is not None:
                if extra > 0 or limit != info.price:
                    # the amended order replaces the old: the other open lots, plus it
                    self._check_spot(instr, self._accounts[info.owner], info.side, kind,
                                     limit, 0, lots,
                                     self._open_qty(instr, info.owner, info.side) - info.qty)
            elif extra > 0:
                self._check_exposure(instr, info.owner, info.side, extra)
            if (instr.spot_asset is None and (extra > 0 or limit != info.price)
                    and info.kind not in STOP_KINDS):
                # The amended order replaces the old: the other open lots on its side, plus it.
                self._check_margin(instr, self._accounts[info.owner], info.side, kind, limit, 0,
                                   lots, self._open_qty(instr, info.owner, info.side) - info.qty)
        elif kind != Kind.CANCEL:
            account = self._account(owner)
            order_owner(account.owner)
            if instr.spot_asset is not None and account.isolated:
                raise spot_isolated(account.owner)
            side = check.order_side(side)
            limit = order_price("price", price, instr.max_price) if kind in PRICED_KINDS else 0
            stop = order_price("stop_price", stop_price, instr.max_price) if (
                kind in STOP_KINDS) else 0
            lots = check.as_int64("qty", qty)
            if instr.spot_asset is not None:
                self._check_spot(instr, account, side, kind, limit, stop, lots,
                                 self._open_qty(instr, account.owner, side))
            else:
                self._check_isolated(account, instr.index, order=True)
                self._check_exposure(instr, account.owner, side, lots)
                self._check_margin(instr, account, side, kind, limit, stop, lots,
                                   self._open_qty(instr, account.owner, side))
        events = book.submit(kind, order_id, side, price, qty, owner, stop_price)
        self._ledger.settle_events(instr.index, events)
        self._refresh_marks()  # the marks follow every message, whether or not anyone looks
        return events

    def _check_isolated(self, a: _Account, i: int, order: bool = False) -> None:
        """An isolated account's margin backs one position (docs/liquidation.md, "Several
        instruments in one venue"): refuse an order (OrderError ISOLATED_ELSEWHERE) or seed
        (ValueError) in instrument ``i`` while it holds a position or open orders in another.
        O(instruments x orders)."""
        if not a.isolated or len(self._instruments) == 1:
            return
        for j, instr in enumerate(self._instruments):
            held = a.positions.get(j)
            if j != i and ((held is not None and held.position)
                           or instr.book.orders_of(a.owner)):
                refusal = order_elsewhere if order else isolated_elsewhere
                raise refusal(a.owner, instr.name, self._instruments[i].name)

    def _check_spot(self, instr: _Instrument, a: _Account, side: int, kind: int, price: int,
                    stop_price: int, qty: int, open_qty: int) -> None:
        """A spot order must be paid for (docs/liquidation.md, "Spot books"): a sell needs the
        units of its ``qty`` lots and the ``open_qty`` open sells in the account's holding (every
        account, exempt ones too: no asset balance goes negative); a non-exempt account's buy
        needs the value of its ``qty`` plus ``open_qty`` open buy lots, at its price (limit,
        or the last level a market order reaches, or its stop price if higher), in quote
        collateral. O(levels) for a market buy, O(1) otherwise."""
        if qty < 1:
            return  # the book refuses it as INVALID_QTY
        if side == Side.SELL:
            need = (open_qty + qty) * instr.units_per_lot
            have = a.holdings.get(instr.spot_asset, 0)
            if need > have:
                raise insufficient_spot(a.owner, instr.name, side, need, have)
            return
        if a.exempt:
            return
        p = price if kind in PRICED_KINDS else instr.book.impact(side, qty).worst_price
        if kind in STOP_KINDS:
            p = max(p, stop_price)
        if p == 0:
            return  # a market buy with nothing to buy: it cannot fill
        need = self._ledger.value(instr.index, p, open_qty + qty)
        if need > a.collateral:
            raise insufficient_spot(a.owner, instr.name, side, need, a.collateral)

    def _check_exposure(self, instr: _Instrument, owner: int, side: int, qty: int) -> None:
        """Refuse (OrderError POSITION_LIMIT) an order that could take the position past
        ``max_position``; qty < 1 is the book's INVALID_QTY."""
        if qty < 1:
            return
        exposure(owner, self._accounts[owner].pos(instr.index).position,
                 self._open_qty(instr, owner, side), side, qty, instr.max_position)

    def _check_margin(self, instr: _Instrument, a: _Account, side: int, kind: int, price: int,
                      stop_price: int, qty: int, open_qty: int) -> None:
        """docs/liquidation.md, "Initial margin": refuse (OrderError INSUFFICIENT_MARGIN) an
        order of ``qty`` lots on ``side`` (``kind``; ``price`` and ``stop_price`` checked, 0
        where the kind has none) besides the account's ``open_qty`` other open lots on that
        side of the instrument, unless it reduces the position there. The other positions add
        their IM at their marks. O(levels) for a market order, O(1) otherwise."""
        if not self.check_initial_margin or a.exempt or qty < 1:
            return  # (qty < 1: the book refuses it as INVALID_QTY)
        i = instr.index
        held = a.pos(i).position
        worst = held + side * (open_qty + qty)
        if abs(worst) <= abs(held) and (worst == 0 or (worst > 0) == (held > 0)):
            return  # reducing: always accepted
        if kind in PRICED_KINDS:
            p = price
        else:  # the last level the order would reach on the book now (0: none)
            p = instr.book.impact(side, qty).worst_price
        if kind in STOP_KINDS:
            p = max(p, stop_price)
        self._refresh_marks()
        mark = instr.mark
        if mark is not None:
            p = max(p, mark)
        if p == 0:
            return  # a market order, no mark, nothing on the other side: it cannot fill
        m = p if mark is None else mark
        loss = 0
        ledger = self._ledger
        if ledger.inverse:
            # a coin notional is largest at the lowest price: the mark or a lower limit price
            if kind in PRICED_KINDS:
                loss = max(0, side * (ledger.value(i, m, qty) - ledger.value(i, price, qty)))
            p = min(m, price) if kind in PRICED_KINDS else m
        elif kind in PRICED_KINDS:
            loss = ledger.value(i, max(0, side * (price - m)), qty)
        required = instr.tiers.initial(ledger.value(i, p, abs(worst)))
        for j in a.held():
            if j != i:
                other = self._instruments[j]
                required += other.tiers.initial(0 if other.mark is None else ledger.value(
                    j, other.mark, abs(a.positions[j].position)))
        equity = ledger.equity_at(a, i, m)
        if required + loss > equity:
            raise insufficient_margin(a.owner, required, loss, equity)

    def limit(self, order_id, side, price, qty, owner, *, instrument=0):
        """Limit order for an account (see OrderBook.limit)."""
        return self.submit(Kind.LIMIT, order_id, side, price, qty, owner, instrument=instrument)

    def market(self, order_id, side, qty, owner, *, instrument=0):
        """Market order for an account."""
        return self.submit(Kind.MARKET, order_id, side, 0, qty, owner, instrument=instrument)

    def ioc(self, order_id, side, price, qty, owner, *, instrument=0):
        """Immediate-or-cancel order for an account."""
        return self.submit(Kind.IOC, order_id, side, price, qty, owner, instrument=instrument)

    def fok(self, order_id, side, price, qty, owner, *, instrument=0):
        """Fill-or-kill order for an account."""
        return self.submit(Kind.FOK, order_id, side, price, qty, owner, instrument=instrument)

    def post_only(self, order_id, side, price, qty, owner, *, instrument=0):
        """Post-only order for an account."""
        return self.submit(Kind.POST_ONLY, order_id, side, price, qty, owner,
                           instrument=instrument)

    def stop_market(self, order_id, side, stop_price, qty, owner, *, instrument=0):
        """Stop-market order for an account."""
        return self.submit(Kind.STOP_MARKET, order_id, side, 0, qty, owner, stop_price,
                           instrument=instrument)

    def stop_limit(self, order_id, side, stop_price, price, qty, owner, *, instrument=0):
        """Stop-limit order for an account."""
        return self.submit(Kind.STOP_LIMIT, order_id, side, price, qty, owner, stop_price,
                           instrument=instrument)

    def cancel(self, order_id, *, instrument=0):
        """Cancel a resting order or armed stop."""
        return self.submit(Kind.CANCEL, order_id, instrument=instrument)

    def amend(self, order_id, price, qty, *, instrument=0):
        """Amend a resting order."""
        return self.submit(Kind.AMEND, order_id, 0, price, qty, instrument=instrument)

    # ----------------------------------------------------------------------- the marks
    # ---------------------------------------------------------------------------- batch
    def process(self, messages, *, instrument=0, liquidate_every=0) -> BatchResult:
        """Run a MESSAGE_DTYPE array through an instrument's book as ``submit`` per row would,
        a refusal (OrderError) being one REJECTED event; see ``orderbook.Engine.process``."""
        instr = self._instrument(instrument)
        every = check.as_count("liquidate_every", liquidate_every)
        accounts = self._accounts
        rows = batch_messages(
            messages, lambda owner: accounts[owner].isolated if owner in accounts else None,
            instr.spot_asset is not None)
        first = len(self._liquidator.records)
        events = []
        for n, row in enumerate(rows.tolist(), 1):
            order_id, owner, price, stop_price, qty, kind, side = row
            try:
                events += self.submit(kind, order_id, side, price, qty, owner, stop_price,
                                      instrument=instr.index)
            except OrderError as exc:
                # as the book's batch reports its own refusals: the row's fields, numbered
                events += instr.book._execute(kind, order_id, side, price, stop_price, qty,
                                              owner, exc.reason)
            if every and n % every == 0:
                self._liquidator.run_round()
        return BatchResult(events_to_array(events), self._liquidator.records_array(first))

    def set_index(self, price, *, instrument=0) -> None:
        """Set an instrument's external index price (ticks) used by the INDEX, INDEX_CLAMPED
        and FAIR rules.

        ValueError under FAIR when the fair price would pass ``max_price`` (nothing changes).
        """
        instr = self._instrument(instrument)
        index = limit_price("price", price, instr.max_price)
        fair_mark_fits(instr.mark_rule, index, instr.funding_basis_ppm, instr.max_price)
        instr.index_price = index
        self._refresh_marks()

    def set_funding_basis(self, basis_ppm, *, instrument=0) -> None:
        """Set the funding basis (ppm, signed: funding rate x time to the next funding / the
        funding interval) that an instrument's FAIR rule adds to its index; within
        +-FUNDING_BASIS_BOUND.

        ValueError when out of bounds or, under FAIR, when the fair price would pass
        ``max_price`` (nothing changes).
        """
        instr = self._instrument(instrument)
        basis = funding_basis_arg(basis_ppm)
        if instr.index_price is not None:
            fair_mark_fits(instr.mark_rule, instr.index_price, basis, instr.max_price)
        instr.funding_basis_ppm = basis
        self._refresh_marks()

    @property
    def funding_basis_ppm(self) -> int:
        """The funding basis of instrument 0's FAIR mark, ppm (0 until set_funding_basis)."""
        return self._instruments[0].funding_basis_ppm

    def mark_price(self, instrument=0) -> int | None:
        """An instrument's mark price in ticks under its ``mark_rule``; the previous mark when
        the rule has none now."""
        instr = self._instrument(instrument)
        self._refresh_marks()
        return instr.mark

    def _refresh_marks(self) -> None:
        """Every instrument's mark, ascending: recomputed from its book, index and basis."""
        for instr in self._instruments:
            book = instr.book
            bid, ask = book.best_bid(), book.best_ask()
            value = None
            if instr.mark_rule == MarkRule.LAST:
                value = book.last_price
            elif instr.mark_rule == MarkRule.MID:
                if bid is not None and ask is not None:
                    value = (bid + ask) // 2
            elif instr.mark_rule == MarkRule.INDEX:
                value = instr.index_price
            elif instr.mark_rule == MarkRule.FAIR:
                if instr.index_price is not None:
                    value = fair_price(instr.index_price, instr.funding_basis_ppm)
            else:
                # INDEX_CLAMPED, LAST_CLAMPED: the median of the index (last trade), bid and
                # ask; the index (last trade) alone while a side is empty
                value = instr.index_price if instr.mark_rule == MarkRule.INDEX_CLAMPED else (
                    book.last_price)
                if value is not None and bid is not None and ask is not None:
                    value = sorted((value, bid, ask))[1]
            if value is not None:
                instr.mark = value

    # ------------------------------------------------------------------------- funding
    def settle_funding(self, rate, *, instrument=0) -> FundingSettlement:
        """Move one funding payment between the longs and shorts of a perpetual instrument at
        its mark (docs/funding.md): ``rate`` in units of 10**-8 of a position's value (an int
        within +-10**8; > 0: longs pay shorts, < 0: shorts pay longs). Payers pay the ceiling
        of what they owe, receivers get the floor of their pro-rata share of what was paid,
        the remainder goes to the insurance fund; the accounts' liquidation prices move with
        their balances, so the next round queues those funding took under maintenance. Return
        what moved (FundingSettlement), also kept in ``funding_history()``. ValueError on a
        spot book or an instrument without a mark (nothing changes)."""
        instr = self._instrument(instrument)
        rate = funding_rate_arg(rate)
        if instr.spot_asset is not None:
            raise spot_funding(instr.name)
        self._refresh_marks()
        if instr.mark is None:
            raise no_funding_mark(instr.name)
        moved = self._ledger.fund(instr.index, instr.mark, rate)
        record = FundingSettlement(self.time, instr.index, rate, instr.mark, *moved)
        self._funding.append(tuple(record))
        return record

    def funding_history(self) -> np.ndarray:
        """Every ``settle_funding`` so far, in order (FUNDING_DTYPE: FundingSettlement's
        fields)."""
        return np.array(self._funding, dtype=FUNDING_DTYPE)

    # ---------------------------------------------------------------------------- time
    @property
    def time(self) -> int:
        """The engine's clock, ms (0 until ``advance_to``); what ``cooldown_ms`` counts."""
        return self._liquidator.now

    def advance_to(self, time_ms) -> None:
        """Set the clock to ``time_ms`` (an int64 of ms, at least ``time``: it never goes
        back; ValueError naming both otherwise, nothing changed). Nothing else happens: the
        cooldowns it ends or keeps open are read when a forced order is sized."""
        self._liquidator.now = time_arg(time_ms, self._liquidator.now)

    # ---------------------------------------------------------------------- liquidator
    def queue(self) -> list[int]:
        """Owners waiting in the liquidation queue, front first."""
        return [episode.owner for episode in self._liquidator.queue]

    def liquidate(self, max_rounds=10_000) -> np.ndarray:
        """Run rounds until one makes no progress (or ``max_rounds``); return their records.

        A round that moves nothing (say the book has no bids left) ends the run and leaves the
        queue as it is, so a scenario can refill the book and call again.
        """
        limit = check.as_count("max_rounds", max_rounds)
        first = len(self._liquidator.records)
        for _ in range(limit):
            if not self._liquidator.run_round():
                break
        return self._liquidator.records_array(first)

    def liquidation_round(self) -> bool:
        """Run one round (docs/liquidation.md); return whether it made progress."""
        return self._liquidator.run_round()

    def forced_orders(self, *, start: int = 0) -> np.ndarray:
        """The liquidation records from index ``start`` on (FORCED_DTYPE; by default every one
        so far)."""
        first = check.log_start(start, len(self._liquidator.records), "forced-order")
        return self._liquidator.records_array(first)

    @property
    def forced_order_count(self) -> int:
        """How many liquidation records there are so far."""
        return len(self._liquidator.records)

    def fund_history(self) -> np.ndarray:
        """The insurance fund's balance after every round that did something: (round, balance)."""
        return self._liquidator.fund_history_array()

    # -------------------------------------------------------------------------- copies
    def copy(self) -> "Engine":
        """An independent engine with the same state and the same future behaviour. O(state)."""
        args, kwargs = constructor_args(self)
        return _restore(args, kwargs,
                        self._state([instr.book.copy() for instr in self._instruments]))

    def __copy__(self) -> "Engine":
        return self.copy()

    def __deepcopy__(self, memo) -> "Engine":
        return self.copy()

    def __reduce__(self):
        # The constructor's settings and the primary state as plain values; everything derived
        # (liquidation indexes, open quantities) is rebuilt and every field checked on load.
        args, kwargs = constructor_args(self)
        return (_restore, (args, kwargs,
                           self._state([instr.book for instr in self._instruments])))

    def _state(self, books) -> dict:
        # The format of _engine_state.check_state (STATE_VERSION), keys in this order.
        liquidator = self._liquidator
        instruments = self._instruments
        return {
            "version": STATE_VERSION, "books": books, "accounts": self._ledger.account_rows(),
            "queue": liquidator.queue_rows(), "records": liquidator.record_rows(),
            "trades": [events_to_array(instr.trades) for instr in instruments],
            "fund_history": liquidator.fund_rows(),
            "fees_collected": self._ledger.fees_collected, "total_deposits": self.total_deposits,
            "round": liquidator.round_number, "rounds_run": liquidator.rounds_run,
            "next_forced_id": liquidator.next_forced_id,
            "index_price": [instr.index_price for instr in instruments],
            "mark": [instr.mark for instr in instruments],
            "funding_basis_ppm": [instr.funding_basis_ppm for instr in instruments],
            "asset_deposits": list(self._asset_deposits),
            "conversions": [tuple(pair) for pair in self._ledger.converted],
            "time": liquidator.now,
            "funding_history": list(self._funding),
        }

    def __repr__(self) -> str:
        marks = [instr.mark for instr in self._instruments]
        return (f"reference_engine.Engine(accounts={len(self._accounts) - 1}, "
                f"mark={marks[0] if len(marks) == 1 else marks}, "
                f"fund={self.insurance_fund}, queue={len(self._liquidator.queue)})")


def _restore(args, kwargs, state) -> Engine:
    """Rebuild a pickled or copied reference Engine from checked settings and state."""
    engine = Engine(*args, **saved_kwargs(kwargs))
    state = check_state(engine, state, OrderBook)
    for instr, book, trades, index, mark, basis in zip(
            engine._instruments, state["books"], state["trades"], state["index_price"],
            state["mark"], state["funding_basis_ppm"], strict=True):
        instr.book, instr.trades = book, array_to_events(trades)
        instr.index_price, instr.mark, instr.funding_basis_ppm = index, mark, basis
    engine._set_books()
    engine._assemble()
    engine._ledger.load_accounts(state["accounts"])
    engine._ledger.fees_collected = state["fees_collected"]
    engine._liquidator.load(state)
    engine.total_deposits = state["total_deposits"]
    engine._asset_deposits = list(state["asset_deposits"])
    engine._ledger.converted = [list(pair) for pair in state["conversions"]]
    engine._funding = list(state["funding_history"])
    return engine
