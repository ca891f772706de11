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


def notify(source, seats) -> None:
    """Tell ``seats`` (agents' seats) what the last event did: the trades ``source.trades``
    (a TradeLog) has not read yet, their fills, and the marks of ``source.engine``'s
    ``source.count`` instruments that moved from ``source.marks`` (updated); again after what
    they did in answer, until nothing new happens. ``source`` is the run (a Timeline, or the
    testing harness), whose ``now`` stamps the trades. RuntimeError after MAX_NOTICE_PASSES
    passes: agents that answer each other's trades forever would never let the clock move."""
    for _ in range(MAX_NOTICE_PASSES):
        trades = source.trades.take(source.now)
        marks = {}
        for i in range(source.count):
            mark = source.engine.mark_price(i)
            if mark != source.marks[i]:
                source.marks[i] = marks[i] = mark
        if not (trades or marks) or not seats:
            return
        for seat in seats:
            seat.notice(source, trades, marks)
    raise RuntimeError(f"agents were still trading after {MAX_NOTICE_PASSES} rounds of "
                       f"notices at {source.now} ms: an agent answering every trade with "
                       f"another never lets the clock move")


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


class Schedule:
    """The heap of a run's events, shared by the venues of a market: events ordered by (time,
    priority, arrival), and the engines it keeps on its clock."""

    def __init__(self, end: int):
        self.end = end          # the last time an event may be due (ms)
        self.heap: list = []
        self.arrivals = 0
        self.now = 0

    def push(self, time: int, priority: int, action, args) -> None:
        if time <= self.end:
            self.arrivals += 1
            heapq.heappush(self.heap, (time, priority, self.arrivals, action, args))

    def run(self, engines, after) -> None:
        """Pop and run the events in order, advancing ``engines`` to each new time (their
        cooldowns in ms, Rules.cooldown_ms, run on the run's clock) and calling ``after()``
        after each."""
        while self.heap:
            time, _, _, action, args = heapq.heappop(self.heap)
            if time != self.now:
                for eng in engines:
                    eng.advance_to(time)
            self.now = time
            action(*args)
            after()


