"""Invariant checkers: check_book (docs/semantics.md), check_accounts (docs/liquidation.md)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from ..events import (
    INSURANCE_FUND,
    INT64_MAX,
    L3_DTYPE,
    PPM,
    STOP_DTYPE,
    STOP_KINDS,
    Event,
    EventKind,
    Kind,
    MarginBasis,
    Reason,
    Side,
    Trigger,
    array_to_events,
)
from ..margin import contract_value, inverse_unit_value, unit_value
from .messages import _enum_repr


class InvariantError(AssertionError):
    """An invariant of the book or the accounts does not hold.

    ``invariant`` is its short name (e.g. ``"uncrossed book"``); the message adds the values.
    """

    def __init__(self, invariant: str, detail: str):
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant


def _require(ok: bool, invariant: str, detail) -> None:
    # ``detail`` may be a callable so that the message is only formatted on failure.
    if not ok:
        raise InvariantError(invariant, detail() if callable(detail) else detail)


# ------------------------------------------------------------------------------ the book

def _as_events(events) -> list[Event]:
    if isinstance(events, np.ndarray):
        return array_to_events(events)
    return [ev if isinstance(ev, Event) else Event(*ev) for ev in events]


def check_book(book, events=None) -> None:
    """Check the invariants of docs/semantics.md on a book's public state. O(n) queries.

    Works on the compiled ``OrderBook``, :class:`ReferenceOrderBook`, ``Engine.book``, or any
    object with their query methods (``l3``, ``l2``, ``stops``, ``best_bid``, ``best_ask``,
    ``spread``, ``quantity_at``, ``order``, ``in``, ``n_orders``, ``n_stops``, ``last_price``).

    Checked without ``events``:

    - ``l3()`` and ``stops()`` have their dtypes; every order id appears once among them.
    - every resting order has a side of +1/-1, price >= 1 tick and qty >= 1 lot; bids come first,
      best (highest) first, then asks best (lowest) first, so each level is one contiguous run.
    - uncrossed book: best bid < best ask; ``best_bid()``, ``best_ask()`` and ``spread()`` agree
      with ``l3()``.
    - ``l2()`` has every level of ``l3()``, its quantity the sum of its orders' (at most
      INT64_MAX lots) and its order count theirs; ``quantity_at`` agrees.
    - ``n_orders == len(l3())`` and ``n_stops == len(stops())``; ``order(id)`` and ``id in book``
      agree with both.
    - armed stops: kind STOP_MARKET (price 0) or STOP_LIMIT (price >= 1), stop price >= 1,
      qty >= 1, in trigger order (sell stops by falling stop price, then buy stops by rising
      stop price), and none already satisfied by ``last_price`` (it would have triggered).

    With ``events`` (every event the book emitted since it was empty, per call or batch, in
    order), also:

    - the event ``seq`` numbers increase;
    - the live orders are exactly those the events leave with quantity (ACCEPTED minus TRADEs,
      reset by AMENDED, ended by CANCELLED), each with that remaining qty, price, side and owner,
      and armed stops are the ACCEPTED stops not yet STOP_TRIGGERED;
    - FIFO: within a level, orders are sorted by the seq of the event that last queued them
      (ACCEPTED, AMENDED(REQUEUED) or STOP_TRIGGERED; AMENDED(KEPT_PRIORITY) keeps the place).

    Parameters
    ----------
    book : OrderBook-like
        The book to check; only queried.
    events : list of Event or EVENT_DTYPE array, optional
        The book's complete event log, to check FIFO and every order's remaining quantity.

    Raises
    ------
    InvariantError
        Naming the first invariant that does not hold, with the values that break it.
    """
    l3, stops = book.l3(), book.stops()
    _require(l3.dtype == L3_DTYPE, "l3 dtype", lambda: f"l3() has dtype {l3.dtype}")
    _require(stops.dtype == STOP_DTYPE, "stops dtype", lambda: f"stops() has dtype {stops.dtype}")
    rows, stop_rows = l3.tolist(), stops.tolist()

    ids = [r[0] for r in rows] + [s[0] for s in stop_rows]
    _require(len(set(ids)) == len(ids), "unique order ids",
             lambda: f"ids appearing twice in l3()/stops(): "
                     f"{sorted({i for i in ids if ids.count(i) > 1})}")

    # resting orders: fields and price-time order (bids best first, then asks best first)
    prev = None
    for i, (oid, _owner, price, qty, side) in enumerate(rows):
        _require(side in (Side.BUY, Side.SELL), "resting order side",
                 f"l3()[{i}] order {oid} has side {side}, not +1/-1")
        _require(qty >= 1, "positive resting quantity",
                 f"l3()[{i}] order {oid} rests with qty {qty} lots")
        _require(price >= 1, "positive resting price",
                 f"l3()[{i}] order {oid} rests at price {price} ticks")
        if prev is not None:
            _require(not (prev[1] == Side.SELL and side == Side.BUY), "bids before asks",
                     f"l3()[{i}] bid {oid} comes after an ask")
            if prev[1] == side:
                better = price > prev[0] if side == Side.BUY else price < prev[0]
                _require(not better, "price priority in l3",
                         f"l3()[{i}] order {oid} at {price} follows a "
                         f"{'bid' if side == Side.BUY else 'ask'} at {prev[0]}")
        prev = (price, side)

    bids = [r for r in rows if r[4] == Side.BUY]
    asks = [r for r in rows if r[4] == Side.SELL]
    best_bid = bids[0][2] if bids else None
    best_ask = asks[0][2] if asks else None
    _require(book.best_bid() == best_bid, "best bid",
             lambda: f"best_bid() is {book.best_bid()} but l3()'s best bid is {best_bid}")
    _require(book.best_ask() == best_ask, "best ask",
             lambda: f"best_ask() is {book.best_ask()} but l3()'s best ask is {best_ask}")
    _require(best_bid is None or best_ask is None or best_bid < best_ask, "uncrossed book",
             f"best bid {best_bid} >= best ask {best_ask}")
    spread = None if best_bid is None or best_ask is None else best_ask - best_bid
    _require(book.spread() == spread, "spread",
             lambda: f"spread() is {book.spread()}, best ask - best bid is {spread}")

    # levels: l2 must list every level of l3 with its total and order count
    l2 = book.l2(len(rows) + 1)
    for side, prefix, side_rows in ((Side.BUY, "bid", bids), (Side.SELL, "ask", asks)):
        levels: dict[int, list[int]] = {}
        for _, _, price, qty, _ in side_rows:
            level = levels.setdefault(price, [0, 0])
            level[0] += qty
            level[1] += 1
        want = (list(levels), [v[0] for v in levels.values()], [v[1] for v in levels.values()])
        got = tuple(getattr(l2, f"{prefix}_{name}").tolist() for name in ("price", "qty",
                                                                          "orders"))
        for name, g, w in zip(("prices", "quantities", "order counts"), got, want, strict=True):
            _require(g == w, f"{prefix} level {name}",
                     f"l2() gives {g}, the orders in l3() give {w}")
        for price, (total, _) in levels.items():
            _require(total <= INT64_MAX, "level total fits int64",
                     f"{prefix} level {price} holds {total} lots")
            at = book.quantity_at(side, price)
            _require(at == total, "quantity_at",
                     f"quantity_at({int(side)}, {price}) is {at}, the level's orders hold {total}")

    _require(book.n_orders == len(rows), "n_orders",
             lambda: f"n_orders is {book.n_orders}, l3() has {len(rows)} orders")
    _require(book.n_stops == len(stop_rows), "n_stops",
             lambda: f"n_stops is {book.n_stops}, stops() has {len(stop_rows)} stops")

    # armed stops: fields, trigger order, and none already triggered by the last price
    last = book.last_price
    prev = None
    for i, (oid, _owner, stop_price, price, qty, kind, side) in enumerate(stop_rows):
        _require(kind in STOP_KINDS, "stop kind",
                 f"stops()[{i}] order {oid} has kind {kind}, not STOP_MARKET/STOP_LIMIT")
        _require(side in (Side.BUY, Side.SELL), "stop side",
                 f"stops()[{i}] order {oid} has side {side}")
        _require(qty >= 1, "positive stop quantity", f"stops()[{i}] order {oid} has qty {qty}")
        _require(stop_price >= 1, "positive stop price",
                 f"stops()[{i}] order {oid} has stop price {stop_price}")
        _require((price == 0) == (kind == Kind.STOP_MARKET) and price >= 0, "stop limit price",
                 f"stops()[{i}] {_enum_repr(Kind, kind)} {oid} has price {price}")
        if prev is not None:
            _require(not (prev[1] == Side.BUY and side == Side.SELL), "sell stops first",
                     f"stops()[{i}] sell stop {oid} comes after a buy stop")
            if prev[1] == side:
                early = stop_price > prev[0] if side == Side.SELL else stop_price < prev[0]
                _require(not early, "stop trigger order",
                         f"stops()[{i}] stop {oid} at {stop_price} follows one at {prev[0]}")
        prev = (stop_price, side)
        if last is not None:
            satisfied = last >= stop_price if side == Side.BUY else last <= stop_price
            _require(not satisfied, "no armed stop already triggered",
                     f"{'buy' if side == Side.BUY else 'sell'} stop {oid} at {stop_price} is "
                     f"still armed after a trade at {last}")

    # per-order queries agree with the snapshots
    for oid, owner, price, qty, side in rows:
        _check_order(book, oid, (oid, owner, side, price, qty), "resting")
    for oid, owner, stop_price, price, qty, kind, side in stop_rows:
        _check_order(book, oid, (oid, owner, side, price, qty), "armed")
        info = book.order(oid)
        _require((info.kind, info.stop_price) == (kind, stop_price), "order() of a stop",
                 f"order({oid}) is {info}, stops() says kind {kind} stop {stop_price}")

    if events is not None:
        _check_events(rows, stop_rows, _as_events(events))


def _check_order(book, oid, want, what):
    _require(oid in book, "order id membership", f"{what} order {oid} is not `in` the book")
    info = book.order(oid)
    got = (info.order_id, info.owner, info.side, info.price, info.qty)
    _require(got == want, "order() of a live order",
             f"order({oid}) gives (id, owner, side, price, qty) {got}, the snapshot {want}")


def _check_events(rows, stop_rows, events: list[Event]) -> None:
    """Replay an event log (docs/semantics.md, 'Events of an accepted new order')."""
    # per id: [owner, side, price, stop_price, remaining qty, armed, seq that queued it]
    state: dict[int, list] = {}
    prev_seq = None
    for ev in events:
        _require(prev_seq is None or ev.seq > prev_seq, "event seq increases",
                 f"event {ev!r} follows seq {prev_seq}")
        prev_seq = ev.seq
        kind = ev.kind
        if kind == EventKind.ACCEPTED:
            state[ev.order_id] = [ev.owner, ev.side, ev.price, ev.stop_price, ev.qty,
                                  ev.stop_price != 0, ev.seq]
            continue
        if kind == EventKind.REJECTED:
            continue
        order = state.get(ev.order_id)
        _require(order is not None and order[4] > 0, "event of a live order",
                 f"{ev!r} concerns order {ev.order_id}, which the log has no live record of")
        if kind == EventKind.TRADE:
            maker = state.get(ev.maker_id)
            _require(maker is not None and maker[4] >= ev.qty and order[4] >= ev.qty,
                     "trade within remaining quantities",
                     f"{ev!r}: taker has {order[4]}, maker "
                     f"{None if maker is None else maker[4]} lots left")
            order[4] -= ev.qty
            maker[4] -= ev.qty
        elif kind == EventKind.CANCELLED:
            order[4] = 0
        elif kind == EventKind.AMENDED:
            order[4] = ev.qty
            if ev.reason == Reason.REQUEUED:
                order[2], order[6] = ev.price, ev.seq
        elif kind == EventKind.STOP_TRIGGERED:
            order[5], order[6] = False, ev.seq
    live = {oid: s for oid, s in state.items() if s[4] > 0}
    resting = {oid for oid, s in live.items() if not s[5]}
    armed = {oid for oid, s in live.items() if s[5]}
    got_resting = {r[0] for r in rows}
    got_armed = {s[0] for s in stop_rows}
    _require(got_resting == resting, "resting orders match the event log",
             lambda: f"l3() has {sorted(got_resting)}, the events leave {sorted(resting)} resting")
    _require(got_armed == armed, "armed stops match the event log",
             lambda: f"stops() has {sorted(got_armed)}, the events leave {sorted(armed)} armed")
    prev = None
    for oid, owner, price, qty, side in rows:
        s = live[oid]
        want = (s[0], s[1], s[2], s[4])
        _require((owner, side, price, qty) == want, "remaining quantity from the event log",
                 f"l3() has order {oid} as (owner, side, price, qty) {(owner, side, price, qty)}, "
                 f"the events give {want}")
        if prev is not None and prev[:2] == (side, price):
            _require(prev[2] < s[6], "FIFO within a level",
                     f"order {oid} (queued at seq {s[6]}) is behind order {prev[3]} (queued at "
                     f"seq {prev[2]}) at {'bid' if side == Side.BUY else 'ask'} {price}")
        prev = (side, price, s[6], oid)
    for oid, owner, stop_price, _price, qty, _kind, side in stop_rows:
        s = live[oid]
        _require((owner, side, stop_price, qty) == (s[0], s[1], s[3], s[4]),
                 "armed stop from the event log",
                 f"stops() has {oid} as (owner, side, stop, qty) {(owner, side, stop_price, qty)}"
                 f", the events give {(s[0], s[1], s[3], s[4])}")


# --------------------------------------------------------------------------- the accounts


def _unrealised(position: int, cost: int, mark: int, v) -> int:
    """sign(q) (V(mark, |q|) - cost), with the other sign on an inverse venue (``v``: its
    _Instrument)."""
    value = contract_value(v.inverse, v.k, mark, abs(position))
    if position > 0:
        return (value - cost) * (-1 if v.inverse else 1)
    if position < 0:
        return (cost - value) * (-1 if v.inverse else 1)
    return 0


def _assets(engine, venue) -> list[tuple[int, int, int, int]]:
    """The engine's collateral assets as (instrument, num, den, haircut_ppm): one unit per tick
    of the instrument's mark is num / den quote units (recomputed from the public specs)."""
    names = [spec.name for spec in getattr(engine, "instruments", ())] or ["main"]
    quote_unit = Fraction(Decimal(str(engine.quote_unit)))
    out = []
    for spec in getattr(engine, "assets", ()):
        i = names.index(spec.instrument)
        tick = Decimal(str(engine.instruments[i].tick_size))
        ratio = Fraction(Decimal(spec.unit) * tick) / quote_unit
        out.append((i, ratio.numerator, ratio.denominator, int(spec.haircut_ppm)))
    return out


