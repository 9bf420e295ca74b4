"""CometBFT state sync with the snapshots this node also put in Swarm: serving them and restoring one.

A snapshot offered to CometBFT is {height, format 1, chunks = its parts, hash = the Swarm
reference of its manifest, metadata = the manifest}. A node restoring from peers accepts
an offer only if the manifest hashes to that reference and names the app_hash CometBFT's
light client verified; every chunk must have the Swarm reference the manifest lists, so
a peer that sends anything else is rejected and another one asked.
"""

from __future__ import annotations

import logging

from rtc.abci import abci_pb
from rtc.history.snapshot import PART_BYTES, Manifest, SnapshotError, Snapshots, StateBuilder
from rtc.state import StateStore
from rtc.swarm import bytes_reference

log = logging.getLogger("rtc.node")

SNAPSHOT_FORMAT = 1
Offer = abci_pb.ResponseOfferSnapshot
Apply = abci_pb.ResponseApplySnapshotChunk


class StateSync:
    def __init__(self, snapshots: Snapshots | None) -> None:
        self.snapshots = snapshots
        self.builder: StateBuilder | None = None
        self.next_chunk = 0

    # -- serving -------------------------------------------------------------------------

    def list(self) -> list[abci_pb.Snapshot]:
        if self.snapshots is None:
            return []
        return [abci_pb.Snapshot(height=height, format=SNAPSHOT_FORMAT, chunks=len(Manifest.decode(manifest).parts),
                                 hash=bytes_reference(manifest), metadata=manifest)
                for height, manifest in self.snapshots.served()]

    def load(self, height: int, format: int, chunk: int) -> bytes:
        if self.snapshots is None or format != SNAPSHOT_FORMAT:
            return b""
        path = self.snapshots.file(height)
        if not path.exists():
            return b""
        with open(path, "rb") as source:
            source.seek(chunk * PART_BYTES)
            return source.read(PART_BYTES)

    # -- restoring -----------------------------------------------------------------------

    def offer(self, snapshot: abci_pb.Snapshot, app_hash: bytes, store: StateStore) -> int:
        if snapshot.format != SNAPSHOT_FORMAT:
            return Offer.REJECT_FORMAT
        try:
            manifest = Manifest.decode(snapshot.metadata)
        except SnapshotError as exc:
            log.warning("refusing snapshot %d: %s", snapshot.height, exc)
            return Offer.REJECT
        if bytes_reference(snapshot.metadata) != snapshot.hash or manifest.height != snapshot.height \
                or len(manifest.parts) != snapshot.chunks or manifest.app_hash != app_hash:
            log.warning("refusing snapshot %d: its manifest does not match the offer or the verified app_hash",
                        snapshot.height)
            return Offer.REJECT
        try:
            self.builder = StateBuilder(manifest, store)
        except SnapshotError as exc:
            log.error("cannot restore a snapshot: %s", exc)
            return Offer.ABORT
        self.next_chunk = 0
        log.info("restoring snapshot %d (%d parts) offered by state sync", manifest.height, len(manifest.parts))
        return Offer.ACCEPT

    def apply(self, index: int, chunk: bytes, sender: str) -> abci_pb.ResponseApplySnapshotChunk:
        builder = self.builder
        if builder is None:
            return Apply(result=Apply.ABORT)
        if index != self.next_chunk or bytes_reference(chunk) != builder.manifest.parts[index]:
            log.warning("snapshot part %d from peer %s does not match the manifest; asking another peer", index, sender)
            return Apply(result=Apply.RETRY, refetch_chunks=[index], reject_senders=[sender] if sender else [])
        try:
            builder.add(chunk)
            self.next_chunk += 1
            if self.next_chunk == len(builder.manifest.parts):
                builder.finish()
                self.builder = None
                log.info("state restored at height %d by state sync", builder.manifest.height)
        except SnapshotError as exc:
            log.error("snapshot %d refused: %s", builder.manifest.height, exc)
            builder.abandon()
            self.builder = None
            return Apply(result=Apply.REJECT_SNAPSHOT)
        return Apply(result=Apply.ACCEPT)
