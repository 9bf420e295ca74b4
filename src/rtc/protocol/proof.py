"""Proofs against a cluster's `app_hash`: the tree's hashing, the proof format and the check.

What a client in any language needs to believe a value a node returns: the state after
block H is a compact sparse Merkle tree whose root is the `app_hash` in header H+1. This
module is pure Python (``hashlib`` only); the specification below is normative, and
`rtc.state.merkle` builds and updates the tree by the same rules.

Specification
=============

Hash function ``H`` is SHA-256.  ``||`` is byte concatenation.

* ``path(key) = H(key)``: 256 bits.  Bit ``i`` of a path is bit ``7 - i % 8``
  of byte ``i // 8`` (bit 0 is the most significant bit of byte 0).
* Empty subtree: ``EMPTY = 32 zero bytes``.
* Leaf: ``leaf_hash = H(0x00 || path(key) || H(value))``.
* Inner node: ``inner_hash = H(0x01 || left || right)``.  At depth ``i`` bit
  ``i`` of a path chooses the left (0) or right (1) child.
* Compaction: a subtree holding exactly one leaf is represented by that
  leaf's hash at the subtree's root (the leaf sits at the shallowest depth at
  which it is alone); a subtree holding no leaf is ``EMPTY``.  Therefore an
  inner node always has at least two leaves below it, and never has one
  ``EMPTY`` child and one *leaf* child (one ``EMPTY`` child and one *inner*
  child is normal: it happens where two paths share a long prefix).
* Root of the empty tree: ``EMPTY``.  The root is a function of the set of
  ``(key, value)`` pairs only, never of insertion order or history.

Proof
-----

A proof for ``key`` against ``root`` has ``key``, ``value`` (``None`` for a
proof of absence), ``siblings`` (the sibling hashes met on the walk from the
root, depth 0 first, down to the depth ``d = len(siblings)`` where the walk
ended) and, for a proof of absence that ended at a leaf of another key,
``other_path`` and ``other_value_hash`` of that leaf.  The walk ends at one of:

1. the key's own leaf (membership): ``node = H(0x00 || path || H(value))``;
2. another key's leaf (absence): ``node = H(0x00 || other_path ||
   other_value_hash)``;
3. an empty subtree (absence): ``node = EMPTY``.

A verifier must reject the proof unless all of these hold:

* ``root`` and every sibling are 32 bytes; ``other_path`` and
  ``other_value_hash`` are both present (32 bytes each) or both absent, and
  are absent when ``value`` is present.
* ``d <= 256`` when the walk ends at a leaf, ``d <= 255`` when it ends at
  ``EMPTY``.
* Case 2: ``other_path != path`` (otherwise the key exists) and the first
  ``d`` bits of ``other_path`` equal those of ``path`` (the other leaf must lie
  on the key's walk).
* Shape: if ``d > 0`` the last sibling ``siblings[d-1]`` is not ``EMPTY``.
  A leaf next to an empty sibling would have been compacted one level up, and
  an ``EMPTY`` node next to an empty sibling means the walk should have ended
  one level up; accepting either would let two different trees share a root.
* Folding: for ``i = d-1`` down to ``0``: ``node = H(0x01 || siblings[i] ||
  node)`` if bit ``i`` of ``path`` is 1, else ``H(0x01 || node ||
  siblings[i])``; finally ``node == root``.

Binary proof encoding (``Proof.to_bytes``), all integers big-endian::

    u8  version = 1
    u8  kind: 0 = absent (walk ended at EMPTY), 1 = present, 2 = absent
        (walk ended at another leaf)
    u32 key length, key bytes
    kind 1: u32 value length, value bytes
    kind 2: other_path (32 bytes), other_value_hash (32 bytes)
    u16 sibling count n (0..256)
    ceil(n/8) bytes bitmap: bit i (MSB first) set = sibling i is not EMPTY;
        unused trailing bits are 0
    the non-EMPTY siblings, 32 bytes each, in order (never all zero)

Decoding is strict: anything else (trailing bytes, unknown version or kind,
padding bits set, an explicit all-zero sibling) is rejected, so each proof
has exactly one encoding.  JSON form (``Proof.to_json``): an object with
``key`` and ``value`` (lower-case hex, ``value`` null when absent),
``siblings`` (list of 64-hex-digit strings, EMPTY written as zeros),
``other_path`` and ``other_value_hash`` (hex or null).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

__all__ = [
    "EMPTY_HASH",
    "HASH_SIZE",
    "HIGH_BITS_MASK",
    "INNER_PREFIX",
    "LEAF_PREFIX",
    "MAX_DEPTH",
    "Proof",
    "ProofError",
    "check_proof",
    "inner_hash",
    "key_path",
    "leaf_hash",
    "verify_proof",
]

EMPTY_HASH: bytes = bytes(32)
"""Hash of an empty subtree and root of the empty tree."""

HASH_SIZE = 32
MAX_DEPTH = 256
LEAF_PREFIX = b"\x00"
INNER_PREFIX = b"\x01"
# Mask keeping the first `r` bits of a byte, for r in 0..7.
HIGH_BITS_MASK: tuple[int, ...] = tuple((0xFF00 >> r) & 0xFF for r in range(8))


class ProofError(ValueError):
    """A proof is malformed or does not verify; the message says why."""



def key_path(key: bytes) -> bytes:
    """The 256-bit tree path of a key."""
    return sha256(key).digest()


def leaf_hash(path: bytes, value_hash: bytes) -> bytes:
    """Hash of a leaf at `path` whose value hashes to `value_hash`."""
    return sha256(LEAF_PREFIX + path + value_hash).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an inner node with the given child hashes."""
    return sha256(INNER_PREFIX + left + right).digest()



