"""Command line for real market data: ``orderbook replay`` (LOBSTER) and ``orderbook depth``
(Binance USD-M captures). Registered by :mod:`orderbook.cli`, which owns errors and exit codes.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

from .events import Side
from .slippage import slippage

__all__ = ["add_commands", "cmd_depth"]

DEFAULT_SELLS = "10,50,100,500"


def _sizes(text: str) -> list[Decimal]:
    sizes = []
    for part in text.split(","):
        try:
            size = Decimal(part.strip())
        except ArithmeticError:
            raise ValueError(f"--sell sizes must be numbers, got {part.strip()!r}") from None
        if not size > 0:
            raise ValueError(f"--sell sizes must be > 0, got {part.strip()!r}")
        sizes.append(size)
    return sizes


def _at(text: str, rebuilt):
    if text == "end":
        return rebuilt.book_at()
    if text == "snapshot":
        return rebuilt.book_at(local_ns=int(rebuilt.states["local_ns"][0]))
    if text.isdigit():
        return rebuilt.book_at(local_ns=int(text))
    raise ValueError(f"--at must be end, snapshot or a local time in ns, got {text!r}")


def cmd_depth(args) -> int:
    """Rebuild a Binance depth capture, check it against bookTicker, price forced sells."""
    from .data.binance import read_capture, replay

    started = time.perf_counter()
    capture = read_capture(args.capture, tick_size=args.tick_size, lot_size=args.lot_size)
    rebuilt = replay(capture)
    check = rebuilt.check_book_tickers()
    seconds = time.perf_counter() - started
    book = _at(args.at, rebuilt)
    tick, lot = book.tick_size, book.lot_size
    order_book = book.to_order_book(covered_only=not args.all_levels)
    low, _ = book.coverage
    rows = []
    for size in _sizes(args.sell):
        lots = size / lot
        if lots != lots.to_integral_value():
            raise ValueError(f"--sell size {size} is not a whole number of lots of {lot}")
        r = slippage(order_book, Side.SELL, int(lots))
        rows.append({**r.in_units(tick, lot), "beyond_snapshot": r.worst_price < low})
    summary = rebuilt.summary()
    out = {
        "capture": str(args.capture), "seconds": round(seconds, 3), **summary,
        "book_ticker_checked": check.final, "book_ticker_agreed": check.final_full_agreed,
        "update_id": book.update_id, "best_bid": book.best_bid()[0] * tick,
        "best_ask": book.best_ask()[0] * tick, "sells": rows,
    }
    if args.json:
        print(json.dumps(out, default=str))
        return 0
    print(f"capture   {Path(args.capture).name}: {summary['lines']:,} lines rebuilt and checked "
          f"in {seconds:.2f} s")
    print(f"sequence  {summary['snapshots']} snapshot(s), {summary['diffs']:,} diffs: "
          f"{summary['diffs_applied']:,} applied, {summary['diffs_stale']} stale, "
          f"{summary['gaps']} gaps")
    rate = check.final_full_agreed / check.final if check.final else float("nan")
    print(f"touch     bookTicker at each diff boundary: {check.final_full_agreed:,}/"
          f"{check.final:,} agree on price and size ({100 * rate:.2f} %)")
    print(f"book      update id {book.update_id}: best bid {out['best_bid']}, best ask "
          f"{out['best_ask']}; {'all known levels' if args.all_levels else 'snapshot window'}")
    print(f"\n{'sell':>10} {'avg price':>12} {'worst':>10} {'levels':>6} {'bps':>7} "
          f"{'cost':>12} {'unfilled':>9}")
    for r in rows:
        avg = "-" if r["average_price"] is None else f"{r['average_price']:.2f}"
        note = "  (beyond the snapshot window: an upper bound)" if r["beyond_snapshot"] else ""
        print(f"{r['size']:>10} {avg:>12} {r['worst_price']:>10} {r['levels']:>6} "
              f"{r['cost_bps']:>7.2f} {r['cost']:>12,.2f} {r['unfilled']:>9}{note}")
    return 0


def add_commands(sub) -> None:
    """Add ``depth`` to the ``orderbook`` parser's subcommands."""
    p = sub.add_parser(
        "depth", help="rebuild a Binance USD-M depth capture and price forced sells on it",
        description="Rebuild the L2 book of a Binance USD-M capture (REST snapshot + depth diffs, "
                    "Binance's sequence rules), check it against the bookTicker stream and print "
                    "the slippage of market sells of the given sizes (base units) against it.")
    p.add_argument("capture", metavar="CAPTURE.gz", help="capture file (gzip or plain text)")
    p.add_argument("--at", default="end", metavar="WHEN",
                   help="end (default), snapshot, or a local receive time in ns")
    p.add_argument("--sell", default=DEFAULT_SELLS, metavar="SIZES",
                   help=f"comma-separated sell sizes in base units (default {DEFAULT_SELLS})")
    p.add_argument("--all-levels", action="store_true",
                   help="also use levels outside the snapshot's window (known depth there is a "
                        "lower bound, so slippage is an upper bound)")
    p.add_argument("--tick-size", default="0.1", help="price tick in quote units (default 0.1)")
    p.add_argument("--lot-size", default="0.001", help="size step in base units (default 0.001)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_depth)
