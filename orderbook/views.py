"""Readable views of a run's tables: enums by name, money in quote currency, prices in price
units, and the price levels each forced order took.

The exact columns stay as they are (prices in ticks, sizes in lots, money in integer quote
units); a view adds beside them a ``<column>_quote`` twin of each money column (quote units x
the quote unit: quote currency, an inverse venue's coin) and a ``<column>_px`` twin of each
price column (ticks x the tick size: price units, quote currency per base unit), exact
Decimals, and gives enum columns (side, kind, reason) as their members' names. docs/money.md.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum
from fractions import Fraction

import numpy as np

from .events import EventKind, ForcedKind, Reason, Side
from .margin import contract_value
from .metrics import _check_ks, slippage_costs

__all__ = ["FORCED_FILL_DTYPE", "forced_fills", "series_frame", "forced_frame", "trades_frame",
           "fills_frame"]

#: One price level a forced order took (:func:`forced_fills`): the record it belongs to (a row
#: of the run's forced-order records), the order's id (negative: the liquidator's), owner,
#: instrument and side, the level's price (ticks), the lots it filled there, their value
#: (quote units) and the resting orders it traded with there.
FORCED_FILL_DTYPE = np.dtype([
    ("record", "<i8"), ("order_id", "<i8"), ("owner", "<i8"), ("instrument", "<i4"),
    ("side", "i1"), ("price", "<i8"), ("lots", "<i8"), ("notional", "<i8"), ("makers", "<i8"),
])

#: The records that send an order through a book: a forced order, and a collateral asset sold
#: through its spot book (a CONVERSION that filled; one sold to the venue fills nothing).
_BOOK_KINDS = (ForcedKind.ORDER, ForcedKind.CONVERSION)


def forced_fills(records: np.ndarray, trades, ks, inverse: bool = False) -> np.ndarray:
    """The price levels each forced order took, one row per (order, level) in the order it
    walked them (FORCED_FILL_DTYPE).

    ``records``: a run's forced-order records (FORCED_DTYPE); ``trades``: the engine's whole
    trade log of each instrument (EVENT_DTYPE arrays, by instrument index); ``ks``: each
    instrument's k (quote units per lot per tick; of ``V(p, q) = floor(k q / p)`` when
    ``inverse``). The liquidator numbers its orders -1, -2, ... as it sends them, and a forced
    order takes liquidity only, so its fills are the trades whose taker id is negative; the
    n-th such order is the n-th record of an order that filled (an ``ORDER``, or a
    ``CONVERSION`` sold through a spot book). Each record's lots and notional are checked
    against its fills: ValueError naming the record when they differ (a trade log that is not
    the whole of the run's engine). O(trades log n).
    """
    logs = list(trades)
    if not logs:
        raise ValueError("forced_fills: trades must hold one trade log per instrument, got none")
    _check_ks(records, ks)
    taken = [log[(log["order_id"] < 0) & (log["kind"] == EventKind.TRADE)] for log in logs]
    fills = np.concatenate(taken)
    where = np.concatenate([np.full(len(t), i, dtype=np.int32) for i, t in enumerate(taken)])
    # -1 first, the order the liquidator sent them in; stable, so each order's fills stay in
    # the order it walked the levels
    order = np.argsort(-fills["order_id"], kind="stable")
    fills, where = fills[order], where[order]
    filled = np.flatnonzero(np.isin(records["kind"], _BOOK_KINDS) & (records["filled"] > 0))
    rows_of = _records_of(records, fills, filled, "forced_fills")
    starts = np.flatnonzero(np.diff(rows_of, prepend=-1))
    ends = np.append(starts[1:], len(fills))
    rows = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        index = int(rows_of[start])
        rows += _levels(index, records[index], fills[start:end], where[start:end], ks, inverse)
    return np.array(rows, dtype=FORCED_FILL_DTYPE)


def _records_of(records: np.ndarray, fills: np.ndarray, candidates: np.ndarray,
                   caller: str) -> np.ndarray:
    """The row of ``records`` each forced order's fill belongs to (int64, one per fill).

    ``fills``: trades of forced orders (EVENT_DTYPE rows, ``order_id`` < 0, in any order);
    ``candidates``: the rows of ``records`` whose orders filled, in the order sent. The
    liquidator numbers its orders -1, -2, ... as it sends them, so the n-th distinct id is the
    n-th candidate. ValueError, naming ``caller`` and the first record that does not pair,
    when the counts or any record's filled lots differ from its fills'.
    """
    _, order = np.unique(-fills["order_id"], return_inverse=True)
    order = order.reshape(-1)
    count = int(order.max()) + 1 if len(order) else 0
    if count != len(candidates):
        raise ValueError(f"{caller}: the trade logs hold {count:,} forced orders with fills "
                         f"and the records {len(candidates):,}: give the whole trade log of "
                         f"every instrument of the run's engine")
    lots = np.zeros(count, dtype=np.int64)
    np.add.at(lots, order, fills["qty"])
    differ = np.flatnonzero(lots != records["filled"][candidates])
    if len(differ):
        index = int(candidates[differ[0]])
        raise ValueError(f"{caller}: record {index} (owner {int(records['owner'][index])}) "
                         f"filled {int(records['filled'][index]):,} lots, its forced order's "
                         f"trades {int(lots[differ[0]]):,}: the trade log is not the run's")
    return candidates[order]


def _levels(index: int, rec, fills: np.ndarray, where: np.ndarray, ks, inverse: bool) -> list:
    """One record's fills merged by price level, checked against the record."""
    instrument = int(rec["instrument"])
    k = ks[instrument]
    rows, lots, value = [], 0, 0
    for price, qty, at in zip(fills["price"].tolist(), fills["qty"].tolist(), where.tolist(),
                              strict=True):
        if at != instrument:
            raise ValueError(f"forced_fills: record {index} is on instrument {instrument} but "
                             f"its forced order traded on instrument {at}")
        worth = contract_value(inverse, k, price, qty)
        lots, value = lots + qty, value + worth
        if rows and rows[-1][5] == price:   # another resting order at the same level
            row = rows[-1]
            rows[-1] = (*row[:6], row[6] + qty, row[7] + worth, row[8] + 1)
        else:
            rows.append((index, int(fills["order_id"][0]), int(rec["owner"]), instrument,
                         int(rec["side"]), price, qty, worth, 1))
    if lots != int(rec["filled"]) or value != int(rec["notional"]):
        raise ValueError(f"forced_fills: record {index} (owner {int(rec['owner'])}) filled "
                         f"{int(rec['filled']):,} lots worth {int(rec['notional']):,}, its "
                         f"forced order's trades {lots:,} lots worth {value:,}: the trade log "
                         f"is not the run's")
    return rows


# --------------------------------------------------------------------------------- frames
def _names(values, enum: type[IntEnum]):
    """An enum column as a pandas Categorical of member names (every member a category)."""
    import pandas as pd

    known = {m.value: m.name for m in enum}
    return pd.Categorical([known.get(v, f"{enum.__name__}({v})") for v in values.tolist()],
                          categories=[m.name for m in enum])


def _decimal(value: Fraction) -> Decimal:
    """A fraction as a Decimal, to the context's 28 significant digits (a display value)."""
    return Decimal(value.numerator) / Decimal(value.denominator)


def _quote(values, unit: Decimal) -> list:
    return [Decimal(v) * unit for v in values.tolist()]


def _px(values, ticks) -> list:
    """Prices in ticks (ints, or floats of whole and half ticks: exact) x the tick size of each
    row (one Decimal, or one per row)."""
    sizes = ticks if isinstance(ticks, (list, tuple)) else [ticks] * len(values)
    return [Decimal(v) * t for v, t in zip(values.tolist(), sizes, strict=True)]


def _frame(array: np.ndarray, enums: dict, money: tuple, prices: tuple, unit: Decimal,
           ticks) -> object:
    """``array`` as a DataFrame: enum columns by name, each money column followed by its
    ``_quote`` twin and each price column by its ``_px`` twin."""
    import pandas as pd

    columns = {}
    for name in array.dtype.names:
        column = array[name]
        columns[name] = _names(column, enums[name]) if name in enums else column
        if name in money:
            columns[f"{name}_quote"] = _quote(column, unit)
        elif name in prices:
            columns[f"{name}_px"] = _px(column, ticks)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(array)))


