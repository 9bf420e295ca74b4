"""The uploader's own bookkeeping, without a cluster: the hand-off from the app, a clean stop, and
storing each record once, in turn, with another node taking over when its uploader does not."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from rtc.abci import abci_pb
from rtc.history import uploader as uploader_module
from rtc.history.record import BlockRecord
from rtc.history.uploader import Cursor, ExecutedBlocks, HistoryUploader, RecordReferences, uploader_of
from rtc.swarm import FeedSigner, LocalSwarm, bytes_reference


def test_executed_blocks_hand_over_each_block_once_and_forget_old_ones() -> None:
    blocks = ExecutedBlocks(keep=3)
    for height in range(1, 6):
        blocks.add(height, [b"tx%d" % height], [abci_pb.ExecTxResult(code=height % 2, data=b"\x01\x02", gas_used=7)],
                   b"h" * 32)
    assert blocks.take(1) is None and blocks.take(2) is None  # older than `keep`: read back from CometBFT
    executed = blocks.take(4)
    assert executed is not None and executed.txs == [b"tx4"] and executed.app_hash == b"h" * 32
    assert executed.results == [{"code": 0, "data": base64.b64encode(b"\x01\x02").decode(), "gas_wanted": 0,
                                 "gas_used": 7}]  # as CometBFT's RPC shows a result
    assert blocks.take(4) is None


def test_the_cursor_is_durable_only_when_saved(tmp_path: Path) -> None:
    path = tmp_path / "cursor.json"
    cursor = Cursor(path)
    cursor.advance(7, b"\x01" * 32, None)
    assert Cursor(path).next_height == 1
    cursor.save()
    again = Cursor(path)
    assert (again.next_height, again.previous) == (8, b"\x01" * 32)


def test_an_uploader_whose_cometbft_is_down_stops_cleanly(tmp_path: Path) -> None:
    swarm = LocalSwarm.open(tmp_path / "swarm", synced=False)
    uploader = HistoryUploader("http://127.0.0.1:9", swarm, FeedSigner(b"\x02" * 32), "chain",
                               tmp_path / "cursor.json", poll_seconds=0.05).start()
    uploader.stop()
    swarm.close()
    assert not (tmp_path / "cursor.json").exists()


# -- storing in turn ----------------------------------------------------------------------

VALIDATORS = [{"address": "bb" * 20}, {"address": "AA" * 20}, {"address": "cc" * 20}]


def test_the_uploader_of_a_height_is_the_same_for_everyone_and_rotates() -> None:
    turns = [uploader_of(height, VALIDATORS) for height in range(6)]
    assert turns == ["AA" * 20, "BB" * 20, "CC" * 20] * 2
    assert uploader_of(4, list(reversed(VALIDATORS))) == turns[4]  # the order the RPC lists them in does not matter


class CountingSwarm:
    """A LocalSwarm that counts the records stored through it."""

    def __init__(self, swarm: LocalSwarm) -> None:
        self.swarm, self.uploads = swarm, 0

    def upload(self, data: bytes) -> bytes:
        self.uploads += 1
        return self.swarm.upload(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.swarm, name)


def record(height: int) -> BlockRecord:
    return BlockRecord(chain_id="chain", height=height, header={"height": str(height)}, commit={"signatures": []},
                       validators=VALIDATORS, txs=[b"tx%d" % height], results=[], app_hash=bytes([height]) * 32,
                       previous=None)


def uploader(tmp_path: Path, swarm: CountingSwarm, name: str, address: str, takeover: float = 60.0) -> HistoryUploader:
    return HistoryUploader("http://127.0.0.1:9", swarm, FeedSigner(name.encode() * 16), "chain",  # type: ignore[arg-type]
                           tmp_path / f"{name}.json", references=RecordReferences(), address=address,
                           takeover_seconds=takeover)


def test_a_record_is_stored_once_by_its_uploader_and_found_by_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploader_module, "fetch_record", lambda rpc, height, previous, executed: record(height))
    with LocalSwarm.open(tmp_path / "swarm", synced=False) as shared:
        swarms = {name: CountingSwarm(shared) for name in ("aa", "bb", "cc")}
        nodes = {name: uploader(tmp_path, swarms[name], name, name * 20) for name in swarms}
        for height in range(1, 7):
            uploaders = sorted(nodes, key=lambda name: uploader_of(height, VALIDATORS) != name.upper() * 20)
            for name in uploaders:  # its uploader first
                assert nodes[name].upload(height)
        # each stored 2 records (its turns) and 6 heads (its own feed, one per height)
        assert {name: swarm.uploads for name, swarm in swarms.items()} == {"aa": 8, "bb": 8, "cc": 8}
        assert {name: (node.stored, node.found, node.took_over) for name, node in nodes.items()} == {
            name: (2, 4, 0) for name in nodes}
        for height in range(1, 7):  # everyone attests the same record, and their feeds point at it
            references = {node.references.get(height) for node in nodes.values()}  # type: ignore[union-attr]
            assert references == {(bytes_reference(record(height).encode()), record(height).app_hash)}
            assert shared.has(bytes_reference(record(height).encode()))


def test_a_record_its_uploader_never_stored_is_stored_by_another_after_a_while(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(uploader_module, "fetch_record",
                        lambda rpc, height, previous, executed: calls.append(height) or record(height))
    with LocalSwarm.open(tmp_path / "swarm", synced=False) as shared:
        swarm = CountingSwarm(shared)
        node = uploader(tmp_path, swarm, "bb", "bb" * 20, takeover=0.2)
        assert uploader_of(3, VALIDATORS) == "AA" * 20  # height 3 is not bb's: aa is down
        assert not node.upload(3) and not node.upload(3)  # waits for aa
        assert node.references.get(3) is not None  # type: ignore[union-attr]  # attestable meanwhile
        time.sleep(0.25)
        assert node.upload(3)
        assert (swarm.uploads, node.took_over, len(calls)) == (2, 1, 1)  # built once; the record and its head stored once
        assert shared.has(bytes_reference(record(3).encode()))


def test_an_uploader_that_missed_a_turn_is_not_waited_for_again_until_it_is_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploader_module, "fetch_record", lambda rpc, height, previous, executed: record(height))
    with LocalSwarm.open(tmp_path / "swarm", synced=False) as shared:
        node = uploader(tmp_path, CountingSwarm(shared), "bb", "bb" * 20, takeover=0.2)
        assert not node.upload(3)  # aa's turn: wait for it once
        time.sleep(0.25)
        assert node.upload(3) and node.absent == {"AA" * 20}
        assert node.upload(6)  # aa's next turn: stored at once, no wait
        assert node.took_over == 2
        aa = uploader(tmp_path, CountingSwarm(shared), "aa", "aa" * 20)
        assert aa.upload(9)  # aa is back and stores its turn
        assert node.upload(9) and node.absent == set() and node.found == 1
