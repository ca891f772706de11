"""The agent harness (orderbook/testing/harness.py): an agent against random flow on an Engine.

Every step is resolved against the live book when it is applied, so drawn cancels and amends stay
valid whatever the agent's orders did; the agent runs as under ``orderbook.run`` (account,
on_start, timer, notices, through AgentView); the engine's invariants and the caller's property
are checked after every event; anything raised is a finding and carries the steps in a note.
Each behaviour runs on the compiled engine and on the reference.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from orderbook import Agent, Engine, EventKind, Kind, MarketMaker, Reason, Side
from orderbook.events import SCENARIO_AGENTS
from orderbook.strategies import engines, flow_steps
from orderbook.testing import (
    AGENT_OWNER,
    FLOW_OWNER,
    AgentHarness,
    FlowOrder,
    IndexPrice,
    InvariantError,
    Liquidate,
    Message,
    ReferenceEngine,
    Wait,
)

ENGINES = pytest.mark.parametrize("engine_cls", [Engine, ReferenceEngine])
# The harness is checked here, not the engines (the differential suites do that); a few dozen
# drawn examples reach every kind of step, so larger profiles (ci: 2,000) are capped.
CAPPED = settings(max_examples=min(settings.default.max_examples, 60))


class Idle(Agent):
    """An agent that never trades."""

    collateral = 10**6


class Taker(Agent):
    """Buys ``lots`` at market at its first timer after the book has an ask."""

    collateral = 10**6
    every_ms = 1_000
    lots = 1

    def on_start(self, view):
        self.done = False

    def on_timer(self, view):
        if not self.done and view.book().best_ask() is not None:
            view.market(Side.BUY, self.lots)
            self.done = True


def sell(price, qty=1, owner=FLOW_OWNER):
    return FlowOrder(Kind.LIMIT, Side.SELL, price, qty, owner)


def buy(price, qty=1, owner=FLOW_OWNER):
    return FlowOrder(Kind.LIMIT, Side.BUY, price, qty, owner)


# --------------------------------------------------------------------- resolved when applied


@ENGINES
def test_a_cancel_picks_among_the_flow_orders_still_live_after_the_agent_filled_one(engine_cls):
    harness = AgentHarness(engine_cls(), Taker())
    harness.run([sell(101), sell(102)])          # ids 0 and 1: both were live when drawn
    harness.run([Wait(1_000)])                   # the taker buys order 0
    assert 0 not in harness.engine.book and harness.view.position() == 1
    events = harness.apply(FlowOrder(Kind.CANCEL, pick=0.0))
    assert harness.log[-1][1] == Message(Kind.CANCEL, 1)
    assert [ev.kind for ev in events] == [EventKind.CANCELLED]
    assert harness.engine.book.n_orders == 0


@ENGINES
def test_a_cancel_or_amend_with_nothing_live_does_nothing(engine_cls):
    harness = AgentHarness(engine_cls(), Idle())
    assert harness.apply(FlowOrder(Kind.CANCEL, pick=0.5)) == []
    assert harness.apply(FlowOrder(Kind.AMEND, price=100, qty=1)) == []
    assert [message for _, message, _ in harness.log] == [None, None]
    assert "nothing to choose from" in harness.report()


@ENGINES
def test_an_amend_picks_a_resting_order_never_an_armed_stop(engine_cls):
    harness = AgentHarness(engine_cls(), Idle())
    harness.run([FlowOrder(Kind.STOP_MARKET, Side.SELL, qty=2, stop_price=90),   # id 0, armed
                 buy(95, 4)])                                                     # id 1, rests
    events = harness.apply(FlowOrder(Kind.AMEND, price=96, qty=3, pick=0.0))
    assert harness.log[-1][1] == Message(Kind.AMEND, 1, price=96, qty=3)
    assert [ev.kind for ev in events] == [EventKind.AMENDED]
    assert harness.engine.book.order(1).price == 96


@ENGINES
def test_the_flow_never_cancels_the_agents_or_the_other_accounts_orders(engine_cls):
    engine = engine_cls()
    engine.add_account(7, 10**6, exempt=True)
    engine.limit(0, Side.BUY, 90, 1, 7)          # someone else's order
    harness = AgentHarness(engine, lambda view: view.orders() or view.limit(Side.BUY, 91, 1),
                           collateral=10**6)
    assert harness.apply(FlowOrder(Kind.CANCEL)) == []
    assert 0 in engine.book and harness.view.orders() == [1]


def test_pick_chooses_by_its_share_of_the_live_orders_oldest_first():
    live = [4, 9, 12]
    assert [FlowOrder(Kind.CANCEL, pick=p).choose(live) for p in (0.0, 0.33, 0.34, 0.5, 0.99)] \
        == [4, 4, 9, 9, 12]
    assert FlowOrder(Kind.CANCEL, pick=0.999999999).choose(live) == 12
    assert FlowOrder(Kind.CANCEL).choose([]) is None


@ENGINES
def test_order_ids_start_above_every_id_in_the_books_and_their_trades(engine_cls):
    engine = engine_cls()
    engine.add_account(7, 10**6, exempt=True)
    engine.add_account(8, 10**6, exempt=True)
    engine.limit(40, Side.SELL, 100, 1, 7)
    engine.market(57, Side.BUY, 1, 8)            # trades, leaving nothing in the book
    engine.limit(3, Side.BUY, 90, 1, 7)
    harness = AgentHarness(engine, lambda view: view.orders() or view.limit(Side.BUY, 91, 1),
                           collateral=10**6)
    harness.apply(buy(92))
    assert harness.view.orders() == [58]         # the agent's, from the same counter
    assert harness.log[-1][1].order_id == 59
    assert AgentHarness(engine_cls(), Idle(), first_order_id=500)._id() == 500


# --------------------------------------------------------------------- the agent, as in run()


class Recorder(Agent):
    """Records when its timer fires and what notices it gets."""

    collateral = 10**6
    every_ms = 500
    subscribe = frozenset({"trade", "fill", "mark"})

    def on_start(self, view):
        self.seen = [("start", view.time)]

    def on_timer(self, view):
        self.seen.append(("timer", view.time))
        if view.time == 500:
            view.post_only(Side.BUY, 99, 2)

    def on_trade(self, view, instrument, trades):
        self.seen.append(("trade", view.time, int(trades["qty"].sum())))

    def on_fill(self, view, instrument, fills):
        self.seen.append(("fill", view.time, int(fills["qty"].sum())))

    def on_mark(self, view, instrument, mark):
        self.seen.append(("mark", view.time, mark))


@ENGINES
def test_the_agent_gets_its_account_start_timer_and_notices_as_under_run(engine_cls):
    agent = Recorder()
    harness = AgentHarness(engine_cls(), agent)
    assert harness.owner == AGENT_OWNER == SCENARIO_AGENTS     # run()'s first agent's owner
    assert harness.engine.account(AGENT_OWNER).collateral == 10**6
    harness.run([Wait(700), FlowOrder(Kind.MARKET, Side.SELL, qty=2), Wait(300)])
    assert harness.agent.seen == [
        ("start", 0), ("timer", 0), ("timer", 500),
        ("trade", 700, 2), ("fill", 700, 2), ("mark", 700, 99), ("timer", 1000)]
    assert harness.engine.time == harness.now == 1_000
    assert not hasattr(agent, "seen")            # the harness ran a deep copy


@ENGINES
def test_a_function_agent_is_called_at_the_start_and_after_every_step(engine_cls):
    calls = []
    harness = AgentHarness(engine_cls(), lambda view: calls.append(view.time), collateral=0,
                           exempt=True)
    harness.run([Wait(10), sell(100), Liquidate(), IndexPrice(100)])
    assert calls == [0, 10, 10, 10, 10]
    assert harness.engine.account(AGENT_OWNER).exempt


@ENGINES
def test_an_index_price_step_sets_the_engines_index_and_the_agents(engine_cls):
    harness = AgentHarness(engine_cls(mark_rule=2), Idle())    # MarkRule.INDEX
    harness.run([buy(99), sell(101)])
    assert harness.view.index() == 100           # the mid, before any index is set
    harness.apply(IndexPrice(97))
    assert harness.view.index() == 97 and harness.engine.mark_price() == 97


@ENGINES
def test_the_built_in_market_maker_runs_under_the_harness(engine_cls):
    maker = MarketMaker(collateral=10**6, every_ms=500, levels=2, level_lots=3, max_inventory=5,
                        level_step_ticks=1)
    harness = AgentHarness(engine_cls(), maker)
    harness.run([buy(95), sell(105), FlowOrder(Kind.LIMIT, Side.SELL, 100, 1), Wait(500),
                 FlowOrder(Kind.MARKET, Side.SELL, qty=10), Wait(500)])
    assert 0 < harness.view.position() <= 5
    assert harness.agent.withdrawals == []


# ------------------------------------------------------------------ refusals and findings


@ENGINES
def test_a_margin_refusal_of_a_flow_order_is_a_rejected_event(engine_cls):
    engine = engine_cls()
    engine.add_account(7, 0)                     # margined, with nothing to margin with
    harness = AgentHarness(engine, Idle())
    harness.apply(buy(95))
    events = harness.apply(sell(96, 5, owner=7))
    assert [(ev.kind, ev.reason) for ev in events] == [
        (EventKind.REJECTED, Reason.INSUFFICIENT_MARGIN)]
    assert "REJECTED: INSUFFICIENT_MARGIN" in harness.report()


@ENGINES
def test_a_flow_order_the_engine_cannot_take_raises_with_the_steps_in_a_note(engine_cls):
    harness = AgentHarness(engine_cls(max_price=200), Idle())
    harness.apply(buy(95))
    with pytest.raises(ValueError, match="price") as caught:
        harness.apply(sell(300))
    note = "\n".join(caught.value.__notes__)
    assert "at step 1, FlowOrder(Kind.LIMIT, side=Side.SELL, price=300, qty=1)" in note
    assert "0: FlowOrder(Kind.LIMIT, side=Side.BUY, price=95, qty=1) -> Message(" in note


class Clumsy(Agent):
    """Cancels its first order at every timer, long after it may have traded."""

    collateral = 10**6
    every_ms = 1_000

    def on_start(self, view):
        self.first = None

    def on_timer(self, view):
        if self.first is None:
            self.first = view.post_only(Side.BUY, 99, 1)[0].order_id
        else:
            view.cancel(self.first)


@ENGINES
def test_the_agents_own_key_error_is_raised_not_swallowed(engine_cls):
    harness = AgentHarness(engine_cls(), Clumsy())
    harness.apply(FlowOrder(Kind.MARKET, Side.SELL, qty=1))      # fills the agent's bid
    with pytest.raises(KeyError, match="not a resting order") as caught:
        harness.apply(Wait(1_000))
    assert "agent Clumsy" in caught.value.__notes__[0]


@ENGINES
def test_a_failed_property_names_the_step_it_failed_after(engine_cls):
    harness = AgentHarness(engine_cls(), Taker())

    def flat(h):
        assert h.view.position() == 0, "the agent holds a position"

    with pytest.raises(AssertionError, match="holds a position") as caught:
        harness.run([sell(101), Wait(999), Wait(1)], check=flat)
    assert "at step 2, Wait(ms=1)" in caught.value.__notes__[0]


def test_a_broken_engine_invariant_fails_at_once():
    engine = ReferenceEngine()
    engine.fees_collected = 1                    # one quote unit from nowhere
    with pytest.raises(InvariantError, match="money conservation") as caught:
        AgentHarness(engine, Idle())
    assert "while starting the agent" in caught.value.__notes__[0]


def test_liquidate_checks_the_accounts_as_settled(monkeypatch):
    import orderbook.testing.harness as harness_module

    calls = []
    monkeypatch.setattr(harness_module, "check_accounts",
                        lambda engine, settled=False: calls.append(settled))
    harness = AgentHarness(ReferenceEngine(), Idle())
    harness.run([Liquidate(), buy(90)])
    assert calls == [False, True, False, False]   # start, after liquidate(), its step, buy


# --------------------------------------------------------------------------- bad arguments


def test_steps_refuse_bad_values_naming_them():
    with pytest.raises(ValueError, match="FlowOrder kind must be a Kind .* got 42"):
        FlowOrder(42)
    with pytest.raises(ValueError, match="FlowOrder kind"):
        FlowOrder(True)
    with pytest.raises(ValueError, match=r"FlowOrder pick must be in \[0, 1\), got 1.0"):
        FlowOrder(Kind.CANCEL, pick=1.0)
    with pytest.raises(TypeError, match="FlowOrder pick must be a number"):
        FlowOrder(Kind.CANCEL, pick="0.5")
    with pytest.raises(ValueError, match="Wait ms must be >= 1, got 0"):
        Wait(0)
    with pytest.raises(TypeError, match="Wait ms must be an integer, got 1.5"):
        Wait(1.5)
    with pytest.raises(ValueError, match="IndexPrice price must be >= 1, got -3"):
        IndexPrice(-3)
    assert FlowOrder(1).kind is Kind.LIMIT


def test_the_harness_refuses_bad_arguments_naming_them():
    engine = Engine()
    engine.add_account(AGENT_OWNER, 5)
    with pytest.raises(ValueError, match=f"owner {AGENT_OWNER} already has an account"):
        AgentHarness(engine, Idle())
    with pytest.raises(TypeError, match="give its account's collateral="):
        AgentHarness(Engine(), lambda view: None)
    with pytest.raises(TypeError, match="collateral and exempt are the agent's own"):
        AgentHarness(Engine(), Idle(), collateral=5)
    with pytest.raises(TypeError, match="agent must be an orderbook.Agent or a function"):
        AgentHarness(Engine(), 42)
    with pytest.raises(ValueError, match="instrument 1 is not one of the engine's 1"):
        AgentHarness(Engine(), Idle(), instrument=1)
    with pytest.raises(KeyError, match="instrument 'ETH' is not one of"):
        AgentHarness(Engine(), Idle(), instrument="ETH")
    with pytest.raises(ValueError, match="first_order_id must be >= 0, got -1"):
        AgentHarness(Engine(), Idle(), first_order_id=-1)
    harness = AgentHarness(Engine(), Idle())
    with pytest.raises(TypeError, match="a step must be a FlowOrder, Wait, IndexPrice or "
                                        "Liquidate, got 'wait'"):
        harness.apply("wait")
    with pytest.raises(ValueError, match=f"FlowOrder owner {AGENT_OWNER} is the agent's"):
        harness.apply(buy(95, owner=AGENT_OWNER))


# -------------------------------------------------------------------- drawn flow, both engines

DRAWN = {which: engines(which) for which in ("compiled", "reference")}
STEPS = flow_steps()


@CAPPED
@given(data=st.data(), which=st.sampled_from(["compiled", "reference"]), steps=STEPS)
def test_drawn_flow_never_raises_whatever_the_agent_trades(data, which, steps):
    # the claim of the harness: no drawn step is refused for its id, with an agent that trades
    # against the flow (a market maker that is filled and requotes)
    maker = MarketMaker(collateral=10**6, every_ms=300, levels=2, level_lots=4,
                        max_inventory=8, level_step_ticks=1)
    harness = AgentHarness(data.draw(DRAWN[which], label="engine"), maker)
    harness.run(steps)
    for step, message, events in harness.log:
        if isinstance(step, FlowOrder) and message is not None and step.targets_live_order:
            assert message.order_id >= 0 and events


@ENGINES
def test_the_same_steps_give_the_same_run(engine_cls):
    steps = [sell(101, 3), buy(99, 3), Wait(1_300), FlowOrder(Kind.MARKET, Side.BUY, qty=5),
             FlowOrder(Kind.CANCEL, pick=0.7), IndexPrice(100), Liquidate(), Wait(400)]
    maker = MarketMaker(collateral=10**6, every_ms=500, levels=2, level_lots=2,
                        level_step_ticks=1)
    runs = []
    for _ in range(2):
        harness = AgentHarness(engine_cls(), maker)
        harness.run(steps)
        runs.append((harness.report(), harness.engine.trades().tolist(),
                     harness.engine.account(AGENT_OWNER)))
    assert runs[0] == runs[1]
    assert maker.withdrawals is None             # the object passed in never ran


# ------------------------------------------------------------ the example in docs/testing.md


def _docs_block(marker: str) -> str:
    text = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return next(block for block in blocks if marker in block)


def _docs_namespace() -> dict:
    namespace: dict = {}
    exec(compile(_docs_block("class Quoter(Agent)"), "docs/testing.md", "exec"), namespace)
    return namespace


def test_the_market_maker_example_in_docs_testing_md_passes():
    test = _docs_namespace()["test_quoter_keeps_its_limit_and_never_crosses_its_own_quotes"]
    settings(max_examples=min(settings.default.max_examples, 40))(test)()


class _NoCancel:
    """An AgentView whose ``cancel_all`` does nothing (the rest passes through)."""

    def __init__(self, view):
        self._view = view

    def cancel_all(self, instrument=None):
        return 0

    def __getattr__(self, name):
        return getattr(self._view, name)


def _forgetful(namespace):
    """The docs' Quoter without its ``view.cancel_all()``: quotes pile up past its limit."""
    quoter = namespace["Quoter"]

    class Forgetful(quoter):
        def on_timer(self, view):
            quoter.on_timer(self, _NoCancel(view))

    return Forgetful


