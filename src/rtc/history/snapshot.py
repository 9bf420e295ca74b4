"""State snapshots: every key/value pair at one height, in parts, as Swarm and state sync carry them.

A snapshot file is the pairs in ascending key order, each as
`u32 key length ‖ key ‖ u32 value length ‖ value` (big-endian). It is cut into parts of
PART_BYTES (a pair may straddle two parts); each part is uploaded on its own and the
manifest names them by Swarm reference. The manifest's reference identifies the
snapshot, and a restored state is accepted only if its Merkle root is the `app_hash`
that the signed header of the next block commits to.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from rtc.state import StateStore
from rtc.state.store import FrozenState
from rtc.swarm import Swarm

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
    entries = sum(1 for _ in _pairs(read_parts(path)))
    manifest = Manifest(height, app_hash, entries, size, tuple(parts))
    return swarm.upload(manifest.encode()), manifest


def _pairs(parts: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """Decode the pair stream across part boundaries; refuses a truncated or padded stream."""
    buffer = bytearray()
    for part in parts:
        buffer += part
        offset = 0
        while True:
            if len(buffer) - offset < 4:
                break
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
    if buffer:
        raise SnapshotError(f"the snapshot ends inside a key/value pair ({len(buffer)} bytes left over)")


def restore_snapshot(swarm: Swarm, manifest: Manifest, state_dir: Path) -> StateStore:
    """Rebuild the state in an empty `state_dir` from the snapshot's parts, verified chunk by
    chunk by Swarm and as a whole by the Merkle root, which must be the manifest's app_hash
    (the caller checks that app_hash against a signed header)."""
    store = StateStore.open(state_dir)
    if store.height is not None:
        store.close()
        raise SnapshotError(f"{state_dir} already holds state at height {store.height}; restore into an empty folder")
    overlay = store.begin()
    count, previous = 0, None
    for key, value in _pairs(swarm.download(ref) for ref in manifest.parts):
        if previous is not None and key <= previous:
            store.close()
            raise SnapshotError("the snapshot's keys are not in strictly ascending order")
        overlay.set(key, value)
        previous = key
        count += 1
    if count != manifest.entries:
        store.close()
        raise SnapshotError(f"the snapshot holds {count} pairs, its manifest says {manifest.entries}")
    root = overlay.root()
    if root != manifest.app_hash:
        store.close()
        raise SnapshotError(f"the snapshot rebuilds state root {root.hex()[:16]}…, "
                            f"not the app_hash {manifest.app_hash.hex()[:16]}… it claims")
    store.commit(overlay, manifest.height)
    return store
