"""Memory safety and exactness of the margin engine (issue 10): copies, pickles, bounds, threads.

Every test runs against the reference ``orderbook.reference_engine.Engine`` and the compiled
``orderbook.Engine`` through the ``engine_cls`` fixture, except those about the compiled engine's
own machinery (its busy guard, its Ledger). Conventions as in tests/engine_helpers.py: k = 1, one
tier (MM 5 %, IM 10 %), exempt LP 100, victim 1 long 10 lots at 100 with collateral 100.
"""

from __future__ import annotations

import base64
import copy
import pickle
import sys
import threading
import warnings
import zlib

import numpy as np
import pytest
from engine_helpers import old_state

import orderbook
from orderbook import reference_engine
from orderbook.events import INT64_MAX, Deficit, ForcedKind, LimitRule, MarkRule, Side
from orderbook.margin import MarginTiers
from orderbook.testing import check_accounts

B, S = int(Side.BUY), int(Side.SELL)
TIERS = [(None, 50_000, 100_000)]
LP = 100


@pytest.fixture(params=["reference", "compiled"])
def engine_cls(request):
    return reference_engine.Engine if request.param == "reference" else orderbook.Engine


def busy_engine(engine_cls, **kw):
    """A small engine mid-story: fees, a resting book, a queued victim, records and trades."""
    kw.setdefault("tiers", TIERS)
    kw.setdefault("taker_fee_ppm", 1_000)
    kw.setdefault("insurance_fund", 50)
    eng = engine_cls(**kw)
    eng.add_account(LP, 10_000_000, exempt=True)
    eng.add_account(1, 100)
    eng.add_account(2, 1_000_000)
    eng.add_account(3, 500, isolated_margin=200)
    eng.seed_position(1, LP, 100, 10)
    eng.seed_position(LP, 3, 100, 2)
    eng.limit(1, B, 92, 4, LP)
    eng.limit(2, S, 105, 3, LP)
    eng.stop_market(3, S, 90, 1, 2)
    eng.market(4, S, 4, 2)          # last 92: victim 1 (liquidation price 94) is crossed
    eng.liquidate()                  # nothing to sell into: it stays queued
    return eng


def rows(records):
    return [tuple(float(x) if isinstance(x, float) else x for x in r.tolist()) for r in records]


def observe(eng):
    """Everything observable, as plain Python values (NaN-safe via repr)."""
    return repr((eng.owners(), [eng.account(o) for o in eng.owners()], eng.mark_price(),
                 eng.queue(), eng.insurance_fund, eng.fees_collected, eng.total_deposits,
                 eng.open_interest(), eng.book.l3().tolist(), eng.book.stops().tolist(),
                 eng.book.last_price, rows(eng.forced_orders()), eng.trades().tolist(),
                 eng.fund_history().tolist(), eng.total_equity(1)))


def continue_story(eng):
    """The same operations on any engine; returns what they returned, as plain values."""
    out = [eng.limit(10, B, 80, 40, LP), eng.liquidate().tolist()]
    out.append(eng.market(11, B, 2, 2))
    out.append(eng.amend(2, 106, 5))
    out.append(eng.liquidate().tolist())
    return repr(out) + observe(eng)


COPIES = {
    "copy.copy": copy.copy,
    "copy.deepcopy": copy.deepcopy,
    "Engine.copy": lambda eng: eng.copy(),
    "pickle": lambda eng: pickle.loads(pickle.dumps(eng)),
}


# --------------------------------------------------------------------------- copies (finding 3)


@pytest.mark.parametrize("how", COPIES)
def test_a_trade_on_a_copy_leaves_the_original_whole(engine_cls, how):
    eng = busy_engine(engine_cls)
    before = observe(eng)
    other = COPIES[how](eng)
    other.market(20, S, 3, 2)
    other.deposit(2, 7)
    assert observe(eng) == before
    check_accounts(eng)
    check_accounts(other)


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_behaves_like_the_original_record_for_record(engine_cls, how):
    eng = busy_engine(engine_cls)
    other = COPIES[how](eng)
    assert type(other) is engine_cls
    assert observe(other) == observe(eng)
    assert continue_story(other) == continue_story(eng)


