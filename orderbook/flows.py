"""Background order flow, generated as arrays one time interval at a time (docs/flows.md).

Two models, each a frozen, picklable configuration whose :meth:`start` returns a stateful
stream; ``stream.between(t0_ms, t1_ms, state)`` returns the arrivals in [t0, t1) as a
:data:`FLOW_DTYPE` array sorted by time:

- :class:`PoissonFlow`: zero-intelligence flow (Smith, Farmer, Gillemot & Krishnamurthy 2003;
  Cont, Stoikov & Talreja 2010): independent Poisson arrivals of limit orders at each distance
  from the touch, of market orders and of cancellations of the flow's own resting orders.
- :class:`HawkesFlow`: self-exciting market orders on one side, exponential kernel (Hawkes 1971;
  Bacry, Mastromatteo & Muzy 2015), simulated exactly (Dassios & Zhao 2013), excited further by
  the forced (liquidation) orders of the last interval.

Intensities are constant over each interval and may depend on the :class:`MarketState` at its
start (volatility, spread, forced lots). Rows carry prices relative to the quotes, not absolute
prices: the book moves while an interval's rows are sent, so each LIMIT row is priced when it
is sent (:func:`limit_price`); :func:`to_messages` prices a batch against one book state, for
driving :meth:`OrderBook.process` directly.

:func:`benchmark_stream` builds the message streams of the benchmarks (benchmarks/bench_book.py).

Units: times in integer milliseconds, prices in integer ticks, quantities in integer lots,
rates per second, volatility in ppm.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import NamedTuple

import numpy as np

from . import _settings as cfg
from .book import OrderBook
from .events import INT64_MAX, MESSAGE_DTYPE, EventKind, Kind, Side

__all__ = [
    "FLOW_DTYPE", "Anchor", "MarketState", "OrderSize", "PoissonFlow", "HawkesFlow",
    "FlowStream", "PoissonStream", "HawkesStream", "Rates", "power_law_profile",
    "limit_price", "to_messages", "Resolved", "SKIP_REASONS", "benchmark_stream",
    "BENCHMARK_REGIMES",
]


class Anchor(IntEnum):
    """The quote a LIMIT row's ``offset`` counts from (``FLOW_DTYPE['anchor']``).

    With a one-tick spread both put offset 0 on the touch of the order's own side.
    """

    #: the order's own side's best price: a buy at best bid - offset, a sell at best ask +
    #: offset; 0 joins the touch, a negative offset improves on it inside the spread
    SAME = 0
    #: one tick inside the opposite best price: a buy at best ask - 1 - offset, a sell at
    #: best bid + 1 + offset; Cont, Stoikov & Talreja's distance from the opposite quote is
    #: offset + 1, so a wide spread fills up from the inside
    OPPOSITE = 1


#: One arrival of a flow. ``time`` in ms; ``kind`` a :class:`~orderbook.Kind` value (LIMIT,
#: MARKET or CANCEL); ``side`` +1 buy / -1 sell (0 for CANCEL); ``offset`` ticks from the
#: ``anchor`` quote towards the passive side (LIMIT only, see :class:`Anchor`); ``qty`` lots >= 1
#: (0 for CANCEL); ``pick`` in [0, 1) chooses which of the owner's live orders a CANCEL cancels:
#: index floor(pick x count) of them, resolved when it is sent (0 otherwise).
FLOW_DTYPE = np.dtype([
    ("time", "<i8"), ("offset", "<i8"), ("qty", "<i8"), ("pick", "<f8"),
    ("kind", "u1"), ("side", "i1"), ("anchor", "u1"),
], align=True)

LIMIT, MARKET, CANCEL = int(Kind.LIMIT), int(Kind.MARKET), int(Kind.CANCEL)
BUY, SELL = int(Side.BUY), int(Side.SELL)
#: Why :func:`to_messages` skips a row: the anchor quote is missing, the price would cross
#: the opposite best, the price is below 1 tick or above INT64_MAX, no live order to cancel.
SKIP_REASONS = ("no_quote", "would_cross", "below_one_tick", "above_max_price",
                "nothing_to_cancel")

_CHUNK = 512  # arrivals drawn at a time; fixed, so the k-th arrival is the same however split
_MS = 1000.0  # ms per s: rates are configured per second, the clock counts ms


# ------------------------------------------------------------------------- configuration
def _check_fields(obj) -> None:
    """Run each field of a settings dataclass through its converter (ConfigError, a
    ValueError, or ConfigTypeError, a TypeError, naming the class, field and value)."""
    table = type(obj).__name__
    for f in dataclasses.fields(obj):
        convert = f.metadata.get("convert")
        if convert is not None:
            value = cfg.convert(table, f.name, getattr(obj, f.name), {f.name: convert})
            object.__setattr__(obj, f.name, value)


def _short_repr(obj) -> str:
    """Class name and the fields that differ from their defaults."""
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.default is dataclasses.MISSING or value != f.default:
            text = value.name if isinstance(value, IntEnum) else cfg.show(value)
            parts.append(f"{f.name}={text}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def power_law_profile(levels: int = 10, exponent: float = 0.52) -> tuple[float, ...]:
    """Weights of offsets 0 .. levels-1 proportional to (offset + 1) ** -exponent, summing to 1.

    The default has the form of Cont, Stoikov & Talreja's (2010) fit of the limit-order
    arrival rate at distance i ticks from the opposite quote, k / i ** alpha (i = offset + 1),
    with their alpha of about 0.52 (docs/flows.md says how sure that value is).

    Examples
    --------
    >>> [round(w, 3) for w in power_law_profile(3, 1.0)]
    [0.545, 0.273, 0.182]
    """
    levels = cfg.convert("power_law_profile", "levels", levels, {"levels": cfg.integer(1, 10**5)})
    exponent = cfg.convert("power_law_profile", "exponent", exponent,
                           {"exponent": cfg.number(0.0, 10.0)})
    weights = np.arange(1, levels + 1, dtype=np.float64) ** -exponent
    return tuple(float(w) for w in weights / weights.sum())


def _profile(value):
    """Relative weights of offsets 0..K-1: finite, >= 0, not all zero; a tuple of floats."""
    weights = cfg.each(cfg.number(0.0), "weight ")
    items = cfg.array(value)
    if not 1 <= len(items) <= 10**5:
        raise cfg.Bad(f"must have 1 to 100000 weights, got {len(items)}")
    items = tuple(weights(i, w) for i, w in enumerate(items))
    if not any(items):
        raise cfg.Bad("must have a weight > 0")
    return items


_SIZE_DISTS = ("fixed", "geometric", "lognormal")
_MAX_LOTS = 2**53  # sizes are drawn as floats; above 2**53 a float no longer holds every lot


@dataclass(frozen=True, repr=False)
class OrderSize:
    """Distribution of an order's size in lots (integers >= 1).

    - ``"fixed"``: every order ``mean_lots`` lots (a whole number).
    - ``"geometric"``: P(q) = p (1 - p) ** (q - 1), q >= 1, with p = 1 / ``mean_lots``: mean
      exactly ``mean_lots``.
    - ``"lognormal"``: X = ``mean_lots`` x exp(``sigma`` Z - ``sigma`` ** 2 / 2), Z standard
      normal (so E[X] = ``mean_lots``), rounded to the nearest lot and at least 1 (which raises
      the mean a little when ``mean_lots`` is small). Limit order sizes are close to
      log-normal (Maslov & Mills 2001).

    Every size is then capped at ``max_lots`` (None: at 2 ** 53).

    Examples
    --------
    >>> OrderSize(5, "fixed").draw(np.random.default_rng(0), 3)
    array([5, 5, 5])
    """

    mean_lots: float = cfg.setting(10.0, cfg.number(1.0, float(2**40)))
    dist: str = cfg.setting("geometric", cfg.choice(*_SIZE_DISTS))
    sigma: float = cfg.setting(1.0, cfg.number(0.0, 4.0))
    max_lots: int | None = cfg.setting(None, cfg.optional(cfg.integer(1, _MAX_LOTS)))

    def __post_init__(self):
        _check_fields(self)
        if self.dist == "fixed" and not float(self.mean_lots).is_integer():
            raise cfg.ConfigError(f"[OrderSize] mean_lots = {self.mean_lots!r} must be a whole "
                                  f"number of lots for dist 'fixed'")

    __repr__ = _short_repr

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` sizes in lots (int64, each in [1, max_lots]) drawn from ``rng``."""
        if self.dist == "fixed":
            lots = np.full(n, int(self.mean_lots), dtype=np.int64)
        elif self.dist == "geometric":
            lots = rng.geometric(1.0 / self.mean_lots, n).astype(np.int64)
        else:
            x = rng.lognormal(math.log(self.mean_lots) - self.sigma**2 / 2, self.sigma, n)
            lots = np.clip(np.floor(x + 0.5), 1, _MAX_LOTS).astype(np.int64)
        return np.minimum(lots, self.max_lots or _MAX_LOTS)


