"""replay() and replay_files(), and the Replayer loop that carries them out.

:mod:`orderbook.data.lobster` documents the rules (seeding, unknown orders, window-entering
resyncs, hybrid book-keeping); this module carries them out. Prices in ticks ($ x 10^4), sizes
in lots (shares). The loop is Python calling the order book once or twice per message; the
per-row comparison uses Python lists of ints (cheaper than numpy for rows of 4N numbers).
"""

from __future__ import annotations

import logging
import math
from time import perf_counter

import numpy as np

from ..._progress import reporting
from ...events import INJECTED_ID_BASE, EventKind, Side
from ..errors import DataError
from .files import (
    DUMMY_ASK_PRICE,
    DUMMY_BID_PRICE,
    LOBSTER_MESSAGE_DTYPE,
    EventType,
    LobsterBook,
    _check_messages,
    _check_orderbook,
    orderbook_path_for,
    read_messages,
    read_orderbook,
)
from .injection import Injection
from .results import FILL_DTYPE, Divergence, InjectionReport, ReplayResult

log = logging.getLogger(__name__)

#: Messages between two calls of a replay's progress hook.
PROGRESS_EVERY = 4_096


def replay(messages: np.ndarray, orderbook, *, inject=(), book_cls=None,
           progress=None) -> ReplayResult:
    """Replay LOBSTER messages into an order book and compare it with the orderbook file.

    Parameters
    ----------
    messages : numpy.ndarray
        :data:`LOBSTER_MESSAGE_DTYPE` (or any array with its field names), as from
        :func:`read_messages`.
    orderbook : LobsterBook or 4-tuple of arrays
        ``(ask_price, ask_size, bid_price, bid_size)``, each ``(len(messages), N)``.
    inject : iterable of Injection
        User orders to put into the book (hybrid replay; see :mod:`orderbook.data.lobster`).
    book_cls : class, optional
        Order book class with the :class:`orderbook.OrderBook` API; default the compiled one
        (``orderbook.reference.OrderBook`` gives the same result, slower).
    progress : callable, True or None
        ``progress(done, total)`` in messages, every 4,096 messages and at the end
        (``total``: ``len(messages)``); True draws a bar on stderr (a terminal only).

    Returns
    -------
    ReplayResult
        O(messages x N) plus O(book) per correction.

    Examples
    --------
    Row 0 shows 15 shares bid at 100 after order 7 added 5, so the seed holds the other 10:

    >>> import numpy as np
    >>> from orderbook.data.lobster import LOBSTER_MESSAGE_DTYPE, LobsterBook, replay
    >>> msgs = np.array([(34200.0, 1, 7, 5, 100, 1)], dtype=LOBSTER_MESSAGE_DTYPE)
    >>> book = LobsterBook(*(np.array([[x]]) for x in (101, 10, 100, 15)))
    >>> result = replay(msgs, book)
    >>> result.n_exact, result.spread.tolist(), result.bid_depth.tolist()
    (1, [1], [15])
    """
    messages, book = _check_inputs(messages, orderbook)
    inject = tuple(inject) if not isinstance(inject, Injection) else (inject,)
    for k, inj in enumerate(inject):
        if not isinstance(inj, Injection):
            raise TypeError(f"inject[{k}] = {inj!r}; expected an Injection")
    if book_cls is None:
        from ...book import OrderBook as book_cls
    with reporting(progress, [("replay", len(messages))], "messages") as report:
        engine = Replayer(messages, book, inject, book_cls, report)
        log.info("replay: %s messages, %s levels, %s injected orders", f"{len(messages):,}",
                 book.levels, len(inject))
        seconds = engine.run()
    log.info("replay: done in %.2f s", seconds)
    return _result(engine, inject, seconds, book)


