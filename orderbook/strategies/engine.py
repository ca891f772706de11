"""Strategies for the margin engine: tier tables, rule sets, account populations, engines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from .. import _validation as check
from .._engine_args import RULES, enum_arg
from ..errors import OrderError
from ..events import (
    BACKSTOP_OWNER,
    LP_OWNER,
    PPM,
    AdlRanking,
    AmendRule,
    Deficit,
    Kind,
    LimitRule,
    MarginBasis,
    MarkRule,
    Reason,
    SelfTradePrevention,
    Side,
    Sizing,
    Trigger,
)
from ..margin import unit_value
from ..testing import Message, ReferenceEngine
from ._common import SIDES, implementation, record

__all__ = ["LP_OWNER", "BACKSTOP_OWNER", "FIXABLE_RULES", "AccountPopulation", "tiers",
           "engine_rules", "scenario_rules", "account_populations", "engines"]

_UNIT_K1 = ("1", "1", None)

#: The ``Engine`` keywords that ``engine_rules`` and ``engines`` take in ``fixed``: every one
#: :func:`engine_rules` draws, and the book's ``stp`` and ``amend_rule`` (bounds and units are
#: left out: a drawn population's prices and positions would not respect them).
FIXABLE_RULES = (
    "tiers", "insurance_fund", "backstop", "check_initial_margin", "taker_fee_ppm",
    "maker_fee_ppm", "mark_rule", "sizing", "fraction_ppm", "fraction_above", "cooldown_rounds",
    "cooldown_ms", "increment", "limit_rule", "band_ppm", "round_cap", "liquidation_fee_ppm",
    "backstop_discount_ppm", "takeover_below_ppm", "deficit", "adl_ranking", "trigger",
    "mm_basis", "stp", "amend_rule",
)
_RULE_ENUMS = {**dict(RULES), "stp": SelfTradePrevention, "amend_rule": AmendRule}


# ------------------------------------------------------------------------- engine rules


def tiers(k: int = 1, *, max_tiers: int = 3) -> st.SearchStrategy[list[tuple]]:
    """Valid margin tier tables: ``[(max_notional, maintenance_ppm, initial_ppm), ...]``.

    Caps strictly increase (200..15,000 quote units apart, times ``k``; the last may be None),
    maintenance rates are 0.5 %..15 % and non-decreasing, initial rates at least maintenance
    and non-decreasing.

    Parameters
    ----------
    k : int
        Quote units per lot per tick of the engine, which scales notionals.
    max_tiers : int
        At most this many tiers (at least one).

    Returns
    -------
    SearchStrategy of list of (int or None, int, int)
    """

    @st.composite
    def table(draw):
        n = draw(st.integers(1, max_tiers), label="n_tiers")
        caps, cap = [], 0
        for _ in range(n):
            cap += draw(st.integers(200, 15_000), label="cap step")
            caps.append(cap * k)
        if draw(st.booleans(), label="last cap None"):
            caps[-1] = None
        mm = sorted(draw(st.lists(st.integers(5_000, 150_000), min_size=n, max_size=n),
                         label="maintenance_ppm"))
        rows, im_prev = [], 0
        for c, m in zip(caps, mm, strict=True):
            im = max(im_prev, m + draw(st.integers(0, 100_000), label="initial extra"))
            rows.append((c, m, im))
            im_prev = im
        return rows

    return table()


def _rule_fields(quote_units: int) -> st.SearchStrategy[dict]:
    """The liquidation and fee settings shared by Engine keywords and scenario Rules."""
    return st.fixed_dictionaries({
        "taker_fee_ppm": st.integers(0, 2_000),
        "maker_fee_ppm": st.integers(0, 2_000),
        "mark_rule": st.sampled_from(list(MarkRule)),
        "sizing": st.sampled_from(list(Sizing)),
        "fraction_ppm": st.sampled_from([500_000, 1, 250_000, PPM]) | st.integers(0, PPM),
        "fraction_above": st.just(0) | st.integers(1, 3_000).map(lambda c: c * quote_units),
        "cooldown_rounds": st.just(0) | st.integers(1, 3),
        "cooldown_ms": st.just(0) | st.integers(1, 5_000) | st.sampled_from([30_000]),
        "increment": st.just(0) | st.integers(1, 3_000).map(lambda c: c * quote_units),
        "limit_rule": st.sampled_from(list(LimitRule)),
        "band_ppm": st.just(0) | st.integers(1, 100_000),
        "round_cap": st.none() | st.integers(50, 3_000).map(lambda c: c * quote_units),
        "liquidation_fee_ppm": st.just(0) | st.integers(0, 50_000),
        "backstop_discount_ppm": st.integers(0, 200_000),
        "takeover_below_ppm": st.just(0) | st.sampled_from([666_667, PPM]) | st.integers(1, PPM),
        "deficit": st.sampled_from(list(Deficit)),
        "adl_ranking": st.sampled_from(list(AdlRanking)),
        "trigger": st.sampled_from(list(Trigger)),
        "mm_basis": st.sampled_from(list(MarginBasis)),
    }).map(lambda fields: _with_a_step(fields, quote_units))


def _with_a_step(fields: dict, quote_units: int, pinned=()) -> dict:
    """``fields`` with an ``increment`` of at least ``quote_units`` under Sizing.INCREMENTAL,
    which refuses 0; drawn as it is under the other sizings (where it does nothing). With the
    increment pinned at 0, a drawn INCREMENTAL sizing becomes FULL instead."""
    if fields["sizing"] == Sizing.INCREMENTAL and fields["increment"] == 0:
        if "increment" in pinned and "sizing" not in pinned:
            return {**fields, "sizing": Sizing.FULL}
        return {**fields, "increment": quote_units}
    return fields


def _fixed_rules(fixed) -> dict:
    """``fixed`` checked once, when the strategy is built: every name one of
    :data:`FIXABLE_RULES`, enum rules as members (a member, its value or its name), and the
    plain values together accepted by an engine (its own message, naming the keyword and the
    value, otherwise). Strategies among the values are kept to be drawn from."""
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise InvalidArgument(f"fixed must be a dict of Engine keywords to values (or "
                              f"strategies), got {fixed!r}")
    unknown = sorted(str(name) for name in fixed if name not in FIXABLE_RULES)
    if unknown:
        raise InvalidArgument(f"fixed names {', '.join(unknown)}: not a rule that engine_rules "
                              f"and engines pin; they pin {', '.join(FIXABLE_RULES)}")
    pins = {}
    for name, value in fixed.items():
        enum = _RULE_ENUMS.get(name)
        if enum is not None and isinstance(value, str):
            if value not in enum.__members__:
                raise InvalidArgument(f"fixed[{name!r}] = {value!r} is not a {enum.__name__}: "
                                      f"one of {', '.join(enum.__members__)}")
            value = enum[value]
        elif enum is not None and not isinstance(value, st.SearchStrategy):
            try:
                value = enum_arg(name, enum, value)
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"fixed[{name!r}]: {exc}") from None
        pins[name] = value
    plain = {name: v for name, v in pins.items() if not isinstance(v, st.SearchStrategy)}
    trial = dict(plain)
    if trial.get("sizing") == Sizing.INCREMENTAL and "increment" not in trial:
        trial["increment"] = 1   # drawn (at least k) when not pinned
    try:
        ReferenceEngine(**trial)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"fixed {plain!r} is refused by the engine: {exc}") from None
    return pins


def _pin(draw, kw: dict, pins: dict, quote_units: int) -> dict:
    """Drawn Engine keywords ``kw`` with the pinned ones put in (strategies drawn from)."""
    if not pins:
        return kw
    out = dict(kw)
    for name, value in pins.items():
        out[name] = (draw(value, label=f"fixed {name}") if isinstance(value, st.SearchStrategy)
                     else value)
    return _with_a_step(out, quote_units, pins)


def engine_rules(k: int = 1, *, backstop: int | None = BACKSTOP_OWNER, fixed=None
                 ) -> st.SearchStrategy[dict]:
    """Valid ``Engine`` keyword arguments for margin, fees and liquidation.

    Draws ``tiers`` (:func:`tiers`), taker and maker fees (0..0.2 %), every ``mark_rule``,
    ``sizing``, ``limit_rule`` and ``deficit``, ``fraction_ppm``, ``fraction_above`` (0 or
    1..3,000 quote units times ``k``), ``cooldown_rounds`` (0..3), ``cooldown_ms`` (0,
    1..5,000 or Hyperliquid's 30,000 ms of ``Engine.time``), ``increment`` (0 or
    1..3,000 quote units times ``k``; at least ``k`` under ``INCREMENTAL``), ``band_ppm`` (0 or
    up to 10 %),
    ``round_cap`` (None or 50..3,000 quote units times ``k``), ``liquidation_fee_ppm`` (0..5 %),
    ``insurance_fund`` (0..5,000 times ``k``), ``backstop`` (None or the given owner) and its
    discount (0..20 %), ``takeover_below_ppm`` (0, 2/3, 1 or any share of MM), every
    ``adl_ranking``, ``trigger`` and ``mm_basis``, and
    ``check_initial_margin`` (on or off). Book settings (``stp``, ``amend_rule``) and bounds are
    left out.

    Parameters
    ----------
    k : int
        Quote units per lot per tick of the engine the rules are for.
    backstop : int or None
        Owner id the ``backstop`` keyword names when drawn (None: never a backstop). The account
        must exist; :func:`account_populations` opens it.
    fixed : dict, optional
        Rules to pin instead of drawing: ``{keyword: value}``, any of :data:`FIXABLE_RULES`; a
        value may be a strategy, drawn from instead of the default range. Enum rules take a
        member, its value or its name (``{"sizing": "FRACTION"}``). Checked when the strategy
        is built: an unknown keyword, or values an engine refuses, raise ``InvalidArgument``
        naming them. The rest are drawn as above (under a pinned ``Sizing.INCREMENTAL`` the
        drawn ``increment`` is at least ``k``).

    Returns
    -------
    SearchStrategy of dict

    Examples
    --------
    >>> from hypothesis import given
    >>> from orderbook import Sizing
    >>> @given(engine_rules(fixed={"sizing": Sizing.FRACTION, "fraction_ppm": 250_000}))
    ... def test_partial_liquidations(kw):
    ...     assert kw["sizing"] == Sizing.FRACTION and kw["fraction_ppm"] == 250_000
    >>> test_partial_liquidations()
    """
    pins = _fixed_rules(fixed)

    own = st.fixed_dictionaries({
        "tiers": tiers(k),
        "insurance_fund": (st.just(0) | st.integers(0, 5_000)).map(lambda f: f * k),
        "backstop": st.sampled_from([None] if backstop is None else [None, backstop]),
        "check_initial_margin": st.booleans(),
    })
    drawn = st.tuples(own, _rule_fields(k)).map(lambda parts: {**parts[0], **parts[1]})
    if not pins:
        return drawn

    @st.composite
    def pinned(draw):
        return _pin(draw, draw(drawn, label="drawn rules"), pins, k)

    return pinned()


def scenario_rules(*, notional: int = 10**8):
    """Valid :class:`orderbook.Rules` for scenarios (every rule enum, fees, fund, backstop).

    Parameters
    ----------
    notional : int
        Quote units of a typical position; tier caps, the round cap, the insurance fund and the
        backstop's collateral are drawn as multiples of it (the default suits
        ``default_scenario``, whose positions are worth about 10**8 quote units).

    Returns
    -------
    SearchStrategy of orderbook.Rules
    """
    from ..scenario import Rules

    return st.builds(
        lambda table, fields, fund, backstop, liquidator: Rules(
            tiers=tuple(tuple(row) for row in table), insurance_fund=fund * notional,
            backstop_collateral=backstop * notional, liquidator=liquidator, **fields),
        tiers(notional // 200 or 1), _rule_fields(max(1, notional // 1_000)),
        st.integers(0, 1_000), st.just(0) | st.integers(1, 1_000), st.booleans())


# ------------------------------------------------------------------------ populations


@dataclass(frozen=True)
class AccountPopulation:
    """Accounts and the calls that give them positions, to apply to an empty ``Engine``.

    ``apply(engine)`` makes, in order: ``add_account`` for each of ``accounts`` (owner,
    collateral in quote units, exempt, isolated_margin or None), ``seed_position`` for each of
    ``positions`` (long owner, short owner, price in ticks, lots), every message of ``orders``
    (the liquidity provider's depth, users' market orders that trade against it, users' resting
    orders and stops; order ids 0, 1, 2, ...), ``deposit`` for each of ``deposits``, and
    ``set_index(index)`` when ``index`` is not None. An order the engine refuses for initial
    margin (``OrderError`` with ``Reason.INSUFFICIENT_MARGIN``, docs/liquidation.md) is left
    out, as a venue would refuse it; both engines refuse the same orders.
    """

    accounts: tuple[tuple[int, int, bool, int | None], ...]
    positions: tuple[tuple[int, int, int, int], ...]
    orders: tuple[Message, ...]
    deposits: tuple[tuple[int, int], ...]
    index: int | None
    lp: int

    @property
    def users(self) -> list[int]:
        """Owner ids of the non-exempt accounts, ascending."""
        return sorted(a[0] for a in self.accounts if not a[2])

    @property
    def next_order_id(self) -> int:
        """The lowest order id the population's orders leave unused."""
        return len(self.orders)

    def apply(self, engine) -> None:
        """Open the accounts and make the positions, orders and deposits on ``engine``."""
        for owner, collateral, exempt, isolated in self.accounts:
            engine.add_account(owner, collateral, exempt=exempt, isolated_margin=isolated)
        for long_owner, short_owner, price, qty in self.positions:
            engine.seed_position(long_owner, short_owner, price, qty)
        for m in self.orders:
            try:
                m.submit(engine)
            except OrderError as exc:
                if exc.reason != Reason.INSUFFICIENT_MARGIN:
                    raise
        for owner, amount in self.deposits:
            engine.deposit(owner, amount)
        if self.index is not None:
            engine.set_index(self.index)


