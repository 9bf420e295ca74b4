"""Batch validation on a real 4-node cluster with anvil: the members' attestations ride on their
precommits, land in the blocks (and so in Swarm), and every K-th height's reach the
Validation contract as a checkpoint of the state every node has and the record in Swarm."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Iterator

import pytest

from rtc.cometbft import RPC, NodeHome
from rtc.devnet import Devnet
from rtc.ethereum.registry import Registry
from rtc.ethereum.validation import Validation
from rtc.history.config import history_signer, open_swarm
from rtc.history.reader import HistoryReader
from rtc.node.attesting import AttestationRules
from rtc.node.config import GenesisAppState
from rtc.protocol.attestation import AttestationTx, is_attestation_tx

from .conftest import start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("validation") / "devnet", "stock")
    yield devnet
    devnet.stop()


def attestations_in(rpc: RPC, height: int) -> AttestationTx | None:
    txs = [base64.b64decode(tx) for tx in rpc.block(height)["data"]["txs"] or []]
    found = [tx for tx in txs[:2] if is_attestation_tx(tx)]
    return AttestationTx.decode(found[0]) if found else None


def test_blocks_carry_more_than_two_thirds_of_the_members_attestations_of_the_state_three_back(cluster: Devnet) -> None:
    from rtc.client import Client

    with Client(cluster.nodes[0].rpc) as client:
        session = client.session()
        for value in (1.0, 2.0, 3.0):
            session.call({"function": "update_high", "symbol": "V", "value": value})
        session.result(2)
    cluster.wait_for_height(12, timeout=60)
    genesis = NodeHome(Path(cluster.nodes[0].home)).genesis()
    rules = AttestationRules.of(GenesisAppState.of(genesis).settings, bytes.fromhex(cluster.code_hash))
    assert rules is not None
    registry = Registry.connect(cluster.ethereum.url, cluster.ethereum.registry)
    attesters = {bytes.fromhex(registry.attester(node_id)[2:]) for node_id in cluster.ethereum.node_ids}
    with RPC(cluster.nodes[1].rpc) as rpc:
        carried = 0
        for height in range(5, 12):
            batch = attestations_in(rpc, height)
            if batch is None:
                continue
            carried += 1
            assert batch.state.height == height - 3
            next_header = rpc.block(height - 2)["header"]  # holds the app_hash after height - 3
            assert batch.state.app_hash.hex().upper() == next_header["app_hash"]
            signers = [rules.signer(batch.state, signature) for signature in batch.signatures]
            assert signers == sorted(signers) and set(signers) <= attesters and 3 * len(signers) > 2 * len(attesters)
    assert carried >= 5, f"only {carried} of 7 blocks carried attestations"


def test_checkpoints_reach_the_contract_with_the_state_and_the_record_in_swarm(cluster: Devnet) -> None:
    validation = Validation.connect(cluster.ethereum.url, cluster.ethereum.validation)
    interval = validation.checkpoint_interval(cluster.ethereum.cluster_id)
    assert interval == 10
    deadline = time.monotonic() + 90
    while validation.last_checkpoint(cluster.ethereum.cluster_id) < 2 * interval:
        assert time.monotonic() < deadline, "no second checkpoint within 90 s"
        time.sleep(1)
    reader = HistoryReader(open_swarm(cluster.swarm.store), history_signer(NodeHome(Path(cluster.nodes[2].home))).owner,
                           cluster.chain_id)
    with RPC(cluster.nodes[3].rpc) as rpc:
        for height in (interval, 2 * interval):
            checkpoint = validation.checkpoint(cluster.ethereum.cluster_id, height)
            assert checkpoint is not None and 3 * checkpoint.attesters > 2 * checkpoint.members == 8
            assert checkpoint.app_hash.hex().upper() == rpc.block(height + 1)["header"]["app_hash"]
            located = reader.record_at(height)
            assert checkpoint.record == located.reference and located.record.app_hash == checkpoint.app_hash