def replay_files(message_path, orderbook_path=None, *, nrows: int | None = None, inject=(),
                 book_cls=None, progress=None) -> ReplayResult:
    """:func:`replay` of a LOBSTER file pair.

    Parameters
    ----------
    message_path : str or Path
        The message file.
    orderbook_path : str or Path, optional
        The orderbook file; by default the one :func:`orderbook_path_for` names.
    nrows : int, optional
        Replay only the first ``nrows`` messages.
    inject, book_cls, progress
        As for :func:`replay`.

    Examples
    --------
    A forced market sell of 5,000 shares at 10:00 into the AMZN sample day:

    >>> from orderbook.data.lobster import Injection, replay_files
    >>> day = "AMZN_2012-06-21_34200000_57600000_message_1.csv"
    >>> plain = replay_files(day)  # doctest: +SKIP
    >>> plain.match_rate  # doctest: +SKIP
    1.0
    >>> forced = Injection(side="sell", qty=5_000, time=10 * 3600)
    >>> print(replay_files(day, inject=[forced]).summary())  # doctest: +SKIP
    """
    if orderbook_path is None:
        orderbook_path = orderbook_path_for(message_path)
    messages = read_messages(message_path, nrows=nrows)
    book = read_orderbook(orderbook_path, nrows=nrows)
    if book.ask_price.shape[0] != len(messages):
        raise DataError(f"{len(messages)} messages but {book.ask_price.shape[0]} orderbook rows "
                        f"in {orderbook_path}; the files must have one row per message",
                        path=message_path)
    try:
        return replay(messages, book, inject=inject, book_cls=book_cls, progress=progress)
    except DataError as exc:  # a message the book refuses (a live id resubmitted, ...)
        raise (exc if exc.path is not None else exc.in_file(message_path)) from None


def _check_inputs(messages, orderbook) -> tuple[np.ndarray, LobsterBook]:
    if not isinstance(messages, np.ndarray) or messages.dtype.names is None:
        raise TypeError(f"messages must be a structured numpy array (read_messages), got "
                        f"{type(messages).__name__}")
    missing = [f for f in LOBSTER_MESSAGE_DTYPE.names if f not in messages.dtype.names]
    if missing:
        raise TypeError(f"messages lack the field(s) {missing}; expected {LOBSTER_MESSAGE_DTYPE}")
    if messages.ndim != 1 or len(messages) == 0:
        raise ValueError(f"messages must be a non-empty 1-D array, got shape {messages.shape}")
    for name in LOBSTER_MESSAGE_DTYPE.names[1:]:
        if messages.dtype[name].kind not in "iu":
            raise TypeError(f"messages['{name}'] must be integers, got {messages.dtype[name]}")
    _check_messages(messages)
    messages = messages.astype(LOBSTER_MESSAGE_DTYPE)
    if not isinstance(orderbook, tuple) or len(orderbook) != 4:
        raise TypeError("orderbook must be a LobsterBook or a tuple (ask_price, ask_size, "
                        "bid_price, bid_size)")
    arrays = []
    for name, a in zip(LobsterBook._fields, orderbook, strict=True):
        a = np.asarray(a)
        if a.dtype.kind not in "iu":
            raise TypeError(f"orderbook.{name} must be integers, got {a.dtype}")
        arrays.append(a.astype(np.int64))
    book = LobsterBook(*arrays)
    _check_orderbook(book)
    if book.ask_price.shape[0] != len(messages) or book.levels < 1:
        raise ValueError(f"orderbook has shape {book.ask_price.shape}; expected one row per "
                         f"message ({len(messages)}) and at least one level")
    return messages, book


def _result(engine: Replayer, inject, seconds: float, history: LobsterBook) -> ReplayResult:
    ours, n = engine.ours, engine.n
    ours[engine.exact] = engine.file[engine.exact]  # exact rows were not stored by the loop
    ask_px, ask_sz = ours[:, 0::4], ours[:, 1::4]
    bid_px, bid_sz = ours[:, 2::4], ours[:, 3::4]
    best_ask = np.where(ask_sz[:, 0] > 0, ask_px[:, 0], 0)
    best_bid = np.where(bid_sz[:, 0] > 0, bid_px[:, 0], 0)
    spread = np.where((best_ask > 0) & (best_bid > 0), best_ask - best_bid, 0)
    n_matched = int(engine.matched.sum())
    return ReplayResult(
        levels=engine.levels, n_rows=n, n_matched=n_matched, n_exact=int(engine.exact.sum()),
        n_entering=int(engine.n_entering), match_rate=n_matched / n,
        mismatches=tuple(engine.mismatches), n_unknown=engine.n_unknown,
        n_resync=engine.n_resync_entering + engine.n_resync_inside,
        n_resync_entering=engine.n_resync_entering, n_resync_inside=engine.n_resync_inside,
        n_reattributed=int(engine.n_reattributed), n_dropped=int(engine.n_dropped),
        n_reconciled=int(engine.n_reconciled), n_crossed=int(engine.n_crossed),
        messages_per_second=n / seconds if seconds > 0 else math.inf, seconds=seconds,
        time=engine.msgs["time"].copy(), best_bid=best_bid, best_ask=best_ask, spread=spread,
        bid_depth=bid_sz.sum(axis=1), ask_depth=ask_sz.sum(axis=1),
        matched=engine.matched, exact=engine.exact,
        ask_price=np.ascontiguousarray(ask_px), ask_size=np.ascontiguousarray(ask_sz),
        bid_price=np.ascontiguousarray(bid_px), bid_size=np.ascontiguousarray(bid_sz),
        injections=tuple(_report(engine, k) for k in range(len(inject))),
        divergence=_divergence(engine, best_bid, best_ask),
        history=history,
    )


