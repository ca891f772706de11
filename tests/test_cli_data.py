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
    assert out.count("\n     1.000 ") + out.count("\n     5.000 ") == 2


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
    assert Decimal(doc["sells"][2]["unfilled"]) > 0  # 2,000 BTC exhausts the snapshot window


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