def series_frame(series: np.ndarray, unit: Decimal, tick: Decimal):
    """A run's series (SERIES_DTYPE) as a DataFrame: the fund and the notional liquidated
    also in quote currency (``_quote``), the prices (last, mark, touch, spread, mid) also in
    price units (``_px``)."""
    return _frame(series, {}, ("insurance_fund", "liquidated_notional"),
                  ("last", "mark", "best_bid", "best_ask", "spread", "mid"), unit, tick)


def forced_frame(records: np.ndarray, unit: Decimal, ticks, ks, inverse: bool = False):
    """Forced-order records (FORCED_DTYPE) as a DataFrame: ``side`` and ``kind`` by name,
    money (notional, fee, fund_cover, socialized, bad_debt) also in quote currency, the marks
    also in price units, each in its instrument's ticks (``ticks``: tick size by instrument).
    ``avg_price_px`` and ``slippage_px`` are the exact ``avg_price`` (notional / (filled k),
    inverse filled k / notional) and ``slippage`` in price units, to 28 digits;
    ``slippage_cost`` (quote units, an integer; NA but for
    ``ORDER`` records that filled) and ``slippage_cost_quote`` are each record's share of the
    summary's ``forced_slippage``."""
    import pandas as pd

    per_row = [ticks[i] for i in records["instrument"].tolist()]
    frame = _frame(records, {"side": Side, "kind": ForcedKind},
                   ("notional", "fee", "fund_cover", "socialized", "bad_debt"),
                   ("mark_before", "mark_after"), unit, per_row)
    average, slippage = [], []
    for filled, notional, instrument, side, mark, tick in zip(
            records["filled"].tolist(), records["notional"].tolist(),
            records["instrument"].tolist(), records["side"].tolist(),
            records["mark_before"].tolist(), per_row, strict=True):
        k = ks[instrument]
        if not filled or (inverse and not notional):   # (the float columns' NaN)
            average.append(None)
            slippage.append(None)
            continue
        # the records' own definitions, exactly: avg_price and slippage (ticks, + is worse)
        exact = Fraction(filled * k, notional) if inverse else Fraction(notional, filled * k)
        average.append(_decimal(exact) * tick)
        slippage.append(_decimal(mark - exact if side == Side.SELL else exact - mark) * tick)
    frame.insert(frame.columns.get_loc("avg_price") + 1, "avg_price_px", average)
    frame.insert(frame.columns.get_loc("slippage") + 1, "slippage_px", slippage)
    costs = slippage_costs(records, ks, inverse)
    frame["slippage_cost"] = pd.array(costs, dtype="Int64")
    frame["slippage_cost_quote"] = [None if c is None else Decimal(c) * unit for c in costs]
    return frame


def trades_frame(trades: np.ndarray, unit: Decimal, tick: Decimal, k: int,
                 inverse: bool = False):
    """A trade log (EVENT_DTYPE) as a DataFrame: ``kind``, ``reason`` and ``side`` (the
    aggressor's) by name, the price also in price units, and each trade's ``notional``
    (``V(price, qty)``, quote units) and ``notional_quote``."""
    frame = _frame(trades, {"kind": EventKind, "reason": Reason, "side": Side}, (),
                   ("price",), unit, tick)
    notional = [contract_value(inverse, k, p, q)
                for p, q in zip(trades["price"].tolist(), trades["qty"].tolist(), strict=True)]
    frame["notional"] = np.array(notional, dtype=np.int64)
    frame["notional_quote"] = [Decimal(v) * unit for v in notional]
    return frame


def fills_frame(fills: np.ndarray, unit: Decimal, ticks):
    """:func:`forced_fills` rows as a DataFrame: ``side`` by name, the level's price also in
    price units (``ticks``: tick size by instrument), the notional also in quote currency."""
    per_row = [ticks[i] for i in fills["instrument"].tolist()]
    return _frame(fills, {"side": Side}, ("notional",), ("price",), unit, per_row)
