"""Invariant checkers and a differential harness for tests of code that uses orderbook.

Nothing here needs hypothesis (``orderbook.strategies`` does): the checkers take any object with
the public query API of :class:`orderbook.OrderBook` (the compiled book, the reference book, the
read-only ``Engine.book`` view, or a test double) or of :class:`orderbook.Engine`, and raise
:class:`InvariantError`, an ``AssertionError`` whose message names the broken invariant and the
values that break it.

- :func:`check_book`: the invariants of docs/semantics.md that a book's public state must keep
  after every message (uncrossed, price-time order, level totals, counts, stops); given the
  book's event log, also FIFO within a level and each order's remaining quantity.
- :func:`check_accounts`: the money and position identities of docs/liquidation.md.
- :func:`compare_with_reference` and :func:`assert_same_events`: run a message sequence through a
  book and through :class:`ReferenceOrderBook`, the pure-Python executable specification, and
  demand identical events, exceptions and final state.
- :class:`Message`, :func:`message_array`, :class:`InvalidOrder`, :func:`assert_rejected`: the
  values ``orderbook.strategies`` draws, and how to use them without hypothesis.
- :class:`AgentHarness` and its steps (:class:`FlowOrder`, :class:`Wait`, :class:`IndexPrice`,
  :class:`Liquidate`): your own agent against random flow on an ``Engine``, every step resolved
  against the live book (cancels and amends pick among the flow's live orders, so they stay
  valid) and checked with the invariants above and your own property.

The parts: :mod:`~orderbook.testing.messages` (the values), :mod:`~orderbook.testing.invariants`
(the checkers), :mod:`~orderbook.testing.differential` (the differential harness),
:mod:`~orderbook.testing.harness` (the agent harness); import from here.

Units: prices in ticks, quantities in lots, money in quote units.
"""

from ..reference import OrderBook as ReferenceOrderBook
from ..reference_engine import Engine as ReferenceEngine
from .differential import assert_rejected, assert_same_events, compare_with_reference
from .harness import (
    AGENT_OWNER,
    FLOW_COLLATERAL,
    FLOW_OWNER,
    AgentHarness,
    FlowOrder,
    IndexPrice,
    Liquidate,
    Wait,
)
from .invariants import InvariantError, check_accounts, check_book
from .messages import InvalidOrder, Message, message_array

__all__ = [
    "InvariantError", "Message", "InvalidOrder", "message_array", "check_book",
    "check_accounts", "assert_same_events", "compare_with_reference", "assert_rejected",
    "ReferenceOrderBook", "ReferenceEngine", "AgentHarness", "FlowOrder", "Wait", "IndexPrice",
    "Liquidate", "FLOW_OWNER", "AGENT_OWNER", "FLOW_COLLATERAL",
]
