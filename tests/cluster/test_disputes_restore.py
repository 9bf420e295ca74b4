"""Life after a verdict, on real clusters: a cartel (every member runs stock-cartel.wasm) serves an
honest stretch that validators validate, then lies; a jury convicts it and its cluster is frozen
at the last valid checkpoint. `rtc cluster restore` starts four new members, admitted by the
Registry, from that checkpoint rebuilt from Swarm alone; a client's session goes on there from
the last state that was proven right, and the lie is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from rtc.client import Client, VerificationFailed
from rtc.devnet import Devnet
from rtc.ethereum.disputes import INVALID, Disputes
from rtc.ethereum.validation import Validation
from tests import helpers
from tests.helpers import wait_until

from .conftest import _PORTS, start_cluster
from .test_disputes_cartel import trust_of


@pytest.fixture(scope="module")
def convicted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("convicted") / "devnet", "stock", validators=4,
                           cartel_app="stock-cartel")
    yield devnet
    devnet.stop()


def test_new_members_restore_the_convicted_cluster_from_its_last_valid_checkpoint(
        convicted: Devnet, tmp_path: Path) -> None:
    eth = convicted.ethereum
    validation = Validation.connect(eth.url, eth.validation)
    disputes = Disputes.connect(eth.url, eth.disputes)
    with Client([n.rpc for n in convicted.nodes], trust=trust_of(convicted)) as client:
        session = client.session()
        honest = session.verified(session.call({"function": "update_high", "symbol": "HON", "value": 100.0}))
        assert honest.check("disputes").passed  # below 1000 the cartel's build is honest
        wait_until(lambda: validation.validated_height(eth.cluster_id) > honest.result.height, 120,
                   "the honest stretch validated")
        session.call({"function": "update_high", "symbol": "LIE", "value": 2000.0})
        wait_until(lambda: any(d.status == INVALID for d in disputes.disputes_of(eth.cluster_id)), 180, "the ruling")
        frozen = validation.frozen_at(eth.cluster_id)
        assert frozen is not None and honest.result.height <= frozen < disputes.disputes_of(eth.cluster_id)[0].height
        with pytest.raises(VerificationFailed) as void:  # the convicted cluster's state is void above the freeze
            session.verified(0)
        assert "void" in void.value.check.detail
        key, session_id = session.aio.key, session.id

    home = tmp_path / "restored"
    port = next(_PORTS)
    restore = helpers.rtc_process("cluster", "restore", "--from", convicted.home, "--home", home,
                                  "--base-port", port, "-J", timeout=300)
    assert restore.code == 0, restore.err[-3000:]
    restored = Devnet.load(home)
    try:
        shown = restore.json["restored_from"]
        assert shown["cluster_id"] == eth.cluster_id and shown["height"] == frozen
        assert shown["app_hash"] == validation.checkpoint(eth.cluster_id, frozen).app_hash.hex()
        assert restored.ethereum.cluster_id != eth.cluster_id and restored.ethereum.registry == eth.registry
        assert "replayed" in restore.err and "the validated checkpoint's" in restore.err
        with Client([n.rpc for n in restored.nodes], trust=trust_of(restored)) as client:
            assert client.query({"function": "get_high", "symbol": "HON"}).value == 100.0
            assert client.query({"function": "get_high", "symbol": "LIE"}).value is None  # never happened here
            session = client.session(key=key, session_id=session_id, next_counter=1)  # the same session goes on
            kept = session.verified(0)
            assert kept.result.value == {"ok": 100.0} and kept.result.height <= frozen
            again = session.verified(session.call({"function": "update_high", "symbol": "LIE", "value": 2000.0}))
            assert again.result.value == {"ok": 2000.0} and again.result.height > frozen  # honest code now
            assert again.check("disputes").passed and again.check("registry").passed
        # its own history in Swarm, from its first height (the one after the checkpoint)
        cli = helpers.rtc_process("call", "--home", home, "update_high", "symbol=CLI", "value=3", "--verify", "-J",
                                  "--key", home / "client.key")
        assert cli.code == 0, cli.out + cli.err
        assert {c["name"]: c["passed"] for c in cli.json["checks"]}["history"]
    finally:
        restored.stop()
