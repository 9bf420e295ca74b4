"""The nodes a client may use, and which one it uses now.

A cluster keeps running while any one node is down, so a client that knows several of its
nodes keeps running too: it uses one node at a time and moves to the next when that one
refuses connections, stops answering, or says it is catching up (a node that restarted
answers from stale state until it has replayed the blocks it missed). Moving is cheap; a
node that failed is left alone for a while before it is tried again.

Calls are handed to a node over a few websockets of its JSON-RPC (`Lane`), not one HTTP
request each: an HTTP request through httpx costs the client several milliseconds of CPU
(its connection pool, and on this stack a failed import at every request), a websocket
message a small fraction of that, and a client that sends dozens of calls a second
spends its time there. CometBFT answers one connection's requests one after another, so a
node has several lanes, and a session keeps to one lane so that its calls reach the
mempool in counter order. Reads stay on HTTP (`Node.rpc`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets

from rtc.cometbft import AsyncRPC, RPCError, RPCUnavailable
from rtc.cometbft.rpc import answer_result

log = logging.getLogger("rtc.client")

PROBE_TIMEOUT_S = 2.0  # a status answer takes milliseconds; a node slower than this is not one to use
BACKOFF_S = 3.0  # a node that failed is not tried again for this long (unless no other is left)
LANES = 8  # websockets per node for sending calls, opened when first used
LANE_DEPTH = 32  # requests sent on one lane and not yet answered, at most (CometBFT answers them in turn)
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class _Connection:
    """One open websocket of a lane, with the requests waiting for their answers on it."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read(), name="rtc-lane")

    async def _read(self) -> None:
        error: BaseException = ConnectionError("the node closed the connection")
        try:
            async for raw in self.ws:
                message = orjson.loads(raw)
                answer = self.answers.pop(message.get("id"), None) if isinstance(message, dict) else None
                if answer is not None and not answer.done():
                    answer.set_result(message)
        except orjson.JSONDecodeError as exc:
            error = exc
            await self.ws.close()  # a garbled answer: nothing more on this connection can be trusted
        except (OSError, websockets.WebSocketException) as exc:
            error = exc
        finally:
            for answer in self.answers.values():
                if not answer.done():
                    answer.set_exception(ConnectionError(f"the connection was lost ({type(error).__name__})"))
            self.answers.clear()


