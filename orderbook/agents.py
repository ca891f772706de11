"""Agents: traders with their own margined accounts that act on a scenario's clock.

An agent is any object with the attributes and methods of :class:`Agent` (subclass it and
override what you need). A run gives each agent an account (``collateral`` quote units,
margined and liquidatable like the population's unless ``exempt``), calls ``on_start`` before
the shock, ``on_timer`` every ``every_ms`` ms from time 0, and ``on_trade`` / ``on_fill`` /
``on_mark`` after any event that traded or moved a mark, when it ``subscribe``\\ s to them.
Through its :class:`AgentView` it reads the venue (books, marks, its account) and sends orders
to the engine like anyone else. Each run works on a deep copy of the agents passed to it, so
a run never changes them and two runs start alike. (docs/agents.md)

Units: prices in ticks, sizes in lots, money in quote units, time in ms.

>>> from orderbook import Agent, Side, default_scenario, run
>>> class Seller(Agent):
...     collateral = 10**12
...     every_ms = 10_000
...     def on_timer(self, view):
...         view.market(Side.SELL, 500)
>>> result = run(default_scenario(scale=0.05), agents=[Seller()], counterfactual=False)
>>> result.summary["agents"][0]["position"] < 0
True
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from ._settings import Bad, boolean, choice, integer, optional, show
from .errors import OrderError
from .events import INT64_MAX, SCENARIO_AGENTS, Event, EventKind, Side

__all__ = ["Agent", "AgentView", "VenueView", "MarketMaker", "ValueTrader", "FundingArbitrageur",
           "AGENT_KINDS"]

#: The notices an agent may subscribe to besides its timer.
NOTICES = frozenset({"trade", "fill", "mark"})


class Agent:
    """Base class of an agent: override the methods you need (they do nothing here).

    Attributes
    ----------
    collateral : int
        Quote units the agent's account starts with.
    exempt : bool
        True: the account is never liquidated (a liquidity provider with deep pockets).
    every_ms : int or None
        Call ``on_timer`` at 0, ``every_ms``, ``2 every_ms``, ... ms (None: never).
    subscribe : frozenset
        Any of ``"trade"`` (every trade), ``"fill"`` (the agent's own trades) and ``"mark"``
        (a mark price changed).
    """

    collateral: int = 0
    exempt: bool = False
    every_ms: int | None = None
    subscribe: frozenset = frozenset()

    def on_start(self, view: AgentView) -> None:
        """Called once, before the shock, with the book seeded."""

    def on_timer(self, view: AgentView) -> None:
        """Called every ``every_ms`` ms from time 0."""

    def on_trade(self, view: AgentView, instrument: int, trades: np.ndarray) -> None:
        """New trades of ``instrument`` (EVENT_DTYPE rows) since the last notice."""

    def on_fill(self, view: AgentView, instrument: int, fills: np.ndarray) -> None:
        """New trades of ``instrument`` the agent took part in (EVENT_DTYPE rows)."""

    def on_mark(self, view: AgentView, instrument: int, mark: int | None) -> None:
        """``instrument``'s mark price moved to ``mark`` (ticks)."""


class VenueView:
    """A venue as an agent reads it: its books, marks and index prices, read-only."""

    __slots__ = ("_timeline", "_engine")

    def __init__(self, timeline):
        self._timeline = timeline
        self._engine = timeline.engine

    @property
    def time(self) -> int:
        """The current time of the run (ms)."""
        return self._timeline.now

    @property
    def name(self) -> str | None:
        """The venue's name in a market of several venues; None in a one-venue run."""
        return self._timeline.venue

    @property
    def instruments(self) -> tuple:
        """The venue's instruments (``orderbook.Instrument``), by index."""
        return self._engine.instruments

    @property
    def assets(self) -> tuple:
        """The venue's collateral assets besides its quote currency (``orderbook.Asset``), by
        index (``AccountInfo.assets`` holds an account's balances of them)."""
        return tuple(self._engine.assets)

    def book(self, instrument=0):
        """An instrument's book, read-only (``best_bid()``, ``l2()``, ``last_price``...)."""
        return self._engine.books[self._engine_index(instrument)]

    def mark(self, instrument=0) -> int | None:
        """An instrument's mark price (ticks), None before it has one."""
        return self._engine.mark_price(self._engine_index(instrument))

    def index(self, instrument=0) -> int:
        """An instrument's index price (ticks) as the run sees it: in a market, the value of
        the market index that feeds it; else its index path at this time where the scenario
        gives one, else its starting mid (what funding samples against, docs/funding.md)."""
        return self._timeline.index(self._engine_index(instrument))

    def _engine_index(self, instrument) -> int:
        if isinstance(instrument, str):
            names = [spec.name for spec in self._engine.instruments]
            if instrument not in names:
                raise KeyError(f"instrument {instrument!r} is not one of {names}")
            return names.index(instrument)
        return instrument


class AgentView(VenueView):
    """What an agent sees and does: read-only books, marks and its account; orders in its
    name through the engine (so they trade, settle and are margined as anyone's). In a market
    of several venues the agent trades on its own venue and reads the others through
    :meth:`venue` and :meth:`market_index`."""

    __slots__ = ("owner",)

    def __init__(self, timeline, owner: int):
        super().__init__(timeline)
        self.owner = owner  #: the agent's account id

    @property
    def venues(self) -> tuple:
        """The names of the market's venues, in order (empty in a one-venue run)."""
        world = self._timeline.world
        return () if world is None else tuple(world.lanes)

    def venue(self, name: str | None = None) -> VenueView:
        """A venue of the market, read-only (its own when ``name`` is None); KeyError for a
        name the market does not have."""
        if name is None or name == self._timeline.venue:
            return VenueView(self._timeline)
        world = self._timeline.world
        if world is None or name not in world.lanes:
            raise KeyError(f"venue {name!r} is not one of {list(self.venues)}")
        return VenueView(world.lanes[name])

    def market_index(self, name: str) -> int | None:
        """The value of the market's index ``name`` (ticks) as last computed (before and after
        each liquidation round), None before it has one; KeyError for an unknown name."""
        world = self._timeline.world
        indexes = {} if world is None else {ix.name: ix for ix in world.market.indexes}
        if name not in indexes:
            raise KeyError(f"index {name!r} is not one of {list(indexes)}")
        return indexes[name].index.value

    def account(self):
        """The agent's account at the current marks (``orderbook.AccountInfo``)."""
        return self._engine.account(self.owner)

    def position(self, instrument=0) -> int:
        """The agent's position in ``instrument`` (lots, negative short)."""
        index = self._engine_index(instrument)
        for p in self.account().positions:
            if p.instrument == index:
                return p.position
        return 0

    def orders(self, instrument=0) -> list[int]:
        """Ids of the agent's resting orders in ``instrument``'s book, oldest first."""
        return self.book(instrument).orders_of(self.owner)

    # ----------------------------------------------------------------------------- write
    def _send(self, method: str, *args, instrument=0) -> list:
        # A refused order (bad price, insufficient margin) is the agent's problem, not the
        # run's: it comes back as the REJECTED event a batch would report.
        order_id = self._timeline.market._id()
        try:
            return getattr(self._engine, method)(order_id, *args, self.owner,
                                                 instrument=instrument)
        except OrderError as exc:
            return [Event(seq=0, msg=0, kind=EventKind.REJECTED, reason=exc.reason,
                          side=int(args[0]), order_id=order_id, owner=self.owner, maker_id=0,
                          maker_owner=0, price=int(args[1]) if len(args) == 3 else 0,
                          stop_price=0, qty=int(args[-1]))]

    def limit(self, side, price: int, qty: int, *, instrument=0) -> list:
        """A limit order (it may trade on arrival, the rest rests); the engine's events."""
        return self._send("limit", side, price, qty, instrument=instrument)

    def post_only(self, side, price: int, qty: int, *, instrument=0) -> list:
        """A limit order that is rejected instead of trading on arrival."""
        return self._send("post_only", side, price, qty, instrument=instrument)

    def market(self, side, qty: int, *, instrument=0) -> list:
        """A market order."""
        return self._send("market", side, qty, instrument=instrument)

    def ioc(self, side, price: int, qty: int, *, instrument=0) -> list:
        """An immediate-or-cancel limit order."""
        return self._send("ioc", side, price, qty, instrument=instrument)

    def cancel(self, order_id: int, *, instrument=0) -> list:
        """Cancel one of the agent's resting orders (not another's: KeyError)."""
        if order_id not in self.orders(instrument):
            raise KeyError(f"order_id {order_id} is not a resting order of agent "
                           f"{self.owner} in instrument {instrument!r}")
        return self._engine.cancel(order_id, instrument=instrument)

    def cancel_all(self, instrument=None) -> int:
        """Cancel the agent's resting orders (in one instrument, or all); how many."""
        which = range(len(self._engine.instruments)) if instrument is None else [instrument]
        done = 0
        for i in which:
            for order_id in self.orders(i):
                self._engine.cancel(order_id, instrument=i)
                done += 1
        return done


class Seat:
    """An agent in a run: its account, its view, its timer and its notices."""

    def __init__(self, agent, owner: int):
        self.agent = agent
        self.owner = owner
        subscribe = frozenset(getattr(agent, "subscribe", ()))
        if not subscribe <= NOTICES:
            raise ValueError(f"agent {type(agent).__name__} subscribe must be a subset of "
                             f"{sorted(NOTICES)}, got {sorted(subscribe)}")
        self.subscribe = subscribe
        every = getattr(agent, "every_ms", None)
        if every is not None and (isinstance(every, bool) or not isinstance(every, int)
                                  or every < 1):
            raise ValueError(f"agent {type(agent).__name__} every_ms must be an integer >= 1 "
                             f"or None, got {every!r}")
        self.every = every
        self.view = None

    def start(self, timeline) -> None:
        agent = self.agent
        timeline.engine.add_account(self.owner, agent.collateral,
                                    exempt=bool(getattr(agent, "exempt", False)))
        self.view = AgentView(timeline, self.owner)
        agent.on_start(self.view)
        if self.every is not None:
            from ._timeline import ORDER

            timeline.at(0, ORDER, self._timer, timeline)

    def _timer(self, timeline) -> None:
        from ._timeline import ORDER

        self.agent.on_timer(self.view)
        timeline.at(timeline.now + self.every, ORDER, self._timer, timeline)

    def notice(self, timeline, trades: dict, marks: dict) -> None:
        agent, view = self.agent, self.view
        if "trade" in self.subscribe:
            for i, rows in trades.items():
                agent.on_trade(view, i, rows)
        if "fill" in self.subscribe:
            for i, rows in trades.items():
                mine = rows[(rows["owner"] == self.owner) | (rows["maker_owner"] == self.owner)]
                if len(mine):
                    agent.on_fill(view, i, mine)
        if "mark" in self.subscribe:
            for i, mark in marks.items():
                agent.on_mark(view, i, mark)


def seats(agents) -> list[Seat]:
    """Seats for ``agents`` (agent n gets owner SCENARIO_AGENTS + n)."""
    return [Seat(agent, SCENARIO_AGENTS + n) for n, agent in enumerate(agents)]


def agent_summary(engine, seated: list[Seat]) -> list[dict]:
    """Each agent's end state: owner, kind, equity (quote units), position (instrument 0's
    lots), whether the liquidator took it over, and on a venue with collateral assets its
    ``holdings`` ({asset name: units})."""
    out = []
    forced = engine.forced_orders()
    for seat in seated:
        info = engine.account(seat.owner)
        out.append({"owner": seat.owner, "kind": type(seat.agent).__name__,
                    "collateral": int(seat.agent.collateral), "equity": int(info.equity),
                    "pnl": int(info.equity) - int(seat.agent.collateral),
                    "position": int(info.position),
                    "liquidated": bool((forced["owner"] == seat.owner).any())})
        if engine.assets:
            out[-1]["holdings"] = {engine.assets[h.asset].name: int(h.balance)
                                   for h in info.assets}
    return out


# ------------------------------------------------------------------------ built-in agents
def _check(agent) -> None:
    """Run each field's converter; a ValueError/TypeError naming the field and value."""
    for f in dataclasses.fields(agent):
        convert = f.metadata.get("convert")
        if convert is None:
            continue
        value = getattr(agent, f.name)
        try:
            convert(value)
        except Bad as bad:
            kind = TypeError if bad.kind.__name__.endswith("TypeError") else ValueError
            raise kind(f"{type(agent).__name__} {f.name} = {show(value)} {bad.problem}") \
                from None


def _setting(default, convert):
    return field(default=default, metadata={"convert": convert})


def _state():
    return field(default=None, init=False, repr=False, compare=False)


_MS = integer(1, 10**12)
_LOTS = integer(1, INT64_MAX)
_MONEY = integer(0, INT64_MAX)
_PPM = integer(0, 10**9)


@dataclass
class MarketMaker(Agent):
    """A market maker that quotes around the last price (or the mid) and pulls its quotes
    under stress.

    Every ``every_ms`` it cancels its quotes and posts ``levels`` post-only orders a side of
    ``level_lots`` each, the nearest ``half_spread_ticks`` from its reference price and the
    next ``level_step_ticks`` apart; it bids at most ``max_inventory - position`` lots in all
    and offers at most ``max_inventory + position``. The reference (``around``) is the last
    trade price, or ``"mid"``: the mid of the others' best bid and ask once its own quotes are
    cancelled (rounded down to a tick; the last price while a side is empty). Quoting around
    a mid its own quotes made would never move them.

    Stress is the price range over the last ``window_ms``: ``move = (high - low) * 10**6 /
    last`` ppm of the last prices it saw at its timer. With ``widen_ppm`` > 0 the half-spread
    widens to ``half_spread_ticks * (1 + move / widen_ppm)``. When ``move >= withdraw_ppm`` or
    its loss since it (re)started quoting reaches ``max_loss`` quote units, it cancels every
    quote and stays out; it quotes again once the move has stayed below ``resume_ppm`` (None:
    half of ``withdraw_ppm``) for ``calm_ms``, its loss counted afresh from there. None
    switches a trigger off. Its account is margined with ``collateral`` and can be liquidated.
    """

    #: the sizes ``scale_scenario`` (``--scale``) scales
    SCALED_LOTS = ("level_lots", "max_inventory")
    instrument: int = _setting(0, integer(0, 2**31 - 1))
    collateral: int = _setting(10**13, _MONEY)
    exempt: bool = _setting(False, boolean)
    every_ms: int = _setting(1_000, _MS)
    levels: int = _setting(5, integer(1, 10_000))
    level_lots: int = _setting(1_000, _LOTS)
    half_spread_ticks: int = _setting(1, integer(1, INT64_MAX))
    level_step_ticks: int = _setting(5, integer(1, INT64_MAX))
    max_inventory: int = _setting(10**6, _LOTS)
    window_ms: int = _setting(10_000, _MS)
    widen_ppm: int = _setting(0, _PPM)
    withdraw_ppm: int | None = _setting(None, optional(integer(1, 10**9)))
    resume_ppm: int | None = _setting(None, optional(integer(1, 10**9)))
    calm_ms: int = _setting(10_000, integer(0, 10**12))
    max_loss: int | None = _setting(None, optional(integer(1, INT64_MAX)))
    around: str = _setting("last", choice("last", "mid"))
    _seen: deque = _state()
    _quoting: bool = _state()
    _calm_since: int | None = _state()
    _start_equity: int = _state()
    #: (time ms, quoting) at each change of state, for plots and tests
    withdrawals: list = _state()

    def __post_init__(self):
        _check(self)
        if self.resume_ppm is not None and self.withdraw_ppm is None:
            raise ValueError(f"MarketMaker resume_ppm = {self.resume_ppm} needs a withdraw_ppm")

    def on_start(self, view) -> None:
        self._seen = deque()
        self._quoting = True
        self._calm_since = None
        self._start_equity = view.account().equity
        self.withdrawals = []
        self._quote(view, 0)

    def _move(self, view) -> tuple[int | None, int]:
        book = view.book(self.instrument)
        last = book.last_price
        if last is None:
            mid = book.mid()
            last = None if mid is None else round(mid)
        now = view.time
        if last is not None:
            self._seen.append((now, last))
        while self._seen and self._seen[0][0] < now - self.window_ms:
            self._seen.popleft()
        if not self._seen or last is None:
            return last, 0
        prices = [p for _, p in self._seen]
        return last, (max(prices) - min(prices)) * 10**6 // last

    def on_timer(self, view) -> None:
        last, move = self._move(view)
        equity = view.account().equity
        if self._quoting:
            loss = self._start_equity - equity
            if ((self.withdraw_ppm is not None and move >= self.withdraw_ppm)
                    or (self.max_loss is not None and loss >= self.max_loss)):
                self._quoting = False
                self._calm_since = None
                self.withdrawals.append((view.time, False))
                view.cancel_all(self.instrument)
                return
        else:
            resume = self.resume_ppm if self.resume_ppm is not None else (
                (self.withdraw_ppm or 0) // 2)
            if move < resume or self.withdraw_ppm is None:
                if self._calm_since is None:
                    self._calm_since = view.time
                if view.time - self._calm_since >= self.calm_ms:
                    self._quoting = True
                    self._start_equity = equity
                    self.withdrawals.append((view.time, True))
            else:
                self._calm_since = None
            if not self._quoting:
                return
        self._quote(view, move, last)

    def _quote(self, view, move: int, last: int | None = None) -> None:
        view.cancel_all(self.instrument)
        book = view.book(self.instrument)
        bid, ask = book.best_bid(), book.best_ask()
        if self.around == "mid" and bid is not None and ask is not None:
            last = (bid + ask) // 2
        if last is None:
            last = book.last_price
            if last is None and book.mid() is not None:
                last = round(book.mid())
        if last is None:
            return
        half = self.half_spread_ticks
        if self.widen_ppm:
            half += half * move // self.widen_ppm
        position = view.position(self.instrument)
        for side, room in ((Side.BUY, self.max_inventory - position),
                           (Side.SELL, self.max_inventory + position)):
            for level in range(self.levels):
                if room <= 0:
                    break
                offset = half + level * self.level_step_ticks
                price = last - offset if side == Side.BUY else last + offset
                if price < 1:
                    break
                lots = min(self.level_lots, room)
                events = view.post_only(side, price, lots, instrument=self.instrument)
                if events and events[0].kind == EventKind.ACCEPTED:
                    room -= lots


@dataclass
class ValueTrader(Agent):
    """A value trader that trades the price back toward a fair value (the scenario's
    recovery, as an agent).

    Every ``every_ms`` from ``delay_ms`` on, when the last price differs from ``fair_price``
    (ticks; None: the book's mid when the run starts), it sends an IOC toward it for at most
    ``max_lots``, limited to the last price moved by the share ``1 - 2**(-every_ms /
    half_life_ms)`` of the distance (at least one tick). With the same rate, half-life and
    delay in steps, exempt, and the liquidator off, it trades as ``Liquidity``'s recovery.
    """

    SCALED_LOTS = ("max_lots",)
    collateral: int = _setting(10**13, _MONEY)
    exempt: bool = _setting(False, boolean)
    every_ms: int = _setting(1_000, _MS)
    instrument: int = _setting(0, integer(0, 2**31 - 1))
    max_lots: int = _setting(1_000, _LOTS)
    half_life_ms: int = _setting(10_000, _MS)
    delay_ms: int = _setting(0, integer(0, 10**12))
    fair_price: int | None = _setting(None, optional(integer(1, INT64_MAX)))
    _fair: int = _state()

    def __post_init__(self):
        _check(self)

    def on_start(self, view) -> None:
        book = view.book(self.instrument)
        mid = book.mid()
        self._fair = self.fair_price if self.fair_price is not None else (
            None if mid is None else int(mid))

    def on_timer(self, view) -> None:
        last = view.book(self.instrument).last_price
        if self._fair is None or last is None or view.time < self.delay_ms:
            return
        gap = self._fair - last
        if gap == 0:
            return
        share = 1 - 2 ** (-self.every_ms / self.half_life_ms)
        move = max(1, round(abs(gap) * share))
        side = Side.BUY if gap > 0 else Side.SELL
        view.ioc(side, last + move if gap > 0 else last - move, self.max_lots,
                 instrument=self.instrument)


@dataclass
class FundingArbitrageur(Agent):
    """A trader that holds the side funding pays, while the premium is wide; hedged on a spot
    book when given one.

    Every ``every_ms`` it reads the premium of the mark over the index, ``(mark - index) *
    10**6 / index`` ppm (``AgentView.index``). Above ``enter_ppm`` longs pay shorts, so it
    sells; below ``-enter_ppm`` it buys. Each time it takes at most ``lots_per_step`` with an
    IOC no more than ``slack_ppm`` through the mark, and holds at most ``max_position`` lots.
    Once ``|premium| < exit_ppm`` it trades back toward flat the same way. After a crash the
    mark sits under the index: it buys the discount, and is liquidity that comes back.

    With ``hedge_instrument`` (a spot book of the same venue, ``Contract(spot=True)``, with the
    perpetual's lot size) it is a basis trader: after its perpetual trade, at every timer, it
    buys or sells spot with an IOC no more than ``slack_ppm`` through the spot book's mark so
    that it holds as many lots of the coin as it is short the perpetual (a cash-and-carry
    trade, funding earned with the price risk hedged). Spot cannot be sold short, so a long
    perpetual position stays unhedged.
    """

    SCALED_LOTS = ("lots_per_step", "max_position")
    collateral: int = _setting(10**12, _MONEY)
    exempt: bool = _setting(False, boolean)
    every_ms: int = _setting(1_000, _MS)
    instrument: int = _setting(0, integer(0, 2**31 - 1))
    enter_ppm: int = _setting(2_000, integer(1, 10**9))
    exit_ppm: int = _setting(500, integer(0, 10**9))
    lots_per_step: int = _setting(100, _LOTS)
    max_position: int = _setting(10_000, _LOTS)
    slack_ppm: int = _setting(1_000, _PPM)
    hedge_instrument: int | None = _setting(None, optional(integer(0, 2**31 - 1)))
    _spot: tuple | None = _state()   # (asset index, asset units per lot) of the hedge book

    def __post_init__(self):
        _check(self)
        if self.exit_ppm >= self.enter_ppm:
            raise ValueError(f"FundingArbitrageur exit_ppm = {self.exit_ppm} must be below "
                             f"enter_ppm = {self.enter_ppm}")
        if self.hedge_instrument is not None and self.hedge_instrument == self.instrument:
            raise ValueError(f"FundingArbitrageur hedge_instrument = {self.hedge_instrument} "
                             f"is its instrument: name a spot book of the venue")

    def on_start(self, view) -> None:
        h = self.hedge_instrument
        if h is None:
            return
        specs = view.instruments
        where = f"FundingArbitrageur hedge_instrument = {h}"
        if h >= len(specs) or not specs[h].spot:
            kinds = [(spec.name, "spot" if spec.spot else "perpetual") for spec in specs]
            raise ValueError(f"{where}: not a spot book of the venue (its instruments: "
                             f"{kinds})")
        if Decimal(specs[h].lot_size) != Decimal(specs[self.instrument].lot_size):
            raise ValueError(f"{where}: its lot size {specs[h].lot_size} is not the "
                             f"perpetual's {specs[self.instrument].lot_size} (it hedges lot for "
                             f"lot)")
        for n, asset in enumerate(view.assets):
            if asset.instrument in (h, specs[h].name):
                self._spot = (n, int(Decimal(specs[h].lot_size) / Decimal(asset.unit)))
                return
        raise ValueError(f"{where}: no collateral asset of the venue trades on it")

    def on_timer(self, view) -> None:
        self._trade(view)
        if self._spot is not None:
            self._hedge(view)

    def _trade(self, view) -> None:
        i = self.instrument
        mark = view.mark(i)
        if mark is None:
            return
        index = view.index(i)
        premium = (mark - index) * 10**6 // index
        held = view.position(i)
        if premium >= self.enter_ppm:
            side, lots = Side.SELL, min(self.lots_per_step, self.max_position + held)
        elif premium <= -self.enter_ppm:
            side, lots = Side.BUY, min(self.lots_per_step, self.max_position - held)
        elif abs(premium) < self.exit_ppm and held:
            side, lots = (Side.SELL if held > 0 else Side.BUY), min(self.lots_per_step,
                                                                    abs(held))
        else:
            return
        if lots <= 0:
            return
        slack = max(1, mark * self.slack_ppm // 10**6)
        view.ioc(side, mark + slack if side == Side.BUY else max(1, mark - slack), lots,
                 instrument=i)

    def _hedge(self, view) -> None:
        """Hold as many lots of the coin as the perpetual position is short."""
        h = self.hedge_instrument
        asset, units_per_lot = self._spot
        held = next((int(x.balance) for x in view.account().assets if x.asset == asset), 0)
        held_lots = held // units_per_lot
        change = max(0, -view.position(self.instrument)) - held_lots
        price = view.mark(h) or view.book(h).last_price
        if not change or price is None:
            return
        slack = max(1, price * self.slack_ppm // 10**6)
        if change > 0:
            view.ioc(Side.BUY, price + slack, change, instrument=h)
        else:
            view.ioc(Side.SELL, max(1, price - slack), -change, instrument=h)


#: The built-in agents by the ``kind`` a scenario file names them with.
AGENT_KINDS = {"market_maker": MarketMaker, "value_trader": ValueTrader,
               "funding_arbitrageur": FundingArbitrageur}
