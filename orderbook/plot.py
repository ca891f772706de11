"""Figures of scenario runs (:func:`plot_result`, :func:`plot_comparison`), of runs of several
venues (:func:`plot_market`) and of LOBSTER replays (:func:`plot_replay`); they need
matplotlib.

matplotlib is imported inside the functions, so ``import orderbook`` never needs it. The figures
are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas attached explicitly: no
display, no pyplot state, and the pyplot backend of the caller (say a notebook's) is left alone.

Units on the axes: prices in quote currency (ticks × ``scenario.tick_size``), sizes in lots
(the lot size is given in the label), money in quote currency (quote units × the quote unit,
which defaults to ``tick_size * lot_size``), time in seconds of the run's clock
(docs/time.md); a figure whose cascade ends early zooms on it, with the whole run in a strip
above.

A liquidation record is drawn at the time of the liquidator's round that made it
(:attr:`~orderbook.scenario.Result.record_time`); records without notional (shortfall covers)
carry no price and are not placed.
"""

from __future__ import annotations

import math
import textwrap
from decimal import Decimal
from types import SimpleNamespace

import numpy as np

from .events import EventKind, Settlement, Side
from .metrics import LIQUIDATION_KINDS
from .scenario import Shock, quote_unit

__all__ = ["plot_result", "plot_comparison", "plot_replay", "plot_market", "plot_ladder",
           "animate_cascade", "animation_writer"]

_INSTALL_HINT = ('plotting needs matplotlib, which is not installed: '
                 'pip install "orderbook-cascade[plot]"  (or: pip install matplotlib)')


def _matplotlib():
    """The matplotlib modules the figures use, or a clear ImportError."""
    try:
        import matplotlib
        from matplotlib import cm, collections, colors, lines, patches, ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return SimpleNamespace(Figure=Figure, FigureCanvasAgg=FigureCanvasAgg, ticker=ticker,
                           colors=colors, cm=cm, colormaps=matplotlib.colormaps,
                           collections=collections, patches=patches, lines=lines)


class _Units:
    """Conversion factors of a scenario: quote currency per tick, base per lot, quote per unit."""

    price_label = money_label = "quote ccy"

    def __init__(self, scenario, quote: float | None = None):
        # ``scenario``: a Scenario, or a Contract with ``quote`` (its scenario's quote unit)
        self.money_label = _money_label(scenario)
        lot = Decimal(scenario.lot_size)
        self.tick = float(Decimal(scenario.tick_size))
        self.lot = float(lot)
        self.money = float(quote_unit(scenario)) if quote is None else quote
        self.lot_text = f"{lot.normalize():f}"


def _money_label(scenario) -> str:
    """What a scenario's money is on an axis: quote currency, or an inverse venue's coin."""
    inverse = getattr(scenario, "settlement", Settlement.LINEAR) == Settlement.INVERSE
    return "coin" if inverse else "quote ccy"


def _spread(steps: np.ndarray) -> np.ndarray:
    """Spread the records of one step over [step - 0.35, step + 0.35], in record order."""
    x = steps.astype(float)
    for step in np.unique(steps):
        idx = np.flatnonzero(steps == step)
        if len(idx) > 1:
            x[idx] += np.linspace(-0.35, 0.35, len(idx))
    return x


def _spread_times(times: np.ndarray, width: float) -> np.ndarray:
    """Spread the records made at one time over [t - 0.35 width, t + 0.35 width] (s), in
    record order, so that a round's records do not hide each other."""
    x = times.astype(float)
    for t in np.unique(times):
        idx = np.flatnonzero(times == t)
        if len(idx) > 1:
            x[idx] += np.linspace(-0.35 * width, 0.35 * width, len(idx))
    return x


def _seconds(result) -> tuple[np.ndarray, float]:
    """The series rows' times in seconds and the length of a step in seconds."""
    clock = getattr(result.scenario, "clock", None)
    step_s = (clock.step_ms if clock is not None else 1_000) / 1_000
    series = result.series
    if "time" in (series.dtype.names or ()):
        return np.asarray(series["time"], dtype=float) / 1_000, step_s
    return np.asarray(series["step"], dtype=float) * step_s, step_s


def _record_seconds(result) -> np.ndarray:
    times = getattr(result, "record_time", None)
    if times is None:
        return result.record_step * _seconds(result)[1]
    return np.asarray(times, dtype=float) / 1_000


def _cascade_window(results) -> tuple[float, float] | None:
    """The span (s) worth zooming on: from a step before the first liquidation to the last
    one plus a margin (a fifth of the cascade, at least five steps); None when the runs have
    no liquidations or the cascade fills most of the run anyway."""
    first, last, end, step_s = [], [], 0.0, 1.0
    for result in results:
        t, step_s = _seconds(result)
        end = max(end, float(t[-1]) if len(t) else 0.0)
        records = result.forced_orders
        liquidating = np.isin(records["kind"], LIQUIDATION_KINDS)
        if liquidating.any():
            times = _record_seconds(result)[liquidating]
            first.append(float(times.min()))
            last.append(float(times.max()))
    if not first:
        return None
    # (a bar at the run's first instant is centred on 0: leave room for its left half)
    lo = max(-0.6 * step_s, min(first) - step_s)
    hi = max(last) + max(5 * step_s, 0.2 * (max(last) - lo))
    if hi >= 0.6 * end:
        return None
    return lo, hi


def _overview(fig, ax, result, window, units) -> None:
    """A strip with the whole run's last price and the zoomed span shaded."""
    t, _ = _seconds(result)
    ax.plot(t, _masked(result.series["last"]) * units.tick, color="black", lw=1.0,
            drawstyle="steps-post")
    ax.axvspan(*window, color="tab:orange", alpha=0.18, lw=0)
    ax.set_xlim(t[0] if len(t) else 0, t[-1] if len(t) else 1)
    ax.set_yticks([])
    # ticks on top, so that the panel below keeps its title clear
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", labelsize=8, pad=1)
    ax.text(0.995, 0.9, f"whole run, {t[-1] if len(t) else 0:,.0f} s; below: the cascade, "
            f"{max(0.0, window[0]):,.0f} to {window[1]:,.0f} s (shaded)", transform=ax.transAxes,
            ha="right", va="top", fontsize=9, fontweight="bold")


