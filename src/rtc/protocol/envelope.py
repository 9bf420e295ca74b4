"""The signed transaction envelope: who calls, in which session, at which position, for which cluster.

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
    65+L    64    ed25519 signature over  DOMAIN || bytes[0:65+L]

The signature is made over the cluster's signing domain followed by the transaction's
first 65+L bytes. The domain names the cluster (`SigningDomain.encode`):

    size  field
    10    b"rtc/tx/v2\\n"
    1     n = len(chain_id)
    n     chain_id: the cluster's CometBFT chain id (UTF-8)
    1     1 when the cluster follows a Registry contract, else 0 (and nothing follows)
    8     the Ethereum chain id (u64)                     } only when the flag is 1
    20    the Registry's address                          }
    32    the cluster id in that Registry (u256)          }

so a transaction holds in one cluster only: not on another cluster with the same chain
id, nor on another Registry's or another chain's cluster with the same number. A client
reads the domain from the cluster's genesis (`SigningDomain.from_genesis`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace
from enum import IntEnum
from functools import cached_property, lru_cache
from typing import Any, Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

MAGIC = b"RTC\x01"
SIGNING_DOMAIN = b"rtc/tx/v2\n"  # v1 signed the chain id alone
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


class ContractRef(Protocol):
    """The Registry a cluster follows, as its genesis names it (`rtc.membership.sync.EthereumSettings`)."""

    chain_id: int
    registry: str
    cluster_id: int


@dataclass(frozen=True)
class SigningDomain:
    """The cluster a signature is valid for: its chain id and, when it follows a contract, the
    Ethereum chain, the Registry address and the cluster id in it (layout in the module doc)."""

    chain_id: str
    ethereum_chain_id: int | None = None
    registry: bytes | None = None  # 20 bytes
    cluster_id: int | None = None

    @classmethod
    def of(cls, chain_id: str, contract: ContractRef | None = None) -> "SigningDomain":
        if contract is None:
            return cls(chain_id)
        return cls(chain_id, int(contract.chain_id), _address(contract.registry), int(contract.cluster_id))

    @classmethod
    def from_genesis(cls, chain_id: str, app_state: Any) -> "SigningDomain":
        """The domain of a cluster from its genesis: `chain_id` and `app_state.settings.ethereum`
        ({"chain_id", "registry", "cluster_id"}; absent for a fixed validator set)."""
        try:
            ethereum = ((app_state or {}).get("settings") or {}).get("ethereum")
            if not ethereum:
                return cls(chain_id)
            return cls(chain_id, int(ethereum["chain_id"]), _address(str(ethereum["registry"])),
                       int(ethereum["cluster_id"]))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EnvelopeError(f"the genesis names no usable signing domain ({exc}); is it an rtc cluster's?") from None

    @property
    def contract(self) -> bool:
        return self.registry is not None

    def encode(self) -> bytes:
        return _domain_bytes(self.chain_id, self.ethereum_chain_id, self.registry, self.cluster_id)

    def describe(self) -> str:
        if not self.contract:
            return f"chain {self.chain_id}"
        return (f"chain {self.chain_id}, cluster {self.cluster_id} of Registry 0x{self.registry.hex()} "  # type: ignore[union-attr]
                f"on Ethereum chain {self.ethereum_chain_id}")


def _address(text: str) -> bytes:
    raw = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        address = bytes.fromhex(raw)
    except ValueError:
        address = b""
    if len(address) != 20:
        raise EnvelopeError(f"the Registry {text!r} is not a 20-byte address (0x and 40 hex digits)")
    return address


@lru_cache(maxsize=64)
def _domain_bytes(chain_id: str, ethereum_chain_id: int | None, registry: bytes | None,
                  cluster_id: int | None) -> bytes:
    chain = chain_id.encode("utf-8")
    if len(chain) > 255:
        raise EnvelopeError("chain id longer than 255 bytes")
    head = SIGNING_DOMAIN + bytes([len(chain)]) + chain
    if registry is None:
        return head + b"\x00"
    if ethereum_chain_id is None or not 0 <= ethereum_chain_id < 2**64:
        raise EnvelopeError(f"the Ethereum chain id {ethereum_chain_id} does not fit in 64 unsigned bits")
    if cluster_id is None or not 0 <= cluster_id < 2**256:
        raise EnvelopeError(f"the cluster id {cluster_id} does not fit in 256 unsigned bits")
    if len(registry) != 20:
        raise EnvelopeError("the Registry is not a 20-byte address")
    return head + b"\x01" + ethereum_chain_id.to_bytes(8, "big") + registry + cluster_id.to_bytes(32, "big")


def as_domain(domain: SigningDomain | str, contract: ContractRef | None = None) -> SigningDomain:
    """A chain id alone (with the contract, if given) or a domain, as a domain."""
    return domain if isinstance(domain, SigningDomain) else SigningDomain.of(domain, contract)


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

    def signed_bytes(self, domain: SigningDomain | str, contract: ContractRef | None = None) -> bytes:
        """What the signature covers: the cluster's domain (a bare chain id is a cluster without
        a contract, unless `contract` is given), then the body."""
        return as_domain(domain, contract).encode() + self.body()

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

    def verify(self, domain: SigningDomain | str, contract: ContractRef | None = None) -> None:
        """Check the signature for this cluster: `domain`, or its chain id with the `contract` it follows."""
        try:
            VerifyKey(self.client).verify(self.signed_bytes(domain, contract), self.signature)
        except BadSignatureError:
            raise EnvelopeError("signature does not match the client key (wrong key, altered bytes, or signed for "
                                "another cluster: chain id, Registry or cluster id)") from None
        except (ValueError, TypeError) as exc:  # not a valid curve point
            raise EnvelopeError(f"client key is not a valid ed25519 public key: {exc}") from None


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
    key: SigningKey, domain: SigningDomain | str, session: bytes, counter: int, call: bytes, kind: Kind = Kind.CALL
) -> Envelope:
    """Sign a call (or a close) for the cluster `domain` names (a bare chain id: a cluster without a contract)."""
    if len(session) != 16:
        raise EnvelopeError(f"session id must be 16 bytes, not {len(session)}")
    if not 0 <= counter <= MAX_COUNTER:
        raise EnvelopeError("counter must fit in 64 unsigned bits")
    unsigned = Envelope(kind, bytes(key.verify_key), session, counter, call, b"")
    return replace(unsigned, signature=key.sign(unsigned.signed_bytes(domain)).signature)
