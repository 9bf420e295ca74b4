"""Helpers for the contract tests: revert reasons exactly as a client decodes them, events as dicts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import boa
import pytest
from eth_abi import decode as abi_decode

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_SOURCE = ROOT / "contracts" / "Registry.vy"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

ETHER = 10**18
MIN_DEPOSIT = 2 * ETHER
COOLING_OFF = 100

# Node status and NodeLeft reasons, as the contract numbers them.
NONE, ACTIVE, LEAVING, EJECTED, WITHDRAWN = 0, 1, 2, 3, 4
LEFT_BY_LEAVE, LEFT_BY_EJECTION = 1, 2

ZERO_ADDRESS = "0x" + "00" * 20
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


def key(n: int) -> bytes:
    """A distinct 32-byte validator key (stands in for an ed25519 public key)."""
    return bytes([n]) * 32


def revert_data(error: boa.BoaError) -> bytes:
    """The raw revert data of the failed call, as eth_call would return it."""
    frame = error.stack_trace.last_frame
    vm_error = getattr(frame, "vm_error", None)
    assert vm_error is not None, f"not a revert: {frame}"
    data = vm_error.args[0] if vm_error.args else b""
    return bytes(data) if isinstance(data, (bytes, bytearray)) else b""


def decode_reason(data: bytes) -> str:
    assert data[:4] == ERROR_SELECTOR, f"revert data is not Error(string): {data.hex()}"
    (reason,) = abi_decode(["string"], data[4:])
    return reason


@contextlib.contextmanager
def refused(reason: str) -> Iterator[None]:
    """The block must revert with exactly `reason` as its Error(string)."""
    with pytest.raises(boa.BoaError) as info:
        yield
    assert decode_reason(revert_data(info.value)) == reason


def events(contract, computation=None) -> list[tuple[str, dict]]:
    """The events of the contract's last call (including nested calls) as (name, fields)."""
    out = []
    for entry in contract.get_logs(computation):
        fields = entry._asdict()
        fields.pop("address")
        out.append((type(entry).__name__, {k: (str(v) if isinstance(v, boa.util.abi.Address) else v)
                                            for k, v in fields.items()}))
    return out


def block() -> int:
    return boa.env.evm.patch.block_number


def set_block(number: int) -> None:
    assert number >= block(), "blocks only move forward"
    boa.env.time_travel(blocks=number - block())
