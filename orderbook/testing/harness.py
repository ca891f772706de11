"""An agent harness: your own agent against random order flow on an Engine, checked every step.

The steps are plain values (:class:`FlowOrder`, :class:`Wait`, :class:`IndexPrice`,
:class:`Liquidate`), written by hand or drawn by :func:`orderbook.strategies.flow_steps`. A
:class:`AgentHarness` applies them one by one to an ``Engine``. What a step means is decided
when it is applied, against the live book: a new order of the flow gets a fresh order id, and a
CANCEL or AMEND picks among the flow's orders still live at that moment (``FlowOrder.pick``).
So a sequence stays valid whatever the agent's own orders did to the book in between, and no
step needs its KeyError or ValueError swallowed: any exception is a finding.

The agent runs as it does in ``orderbook.run`` (docs/agents.md): it gets its own account,
``on_start``, ``on_timer`` every ``every_ms`` of the harness's clock (which :class:`Wait`
moves on), and its ``on_trade`` / ``on_fill`` / ``on_mark`` notices after every event,
through the same :class:`~orderbook.AgentView`. After every event the harness checks the
engine (:func:`check_book` on every book, :func:`check_accounts`) and your own property.

Units: prices in ticks, quantities in lots, money in quote units, time in ms.
"""

from __future__ import annotations

import copy
import heapq
from dataclasses import dataclass
from numbers import Integral, Real

from .._timeline import TradeLog, notify
from ..agents import Agent, AgentView, Seat
from ..errors import OrderError
from ..events import (
    ENGINE_REFUSALS,
    SCENARIO_AGENTS,
    SCENARIO_FLOWS,
    STOP_KINDS,
    Event,
    EventKind,
    Kind,
    Reason,
)
from .invariants import check_accounts, check_book
from .messages import Message, _enum_repr

__all__ = ["FLOW_OWNER", "AGENT_OWNER", "FLOW_COLLATERAL", "FlowOrder", "Wait", "IndexPrice",
           "Liquidate", "AgentHarness"]

#: Owner id of the flow's orders unless a FlowOrder names another (the first flow of a run's).
FLOW_OWNER = SCENARIO_FLOWS
#: Owner id of the agent's account by default (the first agent of a run's, as ``run`` gives it).
AGENT_OWNER = SCENARIO_AGENTS
#: Quote units an account the harness opens for a flow owner starts with (it is exempt).
FLOW_COLLATERAL = 10**12

_KINDS = frozenset(int(k) for k in Kind)


