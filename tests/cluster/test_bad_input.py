"""Every kind of bad input from the issue, sent to a real 4-node cluster running a hostile backend.

Each is refused or recorded as a failure with a clear reason; none changes state, none
stops a node, and all nodes still agree afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Callable

import httpx
import pytest
from nacl.signing import SigningKey

from rtc.client import AsyncClient, CallRejected
from rtc.cometbft import NodeHome
from rtc.devnet import Devnet
from rtc.protocol import Code, SigningDomain, sign

from .conftest import assert_all_agree



def broadcast(devnet: Devnet, tx: bytes, node: int = 0) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "broadcast_tx_sync", "params": {"tx": base64.b64encode(tx).decode()}}
    answer = httpx.post(devnet.nodes[node].rpc, json=body, timeout=10).json()
    if "error" in answer:  # CometBFT's own refusals (e.g. its mempool cache) come as RPC errors
        return {"code": -1, "log": f"{answer['error'].get('message')} {answer['error'].get('data')}"}
    return answer["result"]


KEY = SigningKey.generate()


def signed(call: bytes, counter: int = 0, chain: str | None = None,
           session: bytes | None = None) -> Callable[[SigningDomain], bytes]:
    """Signed once the test knows the cluster's domain (each devnet has its own), or for `chain` alone."""
    session = session or os.urandom(16)
    return lambda domain: sign(KEY, chain or domain, session, counter, call).encode()


def domain_of(devnet: Devnet) -> SigningDomain:
    genesis = NodeHome(Path(devnet.nodes[0].home)).genesis()
    return SigningDomain.from_genesis(genesis.chain_id, genesis.app_state)


def forged_signature(domain: SigningDomain) -> bytes:
    raw = bytearray(signed(b'{"function": "spin_n", "n": 1}')(domain))
    raw[-1] ^= 1
    return bytes(raw)


@pytest.mark.parametrize(
    "tx, code, message",
    [
        (b"\xff\xfe\x00garbage", Code.MALFORMED, "shorter than the minimum"),
        (b"RTC\x02" + b"\x00" * 200, Code.MALFORMED, "unknown envelope format"),
        (lambda d: signed(b'{"function": "spin_n", "n": 1}')(d)[:-3], Code.MALFORMED, "a field has the wrong size"),
        (forged_signature, Code.BAD_SIGNATURE, "signature does not match"),
        (signed(b'{"function": "spin_n", "n": 1}', chain="another-cluster"), Code.BAD_SIGNATURE, "signature does not match"),
        (signed(b"not json at all"), Code.MALFORMED, "not valid UTF-8 JSON"),
        (signed(b'{"function": "big_output", "n": "\xff"}'), Code.MALFORMED, "not valid UTF-8"),
        (signed(b'{"function": "write_then_trap", "key": "\\udc00"}'), Code.MALFORMED, "surrogate"),
        (signed(b"[1, 2, 3]"), Code.INVALID_CALL, "a call is a JSON object"),
        (signed(b'{"function": "no_such_function"}'), Code.INVALID_CALL, "unknown function 'no_such_function'"),
        (signed(b'{"function": "spin_n"}'), Code.INVALID_CALL, "missing argument 'n' (u64)"),
        (signed(b'{"function": "spin_n", "n": 1, "m": 2}'), Code.INVALID_CALL, "unexpected argument 'm'"),
        (signed(b'{"function": "spin_n", "n": "many"}'), Code.INVALID_CALL, "expected u64, got string"),
        (signed(b'{"function": "spin_n", "n": -1}'), Code.INVALID_CALL, "out of range [0, 18446744073709551615]"),
        (signed(b'{"function": "big_output", "n": 4294967296}'), Code.INVALID_CALL, "out of range [0, 4294967295]"),
        (signed(b'{"function": "spin_n", "n": 1}', counter=2**64 - 1), Code.TOO_EARLY, "more than 64 ahead"),
        (signed(b'{"function": "write_then_trap", "key": "x' + b"a" * 70_000 + b'"}'), Code.MALFORMED, "exceeds the limit"),
    ],
)
def test_bad_transactions_are_refused_in_check_tx(hostile_cluster: Devnet, tx: bytes | Callable[[SigningDomain], bytes],
                                                  code: int, message: str) -> None:
    result = broadcast(hostile_cluster, tx(domain_of(hostile_cluster)) if callable(tx) else tx)
    assert result["code"] == code, result
    assert message in result["log"], result["log"]