def account_populations(k: int = 1, *, backstop: int | None = None, max_users: int = 8,
                        lp: int = LP_OWNER, mid: int = 100
                        ) -> st.SearchStrategy[AccountPopulation]:
    """Leveraged accounts around an exempt liquidity provider, for an ``Engine``.

    Draws 1..max_users users (owners 1..30), each with 1-2 positions seeded at mid +- 5 ticks
    against the LP or another user, and collateral of 0..30 % of its gross notional plus a few
    quote units, so that many sit near their liquidation price; a third are isolated with a
    reserve. The LP (collateral 10**7 times ``k``) rests 1..6 levels a side (mid-20..mid-1 and
    mid+1..mid+20); users send 0..3 market orders that trade against it (positions through
    trades, with fees), rest 0..2 orders away from the touch and arm 0..2 stops; 0..2 deposits
    follow, and maybe an index price.

    Parameters
    ----------
    k : int
        Quote units per lot per tick of the engine (scales collateral).
    backstop : int or None
        Owner id of an exempt backstop account to open (with 0..20,000 times ``k``), as named
        by the engine's ``backstop`` keyword.
    max_users : int
        At most this many users.
    lp : int
        Owner id of the liquidity provider (not in 1..30).
    mid : int
        Centre price in ticks (at least 40).

    Returns
    -------
    SearchStrategy of AccountPopulation
    """
    if mid < 40:
        raise InvalidArgument(f"mid must be at least 40 ticks, got {mid}")
    if lp in range(1, 31) or backstop in range(1, 31) or lp == backstop:
        raise InvalidArgument(f"lp ({lp}) and backstop ({backstop}) must differ and lie "
                              f"outside the users' owner ids 1..30")

    @st.composite
    def population(draw):
        users = sorted(draw(st.sets(st.integers(1, 30), min_size=1, max_size=max_users),
                            label="users"))
        seeds, gross = [], dict.fromkeys(users, 0)
        for u in users:
            for _ in range(draw(st.integers(1, 2), label="n_seeds")):
                others = [o for o in users if o != u]
                other = lp if not others or draw(st.integers(0, 2), label="vs lp") else draw(
                    st.sampled_from(others), label="counterparty")
                price = draw(st.integers(mid - 5, mid + 5), label="seed price")
                qty = draw(st.integers(1, 20), label="seed qty")
                pair = (u, other) if draw(st.booleans(), label="long") else (other, u)
                seeds.append((*pair, price, qty))
                for o in (u, other):
                    if o != lp:
                        gross[o] += price * qty * k
        accounts = [(lp, 10_000_000 * k, True, None)]
        if backstop is not None:
            accounts.append((backstop, draw(st.integers(0, 20_000), label="backstop") * k,
                             True, None))
        for u in users:
            ppm = draw(st.integers(0, 60_000) | st.integers(0, 300_000), label="margin ppm")
            margin = gross[u] * ppm // PPM + draw(st.integers(0, 20), label="extra") * k
            if draw(st.integers(0, 2), label="isolated") == 2:
                reserve = draw(st.integers(0, 1_000), label="reserve") * k
                accounts.append((u, margin + reserve, False, margin))
            else:
                accounts.append((u, margin, False, None))
        msgs: list[Message] = []

        def add(kind, side, price, qty, owner, stop=0):
            msgs.append(Message(kind, len(msgs), side, price, qty, owner, stop))

        for side, lo, hi in ((Side.BUY, mid - 20, mid - 1), (Side.SELL, mid + 1, mid + 20)):
            for _ in range(draw(st.integers(1, 6), label="n_levels")):
                add(Kind.LIMIT, side, draw(st.integers(lo, hi), label="depth price"),
                    draw(st.integers(1, 30), label="depth qty"), lp)
        for _ in range(draw(st.integers(0, 3), label="n_trades")):
            add(Kind.MARKET, draw(SIDES, label="side"), 0,
                draw(st.integers(1, 10), label="qty"), draw(st.sampled_from(users)))
        for _ in range(draw(st.integers(0, 2), label="n_resting")):
            # beyond the LP's whole range (mid +- 20), so that the order rests
            side = draw(SIDES, label="side")
            away = draw(st.integers(21, 30), label="ticks away")
            add(Kind.LIMIT, side, mid - away if side == Side.BUY else mid + away,
                draw(st.integers(1, 10), label="qty"), draw(st.sampled_from(users), label="owner"))
        for _ in range(draw(st.integers(0, 2), label="n_stops")):
            # sell stops below the mid, buy stops above; a stop-limit's limit is 0-5 ticks
            # beyond its stop, in the direction it trades
            side = draw(SIDES, label="side")
            stop = mid + side * draw(st.integers(1, 18), label="ticks away")
            qty, owner = draw(st.integers(1, 10), label="qty"), draw(st.sampled_from(users))
            if draw(st.booleans(), label="stop market"):
                add(Kind.STOP_MARKET, side, 0, qty, owner, stop)
            else:
                limit = stop + side * draw(st.integers(0, 5), label="slack")
                add(Kind.STOP_LIMIT, side, limit, qty, owner, stop)
        deposits = tuple(
            (draw(st.sampled_from(users), label="owner"),
             draw(st.integers(1, 500), label="amount") * k)
            for _ in range(draw(st.integers(0, 2), label="n_deposits")))
        index = draw(st.none() | st.integers(mid - 5, mid + 5), label="index")
        return AccountPopulation(tuple(accounts), tuple(seeds), tuple(msgs), deposits, index,
                                 lp)

    return population()


