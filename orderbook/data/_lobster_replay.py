"""The replay loop behind :func:`orderbook.data.lobster.replay` (private).

:mod:`orderbook.data.lobster` documents the rules (seeding, unknown orders, window-entering
resyncs, hybrid book-keeping); this module carries them out. Prices in ticks ($ x 10^4), sizes
in lots (shares). The loop is Python calling the order book once or twice per message; the
per-row comparison uses Python lists of ints (cheaper than numpy for rows of 4N numbers).
"""

from __future__ import annotations

from enum import IntEnum
from time import perf_counter

import numpy as np

from ..events import INJECTED_ID_BASE, EventKind, Side
from .errors import DataError

#: Price of an empty ask level in a LOBSTER orderbook file (its size is 0).
DUMMY_ASK_PRICE = 9_999_999_999
#: Price of an empty bid level in a LOBSTER orderbook file (its size is 0).
DUMMY_BID_PRICE = -9_999_999_999


class EventType(IntEnum):
    """LOBSTER message type (column 2 of the message file)."""

    SUBMISSION = 1        #: new limit order
    CANCELLATION = 2      #: partial deletion of a limit order
    DELETION = 3          #: total deletion of a limit order
    EXECUTION = 4         #: execution of a visible limit order
    HIDDEN_EXECUTION = 5  #: execution of a hidden limit order (no visible change)
    CROSS_TRADE = 6       #: auction (cross) trade (no visible change)
    HALT = 7              #: trading halt, quoting or resumption (no visible change)


# Module-level ints for the loop: no enum attribute look-up per message.
_SUBMISSION, _CANCELLATION, _DELETION, _EXECUTION, _HIDDEN = (
    int(EventType.SUBMISSION), int(EventType.CANCELLATION), int(EventType.DELETION),
    int(EventType.EXECUTION), int(EventType.HIDDEN_EXECUTION))


def at_or_better(side: int, price: int, than: int) -> bool:
    """Is ``price`` at or better than ``than`` on ``side`` (higher for bids, lower for asks)?"""
    return price >= than if side == Side.BUY else price <= than


