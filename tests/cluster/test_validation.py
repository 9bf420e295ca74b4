"""Batch validation on a real 4-node cluster with anvil and three batch validators: the members'
attestations ride on their precommits, land in the blocks (and so in Swarm), every K-th
height's reach the Validation contract as a checkpoint of the state every node has and the
record in Swarm, validators outside the cluster are drawn, re-execute from Swarm alone and
endorse, the lag falls to zero transactions after calls stop, and a stopped validator is
replaced after its deadline."""

from __future__ import annotations

import base64
import dataclasses
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
from rtc.swarm import Swarm
from rtc.validator import CannotJudge, ClusterSource, Replica

from tests.helpers import wait_until

from .conftest import start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("validation") / "devnet", "stock", validators=3)
    yield devnet
    devnet.stop()


@pytest.fixture(scope="module")
def swarm(cluster: Devnet) -> Iterator[Swarm]:
    """The devnet's embedded Swarm store, opened once (LMDB allows one environment per process)."""
    store = open_swarm(cluster.swarm.store)
    yield store
    store.close()


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


def test_checkpoints_reach_the_contract_with_the_state_and_the_record_in_swarm(cluster: Devnet, swarm: Swarm) -> None:
    validation = Validation.connect(cluster.ethereum.url, cluster.ethereum.validation)
    interval = validation.checkpoint_interval(cluster.ethereum.cluster_id)
    assert interval == 10
    deadline = time.monotonic() + 90
    while validation.last_checkpoint(cluster.ethereum.cluster_id) < 2 * interval:
        assert time.monotonic() < deadline, "no second checkpoint within 90 s"
        time.sleep(1)
    reader = HistoryReader(swarm, history_signer(NodeHome(Path(cluster.nodes[2].home))).owner, cluster.chain_id)
    with RPC(cluster.nodes[3].rpc) as rpc:
        for height in (interval, 2 * interval):
            checkpoint = validation.checkpoint(cluster.ethereum.cluster_id, height)
            assert checkpoint is not None and 3 * checkpoint.attesters > 2 * checkpoint.members == 8
            assert checkpoint.app_hash.hex().upper() == rpc.block(height + 1)["header"]["app_hash"]
            located = reader.record_at(height)
            assert checkpoint.record == located.reference and located.record.app_hash == checkpoint.app_hash


def test_validators_outside_the_cluster_re_execute_and_endorse_until_no_transaction_lags(cluster: Devnet) -> None:
    from rtc.client import Client
    from rtc.client.validation import read_status

    with Client(cluster.nodes[0].rpc) as client:
        session = client.session()
        for value in range(1, 6):
            session.call({"function": "update_high", "symbol": "L", "value": float(value)})
        last = session.result(4)
    validation = Validation.connect(cluster.ethereum.url, cluster.ethereum.validation)
    cluster_id = cluster.ethereum.cluster_id
    wait_until(lambda: validation.validated_height(cluster_id) >= last.height, 120,
               f"no checkpoint at or above block {last.height} validated")
    with RPC(cluster.nodes[1].rpc) as rpc:
        status = read_status(validation, cluster_id, rpc)
    assert status.lag_txs == 0 and status.lag_txs_exact and status.covers(last.height)
    assert status.lag_blocks == status.head_height - status.validated_height
    validators = {v.node_id for v in cluster.validators}
    validated = [c for c in status.checkpoints if c.status == "validated"]
    assert validated and all(set(c.validators) <= validators and c.endorsements == 2 for c in validated)
    assert not validators & set(cluster.ethereum.node_ids)  # never the cluster's own members
    endorsers = {node for checkpoint in validated for node in checkpoint.validators}
    for validator in cluster.validators:  # each re-executed on its own, from Swarm: its replica is in its home
        if validator.node_id in endorsers:
            assert (Path(validator.home) / "clusters" / str(cluster_id) / "progress.json").exists()


