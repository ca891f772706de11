"""Engine arguments: the one check of each value a caller gives an engine, and its message.

The compiled ``orderbook.Engine`` and the reference ``orderbook.reference_engine.Engine`` both call
these functions with the plain values they hold (owner ids, positions, totals as Python ints), so
both accept the same values and refuse the same ones with the same exception and message. Bounds
are compared in Python integers, so nothing wraps before it is refused. On its per-call path the
compiled engine tests the common case in C and calls in here only when that test fails, to raise
(the habit of ``_validation``).

The constructor's keywords are documented once, with units, in the ``Parameters`` section of
``orderbook.Engine``'s docstring; :func:`parameters_section` hands that text to the reference
engine's docstring.
"""

from __future__ import annotations

import inspect
import re
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np

from . import _validation as check
from .errors import OrderError
from .events import (
    FUNDING_BASIS_BOUND,
    FUNDING_RATE_SCALE,
    INSURANCE_FUND,
    INT64_MAX,
    INT64_MIN,
    AdlRanking,
    AmendRule,
    Asset,
    CloseOrder,
    Deficit,
    Instrument,
    LimitRule,
    MarginBasis,
    MarkRule,
    Reason,
    SelfTradePrevention,
    Settlement,
    Side,
    Sizing,
    Trigger,
    fair_price,
)
from .margin import (
    DEPOSIT_BOUND,
    MONEY_BOUND,
    PPM,
    MarginTiers,
    inverse_unit_value,
    rate_ppm,
    unit_value,
)

#: The constructor's rates, ppm in [0, 10**6].
RATES = ("taker_fee_ppm", "maker_fee_ppm", "liquidation_fee_ppm", "fraction_ppm", "band_ppm",
         "backstop_discount_ppm", "takeover_below_ppm")
#: The constructor's liquidation rules and their enums.
RULES = (("mark_rule", MarkRule), ("sizing", Sizing), ("limit_rule", LimitRule),
         ("deficit", Deficit), ("adl_ranking", AdlRanking),
         # the margin conventions venues differ on (issue #12)
         ("trigger", Trigger), ("mm_basis", MarginBasis))


# ------------------------------------------------------------------------------- settings


def enum_arg(name: str, enum, value):
    """``value`` as a member of ``enum``; TypeError/ValueError naming ``name`` otherwise."""
    number = check.as_int64(name, value)
    try:
        return enum(number)
    except ValueError:
        choices = ", ".join(f"{m.name} ({int(m)})" for m in enum)
        raise ValueError(f"{name} must be one of {choices}, got {number}") from None


def book_rules(stp, amend_rule) -> tuple:
    """The book's self-trade prevention mode and amend rule, checked naming the argument."""
    return (enum_arg("stp", SelfTradePrevention, stp),
            enum_arg("amend_rule", AmendRule, amend_rule))


def limit_rule_arg(limit_rule, limit, stacklevel: int):
    """``limit_rule``, or the value given under its deprecated older name ``limit``.

    None for both means ``LimitRule.MARKET``. ``limit`` warns (DeprecationWarning, attributed
    ``stacklevel`` frames up: the caller of the constructor) and is checked under its own name;
    giving both is a TypeError, as for any argument given twice.
    """
    if limit is None:
        return LimitRule.MARKET if limit_rule is None else limit_rule
    if limit_rule is not None:
        raise TypeError("Engine() got both limit_rule and limit, its deprecated older name; "
                        "give limit_rule only")
    warnings.warn("Engine(limit=...) is deprecated: the keyword is limit_rule (Engine.limit is "
                  "the limit-order method)", DeprecationWarning, stacklevel=stacklevel + 1)
    return enum_arg("limit", LimitRule, limit)


