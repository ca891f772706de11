"""The reference liquidator: queue, rounds, forced orders, take-over, shortfall, ADL, socialising.

The liquidator half of the executable specification in ``orderbook.reference_engine`` (which
holds the ``Engine`` that owns one, and the ``_Ledger`` it settles to); the compiled twin is
orderbook/liquidator.pyx. Read it next to docs/liquidation.md, rule by rule.
"""

from __future__ import annotations

from copy import copy
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .events import (
    FORCED_DTYPE,
    FUND_HISTORY_DTYPE,
    INSURANCE_FUND,
    INT64_MAX,
    NO_COUNTERPARTY,
    PPM,
    AdlRanking,
    CloseOrder,
    Deficit,
    EventKind,
    ForcedKind,
    LimitRule,
    Side,
    Sizing,
)
from .margin import ceil_div, conversion

if TYPE_CHECKING:
    from .reference import OrderBook
    from .reference_engine import _Account, _Instrument, _Ledger


class _Episode:
    """An account's stay in the liquidation queue."""

    __slots__ = ("owner", "generation", "cooldown_end", "cooldown_until")

    def __init__(self, owner: int, generation: int, cooldown_end: int = -1,
                 cooldown_until: int = -1):
        self.owner = owner
        self.generation = generation  # the round number at which it entered the queue
        # FRACTION's cooldown: the last rounds_run whose forced orders close the whole
        # position (-1: none) ...
        self.cooldown_end = cooldown_end
        # ... and in ms: the last Engine.time at which they do (-1: none)
        self.cooldown_until = cooldown_until


