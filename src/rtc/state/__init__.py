"""Replicated application state: crash-safe LMDB storage plus a Merkle index.

The Merkle root (`StateStore.root`, `BlockOverlay.root()`) is a function of
the committed (key, value) set only, so every node that executed the same
blocks reports the same root.  `merkle` documents the tree and proof format
for verifiers written in other languages.
"""

from .merkle import EMPTY_HASH, Proof, ProofError, check_proof, compute_root, key_path, verify_proof
from .store import (
    BlockOverlay,
    CallBuffer,
    CommitHeightError,
    StaleOverlayError,
    StateCorruptionError,
    StateError,
    StateStore,
)

__all__ = [
    "EMPTY_HASH",
    "BlockOverlay",
    "CallBuffer",
    "CommitHeightError",
    "Proof",
    "ProofError",
    "StaleOverlayError",
    "StateCorruptionError",
    "StateError",
    "StateStore",
    "check_proof",
    "compute_root",
    "key_path",
    "verify_proof",
]
