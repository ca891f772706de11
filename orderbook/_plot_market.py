"""The figure of a market run (:func:`orderbook.plot.plot_market`): venues tied by indexes.

Kept apart from :mod:`orderbook.plot` (the one-venue figures), whose helpers it uses. Units on
the axes: prices in quote currency (ticks x the instrument's tick size), accounts as counts,
time in seconds (the venues share one step; docs/time.md).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from .events import Side
from .metrics import LIQUIDATION_KINDS
from .plot import (
    _cascade_window,
    _cell,
    _masked,
    _matplotlib,
    _money_text,
    _path_styles,
    _record_seconds,
    _solid_handles,
    _spread_times,
    _summary_table,
    _table_lines,
    _Units,
    _wrap,
)

__all__ = ["plot_market", "plot_market_comparison"]


def _step_ms(ms) -> int:
    """The market's step in ms (every venue's clock has the same, orderbook.market_scenario)."""
    return ms.venues[0].scenario.clock.step_ms


def _liquidated_per_step(result, steps: int) -> np.ndarray:
    """Accounts whose first liquidation record came in each step (an account counts once)."""
    records = result.forced_orders
    mask = np.isin(records["kind"], LIQUIDATION_KINDS) & (records["owner"] >= 0)
    owners, first = np.unique(records["owner"][mask], return_index=True)
    at = result.record_step[mask][first]
    return np.bincount(at, minlength=steps)[:steps] if len(owners) else np.zeros(steps, int)


def plot_market(result, path) -> None:
    """Draw a market run (:class:`orderbook.market_scenario.MarketResult`) and save it as PNG.

    One price panel per venue and instrument (last trade, mark, each forced fill at its
    average price: a red triangle down for a sell, green up for a buy, area ∝ notional), a
    panel of every index with the last trades of its legs, and the accounts liquidated per
    step on each venue, stacked. Time in seconds, zoomed on the cascade when it ends early in
    the run.
    """
    mpl = _matplotlib()
    ticker = mpl.ticker
    ms = result.scenario
    panels = []    # (venue, instrument index, instrument name, tick)
    for v in ms.venues:
        s = v.scenario
        specs = [(c.name, c.tick_size) for c in s.instruments] or [("main", s.tick_size)]
        for i, (name, tick) in enumerate(specs):
            panels.append((v.name, i, name, float(Decimal(tick))))
    colours = {v.name: mpl.colormaps["tab10"](n % 10) for n, v in enumerate(ms.venues)}
    step_s = _step_ms(ms) / 1_000
    window = _cascade_window(list(result.venues.values()))
    rows = len(panels) + 2
    height = 2.5 * len(panels) + 5.6
    fig = mpl.Figure(figsize=(13, height), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, 1, height_ratios=[2.5] * len(panels) + [2.6, 1.9],
                            hspace=0.42, left=0.085, right=0.78, top=1 - 0.95 / height,
                            bottom=0.5 / height + 0.02)
    price_fmt = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}")

    def price_axis(ax):
        # a price panel's y axis, grid, hidden step labels and legend at the right
        ax.set_ylabel("price\n[quote ccy]")
        ax.yaxis.set_major_formatter(price_fmt)
        ax.yaxis.set_major_locator(ticker.MaxNLocator(5))
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelbottom=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.9)
    axes = []
    for row, (venue, i, name, tick) in enumerate(panels):
        ax = fig.add_subplot(grid[row, 0], sharex=axes[0] if axes else None)
        axes.append(ax)
        venue_result = result.venues[venue]
        series = result.series(venue, i)
        steps = np.asarray(series["time"], dtype=float) / 1_000
        ax.plot(steps, _masked(series["last"]) * tick, color="black", lw=1.3,
                drawstyle="steps-post", label="last trade")
        ax.plot(steps, _masked(series["mark"]) * tick, color="tab:orange", lw=1.4, ls="--",
                drawstyle="steps-post", label="mark")
        records = venue_result.forced_orders
        mine = ((records["instrument"] == i) & (records["notional"] > 0)
                & np.isin(records["kind"], LIQUIDATION_KINDS))
        if mine.any():
            biggest = float(records["notional"][mine].max())
            for side, marker, colour, label in ((Side.SELL, "v", "tab:red", "forced sell"),
                                                (Side.BUY, "^", "tab:green", "forced buy")):
                pick = mine & (records["side"] == side)
                if not pick.any():
                    continue
                size = records["notional"][pick].astype(float)
                ax.scatter(_spread_times(_record_seconds(venue_result)[pick], step_s),
                           records["avg_price"][pick] * tick,
                           s=12 + 70 * np.sqrt(size / biggest), marker=marker, color=colour,
                           alpha=0.6, edgecolors="black", linewidths=0.3, zorder=3,
                           label=f"{label}\n(avg price; area ∝ notional)")
        summary = venue_result.summary
        start = summary["start_mid"] if i == 0 else start_of(venue_result, name)
        ax.axhline(start * tick, color="grey", lw=0.8, ls=":", label="mid before the shock")
        key = f"instrument.{name}."
        rule = venue_result.scenario.rules.mark_rule
        contracts = venue_result.scenario.instruments
        if contracts and contracts[i].mark_rule is not None:
            rule = contracts[i].mark_rule
        label = venue if name == "main" else f"{venue} · {name}"
        held = (f"{summary[key + 'liquidated_accounts']:,} of {summary['accounts']:,} "
                f"accounts liquidated" if summary["accounts"] else "no accounts of its own")
        ax.set_title(f"venue {label} (mark {rule.name}): {held}, mid down "
                     f"{summary[key + 'max_drawdown_pct']:.2f} % at most", loc="left",
                     fontsize=10, fontweight="bold", color=colours[venue])
        price_axis(ax)

    ax_ix = fig.add_subplot(grid[len(panels), 0], sharex=axes[0])
    styles = ["--", "-.", ":"]
    for n, ix in enumerate(ms.indexes):
        tick = next(t for venue, i, _, t in panels
                    if (venue, i) == _leg_index(ms, ix.legs[0]))
        values = result.indexes[ix.name]
        steps = np.arange(len(values)) * step_s
        for leg in ix.legs:
            venue, i = _leg_index(ms, leg)
            ax_ix.plot(steps, _masked(result.series(venue, i)["last"]) * tick,
                       color=colours[venue], lw=1.4, alpha=0.8, drawstyle="steps-post",
                       label=f"last trade on {venue} (weight {leg.weight})")
        feeds = ", ".join(sorted({f.venue for f in ix.feeds})) if ix.feeds else "its legs"
        # The value each step's liquidation round left on the feeds (the arbitrageurs and the
        # refill trade after it, so the legs' last trades lead it by up to a step).
        ax_ix.plot(steps, _masked(values) * tick, color="black", lw=1.7,
                   ls=styles[n % len(styles)], drawstyle="steps-post",
                   label=f"index {ix.name}: {ix.rule.aggregate.name.lower().replace('_', ' ')}"
                         f",\nas set after each liquidation round;\nfeeds {feeds}")
    if not ms.indexes:
        ax_ix.text(0.5, 0.5, "no index", ha="center", va="center", transform=ax_ix.transAxes,
                   color="grey")
    ax_ix.set_title("indexes and their legs' last trades", loc="left", fontsize=10,
                    fontweight="bold")
    price_axis(ax_ix)

    ax_n = fig.add_subplot(grid[len(panels) + 1, 0], sharex=axes[0])
    steps = np.arange(ms.steps) * step_s
    bottom = np.zeros(ms.steps)
    for v in ms.venues:
        counts = _liquidated_per_step(result.venues[v.name], ms.steps).astype(float)
        total = int(counts.sum())
        ax_n.bar(steps, counts, bottom=bottom, width=0.85 * step_s, color=colours[v.name],
                 linewidth=0, label=f"{v.name}: {total:,}")
        bottom += counts
    ax_n.set_title("accounts liquidated per step (first liquidation of each), by venue "
                   "(legend: the run's total)",
                   loc="left", fontsize=10, fontweight="bold")
    ax_n.set_ylabel("accounts")
    ax_n.yaxis.set_major_locator(ticker.MaxNLocator(5, integer=True))
    if not bottom.any():
        ax_n.set_ylim(0, 1)
    ax_n.grid(alpha=0.3)
    ax_n.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.9)
    if window is None:
        ax_n.set_xlim(-0.6 * step_s, (ms.steps - 0.4) * step_s)
    else:
        ax_n.set_xlim(*window)
    ax_n.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    cadences = sorted({v.scenario.clock.cadence_ms for v in ms.venues})
    when = (f"every {cadences[0]:,} ms" if len(cadences) == 1
            else "at each venue's own cadence")
    ax_n.set_xlabel(f"time [s] (steps of {_step_ms(ms):,} ms; liquidators, indexes and "
                    f"arbitrageurs {when})"
                    + ("" if window is None else
                       f"; zoomed on the cascade: {max(0.0, window[0]):,.0f} to "
                       f"{window[1]:,.0f} s of {(ms.steps - 1) * step_s:,.0f} s"))

    lots = sum(a["lots"] for a in result.arbitrageurs)
    if not ms.arbitrageurs:
        arb = "no arbitrageur"
    elif result.arbitrage:
        arb = f"arbitrageurs on: {lots:,} lots carried between venues"
    else:
        arb = "arbitrageurs off (their accounts idle)"
    fig.suptitle(f"{len(ms.venues)} venues tied by {len(ms.indexes)} "
                 f"ind{'ex' if len(ms.indexes) == 1 else 'exes'}; {arb}", fontsize=12.5,
                 y=1 - 0.3 / height, va="top")
    fig.savefig(path, format="png")


def start_of(venue_result, name: str) -> float:
    """The mid (ticks) of instrument ``name`` before the shock: its book's."""
    contract = next(c for c in venue_result.scenario.instruments if c.name == name)
    return float(contract.book.mid)


