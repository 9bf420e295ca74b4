"""The light client against a real 4-node devnet: what its nodes serve over RPC verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from web3 import Web3

from rtc.client import NodeClient, Session, verified_result
from rtc.client.lightclient import (
    BlockIDFlag,
    VerificationError,
    header_hash,
    parse_header,
    parse_signed_header,
    parse_validators,
    validator_set_hash,
    verify_commit,
)
from rtc.client.membership import ContractCheck
from rtc.devnet import Devnet

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
RTC = [sys.executable, "-m", "rtc.cli.main"]


async def test_a_result_verifies_against_the_registry_alone(devnet: Devnet) -> None:
    """No genesis, no pinned hash: the contract read through our own Ethereum endpoint is the root of trust."""
    eth = devnet.ethereum
    assert eth is not None, "the devnet should have registered its nodes in the Registry"
    contract = ContractCheck.connect(eth.url, eth.registry, eth.cluster_id)
    async with NodeClient(devnet.nodes[1].rpc) as node:
        session = Session(node, SigningKey.generate())
        result = await session.call_and_wait({"function": "sum", "x": 20, "y": 22})
        receipt = await verified_result(node, session.key_bytes, result.counter, None, contract=contract,
                                        chain_id=devnet.chain_id)
        with pytest.raises(VerificationError) as refused:  # the same answer, checked against a cluster it is not
            await verified_result(node, session.key_bytes, result.counter, None,
                                  contract=ContractCheck.connect(eth.url, eth.registry, eth.cluster_id + 1),
                                  chain_id=devnet.chain_id)
    assert refused.value.kind == "membership"
    assert receipt.result.value == 42
    membership = receipt.membership
    assert membership is not None and membership.active_members == 4 and membership.validator_set_size == 4
    assert membership.registry == Web3.to_checksum_address(eth.registry) and membership.cluster_id == eth.cluster_id
    members = receipt.to_json()["members"]
    # Every signer is listed with its facts; a slow fourth vote may leave 3 signers, still more than 2/3.
    assert len(members) == len(receipt.signers) >= 3
    assert sorted(m["validator_address"] for m in members) == sorted(s["address"].upper() for s in receipt.signers)
    for member in members:
        assert member["node_id"] in eth.node_ids and member["operator"] in eth.operators
        assert (member["status"], member["deposit_wei"], member["withdrawable_block"]) == ("active", 10 * ETHER, 0)
    checks = receipt.checks
    assert len(checks) == 6 and not any("trusted one" in c for c in checks)
    assert "trusted through the Registry check below" in checks[2]
    assert f"members of cluster {eth.cluster_id} in Registry {membership.registry} with deposits in place " \
           "(10.0 ETH each), more than 2/3 of the 4 active members" in checks[4]


def rtc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTC, *args], capture_output=True, text=True, timeout=120)


def test_the_cli_verifies_with_the_registry_and_shows_the_members(devnet: Devnet, tmp_path: Path) -> None:
    eth = devnet.ethereum
    assert eth is not None
    key = str(tmp_path / "client.key")
    called = rtc("call", "--home", str(devnet.home), "--key", key, "--verify", "-J", "sum", "x=1", "y=2")
    assert called.returncode == 0, called.stderr
    receipt = json.loads(called.stdout)
    assert receipt["result"]["value"] == 3
    assert receipt["contract"]["active_members"] == 4 and receipt["contract"]["cluster_id"] == eth.cluster_id
    assert len(receipt["members"]) == len(receipt["signers"]) >= 3
    assert {m["node_id"] for m in receipt["members"]} <= set(eth.node_ids)
    assert all(m["deposit_wei"] == 10 * ETHER and m["status"] == "active" for m in receipt["members"])
    assert any("with deposits in place (10.0 ETH each)" in c for c in receipt["checks"])
    session = receipt["result"]["session"]

    # Text output: the members and their deposits under the checks.
    shown = rtc("result", "--home", str(devnet.home), "--session", session, "--counter", "0", "--verify")
    assert shown.returncode == 0, shown.stderr
    assert f"signers in Registry {Web3.to_checksum_address(eth.registry)}, cluster {eth.cluster_id}" in shown.stdout
    assert "10.0 ETH  active" in shown.stdout and "counted: active member" in shown.stdout

    # Any cluster: name the endpoint, the contract and the cluster; the chain id is then the node's word.
    where = ["--eth-rpc", eth.url, "--registry", eth.registry]
    flagged = rtc("result", "--node", devnet.nodes[2].rpc, "--session", session, "--counter", "0", "--verify", "-J",
                  *where, "--cluster-id", str(eth.cluster_id))
    assert flagged.returncode == 0, flagged.stderr
    flagged_receipt = json.loads(flagged.stdout)
    assert len(flagged_receipt["members"]) >= 3
    assert "(the chain id the node reports)" in flagged_receipt["checks"][1]
    wrong = rtc("result", "--node", devnet.nodes[2].rpc, "--session", session, "--counter", "0", "--verify",
                *where, "--cluster-id", str(eth.cluster_id + 1))
    assert wrong.returncode == 1 and "is the cluster id right?" in wrong.stderr and wrong.stdout == ""
    partial = rtc("result", "--node", devnet.nodes[2].rpc, "--session", session, "--counter", "0", "--verify", *where)
    assert partial.returncode != 0 and "go together" in partial.stderr


def test_the_sync_sdk_verifies_with_the_contract_and_fetches_no_genesis(devnet: Devnet) -> None:
    from rtc.client import Client
    from rtc.client import ContractCheck as Exported

    eth = devnet.ethereum
    assert eth is not None and Exported is ContractCheck
    with Client(devnet.nodes[3].rpc, contract=ContractCheck.connect(eth.url, eth.registry, eth.cluster_id)) as client:
        session = client.session()
        assert session.call_and_wait({"function": "sum", "x": 4, "y": 5}).value == 9
        receipt = session.verified(0)
        assert client._trusted is None  # the contract alone was the root of trust
    assert receipt.membership is not None and len(receipt.to_json()["members"]) >= 3
    assert "(the chain id the node reports)" in receipt.checks[1]
