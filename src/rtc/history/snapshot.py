"""State snapshots: every key/value pair at one height, in parts, as Swarm and state sync carry them.

A snapshot file is the pairs in ascending key order, each as
`u32 key length ‖ key ‖ u32 value length ‖ value` (big-endian). It is cut into parts of
PART_BYTES (a pair may straddle two parts); each part is uploaded on its own and the
manifest names them by Swarm reference. The manifest's reference identifies the
snapshot, and a restored state is accepted only if its Merkle root is the `app_hash`
that the signed header of the next block commits to.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from rtc.state import FrozenState, StateStore
from rtc.swarm import Swarm

log = logging.getLogger("rtc.history")

FORMAT = "rtc-snapshot/1"
PART_BYTES = 4 * 1024 * 1024
LENGTH = struct.Struct(">I")


class SnapshotError(ValueError):
    """A snapshot that is malformed or does not rebuild the state it claims; the message says how."""


@dataclass(frozen=True)
class Manifest:
    height: int  # the state after this block
    app_hash: bytes  # its Merkle root
    entries: int
    size: int  # bytes of the serialized pairs
    parts: tuple[bytes, ...]  # Swarm references, in order

    def encode(self) -> bytes:
        return orjson.dumps({"format": FORMAT, "height": self.height, "app_hash": self.app_hash.hex(),
                             "entries": self.entries, "size": self.size, "parts": [p.hex() for p in self.parts]},
                            option=orjson.OPT_SORT_KEYS)

    @classmethod
    def decode(cls, data: bytes) -> "Manifest":
        try:
            raw = orjson.loads(data)
            if raw.get("format") != FORMAT:
                raise SnapshotError(f"not a snapshot manifest of format {FORMAT}")
            return cls(int(raw["height"]), bytes.fromhex(raw["app_hash"]), int(raw["entries"]), int(raw["size"]),
                       tuple(bytes.fromhex(p) for p in raw["parts"]))
        except SnapshotError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(f"malformed snapshot manifest: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return orjson.loads(self.encode())


class Snapshots:
    """Snapshot files this node wrote (by the app at commit), waiting to be uploaded."""

    def __init__(self, directory: Path, every: int) -> None:
        self.directory = directory
        self.every = every
        self.pending: set[int] = set()  # being written now
        self.lock = threading.Lock()

    def due(self, height: int) -> bool:
        return self.every > 0 and height % self.every == 0

    def writing(self, height: int) -> bool:
        with self.lock:
            return height in self.pending

    def take(self, store: StateStore) -> None:
        """Called right after a due block commits: the pairs are written in a thread, from a
        read view frozen at this height, while later blocks go on committing."""
        frozen = store.frozen()
        with self.lock:
            self.pending.add(frozen.height)

        def write() -> None:
            try:
                write_snapshot(frozen, self.directory)
            except OSError as exc:
                log.error("snapshot of height %d not written: %s", frozen.height, exc)
            finally:
                frozen.close()
                with self.lock:
                    self.pending.discard(frozen.height)

        threading.Thread(target=write, name=f"snapshot-{frozen.height}", daemon=True).start()

    def file(self, height: int) -> Path:
        return self.directory / f"{height}.snap"

    def manifest_file(self, height: int) -> Path:
        return self.directory / f"{height}.manifest"

    def served(self) -> list[tuple[int, bytes]]:
        """(height, manifest bytes) of the snapshots uploaded and still on disk, newest first."""
        found = []
        for manifest in self.directory.glob("*.manifest"):
            height = int(manifest.stem)
            if self.file(height).exists():
                found.append((height, manifest.read_bytes()))
        return sorted(found, reverse=True)

    def prune(self, keep: int = 2) -> None:
        files = sorted(self.directory.glob("*.snap"), key=lambda p: int(p.stem))
        for old in files[:-keep]:
            old.unlink(missing_ok=True)
            self.manifest_file(int(old.stem)).unlink(missing_ok=True)


def write_snapshot(state: FrozenState, directory: Path) -> Path:
    """Serialize the frozen state to `<directory>/<height>.snap`, durably (written aside, then renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{state.height}.snap"
    partial = final.with_suffix(".partial")
    with open(partial, "wb") as out:
        for key, value in state.pairs():
            out.write(LENGTH.pack(len(key)) + key + LENGTH.pack(len(value)) + value)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, final)
    return final