def _leg_index(ms, leg) -> tuple[str, int]:
    """(venue, instrument index) of a Leg of ``ms``."""
    s = ms.venue(leg.venue).scenario
    if isinstance(leg.instrument, int):
        return leg.venue, leg.instrument
    names = [c.name for c in s.instruments] or ["main"]
    return leg.venue, names.index(leg.instrument)


def plot_market_comparison(comparison, path) -> None:
    """Draw a market run under several rule sets (:class:`orderbook.market_sweep.
    MarketComparison`) and save it as PNG: one panel per venue with each rule set's last-trade
    path (instrument 0), the accounts liquidated on each venue under each rule set (grouped
    bars, a ⚠ over a run that ended with accounts queued or unresolved), and a table of each
    venue's accounts liquidated, queue left and insurance fund from start to end under each
    rule set. Rule sets are named in full (wrapped, never cut); paths that lie on one another
    are dashed so that each shows, and the legend says which."""
    mpl = _matplotlib()
    ticker = mpl.ticker
    results = comparison.results
    if not results:
        raise ValueError("comparison has no results to plot")
    names = list(results)
    first = next(iter(results.values()))
    venues = [v.name for v in first.scenario.venues]
    colours = {name: mpl.colormaps["tab10"](n % 10) for n, name in enumerate(names)}

    header, rows, widths = _market_table(comparison, venues)
    table_height = 0.17 * _table_lines(header, rows) + 0.1   # inches
    height = 2.4 * len(venues) + 3.9 + table_height
    fig = mpl.Figure(figsize=(15, height), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(venues) + 1, 1, height_ratios=[2.4] * len(venues) + [2.6],
                            hspace=0.45, left=0.075, right=0.71, top=1 - 0.8 / height,
                            bottom=(table_height + 0.75) / height)
    price_fmt = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}")
    axes = []
    for row, venue in enumerate(venues):
        ax = fig.add_subplot(grid[row], sharex=axes[0] if axes else None)
        axes.append(ax)
        scenario = first.venues[venue].scenario
        tick = float(Decimal(scenario.instruments[0].tick_size if scenario.instruments
                             else scenario.tick_size))
        styles = _path_styles({name: _masked(market.venues[venue].series["last"])
                               for name, market in results.items()})
        for name, market in results.items():
            series = market.venues[venue].series
            style, note = styles[name]
            ax.plot(np.asarray(series["time"], dtype=float) / 1_000,
                    _masked(series["last"]) * tick, lw=1.5, ls=style,
                    drawstyle="steps-post", color=colours[name],
                    label="\n".join(part for part in (_wrap(name, 34), note) if part))
        start = first.venues[venue].summary.get("start_mid")
        if start:
            ax.axhline(start * tick, color="grey", lw=0.8, ls=":")
        ruled = "rules applied" if venue in comparison.ruled else "its own rules"
        ax.set_title(f"venue {venue} ({ruled}): last trade", loc="left", fontsize=10.5,
                     fontweight="bold")
        ax.set_ylabel("price\n[quote ccy]")
        ax.yaxis.set_major_formatter(price_fmt)
        ax.grid(alpha=0.3)
        ax.tick_params(labelbottom=row == len(venues) - 1)
        # each venue's legend: a path that lies on another's differs from venue to venue
        ax.legend(handles=_solid_handles(mpl, ax), title="rule set" if row == 0 else None,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
    axes[-1].set_xlabel(f"time [s] (a step is {_step_ms(first.scenario):,} ms)")
    ax = fig.add_subplot(grid[len(venues)])
    width = 0.8 / len(names)
    x = np.arange(len(venues))
    small = len(names) > 4     # narrow bars: their labels upright, so they do not collide
    for n, (name, market) in enumerate(results.items()):
        counts = [market.venues[v].summary["liquidated_accounts"] for v in venues]
        bars = ax.bar(x + (n - (len(names) - 1) / 2) * width, counts, width,
                      color=colours[name], label=_wrap(name, 34))
        for bar, v in zip(bars, venues, strict=True):
            sm = market.venues[v].summary
            flag = "⚠" if sm.get("queue_left") or sm.get("unresolved_accounts") else ""
            ax.annotate(f"{int(bar.get_height()):,}{flag}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        xytext=(0, 2), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7.5 if small else 8,
                        rotation=90 if small else 0,
                        color="#b2182b" if flag else "black")
    ax.set_xticks(x, [f"venue {v}" for v in venues])
    ax.set_ylabel("accounts\nliquidated")
    ax.set_title("accounts liquidated per venue and rule set (⚠: accounts left queued or "
                 "unresolved at the end)", loc="left", fontsize=10.5, fontweight="bold")
    ax.grid(alpha=0.3, axis="y")
    ax.margins(y=0.3 if small else 0.18)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)

    ax_table = fig.add_axes([0.02, 0.15 / height, 0.96, table_height / height])
    flags = {(r + 1, c): "cell" for r, row in enumerate(rows) for c, cell in enumerate(row)
             if c and "queue left" in header[c] and cell not in ("0", "n/a")}
    _summary_table(ax_table, header, rows, widths, flags=flags)
    fig.suptitle(f"{len(names)} rule sets on a market of {len(venues)} venues (same seeds, "
                 f"same starting state)", fontsize=12.5, y=1 - 0.25 / height, va="top")
    fig.savefig(path, format="png")