class Timeline:
    """One run of a built ``market`` (one venue) over ``steps`` steps of its scenario's clock.

    ``agents`` are :class:`~orderbook.agents.Agent` objects already given their accounts
    (``AgentSeat`` pairs from ``orderbook.agents.seat``); ``flows`` are ``(flow, owner)``
    pairs whose rows are resolved against the book when they arrive. In a market of several
    venues (:class:`MarketTimeline`) each venue is a Timeline on the market's ``schedule``,
    named ``venue``, whose liquidator the market runs, and ``indexes`` gives the value of the
    market's index feeding an instrument ({instrument: a function returning ticks or None}).
    ``tape`` (an ``orderbook.ladder.BookTape``) records instrument 0's book around the shock,
    after each liquidator round that closed positions and at each step's end.
    """

    #: Called with the number of steps done after each step's sample (a progress hook), or
    #: None.
    on_step = None

    def __init__(self, market: Market, steps: int, liquidator: bool, seats=(), flows=(), *,
                 schedule: Schedule | None = None, venue: str | None = None, indexes=None,
                 world=None, tape=None):
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
        self.schedule = Schedule(self.end) if schedule is None else schedule
        self.venue = venue
        self.indexes = indexes or {}
        self.world = world      # the MarketTimeline of a market run (AgentView.venue reads it)
        self.trades = TradeLog(self.engine, self.count)
        self.marks = [self.engine.mark_price(i) for i in range(self.count)]
        self.tape = tape

    @property
    def now(self) -> int:
        """The run's time (ms)."""
        return self.schedule.now

    # -------------------------------------------------------------------------- schedule
    def at(self, time: int, priority: int, action, *args) -> None:
        """Schedule ``action(*args)`` at ``time`` (ms): orders in block mode wait for the end
        of their block."""
        block = self.clock.block_ms
        if priority == ORDER and block is not None:
            time = -(-time // block) * block
        self.schedule.push(time, priority, action, args)

    # ------------------------------------------------------------------------------- run
    def run(self):
        """Run to the end; return (series (instruments, steps) SERIES_DTYPE, the run's
        forced-order records, the time of each record in ms)."""
        self.begin()
        if self.liquidator:
            self.at(0, LIQUIDATE, self._liquidate)
        self.trades.take(0)   # the trades before the run (the first print) are nobody's news
        self.start()
        self.schedule.run((self.engine,), self._notify)
        return self.finish()

    def begin(self) -> None:
        """Schedule the steps' shock, recovery, refill and sample."""
        from .scenario import SERIES_DTYPE

        self.series = np.zeros((self.count, self.steps), dtype=SERIES_DTYPE)
        self.liquidated = [0] * self.count
        self.first = self.engine.forced_order_count
        self.record_times: list[np.ndarray] = []
        for step in range(self.steps):
            t = step * self.clock.step_ms
            self.at(t, SHOCK, self._shock, step)
            self.at(t, RECOVER, self._recover, step)
            self.at(t, REFILL, self._refill)
            self.at(t, SAMPLE, self._sample, step)

    def start(self) -> None:
        """Start the flows, the agents (their ``on_start``) and funding."""
        for flow in self.flows:
            flow.start(self)
        for seat in self.seats:
            seat.start(self)
        self._start_funding()

    def finish(self):
        """(series, the run's forced-order records, the time of each in ms)."""
        # The log is read once, here, so its bytes are those of forced_orders() (padding
        # included).
        records = self.engine.forced_orders(start=self.first)
        times = (np.concatenate(self.record_times) if self.record_times
                 else np.zeros(0, dtype=np.int64))
        if len(times) != len(records):
            raise RuntimeError(f"the engine made {len(records)} forced-order records, the "
                               f"liquidator's rounds returned {len(times)}")
        return self.series, records, times

    # ---------------------------------------------------------------------------- events
    def _shock(self, step: int) -> None:
        tape = self.tape if step == 0 else None
        if tape is not None:
            tape.shock(self.now, done=False)
        self.market.shock_at(step)
        if tape is not None:
            tape.shock(self.now, done=True)

    def _recover(self, step: int) -> None:
        self.market.recover(step)

    def _refill(self) -> None:
        self.market.refill()

    def _liquidate(self) -> None:
        self.liquidation_round()
        self.at(self.now + self.clock.cadence_ms, LIQUIDATE, self._liquidate)

    def liquidation_round(self) -> None:
        """One wake-up of the venue's liquidator (``liquidator_rounds`` rounds), its records
        stamped with the time."""
        new = self.engine.liquidate(max_rounds=self.clock.liquidator_rounds)
        # positions closed, as the summary counts them (a collateral conversion is not)
        closed = new[np.isin(new["kind"], LIQUIDATION_KINDS)] if len(new) else new
        if self.tape is not None:
            self.tape.round(self.now, len(closed) > 0)
        if len(new):
            self.record_times.append(np.full(len(new), self.now, dtype=np.int64))
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

    def _sample(self, step: int) -> None:
        if self.tape is not None:
            self.tape.step_end(self.now)
        for i in range(self.count):
            self.series[i, step] = self.market.snapshot(step, self.liquidated[i], i,
                                                        time=self.now)
        self.liquidated = [0] * self.count
        if self.on_step is not None:
            self.on_step(step + 1)

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
        notify(self, self.seats)

    def index(self, instrument: int) -> int:
        """An instrument's index now (ticks): the value of the market's index feeding it (a
        market of venues, once that index has a price), else its index path at this step
        where the scenario gives one, else its starting mid; what funding samples and agents
        read."""
        feed = self.indexes.get(instrument)
        if feed is not None:
            value = feed()
            if value is not None:
                return int(value)
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


class MarketTimeline:
    """A run of several venues (``orderbook.market.Market`` ``market`` over the built venues
    ``lanes``: {name: Timeline on one shared Schedule}) on one clock.

    Each venue keeps its own events (shock, its agents' and flows' orders, recovery, refill,
    funding, samples) and its own liquidator cadence (its scenario's ``[clock]``). At every time
    one or more liquidators are due, a market round runs: the indexes from the books, the due
    venues' liquidators (in the venues' order; only those in ``liquidating``), the indexes
    again, then every arbitrageur. With every venue on the default clock that is the market's
    step model exactly (``orderbook.Market.step``). The indexes are also read after each step's
    sample (``index_values``).
    """

    #: Called with the number of steps done after each step's index sample (the last event of
    #: the step: every venue's sample came before it), or None.
    on_step = None

    def __init__(self, market, schedule: Schedule, step_ms: int, liquidating, steps: int):
        self.market = market
        self.lanes: dict = {}   # {venue name: Timeline}, filled by the caller
        self.schedule = schedule
        self.step_ms = step_ms
        self.liquidating = set(liquidating)
        self.steps = steps
        self.index_values = {ix.name: np.zeros(steps, dtype=np.int64) for ix in market.indexes}

    @property
    def now(self) -> int:
        return self.schedule.now

    def run(self) -> dict:
        """Run to the end; {venue: (series, records, record times)} as Timeline.run."""
        for lane in self.lanes.values():
            lane.begin()
        for step in range(self.steps):
            self.schedule.push(step * self.step_ms, SAMPLE, self._sample_indexes, (step,))
        self.due = {name: 0 for name in self.lanes}
        self.schedule.push(0, LIQUIDATE, self._round, ())
        for lane in self.lanes.values():
            lane.trades.take(0)
        for lane in self.lanes.values():
            lane.start()
        self.schedule.run([lane.engine for lane in self.lanes.values()], self._notify)
        return {name: lane.finish() for name, lane in self.lanes.items()}

    def _round(self) -> None:
        now, market = self.now, self.market
        market.refresh_indexes()
        for name, lane in self.lanes.items():
            if self.due[name] == now and name in self.liquidating:
                lane.liquidation_round()
        market.refresh_indexes()
        for arbitrageur in market.arbitrageurs:
            arbitrageur.act(market)
        for name, lane in self.lanes.items():
            if self.due[name] == now:
                self.due[name] = now + lane.clock.cadence_ms
        self.schedule.push(min(self.due.values()), LIQUIDATE, self._round, ())

    def _sample_indexes(self, step: int) -> None:
        for ix in self.market.indexes:
            self.index_values[ix.name][step] = ix.index.value or 0
        if self.on_step is not None:
            self.on_step(step + 1)

    def _notify(self) -> None:
        for lane in self.lanes.values():
            lane._notify()
