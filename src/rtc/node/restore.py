"""Rebuilding a node's state from Swarm alone: the newest snapshot, then every later block replayed.

Nothing is taken on trust from the store: the records from the snapshot's height to the
newest are checked link by link and commit by commit (`HistoryReader.verify`), the
snapshot must rebuild exactly the `app_hash` the next signed header commits to, and each
replayed block must give the `app_hash` its successor's header commits to. Those checks
only tie the history to the validators it names, so a restore starts from a `TrustAnchor`
the operator gives: a block hash at a height, the genesis validator set, or (said out
loud) trust on first use. When CometBFT's own data is gone too, `bootstrap_cometbft`
writes its state at the restored height, anchored in the block hash of the verified record.
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
from rtc.cometbft.lightclient import parse_header
from rtc.history.reader import HistoryReader, Located
from rtc.history.record import BlockRecord, HistoryError
from rtc.history.snapshot import SnapshotError, restore_snapshot
from rtc.history.uploader import CURSOR_NAME, Cursor
from rtc.swarm import Swarm
from rtc.tools import bootstrap_binary
from rtc.vm import load_backend

from .app import ClusterApp
from .config import GenesisAppState, NodeConfig


@dataclass(frozen=True)
class TrustAnchor:
    """What a restore believes before it reads Swarm: exactly one of

    - `block`: the hash of block `height` (from a node you trust: `/block?height=H` of its
      RPC); the records before it are tied to it by their hashes, those after by signatures
      of the validators it names;
    - `validator_set`: the set that signed the snapshot's block (the genesis file's, while
      the set has not changed since genesis);
    - `trust_on_first_use`: the validators the history itself names; what was trusted is
      reported, to be compared with a node you trust.
    """

    height: int = 0
    block_hash: bytes | None = None
    validators_hash: bytes | None = None
    first_use: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        if (self.block_hash is not None) + (self.validators_hash is not None) + self.first_use != 1:
            raise ValueError("a trust anchor is exactly one of: a block hash at a height, a validator set hash, "
                             "or trust on first use")
        if self.block_hash is not None and (self.height < 1 or len(self.block_hash) != 32):
            raise ValueError("a trusted block is a height of 1 or more and a 32-byte block hash")
        if self.validators_hash is not None and len(self.validators_hash) != 32:
            raise ValueError("a trusted validator set hash is 32 bytes")

    @classmethod
    def block(cls, height: int, block_hash: bytes, source: str = "--trust-hash") -> "TrustAnchor":
        return cls(height=height, block_hash=block_hash, source=source)

    @classmethod
    def validator_set(cls, validators_hash: bytes, source: str) -> "TrustAnchor":
        return cls(validators_hash=validators_hash, source=source)

    @classmethod
    def trust_on_first_use(cls) -> "TrustAnchor":
        return cls(first_use=True, source="trust on first use")

    @property
    def kind(self) -> str:
        return "block hash" if self.block_hash is not None else "validator set" if self.validators_hash else "first use"


@dataclass(frozen=True)
class Restored:
    snapshot_height: int
    height: int  # the state now held: after this block
    app_hash: bytes
    block_hash: bytes  # of the newest replayed block, from its signed record: the anchor for CometBFT's light client
    replayed: int
    seconds: float
    anchor: str = ""  # "block hash", "validator set" or "first use"
    trusted_height: int = 0  # the record the anchor was checked at (the first one, for first use)
    trusted_block_hash: bytes = b""  # that record's block hash
    trusted_validators_hash: bytes = b""  # the validator set that signed it

    @property
    def trusted(self) -> str:
        """What the restore believed, in words (printed, so it can be compared with a node one trusts)."""
        what = (f"block {self.trusted_height} {self.trusted_block_hash.hex()}, signed by validator set "
                f"{self.trusted_validators_hash.hex()}")
        if self.anchor == "first use":
            return f"trust on first use: {what}, as the history itself names them"
        return f"anchored in the {self.anchor}: {what}"

    def to_json(self) -> dict[str, object]:
        return {"snapshot_height": self.snapshot_height, "height": self.height, "app_hash": self.app_hash.hex(),
                "block_hash": self.block_hash.hex(),
                "replayed_blocks": self.replayed, "seconds": round(self.seconds, 2),
                "trust": {"anchor": self.anchor, "height": self.trusted_height,
                          "block_hash": self.trusted_block_hash.hex(),
                          "validators_hash": self.trusted_validators_hash.hex()}}


def restore_state(home: Path, swarm: Swarm, owner: bytes, chain_id: str, anchor: TrustAnchor,
                  progress: Callable[[str], None] = lambda _: None) -> Restored:
    if not isinstance(anchor, TrustAnchor):
        raise TypeError("restore_state needs a TrustAnchor: what the history in Swarm is checked against")
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
    if head.height <= manifest.height:
        # Record S's app_hash is signed only by header S+1, which is in record S+1.
        raise HistoryError(f"the newest record ({head.height}) is the snapshot's ({manifest.height}): no signed header "
                           f"commits to the snapshot's app_hash yet; wait for the next record and restore again")
    first = manifest.height
    if anchor.block_hash is not None:
        if anchor.height > head.height:
            raise HistoryError(f"the trusted block {anchor.height} is beyond the history: the newest record in Swarm "
                               f"is {head.height}; pass a block at or below it")
        first = min(first, anchor.height)
    newest = reader.record(head.record)
    records = reader.walk_back(Located(head.record, newest), first)
    progress(f"checking records {first}..{head.height}: contents, links and commit signatures")
    for _ in reader.verify(records, anchor.validators_hash):
        pass
    checked = records[0].record if anchor.block_hash is None else records[anchor.height - first].record
    if anchor.block_hash is not None and checked.block_hash != anchor.block_hash:
        raise HistoryError(f"record {anchor.height} is block {checked.block_hash.hex()}, but the trusted block "
                           f"{anchor.height} is {anchor.block_hash.hex()}: this history is not the cluster's "
                           "(check the feed owner and the Swarm store)")
    records = records[manifest.height - first:]  # from the snapshot's record on
    if records[0].record.app_hash != manifest.app_hash:
        raise SnapshotError(f"the snapshot claims app_hash {manifest.app_hash.hex()[:16]}…, but record "
                            f"{manifest.height} has {records[0].record.app_hash.hex()[:16]}…")
    progress(f"rebuilding the state of height {manifest.height} from the snapshot")
    building = state_dir.with_name(state_dir.name + ".restoring")  # renamed into place only when complete
    shutil.rmtree(building, ignore_errors=True)
    store = restore_snapshot(swarm, manifest, building)
    try:
        settings = GenesisAppState.read(NodeHome(home)).settings
        backend = load_backend((home / config.backend).resolve(), settings.limits)
        app = ClusterApp(store, backend, settings)
        for located in records[1:]:
            replay_block(app, located.record)
        progress(f"replayed blocks {manifest.height + 1}..{head.height}; state at height {store.height}")
        restored = Restored(manifest.height, store.height or 0, store.root, records[-1].record.block_hash,
                            len(records) - 1, time.monotonic() - started, anchor.kind, checked.height,
                            checked.block_hash, parse_header(checked.header).validators_hash)
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


class Divergence(HistoryError):
    """Re-executing a block gave another app_hash than its record holds (a batch validator's evidence)."""

    def __init__(self, height: int, recorded: bytes, replayed: bytes) -> None:
        super().__init__(f"replaying block {height} gives app_hash {replayed.hex()[:16]}…, "
                         f"the cluster's was {recorded.hex()[:16]}…")
        self.height, self.recorded, self.replayed = height, recorded, replayed


def replay_block(app: ClusterApp, record: BlockRecord, strict: bool = True) -> bytes:
    """Execute a recorded block as CometBFT would have (its transactions, its header's time)
    and commit it; Divergence, with nothing committed, if the state differs from the record's.
    Not `strict`: commit what this code computes whatever the record says (a validator that
    caught a lie goes on with the right state, to know what the cluster should have attested)."""
    request = abci_pb.RequestFinalizeBlock(height=record.height, txs=record.txs)
    request.time.FromJsonString(record.header["time"])
    response = app.finalize_block(request)
    if strict and response.app_hash != record.app_hash:
        raise Divergence(record.height, record.app_hash, response.app_hash)
    app.commit(abci_pb.RequestCommit())
    return response.app_hash


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
