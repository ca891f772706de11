"""L2Book: levels set by absolute quantity, the snapshot window, conversions to engine types."""

from decimal import Decimal

import pytest

from orderbook import ExplicitBook, OrderBook, Side
from orderbook.data.l2 import L2Book


def small_book():
    book = L2Book("0.1", "0.001")
    book.bids.update({1000: 1000, 999: 2000, 995: 3000, 900: 7})
    book.asks.update({1001: 1500, 1002: 500, 1009: 4000, 1100: 9})
    book.coverage = (995, 1009)  # 900 and 1100 came from diffs, outside the snapshot window
    return book


def test_explicit_book_keeps_the_complete_window_best_first():
    assert ExplicitBook.from_l2(small_book(), covered_only=True) == ExplicitBook(
        bids=((1000, 1000), (999, 2000), (995, 3000)),
        asks=((1001, 1500), (1002, 500), (1009, 4000)))


def test_explicit_book_levels_range_and_known_levels():
    book = small_book()
    # every known level by default
    assert ExplicitBook.from_l2(book).bids[-1] == (900, 7)
    assert ExplicitBook.from_l2(book, 2) == ExplicitBook(bids=((1000, 1000), (999, 2000)),
                                                    asks=((1001, 1500), (1002, 500)))
    assert ExplicitBook.from_l2(book, price_range=(999, 1001)) == ExplicitBook(
        bids=((1000, 1000), (999, 2000)), asks=((1001, 1500),))
    assert ExplicitBook.from_l2(book, covered_only=False).bids[-1] == (900, 7)
    assert ExplicitBook.from_l2(book, covered_only=False).asks[-1] == (1100, 9)


@pytest.mark.parametrize("bad, error", [((5, 1), ValueError), ((1.0, 2), TypeError),
                                        (7, TypeError)])
def test_bad_price_range_is_rejected(bad, error):
    with pytest.raises(error, match="price_range"):
        ExplicitBook.from_l2(small_book(), price_range=bad)


def test_bad_level_count_is_rejected():
    with pytest.raises(ValueError, match="levels must be >= 0, got -1"):
        ExplicitBook.from_l2(small_book(), -1)


def test_order_book_holds_one_order_per_level():
    book = small_book().to_order_book(covered_only=True)
    assert isinstance(book, OrderBook)
    assert book.tick_size == Decimal("0.1") and book.lot_size == Decimal("0.001")
    assert (book.best_bid(), book.best_ask(), book.n_orders) == (1000, 1001, 6)
    assert small_book().to_order_book().n_orders == 8   # every known level by default
    assert book.quantity_at(Side.BUY, 995) == 3000 and book.quantity_at(Side.SELL, 1009) == 4000


def test_depth_counts_levels_and_lots():
    book = small_book()
    assert book.depth(Side.BUY, covered_only=True) == (3, 6000, 995)
    assert book.depth(Side.BUY) == (4, 6007, 900)
    assert book.depth(Side.SELL, covered_only=False) == (4, 6009, 1100)


def test_from_levels_drops_empty_levels_and_sets_the_window():
    book = L2Book.from_levels([(1000, 5), (998, 0), (990, 1)], [(1001, 2), (1010, 3)],
                              update_id=42)
    assert dict(book.bids) == {1000: 5, 990: 1} and dict(book.asks) == {1001: 2, 1010: 3}
    assert (book.update_id, book.coverage) == (42, (990, 1010))


def test_set_level_is_absolute_and_zero_deletes():
    book = L2Book.from_levels([(1000, 5)], [(1001, 2)])
    book.set_level(Side.BUY, 1000, 7)
    book.set_level(Side.SELL, 1001, 0)
    book.set_level(Side.SELL, 1005, 0)
    assert dict(book.bids) == {1000: 7} and not book.asks
    assert book.absent_deletes == 1
    assert book.best_ask() is None


def test_book_without_a_snapshot_window_is_complete_everywhere():
    book = L2Book()
    book.set_level(Side.BUY, 10, 1)
    book.set_level(Side.SELL, 12, 1)
    assert ExplicitBook.from_l2(book) == ExplicitBook(bids=((10, 1),), asks=((12, 1),))


def test_copy_is_independent():
    book = small_book()
    other = book.copy()
    other.set_level(Side.BUY, 1000, 1)
    assert book.bids[1000] == 1000 and other.coverage == book.coverage


def test_bad_side_is_rejected():
    with pytest.raises(ValueError, match="side"):
        small_book().levels(0)


def test_the_data_layer_does_not_import_the_simulation():
    # Imports point down: the readers give levels; the scenario side makes its book of them.
    # binance.explicit_book, a documented alias, imports ExplicitBook only when called.
    import ast
    from pathlib import Path

    import orderbook.data

    above = {"scenario", "config", "plot", "cli", "metrics"}
    for path in Path(orderbook.data.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        nodes = ast.walk(tree) if path.name == "l2.py" else tree.body
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                names = {node.module or ""} | {alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            else:
                continue
            parts = {part for name in names for part in name.split(".")}
            assert not parts & above, f"{path.name}:{node.lineno} imports {names}"
