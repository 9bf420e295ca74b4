"""Local clusters on loopback for development, demos and tests."""

from .cometbft import COMETBFT_VERSION, cometbft_binary
from .devnet import Devnet, DevnetError, NodeStatus

__all__ = ["COMETBFT_VERSION", "Devnet", "DevnetError", "NodeStatus", "cometbft_binary"]