def _holding_value(units: int, mark: int | None, asset: tuple[int, int, int, int]) -> int:
    _, num, den, haircut = asset
    if mark is None:
        return 0
    return units * mark * num * (PPM - haircut) // (den * PPM)


def check_accounts(engine, *, settled: bool = False) -> None:
    """Check the money and position identities of docs/liquidation.md on an engine.

    Works on the compiled ``Engine`` and :class:`ReferenceEngine`, of one instrument or several
    (docs/market_wide.md: positions per instrument against one collateral); only queries them
    (``account()`` and ``mark_price()`` never change what an engine does next). Checked, per
    instrument where it says "position" (``AccountInfo.positions``), the other positions held at
    their marks:

    - money conservation (exact, in quote units): ``sum(collateral + reserve) + sum(cost of
      shorts) - sum(cost of longs) + fees_collected == total_deposits``, over every account, the
      insurance fund's included. This is the documented identity ``sum(equity + reserve) +
      fees_collected == total_deposits`` at any common mark ``m``, with the mark cancelled out
      because positions sum to 0; it is also checked as documented, from ``account().equity``
      at the mark and from ``total_equity(m)`` at m = 1 tick and at the mark. On an inverse
      venue (``settlement``) a long's cost counts with the other sign (it is short the coin),
      and the identity at a common mark holds only to the rounding of each position's coin
      value, so it is not checked; ``total_equity(m)`` is, per position.
    - positions sum to 0 (the fund's included); ``open_interest()`` is the sum of the longs.
    - the fund: ``account(INSURANCE_FUND)`` is exempt and its collateral is ``insurance_fund``;
      a negative fund is covered by records whose ``bad_debt`` add up to at least its deficit.
    - every account: ``cost >= 0``, 0 exactly when flat; ``reserve >= 0``, non-zero only for an
      isolated account, which holds one position at most; every position's notional at
      ``max_price`` within int64 (not ``max_position``: seed_position and take-overs ignore
      resting orders, whose fills can carry a position past it).
    - every account's fields at the mark: equity = collateral + unrealised PnL; maintenance and
      initial margin from ``engine.tiers`` (maintenance on ``engine.mm_basis``: the notional at
      the mark or the cost); the bankruptcy price by its formula; the liquidation price exact
      (liquidatable by ``engine.trigger`` there, not one tick better) and crossed by the mark
      exactly when the account is liquidatable.
    - the queue holds distinct, non-exempt accounts (or the fund); no order of the liquidator
      (negative id) rests, and every resting order's owner has an account.
    - with ``settled=True`` (the caller ran ``liquidate()`` to its end) and an empty queue: no
      account is liquidatable at the mark.

    Collateral itself may be negative: realised losses and fees come out of it, and the
    shortfall step only covers accounts the liquidator closes.

    Parameters
    ----------
    engine : Engine or ReferenceEngine
    settled : bool
        Whether the last ``liquidate()`` ran until a round made no progress (no ``max_rounds``).

    Raises
    ------
    InvariantError
        Naming the first identity that does not hold, with the values that break it.
    """
    owners = [int(o) for o in engine.owners()]
    accounts = [engine.account(o) for o in owners]
    by_owner = dict(zip(owners, accounts, strict=True))
    venue = _venue(engine)
    count = len(venue)
    marks = [v.mark for v in venue]
    mark = marks[0]
    fees, deposits = int(engine.fees_collected), int(engine.total_deposits)
    assets = _assets(engine, venue)
    holdings = {a.owner: {int(h.asset): int(h.balance) for h in getattr(a, "assets", ())}
                for a in accounts}
    converted = [tuple(int(x) for x in pair) for pair in getattr(engine, "conversions", ())]
    paid = sum(quote for _, quote in converted)
    asset_deposits = [int(x) for x in getattr(engine, "asset_deposits", ())]
    for n, (units_sold, _) in enumerate(converted):
        held_units = sum(h.get(n, 0) for h in holdings.values())
        _require(held_units + units_sold == asset_deposits[n], "asset conservation",
                 f"asset {engine.assets[n].name!r}: accounts hold {held_units} units and "
                 f"{units_sold} were converted, {held_units + units_sold} != asset_deposits "
                 f"{asset_deposits[n]}")
    for owner, h in holdings.items():
        _require(all(units > 0 for units in h.values()) and (not h or (
            owner != INSURANCE_FUND and not by_owner[owner].isolated)),
            "collateral assets", f"account({owner}) holds {h}")

    _require(INSURANCE_FUND in by_owner, "insurance fund account",
             f"owners() {owners} lacks INSURANCE_FUND ({INSURANCE_FUND})")
    fund = by_owner[INSURANCE_FUND]
    _require(int(fund.collateral) == int(engine.insurance_fund) and bool(fund.exempt),
             "insurance fund account",
             f"account(INSURANCE_FUND) is {fund}, insurance_fund is {engine.insurance_fund}")

    held = {a.owner: _positions(a, count) for a in accounts}
    for i in range(count):
        where = "" if count == 1 else f" in instrument {i}"
        positions = {owner: q[i][0] for owner, q in held.items() if i in q}
        if count == 1:
            positions = {a.owner: int(a.position) for a in accounts}
        _require(sum(positions.values()) == 0, "positions sum to zero",
                 lambda where=where, positions=positions:
                 f"positions{where} {positions} sum to {sum(positions.values())} lots")
        longs = sum(q for q in positions.values() if q > 0)
        interest = int(engine.open_interest() if count == 1 else engine.open_interest(i))
        _require(interest == longs, "open interest",
                 lambda where=where, interest=interest, longs=longs:
                 f"open_interest(){where} is {interest}, the longs hold {longs} lots")

    balances = sum(int(a.collateral) + int(a.reserve) for a in accounts)
    # unrealised PnL at m is sign(q) * (V(m, |q|) - cost) (the other sign when inverse); the V
    # terms cancel as positions sum to 0 (linear) or are left out (inverse: money is collateral
    # and costs, each V being rounded on its own)
    inverse = venue[0].inverse
    net_cost = sum(-cost if q > 0 else cost if q < 0 else 0 for q_by in held.values()
                   for q, cost in q_by.values()) * (-1 if inverse else 1)
    _require(balances + net_cost + fees == deposits + paid, "money conservation",
             f"sum(collateral + reserve) {balances} + short costs - long costs {net_cost} + "
             f"fees_collected {fees} = {balances + net_cost + fees} != total_deposits {deposits}"
             f" + quote paid in conversions {paid}")

    def asset_values(at) -> int:
        return sum(_holding_value(units, at[assets[n][0]], assets[n])
                   for h in holdings.values() for n, units in h.items())

    trials = [[1] * count] + ([[int(m) for m in marks]] if None not in marks else [])
    for at in trials:
        want = balances + asset_values(at) + sum(
            _unrealised(q, cost, at[i], venue[i])
            for q_by in held.values() for i, (q, cost) in q_by.items())
        total = int(engine.total_equity(at[0] if count == 1 else at))
        shown = at[0] if count == 1 else at
        _require(total == want, "total_equity",
                 f"total_equity({shown}) is {total}, the accounts' equity and reserve add up to "
                 f"{want}")
    if None not in marks and not inverse:
        total = sum(int(a.equity) + int(a.reserve) for a in accounts) - asset_values(marks)
        _require(total + fees == deposits + paid, "money conservation at the mark",
                 f"sum(account().equity + reserve) less the collateral assets' value {total} + "
                 f"fees_collected {fees} = {total + fees} != total_deposits {deposits} + quote "
                 f"paid in conversions {paid} at mark {mark if count == 1 else marks}")

    if int(engine.insurance_fund) < 0:
        bad_debt = int(engine.forced_orders()["bad_debt"].sum())
        _require(bad_debt >= -int(engine.insurance_fund), "negative fund is recorded bad debt",
                 f"insurance fund {engine.insurance_fund}, records' bad_debt add up to "
                 f"{bad_debt}")

    for a in accounts:
        _check_account(engine, a, held[a.owner], venue, assets)

    queue = [int(o) for o in engine.queue()]
    _require(len(set(queue)) == len(queue), "queue entries distinct", f"queue() is {queue}")
    for owner in queue:
        a = by_owner.get(owner)
        _require(a is not None and (owner == INSURANCE_FUND or not a.exempt),
                 "queue holds liquidatable kinds of account",
                 f"queue() {queue} holds {owner}: {a}")

    for v in venue:
        l3 = v.book.l3()
        for oid, owner in zip(l3["order_id"].tolist(), l3["owner"].tolist(), strict=True):
            _require(oid >= 0, "liquidator orders never rest", f"order {oid} of {owner} rests")
            _require(owner in by_owner, "resting orders have accounts",
                     f"order {oid} rests for owner {owner}, who has no account")

    if settled and not queue and None not in marks:
        for a in accounts:
            if not a.exempt and held[a.owner]:
                _require(not _short_of(engine, int(a.equity), int(a.maintenance_margin)),
                         "no liquidatable account after liquidate()",
                         f"account {a.owner} has equity {a.equity} "
                         f"{'<=' if engine.trigger == Trigger.AT_OR_BELOW else '<'} "
                         f"maintenance margin "
                         f"{a.maintenance_margin} at mark {mark if count == 1 else marks} with "
                         f"an empty queue: {a}")


