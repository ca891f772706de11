"""The figure of :func:`orderbook.analysis.plot_liquidation_map`: one instrument's
liquidation map beside its book's depth (matplotlib, imported by the caller's call only).

Three panels share the price axis: the notional each price band would liquidate (bars to the
left: longs below the mid, shorts above), the book's resting depth in the same bands (bars to
the right) and both summed from the mid outward, the shock's notional added to the forced
flow, so that the price where the book's curve catches up with it reads off the figure.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from .margin import contract_value
from .plot import _compact, _matplotlib

#: Bars drawn over the price range when no band is given.
_BARS = 120

_LONG, _SHORT, _BID, _ASK = "tab:red", "tab:green", "tab:blue", "tab:orange"


def _band_rows(rows: np.ndarray, band: int) -> dict:
    """{band's lowest price (ticks): [long, short, bid, ask notional (quote units)]}."""
    out = {}
    for row in rows:
        key = int(row["price"]) // band * band
        cell = out.setdefault(key, [0, 0, 0, 0])
        for n, name in enumerate(("long_notional", "short_notional", "bid_notional",
                                  "ask_notional")):
            cell[n] += int(row[name])
    return out


def _default_range(rows: np.ndarray, reference: float, forecast) -> tuple[int, int]:
    """The book's extent on both sides, the forecast's trough included, with a margin."""
    priced = rows[(rows["bid_lots"] > 0) | (rows["ask_lots"] > 0)]
    lows = [int(priced["price"].min())] if len(priced) else []
    highs = [int(priced["price"].max())] if len(priced) else []
    if forecast is not None:
        lows += [p for p in (forecast.low, forecast.trough) if p is not None]
        highs += [p for p in (forecast.high, forecast.trough) if p is not None]
    if not lows or not highs:   # an empty book: the liquidation prices themselves
        lows.append(int(rows["price"].min()) if len(rows) else int(reference) - 1)
        highs.append(int(rows["price"].max()) if len(rows) else int(reference) + 1)
    lo, hi = min(lows + [int(reference)]), max(highs + [math.ceil(reference)])
    margin = max(1, (hi - lo) // 20)
    return max(0, lo - margin), hi + margin


def plot_map(the_map, instrument: int, path, *, forecast=None, band_ticks=None,
             price_range=None) -> None:
    """Draw ``the_map``'s instrument ``instrument`` and save a PNG to ``path`` (see
    :func:`orderbook.analysis.plot_liquidation_map`)."""
    mpl = _matplotlib()
    ticker = mpl.ticker
    rows = the_map.of(instrument)
    name = the_map.instruments[instrument]
    tick = float(the_map.tick_sizes[instrument])
    money = float(the_map.quote_unit)
    money_label = "coin" if the_map.money == "coin" else "quote ccy"
    mid = the_map.mids[instrument]
    reference = mid if mid is not None else the_map.marks[instrument]
    if reference is None:
        reference = float(rows["price"].mean()) if len(rows) else 1.0
    lo, hi = price_range if price_range is not None else _default_range(rows, reference,
                                                                         forecast)
    band = band_ticks or _nice_band(max(the_map.band_ticks or 1,
                                        math.ceil((hi - lo) / _BARS)))
    cells = _band_rows(rows, band)
    keys = sorted(k for k in cells if k + band > lo and k <= hi)
    prices = np.array(keys, dtype=float)
    values = np.array([cells[k] for k in keys], dtype=float).reshape(-1, 4) * money
    # a bar is centred on its band's prices (a band of one tick: on the level itself)
    centre = (prices + (band - 1) / 2) * tick
    height = band * tick * 0.9

    fig = mpl.Figure(figsize=(13, 8.5), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 0.9], wspace=0.06, left=0.085,
                            right=0.985, top=0.79, bottom=0.08)
    ax_liq = fig.add_subplot(grid[0, 0])
    ax_depth = fig.add_subplot(grid[0, 1], sharey=ax_liq)
    ax_cum = fig.add_subplot(grid[0, 2], sharey=ax_liq)
    compact = _compact(ticker)

    ax_liq.barh(centre, values[:, 0], height=height, color=_LONG, alpha=0.8,
                label="longs (liquidated on a fall: they sell)")
    ax_liq.barh(centre, values[:, 1], height=height, color=_SHORT, alpha=0.8,
                label="shorts (liquidated on a rise: they buy)")
    ax_liq.set_title("liquidations triggered at each price", loc="left", fontsize=10,
                     fontweight="bold")
    ax_liq.set_xlabel(f"position notional at the mark [{money_label}]")
    ax_liq.set_ylabel("price [quote ccy]")   # an inverse venue's money is coin, not its prices
    ax_depth.barh(centre, values[:, 2], height=height, color=_BID, alpha=0.75, label="bids")
    ax_depth.barh(centre, values[:, 3], height=height, color=_ASK, alpha=0.75, label="asks")
    ax_depth.set_title("resting depth at each price", loc="left", fontsize=10,
                       fontweight="bold")
    ax_depth.set_xlabel(f"depth notional at its price [{money_label}]")
    ax_depth.tick_params(axis="y", labelleft=False)

    # Summed from the reference outward: the forced flow a move to each price sets off (plus
    # the shock) against the book that absorbs it on the way.
    shock = _shock_values(the_map, instrument, forecast, reference)
    below = prices + band <= reference + band / 2   # the bands under the reference
    for side, mask, (liq_col, depth_col), colours in (
            ("below", below, (0, 2), (_LONG, _BID)), ("above", ~below, (1, 3), (_SHORT, _ASK))):
        order = np.argsort(-prices[mask]) if side == "below" else np.argsort(prices[mask])
        if not len(order):
            continue
        y = centre[mask][order]
        forced = np.cumsum(values[mask][order][:, liq_col]) + shock[0 if side == "below" else 1]
        depth = np.cumsum(values[mask][order][:, depth_col])
        ax_cum.plot(forced, y, color=colours[0], lw=1.6, drawstyle="steps-mid",
                    label="summed: shock + " + ("longs" if side == "below" else "shorts"))
        ax_cum.plot(depth, y, color=colours[1], lw=1.6, ls="--", drawstyle="steps-mid",
                    label="summed: " + ("bids" if side == "below" else "asks"))
    ax_cum.set_title("summed from the mid outward", loc="left", fontsize=10,
                     fontweight="bold")
    ax_cum.set_xlabel(f"cumulative notional [{money_label}]")
    ax_cum.tick_params(axis="y", labelleft=False)
    ax_cum.set_xlim(left=0)
    # one money scale for the two bar panels, so that a bar of forced flow and a bar of depth
    # of the same length are the same notional
    widest = float(values[:, :4].max()) if len(values) else 1.0
    ax_liq.set_xlim(widest * 1.05 or 1.0, 0)
    ax_depth.set_xlim(0, widest * 1.05 or 1.0)

    price_fmt = ticker.FuncFormatter(_price_axis(the_map.tick_sizes[instrument]))
    for ax in (ax_depth, ax_cum):
        ax.axhline(reference * tick, color="black", lw=1.0, ls=":")
    for ax in (ax_liq, ax_depth, ax_cum):
        ax.xaxis.set_major_formatter(compact)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
        ax.grid(alpha=0.3)
        ax.set_ylim(lo * tick, (hi + 1) * tick)
    ax_liq.yaxis.set_major_formatter(price_fmt)
    tick_size = the_map.tick_sizes[instrument]
    handles = [ax_liq.axhline(reference * tick, color="black", lw=1.0, ls=":",
                              label=f"mid before the shock "
                                    f"{_price_text(reference, tick_size)}")]
    if forecast is not None and forecast.trough is not None:
        trough = forecast.trough * tick
        # from the forecast's own reference (the mid rounded down), as its table says
        origin = forecast.reference or reference
        move = 100.0 * (forecast.trough - origin) / origin if origin else 0.0
        for ax in (ax_liq, ax_depth, ax_cum):
            line = ax.axhline(trough, color="purple", lw=1.3, ls="--",
                              label=f"forecast trough {_price_text(forecast.trough, tick_size)}"
                                    f" ({move:+.2f} %)")
        handles.append(line)
    # One legend for the three panels, above them: inside an axes it would cover bars or
    # curves wherever the data put them.
    for ax in (ax_liq, ax_depth, ax_cum):   # (the trough line is in every panel: once)
        labels = {h.get_label() for h in handles}
        handles += [h for h in ax.get_legend_handles_labels()[0]
                    if h.get_label() not in labels]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.895), ncol=4,
               fontsize=8.5, frameon=False)

    outside = _outside(rows, lo, hi, money)
    fig.suptitle(f"{name}: liquidation map beside the book's depth", fontsize=13, y=0.985,
                 va="top")
    fig.text(0.5, 0.94, _subtitle(the_map, instrument, forecast, band, tick, money_label,
                                   outside), ha="center", va="top", fontsize=9.5)
    fig.savefig(path, format="png")


