"""Client SDK: signed session calls, results by counter, verified receipts; async or sync.

Async: `NodeClient` (one node's RPC) and `Session` (an ordered stream of calls).
Sync: `Client(url).session()` gives the same operations as blocking methods.
Verification trusts a validator set (`TrustedValidators`), the cluster's staked members in
the Registry contract (`ContractCheck`, imported on first use since it needs web3), or both.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from nacl.signing import SigningKey

from .lightclient import VerificationError, verify_commit
from .rpc import CallRejected, CallResult, NodeClient, RPCError, Session
from .verify import Receipt, TrustedValidators, verified_result

if TYPE_CHECKING:
    from .membership import ContractCheck


def __getattr__(name: str) -> Any:
    """`ContractCheck` on first use: web3 takes most of a second to import."""
    if name == "ContractCheck":
        from .membership import ContractCheck

        return ContractCheck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Client:
    """A blocking client for scripts and the REPL; one event loop kept for its lifetime."""

    def __init__(self, url: str, trusted: TrustedValidators | None = None, contract: ContractCheck | None = None) -> None:
        """`trusted`: the validator set to verify against; `contract`: the Registry check of the
        signers (follows validator-set changes). With neither, the genesis this node serves."""
        self._runner = asyncio.Runner()
        self.node = self._runner.run(self._connect(url))
        self._trusted = trusted
        self.contract = contract

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
        client = self.client
        # With a contract check alone, no genesis is fetched: the contract is the root of trust.
        trusted = client._trusted if client.contract is not None else client.trusted()
        return client.run(verified_result(client.node, self.key_bytes, counter, trusted, timeout, contract=client.contract))

    def close(self, timeout: float = 30.0) -> CallResult:
        return self.client.run(self.inner.close(timeout))


__all__ = [
    "CallRejected", "CallResult", "Client", "ContractCheck", "NodeClient", "RPCError", "Receipt", "Session", "SyncSession",
    "TrustedValidators", "VerificationError", "verified_result", "verify_commit",
]
