"""orderbook.analysis: the liquidation map, the static cascade forecast, their figure and the
``orderbook map`` command.

The hand-built venues use a tick and a lot of 1 (k = 1) and margin tiers of 0 %, so that a
long of q lots entered at P0 with collateral C is liquidatable exactly where its equity
C + q (P - P0) goes negative: its liquidation price is ceil((q P0 - C) / q) - 1, and a short's
floor((q P0 + C) / q) + 1 (docs/liquidation.md). Each account below is chosen so that price
is a known level of the book.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from orderbook import default_scenario, run
from orderbook.analysis import (
    ASSUMPTIONS,
    CRITICALITY_DTYPE,
    MAP_DTYPE,
    CascadeForecast,
    LiquidationMap,
    cascade_forecast,
    liquidation_map,
    plot_liquidation_map,
)
from orderbook.cli import main
from orderbook.config import load_scenario
from orderbook.engine import Engine
from orderbook.events import LimitRule, Side, Sizing
from orderbook.metrics import LIQUIDATION_KINDS
from orderbook.reference_engine import Engine as ReferenceEngine
from orderbook.scenario import Liquidity, Shock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

HOUSE, MAKER, TAKER = 10**9, 10**9 + 1, 10**9 + 2
A, B, C, D = 1, 2, 3, 4
BIDS = ((100, 10), (99, 10), (98, 10))
ASKS = ((101, 10), (102, 10), (103, 10))


def _venue(cls, accounts, *, print_at=101, **rules):
    """A book of BIDS and ASKS (maker orders), a first print at ``print_at`` (the LAST mark)
    that leaves the book as it was, and ``accounts``: (owner, signed lots, entry, collateral)
    seeded against the house."""
    eng = cls("1", "1", tiers=((None, 0, 0),), sizing=Sizing.FULL,
              limit_rule=LimitRule.MARKET, **rules)
    for owner in (HOUSE, MAKER, TAKER):
        eng.add_account(owner, 10**12, exempt=True)
    oid = 0
    for side, levels in ((Side.BUY, BIDS), (Side.SELL, ASKS)):
        for price, lots in levels:
            oid += 1
            eng.limit(oid, side, price, lots, MAKER)
    # the print: one lot the taker adds and takes back at once
    side = Side.SELL if print_at >= 101 else Side.BUY
    eng.limit(oid + 1, side, print_at, 1, MAKER)
    eng.market(oid + 2, -side, 1, TAKER)
    for owner, lots, entry, collateral in accounts:
        eng.add_account(owner, collateral)
        if lots > 0:
            eng.seed_position(owner, HOUSE, entry, lots)
        else:
            eng.seed_position(HOUSE, owner, entry, -lots)
    return eng


#: A: long 5 at 100 with 2 (liquidation price 99); B: long 8 with 10 (98); C: long 3 with
#: 28 (90, below the book). ceil((500 - 2) / 5) - 1 = 99, ceil(790 / 8) - 1 = 98,
#: ceil(272 / 3) - 1 = 90.
LONGS = ((A, 5, 100, 2), (B, 8, 100, 10), (C, 3, 100, 28))
#: D: short 5 at 100 with 7: floor(507 / 5) + 1 = 102.
SHORTS = ((D, -5, 100, 7),)

ENGINES = pytest.mark.parametrize("cls", [Engine, ReferenceEngine],
                                  ids=["compiled", "reference"])


def _liq(eng, owner):
    return eng.account(owner).positions[0].liquidation_price


def _state(eng):
    """What a read-only analysis must leave as it was."""
    book = eng.books[0]
    levels = [column.tolist() for column in book.l2(100)]
    return (levels, book.event_count, book.last_price, eng.mark_price(0),
            [eng.account(o) for o in eng.owners()], len(eng.forced_orders()))


# --------------------------------------------------------------------- the hand cases
@ENGINES
def test_hand_built_liquidation_prices(cls):
    eng = _venue(cls, LONGS + SHORTS)
    assert [_liq(eng, o) for o in (A, B, C, D)] == [99, 98, 90, 102]
    assert eng.mark_price(0) == 101 and eng.books[0].l2(10).bid_qty.tolist() == [10, 10, 10]


@ENGINES
def test_forecast_two_generations_by_hand(cls):
    # 16 lots sold: 10 at 100, 6 at 99, so the price is 99 and crosses A (99); A's 5 lots
    # take the sold lots to 21, one into the 98 level, which crosses B (98); B's 8 take it
    # to 29 of the 30 bid lots: still 98, and C (90) is not reached. Fixed point.
    eng = _venue(cls, LONGS + SHORTS)
    before = _state(eng)
    f = cascade_forecast(eng, shock=Shock(sell=16))
    assert isinstance(f, CascadeForecast)
    assert (f.trough, f.direction, f.low, f.high) == (98, -1, 98, None)
    assert (f.liquidated_accounts, f.rounds, f.accounts_by_round) == (2, 2, (1, 1))
    assert f.liquidated_lots == 5 + 8
    # forced fills: 4 lots at 99, then 9 at 98
    assert f.liquidated_notional == 4 * 99 + 9 * 98
    assert not f.book_exhausted and f.unfilled_lots == 0
    assert f.caveats == () and f.assumptions == ASSUMPTIONS
    assert _state(eng) == before            # read only
    # the engine itself, sent the same shock, reaches the same fixed point
    eng.market(10**6, Side.SELL, 16, TAKER)
    records = eng.liquidate()
    assert eng.books[0].last_price == f.trough
    liquidated = set(records["owner"][np.isin(records["kind"], LIQUIDATION_KINDS)].tolist())
    assert liquidated == {A, B}
    assert int(records["notional"].sum()) == f.liquidated_notional
    assert int(records["generation"].max()) + 1 == f.rounds


@ENGINES
def test_forecast_without_a_cascade(cls):
    # 15 lots sold end at 99 and cross A; A's 5 fill the 99 level exactly: the price stays
    # at 99, above B's 98
    f = cascade_forecast(_venue(cls, LONGS), shock=Shock(sell=15))
    assert (f.trough, f.liquidated_accounts, f.rounds, f.liquidated_lots) == (99, 1, 1, 5)
    # a shock that reaches no liquidation price liquidates nothing
    f = cascade_forecast(_venue(cls, LONGS), shock=Shock(sell=10))
    assert (f.trough, f.liquidated_accounts, f.rounds, f.liquidated_notional) == (100, 0, 0, 0)
    # no shock at all: the mark stays where it is (101) and nothing trades
    f = cascade_forecast(_venue(cls, LONGS))
    assert (f.trough, f.direction, f.liquidated_accounts) == (None, 0, 0)


@ENGINES
def test_forecast_book_exhausted(cls):
    # 25 lots sold end at 98 and cross A and B at once: their 13 lots find 5 of the 30 bid
    # lots left; the price stays at the deepest bid (98), never below it, and 8 lots find no
    # order. C (90, below the book) is not crossed.
    f = cascade_forecast(_venue(cls, LONGS), shock=Shock(sell=25))
    assert f.book_exhausted
    assert (f.trough, f.liquidated_accounts, f.rounds, f.unfilled_lots) == (98, 2, 1, 8)
    assert f.liquidated_lots == 13 and f.liquidated_notional == 5 * 98
    assert f.by_instrument["book_exhausted"].tolist() == [True]
    # a shock larger than the whole side: exhausted by the shock alone; A and B are crossed
    # at 98 and their 13 lots find nothing either: 1,000 + 13 - 30 lots unfilled
    f = cascade_forecast(_venue(cls, LONGS), shock=Shock(sell=1_000))
    assert f.book_exhausted and f.trough == 98 and f.liquidated_accounts == 2
    assert f.unfilled_lots == 1_000 + 13 - 30 and f.liquidated_notional == 0


@ENGINES
def test_forecast_buy_shock_liquidates_shorts(cls):
    # 12 lots bought: 10 at 101, 2 at 102, which crosses D (102); its 5 lots take the bought
    # lots to 17, still 102. The longs, on the other side, are untouched.
    eng = _venue(cls, LONGS + SHORTS, print_at=100)
    assert eng.mark_price(0) == 100
    f = cascade_forecast(eng, shock=Shock(buy=12))
    assert (f.trough, f.direction, f.high, f.low) == (102, 1, 102, None)
    assert (f.liquidated_accounts, f.rounds, f.liquidated_lots) == (1, 1, 5)
    assert f.liquidated_notional == 5 * 102
    eng.market(10**6, Side.BUY, 12, TAKER)
    records = eng.liquidate()
    assert eng.books[0].last_price == 102
    assert set(records["owner"].tolist()) == {D}


@ENGINES
def test_shock_orders_count_with_sell_and_buy(cls):
    # (step, side, lots) orders count whatever their step: 6 + 10 lots sold is the 16 above
    f = cascade_forecast(_venue(cls, LONGS),
                         shock=Shock(sell=6, orders=((3, Side.SELL, 10),)))
    assert (f.trough, f.liquidated_accounts, f.shock_sell_lots) == (98, 2, 16)
    assert any("after step 0" in c for c in f.caveats)


# ------------------------------------------------------------------------- the map
@ENGINES
def test_map_by_hand(cls):
    eng = _venue(cls, LONGS + SHORTS)
    m = liquidation_map(eng)
    assert isinstance(m, LiquidationMap) and m.levels.dtype == MAP_DTYPE
    rows = {int(r["price"]): r for r in m.levels}
    assert sorted(rows) == [90, 98, 99, 100, 101, 102, 103]
    assert (rows[99]["long_accounts"], rows[99]["long_lots"], rows[99]["long_notional"],
            rows[99]["bid_lots"], rows[99]["bid_notional"]) == (1, 5, 5 * 101, 10, 990)
    assert (rows[102]["short_lots"], rows[102]["short_notional"], rows[102]["ask_lots"]) == \
        (5, 5 * 101, 10)
    assert rows[90]["long_lots"] == 3 and rows[90]["bid_lots"] == 0
    assert m.marks == (101,) and m.mids == (100.5,) and m.ks == (1,)
    # bands of 5 ticks from round prices: 98 and 99 share the band from 95
    banded = liquidation_map(eng, band_ticks=5)
    assert banded.band_ticks == 5
    band = banded.levels[banded.levels["price"] == 95][0]
    assert (band["long_accounts"], band["long_lots"], band["bid_lots"]) == (2, 13, 20)
    # one side only
    longs = liquidation_map(eng, side="long")
    assert longs.levels["short_lots"].sum() == 0 and longs.levels["ask_lots"].sum() == 0
    assert longs.levels["long_lots"].sum() == 16


def test_map_totals_are_the_populations_notional():
    from orderbook._market import Market

    market = Market(default_scenario(scale=0.05))
    eng = market.engine
    m = liquidation_map(market)
    longs = shorts = 0
    for owner in eng.owners():
        info = eng.account(owner)
        if info.exempt:
            continue
        for p in info.positions:
            if p.position > 0:
                longs += p.notional
            elif p.position < 0:
                shorts += p.notional
    assert longs > 0 and shorts > 0
    assert int(m.levels["long_notional"].sum() + m.unpriced["long_notional"].sum()) == longs
    assert int(m.levels["short_notional"].sum() + m.unpriced["short_notional"].sum()) == shorts
    book = eng.books[0].l2(10_000)
    assert int(m.levels["bid_lots"].sum()) == int(book.bid_qty.sum())
    assert int(m.levels["ask_lots"].sum()) == int(book.ask_qty.sum())
    accounts = int(m.levels["long_accounts"].sum() + m.levels["short_accounts"].sum()
                   + m.unpriced["long_accounts"].sum() + m.unpriced["short_accounts"].sum())
    assert accounts == market.population      # one position each, every kept account
    # banding keeps every total
    banded = liquidation_map(market, band_ticks=1_000)
    for key in MAP_DTYPE.names[2:]:
        assert banded.levels[key].sum() == m.levels[key].sum(), key


# ------------------------------------------------------------- against the runner
@pytest.mark.parametrize("seed", [0, 2, 7])
def test_forecast_is_the_runners_fixed_point_without_refill(seed):
    # One instrument, FULL market closes, a LAST mark, refill and recovery off: the run
    # reaches exactly the static fixed point (the docstring's claim).
    scenario = replace(default_scenario(scale=0.05), seed=seed,
                       liquidity=Liquidity(half_life=0))
    f = cascade_forecast(scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(scenario, counterfactual=False)
    sm = result.summary
    assert f.liquidated_accounts > 50 and f.rounds > 2 and f.caveats == ()
    assert f.trough == int(result.series["last"].min())
    assert f.liquidated_accounts == sm["liquidated_accounts"]
    assert f.rounds == sm["generations"]
    assert list(f.accounts_by_round) == sm["liquidations_by_generation"]
    assert f.liquidated_notional == sm["liquidated_notional"]


@pytest.mark.parametrize("seed", [1, 5])
def test_refill_stops_the_run_no_deeper_than_the_forecast(seed):
    # With the built-in refill and recovery, depth added between rounds can only stop a fall
    # sooner: seed 1 reaches the forecast's trough all the same, seed 5 stops one level
    # (50 ticks) above it, with the same accounts.
    scenario = replace(default_scenario(scale=0.05), seed=seed)
    f = cascade_forecast(scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(scenario, counterfactual=False)
    trough = int(result.series["last"].min())
    assert trough == f.trough + (50 if seed == 5 else 0)
    assert result.summary["liquidated_accounts"] == f.liquidated_accounts


def test_forecast_of_a_built_market_is_its_scenarios():
    from orderbook._market import Market

    scenario = default_scenario(scale=0.05)
    market = Market(scenario)
    first = cascade_forecast(market)
    assert first.to_dict() == cascade_forecast(scenario).to_dict()
    assert len(market.engine.trades()) == 1          # only the first print: nothing sent


def test_basket_one_way_is_exact_and_two_way_says_why():
    base = load_scenario(EXAMPLES / "basket.toml")
    # every account on one side across its legs: forced orders go one way per instrument,
    # and the account-level evaluation of the baskets gives the run's fixed point
    one_way = replace(base, liquidity=Liquidity(half_life=0),
                      population=replace(base.population, same_side=1.0))
    f = cascade_forecast(one_way)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(one_way, counterfactual=False)
    sm = result.summary
    assert f.liquidated_accounts == sm["liquidated_accounts"] > 100
    assert f.trough == int(result.series["last"].min())
    assert f.rounds == sm["generations"]
    assert int(f.by_instrument["liquidated_notional"].sum()) == sm["liquidated_notional"]
    assert len(f.by_instrument) == 3
    assert not any("both ways" in c for c in f.caveats)
    # the file's own population (10 % of legs on the other side): a caveat per instrument
    f = cascade_forecast(base, instrument="ETH")
    assert f.name == "ETH" and f.instrument == 1 and f.shock_sell_lots == 0
    assert f.trough < 300_000 and f.liquidated_lots > 0
    assert sum("both ways" in c for c in f.caveats) == 3


@pytest.mark.parametrize("name", ["multi_asset", "inverse", "spot_conversion",
                                  "correlated_fall"])
def test_example_files_run(name):
    scenario = load_scenario(EXAMPLES / f"{name}.toml")
    f = cascade_forecast(scenario)
    m = liquidation_map(scenario)
    names = [c.name for c in scenario.instruments]
    assert m.instruments == tuple(names) and f.name == names[0]
    assert f.criticality.dtype == CRITICALITY_DTYPE and len(f.criticality)
    assert len(f.by_instrument) == len(names)
    if name == "correlated_fall":   # an index mark with no shock orders: nothing trades
        assert (f.trough, f.liquidated_accounts) == (None, 0)
        assert any("INDEX" in c for c in f.caveats)
    else:
        assert f.direction == -1 and f.liquidated_accounts > 0
    if name == "inverse":
        assert m.money == f.money == "coin"


def test_inverse_agrees_with_the_run_to_the_coin_unit():
    # each level's fills valued as one (floor(k q / p) once, not once per fill)
    scenario = replace(load_scenario(EXAMPLES / "inverse.toml"),
                       liquidity=Liquidity(half_life=0))
    f = cascade_forecast(scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(scenario, counterfactual=False)
    sm = result.summary
    assert (f.trough, f.liquidated_accounts, f.rounds) == (
        int(result.series["last"].min()), sm["liquidated_accounts"], sm["generations"])
    fills = int((result.trades["order_id"] < 0).sum())
    assert 0 <= f.liquidated_notional - sm["liquidated_notional"] <= fills


def test_caveats_name_the_rules_that_differ():
    scenario = default_scenario(scale=0.05)
    rules = replace(scenario.rules, sizing=Sizing.FRACTION, limit_rule=LimitRule.BAND,
                    band_ppm=10_000, round_cap=10**9)
    f = cascade_forecast(replace(scenario, rules=rules))
    text = " ".join(f.caveats)
    assert "FRACTION" in text and "BAND" in text and "round_cap" in text


# ------------------------------------------------------------------- criticality
@ENGINES
def test_criticality_by_hand(cls):
    # reference: the mid 100.5 rounded down, 100; band_ppm 20,000 of 100 = 2 ticks: below,
    # band 0 holds 99-100, band 1 97-98; above, band 0 holds 101-102, band 1 103-104.
    eng = _venue(cls, LONGS + SHORTS)
    f = cascade_forecast(eng, shock=Shock(sell=16), band_ppm=20_000)
    assert f.reference == 100 and f.band_ticks == 2
    rows = {(int(r["direction"]), int(r["band"])): r for r in f.criticality}
    below0 = rows[-1, 0]
    assert (below0["low"], below0["high"]) == (99, 100)
    # A (5 lots at 99, worth 495) against 10 lots at 100 and 10 at 99 (1,990)
    assert (below0["liquidation_lots"], below0["liquidation_notional"]) == (5, 495)
    assert (below0["depth_lots"], below0["depth_notional"]) == (20, 1_990)
    assert below0["ratio"] == pytest.approx(495 / 1_990)
    assert below0["cumulative_ratio"] == pytest.approx((16 + 5) / 20)
    below1 = rows[-1, 1]
    assert (below1["low"], below1["liquidation_lots"], below1["depth_lots"]) == (97, 8, 10)
    assert below1["cumulative_ratio"] == pytest.approx((16 + 13) / 30)
    # C at 90: band (100 - 90) // 2 = 5, prices 89-90, no depth there: ratio inf; the bands
    # between hold nothing and are left out
    assert (rows[-1, 5]["low"], rows[-1, 5]["high"]) == (89, 90)
    assert rows[-1, 5]["ratio"] == np.inf and rows[-1, 5]["liquidation_lots"] == 3
    assert rows[-1, 5]["cumulative_ratio"] == pytest.approx((16 + 16) / 30)
    assert (-1, 2) not in rows and (-1, 4) not in rows
    above0 = rows[1, 0]
    assert (above0["low"], above0["high"], above0["liquidation_lots"], above0["depth_lots"]) \
        == (101, 102, 5, 20)
    assert len(f.critical_bands) == 1          # only C's band, beyond the book


# ------------------------------------------------------------------- bad arguments
@ENGINES
def test_bad_arguments_name_the_value(cls):
    eng = _venue(cls, LONGS)
    before = _state(eng)
    with pytest.raises(KeyError, match="instrument 'nope'"):
        cascade_forecast(eng, instrument="nope")
    with pytest.raises(ValueError, match=r"instrument must be in \[0, 0\].*got 3"):
        cascade_forecast(eng, instrument=3)
    with pytest.raises(TypeError, match="instrument .*float 1.5"):
        cascade_forecast(eng, instrument=1.5)
    with pytest.raises(TypeError, match="instrument .*bool"):
        liquidation_map(eng, instrument=True)
    with pytest.raises(ValueError, match=r"band_ppm must be in \[1, 1000000\], got 0"):
        cascade_forecast(eng, band_ppm=0)
    with pytest.raises(ValueError, match="band_ppm .* got 1000001"):
        cascade_forecast(eng, band_ppm=1_000_001)
    with pytest.raises(TypeError, match="band_ppm must be an integer, got float"):
        cascade_forecast(eng, band_ppm=5e3)
    with pytest.raises(ValueError, match="band_ticks .* got 0"):
        liquidation_map(eng, band_ticks=0)
    with pytest.raises(TypeError, match="band_ticks must be an integer, got str"):
        liquidation_map(eng, band_ticks="5")
    with pytest.raises(ValueError, match="side must be None, 'long' or 'short', got 'up'"):
        liquidation_map(eng, side="up")
    with pytest.raises(TypeError, match="source must be .* got int"):
        cascade_forecast(42)
    with pytest.raises(TypeError, match="shock must be a Shock .* got dict"):
        cascade_forecast(eng, shock={"sell": 5})
    with pytest.raises(ValueError, match=r"\[shock\] sell = -1 must be in \[0, "):
        cascade_forecast(eng, shock=Shock(sell=-1))
    with pytest.raises(TypeError, match=r"shock\[0\] must be an orderbook.Shock"):
        cascade_forecast(eng, shock=[None])
    with pytest.raises(ValueError, match=r"one Shock per instrument \(1\), got 2"):
        cascade_forecast(eng, shock=[Shock(), Shock()])
    assert _state(eng) == before


def test_bad_plot_arguments(tmp_path):
    eng = _venue(Engine, LONGS)
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match=r"price_range must have low < high, got \(5, 5\)"):
        plot_liquidation_map(eng, path, price_range=(5, 5))
    with pytest.raises(TypeError, match="price_range must be"):
        plot_liquidation_map(eng, path, price_range=5)
    with pytest.raises(TypeError, match="forecast must be a CascadeForecast"):
        plot_liquidation_map(eng, path, forecast="trough")
    with pytest.raises(KeyError, match="instrument 'BTC'"):
        plot_liquidation_map(liquidation_map(eng), path, instrument="BTC")
    assert not path.exists()


# ----------------------------------------------------------------------- figure
def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "map.png"
    plot_liquidation_map(default_scenario(scale=0.05), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a map of an engine, with a forecast and a price range of its own
    eng = _venue(Engine, LONGS + SHORTS)
    other = tmp_path / "hand.png"
    plot_liquidation_map(liquidation_map(eng), other,
                         forecast=cascade_forecast(eng, shock=Shock(sell=16)),
                         price_range=(85, 110), band_ticks=1)
    assert other.stat().st_size > 0


# -------------------------------------------------------------------------- CLI
def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_map_prints_the_forecast_and_tables(capsys):
    code, out, err = _cli(capsys, "map", "--scale", "0.05", "--bands", "4")
    assert code == 0, err
    f = cascade_forecast(default_scenario(scale=0.05))
    assert "static cascade forecast on main" in out
    assert f"{f.trough:,} ticks" in out and f"{f.liquidated_accounts:,}" in out
    assert "criticality: bands of 0.5 %" in out and "liquidation map" in out
    assert "-- mid 100,000.05 --" in out


def test_cli_map_json(capsys):
    code, out, err = _cli(capsys, "map", str(EXAMPLES / "basket.toml"), "--instrument", "ETH",
                          "--band-ppm", "10000", "--json")
    assert code == 0, err
    data = json.loads(out)
    f = cascade_forecast(load_scenario(EXAMPLES / "basket.toml"), instrument="ETH",
                         band_ppm=10_000)
    assert data["instrument"] == "ETH" and data["forecast"]["band_ppm"] == 10_000
    assert data["forecast"]["trough"] == f.trough
    assert data["forecast"]["liquidated_accounts"] == f.liquidated_accounts
    assert len(data["forecast"]["criticality"]) == len(f.criticality)
    assert data["map"]["band_ticks"] == f.band_ticks
    assert {row["instrument"] for row in data["map"]["levels"]} == {"ETH"}
    assert data["quote_unit"] == "0.0001"


def test_cli_map_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "map.png"
    code, out, err = _cli(capsys, "map", "--scale", "0.05", "--json", "--plot", str(path))
    assert code == 0, err
    json.loads(out)                               # the note about the file goes to stderr
    assert f"wrote {path}" in err and path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, fragment", [
    (["map", "--scale", "0.05", "--instrument", "BTC"], "--instrument BTC"),
    (["map", "--band-ppm", "0"], "--band-ppm"),
    (["map", "--bands", "x"], "--bands"),
    (["map", str(EXAMPLES / "two_venues.toml")], "give --venue-name (one of A, B, S)"),
    (["map", str(EXAMPLES / "two_venues.toml"), "--venue-name", "Q"], "not a venue of"),
    (["map", "--scale", "0.05", "--venue-name", "A"], "the scenario has one venue"),
    (["map", str(EXAMPLES / "two_venues.toml"), "--venue", "binance", "--venue-name", "A"],
     "--venue (a rules preset)"),
    (["map", "no_such_file.toml"], "not found"),
])
def test_cli_map_errors(capsys, argv, fragment):
    code, _, err = _cli(capsys, *argv)
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and fragment in err, err


def test_cli_map_of_one_venue_of_a_market(capsys):
    from orderbook.market_scenario import load_market

    code, out, err = _cli(capsys, "map", str(EXAMPLES / "two_venues.toml"), "--venue-name",
                          "A", "--json")
    assert code == 0, err
    data = json.loads(out)
    ms = load_market(EXAMPLES / "two_venues.toml")
    f = cascade_forecast(replace(ms.venue("A").scenario, steps=ms.steps))
    assert data["scenario"].endswith("venue A")
    assert data["forecast"]["liquidated_accounts"] == f.liquidated_accounts > 0


def test_cli_help_lists_map(capsys):
    code, out, _ = _cli(capsys, "--help")
    assert code == 0 and "map" in out and "static cascade forecast" in out
