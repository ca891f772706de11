"""Public enums, record layouts and the Event type shared by the engine and the reference.

Every number that means something (a side, an order kind, an event kind, a reason code, a margin
rule, a reserved owner id) is defined here once, as an ``IntEnum`` or a constant, and so is every
set of kinds the engines classify by; the C layouts and predicates in ``_types.pxd`` use the same
values, and the compiled modules check at import time that both agree member by member, field
offset by field offset and predicate by predicate.

Units: prices in integer ticks, quantities in integer lots, ids are caller-chosen int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Side", "Kind", "EventKind", "Reason", "SelfTradePrevention", "AmendRule",
    "MESSAGE_DTYPE", "EVENT_DTYPE", "L3_DTYPE", "STOP_DTYPE",
    "Event", "OrderInfo", "L2", "Impact", "INT64_MAX", "INT64_MIN",
    "events_to_array", "array_to_events", "messages",
    "INSURANCE_FUND", "NO_COUNTERPARTY", "MarkRule", "Sizing", "LimitRule", "Deficit",
    "AdlRanking", "Trigger", "MarginBasis", "CloseOrder", "Settlement", "ForcedKind",
    "FUNDING_BASIS_BOUND", "FUNDING_RATE_SCALE", "FUNDING_DTYPE", "FundingSettlement",
    "fair_price", "FORCED_DTYPE",
    "AccountInfo", "PositionInfo", "HoldingInfo", "Asset", "Instrument", "PPM",
    "FUND_HISTORY_DTYPE", "NEW_ORDER_KINDS",
    "STOP_KINDS", "PRICED_KINDS",
    "RESTING_KINDS", "IMMEDIATE_KINDS", "CALLER_ERRORS", "ENGINE_REFUSALS", "BatchResult",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: Live orders (resting and armed stops) one book holds; a new order that could rest beyond
#: them is refused with Reason.BOOK_FULL (docs/semantics.md, validation step 7).
MAX_LIVE_ORDERS = 2**28


class Side(IntEnum):
    """Side of an order: +1 buys (bid), -1 sells (ask); the sign of the position change."""

    BUY = 1
    SELL = -1


class Kind(IntEnum):
    """What a message asks for (``MESSAGE_DTYPE['kind']``)."""

    LIMIT = 1        #: good-till-cancel limit order; the residual rests
    MARKET = 2       #: no price limit; the residual is cancelled
    IOC = 3          #: immediate-or-cancel limit order
    FOK = 4          #: fill-or-kill limit order: all of it or nothing, decided before any fill
    POST_ONLY = 5    #: limit order rejected if it would take liquidity
    STOP_MARKET = 6  #: market order armed until the last trade price reaches ``stop_price``
    STOP_LIMIT = 7   #: limit order at ``price`` armed until the last trade reaches ``stop_price``
    CANCEL = 8       #: cancel a resting order or an armed stop by ``order_id``
    AMEND = 9        #: change a resting order's ``price`` and/or remaining ``qty``


class EventKind(IntEnum):
    """What an event reports (``EVENT_DTYPE['kind']``)."""

    ACCEPTED = 1
    TRADE = 2
    CANCELLED = 3
    AMENDED = 4
    REJECTED = 5
    STOP_TRIGGERED = 6


class Reason(IntEnum):
    """Why an order was cancelled, amended or rejected (``EVENT_DTYPE['reason']``).

    Codes 1-6 qualify CANCELLED and AMENDED events (and QTY_OVERFLOW cancels a triggered
    stop-limit whose resting would take its level past INT64_MAX lots). Codes 10-17 and 24 are
    malformed or impossible messages: the per-call API raises for them (ValueError, KeyError for
    UNKNOWN_ORDER) and the batch path turns them into REJECTED events. Codes 18-20 are orders
    the market refuses; both paths report them as REJECTED events. Codes 21-23 are the margin
    engine's refusals (the book never emits them): ``Engine``'s per-call API raises
    ``OrderError`` with them and changes nothing; its batch path (``Engine.process``) reports
    each as one REJECTED event.
    """

    NONE = 0
    USER = 1                  #: cancelled by a CANCEL message
    IOC_RESIDUAL = 2          #: unfilled rest of an IOC or market order
    FOK_UNFILLABLE = 3        #: fill-or-kill that could not fill completely
    SELF_TRADE = 4            #: removed by self-trade prevention
    KEPT_PRIORITY = 5         #: AMENDED in place, queue position kept
    REQUEUED = 6              #: AMENDED by cancel and reinsert, queue position lost
    INVALID_KIND = 10
    INVALID_SIDE = 11
    INVALID_PRICE = 12        #: price outside [1, INT64_MAX] ticks
    INVALID_STOP_PRICE = 13   #: stop price outside [1, INT64_MAX] ticks
    INVALID_QTY = 14          #: quantity outside [1, INT64_MAX] lots
    DUPLICATE_ID = 15         #: a new order reuses the id of a live order
    UNKNOWN_ORDER = 16        #: cancel/amend of an id that is not live
    QTY_OVERFLOW = 17         #: the level's (or stop level's) total would pass INT64_MAX lots
    POST_ONLY_WOULD_TAKE = 18
    STOP_WOULD_TRIGGER = 19   #: the last trade price already satisfies the stop
    NOT_AMENDABLE = 20        #: armed stops cannot be amended (cancel and resubmit)
    INSUFFICIENT_MARGIN = 21  #: the account's equity would not cover its initial margin
    POSITION_LIMIT = 22       #: the order could take the account's position past max_position
    ISOLATED_ELSEWHERE = 23   #: an isolated account's order beside its position in another book
    BOOK_FULL = 24            #: an order that could rest, with MAX_LIVE_ORDERS orders live


#: Kinds that submit a new order (they carry a side and a quantity).
NEW_ORDER_KINDS = frozenset({Kind.LIMIT, Kind.MARKET, Kind.IOC, Kind.FOK, Kind.POST_ONLY,
                             Kind.STOP_MARKET, Kind.STOP_LIMIT})
#: Kinds armed until the last trade price reaches their ``stop_price``.
STOP_KINDS = frozenset({Kind.STOP_MARKET, Kind.STOP_LIMIT})
#: Kinds whose ``price`` must be a valid limit price, >= 1 tick (AMEND carries the new price).
PRICED_KINDS = frozenset({Kind.LIMIT, Kind.IOC, Kind.FOK, Kind.POST_ONLY, Kind.STOP_LIMIT,
                          Kind.AMEND})
#: Kinds whose unfilled rest rests in the book.
RESTING_KINDS = frozenset({Kind.LIMIT, Kind.POST_ONLY})
#: New orders that never rest: what they do not fill at once is cancelled.
IMMEDIATE_KINDS = frozenset({Kind.MARKET, Kind.IOC, Kind.FOK})
#: Reasons for malformed or impossible messages: the per-call API raises, the batch rejects.
CALLER_ERRORS = frozenset({Reason.INVALID_KIND, Reason.INVALID_SIDE, Reason.INVALID_PRICE,
                           Reason.INVALID_STOP_PRICE, Reason.INVALID_QTY, Reason.DUPLICATE_ID,
                           Reason.UNKNOWN_ORDER, Reason.QTY_OVERFLOW, Reason.BOOK_FULL})
#: Reasons the margin engine refuses a well-formed order for (its account's margin, position
#: limit or isolation); ``Engine``'s per-call API raises ``OrderError`` with them, its batch
#: path reports a REJECTED event.
ENGINE_REFUSALS = frozenset({Reason.INSUFFICIENT_MARGIN, Reason.POSITION_LIMIT,
                             Reason.ISOLATED_ELSEWHERE})


class SelfTradePrevention(IntEnum):
    """What happens when a taker meets a resting order of the same owner."""

    NONE = 0           #: they trade
    CANCEL_TAKER = 1   #: the taker's remaining quantity is cancelled; the maker stays
    CANCEL_MAKER = 2   #: the maker is cancelled and the taker goes on matching
    CANCEL_BOTH = 3    #: both are cancelled


class AmendRule(IntEnum):
    """When an amend keeps the order's place in its price level's queue."""

    REDUCE_KEEPS_PRIORITY = 0  #: same price and no larger quantity keeps priority; else requeue
    ALWAYS_REQUEUE = 1         #: every amend moves the order to the back of its new level


def _aligned(fields: list[tuple[str, str]]) -> np.dtype:
    return np.dtype(fields, align=True)


#: One input message of :meth:`OrderBook.process`. Unused fields are ignored (e.g. ``price`` of a
#: MARKET order, everything but ``order_id`` of a CANCEL). Prices in ticks, ``qty`` in lots.
MESSAGE_DTYPE = _aligned([
    ("order_id", "<i8"), ("owner", "<i8"), ("price", "<i8"), ("stop_price", "<i8"),
    ("qty", "<i8"), ("kind", "u1"), ("side", "i1"),
])

#: One output event. ``seq`` numbers every event of a book from 0; ``msg`` numbers the messages
#: the book has processed (per call or in a batch) from 0 and says which one caused the event.
#: For TRADE: ``order_id``/``owner`` are the taker's, ``maker_id``/``maker_owner`` the maker's,
#: ``side`` the aggressor's side, ``price`` the maker's price. Fields that do not apply are 0.
EVENT_DTYPE = _aligned([
    ("seq", "<i8"), ("msg", "<i8"), ("order_id", "<i8"), ("owner", "<i8"),
    ("maker_id", "<i8"), ("maker_owner", "<i8"), ("price", "<i8"), ("stop_price", "<i8"),
    ("qty", "<i8"), ("kind", "u1"), ("reason", "u1"), ("side", "i1"),
])

#: One resting order in an L3 snapshot, bids best first then asks best first, FIFO within a level.
L3_DTYPE = _aligned([
    ("order_id", "<i8"), ("owner", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("side", "i1"),
])

#: One armed stop order, sell stops (highest stop first) then buy stops (lowest stop first),
#: FIFO within a stop price: the order in which they would trigger.
STOP_DTYPE = _aligned([
    ("order_id", "<i8"), ("owner", "<i8"), ("stop_price", "<i8"), ("price", "<i8"),
    ("qty", "<i8"), ("kind", "u1"), ("side", "i1"),
])


class Event(NamedTuple):
    """One event, as the per-call API returns it; fields as in :data:`EVENT_DTYPE`."""

    seq: int
    msg: int
    kind: int
    reason: int
    side: int
    order_id: int
    owner: int
    maker_id: int
    maker_owner: int
    price: int
    stop_price: int
    qty: int

    def __repr__(self) -> str:
        parts = [f"#{self.seq} {_name(EventKind, self.kind)}"]
        if self.reason:
            parts.append(_name(Reason, self.reason))
        if self.side:
            parts.append(_name(Side, self.side))
        parts.append(f"id={self.order_id} owner={self.owner}")
        if self.kind == EventKind.TRADE:
            parts.append(f"maker={self.maker_id} maker_owner={self.maker_owner}")
        parts.append(f"price={self.price} qty={self.qty}")
        if self.stop_price:
            parts.append(f"stop={self.stop_price}")
        return f"Event({' '.join(parts)} msg={self.msg})"


def _name(enum, value) -> str:
    # A REJECTED event echoes whatever the message held, including values no enum knows.
    try:
        return enum(value).name
    except ValueError:
        return f"{enum.__name__}({value})"


class OrderInfo(NamedTuple):
    """A live order: resting in the book, or an armed stop (``kind`` STOP_MARKET/STOP_LIMIT).

    ``price`` is the limit price in ticks (0 for a stop-market), ``qty`` the remaining lots.
    """

    order_id: int
    owner: int
    side: int
    kind: int
    price: int
    stop_price: int
    qty: int


class L2(NamedTuple):
    """Top levels of each side, best first: prices (ticks), quantities (lots), order counts."""

    bid_price: np.ndarray
    bid_qty: np.ndarray
    bid_orders: np.ndarray
    ask_price: np.ndarray
    ask_qty: np.ndarray
    ask_orders: np.ndarray


class Impact(NamedTuple):
    """What a market order of ``qty`` lots would do now, without doing it.

    ``filled`` lots could fill (less than asked if the book runs out); ``notional`` is the sum
    of price × lots over the fills (tick·lots, exact); ``average_price`` is notional / filled
    (ticks, float, NaN when nothing fills); ``worst_price`` the last level touched (0 if none);
    ``levels`` the number of price levels touched.
    """

    filled: int
    notional: int
    average_price: float
    worst_price: int
    levels: int


def events_to_array(events) -> np.ndarray:
    """Pack a sequence of :class:`Event` into an :data:`EVENT_DTYPE` array."""
    out = np.zeros(len(events), dtype=EVENT_DTYPE)
    for i, ev in enumerate(events):
        out[i] = (ev.seq, ev.msg, ev.order_id, ev.owner, ev.maker_id, ev.maker_owner,
                  ev.price, ev.stop_price, ev.qty, ev.kind, ev.reason, ev.side)
    return out


def array_to_events(array: np.ndarray) -> list[Event]:
    """Unpack an :data:`EVENT_DTYPE` array into a list of :class:`Event`."""
    if array.dtype != EVENT_DTYPE:
        raise TypeError(f"events must have dtype EVENT_DTYPE, got {array.dtype}")
    return [
        Event(int(r["seq"]), int(r["msg"]), int(r["kind"]), int(r["reason"]), int(r["side"]),
              int(r["order_id"]), int(r["owner"]), int(r["maker_id"]), int(r["maker_owner"]),
              int(r["price"]), int(r["stop_price"]), int(r["qty"]))
        for r in array
    ]


def messages(rows) -> np.ndarray:
    """Build a :data:`MESSAGE_DTYPE` array from dicts with any of its field names (missing = 0)."""
    rows = list(rows)
    out = np.zeros(len(rows), dtype=MESSAGE_DTYPE)
    for i, row in enumerate(rows):
        for name, value in row.items():
            if name not in MESSAGE_DTYPE.names:
                raise KeyError(f"unknown message field {name!r}; fields are {MESSAGE_DTYPE.names}")
            out[i][name] = value
    return out


# --------------------------------------------------------------------------- margin engine

#: Parts per million: every rate (fees, margin, band, fraction, discount) is an integer in
#: [0, PPM].
PPM = 1_000_000
#: Owner id of the insurance fund's own account (it holds positions it takes over).
INSURANCE_FUND = -1
#: ``counterparty`` of a liquidation record that has none (forced orders, shortfalls).
NO_COUNTERPARTY = -2


class MarkRule(IntEnum):
    """How the mark price, which margin checks use, is taken."""

    LAST = 0           #: last trade price
    MID = 1            #: floor((best bid + best ask) / 2)
    INDEX = 2          #: the index set by Engine.set_index
    INDEX_CLAMPED = 3  #: median of index, best bid and best ask
    LAST_CLAMPED = 4   #: median of last trade, best bid and best ask (Hyperliquid's book part)
    FAIR = 5           #: index x (1 + funding basis of Engine.set_funding_basis): BitMEX's


#: The bound of Engine.set_funding_basis, ppm either way: a fair price stays within 0.5x-1.5x of
#: its index (a funding basis is a fraction of a funding rate, far inside it).
FUNDING_BASIS_BOUND = 500_000


def fair_price(index: int, basis_ppm: int) -> int:
    """BitMEX's fair price in ticks: index x (1 + basis_ppm / 10**6), to the nearest tick,
    halves up. At least 1 for an index >= 1 and a basis within FUNDING_BASIS_BOUND."""
    return (2 * index * (10**6 + basis_ppm) + 10**6) // (2 * 10**6)


class Sizing(IntEnum):
    """How much of a liquidatable position one forced order closes."""

    FULL = 0       #: all of it
    FRACTION = 1   #: ceil(``|position|`` * fraction_ppm / 10**6), at least one lot
    RESTORE = 2    #: the fewest lots whose fills from the book now, less the liquidation fee,
    #: leave equity >= maintenance margin at the mark (all of it when none do)
    TIER_STEP = 3  #: the fewest lots that take the mark notional left into the next lower
    #: maintenance tier (all of it in the lowest); Binance, OKX, Bybit, BitMEX
    INCREMENTAL = 4  #: orders of max(1, floor(increment / (mark x k))) lots one after another,
    #: the mark taken afresh before each, until the account is out of liquidation; Deribit


class LimitRule(IntEnum):
    """The price limit of a forced order."""

    MARKET = 0      #: none: a market order; what cannot fill waits for the next round
    BAND = 1        #: IOC at the mark moved band_ppm against the account; the rest waits
    BANKRUPTCY = 2  #: IOC at the bankruptcy price; the rest is taken over at once


class Deficit(IntEnum):
    """What happens when the insurance fund cannot cover a liquidation."""

    NONE = 0       #: the fund goes negative (recorded as bad debt)
    ADL = 1        #: after the fund, opposing positions closed at the bankruptcy price (capped)
    SOCIALIZE = 2  #: the shortfall is charged pro rata to unrealised profits


class AdlRanking(IntEnum):
    """The order in which ADL closes opposing positions (docs/liquidation.md, "ADL").

    Every ranking puts the larger key first, ties by the smaller owner id; U is the unrealised
    PnL at the mark, C the entry value, N the notional at the mark, E the equity, MM the
    maintenance margin, W the collateral.
    """

    BITMEX = 0      #: U/C x N/E when U > 0, U/C / (N/E) when U < 0 (0 when U = 0)
    PNL_RATIO = 1   #: U/C
    BINANCE = 2     #: max(0, U) / max(1, W) x MM/E


class Trigger(IntEnum):
    """When an account is liquidatable: equity E against maintenance margin MM, at the mark
    (docs/liquidation.md, "Margin")."""

    BELOW = 0        #: E < MM (Hyperliquid, dYdX, Deribit)
    AT_OR_BELOW = 1  #: E <= MM, "margin ratio reaches 100 %" (Binance, Bybit, OKX)


class MarginBasis(IntEnum):
    """The notional maintenance margin is taken on (docs/liquidation.md, "Margin")."""

    MARK = 0   #: the position's value at the mark, V(m, ``|q|``) (Binance, OKX, Hyperliquid)
    ENTRY = 1  #: the position's entry value, its cost C (BitMEX's, Bybit's older examples)


class Settlement(IntEnum):
    """How a venue's contracts settle (docs/market_wide.md section 7)."""

    #: profit and margin in the quote currency: q lots at p ticks are worth p q k quote units
    LINEAR = 0
    #: coin-margined (BitMEX XBTUSD, Binance COIN-M): a lot is ``contract_value`` of quote
    #: currency, q lots at p ticks are worth floor(k q / p) coin units, and every balance,
    #: fee, fund and record's money is in the coin; a long profits as the price rises
    INVERSE = 1


