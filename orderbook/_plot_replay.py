"""The figure of a hybrid LOBSTER replay around its injected order
(:func:`orderbook.plot.plot_replay` with injections).

Kept apart from :mod:`orderbook.plot` (the day figure), whose helpers it uses. Units: prices in
US dollars (LOBSTER ticks are $0.0001), sizes in shares, time of day (exchange time).
"""

from __future__ import annotations

import numpy as np

from .events import Side
from .plot import _LOBSTER_TICK_DOLLARS, _clock, _compact, _matplotlib

__all__ = ["plot_injection", "DEFAULT_WINDOW"]

#: Seconds shown before and after the first injected order's arrival.
DEFAULT_WINDOW = (30.0, 120.0)
BID_COLOUR, ASK_COLOUR, INJECTED_COLOUR = "tab:green", "tab:red", "tab:purple"


def _window_rows(time: np.ndarray, t0: float, window) -> tuple[int, int]:
    """[first, last) rows within ``window`` (s before, s after) of ``t0``."""
    before, after = window
    first = int(np.searchsorted(time, t0 - before, side="left"))
    last = int(np.searchsorted(time, t0 + after, side="right"))
    return first, max(last, first + 1)


def _best(price: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The best level's price of each row in dollars, NaN where the side is empty."""
    out = price[:, 0].astype(float) * _LOBSTER_TICK_DOLLARS
    out[size[:, 0] <= 0] = np.nan
    return out


def window_series(result, window=DEFAULT_WINDOW) -> dict:
    """What the figure draws in its window, as arrays over the window's rows: ``time`` (s),
    hybrid and historical best bid and ask ($, NaN where empty) and visible depth in the N
    levels (shares), and the first injection's fills (row, time, price $, shares, whether it
    was the aggressor)."""
    rep = result.injections[0]
    time = np.asarray(result.time, dtype=float)
    first, last = _window_rows(time, float(time[rep.row]), window)
    rows = slice(first, last)
    hist = result.history
    fills = rep.fills
    return {
        "rows": (first, last), "time": time[rows],
        "hybrid_bid": _best(result.bid_price[rows], result.bid_size[rows]),
        "hybrid_ask": _best(result.ask_price[rows], result.ask_size[rows]),
        "history_bid": _best(hist.bid_price[rows], hist.bid_size[rows]),
        "history_ask": _best(hist.ask_price[rows], hist.ask_size[rows]),
        "hybrid_bid_depth": result.bid_size[rows].sum(axis=1),
        "hybrid_ask_depth": result.ask_size[rows].sum(axis=1),
        "history_bid_depth": hist.bid_size[rows].sum(axis=1),
        "history_ask_depth": hist.ask_size[rows].sum(axis=1),
        "fill_time": time[np.minimum(fills["row"], len(time) - 1)],
        "fill_price": fills["price"] * _LOBSTER_TICK_DOLLARS,
        "fill_qty": fills["qty"], "fill_aggressor": fills["aggressor"],
    }


def taken_by_price(fills: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prices in ticks, shares taken on arrival, shares filled later) of an injected order's
    fills (FILL_DTYPE), by price, lowest first."""
    prices, at = np.unique(fills["price"], return_inverse=True)
    arrival = np.zeros(len(prices), dtype=np.int64)
    later = np.zeros(len(prices), dtype=np.int64)
    np.add.at(arrival, at[fills["aggressor"]], fills["qty"][fills["aggressor"]])
    np.add.at(later, at[~fills["aggressor"]], fills["qty"][~fills["aggressor"]])
    return prices, arrival, later


def plot_injection(result, path=None, *, window=DEFAULT_WINDOW):
    """Draw a hybrid replay around its first injected order and return the figure (saved
    as PNG to ``path`` when given).

    A strip with the day's mid and the window shaded; the best bid and ask of the hybrid book
    (with the injected orders) and of history (the orderbook file) over the window, with the
    injected order's fills at their prices; the visible depth in the N published levels of
    both; and at the arrival row the two books level by level beside the shares the order
    took at each price (on arrival, and later when it rested).
    """
    mpl = _matplotlib()
    ticker = mpl.ticker
    if not result.injections:
        raise ValueError("the replay has no injected order to zoom on")
    if result.history is None:
        raise ValueError("the replay result holds no historical book (ReplayResult.history)")
    before, after = (float(w) for w in window)
    if not (before >= 0 and after > 0):
        raise ValueError(f"window must be (seconds before >= 0, seconds after > 0), got "
                         f"{window!r}")
    rep = result.injections[0]
    inj = rep.injection
    data = window_series(result, (before, after))
    time = np.asarray(result.time, dtype=float)
    t0 = float(time[rep.row])
    # the window, within the replay's span
    lo, hi = max(t0 - before, float(time[0])), min(t0 + after, float(time[-1]))
    if hi - lo < 1e-3:
        hi = lo + 1e-3
    dollars = _LOBSTER_TICK_DOLLARS

    fig = mpl.Figure(figsize=(15, 10), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 3, width_ratios=[4.6, 1.5, 1.5], height_ratios=[0.75, 4.2, 2.4],
                            hspace=0.13, wspace=0.07, left=0.07, right=0.985, top=0.89,
                            bottom=0.07)
    ax_day = fig.add_subplot(grid[0, 0])
    ax_price = fig.add_subplot(grid[1, 0])
    ax_depth = fig.add_subplot(grid[2, 0], sharex=ax_price)
    ax_book = fig.add_subplot(grid[1, 1], sharey=ax_price)
    ax_taken = fig.add_subplot(grid[1, 2], sharey=ax_price)
    ax_text = fig.add_subplot(grid[2, 1:])
    ax_text.axis("off")

    # the day, with the window shaded -----------------------------------------------------
    hist = result.history
    mid = (_best(hist.bid_price, hist.bid_size) + _best(hist.ask_price, hist.ask_size)) / 2
    ax_day.plot(time, mid, color="black", lw=0.7)
    ax_day.axvspan(lo, hi, color=INJECTED_COLOUR, alpha=0.2, lw=0)
    for other in result.injections:
        ax_day.axvline(time[other.row], color=INJECTED_COLOUR, lw=0.8, ls="--")
    ax_day.set_xlim(time[0], time[-1])
    ax_day.set_yticks([])
    ax_day.xaxis.tick_top()
    ax_day.xaxis.set_major_formatter(_clock(ticker, float(time[-1] - time[0])))
    ax_day.xaxis.set_major_locator(ticker.MaxNLocator(8))
    ax_day.tick_params(axis="x", labelsize=8, pad=1)
    ax_day.text(0.995, 0.9, "the replay's span (historical mid); below: the window (shaded)",
                transform=ax_day.transAxes, ha="right", va="top", fontsize=9,
                fontweight="bold", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})

    # price: hybrid vs history, the fills --------------------------------------------------
    t = data["time"]
    for key, colour, style, label in (
            ("history_ask", ASK_COLOUR, ":", "best ask, history"),
            ("history_bid", BID_COLOUR, ":", "best bid, history"),
            ("hybrid_ask", ASK_COLOUR, "-", "best ask, hybrid (with the injected order)"),
            ("hybrid_bid", BID_COLOUR, "-", "best bid, hybrid")):
        ax_price.plot(t, data[key], color=colour, ls=style, lw=1.9 if style == ":" else 1.1,
                      drawstyle="steps-post", label=label)
    marker = "v" if inj.side == Side.SELL else "^"
    if len(data["fill_qty"]):
        size = data["fill_qty"].astype(float)
        ax_price.scatter(data["fill_time"], data["fill_price"],
                         s=15 + 120 * np.sqrt(size / size.max()), marker=marker,
                         color=INJECTED_COLOUR, edgecolors="black", linewidths=0.4, zorder=4,
                         label="the injected order's fills (area ∝ shares)")
    if rep.touch_before:
        ax_price.plot([t0], [rep.touch_before * dollars], marker="o", ms=7, mfc="none",
                      mec="black", ls="none", label="the touch it met")
    for ax in (ax_price, ax_depth):
        ax.axvline(t0, color=INJECTED_COLOUR, ls="--", lw=1.0)
    ax_price.set_ylabel(r"price [\$]")
    ax_price.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.2f}"))
    ax_price.set_title("best bid and ask: hybrid (solid) vs history (dotted)", loc="left",
                       fontsize=10, fontweight="bold")
    ax_price.legend(loc="best", fontsize=8.5, framealpha=0.92)
    ax_price.tick_params(axis="x", labelbottom=False)
    at = rep.row   # and the books at the arrival, drawn at the right
    books = [np.where(size[at] > 0, price[at] * dollars, np.nan)
             for price, size in ((result.bid_price, result.bid_size),
                                 (result.ask_price, result.ask_size),
                                 (result.history.bid_price, result.history.bid_size),
                                 (result.history.ask_price, result.history.ask_size))]
    prices = np.concatenate([data[k] for k in ("hybrid_bid", "hybrid_ask", "history_bid",
                                                "history_ask", "fill_price")] + books)
    prices = prices[np.isfinite(prices)]
    if len(prices):
        pad = max(0.08 * (prices.max() - prices.min()), 0.02)
        ax_price.set_ylim(prices.min() - pad, prices.max() + pad)

    # depth --------------------------------------------------------------------------------
    n = result.levels
    for key, colour, style, label in (
            ("history_bid_depth", BID_COLOUR, ":", "bids, history"),
            ("history_ask_depth", ASK_COLOUR, ":", "asks, history"),
            ("hybrid_bid_depth", BID_COLOUR, "-", "bids, hybrid"),
            ("hybrid_ask_depth", ASK_COLOUR, "-", "asks, hybrid")):
        ax_depth.plot(t, data[key], color=colour, ls=style, lw=1.9 if style == ":" else 1.1,
                      drawstyle="steps-post", label=label)
    ax_depth.set_ylabel(f"visible depth [shares]\n(top {n} level{'s' if n > 1 else ''})")
    ax_depth.set_ylim(bottom=0)
    ax_depth.yaxis.set_major_formatter(_compact(ticker))
    # above the panel, right of its title: inside, it would hide the lines
    ax_depth.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8.5, ncol=4,
                    frameon=False, borderaxespad=0.1)
    ax_depth.set_title("visible depth", loc="left", fontsize=10, fontweight="bold")
    ax_depth.set_xlim(lo, hi)
    ax_depth.xaxis.set_major_formatter(_clock(ticker, hi - lo))
    ax_depth.xaxis.set_major_locator(ticker.MaxNLocator(7))
    ax_depth.set_xlabel(f"time of day (exchange time); zoomed on the injected order: "
                        f"{t0 - lo:,.3g} s before it to {hi - t0:,.3g} s after"
                        + ("" if (lo, hi) == (t0 - before, t0 + after) else
                           " (the replay's span ends there)"))
    for ax in (ax_price, ax_depth):
        ax.grid(alpha=0.3)

    # the two books at the arrival row, and what the order took ----------------------------
    row = rep.row
    ticks = np.concatenate([hist.bid_price[row], hist.ask_price[row], result.bid_price[row],
                            result.ask_price[row], rep.fills["price"]])
    ticks = np.unique(ticks[(ticks > 0) & (ticks < 9_999_999_999)])
    gap = np.diff(ticks).min() if len(ticks) > 1 else 100
    low, high = ax_price.get_ylim()
    height = 0.8 * gap * dollars
    for price, size, colour in ((result.bid_price[row], result.bid_size[row], BID_COLOUR),
                                (result.ask_price[row], result.ask_size[row], ASK_COLOUR)):
        live = size > 0
        # (an edge of the bar's colour keeps a level a cent high visible on a dollar's axis)
        ax_book.barh(price[live] * dollars, size[live], height=height, color=colour,
                     alpha=0.8, lw=1.2, edgecolor=colour)
    for price, size, ours, side in ((hist.bid_price[row], hist.bid_size[row],
                                     result.bid_size[row], "bids"),
                                    (hist.ask_price[row], hist.ask_size[row],
                                     result.ask_size[row], "asks")):
        live = size > 0
        # history as a mark at its size: where it equals the hybrid's, at the bar's end
        ax_book.plot(size[live], price[live] * dollars, ls="none", marker="|", ms=9, mew=2,
                     color="black")
        if live.any() and not (ours > 0).any():
            # the hybrid side is empty in the window: say so where history's stands
            ax_book.annotate(f"hybrid: no {side} left\nin the window", (0, price[0] * dollars),
                             xytext=(4, -4 if side == "bids" else 4), textcoords="offset points",
                             va="top" if side == "bids" else "bottom", fontsize=8,
                             color="#444444")
    ax_book.legend(handles=[
        mpl.patches.Patch(facecolor=BID_COLOUR, alpha=0.75, label="hybrid bids"),
        mpl.patches.Patch(facecolor=ASK_COLOUR, alpha=0.75, label="hybrid asks"),
        mpl.lines.Line2D([], [], ls="none", marker="|", ms=9, mew=2, color="black",
                         label="history's size")],
        # (away from the side the order took, where the books are)
        loc="lower right" if inj.side == Side.SELL else "upper right", fontsize=8,
        framealpha=0.92)
    ax_book.set_title(f"the books at row {row:,}\n(right after the arrival)", loc="left",
                      fontsize=10, fontweight="bold")
    ax_book.set_xlabel("shares at the level", fontsize=9)

    prices_t, arrival, later = taken_by_price(rep.fills)
    ax_taken.barh(prices_t * dollars, arrival, height=height, color=INJECTED_COLOUR,
                  lw=1.2, edgecolor=INJECTED_COLOUR, label="on arrival")
    if later.any():
        ax_taken.barh(prices_t * dollars, later, left=arrival, height=height,
                      color=INJECTED_COLOUR, alpha=0.4, lw=0, label="later (resting)")
    if rep.beyond_window:
        # below the last level history published when the order arrived, the replay's book
        # holds seeded or stale liquidity, not history's
        edge = hist.bid_price[row - 1 if row else 0] if inj.side == Side.SELL else \
            hist.ask_price[row - 1 if row else 0]
        sizes = hist.bid_size[row - 1 if row else 0] if inj.side == Side.SELL else \
            hist.ask_size[row - 1 if row else 0]
        shown = edge[sizes > 0]
        if len(shown):
            bound = (shown.min() if inj.side == Side.SELL else shown.max()) * dollars
            span = (low, bound - gap * dollars / 2) if inj.side == Side.SELL else \
                (bound + gap * dollars / 2, high)
            for ax in (ax_book, ax_taken):
                ax.axhspan(*span, color="grey", alpha=0.15, lw=0,
                           label="beyond the levels\nhistory published")
    ax_taken.legend(loc="upper right" if inj.side == Side.SELL else "lower right", fontsize=8,
                    framealpha=0.92)
    ax_taken.set_title("taken by the\ninjected order", loc="left", fontsize=10,
                       fontweight="bold")
    ax_taken.set_xlabel("shares", fontsize=9)
    for ax in (ax_book, ax_taken):
        ax.tick_params(axis="y", labelleft=False)
        ax.xaxis.set_major_formatter(_compact(ticker))
        ax.xaxis.set_major_locator(ticker.MaxNLocator(3))
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(left=0)

    ax_text.text(0.02, 0.95, _injection_text(result), transform=ax_text.transAxes, va="top",
                 ha="left", fontsize=9.5, family="monospace")
    fig.suptitle(_injection_title(result), fontsize=11.5, y=0.99, va="top")
    if path is not None:
        fig.savefig(path, format="png")
    return fig


def _injection_title(result) -> str:
    rep = result.injections[0]
    inj = rep.injection
    what = ("market" if inj.kind == "market"
            else f"limit \\${inj.price * _LOBSTER_TICK_DOLLARS:,.2f}")
    clock = _clock(_matplotlib().ticker, 60.0)(float(result.time[rep.row]))
    more = (f" (and {len(result.injections) - 1} more)" if len(result.injections) > 1 else "")
    line1 = (f"Hybrid LOBSTER replay: an injected {inj.side.name.lower()} of {inj.qty:,} shares "
             f"({what}) at {clock}, before row {rep.row:,}{more}")
    line2 = ("hybrid = the replay with the injected order; history = the orderbook file; "
             r"prices in \$, sizes in shares")
    return f"{line1}\n{line2}"


def _injection_text(result) -> str:
    """The injection's report in a few short lines (dollars escaped for matplotlib)."""
    rep = result.injections[0]
    cents = _LOBSTER_TICK_DOLLARS * 100
    n = result.levels
    lines = [f"filled       {rep.filled:,} of {rep.injection.qty:,} shares"]
    if rep.filled:
        lines.append(f"avg price    \\${rep.avg_price * _LOBSTER_TICK_DOLLARS:,.4f}")
    if rep.filled and rep.touch_before:
        worse = "below" if rep.injection.side == Side.SELL else "above"
        lines.append(f"             {abs(rep.slippage) * cents:,.2f} ¢ {worse} the touch "
                     f"(\\${rep.touch_before * _LOBSTER_TICK_DOLLARS:,.2f})")
    lines += [f"on arrival   {rep.levels:,} price levels; {rep.beyond_window:,} shares beyond",
              f"             the {n} level{'s' if n > 1 else ''} history published",
              f"resting      {rep.resting:,} shares at the end"]
    div = result.divergence
    if div is not None:
        lines += [f"afterwards   {div.matched:,} of {div.rows:,} rows (from row "
                  f"{div.first_row:,}) match history",
                  f"             best bid {div.mean_abs_bid_diff * cents:,.2f} ¢ off on "
                  f"average (at most {div.max_abs_bid_diff * cents:,.2f} ¢),",
                  f"             best ask {div.mean_abs_ask_diff * cents:,.2f} ¢ (at most "
                  f"{div.max_abs_ask_diff * cents:,.2f} ¢)",
                  "             hybrid side empty where history's is not:",
                  f"             {div.empty_bid_rows:,} rows (bids), {div.empty_ask_rows:,} "
                  f"(asks)"]
    return "\n".join(lines)