class Lane:
    """One websocket to a node's JSON-RPC: requests go out without waiting for earlier
    answers, and CometBFT handles them in the order sent. Reconnects when next used after
    the connection was lost; a failure raises RPCUnavailable, as an HTTP request would."""

    def __init__(self, ws_url: str, timeout: float, depth: int = LANE_DEPTH) -> None:
        self.ws_url, self.timeout = ws_url, timeout
        self._connection: _Connection | None = None
        self._closed = False
        self._opening = asyncio.Lock()
        self._slots = asyncio.Semaphore(depth)
        self._ids = itertools.count(1)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """The JSON-RPC answer's `result`; RPCError for the node's error answer."""
        try:
            async with self._slots:
                connection = await self._connect()
                request_id = next(self._ids)
                answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                connection.answers[request_id] = answer
                try:
                    if connection.reader.done():  # lost since: its answer would never come
                        raise ConnectionError("the connection was lost")
                    await connection.ws.send(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                                           "params": params}).decode())
                    async with asyncio.timeout(self.timeout):
                        message = await answer
                finally:
                    connection.answers.pop(request_id, None)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:  # ConnectionError is an OSError
            raise RPCUnavailable(f"cannot reach {self.ws_url} ({type(exc).__name__}); is the node running?", method) from None
        return answer_result(self.ws_url, method, message)

    async def _connect(self) -> _Connection:
        connection = self._connection
        if connection is not None and not connection.reader.done():
            return connection
        async with self._opening:
            if self._closed:
                raise ConnectionError("the client is closed")
            if self._connection is None or self._connection.reader.done():
                ws = await websockets.connect(self.ws_url, open_timeout=self.timeout, max_size=MAX_ANSWER_BYTES,
                                              compression=None, ping_interval=None, close_timeout=1.0)
                if self._closed:  # closed while it opened
                    await ws.close()
                    raise ConnectionError("the client is closed")
                self._connection = _Connection(ws)
            return self._connection

    async def aclose(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.ws.close()
            connection.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection.reader


@dataclass(eq=False)
class Node:
    """One node's endpoint as the client sees it."""

    url: str
    rpc: AsyncRPC
    probe_rpc: AsyncRPC = field(repr=False)
    lanes: list[Lane] = field(default_factory=list, repr=False)
    down_until: float = 0.0  # loop time until which it is not tried, unless no other node is left
    why_down: str = ""
    checked: bool = False  # probed healthy since it was last marked down

    @property
    def ws_url(self) -> str:
        return self.rpc.ws_url

    async def broadcast_tx_sync(self, tx: bytes, lane: int = 0) -> Any:
        """Hand a transaction to the node's mempool over lane `lane` (modulo their number);
        the answer carries CheckTx's code and log, as `AsyncRPC.broadcast_tx_sync`'s does."""
        if not self.lanes:
            return await self.rpc.broadcast_tx_sync(tx)
        return await self.lanes[lane % len(self.lanes)].call("broadcast_tx_sync", {"tx": base64.b64encode(tx).decode()})


class NodePool:
    """Which node to use now: the current one while it works, else the next healthy one.

    `on_down(node)` runs whenever a node is found unusable, so that whatever was sent to it
    and not yet seen in a block can be sent again elsewhere."""

    def __init__(self, urls: Sequence[str], timeout: float, probe_timeout: float = PROBE_TIMEOUT_S,
                 backoff: float = BACKOFF_S, lanes: int = LANES) -> None:
        unique = list(dict.fromkeys(url.rstrip("/") for url in urls))
        if not unique:
            raise ValueError("give at least one node URL, e.g. http://127.0.0.1:26601")
        self.nodes = [Node(url, AsyncRPC(url, timeout), AsyncRPC(url, probe_timeout)) for url in unique]
        for node in self.nodes:
            node.lanes = [Lane(node.ws_url, timeout) for _ in range(lanes)]
        self.current = self.nodes[0]
        self.backoff = backoff
        self.chain_id: str | None = None  # as the first healthy node reported it; every other must agree
        self.on_down: Callable[[Node], None] = lambda node: None
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self.nodes)

    async def aclose(self) -> None:
        # all lanes at once: each may wait its close timeout on a hung node
        await asyncio.gather(*(lane.aclose() for node in self.nodes for lane in node.lanes))
        for node in self.nodes:
            await node.rpc.aclose()
            await node.probe_rpc.aclose()

    def mark_down(self, node: Node, why: str, for_s: float | None = None) -> None:
        """Leave `node` alone for a while; whatever it was handed is resent elsewhere."""
        now = asyncio.get_running_loop().time()
        first = node.down_until <= now
        node.down_until = now + (self.backoff if for_s is None else for_s)
        node.why_down, node.checked = why, False
        if first and len(self.nodes) > 1:
            log.info("node %s is not usable (%s); failing over", node.url, why)
        self.on_down(node)

    async def healthy(self, avoid: Node | None = None) -> Node:
        """The current node if it is usable (and is not `avoid`), else the first healthy one after it.

        Raises RPCUnavailable when no node is usable, naming why each is not."""
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self.current is not avoid and self.current.checked and self.current.down_until <= now:
                return self.current
            start = self.nodes.index(self.current)
            ordered = self.nodes[start:] + self.nodes[:start]
            if avoid is not None and len(ordered) > 1:
                ordered = [n for n in ordered if n is not avoid] + [avoid]
            # Nodes in their backoff last, soonest back first: with every node failing, still try them all.
            ordered.sort(key=lambda n: 0.0 if n.down_until <= now else n.down_until)
            for node in ordered:
                why = node.why_down if node.checked and node.down_until <= now else await self._probe(node)
                if why is None:
                    node.checked, node.down_until = True, 0.0
                    if self.current is not node and len(self.nodes) > 1:
                        log.info("using node %s", node.url)
                    self.current = node
                    return node
                self.mark_down(node, why)
            raise RPCUnavailable("no node of the cluster is usable: "
                                 + "; ".join(f"{n.url} ({n.why_down})" for n in self.nodes), "status")

    async def _probe(self, node: Node) -> str | None:
        """None if the node answers, is not catching up and runs the client's chain; else why not."""
        try:
            status = await node.probe_rpc.status()
            catching_up = bool(status["sync_info"]["catching_up"])
            chain_id = str(status["node_info"]["network"])
        except RPCUnavailable as exc:
            return str(exc)
        except (RPCError, KeyError, TypeError) as exc:
            return f"its status answer is unusable: {exc}"
        if self.chain_id is None:
            self.chain_id = chain_id
        elif chain_id != self.chain_id:
            return f"it runs chain {chain_id!r}, not {self.chain_id!r}: it is not a node of this cluster"
        if catching_up:
            return "it is catching up with the cluster (its state is behind)"
        return None
