"""One websocket for everything a client waits on: one message per block, with all its results.

CometBFT allows a client only a few subscriptions, so the client does not subscribe per
call: it subscribes once, on the node it uses, to `tm.event='NewBlock'`. Each block comes as
one message holding its transactions, their results (code, data, `rtc_result.key` events)
and the results written at the end of the block; the stream hands the client one `TxEvent`
per transaction and then the block, which the client dispatches by `rtc_result.key` and by
transaction hash. One message per block, not one per transaction of the whole cluster,
keeps a busy cluster's events cheap to follow.

When the connection fails (the node stopped, hangs past the ping timeout, or sends no block
for `stall_s` while the client waits on something), the node is marked unusable and the
stream reconnects to the next healthy one. The blocks it missed meanwhile are read from that
node (`block` and `block_results`) and handed over as if they had come on the stream, so no
waiter has to read state again; only when more than `max_replay` blocks were missed (or the
node no longer keeps them) does `on_gap` ask the client to read from state what it awaits.
Calls need not wait for a reconnection: once the stream has a starting height, whatever
happens after it is seen, live or replayed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import websockets

from rtc.cometbft import HeightUnavailable, RPCError, RPCUnavailable

from .nodes import Node, NodePool

log = logging.getLogger("rtc.client")

MAX_EVENT_BYTES = 64 * 1024 * 1024  # one block with its results, as JSON (CometBFT's default block bound is 21 MiB)
MAX_QUEUE = 8  # blocks received and not yet handled before reading pauses (each may be MAX_EVENT_BYTES)
PING_INTERVAL_S = 2.0  # a node that answers no ping within PING_TIMEOUT_S is taken as hung
PING_TIMEOUT_S = 5.0
STALL_S = 5.0  # no block for this long while something is awaited: the node is stuck or cut off
RETRY_S = 0.5  # pause between connection attempts when no node is usable
MAX_REPLAY = 100  # blocks missed while reconnecting that are read back; beyond that the client reads state
SUBSCRIPTION = "tm.event='NewBlock'"
RESULT_EVENT, RESULT_KEY = "rtc_result", "key"


@dataclass(frozen=True)
class TxEvent:
    """A transaction in a block: its hash, the result keys it wrote, and its ExecTxResult."""

    digest: str
    height: int
    keys: tuple[str, ...]
    code: int
    data: bytes
    log: str


def result_keys(events: Any) -> list[str]:
    """The `rtc_result.key` values among ABCI events as CometBFT's JSON writes them."""
    keys: list[str] = []
    for event in events or ():
        if event.get("type") == RESULT_EVENT:
            keys += [str(a.get("value")) for a in event.get("attributes") or () if a.get("key") == RESULT_KEY]
    return keys


def block_events(height: int, txs: Any, tx_results: Any) -> list[TxEvent]:
    """One block's transactions (base64, as in `block.data.txs`) with their results, in block order."""
    txs, tx_results = list(txs or ()), list(tx_results or ())
    if len(txs) != len(tx_results):
        raise ValueError(f"block {height} has {len(txs)} transactions but {len(tx_results)} results")
    try:
        return [TxEvent(
            digest=hashlib.sha256(base64.b64decode(tx)).hexdigest().upper(),
            height=height,
            keys=tuple(result_keys(result.get("events"))),
            code=int(result.get("code") or 0),
            data=base64.b64decode(result.get("data") or ""),
            log=str(result.get("log") or ""),
        ) for tx, result in zip(txs, tx_results)]
    except (binascii.Error, AttributeError, TypeError) as exc:
        raise ValueError(f"block {height}: a transaction or result is malformed ({exc})") from None


