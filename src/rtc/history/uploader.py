"""Every committed block's record to Swarm, in height order, without slowing consensus.

The uploader is a thread in the node process. Record H is built once block H+1 exists
(only then is H's commit canonical); then a small *head* naming record H and the newest
snapshot is uploaded, and the node's sequential feed at index H-1 points to that head. It
never skips a height: when Swarm or the RPC fails it waits and retries the same height.
CometBFT's block store is the durable queue, and a cursor file says where to resume after
a restart.

Every member builds the same record, so only one stores it: the validator whose turn it
is by height (`uploader_of`). The others compute its reference (to attest it and to point
their feeds at it), check that the record is there, and store it themselves only when it
is not there `takeover_seconds` after they first looked (its uploader is down or behind).
An uploader that missed a turn is taken to be absent: its next turns are stored at once
by the others, until a record of its turn is found stored (it is back), so a node that is
down costs the others one wait, not one per turn.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtc.cometbft import RPC, HeightUnavailable, RPCError, RPCUnavailable
from rtc.swarm import FeedSigner, Swarm, SwarmError, bytes_reference

from .record import BlockRecord, Head, history_topic
from .snapshot import Snapshots, upload_snapshot

log = logging.getLogger("rtc.history")

CURSOR_NAME = "history-cursor.json"  # in the node's state folder
SAVE_EVERY = 64  # blocks uploaded between two flushes of Swarm and the cursor
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
QUIET_START_FAILURES = 20  # CometBFT's RPC comes up after the app: no warning for that
TAKEOVER_SECONDS = 3.0  # how long a record may be missing before a node that is not its uploader stores it


def uploader_of(height: int, validators: list[dict[str, Any]]) -> str:
    """The address (upper-case hex) of the validator whose turn it is to store record `height`:
    the set that signed the block, ordered by address, in turn by height. Every node that
    holds the record computes the same one."""
    addresses = sorted(str(validator["address"]).upper() for validator in validators)
    return addresses[height % len(addresses)] if addresses else ""


@dataclass(frozen=True)
class ExecutedBlock:
    """A committed block's transactions and results as its record holds them (results as
    CometBFT's RPC shows them: data in base64)."""

    txs: list[bytes]
    results: list[dict[str, Any]]
    app_hash: bytes


class ExecutedBlocks:
    """The app's hand-off to the uploader in the same process: what each block it committed
    held and gave, so the uploader need not fetch and parse the block and its results back
    from CometBFT. Bounded: a lagging uploader falls back to CometBFT's block store."""

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self._blocks: dict[int, tuple[list[bytes], list[Any], bytes]] = {}
        self.arrived = threading.Event()  # wakes the uploader: a block was committed

    def add(self, height: int, txs: list[bytes], results: list[Any], app_hash: bytes) -> None:
        """Called by the app at Commit with its ExecTxResults: kept as given, so consensus pays for nothing more."""
        self._blocks[height] = (txs, results, app_hash)
        self._blocks.pop(height - self.keep, None)
        self.arrived.set()

    def take(self, height: int) -> ExecutedBlock | None:
        """The block, its results in the record's form (converted here, in the uploader's thread)."""
        block = self._blocks.pop(height, None)
        if block is None:
            return None
        txs, results, app_hash = block
        return ExecutedBlock(txs, [
            {"code": r.code, "data": base64.b64encode(r.data).decode(), "gas_wanted": r.gas_wanted,
             "gas_used": r.gas_used} for r in results], app_hash)


