"""The Python side of the Registry on a real anvil chain: operators' actions and clear refusals."""

from __future__ import annotations

import pytest
from web3 import Web3

from rtc.ethereum import Anvil
from rtc.ethereum.registry import Registry
from rtc.ethereum.types import ContractRefused, JoinRequestState

ETHER = 10**18
ANVIL_PORT = 30747


@pytest.fixture(scope="module")
def chain(anvil: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


def test_operator_lifecycle_with_the_contracts_own_reasons(chain: Web3) -> None:
    owner, operator, stranger = chain.eth.accounts[:3]
    registry = Registry.deploy(chain, owner, min_deposit_wei=ETHER, cooling_off_blocks=5)
    with pytest.raises(ContractRefused, match="deposit"):
        registry.register(operator, b"\x11" * 32, ETHER // 2)
    node_id = registry.register(operator, b"\x11" * 32, 2 * ETHER)
    state = registry.node(node_id)
    assert (state.operator, state.deposit_wei, state.status) == (operator, 2 * ETHER, "active")
    cluster_id = registry.create_cluster(owner, b"\x33" * 32, b"\x22" * 32, 4)  # a Swarm reference is 32 bytes
    assert registry.cluster_owner(cluster_id) == owner
    registry.request_join(operator, node_id, cluster_id)
    assert registry.join_request(node_id) == JoinRequestState(node_id, cluster_id, chain.eth.block_number, (), 1)
    assert registry.members(cluster_id) == []
    with pytest.raises(ContractRefused, match="caller is neither the cluster's owner nor the operator of one of its members"):
        registry.approve_join(stranger, node_id)
    assert registry.approve_join(owner, node_id) is True
    assert registry.join_request(node_id) is None
    assert [m.node_id for m in registry.members(cluster_id)] == [node_id]
    with pytest.raises(ContractRefused):
        registry.request_leave(stranger, node_id)
    withdrawable = registry.request_leave(operator, node_id)
    assert registry.members(cluster_id) == [] and registry.node(node_id).status == "leaving"
    with pytest.raises(ContractRefused, match=f"withdrawable at block {withdrawable}"):
        registry.withdraw(operator, node_id)
    while chain.eth.block_number < withdrawable:
        chain.provider.make_request("evm_mine", [])
    before = chain.eth.get_balance(operator)
    registry.withdraw(operator, node_id)
    assert registry.node(node_id).status == "withdrawn"
    assert chain.eth.get_balance(operator) > before + ETHER  # the deposit, less gas


def test_members_approve_a_request_and_the_owner_sets_the_slasher(chain: Web3) -> None:
    owner, *operators = chain.eth.accounts[:6]
    registry = Registry.deploy(chain, owner, min_deposit_wei=ETHER, cooling_off_blocks=5)
    assert registry.slasher() is None
    registry.set_slasher(owner, owner)
    assert registry.slasher() == owner
    cluster_id = registry.create_cluster(owner, b"\x33" * 32, b"\x22" * 32, 8)
    ids = [registry.register(operator, bytes([0x40 + i]) * 32, 2 * ETHER) for i, operator in enumerate(operators)]
    for operator, node_id in zip(operators[:4], ids[:4]):
        registry.request_join(operator, node_id, cluster_id)
        registry.approve_join(owner, node_id)
    registry.request_join(operators[4], ids[4], cluster_id)
    assert registry.approve_join(operators[0], ids[4]) is False
    assert registry.approve_join(operators[1], ids[4]) is False
    pending = registry.join_request(ids[4])
    assert pending is not None and (pending.approvals, pending.needed) == ((ids[0], ids[1]), 3)
    with pytest.raises(ContractRefused, match=r"already approved \(2 of the 3 approvals needed so far\)"):
        registry.approve_join(operators[0], ids[4])
    assert registry.approve_join(operators[2], ids[4]) is True
    assert [m.node_id for m in registry.members(cluster_id)] == ids
    with pytest.raises(ContractRefused, match="node already joined a cluster"):
        registry.request_join(operators[0], ids[0], cluster_id)
