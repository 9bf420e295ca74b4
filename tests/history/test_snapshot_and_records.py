"""Snapshots and history records against the embedded Swarm store: round trips and forgeries."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtc.history import BlockRecord, HistoryError, SnapshotError
from rtc.history.snapshot import Manifest, restore_snapshot, upload_snapshot, write_snapshot
from rtc.state import StateStore
from rtc.swarm import LocalSwarm, NotFound


def filled_store(path: Path, count: int = 3000) -> StateStore:
    store = StateStore.open(path)
    overlay = store.begin()
    for i in range(count):
        overlay.set(b"k/%06d" % i, bytes([i % 251]) * (i % 700))
    overlay.set(b"long/" + b"x" * 600, b"a key longer than LMDB's limit")
    store.commit(overlay, 7)
    return store


def snapshot_of(store: StateStore, tmp_path: Path, swarm: LocalSwarm) -> tuple[bytes, Manifest]:
    with store.frozen() as frozen:
        path = write_snapshot(frozen, tmp_path / "snapshots")
    return upload_snapshot(path, store.height or 0, store.root, swarm)


def test_a_snapshot_rebuilds_the_same_root_and_height(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rtc.history.snapshot.PART_BYTES", 64 * 1024)  # several parts, pairs straddling them
    swarm = LocalSwarm.open(tmp_path / "swarm")
    store = filled_store(tmp_path / "state")
    reference, manifest = snapshot_of(store, tmp_path, swarm)
    assert len(manifest.parts) > 3 and manifest.entries == 3001
    assert Manifest.decode(swarm.download(reference)) == manifest
    restored = restore_snapshot(swarm, manifest, tmp_path / "restored")
    assert (restored.height, restored.root) == (7, store.root)
    assert restored.get(b"long/" + b"x" * 600) == b"a key longer than LMDB's limit"


def test_the_frozen_view_ignores_blocks_committed_after_it(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "state", 10)
    frozen = store.frozen()
    overlay = store.begin()
    overlay.set(b"k/new", b"later")
    store.commit(overlay, 8)
    assert frozen.height == 7 and b"k/new" not in dict(frozen.pairs())
    frozen.close()


def test_forged_snapshots_are_refused(tmp_path: Path) -> None:
    swarm = LocalSwarm.open(tmp_path / "swarm")
    store = filled_store(tmp_path / "state", 50)
    _, manifest = snapshot_of(store, tmp_path, swarm)
    lying = Manifest(manifest.height, b"\x01" * 32, manifest.entries, manifest.size, manifest.parts)
    with pytest.raises(SnapshotError, match="not the app_hash"):
        restore_snapshot(swarm, lying, tmp_path / "a")
    miscounted = Manifest(manifest.height, manifest.app_hash, manifest.entries + 1, manifest.size, manifest.parts)
    with pytest.raises(SnapshotError, match="pairs"):
        restore_snapshot(swarm, miscounted, tmp_path / "b")
    data = swarm.download(manifest.parts[0])
    truncated = Manifest(manifest.height, manifest.app_hash, manifest.entries, manifest.size - 3,
                         (swarm.upload(data[:-3]),))
    with pytest.raises(SnapshotError, match="ends inside"):
        restore_snapshot(swarm, truncated, tmp_path / "c")
    filled_store(tmp_path / "occupied", 1).close()
    with pytest.raises(SnapshotError, match="already holds"):
        restore_snapshot(swarm, manifest, tmp_path / "occupied")
    with pytest.raises(NotFound):
        restore_snapshot(swarm, Manifest(7, manifest.app_hash, 1, 1, (b"\x42" * 32,)), tmp_path / "d")


def test_records_decode_what_they_encode_and_refuse_junk() -> None:
    record = BlockRecord("c", 3, {"height": "3"}, {"signatures": []}, [], [b"\x00tx"], [
        {"code": 0, "data": "", "gas_wanted": 0, "gas_used": 5}], b"\x11" * 32, b"\x22" * 32)
    assert BlockRecord.decode(record.encode()) == record
    for junk in (b"", b"[]", b'{"format": "other"}', record.encode()[:-5], record.encode().replace(b'"height":3', b'"height":"x"')):
        with pytest.raises(HistoryError):
            BlockRecord.decode(junk)