def _whole(name: str, value, low: int) -> int:
    """``value`` as an int >= ``low``: a TypeError or ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------- steps


@dataclass(frozen=True, repr=False)
class FlowOrder:
    """One message of the random flow, resolved against the live book when it is applied.

    A new order (any kind but CANCEL and AMEND) gets a fresh order id and is sent with
    ``side``, ``price`` and ``stop_price`` (ticks), ``qty`` (lots) and ``owner`` (an account
    the harness opens, exempt, when the engine has none). A CANCEL chooses among the flow's
    orders still resting or armed, and an AMEND among those still resting, oldest first:
    ``live[floor(pick * len(live))]``; an AMEND sends ``price`` and ``qty`` as the order's new
    ones. With no such order the step does nothing. ``pick`` is in [0, 1).
    """

    kind: Kind
    side: int = 0
    price: int = 0
    qty: int = 0
    owner: int = FLOW_OWNER
    stop_price: int = 0
    pick: float = 0.0

    def __post_init__(self):
        kind = self.kind
        if isinstance(kind, bool) or not isinstance(kind, Integral) or kind not in _KINDS:
            raise ValueError(f"FlowOrder kind must be a Kind ({', '.join(k.name for k in Kind)}),"
                             f" got {kind!r}")
        object.__setattr__(self, "kind", Kind(kind))
        pick = self.pick
        if isinstance(pick, bool) or not isinstance(pick, Real):
            raise TypeError(f"FlowOrder pick must be a number in [0, 1), got {pick!r}")
        if not 0 <= pick < 1:
            raise ValueError(f"FlowOrder pick must be in [0, 1), got {pick!r}")

    @property
    def targets_live_order(self) -> bool:
        """Whether it names a live order (CANCEL, AMEND) rather than sending a new one."""
        return self.kind in (Kind.CANCEL, Kind.AMEND)

    def choose(self, live: list[int]) -> int | None:
        """The id ``pick`` chooses among ``live`` (oldest first); None when ``live`` is empty."""
        if not live:
            return None
        return live[min(int(self.pick * len(live)), len(live) - 1)]

    def message(self, order_id: int) -> Message:
        """The message this step sends as order ``order_id``."""
        if self.kind == Kind.CANCEL:
            return Message(Kind.CANCEL, order_id)
        if self.kind == Kind.AMEND:
            return Message(Kind.AMEND, order_id, price=self.price, qty=self.qty)
        return Message(self.kind, order_id, self.side, self.price, self.qty, self.owner,
                       self.stop_price)

    def __repr__(self) -> str:
        parts = [_enum_repr(Kind, self.kind)]
        shown = (("pick", "qty", "price") if self.targets_live_order else
                 ("side", "price", "qty", "owner", "stop_price"))
        defaults = {"side": 0, "price": 0, "qty": 0, "owner": FLOW_OWNER, "stop_price": 0}
        for name in shown:
            value = getattr(self, name)
            if name == "pick" or value != defaults[name]:
                text = "Side." + ("BUY" if value == 1 else "SELL") if (
                    name == "side" and value in (1, -1)) else repr(value)
                parts.append(f"{name}={text}")
        return f"FlowOrder({', '.join(parts)})"

    def _repr_pretty_(self, printer, cycle) -> None:
        # hypothesis (and IPython) print a failing example with this: the repr above, valid
        # Python, instead of the dataclass's fields one by one
        printer.text(repr(self))


@dataclass(frozen=True)
class Wait:
    """The clock moves on ``ms`` milliseconds (>= 1); the agent's timer fires on the way."""

    ms: int

    def __post_init__(self):
        _whole("Wait ms", self.ms, 1)


@dataclass(frozen=True)
class IndexPrice:
    """``Engine.set_index(price)`` (ticks >= 1) on the harness's instrument: the index the mark
    follows under the INDEX, INDEX_CLAMPED and FAIR mark rules, and ``AgentView.index``."""

    price: int

    def __post_init__(self):
        _whole("IndexPrice price", self.price, 1)


@dataclass(frozen=True)
class Liquidate:
    """The liquidator runs to its end (``Engine.liquidate()``); the accounts are then checked
    as settled (``check_accounts(engine, settled=True)``) before the agent hears of it."""


# ------------------------------------------------------------------------------- harness


class _FunctionAgent(Agent):
    """An agent that is a function of its view, called once at the start and after each step."""

    def __init__(self, function, collateral: int, exempt: bool):
        self.function = function
        self.collateral = collateral
        self.exempt = exempt

    def on_start(self, view) -> None:
        self.function(view)

    def turn(self, view) -> None:
        self.function(view)


