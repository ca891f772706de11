"""Binance USD-M capture reader: parsing, the documented sequence rules, the touch check, seeding.

Hand-made sequences test one rule each; the committed fixture (the first 3,000 lines of the shared
capture: 234 diffs around the snapshot on line 55) tests the real format; the full shared capture,
when present, pins the measured counts.
"""

import gzip
import importlib.util
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from orderbook import Population, Scenario, Shock, Side, run, slippage
from orderbook.data.binance import (
    BOOK_TICKER_DTYPE,
    DIFF_DTYPE,
    TRADE_DTYPE,
    DataError,
    DataTypeError,
    DecimalGrid,
    GapKind,
    L2Book,
    StateKind,
    parse_lines,
    read_capture,
    replay,
)

FIXTURE = Path(__file__).parent / "data" / "binance_btcusdt_small.gz"
FULL = Path(__file__).parents[1].parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
EXAMPLE = Path(__file__).parents[1] / "examples" / "binance_slippage.py"


# ------------------------------------------------------------------------- hand-made lines
def snapshot(ns, last_update_id, bids, asks):
    body = {"lastUpdateId": last_update_id, "E": ns // 10**6, "T": ns // 10**6,
            "bids": bids, "asks": asks}
    return f"{ns} {json.dumps(body)}"


def diff(ns, first, last, prev, bids=(), asks=()):
    data = {"e": "depthUpdate", "E": ns // 10**6, "T": ns // 10**6, "s": "BTCUSDT", "U": first,
            "u": last, "pu": prev, "b": [list(x) for x in bids], "a": [list(x) for x in asks]}
    return f"{ns} {json.dumps({'stream': 'btcusdt@depth@0ms', 'data': data})}"


