"""The compiled core's Merkle update against the reference (rtc/state/merkle.py).

Random batches of sets and deletes over a tree kept in memory, applied one after another as
blocks would: at every step both must give the same root and the same node writes in the
same order. (tests/state checks the reference against a naive tree, and the store against
crashes; the store uses the compiled update when it is installed.)
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtc_native
from rtc.state import merkle
from rtc.state.merkle import TreeCorruptionError, TreeUpdate, update_tree_reference


def compiled(read_node, changes) -> TreeUpdate:  # type: ignore[no-untyped-def]
    root, writes = rtc_native.update_tree(read_node, dict(changes))
    return TreeUpdate(root, writes)


def apply(nodes: dict[bytes, bytes], update: TreeUpdate) -> None:
    for position, record in update.node_writes.items():
        if record is None:
            nodes.pop(position, None)
        else:
            nodes[position] = record


def test_the_store_updates_with_the_compiled_core() -> None:
    assert merkle.update_tree is not update_tree_reference


KEYS = st.binary(min_size=0, max_size=6)
BATCH = st.dictionaries(KEYS, st.none() | st.binary(max_size=8), max_size=24)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(BATCH, min_size=1, max_size=12))
def test_random_batches_agree_step_by_step(batches: list[dict[bytes, bytes | None]]) -> None:
    nodes: dict[bytes, bytes] = {}
    for changes in batches:
        expected = update_tree_reference(nodes.get, changes)
        got = compiled(nodes.get, changes)
        assert got.root == expected.root
        assert list(got.node_writes.items()) == list(expected.node_writes.items())
        apply(nodes, expected)


@pytest.mark.parametrize("seed", range(3))
def test_large_trees_grow_and_shrink_alike(seed: int) -> None:
    rng = random.Random(seed)
    nodes: dict[bytes, bytes] = {}
    present: set[bytes] = set()
    for _ in range(30):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randrange(1, 400)):
            key = rng.randbytes(rng.randrange(1, 5))
            changes[key] = None if key in present and rng.random() < 0.4 else rng.randbytes(4)
        expected = update_tree_reference(nodes.get, changes)
        got = compiled(nodes.get, changes)
        assert (got.root, list(got.node_writes.items())) == (expected.root, list(expected.node_writes.items()))
        apply(nodes, expected)
        present |= {k for k, v in changes.items() if v is not None}
        present -= {k for k, v in changes.items() if v is None}
    everything = update_tree_reference(nodes.get, {key: None for key in present})
    assert compiled(nodes.get, {key: None for key in present}).root == everything.root == bytes(32)


def test_a_missing_node_is_corruption_in_both() -> None:
    nodes: dict[bytes, bytes] = {}
    apply(nodes, update_tree_reference(nodes.get, {bytes([i]): b"v" for i in range(50)}))
    inner = next(position for position, record in nodes.items() if record[0] == 1 and position != merkle.ROOT_POSITION)
    del nodes[inner]
    changes = {bytes([i]): b"w" for i in range(50)}
    with pytest.raises(TreeCorruptionError):
        update_tree_reference(nodes.get, changes)
    with pytest.raises(TreeCorruptionError):
        merkle.update_tree(nodes.get, changes)
