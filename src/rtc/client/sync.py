"""The blocking client for scripts and the REPL: the same methods as the async one.

`Client` runs an `AsyncClient` on an event loop of its own, in a background thread kept for
the client's lifetime: its websocket and HTTP connections are reused between calls, and
between calls it keeps following the cluster, failing over and resending calls that are
not yet in a block, exactly as the async client does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from nacl.signing import SigningKey

from rtc.protocol import Envelope, SessionRecord

from .aio import AsyncClient, AsyncSession
from .results import CallRejected, CallResult, QueryResult
from .trust import TrustPolicy
from .verify import HistoryCheck, Receipt, ResultEvidence

T = TypeVar("T")


class Client:
    """A blocking client of one or several nodes of a cluster; see `AsyncClient` for the arguments."""

    def __init__(self, nodes: str | Sequence[str], trust: TrustPolicy | None = None,
                 history: HistoryCheck | None = None, timeout: float = 10.0, *,
                 resend_after_blocks: int | None = None, resend_after_s: float | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rtc-client", daemon=True)
        self._thread.start()
        self.aio = AsyncClient(nodes, trust, history, timeout, resend_after_blocks=resend_after_blocks,
                               resend_after_s=resend_after_s)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C: stop the coroutine too
            raise

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self.aio.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.aio.url

    @property
    def urls(self) -> tuple[str, ...]:
        return self.aio.urls

    def status(self) -> dict[str, Any]:
        return self._run(self.aio.status())

    def chain_id(self) -> str:
        return self._run(self.aio.chain_id())

    def entry_points(self) -> dict[str, Any]:
        return self._run(self.aio.entry_points())

    def query(self, call: dict[str, Any]) -> QueryResult:
        return self._run(self.aio.query(call))

    def session(self, key: SigningKey | None = None, session_id: bytes | None = None, next_counter: int = 0) -> "Session":
        return Session(self, self.aio.session(key, session_id, next_counter))

    def call(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        return self._run(self.aio.call(call, timeout))

    def broadcast(self, tx: bytes) -> None:
        self._run(self.aio.broadcast(tx))

    def wait_for_height(self, height: int, timeout: float = 30.0) -> None:
        self._run(self.aio.wait_for_height(height, timeout))

    def result(self, session: bytes, counter: int) -> CallResult | None:
        return self._run(self.aio.result(session, counter))

    def session_record(self, session: bytes) -> SessionRecord | None:
        return self._run(self.aio.session_record(session))

    def wait_for_result(self, session: bytes, counter: int, timeout: float = 30.0, tx: bytes | None = None) -> CallResult:
        return self._run(self.aio.wait_for_result(session, counter, timeout, tx))

    def evidence(self, session: bytes, counter: int, timeout: float = 30.0) -> ResultEvidence:
        return self._run(self.aio.evidence(session, counter, timeout))

    def receipt(self, session: bytes, counter: int, timeout: float = 30.0) -> Receipt:
        return self._run(self.aio.receipt(session, counter, timeout))

    def verified(self, session: bytes, counter: int, timeout: float = 30.0, validated: bool = False) -> Receipt:
        return self._run(self.aio.verified(session, counter, timeout, validated))


class Session:
    """A blocking session: counter k executes only after k-1, cluster-wide."""

    def __init__(self, client: Client, aio: AsyncSession) -> None:
        self.client = client
        self.aio = aio

    @property
    def id(self) -> bytes:
        return self.aio.id

    @property
    def session_key(self) -> bytes:
        return self.aio.session_key

    @property
    def next_counter(self) -> int:
        return self.aio.next_counter

    @next_counter.setter
    def next_counter(self, counter: int) -> None:
        self.aio.next_counter = counter

    def envelope(self, call: dict[str, Any] | None, counter: int | None = None) -> Envelope:
        return self.client._run(self.aio.envelope(call, counter))

    def call(self, call: dict[str, Any], via: Client | None = None) -> int:
        """Send without waiting for a block (through `via`, another node, if given); returns the call's counter."""
        if via is None:
            return self.client._run(self.aio.call(call))
        envelope = self.envelope(call)  # `via` runs on its own event loop, so it only broadcasts
        try:
            via.broadcast(envelope.encode())
        except CallRejected as exc:
            self.aio.give_back(envelope.counter, exc)
            raise
        return envelope.counter

    def call_and_wait(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        return self.client._run(self.aio.call_and_wait(call, timeout))

    def result(self, counter: int, timeout: float = 30.0) -> CallResult:
        return self.client._run(self.aio.result(counter, timeout))

    def receipt(self, counter: int, timeout: float = 30.0) -> Receipt:
        return self.client._run(self.aio.receipt(counter, timeout))

    def verified(self, counter: int, timeout: float = 30.0, validated: bool = False) -> Receipt:
        """The result with every check done here; VerificationFailed if one fails. `validated`:
        also wait until batch validators re-executed its block (graded finality)."""
        return self.client._run(self.aio.verified(counter, timeout, validated))

    def close(self, timeout: float = 30.0) -> CallResult:
        return self.client._run(self.aio.close(timeout))
