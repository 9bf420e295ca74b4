"""Swarm storage with Bee's exact addressing: an embedded store (`LocalSwarm`) or a Bee node (`BeeSwarm`).

Modules: `keccak` (fast Keccak-256), `bmt` (chunk addresses), `chunker` (Bee's chunk tree,
`bytes_reference`), `soc` (single-owner chunks, feed updates, `FeedSigner`), `base` (the
`Swarm` protocol), `store` (`LocalSwarm` on LMDB), `bee` (`BeeSwarm` over Bee's HTTP API).
See docs/swarm.md.
"""

from .base import Swarm
from .bee import BeeSwarm
from .bmt import chunk_address
from .chunker import bytes_reference, chunk_count
from .errors import ChunkInvalid, FeedConflict, NotFound, SwarmError, SwarmUnavailable
from .soc import FeedSigner, feed_identifier, soc_address
from .store import LocalSwarm

__all__ = [
    "BeeSwarm",
    "ChunkInvalid",
    "FeedConflict",
    "FeedSigner",
    "LocalSwarm",
    "NotFound",
    "Swarm",
    "SwarmError",
    "SwarmUnavailable",
    "bytes_reference",
    "chunk_address",
    "chunk_count",
    "feed_identifier",
    "soc_address",
]
