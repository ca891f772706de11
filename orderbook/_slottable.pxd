# The owner table: account owner id -> slot in the Ledger's accounts vector, by open addressing.
#
# The order id table's design (_idtable.pxd) and its IdTable struct, keyed by
# accounts[slot].owner instead of pool[slot].order_id: a bucket holds only the account's slot and
# a one-byte tag, so an owner costs 5 bytes / load factor (6.7 to 13.3 B, 10.5 B at 1,000,000
# accounts) where std::unordered_map cost a 32-byte node and an 8-byte bucket pointer, about a
# third of a flat account (benchmarks/bench_memory.py). The tags let a probe pass over other
# owners without reading their 88-byte Account, as they let the book's pass over orders. One
# difference: the home hashes an owner's block of 16 (owner_home), not the owner alone.
# Kept apart from _idtable.pxd, whose probe (find_slot) it shares by cimport; header-only, so
# the Ledger's lookups are inline in accounts.pyx.
# Accounts are never closed: there is no erase, so the table holds no tombstones (its deleted
# count stays 0) and a growth always doubles it.
# The functions take the accounts vector's data beside the table; after the vector reallocates
# the caller passes its new address.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libcpp.vector cimport vector

from orderbook._idtable cimport (
    GROUP, PREFETCH_AHEAD, IdTable, bit_length, find_slot, free_bucket, prefetch, put_tag,
)
from orderbook._types cimport owner_t, slot_t
from orderbook.accounts cimport Account


cdef inline size_t owner_home(owner_t owner, int shift) noexcept nogil:
    # Fibonacci hashing of the owner's block of 16 (owner >> 4), its place in the block (the low
    # four bits) kept: sixteen consecutive owners fill one aligned run of sixteen buckets, so
    # owners numbered in order (the usual case) are entered and found one tag group and one
    # cache line of buckets per sixteen, where hashing each owner apart cost a cache miss or
    # two for every one (add_accounts of owners 0..999,999, best of 3 on a loaded 2-core VM:
    # 554-570 ms hashing each owner, 236-376 ms by blocks; std::unordered_map 246-309 ms).
    return <size_t>(((<uint64_t>owner >> 4) * <uint64_t>0x9E3779B97F4A7C15ULL) >> shift) \
        ^ <size_t>(owner & 15)


cdef inline uint8_t owner_tag(owner_t owner, int shift) noexcept nogil:
    # The seven bits of the block's product just below the home's, the place in the block
    # folded into the top three: the sixteen owners of a block have sixteen tags.
    return <uint8_t>(0x80 | ((((<uint64_t>owner >> 4) * <uint64_t>0x9E3779B97F4A7C15ULL)
                              >> (shift - 7)) ^ (<uint64_t>(owner & 15) << 3)) & 0x7F)


cdef inline int32_t owner_find(const IdTable* table, const Account* accounts,
                               owner_t owner) noexcept nogil:
    # The slot of the account of this owner, or -1. Expected O(1): at most 3/4 full, and
    # Fibonacci hashing spreads the blocks of 16 owners over the buckets.
    if table.count == 0:
        return -1
    return find_slot(table, owner_home(owner, table.shift), owner_tag(owner, table.shift),
                     <const char*>&accounts[0].owner, sizeof(Account), owner)


cdef inline void owner_grow(IdTable* table, const Account* accounts) noexcept nogil:
    # Twice the buckets (16 at first), every account put back. Amortised O(1) per insert.
    cdef vector[slot_t] old
    old.swap(table.buckets)
    cdef size_t size = 2 * old.size() if not old.empty() else 16
    table.buckets.assign(size, -1)
    table.tags.assign(size + GROUP, 0)
    table.shift = 64 - bit_length(size - 1)
    cdef size_t i, j, n = old.size()
    cdef slot_t slot
    for j in range(n):
        # The owners are read in bucket order, from all over the accounts: asking for the one
        # PREFETCH_AHEAD buckets on overlaps the misses (perf put 43 % of add_accounts' time on
        # that read without it).
        if j + PREFETCH_AHEAD < n and old[j + PREFETCH_AHEAD] >= 0:
            prefetch(&accounts[old[j + PREFETCH_AHEAD]].owner)
        slot = old[j]
        if slot >= 0:
            i = free_bucket(table, owner_home(accounts[slot].owner, table.shift))
            table.buckets[i] = slot
            put_tag(table, i, owner_tag(accounts[slot].owner, table.shift))


cdef inline void owner_insert(IdTable* table, const Account* accounts, int32_t slot) noexcept nogil:
    # Enter accounts[slot] under its owner; the caller has checked that the owner has no account.
    if (table.count + 1) * 4 > <int64_t>table.buckets.size() * 3:
        owner_grow(table, accounts)
    cdef size_t i = free_bucket(table, owner_home(accounts[slot].owner, table.shift))
    table.buckets[i] = slot
    put_tag(table, i, owner_tag(accounts[slot].owner, table.shift))
    table.count += 1
