"""The compiled liquidator (docs/liquidation.md): queue, rounds, forced orders, take-over, ADL.

Mirrors ``orderbook.reference_engine._Liquidator``, record for record. The ``Engine`` owns one:
forced orders and cancels go through the book's ``cdef`` core like any other message, their
trades settle to the ``Ledger`` (accounts.pyx), and the mark is the Engine's (``MarkFn``).
Finding the accounts a mark move crosses walks the ordered liquidation-price indexes of the
one-position accounts (O(log n + k)) and the allowance indexes of the others (Ledger.cross_multi).
"""

cimport cython
from cython.operator cimport dereference as deref, preincrement as inc, predecrement as dec
from libc.math cimport NAN, ldexp
from libc.stdint cimport INT64_MAX, int8_t, int32_t, int64_t, uint8_t
from libcpp.algorithm cimport make_heap, pop_heap, sort
from libcpp.utility cimport pair
from libcpp.vector cimport vector

import numpy as np

from orderbook cimport _types as t
from orderbook._btree cimport KeySet
from orderbook._price_ladder cimport Ladder, ladder_first, ladder_next
from orderbook._types cimport (
    BUY, SELL, EventRec, Level, Message, level_key, oid_t, owner_t, price_t, qty_t,
)
from orderbook.accounts cimport (
    Account, AssetRec, Holding, IndexKey, InstrumentRec, Ledger, Position, ceil_div, floor_div,
    from_python, int128, money_t,
    to_python,
)
from orderbook.book cimport OrderBook
from orderbook.liquidator cimport AdlCand, Episode, ForcedRec, uint128

from .events import FORCED_DTYPE, FUND_HISTORY_DTYPE

__all__ = ["Liquidator"]

cdef enum:
    SERVED_QUEUED = 0
    SERVED_DONE = 1
    SERVE_STOP = 2

ctypedef KeySet[IndexKey].iterator index_iter


cdef inline money_t negative_part(money_t value) noexcept nogil:
    return -value if value < 0 else 0


cdef inline void mul_wide(uint128 a, uint128 b, uint128* hi, uint128* lo) noexcept nogil:
    # The full 256-bit product of two 128-bit numbers, in 64-bit limbs.
    cdef uint128 mask = <uint128>0xFFFFFFFFFFFFFFFF
    cdef uint128 a0 = a & mask, a1 = a >> 64, b0 = b & mask, b1 = b >> 64
    cdef uint128 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1
    cdef uint128 mid = (p00 >> 64) + (p01 & mask) + (p10 & mask)
    lo[0] = (p00 & mask) | (mid << 64)
    hi[0] = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64)


cdef bint adl_before(const AdlCand& x, const AdlCand& y) noexcept nogil:
    # Whether x ranks before y: the larger key first, ties by the smaller owner id (the
    # reference's Fraction sort). Keys of different signs order by sign; keys of one sign by
    # their magnitudes num / den, cross-multiplied, exactly (a negative key ranks higher the
    # smaller its magnitude). The mark is <= max_price and every position's value there fits
    # int64 (a live engine's non-fund positions stay within 3 max_position, 3 * 2**61 < 2**63;
    # check_state bounds a loaded one), so notional and maintenance margin are < 2**63; |profit|
    # <= max(notional, cost) < 2**63 with cost and collateral < 2**63 (int64), and equity =
    # collateral + profit < 2**64. Every factor pair of adl_candidates is then < 2**127 and
    # their cross products (< 2**254) fit the 256 bits of mul_wide.
    cdef uint128 lhi, llo, rhi, rlo
    if x.sign != y.sign:
        return x.sign > y.sign
    if x.sign != 0:
        mul_wide(x.num, y.den, &lhi, &llo)
        mul_wide(y.num, x.den, &rhi, &rlo)
        if lhi != rhi:
            return (lhi > rhi) == (x.sign > 0)
        if llo != rlo:
            return (llo > rlo) == (x.sign > 0)
    return x.owner < y.owner


cdef bint adl_after(const AdlCand& x, const AdlCand& y) noexcept nogil:
    # The heap's "less than": the best-ranked candidate sits at the top.
    return adl_before(y, x)


cdef inline int bit_length(uint128 x) noexcept nogil:
    cdef int n = 0
    while x:
        x >>= 1
        n += 1
    return n


cdef double nearest_quotient(int128 num, int128 den) noexcept nogil:
    # num / den (den > 0) as the nearest double, ties to even: the value float(Fraction(num,
    # den)) gives, without Python objects. Long division yields 55 significant quotient bits and
    # a sticky bit for the rest, then one rounding to 53. The remainder stays below den < 2**127,
    # so doubling it cannot overflow 128 bits.
    cdef bint negative = num < 0
    cdef uint128 a = <uint128>(-num if negative else num)
    cdef uint128 b = <uint128>den
    cdef uint128 q, r, half, rest
    cdef int exponent = 0, extra, bits
    if a == 0:
        return 0.0
    if a < (<uint128>1) << 53 and b < (<uint128>1) << 53:
        # both exact as doubles: IEEE division rounds the quotient correctly
        return <double><int64_t>num / <double><int64_t>den
    q, r = a // b, a % b
    bits = bit_length(q)
    while bits < 55:
        r <<= 1
        q <<= 1
        if r >= b:
            r -= b
            q |= 1
        if bits or (q & 1):
            bits += 1
        exponent -= 1
    extra = bit_length(q) - 53
    half = (<uint128>1) << (extra - 1)
    rest = q & ((half << 1) - 1)
    q >>= extra
    if rest > half or (rest == half and (r != 0 or (q & 1))):
        q += 1
    cdef double value = ldexp(<double>q, exponent + extra)
    return -value if negative else value


cdef void _averages(const ForcedRec* r, int64_t k, bint inverse, double* avg,
                    double* slip) noexcept nogil:
    # A record's average fill price and slippage as the doubles nearest the exact fractions
    # (what float(Fraction) gives). Linear: fill_value / (filled k), where fill_value >= filled k
    # (prices >= 1) and < 2**63; inverse: filled k / fill_value, with fill_value < 2**63. So den
    # < 2**63, mark * den < 2**126, and the gap fits int128.
    cdef int128 num, den, gap
    if inverse:
        num, den = <int128>r.filled * k, <int128>r.fill_value
    else:
        num, den = <int128>r.fill_value, <int128>r.filled * k
    # slippage: mark - num / den for a sell, num / den - mark for a buy
    gap = <int128>r.mark_before * den - num
    if r.side != SELL:
        gap = -gap
    avg[0] = nearest_quotient(num, den)
    slip[0] = nearest_quotient(gap, den)


def _nearest_quotient(num, den):
    """num / den (|num| < 2**127, 0 < den < 2**127) as the nearest double (tests only)."""
    if not 0 < den < 2**127 or not -2**127 < num < 2**127:
        raise ValueError(f"need |num| < 2**127 and 0 < den < 2**127, got {num!r} / {den!r}")
    return nearest_quotient(from_python(num), from_python(den))


