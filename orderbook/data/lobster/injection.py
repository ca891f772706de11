"""Injection: a user order put into the historical book during a (hybrid) replay."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...events import INT64_MAX, Side
from .files import _is_int


@dataclass(frozen=True)
class Injection:
    """A user order put into the historical book during a replay.

    Parameters
    ----------
    side : Side, int or str
        The injected order's side: ``Side.SELL`` / -1 / "sell" or ``Side.BUY`` / +1 / "buy".
    qty : int
        Lots (shares).
    kind : {"market", "limit"}
        A market order takes what it can and the rest is cancelled; a limit order takes what
        crosses ``price`` and rests with the remainder.
    price : int, optional
        Limit price in ticks ($ x 10^4); required for ``"limit"``, not allowed for ``"market"``.
    at : int, optional
        Message index: the order arrives just before message ``at`` (after row ``at - 1``).
    time : float, optional
        Seconds after midnight: the order arrives before the first message stamped ``>= time``.
        Give exactly one of ``at`` and ``time``.
    position : "back", "front" or int
        Where the resting part of a limit order joins its level's queue: the back (a normal
        arrival), the front, or that 0-based index (capped at the back).

    Examples
    --------
    >>> Injection(side="sell", qty=5_000, time=36_000.0).side
    <Side.SELL: -1>
    >>> Injection(side="buy", qty=100, kind="limit", price=2_241_000, at=500, position="front").at
    500
    """

    side: Side | int | str
    qty: int
    kind: str = "market"
    price: int | None = None
    at: int | None = None
    time: float | None = None
    position: str | int = "back"

    def __post_init__(self):
        side = self.side
        if isinstance(side, str):
            names = {"buy": Side.BUY, "bid": Side.BUY, "sell": Side.SELL, "ask": Side.SELL}
            if side.lower() not in names:
                raise ValueError(f"Injection.side = {side!r}; expected 'buy' or 'sell'")
            side = names[side.lower()]
        elif not _is_int(side):
            raise TypeError(f"Injection.side = {side!r}; expected +1, -1, 'buy' or 'sell'")
        elif side not in (1, -1):
            raise ValueError(f"Injection.side = {side!r}; expected +1 (buy) or -1 (sell)")
        object.__setattr__(self, "side", Side(int(side)))
        if not _is_int(self.qty):
            raise TypeError(f"Injection.qty = {self.qty!r}; expected an integer number of lots")
        if not 1 <= self.qty <= INT64_MAX:
            raise ValueError(f"Injection.qty = {self.qty!r}; expected 1 to 2**63 - 1 lots")
        if self.kind not in ("market", "limit"):
            raise ValueError(f"Injection.kind = {self.kind!r}; expected 'market' or 'limit'")
        if self.kind == "limit":
            if not _is_int(self.price):
                raise TypeError(f"Injection.price = {self.price!r}; a limit order needs an "
                                f"integer price in ticks")
            if not 1 <= self.price <= INT64_MAX:
                raise ValueError(f"Injection.price = {self.price!r}; expected 1 to 2**63 - 1 "
                                 f"ticks")
        elif self.price is not None:
            raise ValueError(f"Injection.price = {self.price!r}; a market order has no price")
        if (self.at is None) == (self.time is None):
            raise ValueError(f"Injection needs exactly one of at (message index) and time "
                             f"(seconds), got at={self.at!r}, time={self.time!r}")
        if self.at is not None:
            if not _is_int(self.at):
                raise TypeError(f"Injection.at = {self.at!r}; expected a message index")
            if self.at < 0:
                raise ValueError(f"Injection.at = {self.at!r}; expected >= 0")
        elif isinstance(self.time, bool) or not isinstance(self.time, (int, float, np.number)) \
                or not math.isfinite(self.time):
            raise TypeError(f"Injection.time = {self.time!r}; expected finite seconds after "
                            f"midnight")
        position = self.position
        if isinstance(position, str):
            if position not in ("back", "front"):
                raise ValueError(f"Injection.position = {position!r}; expected 'back', 'front' "
                                 f"or a queue index")
        elif not _is_int(position):
            raise TypeError(f"Injection.position = {position!r}; expected 'back', 'front' or "
                            f"a queue index")
        elif position < 0:
            raise ValueError(f"Injection.position = {position!r}; expected a queue index >= 0")
