"""A node history in Swarm made from scratch, as a node's uploader would make it, signed by any key.

With the genesis validator's key it is a genuine history; with another key (and writes of
the forger's own in the snapshot's state) it is what a hostile Swarm store or Bee could
serve: every record consistent, every commit correctly signed, by the wrong validators.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from rtc.abci import PublicKey, abci_pb
from rtc.cometbft import GenesisDoc
from rtc.cometbft.lightclient import header_hash, results_hash, txs_hash, validator_set_hash, vote_sign_bytes
from rtc.history.record import BlockRecord, Head, history_topic
from rtc.history.snapshot import upload_snapshot, write_snapshot
from rtc.node.app import ClusterApp
from rtc.node.config import ClusterSettings, GenesisAppState, NodeConfig
from rtc.state import StateStore
from rtc.swarm import FeedSigner, LocalSwarm
from rtc.vm import Backend

CHAIN_ID = "restore-test"
POWER = 10


def validator_json(key: SigningKey) -> dict[str, Any]:
    public = key.verify_key.encode()
    return {"address": hashlib.sha256(public).digest()[:20].hex().upper(),
            "pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(public).decode()},
            "voting_power": str(POWER), "proposer_priority": "0"}


def make_node_home(home: Path, component: Path, genesis_key: SigningKey) -> GenesisAppState:
    """A node home whose genesis names `genesis_key` as the one validator; its state is empty."""
    backend = Backend.from_file(component, ClusterSettings().limits)
    app_state = GenesisAppState(backend.code_hash, ClusterSettings())
    (home / "config").mkdir(parents=True)
    (home / "data").mkdir()
    (home / "data" / "blockstore.db").mkdir()  # CometBFT keeps its blocks: only the state is restored
    validator = validator_json(genesis_key)
    GenesisDoc.from_json({"chain_id": CHAIN_ID, "app_state": app_state.to_json(), "validators": [
        {"address": validator["address"], "pub_key": validator["pub_key"], "power": str(POWER), "name": "v0"}],
    }).write(home / "config" / "genesis.json")
    NodeConfig(abci=f"unix://{home}/abci.sock", backend=str(component), swarm=str(home / "swarm")).save(home)
    return app_state


@dataclass(frozen=True)
class History:
    owner: bytes
    block_hashes: dict[int, bytes]  # by height
    validators_hash: bytes
    app_hashes: dict[int, bytes]  # the state after each block


def make_history(work: Path, swarm: LocalSwarm, component: Path, app_state: GenesisAppState, key: SigningKey,
                 height: int, snapshot_at: int, forged_writes: dict[bytes, bytes] | None = None) -> History:
    """Blocks 1..`height` (no transactions) run through the real state machine, a snapshot after
    block `snapshot_at` (with `forged_writes` slipped into that block's state), each block's record,
    and heads at feed indexes 0..height-1 under a fresh feed owner."""
    backend = Backend.from_file(component, app_state.settings.limits)
    store = StateStore.open(work / "state")
    app = ClusterApp(store, backend, app_state.settings)
    public = key.verify_key.encode()
    validator = validator_json(key)
    validators_hash = validator_set_hash([validator])
    init = app.init_chain(abci_pb.RequestInitChain(
        chain_id=CHAIN_ID, app_state_bytes=json.dumps(app_state.to_json()).encode(),
        validators=[abci_pb.ValidatorUpdate(pub_key=PublicKey(ed25519=public), power=POWER)]))
    feed = FeedSigner(hashlib.sha256(key.encode() + b"feed").digest())
    topic = history_topic(CHAIN_ID)
    previous_app_hash, previous_block = init.app_hash, {"hash": "", "parts": {"total": 0, "hash": ""}}
    previous_reference: bytes | None = None
    snapshot: dict[str, Any] | None = None
    block_hashes: dict[int, bytes] = {}
    app_hashes: dict[int, bytes] = {}
    for h in range(1, height + 1):
        time = f"2024-01-01T00:00:{h:02d}Z"
        request = abci_pb.RequestFinalizeBlock(height=h, txs=[])
        request.time.FromJsonString(time)
        app.finalize_block(request)
        if h == snapshot_at and forged_writes:
            for k, v in forged_writes.items():
                app._pending.set(k, v)
        app.commit(abci_pb.RequestCommit())
        app_hashes[h] = store.root
        header = {
            "version": {"block": "11", "app": "1"}, "chain_id": CHAIN_ID, "height": str(h), "time": time,
            "last_block_id": previous_block, "last_commit_hash": "",
            "data_hash": txs_hash([]).hex().upper(), "validators_hash": validators_hash.hex().upper(),
            "next_validators_hash": validators_hash.hex().upper(), "consensus_hash": "AB" * 32,
            "app_hash": previous_app_hash.hex().upper(), "last_results_hash": results_hash([]).hex().upper(),
            "evidence_hash": "", "proposer_address": validator["address"],
        }
        block_hash = header_hash(header)
        block_id = {"hash": block_hash.hex().upper(), "parts": {"total": 1, "hash": "CD" * 32}}
        signature = {"block_id_flag": 2, "validator_address": validator["address"], "timestamp": time,
                     "signature": base64.b64encode(bytes(64)).decode()}
        signed = key.sign(vote_sign_bytes(CHAIN_ID, signature, h, 0, block_id)).signature
        signature["signature"] = base64.b64encode(signed).decode()
        commit = {"height": str(h), "round": 0, "block_id": block_id, "signatures": [signature]}
        if h == snapshot_at:
            with store.frozen() as frozen:
                path = write_snapshot(frozen, work / "snapshots")
            manifest_reference, _ = upload_snapshot(path, h, store.root, swarm)
            snapshot = {"height": h, "manifest": manifest_reference.hex()}
        record = BlockRecord(CHAIN_ID, h, header, commit, [validator], [], [], store.root, previous_reference)
        reference = swarm.upload(record.encode())
        head = swarm.upload(Head(CHAIN_ID, h, reference, snapshot).encode())
        swarm.update_feed(feed, topic, h - 1, head)
        previous_app_hash, previous_block, previous_reference = store.root, block_id, reference
        block_hashes[h] = block_hash
    store.close()
    return History(feed.owner, block_hashes, validators_hash, app_hashes)