class CloseOrder(IntEnum):
    """Which positions of a liquidated account go first, when it holds several
    (docs/liquidation.md, "Several instruments in one venue")."""

    #: every position at once, instrument ascending (Binance cross margin); under a partial
    #: sizing the account is looked at again before each later position
    ALL = 0
    #: the position with the largest maintenance margin first, then the next largest; the
    #: account is looked at again before each later position
    LARGEST_MM = 1
    #: the position losing most at its mark first (the move that did the harm), then the next;
    #: the account is looked at again before each later position
    LARGEST_LOSS = 2
    #: every position cut by the same fraction (all of it under FULL, ``fraction_ppm`` under
    #: FRACTION; the other sizings are refused), with no look in between
    PRO_RATA = 3


class ForcedKind(IntEnum):
    """What a liquidation record describes."""

    ORDER = 1          #: a forced order through the book
    BACKSTOP = 2       #: a takeover by the backstop account
    FUND_TAKEOVER = 3  #: a takeover by the insurance fund
    ADL = 4            #: a position closed against an auto-deleveraged counterparty
    SHORTFALL = 5      #: a flat account's negative collateral covered (fund, socialised, bad debt)
    #: a flat account's collateral asset sold to the venue to cover its negative quote balance:
    #: ``qty`` asset units, ``notional`` the quote units paid, ``instrument`` the one valuing
    #: the asset (each asset has its own), ``mark_before`` its mark; ``filled`` 0 (no book)
    CONVERSION = 6


