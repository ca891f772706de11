"""The command line on damaged files and arguments: one line on stderr and exit status 2, never
a traceback; ``sweep --workers`` capped; the fuzz corpora replayed as regression tests."""

from __future__ import annotations

import gzip
import importlib.util
import warnings
from pathlib import Path

import pytest

import orderbook.cli.scenarios as cli_scenarios
import orderbook.scenario as scenario_module
from orderbook.cli import main
from orderbook.scenario import SerialExecutor, default_scenario, sweep, worker_count

DATA = Path(__file__).resolve().parent / "data"
BINANCE = DATA / "binance_btcusdt_small.gz"
AAPL = DATA / "lobster_aapl_l10_message.csv"
AAPL_BOOK = DATA / "lobster_aapl_l10_orderbook.csv"
FUZZ = Path(__file__).resolve().parent / "fuzz"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(capsys, *argv) -> str:
    """Run the command; assert exit 2 and a single ``orderbook...: error:`` line; return it."""
    code, out, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("orderbook") and "error:" in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- depth (Binance)
def test_depth_on_a_truncated_gzip_capture_names_the_file(capsys, tmp_path):
    packed = BINANCE.read_bytes()
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[:len(packed) // 2])
    line = _one_line_error(capsys, "depth", path)
    assert "cut.gz: damaged gzip stream" in line


def test_depth_on_a_corrupted_deflate_stream_names_the_file(capsys, tmp_path):
    packed = bytearray(BINANCE.read_bytes())
    for i in range(1000, 1100):
        packed[i] ^= 0x55
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(packed))
    line = _one_line_error(capsys, "depth", path)
    assert "flipped.gz: damaged gzip stream" in line


def test_depth_on_a_number_too_large_for_int64_names_the_line_and_field(capsys, tmp_path):
    lines = gzip.decompress(BINANCE.read_bytes()).split(b"\n")[:60]
    assert b'"E":1723161256299' in lines[0]
    lines[0] = lines[0].replace(b'"E":1723161256299', b'"E":99999999999999999999999')
    path = tmp_path / "big.txt"
    path.write_bytes(b"\n".join(lines))
    line = _one_line_error(capsys, "depth", path)
    assert "big.txt: line 1: field 'E' = 99999999999999999999999 is outside" in line


