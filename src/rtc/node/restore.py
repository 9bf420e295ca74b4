"""Rebuilding a node's state from Swarm alone: the newest snapshot, then every later block replayed.

Nothing is taken on trust from the store: the records from the snapshot's height to the
newest are checked link by link and commit by commit (`HistoryReader.verify`), the
snapshot must rebuild exactly the `app_hash` the next signed header commits to, and each
replayed block must give the `app_hash` its successor's header commits to. When
CometBFT's own data is gone too, `bootstrap_cometbft` writes its state at the restored
height, anchored in the block hash of the verified record.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rtc.abci import abci_pb
from rtc.cometbft import RPC, NodeHome
from rtc.history.reader import HistoryReader, Located
from rtc.history.record import HistoryError
from rtc.history.snapshot import SnapshotError, restore_snapshot
from rtc.history.uploader import CURSOR_NAME, Cursor
from rtc.swarm import Swarm
from rtc.tools import bootstrap_binary
from rtc.vm import Backend

from .app import ClusterApp
from .config import GenesisAppState, NodeConfig


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
        raise HistoryError(f"the history of feed owner {owner.hex()} names no snapshot yet; wait for the first one")
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
        settings = GenesisAppState.read(NodeHome(home)).settings
        backend = Backend.from_file((home / config.backend).resolve(), settings.limits)
        app = ClusterApp(store, backend, settings)
        for located in records[1:]:
            record = located.record
            request = abci_pb.RequestFinalizeBlock(height=record.height, txs=record.txs)
            request.time.FromJsonString(record.header["time"])
            response = app.finalize_block(request)
            if response.app_hash != record.app_hash:
                raise HistoryError(f"replaying block {record.height} gives app_hash {response.app_hash.hex()[:16]}…, "
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


def bootstrap_cometbft(home: NodeHome, height: int, block_hash: bytes, app_hash: bytes, rpc_servers: list[str],
                       timeout: float = 60.0) -> None:
    """CometBFT's state and commit at `height`, fetched from two peers by CometBFT's light client
    (`rtc-bootstrap`), which trusts only the block hash of the verified Swarm record of that height."""
    home.set_config({"statesync": {"rpc_servers": ",".join(rpc_servers), "trust_height": height,
                                   "trust_hash": block_hash.hex().upper(), "trust_period": "168h0m0s"}})
    # The light client also needs blocks height+1 and height+2 (the next validator sets and the commit).
    deadline = time.monotonic() + timeout
    for url in rpc_servers:
        with RPC(url, timeout=5) as rpc:
            while rpc.latest_height() < height + 2:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not reach height {height + 2}; is the cluster producing blocks?")
                time.sleep(0.2)
    result = subprocess.run([str(bootstrap_binary()), "--home", str(home.path), "--height", str(height),
                             "--app-hash", app_hash.hex()], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"rtc-bootstrap failed: {(result.stderr or result.stdout).strip()[-500:]}")
