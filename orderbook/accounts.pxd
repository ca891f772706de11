# Margin accounts: exact settlement (trades, fees, off-book transfers), tiered margin, liquidation
# and bankruptcy prices, and the two liquidation-price indexes. The Engine (engine.pyx) and its
# Liquidator (liquidator.pyx) drive it; see docs/liquidation.md.

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libcpp.deque cimport deque
from libcpp.set cimport set as cset
from libcpp.unordered_map cimport unordered_map
from libcpp.utility cimport pair
from libcpp.vector cimport vector

from orderbook._types cimport EventRec, oid_t, owner_t, price_t, qty_t

cdef extern from *:
    # 128-bit intermediates: notional x rate and equity sums pass int64 before they are reduced.
    ctypedef long long int128 "__int128"

ctypedef int64_t money_t   # quote units
ctypedef pair[price_t, owner_t] IndexKey

# An account's position in one instrument. Instrument 0's lives in the Account itself (the
# one-instrument path reaches it with no indirection); the others' in the Ledger's pool, linked
# from the Account in ascending instrument, and kept (flat) once made.
cdef struct Position:
    qty_t position       # signed lots
    money_t cost         # entry value of |position|, quote units
    qty_t open_buy       # lots of resting and armed buy orders in this instrument's book
    qty_t open_sell
    price_t liq_price    # key in this instrument's index named by `indexed`
    int32_t instrument
    int32_t next         # pool index of the account's next position; -1 ends the list
    int8_t indexed       # +1 in longs, -1 in shorts, 0 in neither


cdef struct Account:
    owner_t owner
    money_t collateral   # backs the positions: all of a cross account, an isolated one's margin
    money_t reserve      # an isolated account's balance outside its margin (never at risk)
    Position pos         # the position in instrument 0
    uint8_t exempt
    uint8_t isolated
    uint8_t queued       # in the Engine's liquidation queue
    uint8_t multi        # in the Ledger's multi set (two or more positions)


# One instrument's settings as the Ledger keeps them.
cdef struct InstrumentRec:
    int64_t k                # quote units per tick x lot
    price_t max_price
    qty_t max_position
    size_t first_tier        # its tiers: [first_tier, first_tier + tiers) of the tier vectors
    size_t tiers