def _time_label(result, window) -> str:
    clock = getattr(result.scenario, "clock", None)
    step_ms = clock.step_ms if clock is not None else 1_000
    cadence = clock.cadence_ms if clock is not None else step_ms
    what = (f"time [s] (a step is {step_ms:,} ms; the liquidator runs every {cadence:,} ms)")
    return what + ("" if window is None else "; zoomed on the cascade")


def _compact(ticker):
    """Tick formatter: 950, 12k, 3.4M (SI prefixes from 1,000 up, never milli)."""
    eng = ticker.EngFormatter(sep="")
    return ticker.FuncFormatter(lambda v, pos=None: eng(v, pos) if abs(v) >= 1000 else f"{v:g}")


def _fmt_amplification(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.2f}×"


def _masked(values) -> np.ndarray:
    out = np.asarray(values, dtype=float).copy()
    out[out == 0] = np.nan  # 0 = no trade / no mark yet
    return out


def plot_result(result, path) -> None:
    """Draw one run on one figure (four panels over time, zoomed on the cascade when it ends
    early, the whole run in a strip above) and save it as PNG to ``path``.

    1. price: last trade and mark, with every forced fill as a point (colour = generation, area
       ∝ notional), and at the right the lots that forced orders took at each price;
    2. resting depth within 1 % and 5 % of the mid, bids and asks;
    3. liquidated notional per step, stacked by generation;
    4. the insurance fund's change since the start.

    A run over several instruments (``Scenario.instruments``) gets the figure of
    :func:`_plot_instruments` instead.
    """
    if getattr(result, "instrument_series", None):
        _plot_instruments(result, path)
        return
    mpl = _matplotlib()
    ticker, mcolors = mpl.ticker, mpl.colors
    scenario, series, records = result.scenario, result.series, result.forced_orders
    units = _Units(scenario)
    summary = result.summary
    steps, step_s = _seconds(result)   # the rows' times in s
    window = _cascade_window([result])
    n_gen = int(records["generation"].max()) + 1 if len(records) else 0
    cmap = mcolors.ListedColormap(
        mpl.colormaps["viridis"](np.linspace(0.0, 0.92, max(n_gen, 1))))
    norm = mcolors.BoundaryNorm(np.arange(-0.5, max(n_gen, 1) + 0.5), cmap.N)

    fig = mpl.Figure(figsize=(13, 12.8), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(5, 2, width_ratios=[5.2, 1.25],
                            height_ratios=[0.75, 3.2, 2, 2, 1.6], hspace=0.14, wspace=0.04,
                            left=0.085, right=0.94, top=0.9, bottom=0.052)
    ax_price = fig.add_subplot(grid[1, 0])
    ax_depth = fig.add_subplot(grid[2, 0], sharex=ax_price)
    ax_notional = fig.add_subplot(grid[3, 0], sharex=ax_price)
    ax_fund = fig.add_subplot(grid[4, 0], sharex=ax_price)
    ax_profile = fig.add_subplot(grid[1, 1], sharey=ax_price)
    if window is not None:
        _overview(fig, fig.add_subplot(grid[0, 0]), result, window, units)
    money_fmt = _compact(ticker)
    price_fmt = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}")

    # (1) price ---------------------------------------------------------------------------
    trade_time = getattr(result, "trade_time", None)
    if trade_time is not None and len(trade_time) == len(result.trades) and len(trade_time):
        # every trade at its time: finer than the series' one row a step
        ax_price.plot(np.r_[trade_time / 1_000, steps[-1]],
                      np.r_[result.trades["price"], result.trades["price"][-1]] * units.tick,
                      color="black", lw=1.4, label="last trade", drawstyle="steps-post")
    else:
        ax_price.plot(steps, _masked(series["last"]) * units.tick, color="black", lw=1.4,
                      label="last trade", drawstyle="steps-post")
    ax_price.plot(steps, _masked(series["mark"]) * units.tick, color="tab:orange", lw=1.2,
                  ls="--", label="mark (each step)", drawstyle="steps-post")
    start = summary.get("start_mid")
    if start:
        ax_price.axhline(start * units.tick, color="grey", lw=0.8, ls=":",
                         label="mid before the shock")
    record_time = _record_seconds(result)
    priced = records["notional"] > 0
    x_rec = np.full(len(records), np.nan)
    x_rec[priced] = _spread_times(record_time[priced], min(
        step_s, result.scenario.clock.cadence_ms / 1_000))
    if priced.any():
        sizes = records["notional"][priced].astype(float)
        area = 10 + 110 * np.sqrt(sizes / sizes.max())
        ax_price.scatter(x_rec[priced], records["avg_price"][priced] * units.tick, s=area,
                         c=records["generation"][priced], cmap=cmap, norm=norm, alpha=0.8,
                         edgecolors="black", linewidths=0.3, zorder=3,
                         label="forced fill, avg price (colour = generation,\n"
                               "area ∝ notional; x = the round's time)")
    ax_price.set_ylabel(f"price [{units.price_label}]")
    ax_price.yaxis.set_major_formatter(price_fmt)
    ax_price.set_title("price", loc="left", fontsize=10, fontweight="bold")
    ax_price.legend(loc="best", fontsize=8, framealpha=0.9)

    # (1b) lots taken by forced orders at each price ---------------------------------------
    trades = result.trades
    forced = trades[(trades["order_id"] < 0) & (trades["kind"] == EventKind.TRADE)]
    drew = False
    if len(forced):
        prices = np.unique(forced["price"])
        gap = np.diff(prices).min() if len(prices) > 1 else 1
        lo, hi = ax_price.get_ylim()
        height = max(0.8 * gap * units.tick, (hi - lo) / 250)
        for side, colour, label in ((Side.SELL, "tab:red", "forced sells\n(took bids)"),
                                    (Side.BUY, "tab:green", "forced buys\n(took asks)")):
            part = forced[forced["side"] == side]
            if not len(part):
                continue
            px, inverse = np.unique(part["price"], return_inverse=True)
            lots = np.bincount(inverse, weights=part["qty"].astype(float))
            ax_profile.barh(px * units.tick, lots, height=height, color=colour, alpha=0.75,
                            label=label)
            drew = True
    if drew:
        ax_profile.legend(loc="upper right", fontsize=7.5, framealpha=0.9)
    else:
        ax_profile.text(0.5, 0.5, "no forced\nfills", ha="center", va="center",
                        transform=ax_profile.transAxes, color="grey")
        ax_profile.set_xlim(0, 1)
    ax_profile.set_title("taken by forced orders", loc="left", fontsize=9, fontweight="bold")
    ax_profile.set_xlabel(f"lots (1 lot = {units.lot_text})", fontsize=8.5)
    ax_profile.tick_params(axis="y", labelleft=False)
    ax_profile.tick_params(axis="x", labelsize=8)
    ax_profile.xaxis.set_major_formatter(money_fmt)
    ax_profile.xaxis.set_major_locator(ticker.MaxNLocator(3) if drew else ticker.NullLocator())
    ax_profile.grid(axis="x", alpha=0.3)

    # (2) resting depth --------------------------------------------------------------------
    for field, colour, ls, label in (
            ("bid_depth_1pct", "tab:blue", "-", "bids within 1 % of mid"),
            ("bid_depth_5pct", "tab:purple", "-", "bids within 5 %"),
            ("ask_depth_1pct", "tab:blue", ":", "asks within 1 %"),
            ("ask_depth_5pct", "tab:purple", ":", "asks within 5 %")):
        ax_depth.plot(steps, series[field], color=colour, ls=ls, lw=1.3, label=label)
    ax_depth.set_ylabel(f"resting depth\n[lots, 1 lot = {units.lot_text}]")
    ax_depth.yaxis.set_major_formatter(money_fmt)
    ax_depth.set_ylim(bottom=0)
    # (the bands follow the mid down: depth at fixed prices is the ladder's, plot_ladder)
    ax_depth.set_title("book depth near the mid (bands move with the mid; at fixed prices: "
                       "orderbook run --ladder)", loc="left", fontsize=10, fontweight="bold")
    ax_depth.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, framealpha=0.9)

    # (3) liquidated notional per step by generation ---------------------------------------
    if priced.any():
        # one bar per liquidator wake-up, as wide as its period
        wakes = np.unique(record_time[priced])
        width = 0.85 * (np.diff(wakes).min() if len(wakes) > 1 else step_s)
        bottom = np.zeros(len(wakes))
        for gen in range(n_gen):
            pick = priced & (records["generation"] == gen)
            if not pick.any():
                continue
            per_wake = np.zeros(len(wakes))
            np.add.at(per_wake, np.searchsorted(wakes, record_time[pick]),
                      records["notional"][pick].astype(float))
            nz = per_wake > 0
            ax_notional.bar(wakes[nz], per_wake[nz] * units.money, bottom=bottom[nz],
                            width=width, color=cmap(norm(gen)), linewidth=0)
            bottom += per_wake * units.money
        mappable = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
        cax = ax_notional.inset_axes([1.03, 0.0, 0.03, 1.0])
        bar = fig.colorbar(mappable, cax=cax)
        bar.set_label("generation", fontsize=9)
        bar.ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=8))
        bar.ax.tick_params(labelsize=8)
        bar.ax.minorticks_off()
    else:
        ax_notional.text(0.5, 0.5, "no liquidations", ha="center", va="center",
                         transform=ax_notional.transAxes, color="grey")
        ax_notional.set_ylim(0, 1)
    ax_notional.set_ylabel(f"liquidated notional\n[{units.money_label}]")
    ax_notional.yaxis.set_major_formatter(money_fmt)
    ax_notional.set_title("liquidated notional per liquidator round, by generation (the round "
                          "an account entered the queue)", loc="left", fontsize=10,
                          fontweight="bold")

    # (4) insurance fund -------------------------------------------------------------------
    fund0 = getattr(getattr(scenario, "rules", None), "insurance_fund", None)
    fund = np.asarray(series["insurance_fund"], dtype=float)
    base = float(fund0) if fund0 is not None else (fund[0] if len(fund) else 0.0)
    change = (fund - base) * units.money
    ax_fund.plot(steps, change, color="tab:green", lw=1.4, drawstyle="steps-post")
    if len(change) and not np.any(change):
        ax_fund.set_ylim(-1, 1)
    ax_fund.axhline(0, color="grey", lw=0.8, ls=":")
    ax_fund.set_ylabel(f"fund change\n[{units.money_label}]")
    ax_fund.yaxis.set_major_formatter(money_fmt)
    ax_fund.set_title(f"insurance fund, change since the start "
                      f"(start: {money_fmt(base * units.money)} {units.money_label})",
                      loc="left", fontsize=10, fontweight="bold")

    for ax in (ax_price, ax_depth, ax_notional):
        ax.tick_params(axis="x", labelbottom=False)
    for ax in (ax_price, ax_depth, ax_notional, ax_fund):
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_locator(ticker.MaxNLocator(5))
    if window is not None:
        ax_fund.set_xlim(*window)
    elif len(steps):
        ax_fund.set_xlim(steps[0] - 0.6 * step_s, steps[-1] + 0.6 * step_s)
    ax_fund.set_xlabel(_time_label(result, window))

    fig.suptitle(_title(summary, units), fontsize=12.5, y=0.985, va="top")
    left = _unresolved_text(summary, units)
    if left is not None:
        fig.text(0.5, 0.922, f"⚠ {left} (not in bad debt)", ha="center", va="center",
                 fontsize=11, fontweight="bold", color=_UNRESOLVED_COLOUR)
    fig.savefig(path, format="png")


