"""The signed transaction envelope: who calls, in which session, at which position.

A fixed binary layout (docs/protocol.md) so that a client in any language can build it
without a canonical-JSON library: only the call itself is JSON, and it is signed as the
exact bytes sent. All integers are big-endian.

    offset  size  field
    0       4     magic b"RTC\\x01" (format version 1)
    4       1     kind: 0 = call, 1 = close the session
    5       32    client: ed25519 public key
    37      16    session id, chosen by the client
    53      8     counter k (u64); the session's calls run in counter order from 0
    61      4     L, length of the call (u32; 0 for close)
    65      L     call: UTF-8 JSON object {"function": ..., <arguments>}
    65+L    64    ed25519 signature over  SIGNING_DOMAIN || u8 len(chain_id) || chain_id || bytes[0:65+L]

The chain id in the signed bytes binds a transaction to one cluster, so it cannot be
replayed on another.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace
from enum import IntEnum
from functools import cached_property

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

MAGIC = b"RTC\x01"
SIGNING_DOMAIN = b"rtc/tx/v1\n"
HEADER = struct.Struct(">4sB32s16sQI")
SIGNATURE_BYTES = 64
MIN_BYTES = HEADER.size + SIGNATURE_BYTES
MAX_COUNTER = 2**64 - 1


def tx_digest(tx: bytes) -> str:
    """A transaction's hash as CometBFT names it (upper-case hex of SHA-256), so a client
    can tell that a result is its own transaction's."""
    return hashlib.sha256(tx).hexdigest().upper()


class Kind(IntEnum):
    CALL = 0
    CLOSE = 1


class EnvelopeError(ValueError):
    """The bytes are not a well-formed, correctly signed envelope; the message says why."""


@dataclass(frozen=True)
class Envelope:
    kind: Kind
    client: bytes  # 32-byte ed25519 public key
    session: bytes  # 16 bytes
    counter: int
    call: bytes  # the call's JSON text, exactly as signed
    signature: bytes

    @property
    def session_key(self) -> bytes:
        """client || session: the 48 bytes that name a session everywhere in state."""
        return self.client + self.session

    def signed_bytes(self, chain_id: str) -> bytes:
        return _signing_input(chain_id, self.body())

    def body(self) -> bytes:
        return HEADER.pack(MAGIC, self.kind, self.client, self.session, self.counter, len(self.call)) + self.call

    def encode(self) -> bytes:
        return self.body() + self.signature

    @cached_property
    def raw(self) -> bytes:
        """The transaction's bytes, kept from `decode` (or encoded once)."""
        return self.encode()

    @cached_property
    def digest(self) -> str:
        """CometBFT's name of the transaction, which its result record carries."""
        return tx_digest(self.raw)

    def verify(self, chain_id: str) -> None:
        try:
            VerifyKey(self.client).verify(self.signed_bytes(chain_id), self.signature)
        except BadSignatureError:
            raise EnvelopeError("signature does not match the client key (wrong key, chain id or altered bytes)") from None
        except (ValueError, TypeError) as exc:  # not a valid curve point
            raise EnvelopeError(f"client key is not a valid ed25519 public key: {exc}") from None


def _signing_input(chain_id: str, body: bytes) -> bytes:
    chain = chain_id.encode("utf-8")
    if len(chain) > 255:
        raise EnvelopeError("chain id longer than 255 bytes")
    return SIGNING_DOMAIN + bytes([len(chain)]) + chain + body


def decode(tx: bytes) -> Envelope:
    """Parse the layout above; signature checking is separate (`Envelope.verify`)."""
    if len(tx) < MIN_BYTES:
        raise EnvelopeError(f"envelope of {len(tx)} bytes is shorter than the minimum of {MIN_BYTES}")
    magic, kind, client, session, counter, call_len = HEADER.unpack_from(tx)
    if magic != MAGIC:
        raise EnvelopeError(f"unknown envelope format {magic!r} (expected {MAGIC!r}; see docs/protocol.md)")
    expected = HEADER.size + call_len + SIGNATURE_BYTES
    if len(tx) != expected:
        raise EnvelopeError(
            f"envelope is {len(tx)} bytes but its header announces a {call_len}-byte call ({expected} bytes in all); "
            "a field has the wrong size"
        )
    try:
        kind = Kind(kind)
    except ValueError:
        raise EnvelopeError(f"unknown envelope kind {kind}") from None
    if kind is Kind.CLOSE and call_len:
        raise EnvelopeError("a close envelope carries no call")
    if kind is Kind.CALL and not call_len:
        raise EnvelopeError("a call envelope carries an empty call")
    call = tx[HEADER.size: HEADER.size + call_len]
    envelope = Envelope(kind, client, session, counter, call, tx[HEADER.size + call_len:])
    vars(envelope)["raw"] = tx  # primes the cached property: the bytes are these, no need to encode again
    return envelope


def sign(
    key: SigningKey, chain_id: str, session: bytes, counter: int, call: bytes, kind: Kind = Kind.CALL
) -> Envelope:
    if len(session) != 16:
        raise EnvelopeError(f"session id must be 16 bytes, not {len(session)}")
    if not 0 <= counter <= MAX_COUNTER:
        raise EnvelopeError("counter must fit in 64 unsigned bits")
    unsigned = Envelope(kind, bytes(key.verify_key), session, counter, call, b"")
    return replace(unsigned, signature=key.sign(unsigned.signed_bytes(chain_id)).signature)
