"""What every Swarm backend offers, and the latest-update search they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .soc import MAX_FEED_INDEX, FeedSigner

__all__ = ["Swarm", "find_latest"]


@runtime_checkable
class Swarm(Protocol):
    """Content-addressed storage plus sequential feeds, with Bee's exact addressing.

    Errors: SwarmUnavailable (retry later), ChunkInvalid (data does not match its address or
    signature), NotFound, FeedConflict; all are SwarmError.
    """

    def upload(self, data: bytes) -> bytes:
        """Store every chunk of `data`; return its reference (the one Bee's POST /bytes gives)."""
        ...

    def download(self, reference: bytes) -> bytes:
        """The data under `reference`, every chunk verified (ChunkInvalid on a mismatch, NotFound if absent)."""
        ...

    def has(self, reference: bytes) -> bool:
        """Whether the root chunk of `reference` is present."""
        ...

    def update_feed(self, signer: FeedSigner, topic: bytes, index: int, reference: bytes,
                    timestamp: int = 0) -> None:
        """Write the sequential feed update number `index` of (signer.owner, topic) pointing at `reference`.

        `timestamp` (seconds, stored in Bee's update format) defaults to 0 so the same
        update always makes the same chunk: callers stay deterministic and re-sending an
        update is harmless.  Bee 2.x lookups ignore it; older ones skip only updates stamped
        after "now", which 0 never is.
        """
        ...

    def feed_at(self, owner: bytes, topic: bytes, index: int) -> bytes:
        """The reference of update `index` (NotFound if there is none), its signature checked."""
        ...

    def latest_feed(self, owner: bytes, topic: bytes) -> tuple[int, bytes] | None:
        """(index, reference) of the newest update, or None when the feed has none."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable (a store that writes durably does nothing)."""
        ...

    def close(self) -> None:
        """Release the store or connection."""
        ...


def find_latest(present: Callable[[int], bool], start: int = 0) -> int | None:
    """Highest index `present` holds, given that a sequential feed has no gaps.

    `start` is a hint known or believed to be present (it is probed first).  Doubling steps
    from there find an absent index, then a binary search finds the boundary: about
    2·log2(n) probes for n updates.
    """
    if not present(start):
        return None if start == 0 else find_latest(present, 0)
    low, step = start, 1  # low: present
    while True:
        high = min(low + step, MAX_FEED_INDEX)
        if high == low:
            return low  # every index up to the largest is written
        if not present(high):
            break
        low, step = high, step * 2
    while high - low > 1:  # low present, high absent
        middle = (low + high) // 2
        if present(middle):
            low = middle
        else:
            high = middle
    return low
