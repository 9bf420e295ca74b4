"""Client SDK: signed session calls, results by counter, verified receipts; async or sync.

Async: `NodeClient` (one node's RPC) and `Session` (an ordered stream of calls).
Sync: `Client(url).session()` gives the same operations as blocking methods.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nacl.signing import SigningKey

from .lightclient import VerificationError, verify_commit
from .rpc import CallRejected, CallResult, NodeClient, RPCError, Session
from .verify import Receipt, TrustedValidators, verified_result


class Client:
    """A blocking client for scripts and the REPL; one event loop kept for its lifetime."""

    def __init__(self, url: str, trusted: TrustedValidators | None = None) -> None:
        """`trusted`: the validator set to verify against; default, the genesis this node serves."""
        self._runner = asyncio.Runner()
        self.node = self._runner.run(self._connect(url))
        self._trusted = trusted

    @staticmethod
    async def _connect(url: str) -> NodeClient:
        return NodeClient(url)

    def run(self, awaitable: Any) -> Any:
        return self._runner.run(awaitable)

    def close(self) -> None:
        self.run(self.node.close())
        self._runner.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        """One call in a fresh session, waiting for its result."""
        return self.run(self.node.call(call, timeout=timeout))

    def query(self, call: dict[str, Any]) -> Any:
        return self.run(self.node.query(call))

    def entry_points(self) -> dict[str, Any]:
        return self.run(self.node.entry_points())

    def status(self) -> dict[str, Any]:
        return self.run(self.node.status())

    def session(self, key: SigningKey | None = None, session_id: bytes | None = None, next_counter: int = 0) -> "SyncSession":
        """A new session, or an existing one continued (same key and id) after a restart."""
        return SyncSession(self, Session(self.node, key or SigningKey.generate(), session_id, next_counter))

    def trusted(self) -> TrustedValidators:
        if self._trusted is None:
            self._trusted = self.run(TrustedValidators.from_genesis(self.node))
        return self._trusted


class SyncSession:
    def __init__(self, client: Client, session: Session) -> None:
        self.client = client
        self.inner = session

    @property
    def id(self) -> bytes:
        return self.inner.id

    @property
    def key_bytes(self) -> bytes:
        return self.inner.key_bytes

    def call(self, call: dict[str, Any]) -> int:
        """Send without waiting for a block; returns the call's counter."""
        return self.client.run(self.inner.call(call))

    def call_and_wait(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        return self.client.run(self.inner.call_and_wait(call, timeout))

    def result(self, counter: int, timeout: float = 30.0) -> CallResult:
        return self.client.run(self.inner.result(counter, timeout))

    def verified(self, counter: int, timeout: float = 30.0) -> Receipt:
        """The result with every check done here: proof, header, signatures of the trusted validators."""
        return self.client.run(verified_result(self.client.node, self.key_bytes, counter, self.client.trusted(), timeout))

    def close(self, timeout: float = 30.0) -> CallResult:
        return self.client.run(self.inner.close(timeout))


__all__ = [
    "CallRejected", "CallResult", "Client", "NodeClient", "RPCError", "Receipt", "Session", "SyncSession",
    "TrustedValidators", "VerificationError", "verified_result", "verify_commit",
]
