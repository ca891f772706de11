"""The compiled margin engine (docs/liquidation.md): public API, routing and the mark.

Same semantics as ``orderbook.reference_engine.Engine``, record for record. The engine owns an
``OrderBook``, the ``Ledger`` of its accounts (accounts.pyx), to which every trade settles, and a
``Liquidator`` (liquidator.pyx) that works on both and reads the mark kept here.

Bounds on user-supplied numbers are checked in Python integers (``_engine_args``, shared with the
reference) before anything is stored in int64; what is stored then keeps every product the engine
forms inside int128 (see ``liquidator.adl_before`` for the one comparison that needs 256 bits).
"""

cimport cython
cimport numpy as cnp
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint8_t
from libc.string cimport memcpy
from libcpp.vector cimport vector

from orderbook cimport _types as t
from orderbook._idtable cimport id_find
from orderbook._price_ladder cimport ladder_first
from orderbook._types cimport (
    BUY, NO_SLOT, SELL, Message, Order, oid_t, owner_t, price_t, qty_t, slot_t,
)
from orderbook.accounts cimport (
    IN_LONGS, IN_SHORTS, Account, Holding, InstrumentRec, Ledger, Position, ceil_div, int128,
    money_t, to_python,
)
from orderbook._depth cimport reach_price
from orderbook.book cimport OrderBook
from orderbook.liquidator cimport Liquidator
from orderbook._sink cimport EventSink, sink_take

import numpy as np

cnp.import_array()

from . import _validation as check
from ._bookview import BookView
from ._engine_args import (
    FUNDING_PAID_BOUND, funding_rate_arg, funding_too_large, no_funding_mark, spot_funding,
    asset_arg, asset_deposit, book_rules, deposit_amount, equity_marks, exposure, fair_mark_fits,
    funding_basis_arg, instrument_arg, insufficient_margin, isolated_backstop, isolated_elsewhere,
    limit_price, time_arg, venue_assets, venue_instruments,
    limit_rule_arg, margin_amount, new_account, no_account, order_owner, seeded_position, settings,
    new_accounts, seeded_positions, int64_column,
    insufficient_spot, spot_isolated, spot_position,
    user_order_id, batch_messages, order_elsewhere, order_price,
)
from .batch import out_buffer, record_mode
from .errors import OrderError
from ._engine_state import STATE_VERSION, check_state, constructor_args, saved_kwargs
from .events import (
    EQUITY_DTYPE, POSITION_DTYPE, FUNDING_DTYPE, FUNDING_RATE_SCALE, FundingSettlement,
    AccountInfo, BatchResult, AdlRanking, AmendRule, CloseOrder, Deficit,
    HoldingInfo, Kind,
    LimitRule, MarginBasis, MarkRule, PositionInfo, SelfTradePrevention, Settlement, Sizing,
    Trigger,
)
from .margin import DEFAULT_TIERS, MarginTiers, asset_value

__all__ = ["Engine"]


cdef struct Refusal:
    # What an order check that refused an order saw (Engine._refused words it): the need and
    # what the account has (initial margin and equity, spot funds), the open loss, the lots
    # the max_position check counted, the instrument an isolated account holds.
    int128 need
    int128 have
    int128 loss
    qty_t qty
    int32_t held


cdef enum:
    # Engine._fund's outcomes
    FUND_DONE = 0
    FUND_TOO_MUCH = 1      # the payments would total past FUNDING_PAID_BOUND
    FUND_OVERFLOW = 2      # a balance would leave int64

# events.FUNDING_RATE_SCALE and _engine_args.FUNDING_PAID_BOUND as C constants, checked against
# them when the module is imported.
cdef int64_t FUNDING_SCALE = 100_000_000
cdef int64_t FUNDING_PAID_MAX = 2**62
assert FUNDING_SCALE == FUNDING_RATE_SCALE and FUNDING_PAID_MAX == FUNDING_PAID_BOUND


cdef inline price_t clamped(price_t price, bint both_sides, price_t bid,
                            price_t ask) noexcept nogil:
    # The median of price, bid and ask (price clamped to the touch); price alone while a side
    # is empty (the INDEX_CLAMPED and LAST_CLAMPED marks).
    cdef price_t lo = bid if bid <= ask else ask
    cdef price_t hi = ask if bid <= ask else bid
    if not both_sides:
        return price
    return lo if price < lo else (hi if price > hi else price)


