"""What a replay reports: book states and sequence gaps (layouts, kinds), the bookTicker check."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

# ------------------------------------------------------------------- book states and gaps
#: One state of the rebuilt book, in the order the states were reached. ``local_ns`` is when the
#: state became known locally (a buffered diff takes its snapshot's receive time) and
#: ``event_ms`` the exchange event time, both made non-decreasing; ``update_id`` is the last
#: update id the state includes (u of a diff, lastUpdateId of a snapshot; a GAP row holds the
#: first id missing); ``segment`` is the row of the snapshot the state grew from. Best prices in
#: ticks, quantities in lots, 0 for an empty side. A GAP row marks where the book stopped being
#: valid.
STATE_DTYPE = np.dtype([
    ("kind", "i1"), ("source", "<i8"), ("line", "<i8"), ("local_ns", "<i8"),
    ("event_ms", "<i8"), ("update_id", "<i8"), ("segment", "<i8"), ("best_bid", "<i8"),
    ("best_bid_qty", "<i8"), ("best_ask", "<i8"), ("best_ask_qty", "<i8"),
    ("bid_levels", "<i8"), ("ask_levels", "<i8"),
])

#: One break in the update-id sequence: ``expected`` the id the rules required (previous u for a
#: SEQUENCE gap, the snapshot's lastUpdateId for a BRIDGE gap), ``got`` the id received (pu, or U).
GAP_DTYPE = np.dtype([
    ("kind", "i1"), ("line", "<i8"), ("local_ns", "<i8"), ("expected", "<i8"), ("got", "<i8"),
])


class StateKind(IntEnum):
    """What produced a row of :data:`STATE_DTYPE`."""

    SNAPSHOT = 1  #: a REST snapshot was loaded
    DIFF = 2      #: a depth diff was applied
    GAP = 3       #: the sequence broke; no valid book until the next snapshot


class GapKind(IntEnum):
    """Which sequence rule a :data:`GAP_DTYPE` row broke."""

    SEQUENCE = 1  #: a diff's pu is not the previous diff's u (updates were lost)
    BRIDGE = 2    #: the first diff kept after a snapshot does not have U <= lastUpdateId <= u


# ------------------------------------------------------------------- the bookTicker check
@dataclass(frozen=True)
class TickerCheck:
    """Best bid/ask of the rebuilt book against the ``bookTicker`` stream.

    bookTicker ``u`` ("order book updateId") and depth ``U``/``u`` number the same sequence of
    book updates, but a depth@0ms diff bundles every update in (pu, u] while a bookTicker is
    pushed for each change of the touch. The book is known only at diff boundaries, so a
    bookTicker is compared with the state after the diff whose (pu, u] holds its id. That
    comparison is exact only when no later update in the same diff moved the touch again, i.e.
    for the **last** bookTicker of each diff (``final``); an earlier one (``superseded``)
    describes an intermediate touch the depth stream never shows, and is reported but expected to
    disagree sometimes. bookTickers outside the valid book (before the first snapshot, after the
    last diff, inside a gap) are ``uncovered``.

    On the shared capture: 629 of 66,056 checked bookTickers have an id equal to a diff's u; the
    5,702 final ones all agree on price and quantity, as do all 6,546 book states with the
    prevailing bookTicker; over all bookTickers 80.2 % agree on price and 9.3 % on price and
    quantity, the rest being intermediate touches inside a bundled diff.

    ``state_*`` checks the other direction: every book state against the latest bookTicker at or
    before its update id (the touch prevailing then, as the bookTicker stream pushes every change).

    ``on_boundary`` counts the checked bookTickers whose id is exactly a state's update id. Rates
    are agreed / checked (NaN when nothing was checked); price-only compares both prices, full
    also both quantities.
    """

    checked: int
    price_agreed: int
    full_agreed: int
    on_boundary: int
    final: int
    final_price_agreed: int
    final_full_agreed: int
    superseded: int
    superseded_price_agreed: int
    superseded_full_agreed: int
    uncovered: int
    state_checked: int
    state_price_agreed: int
    state_full_agreed: int
    disagreements: np.ndarray

    @property
    def price_rate(self) -> float:
        """Share of checked bookTickers whose bid and ask prices agree."""
        return self.price_agreed / self.checked if self.checked else float("nan")

    @property
    def full_rate(self) -> float:
        """Share of checked bookTickers agreeing on both prices and both quantities."""
        return self.full_agreed / self.checked if self.checked else float("nan")

    @property
    def final_full_rate(self) -> float:
        """Full agreement among the last bookTicker of each diff (the exact comparison)."""
        return self.final_full_agreed / self.final if self.final else float("nan")

    @property
    def state_full_rate(self) -> float:
        """Share of book states whose touch equals the prevailing bookTicker's."""
        return (self.state_full_agreed / self.state_checked if self.state_checked
                else float("nan"))


#: A bookTicker that disagrees with the book state it was compared with (``state`` is the row of
#: ``Replay.states``); ``final`` says whether it was the last bookTicker of its diff.
DISAGREEMENT_DTYPE = np.dtype([
    ("line", "<i8"), ("update_id", "<i8"), ("state", "<i8"), ("final", "?"),
    ("bid_price", "<i8"), ("bid_qty", "<i8"), ("ask_price", "<i8"), ("ask_qty", "<i8"),
    ("book_bid", "<i8"), ("book_bid_qty", "<i8"), ("book_ask", "<i8"), ("book_ask_qty", "<i8"),
])