def _plot_instruments(result, path) -> None:
    """Draw a run over several instruments: one price panel per instrument (last trade and
    mark, every forced fill on that book as a point coloured by generation), the liquidated
    notional per step stacked by instrument, and at the right the liquidated notional by
    generation and instrument (how the cascade moved from book to book) with each
    instrument's figures."""
    mpl = _matplotlib()
    ticker, mcolors = mpl.ticker, mpl.colors
    scenario, records, summary = result.scenario, result.forced_orders, result.summary
    contracts = scenario.instruments
    names = [c.name for c in contracts]
    count = len(contracts)
    money = float(quote_unit(scenario))
    ccy = _money_label(scenario)
    n_gen = int(records["generation"].max()) + 1 if len(records) else 0
    cmap = mcolors.ListedColormap(
        mpl.colormaps["viridis"](np.linspace(0.0, 0.92, max(n_gen, 1))))
    norm = mcolors.BoundaryNorm(np.arange(-0.5, max(n_gen, 1) + 0.5), cmap.N)
    colours = [mpl.colormaps["tab10"](i % 10) for i in range(count)]
    step_s = scenario.clock.step_ms / 1_000
    cadence_s = scenario.clock.cadence_ms / 1_000

    fig = mpl.Figure(figsize=(14, 3.0 * count + 4.2), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(count + 1, 2, width_ratios=[4.2, 1.9],
                            height_ratios=[3] * count + [2.2], hspace=0.16, wspace=0.22,
                            left=0.075, right=0.97, top=1 - 1.1 / (3.0 * count + 4.2),
                            bottom=0.45 / (3.0 * count + 4.2) + 0.02)
    money_fmt = _compact(ticker)
    price_fmt = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}")
    axes = []
    liquidating = np.isin(records["kind"], LIQUIDATION_KINDS)
    for i, c in enumerate(contracts):
        ax = fig.add_subplot(grid[i, 0], sharex=axes[0] if axes else None)
        axes.append(ax)
        series = result.instrument_series[c.name]
        steps = np.asarray(series["time"], dtype=float) / 1_000
        tick = float(Decimal(c.tick_size))
        ax.plot(steps, _masked(series["last"]) * tick, color="black", lw=1.3,
                label="last trade", drawstyle="steps-post")
        ax.plot(steps, _masked(series["mark"]) * tick, color="tab:orange", lw=1.1, ls="--",
                label="mark", drawstyle="steps-post")
        start = c.book.mid   # before the shock
        mine = (records["instrument"] == i) & (records["notional"] > 0) & liquidating
        if mine.any():
            sizes = records["notional"][mine].astype(float)
            ax.scatter(_spread_times(_record_seconds(result)[mine], min(step_s, cadence_s)),
                       records["avg_price"][mine] * tick,
                       s=10 + 90 * np.sqrt(sizes / sizes.max()), c=records["generation"][mine],
                       cmap=cmap, norm=norm, alpha=0.8, edgecolors="black", linewidths=0.3,
                       zorder=3, label="forced fill (colour = generation, area ∝ notional)")
        shocked = c.shock != Shock()
        key = f"instrument.{c.name}."
        ax.set_title(f"{c.name}{' (shocked)' if shocked else ''}: "
                     f"{summary[key + 'liquidated_accounts']:,} accounts liquidated here, "
                     f"mid down {summary[key + 'max_drawdown_pct']:.2f} % at most",
                     loc="left", fontsize=10, fontweight="bold")
        if start:
            ax.axhline(start * tick, color="grey", lw=0.8, ls=":")
        ax.set_ylabel(f"{c.name} price\n[quote ccy]")
        ax.yaxis.set_major_formatter(price_fmt)
        ax.yaxis.set_major_locator(ticker.MaxNLocator(5))
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelbottom=False)
        if i == 0:
            ax.legend(loc="best", fontsize=8, framealpha=0.9)

    ax_n = fig.add_subplot(grid[count, 0], sharex=axes[0])
    steps, _ = _seconds(result)
    bottom = np.zeros(len(steps))
    for i, name in enumerate(names):
        values = np.asarray(result.instrument_series[name]["liquidated_notional"], float) * money
        ax_n.bar(steps, values, bottom=bottom, width=0.85 * step_s, color=colours[i],
                 linewidth=0, label=name)
        bottom += values
    ax_n.set_ylabel(f"liquidated notional\n[{ccy}]")
    ax_n.yaxis.set_major_formatter(money_fmt)
    ax_n.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax_n.grid(alpha=0.3)
    ax_n.set_title("liquidated notional per step (since the previous row), by instrument",
                   loc="left", fontsize=10, fontweight="bold")
    window = _cascade_window([result])
    if window is not None:
        ax_n.set_xlim(*window)
    elif len(steps):
        ax_n.set_xlim(steps[0] - 0.6 * step_s, steps[-1] + 0.6 * step_s)
    ax_n.set_xlabel(_time_label(result, window) + (
        "" if window is None else f" (the run lasts {steps[-1]:,.0f} s)"))

    # Right: notional by generation (rows) and instrument (columns).
    ax_m = fig.add_subplot(grid[0:max(1, count - 1), 1])
    matrix = np.zeros((max(n_gen, 1), count))
    for g, i, value in zip(records["generation"][liquidating],
                           records["instrument"][liquidating],
                           records["notional"][liquidating], strict=True):
        matrix[int(g), int(i)] += float(value) * money
    shown = np.where(matrix > 0, matrix, np.nan)
    image = ax_m.imshow(shown, aspect="auto", cmap="Reds", interpolation="nearest")
    ax_m.set_xticks(range(count), names)
    ax_m.set_yticks(range(matrix.shape[0]))
    ax_m.set_ylabel("generation")
    ax_m.set_title(f"liquidated notional by generation\nand instrument [{ccy}]", loc="left",
                   fontsize=10, fontweight="bold")
    # (a coin's amounts are small: two decimals)
    whole = ticker.EngFormatter(places=2 if ccy == "coin" else 0, sep="")
    for (g, i), value in np.ndenumerate(matrix):
        if value > 0 and matrix.shape[0] <= 16:
            ax_m.text(i, g, whole(value), ha="center", va="center", fontsize=8,
                      color="white" if value > 0.6 * np.nanmax(shown) else "black")
    bar = fig.colorbar(image, ax=ax_m, fraction=0.06, pad=0.03)
    bar.ax.yaxis.set_major_formatter(money_fmt)
    bar.ax.tick_params(labelsize=8)

    ax_t = fig.add_subplot(grid[max(1, count - 1):, 1])
    ax_t.axis("off")
    lines = [f"{summary.get('liquidated_accounts', 0):,} of {summary.get('accounts', 0):,} "
             f"accounts liquidated,", f"{summary.get('generations', 0)} generations"]
    if "liquidated_accounts_unshocked" in summary:
        lines += [f"{summary['liquidated_accounts_unshocked']:,} of them held no shocked",
                  "instrument (contagion)"]
    lines.append("")
    for c in contracts:
        key = f"instrument.{c.name}."
        first = summary[key + "first_generation"]
        lines.append(f"{c.name}: {whole(summary[key + 'liquidated_notional'] * money)} "
                     f"{ccy} liquidated, first in gen. {'-' if first is None else first}")
    pop = scenario.population
    coin = getattr(pop, "coin_fraction", 0.0)
    if coin:
        named = pop.coin or next(c.name for c in contracts if c.haircut_ppm is not None)
        haircut = next(c.haircut_ppm for c in contracts if c.name == named)
        lines += ["", f"collateral: {coin:.0%} in {named}", f"(haircut {haircut / 1e4:g} %),",
                  f"the rest in quote currency; {summary.get('conversions', 0):,} sales",
                  ("of it through its spot book for " if any(c.spot for c in contracts)
                   else "of it to the venue for ")
                  + f"{whole(summary.get('converted_notional', 0) * money)}"]
    ax_t.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=9.5,
              transform=ax_t.transAxes, family="monospace")

    where = (f"on {named} and quote collateral" if coin else "on one collateral")
    plural = "instrument" if count == 1 else "instruments"
    fig.suptitle(f"Liquidation cascade across {count} {plural} {where}: "
                 f"{summary.get('liquidated_accounts', 0):,} accounts liquidated, "
                 f"{summary.get('generations', 0)} generations", fontsize=12.5, y=0.995,
                 va="top")
    left = _unresolved_text(summary, _Units(contracts[0], quote=money))
    if left is not None:
        fig.text(0.5, 1 - 0.75 / (3.0 * count + 4.2), f"⚠ {left} (not in bad debt)",
                 ha="center", va="center", fontsize=11, fontweight="bold",
                 color=_UNRESOLVED_COLOUR)
    fig.savefig(path, format="png")


