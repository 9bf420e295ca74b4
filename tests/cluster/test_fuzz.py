"""100,000 generated transactions, most of them broken, against one live node.

The node must answer every one (CheckTx codes, never a crash), its memory must stay
within a stated bound once warm, and a second node fed the same blocks in-process must
reach the same app_hash at every height. RTC_FUZZ_TXS scales the run.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from rtc.abci import PublicKey, abci_pb
from rtc.client.nodes import LANE_DEPTH, Lane
from rtc.cometbft import RPC, NodeHome, RPCError, RPCUnavailable
from rtc.devnet import Devnet
from rtc.node.app import ClusterApp
from rtc.node.config import GenesisAppState
from rtc.protocol import Code
from rtc.protocol.envelope import SigningDomain
from rtc.state import StateStore
from rtc.vm import Backend
from tests.txfuzz import TxFuzzer

from .conftest import start_cluster

TXS = int(os.environ.get("RTC_FUZZ_TXS", "100000"))
WARMUP = 5_000
# Growth of the state machine's anonymous memory (its heap: what a leak would grow) from the
# warm baseline to the end: the checked-call cache (64 MiB at most) and the rest, with room.
# Not VmRSS: that also counts the pages of memory-mapped files it has touched, which the
# kernel may drop at will, above all the devnet's embedded Swarm store (LMDB), which holds
# every block's history and alone accounts for 300 MB of resident pages after 100,000 calls.
MEMORY_BOUND_MB = 100


def _anonymous_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no process {pid}")


async def _broadcast(ws_url: str, txs: list[bytes], lanes: int = 8) -> Counter[str]:
    """Every tx through `broadcast_tx_sync`, pipelined on a few websockets (the SDK's lanes:
    an HTTP request costs the sender more CPU than the node spends on a CheckTx)."""
    codes: Counter[str] = Counter()
    queue = iter(txs)
    connections = [Lane(ws_url, timeout=60) for _ in range(lanes)]

    async def worker(lane: Lane) -> None:
        for tx in queue:
            try:
                result = await lane.call("broadcast_tx_sync", {"tx": base64.b64encode(tx).decode()})
            except RPCUnavailable:
                raise
            except RPCError as exc:  # CometBFT's own refusals: its cache of seen bytes, or a full mempool
                codes["cometbft: " + str(exc).split(": ", 1)[-1][:40]] += 1
                continue
            code = int(result["code"])
            codes[Code(code).name if code in Code._value2member_map_ else str(code)] += 1

    try:
        await asyncio.gather(*(worker(lane) for lane in connections for _ in range(LANE_DEPTH)))
    finally:
        for lane in connections:
            await lane.aclose()
    return codes


def _replay(devnet: Devnet, upto: int, state: Path) -> list[int]:
    """Feed the live node's blocks to a fresh in-process node; the heights whose app_hash differ."""
    node = devnet.nodes[0]
    genesis = NodeHome(Path(node.home)).genesis()
    settings = GenesisAppState.from_json(genesis.app_state).settings
    app = ClusterApp(StateStore.open(state), Backend.from_file(devnet.home / "app.wasm", settings.limits), settings)
    app.init_chain(abci_pb.RequestInitChain(
        chain_id=genesis.chain_id, app_state_bytes=orjson.dumps(genesis.app_state),
        validators=[abci_pb.ValidatorUpdate(pub_key=PublicKey(ed25519=v.pub_key), power=v.power)
                    for v in genesis.validators]))
    differ = []
    with httpx.Client(base_url=node.rpc, timeout=10) as http:
        for height in range(1, upto + 1):
            block = http.get("/block", params={"height": height}).json()["result"]["block"]
            following = http.get("/block", params={"height": height + 1}).json()["result"]["block"]["header"]
            request = abci_pb.RequestFinalizeBlock(height=height, txs=[base64.b64decode(t) for t in block["data"]["txs"]])
            request.time.FromJsonString(block["header"]["time"])
            response = app.finalize_block(request)
            app.commit(abci_pb.RequestCommit())
            if response.app_hash.hex().upper() != following["app_hash"]:
                differ.append(height)
    app.store.close()
    return differ


@pytest.mark.timeout(900)  # 100,000 RPC round trips: 90 s here, minutes on a loaded 2-core machine
def test_a_live_node_survives_fuzzed_transactions_and_a_replica_fed_its_blocks_agrees(tmp_path: Path) -> None:
    devnet = start_cluster(tmp_path / "devnet", "stock", nodes=1)
    try:
        node = devnet.nodes[0]
        genesis = NodeHome(Path(node.home)).genesis()
        fuzzer = TxFuzzer(SigningDomain.from_genesis(genesis.chain_id, genesis.app_state), seed=12)
        txs = [fuzzer.next() for _ in range(TXS)]
        with RPC(node.rpc) as rpc:
            ws_url = rpc.ws_url
        asyncio.run(_broadcast(ws_url, txs[:WARMUP]))
        baseline = _anonymous_mb(node.app_pid)
        codes = asyncio.run(_broadcast(ws_url, txs[WARMUP:]))
        grown = _anonymous_mb(node.app_pid) - baseline
        print(f"{TXS - WARMUP} transactions after the warm-up answered {dict(codes.most_common())}; heap grew {grown:.0f} MB")
        assert devnet.running(0), "the node died under fuzzed transactions"
        assert sum(codes.values()) == TXS - WARMUP, codes  # every one answered
        assert codes["OK"] >= (TXS - WARMUP) // 20 and codes["MALFORMED"] and codes["BAD_SIGNATURE"], codes
        assert codes["INVALID_CALL"] and codes["TOO_EARLY"], codes
        assert grown < MEMORY_BOUND_MB, f"the state machine's heap grew by {grown:.0f} MB (bound {MEMORY_BOUND_MB})"
        head = devnet.status()[0].height or 0
        devnet.wait_for_height(head + 1)
        assert _replay(devnet, head, tmp_path / "replica") == []
    finally:
        devnet.stop()
