"""A cartel of every member caught on a real 4-node cluster: all four run stock-cartel.wasm (it
records 1% more for values of 1000 or more) while the Registry and the genesis name stock.wasm. Batch
validators re-execute the first checkpoint from Swarm with the Registry's code, dispute it, a
jury of the other validators rules it invalid, the members lose their deposits, the cluster
is frozen at its genesis, and clients refuse its results naming the dispute."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from rtc.client import Client, ContractCheck, TrustPolicy, ValidationCheck, VerificationFailed
from rtc.devnet import Devnet
from rtc.devnet.ethereum import DISPUTE_RULES, NODE_DEPOSIT
from rtc.ethereum.disputes import INVALID, Disputes
from rtc.ethereum.registry import Registry
from rtc.ethereum.validation import Validation
from tests import helpers
from tests.helpers import wait_until

from .conftest import start_cluster


@pytest.fixture(scope="module")
def cartel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("cartel") / "devnet", "stock", validators=4,
                           cartel_app="stock-cartel")
    yield devnet
    devnet.stop()


def trust_of(devnet: Devnet) -> TrustPolicy:
    eth = devnet.ethereum
    trust = TrustPolicy.registry(ContractCheck.connect(eth.url, eth.registry, eth.cluster_id), devnet.chain_id)
    return trust.with_validation(ValidationCheck.connect(eth.url, eth.validation, eth.registry, eth.cluster_id))


def test_validators_catch_the_cartel_a_jury_rules_it_invalid_and_it_loses_its_deposits(cartel: Devnet) -> None:
    eth = cartel.ethereum
    disputes = Disputes.connect(eth.url, eth.disputes)
    registry = Registry.connect(eth.url, eth.registry)
    with Client([n.rpc for n in cartel.nodes], trust=trust_of(cartel)) as client:
        session = client.session()
        lied = time.monotonic()
        counter = session.call({"function": "update_high", "symbol": "LIE", "value": 1000.0})
        assert client.wait_for_result(session.session_key, counter).record.value == {"ok": pytest.approx(1010.0)}  # the lie
        wait_until(lambda: any(d.status == INVALID for d in disputes.disputes_of(eth.cluster_id)), 180,
                   "the cartel's checkpoint ruled invalid")
        print(f"\nfrom the lie to the ruling: {time.monotonic() - lied:.1f} s")
        (ruled,) = disputes.disputes_of(eth.cluster_id)
        assert ruled.agreed and ruled.height == 10 and ruled.base == 0
        validators = {v.node_id for v in cartel.validators}
        assert ruled.disputer in validators and set(disputes.accused(ruled.dispute_id)) == set(eth.node_ids)
        jurors = {j.node_id for j in disputes.jury(ruled.dispute_id, 0)}
        assert jurors and jurors <= validators - {ruled.disputer} and not jurors & set(eth.node_ids)
        assert all(registry.node(n).deposit_wei == 0 and registry.node(n).status == "ejected" for n in eth.node_ids)
        assert registry.slashed_wei(eth.node_ids) == {n: NODE_DEPOSIT for n in eth.node_ids}
        slashed = NODE_DEPOSIT * len(eth.node_ids)
        assert ruled.slashed_wei == slashed and ruled.bounty_wei == slashed // 10
        assert disputes.claimable(ruled.disputer_address) == DISPUTE_RULES.bond_wei + slashed // 10
        assert disputes.total_burned() == slashed - slashed // 10
        assert Validation.connect(eth.url, eth.validation).frozen_at(eth.cluster_id) == 0

        with pytest.raises(VerificationFailed) as refused:  # the lie, and everything after it, is void
            session.verified(counter)
        assert refused.value.check.name == "disputes" and f"dispute {ruled.dispute_id}" in refused.value.check.detail

    # The convicted members keep no validator set change to fight over: the cluster goes on
    # producing (void) blocks instead of halting on a sync that names nobody.
    height = cartel.status()[0].height or 0
    wait_until(lambda: (cartel.status()[0].height or 0) > height + 3, 30, "blocks after the conviction")


def test_the_cli_names_the_dispute_and_the_slashed_deposits(cartel: Devnet) -> None:
    wait_until(lambda: Disputes.connect(cartel.ethereum.url, cartel.ethereum.disputes).count() > 0, 180, "a dispute")
    wait_until(lambda: helpers.rtc("dispute", "list", "--home", cartel.home, "-J").json[0]["status"] == "invalid",
               120, "the ruling")
    (listed,) = helpers.rtc("dispute", "list", "--home", cartel.home, "-J").json
    assert set(listed) >= {"id", "cluster_id", "height", "status", "disputer", "claimed_app_hash",
                           "attested_app_hash", "slashed"}
    operators = {Registry.connect(cartel.ethereum.url, cartel.ethereum.registry).node(n).operator
                 for n in cartel.ethereum.node_ids}
    assert set(listed["slashed"]) == operators and listed["claimed_app_hash"] != listed["attested_app_hash"]
    story = helpers.rtc("dispute", "show", str(listed["id"]), "--home", cartel.home)
    assert story.code == 0 and "ruled INVALID" in story.out and "revealed INVALID" in story.out
    members = helpers.rtc("cluster", "members", "--home", cartel.home, "-J").json["members"]
    assert all(m["slashed_wei"] == NODE_DEPOSIT and m["deposit_wei"] == 0 for m in members)
    call = helpers.rtc_process("call", "--home", cartel.home, "update_high", "symbol=CLI", "value=1", "--verify",
                               "--key", Path(cartel.home) / "client.key")
    assert call.code != 0 and f"dispute {listed['id']}" in call.out + call.err
