"""The static analysis command: ``orderbook map`` (:mod:`orderbook.analysis`).

It builds the scenario's starting state (no run), prints the static cascade forecast, the
criticality table (liquidation notional triggered per band / the depth there) and the
liquidation map as a ladder of price bands, and with ``--plot`` draws the map.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import replace
from decimal import Decimal

from .._market import Market
from ..analysis import DEFAULT_BAND_PPM, _forecast, _instrument, _map, _venue, plot_liquidation_map
from ..events import PPM
from ..market_scenario import is_market_file
from .output import CLIError, _describe, _money, _price, _print_json, _table
from .scenarios import _load, _load_market

__all__ = ["add_commands", "cmd_map"]

#: Bands each way the tables show by default (more when the forecast trough lies farther).
DEFAULT_BANDS = 10


def _band_ppm(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of ppm in [1, {PPM:,}], got "
                                         f"{text!r}") from None
    if not 1 <= value <= PPM:
        raise argparse.ArgumentTypeError(f"must be a whole number of ppm in [1, {PPM:,}], got "
                                         f"{text!r}")
    return value


def _bands(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def add_commands(sub, common) -> None:
    """Register ``map`` on the ``orderbook`` parser's subcommands ``sub``; ``common`` adds
    the scenario file, ``--scale`` and ``--venue`` as the other scenario commands take them."""
    p = sub.add_parser(
        "map", help="liquidation map and static cascade forecast of a scenario's start",
        description="Build the scenario's starting state (no run) and print the static "
                    "cascade forecast (the shock and the liquidations it triggers walked "
                    "through the starting book to a fixed point: no refill, recovery or "
                    "agents), the criticality of each price band (liquidation notional "
                    "triggered there / the depth that absorbs it) and the liquidation map "
                    "beside the book's depth. See docs/analysis.md.")
    common(p, counterfactual=False)
    p.add_argument("--instrument", metavar="NAME",
                   help="the instrument to show (default: the first)")
    p.add_argument("--band-ppm", type=_band_ppm, default=DEFAULT_BAND_PPM, metavar="N",
                   help=f"width of the price bands in ppm of the mid (default "
                        f"{DEFAULT_BAND_PPM:,} = {DEFAULT_BAND_PPM / 1e4:g} %%)")
    p.add_argument("--bands", type=_bands, default=None, metavar="N",
                   help=f"bands shown each way from the mid (default {DEFAULT_BANDS}, or "
                        f"down to the forecast trough's band and one more)")
    p.add_argument("--venue-name", metavar="NAME",
                   help="with several venues ([[venues]]): the venue to map, from its own "
                        "starting state")
    p.add_argument("--json", action="store_true",
                   help="print the forecast, the criticality table and the map as one JSON "
                        "object")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the map beside the book's depth (needs matplotlib)")
    p.set_defaults(func=cmd_map)


def cmd_map(args) -> int:
    if args.scenario is not None and is_market_file(args.scenario):
        scenario, source = _market_venue(args)
    elif args.venue_name is not None:
        raise CLIError(f"--venue-name {args.venue_name}: the scenario has one venue; "
                       f"--venue-name picks one of a file with [[venues]]")
    else:
        _, scenario, source = _load(args)
    # one state read for the forecast, the tables and the figure
    venue = _venue(Market(scenario))
    try:
        chosen = _instrument(venue.names, _instrument_arg(args.instrument, venue.names))
    except (KeyError, ValueError) as exc:
        raise CLIError(f"--instrument {args.instrument}: "
                       f"{exc.args[0] if exc.args else exc}") from None
    forecast = _forecast(venue, chosen, args.band_ppm)
    banded = _map(venue, chosen, None, forecast.band_ticks)
    if args.json:
        _print_json({"scenario": source, "instrument": forecast.name,
                     "tick_size": str(forecast.tick_size),
                     "lot_size": str(banded.lot_sizes[chosen]),
                     "quote_unit": str(forecast.quote_unit), "money": forecast.money,
                     "forecast": forecast.to_dict(),
                     "map": {"band_ticks": banded.band_ticks, "levels": banded.to_rows(),
                             "unpriced": _unpriced(banded, chosen)}})
    else:
        print(_format(scenario, source, forecast, banded, chosen, args.bands))
    if args.plot:
        plot_liquidation_map(_map(venue, chosen, None, None), args.plot, instrument=chosen,
                             forecast=forecast)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _market_venue(args):
    """(the scenario of the venue --venue-name of a market file, its source): the venue's
    starting state alone (an index from other venues does not move in a static map)."""
    if args.venue is not None:
        raise CLIError("--venue (a rules preset) applies to a one-venue scenario; set "
                       "[venues.rules] venue in the file")
    ms, source = _load_market(args)
    names = [v.name for v in ms.venues]
    if args.venue_name is None:
        raise CLIError(f"map takes one venue; this file holds several ([[venues]]): give "
                       f"--venue-name (one of {', '.join(names)})")
    if args.venue_name not in names:
        raise CLIError(f"--venue-name {args.venue_name}: not a venue of the file (one of "
                       f"{', '.join(names)})")
    scenario = replace(ms.venue(args.venue_name).scenario, steps=ms.steps)
    return scenario, f"{source}, venue {args.venue_name}"


def _instrument_arg(text: str | None, names: list):
    """--instrument as a name, or an index when no instrument has that name."""
    if text is None:
        return 0
    if text not in names and text.isascii() and text.isdigit():
        return int(text)
    return text


def _unpriced(the_map, chosen: int) -> dict:
    row = the_map.unpriced[the_map.unpriced["instrument"] == chosen]
    return {name: int(row[name][0]) for name in row.dtype.names[2:8]} if len(row) else {}


# ------------------------------------------------------------------------------ the text
def _format(scenario, source, forecast, banded, chosen, bands) -> str:
    tick, unit, ccy = forecast.tick_size, forecast.quote_unit, forecast.money
    out = [_describe(scenario, source), ""]
    out += _forecast_lines(forecast, tick, unit, ccy)
    shown = _shown_bands(forecast, bands)
    out += ["", _criticality_text(forecast, tick, unit, ccy, shown)]
    out += ["", _ladder_text(forecast, banded, chosen, tick, unit, ccy, shown)]
    return "\n".join(out)


def _pct(ticks: int, reference: int | None) -> str:
    if not reference:
        return ""
    return f", {100.0 * (ticks - reference) / reference:+.2f} % from the mid"


def _forecast_lines(f, tick: Decimal, unit: Decimal, ccy: str) -> list[str]:
    move = {-1: "a fall", 1: "a rise", 0: "no trade"}[f.direction]
    if f.trough is None:
        trough = ["trough", "-", "", "nothing traded" if not f.book_exhausted
                  else "the book side was empty"]
    else:   # prices are in quote currency, on an inverse venue too (its money is coin)
        trough = ["trough", _price(f.trough, tick), "quote",
                  f"{f.trough:,} ticks{_pct(f.trough, f.reference)} ({move})"]
    shock = []
    if f.shock_sell_lots:
        shock.append(f"sells {f.shock_sell_lots:,} lots")
    if f.shock_buy_lots:
        shock.append(f"buys {f.shock_buy_lots:,} lots")
    gens = ", ".join(f"{n:,}" for n in f.accounts_by_round)
    rows = [
        ["start mark", "-" if f.start_mark is None else _price(f.start_mark, tick), "quote",
         "-" if f.start_mark is None else f"{f.start_mark:,} ticks"],
        ["shock", " and ".join(shock) or "none", "", "at market, on this instrument"],
        trough,
        ["liquidated accounts", f"{f.liquidated_accounts:,}", "", "on every instrument"],
        ["liquidated lots", f"{f.liquidated_lots:,}", "lots", "forced orders on this book"],
        ["liquidated notional", _money(f.liquidated_notional, unit), ccy,
         f"{f.liquidated_notional:,} {ccy} units of {unit}: what they filled"],
        ["rounds", f"{f.rounds:,}", "", f"generations of the walk{': ' + gens if gens else ''}"],
        ["book exhausted", "yes" if f.book_exhausted else "no", "",
         f"{f.unfilled_lots:,} lots found no order" if f.book_exhausted
         else "the fixed point was reached inside the book"],
    ]
    lines = _wrap(f"static cascade forecast on {f.name}: the shock and the liquidations it "
                  f"triggers walked through the starting book until no new account is crossed "
                  f"(no refill, recovery, agents or clock; FULL market closes; "
                  f"docs/analysis.md)")
    lines.append(_table(["forecast", "value", "unit", "note"], rows, right={1}))
    if f.caveats:
        lines.append("a run of this scenario can differ from the forecast where:")
        for caveat in f.caveats:
            lines += _wrap(caveat, "  - ", "    ")
    return lines


def _wrap(text: str, first: str = "", rest: str = "") -> list[str]:
    return textwrap.wrap(text, 100, initial_indent=first, subsequent_indent=rest)


def _shown_bands(f, bands: int | None) -> int:
    """Bands shown each way: ``bands``, or enough to reach the trough's band and one more."""
    if bands is not None:
        return bands
    need = DEFAULT_BANDS
    if f.trough is not None and f.reference is not None:
        distance = abs(f.reference - f.trough)
        need = max(need, distance // f.band_ticks + 2)
    return need


def _band_text(row, tick: Decimal) -> str:
    return f"{_price(int(row['low']), tick)} - {_price(int(row['high']), tick)}"


def _criticality_text(f, tick: Decimal, unit: Decimal, ccy: str, shown: int) -> str:
    if f.reference is None:
        return "criticality: the book is empty and has no mark"
    width = Decimal(f.band_ticks) * tick
    head = _wrap(
        f"criticality: bands of {f.band_ppm / 1e4:g} % of the mid ({f.band_ticks:,} ticks = "
        f"{width.normalize():,f} in price) from {_price(f.reference, tick)} outward. ratio: "
        f"liquidation notional triggered in the band (at its liquidation prices) / the depth "
        f"resting there (at its prices), above 1 (marked !) where forced flow outweighs the "
        f"depth. cum.: "
        f"(the shock's lots + the liquidation lots from the mid to the band) / the depth lots "
        f"there, above 1 as far as the shock and what it sets off outrun the book")
    rows = []
    table = f.criticality[f.criticality["band"] < shown]
    for row in table:
        ratio, cumulative = float(row["ratio"]), float(row["cumulative_ratio"])
        rows.append(["below" if row["direction"] < 0 else "above", f"{int(row['band']):,}",
                     _band_text(row, tick), _count(int(row["liquidation_lots"])),
                     _amount(int(row["liquidation_notional"]), unit),
                     _count(int(row["depth_lots"])), _amount(int(row["depth_notional"]), unit),
                     _ratio_text(ratio) + (" !" if ratio > 1 else "  "),
                     _ratio_text(cumulative)])
    if not rows:
        return "\n".join(head + ["(no band near the mid holds a liquidation price or depth)"])
    crit = f.criticality
    inside = int(((crit["ratio"] > 1) & (crit["depth_lots"] > 0)).sum())
    beyond = crit[crit["depth_lots"] == 0]
    tail = [f"ratio > 1 in {inside:,} band{'s' if inside != 1 else ''} holding depth; "
            f"{len(beyond):,} band{'s' if len(beyond) != 1 else ''} beyond the book's depth "
            f"hold liquidations ({_money(int(beyond['liquidation_notional'].sum()), unit)} "
            f"{ccy})"]
    hidden = len(crit) - len(table)
    if hidden:
        tail.append(f"{hidden:,} farther bands not shown (--bands N, or --json)")
    return "\n".join(head + [_table(
        ["side", "band", "prices (quote)", "liq. lots", f"liq. notional ({ccy})",
         "depth lots", f"depth notional ({ccy})", "ratio", "cum."],
        rows, right={1, 3, 4, 5, 6, 7, 8})] + tail)


def _count(n: int) -> str:
    return f"{n:,}" if n else "-"


def _amount(units: int, unit: Decimal) -> str:
    return _money(units, unit) if units else "-"


def _ratio_text(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.2f}"


def _ladder_text(f, banded, chosen, tick: Decimal, unit: Decimal, ccy: str,
                 shown: int) -> str:
    """The map as a price ladder, highest band first: shorts and asks above the mid, longs
    and bids below, ``shown`` bands each way."""
    rows = banded.of(chosen)
    width = banded.band_ticks
    reference = f.reference if f.reference is not None else 0
    lo = (reference - shown * width) // width * width
    hi = (reference + shown * width) // width * width
    inside = rows[(rows["price"] >= lo) & (rows["price"] <= hi)]
    lines, marked = [], False
    for row in inside[::-1]:
        price = int(row["price"])
        if not marked and price + width <= reference:
            lines.append(["", f"-- mid {_price((banded.mids[chosen] or reference), tick)} --",
                          "", "", "", "", "", ""])
            marked = True
        lines.append([_price(price, tick), _price(price + width - 1, tick),
                      _count(int(row["short_accounts"])),
                      _amount(int(row["short_notional"]), unit),
                      _amount(int(row["ask_notional"]), unit),
                      _amount(int(row["bid_notional"]), unit),
                      _amount(int(row["long_notional"]), unit),
                      _count(int(row["long_accounts"]))])
    outside = rows[(rows["price"] < lo) | (rows["price"] > hi)]
    note = []
    if len(outside):
        below, above = outside[outside["price"] < lo], outside[outside["price"] > hi]
        note.append(f"beyond the ladder: {int(below['long_accounts'].sum()):,} longs "
                    f"({_money(int(below['long_notional'].sum()), unit)} {ccy}) below, "
                    f"{int(above['short_accounts'].sum()):,} shorts "
                    f"({_money(int(above['short_notional'].sum()), unit)} {ccy}) above")
    head = _wrap(f"liquidation map: bands of {width:,} ticks from round prices, highest "
                 f"first; accounts at their positions' liquidation prices (notional at the "
                 f"mark), depth at its prices")
    return "\n".join(head + [_table(
        ["from (quote)", "to", "shorts", f"short notional ({ccy})", f"asks ({ccy})",
         f"bids ({ccy})", f"long notional ({ccy})", "longs"],
        lines, right={0, 1, 2, 3, 4, 5, 6, 7})] + note)