def test_replayed_transaction_is_refused(hostile_cluster: Devnet) -> None:
    async def go():
        async with AsyncClient(hostile_cluster.nodes[0].rpc) as client:
            session = client.session()
            envelope = await session.envelope({"function": "spin_n", "n": 1})
            await client.wait_for_result(session.session_key, 0, tx=envelope.encode())
            return envelope.encode()

    tx = asyncio.run(go())
    for node in range(4):  # every node refuses it, whether or not it saw it before
        result = broadcast(hostile_cluster, tx, node)
        assert result["code"] != 0 and ("already used" in result["log"] or "already exists in cache" in result["log"])


@pytest.mark.parametrize(
    "call, reason",
    [
        ({"function": "spin"}, "out of fuel"),
        ({"function": "alloc_forever"}, ""),
        ({"function": "trap"}, "unreachable"),
        ({"function": "write_then_trap", "key": "trapped"}, "unreachable"),
        ({"function": "deep_recursion", "n": 100_000_000}, "stack overflow"),
    ],
)
def test_hostile_backend_calls_fail_cleanly(hostile_cluster: Devnet, call: dict, reason: str) -> None:
    async def go():
        async with AsyncClient(hostile_cluster.nodes[1].rpc) as client:
            return await client.call(call, timeout=60)

    result = asyncio.run(go())
    assert result.status == "error" and result.fuel is not None
    assert reason in (result.error or "")
    assert all(hostile_cluster.running(i) for i in range(4))


def test_failed_write_left_no_trace_and_nodes_agree(hostile_cluster: Devnet) -> None:
    async def go():
        async with AsyncClient(hostile_cluster.nodes[2].rpc) as client:
            failed = await client.call({"function": "write_then_trap", "key": "ghost"})
            assert failed.status == "error"
            response = await client.rpc.abci_query("/state/" + b"ghost".hex())
            assert not response.get("value"), "a trapped call's write reached state"
            fine = await client.call({"function": "write_many", "n": 3})
            assert fine.ok
            response = await client.rpc.abci_query("/state/" + b"k/0".hex())
            assert base64.b64decode(response["value"]) == b"v"

    asyncio.run(go())
    assert_all_agree(hostile_cluster)


def test_oversize_result_is_an_error_not_a_crash(hostile_cluster: Devnet) -> None:
    async def go():
        async with AsyncClient(hostile_cluster.nodes[0].rpc) as client:
            return await client.call({"function": "big_output", "n": 1_000_000}, timeout=60)

    result = asyncio.run(go())
    assert result.status == "error" and "exceeds the limit" in result.error


def test_query_function_cannot_be_sent_as_a_transaction(stock_cluster: Devnet) -> None:
    async def go():
        async with AsyncClient(stock_cluster.nodes[0].rpc) as client:
            await client.call({"function": "get_high", "symbol": "X"})

    with pytest.raises(CallRejected, match="read-only query"):
        asyncio.run(go())


def test_unknown_query_path_and_bad_query(stock_cluster: Devnet) -> None:
    async def go():
        async with AsyncClient(stock_cluster.nodes[0].rpc) as client:
            listing = await client.entry_points()
            assert {e["name"] for e in listing["entry_points"]} == {"update_high", "get_high", "symbols"}
            with pytest.raises(CallRejected, match="changes state"):
                await client.query({"function": "update_high", "symbol": "A", "value": 1.0})
            bad = await client.rpc.abci_query("/nope")
            assert bad["code"] != 0 and "unknown query path" in bad["log"]

    asyncio.run(go())