#: One liquidation record (Engine.forced_orders). Prices and marks in ticks, money in quote
#: units; ``notional`` is the exact value of the fills (or transfer), ``avg_price`` =
#: notional / (filled k).
#: ``slippage`` is the average fill price's distance from ``mark_before`` in ticks, positive when
#: worse for the liquidated account. ``counterparty`` is the backstop, fund or ADL account of a
#: takeover, and NO_COUNTERPARTY otherwise.
FORCED_DTYPE = _aligned([
    ("round", "<i8"), ("generation", "<i8"), ("owner", "<i8"), ("counterparty", "<i8"),
    ("qty", "<i8"), ("filled", "<i8"), ("notional", "<i8"), ("avg_price", "<f8"),
    ("mark_before", "<i8"),
    ("mark_after", "<i8"), ("slippage", "<f8"), ("fee", "<i8"), ("fund_cover", "<i8"),
    ("socialized", "<i8"), ("bad_debt", "<i8"), ("side", "i1"), ("kind", "u1"),
    # the position's instrument (an index into Engine.instruments), in the tail's padding
    ("instrument", "<i4"),
])


#: The insurance fund's balance (quote units) after each liquidation round (Engine.fund_history).
FUND_HISTORY_DTYPE = np.dtype([("round", "<i8"), ("balance", "<i8")])

