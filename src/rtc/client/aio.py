"""The async client: signed session calls, results by counter, queries and verified receipts.

An `AsyncSession` sends calls without waiting for blocks (counter k runs after k-1 on
every node), and any result can be awaited or fetched later by counter.

A client may know several nodes of one cluster (`AsyncClient([url, url, ...])`): it uses
one at a time and fails over when it refuses connections, hangs or is catching up
(`nodes.NodePool`). Every call it sends is kept until it is seen in a block; one that is
not within `resend_after_blocks` blocks (or `resend_after_s` seconds), or that was handed
to a node that then failed, is sent again, as the same signed bytes, to another node (the
cluster refuses the copy that comes second, so resending is always safe). The resend time
is derived from the cluster's gap deadline, read from its genesis, so that a call a failed
node swallowed lands long before the session would fail for the gap it leaves.

Waiting is by one websocket subscription per client to every block with its results
(`events.EventStream`), dispatched by `rtc_result.key` and by transaction hash, and moved
to another node when its node fails; the blocks missed meanwhile are read back from the
new node. A call costs one RPC (its `broadcast_tx_sync`): its result comes in its block's
event, and state is read only for a result that event did not carry (a call released by
its predecessor, or one whose block could not be read back), plus a slow re-read as a
safety net. Calls go over a node's websocket lanes (`nodes.Lane`: a session's calls on
one lane, so in counter order), reads over HTTP, a few at a time (`READS_AT_ONCE`), so that
a burst of them queues here rather than in the HTTP pool, whose cost grows with its queue.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from nacl.signing import SigningKey

from rtc.cometbft import AsyncRPC, GenesisDoc, RPCError, RPCUnavailable
from rtc.cometbft.lightclient import BlockIDFlag, VerificationError, parse_signed_header, parse_validators
from rtc.protocol import (
    Code, Envelope, EnvelopeError, Kind, RecordError, ResultRecord, SessionRecord, SigningDomain, canonical_json, decode, queries,
    sign, tx_digest,
)

from .events import EventStream, TxEvent
from .membership import RegistryFacts
from .nodes import Node, NodePool
from .results import CallRejected, CallResult, QueryResult
from .trust import TrustPolicy
from .validation import ATTESTATION_LAG, ValidationCheck, attestations_in
from .verify import (
    Check, HistoryCheck, HistoryFinding, HistoryUnavailable, Receipt, ResultEvidence, VerificationFailed, verify,
)

log = logging.getLogger("rtc.client")
T = TypeVar("T")

MAX_SIGNERS_READ = 100  # the Registry is asked about at most this many keys (a cluster has at most 16 members)
FALLBACK_GAP_BLOCKS = 20  # a genesis that names no gap deadline: assume the shortest one clusters have used
MAX_RESENDS = 8  # a call not in a block after this many sends is left to its waiter's timeout
REREAD_S = 10.0  # a waiter whose call left the block it was in reads state this often, should an event be lost
TICK_S = 0.25  # the resender looks at what is due at least this often (and at every block)
READS_AT_ONCE = 4  # waiters' reads of results from state in flight at once, per client
ATTESTATION_WAIT_SECONDS = 10.0  # how long a receipt waits for the block that carries the state's attestations
VALIDATION_POLL_SECONDS = 1.0  # how often `verified(validated=True)` asks the contract again


def resend_blocks_for(gap_timeout_blocks: int) -> int:
    """How many blocks a call may take to appear before it is sent again: an eighth of the gap
    deadline (10 of the default 80), so a call that a failed node swallowed is resent, and lands,
    several times over before the session's gap deadline could fail it."""
    return max(2, gap_timeout_blocks // 8)


def resend_seconds_for(resend_blocks: int) -> float:
    """The same bound in seconds, for when no blocks are seen (no block for this long and for
    the event stream's stall time: its node is failing, or the cluster stalls): a quarter
    second per block, at least one second. While blocks come, only blocks count, so a call
    that is merely slow (a busy cluster, slow blocks) is not sent again."""
    return max(1.0, resend_blocks * 0.25)


@dataclass(frozen=True)
class ClusterFacts:
    """What a client reads from a node's genesis: where its signatures hold, and the session rules."""

    domain: SigningDomain
    gap_timeout_blocks: int
    max_buffered: int

    @classmethod
    def from_genesis(cls, genesis: dict[str, Any]) -> "ClusterFacts":
        """From the `/genesis` answer: `chain_id` and `app_state.settings` (ethereum, sessions)."""
        app_state = genesis.get("app_state") or {}
        domain = SigningDomain.from_genesis(str(genesis["chain_id"]), app_state)
        sessions = ((app_state.get("settings") or {}).get("sessions")) or {}
        return cls(domain, int(sessions.get("gap_timeout_blocks", FALLBACK_GAP_BLOCKS)),
                   int(sessions.get("max_buffered", 64)))


@dataclass(eq=False)
class _Pending:
    """A call sent and not yet seen in a block."""

    tx: bytes
    digest: str
    key: str  # "<session hex>/<counter>"
    order: tuple[bytes, int]
    node: Node | None = None  # where it was last sent
    sent_height: int | None = None
    sent_at: float = 0.0  # 0: being sent for the first time
    resends: int = 0
    due: bool = False  # its node failed: send it again at once
    held: int = 0  # refused as too early (its predecessor is late): offered again at every block, this often so far
    cached: bool = False  # the node already had these bytes: it may have been in a block before this client listened


class _Watch:
    """Someone waiting on one result key; woken by its events.

    An event that carries the transaction's own record settles it with no read; one that only
    names the key (a result written by another transaction or at the end of a block), a
    refusal, or a gap in the events marks it `stale`: its waiter reads the record from state."""

    def __init__(self, key: str, digest: str | None) -> None:
        self.key, self.digest = key, digest
        self.woken = asyncio.Event()
        self.record: ResultRecord | None = None  # the transaction's own record, as its event carried it
        self.refusal: tuple[int, str] | None = None
        self.stale = True  # state may hold more than the events said: read it

    def wake(self, record: ResultRecord | None = None, refusal: tuple[int, str] | None = None) -> None:
        if record is not None:
            self.record = record
        else:
            self.stale = True
        if refusal is not None:
            self.refusal = refusal
        self.woken.set()


class AsyncClient:
    """A client of one cluster, through one or several of its nodes' RPC endpoints.

    `nodes`: one URL (e.g. http://127.0.0.1:26601) or several of the same cluster, in order
    of preference. `trust`: what verification rests on (`TrustPolicy`); needed only to
    verify, and never assumed: a client that wants to trust the genesis the node serves says
    so (`TrustPolicy.first_use()`). `history`: where to check that a result's block is in
    Swarm (`rtc.history.reader.HistoryReader`), or None. `timeout`: for one RPC answer.
    `resend_after_blocks` / `resend_after_s`: when a call not yet in a block is sent again
    (default: derived from the cluster's gap deadline, `resend_blocks_for`).
    """

    def __init__(self, nodes: str | Sequence[str], trust: TrustPolicy | None = None,
                 history: HistoryCheck | None = None, timeout: float = 10.0, *,
                 resend_after_blocks: int | None = None, resend_after_s: float | None = None,
                 max_resends: int = MAX_RESENDS) -> None:
        self.pool = NodePool([nodes] if isinstance(nodes, str) else list(nodes), timeout)
        self.pool.on_down = self._node_down
        self.trust = trust
        self.history = history
        self.timeout = timeout
        self.max_resends = max_resends
        self._resend_after_blocks = resend_after_blocks
        self._resend_after_s = resend_after_s
        self._facts: ClusterFacts | None = None
        self._chain_id: str | None = None
        self._stream = EventStream(self.pool, self._on_tx, self._on_block, self._on_gap,
                                   lambda: bool(self._pending or self._watches), timeout)
        self._pending: dict[str, _Pending] = {}
        self._pending_by_key: dict[str, set[str]] = {}
        self._watches: dict[str, set[_Watch]] = {}
        self._wake_resender = asyncio.Event()
        self._new_block = asyncio.Event()
        self._resender: asyncio.Task[None] | None = None
        self._reads = asyncio.Semaphore(READS_AT_ONCE)
        self.resent = 0  # calls sent again (for tests and load reports)
        self.reads = 0  # results read from state by waiters (for tests and load reports)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(node.url for node in self.pool.nodes)

    @property
    def url(self) -> str:
        """The node in use now."""
        return self.pool.current.url

    @property
    def rpc(self) -> AsyncRPC:
        """The RPC of the node in use now."""
        return self.pool.current.rpc

    @rpc.setter
    def rpc(self, rpc: AsyncRPC) -> None:
        self.pool.current.rpc = rpc

    async def aclose(self) -> None:
        if self._resender is not None:
            self._resender.cancel()
            try:
                await self._resender
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it is being stopped
                pass
            self._resender = None
        await self._stream.aclose()
        await self.pool.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the node ---------------------------------------------------------------------------

    async def _read(self, method: Callable[[AsyncRPC], Awaitable[T]]) -> T:
        """One read from a healthy node, moving to the next when a node cannot be reached."""
        last: RPCUnavailable | None = None
        for _ in range(len(self.pool)):
            node = await self.pool.healthy()
            try:
                return await method(node.rpc)
            except RPCUnavailable as exc:
                self.pool.mark_down(node, str(exc))
                last = exc
        assert last is not None
        raise last

    async def status(self) -> dict[str, Any]:
        return await self._read(lambda rpc: rpc.status())

    async def chain_id(self) -> str:
        """The chain the node says it runs."""
        if self._chain_id is None:
            self._chain_id = str((await self.status())["node_info"]["network"])
        return self._chain_id

    async def cluster_facts(self) -> ClusterFacts:
        """The signing domain and session rules of the cluster, from the genesis a node serves.

        A node that lies about them can only make this client's signatures fail on the real
        cluster (or name another cluster's domain): the trust policy's chain id and contract,
        when given, must agree, and every node the client uses must run the same chain."""
        if self._facts is None:
            genesis = await self._read(lambda rpc: rpc.genesis())
            try:
                facts = ClusterFacts.from_genesis(genesis)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise RPCError(f"{self.url} served a genesis without a usable signing domain ({exc}); "
                               "is it a node of an rtc cluster?", "genesis") from None
            self._check_domain(facts.domain)
            self._facts = facts
        return self._facts

    def _check_domain(self, domain: SigningDomain) -> None:
        wrong = []
        if self.pool.chain_id is not None and self.pool.chain_id != domain.chain_id:
            wrong.append(f"its genesis names chain {domain.chain_id!r} but its status {self.pool.chain_id!r}")
        if self.trust is not None and self.trust.chain_id is not None and self.trust.chain_id != domain.chain_id:
            wrong.append(f"it runs chain {domain.chain_id!r}, the trust policy names {self.trust.chain_id!r}")
        contract = self.trust.contract if self.trust is not None else None
        if contract is not None:
            address = bytes.fromhex(str(contract.registry.address)[2:])
            if domain.registry != address or domain.cluster_id != contract.cluster_id:
                wrong.append(f"it follows {domain.describe()}, the trust policy names cluster {contract.cluster_id} "
                             f"of Registry {contract.registry.address}")
        if wrong:
            raise RPCError(f"{self.url} is not a node of the cluster this client trusts: " + "; ".join(wrong), "genesis")

    async def signing_domain(self) -> SigningDomain:
        """The cluster a call is signed for: chain id, Registry and cluster id (from the genesis)."""
        return (await self.cluster_facts()).domain

    async def resend_after(self) -> tuple[int, float]:
        """When a call not yet seen in a block is sent again: (blocks, seconds)."""
        blocks = self._resend_after_blocks or resend_blocks_for((await self.cluster_facts()).gap_timeout_blocks)
        return blocks, self._resend_after_s or resend_seconds_for(blocks)

    async def entry_points(self) -> dict[str, Any]:
        response = await self._read(lambda rpc: rpc.abci_query(queries.ENTRY_POINTS))
        return orjson.loads(base64.b64decode(response["value"]))

    async def query(self, call: dict[str, Any]) -> QueryResult:
        """Run a read-only entry point against committed state (no consensus, no transaction, no proof)."""
        response = await self._read(lambda rpc: rpc.abci_query(queries.CALL, canonical_json(call)))
        if int(response.get("code", 0)) != 0:
            raise CallRejected(int(response["code"]), response.get("log", ""))
        answer = orjson.loads(base64.b64decode(response["value"]))
        return QueryResult(answer["value"], int(answer["fuel"]), int(response.get("height", 0)))

    # -- calls ------------------------------------------------------------------------------

    def session(self, key: SigningKey | None = None, session_id: bytes | None = None,
                next_counter: int = 0) -> "AsyncSession":
        """A new session, or an existing one continued (same key and id) after a restart."""
        return AsyncSession(self, key or SigningKey.generate(), session_id, next_counter)

    async def call(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        """One call in a fresh session, waiting for its result."""
        return await self.session().call_and_wait(call, timeout)

    async def broadcast(self, tx: bytes) -> None:
        """Hand a transaction to a healthy node's mempool, once (no resend); CheckTx refusals raise CallRejected."""
        try:
            lane = _lane(decode(tx).session_key)
        except EnvelopeError:
            lane = 0  # the node refuses it
        for _ in range(len(self.pool)):
            node = await self.pool.healthy()
            try:
                refusal, _ = await _offer(node, tx, lane)
            except RPCUnavailable as exc:
                self.pool.mark_down(node, str(exc))
                continue
            if refusal is not None:
                raise refusal
            return
        raise RPCUnavailable("no node of the cluster took the transaction: "
                             + "; ".join(f"{n.url} ({n.why_down})" for n in self.pool.nodes), "broadcast_tx_sync")

    async def submit(self, envelope: Envelope) -> None:
        """Send a signed call and keep it until it is seen in a block: sent again (the same bytes)
        to another node if it is not seen in time or its node fails. CheckTx refusals raise CallRejected."""
        await self._submit(envelope)

    async def _submit(self, envelope: Envelope) -> _Pending:
        tx = envelope.raw
        pending = _Pending(tx, envelope.digest, _key(envelope.session_key, envelope.counter),
                           (envelope.session_key, envelope.counter))
        self._track(pending)
        try:
            await self._stream.ready(self.timeout)  # so that its block is seen
            await self.resend_after()  # the genesis is read before anything is in flight
            self._start_resender()
            loop = asyncio.get_running_loop()
            for _ in range(len(self.pool)):
                node = await self.pool.healthy()
                try:
                    refusal, pending.cached = await _offer(node, tx, _lane(envelope.session_key))
                except RPCUnavailable as exc:
                    self.pool.mark_down(node, str(exc))
                    continue
                if refusal is not None and refusal.code != Code.TOO_EARLY:
                    raise refusal
                # Too early: an earlier call of the session is late (a failed node held it) and the
                # buffer is full; kept, and offered again at each block until the buffer drains.
                pending.held = 1 if refusal is not None else 0
                pending.node, pending.sent_height, pending.sent_at = node, self._stream.height, loop.time()
                return pending
            raise RPCUnavailable("no node of the cluster took the call: "
                                 + "; ".join(f"{n.url} ({n.why_down})" for n in self.pool.nodes), "broadcast_tx_sync")
        except BaseException:
            self._untrack(pending)
            raise

    async def result(self, session: bytes, counter: int) -> CallResult | None:
        """The result record of (session, counter) in committed state now, or None (unverified)."""
        response = await self._read(lambda rpc: rpc.abci_query(queries.result_path(session, counter)))
        if int(response.get("code", 0)) != 0:
            raise RPCError(response.get("log", "query failed"), "abci_query")
        value = response.get("value")
        if not value:
            return None
        try:
            return CallResult(session, counter, ResultRecord.decode(base64.b64decode(value)))
        except RecordError as exc:
            raise RPCError(f"the node answered with a malformed result record: {exc}", "abci_query") from None

    async def session_record(self, session: bytes) -> SessionRecord | None:
        """The session's record in committed state now (next counter, status, reason), or None (unverified)."""
        response = await self._read(lambda rpc: rpc.abci_query(queries.session_path(session)))
        value = response.get("value") if int(response.get("code", 0)) == 0 else None
        if not value:
            return None
        try:
            return SessionRecord.decode(base64.b64decode(value))
        except (RecordError, ValueError) as exc:
            raise RPCError(f"the node answered with a malformed session record: {exc}", "abci_query") from None

    async def wait_for_result(self, session: bytes, counter: int, timeout: float = 30.0,
                              tx: bytes | None = None) -> CallResult:
        """Wait until (session, counter) has a final result; `tx`, if given, is sent (and kept, see
        `submit`) once the client listens. A transaction refused inside a block (a session rule, or
        a hostile proposer's pick) writes no result; with `tx` given that refusal is raised."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        key = _key(session, counter)
        digest = tx_digest(tx) if tx is not None else None
        watch = _Watch(key, digest)
        self._watches.setdefault(key, set()).add(watch)
        try:
            await self._stream.ready(timeout)
            if tx is not None:
                try:
                    envelope = decode(tx)
                except EnvelopeError as exc:
                    raise CallRejected(Code.MALFORMED, str(exc)) from None
                watch.stale = False  # its own block's event will carry its record (an event meanwhile may say otherwise)
                pending = await self._submit(envelope)
                if pending.cached:  # the node already had it: it may have been in a block before
                    watch.stale = True
            result = await self._settle(watch, session, counter, deadline, timeout)
        finally:
            watchers = self._watches.get(key)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[key]
        if digest is not None and result.record.tx != digest:
            raise CallRejected(
                Code.DUPLICATE, f"counter {counter} of this session was used by another transaction ({result.record.tx})"
            )
        return CallResult(session, counter, result.record, (loop.time() - started) * 1000)

    async def _settle(self, watch: _Watch, session: bytes, counter: int, deadline: float, timeout: float) -> CallResult:
        """Wait for the watch's events; read state only when they did not carry the record."""
        loop = asyncio.get_running_loop()
        current: CallResult | None = None
        read_at = loop.time()
        while True:
            watch.woken.clear()
            if watch.record is not None and watch.record.final:
                return CallResult(session, counter, watch.record)
            due = loop.time() - read_at >= REREAD_S  # the safety net
            if due and watch.key in self._pending_by_key:
                read_at, due = loop.time(), False  # still waiting for its block: no result to read yet
            if watch.stale or due:
                watch.stale = False
                try:
                    async with asyncio.timeout(max(deadline - loop.time(), 0.001)), self._reads:
                        self.reads += 1
                        current = await self.result(session, counter)
                except TimeoutError:
                    current, watch.stale = None, True  # the deadline passed while reads queued: said below
                except RPCUnavailable:
                    current = None  # no node answers now; the stream is finding one
                    watch.stale = True
                read_at = loop.time()
                if current is not None and current.record.final:
                    return current
                if watch.refusal is not None and not (current is not None and current.record.tx == watch.digest):
                    raise CallRejected(*watch.refusal)
                if watch.record is not None and watch.record.final:  # came while reading
                    return CallResult(session, counter, watch.record)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RPCError(
                    f"no final result for counter {counter} within {timeout:.0f}s"
                    + (f" (it is {current.status}: {current.error})" if current else "")
                    + f"; fetch it later with `rtc result --session {session.hex()} --counter {counter}`"
                )
            if watch.woken.is_set():
                continue
            wait = 0.5 if watch.stale else REREAD_S - (loop.time() - read_at)  # stale: the read failed, retry soon
            await _set_within(watch.woken, min(remaining, wait))

    async def wait_for_height(self, height: int, timeout: float = 30.0, rpc: AsyncRPC | None = None) -> None:
        """Return once the node (`rpc`, else the one in use) has block `height`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._stream.start()
        while await (rpc or self.rpc).latest_height() < height:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RPCError(f"block {height} did not appear within {timeout:.0f}s")
            self._new_block.clear()
            await _set_within(self._new_block, min(remaining, 0.5))

    # -- keeping calls until they are in a block ------------------------------------------------

    def _track(self, pending: _Pending) -> None:
        self._pending[pending.digest] = pending
        self._pending_by_key.setdefault(pending.key, set()).add(pending.digest)

    def _untrack(self, pending: _Pending) -> None:
        self._pending.pop(pending.digest, None)
        digests = self._pending_by_key.get(pending.key)
        if digests is not None:
            digests.discard(pending.digest)
            if not digests:
                del self._pending_by_key[pending.key]

    def _settled_key(self, key: str, record: ResultRecord | None = None) -> None:
        """A record for `key` is in a block: whatever was sent for that counter is no longer resent."""
        for digest in list(self._pending_by_key.get(key, ())):
            self._untrack(self._pending[digest])
        for watch in self._watches.get(key, ()):
            watch.wake(record)

    def _on_tx(self, event: TxEvent) -> None:
        pending = self._pending.get(event.digest)
        if pending is not None and event.code == Code.BLOCK_FULL:
            # The block's fuel budget ran out before its turn: it used no counter, and CometBFT
            # forgets refused bytes, so the same bytes go again at once, for the next block.
            pending.due = True
            self._wake_resender.set()
            return
        if pending is not None:
            self._untrack(pending)
            if event.code != 0 and not event.data and not event.keys:  # refused in the block: no record
                refusal = (event.code, f"refused in block {event.height}: {event.log}")
                for watch in self._watches.get(pending.key, ()):
                    if watch.digest == event.digest:
                        watch.wake(refusal=refusal)
        own = None
        if pending is not None and event.data:
            try:
                own = ResultRecord.decode(event.data)
            except RecordError:
                own = None
        for key in event.keys:
            self._settled_key(key, own if pending is not None and key == pending.key else None)

    def _on_block(self, height: int, keys: list[str]) -> None:
        for key in keys:
            self._settled_key(key)
        self._new_block.set()
        self._wake_resender.set()

    def _on_gap(self) -> None:
        """The stream missed blocks it could not read back: every waiter reads state again (a few
        at a time, `READS_AT_ONCE`)."""
        for watches in self._watches.values():
            for watch in watches:
                watch.wake()
        self._wake_resender.set()

    def _node_down(self, node: Node) -> None:
        """What was handed to a failed node may never reach a block: send it again now."""
        for pending in self._pending.values():
            if pending.node is node:
                pending.due = True
        self._wake_resender.set()

    def _start_resender(self) -> None:
        if self._resender is None or self._resender.done():
            self._resender = asyncio.get_running_loop().create_task(self._resend_loop(), name="rtc-resend")

    async def _resend_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_height: int | None = None
        while True:
            await _set_within(self._wake_resender, TICK_S)
            self._wake_resender.clear()
            if not self._pending:
                continue
            blocks, seconds = await self.resend_after()
            height, now = self._stream.height, loop.time()
            new_block = height is not None and height != last_height
            last_height = height
            # No block for that long (and longer than a slow cluster's block): the stream's node is
            # failing or the cluster stalls, so count seconds instead of blocks.
            no_blocks = now - self._stream.block_at >= max(seconds, self._stream.stall_s)
            due = [p for p in self._pending.values() if p.sent_at and (
                p.due or (p.held and new_block)
                or (height is not None and p.sent_height is not None and height - p.sent_height >= blocks)
                or ((no_blocks or p.sent_height is None) and now - p.sent_at >= seconds))]
            if not due:
                continue
            by_session: dict[bytes, list[_Pending]] = {}
            for pending in sorted(due, key=lambda p: p.order):
                by_session.setdefault(pending.order[0], []).append(pending)
            # Sessions side by side, each session's calls in counter order (the lanes' depth bounds the RPCs).
            await asyncio.gather(*(self._resend_in_order(calls) for calls in by_session.values()))

    async def _resend_in_order(self, calls: list[_Pending]) -> None:
        for pending in calls:
            if pending.digest in self._pending:
                await self._resend(pending)

    async def _resend(self, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        gap = (await self.cluster_facts()).gap_timeout_blocks
        if pending.resends >= self.max_resends or pending.held > gap:
            log.warning("call %s was sent %d times and is still not in a block; giving up on it",
                        pending.key, pending.resends + 1)
            self._untrack(pending)
            return
        try:
            node = await self.pool.healthy(avoid=None if pending.held else pending.node)
        except RPCUnavailable:
            return  # no node now: tried again at the next tick
        try:
            refusal, _ = await _offer(node, pending.tx, _lane(pending.order[0]))
        except RPCUnavailable as exc:
            self.pool.mark_down(node, str(exc))
            return
        except RPCError as exc:  # e.g. a full mempool: try again later, elsewhere
            pending.node, pending.sent_at = node, loop.time()
            log.info("resending %s to %s failed: %s", pending.key, node.url, exc)
            return
        if refusal is not None and refusal.code == Code.TOO_EARLY:  # still waiting for its predecessor
            pending.held += 1
            pending.node, pending.sent_at, pending.due = node, loop.time(), False
            return
        pending.resends += 1
        self.resent += 1
        pending.held = 0
        if refusal is None:
            log.info("call %s resent to %s (not in a block yet)", pending.key, node.url)
            pending.node, pending.sent_height, pending.sent_at, pending.due = node, self._stream.height, loop.time(), False
            return
        # The counter is taken (by this very call, most likely, in a block this client missed), or the
        # session ended: stop resending, and let a waiter read the state and judge.
        self._untrack(pending)
        for watch in self._watches.get(pending.key, ()):
            if watch.digest == pending.digest:
                watch.wake(refusal=(refusal.code, refusal.log))

    # -- verification -------------------------------------------------------------------------

    def _policy(self) -> TrustPolicy:
        if self.trust is None:
            raise ValueError("nothing to verify against: give the client a TrustPolicy (a genesis file, a pinned "
                             "validator set hash, the Registry, or TrustPolicy.first_use() to trust this node's genesis)")
        return self.trust

    async def evidence(self, session: bytes, counter: int, timeout: float = 30.0) -> ResultEvidence:
        """What the node (and, as the policy and `history` ask, Ethereum and Swarm) says about the
        result of (session, counter): fetched, not yet believed. Whatever a node answers goes
        into the evidence for `verify` to judge; RPCError only when the node cannot be reached
        or does not reach the height it claims within `timeout`."""
        policy = self._policy()
        for attempt in range(len(self.pool)):
            node = await self.pool.healthy()
            try:  # every part from one node, so that they belong together
                return await self._evidence_from(node.rpc, policy, session, counter, timeout)
            except RPCUnavailable as exc:
                self.pool.mark_down(node, str(exc))
                if attempt == len(self.pool) - 1:
                    raise
        raise AssertionError("unreachable")

    async def _evidence_from(self, rpc: AsyncRPC, policy: TrustPolicy, session: bytes, counter: int,
                             timeout: float) -> ResultEvidence:
        answer = await rpc.abci_query(queries.result_path(session, counter), prove=True)
        state_height = _answered_height(answer)
        if state_height is None:
            return ResultEvidence(session, counter, answer if isinstance(answer, dict) else {}, {}, {},
                                  await self.chain_id())
        await self.wait_for_height(state_height + 1, timeout, rpc)
        commit = await rpc.commit(state_height + 1)
        signed_header = (commit.get("signed_header") if isinstance(commit, dict) else None) or {}
        validators = await rpc.validators(state_height + 1)
        genesis = None
        if policy.trust_on_first_use:
            try:
                genesis = GenesisDoc.from_json(await rpc.genesis())
            except ValueError:
                pass  # verify() refuses the missing genesis
        registry, registry_error = await self._registry(policy, signed_header, validators)
        history, history_error = await self._history(answer, signed_header, state_height)
        evidence = ResultEvidence(session, counter, answer, signed_header, validators, await self.chain_id(), genesis,
                                  registry, registry_error, history, history_error)
        if policy.validation is not None:
            evidence = await self._validation(rpc, policy.validation, evidence, state_height, timeout)
        return evidence

    async def _validation(self, rpc: AsyncRPC, check: ValidationCheck, evidence: ResultEvidence, state_height: int,
                          timeout: float) -> ResultEvidence:
        """The members' attestations of the state (block H+3 carries them) and the validation status."""
        attestations = None
        try:
            await self.wait_for_height(state_height + ATTESTATION_LAG, min(timeout, ATTESTATION_WAIT_SECONDS), rpc)
            attestations = attestations_in(await rpc.block(state_height + ATTESTATION_LAG))
        except RPCError:
            pass  # not yet there: the receipt says so
        try:
            facts = await asyncio.to_thread(check.read_facts)
            status = await asyncio.to_thread(check.read_status, rpc.url)
        except Exception as exc:  # noqa: BLE001 - Ethereum or the node unreachable: reported, the other checks stand
            return replace(evidence, attestations=attestations, validation_error=f"cannot read the Validation "
                           f"contract: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}")
        return replace(evidence, attestations=attestations, attestation_facts=facts, validation=status)

    async def _registry(self, policy: TrustPolicy, signed_header: dict[str, Any],
                        validators: dict[str, Any]) -> tuple[RegistryFacts | None, str | None]:
        """The contract's facts about the keys that signed, read before anything is verified, so
        only as many as a real cluster can have."""
        if policy.contract is None:
            return None, None
        try:
            commit = parse_signed_header(signed_header).commit
            by_address = {v.address: v.pub_key for v in parse_validators(validators)}
        except VerificationError:
            return None, None  # verify() refuses the header or the set itself
        keys = list(dict.fromkeys(by_address[s.validator_address] for s in commit.signatures
                                  if s.block_id_flag == BlockIDFlag.COMMIT and s.validator_address in by_address))
        if len(keys) > MAX_SIGNERS_READ:
            return None, f"the node served {len(keys)} signers; a cluster has at most {MAX_SIGNERS_READ}"
        try:
            return await asyncio.to_thread(policy.contract.read, keys), None
        except VerificationError as exc:
            return None, str(exc)

    async def _history(self, answer: dict[str, Any], signed_header: dict[str, Any],
                       state_height: int) -> tuple[HistoryFinding | None, str | None]:
        if self.history is None:
            return None, None
        try:  # unverified here: only which records to fetch; verify() checks what they are linked to
            written = ResultRecord.decode(base64.b64decode(answer.get("value") or "")).height
            anchor = parse_signed_header(signed_header).header.last_block_id.hash
        except (RecordError, VerificationError, ValueError):
            return None, None
        try:
            return await asyncio.to_thread(self.history.locate, written, state_height, anchor), None
        except ValueError as exc:  # a record that does not check out
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 - Swarm unreachable: say so, the other checks stand
            return HistoryUnavailable(written, anchor, f"could not read the history: {exc}"), None

    async def receipt(self, session: bytes, counter: int, timeout: float = 30.0) -> Receipt:
        """The result of (session, counter) with every check the client made itself, once the
        call has a final result (waited for within `timeout`); check `Receipt.ok` (or use `verified`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        evidence = await self.evidence(session, counter, timeout)
        if not _holds_a_final_record(evidence):
            try:
                await self.wait_for_result(session, counter, max(0.1, deadline - loop.time()))
            except RPCError:  # none within the timeout: the receipt says what there is
                pass
            evidence = await self.evidence(session, counter, max(0.1, deadline - loop.time()))
        return verify(evidence, self._policy())

    async def verified(self, session: bytes, counter: int, timeout: float = 30.0, validated: bool = False) -> Receipt:
        """The receipt of a result that passed every required check; VerificationFailed otherwise.

        `validated`: also wait until batch validators have re-executed the result's block (the
        trust policy must name the Validation contract); VerificationFailed naming the lag if
        that does not happen within `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        receipt = (await self.receipt(session, counter, timeout)).raise_for_failure()
        if not validated:
            return receipt
        if self._policy().validation is None:
            raise ValueError("waiting for validation needs the cluster's Validation contract in the trust policy")
        while not receipt.validated:
            remaining = deadline - loop.time()
            if remaining <= VALIDATION_POLL_SECONDS:  # no time for another look: say how far validation got
                check = receipt.check("validation") or Check("validation", False, "not validated", required=False)
                raise VerificationFailed(receipt, replace(check, detail=f"not validated within {timeout:.0f} s: "
                                                                        f"{check.detail}", required=True))
            await asyncio.sleep(VALIDATION_POLL_SECONDS)
            try:
                receipt = (await self.receipt(session, counter, remaining)).raise_for_failure()
            except RPCError:  # the node is slow to show the next block: the last receipt stands
                continue
        return receipt


class AsyncSession:
    """A client's ordered stream of calls: counter k executes only after k-1, cluster-wide."""

    def __init__(self, client: AsyncClient, key: SigningKey, session_id: bytes | None = None,
                 next_counter: int = 0) -> None:
        self.client = client
        self.key = key
        self.id = session_id if session_id is not None else os.urandom(16)
        self.next_counter = next_counter

    @property
    def session_key(self) -> bytes:
        """client public key || session id: the name of this session in the cluster's state."""
        return bytes(self.key.verify_key) + self.id

    async def envelope(self, call: dict[str, Any] | None, counter: int | None = None) -> Envelope:
        """Sign the next call (or a close, for `call=None`) and take its counter."""
        domain = await self.client.signing_domain()  # first: a counter is taken only for a call that is signed
        if counter is None:
            counter = self.next_counter
            self.next_counter += 1
        if call is None:
            return sign(self.key, domain, self.id, counter, b"", Kind.CLOSE)
        return sign(self.key, domain, self.id, counter, canonical_json(call))

    async def call(self, call: dict[str, Any], via: AsyncClient | None = None) -> int:
        """Send a call without waiting for any block; returns its counter. The client keeps it
        until it is in a block, sending it again if needed (`AsyncClient.submit`); through `via`,
        another client, it is sent once."""
        envelope = await self.envelope(call)
        try:
            if via is None:
                await self.client.submit(envelope)
            else:
                await via.broadcast(envelope.encode())
        except CallRejected as exc:
            self.give_back(envelope.counter, exc)
            raise
        return envelope.counter

    async def call_and_wait(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        return await self._send_and_wait(await self.envelope(call), timeout)

    async def result(self, counter: int, timeout: float = 30.0) -> CallResult:
        """Await the final result of call `counter` (it may already be there); unverified."""
        return await self.client.wait_for_result(self.session_key, counter, timeout)

    async def receipt(self, counter: int, timeout: float = 30.0) -> Receipt:
        return await self.client.receipt(self.session_key, counter, timeout)

    async def verified(self, counter: int, timeout: float = 30.0, validated: bool = False) -> Receipt:
        return await self.client.verified(self.session_key, counter, timeout, validated)

    async def close(self, timeout: float = 30.0) -> CallResult:
        return await self._send_and_wait(await self.envelope(None), timeout)

    async def _send_and_wait(self, envelope: Envelope, timeout: float) -> CallResult:
        try:
            return await self.client.wait_for_result(self.session_key, envelope.counter, timeout, tx=envelope.encode())
        except CallRejected as exc:
            self.give_back(envelope.counter, exc)
            raise

    def give_back(self, counter: int, refusal: CallRejected) -> None:
        """A refused call never reaches the session, so its counter is still free (unless it was used)."""
        if refusal.code != Code.DUPLICATE and counter == self.next_counter - 1:
            self.next_counter = counter


def _answered_height(answer: Any) -> int | None:
    """The height of a query answer that carries a value, or None (a refusal, or nonsense)."""
    try:
        height = int(answer.get("height") or 0)
        return height if int(answer.get("code") or 0) == 0 and height > 0 else None
    except (AttributeError, TypeError, ValueError):
        return None


def _holds_a_final_record(evidence: ResultEvidence) -> bool:
    """Whether the node's answer (not yet believed) carries a final record: else wait for one."""
    try:
        return ResultRecord.decode(base64.b64decode(evidence.answer.get("value") or "")).final
    except (RecordError, ValueError):
        return False


async def _set_within(event: asyncio.Event, timeout: float) -> None:
    """Wait until `event` is set or `timeout` passes. Not `asyncio.wait_for`: on Python 3.11 it
    swallows a cancellation that comes as the event is set, and a cancelled task (the resender,
    at `aclose`) would then run on forever."""
    if event.is_set() or timeout <= 0:
        return
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass


def _key(session: bytes, counter: int) -> str:
    """How events and subscriptions name a result: `rtc_result.key`."""
    return f"{session.hex()}/{counter}"


def _lane(session: bytes) -> int:
    """Which of a node's lanes a session's calls take: always the same, so they arrive in order."""
    return int.from_bytes(session[-4:], "big")


async def _offer(node: Node, tx: bytes, lane: int) -> tuple[CallRejected | None, bool]:
    """Hand `tx` to one node's mempool over `lane`: (None, False) when it took it, (None, True)
    when it already had it, else CheckTx's refusal. RPCUnavailable when the node cannot be
    reached; other RPCErrors as they come."""
    try:
        checked = await node.broadcast_tx_sync(tx, lane)
    except RPCUnavailable:
        raise
    except RPCError as exc:
        if "already exists in cache" in str(exc):
            return None, True  # the node has these very bytes (from us or by gossip)
        raise
    code = int(checked.get("code", 0))
    return (CallRejected(code, checked.get("log", "")) if code else None), False
