"""Compact sparse Merkle tree: batch updates and proof generation over stored nodes.

The hashing and the proof format are specified in `rtc.protocol.proof` (what a verifier
needs); this module builds the tree by those rules. It is pure Python (``hashlib``
only) so that the format can be re-implemented and checked without the storage engine.

Node storage
------------

Batch updates and proof generation read the current tree through a
``NodeReader``: a callable mapping a *position* to the stored node record or
``None``.  The position of the node at depth ``d`` on path ``p`` is
``p`` truncated to its first ``d`` bits (``ceil(d/8)`` bytes, unused low bits
of the last byte zero) followed by ``d`` as a big-endian u16.  A record is the
65-byte hash preimage of the node: ``0x00 || path || value_hash`` for a leaf,
``0x01 || left || right`` for an inner node, so ``node hash = H(record)``.
Only non-empty nodes have records; a leaf's record sits at its compacted
position.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256

from rtc.protocol.proof import (
    EMPTY_HASH,
    HIGH_BITS_MASK,
    INNER_PREFIX,
    LEAF_PREFIX,
    MAX_DEPTH,
    Proof,
)

__all__ = [
    "NodeReader",
    "TreeCorruptionError",
    "TreeUpdate",
    "build_proof",
    "compute_root",
    "node_position",
    "update_tree",
    "update_tree_reference",
]

LEAF_TAG = 0x00
INNER_TAG = 0x01
_DEPTH_SUFFIX: tuple[bytes, ...] = tuple(d.to_bytes(2, "big") for d in range(MAX_DEPTH + 1))

NodeReader = Callable[[bytes], "bytes | None"]
"""Returns the stored record at a node position, or None if there is none."""

# A subtree result during an update: (hash, leaf record or None).  A leaf may
# still move up (compaction) so its record is carried until its final
# position is known; inner records are written where they are built.
_Result = tuple[bytes, "bytes | None"]
_EMPTY_RESULT: _Result = (EMPTY_HASH, None)


class TreeCorruptionError(RuntimeError):
    """The stored nodes contradict each other (e.g. a referenced child is missing)."""


def _bit(path: bytes, depth: int) -> int:
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


def node_position(depth: int, path: bytes) -> bytes:
    """Storage position of the node at `depth` on `path` (see module docs)."""
    whole, rest = divmod(depth, 8)
    if rest:
        return path[:whole] + bytes((path[whole] & HIGH_BITS_MASK[rest],)) + _DEPTH_SUFFIX[depth]
    return path[:whole] + _DEPTH_SUFFIX[depth]


ROOT_POSITION: bytes = node_position(0, EMPTY_HASH)


def _child_position(depth: int, path: bytes, bit: int) -> bytes:
    """Position of child `bit` of the node at `depth` on `path`."""
    child_depth = depth + 1
    prefix = bytearray(path[: (child_depth + 7) // 8])
    index, offset = divmod(depth, 8)
    if bit:
        prefix[index] |= 0x80 >> offset
    else:
        prefix[index] &= ~(0x80 >> offset) & 0xFF
    rest = child_depth % 8
    if rest:
        prefix[-1] &= HIGH_BITS_MASK[rest]
    return bytes(prefix) + _DEPTH_SUFFIX[child_depth]


def _right_half_start(path: bytes, depth: int) -> bytes:
    """Smallest path in the right child of the node at `depth` on `path`."""
    shift = 255 - depth
    return (((int.from_bytes(path, "big") >> shift) | 1) << shift).to_bytes(32, "big")


@dataclass(frozen=True)
class TreeUpdate:
    """Outcome of a batch update: the new root and the node records to store.

    `node_writes` maps a position to its new record, or to None when the
    record at that position must be deleted.
    """

    root: bytes
    node_writes: dict[bytes, bytes | None] = field(repr=False)


class _Updater:
    """One batch update over sorted (path, value_hash | None) changes."""

    __slots__ = ("read_node", "writes")

    def __init__(self, read_node: NodeReader) -> None:
        self.read_node = read_node
        self.writes: dict[bytes, bytes | None] = {}

    def _split(self, paths: list[bytes], depth: int, lo: int, hi: int) -> int:
        """First index in paths[lo:hi] whose bit `depth` is 1."""
        if _bit(paths[lo], depth):
            return lo
        if not _bit(paths[hi - 1], depth):
            return hi
        return bisect_left(paths, _right_half_start(paths[lo], depth), lo, hi)

    def build(self, depth: int, paths: list[bytes], hashes: list[bytes], lo: int, hi: int) -> _Result:
        """Build the subtree at `depth` holding exactly the leaves paths[lo:hi]."""
        count = hi - lo
        if count == 0:
            return _EMPTY_RESULT
        if count == 1:
            record = LEAF_PREFIX + paths[lo] + hashes[lo]
            return sha256(record).digest(), record
        if depth >= MAX_DEPTH:
            raise ValueError("two distinct leaves share a full 256-bit path")
        mid = self._split(paths, depth, lo, hi)
        left = self.build(depth + 1, paths, hashes, lo, mid)
        right = self.build(depth + 1, paths, hashes, mid, hi)
        # With >= 2 leaves here, an empty side implies an inner other side, so
        # no compaction is needed; place leaf children at the next depth.
        if left[1] is not None:
            self.writes[node_position(depth + 1, paths[lo])] = left[1]
        if right[1] is not None:
            self.writes[node_position(depth + 1, paths[mid])] = right[1]
        record = INNER_PREFIX + left[0] + right[0]
        self.writes[node_position(depth, paths[lo])] = record
        return sha256(record).digest(), None

    def update(
        self,
        depth: int,
        position: bytes,
        old: bytes | None,
        paths: list[bytes],
        hashes: list[bytes | None],
        lo: int,
        hi: int,
    ) -> _Result:
        """Apply changes paths[lo:hi] to the subtree at `position` whose record is `old`."""
        if old is not None and old[0] == INNER_TAG:
            return self._update_inner(depth, position, old, paths, hashes, lo, hi)
        # Empty subtree or a single leaf: nothing is stored below, so rebuild
        # it from the (few) leaves it will hold.
        if hi - lo == 1 and (old is None or old[1:33] == paths[lo]):
            # Fast path for the common case: one change replacing its own leaf.
            if old is not None:
                self.writes[position] = None  # provisional; overwritten if something lands here
            new_hash = hashes[lo]
            if new_hash is None:
                return _EMPTY_RESULT
            record = LEAF_PREFIX + paths[lo] + new_hash
            return sha256(record).digest(), record
        if old is not None:
            self.writes[position] = None  # provisional; overwritten if something lands here
            old_path = old[1:33]
            index = bisect_left(paths, old_path, lo, hi)
            if index == hi or paths[index] != old_path:
                keep_paths = paths[lo:index] + [old_path] + paths[index:hi]
                keep_hashes = hashes[lo:index] + [old[33:65]] + hashes[index:hi]
            else:
                keep_paths = paths[lo:hi]
                keep_hashes = hashes[lo:hi]
        else:
            keep_paths = paths[lo:hi]
            keep_hashes = hashes[lo:hi]
        live_paths = [p for p, h in zip(keep_paths, keep_hashes, strict=True) if h is not None]
        live_hashes = [h for h in keep_hashes if h is not None]
        return self.build(depth, live_paths, live_hashes, 0, len(live_paths))

    def _update_inner(
        self,
        depth: int,
        position: bytes,
        old: bytes,
        paths: list[bytes],
        hashes: list[bytes | None],
        lo: int,
        hi: int,
    ) -> _Result:
        if depth >= MAX_DEPTH:
            raise TreeCorruptionError(f"inner node stored at depth {depth}")
        mid = self._split(paths, depth, lo, hi)
        old_left = old[1:33]
        old_right = old[33:65]
        child_depth = depth + 1

        read_node = self.read_node
        left: _Result | None = None  # None means "untouched"
        right: _Result | None = None
        if lo < mid:
            child_position = node_position(child_depth, paths[lo])
            child = None if old_left == EMPTY_HASH else read_node(child_position)
            if child is None and old_left != EMPTY_HASH:
                raise TreeCorruptionError(f"missing node at {child_position.hex()}")
            left = self.update(child_depth, child_position, child, paths, hashes, lo, mid)
        if mid < hi:
            child_position = node_position(child_depth, paths[mid])
            child = None if old_right == EMPTY_HASH else read_node(child_position)
            if child is None and old_right != EMPTY_HASH:
                raise TreeCorruptionError(f"missing node at {child_position.hex()}")
            right = self.update(child_depth, child_position, child, paths, hashes, mid, hi)

        left_hash = old_left if left is None else left[0]
        right_hash = old_right if right is None else right[0]

        if left_hash == EMPTY_HASH or right_hash == EMPTY_HASH:
            self.writes[position] = None  # provisional
            if left_hash == right_hash:
                return _EMPTY_RESULT
            # One non-empty child: if it is a leaf, it moves up (compaction).
            if right_hash == EMPTY_HASH:
                survivor, survivor_bit = left, 0
            else:
                survivor, survivor_bit = right, 1
            if survivor is None:
                survivor_position = _child_position(depth, paths[lo], survivor_bit)
                record = self.read_node(survivor_position)
                if record is None:
                    raise TreeCorruptionError(f"missing node at {survivor_position.hex()}")
                if record[0] == LEAF_TAG:
                    self.writes[survivor_position] = None
                    return sha256(record).digest(), record
            elif survivor[1] is not None:
                return survivor
        # This node stays inner; leaf children settle one level down.
        if left is not None and left[1] is not None:
            self.writes[node_position(child_depth, paths[lo])] = left[1]
        if right is not None and right[1] is not None:
            self.writes[node_position(child_depth, paths[mid])] = right[1]
        record = INNER_PREFIX + left_hash + right_hash
        self.writes[position] = record
        return sha256(record).digest(), None


def _apply_path_changes(
    read_node: NodeReader, paths: list[bytes], value_hashes: list[bytes | None]
) -> TreeUpdate:
    """Batch update on raw paths (sorted, distinct); value hash None deletes.

    Exposed for tests that need crafted paths (e.g. two paths differing only
    in the last bit); production code goes through `update_tree`.
    """
    updater = _Updater(read_node)
    if not paths:
        root_record = read_node(ROOT_POSITION)
        return TreeUpdate(EMPTY_HASH if root_record is None else sha256(root_record).digest(), {})
    root_hash, leaf_record = updater.update(
        0, ROOT_POSITION, read_node(ROOT_POSITION), paths, value_hashes, 0, len(paths)
    )
    if leaf_record is not None:
        updater.writes[ROOT_POSITION] = leaf_record
    return TreeUpdate(root_hash, updater.writes)


def update_tree_reference(read_node: NodeReader, changes: Mapping[bytes, bytes | None]) -> TreeUpdate:
    """Compute the new root and node writes for `changes` ({key: value or None}).

    Only the nodes on the changed paths are read or rewritten; deletions
    re-compact the tree.  The current tree is not modified: the caller stores
    `node_writes` (e.g. in the same transaction as the leaves).
    """
    items = sorted(
        (sha256(key).digest(), None if value is None else sha256(value).digest())
        for key, value in changes.items()
    )
    paths = [path for path, _ in items]
    value_hashes = [value_hash for _, value_hash in items]
    return _apply_path_changes(read_node, paths, value_hashes)


def _compiled_update_tree() -> Callable[[NodeReader, Mapping[bytes, bytes | None]], TreeUpdate] | None:
    """The same update in the compiled core (native/src/merkle.rs), unless RTC_CORE=python."""
    if os.environ.get("RTC_CORE", "").strip().lower() == "python":
        return None
    try:
        from rtc_native import TreeCorrupt
        from rtc_native import update_tree as compiled
    except ImportError:
        return None

    def update_tree(read_node: NodeReader, changes: Mapping[bytes, bytes | None]) -> TreeUpdate:
        """`update_tree_reference`, in the compiled core."""
        try:
            root, writes = compiled(read_node, changes if type(changes) is dict else dict(changes))
        except TreeCorrupt as exc:
            raise TreeCorruptionError(str(exc)) from None
        return TreeUpdate(root, writes)

    return update_tree


#: What the store uses: the compiled core's update when it is installed, the reference otherwise.
update_tree = _compiled_update_tree() or update_tree_reference


def use_reference() -> None:
    """Update with the reference from now on, in this process (a node on the Python core)."""
    global update_tree
    update_tree = update_tree_reference


def _no_nodes(position: bytes) -> None:
    return None


def compute_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Root of the tree holding exactly `items` ((key, value) pairs), from scratch."""
    return update_tree(_no_nodes, dict(items)).root


