"""A model of the order book built only from docs/semantics.md (for tests/test_differential.py).

``Op`` is one message: a per-call method (or ``submit``) with its fields, and the
``MESSAGE_DTYPE`` row it stands for. ``Model`` is the book the spec describes, fed with the
canonical events (the per-call numbering; test_differential.py maps the batch path onto it):

* before the message, the model predicts the validation failure (reason, and so the exception
  type), the market refusal, or acceptance, and simulates the spec's steps 1-5 to get the exact
  events (fields the spec defines: ``_SPEC_FIELDS``);
* the actual events are then replayed into the model's per-id bookkeeping, which checks each one
  on its own: FIFO and price priority of every maker, trade price and quantity, the taker's limit,
  self-trade prevention, which stops trigger in which order right after their trade, fill-or-kill,
  and the ledger of every order id (submitted = filled + cancelled + resting, where AMENDED resets
  the remaining quantity);
* its views (``l3_rows``, ``stop_rows``, ``best``, ``state`` ...) give what the books must show
  after every step.

A refusal by exception must be an ``OrderError`` (``UnknownOrderError`` for UNKNOWN_ORDER) whose
``reason`` is the one the model predicts and the batch path reports.

``Model.check`` judges an outcome: ``("ok", events)``, or ``("raise", exception type, the batch
path's REJECTED event or None, description, reason)``.
"""

from __future__ import annotations

import numpy as np

from orderbook.errors import OrderError, UnknownOrderError
from orderbook.events import (
    INT64_MAX,
    INT64_MIN,
    AmendRule,
    Event,
    EventKind,
    Kind,
    Reason,
    SelfTradePrevention,
    Side,
)

# --------------------------------------------------------------------------------------------
# Kind sets, per-call signatures and the message
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