cdef inline price_t fair_price(price_t index, int64_t basis_ppm) noexcept nogil:
    # events.fair_price: index x (1 + basis / 10**6) to the nearest tick, halves up. The
    # setters keep it in [1, max_price]; int128 because 2 x index x 1.5 x 10**6 passes int64.
    return <price_t>((2 * <int128>index * (t.PPM + basis_ppm) + t.PPM) // (2 * <int128>t.PPM))


cdef void engine_mark(void* engine) noexcept nogil:
    # The Liquidator's view of the marks (liquidator.MarkFn): ``engine`` is its owner.
    (<Engine>engine).mark()


@cython.final
cdef class Engine:
    """Margin accounts, mark price and liquidator around an order book (compiled).

    Same semantics as ``orderbook.reference_engine.Engine``, record for record; the rules are in
    docs/liquidation.md (its sections are named below). Prices in ticks, sizes in lots, money in
    quote units, rates in ppm (parts per million of the value, 0 to 10**6). A bad argument is a
    TypeError or ValueError naming it.

    Parameters
    ----------
    tick_size, lot_size : str, int, Decimal or float, default "1"
        Size of one tick (quote currency) and one lot (base asset), as for ``OrderBook``.
    quote_unit : str, int, Decimal, float or None, default None
        The money unit (quote currency). ``k = tick_size * lot_size / quote_unit``, the quote
        units one lot is worth per tick, must be a whole number; None: ``tick_size * lot_size``
        (k = 1). See "Units and bounds".
    tiers : sequence of (max_notional, maintenance_ppm, initial_ppm), default DEFAULT_TIERS
        Margin tiers (``MarginTiers``): notional caps in quote units, increasing, the last None
        (no cap); margin rates in ppm. The default is one tier, 0.5 % maintenance, 1 % initial.
        See "Margin".
    taker_fee_ppm, maker_fee_ppm : int, default 0
        Trading fees, ppm of a trade's value, rounded up to a quote unit; forced orders pay no
        taker fee.
    mark_rule : MarkRule or int, default MarkRule.LAST
        Where the mark price comes from. See "Mark price".
    sizing : Sizing or int, default Sizing.FULL
        How many lots a forced order closes: all, a fraction, enough to restore the account,
        enough to step down one maintenance tier (``TIER_STEP``), or steps of ``increment``
        until the account is out of liquidation (``INCREMENTAL``). See "Liquidation rounds",
        step 2.2.
    fraction_ppm : int, default 500_000
        Share of the position a ``Sizing.FRACTION`` order closes, ppm (at least one lot).
    limit_rule : LimitRule or int or None, default None
        Price limit of a forced order; None is ``LimitRule.MARKET``. See "Liquidation rounds",
        step 2.4.
    band_ppm : int, default 0
        Distance of a ``LimitRule.BAND`` limit from the mark, ppm of the mark.
    round_cap : int or None, default None
        Notional liquidated per round at most, quote units at the mark; None: no cap.
    liquidation_fee_ppm : int, default 0
        Fee on a forced order's fills, ppm of their value, paid into the insurance fund.
    insurance_fund : int, default 0
        The insurance fund's opening balance, quote units in [0, 2**62].
    backstop : int or None, default None
        Owner id (>= 0) of the account that takes over a ``LimitRule.BANKRUPTCY`` remainder
        first; None: no backstop. See "Takeover".
    backstop_discount_ppm : int, default 0
        Price discount of a backstop takeover, in the backstop's favour, ppm of the bankruptcy
        price.
    deficit : Deficit or int, default Deficit.NONE
        What covers a loss the insurance fund cannot. See "Takeover" and "Shortfall".
    adl_ranking : AdlRanking or int, default AdlRanking.BITMEX
        The order in which ``Deficit.ADL`` closes opposing positions. See "ADL".
    trigger : Trigger or int, default Trigger.BELOW
        When an account is liquidatable: equity below its maintenance margin (``BELOW``,
        ``E < MM``) or at or below it (``AT_OR_BELOW``, ``E <= MM``). See "Margin".
    mm_basis : MarginBasis or int, default MarginBasis.MARK
        What maintenance margin is taken on: the position's notional at the mark (``MARK``) or
        its entry value, the cost (``ENTRY``). See "Margin".
    stp : SelfTradePrevention or int, default SelfTradePrevention.NONE
        The book's self-trade prevention (docs/semantics.md).
    amend_rule : AmendRule or int, default AmendRule.REDUCE_KEEPS_PRIORITY
        The book's amend rule: when an amend keeps queue priority (docs/semantics.md).
    max_price : int or None, default None
        Highest price, ticks, that an order, a seed or the index may carry; ``max_price * k``
        at most 2**61 (inverse: ``max_price <= k``, so a lot there is worth a coin unit).
        None: 2**32 - 1 (inverse: at most k). See "Units and bounds".
    max_position : int or None, default None
        Largest position, lots, that an order may lead to (counting the account's other orders
        on that side); None: the largest with ``max_price * max_position * k <= 2**61``
        (inverse: ``max_position * k <= 2**61``).
    check_initial_margin : bool, default True
        Refuse (``OrderError``, ``Reason.INSUFFICIENT_MARGIN``) an order or amend of a
        non-exempt account whose worst-case position's initial margin plus the order's open
        loss would pass its equity; reducing orders always pass. False: no such check (orders
        are bounded by ``max_position`` alone). See "Initial margin".
    fraction_above : int, default 0
        Under ``Sizing.FRACTION``, a position whose notional at the mark is at most this many
        quote units (in [0, 2**62]) is closed whole; 0: every position takes the fraction.
        See "Liquidation rounds", step 2.2.
    takeover_below_ppm : int, default 0
        A served account whose equity at the mark is below this share of its maintenance
        margin, ppm (``10**6 E < takeover_below_ppm x MM``), is not sent to the book: its whole
        position is taken over at once at its bankruptcy price (backstop, fund, then the
        deficit rule); 0: never. See "Liquidation rounds", step 2.2, and "Takeover".
    cooldown_rounds : int, default 0
        Under ``Sizing.FRACTION``, after a round in which an account's forced order closed part
        of its position, its forced orders in the next ``cooldown_rounds`` rounds (>= 0) close
        the whole position; 0: no cooldown. See "Liquidation rounds", step 2.2.
    cooldown_ms : int, default 0
        Under ``Sizing.FRACTION``, after a forced order closed part of an account's position
        at ``Engine.time`` t (ms), its forced orders close the whole position while
        ``Engine.time <= t + cooldown_ms`` (>= 0; Hyperliquid: 30,000); 0: no cooldown. With
        ``cooldown_rounds`` too, orders are whole while either window is open. See
        "Liquidation rounds", step 2.2.
    increment : int, default 0
        Under ``Sizing.INCREMENTAL``, the notional at the mark of one step, quote units in
        [0, 2**62]: an account is sent orders of ``max(1, floor(increment / (mark x k)))`` lots
        one after another, the mark taken afresh before each, until it is no longer
        liquidatable, closed, a step fills nothing or the round cap is spent. Must be >= 1
        under ``INCREMENTAL`` (ValueError otherwise). See "Liquidation rounds", step 2.2.
    limit : LimitRule or int or None, default None
        Deprecated older name of ``limit_rule`` (DeprecationWarning; TypeError with both).
    instruments : sequence of Instrument or None, default None
        The venue's contracts, each with its own book, margin tiers, bounds and mark rule (a
        None field takes the keyword above of its name); None: one instrument, "main", from
        tick_size, lot_size and the keywords. Calls that concern one contract take
        ``instrument=`` (index or name, default 0). See docs/market_wide.md.
    close_order : CloseOrder or int, default CloseOrder.ALL
        Which positions of a liquidated account holding several go first: all of them,
        instrument ascending (``ALL``), the largest maintenance margin first
        (``LARGEST_MM``), the largest loss at the mark first (``LARGEST_LOSS``), or every one
        by the same fraction (``PRO_RATA``, under ``FULL`` or ``FRACTION`` only). See
        "Several instruments in one venue".
    assets : sequence of Asset or None, default None
        Collateral assets besides the quote currency, each valued at an instrument's mark less
        a haircut (``deposit(owner, units, asset=...)``); a liquidated account left flat with a
        negative quote balance sells them to the venue at the mark less a discount
        (docs/liquidation.md, "Collateral assets"). Refused on an inverse venue.
    settlement : Settlement or int, default Settlement.LINEAR
        ``INVERSE``: a coin-margined venue (BitMEX XBTUSD, Binance COIN-M). ``quote_unit`` is
        then the coin's unit (every balance, fee and record's money counts it), a lot is
        ``contract_value x lot_size`` of quote currency, and q lots at p ticks are worth
        ``floor(k q / p)`` coin units with ``k = contract_value x lot_size / (tick_size x
        quote_unit)`` a whole number. A long profits as the price rises. See
        docs/market_wide.md section 7.
    contract_value : str, int, Decimal or None, default None
        Quote currency per contract of an inverse venue (``"100"``: Binance COIN-M BTC, ``"1"``:
        XBTUSD); required there, refused on a linear one.

    Examples
    --------
    A long account crossed by a trade below its liquidation price, liquidated into the bid:

    >>> from orderbook import Engine, Side
    >>> eng = Engine(tiers=[(None, 50_000, 100_000)])  # one tier: 5 % maintenance, 10 % initial
    >>> eng.add_account(1, 1_000)                      # collateral, quote units
    >>> eng.add_account(2, 10**9, exempt=True)         # a market maker, never liquidated
    >>> eng.add_account(3, 10**6)
    >>> eng.seed_position(1, 2, 10_000, 1)             # 1 is long 1 lot from 2 at 10,000 ticks
    >>> eng.account(1).liquidation_price
    9473
    >>> _ = eng.limit(1, Side.BUY, 9_400, 5, 2)
    >>> _ = eng.market(2, Side.SELL, 1, 3)             # the last price, the mark, is now 9,400
    >>> eng.liquidate()[["owner", "filled", "avg_price"]].tolist()
    [(1, 1, 9400.0)]
    >>> eng.account(1).position, eng.account(1).collateral
    (0, 400)

    Notes
    -----
    Copies and pickles: ``copy()``, ``copy.copy``, ``copy.deepcopy`` and ``pickle`` all give an
    independent engine with the same state and the same future behaviour, record for record. A
    pickle holds the constructor's settings and the primary state (book, accounts, queue,
    records, trades, fund history, counters); loading checks every field and rebuilds what is
    derived (liquidation indexes, open quantities), raising ValueError on a damaged pickle.

    Threads: an Engine is not for concurrent use. A call that touches its accounts or book while
    another thread is inside such a call raises ``RuntimeError("this Engine is busy in another
    thread")`` instead of racing with it; calls from one thread at a time are always safe.
    """

    cdef OrderBook _book          # instrument 0's
    cdef list _books              # an OrderBook per instrument
    cdef Ledger ledger
    cdef readonly object book     # instrument 0's BookView
    cdef readonly tuple books     # a BookView per instrument
    cdef readonly tuple instruments
    cdef readonly tuple assets    # Asset per collateral asset
    cdef list _assets             # venue_assets' dicts
    cdef list _asset_deposits     # units deposited per asset
    cdef tuple _names
    cdef readonly object quote_unit
    cdef readonly object settlement       # Settlement
    cdef readonly object contract_value   # instrument 0's (Decimal), None when linear
    cdef readonly object tiers
    cdef readonly int64_t k
    cdef readonly int64_t taker_fee_ppm, maker_fee_ppm, liquidation_fee_ppm, fraction_ppm
    cdef readonly int64_t band_ppm, backstop_discount_ppm
    cdef readonly money_t fraction_above, increment
    cdef readonly int64_t takeover_below_ppm, cooldown_rounds, cooldown_ms
    cdef readonly price_t max_price
    cdef readonly qty_t max_position
    cdef readonly money_t total_deposits
    cdef int _mark_rule, _sizing, _limit_rule, _deficit, _adl_ranking
    cdef int _trigger, _mm_basis, _close_order
    cdef readonly bint check_initial_margin
    cdef bint has_round_cap, has_backstop, has_index, has_mark
    cdef int64_t _round_cap
    cdef owner_t _backstop
    cdef price_t index_price, mark_value   # instrument 0's
    cdef int64_t _funding_basis_ppm
    # Per instrument (entry 0 is instrument 0's, mirrored in the scalars above).
    cdef vector[int] _mark_rules
    cdef vector[price_t] _index
    cdef vector[uint8_t] _has_index
    cdef vector[int64_t] _basis
    cdef Liquidator liquidator
    cdef list _funding            # FundingSettlement rows (funding_history)
    cdef bint _busy               # a public call is running (see _enter)

    def __init__(self, tick_size="1", lot_size="1", quote_unit=None, *, tiers=DEFAULT_TIERS,
                 taker_fee_ppm=0, maker_fee_ppm=0, mark_rule=MarkRule.LAST, sizing=Sizing.FULL,
                 fraction_ppm=500_000, limit_rule=None, band_ppm=0, round_cap=None,
                 liquidation_fee_ppm=0, insurance_fund=0, backstop=None, backstop_discount_ppm=0,
                 deficit=Deficit.NONE, adl_ranking=AdlRanking.BITMEX,
                 trigger=Trigger.BELOW, mm_basis=MarginBasis.MARK,
                 stp=SelfTradePrevention.NONE, amend_rule=AmendRule.REDUCE_KEEPS_PRIORITY,
                 max_price=None, max_position=None, check_initial_margin=True,
                 fraction_above=0, takeover_below_ppm=0, cooldown_rounds=0, cooldown_ms=0,
                 increment=0, limit=None, instruments=None, close_order=CloseOrder.ALL,
                 assets=None, settlement=Settlement.LINEAR, contract_value=None):
        # No Python frame of its own: the warning's stack level 1 is the caller.
        limit_rule = limit_rule_arg(limit_rule, limit, 1)
        # The book's own refusals of these two do not name them; the engine's do.
        stp, amend_rule = book_rules(stp, amend_rule)
        specs, parts = venue_instruments(
            instruments, tick_size, lot_size, quote_unit, tiers=tiers, max_price=max_price,
            max_position=max_position, mark_rule=mark_rule, book_type=OrderBook,
            book_kwargs={"stp": stp, "amend_rule": amend_rule}, settlement=settlement,
            contract_value=contract_value)
        book = parts[0]["book"]
        if instruments is not None:
            # The venue keywords below are instrument 0's (checked again, in its own terms).
            tiers, max_price = parts[0]["tiers"], parts[0]["max_price"]
            max_position, mark_rule = parts[0]["max_position"], parts[0]["mark_rule"]
            contract_value = parts[0]["contract_value"]
        # Checked (in Python integers) before anything lands in an int64 attribute.
        given = settings(book.tick_size, book.lot_size, quote_unit, tiers=tiers,
                         insurance_fund=insurance_fund, backstop=backstop, round_cap=round_cap,
                         max_price=max_price, max_position=max_position,
                         taker_fee_ppm=taker_fee_ppm, maker_fee_ppm=maker_fee_ppm,
                         liquidation_fee_ppm=liquidation_fee_ppm, fraction_ppm=fraction_ppm,
                         band_ppm=band_ppm, backstop_discount_ppm=backstop_discount_ppm,
                         mark_rule=mark_rule, sizing=sizing, limit_rule=limit_rule,
                         deficit=deficit, adl_ranking=adl_ranking,
                         trigger=trigger, mm_basis=mm_basis,
                         check_initial_margin=check_initial_margin,
                         fraction_above=fraction_above,
                         takeover_below_ppm=takeover_below_ppm,
                         cooldown_rounds=cooldown_rounds, increment=increment,
                         close_order=close_order, settlement=settlement,
                         contract_value=contract_value, cooldown_ms=cooldown_ms)
        self.settlement, self.contract_value = given["settlement"], given["contract_value"]
        self.assets, self._assets = venue_assets(
            assets, [part["name"] for part in parts], [part["book"].tick_size for part in parts],
            [part["max_price"] for part in parts], given["quote_unit"], self.settlement,
            [part["book"].lot_size for part in parts], [part["spot"] for part in parts])
        self._asset_deposits = [0] * len(self._assets)
        self.quote_unit, self.k, self.tiers = given["quote_unit"], given["k"], given["tiers"]
        self.check_initial_margin = given["check_initial_margin"]
        self.taker_fee_ppm = given["taker_fee_ppm"]
        self.maker_fee_ppm = given["maker_fee_ppm"]
        self.liquidation_fee_ppm = given["liquidation_fee_ppm"]
        self.fraction_ppm = given["fraction_ppm"]
        self.fraction_above = given["fraction_above"]
        self.takeover_below_ppm = given["takeover_below_ppm"]
        self.cooldown_rounds = given["cooldown_rounds"]
        self.cooldown_ms = given["cooldown_ms"]
        self.increment = given["increment"]
        self.band_ppm = given["band_ppm"]
        self.backstop_discount_ppm = given["backstop_discount_ppm"]
        self._mark_rule = given["mark_rule"]
        self._sizing = given["sizing"]
        self._limit_rule = given["limit_rule"]
        self._deficit = given["deficit"]
        self._adl_ranking = given["adl_ranking"]
        self._trigger = given["trigger"]
        self._mm_basis = given["mm_basis"]
        self._close_order = given["close_order"]
        self.has_round_cap = given["round_cap"] is not None
        self._round_cap = given["round_cap"] if self.has_round_cap else 0
        self.max_price, self.max_position = given["max_price"], given["max_position"]
        fund = given["insurance_fund"]
        self.has_backstop = given["backstop"] is not None
        self._backstop = given["backstop"] if self.has_backstop else 0
        self.instruments = tuple(specs)
        self._names = tuple(spec.name for spec in specs)
        self._book = book
        self._books = [part["book"] for part in parts]
        self.book = BookView(book)
        self.books = tuple(BookView(b) for b in self._books)
        self.ledger = self._new_ledger(parts)
        for part in parts:
            self._mark_rules.push_back(part["mark_rule"])
            self._index.push_back(0)
            self._has_index.push_back(False)
            self._basis.push_back(0)
        self.ledger.open_account(t.INSURANCE_FUND, fund, True, False, 0)
        self.total_deposits = fund
        self._funding = []
        self._assemble()

    cdef Ledger _new_ledger(self, list parts):
        # An empty ledger over the instruments (``parts``: venue_instruments' dicts).
        cdef Ledger ledger = Ledger(parts[0]["k"], parts[0]["max_price"],
                                    parts[0]["max_position"], parts[0]["tiers"],
                                    self.settlement == Settlement.INVERSE)
        for part in parts[1:]:
            ledger.add_instrument(part["k"], part["max_price"], part["max_position"],
                                  part["tiers"])
        for n, part in enumerate(self._assets):
            ledger.add_asset(part["instrument"], part["num"], part["den"], part["haircut_ppm"],
                             part["discount_ppm"])
            if part["units_per_lot"]:
                ledger.instruments[part["instrument"]].spot_asset = n
                ledger.instruments[part["instrument"]].units_per_lot = part["units_per_lot"]
        return ledger

    cdef int _assemble(self) except -1:
        # The parts the settings configure: the ledger's fees, and the liquidator over this
        # engine's book, ledger and mark. Called again when a pickle replaces book and ledger.
        self.ledger.taker_fee_ppm = self.taker_fee_ppm
        self.ledger.maker_fee_ppm = self.maker_fee_ppm
        self.ledger.trigger = self._trigger
        self.ledger.mm_basis = self._mm_basis
        self.liquidator = Liquidator(
            self._book, self.ledger, self.k, self.max_position, self._sizing, self._limit_rule,
            self._deficit, self._adl_ranking, self.fraction_ppm, self.band_ppm,
            self.liquidation_fee_ppm, self.backstop_discount_ppm, self.round_cap, self.backstop,
            self.fraction_above, self.takeover_below_ppm, self.cooldown_rounds, self.increment,
            self._close_order, self.cooldown_ms)
        self.liquidator.books = list(self._books)
        self.liquidator.engine = <void*>self   # borrowed: the liquidator dies with this engine
        self.liquidator.refresh_mark = engine_mark
        return 0

    # ------------------------------------------------------------------ settings
    @property
    def mark_rule(self):
        """Mark price rule (MarkRule)."""
        return MarkRule(self._mark_rule)

    @property
    def sizing(self):
        """Forced order sizing rule (Sizing)."""
        return Sizing(self._sizing)

    @property
    def limit_rule(self):
        """Forced order price limit rule (LimitRule)."""
        return LimitRule(self._limit_rule)

    @property
    def deficit(self):
        """What covers a loss the insurance fund cannot (Deficit)."""
        return Deficit(self._deficit)

    @property
    def adl_ranking(self):
        """The order in which ADL closes opposing positions (AdlRanking)."""
        return AdlRanking(self._adl_ranking)

    @property
    def trigger(self):
        """When an account is liquidatable: E < MM or E <= MM (Trigger)."""
        return Trigger(self._trigger)

    @property
    def mm_basis(self):
        """What maintenance margin is taken on: mark notional or entry value (MarginBasis)."""
        return MarginBasis(self._mm_basis)

    @property
    def close_order(self):
        """Which positions of a liquidated account go first (CloseOrder)."""
        return CloseOrder(self._close_order)

    @property
    def round_cap(self):
        """Notional (quote units at the mark) liquidated per round at most, or None."""
        return self._round_cap if self.has_round_cap else None

    @property
    def backstop(self):
        """Owner id of the backstop account, or None."""
        return self._backstop if self.has_backstop else None

    # ------------------------------------------------------------------ the busy guard
    cdef int _enter(self) except -1:
        # Check and set with no Python call in between, so the pair is atomic under the GIL.
        # Every public method that touches the C containers takes the flag and drops it in a
        # finally: another thread's call (say one growing ``ledger.accounts`` while this one
        # holds an Account*) raises instead of corrupting state or using freed memory.
        # The engine drives its book through the book's cdef core, so it holds the book's flag
        # as well: a query through ``engine.book`` from another thread is refused meanwhile
        # instead of walking containers this call is changing (and vice versa).
        cdef OrderBook other
        if self._busy or self._book.busy:
            raise RuntimeError("this Engine is busy in another thread")
        if len(self._books) > 1:
            for other in self._books:
                if other.busy:
                    raise RuntimeError("this Engine is busy in another thread")
            for other in self._books:
                other.busy = True
        self._busy = True
        self._book.busy = True
        return 0

    cdef inline void _leave(self) noexcept:
        cdef OrderBook other
        self._busy = False
        self._book.busy = False
        if len(self._books) > 1:
            for other in self._books:
                other.busy = False

    cdef int32_t _use(self, instrument) except -1:
        # The instrument a call names (index or name; instrument_arg's errors), selected in the
        # ledger; returns its index.
        cdef int32_t index = 0
        if not (type(instrument) is int and instrument == 0):
            index = instrument_arg(instrument, self._names)
        self.ledger.select(index)
        return index

    @property
    def busy(self):
        """True while a call is running (a call from another thread then raises RuntimeError)."""
        return self._busy

    # ------------------------------------------------------------------ accounts
    cdef inline Account* acct(self, int32_t slot) noexcept nogil:
        return &self.ledger.accounts[slot]

    cdef int32_t _slot(self, owner, str name="owner") except -1:
        cdef owner_t oid = check.as_int64(name, owner)
        cdef int32_t slot = self.ledger.slot(oid)
        if slot < 0:
            raise no_account(name, oid)
        return slot

    def add_account(self, owner, collateral, *, exempt=False, isolated_margin=None):
        """Open an account with ``collateral`` quote units; exempt ones are never liquidated.

        With ``isolated_margin`` the account is isolated: only that much of its collateral backs
        the position (and can be lost); the rest is its reserve.
        """
        self._enter()
        try:
            oid, amount, margin = new_account(owner, collateral, isolated_margin,
                                              self.total_deposits,
                                              lambda taken: self.ledger.slot(taken) >= 0)
            if isolated_margin is not None:
                isolated_backstop(oid, self.backstop, len(self._books))
            self.ledger.open_account(oid, margin, bool(exempt), isolated_margin is not None,
                                     amount - margin)
            self.total_deposits += <money_t>amount
        finally:
            self._leave()

    def deposit(self, owner, amount, *, asset=None):
        """Add ``amount`` quote units (>= 1) to the collateral (an isolated account's: reserve);
        with ``asset`` (a name or index of ``assets``), ``amount`` units of that asset."""
        cdef int32_t n
        self._enter()
        try:
            slot = self._slot(owner)
            if asset is not None:
                n = asset_arg(asset, [spec.name for spec in self.assets])
                value = asset_deposit(self.acct(slot).owner, self.acct(slot).isolated, amount,
                                      self._asset_deposits[n], self._assets[n])
                self.ledger.holding(slot, n).units += <money_t>value
                self._asset_deposits[n] += value
                self.ledger.reindex(slot)
                return
            value = deposit_amount(amount, self.total_deposits)
            if self.acct(slot).isolated:
                self.acct(slot).reserve += <money_t>value
            else:
                self.acct(slot).collateral += <money_t>value
            self.total_deposits += <money_t>value
            self.ledger.reindex(slot)
        finally:
            self._leave()

    def add_margin(self, owner, amount):
        """Move ``amount`` quote units of an isolated account's reserve into its margin."""
        self._enter()
        try:
            slot = self._slot(owner)
            value = margin_amount(self.acct(slot).owner, amount, self.acct(slot).isolated,
                                  self.acct(slot).reserve)
            # The Account* is taken after the last Python call that could run other code.
            a = self.acct(slot)
            a.reserve -= <money_t>value
            a.collateral += <money_t>value
            self.ledger.reindex(slot)
        finally:
            self._leave()

    def seed_position(self, long_owner, short_owner, price, qty, *, instrument=0):
        """Give two accounts opposite positions of ``qty`` lots at ``price`` ticks of
        ``instrument``, off the book."""
        self._enter()
        try:
            i = self._use(instrument)
            buyer = self._slot(long_owner, "long_owner")
            seller = self._slot(short_owner, "short_owner")
            if self.ledger.instruments[i].spot_asset >= 0:
                raise spot_position(self._names[i])
            p, q = seeded_position(self.acct(buyer).owner, self.acct(seller).owner,
                                   self.ledger.pos(buyer, i).position,
                                   self.ledger.pos(seller, i).position,
                                   price, qty, self.ledger.max_price, self.ledger.max_position)
            self._check_isolated(buyer, i)
            self._check_isolated(seller, i)
            self.ledger.settle(buyer, q, p)
            self.ledger.settle(seller, -q, p)
        finally:
            self._leave()

    def add_accounts(self, owners, collateral, *, exempt=False):
        """Open many cross accounts at once: ``owners`` (int64 ids >= 0, none taken, none
        repeated), ``collateral`` (quote units >= 0 each), ``exempt`` (a bool, or one per
        owner). The arrays are checked as a whole first: an error names the first bad entry
        and opens nothing. As ``add_account`` for each, in order."""
        cdef const int64_t[::1] o, c
        cdef const uint8_t[::1] e
        cdef Py_ssize_t k
        self._enter()
        try:
            owners_, collateral_, exempt_ = new_accounts(
                owners, collateral, exempt, self.total_deposits,
                np.array(self._owner_ids(), dtype=np.int64))
            if not len(owners_):
                return
            o, c, e = owners_, collateral_, exempt_.view(np.uint8)
            for k in range(o.shape[0]):
                self.ledger.open_account(o[k], c[k], e[k] != 0, False, 0)
            self.total_deposits += <money_t>sum(collateral_.tolist())
        finally:
            self._leave()

    def seed_positions(self, long_owners, short_owners, prices, qtys, *, instrument=0):
        """Give pairs of accounts opposite positions off the book, row by row: row k makes
        ``long_owners[k]`` long and ``short_owners[k]`` short ``qtys[k]`` lots at ``prices[k]``
        ticks of ``instrument``. Checked as a whole first (every owner has an account, the
        positions stay within max_position after every row, the one-position rule of isolated
        accounts): an error names the first bad row and seeds nothing. As ``seed_position``
        for each row, in order."""
        cdef const int64_t[::1] lv, sv, pv, qv
        cdef Py_ssize_t k
        cdef int32_t i
        self._enter()
        try:
            i = self._use(instrument)
            if self.ledger.instruments[i].spot_asset >= 0:
                raise spot_position(self._names[i])
            longs = int64_column("long_owners", long_owners)
            shorts = int64_column("short_owners", short_owners)
            for name, column in (("long_owners", longs), ("short_owners", shorts)):
                k = self._first_unknown(column)
                if k >= 0:
                    raise no_account(f"{name}[{k}]", int(column[k]))
            longs, shorts, prices_, qtys_ = seeded_positions(
                longs, shorts, prices, qtys, lambda owners: self._positions_of(owners, i),
                self.ledger.max_price, self.ledger.max_position)
            if not len(longs):
                return
            # the one-position rule, owner by owner in the order first named
            named, first = np.unique(np.concatenate([longs, shorts]), return_index=True)
            lv = named[np.argsort(first)]
            for k in range(lv.shape[0]):
                self._check_isolated(self.ledger.slot(lv[k]), i)
            sv, pv, qv = shorts, prices_, qtys_
            # Each row settled as seed_position settles it, but the trigger index follows once
            # per account at the end: reindex reads only the account's final state, and the
            # house on the other side of every row would otherwise be re-priced n times.
            self._settle_rows(longs, sv, pv, qv)
            for k in range(lv.shape[0]):
                self.ledger.reindex(self.ledger.slot(lv[k]))
        finally:
            self._leave()

    cdef void _settle_rows(self, const int64_t[::1] longs, const int64_t[::1] shorts,
                           const int64_t[::1] prices, const int64_t[::1] qtys) noexcept:
        # seed_positions' fills in the selected instrument, without the index (the caller
        # reindexes every account named)
        cdef Py_ssize_t k
        for k in range(longs.shape[0]):
            self.ledger.fill(self.ledger.slot(longs[k]), qtys[k], prices[k])
            self.ledger.fill(self.ledger.slot(shorts[k]), -qtys[k], prices[k])

    cdef object _owners_arg(self, owners):
        # equities()' and positions()' ``owners``: every owner ascending when None
        if owners is None:
            return np.array(sorted(self._owner_ids()), dtype=np.int64)
        return int64_column("owners", owners)

    cdef Py_ssize_t _first_unknown(self, const int64_t[::1] owners):
        # the first row of ``owners`` without an account, -1 when every one has one
        cdef Py_ssize_t k
        for k in range(owners.shape[0]):
            if self.ledger.slot(owners[k]) < 0:
                return k
        return -1

    cdef object _positions_of(self, const int64_t[::1] owners, int32_t instrument):
        # each owner's position in ``instrument`` (lots), every owner having an account
        cdef Py_ssize_t k
        out = np.zeros(owners.shape[0], dtype=np.int64)
        cdef int64_t[::1] lots = out
        for k in range(owners.shape[0]):
            lots[k] = self.ledger.pos(self.ledger.slot(owners[k]), instrument).position
        return out

    def equities(self, owners=None):
        """Every account's (or those of ``owners``, in that order) collateral, equity and
        maintenance margin at the current marks, quote units, as EQUITY_DTYPE rows: what
        ``account()`` gives of each, without a Python object per account. KeyError naming the
        first owner without an account."""
        cdef const int64_t[::1] o
        cdef int64_t[::1] coll, eq, mmv, lots
        cdef uint8_t[::1] ex
        cdef Py_ssize_t k
        cdef int32_t slot
        cdef const Account* a
        cdef const Position* p
        cdef int128 ou, mm, equity
        cdef int64_t held
        self._enter()
        try:
            ids = self._owners_arg(owners)
            n = len(ids)
            columns = {name: np.zeros(n, dtype=np.int64)
                       for name in ("collateral", "equity", "maintenance_margin", "lots")}
            exempt = np.zeros(n, dtype=np.bool_)
            if n:
                o, ex = ids, exempt.view(np.uint8)
                coll, eq = columns["collateral"], columns["equity"]
                mmv, lots = columns["maintenance_margin"], columns["lots"]
                self.mark()
                for k in range(n):
                    slot = self.ledger.slot(o[k])
                    if slot < 0:
                        raise no_account(f"owners[{k}]", o[k])
                    a = &self.ledger.accounts[slot]
                    self.ledger.others(a, -1, &ou, &mm, NULL)
                    equity = a.collateral + ou
                    held = 0
                    p = &a.pos
                    while p != NULL:
                        held += p.position if p.position > 0 else -p.position
                        p = self.ledger.next_pos(a, p)
                    if not held:
                        # a flat account: instrument 0's (flat) margin, as account() gives
                        mm = self.ledger.maintenance(&a.pos, self.mark_value, self.has_mark)
                    if not (INT64_MIN <= equity <= INT64_MAX and INT64_MIN <= mm <= INT64_MAX):
                        raise OverflowError(f"owner {o[k]}'s equity or margin passes int64: "
                                            f"read it with account()")
                    coll[k], eq[k], mmv[k] = a.collateral, <int64_t>equity, <int64_t>mm
                    ex[k], lots[k] = a.exempt, held
            out = np.zeros(n, dtype=EQUITY_DTYPE)
            out["owner"] = ids
            out["exempt"] = exempt
            for name, column in columns.items():
                out[name] = column
            return out
        finally:
            self._leave()

    def positions(self, owners=None):
        """Every open position of every account (or of ``owners``, in that order), as
        POSITION_DTYPE rows, by owner and then in ``account(owner).positions``'s order: what
        ``account()`` gives of each (lots, cost, notional at the mark, liquidation price),
        without a Python object per position. KeyError naming the first owner without an
        account; OverflowError for a notional past int64 (read that one with account())."""
        cdef const int64_t[::1] o
        cdef Py_ssize_t k, rows = 0
        self._enter()
        try:
            ids = self._owners_arg(owners)
            o = ids
            k = self._first_unknown(o)
            if k >= 0:
                raise no_account(f"owners[{k}]", o[k])
            self.mark()
            for k in range(o.shape[0]):
                rows += self.ledger.held(&self.ledger.accounts[self.ledger.slot(o[k])])
            out = np.zeros(rows, dtype=POSITION_DTYPE)
            c = {name: np.zeros(rows, dtype=np.int64)
                 for name in ("owner", "position", "cost", "notional", "liquidation_price")}
            c["has_liquidation_price"] = np.zeros(rows, dtype=np.bool_)
            c["exempt"] = np.zeros(rows, dtype=np.bool_)
            c["instrument"] = self._fill_positions(
                o, c["owner"], c["position"], c["cost"], c["notional"], c["liquidation_price"],
                c["has_liquidation_price"].view(np.uint8), c["exempt"].view(np.uint8))
            for name, column in c.items():
                out[name] = column
            return out
        finally:
            self._leave()

    cdef object _fill_positions(self, const int64_t[::1] o, int64_t[::1] owner,
                                int64_t[::1] lots, int64_t[::1] cost, int64_t[::1] notional,
                                int64_t[::1] liq, uint8_t[::1] has_liq,
                                uint8_t[::1] exempt):
        # positions()' rows, as _account_info reckons each position; returns the instruments
        cdef Py_ssize_t k, row = 0
        cdef const Account* a
        cdef const Position* p
        cdef int128 ou, om, value
        cdef price_t price = 0
        cdef qty_t size
        instruments = np.zeros(owner.shape[0], dtype=np.int32)
        cdef int32_t[::1] instrument = instruments
        for k in range(o.shape[0]):
            a = &self.ledger.accounts[self.ledger.slot(o[k])]
            p = &a.pos
            while p != NULL:
                if p.position != 0:
                    self.ledger.select(p.instrument)
                    self.ledger.others(a, p.instrument, &ou, &om, NULL)
                    size = p.position if p.position > 0 else -p.position
                    value = (self.ledger.value(self.ledger.marks[p.instrument], size)
                             if self.ledger.has_mark[p.instrument] else 0)
                    if not INT64_MIN <= value <= INT64_MAX:
                        self.ledger.select(0)
                        raise OverflowError(f"owner {o[k]}'s notional on instrument "
                                            f"{p.instrument} passes int64: read it with "
                                            f"account()")
                    owner[row], instrument[row], lots[row] = o[k], p.instrument, p.position
                    cost[row], notional[row] = p.cost, <int64_t>value
                    exempt[row] = a.exempt
                    if p.indexed == IN_LONGS or p.indexed == IN_SHORTS:
                        # a one-position account: the price its index entry was made with
                        # (the same search; the index follows every change of the account)
                        liq[row], has_liq[row] = p.liq_price, 1
                    elif self.ledger.liquidation_price(a, p, ou, om, &price):
                        liq[row], has_liq[row] = price, 1
                    row += 1
                p = self.ledger.next_pos(a, p)
        self.ledger.select(0)
        return instruments

    def liquidatable(self, owners):
        """Whether each account of ``owners`` is liquidatable now, as the liquidator's trigger
        sees it (a bool array): not exempt, holding a position, every mark it needs known, and
        its equity under its maintenance margin (or at it, under Trigger.AT_OR_BELOW).
        KeyError naming the first owner without an account."""
        cdef const int64_t[::1] o
        cdef uint8_t[::1] out
        cdef Py_ssize_t k
        cdef int32_t slot
        self._enter()
        try:
            ids = int64_column("owners", owners)
            result = np.zeros(len(ids), dtype=np.bool_)
            if not len(ids):
                return result
            o, out = ids, result.view(np.uint8)
            self.mark()
            for k in range(o.shape[0]):
                slot = self.ledger.slot(o[k])
                if slot < 0:
                    raise no_account(f"owners[{k}]", o[k])
                out[k] = self.ledger.liquidatable(&self.ledger.accounts[slot])
            return result
        finally:
            self._leave()

    def account(self, owner):
        """An account's state evaluated at the current mark (AccountInfo)."""
        self._enter()
        try:
            return self._account_info(self._slot(owner))
        finally:
            self._leave()

    cdef object _account_info(self, int32_t slot):
        self.mark()
        cdef const Account* a = &self.ledger.accounts[slot]
        cdef const Position* p = &a.pos
        cdef const Holding* h
        cdef int128 equity_c, mm_c, im_c, notional, ou, om, u_i, mm_i, im_i
        cdef price_t m, liq = 0, bankrupt = 0
        cdef bint has_liq, has_bankrupt
        cdef qty_t size
        # MM on the basis the trigger uses (the entry value needs no mark); IM on the notional.
        self.ledger.others(a, -1, &ou, &mm_c, &im_c)
        equity_c = a.collateral + ou
        positions = []
        first = (0, 0, None, None)
        while p != NULL:
            if p.position != 0 or p.instrument == 0:
                self.ledger.select(p.instrument)
                self.ledger.others(a, p.instrument, &ou, &om, NULL)
                m = self.ledger.marks[p.instrument]
                size = p.position if p.position > 0 else -p.position
                notional = (self.ledger.value(m, size) if self.ledger.has_mark[p.instrument]
                            else 0)
                u_i = self.ledger.unrealised(p, m, self.ledger.has_mark[p.instrument])
                mm_i = self.ledger.maintenance(p, m, self.ledger.has_mark[p.instrument])
                im_i = self.ledger.requirement(notional, True)
                has_liq = self.ledger.liquidation_price(a, p, ou, om, &liq)
                has_bankrupt = self.ledger.bankruptcy_price(a, p, ou, &bankrupt)
                if p.instrument == 0:
                    first = (p.position, p.cost, liq if has_liq else None,
                             bankrupt if has_bankrupt else None)
                if p.position != 0:
                    positions.append(PositionInfo(
                        p.instrument, p.position, p.cost, to_python(notional), to_python(u_i),
                        to_python(mm_i), to_python(im_i), liq if has_liq else None,
                        bankrupt if has_bankrupt else None))
            p = self.ledger.next_pos(a, p)
        self.ledger.select(0)
        if not positions:
            # A flat account: the margins of instrument 0's (flat) position, as ever.
            mm_c = self.ledger.maintenance(&a.pos, self.mark_value, self.has_mark)
            im_c = self.ledger.requirement(0, True)
        fields = (a.owner, a.collateral, bool(a.exempt), bool(a.isolated), a.reserve)
        equity, mm = to_python(equity_c), to_python(mm_c)
        if equity > 0:
            ratio = mm / equity
        else:
            ratio = float("inf") if mm > 0 else 0.0
        holdings = []
        h = self.ledger.first_holding(a)
        while h != NULL:
            if h.units:
                holdings.append(HoldingInfo(h.asset, h.units,
                                            to_python(self.ledger.holding_value(h))))
            h = self.ledger.next_holding(h)
        return AccountInfo(fields[0], fields[1], first[0], first[1], equity, mm,
                           to_python(im_c), ratio, first[2], first[3], fields[2], fields[3],
                           fields[4], tuple(positions), tuple(holdings))

    @property
    def insurance_fund(self):
        """The insurance fund's balance (collateral of its account), quote units."""
        return self.acct(self.ledger.slot(t.INSURANCE_FUND)).collateral

    @property
    def fees_collected(self):
        """Trading fees taken out of the accounts so far, quote units."""
        return self.ledger.fees_collected

    @property
    def asset_deposits(self):
        """Units of each collateral asset deposited so far (one int per ``assets`` entry)."""
        return tuple(self._asset_deposits)

    @property
    def conversions(self):
        """Per collateral asset, (units the venue bought from liquidated accounts, quote units
        it paid for them) so far (ForcedKind.CONVERSION records)."""
        cdef size_t n
        return tuple((self.ledger.converted_units[n], self.ledger.converted_paid[n])
                     for n in range(self.ledger.assets.size()))

    def _asset_parts(self):
        # The checked collateral assets (_engine_args.venue_assets dicts), for check_state.
        return self._assets

    def trades(self, instrument=0, *, start=0):
        """Every trade the engine has settled in ``instrument``'s book, forced ones included
        (EVENT_DTYPE rows); from the ``start``-th on (0 <= start <= the trade count), so that
        a caller following the log reads only what is new."""
        self._enter()
        try:
            return self.ledger.trades_array(self._use(instrument), check.trade_start(start))
        finally:
            self._leave()

    def open_interest(self, instrument=0):
        """Lots of ``instrument`` held long across all accounts (equal to the lots held short).
        O(1)."""
        cdef int32_t index = 0
        if not (type(instrument) is int and instrument == 0):
            index = instrument_arg(instrument, self._names)
        # many accounts at max_position can pass int64 together: an int128
        return to_python(self.ledger.long_lots[index])

    def owners(self):
        """Owner ids of every account (the insurance fund's included), ascending."""
        self._enter()
        try:
            out = self._owner_ids()
        finally:
            self._leave()
        out.sort()
        return out

    cdef list _owner_ids(self):
        cdef size_t i
        return [self.ledger.accounts[i].owner for i in range(self.ledger.accounts.size())]

    def total_equity(self, mark=None):
        """Sum of every account's equity and reserve (the fund's included) at ``mark`` (ticks,
        >= 0; default the current marks): an int in a one-instrument venue, else a sequence of
        one mark per instrument. O(accounts x positions)."""
        cdef size_t n = self.ledger.instruments.size()
        self._enter()
        try:
            marks = equity_marks(mark, n)   # the one check both engines share
            if marks is None:
                self.mark()
                marks = [self.ledger.marks[i] if self.ledger.has_mark[i] else None
                         for i in range(n)]
            return self._total_equity(marks)
        finally:
            self._leave()

    cdef object _total_equity(self, list marks):
        # Sum of collateral + reserve + unrealised, regrouped so nothing can overflow: costs and
        # balances are int64 (their sum over < 2**31 accounts fits int128), and each mark
        # enters once, times the instrument's net position, in Python integers. A None mark:
        # that instrument's positions count nothing unrealised.
        cdef int128 balances = 0, value
        cdef vector[int128] net
        cdef vector[uint8_t] counted
        cdef size_t i
        cdef const Account* a
        cdef const Position* p
        cdef const Holding* h
        net.resize(len(marks))
        for m in marks:
            counted.push_back(m is not None)
        for i in range(self.ledger.accounts.size()):
            a = &self.ledger.accounts[i]
            balances += <int128>a.collateral + a.reserve
            p = &a.pos
            while p != NULL:
                if counted[p.instrument] and p.position:
                    if self.ledger.inverse:
                        # floor(k |q| / m) per position (it does not sum over the net one)
                        value = self.ledger.value_at(self.ledger.instruments[p.instrument].k,
                                                     <price_t>marks[p.instrument],
                                                     p.position if p.position > 0
                                                     else -p.position)
                        balances += p.cost - value if p.position > 0 else value - p.cost
                    else:
                        balances += -p.cost if p.position > 0 else p.cost
                        net[p.instrument] += p.position
                p = self.ledger.next_pos(a, p)
        total = to_python(balances)
        for i in range(net.size()):
            if counted[i]:
                total += to_python(net[i]) * marks[i] * self.ledger.instruments[i].k
        # Collateral assets, in Python integers (a mark here may pass max_price).
        for i in range(self.ledger.accounts.size()):
            h = self.ledger.first_holding(&self.ledger.accounts[i])
            while h != NULL:
                part = self._assets[h.asset]
                total += asset_value(h.units, marks[part["instrument"]], part["num"],
                                     part["den"], part["haircut_ppm"])
                h = self.ledger.next_holding(h)
        return total

    # ------------------------------------------------------------------ orders
    cdef price_t _price(self, str name, price) except -1:
        # A price within the selected instrument's [1, max_price].
        cdef int64_t value = check.as_int64(name, price)
        if 1 <= value <= self.ledger.max_price:
            return value
        return limit_price(name, value, self.ledger.max_price)  # raises, with the shared message

    cdef price_t _order_price(self, str name, price) except -1:
        # An order's price or stop price within [1, max_price]; else OrderError (INVALID_PRICE,
        # INVALID_STOP_PRICE) with the shared message.
        cdef int64_t value = check.as_int64(name, price)
        if 1 <= value <= self.ledger.max_price:
            return value
        return order_price(name, value, self.ledger.max_price)  # raises

    cdef inline qty_t _open_on(self, int32_t slot, int side) noexcept nogil:
        # Lots of the account's resting orders and armed stops on ``side`` in the selected
        # instrument's book.
        cdef const Position* p = self.ledger.pos(slot, self.ledger.cur)
        return p.open_buy if side == BUY else p.open_sell

    # The order checks (docs/liquidation.md): each returns the Reason code that refuses the
    # order (0: it passes) and changes nothing, without the GIL, so that the per-call path
    # (which raises, _refused) and the batch (which reports a REJECTED event, process) share
    # them. The numbers a refusal's message names go to ``r``, computed only where they are
    # known anyway.
    cdef int _spot_reason(self, OrderBook book, int32_t slot, int side, int64_t kind,
                          price_t price, price_t stop_price, qty_t qty, qty_t open_qty,
                          Refusal* r) noexcept nogil:
        # A spot order must be paid for (the reference's _check_spot): a sell by the units it
        # holds, a non-exempt account's buy by its quote collateral, open orders counted. (An
        # isolated account's spot order is the caller's error, refused before.)
        cdef int32_t i = self.ledger.cur
        cdef const InstrumentRec* rec = &self.ledger.instruments[i]
        cdef const Account* a = &self.ledger.accounts[slot]
        cdef const Holding* h
        cdef price_t p
        if qty < 1:
            return 0   # the book refuses it as INVALID_QTY
        if side == SELL:
            r.need = (<int128>open_qty + qty) * rec.units_per_lot
            r.have = 0
            h = self.ledger.own_holding(a, i)   # the spot book's asset is the one it values
            if h != NULL:
                r.have = h.units
            return t.R_INSUFFICIENT_MARGIN if r.need > r.have else 0
        if a.exempt:
            return 0
        p = price if t.is_priced(kind) else reach_price(&book.asks, side, qty)
        if t.is_stop(kind) and stop_price > p:
            p = stop_price
        if p == 0:
            return 0   # a market buy with nothing to buy: it cannot fill
        r.need = self.ledger.value(p, <qty_t>(<int128>open_qty + qty))
        r.have = a.collateral
        return t.R_INSUFFICIENT_MARGIN if r.need > r.have else 0

    cdef int _isolated_reason(self, int32_t slot, int32_t instrument,
                              Refusal* r) noexcept nogil:
        # An isolated account's margin backs one position: an order or seed in ``instrument``
        # while it holds a position or open orders in another (r.held) is refused (the
        # reference's _check_isolated). O(positions).
        cdef const Account* a = &self.ledger.accounts[slot]
        cdef const Position* p = &a.pos
        if not a.isolated or self.ledger.instruments.size() == 1:
            return 0
        while p != NULL:
            if p.instrument != instrument and (p.position or p.open_buy or p.open_sell):
                r.held = p.instrument
                return t.R_ISOLATED_ELSEWHERE
            p = self.ledger.next_pos(a, p)
        return 0

    cdef int _exposure_reason(self, int32_t slot, int side, qty_t qty,
                              Refusal* r) noexcept nogil:
        # In int128 none of the three int64 terms can wrap. Per instrument: the selected one's
        # max_position and the account's lots there. (qty < 1: the book refuses it.)
        cdef const Position* p = self.ledger.pos(slot, self.ledger.cur)
        cdef qty_t bound = self.ledger.max_position
        cdef int128 worst = p.position + side * (<int128>self._open_on(slot, side) + qty)
        r.qty = qty
        if qty < 1 or -bound <= worst <= bound:
            return 0
        return t.R_POSITION_LIMIT

    cdef int _margin_reason(self, OrderBook book, int32_t slot, int side, int64_t kind,
                            price_t price, price_t stop_price, qty_t qty, qty_t open_qty,
                            Refusal* r) noexcept nogil:
        # docs/liquidation.md, "Initial margin": an order of ``qty`` lots on ``side`` (``kind``;
        # ``price`` and ``stop_price`` checked, 0 where the kind has none) in the selected
        # instrument i besides the account's ``open_qty`` other open lots on that side there.
        # Required: IM_i of the worst position plus the others' IM at their marks; equity: the
        # account's at mark m of i, the others held fixed. In int128: no term can wrap.
        cdef int32_t i = self.ledger.cur
        cdef const Account* a = &self.ledger.accounts[slot]
        cdef const Position* pos = self.ledger.pos(slot, i)
        cdef int128 held = pos.position, worst, size
        cdef int128 ou = 0, om = 0, oim = 0
        cdef price_t p, m
        if not self.check_initial_margin or a.exempt or qty < 1:
            return 0   # (qty < 1: the book refuses it as INVALID_QTY)
        worst = held + side * (<int128>open_qty + qty)
        size = worst if worst >= 0 else -worst
        if size <= (held if held >= 0 else -held) and (worst == 0 or (worst > 0) == (held > 0)):
            return 0   # reducing: always accepted
        if t.is_priced(kind):
            p = price
        else:
            p = reach_price(&book.asks if side == BUY else &book.bids, side, qty)
        if t.is_stop(kind) and stop_price > p:
            p = stop_price
        self.mark()
        a = &self.ledger.accounts[slot]
        pos = self.ledger.pos(slot, i)
        if self.ledger.has_mark[i] and self.ledger.marks[i] > p:
            p = self.ledger.marks[i]
        if p == 0:
            return 0   # a market order, no mark, nothing on the other side: it cannot fill
        m = self.ledger.marks[i] if self.ledger.has_mark[i] else p
        r.loss = 0
        if self.ledger.inverse:
            # a coin notional is largest at the lowest price: the mark or a lower limit price
            if t.is_priced(kind):
                r.loss = side * (self.ledger.value(m, qty) - self.ledger.value(price, qty))
                r.loss = r.loss if r.loss > 0 else 0
            p = price if t.is_priced(kind) and price < m else m
        elif t.is_priced(kind) and side * (price - m) > 0:
            r.loss = <int128>(side * (price - m)) * qty * self.ledger.k
        if a.pos.next >= 0 or a.holdings >= 0:
            self.ledger.others(a, i, &ou, &om, &oim)
        r.need = self.ledger.requirement(self.ledger.value(p, <qty_t>size), True) + oim
        r.have = self.ledger.equity(a, pos, m, True) + ou
        return 0 if r.need + r.loss <= r.have else t.R_INSUFFICIENT_MARGIN

    cdef int _order_reason(self, OrderBook book, int32_t slot, int side, int64_t kind,
                           price_t price, price_t stop_price, qty_t qty,
                           Refusal* r) noexcept nogil:
        # A new order's checks, in order, once its owner, side and prices passed: spot funds,
        # or the isolated account's one position, max_position and the initial margin.
        cdef int reason
        if self.ledger.instruments[self.ledger.cur].spot_asset >= 0:
            return self._spot_reason(book, slot, side, kind, price, stop_price, qty,
                                     self._open_on(slot, side), r)
        reason = self._isolated_reason(slot, self.ledger.cur, r)
        if reason == 0:
            reason = self._exposure_reason(slot, side, qty, r)
        if reason == 0:
            reason = self._margin_reason(book, slot, side, kind, price, stop_price, qty,
                                         self._open_on(slot, side), r)
        return reason

    cdef int _amend_reason(self, OrderBook book, const Order* o, price_t price, qty_t qty,
                           Refusal* r) noexcept nogil:
        # An amend of live order ``o`` to ``price`` (checked) and ``qty`` lots: the amended
        # order replaces the old, so the other open lots on its side count, plus it.
        cdef int32_t slot = self.ledger.slot(o.owner)
        cdef int128 extra = <int128>qty - o.qty
        cdef bint grows = extra > 0 or price != o.price
        cdef int reason = 0
        if self.ledger.instruments[self.ledger.cur].spot_asset >= 0:
            if grows:
                reason = self._spot_reason(book, slot, o.side, t.K_AMEND, price, 0, qty,
                                           self._open_on(slot, o.side) - o.qty, r)
            return reason
        if extra > 0:
            reason = self._exposure_reason(slot, o.side, <qty_t>extra, r)
        if reason == 0 and grows and not t.is_stop(o.kind):
            reason = self._margin_reason(book, slot, o.side, t.K_AMEND, price, 0, qty,
                                         self._open_on(slot, o.side) - o.qty, r)
        return reason

    cdef object _refused(self, int reason, int32_t slot, int side, Refusal* r):
        # The OrderError the per-call path raises for a check's ``reason``, with the numbers
        # the check left in ``r`` (the state is as the check saw it).
        cdef const Account* a = &self.ledger.accounts[slot]
        cdef int32_t i = self.ledger.cur
        cdef const Position* p
        if reason == t.R_ISOLATED_ELSEWHERE:
            return order_elsewhere(a.owner, self._names[r.held], self._names[i])
        if reason == t.R_POSITION_LIMIT:
            p = self.ledger.pos(slot, i)
            try:
                exposure(a.owner, p.position, self._open_on(slot, side), side, r.qty,
                         self.ledger.max_position)
            except OrderError as exc:
                return exc
        if self.ledger.instruments[i].spot_asset >= 0:
            return insufficient_spot(a.owner, self._names[i], side, to_python(r.need),
                                     to_python(r.have))
        return insufficient_margin(a.owner, to_python(r.need), to_python(r.loss),
                                   to_python(r.have))

    cdef int _check_isolated(self, int32_t slot, int32_t instrument) except -1:
        # seed_position's use of the one-position rule: a plain ValueError (not an order).
        cdef Refusal r
        if self._isolated_reason(slot, instrument, &r):
            raise isolated_elsewhere(self.acct(slot).owner, self._names[r.held],
                                     self._names[instrument])
        return 0

    def submit(self, kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0, *,
               instrument=0, events=True):
        """Send one message to ``instrument``'s book (index or name) for an account; settle its
        trades; return its events.

        With ``events=False`` (every per-call method takes it) the message runs and settles the
        same way but no Event tuples are built: the call returns the lots its own order filled
        as taker (see OrderBook.submit).
        """
        self._enter()
        try:
            return self._submit(kind, order_id, side, price, qty, owner, stop_price,
                                self._use(instrument), events)
        finally:
            self._leave()

    cdef object _submit(self, kind, order_id, side, price, qty, owner, stop_price,
                        int32_t instrument, bint events):
        # The checks in the order process() applies them (_screen): the caller's errors raise
        # ValueError/KeyError/TypeError, the refusals OrderError with the batch's reason.
        cdef OrderBook book = <OrderBook>self._books[instrument]
        cdef int64_t k = check.as_int64("kind", kind)
        cdef oid_t oid = check.as_int64("order_id", order_id)
        cdef int32_t slot
        cdef int side_value, reason
        cdef price_t limit = 0, stop = 0
        cdef qty_t lots
        cdef slot_t found
        cdef Order o
        cdef Refusal r
        if oid < 0:
            user_order_id(oid)  # raises, with the shared message
        if not (t.K_LIMIT <= k <= t.K_AMEND):
            raise check.error_for(t.R_INVALID_KIND, k, oid, 0, 0, 0, 0)
        if k == t.K_AMEND:
            found = id_find(&book.ids, book.pool.data(), oid)
            if found == NO_SLOT:
                raise check.unknown_order(oid)
            o = book.pool[found]
            limit = self._order_price("price", price)
            lots = check.as_int64("qty", qty)
            reason = self._amend_reason(book, &o, limit, lots, &r)
            if reason:
                raise self._refused(reason, self.ledger.slot(o.owner), o.side, &r)
            book._submit_one(k, oid, side, price, qty, owner, stop_price)
            if book.events.size() and book.events[0].kind == t.EV_AMENDED:
                # The old quantity leaves the open total; the AMENDED event adds the new one.
                self.ledger.track_open(self.ledger.slot(o.owner), o.side, -o.qty)
            self.ledger.settle_events(book.events, oid, True)
            self.mark()
            return book._event_list(order_id, price, qty) if events else book._filled()
        if k != t.K_CANCEL:
            slot = self._slot(owner)
            if self.acct(slot).owner == t.INSURANCE_FUND:
                order_owner(t.INSURANCE_FUND)  # raises, with the shared message
            if self.ledger.instruments[instrument].spot_asset >= 0 and self.acct(slot).isolated:
                raise spot_isolated(self.acct(slot).owner)
            side_value = check.order_side(side)
            if t.is_priced(k):
                limit = self._order_price("price", price)
            if t.is_stop(k):
                stop = self._order_price("stop_price", stop_price)
            lots = check.as_int64("qty", qty)
            reason = self._order_reason(book, slot, side_value, k, limit, stop, lots, &r)
            if reason:
                raise self._refused(reason, slot, side_value, &r)
        book._submit_one(k, oid, side, price, qty, owner, stop_price)
        self.ledger.settle_events(book.events, oid, not t.is_immediate(k))
        self.mark()  # the mark follows every message, whether or not anyone looks at it
        # Built after settling, from the book's buffer, which nothing above changes.
        return book._event_list(order_id, price, qty) if events else book._filled()

    # ------------------------------------------------------------------ batch
    def process(self, messages, *, instrument=0, liquidate_every=0, out=None, record="all"):
        """Run a ``MESSAGE_DTYPE`` array (with owners) through ``instrument``'s book, settling
        as per call, with the GIL released; return ``BatchResult(events, forced_orders)``.

        Exactly ``for m in messages: submit(m["kind"], m["order_id"], m["side"], m["price"],
        m["qty"], m["owner"], m["stop_price"], instrument=instrument)`` (trades settled with
        their fees, the mark after every message), except that a message the per-call path
        refuses with ``OrderError`` (Reason INVALID_*, DUPLICATE_ID, UNKNOWN_ORDER,
        QTY_OVERFLOW, INSUFFICIENT_MARGIN, POSITION_LIMIT, ISOLATED_ELSEWHERE; a price or stop
        price above ``max_price`` is INVALID_PRICE or INVALID_STOP_PRICE) is one REJECTED event
        with that reason echoing the row, and changes nothing but the book's message and event
        counters (as in ``OrderBook.process``). The caller's errors are checked for the whole
        batch first and raise, naming the row, with nothing changed: TypeError/ValueError for
        an array that is not one-dimensional MESSAGE_DTYPE, ValueError for a negative order id,
        and for a new order (kinds 1-7) KeyError for an owner with no account, ValueError for
        the insurance fund or (on a spot book) an isolated account.

        ``liquidate_every`` n >= 1 runs one liquidation round (``liquidation_round()``) after
        every n-th message; ``forced_orders`` holds the records of those rounds (FORCED_DTYPE;
        empty with the default 0, which runs none, as the per-call path runs none by itself).

        ``record`` and ``out`` are OrderBook.process's (``orderbook.batch``): keep all events,
        only TRADE and REJECTED ones, or count them (``events`` is then a ``BatchCounts``);
        write them to a reused EVENT_DTYPE array. Checked with the rest, before anything runs.
        """
        cdef int32_t i
        cdef int64_t every
        cdef int mode
        self._enter()
        try:
            i = self._use(instrument)
            every = check.as_count("liquidate_every", liquidate_every)
            mode = record_mode(record)
            rows = batch_messages(messages, self._isolated_or_none,
                                  self.ledger.instruments[i].spot_asset >= 0)
            return self._process(rows, i, every, out_buffer(out, mode, messages), mode)
        finally:
            self._leave()

    def _isolated_or_none(self, owner):
        # batch_messages' view of the accounts: None for no account, else whether isolated.
        cdef int32_t slot = self.ledger.slot(owner)
        return None if slot < 0 else bool(self.acct(slot).isolated)

    cdef object _process(self, cnp.ndarray rows, int32_t instrument, int64_t every, out,
                         int record):
        cdef OrderBook book = <OrderBook>self._books[instrument]
        cdef Py_ssize_t n = rows.shape[0]
        # batch_messages' private C-contiguous copy: its data pointer as OrderBook._process
        # takes it (a byte view costs microseconds a call)
        cdef const uint8_t* data = <const uint8_t*>cnp.PyArray_DATA(rows)
        cdef EventSink sink
        cdef size_t first = self.liquidator.records.size()
        # The book's sink: reserved from the book's measured events per message, or out=.
        book._open_sink(&sink, out, record, n)
        with nogil:
            self._run_rows(book, instrument, data, n, every, &sink)
        events = book._sink_result(&sink, out, n)
        return BatchResult(events, self.liquidator.records_array(first))

    cdef int _run_rows(self, OrderBook book, int32_t instrument, const uint8_t* rows,
                       Py_ssize_t n, int64_t every, EventSink* sink) except -1 nogil:
        cdef Py_ssize_t i
        cdef Message m
        for i in range(n):
            # A copy per message, as OrderBook.run_batch: the rows may be unaligned.
            memcpy(&m, rows + i * sizeof(Message), sizeof(Message))
            self._run_one(book, &m)
            sink_take(sink, book.events.data(), <Py_ssize_t>book.events.size())
            if every and (i + 1) % every == 0:
                with gil:
                    self.liquidator.run_round()
                self.ledger.select(instrument)
        return 0

    cdef void _run_one(self, OrderBook book, const Message* m) noexcept nogil:
        # One message as _submit runs it, a refusal being one REJECTED event in book.events.
        cdef Refusal r
        cdef slot_t found = NO_SLOT
        cdef Order o
        cdef int kind = m.kind
        cdef int reason = self._screen(book, m, &r)
        book.events.clear()
        if reason == 0:
            reason = book.validate(m, &found)
        if reason != 0:
            book.execute(m, reason, found)
            return
        if kind == t.K_AMEND:
            o = book.pool[found]
            book.execute(m, reason, found)
            if book.events.size() and book.events[0].kind == t.EV_AMENDED:
                self.ledger.track_open(self.ledger.slot(o.owner), o.side, -o.qty)
            self.ledger.settle_events(book.events, m.order_id, True)
        else:
            book.execute(m, reason, found)
            self.ledger.settle_events(book.events, m.order_id, not t.is_immediate(kind))
        self.mark()

    cdef int _screen(self, OrderBook book, const Message* m, Refusal* r) noexcept nogil:
        # _submit's checks on a row whose caller errors were ruled out (batch_messages): the
        # Reason that refuses it, 0 if the book is to run it.
        cdef int kind = m.kind
        cdef slot_t found
        cdef Order o
        cdef price_t limit = 0, stop = 0
        if not (t.K_LIMIT <= kind <= t.K_AMEND):
            return t.R_INVALID_KIND
        if kind == t.K_CANCEL:
            return 0
        if kind == t.K_AMEND:
            found = id_find(&book.ids, book.pool.data(), m.order_id)
            if found == NO_SLOT:
                return t.R_UNKNOWN_ORDER
            if not 1 <= m.price <= self.ledger.max_price:
                return t.R_INVALID_PRICE
            o = book.pool[found]
            return self._amend_reason(book, &o, m.price, m.qty, r)
        if m.side != BUY and m.side != SELL:
            return t.R_INVALID_SIDE
        if t.is_priced(kind):
            if not 1 <= m.price <= self.ledger.max_price:
                return t.R_INVALID_PRICE
            limit = m.price
        if t.is_stop(kind):
            if not 1 <= m.stop_price <= self.ledger.max_price:
                return t.R_INVALID_STOP_PRICE
            stop = m.stop_price
        return self._order_reason(book, self.ledger.slot(m.owner), m.side, kind, limit, stop,
                                  m.qty, r)

    def limit(self, order_id, side, price, qty, owner, *, instrument=0, events=True):
        """Limit order for an account (see OrderBook.limit)."""
        return self.submit(Kind.LIMIT, order_id, side, price, qty, owner,
                           instrument=instrument, events=events)

    def market(self, order_id, side, qty, owner, *, instrument=0, events=True):
        """Market order for an account."""
        return self.submit(Kind.MARKET, order_id, side, 0, qty, owner,
                           instrument=instrument, events=events)

    def ioc(self, order_id, side, price, qty, owner, *, instrument=0, events=True):
        """Immediate-or-cancel order for an account."""
        return self.submit(Kind.IOC, order_id, side, price, qty, owner,
                           instrument=instrument, events=events)

    def fok(self, order_id, side, price, qty, owner, *, instrument=0, events=True):
        """Fill-or-kill order for an account."""
        return self.submit(Kind.FOK, order_id, side, price, qty, owner,
                           instrument=instrument, events=events)

    def post_only(self, order_id, side, price, qty, owner, *, instrument=0, events=True):
        """Post-only order for an account."""
        return self.submit(Kind.POST_ONLY, order_id, side, price, qty, owner,
                           instrument=instrument, events=events)

    def stop_market(self, order_id, side, stop_price, qty, owner, *, instrument=0, events=True):
        """Stop-market order for an account."""
        return self.submit(Kind.STOP_MARKET, order_id, side, 0, qty, owner, stop_price,
                           instrument=instrument, events=events)

    def stop_limit(self, order_id, side, stop_price, price, qty, owner, *, instrument=0,
                   events=True):
        """Stop-limit order for an account."""
        return self.submit(Kind.STOP_LIMIT, order_id, side, price, qty, owner, stop_price,
                           instrument=instrument, events=events)

    def cancel(self, order_id, *, instrument=0, events=True):
        """Cancel a resting order or armed stop."""
        return self.submit(Kind.CANCEL, order_id, instrument=instrument, events=events)

    def amend(self, order_id, price, qty, *, instrument=0, events=True):
        """Amend a resting order."""
        return self.submit(Kind.AMEND, order_id, 0, price, qty,
                           instrument=instrument, events=events)

    # ------------------------------------------------------------------ the mark
    def set_index(self, price, *, instrument=0):
        """Set ``instrument``'s external index price (ticks) used by the INDEX, INDEX_CLAMPED and
        FAIR rules.

        ValueError under FAIR when the fair price would pass ``max_price`` (nothing changes).
        """
        cdef int32_t i
        self._enter()
        try:
            i = self._use(instrument)
            index = self._price("price", price)
            fair_mark_fits(self._mark_rules[i], index, self._basis[i], self.ledger.max_price)
            self._index[i] = index
            self._has_index[i] = True
            if i == 0:
                self.index_price = index
                self.has_index = True
            self.mark()
        finally:
            self._leave()

    def set_funding_basis(self, basis_ppm, *, instrument=0):
        """Set ``instrument``'s funding basis (ppm, signed: funding rate x time to the next
        funding / the funding interval) that the FAIR rule adds to the index; within
        +-FUNDING_BASIS_BOUND.

        ValueError when out of bounds or, under FAIR, when the fair price would pass
        ``max_price`` (nothing changes).
        """
        cdef int32_t i
        self._enter()
        try:
            i = self._use(instrument)
            basis = funding_basis_arg(basis_ppm)
            if self._has_index[i]:
                fair_mark_fits(self._mark_rules[i], self._index[i], basis, self.ledger.max_price)
            self._basis[i] = basis
            if i == 0:
                self._funding_basis_ppm = basis
            self.mark()
        finally:
            self._leave()

    @property
    def funding_basis_ppm(self):
        """Instrument 0's funding basis of the FAIR mark, ppm (0 until set_funding_basis)."""
        return self._funding_basis_ppm

    def mark_price(self, instrument=0):
        """``instrument``'s mark price in ticks under its mark rule; the previous mark when the
        rule has none."""
        cdef int32_t i
        self._enter()
        try:
            i = self._use(instrument)
            self.mark()
            return self.ledger.marks[i] if self.ledger.has_mark[i] else None
        finally:
            self._leave()

    cdef void mark(self) noexcept nogil:
        # Every instrument's mark, ascending, into the ledger (instrument 0's also here). The
        # other instruments' books are Python objects in a list: their marks take the GIL (only
        # a several-instrument venue pays for it).
        cdef price_t bid_key = 0, ask_key = 0
        cdef bint has_bid = ladder_first(&self._book.bids, &bid_key) != NULL
        cdef bint has_ask = ladder_first(&self._book.asks, &ask_key) != NULL
        self.mark_from(0, has_bid, -bid_key, has_ask, ask_key, self._book.has_last,
                       self._book.last)
        if self._mark_rules.size() > 1:
            with gil:
                self._mark_others()
        self.mark_value = self.ledger.marks[0]
        self.has_mark = self.ledger.has_mark[0]

    cdef void _mark_others(self) noexcept:
        cdef size_t i
        cdef OrderBook book
        cdef bint has_bid, has_ask
        cdef price_t bid_key, ask_key
        for i in range(1, self._mark_rules.size()):
            book = <OrderBook>self._books[i]
            bid_key = ask_key = 0
            has_bid = ladder_first(&book.bids, &bid_key) != NULL
            has_ask = ladder_first(&book.asks, &ask_key) != NULL
            self.mark_from(i, has_bid, -bid_key, has_ask, ask_key, book.has_last, book.last)

    cdef void mark_from(self, size_t i, bint has_bid, price_t bid, bint has_ask, price_t ask,
                        bint has_last, price_t last) noexcept nogil:
        # Instrument i's mark under its rule from its book's touch and last price.
        cdef int rule = self._mark_rules[i]
        cdef price_t index = self._index[i]
        cdef bint has_index = self._has_index[i]
        if rule == t.MARK_LAST:
            if has_last:
                self.ledger.marks[i], self.ledger.has_mark[i] = last, True
        elif rule == t.MARK_MID:
            if has_bid and has_ask:
                self.ledger.marks[i], self.ledger.has_mark[i] = (bid + ask) // 2, True
        elif rule == t.MARK_INDEX:
            if has_index:
                self.ledger.marks[i], self.ledger.has_mark[i] = index, True
        elif rule == t.MARK_INDEX_CLAMPED:
            if has_index:
                self.ledger.marks[i] = clamped(index, has_bid and has_ask, bid, ask)
                self.ledger.has_mark[i] = True
        elif rule == t.MARK_FAIR:
            if has_index:
                self.ledger.marks[i] = fair_price(index, self._basis[i])
                self.ledger.has_mark[i] = True
        elif has_last:   # LAST_CLAMPED
            self.ledger.marks[i] = clamped(last, has_bid and has_ask, bid, ask)
            self.ledger.has_mark[i] = True

    # ------------------------------------------------------------------ funding
    def settle_funding(self, rate, *, instrument=0):
        """Move one funding payment between the longs and shorts of a perpetual instrument at
        its mark (docs/funding.md): ``rate`` in units of 10**-8 of a position's value (an int
        within +-10**8; > 0: longs pay shorts, < 0: shorts pay longs). Payers pay the ceiling
        of what they owe, receivers get the floor of their pro-rata share of what was paid,
        the remainder goes to the insurance fund; the accounts' liquidation prices move with
        their balances, so the next round queues those funding took under maintenance. Return
        what moved (FundingSettlement), also kept in ``funding_history()``. ValueError on a
        spot book or an instrument without a mark (nothing changes). O(accounts), in C.
        """
        cdef int32_t i
        cdef int64_t r
        cdef int128 paid = 0, received = 0
        cdef int64_t payers = 0, receivers = 0
        cdef int status
        self._enter()
        try:
            i = self._use(instrument)
            r = funding_rate_arg(rate)
            if self.ledger.instruments[i].spot_asset >= 0:
                raise spot_funding(self._names[i])
            self.mark()
            if not self.ledger.has_mark[i]:
                raise no_funding_mark(self._names[i])
            self.ledger.select(i)
            status = self._fund(i, self.ledger.marks[i], r, &paid, &received, &payers,
                                &receivers)
            if status == FUND_TOO_MUCH:
                raise funding_too_large(r, to_python(paid))
            if status == FUND_OVERFLOW:
                raise funding_too_large(r)
            record = FundingSettlement(self.liquidator.now, i, r, self.ledger.marks[i],
                                       to_python(paid), to_python(received),
                                       to_python(paid - received), payers, receivers)
            self._funding.append(tuple(record))
            return record
        finally:
            self._leave()

    cdef int _fund(self, int32_t i, price_t m, int64_t r, int128* paid, int128* received,
                   int64_t* payers, int64_t* receivers) noexcept:
        # The reference's _Ledger.fund in C, no Python object touched: pass 1 sums what the
        # paying side owes (each ceil(V |r| / 10**8)) and the other side's values W; pass 2
        # checks every balance after the move fits int64 (nothing has moved yet); pass 3 moves
        # it, each receiver getting floor(paid V / W), and reindexes what changed. Bounds:
        # V < 2**63 (every value at the mark fits int64), |r| <= 10**8 < 2**27, so V |r| and
        # the sums stay far inside int128; paid <= 2**62 (else FUND_TOO_MUCH), so paid V <
        # 2**125. Returns FUND_DONE, FUND_TOO_MUCH or FUND_OVERFLOW.
        cdef size_t n, count = self.ledger.accounts.size()
        cdef Account* a
        cdef const Position* p
        cdef int128 value, amount, weight = 0, share
        cdef int128 magnitude = r if r > 0 else -r
        cdef int32_t fund = self.ledger.slot(t.INSURANCE_FUND)
        cdef bint pays, overflow = False
        if r == 0:
            return FUND_DONE
        for n in range(count):
            a = &self.ledger.accounts[n]
            p = self.ledger.find(a, i)
            if <int32_t>n == fund or p == NULL or p.position == 0:
                continue
            value = self.ledger.value(m, p.position if p.position > 0 else -p.position)
            if (p.position > 0) == (r > 0):
                amount = ceil_div(value * magnitude, FUNDING_SCALE)
                paid[0] += amount
                payers[0] += 1
                overflow |= a.collateral - amount < INT64_MIN
            else:
                weight += value
                receivers[0] += 1
        # (the reference's order of refusals: the total first)
        if paid[0] > FUNDING_PAID_MAX:
            return FUND_TOO_MUCH
        if overflow:
            return FUND_OVERFLOW
        for n in range(count):
            a = &self.ledger.accounts[n]
            p = self.ledger.find(a, i)
            if <int32_t>n == fund or p == NULL or p.position == 0 or (p.position > 0) == (r > 0):
                continue
            share = paid[0] * self.ledger.value(m, p.position if p.position > 0
                                                else -p.position) // weight
            received[0] += share
            if a.collateral + share > INT64_MAX:
                return FUND_OVERFLOW
        if self.ledger.accounts[fund].collateral + (paid[0] - received[0]) > INT64_MAX:
            return FUND_OVERFLOW
        for n in range(count):
            a = &self.ledger.accounts[n]
            p = self.ledger.find(a, i)
            if <int32_t>n == fund or p == NULL or p.position == 0:
                continue
            value = self.ledger.value(m, p.position if p.position > 0 else -p.position)
            pays = (p.position > 0) == (r > 0)
            if pays:
                a.collateral -= <money_t>ceil_div(value * magnitude, FUNDING_SCALE)
            else:
                a.collateral += <money_t>(paid[0] * value // weight)
            self.ledger.reindex(<int32_t>n)
            self.ledger.select(i)
        self.ledger.accounts[fund].collateral += <money_t>(paid[0] - received[0])
        return FUND_DONE

    def funding_history(self):
        """Every ``settle_funding`` so far, in order (FUNDING_DTYPE: FundingSettlement's
        fields)."""
        self._enter()
        try:
            return np.array(self._funding, dtype=FUNDING_DTYPE)
        finally:
            self._leave()

    # ------------------------------------------------------------------ time
    @property
    def time(self):
        """The engine's clock, ms (0 until ``advance_to``); what ``cooldown_ms`` counts."""
        return self.liquidator.now

    def advance_to(self, time_ms):
        """Set the clock to ``time_ms`` (an int64 of ms, at least ``time``: it never goes
        back; ValueError naming both otherwise, nothing changed). Nothing else happens: the
        cooldowns it ends or keeps open are read when a forced order is sized."""
        self._enter()
        try:
            self.liquidator.now = time_arg(time_ms, self.liquidator.now)
        finally:
            self._leave()

    # ------------------------------------------------------------------ liquidator
    def queue(self):
        """Owners waiting in the liquidation queue, front first."""
        cdef size_t i
        out = []
        self._enter()
        try:
            for i in range(self.liquidator.queue.size()):
                out.append(self.liquidator.queue[i].owner)
        finally:
            self._leave()
        return out

    def liquidate(self, max_rounds=10_000):
        """Run rounds until one makes no progress (or ``max_rounds``); return their records."""
        cdef int64_t limit = check.as_count("max_rounds", max_rounds), _
        self._enter()
        try:
            first = self.liquidator.records.size()
            for _ in range(limit):
                if not self.liquidator.run_round():
                    break
            return self.liquidator.records_array(first)
        finally:
            self._leave()

    def liquidation_round(self):
        """Run one round (docs/liquidation.md); return whether it made progress."""
        self._enter()
        try:
            return self.liquidator.run_round()
        finally:
            self._leave()

    def forced_orders(self, *, start=0):
        """The liquidation records from index ``start`` on (FORCED_DTYPE; by default every one
        so far). O(records returned): a caller that keeps ``forced_order_count`` reads only the
        new ones."""
        cdef int64_t first
        self._enter()
        try:
            first = check.log_start(start, self.liquidator.records.size(), "forced-order")
            return self.liquidator.records_array(<size_t>first)
        finally:
            self._leave()

    @property
    def forced_order_count(self):
        """How many liquidation records there are so far (O(1))."""
        return self.liquidator.records.size()

    def fund_history(self):
        """The insurance fund's balance after every round that made progress: (round, balance)."""
        self._enter()
        try:
            return self.liquidator.fund_history_array()
        finally:
            self._leave()

    # ------------------------------------------------------------------ copies
    def copy(self):
        """An independent engine with the same state and the same future behaviour. O(state)."""
        self._enter()
        try:
            return self._copy()
        finally:
            self._leave()

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    cdef Engine _copy(self):
        cdef Engine other = Engine.__new__(Engine)
        cdef OrderBook book
        other.ledger = self.ledger.copy()
        other._books = [book._copy() for book in self._books]
        other._book = other._books[0]
        other.book = BookView(other._book)
        other.books = tuple(BookView(b) for b in other._books)
        other.instruments = self.instruments
        other.assets = self.assets
        other._assets = self._assets
        other._asset_deposits = list(self._asset_deposits)
        other._names = self._names
        other._mark_rules = self._mark_rules
        other._index = self._index
        other._has_index = self._has_index
        other._basis = self._basis
        other.quote_unit = self.quote_unit
        other.settlement, other.contract_value = self.settlement, self.contract_value
        other.tiers = MarginTiers(self.tiers.rows())
        other.k = self.k
        other.taker_fee_ppm = self.taker_fee_ppm
        other.maker_fee_ppm = self.maker_fee_ppm
        other.liquidation_fee_ppm = self.liquidation_fee_ppm
        other.fraction_ppm = self.fraction_ppm
        other.fraction_above = self.fraction_above
        other.takeover_below_ppm = self.takeover_below_ppm
        other.cooldown_rounds = self.cooldown_rounds
        other.cooldown_ms = self.cooldown_ms
        other.increment = self.increment
        other.band_ppm = self.band_ppm
        other.backstop_discount_ppm = self.backstop_discount_ppm
        other.max_price = self.max_price
        other.max_position = self.max_position
        other.total_deposits = self.total_deposits
        other._mark_rule = self._mark_rule
        other._sizing = self._sizing
        other._limit_rule = self._limit_rule
        other._deficit = self._deficit
        other._adl_ranking = self._adl_ranking
        other._trigger = self._trigger
        other._mm_basis = self._mm_basis
        other._close_order = self._close_order
        other.check_initial_margin = self.check_initial_margin
        other.has_round_cap = self.has_round_cap
        other.has_backstop = self.has_backstop
        other.has_index = self.has_index
        other.has_mark = self.has_mark
        other._round_cap = self._round_cap
        other._backstop = self._backstop
        other.index_price = self.index_price
        other._funding_basis_ppm = self._funding_basis_ppm
        other.mark_value = self.mark_value
        other.liquidator = self.liquidator.copy(list(other._books), other.ledger, <void*>other)
        other._funding = list(self._funding)
        other._busy = False
        return other

    def __reduce__(self):
        # The constructor's settings and the primary state as plain values; _restore checks
        # every field and rebuilds what is derived (indexes, open quantities) instead of
        # trusting raw C structs.
        self._enter()
        try:
            args, kwargs = constructor_args(self)
            return (_restore, (args, kwargs, self._state()))
        finally:
            self._leave()

    cdef dict _state(self):
        # The format of _engine_state.check_state (STATE_VERSION), keys in this order.
        cdef size_t i, n = self._mark_rules.size()
        return {
            "version": STATE_VERSION, "books": list(self._books),
            "accounts": self.ledger.account_rows(), "queue": self.liquidator.queue_rows(),
            "records": self.liquidator.record_rows(),
            "trades": [self.ledger.trades_array(i) for i in range(n)],
            "fund_history": self.liquidator.fund_rows(),
            "fees_collected": self.ledger.fees_collected, "total_deposits": self.total_deposits,
            "round": self.liquidator.round_number, "rounds_run": self.liquidator.rounds_run,
            "next_forced_id": self.liquidator.next_forced_id,
            "index_price": [self._index[i] if self._has_index[i] else None for i in range(n)],
            "mark": [self.ledger.marks[i] if self.ledger.has_mark[i] else None
                     for i in range(n)],
            "funding_basis_ppm": [self._basis[i] for i in range(n)],
            "asset_deposits": list(self._asset_deposits),
            "conversions": list(self.conversions),
            "time": self.liquidator.now,
            "funding_history": list(self._funding),
        }

    cdef int _load(self, dict state) except -1:
        # ``state`` has passed check_state; this engine is fresh (built from the same settings).
        cdef size_t i
        self._books = list(state["books"])
        self._book = self._books[0]
        self.book = BookView(self._book)
        self.books = tuple(BookView(b) for b in self._books)
        parts = [{"k": inst.k, "max_price": inst.max_price, "max_position": inst.max_position,
                  "tiers": inst.tiers} for inst in self._instrument_parts()]
        self.ledger = self._new_ledger(parts)
        self._assemble()
        self.ledger.load_accounts(state["accounts"], state["open"])
        for i in range(len(self._books)):
            self.ledger.load_trades(i, state["trades"][i])
        self.ledger.fees_collected = state["fees_collected"]
        self.liquidator.load(state)
        self.total_deposits = state["total_deposits"]
        self._asset_deposits = list(state["asset_deposits"])
        for i in range(len(state["conversions"])):
            self.ledger.converted_units[i], self.ledger.converted_paid[i] = \
                state["conversions"][i]
        for i in range(len(self._books)):
            index, mark = state["index_price"][i], state["mark"][i]
            self._has_index[i] = index is not None
            self._index[i] = index if index is not None else 0
            self.ledger.has_mark[i] = mark is not None
            self.ledger.marks[i] = mark if mark is not None else 0
            self._basis[i] = state["funding_basis_ppm"][i]
        self.has_index = self._has_index[0]
        self.index_price = self._index[0]
        self.has_mark = self.ledger.has_mark[0]
        self.mark_value = self.ledger.marks[0]
        self._funding_basis_ppm = self._basis[0]
        self._funding = list(state["funding_history"])
        return 0

    cdef list _instrument_parts(self):
        # The ledger's view of each instrument: k, max_price, max_position, tiers.
        cdef size_t i
        out = []
        for i in range(self.ledger.instruments.size()):
            out.append(_Part(self.ledger.instruments[i].k, self.ledger.instruments[i].max_price,
                             self.ledger.instruments[i].max_position,
                             self.tiers if i == 0 else self.instruments[i].tiers))
        return out

    def __repr__(self):
        # Plain C reads, no guard: repr must work while another thread holds the engine.
        cdef int32_t fund = self.ledger.slot(t.INSURANCE_FUND)
        return (f"Engine(accounts={self.ledger.accounts.size() - 1}, "
                f"mark={self.mark_value if self.has_mark else None}, "
                f"fund={self.ledger.accounts[fund].collateral}, "
                f"queue={self.liquidator.queue.size()})")


class _Part:
    __slots__ = ("k", "max_price", "max_position", "tiers")

    def __init__(self, k, max_price, max_position, tiers):
        self.k, self.max_price, self.max_position, self.tiers = k, max_price, max_position, tiers


def _restore(args, kwargs, state):
    """Rebuild a pickled Engine from its settings and a checked state."""
    cdef Engine engine = Engine(*args, **saved_kwargs(kwargs))
    engine._load(check_state(engine, state, OrderBook))
    return engine
