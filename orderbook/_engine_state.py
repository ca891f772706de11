"""Engine saved state: one place for its checks, used by both engines.

``check_state`` validates a pickled engine state before either engine rebuilds itself from it: a
pickle is untrusted input, and the compiled engine keeps it in C structs where a wrong value would
be undefined behaviour instead of an exception (docs/liquidation.md, "Copies and pickles"). The
constructor's arguments are checked by ``_engine_args``.
"""

from __future__ import annotations

from decimal import Decimal

from ._engine_args import RATES, fair_mark_fits
from .events import (
    EVENT_DTYPE,
    FUNDING_BASIS_BOUND,
    FUNDING_RATE_SCALE,
    INSURANCE_FUND,
    INT64_MAX,
    Asset,
    ForcedKind,
    FundingSettlement,
    Instrument,
    Side,
)
from .margin import DEPOSIT_BOUND, inverse_unit_value, unit_value

#: 5: the engine's clock: ``time`` (ms, Engine.time), queue rows carry the cooldown in ms,
#: (owner, generation, cooldown_end, cooldown_until), and ``funding_history`` holds a
#: FundingSettlement row per funding payment; a version 4 (or older) state loads at time 0 with
#: no cooldown in ms running and no funding paid.
#: 4: collateral assets (issue #13): account rows end with a holdings tuple ((asset, units),
#: ...), and ``asset_deposits`` and ``conversions`` per asset; a version 3 state loads with
#: none. 3: several instruments (issue #13): a list of books, account rows with a positions tuple,
#: records naming their instrument, a trade log and index/mark/basis per instrument; 2: queue
#: rows carry FRACTION's cooldown, (owner, generation, cooldown_end). Versions 1 and 2 (one
#: instrument) load as the one-instrument case of 3, a version 1 state with no cooldown running.
STATE_VERSION = 5
#: Fields of one liquidation record in a saved state: FORCED_DTYPE's integers in this order
#: (avg_price and slippage are derived from them); a version 1 or 2 state's rows lack the last.
RECORD_FIELDS = ("round", "generation", "owner", "counterparty", "qty", "filled", "notional",
                 "mark_before", "mark_after", "fee", "fund_cover", "socialized", "bad_debt",
                 "side", "kind", "instrument")
#: The name of the one instrument of an Engine built without ``instruments``.
DEFAULT_INSTRUMENT = "main"


def constructor_args(engine) -> tuple[tuple, dict]:
    """Arguments that rebuild an engine's settings (its insurance fund starts empty)."""
    book = engine.book
    specs = engine.instruments
    several = len(specs) > 1 or specs[0].name != DEFAULT_INSTRUMENT or bool(specs[0].spot)
    args = ("1", "1") if several else (str(book.tick_size), str(book.lot_size))
    args += (str(engine.quote_unit),)
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
                  cooldown_ms=int(engine.cooldown_ms),
                  increment=int(engine.increment),
                  close_order=int(engine.close_order))
    if engine.settlement:
        kwargs.update(settlement=int(engine.settlement),
                      contract_value=str(engine.instruments[0].contract_value))
    if engine.assets:
        kwargs["assets"] = [(spec.name, str(spec.unit), spec.instrument, int(spec.haircut_ppm),
                             int(spec.conversion_discount_ppm)) for spec in engine.assets]
    spots = any(spec.spot for spec in specs)
    if several:
        kwargs["instruments"] = [
            (spec.name, str(spec.tick_size), str(spec.lot_size),
             [tuple(row) for row in spec.tiers.rows()], int(spec.max_price),
             int(spec.max_position), int(spec.mark_rule))
            + ((str(spec.contract_value) if spec.contract_value is not None else None,)
               if engine.settlement or spots else ())
            + ((bool(spec.spot),) if spots else ()) for spec in specs]
    return args, kwargs


