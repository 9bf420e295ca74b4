"""The foundation on a real 4-node cluster: agreement, crash recovery, results."""

from __future__ import annotations

import asyncio
import signal


from rtc.client import AsyncClient
from rtc.devnet import Devnet

from .conftest import assert_all_agree



async def call(devnet: Devnet, node: int, **call):
    async with AsyncClient(devnet.nodes[node].rpc) as client:
        return await client.call(call, timeout=30)


async def query(devnet: Devnet, node: int, **call):
    async with AsyncClient(devnet.nodes[node].rpc) as client:
        return (await client.query(call)).value


def test_calls_through_every_node_and_all_nodes_agree(stock_cluster: Devnet) -> None:
    async def scenario() -> None:
        quotes = [10.0, 12.5, 11.0, 15.0, 14.0, 16.25, 9.0, 16.0]
        expected = 0.0
        for i, quote in enumerate(quotes):
            expected = max(expected, quote)
            result = await call(stock_cluster, i % 4, function="update_high", symbol="ACME", value=quote)
            assert result.ok and result.value == {"ok": expected}
            assert result.height >= 2 and result.fuel > 0
        for node in range(4):
            assert await query(stock_cluster, node, function="get_high", symbol="ACME") == 16.25
        # concurrent calls from many clients land in shared blocks and still agree
        results = await asyncio.gather(*[
            call(stock_cluster, i % 4, function="update_high", symbol=f"S{i}", value=float(i)) for i in range(12)
        ])
        assert all(r.ok for r in results)
        assert sorted(await query(stock_cluster, 0, function="symbols")) == sorted(["ACME"] + [f"S{i}" for i in range(12)])

    asyncio.run(scenario())
    assert_all_agree(stock_cluster)


def test_killed_node_restarts_and_catches_up(stock_cluster: Devnet) -> None:
    stock_cluster.stop_node(3, signal.SIGKILL)  # both processes, no chance to flush anything

    async def while_down() -> None:
        for i in range(5):
            result = await call(stock_cluster, i % 3, function="update_high", symbol="DOWN", value=float(i))
            assert result.ok

    asyncio.run(while_down())
    behind = max(s.height or 0 for s in stock_cluster.status())
    stock_cluster.start_node(3)
    stock_cluster.wait_for_height(behind + 2, nodes=[3], timeout=90)
    assert asyncio.run(query(stock_cluster, 3, function="get_high", symbol="DOWN")) == 4.0
    assert_all_agree(stock_cluster)


def test_state_machine_killed_alone_recovers(stock_cluster: Devnet) -> None:
    """kill -9 of only the Python process: CometBFT notices, and a restart resumes from the last commit."""
    node = stock_cluster.nodes[2]
    import os

    os.kill(node.app_pid, signal.SIGKILL)
    asyncio.run(call(stock_cluster, 0, function="update_high", symbol="SOLO", value=1.0))
    stock_cluster.stop_node(2)  # whatever is left of node 2
    stock_cluster.start_node(2)
    height = max(s.height or 0 for s in stock_cluster.status())
    stock_cluster.wait_for_height(height + 1, nodes=[2], timeout=90)
    assert asyncio.run(query(stock_cluster, 2, function="get_high", symbol="SOLO")) == 1.0
    assert_all_agree(stock_cluster)
