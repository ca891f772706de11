"""The compiled margin engine and liquidator (docs/liquidation.md).

Same semantics as ``orderbook.reference_engine.Engine``, record for record. The engine owns an
``OrderBook``; forced orders go through the book's ``cdef`` core like any other message, and every
trade settles to the ``Ledger`` (accounts.pyx). Finding the accounts a mark move crosses walks the
two ordered liquidation-price indexes: O(log n + k).

Bounds on user-supplied numbers are checked in Python integers (``_engine_state.settings``,
``_check_exposure``) before anything is stored in int64; what is stored then keeps every product
the engine forms inside int128 (see ``adl_before`` for the one comparison that needs 256 bits).
"""

from fractions import Fraction

cimport cython
from cython.operator cimport dereference as deref, preincrement as inc, predecrement as dec
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libc.string cimport memcpy
from libcpp.algorithm cimport make_heap, pop_heap, sort
from libcpp.set cimport set as cset
from libcpp.vector cimport vector

import numpy as np

from orderbook cimport _types as t
from orderbook._types cimport (
    BUY, NO_SLOT, SELL, EventRec, Message, oid_t, owner_t, price_t, qty_t, slot_t,
)
from orderbook.accounts cimport (
    Account, IndexKey, Ledger, ceil_div, floor_div, int128, money_t, to_python,
)
from orderbook.book cimport OrderBook

from . import _validation as check
from ._bookview import BookView
from ._engine_state import STATE_VERSION, book_rules, check_state, constructor_args, settings
from .events import (
    EVENT_DTYPE, FORCED_DTYPE, FUND_HISTORY_DTYPE, AccountInfo, AmendRule, Deficit, Kind, LimitRule, MarkRule,
    SelfTradePrevention, Sizing,
)
from .margin import DEFAULT_TIERS, DEPOSIT_BOUND, MarginTiers

cdef extern from *:
    ctypedef unsigned long long uint128 "unsigned __int128"

cdef enum:
    SERVED_QUEUED = 0
    SERVED_DONE = 1
    SERVE_STOP = 2

ctypedef cset[IndexKey].iterator cset_iter


cdef inline money_t negative_part(money_t value) noexcept nogil:
    return -value if value < 0 else 0


cdef struct Episode:
    owner_t owner
    int64_t generation


cdef struct AdlCand:
    # An ADL candidate's ranking key profit x notional / (cost x equity) as its numerator and
    # denominator, both positive (see adl_before for their bounds).
    uint128 num
    uint128 den
    owner_t owner


cdef inline void mul_wide(uint128 a, uint128 b, uint128* hi, uint128* lo) noexcept nogil:
    # The full 256-bit product of two 128-bit numbers, in 64-bit limbs.
    cdef uint128 mask = <uint128>0xFFFFFFFFFFFFFFFF
    cdef uint128 a0 = a & mask, a1 = a >> 64, b0 = b & mask, b1 = b >> 64
    cdef uint128 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1
    cdef uint128 mid = (p00 >> 64) + (p01 & mask) + (p10 & mask)
    lo[0] = (p00 & mask) | (mid << 64)
    hi[0] = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64)


cdef bint adl_before(const AdlCand& x, const AdlCand& y) noexcept nogil:
    # Whether x ranks before y: the larger profit x notional / (cost x equity) first, ties by the
    # smaller owner id (the reference's Fraction sort). Cross-multiplied, exactly: the mark is
    # <= max_price and every position's value there fits int64 (a live engine's non-fund
    # positions stay within 3 max_position, 3 * 2**61 < 2**63; check_state bounds a loaded
    # one), so notional < 2**63; profit <= max(notional, cost) < 2**63 with cost < 2**63
    # (int64), and equity = collateral + profit < 2**64. So num < 2**126 and den < 2**127 fit
    # 128 bits, and their cross products (< 2**253) fit the 256 of mul_wide.
    cdef uint128 lhi, llo, rhi, rlo
    mul_wide(x.num, y.den, &lhi, &llo)
    mul_wide(y.num, x.den, &rhi, &rlo)
    if lhi != rhi:
        return lhi > rhi
    if llo != rlo:
        return llo > rlo
    return x.owner < y.owner


cdef bint adl_after(const AdlCand& x, const AdlCand& y) noexcept nogil:
    # The heap's "less than": the best-ranked candidate sits at the top.
    return adl_before(y, x)


cdef struct ForcedRec:
    int64_t round
    int64_t generation
    owner_t owner
    owner_t counterparty
    qty_t qty
    qty_t filled
    money_t fill_value    # quote units; avg price = fill_value / (filled * k)
    price_t mark_before
    price_t mark_after
    money_t fee
    money_t fund_cover
    money_t socialized
    money_t bad_debt
    int8_t side
    uint8_t kind