def saved_kwargs(kwargs):
    """Saved constructor keywords as the constructor takes them today: a pickle made before
    ``limit_rule`` was named so carries ``limit``, its deprecated older name (loading such a
    pickle does not warn); one made before ``adl_ranking`` (``trigger``, ``mm_basis``) existed
    lacks it and loads with the constructor's default (``AdlRanking.BITMEX``, ``Trigger.BELOW``,
    ``MarginBasis.MARK``: the behaviour it was saved with); one made before
    ``check_initial_margin`` existed lacks it and loads with the check on, the constructor's
    default, although the engine that made it did not check (CHANGELOG); one made before
    ``fraction_above`` (``takeover_below_ppm``, ``cooldown_rounds``, ``increment``,
    ``cooldown_ms``) existed lacks it and loads with 0 (every position takes the fraction; no
    take-over below a share of MM; no cooldown; no INCREMENTAL sizing then, so no step size: as
    it did). Anything else
    goes to the constructor as it is, to be checked there; saved ``instruments`` and ``assets``
    rows become ``Instrument``s and ``Asset``s (ValueError for a row that is not one)."""
    if type(kwargs) is dict and "limit" in kwargs and "limit_rule" not in kwargs:
        kwargs = dict(kwargs)
        kwargs["limit_rule"] = kwargs.pop("limit")

    def instrument(name, tick, lot, tiers, max_price, max_position, mark_rule,
                   contract_value=None, spot=False):
        return Instrument(name, tick, lot, tiers=tiers, max_price=max_price,
                          max_position=max_position, mark_rule=mark_rule,
                          contract_value=contract_value, spot=spot)

    # an inverse venue's instrument rows end with their contract value; a venue with a spot
    # book's, with their contract value (None when linear) and whether each is spot
    for key, widths, build in (("instruments", (7, 8, 9), instrument),
                               ("assets", (5,), Asset)):
        if type(kwargs) is dict and type(kwargs.get(key)) is list:
            kwargs = dict(kwargs)
            for i, row in enumerate(kwargs[key]):
                if type(row) is not tuple or len(row) not in widths:
                    raise _fail(f"{key}[{i}]", f"must be a tuple of "
                                f"{' or '.join(map(str, widths))} values", row)
            kwargs[key] = [build(*row) for row in kwargs[key]]
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


def _upgrade(state: dict) -> dict:
    """A version 1 or 2 state (one instrument) in the form of version 3."""
    out = dict(state)
    out["books"] = [out.pop("book")]
    accounts = _rows("accounts", state["accounts"], 7)
    out["accounts"] = []
    for i, (owner, collateral, position, cost, reserve, exempt, isolated) in enumerate(accounts):
        if position == 0:
            _int(f"accounts[{i}].cost", cost, 0, 0)  # a flat position has no cost
        out["accounts"].append((owner, collateral, reserve, exempt, isolated,
                                ((0, position, cost),) if position != 0 else ()))
    out["records"] = [row + (0,) for row in _rows("records", state["records"],
                                                  len(RECORD_FIELDS) - 1)]
    out["trades"] = [state["trades"]]
    for name in ("index_price", "mark"):
        out[name] = [state[name]]
    out["funding_basis_ppm"] = [state.get("funding_basis_ppm", 0)]
    return out


def _upgrade_3(state: dict) -> dict:
    """A version 3 state (no collateral assets) in the form of version 4."""
    out = dict(state)
    out["accounts"] = [row + ((),) for row in _rows("accounts", state["accounts"], 6)]
    out["asset_deposits"], out["conversions"] = [], []
    return out


def _upgrade_4(state: dict, version: int) -> dict:
    """A version 1-4 state (no clock) in the form of version 5: time 0, and no cooldown in ms
    running (a version 1 state's queue rows of two carry no cooldown in rounds either)."""
    out = dict(state)
    width = 2 if version == 1 else 3
    out["queue"] = [row + (-1,) * (4 - width) for row in _rows("queue", state["queue"], width)]
    out["time"] = 0
    out["funding_history"] = []
    return out


