"""One honest member among liars on a real 4-node cluster: node0 runs stock.wasm, the three others
stock-cartel.wasm, and the Registry and genesis name stock.wasm. The liars are more than 2/3, so
they go on and node0 stops at the first block that carries their app_hash. From the first
checkpoint they post, node0 reads their attestations of its own last height in Swarm, disputes
at once without a bond, and wins: the liars lose their deposits and node0 keeps its own. The
bounty goes to whichever dispute of the lie settles first (node0's or a validator's)."""

from __future__ import annotations

from typing import Iterator

import pytest

from rtc.client import Client
from rtc.devnet import Devnet
from rtc.devnet.ethereum import NODE_DEPOSIT
from rtc.ethereum.disputes import INVALID, Disputes
from rtc.ethereum.registry import Registry
from tests.helpers import wait_until

from .conftest import start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("member") / "devnet", "stock", validators=3,
                           cartel_app="stock-cartel", node_apps={"node0": "stock"})
    yield devnet
    devnet.stop()


def test_an_honest_member_among_liars_disputes_at_once_and_wins(cluster: Devnet) -> None:
    eth = cluster.ethereum
    disputes = Disputes.connect(eth.url, eth.disputes)
    registry = Registry.connect(eth.url, eth.registry)
    honest, liars = eth.node_ids[0], eth.node_ids[1:]
    with Client([n.rpc for n in cluster.nodes[1:]]) as client:
        client.call({"function": "update_high", "symbol": "LIE", "value": 1000.0})

    def members_dispute() -> list:
        return [d for d in disputes.disputes_of(eth.cluster_id) if d.disputer == honest]

    wait_until(lambda: any(d.status == INVALID for d in members_dispute()), 180, "node0's dispute ruled invalid")
    (ruled,) = members_dispute()
    assert ruled.member_disputer and ruled.bond_wei == 0 and ruled.agreed
    assert set(disputes.accused(ruled.dispute_id)) == set(liars)
    assert ruled.height <= (cluster.status()[0].height or 0)  # a height node0 computed itself
    assert registry.node(honest).deposit_wei == NODE_DEPOSIT
    assert all(registry.node(n).deposit_wei == 0 for n in liars)
    # The validators dispute the checkpoint over the same lie: whichever settles first takes the
    # liars' deposits and its disputer the bounty (docs/disputes.md); the other slashes nothing.
    (slasher,) = [d for d in disputes.disputes_of(eth.cluster_id) if d.status == INVALID and d.slashed_wei > 0]
    assert disputes.claimable(slasher.disputer_address) >= slasher.bounty_wei > 0
    assert slasher.dispute_id == ruled.dispute_id or ruled.slashed_wei == ruled.bounty_wei == 0
    assert "opened dispute" in (cluster.home / "logs" / "node0-app.log").read_text()
