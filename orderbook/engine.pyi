from collections.abc import Sequence
from decimal import Decimal
from typing import Literal, final, overload

import numpy as np
import numpy.typing as npt

from ._bookview import BookView
from .events import (
    AccountInfo,
    AdlRanking,
    AmendRule,
    Asset,
    BatchResult,
    CloseOrder,
    Deficit,
    Event,
    FundingSettlement,
    Instrument,
    LimitRule,
    MarginBasis,
    MarkRule,
    SelfTradePrevention,
    Settlement,
    Sizing,
    Trigger,
)
from .margin import MarginTiers

__all__ = ["Engine"]

_Side = int | str
_Num = str | int | float | Decimal
#: One tier: (notional cap in quote units or None for the last, maintenance ppm, initial ppm).
_Tier = tuple[int | None, int, int]
#: A structured array; the method's docstring names its dtype (EVENT_DTYPE, FORCED_DTYPE,
#: FUND_HISTORY_DTYPE, FUNDING_DTYPE).
_Records = npt.NDArray[np.void]
#: An instrument of the venue: its index in Engine.instruments or its name.
_Instr = int | str

@final
class Engine:
    """Margin accounts, mark price and liquidator around an order book (docs/liquidation.md)."""

    def __init__(
        self,
        tick_size: _Num = "1",
        lot_size: _Num = "1",
        quote_unit: _Num | None = None,
        *,
        tiers: Sequence[_Tier] | MarginTiers = ...,
        taker_fee_ppm: int = 0,
        maker_fee_ppm: int = 0,
        mark_rule: MarkRule | int = ...,
        sizing: Sizing | int = ...,
        fraction_ppm: int = 500_000,
        limit_rule: LimitRule | int | None = None,
        band_ppm: int = 0,
        round_cap: int | None = None,
        liquidation_fee_ppm: int = 0,
        insurance_fund: int = 0,
        backstop: int | None = None,
        backstop_discount_ppm: int = 0,
        deficit: Deficit | int = ...,
        adl_ranking: AdlRanking | int = ...,
        trigger: Trigger | int = ...,
        mm_basis: MarginBasis | int = ...,
        stp: SelfTradePrevention | int = ...,
        amend_rule: AmendRule | int = ...,
        max_price: int | None = None,
        max_position: int | None = None,
        check_initial_margin: bool = True,
        fraction_above: int = 0,
        takeover_below_ppm: int = 0,
        cooldown_rounds: int = 0,
        cooldown_ms: int = 0,
        increment: int = 0,
        limit: LimitRule | int | None = None,  # deprecated: the older name of limit_rule
        instruments: Sequence[Instrument] | None = None,
        close_order: CloseOrder | int = ...,
        assets: Sequence[Asset] | None = None,
        settlement: Settlement | int = ...,
        contract_value: str | int | Decimal | None = None,
    ) -> None: ...
    @property
    def settlement(self) -> Settlement: ...
    @property
    def contract_value(self) -> Decimal | None: ...
    @property
    def books(self) -> tuple[BookView, ...]: ...
    @property
    def instruments(self) -> tuple[Instrument, ...]: ...
    @property
    def assets(self) -> tuple[Asset, ...]: ...
    @property
    def asset_deposits(self) -> tuple[int, ...]: ...
    @property
    def conversions(self) -> tuple[tuple[int, int], ...]: ...
    def _asset_parts(self) -> list[dict[str, int | str]]: ...
    @property
    def book(self) -> BookView: ...
    @property
    def quote_unit(self) -> Decimal: ...
    @property
    def tiers(self) -> MarginTiers: ...
    @property
    def k(self) -> int: ...
    @property
    def taker_fee_ppm(self) -> int: ...
    @property
    def maker_fee_ppm(self) -> int: ...
    @property
    def liquidation_fee_ppm(self) -> int: ...
    @property
    def fraction_ppm(self) -> int: ...
    @property
    def fraction_above(self) -> int: ...
    @property
    def takeover_below_ppm(self) -> int: ...
    @property
    def cooldown_rounds(self) -> int: ...
    @property
    def cooldown_ms(self) -> int: ...
    @property
    def increment(self) -> int: ...
    @property
    def band_ppm(self) -> int: ...
    @property
    def backstop_discount_ppm(self) -> int: ...
    @property
    def max_price(self) -> int: ...
    @property
    def max_position(self) -> int: ...
    @property
    def fees_collected(self) -> int: ...
    @property
    def total_deposits(self) -> int: ...
    @property
    def mark_rule(self) -> MarkRule: ...
    @property
    def sizing(self) -> Sizing: ...
    @property
    def limit_rule(self) -> LimitRule: ...
    @property
    def deficit(self) -> Deficit: ...
    @property
    def adl_ranking(self) -> AdlRanking: ...
    @property
    def trigger(self) -> Trigger: ...
    @property
    def mm_basis(self) -> MarginBasis: ...
    @property
    def close_order(self) -> CloseOrder: ...
    @property
    def check_initial_margin(self) -> bool: ...
    @property
    def round_cap(self) -> int | None: ...
    @property
    def backstop(self) -> int | None: ...
    @property
    def insurance_fund(self) -> int: ...
    @property
    def busy(self) -> bool: ...
    def add_account(
        self,
        owner: int,
        collateral: int,
        *,
        exempt: bool = False,
        isolated_margin: int | None = None,
    ) -> None: ...
    def deposit(self, owner: int, amount: int, *, asset: int | str | None = None) -> None: ...
    def add_margin(self, owner: int, amount: int) -> None: ...
    def seed_position(
        self, long_owner: int, short_owner: int, price: int, qty: int, *, instrument: _Instr = 0
    ) -> None: ...
    # one call for many: int64 arrays (or sequences of ints), checked as a whole first
    def add_accounts(
        self, owners: npt.ArrayLike, collateral: npt.ArrayLike, *,
        exempt: bool | npt.ArrayLike = False
    ) -> None: ...
    def seed_positions(
        self,
        long_owners: npt.ArrayLike,
        short_owners: npt.ArrayLike,
        prices: npt.ArrayLike,
        qtys: npt.ArrayLike,
        *,
        instrument: _Instr = 0,
    ) -> None: ...
    def liquidatable(self, owners: npt.ArrayLike) -> npt.NDArray[np.bool_]: ...
    # EQUITY_DTYPE rows: owner, collateral, equity, maintenance_margin, exempt, lots
    def equities(self, owners: npt.ArrayLike | None = None) -> _Records: ...
    # POSITION_DTYPE rows: owner, instrument, position, cost, notional, liquidation_price,
    # has_liquidation_price, exempt
    def positions(self, owners: npt.ArrayLike | None = None) -> _Records: ...
    def account(self, owner: int) -> AccountInfo: ...
    # EVENT_DTYPE: every trade of the instrument, in order
    def trades(self, instrument: _Instr = 0, *, start: int = 0) -> _Records: ...
    def open_interest(self, instrument: _Instr = 0) -> int: ...
    def owners(self) -> list[int]: ...
    def total_equity(self, mark: int | Sequence[int] | None = None) -> int: ...
    @overload
    def submit(
        self,
        kind: int,
        order_id: int,
        side: _Side = 0,
        price: int = 0,
        qty: int = 0,
        owner: int = 0,
        stop_price: int = 0,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def submit(
        self,
        kind: int,
        order_id: int,
        side: _Side = 0,
        price: int = 0,
        qty: int = 0,
        owner: int = 0,
        stop_price: int = 0,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def limit(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def limit(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def market(
        self,
        order_id: int,
        side: _Side,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def market(
        self,
        order_id: int,
        side: _Side,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def ioc(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def ioc(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def fok(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def fok(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def post_only(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def post_only(
        self,
        order_id: int,
        side: _Side,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def stop_market(
        self,
        order_id: int,
        side: _Side,
        stop_price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def stop_market(
        self,
        order_id: int,
        side: _Side,
        stop_price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def stop_limit(
        self,
        order_id: int,
        side: _Side,
        stop_price: int,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def stop_limit(
        self,
        order_id: int,
        side: _Side,
        stop_price: int,
        price: int,
        qty: int,
        owner: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    @overload
    def cancel(
        self, order_id: int, *, instrument: _Instr = 0, events: Literal[True] = True
    ) -> list[Event]: ...
    @overload
    def cancel(
        self, order_id: int, *, instrument: _Instr = 0, events: Literal[False]
    ) -> int: ...
    @overload
    def amend(
        self,
        order_id: int,
        price: int,
        qty: int,
        *,
        instrument: _Instr = 0,
        events: Literal[True] = True,
    ) -> list[Event]: ...
    @overload
    def amend(
        self,
        order_id: int,
        price: int,
        qty: int,
        *,
        instrument: _Instr = 0,
        events: Literal[False],
    ) -> int: ...
    # events is EVENT_DTYPE rows (out[:k] when given out), or a BatchCounts with
    # record="counters" (orderbook.batch).
    def process(
        self,
        messages: _Records,
        *,
        instrument: _Instr = 0,
        liquidate_every: int = 0,
        out: _Records | None = None,
        record: Literal["all", "trades", "counters"] = "all",
    ) -> BatchResult: ...
    def set_index(self, price: int, *, instrument: _Instr = 0) -> None: ...
    def set_funding_basis(self, basis_ppm: int, *, instrument: _Instr = 0) -> None: ...
    @property
    def funding_basis_ppm(self) -> int: ...
    def mark_price(self, instrument: _Instr = 0) -> int | None: ...
    # rate in units of 10**-8 (events.FUNDING_RATE_SCALE); > 0: longs pay shorts
    def settle_funding(self, rate: int, *, instrument: _Instr = 0) -> FundingSettlement: ...
    def funding_history(self) -> _Records: ...  # FUNDING_DTYPE
    @property
    def time(self) -> int: ...  # ms
    def advance_to(self, time_ms: int) -> None: ...
    def queue(self) -> list[int]: ...
    def liquidate(self, max_rounds: int = 10_000) -> _Records: ...  # FORCED_DTYPE: this run's
    def liquidation_round(self) -> bool: ...
    def forced_orders(self, *, start: int = 0) -> _Records: ...  # FORCED_DTYPE: from start on
    @property
    def forced_order_count(self) -> int: ...
    def fund_history(self) -> _Records: ...  # FUND_HISTORY_DTYPE
    def copy(self) -> Engine: ...
    def __copy__(self) -> Engine: ...
    def __deepcopy__(self, memo: object) -> Engine: ...
