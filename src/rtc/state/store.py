"""Crash-safe key/value state on LMDB with a Merkle index.

Layout: one LMDB environment with three named databases.

* ``leaves``: ``0x00 || key -> value`` for keys of up to 478 bytes.  The
  one-byte prefix lets the empty key be stored (LMDB refuses zero-length
  keys) without changing the order.  A longer key (LMDB 0.9 caps its keys at
  511 bytes) is stored as ``0x00 || key[:478] || SHA-256(key) ->
  u32 len(tail) || tail || value`` with ``tail = key[478:]``: still in key
  order except among long keys sharing their first 478 bytes, which sit
  together and are sorted in memory when scanned.
* ``nodes``: Merkle node records by position (see the ``merkle`` module).
* ``meta``: ``height`` (u64 big-endian), ``root`` (32 bytes), ``format``
  (u32 big-endian).

Every block's writes go through a `BlockOverlay`; `StateStore.commit` writes
leaves, nodes, height and root in one synchronous LMDB write transaction, so
a crash at any point leaves either the previous or the new block on disk.

The store is single-threaded by design (one ABCI connection drives it):
share it between threads only behind a lock.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from functools import partial
from hashlib import sha256
from itertools import islice
from pathlib import Path
from typing import Any, Callable, cast

import lmdb

from rtc.protocol.proof import EMPTY_HASH, Proof

from . import merkle
from .merkle import (
    ROOT_POSITION,
    NodeReader,
    TreeCorruptionError,
    TreeUpdate,
    build_proof,
)

__all__ = [
    "BlockOverlay",
    "CommitHeightError",
    "FrozenState",
    "StaleOverlayError",
    "StateCorruptionError",
    "StateError",
    "StateStore",
]

DEFAULT_MAP_SIZE = 1 << 36
"""Initial LMDB map size (64 GiB of address space, not disk); grows on demand."""

_FORMAT_VERSION = 1
_KEY_PREFIX = b"\x00"
_DIRECT_KEY_LIMIT = 478
"""Keys up to this length are stored as they are; 1 + 478 + 32 = 511 = LMDB 0.9's key limit."""
_META_HEIGHT = b"height"
_META_ROOT = b"root"
_META_FORMAT = b"format"
_META_ROOT_AT = b"root/"  # + height (8 bytes): the roots of the last RECENT_ROOTS commits
RECENT_ROOTS = 16


Meter = Callable[[int], None]
"""Told of every entry an `iterate` steps over, returned or not (a committed entry a pending
write shadows or deletes, a pending deletion): called once per entry with its size in bytes
(key and value). It may raise to stop the iteration. The VM charges a call's fuel with it,
so what a scan skips is paid for too."""


class StateError(Exception):
    """Base class for state store errors."""


class CommitHeightError(StateError):
    """A commit was attempted at a height other than the next one."""


class StaleOverlayError(StateError):
    """An overlay or call buffer was used after it was committed, applied, or outdated."""


class StateCorruptionError(StateError):
    """The stored data contradicts itself (leaves, nodes and root disagree)."""


def _check_key(key: bytes) -> None:
    if type(key) is not bytes:
        raise TypeError(f"state keys must be bytes, not {type(key).__name__}")


def _check_value(value: bytes) -> None:
    if type(value) is not bytes:
        raise TypeError(f"state values must be bytes, not {type(value).__name__}")


