"""The key set behind the Ledger's liquidation-price indexes (orderbook/_btree.pxd), on its own.

``_index_replay`` runs a list of ops on two sets (one the ops act on, one its copy) and checks the
tree's invariants after every op; these tests run the same ops on sortedcontainers' SortedSet and
compare every result and both traversals (forward by ++ from begin(), backward by -- from end()).
The op lists are long and the keys many, so that leaves split (into a sibling with room, two into
three, one into two), merge and redeal, branches do the same, the root grows, and the set drains
to empty and fills again; keys repeat, absent keys are erased, and int64's extremes appear.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sortedcontainers import SortedSet

from orderbook.accounts import _index_fill, _index_replay

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EXTREMES = (INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX)


def _keys(rng, kind, n):
    # n keys of one shape: few prices (many owners a price, as the Ledger's are), wide, extreme,
    # or a run going up or down (the inserts a split must not leave half-full leaves behind)
    if kind == "dense":
        return [(rng.randrange(4), rng.randrange(3_000)) for _ in range(n)]
    if kind == "wide":
        return [(rng.randint(INT64_MIN, INT64_MAX), rng.randint(INT64_MIN, INT64_MAX))
                for _ in range(n)]
    if kind == "extreme":
        return [(rng.choice(EXTREMES), rng.choice(EXTREMES)) for _ in range(n)]
    start = rng.randrange(-10**6, 10**6)
    step = 1 if kind == "up" else -1
    return [(start + step * i, rng.randrange(5)) for i in range(n)]


def _expand(commands):
    # The commands hypothesis draws, as the flat op list _index_replay takes, with the model's
    # result of each op and its final sets.
    ops, expected = [], []
    model = [SortedSet(), SortedSet()]

    def run(name, a=0, b=0):
        ops.append((name, a, b))
        target = model[name.endswith("_copy")]
        if name in ("insert", "insert_copy"):
            expected.append((a, b) not in target)
            target.add((a, b))
        elif name in ("erase", "erase_copy"):
            expected.append(int((a, b) in target))
            target.discard((a, b))
        elif name in ("copy", "construct"):
            model[1] = SortedSet(model[0])
            expected.append(None)
        elif name == "clear":
            model[0].clear()
            expected.append(None)
        else:  # seek: a steps forward from the first key (at most to the end), b back
            at = max(0, min(a, len(model[0])) - b)
            expected.append(model[0][at] if at < len(model[0]) else None)

    for command, seed, n, kind in commands:
        rng = random.Random(seed)
        if command == "insert":
            for key in _keys(rng, kind, n):
                run("insert", *key)
        elif command == "erase_present":
            for key in rng.sample(list(model[0]), min(n, len(model[0]))):
                run("erase", *key)
        elif command == "erase_absent":
            for key in _keys(rng, kind, n):
                run("erase", *key)
        elif command == "drain":
            keys = list(model[0])
            rng.shuffle(keys)
            for key in keys:
                run("erase", *key)
        elif command == "copy_then_mutate":
            run(rng.choice(("copy", "construct")))
            for key in _keys(rng, kind, n):
                run(rng.choice(("insert_copy", "erase_copy")), *key)
        elif command == "seek":
            size = len(model[0])
            run("seek", rng.randrange(size + 2), rng.randrange(size + 2))
        else:
            run("clear")
    return ops, expected, model


COMMANDS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "insert", "insert", "erase_present", "erase_present",
                         "erase_absent", "drain", "copy_then_mutate", "seek", "seek", "clear"]),
        st.integers(0, 2**32),
        st.integers(0, 3_000),
        st.sampled_from(["dense", "wide", "extreme", "up", "down"]),
    ),
    max_size=25,
)


def _check(commands):
    ops, expected, model = _expand(commands)
    results, sets = _index_replay(ops)
    assert results == expected
    for (size, forward, backward), keys in zip(sets, model, strict=True):
        assert size == len(keys)
        assert forward == list(keys)
        assert backward == list(reversed(keys))


@given(COMMANDS)
def test_the_key_set_matches_a_sorted_set(commands):
    _check(commands)


def test_a_set_grows_three_levels_drains_to_empty_and_fills_again():
    # 40,000 keys: leaves of 32 under branches of 32 need a root above two levels of branches
    _check([("insert", 1, 40_000, "wide"), ("copy_then_mutate", 2, 3_000, "dense"),
            ("seek", 3, 0, "dense"), ("drain", 4, 0, "dense"), ("insert", 5, 3_000, "up"),
            ("erase_present", 6, 2_000, "dense"), ("insert", 7, 5_000, "down"),
            ("clear", 8, 0, "dense"), ("insert", 9, 2_000, "extreme"),
            ("insert", 10, 20_000, "dense"), ("erase_present", 11, 19_000, "dense")])


def test_a_copy_is_independent_of_its_source():
    ops = [("insert", 0, i) for i in range(1_000)] + [("construct", 0, 0)]
    ops += [("erase", 0, i) for i in range(0, 1_000, 2)]
    ops += [("insert_copy", 1, i) for i in range(50)]
    _, ((size0, forward0, _), (size1, forward1, _)) = _index_replay(ops)
    assert (size0, forward0) == (500, [(0, i) for i in range(1, 1_000, 2)])
    assert size1 == 1_050
    assert forward1 == [(0, i) for i in range(1_000)] + [(1, i) for i in range(50)]


def test_an_empty_set_walks_nowhere():
    results, ((size, forward, backward), _) = _index_replay(
        [("seek", 3, 0), ("erase", 1, 1), ("insert", 1, 1), ("erase", 1, 1), ("seek", 0, 5)])
    assert results == [None, 0, True, 1, None]
    assert (size, forward, backward) == (0, [], [])


@pytest.mark.parametrize(("pattern", "churn", "bound"), [
    (0, 0, 22.0),        # random keys
    (1, 0, 19.0),        # ascending
    (2, 0, 19.0),        # descending
    (3, 0, 20.5),        # owners ascending at 1,000 prices (bench_memory's positioned accounts)
    (0, 200_000, 23.0),  # random, then as many erase-and-insert pairs
])
def test_a_key_costs_at_most_its_budget(pattern, churn, bound):
    # Node bytes a key after 200,000 inserts (a std::set node is 48 B, 64 B of malloc chunk);
    # the bounds sit about 1 B above what the fill policy gives (_btree.pxd's header).
    size, node_bytes, _ = _index_fill(200_000, churn, pattern, 12345, lambda: None)
    assert size == 200_000
    assert node_bytes / size <= bound
