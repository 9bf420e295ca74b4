"""A cluster whose nodes run different implementations: two on the compiled core, two on the
Python reference. They must agree on every app_hash, or CometBFT stops the cluster.

The workload is random and hostile (tests/fixtures/wasm/hostile): many sessions, their
calls shuffled over the nodes (out of order, so they queue and are released), values up to
the size limit, deletes, scans over a call's own writes, traps, fuel running out mid host
call, results over the limit. Every height's app_hash is compared on all four nodes.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Iterator

import pytest

from rtc.client import AsyncClient, CallRejected
from rtc.devnet import Devnet
from rtc.node.config import ClusterSettings
from rtc.vm import Limits

from .conftest import _PORTS, app_hash_at
from tests.conftest import component_path
from tests.helpers import hostile_call

LIMITS = Limits(fuel=3_000_000, max_scan_bytes=8192, max_result_bytes=4096)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet.create(tmp_path_factory.mktemp("mixed") / "devnet", 4, component_path("hostile"),
                           base_port=next(_PORTS), settings=ClusterSettings(limits=LIMITS), core="mixed")
    try:
        devnet.start(timeout=90)
        yield devnet
    finally:
        devnet.stop()


def test_native_and_python_nodes_agree_at_every_height(mixed: Devnet) -> None:
    homes = [Path(node.home) for node in mixed.nodes]
    logs = [(mixed.home / "logs" / f"{home.name}-app.log").read_text() for home in homes]
    assert [("on the native core" in log, "on the python core" in log) for log in logs] == [
        (True, False), (False, True), (True, False), (False, True)]
    rng = random.Random(15)

    async def scenario() -> list[str]:
        nodes = [AsyncClient(node.rpc) for node in mixed.nodes]
        statuses = []
        try:
            sessions = [nodes[0].session() for _ in range(8)]
            envelopes = [await session.envelope(hostile_call(rng)) for session in sessions for _ in range(6)]
            rng.shuffle(envelopes)
            accepted = []
            for i, envelope in enumerate(envelopes):
                try:
                    await nodes[i % 4].broadcast(envelope.encode())
                    accepted.append(envelope)
                except CallRejected:  # its session failed already (a trap, out of fuel)
                    statuses.append("refused")
            for session in sessions:  # until each ran all six calls, or ended (later calls refused in a block)
                for _ in range(600):
                    record = await nodes[0].session_record(session.session_key)
                    if record is not None and (record.next >= 6 or not record.open):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"session {session.session_key.hex()[:12]} never finished: {record}")
            for envelope in accepted:
                result = await nodes[0].result(envelope.session_key, envelope.counter)
                statuses.append("refused in a block" if result is None else result.status)
        finally:
            for node in nodes:
                await node.aclose()
        return statuses

    statuses = asyncio.run(scenario())
    assert {"ok", "error", "skipped"} <= set(statuses), statuses  # calls ran, failed, and were skipped
    top = max(status.height or 0 for status in mixed.status()) + 1
    mixed.wait_for_height(top, timeout=60)
    for height in range(2, top + 1):
        hashes = {app_hash_at(mixed, i, height) for i in range(4)}
        assert len(hashes) == 1, f"the nodes disagree at height {height}: {hashes}"
