# Margin accounts: exact settlement (trades, fees, off-book transfers), tiered margin, liquidation
# and bankruptcy prices, the one-position liquidation-price indexes and the several-position
# allowance indexes. The Engine (engine.pyx) and its
# Liquidator (liquidator.pyx) drive it; see docs/liquidation.md.

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libcpp.deque cimport deque
from libcpp.set cimport set as cset
from libcpp.utility cimport pair
from libcpp.vector cimport vector

from orderbook._btree cimport KeySet
from orderbook._idtable cimport IdTable
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
    price_t liq_price    # key in this instrument's index named by `indexed` (ticks)
    int32_t instrument
    int32_t next         # pool index of the account's next position; -1 ends the list
    int8_t indexed       # where the position sits: an IN_* value


# Position.indexed: the trigger structure a position is entered in.
cdef enum:
    IN_NONE = 0
    IN_LONGS = 1           # longs: a one-position account, at its liquidation price
    IN_SHORTS = -1         # shorts
    IN_ALLOW_LONGS = 2     # allow_longs: a several-position account, where its allowance ends
    IN_ALLOW_SHORTS = -2   # allow_shorts
    IN_ASIDE = 3           # aside: this instrument has no mark yet

# Account.multi: where an account holding two or more positions (not exempt) sits.
cdef enum:
    MULTI_NONE = 0         # it holds fewer, or is exempt
    MULTI_ALLOWED = 1      # its positions in the allowance indexes (IN_ALLOW_*)
    MULTI_CROSSED = 2      # liquidatable at its last evaluation: in crossing
    MULTI_ASIDE = 3        # one of its instruments has no mark: in that one's aside (IN_ASIDE)


# An account's balance of one collateral asset (docs/market_wide.md section 1), in the Ledger's
# holding pool, linked from the Account in ascending asset, kept (at 0 units) once made.
cdef struct Holding:
    money_t units        # asset units, >= 0
    price_t key          # where its allowance ends in allow_assets[asset] (ticks)
    int32_t asset
    int32_t next         # pool index of the account's next holding; -1 ends the list
    int8_t indexed       # IN_NONE, IN_ALLOW_LONGS (in allow_assets) or IN_ASIDE


# A collateral asset as the Ledger keeps it: one unit is worth num / den quote units per tick of
# its instrument's mark, less haircut_ppm in equity and discount_ppm when the venue buys it.
cdef struct AssetRec:
    int32_t instrument
    int64_t num
    int64_t den
    int64_t haircut_ppm
    int64_t discount_ppm


cdef struct Account:
    owner_t owner
    money_t collateral   # backs the positions: all of a cross account, an isolated one's margin
    money_t reserve      # an isolated account's balance outside its margin (never at risk)
    Position pos         # the position in instrument 0
    uint8_t exempt
    uint8_t isolated
    uint8_t queued       # in the Engine's liquidation queue
    uint8_t multi        # a MULTI_* value
    # pool index of its first collateral asset holding, -1: none (in the padding after the
    # four flags: the struct stays 88 bytes)
    int32_t holdings


# One instrument's settings as the Ledger keeps them.
cdef struct InstrumentRec:
    int64_t k                # quote units per tick x lot
    price_t max_price
    qty_t max_position
    size_t first_tier        # its tiers: [first_tier, first_tier + tiers) of the tier vectors
    size_t tiers
    int32_t spot_asset       # a spot book (Instrument.spot): the asset it trades; -1: none
    int64_t units_per_lot    # that asset's units per lot