class AgentHarness:
    """Runs an agent against steps of random flow on ``engine``, checking after every event.

    The harness opens the agent's account (``owner``; its ``collateral`` and ``exempt``) and
    starts it as ``orderbook.run`` does: ``on_start``, then ``on_timer`` at the harness's start
    time and every ``every_ms`` after, and the trade, fill and mark notices it subscribes to
    after every event, through an :class:`~orderbook.AgentView` whose orders take ids from the
    same counter as the flow's. An Agent is deep-copied first (``harness.agent`` is the copy),
    so a run never changes the object you pass and every example starts alike (a function agent
    is called as it is). The engine is driven in place.

    After every event (a step, or a timer that fires during a :class:`Wait`) and the notices it
    leads to, it checks :func:`check_book` on every book, :func:`check_accounts`, and then
    ``check(harness)`` when :meth:`run` is given one. An exception from any of them, from the
    engine or from the agent is raised as it is, with a note listing the steps applied so far and
    the message each flow step became, for a failure report.

    Parameters
    ----------
    engine : Engine or ReferenceEngine
        The venue, with whatever accounts, positions and resting orders it holds.
    agent : Agent or callable
        An ``orderbook.Agent`` (or any object with its attributes and methods), or a function
        ``agent(view)`` that is called once at the start and after every step.
    owner : int
        The agent's account id (default that of the first agent of a run); it must be new.
    instrument : int or str
        The instrument the flow trades (the agent trades where it likes).
    collateral : int, optional
        Quote units of a function agent's account (required for one; an Agent has its own).
    exempt : bool
        Whether a function agent's account is exempt from margin and liquidation.
    first_order_id : int, optional
        The first order id the harness hands out (default one above any id in the books or
        their trades).
    flow_collateral : int
        Quote units of each account the harness opens for a flow owner (exempt).

    Examples
    --------
    >>> from orderbook import Engine, Kind, Side
    >>> def bidder(view):
    ...     if not view.orders():
    ...         view.limit(Side.BUY, 99, 1)
    >>> harness = AgentHarness(Engine(), bidder, collateral=10**6)
    >>> harness.run([FlowOrder(Kind.MARKET, Side.SELL, qty=1), Wait(1_000)])
    >>> harness.view.position()
    1
    """

    def __init__(self, engine, agent, *, owner: int = AGENT_OWNER, instrument=0,
                 collateral: int | None = None, exempt: bool = False,
                 first_order_id: int | None = None, flow_collateral: int = FLOW_COLLATERAL):
        self.engine = engine
        self.count = len(engine.instruments)
        self.instrument = self._instrument_index(instrument)
        owner = _whole("owner", owner, -(2**63))
        self._accounts = {int(o) for o in engine.owners()}
        if owner in self._accounts:
            raise ValueError(f"owner {owner} already has an account on the engine; the harness "
                             f"opens the agent's own (pass another owner)")
        self.flow_collateral = _whole("flow_collateral", flow_collateral, 0)
        if callable(agent) and not hasattr(agent, "on_timer"):
            if collateral is None:
                raise TypeError(f"agent {getattr(agent, '__name__', agent)!r} is a function: "
                                f"give its account's collateral= (quote units)")
            agent = _FunctionAgent(agent, _whole("collateral", collateral, 0), bool(exempt))
        elif not hasattr(agent, "on_timer"):
            raise TypeError(f"agent must be an orderbook.Agent or a function of its view, got "
                            f"{agent!r}")
        elif collateral is not None or exempt:
            raise TypeError(f"collateral and exempt are the agent's own attributes "
                            f"({type(agent).__name__}.collateral, .exempt); give them to a "
                            f"function agent only")
        else:
            agent = copy.deepcopy(agent)
        self.agent = agent
        self.owner = owner
        self._next_id = (self._first_free_id() if first_order_id is None
                         else _whole("first_order_id", first_order_id, 0))
        self._flow_ids: list[int] = []     # ids the flow sent, ascending; pruned when resolved
        self._heap: list = []
        self._arrivals = 0
        self._index: dict[int, int] = {}
        self.now = int(engine.time)
        self._start_mid = [self._mid(i) for i in range(self.count)]
        self.trades = TradeLog(engine, self.count)
        self.trades.take(self.now)         # the trades before the harness are nobody's news
        self.marks = [engine.mark_price(i) for i in range(self.count)]
        #: every step applied, with the message it sent (None: not a flow order, or nothing
        #: live to cancel or amend) and the events the flow's message gave
        self.log: list[tuple[object, Message | None, list]] = []
        self._check = None
        self._seat = Seat(agent, owner)
        self._accounts.add(owner)
        try:
            self._seat.start(self)         # the account, the view, on_start, the first timer
            self.view: AgentView = self._seat.view
            self._run_timers(self.now)
            self._notify()
            self._check_all()
        except Exception as exc:
            exc.add_note(self.report("while starting the agent"))
            raise

    # -------------------------------------------------------------- what AgentView reads
    # AgentView and Seat take a run's timeline; the harness is one for them: ``engine``,
    # ``now``, ``venue``, ``world``, ``index(i)``, ``at(...)`` and ``market._id()``.
    venue = None
    world = None

    @property
    def market(self):
        """Where AgentView takes its order ids from (``market._id()``): the harness itself."""
        return self

    def _id(self) -> int:
        order_id = self._next_id
        self._next_id += 1
        return order_id

    def at(self, time: int, priority: int, action, *args) -> None:
        """Schedule the agent's timer ``action(*args)`` at ``time`` (ms)."""
        self._arrivals += 1
        heapq.heappush(self._heap, (time, self._arrivals, action, args))

    def index(self, instrument: int) -> int:
        """The instrument's index (ticks): the last :class:`IndexPrice` the harness applied,
        else the book's mid when the harness started (as ``run`` takes the starting mid), else
        its mid now, else the mark, else the last price."""
        for value in (self._index.get(instrument), self._start_mid[instrument],
                      self._mid(instrument), self.engine.mark_price(instrument),
                      self.engine.books[instrument].last_price):
            if value is not None:
                return int(value)
        raise ValueError(f"instrument {instrument} has no index price yet: apply an IndexPrice "
                         f"step, or give the engine a book with a bid and an ask")

    # ------------------------------------------------------------------------------- run
    def run(self, steps, check=None) -> None:
        """Apply ``steps`` in order (see :meth:`apply`), calling ``check(harness)`` after every
        event; it signals a broken property by raising (an ``assert`` will do)."""
        self._check = check
        try:
            for step in steps:
                self.apply(step)
        finally:
            self._check = None

    def apply(self, step) -> list:
        """Apply one step, deliver the notices, give a function agent its turn and check the
        invariants; return the events of a flow order's message (else an empty list)."""
        self.log.append((step, None, []))
        try:
            return self._apply(step)
        except Exception as exc:
            exc.add_note(self.report(f"at step {len(self.log) - 1}, {step!r}"))
            raise

    def _apply(self, step) -> list:
        if isinstance(step, FlowOrder):
            message = self._resolve(step)
            events = [] if message is None else self._send(message)
            self.log[-1] = (step, message, events)
            self._after_step(settled=False)
            return events
        if isinstance(step, Wait):
            self._run_timers(self.now + step.ms)
        elif isinstance(step, IndexPrice):
            self.engine.set_index(step.price, instrument=self.instrument)
            self._index[self.instrument] = step.price
        elif isinstance(step, Liquidate):
            self.engine.liquidate()
            check_accounts(self.engine, settled=True)
        else:
            raise TypeError(f"a step must be a FlowOrder, Wait, IndexPrice or Liquidate, got "
                            f"{step!r}")
        self._after_step(settled=False)
        return []

    def _resolve(self, step: FlowOrder) -> Message | None:
        """The message ``step`` sends now: a fresh id, or the live order its ``pick`` chooses."""
        book = self.engine.books[self.instrument]
        if step.targets_live_order:
            self._flow_ids = live = [i for i in self._flow_ids if i in book]
            if step.kind == Kind.AMEND:
                live = [i for i in live if book.order(i).kind not in STOP_KINDS]
            order_id = step.choose(live)
            return None if order_id is None else step.message(order_id)
        owner = _whole("FlowOrder owner", step.owner, -(2**63))
        if owner == self.owner:
            raise ValueError(f"FlowOrder owner {owner} is the agent's account; the flow trades "
                             f"from accounts of its own")
        if owner not in self._accounts:
            self.engine.add_account(owner, self.flow_collateral, exempt=True)
            self._accounts.add(owner)
        order_id = self._id()
        self._flow_ids.append(order_id)
        return step.message(order_id)

    def _send(self, m: Message) -> list:
        # A venue's refusal of a well-formed order (margin, position limit, isolation) is the
        # flow trader's problem, as it is an agent's: the REJECTED event a batch would give.
        # Anything else raised is a finding and propagates.
        try:
            return self.engine.submit(m.kind, m.order_id, m.side, m.price, m.qty, m.owner,
                                      m.stop_price, instrument=self.instrument)
        except OrderError as exc:
            if exc.reason not in ENGINE_REFUSALS:
                raise
            return [Event(seq=0, msg=0, kind=EventKind.REJECTED, reason=exc.reason,
                          side=int(m.side), order_id=m.order_id, owner=m.owner, maker_id=0,
                          maker_owner=0, price=int(m.price), stop_price=int(m.stop_price),
                          qty=int(m.qty))]

    def _run_timers(self, until: int) -> None:
        """Fire the agent's timers due by ``until`` (ms) in order, each an event of its own;
        then the clock stands at ``until``."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            time, _, action, args = heapq.heappop(heap)
            self._advance(max(time, self.now))
            action(*args)
            self._notify()
            self._check_all()
        self._advance(until)

    def _advance(self, time: int) -> None:
        if time > self.now:
            self.engine.advance_to(time)
            self.now = time

    def _after_step(self, settled: bool) -> None:
        self._notify()
        if isinstance(self.agent, _FunctionAgent):
            self.agent.turn(self.view)
            self._notify()
        self._check_all(settled)

    def _notify(self) -> None:
        """Tell the agent what happened (trades, its fills, mark changes), again after what it
        did in answer, until nothing new happens (as ``orderbook.run`` does)."""
        notify(self, [self._seat])

    def _check_all(self, settled: bool = False) -> None:
        for book in self.engine.books:
            check_book(book)
        check_accounts(self.engine, settled=settled)
        if self._check is not None:
            self._check(self)

    # --------------------------------------------------------------------------- report
    def report(self, where: str = "") -> str:
        """The steps applied so far, one a line, with the message each flow step sent."""
        agent = self.agent
        name = (getattr(agent.function, "__name__", repr(agent.function))
                if isinstance(agent, _FunctionAgent) else type(agent).__name__)
        lines = [f"AgentHarness, agent {name} (owner {self.owner})"
                 + (f", {where}" if where else "") + ", steps applied:"]
        for n, (step, message, events) in enumerate(self.log):
            if isinstance(step, FlowOrder):
                if message is None:
                    sent = " -> nothing to choose from" if step.targets_live_order else ""
                else:
                    rejected = [ev for ev in events if ev.kind == EventKind.REJECTED]
                    sent = f" -> {message!r}" + (
                        f" (REJECTED: {Reason(rejected[0].reason).name})" if rejected else "")
            else:
                sent = ""
            lines.append(f"  {n}: {step!r}{sent}")
        return "\n".join(lines)

    # --------------------------------------------------------------------------- helpers
    def _instrument_index(self, instrument) -> int:
        names = [spec.name for spec in self.engine.instruments]
        if isinstance(instrument, str):
            if instrument not in names:
                raise KeyError(f"instrument {instrument!r} is not one of {names}")
            return names.index(instrument)
        index = _whole("instrument", instrument, 0)
        if index >= self.count:
            raise ValueError(f"instrument {index} is not one of the engine's {self.count} "
                             f"(0..{self.count - 1})")
        return index

    def _first_free_id(self) -> int:
        """One above every order id in the books, their armed stops and their trades (>= 0)."""
        top = -1
        for i, book in enumerate(self.engine.books):
            trades = self.engine.trades(i)
            for ids in (book.l3()["order_id"], book.stops()["order_id"], trades["order_id"],
                        trades["maker_id"]):
                if len(ids):
                    top = max(top, int(ids.max()))
        return top + 1

    def _mid(self, instrument: int) -> int | None:
        mid = self.engine.books[instrument].mid()
        return None if mid is None else int(mid)