class _Liquidator:
    """The liquidator of one Engine: queue, rounds, forced orders, take-over, ADL, shortfall.

    Works on the Engine's ``ledger`` (which holds the instruments and their books);
    ``refresh_marks`` is the Engine's (a callable that recomputes every instrument's mark after
    a book changed). The keyword arguments are the Engine's settings of the same names. An
    account is served position by position (docs/market_wide.md, step 1): while one is served,
    ``i`` names its instrument, whose book, k, tiers and mark the per-position rules use.
    """

    def __init__(self, ledger: _Ledger, refresh_marks, *, sizing, limit_rule, deficit,
                 adl_ranking, fraction_ppm, band_ppm, liquidation_fee_ppm,
                 backstop_discount_ppm, round_cap, backstop, fraction_above=0,
                 takeover_below_ppm=0, cooldown_rounds=0, increment=0,
                 close_order=CloseOrder.ALL, cooldown_ms=0):
        self.ledger, self.refresh_marks = ledger, refresh_marks
        self.sizing, self.limit_rule, self.deficit = sizing, limit_rule, deficit
        self.adl_ranking = adl_ranking
        self.fraction_ppm, self.band_ppm = fraction_ppm, band_ppm
        self.fraction_above = fraction_above
        self.takeover_below_ppm = takeover_below_ppm
        self.cooldown_rounds = cooldown_rounds
        self.cooldown_ms = cooldown_ms
        self.increment = increment
        self.liquidation_fee_ppm = liquidation_fee_ppm
        self.backstop_discount_ppm = backstop_discount_ppm
        self.round_cap, self.backstop = round_cap, backstop
        self.close_order = close_order
        self.now = 0             # the Engine's clock, ms (Engine.time; never goes back)
        self.queue: list[_Episode] = []
        self.round_number = 0    # the cascade's round, shown in records; 0 once the queue empties
        self.rounds_run = 0      # rounds that made progress, over the engine's life
        self.next_forced_id = -1  # forced orders take ids -1, -2, ...: never a user's
        self.progress = 0        # what the running round did (lots, records, cancels)
        self.bad_debt_noted = 0  # bad debt recorded by the entry being served
        self.records: list[tuple] = []
        self.fund_history: list[tuple[int, int]] = []  # (rounds_run, fund balance after it)
        self.i = 0               # the instrument of the position being served

    @property
    def instr(self) -> _Instrument:
        return self.ledger.instruments[self.i]

    @property
    def book(self) -> OrderBook:
        return self.instr.book

    @property
    def k(self) -> int:
        return self.instr.k

    def mark(self) -> int | None:
        """The mark of the instrument being served, every mark looked at afresh after whatever
        just changed a book."""
        self.refresh_marks()
        return self.instr.mark

    def value(self, price: int, qty: int) -> int:
        return self.ledger.value(self.i, price, qty)

    # ------------------------------------------------------------------------- rounds
    def run_round(self) -> bool:
        """Run one round (docs/liquidation.md); return whether it made progress.

        Progress is any lot filled or taken over, any shortfall covered, or any open order of an
        account entering liquidation cancelled. A round without progress is not counted: it
        leaves no records and keeps the cascade's round number.
        """
        self.progress = 0
        self.refresh_marks()
        self.enqueue_crossed()
        if not self.queue:
            self.round_number = 0
            return False
        cap_left = self.round_cap
        for episode in list(self.queue):
            if episode not in self.queue:
                continue
            served = self.serve(episode, cap_left)
            if served is None:
                break
            if cap_left is not None:
                cap_left -= served
        if not self.progress:
            return False
        self.fund_history.append((self.rounds_run, self.ledger.accounts[INSURANCE_FUND].collateral))
        self.rounds_run += 1
        self.round_number += 1
        return True

    def enqueue_crossed(self) -> None:
        """Accounts the marks made liquidatable (``_Ledger.crossed``), and the fund if it holds
        a position (in marked instruments), join the back of the queue in ascending owner id
        and lose their open orders. O(q + k log k) for q queued and k crossed, plus the
        multi-position accounts."""
        queued = {episode.owner for episode in self.queue}
        crossed = self.ledger.crossed()
        held = self.ledger.accounts[INSURANCE_FUND].held()
        if held and all(self.ledger.instruments[j].mark is not None for j in held):
            crossed.append(INSURANCE_FUND)
        for owner in sorted(set(crossed) - queued):
            self.queue.append(_Episode(owner, self.round_number))
            self.cancel_orders_of(owner)

    def close_sequence(self, a: _Account, is_fund: bool) -> tuple[list[int], bool]:
        """The positions of a served account in the order ``close_order`` closes them, and
        whether the account is looked at again before each after the first. The fund closes
        everything, instrument ascending."""
        held = a.held()
        if is_fund or self.close_order == CloseOrder.ALL:
            return held, not is_fund and self.sizing != Sizing.FULL
        if self.close_order == CloseOrder.PRO_RATA:
            return held, False
        ledger = self.ledger
        if self.close_order == CloseOrder.LARGEST_MM:
            key = {i: -ledger.margin_of(i, a.positions[i], ledger.instruments[i].mark)
                   for i in held}
        else:   # LARGEST_LOSS
            key = {i: ledger.unrealised(a, i, ledger.instruments[i].mark) for i in held}
        return sorted(held, key=lambda i: (key[i], i)), True

    def serve(self, episode: _Episode, cap_left: int | None) -> int | None:
        """Serve one queue entry, position by position in ``close_order`` (one forced order per
        instrument); return the notional used, or None to end the round's service."""
        ledger = self.ledger
        a = ledger.accounts[episode.owner]
        is_fund = a.owner == INSURANCE_FUND
        self.refresh_marks()
        if not a.held() or (not is_fund and not ledger.liquidatable(a)):
            self.queue.remove(episode)
            return 0
        fund = ledger.accounts[INSURANCE_FUND]
        fund_before, self.bad_debt_noted = fund.collateral, 0
        used = 0
        side = Side.SELL
        order, look_again = self.close_sequence(a, is_fund)
        stopped = False
        last = order[0]
        for n, i in enumerate(order):
            if n and look_again and not ledger.liquidatable(a):
                break
            self.i = i
            position_side = Side.SELL if a.positions[i].position > 0 else Side.BUY
            step = self.serve_position(episode, a, is_fund, position_side,
                                       None if cap_left is None else cap_left - used)
            if step is None:
                # The cap leaves this position no lot: the entry waits, but what the positions
                # served before it did (the fund's loss on them included) is settled below.
                stopped = True
                break
            side, last = position_side, i
            used += step
        self.i = last   # the shortfall and the fund's record name the last position served
        if not a.held() and a.collateral < 0 and not is_fund:
            if a.holdings:
                self.convert_collateral(episode, a)
            if a.collateral < 0:
                self.cover_shortfall(episode, a, side)
        # The fund can also lose by trading the positions it took over; when that takes it
        # (further) below zero, say so in a SHORTFALL record of its own.
        deeper = max(0, -fund.collateral) - max(0, -fund_before) - self.bad_debt_noted
        if deeper > 0:
            self.record(_Episode(INSURANCE_FUND, episode.generation), ForcedKind.SHORTFALL, side,
                        0, 0, 0, self.mark(), bad_debt=deeper)
        if stopped:
            return None   # the entry and everything behind it wait for the next round
        self.refresh_marks()
        if not a.held() or (not is_fund and not ledger.liquidatable(a)):
            self.queue.remove(episode)
        return used

    def serve_position(self, episode: _Episode, a: _Account, is_fund: bool, side: int,
                       cap_left: int | None) -> int | None:
        """One position's forced order (instrument ``self.i``): steps 2.2-2.7; return the
        notional used, or None when the round's cap leaves it no lot."""
        ledger = self.ledger
        i = self.i
        mark = self.mark()
        # Take-over below a share of MM (step 2.2): the whole position, off the book at once.
        taken = not is_fund and self.takes_over(a)
        held = abs(a.positions[i].position)
        # FRACTION's cooldowns (step 2.2): whole orders for a while after a partial step, in
        # rounds or in ms of the engine's clock (-1: none; the clock is never below 0).
        size = held if (is_fund or taken or episode.cooldown_end >= self.rounds_run
                        or self.now <= episode.cooldown_until) else self.size(a, mark)
        if not taken and cap_left is not None and self.value(mark, size) > cap_left:
            size = self.ledger.lots_within(self.i, mark, cap_left)
        if size == 0:
            return None
        bankruptcy = ledger.bankruptcy_price(a, i)
        filled = steps_used = 0
        if taken:
            self.take_over(episode, a, side, size, max(1, bankruptcy))
        else:
            filled = self.send_order(episode, a, is_fund, side, size, mark, bankruptcy)
            # INCREMENTAL (step 2.2): more steps, each at the mark the last one left.
            if filled and not is_fund and self.sizing == Sizing.INCREMENTAL:
                steps_used = self.incremental_steps(
                    episode, a, side,
                    None if cap_left is None else cap_left - self.value(mark, size))
        if filled and size < held and not is_fund and self.sizing == Sizing.FRACTION:
            if self.cooldown_rounds:
                episode.cooldown_end = min(INT64_MAX, self.rounds_run + self.cooldown_rounds)
            if self.cooldown_ms:
                episode.cooldown_until = min(INT64_MAX, self.now + self.cooldown_ms)
        return 0 if taken else self.value(mark, size) + steps_used

    def send_order(self, episode: _Episode, a: _Account, is_fund: bool, side: int, size: int,
                   mark: int, bankruptcy: int) -> int:
        """Steps 2.4-2.7: the forced order of ``size`` lots through the book, its fee, and what
        becomes of the lots it did not fill (take-over under BANKRUPTCY, the fund-covered lots'
        ADL under MARKET/BAND with Deficit.ADL); return the lots it filled."""
        limit_rule = self.limit_rule
        if is_fund and limit_rule == LimitRule.BANKRUPTCY:
            limit_rule = LimitRule.BAND if self.band_ppm else LimitRule.MARKET
        limit = rule_limit = self.order_limit(limit_rule, side, mark, bankruptcy)
        # Fund first, then ADL (step 2.4): under MARKET and BAND with Deficit.ADL the order may
        # not fill where its loss beyond the bankruptcy price would pass what the fund can pay.
        fund_bound = (self.deficit == Deficit.ADL and not is_fund
                      and limit_rule != LimitRule.BANKRUPTCY)
        if fund_bound:
            limit = self.fund_covered_limit(a, side, size, bankruptcy, limit)
        order_id = self.next_forced_id
        self.next_forced_id -= 1
        if limit is None:
            events = self.book.market(order_id, side, size, a.owner)
        else:
            events = self.book.ioc(order_id, side, limit, size, a.owner)
        self.ledger.settle_events(self.i, events)
        fills = [(ev.price, ev.qty) for ev in events
                 if ev.kind == EventKind.TRADE and ev.order_id == order_id]
        filled = sum(q for _, q in fills)
        value = sum(self.value(p, q) for p, q in fills)
        fee = 0
        if not is_fund and self.liquidation_fee_ppm and value:
            after = self.mark()
            fee = min(ceil_div(value * self.liquidation_fee_ppm, PPM),
                      max(0, self.ledger.equity_at(a, self.i, after)))
            if fee:
                self.ledger.charge(a, fee, to_fund=True)
        self.progress += filled
        if filled:
            self.record(episode, ForcedKind.ORDER, side, size, filled, value, mark,
                        fee=fee)
        remainder = size - filled
        if remainder and limit_rule == LimitRule.BANKRUPTCY:
            self.take_over(episode, a, side, remainder, max(1, bankruptcy))
        elif remainder and fund_bound and limit != rule_limit:
            blocked = self.blocked_depth(side, rule_limit, limit, remainder)
            if blocked:
                self.deleverage(episode, a, side, blocked, max(1, bankruptcy), self.mark())
        return filled

    def incremental_steps(self, episode: _Episode, a: _Account, side: int,
                          cap_left: int | None) -> int:
        """INCREMENTAL's steps after the first (step 2.2): the mark looked at afresh, the account
        checked at it, then an order of ``size`` lots cut to ``cap_left``, what is left of the
        round's cap (None: none); until the account is no longer liquidatable, the position is
        closed, a step fills nothing or the cap is spent. Return the notional at their marks the
        steps took from the cap (0 with no cap). A step that goes on filled a lot, so O(|q|)
        steps."""
        used = 0
        while True:
            mark = self.mark()
            if a.positions[self.i].position == 0 or not self.ledger.liquidatable(a):
                return used
            size = self.size(a, mark)
            if cap_left is not None:
                if self.value(mark, size) > cap_left - used:
                    size = self.ledger.lots_within(self.i, mark, cap_left - used)
                    if size == 0:
                        return used
                used += self.value(mark, size)
            bankruptcy = self.ledger.bankruptcy_price(a, self.i)
            if self.send_order(episode, a, False, side, size, mark, bankruptcy) == 0:
                return used

    def takes_over(self, a: _Account) -> bool:
        """Whether a served account is taken over whole instead of sent to the book: its equity
        at the marks below ``takeover_below_ppm`` of its MM, ``10**6 E < ppm x MM`` exactly.
        Never with the setting at 0."""
        return self.takeover_below_ppm > 0 and (
            PPM * self.ledger.equity(a) < self.takeover_below_ppm * self.ledger.maintenance(a))

    def order_limit(self, limit_rule: int, side: int, mark: int, bankruptcy: int) -> int | None:
        """The limit price of a forced order under ``limit_rule`` (step 2.4); None: MARKET."""
        if limit_rule == LimitRule.MARKET:
            return None
        if limit_rule == LimitRule.BAND:
            if side == Side.SELL:
                return max(1, ceil_div(mark * (PPM - self.band_ppm), PPM))
            return mark * (PPM + self.band_ppm) // PPM
        return max(1, bankruptcy)

    def fund_covered_limit(self, a: _Account, side: int, size: int, bankruptcy: int,
                           limit: int | None) -> int:
        """The forced order's limit under MARKET/BAND with Deficit.ADL: the tighter of the
        rule's ``limit`` and the worst price at which ``size`` lots lose no more beyond the
        bankruptcy price than the fund's balance and the account's equity there can pay."""
        fund = self.ledger.accounts[INSURANCE_FUND]
        budget = max(0, fund.collateral) + max(0, self.ledger.equity_at(a, self.i, bankruptcy))
        if self.ledger.inverse:
            # a long sells at p: it loses V(p) - V(b) beyond b, so V(p) <= V(b) + budget; a
            # short buys: V(b) - V(p) <= budget
            k, at_b = size * self.k, self.value(bankruptcy, size)
            if side == Side.SELL:
                covered = max(1, k // (at_b + budget + 1) + 1)
            else:
                need = at_b - budget
                covered = self.instr.max_price if need <= 0 else k // need
                covered = max(1, min(covered, self.instr.max_price))
        else:
            step = budget // (size * self.k)
            covered = max(1, bankruptcy - step) if side == Side.SELL else max(
                1, min(bankruptcy + step, self.instr.max_price))
        if side == Side.SELL:
            return covered if limit is None else max(limit, covered)
        return covered if limit is None else min(limit, covered)

    def blocked_depth(self, side: int, rule_limit: int | None, limit: int, wanted: int) -> int:
        """Lots (at most ``wanted``) resting against a forced order of ``side`` that the rule's
        own limit would take and the fund-covered ``limit`` did not."""
        opposite = -side
        if rule_limit is None:
            rule_limit = 1 if side == Side.SELL else self.instr.max_price
        within_rule = self.book.resting_qty(opposite, rule_limit)
        within_limit = self.book.resting_qty(opposite, limit)
        return min(wanted, within_rule - within_limit)

    def cancel_orders_of(self, owner: int) -> None:
        """An account entering liquidation loses its resting orders and armed stops (instrument
        ascending, id order within a book)."""
        for instrument in self.ledger.instruments:
            for order_id in instrument.book.orders_of(owner):
                instrument.book.cancel(order_id)
                # A cancel can move a MID mark: it counts as progress, so the run goes on to a
                # round that looks at the accounts the new mark crosses.
                self.progress += 1

    def size(self, a: _Account, mark: int) -> int:
        """Lots of a forced order on the position being served under the sizing rule."""
        q = abs(a.positions[self.i].position)
        if self.sizing == Sizing.FULL:
            return q
        if self.sizing == Sizing.FRACTION:
            if self.fraction_above and self.value(mark, q) <= self.fraction_above:
                return q
            return min(q, max(1, ceil_div(q * self.fraction_ppm, PPM)))
        if self.sizing == Sizing.TIER_STEP:
            return self.tier_step_size(q, mark)
        if self.sizing == Sizing.INCREMENTAL:
            # One step: increment's worth at the mark, at least a lot, at most the position.
            return min(q, max(1, self.ledger.lots_within(self.i, mark, self.increment)))
        return self.restore_size(a, mark)

    def tier_step_size(self, q: int, mark: int) -> int:
        """TIER_STEP: the fewest lots x with V(mark, q - x) at most the cap of the tier below
        that of V(mark, q) (the mark notional, whatever ``mm_basis``); all q in the lowest tier.
        O(tiers)."""
        tiers = self.instr.tiers
        tier = tiers.tier_of(self.value(mark, q))
        if tier == 0:
            return q
        return q - self.ledger.lots_within(self.i, mark, tiers.caps[tier - 1])

    def restore_size(self, a: _Account, mark: int) -> int:
        """RESTORE: the fewest lots x < |q| that ``restores`` says leave the account out of
        the queue, walking the resting book within the order's limit; all |q| if none. O(|q|)
        (the compiled twin skips the lots that cannot restore)."""
        position = a.positions[self.i].position
        q = abs(position)
        side = Side.SELL if position > 0 else Side.BUY
        limit = self.order_limit(self.limit_rule, side, mark,
                                 self.ledger.bankruptcy_price(a, self.i))
        equity = self.ledger.equity_at(a, self.i, mark)
        prices, depths = self.book.l2(2**62)[3:5] if side == Side.BUY else self.book.l2(
            2**62)[0:2]
        done = value = 0  # lots and value of the levels passed
        for price, depth in zip(prices.tolist(), depths.tolist(), strict=True):
            if limit is not None and (price < limit if side == Side.SELL else price > limit):
                break
            for x in range(done + 1, min(done + depth, q - 1) + 1):
                if self.restores(a, x, value + self.value(price, x - done), equity, mark):
                    return x
            done += depth
            value += self.value(price, depth)
            if done >= q - 1:
                break
        return q

    def restores(self, a: _Account, x: int, value: int, equity: int, mark: int) -> bool:
        """Whether closing x of the served position's q lots for ``value`` quote units leaves
        the equity at ``mark``, less the liquidation fee on them (capped at that equity, at
        least 0), not short (``trigger``) of the maintenance margin of the other positions and
        the q - x lots left (``mm_basis``: on their notional at the mark, or on the cost they
        keep, C - floor(C x / q))."""
        p = a.positions[self.i]
        q = abs(p.position)
        # the equity moves by the fills' value plus the value left at the mark less the value
        # held (linear: value - V(mark, x) exactly), with the side's and settlement's sign
        moved = value + self.value(mark, q - x) - self.value(mark, q)
        after = equity + (moved if p.position > 0 else -moved) * self.ledger.sign
        fee = min(ceil_div(value * self.liquidation_fee_ppm, PPM), max(0, after))
        left = copy(p)
        left.position = p.position - x if p.position > 0 else p.position + x
        left.cost = p.cost - p.cost * x // q
        margin = self.ledger.others(a, self.i)[1] + self.ledger.margin_of(self.i, left, mark)
        return not self.ledger.short_of(after - fee, margin)

    # ------------------------------------------------------------------------ records
    def record(self, episode, kind, side, qty, filled, notional, mark_before, *, fee=0,
               fund_cover=0, socialized=0, bad_debt=0, counterparty=NO_COUNTERPARTY):
        self.progress += qty + 1
        self.records.append(self.record_row(
            self.round_number, episode.generation, episode.owner, counterparty, qty, filled,
            notional, mark_before, self.mark(), fee, fund_cover, socialized, bad_debt, int(side),
            int(kind), self.i))

    def record_row(self, round_number, generation, owner, counterparty, qty, filled, notional,
                   mark_before, mark_after, fee, fund_cover, socialized, bad_debt, side, kind,
                   instrument):
        """A FORCED_DTYPE row: avg_price = notional / (filled k) (inverse: filled k / notional,
        the fills' harmonic mean) and the slippage against the mark before, each rounded once
        from its exact value (NaN when nothing filled, or an inverse notional of 0)."""
        k = self.ledger.instruments[instrument].k
        if filled and (notional or not self.ledger.inverse):
            avg_price = (Fraction(filled * k, notional) if self.ledger.inverse
                         else Fraction(notional, filled * k))
            avg = float(avg_price)
            slippage = float((mark_before - avg_price) if side == Side.SELL
                             else (avg_price - mark_before))
        else:
            avg, slippage = float("nan"), float("nan")
        return (round_number, generation, owner, counterparty, qty, filled, notional, avg,
                mark_before, mark_after, slippage, fee, fund_cover, socialized, bad_debt, side,
                kind, instrument)

    def records_array(self, first: int) -> np.ndarray:
        """The records from ``first`` on, FORCED_DTYPE rows, padding bytes zeroed (field by
        field into zeros: np.array would copy whatever its temporary buffer held into the
        padding)."""
        rows = self.records[first:]
        out = np.zeros(len(rows), dtype=FORCED_DTYPE)
        for i, row in enumerate(rows):
            out[i] = row
        return out

    def fund_history_array(self) -> np.ndarray:
        """The fund history as FUND_HISTORY_DTYPE rows (round, balance)."""
        return np.array(self.fund_history, dtype=FUND_HISTORY_DTYPE)

    # ---------------------------------------------------------------------- take-over
    def take_over(self, episode, a: _Account, side: int, remainder: int, price: int) -> None:
        """Rule 2: move an unfilled remainder off the book (backstop, fund, then ADL)."""
        ledger = self.ledger
        i = self.i
        mark = self.mark()
        direction = -side  # +1: the taker of the remainder buys (the account was long)
        if self.backstop is not None and self.backstop in ledger.accounts and remainder:
            backstop = ledger.accounts[self.backstop]
            room = self.instr.max_position - backstop.pos(i).position * direction
            qty = min(remainder, max(0, room))
            if qty:
                if direction > 0:
                    bs_price = max(1, price * (PPM - self.backstop_discount_ppm) // PPM)
                else:
                    bs_price = ceil_div(price * (PPM + self.backstop_discount_ppm), PPM)
                ledger.move(a, backstop, i, direction, bs_price, qty)
                self.record(episode, ForcedKind.BACKSTOP, side, qty, qty,
                            self.value(bs_price, qty), mark, counterparty=backstop.owner)
                remainder -= qty
        fund = ledger.accounts[INSURANCE_FUND]
        if remainder and self.fund_can_take(fund, direction, price, remainder):
            ledger.move(a, fund, i, direction, price, remainder)
            self.record(episode, ForcedKind.FUND_TAKEOVER, side, remainder, remainder,
                        self.value(price, remainder), mark, counterparty=INSURANCE_FUND)
            remainder = 0
        if remainder and self.deficit == Deficit.ADL:
            self.deleverage(episode, a, side, remainder, price, mark)

    def fund_can_take(self, fund, direction, price, qty) -> bool:
        """Whether the fund, after taking ``qty`` lots at ``price``, has equity for the MM of
        its positions (on ``mm_basis``; ``>=`` whatever the trigger: the fund is never
        liquidated)."""
        trial = fund.trial()
        self.ledger.apply_fill(trial, self.i, direction * qty, price)
        return self.ledger.equity(trial) >= self.ledger.maintenance(trial)

    # ---------------------------------------------------------------------------- ADL
    def deleverage(self, episode, a: _Account, side: int, remainder: int, price: int,
                   mark: int) -> int:
        """ADL: the remainder goes to the ranked opposing accounts at the bankruptcy ``price``;
        return the lots left. A candidate that would close worse than its cap (``adl_price``)
        is passed over while others remain, then closes at its cap, best ranked first."""
        direction = -side  # +1: the counterparty buys (the account was long)
        capped = []
        for other in self.ranked(a, mark):
            qty = min(remainder, abs(other.positions[self.i].position))
            if self.adl_price(other, direction, qty, price, mark) != price:
                capped.append(other)
                continue
            remainder = self.adl_close(episode, a, other, side, qty, price, mark, remainder)
            if remainder == 0:
                return 0
        for other in capped:
            qty = min(remainder, abs(other.positions[self.i].position))
            at = self.adl_price(other, direction, qty, price, mark)
            remainder = self.adl_close(episode, a, other, side, qty, at, mark, remainder)
            if remainder == 0:
                break
        return remainder

    def adl_close(self, episode, a, other, side, qty, price, mark, remainder) -> int:
        self.ledger.move(a, other, self.i, -side, price, qty)
        self.record(episode, ForcedKind.ADL, side, qty, qty, self.value(price, qty), mark,
                    counterparty=other.owner)
        return remainder - qty

    def adl_price(self, other: _Account, direction: int, qty: int, price: int,
                  mark: int) -> int:
        """Where ``other`` closes ``qty`` lots against the bankruptcy ``price``: never worse
        for it than its cap, the better of the mark and the price that realises no loss on
        those lots (its released cost / (qty k), floor for a buy, ceil for a sell)."""
        p = other.positions[self.i]
        released = p.cost * qty // abs(p.position)
        k = qty * self.k
        if direction > 0:   # other is short and buys back
            # inverse: no loss while V(p) >= released, i.e. p <= k / released
            even = (k // released if released else self.instr.max_price) if self.ledger.inverse \
                else released // k
            return min(price, max(mark, even))
        # inverse: no loss while V(p) <= released, i.e. p > k / (released + 1)
        even = k // (released + 1) + 1 if self.ledger.inverse else ceil_div(released, k)
        return max(price, min(mark, even))

    def ranked(self, a: _Account, mark: int) -> list[_Account]:
        """Accounts opposing a's position in the served instrument with positive equity, best
        ranked first (``adl_ranking``), ties by owner id. O(n log n)."""
        i = self.i
        long = a.positions[i].position > 0
        ranked = []
        for other in self.ledger.accounts.values():
            p = other.positions.get(i)
            if other is a or other.owner == INSURANCE_FUND or p is None or p.position == 0:
                continue
            if (p.position > 0) == long:
                continue
            equity = self.ledger.equity(other)
            if equity <= 0 or p.cost == 0:
                continue
            ranked.append((-self.adl_key(other, equity, mark), other.owner, other))
        ranked.sort(key=lambda row: (row[0], row[1]))
        return [row[2] for row in ranked]

    def adl_key(self, other: _Account, equity: int, mark: int) -> Fraction:
        """The ranking key of an opposing account with positive equity (docs/liquidation.md):
        its position in the served instrument, its account's equity and collateral."""
        p = other.positions[self.i]
        profit = self.ledger.unrealised(other, self.i, mark)
        if self.adl_ranking == AdlRanking.PNL_RATIO:
            return Fraction(profit, p.cost)
        notional = self.value(mark, abs(p.position))
        if self.adl_ranking == AdlRanking.BINANCE:
            margin = self.ledger.margin_of(self.i, p, mark)
            return Fraction(max(0, profit) * margin, max(1, other.collateral) * equity)
        if profit >= 0:
            return Fraction(profit * notional, p.cost * equity)
        return Fraction(profit * equity, p.cost * notional)

    # ---------------------------------------------------------------------- shortfall
    def convert_collateral(self, episode, a: _Account) -> None:
        """A flat account's negative collateral met by selling its collateral assets to the
        venue, asset ascending, each at its instrument's mark less its conversion discount,
        until the deficit is covered (Binance's auto-exchange in a liquidation; an asset whose
        instrument has no mark cannot be sold). One CONVERSION record per asset sold."""
        ledger = self.ledger
        served = self.i
        for n in sorted(a.holdings):
            if a.collateral >= 0:
                break
            part = ledger.assets[n]
            i = part["instrument"]
            if ledger.instruments[i].spot_asset is not None:
                self.i = i
                self.sell_through_book(episode, a, n)
                continue
            mark = ledger.instruments[i].mark
            if not mark:
                continue
            units, paid = conversion(-a.collateral, a.holdings[n], mark, part["num"],
                                     part["den"], part["discount_ppm"])
            a.holdings[n] -= units
            if not a.holdings[n]:
                del a.holdings[n]
            a.collateral += paid
            ledger.converted[n][0] += units
            ledger.converted[n][1] += paid
            self.i = i
            self.progress += units + 1
            self.records.append(self.record_row(
                self.round_number, episode.generation, a.owner, NO_COUNTERPARTY, units, 0, paid,
                mark, mark, 0, 0, 0, 0, int(Side.SELL), int(ForcedKind.CONVERSION), i))
        self.i = served
        ledger.reindex(a)

    def sell_through_book(self, episode, a: _Account, n: int) -> None:
        """Sell a's asset ``n`` through its spot book (the instrument being served): a forced
        market sell of the fewest whole lots whose value at the resting bids covers the
        deficit, at most the lots a holds; a CONVERSION record with the lots sent and filled and
        the fills' value. Units short of a lot stay; so does the deficit the bids cannot
        cover. O(levels)."""
        instr = self.instr
        held = a.holdings.get(n, 0) // instr.units_per_lot
        deficit, lots, value = -a.collateral, 0, 0
        prices, depths = self.book.l2(2**62)[0:2]
        for price, depth in zip(prices.tolist(), depths.tolist(), strict=True):
            if value >= deficit or lots == held:
                break
            per = self.value(price, 1)
            take = min(depth, held - lots, ceil_div(deficit - value, per))
            lots += take
            value += take * per
        if not lots:
            return
        mark = self.mark()
        order_id = self.next_forced_id
        self.next_forced_id -= 1
        events = self.book.market(order_id, Side.SELL, lots, a.owner)
        self.ledger.settle_events(self.i, events)
        fills = [(ev.price, ev.qty) for ev in events
                 if ev.kind == EventKind.TRADE and ev.order_id == order_id]
        filled = sum(q for _, q in fills)
        self.progress += filled
        self.record(episode, ForcedKind.CONVERSION, Side.SELL, lots, filled,
                    sum(self.value(p, q) for p, q in fills), mark)

    def cover_shortfall(self, episode, a: _Account, side: int) -> None:
        """A flat account with negative collateral: the fund, then the deficit rule, cover it."""
        fund = self.ledger.accounts[INSURANCE_FUND]
        shortfall = -a.collateral
        cover = min(shortfall, max(0, fund.collateral))
        fund.collateral -= cover
        rest = shortfall - cover
        socialized = 0
        if rest and self.deficit == Deficit.SOCIALIZE:
            socialized = self.socialize(a, rest)
            rest -= socialized
        fund.collateral -= rest  # bad debt: the fund goes negative by what nobody covered
        self.bad_debt_noted += rest
        a.collateral = 0
        self.ledger.reindex(a)
        self.record(episode, ForcedKind.SHORTFALL, side, 0, 0, 0, self.mark(),
                    fund_cover=cover, socialized=socialized, bad_debt=rest)

    def socialize(self, bankrupt: _Account, amount: int) -> int:
        """Charge ``amount`` pro rata to unrealised profits, each account's summed over its
        positions at their marks (largest remainder); return what was charged."""
        self.refresh_marks()
        ledger = self.ledger
        profits = []
        for other in sorted(ledger.accounts.values(), key=lambda acc: acc.owner):
            if other is bankrupt or other.owner == INSURANCE_FUND:
                continue
            profit = sum(ledger.unrealised(other, j, ledger.instruments[j].mark)
                         for j in other.held())
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
            self.ledger.reindex(other)
            charged += charge
        return charged

    # ------------------------------------------------------------------ saved state
    def queue_rows(self) -> list[tuple[int, int, int]]:
        """(owner, generation, cooldown_end, cooldown_until) per queued account, front
        first."""
        return [(e.owner, e.generation, e.cooldown_end, e.cooldown_until) for e in self.queue]

    def record_rows(self) -> list[tuple]:
        """The records without their derived avg_price and slippage (RECORD_FIELDS)."""
        return [tuple(row[i] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 16, 17))
                for row in self.records]

    def fund_rows(self) -> list[tuple[int, int]]:
        """(round, balance) per round that made progress."""
        return list(self.fund_history)

    def load(self, state: dict) -> None:
        """A checked state into a fresh liquidator."""
        self.queue = [_Episode(*row) for row in state["queue"]]
        self.records = [self.record_row(*row) for row in state["records"]]
        self.fund_history = list(state["fund_history"])
        self.round_number, self.rounds_run = state["round"], state["rounds_run"]
        self.next_forced_id = state["next_forced_id"]
        self.now = state["time"]
