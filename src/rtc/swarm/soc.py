"""Single-owner chunks and sequential feeds, checked the way Bee checks them.

A single-owner chunk (SOC) lives at ``keccak256(identifier || owner)``; its data is
``identifier (32) || signature (65) || span (8) || payload`` where ``span || payload`` is a
content-addressed chunk (the *wrapped* chunk).  The signature is Ethereum's personal-message
signature (``"\\x19Ethereum Signed Message:\\n32"`` prefix, r || s || v with v = 27 or 28) of
``keccak256(identifier || wrapped chunk address)``; the owner is whoever it recovers to.

A sequential feed update at index i under topic t is the SOC with identifier
``keccak256(t || i as u64 big-endian)`` whose wrapped payload is Bee's update format
``timestamp (u64 big-endian) || reference``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_keys.datatypes import PrivateKey, Signature
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from .bmt import CHUNK_SIZE, REFERENCE_SIZE, SPAN_SIZE, cac_address, encode_span
from .errors import ChunkInvalid
from .keccak import keccak256

__all__ = [
    "FeedSigner",
    "SingleOwnerChunk",
    "feed_identifier",
    "feed_update_payload",
    "make_soc",
    "parse_feed_update",
    "parse_soc",
    "recover_owner",
    "soc_address",
]

IDENTIFIER_SIZE = 32
SIGNATURE_SIZE = 65
OWNER_SIZE = 20
TOPIC_SIZE = 32
MAX_FEED_INDEX = 2**64 - 1
_SIGNED_MESSAGE_PREFIX = b"\x19Ethereum Signed Message:\n32"
_HEADER = IDENTIFIER_SIZE + SIGNATURE_SIZE
_TIMESTAMP_SIZE = 8
# v as Bee's signature recovery (btcec compact signatures) takes it: 27/28, or 31/32 for the
# "compressed key" flavour of the same recovery ids.  Bee itself writes 27/28.
_RECOVERY_IDS = {27: 0, 28: 1, 31: 0, 32: 1}


def _signed_message_hash(digest: bytes) -> bytes:
    return keccak256(_SIGNED_MESSAGE_PREFIX + digest)


class FeedSigner:
    """The secp256k1 key of a feed owner; signs SOCs as Bee and bee-js do."""

    def __init__(self, private_key: bytes) -> None:
        if type(private_key) is not bytes or len(private_key) != 32:
            raise ValueError("a feed owner's private key is 32 bytes")
        try:
            self._key = PrivateKey(private_key)
        except ValidationError as exc:
            raise ValueError(f"not a secp256k1 private key: {exc}") from None
        self.owner: bytes = self._key.public_key.to_canonical_address()
        """20-byte Ethereum address: the owner SOC addresses and signatures are bound to."""

    def sign(self, digest: bytes) -> bytes:
        """65-byte r || s || v (v = 27 or 28) personal-message signature of a 32-byte digest.

        Deterministic (RFC 6979), so re-signing the same update gives the same chunk.
        """
        if len(digest) != 32:
            raise ValueError("signs 32-byte digests")
        signature = self._key.sign_msg_hash(_signed_message_hash(digest))
        r, s, v = int(signature.r), int(signature.s), int(signature.v)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + v])

    def __repr__(self) -> str:
        return f"FeedSigner(owner=0x{self.owner.hex()})"


def recover_owner(signature: bytes, digest: bytes) -> bytes:
    """The Ethereum address whose key made `signature` over `digest` (ChunkInvalid if none)."""
    if len(signature) != SIGNATURE_SIZE:
        raise ChunkInvalid(f"a signature is {SIGNATURE_SIZE} bytes, not {len(signature)}")
    recovery_id = _RECOVERY_IDS.get(signature[64])
    if recovery_id is None:
        raise ChunkInvalid(f"signature v must be 27 or 28, not {signature[64]}")
    try:
        parsed = Signature(signature_bytes=bytes(signature[:64]) + bytes([recovery_id]))
        public_key = parsed.recover_public_key_from_msg_hash(_signed_message_hash(digest))
    except (BadSignature, ValidationError, ValueError) as exc:
        raise ChunkInvalid(f"signature does not recover a key: {exc}") from None
    return bytes(public_key.to_canonical_address())


def soc_address(identifier: bytes, owner: bytes) -> bytes:
    """Where the SOC of `owner` with `identifier` lives."""
    _check_size(identifier, IDENTIFIER_SIZE, "identifier")
    _check_size(owner, OWNER_SIZE, "owner")
    return keccak256(identifier + owner)


@dataclass(frozen=True)
class SingleOwnerChunk:
    """A SOC whose signature has been checked against its address."""

    address: bytes
    identifier: bytes
    signature: bytes
    owner: bytes
    wrapped: bytes  # span || payload of the wrapped content-addressed chunk
    wrapped_address: bytes

    @property
    def payload(self) -> bytes:
        return self.wrapped[SPAN_SIZE:]


def make_soc(identifier: bytes, payload: bytes, signer: FeedSigner) -> tuple[bytes, bytes]:
    """(address, data) of the SOC wrapping a chunk of `payload` (at most 4096 bytes), signed by `signer`."""
    _check_size(identifier, IDENTIFIER_SIZE, "identifier")
    if len(payload) > CHUNK_SIZE:
        raise ValueError(f"a SOC wraps at most {CHUNK_SIZE} payload bytes, not {len(payload)}")
    wrapped = encode_span(len(payload)) + payload
    signature = signer.sign(keccak256(identifier + cac_address(wrapped)))
    return soc_address(identifier, signer.owner), identifier + signature + wrapped


def parse_soc(address: bytes, data: bytes) -> SingleOwnerChunk:
    """Check `data` as the SOC at `address` (ChunkInvalid unless its signature recovers the owner it is addressed by)."""
    if not _HEADER + SPAN_SIZE <= len(data) <= _HEADER + SPAN_SIZE + CHUNK_SIZE:
        raise ChunkInvalid(f"{len(data)} bytes cannot be a single-owner chunk")
    identifier = bytes(data[:IDENTIFIER_SIZE])
    signature = bytes(data[IDENTIFIER_SIZE:_HEADER])
    wrapped = bytes(data[_HEADER:])
    wrapped_address = cac_address(wrapped)
    owner = recover_owner(signature, keccak256(identifier + wrapped_address))
    if keccak256(identifier + owner) != address:
        raise ChunkInvalid(f"single-owner chunk {address.hex()} is not signed by the owner it is addressed by "
                           f"(its signature recovers 0x{owner.hex()})")
    return SingleOwnerChunk(address, identifier, signature, owner, wrapped, wrapped_address)


def feed_identifier(topic: bytes, index: int) -> bytes:
    """SOC identifier of a sequential feed's update number `index`."""
    _check_size(topic, TOPIC_SIZE, "topic")
    _check_index(index)
    return keccak256(topic + index.to_bytes(8, "big"))


def feed_update_payload(reference: bytes, timestamp: int = 0) -> bytes:
    """Wrapped payload of a feed update: ``timestamp (u64 big-endian) || reference``."""
    _check_size(reference, REFERENCE_SIZE, "reference")
    if type(timestamp) is not int or not 0 <= timestamp < 2**64:
        raise ValueError("a feed update timestamp is an unsigned 64-bit number of seconds")
    return timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + reference


def parse_feed_update(payload: bytes) -> tuple[int, bytes]:
    """(timestamp, reference) of a feed update's wrapped payload."""
    if len(payload) != _TIMESTAMP_SIZE + REFERENCE_SIZE:
        raise ChunkInvalid(f"a feed update payload is timestamp || 32-byte reference (40 bytes), not {len(payload)} bytes")
    return int.from_bytes(payload[:_TIMESTAMP_SIZE], "big"), bytes(payload[_TIMESTAMP_SIZE:])


def _check_size(value: Any, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")


def _check_index(index: int) -> None:
    if type(index) is not int or not 0 <= index <= MAX_FEED_INDEX:
        raise ValueError(f"a feed index is an integer from 0 to 2**64 - 1, not {index!r}")
