"""Attestations are EIP-712: the digest and the signature agree with eth_account's independent
implementation, and a signature holds for one state of one cluster on one chain only."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from eth_keys import keys
from eth_utils import keccak

from rtc.protocol.attestation import (
    HALF_ORDER, Attestation, AttestationDomain, AttestationError, AttestationTx, AttestedState, VoteExtension,
    address_of, attester_proof, is_attestation_tx, split_signature)

KEY = bytes(range(1, 33))
DOMAIN = AttestationDomain(31337, bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512"))
STATE = Attestation(
    registry=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"), cluster_id=1, height=41,
    app_hash=bytes(range(32)), record=bytes(range(32, 64)), code_hash=bytes(range(64, 96)))
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _typed_data(state: Attestation, domain: AttestationDomain) -> dict:
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Attestation": [{"name": "registry", "type": "address"}, {"name": "clusterId", "type": "uint256"},
                            {"name": "height", "type": "uint64"}, {"name": "appHash", "type": "bytes32"},
                            {"name": "record", "type": "bytes32"}, {"name": "codeHash", "type": "bytes32"}],
        },
        "primaryType": "Attestation",
        "domain": {"name": "rtc-attestation", "version": "1", "chainId": domain.ethereum_chain_id,
                   "verifyingContract": "0x" + domain.verifying_contract.hex()},
        "message": {"registry": "0x" + state.registry.hex(), "clusterId": state.cluster_id, "height": state.height,
                    "appHash": state.app_hash, "record": state.record, "codeHash": state.code_hash},
    }


def test_the_digest_and_signature_are_eip712_as_eth_account_computes_them() -> None:
    message = encode_typed_data(full_message=_typed_data(STATE, DOMAIN))
    signed = Account.from_key(KEY).sign_message(message)
    assert STATE.digest(DOMAIN) == bytes(signed.message_hash)
    assert STATE.sign(KEY, DOMAIN) == bytes(signed.signature)
    assert STATE.signer(STATE.sign(KEY, DOMAIN), DOMAIN) == address_of(KEY)
    assert "0x" + address_of(KEY).hex() == Account.from_key(KEY).address.lower()


@pytest.mark.parametrize("change", [
    {"height": 42}, {"cluster_id": 2}, {"app_hash": bytes(32)}, {"record": bytes(32)}, {"code_hash": bytes(32)},
    {"registry": bytes(20)},
])
def test_a_signature_does_not_hold_for_another_state_cluster_or_registry(change: dict) -> None:
    signature = STATE.sign(KEY, DOMAIN)
    assert dataclasses.replace(STATE, **change).signer(signature, DOMAIN) != address_of(KEY)


@pytest.mark.parametrize("domain", [AttestationDomain(1, DOMAIN.verifying_contract), AttestationDomain(31337, bytes(20))])
def test_a_signature_does_not_hold_on_another_chain_or_contract(domain: AttestationDomain) -> None:
    assert STATE.signer(STATE.sign(KEY, DOMAIN), domain) != address_of(KEY)


def test_malformed_and_malleated_signatures_are_refused() -> None:
    signature = STATE.sign(KEY, DOMAIN)
    r, s, v = split_signature(signature)
    assert s <= HALF_ORDER
    # The same signature with s' = n - s and v flipped also verifies on the curve: refused, so no
    # attestation has a second valid form (ecrecover alone would accept it).
    malleated = r.to_bytes(32, "big") + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    for bad, why in ((malleated, "lower half"), (signature[:64], "65 bytes"), (signature[:64] + b"\x01", "27 or 28"),
                     (bytes(32) + signature[32:], "out of range"), (b"\xff" * 32 + signature[32:], "out of range")):
        with pytest.raises(AttestationError, match=why):
            STATE.signer(bad, DOMAIN)


def test_fields_out_of_range_are_refused() -> None:
    with pytest.raises(AttestationError, match="uint64"):
        dataclasses.replace(STATE, height=2**64).digest(DOMAIN)
    with pytest.raises(AttestationError, match="app_hash is 32 bytes"):
        dataclasses.replace(STATE, app_hash=b"short").digest(DOMAIN)
    with pytest.raises(AttestationError, match="20 bytes"):
        AttestationDomain(1, bytes(19)).separator


def test_an_attester_proof_is_the_keys_signature_over_the_registry_chain_and_node() -> None:
    registry = STATE.registry
    proof = attester_proof(KEY, registry, 31337, 7)
    r, s, v = split_signature(proof)
    digest = keccak(keccak(text="AttesterOf(address registry,uint256 chainId,uint256 nodeId)")
                    + bytes(12) + registry + (31337).to_bytes(32, "big") + (7).to_bytes(32, "big"))
    recovered = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest).to_canonical_address()
    assert recovered == address_of(KEY)
    assert attester_proof(KEY, registry, 31337, 8) != proof and attester_proof(KEY, registry, 1, 7) != proof


def test_a_bad_private_key_is_an_attestation_error() -> None:
    with pytest.raises(AttestationError, match="secp256k1 private key"):
        address_of(bytes(32))


def test_a_vote_extension_and_an_attestation_transaction_are_the_byte_tables_of_the_module_docstring() -> None:
    state = AttestedState(STATE.height, STATE.app_hash, STATE.record)
    signature = STATE.sign(KEY, DOMAIN)
    extension = VoteExtension(state, signature).encode()
    assert extension == (41).to_bytes(8, "big") + STATE.app_hash + STATE.record + signature and len(extension) == 137
    assert VoteExtension.decode(extension) == VoteExtension(state, signature)
    tx = AttestationTx(state, (signature, signature)).encode()
    assert tx == b"ATT\x01" + (41).to_bytes(8, "big") + STATE.app_hash + STATE.record + b"\x02" + signature * 2
    assert is_attestation_tx(tx) and AttestationTx.decode(tx).signatures == (signature, signature)


@pytest.mark.parametrize("tx", [
    b"ATT\x01", b"ATT\x01" + bytes(72) + b"\x00", b"ATT\x01" + bytes(72) + b"\x11" + bytes(65 * 17),
    b"ATT\x01" + bytes(72) + b"\x01" + bytes(64), b"ATT\x01" + bytes(72) + b"\x01" + bytes(65),  # v = 0
    b"ETH\x02" + bytes(72) + b"\x01" + bytes(65),
])
def test_malformed_attestation_transactions_are_refused(tx: bytes) -> None:
    with pytest.raises(AttestationError):
        AttestationTx.decode(tx)


def test_malformed_vote_extensions_are_refused() -> None:
    good = VoteExtension(AttestedState(1, bytes(32), bytes(32)), STATE.sign(KEY, DOMAIN)).encode()
    for bad in (good[:-1], good + b"\x00", good[:-1] + b"\x00"):
        with pytest.raises(AttestationError):
            VoteExtension.decode(bad)
