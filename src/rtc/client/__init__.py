"""Client SDK: submit calls to a cluster and read results, async (`NodeClient`) or sync (`Client`)."""

from __future__ import annotations

import asyncio
from typing import Any

from .lightclient import VerificationError, verify_commit
from .rpc import CallRejected, CallResult, NodeClient, RPCError, Session
from .verify import Receipt, TrustedValidators, verified_result


class Client:
    """A blocking wrapper around NodeClient for scripts and the REPL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def go() -> Any:
            async with NodeClient(self.url) as client:
                return await getattr(client, method)(*args, **kwargs)

        return asyncio.run(go())

    def call(self, call: dict[str, Any], timeout: float = 30.0) -> CallResult:
        return self._run("call", call, timeout=timeout)

    def query(self, call: dict[str, Any]) -> Any:
        return self._run("query", call)

    def entry_points(self) -> dict[str, Any]:
        return self._run("entry_points")

    def status(self) -> dict[str, Any]:
        return self._run("status")


__all__ = [
    "CallRejected", "CallResult", "Client", "NodeClient", "RPCError", "Receipt", "Session", "TrustedValidators",
    "VerificationError", "verified_result", "verify_commit",
]