@cython.final
cdef class Engine:
    """Margin accounts, mark price and liquidator around an order book (compiled).

    Parameters are those of ``orderbook.reference_engine.Engine``; see docs/liquidation.md.

    Copies and pickles: ``copy()``, ``copy.copy``, ``copy.deepcopy`` and ``pickle`` all give an
    independent engine with the same state and the same future behaviour, record for record. A
    pickle holds the constructor's settings and the primary state (book, accounts, queue,
    records, trades, fund history, counters); loading checks every field and rebuilds what is
    derived (liquidation indexes, open quantities), raising ValueError on a damaged pickle.

    Threads: an Engine is not for concurrent use. A call that touches its accounts or book while
    another thread is inside such a call raises ``RuntimeError("this Engine is busy in another
    thread")`` instead of racing with it; calls from one thread at a time are always safe.
    """

    cdef OrderBook _book
    cdef Ledger ledger
    cdef readonly object book
    cdef readonly object quote_unit
    cdef readonly object tiers
    cdef readonly int64_t k
    cdef readonly int64_t taker_fee_ppm, maker_fee_ppm, liquidation_fee_ppm, fraction_ppm
    cdef readonly int64_t band_ppm, backstop_discount_ppm
    cdef readonly price_t max_price
    cdef readonly qty_t max_position
    cdef readonly money_t fees_collected, total_deposits
    cdef int _mark_rule, _sizing, _limit_rule, _deficit
    cdef bint has_round_cap, has_backstop, has_index, has_mark
    cdef int64_t _round_cap
    cdef owner_t _backstop
    cdef price_t index_price, mark_value
    cdef vector[Episode] queue_
    cdef int64_t round_, rounds_run, next_forced_id, progress
    cdef money_t bad_debt_noted   # bad debt recorded by the entry being served
    cdef vector[ForcedRec] records
    cdef vector[EventRec] trade_log
    cdef vector[int64_t] fund_rounds
    cdef vector[money_t] fund_balances
    cdef bint _busy               # a public call is running (see _enter)

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
        # Checked (in Python integers) before anything lands in an int64 attribute.
        given = settings(book.tick_size, book.lot_size, quote_unit, tiers=tiers,
                         insurance_fund=insurance_fund, backstop=backstop, round_cap=round_cap,
                         max_price=max_price, max_position=max_position,
                         taker_fee_ppm=taker_fee_ppm, maker_fee_ppm=maker_fee_ppm,
                         liquidation_fee_ppm=liquidation_fee_ppm, fraction_ppm=fraction_ppm,
                         band_ppm=band_ppm, backstop_discount_ppm=backstop_discount_ppm,
                         mark_rule=mark_rule, sizing=sizing, limit=limit, deficit=deficit)
        self.quote_unit, self.k, self.tiers = given["quote_unit"], given["k"], given["tiers"]
        self.taker_fee_ppm = given["taker_fee_ppm"]
        self.maker_fee_ppm = given["maker_fee_ppm"]
        self.liquidation_fee_ppm = given["liquidation_fee_ppm"]
        self.fraction_ppm = given["fraction_ppm"]
        self.band_ppm = given["band_ppm"]
        self.backstop_discount_ppm = given["backstop_discount_ppm"]
        self._mark_rule = given["mark_rule"]
        self._sizing = given["sizing"]
        self._limit_rule = given["limit"]
        self._deficit = given["deficit"]
        self.has_round_cap = given["round_cap"] is not None
        self._round_cap = given["round_cap"] if self.has_round_cap else 0
        self.max_price, self.max_position = given["max_price"], given["max_position"]
        fund = given["insurance_fund"]
        self.has_backstop = given["backstop"] is not None
        self._backstop = given["backstop"] if self.has_backstop else 0
        self._book = book
        self.book = BookView(book)
        self.ledger = Ledger(self.k, self.max_price, self.max_position, self.tiers)
        self._open(t.INSURANCE_FUND, fund, True)
        self.total_deposits = fund
        self.fees_collected = 0
        self.next_forced_id = -1

    # ------------------------------------------------------------------ settings
    @property
    def mark_rule(self):
        """Mark price rule (MarkRule)."""
        return MarkRule(self._mark_rule)

    @property
    def sizing(self):
        """Forced order sizing rule (Sizing)."""
        return Sizing(self._sizing)

    @property
    def limit_rule(self):
        """Forced order price limit rule (LimitRule)."""
        return LimitRule(self._limit_rule)

    @property
    def deficit(self):
        """What covers a loss the insurance fund cannot (Deficit)."""
        return Deficit(self._deficit)

    @property
    def round_cap(self):
        """Notional (quote units at the mark) liquidated per round at most, or None."""
        return self._round_cap if self.has_round_cap else None

    @property
    def backstop(self):
        """Owner id of the backstop account, or None."""
        return self._backstop if self.has_backstop else None

    # ------------------------------------------------------------------ the busy guard
    cdef int _enter(self) except -1:
        # Check and set with no Python call in between, so the pair is atomic under the GIL.
        # Every public method that touches the C containers takes the flag and drops it in a
        # finally: another thread's call (say one growing ``ledger.accounts`` while this one
        # holds an Account*) raises instead of corrupting state or using freed memory.
        # The engine drives its book through the book's cdef core, so it holds the book's flag
        # as well: a query through ``engine.book`` from another thread is refused meanwhile
        # instead of walking containers this call is changing (and vice versa).
        if self._busy or self._book.busy:
            raise RuntimeError("this Engine is busy in another thread")
        self._busy = True
        self._book.busy = True
        return 0

    cdef inline void _leave(self) noexcept:
        self._busy = False
        self._book.busy = False

    @property
    def busy(self):
        """True while a call is running (a call from another thread then raises RuntimeError)."""
        return self._busy

    # ------------------------------------------------------------------ accounts
    cdef int32_t _open(self, owner_t owner, money_t collateral, bint exempt, bint isolated=False,
                       money_t reserve=0):
        cdef Account a
        a.owner = owner
        a.collateral = collateral
        a.reserve = reserve
        a.isolated = isolated
        a.queued = False
        a.position = 0
        a.cost = 0
        a.open_buy = 0
        a.open_sell = 0
        a.liq_price = 0
        a.indexed = 0
        a.exempt = exempt
        self.ledger.slot_of[owner] = <int32_t>self.ledger.accounts.size()
        self.ledger.accounts.push_back(a)
        return <int32_t>self.ledger.accounts.size() - 1

    cdef int32_t _slot(self, owner, str name="owner") except -1:
        cdef owner_t oid = check.as_int64(name, owner)
        cdef int32_t slot = self.ledger.slot(oid)
        if slot < 0:
            raise KeyError(f"{name} {oid} has no account")
        return slot

    def add_account(self, owner, collateral, *, exempt=False, isolated_margin=None):
        """Open an account with ``collateral`` quote units; exempt ones are never liquidated.

        With ``isolated_margin`` the account is isolated: only that much of its collateral backs
        the position (and can be lost); the rest is its reserve.
        """
        self._enter()
        try:
            oid = check.as_int64("owner", owner)
            if oid < 0:
                raise ValueError(f"owner must be >= 0 (negative ids are the engine's), got {oid}")
            if self.ledger.slot(oid) >= 0:
                raise ValueError(f"owner {oid} already has an account")
            amount = check.as_int64("collateral", collateral)
            if amount < 0:
                raise ValueError(f"collateral must be >= 0 quote units, got {amount}")
            margin = amount
            if isolated_margin is not None:
                margin = check.as_int64("isolated_margin", isolated_margin)
                if not 0 <= margin <= amount:
                    raise ValueError(f"isolated_margin must be in [0, collateral={amount}], "
                                     f"got {margin}")
            self._check_deposit(amount)
            self._open(oid, margin, bool(exempt), isolated_margin is not None, amount - margin)
            self.total_deposits += <money_t>amount
        finally:
            self._leave()

    def deposit(self, owner, amount):
        """Add ``amount`` quote units (>= 1) to the collateral (an isolated account's: reserve)."""
        self._enter()
        try:
            slot = self._slot(owner)
            value = check.as_positive("amount", amount)
            self._check_deposit(value)
            if self.acct(slot).isolated:
                self.acct(slot).reserve += <money_t>value
            else:
                self.acct(slot).collateral += <money_t>value
            self.total_deposits += <money_t>value
            self.ledger.reindex(slot)
        finally:
            self._leave()

    def add_margin(self, owner, amount):
        """Move ``amount`` quote units of an isolated account's reserve into its margin."""
        self._enter()
        try:
            slot = self._slot(owner)
            value = check.as_positive("amount", amount)
            # The Account* is taken after the last Python call that could run other code.
            a = self.acct(slot)
            if not a.isolated:
                raise ValueError(f"owner {a.owner} is a cross-margin account; add_margin is "
                                 f"for isolated accounts")
            if value > a.reserve:
                raise ValueError(f"amount {value} exceeds owner {a.owner}'s reserve {a.reserve}")
            a.reserve -= <money_t>value
            a.collateral += <money_t>value
            self.ledger.reindex(slot)
        finally:
            self._leave()

    cdef int _check_deposit(self, amount) except -1:
        if self.total_deposits + amount > DEPOSIT_BOUND:
            raise ValueError(f"total deposits would reach {self.total_deposits + amount}, "
                             f"past 2**62 quote units")
        return 0

    def seed_position(self, long_owner, short_owner, price, qty):
        """Give two accounts opposite positions of ``qty`` lots at ``price`` ticks, off the book."""
        self._enter()
        try:
            buyer = self._slot(long_owner, "long_owner")
            seller = self._slot(short_owner, "short_owner")
            if buyer == seller:
                raise ValueError("seed_position needs two different accounts")
            if self.acct(buyer).owner == t.INSURANCE_FUND or self.acct(seller).owner == t.INSURANCE_FUND:
                raise ValueError("the insurance fund cannot be seeded with a position")
            p = self._price("price", price)
            q = check.as_positive("qty", qty)
            for slot, sign in ((buyer, 1), (seller, -1)):
                # Python integers: position + qty can pass int64 before the bound refuses it.
                position = <object>self.acct(slot).position
                if abs(position + sign * q) > self.max_position:
                    raise ValueError(f"qty {q} would take owner {self.acct(slot).owner}'s "
                                     f"position past max_position {self.max_position}")
            self.ledger.settle(buyer, q, p)
            self.ledger.settle(seller, -q, p)
        finally:
            self._leave()

    def account(self, owner):
        """An account's state evaluated at the current mark (AccountInfo)."""
        self._enter()
        try:
            return self._account_info(self._slot(owner))
        finally:
            self._leave()

    cdef object _account_info(self, int32_t slot):
        self.mark()
        cdef const Account* a = &self.ledger.accounts[slot]
        cdef qty_t size = a.position if a.position > 0 else -a.position
        cdef int128 notional = self.ledger.value(self.mark_value if self.has_mark else 0, size)
        cdef price_t liq = 0, bankrupt = 0
        cdef bint has_liq = self.ledger.liquidation_price(a, &liq)
        cdef bint has_bankrupt = self.ledger.bankruptcy_price(a, &bankrupt)
        cdef int128 equity_c = self.ledger.equity(a, self.mark_value, self.has_mark)
        cdef int128 mm_c = self.ledger.requirement(notional, False)
        cdef int128 im_c = self.ledger.requirement(notional, True)
        fields = (a.owner, a.collateral, a.position, a.cost, bool(a.exempt), bool(a.isolated),
                  a.reserve)
        equity, mm = to_python(equity_c), to_python(mm_c)
        if equity > 0:
            ratio = mm / equity
        else:
            ratio = float("inf") if mm > 0 else 0.0
        return AccountInfo(fields[0], fields[1], fields[2], fields[3], equity, mm,
                           to_python(im_c), ratio, liq if has_liq else None,
                           bankrupt if has_bankrupt else None, fields[4], fields[5], fields[6])

    @property
    def insurance_fund(self):
        """The insurance fund's balance (collateral of its account), quote units."""
        return self.acct(self.ledger.slot(t.INSURANCE_FUND)).collateral

    def trades(self):
        """Every trade the engine has settled, forced ones included (EVENT_DTYPE rows)."""
        self._enter()
        try:
            out = np.empty(self.trade_log.size(), dtype=EVENT_DTYPE)
            if self.trade_log.size():
                self._copy_trades(out)
            return out
        finally:
            self._leave()

    cdef int _copy_trades(self, object out) except -1:
        cdef unsigned char[::1] raw = out.view(np.uint8)
        memcpy(&raw[0], self.trade_log.data(), self.trade_log.size() * sizeof(EventRec))
        return 0

    def open_interest(self):
        """Lots held long across all accounts (equal to the lots held short). O(accounts)."""
        cdef int128 total = 0   # many accounts at max_position can pass int64 together
        cdef size_t i
        for i in range(self.ledger.accounts.size()):
            if self.ledger.accounts[i].position > 0:
                total += self.ledger.accounts[i].position
        return to_python(total)

    def owners(self):
        """Owner ids of every account (the insurance fund's included), ascending."""
        cdef size_t i
        out = []
        self._enter()
        try:
            for i in range(self.ledger.accounts.size()):
                out.append(self.ledger.accounts[i].owner)
        finally:
            self._leave()
        out.sort()
        return out

    def total_equity(self, mark=None):
        """Sum of every account's equity and reserve (the fund's included) at ``mark`` (ticks,
        >= 0; default the current mark). O(accounts)."""
        self._enter()
        try:
            if mark is None:
                self.mark()
                return self._total_equity(self.mark_value if self.has_mark else 0,
                                          self.has_mark)
            value = check.as_int64("mark", mark)
            if value < 0:
                raise ValueError(f"mark must be >= 0 ticks, got {value}")
            return self._total_equity(value, True)
        finally:
            self._leave()

    cdef object _total_equity(self, price_t m, bint has_mark):
        # Sum of collateral + reserve + unrealised, regrouped so nothing can overflow: costs and
        # balances are int64 (their sum over < 2**31 accounts fits int128), and the mark enters
        # once, times the net position, in Python integers.
        cdef int128 balances = 0, net = 0
        cdef size_t i
        cdef const Account* a
        for i in range(self.ledger.accounts.size()):
            a = &self.ledger.accounts[i]
            balances += <int128>a.collateral + a.reserve
            if has_mark and a.position:
                balances += -a.cost if a.position > 0 else a.cost
                net += a.position
        return to_python(balances) + to_python(net) * m * self.k

    # ------------------------------------------------------------------ settlement
    cdef inline Account* acct(self, int32_t slot) noexcept nogil:
        return &self.ledger.accounts[slot]

    cdef void charge(self, int32_t slot, money_t amount, bint to_fund) noexcept nogil:
        self.acct(slot).collateral -= amount
        if to_fund:
            self.acct(self.ledger.slot(t.INSURANCE_FUND)).collateral += amount
        else:
            self.fees_collected += amount
        self.ledger.reindex(slot)

    cdef void settle_events(self, oid_t message_id, bint message_rests) noexcept nogil:
        # Settle the trades the book just reported, and keep each account's open order quantity
        # (what the exposure check adds to the position) in step with the events.
        cdef size_t i
        cdef const EventRec* e
        cdef int32_t taker, maker
        cdef int128 value
        for i in range(self._book.events.size()):
            e = &self._book.events[i]
            if e.kind == t.EV_TRADE:
                self.trade_log.push_back(e[0])
                taker = self.ledger.slot(e.owner)
                maker = self.ledger.slot(e.maker_owner)
                self.ledger.settle(taker, e.side * e.qty, e.price)
                self.ledger.settle(maker, -e.side * e.qty, e.price)
                value = self.ledger.value(e.price, e.qty)
                if e.order_id >= 0:
                    self.charge(taker, <money_t>ceil_div(value * self.taker_fee_ppm, t.PPM), False)
                self.charge(maker, <money_t>ceil_div(value * self.maker_fee_ppm, t.PPM), False)
                self.track_open(maker, -e.side, -e.qty)
                if self.counted(e.order_id, message_id, message_rests):
                    self.track_open(taker, e.side, -e.qty)
            elif e.kind == t.EV_ACCEPTED:
                if e.order_id == message_id and message_rests:
                    self.track_open(self.ledger.slot(e.owner), e.side, e.qty)
            elif e.kind == t.EV_CANCELLED:
                if self.counted(e.order_id, message_id, message_rests):
                    self.track_open(self.ledger.slot(e.owner), e.side, -e.qty)
            elif e.kind == t.EV_AMENDED:
                # The amended order's previous quantity left with it; the new one is counted.
                self.track_open(self.ledger.slot(e.owner), e.side, e.qty)

    cdef inline bint counted(self, oid_t order_id, oid_t message_id,
                             bint message_rests) noexcept nogil:
        # Every live order counts toward open quantity except the message's own market, IOC or
        # FOK order and forced orders, which never rest.
        if order_id < 0:
            return False
        return order_id != message_id or message_rests

    cdef inline void track_open(self, int32_t slot, int side, qty_t qty) noexcept nogil:
        if side == BUY:
            self.acct(slot).open_buy += qty
        else:
            self.acct(slot).open_sell += qty

    # ------------------------------------------------------------------ orders
    cdef price_t _price(self, str name, price) except -1:
        cdef int64_t value = check.as_int64(name, price)
        if not 1 <= value <= self.max_price:
            raise ValueError(f"{name} must be in [1, max_price={self.max_price}] ticks, "
                             f"got {value}")
        return value

    cdef int _check_exposure(self, int32_t slot, int side, qty) except -1:
        # Python integers: position + side * (open + qty) passes int64 for a large qty, and the
        # refusal must show the true number.
        cdef const Account* a = &self.ledger.accounts[slot]
        open_qty = <object>(a.open_buy if side == BUY else a.open_sell)
        worst = abs(<object>a.position + side * (open_qty + qty))
        if worst > self.max_position:
            raise ValueError(f"qty {qty} could take owner {a.owner}'s position to {worst} lots, "
                             f"past max_position {self.max_position}")
        return 0

    def submit(self, kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0):
        """Send one message to the book for an account; settle its trades; return its events."""
        self._enter()
        try:
            return self._submit(kind, order_id, side, price, qty, owner, stop_price)
        finally:
            self._leave()

    cdef list _submit(self, kind, order_id, side, price, qty, owner, stop_price):
        cdef int64_t k = check.as_int64("kind", kind)
        cdef oid_t oid = check.as_int64("order_id", order_id)
        cdef int32_t slot
        cdef int side_value
        if oid < 0:
            raise ValueError(f"order_id must be >= 0 (negative ids are the liquidator's), "
                             f"got {oid}")
        if k == t.K_AMEND:
            info = self._book._order_info(oid)
            self._price("price", price)
            extra = check.as_int64("qty", qty) - info.qty
            if extra > 0:
                self._check_exposure(self.ledger.slot(info.owner), info.side, extra)
            events = self._book._submit_one(k, oid, side, price, qty, owner, stop_price)
            if events and events[0].kind == t.EV_AMENDED:
                # The old quantity leaves the open total; the AMENDED event adds the new one.
                self.track_open(self.ledger.slot(info.owner), info.side, -<qty_t>info.qty)
            self.settle_events(oid, True)
            self.mark()
            return events
        if k != t.K_CANCEL:
            slot = self._slot(owner)
            if self.acct(slot).owner == t.INSURANCE_FUND:
                raise ValueError("orders cannot be sent for the insurance fund")
            side_value = check.as_side(side)
            if t.is_priced(k):
                self._price("price", price)
            if t.is_stop(k):
                self._price("stop_price", stop_price)
            self._check_exposure(slot, side_value, check.as_int64("qty", qty))
        events = self._book._submit_one(k, oid, side, price, qty, owner, stop_price)
        self.settle_events(oid, not t.is_immediate(k))
        self.mark()  # the mark follows every message, whether or not anyone looks at it
        return events

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

    # ------------------------------------------------------------------ the mark
    def set_index(self, price):
        """Set the external index price (ticks) used by the INDEX and INDEX_CLAMPED rules."""
        self._enter()
        try:
            self.index_price = self._price("price", price)
            self.has_index = True
            self.mark()
        finally:
            self._leave()

    def mark_price(self):
        """The mark price in ticks under ``mark_rule``; the previous mark when the rule has none."""
        self._enter()
        self.mark()
        self._leave()
        return self.mark_value if self.has_mark else None

    cdef void mark(self) noexcept nogil:
        cdef bint has_bid = not self._book.bids.empty(), has_ask = not self._book.asks.empty()
        cdef price_t bid = -deref(self._book.bids.begin()).first if has_bid else 0
        cdef price_t ask = deref(self._book.asks.begin()).first if has_ask else 0
        cdef price_t lo, hi
        if self._mark_rule == t.MARK_LAST:
            if self._book.has_last:
                self.mark_value, self.has_mark = self._book.last, True
        elif self._mark_rule == t.MARK_MID:
            if has_bid and has_ask:
                self.mark_value, self.has_mark = (bid + ask) // 2, True
        elif self._mark_rule == t.MARK_INDEX:
            if self.has_index:
                self.mark_value, self.has_mark = self.index_price, True
        elif self.has_index:
            if has_bid and has_ask:
                lo, hi = (bid, ask) if bid <= ask else (ask, bid)
                self.mark_value = lo if self.index_price < lo else (
                    hi if self.index_price > hi else self.index_price)
            else:
                self.mark_value = self.index_price
            self.has_mark = True

    # ------------------------------------------------------------------ liquidator
    def queue(self):
        """Owners waiting in the liquidation queue, front first."""
        cdef size_t i
        out = []
        self._enter()
        try:
            for i in range(self.queue_.size()):
                out.append(self.queue_[i].owner)
        finally:
            self._leave()
        return out

    def liquidate(self, max_rounds=10_000):
        """Run rounds until one makes no progress (or ``max_rounds``); return their records."""
        cdef int64_t limit = check.as_count("max_rounds", max_rounds), _
        self._enter()
        try:
            first = self.records.size()
            for _ in range(limit):
                if not self._round():
                    break
            return self._records_array(first)
        finally:
            self._leave()

    def liquidation_round(self):
        """Run one round (docs/liquidation.md); return whether it made progress."""
        self._enter()
        try:
            return self._round()
        finally:
            self._leave()

    def forced_orders(self):
        """Every liquidation record so far (FORCED_DTYPE)."""
        self._enter()
        try:
            return self._records_array(0)
        finally:
            self._leave()

    def fund_history(self):
        """The insurance fund's balance after every round that made progress: (round, balance)."""
        cdef size_t i
        self._enter()
        try:
            out = np.empty(self.fund_rounds.size(), dtype=FUND_HISTORY_DTYPE)
            for i in range(self.fund_rounds.size()):
                out[i] = (self.fund_rounds[i], self.fund_balances[i])
            return out
        finally:
            self._leave()

    cdef object _records_array(self, size_t first):
        out = np.zeros(self.records.size() - first, dtype=FORCED_DTYPE)  # padding zeroed too
        cdef size_t i
        cdef const ForcedRec* r
        for i in range(first, self.records.size()):
            r = &self.records[i]
            if r.filled:
                avg = Fraction(r.fill_value, <object>r.filled * self.k)
                slip = (r.mark_before - avg) if r.side == SELL else (avg - r.mark_before)
                avg_f, slip_f = float(avg), float(slip)
            else:
                avg_f = slip_f = float("nan")
            out[i - first] = (r.round, r.generation, r.owner, r.counterparty, r.qty, r.filled,
                              r.fill_value, avg_f, r.mark_before, r.mark_after, slip_f, r.fee,
                              r.fund_cover, r.socialized, r.bad_debt, r.side, r.kind)
        return out

    cdef bint _round(self) except -1:
        cdef vector[Episode] snapshot
        cdef vector[Episode] kept
        cdef size_t i
        cdef int64_t cap_left = self._round_cap
        cdef int64_t used = 0
        cdef int status
        cdef bint stopped = False
        cdef size_t queued_before = self.queue_.size()
        self.progress = 0
        self.mark()
        if self.has_mark:
            self.enqueue_crossed(self.mark_value)
        for i in range(queued_before, self.queue_.size()):
            self._cancel_orders_of(self.queue_[i].owner)
        if self.queue_.empty():
            self.round_ = 0
            return False
        snapshot = self.queue_
        for i in range(snapshot.size()):
            if stopped:
                kept.push_back(snapshot[i])
                continue
            status = self._serve(&snapshot[i], cap_left, &used)
            if status != SERVED_DONE:
                kept.push_back(snapshot[i])
            else:
                self.acct(self.ledger.slot(snapshot[i].owner)).queued = False
            if status == SERVE_STOP:
                stopped = True
            elif self.has_round_cap:
                cap_left -= used
        self.queue_ = kept
        if not self.progress:
            return False
        self.fund_rounds.push_back(self.rounds_run)
        self.fund_balances.push_back(self.acct(self.ledger.slot(t.INSURANCE_FUND)).collateral)
        self.rounds_run += 1
        self.round_ += 1
        return True

    cdef void enqueue_crossed(self, price_t mark) noexcept nogil:
        cdef vector[owner_t] crossed
        cdef cset_iter it
        cdef size_t i
        cdef Account* a
        it = self.ledger.longs.end()
        while it != self.ledger.longs.begin():
            dec(it)
            if deref(it).first < mark:
                break
            crossed.push_back(deref(it).second)
        it = self.ledger.shorts.begin()
        while it != self.ledger.shorts.end():
            if deref(it).first > mark:
                break
            crossed.push_back(deref(it).second)
            inc(it)
        if self.acct(self.ledger.slot(t.INSURANCE_FUND)).position != 0:
            crossed.push_back(t.INSURANCE_FUND)
        sort(crossed.begin(), crossed.end())
        for i in range(crossed.size()):
            a = self.acct(self.ledger.slot(crossed[i]))
            if not a.queued:
                a.queued = True
                self.queue_.push_back(Episode(crossed[i], self.round_))

    cdef int _serve(self, Episode* episode, int64_t cap_left, int64_t* used) except -1:
        # Serve one queue entry: SERVED_QUEUED (it stays), SERVED_DONE (it leaves the queue) or
        # SERVE_STOP (the round's cap is spent: it and everything behind it wait). ``used`` gets
        # the notional at the mark this entry took from the cap.
        cdef int32_t slot = self.ledger.slot(episode.owner)
        cdef Account* a = &self.ledger.accounts[slot]
        cdef bint is_fund = a.owner == t.INSURANCE_FUND
        cdef price_t mark, limit = 0, bankruptcy = 0
        cdef qty_t size, filled = 0, remainder
        cdef int side, limit_rule = self._limit_rule
        cdef int128 value = 0, equity_after
        cdef money_t fee = 0
        cdef Message m
        cdef size_t i
        cdef const EventRec* e
        cdef Episode fund_episode
        cdef int32_t fund
        cdef money_t fund_before, deeper
        self.mark()
        mark = self.mark_value
        used[0] = 0
        if a.position == 0 or (not is_fund and not self.ledger.liquidatable_at(a, mark)):
            return SERVED_DONE
        size = (a.position if a.position > 0 else -a.position) if is_fund else self._size(a, mark)
        if self.has_round_cap and self.ledger.value(mark, size) > cap_left:
            size = cap_left // (mark * self.k)
        if size == 0:
            return SERVE_STOP
        fund = self.ledger.slot(t.INSURANCE_FUND)
        fund_before = self.acct(fund).collateral
        self.bad_debt_noted = 0
        if is_fund and limit_rule == t.LIMIT_BANKRUPTCY:
            limit_rule = 1 if self.band_ppm else 0
        side = SELL if a.position > 0 else BUY
        self.ledger.bankruptcy_price(a, &bankruptcy)
        if limit_rule == t.LIMIT_BAND:
            if side == SELL:
                limit = <price_t>ceil_div(<int128>mark * (t.PPM - self.band_ppm), t.PPM)
                limit = limit if limit > 1 else 1
            else:
                limit = <price_t>floor_div(<int128>mark * (t.PPM + self.band_ppm), t.PPM)
        elif limit_rule == t.LIMIT_BANKRUPTCY:
            limit = bankruptcy if bankruptcy > 1 else 1
        m.order_id = self.next_forced_id
        self.next_forced_id -= 1
        m.owner = a.owner
        m.side = side
        m.kind = t.K_MARKET if limit_rule == t.LIMIT_MARKET else t.K_IOC
        m.price = limit
        m.stop_price = 0
        m.qty = size
        self._book.events.clear()
        self._book.run(&m)
        self.settle_events(m.order_id, False)
        for i in range(self._book.events.size()):
            e = &self._book.events[i]
            if e.kind == t.EV_TRADE and e.order_id == m.order_id:
                filled += e.qty
                value += self.ledger.value(e.price, e.qty)
        a = &self.ledger.accounts[slot]
        if not is_fund and self.liquidation_fee_ppm and value:
            self.mark()
            fee = <money_t>ceil_div(value * self.liquidation_fee_ppm, t.PPM)
            equity_after = self.ledger.equity(a, self.mark_value, True)
            if equity_after < fee:
                fee = <money_t>(equity_after if equity_after > 0 else 0)
            if fee:
                self.charge(slot, fee, True)
        self.progress += filled
        if filled:
            self.record(episode, t.FK_ORDER, side, size, filled, <money_t>value, mark, fee, 0, 0,
                        0, t.NO_COUNTERPARTY)
        remainder = size - filled
        if remainder and limit_rule == t.LIMIT_BANKRUPTCY:
            self._take_over(episode, slot, side, remainder, bankruptcy if bankruptcy > 1 else 1)
        a = &self.ledger.accounts[slot]
        if a.position == 0 and a.collateral < 0 and not is_fund:
            self._cover_shortfall(episode, slot, side)
        # The fund can also lose by trading the positions it took over; when that takes it
        # (further) below zero, say so in a SHORTFALL record of its own.
        deeper = (negative_part(self.acct(fund).collateral) - negative_part(fund_before)
                  - self.bad_debt_noted)
        if deeper > 0:
            fund_episode.owner = t.INSURANCE_FUND
            fund_episode.generation = episode.generation
            self.mark()
            self.record(&fund_episode, t.FK_SHORTFALL, side, 0, 0, 0, self.mark_value, 0, 0, 0,
                        deeper, t.NO_COUNTERPARTY)
        a = &self.ledger.accounts[slot]
        used[0] = <int64_t>self.ledger.value(mark, size)
        self.mark()
        if a.position == 0 or (not is_fund and not self.ledger.liquidatable_at(a, self.mark_value)):
            return SERVED_DONE
        return SERVED_QUEUED

    cdef int _cancel_orders_of(self, owner_t owner) except -1:
        # An account entering liquidation loses its resting orders and armed stops (id order).
        cdef Account* a = self.acct(self.ledger.slot(owner))
        cdef Message m
        if a.open_buy == 0 and a.open_sell == 0:
            return 0
        cdef slot_t slot
        ids = []
        for slot in self._book.id_buckets:
            if slot != NO_SLOT and self._book.pool[slot].owner == owner:
                ids.append(self._book.pool[slot].order_id)
        for order_id in sorted(ids):
            m.kind = t.K_CANCEL
            m.order_id = order_id
            m.owner = owner
            m.side = 0
            m.price = m.stop_price = m.qty = 0
            self._book.events.clear()
            self._book.run(&m)
            self.settle_events(order_id, True)
            # A cancel can move a MID mark: it counts as progress, so the run goes on to a round
            # that looks at the accounts the new mark crosses.
            self.progress += 1
        return 0

    cdef qty_t _size(self, const Account* a, price_t mark) noexcept nogil:
        cdef qty_t q = a.position if a.position > 0 else -a.position
        cdef qty_t lo, hi, mid, fraction
        cdef int128 equity
        if self._sizing == t.SIZING_FULL:
            return q
        if self._sizing == t.SIZING_FRACTION:
            fraction = <qty_t>ceil_div(<int128>q * self.fraction_ppm, t.PPM)
            fraction = fraction if fraction > 1 else 1
            return fraction if fraction < q else q
        equity = self.ledger.equity(a, mark, True)
        if equity <= 0:
            return q
        lo, hi = 0, q
        while lo < hi:
            mid = lo + (hi - lo + 1) // 2
            if self.ledger.requirement(self.ledger.value(mark, mid), False) <= equity:
                lo = mid
            else:
                hi = mid - 1
        return q - lo

    cdef void record(self, const Episode* episode, int kind, int side, qty_t qty, qty_t filled,
                     money_t fill_value, price_t mark_before, money_t fee, money_t fund_cover,
                     money_t socialized, money_t bad_debt, owner_t counterparty) noexcept nogil:
        cdef ForcedRec r
        self.progress += qty + 1
        self.mark()
        r.round = self.round_
        r.generation = episode.generation
        r.owner = episode.owner
        r.counterparty = counterparty
        r.qty = qty
        r.filled = filled
        r.fill_value = fill_value
        r.mark_before = mark_before
        r.mark_after = self.mark_value
        r.fee = fee
        r.fund_cover = fund_cover
        r.socialized = socialized
        r.bad_debt = bad_debt
        r.side = side
        r.kind = kind
        self.records.push_back(r)

    cdef void move(self, int32_t slot, int32_t taker, int direction, price_t price,
                   qty_t qty) noexcept nogil:
        if direction > 0:
            self.ledger.settle(taker, qty, price)
            self.ledger.settle(slot, -qty, price)
        else:
            self.ledger.settle(slot, qty, price)
            self.ledger.settle(taker, -qty, price)

    cdef int _take_over(self, const Episode* episode, int32_t slot, int side, qty_t remainder,
                        price_t price) except -1:
        cdef int direction = -side
        cdef int32_t backstop, fund
        cdef qty_t room, qty
        cdef price_t bs_price
        self.mark()
        cdef price_t mark = self.mark_value
        if self.has_backstop and remainder:
            backstop = self.ledger.slot(self._backstop)
            if backstop >= 0:
                room = self.max_position - self.acct(backstop).position * direction
                qty = remainder if remainder < room else (room if room > 0 else 0)
                if qty:
                    if direction > 0:
                        bs_price = <price_t>floor_div(
                            <int128>price * (t.PPM - self.backstop_discount_ppm), t.PPM)
                        bs_price = bs_price if bs_price > 1 else 1
                    else:
                        bs_price = <price_t>ceil_div(
                            <int128>price * (t.PPM + self.backstop_discount_ppm), t.PPM)
                    self.move(slot, backstop, direction, bs_price, qty)
                    self.record(episode, t.FK_BACKSTOP, side, qty, qty,
                                <money_t>self.ledger.value(bs_price, qty), mark, 0, 0, 0, 0,
                                self._backstop)
                    remainder -= qty
        fund = self.ledger.slot(t.INSURANCE_FUND)
        if remainder and self.fund_can_take(fund, direction, price, remainder, mark):
            self.move(slot, fund, direction, price, remainder)
            self.record(episode, t.FK_FUND_TAKEOVER, side, remainder, remainder,
                        <money_t>self.ledger.value(price, remainder), mark, 0, 0, 0, 0, t.INSURANCE_FUND)
            remainder = 0
        if remainder and self._deficit == t.DEFICIT_ADL:
            self._deleverage(episode, slot, side, remainder, price, mark)
        return 0

    cdef void _deleverage(self, const Episode* episode, int32_t slot, int side, qty_t remainder,
                          price_t price, price_t mark) noexcept nogil:
        # ADL: the remainder goes to the best-ranked opposing accounts. The keys are built in one
        # O(n) pass, then a heap yields them best first until the remainder is covered, so only
        # the d accounts deleveraged are ordered: O(n + d log n). Moving lots to one candidate
        # changes no other candidate's key (nor the mark), so this is the full sort's order.
        cdef vector[AdlCand] cands
        cdef AdlCand* first
        cdef size_t n
        cdef int32_t other
        cdef qty_t held, qty
        self._adl_candidates(slot, mark, &cands)
        n = cands.size()
        if n == 0:
            return
        first = cands.data()
        make_heap(first, first + n, adl_after)
        while remainder and n:
            pop_heap(first, first + n, adl_after)
            n -= 1
            other = self.ledger.slot(cands[n].owner)
            held = self.acct(other).position
            held = held if held > 0 else -held
            qty = remainder if remainder < held else held
            self.move(slot, other, -side, price, qty)
            self.record(episode, t.FK_ADL, side, qty, qty, <money_t>self.ledger.value(price, qty),
                        mark, 0, 0, 0, 0, cands[n].owner)
            remainder -= qty

    cdef void _adl_candidates(self, int32_t slot, price_t mark,
                              vector[AdlCand]* out) noexcept nogil:
        # Opposing, profitable accounts with positive equity and cost (the reference's filter).
        cdef const Account* a = &self.ledger.accounts[slot]
        cdef const Account* other
        cdef int128 profit, equity
        cdef AdlCand cand
        cdef size_t i
        for i in range(self.ledger.accounts.size()):
            other = &self.ledger.accounts[i]
            if <int32_t>i == slot or other.owner == t.INSURANCE_FUND or other.position == 0:
                continue
            if (other.position > 0) == (a.position > 0):
                continue
            profit = self.ledger.unrealised(other, mark, True)
            equity = self.ledger.equity(other, mark, True)
            if profit <= 0 or equity <= 0 or other.cost == 0:
                continue
            cand.num = <uint128>profit * <uint128>self.ledger.value(
                mark, other.position if other.position > 0 else -other.position)
            cand.den = <uint128>other.cost * <uint128>equity
            cand.owner = other.owner
            out.push_back(cand)

    cdef bint fund_can_take(self, int32_t fund, int direction, price_t price, qty_t qty,
                            price_t mark) noexcept nogil:
        # Whether the fund, after taking qty lots at price, has equity for their maintenance.
        cdef Account trial = self.ledger.accounts[fund]
        cdef qty_t held
        self.ledger.apply_fill(&trial, direction * qty, price)
        held = trial.position if trial.position > 0 else -trial.position
        return self.ledger.equity(&trial, mark, True) >= self.ledger.requirement(
            self.ledger.value(mark, held), False)

    cdef int _cover_shortfall(self, const Episode* episode, int32_t slot, int side) except -1:
        cdef int32_t fund = self.ledger.slot(t.INSURANCE_FUND)
        cdef money_t shortfall = -self.acct(slot).collateral
        cdef money_t balance = self.acct(fund).collateral
        cdef money_t cover = shortfall if shortfall < balance else (balance if balance > 0 else 0)
        cdef money_t rest, socialized = 0
        self.acct(fund).collateral -= cover
        rest = shortfall - cover
        if rest and self._deficit == t.DEFICIT_SOCIALIZE:
            socialized = self._socialize(slot, rest)
            rest -= socialized
        self.acct(fund).collateral -= rest
        self.bad_debt_noted += rest
        self.acct(slot).collateral = 0
        self.ledger.reindex(slot)
        self.mark()
        self.record(episode, t.FK_SHORTFALL, side, 0, 0, 0, self.mark_value, 0, cover, socialized,
                    rest, t.NO_COUNTERPARTY)
        return 0

    cdef money_t _socialize(self, int32_t bankrupt, money_t amount) except? -1:
        # Rare path: largest-remainder pro-rata split with Python integers.
        self.mark()
        cdef price_t mark = self.mark_value
        cdef size_t i
        cdef const Account* other
        profits = []
        for i in range(self.ledger.accounts.size()):
            other = &self.ledger.accounts[i]
            if <int32_t>i == bankrupt or other.owner == t.INSURANCE_FUND:
                continue
            profit = to_python(self.ledger.unrealised(other, mark, True))
            if profit > 0:
                profits.append((other.owner, <int32_t>i, profit))
        profits.sort()
        total = sum(p for _, _, p in profits)
        if total == 0:
            return 0
        if total <= amount:
            charges = [(s, p) for _, s, p in profits]
        else:
            base = [(s, amount * p // total, amount * p % total, owner)
                    for owner, s, p in profits]
            left = amount - sum(b for _, b, _, _ in base)
            order = sorted(range(len(base)), key=lambda j: (-base[j][2], base[j][3]))
            bonus = set(order[:left])
            charges = [(s, b + (1 if j in bonus else 0)) for j, (s, b, _, _) in enumerate(base)]
        charged = 0
        for s, charge in charges:
            self.acct(<int32_t>s).collateral -= <money_t>charge
            self.ledger.reindex(<int32_t>s)
            charged += charge
        return charged

    # ------------------------------------------------------------------ copies
    def copy(self):
        """An independent engine with the same state and the same future behaviour. O(state)."""
        self._enter()
        try:
            return self._copy()
        finally:
            self._leave()

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    cdef Engine _copy(self):
        cdef Engine other = Engine.__new__(Engine)
        cdef Ledger ledger = Ledger.__new__(Ledger)
        ledger.accounts = self.ledger.accounts
        ledger.slot_of = self.ledger.slot_of
        ledger.longs = self.ledger.longs
        ledger.shorts = self.ledger.shorts
        ledger.k = self.ledger.k
        ledger.max_price = self.ledger.max_price
        ledger.max_position = self.ledger.max_position
        ledger.caps = self.ledger.caps
        ledger.mm_ppm = self.ledger.mm_ppm
        ledger.im_ppm = self.ledger.im_ppm
        ledger.mm_deduction = self.ledger.mm_deduction
        ledger.im_deduction = self.ledger.im_deduction
        other.ledger = ledger
        other._book = self._book._copy()
        other.book = BookView(other._book)
        other.quote_unit = self.quote_unit
        other.tiers = MarginTiers(self.tiers.rows())
        other.k = self.k
        other.taker_fee_ppm = self.taker_fee_ppm
        other.maker_fee_ppm = self.maker_fee_ppm
        other.liquidation_fee_ppm = self.liquidation_fee_ppm
        other.fraction_ppm = self.fraction_ppm
        other.band_ppm = self.band_ppm
        other.backstop_discount_ppm = self.backstop_discount_ppm
        other.max_price = self.max_price
        other.max_position = self.max_position
        other.fees_collected = self.fees_collected
        other.total_deposits = self.total_deposits
        other._mark_rule = self._mark_rule
        other._sizing = self._sizing
        other._limit_rule = self._limit_rule
        other._deficit = self._deficit
        other.has_round_cap = self.has_round_cap
        other.has_backstop = self.has_backstop
        other.has_index = self.has_index
        other.has_mark = self.has_mark
        other._round_cap = self._round_cap
        other._backstop = self._backstop
        other.index_price = self.index_price
        other.mark_value = self.mark_value
        other.queue_ = self.queue_
        other.round_ = self.round_
        other.rounds_run = self.rounds_run
        other.next_forced_id = self.next_forced_id
        other.progress = self.progress
        other.bad_debt_noted = self.bad_debt_noted
        other.records = self.records
        other.trade_log = self.trade_log
        other.fund_rounds = self.fund_rounds
        other.fund_balances = self.fund_balances
        other._busy = False
        return other

    def __reduce__(self):
        # The constructor's settings and the primary state as plain values; _restore checks
        # every field and rebuilds what is derived (indexes, open quantities) instead of
        # trusting raw C structs.
        self._enter()
        try:
            args, kwargs = constructor_args(self)
            return (_restore, (args, kwargs, self._state()))
        finally:
            self._leave()

    cdef dict _state(self):
        cdef size_t i
        cdef const Account* a
        cdef const ForcedRec* r
        accounts, records, history = [], [], []
        for i in range(self.ledger.accounts.size()):
            a = &self.ledger.accounts[i]
            accounts.append((a.owner, a.collateral, a.position, a.cost, a.reserve,
                             bool(a.exempt), bool(a.isolated)))
        for i in range(self.records.size()):
            r = &self.records[i]
            records.append((r.round, r.generation, r.owner, r.counterparty, r.qty, r.filled,
                            r.fill_value, r.mark_before, r.mark_after, r.fee, r.fund_cover,
                            r.socialized, r.bad_debt, r.side, r.kind))
        for i in range(self.fund_rounds.size()):
            history.append((self.fund_rounds[i], self.fund_balances[i]))
        trades = np.empty(self.trade_log.size(), dtype=EVENT_DTYPE)
        if self.trade_log.size():
            self._copy_trades(trades)
        return {
            "version": STATE_VERSION, "book": self._book,
            "accounts": accounts, "queue": [(e.owner, e.generation) for e in self.queue_],
            "records": records, "trades": trades, "fund_history": history,
            "fees_collected": self.fees_collected, "total_deposits": self.total_deposits,
            "round": self.round_, "rounds_run": self.rounds_run,
            "next_forced_id": self.next_forced_id,
            "index_price": self.index_price if self.has_index else None,
            "mark": self.mark_value if self.has_mark else None,
        }

    cdef int _load(self, dict state) except -1:
        # ``state`` has passed check_state; this engine is fresh (built from the same settings).
        cdef int32_t slot
        cdef Account* a
        cdef ForcedRec rec
        cdef Episode episode
        cdef const unsigned char[::1] raw
        open_qty = state["open"]
        self._book = state["book"]
        self.book = BookView(self._book)
        self.ledger = Ledger(self.k, self.max_price, self.max_position, self.tiers)
        for owner, collateral, position, cost, reserve, exempt, isolated in state["accounts"]:
            slot = self._open(owner, collateral, exempt, isolated, reserve)
            a = self.acct(slot)
            a.position = position
            a.cost = cost
            a.open_buy = open_qty.get((owner, BUY), 0)
            a.open_sell = open_qty.get((owner, SELL), 0)
        for slot in range(<int32_t>self.ledger.accounts.size()):
            self.ledger.reindex(slot)
        for owner, generation in state["queue"]:
            episode.owner = owner
            episode.generation = generation
            self.queue_.push_back(episode)
            self.acct(self.ledger.slot(owner)).queued = True
        for row in state["records"]:
            (rec.round, rec.generation, rec.owner, rec.counterparty, rec.qty, rec.filled,
             rec.fill_value, rec.mark_before, rec.mark_after, rec.fee, rec.fund_cover,
             rec.socialized, rec.bad_debt, rec.side, rec.kind) = row
            self.records.push_back(rec)
        trades = np.ascontiguousarray(state["trades"])
        if len(trades):
            self.trade_log.resize(len(trades))
            raw = trades.view(np.uint8)
            memcpy(self.trade_log.data(), &raw[0], self.trade_log.size() * sizeof(EventRec))
        for round_, balance in state["fund_history"]:
            self.fund_rounds.push_back(round_)
            self.fund_balances.push_back(balance)
        self.fees_collected = state["fees_collected"]
        self.total_deposits = state["total_deposits"]
        self.round_ = state["round"]
        self.rounds_run = state["rounds_run"]
        self.next_forced_id = state["next_forced_id"]
        self.has_index = state["index_price"] is not None
        self.index_price = state["index_price"] if self.has_index else 0
        self.has_mark = state["mark"] is not None
        self.mark_value = state["mark"] if self.has_mark else 0
        return 0

    def __repr__(self):
        # Plain C reads, no guard: repr must work while another thread holds the engine.
        cdef int32_t fund = self.ledger.slot(t.INSURANCE_FUND)
        return (f"Engine(accounts={self.ledger.accounts.size() - 1}, "
                f"mark={self.mark_value if self.has_mark else None}, "
                f"fund={self.ledger.accounts[fund].collateral}, queue={self.queue_.size()})")


def _restore(args, kwargs, state):
    """Rebuild a pickled Engine from its settings and a checked state."""
    cdef Engine engine = Engine(*args, **kwargs)
    engine._load(check_state(engine, state, OrderBook))
    return engine
