"""`BeeSwarm`: the `Swarm` interface over a Bee node's HTTP API, trusting nothing it answers.

Endpoints used (Bee API):

* ``POST /bytes`` (headers ``Swarm-Postage-Batch-Id``, ``Swarm-Redundancy-Level: 0``,
  ``Swarm-Encrypt: false``, ``Swarm-Deferred-Upload``): the reference it answers must equal
  the one computed here, else ChunkInvalid;
* ``GET /bytes/{reference}``: the data is accepted only if it hashes back to the reference;
* ``GET /chunks/{address}``: one chunk (`has`, feed updates), verified here;
* ``POST /soc/{owner}/{identifier}?sig=...`` (body ``span || payload`` of the wrapped chunk):
  feed updates, signed here;
* ``GET /feeds/{owner}/{topic}`` with ``Swarm-Only-Root-Chunk: true``: only its
  ``Swarm-Feed-Index`` header is used, as a hint where the newest update is; the update
  itself is then fetched as a chunk and checked, and the next index probed.

Connection failures, timeouts, 5xx (but 501) and 429 raise SwarmUnavailable (retry later); 404
raises NotFound; Bee refusing a SOC signature raises ChunkInvalid; other refusals SwarmError
(501 among them: a ``bee dev`` node answers it to ``POST /soc``, which always uploads directly).

Feed updates are written in Bee's legacy update format (``timestamp || reference`` wrapped in
the SOC), which Bee 2.x still resolves in ``GET /feeds``; Bee 2.x's own writer wraps the
content itself instead.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from .base import Swarm, find_latest
from .bmt import REFERENCE_SIZE, cac_address
from .chunker import bytes_reference
from .errors import ChunkInvalid, NotFound, SwarmError, SwarmUnavailable
from .soc import (
    IDENTIFIER_SIZE,
    SIGNATURE_SIZE,
    FeedSigner,
    feed_identifier,
    feed_update_payload,
    make_soc,
    parse_feed_update,
    parse_soc,
    soc_address,
)

__all__ = ["BeeSwarm"]

_BATCH_ID = re.compile(r"[0-9a-fA-F]{64}")


class BeeSwarm(Swarm):
    """A Bee node's HTTP API (e.g. ``http://localhost:1633``), every answer verified locally.

    `postage_batch_id` (64 hex digits) pays for uploads; "" makes a read-only client.
    `deferred` is Bee's ``Swarm-Deferred-Upload``: True (Bee's default) returns once the node
    holds the chunks and pushes them to the network in the background; False waits until
    the network has them.
    """

    def __init__(self, url: str, postage_batch_id: str, timeout: float = 10.0, *, deferred: bool = True) -> None:
        batch = postage_batch_id.removeprefix("0x")
        if batch and not _BATCH_ID.fullmatch(batch):
            raise ValueError(f"a postage batch id is 64 hex digits, not {postage_batch_id!r}")
        self.url = url.rstrip("/")
        self.postage_batch_id = batch.lower()
        self.deferred = deferred
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    # -- content-addressed data ---------------------------------------------------------

    def upload(self, data: bytes) -> bytes:
        """POST /bytes; the reference Bee answers must be the one computed here."""
        response = self._request("POST", "/bytes", content=data, headers={
            **self._upload_headers(),
            "Swarm-Redundancy-Level": "0",
            "Swarm-Encrypt": "false",
            "Swarm-Deferred-Upload": "true" if self.deferred else "false",
        })
        answered = _reference_in(response, "POST /bytes")
        expected = bytes_reference(data)
        if answered != expected:
            raise ChunkInvalid(f"Bee at {self.url} answered reference {answered.hex()} for data whose reference "
                               f"is {expected.hex()}")
        return expected

    def download(self, reference: bytes) -> bytes:
        """GET /bytes/{reference}; ChunkInvalid unless the data hashes back to `reference`."""
        _check_reference(reference)
        data = self._request("GET", f"/bytes/{reference.hex()}").content
        actual = bytes_reference(data)
        if actual != reference:
            raise ChunkInvalid(f"Bee at {self.url} served data for {reference.hex()} that hashes to {actual.hex()}")
        return data

    def has(self, reference: bytes) -> bool:
        """GET /chunks/{reference}: the root chunk is retrievable (and is what its address says)."""
        _check_reference(reference)
        chunk = self._chunk(reference)
        if chunk is None:
            return False
        _verify_cac(reference, chunk, self.url)
        return True

    # -- feeds --------------------------------------------------------------------------

    def update_feed(self, signer: FeedSigner, topic: bytes, index: int, reference: bytes,
                    timestamp: int = 0) -> None:
        """POST /soc/{owner}/{identifier}?sig=... with the update signed here.

        `timestamp` defaults to 0 so the same update always makes the same chunk.  Unlike
        LocalSwarm this does not look for an update already at `index` first (that would
        cost a network lookup per update): Bee keeps what its own rules keep.
        """
        _check_reference(reference)
        identifier = feed_identifier(topic, index)
        address, data = make_soc(identifier, feed_update_payload(reference, timestamp), signer)
        signature = data[IDENTIFIER_SIZE : IDENTIFIER_SIZE + SIGNATURE_SIZE]
        wrapped = data[IDENTIFIER_SIZE + SIGNATURE_SIZE :]
        response = self._request(
            "POST", f"/soc/{signer.owner.hex()}/{identifier.hex()}", params={"sig": signature.hex()},
            content=wrapped, headers=self._upload_headers(), refused_as_invalid=(401,))
        answered = _reference_in(response, "POST /soc")
        if answered != address:
            raise ChunkInvalid(f"Bee at {self.url} stored feed update {index} at {answered.hex()}, "
                               f"not at its address {address.hex()}")

    def feed_at(self, owner: bytes, topic: bytes, index: int) -> bytes:
        """GET /chunks/{SOC address}: the update's reference, its signature checked here."""
        address = soc_address(feed_identifier(topic, index), owner)
        chunk = self._chunk(address)
        if chunk is None:
            raise NotFound(f"feed 0x{owner.hex()}/{topic.hex()} has no update {index}")
        return parse_feed_update(parse_soc(address, chunk).payload)[1]

    def latest_feed(self, owner: bytes, topic: bytes) -> tuple[int, bytes] | None:
        """Bee's own lookup as a hint, then checked: the hinted update must be there and the next one not."""
        hint = self._feed_index_hint(owner, topic)

        def present(index: int) -> bool:
            return self._chunk(soc_address(feed_identifier(topic, index), owner)) is not None

        latest = find_latest(present, hint or 0)
        if latest is None:
            return None
        return latest, self.feed_at(owner, topic, latest)

    def _feed_index_hint(self, owner: bytes, topic: bytes) -> int | None:
        if len(owner) != 20 or len(topic) != 32:
            raise ValueError("a feed is a 20-byte owner and a 32-byte topic")
        try:
            response = self._request("GET", f"/feeds/{owner.hex()}/{topic.hex()}",
                                     headers={"Swarm-Only-Root-Chunk": "true"})
        except NotFound:
            return None  # no update, or Bee could not resolve it: the probes decide
        try:
            return int(response.headers["Swarm-Feed-Index"], 16)
        except (KeyError, ValueError):
            return None

    # -- HTTP ---------------------------------------------------------------------------

    def _upload_headers(self) -> dict[str, str]:
        if not self.postage_batch_id:
            raise SwarmError("this BeeSwarm is read-only: uploads need a postage batch id")
        return {"Swarm-Postage-Batch-Id": self.postage_batch_id, "Content-Type": "application/octet-stream"}

    def _chunk(self, address: bytes) -> bytes | None:
        try:
            return self._request("GET", f"/chunks/{address.hex()}").content
        except NotFound:
            return None

    def _request(self, method: str, path: str, *, refused_as_invalid: tuple[int, ...] = (),
                 **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.RequestError as exc:  # connection, timeout, protocol or decoding failure
            raise SwarmUnavailable(f"Bee at {self.url} unreachable ({method} {path}): "
                                   f"{exc or type(exc).__name__}") from exc
        status = response.status_code
        if status < 300:
            return response
        message = f"Bee at {self.url}: {method} {path} answered {status} {_message(response)}"
        if status == 404:
            raise NotFound(message)
        if status == 501:  # permanent, e.g. a dev node refusing SOC uploads: retrying cannot help
            raise SwarmError(message)
        if status >= 500 or status == 429:
            raise SwarmUnavailable(message)
        if status in refused_as_invalid:
            raise ChunkInvalid(message)
        raise SwarmError(message)

    def flush(self) -> None:
        """Bee has stored every chunk it acknowledged; nothing is held back here."""

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> BeeSwarm:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BeeSwarm({self.url!r})"


def _message(response: httpx.Response) -> str:
    """Bee's error body is {"code": ..., "message": ...}; fall back to the raw text."""
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    return response.text[:200].strip() or response.reason_phrase


def _reference_in(response: httpx.Response, what: str) -> bytes:
    try:
        reference = bytes.fromhex(response.json()["reference"])
    except (ValueError, KeyError, TypeError):
        raise SwarmError(f"{what} answered without a reference: {response.text[:200]!r}") from None
    if len(reference) != REFERENCE_SIZE:
        raise ChunkInvalid(f"{what} answered a {len(reference)}-byte reference (encrypted upload?)")
    return reference


def _check_reference(reference: Any) -> None:
    if not isinstance(reference, bytes) or len(reference) != REFERENCE_SIZE:
        raise ValueError(f"a Swarm reference is {REFERENCE_SIZE} bytes")


def _verify_cac(address: bytes, chunk: bytes, url: str) -> None:
    try:
        actual = cac_address(chunk)
    except ValueError as exc:
        raise ChunkInvalid(f"Bee at {url} served a malformed chunk for {address.hex()}: {exc}") from None
    if actual != address:
        raise ChunkInvalid(f"Bee at {url} served a chunk for {address.hex()} that hashes to {actual.hex()}")
