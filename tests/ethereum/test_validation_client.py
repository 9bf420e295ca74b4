"""The Validation contract on a real anvil chain through the Python client: a checkpoint posted
with three of four members' attestations, what it costs, and refusals with the contract's reasons."""

from __future__ import annotations

import hashlib

import pytest
from web3 import Web3

from rtc.ethereum import Anvil
from rtc.ethereum.registry import Registry
from rtc.ethereum.types import ContractRefused
from rtc.ethereum.validation import Validation
from rtc.protocol.attestation import Attestation, AttestationDomain, AttestationError, address_of, attester_proof

ETHER = 10**18
ANVIL_PORT = 30749
INTERVAL = 10


@pytest.fixture(scope="module")
def chain(anvil: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


def test_a_checkpoint_on_anvil_costs_about_an_ecrecover_per_attestation(chain: Web3) -> None:
    owner, *operators = chain.eth.accounts[:5]
    registry = Registry.deploy(chain, owner, min_deposit_wei=ETHER, cooling_off_blocks=5)
    validation = Validation.deploy(chain, owner, registry.address)
    assert validation.registry() == registry.address
    code_hash = hashlib.sha256(b"stock.wasm").digest()
    cluster_id = registry.create_cluster(owner, b"\x33" * 32, code_hash, 4)
    keys = [bytes([0x70 + i]) * 32 for i in range(4)]
    for i, operator in enumerate(operators):
        node_id = registry.register(operator, bytes([0x40 + i]) * 32, 2 * ETHER)
        proof = attester_proof(keys[i], bytes.fromhex(registry.address[2:]), int(chain.eth.chain_id), node_id)
        registry.set_attester(operator, node_id, Web3.to_checksum_address(address_of(keys[i])), proof)
        assert registry.attester(node_id) == Web3.to_checksum_address(address_of(keys[i]))
        registry.request_join(operator, node_id, cluster_id)
        assert registry.approve_join(owner, node_id)
    nothing = Attestation(bytes.fromhex(registry.address[2:]), cluster_id, INTERVAL, bytes(32), bytes(32), code_hash)
    with pytest.raises(ContractRefused, match="the cluster has no checkpoint interval"):
        validation.post_checkpoint(owner, nothing, [])
    validation.set_checkpoint_interval(owner, cluster_id, INTERVAL)
    assert validation.checkpoint_interval(cluster_id) == INTERVAL

    state = Attestation(bytes.fromhex(registry.address[2:]), cluster_id, 2 * INTERVAL,
                        hashlib.sha256(b"app").digest(), hashlib.sha256(b"record").digest(), code_hash)
    domain = AttestationDomain(int(chain.eth.chain_id), bytes.fromhex(validation.address[2:]))
    signatures = [state.sign(key, domain) for key in keys]
    with pytest.raises(ContractRefused, match="attestations of more than 2/3 of the members are needed"):
        validation.post_checkpoint(owner, state, signatures[:2] + signatures[:2])  # one signer counts once
    with pytest.raises(AttestationError):  # a malformed signature: refused here, nothing sent
        validation.post_checkpoint(owner, state, signatures[:2] + [signatures[2][:64] + b"\x00"])
    first = validation.post_checkpoint(operators[0], state, signatures[:3])
    assert validation.checkpoint(cluster_id, state.height).attesters == 3

    def later(height: int, signers: list[bytes]) -> int:
        """Gas of a checkpoint posted after another (the newest-height slot is warm already)."""
        at = Attestation(state.registry, cluster_id, height, state.app_hash, state.record, code_hash)
        return validation.post_checkpoint(operators[1], at, [at.sign(key, domain) for key in signers]).gas_used

    with_three, with_four = later(3 * INTERVAL, keys[:3]), later(4 * INTERVAL, keys)
    print(f"checkpoint gas: first {first.gas_used}; later with 3 attestations {with_three}, with 4 {with_four}")
    assert validation.checkpoint(cluster_id, 4 * INTERVAL).members == 4
    assert validation.last_checkpoint(cluster_id) == 4 * INTERVAL
    assert validation.checkpoint(cluster_id, INTERVAL) is None
    # an attestation costs an ecrecover (3,000), two Registry reads and its calldata
    assert 3_000 < with_four - with_three < 20_000
    assert with_three < first.gas_used < 300_000