def test_the_compiled_copy_matches_the_reference_copy():
    ref, comp = busy_engine(reference_engine.Engine), busy_engine(orderbook.Engine)
    assert continue_story(ref.copy()) == continue_story(comp.copy())


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_keeps_the_settings(engine_cls, how):
    eng = busy_engine(engine_cls, tick_size="0.5", lot_size="2", quote_unit="0.1",
                      tiers=[(10_000, 10_000, 20_000), (None, 20_000, 40_000)],
                      mark_rule=MarkRule.MID, limit_rule=LimitRule.BANKRUPTCY, deficit=Deficit.ADL,
                      round_cap=5_000, backstop=2, backstop_discount_ppm=1_000, max_price=1_000,
                      max_position=500, band_ppm=7, fraction_ppm=3, liquidation_fee_ppm=11)
    other = COPIES[how](eng)
    for name in ("k", "quote_unit", "taker_fee_ppm", "maker_fee_ppm", "liquidation_fee_ppm",
                 "fraction_ppm", "band_ppm", "backstop_discount_ppm", "max_price",
                 "max_position", "mark_rule", "sizing", "limit_rule", "deficit", "round_cap",
                 "backstop"):
        assert getattr(other, name) == getattr(eng, name), name
    assert other.tiers.rows() == eng.tiers.rows()
    for name in ("tick_size", "lot_size", "stp", "amend_rule"):
        assert getattr(other.book, name) == getattr(eng.book, name), name


# --------------------------------------------------------------------------- pickles (finding 4)


def saved(eng):
    """The engine's pickle payload: (rebuild function, (args, kwargs, state))."""
    restore, (args, kwargs, state) = eng.__reduce__()
    return restore, args, kwargs, state


def damaged(eng, change):
    restore, args, kwargs, state = saved(eng)
    state = dict(state)
    change(state)
    return lambda: restore(args, kwargs, state)


#: A saved account row (STATE_VERSION 3); "position" and "cost" name its one position's.
ACCOUNT_FIELDS = ("owner", "collateral", "reserve", "exempt", "isolated", "positions")


def set_account(i, field, value):
    def change(state):
        accounts = list(state["accounts"])
        row = list(accounts[i])
        if field in ("position", "cost"):
            [(instrument, position, cost)] = row[5]
            entry = {"position": position, "cost": cost, field: value}
            row[5] = ((instrument, entry["position"], entry["cost"]),)
        else:
            row[ACCOUNT_FIELDS.index(field)] = value
        accounts[i] = tuple(row)
        state["accounts"] = accounts
    return change


def account_index(eng, owner):
    return [row[0] for row in saved(eng)[3]["accounts"]].index(owner)


def test_a_pickle_names_no_raw_c_fields(engine_cls):
    # The payload is the settings and plain state; nothing like a slot table or an index.
    _, args, kwargs, state = saved(busy_engine(engine_cls))
    assert set(state) == {"version", "books", "accounts", "queue", "records", "trades",
                          "fund_history", "fees_collected", "total_deposits", "round",
                          "rounds_run", "next_forced_id", "index_price", "mark",
                          "funding_basis_ppm", "asset_deposits", "conversions", "time",
                          "funding_history"}
    assert kwargs["insurance_fund"] == 0 and args == ("1", "1", "1")


def _victim(state):
    return [row[0] for row in state["accounts"]].index(1)


