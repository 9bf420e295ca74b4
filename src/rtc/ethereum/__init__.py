"""Ethereum: the Registry contract (`registry`, web3), what it says about nodes as plain data
(`types`, no web3), and the local chain the devnet and tests start (`anvil`)."""

from .anvil import Anvil, AnvilError, anvil_binary

__all__ = ["Anvil", "AnvilError", "anvil_binary"]