def _report(engine: Replayer, k: int) -> InjectionReport:
    inj, arrival = engine.inject[k], engine.arrival[k]
    fills = np.array(engine.fills[k], dtype=FILL_DTYPE).reshape(-1)
    filled = int(fills["qty"].sum())
    # exact: Python integers
    notional = sum(int(p) * int(q) for p, q in zip(fills["price"], fills["qty"], strict=True))
    avg = notional / filled if filled else math.nan
    touch = arrival["touch"]
    slippage = (touch - avg if inj.side == Side.SELL else avg - touch) if touch else math.nan
    oid = arrival["order_id"]
    resting = engine.book.order(oid).qty if oid in engine.book else 0
    return InjectionReport(
        injection=inj, order_id=oid, row=arrival["row"], touch_before=touch, filled=filled,
        notional=notional, avg_price=avg, slippage=slippage, levels=arrival["levels"],
        beyond_window=arrival["beyond"], resting=int(resting), fills=fills)


def _divergence(engine: Replayer, best_bid, best_ask) -> Divergence | None:
    if engine.first_injection is None:
        return None
    r0 = engine.first_injection
    file = engine.file[r0:]
    stats = []
    for ours, px, sz in ((best_bid[r0:], file[:, 2], file[:, 3]),
                         (best_ask[r0:], file[:, 0], file[:, 1])):
        both = (ours > 0) & (sz > 0)
        d = np.abs(ours[both] - px[both])
        stats.append((float(d.mean()) if len(d) else 0.0, int(d.max()) if len(d) else 0,
                      int(((ours == 0) & (sz > 0)).sum())))
    return Divergence(first_row=r0, rows=engine.n - r0, matched=int(engine.matched[r0:].sum()),
                      inconsistent=len(engine.inconsistent),
                      mean_abs_bid_diff=stats[0][0], mean_abs_ask_diff=stats[1][0],
                      max_abs_bid_diff=stats[0][1], max_abs_ask_diff=stats[1][1],
                      empty_bid_rows=stats[0][2], empty_ask_rows=stats[1][2])


# --------------------------------------------------------------------------- the loop

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

    def __init__(self, messages, lobster, inject, book_cls, progress=None):
        self.progress = progress  # progress(done, total) in messages, or None
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
        # Chunks of PROGRESS_EVERY messages when reporting, one chunk otherwise: the hook
        # costs nothing per message.
        progress = self.progress
        chunk = max(1, n if progress is None else PROGRESS_EVERY)
        for lo in range(0, n, chunk):
            for i in range(lo, min(lo + chunk, n)):
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
                                self._shortfall(i, oid, side, info.price, qty - info.qty,
                                            known=True)
                            elif info.qty > qty:  # a deletion of more than history knew of
                                self._excess(oid, side, info.price, info.qty - qty)
                elif kind == _HIDDEN and self.resting_injected:
                    self._injected_first(i, oid, side, prices[i], qty, hidden=True)
                self._check_row(i)
            if progress is not None:
                progress(min(lo + chunk, n), n)
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
            levels = {int(p): int(q) for p, q in zip(row[off::4], row[off + 1::4], strict=True)
                      if q > 0}
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
        """Is slot N of ``side`` in row i window-entering (:mod:`orderbook.data.lobster`)?"""
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
        expected = {p: q for p, q in zip(prices, sizes, strict=True) if q > 0}
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
        log.info("replay: injecting %s %s %s lots at row %s", inj.kind,
                 "sell" if inj.side == Side.SELL else "buy", f"{inj.qty:,}", f"{i:,}")
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
