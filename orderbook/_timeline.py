"""The event loop of a scenario run: everything that acts is an event at a time in ms.

A :class:`Timeline` holds a heap of events ordered by (time, priority, arrival). At one time
the shock goes first, then orders from agents and flows, then the liquidator, then the value
trader's recovery and the refill, then the series sample; that order at ``step * step_ms``
with the liquidator every step is exactly the step model the runner had before it had a
clock, so a scenario without agents, flows or a finer clock gives the same events.
(docs/time.md)
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from .events import ForcedKind
from .metrics import LIQUIDATION_KINDS

if TYPE_CHECKING:
    from ._market import Market

__all__ = ["Timeline", "TradeLog"]

# Priorities of the events due at one time (lower first).
SHOCK, ORDER, LIQUIDATE, RECOVER, REFILL, FUNDING, SAMPLE = range(7)

#: Passes of trade and mark notices after one event before the run gives up: agents that
#: answer each other's trades forever would otherwise never let the clock move.
MAX_NOTICE_PASSES = 1_000


class TradeLog:
    """Follows an engine's trade logs, stamping each new trade with the time it was read.

    ``take(now)`` reads the trades settled since the last call (each instrument's), records
    ``now`` for each and returns them as {instrument: EVENT_DTYPE rows} (only instruments with
    new trades)."""

    def __init__(self, engine, instruments: int):
        self.engine = engine
        self.counts = [0] * instruments
        self.times: list[list[np.ndarray]] = [[] for _ in range(instruments)]

    def take(self, now: int) -> dict:
        new = {}
        for i, count in enumerate(self.counts):
            rows = self.engine.trades(i, start=count)
            if len(rows):
                self.counts[i] = count + len(rows)
                self.times[i].append(np.full(len(rows), now, dtype=np.int64))
                new[i] = rows
        return new

    def time(self, instrument: int) -> np.ndarray:
        """The time (ms) of each trade of ``instrument`` read since this log began."""
        parts = self.times[instrument]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class Timeline:
    """One run of a built ``market`` over ``steps`` steps of its scenario's clock.

    ``agents`` are :class:`~orderbook.agents.Agent` objects already given their accounts
    (``AgentSeat`` pairs from ``orderbook.agents.seat``); ``flows`` are ``(flow, owner)``
    pairs whose rows are resolved against the book when they arrive.
    """

    def __init__(self, market: Market, steps: int, liquidator: bool, seats=(), flows=()):
        self.forced_lots = {}   # (instrument, side): lots forced orders filled since the plan
        self.market = market
        self.engine = market.engine
        self.clock = market.scenario.clock
        self.steps = steps
        self.liquidator = liquidator
        self.seats = list(seats)
        self.flows = list(flows)
        self.count = len(market.contracts)
        self.end = (steps - 1) * self.clock.step_ms
        self.heap: list = []
        self.arrivals = 0
        self.now = 0
        self.trades = TradeLog(self.engine, self.count)
        self.marks = [self.engine.mark_price(i) for i in range(self.count)]

    # -------------------------------------------------------------------------- schedule
    def at(self, time: int, priority: int, action, *args) -> None:
        """Schedule ``action(*args)`` at ``time`` (ms): orders in block mode wait for the end
        of their block."""
        block = self.clock.block_ms
        if priority == ORDER and block is not None:
            time = -(-time // block) * block
        if time <= self.end:
            self.arrivals += 1
            heapq.heappush(self.heap, (time, priority, self.arrivals, action, args))

    # ------------------------------------------------------------------------------- run
    def run(self):
        """Run to the end; return (series (instruments, steps) SERIES_DTYPE, the run's
        forced-order records, the time of each record in ms)."""
        from .scenario import SERIES_DTYPE

        clock, eng = self.clock, self.engine
        self.series = np.zeros((self.count, self.steps), dtype=SERIES_DTYPE)
        self.liquidated = [0] * self.count
        self.first = len(eng.forced_orders())
        self.record_times: list[np.ndarray] = []
        for step in range(self.steps):
            t = step * clock.step_ms
            self.at(t, SHOCK, self._shock, step)
            self.at(t, RECOVER, self._recover, step)
            self.at(t, REFILL, self._refill)
            self.at(t, SAMPLE, self._sample, step)
        if self.liquidator:
            self.at(0, LIQUIDATE, self._liquidate)
        self.trades.take(0)   # the trades before the run (the first print) are nobody's news
        for flow in self.flows:
            flow.start(self)
        for seat in self.seats:
            seat.start(self)
        self._start_funding()
        while self.heap:
            time, _, _, action, args = heapq.heappop(self.heap)
            if time != self.now:
                # the engine keeps the same time: its cooldowns in ms (Rules.cooldown_ms) run
                # on the run's clock
                eng.advance_to(time)
            self.now = time
            action(*args)
            self._notify()
        # The log is read once, here, so its bytes are those of forced_orders() (padding
        # included).
        records = eng.forced_orders()[self.first:]
        times = (np.concatenate(self.record_times) if self.record_times
                 else np.zeros(0, dtype=np.int64))
        if len(times) != len(records):
            raise RuntimeError(f"the engine made {len(records)} forced-order records, the "
                               f"liquidator's rounds returned {len(times)}")
        return self.series, records, times

    # ---------------------------------------------------------------------------- events
    def _shock(self, step: int) -> None:
        self.market.shock_at(step)

    def _recover(self, step: int) -> None:
        self.market.recover(step)

    def _refill(self) -> None:
        self.market.refill()

    def _liquidate(self) -> None:
        clock = self.clock
        new = self.engine.liquidate(max_rounds=clock.liquidator_rounds)
        if len(new):
            self.record_times.append(np.full(len(new), self.now, dtype=np.int64))
            # positions closed, as the summary counts them (a collateral conversion is not)
            closed = new[np.isin(new["kind"], LIQUIDATION_KINDS)]
            if self.flows:
                through = new[new["kind"] == ForcedKind.ORDER]
                for i, side, lots in zip(through["instrument"].tolist(), through["side"].tolist(),
                                         through["filled"].tolist(), strict=True):
                    key = (i, side)
                    self.forced_lots[key] = self.forced_lots.get(key, 0) + lots
            if self.count == 1:
                self.liquidated[0] += int(closed["notional"].sum())
            else:
                for i in range(self.count):
                    self.liquidated[i] += int(closed["notional"][closed["instrument"] == i].sum())
        self.at(self.now + clock.cadence_ms, LIQUIDATE, self._liquidate)

    def _sample(self, step: int) -> None:
        for i in range(self.count):
            self.series[i, step] = self.market.snapshot(step, self.liquidated[i], i,
                                                        time=self.now)
        self.liquidated = [0] * self.count

    # ---------------------------------------------------------------------------- funding
    def _start_funding(self) -> None:
        """A FundingClock per perpetual when the scenario pays funding (Scenario.funding)."""
        from .funding import FundingClock

        self.funding_first = len(self.engine.funding_history())
        rule = self.market.scenario.funding.rule()
        self.funding_clocks = {}
        if rule is None:
            return
        for c in self.market.contracts:
            if not self.engine.instruments[c.index].spot:
                self.funding_clocks[c.index] = FundingClock(rule)
        if self.funding_clocks:
            self.at(0, FUNDING, self._funding)

    def _funding(self) -> None:
        """Pay the intervals that ended, then offer this time's premium sample."""
        for i, clock in self.funding_clocks.items():
            rate = clock.due(self.now)
            if rate is not None and self.engine.mark_price(i) is not None:
                self.engine.settle_funding(rate, instrument=i)
            mark = self.engine.mark_price(i)
            if mark is not None:
                clock.sample(self.now, mark, self.index(i))
        rule = next(iter(self.funding_clocks.values())).rule
        self.at(self.now + rule.sample_ms, FUNDING, self._funding)

    def funding(self) -> np.ndarray:
        """The run's funding payments (FUNDING_DTYPE)."""
        return self.engine.funding_history()[self.funding_first:]

    # ---------------------------------------------------------------------------- notices
    def _notify(self) -> None:
        """Tell the agents what the last event did (trades, their fills, mark changes),
        again after what they did in answer, until nothing new happens."""
        for _ in range(MAX_NOTICE_PASSES):
            trades = self.trades.take(self.now)
            marks = {}
            for i in range(self.count):
                mark = self.engine.mark_price(i)
                if mark != self.marks[i]:
                    self.marks[i] = marks[i] = mark
            if not (trades or marks) or not self.seats:
                return
            for seat in self.seats:
                seat.notice(self, trades, marks)
        raise RuntimeError(f"agents were still trading after {MAX_NOTICE_PASSES} rounds of "
                           f"notices at {self.now} ms: an agent answering every trade with "
                           f"another never lets the clock move")

    def index(self, instrument: int) -> int:
        """An instrument's index now (ticks): its index path at this step where the scenario
        gives one, else its starting mid; what funding samples and agents read."""
        c = self.market.contracts[instrument]
        path = c.index_path
        if not len(path):
            return c.mid0
        return int(path[min(self.now // self.clock.step_ms, len(path) - 1)])

    def volatility_ppm(self, instrument: int, step: int) -> float:
        """The mid's realised volatility before ``step``, per square-root second in ppm: the
        root mean square of the one-step log returns of the series' mids over the last
        minute (at least two rows), scaled to one second. 0 with fewer rows."""
        step_ms = self.clock.step_ms
        first = max(0, step - max(2, -(-60_000 // step_ms)) - 1)
        mids = self.series["mid"][instrument, first:step]
        mids = mids[mids > 0]
        if len(mids) < 3:
            return 0.0
        returns = np.diff(np.log(mids))
        return float(np.sqrt(np.mean(returns**2) * 1_000 / step_ms) * 1e6)

    def trade_times(self) -> list[np.ndarray]:
        """Each instrument's trade times (ms), for the trades of the run."""
        return [self.trades.time(i) for i in range(self.count)]


class FlowSeat:
    """A background order flow in a run: its exempt account, its stream, and the rows it
    sends, each priced against the live book when it arrives (``flows.limit_price``)."""

    def __init__(self, spec, owner: int, seed: int):
        self.spec = spec
        self.owner = owner
        self.stream = spec.model.start(seed)
        self.sent = 0      # rows that reached the engine
        self.skipped: dict[str, int] = {}   # rows that could not be placed, by reason

    def start(self, timeline) -> None:
        eng = timeline.engine
        eng.add_account(self.owner, 10**17, exempt=True)
        for step in range(timeline.steps):
            timeline.at(step * timeline.clock.step_ms, SHOCK, self._plan, timeline, step)

    def _plan(self, timeline, step: int) -> None:
        """Draw the rows of [t, t + step_ms) from the state of the book now."""
        from .flows import MarketState

        i = self.spec.instrument
        book = timeline.engine.books[i]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            bid = ask = None   # never: a book does not rest crossed
        forced = timeline.forced_lots
        state = MarketState(
            time=timeline.now, best_bid=bid, best_ask=ask,
            volatility_ppm=timeline.volatility_ppm(i, step),
            forced_sell_lots=forced.pop((i, -1), 0), forced_buy_lots=forced.pop((i, 1), 0),
            own_orders=len(book.orders_of(self.owner)))
        rows = self.stream.between(timeline.now, timeline.now + timeline.clock.step_ms, state)
        for row in rows:
            timeline.at(int(row["time"]), ORDER, self._send, timeline, row)

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _send(self, timeline, row) -> None:
        from .events import Kind
        from .flows import limit_price

        eng, i = timeline.engine, self.spec.instrument
        book = eng.books[i]
        kind = int(row["kind"])
        if kind == Kind.CANCEL:
            live = book.orders_of(self.owner)
            if not live:
                self._skip("nothing_to_cancel")
                return
            eng.cancel(live[min(len(live) - 1, int(row["pick"] * len(live)))], instrument=i)
        elif kind == Kind.MARKET:
            eng.market(timeline.market._id(), int(row["side"]), int(row["qty"]), self.owner,
                       instrument=i)
        else:
            price = limit_price(row, book.best_bid(), book.best_ask())
            if price is None:
                self._skip("unplaceable")
                return
            eng.limit(timeline.market._id(), int(row["side"]), price, int(row["qty"]),
                      self.owner, instrument=i)
        self.sent += 1

    def summary(self, engine) -> dict:
        """What the flow did: rows sent and skipped, and its position at the end (lots)."""
        info = engine.account(self.owner)
        position = next((p.position for p in info.positions
                         if p.instrument == self.spec.instrument), 0)
        return {"owner": self.owner, "kind": type(self.spec.model).__name__,
                "instrument": self.spec.instrument, "sent": self.sent,
                "skipped": dict(self.skipped), "position": int(position)}


def flow_seats(flows, seed: int) -> list[FlowSeat]:
    """Seats for a scenario's flows (flow n: owner SCENARIO_FLOWS + n, its stream seeded from
    the scenario's seed, the flow's own and n, so that a sweep over seeds varies the flow)."""
    from .events import SCENARIO_FLOWS

    out = []
    for n, spec in enumerate(flows):
        entropy = np.random.SeedSequence([seed, spec.model.seed, n]).generate_state(2)
        out.append(FlowSeat(spec, SCENARIO_FLOWS + n,
                            int(entropy[0]) << 31 | int(entropy[1]) >> 1))
    return out
