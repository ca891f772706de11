"""orderbook: a Cython limit order book, matching engine and liquidation-cascade simulator.

Prices are integer ticks, quantities integer lots, ids caller-chosen int64. See docs/semantics.md.
Venue presets of the liquidation rules are in :mod:`orderbook.venues` (docs/venues.md). Real
market data readers are in :mod:`orderbook.data` (docs/data.md); tools for testing your own
code in :mod:`orderbook.testing` and :mod:`orderbook.strategies` (docs/testing.md).
"""

import logging

from . import flows, funding, venues
from .agents import Agent, AgentView, FundingArbitrageur, MarketMaker, ValueTrader
from .batch import BatchCounts, OutGrewWarning
from .book import OrderBook
from .engine import Engine
from .errors import OrderError, UnknownOrderError
from .events import (
    EQUITY_DTYPE,
    EVENT_DTYPE,
    FORCED_DTYPE,
    FUNDING_DTYPE,
    INSURANCE_FUND,
    L2,
    L3_DTYPE,
    MESSAGE_DTYPE,
    NO_COUNTERPARTY,
    POSITION_DTYPE,
    STOP_DTYPE,
    AccountInfo,
    AdlRanking,
    AmendRule,
    Asset,
    BatchResult,
    CloseOrder,
    Deficit,
    Event,
    EventKind,
    ForcedKind,
    FundingSettlement,
    HoldingInfo,
    Impact,
    Instrument,
    Kind,
    LimitRule,
    MarginBasis,
    MarkRule,
    OrderInfo,
    PositionInfo,
    Reason,
    SelfTradePrevention,
    Settlement,
    Side,
    Sizing,
    Trigger,
    array_to_events,
    events_to_array,
    messages,
)
from .margin import MarginTiers, Tier
from .market import Arbitrageur, Market
from .price_index import Aggregate, IndexRule, PriceIndex
from .scenario import (
    Clock,
    Contract,
    DepthProfile,
    ExplicitBook,
    ExplicitPopulation,
    Flow,
    Funding,
    InertSettingWarning,
    Liquidity,
    Population,
    Result,
    Rules,
    Scenario,
    SerialExecutor,
    Shock,
    UnresolvedAccountsWarning,
    compare,
    default_scenario,
    run,
    sweep,
)
from .slippage import Slippage, slippage

__version__ = "0.1.0"

# Diagnostics go to logging.getLogger("orderbook") and its module loggers; an application that
# wants them adds a handler (the CLI's -v does). Without one, this keeps Python's last-resort
# handler from printing the warnings among them on stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "OrderBook", "MESSAGE_DTYPE", "EVENT_DTYPE", "L3_DTYPE", "STOP_DTYPE", "Side", "Kind",
    "EventKind", "Reason", "SelfTradePrevention", "AmendRule", "Event", "OrderInfo", "L2",
    "Impact", "events_to_array", "array_to_events", "messages", "__version__",
    "Engine", "FORCED_DTYPE", "INSURANCE_FUND", "NO_COUNTERPARTY", "AccountInfo", "MarkRule",
    "Sizing", "LimitRule", "Deficit", "AdlRanking", "Trigger", "MarginBasis", "CloseOrder",
    "Settlement", "ForcedKind",
    "MarginTiers", "Tier", "Instrument", "PositionInfo", "Asset", "HoldingInfo", "Contract",
    "Market", "Arbitrageur",
    "PriceIndex", "IndexRule", "Aggregate",
    "Scenario", "DepthProfile", "ExplicitBook", "Population", "ExplicitPopulation", "Liquidity",
    "Shock", "Rules", "Result", "run", "compare", "sweep", "default_scenario",
    "Slippage", "slippage", "OrderError", "UnknownOrderError", "UnresolvedAccountsWarning",
    "InertSettingWarning", "venues", "flows", "Clock", "Flow", "Funding", "SerialExecutor",
    "Agent", "AgentView", "MarketMaker", "ValueTrader", "FundingArbitrageur", "BatchResult",
    "BatchCounts", "OutGrewWarning",
    "funding", "FundingSettlement",
    "EQUITY_DTYPE",
    "POSITION_DTYPE",
    "FUNDING_DTYPE",
]
