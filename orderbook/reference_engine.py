"""Pure-Python reference margin engine and liquidator: the executable spec of docs/liquidation.md.

An ``Engine`` owns a reference ``OrderBook``, the margin accounts and the liquidator. Every order,
forced ones included, goes through the book; every trade settles to the accounts of its taker and
maker. Written to be read next to docs/liquidation.md, rule by rule; plain data structures
(dicts, ``sortedcontainers.SortedList`` for the liquidation-price indexes), no tricks.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from sortedcontainers import SortedList

from . import _validation as check
from .events import (
    FORCED_DTYPE, FUND_HISTORY_DTYPE, INSURANCE_FUND, NO_COUNTERPARTY, PPM, PRICED_KINDS,
    STOP_KINDS, AccountInfo, AmendRule, Deficit, EventKind,
    ForcedKind, Kind, LimitRule, MarkRule, SelfTradePrevention, Side, Sizing, array_to_events,
    events_to_array,
)
from ._bookview import BookView
from ._engine_state import (
    RATES, STATE_VERSION, book_rules, check_state, constructor_args, settings,
)
from .margin import DEFAULT_TIERS, DEPOSIT_BOUND, ceil_div
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


class _Episode:
    """An account's stay in the liquidation queue."""

    __slots__ = ("owner", "generation")

    def __init__(self, owner: int, generation: int):
        self.owner = owner
        self.generation = generation


