"""Differential property test of the margin engine and liquidator (docs/liquidation.md).

One hypothesis example builds two engines with the same random settings (tiers, fees, all mark,
sizing, limit and deficit rules, ADL rankings, triggers, MM bases, band, round cap, liquidation
fee, fund, backstop, STP, amend rule, the initial margin check on or off, sometimes a small
max_price/max_position, k = 1, 2 or 10), gives them the same population (an exempt LP, maybe an
exempt backstop, 1-8 leveraged users, some isolated, seeded against the LP or each other), the
same book (LP depth, user orders and stops), then the same random shock (market orders, index
moves, refills, user orders, cancels, amends, deposits, add_margin, stops, the clock advanced
by drawn amounts, funding payments at drawn rates) interleaved with
``liquidate()`` / ``liquidation_round()``, and finally drains the queue with refills near the
mark. One example in ten puts ``max_price * max_position * k`` at (or one lot under) the 2**61
bound, and the shock also sends prices and
quantities at their limits (max_price, max_position, 2**63 - 1 lots), calls with one hostile
argument (None, floats, bools, strings, numpy integers, values past int64) that both engines must
refuse with the same exception type, and replaces both engines by a copy (``copy.copy``,
``copy.deepcopy``, ``Engine.copy()`` or a pickle round trip) whose state must equal its original's,
bit for bit, before the run goes on with it. After every operation the two engines must agree
exactly on what each call returns (or the type of the exception it raises) and on everything they
show, and every state they show is checked against docs/liquidation.md directly: ``Pair``
(tests/engine_pair.py) drives them and lists what it compares and checks.

A second machine (``test_venue_of_several_instruments_matches_reference``, at the end) drives
venues of 1-3 instruments (docs/market_wide.md, step 1) with the same rules and ``VenuePair``,
which observes and checks every instrument; the one-instrument machine above is unchanged by it.

In one example in four, some steps of the shock leave the state unqueried (only the call's return
value is compared): ``account()`` and ``mark_price()`` are queries and must not change what the
engine does next.

Pairs compared:

* ``reference-vs-reference``: the pure-Python reference built twice; a determinism check (same
  inputs give identical records bit for bit: float fields compared by their bits). Its tests
  (``test_the_reference_engine_is_deterministic``,
  ``test_a_venue_on_the_reference_engine_is_deterministic``) run at most 500 examples
  (``DETERMINISM``, below).
* ``compiled-vs-reference``: ``orderbook.Engine`` (left) against the reference (right), float
  fields compared with NaN-aware equality; skipped only while ``orderbook.Engine`` does not exist.
  The two machines' own names are this pair's tests, on the profile's full budget.

A failing example prints (``note``) a replay script of the engine calls; hypothesis statistics
(``--hypothesis-show-statistics``) show which record kinds and cascade depths the examples reach.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
from engine_pair import BUY, ROUND_TRIPS, SELL, Pair, VenuePair
from hypothesis import event, given, settings
from hypothesis import strategies as st

from orderbook.events import (
    INSURANCE_FUND,
    AdlRanking,
    AmendRule,
    Asset,
    Deficit,
    ForcedKind,
    Instrument,
    LimitRule,
    MarginBasis,
    MarkRule,
    SelfTradePrevention,
    Sizing,
    Trigger,
)
from orderbook.margin import MONEY_BOUND, contract_value
from orderbook.strategies import tiers as tier_tables

PPM = 1_000_000

LP = 100          # the exempt liquidity provider
BACKSTOP = 50     # the backstop account, when the settings name one

# --------------------------------------------------------------------------- implementations


def _reference_cls():
    from orderbook.reference_engine import Engine

    return Engine


def _compiled_cls():
    import orderbook

    return getattr(orderbook, "Engine", None)


REFERENCE_VS_REFERENCE = pytest.param(("reference", "reference"), id="reference-vs-reference")
COMPILED_VS_REFERENCE = pytest.param(
    ("compiled", "reference"), id="compiled-vs-reference", marks=pytest.mark.skipif(
        _compiled_cls() is None,
        reason="orderbook.Engine (the compiled engine) is not exported by orderbook/__init__.py "
               "yet; only the reference-vs-reference determinism check runs"))

# Each machine runs as two tests, so that each pair has its own example budget.
# compiled-vs-reference is the differential check and keeps the profile's budget (ci: 2,000).
# reference-vs-reference is the determinism check (floats compared by their bits): every
# invariant it checks on the reference, compiled-vs-reference checks on both engines; under the ci
# profile (derandomized, seeded by the test function) the two pairs, one parametrized test
# before, drew the same 2,000 inputs, so it spent as long as the differential check (some 4-5
# minutes per machine on CI's 2 cores) on re-running the reference. 500 inputs of its own keep
# the determinism check meaningful; the default (100) and dev (20) profiles are under the cap,
# "explore" is capped at 500 here too (its search is the compiled-vs-reference one).
DETERMINISM = settings(max_examples=min(settings.default.max_examples, 500))


def _classes(pair):
    out = []
    for name in pair:
        if name == "reference":
            out.append(_reference_cls())
            continue
        cls = _compiled_cls()
        if cls is None:  # pragma: no cover - the skipif mark covers this
            pytest.skip("orderbook.Engine does not exist yet")
        if cls is _reference_cls():
            pytest.fail("orderbook.Engine is the pure-Python reference: the compiled-vs-reference "
                        "pair would compare the reference with itself")
        out.append(cls)
    return out




# --------------------------------------------------------------------------- strategies


UNITS = [("1", "1", None, 1), ("1", "1", "0.5", 2), ("0.5", "2", "0.1", 10)]
#: tier tables from the public strategy (orderbook.strategies.tiers), built once per k
TIERS_FOR_K = {k: tier_tables(k) for *_, k in UNITS}


def _settings(draw):
    tick, lot, quote, k = draw(st.sampled_from(UNITS), label="units")
    kw = {
        "tiers": draw(TIERS_FOR_K[k], label="tiers"),
        "taker_fee_ppm": draw(st.integers(0, 2_000), label="taker_fee_ppm"),
        "maker_fee_ppm": draw(st.integers(0, 2_000), label="maker_fee_ppm"),
        "mark_rule": draw(st.sampled_from(list(MarkRule)), label="mark_rule"),
        "sizing": draw(st.sampled_from(list(Sizing)), label="sizing"),
        "fraction_ppm": draw(st.one_of(st.integers(0, PPM), st.sampled_from([1, 250_000, PPM])),
                             label="fraction_ppm"),
        "fraction_above": draw(st.one_of(st.just(0), st.integers(1, 3_000).map(lambda c: c * k)),
                               label="fraction_above"),
        "cooldown_rounds": draw(st.one_of(st.just(0), st.integers(1, 3)), label="cooldown_rounds"),
        # ms of Engine.time; the shock's "advance" steps move the clock by similar amounts
        "cooldown_ms": draw(st.one_of(st.just(0), st.integers(1, 5_000), st.just(30_000)),
                            label="cooldown_ms"),
        # INCREMENTAL refuses 0; steps of 1..3,000 quote units x k span a lot to whole positions
        "increment": draw(st.integers(1, 3_000).map(lambda c: c * k), label="increment"),
        "limit_rule": draw(st.sampled_from(list(LimitRule)), label="limit_rule"),
        "band_ppm": draw(st.one_of(st.just(0), st.integers(1, 100_000)), label="band_ppm"),
        "round_cap": draw(st.one_of(st.none(), st.integers(50, 3_000).map(lambda c: c * k)),
                          label="round_cap"),
        "liquidation_fee_ppm": draw(st.one_of(st.just(0), st.integers(0, 50_000)),
                                    label="liquidation_fee_ppm"),
        "insurance_fund": draw(st.one_of(st.just(0), st.integers(0, 5_000)),
                               label="insurance_fund"),
        "backstop": draw(st.sampled_from([None, BACKSTOP]), label="backstop"),
        "backstop_discount_ppm": draw(st.integers(0, 200_000), label="backstop_discount_ppm"),
        "takeover_below_ppm": draw(st.one_of(st.just(0), st.sampled_from([666_667, PPM]),
                                             st.integers(1, PPM)), label="takeover_below_ppm"),
        "deficit": draw(st.sampled_from(list(Deficit)), label="deficit"),
        "adl_ranking": draw(st.sampled_from(list(AdlRanking)), label="adl_ranking"),
        "trigger": draw(st.sampled_from(list(Trigger)), label="trigger"),
        "mm_basis": draw(st.sampled_from(list(MarginBasis)), label="mm_basis"),
        "check_initial_margin": draw(st.booleans(), label="check_initial_margin"),
        "stp": draw(st.sampled_from(list(SelfTradePrevention)), label="stp"),
        "amend_rule": draw(st.sampled_from(list(AmendRule)), label="amend_rule"),
    }
    if draw(st.integers(0, 9), label="small_max_position") == 9:
        kw["max_position"] = draw(st.integers(60, 400), label="max_position")
    if draw(st.integers(0, 9), label="small_max_price") == 9:
        kw["max_price"] = draw(st.integers(110, 160), label="max_price")
    elif draw(st.integers(0, 9), label="extreme_bounds") == 9:
        # max_price and max_position at the 2**61 bound: max_price * max_position * k is
        # exactly (or just under) MONEY_BOUND, where an int64 product would wrap
        kw["max_price"] = draw(st.sampled_from([2**20, 2**31 - 1, 2**32, 2**40]),
                               label="max_price")
        kw["max_position"] = MONEY_BOUND // (kw["max_price"] * k) - draw(
            st.integers(0, 1), label="below_bound")
    # plain ints, so the replay script in the notes is readable
    for name in ("mark_rule", "sizing", "limit_rule", "deficit", "adl_ranking", "trigger",
                 "mm_basis", "stp", "amend_rule"):
        kw[name] = int(kw[name])
    args = (tick, lot) if quote is None else (tick, lot, quote)
    return args, kw, k


def _setup(draw, pair, kw):
    k = pair.k
    users = sorted(draw(st.sets(st.integers(1, 30), min_size=1, max_size=8), label="users"))
    # plan the seeded positions first: each user's collateral is a drawn margin on its notional,
    # so that a good share of the population sits within a shock of its liquidation price
    seeds, gross = [], dict.fromkeys(users, 0)
    for u in users:
        for _ in range(draw(st.integers(1, 2), label="n_seeds")):
            others = [o for o in users if o != u]
            other = LP if not others or draw(st.integers(0, 2), label="vs_lp") else \
                draw(st.sampled_from(others), label="counterparty")
            price = draw(st.integers(95, 105), label="seed_price")
            qty = draw(st.integers(1, 20), label="seed_qty")
            pair_ = (u, other) if draw(st.booleans(), label="long") else (other, u)
            seeds.append((*pair_, price, qty))
            for o in (u, other):
                if o != LP:
                    gross[o] += price * qty * k
    accounts = [(LP, 10_000_000 * k, {"exempt": True})]
    if kw["backstop"] is not None:
        accounts.append((BACKSTOP, draw(st.integers(0, 20_000), label="backstop_collateral") * k,
                         {"exempt": True}))
    for u in users:
        margin = draw(st.one_of(st.integers(0, 60_000), st.integers(0, 150_000),
                                st.integers(0, 300_000)), label="margin_ppm")
        margin = gross[u] * margin // PPM + draw(st.integers(0, 20), label="extra") * k
        if draw(st.integers(0, 2), label="isolated") == 2:
            # isolated: only `margin` backs the position; the rest is a reserve never at risk
            reserve = draw(st.integers(0, 1_000), label="reserve") * k
            accounts.append((u, margin + reserve, {"isolated_margin": margin}))
        else:
            accounts.append((u, margin, {}))
    for owner, collateral, options in draw(st.permutations(accounts), label="add_order"):
        pair.call("add_account", owner, collateral, **options)
    for long_owner, short_owner, price, qty in seeds:
        pair.call("seed_position", long_owner, short_owner, price, qty)

    # book depth from the LP
    for side, lo, hi in ((BUY, 80, 99), (SELL, 101, 120)):
        for _ in range(draw(st.integers(1, 6), label="n_depth")):
            pair.call("limit", pair.order_id(), side, draw(st.integers(lo, hi), label="px"),
                      draw(st.integers(1, 30), label="qty"), LP)
    # a few resting user orders (not crossing the LP's book) and user stops
    for _ in range(draw(st.integers(0, 2), label="n_user_limits")):
        u = draw(st.sampled_from(users), label="owner")
        if draw(st.booleans(), label="bid"):
            pair.call("limit", pair.order_id(), BUY, draw(st.integers(85, 99)),
                      draw(st.integers(1, 10)), u)
        else:
            pair.call("limit", pair.order_id(), SELL, draw(st.integers(101, 115)),
                      draw(st.integers(1, 10)), u)
    for _ in range(draw(st.integers(0, 3), label="n_stops")):
        _stop(draw, pair, users)
    if kw["mark_rule"] in INDEX_MARKS and draw(
            st.integers(0, 4), label="initial_index") != 4:
        pair.call("set_index", draw(st.integers(95, 105), label="index"))
    return users


def _stop(draw, pair, users):
    u = draw(st.sampled_from(users), label="stop_owner")
    qty = draw(st.integers(1, 10), label="stop_qty")
    if draw(st.booleans(), label="sell_stop"):
        stop = draw(st.integers(82, 99), label="stop_price")
        side, limit = SELL, stop - draw(st.integers(0, 5), label="stop_slack")
    else:
        stop = draw(st.integers(101, 118), label="stop_price")
        side, limit = BUY, stop + draw(st.integers(0, 5), label="stop_slack")
    if draw(st.booleans(), label="stop_market"):
        pair.call("stop_market", pair.order_id(), side, stop, qty, u)
    else:
        pair.call("stop_limit", pair.order_id(), side, stop, limit, qty, u)


OPS = ["market", "market", "market", "set_index", "set_index", "liquidate", "liquidate",
       "round", "refill", "refill", "user_order", "cancel", "amend", "deposit", "add_margin",
       "stop", "extreme", "hostile", "round_trip", "funding_basis", "advance", "advance", "funding",
       "funding"]
#: The mark rules that read the index.
INDEX_MARKS = (MarkRule.INDEX, MarkRule.INDEX_CLAMPED, MarkRule.FAIR)

#: values no public method should take silently; both engines must refuse them alike
HOSTILE = [None, 1.5, True, "7", np.int64(3), 2**63, -(2**63) - 1, -1, 0, 2**63 - 1]


def _extreme(draw, pair, users):
    """Prices and quantities at their limits: both engines refuse or accept them alike."""
    u = draw(st.sampled_from(users), label="owner")
    max_price, max_position = pair.max_price, pair.engines[1].max_position
    choice = draw(st.integers(0, 4), label="extreme")
    qty = draw(st.sampled_from([max_position, max_position + 1, 2**62, 2**63 - 1]),
               label="extreme_qty")
    if choice == 0:
        pair.call("limit", pair.order_id(), SELL, max_price, draw(st.integers(1, 5)), LP)
    elif choice == 1:
        pair.call("market", pair.order_id(), draw(st.sampled_from([BUY, SELL]), label="side"),
                  qty, u)
    elif choice == 2:
        pair.call("limit", pair.order_id(), draw(st.sampled_from([BUY, SELL]), label="side"),
                  draw(st.sampled_from([1, max_price]), label="px"), qty, u)
    elif choice == 3:
        pair.call("seed_position", *draw(st.permutations([u, LP]), label="sides"),
                  draw(st.sampled_from([1, max_price, max_price + 1]), label="px"),
                  draw(st.sampled_from([1, max_position, max_position + 1]), label="qty"))
    else:
        pair.call("total_equity", draw(st.sampled_from([0, max_price, 2**63 - 1]), label="m"))


def _hostile(draw, pair, users):
    """One public call with one argument replaced by a hostile value."""
    u = draw(st.sampled_from(users), label="owner")
    calls = [("add_account", [10_000 + pair.step, 100]), ("deposit", [u, 10]),
             ("add_margin", [u, 1]), ("seed_position", [u, LP, 100, 1]), ("account", [u]),
             ("total_equity", [100]), ("limit", [pair.order_id(), BUY, 90, 1, u]),
             ("market", [pair.order_id(), SELL, 1, u]), ("cancel", [1]), ("amend", [1, 95, 2]),
             ("set_index", [100]), ("liquidate", [1]), ("set_funding_basis", [0]),
             ("advance_to", [10**9]), ("settle_funding", [10_000])]
    method, args = draw(st.sampled_from(calls), label="hostile_method")
    i = draw(st.integers(0, len(args) - 1), label="hostile_arg")
    args[i] = draw(st.sampled_from(HOSTILE), label="hostile_value")
    pair.call(method, *args)


def _advance(draw, pair):
    """Move both clocks by a drawn amount (ms): within and past the drawn cooldown_ms, now and
    then not at all or, refused alike, backwards."""
    step = draw(st.sampled_from([0, 1, 999, 1_000, 5_000, 30_000, 30_001])
                | st.integers(0, 6_000) | st.integers(-3, -1), label="advance_ms")
    pair.call("advance_to", int(pair.engines[1].time) + step)


#: funding rates (units of 10**-8): none, the smallest, a venue's usual 0.01 %, percents that
#: can take an account under maintenance, the bound 100 % and just past it (refused alike)
FUNDING_RATES = (st.sampled_from([0, 1, -1, 10_000, -10_000, 1_234_567, -1_234_567, 10**8,
                                  -(10**8), 10**8 + 1])
                 | st.integers(-5_000_000, 5_000_000) | st.integers(-20_000, 20_000))


def _shock(draw, pair, users, mark_rule):
    owners = [LP] + users
    # now and then leave the state unqueried after some steps: account() and mark_price() must
    # not change what the engine does next (the previous mark stands while the rule has none)
    pair.draw = draw
    pair.observe_all = draw(st.integers(0, 3), label="observe_all") != 3
    # the primary shock: a market order (it trades unless STP stops it) or an index move
    if mark_rule in INDEX_MARKS and draw(
            st.integers(0, 3), label="index_shock") != 3:
        pair.call("set_index", draw(st.integers(60, 140), label="index"))
    else:
        side = draw(st.sampled_from([SELL, SELL, SELL, BUY]), label="side")
        pair.call("market", pair.order_id(), side, draw(st.integers(1, 80), label="qty"),
                  draw(st.sampled_from(owners), label="owner"))
    for _ in range(draw(st.integers(0, 10), label="n_ops")):
        op = draw(st.sampled_from(OPS), label="op")
        if op == "market":
            owner = draw(st.sampled_from(owners), label="owner")
            side = draw(st.sampled_from([SELL, SELL, BUY]), label="side")
            pair.call("market", pair.order_id(), side, draw(st.integers(1, 40), label="qty"),
                      owner)
        elif op == "set_index":
            pair.call("set_index", draw(st.integers(60, 140), label="index"))
        elif op == "funding_basis":
            # within the bound, at it, past it; under FAIR also past max_price at a high index
            pair.call("set_funding_basis", draw(st.sampled_from(
                [-500_001, -500_000, -30_000, -1, 0, 1, 30_000, 500_000, 500_001])
                | st.integers(-100_000, 100_000), label="basis"))
        elif op in ("liquidate", "round"):
            _liquidation_op(draw, pair, op)
        elif op == "refill":
            if draw(st.integers(0, 3), label="refill_bid") != 3:
                pair.call("limit", pair.order_id(), BUY, draw(st.integers(60, 99), label="px"),
                          draw(st.integers(1, 40), label="qty"), LP)
            else:
                pair.call("limit", pair.order_id(), SELL, draw(st.integers(101, 140), label="px"),
                          draw(st.integers(1, 40), label="qty"), LP)
        elif op == "user_order":
            method = draw(st.sampled_from(["limit", "ioc", "fok", "post_only"]), label="method")
            pair.call(method, pair.order_id(), draw(st.sampled_from([BUY, SELL]), label="side"),
                      draw(st.integers(80, 120), label="px"), draw(st.integers(1, 10), label="qty"),
                      draw(st.sampled_from(users), label="owner"))
        elif op == "cancel" and pair.ids:
            pair.call("cancel", draw(st.sampled_from(pair.ids), label="id"))
        elif op == "amend" and pair.ids:
            pair.call("amend", draw(st.sampled_from(pair.ids), label="id"),
                      draw(st.integers(80, 120), label="px"), draw(st.integers(1, 30), label="qty"))
        elif op in ("deposit", "add_margin"):
            _money_op(draw, pair, op, users)
        elif op == "stop":
            _stop(draw, pair, users)
        elif op == "extreme":
            _extreme(draw, pair, users)
        elif op == "hostile":
            _hostile(draw, pair, users)
        elif op == "round_trip":
            pair.round_trip(draw(st.sampled_from(sorted(ROUND_TRIPS)), label="round_trip"))
        elif op == "advance":
            _advance(draw, pair)
        elif op == "funding":
            pair.call("settle_funding", draw(FUNDING_RATES, label="funding_rate"))
    pair.call("liquidate")


def _drain(draw, pair):
    """Refill the side the queued accounts need, near the mark, and liquidate again."""
    for _ in range(draw(st.integers(1, 3), label="n_drains")):
        queue = pair.snap["queue"]
        if not queue:
            return
        mark = pair.snap["mark"] or 100
        by_owner = dict(zip(pair.snap["owners"], pair.snap["accounts"], strict=True))
        sides = {1 if by_owner[o].position > 0 else -1 for o in queue if by_owner[o].position}
        if 1 in sides or not sides:      # queued longs sell into bids
            pair.call("limit", pair.order_id(), BUY, max(1, mark - draw(st.integers(0, 3))),
                      draw(st.integers(10, 200), label="qty"), LP)
        if -1 in sides or not sides:     # queued shorts buy from asks
            pair.call("limit", pair.order_id(), SELL,
                      mark + draw(st.integers(0, 3)) + (1 if 1 in sides else 0),
                      draw(st.integers(10, 200), label="qty"), LP)
        pair.call("liquidate")


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("pair_names", [COMPILED_VS_REFERENCE])
@given(data=st.data())
def test_engine_matches_reference(pair_names, data):
    _engine_example(pair_names, data)


@pytest.mark.parametrize("pair_names", [REFERENCE_VS_REFERENCE])
@DETERMINISM
@given(data=st.data())
def test_the_reference_engine_is_deterministic(pair_names, data):
    _engine_example(pair_names, data)


def _engine_example(pair_names, data):
    classes = _classes(pair_names)
    args, kw, k = _settings(data.draw)
    pair = Pair(classes, args, kw, k, bitwise=pair_names == ("reference", "reference"))
    users = _setup(data.draw, pair, kw)
    _shock(data.draw, pair, users, kw["mark_rule"])
    _drain(data.draw, pair)
    _coverage_events(pair.snap, kw)


def _coverage_events(snap, kw):
    """Hypothesis statistics (--hypothesis-show-statistics): what the examples reached."""
    recs = snap["forced"]
    kinds = sorted({ForcedKind(int(r["kind"])).name for r in recs})
    event(f"records: {', '.join(kinds) if kinds else 'none'}")
    if len(recs):
        event(f"max round in a cascade: {min(int(recs['round'].max()), 5)}+"
              if recs["round"].max() >= 5 else f"max round: {int(recs['round'].max())}")
        event(f"max generation: {min(int(recs['generation'].max()), 3)}")
    if any(int(r["owner"]) == INSURANCE_FUND for r in recs):
        event("the fund unwound a position with its own forced orders")
    if any(int(r["socialized"]) for r in recs):
        event("a shortfall was socialised")
    if any(int(r["bad_debt"]) for r in recs):
        event("bad debt")
    if snap["queue"]:
        event("ended with a non-empty queue (stall)")


# =========================================================== venues of several instruments
# docs/market_wide.md, step 1: one Engine holding 1-3 linear instruments (Engine(instruments=
# [Instrument(...)])). The same settings as above for the venue's rules; per instrument a drawn
# tick and lot (k = tick x lot / quote_unit whole), tiers, max_price, max_position and mark rule
# (None: the venue keyword's); accounts seeded in several instruments; orders of every kind on
# every book (each with its own order ids); shocks on one instrument or several at once;
# instruments given by index or by name. VenuePair (tests/engine_pair.py) compares every
# instrument's book, trades, mark and open interest, every account with its positions, the
# records with their instrument, total_equity at per-instrument marks, and runs
# orderbook.testing.check_accounts after every step.

NAMES = ["BTC", "ETH", "SOL", "main", "x"]
#: (tick_size, lot_size, tick x lot in tenths): with quote_unit "0.1", k is the last figure
VENUE_UNITS = [("1", "1", 10), ("0.5", "2", 10), ("0.1", "1", 1), ("0.5", "1", 5),
               ("1", "0.2", 2), ("2", "1", 20)]
#: tier tables for every k a venue can have (with quote_unit None, k is a ratio of the above)
VENUE_TIERS_FOR_K = {a // b: tier_tables(a // b) for *_, a in VENUE_UNITS for *_, b in VENUE_UNITS
                     if a % b == 0}


def _inverse_k(tick, lot, contract_value):
    """k of an inverse instrument on the machine's coin unit, 0.0001: coin units x ticks per lot
    (at ~100 ticks a lot is worth ~k / 100 coin units)."""
    return int(Decimal(contract_value) * Decimal(lot) / (Decimal(tick) * Decimal("0.0001")))


def _venue_settings(draw):
    """The venue's rules (as _settings draws them) and 1-3 instruments; one venue in four is
    inverse (docs/market_wide.md section 7), with no collateral assets (refused there)."""
    _, kw, _ = _settings(draw)
    n = draw(st.integers(1, 3), label="n_instruments")
    names = draw(st.lists(st.sampled_from(NAMES), min_size=n, max_size=n, unique=True),
                 label="names")
    units = [draw(st.sampled_from(VENUE_UNITS), label="instrument_units") for _ in range(n)]
    inverse = draw(st.integers(0, 3), label="inverse") == 3
    values = [None] * n
    if inverse:
        kw.update(settlement=1, contract_value="1", quote_unit="0.0001")
        values = [draw(st.sampled_from([None, "2"]), label="contract_value") for _ in range(n)]
        ks = [_inverse_k(u[0], u[1], v or "1") for u, v in zip(units, values, strict=True)]
        if kw.get("max_price", 0) > 160:
            # the extreme bound of an inverse venue: max_position x k at 2**61 (a lot is worth
            # most at one tick), max_price at most k
            kw.pop("max_price")
            kw["max_position"] = MONEY_BOUND // max(ks) - draw(st.integers(0, 1),
                                                                label="below_bound")
    elif draw(st.booleans(), label="quote_unit_given"):
        kw["quote_unit"], ks = "0.1", [u[2] for u in units]
    else:
        # quote_unit None: instrument 0's tick x lot; the others must be whole multiples of it
        units = [units[0]] + [u for u in units[1:] if u[2] % units[0][2] == 0]
        names, ks = names[:len(units)], [u[2] // units[0][2] for u in units]
    values = values[:len(units)]
    venue_max_price = kw.get("max_price", 2**32 - 1)
    if inverse:
        pass
    elif "max_position" in kw and venue_max_price * kw["max_position"] * max(ks) > MONEY_BOUND:
        # the venue's bound was drawn for _settings' k; the Engine checks its keywords with
        # instrument 0's k, and an instrument without its own bounds takes them
        kw["max_position"] = MONEY_BOUND // (venue_max_price * max(ks))
    instruments = []
    for name, (tick, lot, _), k, value in zip(names, units, ks, values, strict=True):
        spec = {} if value is None else {"contract_value": value}
        if draw(st.booleans(), label="own_tiers"):
            spec["tiers"] = draw(VENUE_TIERS_FOR_K[1 if inverse else k], label="instrument_tiers")
        if draw(st.integers(0, 2), label="own_mark_rule"):
            spec["mark_rule"] = int(draw(st.sampled_from(list(MarkRule)),
                                         label="instrument_mark_rule"))
        bound = draw(st.integers(0, 9), label="instrument_bounds")
        if bound == 9:
            spec["max_price"] = draw(st.integers(110, 160), label="instrument_max_price")
        elif bound == 8:
            spec["max_position"] = draw(st.integers(60, 400), label="instrument_max_position")
        elif bound == 7 and inverse:
            spec["max_position"] = MONEY_BOUND // k - draw(st.integers(0, 1),
                                                           label="below_bound")
        elif bound == 7:
            spec["max_price"] = draw(st.sampled_from([2**20, 2**31 - 1, 2**32]),
                                     label="instrument_max_price")
            spec["max_position"] = MONEY_BOUND // (spec["max_price"] * k) - draw(
                st.integers(0, 1), label="below_bound")
        max_price = spec.get("max_price", venue_max_price)
        if not inverse and "max_position" not in spec and "max_position" in kw and (
                max_price * kw["max_position"] * k > MONEY_BOUND):
            # an own max_price over the venue's bound: this instrument needs its own
            spec["max_position"] = MONEY_BOUND // (max_price * k)
        instruments.append(Instrument(name, tick, lot, **spec))
    kw["instruments"] = instruments
    if not inverse and draw(st.booleans(), label="assets"):
        # collateral assets (step 3), each valued at its own instrument's mark: a unit is
        # worth unit x tick / quote_unit quote units per tick
        valued = draw(st.sets(st.integers(0, len(names) - 1), min_size=1, max_size=2),
                      label="valued")
        kw["assets"] = [Asset(draw(st.sampled_from([names[i], f"X{i}"]), label="asset_name"),
                              draw(st.sampled_from(["1", "0.1", "0.5"]), label="asset_unit"),
                              draw(st.sampled_from([names[i], i]), label="asset_instrument"),
                              haircut_ppm=draw(st.sampled_from([0, 50_000, 200_000, 999_999]),
                                               label="haircut"),
                              conversion_discount_ppm=draw(st.sampled_from(
                                  [0, 25_000, 500_000]), label="discount"))
                        for i in sorted(valued)]
        for asset in kw["assets"]:
            # sometimes the instrument valuing it is its spot book (a lot a whole number of
            # its units): its trades exchange the asset, and conversions sell through it
            i = names.index(asset.instrument) if isinstance(asset.instrument, str) \
                else asset.instrument
            lot = Decimal(instruments[i].lot_size) / Decimal(asset.unit)
            if lot == lot.to_integral_value() and draw(st.integers(0, 2), label="spot") == 2:
                instruments[i] = replace(instruments[i], spot=True)
    return kw, ks


def _mark_rules(kw):
    return [MarkRule(kw["mark_rule"] if spec.mark_rule is None else spec.mark_rule)
            for spec in kw["instruments"]]


def _instrument(draw, pair, label="instrument"):
    """An instrument: its index, and how a call names it (index, name, or left to default)."""
    i = draw(st.integers(0, pair.n - 1), label=label)
    how = draw(st.integers(0, 3), label=f"{label}_by")
    if how == 0:
        return i, {"instrument": pair.names[i]}
    if how == 1 and i == 0:
        return i, {}
    return i, {"instrument": i}


def _venue_setup(draw, pair, kw):
    ks, n = pair.ks, pair.n
    # a price's worth of one lot, roughly (inverse: k / 100 coin units at ~100 ticks)
    unit = max(1, ks[0] // 10_000) if pair.inverse else ks[0]
    users = sorted(draw(st.sets(st.integers(1, 30), min_size=1, max_size=8), label="users"))
    seeds, gross = [], dict.fromkeys(users, 0)
    # one example in three: baskets, every user on one side of every instrument against the
    # LP (a cross-instrument shock then meets accounts whose forced orders move other marks)
    basket = n > 1 and draw(st.integers(0, 2), label="basket") == 2
    basket_long = basket and draw(st.booleans(), label="basket_long")
    for u in users:
        held = set(range(n)) if basket else draw(st.sets(st.integers(0, n - 1), min_size=1),
                                                  label="seeded_instruments")
        for i in sorted(held):
            for _ in range(draw(st.integers(1, 2), label="n_seeds")):
                others = [o for o in users if o != u]
                other = LP if basket or not others or draw(st.integers(0, 2), label="vs_lp") \
                    else draw(st.sampled_from(others), label="counterparty")
                price = draw(st.integers(95, 105), label="seed_price")
                qty = draw(st.integers(1, 20), label="seed_qty")
                long = basket_long if basket else draw(st.booleans(), label="long")
                pair_ = (u, other) if long else (other, u)
                seeds.append((*pair_, price, qty, i))
                for o in (u, other):
                    if o != LP:
                        gross[o] += contract_value(pair.inverse, ks[i], price, qty)
    accounts = [(LP, 10_000_000 * max(ks), {"exempt": True})]
    if kw["backstop"] is not None:
        accounts.append((BACKSTOP, draw(st.integers(0, 20_000), label="backstop_collateral")
                         * max(ks), {"exempt": True}))
    for u in users:
        margin = draw(st.one_of(st.integers(0, 60_000), st.integers(0, 150_000),
                                st.integers(0, 300_000)), label="margin_ppm")
        margin = gross[u] * margin // PPM + draw(st.integers(0, 20), label="extra") * unit
        if draw(st.integers(0, 2), label="isolated") == 2:
            # isolated: its margin backs one position; in a venue of several instruments a
            # seed or order in a second instrument is refused (both engines alike)
            reserve = draw(st.integers(0, 1_000), label="reserve") * unit
            accounts.append((u, margin + reserve, {"isolated_margin": margin}))
        else:
            accounts.append((u, margin, {}))
    # the setup's calls are compared one by one, the whole state once it is laid out (each
    # look at every account costs a liquidation price per position)
    pair.quiet = True
    for owner, collateral, options in draw(st.permutations(accounts), label="add_order"):
        _, exc = pair.call("add_account", owner, collateral, **options)
        assert exc is None, exc
    for u in users:
        if pair.asset_names and draw(st.integers(0, 2), label="holds_asset"):
            _asset_deposit(draw, pair, u)
    for long_owner, short_owner, price, qty, i in seeds:
        pair.call("seed_position", long_owner, short_owner, price, qty,
                  **({"instrument": i} if i or draw(st.booleans(), label="explicit") else {}))
    for j, spec in enumerate(kw.get("assets", ())):
        if any(inst.spot and inst.name in (spec.instrument, pair.names[spec.instrument]
                                           if isinstance(spec.instrument, int) else None)
               for inst in kw["instruments"]):
            # the LP's coin, for its asks on the spot book (refused past the asset's bound)
            pair.call("deposit", LP, 100_000, asset=j)
    for i in range(n):
        on = {"instrument": i}
        for side, lo, hi in ((BUY, 80, 99), (SELL, 101, 120)):
            for _ in range(draw(st.integers(1, 6), label="n_depth")):
                pair.call("limit", pair.order_id(i), side, draw(st.integers(lo, hi), label="px"),
                          draw(st.integers(1, 30), label="qty"), LP, **on)
    for _ in range(draw(st.integers(0, 2 * n), label="n_user_limits")):
        i, on = _instrument(draw, pair)
        u = draw(st.sampled_from(users), label="owner")
        if draw(st.booleans(), label="bid"):
            pair.call("limit", pair.order_id(i), BUY, draw(st.integers(85, 99)),
                      draw(st.integers(1, 10)), u, **on)
        else:
            pair.call("limit", pair.order_id(i), SELL, draw(st.integers(101, 115)),
                      draw(st.integers(1, 10)), u, **on)
    for _ in range(draw(st.integers(0, 3), label="n_stops")):
        _venue_stop(draw, pair, users)
    for i, rule in enumerate(_mark_rules(kw)):
        if rule in INDEX_MARKS and draw(st.integers(0, 4), label="initial_index") != 4:
            pair.call("set_index", draw(st.integers(95, 105), label="index"), instrument=i)
    pair.quiet = False
    pair.check(f"step {pair.step}: the setup")
    return users


def _asset_deposit(draw, pair, owner, hostile=False):
    """A deposit of a collateral asset, named or numbered (or, hostile, one the venue lacks)."""
    j = draw(st.integers(0, len(pair.asset_names) - 1), label="asset")
    asset = draw(st.sampled_from([j, pair.asset_names[j]]), label="asset_by")
    if hostile:
        asset = draw(st.sampled_from(["nope", len(pair.asset_names), -1, 1.5, b"X"]),
                     label="hostile_asset")
    pair.call("deposit", owner, draw(st.one_of(st.integers(1, 40), st.integers(1, 400)),
                                     label="units"), asset=asset)


def _venue_stop(draw, pair, users):
    i, on = _instrument(draw, pair)
    u = draw(st.sampled_from(users), label="stop_owner")
    qty = draw(st.integers(1, 10), label="stop_qty")
    if draw(st.booleans(), label="sell_stop"):
        stop = draw(st.integers(82, 99), label="stop_price")
        side, limit = SELL, stop - draw(st.integers(0, 5), label="stop_slack")
    else:
        stop = draw(st.integers(101, 118), label="stop_price")
        side, limit = BUY, stop + draw(st.integers(0, 5), label="stop_slack")
    if draw(st.booleans(), label="stop_market"):
        pair.call("stop_market", pair.order_id(i), side, stop, qty, u, **on)
    else:
        pair.call("stop_limit", pair.order_id(i), side, stop, limit, qty, u, **on)


def _cross_shock(draw, pair, users, rules):
    """A move on several instruments at once (no liquidation in between): one common shift of
    the index (where the mark reads it) or market orders on each."""
    chosen = sorted(draw(st.sets(st.integers(0, pair.n - 1), min_size=1), label="moved"))
    shift = draw(st.integers(-40, 40), label="shift")
    for i in chosen:
        if rules[i] in INDEX_MARKS and draw(st.integers(0, 3), label="index_shock") != 3:
            pair.call("set_index", max(1, 100 + shift + draw(st.integers(-5, 5), label="noise")),
                      instrument=i)
        else:
            side = SELL if shift < 0 else BUY if shift > 0 else draw(
                st.sampled_from([SELL, BUY]), label="side")
            pair.call("market", pair.order_id(i), side,
                      draw(st.integers(1, 80), label="qty"),
                      draw(st.sampled_from([LP] + users), label="owner"), instrument=i)


VENUE_OPS = OPS + ["cross_shock", "cross_shock", "query", "wrong_book", "asset_deposit"]
#: hostile instrument arguments: unknown index or name, wrong types
HOSTILE_INSTRUMENTS = [None, 1.5, True, "nope", "", -1, 3, 2**63, np.int64(0), b"BTC"]


def _venue_extreme(draw, pair, users):
    i, on = _instrument(draw, pair)
    u = draw(st.sampled_from(users), label="owner")
    spec = pair.engines[1].instruments[i]
    max_price, max_position = int(spec.max_price), int(spec.max_position)
    choice = draw(st.integers(0, 4), label="extreme")
    qty = draw(st.sampled_from([max_position, max_position + 1, 2**62, 2**63 - 1]),
               label="extreme_qty")
    if choice == 0:
        pair.call("limit", pair.order_id(i), SELL, max_price, draw(st.integers(1, 5)), LP, **on)
    elif choice == 1:
        pair.call("market", pair.order_id(i), draw(st.sampled_from([BUY, SELL]), label="side"),
                  qty, u, **on)
    elif choice == 2:
        pair.call("limit", pair.order_id(i), draw(st.sampled_from([BUY, SELL]), label="side"),
                  draw(st.sampled_from([1, max_price]), label="px"), qty, u, **on)
    elif choice == 3:
        pair.call("seed_position", *draw(st.permutations([u, LP]), label="sides"),
                  draw(st.sampled_from([1, max_price, max_price + 1]), label="px"),
                  draw(st.sampled_from([1, max_position, max_position + 1]), label="qty"), **on)
    else:
        # one mark per instrument (or, wrongly, an int or too few on a venue of several; a
        # one-instrument venue takes an int or a sequence of one)
        marks = draw(st.lists(st.sampled_from([0, 1, max_price, 2**63 - 1]), min_size=pair.n,
                              max_size=pair.n), label="marks")
        pair.call("total_equity", draw(st.sampled_from(
            [marks, tuple(marks), marks[:-1], marks[0], marks + [1]] if pair.n > 1
            else [marks[0], marks, tuple(marks), marks + [1]]), label="m"))


def _venue_hostile(draw, pair, users):
    """One call with one hostile argument, or a hostile instrument."""
    u = draw(st.sampled_from(users), label="owner")
    i = draw(st.integers(0, pair.n - 1), label="instrument")
    calls = [("add_account", [10_000 + pair.step, 100]), ("deposit", [u, 10]),
             ("add_margin", [u, 1]), ("seed_position", [u, LP, 100, 1]), ("account", [u]),
             ("total_equity", [[100] * pair.n]),
             ("limit", [pair.order_id(i), BUY, 90, 1, u]),
             ("market", [pair.order_id(i), SELL, 1, u]), ("cancel", [1]), ("amend", [1, 95, 2]),
             ("set_index", [100]), ("liquidate", [1]), ("set_funding_basis", [0]),
             ("mark_price", []), ("open_interest", []), ("trades", []), ("advance_to", [10**9]),
             ("settle_funding", [10_000])]
    method, args = draw(st.sampled_from(calls), label="hostile_method")
    takes_instrument = method in ("seed_position", "limit", "market", "cancel", "amend",
                                  "set_index", "set_funding_basis", "mark_price",
                                  "open_interest", "trades", "settle_funding")
    if takes_instrument and (not args or draw(st.booleans(), label="hostile_instrument")):
        pair.call(method, *args, instrument=draw(st.sampled_from(HOSTILE_INSTRUMENTS),
                                                 label="hostile_value"))
        return
    j = draw(st.integers(0, len(args) - 1), label="hostile_arg")
    args[j] = draw(st.sampled_from(HOSTILE), label="hostile_value")
    pair.call(method, *args, **({"instrument": i} if takes_instrument else {}))


def _venue_shock(draw, pair, users, rules):
    owners = [LP] + users
    pair.draw = draw
    pair.observe_all = draw(st.integers(0, 3), label="observe_all") != 3
    _cross_shock(draw, pair, users, rules)
    for _ in range(draw(st.integers(0, 12), label="n_ops")):
        op = draw(st.sampled_from(VENUE_OPS), label="op")
        i, on = _instrument(draw, pair)
        if op == "market":
            side = draw(st.sampled_from([SELL, SELL, BUY]), label="side")
            pair.call("market", pair.order_id(i), side, draw(st.integers(1, 40), label="qty"),
                      draw(st.sampled_from(owners), label="owner"), **on)
        elif op == "set_index":
            pair.call("set_index", draw(st.integers(60, 140), label="index"), **on)
        elif op == "funding_basis":
            pair.call("set_funding_basis", draw(st.sampled_from(
                [-500_001, -500_000, -30_000, -1, 0, 1, 30_000, 500_000, 500_001])
                | st.integers(-100_000, 100_000), label="basis"), **on)
        elif op in ("liquidate", "round"):
            _liquidation_op(draw, pair, op)
        elif op == "refill":
            if draw(st.integers(0, 3), label="refill_bid") != 3:
                pair.call("limit", pair.order_id(i), BUY, draw(st.integers(60, 99), label="px"),
                          draw(st.integers(1, 40), label="qty"), LP, **on)
            else:
                pair.call("limit", pair.order_id(i), SELL,
                          draw(st.integers(101, 140), label="px"),
                          draw(st.integers(1, 40), label="qty"), LP, **on)
        elif op == "user_order":
            method = draw(st.sampled_from(["limit", "ioc", "fok", "post_only"]), label="method")
            pair.call(method, pair.order_id(i),
                      draw(st.sampled_from([BUY, SELL]), label="side"),
                      draw(st.integers(80, 120), label="px"),
                      draw(st.integers(1, 10), label="qty"),
                      draw(st.sampled_from(users), label="owner"), **on)
        elif op == "cancel" and pair.book_ids[i]:
            pair.call("cancel", draw(st.sampled_from(pair.book_ids[i]), label="id"), **on)
        elif op == "amend" and pair.book_ids[i]:
            pair.call("amend", draw(st.sampled_from(pair.book_ids[i]), label="id"),
                      draw(st.integers(80, 120), label="px"),
                      draw(st.integers(1, 30), label="qty"), **on)
        elif op == "wrong_book":
            # an id of another book: unknown here, or another order that has the same id here
            j = draw(st.integers(0, pair.n - 1), label="id_book")
            if pair.book_ids[j]:
                oid = draw(st.sampled_from(pair.book_ids[j]), label="id")
                if draw(st.booleans(), label="cancel"):
                    pair.call("cancel", oid, **on)
                else:
                    pair.call("amend", oid, draw(st.integers(80, 120), label="px"),
                              draw(st.integers(1, 30), label="qty"), **on)
        elif op == "query":
            method = draw(st.sampled_from(["mark_price", "open_interest", "trades", "account",
                                           "total_equity"]), label="query")
            if method == "account":
                pair.call("account", draw(st.sampled_from(owners), label="owner"))
            elif method == "total_equity":
                pair.call("total_equity")
            else:
                pair.call(method, **on)
        elif op in ("deposit", "add_margin"):
            _money_op(draw, pair, op, users)
        elif op == "stop":
            _venue_stop(draw, pair, users)
        elif op == "asset_deposit" and pair.asset_names:
            _asset_deposit(draw, pair, draw(st.sampled_from(owners), label="owner"),
                           hostile=draw(st.integers(0, 4), label="hostile") == 4)
        elif op == "extreme":
            _venue_extreme(draw, pair, users)
        elif op == "hostile":
            _venue_hostile(draw, pair, users)
        elif op == "round_trip":
            pair.round_trip(draw(st.sampled_from(sorted(ROUND_TRIPS)), label="round_trip"))
        elif op == "cross_shock":
            _cross_shock(draw, pair, users, rules)
        elif op == "advance":
            _advance(draw, pair)
        elif op == "funding":
            # on any instrument: a spot book's refusal is compared too
            pair.call("settle_funding", draw(FUNDING_RATES, label="funding_rate"), **on)
    pair.call("liquidate")


def _venue_drain(draw, pair):
    """Per instrument, refill the side the queued accounts' positions there need, near that
    instrument's mark, and liquidate again."""
    for _ in range(draw(st.integers(1, 3), label="n_drains")):
        queue = pair.snap["queue"]
        if not queue:
            return
        by_owner = dict(zip(pair.snap["owners"], pair.snap["accounts"], strict=True))
        for i in range(pair.n):
            mark = pair.snap["marks"][i] or 100
            sides = {1 if p.position > 0 else -1 for o in queue
                     for p in by_owner[o].positions if p.instrument == i}
            if 1 in sides:       # queued longs sell into bids
                pair.call("limit", pair.order_id(i), BUY,
                          max(1, mark - draw(st.integers(0, 3))),
                          draw(st.integers(10, 200), label="qty"), LP, instrument=i)
            if -1 in sides:      # queued shorts buy from asks
                pair.call("limit", pair.order_id(i), SELL,
                          mark + draw(st.integers(0, 3)) + (1 if 1 in sides else 0),
                          draw(st.integers(10, 200), label="qty"), LP, instrument=i)
        pair.call("liquidate")