def plot_market(result, path) -> None:
    """Draw a run of several venues (:class:`orderbook.market_scenario.MarketResult`): a
    price panel per venue and instrument, the indexes, the accounts liquidated per step on
    each venue; saved as PNG to ``path``."""
    from ._plot_market import plot_market as draw  # that module builds on this one's helpers

    draw(result, path)


def plot_ladder(result, path) -> None:
    """Draw the book's depth ladder before the shock and after the cascade, with the levels
    each generation's forced orders took, beside the price path on one price axis; saved as
    PNG to ``path``. See :func:`orderbook._plot_ladder.plot_ladder` and docs/figures.md.

    Examples
    --------
    >>> from orderbook import default_scenario, run
    >>> from orderbook.plot import plot_ladder
    >>> plot_ladder(run(default_scenario(0.05)), "ladder.png")  # doctest: +SKIP
    """
    from ._plot_ladder import plot_ladder as draw  # that module builds on this one's helpers

    draw(result, path)


def animate_cascade(result, path, *, fps: float = 4.0) -> None:
    """Animate the cascade (the ladder and the price, frame by frame) as .gif or .mp4 at
    ``path``; needs a run with ``book_levels``. See
    :func:`orderbook._plot_ladder.animate_cascade` and docs/figures.md.

    Examples
    --------
    >>> from orderbook import default_scenario, run
    >>> from orderbook.plot import animate_cascade
    >>> result = run(default_scenario(0.05), book_levels=500)
    >>> animate_cascade(result, "cascade.gif")  # doctest: +SKIP
    """
    from ._plot_ladder import animate_cascade as draw

    draw(result, path, fps=fps)


