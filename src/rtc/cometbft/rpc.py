"""CometBFT's RPC as the client, the node's uploader and the tools call it: one error model,
a blocking face (`RPC`) and an async one (`AsyncRPC`) with the same methods.

Every method sends a JSON-RPC 2.0 request (POST) and returns the answer's `result` as
CometBFT writes it (int64 as decimal strings, hashes as hex, bytes as base64); `AsyncRPC`'s
methods return the same as awaitables. Failures raise `RPCError`: `RPCUnavailable` when the
node cannot be reached, `HeightUnavailable` when it no longer (or not yet) keeps a block.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

_LOWEST = re.compile(r"lowest height is (\d+)")


class RPCError(RuntimeError):
    """The node answered with an error, or not as a CometBFT RPC endpoint would; the message says which."""

    def __init__(self, message: str, method: str | None = None) -> None:
        super().__init__(message)
        self.method = method


class RPCUnavailable(RPCError):
    """The node could not be reached (refused, timed out, connection lost)."""


class HeightUnavailable(RPCError):
    """The node's block store starts after the height asked for (state-synced or pruned)."""

    def __init__(self, message: str, method: str, lowest: int) -> None:
        super().__init__(message, method)
        self.lowest = lowest


def _result(url: str, method: str, response: httpx.Response) -> Any:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise RPCError(f"{url} answered {method} with HTTP {response.status_code} and no JSON; "
                       "is it a CometBFT RPC endpoint?", method) from None
    return answer_result(url, method, body)


def answer_result(url: str, method: str, body: Any) -> Any:
    """The `result` of a decoded JSON-RPC answer (over HTTP or a websocket); the node's error
    answer as RPCError (HeightUnavailable when the height is below what it keeps)."""
    error = body.get("error") if isinstance(body, dict) else None
    if error is not None:
        if not isinstance(error, dict):
            raise RPCError(f"{method}: {error}", method)
        detail = f"{error.get('message', '')} {error.get('data', '')}".strip()
        lowest = _LOWEST.search(str(error.get("data", "")))
        if lowest is not None:
            raise HeightUnavailable(f"{method}: {detail}", method, int(lowest.group(1)))
        raise RPCError(f"{method}: {detail}", method)
    if not isinstance(body, dict) or "result" not in body:
        raise RPCError(f"{url} answered {method} without a result", method)
    return body["result"]


def _finish(url: str, method: str, result: Any, post: Callable[[Any], Any] | None) -> Any:
    """The result as the method returns it; an answer without the expected parts is an RPCError too."""
    if post is None:
        return result
    try:
        return post(result)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise RPCError(f"{url} answered {method} without the expected {exc}", method) from None


def _unreachable(url: str, method: str, exc: httpx.HTTPError) -> RPCUnavailable:
    return RPCUnavailable(f"cannot reach {url} ({type(exc).__name__}); is the node running?", method)


class _Methods:
    """The calls both faces share; `_call` makes them blocking or awaitable."""

    url: str

    def _call(self, method: str, params: dict[str, Any], post: Callable[[Any], Any] | None = None) -> Any:
        raise NotImplementedError

    @property
    def ws_url(self) -> str:
        """The websocket endpoint (event subscriptions)."""
        return "ws" + self.url[len("http"):] + "/websocket"

    def status(self) -> Any:
        return self._call("status", {})

    def latest_height(self) -> Any:
        return self._call("status", {}, lambda status: int(status["sync_info"]["latest_block_height"]))

    def genesis(self) -> Any:
        return self._call("genesis", {}, lambda result: result["genesis"])

    def commit(self, height: int | None = None) -> Any:
        """The signed header of `height` (latest when None); `canonical` says whether its
        commit is the one the next block holds."""
        return self._call("commit", {} if height is None else {"height": str(height)})

    def validators(self, height: int, per_page: int = 100) -> Any:
        return self._call("validators", {"height": str(height), "per_page": str(per_page)})

    def block(self, height: int) -> Any:
        return self._call("block", {"height": str(height)}, lambda result: result["block"])

    def blockchain(self, low: int, high: int) -> Any:
        """Block metas (header, num_txs) of heights low..high, newest first, at most 20 per answer."""
        return self._call("blockchain", {"minHeight": str(low), "maxHeight": str(high)},
                          lambda result: result["block_metas"])

    def block_results(self, height: int) -> Any:
        return self._call("block_results", {"height": str(height)})

    def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> Any:
        """The app's answer (`response`: code, log, value in base64, height, proofOps)."""
        params = {"path": path, "data": data.hex(), "prove": prove, "height": str(height)}
        return self._call("abci_query", params, lambda result: result["response"])

    def broadcast_tx_sync(self, tx: bytes) -> Any:
        """Hand a transaction to the mempool; the answer carries CheckTx's code and log."""
        return self._call("broadcast_tx_sync", {"tx": base64.b64encode(tx).decode()})


class RPC(_Methods):
    """Blocking client of one node's RPC, e.g. http://127.0.0.1:26601."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._ids = itertools.count(1)

    def _call(self, method: str, params: dict[str, Any], post: Callable[[Any], Any] | None = None) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._http.post("/", content=orjson.dumps(request), headers=_JSON)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, method, exc) from None
        return _finish(self.url, method, _result(self.url, method, response), post)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RPC":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRPC(_Methods):
    """The same client for asyncio: every method returns an awaitable."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._ids = itertools.count(1)

    def _call(self, method: str, params: dict[str, Any], post: Callable[[Any], Any] | None = None) -> Awaitable[Any]:
        return self._send(method, params, post)

    async def _send(self, method: str, params: dict[str, Any], post: Callable[[Any], Any] | None) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = await self._http.post("/", content=orjson.dumps(request), headers=_JSON)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, method, exc) from None
        return _finish(self.url, method, _result(self.url, method, response), post)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncRPC":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_JSON = {"content-type": "application/json"}
