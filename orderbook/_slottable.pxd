# The owner table: account owner id -> slot in the Ledger's accounts vector, by open addressing.
#
# The order id table's design (_idtable.pxd) and its IdTable struct, keyed by
# accounts[slot].owner instead of pool[slot].order_id: a bucket holds only the account's slot and
# a one-byte tag, so an owner costs 5 bytes / load factor (6.7 to 13.3 B, 10.5 B at 1,000,000
# accounts) where std::unordered_map cost a 32-byte node and an 8-byte bucket pointer, about a
# third of a flat account (benchmarks/bench_memory.py). The tags let a probe pass over other
# owners without reading their 88-byte Account, as they let the book's pass over orders.
# Kept apart from _idtable.pxd, which it only cimports, so the book's hot path is compiled as it
# was; header-only, so the Ledger's lookups are inline in accounts.pyx.
# Accounts are never closed: there is no erase, so the table holds no tombstones (its deleted
# count stays 0) and a growth always doubles it.
# The functions take the accounts vector's data beside the table; after the vector reallocates
# the caller passes its new address.

from libc.stdint cimport int32_t, int64_t, uint8_t
from libcpp.vector cimport vector

from orderbook._idtable cimport (
    GROUP, IdTable, bit_length, free_bucket, id_home, id_tag, lowest_bit, put_tag, tag_group,
)
from orderbook._types cimport owner_t, slot_t
from orderbook.accounts cimport Account


cdef inline int32_t owner_find(const IdTable* table, const Account* accounts,
                               owner_t owner) noexcept nogil:
    # The slot of the account of this owner, or -1. Expected O(1): at most 3/4 full, and
    # Fibonacci hashing spreads sequential owners over the buckets.
    if table.count == 0:
        return -1
    cdef size_t mask = table.buckets.size() - 1
    cdef size_t i = id_home(owner, table.shift), k
    cdef uint8_t tag = id_tag(owner, table.shift)
    cdef const uint8_t* tags = table.tags.data()
    cdef unsigned match, empty
    cdef int32_t slot
    while True:
        match = tag_group(tags + i, tag, &empty)
        if empty:
            match &= (empty & (0 - empty)) - 1    # only the buckets before the first empty one
        while match:
            k = (i + <size_t>lowest_bit(match)) & mask
            slot = table.buckets[k]
            if accounts[slot].owner == owner:
                return slot
            match &= match - 1
        if empty:
            return -1
        i = (i + GROUP) & mask


cdef inline void owner_grow(IdTable* table, const Account* accounts) noexcept nogil:
    # Twice the buckets (16 at first), every account put back. Amortised O(1) per insert.
    cdef vector[slot_t] old
    old.swap(table.buckets)
    cdef size_t size = 2 * old.size() if not old.empty() else 16
    table.buckets.assign(size, -1)
    table.tags.assign(size + GROUP, 0)
    table.shift = 64 - bit_length(size - 1)
    cdef size_t i
    cdef slot_t slot
    for slot in old:
        if slot >= 0:
            i = free_bucket(table, id_home(accounts[slot].owner, table.shift))
            table.buckets[i] = slot
            put_tag(table, i, id_tag(accounts[slot].owner, table.shift))


cdef inline void owner_insert(IdTable* table, const Account* accounts, int32_t slot) noexcept nogil:
    # Enter accounts[slot] under its owner; the caller has checked that the owner has no account.
    if (table.count + 1) * 4 > <int64_t>table.buckets.size() * 3:
        owner_grow(table, accounts)
    cdef size_t i = free_bucket(table, id_home(accounts[slot].owner, table.shift))
    table.buckets[i] = slot
    put_tag(table, i, id_tag(accounts[slot].owner, table.shift))
    table.count += 1
