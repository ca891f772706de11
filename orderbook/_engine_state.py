"""Engine saved state: one place for its checks, used by both engines.

``check_state`` validates a pickled engine state before either engine rebuilds itself from it: a
pickle is untrusted input, and the compiled engine keeps it in C structs where a wrong value would
be undefined behaviour instead of an exception (docs/liquidation.md, "Copies and pickles"). The
constructor's arguments are checked by ``_engine_args``.
"""

from __future__ import annotations

from ._engine_args import RATES, fair_mark_fits
from .events import EVENT_DTYPE, FUNDING_BASIS_BOUND, INSURANCE_FUND, INT64_MAX, ForcedKind, Side
from .margin import DEPOSIT_BOUND

#: 2: queue rows carry FRACTION's cooldown, (owner, generation, cooldown_end); a version 1
#: state (rows of two, from before cooldown_rounds) loads with no cooldown running.
STATE_VERSION = 2
#: Fields of one liquidation record in a saved state: FORCED_DTYPE's integers in this order
#: (avg_price and slippage are derived from them).
RECORD_FIELDS = ("round", "generation", "owner", "counterparty", "qty", "filled", "notional",
                 "mark_before", "mark_after", "fee", "fund_cover", "socialized", "bad_debt",
                 "side", "kind")


def constructor_args(engine) -> tuple[tuple, dict]:
    """Arguments that rebuild an engine's settings (its insurance fund starts empty)."""
    book = engine.book
    args = (str(book.tick_size), str(book.lot_size), str(engine.quote_unit))
    kwargs = {name: int(getattr(engine, name)) for name in RATES}
    kwargs.update(tiers=[tuple(row) for row in engine.tiers.rows()],
                  mark_rule=int(engine.mark_rule), sizing=int(engine.sizing),
                  limit_rule=int(engine.limit_rule), deficit=int(engine.deficit),
                  adl_ranking=int(engine.adl_ranking),
                  trigger=int(engine.trigger), mm_basis=int(engine.mm_basis),
                  round_cap=engine.round_cap, backstop=engine.backstop, insurance_fund=0,
                  stp=int(book.stp), amend_rule=int(book.amend_rule),
                  max_price=int(engine.max_price), max_position=int(engine.max_position),
                  check_initial_margin=bool(engine.check_initial_margin),
                  fraction_above=int(engine.fraction_above),
                  cooldown_rounds=int(engine.cooldown_rounds),
                  increment=int(engine.increment))
    return args, kwargs


def saved_kwargs(kwargs):
    """Saved constructor keywords as the constructor takes them today: a pickle made before
    ``limit_rule`` was named so carries ``limit``, its deprecated older name (loading such a
    pickle does not warn); one made before ``adl_ranking`` (``trigger``, ``mm_basis``) existed
    lacks it and loads with the constructor's default (``AdlRanking.BITMEX``, ``Trigger.BELOW``,
    ``MarginBasis.MARK``: the behaviour it was saved with); one made before
    ``check_initial_margin`` existed lacks it and loads with the check on, the constructor's
    default, although the engine that made it did not check (CHANGELOG); one made before
    ``fraction_above`` (``takeover_below_ppm``, ``cooldown_rounds``, ``increment``) existed
    lacks it and loads with 0 (every position takes the fraction; no take-over below a share of
    MM; no cooldown; no INCREMENTAL sizing then, so no step size: as it did). Anything else
    goes to the constructor as it is, to be checked there."""
    if type(kwargs) is dict and "limit" in kwargs and "limit_rule" not in kwargs:
        kwargs = dict(kwargs)
        kwargs["limit_rule"] = kwargs.pop("limit")
    return kwargs


# ------------------------------------------------------------------------------ saved state


def _fail(field: str, rule: str, value) -> ValueError:
    return ValueError(f"corrupt Engine state: {field} {rule}, got {value!r}")


def _int(field: str, value, lo: int = -(2**63), hi: int = INT64_MAX) -> int:
    if type(value) is not int:
        raise _fail(field, "must be an int", value)
    if not lo <= value <= hi:
        raise _fail(field, f"must be in [{lo}, {hi}]", value)
    return value


