"""Result codes and the canonical JSON every node must produce byte for byte.

Transactions are signed session envelopes (`rtc.sessions.envelope`, docs/protocol.md), and
the Ethereum-sync transactions that proposers add (`rtc.membership.sync`).
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import Any

import orjson

MAX_TX_BYTES = 64 * 1024


class Code(IntEnum):
    """ABCI result codes; 0 is success, as CometBFT expects."""

    OK = 0
    MALFORMED = 1  # not a well-formed envelope, or the call is not UTF-8 JSON, or too large
    INVALID_CALL = 2  # unknown function, wrong arguments: refused before ordering
    EXECUTION_FAILED = 3  # the backend trapped, ran out of fuel or broke a host limit
    READ_ONLY = 4  # a query function sent as a transaction
    BAD_SIGNATURE = 5  # the signature does not match the client key and chain
    DUPLICATE = 6  # the counter was already used in this session (no replay)
    SESSION_ENDED = 7  # the session failed, expired or was closed
    TOO_EARLY = 8  # the counter is too far ahead, or the session's buffer is full
    NOT_FROM_CLIENTS = 9  # an Ethereum-sync transaction sent to the mempool: only proposers add them
    INVALID_SYNC = 10  # an Ethereum sync that is malformed or not newer than the last one


class TxError(ValueError):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


def tx_hash(tx: bytes) -> bytes:
    """CometBFT's transaction hash: SHA-256 of the raw bytes."""
    return hashlib.sha256(tx).digest()


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding used for anything hashed: sorted keys, no spaces, shortest floats."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot encode as JSON: {exc} (integers are limited to 64 bits)") from None
