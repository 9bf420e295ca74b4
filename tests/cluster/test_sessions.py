"""Happens-before on a real 4-node cluster: the seed's stock client, shuffled over the nodes."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import signal
from pathlib import Path
from typing import Iterator

import pytest
from nacl.signing import SigningKey

from rtc.client import AsyncClient, AsyncSession, CallRejected, TrustPolicy, VerificationError
from rtc.cometbft import AsyncRPC
from rtc.devnet import Devnet
from rtc.node.config import ClusterSettings
from rtc.sessions import SessionRules

from .conftest import assert_all_agree, start_cluster

RULES = SessionRules(max_buffered=16, gap_timeout_blocks=10, idle_expiry_blocks=10_000)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("sessions") / "devnet", "stock", settings=ClusterSettings(sessions=RULES))
    yield devnet
    devnet.stop()


def clients(devnet: Devnet) -> list[AsyncClient]:
    return [AsyncClient(node.rpc) for node in devnet.nodes]


def test_shuffled_delivery_to_different_nodes_equals_sequential_execution(cluster: Devnet) -> None:
    quotes = [100.0, 101.5, 99.0, 104.25, 103.0, 110.0, 108.5, 111.0, 95.0, 112.5, 112.0, 113.75]

    async def scenario() -> None:
        nodes = clients(cluster)
        session = nodes[0].session()
        envelopes = [await session.envelope({"function": "update_high", "symbol": "AAPL", "value": q}) for q in quotes]
        order = list(range(len(quotes)))
        random.Random(3).shuffle(order)
        await asyncio.gather(*[nodes[i % 4].broadcast(envelopes[k].encode()) for i, k in enumerate(order)])
        results = [await session.result(k) for k in range(len(quotes))]
        expected, high = [], 0.0
        for q in quotes:
            high = max(high, q)
            expected.append({"ok": high})
        assert [r.status for r in results] == ["ok"] * len(quotes)
        assert [r.value for r in results] == expected
        assert (await nodes[3].query({"function": "get_high", "symbol": "AAPL"})).value == 113.75
        for node in nodes:
            await node.aclose()

    asyncio.run(scenario())
    assert_all_agree(cluster)


def test_a_flood_of_early_calls_refuses_the_overflow_not_the_session(cluster: Devnet) -> None:
    async def scenario() -> None:
        nodes = clients(cluster)
        session = nodes[0].session()
        envelopes = [await session.envelope({"function": "update_high", "symbol": "FLOOD", "value": float(k)}) for k in range(20)]
        # 16 early calls fill the buffer (sent at once: the gap deadline runs from the first one's block)
        await asyncio.gather(*(nodes[k % 4].broadcast(envelopes[k].encode()) for k in range(1, 17)))
        for _ in range(100):  # until all wait in committed state (bounded: 10 s)
            records = [await nodes[0].result(session.session_key, k) for k in range(1, 17)]
            if all(r is not None and r.status == "queued" for r in records):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the early calls were not queued")
        with pytest.raises(CallRejected, match="ahead|already wait"):
            await nodes[1].broadcast(envelopes[17].encode())
        await nodes[2].broadcast(envelopes[0].encode())
        results = [await session.result(k) for k in range(17)]
        assert [r.status for r in results] == ["ok"] * 17 and results[16].value == {"ok": 16.0}
        for node in nodes:
            await node.aclose()

    asyncio.run(scenario())


def test_a_gap_fails_the_session_with_a_provable_status_and_later_calls_say_why(cluster: Devnet) -> None:
    async def scenario() -> None:
        nodes = clients(cluster)
        session = nodes[0].session()
        first = await session.call_and_wait({"function": "update_high", "symbol": "GAP", "value": 1.0})
        assert first.ok
        missing = await session.envelope({"function": "update_high", "symbol": "GAP", "value": 2.0})
        waiting = await session.envelope({"function": "update_high", "symbol": "GAP", "value": 3.0})
        await nodes[1].broadcast(waiting.encode())  # counter 2 waits for 1, which never comes
        skipped = await session.result(2, timeout=60)
        assert skipped.status == "skipped" and "counter 1 did not arrive within 10 blocks" in skipped.error
        with pytest.raises(CallRejected, match="session is failed"):
            await nodes[2].broadcast(missing.encode())
        for node in nodes:
            await node.aclose()

    asyncio.run(scenario())


def test_a_failed_call_rolls_back_and_skips_the_rest(cluster: Devnet) -> None:
    async def scenario() -> None:
        nodes = clients(cluster)
        session = nodes[0].session()
        calls = [{"function": "update_high", "symbol": "FAIL", "value": 5.0},
                 {"function": "update_high", "symbol": "x" * 40, "value": 6.0},  # backend error value, not a failure
                 {"function": "update_high", "symbol": "FAIL", "value": 7.0}]
        results = [await session.call_and_wait(call) for call in calls]
        assert [r.status for r in results] == ["ok", "ok", "ok"] and "err" in results[1].value
        closed = await session.close()
        assert closed.ok
        with pytest.raises(CallRejected, match="session is closed"):
            await session.call({"function": "update_high", "symbol": "FAIL", "value": 8.0})
        for node in nodes:
            await node.aclose()

    asyncio.run(scenario())


def test_a_node_restarted_mid_session_continues_it(cluster: Devnet) -> None:
    async def before(session: AsyncSession, nodes: list[AsyncClient]) -> list[bytes]:
        envelopes = [await session.envelope({"function": "update_high", "symbol": "MID", "value": float(v)}) for v in range(8)]
        await nodes[0].broadcast(envelopes[2].encode())
        await nodes[3].broadcast(envelopes[1].encode())
        for _ in range(100):  # until both are queued in committed state (bounded: 10 s)
            records = [await nodes[0].result(session.session_key, k) for k in (1, 2)]
            if all(r is not None and r.status == "queued" for r in records):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("calls 1 and 2 were not queued")
        return [e.encode() for e in envelopes]

    nodes = clients(cluster)
    session = nodes[0].session()
    txs = asyncio.run(before(session, nodes))
    cluster.stop_node(3, signal.SIGKILL)

    async def during() -> None:
        async with AsyncClient(cluster.nodes[1].rpc) as node:
            session.client = node
            await node.broadcast(txs[0])
            assert [(await session.result(k)).value for k in range(3)] == [{"ok": 0.0}, {"ok": 1.0}, {"ok": 2.0}]

    asyncio.run(during())
    cluster.start_node(3)
    height = max(s.height or 0 for s in cluster.status())
    cluster.wait_for_height(height + 1, nodes=[3], timeout=90)

    async def after() -> None:
        async with AsyncClient(cluster.nodes[3].rpc) as node:
            session.client = node
            await node.broadcast(txs[4])  # waits for 3 (sent now: a slow restart must not outlast the gap deadline)
            await node.broadcast(txs[3])  # through the restarted node: releases 4
            assert (await session.result(4)).value == {"ok": 4.0}

    asyncio.run(after())
    assert_all_agree(cluster)


class LyingRPC(AsyncRPC):
    """A node that alters one part of its answers; the client must notice every time."""

    def __init__(self, url: str, lie: str) -> None:
        super().__init__(url)
        self.lie = lie

    async def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> dict:
        response = await super().abci_query(path, data, prove, height)
        if prove and self.lie == "value":
            record = json.loads(base64.b64decode(response["value"]))
            record["value"] = {"ok": 1e9}
            response["value"] = base64.b64encode(json.dumps(record).encode()).decode()
        if prove and self.lie == "proof":
            op = response["proofOps"]["ops"][0]
            raw = bytearray(base64.b64decode(op["data"]))
            raw[-1] ^= 1  # a sibling hash
            op["data"] = base64.b64encode(bytes(raw)).decode()
        return response

    async def commit(self, height: int | None = None) -> dict:
        result = await super().commit(height)
        if self.lie == "app_hash":
            result["signed_header"]["header"]["app_hash"] = "00" * 32
        if self.lie == "signatures":
            for sig in result["signed_header"]["commit"]["signatures"][:2]:
                if sig.get("signature"):
                    raw = bytearray(base64.b64decode(sig["signature"]))
                    raw[0] ^= 1
                    sig["signature"] = base64.b64encode(bytes(raw)).decode()
        return result


@pytest.mark.parametrize("lie, failed", [("value", "answer"), ("proof", "state_proof"), ("app_hash", "header"),
                                         ("signatures", "signatures")])
def test_verified_results_catch_a_lying_node(cluster: Devnet, lie: str, failed: str) -> None:
    trust = TrustPolicy.from_genesis_file(Path(cluster.nodes[0].home) / "config" / "genesis.json")

    async def scenario() -> None:
        async with AsyncClient(cluster.nodes[0].rpc, trust) as honest:
            session = honest.session()
            result = await session.call_and_wait({"function": "update_high", "symbol": "LIE", "value": 4.0})
            receipt = await session.verified(0)
            assert receipt.result.value == result.value == {"ok": 4.0}
            assert receipt.signed_power * 3 > receipt.total_power * 2 and len(receipt.checks) == 6
            async with AsyncClient(cluster.nodes[1].rpc, trust) as liar:
                liar.rpc = LyingRPC(cluster.nodes[1].rpc, lie)
                lied = await liar.receipt(session.session_key, 0)
                assert not lied.ok and lied.result is None and lied.failure.name == failed, lied.checks
                with pytest.raises(VerificationError):
                    await liar.verified(session.session_key, 0)
            other = TrustPolicy.pinned(trust.chain_id, b"\x00" * 32)
            async with AsyncClient(cluster.nodes[0].rpc, other) as pinned_wrong:
                refused = await pinned_wrong.receipt(session.session_key, 0)
            assert refused.failure.name == "validator_set" and refused.result is None

    asyncio.run(scenario())


def test_the_sync_sdk_continues_a_session_after_a_client_restart(cluster: Devnet) -> None:
    from rtc.client import Client

    key = SigningKey.generate()
    with Client(cluster.nodes[0].rpc) as first:
        session = first.session(key)
        counters = [session.call({"function": "update_high", "symbol": "SYNC", "value": v}) for v in (1.0, 3.0, 2.0)]
        assert counters == [0, 1, 2]
        session_id = session.id
    # a new process would do the same: same key and session id, results by counter
    with Client(cluster.nodes[2].rpc, TrustPolicy.first_use()) as second:
        again = second.session(key, session_id, next_counter=3)
        assert [again.result(k).value for k in range(3)] == [{"ok": 1.0}, {"ok": 3.0}, {"ok": 3.0}]
        assert again.call_and_wait({"function": "update_high", "symbol": "SYNC", "value": 5.0}).counter == 3
        receipt = again.verified(3)
        assert receipt.result.value == {"ok": 5.0} and receipt.signed_power * 3 > receipt.total_power * 2


def test_a_refused_call_gives_its_counter_back(cluster: Devnet) -> None:
    async def scenario() -> None:
        async with AsyncClient(cluster.nodes[0].rpc) as node:
            session = node.session()
            with pytest.raises(CallRejected, match="expected f64"):
                await session.call({"function": "update_high", "symbol": "BACK", "value": "high"})
            result = await session.call_and_wait({"function": "update_high", "symbol": "BACK", "value": 2.0})
            assert result.counter == 0 and result.ok  # no gap left behind

    asyncio.run(scenario())


def test_two_calls_racing_for_one_counter_one_wins_the_other_is_refused_in_block(cluster: Devnet) -> None:
    """Both pass CheckTx on different nodes; the block runs one and refuses the other, which its client learns."""
    async def scenario() -> None:
        nodes = clients(cluster)
        key, session_id = SigningKey.generate(), bytes(16)
        first, second = nodes[0].session(key, session_id), nodes[2].session(key, session_id)
        outcomes = await asyncio.gather(
            first.call_and_wait({"function": "update_high", "symbol": "RACE", "value": 1.0}),
            second.call_and_wait({"function": "update_high", "symbol": "RACE", "value": 2.0}),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1 and winners[0].ok, outcomes
        if losers:  # the loser was refused by CheckTx (if the winner was already in a block) or in the block
            message = str(losers[0])
            assert isinstance(losers[0], CallRejected)
            assert any(why in message for why in ("already used", "refused in block", "used by another transaction")), message
        for node in nodes:
            await node.aclose()

    asyncio.run(scenario())