def test_the_docs_example_catches_a_maker_that_forgets_to_pull_its_quotes():
    # The property test of docs/testing.md must be able to fail: without cancelling, the
    # maker's quotes pile up, and hypothesis finds flow that fills more than its limit.
    namespace = _docs_namespace()
    forgetful, behaves = _forgetful(namespace), namespace["quoter_behaves"]

    def fails(steps):
        engine = Engine()
        engine.add_account(1, 0)                 # a short the liquidator closes by buying
        engine.add_account(2, 10**6, exempt=True)
        engine.seed_position(2, 1, 100, 12)
        engine.limit(0, Side.BUY, 95, 20, 2)     # depth, and a last price of 100 for the mark
        engine.limit(1, Side.SELL, 105, 20, 2)
        engine.limit(2, Side.SELL, 100, 1, 2)
        engine.market(3, Side.BUY, 1, 2)
        try:
            AgentHarness(engine, forgetful()).run(steps, check=behaves)
        except AssertionError:
            return True
        return False

    assert not fails([])
    assert fails([Wait(1_500), Liquidate()])    # 4 quotes of 3 lots, and a forced buy of 12
    shrunk = find(flow_steps(), fails, settings=settings(max_examples=2_000, database=None,
                                                         derandomize=True))
    # drawn flow finds it, and shrinks it to a short story that replays: the quotes pile up
    # over a wait, then something buys or sells through them
    assert fails(shrunk) and len(shrunk) < 10, shrunk
    assert any(isinstance(step, Wait) for step in shrunk), shrunk