class RecordReferences:
    """The Swarm references of the records this node built, newest few, for its attestations:
    at ExtendVote(H) the app signs record H-2, which the uploader builds as soon as block H-1
    is committed (`wait` lets the app give it a moment)."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._references: dict[int, tuple[bytes, bytes]] = {}  # height -> (reference, app_hash)
        self._changed = threading.Condition()

    def add(self, height: int, reference: bytes, app_hash: bytes) -> None:
        with self._changed:
            self._references[height] = (reference, app_hash)
            self._references.pop(height - self.keep, None)
            self._changed.notify_all()

    def get(self, height: int, wait: float = 0.0) -> tuple[bytes, bytes] | None:
        """(reference, app_hash) of record `height`, waiting up to `wait` seconds for it."""
        with self._changed:
            self._changed.wait_for(lambda: height in self._references, timeout=wait)
            return self._references.get(height)


def fetch_record(rpc: RPC, height: int, previous: bytes | None, executed: ExecutedBlock | None = None) -> BlockRecord:
    """Block `height`'s record from the node's CometBFT; its transactions and results from
    `executed` (what this node's app just ran) when given, else from the block store."""
    signed = rpc.commit(height)
    if not signed.get("canonical"):
        raise RPCError(f"the commit of block {height} is not canonical yet", "commit")
    validators = rpc.validators(height)["validators"]
    if executed is None:
        block = rpc.block(height)
        results = rpc.block_results(height)
        executed = ExecutedBlock(
            txs=[base64.b64decode(tx) for tx in block["data"]["txs"] or []],
            results=[{"code": int(r.get("code", 0)), "data": r.get("data") or "",
                      "gas_wanted": int(r.get("gas_wanted", 0)), "gas_used": int(r.get("gas_used", 0))}
                     for r in results.get("txs_results") or []],
            app_hash=base64.b64decode(results.get("app_hash") or ""))  # []byte in this RPC answer: base64
    header = signed["signed_header"]["header"]
    return BlockRecord(chain_id=header["chain_id"], height=height, header=header,
                       commit=signed["signed_header"]["commit"], validators=validators, txs=executed.txs,
                       results=executed.results, app_hash=executed.app_hash, previous=previous)


class Cursor:
    """The next height to upload and the last record's reference, kept durably in a small file."""

    def __init__(self, path: Path, first_height: int = 1) -> None:
        self.path = path
        data = json.loads(path.read_text()) if path.exists() else {}
        self.next_height: int = int(data.get("next_height", first_height))
        self.previous: bytes | None = bytes.fromhex(data["previous"]) if data.get("previous") else None
        self.snapshot: dict[str, Any] | None = data.get("snapshot")

    def advance(self, height: int, reference: bytes, snapshot: dict[str, Any] | None) -> None:
        """Move in memory; `save` makes it durable (re-uploading after a crash is harmless)."""
        self.next_height, self.previous, self.snapshot = height + 1, reference, snapshot

    def save(self) -> None:
        if self.previous is None:
            return
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps({"next_height": self.next_height, "previous": self.previous.hex(),
                                       "snapshot": self.snapshot}, sort_keys=True))
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, self.path)


