"""Persistent store: commits, heights, reopen, proofs, integrity checks."""

from __future__ import annotations

import random
from pathlib import Path

import lmdb
import pytest
from state_reference import root_of

from rtc.protocol.proof import EMPTY_HASH, check_proof, verify_proof
from rtc.state import CommitHeightError, StateCorruptionError, StateError, StateStore


def commit(store: StateStore, changes: dict[bytes, bytes | None], height: int, **kwargs: object) -> bytes:
    overlay = store.begin()
    for key, value in changes.items():
        if value is None:
            overlay.delete(key)
        else:
            overlay.set(key, value)
    return store.commit(overlay, height, **kwargs)  # type: ignore[arg-type]


def test_fresh_store_is_empty(store: StateStore) -> None:
    assert store.height is None
    assert store.root == EMPTY_HASH
    assert store.get(b"a") is None
    assert store.scan() == []
    check_proof(store.root, store.prove(b"a"))
    store.check_integrity()


def test_commit_then_reopen_keeps_everything(store_path: Path) -> None:
    with StateStore.open(store_path) as store:
        root1 = commit(store, {b"a": b"1", b"b": b"2", b"": b"empty key"}, 1)
        root2 = commit(store, {b"b": None, b"c": b"3"}, 2)
        assert root1 != root2 and store.root == root2
        assert store.root == root_of({b"a": b"1", b"c": b"3", b"": b"empty key"})
    with StateStore.open(store_path) as store:
        assert store.height == 2
        assert store.root == root2
        assert store.scan() == [(b"", b"empty key"), (b"a", b"1"), (b"c", b"3")]
        assert store.get(b"b") is None
        store.check_integrity()
        commit(store, {}, 3)
        assert store.root == root2  # an empty block keeps the root


def test_commit_heights_are_checked(store_path: Path) -> None:
    with StateStore.open(store_path) as store:
        overlay = store.begin()
        overlay.set(b"k", b"v")
        with pytest.raises(CommitHeightError):
            store.commit(overlay, -1)
        store.commit(overlay, 5)  # first commit: any height >= 0
        for wrong in (5, 4, 7, 0):
            overlay = store.begin()
            overlay.set(b"k", b"other")
            with pytest.raises(CommitHeightError, match="next must be 6"):
                store.commit(overlay, wrong)
            assert store.height == 5 and store.get(b"k") == b"v"
        # A refused overlay is still usable for the right height.
        store.commit(overlay, 6)
        assert store.get(b"k") == b"other"
    with StateStore.open(store_path) as store:
        assert store.height == 6
        with pytest.raises(CommitHeightError):
            commit(store, {}, 8)
        commit(store, {}, 7)


def test_first_commit_may_be_height_zero(store: StateStore) -> None:
    commit(store, {b"genesis": b"1"}, 0)
    assert store.height == 0
    commit(store, {}, 1)
    assert store.height == 1


def test_commit_rejects_foreign_overlay(store: StateStore, tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "other") as other:
        with pytest.raises(StateError):
            store.commit(other.begin(), 1)


def test_empty_key(store: StateStore) -> None:
    overlay = store.begin()
    overlay.set(b"", b"")
    overlay.set(b"\x00", b"zero")
    store.commit(overlay, 1)
    assert store.get(b"") == b""
    assert store.scan() == [(b"", b""), (b"\x00", b"zero")]
    assert store.scan(b"", b"\x00") == [(b"", b"")]
    assert verify_proof(store.root, store.prove(b""))
    assert store.prove(b"").value == b""


def long_key_universe(rng: random.Random) -> list[bytes]:
    """Keys around the 478-byte storage boundary, many sharing their first 478 bytes."""
    heads = [b"h" * 478, b"h" * 477 + b"i", b"a" * 478]
    keys = {b"", b"h", b"h" * 100, b"i", b"z" * 1000}
    for head in heads:
        keys.add(head)
        keys.add(head[:-1])
        for _ in range(12):
            keys.add(head + rng.randbytes(rng.randint(1, 600)))
        keys.add(head + b"\x00")
        keys.add(head + b"\xff" * 3)
    return sorted(keys)