def _shock_values(the_map, instrument: int, forecast, reference: float) -> tuple:
    """(sold, bought) notional of the forecast's shock valued at the reference price (quote
    ccy); zeros without a forecast."""
    if forecast is None:
        return 0.0, 0.0
    inverse, k = the_map.money == "coin", the_map.ks[instrument]
    ref = max(1, round(reference))
    unit = float(the_map.quote_unit)
    return (contract_value(inverse, k, ref, forecast.shock_sell_lots) * unit,
            contract_value(inverse, k, ref, forecast.shock_buy_lots) * unit)


def _outside(rows: np.ndarray, lo: int, hi: int, money: float) -> tuple[float, float]:
    """Liquidation notional whose price lies below / above the range drawn (quote ccy)."""
    below = rows["price"] < lo
    above = rows["price"] > hi
    return (float(rows["long_notional"][below].sum() + rows["short_notional"][below].sum())
            * money,
            float(rows["long_notional"][above].sum() + rows["short_notional"][above].sum())
            * money)


def _price_text(ticks: float, tick_size: Decimal) -> str:
    """A price in ticks (a mid may be half a tick) in price units, exactly."""
    exact = Decimal(int(ticks)) if float(ticks).is_integer() else Decimal(repr(float(ticks)))
    return f"{(exact * tick_size).normalize():,f}"


