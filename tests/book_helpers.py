"""Helpers of the order book specification tests (test_matching.py, test_book.py).

Expected events are written as tuples (``accepted``, ``trade``, ``cancelled``, ``amended``,
``triggered``, ``rejected``) and compared with ``evs(events)``; ``rest`` places limit orders,
``l3`` and ``state`` snapshot a book, ``msg`` writes one message as a dict.
"""

from orderbook.events import EventKind, Reason, Side

B, S = Side.BUY, Side.SELL


def ev(e):
    """The fields a test compares: REJECTED -> (kind, reason, id); else kind, reason, side, id,
    maker id, price, qty. Enum names make failures readable."""
    kind, reason = EventKind(e.kind).name, Reason(e.reason).name
    if kind == "REJECTED":
        return (kind, reason, e.order_id)
    return (kind, reason, e.side, e.order_id, e.maker_id, e.price, e.qty)


def evs(events):
    return [ev(e) for e in events]


def accepted(oid, side, price, qty):
    return ("ACCEPTED", "NONE", side, oid, 0, price, qty)


def trade(taker, maker, side, price, qty):
    return ("TRADE", "NONE", side, taker, maker, price, qty)


def cancelled(oid, reason, side, price, qty):
    return ("CANCELLED", reason, side, oid, 0, price, qty)


def amended(oid, reason, side, price, qty):
    return ("AMENDED", reason, side, oid, 0, price, qty)


def triggered(oid, side, price, qty):
    return ("STOP_TRIGGERED", "NONE", side, oid, 0, price, qty)


def rejected(oid, reason):
    return ("REJECTED", reason, oid)


def rest(book, *orders):
    """Rest plain limit orders given as (order_id, side, price, qty[, owner])."""
    for order in orders:
        book.limit(*order)


def l3(book):
    """Resting orders as (order_id, side, price, qty), bids best first then asks best first."""
    return [(int(r["order_id"]), int(r["side"]), int(r["price"]), int(r["qty"])) for r in book.l3()]


def l3_ids(book):
    return [row[0] for row in l3(book)]


def state(book):
    """Everything observable that a rejected or read-only call must leave unchanged."""
    return (book.l3().tolist(), book.stops().tolist(), book.message_count, book.event_count,
            book.last_price, book.n_orders, book.n_stops)


def msg(kind, order_id, side=0, price=0, qty=0, owner=0, stop_price=0):
    """One message as a dict whose keys are MESSAGE_DTYPE fields (and submit()'s arguments)."""
    return dict(kind=int(kind), order_id=order_id, side=int(side), price=price, qty=qty,
                owner=owner, stop_price=stop_price)