def _check_bound(bound: bytes | None, name: str) -> None:
    if bound is not None and type(bound) is not bytes:
        raise TypeError(f"scan {name} must be bytes or None, not {type(bound).__name__}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError("scan limit must be a non-negative int or None")


class BlockOverlay:
    """Pending writes of one block on top of the committed state it was begun from.

    `_pending` maps key -> value, or None for a deletion. The overlay becomes stale (every
    use raises StaleOverlayError) once any overlay is committed to the store, including
    itself.
    """

    __slots__ = ("_pending", "_sorted_keys", "_done", "_store", "_generation", "_base_height", "_update")

    def __init__(self, store: StateStore) -> None:
        self._pending: dict[bytes, bytes | None] = {}
        self._sorted_keys: list[bytes] | None = []
        self._done = False
        self._store = store
        self._generation = store._generation
        self._base_height = store.height
        self._update: TreeUpdate | None = None

    @property
    def base_height(self) -> int | None:
        """Committed height this overlay builds on (None: empty store)."""
        return self._base_height

    def _check_usable(self) -> None:
        if self._done:
            raise StaleOverlayError("overlay was already committed or discarded")
        if self._generation != self._store._generation:
            raise StaleOverlayError("overlay was begun before the last commit; begin a new one")

    def get(self, key: bytes) -> bytes | None:
        """Value of `key` including pending writes, or None if absent."""
        self._check_usable()
        _check_key(key)
        pending = self._pending
        if key in pending:
            return pending[key]
        return self._store._committed_get(key)

    def set(self, key: bytes, value: bytes) -> None:
        """Write `key` (visible to this overlay, not yet committed)."""
        self._check_usable()
        _check_key(key)
        _check_value(value)
        self._record(key, value)

    def delete(self, key: bytes) -> None:
        """Delete `key`; deleting an absent key is a no-op."""
        self._check_usable()
        _check_key(key)
        self._record(key, None)

    def _record(self, key: bytes, value: bytes | None) -> None:
        pending = self._pending
        if key not in pending:
            self._sorted_keys = None
        pending[key] = value
        self._update = None

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with start <= key < end (None: unbounded), ascending by key bytes."""
        self._check_usable()
        _check_bound(start, "start")
        _check_bound(end, "end")
        _check_limit(limit)
        return list(islice(self._iter(start, end), limit))

    def iterate(self, start: bytes | None = None, end: bytes | None = None,
                meter: Meter | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with start <= key < end, ascending, read only as far as they are taken;
        `meter` is told of every entry stepped over. Use it within the block (before the
        next commit), like the overlay itself."""
        self._check_usable()
        _check_bound(start, "start")
        _check_bound(end, "end")
        return self._iter(start, end, meter)

    def _pending_in_range(self, start: bytes | None, end: bytes | None) -> tuple[list[bytes], int, int]:
        """The sorted pending keys and the index range [lo, hi) of those in range."""
        keys = self._sorted_keys
        if keys is None:  # not metered: whether it was sorted already must not change a call's fuel
            keys = self._sorted_keys = sorted(self._pending)
        lo = 0 if start is None else bisect_left(keys, start)
        hi = len(keys) if end is None else bisect_left(keys, end)
        return keys, lo, hi

    def _iter(self, start: bytes | None, end: bytes | None, meter: Meter | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Merge the pending writes over the committed state, ascending."""
        base = self._store._committed_iter(start, end, meter)
        mine, index, count = self._pending_in_range(start, end)
        if index >= count:
            yield from base
            return
        pending = self._pending
        for key, value in base:
            while index < count and mine[index] < key:
                own = pending[mine[index]]
                if meter is not None:
                    meter(len(mine[index]) + (len(own) if own is not None else 0))
                if own is not None:
                    yield mine[index], own
                index += 1
            if index < count and mine[index] == key:
                own = pending[key]
                if meter is not None:
                    meter(len(key) + (len(own) if own is not None else 0))
                index += 1
                if own is not None:
                    yield key, own
                continue
            yield key, value
        while index < count:
            own = pending[mine[index]]
            if meter is not None:
                meter(len(mine[index]) + (len(own) if own is not None else 0))
            if own is not None:
                yield mine[index], own
            index += 1

    def root(self) -> bytes:
        """Root the state would have if this overlay were committed now (cached)."""
        return self._tree_update().root

    def _tree_update(self) -> TreeUpdate:
        self._check_usable()
        if self._update is None:
            try:
                self._update = merkle.update_tree(self._store._node_reader(), self._pending)
            except TreeCorruptionError as exc:
                raise StateCorruptionError(str(exc)) from exc
        return self._update

    def discard(self) -> None:
        """Drop this overlay explicitly (same as letting it go)."""
        self._done = True


class StateStore:
    """Committed state: LMDB leaves, Merkle nodes and metadata."""

    def __init__(self, env: lmdb.Environment, path: Path) -> None:
        """Use `StateStore.open`."""
        self._env = env
        self._path = path
        self._leaves = env.open_db(b"leaves")
        self._nodes = env.open_db(b"nodes")
        self._meta = env.open_db(b"meta")
        self._generation = 0
        self._txn: lmdb.Transaction | None = None
        self._height: int | None = None
        self._root = EMPTY_HASH
        self._load_meta()
        self._txn = env.begin()

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE) -> StateStore:
        """Open (creating if needed) the store in directory `path`."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        is_new = not (directory / "data.mdb").exists()
        options: dict[str, Any] = {"lib_version": 0} if is_new else {}
        env = lmdb.open(
            str(directory),
            map_size=map_size,
            max_dbs=3,
            sync=True,  # fsync data pages on commit...
            metasync=True,  # ...and the meta page: a committed block survives power loss
            # New stores use the LMDB 0.9 engine; existing ones keep their own.
            **options,
        )
        try:
            env.reader_check()  # drop reader slots left by killed processes
            return cls(env, directory)
        except BaseException:
            env.close()
            raise

    def _load_meta(self) -> None:
        with self._env.begin(write=True) as txn:
            stored_format = txn.get(_META_FORMAT, db=self._meta)
            if stored_format is None:
                txn.put(_META_FORMAT, _FORMAT_VERSION.to_bytes(4, "big"), db=self._meta)
            elif int.from_bytes(stored_format, "big") != _FORMAT_VERSION:
                raise StateError(f"unsupported state format {int.from_bytes(stored_format, 'big')}")
            height = txn.get(_META_HEIGHT, db=self._meta)
            root = txn.get(_META_ROOT, db=self._meta)
        if height is None:
            if root is not None:
                raise StateCorruptionError("root stored without a height")
            return
        if root is None or len(root) != 32 or len(height) != 8:
            raise StateCorruptionError("malformed height/root metadata")
        self._height = int.from_bytes(height, "big")
        self._root = root

    # -- committed state -------------------------------------------------

    @property
    def path(self) -> Path:
        """Directory holding the LMDB files."""
        return self._path

    @property
    def height(self) -> int | None:
        """Last committed height, or None if nothing was ever committed."""
        return self._height

    @property
    def root(self) -> bytes:
        """Merkle root of the committed state (32 zero bytes when empty)."""
        return self._root

    def root_at(self, height: int) -> bytes | None:
        """The root committed at `height` if it is one of the last RECENT_ROOTS commits this
        store made (not across a restore: a snapshot brings one root), else None."""
        if height < 0 or self._height is None or not self._height - RECENT_ROOTS < height <= self._height:
            return None
        return cast("bytes | None", self._reader().get(_META_ROOT_AT + height.to_bytes(8, "big"), db=self._meta))

    def get(self, key: bytes) -> bytes | None:
        """Committed value of `key`, or None."""
        _check_key(key)
        return self._committed_get(key)

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Committed pairs with start <= key < end (None: unbounded), ascending."""
        _check_bound(start, "start")
        _check_bound(end, "end")
        _check_limit(limit)
        return list(islice(self._committed_iter(start, end), limit))

    def iterate(self, start: bytes | None = None, end: bytes | None = None,
                meter: Meter | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Committed pairs with start <= key < end, ascending, read only as far as they are
        taken; `meter` is told of every entry stepped over. Use it before the next commit."""
        _check_bound(start, "start")
        _check_bound(end, "end")
        return self._committed_iter(start, end, meter)

    def prove(self, key: bytes) -> Proof:
        """Proof of `key`'s committed value (or absence) against `self.root`."""
        _check_key(key)
        try:
            return build_proof(self._node_reader(), key, self._committed_get(key))
        except TreeCorruptionError as exc:
            raise StateCorruptionError(str(exc)) from exc

    def _reader(self) -> lmdb.Transaction:
        if self._txn is None:
            raise StateError("state store is closed")
        return self._txn

    def _committed_get(self, key: bytes) -> bytes | None:
        if len(key) <= _DIRECT_KEY_LIMIT:
            return cast("bytes | None", self._reader().get(_KEY_PREFIX + key, db=self._leaves))
        stored = cast("bytes | None", self._reader().get(_long_stored_key(key), db=self._leaves))
        if stored is None:
            return None
        full_key, value = _decode_long(stored_key_head=key[:_DIRECT_KEY_LIMIT], stored=stored)
        if full_key != key:
            raise StateCorruptionError(f"long key entry for {key[:16].hex()}... holds another key")
        return value

    def _node_reader(self) -> NodeReader:
        """Node lookup bound to the current read snapshot (no Python frame per read).

        Checks first that the stored root node matches the committed root, so
        a damaged tree fails loudly instead of yielding a wrong root.
        """
        read_node = cast(NodeReader, partial(self._reader().get, db=self._nodes))
        root_record = read_node(ROOT_POSITION)
        stored_root = EMPTY_HASH if root_record is None else sha256(root_record).digest()
        if stored_root != self._root:
            raise StateCorruptionError(
                f"root node hashes to {stored_root.hex()} but the committed root is {self._root.hex()}"
            )
        return read_node

    def _committed_iter(self, start: bytes | None, end: bytes | None,
                        meter: Meter | None = None) -> Iterator[tuple[bytes, bytes]]:
        cursor = self._reader().cursor(db=self._leaves)
        low = start or b""
        # Long keys are filed under their first _DIRECT_KEY_LIMIT bytes, so
        # seek there and skip what sorts before `start`.
        if not cursor.set_range(_KEY_PREFIX + low[:_DIRECT_KEY_LIMIT]):
            return
        for key, value in _decoded_entries(cursor, meter):
            if key < low:
                continue
            if end is not None and key >= end:
                return
            yield key, value

    def frozen(self) -> "FrozenState":
        """The committed state as it is now, readable from another thread while later blocks
        commit (an LMDB read transaction of its own): what a snapshot is written from."""
        txn = self._env.begin()
        height, root = txn.get(_META_HEIGHT, db=self._meta), txn.get(_META_ROOT, db=self._meta)
        if height is None or root is None:
            txn.abort()
            raise StateError("nothing committed yet")
        return FrozenState(txn, self._leaves, int.from_bytes(height, "big"), root)

    # -- writing -----------------------------------------------------------

    def begin(self) -> BlockOverlay:
        """Start collecting one block's writes on top of the committed state."""
        self._reader()
        return BlockOverlay(self)

    def commit(self, overlay: BlockOverlay, height: int) -> bytes:
        """Durably commit `overlay` as block `height` and return the new root.

        `height` must be `self.height + 1`; the first commit into an empty
        store may use any height >= 0.
        """
        self._reader()
        if not isinstance(overlay, BlockOverlay) or overlay._store is not self:
            raise StateError("overlay does not belong to this store")
        overlay._check_usable()
        if type(height) is not int:
            raise TypeError("height must be an int")
        if self._height is None:
            if height < 0:
                raise CommitHeightError(f"cannot commit negative height {height}")
        elif height != self._height + 1:
            raise CommitHeightError(
                f"cannot commit height {height}: committed height is {self._height}, "
                f"next must be {self._height + 1}"
            )
        update = overlay._tree_update()
        changes = sorted(overlay._pending.items())
        node_writes = sorted(update.node_writes.items())

        while True:
            try:
                self._write(changes, node_writes, height, update.root)
                break
            except lmdb.MapFullError:
                self._grow_map()

        overlay._done = True
        self._height = height
        self._root = update.root
        self._generation += 1
        self._renew_reader()
        return update.root

    def _write(
        self,
        changes: list[tuple[bytes, bytes | None]],
        node_writes: list[tuple[bytes, bytes | None]],
        height: int,
        root: bytes,
    ) -> None:
        with self._env.begin(write=True) as txn:
            leaves = txn.cursor(db=self._leaves)
            leaves.putmulti([_encode_leaf(key, value) for key, value in changes if value is not None])
            for key, value in changes:
                if value is None:
                    txn.delete(_stored_key(key), db=self._leaves)
            nodes = txn.cursor(db=self._nodes)
            nodes.putmulti([(position, record) for position, record in node_writes if record is not None])
            for position, record in node_writes:
                if record is None:
                    txn.delete(position, db=self._nodes)
            txn.put(_META_HEIGHT, height.to_bytes(8, "big"), db=self._meta)
            txn.put(_META_ROOT, root, db=self._meta)
            txn.put(_META_ROOT_AT + height.to_bytes(8, "big"), root, db=self._meta)
            if height >= RECENT_ROOTS:
                txn.delete(_META_ROOT_AT + (height - RECENT_ROOTS).to_bytes(8, "big"), db=self._meta)

    def _grow_map(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        self._env.set_mapsize(self._env.info()["map_size"] * 2)
        self._txn = self._env.begin()

    def _renew_reader(self) -> None:
        if self._txn is not None:
            self._txn.abort()
        self._txn = self._env.begin()

    # -- maintenance -------------------------------------------------------

    def check_integrity(self) -> None:
        """Rebuild the tree from the leaves and compare nodes and root exactly.

        Costs a full scan (about a second per 100k keys); meant for startup
        checks, tests and tooling, not for the block path.
        """
        leaves = dict(self._committed_iter(None, None))
        rebuilt = merkle.update_tree(lambda position: None, leaves)
        if rebuilt.root != self._root:
            raise StateCorruptionError(
                f"root rebuilt from leaves {rebuilt.root.hex()} != stored root {self._root.hex()}"
            )
        expected = {position: record for position, record in rebuilt.node_writes.items() if record is not None}
        cursor = self._reader().cursor(db=self._nodes)
        stored_count = 0
        for position, record in _pairs(cursor):
            stored_count += 1
            if expected.get(position) != record:
                raise StateCorruptionError(f"node at {position.hex()} differs from the rebuilt tree")
        if stored_count != len(expected):
            raise StateCorruptionError(f"{len(expected) - stored_count} tree nodes are missing")

    def close(self) -> None:
        """Release the LMDB environment; overlays of this store become unusable."""
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
            self._generation += 1
        self._env.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _stored_key(key: bytes) -> bytes:
    """LMDB key of a state key in `leaves` (see module docs)."""
    if len(key) <= _DIRECT_KEY_LIMIT:
        return _KEY_PREFIX + key
    return _long_stored_key(key)


def _long_stored_key(key: bytes) -> bytes:
    return _KEY_PREFIX + key[:_DIRECT_KEY_LIMIT] + sha256(key).digest()


def _encode_leaf(key: bytes, value: bytes) -> tuple[bytes, bytes]:
    """(LMDB key, LMDB value) of one state entry in `leaves`."""
    if len(key) <= _DIRECT_KEY_LIMIT:
        return _KEY_PREFIX + key, value
    tail = key[_DIRECT_KEY_LIMIT:]
    return _long_stored_key(key), len(tail).to_bytes(4, "big") + tail + value


def _decode_long(stored_key_head: bytes, stored: bytes) -> tuple[bytes, bytes]:
    """(full key, value) of a long-key entry whose key starts with `stored_key_head`."""
    tail_end = 4 + int.from_bytes(stored[:4], "big")
    if tail_end > len(stored):
        raise StateCorruptionError("truncated long-key entry")
    return stored_key_head + stored[4:tail_end], stored[tail_end:]


class FrozenState:
    """One committed height's key/value pairs; close it soon, since LMDB keeps its pages until then."""

    def __init__(self, txn: lmdb.Transaction, leaves: Any, height: int, root: bytes) -> None:
        self._txn = txn
        self._leaves = leaves
        self.height = height
        self.root = root

    def pairs(self) -> Iterator[tuple[bytes, bytes]]:
        """Every pair in ascending key order."""
        cursor = self._txn.cursor(db=self._leaves)
        if not cursor.set_range(_KEY_PREFIX):
            return
        yield from _decoded_entries(cursor)

    def close(self) -> None:
        self._txn.abort()

    def __enter__(self) -> "FrozenState":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decoded_entries(cursor: lmdb.Cursor, meter: Meter | None = None) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs from the cursor's position on, in raw key order.

    Long-key entries sharing a head are adjacent in LMDB but ordered by
    hash; each such run is sorted by full key before it is yielded (`meter`
    is told of each entry as it is read, so before the run is sorted).
    """
    direct_limit = _DIRECT_KEY_LIMIT + 1
    group_head: bytes | None = None
    group: list[tuple[bytes, bytes]] = []
    for stored_key, stored in _pairs(cursor):
        if meter is not None:
            meter(len(stored_key) + len(stored))
        if len(stored_key) > direct_limit:
            head = stored_key[1:direct_limit]
            if head != group_head:
                if group:
                    yield from sorted(group)
                    group = []
                group_head = head
            group.append(_decode_long(head, stored))
            continue
        if group:
            yield from sorted(group)
            group, group_head = [], None
        yield stored_key[1:], stored
    if group:
        yield from sorted(group)


def _pairs(cursor: lmdb.Cursor) -> Iterator[tuple[bytes, bytes]]:
    """Key/value pairs from the cursor's position on (always bytes: buffers are off)."""
    return cast("Iterator[tuple[bytes, bytes]]", cursor.iternext())
