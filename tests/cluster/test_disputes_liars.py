"""A lying batch validator on a real 4-node cluster with six validators: it disputes a state the
honest members attested, clients refuse results while the dispute is open, the jury re-executes
and rules the state valid, the liar loses its bond, and a juror that committed and then went
silent loses part of its deposit."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from rtc.client import Client, VerificationFailed
from rtc.client.validation import attestations_in
from rtc.cometbft import RPC
from rtc.devnet import Devnet
from rtc.devnet.ethereum import DISPUTE_RULES, NODE_DEPOSIT
from rtc.ethereum.disputes import VALID, Disputes
from rtc.ethereum.registry import Registry
from rtc.ethereum.validation import Validation
from rtc.protocol.attestation import AttestationTx
from rtc.validator import attester_key
from tests.helpers import wait_until

from .conftest import start_cluster
from .test_disputes_cartel import trust_of


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("liars") / "devnet", "stock", validators=6)
    yield devnet
    devnet.stop()


def test_a_lying_validator_loses_its_bond_and_a_silent_juror_part_of_its_deposit(cluster: Devnet) -> None:
    eth = cluster.ethereum
    registry = Registry.connect(eth.url, eth.registry)
    validation = Validation.connect(eth.url, eth.validation)
    liar = cluster.validators[-1]
    court = Disputes.connect(eth.url, eth.disputes, private_key=attester_key(Path(liar.home)))
    with Client([n.rpc for n in cluster.nodes], trust=trust_of(cluster)) as client:
        session = client.session()
        for value in range(3):
            session.verified(session.call({"function": "update_high", "symbol": "OK", "value": float(value)}))
        with RPC(cluster.nodes[0].rpc) as rpc:
            head = rpc.latest_height()
            attested = AttestationTx.decode(attestations_in(rpc.block(head)))  # of the state after head-3
        _, code_hash = registry.code_of(eth.cluster_id)
        state = attested.state.attestation(bytes.fromhex(eth.registry[2:]), eth.cluster_id, code_hash)
        dispute_id, _ = court.open_dispute(court.signer, state, list(attested.signatures), b"\x01" * 32, 0,
                                           liar.node_id, DISPUTE_RULES.bond_wei, validation.domain())

        with pytest.raises(VerificationFailed) as refused:  # while it is open, nothing above it is believed
            session.verified(session.call({"function": "update_high", "symbol": "OK", "value": 9.0}))
        assert refused.value.check.name == "disputes" and f"dispute {dispute_id}" in refused.value.check.detail

        by_node = {v.node_id: i for i, v in enumerate(cluster.validators)}
        committed: list[int] = []

        def a_juror_committed() -> bool:
            committed.extend(j.node_id for j in court.jury(dispute_id, 0) if j.committed)
            return bool(committed)

        wait_until(a_juror_committed, 90, "a juror's commitment")
        silent = committed[0]
        silent_deposit = registry.node(silent).deposit_wei
        cluster.stop_validator(by_node[silent])  # it committed and will not reveal
        try:
            wait_until(lambda: court.dispute(dispute_id).status != 1, 240, "the ruling")
            ruled = court.dispute(dispute_id)
            assert ruled.status == VALID and ruled.slashed_wei == 0 and ruled.bounty_wei == 0
            assert court.claimable(court.signer) == 0 and court.total_burned() >= DISPUTE_RULES.bond_wei
            assert registry.node(silent).deposit_wei == silent_deposit - silent_deposit // 10
            assert all(registry.node(n).deposit_wei == NODE_DEPOSIT for n in eth.node_ids)
            assert registry.node(liar.node_id).deposit_wei == NODE_DEPOSIT  # not a member: the bond was its stake
            assert validation.frozen_at(eth.cluster_id) is None
            assert court.holds(silent) == 0 and court.holds(liar.node_id) == 0
            receipt = session.verified(session.call({"function": "update_high", "symbol": "OK", "value": 10.0}))
            assert receipt.check("disputes").passed
        finally:
            cluster.start_validator(by_node[silent])
