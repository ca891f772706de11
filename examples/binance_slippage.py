"""Slippage of forced market sells against a real Binance BTCUSDT book, and a cascade on it.

Usage::

    python examples/binance_slippage.py [CAPTURE] [--at end|snapshot|LOCAL_NS]

CAPTURE defaults to ../shared/data/binance/usdm_btcusdt_20240808.gz beside the repository (an
hftbacktest capture of Binance USD-M depth@0ms, bookTicker and trade streams; MIT). The book is
rebuilt with Binance's documented sequence rules, checked against the bookTicker stream, and cut at
``--at`` (default: the end of the capture).

Depth caveat: the REST snapshot holds the top 1,000 levels a side; after it only levels that change
are known. Inside the snapshot's price window the book is complete; outside it, known depth is a
lower bound, so a sell that walks past the window has a slippage that is an upper bound (flagged).
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

from orderbook import (
    ExplicitBook,
    Liquidity,
    Population,
    Rules,
    Scenario,
    Shock,
    Side,
    Sizing,
    compare,
    slippage,
)
from orderbook.data.binance import read_capture, replay

DEFAULT_CAPTURE = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"
                   / "usdm_btcusdt_20240808.gz")
SIZES_BTC = (10, 50, 100, 500)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", nargs="?", default=str(DEFAULT_CAPTURE))
    parser.add_argument("--at", default="end", help="end, snapshot, or a local time in ns")
    args = parser.parse_args(argv)
    if not Path(args.capture).exists():
        print(f"capture not found: {args.capture}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    capture = read_capture(args.capture)
    parsed = time.perf_counter()
    rebuilt = replay(capture)
    check = rebuilt.check_book_tickers()
    done = time.perf_counter()
    s = rebuilt.summary()
    print(f"capture   {Path(args.capture).name}: {s['lines']:,} lines, parsed in "
          f"{parsed - started:.2f} s, replayed and checked in {done - parsed:.2f} s")
    print(f"sequence  {s['snapshots']} snapshot, {s['diffs']:,} diffs: {s['diffs_applied']:,} "
          f"applied, {s['diffs_stale']} stale, {s['gaps']} gaps, valid at end: "
          f"{s['valid_at_end']}")
    print(f"touch     bookTicker vs book: last bookTicker of each diff {check.final_full_agreed:,}"
          f"/{check.final:,} agree (price and qty); every book state vs the prevailing "
          f"bookTicker {check.state_full_agreed:,}/{check.state_checked:,}; all "
          f"{check.checked:,} bookTickers {100 * check.price_rate:.1f} % on price, "
          f"{100 * check.full_rate:.1f} % on price+qty ({check.on_boundary:,} fall on a diff "
          f"boundary; the rest inside a diff's bundled update range)")

    try:
        book = rebuilt.book_when(args.at, name="--at")
    except ValueError as exc:
        parser.error(str(exc))
    tick, lot = book.tick_size, book.lot_size
    bid, ask = book.best_bid(), book.best_ask()
    low, high = book.coverage
    print(f"\nbook      update id {book.update_id}: best bid {bid[0] * tick} x {bid[1] * lot}, "
          f"best ask {ask[0] * tick} x {ask[1] * lot}")
    for side, name in ((Side.BUY, "bids"), (Side.SELL, "asks")):
        n, lots, deepest = book.depth(side)
        kn, klots, _ = book.depth(side, covered_only=False)
        print(f"depth     {name}: complete window {n:,} levels, {lots * lot} BTC, deepest "
              f"{deepest * tick}; all known levels {kn:,}, {klots * lot} BTC")
    print(f"          snapshot window {low * tick} .. {high * tick} USDT: outside it depth is a "
          f"lower bound")

    order_book = book.to_order_book(covered_only=False)
    print(f"\nforced market sells against all known bids (best bid {bid[0] * tick}):")
    print(f"{'size BTC':>9} {'avg price':>10} {'worst':>9} {'levels':>6} {'slip bps':>8} "
          f"{'USDT/BTC':>9} {'cost USDT':>11} {'unfilled':>8}  note")
    for size in SIZES_BTC:
        r = slippage(order_book, Side.SELL, int(Decimal(size) / lot))
        u = r.in_units(tick, lot)
        note = "beyond snapshot window: upper bound" if r.worst_price < low else ""
        print(f"{size:>9} {u['average_price'].quantize(Decimal('0.01')):>10} "
              f"{u['worst_price']:>9} {r.levels:>6} {r.cost_bps:>8.2f} "
              f"{(u['cost'] / u['filled']).quantize(Decimal('0.01')):>9} {u['cost']:>11,.2f} "
              f"{u['unfilled']:>8}  {note}".rstrip())

    # A cascade on the real book: known levels within 2 % of the mid (far-away stale quotes are
    # left out), 2,000 accounts at 20-100x with entries close to the mid, a 500 BTC market sell.
    mid = (bid[0] + ask[0]) // 2
    seed = ExplicitBook.from_l2(book, price_range=(mid * 98 // 100, mid * 102 // 100),
                                covered_only=False)
    scenario = Scenario(
        tick_size=str(tick), lot_size=str(lot), book=seed,
        population=Population(count=2_000, size=(100, 20_000), leverage=(20.0, 100.0),
                              entry_dispersion=0.002),
        liquidity=Liquidity(rate=20_000, half_life=5.0), shock=Shock(sell=500_000), steps=40)
    rules = {"full": Rules(sizing=Sizing.FULL),
             "partial 25 %": Rules(sizing=Sizing.FRACTION, fraction_ppm=250_000)}
    started = time.perf_counter()
    comparison = compare(rules, scenario)
    print(f"\ncascade   seeded with {len(seed.bids):,} bid / {len(seed.asks):,} ask levels "
          f"within 2 % of {mid * tick}; 500 BTC market sell; "
          f"{time.perf_counter() - started:.1f} s")
    print(f"{'rules':>13} {'accounts':>8} {'liquidated':>10} {'orders':>6} {'gens':>4} "
          f"{'notional USDT':>14} {'drawdown':>8} {'amplif.':>7} {'bad debt':>8}")
    quote = tick * lot
    for row in comparison.table:
        print(f"{row['rules']:>13} {row['accounts']:>8} {row['liquidated_accounts']:>10} "
              f"{row['forced_orders']:>6} {row['generations']:>4} "
              f"{row['liquidated_notional'] * quote:>14,.0f} {row['max_drawdown_pct']:>7.2f}% "
              f"{row['amplification']:>7.2f} {row['bad_debt'] * quote:>8,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
