"""``orderbook depth`` and ``orderbook replay``: real-data commands, end to end in-process."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from orderbook.cli import main

DATA = Path(__file__).resolve().parent / "data"
BINANCE = DATA / "binance_btcusdt_small.gz"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_depth_prints_sequence_checks_and_a_slippage_row_per_size(capsys):
    code, out, err = _run(capsys, "depth", BINANCE, "--sell", "1,5")
    assert code == 0, err
    assert "0 gaps" in out and "4 stale" in out
    assert "204/204 agree" in out
    sizes = [line.split()[0] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert sizes == ["1.000", "5.000"]


def test_depth_json_fills_are_conserved_and_priced_no_better_than_the_touch(capsys):
    code, out, err = _run(capsys, "depth", BINANCE, "--sell", "1,5,2000", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["gaps"] == 0 and doc["book_ticker_agreed"] == doc["book_ticker_checked"] > 0
    best_bid = Decimal(doc["best_bid"])
    for row in doc["sells"]:
        assert Decimal(row["filled"]) + Decimal(row["unfilled"]) == Decimal(row["size"])
        assert Decimal(row["worst_price"]) <= Decimal(row["average_price"]) <= best_bid
        assert Decimal(row["cost"]) >= 0
    assert doc["levels"] == "all known" and doc["bid_levels"] >= doc["window_bid_levels"]
    assert [row["exceeds_book"] for row in doc["sells"]] == [
        Decimal(row["unfilled"]) > 0 for row in doc["sells"]]
    code, out, err = _run(capsys, "depth", BINANCE, "--sell", "1,5,2000", "--json",
                          "--snapshot-window")
    window = json.loads(out)
    assert window["levels"] == "snapshot window"
    assert window["bid_levels"] == window["window_bid_levels"] <= doc["bid_levels"]
    # 2,000 BTC exhausts the snapshot window, and says so
    assert Decimal(window["sells"][2]["unfilled"]) > 0 and window["sells"][2]["exceeds_book"]


def test_depth_notes_a_sell_that_exhausts_the_levels_it_may_use(capsys):
    code, out, err = _run(capsys, "depth", BINANCE, "--sell", "2000", "--snapshot-window")
    assert code == 0, err
    assert "more than the snapshot's window holds" in out
    assert "bids      the snapshot's window only (--snapshot-window)" in out


def test_depth_takes_a_clock_time(capsys):
    import datetime

    from orderbook.data.binance import read_capture, replay

    rebuilt = replay(read_capture(BINANCE))
    first = int(rebuilt.states["local_ns"][0])
    later = first + 2 * 10**9   # two seconds into the capture, as a UTC clock time
    clock = datetime.datetime.fromtimestamp(later // 10**9, datetime.timezone.utc)
    text = clock.strftime("%H:%M:%S") + f".{later % 10**9 // 10**6:03d}"
    code, out, err = _run(capsys, "depth", BINANCE, "--at", text, "--json")
    assert code == 0, err
    expected = rebuilt.book_at(local_ns=later - later % 10**6).update_id
    assert json.loads(out)["update_id"] == expected
    before = datetime.datetime.fromtimestamp(first // 10**9 - 60, datetime.timezone.utc)
    code, out, err = _run(capsys, "depth", BINANCE, "--at", before.strftime("%H:%M"))
    assert code != 0 and "no book at" in err
    code, out, err = _run(capsys, "depth", BINANCE, "--at", "9:99", "--json")
    assert code == 2 and "--at clock time must be HH:MM[:SS[.fff]] (UTC), got '9:99'" in err


@pytest.mark.parametrize("argv, fragment", [
    (["--sell", "1,x"], "--sell sizes must be numbers"),
    (["--sell", "0"], "--sell sizes must be > 0"),
    (["--sell", "0.0005"], "not a whole number of lots"),
    (["--at", "noon"], "--at must be end, snapshot"),
])
def test_depth_bad_arguments_are_one_line_errors(capsys, argv, fragment):
    code, out, err = _run(capsys, "depth", BINANCE, *argv)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_depth_missing_file_is_an_error(capsys, tmp_path):
    code, _, err = _run(capsys, "depth", tmp_path / "nope.gz")
    assert code == 2 and "nope.gz" in err


AAPL = DATA / "lobster_aapl_l10_message.csv"
AAPL_BOOK = DATA / "lobster_aapl_l10_orderbook.csv"


def test_replay_prints_match_rate_speed_and_exits_0_when_every_row_matches(capsys, tmp_path):
    code, out, err = _run(capsys, "replay", AAPL, "--orderbook", AAPL_BOOK,
                          "--plot", tmp_path / "replay.png")
    assert code == 0, err
    assert "matched 200 / 200 (100.000 %)" in out and "0 mismatched" in out
    assert "messages/s" in out
    assert (tmp_path / "replay.png").stat().st_size > 0


def test_replay_json_with_an_injected_sell_reports_its_fills(capsys):
    code, out, err = _run(capsys, "replay", AAPL, "--orderbook", AAPL_BOOK, "--json",
                          "--inject", "sell 300 row=100")
    assert code == 0, err
    doc = json.loads(out)
    # rows after the injection are measured against history, not counted as matches
    assert doc["rows"] == 200 and doc["matched"] >= 100 and doc["mismatches"] == []
    (inj,) = doc["injections"]
    assert (inj["side"], inj["qty"], inj["row"], inj["filled"]) == (-1, 300, 100, 300)
    assert inj["notional"] <= inj["touch_before"] * 300 and inj["slippage_ticks"] >= 0
    assert doc["divergence"]["first_row"] == 100


def test_replay_with_an_injection_draws_the_window_around_it(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "inject.png"
    code, out, err = _run(capsys, "replay", AAPL, "--orderbook", AAPL_BOOK,
                          "--inject", "sell 300 row=100", "--plot", path)
    assert code == 0, err
    assert f"wrote {path}" in out
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000
    code, out, err = _run(capsys, "replay", AAPL, "--orderbook", AAPL_BOOK,
                          "--inject", "sell 300 row=100", "--plot", path, "--window", "0.5,1")
    assert code == 0, err


@pytest.mark.parametrize("argv, fragment", [
    (["--window", "5,10"], "--window needs --inject and --plot"),
    (["--window", "5"], "must be BEFORE,AFTER in seconds"),
    (["--window", "5,0"], "AFTER > 0"),
    (["--window=-1,5"], "BEFORE >= 0"),
])
def test_replay_window_errors_are_one_line(capsys, argv, fragment):
    code, out, err = _run(capsys, "replay", AAPL, "--orderbook", AAPL_BOOK, *argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_replay_exits_1_when_a_row_mismatches(capsys, tmp_path):
    rows = AAPL.read_text().splitlines()
    fields = rows[3].split(",")
    assert fields[1] == "1"  # a submission inside the published levels
    fields[3] = str(int(fields[3]) + 1)  # its size off by one share
    rows[3] = ",".join(fields)
    bad = tmp_path / "bad_message.csv"
    bad.write_text("\n".join(rows) + "\n")
    code, out, _ = _run(capsys, "replay", bad, "--orderbook", AAPL_BOOK)
    assert code == 1 and "mismatch at row" in out


@pytest.mark.parametrize("spec, fragment", [
    ("sell", "needs SIDE QTY"),
    ("sell many row=3", "whole number of shares"),
    ("sell 10 row=x", "row must be a message index"),
    ("sell 10 time=25h", "time must be HH:MM"),
    ("sell 10 when=3", "key must be limit, row, time or position"),
    ("hold 10 row=3", "Injection.side"),
    ("sell 10 row=3 time=10:00", "exactly one of at"),
])
def test_replay_bad_injections_are_one_line_errors(capsys, spec, fragment):
    code, _, err = _run(capsys, "replay", AAPL, "--orderbook", AAPL_BOOK, "--inject", spec)
    assert code == 2 and fragment in err and "Traceback" not in err
