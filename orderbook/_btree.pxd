# An ordered set of keys as a B+-tree: the Ledger's liquidation-price and allowance indexes
# ((price, owner) pairs, accounts.pxd), in place of std::set.
#
# A std::set node costs 64 B of malloc chunk per key (three pointers and a colour around a
# 16-byte key); a leaf here holds up to 32 keys in a row behind one header, 544 B of chunk, so a
# key costs 17 B over a full leaf. bench_memory.py's positioned accounts: 64 B of index per
# account before, about 20 after (benchmarks/bench_memory.py --part index_* for the tree alone).
# Fill, and so the cost per key, is kept up on both sides:
# - A full leaf first shares with a sibling that has room; two full siblings become three;
#   only a leaf without siblings splits in two. The new key ends its leaf where the keys allow
#   (the rest dealt evenly), so a run of inserts at one place (ascending owners at one price,
#   or a price below every other) leaves full leaves behind it, not half-full ones. 10^6
#   keys: 21 B each inserted at random, 18 ascending, descending or at 1,000 places.
# - A leaf that falls below half full is dealt again with up to two siblings, into as few
#   leaves as hold them with a quarter of a leaf spare in each (so that the next insert does
#   not split at once). Steady erase-and-insert churn: 22 B a key; erasing half of the keys
#   at random with no inserts: 28 B (every leaf but the root's stays at least half full, 34 B
#   a key at worst).
# Branches work the same way (32 children) and cost about 1 B a key.
# Header-only (the _idtable.pxd habit): the class is compiled into each module that cimports
# it. The leaves are linked both ways, so an iterator is a leaf and an index, and ++/-- are
# O(1) amortised, like std::set's.
# Iterators are invalidated by any insert or erase (keys move between leaves when one splits or
# merges, and within one on every change): the Ledger and the Liquidator walk an index first and
# change it afterwards (pop_above, cross_multi, Liquidator.enqueue_crossed collect owners or
# slots, then reindex).
# Allocation: insert and the copy constructor throw std::bad_alloc, like std::set's, and are
# declared ``except +`` as libcpp.set declares insert; insert takes every node it may need
# before it changes anything, so a failed one leaves the set as it was (the copy frees what it
# made). erase, clear and the moves allocate nothing.

from libcpp cimport bool