@lru_cache(maxsize=None)
def _cached(factory, *args, **kwargs):
    # A strategy per argument tuple, built once (composite strategies are slow to build).
    return factory(*args, **kwargs)


def _compiled_engine():
    from ..engine import Engine

    return Engine


def _engine_class(engine_cls):
    return implementation("engine_cls", engine_cls, _compiled_engine, ReferenceEngine)


def engines(engine_cls=None, *, rules=None, fixed=None, population=None, units=None):
    """Engines with drawn rules and a drawn population applied (see :func:`account_populations`).

    The constructor call and the population are recorded with ``hypothesis.note``.

    Parameters
    ----------
    engine_cls : {"compiled", "reference"} or type, optional
        The engine to build (default the compiled ``orderbook.Engine``).
    rules : strategy of dict, optional
        ``Engine`` keyword arguments (default :func:`engine_rules` for the drawn units).
    fixed : dict, optional
        Rules to pin over the drawn ones, as in :func:`engine_rules`: ``{keyword: value or
        strategy}``, any of :data:`FIXABLE_RULES` (e.g. ``{"sizing": Sizing.FRACTION,
        "fraction_ppm": 250_000, "mark_rule": MarkRule.INDEX}``); the rest are drawn.
    population : strategy of AccountPopulation, optional
        Default :func:`account_populations` for the drawn units, opening the backstop account
        when the rules name one.
    units : strategy of (tick_size, lot_size, quote_unit), optional
        Default ``("1", "1", None)``, so ``k = 1``.

    Returns
    -------
    SearchStrategy of Engine
    """
    cls = _engine_class(engine_cls)
    unit_strategy = st.just(_UNIT_K1) if units is None else units
    if rules is not None and not isinstance(rules, st.SearchStrategy):
        raise InvalidArgument(f"rules must be a strategy of Engine keyword dicts, got {rules!r}; "
                              f"to pin some rules and draw the rest, pass fixed={{...}}")
    pins = _fixed_rules(fixed)

    @st.composite
    def engine(draw):
        tick, lot, quote = draw(unit_strategy, label="units")
        _, k = unit_value(check.unit_size("tick_size", tick), check.unit_size("lot_size", lot),
                          quote)
        kw = draw(_cached(engine_rules, k) if rules is None else rules, label="rules")
        kw = _pin(draw, kw, pins, k)
        pop = draw(_cached(account_populations, k, backstop=kw.get("backstop"))
                   if population is None
                   else population, label="population")
        out = cls(tick, lot, quote, **kw)
        pop.apply(out)
        record(f"engine = {cls.__module__}.{cls.__name__}({tick!r}, {lot!r}, {quote!r}, "
              f"**{kw!r})\n{pop!r}.apply(engine)")
        return out

    return engine()