@cython.final
cdef class Ledger:
    cdef vector[Account] accounts
    cdef deque[Position] pool     # positions in instruments >= 1 (a deque: pointers stay valid)
    cdef unordered_map[owner_t, int32_t] slot_of
    # Per instrument: (liquidation price, owner) of liquidatable-someday one-position accounts.
    cdef vector[cset[IndexKey]] longs
    cdef vector[cset[IndexKey]] shorts
    cdef cset[owner_t] multi      # accounts holding two or more positions
    cdef vector[InstrumentRec] instruments
    cdef vector[price_t] marks    # the Engine's marks, per instrument
    cdef vector[uint8_t] has_mark
    # The instrument being worked on (select): the fields below are its own.
    cdef int32_t cur
    cdef int64_t k                # quote units per tick x lot
    cdef price_t max_price
    cdef qty_t max_position
    cdef vector[int64_t] caps     # INT64_MAX stands for "no cap"
    cdef vector[int64_t] mm_ppm
    cdef vector[int64_t] im_ppm
    cdef vector[int128] mm_deduction
    cdef vector[int128] im_deduction
    # Every instrument's tiers, one after another (InstrumentRec.first_tier).
    cdef vector[int64_t] all_caps
    cdef vector[int64_t] all_mm_ppm
    cdef vector[int64_t] all_im_ppm
    cdef vector[int128] all_mm_deduction
    cdef vector[int128] all_im_deduction
    cdef int64_t taker_fee_ppm    # of a trade's value, paid by its taker (forced takers pay none)
    cdef int64_t maker_fee_ppm    # of a trade's value, paid by its maker
    cdef money_t fees_collected   # quote units the trading fees took out of the accounts
    cdef int trigger              # Trigger: E < MM or E <= MM makes an account liquidatable
    cdef int mm_basis             # MarginBasis: MM on the mark notional or on the entry value
    cdef vector[vector[EventRec]] trade_logs   # per instrument: every trade settled there

    cdef int add_instrument(self, int64_t k, price_t max_price, qty_t max_position,
                            tiers) except -1
    cdef void select(self, int32_t instrument) noexcept nogil
    cdef int32_t open_account(self, owner_t owner, money_t collateral, bint exempt, bint isolated,
                              money_t reserve) except -1
    cdef int32_t slot(self, owner_t owner) noexcept nogil
    cdef Position* pos(self, int32_t slot, int32_t instrument) noexcept nogil
    cdef Position* find(self, const Account* a, int32_t instrument) noexcept nogil
    cdef Position* next_pos(self, const Account* a, const Position* p) noexcept nogil
    cdef int held(self, const Account* a) noexcept nogil
    cdef int128 value(self, price_t price, qty_t qty) noexcept nogil
    cdef int128 unrealised(self, const Position* p, price_t mark, bint has_mark) noexcept nogil
    cdef int128 equity(self, const Account* a, const Position* p, price_t mark,
                       bint has_mark) noexcept nogil
    cdef int128 requirement(self, int128 notional, bint initial) noexcept nogil
    cdef int128 maintenance(self, const Position* p, price_t mark, bint has_mark) noexcept nogil
    cdef void others(self, const Account* a, int32_t instrument, int128* u, int128* mm,
                     int128* im) noexcept nogil
    cdef int128 total_equity_of(self, const Account* a) noexcept nogil
    cdef int128 total_maintenance_of(self, const Account* a) noexcept nogil
    cdef bint liquidatable(self, const Account* a) noexcept nogil
    cdef bint short_of(self, int128 equity, int128 margin) noexcept nogil
    cdef bint liquidatable_at(self, const Account* a, const Position* p, price_t price,
                              int128 ou, int128 om) noexcept nogil
    cdef bint liquidation_price(self, const Account* a, const Position* p, int128 ou, int128 om,
                                price_t* out) noexcept nogil
    cdef bint entry_liquidation_price(self, const Account* a, const Position* p, int128 ou,
                                      int128 om, price_t* out) noexcept nogil
    cdef bint bankruptcy_price(self, const Account* a, const Position* p, int128 ou,
                               price_t* out) noexcept nogil
    cdef void unindex(self, Position* p, owner_t owner) noexcept nogil
    cdef void reindex(self, int32_t slot) noexcept nogil
    cdef void settle(self, int32_t slot, qty_t delta, price_t price) noexcept nogil
    cdef void apply_fill(self, Account* a, Position* p, qty_t delta,
                         price_t price) noexcept nogil
    cdef void charge(self, int32_t slot, money_t amount, bint to_fund) noexcept nogil
    cdef void transfer(self, int32_t buyer, int32_t seller, price_t price,
                       qty_t qty) noexcept nogil
    cdef void move(self, int32_t slot, int32_t taker, int direction, price_t price,
                   qty_t qty) noexcept nogil
    cdef void settle_events(self, const vector[EventRec]& events, oid_t message_id,
                            bint own_order_counts) noexcept nogil
    cdef bint counted(self, oid_t order_id, oid_t message_id,
                      bint own_order_counts) noexcept nogil
    cdef void track_open(self, int32_t slot, int side, qty_t qty) noexcept nogil
    cdef Ledger copy(self)
    cdef list account_rows(self)
    cdef int load_accounts(self, list rows, dict open_qty) except -1
    cdef object trades_array(self, int32_t instrument)
    cdef int load_trades(self, int32_t instrument, object trades) except -1

cdef int128 floor_div(int128 a, int128 b) noexcept nogil
cdef int128 ceil_div(int128 a, int128 b) noexcept nogil
cdef object to_python(int128 v)
cdef int128 from_python(object value) except? -1
