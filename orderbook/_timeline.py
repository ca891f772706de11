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

from .metrics import LIQUIDATION_KINDS

if TYPE_CHECKING:
    from ._market import Market

__all__ = ["Timeline", "TradeLog"]

# Priorities of the events due at one time (lower first).
SHOCK, ORDER, LIQUIDATE, RECOVER, REFILL, SAMPLE = range(6)

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
        for seat in self.seats:
            seat.start(self)
        for flow in self.flows:
            flow.start(self)
        while self.heap:
            time, _, _, action, args = heapq.heappop(self.heap)
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

    def trade_times(self) -> list[np.ndarray]:
        """Each instrument's trade times (ms), for the trades of the run."""
        return [self.trades.time(i) for i in range(self.count)]
