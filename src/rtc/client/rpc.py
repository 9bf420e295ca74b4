"""Talking to a cluster over CometBFT's RPC: signed session calls, results, queries.

A `Session` sends calls without waiting for blocks (counter k runs after k-1 on every
node), and any result can be awaited or fetched later by counter. Waiting is by
subscription on CometBFT's websocket, opened before anything is sent so that no event
can be missed; there is no polling loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import websockets
from nacl.signing import SigningKey

from rtc.node.txs import Code, canonical_json
from rtc.sessions import Envelope, Kind, sign

FINAL = ("ok", "error", "skipped")


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
    """A call's outcome as the cluster's state records it under (session, counter)."""

    session: str  # hex of client key || session id
    counter: int
    height: int
    status: str
    value: Any
    error: str | None
    fuel: int | None
    latency_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_record(cls, session: str, counter: int, record: dict[str, Any], latency_ms: float | None = None) -> "CallResult":
        return cls(session, counter, int(record.get("height", 0)), record["status"], record.get("value"),
                   record.get("error") or record.get("reason"), record.get("fuel"), latency_ms)

    def to_json(self) -> dict[str, Any]:
        data = {"session": self.session, "counter": self.counter, "height": self.height, "status": self.status,
                "value": self.value, "error": self.error, "fuel": self.fuel}
        if self.latency_ms is not None:
            data["latency_ms"] = round(self.latency_ms, 1)
        return data


class NodeClient:
    """An async client for one node's RPC endpoint, e.g. http://127.0.0.1:26601."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.ws_url = "ws" + self.url[len("http"):] + "/websocket"
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._ids = itertools.count(1)
        self._chain_id: str | None = None

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

    async def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = (await self.status())["node_info"]["network"]
        return self._chain_id

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

    async def broadcast(self, tx: bytes) -> None:
        """Hand a transaction to the node's mempool; CheckTx refusals raise CallRejected."""
        checked = await self.rpc("broadcast_tx_sync", tx=base64.b64encode(tx).decode())
        if int(checked.get("code", 0)) != 0:
            raise CallRejected(int(checked["code"]), checked.get("log", ""))

    async def fetch_result(self, session: bytes, counter: int) -> dict[str, Any] | None:
        """The result record of (session, counter) in committed state, or None."""
        response = await self.abci_query(f"/result/{session.hex()}/{counter}")
        if int(response.get("code", 0)) != 0:
            raise RPCError(response.get("log", "query failed"))
        value = response.get("value")
        return orjson.loads(base64.b64decode(value)) if value else None

    async def wait_for_result(self, session: bytes, counter: int, timeout: float = 30.0, tx: bytes | None = None) -> CallResult:
        """Wait until (session, counter) has a final result; `tx`, if given, is sent once subscribed.

        A transaction refused inside a block (a session rule, or a hostile proposer's pick)
        writes no result; with `tx` given that refusal is seen on its own event and raised.
        """
        loop = asyncio.get_running_loop()
        key = f"{session.hex()}/{counter}"
        digest = hashlib.sha256(tx).hexdigest().upper() if tx is not None else None
        try:
            ws = await websockets.connect(self.ws_url, max_size=16 * 1024 * 1024, open_timeout=timeout)
        except (OSError, websockets.WebSocketException) as exc:
            raise RPCError(f"cannot open {self.ws_url} ({type(exc).__name__}); is the node running?") from None
        async with ws:
            queries = [("tx", f"tm.event='Tx' AND rtc_result.key='{key}'"),
                       ("block", f"tm.event='NewBlockEvents' AND rtc_result.key='{key}'")]
            if digest is not None:
                queries.append(("own", f"tm.event='Tx' AND tx.hash='{digest}'"))
            for name, query in queries:
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": name, "method": "subscribe", "params": {"query": query}}))
                try:
                    await asyncio.wait_for(_until_reply(ws, name), timeout)
                except asyncio.TimeoutError:
                    raise RPCError(f"{self.ws_url} did not confirm the subscription within {timeout:.0f}s") from None
            started = loop.time()
            if tx is not None:
                await self.broadcast(tx)
            record = await self.fetch_result(session, counter)
            deadline = started + timeout
            while record is None or record["status"] not in FINAL:
                try:
                    refusal = await asyncio.wait_for(_next_result_event(ws, key), max(0.0, deadline - loop.time()))
                except (asyncio.TimeoutError, websockets.ConnectionClosed):
                    raise RPCError(
                        f"no final result for counter {counter} within {timeout:.0f}s"
                        + (f" (it is {record['status']}: {record.get('reason')})" if record else "")
                        + f"; fetch it later with `rtc result --session {session.hex()} --counter {counter}`"
                    ) from None
                if refusal is not None:
                    raise CallRejected(*refusal)
                record = await self.fetch_result(session, counter)
        if digest is not None and record.get("tx") != digest:
            raise CallRejected(
                Code.DUPLICATE, f"counter {counter} of this session was used by another transaction ({record.get('tx')})"
            )
        return CallResult.from_record(session.hex(), counter, record, (loop.time() - started) * 1000)

    async def call(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        """Submit one call in a fresh session and wait for its result."""
        session = Session(self, SigningKey.generate())
        return await session.call_and_wait(call, timeout)


class Session:
    """A client's ordered stream of calls: counter k executes only after k-1, cluster-wide."""

    def __init__(self, node: NodeClient, key: SigningKey, session_id: bytes | None = None, next_counter: int = 0) -> None:
        self.node = node
        self.key = key
        self.id = session_id if session_id is not None else os.urandom(16)
        self.next_counter = next_counter

    @property
    def key_bytes(self) -> bytes:
        """client public key || session id: the name of this session in the cluster's state."""
        return bytes(self.key.verify_key) + self.id

    async def envelope(self, call: dict[str, Any] | None, counter: int | None = None) -> Envelope:
        """Sign the next call (or a close, for `call=None`) and take its counter."""
        if counter is None:
            counter = self.next_counter
            self.next_counter += 1
        chain_id = await self.node.chain_id()
        if call is None:
            return sign(self.key, chain_id, self.id, counter, b"", Kind.CLOSE)
        return sign(self.key, chain_id, self.id, counter, canonical_json(call))

    async def call(self, call: dict[str, Any], node: NodeClient | None = None) -> int:
        """Send a call without waiting for any block; returns its counter."""
        envelope = await self.envelope(call)
        try:
            await (node or self.node).broadcast(envelope.encode())
        except CallRejected as exc:
            self._give_back(envelope.counter, exc)
            raise
        return envelope.counter

    async def call_and_wait(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        envelope = await self.envelope(call)
        return await self._send_and_wait(envelope, timeout)

    async def _send_and_wait(self, envelope: Envelope, timeout: float) -> CallResult:
        try:
            return await self.node.wait_for_result(self.key_bytes, envelope.counter, timeout, tx=envelope.encode())
        except CallRejected as exc:
            self._give_back(envelope.counter, exc)
            raise

    def _give_back(self, counter: int, refusal: CallRejected) -> None:
        """A refused call never reaches the session, so its counter is still free (unless it was used)."""
        if refusal.code != Code.DUPLICATE and counter == self.next_counter - 1:
            self.next_counter = counter

    async def result(self, counter: int, timeout: float = 30.0) -> CallResult:
        """Await the final result of call `counter` (it may already be there)."""
        return await self.node.wait_for_result(self.key_bytes, counter, timeout)

    async def close(self, timeout: float = 30.0) -> CallResult:
        return await self._send_and_wait(await self.envelope(None), timeout)


async def _until_reply(ws: Any, request_id: str) -> None:
    while True:
        message = json.loads(await ws.recv())
        if message.get("id") == request_id:
            if "error" in message:
                raise RPCError(f"subscribe: {message['error'].get('message')} {message['error'].get('data', '')}")
            return


async def _next_result_event(ws: Any, key: str) -> tuple[int, str] | None:
    """Return when an event about `key` arrives (its data is then read from state), or the
    refusal (code, log) of our own transaction when its block refused it."""
    while True:
        message = json.loads(await ws.recv())
        result = message.get("result") or {}
        if key in (result.get("events") or {}).get("rtc_result.key", []):
            return None
        tx_result = ((result.get("data") or {}).get("value") or {}).get("TxResult")
        if tx_result is not None:
            outcome = tx_result.get("result") or {}
            code = int(outcome.get("code", 0))
            if code != 0 and not outcome.get("data"):
                return code, "refused in block " + str(tx_result.get("height")) + ": " + outcome.get("log", "")