def _order_size(value):
    if isinstance(value, OrderSize):
        return value
    if isinstance(value, Mapping):
        try:
            return OrderSize(**value)
        except cfg.ConfigError as exc:  # name the outer field too
            raise cfg.Bad(f"is not a valid OrderSize: {exc}", type(exc)) from None
        except TypeError:  # an unknown key
            raise cfg.Bad(f"has keys OrderSize does not know; its fields are "
                          f"{', '.join(f.name for f in dataclasses.fields(OrderSize))}",
                          cfg.ConfigTypeError) from None
    raise cfg.Bad(f"must be an OrderSize or a table of its fields, got {cfg.type_name(value)}",
                  cfg.ConfigTypeError)


_seed = cfg.integer(0, INT64_MAX)
_rate = cfg.number(0.0)


@dataclass(frozen=True, repr=False)
class MarketState:
    """What the flows may react to, taken at the start ``time`` (ms) of an interval.

    ``best_bid``/``best_ask`` in ticks (None: that side is empty). ``volatility_ppm`` is the
    recent realised volatility of the mid price per square-root second, in ppm: e.g.
    sqrt(mean of squared one-second log returns over a trailing window of a minute) x 10**6
    (a quiet BTC market is of the order of 100). ``forced_sell_lots``/``forced_buy_lots`` are
    the lots of the forced (liquidation) orders sent in the previous interval, by side;
    ``own_orders`` the number of the flow's own resting orders (a runner fills it per flow).
    Every field defaults to "nothing known": no modulation.
    """

    time: int = cfg.setting(0, cfg.integer(-(2**63), INT64_MAX))
    best_bid: int | None = cfg.setting(None, cfg.optional(cfg.integer(1, INT64_MAX)))
    best_ask: int | None = cfg.setting(None, cfg.optional(cfg.integer(1, INT64_MAX)))
    volatility_ppm: float = cfg.setting(0.0, cfg.number(0.0))
    forced_sell_lots: int = cfg.setting(0, cfg.integer(0, INT64_MAX))
    forced_buy_lots: int = cfg.setting(0, cfg.integer(0, INT64_MAX))
    own_orders: int = cfg.setting(0, cfg.integer(0, INT64_MAX))

    def __post_init__(self):
        _check_fields(self)
        if self.best_bid is not None and self.best_ask is not None \
                and self.best_bid >= self.best_ask:
            raise cfg.ConfigError(f"[MarketState] best_bid = {self.best_bid} must be below "
                                  f"best_ask = {self.best_ask}")

    __repr__ = _short_repr

    @property
    def spread(self) -> int | None:
        """best_ask - best_bid in ticks; None when a side is empty."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid

    @classmethod
    def from_book(cls, book, *, time: int, owner: int | None = None, **fields) -> MarketState:
        """The state of ``book`` (anything with ``best_bid()``/``best_ask()``, such as an
        :class:`~orderbook.OrderBook`) at ``time`` ms; ``own_orders`` counts ``owner``'s resting
        orders (``book.orders_of(owner)``) when ``owner`` is given. Other fields by keyword."""
        if owner is not None:
            fields["own_orders"] = len(book.orders_of(owner))
        return cls(time=time, best_bid=book.best_bid(), best_ask=book.best_ask(), **fields)


_NOTHING_KNOWN = MarketState()


class Rates(NamedTuple):
    """Intensities of a :class:`PoissonFlow` over one interval, per second."""

    limit: float
    market: float
    cancel: float


@dataclass(frozen=True, repr=False)
class PoissonFlow:
    """Zero-intelligence order flow: independent Poisson arrivals (Smith et al. 2003; Cont,
    Stoikov & Talreja 2010).

    Over an interval starting in state s, with v = ``vol_sensitivity`` x s.volatility_ppm /
    ``vol_reference_ppm`` and w = ``spread_sensitivity`` x max(0, s.spread - 1) (0 when a side
    is empty), the intensities per second are

    - limit orders: ``limit_rate_per_s`` / ((1 + v)(1 + w)), at offset k with probability
      ``limit_profile[k]`` / sum(``limit_profile``) from the ``anchor`` quote: liquidity
      providers thin out when the market is volatile or the spread wide;
    - market orders: ``market_rate_per_s`` x (1 + v): takers hurry when prices move;
    - cancellations: (``cancel_rate_per_s`` + ``cancel_per_order_per_s`` x s.own_orders) x
      (1 + v), each of a uniformly chosen own resting order (``pick``). The per-order rate is
      Smith et al.'s: every resting order is cancelled at the same rate, so the flow's book
      settles near limit rate / per-order rate orders instead of growing without bound.

    Limit and market orders buy with probability ``buy_share``; sizes from ``limit_size`` and
    ``market_size``. Sensitivities 0 (the default) turn modulation off.

    Each kind's arrivals are a unit-rate Poisson process in operational time, mapped to the
    clock by the interval's intensity (a time change), with every arrival's marks (side,
    offset, size, pick) drawn with it from that kind's own stream. So while intensities stay
    constant the rows are the same, bit for bit, however [t0, t1) is split into calls (and
    time left out between calls loses its arrivals without shifting later ones); a change of
    intensity changes only the times from then on, and one kind's rate never moves another's.

    Examples
    --------
    >>> stream = PoissonFlow(limit_rate_per_s=20, market_rate_per_s=2, seed=1).start()
    >>> rows = stream.between(0, 1_000)
    >>> bool((np.diff(rows["time"]) >= 0).all()), int((rows["kind"] == Kind.LIMIT).sum()) > 0
    (True, True)
    """

    limit_rate_per_s: float = cfg.setting(10.0, _rate)
    market_rate_per_s: float = cfg.setting(1.0, _rate)
    cancel_rate_per_s: float = cfg.setting(0.0, _rate)
    cancel_per_order_per_s: float = cfg.setting(0.05, _rate)
    limit_profile: tuple = cfg.setting(power_law_profile(), _profile)
    anchor: Anchor = cfg.setting(Anchor.OPPOSITE, cfg.enum_name(Anchor))
    buy_share: float = cfg.setting(0.5, cfg.number(0.0, 1.0))
    limit_size: OrderSize = cfg.setting(OrderSize(), _order_size)
    market_size: OrderSize = cfg.setting(OrderSize(), _order_size)
    vol_sensitivity: float = cfg.setting(0.0, cfg.number(0.0))
    spread_sensitivity: float = cfg.setting(0.0, cfg.number(0.0))
    vol_reference_ppm: float = cfg.setting(100.0, cfg.number(0.0, lo_open=True))
    seed: int = cfg.setting(0, _seed)

    def __post_init__(self):
        _check_fields(self)

    __repr__ = _short_repr

    def rates(self, state: MarketState | None = None) -> Rates:
        """The intensities per second over an interval starting in ``state`` (class docstring).

        Examples
        --------
        >>> flow = PoissonFlow(limit_rate_per_s=10, market_rate_per_s=1, vol_sensitivity=1)
        >>> flow.rates(MarketState(volatility_ppm=100))
        Rates(limit=5.0, market=2.0, cancel=0.0)
        """
        state = state if state is not None else MarketState()
        v = self.vol_sensitivity * state.volatility_ppm / self.vol_reference_ppm
        spread = state.spread
        w = self.spread_sensitivity * max(0, spread - 1) if spread is not None else 0.0
        cancel = self.cancel_rate_per_s + self.cancel_per_order_per_s * state.own_orders
        return Rates(self.limit_rate_per_s / ((1 + v) * (1 + w)),
                     self.market_rate_per_s * (1 + v), cancel * (1 + v))

    def start(self, seed: int | None = None) -> PoissonStream:
        """A fresh stream of this flow, seeded with ``seed`` (None: the flow's ``seed``)."""
        return PoissonStream(self, self.seed if seed is None else seed)


@dataclass(frozen=True, repr=False)
class HawkesFlow:
    """Self-exciting market orders on one ``side`` (Hawkes 1971; Bacry, Mastromatteo & Muzy
    2015): each order raises the intensity, so selling begets selling.

    The intensity per second at time t is

        lambda(t) = mu + sum over past orders i of alpha x exp(-beta (t - t_i))
                       + sum over past intervals j of J_j x exp(-beta (t - t0_j))

    with mu = ``baseline_per_s`` x (1 + ``vol_sensitivity`` x volatility_ppm /
    ``vol_reference_ppm``) taken at the start of each interval, alpha = ``alpha_per_s`` (the
    jump per order), beta = ``beta_per_s`` (the decay rate: a memory of 1/beta s) and J_j =
    ``excite_per_forced_lot`` x the forced lots on ``side`` of the interval before interval j
    (``MarketState.forced_sell_lots`` for a SELL flow), applied at its start t0_j. Each order
    triggers alpha / beta further orders on average (the branching ratio), which must be
    below 1; then the long-run rate without forced orders is mu / (1 - alpha / beta).

    Simulated exactly, without thinning, by Dassios & Zhao's (2013) method for exponential
    kernels; the intensity carries over from one call to the next. While mu stays the same and
    no forced lots arrive the rows are the same, bit for bit, however the horizon is split into
    calls; a new mu or forced lots redraw the next arrival from the state at t0, which the
    Markov property of the exponential kernel makes exact.

    Examples
    --------
    >>> flow = HawkesFlow(baseline_per_s=1.0, alpha_per_s=0.5, beta_per_s=1.0)
    >>> flow.branching_ratio, flow.mean_rate_per_s
    (0.5, 2.0)
    """

    baseline_per_s: float = cfg.setting(0.5, _rate)
    alpha_per_s: float = cfg.setting(0.6, _rate)
    beta_per_s: float = cfg.setting(1.0, cfg.number(0.0, lo_open=True))
    side: Side = cfg.setting(Side.SELL, cfg.order_side)
    size: OrderSize = cfg.setting(OrderSize(), _order_size)
    excite_per_forced_lot: float = cfg.setting(0.0, _rate)
    vol_sensitivity: float = cfg.setting(0.0, cfg.number(0.0))
    vol_reference_ppm: float = cfg.setting(100.0, cfg.number(0.0, lo_open=True))
    seed: int = cfg.setting(0, _seed)

    def __post_init__(self):
        _check_fields(self)
        if self.alpha_per_s >= self.beta_per_s:
            raise cfg.ConfigError(
                f"[HawkesFlow] branching ratio alpha_per_s / beta_per_s = {self.alpha_per_s!r} "
                f"/ {self.beta_per_s!r} = {self.branching_ratio:.6g} must be below 1 (at 1 or "
                f"more the process explodes: each order triggers at least one more)")

    __repr__ = _short_repr

    @property
    def branching_ratio(self) -> float:
        """alpha / beta: the mean number of orders each order triggers directly."""
        return self.alpha_per_s / self.beta_per_s

    @property
    def mean_rate_per_s(self) -> float:
        """Long-run orders per second with the baseline unmodulated and no forced lots."""
        return self.baseline_per_s / (1.0 - self.branching_ratio)

    def baseline(self, state: MarketState | None = None) -> float:
        """mu per second over an interval starting in ``state``."""
        vol = state.volatility_ppm if state is not None else 0.0
        return self.baseline_per_s * (1 + self.vol_sensitivity * vol / self.vol_reference_ppm)

    def start(self, seed: int | None = None) -> HawkesStream:
        """A fresh stream of this flow, seeded with ``seed`` (None: the flow's ``seed``)."""
        return HawkesStream(self, self.seed if seed is None else seed)


# ------------------------------------------------------------------------------- streams
def _as_time(name: str, value) -> int:
    if type(value) is int and -(2**63) <= value <= INT64_MAX:
        return value  # the common case, checked inline: between() runs once per interval
    return cfg.convert("between", name, value, {name: cfg.integer(-(2**63), INT64_MAX)})


def _rngs(seed: int, tag: int, n: int) -> list[np.random.Generator]:
    # The model's tag (and a Hawkes flow's side) enter the seed, so two flows of different
    # kinds, or a buy and a sell Hawkes flow, never draw the same numbers from one seed.
    children = np.random.SeedSequence([seed, tag]).spawn(n)
    return [np.random.Generator(np.random.PCG64(child)) for child in children]


class FlowStream:
    """A running flow: :meth:`between` hands out its arrivals interval by interval, in order."""

    def __init__(self, flow):
        self.flow = flow
        #: end (ms) of the last interval asked for; None before the first call
        self.time_ms: int | None = None

    def between(self, t0_ms: int, t1_ms: int, state: MarketState | None = None) -> np.ndarray:
        """The arrivals in [t0_ms, t1_ms), a :data:`FLOW_DTYPE` array sorted by time.

        ``state`` is the market at t0_ms (None: nothing known, no modulation). Intervals must
        come in time order: t0_ms >= the previous call's t1_ms (arrivals in a gap between calls
        are drawn and dropped). The first call's t0_ms starts the flow. Deterministic given
        the seed and the sequence of calls.
        """
        t0, t1 = _as_time("t0_ms", t0_ms), _as_time("t1_ms", t1_ms)
        if t1 < t0:
            raise ValueError(f"between: t1_ms = {t1} must be >= t0_ms = {t0}")
        if self.time_ms is not None and t0 < self.time_ms:
            raise ValueError(f"between: t0_ms = {t0} is before the end of the previous "
                             f"interval, {self.time_ms} ms: intervals must come in time order")
        if state is None:
            state = _NOTHING_KNOWN
        elif not isinstance(state, MarketState):
            raise TypeError(f"between: state must be a MarketState or None, got "
                            f"{type(state).__name__}")
        rows = self._between(t0, t1, state)
        self.time_ms = t1
        return rows

    def _between(self, t0: int, t1: int, state: MarketState) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        at = "not started" if self.time_ms is None else f"at {self.time_ms} ms"
        return f"{type(self).__name__}({self.flow!r}, {at})"


def _join(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate FLOW_DTYPE arrays (np.concatenate promotes structured dtypes field by field,
    which profiling showed to be over a quarter of a short interval's cost)."""
    out = np.zeros(sum(len(part) for part in parts), FLOW_DTYPE)
    i = 0
    for part in parts:
        out[i:i + len(part)] = part
        i += len(part)
    return out


class _Arrivals:
    """One kind's arrivals: a unit-rate Poisson process in operational time tau, mapped to the
    clock by a piecewise-constant rate, with marks drawn alongside in chunks of fixed size."""

    def __init__(self, rng: np.random.Generator, marks):
        self.rng, self.marks = rng, marks     # marks(rng, n) -> FLOW_DTYPE rows without times
        self.tau = np.empty(0)                # operational times of the buffered arrivals
        self.clock = np.empty(0)              # their clock times (ms) under the anchor below
        self.rows = np.empty(0, FLOW_DTYPE)
        self.tau_drawn = 0.0
        self.rate = 0.0                       # arrivals per ms since the anchor
        self.t_anchor = self.tau_anchor = None
        self.t_end: int | None = None         # end of the last interval taken

    def _reclock(self) -> None:
        if self.rate > 0.0:
            with np.errstate(over="ignore"):  # a rate so small that the arrival is never: inf
                self.clock = self.t_anchor + (self.tau - self.tau_anchor) / self.rate

    def _draw(self) -> None:
        tau = self.tau_drawn + np.cumsum(self.rng.standard_exponential(_CHUNK))
        self.tau_drawn = float(tau[-1])
        self.tau = np.concatenate([self.tau, tau])
        self.rows = _join([self.rows, self.marks(self.rng, _CHUNK)])
        self._reclock()

    def _until(self, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Remove and return (clock times, rows) of the arrivals before ``t_end``."""
        if self.rate == 0.0:
            return self.clock[:0], self.rows[:0]
        times, rows = [], []
        while True:
            if not len(self.tau):
                self._draw()
            n = int(np.searchsorted(self.clock, t_end, side="left"))
            times.append(self.clock[:n])
            rows.append(self.rows[:n])
            self.tau, self.clock, self.rows = self.tau[n:], self.clock[n:], self.rows[n:]
            if len(self.tau):
                if len(times) == 1:
                    return times[0], rows[0]
                return np.concatenate(times), _join(rows)

    def take(self, t0: int, t1: int, rate_per_ms: float) -> tuple[np.ndarray, np.ndarray]:
        if self.t_anchor is None:
            self.t_anchor, self.tau_anchor = float(t0), 0.0
        elif t0 > self.t_end:
            self._until(t0)  # a gap since the last call: its arrivals are dropped
        if rate_per_ms != self.rate:
            # re-anchor only on a change, so a constant rate keeps the same clock formula
            self.tau_anchor += self.rate * (t0 - self.t_anchor)
            self.t_anchor, self.rate = float(t0), rate_per_ms
            self._reclock()
        self.t_end = t1
        return self._until(t1)


def _limit_marks(flow: PoissonFlow, cum: np.ndarray, rng, n: int) -> np.ndarray:
    rows = np.zeros(n, FLOW_DTYPE)
    rows["kind"], rows["anchor"] = LIMIT, int(flow.anchor)
    rows["side"] = np.where(rng.random(n) < flow.buy_share, BUY, SELL)
    # searchsorted on the cumulative weights: P(offset k) = weight k / total
    rows["offset"] = np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)
    rows["qty"] = flow.limit_size.draw(rng, n)
    return rows


def _market_marks(flow: PoissonFlow, rng, n: int) -> np.ndarray:
    rows = np.zeros(n, FLOW_DTYPE)
    rows["kind"] = MARKET
    rows["side"] = np.where(rng.random(n) < flow.buy_share, BUY, SELL)
    rows["qty"] = flow.market_size.draw(rng, n)
    return rows


def _cancel_marks(rng, n: int) -> np.ndarray:
    rows = np.zeros(n, FLOW_DTYPE)
    rows["kind"], rows["pick"] = CANCEL, rng.random(n)
    return rows


class PoissonStream(FlowStream):
    """The running state of a :class:`PoissonFlow` (from :meth:`PoissonFlow.start`)."""

    def __init__(self, flow: PoissonFlow, seed: int):
        super().__init__(flow)
        seed = cfg.convert("start", "seed", seed, {"seed": _seed})
        limit_rng, market_rng, cancel_rng = _rngs(seed, 1, 3)
        cum = np.cumsum(flow.limit_profile)
        cum /= cum[-1]
        # module-level functions (not closures), so that a stream pickles
        self._kinds = [_Arrivals(limit_rng, partial(_limit_marks, flow, cum)),
                       _Arrivals(market_rng, partial(_market_marks, flow)),
                       _Arrivals(cancel_rng, _cancel_marks)]

    def _between(self, t0, t1, state):
        parts = [arrivals.take(t0, t1, rate / _MS)
                 for arrivals, rate in zip(self._kinds, self.flow.rates(state), strict=True)]
        clock = np.concatenate([c for c, _ in parts])
        rows = _join([r for _, r in parts])
        order = np.argsort(clock, kind="stable")
        rows = rows[order]
        # floor to the ms; the clip only absorbs rounding of a re-anchored clock at t0
        rows["time"] = np.clip(np.floor(clock[order]), t0, max(t0, t1 - 1))
        return rows


class HawkesStream(FlowStream):
    """The running state of a :class:`HawkesFlow` (from :meth:`HawkesFlow.start`)."""

    def __init__(self, flow: HawkesFlow, seed: int):
        super().__init__(flow)
        seed = cfg.convert("start", "seed", seed, {"seed": _seed})
        self._u_rng, self._size_rng = _rngs(seed, 2 + (flow.side == SELL), 2)
        self._u: list[float] = []      # uniforms in (0, 1], two per candidate arrival
        self._sizes = np.empty(0, np.int64)
        self._t = 0.0                  # clock (ms) of the state below
        self._excess = 0.0             # lambda - mu at self._t, per ms
        self._mu: float | None = None  # per ms
        self._next: float | None = None  # the next arrival's clock once drawn
        self._beta, self._alpha = flow.beta_per_s / _MS, flow.alpha_per_s / _MS

    @property
    def intensity_per_s(self) -> float:
        """lambda at the end of the last interval, per second (the baseline before any)."""
        if self._mu is None:
            return self.flow.baseline()
        decay = math.exp(-self._beta * (self.time_ms - self._t))
        return (self._mu + self._excess * decay) * _MS

    def _uniform(self) -> float:
        if not self._u:
            # 1 - U is in (0, 1], so its log is finite; reversed so pop() takes them in order
            self._u = (1.0 - self._u_rng.random(2 * _CHUNK))[::-1].tolist()
        return self._u.pop()

    def _gap(self) -> float:
        """ms to the next arrival from the state (Dassios & Zhao 2013, Algorithm 1)."""
        u1, u2 = self._uniform(), self._uniform()
        s1 = s2 = math.inf
        if self._excess > 0.0:
            d = 1.0 + self._beta * math.log(u1) / self._excess
            if d > 0.0:  # else the excited part dies out before it fires again
                s1 = -math.log(d) / self._beta
        if self._mu > 0.0:
            s2 = -math.log(u2) / self._mu
        return min(s1, s2)

    def _run(self, t_end: float) -> list[float]:
        """Clock times of the arrivals before ``t_end``, updating the state past each."""
        times = []
        while True:
            if self._next is None:
                self._next = self._t + self._gap()
            if not self._next < t_end:
                return times
            t = self._next
            self._excess = self._excess * math.exp(-self._beta * (t - self._t)) + self._alpha
            self._t, self._next = t, None
            times.append(t)

    def _take_sizes(self, n: int) -> np.ndarray:
        while len(self._sizes) < n:
            self._sizes = np.concatenate([self._sizes, self.flow.size.draw(self._size_rng,
                                                                            _CHUNK)])
        sizes, self._sizes = self._sizes[:n], self._sizes[n:]
        return sizes

    def _between(self, t0, t1, state):
        flow = self.flow
        mu = flow.baseline(state) / _MS
        if self._mu is None:
            self._t, self._mu = float(t0), mu
        self._take_sizes(len(self._run(t0)))  # a gap since the last call: dropped
        forced = state.forced_sell_lots if flow.side == SELL else state.forced_buy_lots
        jump = flow.excite_per_forced_lot * forced / _MS
        if mu != self._mu or jump > 0.0:
            # move the state to t0 and draw the next arrival afresh from there
            self._excess = self._excess * math.exp(-self._beta * (t0 - self._t)) + jump
            self._t, self._mu, self._next = float(t0), mu, None
        clock = np.array(self._run(t1), dtype=np.float64)
        rows = np.zeros(len(clock), FLOW_DTYPE)
        rows["time"] = np.clip(np.floor(clock), t0, max(t0, t1 - 1))
        rows["kind"], rows["side"] = MARKET, int(flow.side)
        rows["qty"] = self._take_sizes(len(clock))
        return rows


# ----------------------------------------------------------------------------- resolving
def _price(side: int, offset: int, anchor: int, best_bid, best_ask) -> tuple[int | None, str]:
    if side == BUY:
        ref = best_bid if anchor == Anchor.SAME else (None if best_ask is None else best_ask - 1)
        price = None if ref is None else ref - offset
        crosses = price is not None and best_ask is not None and price >= best_ask
    else:
        ref = best_ask if anchor == Anchor.SAME else (None if best_bid is None else best_bid + 1)
        price = None if ref is None else ref + offset
        crosses = price is not None and best_bid is not None and price <= best_bid
    if price is None:
        return None, "no_quote"
    if crosses:
        return None, "would_cross"
    if price < 1:
        return None, "below_one_tick"
    if price > INT64_MAX:
        return None, "above_max_price"
    return price, ""


def _quote(name: str, value) -> int | None:
    return cfg.convert("to_messages", name, value, {name: cfg.optional(cfg.integer(1, INT64_MAX))})


def limit_price(row, best_bid: int | None, best_ask: int | None) -> int | None:
    """The price in ticks of a LIMIT ``row`` (a :data:`FLOW_DTYPE` record, or any mapping with
    ``side``, ``offset`` and ``anchor``) against the book's best bid and ask now (ticks, None
    for an empty side); None when it cannot be placed: the anchor quote is missing, or the
    price would cross the opposite best, fall below 1 tick or pass INT64_MAX. A live runner
    calls this for each row just before sending it, as the book moves.

    Examples
    --------
    >>> row = {"side": Side.BUY, "offset": 2, "anchor": Anchor.SAME}
    >>> limit_price(row, 100, 104), limit_price({**row, "anchor": Anchor.OPPOSITE}, 100, 104)
    (98, 101)
    >>> row = {"side": Side.SELL, "offset": -3, "anchor": Anchor.SAME}  # inside the spread
    >>> limit_price(row, 100, 104), limit_price({**row, "offset": -4}, 100, 104)
    (101, None)
    """
    return _price(int(row["side"]), int(row["offset"]), int(row["anchor"]),
                  _quote("best_bid", best_bid), _quote("best_ask", best_ask))[0]


class Resolved(NamedTuple):
    """What :func:`to_messages` made of a batch of flow rows."""

    #: MESSAGE_DTYPE rows, in the order of the flow rows they came from
    messages: np.ndarray
    #: index in the input of the flow row each message came from (int64)
    source: np.ndarray
    #: the FLOW_DTYPE rows that could not be resolved
    skipped: np.ndarray
    #: {reason: rows skipped for it}, reasons from SKIP_REASONS
    reasons: dict
    #: the first order id not used
    next_order_id: int
    #: the owner's live orders left for later cancels (those cancelled here removed)
    live_orders: tuple


def to_messages(rows: np.ndarray, *, best_bid: int | None, best_ask: int | None,
                next_order_id: int, owner: int, live_orders: Iterable[int] = ()) -> Resolved:
    """Turn :data:`FLOW_DTYPE` rows into :data:`~orderbook.MESSAGE_DTYPE` messages against one
    book state.

    LIMIT rows are priced by :func:`limit_price` against ``best_bid``/``best_ask`` (ticks, None
    for an empty side); MARKET rows need no price; each LIMIT and MARKET row gets the next id
    from ``next_order_id`` on, and ``owner``. A CANCEL row cancels ``live_orders[floor(pick x
    count)]`` among the owner's ``live_orders`` (ids, e.g. ``book.orders_of(owner)``) not yet
    cancelled in this call; the orders this call creates are not candidates. Rows that cannot
    be resolved are skipped, never given an invented price, and returned with the reasons.

    Every row is priced against the same quotes, so this suits a short interval sent with one
    :meth:`OrderBook.process` call; an order filled earlier in the same batch makes a later
    CANCEL of it a REJECTED (UNKNOWN_ORDER) event. A runner that sends rows one at a time
    prices each against the live book instead (:func:`limit_price`).

    Examples
    --------
    >>> rows = np.zeros(3, FLOW_DTYPE)
    >>> rows["kind"] = [Kind.LIMIT, Kind.LIMIT, Kind.MARKET]
    >>> rows["side"], rows["offset"], rows["qty"] = [1, -1, -1], [2, 0, 0], [5, 5, 7]
    >>> r = to_messages(rows, best_bid=None, best_ask=110, next_order_id=1, owner=9)
    >>> r.messages[["order_id", "price", "qty", "kind"]].tolist(), r.reasons
    ([(1, 110, 5, 1), (2, 0, 7, 2)], {'no_quote': 1})
    """
    if not isinstance(rows, np.ndarray) or rows.dtype != FLOW_DTYPE:
        raise TypeError(f"to_messages: rows must be a FLOW_DTYPE array, got "
                        f"{getattr(rows, 'dtype', type(rows).__name__)}")
    best_bid, best_ask = _quote("best_bid", best_bid), _quote("best_ask", best_ask)
    if best_bid is not None and best_ask is not None and best_bid >= best_ask:
        raise ValueError(f"to_messages: best_bid = {best_bid} must be below best_ask = "
                         f"{best_ask}")
    next_id = cfg.convert("to_messages", "next_order_id", next_order_id,
                          {"next_order_id": cfg.integer(-(2**63), INT64_MAX)})
    owner = cfg.convert("to_messages", "owner", owner,
                        {"owner": cfg.integer(-(2**63), INT64_MAX)})
    live_ids = np.asarray(list(live_orders))
    if live_ids.size and (live_ids.ndim != 1 or live_ids.dtype.kind not in "iu"
                          or int(live_ids.max()) > INT64_MAX):
        raise TypeError(f"to_messages: live_orders must be int64 order ids, got "
                        f"{cfg.show(live_ids.tolist())}")
    live = live_ids.tolist()
    new_orders = int(np.isin(rows["kind"], (LIMIT, MARKET)).sum())
    if next_id + new_orders - 1 > INT64_MAX:
        raise ValueError(f"to_messages: next_order_id = {next_id} leaves no room for "
                         f"{new_orders} new ids below INT64_MAX")
    out, source, skipped, reasons = [], [], [], Counter()
    for i, (kind, side, offset, qty, pick, anchor) in enumerate(zip(
            rows["kind"].tolist(), rows["side"].tolist(), rows["offset"].tolist(),
            rows["qty"].tolist(), rows["pick"].tolist(), rows["anchor"].tolist(), strict=True)):
        if kind == LIMIT:
            price, reason = _price(side, offset, anchor, best_bid, best_ask)
            if price is not None:
                out.append((next_id, owner, price, 0, qty, LIMIT, side))
                next_id += 1
        elif kind == MARKET:
            reason = ""
            out.append((next_id, owner, 0, 0, qty, MARKET, side))
            next_id += 1
        elif kind == CANCEL:
            reason = "" if live else "nothing_to_cancel"
            if live:
                oid = live.pop(min(int(pick * len(live)), len(live) - 1))
                out.append((oid, owner, 0, 0, 0, CANCEL, 0))
        else:
            raise ValueError(f"to_messages: rows[{i}].kind = {kind} is not LIMIT ({LIMIT}), "
                             f"MARKET ({MARKET}) or CANCEL ({CANCEL})")
        if reason:
            skipped.append(i)
            reasons[reason] += 1
        else:
            source.append(i)
    messages = np.zeros(len(out), dtype=MESSAGE_DTYPE)  # zeroed padding: stable bytes
    messages[:] = out
    return Resolved(messages, np.array(source, dtype=np.int64),
                    rows[skipped], dict(reasons), next_id, tuple(live))


# ------------------------------------------------------------------------ benchmark streams
#: The regimes of :func:`benchmark_stream`.
BENCHMARK_REGIMES = ("mixed", "deep", "crash", "static", "normal", "swing25", "swing40", "flash")

# target resting orders, mean distance of a limit from the mid (ticks), mid volatility per
# message (ticks), total mid drift over the run (ticks), share of crossing limits, mean market
# order size (lots), share of sell market orders, and action weights (limit, cancel, amend,
# market, ioc, stop) when the book is below / above its target size.
_REGIMES = {
    "mixed": dict(target=10_000, spread=30.0, vol=0.05, drift=0.0, cross=0.03, mkt_qty=150,
                  mkt_sell=0.5, below=(60, 20, 10, 5, 5, 0), above=(40, 40, 10, 5, 5, 0)),
    "deep": dict(target=40_000, spread=150.0, vol=0.02, drift=0.0, cross=0.0, mkt_qty=60,
                 mkt_sell=0.5, below=(70, 20, 9, 0.5, 0.5, 0), above=(45, 45, 9, 0.5, 0.5, 0)),
    "crash": dict(target=400, spread=20.0, vol=0.3, drift=-40_000.0, cross=0.10, mkt_qty=150,
                  mkt_sell=0.75, below=(80, 5, 5, 5, 3, 2), above=(50, 25, 5, 10, 8, 2)),
    # Shaped like the regimes of public matching-engine benchmarks: a static deep book (a fixed
    # mid, limits within a few ticks of it, so thousands of orders share a level), a random
    # walk, swings of +-25 and +-40 ticks (a sine of period ``period`` messages on the walk),
    # and a flash crash (the mid falls ``flash`` ticks over ``fall`` of the run from ``at``,
    # and comes back over ``recover``).
    "static": dict(target=50_000, spread=2.0, vol=0.0, drift=0.0, cross=0.0, mkt_qty=80,
                   mkt_sell=0.5, below=(70, 20, 6, 2, 2, 0), above=(48, 46, 2, 2, 2, 0)),
    "normal": dict(target=5_000, spread=8.0, vol=0.3, drift=0.0, cross=0.05, mkt_qty=60,
                   mkt_sell=0.5, below=(55, 25, 10, 5, 5, 0), above=(40, 40, 10, 5, 5, 0)),
    "swing25": dict(target=3_000, spread=6.0, vol=0.05, drift=0.0, cross=0.05, mkt_qty=60,
                    mkt_sell=0.5, below=(60, 20, 10, 5, 5, 0), above=(42, 38, 10, 5, 5, 0),
                    swing=25.0, period=10_000),
    "swing40": dict(target=3_000, spread=6.0, vol=0.05, drift=0.0, cross=0.05, mkt_qty=60,
                    mkt_sell=0.5, below=(60, 20, 10, 5, 5, 0), above=(42, 38, 10, 5, 5, 0),
                    swing=40.0, period=10_000),
    "flash": dict(target=2_000, spread=10.0, vol=0.1, drift=0.0, cross=0.08, mkt_qty=120,
                  mkt_sell=0.7, below=(70, 15, 5, 5, 3, 2), above=(45, 35, 5, 8, 5, 2),
                  flash=3_000.0, at=0.4, fall=0.05, recover=0.15),
}


class _Ids:
    """A set of ids with O(1) add, remove and uniform random pick."""

    def __init__(self):
        self.items, self.pos = [], {}

    def add(self, x):
        if x not in self.pos:
            self.pos[x] = len(self.items)
            self.items.append(x)

    def discard(self, x):
        i = self.pos.pop(x, None)
        if i is not None:
            last = self.items.pop()
            if last != x:
                self.items[i] = last
                self.pos[last] = i

    def pick(self, u):
        return self.items[int(u * len(self.items))]


def benchmark_stream(regime: str, n: int, seed: int) -> tuple[np.ndarray, dict]:
    """The benchmarks' stream of ``n`` MESSAGE_DTYPE messages in ``regime``, and a summary.

    Regimes (deterministic from ``seed`` through ``np.random.default_rng(seed)``; mid near
    1,000,000 ticks; limit sizes log-normal around 20 lots, market sizes exponential):

    - ``"mixed"``: limits around a slowly moving mid (mean distance 30 ticks, 3% crossing),
      cancels and amends of live orders, market and IOC orders; about 10,000 resting orders
      in steady state for long streams.
    - ``"deep"``: about 40,000 resting orders over a wide price range (mean distance 150
      ticks), few trades.
    - ``"crash"``: the mid walks down ~40,000 ticks over the run; a thin book (~400 orders),
      heavy market selling (75% of market orders) that sweeps many levels, and sell stops
      that trigger in cascades.
    - ``"static"``: a fixed mid and about 50,000 resting orders within a few ticks of it, so
      thousands of orders queue on one level; mostly adds and cancels.
    - ``"normal"``: a random walk (0.3 ticks per message); trades keep the book to about 600
      resting orders.
    - ``"swing25"``, ``"swing40"``: the mid swings +-25 / +-40 ticks (a sine of period 10,000
      messages) over a slow walk; each swing sweeps the book (about 700 / 400 resting orders).
    - ``"flash"``: a flash crash: the mid falls 3,000 ticks over 5% of the run from 40% of
      it, then recovers over 15%; heavy selling and sell stops (about 1,500 resting orders).

    The stream is built by simulating it once, message by message, against an
    :class:`~orderbook.OrderBook`, tracking exactly which ids are live: every cancel and amend
    names a live order, new ids are fresh, and per-call replay never raises. The summary
    holds the message mix (``mix``), resting orders (``resting_mean`` over the second half,
    ``resting_final``), ``trades``, ``rejected`` and the mid at both ends (``mid_start``,
    ``mid_end``, ticks). Cost: O(n) book calls, about 1 s per 100,000 messages.

    Examples
    --------
    >>> msgs, info = benchmark_stream("mixed", 200, seed=1)
    >>> len(msgs), msgs.dtype == MESSAGE_DTYPE, info["rejected"]
    (200, True, 0)
    """
    if regime not in _REGIMES:
        raise ValueError(f"benchmark_stream: regime = {regime!r} is not one of "
                         f"{', '.join(BENCHMARK_REGIMES)}")
    n = cfg.convert("benchmark_stream", "n", n, {"n": cfg.integer(1, 10**9)})
    seed = cfg.convert("benchmark_stream", "seed", seed, {"seed": _seed})
    trade, stop_triggered = int(EventKind.TRADE), int(EventKind.STOP_TRIGGERED)
    ioc, amend, stop_market = int(Kind.IOC), int(Kind.AMEND), int(Kind.STOP_MARKET)
    p = _REGIMES[regime]
    rng = np.random.default_rng(seed)
    u_act, u_side, u_pick, u_aux = rng.random((4, n))
    offs = rng.exponential(p["spread"], n)
    qtys = np.maximum(1, rng.lognormal(3.0, 0.8, n)).astype(np.int64)
    mkt = np.maximum(1, rng.exponential(p["mkt_qty"], n)).astype(np.int64)
    owners = rng.integers(1, 1000, n)
    fair = 1_000_000 + np.cumsum(rng.normal(p["drift"] / n, p["vol"], n))
    # (no draws below: the first regimes' streams stay as they were)
    step = np.arange(n)
    if "swing" in p:
        fair = fair + p["swing"] * np.sin(2 * np.pi * step / p["period"])
    if "flash" in p:
        start, fall, back = p["at"] * n, p["fall"] * n, p["recover"] * n
        down = np.clip((step - start) / fall, 0.0, 1.0)
        up = np.clip((step - start - fall) / back, 0.0, 1.0)
        fair = fair - p["flash"] * (down - up)
    cum_below = np.cumsum(p["below"]) / sum(p["below"])
    cum_above = np.cumsum(p["above"]) / sum(p["above"])
    book, live, stops = OrderBook(), _Ids(), _Ids()
    rows, next_id, sizes = [], 1, []
    for i in range(n):
        mid = int(round(fair[i]))
        side = BUY if u_side[i] < 0.5 else SELL
        weights = cum_below if len(live.items) < p["target"] else cum_above
        action = int(np.searchsorted(weights, u_act[i], side="right"))
        if action in (1, 2) and not live.items:
            action = 0
        oid, owner = next_id, int(owners[i])
        if action == 0:    # limit: usually passive at mid -/+ offset, sometimes marketable
            off = 1 + int(offs[i]) if u_aux[i] >= p["cross"] else -int(offs[i] % 5)
            price = max(1, mid - side * off)
            ev = book.limit(oid, side, price, int(qtys[i]), owner)
            row = (oid, owner, price, 0, int(qtys[i]), LIMIT, side)
        elif action == 1:  # cancel a live order (sometimes an armed stop)
            pool = stops if stops.items and u_aux[i] < 0.2 else live
            oid = pool.pick(u_pick[i])
            ev = book.cancel(oid)
            pool.discard(oid)
            row = (oid, 0, 0, 0, 0, CANCEL, 0)
        elif action == 2:  # amend a live order: shrink in place, or move it a few ticks
            oid = live.pick(u_pick[i])
            info = book.order(oid)
            if u_aux[i] < 0.5 and info.qty > 1:
                price, qty = info.price, max(1, info.qty // 2)
            else:
                price = max(1, info.price + info.side * int(u_aux[i] * 12 - 8))
                qty = int(qtys[i])
            ev = book.amend(oid, price, qty)
            row = (oid, 0, price, 0, qty, amend, 0)
        elif action == 3:  # market order
            side = SELL if u_side[i] < p["mkt_sell"] else BUY
            ev = book.market(oid, side, int(mkt[i]), owner)
            row = (oid, owner, 0, 0, int(mkt[i]), MARKET, side)
        elif action == 4:  # IOC a few ticks through the mid
            price = max(1, mid + side * int(u_aux[i] * 6))
            ev = book.ioc(oid, side, price, int(mkt[i]), owner)
            row = (oid, owner, price, 0, int(mkt[i]), ioc, side)
        else:              # sell stop-market below the mid (liquidation)
            stop = max(1, mid - 1 - int(offs[i] * 3))
            ev = book.stop_market(oid, SELL, stop, int(qtys[i]), owner)
            row = (oid, owner, 0, stop, int(qtys[i]), stop_market, SELL)
        if action != 1 and action != 2:
            next_id += 1
        rows.append(row)
        for e in ev:       # keep the live sets exact: filled makers and triggered stops leave
            if e[2] == trade and e[7] not in book:
                live.discard(e[7])
            elif e[2] == stop_triggered:
                stops.discard(e[5])
        if oid in book:
            (stops if action == 5 else live).add(oid)
        elif action == 2:
            live.discard(oid)
        sizes.append(len(live.items))
    msgs = np.zeros(n, dtype=MESSAGE_DTYPE)  # zeroed: the aligned dtype's padding too, so
    msgs[:] = rows                           # the bytes are as deterministic as the fields
    events = OrderBook().process(msgs)
    kinds = Counter(Kind(k).name.lower() for k in msgs["kind"])
    summary = dict(mix=", ".join(f"{k} {v / n:.0%}" for k, v in kinds.most_common()),
                   resting_mean=int(np.mean(sizes[n // 2:])), resting_final=book.n_orders,
                   trades=int((events["kind"] == trade).sum()),
                   rejected=int((events["kind"] == int(EventKind.REJECTED)).sum()),
                   mid_start=int(fair[0]), mid_end=int(fair[-1]))
    return msgs, summary
