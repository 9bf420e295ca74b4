"""Merkle tree roots and incremental updates against an independent reference."""

from __future__ import annotations

import hashlib
import random

import pytest
from state_reference import ZERO, root_of, root_of_paths, sha

from rtc.protocol.proof import EMPTY_HASH
from rtc.state import compute_root
from rtc.state.merkle import (
    ROOT_POSITION,
    TreeUpdate,
    _apply_path_changes,
    update_tree,
)


class DictTree:
    """In-memory node store that applies TreeUpdates, to test the pure algorithm."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}
        self.root = EMPTY_HASH

    def apply(self, update: TreeUpdate) -> None:
        for position, record in update.node_writes.items():
            if record is None:
                self.nodes.pop(position, None)
            else:
                self.nodes[position] = record
        self.root = update.root

    def update(self, changes: dict[bytes, bytes | None]) -> bytes:
        self.apply(update_tree(self.nodes.get, changes))
        return self.root

    def update_paths(self, changes: dict[bytes, bytes | None]) -> bytes:
        paths = sorted(changes)
        self.apply(_apply_path_changes(self.nodes.get, paths, [changes[p] for p in paths]))
        return self.root


def scratch_nodes(pairs: dict[bytes, bytes]) -> dict[bytes, bytes]:
    tree = DictTree()
    tree.update(dict(pairs))
    return tree.nodes


def test_empty_tree_root_is_zero() -> None:
    assert EMPTY_HASH == ZERO == bytes(32)
    assert compute_root([]) == bytes(32)
    tree = DictTree()
    assert tree.update({}) == bytes(32)
    assert tree.update({b"missing": None}) == bytes(32)
    assert tree.nodes == {}


def test_single_leaf_root_is_the_leaf_hash() -> None:
    expected = sha(b"\x00" + sha(b"a") + sha(b"1"))
    assert compute_root([(b"a", b"1")]) == expected
    tree = DictTree()
    assert tree.update({b"a": b"1"}) == expected
    assert tree.nodes == {ROOT_POSITION: b"\x00" + sha(b"a") + sha(b"1")}


def test_three_leaves_built_by_hand() -> None:
    # path(a) = ca97.. (1100..), path(b) = 3e23.. (0011 1110..), path(c) = 2e7d.. (0010 1110..):
    # a is alone on the right of the root; b and c share 3 bits, split at depth 3.
    leaf = {k: sha(b"\x00" + sha(k) + sha(v)) for k, v in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]}

    def inner(left: bytes, right: bytes) -> bytes:
        return sha(b"\x01" + left + right)

    depth3 = inner(leaf[b"c"], leaf[b"b"])
    depth2 = inner(ZERO, depth3)
    depth1 = inner(depth2, ZERO)
    expected = inner(depth1, leaf[b"a"])
    pairs = {b"a": b"1", b"b": b"2", b"c": b"3"}
    assert root_of(pairs) == expected
    assert compute_root(pairs.items()) == expected
    # Golden value: changes here break every other implementation.
    assert expected.hex() == "8e2a164a410203f51300d7c6645b7a37f549768457be109acc126c63573a9e0a"


def test_empty_key_and_value_golden() -> None:
    pairs = {b"": b"", b"alice": b"100", b"bob": b"\x00\xff"}
    root = compute_root(pairs.items())
    assert root == root_of(pairs)
    assert root.hex() == "69b42c9d8aef72a9b0f3d1e626ab0f5b3799cc05f71b1a7d41818cceb20d6cba"


def test_root_independent_of_insertion_order_and_batching() -> None:
    rng = random.Random(11)
    pairs = {rng.randbytes(rng.randint(0, 12)): rng.randbytes(rng.randint(0, 20)) for _ in range(300)}
    expected_root = root_of(pairs)
    expected_nodes = scratch_nodes(pairs)
    for _ in range(5):
        items = list(pairs.items())
        rng.shuffle(items)
        tree = DictTree()
        position = 0
        while position < len(items):
            size = rng.randint(1, 40)
            tree.update(dict(items[position : position + size]))
            position += size
        assert tree.root == expected_root
        assert tree.nodes == expected_nodes


def test_root_independent_of_history() -> None:
    with_history = DictTree()
    with_history.update({b"A": b"1", b"B": b"2", b"C": b"3"})
    with_history.update({b"B": None})
    direct = DictTree()
    direct.update({b"A": b"1", b"C": b"3"})
    assert with_history.root == direct.root == root_of({b"A": b"1", b"C": b"3"})
    assert with_history.nodes == direct.nodes

    # Overwrite then restore, in separate batches, also leaves no trace.
    with_history.update({b"A": b"other"})
    assert with_history.root != direct.root
    with_history.update({b"A": b"1"})
    assert with_history.root == direct.root
    assert with_history.nodes == direct.nodes


def test_deleting_everything_recompacts_to_empty() -> None:
    rng = random.Random(5)
    keys = [rng.randbytes(8) for _ in range(200)]
    tree = DictTree()
    tree.update({key: b"v" for key in keys})
    rng.shuffle(keys)
    remaining = set(keys)
    for index in range(0, len(keys) - 1, 17):
        batch = keys[index : index + 17]
        remaining.difference_update(batch)
        tree.update(dict.fromkeys(batch))
        assert tree.root == root_of({key: b"v" for key in remaining})
        assert tree.nodes == scratch_nodes({key: b"v" for key in remaining})
    last = next(iter(remaining)) if remaining else None
    if last is not None:
        tree.update(dict.fromkeys(remaining - {last}))
        # One leaf left: a single record at the root position.
        assert tree.nodes == {ROOT_POSITION: b"\x00" + sha(last) + sha(b"v")}
        tree.update({last: None})
    assert tree.root == ZERO
    assert tree.nodes == {}


@pytest.mark.parametrize("seed", range(6))
def test_incremental_matches_scratch_over_random_batches(seed: int) -> None:
    rng = random.Random(seed)
    universe = [rng.randbytes(rng.randint(0, 6)) for _ in range(rng.choice([20, 150, 600]))]
    model: dict[bytes, bytes] = {}
    tree = DictTree()
    for _ in range(60):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randint(0, 60)):
            key = rng.choice(universe)
            roll = rng.random()
            if roll < 0.35:
                changes[key] = None  # may delete an absent key
            elif roll < 0.45 and key in model:
                changes[key] = model[key]  # rewrite with the same value
            else:
                changes[key] = rng.randbytes(rng.randint(0, 10))
        tree.update(changes)
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        assert tree.root == root_of(model)
        assert tree.nodes == scratch_nodes(model)


def _deep_paths(rng: random.Random, count: int) -> list[bytes]:
    """Paths clustered around a few bases so they share long prefixes (up to all 255 bits)."""
    bases = [rng.randbytes(32) for _ in range(3)]
    paths: set[bytes] = set()
    while len(paths) < count:
        number = int.from_bytes(rng.choice(bases), "big")
        for _ in range(rng.randint(0, 2)):
            number ^= 1 << rng.choice([0, 1, 2, 3, 7, 8, 100, 200, 254, 255])
        paths.add(number.to_bytes(32, "big"))
    return sorted(paths)


@pytest.mark.parametrize("seed", range(4))
def test_deep_shared_prefixes_match_reference(seed: int) -> None:
    """Crafted paths (not SHA-256 outputs) reach depth 256 and long single-child chains."""
    rng = random.Random(100 + seed)
    universe = _deep_paths(rng, 40)
    model: dict[bytes, bytes] = {}
    tree = DictTree()
    for _ in range(80):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randint(1, 8)):
            path = rng.choice(universe)
            changes[path] = None if rng.random() < 0.4 else rng.randbytes(32)
        tree.update_paths(changes)
        for path, value_hash in changes.items():
            if value_hash is None:
                model.pop(path, None)
            else:
                model[path] = value_hash
        assert tree.root == root_of_paths(sorted(model.items()))
        scratch = DictTree()
        scratch.update_paths(dict(model))
        assert tree.nodes == scratch.nodes


def test_two_paths_differing_only_in_last_bit() -> None:
    base = bytes(31) + b"\x00"
    twin = bytes(31) + b"\x01"
    tree = DictTree()
    tree.update_paths({base: sha(b"x"), twin: sha(b"y")})
    assert tree.root == root_of_paths([(base, sha(b"x")), (twin, sha(b"y"))])
    # 255 single-child inner nodes plus the split node, plus two leaves at depth 256.
    assert len(tree.nodes) == 258
    tree.update_paths({twin: None})
    assert tree.nodes == {ROOT_POSITION: b"\x00" + base + sha(b"x")}


def test_update_does_not_mutate_the_current_tree() -> None:
    tree = DictTree()
    tree.update({b"k%d" % i: b"v" for i in range(50)})
    before = dict(tree.nodes)
    update = update_tree(tree.nodes.get, {b"k1": None, b"new": b"x"})
    assert tree.nodes == before
    assert update.root == root_of({**{b"k%d" % i: b"v" for i in range(50) if i != 1}, b"new": b"x"})


def test_key_path_is_sha256() -> None:
    from rtc.protocol.proof import key_path

    assert key_path(b"abc") == hashlib.sha256(b"abc").digest()