#: A funding rate is an integer in units of 10**-8 of the value of a position per payment
#: (exchanges publish rates with 8 decimals: 0.0001 is 10_000), at most this either way: 100 %.
FUNDING_RATE_SCALE = 10**8


class FundingSettlement(NamedTuple):
    """What one ``Engine.settle_funding`` moved (docs/funding.md). Money in quote units (coin
    units on an inverse venue); ``paid`` = ``received`` + ``remainder`` exactly."""

    time: int        #: Engine.time, ms
    instrument: int  #: index into Engine.instruments
    rate: int        #: units of 10**-8 (FUNDING_RATE_SCALE); > 0: longs pay shorts
    mark: int        #: ticks: the mark the positions were valued at
    paid: int        #: by the paying side, each the ceiling of value x ``|rate|`` / 10**8
    received: int    #: by the other side, each the floor of its pro-rata share of ``paid``
    remainder: int   #: paid - received: to the insurance fund
    payers: int      #: accounts that paid
    receivers: int   #: accounts on the receiving side


#: One row per account (Engine.equities): its owner id, collateral, equity and maintenance
#: margin at the current marks (quote units), whether it is exempt, and its open lots summed
#: without sign over every instrument.
EQUITY_DTYPE = np.dtype([("owner", "<i8"), ("collateral", "<i8"), ("equity", "<i8"),
                         ("maintenance_margin", "<i8"), ("exempt", "?"), ("lots", "<i8")])


