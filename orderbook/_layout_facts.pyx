"""The C side's half of the import-time layout check (orderbook/_layout.py).

Every enum value, constant, record layout and kind predicate that ``_types.pxd`` declares, as
Python data for ``_layout.check``. It describes the declarations the compiled modules share, not
the book, so it is a module of its own; book.pyx runs the check when it is imported. The layouts
it reports are the core's: the same ``_types.pxd`` built with the same compiler and flags
(setup.py).
"""

from orderbook cimport _types as t
from orderbook._types cimport (
    BUY, SELL, EventRec, L3Rec, Message, StopRec, is_caller_error, is_new_order, is_priced,
    is_stop, rests,
)

__all__ = ["c_layout"]


cdef inline Py_ssize_t offset(const void* field, const void* record) noexcept:
    return <Py_ssize_t>(<const char*>field - <const char*>record)


def c_layout():
    """The C side's enums, constants, struct layouts and kind predicates, for _layout.check.

    Returns ``(values, layouts, predicates)`` as :func:`orderbook._layout.check` takes them.
    """
    values = {
        "Side.BUY": BUY, "Side.SELL": SELL,
        "Kind.LIMIT": t.K_LIMIT, "Kind.MARKET": t.K_MARKET, "Kind.IOC": t.K_IOC,
        "Kind.FOK": t.K_FOK, "Kind.POST_ONLY": t.K_POST_ONLY,
        "Kind.STOP_MARKET": t.K_STOP_MARKET, "Kind.STOP_LIMIT": t.K_STOP_LIMIT,
        "Kind.CANCEL": t.K_CANCEL, "Kind.AMEND": t.K_AMEND,
        "EventKind.ACCEPTED": t.EV_ACCEPTED, "EventKind.TRADE": t.EV_TRADE,
        "EventKind.CANCELLED": t.EV_CANCELLED, "EventKind.AMENDED": t.EV_AMENDED,
        "EventKind.REJECTED": t.EV_REJECTED, "EventKind.STOP_TRIGGERED": t.EV_STOP_TRIGGERED,
        "Reason.NONE": t.R_NONE, "Reason.USER": t.R_USER,
        "Reason.IOC_RESIDUAL": t.R_IOC_RESIDUAL, "Reason.FOK_UNFILLABLE": t.R_FOK_UNFILLABLE,
        "Reason.SELF_TRADE": t.R_SELF_TRADE, "Reason.KEPT_PRIORITY": t.R_KEPT_PRIORITY,
        "Reason.REQUEUED": t.R_REQUEUED, "Reason.INVALID_KIND": t.R_INVALID_KIND,
        "Reason.INVALID_SIDE": t.R_INVALID_SIDE, "Reason.INVALID_PRICE": t.R_INVALID_PRICE,
        "Reason.INVALID_STOP_PRICE": t.R_INVALID_STOP_PRICE,
        "Reason.INVALID_QTY": t.R_INVALID_QTY, "Reason.DUPLICATE_ID": t.R_DUPLICATE_ID,
        "Reason.UNKNOWN_ORDER": t.R_UNKNOWN_ORDER, "Reason.QTY_OVERFLOW": t.R_QTY_OVERFLOW,
        "Reason.POST_ONLY_WOULD_TAKE": t.R_POST_ONLY_WOULD_TAKE,
        "Reason.STOP_WOULD_TRIGGER": t.R_STOP_WOULD_TRIGGER,
        "Reason.NOT_AMENDABLE": t.R_NOT_AMENDABLE,
        "Reason.INSUFFICIENT_MARGIN": t.R_INSUFFICIENT_MARGIN,
        "Reason.POSITION_LIMIT": t.R_POSITION_LIMIT,
        "Reason.ISOLATED_ELSEWHERE": t.R_ISOLATED_ELSEWHERE,
        "Reason.BOOK_FULL": t.R_BOOK_FULL, "MAX_LIVE_ORDERS": t.MAX_LIVE_ORDERS,
        "SelfTradePrevention.NONE": t.STP_NONE,
        "SelfTradePrevention.CANCEL_TAKER": t.STP_CANCEL_TAKER,
        "SelfTradePrevention.CANCEL_MAKER": t.STP_CANCEL_MAKER,
        "SelfTradePrevention.CANCEL_BOTH": t.STP_CANCEL_BOTH,
        "AmendRule.REDUCE_KEEPS_PRIORITY": t.AMEND_REDUCE_KEEPS_PRIORITY,
        "AmendRule.ALWAYS_REQUEUE": t.AMEND_ALWAYS_REQUEUE,
        "MarkRule.LAST": t.MARK_LAST, "MarkRule.MID": t.MARK_MID, "MarkRule.INDEX": t.MARK_INDEX,
        "MarkRule.INDEX_CLAMPED": t.MARK_INDEX_CLAMPED,
        "MarkRule.LAST_CLAMPED": t.MARK_LAST_CLAMPED, "MarkRule.FAIR": t.MARK_FAIR,
        "Sizing.FULL": t.SIZING_FULL, "Sizing.FRACTION": t.SIZING_FRACTION,
        "Sizing.RESTORE": t.SIZING_RESTORE, "Sizing.TIER_STEP": t.SIZING_TIER_STEP,
        "Sizing.INCREMENTAL": t.SIZING_INCREMENTAL,
        "LimitRule.MARKET": t.LIMIT_MARKET, "LimitRule.BAND": t.LIMIT_BAND,
        "LimitRule.BANKRUPTCY": t.LIMIT_BANKRUPTCY,
        "Deficit.NONE": t.DEFICIT_NONE, "Deficit.ADL": t.DEFICIT_ADL,
        "Deficit.SOCIALIZE": t.DEFICIT_SOCIALIZE,
        "AdlRanking.BITMEX": t.ADL_RANK_BITMEX, "AdlRanking.PNL_RATIO": t.ADL_RANK_PNL_RATIO,
        "AdlRanking.BINANCE": t.ADL_RANK_BINANCE,
        "Trigger.BELOW": t.TRIGGER_BELOW, "Trigger.AT_OR_BELOW": t.TRIGGER_AT_OR_BELOW,
        "MarginBasis.MARK": t.BASIS_MARK, "MarginBasis.ENTRY": t.BASIS_ENTRY,
        "CloseOrder.ALL": t.CLOSE_ALL, "CloseOrder.LARGEST_MM": t.CLOSE_LARGEST_MM,
        "CloseOrder.LARGEST_LOSS": t.CLOSE_LARGEST_LOSS,
        "CloseOrder.PRO_RATA": t.CLOSE_PRO_RATA,
        "ForcedKind.ORDER": t.FK_ORDER, "ForcedKind.BACKSTOP": t.FK_BACKSTOP,
        "ForcedKind.FUND_TAKEOVER": t.FK_FUND_TAKEOVER, "ForcedKind.ADL": t.FK_ADL,
        "ForcedKind.SHORTFALL": t.FK_SHORTFALL,
        "ForcedKind.CONVERSION": t.FK_CONVERSION,
        "PPM": t.PPM, "INSURANCE_FUND": t.INSURANCE_FUND, "NO_COUNTERPARTY": t.NO_COUNTERPARTY,
    }
    cdef Message m
    cdef EventRec e
    cdef L3Rec l3
    cdef StopRec s
    layouts = {
        "MESSAGE_DTYPE": (sizeof(Message), {
            "order_id": offset(&m.order_id, &m), "owner": offset(&m.owner, &m),
            "price": offset(&m.price, &m), "stop_price": offset(&m.stop_price, &m),
            "qty": offset(&m.qty, &m), "kind": offset(&m.kind, &m),
            "side": offset(&m.side, &m)}),
        "EVENT_DTYPE": (sizeof(EventRec), {
            "seq": offset(&e.seq, &e), "msg": offset(&e.msg, &e),
            "order_id": offset(&e.order_id, &e), "owner": offset(&e.owner, &e),
            "maker_id": offset(&e.maker_id, &e), "maker_owner": offset(&e.maker_owner, &e),
            "price": offset(&e.price, &e), "stop_price": offset(&e.stop_price, &e),
            "qty": offset(&e.qty, &e), "kind": offset(&e.kind, &e),
            "reason": offset(&e.reason, &e), "side": offset(&e.side, &e)}),
        "L3_DTYPE": (sizeof(L3Rec), {
            "order_id": offset(&l3.order_id, &l3), "owner": offset(&l3.owner, &l3),
            "price": offset(&l3.price, &l3), "qty": offset(&l3.qty, &l3),
            "side": offset(&l3.side, &l3)}),
        "STOP_DTYPE": (sizeof(StopRec), {
            "order_id": offset(&s.order_id, &s), "owner": offset(&s.owner, &s),
            "stop_price": offset(&s.stop_price, &s), "price": offset(&s.price, &s),
            "qty": offset(&s.qty, &s), "kind": offset(&s.kind, &s),
            "side": offset(&s.side, &s)}),
    }
    cdef int v
    predicates = {
        "NEW_ORDER_KINDS": [is_new_order(v) for v in range(256)],
        "STOP_KINDS": [is_stop(v) for v in range(256)],
        "PRICED_KINDS": [is_priced(v) for v in range(256)],
        "RESTING_KINDS": [rests(v) for v in range(256)],
        "IMMEDIATE_KINDS": [t.is_immediate(v) for v in range(256)],
        "CALLER_ERRORS": [is_caller_error(v) for v in range(256)],
    }
    return values, layouts, predicates
