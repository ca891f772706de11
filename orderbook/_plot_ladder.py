"""The depth-ladder figures of a run (:func:`orderbook.plot.plot_ladder`,
:func:`orderbook.plot.animate_cascade`): the book at fixed price bands before the shock and
after the cascade, the levels each generation's forced orders took, and the price path, on
one price axis.

Kept apart from :mod:`orderbook.plot` (the run's overview figure), whose helpers it uses; the
data comes from :mod:`orderbook.ladder`. Units: prices in quote currency (ticks x the tick
size), depth in lots per price band (the lot size in base units is given on the figure),
time in seconds of the run's clock.
"""

from __future__ import annotations

import os
from decimal import Decimal

import numpy as np

from .events import Settlement
from .ladder import (
    Stage,
    depth_in_bins,
    fills_in_bins,
    forced_trades,
    level_step,
    lots_in_bins,
    price_bins,
    shock_trades,
)
from .plot import (
    _cascade_window,
    _compact,
    _masked,
    _matplotlib,
    _overview,
    _seconds,
    _time_label,
    _Units,
)
from .scenario import quote_unit

__all__ = ["plot_ladder", "animate_cascade", "animation_writer"]

BID_COLOUR, ASK_COLOUR, SHOCK_COLOUR = "tab:blue", "tab:orange", "#8c8c8c"
#: The most frames an animation draws; a longer cascade is drawn every k-th frame.
MAX_FRAMES = 240
#: What each frame of an animation shows, by Stage.
_STAGE_TEXT = {Stage.BEFORE_SHOCK: "before the shock", Stage.AFTER_SHOCK: "after the shock",
               Stage.ROUND: "after the liquidator's round",
               Stage.STEP_END: "end of the step (after recovery and refill)"}


def _touch(l2) -> list[float]:
    """The best bid and ask of an L2 (ticks), those it has."""
    return [float(p[0]) for p in (l2.bid_price, l2.ask_price) if len(p)]


def _units(result) -> _Units:
    """The first instrument's units (the one the book snapshots are of)."""
    scenario = result.scenario
    if scenario.instruments:
        return _Units(scenario.instruments[0], quote=float(quote_unit(scenario)))
    return _Units(scenario)


