"""The async client: signed session calls, results by counter, queries and verified receipts.

An `AsyncSession` sends calls without waiting for blocks (counter k runs after k-1 on
every node), and any result can be awaited or fetched later by counter. Waiting is by
subscription on CometBFT's websocket, opened before anything is sent so that no event can
be missed; there is no polling loop.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import orjson
import websockets
from nacl.signing import SigningKey

from rtc.cometbft import AsyncRPC, GenesisDoc, RPCError, RPCUnavailable
from rtc.cometbft.lightclient import BlockIDFlag, VerificationError, parse_signed_header, parse_validators
from rtc.protocol import (
    Code, Envelope, EnvelopeError, Kind, RecordError, ResultRecord, SigningDomain, canonical_json, queries, sign, tx_digest,
)

from .membership import RegistryFacts
from .results import CallRejected, CallResult, QueryResult
from .trust import TrustPolicy
from .verify import HistoryCheck, HistoryFinding, HistoryUnavailable, Receipt, ResultEvidence, verify

MAX_EVENT_BYTES = 16 * 1024 * 1024
MAX_SIGNERS_READ = 100  # the Registry is asked about at most this many keys (a cluster has at most 16 members)


class AsyncClient:
    """A client of one node's RPC endpoint, e.g. http://127.0.0.1:26601.

    `trust`: what verification rests on (`TrustPolicy`); needed only to verify, and never
    assumed: a client that wants to trust the genesis the node serves says so
    (`TrustPolicy.first_use()`). `history`: where to check that a result's block is in Swarm
    (`rtc.history.reader.HistoryReader`), or None.
    """

    def __init__(self, url: str, trust: TrustPolicy | None = None, history: HistoryCheck | None = None,
                 timeout: float = 10.0) -> None:
        self.rpc = AsyncRPC(url, timeout)
        self.trust = trust
        self.history = history
        self._chain_id: str | None = None
        self._domain: SigningDomain | None = None

    @property
    def url(self) -> str:
        return self.rpc.url

    async def aclose(self) -> None:
        await self.rpc.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the node ---------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return await self.rpc.status()

    async def chain_id(self) -> str:
        """The chain the node says it runs; transactions are signed for it."""
        if self._chain_id is None:
            self._chain_id = (await self.status())["node_info"]["network"]
        return self._chain_id

    async def signing_domain(self) -> SigningDomain:
        """The cluster a call is signed for: chain id, Registry and cluster id, from the node's genesis.

        A node that lies about it can only make this client's signatures fail on the cluster;
        a trust policy's chain id and contract, when given, must agree with it."""
        if self._domain is None:
            genesis = await self.rpc.genesis()
            try:
                domain = SigningDomain.from_genesis(str(genesis["chain_id"]), genesis.get("app_state"))
            except (KeyError, TypeError, EnvelopeError) as exc:
                raise RPCError(f"{self.url} served a genesis without a signing domain ({exc})", "genesis") from None
            self._domain = domain
        return self._domain

    async def entry_points(self) -> dict[str, Any]:
        response = await self.rpc.abci_query(queries.ENTRY_POINTS)
        return orjson.loads(base64.b64decode(response["value"]))

    async def query(self, call: dict[str, Any]) -> QueryResult:
        """Run a read-only entry point against committed state (no consensus, no transaction, no proof)."""
        response = await self.rpc.abci_query(queries.CALL, canonical_json(call))
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
        """Hand a transaction to the node's mempool; CheckTx refusals raise CallRejected."""
        checked = await self.rpc.broadcast_tx_sync(tx)
        if int(checked.get("code", 0)) != 0:
            raise CallRejected(int(checked["code"]), checked.get("log", ""))

    async def result(self, session: bytes, counter: int) -> CallResult | None:
        """The result record of (session, counter) in committed state now, or None (unverified)."""
        response = await self.rpc.abci_query(queries.result_path(session, counter))
        if int(response.get("code", 0)) != 0:
            raise RPCError(response.get("log", "query failed"), "abci_query")
        value = response.get("value")
        if not value:
            return None
        try:
            return CallResult(session, counter, ResultRecord.decode(base64.b64decode(value)))
        except RecordError as exc:
            raise RPCError(f"the node answered with a malformed result record: {exc}", "abci_query") from None

    async def wait_for_result(self, session: bytes, counter: int, timeout: float = 30.0,
                              tx: bytes | None = None) -> CallResult:
        """Wait until (session, counter) has a final result; `tx`, if given, is sent once subscribed.

        A transaction refused inside a block (a session rule, or a hostile proposer's pick)
        writes no result; with `tx` given that refusal is seen on its own event and raised.
        """
        loop = asyncio.get_running_loop()
        key = f"{session.hex()}/{counter}"
        digest = tx_digest(tx) if tx is not None else None
        queries_ = [("tx", f"tm.event='Tx' AND rtc_result.key='{key}'"),
                    ("block", f"tm.event='NewBlockEvents' AND rtc_result.key='{key}'")]
        if digest is not None:
            queries_.append(("own", f"tm.event='Tx' AND tx.hash='{digest}'"))
        async with await self._subscribe(queries_, timeout) as ws:
            started = loop.time()
            if tx is not None:
                await self.broadcast(tx)
            result = await self.result(session, counter)
            deadline = started + timeout
            while result is None or not result.record.final:
                try:
                    refusal = await asyncio.wait_for(_next_result_event(ws, key), max(0.0, deadline - loop.time()))
                except (asyncio.TimeoutError, websockets.ConnectionClosed):
                    raise RPCError(
                        f"no final result for counter {counter} within {timeout:.0f}s"
                        + (f" (it is {result.status}: {result.error})" if result else "")
                        + f"; fetch it later with `rtc result --session {session.hex()} --counter {counter}`"
                    ) from None
                if refusal is not None:
                    raise CallRejected(*refusal)
                result = await self.result(session, counter)
        if digest is not None and result.record.tx != digest:
            raise CallRejected(
                Code.DUPLICATE, f"counter {counter} of this session was used by another transaction ({result.record.tx})"
            )
        return CallResult(session, counter, result.record, (loop.time() - started) * 1000)

    async def _subscribe(self, subscriptions: list[tuple[str, str]], timeout: float) -> Any:
        """A websocket with these (id, query) subscriptions confirmed."""
        try:
            ws = await websockets.connect(self.rpc.ws_url, max_size=MAX_EVENT_BYTES, open_timeout=timeout)
        except (OSError, websockets.WebSocketException) as exc:
            raise RPCUnavailable(f"cannot open {self.rpc.ws_url} ({type(exc).__name__}); is the node running?") from None
        try:
            for name, query in subscriptions:
                await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": name, "method": "subscribe",
                                            "params": {"query": query}}).decode())
                try:
                    await asyncio.wait_for(_until_reply(ws, name), timeout)
                except asyncio.TimeoutError:
                    raise RPCError(f"{self.rpc.ws_url} did not confirm the subscription within {timeout:.0f}s") from None
        except BaseException:
            await ws.close()
            raise
        return ws

    async def wait_for_height(self, height: int, timeout: float = 30.0) -> None:
        """Return once the node has block `height` (header H+1 follows the state of H within a block)."""
        if await self.rpc.latest_height() >= height:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with await self._subscribe([("nb", "tm.event='NewBlockHeader'")], timeout) as ws:
            while await self.rpc.latest_height() < height:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise RPCError(f"block {height} did not appear within {timeout:.0f}s")
                try:
                    await asyncio.wait_for(ws.recv(), remaining)
                except asyncio.TimeoutError:
                    continue

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
        answer = await self.rpc.abci_query(queries.result_path(session, counter), prove=True)
        state_height = _answered_height(answer)
        if state_height is None:
            return ResultEvidence(session, counter, answer if isinstance(answer, dict) else {}, {}, {},
                                  await self.chain_id())
        await self.wait_for_height(state_height + 1, timeout)
        commit = await self.rpc.commit(state_height + 1)
        signed_header = (commit.get("signed_header") if isinstance(commit, dict) else None) or {}
        validators = await self.rpc.validators(state_height + 1)
        genesis = None
        if policy.trust_on_first_use:
            try:
                genesis = GenesisDoc.from_json(await self.rpc.genesis())
            except ValueError:
                pass  # verify() refuses the missing genesis
        registry, registry_error = await self._registry(policy, signed_header, validators)
        history, history_error = await self._history(answer, signed_header, state_height)
        return ResultEvidence(session, counter, answer, signed_header, validators, await self.chain_id(), genesis,
                              registry, registry_error, history, history_error)

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

    async def verified(self, session: bytes, counter: int, timeout: float = 30.0) -> Receipt:
        """The receipt of a result that passed every required check; VerificationFailed otherwise."""
        return (await self.receipt(session, counter, timeout)).raise_for_failure()


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
        if counter is None:
            counter = self.next_counter
            self.next_counter += 1
        domain = await self.client.signing_domain()
        if call is None:
            return sign(self.key, domain, self.id, counter, b"", Kind.CLOSE)
        return sign(self.key, domain, self.id, counter, canonical_json(call))

    async def call(self, call: dict[str, Any], via: AsyncClient | None = None) -> int:
        """Send a call without waiting for any block (through `via`, another node, if given);
        returns its counter."""
        envelope = await self.envelope(call)
        try:
            await (via or self.client).broadcast(envelope.encode())
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

    async def verified(self, counter: int, timeout: float = 30.0) -> Receipt:
        return await self.client.verified(self.session_key, counter, timeout)

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


async def _until_reply(ws: Any, request_id: str) -> None:
    while True:
        message = orjson.loads(await ws.recv())
        if message.get("id") == request_id:
            if "error" in message:
                raise RPCError(f"subscribe: {message['error'].get('message')} {message['error'].get('data', '')}")
            return


async def _next_result_event(ws: Any, key: str) -> tuple[int, str] | None:
    """Return when an event about `key` arrives (its data is then read from state), or the
    refusal (code, log) of our own transaction when its block refused it."""
    while True:
        message = orjson.loads(await ws.recv())
        result = message.get("result") or {}
        if key in (result.get("events") or {}).get("rtc_result.key", []):
            return None
        tx_result = ((result.get("data") or {}).get("value") or {}).get("TxResult")
        if tx_result is not None:
            outcome = tx_result.get("result") or {}
            code = int(outcome.get("code", 0))
            if code != 0 and not outcome.get("data"):
                return code, "refused in block " + str(tx_result.get("height")) + ": " + outcome.get("log", "")
