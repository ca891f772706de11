# The liquidator: the queue, rounds and episodes, forced orders, take-over (backstop, insurance
# fund, ADL), shortfall and socialised loss, its records and the fund history. The Engine
# (engine.pyx) owns one and drives it; it reaches the book and the ledger through typed C
# attributes. See docs/liquidation.md.

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libcpp.vector cimport vector

from orderbook._types cimport Message, oid_t, owner_t, price_t, qty_t
from orderbook.accounts cimport Account, Ledger, Position, int128, money_t
from orderbook.book cimport OrderBook

cdef extern from *:
    ctypedef unsigned long long uint128 "unsigned __int128"

# The Engine's marks as the liquidator sees them (numpy's bitgen_t habit: a state pointer and a
# C function over it): recompute every instrument's mark after a book changed, into the ledger's
# marks and has_mark. The mark rules stay the Engine's.
ctypedef void (*MarkFn)(void* engine) noexcept nogil


# An account's stay in the liquidation queue.
cdef struct Episode:
    owner_t owner
    int64_t generation    # the round number at which it entered the queue
    # FRACTION's cooldown: the last rounds_run whose forced orders close the whole position
    # (-1: none)
    int64_t cooldown_end
    # ... and in ms: the last Engine.time at which they do (-1: none)
    int64_t cooldown_until


# An ADL candidate: its ranking key (docs/liquidation.md, "ADL ranking") as a sign and the
# numerator and denominator of its magnitude, both positive (see adl_before for their bounds).
cdef struct AdlCand:
    uint128 num
    uint128 den
    owner_t owner
    int8_t sign           # +1, 0 or -1: the key's sign (num/den is meaningless when 0)


# One liquidation record: FORCED_DTYPE's integer fields (avg_price and slippage are derived).
cdef struct ForcedRec:
    int64_t round
    int64_t generation
    owner_t owner
    owner_t counterparty
    qty_t qty
    qty_t filled
    money_t fill_value    # quote units; avg price = fill_value / (filled * k)
    price_t mark_before
    price_t mark_after
    money_t fee
    money_t fund_cover
    money_t socialized
    money_t bad_debt
    int8_t side
    uint8_t kind
    int32_t instrument    # of the position the record is about


cdef bint adl_before(const AdlCand& x, const AdlCand& y) noexcept nogil