#: One row per open position (Engine.positions): its owner, instrument index, signed lots,
#: cost (quote units paid to open it), notional at the instrument's mark (quote units; 0 with
#: no mark), liquidation price (ticks; 0 where ``has_liquidation_price`` is False: an exempt
#: account, or one no price would liquidate), and whether the account is exempt. As
#: ``Engine.account(owner).positions`` gives them, without a Python object per position.
POSITION_DTYPE = np.dtype([("owner", "<i8"), ("instrument", "<i4"), ("position", "<i8"),
                           ("cost", "<i8"), ("notional", "<i8"), ("liquidation_price", "<i8"),
                           ("has_liquidation_price", "?"), ("exempt", "?")])

#: One row per Engine.settle_funding (Engine.funding_history): FundingSettlement's fields.
FUNDING_DTYPE = np.dtype([(name, "<i8") for name in FundingSettlement._fields])


class BatchResult(NamedTuple):
    """What ``Engine.process`` returns: the batch's events and the liquidation records of the
    rounds it ran (``liquidate_every``; empty when it ran none)."""

    events: np.ndarray         #: EVENT_DTYPE, the messages' events in order (as OrderBook.process)
    forced_orders: np.ndarray  #: FORCED_DTYPE, the records of the rounds run inside the batch


class AccountInfo(NamedTuple):
    """An account evaluated at the current mark. Money in quote units, prices in ticks.

    ``collateral`` is what backs the position: all of a cross account's balance, or an isolated
    account's margin, the rest of which is ``reserve``.
    """

    owner: int
    collateral: int
    position: int
    cost: int
    equity: int
    maintenance_margin: int
    initial_margin: int
    margin_ratio: float
    liquidation_price: int | None
    bankruptcy_price: int | None
    exempt: bool
    isolated: bool
    reserve: int  #: an isolated account's balance outside the position's margin (never at risk)
    #: one PositionInfo per instrument the account holds a position in, ascending instrument;
    #: ``position``, ``cost``, ``liquidation_price`` and ``bankruptcy_price`` above are
    #: instrument 0's
    positions: tuple = ()
    #: one HoldingInfo per collateral asset (Engine ``assets``) the account holds, ascending
    #: asset; their ``value`` is part of ``equity``
    assets: tuple = ()


