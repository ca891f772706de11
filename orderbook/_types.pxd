# Typedefs, enum values and C record layouts shared by the compiled modules.
#
# The numbers below are the ones of orderbook/events.py (the Python-facing IntEnums, constants,
# kind sets and dtypes); book.pyx checks at import time that both agree (_layout.py, with the
# facts _layout_facts.pyx reports): every enum member, every field offset, and every kind
# predicate below over all 256 kind values.

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libcpp.map cimport map as cmap

ctypedef int64_t price_t   # ticks
ctypedef int64_t qty_t     # lots
ctypedef int64_t oid_t     # caller-chosen order id
ctypedef int64_t owner_t   # account id
ctypedef int32_t slot_t    # index into the order pool; NO_SLOT ends a FIFO

cdef enum:
    NO_SLOT = -1
    BUY = 1
    SELL = -1

cdef enum:
    K_LIMIT = 1
    K_MARKET = 2
    K_IOC = 3
    K_FOK = 4
    K_POST_ONLY = 5
    K_STOP_MARKET = 6
    K_STOP_LIMIT = 7
    K_CANCEL = 8
    K_AMEND = 9

cdef enum:
    EV_ACCEPTED = 1
    EV_TRADE = 2
    EV_CANCELLED = 3
    EV_AMENDED = 4
    EV_REJECTED = 5
    EV_STOP_TRIGGERED = 6

cdef enum:
    R_NONE = 0
    R_USER = 1
    R_IOC_RESIDUAL = 2
    R_FOK_UNFILLABLE = 3
    R_SELF_TRADE = 4
    R_KEPT_PRIORITY = 5
    R_REQUEUED = 6
    R_INVALID_KIND = 10
    R_INVALID_SIDE = 11
    R_INVALID_PRICE = 12
    R_INVALID_STOP_PRICE = 13
    R_INVALID_QTY = 14
    R_DUPLICATE_ID = 15
    R_UNKNOWN_ORDER = 16
    R_QTY_OVERFLOW = 17
    R_POST_ONLY_WOULD_TAKE = 18
    R_STOP_WOULD_TRIGGER = 19
    R_NOT_AMENDABLE = 20
    R_INSUFFICIENT_MARGIN = 21   # the Engine's initial margin check; the book never emits it
    R_POSITION_LIMIT = 22        # the Engine's max_position check
    R_ISOLATED_ELSEWHERE = 23    # the Engine's one-position rule of isolated accounts
    R_BOOK_FULL = 24             # a new order that could rest, MAX_LIVE_ORDERS live

# The kind classifications, as events.NEW_ORDER_KINDS, STOP_KINDS, PRICED_KINDS, RESTING_KINDS,
# IMMEDIATE_KINDS and CALLER_ERRORS.
cdef inline bint is_new_order(int kind) noexcept nogil:
    return K_LIMIT <= kind <= K_STOP_LIMIT


cdef inline bint is_stop(int kind) noexcept nogil:
    return kind == K_STOP_MARKET or kind == K_STOP_LIMIT


cdef inline bint is_priced(int kind) noexcept nogil:
    # The message's price must be a valid limit price (AMEND carries the new one).
    return (kind == K_LIMIT or kind == K_IOC or kind == K_FOK or kind == K_POST_ONLY
            or kind == K_STOP_LIMIT or kind == K_AMEND)


cdef inline bint rests(int kind) noexcept nogil:
    return kind == K_LIMIT or kind == K_POST_ONLY


cdef inline bint is_immediate(int kind) noexcept nogil:
    # New orders that never rest: what they do not fill is cancelled at once.
    return kind == K_MARKET or kind == K_IOC or kind == K_FOK


cdef inline bint is_caller_error(int reason) noexcept nogil:
    return R_INVALID_KIND <= reason <= R_QTY_OVERFLOW or reason == R_BOOK_FULL


cdef enum:
    STP_NONE = 0
    STP_CANCEL_TAKER = 1
    STP_CANCEL_MAKER = 2
    STP_CANCEL_BOTH = 3

cdef enum:
    AMEND_REDUCE_KEEPS_PRIORITY = 0
    AMEND_ALWAYS_REQUEUE = 1

# ------------------------------------------------------------------------------ margin engine

cdef enum:
    PPM = 1000000          # parts per million: rates are integers in [0, PPM]
    INSURANCE_FUND = -1    # owner id of the insurance fund's account
    NO_COUNTERPARTY = -2   # counterparty of a liquidation record that has none

cdef enum:   # MarkRule
    MARK_LAST = 0
    MARK_MID = 1
    MARK_INDEX = 2
    MARK_INDEX_CLAMPED = 3
    MARK_LAST_CLAMPED = 4
    MARK_FAIR = 5

cdef enum:   # Sizing
    SIZING_FULL = 0
    SIZING_FRACTION = 1
    SIZING_RESTORE = 2
    SIZING_TIER_STEP = 3
    SIZING_INCREMENTAL = 4

cdef enum:   # LimitRule
    LIMIT_MARKET = 0
    LIMIT_BAND = 1
    LIMIT_BANKRUPTCY = 2

cdef enum:   # Deficit
    DEFICIT_NONE = 0
    DEFICIT_ADL = 1
    DEFICIT_SOCIALIZE = 2

