"""`BeeSwarm`: the `Swarm` interface over a Bee node's HTTP API, trusting nothing it answers.

Endpoints used (Bee API):

* ``POST /bytes`` (headers ``Swarm-Postage-Batch-Id``, ``Swarm-Redundancy-Level: 0``,
  ``Swarm-Encrypt: false``, ``Swarm-Deferred-Upload``): the reference it answers must equal
  the one computed here, else ChunkInvalid;
* ``GET /chunks/{reference}`` then ``GET /bytes/{reference}``: the root chunk first (its span,
  which the reference commits to, is the data's exact length), then the data, accepted only
  if it hashes back to the reference;
* ``GET /chunks/{address}``: one chunk (`has`, feed updates), verified here;
* ``POST /soc/{owner}/{identifier}?sig=...`` (body ``span || payload`` of the wrapped chunk):
  feed updates, signed here;
* ``GET /feeds/{owner}/{topic}`` with ``Swarm-Only-Root-Chunk: true``: only its
  ``Swarm-Feed-Index`` header is used, as a hint where the newest update is; the update
  itself is then fetched as a chunk and checked, and the next index probed.

Nothing Bee answers is buffered beyond what it can legitimately be: every body is streamed
and refused as soon as it exceeds its bound (a chunk 4096+8 bytes, a single-owner chunk 32+65
more, data its span and at most `max_download_bytes`, a JSON answer 64 KiB, an error body
read only up to 4 KiB for its message); compressed answers are refused (we ask for none).

Connection failures, timeouts, 5xx (but 501) and 429 raise SwarmUnavailable (retry later); 404
raises NotFound; Bee refusing a SOC signature raises ChunkInvalid; other refusals SwarmError
(501 among them: a ``bee dev`` node answers it to ``POST /soc``, which always uploads directly).

Feed updates are written in Bee's legacy update format (``timestamp || reference`` wrapped in
the SOC), which Bee 2.x still resolves in ``GET /feeds``; Bee 2.x's own writer wraps the
content itself instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from .base import Swarm, find_latest
from .bmt import CHUNK_SIZE, REFERENCE_SIZE, SPAN_SIZE, cac_address
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

CHUNK_LIMIT = SPAN_SIZE + CHUNK_SIZE  # a content-addressed chunk: span and payload
SOC_LIMIT = IDENTIFIER_SIZE + SIGNATURE_SIZE + CHUNK_LIMIT  # a single-owner chunk wraps one
JSON_LIMIT = 64 * 1024  # Bee's answer to an upload: {"reference": ...}
ERROR_LIMIT = 4096  # of an error answer, read for its message
DEFAULT_MAX_DOWNLOAD = 64 * 1024 * 1024  # the largest document we store: a history record (MAX_RECORD_BYTES)


@dataclass(frozen=True)
class _Answer:
    """A Bee answer read within its bound."""

    status: int
    headers: httpx.Headers
    content: bytes


class BeeSwarm(Swarm):
    """A Bee node's HTTP API (e.g. ``http://localhost:1633``), every answer verified locally.

    `postage_batch_id` (64 hex digits) pays for uploads; "" makes a read-only client.
    `deferred` is Bee's ``Swarm-Deferred-Upload``: True (Bee's default) returns once the node
    holds the chunks and pushes them to the network in the background; False waits until
    the network has them. `max_download_bytes` is the most `download` accepts (the length
    is known from the root chunk before the data is fetched).
    """

    def __init__(self, url: str, postage_batch_id: str, timeout: float = 10.0, *, deferred: bool = True,
                 max_download_bytes: int = DEFAULT_MAX_DOWNLOAD) -> None:
        batch = postage_batch_id.removeprefix("0x")
        if batch and not _BATCH_ID.fullmatch(batch):
            raise ValueError(f"a postage batch id is 64 hex digits, not {postage_batch_id!r}")
        self.url = url.rstrip("/")
        self.postage_batch_id = batch.lower()
        self.deferred = deferred
        self.max_download_bytes = max_download_bytes
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    # -- content-addressed data ---------------------------------------------------------

    def upload(self, data: bytes) -> bytes:
        """POST /bytes; the reference Bee answers must be the one computed here."""
        response = self._request("POST", "/bytes", limit=JSON_LIMIT, content=data, headers={
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
        """GET /chunks/{reference} for the length, then GET /bytes/{reference}, read up to that
        length; ChunkInvalid unless the data hashes back to `reference`."""
        _check_reference(reference)
        root = self._chunk(reference, CHUNK_LIMIT)
        if root is None:
            raise NotFound(f"Bee at {self.url} has no chunk {reference.hex()}")
        _verify_cac(reference, root, self.url)
        span = int.from_bytes(root[:SPAN_SIZE], "little")  # authentic: the reference commits to it
        if span == len(root) - SPAN_SIZE:
            return root[SPAN_SIZE:]  # the data fits in its root chunk
        if span > self.max_download_bytes:
            raise SwarmError(f"{reference.hex()} holds {span} bytes, more than this reader downloads "
                             f"(max_download_bytes={self.max_download_bytes})")
        data = self._request("GET", f"/bytes/{reference.hex()}", limit=span, invalid=True,
                             limit_is=f"all that {reference.hex()} holds (its root chunk's span)").content
        actual = bytes_reference(data)
        if actual != reference:
            raise ChunkInvalid(f"Bee at {self.url} served data for {reference.hex()} that hashes to {actual.hex()}")
        return data

    def has(self, reference: bytes) -> bool:
        """GET /chunks/{reference}: the root chunk is retrievable (and is what its address says)."""
        _check_reference(reference)
        chunk = self._chunk(reference, CHUNK_LIMIT)
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
            "POST", f"/soc/{signer.owner.hex()}/{identifier.hex()}", limit=JSON_LIMIT, params={"sig": signature.hex()},
            content=wrapped, headers=self._upload_headers(), refused_as_invalid=(401,))
        answered = _reference_in(response, "POST /soc")
        if answered != address:
            raise ChunkInvalid(f"Bee at {self.url} stored feed update {index} at {answered.hex()}, "
                               f"not at its address {address.hex()}")

    def feed_at(self, owner: bytes, topic: bytes, index: int) -> bytes:
        """GET /chunks/{SOC address}: the update's reference, its signature checked here."""
        address = soc_address(feed_identifier(topic, index), owner)
        chunk = self._chunk(address, SOC_LIMIT)
        if chunk is None:
            raise NotFound(f"feed 0x{owner.hex()}/{topic.hex()} has no update {index}")
        return parse_feed_update(parse_soc(address, chunk).payload)[1]

    def latest_feed(self, owner: bytes, topic: bytes) -> tuple[int, bytes] | None:
        """Bee's own lookup as a hint, then checked: the hinted update must be there and the next one not."""
        hint = self._feed_index_hint(owner, topic)

        def present(index: int) -> bool:
            return self._chunk(soc_address(feed_identifier(topic, index), owner), SOC_LIMIT) is not None

        latest = find_latest(present, hint or 0)
        if latest is None:
            return None
        return latest, self.feed_at(owner, topic, latest)

    def _feed_index_hint(self, owner: bytes, topic: bytes) -> int | None:
        if len(owner) != 20 or len(topic) != 32:
            raise ValueError("a feed is a 20-byte owner and a 32-byte topic")
        try:
            response = self._request("GET", f"/feeds/{owner.hex()}/{topic.hex()}", limit=None,
                                     headers={"Swarm-Only-Root-Chunk": "true"})  # its headers are all we use
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

    def _chunk(self, address: bytes, limit: int) -> bytes | None:
        """One chunk, `limit` bytes at most: CHUNK_LIMIT, or SOC_LIMIT for a single-owner chunk."""
        what = "a single-owner chunk" if limit == SOC_LIMIT else "a chunk"
        try:
            return self._request("GET", f"/chunks/{address.hex()}", limit=limit, invalid=True,
                                 limit_is=f"the most {what} holds").content
        except NotFound:
            return None

    def _request(self, method: str, path: str, *, limit: int | None, invalid: bool = False,
                 limit_is: str = "where a short JSON answer was expected",
                 refused_as_invalid: tuple[int, ...] = (), **kwargs: Any) -> _Answer:
        """One request, its body streamed and refused past `limit` bytes (None: not read at all).

        A body past its limit raises ChunkInvalid when `invalid` (the answer cannot be what was
        asked for), else SwarmError."""
        kwargs["headers"] = {**kwargs.get("headers", {}), "Accept-Encoding": "identity"}
        try:
            with self._client.stream(method, path, **kwargs) as response:
                status = response.status_code
                if status < 300:
                    content = b"" if limit is None else self._read(response, limit, method, path, invalid, limit_is)
                    return _Answer(status, response.headers, content)
                error_body = _read_at_most(response, ERROR_LIMIT)
        except httpx.RequestError as exc:  # connection, timeout, protocol or decoding failure
            raise SwarmUnavailable(f"Bee at {self.url} unreachable ({method} {path}): "
                                   f"{exc or type(exc).__name__}") from exc
        message = f"Bee at {self.url}: {method} {path} answered {status} {_message(error_body, response)}"
        if status == 404:
            raise NotFound(message)
        if status == 501:  # permanent, e.g. a dev node refusing SOC uploads: retrying cannot help
            raise SwarmError(message)
        if status >= 500 or status == 429:
            raise SwarmUnavailable(message)
        if status in refused_as_invalid:
            raise ChunkInvalid(message)
        raise SwarmError(message)

    def _read(self, response: httpx.Response, limit: int, method: str, path: str, invalid: bool,
              limit_is: str) -> bytes:
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise SwarmError(f"Bee at {self.url}: {method} {path} answered with Content-Encoding {encoding!r}, "
                             "although none was accepted; refused")
        too_large = (ChunkInvalid if invalid else SwarmError)(
            f"Bee at {self.url}: {method} {path} answered more than {limit} bytes, {limit_is}; refused")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large  # before reading any of it
        body = bytearray()
        for piece in response.iter_raw():
            body += piece
            if len(body) > limit:
                raise too_large
        return bytes(body)

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


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The start of a body (for an error's message), never more than `limit` bytes; the rest is dropped."""
    if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        return b""
    body = bytearray()
    for piece in response.iter_raw():
        body += piece[: limit - len(body)]
        if len(body) >= limit:
            break
    return bytes(body)


def _message(body: bytes, response: httpx.Response) -> str:
    """Bee's error body is {"code": ..., "message": ...}; fall back to the raw text."""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])[:200]
    except ValueError:
        pass
    return body[:200].decode(errors="replace").strip() or response.reason_phrase


def _reference_in(response: _Answer, what: str) -> bytes:
    try:
        reference = bytes.fromhex(json.loads(response.content)["reference"])
    except (ValueError, KeyError, TypeError):
        raise SwarmError(f"{what} answered without a reference: {response.content[:200]!r}") from None
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
