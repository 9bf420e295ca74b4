"""A whole dispute on a real anvil chain through the Python clients, every step signed by the
account that takes it (validators' attester keys sign here): what each step costs in gas, and
the ruling's effects as the Registry and the Disputes contract report them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from web3 import Web3

from rtc.ethereum import Anvil
from rtc.ethereum.disputes import INVALID, DisputeRules, Disputes, commitment, new_salt
from rtc.ethereum.registry import Registry
from rtc.ethereum.types import ContractRefused
from rtc.ethereum.validation import Validation
from rtc.protocol.attestation import Attestation, address_of, attester_proof

ETHER = 10**18
ANVIL_PORT = 30753
RULES = DisputeRules(bond_wei=ETHER, jury_size=3, commit_blocks=4, reveal_blocks=4, appeal_blocks=2,
                     availability_blocks=10)


@pytest.fixture(scope="module")
def chain(anvil: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@dataclass
class World:
    """The three contracts with a cluster of 4 members (nodes 1-4) and 5 enrolled validators."""

    registry: Registry
    validation: Validation
    disputes: Disputes
    cluster: int
    members: list[int]
    pool: list[int]
    court: dict[int, Disputes]  # each node's view, signing with its attester key
    keys: list[bytes]
    code_hash: bytes


def deploy(chain: Web3) -> World:
    owner, *operators = chain.eth.accounts[:10]
    registry = Registry.deploy(chain, owner, min_deposit_wei=ETHER, cooling_off_blocks=5)
    validation = Validation.deploy(chain, owner, registry.address, 6)
    disputes = Disputes.deploy(chain, owner, registry.address, validation.address, RULES)
    registry.set_slasher(owner, disputes.address)
    registry.set_beneficiary(owner, disputes.address)
    registry.set_validation(owner, validation.address)
    validation.set_disputes(owner, disputes.address)
    assert validation.disputes() == disputes.address and disputes.rules() == RULES
    code_hash = hashlib.sha256(b"stock.wasm").digest()
    cluster = registry.create_cluster(owner, b"\x33" * 32, code_hash, 4)
    validation.set_checkpoint_interval(owner, cluster, 10)
    validation.set_validator_rules(owner, cluster, 2, 5, b"\x9e" * 32)
    keys = [bytes([0x70 + i]) * 32 for i in range(9)]
    nodes = []
    for i, operator in enumerate(operators[:9]):
        node_id = registry.register(operator, bytes([0x40 + i]) * 32, 2 * ETHER)
        proof = attester_proof(keys[i], bytes.fromhex(registry.address[2:]), int(chain.eth.chain_id), node_id)
        attester = Web3.to_checksum_address(address_of(keys[i]))
        registry.set_attester(operator, node_id, attester, proof)
        chain.eth.wait_for_transaction_receipt(chain.eth.send_transaction({"from": operator, "to": attester,
                                                                            "value": 5 * ETHER}))
        if i < 4:
            registry.request_join(operator, node_id, cluster)
            assert registry.approve_join(owner, node_id)
        else:
            validation.enroll(operator, node_id)
        nodes.append(node_id)
    members, pool = nodes[:4], nodes[4:]
    court = {node: Disputes.connect(chain.provider.endpoint_uri, disputes.address, private_key=key)
             for node, key in zip(nodes, keys)}

    return World(registry, validation, disputes, cluster, members, pool, court, keys, code_hash)


def open_lie(world: World, chain: Web3, height: int = 15) -> tuple[int, Attestation, object]:
    lie = Attestation(bytes.fromhex(world.registry.address[2:]), world.cluster, height,
                      hashlib.sha256(b"lie").digest(), hashlib.sha256(b"record %d" % height).digest(), world.code_hash)
    signatures = [lie.sign(key, world.validation.domain()) for key in world.keys[:4]]
    disputer = world.court[world.pool[0]]
    dispute_id, opened = disputer.open_dispute(disputer.signer, lie, signatures[:3], b"\x01" * 32, 0, world.pool[0],
                                               RULES.bond_wei, world.validation.domain())
    return dispute_id, lie, opened


def test_a_dispute_from_opening_to_claiming_the_bounty_and_what_each_step_costs(chain: Web3) -> None:
    world = deploy(chain)
    registry, validation, disputes, cluster = world.registry, world.validation, world.disputes, world.cluster
    members, pool, court, keys, code_hash = world.members, world.pool, world.court, world.keys, world.code_hash
    lie = Attestation(bytes.fromhex(registry.address[2:]), cluster, 15, hashlib.sha256(b"lie").digest(),
                      hashlib.sha256(b"record 15").digest(), code_hash)
    signatures = [lie.sign(key, validation.domain()) for key in keys[:4]]
    disputer = court[pool[0]]
    with pytest.raises(ContractRefused, match=f"a dispute needs a bond of {ETHER} wei"):
        disputer.open_dispute(disputer.signer, lie, signatures[:3], b"\x01" * 32, 0, pool[0], 0, validation.domain())
    dispute_id, opened = disputer.open_dispute(disputer.signer, lie, signatures[:3], b"\x01" * 32, 0, pool[0],
                                               RULES.bond_wei, validation.domain())
    evidence = disputer.add_evidence(disputer.signer, dispute_id, lie, signatures[3:], validation.domain())
    assert sorted(disputes.accused(dispute_id)) == members and disputes.holds(members[0]) == 1

    gas: dict[str, int] = {"open (3 attestations)": opened.gas_used, "add evidence (1)": evidence.gas_used}
    chain.provider.make_request("anvil_mine", [2])
    gas["draw 3 jurors"] = disputer.advance(disputer.signer, dispute_id).gas_used
    jury = [j.node_id for j in disputes.jury(dispute_id, 0)]
    assert len(jury) == 3 and set(jury) <= set(pool) - {pool[0]}
    salts = {node: new_salt() for node in jury}
    for node in jury:
        posted = court[node].commit_vote(court[node].signer, dispute_id, node,
                                         commitment(dispute_id, 0, node, INVALID, salts[node]))
        gas["commit a vote"] = posted.gas_used
    gas["open the reveals"] = disputer.advance(disputer.signer, dispute_id).gas_used
    for node in jury:
        gas["reveal a vote"] = court[node].reveal_vote(court[node].signer, dispute_id, node, INVALID,
                                                       salts[node]).gas_used
    gas["tally (decisive)"] = disputer.advance(disputer.signer, dispute_id).gas_used
    assert disputes.dispute(dispute_id).phase_name == "open to appeal"
    chain.provider.make_request("anvil_mine", [RULES.appeal_blocks + 1])
    gas["settle (4 slashed, frozen)"] = disputer.advance(disputer.signer, dispute_id).gas_used
    ruled = disputes.dispute(dispute_id)
    assert ruled.status == INVALID and ruled.slashed_wei == 8 * ETHER and ruled.bounty_wei == 8 * ETHER // 10
    assert all(registry.node(n).deposit_wei == 0 for n in members)
    assert registry.slashed_wei(members) == {n: 2 * ETHER for n in members}
    assert validation.frozen_at(cluster) == 0 and disputes.holds(members[0]) == 0
    assert [s.node_id for s in disputes.slashes(dispute_id)] == disputes.accused(dispute_id)
    names = [event.name for event in disputes.story(dispute_id)]
    assert names[0] == "DisputeOpened" and names[-1] == "DisputeSettled" and names.count("VoteRevealed") == 3
    before = chain.eth.get_balance(disputer.signer)
    gas["claim"] = disputer.claim(disputer.signer).gas_used
    assert chain.eth.get_balance(disputer.signer) > before + RULES.bond_wei  # the bond back, and the bounty
    print("\ndispute gas: " + ", ".join(f"{step} {used:,}" for step, used in gas.items()))
    assert gas["open (3 attestations)"] < 1_200_000 and gas["settle (4 slashed, frozen)"] < 1_000_000
    assert gas["commit a vote"] < 150_000 and gas["reveal a vote"] < 150_000


def test_a_reorg_of_the_seed_block_draws_the_jury_again_with_nothing_left_of_the_first(chain: Web3) -> None:
    """Ethereum reorgs during a dispute: the jury comes from the seed block's hash on whichever
    chain wins; the jurors of the abandoned branch hold nothing and sit on nothing."""
    world = deploy(chain)
    dispute_id, _, _ = open_lie(world, chain)
    before_draw = chain.provider.make_request("evm_snapshot", [])["result"]
    chain.provider.make_request("anvil_mine", [2])
    disputer = world.court[world.pool[0]]
    disputer.advance(disputer.signer, dispute_id)
    first = [j.node_id for j in world.disputes.jury(dispute_id, 0)]
    assert all(world.disputes.holds(n) == 1 for n in first)
    chain.provider.make_request("evm_revert", [before_draw])  # the branch with the draw is abandoned
    chain.provider.make_request("anvil_setNextBlockTimestamp", [int(chain.eth.get_block("latest")["timestamp"]) + 7])
    chain.provider.make_request("anvil_mine", [2])  # another seed block: another hash
    assert world.disputes.jury(dispute_id, 0) == [] and world.disputes.dispute(dispute_id).phase_name == "drawing a jury"
    assert all(world.disputes.holds(n) == 0 for n in set(first))
    disputer.advance(disputer.signer, dispute_id)
    second = [j.node_id for j in world.disputes.jury(dispute_id, 0)]
    assert len(second) == 3 and all(world.disputes.holds(n) == 1 for n in second)
    assert all(world.disputes.holds(n) == 0 for n in set(first) - set(second))
