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
    RATES,
    book_rules,
    deposit_amount,
    equity_mark,
    exposure,
    fair_mark_fits,
    funding_basis_arg,
    insufficient_margin,
    limit_price,
    limit_rule_arg,
    margin_amount,
    new_account,
    no_account,
    order_owner,
    parameters_section,
    seeded_position,
    settings,
    user_order_id,
)
from ._engine_state import STATE_VERSION, check_state, constructor_args, saved_kwargs
from ._reference_liquidator import _Liquidator
from .events import (
    INSURANCE_FUND,
    PPM,
    PRICED_KINDS,
    STOP_KINDS,
    AccountInfo,
    AdlRanking,
    AmendRule,
    Deficit,
    EventKind,
    Kind,
    MarginBasis,
    MarkRule,
    SelfTradePrevention,
    Sizing,
    Trigger,
    array_to_events,
    events_to_array,
    fair_price,
)
from .margin import DEFAULT_TIERS, ceil_div
from .reference import OrderBook

__all__ = ["Engine"]


class _Account:
    __slots__ = ("owner", "collateral", "position", "cost", "exempt", "isolated", "reserve")

    def __init__(self, owner: int, collateral: int, exempt: bool, isolated=False, reserve=0):
        self.owner = owner
        self.collateral = collateral  # backs the position (an isolated account's margin)
        self.position = 0
        self.cost = 0
        self.exempt = exempt
        self.isolated = isolated
        self.reserve = reserve        # an isolated account's balance outside its margin


# ==================================================================================== ledger


