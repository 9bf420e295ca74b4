"""What the Validation contract's tests share: the cluster's attester keys and how a test signs
and posts a checkpoint (fixtures in conftest.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boa
from eth_utils import to_checksum_address

from rtc.protocol.attestation import Attestation, AttestationDomain, address_of, attester_proof, split_signature

VALIDATION_SOURCE = Path(__file__).resolve().parents[2] / "contracts" / "Validation.vy"
REFERENCE = hashlib.sha256(b"swarm reference of stock.wasm").digest()
CODE_HASH = hashlib.sha256(b"stock.wasm").digest()
INTERVAL = 10
DISPUTE_WINDOW = 6  # Ethereum blocks
APP_HASH = hashlib.sha256(b"state at 20").digest()
RECORD = hashlib.sha256(b"history record of 20").digest()


def attester_key(n: int) -> bytes:
    return bytes([n]) * 32


def attester(n: int) -> str:
    return to_checksum_address(address_of(attester_key(n)))


def set_attester(registry, accounts, node: int, key: int, sender: str | None = None) -> None:
    """Node `node` names attester key `key`, with that key's proof."""
    r, s, v = split_signature(attester_proof(attester_key(key), bytes.fromhex(registry.address[2:]),
                                             boa.env.evm.patch.chain_id, node))
    registry.set_attester(node, attester(key), v, r, s, sender=sender or accounts.operators[node - 1])


def state_at(registry, cluster: int, height: int = 20, app_hash: bytes = APP_HASH) -> Attestation:
    return Attestation(bytes.fromhex(registry.address[2:]), cluster, height, app_hash, RECORD, CODE_HASH)


def domain_of(validation) -> AttestationDomain:
    return AttestationDomain(boa.env.evm.patch.chain_id, bytes.fromhex(validation.address[2:]))


def signatures(state: Attestation, domain: AttestationDomain, signers: list[int]) -> tuple[list, list, list]:
    """v, r and s arrays, signers in ascending address order as the contract wants them."""
    ordered = sorted(signers, key=lambda n: address_of(attester_key(n)))
    parts = [split_signature(state.sign(attester_key(n), domain)) for n in ordered]
    return [v for _, _, v in parts], [r for r, _, _ in parts], [s for _, s, _ in parts]


def post(validation, state: Attestation, signatures: tuple[list, list, list], sender: str) -> None:
    v, r, s = signatures
    validation.post_checkpoint(state.cluster_id, state.height, state.app_hash, state.record, v, r, s, sender=sender)
