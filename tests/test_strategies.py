"""The public hypothesis strategies (orderbook/strategies/) draw what their docstrings promise.

Each strategy is checked against both implementations (the compiled book/engine and the
reference): valid messages are never refused for a malformed field, invalid ones are refused
exactly as their case says, built books and engines satisfy the invariant checkers of
orderbook/testing/, and drawn rule sets build engines and scenarios.

Strategies are built once, at import: building a composite strategy costs milliseconds, so a
test that built one per example would spend its time there.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from orderbook import Engine, OrderBook, Rules, run
from orderbook import strategies as obst
from orderbook.events import (
    INSURANCE_FUND,
    MESSAGE_DTYPE,
    AmendRule,
    Deficit,
    EventKind,
    Kind,
    MarkRule,
    Reason,
    SelfTradePrevention,
    Side,
    Sizing,
    array_to_events,
)
from orderbook.margin import MarginTiers
from orderbook.scenario import default_scenario
from orderbook.testing import (
    FlowOrder,
    IndexPrice,
    InvalidOrder,
    Liquidate,
    Message,
    ReferenceEngine,
    ReferenceOrderBook,
    Wait,
    assert_rejected,
    check_accounts,
    check_book,
    compare_with_reference,
    message_array,
)

BOOK_CLASSES = (OrderBook, ReferenceOrderBook)
VALIDATION = frozenset(int(r) for r in obst.INVALID_REASONS)  # the per-call API raises for these
PRICED = frozenset({Kind.LIMIT, Kind.IOC, Kind.FOK, Kind.POST_ONLY, Kind.STOP_LIMIT})
STOPS = frozenset({Kind.STOP_MARKET, Kind.STOP_LIMIT})

# These tests check the strategies themselves (the differential suites check the engines); a few
# hundred examples reach every branch, so larger profiles (ci: 2,000) are capped here.
CAPPED = settings(max_examples=min(settings.default.max_examples, 400))


def _rejections(events, reasons=None):
    return [ev for ev in events if ev.kind == EventKind.REJECTED
            and (reasons is None or ev.reason in reasons)]


# ------------------------------------------------------------------------ the optional extra


def test_import_without_hypothesis_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if it were not installed\n"
        "import orderbook.testing  # the checkers need no hypothesis\n"
        "try:\n"
        "    import orderbook.strategies\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install orderbook-cascade[testing]" in out.stdout


def test_strategies_refuse_bad_arguments():
    for bad in (lambda: obst.orders(min_price=0), lambda: obst.orders(kinds=[]),
                lambda: obst.message_sequences(kinds=[Kind.CANCEL]),
                lambda: obst.invalid_orders(reasons=[Reason.USER]),
                lambda: obst.account_populations(mid=10), lambda: obst.books("other")):
        with pytest.raises(InvalidArgument):
            bad()


# ---------------------------------------------------------------------------------- orders

ORDERS_OF_KIND = {kind: obst.orders(kinds=[kind]) for kind in Kind}


@given(data=st.data(), kind=st.sampled_from(list(Kind)), side=st.sampled_from(list(Side)))
def test_orders_of_each_kind_are_valid(data, kind, side):
    m = data.draw(ORDERS_OF_KIND[kind], label="message")
    assert m.kind == kind and 0 <= m.order_id <= 63
    if kind in obst.NEW_ORDER_KINDS:
        assert m.side in (Side.BUY, Side.SELL) and 1 <= m.qty <= 10 and 0 <= m.owner <= 3
        assert (95 <= m.price <= 105) if kind in PRICED else m.price == 0
        assert (95 <= m.stop_price <= 105) if kind in STOPS else m.stop_price == 0
        for book_cls in BOOK_CLASSES:  # an empty book accepts every new order
            book = book_cls()
            events = m.submit(book)
            assert events[0].kind == EventKind.ACCEPTED, events
            check_book(book, events)
        return
    if kind == Kind.AMEND:
        assert 95 <= m.price <= 105 and 1 <= m.qty <= 10
    for book_cls in BOOK_CLASSES:  # CANCEL and AMEND are valid for a live id only
        book = book_cls()
        book.limit(m.order_id, side, 100, 5)
        assert not _rejections(m.submit(book))
        with pytest.raises(KeyError):
            m.submit(book_cls())


# ------------------------------------------------------------------------------- sequences


SEQUENCES_FOR = {(s, a, r): obst.message_sequences(stp=s, amend_rule=a, refusals=r, max_size=20)
                 for s in SelfTradePrevention for a in AmendRule for r in (True, False)}


@CAPPED
@given(data=st.data(), stp=st.sampled_from(list(SelfTradePrevention)),
       amend_rule=st.sampled_from(list(AmendRule)), refusals=st.booleans())
def test_message_sequences_are_valid_for_their_settings(data, stp, amend_rule, refusals):
    msgs = data.draw(SEQUENCES_FOR[stp, amend_rule, refusals], label="messages")
    # per call, no message raises (compare_with_reference would report it), both books agree
    # and check_book passes with the event log
    events = compare_with_reference(msgs, stp=stp, amend_rule=amend_rule)
    assert refusals or not _rejections(events)
    # and as one batch, no row is REJECTED for a malformed field
    batch = OrderBook(stp=stp, amend_rule=amend_rule).process(message_array(msgs))
    assert not _rejections(array_to_events(batch), VALIDATION)


@given(msgs=obst.message_sequences(min_size=5, max_size=8, max_id=3, kinds=[Kind.LIMIT]))
def test_message_sequences_take_free_ids_from_a_small_pool(msgs):
    assert 0 < len(msgs) <= 8
    assert all(0 <= m.order_id <= 3 for m in msgs)


def test_message_sequences_reach_every_kind():
    seen = set()

    @settings(max_examples=20, database=None)
    @given(obst.message_sequences(min_size=20, max_size=20))
    def collect(msgs):
        seen.update(m.kind for m in msgs)

    collect()
    assert seen == set(Kind)


ARRAYS = {loose: obst.message_arrays(loose=loose, max_size=15) for loose in (False, True)}


@CAPPED
@given(data=st.data(), loose=st.booleans(), path=st.sampled_from(["batch", "call"]))
def test_message_arrays_run_the_same_on_both_books(data, loose, path):
    arr = data.draw(ARRAYS[loose], label="messages")
    assert isinstance(arr, np.ndarray) and arr.dtype == MESSAGE_DTYPE and len(arr) <= 15
    events = compare_with_reference(arr, path=path)
    if path == "batch":  # every row is reported, a malformed one as one REJECTED event
        assert {ev.msg for ev in events} == set(range(len(arr)))
        assert loose or not _rejections(events, VALIDATION)


# ----------------------------------------------------------------------------------- books

BOOKS = {which: obst.books(which, max_size=20) for which in ("compiled", "reference")}


@CAPPED
@given(data=st.data(), which=st.sampled_from(["compiled", "reference"]))
def test_books_are_valid_and_of_the_requested_class(data, which):
    book = data.draw(BOOKS[which], label="book")
    assert type(book) is (OrderBook if which == "compiled" else ReferenceOrderBook)
    check_book(book)


@settings(max_examples=10)  # checks that settings reach the book; few examples suffice
@given(book=obst.books(stp=SelfTradePrevention.CANCEL_BOTH, min_size=3, max_size=6,
                       amend_rule=st.just(AmendRule.ALWAYS_REQUEUE)))
def test_books_take_fixed_settings_or_strategies(book):
    assert book.stp == SelfTradePrevention.CANCEL_BOTH
    assert book.amend_rule == AmendRule.ALWAYS_REQUEUE
    assert 3 <= book.message_count <= 6


# -------------------------------------------------------------------------- invalid orders


@CAPPED
@given(case=obst.invalid_orders())
def test_invalid_orders_are_refused_as_claimed(case):
    for book_cls in BOOK_CLASSES:
        assert_rejected(book_cls(), case)
        if case.reason is not None:
            assert case.message.representable()
            assert_rejected(book_cls(), case, path="batch")


INVALID_OF = {r: obst.invalid_orders(reasons=[r])
              for r in obst.INVALID_REASONS + obst.REFUSAL_REASONS}


@pytest.mark.parametrize("reason", obst.INVALID_REASONS + obst.REFUSAL_REASONS,
                         ids=lambda r: r.name)
@settings(max_examples=10)
@given(data=st.data())
def test_invalid_orders_of_each_reason(reason, data):
    case = data.draw(INVALID_OF[reason])
    assert case.reason == reason
    want = None if reason in obst.REFUSAL_REASONS else (
        KeyError if reason == Reason.UNKNOWN_ORDER else ValueError)
    assert case.error is want
    # the scene is made of valid messages the market accepts
    book = ReferenceOrderBook()
    for m in case.setup:
        assert not _rejections(m.submit(book)), (case, m)
    for book_cls in BOOK_CLASSES:
        assert_rejected(book_cls(), case)
        assert_rejected(book_cls(), case, path="batch")


def test_unrepresentable_invalid_orders_cannot_batch():
    case = InvalidOrder((), Message(Kind.LIMIT, 1, Side.BUY, 100.5, 1), None, TypeError)
    assert_rejected(OrderBook(), case)
    with pytest.raises(ValueError, match="cannot be a MESSAGE_DTYPE row"):
        assert_rejected(OrderBook(), case, path="batch")


# ---------------------------------------------------------------------------- engine rules


@given(table=obst.tiers(k=2))
def test_tiers_are_valid_tables(table):
    assert MarginTiers(table).rows()


@CAPPED
@given(rules=obst.engine_rules(backstop=None))
def test_engine_rules_build_an_engine(rules):
    for engine_cls in (Engine, ReferenceEngine):
        engine = engine_cls(**rules)
        assert engine.backstop is None and engine.insurance_fund == rules["insurance_fund"]
        check_accounts(engine)


@settings(max_examples=10)
@given(rules=obst.scenario_rules())
def test_scenario_rules_run_a_scenario(rules):
    assert isinstance(rules, Rules)
    scenario = dataclasses.replace(default_scenario(0.01), rules=rules, steps=5)
    assert len(run(scenario, counterfactual=False).series) == 5


# ------------------------------------------------------------------------------- engines

ENGINES = {which: obst.engines(which) for which in ("compiled", "reference")}
SHOCK = st.lists(st.tuples(st.sampled_from(["market", "index", "liquidate", "round"]),
                           st.sampled_from([Side.SELL, Side.SELL, Side.BUY]),
                           st.integers(1, 60), st.integers(60, 140)), max_size=4)


@CAPPED
@given(data=st.data(), which=st.sampled_from(["compiled", "reference"]), shock=SHOCK)
def test_engines_keep_their_accounts_through_price_moves(data, which, shock):
    engine = data.draw(ENGINES[which], label="engine")
    check_accounts(engine)
    owners = [o for o in engine.owners() if o != INSURANCE_FUND]
    for step, (action, side, qty, price) in enumerate(shock):
        if action == "market":
            owner = data.draw(st.sampled_from(owners), label="owner")
            try:
                engine.market(10**6 + step, side, qty, owner)
            except ValueError:  # past max_position: refused, nothing changed
                pass
        elif action == "index":
            engine.set_index(price)
        elif action == "round":
            engine.liquidation_round()
        else:
            engine.liquidate()
        check_accounts(engine, settled=action == "liquidate")
        check_book(engine.book)
    engine.liquidate()
    check_accounts(engine, settled=True)


@settings(max_examples=20)
@given(engine=obst.engines(units=st.sampled_from([("1", "1", None), ("1", "1", "0.5"),
                                                  ("0.5", "2", "0.1")])))
def test_engines_take_units(engine):
    assert engine.k in (1, 2, 10)
    check_accounts(engine)


@settings(max_examples=30)
@given(pop=obst.account_populations(backstop=obst.BACKSTOP_OWNER))
def test_account_populations_apply_to_both_engines_alike(pop):
    engines = [Engine(backstop=obst.BACKSTOP_OWNER), ReferenceEngine(backstop=obst.BACKSTOP_OWNER)]
    for engine in engines:
        pop.apply(engine)
        check_accounts(engine)
    compiled, reference = engines
    assert compiled.owners() == reference.owners()
    for owner in compiled.owners():
        assert compiled.account(owner) == reference.account(owner)
    assert compiled.book.l3().tolist() == reference.book.l3().tolist()
    assert pop.lp in compiled.owners() and set(pop.users) < set(compiled.owners())
    assert pop.next_order_id not in compiled.book


# ------------------------------------------------------------------- pinned rules (fixed=)

PINNED = obst.engines(fixed={"sizing": Sizing.FRACTION, "fraction_ppm": 250_000,
                             "mark_rule": "INDEX", "deficit": int(Deficit.ADL),
                             "stp": SelfTradePrevention.CANCEL_TAKER})
PINNED_K = obst.engines(fixed={"fraction_ppm": st.integers(100_000, 300_000),
                               "sizing": Sizing.INCREMENTAL},
                        units=st.sampled_from([("1", "1", None), ("0.5", "2", "0.1")]))


@CAPPED
@given(engine=PINNED)
def test_engines_keep_the_pinned_rules_and_draw_the_rest(engine):
    assert engine.sizing is Sizing.FRACTION and engine.fraction_ppm == 250_000
    assert engine.mark_rule is MarkRule.INDEX and engine.deficit is Deficit.ADL
    assert engine.book.stp == SelfTradePrevention.CANCEL_TAKER
    check_accounts(engine)


@settings(max_examples=min(settings.default.max_examples, 60))
@given(engine=PINNED_K)
def test_a_pinned_strategy_is_drawn_from_and_incremental_gets_its_step(engine):
    assert 100_000 <= engine.fraction_ppm <= 300_000
    assert engine.sizing is Sizing.INCREMENTAL and engine.increment >= engine.k


def test_pinned_rules_vary_the_others():
    seen = set()

    @settings(max_examples=50, database=None)
    @given(rules=obst.engine_rules(fixed={"sizing": Sizing.RESTORE}))
    def draw(rules):
        assert rules["sizing"] == Sizing.RESTORE
        seen.add(rules["mark_rule"])

    draw()
    assert len(seen) > 1


@settings(max_examples=min(settings.default.max_examples, 60))
@given(rules=obst.engine_rules(fixed={"increment": 0}))
def test_an_increment_pinned_at_zero_never_meets_incremental_sizing(rules):
    assert rules["increment"] == 0 and rules["sizing"] != Sizing.INCREMENTAL
    Engine(**{**rules, "backstop": None})


@pytest.mark.parametrize("fixed, message", [
    ({"sizzling": 1}, "fixed names sizzling: not a rule .* they pin tiers, insurance_fund"),
    ({"max_price": 200}, "fixed names max_price"),
    ({"sizing": 9}, r"fixed\['sizing'\]: sizing must be one of FULL \(0\), .* got 9"),
    ({"sizing": "HALF"}, r"fixed\['sizing'\] = 'HALF' is not a Sizing: one of FULL, FRACTION"),
    ({"fraction_ppm": 2_000_000}, r"refused by the engine: fraction_ppm must be in \[0, 1000000\]"
                                  r" ppm, got 2000000"),
    ({"sizing": Sizing.INCREMENTAL, "increment": 0}, "increment must be >= 1"),
    ([("sizing", 1)], "fixed must be a dict of Engine keywords"),
])
def test_fixed_refuses_what_it_cannot_pin_naming_it(fixed, message):
    for strategy in (obst.engines, obst.engine_rules):
        with pytest.raises(InvalidArgument, match=message):
            strategy(fixed=fixed)


def test_engines_rules_given_a_dict_points_at_fixed():
    with pytest.raises(InvalidArgument, match=r"rules must be a strategy .* pass fixed="):
        obst.engines(rules={"sizing": Sizing.FRACTION})


@settings(max_examples=5)
@given(rules=obst.engine_rules())
def test_fixable_rules_are_what_engine_rules_draws_and_the_book_settings(rules):
    assert set(obst.FIXABLE_RULES) == set(rules) | {"stp", "amend_rule"}


def _docs_block(marker: str) -> str:
    text = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    return next(block for block in re.findall(r"```python\n(.*?)```", text, re.S)
                if marker in block)


def test_the_pinning_example_in_docs_testing_md_runs():
    namespace: dict = {}
    exec(compile(_docs_block("engines(fixed="), "docs/testing.md", "exec"), namespace)
    test = namespace["test_partial_liquidation_under_an_index_mark"]
    settings(max_examples=min(settings.default.max_examples, 30))(test)()


# ------------------------------------------------------------------ steps for the harness

# CANCEL and AMEND only beside a new-order kind (the flow must send orders to pick from)
FLOW_ORDERS = {kind: obst.flow_orders(kinds=[kind, Kind.LIMIT]).filter(
    lambda m, kind=kind: m.kind == kind) for kind in Kind}


@CAPPED
@given(data=st.data(), kind=st.sampled_from(list(Kind)))
def test_flow_orders_of_each_kind_carry_what_their_kind_needs(data, kind):
    m = data.draw(FLOW_ORDERS[kind], label="flow order")
    assert m.kind == kind and 0 <= m.pick < 1
    if kind == Kind.AMEND:
        assert 95 <= m.price <= 105 and 1 <= m.qty <= 10
    elif kind == Kind.CANCEL:
        assert (m.price, m.qty) == (0, 0)
    else:
        assert m.side in (Side.BUY, Side.SELL) and 1 <= m.qty <= 10 and m.pick == 0
        assert m.owner in obst.FLOW_OWNERS
        assert (95 <= m.price <= 105) == (kind in PRICED)
        assert (95 <= m.stop_price <= 105) == (kind in STOPS)


@CAPPED
@given(steps=obst.flow_steps(max_wait_ms=0, index=False, liquidations=False,
                             owners=st.just(7), max_size=10))
def test_flow_steps_draw_only_what_they_are_asked_for(steps):
    assert all(isinstance(step, FlowOrder) for step in steps)
    assert all(step.owner == 7 for step in steps if not step.targets_live_order)


def test_flow_steps_reach_every_kind_of_step():
    seen = set()

    @settings(max_examples=100, database=None)
    @given(steps=obst.flow_steps(max_wait_ms=50))
    def draw(steps):
        for step in steps:
            seen.add(step.kind if isinstance(step, FlowOrder) else type(step))
            if isinstance(step, Wait):
                assert 1 <= step.ms <= 50
            if isinstance(step, IndexPrice):
                assert 95 <= step.price <= 105

    draw()
    assert seen == set(Kind) | {Wait, IndexPrice, Liquidate}


def test_flow_strategies_refuse_bad_arguments():
    for bad in (lambda: obst.flow_orders(kinds=[Kind.CANCEL, Kind.AMEND]),
                lambda: obst.flow_orders(kinds=[42]), lambda: obst.flow_orders(min_price=0),
                lambda: obst.flow_orders(max_qty=0), lambda: obst.flow_steps(min_size=3,
                                                                             max_size=2),
                lambda: obst.flow_steps(max_wait_ms=-1)):
        with pytest.raises(InvalidArgument):
            bad()