def ticker(ns, update_id, bid, bid_qty, ask, ask_qty):
    data = {"e": "bookTicker", "u": update_id, "s": "BTCUSDT", "b": bid, "B": bid_qty, "a": ask,
            "A": ask_qty, "T": ns // 10**6, "E": ns // 10**6}
    return f"{ns} {json.dumps({'stream': 'btcusdt@bookTicker', 'data': data})}"


def trade(ns, trade_id, price, qty, buyer_is_maker):
    data = {"e": "trade", "E": ns // 10**6, "T": ns // 10**6, "s": "BTCUSDT", "t": trade_id,
            "p": price, "q": qty, "X": "MARKET", "m": buyer_is_maker}
    return f"{ns} {json.dumps({'stream': 'btcusdt@trade', 'data': data})}"


BOOK = snapshot(2_000_000, 100, [["100.0", "1.000"], ["99.9", "2.000"], ["99.5", "3.000"]],
                [["100.1", "1.500"], ["100.2", "0.500"], ["100.9", "4.000"]])


def replayed(*lines):
    return replay(parse_lines(list(lines)))


# ---------------------------------------------------------------------------- conversion
def test_decimal_strings_convert_exactly_to_ticks_and_lots():
    price, qty = DecimalGrid("0.1", "price"), DecimalGrid("0.001", "qty")
    assert price("61800.20") == 618_002
    assert price("61800.2") == 618_002
    assert price("0.1") == 1
    assert qty("2.909") == 2_909
    assert qty("0.000") == 0
    assert DecimalGrid("0.5", "price")("2.50") == 5
    assert DecimalGrid("10", "price")("120") == 12


@pytest.mark.parametrize("text", ["61800.25", "61800.01", "0.05"])
def test_price_off_the_tick_grid_is_a_value_error_naming_it(text):
    with pytest.raises(ValueError, match=rf"price '{text}' is not on the 0.1 grid"):
        DecimalGrid("0.1", "price")(text)


@pytest.mark.parametrize("text", ["-1.0", "1e3", "abc", "", "1.2.3", " 1.0", "١٠٠"])
def test_malformed_decimal_string_is_a_value_error(text):
    with pytest.raises(ValueError, match="qty must be a non-negative decimal string"):
        DecimalGrid("0.001", "qty")(text)


def test_float_price_is_a_type_error():
    with pytest.raises(TypeError, match="price must be a decimal string, got 61800.2"):
        DecimalGrid("0.1", "price")(61800.2)


@pytest.mark.parametrize("step", ["0", "-0.1", "abc", "nan"])
def test_bad_grid_step_is_rejected(step):
    with pytest.raises(ValueError, match="price step"):
        DecimalGrid(step, "price")


def test_off_grid_price_in_a_diff_names_the_line_and_value():
    with pytest.raises(ValueError, match=r"line 2: price '100.05' is not on the 0.1 grid"):
        parse_lines([BOOK, diff(3_000_000, 90, 101, 80, bids=[("100.05", "1.000")])])


def test_off_grid_quantity_in_a_book_ticker_names_the_line():
    with pytest.raises(ValueError, match=r"line 2: qty '1.0005' is not on the 0.001 grid"):
        parse_lines([BOOK, ticker(3_000_000, 101, "100.0", "1.0005", "100.1", "1.500")])


def test_bad_json_names_the_line():
    with pytest.raises(ValueError, match="line 2:"):
        parse_lines([BOOK, '3000000 {"stream": "x", "data": {'])


def test_missing_field_names_the_line_and_field():
    line = diff(3_000_000, 90, 101, 80).replace('"pu": 80, ', "")
    with pytest.raises(ValueError, match=r"line 1: missing field 'pu'"):
        parse_lines([line])


def test_missing_timestamp_names_the_line():
    with pytest.raises(ValueError, match="line 1:"):
        parse_lines(['{"lastUpdateId": 1, "bids": [], "asks": []}'])


def test_off_grid_price_in_a_snapshot_names_the_line():
    bad = snapshot(2_000_000, 100, [["100.0", "1.000"]], [["100.15", "1.000"]])
    with pytest.raises(ValueError, match=r"line 2: price '100.15' is not on the 0.1 grid"):
        parse_lines([diff(1_000_000, 80, 85, 70), bad])


@pytest.mark.parametrize("levels", ['[["100.0"]]', '[["100.0", "1.000", "x"]]', '"100.0"',
                                    '[5]'])
def test_malformed_levels_name_the_line_and_field(levels):
    line = diff(3_000_000, 90, 101, 80).replace('"b": []', f'"b": {levels}')
    with pytest.raises(ValueError, match=r"line 1: field 'b' must be a list of \[price, qty\]"):
        parse_lines([line])


def test_snapshot_without_asks_names_the_line():
    with pytest.raises(ValueError, match=r"line 1: missing field 'asks'"):
        parse_lines(['5 {"lastUpdateId": 1, "bids": []}'])


def test_two_symbols_in_one_capture_are_rejected():
    other = diff(3_000_000, 90, 101, 80).replace("BTCUSDT", "ETHUSDT")
    with pytest.raises(ValueError, match="line 2: symbol 'ETHUSDT' differs from 'BTCUSDT'"):
        parse_lines([diff(1_000_000, 80, 85, 70), other])


def test_messages_become_structured_arrays():
    cap = parse_lines([BOOK, diff(3_000_000, 90, 101, 80, bids=[("100.0", "0.500")],
                                  asks=[("100.1", "0"), ("100.3", "1.250")]),
                       ticker(3_000_001, 101, "100.0", "0.500", "100.2", "0.500"),
                       trade(3_000_002, 7, "100.0", "0.250", True),
                       trade(3_000_003, 8, "100.2", "0.010", False), ""])
    assert cap.lines == 5 and cap.symbol == "BTCUSDT" and cap.other == 0
    assert cap.diffs.dtype == DIFF_DTYPE and cap.book_tickers.dtype == BOOK_TICKER_DTYPE
    assert cap.trades.dtype == TRADE_DTYPE
    assert cap.diffs[0][["line", "first_id", "last_id", "prev_id", "start", "stop"]].tolist() == (
        2, 90, 101, 80, 0, 3)
    assert cap.levels.tolist() == [(1, 1000, 500), (-1, 1001, 0), (-1, 1003, 1250)]
    assert cap.book_tickers[0][["update_id", "bid_price", "bid_qty", "ask_price",
                                "ask_qty"]].tolist() == (101, 1000, 500, 1002, 500)
    # m = buyer is maker: the seller was the aggressor
    assert cap.trades["side"].tolist() == [Side.SELL, Side.BUY]
    assert cap.trades[["price", "qty"]].tolist() == [(1000, 250), (1002, 10)]
    assert cap.snapshots[0].bids.tolist() == [[1000, 1000], [999, 2000], [995, 3000]]


def test_other_event_types_are_counted_not_dropped_silently():
    line = '5 {"stream": "btcusdt@markPrice", "data": {"e": "markPriceUpdate", "s": "BTCUSDT"}}'
    assert parse_lines([BOOK, line]).other == 1


def test_gzip_and_plain_text_read_the_same(tmp_path):
    text = "\n".join([BOOK, diff(3_000_000, 90, 101, 80, bids=[("100.0", "0.500")])]) + "\n"
    plain, packed = tmp_path / "capture.txt", tmp_path / "capture.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    a, b = read_capture(plain), read_capture(packed)
    assert a.diffs.tolist() == b.diffs.tolist() and a.levels.tolist() == b.levels.tolist()


# ------------------------------------------------------------------------- damaged files
def _capture_text(*lines) -> bytes:
    return ("\n".join(lines) + "\n").encode()


GOOD = _capture_text(BOOK, diff(3_000_000, 90, 101, 80, bids=[("100.0", "0.500")]))


def test_a_truncated_gzip_capture_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.gz"
    packed = gzip.compress(GOOD)
    path.write_bytes(packed[:len(packed) // 2])
    with pytest.raises(DataError, match=r"cut\.gz: damaged gzip stream"):
        read_capture(path)


def test_a_corrupted_deflate_stream_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.gz"
    packed = bytearray(gzip.compress(GOOD * 20))
    for i in range(12, 60):  # inside the deflate blocks, after the 10-byte header
        packed[i] ^= 0x55
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=r"bad\.gz: damaged gzip stream"):
        read_capture(path)


def test_an_integer_too_large_for_int64_names_the_line_and_field():
    line = diff(3_000_000, 90, 101, 80).replace('"E": 3', '"E": 99999999999999999999')
    with pytest.raises(DataError, match=r"line 2: field 'E' = 99999999999999999999 is outside"):
        parse_lines([BOOK, line])


@pytest.mark.parametrize("replace_from, replace_to, fragment", [
    ('"U": 90', '"U": -1', "field 'U' = -1 is outside"),
    ('"U": 90', '"U": 90.5', "field 'U' must be an integer"),
    ('"U": 90', '"U": "90"', "field 'U' must be an integer"),
    ('"U": 90', '"U": true', "field 'U' must be an integer"),
    ('"b": []', '"b": 0', "field 'b' must be a list"),
    ('"b": []', '"b": [["0.0", "1.000"]]', "price must be > 0"),
    ('"b": []', '"b": [["1' + "0" * 30 + '", "1.000"]]', "more than an int64 holds"),
    ('"b": []', '"b": [[100.0, "1.000"]]', "price must be a decimal string"),
    ('"b": []', '"b": [[[1], "1.000"]]', "price must be a decimal string"),
    ('"s": "BTCUSDT"', '"s": ["BTCUSDT"]', "field 's' must be a string"),
])
def test_damaged_fields_of_a_diff_are_data_errors_naming_the_line(replace_from, replace_to,
                                                                  fragment):
    line = diff(3_000_000, 90, 101, 80).replace(replace_from, replace_to)
    assert line != diff(3_000_000, 90, 101, 80)
    with pytest.raises(DataError, match=re.escape(fragment)) as info:
        parse_lines([BOOK, line])
    assert str(info.value).startswith("line 2: ")


def test_a_field_of_the_wrong_json_type_is_also_a_type_error():
    line = trade(3_000_000, 7, "100.0", "0.250", True).replace('"m": true', '"m": 1')
    with pytest.raises(DataTypeError, match="line 2: field 'm' must be true or false"):
        parse_lines([BOOK, line])
    assert issubclass(DataTypeError, TypeError) and issubclass(DataError, ValueError)


@pytest.mark.parametrize("stamp", ["-5", "+5", "5.0", "\u0665", "1" * 20, "99999999999999999999"])
def test_a_line_must_start_with_a_local_time_in_ascii_digits_within_int64(stamp):
    with pytest.raises(DataError, match="line 1: the line must start with a local time in ns"):
        parse_lines([BOOK.replace("2000000", stamp, 1)])


def test_a_snapshot_id_too_large_for_int64_names_the_line():
    bad = snapshot(2_000_000, 2**63, [["100.0", "1.000"]], [["100.1", "1.000"]])
    with pytest.raises(DataError, match=r"line 1: field 'lastUpdateId' = 9223372036854775808"):
        parse_lines([bad])


def test_deeply_nested_json_is_a_data_error():
    with pytest.raises(DataError, match="line 1: JSON nested too deeply"):
        parse_lines(["5 " + "[" * 100_000])


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(GOOD + b"5 {\"e\": \"caf\xe9\"}\n")
    with pytest.raises(DataError, match=r"latin\.txt: line 3: byte b'\\xe9' is not UTF-8"):
        read_capture(path)


def test_crlf_line_ends_and_blank_lines_read_like_plain_lines(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"\r\n" + GOOD.replace(b"\n", b"\r\n\r\n"))
    plain = parse_lines(GOOD.decode().split("\n"))
    dos = read_capture(path)
    assert dos.lines == plain.lines == 2
    assert dos.levels.tolist() == plain.levels.tolist()
    assert dos.diffs["line"].tolist() == [4]  # blank line, snapshot, blank line, diff


def test_an_empty_capture_asked_for_its_snapshot_book_is_a_data_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    rebuilt = replay(read_capture(path))
    with pytest.raises(DataError, match=r"empty\.txt: no book: the capture has no usable snapshot"):
        rebuilt.book_when("snapshot")


def test_a_time_past_int64_is_after_every_state_and_one_before_it_precedes_them():
    rebuilt = replayed(BOOK, diff(3_000_000, 90, 101, 80, bids=[("100.0", "0.500")]))
    assert rebuilt.book_at(local_ns=10**30).update_id == 101
    assert rebuilt.book_when(str(10**30)).update_id == 101
    with pytest.raises(DataError, match="no book at local_ns=-1000000000000000000000000000000"):
        rebuilt.book_at(local_ns=-10**30)


def test_a_directory_is_an_os_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        read_capture(tmp_path)


@pytest.mark.parametrize("step", ["1e-30", "1e19"])
def test_a_grid_step_no_int64_price_fits_is_rejected(step):
    with pytest.raises(ValueError, match="price step must be between 1e-18 and 1e18"):
        DecimalGrid(step, "price")


# ------------------------------------------------------------------------- sequence rules
def test_diffs_ending_before_the_snapshot_are_dropped_as_stale():
    r = replayed(diff(1_000_000, 80, 99, 70, bids=[("100.0", "9.000")]), BOOK,
                 diff(3_000_000, 95, 105, 99, bids=[("99.9", "2.500")]))
    assert (r.diffs_stale, r.diffs_applied, len(r.gaps)) == (1, 1, 0)
    book = r.book_at()
    assert book.bids[1000] == 1000  # the stale diff's 9 BTC never landed
    assert book.bids[999] == 2500


def test_buffered_diffs_are_applied_at_the_snapshot_receive_time():
    r = replayed(diff(1_000_000, 95, 105, 90, asks=[("100.1", "0.700")]), BOOK,
                 diff(3_000_000, 106, 110, 105, asks=[("100.1", "0.800")]))
    assert r.states["kind"].tolist() == [StateKind.SNAPSHOT, StateKind.DIFF, StateKind.DIFF]
    assert r.states["local_ns"].tolist() == [2_000_000, 2_000_000, 3_000_000]
    assert r.states["update_id"].tolist() == [100, 105, 110]
    assert r.book_at(local_ns=2_500_000).asks[1001] == 700
    assert r.book_at(local_ns=3_000_000).asks[1001] == 800


def test_first_diff_must_straddle_the_snapshot_id():
    r = replayed(BOOK, diff(3_000_000, 102, 105, 101, bids=[("100.0", "5.000")]))
    assert r.gaps[["kind", "line", "expected", "got"]].tolist() == [(GapKind.BRIDGE, 2, 100, 102)]
    assert not r.valid_at_end and r.diffs_applied == 0 and r.diffs_unsynced == 1
    with pytest.raises(ValueError, match="sequence gap at line 2"):
        r.book_at()


def test_pu_not_matching_previous_u_is_a_gap_that_invalidates_the_book():
    r = replayed(BOOK, diff(3_000_000, 98, 105, 97, bids=[("100.0", "1.100")]),
                 diff(4_000_000, 106, 110, 105, bids=[("100.0", "1.200")]),
                 diff(5_000_000, 115, 120, 112, bids=[("100.0", "1.300")]),
                 diff(6_000_000, 121, 125, 120, bids=[("100.0", "1.400")]))
    assert len(r.gaps) == 1
    assert r.gaps[0][["kind", "line", "local_ns", "expected", "got"]].tolist() == (
        GapKind.SEQUENCE, 4, 5_000_000, 110, 112)
    assert (r.diffs_applied, r.diffs_unsynced) == (2, 2)
    assert r.states["kind"][-1] == StateKind.GAP and not r.valid_at_end
    assert r.book_at(local_ns=4_999_999).bids[1000] == 1200  # valid up to the gap
    with pytest.raises(ValueError, match="no valid book at local_ns=5000000: sequence gap at "
                                         "line 4 and no snapshot after it"):
        r.book_at(local_ns=5_000_000)


def test_a_new_snapshot_after_a_gap_resynchronises_the_book():
    second = snapshot(7_000_000, 122, [["100.0", "2.000"]], [["100.1", "2.000"]])
    r = replayed(BOOK, diff(3_000_000, 98, 105, 97),
                 diff(5_000_000, 115, 120, 112, bids=[("100.0", "1.300")]),
                 diff(6_000_000, 121, 125, 120, bids=[("100.0", "1.400")]), second,
                 diff(8_000_000, 126, 130, 125, asks=[("100.1", "2.100")]))
    assert (r.snapshots, r.snapshots_applied, len(r.gaps)) == (2, 2, 1)
    # the gap-revealing diff ends before the new snapshot (stale); the next bridges it
    assert (r.diffs_stale, r.diffs_applied, r.diffs_unsynced) == (1, 3, 0)
    assert r.valid_at_end
    book = r.book_at()
    assert book.bids[1000] == 1400 and book.asks[1001] == 2100
    assert book.update_id == 130


def test_snapshot_received_while_in_sync_is_counted_not_loaded():
    again = snapshot(4_000_000, 104, [["50.0", "1.000"]], [["150.0", "1.000"]])
    r = replayed(BOOK, diff(3_000_000, 98, 105, 97), again, diff(5_000_000, 106, 108, 105))
    assert (r.snapshots, r.snapshots_applied, r.diffs_applied) == (2, 1, 2)
    assert r.book_at().best_bid() == (1000, 1000)


def test_zero_quantity_removes_the_level_and_quantities_are_absolute():
    r = replayed(BOOK, diff(3_000_000, 98, 105, 97, bids=[("100.0", "0.000"), ("99.9", "0.250")],
                            asks=[("100.5", "0")]))
    book = r.book_at()
    assert 1000 not in book.bids
    assert book.bids[999] == 250  # set to 0.25, not 2 + 0.25
    assert book.best_bid() == (999, 250)
    assert book.absent_deletes == 1 and r.absent_deletes == 1  # 100.5 was never there


def test_book_at_before_the_first_snapshot_is_an_error():
    r = replayed(BOOK)
    with pytest.raises(ValueError, match="no book at local_ns=1999999: the first book is at "
                                         "local_ns=2000000"):
        r.book_at(1_999_999)


def test_capture_without_snapshot_has_no_book_and_no_checked_tickers():
    r = replayed(diff(1_000_000, 80, 85, 70), ticker(1_000_001, 85, "100.0", "1.000", "100.1",
                                                     "1.000"))
    assert (r.diffs_unsynced, r.valid_at_end) == (1, False)
    with pytest.raises(ValueError, match="no usable snapshot"):
        r.book_at()
    check = r.check_book_tickers()
    assert (check.checked, check.uncovered, check.state_checked) == (0, 1, 0)
    assert np.isnan(check.price_rate)


def test_book_at_takes_one_kind_of_point():
    r = replayed(BOOK)
    with pytest.raises(TypeError, match="at most one of"):
        r.book_at(2_000_000, update_id=100)
    with pytest.raises(TypeError, match="local_ns must be an integer"):
        r.book_at(2e6)


def test_book_at_by_update_id_and_event_time():
    r = replayed(BOOK, diff(3_000_000, 98, 105, 97, bids=[("100.0", "1.100")]),
                 diff(4_000_000, 106, 110, 105, bids=[("100.0", "1.200")]))
    assert r.book_at(update_id=109).bids[1000] == 1100
    assert r.book_at(update_id=110).bids[1000] == 1200
    assert r.book_at(event_ms=3).bids[1000] == 1100


# ------------------------------------------------------------------------ book ticker check
def test_book_ticker_check_compares_the_last_ticker_of_each_diff_exactly():
    r = replayed(BOOK, ticker(2_100_000, 99, "100.0", "1.000", "100.1", "1.500"),
                 diff(3_000_000, 98, 105, 97, bids=[("100.0", "1.100"), ("100.0", "1.200")]),
                 ticker(3_000_001, 102, "100.0", "1.100", "100.1", "1.500"),   # superseded
                 ticker(3_000_002, 104, "100.0", "1.200", "100.1", "1.500"),   # final
                 ticker(3_000_003, 200, "100.0", "1.200", "100.1", "1.500"))   # after the end
    check = r.check_book_tickers()
    assert (check.checked, check.uncovered) == (2, 2)
    assert (check.final, check.final_full_agreed, check.superseded) == (1, 1, 1)
    assert (check.superseded_price_agreed, check.superseded_full_agreed) == (1, 0)
    assert (check.price_rate, check.full_rate) == (1.0, 0.5)
    assert check.on_boundary == 0
    assert check.disagreements[["line", "update_id", "final", "bid_qty", "book_bid_qty"]
                               ].tolist() == [(4, 102, False, 1100, 1200)]
    assert (check.state_checked, check.state_full_agreed) == (1, 1)


def test_book_ticker_disagreement_on_a_final_ticker_is_reported():
    r = replayed(BOOK, diff(3_000_000, 98, 105, 97),
                 ticker(3_000_001, 105, "100.0", "1.000", "100.2", "0.500"))
    check = r.check_book_tickers()
    assert (check.final, check.final_price_agreed, check.on_boundary) == (1, 0, 1)
    assert check.final_full_rate == 0.0


# ---------------------------------------------------------------------------------- fixture
@pytest.fixture(scope="module")
def fixture_replay():
    return replay(read_capture(FIXTURE))


def test_fixture_is_small():
    assert FIXTURE.stat().st_size < 200_000


def test_fixture_counts(fixture_replay):
    cap = fixture_replay.capture
    assert (cap.lines, len(cap.diffs), len(cap.book_tickers), len(cap.trades), cap.other) == (
        3000, 234, 2296, 469, 0)
    snap = cap.snapshots[0]
    assert (snap.line, snap.last_update_id, len(snap.bids), len(snap.asks)) == (
        55, 5123107852948, 1000, 1000)
    assert snap.bids[0].tolist() == [618002, 2909]  # "61800.20", "2.909"


def test_fixture_follows_the_documented_sequence(fixture_replay):
    r, cap = fixture_replay, fixture_replay.capture
    last_update_id = cap.snapshots[0].last_update_id
    stale = cap.diffs["last_id"] < last_update_id
    assert r.diffs_stale == int(stale.sum()) == 4
    first = cap.diffs[~stale][0]
    assert first["line"] == 42 and first["first_id"] <= last_update_id <= first["last_id"]
    assert (len(r.gaps), r.diffs_applied, r.diffs_unsynced) == (0, 230, 0)
    assert r.valid_at_end
    applied = r.states[r.states["kind"] == StateKind.DIFF]
    assert (cap.diffs["prev_id"][applied["source"][1:]] == applied["update_id"][:-1]).all()


def test_fixture_touch_agrees_with_every_final_book_ticker(fixture_replay):
    check = fixture_replay.check_book_tickers()
    assert check.final == check.final_full_agreed == 204
    assert check.state_checked == check.state_full_agreed == 229
    assert (check.checked, check.price_agreed, check.full_agreed) == (2254, 1946, 220)
    assert not check.disagreements["final"].any()


def test_fixture_book_as_explicit_book_and_scenario(fixture_replay):
    book = fixture_replay.book_at()
    assert book.best_bid() == (618022, 3106) and book.best_ask() == (618023, 460)
    seed = fixture_replay.explicit_book(levels=200)
    assert len(seed.bids) == len(seed.asks) == 200
    assert seed.bids[0] == (618022, 3106) and seed.asks[0] == (618023, 460)
    assert seed.mid == 618022
    scenario = Scenario(tick_size="0.1", lot_size="0.001", book=seed,
                        population=Population(count=50, size=(10, 1000)),
                        shock=Shock(sell=20_000), steps=5)
    result = run(scenario, counterfactual=False)
    assert result.series["best_bid"][0] < 618022  # the 20 BTC sell walked the real bids
    assert result.summary["accounts"] > 0


@pytest.mark.parametrize("btc, covered_only", [(1, True), (10, True), (100, True), (500, True),
                                               (100, False), (2000, False)])
def test_slippage_fills_are_conserved(fixture_replay, btc, covered_only):
    order_book = fixture_replay.order_book(covered_only=covered_only)
    before = order_book.n_orders
    lots = btc * 1000
    total = order_book.impact(Side.SELL, 10**15).filled  # every bid lot in the book
    r = slippage(order_book, Side.SELL, lots)
    assert r.filled + r.unfilled == lots
    assert r.filled == min(lots, total)
    # the complete window holds 412.254 BTC of bids: 500 BTC exhausts it
    assert (r.unfilled > 0) == (covered_only and btc == 500)
    assert r.worst_price <= r.average_price <= r.touch == order_book.best_bid()
    assert r.cost == r.touch * r.filled - r.notional >= 0
    assert order_book.n_orders == before  # priced on a copy


def test_slippage_of_a_small_sell_hand_computed():
    book = L2Book.from_levels([(1000, 1000), (999, 2000)], [(1001, 1500)]).to_order_book()
    r = slippage(book, Side.SELL, 2500)  # 1.0 @ 100.0 + 1.5 @ 99.9
    assert (r.filled, r.levels, r.worst_price) == (2500, 2, 999)
    u = r.in_units("0.1", "0.001")
    assert u["average_price"] == Decimal("99.94")
    assert u["cost"] == Decimal("0.15")  # 1.5 BTC x 0.1 USDT
    # 1.5 BTC one tick under the 100.0 bid: 1,500 tick-lots short of 2,500,000 = 6 bps
    assert r.cost_bps == pytest.approx(6.0)


def test_the_example_script_runs_on_the_fixture(capsys):
    spec = importlib.util.spec_from_file_location("binance_slippage", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(FIXTURE), "--at", "snapshot"]) == 0
    out = capsys.readouterr().out
    assert "0 gaps" in out and "partial 25 %" in out


# ----------------------------------------------------------------------- full shared capture
@pytest.fixture(scope="module")
def full_replay():
    if not FULL.exists():
        pytest.skip(f"shared capture not present at {FULL}")
    return replay(read_capture(FULL))


def test_full_capture_counts(full_replay):
    s = full_replay.summary()
    assert (s["lines"], s["snapshots"], s["diffs"], s["diffs_applied"], s["diffs_stale"],
            s["gaps"], s["diffs_unsynced"]) == (93954, 1, 6551, 6547, 4, 0, 0)
    assert (s["book_tickers"], s["trades"]) == (66089, 21313)
    assert s["valid_at_end"]


def test_full_capture_touch_agrees_with_the_book_ticker_stream(full_replay):
    check = full_replay.check_book_tickers()
    assert check.final == check.final_full_agreed == 5702
    assert check.state_checked == check.state_full_agreed == 6546
    assert (check.checked, check.uncovered, check.on_boundary) == (66056, 33, 629)
    assert (check.price_agreed, check.full_agreed) == (53007, 6127)
    assert check.price_rate == pytest.approx(0.8025, abs=1e-4)


def test_full_capture_book_at_the_end(full_replay):
    book = full_replay.book_at()
    assert book.best_bid() == (616597, 1486) and book.best_ask() == (616598, 981)
    assert book.coverage == (616534, 619762)
    # the price fell below most of the snapshot's bid window: 15 complete bid levels remain
    assert book.depth(Side.BUY, covered_only=True)[:2] == (15, 10304)
    # every known level, the default: 5,018 of them, 9,457.538 BTC
    assert book.depth(Side.BUY)[:2] == (5018, 9457538)
    assert np.all(full_replay.states["update_id"][1:] >= full_replay.states["update_id"][:-1])


def test_book_when_names_end_snapshot_and_local_times(fixture_replay):
    first = int(fixture_replay.states["local_ns"][0])
    assert fixture_replay.book_when("end").update_id == fixture_replay.book_at().update_id
    assert fixture_replay.book_when("snapshot").update_id == \
        fixture_replay.book_at(local_ns=first).update_id
    assert fixture_replay.book_when(str(first)).update_id == \
        fixture_replay.book_when(first).update_id
    with pytest.raises(ValueError, match="--at must be end, snapshot"):
        fixture_replay.book_when("noon", name="--at")