class _Ladder:
    """What the ladder figures draw, computed once: the time window, the price range and its
    fixed bands, the fills by generation and band, the path's trades."""

    def __init__(self, result):
        if result.book_before is None:
            raise ValueError("the result has no book snapshots (Result.book_before is None): "
                             "a run of orderbook.run() records them")
        self.result = result
        self.units = _units(result)
        self.t, self.step_s = _seconds(result)
        self.end = float(self.t[-1]) if len(self.t) else 0.0
        self.window = _cascade_window([result])
        lo, hi = self.window if self.window is not None else (
            -0.6 * self.step_s, self.end + 0.6 * self.step_s)
        self.xlim = (lo, hi)
        self.fills = forced_trades(result)
        self.shock_rows = shock_trades(result)
        records = result.forced_orders
        self.generations = int(records["generation"].max()) + 1 if len(records) else 0
        trades = result.trades
        times = np.asarray(result.trade_time if result.trade_time is not None
                           and len(result.trade_time) == len(trades)
                           else np.zeros(len(trades)), dtype=float) / 1_000
        self.trade_s, self.trade_px = times, trades["price"]
        # The price range: every trade in the window (the fills among them), the mid before
        # the shock and the touch after the cascade, plus room for the depth either side.
        start = result.summary.get("start_mid") or 0
        seen = self.trade_px[(times >= lo) & (times <= hi)]
        marks = [float(seen.min()), float(seen.max())] if len(seen) else []
        marks += [float(start)] if start else []
        if result.book_after is not None:
            marks += _touch(result.book_after.l2)
        marks = marks or _touch(result.book_before.l2) or [1.0]
        low, high = min(marks), max(marks)
        step = level_step(result.book_before.l2)
        pad = max(0.18 * (high - low), 8 * step)
        self.edges = price_bins(max(0, int(low - pad)), int(high + pad), step, target=64)
        self.width = int(self.edges[1] - self.edges[0])
        self.centres = (self.edges[:-1] + self.edges[1:]) / 2 * self.units.tick
        self.start = start

    def colours(self, mpl):
        n = max(self.generations, 1)
        cmap = mpl.colors.ListedColormap(mpl.colormaps["viridis"](np.linspace(0.0, 0.92, n)))
        norm = mpl.colors.BoundaryNorm(np.arange(-0.5, n + 0.5), cmap.N)
        return cmap, norm

    def band_text(self) -> str:
        u = self.units
        width = Decimal(self.width) * Decimal(str(u.tick))
        return (f"{width.normalize():f} {u.price_label} ({self.width:,} ticks)")

    def lot_text(self) -> str:
        """What a lot is: base units, or on an inverse venue contracts of quote currency."""
        scenario, lot = self.result.scenario, self.units.lot_text
        if getattr(scenario, "settlement", Settlement.LINEAR) != Settlement.INVERSE:
            return f"1 lot = {lot} base units"
        first = scenario.instruments[0] if scenario.instruments else None
        value = (first.contract_value if first is not None and first.contract_value
                 else scenario.contract_value)
        return f"1 lot = {lot} contract{'' if lot == '1' else 's'} of {value} quote ccy"

    def lots_label(self) -> str:
        return f"lots per band ({self.lot_text()})"

    def subject(self) -> str:
        """Whose book: the scenario's, or its first instrument's."""
        contracts = self.result.scenario.instruments
        if not contracts:
            return "The book"
        if len(contracts) == 1:
            return f"The {contracts[0].name} book"
        return f"The {contracts[0].name} book (the first of {len(contracts)} instruments)"

    def taken(self, upto_trade: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lots the shock took per band, lots each generation's forced orders took per band),
        counting the trades before row ``upto_trade`` of Result.trades (None: all)."""
        fills, rows = self.fills, self.shock_rows
        if upto_trade is not None:
            fills, rows = fills[fills["trade"] < upto_trade], rows[rows < upto_trade]
        shock = self.result.trades[rows]
        return (lots_in_bins(shock["price"], shock["qty"], self.edges),
                fills_in_bins(fills, self.edges, self.generations))


# ------------------------------------------------------------------------------ bars
class _Bars:
    """Horizontal bars on the price bands as one PolyCollection: ``update`` takes series of
    (lefts, widths, colour), one value a band, and draws the bands' non-empty bars.

    (``barh`` makes a patch per bar and adds each to the axes one by one: 60 bands x a dozen
    series a frame, and the profile of a 29-frame GIF spent 22 of its 33 s there.)"""

    def __init__(self, ax, data, mpl, **style):
        self.ax, self.mpl = ax, mpl
        half = 0.44 * data.width * data.units.tick
        self.low, self.high = data.centres - half, data.centres + half
        self.collection = mpl.collections.PolyCollection([], lw=0, **style)
        ax.add_collection(self.collection, autolim=False)

    def update(self, series) -> None:
        verts, colours = [], []
        for left, width, colour in series:
            nz = np.flatnonzero(width > 0)
            if not len(nz):
                continue
            x0, x1 = left[nz], left[nz] + width[nz]
            y0, y1 = self.low[nz], self.high[nz]
            verts.append(np.stack([np.c_[x0, y0], np.c_[x1, y0], np.c_[x1, y1],
                                   np.c_[x0, y1]], axis=1))
            colours += [self.mpl.colors.to_rgba(colour)] * len(nz)
        self.collection.set_verts(np.concatenate(verts) if verts else [])
        self.collection.set_facecolor(colours or "none")


def _book_series(bid, ask):
    zero = np.zeros(len(bid))
    # (the band holding both sides, the touch's, shows them end to end)
    return [(zero, bid.astype(float), BID_COLOUR), (bid.astype(float), ask.astype(float),
                                                    ASK_COLOUR)]


def _taken_series(shock, by_gen, cmap, norm):
    left = shock.astype(float)
    out = [(np.zeros(len(shock)), left, SHOCK_COLOUR)]
    for gen in range(by_gen.shape[0]):
        out.append((left, by_gen[gen].astype(float), cmap(norm(gen))))
        left = left + by_gen[gen]
    return out


def _patch(mpl, colour, label, **style):
    return mpl.patches.Patch(facecolor=colour, label=label, **style)


def _fill_handle(mpl, cmap):
    """A legend entry for the forced fills (their colours vary by generation)."""
    return mpl.lines.Line2D([], [], color=cmap(0), marker="_", ms=9, mew=2.2, ls="none",
                            label=_FILL_LABEL)


# ------------------------------------------------------------------------------ the figure
def plot_ladder(result, path) -> None:
    """Draw the book's depth ladder before the shock and after the cascade beside the price
    path, on one price axis, and save it as PNG to ``path``.

    Left, the price (last trade, mark, and every fill of a forced order at the level it took,
    coloured by generation) over time, zoomed on the cascade when it ends early. Right, three
    ladders on fixed price bands (the same bands in each, not relative to the mid): the book
    just before the shock, what the shock and each generation's forced orders took, and the
    book just after the liquidator's last round that closed a position
    (:attr:`~orderbook.scenario.Result.book_before`, ``book_after``,
    :func:`orderbook.ladder.forced_trades`). Depth in lots per band.
    """
    mpl = _matplotlib()
    ticker = mpl.ticker
    data = _Ladder(result)
    units = data.units
    cmap, norm = data.colours(mpl)

    fig = mpl.Figure(figsize=(16, 9.4), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 5, width_ratios=[4.4, 1.55, 1.55, 1.55, 0.12],
                            height_ratios=[0.7, 6.0], hspace=0.1, wspace=0.07, left=0.06,
                            right=0.955, top=0.855, bottom=0.115)
    ax_price = fig.add_subplot(grid[1, 0])
    ax_before = fig.add_subplot(grid[1, 1], sharey=ax_price)
    ax_taken = fig.add_subplot(grid[1, 2], sharey=ax_price, sharex=ax_before)
    ax_after = fig.add_subplot(grid[1, 3], sharey=ax_price, sharex=ax_before)
    if data.window is not None:
        _overview(fig, fig.add_subplot(grid[0, 0]), result, data.window, units)

    _draw_path(ax_price, data, mpl, cmap, norm)
    ax_price.legend(loc="upper right", fontsize=8.5, framealpha=0.92)
    ax_price.set_xlim(*data.xlim)
    ax_price.set_xlabel(_time_label(result, data.window))

    before = depth_in_bins(result.book_before.l2, data.edges)
    _Bars(ax_before, data, mpl, alpha=0.85).update(_book_series(*before))
    ax_before.legend(handles=[_patch(mpl, BID_COLOUR, "bids", alpha=0.85),
                              _patch(mpl, ASK_COLOUR, "asks", alpha=0.85)],
                     loc="upper right", fontsize=8.5, framealpha=0.92)
    ax_before.set_title("the book before\nthe shock (t = 0 s)", fontsize=10,
                        fontweight="bold", loc="left")

    shock, by_gen = data.taken()
    _Bars(ax_taken, data, mpl).update(_taken_series(shock, by_gen, cmap, norm))
    if shock.any():
        ax_taken.legend(handles=[_patch(mpl, SHOCK_COLOUR, "the shock")], loc="upper right",
                        fontsize=8.5, framealpha=0.92)
    ax_taken.set_title("taken by the shock and\nby each generation's\nforced orders",
                       fontsize=10, fontweight="bold", loc="left")
    deepest = [(before[0] + before[1]).max(initial=0),
               (shock + by_gen.sum(axis=0)).max(initial=0)]

    if result.book_after is not None:
        after = depth_in_bins(result.book_after.l2, data.edges)
        _Bars(ax_after, data, mpl, alpha=0.85).update(_book_series(*after))
        deepest.append((after[0] + after[1]).max(initial=0))
        ax_after.set_title(f"the book after the\ncascade (t = {result.book_after.time / 1_000:,g}"
                           f" s,\nafter the last round)", fontsize=10, fontweight="bold",
                           loc="left")
    else:
        ax_after.text(0.5, 0.5, "no liquidations:\nno book after\na cascade", ha="center",
                      va="center", transform=ax_after.transAxes, color="grey")
        ax_after.set_title("the book after the cascade", fontsize=10, fontweight="bold",
                           loc="left")

    lots_fmt = _compact(ticker)
    for ax in (ax_before, ax_taken, ax_after):
        ax.tick_params(axis="y", labelleft=False)
        ax.xaxis.set_major_formatter(lots_fmt)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(3))
        ax.grid(axis="x", alpha=0.3)
        _reference_lines(ax, data, label=False)
    ax_before.set_xlim(0, 1.05 * max(1, *deepest))
    ax_taken.set_xlabel(data.lots_label(), fontsize=9)
    ax_price.set_ylim(data.edges[0] * units.tick, data.edges[-1] * units.tick)
    _colourbar(fig, fig.add_subplot(grid[1, 4]), data, mpl, cmap, norm)

    fig.suptitle(_ladder_title(result, data), fontsize=12, y=0.985, va="top")
    fig.text(0.5, 0.012, _ladder_note(data), ha="center", va="bottom", fontsize=9,
             color="#333333")
    fig.savefig(path, format="png")


def _colourbar(fig, ax, data, mpl, cmap, norm) -> None:
    if not data.generations:
        ax.axis("off")
        return
    bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), cax=ax)
    bar.set_label("generation of the forced order", fontsize=9)
    bar.ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True, nbins=8))
    bar.ax.tick_params(labelsize=8)
    bar.ax.minorticks_off()


def _ladder_title(result, data) -> str:
    sm = result.summary
    fills = data.fills
    lots = int(fills["qty"].sum())
    here = " there" if len(result.scenario.instruments) > 1 else ""
    if not sm.get("liquidated_accounts"):
        line1 = f"{data.subject()} before and after the shock: no liquidations"
    else:
        line1 = (f"{data.subject()} before the shock and after the cascade: "
                 f"{sm.get('liquidated_accounts', 0):,} accounts liquidated in "
                 f"{sm.get('generations', 0)} generations, their forced orders{here} filled "
                 f"{lots:,} lots at {len(np.unique(fills['price'])):,} price levels")
    zoom = ("" if data.window is None else
            f"; time zoomed on the cascade, {max(0.0, data.window[0]):,.0f} to "
            f"{data.window[1]:,.0f} s of {data.end:,.0f} s")
    line2 = (f"depth in fixed price bands of {data.band_text()} (they do not move with the "
             f"price){zoom}")
    return f"{line1}\n{line2}"


def _ladder_note(data) -> str:
    return (f"Prices in {data.units.price_label}; sizes in lots ({data.lot_text()}). Bids "
            f"below the touch, asks above it; the shock is the scenario's own market order; "
            f"forced orders' fills are their trades, by the generation of their record.")


def _reference_lines(ax, data, label: bool) -> None:
    tick = data.units.tick
    if data.start:
        ax.axhline(data.start * tick, color="grey", lw=0.9, ls=":",
                   label="mid before the shock" if label else "_mid")


_FILL_LABEL = ("a forced order's fill at the level it took\n(x = its round's time; "
               "colour = generation)")


def _draw_path(ax, data, mpl, cmap, norm) -> None:
    """The price panel of the figure: last trade (trade by trade), mark, and every forced
    fill at its level (x = its round's time)."""
    result, tick = data.result, data.units.tick
    if len(data.trade_px):
        ax.plot(np.r_[data.trade_s, data.end], np.r_[data.trade_px, data.trade_px[-1]] * tick,
                color="black", lw=1.3, drawstyle="steps-post", label="last trade")
    ax.plot(data.t, _masked(result.series["mark"]) * tick, color="tab:orange", lw=1.1,
            ls="--", drawstyle="steps-post", label="mark (each step)")
    fills = data.fills
    if len(fills):
        ax.scatter(fills["time"] / 1_000, fills["price"] * tick, c=fills["generation"],
                   cmap=cmap, norm=norm, s=14, marker="_", linewidths=2.2, zorder=3,
                   label=_FILL_LABEL)
    _price_axis(ax, data, mpl)


def _price_axis(ax, data, mpl) -> None:
    _reference_lines(ax, data, label=True)
    ax.set_ylabel(f"price [{data.units.price_label}]")
    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(
        lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"))
    ax.grid(alpha=0.3)
    ax.set_title("price", loc="left", fontsize=10, fontweight="bold")


# ------------------------------------------------------------------------------ animation
def animation_writer(path) -> str:
    """The matplotlib writer an animation at ``path`` needs ("pillow" for .gif, "ffmpeg" for
    .mp4), checked to be available; ValueError for another suffix, RuntimeError naming what
    to install when the writer is missing, ImportError without matplotlib."""
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"an animation is written as .gif or .mp4, not "
                         f"{suffix or 'a file without a suffix'}")
    _matplotlib()
    from matplotlib import animation

    name = "pillow" if suffix == ".gif" else "ffmpeg"
    if not animation.writers.is_available(name):
        need = ("Pillow (pip install pillow)" if name == "pillow"
                else "the ffmpeg program on PATH (or write a .gif)")
        raise RuntimeError(f"writing {suffix} needs {need}")
    return name


def animation_frames(result, data) -> np.ndarray:
    """The frames (indices into ``result.book_frames``) an animation draws: those in the
    figure's time window, every k-th when there are more than MAX_FRAMES."""
    times = result.book_frames.time / 1_000
    lo, hi = data.xlim
    chosen = np.flatnonzero((times >= lo) & (times <= hi))
    return chosen[::max(1, -(-len(chosen) // MAX_FRAMES))]


def animate_cascade(result, path, *, fps: float = 4.0) -> None:
    """Animate the cascade frame by frame and save it to ``path`` (.gif, or .mp4 with
    ffmpeg): at each frame the book on fixed price bands (the book before the shock as an
    outline), the lots taken so far by the shock and by each generation's forced orders, and
    the price path up to that moment, over the cascade's window.

    Needs the frames of ``run(scenario, book_levels=N)`` (:class:`orderbook.ladder.
    BookFrames`): one before and one after the shock, one after each liquidator round that
    closed positions, one at each step's end. Bands beyond the N levels a side a frame kept
    are shaded: the depth there is unknown.
    """
    frames = result.book_frames
    if frames is None:
        raise ValueError("the result has no book frames: run(scenario, book_levels=N) "
                         "records them")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    writer_name = animation_writer(path)
    mpl = _matplotlib()
    from matplotlib import animation

    data = _Ladder(result)
    units, tick = data.units, data.units.tick
    cmap, norm = data.colours(mpl)
    chosen = animation_frames(result, data)
    every = max(1, -(-int(((frames.time / 1_000 >= data.xlim[0])
                           & (frames.time / 1_000 <= data.xlim[1])).sum()) // MAX_FRAMES))
    times = frames.time / 1_000

    fig = mpl.Figure(figsize=(14, 8.8), dpi=100)
    mpl.FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 4, width_ratios=[4.0, 1.7, 1.7, 0.1], wspace=0.08, left=0.07,
                            right=0.95, top=0.86, bottom=0.2)
    ax_price = fig.add_subplot(grid[0, 0])
    ax_book = fig.add_subplot(grid[0, 1], sharey=ax_price)
    ax_taken = fig.add_subplot(grid[0, 2], sharey=ax_price)
    _colourbar(fig, fig.add_subplot(grid[0, 3]), data, mpl, cmap, norm)

    before_bid, before_ask = depth_in_bins(result.book_before.l2, data.edges)
    bands = [depth_in_bins(frames.l2(k), data.edges) for k in chosen]
    shock_all, gen_all = data.taken()
    # fixed x scales: the deepest band any frame shows, the most any band lost
    deepest = max([int((before_bid + before_ask).max(initial=0)), 1]
                  + [int((b + a).max(initial=0)) for b, a in bands])
    most = max(int((shock_all + gen_all.sum(axis=0)).max(initial=0)), 1)

    # the price panel: the path so far, the fills so far, a line at the frame's time
    (path_line,) = ax_price.plot([], [], color="black", lw=1.3, drawstyle="steps-post",
                                 label="last trade")
    dots = ax_price.scatter(np.zeros(0), np.zeros(0), c=np.zeros(0), cmap=cmap, norm=norm,
                            s=14, marker="_", linewidths=2.2, zorder=3, label=_FILL_LABEL)
    now = ax_price.axvline(0, color="tab:red", lw=0.9, alpha=0.6, label="now")
    _price_axis(ax_price, data, mpl)
    handles = [path_line, _fill_handle(mpl, cmap), now, ax_price.get_lines()[-1],
               _patch(mpl, BID_COLOUR, "bids now", alpha=0.85),
               _patch(mpl, ASK_COLOUR, "asks now", alpha=0.85),
               mpl.lines.Line2D([], [], color="black", lw=0.8,
                                label="the book before the shock (outline)"),
               _patch(mpl, SHOCK_COLOUR, "taken by the shock"),
               _patch(mpl, "grey", f"beyond the {frames.levels:,} levels a side\nthe run "
                      "kept (depth unknown)", alpha=0.15)]
    # below the panels: inside, it would hide the path wherever the price goes
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    ax_price.set_xlim(*data.xlim)
    ax_price.set_ylim(data.edges[0] * tick, data.edges[-1] * tick)
    ax_price.set_xlabel(_time_label(result, data.window))

    book = _Bars(ax_book, data, mpl, alpha=0.85)
    unknown = mpl.collections.PolyCollection([], lw=0, facecolor="grey", alpha=0.15)
    ax_book.add_collection(unknown, autolim=False)
    ax_book.stairs(before_bid + before_ask, data.edges * tick, orientation="horizontal",
                   color="black", lw=0.8)
    ax_book.set_xlim(0, 1.05 * deepest)
    ax_book.set_title("the book now\n(outline: before the shock)", fontsize=10,
                      fontweight="bold", loc="left")
    taken = _Bars(ax_taken, data, mpl)
    ax_taken.set_xlim(0, 1.05 * most)
    ax_taken.set_title("taken so far by the shock\nand by forced orders", fontsize=10,
                       fontweight="bold", loc="left")
    for ax in (ax_book, ax_taken):
        ax.tick_params(axis="y", labelleft=False)
        ax.xaxis.set_major_formatter(_compact(mpl.ticker))
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(3))
        ax.grid(axis="x", alpha=0.3)
        _reference_lines(ax, data, label=False)
    ax_book.set_xlabel(data.lots_label(), fontsize=9)
    title = fig.suptitle("", fontsize=11.5, y=0.975, va="top")
    low, high = data.edges[0] * tick, data.edges[-1] * tick

    def draw(n: int) -> None:
        k = chosen[n]
        upto = int(frames.trades[k])
        if upto:
            path_line.set_data(np.r_[data.trade_s[:upto], times[k]],
                               np.r_[data.trade_px[:upto], data.trade_px[upto - 1]] * tick)
        fills = data.fills[data.fills["trade"] < upto]
        dots.set_offsets(np.c_[fills["time"] / 1_000, fills["price"] * tick])
        dots.set_array(fills["generation"].astype(float))
        now.set_xdata([times[k], times[k]])
        book.update(_book_series(*bands[n]))
        shaded = []
        for qty, price, edge in ((frames.bid_qty[k], frames.bid_price[k], low),
                                 (frames.ask_qty[k], frames.ask_price[k], high)):
            if qty[-1] > 0:   # the side was cut at N levels: beyond its last one is unknown
                end = price[-1] * tick
                shaded.append([(0, end), (deepest * 2, end), (deepest * 2, edge), (0, edge)])
        unknown.set_verts(shaded)
        taken.update(_taken_series(*data.taken(upto), cmap, norm))
        stage = _STAGE_TEXT[Stage(int(frames.stage[k]))]
        title.set_text(f"t = {times[k]:,.1f} s, {stage}  (frame {n + 1} of {len(chosen)}"
                       f"{'' if every == 1 else f', every {every}th frame'})\n"
                       f"depth in fixed price bands of {data.band_text()}; prices in "
                       f"{units.price_label}, sizes in lots ({data.lot_text()})")

    writer = (animation.PillowWriter(fps=fps) if writer_name == "pillow"
              else animation.FFMpegWriter(fps=fps))
    with writer.saving(fig, str(path), dpi=100):
        for n in range(len(chosen)):
            draw(n)
            writer.grab_frame()
