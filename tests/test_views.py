"""Readable views of a run (orderbook.views): each forced order's fills level by level, and the
tables as DataFrames with enums by name, money in quote currency and prices in price units."""

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
from engine_helpers import B, S, make, victim_a
from test_metrics import fund_dips

from orderbook import ForcedKind, run
from orderbook.config import load_scenario
from orderbook.scenario import scale_scenario
from orderbook.views import FORCED_FILL_DTYPE, forced_fills

EXAMPLES = __import__("pathlib").Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module")
def dips():
    return run(fund_dips(), counterfactual=False)


def test_forced_fills_are_the_levels_each_forced_order_took(dips):
    # fund_dips: account 0 sells 5 @ 85 and 5 @ 84 (record 0), account 1 10 @ 84 (record 2),
    # account 2 10 @ 51 (record 4); records 1 and 3 are the fund covering shortfalls
    fills = dips.forced_fills()
    assert fills.dtype == FORCED_FILL_DTYPE
    assert fills[["record", "order_id", "owner", "side", "price", "lots", "notional",
                  "makers"]].tolist() == [
        (0, -1, 0, -1, 85, 5, 425, 1), (0, -1, 0, -1, 84, 5, 420, 1),
        (2, -2, 1, -1, 84, 10, 840, 1), (4, -3, 2, -1, 51, 10, 510, 1)]


def test_one_row_per_level_however_many_resting_orders_it_took_there(engine_cls):
    # Bids 94 x 4, then 93 x 1 and 93 x 2 (two orders), 92 x 5; a sell of 1 @ 94 sets the
    # mark. A (long 10 at 100, liquidation price 94) sells 10: 3 @ 94, 1 + 2 @ 93, 4 @ 92.
    eng = make(engine_cls)
    for owner in (100, 101, 102):
        eng.add_account(owner, 100_000, exempt=True)
    victim_a(eng)
    for i, (price, qty) in enumerate([(94, 4), (93, 1), (93, 2), (92, 5)]):
        eng.limit(1000 + i, B, price, qty, 101)
    eng.market(2000, S, 1, 102)
    eng.liquidate()
    fills = forced_fills(eng.forced_orders(), [eng.trades()], [1])
    assert fills[["price", "lots", "notional", "makers"]].tolist() == [
        (94, 3, 282, 1), (93, 3, 279, 2), (92, 4, 368, 1)]


def assert_fills_add_up(result):
    records, fills = result.forced_orders, result.forced_fills()
    with_fills = np.nonzero(np.isin(records["kind"], (ForcedKind.ORDER, ForcedKind.CONVERSION))
                            & (records["filled"] > 0))[0]
    assert np.unique(fills["record"]).tolist() == with_fills.tolist()
    lots = np.bincount(fills["record"], weights=fills["lots"], minlength=len(records))
    value = np.bincount(fills["record"], weights=fills["notional"], minlength=len(records))
    assert lots[with_fills].tolist() == records["filled"][with_fills].tolist()
    assert value[with_fills].tolist() == records["notional"][with_fills].tolist()
    assert (fills["owner"] == records["owner"][fills["record"]]).all()
    assert (fills["instrument"] == records["instrument"][fills["record"]]).all()
    return records, fills


@pytest.mark.filterwarnings("ignore::orderbook.UnresolvedAccountsWarning")
@pytest.mark.parametrize("name", ["basket", "inverse", "spot_conversion", "fund_vs_adl"])
def test_each_records_lots_and_notional_are_the_sums_of_its_fills(name):
    # several instruments, an inverse venue, collateral sold through a spot book (CONVERSION
    # records with fills), the fund unwinding what it took over
    result = run(scale_scenario(load_scenario(EXAMPLES / f"{name}.toml"), 0.1),
                 counterfactual=False)
    records, fills = assert_fills_add_up(result)
    assert len(fills) > len(np.unique(fills["record"]))     # some order took several levels
    if name == "spot_conversion":
        assert (records["kind"][fills["record"]] == ForcedKind.CONVERSION).any()


def test_a_trade_log_that_is_not_the_runs_is_refused(dips):
    records, trades = dips.forced_orders, dips.trades
    with pytest.raises(ValueError, match="hold 2 forced orders with fills and the records 3"):
        forced_fills(records, [trades[trades["order_id"] != -3]], [1])
    short = trades.copy()
    short["qty"][short["order_id"] == -2] = 9
    with pytest.raises(ValueError, match=r"record 2 \(owner 1\) filled 10 lots, its .* 9"):
        forced_fills(records, [short], [1])
    with pytest.raises(ValueError, match="one trade log per instrument"):
        forced_fills(records, [], [1])


# --------------------------------------------------------------------------------- frames
def test_to_pandas_names_enums_and_gives_money_and_prices_beside_the_exact_columns(dips):
    pytest.importorskip("pandas")
    series, forced, trades = dips.to_pandas()
    # the exact columns are all there
    assert set(dips.forced_orders.dtype.names) <= set(forced.columns)
    assert set(dips.series.dtype.names) <= set(series.columns)
    assert forced["side"].tolist() == ["SELL"] * 5
    assert forced["kind"].tolist() == ["ORDER", "SHORTFALL", "ORDER", "SHORTFALL", "ORDER"]
    assert forced["notional"].tolist() == [845, 0, 840, 0, 510]
    assert forced["fund_cover_quote"].tolist() == [0, 55, 0, 40, 0]
    assert forced["avg_price_px"][0] == Decimal("84.5")
    assert forced["slippage_px"][0] == Decimal("9.5")       # 94 - 84.5
    assert forced["slippage_cost"].tolist()[::2] == [95, 0, 10]
    assert forced["slippage_cost"].sum() == dips.summary["forced_slippage"]
    assert series["insurance_fund"].tolist()[:2] == [945, 905]
    assert series["mid_px"][0] == Decimal("92.5")          # (84 + 101) / 2
    assert trades["kind"].unique().tolist() == ["TRADE"]
    assert trades["reason"].unique().tolist() == ["NONE"]
    assert (trades["notional"] == trades["price"] * trades["qty"]).all()   # k = 1


def test_frames_count_money_in_the_quote_unit_and_prices_in_the_tick_size():
    pytest.importorskip("pandas")
    # the built-in scenario: tick 0.1, lot 0.001, one quote unit 0.0001 of quote currency
    result = run(replace(default_small(), steps=10), counterfactual=False)
    series, forced, trades = result.to_pandas()
    row = forced.iloc[0]
    assert row["notional_quote"] == Decimal(int(row["notional"])) * Decimal("0.0001")
    assert row["mark_before_px"] == Decimal(int(row["mark_before"])) * Decimal("0.1")
    first = trades.iloc[0]
    assert first["price_px"] == Decimal(int(first["price"])) * Decimal("0.1")
    assert first["notional_quote"] == Decimal(int(first["price"] * first["qty"])) * Decimal(
        "0.0001")
    fills = result.forced_fills_frame()
    assert (fills["side"] == "SELL").all()
    assert sum(fills["notional_quote"]) == sum(forced["notional_quote"][forced["kind"] == "ORDER"])


def default_small():
    from orderbook import default_scenario

    return default_scenario(0.05)