cdef extern from * nogil:
    """
    #include <cstdint>
    #include <algorithm>
    #include <cstring>
    #include <new>
    #include <type_traits>
    #include <utility>

    namespace orderbook_btree {

    template <class K>
    class KeySet {
        static_assert(std::is_trivially_destructible<K>::value, "nodes are freed as they are");
        enum {
            LEAF = 32,            // keys a leaf holds: 512 B of 16-byte keys, eight cache lines
            BRANCH = 32,          // children a branch holds
            SLACK = 8,            // a merge leaves this many free slots (CAP / 4) in each node
            MAX_DEPTH = 64        // branch levels: every non-root branch has 2 or more children
        };
        struct Leaf {
            Leaf* prev;
            Leaf* next;
            uint32_t n;
            K keys[LEAF];
        };
        struct Branch {
            uint32_t n;                 // children
            // keys[i]: above every key under child i, at most every key under child i + 1 (a
            // bound, not necessarily a key in the set: erase leaves them as they are)
            K keys[BRANCH - 1];
            void* child[BRANCH];
        };
        struct Step {
            Branch* node;
            uint32_t i;                 // the child the descent took
        };
        // Nodes an insert may need, taken before it changes anything, so that a failed
        // allocation (std::bad_alloc) leaves the set as it was.
        struct Reserve {
            Leaf* leaf = nullptr;
            Branch* branches[MAX_DEPTH + 1];
            int nb = 0;
            ~Reserve() {
                delete leaf;
                while (nb) delete branches[--nb];
            }
            Leaf* take_leaf() { Leaf* l = leaf; leaf = nullptr; return l; }
            Branch* take_branch() { return branches[--nb]; }
        };

        void* root_ = nullptr;
        Leaf* head_ = nullptr;      // the leaves in key order, linked both ways
        Leaf* tail_ = nullptr;
        size_t size_ = 0;
        int height_ = 0;            // 0: empty; 1: the root is a leaf; h: h - 1 levels of branches

    public:
        class iterator {
            const Leaf* leaf_ = nullptr;
            uint32_t i_ = 0;
            friend class KeySet;
            iterator(const Leaf* leaf, uint32_t i) : leaf_(leaf), i_(i) {}
        public:
            iterator() {}
            const K& operator*() const { return leaf_->keys[i_]; }
            const K* operator->() const { return &leaf_->keys[i_]; }
            // end() is one past the last leaf's last key: a step onto it stays in that leaf.
            iterator& operator++() {
                if (++i_ == leaf_->n && leaf_->next) {
                    leaf_ = leaf_->next;
                    i_ = 0;
                }
                return *this;
            }
            iterator& operator--() {
                if (i_ == 0) {
                    leaf_ = leaf_->prev;
                    i_ = leaf_->n;
                }
                --i_;
                return *this;
            }
            bool operator==(const iterator& o) const { return leaf_ == o.leaf_ && i_ == o.i_; }
            bool operator!=(const iterator& o) const { return !(*this == o); }
        };

        KeySet() {}
        KeySet(const KeySet& o) {
            if (!o.root_) return;
            Leaf* last = nullptr;
            try {
                root_ = clone(o.root_, o.height_ - 1, &last);
            } catch (...) {
                head_ = nullptr;
                throw;
            }
            tail_ = last;
            size_ = o.size_;
            height_ = o.height_;
        }
        KeySet(KeySet&& o) noexcept { swap(o); }
        KeySet& operator=(const KeySet& o) {
            if (this != &o) {
                KeySet copy(o);
                swap(copy);
            }
            return *this;
        }
        KeySet& operator=(KeySet&& o) noexcept {
            if (this != &o) {
                clear();
                swap(o);
            }
            return *this;
        }
        ~KeySet() { clear(); }

        void swap(KeySet& o) noexcept {
            std::swap(root_, o.root_);
            std::swap(head_, o.head_);
            std::swap(tail_, o.tail_);
            std::swap(size_, o.size_);
            std::swap(height_, o.height_);
        }
        void clear() noexcept {
            if (root_) destroy(root_, height_ - 1);
            root_ = nullptr;
            head_ = tail_ = nullptr;
            size_ = 0;
            height_ = 0;
        }
        size_t size() const { return size_; }
        bool empty() const { return size_ == 0; }
        iterator begin() const { return root_ ? iterator(head_, 0) : iterator(); }
        iterator end() const { return root_ ? iterator(tail_, tail_->n) : iterator(); }

        // Whether key was absent (and is now in). O(log n); O(LEAF + BRANCH log n) on a split.
        bool insert(const K& key) {
            if (!root_) {
                Leaf* leaf = new Leaf;
                leaf->prev = leaf->next = nullptr;
                leaf->n = 1;
                leaf->keys[0] = key;
                root_ = head_ = tail_ = leaf;
                height_ = 1;
                size_ = 1;
                return true;
            }
            Step path[MAX_DEPTH + 1];
            Leaf* leaf = descend(key, path);
            uint32_t pos = lower(leaf->keys, leaf->n, key);
            if (pos < leaf->n && !(key < leaf->keys[pos])) return false;
            if (leaf->n < LEAF) {
                move_keys(leaf->keys + pos + 1, leaf->keys + pos, leaf->n - pos);
                leaf->keys[pos] = key;
                leaf->n++;
            } else {
                Reserve reserve;
                fill(&reserve, path);
                overflow_leaf(path, &reserve, pos, key);
            }
            size_++;
            return true;
        }

        // 1 if key was in (and is now out), else 0. O(log n); O(LEAF + BRANCH log n) on a merge.
        size_t erase(const K& key) noexcept {
            if (!root_) return 0;
            Step path[MAX_DEPTH + 1];
            Leaf* leaf = descend(key, path);
            uint32_t pos = lower(leaf->keys, leaf->n, key);
            if (pos == leaf->n || key < leaf->keys[pos]) return 0;
            move_keys(leaf->keys + pos, leaf->keys + pos + 1, leaf->n - pos - 1);
            leaf->n--;
            size_--;
            if (height_ == 1) {
                if (leaf->n == 0) clear();
            } else if (leaf->n < LEAF / 2) {
                underflow_leaf(path, height_ - 2);
            }
            return 1;
        }

        // Bytes of nodes (as allocated, before the allocator's own header and rounding).
        size_t node_bytes() const { return root_ ? bytes(root_, height_ - 1) : 0; }

        // Every invariant, for the tests: keys ascending across the leaf chain, each branch key
        // between its children, all leaves at one depth, no node empty, the counts.
        bool valid() const {
            if (!root_) return !head_ && !tail_ && size_ == 0 && height_ == 0;
            const Leaf* expect = head_;
            size_t count = 0;
            if (head_->prev || tail_->next) return false;
            if (!check(root_, height_ - 1, nullptr, nullptr, &expect, &count)) return false;
            if (expect != nullptr || count != size_) return false;
            for (const Leaf* l = head_; l; l = l->next) {
                if (l->next && (l->next->prev != l || !(l->keys[l->n - 1] < l->next->keys[0])))
                    return false;
                if (!l->next && l != tail_) return false;
            }
            return true;
        }

    private:
        // Overlapping ranges in either direction (std::pair is not trivially copyable, so no
        // memmove; the compiler makes one of these copies).
        static void move_keys(K* to, const K* from, size_t n) {
            if (to < from) std::copy(from, from + n, to);
            else std::copy_backward(from, from + n, to + n);
        }
        static uint32_t lower(const K* keys, uint32_t n, const K& key) {
            uint32_t lo = 0;
            while (n) {
                uint32_t half = n / 2;
                if (keys[lo + half] < key) {
                    lo += half + 1;
                    n -= half + 1;
                } else {
                    n = half;
                }
            }
            return lo;
        }
        static uint32_t upper(const K* keys, uint32_t n, const K& key) {
            uint32_t lo = 0;
            while (n) {
                uint32_t half = n / 2;
                if (!(key < keys[lo + half])) {
                    lo += half + 1;
                    n -= half + 1;
                } else {
                    n = half;
                }
            }
            return lo;
        }

        Leaf* descend(const K& key, Step* path) const {
            void* node = root_;
            for (int d = 0; d < height_ - 1; d++) {
                Branch* b = static_cast<Branch*>(node);
                uint32_t i = upper(b->keys, b->n - 1, key);
                path[d].node = b;
                path[d].i = i;
                node = b->child[i];
            }
            return static_cast<Leaf*>(node);
        }

        // A full leaf takes a key: a leaf and a branch for each full branch above it, and a new
        // root if every one is full (worst cases: a sibling with room needs none of them).
        void fill(Reserve* r, const Step* path) {
            int d = height_ - 2;
            while (d >= 0 && path[d].node->n == BRANCH) d--;
            int need = height_ - 1 - (d + 1) + (d < 0 ? 1 : 0);
            r->leaf = new Leaf;
            while (r->nb < need) r->branches[r->nb++] = new Branch;
        }

        // A new root above the old one, its only child: the level below can then split into it.
        void grow(Step* path, Reserve* r) {
            Branch* top = r->take_branch();
            top->n = 1;
            top->child[0] = root_;
            root_ = top;
            std::memmove(path + 1, path, (height_ - 1) * sizeof(Step));
            path[0].node = top;
            path[0].i = 0;
            height_++;
        }

        // The window a node at child i of parent p shares with: [*s, *s + *w) of its siblings.
        // Splitting: a sibling with room (no new node), else two full ones into three (each
        // about 2/3 full), else the node alone into two. Merging: up to three around it.
        template <class Node>
        static void split_window(const Branch* p, uint32_t i, uint32_t cap, uint32_t* s,
                                 uint32_t* w, uint32_t* m) {
            if (i > 0 && static_cast<const Node*>(p->child[i - 1])->n < cap) {
                *s = i - 1; *w = 2; *m = 2;
            } else if (i + 1 < p->n && static_cast<const Node*>(p->child[i + 1])->n < cap) {
                *s = i; *w = 2; *m = 2;
            } else if (p->n >= 2) {
                *s = i > 0 ? i - 1 : i; *w = 2; *m = 3;
            } else {
                *s = i; *w = 1; *m = 2;
            }
        }
        template <class Node>
        static void merge_window(const Branch* p, uint32_t i, uint32_t cap, uint32_t* s,
                                 uint32_t* w, uint32_t* m) {
            uint32_t total = 0;
            *w = p->n < 3 ? p->n : 3;
            *s = i == 0 ? 0 : (i + 1 == p->n ? p->n - *w : i - 1);
            for (uint32_t j = 0; j < *w; j++)
                total += static_cast<const Node*>(p->child[*s + j])->n;
            // as few nodes as hold them with SLACK free in each, so that an insert does not
            // split one again at once
            *m = (total + SLACK + cap - 1) / cap;
            if (*m < 1) *m = 1;
            if (*m > *w) *m = *w;
        }

        void overflow_leaf(Step* path, Reserve* r, uint32_t pos, const K& key) {
            if (height_ == 1) grow(path, r);
            int pd = height_ - 2;
            Branch* p = path[pd].node;
            uint32_t i = path[pd].i, s, w, m;
            split_window<Leaf>(p, i, LEAF, &s, &w, &m);
            K buf[3 * LEAF + 1];
            uint32_t total = 0, at = 0;
            for (uint32_t j = 0; j < w; j++) {
                const Leaf* l = static_cast<Leaf*>(p->child[s + j]);
                if (s + j == i) at = total + pos;
                std::copy(l->keys, l->keys + l->n, buf + total);
                total += l->n;
            }
            move_keys(buf + at + 1, buf + at, total - at);
            buf[at] = key;
            scatter_leaves(path, pd, r, s, w, m, buf, total + 1, at);
        }

        void underflow_leaf(Step* path, int pd) {
            Branch* p = path[pd].node;
            uint32_t s, w, m;
            merge_window<Leaf>(p, path[pd].i, LEAF, &s, &w, &m);
            K buf[3 * LEAF];
            uint32_t total = 0;
            for (uint32_t j = 0; j < w; j++) {
                const Leaf* l = static_cast<Leaf*>(p->child[s + j]);
                std::copy(l->keys, l->keys + l->n, buf + total);
                total += l->n;
            }
            scatter_leaves(path, pd, nullptr, s, w, m, buf, total, UINT32_MAX);
        }

        // Deal total keys from buf over m leaves in place of children [s, s + w) of path[pd]'s
        // node, as evenly as they go; then the branch above gains or loses children to match.
        void scatter_leaves(Step* path, int pd, Reserve* r, uint32_t s, uint32_t w, uint32_t m,
                            const K* buf, uint32_t total, uint32_t at) {
            Branch* p = path[pd].node;
            Leaf* nodes[3];
            for (uint32_t j = 0; j < w; j++) nodes[j] = static_cast<Leaf*>(p->child[s + j]);
            if (m > w) {
                Leaf* prev = nodes[w - 1];
                Leaf* l = r->take_leaf();
                l->prev = prev;
                l->next = prev->next;
                if (l->next) l->next->prev = l; else tail_ = l;
                prev->next = l;
                nodes[w] = l;
            }
            uint32_t counts[3];
            deal(total, m, at, counts);
            for (uint32_t j = 0, off = 0; j < m; j++) {
                uint32_t c = counts[j];
                std::copy(buf + off, buf + off + c, nodes[j]->keys);
                nodes[j]->n = c;
                off += c;
            }
            for (uint32_t j = 1; j < m && j < w; j++) p->keys[s + j - 1] = nodes[j]->keys[0];
            if (m > w) {
                branch_insert(path, pd, r, s + w, nodes[w]->keys[0], nodes[w]);
            } else if (m < w) {
                for (uint32_t j = m; j < w; j++) {
                    Leaf* l = nodes[j];
                    if (l->prev) l->prev->next = l->next; else head_ = l->next;
                    if (l->next) l->next->prev = l->prev; else tail_ = l->prev;
                    delete l;
                }
                branch_remove(path, pd, s + m, w - m);
            }
        }

        // How many of the total keys each of the m leaves gets. After an insert (the new key at
        // index at): the new key ends its leaf, the leaves before it full, the ones after it
        // even, when that fits; a run of inserts at one place then fills the leaf it grows in
        // and leaves full ones behind (evenly dealt, it left two thirds full ones). Otherwise,
        // and after an erase, as evenly as they go.
        static void deal(uint32_t total, uint32_t m, uint32_t at, uint32_t* counts) {
            if (at != UINT32_MAX) {
                uint32_t a = at + 1, b = total - a;
                uint32_t ma = (a + LEAF - 1) / LEAF, mb = m - ma;   // leaves up to the new key
                if (ma <= m && mb * LEAF >= b && (b == 0) == (mb == 0)) {
                    for (uint32_t j = 0; j < ma; j++)
                        counts[j] = j + 1 < ma ? uint32_t(LEAF) : a - (ma - 1) * LEAF;
                    for (uint32_t j = 0; j < mb; j++) counts[ma + j] = b / mb + (j < b % mb);
                    return;
                }
            }
            for (uint32_t j = 0; j < m; j++) counts[j] = total / m + (j < total % m);
        }

        // Child c >= 1 of path[pd]'s node, with key the bound between it and child c - 1.
        void branch_insert(Step* path, int pd, Reserve* r, uint32_t c, const K& key, void* child) {
            Branch* b = path[pd].node;
            if (b->n < BRANCH) {
                move_keys(b->keys + c, b->keys + c - 1, b->n - c);
                std::memmove(b->child + c + 1, b->child + c, (b->n - c) * sizeof(void*));
                b->keys[c - 1] = key;
                b->child[c] = child;
                b->n++;
                return;
            }
            if (pd == 0) {
                grow(path, r);
                pd = 1;
            }
            Branch* g = path[pd - 1].node;
            uint32_t i = path[pd - 1].i, s, w, m;
            split_window<Branch>(g, i, BRANCH, &s, &w, &m);
            void* cbuf[3 * BRANCH + 1];
            K kbuf[3 * BRANCH];
            uint32_t total = gather_branches(g, s, w, cbuf, kbuf, i, &c);
            move_keys(kbuf + c, kbuf + c - 1, total - c);
            std::memmove(cbuf + c + 1, cbuf + c, (total - c) * sizeof(void*));
            kbuf[c - 1] = key;
            cbuf[c] = child;
            scatter_branches(path, pd - 1, r, s, w, m, cbuf, kbuf, total + 1);
        }

        // Children [c, c + count) of path[pd]'s node go, c >= 1, with the keys before them.
        void branch_remove(Step* path, int pd, uint32_t c, uint32_t count) {
            Branch* b = path[pd].node;
            move_keys(b->keys + c - 1, b->keys + c - 1 + count, b->n - c - count);
            std::memmove(b->child + c, b->child + c + count, (b->n - c - count) * sizeof(void*));
            b->n -= count;
            if (pd == 0) {
                if (b->n == 1) {
                    root_ = b->child[0];
                    delete b;
                    height_--;
                }
                return;
            }
            if (b->n >= BRANCH / 2) return;
            Branch* g = path[pd - 1].node;
            uint32_t s, w, m;
            merge_window<Branch>(g, path[pd - 1].i, BRANCH, &s, &w, &m);
            void* cbuf[3 * BRANCH];
            K kbuf[3 * BRANCH];
            uint32_t total = gather_branches(g, s, w, cbuf, kbuf, 0, nullptr);
            scatter_branches(path, pd - 1, nullptr, s, w, m, cbuf, kbuf, total);
        }

        // Children [s, s + w) of g: their children and keys in a row, with g's keys between them;
        // *c, an index into child i's children, becomes one into the row.
        static uint32_t gather_branches(const Branch* g, uint32_t s, uint32_t w, void** cbuf,
                                        K* kbuf, uint32_t i, uint32_t* c) {
            uint32_t total = 0;
            for (uint32_t j = 0; j < w; j++) {
                const Branch* b = static_cast<Branch*>(g->child[s + j]);
                if (c && s + j == i) *c += total;
                if (j) kbuf[total - 1] = g->keys[s + j - 1];
                std::memcpy(cbuf + total, b->child, b->n * sizeof(void*));
                std::copy(b->keys, b->keys + b->n - 1, kbuf + total);
                total += b->n;
            }
            return total;
        }

        void scatter_branches(Step* path, int gd, Reserve* r, uint32_t s, uint32_t w, uint32_t m,
                              void* const* cbuf, const K* kbuf, uint32_t total) {
            Branch* g = path[gd].node;
            Branch* nodes[3];
            K seps[3];
            for (uint32_t j = 0; j < w; j++) nodes[j] = static_cast<Branch*>(g->child[s + j]);
            if (m > w) nodes[w] = r->take_branch();
            for (uint32_t j = 0, off = 0; j < m; j++) {
                uint32_t c = total / m + (j < total % m);
                std::memcpy(nodes[j]->child, cbuf + off, c * sizeof(void*));
                std::copy(kbuf + off, kbuf + off + c - 1, nodes[j]->keys);
                nodes[j]->n = c;
                if (j + 1 < m) seps[j] = kbuf[off + c - 1];
                off += c;
            }
            for (uint32_t j = 1; j < m && j < w; j++) g->keys[s + j - 1] = seps[j - 1];
            if (m > w) {
                branch_insert(path, gd, r, s + w, seps[w - 1], nodes[w]);
            } else if (m < w) {
                for (uint32_t j = m; j < w; j++) delete nodes[j];
                branch_remove(path, gd, s + m, w - m);
            }
        }

        void* clone(const void* node, int level, Leaf** last) {
            if (level == 0) {
                const Leaf* from = static_cast<const Leaf*>(node);
                Leaf* l = new Leaf;
                l->n = from->n;
                std::copy(from->keys, from->keys + from->n, l->keys);
                l->prev = *last;
                l->next = nullptr;
                if (*last) (*last)->next = l; else head_ = l;
                *last = l;
                return l;
            }
            const Branch* from = static_cast<const Branch*>(node);
            Branch* b = new Branch;
            b->n = 0;
            try {
                for (uint32_t i = 0; i < from->n; i++) {
                    b->child[i] = clone(from->child[i], level - 1, last);
                    b->n = i + 1;
                }
            } catch (...) {
                destroy(b, level);
                throw;
            }
            std::copy(from->keys, from->keys + from->n - 1, b->keys);
            return b;
        }
        static void destroy(void* node, int level) noexcept {
            if (level == 0) {
                delete static_cast<Leaf*>(node);
                return;
            }
            Branch* b = static_cast<Branch*>(node);
            for (uint32_t i = 0; i < b->n; i++) destroy(b->child[i], level - 1);
            delete b;
        }
        static size_t bytes(const void* node, int level) {
            if (level == 0) return sizeof(Leaf);
            const Branch* b = static_cast<const Branch*>(node);
            size_t total = sizeof(Branch);
            for (uint32_t i = 0; i < b->n; i++) total += bytes(b->child[i], level - 1);
            return total;
        }
        bool check(const void* node, int level, const K* lo, const K* hi, const Leaf** expect,
                   size_t* count) const {
            if (level == 0) {
                const Leaf* l = static_cast<const Leaf*>(node);
                if (l != *expect || l->n == 0 || l->n > LEAF) return false;
                for (uint32_t j = 0; j < l->n; j++) {
                    if (j && !(l->keys[j - 1] < l->keys[j])) return false;
                    if (lo && l->keys[j] < *lo) return false;
                    if (hi && !(l->keys[j] < *hi)) return false;
                }
                *count += l->n;
                *expect = l->next;
                return true;
            }
            const Branch* b = static_cast<const Branch*>(node);
            if (b->n > BRANCH || b->n < 2) return false;
            for (uint32_t j = 0; j < b->n; j++) {
                if (j >= 1 && j + 1 < b->n && !(b->keys[j - 1] < b->keys[j])) return false;
                const K* clo = j ? &b->keys[j - 1] : lo;
                const K* chi = j + 1 < b->n ? &b->keys[j] : hi;
                if (!check(b->child[j], level - 1, clo, chi, expect, count)) return false;
            }
            return true;
        }
    };

    }  // namespace orderbook_btree
    """
    cdef cppclass KeySet "orderbook_btree::KeySet"[K]:
        # A bidirectional iterator over the keys, ascending; end() is one past the last.
        cppclass iterator:
            iterator()
            const K& operator*()
            iterator operator++()
            iterator operator--()
            bint operator==(iterator)
            bint operator!=(iterator)
        KeySet()
        KeySet(KeySet&) except +
        bool insert(const K& key) except +   # whether key was absent; O(log n)
        size_t erase(const K& key)           # 1 if key was in, else 0; O(log n)
        iterator begin() const
        iterator end() const
        size_t size() const
        bool empty() const
        void clear()
        size_t node_bytes() const            # bytes of the nodes (before malloc's own)
        bool valid() const                   # every invariant holds (the tests' check); O(n)
