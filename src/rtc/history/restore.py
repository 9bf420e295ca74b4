"""Rebuilding a node's state from Swarm alone: the newest snapshot, then every later block replayed.

Nothing is taken on trust from the store: the records from the snapshot's height to the
newest are checked link by link and commit by commit (`HistoryReader.verify`), the
snapshot must rebuild exactly the `app_hash` the next signed header commits to, and each
replayed block must give the `app_hash` its successor's header commits to.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rtc.abci import abci_pb
from rtc.node.app import ClusterApp
from rtc.node.config import ClusterSettings, NodeConfig, read_genesis_app_state
from rtc.swarm import Swarm
from rtc.vm import Backend

from .reader import HistoryReader, Located
from .record import RecordError
from .snapshot import SnapshotError, restore_snapshot
from .uploader import CURSOR_NAME, Cursor


@dataclass(frozen=True)
class Restored:
    snapshot_height: int
    height: int  # the state now held: after this block
    app_hash: bytes
    block_hash: bytes  # of the newest replayed block, from its signed record: the anchor for CometBFT's light client
    replayed: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {"snapshot_height": self.snapshot_height, "height": self.height, "app_hash": self.app_hash.hex(),
                "block_hash": self.block_hash.hex(),
                "replayed_blocks": self.replayed, "seconds": round(self.seconds, 2)}


def restore_state(home: Path, swarm: Swarm, owner: bytes, chain_id: str, trusted_validators_hash: bytes | None,
                  progress: Callable[[str], None] = lambda _: None) -> Restored:
    started = time.monotonic()
    config = NodeConfig.load(home)
    state_dir = home / config.state_dir
    if state_dir.exists() and any(state_dir.iterdir()):
        raise SnapshotError(f"{state_dir} is not empty; move it away first (a restore never overwrites state)")
    reader = HistoryReader(swarm, owner, chain_id)
    head = reader.head()
    if not head.snapshot:
        raise RecordError(f"the history of feed owner {owner.hex()} names no snapshot yet; wait for the first one")
    manifest = reader.manifest(bytes.fromhex(head.snapshot["manifest"]))
    progress(f"newest record: height {head.height}; newest snapshot: height {manifest.height} "
             f"({manifest.entries} keys, {manifest.size} bytes in {len(manifest.parts)} parts)")
    newest = reader.record(head.record)
    records = reader.walk_back(Located(head.record, newest), manifest.height)
    progress(f"checking records {manifest.height}..{head.height}: contents, links and commit signatures")
    for _ in reader.verify(records, trusted_validators_hash):
        pass
    if records[0].record.app_hash != manifest.app_hash:
        raise SnapshotError(f"the snapshot claims app_hash {manifest.app_hash.hex()[:16]}…, but record "
                            f"{manifest.height} has {records[0].record.app_hash.hex()[:16]}…")
    progress(f"rebuilding the state of height {manifest.height} from the snapshot")
    building = state_dir.with_name(state_dir.name + ".restoring")  # renamed into place only when complete
    shutil.rmtree(building, ignore_errors=True)
    store = restore_snapshot(swarm, manifest, building)
    try:
        genesis = read_genesis_app_state(home)
        settings = ClusterSettings.from_json(genesis.get("settings", {}))
        backend = Backend.from_file((home / config.backend).resolve(), settings.limits)
        app = ClusterApp(store, backend, settings)
        for located in records[1:]:
            record = located.record
            request = abci_pb.RequestFinalizeBlock(height=record.height, txs=record.txs)
            request.time.FromJsonString(record.header["time"])
            response = app.finalize_block(request)
            if response.app_hash != record.app_hash:
                raise RecordError(f"replaying block {record.height} gives app_hash {response.app_hash.hex()[:16]}…, "
                                  f"the cluster's was {record.app_hash.hex()[:16]}…")
            app.commit(abci_pb.RequestCommit())
        progress(f"replayed blocks {manifest.height + 1}..{head.height}; state at height {store.height}")
        restored = Restored(manifest.height, store.height or 0, store.root, records[-1].record.block_hash,
                            len(records) - 1, time.monotonic() - started)
    finally:
        store.close()
    if state_dir.exists():
        state_dir.rmdir()  # checked empty above
    building.rename(state_dir)
    # The node's own uploads go on after the restored height (its feed already holds the rest).
    cursor = Cursor(state_dir / CURSOR_NAME)
    cursor.advance(restored.height, records[-1].reference, head.snapshot)
    cursor.save()
    return restored
