"""Replicated application state: crash-safe LMDB storage plus a Merkle index.

The Merkle root (`StateStore.root`, `BlockOverlay.root()`) is a function of
the committed (key, value) set only, so every node that executed the same
blocks reports the same root. The tree's hashing and the proof format that
verifiers in other languages follow are in `rtc.protocol.proof`.
"""

from .merkle import compute_root
from .store import (
    BlockOverlay,
    CommitHeightError,
    FrozenState,
    StaleOverlayError,
    StateCorruptionError,
    StateError,
    StateStore,
)

__all__ = [
    "BlockOverlay",
    "CommitHeightError",
    "FrozenState",
    "StaleOverlayError",
    "StateCorruptionError",
    "StateError",
    "StateStore",
    "compute_root",
]
