"""orderbook: a Cython limit order book, matching engine and liquidation-cascade simulator.

Prices are integer ticks, quantities integer lots, ids caller-chosen int64. See docs/semantics.md.
"""

from .book import OrderBook
from .events import (
    EVENT_DTYPE, L3_DTYPE, MESSAGE_DTYPE, STOP_DTYPE, L2, AmendRule, Event, EventKind, Impact,
    Kind, OrderInfo, Reason, SelfTradePrevention, Side, array_to_events, events_to_array, messages,
)

__version__ = "0.1.0"

__all__ = [
    "OrderBook", "MESSAGE_DTYPE", "EVENT_DTYPE", "L3_DTYPE", "STOP_DTYPE", "Side", "Kind",
    "EventKind", "Reason", "SelfTradePrevention", "AmendRule", "Event", "OrderInfo", "L2",
    "Impact", "events_to_array", "array_to_events", "messages", "__version__",
]
