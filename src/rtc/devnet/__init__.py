"""Local clusters on loopback for development, demos and tests (only the CLI and the demo import it)."""

from .devnet import Devnet, NodeStatus
from .manifest import DevnetError, EthereumInfo, NodeInfo, SwarmInfo

__all__ = ["Devnet", "DevnetError", "EthereumInfo", "NodeInfo", "NodeStatus", "SwarmInfo"]
