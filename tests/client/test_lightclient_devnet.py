"""The light client against a real 4-node devnet: what its nodes serve over RPC verifies."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from web3 import Web3

from rtc.client import AsyncClient, Client, ContractCheck, TrustPolicy, verify
from rtc.cometbft.lightclient import (
    BlockIDFlag,
    header_hash,
    parse_header,
    parse_signed_header,
    parse_validators,
    validator_set_hash,
    verify_commit,
)
from rtc.devnet import Devnet
from tests.helpers import rtc_process as rtc

from .conftest import DEVNET_HEIGHTS, Sample, fetch_sample, rpc_result

pytestmark = pytest.mark.cluster


def test_every_early_block_verifies(devnet: Devnet) -> None:
    nil_votes = 0
    for height in range(1, DEVNET_HEIGHTS):
        sample = fetch_sample(devnet, height)
        sh = parse_signed_header(sample.commit)
        assert header_hash(sample.header) == sh.commit.block_id.hash, height
        assert validator_set_hash(sample.validators) == sh.header.validators_hash, height
        block = rpc_result(devnet, "block", height=height)
        assert bytes.fromhex(block["block_id"]["hash"]) == header_hash(block["block"]["header"]) == sh.commit.block_id.hash
        # The next header links back to this block (its last_block_id is the block ID the commit signs).
        following = parse_header(rpc_result(devnet, "block", height=height + 1)["block"]["header"])
        assert following.last_block_id == sh.commit.block_id

        result = verify_commit(devnet.chain_id, sample.commit, sample.validators, height=height)
        assert result.total_power == 40 and result.signed_power > 26
        assert result.block_hash == sh.commit.block_id.hash
        light = verify_commit(devnet.chain_id, sample.commit, sample.validators, all_signatures=False)
        assert light.signed_power > 26
        nil_votes += sum(s.block_id_flag == BlockIDFlag.NIL for s in sh.commit.signatures)
    print(f"verified heights 1-{DEVNET_HEIGHTS - 1}; real nil votes among them (signatures checked too): {nil_votes}")


def test_all_nodes_serve_the_same_verified_block(devnet: Devnet, devnet_sample: Sample) -> None:
    reference = verify_commit(devnet.chain_id, devnet_sample.commit, devnet_sample.validators)
    for index in range(1, len(devnet.nodes)):
        url = devnet.nodes[index].rpc
        commit = httpx.get(f"{url}/commit", params={"height": devnet_sample.height}, timeout=5).json()
        validators = httpx.get(f"{url}/validators", params={"height": devnet_sample.height}, timeout=5).json()
        result = verify_commit(devnet.chain_id, commit, validators)
        assert result.block_id == reference.block_id
        assert result.app_hash == reference.app_hash


def test_the_set_is_ordered_by_power_then_address(devnet_sample: Sample) -> None:
    vals = parse_validators(devnet_sample.validators)
    assert [v.address for v in vals] == sorted(v.address for v in vals)  # equal powers: by address


ETHER = 10**18


async def test_a_result_verifies_against_the_registry_alone(devnet: Devnet) -> None:
    """No genesis, no pinned hash: the contract read through our own Ethereum endpoint is the root of trust."""
    eth = devnet.ethereum
    assert eth is not None, "the devnet should have registered its nodes in the Registry"
    trust = TrustPolicy.registry(ContractCheck.connect(eth.url, eth.registry, eth.cluster_id), devnet.chain_id)
    elsewhere = TrustPolicy.registry(ContractCheck.connect(eth.url, eth.registry, eth.cluster_id + 1), devnet.chain_id)
    async with AsyncClient(devnet.nodes[1].rpc, trust) as node:
        session = node.session()
        result = await session.call_and_wait({"function": "sum", "x": 20, "y": 22})
        receipt = await session.verified(result.counter)
        evidence = await node.evidence(session.session_key, result.counter)
    async with AsyncClient(devnet.nodes[1].rpc, elsewhere) as node:  # the same answer, for a cluster it is not
        refused = await node.receipt(session.session_key, result.counter)
    assert not refused.ok and refused.result is None and refused.failure.name == "registry"
    assert refused.failure.kind == "membership" and "is the cluster id right?" in refused.failure.detail
    assert verify(evidence, trust).ok  # the evidence re-checks offline
    mixed = verify(evidence, elsewhere)  # facts read for one cluster never stand for another
    assert not mixed.ok and "the facts were read for cluster" in mixed.failure.detail
    assert receipt.result.value == 42
    membership = receipt.membership
    assert membership is not None and membership.active_members == 4 and membership.validator_set_size == 4
    assert membership.registry == Web3.to_checksum_address(eth.registry) and membership.cluster_id == eth.cluster_id
    members = receipt.to_json()["members"]
    # Every signer is listed with its facts; a slow fourth vote may leave 3 signers, still more than 2/3.
    assert len(members) == len(receipt.signers) >= 3
    assert sorted(m["validator_address"] for m in members) == sorted(s.address.hex().upper() for s in receipt.signers)
    for member in members:
        assert member["node_id"] in eth.node_ids and member["operator"] in eth.operators
        assert (member["status"], member["deposit_wei"], member["withdrawable_block"]) == ("active", 10 * ETHER, 0)
    assert [c.name for c in receipt.checks] == ["answer", "header", "validator_set", "signatures", "registry",
                                                "state_proof", "final"]
    assert all(c.passed for c in receipt.checks)
    assert "Registry check below" in receipt.check("validator_set").assumption
    assert f"members of cluster {eth.cluster_id} in Registry {membership.registry} with deposits in place " \
           "(10.0 ETH each), more than 2/3 of the 4 active members" in receipt.check("registry").detail


def test_the_cli_verifies_with_the_registry_and_shows_the_members(devnet: Devnet, tmp_path: Path) -> None:
    eth = devnet.ethereum
    assert eth is not None
    key = str(tmp_path / "client.key")
    called = rtc("call", "--home", str(devnet.home), "--key", key, "--verify", "-J", "sum", "x=1", "y=2")
    assert called.code == 0, called.err
    receipt = called.json
    assert receipt["ok"] and receipt["result"]["value"] == 3
    assert receipt["contract"]["active_members"] == 4 and receipt["contract"]["cluster_id"] == eth.cluster_id
    assert len(receipt["members"]) == len(receipt["signers"]) >= 3
    assert {m["node_id"] for m in receipt["members"]} <= set(eth.node_ids)
    assert all(m["deposit_wei"] == 10 * ETHER and m["status"] == "active" for m in receipt["members"])
    registry_check = next(c for c in receipt["checks"] if c["name"] == "registry")
    assert registry_check["passed"] and "with deposits in place (10.0 ETH each)" in registry_check["detail"]
    session = receipt["result"]["session"]

    # Text output: the members and their deposits under the checks.
    shown = rtc("result", "--home", str(devnet.home), "--session", session, "--counter", "0", "--verify")
    assert shown.code == 0, shown.err
    assert f"signers in Registry {Web3.to_checksum_address(eth.registry)}, cluster {eth.cluster_id}" in shown.out
    assert "10.0 ETH  active" in shown.out and "counted: active member" in shown.out

    # Any cluster: name the endpoint, the contract and the cluster; the chain id is then the node's word.
    where = ["--eth-rpc", eth.url, "--registry", eth.registry]
    flagged = rtc("result", "--node", devnet.nodes[2].rpc, "--session", session, "--counter", "0", "--verify", "-J",
                  *where, "--cluster-id", str(eth.cluster_id))
    assert flagged.code == 0, flagged.err
    flagged_receipt = flagged.json
    assert len(flagged_receipt["members"]) >= 3
    header = next(c for c in flagged_receipt["checks"] if c["name"] == "header")
    assert "the node's own report" in header["assumption"]
    wrong = rtc("result", "--node", devnet.nodes[2].rpc, "--session", session, "--counter", "0", "--verify",
                *where, "--cluster-id", str(eth.cluster_id + 1))
    assert wrong.code == 3 and "NOT verified" in wrong.out and "is the cluster id right?" in wrong.out
    assert '"value"' not in wrong.out and "\n3\n" not in wrong.out  # the unverified value is never shown
    partial = rtc("result", "--node", devnet.nodes[2].rpc, "--session", session, "--counter", "0", "--verify", *where)
    assert partial.code != 0 and "go together" in partial.err


def test_the_sync_sdk_verifies_with_the_contract_and_fetches_no_genesis(devnet: Devnet) -> None:
    eth = devnet.ethereum
    assert eth is not None
    trust = TrustPolicy.registry(ContractCheck.connect(eth.url, eth.registry, eth.cluster_id))
    with Client(devnet.nodes[3].rpc, trust) as client:
        session = client.session()
        assert session.call_and_wait({"function": "sum", "x": 4, "y": 5}).value == 9
        receipt = session.verified(0)
        evidence = client.evidence(session.session_key, 0)
    assert evidence.genesis is None  # the contract alone was the root of trust
    assert receipt.membership is not None and len(receipt.to_json()["members"]) >= 3
    assert "the node's own report" in receipt.check("header").assumption
