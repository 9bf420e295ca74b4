"""Where a node's history goes: its Swarm (embedded store or Bee) and the key that signs its feed."""

from __future__ import annotations

from pathlib import Path

from rtc.cometbft import NodeHome
from rtc.swarm import BeeSwarm, FeedSigner, LocalSwarm, Swarm

FEED_KEY_NAME = "history_key"  # in the node's config/: the secp256k1 key its history feed is signed with


def open_swarm(spec: str, postage_batch: str | None = None, base: Path | None = None, synced: bool = True) -> Swarm:
    """A Bee node for an http(s) URL (uploads need a postage batch), else the embedded store in that
    folder (`synced=False`: durable only at `flush()`, see LocalSwarm.open)."""
    if spec.startswith(("http://", "https://")):
        if not postage_batch:
            raise ValueError(f"uploading to the Bee node {spec} needs a postage batch id (swarm_batch in rtc.json)")
        return BeeSwarm(spec, postage_batch)
    path = Path(spec)
    if not path.is_absolute() and base is not None:
        path = base / path
    return LocalSwarm.open(path, synced=synced)


def feed_key_file(home: NodeHome) -> Path:
    return home.path / "config" / FEED_KEY_NAME


def history_signer(home: NodeHome) -> FeedSigner:
    """The node's feed key, made on first use and kept readable by its owner only."""
    return FeedSigner(home.secret_key(FEED_KEY_NAME))