def _market_table(comparison, venues) -> tuple[list, list, list]:
    """(header, rows, widths in characters) of the market comparison's table: per rule set,
    each venue's accounts liquidated, queue left and insurance fund (start → end)."""
    first = next(iter(comparison.results.values()))
    header = ["rule set"]
    for venue in venues:
        label = _Units(first.venues[venue].scenario).money_label
        header += [f"{venue}: liquidated\naccounts", f"{venue}: queue left\n(queued at end)",
                   f"{venue}: insurance fund\n[{label}] start → end"]
    rows = []
    for name, market in comparison.results.items():
        row = [_wrap(name, 30)]
        for venue in venues:
            result = market.venues[venue]
            sm, units = result.summary, _Units(result.scenario)
            money = lambda v, u=units: _money_text(v * u.money)  # noqa: E731
            row += [f"{sm['liquidated_accounts']:,}", f"{sm.get('queue_left', 0):,}",
                    _cell(sm, "insurance_fund_end", money,
                          result.scenario.rules.insurance_fund)]
        rows.append(row)
    widths = [max(len(line) for row in rows for line in row[0].split("\n")) + 2]
    for c in range(1, len(header)):
        widths.append(max(10, max(len(row[c]) for row in rows) + 2,
                          max(len(line) for line in header[c].split("\n")) + 1))
    return header, rows, widths
