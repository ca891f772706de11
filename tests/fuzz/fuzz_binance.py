"""Fuzz target: Binance capture reading and the book rebuild on mutated captures.

The first byte of an input picks the file body: 0 the rest as plain text, 1 the rest wrapped in
a valid gzip stream (so the text inside is fuzzed), 2 the rest written as it is (a damaged gzip
stream when it starts with the gzip magic). The capture is read, replayed through Binance's
sequence rules, checked against its bookTicker stream, and its books at the snapshot and at the
end are turned into an engine OrderBook and sold into. A damaged capture must raise
:class:`orderbook.data.DataError`; any other exception is a finding.

Run: ``PYTHONPATH=$PWD python tests/fuzz/fuzz_binance.py NEW_DIR tests/fuzz/corpus/binance``.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
import zlib

from orderbook.data.binance import DataError, read_capture, replay
from orderbook.events import Side
from orderbook.scenario import ExplicitBook
from orderbook.slippage import slippage

MAX_INPUT = 64 * 1024  # bytes of one input; larger ones are skipped
MAX_INFLATED = 1 << 20  # a raw gzip body inflating past this is a bomb, not a capture: skipped

_DIR = tempfile.mkdtemp(prefix="fuzz_binance_")
_PATH = os.path.join(_DIR, "capture")


def _body(data: bytes) -> bytes | None:
    mode, body = data[0] % 3, data[1:]
    if mode == 1:
        return gzip.compress(body, mtime=0)
    if mode == 2 and body[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=31)
        try:
            inflater.decompress(body, MAX_INFLATED)
        except zlib.error:
            return body  # damaged: exactly what the reader must report
        if inflater.unconsumed_tail:
            return None
    return body


def test_one_input(data: bytes) -> None:
    """Read, replay and query one mutated capture; only DataError may escape the reader."""
    if not data or len(data) > MAX_INPUT:
        return
    body = _body(data)
    if body is None:
        return
    with open(_PATH, "wb") as handle:
        handle.write(body)
    try:
        rebuilt = replay(read_capture(_PATH))
    except DataError:
        return
    rebuilt.summary()
    try:
        rebuilt.check_book_tickers()
    except DataError:  # update ids going backwards: documented as undefined
        pass
    for when in ("snapshot", "end"):
        try:
            book = rebuilt.book_when(when)
        except DataError:
            continue
        ExplicitBook.from_l2(book)
        if book.best_bid() is not None:
            order_book = book.to_order_book(covered_only=False)
            if order_book.best_bid() is not None:
                slippage(order_book, Side.SELL, 1)


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
