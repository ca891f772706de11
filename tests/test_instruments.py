"""Several instruments in one venue (issue #13, step 1 of docs/market_wide.md), on both engines.

Every expected number is computed by hand in the comments. Conventions (tests/engine_helpers.py):
k = 1 on both instruments (tick = lot = 1), one tier: MM = ceil(5% of N), IM = ceil(10% of N);
instrument 0 is "BTC", 1 is "ETH", both marked at the last trade; 100 and 101 are exempt liquidity
providers (100 seeds every position and rests the bids; 101 prints the marks).
"""

from __future__ import annotations

import copy
import pickle

import pytest
from engine_helpers import TIERS, B, S, rows

from orderbook.errors import OrderError
from orderbook.events import (
    INSURANCE_FUND,
    NO_COUNTERPARTY,
    ForcedKind,
    Instrument,
    MarkRule,
    PositionInfo,
    Reason,
    Sizing,
)
from orderbook.testing import check_accounts

BTC, ETH = 0, 1
LP, PRINTER = 100, 101


def venue(engine_cls, **kw):
    kw.setdefault("tiers", TIERS)
    kw.setdefault("instruments", [Instrument("BTC"), Instrument("ETH")])
    eng = engine_cls(**kw)
    eng.add_account(LP, 10_000_000, exempt=True)
    eng.add_account(PRINTER, 10_000_000, exempt=True)
    return eng


def print_mark(eng, instrument, price, order_id):
    """A one-lot trade at ``price`` between the two LPs: the instrument's LAST mark."""
    eng.limit(order_id, B, price, 1, LP, instrument=instrument)
    eng.market(order_id + 1, S, 1, PRINTER, instrument=instrument)


def seeded(engine_cls, accounts, **kw):
    """A venue with ``accounts`` = {owner: (collateral, BTC lots, ETH lots)}, every position
    long at 100 against the LP, and both marks printed at 100."""
    eng = venue(engine_cls, **kw)
    for owner, (collateral, btc, eth) in accounts.items():
        eng.add_account(owner, collateral)
        for instrument, lots in ((BTC, btc), (ETH, eth)):
            if lots:
                eng.seed_position(owner, LP, 100, lots, instrument=instrument)
    print_mark(eng, BTC, 100, 1)
    print_mark(eng, ETH, 100, 1)
    return eng


def two_instrument_cascade(engine_cls, **kw):
    """Account 1: long 10 BTC @ 100 and 10 ETH @ 100 (costs 1000 each), collateral 150.
    Account 2: long 10 ETH @ 100, collateral 60. Marks printed at 100; then BTC bids 10 @ 89 and
    ETH bids 10 @ 97, 10 @ 90 rest for the cascade.

    At BTC 100, ETH 100: account 1 has E = 150, MM = 50 + 50 = 100 (safe); account 2 E = 60,
    MM = 50 (safe). Account 2's liquidation price: 60 + 10p - 1000 < ceil(p / 2) holds at
    p = 98 (40 < 49), not at 99 (50 < 50 is false): 98.
    """
    eng = seeded(engine_cls, {1: (150, 10, 10), 2: (60, 0, 10)}, insurance_fund=100, **kw)
    eng.limit(10, B, 89, 10, LP, instrument=BTC)
    eng.limit(10, B, 97, 10, LP, instrument=ETH)
    eng.limit(11, B, 90, 10, LP, instrument=ETH)
    return eng


def record(round_, generation, owner, qty, notional, mark_before, mark_after, instrument,
           kind=ForcedKind.ORDER, fund_cover=0):
    filled = qty if kind == ForcedKind.ORDER else 0
    avg = notional / filled if filled else None
    return {"round": round_, "generation": generation, "owner": owner,
            "counterparty": NO_COUNTERPARTY, "qty": qty, "filled": filled,
            "notional": notional, "avg_price": avg, "mark_before": mark_before,
            "mark_after": mark_after, "slippage": None if avg is None else mark_before - avg,
            "fee": 0, "fund_cover": fund_cover, "socialized": 0, "bad_debt": 0,
            "side": int(S), "kind": int(kind), "instrument": instrument}


def comparable(records):
    out = []
    for r in rows(records):
        for name in ("avg_price", "slippage"):
            if r[name] != r[name]:   # NaN when nothing filled
                r[name] = None
        out.append(r)
    return out