class PositionInfo(NamedTuple):
    """One position of an account, evaluated at its instrument's mark, the other positions held
    at theirs. Money in quote units, prices in ticks of the instrument, sizes in its lots."""

    instrument: int
    position: int
    cost: int
    notional: int
    unrealised: int
    maintenance_margin: int
    initial_margin: int
    liquidation_price: int | None
    bankruptcy_price: int | None


class HoldingInfo(NamedTuple):
    """An account's balance of one collateral asset and what it counts for in its equity."""

    asset: int      #: index into Engine.assets
    balance: int    #: asset units
    value: int      #: quote units: balance x the mark of the asset's instrument x (1 - haircut),
    #: rounded down; 0 while that instrument has no mark


@dataclass(frozen=True)
class Asset:
    """A collateral asset of a venue besides its quote currency (``Engine(assets=[...])``).

    ``unit``: the asset per integer unit (``"0.00000001"``: balances in satoshi). ``instrument``:
    the name or index of the venue's instrument whose mark values it (its price is quote currency
    per whole asset): b units at mark m ticks count ``floor(b x m x tick x unit / quote_unit x
    (1 - haircut))`` quote units in equity, so the asset loses value as that mark falls, at the
    same moment as positions in it. ``haircut_ppm`` in [0, 10**6). ``conversion_discount_ppm`` in
    [0, 10**6): below the mark at which the venue buys the asset from a liquidated account whose
    quote balance ends negative (ForcedKind.CONVERSION). Each asset names its own instrument.
    """

    name: str
    unit: Any
    instrument: Any
    haircut_ppm: Any = 0
    conversion_discount_ppm: Any = 0


