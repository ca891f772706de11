"""orderbook.data.lobster: reading LOBSTER files, replaying them exactly, and hybrid replay.

Hand-built sequences use prices in LOBSTER units (ticks of $0.0001) and sizes in shares; each
expected number is worked out in the comment above the assertion.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from orderbook.data import lobster
from orderbook.data.lobster import (
    DUMMY_ASK_PRICE,
    DUMMY_BID_PRICE,
    LOBSTER_MESSAGE_DTYPE,
    DataError,
    Injection,
    LobsterBook,
    orderbook_path_for,
    read_messages,
    read_orderbook,
    replay,
    replay_files,
)

DATA = Path(__file__).parent / "data"
AAPL = DATA / "lobster_aapl_l10_message.csv"          # first 200 messages, 10 levels
AMZN = DATA / "lobster_amzn_l1_slice_message.csv"     # messages 20,000-20,999, 1 level
SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "lobster"
SHARED_AAPL = SHARED / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
SHARED_AMZN = SHARED / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
needs_shared = pytest.mark.skipif(
    not (SHARED_AAPL.exists() and SHARED_AMZN.exists()),
    reason=f"the LOBSTER sample files are not in {SHARED} (the shared data folder beside the repo)")

BUY, SELL = 1, -1
SUBMIT, CANCEL, DELETE, EXECUTE, HIDDEN = 1, 2, 3, 4, 5
T0 = 34200.0  # 09:30:00


def messages(*rows):
    """(type, order_id, size, price, direction) rows, one second apart from 09:30."""
    out = np.zeros(len(rows), dtype=LOBSTER_MESSAGE_DTYPE)
    for i, row in enumerate(rows):
        out[i] = (T0 + i, *row)
    return out


def books(levels, *rows):
    """One (asks, bids) pair per row, each a list of (price, size), best first."""
    n = len(rows)
    ask_px = np.full((n, levels), DUMMY_ASK_PRICE, dtype=np.int64)
    bid_px = np.full((n, levels), DUMMY_BID_PRICE, dtype=np.int64)
    ask_sz = np.zeros((n, levels), dtype=np.int64)
    bid_sz = np.zeros((n, levels), dtype=np.int64)
    for i, (asks, bids) in enumerate(rows):
        for k, (p, q) in enumerate(asks):
            ask_px[i, k], ask_sz[i, k] = p, q
        for k, (p, q) in enumerate(bids):
            bid_px[i, k], bid_sz[i, k] = p, q
    return LobsterBook(ask_px, ask_sz, bid_px, bid_sz)


@pytest.fixture(params=["engine", "reference"])
def book_cls(request):
    if request.param == "engine":
        from orderbook import OrderBook
    else:
        from orderbook.reference import OrderBook
    return OrderBook


# --------------------------------------------------------------------------- reading

def test_read_messages_gives_typed_rows():
    msgs = read_messages(AAPL)
    assert msgs.dtype == LOBSTER_MESSAGE_DTYPE
    assert len(msgs) == 200
    # first line: 34200.004241176,1,16113575,18,5853300,1
    assert msgs[0]["time"] == pytest.approx(34200.004241176)
    assert (msgs[0]["type"], msgs[0]["order_id"], msgs[0]["size"], msgs[0]["price"],
            msgs[0]["direction"]) == (1, 16113575, 18, 5853300, 1)


def test_read_orderbook_splits_the_columns_by_level():
    book = read_orderbook(orderbook_path_for(AAPL))
    assert book.levels == 10 and book.ask_price.shape == (200, 10)
    # first line: 5859400,200,5853300,18,5859800,200,5853000,150,...
    assert book.ask_price[0, :2].tolist() == [5859400, 5859800]
    assert book.ask_size[0, :2].tolist() == [200, 200]
    assert book.bid_price[0, :2].tolist() == [5853300, 5853000]
    assert book.bid_size[0, :2].tolist() == [18, 150]


def test_orderbook_path_follows_lobster_naming(tmp_path):
    assert orderbook_path_for("x/AMZN_2012-06-21_34200000_57600000_message_1.csv") == \
        Path("x/AMZN_2012-06-21_34200000_57600000_orderbook_1.csv")
    with pytest.raises(ValueError, match="orderbook_path"):
        orderbook_path_for(tmp_path / "quotes.csv")


def test_nrows_reads_a_prefix():
    assert len(read_messages(AMZN, nrows=10)) == 10
    assert read_orderbook(orderbook_path_for(AMZN), nrows=10).ask_price.shape == (10, 1)


@pytest.mark.parametrize("line, field", [
    ("34200.1,9,1,10,100,1", "'type'"),
    ("34200.1,1,1,10,100,0", "'direction'"),
    ("34200.1,1,1,0,100,1", "'size'"),
    ("34200.1,1,1,10,0,1", "'price'"),
    ("34200.1,1,-5,10,100,1", "'order_id'"),
])
def test_bad_message_values_name_the_field(tmp_path, line, field):
    path = tmp_path / "bad_message_1.csv"
    path.write_text("34200.0,5,0,1,100,1\n" + line + "\n")
    with pytest.raises(ValueError, match=rf"messages\[1\]\[{field}\]"):
        read_messages(path)


def test_malformed_files_are_rejected(tmp_path):
    short = tmp_path / "short_message_1.csv"
    short.write_text("34200.0,1,1,10\n")
    with pytest.raises(ValueError, match="not a LOBSTER message file"):
        read_messages(short)
    odd = tmp_path / "odd_orderbook_1.csv"
    odd.write_text("101,10,100\n")
    with pytest.raises(ValueError, match="4 columns per level"):
        read_orderbook(odd)
    backwards = tmp_path / "back_orderbook_1.csv"
    backwards.write_text("101,10,100,10\n")
    assert read_orderbook(backwards).levels == 1
    backwards.write_text("101,10,102,10\n")
    with pytest.raises(ValueError, match="crossed"):
        read_orderbook(backwards)
    empty = tmp_path / "empty_message_1.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_messages(empty)


def _pair(tmp_path, messages_text: str, book_text: str):
    msg = tmp_path / "X_message_1.csv"
    msg.write_text(messages_text)
    (tmp_path / "X_orderbook_1.csv").write_text(book_text)
    return msg


def test_two_swapped_orderbook_rows_are_reported_as_mismatches_not_raised(tmp_path):
    # Rows 30 and 70 of the AAPL sample swapped: row 30 then shows a book across the replay's
    # other side, and topping its levels up used to trade with that side (a RuntimeError, "the
    # resync did not restore the published book").
    rows = orderbook_path_for(AAPL).read_text().splitlines()
    rows[30], rows[70] = rows[70], rows[30]
    swapped = tmp_path / "swapped_orderbook_10.csv"
    swapped.write_text("\n".join(rows) + "\n")
    result = replay_files(AAPL, swapped)
    flagged = [row for row, _ in result.mismatches]
    assert 30 in flagged and 70 in flagged
    assert result.n_rows == 200 and result.n_matched == 200 - len(flagged)


def test_a_row_across_the_replayed_other_side_is_resynced_without_trading(book_cls):
    # Row 1 jumps with no message to explain it: the file's asks 97 and 98 lie below the
    # replayed bids 100 and 99. The crossing bids are emptied first, so the ask resync does not
    # trade with them, and the row is one mismatch with both sides as the file has them.
    msgs = messages((HIDDEN, 0, 1, 100, BUY), (HIDDEN, 0, 1, 100, BUY))
    result = replay(msgs, books(2, ([(101, 5), (102, 5)], [(100, 5), (99, 5)]),
                                ([(97, 5), (98, 5)], [(96, 5), (95, 5)])), book_cls=book_cls)
    assert [row for row, _ in result.mismatches] == [1]
    assert (result.best_bid.tolist(), result.best_ask.tolist()) == ([100, 96], [101, 97])
    assert (result.bid_depth.tolist(), result.ask_depth.tolist()) == ([10, 10], [10, 10])
    assert result.n_crossed == 0


def test_nrows_too_large_for_int64_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"nrows must be a positive integer \(at most 2\*\*63"):
        read_messages(AAPL, nrows=99999999999999999999)


@pytest.mark.parametrize("line, fragment", [
    (b"34200.1,1,1,10,\xff100,1", r"byte b'\\xff' is not UTF-8"),
    (b"34200.1,1,99999999999999999999,10,100,1", "could not convert string"),
    (b"34200.1,1,1,10,nan,1", "could not convert string 'nan'"),
    (b"34200.1,1,1,10,100", "requires 6 columns but 5 were found at row 2$"),
    (b"34200.1,1,1,10,100,1,7", "requires 6 columns but 7 were found at row 2$"),
    (b"nan,1,1,10,100,1", r"messages\[1\]\['time'\] = nan"),
    (b"1e400,1,1,10,100,1", r"messages\[1\]\['time'\] = inf"),
    (b"34200.1,1,1,-10,100,1", r"messages\[1\]\['size'\] = -10"),
    (b"34200.1,1,1,10,9007199254740992,1", r"messages\[1\]\['price'\]"),
])
def test_damaged_message_files_are_data_errors_naming_the_file(tmp_path, line, fragment):
    path = tmp_path / "bad_message_1.csv"
    path.write_bytes(b"34200.0,5,0,1,100,1\n" + line + b"\n")
    with pytest.raises(DataError, match=r"bad_message_1\.csv: .*" + fragment):
        read_messages(path)


@pytest.mark.parametrize("line, fragment", [
    (b"101,9007199254740992,100,5", "ask level 1: price 101, size 9007199254740992"),
    (b"101,5,100,-5", "bid level 1: price 100, size -5"),
    (b"101,5,0,5", "bid level 1: price 0, size 5"),
    (b"101,5,100", "the number of columns changed from 4 to 3 at row 2"),
])
def test_damaged_orderbook_rows_are_data_errors_naming_the_file_and_row(tmp_path, line,
                                                                       fragment):
    path = tmp_path / "bad_orderbook_1.csv"
    path.write_bytes(b"101,5,100,5\n" + line + b"\n")
    with pytest.raises(DataError, match=r"bad_orderbook_1\.csv: .*" + re.escape(fragment)):
        read_orderbook(path)


def test_crlf_line_ends_and_blank_lines_read_like_plain_lines(tmp_path):
    text = AAPL.read_text().splitlines()[:5]
    path = tmp_path / "dos_message_10.csv"
    path.write_bytes(("\r\n\r\n".join(text) + "\r\n").encode())
    assert read_messages(path).tolist() == read_messages(AAPL, nrows=5).tolist()


def test_files_of_different_lengths_are_a_data_error_naming_both(tmp_path):
    msg = _pair(tmp_path, "34200.0,5,0,1,100,1\n34200.1,5,0,1,100,1\n", "101,5,100,5\n")
    with pytest.raises(DataError, match=r"X_message_1\.csv: 2 messages but 1 orderbook rows "
                                        r"in .*X_orderbook_1\.csv"):
        replay_files(msg)


def test_a_resubmitted_live_id_names_the_message_file(tmp_path):
    row = "101,5,100,10\n"
    msg = _pair(tmp_path, "34200.0,1,4,5,100,1\n34200.1,1,4,5,100,1\n", row * 2)
    with pytest.raises(DataError, match=r"X_message_1\.csv: messages\[1\] \(submission of "
                                        r"order 4\)"):
        replay_files(msg)


def test_a_directory_is_an_os_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        read_messages(tmp_path)


def test_orderbook_levels_must_run_best_first():
    bad = books(2, ([(102, 5), (101, 5)], []))
    with pytest.raises(ValueError, match="ask level 2"):
        replay(messages((HIDDEN, 0, 1, 101, SELL)), bad)


def test_replay_rejects_inputs_that_do_not_fit():
    msgs = messages((HIDDEN, 0, 1, 100, BUY), (HIDDEN, 0, 1, 100, BUY))
    one_row = books(1, ([(101, 5)], [(100, 5)]))
    with pytest.raises(ValueError, match="one row per message"):
        replay(msgs, one_row)
    with pytest.raises(TypeError, match="structured"):
        replay([1, 2], one_row)
    with pytest.raises(TypeError, match="LobsterBook"):
        replay(msgs[:1], np.zeros((1, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="Injection"):
        replay(msgs[:1], one_row, inject=[{"side": "sell"}])
    with pytest.raises(ValueError, match=r"inject\[0\].at = 5"):
        replay(msgs[:1], one_row, inject=[Injection(side="sell", qty=1, at=5)])
    with pytest.raises(ValueError, match=r"inject\[0\].time"):
        replay(msgs[:1], one_row, inject=[Injection(side="sell", qty=1, time=T0 + 99)])
    later = msgs.copy()
    later["time"] = [T0 + 1, T0]
    with pytest.raises(ValueError, match=r"messages\[1\]\['time'\]"):
        replay(later, books(1, ([(101, 5)], [(100, 5)]), ([(101, 5)], [(100, 5)])))


def test_a_resubmitted_live_id_names_the_message():
    msgs = messages((HIDDEN, 0, 1, 100, BUY), (SUBMIT, 4, 5, 100, BUY), (SUBMIT, 4, 5, 100, BUY))
    row = ([(101, 5)], [(100, 5)])
    with pytest.raises(ValueError, match=r"messages\[2\] \(submission of order 4\)"):
        replay(msgs, books(1, row, row, row))


@pytest.mark.parametrize("kwargs, error, text", [
    (dict(side="up", qty=1, at=0), ValueError, "Injection.side"),
    (dict(side=2, qty=1, at=0), ValueError, "Injection.side"),
    (dict(side=1.0, qty=1, at=0), TypeError, "Injection.side"),
    (dict(side="sell", qty=0, at=0), ValueError, "Injection.qty"),
    (dict(side="sell", qty=1.5, at=0), TypeError, "Injection.qty"),
    (dict(side="sell", qty=1, kind="stop", at=0), ValueError, "Injection.kind"),
    (dict(side="sell", qty=1, kind="limit", at=0), TypeError, "Injection.price"),
    (dict(side="sell", qty=1, kind="limit", price=0, at=0), ValueError, "Injection.price"),
    (dict(side="sell", qty=1, price=100, at=0), ValueError, "Injection.price"),
    (dict(side="sell", qty=1), ValueError, "exactly one of at"),
    (dict(side="sell", qty=1, at=0, time=T0), ValueError, "exactly one of at"),
    (dict(side="sell", qty=1, at=-1), ValueError, "Injection.at"),
    (dict(side="sell", qty=1, time="10:00"), TypeError, "Injection.time"),
    (dict(side="sell", qty=1, at=0, position="middle"), ValueError, "Injection.position"),
    (dict(side="sell", qty=1, at=0, position=-1), ValueError, "Injection.position"),
])
def test_bad_injections_name_the_field(kwargs, error, text):
    with pytest.raises(error, match=text):
        Injection(**kwargs)


# --------------------------------------------------------------------------- replay rules

def test_seed_is_row_zero_with_message_zero_undone(book_cls):
    # Row 0 shows 15 at 100 *after* order 1 (5) arrived: the seed holds 10 there.
    msgs = messages((SUBMIT, 1, 5, 100, BUY), (DELETE, 1, 5, 100, BUY),
                    (EXECUTE, 50, 4, 101, SELL))
    book = books(1, ([(101, 10)], [(100, 15)]), ([(101, 10)], [(100, 10)]),
                 ([(101, 6)], [(100, 10)]))
    result = replay(msgs, book, book_cls=book_cls)
    assert (result.n_rows, result.n_matched, result.n_exact) == (3, 3, 3)
    assert result.match_rate == 1.0 and result.mismatches == ()
    assert result.n_unknown == 1  # order 50 rested before the open: it eats the seed at 101
    assert result.n_resync == 0
    assert result.best_bid.tolist() == [100, 100, 100]
    assert result.spread.tolist() == [1, 1, 1]
    assert result.ask_depth.tolist() == [10, 10, 6]


def test_hidden_executions_cross_trades_and_halts_leave_the_book_alone(book_cls):
    msgs = messages((HIDDEN, 0, 1, 100, BUY), (HIDDEN, 0, 300, 100, BUY), (6, 0, 500, 100, 1),
                    (7, 0, 0, -1, -1), (7, 0, 0, 1, -1))
    row = ([(101, 5)], [(100, 5)])
    result = replay(msgs, books(1, *[row] * 5), book_cls=book_cls)
    assert (result.n_exact, result.n_unknown, result.n_resync) == (5, 0, 0)


def test_an_execution_reduces_the_named_order_not_the_front_of_the_queue(book_cls):
    # Seed: 10 at 100 (front). Order 7 joins behind with 5 and is executed by name. A market
    # sell of 10 afterwards must meet only the seed liquidity: order 7 is gone.
    msgs = messages((HIDDEN, 0, 1, 100, BUY), (SUBMIT, 7, 5, 100, BUY),
                    (EXECUTE, 7, 5, 100, BUY), (HIDDEN, 0, 1, 100, BUY))
    book = books(1, ([(105, 10)], [(100, 10)]), ([(105, 10)], [(100, 15)]),
                 ([(105, 10)], [(100, 10)]), ([(105, 10)], [(100, 10)]))
    result = replay(msgs, book, inject=[Injection(side="sell", qty=10, at=3)],
                    book_cls=book_cls)
    fills = result.injections[0].fills
    assert fills["qty"].sum() == 10
    assert (fills["counterparty"] < 0).all()  # synthetic (seed) orders only


def test_a_level_entering_the_window_is_resynchronised_and_counted(book_cls):
    # Two levels published. The seed order at 101 is deleted; 105 (never in a message) moves
    # into level 2: a window-entering resync, and the row still matches.
    msgs = messages((HIDDEN, 0, 1, 101, SELL), (DELETE, 60, 10, 101, SELL))
    book = books(2, ([(101, 10), (102, 10)], [(100, 10), (99, 10)]),
                 ([(102, 10), (105, 7)], [(100, 10), (99, 10)]))
    result = replay(msgs, book, book_cls=book_cls)
    assert result.matched.tolist() == [True, True]
    assert result.exact.tolist() == [True, False]
    assert (result.n_exact, result.n_entering, result.n_matched) == (1, 1, 2)
    assert (result.n_resync_entering, result.n_resync_inside) == (1, 0)
    assert result.ask_price[1].tolist() == [102, 105]
    assert result.ask_size[1].tolist() == [10, 7]


def test_a_difference_inside_the_window_is_a_mismatch(book_cls):
    # Order 8 adds 5 at 101 (10 + 5 = 15) but the file says 14: nothing can explain that.
    # The side is resynchronised (the seed gives up 1), so deleting order 8 leaves 9.
    msgs = messages((HIDDEN, 0, 1, 101, SELL), (SUBMIT, 8, 5, 101, SELL),
                    (DELETE, 8, 5, 101, SELL))
    book = books(2, ([(101, 10), (102, 10)], [(100, 10)]), ([(101, 14), (102, 10)], [(100, 10)]),
                 ([(101, 9), (102, 10)], [(100, 10)]))
    result = replay(msgs, book, book_cls=book_cls)
    assert result.matched.tolist() == [True, False, True]
    assert result.match_rate == pytest.approx(2 / 3)
    assert [row for row, _ in result.mismatches] == [1]
    assert "ask level 1: replay 101x15 file 101x14" in result.mismatches[0][1]
    assert (result.n_resync_entering, result.n_resync_inside) == (0, 1)


def test_a_stale_level_coming_back_is_resized_and_later_messages_stay_exact(book_cls):
    # One level. Order 1 (5) joins the seed's 10 at 100; order 2 at 101 hides 100, and while
    # hidden 3 of order 1 are cancelled unseen. When 101 goes, 100 comes back with 12: the
    # replay has 15 and cuts the seed to 7 (a guess). Deleting order 1's last 2 then removes
    # the 5 it holds: 3 go back to the level (reattributed) so 12 - 2 = 10 matches, and the
    # unknown execution of 10 empties it.
    msgs = messages((HIDDEN, 0, 1, 100, BUY), (SUBMIT, 1, 5, 100, BUY), (SUBMIT, 2, 1, 101, BUY),
                    (DELETE, 2, 1, 101, BUY), (DELETE, 1, 2, 100, BUY),
                    (EXECUTE, 99, 10, 100, BUY))
    ask = [(110, 10)]
    book = books(1, (ask, [(100, 10)]), (ask, [(100, 15)]), (ask, [(101, 1)]),
                 (ask, [(100, 12)]), (ask, [(100, 10)]), (ask, []))
    result = replay(msgs, book, book_cls=book_cls)
    assert result.match_rate == 1.0
    assert (result.n_exact, result.n_entering, result.n_resync_entering) == (5, 1, 1)
    assert (result.n_unknown, result.n_reattributed, result.n_dropped) == (1, 1, 0)
    assert result.best_bid.tolist() == [100, 100, 101, 100, 100, 0]
    assert result.spread.tolist()[-1] == 0  # no bid: no spread


def test_a_shortfall_from_a_wrong_guess_is_taken_from_the_level(book_cls):
    # Orders 1 and 3 (5 each) at 100; order 2 at 101 hides them; order 1 is cancelled unseen.
    # 100 comes back with 5: the replay cuts the newest order (3) instead of order 1. When
    # history executes order 3 for 5, the replay takes the 5 from order 1 (reattributed).
    msgs = messages((HIDDEN, 0, 1, 110, SELL), (SUBMIT, 1, 5, 100, BUY), (SUBMIT, 3, 5, 100, BUY),
                    (SUBMIT, 2, 1, 101, BUY), (DELETE, 2, 1, 101, BUY),
                    (EXECUTE, 3, 5, 100, BUY))
    ask = [(110, 10)]
    book = books(1, (ask, []), (ask, [(100, 5)]), (ask, [(100, 10)]), (ask, [(101, 1)]),
                 (ask, [(100, 5)]), (ask, []))
    result = replay(msgs, book, book_cls=book_cls)
    assert result.match_rate == 1.0
    assert (result.n_entering, result.n_reattributed, result.n_unknown) == (1, 1, 0)


def test_a_corrupted_message_is_caught():
    msgs = read_messages(AAPL)
    book = read_orderbook(orderbook_path_for(AAPL))
    row = int(np.flatnonzero(msgs["type"] == SUBMIT)[40])
    msgs["size"][row] += 1
    result = replay(msgs, book)
    assert result.n_matched == 199
    assert result.mismatches[0][0] == row
    assert result.n_resync_inside >= 1


# --------------------------------------------------------------------------- hybrid replay

def _walk_the_bids():
    """Bids 100: order 1 (60), order 2 (40); 99: order 3 (100), then history removes them."""
    msgs = messages((HIDDEN, 0, 1, 110, SELL), (SUBMIT, 1, 60, 100, BUY),
                    (SUBMIT, 2, 40, 100, BUY), (SUBMIT, 3, 100, 99, BUY),
                    (EXECUTE, 1, 60, 100, BUY), (DELETE, 3, 100, 99, BUY),
                    (DELETE, 2, 40, 100, BUY))
    ask = [(110, 10)]
    book = books(2, (ask, []), (ask, [(100, 60)]), (ask, [(100, 100)]),
                 (ask, [(100, 100), (99, 100)]), (ask, [(100, 40), (99, 100)]),
                 (ask, [(100, 40)]), (ask, []))
    return msgs, book


def test_injected_market_sell_walks_the_real_bids(book_cls):
    msgs, book = _walk_the_bids()
    result = replay(msgs, book, inject=[Injection(side="sell", qty=150, at=4)], book_cls=book_cls)
    rep = result.injections[0]
    # 60 + 40 at 100 from orders 1 and 2, then 50 at 99 from order 3.
    assert rep.fills[["price", "qty", "counterparty"]].tolist() == [
        (100, 60, 1), (100, 40, 2), (99, 50, 3)]
    assert rep.fills["aggressor"].all() and (rep.fills["row"] == 4).all()
    assert (rep.filled, rep.notional, rep.levels, rep.touch_before) == (150, 14_950, 2, 100)
    assert rep.avg_price == pytest.approx(14_950 / 150)      # 99.667 ticks
    assert rep.slippage == pytest.approx(100 - 14_950 / 150)  # 0.333 ticks worse than the touch
    assert (rep.beyond_window, rep.resting) == (0, 0)


def test_history_removing_taken_liquidity_is_reconciled(book_cls):
    msgs, book = _walk_the_bids()
    result = replay(msgs, book, inject=[Injection(side="sell", qty=150, at=4)], book_cls=book_cls)
    # Row 4: execution of order 1 (taken: dropped); row 5: deletion of order 3 (100, the
    # replay has 50: cut); row 6: deletion of order 2 (taken: dropped). Three reconciled.
    assert result.n_reconciled == 3
    assert result.matched.tolist() == [True, True, True, True, False, False, True]
    assert result.mismatches == ()  # rows after an injection are divergence, not errors
    div = result.divergence
    assert (div.first_row, div.rows, div.matched, div.inconsistent) == (4, 3, 1, 0)
    # Row 4: hybrid best bid 99 (50 left), history 100. Row 5: hybrid has no bid at all.
    assert result.best_bid.tolist()[4:] == [99, 0, 0]
    assert (div.mean_abs_bid_diff, div.max_abs_bid_diff, div.empty_bid_rows) == (1.0, 1, 1)
    text = result.summary()
    assert "injected sell 150 market before row 4" in text and "filled 150" in text
    assert "from row 4: 1 / 3 rows match history (0 inconsistent)" in text


def _front_of_the_ask_queue():
    """Asks at 101: order 1 (50) then order 2 (50); history executes 1 for 20 and 30, 2 for 20."""
    msgs = messages((HIDDEN, 0, 1, 99, BUY), (SUBMIT, 1, 50, 101, SELL),
                    (SUBMIT, 2, 50, 101, SELL), (EXECUTE, 1, 20, 101, SELL),
                    (EXECUTE, 1, 30, 101, SELL), (EXECUTE, 2, 20, 101, SELL))
    bid = [(99, 10)]
    book = books(1, ([], bid), ([(101, 50)], bid), ([(101, 100)], bid), ([(101, 80)], bid),
                 ([(101, 50)], bid), ([(101, 30)], bid))
    return msgs, book


@pytest.mark.parametrize("position, fills, resting", [
    # First in the queue: the takers of order 1 (20, then 30) fill it instead: 20 + 10.
    ("front", [(3, 101, 20), (4, 101, 10)], 0),
    # Last: nothing trades ahead of it.
    ("back", [], 30),
    # Between orders 1 and 2: only the execution of order 2 (20) comes to it.
    (1, [(5, 101, 20)], 10),
])
def test_a_resting_injected_order_fills_from_its_queue_position(book_cls, position, fills, resting):
    msgs, book = _front_of_the_ask_queue()
    inj = Injection(side="sell", qty=30, kind="limit", price=101, at=3, position=position)
    result = replay(msgs, book, inject=[inj], book_cls=book_cls)
    rep = result.injections[0]
    assert rep.fills[["row", "price", "qty"]].tolist() == fills
    assert not rep.fills["aggressor"].any()
    assert (rep.filled, rep.resting) == (30 - resting, resting)
    assert result.divergence.inconsistent == 0


def test_time_of_injection_is_the_first_message_at_or_after_it(book_cls):
    msgs, book = _front_of_the_ask_queue()
    by_index = replay(msgs, book, book_cls=book_cls, inject=[
        Injection(side="sell", qty=30, kind="limit", price=101, at=3, position="front")])
    by_time = replay(msgs, book, book_cls=book_cls, inject=[
        Injection(side="sell", qty=30, kind="limit", price=101, time=T0 + 2.5,
                  position="front")])
    assert by_time.injections[0].row == 3
    assert by_time.injections[0].fills.tolist() == by_index.injections[0].fills.tolist()


def test_an_injected_limit_that_crosses_takes_then_meets_later_sellers(book_cls):
    # Buy 60 at 101 takes order 1 (50) at 101 and rests 10; nothing else crosses it later.
    msgs, book = _front_of_the_ask_queue()
    inj = Injection(side="buy", qty=60, kind="limit", price=101, at=3)
    rep = replay(msgs, book, inject=[inj], book_cls=book_cls).injections[0]
    assert rep.fills[["price", "qty", "counterparty"]].tolist()[:2] == [(101, 50, 1), (101, 10, 2)]
    assert (rep.filled, rep.levels, rep.touch_before, rep.slippage) == (60, 1, 101, 0.0)


def test_a_historical_seller_crossing_a_resting_injected_bid_trades(book_cls):
    # Injected bid 10 at 100 above history's best bid 99; a historical sell of 5 at 100
    # (which rested in history) now fills it; the later deletion of that seller is reconciled.
    msgs = messages((HIDDEN, 0, 1, 99, BUY), (HIDDEN, 0, 1, 105, SELL), (SUBMIT, 9, 5, 100, SELL),
                    (DELETE, 9, 5, 100, SELL))
    book = books(1, ([(105, 10)], [(99, 10)]), ([(105, 10)], [(99, 10)]),
                 ([(100, 5)], [(99, 10)]), ([(105, 10)], [(99, 10)]))
    inj = Injection(side="buy", qty=10, kind="limit", price=100, at=1)
    result = replay(msgs, book, inject=[inj], book_cls=book_cls)
    rep = result.injections[0]
    assert rep.fills[["row", "price", "qty", "counterparty"]].tolist() == [(2, 100, 5, 9)]
    assert not rep.fills["aggressor"].any()
    assert (rep.filled, rep.resting, result.n_reconciled) == (5, 5, 1)
    assert result.divergence.inconsistent == 0


def test_hybrid_replay_of_a_real_day_stays_consistent():
    result = replay_files(AMZN, inject=[Injection(side="sell", qty=2_000, at=300)])
    rep = result.injections[0]
    assert rep.filled > 0 and rep.touch_before > 0 and rep.slippage >= 0
    assert result.divergence.inconsistent == 0
    assert result.mismatches == ()
    assert result.n_reconciled > 0


# --------------------------------------------------------------------------- real files

def test_fixture_aapl_level_10_matches_every_row(book_cls):
    result = replay_files(AAPL, book_cls=book_cls)
    assert (result.n_rows, result.n_matched, result.mismatches) == (200, 200, ())
    assert (result.n_exact, result.n_entering, result.n_resync_inside) == (194, 6, 0)


def test_fixture_amzn_slice_seeded_mid_day_matches_every_row():
    result = replay_files(AMZN)
    assert (result.n_rows, result.n_matched, result.mismatches) == (1_000, 1_000, ())
    assert (result.n_exact, result.n_entering, result.n_resync_inside) == (850, 150, 0)
    assert (result.n_unknown, result.n_dropped) == (169, 0)
    assert result.messages_per_second > 0
    assert "1,000 / 1,000" in result.summary()


def test_compiled_and_reference_books_give_identical_replays():
    from orderbook import OrderBook
    from orderbook.reference import OrderBook as Reference

    inject = [Injection(side="sell", qty=500, at=120),
              Injection(side="buy", qty=300, kind="limit", price=5_857_000, at=60,
                        position="front")]
    a = replay_files(AAPL, inject=inject, book_cls=OrderBook)
    b = replay_files(AAPL, inject=inject, book_cls=Reference)
    for name in ("ask_price", "ask_size", "bid_price", "bid_size", "matched", "exact",
                 "spread", "bid_depth", "ask_depth"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("n_matched", "n_exact", "n_entering", "n_unknown", "n_resync", "n_reconciled",
                 "n_reattributed", "n_dropped", "n_crossed", "mismatches", "divergence"):
        assert getattr(a, name) == getattr(b, name), name
    for x, y in zip(a.injections, b.injections, strict=True):
        assert x.fills.tolist() == y.fills.tolist()


@needs_shared
def test_shared_aapl_level_10_matches_every_row():
    result = replay_files(SHARED_AAPL)
    # 999 rows: 985 exact, 14 with a level entering at depth 10 after a level above it went.
    assert (result.n_rows, result.n_matched, result.match_rate) == (999, 999, 1.0)
    assert (result.n_exact, result.n_entering, result.n_resync_entering) == (985, 14, 14)
    assert (result.n_resync_inside, result.n_unknown, result.n_dropped) == (0, 9, 0)


@needs_shared
def test_shared_amzn_level_1_prefix_matches_every_row():
    result = replay_files(SHARED_AMZN, nrows=5_000)
    assert (result.n_matched, result.mismatches, result.n_resync_inside) == (5_000, (), 0)


@needs_shared
def test_shared_amzn_level_1_full_day_matches_every_row():
    result = replay_files(SHARED_AMZN)
    # One level: every time the touch empties, the next level enters unseen (8,167 rows).
    assert (result.n_rows, result.n_matched, result.match_rate) == (57_515, 57_515, 1.0)
    assert (result.n_exact, result.n_entering) == (49_348, 8_167)
    assert (result.n_resync_entering, result.n_resync_inside) == (10_970, 0)
    assert (result.n_unknown, result.n_reattributed, result.n_dropped) == (7_467, 2_976, 0)


@needs_shared
def test_shared_amzn_forced_sell_at_ten_oclock():
    result = replay_files(SHARED_AMZN, inject=[Injection(side="sell", qty=5_000, time=36_000.0)])
    rep = result.injections[0]
    assert rep.row == 5_024 and rep.touch_before == 2_241_700
    # The level-1 file shows one bid level: everything past it is the replay's stale memory.
    assert rep.filled == 3_898 and rep.beyond_window == 3_698 and rep.levels == 21
    assert result.divergence.inconsistent == 0 and result.mismatches == ()


def test_lobster_is_importable_without_matplotlib():
    assert "replay" in lobster.__all__
