"""Binance USD-M futures depth captures: read them, rebuild the L2 book, check it, seed a scenario.

A capture is a text file (gzip or plain), one message a line: the local receive time in
nanoseconds, a space, then the raw JSON. Websocket messages are combined-stream envelopes
(``{"stream": ..., "data": ...}``) of ``depthUpdate``, ``bookTicker`` and ``trade`` events; the REST
depth snapshot (``{"lastUpdateId", "E", "T", "bids", "asks"}``) sits on a line of its own, at the
time it was received. This is the layout of hftbacktest's collector.

The book is rebuilt following Binance's documented procedure for USD-M futures ("How to manage a
local order book correctly", developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams/How-to-manage-a-local-order-book-correctly), which differs from spot:

1. diffs received before the snapshot are buffered;
2. any diff with ``u < lastUpdateId`` of the snapshot is dropped (stale);
3. the first diff applied must have ``U <= lastUpdateId <= u``;
4. each later diff's ``pu`` must equal the previous diff's ``u``, otherwise updates were lost
   and the book must be re-initialised from a new snapshot;
5. quantities are absolute; a quantity of 0 removes the level (removing an absent level is
   normal).

The stream ``<symbol>@depth@0ms`` is not among the documented speeds (250, 500, 100 ms); the
rules above hold for it all the same. In the shared BTCUSDT capture (2024-08-08, 94k lines, 345 s)
its diffs arrive every 52 ms (median), each bundling ~2,900 update ids and 34 level changes; the
pu chain has no gap, the 4 diffs before the snapshot are stale, the first kept diff straddles
lastUpdateId, and the rebuilt touch equals the bookTicker stream at every diff boundary (see
:class:`TickerCheck`). The collector's clock ran ~1.27 s behind the exchange's ``E``: do not mix
local and exchange times.

Units: prices in integer ticks, quantities in integer lots (``tick_size``/``lot_size`` in quote and
base units, BTCUSDT: 0.1 USDT and 0.001 BTC), times in ns (local) or ms (exchange ``E``/``T``).
Decimal strings are converted exactly (string arithmetic, never floats).

The parts: :mod:`~orderbook.data.binance.grid` (:class:`DecimalGrid`, the exact decimal
conversion), :mod:`~orderbook.data.binance.capture` (the capture's record layouts,
:class:`Snapshot`, :class:`Capture`, :func:`read_capture` and :func:`parse_lines`),
:mod:`~orderbook.data.binance.results` (what a replay reports: the state and gap layouts and
kinds, :class:`TickerCheck`) and :mod:`~orderbook.data.binance.sequencer` (:func:`replay` and
:class:`Replay`, which carries out the rules above and rebuilds the book at any point); import
from here.
"""

from ..errors import DataError, DataTypeError
from ..l2 import L2Book
from .capture import (
    BOOK_TICKER_DTYPE,
    DIFF_DTYPE,
    LEVEL_DTYPE,
    TRADE_DTYPE,
    Capture,
    Snapshot,
    parse_lines,
    read_capture,
)
from .grid import DecimalGrid
from .results import (
    DISAGREEMENT_DTYPE,
    GAP_DTYPE,
    STATE_DTYPE,
    GapKind,
    StateKind,
    TickerCheck,
)
from .sequencer import Replay, replay

__all__ = [
    "DIFF_DTYPE", "LEVEL_DTYPE", "BOOK_TICKER_DTYPE", "TRADE_DTYPE", "STATE_DTYPE", "GAP_DTYPE",
    "DISAGREEMENT_DTYPE", "StateKind", "GapKind", "Snapshot", "Capture", "L2Book", "Replay",
    "TickerCheck", "DataError", "DataTypeError",
    "DecimalGrid", "read_capture", "parse_lines", "replay",
]