def test_a_stopped_validator_is_replaced_after_its_deadline(cluster: Devnet) -> None:
    validation = Validation.connect(cluster.ethereum.url, cluster.ethereum.validation)
    cluster_id = cluster.ethereum.cluster_id
    stopped = cluster.validators[0].node_id
    cluster.stop_validator(0)
    try:
        start = validation.last_checkpoint(cluster_id)

        def drawn_and_missed() -> int | None:
            for height in range(start + 10, validation.last_checkpoint(cluster_id) + 1, 10):
                slots = validation.drawn(cluster_id, height)
                if any(slot.node_id == stopped for slot in slots):
                    return height
            return None

        wait_until(lambda: drawn_and_missed() is not None, 180, "the stopped validator was never drawn")
        height = drawn_and_missed()
        deadline = max(slot.deadline for slot in validation.drawn(cluster_id, height))
        w3 = validation.w3
        w3.provider.make_request("anvil_mine", [max(1, deadline - int(w3.eth.block_number) + 1)])
        wait_until(lambda: all(s.endorsed for s in validation.drawn(cluster_id, height)), 60,
                   "the checkpoint was not validated after the no-show was replaced")
        final = validation.drawn(cluster_id, height)
        assert stopped not in [slot.node_id for slot in final]
    finally:
        cluster.start_validator(0)


def test_a_validator_tells_a_false_checkpoint_from_history_it_cannot_read(
        cluster: Devnet, swarm: Swarm, tmp_path: Path) -> None:
    """Bad input for a validator: what Swarm lacks or does not match is "cannot judge yet", never a
    verdict; a checkpoint or record that re-executes to another state is a disagreement."""
    validation = Validation.connect(cluster.ethereum.url, cluster.ethereum.validation)
    registry = Registry.connect(cluster.ethereum.url, cluster.ethereum.registry)
    cluster_id = cluster.ethereum.cluster_id
    wait_until(lambda: validation.last_checkpoint(cluster_id) >= 10, 60, "no checkpoint")
    checkpoint = validation.checkpoint(cluster_id, 10)
    code_reference, code_hash = registry.code_of(cluster_id)
    source = ClusterSource(cluster_id, code_reference, code_hash, validation.validator_rules(cluster_id)[2])

    def replica(name: str, source: ClusterSource = source) -> Replica:
        return Replica(tmp_path / name, swarm, source)

    honest = replica("honest").judge(10, checkpoint.record, checkpoint.app_hash, 10)
    assert honest.agrees and honest.replayed == 10 and honest.app_hash == checkpoint.app_hash
    wait_until(lambda: validation.last_checkpoint(cluster_id) >= 20, 60, "no second checkpoint")
    second = validation.checkpoint(cluster_id, 20)
    resumed = replica("honest").judge(20, second.record, second.app_hash, 10)  # a restarted validator goes on
    assert resumed.agrees and resumed.replayed == 10
    assert replica("honest").judge(10, checkpoint.record, checkpoint.app_hash, 10).agrees  # remembered, not replayed
    # A height it replayed past without keeping it (a member's dispute of its own last height, say):
    # judged again from genesis aside, not "cannot judge" for ever (a dispute that never settles).
    reader = HistoryReader(swarm, b"", cluster.chain_id)
    reference = second.record
    for _ in range(5):
        reference = reader.record(reference).previous or b""
    fifteen = reader.record(reference)
    assert fifteen.height == 15
    behind = replica("honest").judge(15, reference, fifteen.app_hash, 10)
    assert behind.agrees and behind.replayed == 15
    assert not (tmp_path / "honest" / "scratch").exists()
    progress = tmp_path / "honest" / "progress.json"  # a crash between committing a block and saving progress:
    progress.write_text(progress.read_text().replace('"height": 20', '"height": 19'))
    again = replica("honest").judge(20, second.record, second.app_hash, 10)  # starts over from genesis
    assert again.agrees and again.replayed == 20
    with pytest.raises(CannotJudge, match="not in Swarm"):  # a record nobody uploaded
        replica("missing").judge(10, b"\x07" * 32, checkpoint.app_hash, 10)
    with pytest.raises(CannotJudge, match="code hash"):  # code in Swarm that is not the Registry's
        replica("code", ClusterSource(cluster_id, code_reference, b"\x01" * 32, source.genesis_reference)).judge(
            10, checkpoint.record, checkpoint.app_hash, 10)
    with pytest.raises(CannotJudge, match="not in Swarm"):  # the genesis is missing
        replica("genesis", ClusterSource(cluster_id, code_reference, code_hash, b"\x08" * 32)).judge(
            10, checkpoint.record, checkpoint.app_hash, 10)

    lie = replica("lie").judge(10, checkpoint.record, b"\x09" * 32, 10)  # members attested another state
    assert not lie.agrees and lie.app_hash == checkpoint.app_hash and "checkpoint's" in lie.detail

    record = reader.record(checkpoint.record)
    forged = dataclasses.replace(record, app_hash=b"\x0a" * 32)  # a record claiming another state after block 10
    verdict = replica("forged").judge(10, swarm.upload(forged.encode()), forged.app_hash, 10)
    assert not verdict.agrees and "replaying block 10" in verdict.detail


