"""orderbook.plot: the figures render to sane PNGs."""

import dataclasses
import subprocess
import sys

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
    with pytest.raises(ImportError, match=r'pip install "orderbook\[plot\]"'):
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
    fig = plot.plot_replay(lobster_replay, path=path)
    assert_sane_png(path)
    spread_ax, depth_ax = fig.axes
    assert "spread" in spread_ax.get_ylabel() and "depth" in depth_ax.get_ylabel()
    assert "hybrid" in fig._suptitle.get_text()


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
    with pytest.raises(ImportError, match=r'pip install "orderbook\[plot\]"'):
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
