"""Two engines driven in lockstep (``Pair``), for tests/test_engine_differential.py.

``Pair`` makes each call on both engines (and notes it, so a failing example prints a replay
script), then demands that they agree exactly on:

* the value each call returns (events of an order call, records of ``liquidate()``, the flag of
  ``liquidation_round()``, ``account()``, ``total_equity()``, None otherwise) or the type of the
  exception it raises;
* ``owners()``, ``account(owner)`` of every owner (the insurance fund's included), ``queue()``,
  ``time``, ``mark_price()``, ``book.last_price``, ``insurance_fund``, ``fees_collected``,
  ``total_deposits``, ``open_interest()``, ``book.l3()``, ``book.stops()``, ``forced_orders()``,
  ``fund_history()``, ``funding_history()``, ``trades()``, ``total_equity(m)`` at fixed common
  marks, and the ``check_initial_margin`` setting (which a copy keeps);
* the ``reason`` of an ``OrderError`` both raise; an order or amend refused with
  ``Reason.INSUFFICIENT_MARGIN`` must leave the accounts, the book, the trades and the mark as
  they were (docs/liquidation.md, "Initial margin").

The state is compared after every call, except that with ``observe_all`` off the test draws
which steps leave it unqueried (never ``liquidate()`` or ``liquidation_round()``). Float fields are
compared by their bits (``bitwise``: the reference-vs-reference determinism check) or with
NaN-aware equality; a difference raises ``Mismatch``. ``round_trip`` replaces both engines by a
copy (``ROUND_TRIPS``) whose state must equal its original's, bit for bit.

Every observed state of both engines is also checked against docs/liquidation.md directly:
positions sum to 0, ``open_interest()`` is the sum of the longs; conservation
``total_equity(m) + fees_collected == total_deposits`` at common marks and at the mark, recomputed
from the ``account()`` fields (equity + reserve); reserves move only by add_account, deposit and
add_margin; MM/IM at the mark equal the tier table's (MM on the ``mm_basis``); the liquidation
price is exact (liquidatable there, not one tick better) and agrees with the ``trigger``
(``equity < MM`` or ``equity <= MM``) at the mark; the
bankruptcy price follows its formula; ``margin_ratio`` is MM / E (inf, 0.0); records are sane
(kinds, sides, counterparties, ``filled <= qty``, ``generation <= round``, ``avg_price`` =
``notional / (filled k)`` correctly rounded, NaN exactly when nothing filled, fund records only
fee-free orders or bad-debt shortfalls) and a negative fund is covered by recorded bad debt; the
records ``liquidate()`` returns are the tail of ``forced_orders()``; ADL never takes a
counterparty's collateral below min(what it was, 0) (checked on the counterparties that did
nothing else in the call); and after a ``liquidate()``
that ran to its end with an empty queue, no non-exempt account is liquidatable at the mark.

``VenuePair`` drives venues of several instruments (``Engine(instruments=[...])``,
docs/market_wide.md step 1) the same way: order ids per book (``order_id(i)``), and what it
compares and checks taken per instrument: ``books[i].l3()``/``stops()``/``last_price``,
``trades(i)``, ``mark_price(i)``, ``open_interest(i)``, ``Engine.instruments``, every account with
its ``positions`` (each position's notional, unrealised profit, MM and IM at its own mark),
records with their ``instrument`` (``avg_price`` at that instrument's k), ``total_equity`` at
per-instrument common marks (conservation there), and ``orderbook.testing.check_accounts`` after
every observed step (positions sum to 0 per instrument, money across all, each position's
liquidation and bankruptcy prices with the others held at their marks; ``settled=True`` after a
``liquidate()`` that ran to its end); each ADL close within the counterparty's cap, and no
forced order id on two books.
"""

from __future__ import annotations

import copy
import math
import pickle
from fractions import Fraction

import numpy as np
from hypothesis import event, note
from hypothesis import strategies as st

from orderbook.errors import OrderError
from orderbook.events import (
    EVENT_DTYPE,
    FORCED_DTYPE,
    FUNDING_DTYPE,
    INSURANCE_FUND,
    L3_DTYPE,
    NO_COUNTERPARTY,
    STOP_DTYPE,
    AccountInfo,
    Event,
    ForcedKind,
    FundingSettlement,
    MarginBasis,
    Reason,
    Side,
    Trigger,
)
from orderbook.margin import MarginTiers, contract_value
from orderbook.testing import check_accounts
from orderbook.testing.invariants import _assets, _holding_value


def _short_of(rules, equity: int, mm: int) -> bool:
    """The trigger of ``rules`` = (trigger, mm_basis): E < MM, or E <= MM."""
    return equity <= mm if rules[0] == Trigger.AT_OR_BELOW else equity < mm


def _mm_at(rules, tiers, a, p: int, k: int) -> int:
    """MM of account ``a`` at price ``p`` on the basis of ``rules``: the notional or the cost."""
    if rules[1] == MarginBasis.ENTRY:
        return tiers.maintenance(int(a.cost))
    return tiers.maintenance(p * abs(int(a.position)) * k)

BUY, SELL = int(Side.BUY), int(Side.SELL)
FUND_HISTORY_DTYPE = np.dtype([("round", "<i8"), ("balance", "<i8")])
COMMON_MARKS = (1, 97, 1_000)



# --------------------------------------------------------------------------- comparisons


class Mismatch(AssertionError):
    pass


def _fmt_exc(exc):
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def _same_float(x, y, bitwise):
    x, y = float(x), float(y)
    if bitwise:
        return np.float64(x).tobytes() == np.float64(y).tobytes()
    return x == y or (math.isnan(x) and math.isnan(y))


def _as_int_or_none(v):
    return None if v is None else int(v)