def _bool(field: str, value) -> bool:
    if type(value) is not bool:
        raise _fail(field, "must be a bool", value)
    return value


def _rows(field: str, value, width: int) -> list:
    if type(value) is not list:
        raise _fail(field, "must be a list", type(value).__name__)
    for i, row in enumerate(value):
        if type(row) is not tuple or len(row) != width:
            raise _fail(f"{field}[{i}]", f"must be a tuple of {width} values", row)
    return value


def check_state(engine, state, book_type) -> dict:
    """Validate a saved state against a freshly built ``engine`` with the saved settings.

    Returns the state with derived values added: ``open`` maps (owner, side) to the lots of that
    owner's live orders on that side (resting and armed stops), what the exposure check counts.
    Raises ValueError naming the field and the value on anything a live engine could not be in.
    """
    if type(state) is not dict:
        raise _fail("state", "must be a dict", type(state).__name__)
    expected = {"version", "book", "accounts", "queue", "records", "trades", "fund_history",
                "fees_collected", "total_deposits", "round", "rounds_run", "next_forced_id",
                "index_price", "mark"}
    # funding_basis_ppm came with MarkRule.FAIR; a state saved before it loads with 0.
    if set(state) - {"funding_basis_ppm"} != expected:
        raise _fail("state keys", f"must be {sorted(expected)} (and funding_basis_ppm)",
                    sorted(state, key=str))
    version = state["version"]
    if version not in (1, STATE_VERSION) or type(version) is not int:
        raise _fail("version", f"must be 1 or {STATE_VERSION}", version)
    max_price, max_position, k = engine.max_price, engine.max_position, engine.k

    # accounts: (owner, collateral, position, cost, reserve, exempt, isolated)
    owners = {}
    net = money = 0
    for i, row in enumerate(_rows("accounts", state["accounts"], 7)):
        field = f"accounts[{i}]"
        owner = _int(f"{field}.owner", row[0], INSURANCE_FUND)
        if owner in owners:
            raise _fail(f"{field}.owner", "must be unique", owner)
        collateral = _int(f"{field}.collateral", row[1])
        # Not max_position: seed_position and backstop takeovers ignore resting orders, whose
        # fills can then carry a live position past it (and the fund has no bound at all). The
        # bound that matters is that every notional fits int64, which the engine's 128-bit
        # arithmetic (and the ADL comparison's proof) relies on.
        bound = INT64_MAX // (max_price * k)
        position = _int(f"{field}.position", row[2], -bound, bound)
        cost = _int(f"{field}.cost", row[3], abs(position) * k, INT64_MAX if position else 0)
        reserve = _int(f"{field}.reserve", row[4], 0, DEPOSIT_BOUND)
        exempt, isolated = _bool(f"{field}.exempt", row[5]), _bool(f"{field}.isolated", row[6])
        if reserve and not isolated:
            raise _fail(f"{field}.reserve", "must be 0 for a cross-margin account", reserve)
        if owner == INSURANCE_FUND and (not exempt or isolated):
            raise _fail(f"{field}", "(the insurance fund) must be exempt and not isolated", row)
        owners[owner] = position
        net += position
        money += collateral + reserve + (cost if position < 0 else -cost)
    if INSURANCE_FUND not in owners:
        raise _fail("accounts", "must hold the insurance fund (owner -1)", sorted(owners))
    if net != 0:
        raise _fail("accounts", "positions must sum to 0", net)

    fees = _int("fees_collected", state["fees_collected"], 0)
    deposits = _int("total_deposits", state["total_deposits"], 0, DEPOSIT_BOUND)
    # Money is conserved: the sum of equities at any mark (the mark cancels, positions summing
    # to 0) plus the fees taken out equals what was deposited.
    if money + fees != deposits:
        raise _fail("accounts", f"must conserve money: collateral + reserve + unrealised + fees "
                    f"= {money + fees} != total_deposits", deposits)

    round_ = _int("round", state["round"], 0)
    queue, seen = [], set()
    for i, row in enumerate(_rows("queue", state["queue"], 2 if version == 1 else 3)):
        owner = _int(f"queue[{i}].owner", row[0], INSURANCE_FUND)
        if owner not in owners or owner in seen:
            raise _fail(f"queue[{i}].owner", "must be an account queued once", owner)
        seen.add(owner)
        cooldown_end = -1 if version == 1 else _int(f"queue[{i}].cooldown_end", row[2], -1)
        queue.append((owner, _int(f"queue[{i}].generation", row[1], 0, round_), cooldown_end))

    history = _rows("fund_history", state["fund_history"], 2)
    for i, (r, balance) in enumerate(history):
        _int(f"fund_history[{i}].round", r, i, i)
        _int(f"fund_history[{i}].balance", balance)
    _int("rounds_run", state["rounds_run"], len(history), len(history))
    _int("next_forced_id", state["next_forced_id"], hi=-1)
    for name in ("index_price", "mark"):
        if state[name] is not None:
            _int(name, state[name], 1, max_price)
    basis = _int("funding_basis_ppm", state.get("funding_basis_ppm", 0), -FUNDING_BASIS_BOUND,
                 FUNDING_BASIS_BOUND)
    if state["index_price"] is not None:
        try:
            fair_mark_fits(engine.mark_rule, state["index_price"], basis, max_price)
        except ValueError as exc:
            raise _fail("funding_basis_ppm", str(exc), basis) from None

    for i, row in enumerate(_rows("records", state["records"], len(RECORD_FIELDS))):
        values = dict(zip(RECORD_FIELDS, row, strict=True))
        for name, value in values.items():
            _int(f"records[{i}].{name}", value)
        _int(f"records[{i}].filled", values["filled"], 0, min(values["qty"], INT64_MAX // k))
        _int(f"records[{i}].side", values["side"], -1, 1)
        if values["side"] == 0:
            raise _fail(f"records[{i}].side", "must be Side.BUY or Side.SELL", 0)
        if values["kind"] not in set(ForcedKind):
            raise _fail(f"records[{i}].kind", "must be a ForcedKind", values["kind"])

    trades = state["trades"]
    if getattr(trades, "dtype", None) != EVENT_DTYPE or trades.ndim != 1:
        raise _fail("trades", "must be a one-dimensional EVENT_DTYPE array", type(trades))

    book = state["book"]
    if type(book) is not book_type:
        raise _fail("book", f"must be a {book_type.__module__}.{book_type.__name__}",
                    type(book).__name__)
    for name in ("tick_size", "lot_size", "stp", "amend_rule"):
        if getattr(book, name) != getattr(engine.book, name):
            raise _fail(f"book.{name}", f"must match the engine's {getattr(engine.book, name)}",
                        getattr(book, name))
    if book.last_price is not None:
        _int("book.last_price", int(book.last_price), 1, max_price)
    open_qty = {}
    for what, rows in (("l3", book.l3()), ("stops", book.stops())):
        for r in rows:
            order, owner = int(r["order_id"]), int(r["owner"])
            field = f"book.{what}() order {order}"
            if order < 0:
                raise _fail(f"{field}", "must have an id >= 0 (forced orders never rest)", order)
            if owner not in owners or owner == INSURANCE_FUND:
                raise _fail(f"{field}.owner", "must be an account other than the fund", owner)
            for name in ("price", "stop_price"):
                if name in r.dtype.names and (what == "l3" or int(r[name]) != 0):
                    _int(f"{field}.{name}", int(r[name]), 1, max_price)
            key = (owner, int(r["side"]))
            open_qty[key] = open_qty.get(key, 0) + int(r["qty"])
    # The exposure check admits at most max_position + |position| <= 2 max_position lots per
    # side when an order is sent, and open quantity only shrinks until the next check.
    for (owner, side), qty in open_qty.items():
        if qty > 2 * max_position:
            raise _fail(f"book orders of owner {owner} on side {Side(side).name}",
                        f"must total at most 2 * max_position = {2 * max_position} lots", qty)
    out = dict(state)
    out["queue"] = queue
    out["open"] = open_qty
    out["funding_basis_ppm"] = basis
    return out

