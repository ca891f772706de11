"""Readers for real market data.

- :mod:`orderbook.data.lobster`: LOBSTER message/orderbook files, replayed into an OrderBook and
  checked row by row, with hybrid replay (your orders injected into the historical book).
- :mod:`orderbook.data.binance`: Binance USD-M depth captures (snapshot + diffs + bookTicker),
  rebuilt into an L2 book with Binance's sequence rules, usable as a scenario's starting book.
- :mod:`orderbook.data.l2`: the exchange-agnostic L2 book those readers build.

A damaged file raises :class:`DataError` (a ValueError naming the file, line or row, and
field); a file that cannot be opened raises the usual OSError.
"""

from .errors import DataError, DataTypeError

__all__ = ["DataError", "DataTypeError"]
