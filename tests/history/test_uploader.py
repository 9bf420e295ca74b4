"""The uploader's own bookkeeping, without a cluster: the hand-off from the app and a clean stop."""

from __future__ import annotations

import base64
from pathlib import Path

from rtc.abci import abci_pb
from rtc.history.uploader import Cursor, ExecutedBlocks, HistoryUploader
from rtc.swarm import FeedSigner, LocalSwarm


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
