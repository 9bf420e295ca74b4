"""A block's fuel budget on a live node: calls beyond it are refused in the block (BLOCK_FULL)
and the SDK sends them again, so every call of a burst still runs, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from rtc.client import AsyncClient
from rtc.node.config import ClusterSettings
from rtc.protocol import Code
from rtc.vm import Limits

from .conftest import start_cluster

SETTINGS = ClusterSettings(Limits(fuel=2_200_000, query_fuel=1_000_000), block_fuel=2_200_000)
HEAVY = {"function": "spin_n", "n": 52_000}  # about 1.1M fuel: two fit in a block, a third crosses it


def test_calls_beyond_the_block_budget_are_refused_in_the_block_and_resent_by_the_sdk(tmp_path: Path) -> None:
    devnet = start_cluster(tmp_path / "devnet", "hostile", nodes=1, settings=SETTINGS)
    try:
        url = devnet.nodes[0].rpc

        async def burst() -> list[int]:
            async with AsyncClient([url]) as client:
                session = client.session()
                first = await session.call_and_wait({"function": "spin_n", "n": 1})  # proposers learn it is cheap
                assert first.ok
                # One burst: two run per block and the rest are refused (BLOCK_FULL) and resent, block
                # after block; eight keep the last one well within the SDK's resends (MAX_RESENDS).
                counters = await asyncio.gather(*(session.call(HEAVY) for _ in range(8)))
                results = [await session.result(k, timeout=60) for k in counters]
                assert all(r.ok for r in results), [r.error for r in results]
                assert client.resent > 0
                return sorted({r.height for r in results})

        heights = asyncio.run(burst())
        codes = []
        for height in range(heights[0] - 3, heights[-1] + 1):
            answer = httpx.get(f"{url}/block_results", params={"height": height}, timeout=5).json()["result"]
            codes += [r.get("code", 0) for r in answer["txs_results"] or []]
        assert Code.BLOCK_FULL in codes, codes  # the budget cut a block, and the SDK got the rest through
    finally:
        devnet.stop()