def _compare_events(where, left, right):
    if not isinstance(left, list):
        raise Mismatch(f"{where}: left returned {type(left).__name__}, not a list of Event")
    for ev in left:
        if not isinstance(ev, Event):
            raise Mismatch(f"{where}: left returned {type(ev).__name__} items, not Event")
    lt = [tuple(int(x) for x in ev) for ev in left]
    rt = [tuple(int(x) for x in ev) for ev in right]
    if lt != rt:
        for i, (a, b) in enumerate(zip(lt, rt, strict=False)):
            if a != b:
                raise Mismatch(f"{where}: event {i} differs:\n  left  {Event(*a)!r}\n"
                               f"  right {Event(*b)!r}")
        raise Mismatch(f"{where}: {len(lt)} events on the left, {len(rt)} on the right:\n"
                       f"  left  {left!r}\n  right {right!r}")


def _compare_array(where, left, right, dtype, bitwise):
    """Structured arrays field by field; float fields NaN-aware (or by their bits)."""
    if not isinstance(left, np.ndarray) or left.dtype != dtype:
        raise Mismatch(f"{where}: left is {type(left).__name__} "
                       f"{getattr(left, 'dtype', None)}, expected dtype {dtype}")
    assert right.dtype == dtype, f"{where}: right (reference) dtype {right.dtype} != {dtype}"
    if left.shape != right.shape:
        raise Mismatch(f"{where}: {left.shape[0]} rows on the left, {right.shape[0]} on the right"
                       f"\n  left  {_rows(left)}\n  right {_rows(right)}")
    for name in dtype.names:
        a, b = left[name], right[name]
        if a.dtype.kind == "f":
            same = (a.view(np.uint64) == b.view(np.uint64)) if bitwise else (
                (a == b) | (np.isnan(a) & np.isnan(b)))
        else:
            same = a == b
        if not np.all(same):
            i = int(np.flatnonzero(~same)[0])
            extra = ""
            if a.dtype.kind == "f":
                extra = (f" ({a[i]!r} vs {b[i]!r}; the reference rounds the exact rational "
                         f"value once, float(Fraction))")
            raise Mismatch(f"{where}: field {name!r} differs at row {i}{extra}\n"
                           f"  left  {_row(left[i])}\n  right {_row(right[i])}")


def _row(r):
    return {name: r[name].item() for name in r.dtype.names}


def _rows(arr):
    return [_row(r) for r in arr]


def _compare_account(where, left, right):
    if not isinstance(left, tuple) or len(left) != len(AccountInfo._fields):
        raise Mismatch(f"{where}: left returned {left!r}, not an AccountInfo")
    for name, a, b in zip(AccountInfo._fields, left, right, strict=True):
        if name == "margin_ratio":
            ok = _same_float(a, b, bitwise=False)
        elif name in ("exempt", "isolated"):
            ok = bool(a) == bool(b) and isinstance(a, (bool, np.bool_))
        elif name in ("liquidation_price", "bankruptcy_price"):
            ok = (a is None) == (b is None) and _as_int_or_none(a) == _as_int_or_none(b)
        elif name in ("positions", "assets"):
            ok = len(a) == len(b) and all(
                tuple(map(_as_int_or_none, x)) == tuple(map(_as_int_or_none, y))
                for x, y in zip(a, b, strict=True))
        else:
            ok = int(a) == int(b)
        if not ok:
            raise Mismatch(f"{where}: field {name!r} differs: {a!r} vs {b!r}\n"
                           f"  left  {left!r}\n  right {right!r}")


def _snapshot(eng):
    """Everything observable, queried in a fixed order (mark_price() may cache the mark)."""
    owners = [int(o) for o in eng.owners()]
    return {
        "owners": owners,
        "accounts": [eng.account(o) for o in owners],
        "mark": _as_int_or_none(eng.mark_price()),
        "last": _as_int_or_none(eng.book.last_price),
        "queue": [int(o) for o in eng.queue()],
        "insurance_fund": int(eng.insurance_fund),
        "fees_collected": int(eng.fees_collected),
        "total_deposits": int(eng.total_deposits),
        "l3": eng.book.l3(),
        "stops": eng.book.stops(),
        "forced": eng.forced_orders(),
        "fund_history": eng.fund_history(),
        "trades": eng.trades(),
        "open_interest": int(eng.open_interest()),
        "total_equity_common": [int(eng.total_equity(m)) for m in COMMON_MARKS],
        "check_initial_margin": bool(eng.check_initial_margin),
        "time": eng.time,
        "funding": eng.funding_history(),
    }


def _compare_snapshots(where, left, right, bitwise):
    for key in ("owners", "mark", "last", "queue", "insurance_fund", "fees_collected",
                "total_deposits", "open_interest", "total_equity_common",
                "check_initial_margin", "time"):
        if left[key] != right[key]:
            raise Mismatch(f"{where}: {key} differs: {left[key]!r} vs {right[key]!r}")
    for owner, a, b in zip(left["owners"], left["accounts"], right["accounts"], strict=True):
        _compare_account(f"{where}: account({owner})", a, b)
    _compare_array(f"{where}: book.l3()", left["l3"], right["l3"], L3_DTYPE, bitwise)
    _compare_array(f"{where}: book.stops()", left["stops"], right["stops"], STOP_DTYPE, bitwise)
    _compare_array(f"{where}: forced_orders()", left["forced"], right["forced"], FORCED_DTYPE,
                   bitwise)
    _compare_array(f"{where}: fund_history()", left["fund_history"], right["fund_history"],
                   FUND_HISTORY_DTYPE, bitwise)
    _compare_array(f"{where}: trades()", left["trades"], right["trades"], EVENT_DTYPE, bitwise)
    _compare_array(f"{where}: funding_history()", left["funding"], right["funding"],
                   FUNDING_DTYPE, bitwise)


# --------------------------------------------------------------------------- contract checks


def _equity_at(acc, m, k):
    q, c = int(acc.position), int(acc.cost)
    if q > 0:
        return int(acc.collateral) + q * m * k - c
    if q < 0:
        return int(acc.collateral) + c + q * m * k
    return int(acc.collateral)