# =============================================================== worked example 1 (README)


def test_a_btc_fall_liquidates_a_basket_whose_eth_sale_liquidates_an_eth_only_account(
        engine_cls):
    eng = two_instrument_cascade(engine_cls)
    print_mark(eng, BTC, 90, 20)   # the shock: BTC last 90 (the bid of 10 @ 89 is left)
    # Account 1 at BTC 90, ETH 100: E = 150 - 100 = 50 < MM = 45 + 50 = 95: queued. Account 2
    # at ETH 100 is safe (its liquidation price is 98).
    assert eng.account(1).equity == 50 and eng.account(1).maintenance_margin == 95
    records = eng.liquidate()
    assert comparable(records) == [
        # Round 0, generation 0: account 1, every position at once, instrument ascending.
        # BTC: 10 sold @ 89 = 890, realised 890 - 1000 = -110: collateral 40; BTC mark 89.
        record(0, 0, 1, 10, 890, 90, 89, BTC),
        # ETH (no look at the account in between under FULL): 10 @ 97 = 970, realised -30:
        # collateral 10; ETH mark 97, which passes account 2's liquidation price 98.
        record(0, 0, 1, 10, 970, 100, 97, ETH),
        # Round 1, generation 1: account 2 (ETH only), 10 @ 90 = 900, realised -100:
        # collateral -40; the fund covers the 40 (100 -> 60).
        record(1, 1, 2, 10, 900, 97, 90, ETH),
        record(1, 1, 2, 0, 0, 90, 90, ETH, kind=ForcedKind.SHORTFALL, fund_cover=40),
    ]
    assert (eng.account(1).collateral, eng.account(2).collateral) == (10, 0)
    assert eng.insurance_fund == 60
    assert (eng.mark_price(BTC), eng.mark_price("ETH")) == (89, 90)
    check_accounts(eng, settled=True)


def test_without_the_basket_the_eth_only_account_survives_the_btc_fall(engine_cls):
    # The same venue without account 1's ETH leg: nothing sells ETH, so account 2 stays safe.
    eng = seeded(engine_cls, {1: (150, 10, 0), 2: (60, 0, 10)}, insurance_fund=100)
    eng.limit(10, B, 89, 10, LP, instrument=BTC)
    eng.limit(10, B, 97, 10, LP, instrument=ETH)
    print_mark(eng, BTC, 90, 20)
    # Account 1 (BTC only) at 90: E = 50 >= MM = 45: safe too.
    assert rows(eng.liquidate()) == []
    assert eng.mark_price(ETH) == 100


def test_a_partial_rule_stops_once_the_account_is_safe(engine_cls):
    # FRACTION 50%: account 3 long 10 BTC and 1 ETH @ 100, collateral 140. At BTC 90: E = 40 <
    # MM = 45 + 5 = 50. Its BTC step sells 5 @ 89 (realised 445 - 500 = -55: collateral 85);
    # at BTC 89 E = 85 + 5 x (89 - 100) = 30 >= MM = ceil(22.25) + 5 = 28: safe, so its ETH
    # position is left alone.
    eng = seeded(engine_cls, {3: (140, 10, 1)}, sizing=Sizing.FRACTION, fraction_ppm=500_000)
    eng.limit(10, B, 89, 10, LP, instrument=BTC)
    eng.limit(10, B, 97, 10, LP, instrument=ETH)
    print_mark(eng, BTC, 90, 20)
    assert comparable(eng.liquidate()) == [record(0, 0, 3, 5, 445, 90, 89, BTC)]
    info = eng.account(3)
    assert [(p.instrument, p.position) for p in info.positions] == [(BTC, 5), (ETH, 1)]
    assert (info.equity, info.maintenance_margin) == (30, 28)
    check_accounts(eng, settled=True)


# ================================================================== accounts and margin