cdef enum:   # AdlRanking
    ADL_RANK_BITMEX = 0
    ADL_RANK_PNL_RATIO = 1
    ADL_RANK_BINANCE = 2

cdef enum:   # Trigger
    TRIGGER_BELOW = 0
    TRIGGER_AT_OR_BELOW = 1

cdef enum:   # MarginBasis
    BASIS_MARK = 0
    BASIS_ENTRY = 1

cdef enum:   # CloseOrder
    CLOSE_ALL = 0
    CLOSE_LARGEST_MM = 1
    CLOSE_LARGEST_LOSS = 2
    CLOSE_PRO_RATA = 3

cdef enum:   # ForcedKind
    FK_ORDER = 1
    FK_BACKSTOP = 2
    FK_FUND_TAKEOVER = 3
    FK_ADL = 4
    FK_SHORTFALL = 5
    FK_CONVERSION = 6

# ----------------------------------------------------------------------------------- records

# One row of MESSAGE_DTYPE.
cdef struct Message:
    oid_t order_id
    owner_t owner
    price_t price
    price_t stop_price
    qty_t qty
    uint8_t kind
    int8_t side

# One row of EVENT_DTYPE.
cdef struct EventRec:
    int64_t seq
    int64_t msg
    oid_t order_id
    owner_t owner
    oid_t maker_id
    owner_t maker_owner
    price_t price
    price_t stop_price
    qty_t qty
    uint8_t kind
    uint8_t reason
    int8_t side

# One row of L3_DTYPE.
cdef struct L3Rec:
    oid_t order_id
    owner_t owner
    price_t price
    qty_t qty
    int8_t side

# One row of STOP_DTYPE.
cdef struct StopRec:
    oid_t order_id
    owner_t owner
    price_t stop_price
    price_t price
    qty_t qty
    uint8_t kind
    int8_t side

# A live order in the pool: resting in a price level or armed in a stop level (40 bytes). prev/next
# link it into its level's FIFO, so a cancel unlinks it in O(1) wherever it stands. An armed
# stop's stop price lives beside the pool (OrderBook.stop_prices), so resting orders, which are
# nearly all of the pool, do not carry it.
# The side (-1/+1) and kind (K_LIMIT .. K_STOP_LIMIT, 1-7) ride in the low bits of the two link
# words, as C++ bit-fields, so the struct is 40 bytes instead of 48 (42 padded to 8): a resting
# order's memory is mostly this struct (benchmarks/bench_memory.py). The cost is the slot range:
# 29-bit signed links hold slots up to 2**28 - 1, so a book holds at most MAX_LIVE_ORDERS live
# orders (validate refuses more with R_BOOK_FULL). Reads and writes of the fields look the same
# to Cython; only their address cannot be taken. An order in flight (a taker, a triggered stop)
# is a Flight: plain fields, read many times while it matches, packed once when it rests.
cdef extern from *:
    """
    struct orderbook_Order {
        int64_t order_id;
        int64_t owner;
        int64_t price;       // limit price; 0 for market orders
        int64_t qty;         // remaining lots
        int32_t side : 3;    // low bits: a link in the high bits reads with one shift
        int32_t prev : 29;
        uint32_t kind : 3;
        int32_t next : 29;
    };
    static_assert(sizeof(orderbook_Order) == 40, "Order is 40 bytes");
    """
    ctypedef struct Order "orderbook_Order":
        oid_t order_id
        owner_t owner
        price_t price
        qty_t qty
        slot_t prev
        slot_t next
        int8_t side
        uint8_t kind

cdef struct Flight:
    oid_t order_id
    owner_t owner
    price_t price        # limit price; 0 for market orders
    qty_t qty            # lots still to fill
    int8_t side
    uint8_t kind


cdef inline Order packed(const Flight* f, slot_t prev) noexcept nogil:
    # f as a pool record at the back of a FIFO whose tail was ``prev``.
    cdef Order o
    o.order_id = f.order_id
    o.owner = f.owner
    o.price = f.price
    o.qty = f.qty
    o.side = f.side
    o.kind = f.kind
    o.prev = prev
    o.next = NO_SLOT
    return o


cdef inline Flight in_flight(const Order* o) noexcept nogil:
    cdef Flight f
    f.order_id = o.order_id
    f.owner = o.owner
    f.price = o.price
    f.qty = o.qty
    f.side = o.side
    f.kind = o.kind
    return f

cdef enum:
    MAX_LIVE_ORDERS = 1 << 28   # resting orders and armed stops one book holds (slots 0 .. 2**28-1)

# A price level (or a stop level): its FIFO of pool slots and the lots resting in it.
cdef struct Level:
    qty_t total
    slot_t head
    slot_t tail
    int32_t count

# The levels of one side of the book, or of one side's armed stops, keyed so that begin() is the
# best level (for stops, the next to trigger): bids by -price and asks by +price, sell stops by
# -stop_price and buy stops by +stop_price.
ctypedef cmap[price_t, Level] LevelMap


cdef inline price_t level_key(int side, price_t price) noexcept nogil:
    # The key of a price on ``side``'s levels (stops: pass -side), and the price of a key.
    return -price if side == BUY else price