def test_a_receipt_shows_the_attestations_and_the_lag_and_can_wait_for_validation(cluster: Devnet) -> None:
    from rtc.client import Client, ContractCheck, TrustPolicy, ValidationCheck, VerificationFailed

    eth = cluster.ethereum
    trust = TrustPolicy.registry(ContractCheck.connect(eth.url, eth.registry, eth.cluster_id), cluster.chain_id)
    trust = trust.with_validation(ValidationCheck.connect(eth.url, eth.validation, eth.registry, eth.cluster_id))
    registry = Registry.connect(eth.url, eth.registry)
    attesters = {bytes.fromhex(registry.attester(node_id)[2:]) for node_id in eth.node_ids}
    with Client([n.rpc for n in cluster.nodes], trust=trust) as client:
        session = client.session()
        session.call({"function": "update_high", "symbol": "R", "value": 1.0})
        receipt = session.receipt(0)
        assert receipt.ok and receipt.attestations is not None
        assert set(receipt.attestations.signers) <= attesters and 3 * len(receipt.attestations.signers) > 8
        assert receipt.attestations.app_hash == receipt.app_hash and receipt.attestations.height == receipt.state_height
        assert receipt.check("attestations").passed
        shown = receipt.to_json()["validation"]
        assert set(shown) == {"validated_height", "lag_blocks", "lag_txs", "validated"}
        session.call({"function": "update_high", "symbol": "R", "value": 2.0})
        with pytest.raises(VerificationFailed) as early:  # a checkpoint is 10 blocks away at least
            session.verified(1, timeout=4.0, validated=True)
        assert early.value.check.name == "validation" and "lag" in early.value.check.detail
        validated = session.verified(1, timeout=90, validated=True)
        assert validated.validated and validated.check("validation").passed
        assert validated.validation.validated_height >= validated.result.height


def test_the_cli_shows_the_validation_status_and_a_validated_result(cluster: Devnet) -> None:
    from tests import helpers

    validation = Validation.connect(cluster.ethereum.url, cluster.ethereum.validation)
    wait_until(lambda: validation.validated_height(cluster.ethereum.cluster_id) > 0, 120, "nothing validated")
    status = helpers.rtc("validation", "status", "--home", cluster.home, "-J")
    assert status.code == 0, status.err
    shown = status.json
    assert set(shown) >= {"cluster_id", "head_height", "validated_height", "lag_blocks", "lag_txs", "checkpoints"}
    assert shown["lag_blocks"] == shown["head_height"] - shown["validated_height"]
    assert all(set(c) == {"height", "app_hash", "status", "validators", "endorsements"} for c in shown["checkpoints"])
    assert "validated" in {c["status"] for c in shown["checkpoints"]}
    text = helpers.rtc("validation", "status", "--home", cluster.home)
    assert text.code == 0 and "validated" in text.out and "lag" in text.out
    # its own process: --verify opens the devnet's embedded Swarm store, which this one holds open
    call = helpers.rtc_process("call", "--home", cluster.home, "update_high", "symbol=CLI", "value=2.5", "--verify",
                               "--require-validated", "--timeout", "90", "--key", cluster.home / "client.key", "-J")
    assert call.code == 0, call.err
    assert call.json["validation"]["validated"] is True and call.json["attestations"]["signers"]
    missing = helpers.rtc("validation", "status", "--eth-rpc", cluster.ethereum.url)
    assert missing.code != 0 and "--validation" in missing.err
    assert helpers.rtc("dispute", "list", "--home", cluster.home, "-J").json == []  # honest: nobody disputed
