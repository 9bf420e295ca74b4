"""A client that knows every node rides through the loss of any one, its sessions intact.

Issue 12: in a crash run, a call that reached a node just before it died (or one that was
catching up) reached a block seconds late, the session's gap deadline expired and every
later call was refused. The client now fails over and resends the same signed bytes.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Iterator

import pytest

from rtc.client import AsyncClient, Client
from rtc.devnet import Devnet

from .conftest import assert_all_agree, start_cluster

RATE = 25  # calls per second, one session
CALLS = 150


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("failover") / "devnet", "stock")  # the default session rules
    yield devnet
    devnet.stop()


def test_a_session_streams_through_the_sigkill_of_the_node_it_uses(cluster: Devnet) -> None:
    urls = [node.rpc for node in cluster.nodes]

    async def scenario() -> tuple[int, list, object, int]:
        async with AsyncClient(urls) as client:
            session = client.session()
            killing = None
            victim = -1
            for k in range(CALLS):
                if k == CALLS // 3:  # the node this client sends to and listens on, killed mid-stream
                    victim = urls.index(client.url)
                    killing = asyncio.create_task(asyncio.to_thread(cluster.stop_node, victim, signal.SIGKILL))
                await session.call({"function": "update_high", "symbol": "FAILOVER", "value": float(k)})
                await asyncio.sleep(1 / RATE)
            assert killing is not None
            await killing
            results = [await session.result(k, timeout=60) for k in range(CALLS)]
            record = await client.session_record(session.session_key)
            return victim, results, record, client.resent

    victim, results, record, resent = asyncio.run(scenario())
    assert [r.status for r in results] == ["ok"] * CALLS, [(r.counter, r.status, r.error) for r in results if not r.ok]
    # update_high returns the highest value so far: each call ran after every earlier one
    assert [r.value for r in results] == [{"ok": float(k)} for k in range(CALLS)]
    assert [r.height for r in results] == sorted(r.height for r in results)
    assert record is not None and record.open and record.next == CALLS, record
    print(f"node{victim} killed at call {CALLS // 3}; {resent} calls resent")
    cluster.start_node(victim)
    assert_all_agree(cluster)


def test_the_blocking_client_fails_over_between_calls(cluster: Devnet) -> None:
    urls = [node.rpc for node in cluster.nodes]
    with Client(urls) as client:
        session = client.session()
        assert session.call_and_wait({"function": "update_high", "symbol": "SYNCFAIL", "value": 1.0}).ok
        victim = urls.index(client.url)
        cluster.stop_node(victim, signal.SIGKILL)
        try:
            counters = [session.call({"function": "update_high", "symbol": "SYNCFAIL", "value": float(v)})
                        for v in range(2, 12)]
            assert [session.result(k).value for k in counters] == [{"ok": float(v)} for v in range(2, 12)]
            assert client.url != urls[victim]
            record = client.session_record(session.session_key)
            assert record is not None and record.open and record.next == 11
        finally:
            cluster.start_node(victim)
    assert_all_agree(cluster)
