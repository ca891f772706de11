"""orderbook.slippage: a forced market order executed on a copy of the book, hand-checked."""

from fractions import Fraction

import pytest

from orderbook import Side, slippage


@pytest.fixture
def bids(book_cls):
    book = book_cls("0.1", "0.001")
    book.limit(1, Side.BUY, 1000, 5)
    book.limit(2, Side.BUY, 990, 10)
    book.limit(3, Side.SELL, 1010, 4)
    return book


def test_sell_walks_levels_and_reports_exact_average_and_cost(bids):
    s = slippage(bids, "sell", 8)
    # 5 lots at 1000 and 3 at 990: 7970 tick-lots; at the touch it would have been 8000.
    assert (s.filled, s.notional, s.touch, s.worst_price, s.levels) == (8, 7970, 1000, 990, 2)
    assert s.average_price == Fraction(7970, 8)
    assert s.cost == 30 and s.cost_bps == pytest.approx(37.5)
    assert s.unfilled == 0


def test_buy_side_cost_is_positive_too(bids):
    s = slippage(bids, Side.BUY, 4)
    assert (s.filled, s.notional, s.touch, s.cost) == (4, 4040, 1010, 0)


def test_the_book_is_left_unchanged(bids):
    before = (bids.l3().tolist(), bids.event_count, bids.message_count)
    slippage(bids, Side.SELL, 15)
    assert (bids.l3().tolist(), bids.event_count, bids.message_count) == before


def test_an_exhausted_book_reports_the_unfilled_part(bids):
    s = slippage(bids, Side.SELL, 20)
    assert (s.filled, s.unfilled, s.notional) == (15, 5, 5000 + 9900)


def test_units_are_exact_decimals(bids):
    u = slippage(bids, Side.SELL, 8).in_units("0.1", "0.001")
    assert str(u["average_price"]) == "99.625"
    assert str(u["cost"]) == "0.0030" and str(u["size"]) == "0.008"


@pytest.mark.parametrize("lots", [0, -3])
def test_non_positive_size_is_a_value_error(bids, lots):
    with pytest.raises(ValueError, match="lots"):
        slippage(bids, Side.SELL, lots)


def test_an_empty_side_is_a_value_error(book_cls):
    with pytest.raises(ValueError, match="no bids"):
        slippage(book_cls(), Side.SELL, 1)


def test_bad_side_is_rejected(bids):
    with pytest.raises((ValueError, TypeError), match="side"):
        slippage(bids, 0, 1)