@pytest.mark.parametrize("pair_names", [COMPILED_VS_REFERENCE])
@given(data=st.data())
def test_venue_of_several_instruments_matches_reference(pair_names, data):
    _venue_example(pair_names, data)


@pytest.mark.parametrize("pair_names", [REFERENCE_VS_REFERENCE])
@DETERMINISM
@given(data=st.data())
def test_a_venue_on_the_reference_engine_is_deterministic(pair_names, data):
    _venue_example(pair_names, data)


def _venue_example(pair_names, data):
    classes = _classes(pair_names)
    kw, ks = _venue_settings(data.draw)
    pair = VenuePair(classes, kw, ks, bitwise=pair_names == ("reference", "reference"))
    rules = _mark_rules(kw)
    users = _venue_setup(data.draw, pair, kw)
    _venue_shock(data.draw, pair, users, rules)
    _venue_drain(data.draw, pair)
    _venue_coverage_events(pair.snap, pair.n)


def _venue_coverage_events(snap, n):
    """Hypothesis statistics for the venue machine: as _coverage_events, and how many
    instruments, multi-position liquidations and cross-instrument generations."""
    event(f"instruments: {n}")
    if snap["assets"]:
        event(f"collateral assets: {len(snap['assets'])}")
    if any(units for units, _ in snap["conversions"]):
        event("collateral was converted")
    held = [len(a.positions) for a in snap["accounts"] if a.owner not in (LP, BACKSTOP)]
    if any(h > 1 for h in held):
        event("an account held positions in several instruments at the end")
    recs = snap["forced"]
    kinds = sorted({ForcedKind(int(r["kind"])).name for r in recs})
    event(f"records: {', '.join(kinds) if kinds else 'none'}")
    if not len(recs):
        return
    event(f"max round in a cascade: {min(int(recs['round'].max()), 5)}+"
          if recs["round"].max() >= 5 else f"max round: {int(recs['round'].max())}")
    event(f"max generation: {min(int(recs['generation'].max()), 3)}")
    event(f"records on {len(set(recs['instrument'].tolist()))} instrument(s)")
    closing = recs[recs["kind"] != int(ForcedKind.SHORTFALL)]
    served = {}
    for r in closing:
        served.setdefault((int(r["round"]), int(r["owner"])), set()).add(int(r["instrument"]))
    if any(len(s) > 1 for s in served.values()):
        event("a liquidation closed positions in several instruments")
    by_generation = {}
    for r in closing:
        by_generation.setdefault(int(r["generation"]), set()).add(int(r["instrument"]))
    earlier = set()
    cross = strict = False
    for g in sorted(by_generation):
        # a later generation closing on an instrument other than an earlier one's (worked
        # example 1: BTC and ETH, then ETH); strictly: on an instrument no earlier one touched
        cross |= bool(earlier) and len(earlier | by_generation[g]) > 1
        strict |= bool(earlier) and bool(by_generation[g] - earlier)
        earlier |= by_generation[g]
    if cross:
        event("cross-instrument generations (a later generation on another instrument)")
    if strict:
        event("cross-instrument generations (a later one on an instrument new to the cascade)")
    if any(int(r["owner"]) == INSURANCE_FUND for r in recs):
        event("the fund unwound a position with its own forced orders")
    if any(int(r["socialized"]) for r in recs):
        event("a shortfall was socialised")
    if any(int(r["bad_debt"]) for r in recs):
        event("bad debt")
    if snap["queue"]:
        event("ended with a non-empty queue (stall)")