@cython.final
cdef class Liquidator:
    """The liquidator of one Engine (internal; the Engine is the public face).

    Parameters are the Engine's settings of the same names, as plain integers (``round_cap`` and
    ``backstop`` may be None); the Engine then attaches itself as the source of the mark.
    """

    def __init__(self, OrderBook book, Ledger ledger, int64_t k, qty_t max_position, int sizing,
                 int limit_rule, int deficit, int adl_ranking, int64_t fraction_ppm,
                 int64_t band_ppm, int64_t liquidation_fee_ppm, int64_t backstop_discount_ppm,
                 round_cap, backstop, money_t fraction_above=0,
                 int64_t takeover_below_ppm=0, int64_t cooldown_rounds=0,
                 money_t increment=0, int close_order=0, int64_t cooldown_ms=0):
        self.books = [book]
        self.book = book
        self.instrument = 0
        self.ledger = ledger
        self.k = k
        self.max_position = max_position
        self.sizing = sizing
        self.close_order = close_order
        self.limit_rule = limit_rule
        self.deficit = deficit
        self.adl_ranking = adl_ranking
        self.fraction_ppm = fraction_ppm
        self.fraction_above = fraction_above
        self.takeover_below_ppm = takeover_below_ppm
        self.cooldown_rounds = cooldown_rounds
        self.cooldown_ms = cooldown_ms
        self.increment = increment
        self.band_ppm = band_ppm
        self.liquidation_fee_ppm = liquidation_fee_ppm
        self.backstop_discount_ppm = backstop_discount_ppm
        self.has_round_cap = round_cap is not None
        self.round_cap = round_cap if self.has_round_cap else 0
        self.has_backstop = backstop is not None
        self.backstop = backstop if self.has_backstop else 0
        self.next_forced_id = -1

    def __reduce__(self):
        # It points into its Engine's book, ledger and mark: the Engine pickles checked state.
        raise TypeError("a Liquidator cannot be pickled on its own; pickle its Engine")

    cdef Account* acct(self, int32_t slot) noexcept nogil:
        return &self.ledger.accounts[slot]

    cdef Position* posn(self, int32_t slot) noexcept nogil:
        # The account's position in the instrument being served (made flat if it has none).
        return self.ledger.pos(slot, self.instrument)

    cdef void use(self, int32_t instrument) noexcept:
        # Serve ``instrument``: its book, k, max_position and tiers (the ledger's selection).
        self.instrument = instrument
        self.book = <OrderBook>self.books[instrument]
        self.ledger.select(instrument)
        self.k = self.ledger.k
        self.max_position = self.ledger.max_position
        self.ou = 0
        self.om = 0

    cdef void fold(self, int32_t slot) noexcept nogil:
        # The served account's other positions held fixed at the current marks: O_i and M_i.
        self.ledger.others(self.acct(slot), self.instrument, &self.ou, &self.om, NULL)

    cdef price_t mark(self) noexcept nogil:
        # Every mark refreshed after whatever just changed a book; the served instrument's (the
        # last one if it has none now).
        self.refresh_mark(self.engine)
        return self.ledger.marks[self.instrument]

    # ------------------------------------------------------------------ rounds
    cdef bint run_round(self) except -1:
        """Run one round (docs/liquidation.md); return whether it made progress."""
        cdef vector[Episode] snapshot
        cdef vector[Episode] kept
        cdef size_t i
        cdef int64_t cap_left = self.round_cap
        cdef int64_t used = 0
        cdef int status
        cdef bint stopped = False
        cdef size_t queued_before = self.queue.size()
        self.progress = 0
        self.refresh_mark(self.engine)
        self.enqueue_crossed()
        for i in range(queued_before, self.queue.size()):
            self.cancel_orders_of(self.queue[i].owner)
        if self.queue.empty():
            self.round_number = 0
            return False
        snapshot = self.queue
        for i in range(snapshot.size()):
            if stopped:
                kept.push_back(snapshot[i])
                continue
            status = self.serve(&snapshot[i], cap_left, &used)
            if status != SERVED_DONE:
                kept.push_back(snapshot[i])
            else:
                self.acct(self.ledger.slot(snapshot[i].owner)).queued = False
            if status == SERVE_STOP:
                stopped = True
            elif self.has_round_cap:
                cap_left -= used
        self.queue = kept
        if not self.progress:
            return False
        self.fund_rounds.push_back(self.rounds_run)
        self.fund_balances.push_back(self.acct(self.ledger.slot(t.INSURANCE_FUND)).collateral)
        self.rounds_run += 1
        self.round_number += 1
        return True

    cdef void enqueue_crossed(self) noexcept nogil:
        # For each instrument with a mark, the one-position accounts whose liquidation price
        # there the mark reached; the accounts holding several positions that are liquidatable
        # (the allowance index: Ledger.cross_multi); the fund if it holds a position: they join
        # the back of the queue in ascending owner id.
        # O(instruments log n + k log k + p) for k crossed and p accounts whose allowance a mark
        # passed (each evaluated in O(its positions)).
        cdef vector[owner_t] crossed
        cdef index_iter it
        cdef size_t i, n
        cdef Account* a
        cdef price_t mark
        cdef const KeySet[IndexKey]* index
        for n in range(self.ledger.instruments.size()):
            if not self.ledger.has_mark[n]:
                continue
            mark = self.ledger.marks[n]
            index = &self.ledger.longs[n]
            it = index.end()
            while it != index.begin():
                dec(it)
                if deref(it).first < mark:
                    break
                crossed.push_back(deref(it).second)
            index = &self.ledger.shorts[n]
            it = index.begin()
            while it != index.end():
                if deref(it).first > mark:
                    break
                crossed.push_back(deref(it).second)
                inc(it)
        self.ledger.cross_multi(&crossed)
        if self.ledger.held(self.acct(self.ledger.slot(t.INSURANCE_FUND))):
            crossed.push_back(t.INSURANCE_FUND)
        sort(crossed.begin(), crossed.end())
        for i in range(crossed.size()):
            if i and crossed[i] == crossed[i - 1]:
                continue
            a = self.acct(self.ledger.slot(crossed[i]))
            if not a.queued:
                a.queued = True
                self.queue.push_back(Episode(crossed[i], self.round_number, -1, -1))

    cdef int serve(self, Episode* episode, int64_t cap_left, int64_t* used) except -1:
        # Serve one queue entry: SERVED_QUEUED (it stays), SERVED_DONE (it leaves the queue) or
        # SERVE_STOP (the round's cap is spent: it and everything behind it wait). Every position
        # the account holds at the start, ascending instrument, one forced order each. ``used``
        # gets the notional at the marks this entry took from the cap.
        cdef int32_t slot = self.ledger.slot(episode.owner)
        cdef Account* a = self.acct(slot)
        cdef const Position* p
        cdef bint is_fund = a.owner == t.INSURANCE_FUND
        cdef bint look_again, stopped = False
        cdef int32_t last
        cdef int position_side
        cdef vector[int32_t] instruments
        cdef size_t i
        cdef int side = 0
        cdef int64_t position_used
        cdef Episode fund_episode
        cdef int32_t fund
        cdef money_t fund_before, deeper
        self.refresh_mark(self.engine)
        used[0] = 0
        if not self.ledger.held(a) or (not is_fund and not self.ledger.liquidatable(a)):
            return SERVED_DONE
        p = &a.pos
        while p != NULL:
            if p.position != 0:
                instruments.push_back(p.instrument)
            p = self.ledger.next_pos(a, p)
        look_again = self.close_sequence(slot, is_fund, &instruments)
        fund = self.ledger.slot(t.INSURANCE_FUND)
        fund_before = self.acct(fund).collateral
        self.bad_debt_noted = 0
        last = instruments[0]
        for i in range(instruments.size()):
            self.use(instruments[i])
            a = self.acct(slot)
            if i and look_again and not self.ledger.liquidatable(a):
                break
            if self.posn(slot).position == 0:
                continue
            position_side = SELL if self.posn(slot).position > 0 else BUY
            position_used = 0
            if self.serve_position(episode, slot, is_fund, cap_left, &position_used) == SERVE_STOP:
                # The cap leaves this position no lot: the entry waits, but what the positions
                # served before it did (the fund's loss on them included) is settled below.
                stopped = True
                break
            side = position_side
            last = instruments[i]
            used[0] += position_used
            if self.has_round_cap:
                cap_left -= position_used
        self.use(last)   # the shortfall and the fund's record name the last position served
        a = self.acct(slot)
        if not self.ledger.held(a) and a.collateral < 0 and not is_fund:
            if a.holdings >= 0:
                self.convert_collateral(episode, slot, last)
            if self.acct(slot).collateral < 0:
                self.cover_shortfall(episode, slot, side)
        # The fund can also lose by trading the positions it took over; when that takes it
        # (further) below zero, say so in a SHORTFALL record of its own.
        deeper = (negative_part(self.acct(fund).collateral) - negative_part(fund_before)
                  - self.bad_debt_noted)
        if deeper > 0:
            fund_episode.owner = t.INSURANCE_FUND
            fund_episode.generation = episode.generation
            fund_episode.cooldown_end = -1
            fund_episode.cooldown_until = -1
            self.record(&fund_episode, t.FK_SHORTFALL, side, 0, 0, 0, self.mark(), 0, 0, 0,
                        deeper, t.NO_COUNTERPARTY)
        if stopped:
            return SERVE_STOP   # the entry and everything behind it wait for the next round
        # Looked at after every change to the books: a MID mark with a side empty keeps its
        # last value, so a skipped look could change a later one.
        self.refresh_mark(self.engine)
        a = self.acct(slot)
        if not self.ledger.held(a) or (not is_fund and not self.ledger.liquidatable(a)):
            return SERVED_DONE
        return SERVED_QUEUED

    cdef bint close_sequence(self, int32_t slot, bint is_fund,
                             vector[int32_t]* instruments) except -1:
        # The served account's positions (``instruments``, ascending) put in close_order
        # (stable: ties by instrument); returns whether the account is looked at again before
        # each position after the first. The fund closes everything, instrument ascending.
        cdef vector[pair[int128, int32_t]] keyed
        cdef Position* p
        cdef size_t i
        cdef int32_t instrument
        if is_fund or self.close_order == t.CLOSE_ALL:
            return not is_fund and self.sizing != t.SIZING_FULL
        if self.close_order == t.CLOSE_PRO_RATA:
            return False
        for i in range(instruments.size()):
            instrument = instruments[0][i]
            self.use(instrument)
            p = self.posn(slot)
            if self.close_order == t.CLOSE_LARGEST_MM:
                keyed.push_back(pair[int128, int32_t](
                    -self.ledger.maintenance(p, self.ledger.marks[instrument],
                                             self.ledger.has_mark[instrument]), instrument))
            else:   # LARGEST_LOSS: the most negative unrealised profit first
                keyed.push_back(pair[int128, int32_t](
                    self.ledger.unrealised(p, self.ledger.marks[instrument],
                                           self.ledger.has_mark[instrument]), instrument))
        sort(keyed.begin(), keyed.end())
        for i in range(keyed.size()):
            instruments[0][i] = keyed[i].second
        return True

    cdef int serve_position(self, Episode* episode, int32_t slot, bint is_fund,
                            int64_t cap_left, int64_t* used) except -1:
        # Today's one-position steps on the position in the instrument being served (use), the
        # account's others held fixed: SERVE_STOP when the cap cuts its order to nothing.
        cdef Account* a = self.acct(slot)
        cdef Position* p = self.posn(slot)
        cdef bint taken
        cdef price_t mark, bankruptcy = 0
        cdef qty_t size, held, filled = 0
        cdef int side
        cdef int64_t steps_used = 0
        self.fold(slot)
        mark = self.mark()
        # Take-over below a share of MM (step 2.2): the whole position, off the book at once.
        taken = not is_fund and self.takes_over(a, p, mark)
        held = p.position if p.position > 0 else -p.position
        # FRACTION's cooldowns (step 2.2): whole orders for a while after a partial step, in
        # rounds or in ms of the engine's clock (-1: none; the clock is never below 0).
        size = held if (is_fund or taken or episode.cooldown_end >= self.rounds_run
                        or self.now <= episode.cooldown_until) else self.size(a, p, mark)
        if not taken and self.has_round_cap and self.ledger.value(mark, size) > cap_left:
            size = <qty_t>self.ledger.lots_within(mark, cap_left)
        if size == 0:
            return SERVE_STOP
        side = SELL if p.position > 0 else BUY
        self.ledger.bankruptcy_price(a, p, self.ou, &bankruptcy)
        if taken:
            self.take_over(episode, slot, side, size, bankruptcy if bankruptcy > 1 else 1)
        else:
            filled = self.send_order(episode, slot, is_fund, side, size, mark, bankruptcy)
            # INCREMENTAL (step 2.2): more steps, each at the mark the last one left.
            if filled and not is_fund and self.sizing == t.SIZING_INCREMENTAL:
                steps_used = self.incremental_steps(
                    episode, slot, side,
                    cap_left - <int64_t>self.ledger.value(mark, size) if self.has_round_cap else 0)
        if filled and size < held and not is_fund and self.sizing == t.SIZING_FRACTION:
            if self.cooldown_rounds:
                episode.cooldown_end = INT64_MAX \
                    if self.cooldown_rounds > INT64_MAX - self.rounds_run \
                    else self.rounds_run + self.cooldown_rounds
            if self.cooldown_ms:
                episode.cooldown_until = INT64_MAX if self.cooldown_ms > INT64_MAX - self.now \
                    else self.now + self.cooldown_ms
        used[0] = 0 if taken else <int64_t>self.ledger.value(mark, size) + steps_used
        return SERVED_QUEUED

    cdef qty_t send_order(self, const Episode* episode, int32_t slot, bint is_fund, int side,
                          qty_t size, price_t mark, price_t bankruptcy) except -1:
        # Steps 2.4-2.7: the forced order of size lots through the book, its fee, and what
        # becomes of the lots it did not fill (take-over under BANKRUPTCY, the fund-covered
        # lots' ADL under MARKET/BAND with Deficit.ADL); returns the lots it filled.
        cdef Account* a = self.acct(slot)
        cdef Position* p = self.posn(slot)
        cdef price_t limit, rule_limit
        cdef qty_t filled = 0, remainder, blocked
        cdef bint fund_bound
        cdef int limit_rule = self.limit_rule
        cdef int128 value = 0, equity_after
        cdef money_t fee = 0
        cdef Message m
        cdef size_t i
        cdef const EventRec* e
        if is_fund and limit_rule == t.LIMIT_BANKRUPTCY:
            limit_rule = t.LIMIT_BAND if self.band_ppm else t.LIMIT_MARKET
        limit = self.order_limit(limit_rule, side, mark, bankruptcy)
        rule_limit = limit
        # Fund first, then ADL (step 2.4): under MARKET and BAND with Deficit.ADL the order may
        # not fill where its loss beyond the bankruptcy price would pass what the fund can pay.
        fund_bound = (self.deficit == t.DEFICIT_ADL and not is_fund
                      and limit_rule != t.LIMIT_BANKRUPTCY)
        if fund_bound:
            limit = self.fund_covered_limit(a, p, side, size, bankruptcy,
                                            limit_rule != t.LIMIT_MARKET, limit)
        m.order_id = self.next_forced_id
        self.next_forced_id -= 1
        m.owner = a.owner
        m.side = side
        m.kind = t.K_MARKET if limit_rule == t.LIMIT_MARKET and not fund_bound else t.K_IOC
        m.price = limit
        m.stop_price = 0
        m.qty = size
        self.book.run(&m)   # leaves its events (only) in book.events
        self.ledger.settle_events(self.book.events, m.order_id, False)
        for i in range(self.book.events.size()):
            e = &self.book.events[i]
            if e.kind == t.EV_TRADE and e.order_id == m.order_id:
                filled += e.qty
                value += self.ledger.value(e.price, e.qty)
        a = self.acct(slot)
        p = self.posn(slot)
        if not is_fund and self.liquidation_fee_ppm and value:
            fee = <money_t>ceil_div(value * self.liquidation_fee_ppm, t.PPM)
            equity_after = self.ledger.equity(a, p, self.mark(), True) + self.ou
            if equity_after < fee:
                fee = <money_t>(equity_after if equity_after > 0 else 0)
            if fee:
                self.ledger.charge(slot, fee, True)
        self.progress += filled
        if filled:
            self.record(episode, t.FK_ORDER, side, size, filled, <money_t>value, mark, fee, 0, 0,
                        0, t.NO_COUNTERPARTY)
        remainder = size - filled
        if remainder and limit_rule == t.LIMIT_BANKRUPTCY:
            self.take_over(episode, slot, side, remainder, bankruptcy if bankruptcy > 1 else 1)
        elif remainder and fund_bound and (limit_rule == t.LIMIT_MARKET or limit != rule_limit):
            if limit_rule == t.LIMIT_MARKET:
                rule_limit = 1 if side == SELL else self.ledger.max_price
            blocked = self.blocked_depth(side, rule_limit, limit, remainder)
            if blocked:
                self.deleverage(episode, slot, side, blocked, bankruptcy if bankruptcy > 1 else 1,
                                self.mark())
        return filled

    cdef int64_t incremental_steps(self, const Episode* episode, int32_t slot, int side,
                                   int64_t cap_left) except -1:
        # INCREMENTAL's steps after the first (step 2.2; the reference's incremental_steps):
        # the mark looked at afresh, the account checked at it, then an order of size() lots cut
        # to cap_left, what is left of the round's cap; until the account is no longer
        # liquidatable, closed, a step fills nothing or the cap is spent. Returns the notional
        # at their marks the steps took from the cap (0 with no cap, which bounds the sum by
        # cap_left). A step that goes on filled a lot, so O(|q|) steps.
        cdef Account* a
        cdef Position* p
        cdef price_t mark, bankruptcy
        cdef qty_t size
        cdef int64_t used = 0
        cdef int128 value
        while True:
            a = self.acct(slot)
            p = self.posn(slot)
            mark = self.mark()
            if p.position == 0 or not self.ledger.liquidatable_at(a, p, mark, self.ou, self.om):
                return used
            size = self.size(a, p, mark)
            if self.has_round_cap:
                value = self.ledger.value(mark, size)
                if value > cap_left - used:
                    size = <qty_t>self.ledger.lots_within(mark, cap_left - used)
                    if size == 0:
                        return used
                    value = self.ledger.value(mark, size)
                used += <int64_t>value
            bankruptcy = 0
            self.ledger.bankruptcy_price(a, p, self.ou, &bankruptcy)
            if self.send_order(episode, slot, False, side, size, mark, bankruptcy) == 0:
                return used

    cdef bint takes_over(self, const Account* a, const Position* p, price_t mark) noexcept nogil:
        # Whether a served account is taken over whole instead of sent to the book: its equity
        # (all positions) at the marks below takeover_below_ppm of its MM (all positions),
        # 10**6 E < ppm x MM exactly (E and MM are below 2**63, so both products fit int128).
        # Never with the setting at 0.
        return self.takeover_below_ppm > 0 and (
            <int128>t.PPM * (self.ledger.equity(a, p, mark, True) + self.ou)
            < <int128>self.takeover_below_ppm * (self.ledger.maintenance(p, mark, True) + self.om))

    cdef price_t order_limit(self, int limit_rule, int side, price_t mark,
                             price_t bankruptcy) noexcept nogil:
        # The limit price of a forced order under limit_rule (step 2.4); 0 for MARKET (none).
        cdef price_t limit = 0
        if limit_rule == t.LIMIT_BAND:
            if side == SELL:
                limit = <price_t>ceil_div(<int128>mark * (t.PPM - self.band_ppm), t.PPM)
                limit = limit if limit > 1 else 1
            else:
                limit = <price_t>floor_div(<int128>mark * (t.PPM + self.band_ppm), t.PPM)
        elif limit_rule == t.LIMIT_BANKRUPTCY:
            limit = bankruptcy if bankruptcy > 1 else 1
        return limit

    cdef price_t fund_covered_limit(self, const Account* a, const Position* p, int side,
                                    qty_t size, price_t bankruptcy, bint has_limit,
                                    price_t limit) noexcept nogil:
        # The forced order's limit under MARKET/BAND with Deficit.ADL: the tighter of the rule's
        # limit and the worst price at which size lots lose no more beyond the bankruptcy price
        # than the fund's balance and the account's equity there can pay.
        cdef money_t balance = self.acct(self.ledger.slot(t.INSURANCE_FUND)).collateral
        cdef int128 equity = self.ledger.equity(a, p, bankruptcy, True) + self.ou
        cdef int128 budget = (<int128>balance if balance > 0 else 0) + (
            equity if equity > 0 else 0)
        cdef int128 step, covered, value, need
        if self.ledger.inverse:
            # a long sells at p: it loses V(p) - V(b) beyond b, so V(p) <= V(b) + budget; a
            # short buys: V(b) - V(p) <= budget (the reference's fund_covered_limit)
            value = self.ledger.value(bankruptcy, size)
            if side == SELL:
                covered = <int128>size * self.k // (value + budget + 1) + 1
                return limit if has_limit and limit > covered else <price_t>covered
            need = value - budget
            covered = self.ledger.max_price if need <= 0 else <int128>size * self.k // need
            covered = covered if covered < self.ledger.max_price else self.ledger.max_price
            covered = covered if covered > 1 else 1
            return limit if has_limit and limit < covered else <price_t>covered
        step = floor_div(budget, <int128>size * self.k)
        if side == SELL:
            covered = bankruptcy - step
            covered = covered if covered > 1 else 1
            return limit if has_limit and limit > covered else <price_t>covered
        covered = bankruptcy + step
        covered = covered if covered < self.ledger.max_price else self.ledger.max_price
        covered = covered if covered > 1 else 1
        return limit if has_limit and limit < covered else <price_t>covered

    cdef qty_t blocked_depth(self, int side, price_t rule_limit, price_t limit,
                             qty_t wanted) noexcept nogil:
        # Lots (at most wanted) resting against a forced order of ``side`` that the rule's own
        # limit would take and the fund-covered limit did not: bids in [rule_limit, limit) for
        # a sell, asks in (limit, rule_limit] for a buy. O(levels walked).
        cdef Ladder* levels = &self.book.bids if side == SELL else &self.book.asks
        cdef price_t price, key
        cdef Level* level = ladder_first(levels, &key)
        cdef qty_t total = 0, lots
        while level != NULL and total < wanted:
            price = level_key(-side, key)
            if (price < rule_limit) if side == SELL else (price > rule_limit):
                break
            if (price < limit) if side == SELL else (price > limit):
                lots = level.total
                total += lots if lots < wanted - total else wanted - total
            level = ladder_next(levels, key, &key)
        return total

    cdef int cancel_orders_of(self, owner_t owner) except -1:
        # An account entering liquidation loses its resting orders and armed stops in every
        # book: instrument ascending, id order within a book.
        cdef int32_t slot = self.ledger.slot(owner)
        cdef const Account* a = self.acct(slot)
        cdef const Position* p = &a.pos
        cdef vector[int32_t] instruments
        cdef vector[oid_t] ids
        cdef Message m
        cdef size_t i, n
        cdef int32_t serving = self.instrument
        while p != NULL:
            if p.open_buy != 0 or p.open_sell != 0:
                instruments.push_back(p.instrument)
            p = self.ledger.next_pos(a, p)
        for n in range(instruments.size()):
            self.use(instruments[n])
            ids.clear()
            self.book.ids_of(owner, &ids)   # ascending
            for i in range(ids.size()):
                m.kind = t.K_CANCEL
                m.order_id = ids[i]
                m.owner = owner
                m.side = 0
                m.price = m.stop_price = m.qty = 0
                self.book.run(&m)
                self.ledger.settle_events(self.book.events, ids[i], True)
                # A cancel can move a MID mark: it counts as progress, so the run goes on to a
                # round that looks at the accounts the new mark crosses.
                self.progress += 1
        if serving != self.instrument:
            self.use(serving)
        return 0

    cdef qty_t size(self, const Account* a, const Position* p, price_t mark) noexcept nogil:
        # Lots of a forced order under the sizing rule.
        cdef qty_t q = p.position if p.position > 0 else -p.position
        cdef qty_t fraction
        if self.sizing == t.SIZING_FULL:
            return q
        if self.sizing == t.SIZING_FRACTION:
            if self.fraction_above and self.ledger.value(mark, q) <= self.fraction_above:
                return q
            fraction = <qty_t>ceil_div(<int128>q * self.fraction_ppm, t.PPM)
            fraction = fraction if fraction > 1 else 1
            return fraction if fraction < q else q
        if self.sizing == t.SIZING_TIER_STEP:
            return self.tier_step_size(q, mark)
        if self.sizing == t.SIZING_INCREMENTAL:
            # One step: increment's worth at the mark, at least a lot, at most the position.
            fraction = <qty_t>self.ledger.lots_within(mark, self.increment)
            fraction = fraction if fraction > 1 else 1
            return fraction if fraction < q else q
        return self.restore_size(a, p, mark)

    cdef qty_t tier_step_size(self, qty_t q, price_t mark) noexcept nogil:
        # TIER_STEP (the reference's tier_step_size): the fewest lots that leave the notional at
        # the mark of the lots left at most the cap of the next lower tier, whatever mm_basis;
        # all q in the lowest tier. q V > cap_{t-1} puts the floor below q, so at least 1 lot.
        # O(tiers).
        cdef size_t tier = self.tier_of(self.ledger.value(mark, q))
        if tier == 0:
            return q
        return q - <qty_t>self.ledger.lots_within(mark, self.ledger.caps[tier - 1])

    cdef qty_t restore_size(self, const Account* a, const Position* p,
                            price_t mark) noexcept nogil:
        # RESTORE (the reference's restore_size): the fewest lots x < q that restores() accepts,
        # walking the resting book within the order's limit; q if none. Each level is cut where
        # the maintenance tier of the q - x lots left changes; on such a piece the fills' value,
        # the equity after them and the tier's margin are linear in x, and so is
        # Phi(x) = P (E'(x) - fee rate x W(x) / P - (N(x) r - D) / P) (see piece_first), which
        # restores() needs >= 0 where the margin is positive and which makes it true once
        # >= 2P: only the lots with Phi in [0, 2P) are checked one by one.
        # O(levels + tiers + lots checked). On the entry basis the margin left follows the cost
        # kept, not the mark: every lot is checked in turn, as the reference does; so too with
        # other positions whose margin M_i is held fixed (Phi's bounds assume the margin is the
        # tier's alone); so too on an inverse venue (V is not linear in the lots). O(levels + q).
        cdef qty_t q = p.position if p.position > 0 else -p.position
        cdef int side = SELL if p.position > 0 else BUY
        cdef bint one_by_one = (self.ledger.mm_basis == t.BASIS_ENTRY or self.om != 0
                                or self.ledger.inverse)
        cdef price_t bankruptcy = 0, limit, price, key
        cdef Ladder* levels = &self.book.bids if side == SELL else &self.book.asks
        cdef Level* level = ladder_first(levels, &key)
        cdef int128 equity = self.ledger.equity(a, p, mark, True) + self.ou
        cdef int128 value = 0
        cdef qty_t done = 0, depth, lo, hi, end, found
        cdef size_t tier
        self.ledger.bankruptcy_price(a, p, self.ou, &bankruptcy)
        limit = self.order_limit(self.limit_rule, side, mark, bankruptcy)
        while level != NULL and done < q - 1:
            price = level_key(-side, key)
            if limit and ((price < limit) if side == SELL else (price > limit)):
                break
            depth = level.total
            lo = done + 1
            hi = done + depth if depth < q - 1 - done else q - 1
            while lo <= hi and one_by_one:
                if self.restores(a, p, lo, value + self.ledger.value(price, lo - done), equity,
                                 mark):
                    return lo
                lo += 1
            while lo <= hi:
                # the piece of [lo, hi] in the tier of the lots left at lo
                tier = self.tier_of(self.ledger.value(mark, q - lo))
                end = hi
                if tier > 0:
                    end = q - <qty_t>floor_div(self.ledger.caps[tier - 1],
                                               <int128>mark * self.k) - 1
                    end = end if end < hi else hi
                found = self.piece_first(a, p, side, q, lo, end, done, value, price, equity,
                                         mark, tier)
                if found:
                    return found
                lo = end + 1
            done += depth
            value += self.ledger.value(price, depth)
            level = ladder_next(levels, key, &key)
        return q

    cdef size_t tier_of(self, int128 notional) noexcept nogil:
        # The margin tier of a notional: the first whose cap it does not pass (requirement's).
        cdef size_t i = 0
        cdef size_t last = self.ledger.caps.size() - 1
        while i < last and notional > self.ledger.caps[i]:
            i += 1
        return i

    cdef qty_t piece_first(self, const Account* a, const Position* p, int side, qty_t q, qty_t lo,
                           qty_t hi, qty_t done, int128 value, price_t price, int128 equity,
                           price_t mark, size_t tier) noexcept nogil:
        # The first x in [lo, hi] that restores() accepts (0 if none), where the x-th lot fills
        # at ``price`` after ``done`` lots worth ``value`` and the q - x lots left are in
        # ``tier``. With E'(x) the equity after the fills, W(x) their value, f the fee rate and
        # N(x) = V(mark, q - x): Phi(x) = P E'(x) - f W(x) - (r N(x) - D), linear in x.
        # Where r N - D > 0 (margin > 0), restores() needs Phi >= 0 and holds once Phi >= 2P
        # (then E' - fee - MM > Phi / P - 2 >= 0, so under either trigger); where r N - D <= 0
        # (margin 0) it holds exactly when E'(x) >= 0 for E < MM, and for E <= MM exactly when
        # E'(x) - fee >= 1, i.e. Psi(x) = P (E'(x) - 1) - f W(x) >= 0 (the fee is then below E'
        # and not capped), also linear in x.
        cdef int128 P = t.PPM
        cdef int128 k = self.k
        cdef int128 rate = self.ledger.mm_ppm[tier]
        cdef int128 deduction = self.ledger.mm_deduction[tier]
        cdef int128 unit = (<int128>price - mark) * k if side == SELL else (
            (<int128>mark - price) * k)   # E'(x + 1) - E'(x)
        cdef int128 gain = value - self.ledger.value(mark, done)   # the done lots' fills vs mark
        cdef int128 e_lo = equity + (gain if side == SELL else -gain) + unit * (lo - done)
        cdef int128 w_lo = value + <int128>price * k * (lo - done)
        cdef int128 phi_lo = P * e_lo - self.liquidation_fee_ppm * w_lo - (
            rate * mark * k * (q - lo) - deduction)
        cdef int128 slope = P * unit - self.liquidation_fee_ppm * price * k + rate * mark * k
        cdef qty_t zero_from = hi + 1   # the first x of the piece whose margin is 0
        cdef qty_t x, last
        cdef int128 first, sure, e_from, at, e_slope = unit
        if rate > 0:
            x = q - <qty_t>floor_div(deduction, rate * mark * k)   # r N(x) - D <= 0 from here
            zero_from = x if x > lo else lo
        elif deduction >= 0:
            zero_from = lo
        # the part where the margin is positive: [lo, min(hi, zero_from - 1)]
        last = hi if hi < zero_from - 1 else zero_from - 1
        if lo <= last:
            if slope > 0:
                first = lo if phi_lo >= 0 else lo + ceil_div(-phi_lo, slope)
                sure = lo if phi_lo >= 2 * P else lo + ceil_div(2 * P - phi_lo, slope)
            elif phi_lo >= 0:
                first = lo
                sure = lo if phi_lo >= 2 * P else last + 1
                if slope < 0:
                    at = lo + floor_div(phi_lo, -slope)   # the last x with Phi >= 0
                    last = <qty_t>at if at < last else last
            else:
                first = last + 1
                sure = last + 1
            x = <qty_t>first if first <= last else last + 1
            while x <= last and x < sure:
                if self.restores(a, p, x, w_lo + <int128>price * k * (x - lo), equity, mark):
                    return x
                x += 1
            if sure <= last:
                return <qty_t>sure
        # the part where the margin is 0: the first x with E'(x) >= 0 (or Psi(x) >= 0)
        if zero_from <= hi:
            x = zero_from if zero_from > lo else lo
            e_from = e_lo + unit * (x - lo)
            if self.ledger.trigger == t.TRIGGER_AT_OR_BELOW:
                e_from = P * (e_from - 1) - self.liquidation_fee_ppm * (
                    w_lo + <int128>price * k * (x - lo))
                e_slope = P * unit - self.liquidation_fee_ppm * price * k
            if e_from >= 0:
                return x
            if e_slope > 0:
                at = x + ceil_div(-e_from, e_slope)
                if at <= hi:
                    return <qty_t>at
        return 0

    cdef bint restores(self, const Account* a, const Position* p, qty_t x, int128 value,
                       int128 equity, price_t mark) noexcept nogil:
        # Whether closing x of p's q lots for value quote units leaves the account's equity at
        # mark, less the liquidation fee on them (capped at that equity, at least 0), not short
        # (trigger) of M_i plus the maintenance margin of the q - x lots left, on the ledger's
        # basis: their notional at the mark or the cost they keep (the reference's restores).
        cdef qty_t q = p.position if p.position > 0 else -p.position
        # the equity moves by the fills' value plus the value left at the mark less the value
        # held (linear: value - V(mark, x) exactly), with the side's and settlement's sign
        cdef int128 moved = value + self.ledger.value(mark, q - x) - self.ledger.value(mark, q)
        cdef int128 after = equity + (moved if p.position > 0 else -moved) * self.ledger.sign
        cdef int128 fee = ceil_div(value * self.liquidation_fee_ppm, t.PPM)
        cdef int128 cap = after if after > 0 else 0
        cdef Position left = p[0]
        fee = fee if fee < cap else cap
        left.position = p.position - x if p.position > 0 else p.position + x
        left.cost = p.cost - <money_t>floor_div(<int128>p.cost * x, q)
        return not self.ledger.short_of(after - fee,
                                        self.ledger.maintenance(&left, mark, True) + self.om)

    # ------------------------------------------------------------------ records
    cdef void record(self, const Episode* episode, int kind, int side, qty_t qty, qty_t filled,
                     money_t fill_value, price_t mark_before, money_t fee, money_t fund_cover,
                     money_t socialized, money_t bad_debt, owner_t counterparty) noexcept nogil:
        cdef ForcedRec r
        self.progress += qty + 1
        r.round = self.round_number
        r.generation = episode.generation
        r.owner = episode.owner
        r.counterparty = counterparty
        r.qty = qty
        r.filled = filled
        r.fill_value = fill_value
        r.mark_before = mark_before
        r.mark_after = self.mark()
        r.fee = fee
        r.fund_cover = fund_cover
        r.socialized = socialized
        r.bad_debt = bad_debt
        r.side = side
        r.kind = kind
        r.instrument = self.instrument
        self.records.push_back(r)

    cdef object records_array(self, size_t first):
        """The records from ``first`` on as FORCED_DTYPE rows (padding zeroed). O(records), one
        typed column view per field and no Python object per row."""
        cdef size_t n = self.records.size() - first, i
        out = np.zeros(n, dtype=FORCED_DTYPE)
        cdef int64_t[:] round_ = out["round"], generation = out["generation"]
        cdef int64_t[:] owner = out["owner"], counterparty = out["counterparty"]
        cdef int64_t[:] qty = out["qty"], filled = out["filled"], notional = out["notional"]
        cdef double[:] avg_price = out["avg_price"], slippage = out["slippage"]
        cdef int64_t[:] mark_before = out["mark_before"], mark_after = out["mark_after"]
        cdef int64_t[:] fee = out["fee"], fund_cover = out["fund_cover"]
        cdef int64_t[:] socialized = out["socialized"], bad_debt = out["bad_debt"]
        cdef int8_t[:] side = out["side"]
        cdef uint8_t[:] kind = out["kind"]
        cdef int32_t[:] instrument = out["instrument"]
        cdef const ForcedRec* r
        for i in range(n):
            r = &self.records[first + i]
            if r.filled and (r.fill_value or not self.ledger.inverse):
                _averages(r, self.ledger.instruments[r.instrument].k, self.ledger.inverse,
                          &avg_price[i], &slippage[i])
            else:
                avg_price[i] = slippage[i] = NAN
            round_[i], generation[i], owner[i] = r.round, r.generation, r.owner
            counterparty[i], qty[i], filled[i] = r.counterparty, r.qty, r.filled
            notional[i], mark_before[i], mark_after[i] = r.fill_value, r.mark_before, r.mark_after
            fee[i], fund_cover[i], socialized[i] = r.fee, r.fund_cover, r.socialized
            bad_debt[i], side[i], kind[i] = r.bad_debt, r.side, r.kind
            instrument[i] = r.instrument
        return out

    cdef object fund_history_array(self):
        """The fund history as FUND_HISTORY_DTYPE rows (round, balance). O(rounds)."""
        cdef size_t i
        out = np.empty(self.fund_rounds.size(), dtype=FUND_HISTORY_DTYPE)
        for i in range(self.fund_rounds.size()):
            out[i] = (self.fund_rounds[i], self.fund_balances[i])
        return out

    # ------------------------------------------------------------------ take-over
    cdef void take_over(self, const Episode* episode, int32_t slot, int side, qty_t remainder,
                        price_t price) noexcept nogil:
        # Rule 2: move an unfilled remainder off the book (backstop, fund, then ADL).
        cdef int direction = -side
        cdef int32_t backstop, fund
        cdef qty_t room, qty
        cdef price_t bs_price
        cdef price_t mark = self.mark()
        if self.has_backstop and remainder:
            backstop = self.ledger.slot(self.backstop)
            if backstop >= 0:
                room = self.max_position - self.posn(backstop).position * direction
                qty = remainder if remainder < room else (room if room > 0 else 0)
                if qty:
                    if direction > 0:
                        bs_price = <price_t>floor_div(
                            <int128>price * (t.PPM - self.backstop_discount_ppm), t.PPM)
                        bs_price = bs_price if bs_price > 1 else 1
                    else:
                        bs_price = <price_t>ceil_div(
                            <int128>price * (t.PPM + self.backstop_discount_ppm), t.PPM)
                    self.ledger.move(slot, backstop, direction, bs_price, qty)
                    self.record(episode, t.FK_BACKSTOP, side, qty, qty,
                                <money_t>self.ledger.value(bs_price, qty), mark, 0, 0, 0, 0,
                                self.backstop)
                    remainder -= qty
        fund = self.ledger.slot(t.INSURANCE_FUND)
        if remainder and self.fund_can_take(fund, direction, price, remainder, mark):
            self.ledger.move(slot, fund, direction, price, remainder)
            self.record(episode, t.FK_FUND_TAKEOVER, side, remainder, remainder,
                        <money_t>self.ledger.value(price, remainder), mark, 0, 0, 0, 0,
                        t.INSURANCE_FUND)
            remainder = 0
        if remainder and self.deficit == t.DEFICIT_ADL:
            self.deleverage(episode, slot, side, remainder, price, mark)

    cdef bint fund_can_take(self, int32_t fund, int direction, price_t price, qty_t qty,
                            price_t mark) noexcept nogil:
        # Whether the fund, after taking qty lots at price, has equity (all its positions) for
        # their maintenance (all its positions, on the ledger's basis; >= whatever the trigger:
        # the fund is never liquidated).
        cdef Account trial = self.ledger.accounts[fund]
        cdef Position position = self.posn(fund)[0]
        cdef int128 ou, om
        self.ledger.others(&trial, self.instrument, &ou, &om, NULL)
        self.ledger.apply_fill(&trial, &position, direction * qty, price)
        return (self.ledger.equity(&trial, &position, mark, True) + ou
                >= self.ledger.maintenance(&position, mark, True) + om)

    # ------------------------------------------------------------------ ADL
    cdef qty_t deleverage(self, const Episode* episode, int32_t slot, int side, qty_t remainder,
                          price_t price, price_t mark) noexcept nogil:
        # ADL: the remainder goes to the ranked opposing accounts at the bankruptcy price; returns
        # the lots left. The keys are built in one O(n) pass, then a heap yields them best first
        # until the remainder is covered, so only the d accounts drawn are ordered:
        # O(n + d log n). Moving lots to one candidate changes no other candidate's key (nor the
        # mark), so this is the full sort's order. A candidate that would close worse than its
        # cap (adl_price) is passed over while others remain, then closes at its cap, best
        # ranked first.
        cdef vector[AdlCand] cands
        cdef vector[owner_t] capped
        cdef AdlCand* first
        cdef size_t n, i
        cdef int32_t other
        cdef qty_t held, qty
        cdef price_t at
        cdef int direction = -side
        self.adl_candidates(slot, mark, &cands)
        n = cands.size()
        if n == 0:
            return remainder
        first = cands.data()
        make_heap(first, first + n, adl_after)
        while remainder and n:
            pop_heap(first, first + n, adl_after)
            n -= 1
            other = self.ledger.slot(cands[n].owner)
            held = self.posn(other).position
            held = held if held > 0 else -held
            qty = remainder if remainder < held else held
            if self.adl_price(self.posn(other), direction, qty, price, mark) != price:
                capped.push_back(cands[n].owner)
                continue
            self.ledger.move(slot, other, direction, price, qty)
            self.record(episode, t.FK_ADL, side, qty, qty, <money_t>self.ledger.value(price, qty),
                        mark, 0, 0, 0, 0, cands[n].owner)
            remainder -= qty
        i = 0
        while remainder and i < capped.size():
            other = self.ledger.slot(capped[i])
            held = self.posn(other).position
            held = held if held > 0 else -held
            qty = remainder if remainder < held else held
            at = self.adl_price(self.posn(other), direction, qty, price, mark)
            self.ledger.move(slot, other, direction, at, qty)
            self.record(episode, t.FK_ADL, side, qty, qty, <money_t>self.ledger.value(at, qty),
                        mark, 0, 0, 0, 0, capped[i])
            remainder -= qty
            i += 1
        return remainder

    cdef price_t adl_price(self, const Position* other, int direction, qty_t qty, price_t price,
                           price_t mark) noexcept nogil:
        # Where ``other`` closes qty lots against the bankruptcy price: never worse for it than
        # its cap, the better of the mark and the price that realises no loss on those lots
        # (its released cost / (qty k), floor for a buy, ceil for a sell).
        cdef qty_t held = other.position if other.position > 0 else -other.position
        cdef int128 released = floor_div(<int128>other.cost * qty, held)
        cdef int128 cap
        cdef int128 k = <int128>qty * self.k
        if direction > 0:   # other is short and buys back
            # inverse: no loss while V(p) >= released, i.e. p <= k / released
            if self.ledger.inverse:
                cap = k // released if released else self.ledger.max_price
            else:
                cap = floor_div(released, k)
            cap = cap if cap > mark else mark
            return price if price < cap else <price_t>cap
        # inverse: no loss while V(p) <= released, i.e. p > k / (released + 1)
        cap = k // (released + 1) + 1 if self.ledger.inverse else ceil_div(released, k)
        cap = cap if cap < mark else mark
        return price if price > cap else <price_t>cap

    cdef void adl_candidates(self, int32_t slot, price_t mark,
                             vector[AdlCand]* out) noexcept nogil:
        # Accounts with an opposing position in the instrument being served, positive equity
        # (all positions) and cost there (the reference's filter), each with its key under the
        # ADL ranking (the reference's adl_key) on that position, the account's equity and
        # collateral.
        cdef const Position* a = self.posn(slot)
        cdef const Account* other
        cdef const Position* op
        cdef int128 profit, equity, notional, size, margin, ou, om
        cdef AdlCand cand
        cdef size_t i
        for i in range(self.ledger.accounts.size()):
            other = &self.ledger.accounts[i]
            if <int32_t>i == slot or other.owner == t.INSURANCE_FUND:
                continue
            if other.pos.next < 0:   # instrument 0's position only (nearly every account)
                if self.instrument != 0:
                    continue
                op = &other.pos
                ou = 0
            else:
                op = self.ledger.find(other, self.instrument)
                if op == NULL:
                    continue
            if op.position == 0 or (op.position > 0) == (a.position > 0):
                continue
            if other.pos.next >= 0 or other.holdings >= 0:
                self.ledger.others(other, self.instrument, &ou, &om, NULL)
            equity = self.ledger.equity(other, op, mark, True) + ou
            if equity <= 0 or op.cost == 0:
                continue
            profit = self.ledger.unrealised(op, mark, True)
            size = op.position if op.position > 0 else -op.position
            notional = self.ledger.value(mark, <qty_t>size)
            cand.owner = other.owner
            cand.sign = 1 if profit > 0 else (-1 if profit < 0 else 0)
            if profit < 0:
                profit = -profit
            cand.num = 0
            cand.den = 1
            if self.adl_ranking == t.ADL_RANK_PNL_RATIO:
                cand.num = <uint128>profit
                cand.den = <uint128>op.cost
            elif self.adl_ranking == t.ADL_RANK_BINANCE:
                margin = self.ledger.maintenance(op, mark, True)
                if cand.sign < 0 or margin == 0:
                    cand.sign = 0
                cand.num = <uint128>profit * <uint128>margin
                cand.den = <uint128>(other.collateral if other.collateral > 1 else 1) * \
                    <uint128>equity
            elif cand.sign > 0:
                cand.num = <uint128>profit * <uint128>notional
                cand.den = <uint128>op.cost * <uint128>equity
            else:
                cand.num = <uint128>profit * <uint128>equity
                cand.den = <uint128>op.cost * <uint128>notional
            out.push_back(cand)

    # ------------------------------------------------------------------ shortfall
    cdef int convert_collateral(self, const Episode* episode, int32_t slot,
                                int32_t served) except -1:
        # A flat account's negative collateral met by selling its collateral assets to the
        # venue, asset ascending, each at its instrument's mark less its conversion discount,
        # until the deficit is covered (none without a mark). One CONVERSION record per asset
        # sold; the served instrument is selected again after. O(holdings).
        cdef Holding* h = self.ledger.first_holding(self.acct(slot))
        cdef const AssetRec* r
        cdef int128 per, deficit, units, paid
        cdef price_t mark
        while h != NULL and self.acct(slot).collateral < 0:
            r = &self.ledger.assets[h.asset]
            mark = self.ledger.marks[r.instrument]
            if h.units and self.ledger.instruments[r.instrument].spot_asset >= 0:
                self.use(r.instrument)
                self.sell_through_book(episode, slot, h.asset)
            elif h.units and self.ledger.has_mark[r.instrument] and mark > 0:
                # (margin.conversion): the fewest units whose price covers the deficit
                per = <int128>mark * r.num * (t.PPM - r.discount_ppm)
                deficit = -<int128>self.acct(slot).collateral
                units = ceil_div(deficit * r.den * t.PPM, per)
                if units > h.units:
                    units = h.units
                paid = units * per // (<int128>r.den * t.PPM)
                h.units -= <money_t>units
                self.acct(slot).collateral += <money_t>paid
                self.ledger.converted_units[h.asset] += <money_t>units
                self.ledger.converted_paid[h.asset] += <money_t>paid
                self.use(r.instrument)
                self.record(episode, t.FK_CONVERSION, SELL, <qty_t>units, 0, <money_t>paid,
                            mark, 0, 0, 0, 0, t.NO_COUNTERPARTY)
            h = self.ledger.next_holding(h)
        self.use(served)
        self.ledger.reindex(slot)
        return 0

    cdef int sell_through_book(self, const Episode* episode, int32_t slot,
                               int32_t asset) except -1:
        # The asset's units sold through its spot book (selected): a forced market sell of
        # the fewest whole lots whose value at the resting bids covers the deficit, at most the
        # lots held; a CONVERSION record (the reference's sell_through_book). O(levels).
        cdef const InstrumentRec* r = &self.ledger.instruments[self.instrument]
        cdef qty_t held = <qty_t>(self.ledger.holding(slot, asset).units // r.units_per_lot)
        cdef int128 deficit = -<int128>self.acct(slot).collateral, value = 0, per, take
        cdef qty_t lots = 0, filled = 0
        cdef price_t price, mark, key
        cdef Level* level = ladder_first(&self.book.bids, &key)
        cdef Message m
        cdef size_t i
        cdef const EventRec* e
        while level != NULL and value < deficit and lots < held:
            price = level_key(BUY, key)
            per = self.ledger.value(price, 1)
            take = ceil_div(deficit - value, per)
            if take > level.total:
                take = level.total
            if take > held - lots:
                take = held - lots
            lots += <qty_t>take
            value += take * per
            level = ladder_next(&self.book.bids, key, &key)
        if lots == 0:
            return 0
        mark = self.mark()
        m.order_id = self.next_forced_id
        self.next_forced_id -= 1
        m.owner = self.acct(slot).owner
        m.side = SELL
        m.kind = t.K_MARKET
        m.price = 0
        m.stop_price = 0
        m.qty = lots
        self.book.run(&m)   # leaves its events (only) in book.events
        self.ledger.settle_events(self.book.events, m.order_id, False)
        value = 0
        for i in range(self.book.events.size()):
            e = &self.book.events[i]
            if e.kind == t.EV_TRADE and e.order_id == m.order_id:
                filled += e.qty
                value += self.ledger.value(e.price, e.qty)
        self.progress += filled
        self.record(episode, t.FK_CONVERSION, SELL, lots, filled, <money_t>value, mark, 0, 0,
                    0, 0, t.NO_COUNTERPARTY)
        return 0

    cdef int cover_shortfall(self, const Episode* episode, int32_t slot, int side) except -1:
        # A flat account with negative collateral: the fund, then the deficit rule, cover it.
        cdef int32_t fund = self.ledger.slot(t.INSURANCE_FUND)
        cdef money_t shortfall = -self.acct(slot).collateral
        cdef money_t balance = self.acct(fund).collateral
        cdef money_t cover = shortfall if shortfall < balance else (balance if balance > 0 else 0)
        cdef money_t rest, socialized = 0
        self.acct(fund).collateral -= cover
        rest = shortfall - cover
        if rest and self.deficit == t.DEFICIT_SOCIALIZE:
            socialized = self.socialize(slot, rest)
            rest -= socialized
        self.acct(fund).collateral -= rest   # bad debt: the fund goes negative by what is left
        self.bad_debt_noted += rest
        self.acct(slot).collateral = 0
        self.ledger.reindex(slot)
        self.record(episode, t.FK_SHORTFALL, side, 0, 0, 0, self.mark(), 0, cover, socialized,
                    rest, t.NO_COUNTERPARTY)
        return 0

    cdef money_t socialize(self, int32_t bankrupt, money_t amount) except? -1:
        # Rare path: largest-remainder pro-rata split with Python integers.
        cdef size_t i
        cdef const Account* other
        cdef int128 u, mm
        self.refresh_mark(self.engine)
        profits = []
        for i in range(self.ledger.accounts.size()):
            other = &self.ledger.accounts[i]
            if <int32_t>i == bankrupt or other.owner == t.INSURANCE_FUND:
                continue
            self.ledger.others(other, -1, &u, &mm, NULL)   # the sum over its positions
            profit = to_python(u - self.ledger.holdings_value(other))   # (others adds these)
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

    # ------------------------------------------------------------------ copies and saved state
    cdef Liquidator copy(self, list books, Ledger ledger, void* engine):
        """An independent liquidator with the same settings and state, over the given books,
        ledger and Engine (copies of this one's). O(state)."""
        cdef Liquidator other = Liquidator.__new__(Liquidator)
        other.books = books
        other.book = <OrderBook>books[self.instrument]
        other.instrument = self.instrument
        other.ou = self.ou
        other.om = self.om
        other.ledger = ledger
        other.engine = engine
        other.refresh_mark = self.refresh_mark
        other.k = self.k
        other.max_position = self.max_position
        other.sizing = self.sizing
        other.close_order = self.close_order
        other.limit_rule = self.limit_rule
        other.deficit = self.deficit
        other.adl_ranking = self.adl_ranking
        other.fraction_ppm = self.fraction_ppm
        other.fraction_above = self.fraction_above
        other.takeover_below_ppm = self.takeover_below_ppm
        other.cooldown_rounds = self.cooldown_rounds
        other.cooldown_ms = self.cooldown_ms
        other.now = self.now
        other.increment = self.increment
        other.band_ppm = self.band_ppm
        other.liquidation_fee_ppm = self.liquidation_fee_ppm
        other.backstop_discount_ppm = self.backstop_discount_ppm
        other.has_round_cap = self.has_round_cap
        other.has_backstop = self.has_backstop
        other.round_cap = self.round_cap
        other.backstop = self.backstop
        other.queue = self.queue
        other.round_number = self.round_number
        other.rounds_run = self.rounds_run
        other.next_forced_id = self.next_forced_id
        other.progress = self.progress
        other.bad_debt_noted = self.bad_debt_noted
        other.records = self.records
        other.fund_rounds = self.fund_rounds
        other.fund_balances = self.fund_balances
        return other

    cdef list queue_rows(self):
        """The saved state's queue: (owner, generation, cooldown_end, cooldown_until), front
        first."""
        return [(e.owner, e.generation, e.cooldown_end, e.cooldown_until) for e in self.queue]

    cdef list record_rows(self):
        """The saved state's records: FORCED_DTYPE's integers in _engine_state.RECORD_FIELDS
        order, then the instrument."""
        cdef size_t i
        cdef const ForcedRec* r
        rows = []
        for i in range(self.records.size()):
            r = &self.records[i]
            rows.append((r.round, r.generation, r.owner, r.counterparty, r.qty, r.filled,
                         r.fill_value, r.mark_before, r.mark_after, r.fee, r.fund_cover,
                         r.socialized, r.bad_debt, r.side, r.kind, r.instrument))
        return rows

    cdef list fund_rows(self):
        """The saved state's fund history: (round, balance)."""
        cdef size_t i
        return [(self.fund_rounds[i], self.fund_balances[i])
                for i in range(self.fund_rounds.size())]

    cdef int load(self, dict state) except -1:
        # A state that passed check_state, into a fresh liquidator whose ledger holds the saved
        # accounts already (a queued account is marked so).
        cdef ForcedRec rec
        cdef Episode episode
        for owner, generation, cooldown_end, cooldown_until in state["queue"]:
            episode.owner = owner
            episode.generation = generation
            episode.cooldown_end = cooldown_end
            episode.cooldown_until = cooldown_until
            self.queue.push_back(episode)
            self.acct(self.ledger.slot(owner)).queued = True
        for row in state["records"]:
            (rec.round, rec.generation, rec.owner, rec.counterparty, rec.qty, rec.filled,
             rec.fill_value, rec.mark_before, rec.mark_after, rec.fee, rec.fund_cover,
             rec.socialized, rec.bad_debt, rec.side, rec.kind, rec.instrument) = row
            self.records.push_back(rec)
        for round_number, balance in state["fund_history"]:
            self.fund_rounds.push_back(round_number)
            self.fund_balances.push_back(balance)
        self.round_number = state["round"]
        self.rounds_run = state["rounds_run"]
        self.next_forced_id = state["next_forced_id"]
        self.now = state["time"]
        return 0