class Replayer:
    """One replay's state and loop (the rules are in :mod:`orderbook.data.lobster`).

    Dicts are keyed by order id or by (side, price). After :meth:`run` the public attributes
    (``ours``, ``file``, ``matched``, ``exact``, the ``n_*`` counters, ``mismatches``,
    ``fills``, ``arrival``, ``first_injection``, ``inconsistent``, ``book``) hold the outcome.
    """

    def __init__(self, messages, lobster, inject, book_cls):
        self.msgs = messages
        self.n = len(messages)
        self.levels = lobster.levels
        n, levels = self.n, self.levels
        # The file in its own column order (ask px, ask sz, bid px, bid sz per level); the loop
        # compares rows as lists of Python ints (file_rows), the cheapest comparison for 4N ints.
        self.file = np.empty((n, 4 * levels), dtype=np.int64)
        for k, a in enumerate(lobster):
            self.file[:, k::4] = a
        self.ours = np.zeros_like(self.file)
        self.file_rows = self.file.tolist()  # Python ints compare fastest
        self.pad_ask = [DUMMY_ASK_PRICE] * levels
        self.pad_bid = [DUMMY_BID_PRICE] * levels
        self.pad_qty = [0] * levels
        self.book = book_cls()
        self.synthetic: dict[tuple[int, int], list[int]] = {}
        self.next_synthetic = -1
        self.seen: set[int] = set()
        # Real (LOBSTER) order ids by (side, price) in arrival order, so corrections find the
        # orders of a level without an l3() snapshot; ids that left the book are pruned lazily.
        self.level_ids: dict[tuple[int, int], dict[int, None]] = {}
        # Hybrid book-keeping. delta: hybrid lots minus history's lots at a level, for every
        # level an injection changed; taken: lots an order lost to trades history does not
        # have; surplus: lots an order kept because an injected order served its taker.
        self.delta: dict[tuple[int, int], int] = {}
        self.taken: dict[int, int] = {}
        self.surplus: dict[int, int] = {}
        self.resting_injected: dict[int, int] = {}  # id -> index into self.inject
        self.inject = inject
        self.fills: list[list[tuple]] = [[] for _ in inject]
        self.arrival: list[dict] = [{} for _ in inject]
        self.hybrid = False
        self.row = 0
        self.first_injection: int | None = None
        self.matched = np.zeros(n, dtype=bool)
        self.exact = np.zeros(n, dtype=bool)
        self.mismatches: list[tuple[int, str]] = []
        self.inconsistent: set[int] = set()  # hybrid rows that needed an inside correction
        self.n_unknown = self.n_reattributed = self.n_dropped = 0
        self.n_reconciled = self.n_crossed = 0
        self.n_resync_entering = self.n_resync_inside = self.n_entering = 0

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> float:
        """Replay every message; returns the seconds the loop took."""
        msgs, n = self.msgs, self.n
        when = self._schedule()
        self.types = types = msgs["type"].tolist()
        self.ids = ids = msgs["order_id"].tolist()
        self.sizes = sizes = msgs["size"].tolist()
        self.prices = prices = msgs["price"].tolist()
        self.sides = sides = msgs["direction"].tolist()
        book, seen_add, level_ids = self.book, self.seen.add, self.level_ids
        limit, order, amend, cancel = book.limit, book.order, book.amend, book.cancel
        self._seed(types[0], sides[0], prices[0], sizes[0])
        start = perf_counter()
        for i in range(n):
            self.row = i
            if i in when:
                for k in when[i]:
                    self._inject(k, i)
            kind, oid, qty, side = types[i], ids[i], sizes[i], sides[i]
            if kind == _SUBMISSION:
                seen_add(oid)
                key = (side, prices[i])
                real = level_ids.get(key)
                if real is None:
                    level_ids[key] = {oid: None}
                else:
                    real[oid] = None
                try:
                    events = limit(oid, side, prices[i], qty)
                except ValueError as exc:  # e.g. the id is already resting
                    raise DataError(f"messages[{i}] (submission of order {oid}): {exc}", row=i,
                                    field="order_id") from None
                if len(events) > 1:  # it traded: possible only in a hybrid or broken replay
                    self._on_events(events, i, side, prices[i])
            elif _CANCELLATION <= kind <= _EXECUTION:
                if self.resting_injected and kind == _EXECUTION:
                    qty -= self._injected_first(i, oid, side, prices[i], qty, hidden=False)
                if qty:
                    try:
                        info = order(oid)
                    except KeyError:
                        info = None
                    if info is None:
                        self._shortfall(i, oid, side, prices[i], qty, known=oid in self.seen)
                    elif info.qty > qty and kind != _DELETION:
                        amend(oid, info.price, info.qty - qty)
                    else:
                        cancel(oid)
                        if info.qty < qty:
                            self._shortfall(i, oid, side, info.price, qty - info.qty, known=True)
                        elif info.qty > qty:  # a deletion of more than history knew of
                            self._excess(oid, side, info.price, info.qty - qty)
            elif kind == _HIDDEN and self.resting_injected:
                self._injected_first(i, oid, side, prices[i], qty, hidden=True)
            self._check_row(i)
        return perf_counter() - start

    def _schedule(self) -> dict[int, list[int]]:
        when: dict[int, list[int]] = {}
        times = self.msgs["time"]
        for k, inj in enumerate(self.inject):
            if inj.at is not None:
                at = inj.at
                if at >= self.n:
                    raise ValueError(f"inject[{k}].at = {at}; the replay has {self.n} messages")
            else:
                at = int(np.searchsorted(times, inj.time, side="left"))
                if at >= self.n:
                    raise ValueError(f"inject[{k}].time = {inj.time!r} is after the last "
                                     f"message ({float(times[-1])!r})")
            when.setdefault(at, []).append(k)
        return when

    def _seed(self, kind, side, price, size) -> None:
        """Synthetic orders for the book before message 0: row 0 with message 0 undone."""
        row = self.file[0]
        for off, s in ((0, Side.SELL), (2, Side.BUY)):
            levels = {int(p): int(q) for p, q in zip(row[off::4], row[off + 1::4]) if q > 0}
            if side == s and kind == _SUBMISSION:
                levels[price] = levels.get(price, 0) - size
            elif side == s and _CANCELLATION <= kind <= _EXECUTION:
                levels[price] = levels.get(price, 0) + size
            for p, q in levels.items():
                if q > 0:
                    self._add_synthetic(s, p, q)

    # -- comparison and resync --------------------------------------------------------------
    def _top(self) -> list[list[int]]:
        """The replayed book's N levels as [ask px, ask qty, bid px, bid qty] lists, padded
        with LOBSTER's dummies: comparable with ``file_rows[i][k::4]``."""
        book, levels = self.book, self.levels
        if levels == 1:  # l2() builds six arrays; the scalar queries are ~20x cheaper
            ask, bid = book.best_ask(), book.best_bid()
            return [[DUMMY_ASK_PRICE if ask is None else ask],
                    [0 if ask is None else book.quantity_at(Side.SELL, ask)],
                    [DUMMY_BID_PRICE if bid is None else bid],
                    [0 if bid is None else book.quantity_at(Side.BUY, bid)]]
        l2 = book.l2(levels)
        top = [l2.ask_price.tolist(), l2.ask_qty.tolist(), l2.bid_price.tolist(),
               l2.bid_qty.tolist()]
        for px, qty, pad in ((0, 1, self.pad_ask), (2, 3, self.pad_bid)):
            k = len(top[px])
            if k < levels:
                top[px] += pad[k:]
                top[qty] += self.pad_qty[k:]
        return top

    def _check_row(self, i: int) -> None:
        # An exact row (the common case) is not stored here: _result copies it from the file.
        ours = self._top()
        row = self.file_rows[i]
        want = [row[0::4], row[1::4], row[2::4], row[3::4]]
        if ours == want:
            self.matched[i] = self.exact[i] = True
            return
        last = self.levels - 1
        ok, entering_used, problems = True, False, []
        for px, qty, side in ((0, 1, Side.SELL), (2, 3, Side.BUY)):
            bad = [k for k in range(self.levels)
                   if ours[px][k] != want[px][k] or ours[qty][k] != want[qty][k]]
            if not bad:
                continue
            entering = i > 0 and self._entering(i, px, side)
            # In a hybrid row a difference at an entering slot is only the usual unknown depth
            # if no injection changed that side's published prices.
            untouched = self._correct_side(i, side, want[px], want[qty], entering)
            if entering and bad == [last] and untouched:
                entering_used = True
            else:
                ok = False
                problems.append(self._describe(ours, want, px, side, bad))
        self.matched[i] = ok
        self.n_entering += ok and entering_used
        if not ok and not self.hybrid:
            self.mismatches.append(
                (i, f"after message type {self.types[i]} id {self.ids[i]} size "
                    f"{self.sizes[i]} price {self.prices[i]} direction {self.sides[i]}: "
                    + "; ".join(problems)))
        ours = self._top()
        if not self.hybrid and ours != want:
            raise RuntimeError(f"row {i}: the resync did not restore the published book")
        for k in range(4):
            self.ours[i, k::4] = ours[k]

    def _entering(self, i: int, px: int, side: int) -> bool:
        """Is slot N of ``side`` in row i window-entering (see the module notes)?"""
        price = self.file_rows[i][px + 4 * (self.levels - 1)]
        if price in self.file_rows[i - 1][px::4]:
            return False
        submitted_there = (self.types[i] == _SUBMISSION and self.sides[i] == side
                           and self.prices[i] == price)
        return not submitted_there

    @staticmethod
    def _describe(ours, want, px, side, bad) -> str:
        def level(book, k):
            return "empty" if book[px + 1][k] == 0 else f"{book[px][k]}x{book[px + 1][k]}"

        name = "ask" if side == Side.SELL else "bid"
        return ", ".join(f"{name} level {k + 1}: replay {level(ours, k)} file {level(want, k)}"
                         for k in bad)

    def _correct_side(self, i: int, side: int, prices: list[int], sizes: list[int],
                      entering: bool) -> bool:
        """Resynchronise ``side`` with what row i says it should be, price by price, through
        the file's deepest published price (through every price if the file shows fewer
        than N levels). That is the file itself before the first injection, and afterwards
        the file plus ``delta`` (what injected orders took, added or left in place). Every
        level changed counts as a resync: window-entering if all the changes
        lie beyond the file's level N-1 and slot N is entering, inside the window otherwise.
        Returns False when ``delta`` changed any of those prices (the side is not history's)."""
        book, hybrid = self.book, self.hybrid
        expected = {p: q for p, q in zip(prices, sizes) if q > 0}
        full = len(expected) == self.levels
        worst = prices[-1] if full else None
        untouched = True
        if hybrid:
            for (s, p), d in self.delta.items():
                if s != side or not d or worst is not None and not at_or_better(side, p, worst):
                    continue
                have = expected.get(p, 0)
                if have + d < 0:
                    # Injected orders took more here than history now shows in the open: the
                    # rest was stale liquidity (gone unreported while deeper than level N).
                    self.delta[s, p] = d = -have
                expected[p] = have + d
                untouched = untouched and not d
        ours = {p: book.quantity_at(side, p) for p in self._prices_through(side, worst)}
        diffs = [p for p in ours.keys() | expected.keys() if ours.get(p, 0) != expected.get(p, 0)]
        if not diffs:
            return untouched
        inner = prices[-2] if self.levels > 1 else None
        window_entering = entering and (
            inner is None or all(not at_or_better(side, p, inner) for p in diffs))
        changed = 0
        if not hybrid and expected:
            # A level the file puts across our other side (rows out of order, a row from
            # another day) would trade with it when topped up. The file's row is not crossed,
            # so that part of our other side is wrong anyway: empty it first, as a resync.
            best = max(expected) if side == Side.BUY else min(expected)
            crossing = self._prices_through(-side, best)
            changed += sum(self._set_level(-side, p, 0) for p in crossing)
            window_entering = window_entering and not crossing
        changed += sum(self._set_level(side, p, expected.get(p, 0)) for p in diffs)
        if window_entering:
            self.n_resync_entering += changed
        else:
            self.n_resync_inside += changed
            if hybrid:
                self.inconsistent.add(i)
        return untouched

    def _prices_through(self, side: int, worst: int | None) -> list[int]:
        """Our prices on ``side`` from the best through ``worst`` (all of them if None)."""
        n = 4 * self.levels
        while True:
            l2 = self.book.l2(n)
            px = (l2.bid_price if side == Side.BUY else l2.ask_price).tolist()
            if len(px) < n:
                break  # that is all of the side
            if worst is not None and not at_or_better(side, px[-1], worst):
                break
            n *= 4
        if worst is None:
            return px
        return [p for p in px if at_or_better(side, p, worst)]

    def _set_level(self, side: int, price: int, target: int) -> int:
        have = self.book.quantity_at(side, price)
        if have == target:
            return 0
        if target > have:
            self._add_synthetic(side, price, target - have)
        else:
            self._take_from_level(side, price, have - target, exclude=None, newest_first=True)
        return 1

    # -- liquidity bookkeeping --------------------------------------------------------------
    def _add_synthetic(self, side: int, price: int, qty: int) -> None:
        oid = self.next_synthetic
        self.next_synthetic -= 1
        events = self.book.limit(oid, side, price, qty)
        self.synthetic.setdefault((side, price), []).append(oid)
        if len(events) > 1:  # only in a hybrid book: an injected order rests across it
            self._on_events(events, self.row, side, price)

    def _take_from_level(self, side, price, qty, *, exclude, newest_first) -> int:
        """Remove up to ``qty`` lots at (side, price): synthetic orders first, then real ones
        from the back of the queue (never ``exclude`` and never an injected order)."""
        book = self.book
        left = qty
        ids = self.synthetic.get((side, price), [])
        for oid in (list(reversed(ids)) if newest_first else list(ids)):
            if not left:
                break
            left -= self._reduce(oid, left)
        if ids:
            ids[:] = [oid for oid in ids if oid in book]
        real = self.level_ids.get((side, price))
        if left and real:
            for oid in reversed(list(real)):
                if not left:
                    break
                if oid not in book:
                    del real[oid]
                elif oid != exclude:
                    left -= self._reduce(oid, left)
        return qty - left

    def _reduce(self, oid: int, qty: int) -> int:
        """Reduce a live order by up to ``qty`` lots, keeping its queue place; lots removed."""
        try:
            info = self.book.order(oid)
        except KeyError:
            return 0
        if info.qty > qty:
            self.book.amend(oid, info.price, info.qty - qty)
            return qty
        self.book.cancel(oid)
        return info.qty

    def _shift(self, key, qty: int) -> None:
        self.delta[key] = self.delta.get(key, 0) + qty

    def _drop_debt(self, key, qty: int) -> int:
        """Up to ``qty`` lots of a message that the hybrid book no longer has at ``key``
        because injected orders took them: dropped, and the level's debt shrinks."""
        used = min(max(-self.delta.get(key, 0), 0), qty)
        if used:
            self._shift(key, used)
        return used

    def _shortfall(self, i, oid, side, price, qty, *, known) -> None:
        """A message removes ``qty`` lots more than order ``oid`` holds in the replay."""
        key = (side, price)
        if known:
            took = min(self.taken.get(oid, 0), qty)
            if took:
                self.taken[oid] -= took
                self._shift(key, took)
                self.n_reconciled += 1
                qty -= took
            if qty:
                got = self._take_from_level(side, price, qty, exclude=oid, newest_first=False)
                self.n_reattributed += got > 0
                qty -= got
            if qty:
                dropped = self._drop_debt(key, qty)
                self.n_reconciled += dropped > 0
                qty -= dropped
        else:
            self.n_unknown += 1
            ids = self.synthetic.get(key, [])
            for sid in list(ids):
                if not qty:
                    break
                qty -= self._reduce(sid, qty)
            ids[:] = [sid for sid in ids if sid in self.book]
            if qty:
                dropped = self._drop_debt(key, qty)
                self.n_reconciled += dropped > 0
                qty -= dropped
            if qty:
                got = self._take_from_level(side, price, qty, exclude=oid, newest_first=False)
                self.n_reattributed += got > 0
                qty -= got
        self.n_dropped += qty > 0

    def _excess(self, oid, side, price, qty) -> None:
        """A deletion removed ``qty`` lots more than history's message: give back what was
        another order's (a stale guess), not what the hybrid world left with ``oid``."""
        kept = min(self.surplus.pop(oid, 0), qty)
        if kept:
            self.n_reconciled += 1
            self._shift((side, price), -kept)
            qty -= kept
        if qty:
            self._add_synthetic(side, price, qty)
            self.n_reattributed += 1

    # -- injections -------------------------------------------------------------------------
    def _inject(self, k: int, i: int) -> None:
        inj = self.inject[k]
        book = self.book
        oid = INJECTED_ID_BASE - k
        if not self.hybrid:
            self.hybrid, self.first_injection = True, i
        opposite = book.l2(self.levels)
        touch_px = opposite.bid_price if inj.side == Side.SELL else opposite.ask_price
        touch = int(touch_px[0]) if len(touch_px) else 0
        window_edge = int(touch_px[-1]) if len(touch_px) == self.levels else None
        if inj.kind == "market":
            events = book.market(oid, inj.side, inj.qty)
        else:
            events = book.limit(oid, inj.side, inj.price, inj.qty)
        first = len(self.fills[k])
        self._on_events(events, i, inj.side, inj.price or 0)
        taken = self.fills[k][first:]
        prices = {f[1] for f in taken}
        beyond = 0
        if window_edge is not None:
            beyond = sum(f[2] for f in taken
                         if (f[1] < window_edge if inj.side == Side.SELL else f[1] > window_edge))
        self.arrival[k] = {"row": i, "order_id": oid, "touch": touch, "levels": len(prices),
                           "beyond": beyond}
        if inj.kind == "limit" and oid in book:
            self.resting_injected[oid] = k
            self._shift((inj.side, inj.price), book.order(oid).qty)
            if inj.position != "back":
                self._reposition(oid, inj.side, inj.price,
                                 0 if inj.position == "front" else inj.position)

    def _reposition(self, oid: int, side: int, price: int, index: int) -> None:
        """Move resting order ``oid`` (last in its level) to queue position ``index``: the
        orders from that position on leave and rejoin behind it, in their order."""
        book = self.book
        l3 = book.l3()
        level = l3[(l3["side"] == side) & (l3["price"] == price)]
        movers = level[min(index, len(level) - 1):-1]
        for rec in movers:
            book.cancel(int(rec["order_id"]))
        for rec in movers:
            book.limit(int(rec["order_id"]), side, price, int(rec["qty"]), int(rec["owner"]))

    def _injected_first(self, i, oid, side, price, qty, *, hidden) -> int:
        """A historical execution of ``qty`` lots against ``side`` at ``price``: resting
        injected orders with priority over the executed one fill first. Returns their lots."""
        book = self.book
        better = []
        for inj_id in list(self.resting_injected):
            try:
                info = book.order(inj_id)
            except KeyError:
                del self.resting_injected[inj_id]
                continue
            if info.side != side:
                continue
            if info.price == price:
                if hidden or self._ahead(inj_id, oid, side, price):
                    better.append((0, inj_id))
            elif (info.price > price) == (side == Side.BUY):
                better.append((-info.price * side, inj_id))
        absorbed = 0
        for _, inj_id in sorted(better):
            if absorbed == qty:
                break
            info = book.order(inj_id)
            fill = self._reduce(inj_id, qty - absorbed)
            absorbed += fill
            self._shift((side, info.price), -fill)
            self.fills[self.resting_injected[inj_id]].append((i, info.price, fill, 0, False))
            if inj_id not in book:
                del self.resting_injected[inj_id]
        if absorbed and not hidden:
            # The executed liquidity stays in the hybrid book (the taker was served by the
            # injected order): history no longer shows it, the hybrid book does.
            self._shift((side, price), absorbed)
            if oid in book:
                self.surplus[oid] = self.surplus.get(oid, 0) + absorbed
        return absorbed

    def _ahead(self, inj_id, oid, side, price) -> bool:
        """Is injected order ``inj_id`` ahead of the executed order in their level's queue?
        An unknown id stands for the oldest synthetic order there."""
        book = self.book
        if oid not in book:
            ids = [s for s in self.synthetic.get((side, price), []) if s in book]
            if not ids:
                return True
            oid = ids[0]
        l3 = book.l3()
        queue = l3[(l3["side"] == side) & (l3["price"] == price)]["order_id"].tolist()
        return queue.index(inj_id) < queue.index(oid)

    def _on_events(self, events, i, taker_side, taker_price) -> None:
        """Book-keeping for trades: fills of injected orders, liquidity they took."""
        for ev in events:
            if ev.kind != EventKind.TRADE:
                continue
            taker, maker, price, qty = ev.order_id, ev.maker_id, ev.price, ev.qty
            maker_side = -taker_side
            if maker <= INJECTED_ID_BASE:
                k = INJECTED_ID_BASE - maker
                self.fills[k].append((i, price, qty, taker if taker > INJECTED_ID_BASE else 0,
                                      False))
                if maker not in self.book:
                    self.resting_injected.pop(maker, None)
            else:
                self.taken[maker] = self.taken.get(maker, 0) + qty
            self._shift((maker_side, price), -qty)
            if taker <= INJECTED_ID_BASE:
                self.fills[INJECTED_ID_BASE - taker].append((i, price, qty, maker, True))
            else:
                # A historical or synthetic order traded: it rests with less than history
                # says, so its later cancels are reconciled against this.
                self.n_crossed += taker >= 0 and maker > INJECTED_ID_BASE
                self.taken[taker] = self.taken.get(taker, 0) + qty
                self._shift((taker_side, taker_price), -qty)
