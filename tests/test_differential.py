"""Differential, stateful property test of the order book (see docs/semantics.md).

A ``RuleBasedStateMachine`` drives two books, *left* and *right*, with the same random operations
and demands identical results after every step:

* ``TestEngineVsReference``: left is the Cython engine ``orderbook.OrderBook``, right the
  pure-Python reference ``orderbook.reference.OrderBook``; single operations go through the
  per-call API of both, batches through ``process`` of both (or, now and then, per call on one
  side and through ``process`` on the other). It is skipped only while the engine does not exist.
* ``TestReferenceSelfConsistency``: both books are the reference; left runs every message per call,
  right runs every message through ``process``. A message the per-call API rejects by raising
  (reasons 10-17) must be exactly one REJECTED event with the matching reason in the batch path;
  since that event takes a sequence and message number the per-call path does not use, each book
  keeps an offset that maps its numbers onto the per-call ("canonical") numbering.

Besides comparing the two books, every message is checked against a small model of the book
(``Model``) built only from docs/semantics.md:

* before the message, the model predicts the validation failure (reason, and so the exception
  type), the market refusal, or acceptance, and simulates the spec's steps 1-5 to get the exact
  events (fields the spec defines: ``_SPEC_FIELDS``);
* the actual events are then replayed into the model's per-id bookkeeping, which checks each one
  on its own: FIFO and price priority of every maker, trade price and quantity, the taker's limit,
  self-trade prevention, which stops trigger in which order right after their trade, fill-or-kill,
  and the ledger of every order id (submitted = filled + cancelled + resting, where AMENDED resets
  the remaining quantity);
* after every step the invariant compares both books with each other and with the model: exact
  ``l3()`` and ``stops()``, FIFO within a level by the seq of the event that last queued each order
  (ACCEPTED, AMENDED(REQUEUED) or STOP_TRIGGERED), best bid/ask, last price, counters, an
  uncrossed book, no armed stop that the last price already satisfies, and ``orders_of(owner)``
  of every owner.

A refusal by exception must be an ``OrderError`` (``UnknownOrderError`` for UNKNOWN_ORDER) whose
``reason`` is the one the model predicts and the batch path reports.

Copies (``copy()`` and pickle) replace one or both books now and then; replacing one side only
makes the other book check that the copy behaves exactly like the original.
"""

from __future__ import annotations

import math
import os
import pickle
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from orderbook.errors import OrderError, UnknownOrderError
from orderbook.events import (
    EVENT_DTYPE,
    INT64_MAX,
    INT64_MIN,
    L3_DTYPE,
    MESSAGE_DTYPE,
    STOP_DTYPE,
    AmendRule,
    Event,
    EventKind,
    Kind,
    Reason,
    SelfTradePrevention,
    Side,
    array_to_events,
)

# --------------------------------------------------------------------------------------------
# Which classes are compared
# --------------------------------------------------------------------------------------------


def _reference_cls():
    from orderbook.reference import OrderBook

    return OrderBook


def _engine_cls():
    """``orderbook.OrderBook``; skip only while the engine does not exist yet.

    The engine test is skipped when ``from orderbook import OrderBook`` raises ImportError (or
    resolves to the pure-Python reference) *and* no compiled extension sits in the package.
    Once a compiled extension exists, or ORDERBOOK_REQUIRE_ENGINE is set, a failing import is an
    error, never a skip.
    """
    import orderbook

    pkg_dirs = list(getattr(orderbook, "__path__", []))
    built = sorted(
        name
        for d in pkg_dirs
        for name in os.listdir(d)
        if name.endswith((".so", ".pyd"))
    )
    required = bool(os.environ.get("ORDERBOOK_REQUIRE_ENGINE")) or bool(built)
    try:
        from orderbook import OrderBook
    except ImportError as exc:
        if required:
            raise AssertionError(
                f"orderbook.OrderBook does not import although the engine is built ({built}) "
                f"or required (ORDERBOOK_REQUIRE_ENGINE): {exc!r}"
            ) from exc
        pytest.skip(
            "engine not available yet: `from orderbook import OrderBook` failed with "
            f"{exc!r} and no compiled extension is in {pkg_dirs}"
        )
    module = getattr(OrderBook, "__module__", "")
    if OrderBook is _reference_cls() or module == "orderbook.reference":
        if required:
            raise AssertionError(
                "orderbook.OrderBook is the pure-Python reference although a compiled engine "
                f"exists ({built}); the engine test would compare the reference with itself"
            )
        pytest.skip("engine not available yet: orderbook.OrderBook resolves to the reference")
    return OrderBook


# --------------------------------------------------------------------------------------------
# Constants and strategies
# --------------------------------------------------------------------------------------------

BUY, SELL = int(Side.BUY), int(Side.SELL)
NEW_KINDS = frozenset(int(k) for k in (Kind.LIMIT, Kind.MARKET, Kind.IOC, Kind.FOK, Kind.POST_ONLY,
                                       Kind.STOP_MARKET, Kind.STOP_LIMIT))
STOP_KINDS = frozenset((int(Kind.STOP_MARKET), int(Kind.STOP_LIMIT)))
PRICED_KINDS = frozenset(int(k) for k in (Kind.LIMIT, Kind.IOC, Kind.FOK, Kind.POST_ONLY,
                                          Kind.STOP_LIMIT, Kind.AMEND))
RESTING_KINDS = frozenset(int(k) for k in (Kind.LIMIT, Kind.POST_ONLY, Kind.STOP_LIMIT))
RESIDUAL_CANCELLED_KINDS = frozenset(int(k) for k in (Kind.MARKET, Kind.IOC, Kind.FOK,
                                                      Kind.STOP_MARKET))
KIND_VALUES = frozenset(int(k) for k in Kind)
VALIDATION_REASONS = frozenset(int(r) for r in (
    Reason.INVALID_KIND, Reason.INVALID_SIDE, Reason.INVALID_PRICE, Reason.INVALID_STOP_PRICE,
    Reason.INVALID_QTY, Reason.DUPLICATE_ID, Reason.UNKNOWN_ORDER, Reason.QTY_OVERFLOW))

#: per-call signatures: positional parameters in order (``owner`` is handled by an owner style)
SIGNATURES = {
    "limit": ("order_id", "side", "price", "qty", "owner"),
    "market": ("order_id", "side", "qty", "owner"),
    "ioc": ("order_id", "side", "price", "qty", "owner"),
    "fok": ("order_id", "side", "price", "qty", "owner"),
    "post_only": ("order_id", "side", "price", "qty", "owner"),
    "stop_market": ("order_id", "side", "stop_price", "qty", "owner"),
    "stop_limit": ("order_id", "side", "stop_price", "price", "qty", "owner"),
    "cancel": ("order_id",),
    "amend": ("order_id", "price", "qty"),
}
METHOD_KIND = {
    "limit": Kind.LIMIT, "market": Kind.MARKET, "ioc": Kind.IOC, "fok": Kind.FOK,
    "post_only": Kind.POST_ONLY, "stop_market": Kind.STOP_MARKET, "stop_limit": Kind.STOP_LIMIT,
    "cancel": Kind.CANCEL, "amend": Kind.AMEND,
}
NEW_METHODS = ("limit", "market", "ioc", "fok", "post_only", "stop_market", "stop_limit")
MSG_FIELDS = ("order_id", "owner", "price", "stop_price", "qty", "kind", "side")
FIELD_RANGE = {
    "order_id": (INT64_MIN, INT64_MAX), "owner": (INT64_MIN, INT64_MAX),
    "price": (INT64_MIN, INT64_MAX), "stop_price": (INT64_MIN, INT64_MAX),
    "qty": (INT64_MIN, INT64_MAX), "kind": (0, 255), "side": (-128, 127),
}