@pytest.mark.parametrize("seed", range(3))
def test_keys_of_any_length_keep_scan_order(store_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    universe = long_key_universe(rng)
    model: dict[bytes, bytes] = {}
    with StateStore.open(store_path) as store:
        for height in range(1, 8):
            changes: dict[bytes, bytes | None] = {}
            for key in rng.sample(universe, len(universe) // 2):
                changes[key] = None if rng.random() < 0.3 else rng.randbytes(rng.randint(0, 50))
            overlay = store.begin()
            for key, value in changes.items():
                if value is None:
                    overlay.delete(key)
                else:
                    overlay.set(key, value)
                    model[key] = value
                if value is None:
                    model.pop(key, None)
            # The overlay merges its pending long keys with committed ones in order.
            assert overlay.scan() == sorted(model.items())
            store.commit(overlay, height)
            assert store.scan() == sorted(model.items())
            for _ in range(30):
                start, end = rng.choice([None, *universe]), rng.choice([None, *universe])
                limit = rng.choice([None, 1, 5])
                expected = sorted(
                    (k, v) for k, v in model.items() if (start is None or k >= start) and (end is None or k < end)
                )
                assert store.scan(start, end, limit) == (expected if limit is None else expected[:limit])
            for key in universe:
                assert store.get(key) == model.get(key)
            assert store.root == root_of(model)
        proof = store.prove(max(model, key=len))
        assert verify_proof(store.root, proof)
        store.check_integrity()


def test_store_proofs_follow_commits(store: StateStore) -> None:
    pairs = {b"key%d" % i: b"value%d" % i for i in range(500)}
    commit(store, dict(pairs), 1)
    for key in list(pairs)[:50] + [b"missing%d" % i for i in range(50)]:
        proof = store.prove(key)
        assert proof.value == pairs.get(key)
        check_proof(store.root, proof)
    old_root, old_proof = store.root, store.prove(b"key3")
    commit(store, {b"key1": b"new", b"key2": None}, 2)
    assert store.prove(b"key1").value == b"new"
    assert store.prove(b"key2").value is None
    check_proof(store.root, store.prove(b"key2"))
    # key3 is unchanged, but a proof is tied to the root it was made for.
    assert verify_proof(old_root, old_proof)
    assert not verify_proof(store.root, old_proof)
    assert verify_proof(store.root, store.prove(b"key3"))


@pytest.mark.parametrize("seed", range(3))
def test_random_blocks_match_model_and_rebuild(store_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    universe = [rng.randbytes(rng.randint(0, 24)) for _ in range(3000)]
    model: dict[bytes, bytes] = {}
    store = StateStore.open(store_path)
    try:
        for height in range(1, 26):
            changes: dict[bytes, bytes | None] = {}
            for _ in range(rng.choice([0, 1, 10, 200, 1500])):
                key = rng.choice(universe)
                changes[key] = None if rng.random() < 0.3 else rng.randbytes(rng.randint(0, 64))
            commit(store, changes, height)
            for key, value in changes.items():
                if value is None:
                    model.pop(key, None)
                else:
                    model[key] = value
            assert store.root == root_of(model)
            if height % 8 == 0:
                store.close()
                store = StateStore.open(store_path)
                store.check_integrity()
        assert store.scan() == sorted(model.items())
        for key in rng.sample(universe, 100):
            assert store.get(key) == model.get(key)
            check_proof(store.root, store.prove(key))
        store.check_integrity()
    finally:
        store.close()


def test_integrity_check_detects_tampering(store_path: Path) -> None:
    with StateStore.open(store_path) as store:
        commit(store, {b"k%d" % i: b"v" for i in range(100)}, 1)
        store.check_integrity()
    env = lmdb.open(str(store_path), max_dbs=3)
    with env.begin(write=True) as txn:
        txn.put(b"\x00k7", b"tampered", db=env.open_db(b"leaves", txn=txn))
    env.close()
    with StateStore.open(store_path) as store:
        with pytest.raises(StateCorruptionError, match="root rebuilt"):
            store.check_integrity()
    env = lmdb.open(str(store_path), max_dbs=3)
    with env.begin(write=True) as txn:
        txn.put(b"\x00k7", b"v", db=env.open_db(b"leaves", txn=txn))
        txn.put(b"\xab\x00\x09", b"\x01" + bytes(64), db=env.open_db(b"nodes", txn=txn))  # stray node
    env.close()
    with StateStore.open(store_path) as store:
        with pytest.raises(StateCorruptionError, match="differs"):
            store.check_integrity()


def test_missing_nodes_fail_loudly(store_path: Path) -> None:
    from rtc.state.merkle import ROOT_POSITION

    with StateStore.open(store_path) as store:
        commit(store, {b"k%d" % i: b"v" for i in range(100)}, 1)
    env = lmdb.open(str(store_path), max_dbs=3)
    with env.begin(write=True) as txn:
        nodes = env.open_db(b"nodes", txn=txn)
        positions = [position for position, _ in txn.cursor(db=nodes).iternext() if position != ROOT_POSITION]
        for position in positions[:50]:
            txn.delete(position, db=nodes)
    env.close()
    with StateStore.open(store_path) as store:
        with pytest.raises(StateCorruptionError, match="missing node"):
            for i in range(100):
                store.prove(b"k%d" % i)
        overlay = store.begin()
        for i in range(100):
            overlay.set(b"k%d" % i, b"w")
        with pytest.raises(StateCorruptionError, match="missing node"):
            overlay.root()
    env = lmdb.open(str(store_path), max_dbs=3)
    with env.begin(write=True) as txn:
        txn.delete(ROOT_POSITION, db=env.open_db(b"nodes", txn=txn))
    env.close()
    with StateStore.open(store_path) as store:
        overlay = store.begin()
        overlay.set(b"k1", b"w")
        with pytest.raises(StateCorruptionError, match="root node"):
            overlay.root()
        with pytest.raises(StateCorruptionError, match="root node"):
            store.prove(b"k1")


def test_map_grows_on_demand(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "small", map_size=1 << 20) as store:
        for height in range(1, 4):
            commit(store, {b"%d-%d" % (height, i): bytes(200) for i in range(4000)}, height)
        assert len(store.scan()) == 12000
        store.check_integrity()


def test_opening_twice_in_one_process_is_refused(store: StateStore, store_path: Path) -> None:
    with pytest.raises(lmdb.Error):
        StateStore.open(store_path)


def test_closed_store_refuses_use(store_path: Path) -> None:
    store = StateStore.open(store_path)
    overlay = store.begin()
    store.close()
    with pytest.raises(StateError):
        store.get(b"a")
    with pytest.raises(StateError):
        overlay.get(b"a")
    store.close()  # idempotent


def test_the_roots_of_recent_commits_survive_a_reopen_and_old_ones_are_dropped(store_path: Path) -> None:
    """What a node checks an attestation of height H-2 against (rtc.node.attesting)."""
    from rtc.state.store import RECENT_ROOTS

    store = StateStore.open(store_path)
    roots = {height: commit(store, {b"k": str(height).encode()}, height) for height in range(1, RECENT_ROOTS + 6)}
    store.close()
    store = StateStore.open(store_path)
    top = RECENT_ROOTS + 5
    assert [store.root_at(h) for h in range(top - RECENT_ROOTS + 1, top + 1)] == [
        roots[h] for h in range(top - RECENT_ROOTS + 1, top + 1)]
    assert store.root_at(top - RECENT_ROOTS) is None and store.root_at(1) is None
    assert store.root_at(top + 1) is None and store.root_at(-1) is None
    store.close()