def check_state(engine, state, book_type) -> dict:
    """Validate a saved state against a freshly built ``engine`` with the saved settings.

    Returns the state in the form of STATE_VERSION (an older one upgraded), with derived
    values added: ``open`` maps (instrument, owner, side) to the lots of that owner's live
    orders on that side of that instrument's book (resting and armed stops), what the exposure
    check counts. Raises ValueError naming the field and the value on anything a live engine
    could not be in.
    """
    if type(state) is not dict:
        raise _fail("state", "must be a dict", type(state).__name__)
    version = state.get("version")
    if version not in (1, 2, 3, 4, STATE_VERSION) or type(version) is not int:
        raise _fail("version", f"must be 1, 2, 3, 4 or {STATE_VERSION}", version)
    if version < 3:
        expected = {"version", "book", "accounts", "queue", "records", "trades", "fund_history",
                    "fees_collected", "total_deposits", "round", "rounds_run", "next_forced_id",
                    "index_price", "mark"}
        # funding_basis_ppm came with MarkRule.FAIR; a state saved before it loads with 0.
        if set(state) - {"funding_basis_ppm"} != expected:
            raise _fail("state keys", f"must be {sorted(expected)} (and funding_basis_ppm)",
                        sorted(state, key=str))
        if len(engine.instruments) != 1:
            raise _fail("version", f"{version} holds one instrument, the engine "
                        f"{len(engine.instruments)}", version)
        state = _upgrade(state)
    expected = {"version", "books", "accounts", "queue", "records", "trades", "fund_history",
                "fees_collected", "total_deposits", "round", "rounds_run", "next_forced_id",
                "index_price", "mark", "funding_basis_ppm"}
    if version < 4:
        if set(state) != expected:
            raise _fail("state keys", f"must be {sorted(expected)}", sorted(state, key=str))
        if engine.assets:
            raise _fail("version", f"{version} holds no collateral assets, the engine "
                        f"{len(engine.assets)}", version)
        state = _upgrade_3(state)
    expected |= {"asset_deposits", "conversions"}
    if version < 5:
        if set(state) != expected:
            raise _fail("state keys", f"must be {sorted(expected)}", sorted(state, key=str))
        state = _upgrade_4(state, version)
    expected |= {"time", "funding_history"}
    if set(state) != expected:
        raise _fail("state keys", f"must be {sorted(expected)}", sorted(state, key=str))
    time = _int("time", state["time"], 0)
    specs = engine.instruments
    count = len(specs)
    for name in ("books", "trades", "index_price", "mark", "funding_basis_ppm"):
        if type(state[name]) is not list or len(state[name]) != count:
            raise _fail(name, f"must be a list of {count} (one per instrument)",
                        type(state[name]).__name__)
    ks = [(inverse_unit_value(Decimal(spec.tick_size), Decimal(spec.lot_size),
                              engine.quote_unit, spec.contract_value) if engine.settlement
           else unit_value(Decimal(spec.tick_size), Decimal(spec.lot_size),
                           engine.quote_unit))[1] for spec in specs]

    assets = engine.assets
    for name in ("asset_deposits", "conversions"):
        if type(state[name]) is not list or len(state[name]) != len(assets):
            raise _fail(name, f"must be a list of {len(assets)} (one per collateral asset)",
                        type(state[name]).__name__)
    asset_parts = engine._asset_parts()
    units_held = [0] * len(assets)
    converted = 0
    for n, part in enumerate(asset_parts):
        _int(f"asset_deposits[{n}]", state["asset_deposits"][n], 0, part["max_total"])
        row = state["conversions"][n]
        if type(row) is not tuple or len(row) != 2:
            raise _fail(f"conversions[{n}]", "must be a tuple of (units, quote units)", row)
        units_held[n] += _int(f"conversions[{n}].units", row[0], 0, part["max_total"])
        converted += _int(f"conversions[{n}].paid", row[1], 0, DEPOSIT_BOUND)

    # accounts: (owner, collateral, reserve, exempt, isolated, positions, holdings)
    owners = {}
    net = [0] * count
    money = 0
    for i, row in enumerate(_rows("accounts", state["accounts"], 7)):
        field = f"accounts[{i}]"
        owner = _int(f"{field}.owner", row[0], INSURANCE_FUND)
        if owner in owners:
            raise _fail(f"{field}.owner", "must be unique", owner)
        collateral = _int(f"{field}.collateral", row[1])
        reserve = _int(f"{field}.reserve", row[2], 0, DEPOSIT_BOUND)
        exempt, isolated = _bool(f"{field}.exempt", row[3]), _bool(f"{field}.isolated", row[4])
        if reserve and not isolated:
            raise _fail(f"{field}.reserve", "must be 0 for a cross-margin account", reserve)
        if owner == INSURANCE_FUND and (not exempt or isolated):
            raise _fail(f"{field}", "(the insurance fund) must be exempt and not isolated", row)

        positions = row[5]
        if type(positions) is not tuple:
            raise _fail(f"{field}.positions", "must be a tuple", type(positions).__name__)
        last = -1
        held = {}
        for j, entry in enumerate(positions):
            where = f"{field}.positions[{j}]"
            if type(entry) is not tuple or len(entry) != 3:
                raise _fail(where, "must be a tuple of (instrument, position, cost)", entry)
            instrument = _int(f"{where}.instrument", entry[0], 0, count - 1)
            if instrument <= last:
                raise _fail(f"{where}.instrument", "must ascend", instrument)
            last = instrument
            k, max_price = ks[instrument], int(specs[instrument].max_price)
            # Not max_position: seed_position and backstop takeovers ignore resting orders,
            # whose fills can then carry a live position past it (and the fund has no bound at
            # all). The bound that matters is that every notional fits int64, which the
            # engine's 128-bit arithmetic (and the ADL comparison's proof) relies on.
            inverse = bool(engine.settlement)
            bound = INT64_MAX // (k if inverse else max_price * k)
            position = _int(f"{where}.position", entry[1], -bound, bound)
            if position == 0:
                raise _fail(f"{where}.position", "must not be 0 (flat positions are left out)",
                            0)
            # (an inverse fill is worth at least a coin unit, max_price <= k)
            cost = _int(f"{where}.cost", entry[2], 1 if inverse else abs(position) * k,
                        INT64_MAX)
            held[instrument] = position
            net[instrument] += position
            # an inverse long gains as its value falls: its cost counts with the other sign
            money += (cost if position < 0 else -cost) * (-1 if inverse else 1)
        if isolated and len(held) > 1:
            raise _fail(f"{field}.positions", "must hold one instrument at most (an isolated "
                        "account's margin backs one position)", positions)
        owners[owner] = held
        money += collateral + reserve
        holdings = row[6]
        if type(holdings) is not tuple:
            raise _fail(f"{field}.holdings", "must be a tuple", type(holdings).__name__)
        last = -1
        for j, entry in enumerate(holdings):
            where = f"{field}.holdings[{j}]"
            if type(entry) is not tuple or len(entry) != 2:
                raise _fail(where, "must be a tuple of (asset, units)", entry)
            asset = _int(f"{where}.asset", entry[0], 0, len(assets) - 1)
            if asset <= last:
                raise _fail(f"{where}.asset", "must ascend", asset)
            last = asset
            units_held[asset] += _int(f"{where}.units", entry[1], 1,
                                      asset_parts[asset]["max_total"])
            if isolated or owner == INSURANCE_FUND:
                raise _fail(f"{where}", "must be held by a cross account, not the fund", entry)
    if INSURANCE_FUND not in owners:
        raise _fail("accounts", "must hold the insurance fund (owner -1)", sorted(owners))
    for instrument, total in enumerate(net):
        if total != 0:
            raise _fail("accounts", f"positions in instrument {instrument} must sum to 0", total)

    fees = _int("fees_collected", state["fees_collected"], 0)
    deposits = _int("total_deposits", state["total_deposits"], 0, DEPOSIT_BOUND)
    # Money is conserved: the sum of equities at any marks (each mark cancels, positions
    # summing to 0 per instrument) plus the fees taken out equals what was deposited.
    if money + fees != deposits + converted:
        raise _fail("accounts", f"must conserve money: collateral + reserve + unrealised + fees "
                    f"= {money + fees} != total_deposits + conversions' quote "
                    f"{deposits + converted}", deposits)
    for n, total in enumerate(units_held):
        if total != state["asset_deposits"][n]:
            raise _fail("accounts", f"must conserve asset {assets[n].name!r}: holdings + units "
                        f"converted = {total} != asset_deposits[{n}]",
                        state["asset_deposits"][n])

    round_ = _int("round", state["round"], 0)
    queue, seen = [], set()
    for i, row in enumerate(_rows("queue", state["queue"], 4)):
        owner = _int(f"queue[{i}].owner", row[0], INSURANCE_FUND)
        if owner not in owners or owner in seen:
            raise _fail(f"queue[{i}].owner", "must be an account queued once", owner)
        seen.add(owner)
        queue.append((owner, _int(f"queue[{i}].generation", row[1], 0, round_),
                      _int(f"queue[{i}].cooldown_end", row[2], -1),
                      _int(f"queue[{i}].cooldown_until", row[3], -1)))

    history = _rows("fund_history", state["fund_history"], 2)
    for i, (r, balance) in enumerate(history):
        _int(f"fund_history[{i}].round", r, i, i)
        _int(f"fund_history[{i}].balance", balance)
    _int("rounds_run", state["rounds_run"], len(history), len(history))
    _int("next_forced_id", state["next_forced_id"], hi=-1)
    bases = []
    for instrument, spec in enumerate(specs):
        at = "" if count == 1 else f"[{instrument}]"
        max_price = int(spec.max_price)
        for name in ("index_price", "mark"):
            if state[name][instrument] is not None:
                _int(f"{name}{at}", state[name][instrument], 1, max_price)
        basis = _int(f"funding_basis_ppm{at}", state["funding_basis_ppm"][instrument],
                     -FUNDING_BASIS_BOUND, FUNDING_BASIS_BOUND)
        bases.append(basis)
        if state["index_price"][instrument] is not None:
            try:
                fair_mark_fits(spec.mark_rule, state["index_price"][instrument], basis,
                               max_price)
            except ValueError as exc:
                raise _fail(f"funding_basis_ppm{at}", str(exc), basis) from None

    # funding: FundingSettlement rows, in time order up to the clock, paid = received + remainder
    last = 0
    for i, row in enumerate(_rows("funding_history", state["funding_history"],
                                  len(FundingSettlement._fields))):
        values = dict(zip(FundingSettlement._fields, row, strict=True))
        at = f"funding_history[{i}]"
        last = _int(f"{at}.time", values["time"], last, time)
        instrument = _int(f"{at}.instrument", values["instrument"], 0, count - 1)
        _int(f"{at}.rate", values["rate"], -FUNDING_RATE_SCALE, FUNDING_RATE_SCALE)
        _int(f"{at}.mark", values["mark"], 1, int(specs[instrument].max_price))
        paid = _int(f"{at}.paid", values["paid"], 0, DEPOSIT_BOUND)
        received = _int(f"{at}.received", values["received"], 0, paid)
        _int(f"{at}.remainder", values["remainder"], paid - received, paid - received)
        for name in ("payers", "receivers"):
            _int(f"{at}.{name}", values[name], 0)

    for i, row in enumerate(_rows("records", state["records"], len(RECORD_FIELDS))):
        values = dict(zip(RECORD_FIELDS, row, strict=True))
        for name, value in values.items():
            _int(f"records[{i}].{name}", value)
        instrument = _int(f"records[{i}].instrument", values["instrument"], 0, count - 1)
        if values["kind"] == ForcedKind.CONVERSION and not specs[instrument].spot:
            # (to the venue, off the books; through a spot book it fills lots like an order)
            _int(f"records[{i}].filled", values["filled"], 0, 0)
        _int(f"records[{i}].filled", values["filled"], 0,
             min(values["qty"], INT64_MAX // ks[instrument]))
        _int(f"records[{i}].side", values["side"], -1, 1)
        if values["side"] == 0:
            raise _fail(f"records[{i}].side", "must be Side.BUY or Side.SELL", 0)
        if values["kind"] not in set(ForcedKind):
            raise _fail(f"records[{i}].kind", "must be a ForcedKind", values["kind"])

    for trades in state["trades"]:
        if getattr(trades, "dtype", None) != EVENT_DTYPE or trades.ndim != 1:
            raise _fail("trades", "must hold one-dimensional EVENT_DTYPE arrays", type(trades))

    open_qty = {}
    for instrument, (book, spec) in enumerate(zip(state["books"], specs, strict=True)):
        at = "book" if count == 1 else f"books[{instrument}]"
        if type(book) is not book_type:
            raise _fail(at, f"must be a {book_type.__module__}.{book_type.__name__}",
                        type(book).__name__)
        reference = engine.books[instrument]
        for name in ("tick_size", "lot_size", "stp", "amend_rule"):
            if getattr(book, name) != getattr(reference, name):
                raise _fail(f"{at}.{name}", f"must match the engine's "
                            f"{getattr(reference, name)}", getattr(book, name))
        max_price, max_position = int(spec.max_price), int(spec.max_position)
        if book.last_price is not None:
            _int(f"{at}.last_price", int(book.last_price), 1, max_price)
        for what, rows in (("l3", book.l3()), ("stops", book.stops())):
            for r in rows:
                order, owner = int(r["order_id"]), int(r["owner"])
                field = f"{at}.{what}() order {order}"
                if order < 0:
                    raise _fail(f"{field}", "must have an id >= 0 (forced orders never rest)",
                                order)
                if owner not in owners or owner == INSURANCE_FUND:
                    raise _fail(f"{field}.owner", "must be an account other than the fund",
                                owner)
                for name in ("price", "stop_price"):
                    if name in r.dtype.names and (what == "l3" or int(r[name]) != 0):
                        _int(f"{field}.{name}", int(r[name]), 1, max_price)
                key = (instrument, owner, int(r["side"]))
                open_qty[key] = open_qty.get(key, 0) + int(r["qty"])
        # The exposure check admits at most max_position + |position| <= 2 max_position lots
        # per side when an order is sent, and open quantity only shrinks until the next check.
        for (where, owner, side), qty in open_qty.items():
            if where == instrument and qty > 2 * max_position:
                raise _fail(f"{at} orders of owner {owner} on side {Side(side).name}",
                            f"must total at most 2 * max_position = {2 * max_position} lots",
                            qty)
    out = dict(state)
    out["version"] = STATE_VERSION
    out["queue"] = queue
    out["open"] = open_qty
    out["funding_basis_ppm"] = bases
    return out