@cython.final
cdef class Ledger:
    cdef vector[Account] accounts
    cdef deque[Position] pool     # positions in instruments >= 1 (a deque: pointers stay valid)
    cdef IdTable slot_of          # owner -> slot in accounts (_slottable.pxd)
    # Per instrument: (liquidation price, owner) of liquidatable-someday one-position accounts.
    cdef vector[KeySet[IndexKey]] longs
    cdef vector[KeySet[IndexKey]] shorts
    # Accounts holding two or more positions (docs/market_wide.md section 3), per instrument:
    # (the mark at which the account's allowance there is used up, owner), by losing direction;
    # the accounts waiting for the instrument's first mark; and, over all instruments, those
    # liquidatable at their last evaluation.
    cdef vector[KeySet[IndexKey]] allow_longs
    cdef vector[KeySet[IndexKey]] allow_shorts
    cdef vector[cset[owner_t]] aside
    cdef cset[owner_t] crossing
    cdef vector[InstrumentRec] instruments
    # Collateral assets: their settings, every account's holdings, and per asset the allowance
    # index of holders (where the asset's allowance ends, owner); what the venue bought from
    # liquidated accounts (units, quote units paid).
    cdef vector[AssetRec] assets
    cdef vector[int32_t] asset_of  # per instrument: the asset its mark values, or -1
    cdef deque[Holding] holding_pool
    cdef vector[KeySet[IndexKey]] allow_assets
    cdef vector[money_t] converted_units
    cdef vector[money_t] converted_paid
    cdef vector[price_t] marks    # the Engine's marks, per instrument
    cdef vector[uint8_t] has_mark
    # Per instrument: lots held long over every account (the open interest), kept by settle
    # so that reading it is O(1), not O(accounts).
    cdef vector[int128] long_lots
    # The instrument being worked on (select): the fields below are its own.
    cdef int32_t cur
    cdef int64_t k                # quote units per tick x lot (inverse: V = floor(k q / p))
    # An inverse venue (docs/market_wide.md section 7): every value floor(k q / p) coin units,
    # a long profiting as it falls; sign -1 then (+1 linear) multiplies every profit.
    cdef bint inverse
    cdef int sign
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
    cdef int add_asset(self, int32_t instrument, int64_t num, int64_t den, int64_t haircut_ppm,
                       int64_t discount_ppm) except -1
    cdef Holding* holding(self, int32_t slot, int32_t asset) noexcept nogil
    cdef Holding* next_holding(self, const Holding* h) noexcept nogil
    cdef Holding* first_holding(self, const Account* a) noexcept nogil
    cdef int128 holding_value(self, const Holding* h) noexcept nogil
    cdef int128 holding_value_at(self, const Holding* h, price_t price) noexcept nogil
    cdef Holding* own_holding(self, const Account* a, int32_t instrument) noexcept nogil
    cdef bint own_outweighs(self, const Account* a, const Position* p) noexcept nogil
    cdef int128 holdings_value(self, const Account* a) noexcept nogil
    cdef bint holds_assets(self, const Account* a) noexcept nogil
    cdef int32_t open_account(self, owner_t owner, money_t collateral, bint exempt, bint isolated,
                              money_t reserve) except -1
    cdef int32_t slot(self, owner_t owner) noexcept nogil
    cdef Position* pos(self, int32_t slot, int32_t instrument) noexcept nogil
    cdef Position* find(self, const Account* a, int32_t instrument) noexcept nogil
    cdef Position* next_pos(self, const Account* a, const Position* p) noexcept nogil
    cdef int held(self, const Account* a) noexcept nogil
    cdef int128 value(self, price_t price, qty_t qty) noexcept nogil
    cdef int128 value_at(self, int64_t k, price_t price, qty_t qty) noexcept nogil
    cdef int128 lots_within(self, price_t price, int128 budget) noexcept nogil
    cdef int128 unrealised(self, const Position* p, price_t mark, bint has_mark) noexcept nogil
    cdef int128 equity(self, const Account* a, const Position* p, price_t mark,
                       bint has_mark) noexcept nogil
    cdef int128 requirement(self, int128 notional, bint initial) noexcept nogil
    cdef int128 maintenance(self, const Position* p, price_t mark, bint has_mark) noexcept nogil
    cdef (price_t, price_t) bracket(self, const Account* a, const Position* p, int128 ou,
                                    int128 om, price_t lo, price_t hi, bint long) noexcept nogil
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
    cdef int128 loss_rate(self, const Position* p) noexcept nogil
    cdef int128 holding_loss_rate(self, const Holding* h) noexcept nogil
    cdef void unindex_holding(self, Holding* h, owner_t owner) noexcept nogil
    cdef void allow(self, Account* a) noexcept nogil
    cdef int128 allowance_weight(self, const Position* p) noexcept nogil
    cdef int128 mark_weight(self, int32_t instrument) noexcept nogil
    cdef void pop_above(self, KeySet[IndexKey]* index, price_t mark,
                        vector[int32_t]* popped) noexcept nogil
    cdef void cross_multi(self, vector[owner_t]* crossed) noexcept nogil
    cdef void settle(self, int32_t slot, qty_t delta, price_t price) noexcept nogil
    cdef void fill(self, int32_t slot, qty_t delta, price_t price) noexcept nogil
    cdef void apply_fill(self, Account* a, Position* p, qty_t delta,
                         price_t price) noexcept nogil
    cdef void charge(self, int32_t slot, money_t amount, bint to_fund) noexcept nogil
    cdef void transfer(self, int32_t buyer, int32_t seller, price_t price,
                       qty_t qty) noexcept nogil
    cdef void exchange(self, int32_t buyer, int32_t seller, qty_t qty,
                       int128 value) noexcept nogil
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
    cdef object trades_array(self, int32_t instrument, int64_t start=*)
    cdef int load_trades(self, int32_t instrument, object trades) except -1

cdef int128 floor_div(int128 a, int128 b) noexcept nogil
cdef int128 ceil_div(int128 a, int128 b) noexcept nogil
cdef object to_python(int128 v)
cdef int128 from_python(object value) except? -1
