"""LOBSTER message and orderbook files: reading them, replaying them into an order book, and
replaying them with injected orders (a hybrid of history and a what-if).

LOBSTER (lobsterdata.com) reconstructs NASDAQ books from TotalView-ITCH. A day comes as two CSV
files of equal length: message ``i`` (time, type, order id, size, price, direction) and row ``i``
of the orderbook file, the book *after* message ``i`` at levels 1..N (ask price 1, ask size 1,
bid price 1, bid size 1, ask price 2, ...). Empty levels hold the dummies ask 9999999999 /
bid -9999999999 with size 0. Direction is the side of the *resting* order (+1 bid, -1 ask).

Units: prices are LOBSTER price units (US dollars x 10,000), used as ticks (1 tick = $0.0001);
sizes are shares, used as lots (1 lot = 1 share); time is seconds after midnight (float). All
book arithmetic is on exact integers.

Replay
------
The book is seeded with the state *before* message 0: row 0 with message 0 undone (a submission
taken out of its level, a cancel or execution put back), one synthetic resting order per level.
Synthetic orders stand for liquidity no message introduces (the seed, and levels that come into
view later); their ids are negative, so they never collide with LOBSTER ids (>= 0). Then:

- type 1 (submission): a limit order with the LOBSTER id.
- type 2 (partial cancel), type 4 (visible execution): the named order is reduced by the size
  (an execution reduces that very order, so its queue place stays as history had it); type 3
  (deletion): the named order is removed.
- an id the replay never saw submitted is *unknown* (it rested before the open, or arrived while
  its level was deeper than N): it acts on the synthetic liquidity at its price, oldest first.
- types 5 (hidden execution), 6 (cross trade) and 7 (halt) leave the visible book unchanged.

LOBSTER only reports messages inside the N published levels, so the replayed book goes stale
below level N: orders pushed deeper are kept, but their later cancels are never seen. When a
message then names an order with less (more) quantity than it carries, the difference is taken
from (given back to) other liquidity at the same price level - synthetic first, then real
orders from the back of the queue - which keeps every level's total equal to history's.
Such a move is *reattributed*; one that finds nothing to take is *dropped*.

What a matching row is
----------------------
After message ``i`` and *before any correction*, the top N levels of each side of the replayed
book (price and size, empty levels as dummies) are compared with row ``i``:

- **exact**: all 4N numbers agree.
- **entering**: a side differs only in its deepest slot (level N), and that slot is
  *window-entering*: its price in row ``i`` is not among that side's prices in row ``i - 1``,
  and message ``i`` is not a submission on that side at that price. Such a slot shows liquidity
  that was deeper than level N a message ago (or shows that there is none, a dummy), which the
  message file never describes; only the orderbook file can tell it. The slot is then
  resynchronised to the file (a *window-entering resync*) and the row still counts as matched.
- **mismatch**: any other difference, in particular any difference in a slot that was inside
  the window. The side is resynchronised to the file so that one error does not propagate, and
  the row is listed in ``mismatches``.

Resyncs work price by price through the deepest published price: levels the replay has there
but the file does not (stale ones) are emptied, levels of the wrong size are cut (synthetic
orders first, then real ones from the back of the queue) or topped up with a synthetic order.
When the file's row lies across the replayed other side (rows out of order), the crossing part
of the other side is emptied first, so a resync never trades.
``match_rate`` = (exact + entering rows) / rows; ``n_exact`` counts exact rows alone. Row 0
matches by construction of the seed.

Hybrid replay
-------------
:class:`Injection` puts a user order into the real book just before a given message: a market
order, or a limit order whose resting part joins its level's queue at the back (a normal
arrival), the front, or any index. It trades with the real resting orders as makers. From then
on the replay keeps, per price level, ``delta`` = hybrid lots - history's lots:

- liquidity an injected order takes lowers ``delta``; a later message that removes liquidity
  already taken is cut down or dropped (*reconciled*) and raises it back;
- a historical execution (type 4) that a resting injected order would have met first (better
  price, or ahead in the queue) fills the injected order instead; the named order keeps the
  difference (it stays in the hybrid book until history deletes it). Hidden executions
  (type 5) fill injected orders at or better than their price the same way, as displayed
  liquidity goes before hidden liquidity;
- a historical submission that crosses the hybrid book trades (both sides are then short of
  history, and reconciled later).

Each hybrid row is compared with history as above (an entering slot only counts as matched if
no injection changed that side's published prices); rows from the first injection on are not
listed in ``mismatches`` (their differences are the point) and :class:`Divergence` measures
them. The book is then corrected towards history + ``delta`` (levels entering the window, stale
levels); ``Divergence.inconsistent`` counts hybrid rows that needed a correction inside the
window, which would mean the ``delta`` book-keeping failed (0 on the sample files). Liquidity
deeper than level N at the injection is the replay's stale memory, not data: the report says
how many lots an injected order took there (``beyond_window``).

The parts: :mod:`~orderbook.data.lobster.files` (the file format and its readers),
:mod:`~orderbook.data.lobster.injection` (:class:`Injection`),
:mod:`~orderbook.data.lobster.results` (what a replay reports) and
:mod:`~orderbook.data.lobster.replayer` (:func:`replay`, :func:`replay_files` and the loop that
carries out the rules above); import from here.
"""

from ..errors import DataError
from .files import (
    DUMMY_ASK_PRICE,
    DUMMY_BID_PRICE,
    LOBSTER_MESSAGE_DTYPE,
    EventType,
    LobsterBook,
    orderbook_path_for,
    read_messages,
    read_orderbook,
)
from .injection import Injection
from .replayer import replay, replay_files
from .results import FILL_DTYPE, Divergence, InjectionReport, ReplayResult

__all__ = [
    "EventType", "LOBSTER_MESSAGE_DTYPE", "FILL_DTYPE", "DUMMY_ASK_PRICE", "DUMMY_BID_PRICE",
    "LobsterBook", "Injection", "InjectionReport", "Divergence", "ReplayResult", "DataError",
    "read_messages", "read_orderbook", "orderbook_path_for", "replay", "replay_files",
]
