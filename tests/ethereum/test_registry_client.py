"""The Python side of the Registry on a real anvil chain: operators' actions and clear refusals."""

from __future__ import annotations

import pytest
from web3 import Web3

from rtc.ethereum import Anvil
from rtc.ethereum.registry import Registry
from rtc.ethereum.types import ContractRefused

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
    registry.join(operator, node_id, cluster_id)
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