def test_account_info_breaks_the_positions_down_each_with_the_others_held_fixed(engine_cls):
    eng = two_instrument_cascade(engine_cls)
    info = eng.account(1)
    # E = 150, MM = 50 + 50, IM = 100 + 100. Position BTC with ETH at 100: liquidatable at p
    # when 150 + 10p - 1000 < ceil(p / 2) + 50: at 94 (90 < 97), not at 95 (100 < 98): 94;
    # bankrupt where 150 + 10p - 1000 = 0: p = 85. ETH the same by symmetry.
    assert (info.collateral, info.equity, info.maintenance_margin, info.initial_margin) == (
        150, 150, 100, 200)
    assert info.margin_ratio == 100 / 150
    both = [PositionInfo(BTC, 10, 1000, 1000, 0, 50, 100, 94, 85),
            PositionInfo(ETH, 10, 1000, 1000, 0, 50, 100, 94, 85)]
    assert list(info.positions) == both
    # The top-level position fields are instrument 0's.
    assert (info.position, info.cost, info.liquidation_price, info.bankruptcy_price) == (
        10, 1000, 94, 85)
    # ETH at 97 (account 2 would not care): BTC's liquidation price moves with it. With ETH
    # at 97, U_ETH = -30 and MM_ETH = ceil(48.5) = 49: 120 + 10p - 1000 < ceil(p / 2) + 49
    # at p = 97 (90 < 98), not at 98 (100 < 98): 97; bankrupt at (1000 - 120) / 10 = 88.
    eng.market(30, S, 1, PRINTER, instrument=ETH)   # 1 lot @ 97: ETH last 97
    btc = eng.account(1).positions[0]
    assert (btc.liquidation_price, btc.bankruptcy_price) == (97, 88)
    assert eng.account(2).positions == (PositionInfo(ETH, 10, 1000, 970, -30, 49, 97, 98, 94),)
    # An account with no BTC position has no top-level prices.
    info = eng.account(2)
    assert (info.position, info.liquidation_price, info.bankruptcy_price) == (0, None, None)


def test_initial_margin_counts_every_position(engine_cls):
    # Account 4: collateral 250, long 10 BTC @ 100 (IM 100 at mark 100). A buy of 10 ETH @ 100
    # needs IM 100 more: 200 <= 250, accepted resting; a second one would make IM 100 + 200 =
    # 300 > 250: refused, and nothing changes.
    eng = seeded(engine_cls, {4: (250, 10, 0)})
    eng.limit(50, B, 100, 10, 4, instrument=ETH)
    with pytest.raises(OrderError) as err:
        eng.limit(51, B, 100, 10, 4, instrument=ETH)
    assert err.value.reason == Reason.INSUFFICIENT_MARGIN
    assert eng.books[ETH].l3()["order_id"].tolist() == [50]


def test_order_ids_belong_to_their_instrument(engine_cls):
    eng = venue(engine_cls)
    eng.add_account(5, 10_000)
    eng.limit(7, B, 90, 1, 5, instrument=BTC)
    eng.limit(7, B, 80, 1, 5, instrument="ETH")   # the same id on the other book
    eng.cancel(7, instrument=ETH)
    assert eng.books[BTC].l3()["price"].tolist() == [90]
    assert eng.books[ETH].l3().tolist() == []
    assert eng.book.l3()["price"].tolist() == [90]   # Engine.book is instrument 0's


def test_trades_and_open_interest_are_per_instrument(engine_cls):
    eng = two_instrument_cascade(engine_cls)
    assert [int(t["price"]) for t in eng.trades(BTC)] == [100]
    assert [int(t["price"]) for t in eng.trades("ETH")] == [100]
    # Longs: BTC account 1's 10 (LP is short 10 - 1 printed, the printer short 1); ETH
    # accounts 1 and 2, 10 each.
    assert (eng.open_interest(BTC), eng.open_interest(ETH)) == (10, 20)
    # Money is conserved at any marks: no fees, so every equity (the fund's included) adds up
    # to the deposits, 2 x 10,000,000 + 100 + 150 + 60.
    assert eng.total_equity([1, 1]) == eng.total_equity([500, 7]) == 20_000_310
    assert eng.total_equity() == sum(eng.account(o).equity for o in eng.owners())
    with pytest.raises(ValueError, match="one per instrument"):
        eng.total_equity(100)