class _Ledger:
    """The accounts of one Engine: money, margin, the liquidation-price indexes, settlement.

    ``k`` is quote units per tick x lot; fees are in ppm of a trade's value.
    """

    def __init__(self, k: int, tiers, max_price: int, taker_fee_ppm: int, maker_fee_ppm: int,
                 trigger=Trigger.BELOW, mm_basis=MarginBasis.MARK):
        self.k, self.tiers, self.max_price = k, tiers, max_price
        self.trigger, self.mm_basis = trigger, mm_basis
        self.taker_fee_ppm, self.maker_fee_ppm = taker_fee_ppm, maker_fee_ppm
        self.accounts: dict[int, _Account] = {}
        self.longs = SortedList()   # (liquidation price, owner) of long positions
        self.shorts = SortedList()  # (liquidation price, owner) of short positions
        self.indexed: dict[int, tuple[SortedList, tuple[int, int]]] = {}
        self.fees_collected = 0     # quote units the trading fees took out of the accounts
        self.trades: list = []      # every trade settled, forced ones included

    # -------------------------------------------------------------------------- money
    def value(self, price: int, qty: int) -> int:
        """V(price, qty): quote units of ``qty`` lots at ``price`` ticks. O(1)."""
        return price * qty * self.k

    def unrealised(self, a: _Account, mark: int | None) -> int:
        if a.position == 0 or mark is None:
            return 0
        if a.position > 0:
            return self.value(mark, a.position) - a.cost
        return a.cost - self.value(mark, -a.position)

    def equity(self, a: _Account, mark: int | None) -> int:
        return a.collateral + self.unrealised(a, mark)

    # ------------------------------------------------------------------------- margin
    def maintenance(self, a: _Account, mark: int | None) -> int:
        """MM of the position on ``mm_basis``: on its notional at the mark (0 without one), or
        on its entry value (the cost, which needs no mark). O(tiers)."""
        if self.mm_basis == MarginBasis.ENTRY:
            return self.tiers.maintenance(a.cost)
        return self.tiers.maintenance(self.value(mark or 0, abs(a.position)))

    def short_of(self, equity: int, margin: int) -> bool:
        """The trigger: ``equity < margin`` (BELOW) or ``equity <= margin`` (AT_OR_BELOW)."""
        if self.trigger == Trigger.AT_OR_BELOW:
            return equity <= margin
        return equity < margin

    def liquidatable_at(self, a: _Account, price: int) -> bool:
        if a.exempt or a.position == 0:
            return False
        return self.short_of(self.equity(a, price), self.maintenance(a, price))

    def liquidation_price(self, a: _Account) -> int | None:
        """Long: the largest liquidatable price; short: the smallest (binary search, monotone):
        O(log max_price); on the entry basis solved for: O(tiers)."""
        if a.exempt or a.position == 0:
            return None
        if self.mm_basis == MarginBasis.ENTRY:
            return self.entry_liquidation_price(a)
        if a.position > 0:
            if not self.liquidatable_at(a, 0):
                return None
            lo, hi = 0, self.max_price + 1  # liquidatable at lo, not at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.liquidatable_at(a, mid):
                    lo = mid
                else:
                    hi = mid
            return lo
        if not self.liquidatable_at(a, self.max_price):
            return None
        lo, hi = -1, self.max_price  # not liquidatable at lo, liquidatable at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.liquidatable_at(a, mid):
                hi = mid
            else:
                lo = mid
        return hi

    def entry_liquidation_price(self, a: _Account) -> int | None:
        """The liquidation price with MM fixed at M = MM(C) (docs/liquidation.md, "Margin"):
        the equity is linear in the price, so the boundary is solved for exactly."""
        margin = self.tiers.maintenance(a.cost)
        at = self.trigger == Trigger.AT_OR_BELOW
        step = abs(a.position) * self.k  # quote units the equity moves per tick
        if a.position > 0:
            # liquidatable at P when collateral + P step - C < M (<= M for AT_OR_BELOW)
            need = margin + a.cost - a.collateral
            price = need // step if at else ceil_div(need, step) - 1
            return None if price < 0 else min(price, self.max_price)
        # liquidatable at P when collateral + C - P step < M (<= M)
        room = a.collateral + a.cost - margin
        price = ceil_div(room, step) if at else room // step + 1
        return None if price > self.max_price else max(price, 0)

    def bankruptcy_price(self, a: _Account) -> int | None:
        q = a.position
        if q == 0:
            return None
        if q > 0:
            return max(0, ceil_div(a.cost - a.collateral, q * self.k))
        return max(0, (a.cost + a.collateral) // (-q * self.k))

    # -------------------------------------------------------------------- the indexes
    def reindex(self, a: _Account) -> None:
        """Put the account under its current liquidation price. O(log n + log max_price)."""
        old = self.indexed.pop(a.owner, None)
        if old is not None:
            old[0].remove(old[1])
        price = self.liquidation_price(a)
        if price is not None:
            index = self.longs if a.position > 0 else self.shorts
            key = (price, a.owner)
            index.add(key)
            self.indexed[a.owner] = (index, key)

    # --------------------------------------------------------------------- settlement
    def settle(self, a: _Account, delta: int, price: int) -> None:
        """Apply a fill of ``delta`` lots (signed) at ``price`` to an account (no fees)."""
        self.apply_fill(a, delta, price)
        self.reindex(a)

    def apply_fill(self, a: _Account, delta: int, price: int) -> None:
        """The settlement arithmetic of docs/liquidation.md, on any account object."""
        q = a.position
        if q == 0 or (q > 0) == (delta > 0):
            a.position = q + delta
            a.cost += self.value(price, abs(delta))
        else:
            closed = min(abs(delta), abs(q))
            released = a.cost * closed // abs(q)
            value = self.value(price, closed)
            a.collateral += value - released if q > 0 else released - value
            a.cost -= released
            a.position = q + (closed if delta > 0 else -closed)
            rest = abs(delta) - closed
            if rest:
                a.position = rest if delta > 0 else -rest
                a.cost = self.value(price, rest)

    def charge(self, a: _Account, amount: int, to_fund: bool) -> None:
        """A fee: to the insurance fund (a liquidation fee) or out of the accounts (trading)."""
        a.collateral -= amount
        if to_fund:
            self.accounts[INSURANCE_FUND].collateral += amount
        else:
            self.fees_collected += amount
        self.reindex(a)

    def transfer(self, buyer: _Account, seller: _Account, price: int, qty: int) -> None:
        """An off-book trade of ``qty`` lots at ``price``, without fees."""
        self.settle(buyer, qty, price)
        self.settle(seller, -qty, price)

    def move(self, a: _Account, taker: _Account, direction: int, price: int, qty: int) -> None:
        """A liquidated account's lots to the taker of its remainder; ``direction`` +1: the
        taker buys (the account was long)."""
        if direction > 0:
            self.transfer(taker, a, price, qty)
        else:
            self.transfer(a, taker, price, qty)

    def settle_events(self, events) -> None:
        """Settle the trades among a message's events, with their fees. O(events). (The compiled
        ledger also keeps open order quantities here; the reference counts the book's orders.)"""
        for ev in events:
            if ev.kind != EventKind.TRADE:
                continue
            self.trades.append(ev)
            taker, maker = self.accounts[ev.owner], self.accounts[ev.maker_owner]
            self.settle(taker, ev.side * ev.qty, ev.price)
            self.settle(maker, -ev.side * ev.qty, ev.price)
            value = self.value(ev.price, ev.qty)
            if ev.order_id >= 0:  # forced orders (negative ids) pay no taker fee
                self.charge(taker, ceil_div(value * self.taker_fee_ppm, PPM), to_fund=False)
            self.charge(maker, ceil_div(value * self.maker_fee_ppm, PPM), to_fund=False)

    # ------------------------------------------------------------------ saved state
    def account_rows(self) -> list[tuple]:
        """(owner, collateral, position, cost, reserve, exempt, isolated) per account."""
        return [(a.owner, a.collateral, a.position, a.cost, a.reserve, a.exempt, a.isolated)
                for a in self.accounts.values()]

    def load_accounts(self, rows) -> None:
        """Checked rows into an empty ledger; the indexes are rebuilt."""
        for owner, collateral, position, cost, reserve, exempt, isolated in rows:
            account = _Account(owner, collateral, exempt, isolated, reserve)
            account.position, account.cost = position, cost
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
                 max_price=2**32 - 1, max_position=None, check_initial_margin=True,
                 fraction_above=0, takeover_below_ppm=0, cooldown_rounds=0, increment=0,
                 limit=None):
        # The warning's stack level 2 is the caller of the constructor.
        limit_rule = limit_rule_arg(limit_rule, limit, 2)
        # The book's own refusals of these two do not name them; the engine's do.
        stp, amend_rule = book_rules(stp, amend_rule)
        book = OrderBook(tick_size, lot_size, stp=stp, amend_rule=amend_rule)
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
                         cooldown_rounds=cooldown_rounds, increment=increment)
        self.quote_unit, self.k, self.tiers = given["quote_unit"], given["k"], given["tiers"]
        self.check_initial_margin = given["check_initial_margin"]
        for name in RATES:
            setattr(self, name, given[name])
        self.mark_rule, self.sizing = given["mark_rule"], given["sizing"]
        self.limit_rule, self.deficit = given["limit_rule"], given["deficit"]
        self.adl_ranking = given["adl_ranking"]
        self.trigger, self.mm_basis = given["trigger"], given["mm_basis"]
        self.round_cap = given["round_cap"]
        self.fraction_above = given["fraction_above"]
        self.cooldown_rounds = given["cooldown_rounds"]
        self.increment = given["increment"]
        self.max_price, self.max_position = given["max_price"], given["max_position"]
        fund = given["insurance_fund"]
        self._book = book
        self.book = BookView(book)
        self.backstop = given["backstop"]
        self._index_price: int | None = None
        self._funding_basis_ppm = 0
        self._mark: int | None = None
        self._assemble()
        self._accounts[INSURANCE_FUND] = _Account(INSURANCE_FUND, fund, True)
        self.total_deposits = fund

    def _assemble(self) -> None:
        """The parts the settings configure: the ledger, and the liquidator over this engine's
        book, ledger and mark. Called again when a pickle replaces the book."""
        self._ledger = _Ledger(self.k, self.tiers, self.max_price, self.taker_fee_ppm,
                               self.maker_fee_ppm, self.trigger, self.mm_basis)
        self._accounts = self._ledger.accounts  # one dict: the account methods use this name
        self._liquidator = _Liquidator(
            self._book, self._ledger, self.mark_price, k=self.k, max_position=self.max_position,
            sizing=self.sizing, limit_rule=self.limit_rule, deficit=self.deficit,
            adl_ranking=self.adl_ranking,
            fraction_ppm=self.fraction_ppm, band_ppm=self.band_ppm,
            liquidation_fee_ppm=self.liquidation_fee_ppm,
            backstop_discount_ppm=self.backstop_discount_ppm, round_cap=self.round_cap,
            backstop=self.backstop, fraction_above=self.fraction_above,
            takeover_below_ppm=self.takeover_below_ppm, cooldown_rounds=self.cooldown_rounds,
            increment=self.increment)

    # ------------------------------------------------------------------------ accounts
    def add_account(self, owner, collateral, *, exempt=False, isolated_margin=None) -> None:
        """Open an account with ``collateral`` quote units; exempt ones are never liquidated.

        With ``isolated_margin`` the account is isolated: only that much of its collateral backs
        the position (and can be lost); the rest is its reserve.
        """
        owner, collateral, margin = new_account(owner, collateral, isolated_margin,
                                                self.total_deposits, self._accounts.__contains__)
        self._accounts[owner] = _Account(owner, margin, bool(exempt), isolated_margin is not None,
                                         collateral - margin)
        self.total_deposits += collateral

    def deposit(self, owner, amount) -> None:
        """Add ``amount`` quote units (>= 1) to the collateral, or to an isolated reserve."""
        account = self._account(owner)
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

    def seed_position(self, long_owner, short_owner, price, qty) -> None:
        """Give two accounts opposite positions of ``qty`` lots at ``price`` ticks, off the book."""
        buyer = self._account(long_owner, "long_owner")
        seller = self._account(short_owner, "short_owner")
        price, qty = seeded_position(buyer.owner, seller.owner, buyer.position, seller.position,
                                     price, qty, self.max_price, self.max_position)
        self._ledger.transfer(buyer, seller, price, qty)

    def account(self, owner) -> AccountInfo:
        """An account's state evaluated at the current mark."""
        a = self._account(owner)
        mark = self.mark_price()
        equity = self._ledger.equity(a, mark)
        notional = self._ledger.value(mark or 0, abs(a.position))
        # MM on the basis the trigger uses (the entry value needs no mark); IM on the notional.
        mm = self._ledger.maintenance(a, mark)
        if equity > 0:
            ratio = mm / equity
        else:
            ratio = float("inf") if mm > 0 else 0.0
        return AccountInfo(a.owner, a.collateral, a.position, a.cost, equity, mm,
                           self.tiers.initial(notional), ratio, self._ledger.liquidation_price(a),
                           self._ledger.bankruptcy_price(a), a.exempt, a.isolated, a.reserve)

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

    @fees_collected.setter
    def fees_collected(self, value: int) -> None:
        # Writable, as the plain attribute it was (tests plant inconsistencies through it).
        self._ledger.fees_collected = value

    def trades(self) -> np.ndarray:
        """Every trade the engine has settled, forced ones included (EVENT_DTYPE rows)."""
        return events_to_array(self._ledger.trades)

    def open_interest(self) -> int:
        """Lots held long across all accounts (equal to the lots held short). O(accounts)."""
        return sum(a.position for a in self._accounts.values() if a.position > 0)

    def owners(self) -> list[int]:
        """Owner ids of every account (the insurance fund's included), ascending."""
        return sorted(self._accounts)

    def total_equity(self, mark=None) -> int:
        """Sum of every account's equity and reserve (the fund's included) at ``mark`` (ticks,
        >= 0; default the current mark). O(accounts)."""
        mark = self.mark_price() if mark is None else equity_mark(mark)
        return sum(self._ledger.equity(a, mark) + a.reserve for a in self._accounts.values())

    # ------------------------------------------------------------------------- orders
    def _price(self, name: str, price) -> int:
        return limit_price(name, price, self.max_price)

    def _open_qty(self, owner: int, side: int) -> int:
        orders = (self._book.order(order_id) for order_id in self._book.orders_of(owner))
        return sum(o.qty for o in orders if o.side == side)

    def submit(self, kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0):
        """Send one message to the book for an account; settle its trades; return its events."""
        kind = check.as_int64("kind", kind)
        order_id = user_order_id(order_id)
        if kind == Kind.AMEND:
            info = self._book.order(order_id)
            limit = self._price("price", price)
            lots = check.as_int64("qty", qty)
            extra = lots - info.qty
            if extra > 0:
                self._check_exposure(info.owner, info.side, extra)
            if (extra > 0 or limit != info.price) and info.kind not in STOP_KINDS:
                # The amended order replaces the old: the other open lots on its side, plus it.
                self._check_margin(self._accounts[info.owner], info.side, kind, limit, 0, lots,
                                   self._open_qty(info.owner, info.side) - info.qty)
        elif kind != Kind.CANCEL:
            account = self._account(owner)
            order_owner(account.owner)
            side = check.as_side(side)
            limit = self._price("price", price) if kind in PRICED_KINDS else 0
            stop = self._price("stop_price", stop_price) if kind in STOP_KINDS else 0
            lots = check.as_int64("qty", qty)
            self._check_exposure(account.owner, side, lots)
            self._check_margin(account, side, kind, limit, stop, lots,
                               self._open_qty(account.owner, side))
        events = self._book.submit(kind, order_id, side, price, qty, owner, stop_price)
        self._ledger.settle_events(events)
        self.mark_price()  # the mark follows every message, whether or not anyone looks at it
        return events

    def _check_exposure(self, owner: int, side: int, qty: int) -> None:
        exposure(owner, self._accounts[owner].position, self._open_qty(owner, side), side, qty,
                 self.max_position)

    def _check_margin(self, a: _Account, side: int, kind: int, price: int, stop_price: int,
                      qty: int, open_qty: int) -> None:
        """docs/liquidation.md, "Initial margin": refuse (OrderError INSUFFICIENT_MARGIN) an
        order of ``qty`` lots on ``side`` (``kind``; ``price`` and ``stop_price`` checked, 0
        where the kind has none) besides the account's ``open_qty`` other open lots on that
        side, unless it reduces the position. O(levels) for a market order, O(1) otherwise."""
        if not self.check_initial_margin or a.exempt or qty < 1:
            return  # (qty < 1: the book refuses it as INVALID_QTY)
        held = a.position
        worst = held + side * (open_qty + qty)
        if abs(worst) <= abs(held) and (worst == 0 or (worst > 0) == (held > 0)):
            return  # reducing: always accepted
        if kind in PRICED_KINDS:
            p = price
        else:  # the last level the order would reach on the book now (0: none)
            p = self._book.impact(side, qty).worst_price
        if kind in STOP_KINDS:
            p = max(p, stop_price)
        mark = self.mark_price()
        if mark is not None:
            p = max(p, mark)
        if p == 0:
            return  # a market order, no mark, nothing on the other side: it cannot fill
        m = p if mark is None else mark
        loss = 0
        if kind in PRICED_KINDS:
            loss = self._ledger.value(max(0, side * (price - m)), qty)
        required = self.tiers.initial(self._ledger.value(p, abs(worst)))
        equity = self._ledger.equity(a, m)
        if required + loss > equity:
            raise insufficient_margin(a.owner, required, loss, equity)

    def limit(self, order_id, side, price, qty, owner):
        """Limit order for an account (see OrderBook.limit)."""
        return self.submit(Kind.LIMIT, order_id, side, price, qty, owner)

    def market(self, order_id, side, qty, owner):
        """Market order for an account."""
        return self.submit(Kind.MARKET, order_id, side, 0, qty, owner)

    def ioc(self, order_id, side, price, qty, owner):
        """Immediate-or-cancel order for an account."""
        return self.submit(Kind.IOC, order_id, side, price, qty, owner)

    def fok(self, order_id, side, price, qty, owner):
        """Fill-or-kill order for an account."""
        return self.submit(Kind.FOK, order_id, side, price, qty, owner)

    def post_only(self, order_id, side, price, qty, owner):
        """Post-only order for an account."""
        return self.submit(Kind.POST_ONLY, order_id, side, price, qty, owner)

    def stop_market(self, order_id, side, stop_price, qty, owner):
        """Stop-market order for an account."""
        return self.submit(Kind.STOP_MARKET, order_id, side, 0, qty, owner, stop_price)

    def stop_limit(self, order_id, side, stop_price, price, qty, owner):
        """Stop-limit order for an account."""
        return self.submit(Kind.STOP_LIMIT, order_id, side, price, qty, owner, stop_price)

    def cancel(self, order_id):
        """Cancel a resting order or armed stop."""
        return self.submit(Kind.CANCEL, order_id)

    def amend(self, order_id, price, qty):
        """Amend a resting order."""
        return self.submit(Kind.AMEND, order_id, 0, price, qty)

    # ----------------------------------------------------------------------- the mark
    def set_index(self, price) -> None:
        """Set the external index price (ticks) used by the INDEX, INDEX_CLAMPED and FAIR rules.

        ValueError under FAIR when the fair price would pass ``max_price`` (nothing changes).
        """
        index = self._price("price", price)
        fair_mark_fits(self.mark_rule, index, self._funding_basis_ppm, self.max_price)
        self._index_price = index
        self.mark_price()

    def set_funding_basis(self, basis_ppm) -> None:
        """Set the funding basis (ppm, signed: funding rate x time to the next funding / the
        funding interval) that the FAIR rule adds to the index; within +-FUNDING_BASIS_BOUND.

        ValueError when out of bounds or, under FAIR, when the fair price would pass
        ``max_price`` (nothing changes).
        """
        basis = funding_basis_arg(basis_ppm)
        if self._index_price is not None:
            fair_mark_fits(self.mark_rule, self._index_price, basis, self.max_price)
        self._funding_basis_ppm = basis
        self.mark_price()

    @property
    def funding_basis_ppm(self) -> int:
        """The funding basis of the FAIR mark, ppm (0 until set_funding_basis)."""
        return self._funding_basis_ppm

    def mark_price(self) -> int | None:
        """The mark price in ticks under ``mark_rule``; the previous mark when the rule has none."""
        bid, ask = self._book.best_bid(), self._book.best_ask()
        value = None
        if self.mark_rule == MarkRule.LAST:
            value = self._book.last_price
        elif self.mark_rule == MarkRule.MID:
            if bid is not None and ask is not None:
                value = (bid + ask) // 2
        elif self.mark_rule == MarkRule.INDEX:
            value = self._index_price
        elif self.mark_rule == MarkRule.FAIR:
            if self._index_price is not None:
                value = fair_price(self._index_price, self._funding_basis_ppm)
        else:
            # INDEX_CLAMPED, LAST_CLAMPED: the median of the index (last trade), bid and ask;
            # the index (last trade) alone while a side is empty
            value = self._index_price if self.mark_rule == MarkRule.INDEX_CLAMPED else (
                self._book.last_price)
            if value is not None and bid is not None and ask is not None:
                value = sorted((value, bid, ask))[1]
        if value is not None:
            self._mark = value
        return self._mark

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

    def forced_orders(self) -> np.ndarray:
        """Every liquidation record so far (FORCED_DTYPE)."""
        return self._liquidator.records_array(0)

    def fund_history(self) -> np.ndarray:
        """The insurance fund's balance after every round that did something: (round, balance)."""
        return self._liquidator.fund_history_array()

    # -------------------------------------------------------------------------- copies
    def copy(self) -> "Engine":
        """An independent engine with the same state and the same future behaviour. O(state)."""
        args, kwargs = constructor_args(self)
        return _restore(args, kwargs, self._state(self._book.copy()))

    def __copy__(self) -> "Engine":
        return self.copy()

    def __deepcopy__(self, memo) -> "Engine":
        return self.copy()

    def __reduce__(self):
        # The constructor's settings and the primary state as plain values; everything derived
        # (liquidation indexes, open quantities) is rebuilt and every field checked on load.
        args, kwargs = constructor_args(self)
        return (_restore, (args, kwargs, self._state(self._book)))

    def _state(self, book) -> dict:
        # The format of _engine_state.check_state (STATE_VERSION), keys in this order.
        liquidator = self._liquidator
        return {
            "version": STATE_VERSION, "book": book, "accounts": self._ledger.account_rows(),
            "queue": liquidator.queue_rows(), "records": liquidator.record_rows(),
            "trades": events_to_array(self._ledger.trades),
            "fund_history": liquidator.fund_rows(),
            "fees_collected": self._ledger.fees_collected, "total_deposits": self.total_deposits,
            "round": liquidator.round_number, "rounds_run": liquidator.rounds_run,
            "next_forced_id": liquidator.next_forced_id,
            "index_price": self._index_price, "mark": self._mark,
            "funding_basis_ppm": self._funding_basis_ppm,
        }

    def __repr__(self) -> str:
        return (f"reference_engine.Engine(accounts={len(self._accounts) - 1}, mark={self._mark}, "
                f"fund={self.insurance_fund}, queue={len(self._liquidator.queue)})")


def _restore(args, kwargs, state) -> Engine:
    """Rebuild a pickled or copied reference Engine from checked settings and state."""
    engine = Engine(*args, **saved_kwargs(kwargs))
    state = check_state(engine, state, OrderBook)
    engine._book = state["book"]
    engine.book = BookView(engine._book)
    engine._assemble()
    engine._ledger.load_accounts(state["accounts"])
    engine._ledger.trades = array_to_events(state["trades"])
    engine._ledger.fees_collected = state["fees_collected"]
    engine._liquidator.load(state)
    engine.total_deposits = state["total_deposits"]
    engine._index_price, engine._mark = state["index_price"], state["mark"]
    engine._funding_basis_ppm = state["funding_basis_ppm"]
    return engine
