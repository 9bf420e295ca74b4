"""Independent, deliberately naive reference for the compact sparse Merkle tree.

Written from the specification only (not from rtc.state.merkle) so that the
tests compare two implementations, not one with itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

ZERO = bytes(32)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def bit(path: bytes, index: int) -> int:
    return (path[index // 8] >> (7 - index % 8)) & 1


def root_of_paths(leaves: Sequence[tuple[bytes, bytes]], depth: int = 0) -> bytes:
    """Root of a subtree holding (path, value_hash) leaves that share `depth` leading bits."""
    if not leaves:
        return ZERO
    if len(leaves) == 1:
        path, value_hash = leaves[0]
        return sha(b"\x00" + path + value_hash)
    left = [leaf for leaf in leaves if bit(leaf[0], depth) == 0]
    right = [leaf for leaf in leaves if bit(leaf[0], depth) == 1]
    return sha(b"\x01" + root_of_paths(left, depth + 1) + root_of_paths(right, depth + 1))


def root_of(pairs: Mapping[bytes, bytes]) -> bytes:
    """Root of the tree holding exactly `pairs` (key -> value)."""
    return root_of_paths(sorted((sha(key), sha(value)) for key, value in pairs.items()))
