"""What can go wrong talking to Swarm, split by what the caller should do about it."""

from __future__ import annotations

__all__ = ["ChunkInvalid", "FeedConflict", "NotFound", "SwarmError", "SwarmUnavailable"]


class SwarmError(Exception):
    """Base class of every error of `rtc.swarm`."""


class SwarmUnavailable(SwarmError):
    """The store or Bee endpoint is unreachable or failing (connection error, 5xx): retry later."""


class ChunkInvalid(SwarmError):
    """Content does not match its address, a SOC signature does not recover its owner, or data is malformed.

    Never retried blindly: the data came back wrong, so whoever served it is not to be trusted for it.
    """


class NotFound(SwarmError):
    """No such chunk, reference or feed update."""


class FeedConflict(SwarmError):
    """A different update already holds this feed index (single-owner chunks are written once)."""
