"""Bee's chunk addressing: the Binary Merkle Tree hash of one chunk payload.

A content-addressed chunk is ``span || payload``: the span is a u64 little-endian count
of the data bytes the chunk stands for (its own payload for a data chunk, everything
below it for an intermediate chunk) and the payload is at most 4096 bytes.  The BMT root
is the Keccak-256 pair tree over the payload zero-padded to 4096 bytes (128 segments of
32 bytes: 64 digests of segment pairs, then 32, ... down to one); the chunk's address is
``keccak256(span || root)``.

Subtrees lying wholly in the zero padding have a known hash per level, so a short payload
only hashes the pairs that touch its bytes.

`bmt_root_reference` below is the specification; `bmt_root` is the compiled core's
(`rtc_native`, native/src/swarm.rs: 127 digests in Rust instead of 127 calls from Python)
when it is installed and RTC_CORE does not ask for Python, this one otherwise.
"""

from __future__ import annotations

import os
from typing import Any

from .keccak import keccak256, pair_hasher

__all__ = [
    "BRANCHES",
    "CHUNK_SIZE",
    "REFERENCE_SIZE",
    "SPAN_SIZE",
    "bmt_root",
    "cac_address",
    "chunk_address",
    "encode_span",
]

CHUNK_SIZE = 4096
"""Most payload bytes in one chunk."""
SPAN_SIZE = 8
REFERENCE_SIZE = 32
SEGMENT_SIZE = 32
BRANCHES = CHUNK_SIZE // REFERENCE_SIZE
"""References per intermediate chunk (128)."""
_LEVELS = 7  # 128 segments -> 1 root


def _zero_hashes() -> list[bytes]:
    """_ZERO[k]: the hash of a subtree of 2**k all-zero segments (k = 0 is the zero segment itself)."""
    hashes = [bytes(SEGMENT_SIZE)]
    for _ in range(_LEVELS):
        hashes.append(keccak256(hashes[-1] + hashes[-1]))
    return hashes


_ZERO = _zero_hashes()


def encode_span(span: int) -> bytes:
    return span.to_bytes(SPAN_SIZE, "little")


def bmt_root_reference(payload: Any) -> bytes:
    """BMT root of a payload of at most 4096 bytes (any contiguous buffer)."""
    size = len(payload)
    if size > CHUNK_SIZE:
        raise ValueError(f"a chunk payload holds at most {CHUNK_SIZE} bytes, not {size}")
    if size == 0:
        return _ZERO[_LEVELS]
    hasher = pair_hasher()
    scratch = hasher.scratch
    live = -(-size // SEGMENT_SIZE)  # nodes at this level that cover payload bytes
    scratch[:size] = payload
    scratch[size : live * SEGMENT_SIZE] = bytes(live * SEGMENT_SIZE - size)
    for level in range(_LEVELS):
        if live & 1:  # its right sibling lies in the padding
            scratch[live * SEGMENT_SIZE : (live + 1) * SEGMENT_SIZE] = _ZERO[level]
        live = (live + 1) >> 1
        hasher.hash_pairs(live)
    return bytes(scratch[:SEGMENT_SIZE])


def _compiled_bmt_root() -> Any:
    if os.environ.get("RTC_CORE", "").strip().lower() == "python":
        return None
    try:
        from rtc_native import bmt_root as compiled
    except ImportError:
        return None

    def bmt_root(payload: Any) -> bytes:
        """BMT root of a payload of at most 4096 bytes (any contiguous buffer), in the compiled core."""
        return compiled(payload if type(payload) is bytes else bytes(payload))

    return bmt_root


bmt_root = _compiled_bmt_root() or bmt_root_reference


def use_reference() -> None:
    """Hash with the reference from now on, in this process (a node on the Python core)."""
    global bmt_root
    bmt_root = bmt_root_reference


def chunk_address(span: int, payload: Any) -> bytes:
    """Address of the content-addressed chunk ``span || payload``."""
    return keccak256(encode_span(span) + bmt_root(payload))


def cac_address(chunk: Any) -> bytes:
    """Address of serialised chunk data ``span || payload`` (ValueError if it cannot be a chunk)."""
    if not SPAN_SIZE <= len(chunk) <= SPAN_SIZE + CHUNK_SIZE:
        raise ValueError(f"chunk data must be {SPAN_SIZE}..{SPAN_SIZE + CHUNK_SIZE} bytes, not {len(chunk)}")
    view = memoryview(chunk)
    return keccak256(bytes(view[:SPAN_SIZE]) + bmt_root(view[SPAN_SIZE:]))
