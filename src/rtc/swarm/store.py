"""`LocalSwarm`: an embedded, persistent chunk store on LMDB with Bee's addressing.

Layout: one LMDB environment in a directory, named databases

* ``chunks``: 32-byte address -> chunk data, as Bee stores and serves it (``span || payload``
  for a content-addressed chunk, ``identifier || signature || span || payload`` for a
  single-owner chunk);
* ``meta``: ``format`` (u32 big-endian).

Nothing unverified goes in and nothing unverified comes out: `put_chunk` recomputes a
content address or recovers a SOC signature before writing, `upload` writes only chunks it
has just addressed itself, and every read recomputes the address of what it read.  Every
write transaction is synced to disk (data and meta pages) before the call returns.
Usable from several threads (LMDB serialises writers; each call has its own transaction).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import lmdb

from .base import Swarm, find_latest
from .bmt import REFERENCE_SIZE, cac_address
from .chunker import join, split
from .errors import ChunkInvalid, FeedConflict, NotFound, SwarmError
from .soc import (
    FeedSigner,
    SingleOwnerChunk,
    feed_identifier,
    feed_update_payload,
    make_soc,
    parse_feed_update,
    parse_soc,
    soc_address,
)

__all__ = ["LocalSwarm"]

DEFAULT_MAP_SIZE = 1 << 36
"""Initial LMDB map size (64 GiB of address space, not disk); grows on demand."""

_FORMAT_VERSION = 1
_META_FORMAT = b"format"
_WRITE_BATCH = 4096
"""Chunks per write transaction during an upload (16 MiB of data): bounds the memory a large upload holds."""


class LocalSwarm(Swarm):
    """Chunks, files and sequential feeds in a local directory, addressed exactly as Bee does."""

    def __init__(self, env: lmdb.Environment, path: Path) -> None:
        """Use `LocalSwarm.open`."""
        self._env = env
        self._path = path
        self._chunks = env.open_db(b"chunks")
        self._meta = env.open_db(b"meta")
        self._write_lock = threading.Lock()
        self._closed = False
        with env.begin(write=True) as txn:
            stored = txn.get(_META_FORMAT, db=self._meta)
            if stored is None:
                txn.put(_META_FORMAT, _FORMAT_VERSION.to_bytes(4, "big"), db=self._meta)
            elif int.from_bytes(stored, "big") != _FORMAT_VERSION:
                raise SwarmError(f"{path} holds chunk store format {int.from_bytes(stored, 'big')}, "
                                 f"this version reads {_FORMAT_VERSION}")

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE, synced: bool = True) -> LocalSwarm:
        """Open (creating if needed) the store in directory `path`.

        With `synced=False` a write survives the process but reaches the disk only at the
        next `flush()`: for a writer that flushes once per batch (the history uploader)
        instead of once per chunk batch."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        is_new = not (directory / "data.mdb").exists()
        options: dict[str, Any] = {"lib_version": 0} if is_new else {}  # as rtc.state: new stores use LMDB 0.9
        env = lmdb.open(str(directory), map_size=map_size, max_dbs=2, sync=synced, metasync=synced, **options)
        try:
            env.reader_check()  # drop reader slots left by killed processes
            return cls(env, directory)
        except BaseException:
            env.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    # -- content-addressed data ---------------------------------------------------------

    def upload(self, data: bytes) -> bytes:
        """Store every chunk of `data` durably; return its reference (Bee's POST /bytes one)."""
        self._check_open()
        pending: list[tuple[bytes, bytes]] = []

        def sink(address: bytes, chunk: bytes) -> None:
            pending.append((address, chunk))
            if len(pending) >= _WRITE_BATCH:
                self._write(pending)
                pending.clear()

        reference, _ = split(data, sink)
        self._write(pending)
        return reference

    def download(self, reference: bytes) -> bytes:
        """The data under `reference`, every chunk verified as it is read."""
        _check_reference(reference)
        with self._reader() as txn:
            def fetch(address: bytes) -> bytes:
                chunk = txn.get(address, db=self._chunks)
                if chunk is None:
                    if address == reference:
                        raise NotFound(f"no data under reference {reference.hex()}")
                    raise NotFound(f"chunk {address.hex()} of reference {reference.hex()} is missing")
                _verify_cac(address, chunk)
                return chunk

            return join(reference, fetch)

    def has(self, reference: bytes) -> bool:
        """Whether the root chunk of `reference` is here (ChunkInvalid if it is but is damaged)."""
        _check_reference(reference)
        with self._reader() as txn:
            chunk = txn.get(reference, db=self._chunks)
        if chunk is None:
            return False
        _verify_cac(reference, chunk)
        return True

    # -- single chunks ------------------------------------------------------------------

    def put_chunk(self, address: bytes, data: bytes) -> None:
        """Store one chunk after checking it: content-addressed, or a SOC whose signature recovers its owner.

        A SOC is written once: the same content again is a no-op, different content at its
        address raises FeedConflict.
        """
        _check_reference(address)
        try:
            is_cac = cac_address(data) == address
        except ValueError:
            is_cac = False
        if is_cac:
            self._write([(address, bytes(data))])
            return
        fresh = parse_soc(address, data)
        with self._write_lock:  # check-then-write without another writer in between
            existing = self._get_raw(address)
            stored = _valid_soc_or_none(address, existing)
            if stored is not None:
                if stored.wrapped == fresh.wrapped:
                    return  # the same content (possibly under another valid signature): written once
                raise FeedConflict(f"single-owner chunk {address.hex()} already holds other content")
            self._write([(address, bytes(data))], locked=True)  # new, or repairing a damaged copy

    def get_chunk(self, address: bytes) -> bytes:
        """Verified data of the chunk at `address`, content-addressed or single-owner."""
        _check_reference(address)
        chunk = self._get_raw(address)
        if chunk is None:
            raise NotFound(f"no chunk {address.hex()}")
        try:
            if cac_address(chunk) == address:
                return chunk
        except ValueError:
            pass
        parse_soc(address, chunk)
        return chunk

    # -- feeds --------------------------------------------------------------------------

    def update_feed(self, signer: FeedSigner, topic: bytes, index: int, reference: bytes,
                    timestamp: int = 0) -> None:
        """Write update `index` of the feed (signer.owner, topic) pointing at `reference`.

        `timestamp` defaults to 0 so the same update always makes the same chunk (the
        signature is deterministic too): repeating an update is a no-op, while a different
        update at a written index raises FeedConflict.
        """
        _check_reference(reference)
        address, data = make_soc(feed_identifier(topic, index), feed_update_payload(reference, timestamp), signer)
        self.put_chunk(address, data)

    def feed_at(self, owner: bytes, topic: bytes, index: int) -> bytes:
        """Reference of update `index` of (owner, topic), its signature checked (NotFound if absent)."""
        update = self._feed_update(owner, topic, index)
        if update is None:
            raise NotFound(f"feed 0x{owner.hex()}/{topic.hex()} has no update {index}")
        return parse_feed_update(update.payload)[1]

    def latest_feed(self, owner: bytes, topic: bytes) -> tuple[int, bytes] | None:
        """(index, reference) of the newest update, found by doubling then bisecting over indexes."""
        with self._reader() as txn:
            def present(index: int) -> bool:
                return txn.get(soc_address(feed_identifier(topic, index), owner), db=self._chunks) is not None

            latest = find_latest(present)
        if latest is None:
            return None
        return latest, self.feed_at(owner, topic, latest)

    def _feed_update(self, owner: bytes, topic: bytes, index: int) -> SingleOwnerChunk | None:
        address = soc_address(feed_identifier(topic, index), owner)
        data = self._get_raw(address)
        return None if data is None else parse_soc(address, data)

    # -- LMDB ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SwarmError("the chunk store is closed")

    def _reader(self) -> lmdb.Transaction:
        self._check_open()
        return self._env.begin(db=self._chunks)

    def _get_raw(self, address: bytes) -> bytes | None:
        with self._reader() as txn:
            return txn.get(address, db=self._chunks)

    def _write(self, items: list[tuple[bytes, bytes]], locked: bool = False) -> None:
        """Put `items` in one synced transaction, doubling the map when it is full."""
        if not items:
            return
        self._check_open()
        while True:
            try:
                with self._env.begin(write=True, db=self._chunks) as txn:
                    txn.cursor(db=self._chunks).putmulti(items)
                return
            except lmdb.MapFullError:
                if locked:
                    self._env.set_mapsize(self._env.info()["map_size"] * 2)
                else:
                    with self._write_lock:
                        self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def flush(self) -> None:
        self._check_open()
        self._env.sync(True)

    def close(self) -> None:
        """Release the LMDB environment."""
        if not self._closed:
            self._closed = True
            self._env.close()

    def __enter__(self) -> LocalSwarm:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalSwarm({str(self._path)!r})"


def _check_reference(reference: Any) -> None:
    if not isinstance(reference, bytes) or len(reference) != REFERENCE_SIZE:
        raise ValueError(f"a Swarm reference is {REFERENCE_SIZE} bytes")


def _verify_cac(address: bytes, chunk: bytes) -> None:
    try:
        actual = cac_address(chunk)
    except ValueError as exc:
        raise ChunkInvalid(f"chunk {address.hex()}: {exc}") from None
    if actual != address:
        raise ChunkInvalid(f"chunk stored at {address.hex()} hashes to {actual.hex()}")


def _valid_soc_or_none(address: bytes, data: bytes | None) -> SingleOwnerChunk | None:
    """The stored SOC if it is there and intact (a damaged copy may be replaced by a valid one)."""
    if data is None:
        return None
    try:
        return parse_soc(address, data)
    except ChunkInvalid:
        return None
