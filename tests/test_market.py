"""Venues tied together (issue #13): orderbook.price_index and orderbook.market, on both engines.

Hand-computed; conventions of tests/engine_helpers.py (k = 1, MM = ceil(5 % of N)).
"""

from __future__ import annotations

import pytest
from engine_helpers import TIERS, B, S, rows

from orderbook.events import MarkRule
from orderbook.market import Arbitrageur, Market
from orderbook.price_index import (
    RULES,
    Aggregate,
    IndexRule,
    PriceIndex,
    median,
    weighted_mean,
    weighted_median,
)
from orderbook.testing import check_accounts

LP = 100

# ===================================================================== index arithmetic


def test_weighted_median_with_hyperliquids_weights_ix3():
    # IX-3: MEXC 97 (1), Kucoin 98 (1), Bybit 99 (2), Binance 100 (3), OKX 101 (2), Kraken
    # 102 (1), Gate 103 (1): cumulative 1, 2, 4, 7 reaches half of 11 at 100. Gate at 10,000
    # leaves it there.
    prices = [97, 98, 99, 100, 101, 102, 103]
    weights = [1, 1, 2, 3, 2, 1, 1]
    assert weighted_median(prices, weights) == 100
    assert weighted_median(prices[:-1] + [10_000], weights) == 100
    # A tie at exactly half takes the lower price: 10 (2) and 20 (2): 2 * 2 >= 4 at 10.
    assert weighted_median([20, 10], [2, 2]) == 10


def test_means_and_medians_round_as_stated():
    assert weighted_mean([100, 101], [1, 1]) == 101          # 100.5, halves up
    assert weighted_mean([100, 103], [2, 1]) == 101          # 101 exactly
    assert weighted_mean([100, 102], [2, 1]) == 101          # 100.67 -> 101
    assert median([3, 1, 2, 4]) == 2                         # the lower middle
    with pytest.raises(ValueError, match="positive weight"):
        weighted_median([1], [0])


def test_the_binance_p2p_clamp_ix1():
    # IX-1: median 20,000; +7 % counts 20,600 (x 1.03), -6 % counts 19,400 (x 0.97).
    index = PriceIndex({n: 1 for n in "abcde"},
                       IndexRule(Aggregate.WEIGHTED_MEAN, clamp_ppm=30_000))
    prices = {"a": 20_000, "b": 20_000, "c": 20_000, "d": 21_400, "e": 18_800}
    assert index.update(prices) == (3 * 20_000 + 20_600 + 19_400) // 5


def test_binance_excludes_a_source_5_percent_off_the_median():
    index = PriceIndex({"a": 1, "b": 1, "c": 2}, RULES["binance"])
    # c at 106: 10**6 x 6 > 50,000 x 100: weight 0; mean of a, b = 100.
    assert index.update({"a": 100, "b": 100, "c": 106}) == 100
    assert index.excluded == {"c"}
    # back within 5 %: counted at once, (100 + 100 + 2 x 104) / 4 = 102
    assert index.update({"a": 100, "b": 100, "c": 104}) == 102
    assert index.excluded == set()


def test_the_bitmex_reintroduction_ix2():
    # IX-2, one update every 5 s from 15:00:00: A at 150 against B = C = 100 is out (25 %);
    # from 15:20:00 A is within 2 % of the median of B and C; 15 minutes later, at 15:35:00,
    # it has been within for 180 intervals, and it is back at 15:35:05.
    index = PriceIndex({"A": 1, "B": 1, "C": 1}, RULES["bitmex"])
    def at(a, b, c):
        return index.update({"A": a, "B": b, "C": c})

    assert at(150, 100, 100) == 100 and index.excluded == {"A"}
    for _ in range(5, 20 * 60, 5):
        at(150, 100, 100)
    for t in range(20 * 60, 35 * 60 + 1, 5):   # 15:20:00 .. 15:35:00 within 2 %
        assert at(122, 120, 120) == 120 and index.excluded == {"A"}, t
    assert at(130, 131, 129) == 130 and index.excluded == set()    # 15:35:05: (130+131+129)/3


@pytest.mark.parametrize("kwargs,match", [
    ({"exclude_ppm": -1}, "exclude_ppm"),
    ({"readmit_ppm": 10}, "go together"),
    ({"readmit_ppm": 10, "readmit_updates": 2}, "needs exclude_ppm"),
    ({"aggregate": 7}, "aggregate"),
    ({"min_constituents": 0}, "min_constituents"),
])
def test_a_bad_rule_is_refused_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IndexRule(**kwargs)