def animation_writer(path) -> str:
    """The matplotlib writer an animation at ``path`` needs, checked before a run: "pillow"
    (.gif) or "ffmpeg" (.mp4). ValueError for another suffix, RuntimeError when the writer is
    missing, ImportError without matplotlib."""
    from ._plot_ladder import animation_writer as check

    return check(path)


def _title(summary: dict, units: _Units) -> str:
    accounts = summary.get("accounts")
    of = f" of {accounts:,}" if accounts is not None else ""
    line1 = (f"Liquidation cascade: {summary.get('liquidated_accounts', 0):,}{of} accounts "
             f"liquidated, {summary.get('generations', 0)} generations, "
             f"{summary.get('forced_orders', 0):,} forced orders")
    notional = summary.get("liquidated_notional", 0) * units.money
    line2 = (f"max drawdown {summary.get('max_drawdown_pct', 0.0):.2f} % · amplification "
             f"{_fmt_amplification(summary.get('amplification'))} (move with / without "
             f"liquidations) · liquidated notional {notional:,.0f} {units.money_label}")
    return f"{line1}\n{line2}"


def _money_text(amount: float) -> str:
    """An amount of quote currency for a table cell: whole units from 100 up, cents below (so
    that a small loss does not round to 0)."""
    if amount == 0:
        return "0"
    return f"{amount:,.0f}" if abs(amount) >= 100 else f"{amount:,.2f}"