_KIND_ABSENT_EMPTY = 0
_KIND_PRESENT = 1
_KIND_ABSENT_OTHER = 2
_PROOF_VERSION = 1


@dataclass(frozen=True)
class Proof:
    """Proof of membership (value set) or absence (value None) of one key.

    See the module docstring for the exact verification rules and encodings.
    """

    key: bytes
    value: bytes | None
    siblings: tuple[bytes, ...]
    other_path: bytes | None = None
    other_value_hash: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.siblings, tuple):
            object.__setattr__(self, "siblings", tuple(self.siblings))

    @property
    def exists(self) -> bool:
        """True if this proof claims the key is present."""
        return self.value is not None

    def to_bytes(self) -> bytes:
        """Canonical binary encoding (see module docs)."""
        if self.value is not None:
            kind = _KIND_PRESENT
        elif self.other_path is not None:
            kind = _KIND_ABSENT_OTHER
        else:
            kind = _KIND_ABSENT_EMPTY
        parts = [bytes((_PROOF_VERSION, kind)), len(self.key).to_bytes(4, "big"), self.key]
        if kind == _KIND_PRESENT:
            assert self.value is not None
            parts += [len(self.value).to_bytes(4, "big"), self.value]
        elif kind == _KIND_ABSENT_OTHER:
            if not (_is_hash(self.other_path) and _is_hash(self.other_value_hash)):
                raise ProofError("other_path and other_value_hash must both be 32 bytes")
            parts += [self.other_path, self.other_value_hash]  # type: ignore[list-item]
        count = len(self.siblings)
        if count > MAX_DEPTH:
            raise ProofError(f"{count} siblings, at most {MAX_DEPTH}")
        if not all(_is_hash(sibling) for sibling in self.siblings):
            raise ProofError("every sibling must be 32 bytes")
        bitmap = bytearray((count + 7) // 8)
        present: list[bytes] = []
        for index, sibling in enumerate(self.siblings):
            if sibling != EMPTY_HASH:
                bitmap[index >> 3] |= 0x80 >> (index & 7)
                present.append(sibling)
        parts += [count.to_bytes(2, "big"), bytes(bitmap), *present]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Proof:
        """Strictly decode `to_bytes` output; raises ProofError otherwise."""
        reader = _Reader(bytes(data))
        version = reader.take(1)[0]
        if version != _PROOF_VERSION:
            raise ProofError(f"unknown proof version {version}")
        kind = reader.take(1)[0]
        if kind not in (_KIND_ABSENT_EMPTY, _KIND_PRESENT, _KIND_ABSENT_OTHER):
            raise ProofError(f"unknown proof kind {kind}")
        key = reader.take(reader.u32())
        value = other_path = other_value_hash = None
        if kind == _KIND_PRESENT:
            value = reader.take(reader.u32())
        elif kind == _KIND_ABSENT_OTHER:
            other_path = reader.take(HASH_SIZE)
            other_value_hash = reader.take(HASH_SIZE)
        count = int.from_bytes(reader.take(2), "big")
        if count > MAX_DEPTH:
            raise ProofError(f"{count} siblings, at most {MAX_DEPTH}")
        bitmap = reader.take((count + 7) // 8)
        if count % 8 and bitmap[-1] & ~HIGH_BITS_MASK[count % 8] & 0xFF:
            raise ProofError("padding bits of the sibling bitmap are set")
        siblings = []
        for index in range(count):
            if bitmap[index >> 3] & (0x80 >> (index & 7)):
                sibling = reader.take(HASH_SIZE)
                if sibling == EMPTY_HASH:
                    raise ProofError("empty sibling encoded explicitly")
                siblings.append(sibling)
            else:
                siblings.append(EMPTY_HASH)
        if reader.remaining():
            raise ProofError(f"{reader.remaining()} trailing bytes after proof")
        return cls(key, value, tuple(siblings), other_path, other_value_hash)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with hex strings (see module docs)."""
        return {
            "key": self.key.hex(),
            "value": None if self.value is None else self.value.hex(),
            "siblings": [sibling.hex() for sibling in self.siblings],
            "other_path": None if self.other_path is None else self.other_path.hex(),
            "other_value_hash": None if self.other_value_hash is None else self.other_value_hash.hex(),
        }

    def to_json(self) -> str:
        """Compact JSON text of `to_dict()`."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Proof:
        """Parse `to_json` text (or an already-decoded dict); raises ProofError."""
        try:
            obj = json.loads(data) if isinstance(data, (str, bytes)) else data
            if not isinstance(obj, Mapping):
                raise ProofError("proof JSON must be an object")
            unknown = set(obj) - {"key", "value", "siblings", "other_path", "other_value_hash"}
            if unknown:
                raise ProofError(f"unknown proof fields: {sorted(unknown)}")
            siblings = obj["siblings"]
            if not isinstance(siblings, list):
                raise ProofError("siblings must be a list")
            return cls(
                key=_from_hex(obj["key"], "key"),
                value=_from_hex_or_none(obj.get("value"), "value"),
                siblings=tuple(_from_hex(s, "sibling") for s in siblings),
                other_path=_from_hex_or_none(obj.get("other_path"), "other_path"),
                other_value_hash=_from_hex_or_none(obj.get("other_value_hash"), "other_value_hash"),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ProofError(f"malformed proof JSON: {exc}") from exc


def _from_hex(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProofError(f"{what} must be a hex string")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise ProofError(f"{what} is not valid hex") from exc


def _from_hex_or_none(text: Any, what: str) -> bytes | None:
    return None if text is None else _from_hex(text, what)


class _Reader:
    """Bounds-checked cursor over proof bytes."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise ProofError("proof encoding is truncated")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def remaining(self) -> int:
        return len(self.data) - self.offset


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def check_proof(root: bytes, proof: Proof) -> None:
    """Verify `proof` against `root`, raising ProofError with the reason if it fails."""
    if not _is_hash(root):
        raise ProofError("root must be 32 bytes")
    if not isinstance(proof.key, bytes):
        raise ProofError("key must be bytes")
    siblings = proof.siblings
    if not all(_is_hash(sibling) for sibling in siblings):
        raise ProofError("every sibling must be 32 bytes")
    depth = len(siblings)
    path = sha256(proof.key).digest()
    other_path, other_value_hash = proof.other_path, proof.other_value_hash
    if (other_path is None) != (other_value_hash is None):
        raise ProofError("other_path and other_value_hash must be given together")

    if proof.value is not None:
        if not isinstance(proof.value, bytes):
            raise ProofError("value must be bytes or None")
        if other_path is not None:
            raise ProofError("a membership proof cannot end at another leaf")
        node = leaf_hash(path, sha256(proof.value).digest())
        ends_at_leaf = True
    elif other_path is not None:
        if not (_is_hash(other_path) and _is_hash(other_value_hash)):
            raise ProofError("other_path and other_value_hash must be 32 bytes")
        if other_path == path:
            raise ProofError("the other leaf has the key's own path: the key is present")
        if depth > MAX_DEPTH or _common_prefix_bits(path, other_path) < depth:
            raise ProofError(f"the other leaf does not lie on the key's path at depth {depth}")
        node = leaf_hash(other_path, other_value_hash)  # type: ignore[arg-type]
        ends_at_leaf = True
    else:
        node = EMPTY_HASH
        ends_at_leaf = False

    max_depth = MAX_DEPTH if ends_at_leaf else MAX_DEPTH - 1
    if depth > max_depth:
        raise ProofError(f"{depth} siblings, at most {max_depth} for this kind of proof")
    if depth > 0 and siblings[-1] == EMPTY_HASH:
        if ends_at_leaf:
            raise ProofError(
                f"leaf at depth {depth} has an empty sibling: a compact tree would hold it one level up"
            )
        raise ProofError(f"empty subtree at depth {depth} has an empty sibling: the walk must end higher")

    for index in range(depth - 1, -1, -1):
        sibling = siblings[index]
        if (path[index >> 3] >> (7 - (index & 7))) & 1:
            node = sha256(INNER_PREFIX + sibling + node).digest()
        else:
            node = sha256(INNER_PREFIX + node + sibling).digest()
    if node != root:
        raise ProofError("recomputed root does not match")


def verify_proof(root: bytes, proof: Proof) -> bool:
    """True if `proof` is valid against `root` (see `check_proof` for reasons)."""
    try:
        check_proof(root, proof)
    except ProofError:
        return False
    return True


def _common_prefix_bits(a: bytes, b: bytes) -> int:
    diff = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return 256 - diff.bit_length()