POOL = 30                 # order ids 0..POOL are reused all the time
NEVER_ISSUED = range(1000, 1011)  # no rule ever submits a new order with these ids
IDS = st.integers(0, POOL)
SIDES = st.sampled_from([Side.BUY, Side.SELL, 1, -1])
PRICES = st.integers(95, 105)
NP_PRICES = st.integers(95, 105) | st.integers(95, 105).map(np.int64)
QTYS = st.integers(1, 10)
OWNERS = st.integers(0, 2)
OWNER_STYLE = st.sampled_from(["pos", "kw", "omit"])
LOOSE_KIND = st.sampled_from([int(k) for k in Kind] * 2 + [int(Kind.LIMIT)] * 6 + [0, 10, 255])
LOOSE_SIDE = st.sampled_from([1, -1, 1, -1, 1, -1, 0, 2])
LOOSE_PRICE = st.sampled_from([0, -1] + list(range(95, 106)))
LOOSE_QTY = st.sampled_from([0, -1] + list(range(1, 11)))
BIG_QTY = st.sampled_from([INT64_MAX, INT64_MAX - 1, 2**62, 2**62 + 1, INT64_MAX // 3])
BAD_TYPES = [1.0, 100.5, float("nan"), np.float64(3.0), True, False, "100", None, Decimal(100)]
OUT_OF_INT64 = [2**63, INT64_MIN - 1, 2**64 + 5]


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


class Op:
    """One message: a per-call method (or ``submit``) with its fields.

    ``expect`` is the exception type the spec requires when the message cannot be put in a
    ``MESSAGE_DTYPE`` row (wrong types, values outside the field's range); for representable
    messages the model decides.
    """

    __slots__ = ("method", "fields", "owner_style", "expect", "_row")

    def __init__(self, method, fields, owner_style="pos", expect=None):
        self.method = method
        self.fields = dict(fields)
        self.owner_style = owner_style
        self.expect = expect
        if method in NEW_METHODS and owner_style == "omit":
            self.fields["owner"] = 0
        self._row = self._make_row()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.method}({args})"

    def call(self, book):
        f = self.fields
        if self.method == "submit":
            rest = {k: v for k, v in f.items() if k not in ("kind", "order_id")}
            return book.submit(f["kind"], f["order_id"], **rest)
        args, kwargs = [], {}
        for name in SIGNATURES[self.method]:
            if name == "owner":
                if self.owner_style == "kw":
                    kwargs["owner"] = f["owner"]
                elif self.owner_style == "pos":
                    args.append(f["owner"])
            else:
                args.append(f[name])
        return getattr(book, self.method)(*args, **kwargs)

    def row(self):
        """The message as a dict of MESSAGE_DTYPE fields, or None if it cannot be one."""
        return self._row

    def _make_row(self):
        values = {name: 0 for name in MSG_FIELDS}
        for name, v in self.fields.items():
            values[name] = v
        if self.method != "submit":
            values["kind"] = int(METHOD_KIND[self.method])
        out = {}
        for name in MSG_FIELDS:
            v = values[name]
            lo, hi = FIELD_RANGE[name]
            if not _is_int(v) or not lo <= int(v) <= hi:
                return None
            out[name] = int(v)
        return out


def _norm(ev: Event, seq_off: int, msg_off: int) -> Event:
    return ev._replace(seq=ev.seq - seq_off, msg=ev.msg - msg_off) if (seq_off or msg_off) else ev


def _er(ev) -> str:
    """repr of an Event; Event.__repr__ raises for a side that is not a Side (echoed rejects)."""
    try:
        return repr(ev)
    except ValueError:
        return f"Event{tuple(ev)}"


def _ers(events) -> str:
    return "[" + ", ".join(map(_er, events)) + "]"


def _fmt(outcome):
    if outcome[0] == "ok":
        return "events:\n    " + "\n    ".join(map(_er, outcome[1]))
    return f"raised {outcome[1].__name__} ({outcome[3]})" + (
        f" / {_er(outcome[2])}" if outcome[2] else "")


#: the fields the spec defines for each event kind (the others are not compared with the model)
_SPEC_FIELDS = {
    EventKind.ACCEPTED: ("order_id", "owner", "side", "price", "stop_price", "qty"),
    EventKind.TRADE: ("order_id", "owner", "maker_id", "maker_owner", "side", "price", "qty"),
    EventKind.CANCELLED: ("reason", "order_id", "side", "price", "qty"),
    EventKind.AMENDED: ("reason", "order_id", "price", "qty"),
    EventKind.STOP_TRIGGERED: ("order_id", "owner", "side", "price", "stop_price", "qty"),
    EventKind.REJECTED: ("reason", "order_id"),
}


def _spec_fields(ev):
    names = _SPEC_FIELDS.get(ev.kind, ())
    extra = ("stop_price",) if ev.kind == EventKind.CANCELLED and ev.reason == Reason.USER else ()
    return (ev.seq, ev.msg, ev.kind) + tuple(getattr(ev, n) for n in names + extra)


def _snapshot(book):
    return (book.l3().tolist(), book.stops().tolist(), book.last_price, book.message_count,
            book.event_count, book.best_bid(), book.best_ask(), book.n_orders, book.n_stops)


# --------------------------------------------------------------------------------------------
# Model of the contract, fed with the canonical events
# --------------------------------------------------------------------------------------------

ARMED, INFLIGHT, RESTING = "armed", "inflight", "resting"


class Order:
    __slots__ = ("oid", "owner", "side", "kind", "price", "stop_price", "queued", "post_only",
                 "state", "submitted", "filled", "cancelled")

    def __init__(self, oid, owner, side, kind, price, stop_price, qty, seq):
        self.oid, self.owner, self.side, self.kind = oid, owner, side, kind
        self.price, self.stop_price = price, stop_price
        self.queued = seq           # seq of the event that last queued it (FIFO key)
        self.post_only = kind == Kind.POST_ONLY
        self.state = ARMED if kind in STOP_KINDS else INFLIGHT
        self.submitted, self.filled, self.cancelled = qty, 0, 0

    @property
    def rem(self):
        return self.submitted - self.filled - self.cancelled

    def clone(self):
        c = Order.__new__(Order)
        for name in Order.__slots__:
            setattr(c, name, getattr(self, name))
        return c

    def __repr__(self):
        return (f"Order(id={self.oid} owner={self.owner} side={self.side} "
                f"kind={Kind(self.kind).name} price={self.price} stop={self.stop_price} "
                f"rem={self.rem} {self.state} q={self.queued})")


def _fail(msg):
    raise AssertionError(msg)


class Model:
    def __init__(self, stp, amend_rule):
        self.stp = int(stp)
        self.amend_rule = int(amend_rule)
        self.orders: dict[int, Order] = {}   # live orders and orders of the running message
        self.dead_ids: set[int] = set()      # ids once used and now free
        self.last_price = None
        self.next_seq = 0
        self.next_msg = 0
        self.inflight: list[int] = []        # orders of the running message, in run order
        self.expect_triggers: list[int] = []  # stops the last trade must trigger next
        self.fok = None
        self._crossed_at_start = True

    # ---- views
    def live_ids(self):
        return [i for i, o in self.orders.items() if o.state in (RESTING, ARMED)]

    def resting_ids(self):
        return [i for i, o in self.orders.items() if o.state == RESTING]

    def side_sorted(self, side):
        """Resting orders of ``side``, best price first, FIFO within a price."""
        return sorted((o for o in self.orders.values() if o.state == RESTING and o.side == side),
                      key=lambda o: (-side * o.price, o.queued))

    def best(self, side):
        prices = [o.price for o in self.orders.values() if o.state == RESTING and o.side == side]
        if not prices:
            return None
        return max(prices) if side == BUY else min(prices)

    def level_total(self, side, price, exclude=None):
        return sum(o.rem for o in self.orders.values() if o.state == RESTING and
                   o.side == side and o.price == price and o.oid != exclude)

    def crosses(self, side, price):
        opp = self.best(-side)
        return opp is not None and (price >= opp if side == BUY else price <= opp)

    @staticmethod
    def stop_satisfied(side, stop_price, trade_price):
        return trade_price >= stop_price if side == BUY else trade_price <= stop_price

    def armed_sorted(self):
        armed = [o for o in self.orders.values() if o.state == ARMED]
        sells = sorted((o for o in armed if o.side == SELL),
                       key=lambda o: (-o.stop_price, o.queued))
        buys = sorted((o for o in armed if o.side == BUY), key=lambda o: (o.stop_price, o.queued))
        return sells + buys

    def l3_rows(self):
        """The exact ``l3().tolist()`` the spec requires."""
        return [(o.oid, o.owner, o.price, o.rem, o.side)
                for side in (BUY, SELL) for o in self.side_sorted(side)]

    def stop_rows(self):
        """The exact ``stops().tolist()`` the spec requires."""
        return [(o.oid, o.owner, o.stop_price, o.price, o.rem, int(o.kind), o.side)
                for o in self.armed_sorted()]

    def state(self):
        return (self.l3_rows(), self.stop_rows(), self.last_price, self.next_msg, self.next_seq)

    # ---- prediction from the spec
    def predict(self, r):
        """('raise', reason) for failures 1-7, ('reject', reason) for refusals, ('ok', None)."""
        kind, side, price, stop, qty, oid = (r["kind"], r["side"], r["price"], r["stop_price"],
                                             r["qty"], r["order_id"])
        if kind not in KIND_VALUES:
            return "raise", Reason.INVALID_KIND
        new = kind in NEW_KINDS
        if new and side not in (BUY, SELL):
            return "raise", Reason.INVALID_SIDE
        if kind in PRICED_KINDS and not 1 <= price <= INT64_MAX:
            return "raise", Reason.INVALID_PRICE
        if kind in STOP_KINDS and not 1 <= stop <= INT64_MAX:
            return "raise", Reason.INVALID_STOP_PRICE
        if (new or kind == Kind.AMEND) and not 1 <= qty <= INT64_MAX:
            return "raise", Reason.INVALID_QTY
        order = self.orders.get(oid)
        live = order is not None and order.state in (RESTING, ARMED)
        if new and live:
            return "raise", Reason.DUPLICATE_ID
        if kind in (Kind.CANCEL, Kind.AMEND) and not live:
            return "raise", Reason.UNKNOWN_ORDER
        if kind in (Kind.LIMIT, Kind.POST_ONLY):
            level = self.level_total(side, price)
            if level and level + qty > INT64_MAX:
                return "raise", Reason.QTY_OVERFLOW
        if kind in STOP_KINDS:
            armed = sum(o.rem for o in self.orders.values() if o.state == ARMED and
                        o.side == side and o.stop_price == stop)
            if armed and armed + qty > INT64_MAX:
                return "raise", Reason.QTY_OVERFLOW
        if kind == Kind.AMEND and order.state == RESTING:
            if self.level_total(order.side, price, exclude=oid) + qty > INT64_MAX:
                return "raise", Reason.QTY_OVERFLOW
        if kind == Kind.AMEND and order.state == ARMED:
            return "reject", Reason.NOT_AMENDABLE
        if kind == Kind.POST_ONLY and self.crosses(side, price):
            return "reject", Reason.POST_ONLY_WOULD_TAKE
        if kind == Kind.AMEND and order.post_only and self.crosses(order.side, price):
            return "reject", Reason.POST_ONLY_WOULD_TAKE
        if kind in STOP_KINDS and self.last_price is not None and \
                self.stop_satisfied(side, stop, self.last_price):
            return "reject", Reason.STOP_WOULD_TRIGGER
        return "ok", None

    def fok_fillable(self, side, price, qty, owner):
        total = 0
        for m in self.side_sorted(-side):
            if not (m.price <= price if side == BUY else m.price >= price):
                break
            if self.stp and m.owner == owner:
                if self.stp == SelfTradePrevention.CANCEL_MAKER:
                    continue
                break
            total += m.rem
            if total >= qty:
                return True
        return False

    # ---- an independent simulation of one valid message, straight from the spec's steps
    def simulate(self, r):
        """The events the spec prescribes for the valid, not refused message ``r``."""
        book = {oid: o.clone() for oid, o in self.orders.items()}
        out, queue = [], []
        seq0, msg, stp = self.next_seq, self.next_msg, self.stp
        last = [self.last_price]

        def emit(kind, reason, o, price, qty, maker=None, stop=0):
            out.append(Event(seq0 + len(out), msg, int(kind), int(reason), o.side, o.oid, o.owner,
                             maker.oid if maker else 0, maker.owner if maker else 0, price, stop,
                             qty))
            return out[-1].seq

        def opposite(side):
            return sorted((o for o in book.values() if o.state == RESTING and o.side == -side),
                          key=lambda o: (side * o.price, o.queued))

        def take(t):
            stopped = False
            while t.rem > 0:
                opp = opposite(t.side)
                if not opp:
                    break
                m = opp[0]
                if t.price and (m.price > t.price if t.side == BUY else m.price < t.price):
                    break
                if stp and m.owner == t.owner:
                    if stp in (SelfTradePrevention.CANCEL_MAKER, SelfTradePrevention.CANCEL_BOTH):
                        emit(EventKind.CANCELLED, Reason.SELF_TRADE, m, m.price, m.rem)
                        del book[m.oid]
                    if stp in (SelfTradePrevention.CANCEL_TAKER, SelfTradePrevention.CANCEL_BOTH):
                        stopped = True
                        break
                    continue
                q = min(t.rem, m.rem)
                emit(EventKind.TRADE, Reason.NONE, t, m.price, q, maker=m)
                t.filled += q
                m.filled += q
                if m.rem == 0:
                    del book[m.oid]
                last[0] = m.price
                armed = [o for o in book.values() if o.state == ARMED]
                sells = sorted((o for o in armed if o.side == SELL and m.price <= o.stop_price),
                               key=lambda o: (-o.stop_price, o.queued))
                buys = sorted((o for o in armed if o.side == BUY and m.price >= o.stop_price),
                              key=lambda o: (o.stop_price, o.queued))
                for s in sells + buys:
                    s.state = INFLIGHT
                    s.queued = emit(EventKind.STOP_TRIGGERED, Reason.NONE, s, s.price, s.rem,
                                    stop=s.stop_price)
                    queue.append(s)
            if stopped:
                emit(EventKind.CANCELLED, Reason.SELF_TRADE, t, t.price, t.rem)
                del book[t.oid]
            elif t.rem > 0 and t.kind in RESTING_KINDS:
                level = sum(o.rem for o in book.values() if o.state == RESTING and
                            o.side == t.side and o.price == t.price)
                if level + t.rem > INT64_MAX:    # not in the spec: see the QTY_OVERFLOW note
                    emit(EventKind.CANCELLED, Reason.QTY_OVERFLOW, t, t.price, t.rem)
                    del book[t.oid]
                else:
                    t.state = RESTING
            elif t.rem > 0:
                emit(EventKind.CANCELLED, Reason.IOC_RESIDUAL, t, t.price, t.rem)
                del book[t.oid]
            else:
                del book[t.oid]

        def run(t):
            take(t)
            while queue:
                take(queue.pop(0))

        kind, oid = r["kind"], r["order_id"]
        if kind == Kind.CANCEL:
            o = book[oid]
            emit(EventKind.CANCELLED, Reason.USER, o, o.price, o.rem,
                 stop=o.stop_price if o.state == ARMED else 0)
        elif kind == Kind.AMEND:
            o = book[oid]
            keep = (self.amend_rule == AmendRule.REDUCE_KEEPS_PRIORITY and r["price"] == o.price
                    and r["qty"] <= o.rem)
            seq = emit(EventKind.AMENDED, Reason.KEPT_PRIORITY if keep else Reason.REQUEUED, o,
                       r["price"], r["qty"])
            if not keep:
                o.price, o.submitted, o.filled, o.cancelled = r["price"], r["qty"], 0, 0
                o.state, o.queued = INFLIGHT, seq
                run(o)
        else:
            price = 0 if kind in (Kind.MARKET, Kind.STOP_MARKET) else r["price"]
            stop = r["stop_price"] if kind in STOP_KINDS else 0
            o = Order(oid, r["owner"], r["side"], kind, price, stop, r["qty"], seq0)
            book[oid] = o
            emit(EventKind.ACCEPTED, Reason.NONE, o, price, o.rem, stop=stop)
            if kind in STOP_KINDS:
                pass
            elif kind == Kind.FOK and not self.fok_fillable(o.side, price, o.rem, o.owner):
                emit(EventKind.CANCELLED, Reason.FOK_UNFILLABLE, o, price, o.rem)
            else:
                run(o)
        return out

    # ---- checking one message's outcome and replaying its events
    def check(self, op, outcome):
        r = op.row()
        if r is None:
            if outcome[0] != "raise":
                _fail(f"{op}: cannot be a message (bad type or out of range) but did not raise:"
                      f" {_fmt(outcome)}")
            if op.expect is not None and not issubclass(outcome[1], op.expect):
                _fail(f"{op}: expected {op.expect.__name__}, {_fmt(outcome)}")
            return
        what, reason = self.predict(r)
        if what == "raise":
            want = UnknownOrderError if reason == Reason.UNKNOWN_ORDER else OrderError
            if op.expect is not None and not issubclass(want, op.expect):
                _fail(f"test bug: {op} expected {op.expect.__name__}, model says {reason!r}")
            if outcome[0] != "raise" or outcome[1] is not want or outcome[4] != reason:
                _fail(f"{op}: the spec says {want.__name__} ({Reason(reason).name}), "
                      f"got {_fmt(outcome)}")
            raw = outcome[2]
            if raw is not None:   # batch path: one REJECTED event echoing the message
                echo = (raw.kind, raw.reason, raw.order_id, raw.owner, raw.side, raw.price,
                        raw.stop_price, raw.qty)
                want_echo = (EventKind.REJECTED, reason, r["order_id"], r["owner"], r["side"],
                             r["price"], r["stop_price"], r["qty"])
                if echo != want_echo:
                    _fail(f"{op}: batch rejection should be REJECTED({Reason(reason).name}) "
                          f"echoing the message {want_echo}, got {_er(raw)} {echo}")
            return
        if outcome[0] != "ok":
            _fail(f"{op}: valid message (spec: {what} {reason!r}) but {_fmt(outcome)}")
        if op.expect is not None:
            _fail(f"test bug: {op} expected {op.expect.__name__} but the model accepts it")
        expected = self.simulate(r) if what == "ok" else None
        self.replay(r, outcome[1], what, reason)
        if expected is not None:
            got = [_spec_fields(e) for e in outcome[1]]
            want = [_spec_fields(e) for e in expected]
            if got != want:
                _fail(f"{op}: events differ from the spec's steps\n  got:\n    "
                      + "\n    ".join(map(_er, outcome[1])) + "\n  spec:\n    "
                      + "\n    ".join(map(_er, expected)))

    def replay(self, r, events, what, reason):
        kind = r["kind"]
        msg = self.next_msg
        if not events:
            _fail(f"message {r} produced no event")
        first = events[0]
        if what == "reject":
            if len(events) != 1 or first.kind != EventKind.REJECTED or first.reason != reason \
                    or first.order_id != r["order_id"]:
                _fail(f"message {r}: expected exactly REJECTED({Reason(reason).name}), "
                      f"got {_ers(events)}")
            self._seq(first, msg)
            self.next_msg += 1
            return
        self.inflight = []
        self.expect_triggers = []
        self.fok = None
        self._crossed_at_start = True
        for i, ev in enumerate(events):
            self._seq(ev, msg)
            try:
                self._apply(i, ev, r)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n  message {r}\n  events {_ers(events)}") from None
        if self.expect_triggers:
            _fail(f"stops {self.expect_triggers} should have triggered; events {_ers(events)}")
        for oid in self.inflight:
            o = self.orders[oid]
            if o.kind not in RESTING_KINDS:
                _fail(f"{o} kept a residual that should have been cancelled; "
                      f"events {_ers(events)}")
            o.state = RESTING
        self.inflight = []
        if self.fok is not None:
            fid, fqty, fillable, filled = self.fok
            if fillable and filled != fqty:
                _fail(f"FOK {fid} was fillable but filled {filled}/{fqty}: {_ers(events)}")
            if not fillable and len(events) != 2:
                _fail(f"FOK {fid} unfillable: expected ACCEPTED, CANCELLED only: {_ers(events)}")
        single = (kind in STOP_KINDS or kind == Kind.POST_ONLY or kind == Kind.CANCEL
                  or (kind == Kind.LIMIT and not self._crossed_at_start)
                  or (kind == Kind.AMEND and first.reason == Reason.KEPT_PRIORITY))
        if single and len(events) != 1:
            _fail(f"message {r} should produce exactly one event: {_ers(events)}")
        self.next_msg += 1

    def _seq(self, ev, msg):
        if ev.seq != self.next_seq or ev.msg != msg:
            _fail(f"{_er(ev)}: expected seq {self.next_seq} msg {msg}")
        self.next_seq += 1

    def _retire(self, o):
        if o.rem != 0 or o.submitted != o.filled + o.cancelled:
            _fail(f"ledger of {o}: submitted {o.submitted} != filled {o.filled} + "
                  f"cancelled {o.cancelled}")
        del self.orders[o.oid]
        if o.oid in self.inflight:
            self.inflight.remove(o.oid)
        self.dead_ids.add(o.oid)

    def _settle_before(self, oid):
        """``oid`` is running: every order queued to run before it has finished."""
        if oid not in self.inflight:
            return
        idx = self.inflight.index(oid)
        for done in self.inflight[:idx]:
            o = self.orders[done]
            if o.kind not in RESTING_KINDS:
                _fail(f"{o} finished with a residual that should have been cancelled")
            o.state = RESTING
        del self.inflight[:idx]

    def _check_head(self, m, what):
        queue = self.side_sorted(m.side)
        if not queue or queue[0] is not m:
            _fail(f"{what}: maker {m.oid} is not first in price-time priority; "
                  f"{'bids' if m.side == BUY else 'asks'} are {queue}")

    def _apply(self, i, ev, r):
        kind = r["kind"]
        triggered = False
        if self.expect_triggers:
            want = self.expect_triggers.pop(0)
            if ev.kind != EventKind.STOP_TRIGGERED or ev.order_id != want:
                _fail(f"{_er(ev)}: expected STOP_TRIGGERED of {want} "
                      f"(then {self.expect_triggers})")
            triggered = True
        ek = ev.kind
        if ek == EventKind.ACCEPTED:
            if i != 0 or kind not in NEW_KINDS or ev.order_id != r["order_id"]:
                _fail(f"{_er(ev)}: unexpected ACCEPTED")
            price = 0 if kind in (Kind.MARKET, Kind.STOP_MARKET) else r["price"]
            stop = r["stop_price"] if kind in STOP_KINDS else 0
            got = (ev.owner, ev.side, ev.price, ev.stop_price, ev.qty, ev.reason)
            want = (r["owner"], r["side"], price, stop, r["qty"], 0)
            if got != want:
                _fail(f"{_er(ev)}: ACCEPTED fields (owner, side, price, stop, qty, reason) {got} "
                      f"!= {want}")
            self._crossed_at_start = self.crosses(r["side"], price) if price else True
            o = Order(ev.order_id, r["owner"], r["side"], kind, price, stop, r["qty"], ev.seq)
            self.orders[o.oid] = o
            if o.state == INFLIGHT:
                self.inflight.append(o.oid)
            if kind == Kind.FOK:
                self.fok = [o.oid, o.submitted,
                            self.fok_fillable(o.side, o.price, o.submitted, o.owner), 0]
        elif ek == EventKind.TRADE:
            t, m = self.orders.get(ev.order_id), self.orders.get(ev.maker_id)
            if t is None or m is None or t is m or t.state != INFLIGHT or m.state == ARMED:
                _fail(f"{_er(ev)}: taker {t} / maker {m} cannot trade")
            self._settle_before(t.oid)   # orders that ran before the taker have rested
            if m.state != RESTING:
                _fail(f"{_er(ev)}: maker {m} is not resting")
            self._check_head(m, repr(ev))
            got = (ev.side, ev.owner, ev.maker_owner, ev.price, ev.qty, ev.reason)
            want = (t.side, t.owner, m.owner, m.price, min(t.rem, m.rem), 0)
            if got != want or m.side != -t.side:
                _fail(f"{_er(ev)}: TRADE (side, owner, maker_owner, price=maker's, qty=min, "
                      f"reason) {got} != {want}; taker {t}, maker {m}")
            if t.price and not (m.price <= t.price if t.side == BUY else m.price >= t.price):
                _fail(f"{_er(ev)}: trade outside the taker's limit {t.price}")
            if self.stp and t.owner == m.owner:
                _fail(f"{_er(ev)}: self trade with STP {SelfTradePrevention(self.stp).name}")
            t.filled += ev.qty
            m.filled += ev.qty
            if self.fok is not None and self.fok[0] == t.oid:
                self.fok[3] += ev.qty
            self.last_price = ev.price
            if m.rem == 0:
                self._retire(m)
            if t.rem == 0:
                self._retire(t)
            self.expect_triggers = [s.oid for s in self.armed_sorted()
                                    if self.stop_satisfied(s.side, s.stop_price, ev.price)]
        elif ek == EventKind.CANCELLED:
            o = self.orders.get(ev.order_id)
            if o is None:
                _fail(f"{_er(ev)}: cancels an order that is not live")
            got = (ev.qty, ev.side, ev.owner, ev.price)
            want = (o.rem, o.side, o.owner, o.price)
            if got != want or o.rem <= 0:
                _fail(f"{_er(ev)}: CANCELLED (qty=remaining, side, owner, price) {got} != {want}")
            reason = ev.reason
            if reason == Reason.USER:
                if i != 0 or kind != Kind.CANCEL or o.state == INFLIGHT \
                        or ev.order_id != r["order_id"]:
                    _fail(f"{_er(ev)}: CANCELLED(USER) outside a CANCEL of a live order")
                if o.state == ARMED and ev.stop_price != o.stop_price:
                    _fail(f"{_er(ev)}: cancelled stop should carry stop_price {o.stop_price}")
            elif reason == Reason.IOC_RESIDUAL:
                if o.state != INFLIGHT or o.kind not in RESIDUAL_CANCELLED_KINDS:
                    _fail(f"{_er(ev)}: IOC_RESIDUAL of {o}")
                self._settle_before(o.oid)
            elif reason == Reason.FOK_UNFILLABLE:
                if self.fok is None or self.fok[0] != o.oid or self.fok[2] or i != 1:
                    _fail(f"{_er(ev)}: FOK_UNFILLABLE, but the walk says fillable={self.fok}")
            elif reason == Reason.QTY_OVERFLOW:
                # Not in the spec (reported): engine and reference cancel a triggered stop-limit
                # whose rest would take its level past INT64_MAX lots.
                self._settle_before(o.oid)
                if o.state != INFLIGHT or o.kind != Kind.STOP_LIMIT or \
                        self.level_total(o.side, o.price) + o.rem <= INT64_MAX:
                    _fail(f"{_er(ev)}: CANCELLED(QTY_OVERFLOW) of {o}, level total "
                          f"{self.level_total(o.side, o.price)}")
            elif reason == Reason.SELF_TRADE:
                if not self.stp:
                    _fail(f"{_er(ev)}: SELF_TRADE cancel without self-trade prevention")
                if o.state == RESTING:     # a maker
                    if self.stp == SelfTradePrevention.CANCEL_TAKER:
                        _fail(f"{_er(ev)}: CANCEL_TAKER cancelled a maker")
                    self._check_head(o, repr(ev))
                elif o.state == ARMED:
                    _fail(f"{_er(ev)}: self-trade cancel of an armed stop")
            else:
                _fail(f"{_er(ev)}: bad CANCELLED reason")
            if self.fok is not None and self.fok[0] == o.oid and not self.fok[2] \
                    and reason != Reason.FOK_UNFILLABLE:
                _fail(f"{_er(ev)}: FOK {o.oid} should be CANCELLED(FOK_UNFILLABLE)")
            o.cancelled += ev.qty
            self._retire(o)
        elif ek == EventKind.AMENDED:
            o = self.orders.get(ev.order_id)
            if i != 0 or kind != Kind.AMEND or o is None or o.state != RESTING:
                _fail(f"{_er(ev)}: AMENDED of {o}")
            keep = (self.amend_rule == AmendRule.REDUCE_KEEPS_PRIORITY and r["price"] == o.price
                    and r["qty"] <= o.rem)
            want_reason = Reason.KEPT_PRIORITY if keep else Reason.REQUEUED
            if (ev.reason, ev.price, ev.qty) != (want_reason, r["price"], r["qty"]):
                _fail(f"{_er(ev)}: expected AMENDED({want_reason.name}) price {r['price']} "
                      f"qty {r['qty']} for {o}")
            o.submitted += r["qty"] - o.rem
            if not keep:
                o.price = r["price"]
                o.queued = ev.seq
                o.state = INFLIGHT
                self.inflight.append(o.oid)
                self._crossed_at_start = True
        elif ek == EventKind.STOP_TRIGGERED:
            o = self.orders.get(ev.order_id)
            if not triggered:
                _fail(f"{_er(ev)}: STOP_TRIGGERED that no trade just triggered")
            if o is None or o.state != ARMED:
                _fail(f"{_er(ev)}: not an armed stop ({o})")
            got = (ev.owner, ev.side, ev.price, ev.stop_price, ev.qty)
            want = (o.owner, o.side, o.price, o.stop_price, o.rem)
            if got != want:
                _fail(f"{_er(ev)}: STOP_TRIGGERED (owner, side, price, stop, qty) {got} != {want}")
            o.state = INFLIGHT
            o.queued = ev.seq
            self.inflight.append(o.oid)
        elif ek == EventKind.REJECTED:
            _fail(f"{_er(ev)}: REJECTED not predicted (model: ok)")
        else:
            _fail(f"{_er(ev)}: unknown event kind")


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


class DifferentialMachine(RuleBasedStateMachine):
    """Two books fed the same operations; subclasses choose the books and the paths."""

    #: paths for single operations (left, right): "call" = per-call API, "batch" = process()
    SINGLE_PATHS = ("call", "call")
    #: choices of paths for the batch rule
    BATCH_PATHS = (("batch", "batch"),)

    def make_books(self, stp, amend_rule, tick, lot):
        raise NotImplementedError

    def __init__(self):
        super().__init__()
        self.books = None
        self.model = None
        self.off = [[0, 0], [0, 0]]  # (seq, msg) offsets of each book vs the canonical numbering

    # ---- plumbing
    def _book_state(self, idx):
        """What book ``idx`` shows, in the canonical numbering (to compare with the model)."""
        book = self.books[idx]
        so, mo = self.off[idx]
        return (book.l3().tolist(), book.stops().tolist(), book.last_price,
                book.message_count - mo, book.event_count - so)

    def _call_one(self, idx, op):
        """Run ``op`` per call on book ``idx``; the model must be at the state before ``op``."""
        try:
            result = op.call(self.books[idx])
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            got, want = self._book_state(idx), self.model.state()
            if got != want:
                _fail(f"{op} raised {exc!r} but changed the {('left', 'right')[idx]} book:\n"
                      f"  book  {got}\n  model {want}")
            return ("raise", type(exc), None, repr(exc), getattr(exc, "reason", None))
        if not isinstance(result, list) or not all(isinstance(e, Event) for e in result):
            _fail(f"{op} returned {type(result)}, not a list of Event")
        so, mo = self.off[idx]
        return ("ok", [_norm(e, so, mo) for e in result])

    def _exec_process(self, idx, rows):
        book = self.books[idx]
        n = len(rows)
        arr = np.array([tuple(r[f] for f in MSG_FIELDS) for r in rows], dtype=MESSAGE_DTYPE)
        keep = arr.copy()
        mc0, ec0 = book.message_count, book.event_count
        out = book.process(arr)
        if not isinstance(out, np.ndarray) or out.dtype != EVENT_DTYPE or out.ndim != 1:
            _fail(f"process returned {type(out)} {getattr(out, 'dtype', None)}, "
                  "not a 1-d EVENT_DTYPE array")
        if arr.tolist() != keep.tolist():
            _fail("process modified its input array")
        events = array_to_events(out)
        if book.message_count != mc0 + n or book.event_count != ec0 + len(events):
            _fail(f"process of {n} messages: message_count {mc0}->{book.message_count}, "
                  f"event_count {ec0}->{book.event_count}, {len(events)} events")
        groups = [[] for _ in range(n)]
        for k, ev in enumerate(events):
            if ev.seq != ec0 + k or not mc0 <= ev.msg < mc0 + n or \
                    (k and ev.msg < events[k - 1].msg):
                _fail(f"batch events out of sequence at {k}: {_ers(events)}")
            groups[ev.msg - mc0].append(ev)
        outs = []
        for group in groups:
            if not group:
                _fail(f"a batch message produced no event: rows {rows}, events {_ers(events)}")
            so, mo = self.off[idx]
            g0 = group[0]
            if len(group) == 1 and g0.kind == EventKind.REJECTED \
                    and g0.reason in VALIDATION_REASONS:
                exc = UnknownOrderError if g0.reason == Reason.UNKNOWN_ORDER else OrderError
                outs.append(("raise", exc, _norm(g0, so, mo), Reason(g0.reason).name,
                             Reason(g0.reason)))
                self.off[idx] = [so + 1, mo + 1]
            else:
                outs.append(("ok", [_norm(e, so, mo) for e in group]))
        return outs

    def _run(self, ops, paths=None):
        """Run ``ops`` on both books along ``paths``, compare, and check each with the model.

        On a "batch" path every run of consecutive messages that fit MESSAGE_DTYPE goes through
        one ``process`` call; anything else (bad types, out-of-range values) goes per call.
        """
        paths = paths or self.SINGLE_PATHS
        note(f"ops {ops} via {paths}")
        rows = [op.row() for op in ops]
        done = ({}, {})   # outcomes of batches already processed, by op index
        for i, op in enumerate(ops):
            outs = []
            for idx in (0, 1):
                if paths[idx] == "call" or rows[i] is None:
                    outs.append(self._call_one(idx, op))
                    continue
                if i not in done[idx]:
                    j = i
                    while j < len(ops) and rows[j] is not None:
                        j += 1
                    done[idx].update(zip(range(i, j), self._exec_process(idx, rows[i:j]),
                                             strict=True))
                outs.append(done[idx].pop(i))
            a, b = outs
            same = a[0] == b[0] and (
                a[1] == b[1] if a[0] == "ok"
                else a[1] is b[1] and a[4] == b[4]
                and (a[2] is None or b[2] is None or a[2] == b[2]))
            if not same:
                _fail(f"{op}: books differ ({paths})\n  left:  {_fmt(a)}\n  right: {_fmt(b)}")
            self.model.check(op, b if b[0] == "ok" or b[2] is not None else a)

    def _fresh_id(self, data):
        live = set(self.model.live_ids())
        free = [i for i in range(POOL + 1) if i not in live]
        return data.draw(st.sampled_from(free), label="fresh id") if free else 500

    # ---- setup
    @initialize(stp=st.sampled_from(list(SelfTradePrevention)),
                amend_rule=st.sampled_from(list(AmendRule)),
                tick=st.sampled_from(["1", "0.01", "0.5", 1, Decimal("0.25"), 0.1]),
                lot=st.sampled_from(["1", "0.001", 10, 0.5]),
                seed=st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 5), QTYS,
                                        OWNERS), max_size=8))
    def setup_books(self, stp, amend_rule, tick, lot, seed):
        """Two fresh books with the same settings, seeded with a few resting orders."""
        self.books = self.make_books(stp, amend_rule, tick, lot)
        self.model = Model(stp, amend_rule)
        a, b = self.books
        assert a.to_price(101) == b.to_price(101) and a.to_qty(3) == b.to_qty(3)
        if seed:   # bids at 95..99, asks at 101..105
            self._run([Op("limit", dict(order_id=POOL - i, side=side, price=100 - side * off,
                                        qty=qty, owner=owner))
                       for i, (side, off, qty, owner) in enumerate(seed)])

    # ---- new orders
    @rule(oid=IDS, side=SIDES, price=NP_PRICES, qty=QTYS, owner=OWNERS, style=OWNER_STYLE)
    def limit(self, oid, side, price, qty, owner, style):
        self._run([Op("limit", dict(order_id=oid, side=side, price=price, qty=qty, owner=owner),
                      style)])

    @rule(oid=IDS, side=SIDES, qty=QTYS, owner=OWNERS, style=OWNER_STYLE)
    def market(self, oid, side, qty, owner, style):
        self._run([Op("market", dict(order_id=oid, side=side, qty=qty, owner=owner), style)])

    @rule(oid=IDS, side=SIDES, price=PRICES, qty=QTYS, owner=OWNERS, style=OWNER_STYLE)
    def ioc(self, oid, side, price, qty, owner, style):
        self._run([Op("ioc", dict(order_id=oid, side=side, price=price, qty=qty, owner=owner),
                      style)])

    @rule(oid=IDS, side=SIDES, price=PRICES, qty=QTYS, owner=OWNERS, style=OWNER_STYLE)
    def fok(self, oid, side, price, qty, owner, style):
        self._run([Op("fok", dict(order_id=oid, side=side, price=price, qty=qty, owner=owner),
                      style)])

    @rule(oid=IDS, side=SIDES, price=PRICES, qty=QTYS, owner=OWNERS, style=OWNER_STYLE)
    def post_only(self, oid, side, price, qty, owner, style):
        self._run([Op("post_only", dict(order_id=oid, side=side, price=price, qty=qty,
                                        owner=owner), style)])

    @rule(oid=IDS, side=SIDES, stop=NP_PRICES, qty=QTYS, owner=OWNERS, style=OWNER_STYLE)
    def stop_market(self, oid, side, stop, qty, owner, style):
        self._run([Op("stop_market", dict(order_id=oid, side=side, stop_price=stop, qty=qty,
                                          owner=owner), style)])

    @rule(oid=IDS, side=SIDES, stop=PRICES, price=PRICES, qty=QTYS, owner=OWNERS,
          style=OWNER_STYLE)
    def stop_limit(self, oid, side, stop, price, qty, owner, style):
        self._run([Op("stop_limit", dict(order_id=oid, side=side, stop_price=stop, price=price,
                                         qty=qty, owner=owner), style)])

    @precondition(lambda self: self.model.last_price is None)
    @rule(sell_stop=PRICES, width=st.integers(0, 6), kinds=st.tuples(st.booleans(), st.booleans()),
          qty=QTYS, qty2=QTYS, owner=OWNERS, ids=st.tuples(IDS, IDS))
    def straddle_stops(self, sell_stop, width, kinds, qty, qty2, owner, ids):
        """A sell stop above a buy stop before the first trade: one trade can trigger both."""
        buy_stop = max(95, sell_stop - width)
        ops = []
        for oid, side, stop, limit, q in ((ids[0], SELL, sell_stop, kinds[0], qty),
                                          (ids[1], BUY, buy_stop, kinds[1], qty2)):
            fields = dict(order_id=oid, side=side, stop_price=stop, qty=q, owner=owner)
            if limit:
                fields["price"] = stop - side * 2
            ops.append(Op("stop_limit" if limit else "stop_market", fields))
        self._run(ops)

    @rule(kind=LOOSE_KIND, oid=st.sampled_from(list(range(POOL + 1)) + [-1, INT64_MAX, INT64_MIN]),
          side=LOOSE_SIDE,
          price=LOOSE_PRICE, stop=LOOSE_PRICE, qty=LOOSE_QTY, owner=OWNERS)
    def submit(self, kind, oid, side, price, stop, qty, owner):
        """The generic form, with fields a kind does not use set to anything (they are ignored)."""
        self._run([Op("submit", dict(kind=kind, order_id=oid, side=side, price=price, qty=qty,
                                     owner=owner, stop_price=stop))])

    # ---- cancel and amend
    @precondition(lambda self: self.model.live_ids())
    @rule(data=st.data())
    def cancel_live(self, data):
        oid = data.draw(st.sampled_from(sorted(self.model.live_ids())), label="live id")
        self._run([Op("cancel", dict(order_id=oid))])

    @precondition(lambda self: self.model.live_ids())
    @rule(data=st.data(), qty=QTYS)
    def amend_live(self, data, qty):
        oid = data.draw(st.sampled_from(sorted(self.model.live_ids())), label="live id")
        o = self.model.orders[oid]
        price = data.draw(st.sampled_from([o.price or 100, o.price or 100, 95, 100, 105]) | PRICES,
                          label="price")
        if o.rem > 1 and data.draw(st.booleans(), label="reduce"):
            qty = data.draw(st.integers(1, o.rem), label="reduced qty")
        self._run([Op("amend", dict(order_id=oid, price=price, qty=qty))])

    @rule(data=st.data(), action=st.sampled_from(["cancel", "amend"]), price=PRICES, qty=QTYS)
    def stale_or_unknown_id(self, data, action, price, qty):
        live = set(self.model.live_ids())
        stale = sorted(self.model.dead_ids - live)
        pool = stale + list(NEVER_ISSUED) if stale else list(NEVER_ISSUED)
        oid = data.draw(st.sampled_from(pool), label="stale/unknown id")
        fields = dict(order_id=oid) if action == "cancel" else dict(order_id=oid, price=price,
                                                                     qty=qty)
        self._run([Op(action, fields, expect=KeyError)])

    @precondition(lambda self: self.model.live_ids())
    @rule(data=st.data(), method=st.sampled_from(NEW_METHODS), side=SIDES, price=PRICES,
          stop=PRICES, qty=QTYS, owner=OWNERS)
    def reuse_live_id(self, data, method, side, price, stop, qty, owner):
        oid = data.draw(st.sampled_from(sorted(self.model.live_ids())), label="live id")
        fields = dict(order_id=oid, side=side, price=price, stop_price=stop, qty=qty, owner=owner)
        fields = {k: v for k, v in fields.items() if k in SIGNATURES[method]}
        self._run([Op(method, fields, expect=ValueError)])

    # ---- malformed calls
    @rule(data=st.data(), method=st.sampled_from(list(SIGNATURES) + ["submit"]),
          fault=st.sampled_from(["type", "range", "domain"]), side=SIDES, price=PRICES,
          stop=PRICES, qty=QTYS, owner=OWNERS)
    def bad_input(self, data, method, fault, side, price, stop, qty, owner):
        """One bad field in an otherwise valid call: both raise the same, nothing changes."""
        kind = METHOD_KIND.get(method) or data.draw(st.sampled_from(list(Kind)), label="kind")
        live = sorted(self.model.live_ids())
        if kind in (Kind.CANCEL, Kind.AMEND):
            oid = data.draw(st.sampled_from(live), label="live id") if live else NEVER_ISSUED[0]
        else:
            oid = self._fresh_id(data)
        fields = dict(order_id=oid, side=side, price=price, stop_price=stop, qty=qty, owner=owner)
        if method == "submit":
            fields["kind"] = kind
            used = ["kind", "order_id"] + {
                Kind.CANCEL: [], Kind.AMEND: ["price", "qty"],
                Kind.MARKET: ["side", "qty", "owner"],
                Kind.STOP_MARKET: ["side", "stop_price", "qty", "owner"],
                Kind.STOP_LIMIT: ["side", "stop_price", "price", "qty", "owner"],
            }.get(kind, ["side", "price", "qty", "owner"])
        else:
            fields = {k: v for k, v in fields.items() if k in SIGNATURES[method]}
            used = list(fields)
        field = data.draw(st.sampled_from(used), label="bad field")
        expect = None
        if fault == "type":
            value, expect = data.draw(st.sampled_from(BAD_TYPES), label="bad value"), TypeError
            if field == "side" and isinstance(value, str):
                # Known deviation, reported: the spec says strings raise TypeError, but engine and
                # reference both accept 'buy'/'sell'/'bid'/'ask' and raise ValueError for other
                # strings (orderbook/_validation.py as_side). Only agreement is checked here.
                expect = None
        elif fault == "range":
            value, expect = data.draw(st.sampled_from(OUT_OF_INT64), label="bad value"), ValueError
        else:
            domain = {
                "kind": [0, 10, 255, -1, 1000],
                "side": [0, 2, -2, 127, 5000],
                "price": [0, -1, -100, INT64_MIN],
                "stop_price": [0, -7, INT64_MIN],
                "qty": [0, -1, INT64_MIN],
                "owner": [INT64_MIN, INT64_MAX, -1],    # valid owners
                "order_id": [INT64_MIN, INT64_MAX, -5],  # valid ids (fresh or unknown)
            }[field]
            value = data.draw(st.sampled_from(domain), label="bad value")
            if field not in ("owner", "order_id"):   # those values are valid: the model decides
                expect = ValueError
        if kind in (Kind.CANCEL, Kind.AMEND) and not live and field != "order_id" \
                and fault != "domain":
            expect = None   # a bad type/range vs UNKNOWN_ORDER: the spec does not order these
        fields[field] = value
        self._run([Op(method, fields, expect=expect)])

    # ---- huge quantities and prices: QTY_OVERFLOW, exact arithmetic
    @rule(data=st.data(), action=st.sampled_from(["limit", "post_only", "amend", "market", "ioc",
                                                 "limit_far", "stop_limit"]),
          side=SIDES, price=PRICES, big=BIG_QTY, owner=OWNERS)
    def big_values(self, data, action, side, price, big, owner):
        if action == "amend":
            live = sorted(self.model.resting_ids())
            if not live:
                return
            oid = data.draw(st.sampled_from(live), label="live id")
            op = Op("amend", dict(order_id=oid, price=self.model.orders[oid].price, qty=big))
        elif action == "limit_far":
            far = INT64_MAX if side == SELL else 1
            op = Op("limit", dict(order_id=self._fresh_id(data), side=side, price=far,
                                  qty=data.draw(QTYS), owner=owner))
        else:
            fields = dict(order_id=self._fresh_id(data), side=side, price=price, qty=big,
                          owner=owner)
            if action == "market":
                del fields["price"]
            if action == "stop_limit":   # may trigger into a level that cannot take it
                fields["stop_price"] = data.draw(PRICES, label="stop")
            op = Op(action, fields)
        self._run([op])

    @rule(bid=st.integers(95, 100), width=st.integers(1, 5), qty=QTYS, qty2=QTYS, owner=OWNERS,
          bid_id=IDS, ask_id=IDS)
    def quote(self, bid, width, qty, qty2, owner, bid_id, ask_id):
        """Two limit orders in one step (a bid and an ask): keeps the book deep."""
        self._run([Op("limit", dict(order_id=bid_id, side=BUY, price=bid, qty=qty, owner=owner)),
                   Op("limit", dict(order_id=ask_id, side=SELL, price=min(bid + width, 105),
                                    qty=qty2, owner=owner))])

    # ---- batches
    @rule(data=st.data())
    def batch(self, data):
        live = sorted(self.model.live_ids())
        live_ids = st.sampled_from(live) | IDS if live else IDS

        @st.composite
        def message(draw):
            kind = draw(LOOSE_KIND)
            ids = live_ids if kind in (Kind.CANCEL, Kind.AMEND) else IDS
            return dict(kind=kind, order_id=draw(ids), side=draw(LOOSE_SIDE),
                        price=draw(LOOSE_PRICE), stop_price=draw(LOOSE_PRICE), qty=draw(LOOSE_QTY),
                        owner=draw(OWNERS))

        rows = data.draw(st.lists(message(), min_size=1, max_size=20), label="messages")
        paths = data.draw(st.sampled_from(self.BATCH_PATHS), label="paths")
        self._run([Op("submit", r) for r in rows], paths)

    # ---- read-only queries
    @rule(side=st.sampled_from([BUY, SELL]), price=PRICES, qty=st.integers(1, 40) | BIG_QTY,
          n=st.integers(0, 4), oid=IDS)
    def queries(self, side, price, qty, n, oid):
        a, b = self.books
        m = self.model
        levels = {}
        for o in m.side_sorted(side):
            levels[o.price] = levels.get(o.price, 0) + o.rem
        for book in (a, b):
            assert book.quantity_at(side, price) == levels.get(price, 0)
            better = sum(q for p, q in levels.items()
                         if (p >= price if side == BUY else p <= price))
            assert book.resting_qty(side, price) == better, (book.resting_qty(side, price), better)
            assert (oid in book) == (oid in m.live_ids())
        la, lb = a.l2(n), b.l2(n)
        for name, xa, xb in zip(la._fields, la, lb, strict=True):
            assert xa.dtype == np.int64 and xb.dtype == np.int64, name
            assert np.array_equal(xa, xb), (name, xa, xb)
        for s, prefix in ((BUY, "bid"), (SELL, "ask")):
            agg = {}
            for o in m.side_sorted(s):
                agg.setdefault(o.price, [0, 0])
                agg[o.price][0] += o.rem
                agg[o.price][1] += 1
            top = list(agg.items())[:n]
            assert la._asdict()[f"{prefix}_price"].tolist() == [p for p, _ in top]
            assert la._asdict()[f"{prefix}_qty"].tolist() == [v[0] for _, v in top]
            assert la._asdict()[f"{prefix}_orders"].tolist() == [v[1] for _, v in top]
        # impact of a market order of ``side`` and ``qty``, STP ignored
        left, filled, notional, worst, touched = qty, 0, 0, 0, set()
        for o in m.side_sorted(-side):
            if not left:
                break
            q = min(left, o.rem)
            left, filled, notional, worst = left - q, filled + q, notional + q * o.price, o.price
            touched.add(o.price)
        ia, ib = a.impact(side, qty), b.impact(side, qty)
        for imp in (ia, ib):
            assert (imp.filled, imp.notional, imp.worst_price, imp.levels) == \
                (filled, notional, worst, len(touched)), (imp, filled, notional, worst, touched)
            if filled:
                assert imp.average_price == notional / filled, (imp, notional / filled)
            else:
                assert math.isnan(imp.average_price), imp
        for book in (a, b):
            sp, mid = book.spread(), book.mid()
            bb, ba = m.best(BUY), m.best(SELL)
            assert sp == (None if bb is None or ba is None else ba - bb)
            assert mid == (None if bb is None or ba is None else (bb + ba) / 2)
        infos = []
        for book in (a, b):
            try:
                infos.append(book.order(oid))
            except KeyError:
                infos.append(None)
        assert infos[0] == infos[1], infos
        o = m.orders.get(oid)
        if o is None:
            assert infos[0] is None
        else:
            info = infos[0]
            assert (info.order_id, info.owner, info.side, info.price, info.qty) == \
                (o.oid, o.owner, o.side, o.price, o.rem), (info, o)
            if o.state == ARMED:
                assert (info.kind, info.stop_price) == (o.kind, o.stop_price), (info, o)

    # ---- copies
    @rule(how=st.sampled_from(["copy", "pickle"]),
          which=st.sampled_from(["left", "right", "both"]))
    def copy_books(self, how, which):
        """Replace one or both books by a copy; the other book then checks the copy's behaviour."""
        books = list(self.books)
        for idx in {"left": [0], "right": [1], "both": [0, 1]}[which]:
            orig = books[idx]
            clone = orig.copy() if how == "copy" else pickle.loads(pickle.dumps(orig))
            assert type(clone) is type(orig)
            assert _snapshot(clone) == _snapshot(orig), \
                f"{how} differs from the original:\n  {_snapshot(clone)}\n  {_snapshot(orig)}"
            assert clone.to_price(7) == orig.to_price(7) and clone.to_qty(7) == orig.to_qty(7)
            # independence: changing the original must not change the copy
            state = _snapshot(clone)
            live = self.model.live_ids()
            if live:
                orig.cancel(min(live))
            else:   # empty book
                orig.limit(10**9, BUY, 1, 1, 0)
            orig.process(np.zeros(1, dtype=MESSAGE_DTYPE))  # INVALID_KIND: counters only
            assert _snapshot(clone) == state, "copy shares state with its original"
            books[idx] = clone
        self.books = tuple(books)

    # ---- invariants
    @invariant()
    def books_agree_with_each_other_and_the_spec(self):
        if self.books is None:
            return
        a, b = self.books
        m = self.model
        l3a, l3b, sa, sb = a.l3(), b.l3(), a.stops(), b.stops()
        assert l3a.dtype == L3_DTYPE and l3b.dtype == L3_DTYPE
        assert sa.dtype == STOP_DTYPE and sb.dtype == STOP_DTYPE
        rows, stops = l3a.tolist(), sa.tolist()
        assert rows == l3b.tolist(), f"l3 differs\n  left  {rows}\n  right {l3b.tolist()}"
        assert stops == sb.tolist(), f"stops differ\n  left  {stops}\n  right {sb.tolist()}"
        resting = [o for o in m.orders.values() if o.state == RESTING]
        armed = [o for o in m.orders.values() if o.state == ARMED]
        assert len(resting) + len(armed) == len(m.orders), "model left an order in flight"
        best_bid, best_ask = m.best(BUY), m.best(SELL)
        want = (best_bid, best_ask, m.last_price, m.next_msg, m.next_seq, len(resting), len(armed))
        for idx, book in enumerate(self.books):
            so, mo = self.off[idx]
            got = (book.best_bid(), book.best_ask(), book.last_price, book.message_count - mo,
                   book.event_count - so, book.n_orders, book.n_stops)
            assert got == want, (f"{('left', 'right')[idx]} (best_bid, best_ask, last_price, "
                                 f"message_count, event_count, n_orders, n_stops) {got} != {want}")
        assert best_bid is None or best_ask is None or best_bid < best_ask, \
            f"crossed book: bid {best_bid} ask {best_ask}"

        # every resting order: FIFO within its level by the seq of the event that queued it
        # (ACCEPTED, AMENDED(REQUEUED) or STOP_TRIGGERED), price levels best first, and its
        # ledger: submitted (ACCEPTED qty, reset by AMENDED) = filled + cancelled + resting
        seen, prev, levels = set(), None, {}
        for oid, owner, price, qty, side in rows:
            o = m.orders.get(oid)
            assert o is not None and o.state == RESTING, f"l3 shows {oid}, not resting: {o}"
            assert oid not in seen, f"order {oid} twice in l3"
            seen.add(oid)
            assert (owner, price, side) == (o.owner, o.price, o.side), (rows, o)
            assert qty > 0 and o.submitted - o.filled - o.cancelled == qty, (
                f"ledger of {oid}: submitted {o.submitted} - filled {o.filled} - cancelled "
                f"{o.cancelled} != resting {qty}")
            if prev is not None and prev[2] == side:
                if prev[1] == price:
                    assert prev[0] < o.queued, f"FIFO broken at {side}@{price}: {rows}"
                else:
                    assert (price < prev[1]) if side == BUY else (price > prev[1]), rows
            elif prev is not None:
                assert prev[2] == BUY and side == SELL, f"bids must come before asks: {rows}"
            prev = (o.queued, price, side)
            levels[side, price] = levels.get((side, price), 0) + qty
        assert len(seen) == len(resting), f"l3 {sorted(seen)} != resting {resting}"
        assert all(v <= INT64_MAX for v in levels.values()), f"a level passed INT64_MAX: {levels}"
        for oid, _owner, stop, _price, qty, _kind, side in stops:
            o = m.orders.get(oid)
            assert o is not None and o.state == ARMED and o.rem == qty, (stops, o)
            assert o.submitted - o.filled - o.cancelled == qty, o
            assert m.last_price is None or not m.stop_satisfied(side, stop, m.last_price), (
                f"armed stop {oid} is already satisfied by the last price {m.last_price}")
        # and the exact snapshots: the model's queues in the spec's order
        want_rows, want_stops = m.l3_rows(), m.stop_rows()
        assert rows == want_rows, f"l3 {rows}\n!= expected {want_rows}"
        assert stops == want_stops, f"stops {stops}\n!= expected {want_stops}"
        # each owner's live orders (resting and armed), ascending ids, and none for an owner
        # with no order
        for owner in sorted({o.owner for o in m.orders.values()} | {0, 1, 2, -1}):
            want_ids = sorted(o.oid for o in m.orders.values() if o.owner == owner)
            for idx, book in enumerate(self.books):
                got_ids = book.orders_of(owner)
                assert type(got_ids) is list and all(type(i) is int for i in got_ids), got_ids
                assert got_ids == want_ids, (f"{('left', 'right')[idx]} orders_of({owner}) "
                                             f"{got_ids} != {want_ids}")


class EngineVsReference(DifferentialMachine):
    SINGLE_PATHS = ("call", "call")
    BATCH_PATHS = (("batch", "batch"), ("batch", "batch"), ("call", "batch"), ("batch", "call"))

    def make_books(self, stp, amend_rule, tick, lot):
        engine, reference = _engine_cls(), _reference_cls()
        return (engine(tick, lot, stp=stp, amend_rule=amend_rule),
                reference(tick, lot, stp=stp, amend_rule=amend_rule))


class ReferenceCallVsBatch(DifferentialMachine):
    SINGLE_PATHS = ("call", "batch")
    BATCH_PATHS = (("call", "batch"),)

    def make_books(self, stp, amend_rule, tick, lot):
        reference = _reference_cls()
        return (reference(tick, lot, stp=stp, amend_rule=amend_rule),
                reference(tick, lot, stp=stp, amend_rule=amend_rule))


STEPS = settings(stateful_step_count=30)


class TestEngineVsReference(EngineVsReference.TestCase):
    settings = STEPS

    def setUp(self):
        _engine_cls()   # skips (with the reason) only while the engine does not exist
        super().setUp()


class TestReferenceSelfConsistency(ReferenceCallVsBatch.TestCase):
    settings = STEPS