DAMAGES = {
    "a position worth past int64": lambda s: set_account(_victim(s), "position", 2**40)(s),
    "an int64-overflowing position": lambda s: set_account(_victim(s), "position", 2**64)(s),
    "positions not summing to zero": lambda s: set_account(_victim(s), "position", 9)(s),
    "a float collateral": lambda s: set_account(_victim(s), "collateral", 100.0)(s),
    "collateral breaking conservation": lambda s: set_account(_victim(s), "collateral", 101)(s),
    "a negative cost": lambda s: set_account(_victim(s), "cost", -1)(s),
    "a cost below one tick a lot": lambda s: set_account(_victim(s), "cost", 9)(s),
    "an int exempt flag": lambda s: set_account(_victim(s), "exempt", 1)(s),
    "a reserve on a cross account": lambda s: set_account(_victim(s), "reserve", 5)(s),
    "a duplicate owner": lambda s: set_account(_victim(s), "owner", LP)(s),
    "a negative owner": lambda s: set_account(_victim(s), "owner", -5)(s),
    "no insurance fund": lambda s: s.update(accounts=[r for r in s["accounts"] if r[0] != -1]),
    "a short account row": lambda s: s.update(accounts=[r[:5] for r in s["accounts"]]),
    "a flat position listed": lambda s: set_account(_victim(s), "position", 0)(s),
    "a position in an instrument the venue lacks": lambda s: set_account(
        _victim(s), "positions", ((1, 10, 1000),))(s),
    "positions not a tuple": lambda s: set_account(_victim(s), "positions", [(0, 10, 1000)])(s),
    "accounts not a list": lambda s: s.update(accounts=None),
    "a queue owner without an account": lambda s: s.update(queue=[(77, 0)]),
    "a queued owner twice": lambda s: s.update(queue=[(1, 0), (1, 0)]),
    "a queue generation past the round": lambda s: s.update(queue=[(1, 5)]),
    "a negative fees_collected": lambda s: s.update(fees_collected=-1),
    "total_deposits past 2**62": lambda s: s.update(total_deposits=2**62 + 1),
    "a mark of 0": lambda s: s.update(mark=[0]),
    "a mark past max_price": lambda s: s.update(mark=[2**40]),
    "an index price that is a string": lambda s: s.update(index_price=["100"]),
    "a mark that is not a list": lambda s: s.update(mark=100),
    "marks for two instruments": lambda s: s.update(mark=[100, 100]),
    "a positive next_forced_id": lambda s: s.update(next_forced_id=1),
    "rounds_run not matching the fund history": lambda s: s.update(rounds_run=3),
    "a record with side 0": lambda s: s.update(records=[(0,) * 13 + (0, 1, 0)]),
    "a record of unknown kind": lambda s: s.update(records=[(0,) * 13 + (1, 9, 0)]),
    "a record filled more than its qty": lambda s: s.update(
        records=[(0, 0, 1, -2, 1, 2, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0)]),
    "a record of an instrument the venue lacks": lambda s: s.update(
        records=[(0, 0, 1, -2, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1)]),
    "a record of the old width": lambda s: s.update(
        records=[(0, 0, 1, -2, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1)]),
    "trades of the wrong dtype": lambda s: s.update(trades=[np.zeros(2)]),
    "trades not a list": lambda s: s.update(trades=s["trades"][0]),
    "a missing key": lambda s: s.pop("queue"),
    "an unknown version": lambda s: s.update(version=99),
    "a book of the other implementation": lambda s: s.update(books=[object()]),
    "a version 2 state with a cost on a flat position": lambda s: s.update(
        old_state(s, 2), accounts=[r if r[2] else r[:3] + (5,) + r[4:]
                                   for r in old_state(s, 2)["accounts"]]),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_pickle_is_refused_naming_the_field(engine_cls, damage):
    eng = busy_engine(engine_cls)
    with pytest.raises(ValueError, match="corrupt Engine state"):
        damaged(eng, DAMAGES[damage])()


def test_a_position_past_max_position_from_resting_fills_pickles(engine_cls):
    # seed_position ignores resting orders, so their fills can carry a live position past
    # max_position: a valid engine, which a pickle must carry as it is.
    eng = engine_cls(tiers=TIERS, max_position=10)
    eng.add_account(LP, 10_000_000, exempt=True)
    eng.add_account(1, 100_000)
    eng.add_account(2, 100_000)
    eng.limit(1, B, 100, 10, 1)
    eng.seed_position(1, LP, 100, 10)
    eng.market(2, S, 10, 2)
    assert eng.account(1).position == 20
    assert observe(pickle.loads(pickle.dumps(eng))) == observe(eng)


def test_an_emptied_liquidation_index_cannot_be_pickled_in(engine_cls):
    # The index is not in the pickle: it is rebuilt, so the restored engine still liquidates
    # the crossed victim (a damaged raw index used to restore an engine that never did).
    eng = busy_engine(engine_cls)
    restored = pickle.loads(pickle.dumps(eng))
    for e in (eng, restored):
        e.limit(30, B, 91, 20, LP)
    assert rows(restored.liquidate()) == rows(eng.liquidate())
    assert restored.account(1).position == 0


def test_a_book_order_of_an_unknown_owner_is_refused(engine_cls):
    eng = busy_engine(engine_cls)
    book = type(saved(eng)[3]["books"][0])()
    book.limit(7, B, 50, 1, 99)
    with pytest.raises(ValueError, match=r"book.*owner.*99"):
        damaged(eng, lambda s: s.update(books=[book]))()


# Pickles made before the ``limit`` keyword became ``limit_rule`` (commit 2cb51f0), by
# ``pickle.dumps(old_pickle_story(cls, limit=LimitRule.BAND), protocol=4)``, zlib-compressed and
# base64-encoded. Their saved constructor keywords carry ``limit``.
OLD_PICKLES = {
    "compiled": (
        "eNqFU0tvEzEQ3m2SJn2qEqLimOOeopYLPXCoVB7tmixVJbhVK2c96VrJPmJ7oUEg9ULbIB+QaqBH+C38GX4BVxh7W1"
        "ohJFZaffbn8cz4m5mT5qdR03OfXisEAzEoilEP8iOeg9GdWIBUhQBzYbS/+ec/M+9MoFcUHYGIhwBxWWaGeHol+5u5"
        "M+aTijOqeJHf5peHgiaOtETY/db2dGdAc+b2/W6k7w5oMsLgZcy4TIoqV9d3W4qDkObQRP397+HXU987M1QvZFSMYl"
        "GNwRBfz0v+hudHznzMM64s2WYw5Ilde3pBoEsWJ7Q0kY1cx8L1Ks9lJWieQDxEC2vbkKq0uEgzwDt1DM9GPI5LwRMw"
        "H1q/8MNnOaqQ3D7NhChrt7JStV9hxpbCLJpWYqNXb+R2ROpfoOGVwMQjXnBogoD4hOHvk5g0lQnIHGGhDYUMJw1lAF"
        "VAck4ZZQ6wYDRxUll1gqC2vG+dEe98Zu+z8OTzpRf+xIP+j8Y1a4Msuv0M96BbkwoqQB+6LSDBRK0/Pa8EZSCNXs+r"
        "rJz2YjyBXlaNFadC0KnRy7E1z6USVaJsz7ScJbrJWW1ygU97b3b8AfbQgYuM2/SBbjE1LV2bNV5ubZjZeX3c0P5bEw"
        "VYAZjgUSaP8I1OuJgzdF+8zkEgVfedpZbq5dVBqy6PXnSNdLVpTBSm1BxxrK6eF0AlFkY3JWeAKmK50sfptp7jW7fT"
        "eGiiKHKC1qp6ygyId2rSJ+kL0kF8iriGuIt4D3EPsYsYIgaIBHED8RniFmIfcRsxsrGqzZtY6aN/RNpFy+dpQvYQ91"
        "12/7sRnpqK7JMO+Yi72Y6HTxvg2NmmT7kd6qmt6SrOpMRCjseQKHDdvqoKRccxA9fH0oTrXy5xity8uClwK4ljkDvz"
        "HI5VPCxEAsxWwKWgl1BcuJ6OSDftcBrCKptx7zc9BchB"
    ),
    "reference": (
        "eNqFU0tvEzEQ3m2SJn0KqaJCnHrcU9RyoQcOlcqjXZOlqgS3auWsJ10r2UdsLzQVSL3QNsgHpBroEX4Lf4ZfwBXG3h"
        "YqVImVVp/9eTwz/mbmpPnpuOm5T98vBAPRL4phV8AABOQJxJAf8hyM7sQCpCoEmAuj/Y0//5l5ZwK9pOgQRDwAiMsy"
        "M8TTS9m/zMqIjyvOqOJFfpNfHAiaONIS4dq3tqc7fZozt++tRfpunyZDDF7GjMukqHJ1fbelOAhpDkzU2/sefj31vT"
        "ND9VxGxTAW1QgM8fWs5Mc8P3TmI55xZck2gwFP7NrTcwJdsjihpYls5DoWrpd5LitBrQwDtLC2DalKi/M0A7xTx/Bs"
        "xKO4FDwB86H1Cz98lqMKye3TTIgCr1VWqvZrzNhSmEXTim30yi3Cm9S/QOsrlYlHvODABAHxCcPfJzFpKhOQGcJCGw"
        "8ZThrKAEqB5Iwyyuxj1Wji9LISBUFt+cA6I9751N5n4cnnSy/8iQe9H41r1gaZd/sp7kG3xhVUgD50W0CC2Vp/elYJ"
        "ykAavZpXWTnpxngC3awaKU6FoBOjF2NrnkslqkTZxmk5S3STs9rkAp/23mz7fWykfRcZt+lD3WJqUrpea7zaXDfT8/"
        "q4of23JgqwDDDGo0we4hudejFn6L54k4NAqm4+Sy3Uy6uDVl0jPe+66WrTGCtMqTnkWGI9K4BKrI5uSs4AVcSapU/S"
        "LT3DN2+m8chEUeQErVX1lOkT79SkT9OXpIP4DPEO4g7iPcRdxDXEEDFAJIjriM8RNxF7iFuIkY1VbfyNlT6+JdIOWr"
        "5IE7KLuOey+9+N8NRUZI90yEfcTbc9fFofZ892fsrtZE9sTZdxMCUWcjSCRIFr+WVVKDqKGbhmliZc/XKJo+SGxo2C"
        "W0mchdyZ53Ck4kEhEmC2Ai4FvYDiwvWIRLppJ9QQVtmMu78BtMXOcQ=="
    ),
}


def old_pickle_story(engine_cls, **kw):
    """The engine the pickles in OLD_PICKLES hold: a BAND limit rule, a seed, a resting book."""
    eng = engine_cls(tiers=TIERS, mark_rule=MarkRule.MID, band_ppm=20_000, insurance_fund=50,
                     **kw)
    eng.add_account(LP, 10_000_000, exempt=True)
    eng.add_account(1, 100)
    eng.seed_position(1, LP, 100, 10)
    eng.limit(1, B, 95, 4, LP)
    eng.limit(2, S, 105, 3, LP)
    return eng


def continue_old_pickle_story(eng):
    """Mid 92 crosses the victim's liquidation price 94; its forced sell's BAND limit is
    ceil(92 * 0.98) = 91, where the LP bids."""
    out = [eng.cancel(1), eng.limit(3, B, 91, 20, LP), eng.limit(4, S, 93, 3, LP),
           eng.liquidate().tolist()]
    return repr(out) + observe(eng)


@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2,
                    reason="the stored pickles name numpy 2's numpy._core module")