class HistoryUploader:
    def __init__(self, rpc_url: str, swarm: Swarm, signer: FeedSigner, chain_id: str, cursor_path: Path,
                 snapshots: Snapshots | None = None, poll_seconds: float = 0.3,
                 executed: ExecutedBlocks | None = None, references: RecordReferences | None = None,
                 first_height: int = 1, address: str | None = None, takeover_seconds: float = TAKEOVER_SECONDS) -> None:
        """`first_height`: the chain's initial height (a restored cluster's records start after its checkpoint).
        `address`: this node's validator address, to know its turns to store records (None: it stores every one)."""
        self.rpc = RPC(rpc_url)
        self.swarm = swarm
        self.signer = signer
        self.chain_id = chain_id
        self.topic = history_topic(chain_id)
        self.cursor = Cursor(cursor_path, first_height)
        self.first_height = first_height
        self.snapshots = snapshots
        self.executed = executed
        self.references = references
        self.poll_seconds = poll_seconds
        self.address = address.upper() if address else None
        self.takeover_seconds = takeover_seconds
        self.stored = self.found = self.took_over = 0  # records this node stored, found stored, stored for another
        self.absent: set[str] = set()  # uploaders that missed a turn: their turns are not waited for
        # A record built here, waiting for its uploader: (height, record, encoded, reference, uploader, first looked for)
        self._built: tuple[int, BlockRecord, bytes, bytes, str, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.warned = False

    def start(self) -> "HistoryUploader":
        self._thread = threading.Thread(target=self._run, name="history-uploader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        log.info("history: this node stored %d records, found %d stored by their uploaders, stored %d for an "
                 "uploader that did not", self.stored, self.found, self.took_over)
        self._stop.set()
        if self.executed is not None:
            self.executed.arrived.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.rpc.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                uploaded = self.step()
                self._recovered()
                if not uploaded:
                    self._idle()
            except HeightUnavailable as exc:
                log.warning("this node's block store starts at height %d, after %d (it was state-synced or pruned), "
                            "so it cannot publish a history feed of its own; the other nodes' feeds hold the "
                            "cluster's history", exc.lowest, self.cursor.next_height)
                return
            except (SwarmError, RPCError, OSError, KeyError, ValueError) as exc:
                starting = isinstance(exc, RPCUnavailable) and self.failures < QUIET_START_FAILURES
                if not self.warned and not starting:
                    log.warning("history upload of height %d waits: %s; retrying, no block is skipped",
                                self.cursor.next_height, _first_line(exc))
                    self.warned = True
                self._stop.wait(RETRY_SECONDS[min(self.failures, len(RETRY_SECONDS) - 1)])
                self.failures += 1

    def _idle(self) -> None:
        """Wait for the next committed block (or the poll interval, when the app does not say)."""
        if self.executed is None:
            self._stop.wait(self.poll_seconds)
            return
        self.executed.arrived.wait(self.poll_seconds)
        self.executed.arrived.clear()

    def step(self) -> int:
        """Upload every height whose next block exists; returns how many were uploaded.

        Swarm is flushed and the cursor saved once per batch, not per block: a crash
        re-uploads at most one batch, which is harmless (chunks are content-addressed and a
        feed update is the same chunk when repeated)."""
        latest = self.rpc.latest_height()
        done = 0
        try:
            while self.cursor.next_height < latest and not self._stop.is_set():
                if not self.upload(self.cursor.next_height):
                    break
                done += 1
                self._recovered()
                if done % SAVE_EVERY == 0:
                    self._save()
        finally:
            if done % SAVE_EVERY:
                self._save()
        return done

    def _recovered(self) -> None:
        """Say so at the first success after a wait (not when a long catch-up ends)."""
        if self.warned:
            log.info("history uploads resumed; next height %d", self.cursor.next_height)
        self.failures, self.warned = 0, False

    def _save(self) -> None:
        self.swarm.flush()
        self.cursor.save()

    def upload(self, height: int) -> bool:
        """Record (stored on this node's turn, else found stored), snapshot (when one was taken
        after this block), head, feed; then the cursor moves. False: come back later."""
        snapshot = self.cursor.snapshot
        snapshots = self.snapshots
        if snapshots is not None and snapshots.due(height) and snapshots.writing(height):
            return False  # the app is still writing it; come back
        built = self._record(height)
        if built is None:
            return False  # its uploader may still be storing it
        record, reference = built
        if snapshots is not None and snapshots.due(height) and snapshots.file(height).exists():
            manifest_reference, manifest = upload_snapshot(snapshots.file(height), height, record.app_hash, self.swarm)
            snapshots.manifest_file(height).write_bytes(manifest.encode())  # for state sync to serve
            snapshot = {"height": height, "manifest": manifest_reference.hex()}
            snapshots.prune()
        head = Head(self.chain_id, height, reference, snapshot)
        # A sequential feed starts at index 0: the chain's first height (a restored chain's is above 1).
        self.swarm.update_feed(self.signer, self.topic, height - self.first_height, self.swarm.upload(head.encode()))
        self.cursor.advance(height, reference, snapshot)
        return True


    def _record(self, height: int) -> tuple[BlockRecord, bytes] | None:
        """Record `height` and its reference, once it is in Swarm; None while its uploader may still store it.

        The record is built, encoded and hashed once, however often this is asked."""
        if self._built is not None and self._built[0] == height:
            _, record, encoded, reference, uploader, since = self._built
        else:
            executed = self.executed.take(height) if self.executed is not None else None
            record = fetch_record(self.rpc, height, self.cursor.previous, executed)
            encoded = record.encode()
            uploader = uploader_of(height, record.validators)
            if self.address is None or uploader == self.address:
                reference = self.swarm.upload(encoded)
                self.stored += 1
                self._attested(height, reference, record)
                return record, reference
            reference = bytes_reference(encoded)
            self._attested(height, reference, record)  # its attestation need not wait for the upload
            since = time.monotonic()
            self._built = (height, record, encoded, reference, uploader, since)
        if self.swarm.has(reference):
            self.found += 1
            self.absent.discard(uploader)  # it is back
        elif uploader not in self.absent and time.monotonic() - since < self.takeover_seconds:
            return None
        else:
            if uploader not in self.absent:
                log.info("record %d was not stored by its uploader %s within %.0f s; this node stores its turns "
                         "until it is back", height, uploader[:12], self.takeover_seconds)
                self.absent.add(uploader)
            self.swarm.upload(encoded)
            self.took_over += 1
        self._built = None
        return record, reference

    def _attested(self, height: int, reference: bytes, record: BlockRecord) -> None:
        if self.references is not None:
            self.references.add(height, reference, record.app_hash)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