def _ceil_div(a, b):
    return -((-a) // b)


def _check_contract(where, eng, snap, k, backstop, tiers, max_price, reserves, rules):
    assert (int(eng.trigger), int(eng.mm_basis)) == rules, f"{where}: trigger and mm_basis"
    accounts = snap["accounts"]
    mark = snap["mark"]
    fees, deposits = snap["fees_collected"], snap["total_deposits"]
    by_owner = dict(zip(snap["owners"], accounts, strict=True))
    assert INSURANCE_FUND in by_owner, f"{where}: owners() lacks the insurance fund"
    assert by_owner[INSURANCE_FUND].collateral == snap["insurance_fund"], where

    # zero-sum positions
    assert sum(int(a.position) for a in accounts) == 0, f"{where}: positions do not sum to 0"
    assert snap["open_interest"] == sum(max(0, int(a.position)) for a in accounts), (
        f"{where}: open_interest() is not the sum of long positions")
    # the reserve only moves by deposit and add_margin (docs: trading, fees, liquidation and
    # shortfalls never touch it)
    for a in accounts:
        assert int(a.reserve) == reserves.get(int(a.owner), 0), (
            f"{where}: account({a.owner}).reserve is {a.reserve}, expected "
            f"{reserves.get(int(a.owner), 0)} from add_account/deposit/add_margin")
        assert bool(a.isolated) == (int(a.owner) in reserves), f"{where}: account({a.owner})"
    # conservation at common marks (engine's total_equity and recomputed from account())
    for m, total in zip(COMMON_MARKS, snap["total_equity_common"], strict=True):
        assert total + fees == deposits, (
            f"{where}: total_equity({m}) + fees_collected = {total + fees} != total_deposits "
            f"{deposits}")
        assert sum(_equity_at(a, m, k) + int(a.reserve) for a in accounts) == total, (
            f"{where}: total_equity({m}) != sum of equities and reserves from account()")
    if mark is not None:
        total = sum(int(a.equity) + int(a.reserve) for a in accounts)
        assert total + fees == deposits, (
            f"{where}: sum(account().equity + reserve) + fees = {total + fees} != deposits "
            f"{deposits} at mark {mark}")
        assert int(eng.total_equity()) == total, f"{where}: total_equity() at the mark"

    for a in accounts:
        q, c, coll = int(a.position), int(a.cost), int(a.collateral)
        tag = f"{where}: account({a.owner})"
        if q == 0:
            assert c == 0, f"{tag}: flat with cost {c}"
            assert a.bankruptcy_price is None and a.liquidation_price is None, tag
        else:
            assert c >= 0, f"{tag}: negative cost"
            bp = (_ceil_div(c - coll, q * k) if q > 0 else (c + coll) // (-q * k))
            assert a.bankruptcy_price == max(0, bp), (
                f"{tag}: bankruptcy price {a.bankruptcy_price}, docs formula gives {bp}")
        if a.exempt or q == 0:
            assert a.liquidation_price is None, f"{tag}: exempt/flat with a liquidation price"
        if not a.exempt and q != 0:
            # the liquidation price is exact: liquidatable there, not one tick better
            liq = a.liquidation_price
            def liquidatable_at(p, a=a):
                return _short_of(rules, _equity_at(a, p, k), _mm_at(rules, tiers, a, p, k))
            if liq is None:
                assert not liquidatable_at(0 if q > 0 else max_price), (
                    f"{tag}: no liquidation price, yet liquidatable at the extreme price")
            else:
                assert 0 <= liq <= max_price and liquidatable_at(liq), (
                    f"{tag}: not liquidatable at its liquidation price {liq}")
                better = liq + 1 if q > 0 else liq - 1
                assert not 0 <= better <= max_price or not liquidatable_at(better), (
                    f"{tag}: still liquidatable one tick past its liquidation price {liq}")
        if mark is not None:
            assert int(a.equity) == _equity_at(a, mark, k), f"{tag}: equity at mark {mark}"
            mm = int(a.maintenance_margin)
            notional = mark * abs(q) * k
            assert (mm, int(a.initial_margin)) == (
                _mm_at(rules, tiers, a, mark, k), tiers.initial(notional)), (
                f"{tag}: MM/IM at mark {mark} differ from the tier table")
            if not a.exempt and q != 0:
                liquidatable = _short_of(rules, int(a.equity), mm)
                liq = a.liquidation_price
                crossed = liq is not None and (mark <= liq if q > 0 else mark >= liq)
                assert liquidatable == crossed, (
                    f"{tag}: liquidatable at mark {mark} is {liquidatable} but the liquidation "
                    f"price is {liq}: {a!r}")
            # margin ratio as documented
            e = int(a.equity)
            expected = mm / e if e > 0 else (math.inf if mm > 0 else 0.0)
            assert _same_float(a.margin_ratio, expected, bitwise=False), (
                f"{tag}: margin_ratio {a.margin_ratio!r}, expected {expected!r}")

    _check_records(where, snap, lambda r: k, backstop)


def _check_records(where, snap, k_of, backstop, inverse=False):
    """The records' own contract (kinds, sides, counterparties, fills, avg_price at the k of
    the record's instrument, ``k_of(record)``), the fund's records and history."""
    recs = snap["forced"]
    for i, r in enumerate(recs):
        tag = f"{where}: forced_orders()[{i}] {_row(r)}"
        kind = ForcedKind(int(r["kind"]))
        assert int(r["side"]) in (BUY, SELL), tag
        assert 0 <= int(r["generation"]) <= int(r["round"]), tag
        assert 0 <= int(r["filled"]) <= int(r["qty"]), tag
        assert int(r["fee"]) >= 0, tag
        assert (int(r["filled"]) == 0) == math.isnan(float(r["avg_price"])), tag
        if int(r["filled"]):
            # (inverse: the fills' harmonic mean; a lot at max_price <= k is worth a coin unit,
            # so a filled record's notional is > 0)
            exact = (Fraction(int(r["filled"]) * k_of(r), int(r["notional"])) if inverse
                     else Fraction(int(r["notional"]), int(r["filled"]) * k_of(r)))
            assert float(r["avg_price"]) == float(exact), (
                f"{tag}: avg_price is not notional / (filled k) = {exact} correctly rounded")
        elif kind == ForcedKind.CONVERSION:
            # asset units sold to the venue for ``notional`` quote units, off the book
            assert int(r["qty"]) > 0 and int(r["notional"]) >= 0, tag
            assert int(r["counterparty"]) == NO_COUNTERPARTY and int(r["fee"]) == 0, tag
            assert int(r["mark_before"]) == int(r["mark_after"]) > 0, tag
            assert int(r["owner"]) != INSURANCE_FUND, tag
            continue
        else:
            assert int(r["notional"]) == 0, tag
        assert math.isnan(float(r["avg_price"])) == math.isnan(float(r["slippage"])), tag
        if kind == ForcedKind.ORDER:
            assert int(r["counterparty"]) == NO_COUNTERPARTY and int(r["filled"]) > 0, tag
        elif kind == ForcedKind.CONVERSION:
            # through a spot book: lots sent and filled, like an order, no fee
            assert int(r["counterparty"]) == NO_COUNTERPARTY and int(r["fee"]) == 0, tag
        elif kind == ForcedKind.SHORTFALL:
            assert int(r["counterparty"]) == NO_COUNTERPARTY and int(r["qty"]) == 0, tag
            assert min(int(r["fund_cover"]), int(r["socialized"]), int(r["bad_debt"])) >= 0, tag
            assert int(r["fund_cover"]) + int(r["socialized"]) + int(r["bad_debt"]) > 0, tag
        else:
            assert int(r["filled"]) == int(r["qty"]) > 0, tag
            assert int(r["fee"]) == 0, tag
            if kind == ForcedKind.BACKSTOP:
                assert int(r["counterparty"]) == backstop, tag
            elif kind == ForcedKind.FUND_TAKEOVER:
                assert int(r["counterparty"]) == INSURANCE_FUND, tag
            else:
                assert int(r["counterparty"]) not in (NO_COUNTERPARTY, INSURANCE_FUND), tag
        if int(r["owner"]) == INSURANCE_FUND:
            # the fund unwinds with fee-free forced orders; its own losses below zero are
            # SHORTFALL records carrying them as bad debt
            assert kind in (ForcedKind.ORDER, ForcedKind.SHORTFALL) and int(r["fee"]) == 0, tag
            if kind == ForcedKind.SHORTFALL:
                assert int(r["bad_debt"]) > 0 and int(r["fund_cover"]) == 0, tag
                assert int(r["socialized"]) == 0, tag
    # "the fund is never below zero without records whose bad_debt add up to at least that much"
    if snap["insurance_fund"] < 0:
        assert int(recs["bad_debt"].sum()) >= -snap["insurance_fund"], (
            f"{where}: insurance fund {snap['insurance_fund']} but the records' bad_debt add up "
            f"to {int(recs['bad_debt'].sum())}")
    hist = snap["fund_history"]
    assert np.array_equal(hist["round"], np.arange(len(hist))), f"{where}: fund_history rounds"


def _adl_view(eng):
    """What _check_adl_keeps_capital compares: the records and trades so far, collaterals."""
    return (len(eng.forced_orders()), len(eng.trades()),
            {o: int(eng.account(o).collateral) for o in eng.owners()})


def _check_adl_keeps_capital(where, eng, before):
    """docs/liquidation.md, ADL: an ADL counterparty never closes worse than its cap, so ADL
    never takes its collateral below min(what it was, 0). Checked on the counterparties of the
    call's ADL records that did nothing else in the call (no record of their own, no trade)."""
    n_records, n_trades, collateral = before
    records = eng.forced_orders()[n_records:]
    trades = eng.trades()[n_trades:]
    busy = set(records["owner"].tolist()) | set(trades["owner"].tolist()) | set(
        trades["maker_owner"].tolist())
    adl = records[records["kind"] == int(ForcedKind.ADL)]
    for owner in set(adl["counterparty"].tolist()) - busy:
        after = int(eng.account(owner).collateral)
        assert after >= min(collateral[owner], 0), (
            f"{where}: ADL took account {owner}'s collateral from {collateral[owner]} to "
            f"{after} ({type(eng).__module__})")


# --------------------------------------------------------------------------- the driver

#: The calls that send a message to the book.
ORDER_METHODS = ("limit", "market", "ioc", "fok", "post_only", "stop_market", "stop_limit",
                 "cancel", "amend")


def _order_view(eng):
    """What an order call may change: accounts, book, trades, the mark (cheap to compare)."""
    return ([tuple(eng.account(o)) for o in eng.owners()], eng.book.l3().tolist(),
            eng.book.stops().tolist(), len(eng.trades()), eng.mark_price(),
            eng.book.last_price, int(eng.fees_collected))



class Pair:
    """Two engines driven in lockstep; every call's outcome and the state after it compared."""

    def __init__(self, classes, args, kwargs, k, bitwise):
        self.k = k
        self.bitwise = bitwise
        self.backstop = kwargs.get("backstop")
        self.tiers = MarginTiers(kwargs["tiers"])  # the tier table, for independent checks
        self.rules = (kwargs.get("trigger", 0), kwargs.get("mm_basis", 0))
        self.max_price = kwargs.get("max_price", 2**32 - 1)
        self.step = 0
        self.next_id = 1
        self.ids = []
        self.n_records = 0
        self.reserves = {}  # owner -> expected reserve of each isolated account
        self.observe_all = True
        self.quiet = False  # True: no step is observed until check() (VenuePair's setup)
        self.draw = None
        note(f"eng = Engine({', '.join([*map(repr, args), f'**{kwargs!r}'])})")
        self.engines = [cls(*args, **kwargs) for cls in classes]
        self.check("Engine(...)")

    def order_id(self):
        oid = self.next_id
        self.next_id += 1
        self.ids.append(oid)
        return oid

    def call(self, method, *args, **kwargs):
        self.step += 1
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        where = f"step {self.step}: eng.{method}({shown})"
        outcomes = []
        before = [self._adl_view(eng) for eng in self.engines] if method in (
            "liquidate", "liquidation_round") else None
        orders = [self._order_view(eng) for eng in self.engines] if method in ORDER_METHODS \
            else None
        for eng in self.engines:
            try:
                outcomes.append((getattr(eng, method)(*args, **kwargs), None))
            except (ValueError, KeyError, TypeError) as exc:
                outcomes.append((None, exc))
        (left, lexc), (right, rexc) = outcomes
        note(f"{where}" + (f"  # raises {_fmt_exc(rexc)}" if rexc else ""))
        if rexc is not None and not isinstance(rexc, (ValueError, KeyError, TypeError)):
            raise AssertionError(f"{where}: the reference raised {_fmt_exc(rexc)}")
        if (lexc is None) != (rexc is None) or (lexc is not None and type(lexc) is not type(rexc)):
            raise Mismatch(f"{where}: outcomes differ: left {_fmt_exc(lexc) or 'returned'}, "
                           f"right {_fmt_exc(rexc) or 'returned'}")
        if isinstance(rexc, OrderError):
            if not isinstance(lexc, OrderError) or lexc.reason != rexc.reason:
                raise Mismatch(f"{where}: reasons differ: {_fmt_exc(lexc)} vs {_fmt_exc(rexc)}")
            if rexc.reason == Reason.INSUFFICIENT_MARGIN:
                event("an order refused for initial margin")
                for eng, seen in zip(self.engines, orders, strict=True):
                    if self._order_view(eng) != seen:
                        raise Mismatch(f"{where}: refused for initial margin but changed "
                                       f"{type(eng).__module__}'s state")
        if rexc is None:
            self._compare_result(where, method, left, right)
            self._track_reserve(method, args, kwargs)
            if before is not None:
                for eng, seen in zip(self.engines, before, strict=True):
                    self._check_adl(where, eng, seen)
        if method in ("liquidate", "liquidation_round") or (not self.quiet and (
                self.observe_all or self.draw(st.booleans(), label="observe"))):
            self.check(where)
        else:
            note("    # (state not queried after this step)")
        if method == "liquidate" and rexc is None:
            # max_rounds may come positionally (the hostile-argument step passes it so)
            self._check_liquidate(where, right, {**kwargs, **(
                {"max_rounds": args[0]} if args else {})})
        return right, rexc

    def _track_reserve(self, method, args, kwargs):
        if method == "add_account" and kwargs.get("isolated_margin") is not None:
            self.reserves[args[0]] = args[1] - kwargs["isolated_margin"]
        elif method == "deposit" and args[0] in self.reserves:
            self.reserves[args[0]] += args[1]
        elif method == "add_margin":
            self.reserves[args[0]] -= args[1]

    def _compare_result(self, where, method, left, right):
        if method in ORDER_METHODS:
            _compare_events(where, left, right)
        elif method == "liquidate":
            _compare_array(where, left, right, FORCED_DTYPE, self.bitwise)
        elif method == "account":
            _compare_account(where, left, right)
        elif method == "total_equity":
            if type(left) is not int or left != right:
                raise Mismatch(f"{where}: returned {left!r} vs {right!r}")
        elif method == "liquidation_round":
            if bool(left) != bool(right) or not isinstance(left, (bool, np.bool_)):
                raise Mismatch(f"{where}: returned {left!r} vs {right!r}")
        elif method == "settle_funding":
            if not isinstance(left, FundingSettlement) or tuple(left) != tuple(right) or any(
                    type(x) is not int for x in left):
                raise Mismatch(f"{where}: returned {left!r} vs {right!r}")
            # docs/funding.md: what was paid went to the receivers and the fund; each receiver's
            # floor loses less than a unit, and with no receiver the fund takes it all
            assert left.paid == left.received + left.remainder >= left.received >= 0, where
            assert (left.remainder < left.receivers if left.receivers
                    else left.remainder == left.paid), where
            event("funding paid" if left.paid else "funding paid nothing")
        elif left is not None or right is not None:
            raise Mismatch(f"{where}: returned {left!r} vs {right!r} (expected None)")

    # What is observed and checked; VenuePair (several instruments) replaces these.
    _snapshot = staticmethod(_snapshot)
    _compare_snapshots = staticmethod(_compare_snapshots)
    _order_view = staticmethod(_order_view)
    _adl_view = staticmethod(_adl_view)
    _check_adl = staticmethod(_check_adl_keeps_capital)

    def _check_contract(self, where, eng, snap):
        _check_contract(where, eng, snap, self.k, self.backstop, self.tiers, self.max_price,
                        self.reserves, self.rules)

    def check(self, where):
        snaps = [self._snapshot(eng) for eng in self.engines]
        self._compare_snapshots(where, snaps[0], snaps[1], self.bitwise)
        for eng, snap in zip(self.engines, snaps, strict=True):
            self._check_contract(where, eng, snap)
        self.snap = snaps[1]

    def _check_liquidate(self, where, records, kwargs):
        forced = self.snap["forced"]
        tail = forced[self.n_records:]
        _compare_array(f"{where}: returned records vs forced_orders() tail", records, tail,
                       FORCED_DTYPE, bitwise=True)
        self.n_records = len(forced)
        if "max_rounds" in kwargs or self.snap["queue"] or self.snap["mark"] is None:
            return  # stopped by max_rounds, or stalled with a queue, or no mark at all
        for a in self.snap["accounts"]:
            if not a.exempt and a.position != 0:
                assert not _short_of(self.rules, a.equity, a.maintenance_margin), (
                    f"{where}: liquidate() ended with an empty queue but account {a.owner} is "
                    f"liquidatable at mark {self.snap['mark']}: {a!r}")

    def sync_records(self):
        self.n_records = len(self.snap["forced"])

    def round_trip(self, how):
        """Replace both engines by copies (``how``); each copy must show its original's state."""
        self.step += 1
        where = f"step {self.step}: eng = {how}(eng)"
        note(where)
        copies = []
        for eng in self.engines:
            before = self._snapshot(eng)
            other = ROUND_TRIPS[how](eng)
            if type(other) is not type(eng):
                raise Mismatch(f"{where}: a {type(other).__name__} from a {type(eng).__name__}")
            self._compare_snapshots(f"{where} ({type(eng).__module__})", self._snapshot(other),
                                    before, bitwise=True)
            copies.append(other)
        self.engines = copies
        self.check(where)


ROUND_TRIPS = {
    "copy.copy": copy.copy,
    "copy.deepcopy": copy.deepcopy,
    "Engine.copy": lambda eng: eng.copy(),
    "pickle": lambda eng: pickle.loads(pickle.dumps(eng)),
}


# --------------------------------------------------------------------------- several instruments
# docs/market_wide.md, step 1 (one Engine holding several linear instruments): the same driver,
# observing and checking every instrument.


def _common_marks(n):
    """Marks (one per instrument) at which total_equity is compared and conservation checked:
    every instrument at each COMMON_MARKS value, and the values spread over the instruments."""
    same = [(m,) * n for m in COMMON_MARKS]
    return same + ([COMMON_MARKS[:n], COMMON_MARKS[::-1][:n]] if n > 1 else [])


def _instrument_row(spec):
    """An Engine.instruments entry as plain values (its tiers as their rows)."""
    return (spec.name, str(spec.tick_size), str(spec.lot_size), spec.tiers.rows(),
            int(spec.max_price), int(spec.max_position), int(spec.mark_rule))


def _venue_snapshot(eng):
    """Everything observable, every instrument, queried in a fixed order."""
    owners = [int(o) for o in eng.owners()]
    snap = {
        "owners": owners,
        "accounts": [eng.account(o) for o in owners],
        "queue": [int(o) for o in eng.queue()],
        "insurance_fund": int(eng.insurance_fund),
        "fees_collected": int(eng.fees_collected),
        "total_deposits": int(eng.total_deposits),
        "forced": eng.forced_orders(),
        "fund_history": eng.fund_history(),
        "check_initial_margin": bool(eng.check_initial_margin),
        "time": eng.time,
        "funding": eng.funding_history(),
        "instruments": [_instrument_row(spec) for spec in eng.instruments],
        "assets": tuple(eng.assets),
        "asset_deposits": tuple(int(x) for x in eng.asset_deposits),
        "conversions": tuple((int(u), int(q)) for u, q in eng.conversions),
        # instrument 0's, as the one-instrument API names them
        "instrument_0": (int(eng.k), eng.tiers.rows(), int(eng.max_price),
                         int(eng.max_position), int(eng.mark_rule), int(eng.funding_basis_ppm)),
        "marks": [], "last": [], "l3": [], "stops": [], "trades": [], "open_interest": [],
    }
    for i, book in enumerate(eng.books):
        snap["marks"].append(_as_int_or_none(eng.mark_price(i)))
        snap["last"].append(_as_int_or_none(book.last_price))
        snap["l3"].append(book.l3())
        snap["stops"].append(book.stops())
        snap["trades"].append(eng.trades(i))
        snap["open_interest"].append(int(eng.open_interest(i)))
    n = len(snap["marks"])
    # an int for one instrument, as the one-instrument API takes it
    snap["total_equity_common"] = [int(eng.total_equity(m[0] if n == 1 else list(m)))
                                   for m in _common_marks(n)]
    snap["mark"] = snap["marks"][0]  # instrument 0's, as the one-instrument driver names it
    return snap


def _compare_venue_snapshots(where, left, right, bitwise):
    for key in ("owners", "queue", "insurance_fund", "fees_collected", "total_deposits",
                "check_initial_margin", "instruments", "instrument_0", "marks", "last",
                "open_interest", "total_equity_common", "assets", "asset_deposits",
                "conversions", "time"):
        if left[key] != right[key]:
            raise Mismatch(f"{where}: {key} differs: {left[key]!r} vs {right[key]!r}")
    for owner, a, b in zip(left["owners"], left["accounts"], right["accounts"], strict=True):
        _compare_account(f"{where}: account({owner})", a, b)
    for i in range(len(left["marks"])):
        _compare_array(f"{where}: books[{i}].l3()", left["l3"][i], right["l3"][i], L3_DTYPE,
                       bitwise)
        _compare_array(f"{where}: books[{i}].stops()", left["stops"][i], right["stops"][i],
                       STOP_DTYPE, bitwise)
        _compare_array(f"{where}: trades({i})", left["trades"][i], right["trades"][i],
                       EVENT_DTYPE, bitwise)
    _compare_array(f"{where}: forced_orders()", left["forced"], right["forced"], FORCED_DTYPE,
                   bitwise)
    _compare_array(f"{where}: fund_history()", left["fund_history"], right["fund_history"],
                   FUND_HISTORY_DTYPE, bitwise)
    _compare_array(f"{where}: funding_history()", left["funding"], right["funding"],
                   FUNDING_DTYPE, bitwise)


def _unrealised(q, cost, m, k, inverse=False):
    """sign(q) (V(m, |q|) - cost), the other sign on an inverse venue."""
    value = contract_value(inverse, k, m, abs(q))
    sign = -1 if inverse else 1
    return sign * (value - cost) if q > 0 else sign * (cost - value) if q < 0 else 0


def _check_venue_contract(where, eng, snap, ks, tiers, backstop, reserves, rules,
                          inverse=False):
    """The one-instrument contract per instrument (docs/market_wide.md), then
    orderbook.testing.check_accounts (per-position liquidation and bankruptcy prices with the
    others held at their marks, margins, queue, money)."""
    n = len(ks)
    assert (int(eng.trigger), int(eng.mm_basis)) == rules, f"{where}: trigger and mm_basis"
    assert len(eng.books) == n and len(snap["instruments"]) == n, f"{where}: {n} instruments"
    assert eng.book.l3().tolist() == snap["l3"][0].tolist(), f"{where}: book is books[0]"
    assert snap["instrument_0"][:5] == (ks[0], *snap["instruments"][0][3:]), (
        f"{where}: k, tiers, max_price, max_position, mark_rule are not instrument 0's: "
        f"{snap['instrument_0']} vs {snap['instruments'][0]}")
    # forced orders take ids -1, -2, ... from one venue-wide counter: no id on two books
    forced_ids = [set(t["order_id"][t["order_id"] < 0].tolist()) for t in snap["trades"]]
    assert sum(map(len, forced_ids)) == len(set().union(*forced_ids)), (
        f"{where}: a forced order id on two books: {forced_ids}")
    accounts, marks = snap["accounts"], snap["marks"]
    fees, deposits = snap["fees_collected"], snap["total_deposits"]
    by_owner = dict(zip(snap["owners"], accounts, strict=True))
    assert INSURANCE_FUND in by_owner, f"{where}: owners() lacks the insurance fund"
    assert by_owner[INSURANCE_FUND].collateral == snap["insurance_fund"], where
    held = {}
    for a in accounts:
        tag = f"{where}: account({a.owner})"
        rows = [tuple(int(x) for x in p[:3]) for p in a.positions]
        assert [r[0] for r in rows] == sorted({r[0] for r in rows}), f"{tag}: positions order"
        assert all(q != 0 and 0 <= i < n for i, q, _ in rows), f"{tag}: positions {rows}"
        held[int(a.owner)] = {i: (q, c) for i, q, c in rows}
        if n > 1:
            assert (int(a.position), int(a.cost)) == held[int(a.owner)].get(0, (0, 0)), (
                f"{tag}: position and cost are not instrument 0's")
        assert int(a.reserve) == reserves.get(int(a.owner), 0), f"{tag}: reserve"
        assert bool(a.isolated) == (int(a.owner) in reserves), f"{tag}: isolated"
        # each position's own fields at its instrument's mark (0 where none yet)
        for p in a.positions:
            i, q, c = int(p.instrument), int(p.position), int(p.cost)
            m = marks[i]
            notional = 0 if m is None else contract_value(inverse, ks[i], m, abs(q))
            mm = tiers[i].maintenance(c if rules[1] == MarginBasis.ENTRY else notional)
            want = (notional, 0 if m is None else _unrealised(q, c, m, ks[i], inverse), mm,
                    tiers[i].initial(notional))
            got = (int(p.notional), int(p.unrealised), int(p.maintenance_margin),
                   int(p.initial_margin))
            assert got == want, f"{tag}: position {i} shows {got}, expected {want} at mark {m}"
    for i in range(n):
        lots = [hq[i][0] for hq in held.values() if i in hq]
        assert sum(lots) == 0, f"{where}: positions in instrument {i} sum to {sum(lots)}"
        assert snap["open_interest"][i] == sum(q for q in lots if q > 0), (
            f"{where}: open_interest({i}) is not the sum of the longs")
    # collateral assets: (instrument, num, den, haircut) each, recomputed from the public specs;
    # the quote units the venue paid for converted ones came in from outside
    assets = _assets(eng, None)
    paid = sum(q for _, q in snap["conversions"])
    units = {int(a.owner): {int(h.asset): int(h.balance) for h in a.assets} for a in accounts}

    def asset_values(m):
        return sum(_holding_value(u, m[assets[j][0]], assets[j]) for h in units.values()
                   for j, u in h.items())

    for j, (sold, _) in enumerate(snap["conversions"]):
        assert sum(h.get(j, 0) for h in units.values()) + sold == snap["asset_deposits"][j], (
            f"{where}: asset {j} is not conserved")
    for m, total in zip(_common_marks(n), snap["total_equity_common"], strict=True):
        # (inverse: each position's coin value is rounded on its own, so the sum over accounts
        # at a common mark is the deposits only to that rounding; money is checked exactly on
        # collateral and costs by check_accounts)
        assert inverse or total - asset_values(m) + fees == deposits + paid, (
            f"{where}: total_equity({list(m)}) - assets + fees_collected = "
            f"{total - asset_values(m) + fees} != total_deposits {deposits} + paid {paid}")
        recomputed = sum(int(a.collateral) + int(a.reserve) + sum(
            _unrealised(q, c, m[i], ks[i], inverse) for i, (q, c) in held[int(a.owner)].items())
            for a in accounts) + asset_values(m)
        assert recomputed == total, f"{where}: total_equity({list(m)}) != the accounts' sum"
    if None not in marks:
        total = sum(int(a.equity) + int(a.reserve) for a in accounts)
        assert inverse or total - asset_values(marks) + fees == deposits + paid, (
            f"{where}: sum(equity + reserve) at marks {marks}")
        assert int(eng.total_equity()) == total, f"{where}: total_equity() at the marks"
    for r in snap["forced"]:
        assert 0 <= int(r["instrument"]) < n, f"{where}: record {_row(r)} names no instrument"
    _check_records(where, snap, lambda r: ks[int(r["instrument"])], backstop, inverse)


def _venue_adl_view(eng):
    infos = {o: eng.account(o) for o in eng.owners()}
    return (len(eng.forced_orders()), [len(eng.trades(i)) for i in range(len(eng.books))],
            {o: int(a.collateral) for o, a in infos.items()},
            {o: {int(p.instrument): (int(p.position), int(p.cost)) for p in a.positions}
             for o, a in infos.items()},
            {o for o, a in infos.items() if a.assets})


def _check_venue_adl(where, eng, before, ks, inverse=False):
    """docs/liquidation.md, ADL step 3 (the cap), on the counterparties of the call's ADL
    records that did nothing else in the call (no record, take-over or trade of their own):

    * each close is no worse for it than its cap, the better of the record's mark and the price
      that realises no loss on those lots (its cost followed from the call's start, record by
      record): a short buys back at <= max(m, floor(R / (c k))), a long sells at
      >= min(m, ceil(R / (c k)));
    * one that held a single position and no collateral asset when the call began ends with
      collateral >= min(what it was, 0). One with several, or with an asset, may not: a losing
      position closes at the mark (its equity does not change), and that realised loss can
      exceed its quote collateral while the profits of its other positions, or the value of its
      asset, keep its equity > 0 (found by the machine: a long at a loss on 0 quote and 1 coin).
    """
    n_records, n_trades, collateral, positions, coined = before
    records = eng.forced_orders()[n_records:]
    # busy: an owner of a record, a taker of a backstop or fund take-over, or a trader
    busy = set(records["owner"].tolist()) | set(
        records["counterparty"][records["kind"] != int(ForcedKind.ADL)].tolist())
    for i, n in enumerate(n_trades):
        trades = eng.trades(i)[n:]
        busy |= set(trades["owner"].tolist()) | set(trades["maker_owner"].tolist())
    held = {o: dict(p) for o, p in positions.items()}
    for r in records[records["kind"] == int(ForcedKind.ADL)]:
        owner, i = int(r["counterparty"]), int(r["instrument"])
        if owner in busy:
            continue
        k, qty, mark = ks[i], int(r["qty"]), int(r["mark_before"])
        q, cost = held[owner].get(i, (0, 0))
        direction = -int(r["side"])  # +1: the counterparty buys back a short
        tag = f"{where}: ADL record {_row(r)} of counterparty {owner} (position {q}, cost {cost})"
        assert q * direction < 0 and qty <= abs(q), tag
        released = cost * qty // abs(q)
        if inverse:
            # V falls as the price rises: a short buying at p <= max(m, even) pays a value
            # V(p) >= min(V(m), released); a long selling at p >= min(m, even) gets
            # V(p) <= max(V(m), released), even the price that realises no loss
            at_mark, value = contract_value(True, k, mark, qty), int(r["notional"])
            if direction > 0:
                assert value >= min(at_mark, released), f"{tag}: worse than its cap"
            else:
                assert value <= max(at_mark, released), f"{tag}: worse than its cap"
            held[owner][i] = (q + direction * qty, cost - released)
            continue
        price = int(r["notional"]) // (qty * k)
        assert price * qty * k == int(r["notional"]), tag
        if direction > 0:
            assert price <= max(mark, released // (qty * k)), f"{tag}: worse than its cap"
        else:
            assert price >= min(mark, _ceil_div(released, qty * k)), f"{tag}: worse than its cap"
        held[owner][i] = (q + direction * qty, cost - released)
    adl = records[records["kind"] == int(ForcedKind.ADL)]
    for owner in set(adl["counterparty"].tolist()) - busy:
        if len(positions[owner]) > 1 or owner in coined:
            continue
        after = int(eng.account(owner).collateral)
        assert after >= min(collateral[owner], 0), (
            f"{where}: ADL took account {owner}'s collateral from {collateral[owner]} to "
            f"{after} ({type(eng).__module__})")


def _venue_order_view(eng):
    """What an order call may change, every instrument."""
    return ([tuple(eng.account(o)) for o in eng.owners()], int(eng.fees_collected),
            [(book.l3().tolist(), book.stops().tolist(), len(eng.trades(i)),
              eng.mark_price(i), book.last_price) for i, book in enumerate(eng.books)])


class VenuePair(Pair):
    """Pair over venues of several instruments (``Engine(instruments=[...])``): per-book order
    ids, every instrument observed, the contract checked per instrument."""

    _snapshot = staticmethod(_venue_snapshot)
    _compare_snapshots = staticmethod(_compare_venue_snapshots)
    _order_view = staticmethod(_venue_order_view)
    _adl_view = staticmethod(_venue_adl_view)
    def __init__(self, classes, kwargs, ks, bitwise):
        self.ks = list(ks)
        self.n = len(ks)
        self.next_ids = [1] * self.n
        self.book_ids = [[] for _ in ks]
        default = MarginTiers(kwargs["tiers"])
        self.venue_tiers = [default if spec.tiers is None else MarginTiers(spec.tiers)
                            for spec in kwargs["instruments"]]
        self.names = [spec.name for spec in kwargs["instruments"]]
        self.asset_names = [spec.name for spec in kwargs.get("assets", ())]
        self.inverse = bool(kwargs.get("settlement"))
        super().__init__(classes, (), kwargs, ks[0], bitwise)

    def order_id(self, instrument=0):
        """The next id of an instrument's book (each book has its own id space)."""
        oid = self.next_ids[instrument]
        self.next_ids[instrument] += 1
        self.book_ids[instrument].append(oid)
        return oid

    def _check_adl(self, where, eng, before):
        _check_venue_adl(where, eng, before, self.ks, self.inverse)

    def _check_contract(self, where, eng, snap):
        _check_venue_contract(where, eng, snap, self.ks, self.venue_tiers, self.backstop,
                              self.reserves, self.rules, self.inverse)
        if eng is self.engines[0]:
            # check_accounts queries the engine again (account() is the costly query: a
            # liquidation price per position); the engines showed equal states, so the engine
            # under test (left) stands for both
            check_accounts(eng)

    def _compare_result(self, where, method, left, right):
        if method in ("mark_price", "open_interest"):
            if _as_int_or_none(left) != _as_int_or_none(right):
                raise Mismatch(f"{where}: returned {left!r} vs {right!r}")
        elif method == "trades":
            _compare_array(where, left, right, EVENT_DTYPE, self.bitwise)
        else:
            super()._compare_result(where, method, left, right)

    def _check_liquidate(self, where, records, kwargs):
        forced = self.snap["forced"]
        _compare_array(f"{where}: returned records vs forced_orders() tail", records,
                       forced[self.n_records:], FORCED_DTYPE, bitwise=True)
        self.n_records = len(forced)
        if "max_rounds" not in kwargs:
            # ran to its end: with an empty queue and every mark, nobody is liquidatable
            check_accounts(self.engines[0], settled=True)