def test_a_pickle_saved_with_the_old_limit_keyword_still_loads(engine_cls):
    kind = "compiled" if engine_cls is orderbook.Engine else "reference"
    data = zlib.decompress(base64.b64decode("".join(OLD_PICKLES[kind])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading an old pickle does not warn
        old = pickle.loads(data)
    assert type(old) is engine_cls
    assert old.limit_rule is LimitRule.BAND
    new = old_pickle_story(engine_cls, limit_rule=LimitRule.BAND)
    assert observe(old) == observe(new)
    assert saved(old)[2] == saved(new)[2]  # and it pickles again under the new name
    assert "limit" not in saved(new)[2] and saved(new)[2]["limit_rule"] == LimitRule.BAND
    story = continue_old_pickle_story(old)
    assert story == continue_old_pickle_story(new)
    assert "91" in story and len(old.forced_orders()) == 1


def test_the_ledger_refuses_to_pickle_on_its_own():
    from orderbook.accounts import Ledger

    ledger = Ledger(1, 100, 100, MarginTiers(TIERS))
    with pytest.raises(TypeError, match="pickle its Engine"):
        pickle.dumps(ledger)


def test_the_liquidator_refuses_to_pickle_on_its_own():
    from orderbook.accounts import Ledger
    from orderbook.liquidator import Liquidator

    ledger = Ledger(1, 100, 100, MarginTiers(TIERS))
    liquidator = Liquidator(orderbook.OrderBook(), ledger, 1, 100, 0, 0, 0, 0, 0, 0, 0, 0, None,
                            None)
    with pytest.raises(TypeError, match="pickle its Engine"):
        pickle.dumps(liquidator)


# --------------------------------------------------------------------------- bounds (5, 11, 13)


def test_max_price_times_max_position_past_2_61_is_refused(engine_cls):
    with pytest.raises(ValueError, match="max_price \\* max_position \\* k = 18446744073709551616"):
        engine_cls(max_price=2**32, max_position=2**32)


def test_max_price_times_k_past_2_61_is_refused_naming_both(engine_cls):
    with pytest.raises(ValueError, match=r"max_price \* k = 2305843009213693952 \* 2"):
        engine_cls("1", "2", "1", max_price=2**61)


def test_the_exposure_refusal_shows_the_true_position(engine_cls):
    eng = engine_cls(tiers=TIERS)
    eng.add_account(LP, 10_000_000, exempt=True)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 3)
    # 3 + (2**63 - 1) lots: past int64, so a wrapped sum would show a negative number
    with pytest.raises(ValueError, match=f"position to {3 + INT64_MAX} lots"):
        eng.limit(1, B, 100, INT64_MAX, 1)
    assert eng.book.n_orders == 0


def test_an_amend_to_int64_max_lots_is_refused_with_the_true_position(engine_cls):
    eng = engine_cls(tiers=TIERS)
    eng.add_account(LP, 10_000_000, exempt=True)
    eng.add_account(1, 1_000)
    eng.seed_position(1, LP, 100, 3)
    eng.limit(1, B, 90, 2, 1)
    # 3 held + 2 open + (2**63 - 3) more lots
    with pytest.raises(ValueError, match=f"position to {3 + INT64_MAX} lots"):
        eng.amend(1, 90, INT64_MAX)
    assert eng.book.order(1).qty == 2


@pytest.mark.parametrize(("name", "args"), [("long_owner", (7, LP)), ("short_owner", (LP, 7))])
def test_seed_position_names_the_missing_owner(engine_cls, name, args):
    eng = engine_cls(tiers=TIERS)
    eng.add_account(LP, 1_000, exempt=True)
    with pytest.raises(KeyError, match=f"{name} 7 has no account"):
        eng.seed_position(*args, 100, 1)
    with pytest.raises(TypeError, match=name):
        eng.seed_position(*[1.5 if a == 7 else a for a in args], 100, 1)


@pytest.mark.parametrize(("tiers", "error", "message"), [
    (None, TypeError, r"tiers must be a sequence .* got None"),
    ([(None, 5_000)], ValueError, r"tiers\[0\] must have 3 values .* got 2"),
    ([(10, 5_000, 10_000), None], TypeError, r"tiers\[1\] must be a .* row, got None"),
    ([(None, 5_000, 2.5)], TypeError, r"tiers\[0\]\.initial_ppm must be an integer, got 2\.5"),
    ([(10, 5_000, 10_000), (None, 4_000, 10_000)], ValueError,
     r"tiers\[1\] rates must not decrease .* got \(4000, 10000\)"),
    ([(None, 1, 1), (None, 1, 1)], ValueError, r"tiers\[0\]\.max_notional is None"),
])
def test_a_bad_tier_table_is_refused_naming_the_row(engine_cls, tiers, error, message):
    with pytest.raises(error, match=message):
        engine_cls(tiers=tiers)


@pytest.mark.parametrize("name", ["mark_rule", "sizing", "limit_rule", "deficit", "stp",
                                  "amend_rule"])
@pytest.mark.parametrize("value", [7, -1, 2**63 - 1])
def test_an_unknown_rule_is_refused_naming_the_argument(engine_cls, name, value):
    with pytest.raises(ValueError, match=f"{name} must be one of .* got {value}"):
        engine_cls(**{name: value})


@pytest.mark.parametrize("value", [None, 1.5, "7"])
@pytest.mark.parametrize("name", ["max_price", "max_position", "round_cap", "insurance_fund",
                                  "taker_fee_ppm", "backstop"])
def test_a_non_integer_setting_is_refused_naming_the_argument(engine_cls, name, value):
    if value is None and name in ("max_price", "max_position", "round_cap", "backstop"):
        engine_cls(**{name: value})   # None means "default" for these
        return
    with pytest.raises(TypeError, match=name):
        engine_cls(**{name: value})


def test_a_negative_backstop_is_refused(engine_cls):
    with pytest.raises(ValueError, match="backstop must be an owner id >= 0 .*got -1"):
        engine_cls(backstop=-1)


@pytest.mark.parametrize(("mark", "error"), [(1.5, TypeError), (True, TypeError),
                                               ("100", TypeError), (-1, ValueError),
                                               (2**63, ValueError)])
def test_total_equity_refuses_a_bad_mark_in_both_engines(engine_cls, mark, error):
    eng = busy_engine(engine_cls)
    with pytest.raises(error, match="mark"):
        eng.total_equity(mark)


def test_total_equity_at_an_extreme_mark_is_exact(engine_cls):
    eng = engine_cls(tiers=TIERS, max_price=1, max_position=2**61)
    for owner in range(1, 9):
        eng.add_account(owner, 2**58)
    for long_owner in (1, 3, 5, 7):
        eng.seed_position(long_owner, long_owner + 1, 1, 2**61)
    assert eng.open_interest() == 2**63       # past int64 as a sum of four positions
    # each account's unrealised P&L at this mark is ~2**124: their running sum passes int128
    assert eng.total_equity(INT64_MAX) == 8 * 2**58


# --------------------------------------------------------------------------- ADL ranking (12)


def adl_engine(engine_cls, shorts):
    """A long victim (owner 1) deleveraged against ``shorts``: (owner, collateral, lots, price)."""
    eng = engine_cls(tiers=TIERS, mark_rule=MarkRule.INDEX, limit_rule=LimitRule.BANKRUPTCY,
                     deficit=Deficit.ADL, max_price=1_000)
    eng.set_index(100)
    eng.add_account(LP, 10**9, exempt=True)
    eng.add_account(1, 100)
    eng.seed_position(1, LP, 100, 10)
    for owner, collateral, lots, price in shorts:
        eng.add_account(owner, collateral)
        eng.seed_position(LP, owner, price, lots)
    eng.set_index(80)
    return eng


def test_adl_takes_the_best_ranked_first_and_breaks_ties_by_owner(engine_cls):
    # At mark 80: profit = cost - 80 q, equity = collateral + profit, notional = 80 q.
    #   owner 30: 4 lots at 100: profit 80, equity 480, key 80*320/(400*480) = 2/15
    #   owner 20: same as 30                                                      = 2/15
    #   owner 40: 4 lots at 100 with collateral 100: equity 180, key 80*320/(400*180) = 16/45
    #   owner 50: 4 lots at 80 (no profit): not a candidate
    eng = adl_engine(engine_cls, [(30, 400, 4, 100), (20, 400, 4, 100), (40, 100, 4, 100),
                                  (50, 400, 4, 80)])
    records = eng.liquidate()
    adl = records[records["kind"] == ForcedKind.ADL]
    assert adl["counterparty"].tolist() == [40, 20, 30]
    assert adl["qty"].tolist() == [4, 4, 2]


def test_adl_ranks_keys_whose_cross_products_pass_128_bits(engine_cls):
    # Near-equal keys with 60-bit factors: profit x notional x cost x equity ~ 2**240, so only
    # an exact wide comparison orders them like the reference's Fractions.
    big = 2**58
    shorts = [(10 + i, big + 7 * i, 1, 900 - i) for i in range(6)]
    eng = adl_engine(engine_cls, shorts)
    records = eng.liquidate()
    got = records[records["kind"] == ForcedKind.ADL]["counterparty"].tolist()
    ref = adl_engine(reference_engine.Engine, shorts).liquidate()
    assert got == ref[ref["kind"] == ForcedKind.ADL]["counterparty"].tolist()
    assert got


# --------------------------------------------------------------------------- threads


class Reentrant:
    """An integer whose conversion calls back into the engine, as another thread could."""

    def __init__(self, eng, value):
        self.eng, self.value, self.inner = eng, value, None

    def __index__(self):
        try:
            self.eng.add_account(len(self.eng.owners()) + 1_000, 1)
        except RuntimeError as exc:
            self.inner = exc
        return self.value


def test_a_call_made_while_another_runs_raises_busy():
    eng = busy_engine(orderbook.Engine)
    amount = Reentrant(eng, 5)
    eng.deposit(2, amount)
    assert str(amount.inner) == "this Engine is busy in another thread"
    assert eng.account(2).collateral == 1_000_000 + 5 - 4 * 92 // 1_000 - 1
    check_accounts(eng)
    assert not eng.busy


def test_the_busy_flag_drops_after_a_refused_call():
    eng = busy_engine(orderbook.Engine)
    with pytest.raises(KeyError):
        eng.deposit(12345, 1)
    eng.deposit(2, 1)
    assert not eng.busy


def test_two_threads_on_one_engine_never_corrupt_it():
    eng = orderbook.Engine(tiers=TIERS, max_price=10_000)
    eng.add_account(LP, 10**12, exempt=True)
    for owner in range(1, 41):
        eng.add_account(owner, 5_000)
        eng.seed_position(owner if owner % 2 else LP, LP if owner % 2 else owner, 100, 20)
    errors, outcomes = [], {"ok": 0, "busy": 0}
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def worker(base):
        try:
            for i in range(300):
                oid = base + i
                try:
                    step = i % 6
                    if step == 0:
                        eng.limit(oid, B if i % 12 else S, 90 + i % 20, 1 + i % 5, LP)
                    elif step == 1:
                        eng.market(oid, S if i % 4 else B, 1 + i % 3, LP)
                    elif step == 2:
                        eng.account(1 + i % 40)
                    elif step == 3:
                        eng.liquidate(3)
                    elif step == 4:
                        check_accounts(eng.copy())
                    else:
                        eng.add_account(base + 10**6 + i, 10)
                    outcomes["ok"] += 1
                except RuntimeError as exc:
                    assert str(exc) == "this Engine is busy in another thread", exc
                    outcomes["busy"] += 1
        except Exception as exc:  # noqa: BLE001 - any failure is reported by the main thread
            errors.append(exc)

    try:
        threads = [threading.Thread(target=worker, args=(base,)) for base in (10**7, 2 * 10**7)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    assert outcomes["ok"] > 0
    assert not eng.busy
    check_accounts(eng)
