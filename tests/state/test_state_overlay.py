"""Block overlays and per-call buffers: reads, writes, scans, apply/discard."""

from __future__ import annotations

import random

import pytest
from state_reference import root_of

from rtc.state import StaleOverlayError, StateStore


def seed(store: StateStore, pairs: dict[bytes, bytes], height: int = 1) -> None:
    overlay = store.begin()
    for key, value in pairs.items():
        overlay.set(key, value)
    store.commit(overlay, height)


def test_overlay_reads_its_own_writes_over_committed(store: StateStore) -> None:
    seed(store, {b"a": b"1", b"c": b"3", b"e": b"5"})
    overlay = store.begin()
    assert overlay.get(b"a") == b"1"
    overlay.set(b"b", b"2")
    overlay.delete(b"c")
    overlay.set(b"e", b"five")
    overlay.delete(b"zzz")  # absent: no effect on reads
    assert overlay.get(b"b") == b"2"
    assert overlay.get(b"c") is None
    assert overlay.get(b"e") == b"five"
    assert overlay.get(b"zzz") is None
    # Committed state is untouched until commit.
    assert store.get(b"b") is None and store.get(b"c") == b"3" and store.get(b"e") == b"5"
    overlay.set(b"c", b"back")
    assert overlay.get(b"c") == b"back"


def test_overlay_scan_merges_pending_writes_and_deletes(store: StateStore) -> None:
    seed(store, {b"a": b"1", b"c": b"3", b"e": b"5", b"g": b"7"})
    overlay = store.begin()
    overlay.set(b"b", b"2")
    overlay.delete(b"c")
    overlay.set(b"e", b"five")
    overlay.set(b"h", b"8")
    overlay.delete(b"g")
    overlay.delete(b"f")
    assert overlay.scan() == [(b"a", b"1"), (b"b", b"2"), (b"e", b"five"), (b"h", b"8")]
    assert overlay.scan(b"b", b"h") == [(b"b", b"2"), (b"e", b"five")]
    assert overlay.scan(b"bb", b"e") == []
    assert overlay.scan(b"c", None) == [(b"e", b"five"), (b"h", b"8")]
    assert overlay.scan(None, b"b") == [(b"a", b"1")]
    assert overlay.scan(limit=2) == [(b"a", b"1"), (b"b", b"2")]
    assert overlay.scan(b"c", limit=1) == [(b"e", b"five")]
    assert overlay.scan(limit=0) == []
    # Scan after more writes sees them (sorted-key cache invalidated).
    overlay.set(b"0", b"zero")
    assert overlay.scan(limit=1) == [(b"0", b"zero")]


def test_scan_orders_by_raw_bytes(store: StateStore) -> None:
    overlay = store.begin()
    keys = [b"", b"\x00", b"\x00\x00", b"\x01", b"a", b"ab", b"b", b"\xff", b"\xff\x00"]
    for key in reversed(keys):
        overlay.set(key, key)
    assert [k for k, _ in overlay.scan()] == keys
    store.commit(overlay, 1)
    assert [k for k, _ in store.scan()] == keys
    assert [k for k, _ in store.scan(b"\x00", b"b")] == keys[1:6]


def test_root_tracks_writes_and_returns_to_committed(store: StateStore) -> None:
    seed(store, {b"a": b"1", b"b": b"2"})
    overlay = store.begin()
    assert overlay.root() == store.root
    overlay.set(b"a", b"changed")
    changed = overlay.root()
    assert changed != store.root and changed == root_of({b"a": b"changed", b"b": b"2"})
    overlay.set(b"a", b"1")
    assert overlay.root() == store.root
    overlay.delete(b"b")
    overlay.set(b"b", b"2")
    assert overlay.root() == store.root


def test_overlays_go_stale_after_a_commit(store: StateStore) -> None:
    first, second = store.begin(), store.begin()
    first.set(b"a", b"1")
    store.commit(first, 1)
    for layer in (first, second):
        with pytest.raises(StaleOverlayError):
            layer.get(b"a")
        with pytest.raises(StaleOverlayError):
            layer.set(b"a", b"2")
    with pytest.raises(StaleOverlayError):
        store.commit(second, 2)
    with pytest.raises(StaleOverlayError):
        store.commit(first, 2)
    assert store.height == 1


def test_key_and_value_types_are_checked(store: StateStore) -> None:
    overlay = store.begin()
    with pytest.raises(TypeError):
        overlay.set("text", b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        overlay.set(b"k", "v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        overlay.get(bytearray(b"k"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        overlay.scan("a")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        overlay.scan(limit=-1)


@pytest.mark.parametrize("seed_value", range(5))
def test_random_overlay_operations_match_a_dict(store: StateStore, seed_value: int) -> None:
    rng = random.Random(seed_value)
    universe = [bytes([rng.randrange(6)]) * rng.randint(0, 3) + bytes([rng.randrange(256)]) for _ in range(40)]
    committed = {key: b"c" + key for key in universe[:20]}
    seed(store, committed)
    model = dict(committed)
    overlay = store.begin()
    for _ in range(600):
        roll = rng.random()
        key = rng.choice(universe)
        if roll < 0.35:
            value = rng.randbytes(rng.randint(0, 4))
            overlay.set(key, value)
            model[key] = value
        elif roll < 0.55:
            overlay.delete(key)
            model.pop(key, None)
        elif roll < 0.75:
            assert overlay.get(key) == model.get(key)
        else:
            start = rng.choice([None, *universe])
            end = rng.choice([None, *universe])
            limit = rng.choice([None, 0, 1, 3, 10])
            items = sorted((k, v) for k, v in model.items() if (start is None or k >= start) and (end is None or k < end))
            assert overlay.scan(start, end, limit) == (items if limit is None else items[:limit])
    assert overlay.root() == root_of(model)
    store.commit(overlay, 2)
    assert store.scan() == sorted(model.items())
    assert store.root == root_of(model)
    store.check_integrity()