def build_proof(read_node: NodeReader, key: bytes, value: bytes | None) -> Proof:
    """Walk the stored tree to prove `key`; `value` is the key's current value.

    The value comes from the caller's leaf table; it is checked against the
    leaf so that a proof never silently disagrees with the stored state.
    """
    path = sha256(key).digest()
    siblings: list[bytes] = []
    record = read_node(ROOT_POSITION)
    depth = 0
    while record is not None and record[0] == INNER_TAG:
        if _bit(path, depth):
            siblings.append(record[1:33])
            child = record[33:65]
        else:
            siblings.append(record[33:65])
            child = record[1:33]
        depth += 1
        if child == EMPTY_HASH:
            record = None
            break
        position = node_position(depth, path)
        record = read_node(position)
        if record is None:
            raise TreeCorruptionError(f"missing node at {position.hex()}")
    if record is None:
        if value is not None:
            raise TreeCorruptionError(f"key {key.hex()} has a value but no leaf")
        return Proof(key, None, tuple(siblings))
    leaf_path = record[1:33]
    leaf_value_hash = record[33:65]
    if leaf_path == path:
        if value is None or sha256(value).digest() != leaf_value_hash:
            raise TreeCorruptionError(f"leaf of key {key.hex()} does not match its value")
        return Proof(key, value, tuple(siblings))
    if value is not None:
        raise TreeCorruptionError(f"key {key.hex()} has a value but no leaf")
    return Proof(key, None, tuple(siblings), leaf_path, leaf_value_hash)


