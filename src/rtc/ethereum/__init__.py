"""Ethereum: the local chain (anvil) and, later, the deposit and membership contracts."""

from .anvil import Anvil, AnvilError, anvil_binary

__all__ = ["Anvil", "AnvilError", "anvil_binary"]