class EventStream:
    """The client's one subscription, moved from node to node as they fail."""

    def __init__(self, pool: NodePool, on_tx: Callable[[TxEvent], None],
                 on_block: Callable[[int, list[str]], None], on_gap: Callable[[], None],
                 busy: Callable[[], bool], open_timeout: float = 10.0, stall_s: float = STALL_S,
                 max_replay: int = MAX_REPLAY) -> None:
        self.pool = pool
        self.on_tx, self.on_block, self.on_gap, self.busy = on_tx, on_block, on_gap, busy
        self.open_timeout = open_timeout
        self.stall_s = stall_s
        self.max_replay = max_replay
        self.height: int | None = None  # the last block handed over, on whichever node
        self.block_at = 0.0  # loop time when it was
        self.node: Node | None = None  # the node the stream is on while connected
        self.connected = asyncio.Event()
        self.unavailable = asyncio.Event()  # set while no node at all is usable
        self.error: str = ""  # why the last connection attempt failed
        self.replayed = 0  # blocks read back after reconnections (for tests and load reports)
        self._task: asyncio.Task[None] | None = None
        self._ws: websockets.ClientConnection | None = None  # the connection while there is one
        self._closed = False

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rtc-events")

    async def ready(self, timeout: float) -> None:
        """Return once the stream has a starting height (from then on every block is handed
        over, live or replayed after a reconnection); RPCUnavailable at once when no node is
        usable, or when none confirms the subscription within `timeout`."""
        if self.height is not None and self._task is not None and not self._task.done():
            return
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
            delivered = self.replayed, self.height
            try:
                await self._follow(node)
                why = "its event stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever a node sends must not end the stream for good
                why = f"events: {type(exc).__name__}: {exc}"[:300]
            self.connected.clear()
            self.node, self._ws = None, None
            self.error = why
            if not self._closed:
                self.pool.mark_down(node, why)
                if (self.replayed, self.height) == delivered:  # nothing came of it: do not spin
                    await asyncio.sleep(RETRY_S)

    async def _follow(self, node: Node) -> None:
        async with websockets.connect(node.ws_url, max_size=MAX_EVENT_BYTES, max_queue=MAX_QUEUE,
                                      open_timeout=self.open_timeout, ping_interval=PING_INTERVAL_S,
                                      ping_timeout=PING_TIMEOUT_S, close_timeout=1.0) as ws:
            self._ws = ws
            await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": "blocks", "method": "subscribe",
                                        "params": {"query": SUBSCRIPTION}}).decode())
            early: list[dict[str, Any]] = []  # blocks that came before the confirmation
            while True:
                async with asyncio.timeout(self.open_timeout):
                    message = orjson.loads(await ws.recv())
                if message.get("id") == "blocks":
                    if "error" in message:
                        raise RPCError(f"subscribe: {message['error'].get('message')} {message['error'].get('data', '')}")
                    break
                early.append(message)
            # Every block after `latest` comes on the stream; those missed since the last one
            # handed over are read back from this node.
            async with asyncio.timeout(self.open_timeout):
                latest = await node.rpc.latest_height()
            if self.height is not None and latest > self.height:
                await self._replay(node, self.height + 1, latest)
            elif self.height is None:
                self.height, self.block_at = latest, asyncio.get_running_loop().time()
            self.node = node
            self.connected.set()
            loop = asyncio.get_running_loop()
            last_block = loop.time()
            for message in early:
                self._dispatch(message)
            while True:  # (asyncio.timeout, not wait_for: on 3.11 that can swallow aclose's cancellation)
                try:
                    async with asyncio.timeout(1.0):
                        raw = await ws.recv()
                except TimeoutError:
                    if self.busy() and loop.time() - last_block > self.stall_s:
                        raise asyncio.TimeoutError(f"no block for {self.stall_s:.0f}s") from None
                    continue
                if self._dispatch(orjson.loads(raw)):
                    last_block = loop.time()

    async def _replay(self, node: Node, first: int, last: int) -> None:
        """Hand over blocks `first`..`last`, read from `node`; too many, or gone: `on_gap`."""
        if last - first + 1 > self.max_replay:
            log.info("missed blocks %d-%d, more than %d: reading results from state", first, last, self.max_replay)
            self._gap(last)
            return
        for height in range(first, last + 1):
            try:
                block, results = await asyncio.gather(node.rpc.block(height), node.rpc.block_results(height))
            except HeightUnavailable:
                log.info("node %s no longer keeps block %d: reading results from state", node.url, height)
                self._gap(last)
                return
            except RPCError:
                if height == last:  # stored, its results not yet: its NewBlock event is still to come
                    return
                raise
            try:
                txs = block["data"]["txs"]
                tx_results, end_events = results.get("txs_results"), results.get("finalize_block_events")
            except (KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{node.url} answered block {height} without its {exc}") from None
            self._deliver(height, txs, tx_results, end_events)
            self.replayed += 1

    def _gap(self, height: int) -> None:
        self.height, self.block_at = height, asyncio.get_running_loop().time()
        self.on_gap()

    def _dispatch(self, message: dict[str, Any]) -> bool:
        """Hand one message to the client; True when it was a block."""
        if "error" in message:  # e.g. the node cancelled the subscription of a slow client
            raise RPCError(f"the node ended the subscription: {message['error'].get('message')} "
                           f"{message['error'].get('data', '')}")
        data = (message.get("result") or {}).get("data") or {}
        if data.get("type") != "tendermint/event/NewBlock":
            return False
        value = data.get("value") or {}
        try:
            block = value["block"]
            height = int(block["header"]["height"])
            txs = block["data"]["txs"]
            finalized = value.get("result_finalize_block") or {}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a NewBlock event without its {exc}") from None
        if self.height is None or height > self.height:  # else already handed over (replayed, or from another node)
            self._deliver(height, txs, finalized.get("tx_results"), finalized.get("events"))
        return True

    def _deliver(self, height: int, txs: Any, tx_results: Any, end_events: Any) -> None:
        for event in block_events(height, txs, tx_results):
            self.on_tx(event)
        self.height, self.block_at = height, asyncio.get_running_loop().time()
        self.on_block(height, result_keys(end_events))
