"""On a real 4-node cluster with anvil: the validator set follows the Registry.

A fifth node registers, is admitted by the cluster's owner and starts signing; a node
leaves and stops signing, and its deposit comes back only after the cooling-off; with
Ethereum down the cluster keeps running and catches up afterwards, and a node slashed by
the Registry's owner (standing in for a ruling of the Disputes contract) is dropped; strangers who ask to join change nothing.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from rtc.cometbft import NodeHome
from rtc.devnet import Devnet
from rtc.devnet.ethereum import ETHER, MIN_DEPOSIT
from rtc.ethereum.registry import Registry
from rtc.ethereum.types import ContractRefused
from tests.helpers import rtc

from .conftest import assert_all_agree, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("membership") / "devnet", "stock")
    yield devnet
    devnet.stop()


def registry_of(devnet: Devnet) -> Registry:
    assert devnet.ethereum is not None
    return Registry.connect(devnet.ethereum.url, devnet.ethereum.registry)


def rpc(devnet: Devnet, method: str, **params: object) -> dict:
    for node in devnet.nodes:
        try:
            return httpx.get(f"{node.rpc}/{method}", params=params, timeout=5).json()["result"]
        except httpx.HTTPError:
            continue
    raise AssertionError("no node answers")


def validator_keys(devnet: Devnet, height: int | None = None) -> set[bytes]:
    params = {"per_page": 100} | ({"height": height} if height else {})
    return {base64.b64decode(v["pub_key"]["value"]) for v in rpc(devnet, "validators", **params)["validators"]}


def signer_addresses(devnet: Devnet, height: int) -> set[str]:
    signatures = rpc(devnet, "commit", height=height)["signed_header"]["commit"]["signatures"]
    return {s["validator_address"] for s in signatures if s["block_id_flag"] == 2}


def address_of(home: str) -> str:
    return json.loads((Path(home) / "config" / "priv_validator_key.json").read_text())["address"]


def latest_height(devnet: Devnet) -> int:
    return int(rpc(devnet, "status")["sync_info"]["latest_block_height"])


def members_json(devnet: Devnet) -> list[dict]:
    """What `rtc cluster members -J` reports."""
    run = rtc("cluster", "members", "--home", devnet.home, "-J")
    assert run.code == 0, run.err
    return run.json["members"]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.3)


def test_a_fifth_node_joins_and_signs_a_leaving_node_stops_and_withdraws_after_cooling_off(cluster: Devnet) -> None:
    assert len(validator_keys(cluster)) == 4
    info = cluster.add_node(timeout=120)
    new_key = NodeHome(Path(info.home)).validator_key()
    wait_until(lambda: new_key in validator_keys(cluster), "node4 is a validator")
    joined = latest_height(cluster)
    cluster.wait_for_height(joined + 3)
    assert address_of(info.home) in signer_addresses(cluster, joined + 2)

    registry = registry_of(cluster)
    assert cluster.ethereum is not None
    operator, node_id = cluster.ethereum.operators[1], cluster.ethereum.node_ids[1]
    leaving_key = NodeHome(Path(cluster.nodes[1].home)).validator_key()
    withdrawable = registry.request_leave(operator, node_id)
    wait_until(lambda: leaving_key not in validator_keys(cluster), "node1 is no longer a validator")
    left = latest_height(cluster)
    cluster.wait_for_height(left + 3)
    assert address_of(cluster.nodes[1].home) not in signer_addresses(cluster, left + 2)
    assert len(signer_addresses(cluster, left + 2)) >= 3  # node0, node2, node3, node4 carry on
    assert_all_agree(cluster)  # node1 still follows the chain as a full node

    with pytest.raises(ContractRefused, match=f"cooling-off not over: withdrawable at block {withdrawable}"):
        registry.withdraw(operator, node_id)
    listed = {m["name"]: m for m in members_json(cluster)}
    assert listed["node1"]["status"] == "leaving" and listed["node1"]["withdrawable_block"] == withdrawable
    assert listed["node4"]["status"] == "active" and listed["node4"]["deposit_wei"] == 10 * ETHER
    assert registry.node(node_id).status == "leaving"
    registry.w3.provider.make_request("anvil_mine", [max(0, withdrawable - registry.w3.eth.block_number)])
    before = registry.w3.eth.get_balance(operator)
    registry.withdraw(operator, node_id)
    assert registry.node(node_id).status == "withdrawn"
    assert registry.w3.eth.get_balance(operator) > before + 9 * ETHER
    assert {m["name"]: m["status"] for m in members_json(cluster)}["node1"] == "withdrawn"
    assert_all_agree(cluster)


def test_with_ethereum_down_the_cluster_runs_on_and_catches_up_dropping_a_slashed_node(cluster: Devnet) -> None:
    cluster.stop_ethereum()
    start = latest_height(cluster)
    cluster.wait_for_height(start + 5, timeout=60)  # consensus does not wait for Ethereum
    cluster.start_ethereum()

    registry = registry_of(cluster)
    assert cluster.ethereum is not None
    owner = cluster.ethereum.owner
    slashed = NodeHome(Path(cluster.nodes[2].home)).validator_key()
    assert slashed in validator_keys(cluster)
    assert registry.slasher() == cluster.ethereum.disputes  # rulings slash; this test stands in for one
    registry.set_slasher(owner, owner)
    node_id = cluster.ethereum.node_ids[2]
    deposit = registry.node(node_id).deposit_wei
    tx = registry.contract.functions.slash(node_id, deposit - MIN_DEPOSIT + 1, "test: signed a wrong state").transact(
        {"from": owner})
    assert registry.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    registry.set_slasher(owner, cluster.ethereum.disputes)
    assert registry.node(node_id).status == "ejected"
    wait_until(lambda: slashed not in validator_keys(cluster), "the slashed node2 is no longer a validator", 60)
    assert_all_agree(cluster, [0, 2, 3, 4])


def test_strangers_who_ask_to_join_change_nothing_until_the_cluster_approves(cluster: Devnet) -> None:
    """Issue 12: two registrations with keys nobody runs used to join on their own and halt the cluster."""
    registry = registry_of(cluster)
    assert cluster.ethereum is not None
    cluster_id = cluster.ethereum.cluster_id
    assert registry.cluster_owner(cluster_id) == cluster.ethereum.owner
    before = validator_keys(cluster)
    for i, stranger in enumerate(registry.w3.eth.accounts[17:19]):  # not the devnet's accounts
        node_id = registry.register(stranger, bytes([0xE0 + i]) * 32, 10 * ETHER)
        registry.request_join(stranger, node_id, cluster_id)
        with pytest.raises(ContractRefused, match="caller is neither the cluster's owner nor the operator"):
            registry.approve_join(stranger, node_id)
    assert len(registry.pending_requests(cluster_id)) == 2
    registry.w3.provider.make_request("anvil_mine", [3])
    start = latest_height(cluster)
    cluster.wait_for_height(start + 5, timeout=60)  # blocks go on
    assert validator_keys(cluster) == before


def test_a_devnet_on_an_existing_chain_leaves_that_chain_running(tmp_path: Path) -> None:
    from rtc.ethereum import Anvil
    from tests.conftest import component_path

    from .conftest import _PORTS

    with Anvil(30690, block_time=1.0, log_path=tmp_path / "anvil.log") as anvil:
        devnet = Devnet.create(tmp_path / "devnet", 1, component_path("sum"), base_port=next(_PORTS), eth_rpc=anvil.url)
        try:
            devnet.start(timeout=90)
            assert devnet.ethereum is not None and not devnet.ethereum.managed
            registry = registry_of(devnet)
            assert [m.validator_key for m in registry.members(devnet.ethereum.cluster_id)] == \
                [NodeHome(Path(devnet.nodes[0].home)).validator_key()]
            devnet.wait_for_height(4)
        finally:
            devnet.stop()
        assert anvil.process is not None and anvil.process.poll() is None  # not ours to stop
        assert registry.w3.eth.block_number > 0
