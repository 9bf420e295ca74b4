"""On a real 4-node cluster: every block's record reaches Swarm, and a wiped node is restored from it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from rtc.cometbft import RPC, NodeHome
from rtc.devnet import Devnet
from rtc.history import HistoryError
from rtc.history.config import history_signer, open_swarm
from rtc.history.reader import HistoryReader
from rtc.history.uploader import fetch_record
from tests import helpers

from .conftest import assert_all_agree, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("history") / "devnet", "stock")
    yield devnet
    devnet.stop()


def rtc(*argv: str) -> tuple[int, dict]:
    run = helpers.rtc(*argv, "-J")
    return run.code, run.json


def reader_of(devnet: Devnet, index: int) -> HistoryReader:
    home = NodeHome(Path(devnet.nodes[index].home))
    swarm = open_swarm(devnet.swarm.store)
    return HistoryReader(swarm, history_signer(home).owner, devnet.chain_id)


def uploaded_height(devnet: Devnet, index: int) -> int:
    try:
        return reader_of(devnet, index).head().height
    except Exception:  # noqa: BLE001 - nothing uploaded yet
        return 0


def test_every_block_is_recorded_identically_by_every_node_and_verifies(cluster: Devnet) -> None:
    from rtc.client import Client

    with Client(cluster.nodes[0].rpc) as client:
        session = client.session()
        for value in (1.0, 5.0, 3.0):
            session.call({"function": "update_high", "symbol": "H", "value": value})
        assert session.result(2).value == {"ok": 5.0}
    target = cluster.swarm.snapshot_every + 3
    cluster.wait_for_height(target + 1, timeout=120)
    deadline_heights = [uploaded_height(cluster, i) for i in range(4)]
    import time

    end = time.monotonic() + 60
    while min(deadline_heights) < target and time.monotonic() < end:
        time.sleep(0.5)
        deadline_heights = [uploaded_height(cluster, i) for i in range(4)]
    assert min(deadline_heights) >= target, deadline_heights
    references = {reader_of(cluster, i).record_at(target).reference for i in range(4)}
    assert len(references) == 1  # the same bytes from every node: Swarm keeps one copy
    # The uploader takes each block's transactions and results from its own app; read back
    # from CometBFT's block store (its fallback), every record must come out byte for byte.
    reader = reader_of(cluster, 0)
    chain = reader.walk_back(reader.record_at(target), 1)
    assert sum(len(located.record.txs) for located in chain) >= 3
    with RPC(cluster.nodes[1].rpc) as rpc:
        for located in chain:
            assert fetch_record(rpc, located.record.height, located.record.previous).encode() == located.record.encode()
    reader.swarm.close()
    code, report = rtc("history", "verify", "--home", str(cluster.home), "--from", "1", "--to", str(target))
    assert code == 0 and report["ok"] and report["verified"] == target
    code, receipt = rtc("call", "--home", str(cluster.home), "--verify", "update_high", "symbol=H", "value=9")
    assert code == 0 and receipt["history"]["in_swarm"], receipt.get("history")
    history_check = next(c for c in receipt["checks"] if c["name"] == "history")
    assert history_check["passed"] and "is in Swarm" in history_check["detail"]
    with pytest.raises(HistoryError, match="not the block the signatures cover"):
        reader_of(cluster, 1).locate(5, 6, b"\x00" * 32)
    code, shown = rtc("history", "show", "--home", str(cluster.home), "--node", "2", "--height", "5")
    assert code == 0 and shown["record"]["height"] == 5 and shown["newest_snapshot"]["height"] % cluster.swarm.snapshot_every == 0


def test_a_node_whose_data_is_deleted_is_restored_from_swarm_alone(cluster: Devnet) -> None:
    every = cluster.swarm.snapshot_every
    cluster.wait_for_height(2 * every + 4, timeout=180)
    cluster.stop_node(3)
    home = Path(cluster.nodes[3].home)
    shutil.rmtree(home / "rtc-state")
    for entry in (home / "data").iterdir():  # CometBFT's blocks and state too
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name != "priv_validator_state.json":
            entry.unlink()
    code, restored = rtc("node", "restore", "--from-swarm", "--home", str(cluster.home), "--node", "3",
                         "--anchor-genesis")
    assert code == 0, restored
    assert restored["snapshot_height"] >= every and restored["height"] >= restored["snapshot_height"]
    assert restored.get("cometbft_bootstrapped")
    cluster.start_node(3)
    assert_all_agree(cluster)


def test_uploads_wait_while_swarm_is_unavailable_and_resume_without_a_gap(tmp_path: Path) -> None:
    import time

    from rtc.swarm import LocalSwarm
    from tests.conftest import component_path
    from tests.swarm.fake_bee import FakeBee

    from .conftest import _PORTS

    with LocalSwarm.open(tmp_path / "bee-store") as store, FakeBee(store) as bee:
        devnet = Devnet.create(tmp_path / "devnet", 1, component_path("sum"), base_port=next(_PORTS),
                               swarm=bee.url, swarm_batch="ab" * 32, snapshot_every=5)
        try:
            devnet.start(timeout=90)
            reader = HistoryReader(store, history_signer(NodeHome(Path(devnet.nodes[0].home))).owner, devnet.chain_id)

            def uploaded() -> int:
                try:
                    return reader.head().height
                except Exception:  # noqa: BLE001 - nothing yet
                    return 0

            end = time.monotonic() + 60
            while uploaded() < 3 and time.monotonic() < end:
                time.sleep(0.2)
            bee.fail = True  # every request now gets 503
            down_at = max(s.height or 0 for s in devnet.status())
            devnet.wait_for_height(down_at + 8, timeout=60)  # consensus does not wait for Swarm
            stalled = uploaded()
            assert stalled <= down_at + 1
            bee.fail = False
            target = down_at + 8
            end = time.monotonic() + 60
            while uploaded() < target and time.monotonic() < end:
                time.sleep(0.2)
            assert uploaded() >= target
            records = reader.walk_back(reader.record_at(target), 1)
            assert [located.record.height for located in records] == list(range(1, target + 1))
            assert len(list(reader.verify(records, None))) == target
            log = (devnet.home / "logs" / "node0-app.log").read_text()
            assert "waits" in log and "resumed" in log
        finally:
            devnet.stop()


def test_a_new_node_state_syncs_from_the_snapshots_the_others_serve(cluster: Devnet) -> None:
    every = cluster.swarm.snapshot_every
    cluster.wait_for_height(3 * every + 2, timeout=180)
    info = cluster.add_node(timeout=120, state_sync=True)
    log = (cluster.home / "logs" / f"{info.name}-app.log").read_text()
    assert "restored at height" in log and "by state sync" in log
    base = httpx.get(f"{info.rpc}/status", timeout=5).json()["result"]["sync_info"]["earliest_block_height"]
    assert int(base) > 1  # it did not replay the chain from the first block
    assert_all_agree(cluster)