def test_each_position_goes_to_the_fund_at_its_own_bankruptcy_price(engine_cls):
    # Account 6 long 10 of each @ 100, collateral 60, liquidation limit BANKRUPTCY with no bids:
    # at BTC 95 (E = 10 < MM = 48 + 50 = 98) both positions go to the fund at their bankruptcy
    # prices with the other held at its mark. Then the fund, holding both, is served whole.
    from orderbook.events import LimitRule

    eng = seeded(engine_cls, {6: (60, 10, 10)}, limit_rule=LimitRule.BANKRUPTCY,
                 insurance_fund=10_000)
    print_mark(eng, BTC, 95, 20)
    eng.liquidation_round()
    # BTC bankruptcy with ETH at 100: 60 + 10p - 1000 = 0 at p = 94 (ceil); an IOC at 94 finds
    # no bid: 10 lots to the fund at 94 (realised -60: collateral 0). ETH with BTC gone: 10p -
    # 1000 = 0 at p = 100: to the fund at 100 (realised 0).
    taken = [(r["instrument"], r["qty"], r["notional"], r["counterparty"])
             for r in rows(eng.forced_orders())]
    assert taken == [(BTC, 10, 940, INSURANCE_FUND), (ETH, 10, 1000, INSURANCE_FUND)]
    fund = eng.account(INSURANCE_FUND)
    assert [(p.instrument, p.position) for p in fund.positions] == [(BTC, 10), (ETH, 10)]
    check_accounts(eng)


# ================================================================== copies and pickles


def test_a_venue_survives_copies_and_pickles(engine_cls):
    eng = two_instrument_cascade(engine_cls)
    print_mark(eng, BTC, 90, 20)
    eng.liquidation_round()
    for other in (eng.copy(), copy.deepcopy(eng), pickle.loads(pickle.dumps(eng))):
        assert [i.name for i in other.instruments] == ["BTC", "ETH"]
        assert other.account(2) == eng.account(2)
        assert comparable(other.forced_orders()) == comparable(eng.forced_orders())
        assert comparable(other.liquidate()) == [
            record(1, 1, 2, 10, 900, 97, 90, ETH),
            record(1, 1, 2, 0, 0, 90, 90, ETH, kind=ForcedKind.SHORTFALL, fund_cover=40)]
    assert eng.queue() == []   # account 1 is done; account 2 joins at the next round


# ================================================================== bad input


def test_an_instrument_is_named_or_numbered(engine_cls):
    eng = venue(engine_cls)
    assert eng.mark_price("BTC") is None
    with pytest.raises(KeyError, match="instrument 'SOL' is not one of"):
        eng.mark_price("SOL")
    with pytest.raises(KeyError, match="instrument 2 is not one of the venue's 2"):
        eng.limit(1, B, 100, 1, LP, instrument=2)
    with pytest.raises(TypeError, match="instrument"):
        eng.set_index(100, instrument=1.5)
    assert eng.books[BTC].l3().tolist() == [] and eng.books[ETH].l3().tolist() == []


