"""orderbook.plot: the figures render to sane PNGs."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import orderbook
from orderbook import Rules, Sizing, default_scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plot():
    pytest.importorskip("matplotlib")
    from orderbook import plot

    return plot


@pytest.fixture(scope="module")
def result():
    return orderbook.run(default_scenario(0.05))


@pytest.fixture(scope="module")
def comparison():
    return orderbook.compare({"full": Rules(), "partial": Rules(sizing=Sizing.FRACTION)},
                             default_scenario(0.05), counterfactual=False)


def assert_sane_png(path):
    data = path.read_bytes()
    assert len(data) > 1000
    assert data.startswith(PNG_SIGNATURE)
    from matplotlib.image import imread

    height, width = imread(str(path)).shape[:2]
    assert 600 <= width <= 4000
    assert 600 <= height <= 4000


def test_plot_result_writes_png(plot, result, tmp_path):
    assert result.summary["liquidated_accounts"] > 0  # the figure has something to show
    path = tmp_path / "result.png"
    plot.plot_result(result, path)
    assert_sane_png(path)


def test_plot_comparison_writes_png(plot, comparison, tmp_path):
    path = tmp_path / "comparison.png"
    plot.plot_comparison(comparison, path)
    assert_sane_png(path)


def test_result_and_comparison_methods(plot, result, comparison, tmp_path):
    result.plot(tmp_path / "a.png")
    comparison.plot(str(tmp_path / "b.png"))  # str paths work too
    assert_sane_png(tmp_path / "a.png")
    assert_sane_png(tmp_path / "b.png")


def test_plot_without_liquidations(plot, tmp_path):
    quiet = orderbook.run(dataclasses.replace(default_scenario(0.05),
                                              rules=Rules(liquidator=False)))
    assert len(quiet.forced_orders) == 0
    plot.plot_result(quiet, tmp_path / "quiet.png")
    assert_sane_png(tmp_path / "quiet.png")


def test_import_does_not_need_matplotlib():
    code = ("import sys, orderbook, orderbook.plot; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_gives_install_hint(result, tmp_path, monkeypatch):
    from orderbook import plot

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(ImportError, match=r'pip install "orderbook-cascade\[plot\]"'):
        plot.plot_result(result, tmp_path / "x.png")
    with pytest.raises(ImportError, match="matplotlib"):
        plot.plot_comparison(orderbook.scenario.Comparison({"a": result}), tmp_path / "y.png")
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def lobster_replay():
    from pathlib import Path

    from orderbook.data.lobster import Injection, replay_files

    path = Path(__file__).parent / "data" / "lobster_amzn_l1_slice_message.csv"
    return replay_files(path, inject=[Injection(side="sell", qty=1_000, at=500)])


def test_plot_replay_writes_png(plot, lobster_replay, tmp_path):
    path = tmp_path / "replay.png"
    fig = plot.plot_replay(lobster_replay, path=path, zoom=False)   # the day's figure
    assert_sane_png(path)
    spread_ax, depth_ax = fig.axes
    assert "spread" in spread_ax.get_ylabel() and "depth" in depth_ax.get_ylabel()
    assert "hybrid" in fig._suptitle.get_text()


def test_a_hybrid_replay_is_drawn_around_its_injected_order(plot, lobster_replay, tmp_path):
    path = tmp_path / "injection.png"
    fig = plot.plot_replay(lobster_replay, path=path)
    assert_sane_png(path)
    assert "injected sell of 1,000 shares" in fig._suptitle.get_text()
    depth = next(ax for ax in fig.axes if "depth" in ax.get_ylabel())
    t0 = lobster_replay.time[500]
    lo, hi = depth.get_xlim()
    assert lo == pytest.approx(t0 - 30) and hi == pytest.approx(t0 + 120)   # the default window
    narrow = plot.plot_replay(lobster_replay, window=(5, 10))
    depth = next(ax for ax in narrow.axes if "depth" in ax.get_ylabel())
    assert depth.get_xlim() == pytest.approx((t0 - 5, t0 + 10))


def test_the_window_clips_to_the_replays_span(plot, lobster_replay):
    fig = plot.plot_replay(lobster_replay, window=(10_000, 10_000))
    depth = next(ax for ax in fig.axes if "depth" in ax.get_ylabel())
    assert depth.get_xlim() == pytest.approx((lobster_replay.time[0], lobster_replay.time[-1]))
    assert "the replay's span ends there" in depth.get_xlabel()


def test_the_injection_windows_data(lobster_replay):
    from orderbook._plot_replay import taken_by_price, window_series

    rep = lobster_replay.injections[0]
    data = window_series(lobster_replay, (5.0, 10.0))
    first, last = data["rows"]
    t0 = lobster_replay.time[rep.row]
    assert np.all((data["time"] >= t0 - 5) & (data["time"] <= t0 + 10))
    assert first == 0 or lobster_replay.time[first - 1] < t0 - 5
    # history's columns are the orderbook file's, the hybrid's the replay's
    hist = lobster_replay.history
    assert np.array_equal(data["history_bid_depth"], hist.bid_size[first:last].sum(axis=1))
    assert np.array_equal(data["hybrid_bid_depth"], lobster_replay.bid_depth[first:last])
    prices, arrival, later = taken_by_price(rep.fills)
    assert arrival.sum() + later.sum() == rep.filled
    assert np.all(np.diff(prices) > 0)


def test_a_replay_keeps_the_orderbook_file_it_was_compared_with(lobster_replay):
    from pathlib import Path

    from orderbook.data.lobster import read_orderbook

    book = read_orderbook(Path(__file__).parent / "data" / "lobster_amzn_l1_slice_orderbook.csv")
    for ours, theirs in zip(lobster_replay.history, book, strict=True):
        assert np.array_equal(ours, theirs)


def test_a_window_must_look_forward(plot, lobster_replay):
    with pytest.raises(ValueError, match="window"):
        plot.plot_replay(lobster_replay, window=(5, 0))


def test_plot_replay_draws_on_given_axes(plot, lobster_replay):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot.plot_replay(lobster_replay, ax) is fig
    assert len(fig.axes) == 2  # the spread axes and its twin for depth
    assert len(ax.get_lines()) >= 2  # spread and the injection marker


def test_plot_replay_needs_matplotlib(lobster_replay, monkeypatch):
    from orderbook import plot

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "orderbook-cascade\[plot\]"'):
        plot.plot_replay(lobster_replay)


def test_comparison_figure_shows_the_accounts_a_rule_set_leaves_unresolved(plot, tmp_path):
    import warnings

    from test_scenario import stuck_in_the_queue

    from orderbook import Deficit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", orderbook.UnresolvedAccountsWarning)
        comparison = orderbook.compare(
            {"adl": stuck_in_the_queue(Deficit.ADL).rules,
             "none": stuck_in_the_queue(Deficit.NONE).rules},
            stuck_in_the_queue(Deficit.ADL), counterfactual=False)
    units = plot._Units(comparison.results["none"].scenario)
    cells = {key: plot._cell(comparison.results["none"].summary, key, fmt)
             for _, key, fmt in plot._columns(units)}
    # 2 accounts on 15 lots at -140 quote units x 0.005 = -0.70 of quote currency; 2 queued.
    assert (cells["unresolved_accounts"], cells["unresolved_equity"], cells["queue_left"]) == (
        "2 (15)", "-0.70", "2")
    assert plot._unresolved_text(comparison.results["none"].summary, units) == (
        "unresolved at the end: 2 accounts at negative equity (-0.70 quote ccy on 15 lots), "
        "2 still queued")
    assert plot._unresolved_text(comparison.results["adl"].summary, units) is None
    path = tmp_path / "unresolved.png"
    comparison.plot(path)
    assert_sane_png(path)
    comparison.results["none"].plot(tmp_path / "run.png")
    assert_sane_png(tmp_path / "run.png")


def test_the_figure_runs_on_time_and_zooms_on_a_cascade_that_ends_early(plot, result):
    window = plot._cascade_window([result])
    liquidating = result.record_time[result.forced_orders["notional"] > 0] / 1_000
    last_row = result.series["time"][-1] / 1_000
    assert window is not None
    lo, hi = window
    assert lo <= liquidating.min() and liquidating.max() < hi < 0.6 * last_row
    # a cascade that fills the run is not zoomed
    longer = dataclasses.replace(result, series=result.series[: int(hi) + 2])
    assert plot._cascade_window([longer]) is None
    assert plot._time_label(result, window).startswith("time [s] (a step is 1,000 ms")


def test_the_zoomed_figure_has_the_whole_run_in_a_strip(plot, result, tmp_path, monkeypatch):
    seen = []
    original = plot._overview

    def spy(fig, ax, res, window, units):
        seen.append((fig, ax, window))
        original(fig, ax, res, window, units)

    monkeypatch.setattr(plot, "_overview", spy)
    plot.plot_result(result, tmp_path / "zoom.png")
    assert_sane_png(tmp_path / "zoom.png")
    ((fig, strip, window),) = seen
    assert window == plot._cascade_window([result])
    price = fig.axes[0]   # the panels share the price panel's (zoomed) x axis
    assert price.get_xlim() == pytest.approx(window)
    assert strip.get_xlim() == pytest.approx((0, result.series["time"][-1] / 1_000))


# ------------------------------------------------------------------------------ the ladder
GIF_SIGNATURE = b"GIF89a"


@pytest.fixture(scope="module")
def framed():
    return orderbook.run(default_scenario(0.05), counterfactual=False, book_levels=200)


def test_plot_ladder_writes_png(plot, framed, tmp_path):
    path = tmp_path / "ladder.png"
    plot.plot_ladder(framed, path)
    assert_sane_png(path)
    framed.plot_ladder(tmp_path / "method.png")
    assert_sane_png(tmp_path / "method.png")


def test_the_ladder_is_drawn_on_fixed_bands_that_hold_every_fill(plot, framed):
    from orderbook._plot_ladder import _Ladder
    from orderbook.ladder import forced_trades

    data = _Ladder(framed)
    fills = forced_trades(framed)
    edges = data.edges
    assert edges[0] <= fills["price"].min() and fills["price"].max() < edges[-1]
    assert edges[0] <= framed.summary["start_mid"] < edges[-1]
    assert set(np.diff(edges)) == {data.width} and edges[0] % data.width == 0
    shock, by_gen = data.taken()
    assert by_gen.sum() == fills["qty"].sum()   # each generation's lots land in a band
    assert shock.sum() == framed.scenario.shock.sell
    # up to the frame after the shock, nothing but the shock has taken anything
    frames = framed.book_frames
    shock0, gen0 = data.taken(int(frames.trades[1]))
    assert shock0.sum() == framed.scenario.shock.sell and gen0.sum() == 0


def test_the_ladder_figure_of_a_run_without_liquidations(plot, tmp_path):
    quiet = orderbook.run(dataclasses.replace(default_scenario(0.05),
                                              rules=Rules(liquidator=False)))
    plot.plot_ladder(quiet, tmp_path / "quiet.png")
    assert_sane_png(tmp_path / "quiet.png")


def test_the_ladder_needs_the_books_snapshots(plot, result, tmp_path):
    bare = dataclasses.replace(result, book_before=None)
    with pytest.raises(ValueError, match="no book snapshots"):
        plot.plot_ladder(bare, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_animate_writes_a_gif_of_the_cascades_frames(plot, framed, tmp_path, monkeypatch):
    from PIL import Image

    from orderbook import _plot_ladder

    monkeypatch.setattr(_plot_ladder, "MAX_FRAMES", 5)   # a quick GIF: every k-th frame
    path = tmp_path / "cascade.gif"
    framed.animate(path, fps=8)
    data = path.read_bytes()
    assert data.startswith(GIF_SIGNATURE) and len(data) > 10_000
    chosen = _plot_ladder.animation_frames(framed, _plot_ladder._Ladder(framed))
    assert 1 < len(chosen) <= 5
    with Image.open(path) as gif:
        assert gif.n_frames == len(chosen)
        assert 900 <= gif.size[0] <= 2000 and 600 <= gif.size[1] <= 1200


def test_the_animation_frames_cover_the_cascade(plot, framed):
    from orderbook import _plot_ladder
    from orderbook.ladder import Stage

    data = _plot_ladder._Ladder(framed)
    chosen = _plot_ladder.animation_frames(framed, data)
    frames = framed.book_frames
    assert frames.stage[chosen[0]] == Stage.BEFORE_SHOCK
    rounds = np.flatnonzero(frames.stage == Stage.ROUND)
    assert set(rounds) <= set(chosen)             # every round that liquidated is a frame
    assert frames.time[chosen[-1]] / 1_000 <= data.xlim[1]


def test_animate_needs_the_frames_of_a_run_with_book_levels(plot, result, tmp_path):
    with pytest.raises(ValueError, match="book_levels"):
        result.animate(tmp_path / "x.gif")


@pytest.mark.parametrize("name", ["x.png", "x", "x.GIF.txt"])
def test_an_animation_is_a_gif_or_an_mp4(plot, name, tmp_path):
    with pytest.raises(ValueError, match=".gif or .mp4"):
        plot.animation_writer(tmp_path / name)


def test_an_animation_names_its_missing_writer(plot, tmp_path, monkeypatch):
    from matplotlib import animation

    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    with pytest.raises(RuntimeError, match="ffmpeg"):
        plot.animation_writer(tmp_path / "x.mp4")
    with pytest.raises(RuntimeError, match="Pillow"):
        plot.animation_writer(tmp_path / "x.gif")


# ------------------------------------------------------------------------------ comparisons
def test_the_fund_column_reads_start_to_end_in_quote_currency(plot):
    units = plot._Units(default_scenario())    # a quote unit is 0.1 x 0.001 = 0.0001
    (fund,) = [c for c in plot._columns(units) if c[1] == "insurance_fund_end"]
    summary = {"insurance_fund_end": 100_007_825_000}
    # 10**11 units = 10,000,000 of quote currency at the start; 10,000,782.5 at the end
    assert plot._cell(summary, fund[1], fund[2], 100_000_000_000) == (
        "10,000,000 → 10,000,782")
    assert plot._cell(summary, fund[1], fund[2]) == "10,000,782"   # no start: the end alone
    headers = [h for h, _, _ in plot._columns(units)]
    assert "queue left\n(queued at end)" in headers
    assert headers[-1] == "insurance fund [quote ccy]\nstart → end"


def test_names_are_wrapped_never_cut(plot):
    name = "bankruptcy-price IOC with the fund taking over what the book cannot fill"
    wrapped = plot._wrap(name, 20)
    assert wrapped.replace("\n", " ") == name
    assert max(len(line) for line in wrapped.split("\n")) <= 20


def test_paths_that_lie_on_one_another_are_told_apart(plot):
    a, b = np.array([5.0, 4.0, 3.0]), np.array([5.0, 4.0, 2.0])
    styles = plot._path_styles({"x": a, "y": b, "z": a.copy(), "w": a.copy()})
    assert styles["x"] == ("-", "") and styles["y"] == ("-", "")
    assert styles["z"][1] == "(the same path as x)" and styles["w"][1] == "(the same path as x)"
    assert styles["z"][0] != styles["w"][0] and "-" not in (styles["z"][0], styles["w"][0])


def saved_figures(monkeypatch) -> list:
    """The figures the plot functions save, kept for a test to look into."""
    from matplotlib.figure import Figure

    figures, savefig = [], Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def texts(fig) -> str:
    """Every text of a figure (legends and table cells included), lines joined by spaces."""
    from matplotlib.text import Text

    found = [t.get_text() for t in fig.findobj(Text)]
    found += [cell.get_text().get_text() for ax in fig.axes for table in ax.tables
              for cell in table.get_celld().values()]
    return " ".join(text.replace("\n", " ") for text in found)


def test_the_comparison_figure_names_rule_sets_in_full(plot, tmp_path, monkeypatch):
    figures = saved_figures(monkeypatch)
    long = "partial closes of a quarter of the position, one step a round"
    comparison = orderbook.compare({"full": Rules(), long: Rules(sizing=Sizing.FRACTION),
                                    "full again": Rules()},
                                   default_scenario(0.05), counterfactual=False)
    comparison.plot(tmp_path / "names.png")
    assert_sane_png(tmp_path / "names.png")
    (fig,) = figures
    words = texts(fig)
    assert words.count(long) == 2                     # in the legend and in the table
    assert "full again (the same path as full)" in words
    assert "10,000,000 → " in words                   # the fund, from its start
    # nothing drawn past the figure's right edge: the legend and the table fit
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for artist in [fig.axes[0].get_legend()] + fig.axes[1].tables:
        assert artist.get_window_extent(renderer).x1 <= fig.bbox.x1