def read_parts(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while part := source.read(PART_BYTES):
            yield part


def upload_snapshot(path: Path, height: int, app_hash: bytes, swarm: Swarm) -> tuple[bytes, Manifest]:
    """Upload the parts and then the manifest; returns the manifest's reference."""
    parts, size = [], 0
    for part in read_parts(path):
        parts.append(swarm.upload(part))
        size += len(part)
    entries = count_entries(path)
    manifest = Manifest(height, app_hash, entries, size, tuple(parts))
    return swarm.upload(manifest.encode()), manifest


class PairDecoder:
    """Decodes the pair stream as parts arrive, across part boundaries (for Swarm and state sync alike)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, part: bytes) -> Iterator[tuple[bytes, bytes]]:
        buffer = self.buffer
        buffer += part
        offset = 0
        while len(buffer) - offset >= 4:
            (key_len,) = LENGTH.unpack_from(buffer, offset)
            if len(buffer) - offset < 8 + key_len:
                break
            (value_len,) = LENGTH.unpack_from(buffer, offset + 4 + key_len)
            end = offset + 8 + key_len + value_len
            if len(buffer) < end:
                break
            yield bytes(buffer[offset + 4: offset + 4 + key_len]), bytes(buffer[offset + 8 + key_len: end])
            offset = end
        del buffer[:offset]

    def finish(self) -> None:
        if self.buffer:
            raise SnapshotError(f"the snapshot ends inside a key/value pair ({len(self.buffer)} bytes left over)")


class StateBuilder:
    """Builds a state at the snapshot's height from its pairs and accepts it only if the root matches."""

    def __init__(self, manifest: Manifest, store: StateStore) -> None:
        if store.height is not None:
            raise SnapshotError(f"{store.path} already holds state at height {store.height}; "
                                "restore into an empty folder")
        self.manifest = manifest
        self.store = store
        self.overlay = self.store.begin()
        self.decoder = PairDecoder()
        self.count = 0
        self.previous: bytes | None = None

    def add(self, part: bytes) -> None:
        for key, value in self.decoder.feed(part):
            if self.previous is not None and key <= self.previous:
                raise SnapshotError("the snapshot's keys are not in strictly ascending order")
            self.overlay.set(key, value)
            self.previous = key
            self.count += 1

    def finish(self) -> StateStore:
        """Commit the rebuilt state at the snapshot's height; on any mismatch, nothing is committed."""
        self.decoder.finish()
        if self.count != self.manifest.entries:
            raise SnapshotError(f"the snapshot holds {self.count} pairs, its manifest says {self.manifest.entries}")
        root = self.overlay.root()
        if root != self.manifest.app_hash:
            raise SnapshotError(f"the snapshot rebuilds state root {root.hex()[:16]}…, "
                                f"not the app_hash {self.manifest.app_hash.hex()[:16]}… it claims")
        self.store.commit(self.overlay, self.manifest.height)
        return self.store

    def abandon(self) -> None:
        self.overlay.discard()


def count_entries(path: Path) -> int:
    decoder, count = PairDecoder(), 0
    for part in read_parts(path):
        count += sum(1 for _ in decoder.feed(part))
    decoder.finish()
    return count


def restore_snapshot(swarm: Swarm, manifest: Manifest, state_dir: Path) -> StateStore:
    """Rebuild the state in an empty `state_dir` from the snapshot's parts, verified chunk by
    chunk by Swarm and as a whole by the Merkle root, which must be the manifest's app_hash
    (the caller checks that app_hash against a signed header)."""
    store = StateStore.open(state_dir)
    try:
        builder = StateBuilder(manifest, store)
        for reference in manifest.parts:
            builder.add(swarm.download(reference))
        return builder.finish()
    except BaseException:
        store.close()
        raise