def test_bad_prices_are_refused_and_change_nothing():
    index = PriceIndex({"a": 1, "b": 1})
    assert index.update({"a": 100, "b": 102}) == 100
    with pytest.raises(KeyError, match="'z'"):
        index.update({"z": 5})
    with pytest.raises(ValueError, match="prices\\['a'\\] must be >= 1"):
        index.update({"a": 0})
    assert index.value == 100
    with pytest.raises(ValueError, match="weights\\['a'\\] must be >= 1"):
        PriceIndex({"a": 0})


# ============================================================= worked example 3 (README)


def two_venues(engine_cls):
    """Venue A (last-trade mark) and venue B (marked by the index), one instrument "BTC" each.

    A: account 1 long 10 @ 100, collateral 100 (liquidation price 94, bankrupt at 90).
    B: account 2 long 10 @ 100, collateral 120: 120 + 10p - 1000 < ceil(p / 2) at p = 92
    (40 < 46), not at 93 (50 < 47 is false): liquidation price 92.
    Both print at 100. A's bids for the cascade: 3 @ 93, 7 @ 90; B's: 10 @ 91.
    The index: a weighted median of A (weight 2) and B (weight 1) last prices, set on B.
    """
    a = engine_cls(tiers=TIERS)
    b = engine_cls(tiers=TIERS, mark_rule=MarkRule.INDEX)
    for eng, owner, collateral in ((a, 1, 100), (b, 2, 120)):
        eng.add_account(LP, 10_000_000, exempt=True)
        eng.add_account(101, 10_000_000, exempt=True)
        eng.add_account(owner, collateral)
        eng.seed_position(owner, LP, 100, 10)
        eng.limit(1, B, 100, 1, LP)
        eng.market(2, S, 1, 101)               # last 100
    a.limit(3, B, 93, 3, LP)
    a.limit(4, B, 90, 7, LP)
    b.limit(3, B, 91, 10, LP)
    market = Market({"A": a, "B": b})
    market.add_index("BTC", {("A", 0): 2, ("B", "main"): 1})
    return market, a, b


def test_a_cascade_on_one_venue_moves_the_others_mark_and_liquidates_there(engine_cls):
    market, a, b = two_venues(engine_cls)
    assert b.mark_price() == 100                # the index of A 100 (2) and B 100 (1)
    a.limit(5, B, 94, 1, LP)
    a.market(6, S, 1, 101)                      # the shock on A: last 94
    # Step 0: index: A 94 (w 2), B 100 (w 1): 2 x 2 >= 3 at 94, B's mark 94 (B safe, 94 > 92).
    # A's round: account 1 sells 10: 3 @ 93, 7 @ 90 = 909 (collateral 100 + 909 - 1000 = 9);
    # A's last 90. Then the index is 90 on B.
    first = market.step()
    assert [(r["owner"], r["filled"], r["notional"], r["mark_before"], r["mark_after"])
            for r in rows(first["A"])] == [(1, 10, 909, 94, 90)]
    assert rows(first["B"]) == []
    assert b.mark_price() == 90
    # Step 1: B's round: account 2 (liquidation price 92 <= 90) sells 10 @ 91 = 910:
    # collateral 120 + 910 - 1000 = 30. B's INDEX mark stays 90 (the index follows A).
    second = market.step()
    assert [(r["owner"], r["filled"], r["notional"], r["mark_before"], r["mark_after"])
            for r in rows(second["B"])] == [(2, 10, 910, 90, 90)]
    assert (a.account(1).collateral, b.account(2).collateral) == (9, 30)
    for eng in (a, b):
        check_accounts(eng)


def test_without_the_index_the_other_venue_does_not_move(engine_cls):
    market, a, b = two_venues(engine_cls)
    market.indexes.clear()
    a.limit(5, B, 94, 1, LP)
    a.market(6, S, 1, 101)
    market.step()
    market.step()
    assert b.mark_price() == 100 and b.account(2).position == 10