class _Instrument(NamedTuple):
    k: int
    tiers: object
    max_price: int
    max_position: int
    mark: int | None
    book: object
    inverse: bool = False


def _venue(engine) -> list[_Instrument]:
    """The engine's instruments as the checks need them: k, tiers, bounds, mark, book. An
    engine without ``instruments`` (one of its own kind) is one instrument."""
    specs = getattr(engine, "instruments", None)
    inverse = bool(getattr(engine, "settlement", 0))
    if not specs or len(specs) == 1:
        mark = engine.mark_price()
        return [_Instrument(int(engine.k), engine.tiers, int(engine.max_price),
                            int(engine.max_position), None if mark is None else int(mark),
                            engine.book, inverse)]
    out = []
    for i, spec in enumerate(specs):
        tick, lot = Decimal(spec.tick_size), Decimal(spec.lot_size)
        k = (inverse_unit_value(tick, lot, engine.quote_unit, spec.contract_value) if inverse
             else unit_value(tick, lot, engine.quote_unit))[1]
        mark = engine.mark_price(i)
        out.append(_Instrument(k, spec.tiers, int(spec.max_price), int(spec.max_position),
                               None if mark is None else int(mark), engine.books[i], inverse))
    return out


def _positions(a, count: int) -> dict[int, tuple[int, int]]:
    """An account's nonzero positions: instrument -> (lots, cost). One instrument: the account's
    own fields (so a flat account with a cost is seen); several: ``AccountInfo.positions``."""
    if count == 1:
        q, cost = int(a.position), int(a.cost)
        return {0: (q, cost)} if q != 0 or cost != 0 else {}
    return {int(p.instrument): (int(p.position), int(p.cost)) for p in a.positions}


