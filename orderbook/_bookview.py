"""A read-only view of an Engine's order book: queries pass through, orders must use the Engine."""

from __future__ import annotations

QUERIES = frozenset({
    "best_bid", "best_ask", "spread", "mid", "last_price", "quantity_at", "resting_qty", "l2",
    "l3", "stops", "order", "orders_of", "impact", "n_orders", "n_stops", "message_count",
    "event_count",
    "tick_size", "lot_size", "stp", "amend_rule", "to_ticks", "to_lots", "to_price", "to_qty",
    "busy",
})


class BookView:
    """Read-only access to an order book; orders go through the Engine so that trades settle."""

    __slots__ = ("_book",)

    def __init__(self, book):
        self._book = book

    def __getattr__(self, name):
        if name in QUERIES:
            return getattr(self._book, name)
        raise AttributeError(f"{name!r}: an Engine's book is read-only here; send orders through "
                             f"the Engine so that their trades settle to the accounts")

    def __contains__(self, order_id) -> bool:
        return order_id in self._book

    def __repr__(self) -> str:
        return f"BookView({self._book!r})"
