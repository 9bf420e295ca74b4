"""Bee's chunk tree for ``POST /bytes`` (no encryption, redundancy level 0), and reading it back.

Data is cut into 4096-byte data chunks.  Their references are grouped 128 at a time into
intermediate chunks whose payload is the concatenated references and whose span is the
number of data bytes below; each level is grouped the same way until one reference is
left: the root.  A group holding a single reference (only ever the last group of a level)
is not wrapped: that reference is carried up unchanged, behind the level's other chunks,
as Bee's hash-trie writer does.  Empty data is one chunk with an empty payload.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import bmt
from .bmt import BRANCHES, CHUNK_SIZE, REFERENCE_SIZE, SPAN_SIZE, encode_span
from .errors import ChunkInvalid
from .keccak import keccak256

__all__ = ["ChunkSink", "bytes_reference", "chunk_count", "join", "split"]

ChunkSink = Callable[[bytes, bytes], None]
"""Receives (address, span || payload) of every chunk, children before their parent."""


def split(data: Any, sink: ChunkSink | None = None) -> tuple[bytes, int]:
    """(root reference, number of chunks) of `data`, handing each chunk to `sink` if given.

    Without a sink no chunk bytes are assembled: payloads are hashed straight from views
    of `data`.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    count = 0
    level: list[tuple[int, bytes]] = []  # (span, address) of this level's nodes, in order
    for start in range(0, max(size, 1), CHUNK_SIZE):
        payload = view[start : start + CHUNK_SIZE]
        span = encode_span(len(payload))
        address = keccak256(span + bmt.bmt_root(payload))
        if sink is not None:
            sink(address, b"".join((span, payload)))
        level.append((len(payload), address))
        count += 1
    while len(level) > 1:
        upper: list[tuple[int, bytes]] = []
        for first in range(0, len(level), BRANCHES):
            group = level[first : first + BRANCHES]
            if len(group) == 1:
                upper.append(group[0])  # a lone trailing reference is carried up unwrapped
                continue
            total = sum(span for span, _ in group)
            references = b"".join(address for _, address in group)
            span = encode_span(total)
            address = keccak256(span + bmt.bmt_root(references))
            if sink is not None:
                sink(address, span + references)
            upper.append((total, address))
            count += 1
        level = upper
    return level[0][1], count


def bytes_reference(data: bytes) -> bytes:
    """The 32-byte reference Bee's ``POST /bytes`` gives `data` (no encryption, redundancy 0), without storing."""
    return split(data)[0]


def chunk_count(size: int) -> int:
    """How many chunks (data and intermediate) `size` bytes of data make."""
    nodes = max(1, -(-size // CHUNK_SIZE))
    total = nodes
    while nodes > 1:
        full, rest = divmod(nodes, BRANCHES)
        total += full + (rest > 1)
        nodes = full + (rest > 0)
    return total


ChunkFetch = Callable[[bytes], bytes]
"""Returns the chunk data (span || payload) stored at an address, already verified against it."""


def join(reference: bytes, fetch: ChunkFetch) -> bytes:
    """The data under `reference`, every chunk fetched through `fetch` (which verifies it).

    The tree's shape is checked as well: children's spans must add up to their parent's,
    every child but the last must be full, and a data chunk's payload must be its span.
    """
    out = bytearray()
    _collect(fetch(reference), reference, fetch, out)
    return bytes(out)


def _collect(chunk: bytes, address: bytes, fetch: ChunkFetch, out: bytearray) -> None:
    span = int.from_bytes(chunk[:SPAN_SIZE], "little")
    payload = memoryview(chunk)[SPAN_SIZE:]
    if span <= CHUNK_SIZE:
        if len(payload) != span:
            raise ChunkInvalid(f"data chunk {address.hex()} has span {span} but {len(payload)} payload bytes")
        out += payload
        return
    capacity = CHUNK_SIZE  # data bytes under each full child of this chunk
    while capacity * BRANCHES < span:
        capacity *= BRANCHES
    children = len(payload) // REFERENCE_SIZE
    if len(payload) % REFERENCE_SIZE or children != -(-span // capacity):
        raise ChunkInvalid(f"intermediate chunk {address.hex()} of span {span} has {len(payload)} payload bytes, "
                           f"not {-(-span // capacity)} references")
    for index in range(children):
        child_address = bytes(payload[index * REFERENCE_SIZE : (index + 1) * REFERENCE_SIZE])
        child = fetch(child_address)
        expected = capacity if index < children - 1 else span - capacity * (children - 1)
        child_span = int.from_bytes(child[:SPAN_SIZE], "little")
        if child_span != expected:
            raise ChunkInvalid(f"chunk {child_address.hex()} under {address.hex()} has span {child_span}, "
                               f"not {expected}")
        _collect(child, child_address, fetch, out)