def test_depth_at_snapshot_of_an_empty_capture_names_the_file(capsys, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    line = _one_line_error(capsys, "depth", path, "--at", "snapshot")
    assert "empty.txt: no book: the capture has no usable snapshot" in line


@pytest.mark.parametrize("sell, fragment", [
    ("nan", "--sell sizes must be > 0 and finite, got 'nan'"),
    ("1,inf", "--sell sizes must be > 0 and finite, got 'inf'"),
    ("-inf", "--sell sizes must be > 0 and finite, got '-inf'"),
    ("1e30", "--sell size 1E+30 is 1000000000000000000000000000000000 lots of 0.001, more than"),
])
def test_depth_sell_sizes_that_are_not_finite_or_too_large_name_the_option(capsys, sell,
                                                                           fragment):
    assert fragment in _one_line_error(capsys, "depth", BINANCE, f"--sell={sell}")


@pytest.mark.parametrize("option, value", [("--lot-size", "1e-30"), ("--tick-size", "0"),
                                           ("--tick-size", "nan"), ("--lot-size", "1e40")])
def test_depth_steps_no_int64_size_fits_name_the_option(capsys, option, value):
    line = _one_line_error(capsys, "depth", BINANCE, option, value)
    assert f"argument {option}:" in line and value in line


def test_depth_on_a_directory_names_it(capsys, tmp_path):
    line = _one_line_error(capsys, "depth", tmp_path)
    assert line.endswith(f"{tmp_path}: Is a directory")


# -------------------------------------------------------------------------- replay (LOBSTER)
def test_replay_of_swapped_orderbook_rows_reports_mismatches_and_exits_1(capsys, tmp_path):
    rows = AAPL_BOOK.read_text().splitlines()
    rows[30], rows[70] = rows[70], rows[30]
    swapped = tmp_path / "swapped_orderbook_10.csv"
    swapped.write_text("\n".join(rows) + "\n")
    code, out, err = _run(capsys, "replay", AAPL, "--orderbook", swapped)
    assert code == 1 and "Traceback" not in err, err
    assert "mismatch at row 30" in out


@pytest.mark.parametrize("nrows", ["99999999999999999999", "0", "-3", "1e3"])
def test_replay_nrows_out_of_range_names_the_option(capsys, nrows):
    line = _one_line_error(capsys, "replay", AAPL, "--orderbook", AAPL_BOOK, "--nrows", nrows)
    assert "argument --nrows:" in line and repr(nrows) in line


def test_replay_of_a_message_file_that_is_not_utf8_names_the_file(capsys, tmp_path):
    path = tmp_path / "latin_message_10.csv"
    path.write_bytes(b"34200.0,1,1,10,\xff100,1\n")
    line = _one_line_error(capsys, "replay", path, "--orderbook", AAPL_BOOK)
    assert "latin_message_10.csv: not a LOBSTER message file" in line


def test_replay_of_files_of_different_lengths_names_both(capsys):
    line = _one_line_error(capsys, "replay", AAPL, "--orderbook",
                           DATA / "lobster_amzn_l1_slice_orderbook.csv")
    assert "200 messages but 1000 orderbook rows" in line


# ----------------------------------------------------------------------- scenario and scale
def test_scale_1e308_names_the_value_it_overflows(capsys):
    line = _one_line_error(capsys, "run", "--scale", "1e308")
    assert "scale 1e+308 makes [book] touch_qty" in line


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null on this system")
def test_an_empty_scenario_file_is_refused_not_the_builtin_scenario(capsys):
    line = _one_line_error(capsys, "run", "/dev/null", "--scale", "0.05")
    assert "/dev/null: the scenario file sets nothing" in line


def test_a_scenario_file_with_duplicate_keys_names_the_file(capsys, tmp_path):
    path = tmp_path / "twice.toml"
    path.write_text("steps = 5\nsteps = 6\n")
    line = _one_line_error(capsys, "show", path)
    assert "twice.toml: invalid TOML: Cannot overwrite a value" in line


# ---------------------------------------------------------------------------- sweep workers
class _RecordingPool(SerialExecutor):
    """Stands in for ProcessPoolExecutor: records max_workers, runs tasks in this process."""

    created: list[int] = []

    def __init__(self, max_workers=None):
        super().__init__()
        type(self).created.append(max_workers)


@pytest.fixture
def recording_pool(monkeypatch):
    _RecordingPool.created = []
    monkeypatch.setattr(scenario_module, "usable_cpus", lambda: 4)
    monkeypatch.setattr(cli_scenarios, "usable_cpus", lambda: 4)
    monkeypatch.setattr(cli_scenarios, "ProcessPoolExecutor", _RecordingPool)
    monkeypatch.setattr(scenario_module, "ProcessPoolExecutor", _RecordingPool)
    return _RecordingPool.created


def test_sweep_workers_are_capped_at_the_cpus_and_said_so(capsys, recording_pool):
    code, out, err = _run(capsys, "sweep", "--scale", "0.02", "--no-counterfactual", "--quiet",
                          "--param", "steps=3,4,5,6,7,8", "--workers", "100000")
    assert code == 0, err
    assert recording_pool == [4]
    assert "--workers 100000 capped at 4 (6 runs, 4 usable CPUs)" in err


def test_sweep_workers_are_capped_at_the_grid_size(capsys, recording_pool):
    code, _, err = _run(capsys, "sweep", "--scale", "0.02", "--no-counterfactual", "--quiet",
                        "--param", "steps=3,4", "--workers", "3")
    assert code == 0, err
    assert recording_pool == [2] and "capped at 2 (2 runs" in err


def test_sweep_workers_within_the_caps_are_used_as_given_without_a_note(capsys, recording_pool):
    code, _, err = _run(capsys, "sweep", "--scale", "0.02", "--no-counterfactual", "--quiet",
                        "--param", "steps=3,4,5", "--workers", "2")
    assert code == 0, err
    assert recording_pool == [2] and "capped" not in err


def test_library_sweep_caps_workers_with_a_warning(recording_pool):
    with pytest.warns(RuntimeWarning, match="100000 workers requested, using 2"):
        rows = sweep({"steps": [3, 4]}, default_scenario(0.02), counterfactual=False,
                     workers=100_000)
    assert recording_pool == [2] and [r["steps"] for r in rows] == [3, 4]


def test_library_sweep_default_pool_is_no_larger_than_the_grid(recording_pool):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sweep({"steps": [3]}, default_scenario(0.02), counterfactual=False)
    assert recording_pool == [1]


def test_library_sweep_takes_an_executor_or_workers_not_both():
    with pytest.raises(TypeError, match="executor or workers"):
        sweep({"steps": [3]}, executor=SerialExecutor(), workers=2)


@pytest.mark.parametrize("requested, tasks, cpus, expected", [
    (None, 10, 4, 4), (None, 2, 4, 2), (100_000, 10, 4, 4), (3, 10, 4, 3), (5, 0, 4, 1),
])
def test_worker_count_is_the_request_capped_at_cpus_and_tasks(monkeypatch, requested, tasks,
                                                               cpus, expected):
    monkeypatch.setattr(scenario_module, "usable_cpus", lambda: cpus)
    assert worker_count(requested, tasks) == expected


@pytest.mark.parametrize("requested", [0, -1, 1.5, True])
def test_worker_count_refuses_a_request_below_one_or_not_an_int(requested):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        worker_count(requested, 5)


# ------------------------------------------------------------------------------ fuzz corpora
def _target(name: str):
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ / f"fuzz_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CORPUS = [(name, path) for name in ("binance", "lobster", "scenario_toml")
          for path in sorted((FUZZ / "corpus" / name).iterdir())]