def _liquidation_op(draw, pair, op):
    """liquidate (bounded one time in four) or one liquidation_round, the same draws in both
    machines."""
    if op == "round":
        pair.call("liquidation_round")
        pair.sync_records()
    elif draw(st.integers(0, 3), label="bounded") != 3:
        pair.call("liquidate")
    else:
        pair.call("liquidate", max_rounds=draw(st.integers(0, 3), label="max_rounds"))


def _money_op(draw, pair, op, users):
    """A deposit or an isolated account's add_margin, the same draws in both machines."""
    if op == "deposit":
        pair.call("deposit", draw(st.sampled_from(users), label="owner"),
                  draw(st.integers(1, 500), label="amount") * pair.k)
    else:
        pair.call("add_margin", draw(st.sampled_from(users), label="owner"),
                  draw(st.integers(1, 300), label="amount") * pair.k)


# =========================================================== disagreements found by the machines


def test_total_equity_takes_a_sequence_of_one_mark_on_a_one_instrument_venue():
    # found by test_venue_of_several_instruments_matches_reference[compiled-vs-reference]: the
    # compiled engine refused the sequence form (TypeError); both now check the mark through
    # the shared _engine_args.equity_marks
    from orderbook.events import Instrument

    for kwargs in ({}, {"instruments": [Instrument("BTC")]}):
        compiled, reference = _compiled_cls()(**kwargs), _reference_cls()(**kwargs)
        assert reference.total_equity([1]) == reference.total_equity(1) == 0
        assert compiled.total_equity([1]) == 0
        assert compiled.total_equity((5,)) == 0


