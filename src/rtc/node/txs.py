"""The transaction envelope and the result records stored for every transaction.

This issue's envelope is minimal: the call itself, as in the seed
(`{"function": "sum", "x": 5, "y": 3}`), or `{"call": {...}, "nonce": "..."}` so that two
identical calls are two distinct transactions. Signed, session-ordered envelopes replace
it later (docs/protocol.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

MAX_TX_BYTES = 64 * 1024
MAX_NONCE_CHARS = 64


class Code(IntEnum):
    """ABCI result codes; 0 is success, as CometBFT expects."""

    OK = 0
    MALFORMED = 1  # not UTF-8 JSON of the envelope's shape, or too large
    INVALID_CALL = 2  # unknown function, wrong arguments: refused before ordering
    EXECUTION_FAILED = 3  # the backend trapped, ran out of fuel or broke a host limit
    READ_ONLY = 4  # a query function sent as a transaction


class TxError(ValueError):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Envelope:
    call: dict[str, Any]
    nonce: str | None


def decode_tx(tx: bytes, max_bytes: int = MAX_TX_BYTES) -> Envelope:
    """Parse transaction bytes into an envelope, refusing anything malformed with a reason."""
    if len(tx) > max_bytes:
        raise TxError(Code.MALFORMED, f"transaction of {len(tx)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        document = orjson.loads(tx)
    except orjson.JSONDecodeError as exc:
        raise TxError(Code.MALFORMED, f"transaction is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TxError(Code.MALFORMED, "transaction must be a JSON object")
    if "function" in document:
        return Envelope(document, None)
    call, nonce = document.get("call"), document.get("nonce")
    extra = sorted(set(document) - {"call", "nonce"})
    if not isinstance(call, dict) or extra:
        raise TxError(
            Code.MALFORMED,
            'transaction must be a call {"function": ..., <arguments>} or {"call": {...}, "nonce": "..."}'
            + (f"; unexpected member(s): {', '.join(extra)}" if extra else ""),
        )
    if nonce is not None and not (isinstance(nonce, str) and len(nonce) <= MAX_NONCE_CHARS):
        raise TxError(Code.MALFORMED, f"nonce must be a string of at most {MAX_NONCE_CHARS} characters")
    return Envelope(call, nonce)


def encode_tx(call: dict[str, Any], nonce: str | None = None) -> bytes:
    if nonce is None:
        return canonical_json(call)
    return canonical_json({"call": call, "nonce": nonce})


def tx_hash(tx: bytes) -> bytes:
    """CometBFT's transaction hash: SHA-256 of the raw bytes."""
    return hashlib.sha256(tx).digest()


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding used for anything hashed: sorted keys, no spaces, shortest floats."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot encode as JSON: {exc} (integers are limited to 64 bits)") from None