@pytest.mark.parametrize("name, path", CORPUS, ids=[f"{n}/{p.name}" for n, p in CORPUS])
def test_fuzz_corpus_input_raises_only_documented_errors(name, path):
    _target(name).test_one_input(path.read_bytes())


# ------------------------------------------------------------------ early failure, quiet ends
def test_version_prints_the_package_version(capsys):
    import orderbook

    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.strip() == f"orderbook {orderbook.__version__}"


@pytest.mark.parametrize("argv,message", [
    (["run", "{missing}"], "scenario file {missing} not found"),
    (["compare", "{missing}", "--rules", "x={missing}"], "scenario file {missing} not found"),
    (["compare", "--rules", "x={missing}"], "--rules x={missing}: file {missing} not found"),
    (["run", "--plot", "{tmp}/no/such/dir/x.png"], "--plot {tmp}/no/such/dir/x.png: directory "
                                                   "{tmp}/no/such/dir not found"),
    (["run", "--ladder", "{tmp}/no/x.png"], "--ladder {tmp}/no/x.png: directory {tmp}/no "
                                            "not found"),
    (["run", "--animate", "{tmp}/no/x.gif"], "--animate {tmp}/no/x.gif: directory {tmp}/no "
                                             "not found"),
    (["run", "--animate", "{tmp}/x.png"], "--animate {tmp}/x.png: an animation is written as "
                                          ".gif or .mp4, not .png"),
])
def test_a_missing_input_or_plot_folder_fails_before_anything_runs(capsys, tmp_path, argv,
                                                                   message, monkeypatch):
    # the run itself must not start: a run here would take seconds and print its table
    monkeypatch.setattr(cli_scenarios, "run", lambda *a, **k: pytest.fail("the run started"))
    missing = tmp_path / "missing.toml"
    fill = {"missing": missing, "tmp": tmp_path}
    line = _one_line_error(capsys, *[a.format(**fill) for a in argv])
    assert message.format(**fill) in line


def test_an_animation_without_its_writer_fails_before_the_run(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib import animation

    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    monkeypatch.setattr(cli_scenarios, "run", lambda *a, **k: pytest.fail("the run started"))
    line = _one_line_error(capsys, "run", "--animate", tmp_path / "x.mp4")
    assert line.endswith(f"--animate {tmp_path / 'x.mp4'}: writing .mp4 needs the ffmpeg "
                         f"program on PATH (or write a .gif)")


def test_the_book_figures_are_refused_on_a_file_of_several_venues(capsys, monkeypatch):
    examples = Path(__file__).resolve().parent.parent / "examples"
    monkeypatch.setattr(cli_scenarios, "run_market",
                        lambda *a, **k: pytest.fail("the run started"))
    line = _one_line_error(capsys, "run", examples / "two_venues.toml", "--ladder", "x.png")
    assert "--ladder does not apply to a file of several venues" in line


def test_a_plot_path_that_cannot_be_written_fails_before_the_run(capsys, tmp_path, monkeypatch):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes anywhere: no unwritable folder to test with")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setattr(cli_scenarios, "run", lambda *a, **k: pytest.fail("the run started"))
    assert "not writable" in _one_line_error(capsys, "run", "--plot", folder / "x.png")


def test_a_reader_that_goes_away_ends_the_command_quietly():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "orderbook", "show"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()   # as `| head` does once it has what it wants
    _, err = proc.communicate(timeout=120)
    assert err == b"" and proc.returncode == 141, (proc.returncode, err)
