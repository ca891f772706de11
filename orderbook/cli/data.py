"""The market-data commands: ``orderbook replay`` (LOBSTER) and ``depth`` (Binance USD-M)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

from ..events import INT64_MAX, Side
from ..slippage import slippage
from .output import _bar, _table

__all__ = ["add_commands", "cmd_depth", "cmd_replay", "parse_injection"]

DEFAULT_SELLS = "10,50,100,500"


def _sizes(text: str, lot: Decimal) -> list[int]:
    """--sell sizes (base units) as whole numbers of lots of ``lot``."""
    sizes = []
    for part in text.split(","):
        try:
            size = Decimal(part.strip())
        except ArithmeticError:
            raise ValueError(f"--sell sizes must be numbers, got {part.strip()!r}") from None
        if not size.is_finite() or not size > 0:
            raise ValueError(f"--sell sizes must be > 0 and finite, got {part.strip()!r}")
        lots = size / lot
        if lots != lots.to_integral_value():
            raise ValueError(f"--sell size {size} is not a whole number of lots of {lot}")
        if lots > INT64_MAX:
            raise ValueError(f"--sell size {size} is {lots:.0f} lots of {lot}, more than an "
                             f"int64 holds")
        sizes.append(int(lots))
    return sizes


def _nrows(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"must be a whole number in [1, 2**63), got {text!r}")
    return int(text)


def _step(text: str) -> str:
    """--tick-size / --lot-size: a decimal step the capture reader accepts."""
    from ..data.binance import DecimalGrid

    try:
        DecimalGrid(text, "step")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("step ")) from None
    return text


def cmd_depth(args) -> int:
    """Rebuild a Binance depth capture, check it against bookTicker, price forced sells."""
    from ..data.binance import DataError, read_capture, replay

    started = time.perf_counter()
    with _bar(args, [("read capture", None)], "lines") as bar:
        capture = read_capture(args.capture, tick_size=args.tick_size, lot_size=args.lot_size,
                               progress=bar)
    rebuilt = replay(capture)
    check = rebuilt.check_book_tickers()
    seconds = time.perf_counter() - started
    book = rebuilt.book_when(args.at, name="--at")
    tick, lot = book.tick_size, book.lot_size
    sells = _sizes(args.sell, lot)
    if book.best_bid() is None:
        raise DataError(f"the book at --at {args.at} has no bids: nothing to sell into",
                        path=args.capture)
    covered_only = args.snapshot_window
    order_book = book.to_order_book(covered_only=covered_only)
    low, _ = book.coverage
    levels, lots_known, _ = book.depth(Side.BUY, covered_only=covered_only)
    window_levels, window_lots, _ = book.depth(Side.BUY, covered_only=True)
    rows = []
    for lots in sells:
        r = slippage(order_book, Side.SELL, lots)
        rows.append({**r.in_units(tick, lot), "beyond_snapshot": r.worst_price < low,
                     "exceeds_book": r.unfilled > 0})
    summary = rebuilt.summary()
    best_ask = book.best_ask()
    out = {
        "capture": str(args.capture), "seconds": round(seconds, 3), **summary,
        "book_ticker_checked": check.final, "book_ticker_agreed": check.final_full_agreed,
        "update_id": book.update_id, "best_bid": book.best_bid()[0] * tick,
        "best_ask": None if best_ask is None else best_ask[0] * tick,
        "levels": "snapshot window" if covered_only else "all known",
        "bid_levels": levels, "bid_depth": lots_known * lot,
        "window_bid_levels": window_levels, "window_bid_depth": window_lots * lot,
        "sells": rows,
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
          f"{out['best_ask']}")
    which = ("the snapshot's window only (--snapshot-window)" if covered_only
             else "all known levels")
    print(f"bids      {which}: {levels:,} levels, {out['bid_depth']:,} base units; the "
          f"snapshot's complete window holds {window_levels:,} levels, "
          f"{out['window_bid_depth']:,}")
    table = []
    for r in rows:
        avg = "-" if r["average_price"] is None else f"{r['average_price']:.2f}"
        notes = []
        if r["exceeds_book"]:
            held = "the snapshot's window holds" if covered_only else "all known levels hold"
            notes.append(f"more than {held}: {r['unfilled']} unfilled; the cost is of the "
                         f"part that filled")
        elif r["beyond_snapshot"]:
            notes.append("beyond the snapshot window, where known depth is a lower bound: the "
                         "cost is an upper bound")
        table.append([r["size"], avg, r["worst_price"], r["levels"], f"{r['cost_bps']:.2f}",
                      f"{r['cost']:,.2f}", r["unfilled"], "; ".join(notes)])
    print()
    print(_table(["sell", "avg price", "worst", "levels", "bps", "cost", "unfilled", "note"],
                 table, right=set(range(7))))
    return 0


def _window(text: str) -> tuple[float, float]:
    """--window BEFORE,AFTER: seconds, BEFORE >= 0 and AFTER > 0."""
    parts = text.split(",")
    try:
        before, after = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be BEFORE,AFTER in seconds, got {text!r}") \
            from None
    if not (0 <= before < float("inf") and 0 < after < float("inf")):
        raise argparse.ArgumentTypeError(f"must be seconds BEFORE >= 0 and AFTER > 0, got "
                                         f"{text!r}")
    return before, after


def _clock(text: str) -> float:
    # HH:MM[:SS[.fff]] or plain seconds after midnight
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return float(text)
        if len(parts) in (2, 3):
            h, m = int(parts[0]), int(parts[1])
            sec = float(parts[2]) if len(parts) == 3 else 0.0
            return 3600 * h + 60 * m + sec
    except ValueError:
        pass
    raise ValueError(f"time must be HH:MM[:SS] or seconds after midnight, got {text!r}")


def parse_injection(text: str):
    """``"SIDE QTY [limit=PRICE] (row=N | time=HH:MM:SS) [position=front|back|N]"`` as an
    :class:`~orderbook.data.lobster.Injection` (QTY in shares, PRICE in LOBSTER ticks)."""
    from ..data.lobster import Injection

    tokens = text.split()
    if len(tokens) < 3:
        raise ValueError(f"--inject needs SIDE QTY and row=N or time=HH:MM:SS, got {text!r}")
    if not tokens[1].isdigit():
        raise ValueError(f"--inject quantity must be a whole number of shares, got {tokens[1]!r}")
    fields = {"side": tokens[0], "qty": int(tokens[1])}
    for token in tokens[2:]:
        key, sep, value = token.partition("=")
        if not sep or not value:
            raise ValueError(f"--inject takes key=value after SIDE QTY, got {token!r}")
        if key == "limit":
            if not value.isdigit():
                raise ValueError(f"--inject limit must be a price in ticks, got {value!r}")
            fields.update(kind="limit", price=int(value))
        elif key == "row":
            if not value.isdigit():
                raise ValueError(f"--inject row must be a message index, got {value!r}")
            fields["at"] = int(value)
        elif key == "time":
            fields["time"] = _clock(value)
        elif key == "position":
            fields["position"] = int(value) if value.isdigit() else value
        else:
            raise ValueError(f"--inject key must be limit, row, time or position, got {key!r}")
    return Injection(**fields)


def cmd_replay(args) -> int:
    """Replay a LOBSTER message/orderbook pair, optionally with injected orders."""
    from ..data.lobster import replay_files

    book_cls = None
    if args.reference:
        from ..reference import OrderBook as book_cls
    inject = [parse_injection(text) for text in args.inject or ()]
    if args.window is not None and not (args.plot and inject):
        raise ValueError("--window needs --inject and --plot: it is the span the figure shows "
                         "around the injected order")
    with _bar(args, [("replay", None)], "messages") as bar:
        result = replay_files(args.messages, args.orderbook, nrows=args.nrows, inject=inject,
                              book_cls=book_cls, progress=bar)
    if args.json:
        doc = {
            "messages": str(args.messages), "rows": result.n_rows, "levels": result.levels,
            "matched": result.n_matched, "exact": result.n_exact, "entering": result.n_entering,
            "match_rate": result.match_rate, "mismatches": [list(m) for m in result.mismatches],
            "unknown": result.n_unknown, "resync": result.n_resync,
            "resync_inside": result.n_resync_inside, "reattributed": result.n_reattributed,
            "dropped": result.n_dropped, "reconciled": result.n_reconciled,
            "messages_per_second": round(result.messages_per_second),
            "injections": [{
                "side": int(r.injection.side), "qty": r.injection.qty, "kind": r.injection.kind,
                "price": r.injection.price, "row": r.row, "touch_before": r.touch_before,
                "filled": r.filled, "notional": r.notional, "slippage_ticks": r.slippage,
                "levels": r.levels, "beyond_window": r.beyond_window, "resting": r.resting,
            } for r in result.injections],
            "divergence": None if result.divergence is None else result.divergence._asdict(),
        }
        print(json.dumps(doc))
    else:
        print(result.summary())
    if args.plot:
        from ..plot import plot_replay

        plot_replay(result, path=args.plot, window=args.window)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    # Mismatches are listed only before the first injection; any of them means the replay
    # could not reproduce history, which a script should see in the exit status.
    return 1 if result.mismatches else 0


def add_commands(sub) -> None:
    """Add ``replay`` and ``depth`` to the ``orderbook`` parser's subcommands."""
    p = sub.add_parser(
        "replay", help="replay a LOBSTER message/orderbook pair and check every row",
        description="Replay a LOBSTER message file into the order book, compare the rebuilt "
                    "book with the orderbook file after every message, and print the match "
                    "rate, corrections and speed. Exit status 1 if any row before the first "
                    "injection mismatches.")
    p.add_argument("messages", metavar="MESSAGE.csv", help="LOBSTER message file")
    p.add_argument("--orderbook", metavar="ORDERBOOK.csv",
                   help="orderbook file (default: found next to the message file by name)")
    p.add_argument("--nrows", type=_nrows, default=None, metavar="N",
                   help="replay only the first N messages")
    p.add_argument("--inject", action="append", metavar="ORDER",
                   help='inject an order: "SIDE QTY [limit=PRICE] (row=N | time=HH:MM:SS) '
                        '[position=front|back|N]", e.g. "sell 5000 time=10:00" (repeatable)')
    p.add_argument("--reference", action="store_true",
                   help="replay into the pure-Python reference book instead of the compiled one")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw spread and depth over the day; with --inject, the hybrid and the "
                        "historical book around the first injected order (needs matplotlib)")
    p.add_argument("--window", type=_window, default=None, metavar="BEFORE,AFTER",
                   help="with --inject --plot: the seconds shown before and after the first "
                        "injected order (default 30,120)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "depth", help="rebuild a Binance USD-M depth capture and price forced sells on it",
        description="Rebuild the L2 book of a Binance USD-M capture (REST snapshot + depth diffs, "
                    "Binance's sequence rules), check it against the bookTicker stream and print "
                    "the slippage of market sells of the given sizes (base units) against it.")
    p.add_argument("capture", metavar="CAPTURE.gz", help="capture file (gzip or plain text)")
    p.add_argument("--at", default="end", metavar="WHEN",
                   help="end (default), snapshot, a clock time HH:MM[:SS[.fff]] (UTC), or a "
                        "local receive time in ns")
    p.add_argument("--sell", default=DEFAULT_SELLS, metavar="SIZES",
                   help=f"comma-separated sell sizes in base units (default {DEFAULT_SELLS})")
    p.add_argument("--snapshot-window", action="store_true",
                   help="use only the snapshot's price window, where the depth is complete "
                        "(default: every known level; outside the window known depth is a "
                        "lower bound, so a sell that walks there has an upper-bound cost)")
    # every known level is the default now; the old switch still parses
    p.add_argument("--all-levels", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tick-size", type=_step, default="0.1",
                   help="price tick in quote units (default 0.1)")
    p.add_argument("--lot-size", type=_step, default="0.001",
                   help="size step in base units (default 0.001)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_depth)
