"""Hypothesis strategies for testing code that uses orderbook.

They need the ``testing`` extra: ``pip install "orderbook-cascade[testing]"``.

What they draw, and the contract of each:

- :func:`orders`: one well-formed :class:`~orderbook.testing.Message` of any kind, every field
  in range; whether its id is usable depends on the book (new orders need an id that is not live,
  CANCEL/AMEND one that is).
- :func:`message_sequences` / :func:`message_arrays`: sequences that are valid from an empty book,
  message after message (ids are tracked by running them through the reference book while
  drawing); :func:`message_arrays` can also draw loose ``MESSAGE_DTYPE`` rows for the batch path.
- :func:`books`: an ``OrderBook`` (compiled or reference) in a state reached by a drawn valid
  sequence, so every state it gives is reachable by construction.
- :func:`invalid_orders`: an :class:`~orderbook.testing.InvalidOrder`: a scene (valid setup
  messages) and one message the book must refuse, with the ``Reason`` of the batch path and the
  exception of the per-call API; check it with :func:`orderbook.testing.assert_rejected`.
- :func:`tiers`, :func:`engine_rules`, :func:`scenario_rules`: valid margin tier tables and
  liquidation rule sets, as ``Engine`` keyword arguments or as :class:`orderbook.Rules`.
- :func:`account_populations` / :func:`engines`: accounts with deposits, positions (seeded and
  through trades), resting depth and stops, applied to a compiled or reference ``Engine``;
  ``fixed=`` pins some of the rules and draws the rest.
- :func:`flow_orders` / :func:`flow_steps`: steps of random flow for
  :class:`orderbook.testing.AgentHarness`, whose cancels and amends are resolved against the
  live book when applied, so they stay valid whatever your agent's orders did.

Every strategy takes small ranges by default (prices 95..105 ticks, 1..10 lots, owners 0..3,
ids 0..63), so that orders meet, trade and shrink to short examples. Units: prices in ticks,
quantities in lots, money in quote units, rates in ppm.

The parts: :mod:`~orderbook.strategies.book` (messages, books, invalid orders),
:mod:`~orderbook.strategies.engine` (margin rules, accounts, engines) and
:mod:`~orderbook.strategies.harness` (steps for the agent harness); import from here.
"""

try:
    import hypothesis  # noqa: F401 - every part draws with it
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "orderbook.strategies needs hypothesis, an optional dependency; install it with "
        "`pip install orderbook-cascade[testing]`") from exc

from ..testing import InvalidOrder, Message
from .book import (
    INVALID_REASONS,
    NEW_ORDER_KINDS,
    REFUSAL_REASONS,
    books,
    invalid_orders,
    message_arrays,
    message_sequences,
    orders,
)
from .engine import (
    BACKSTOP_OWNER,
    FIXABLE_RULES,
    LP_OWNER,
    AccountPopulation,
    account_populations,
    engine_rules,
    engines,
    scenario_rules,
    tiers,
)
from .harness import FLOW_OWNERS, flow_orders, flow_steps

__all__ = [
    "Message", "InvalidOrder", "AccountPopulation", "NEW_ORDER_KINDS", "INVALID_REASONS",
    "REFUSAL_REASONS", "LP_OWNER", "BACKSTOP_OWNER", "FLOW_OWNERS", "FIXABLE_RULES",
    "orders", "message_sequences", "message_arrays", "books", "invalid_orders",
    "tiers", "engine_rules", "scenario_rules", "account_populations", "engines",
    "flow_orders", "flow_steps",
]