@cython.final
cdef class Liquidator:
    cdef list books               # an OrderBook per instrument
    cdef OrderBook book           # the book of the instrument being served (use)
    cdef int32_t instrument       # the instrument being served
    cdef int128 ou, om            # the served account's others held fixed (O_i, M_i)
    cdef Ledger ledger
    cdef void* engine           # borrowed: the Engine that owns this liquidator, for refresh_mark
    cdef MarkFn refresh_mark
    # Settings (the Engine's, fixed at construction).
    cdef int64_t k                # the served instrument's quote units per tick x lot
    cdef qty_t max_position       # its lots: the backstop takes no more than this
    cdef int sizing, limit_rule, deficit, adl_ranking
    cdef int close_order          # CloseOrder: which positions of an account go first
    cdef int64_t fraction_ppm, band_ppm, liquidation_fee_ppm, backstop_discount_ppm
    cdef money_t fraction_above   # quote units: FRACTION closes a position worth no more whole
    cdef int64_t takeover_below_ppm   # ppm of MM: below it a served account is taken over
    cdef int64_t cooldown_rounds  # rounds after a partial FRACTION step that close whole
    cdef int64_t cooldown_ms      # ms of Engine.time after one that close whole
    cdef money_t increment        # quote units at the mark: one INCREMENTAL step's notional
    cdef bint has_round_cap, has_backstop
    cdef int64_t round_cap        # notional (quote units at the mark) per round
    cdef owner_t backstop
    # State.
    cdef int64_t now              # the Engine's clock, ms (Engine.time; never goes back)
    cdef vector[Episode] queue
    cdef int64_t round_number     # the cascade's round, shown in records; 0 once the queue empties
    cdef int64_t rounds_run       # rounds that made progress, over the engine's life
    cdef oid_t next_forced_id     # forced orders take ids -1, -2, ...: never a user's
    cdef int64_t progress         # what the running round did (lots, records, cancels)
    cdef money_t bad_debt_noted   # bad debt recorded by the entry being served
    cdef vector[ForcedRec] records
    cdef vector[int64_t] fund_rounds      # the fund history: rounds_run at each row ...
    cdef vector[money_t] fund_balances    # ... and the fund's balance after that round

    cdef Account* acct(self, int32_t slot) noexcept nogil
    cdef Position* posn(self, int32_t slot) noexcept nogil
    cdef void use(self, int32_t instrument) noexcept
    cdef void fold(self, int32_t slot) noexcept nogil
    cdef price_t mark(self) noexcept nogil
    cdef bint run_round(self) except -1
    cdef void enqueue_crossed(self) noexcept nogil
    cdef int serve(self, Episode* episode, int64_t cap_left, int64_t* used) except -1
    cdef bint close_sequence(self, int32_t slot, bint is_fund,
                             vector[int32_t]* instruments) except -1
    cdef int serve_position(self, Episode* episode, int32_t slot, bint is_fund,
                            int64_t cap_left, int64_t* used) except -1
    cdef qty_t send_order(self, const Episode* episode, int32_t slot, bint is_fund, int side,
                          qty_t size, price_t mark, price_t bankruptcy) except -1
    cdef int64_t incremental_steps(self, const Episode* episode, int32_t slot, int side,
                                   int64_t cap_left) except -1
    cdef bint takes_over(self, const Account* a, const Position* p, price_t mark) noexcept nogil
    cdef int cancel_orders_of(self, owner_t owner) except -1
    cdef qty_t size(self, const Account* a, const Position* p, price_t mark) noexcept nogil
    cdef qty_t tier_step_size(self, qty_t q, price_t mark) noexcept nogil
    cdef qty_t restore_size(self, const Account* a, const Position* p,
                            price_t mark) noexcept nogil
    cdef size_t tier_of(self, int128 notional) noexcept nogil
    cdef qty_t piece_first(self, const Account* a, const Position* p, int side, qty_t q, qty_t lo,
                           qty_t hi, qty_t done, int128 value, price_t price, int128 equity,
                           price_t mark, size_t tier) noexcept nogil
    cdef bint restores(self, const Account* a, const Position* p, qty_t x, int128 value,
                       int128 equity, price_t mark) noexcept nogil
    cdef price_t order_limit(self, int limit_rule, int side, price_t mark,
                             price_t bankruptcy) noexcept nogil
    cdef void record(self, const Episode* episode, int kind, int side, qty_t qty, qty_t filled,
                     money_t fill_value, price_t mark_before, money_t fee, money_t fund_cover,
                     money_t socialized, money_t bad_debt, owner_t counterparty) noexcept nogil
    cdef void take_over(self, const Episode* episode, int32_t slot, int side, qty_t remainder,
                        price_t price) noexcept nogil
    cdef bint fund_can_take(self, int32_t fund, int direction, price_t price, qty_t qty,
                            price_t mark) noexcept nogil
    cdef price_t fund_covered_limit(self, const Account* a, const Position* p, int side,
                                    qty_t size, price_t bankruptcy, bint has_limit,
                                    price_t limit) noexcept nogil
    cdef qty_t blocked_depth(self, int side, price_t rule_limit, price_t limit,
                             qty_t wanted) noexcept nogil
    cdef qty_t deleverage(self, const Episode* episode, int32_t slot, int side, qty_t remainder,
                          price_t price, price_t mark) noexcept nogil
    cdef price_t adl_price(self, const Position* other, int direction, qty_t qty, price_t price,
                           price_t mark) noexcept nogil
    cdef void adl_candidates(self, int32_t slot, price_t mark,
                             vector[AdlCand]* out) noexcept nogil
    cdef int convert_collateral(self, const Episode* episode, int32_t slot,
                                int32_t served) except -1
    cdef int sell_through_book(self, const Episode* episode, int32_t slot,
                               int32_t asset) except -1
    cdef int cover_shortfall(self, const Episode* episode, int32_t slot, int side) except -1
    cdef money_t socialize(self, int32_t bankrupt, money_t amount) except? -1
    cdef object records_array(self, size_t first)
    cdef object fund_history_array(self)
    cdef Liquidator copy(self, list books, Ledger ledger, void* engine)
    cdef list queue_rows(self)
    cdef list record_rows(self)
    cdef list fund_rows(self)
    cdef int load(self, dict state) except -1