def flag(name: str, value) -> bool:
    """A switch: True or False (a numpy bool too); TypeError naming ``name`` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


#: max_price when none is given (an inverse venue: at most its k).
DEFAULT_MAX_PRICE = 2**32 - 1


def settings(tick_size, lot_size, quote_unit, *, tiers, insurance_fund, backstop, round_cap,
             max_price, max_position, check_initial_margin, fraction_above, cooldown_rounds,
             increment, close_order=CloseOrder.ALL, settlement=Settlement.LINEAR,
             contract_value=None, cooldown_ms=0, **rest) -> dict:
    """The constructor arguments both engines share, checked, as plain Python values.

    ``tick_size`` and ``lot_size`` are the book's (already parsed); ``rest`` holds the rates in
    ppm (``RATES``) and the rules (``RULES``). Bounds are taken in Python integers, so nothing
    wraps: ``max_price * max_position * k <= 2**61`` keeps every notional far inside int64.
    """
    out = {"check_initial_margin": flag("check_initial_margin", check_initial_margin)}
    out["settlement"] = inverse = enum_arg("settlement", Settlement, settlement)
    if inverse:
        if contract_value is None:
            raise ValueError("contract_value (quote currency per contract, e.g. '100') is "
                             "required for settlement INVERSE")
        out["quote_unit"], k = inverse_unit_value(tick_size, lot_size, quote_unit,
                                                  contract_value)
        out["contract_value"] = check.unit_size("contract_value", contract_value)
    else:
        if contract_value is not None:
            raise ValueError(f"contract_value is the size of an inverse contract: it needs "
                             f"settlement INVERSE, got contract_value {contract_value!r} on a "
                             f"linear venue")
        out["quote_unit"], k = unit_value(tick_size, lot_size, quote_unit)
        out["contract_value"] = None
    out["k"] = k
    out["tiers"] = MarginTiers(tiers)
    for name in RATES:
        out[name] = rate_ppm(name, rest[name])
    for name, enum in RULES:
        out[name] = enum_arg(name, enum, rest[name])
    out["round_cap"] = None if round_cap is None else check.as_positive("round_cap", round_cap)
    if max_price is None:
        max_price = min(DEFAULT_MAX_PRICE, k) if inverse else DEFAULT_MAX_PRICE
    max_price = check.as_positive("max_price", max_price)
    if inverse:
        # an inverse value is largest at the lowest price, one tick: V(1, q) = k q; and a lot
        # at max_price is worth at least one coin unit, so every fill and cost is >= 1
        if max_price > k:
            raise ValueError(f"max_price {max_price} ticks exceeds k = {k}: a lot there would "
                             f"be worth less than one coin unit; give max_price <= k or a "
                             f"smaller quote_unit")
        if k > MONEY_BOUND:
            raise ValueError(f"k = {k} coin units (a lot's value at one tick) exceeds 2**61: "
                             f"choose a larger quote_unit")
        if max_position is None:
            max_position = MONEY_BOUND // k
        max_position = check.as_positive("max_position", max_position)
        if max_position * k > MONEY_BOUND:
            raise ValueError(f"max_position * k = {max_position * k} exceeds 2**61 (the value "
                             f"of max_position lots at one tick, coin units)")
    elif max_price * k > MONEY_BOUND:
        raise ValueError(f"max_price * k = {max_price} * {k} = {max_price * k} exceeds 2**61 "
                         f"quote units (k = quote units per tick x lot)")
    else:
        if max_position is None:
            max_position = MONEY_BOUND // (max_price * k)
        max_position = check.as_positive("max_position", max_position)
        if max_price * max_position * k > MONEY_BOUND:
            raise ValueError(f"max_price * max_position * k = {max_price * max_position * k} "
                             f"exceeds 2**61")
    out["max_price"], out["max_position"] = max_price, max_position
    fund = check.as_int64("insurance_fund", insurance_fund)
    if not 0 <= fund <= DEPOSIT_BOUND:
        raise ValueError(f"insurance_fund must be in [0, 2**62] quote units, got {fund}")
    out["insurance_fund"] = fund
    above = check.as_int64("fraction_above", fraction_above)
    if not 0 <= above <= DEPOSIT_BOUND:
        raise ValueError(f"fraction_above must be in [0, 2**62] quote units, got {above}")
    out["fraction_above"] = above
    cooldown = check.as_int64("cooldown_rounds", cooldown_rounds)
    if cooldown < 0:
        raise ValueError(f"cooldown_rounds must be >= 0 rounds, got {cooldown}")
    out["cooldown_rounds"] = cooldown
    cooldown = check.as_int64("cooldown_ms", cooldown_ms)
    if cooldown < 0:
        raise ValueError(f"cooldown_ms must be >= 0 ms, got {cooldown}")
    out["cooldown_ms"] = cooldown
    increment = check.as_int64("increment", increment)
    if not 0 <= increment <= DEPOSIT_BOUND:
        raise ValueError(f"increment must be in [0, 2**62] quote units, got {increment}")
    if increment < 1 and out["sizing"] == Sizing.INCREMENTAL:
        raise ValueError(f"increment must be >= 1 quote units under Sizing.INCREMENTAL, "
                         f"got {increment}")
    out["increment"] = increment
    out["close_order"] = enum_arg("close_order", CloseOrder, close_order)
    if out["close_order"] == CloseOrder.PRO_RATA and out["sizing"] not in (Sizing.FULL,
                                                                          Sizing.FRACTION):
        raise ValueError(f"close_order PRO_RATA cuts every position by one fraction: it needs "
                         f"sizing FULL or FRACTION, got {out['sizing'].name}")
    if backstop is not None:
        backstop = check.as_int64("backstop", backstop)
        if backstop < 0:
            raise ValueError(f"backstop must be an owner id >= 0 (negative ids are the "
                             f"engine's), got {backstop}")
    out["backstop"] = backstop
    return out


def funding_basis_arg(basis_ppm) -> int:
    """``set_funding_basis``'s value: an int in [-FUNDING_BASIS_BOUND, FUNDING_BASIS_BOUND] ppm;
    TypeError/ValueError naming ``basis_ppm`` otherwise."""
    basis = check.as_int64("basis_ppm", basis_ppm)
    if not -FUNDING_BASIS_BOUND <= basis <= FUNDING_BASIS_BOUND:
        raise ValueError(f"basis_ppm must be in [-{FUNDING_BASIS_BOUND:,}, "
                         f"{FUNDING_BASIS_BOUND:,}] ppm, got {basis}")
    return basis


def time_arg(time_ms, now: int) -> int:
    """``advance_to``'s time: an int64 of ms, not before the engine's time ``now`` (the clock
    never goes back); TypeError/ValueError naming ``time_ms`` otherwise."""
    value = check.as_int64("time_ms", time_ms)
    if value < now:
        raise ValueError(f"time_ms {value} is before the engine's time {now} ms: the clock "
                         f"never goes back")
    return value


def funding_rate_arg(rate) -> int:
    """``settle_funding``'s rate: an int in units of 10**-8 of a position's value (Binance's
    0.0100 % is 10_000), within +-FUNDING_RATE_SCALE (100 %); TypeError/ValueError naming
    ``rate`` otherwise."""
    value = check.as_int64("rate", rate)
    if not -FUNDING_RATE_SCALE <= value <= FUNDING_RATE_SCALE:
        raise ValueError(f"rate must be in [-{FUNDING_RATE_SCALE:,}, {FUNDING_RATE_SCALE:,}] "
                         f"(units of 10**-8: at most 100 % of a position's value), got {value}")
    return value


def spot_funding(name: str) -> ValueError:
    """The refusal of ``settle_funding`` on a spot book."""
    return ValueError(f"instrument {name!r} is a spot book: funding is for perpetuals "
                      f"(settle_funding refused)")


def no_funding_mark(name: str) -> ValueError:
    """The refusal of ``settle_funding`` on an instrument that has no mark yet."""
    return ValueError(f"instrument {name!r} has no mark yet: funding is paid on the value of "
                      f"positions at the mark (settle_funding refused)")


#: Funding payments of one settlement total at most this (quote units), so that every balance
#: and each receiver's share ``paid x value / weight`` stays inside the engines' integers.
FUNDING_PAID_BOUND = DEPOSIT_BOUND


def funding_too_large(rate: int, paid: int | None = None) -> ValueError:
    """The refusal of a settlement whose payments would total past FUNDING_PAID_BOUND (``paid``)
    or take a balance past int64 (``paid`` None)."""
    if paid is not None:
        return ValueError(f"funding at rate {rate} would move {paid} quote units, past 2**62")
    return ValueError(f"funding at rate {rate} would take a balance past int64")


def fair_mark_fits(mark_rule: int, index: int, basis_ppm: int, max_price: int) -> None:
    """Under ``MarkRule.FAIR``, ValueError when the fair price of ``index`` and ``basis_ppm``
    would pass ``max_price`` (ticks); nothing under the other rules."""
    if mark_rule == MarkRule.FAIR and fair_price(index, basis_ppm) > max_price:
        raise ValueError(f"the fair price of index {index} and funding basis {basis_ppm} ppm, "
                         f"{fair_price(index, basis_ppm)} ticks, exceeds max_price {max_price}")


def parameters_section() -> str:
    """The ``Parameters`` section of ``orderbook.Engine``'s docstring (numpydoc), dedented.

    The compiled class's docstring holds the one copy of this text: Cython keeps a class
    docstring as a C string fixed when the module is compiled (with ``embedsignature`` a class
    without one still gets a generated one), so the text cannot be built from Python there.
    """
    from .engine import Engine  # compiled; imported here because it imports this module

    doc = inspect.cleandoc(Engine.__doc__)
    start = doc.index("Parameters\n----------\n")
    after = re.search(r"\n\n[^\n]+\n-+\n", doc[start + 1:])  # the next section's header
    return doc[start:start + 1 + after.start() if after else len(doc)]


# ------------------------------------------------------------------------------- accounts


def no_account(name: str, owner: int) -> KeyError:
    """The error for an owner id (argument ``name``) that has no account."""
    return KeyError(f"{name} {owner} has no account")


def _deposit(amount: int, total_deposits: int) -> None:
    if total_deposits + amount > DEPOSIT_BOUND:
        raise ValueError(f"total deposits would reach {total_deposits + amount}, "
                         f"past 2**62 quote units")


def new_account(owner, collateral, isolated_margin, total_deposits: int,
                has_account) -> tuple[int, int, int]:
    """Check ``add_account``'s arguments; return (owner, collateral, margin) as ints.

    ``has_account(owner)`` says whether the id is taken; ``margin`` is the collateral that backs
    the position: all of it, or ``isolated_margin`` (the rest is the account's reserve).
    """
    owner = check.as_int64("owner", owner)
    if owner < 0:
        raise ValueError(f"owner must be >= 0 (negative ids are the engine's), got {owner}")
    if has_account(owner):
        raise ValueError(f"owner {owner} already has an account")
    collateral = check.as_int64("collateral", collateral)
    if collateral < 0:
        raise ValueError(f"collateral must be >= 0 quote units, got {collateral}")
    margin = collateral
    if isolated_margin is not None:
        margin = check.as_int64("isolated_margin", isolated_margin)
        if not 0 <= margin <= collateral:
            raise ValueError(f"isolated_margin must be in [0, collateral={collateral}], "
                             f"got {margin}")
    _deposit(collateral, total_deposits)
    return owner, collateral, margin


def deposit_amount(amount, total_deposits: int) -> int:
    """``deposit``'s amount: quote units >= 1 that keep total deposits within 2**62."""
    amount = check.as_positive("amount", amount)
    _deposit(amount, total_deposits)
    return amount


def margin_amount(owner: int, amount, isolated: bool, reserve: int) -> int:
    """``add_margin``'s amount: quote units >= 1 of an isolated account's ``reserve``."""
    amount = check.as_positive("amount", amount)
    if not isolated:
        raise ValueError(f"owner {owner} is a cross-margin account; add_margin is "
                         f"for isolated accounts")
    if amount > reserve:
        raise ValueError(f"amount {amount} exceeds owner {owner}'s reserve {reserve}")
    return amount


def seeded_position(long_owner: int, short_owner: int, long_position: int, short_position: int,
                    price, qty, max_price: int, max_position: int) -> tuple[int, int]:
    """Check ``seed_position`` between two accounts (owner ids, positions in lots); return
    (price ticks, qty lots) as ints."""
    if long_owner == short_owner:
        raise ValueError("seed_position needs two different accounts")
    if INSURANCE_FUND in (long_owner, short_owner):
        raise ValueError("the insurance fund cannot be seeded with a position")
    price = limit_price("price", price, max_price)
    qty = check.as_positive("qty", qty)
    for owner, position, sign in ((long_owner, long_position, 1),
                                  (short_owner, short_position, -1)):
        if abs(position + sign * qty) > max_position:
            raise ValueError(f"qty {qty} would take owner {owner}'s position past "
                             f"max_position {max_position}")
    return price, qty


def int64_column(name: str, values, length: int | None = None) -> np.ndarray:
    """``values`` as a 1-D int64 array (a copy the caller may keep); TypeError for anything but
    integers (bools and floats included), ValueError for another ``length`` than the owners'
    or for values past int64, each naming ``name``."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got {array.ndim} dimensions")
    if not len(array):
        array = np.zeros(0, dtype=np.int64)
    elif array.dtype == object:
        if not all(type(v) is int for v in array.tolist()):
            raise TypeError(f"{name} must hold integers, got {array.dtype}")
        big = [(k, v) for k, v in enumerate(array.tolist()) if not INT64_MIN <= v <= INT64_MAX]
        if big:
            raise ValueError(f"{name}[{big[0][0]}] = {big[0][1]} does not fit in int64")
    elif array.dtype.kind == "u":
        if array.max() > INT64_MAX:
            k = int(np.argmax(array > INT64_MAX))
            raise ValueError(f"{name}[{k}] = {array[k]} does not fit in int64")
    elif array.dtype.kind != "i":
        raise TypeError(f"{name} must hold integers, got {array.dtype}")
    if length is not None and len(array) != length:
        raise ValueError(f"{name} has {len(array)} values, the owners {length}")
    return array.astype(np.int64)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def new_accounts(owners, collateral, exempt, total_deposits: int,
                 existing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check ``add_accounts``'s arrays as a whole; return (owners, collateral, exempt) as int64,
    int64 and bool arrays. ``existing``: the owner ids with an account already. Errors name
    the first bad entry (``owners[k] = v``)."""
    owners = int64_column("owners", owners)
    collateral = int64_column("collateral", collateral, len(owners))
    if isinstance(exempt, (bool, np.bool_)):
        flags = np.full(len(owners), bool(exempt))
    else:
        flags = np.asarray(exempt)
        if flags.dtype != np.bool_ or flags.ndim != 1:
            raise TypeError(f"exempt must be a bool or a 1-D bool array, got {flags.dtype}")
        if len(flags) != len(owners):
            raise ValueError(f"exempt has {len(flags)} values, the owners {len(owners)}")
        flags = np.ascontiguousarray(flags)
    if len(owners) and (owners < 0).any():
        k = _first(owners < 0)
        raise ValueError(f"owners[{k}] = {owners[k]} must be >= 0 (negative ids are the "
                         f"engine's)")
    order = np.argsort(owners, kind="stable")
    repeated = np.flatnonzero(np.diff(owners[order]) == 0)
    if len(repeated):
        first, again = sorted((int(order[repeated[0]]), int(order[repeated[0] + 1])))
        raise ValueError(f"owners[{again}] = {owners[again]} is given twice (owners[{first}])")
    taken = np.isin(owners, existing)
    if taken.any():
        k = _first(taken)
        raise ValueError(f"owners[{k}] = {owners[k]} already has an account")
    if len(collateral) and (collateral < 0).any():
        k = _first(collateral < 0)
        raise ValueError(f"collateral[{k}] = {collateral[k]} must be >= 0 quote units")
    _deposit(sum(collateral.tolist()), total_deposits)
    return owners, collateral, flags


def seeded_positions(long_owners, short_owners, prices, qtys, positions_of,
                     max_price: int, max_position: int) -> tuple:
    """Check ``seed_positions``'s arrays as a whole; return them as int64 arrays (long owners,
    short owners, prices in ticks, qtys in lots). ``positions_of(owners)``: the positions (lots,
    an int64 array) of the given distinct owners before the batch, each of whom has an account;
    each owner's position after every row must stay within ``max_position``, as the rows one by
    one would. Errors name the first bad row."""
    longs = int64_column("long_owners", long_owners)
    n = len(longs)
    shorts = int64_column("short_owners", short_owners, n)
    prices = int64_column("prices", prices, n)
    qtys = int64_column("qtys", qtys, n)
    bad = longs == shorts
    if bad.any():
        k = _first(bad)
        raise ValueError(f"row {k}: seed_positions needs two different accounts, got owner "
                         f"{longs[k]} on both sides")
    bad = (longs == INSURANCE_FUND) | (shorts == INSURANCE_FUND)
    if bad.any():
        raise ValueError(f"row {_first(bad)}: the insurance fund cannot be seeded with a "
                         f"position")
    bad = (prices < 1) | (prices > max_price)
    if bad.any():
        k = _first(bad)
        raise ValueError(f"prices[{k}] must be in [1, max_price={max_price}] ticks, got "
                         f"{prices[k]}")
    if n and (qtys < 1).any():
        k = _first(qtys < 1)
        raise ValueError(f"qtys[{k}] must be in [1, {INT64_MAX}], got {qtys[k]}")
    # A row past twice the bound fails whatever the position before it; the others keep
    # every partial sum checked below inside int64 (max_position <= 2**61, settings()).
    bad = qtys > 2 * max_position
    if bad.any():
        k = _first(bad)
        before = positions_of(np.array([longs[k]], dtype=np.int64))
        owner = longs[k] if abs(int(before[0]) + int(qtys[k])) > max_position else shorts[k]
        raise ValueError(f"row {k}: qty {qtys[k]} would take owner {owner}'s position past "
                         f"max_position {max_position}")
    # each owner's position after each of its rows: a long row adds, a short row takes away
    owner = np.concatenate([longs, shorts])
    delta = np.concatenate([qtys, -qtys])
    row = np.concatenate([np.arange(n), np.arange(n)])
    order = np.lexsort((row, owner))
    owner, delta, row = owner[order], delta[order], row[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if n else np.zeros(0, int)
    before = np.asarray(positions_of(owner[starts]), dtype=np.int64)
    # wrapping int64 sums are exact modulo 2**64, so differences within a group are exact
    with np.errstate(over="ignore"):
        total = np.cumsum(delta)
        offset = np.repeat(before - (total[starts] - delta[starts]),
                           np.diff(np.r_[starts, len(owner)]))
        running = total + offset
    bad = np.abs(running) > max_position
    if bad.any():
        k = int(np.flatnonzero(bad)[np.argmin(row[bad])])
        raise ValueError(f"row {row[k]}: qty {abs(delta[k])} would take owner {owner[k]}'s "
                         f"position past max_position {max_position}")
    return longs, shorts, prices, qtys


def equity_mark(mark) -> int:
    """``total_equity``'s mark: ticks >= 0 (any int64 price, not only up to max_price)."""
    mark = check.as_int64("mark", mark)
    if mark < 0:
        raise ValueError(f"mark must be >= 0 ticks, got {mark}")
    return mark


# --------------------------------------------------------------------------------- orders


def limit_price(name: str, price, max_price: int) -> int:
    """A price argument (``price``, ``stop_price``, an index): ticks in [1, max_price]."""
    price = check.as_int64(name, price)
    if not 1 <= price <= max_price:
        raise ValueError(f"{name} must be in [1, max_price={max_price}] ticks, got {price}")
    return price


def order_price(name: str, price, max_price: int) -> int:
    """An order's ``price`` or ``stop_price``: ticks in [1, max_price], else OrderError
    (INVALID_PRICE, INVALID_STOP_PRICE) with :func:`limit_price`'s message; a value that is not
    an int64 raises TypeError or ValueError (no reason: no MESSAGE_DTYPE row can hold it)."""
    price = check.as_int64(name, price)
    if not 1 <= price <= max_price:
        raise OrderError(f"{name} must be in [1, max_price={max_price}] ticks, got {price}",
                         Reason.INVALID_PRICE if name == "price" else Reason.INVALID_STOP_PRICE)
    return price


def user_order_id(value) -> int:
    """A user order id: int64 >= 0 (negative ids are the liquidator's forced orders)."""
    value = check.as_int64("order_id", value)
    if value < 0:
        raise ValueError(f"order_id must be >= 0 (negative ids are the liquidator's), "
                         f"got {value}")
    return value


def order_owner(owner: int) -> int:
    """The account a new order is sent for: any but the insurance fund's."""
    if owner == INSURANCE_FUND:
        raise ValueError("orders cannot be sent for the insurance fund")
    return owner


def insufficient_margin(owner: int, required: int, open_loss: int, equity: int) -> OrderError:
    """The refusal of an order whose initial margin ``required`` plus ``open_loss`` (quote units)
    would pass the account's ``equity`` (docs/liquidation.md, "Initial margin")."""
    return OrderError(f"owner {owner}'s equity {equity} does not cover the order's initial "
                      f"margin {required} plus open loss {open_loss} (quote units)",
                      Reason.INSUFFICIENT_MARGIN)


def insufficient_spot(owner: int, book: str, side: int, need: int, have: int) -> OrderError:
    """The refusal of a spot order the account cannot pay for: a sell of ``need`` asset units
    (with its open sells) past the ``have`` it holds, or a buy whose value ``need`` (quote
    units, its open buys counted at its price) passes its quote collateral ``have``."""
    if side == Side.SELL:
        return OrderError(f"owner {owner} would sell {need} units on the spot book {book!r} "
                          f"(with its open sells) but holds {have}", Reason.INSUFFICIENT_MARGIN)
    return OrderError(f"owner {owner}'s quote collateral {have} does not pay for {need} quote "
                      f"units on the spot book {book!r} (with its open buys)",
                      Reason.INSUFFICIENT_MARGIN)


def spot_isolated(owner: int) -> ValueError:
    """The refusal of a spot order of an isolated account (it would come to hold the asset)."""
    return ValueError(f"owner {owner} is an isolated account; collateral assets back cross "
                      f"accounts only (a spot order refused)")


def spot_position(name: str) -> ValueError:
    """The refusal of ``seed_position`` on a spot book."""
    return ValueError(f"instrument {name!r} is a spot book: it holds no positions "
                      f"(seed_position refused)")


def exposure(owner: int, position: int, open_qty: int, side: int, qty: int,
             max_position: int) -> None:
    """Refuse an order of ``qty`` lots on ``side`` that, with the owner's open orders on that
    side (``open_qty`` lots), could take its ``position`` past ``max_position`` lots.

    In Python integers: ``position + side * (open + qty)`` passes int64 for a large ``qty``, and
    the refusal shows the true number.
    """
    worst = abs(position + side * (open_qty + qty))
    if worst > max_position:
        raise OrderError(f"qty {qty} could take owner {owner}'s position to {worst} lots, "
                         f"past max_position {max_position}", Reason.POSITION_LIMIT)


# ---------------------------------------------------------------------------- instruments


def _named_spec(field: str, spec, cls, names: set) -> None:
    """Refuse a ``field`` that is not a ``cls`` with a non-empty name not yet in ``names``; add
    its name."""
    if not isinstance(spec, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"{field} must be {article} {cls.__name__}, got {type(spec).__name__}")
    if not isinstance(spec.name, str) or not spec.name:
        raise ValueError(f"{field}.name must be a non-empty str, got {spec.name!r}")
    if spec.name in names:
        raise ValueError(f"{field}.name {spec.name!r} is given twice")
    names.add(spec.name)


def venue_instruments(instruments, tick_size, lot_size, quote_unit, *, tiers, max_price,
                      max_position, mark_rule, book_type, book_kwargs,
                      settlement=Settlement.LINEAR, contract_value=None) -> tuple[list, list]:
    """The venue's instruments, checked, and a fresh book for each.

    ``instruments`` None: one instrument named "main" from ``tick_size``/``lot_size`` and the
    venue keywords. Otherwise a non-empty sequence of ``Instrument``; a None field takes the
    venue keyword of its name. Every instrument is checked as the one-instrument engine checks
    its settings (``settings``), naming ``instruments[i].field``; with ``quote_unit`` None the
    quote unit is instrument 0's tick x lot and every other instrument's k must be whole.
    Returns (resolved ``Instrument`` list, per instrument dict of name, k, tiers (MarginTiers),
    max_price, max_position, mark_rule, book).
    """
    if instruments is None:
        given = [Instrument("main", tick_size, lot_size)]
    else:
        if str(tick_size) != "1" or str(lot_size) != "1":
            raise TypeError("give tick_size and lot_size per instrument (Instrument), not to an "
                            "Engine with instruments")
        if isinstance(instruments, (str, bytes, Instrument)):
            raise TypeError(f"instruments must be a sequence of Instrument, got "
                            f"{type(instruments).__name__}")
        try:
            given = list(instruments)
        except TypeError:
            raise TypeError(f"instruments must be a sequence of Instrument, got "
                            f"{type(instruments).__name__}") from None
        if not given:
            raise ValueError("instruments must hold at least one Instrument (a venue without "
                             "instruments)")
    resolved, parts, names = [], [], set()
    for i, spec in enumerate(given):
        field = f"instruments[{i}]"
        _named_spec(field, spec, Instrument, names)
        try:
            book = book_type(spec.tick_size, spec.lot_size, **book_kwargs)
            unit = quote_unit if quote_unit is not None or i == 0 else resolved[0][1]
            out = settings(book.tick_size, book.lot_size, unit,
                           tiers=tiers if spec.tiers is None else spec.tiers,
                           insurance_fund=0, backstop=None, round_cap=None,
                           max_price=max_price if spec.max_price is None else spec.max_price,
                           max_position=(max_position if spec.max_position is None
                                         else spec.max_position),
                           check_initial_margin=True, fraction_above=0, cooldown_rounds=0,
                           increment=0, sizing=Sizing.FULL,
                           mark_rule=mark_rule if spec.mark_rule is None else spec.mark_rule,
                           settlement=settlement,
                           contract_value=(contract_value if spec.contract_value is None
                                           else spec.contract_value),
                           **{name: 0 for name in RATES},
                           **{name: 0 for name, _ in RULES if name not in ("mark_rule",
                                                                          "sizing")})
        except (TypeError, ValueError) as exc:
            if instruments is None:
                raise
            raise type(exc)(f"{field}: {exc}") from None
        resolved.append((spec.name, out["quote_unit"]))
        spot = flag(f"{field}.spot", spec.spot)
        if spot and settlement == Settlement.INVERSE:
            raise ValueError(f"{field}.spot: an inverse venue has no collateral asset to trade "
                             f"spot")
        parts.append({"name": spec.name, "k": out["k"], "tiers": out["tiers"],
                      "max_price": out["max_price"], "max_position": out["max_position"],
                      "mark_rule": out["mark_rule"], "book": book,
                      "contract_value": out["contract_value"], "spot": spot})
    specs = [Instrument(p["name"], str(p["book"].tick_size), str(p["book"].lot_size),
                        tiers=p["tiers"], max_price=p["max_price"],
                        max_position=p["max_position"], mark_rule=p["mark_rule"],
                        contract_value=p["contract_value"], spot=p["spot"])
             for p in parts]
    return specs, parts


#: A collateral asset's value per unit and tick is num / den quote units with num and den at
#: most this, so balance x mark x num x 10**6 stays inside 128 bits in the compiled ledger.
ASSET_RATIO_BOUND = 2**40


def venue_assets(assets, instrument_names, tick_sizes, max_prices,
                 quote_unit, settlement=Settlement.LINEAR, lot_sizes=None,
                 spots=None) -> tuple[tuple, list]:
    """The venue's collateral assets (``Engine(assets=...)``), checked.

    ``assets`` None or a sequence of ``Asset``; the instruments' names, tick sizes (Decimal) and
    max prices, and the venue's quote unit (Decimal), describe the venue. Errors name
    ``assets[i].field``. Returns (resolved ``Asset`` tuple with instruments by name, per asset
    dict of name, instrument (index), num, den (one unit per tick is num / den quote units),
    haircut_ppm, discount_ppm, max_total (asset units the deposits may reach: their value at
    max_price stays within 2**61 quote units)).
    """
    spots = [False] * len(instrument_names) if spots is None else list(spots)
    if assets is None:
        assets = ()
    if isinstance(assets, (str, bytes, Asset)) or not hasattr(assets, "__iter__"):
        raise TypeError(f"assets must be a sequence of Asset, got {type(assets).__name__}")
    if settlement == Settlement.INVERSE:
        assets = list(assets)
        if assets:
            raise ValueError(f"assets: an inverse venue is margined in its coin alone (as "
                             f"Binance COIN-M and BitMEX are), got {len(assets)} collateral "
                             f"asset(s)")
    resolved, parts, names, valued = [], [], set(), set()
    for n, spec in enumerate(assets):
        field = f"assets[{n}]"
        _named_spec(field, spec, Asset, names)
        unit = check.unit_size(f"{field}.unit", spec.unit)
        try:
            i = instrument_arg(spec.instrument, instrument_names)
        except (KeyError, TypeError) as exc:
            raise type(exc)(f"{field}.instrument: {exc.args[0]}") from None
        if i in valued:
            raise ValueError(f"{field}.instrument {instrument_names[i]!r} already values another "
                             f"asset (each asset names its own instrument)")
        valued.add(i)
        haircut = rate_ppm(f"{field}.haircut_ppm", spec.haircut_ppm)
        discount = rate_ppm(f"{field}.conversion_discount_ppm", spec.conversion_discount_ppm)
        for name, rate in (("haircut_ppm", haircut), ("conversion_discount_ppm", discount)):
            if rate == PPM:
                raise ValueError(f"{field}.{name} must be below {PPM} ppm (a rate in [0, 1)), "
                                 f"got {rate}")
        ratio = Fraction(unit * tick_sizes[i]) / Fraction(quote_unit)
        num, den = ratio.numerator, ratio.denominator
        if num > ASSET_RATIO_BOUND or den > ASSET_RATIO_BOUND:
            raise ValueError(f"{field}.unit {unit}: one unit per tick of {instrument_names[i]!r} "
                             f"is {num}/{den} quote units, past 2**40 in numerator or "
                             f"denominator (not expressible exactly)")
        max_total = min(DEPOSIT_BOUND, MONEY_BOUND * den // (max_prices[i] * num))
        if max_total < 1:
            raise ValueError(f"{field}.unit {unit}: one unit at max_price {max_prices[i]} of "
                             f"{instrument_names[i]!r} is worth more than 2**61 quote units")
        per_lot = 0
        if spots[i]:
            # a spot book trades the asset: a lot is a whole number of its units
            per_lot = Decimal(lot_sizes[i]) / unit
            if per_lot != per_lot.to_integral_value():
                raise ValueError(f"{field}.unit {unit}: a lot of the spot book "
                                 f"{instrument_names[i]!r} ({lot_sizes[i]}) must be a whole "
                                 f"number of units")
            per_lot = int(per_lot)
        resolved.append(Asset(spec.name, format(unit, "f"), instrument_names[i], haircut,
                              discount))
        parts.append({"name": spec.name, "instrument": i, "num": num, "den": den,
                      "haircut_ppm": haircut, "discount_ppm": discount, "max_total": max_total,
                      "units_per_lot": per_lot})
    for i, spot in enumerate(spots):
        if spot and i not in valued:
            raise ValueError(f"instruments[{i}].spot: {instrument_names[i]!r} is a spot book, "
                             f"but no asset names it (Asset(..., instrument="
                             f"{instrument_names[i]!r}) is what it trades)")
    return tuple(resolved), parts


def asset_arg(value, names) -> int:
    """An asset given by index or name as its index in ``names`` (KeyError naming ``asset``)."""
    return _named_arg("asset", "collateral assets ", value, names)


def asset_deposit(owner: int, isolated: bool, amount, total: int, part: dict) -> int:
    """``deposit(..., asset=)``'s amount: asset units >= 1 into a cross account (not the fund),
    keeping the asset's deposits within ``part["max_total"]``."""
    amount = check.as_positive("amount", amount)
    if owner == INSURANCE_FUND:
        raise ValueError("the insurance fund holds quote currency only (asset deposit refused)")
    if isolated:
        raise ValueError(f"owner {owner} is an isolated account; collateral assets back cross "
                         f"accounts only")
    if total + amount > part["max_total"]:
        raise ValueError(f"deposits of asset {part['name']!r} would reach {total + amount} "
                         f"units, past {part['max_total']} (their value at max_price must stay "
                         f"within 2**61 quote units)")
    return amount


def instrument_arg(value, names) -> int:
    """An instrument given by index (int) or name (str) as its index in ``names``; KeyError
    naming ``instrument`` when there is none such, TypeError for another type."""
    return _named_arg("instrument", "", value, names)


def _named_arg(field: str, noun: str, value, names) -> int:
    # One of the venue's ``names`` given by name or index, as its index.
    if isinstance(value, str):
        try:
            return list(names).index(value)
        except ValueError:
            raise KeyError(f"{field} {value!r} is not one of the venue's {noun}"
                           f"{list(names)}") from None
    index = check.as_int64(field, value)
    if not 0 <= index < len(names):
        raise KeyError(f"{field} {index} is not one of the venue's {len(names)} {noun}"
                       f"(0 .. {len(names) - 1})")
    return index


def equity_marks(mark, count: int) -> list[int] | None:
    """``total_equity``'s ``mark`` for a venue of ``count`` instruments: None (the current
    marks), an int (one instrument only) or a sequence of ``count`` marks, each ticks >= 0."""
    if mark is None:
        return None
    if isinstance(mark, (str, bytes)) or not hasattr(mark, "__len__"):
        if count != 1:
            raise ValueError(f"mark must be a sequence of {count} marks (one per instrument) "
                             f"for a venue of {count} instruments, got {mark!r}")
        return [equity_mark(mark)]
    marks = list(mark)
    if len(marks) != count:
        raise ValueError(f"mark must hold {count} marks (one per instrument), got {len(marks)}")
    return [equity_mark(m) for m in marks]


def isolated_elsewhere(owner: int, held: str, wanted: str) -> ValueError:
    """The error for an order or seed in instrument ``wanted`` of an isolated account holding a
    position or open orders in instrument ``held``: its margin backs one position."""
    return ValueError(f"owner {owner} is an isolated account with a position or open orders in "
                      f"{held!r}: its margin backs that one position, so {wanted!r} needs an "
                      f"account of its own")


def order_elsewhere(owner: int, held: str, wanted: str) -> OrderError:
    """:func:`isolated_elsewhere` for an order (OrderError, Reason.ISOLATED_ELSEWHERE)."""
    return OrderError(str(isolated_elsewhere(owner, held, wanted)), Reason.ISOLATED_ELSEWHERE)


def batch_messages(messages, account_of, spot: bool) -> np.ndarray:
    """The caller's errors in a batch of ``Engine.process``, checked before anything runs.

    ``messages`` must be a one-dimensional MESSAGE_DTYPE array (TypeError, ValueError); returns
    a private C-contiguous copy (so another thread writing the caller's array meanwhile cannot
    undo the checks). Then, for the first row (in row order) that the per-call path would
    refuse for the caller and not the market: ValueError for a negative ``order_id``; for a new
    order (kinds 1-7), KeyError for an ``owner`` with no account, ValueError for the insurance
    fund, and on a ``spot`` book ValueError for an isolated account. Each names the row index.
    ``account_of(owner)`` is None for an owner with no account, else whether it is isolated.
    """
    rows = check.message_array(messages)
    rows = np.array(rows, dtype=rows.dtype, order="C", copy=True)
    if not len(rows):
        return rows
    bad = rows["order_id"] < 0
    new = (rows["kind"] >= 1) & (rows["kind"] <= 7)
    owners = rows["owner"]
    refused = {}
    for owner in np.unique(owners[new]).tolist():
        found = account_of(owner)
        if found is None:
            refused[owner] = KeyError(f"owner {owner} has no account")
        elif owner == INSURANCE_FUND:
            refused[owner] = ValueError("orders cannot be sent for the insurance fund")
        elif spot and found:
            refused[owner] = spot_isolated(owner)
    if refused:
        bad |= new & np.isin(owners, np.fromiter(refused, dtype=np.int64, count=len(refused)))
    if not bad.any():
        return rows
    i = int(np.flatnonzero(bad)[0])
    order_id, owner = int(rows["order_id"][i]), int(owners[i])
    if order_id < 0:
        raise ValueError(f"messages[{i}]: order_id must be >= 0 (negative ids are the "
                         f"liquidator's), got {order_id}")
    exc = refused[owner]
    raise type(exc)(f"messages[{i}]: {exc.args[0]}")


def isolated_backstop(owner: int, backstop, count: int) -> None:
    """Refuse an isolated backstop in a venue of several instruments: it takes over positions
    in any of them, and an isolated account holds one."""
    if count > 1 and backstop is not None and owner == backstop:
        raise ValueError(f"owner {owner} is the backstop, which takes over positions in every "
                         f"instrument: it needs a cross account (no isolated_margin) in a venue "
                         f"of {count} instruments")
