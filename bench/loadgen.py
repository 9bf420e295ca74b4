"""Load generator: a fixed send rate (or a saturating window) over many sessions, every
transaction timed from its submit to the block event that commits it.

The same generator drives our cluster and CometBFT's kvstore, so the two are compared
with identical timers and load; only the transactions differ (signed session calls for
ours, `key=value` of the same size for kvstore). Transactions are built before a phase
starts, so signing costs nothing inside the measured window.

Submission: `broadcast_tx_sync` over CometBFT's JSON-RPC websocket. CometBFT answers one
connection's requests one after another, so the generator opens several connections per
node; every session is pinned to one connection, so its calls arrive in counter order.
Commit: one `NewBlock` subscription on the first node; a transaction counts as committed
when the block holding it is announced (CometBFT announces a block after Commit).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from nacl.signing import SigningKey

from rtc.protocol import SigningDomain, canonical_json, sign

TICK_S = 0.005  # the fixed-rate scheduler releases what is due this often


class TxSource:
    """Transactions built ahead of a phase; those a phase did not send are given back, so
    the next phase sends them first (a session's counters must all be sent, in order)."""

    sessions: int

    def __init__(self) -> None:
        self._returned: list[tuple[bytes, int]] = []

    def take(self, count: int) -> list[tuple[bytes, int]]:
        reused, self._returned = self._returned[:count], self._returned[count:]
        return reused + self._build(count - len(reused))

    def give_back(self, unsent: list[tuple[bytes, int]]) -> None:
        self._returned = unsent + self._returned

    def _build(self, count: int) -> list[tuple[bytes, int]]:
        raise NotImplementedError


class UpdateHighTxs(TxSource):
    """`update_high` calls round robin over `sessions` senders; the k-th of sender s names symbol
    B((s * 7919 + k) % symbols) with value k + 1. A system's transactions say how (`_signed`)."""

    def __init__(self, sessions: int, symbols: int) -> None:
        super().__init__()
        self.sessions = sessions
        self.symbols = symbols
        self._turn = 0

    def _build(self, count: int) -> list[tuple[bytes, int]]:
        """The next `count` transactions: (tx, session)."""
        out = []
        for _ in range(count):
            s = self._turn % self.sessions
            self._turn += 1
            out.append((self._signed(s), s))
        return out

    def symbol(self, session: int, k: int) -> str:
        return f"B{(session * 7919 + k) % self.symbols}"

    def _signed(self, session: int) -> bytes:
        """Session `session`'s next transaction."""
        raise NotImplementedError


class RtcTxs(UpdateHighTxs):
    """Signed calls of `sessions` concurrent sessions, each session's counters in order."""

    def __init__(self, domain: SigningDomain | str, sessions: int = 256, symbols: int = 1000) -> None:
        super().__init__(sessions, symbols)
        self.chain_id = domain  # the cluster's signing domain (a bare chain id: no contract)
        self.keys = [SigningKey.generate() for _ in range(sessions)]
        self.ids = [os.urandom(16) for _ in range(sessions)]
        self.counters = [0] * sessions

    def _signed(self, session: int) -> bytes:
        k = self.counters[session]
        self.counters[session] += 1
        call = canonical_json({"function": "update_high", "symbol": self.symbol(session, k), "value": float(k + 1)})
        return sign(self.keys[session], self.chain_id, self.ids[session], k, call).encode()


class KvTxs(TxSource):
    """kvstore's `key=value` transactions, unique, padded to the size of ours."""

    def __init__(self, size: int, sessions: int = 256) -> None:
        super().__init__()
        self.size = size
        self.sessions = sessions
        self._next = 0
        self._run = os.urandom(4).hex()

    def key_of(self, i: int) -> bytes:
        return f"k{self._run}-{i:09d}".encode()

    def _build(self, count: int) -> list[tuple[bytes, int]]:
        out = []
        for _ in range(count):
            i = self._next
            self._next += 1
            head = self.key_of(i) + b"=v"
            out.append((head + b"x" * max(0, self.size - len(head)), i % self.sessions))
        return out


@dataclass
class PhaseResult:
    """What one phase measured; latencies in milliseconds from submit to the commit event."""

    sent: int = 0
    committed: int = 0
    rejected: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    throughput_tps: float = 0.0
    offered_tps: float = 0.0
    heights: tuple[int, int] = (0, 0)
    blocks: int = 0
    unsent: list[tuple[bytes, int]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "offered_tps": round(self.offered_tps, 1), "throughput_tps": round(self.throughput_tps, 1),
            "sent": self.sent, "committed": self.committed, "rejected": self.rejected,
            "rejections": dict(sorted(self.rejections.items())),
            "latency_p50_ms": round(percentile(lat, 0.50), 1) if lat else None,
            "latency_p99_ms": round(percentile(lat, 0.99), 1) if lat else None,
            "heights": list(self.heights), "blocks": self.blocks,
            "txs_per_block": round(self.committed / self.blocks, 1) if self.blocks else 0.0,
        }


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LoadGenerator:
    """Open with `async with LoadGenerator(rpc_urls)`, then run phases one after another."""

    def __init__(self, rpc_urls: list[str], connections_per_node: int = 0) -> None:
        per_node = connections_per_node or max(8, 64 // len(rpc_urls))
        self.ws_urls = [url.replace("http", "ws", 1) + "/websocket" for url in rpc_urls for _ in range(per_node)]
        self._workers: list[Any] = []
        self._queues: list[asyncio.Queue[int]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._events: Any = None
        # the phase in progress: each tx in base64 (as sent, and as blocks list it), its index,
        # and per index the submit and commit times
        self._encoded: list[str] = []
        self._index: dict[str, int] = {}
        self._submit: list[float] = []
        self._commit: list[float] = []
        self._window: asyncio.Semaphore | None = None
        self._result = PhaseResult()
        self._blocks: list[tuple[float, int, int]] = []  # (received, height, our txs in it)
        self._settled = 0

    async def __aenter__(self) -> LoadGenerator:
        for url in self.ws_urls:
            self._workers.append(await websockets.connect(url, max_size=None, compression=None))
        self._events = await websockets.connect(self.ws_urls[0], max_size=None, compression=None)
        await self._events.send(orjson.dumps({"jsonrpc": "2.0", "id": "blocks", "method": "subscribe",
                                              "params": {"query": "tm.event='NewBlock'"}}))
        reply = orjson.loads(await self._events.recv())
        if "error" in reply:
            raise RuntimeError(f"cannot subscribe to blocks: {reply['error']}")
        self._queues = [asyncio.Queue() for _ in self._workers]
        self._tasks = [asyncio.create_task(self._send_loop(ws, q)) for ws, q in zip(self._workers, self._queues)]
        self._tasks.append(asyncio.create_task(self._block_loop()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ws in [*self._workers, self._events]:
            await ws.close()

    # -- the two kinds of phase ------------------------------------------------------

    async def fixed_rate(self, txs: list[tuple[bytes, int]], rate: float, settle_s: float = 5.0) -> PhaseResult:
        """Send `txs` at `rate` per second (as many as fit: the phase lasts len(txs)/rate s)."""
        self._begin(txs)
        start = time.perf_counter()
        sent = 0
        while sent < len(txs):
            due = min(len(txs), int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                self._enqueue(sent, txs[sent])
                sent += 1
            await asyncio.sleep(TICK_S)
        duration = len(txs) / rate
        await self._settle(settle_s)
        result = self._finish(start, start + duration)
        result.offered_tps = rate
        return result

    async def saturate(self, txs: list[tuple[bytes, int]], window: int, duration_s: float,
                       warmup_s: float = 3.0) -> PhaseResult:
        """Keep `window` transactions in flight (sent, not committed) for `duration_s`; the
        committed rate after the warm-up is the sustained throughput."""
        self._begin(txs)
        self._window = asyncio.Semaphore(window)
        start = time.perf_counter()
        end = start + warmup_s + duration_s
        i = 0
        while i < len(txs) and time.perf_counter() < end:
            await self._window.acquire()
            self._enqueue(i, txs[i])
            i += 1
        if i == len(txs):
            raise RuntimeError(f"saturation ran out of its {len(txs)} transactions; build more")
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        self._window = None
        result = self._finish(start + warmup_s, end, count_window=True)
        result.unsent = txs[i:]
        await self._settle(5.0)
        return result

    # -- internals -------------------------------------------------------------------

    def _begin(self, txs: list[tuple[bytes, int]]) -> None:
        self._encoded = [base64.b64encode(tx).decode() for tx, _ in txs]
        self._index = {encoded: i for i, encoded in enumerate(self._encoded)}
        self._submit = [0.0] * len(txs)
        self._commit = [0.0] * len(txs)
        self._result = PhaseResult(sent=0)
        self._blocks = []
        self._settled = 0  # committed or rejected

    def _enqueue(self, i: int, item: tuple[bytes, int]) -> None:
        self._queues[item[1] % len(self._queues)].put_nowait(i)

    async def _send_loop(self, ws: Any, queue: asyncio.Queue[int]) -> None:
        """One connection's requests, one at a time (CometBFT answers them in order); cancelled at exit."""
        while True:
            i = await queue.get()
            request = '{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{"tx":"' + self._encoded[i] + '"}}'
            self._submit[i] = time.perf_counter()
            await ws.send(request)
            reply = orjson.loads(await ws.recv())
            result = self._result
            result.sent += 1
            error = reply.get("error")
            code = reply["result"]["code"] if error is None else None
            if error is not None or code:
                reason = (error.get("data") or error.get("message", "error"))[:60] if error else f"code {code}"
                result.rejected += 1
                result.rejections[reason] = result.rejections.get(reason, 0) + 1
                self._submit[i] = -1.0
                self._settled += 1
                if self._window is not None:
                    self._window.release()

    async def _block_loop(self) -> None:
        async for message in self._events:
            now = time.perf_counter()
            event = orjson.loads(message)
            value = event.get("result", {}).get("data", {}).get("value")
            if not value:
                continue
            block = value["block"]
            ours = 0
            for tx in block["data"]["txs"] or ():
                i = self._index.get(tx)
                if i is not None and not self._commit[i]:
                    self._commit[i] = now
                    self._settled += 1
                    ours += 1
                    if self._window is not None:
                        self._window.release()
            self._blocks.append((now, int(block["header"]["height"]), ours))

    async def _settle(self, timeout: float) -> None:
        """Wait until every accepted transaction of the phase is committed (or `timeout`)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(q.empty() for q in self._queues) and self._settled >= self._result.sent:
                return
            await asyncio.sleep(0.05)

    def _finish(self, start: float, end: float, count_window: bool = False) -> PhaseResult:
        result = self._result
        if count_window:
            in_window = [b for b in self._blocks if start <= b[0] <= end]
            result.committed = sum(b[2] for b in in_window)
            result.throughput_tps = result.committed / (end - start)
            blocks = in_window
        else:
            result.committed = sum(1 for c in self._commit if c)
            span = max((b[0] for b in self._blocks if b[2]), default=end) - start
            result.throughput_tps = result.committed / span if span > 0 else 0.0
            blocks = [b for b in self._blocks if b[2]]
        result.latencies_ms = [(c - s) * 1000 for s, c in zip(self._submit, self._commit) if c and s > 0]
        if blocks:
            result.heights = (blocks[0][1], blocks[-1][1])
        result.blocks = len(blocks)
        return result