def _price_axis(tick_size: Decimal):
    """Axis labels in price units with the tick's decimals, trailing zeros dropped, so that
    every label of an axis reads alike (110, 95, 97,420.5)."""
    places = max(0, -tick_size.normalize().as_tuple().exponent)

    def fmt(value, _=None):
        text = f"{value:,.{places}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    return fmt


def _nice_band(ticks: int) -> int:
    """The smallest 1, 2 or 5 x 10**n ticks at least ``ticks``, so bands start at round
    prices."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= ticks:
                return step * scale
        scale *= 10


def _subtitle(the_map, instrument, forecast, band, tick, money_label, outside) -> str:
    fmt = _compact_text
    parts = [f"bars of {(Decimal(band) * the_map.tick_sizes[instrument]).normalize():,f} in "
             f"price ({band:,} tick{'s' if band != 1 else ''} of "
             f"{the_map.tick_sizes[instrument]})"]
    if outside[0] or outside[1]:
        parts.append(f"liquidations outside the range: {fmt(outside[0])} below, "
                     f"{fmt(outside[1])} above [{money_label}]")
    line = "; ".join(parts)
    if forecast is not None:
        state = "book side exhausted" if forecast.book_exhausted else "fixed point"
        line += (f"\nstatic forecast ({state}): {forecast.liquidated_accounts:,} accounts, "
                 f"{forecast.liquidated_lots:,} lots, "
                 f"{fmt(forecast.liquidated_notional * float(the_map.quote_unit))} "
                 f"{money_label} liquidated in {forecast.rounds:,} rounds; "
                 f"no refill, recovery or agents")
    return line


def _compact_text(value: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:,.3g}{suffix}"
    return f"{value:,.3g}"