def test_the_fund_records_its_losses_when_the_round_cap_stops_its_serve(engine_cls):
    # found by test_venue_of_several_instruments_matches_reference (HYPOTHESIS_PROFILE=ci),
    # reduced from its 27-call replay. Account 22 is taken over by the fund (BTC and ETH); the
    # fund unwinds under a round cap of 598: in one serve it sells BTC at a loss, below zero,
    # then the cap leaves its ETH position no lot (SERVE_STOP). That serve returned before the
    # fund's 'deeper' SHORTFALL check, so the fund ended at -173 with no bad debt recorded;
    # now what the positions before the stop did is settled first.
    eng = engine_cls(
        tiers=[(8894, 5001, 5092), (11082, 20510, 37265), (None, 40213, 40493)],
        taker_fee_ppm=470, maker_fee_ppm=237, increment=2179, round_cap=598,
        insurance_fund=147, takeover_below_ppm=666667, check_initial_margin=False,
        instruments=[Instrument("BTC", "0.5", "1", tiers=[(7646, 12453, 12510)]),
                     Instrument("ETH", "1", "1",
                                tiers=[(14060, 24775, 26528), (29484, 30000, 67258)])])
    eng.add_account(100, 20000000, exempt=True)
    eng.add_account(22, 39)
    eng.seed_position(22, 100, 102, 11, instrument=0)
    eng.seed_position(22, 100, 100, 19, instrument=1)
    eng.limit(3, SELL, 117, 8, 100, instrument=0)
    eng.limit(4, BUY, 93, 28, 100, instrument=1)
    eng.market(7, BUY, 1, 100, instrument=0)
    eng.limit(10, SELL, 80, 7, 22, instrument="ETH")
    eng.limit(8, BUY, 91, 10, 100, instrument=0)
    eng.liquidate()
    bad_debt = int(eng.forced_orders()["bad_debt"].sum())
    assert eng.insurance_fund >= -bad_debt, (eng.insurance_fund, bad_debt)