def test_an_arbitrageur_carries_the_fall_across_venues(engine_cls):
    # Two LAST-marked venues. A's bid side falls to 90 while B still bids 99: the
    # arbitrageur (owner 7, capital 10,000 on each) buys A's ask and sells into B's bid. With
    # threshold 10,000 ppm (1 %): it trades while 10**6 (bid - ask) > 10,000 ask.
    a, b = engine_cls(tiers=TIERS), engine_cls(tiers=TIERS)
    for eng in (a, b):
        eng.add_account(LP, 10_000_000, exempt=True)
        eng.add_account(7, 10_000)
    a.limit(1, S, 91, 5, LP)      # A's ask 91 (5 lots)
    b.limit(1, B, 99, 3, LP)      # B's bids 99 x 3, 97 x 10
    b.limit(2, B, 97, 10, LP)
    market = Market({"A": a, "B": b})
    arb = Arbitrageur(7, [("A", 0), ("B", 0)], threshold_ppm=10_000)
    market.add(arb)
    market.step()
    # 1st: ask 91 (5), bid 99 (3): 3 lots. 2nd: ask 91 (2), bid 97 (10): 2 lots. Then A has no
    # ask: done. Bought 5 on A, sold 5 on B: B's last 97 (it fell from 99 without any B
    # selling of its own).
    assert (arb.trades, arb.lots) == (2, 5)
    assert (a.account(7).position, b.account(7).position) == (5, -5)
    assert b.book.last_price == 97
    # Long 5 at a cost of 5 x 91 = 455 on A, short 5 for 3 x 99 + 2 x 97 = 491 on B: 36
    # locked in at any common mark (not yet realised: the collateral is untouched).
    assert a.account(7).cost == 455 and b.account(7).cost == 491
    assert a.account(7).collateral == b.account(7).collateral == 10_000


def test_an_arbitrageur_is_bounded_by_its_capital(engine_cls):
    # Capital 60 on A: IM 10 % of a long of q lots at 91 is ceil(9.1 q) <= 60 -> 6 lots at most
    # (q = 7 needs 64). Asks 91 x 20 on A, bids 99 x 20 on B: it buys 6 and then stops.
    a, b = engine_cls(tiers=TIERS), engine_cls(tiers=TIERS)
    for eng, capital in ((a, 60), (b, 10_000)):
        eng.add_account(LP, 10_000_000, exempt=True)
        eng.add_account(7, capital)
    a.limit(1, S, 91, 20, LP)
    b.limit(1, B, 99, 20, LP)
    market = Market({"A": a, "B": b})
    arb = Arbitrageur(7, [("A", 0), ("B", 0)], max_lots=1)
    market.add(arb)
    for _ in range(10):
        market.step()
    assert a.account(7).position == 6 and b.account(7).position == -6


def test_bad_wiring_is_refused_naming_it(engine_cls):
    a = engine_cls(tiers=TIERS)
    b = engine_cls(tiers=TIERS, tick_size="2")
    market = Market({"A": a, "B": b})
    with pytest.raises(KeyError, match="venue 'C'"):
        market.add_index("X", {("C", 0): 1})
    with pytest.raises(KeyError, match="instrument 'ETH'"):
        market.add_index("X", {("A", "ETH"): 1})
    with pytest.raises(ValueError, match="different tick sizes"):
        market.add_index("X", {("A", 0): 1, ("B", 0): 1})
    with pytest.raises(ValueError, match="LAST, which an index cannot move"):
        market.add_index("X", {("A", 0): 1}, feeds=[("A", 0)])
    with pytest.raises(ValueError, match="source"):
        market.add_index("X", {("A", 0): 1}, source="vwap")
    with pytest.raises(KeyError, match="no account"):
        market.add(Arbitrageur(7, [("A", 0), ("A", 0)]))
    with pytest.raises(ValueError, match="non-empty dict"):
        Market({})
    assert market.indexes == [] and market.arbitrageurs == []


def test_the_two_venue_example_liquidates_on_b_only_with_the_arbitrageur():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    try:
        import two_venues
    finally:
        sys.path.pop(0)
    with_arb, without = two_venues.build(True), two_venues.build(False)
    for market in (with_arb, without):
        two_venues.simulate(market, steps=45)
    assert len(with_arb.venues["B"].forced_orders()) > 100
    assert len(without.venues["B"].forced_orders()) == 0
    assert len(with_arb.venues["A"].forced_orders()) == len(without.venues["A"].forced_orders())
    for market in (with_arb, without):
        for eng in market.venues.values():
            check_accounts(eng)
