"""A member's statement, on its Ethereum key, of the state it accepted (EIP-712).

CometBFT's signatures are ed25519, which an Ethereum contract cannot check cheaply, so
every member also signs with a secp256k1 key registered for it (its *attester*) the typed
structure

    Attestation(address registry, uint256 clusterId, uint64 height, bytes32 appHash,
                bytes32 record, bytes32 codeHash)

under the EIP-712 domain

    EIP712Domain(string name, string version, uint256 chainId, address verifyingContract)
    name = "rtc-attestation", version = "1", chainId = the Ethereum chain,
    verifyingContract = the contract that checks checkpoints

`height` is the block whose state is attested (its `app_hash` is in header height+1),
`record` the Swarm reference of that block's history record and `codeHash` the backend's
code hash, so an attestation holds for one state of one cluster of one Registry on one
chain, and a contract recovers its signer with one `ecrecover` (~4,000 gas).

A signature is the 65 bytes r || s || v (v = 27 or 28), with s in the lower half of the
curve order: the form `ecrecover` and every Ethereum wallet use, and the only one accepted
here, so that a signature cannot be changed into a second valid one.

How attestations travel (docs/validation.md). A member's precommit for height H carries, as
its vote extension, its attestation of height H-2 (the newest state whose history record it
can build then):

    offset  size  field                      (VoteExtension; empty: no attestation this time)
    0       8     height (u64, big-endian)
    8       32    app_hash
    40      32    record (Swarm reference)
    72      65    signature

and the proposer of H+1 gathers them into one transaction of its block:

    offset  size  field                      (AttestationTx)
    0       4     magic b"ATT\\x01"
    4       8     height (u64, big-endian)
    12      32    app_hash
    44      32    record
    76      1     n, the number of signatures (1..16)
    77      65*n  signatures, by signer address strictly ascending (as the contract takes them)

The rest of what is signed (registry, cluster, code hash, chain, contract) is the cluster's
and is not repeated. Decoding checks the bytes; who signed is checked apart, by recovering
each signer (`Attestation.signer`) and looking it up among the members.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak

NAME, VERSION = "rtc-attestation", "1"
DOMAIN_TYPE = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
ATTESTATION_TYPE = keccak(
    text="Attestation(address registry,uint256 clusterId,uint64 height,bytes32 appHash,bytes32 record,bytes32 codeHash)")
ATTESTER_TYPE = keccak(text="AttesterOf(address registry,uint256 chainId,uint256 nodeId)")
SIGNATURE_BYTES = 65
ATTESTATION_MAGIC = b"ATT\x01"
_STATE = struct.Struct(">Q32s32s")  # height, app_hash, record
_TX_HEADER = struct.Struct(">4sQ32s32sB")
MAX_SIGNATURES = 16  # a cluster's most members
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 n
HALF_ORDER = ORDER // 2


class AttestationError(ValueError):
    """Not a well-formed attestation signature, or not one by the key it should be; the message says why."""


def _word(value: int, bits: int = 256) -> bytes:
    if not 0 <= value < 2**bits:
        raise AttestationError(f"{value} does not fit in uint{bits}")
    return value.to_bytes(32, "big")


def _address(value: bytes) -> bytes:
    if len(value) != 20:
        raise AttestationError(f"an address is 20 bytes, not {len(value)}")
    return bytes(12) + value


def _bytes32(value: bytes, name: str) -> bytes:
    if len(value) != 32:
        raise AttestationError(f"{name} is 32 bytes, not {len(value)}")
    return value


@dataclass(frozen=True)
class AttestationDomain:
    """Where attestations are checked: the Ethereum chain and the checkpoint contract."""

    ethereum_chain_id: int
    verifying_contract: bytes  # 20 bytes

    @cached_property
    def separator(self) -> bytes:
        """EIP-712 `domainSeparator`."""
        return keccak(DOMAIN_TYPE + keccak(text=NAME) + keccak(text=VERSION)
                      + _word(self.ethereum_chain_id) + _address(self.verifying_contract))


@dataclass(frozen=True)
class Attestation:
    """The state a member accepted: what it signs."""

    registry: bytes  # 20 bytes
    cluster_id: int
    height: int
    app_hash: bytes  # 32 bytes
    record: bytes  # 32 bytes: the Swarm reference of the block's history record
    code_hash: bytes  # 32 bytes

    def struct_hash(self) -> bytes:
        """EIP-712 `hashStruct`."""
        return keccak(ATTESTATION_TYPE + _address(self.registry) + _word(self.cluster_id) + _word(self.height, 64)
                      + _bytes32(self.app_hash, "app_hash") + _bytes32(self.record, "record")
                      + _bytes32(self.code_hash, "code_hash"))

    def digest(self, domain: AttestationDomain) -> bytes:
        """The 32 bytes that are signed: keccak256("\\x19\\x01" || domainSeparator || hashStruct)."""
        return keccak(b"\x19\x01" + domain.separator + self.struct_hash())

    def sign(self, key: bytes, domain: AttestationDomain) -> bytes:
        """r || s || v with the 32-byte secp256k1 private key `key` (deterministic, RFC 6979)."""
        return _sign(key, self.digest(domain))

    def signer(self, signature: bytes, domain: AttestationDomain) -> bytes:
        """The address that made `signature` over this attestation; AttestationError if it is malformed."""
        r, s, v = split_signature(signature)
        try:
            public = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(self.digest(domain))
        except (BadSignature, ValidationError) as exc:
            raise AttestationError(f"the signature recovers no key: {exc}") from None
        return public.to_canonical_address()


def split_signature(signature: bytes) -> tuple[int, int, int]:
    """(r, s, v) of a 65-byte signature in the one accepted form; AttestationError otherwise."""
    if len(signature) != SIGNATURE_BYTES:
        raise AttestationError(f"an attestation signature is {SIGNATURE_BYTES} bytes, not {len(signature)}")
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if v not in (27, 28):
        raise AttestationError(f"v must be 27 or 28, not {v}")
    if not 0 < r < ORDER or not 0 < s <= HALF_ORDER:
        raise AttestationError("r or s is out of range (s must be in the lower half of the curve order)")
    return r, s, v


def attester_proof(key: bytes, registry: bytes, ethereum_chain_id: int, node_id: int) -> bytes:
    """The attester key's signature that `Registry.set_attester` asks for: it shows the key is
    the node's, so nobody can register another node's key as theirs."""
    return _sign(key, keccak(ATTESTER_TYPE + _address(registry) + _word(ethereum_chain_id) + _word(node_id)))


def address_of(key: bytes) -> bytes:
    """The Ethereum address of a 32-byte secp256k1 private key."""
    return _private(key).public_key.to_canonical_address()


def _private(key: bytes) -> keys.PrivateKey:
    try:
        return keys.PrivateKey(key)
    except (ValidationError, ValueError) as exc:
        raise AttestationError(f"not a secp256k1 private key: {exc}") from None


def _sign(key: bytes, digest: bytes) -> bytes:
    signature = _private(key).sign_msg_hash(digest)
    return signature.r.to_bytes(32, "big") + signature.s.to_bytes(32, "big") + bytes([27 + signature.v])


@dataclass(frozen=True)
class AttestedState:
    """What one height's attestations agree on; the cluster's identity completes it (`attestation`)."""

    height: int
    app_hash: bytes
    record: bytes

    def attestation(self, registry: bytes, cluster_id: int, code_hash: bytes) -> Attestation:
        return Attestation(registry, cluster_id, self.height, self.app_hash, self.record, code_hash)

    def pack(self) -> bytes:
        return _STATE.pack(self.height, _bytes32(self.app_hash, "app_hash"), _bytes32(self.record, "record"))


@dataclass(frozen=True)
class VoteExtension:
    """One member's attestation, as its precommit carries it."""

    state: AttestedState
    signature: bytes

    SIZE = _STATE.size + SIGNATURE_BYTES

    def encode(self) -> bytes:
        return self.state.pack() + self.signature

    @classmethod
    def decode(cls, data: bytes) -> "VoteExtension":
        if len(data) != cls.SIZE:
            raise AttestationError(f"a vote extension is {cls.SIZE} bytes (or empty), not {len(data)}")
        height, app_hash, record = _STATE.unpack_from(data)
        signature = data[_STATE.size:]
        split_signature(signature)
        return cls(AttestedState(height, app_hash, record), signature)


