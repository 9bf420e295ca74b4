"""Cluster membership: the CometBFT validator set follows the Registry contract on Ethereum.

`sync` holds the deterministic part (the Ethereum-sync transaction and the validator
updates it yields); `watcher` (imported on its own: it needs web3) is this node's own,
non-deterministic view of Ethereum, used only to propose syncs and to vote on them.
"""

from .sync import (
    SYNC_MAGIC, VALIDATOR_POWER, EthereumSettings, EthereumSync, Membership, SyncError, Unconfirmed,
    apply_sync, decode_sync, is_sync,
)

__all__ = [
    "SYNC_MAGIC", "VALIDATOR_POWER", "EthereumSettings", "EthereumSync", "Membership", "SyncError", "Unconfirmed", "apply_sync",
    "decode_sync", "is_sync",
]