@dataclass(frozen=True)
class Instrument:
    """One contract of a venue (``Engine(instruments=[...])``): its own order book and margin.

    ``tick_size`` (price units per tick) and ``lot_size`` (base units per lot) as for an
    ``OrderBook``; ``tiers``, ``max_price`` (ticks), ``max_position`` (lots) and ``mark_rule``
    as the Engine keywords of the same names, whose values a None here takes. ``spot``: a spot
    book of the collateral asset that names this instrument. On a linear venue
    profit and margin are in the quote currency; on an inverse one (``settlement``) in its coin,
    a contract being worth ``contract_value`` of quote currency (None: the Engine's).
    """

    name: str
    tick_size: Any = "1"
    lot_size: Any = "1"
    tiers: Any = None
    max_price: Any = None
    max_position: Any = None
    mark_rule: Any = None
    contract_value: Any = None
    #: a spot book of the collateral asset valued at this instrument (the one Asset naming
    #: it): its trades exchange the asset's units for quote currency and open no position, and
    #: a liquidated account's asset is sold through it (docs/liquidation.md, "Collateral assets")
    spot: Any = False


# ------------------------------------------------------------------------------ reserved ids
# Ids the library's own code uses for its accounts and orders, in one place so that they never
# collide with each other or with the ids a caller is told to use (owners and order ids >= 0).
# The margin engines number forced orders -1, -2, ... (negative order ids are the liquidator's).

#: Owner ids of a scenario's own accounts; its population takes 0 .. count - 1.
SCENARIO_HOUSE = 10**12          #: the counterparty of every seeded position (exempt)
SCENARIO_MAKER = 10**12 + 1      #: the liquidity provider that lays out and refills the book
SCENARIO_SHOCKER = 10**12 + 2    #: the account that sends the shock (and the first print)
SCENARIO_BACKSTOP = 10**12 + 3   #: the backstop liquidity provider, when the rules name one
SCENARIO_VALUE = 10**12 + 4      #: the value trader that buys back towards the start mid
SCENARIO_AGENTS = 10**12 + 1_000   #: the first agent of a run (agent n: + n)
SCENARIO_FLOWS = 10**12 + 100_000  #: the first background order flow of a run (flow n: + n)
#: Order id and owner of the probing order of ``orderbook.slippage``: far above ids a seeded
#: book would use.
PROBE_ID = 2**62 - 1
#: A LOBSTER replay's injected order k gets id INJECTED_ID_BASE - k; its synthetic orders get
#: -1, -2, ...; LOBSTER's own ids are >= 0, so the three never collide.
INJECTED_ID_BASE = -(2**62)
#: Owner id of the exempt liquidity provider of ``orderbook.strategies.account_populations``.
LP_OWNER = 100
#: Owner id of the backstop account when ``orderbook.strategies.engine_rules`` names one.
BACKSTOP_OWNER = 50