@dataclass(frozen=True)
class AttestationTx:
    """The attestations of one height that a block carries (and so its history record)."""

    state: AttestedState
    signatures: tuple[bytes, ...]

    def encode(self) -> bytes:
        return (_TX_HEADER.pack(ATTESTATION_MAGIC, self.state.height, self.state.app_hash, self.state.record,
                                len(self.signatures)) + b"".join(self.signatures))

    @classmethod
    def decode(cls, tx: bytes) -> "AttestationTx":
        if len(tx) < _TX_HEADER.size or tx[:4] != ATTESTATION_MAGIC:
            raise AttestationError("not an attestation transaction")
        _, height, app_hash, record, count = _TX_HEADER.unpack_from(tx)
        if not 1 <= count <= MAX_SIGNATURES:
            raise AttestationError(f"an attestation transaction holds 1 to {MAX_SIGNATURES} signatures, not {count}")
        if len(tx) != _TX_HEADER.size + SIGNATURE_BYTES * count:
            raise AttestationError(f"an attestation transaction of {len(tx)} bytes does not hold the {count} "
                                   "signatures its header announces")
        signatures = tuple(tx[_TX_HEADER.size + i * SIGNATURE_BYTES: _TX_HEADER.size + (i + 1) * SIGNATURE_BYTES]
                           for i in range(count))
        for signature in signatures:
            split_signature(signature)
        return cls(AttestedState(height, app_hash, record), signatures)


def is_attestation_tx(tx: bytes) -> bool:
    return tx[:4] == ATTESTATION_MAGIC
