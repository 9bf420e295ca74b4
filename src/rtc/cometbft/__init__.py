"""CometBFT as our code sees it from outside: its block and commit types and the light-client
checks (`lightclient`), its RPC (`rpc`), and a node's home and genesis (`home`).

This package imports nothing else from `rtc`: a client needs it as much as a node does.
"""

from .home import GenesisDoc, GenesisValidator, NodeHome
from .lightclient import VerificationError, VerifiedCommit, verify_commit
from .rpc import RPC, AsyncRPC, HeightUnavailable, RPCError, RPCUnavailable

__all__ = [
    "RPC", "AsyncRPC", "GenesisDoc", "GenesisValidator", "HeightUnavailable", "NodeHome", "RPCError",
    "RPCUnavailable", "VerificationError", "VerifiedCommit", "verify_commit",
]
