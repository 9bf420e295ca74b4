"""Talking to one node over CometBFT's RPC: submit a call, wait for its block, read state.

Waiting is by subscription on CometBFT's websocket (`tm.event='Tx' AND tx.hash=...`),
opened before the transaction is broadcast so the commit event cannot be missed; no
polling loop.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

from rtc.node.txs import canonical_json, encode_tx, tx_hash


class RPCError(RuntimeError):
    """The node answered with an error, or could not be reached; the message says which."""


class CallRejected(RuntimeError):
    """The cluster refused the call before ordering it (CheckTx)."""

    def __init__(self, code: int, log: str) -> None:
        super().__init__(log)
        self.code = code
        self.log = log


@dataclass
class CallResult:
    """A call's outcome as its block recorded it."""

    tx_hash: str
    height: int
    code: int
    status: str
    value: Any
    error: str | None
    fuel: int | None
    submitted_at: float
    committed_at: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def latency_ms(self) -> float:
        return (self.committed_at - self.submitted_at) * 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash, "height": self.height, "status": self.status, "value": self.value,
            "error": self.error, "fuel": self.fuel, "latency_ms": round(self.latency_ms, 1),
        }


class NodeClient:
    """An async client for one node's RPC endpoint, e.g. http://127.0.0.1:26601."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.ws_url = "ws" + self.url[len("http"):] + "/websocket"
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._ids = itertools.count(1)

    async def __aenter__(self) -> "NodeClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def rpc(self, method: str, **params: Any) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = await self._http.post("/", json=request)
        except httpx.HTTPError as exc:
            raise RPCError(f"cannot reach {self.url} ({type(exc).__name__}); is the node running?") from None
        try:
            body = response.json()
        except ValueError:
            raise RPCError(f"{self.url} answered {method} with HTTP {response.status_code} and no JSON; is it a CometBFT RPC endpoint?") from None
        if "error" in body:
            error = body["error"]
            raise RPCError(f"{method}: {error.get('message')} {error.get('data', '')}".strip())
        return body["result"]

    async def status(self) -> dict[str, Any]:
        return await self.rpc("status")

    async def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> dict[str, Any]:
        result = await self.rpc("abci_query", path=path, data=data.hex(), prove=prove, height=str(height))
        return result["response"]

    async def entry_points(self) -> dict[str, Any]:
        response = await self.abci_query("/entry-points")
        return json.loads(base64.b64decode(response["value"]))

    async def query(self, call: dict[str, Any]) -> Any:
        """Run a read-only entry point against committed state (no consensus, no transaction)."""
        response = await self.abci_query("/call", canonical_json(call))
        if int(response.get("code", 0)) != 0:
            raise CallRejected(int(response["code"]), response.get("log", ""))
        return json.loads(base64.b64decode(response["value"]))

    async def call(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        """Submit one call and wait for the block that executes it."""
        tx = encode_tx(call, nonce=os.urandom(12).hex())
        return await self.submit(tx, timeout)

    async def submit(self, tx: bytes, timeout: float = 30.0) -> CallResult:
        loop = asyncio.get_running_loop()
        digest = tx_hash(tx).hex().upper()
        query = f"tm.event='Tx' AND tx.hash='{digest}'"
        try:
            ws = await websockets.connect(self.ws_url, max_size=16 * 1024 * 1024, open_timeout=timeout)
        except (OSError, websockets.WebSocketException) as exc:
            raise RPCError(f"cannot open {self.ws_url} ({type(exc).__name__}); is the node running?") from None
        async with ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": "sub", "method": "subscribe", "params": {"query": query}}))
            try:
                await asyncio.wait_for(_until_reply(ws, "sub"), timeout)
            except asyncio.TimeoutError:
                raise RPCError(f"{self.ws_url} did not confirm the subscription within {timeout:.0f}s") from None
            submitted_at = loop.time()
            checked = await self.rpc("broadcast_tx_sync", tx=base64.b64encode(tx).decode())
            if int(checked.get("code", 0)) != 0:
                raise CallRejected(int(checked["code"]), checked.get("log", ""))
            try:
                event = await asyncio.wait_for(_next_event(ws), timeout)
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                raise RPCError(
                    f"transaction {digest} was accepted but no block included it within {timeout:.0f}s; "
                    f"fetch it later with `rtc tx {digest}`"
                ) from None
            committed_at = loop.time()
        return _call_result(digest, event["data"]["value"]["TxResult"], submitted_at, committed_at)

    async def tx(self, digest: str) -> CallResult:
        """Look up a committed transaction by hash (requires the node's tx indexer, on by default)."""
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            raise ValueError(f"{digest!r} is not a transaction hash (64 hex digits)") from None
        result = await self.rpc("tx", hash=base64.b64encode(raw).decode(), prove=False)
        tx_result = {"height": result["height"], "result": result["tx_result"]}
        return _call_result(digest.upper(), tx_result, 0.0, 0.0)


async def _until_reply(ws: Any, request_id: str) -> None:
    while True:
        message = json.loads(await ws.recv())
        if message.get("id") == request_id:
            if "error" in message:
                raise RPCError(f"subscribe: {message['error'].get('message')} {message['error'].get('data', '')}")
            return


async def _next_event(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await ws.recv())
        result = message.get("result") or {}
        if result.get("data", {}).get("type") == "tendermint/event/Tx":
            return result


def _call_result(digest: str, tx_result: dict[str, Any], submitted_at: float, committed_at: float) -> CallResult:
    result = tx_result.get("result", {})
    record = json.loads(base64.b64decode(result["data"])) if result.get("data") else {}
    return CallResult(
        tx_hash=digest,
        height=int(tx_result["height"]),
        code=int(result.get("code", 0)),
        status=record.get("status", "unknown"),
        value=record.get("value"),
        error=record.get("error") or result.get("log") or None,
        fuel=record.get("fuel"),
        submitted_at=submitted_at,
        committed_at=committed_at,
    )