class Engine:
    """Margin accounts, mark price and liquidator around an order book (reference).

    See docs/liquidation.md for every rule. Money in quote units, prices in ticks, sizes in lots,
    rates in ppm.
    """

    def __init__(self, tick_size="1", lot_size="1", quote_unit=None, *, tiers=DEFAULT_TIERS,
                 taker_fee_ppm=0, maker_fee_ppm=0, mark_rule=MarkRule.LAST, sizing=Sizing.FULL,
                 fraction_ppm=500_000, limit=LimitRule.MARKET, band_ppm=0, round_cap=None,
                 liquidation_fee_ppm=0, insurance_fund=0, backstop=None, backstop_discount_ppm=0,
                 deficit=Deficit.NONE, stp=SelfTradePrevention.NONE,
                 amend_rule=AmendRule.REDUCE_KEEPS_PRIORITY, max_price=2**32 - 1,
                 max_position=None):
        # The book's own refusals of these two do not name them; the engine's do.
        stp, amend_rule = book_rules(stp, amend_rule)
        book = OrderBook(tick_size, lot_size, stp=stp, amend_rule=amend_rule)
        given = settings(book.tick_size, book.lot_size, quote_unit, tiers=tiers,
                         insurance_fund=insurance_fund, backstop=backstop, round_cap=round_cap,
                         max_price=max_price, max_position=max_position,
                         taker_fee_ppm=taker_fee_ppm, maker_fee_ppm=maker_fee_ppm,
                         liquidation_fee_ppm=liquidation_fee_ppm, fraction_ppm=fraction_ppm,
                         band_ppm=band_ppm, backstop_discount_ppm=backstop_discount_ppm,
                         mark_rule=mark_rule, sizing=sizing, limit=limit, deficit=deficit)
        self.quote_unit, self.k, self.tiers = given["quote_unit"], given["k"], given["tiers"]
        for name in RATES:
            setattr(self, name, given[name])
        self.mark_rule, self.sizing = given["mark_rule"], given["sizing"]
        self.limit_rule, self.deficit = given["limit"], given["deficit"]
        self.round_cap = given["round_cap"]
        self.max_price, self.max_position = given["max_price"], given["max_position"]
        fund = given["insurance_fund"]
        self._book = book
        self.book = BookView(book)
        self._accounts: dict[int, _Account] = {INSURANCE_FUND: _Account(INSURANCE_FUND, fund, True)}
        self.total_deposits = fund
        self.fees_collected = 0
        self.backstop = given["backstop"]
        self._longs = SortedList()   # (liquidation price, owner) of long positions
        self._shorts = SortedList()  # (liquidation price, owner) of short positions
        self._indexed: dict[int, tuple[SortedList, tuple[int, int]]] = {}
        self._index_price: int | None = None
        self._mark: int | None = None
        self._queue: list[_Episode] = []
        self._round = 0          # round number within the current cascade
        self._rounds_run = 0     # rounds that did something, over the engine's life
        self._next_forced_id = -1
        self._progress = 0
        self._bad_debt_noted = 0  # bad debt recorded by the entry being served
        self._records: list[tuple] = []
        self._trades: list = []
        self._fund_history: list[tuple[int, int]] = []

    # ------------------------------------------------------------------------ accounts
    def add_account(self, owner, collateral, *, exempt=False, isolated_margin=None) -> None:
        """Open an account with ``collateral`` quote units; exempt ones are never liquidated.

        With ``isolated_margin`` the account is isolated: only that much of its collateral backs
        the position (and can be lost); the rest is its reserve.
        """
        owner = check.as_int64("owner", owner)
        if owner < 0:
            raise ValueError(f"owner must be >= 0 (negative ids are the engine's), got {owner}")
        if owner in self._accounts:
            raise ValueError(f"owner {owner} already has an account")
        collateral = check.as_int64("collateral", collateral)
        if collateral < 0:
            raise ValueError(f"collateral must be >= 0 quote units, got {collateral}")
        margin = collateral
        if isolated_margin is not None:
            margin = check.as_int64("isolated_margin", isolated_margin)
            if not 0 <= margin <= collateral:
                raise ValueError(f"isolated_margin must be in [0, collateral={collateral}], "
                                 f"got {margin}")
        self._check_deposit(collateral)
        self._accounts[owner] = _Account(owner, margin, bool(exempt), isolated_margin is not None,
                                         collateral - margin)
        self.total_deposits += collateral

    def deposit(self, owner, amount) -> None:
        """Add ``amount`` quote units (>= 1): to the collateral, or an isolated account's reserve."""
        account = self._account(owner)
        amount = check.as_positive("amount", amount)
        self._check_deposit(amount)
        if account.isolated:
            account.reserve += amount
        else:
            account.collateral += amount
        self.total_deposits += amount
        self._reindex(account)

    def add_margin(self, owner, amount) -> None:
        """Move ``amount`` quote units of an isolated account's reserve into its margin."""
        account = self._account(owner)
        amount = check.as_positive("amount", amount)
        if not account.isolated:
            raise ValueError(f"owner {account.owner} is a cross-margin account; add_margin is "
                             f"for isolated accounts")
        if amount > account.reserve:
            raise ValueError(f"amount {amount} exceeds owner {account.owner}'s reserve "
                             f"{account.reserve}")
        account.reserve -= amount
        account.collateral += amount
        self._reindex(account)

    def _check_deposit(self, amount: int) -> None:
        if self.total_deposits + amount > DEPOSIT_BOUND:
            raise ValueError(f"total deposits would reach {self.total_deposits + amount}, "
                             f"past 2**62 quote units")

    def _account(self, owner, name: str = "owner") -> _Account:
        owner = check.as_int64(name, owner)
        try:
            return self._accounts[owner]
        except KeyError:
            raise KeyError(f"{name} {owner} has no account") from None

    def seed_position(self, long_owner, short_owner, price, qty) -> None:
        """Give two accounts opposite positions of ``qty`` lots at ``price`` ticks, off the book."""
        buyer = self._account(long_owner, "long_owner")
        seller = self._account(short_owner, "short_owner")
        if buyer is seller:
            raise ValueError("seed_position needs two different accounts")
        if buyer.owner == INSURANCE_FUND or seller.owner == INSURANCE_FUND:
            raise ValueError("the insurance fund cannot be seeded with a position")
        price = self._price("price", price)
        qty = check.as_positive("qty", qty)
        for account, sign in ((buyer, 1), (seller, -1)):
            if abs(account.position + sign * qty) > self.max_position:
                raise ValueError(f"qty {qty} would take owner {account.owner}'s position past "
                                 f"max_position {self.max_position}")
        self._transfer(buyer, seller, price, qty)

    def account(self, owner) -> AccountInfo:
        """An account's state evaluated at the current mark."""
        a = self._account(owner)
        mark = self.mark_price()
        equity = self._equity(a, mark)
        notional = self._value(mark or 0, abs(a.position))
        mm = self.tiers.maintenance(notional)
        if equity > 0:
            ratio = mm / equity
        else:
            ratio = float("inf") if mm > 0 else 0.0
        return AccountInfo(a.owner, a.collateral, a.position, a.cost, equity, mm,
                           self.tiers.initial(notional), ratio, self._liquidation_price(a),
                           self._bankruptcy_price(a), a.exempt, a.isolated, a.reserve)

    @property
    def busy(self) -> bool:
        """Always False: the reference has no busy guard (use it from one thread at a time)."""
        return False

    @property
    def insurance_fund(self) -> int:
        """The insurance fund's balance (collateral of its account), quote units."""
        return self._accounts[INSURANCE_FUND].collateral

    def trades(self) -> np.ndarray:
        """Every trade the engine has settled, forced ones included (EVENT_DTYPE rows)."""
        return events_to_array(self._trades)

    def open_interest(self) -> int:
        """Lots held long across all accounts (equal to the lots held short). O(accounts)."""
        return sum(a.position for a in self._accounts.values() if a.position > 0)

    def owners(self) -> list[int]:
        """Owner ids of every account (the insurance fund's included), ascending."""
        return sorted(self._accounts)

    # -------------------------------------------------------------------------- money
    def _value(self, price: int, qty: int) -> int:
        return price * qty * self.k

    def _unrealised(self, a: _Account, mark: int | None) -> int:
        if a.position == 0 or mark is None:
            return 0
        if a.position > 0:
            return self._value(mark, a.position) - a.cost
        return a.cost - self._value(mark, -a.position)

    def _equity(self, a: _Account, mark: int | None) -> int:
        return a.collateral + self._unrealised(a, mark)

    def _settle(self, a: _Account, delta: int, price: int) -> None:
        """Apply a fill of ``delta`` lots (signed) at ``price`` to an account (no fees)."""
        self._apply_fill(a, delta, price)
        self._reindex(a)

    def _apply_fill(self, a: _Account, delta: int, price: int) -> None:
        """The settlement arithmetic of docs/liquidation.md, on any account object."""
        q = a.position
        if q == 0 or (q > 0) == (delta > 0):
            a.position = q + delta
            a.cost += self._value(price, abs(delta))
        else:
            closed = min(abs(delta), abs(q))
            released = a.cost * closed // abs(q)
            value = self._value(price, closed)
            a.collateral += value - released if q > 0 else released - value
            a.cost -= released
            a.position = q + (closed if delta > 0 else -closed)
            rest = abs(delta) - closed
            if rest:
                a.position = rest if delta > 0 else -rest
                a.cost = self._value(price, rest)

    def _charge(self, a: _Account, amount: int, to_fund: bool) -> None:
        a.collateral -= amount
        if to_fund:
            self._accounts[INSURANCE_FUND].collateral += amount
        else:
            self.fees_collected += amount
        self._reindex(a)

    def _transfer(self, buyer: _Account, seller: _Account, price: int, qty: int) -> None:
        self._settle(buyer, qty, price)
        self._settle(seller, -qty, price)

    def _settle_events(self, events) -> None:
        for ev in events:
            if ev.kind != EventKind.TRADE:
                continue
            self._trades.append(ev)
            taker, maker = self._accounts[ev.owner], self._accounts[ev.maker_owner]
            self._settle(taker, ev.side * ev.qty, ev.price)
            self._settle(maker, -ev.side * ev.qty, ev.price)
            value = self._value(ev.price, ev.qty)
            if ev.order_id >= 0:  # forced orders (negative ids) pay no taker fee
                self._charge(taker, ceil_div(value * self.taker_fee_ppm, PPM), to_fund=False)
            self._charge(maker, ceil_div(value * self.maker_fee_ppm, PPM), to_fund=False)

    # ------------------------------------------------------------------------- orders
    def _price(self, name: str, price) -> int:
        price = check.as_int64(name, price)
        if not 1 <= price <= self.max_price:
            raise ValueError(f"{name} must be in [1, max_price={self.max_price}] ticks, got {price}")
        return price

    def _open_qty(self, owner: int, side: int) -> int:
        return sum(o.qty for o in self._book._live.values()
                   if o.owner == owner and o.side == side)

    def submit(self, kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0):
        """Send one message to the book for an account; settle its trades; return its events."""
        kind = check.as_int64("kind", kind)
        order_id = check.as_int64("order_id", order_id)
        if order_id < 0:
            raise ValueError(f"order_id must be >= 0 (negative ids are the liquidator's), "
                             f"got {order_id}")
        if kind == Kind.AMEND:
            info = self._book.order(order_id)
            self._price("price", price)
            extra = check.as_int64("qty", qty) - info.qty
            if extra > 0:
                self._check_exposure(info.owner, info.side, extra)
        elif kind != Kind.CANCEL:
            account = self._account(owner)
            if account.owner == INSURANCE_FUND:
                raise ValueError("orders cannot be sent for the insurance fund")
            side = check.as_side(side)
            if kind in PRICED_KINDS:
                self._price("price", price)
            if kind in STOP_KINDS:
                self._price("stop_price", stop_price)
            self._check_exposure(account.owner, side, check.as_int64("qty", qty))
        events = self._book.submit(kind, order_id, side, price, qty, owner, stop_price)
        self._settle_events(events)
        self.mark_price()  # the mark follows every message, whether or not anyone looks at it
        return events

    def _check_exposure(self, owner: int, side: int, qty: int) -> None:
        worst = abs(self._accounts[owner].position + side * (self._open_qty(owner, side) + qty))
        if worst > self.max_position:
            raise ValueError(f"qty {qty} could take owner {owner}'s position to {worst} lots, "
                             f"past max_position {self.max_position}")

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
        """Set the external index price (ticks) used by the INDEX and INDEX_CLAMPED rules."""
        self._index_price = self._price("price", price)
        self.mark_price()

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
        elif self._index_price is not None:
            if bid is not None and ask is not None:
                value = sorted((self._index_price, bid, ask))[1]
            else:
                value = self._index_price
        if value is not None:
            self._mark = value
        return self._mark

    # ------------------------------------------------------------------------- margin
    def _liquidatable_at(self, a: _Account, price: int) -> bool:
        if a.exempt or a.position == 0:
            return False
        notional = self._value(price, abs(a.position))
        return self._equity(a, price) < self.tiers.maintenance(notional)

    def _liquidation_price(self, a: _Account) -> int | None:
        """Long: the largest liquidatable price; short: the smallest (binary search, monotone)."""
        if a.exempt or a.position == 0:
            return None
        if a.position > 0:
            if not self._liquidatable_at(a, 0):
                return None
            lo, hi = 0, self.max_price + 1  # liquidatable at lo, not at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self._liquidatable_at(a, mid):
                    lo = mid
                else:
                    hi = mid
            return lo
        if not self._liquidatable_at(a, self.max_price):
            return None
        lo, hi = -1, self.max_price  # not liquidatable at lo, liquidatable at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._liquidatable_at(a, mid):
                hi = mid
            else:
                lo = mid
        return hi

    def _bankruptcy_price(self, a: _Account) -> int | None:
        q = a.position
        if q == 0:
            return None
        if q > 0:
            return max(0, ceil_div(a.cost - a.collateral, q * self.k))
        return max(0, (a.cost + a.collateral) // (-q * self.k))

    def _reindex(self, a: _Account) -> None:
        old = self._indexed.pop(a.owner, None)
        if old is not None:
            old[0].remove(old[1])
        price = self._liquidation_price(a)
        if price is not None:
            index = self._longs if a.position > 0 else self._shorts
            key = (price, a.owner)
            index.add(key)
            self._indexed[a.owner] = (index, key)

    # ---------------------------------------------------------------------- liquidator
    def queue(self) -> list[int]:
        """Owners waiting in the liquidation queue, front first."""
        return [episode.owner for episode in self._queue]

    def liquidate(self, max_rounds=10_000) -> np.ndarray:
        """Run rounds until one makes no progress (or ``max_rounds``); return their records.

        A round that moves nothing (say the book has no bids left) ends the run and leaves the
        queue as it is, so a scenario can refill the book and call again.
        """
        limit = check.as_count("max_rounds", max_rounds)
        first = len(self._records)
        for _ in range(limit):
            if not self.liquidation_round():
                break
        return _record_array(self._records[first:])

    def forced_orders(self) -> np.ndarray:
        """Every liquidation record so far (FORCED_DTYPE)."""
        return _record_array(self._records)

    def fund_history(self) -> np.ndarray:
        """The insurance fund's balance after every round that did something: (round, balance)."""
        return np.array(self._fund_history, dtype=FUND_HISTORY_DTYPE)

    def liquidation_round(self) -> bool:
        """Run one round (docs/liquidation.md); return whether it made progress.

        Progress is any lot filled or taken over, any shortfall covered, or any open order of an
        account entering liquidation cancelled. A round without
        progress is not counted: it leaves no records and keeps the cascade's round number.
        """
        self._progress = 0
        mark = self.mark_price()
        if mark is not None:
            self._enqueue_crossed(mark)
        if not self._queue:
            self._round = 0
            return False
        cap_left = self.round_cap
        for episode in list(self._queue):
            if episode not in self._queue:
                continue
            served = self._serve(episode, cap_left)
            if served is None:
                break
            if cap_left is not None:
                cap_left -= served
        if not self._progress:
            return False
        self._fund_history.append((self._rounds_run, self.insurance_fund))
        self._rounds_run += 1
        self._round += 1
        return True

    def _enqueue_crossed(self, mark: int) -> None:
        queued = {episode.owner for episode in self._queue}
        crossed = []
        for key in reversed(self._longs):
            if key[0] < mark:
                break
            crossed.append(key[1])
        for key in self._shorts:
            if key[0] > mark:
                break
            crossed.append(key[1])
        fund = self._accounts[INSURANCE_FUND]
        if fund.position != 0:
            crossed.append(INSURANCE_FUND)
        for owner in sorted(set(crossed) - queued):
            self._queue.append(_Episode(owner, self._round))
            self._cancel_orders_of(owner)

    def _cancel_orders_of(self, owner: int) -> None:
        """An account entering liquidation loses its resting orders and armed stops (id order)."""
        for order_id in sorted(o.order_id for o in self._book._live.values() if o.owner == owner):
            self._book.cancel(order_id)
            # A cancel can move a MID mark: it counts as progress, so the run goes on to a round
            # that looks at the accounts the new mark crosses.
            self._progress += 1

    def _serve(self, episode: _Episode, cap_left: int | None) -> int | None:
        """Serve one queue entry; return the notional used, or None to end the round's service."""
        a = self._accounts[episode.owner]
        is_fund = a.owner == INSURANCE_FUND
        mark = self.mark_price()
        if a.position == 0 or (not is_fund and not self._liquidatable_at(a, mark)):
            self._queue.remove(episode)
            return 0
        size = abs(a.position) if is_fund else self._size(a, mark)
        if cap_left is not None and self._value(mark, size) > cap_left:
            size = cap_left // (mark * self.k)
        if size == 0:
            return None
        fund = self._accounts[INSURANCE_FUND]
        fund_before, self._bad_debt_noted = fund.collateral, 0
        limit_rule = self.limit_rule
        if is_fund and limit_rule == LimitRule.BANKRUPTCY:
            limit_rule = LimitRule.BAND if self.band_ppm else LimitRule.MARKET
        side = Side.SELL if a.position > 0 else Side.BUY
        bankruptcy = self._bankruptcy_price(a)
        if limit_rule == LimitRule.MARKET:
            limit = None
        elif limit_rule == LimitRule.BAND:
            if side == Side.SELL:
                limit = max(1, ceil_div(mark * (PPM - self.band_ppm), PPM))
            else:
                limit = mark * (PPM + self.band_ppm) // PPM
        else:
            limit = max(1, bankruptcy)
        order_id = self._next_forced_id
        self._next_forced_id -= 1
        if limit is None:
            events = self._book.market(order_id, side, size, a.owner)
        else:
            events = self._book.ioc(order_id, side, limit, size, a.owner)
        self._settle_events(events)
        fills = [(ev.price, ev.qty) for ev in events
                 if ev.kind == EventKind.TRADE and ev.order_id == order_id]
        filled = sum(q for _, q in fills)
        value = sum(self._value(p, q) for p, q in fills)
        fee = 0
        if not is_fund and self.liquidation_fee_ppm and value:
            after = self.mark_price()
            fee = min(ceil_div(value * self.liquidation_fee_ppm, PPM),
                      max(0, self._equity(a, after)))
            if fee:
                self._charge(a, fee, to_fund=True)
        notional_price = Fraction(value, filled * self.k) if filled else None
        self._progress += filled
        if filled:
            self._record(episode, ForcedKind.ORDER, side, size, filled, notional_price, mark,
                         fee=fee)
        remainder = size - filled
        if remainder and limit_rule == LimitRule.BANKRUPTCY:
            self._take_over(episode, a, side, remainder, max(1, bankruptcy))
        if a.position == 0 and a.collateral < 0 and not is_fund:
            self._cover_shortfall(episode, a, side)
        # The fund can also lose by trading the positions it took over; when that takes it
        # (further) below zero, say so in a SHORTFALL record of its own.
        deeper = max(0, -fund.collateral) - max(0, -fund_before) - self._bad_debt_noted
        if deeper > 0:
            self._record(_Episode(INSURANCE_FUND, episode.generation), ForcedKind.SHORTFALL, side,
                         0, 0, None, self.mark_price(), bad_debt=deeper)
        if a.position == 0 or (not is_fund and not self._liquidatable_at(a, self.mark_price())):
            self._queue.remove(episode)
        return self._value(mark, size)

    def _size(self, a: _Account, mark: int) -> int:
        q = abs(a.position)
        if self.sizing == Sizing.FULL:
            return q
        if self.sizing == Sizing.FRACTION:
            return min(q, max(1, ceil_div(q * self.fraction_ppm, PPM)))
        equity = self._equity(a, mark)
        if equity <= 0:
            return q
        lo, hi = 0, q  # MM(V(mark, lo)) <= equity; find the largest such kept size
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.tiers.maintenance(self._value(mark, mid)) <= equity:
                lo = mid
            else:
                hi = mid - 1
        return q - lo

    def _record(self, episode, kind, side, qty, filled, avg_price, mark_before, *, fee=0,
                fund_cover=0, socialized=0, bad_debt=0, counterparty=NO_COUNTERPARTY):
        self._progress += qty + 1
        notional = 0 if avg_price is None else int(avg_price * filled * self.k)
        self._records.append(self._record_row(
            self._round, episode.generation, episode.owner, counterparty, qty, filled, notional,
            mark_before, self.mark_price(), fee, fund_cover, socialized, bad_debt, int(side),
            int(kind)))

    def _record_row(self, round_, generation, owner, counterparty, qty, filled, notional,
                    mark_before, mark_after, fee, fund_cover, socialized, bad_debt, side, kind):
        """A FORCED_DTYPE row: avg_price = notional / (filled k) and the slippage against the
        mark before, each rounded once from its exact value (NaN when nothing filled)."""
        if filled:
            avg_price = Fraction(notional, filled * self.k)
            avg = float(avg_price)
            slippage = float((mark_before - avg_price) if side == Side.SELL
                             else (avg_price - mark_before))
        else:
            avg, slippage = float("nan"), float("nan")
        return (round_, generation, owner, counterparty, qty, filled, notional, avg, mark_before,
                mark_after, slippage, fee, fund_cover, socialized, bad_debt, side, kind)

    def _take_over(self, episode, a: _Account, side: int, remainder: int, price: int) -> None:
        """Rule 2: move an unfilled remainder off the book (backstop, fund, then ADL)."""
        mark = self.mark_price()
        direction = -side  # +1: the taker of the remainder buys (the account was long)
        if self.backstop is not None and self.backstop in self._accounts and remainder:
            backstop = self._accounts[self.backstop]
            room = self.max_position - backstop.position * direction
            qty = min(remainder, max(0, room))
            if qty:
                if direction > 0:
                    bs_price = max(1, price * (PPM - self.backstop_discount_ppm) // PPM)
                else:
                    bs_price = ceil_div(price * (PPM + self.backstop_discount_ppm), PPM)
                self._move(a, backstop, direction, bs_price, qty)
                self._record(episode, ForcedKind.BACKSTOP, side, qty, qty, Fraction(bs_price),
                             mark, counterparty=backstop.owner)
                remainder -= qty
        fund = self._accounts[INSURANCE_FUND]
        if remainder and self._fund_can_take(fund, direction, price, remainder, mark):
            self._move(a, fund, direction, price, remainder)
            self._record(episode, ForcedKind.FUND_TAKEOVER, side, remainder, remainder,
                         Fraction(price), mark, counterparty=INSURANCE_FUND)
            remainder = 0
        if remainder and self.deficit == Deficit.ADL:
            for other in self._adl_ranking(a, mark):
                qty = min(remainder, abs(other.position))
                self._move(a, other, direction, price, qty)
                self._record(episode, ForcedKind.ADL, side, qty, qty, Fraction(price), mark,
                             counterparty=other.owner)
                remainder -= qty
                if remainder == 0:
                    break

    def _move(self, a: _Account, taker: _Account, direction: int, price: int, qty: int) -> None:
        if direction > 0:
            self._transfer(taker, a, price, qty)
        else:
            self._transfer(a, taker, price, qty)

    def _fund_can_take(self, fund, direction, price, qty, mark) -> bool:
        """Whether the fund, after taking ``qty`` lots at ``price``, has equity for their MM."""
        trial = _Account(fund.owner, fund.collateral, True)
        trial.position, trial.cost = fund.position, fund.cost
        self._apply_fill(trial, direction * qty, price)
        notional = self._value(mark, abs(trial.position))
        return self._equity(trial, mark) >= self.tiers.maintenance(notional)

    def _adl_ranking(self, a: _Account, mark: int) -> list[_Account]:
        """Opposing profitable accounts, best ranked first: profit ratio × effective leverage."""
        ranked = []
        for other in self._accounts.values():
            if other is a or other.owner == INSURANCE_FUND or other.position == 0:
                continue
            if (other.position > 0) == (a.position > 0):
                continue
            profit = self._unrealised(other, mark)
            equity = self._equity(other, mark)
            if profit <= 0 or equity <= 0 or other.cost == 0:
                continue
            notional = self._value(mark, abs(other.position))
            ranked.append((-Fraction(profit * notional, other.cost * equity), other.owner, other))
        ranked.sort(key=lambda row: (row[0], row[1]))
        return [row[2] for row in ranked]

    def _cover_shortfall(self, episode, a: _Account, side: int) -> None:
        """A flat account with negative collateral: the fund, then the deficit rule, cover it."""
        fund = self._accounts[INSURANCE_FUND]
        shortfall = -a.collateral
        cover = min(shortfall, max(0, fund.collateral))
        fund.collateral -= cover
        rest = shortfall - cover
        socialized = 0
        if rest and self.deficit == Deficit.SOCIALIZE:
            socialized = self._socialize(a, rest)
            rest -= socialized
        fund.collateral -= rest  # bad debt: the fund goes negative by what nobody covered
        self._bad_debt_noted += rest
        a.collateral = 0
        self._reindex(a)
        self._record(episode, ForcedKind.SHORTFALL, side, 0, 0, None, self.mark_price(),
                     fund_cover=cover, socialized=socialized, bad_debt=rest)

    def _socialize(self, bankrupt: _Account, amount: int) -> int:
        """Charge ``amount`` pro rata to unrealised profits (largest remainder); return charged."""
        mark = self.mark_price()
        profits = []
        for other in sorted(self._accounts.values(), key=lambda acc: acc.owner):
            if other is bankrupt or other.owner == INSURANCE_FUND:
                continue
            profit = self._unrealised(other, mark)
            if profit > 0:
                profits.append((other, profit))
        total = sum(p for _, p in profits)
        if total == 0:
            return 0
        if total <= amount:
            charges = [(other, profit) for other, profit in profits]
        else:
            base = [(other, amount * profit // total, amount * profit % total)
                    for other, profit in profits]
            left = amount - sum(b for _, b, _ in base)
            order = sorted(range(len(base)), key=lambda i: (-base[i][2], base[i][0].owner))
            bonus = set(order[:left])
            charges = [(other, b + (1 if i in bonus else 0)) for i, (other, b, _) in
                       enumerate(base)]
        charged = 0
        for other, charge in charges:
            other.collateral -= charge
            self._reindex(other)
            charged += charge
        return charged

    # --------------------------------------------------------------------- invariants
    def total_equity(self, mark=None) -> int:
        """Sum of every account's equity and reserve (the fund's included) at ``mark`` (ticks,
        >= 0; default the current mark). O(accounts)."""
        if mark is None:
            mark = self.mark_price()
        else:
            mark = check.as_int64("mark", mark)
            if mark < 0:
                raise ValueError(f"mark must be >= 0 ticks, got {mark}")
        return sum(self._equity(a, mark) + a.reserve for a in self._accounts.values())

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
        records = [tuple(row[i] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 16))
                   for row in self._records]
        return {
            "version": STATE_VERSION, "book": book,
            "accounts": [(a.owner, a.collateral, a.position, a.cost, a.reserve, a.exempt,
                          a.isolated) for a in self._accounts.values()],
            "queue": [(e.owner, e.generation) for e in self._queue],
            "records": records, "trades": events_to_array(self._trades),
            "fund_history": list(self._fund_history), "fees_collected": self.fees_collected,
            "total_deposits": self.total_deposits, "round": self._round,
            "rounds_run": self._rounds_run, "next_forced_id": self._next_forced_id,
            "index_price": self._index_price, "mark": self._mark,
        }

    def __repr__(self) -> str:
        return (f"reference_engine.Engine(accounts={len(self._accounts) - 1}, "
                f"mark={self._mark}, fund={self.insurance_fund}, queue={len(self._queue)})")



def _restore(args, kwargs, state) -> Engine:
    """Rebuild a pickled or copied reference Engine from checked settings and state."""
    engine = Engine(*args, **kwargs)
    state = check_state(engine, state, OrderBook)
    engine._book = state["book"]
    engine.book = BookView(engine._book)
    engine._accounts = {}
    for owner, collateral, position, cost, reserve, exempt, isolated in state["accounts"]:
        account = _Account(owner, collateral, exempt, isolated, reserve)
        account.position, account.cost = position, cost
        engine._accounts[owner] = account
    for account in engine._accounts.values():
        engine._reindex(account)
    engine._queue = [_Episode(owner, generation) for owner, generation in state["queue"]]
    engine._records = [engine._record_row(*row) for row in state["records"]]
    engine._trades = array_to_events(state["trades"])
    engine._fund_history = list(state["fund_history"])
    engine.fees_collected, engine.total_deposits = state["fees_collected"], state["total_deposits"]
    engine._round, engine._rounds_run = state["round"], state["rounds_run"]
    engine._next_forced_id = state["next_forced_id"]
    engine._index_price, engine._mark = state["index_price"], state["mark"]
    return engine


def _record_array(rows: list) -> np.ndarray:
    """FORCED_DTYPE rows, padding bytes zeroed (field by field into zeros: np.array would copy
    whatever its temporary buffer held into the padding)."""
    out = np.zeros(len(rows), dtype=FORCED_DTYPE)
    for i, row in enumerate(rows):
        out[i] = row
    return out