def _unresolved_text(summary: dict, units: _Units) -> str | None:
    """What a run left unresolved, in a few words for a figure, or None."""
    count, queued = summary.get("unresolved_accounts", 0), summary.get("queue_left", 0)
    if not count and not queued:
        return None
    parts = []
    if count:
        equity = _money_text(summary["unresolved_equity"] * units.money)
        parts.append(f"{count:,} account{'s' if count != 1 else ''} at negative equity "
                     f"({equity} {units.money_label} on {summary['unresolved_lots']:,} lots)")
    if queued:
        parts.append(f"{queued:,} still queued")
    return "unresolved at the end: " + ", ".join(parts)


#: The colour of what a run left unresolved, on every figure.
_UNRESOLVED_COLOUR = "#c0392b"


#: Columns of the comparison table: (header, summary key, formatter, width in characters).
def _columns(units: _Units):
    money = lambda v: _money_text(v * units.money)  # noqa: E731
    return (
        ("liquidated\naccounts", "liquidated_accounts", lambda v: f"{v:,}"),
        ("forced\norders", "forced_orders", lambda v: f"{v:,}"),
        ("generations", "generations", str),
        (f"liq. notional\n[{units.money_label}]", "liquidated_notional", money),
        ("max drawdown\n[%]", "max_drawdown_pct", lambda v: f"{v:.2f}"),
        ("amplification", "amplification", _fmt_amplification),
        (f"bad debt\n[{units.money_label}]", "bad_debt", money),
        ("ADL\nrecords", "adl_count", lambda v: f"{v:,}"),
        ("unresolved\naccts (lots)", "unresolved_accounts", None),
        (f"unresolved eq.\n[{units.money_label}]", "unresolved_equity", money),
        ("queue left\n(queued at end)", "queue_left", lambda v: f"{v:,}"),
        (f"insurance fund [{units.money_label}]\nstart → end", "insurance_fund_end", money),
    )


#: Columns whose non-zero value marks a loss the other columns do not show.
_UNRESOLVED_KEYS = ("unresolved_accounts", "unresolved_equity", "queue_left")


def _cell(summary: dict, key: str, fmt, fund_start: float | None = None) -> str:
    """One cell of the comparison table; the fund's is "start → end" given its start (quote
    units, ``Rules.insurance_fund``)."""
    value = summary.get(key)
    if key == "unresolved_accounts":
        return f"{value:,} ({summary['unresolved_lots']:,})" if value else "0"
    if value is None and key != "amplification":
        return "n/a"
    if key == "insurance_fund_end" and fund_start is not None:
        return f"{fmt(fund_start)} → {fmt(value)}"
    return fmt(value)


def _wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters (words kept whole where
    they fit): a rule set's full name in a legend or a table cell, never cut."""
    return "\n".join(textwrap.wrap(str(text), width, break_on_hyphens=False)) or str(text)


def _same_paths(paths: dict) -> dict:
    """{name: the first earlier name whose path (an array) is the same, or None}: lines that
    would hide each other."""
    out, seen = {}, []
    for name, path in paths.items():
        out[name] = next((other for other, p in seen if len(p) == len(path)
                          and np.array_equal(p, path, equal_nan=True)), None)
        seen.append((name, path))
    return out


def _dashes(index: int, group: int):
    """The line style of the ``index``-th of ``group`` lines that lie on one path: the first
    solid, the others dashes that leave a share of each of the others showing."""
    if index == 0:
        return "-"
    return (4.0 * (index - 1), (4.0, 4.0 * (group - 1)))


def _path_styles(paths: dict) -> dict:
    """{name: (line style, legend note)} for lines that may lie on one another."""
    same = _same_paths(paths)
    groups: dict = {}
    for name, first in same.items():
        groups.setdefault(first if first is not None else name, []).append(name)
    styles = {}
    for head, members in groups.items():
        for index, name in enumerate(members):
            note = "" if index == 0 else _wrap(f"(the same path as {head})", 34)
            styles[name] = (_dashes(index, len(members)), note)
    return styles


def _solid_handles(mpl, ax) -> list:
    """Legend entries for an axis's lines drawn solid: a dashed line that lies on another
    shows too little of its colour in a legend's short sample (its note says so instead)."""
    return [mpl.lines.Line2D([], [], color=line.get_color(), lw=line.get_linewidth(),
                             ls=":" if line.get_linestyle() == ":" else "-",
                             label=line.get_label())
            for line in ax.get_lines() if not line.get_label().startswith("_")]


def _summary_table(ax, header: list, rows: list, widths: list, *, flags=None) -> None:
    """A table filling ``ax``: ``header`` and ``rows`` of cell texts (may hold line breaks),
    ``widths`` in characters; each row as tall as its tallest cell. ``flags``: {(row, col):
    "cell"} cells to mark as losses left unresolved (red on red), or "text" (red text)."""
    ax.axis("off")
    lines = [max(cell.count("\n") + 1 for cell in row) for row in [header] + rows]
    widths = np.asarray(widths, dtype=float)
    table = ax.table(cellText=rows, colLabels=header, colWidths=list(widths / widths.sum()),
                     cellLoc="center", bbox=[0.0, 0.0, 1.0, 1.0])
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (row, col), cell in table.get_celld().items():
        cell.set_height(lines[row] + 0.6)   # rescaled to the bbox
        if row == 0:
            cell.set_facecolor("#e8e8e8")
            cell.set_text_props(fontweight="bold", fontsize=7.5)
        elif col == 0:
            cell.set_text_props(fontweight="bold")
        flag = (flags or {}).get((row, col))
        if flag == "cell":
            cell.set_facecolor("#f6d5d1")
        if flag:
            cell.set_text_props(color=_UNRESOLVED_COLOUR, fontweight="bold")


def _table_lines(header: list, rows: list) -> int:
    """The text lines a table needs, with each row's padding (for the figure's height)."""
    return sum(max(cell.count("\n") + 1 for cell in row) + 0.6 for row in [header] + rows)