@pytest.mark.parametrize("kwargs,error,match", [
    ({"instruments": []}, ValueError, "at least one Instrument"),
    ({"instruments": [Instrument("BTC"), Instrument("BTC")]}, ValueError, "given twice"),
    ({"instruments": [Instrument("")]}, ValueError, r"instruments\[0\]\.name"),
    ({"instruments": [Instrument("BTC"), Instrument("ETH", tick_size="0")]}, ValueError,
     r"instruments\[1\]"),
    ({"instruments": [Instrument("BTC", max_price=0)]}, ValueError,
     r"instruments\[0\]: max_price"),
    ({"instruments": [Instrument("BTC", tick_size="0.5"), Instrument("ETH", tick_size="0.3")]},
     ValueError, r"instruments\[1\]: tick_size \* lot_size"),
    ({"instruments": [Instrument("BTC")], "tick_size": "0.1"}, TypeError, "per instrument"),
    ({"instruments": ["BTC"]}, TypeError, r"instruments\[0\] must be an Instrument"),
    ({"instruments": Instrument("BTC")}, TypeError, "sequence of Instrument"),
])
def test_a_bad_venue_is_refused_naming_the_field(engine_cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        engine_cls(**kwargs)


def test_an_isolated_account_backs_one_position_in_a_venue_of_several(engine_cls):
    # Isolated per position: account 9's margin (500 of its 1,000) backs its one position; an
    # order or a seed in the other instrument is refused naming both, and changes nothing,
    # until it is flat and has no open orders there.
    eng = venue(engine_cls, check_initial_margin=False)
    eng.add_account(9, 1_000, isolated_margin=500)
    eng.seed_position(9, LP, 100, 10, instrument="BTC")
    before = eng.account(9)
    with pytest.raises(ValueError, match="isolated account with a position or open orders in "
                                         "'BTC'.* 'ETH' needs an account of its own"):
        eng.limit(1, B, 90, 1, 9, instrument="ETH")
    with pytest.raises(ValueError, match="'ETH' needs an account of its own"):
        eng.seed_position(LP, 9, 100, 1, instrument="ETH")
    assert eng.account(9) == before and len(eng.books[1].l3()) == 0
    eng.limit(1, S, 101, 10, 9, instrument="BTC")       # its own instrument: accepted
    with pytest.raises(ValueError, match="'ETH' needs an account of its own"):
        eng.market(2, S, 1, 9, instrument="ETH")
    eng.market(2, B, 10, LP, instrument="BTC")          # flat now, no order left
    assert eng.account(9).positions == ()
    eng.seed_position(9, LP, 50, 20, instrument="ETH")  # so ETH is open to it
    assert [p.instrument for p in eng.account(9).positions] == [1]
    # Liquidated in ETH (its margin 510 against a loss of 1,000 - 20 at 1), it loses its margin and
    # no more: the reserve stays, the rest is bad debt.
    print_mark(eng, "ETH", 1, 10)
    eng.limit(12, B, 1, 100, LP, instrument="ETH")
    records = eng.liquidate()
    a = eng.account(9)
    assert a.reserve == 500 and a.positions == () and a.collateral == 0
    assert int(records["bad_debt"].sum()) == 1_000 - 20 - 510   # cost less the fill, less margin
    check_accounts(eng, settled=True)


def test_an_isolated_backstop_is_refused_in_a_venue_of_several(engine_cls):
    eng = venue(engine_cls, backstop=7)
    with pytest.raises(ValueError, match="owner 7 is the backstop.* needs a cross account"):
        eng.add_account(7, 100, isolated_margin=50)
    assert 7 not in eng.owners()
    eng.add_account(7, 100)


def test_instruments_take_the_venue_keywords_they_leave_out(engine_cls):
    eng = engine_cls(tiers=TIERS, max_price=1000, mark_rule=MarkRule.MID, instruments=[
        Instrument("BTC", "0.5", "2"), Instrument("ETH", "0.1", "0.1", max_price=50,
                                                  mark_rule=MarkRule.INDEX)], quote_unit="0.01")
    btc, eth = eng.instruments
    assert (btc.tick_size, btc.lot_size, btc.max_price, btc.mark_rule) == (
        "0.5", "2", 1000, MarkRule.MID)
    assert (eth.max_price, eth.mark_rule) == (50, MarkRule.INDEX)
    assert btc.tiers.rows() == eth.tiers.rows()
    assert (eng.k, eng.max_price, eng.mark_rule) == (100, 1000, MarkRule.MID)   # instrument 0's
    eng.set_index(40, instrument="ETH")
    assert (eng.mark_price(ETH), eng.mark_price(BTC)) == (40, None)


# ==================================================================== close order


def close_order_venue(engine_cls, shocked=BTC, **kw):
    """Account 7: long 10 BTC and 20 ETH @ 100 (costs 1000 and 2000), collateral 200. At the
    marks 100: E = 200 >= MM = 50 + 100. The shock prints 90 on ``shocked``; then bids BTC
    10 @ 89, ETH 20 @ 99 and 20 @ 80 rest for the liquidations."""
    eng = seeded(engine_cls, {7: (200, 10, 20)}, **kw)
    print_mark(eng, shocked, 90, 20)
    eng.limit(10, B, 89, 10, LP, instrument=BTC)
    eng.limit(10, B, 99, 20, LP, instrument=ETH)
    eng.limit(11, B, 80, 20, LP, instrument=ETH)
    return eng


def closes(eng):
    return [(r["instrument"], r["qty"], r["notional"]) for r in rows(eng.liquidate())]


def test_largest_mm_first_closes_eth_and_stops_once_safe(engine_cls):
    from orderbook.events import CloseOrder

    # At BTC 90: E = 200 - 100 = 100 < MM = 45 + 100 = 145. ETH's MM (100) is the larger: 20
    # sold @ 99 = 1,980 (realised -20, collateral 180). Then E = 180 - 100 = 80 >= MM = 45:
    # safe, the BTC position stays.
    eng = close_order_venue(engine_cls, close_order=CloseOrder.LARGEST_MM)
    assert eng.close_order == CloseOrder.LARGEST_MM
    assert closes(eng) == [(ETH, 20, 1980)]
    assert [(p.instrument, p.position) for p in eng.account(7).positions] == [(BTC, 10)]
    check_accounts(eng, settled=True)


def test_all_closes_btc_then_eth_whatever_the_margins(engine_cls):
    # ALL under FULL: BTC 10 @ 89 = 890 (realised -110: collateral 90), then ETH without a
    # look: 20 @ 99 = 1,980 (realised -20: collateral 70).
    eng = close_order_venue(engine_cls)
    assert closes(eng) == [(BTC, 10, 890), (ETH, 20, 1980)]
    assert eng.account(7).collateral == 70


def test_largest_loss_first_closes_the_instrument_that_fell(engine_cls):
    from orderbook.events import CloseOrder

    # ETH printed at 90: U_ETH = -200, U_BTC = 0; E = 0 < MM = 50 + 90. ETH first: 20 lots
    # into 20 @ 99 (the bid above the print; the book crossed nothing): 1,980, realised -20,
    # collateral 180; ETH's last trade is 99 now. BTC at 100: E = 180 >= MM = 50: stops.
    eng = close_order_venue(engine_cls, shocked=ETH, close_order=CloseOrder.LARGEST_LOSS)
    assert closes(eng) == [(ETH, 20, 1980)]
    assert eng.account(7).positions[0].instrument == BTC


def test_pro_rata_cuts_every_position_by_the_fraction(engine_cls):
    from orderbook.events import CloseOrder

    # FRACTION 50 %, PRO_RATA: BTC 5 @ 89 (realised 445 - 500 = -55: collateral 145) and ETH
    # 10 @ 99 (realised 990 - 1000 = -10: collateral 135), with no look in between.
    eng = close_order_venue(engine_cls, sizing=Sizing.FRACTION, fraction_ppm=500_000,
                            close_order=CloseOrder.PRO_RATA)
    eng.liquidation_round()
    assert [(r["instrument"], r["qty"], r["notional"]) for r in rows(eng.forced_orders())] == [
        (BTC, 5, 445), (ETH, 10, 990)]
    assert eng.account(7).collateral == 135


@pytest.mark.parametrize("sizing", [Sizing.RESTORE, Sizing.TIER_STEP])
def test_pro_rata_needs_one_fraction(engine_cls, sizing):
    from orderbook.events import CloseOrder

    with pytest.raises(ValueError, match="PRO_RATA cuts every position by one fraction"):
        engine_cls(close_order=CloseOrder.PRO_RATA, sizing=sizing)
    with pytest.raises(ValueError, match="close_order must be one of"):
        engine_cls(close_order=9)


def test_the_close_order_is_kept_by_copies_and_pickles(engine_cls):
    from orderbook.events import CloseOrder

    eng = close_order_venue(engine_cls, close_order=CloseOrder.LARGEST_MM)
    for other in (eng.copy(), pickle.loads(pickle.dumps(eng))):
        assert other.close_order == CloseOrder.LARGEST_MM
        assert closes(other) == [(ETH, 20, 1980)]


def test_an_isolated_account_survives_a_pickle_and_a_state_with_two_of_its_positions_is_refused(
        engine_cls):
    eng = venue(engine_cls)
    eng.add_account(9, 1_000, isolated_margin=500)
    eng.seed_position(9, LP, 100, 1, instrument="ETH")
    again = pickle.loads(pickle.dumps(eng))
    assert again.account(9) == eng.account(9)
    restore, (args, kwargs, state) = eng.__reduce__()
    rows = []
    for row in state["accounts"]:
        if row[0] == 9:   # a second position, balanced by the LP's
            row = row[:5] + (((0, 1, 100),) + row[5],) + row[6:]
        elif row[0] == LP:
            row = row[:5] + (((0, -1, 100),) + row[5],) + row[6:]
        rows.append(row)
    with pytest.raises(ValueError, match=r"accounts\[\d+\]\.positions must hold one instrument"):
        restore(args, kwargs, dict(state, accounts=rows))