def _short_of(engine, equity: int, margin: int) -> bool:
    """The engine's trigger: E < MM (BELOW) or E <= MM (AT_OR_BELOW)."""
    if engine.trigger == Trigger.AT_OR_BELOW:
        return equity <= margin
    return equity < margin


def _maintenance(engine, tiers, cost: int, notional: int) -> int:
    """MM on the engine's basis: on the notional at the mark, or on the entry value (cost)."""
    if engine.mm_basis == MarginBasis.ENTRY:
        return tiers.maintenance(cost)
    return tiers.maintenance(notional)


def _check_account(engine, a, held, venue, assets) -> None:
    tag = f"account({a.owner})"
    count = len(venue)
    marks = [v.mark for v in venue]
    coll = int(a.collateral)
    own = {}   # instrument -> (units, asset) of the asset valued at its mark
    for h in getattr(a, "assets", ()):
        asset = assets[int(h.asset)]
        want = _holding_value(int(h.balance), marks[asset[0]], asset)
        _require(int(h.value) == want, "collateral asset value",
                 f"{tag} values {h.balance} units of asset {h.asset} at {h.value}, balance x "
                 f"mark x (1 - haircut) rounded down is {want}")
        coll += want
        own[asset[0]] = (int(h.balance), asset)

    def own_value(i: int, price: int) -> int:
        # the asset valued at instrument i's mark, were that mark at price (0: none)
        return _holding_value(own[i][0], price, own[i][1]) if i in own else 0
    if count > 1:
        first = held.get(0, (0, 0))
        _require((int(a.position), int(a.cost)) == first, "position fields are instrument 0's",
                 f"{tag} shows position {a.position} and cost {a.cost}, its instrument 0 "
                 f"position is {first}")
        infos = sorted(int(p.instrument) for p in a.positions)
        _require(infos == sorted(held) and all(q != 0 for q, _ in held.values()),
                 "positions listed once, nonzero, ascending",
                 f"{tag} lists positions {a.positions}")
    for i, (q, cost) in held.items():
        _require(cost >= 0 and (q != 0 or cost == 0), "cost of a position",
                 f"{tag} has position {q} lots and cost {cost} quote units"
                 + ("" if count == 1 else f" in instrument {i}"))
    _require(not a.isolated or len([q for q, _ in held.values() if q]) <= 1,
             "an isolated account holds one position",
             f"{tag} is isolated and holds {held}")
    _require(int(a.reserve) >= 0 and (a.isolated or int(a.reserve) == 0), "reserve",
             f"{tag} has reserve {a.reserve} (isolated={a.isolated})")
    for i, (q, _) in held.items():
        # max_position bounds what an order may lead to when it is sent; seed_position and
        # take-overs ignore resting orders, whose fills can then carry a position past it
        # (found by the venue machine: an LP's bid resting before a seed to max_position). What
        # every position keeps is the bound the engines rely on: its notional at max_price
        # fits int64.
        # (inverse: at one tick, where a value is largest)
        limit = INT64_MAX // (venue[i].k if venue[i].inverse else venue[i].max_price * venue[i].k)
        _require(abs(q) <= limit, "positions fit int64 at max_price",
                 f"{tag} holds {q} lots, past {limit} (int64 notional at max_price "
                 f"{venue[i].max_price})" + ("" if count == 1 else f" in instrument {i}"))
    held = {i: qc for i, qc in held.items() if qc[0] != 0}

    def terms(i: int, price: int | None) -> tuple[int, int, int]:
        # (unrealised, MM, IM) of position i at price (None: no mark, as the engines count it)
        q, cost = held[i]
        v = venue[i]
        notional = 0 if price is None else contract_value(v.inverse, v.k, price, abs(q))
        profit = 0 if price is None else _unrealised(q, cost, price, v)
        return (profit, _maintenance(engine, v.tiers, cost, notional),
                v.tiers.initial(notional))

    if None not in marks:
        at = {i: terms(i, marks[i]) for i in held}
        want = coll + sum(t[0] for t in at.values())
        shown = marks[0] if count == 1 else marks
        _require(int(a.equity) == want, "equity at the mark",
                 f"{tag} has equity {a.equity}, collateral + its assets' value + unrealised PnL "
                 f"at {shown} is {want}")
        mm, im = sum(t[1] for t in at.values()), sum(t[2] for t in at.values())
        if count == 1:
            notional = contract_value(venue[0].inverse, venue[0].k, int(marks[0]),
                                      abs(held.get(0, (0, 0))[0]))
            detail = f"for notional {notional}"
        else:
            detail = f"for the positions {held} at marks {marks}"
        _require((int(a.maintenance_margin), int(a.initial_margin)) == (mm, im),
                 "margin from the tiers",
                 f"{tag} has MM {a.maintenance_margin}, IM {a.initial_margin}; the tiers give "
                 f"{mm}, {im} {detail}")
    if not held:
        _require(a.bankruptcy_price is None and a.liquidation_price is None,
                 "flat accounts have no bankruptcy or liquidation price",
                 f"{tag} is flat: {a}")
        return
    prices = {0: (a.liquidation_price, a.bankruptcy_price)} if count == 1 else {
        int(p.instrument): (p.liquidation_price, p.bankruptcy_price) for p in a.positions}
    if count > 1 and 0 not in held:
        _require(a.bankruptcy_price is None and a.liquidation_price is None,
                 "no instrument 0 position, no instrument 0 prices", f"{tag}: {a}")
    for i, (q, cost) in held.items():
        liq, bankruptcy = prices[i]
        other = [terms(j, marks[j]) for j in held if j != i]
        others_profit, others_mm = sum(t[0] for t in other), sum(t[1] for t in other)
        # the asset valued at i's mark moves with it; the others are held at their values
        base = coll + others_profit - (own_value(i, marks[i]) if i in own else 0)
        k = venue[i].k
        max_price = venue[i].max_price
        where = "" if count == 1 else f" in instrument {i}"

        def solvent(p: int, i=i, base=base, q=q, cost=cost) -> bool:
            return base + _unrealised(q, cost, p, venue[i]) + own_value(i, p) >= 0

        if i in own or venue[i].inverse:
            # searched within [0, max_price]: a long's first solvent price (max_price if
            # none), a short's last (0 if none)
            if q > 0:
                ok = (bankruptcy == 0 and solvent(0)) or (
                    bankruptcy == max_price and not solvent(max_price)) or (
                    0 < bankruptcy <= max_price and solvent(bankruptcy)
                    and not solvent(bankruptcy - 1))
            else:
                ok = (bankruptcy == max_price and solvent(max_price)) or (
                    bankruptcy == 0 and not solvent(0)) or (
                    0 <= bankruptcy < max_price and solvent(bankruptcy)
                    and not solvent(bankruptcy + 1))
            _require(ok, "bankruptcy price",
                     f"{tag} has bankruptcy price {bankruptcy}{where}, not the edge of "
                     f"solvency with its asset valued at that price")
        else:
            bp = -((base - cost) // (q * k)) if q > 0 else (cost + base) // (-q * k)
            _require(bankruptcy == max(0, bp), "bankruptcy price",
                     f"{tag} has bankruptcy price {bankruptcy}{where}, the formula gives "
                     f"{max(0, bp)}")
        if a.exempt:
            _require(liq is None, "exempt accounts have no liquidation price", f"{tag}: {a}")
            continue
        if q < 0 and i in own and (own[i][0] * own[i][1][1] * (PPM - own[i][1][3])
                                   > -q * k * own[i][1][2] * PPM):
            # a short its own asset outweighs: its equity rises with the price, no single
            # liquidation price
            _require(liq is None, "no liquidation price for a short its asset outweighs",
                     f"{tag}: {a}")
            continue

        def liquidatable(p: int, i=i, base=base, others_mm=others_mm) -> bool:
            profit, margin, _ = terms(i, p)
            return _short_of(engine, base + profit + own_value(i, p), others_mm + margin)

        if liq is None:
            extreme = 0 if q > 0 else max_price
            _require(not liquidatable(extreme), "liquidation price",
                     f"{tag} has no liquidation price{where} but is liquidatable at {extreme}")
        else:
            better = liq + 1 if q > 0 else liq - 1
            _require(0 <= liq <= max_price and liquidatable(liq)
                     and not (0 <= better <= max_price and liquidatable(better)),
                     "liquidation price", f"{tag} has liquidation price {liq}{where}, which is "
                                          f"not the last price at which it is liquidatable")
        if None not in marks:
            mark = marks[i]
            crossed = liq is not None and (mark <= liq if q > 0 else mark >= liq)
            _require(crossed == _short_of(engine, int(a.equity), int(a.maintenance_margin)),
                     "liquidatable exactly past the liquidation price",
                     f"{tag} at mark {mark}{where}: equity {a.equity}, MM "
                     f"{a.maintenance_margin}, liquidation price {liq}")