def plot_comparison(comparison, path) -> None:
    """Draw each rule set's price path (last trade) on one axis, with a table of the summaries
    below (queue left and the insurance fund from start to end among the columns), and save
    the figure as PNG to ``path``. Rule sets are named in full (wrapped, never cut); lines
    that lie on one another are dashed so that each shows, and the legend says which."""
    mpl = _matplotlib()
    ticker = mpl.ticker
    results = comparison.results
    if not results:
        raise ValueError("comparison has no results to plot")
    units = _Units(next(iter(results.values())).scenario)
    columns = _columns(units)
    summaries = [result.summary for result in results.values()]
    names = {name: _wrap(name, 30) for name in results}
    cells = [[names[name] + ("\n⚠ mark fixed at the index" if sm.get("static_mark") else "")]
             + [_cell(sm, key, fmt, result.scenario.rules.insurance_fund
                      if key == "insurance_fund_end" else None)
                for _, key, fmt in columns]
             for (name, result), sm in zip(results.items(), summaries, strict=True)]
    header = ["rule set"] + [h for h, _, _ in columns]
    widths = ([max(len(line) for cell in cells for line in cell[0].split("\n")) + 2]
              + [max(11, max(len(row[c]) for row in cells) + 2,
                     max(len(line) for line in header[c].split("\n")) + 1)
                 for c in range(1, len(header))])
    table_height = 0.17 * _table_lines(header, cells) + 0.1   # inches
    height = 6.6 + table_height
    fig = mpl.Figure(figsize=(15, height), dpi=100)
    mpl.FigureCanvasAgg(fig)
    # the axis above, with room under it for its time label; the table at the bottom
    ax = fig.add_axes([0.07, (table_height + 0.95) / height, 0.64,
                       (height - table_height - 1.5) / height])
    start = None
    window = _cascade_window(results.values())
    styles = _path_styles({name: _masked(r.series["last"]) for name, r in results.items()})
    for name, result in results.items():
        u = _Units(result.scenario)
        series = result.series
        sm = result.summary
        left = _unresolved_text(sm, u)
        short = ", ".join(text for count, text in (
            (sm.get("unresolved_accounts", 0), f"{sm.get('unresolved_accounts', 0):,} unresolved"),
            (sm.get("queue_left", 0), f"{sm.get('queue_left', 0):,} queued"),
            (sm.get("static_mark"), "mark fixed at the index")) if count)
        style, note = styles[name]
        label = "\n".join(part for part in (_wrap(name, 34), note,
                                             _wrap(f"⚠ {short}", 34) if short else "") if part)
        t, _ = _seconds(result)
        ax.plot(t, _masked(series["last"]) * u.tick, lw=1.6, ls=style, drawstyle="steps-post",
                label=label)
        if left is not None and len(series):
            # A cross at the end of the path: this rule set ends with losses left open.
            # (at the zoomed window's right edge when the run goes on past it)
            ax.plot(t[-1] if window is None else min(t[-1], window[1]),
                    series["last"][-1] * u.tick, marker="X", ms=11, clip_on=False,
                    color=_UNRESOLVED_COLOUR, mec="white", mew=0.8, zorder=4, ls="none",
                    label="_unresolved")
        start = start or result.summary.get("start_mid")
    if start:
        ax.axhline(start * units.tick, color="grey", lw=0.8, ls=":", label="mid before the shock")
    ax.set_ylabel(f"last trade price [{units.price_label}]")
    longest = max(results.values(), key=lambda r: len(r.series))
    t, step_s = _seconds(longest)
    if window is not None:
        ax.set_xlim(*window)
    elif len(t):
        ax.set_xlim(t[0] - 0.6 * step_s, t[-1] + 0.6 * step_s)
    # a path still queued or unresolved at the end is marked at the run's end: say so
    ax.set_xlabel(_time_label(longest, window) + (
        "" if window is None else f" (the runs last {t[-1]:,.0f} s)"))
    ax.yaxis.set_major_formatter(
        ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"))
    ax.grid(alpha=0.3)
    ax.legend(handles=_solid_handles(mpl, ax), title="rule set", loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=9)
    ax.set_title("Price path under each rule set (same scenario, same starting state)",
                 fontsize=12.5)

    # the table spans the figure's width, under the axis and its legend
    ax_table = fig.add_axes([0.02, 0.15 / height, 0.96, table_height / height])
    keys = [None] + [key for _, key, _ in columns]
    flags = {(row + 1, col): "cell" for row, sm in enumerate(summaries)
             for col, key in enumerate(keys) if key in _UNRESOLVED_KEYS and sm.get(key)}
    flags.update({(row + 1, 0): "text" for row, sm in enumerate(summaries)
                  if sm.get("static_mark")})
    _summary_table(ax_table, header, cells, widths, flags=flags)
    fig.savefig(path, format="png")


#: US dollars per LOBSTER tick (LOBSTER prices are dollars x 10,000).
_LOBSTER_TICK_DOLLARS = 1e-4


def _clock(ticker, span: float):
    """Tick formatter: seconds after midnight as HH:MM, with seconds (and tenths) when the
    axis spans less than three hours (two minutes)."""
    def fmt(v, _=None):
        hours, rest = divmod(float(v), 3600.0)
        minutes, seconds = divmod(rest, 60.0)
        text = f"{int(hours):02d}:{int(minutes):02d}"
        if span < 120:
            return f"{text}:{seconds:04.1f}"
        return f"{text}:{int(seconds):02d}" if span < 3 * 3600 else text

    return ticker.FuncFormatter(fmt)


def _replay_title(result) -> str:
    line = (f"LOBSTER replay: {result.n_rows:,} messages, {result.levels} level(s) per side; "
            f"{100 * result.match_rate:.2f} % of rows match the orderbook file "
            f"({100 * result.n_exact / result.n_rows:.2f} % exactly, the rest after a "
            f"window-entering resync)")
    div = result.divergence
    if div is None:
        return line
    return (f"{line}\nhybrid: from row {div.first_row:,} (first injected order) "
            f"{div.matched:,} of {div.rows:,} rows still match history")


def plot_replay(result, ax=None, *, path=None, zoom=True, window=None):
    """Draw a LOBSTER replay (:class:`orderbook.data.lobster.ReplayResult`) over the day, or
    a hybrid replay around its injected order.

    Over the day: the reconstructed spread (in cents; LOBSTER ticks are $0.0001) and the
    visible depth in the N published levels per side (shares), against time of day. Rows that
    did not match the orderbook file are marked with red ticks under the spread; injected
    orders (hybrid replay) with dashed vertical lines at their arrival.

    A replay with injected orders is drawn, unless ``zoom`` is False or ``ax`` is given,
    around the first one instead: the hybrid book's best bid and ask and depth beside
    history's over ``window`` (seconds before and after its arrival; default 30 and 120), its
    fills at their prices, and the two books level by level at its arrival with what it took
    at each price; the day in a strip above (``orderbook._plot_replay.plot_injection``).

    Parameters
    ----------
    result : ReplayResult
        What :func:`orderbook.data.lobster.replay` returned.
    ax : matplotlib Axes, optional
        Draw on it: spread on ``ax``, depth on a twin y axis (the day's figure). By default a
        new figure with a spread panel above a depth panel.
    path : str or Path, optional
        Save the figure there as PNG.
    zoom : bool
        With injections, draw the window around the first (default) rather than the day.
    window : (float, float), optional
        Seconds before and after the first injected order that the zoomed figure shows.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from orderbook.data.lobster import replay_files
    >>> from orderbook.plot import plot_replay
    >>> result = replay_files("AMZN_2012-06-21_34200000_57600000_message_1.csv")  # doctest: +SKIP
    >>> plot_replay(result, path="amzn_replay.png")  # doctest: +SKIP
    """
    if result.injections and ax is None and zoom:
        from ._plot_replay import DEFAULT_WINDOW, plot_injection

        return plot_injection(result, path, window=DEFAULT_WINDOW if window is None else window)
    mpl = _matplotlib()
    ticker = mpl.ticker
    time = np.asarray(result.time, dtype=float)
    if len(time) == 0:
        raise ValueError("result has no rows to plot")
    spread = np.asarray(result.spread, dtype=float) * (_LOBSTER_TICK_DOLLARS * 100)
    spread[np.asarray(result.spread) <= 0] = np.nan  # a side was empty: no spread
    if ax is None:
        fig = mpl.Figure(figsize=(12, 6.5), dpi=100)
        mpl.FigureCanvasAgg(fig)
        grid = fig.add_gridspec(2, 1, height_ratios=[1, 1], hspace=0.08, left=0.08, right=0.97,
                                top=0.9, bottom=0.09)
        ax_spread = fig.add_subplot(grid[0])
        ax_depth = fig.add_subplot(grid[1], sharex=ax_spread)
        ax_spread.tick_params(axis="x", labelbottom=False)
    else:
        fig, ax_spread = ax.figure, ax
        ax_depth = ax.twinx()
        # The twin is drawn on top; lift the spread above it with a see-through background.
        ax_spread.set_zorder(ax_depth.get_zorder() + 1)
        ax_spread.patch.set_visible(False)

    ax_spread.plot(time, spread, color="black", lw=0.9, drawstyle="steps-post",
                   label="spread (best ask - best bid)")
    ax_spread.set_ylabel("spread [¢]")
    ax_spread.set_ylim(bottom=0)
    bad = np.flatnonzero(~np.asarray(result.matched))
    if result.divergence is not None:
        bad = bad[bad < result.divergence.first_row]  # after an injection they are the point
    if len(bad):
        ax_spread.plot(time[bad], np.zeros(len(bad)), "|", color="tab:red", ms=10, mew=1.2,
                       label=f"{len(bad):,} rows not matching the orderbook file",
                       clip_on=False)
    for rep in result.injections:
        inj = rep.injection
        ax_spread.axvline(time[rep.row], color="tab:purple", ls="--", lw=1.0,
                          label=f"injected {inj.side.name.lower()} {inj.qty:,} ({inj.kind})")
        if ax is None:
            ax_depth.axvline(time[rep.row], color="tab:purple", ls="--", lw=1.0)

    bid_colour, ask_colour = "tab:green", "tab:red"
    ax_depth.plot(time, result.bid_depth, color=bid_colour, lw=0.8, drawstyle="steps-post",
                  alpha=0.85, label=f"bid depth (top {result.levels} levels)")
    ax_depth.plot(time, result.ask_depth, color=ask_colour, lw=0.8, drawstyle="steps-post",
                  alpha=0.85, label=f"ask depth (top {result.levels} levels)")
    ax_depth.set_ylabel("visible depth [shares]")
    ax_depth.set_ylim(bottom=0)
    ax_depth.yaxis.set_major_formatter(_compact(ticker))

    span = float(time[-1] - time[0])
    clock = _clock(ticker, span)
    for each in (ax_spread, ax_depth):
        each.xaxis.set_major_formatter(clock)
        each.xaxis.set_major_locator(ticker.MaxNLocator(8))
        each.grid(alpha=0.3)
    ax_spread.set_xlim(time[0] - 0.01 * span - 1e-9, time[-1] + 0.01 * span + 1e-9)
    if ax is None:
        ax_depth.set_xlabel("time of day (exchange time)")
        ax_spread.legend(loc="upper right", fontsize=8, framealpha=0.9)
        ax_depth.legend(loc="upper right", fontsize=8, framealpha=0.9)
        fig.suptitle(_replay_title(result), fontsize=11)
    else:
        lines = ax_spread.get_legend_handles_labels()
        more = ax_depth.get_legend_handles_labels()
        ax_spread.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8,
                         framealpha=0.9)
        ax_spread.set_xlabel("time of day (exchange time)")
    if path is not None:
        fig.savefig(path, format="png")
    return fig
