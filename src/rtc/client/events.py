"""One websocket for everything a client waits on: every transaction and every block's events.

CometBFT allows a client only a few subscriptions, so the client does not subscribe per
call: it subscribes once, on the node it uses, to `tm.event='Tx'` (each transaction with
its result and its `rtc_result.key` attributes) and `tm.event='NewBlockEvents'` (results
written at the end of a block, and the height, which times resends in blocks). Events are
handed to the client, which dispatches them by `rtc_result.key` and by transaction hash.

When the connection fails (the node stopped, hangs past the ping timeout, or sends no block
for `stall_s` while the client waits on something), the node is marked unusable and the
stream reconnects to the next healthy one; `on_connect` then lets the client read again
from state whatever it may have missed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import websockets

from rtc.cometbft import RPCError, RPCUnavailable

from .nodes import Node, NodePool

log = logging.getLogger("rtc.client")

MAX_EVENT_BYTES = 16 * 1024 * 1024
PING_INTERVAL_S = 1.0  # a node that answers no ping within PING_TIMEOUT_S is taken as hung
PING_TIMEOUT_S = 2.0
STALL_S = 5.0  # no block for this long while something is awaited: the node is stuck or cut off
RETRY_S = 0.5  # pause between connection attempts when no node is usable
SUBSCRIPTIONS = (("tx", "tm.event='Tx'"), ("block", "tm.event='NewBlockEvents'"))


@dataclass(frozen=True)
class TxEvent:
    """A transaction in a block: its hash, the result keys it wrote, and its ExecTxResult."""

    digest: str
    height: int
    keys: tuple[str, ...]
    code: int
    data: bytes
    log: str


class EventStream:
    """The client's one subscription, moved from node to node as they fail."""

    def __init__(self, pool: NodePool, on_tx: Callable[[TxEvent], None],
                 on_block: Callable[[int, list[str]], None], on_connect: Callable[[Node], Awaitable[None]],
                 busy: Callable[[], bool], open_timeout: float = 10.0, stall_s: float = STALL_S) -> None:
        self.pool = pool
        self.on_tx, self.on_block, self.on_connect, self.busy = on_tx, on_block, on_connect, busy
        self.open_timeout = open_timeout
        self.stall_s = stall_s
        self.height: int | None = None  # the last block seen, on whichever node
        self.node: Node | None = None  # the node the stream is on while connected
        self.connected = asyncio.Event()
        self.unavailable = asyncio.Event()  # set while no node at all is usable
        self.error: str = ""  # why the last connection attempt failed
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rtc-events")

    async def ready(self, timeout: float) -> None:
        """Return once the subscriptions are confirmed on some node; RPCUnavailable at once when
        no node is usable, or when none confirms within `timeout`."""
        if self.connected.is_set():
            return
        self.unavailable.clear()
        self.start()
        waits = [asyncio.ensure_future(self.connected.wait()), asyncio.ensure_future(self.unavailable.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not self.connected.is_set():
            raise RPCUnavailable(self.error if self.unavailable.is_set() else
                                 f"could not subscribe to events within {timeout:.0f}s ({self.error or 'no answer'}); "
                                 "is the node running?")

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._closed:
            try:
                node = await self.pool.healthy()
            except RPCUnavailable as exc:
                self.error = str(exc)
                self.unavailable.set()
                await asyncio.sleep(RETRY_S)
                continue
            try:
                await self._follow(node)
                why = "its event stream ended"
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException, RPCError, ValueError) as exc:
                why = f"events: {type(exc).__name__}: {exc}"[:300]
            self.connected.clear()
            self.node = None
            self.error = why
            if not self._closed:
                self.pool.mark_down(node, why)

    async def _follow(self, node: Node) -> None:
        async with websockets.connect(node.ws_url, max_size=MAX_EVENT_BYTES, open_timeout=self.open_timeout,
                                      ping_interval=PING_INTERVAL_S, ping_timeout=PING_TIMEOUT_S,
                                      close_timeout=1.0) as ws:
            for name, query in SUBSCRIPTIONS:
                await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": name, "method": "subscribe",
                                            "params": {"query": query}}).decode())
            confirmed: set[str] = set()
            while len(confirmed) < len(SUBSCRIPTIONS):
                message = orjson.loads(await asyncio.wait_for(ws.recv(), self.open_timeout))
                if message.get("id") in dict(SUBSCRIPTIONS):
                    if "error" in message:
                        raise RPCError(f"subscribe: {message['error'].get('message')} {message['error'].get('data', '')}")
                    confirmed.add(message["id"])
                else:
                    self._dispatch(message)
            self.node = node
            self.connected.set()
            await self.on_connect(node)
            loop = asyncio.get_running_loop()
            last_block = loop.time()
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 1.0)
                except asyncio.TimeoutError:
                    if self.busy() and loop.time() - last_block > self.stall_s:
                        raise asyncio.TimeoutError(f"no block for {self.stall_s:.0f}s") from None
                    continue
                if self._dispatch(orjson.loads(raw)):
                    last_block = loop.time()

    def _dispatch(self, message: dict[str, Any]) -> bool:
        """Hand one message to the client; True when it was a block."""
        if "error" in message:  # e.g. the node cancelled the subscription of a slow client
            raise RPCError(f"the node ended the subscription: {message['error'].get('message')} "
                           f"{message['error'].get('data', '')}")
        result = message.get("result") or {}
        data = result.get("data") or {}
        events = result.get("events") or {}
        kind = data.get("type")
        value = data.get("value") or {}
        if kind == "tendermint/event/NewBlockEvents":
            height = int(value.get("height") or 0)
            if self.height is None or height > self.height:
                self.height = height
            self.on_block(height, list(events.get("rtc_result.key") or []))
            return True
        if kind == "tendermint/event/Tx":
            tx_result = value.get("TxResult") or {}
            outcome = tx_result.get("result") or {}
            self.on_tx(TxEvent(
                digest=str((events.get("tx.hash") or [""])[0]).upper(),
                height=int(tx_result.get("height") or 0),
                keys=tuple(events.get("rtc_result.key") or ()),
                code=int(outcome.get("code") or 0),
                data=base64.b64decode(outcome.get("data") or ""),
                log=str(outcome.get("log") or ""),
            ))
        return False
