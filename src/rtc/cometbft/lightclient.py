"""Check CometBFT (v0.39) headers and commits in pure Python: the SDK's light client.

A node's RPC answer is only as trustworthy as that node. What a client can trust is a block
that more than 2/3 of the validators' voting power signed. This module recomputes, byte for
byte as CometBFT's Go code does,

- the header hash (`types.Header.Hash`): an RFC-6962 Merkle root over the 14 header
  fields, each protobuf-encoded on its own (`header_hash`);
- each precommit's sign bytes (`types.VoteSignBytes`): a length-prefixed
  `CanonicalVote` (`vote_sign_bytes`);
- the validator set hash (`types.ValidatorSet.Hash`): a Merkle root over
  `SimpleValidator{pub_key, voting_power}` in the set's order (`validator_set_hash`);
- a block's `data_hash` (`types.Txs.Hash`, `txs_hash`) and the next header's
  `last_results_hash` (`types.NewResults(...).Hash`, `results_hash`);

and then checks the ed25519 signatures of a commit against a validator set
(`verify_commit`). Inputs are the JSON that CometBFT's RPC returns (`/commit`,
`/validators`, `/block`: hex for hashes and addresses, base64 for signatures and keys,
int64 as decimal strings), the generated protobuf messages, or this module's dataclasses.

Semantics of `verify_commit` (see its docstring): by default every signature that is
present is verified, like `types.VerifyCommit`, and one bad signature is an error even if
the valid ones would be enough; `all_signatures=False` reproduces `types.VerifyCommitLight`
exactly (precommits for the block only, in order, stopping once more than 2/3 is reached).
A signature that is checked and invalid is never skipped over.

    with RPC(url) as rpc:  # rtc.cometbft.rpc
        verified = verify_commit(chain_id, rpc.commit(h), rpc.validators(h), trusted_hash, height=h)
    verified.app_hash  # now trusted: the state root after block h-1
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import enum
import hashlib
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey

__all__ = [
    "BLOCK_PROTOCOL",
    "GO_ZERO_TIME",
    "BlockID",
    "BlockIDFlag",
    "Commit",
    "CommitSig",
    "Header",
    "PartSetHeader",
    "SignedHeader",
    "Signer",
    "Timestamp",
    "TxResult",
    "Validator",
    "VerificationError",
    "VerifiedCommit",
    "header_hash",
    "merkle_root",
    "parse_header",
    "parse_signed_header",
    "parse_validators",
    "results_hash",
    "txs_hash",
    "validator_set_hash",
    "verify_commit",
    "vote_sign_bytes",
]

BLOCK_PROTOCOL = 11  # version.BlockProtocol of CometBFT v0.39, whose encodings this module reproduces
PRECOMMIT = 2  # SignedMsgType
MAX_TOTAL_VOTING_POWER = (2**63 - 1) // 8  # types.MaxTotalVotingPower
MAX_CHAIN_ID_LEN = 50
HASH_SIZE = 32
ADDRESS_SIZE = 20
ED25519 = "ed25519"

# JSON key type name (as the RPC writes it) -> (our name, field number in crypto.PublicKey).
_KEY_TYPES = {
    "tendermint/PubKeyEd25519": (ED25519, 1),
    "tendermint/PubKeySecp256k1": ("secp256k1", 2),
    "cometbft/PubKeyBls12_381": ("bls12_381", 3),
}
_KEY_FIELDS = {name: field for name, field in _KEY_TYPES.values()}


class VerificationError(ValueError):
    """The data does not prove what it claims; `kind` names the check that failed.

    Kinds: "malformed", "chain_id", "height", "header_hash", "validators_hash",
    "validator_set", "signature_count", "unknown_validator", "duplicate_signature",
    "address_mismatch", "bad_signature", "unsupported_key", "insufficient_power".
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- value types ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Timestamp:
    """A google.protobuf.Timestamp: exact to the nanosecond, unlike `datetime`."""

    seconds: int
    nanos: int = 0

    _RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII)
    _EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse RFC 3339 with up to 9 fraction digits (Go's `time.RFC3339Nano`, as the RPC writes it)."""
        m = cls._RE.match(text) if isinstance(text, str) else None
        if m is None:
            raise VerificationError("malformed", f"{text!r} is not an RFC 3339 time")
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        try:
            days = _dt.date(year, month, day).toordinal() - cls._EPOCH_ORDINAL
        except ValueError:
            raise VerificationError("malformed", f"{text!r} is not a valid date") from None
        if hour > 23 or minute > 59 or second > 59:
            raise VerificationError("malformed", f"{text!r} is not a valid time of day")
        offset = 0
        if m.group(8) != "Z":
            sign = -1 if m.group(8)[0] == "-" else 1
            offset = sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
        nanos = int((m.group(7) or "").ljust(9, "0"))
        return cls(days * 86400 + hour * 3600 + minute * 60 + second - offset, nanos)

    def __str__(self) -> str:
        d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=self.seconds)
        fraction = f".{self.nanos:09d}".rstrip("0") if self.nanos else ""
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}{fraction}Z"


GO_ZERO_TIME = Timestamp(-62135596800, 0)  # time.Time{} (0001-01-01T00:00:00Z): an absent vote's time


@dataclass(frozen=True)
class PartSetHeader:
    total: int = 0
    hash: bytes = b""


@dataclass(frozen=True)
class BlockID:
    hash: bytes = b""
    part_set_header: PartSetHeader = PartSetHeader()

    def is_zero(self) -> bool:
        return not self.hash and self.part_set_header.total == 0 and not self.part_set_header.hash


@dataclass(frozen=True)
class Header:
    version_block: int
    version_app: int
    chain_id: str
    height: int
    time: Timestamp
    last_block_id: BlockID
    last_commit_hash: bytes
    data_hash: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    consensus_hash: bytes
    app_hash: bytes
    last_results_hash: bytes
    evidence_hash: bytes
    proposer_address: bytes


class BlockIDFlag(enum.IntEnum):
    """What a validator's slot in a commit holds (types.BlockIDFlag)."""

    ABSENT = 1  # no vote received
    COMMIT = 2  # precommit for the committed block: signs the commit's block ID
    NIL = 3  # precommit for nil: signs an empty block ID


@dataclass(frozen=True)
class CommitSig:
    block_id_flag: int
    validator_address: bytes
    timestamp: Timestamp
    signature: bytes


@dataclass(frozen=True)
class Commit:
    height: int
    round: int
    block_id: BlockID
    signatures: tuple[CommitSig, ...]


@dataclass(frozen=True)
class SignedHeader:
    header: Header
    commit: Commit


@dataclass(frozen=True)
class Validator:
    address: bytes
    pub_key: bytes
    voting_power: int
    key_type: str = ED25519


@dataclass(frozen=True)
class Signer:
    """A validator whose precommit for the block was verified."""

    index: int
    address: bytes
    voting_power: int
    timestamp: Timestamp


@dataclass(frozen=True)
class VerifiedCommit:
    """What a successful `verify_commit` proves: this header was committed by these signers."""

    chain_id: str
    height: int
    round: int
    block_id: BlockID
    header: Header
    signers: tuple[Signer, ...]
    signed_power: int
    total_power: int
    all_signatures: bool

    @property
    def block_hash(self) -> bytes:
        return self.block_id.hash

    @property
    def app_hash(self) -> bytes:
        """The state root after block height-1 (what a state proof at height-1 is checked against)."""
        return self.header.app_hash


# -- protobuf wire encoding (only what the hashes and sign bytes need) ----------------------


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def _uvarint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _ONE_BYTE[n]
    n &= 0xFFFFFFFFFFFFFFFF  # a negative int64/int32 is sent as its 64-bit two's complement, as Go does
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _varint_field(field: int, value: int) -> bytes:
    return _uvarint(field << 3) + _uvarint(value) if value else b""


def _sfixed64_field(field: int, value: int) -> bytes:
    return _uvarint(field << 3 | 1) + struct.pack("<q", value) if value else b""


def _bytes_field(field: int, value: bytes, always: bool = False) -> bytes:
    """A length-delimited field; proto3 omits it when empty unless gogoproto made it non-nullable."""
    if not value and not always:
        return b""
    return _uvarint(field << 3 | 2) + _uvarint(len(value)) + value


def _timestamp_bytes(ts: Timestamp) -> bytes:
    return _varint_field(1, ts.seconds) + _varint_field(2, ts.nanos)


def _block_id_bytes(bid: BlockID) -> bytes:
    """BlockID and CanonicalBlockID share this layout; part_set_header is non-nullable, so always present."""
    psh = _varint_field(1, bid.part_set_header.total) + _bytes_field(2, bid.part_set_header.hash)
    return _bytes_field(1, bid.hash) + _bytes_field(2, psh, always=True)


def merkle_root(items: Sequence[bytes]) -> bytes:
    """CometBFT's merkle.HashFromByteSlices: RFC 6962 with SHA-256, leaf 0x00 and inner 0x01 prefixes."""
    n = len(items)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + items[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two below n
    return hashlib.sha256(b"\x01" + merkle_root(items[:k]) + merkle_root(items[k:])).digest()


# -- the three encodings --------------------------------------------------------------------


def header_hash(header: Header | Mapping[str, Any] | Any) -> bytes:
    """types.Header.Hash(): the block hash that the commit's block_id.hash must equal.

    Each field is encoded on its own: the version as a `version.Consensus` message, the time
    as a `google.protobuf.Timestamp`, the last block ID as a `BlockID` message, and every
    other field wrapped like `cdcEncode` does (StringValue / Int64Value / BytesValue, all
    with the value in field 1 and nothing at all for an empty value).
    """
    h = parse_header(header)
    if not h.validators_hash:
        # Go returns a nil hash here; no commit can sign a header without validators.
        raise VerificationError("malformed", "header has no validators_hash, so it has no hash")
    return merkle_root([
        _varint_field(1, h.version_block) + _varint_field(2, h.version_app),
        _bytes_field(1, h.chain_id.encode()),
        _varint_field(1, h.height),
        _timestamp_bytes(h.time),
        _block_id_bytes(h.last_block_id),
        _bytes_field(1, h.last_commit_hash),
        _bytes_field(1, h.data_hash),
        _bytes_field(1, h.validators_hash),
        _bytes_field(1, h.next_validators_hash),
        _bytes_field(1, h.consensus_hash),
        _bytes_field(1, h.app_hash),
        _bytes_field(1, h.last_results_hash),
        _bytes_field(1, h.evidence_hash),
        _bytes_field(1, h.proposer_address),
    ])


def vote_sign_bytes(
    chain_id: str,
    commit_sig: CommitSig | Mapping[str, Any] | Any,
    height: int,
    round: int,
    block_id: BlockID | Mapping[str, Any] | Any,
    *,
    msg_type: int = PRECOMMIT,
) -> bytes:
    """types.VoteSignBytes for one slot of a commit: the bytes its validator signed.

    A varint-length-prefixed `CanonicalVote`: type, height and round as sfixed64, the block
    ID (only for BlockIDFlag COMMIT; a nil vote carries none, not an empty one), the vote's
    own timestamp (always present, even when zero), then the chain ID.
    """
    sig = _commit_sig(commit_sig, "commit signature")
    bid = _block_id(block_id, "block_id")
    if sig.block_id_flag == BlockIDFlag.COMMIT:
        signed_bid: BlockID | None = bid
    elif sig.block_id_flag == BlockIDFlag.NIL:
        signed_bid = None
    else:
        raise VerificationError("malformed", f"a commit signature with block_id_flag {sig.block_id_flag} has no vote to sign")
    canonical = b"".join([
        _varint_field(1, msg_type),
        _sfixed64_field(2, height),
        _sfixed64_field(3, round),
        # CanonicalizeBlockID maps a zero block ID to nil, so it is left out entirely.
        b"" if signed_bid is None or signed_bid.is_zero() else _bytes_field(4, _block_id_bytes(signed_bid), always=True),
        _bytes_field(5, _timestamp_bytes(sig.timestamp), always=True),
        _bytes_field(6, chain_id.encode()),
    ])
    return _uvarint(len(canonical)) + canonical


def validator_set_hash(validators: Sequence[Validator] | Mapping[str, Any] | Iterable[Any]) -> bytes:
    """types.ValidatorSet.Hash(): the Merkle root of SimpleValidator{pub_key, voting_power}, in the given order.

    CometBFT's order is voting power descending, then address ascending; the /validators
    RPC returns that order. The address is not hashed (it derives from the key).
    """
    leaves = []
    for v in parse_validators(validators):
        field = _KEY_FIELDS.get(v.key_type)
        if field is None:
            raise VerificationError("unsupported_key", f"unknown key type {v.key_type!r}")
        pub_key = _bytes_field(field, v.pub_key, always=True)  # a set oneof field is always written
        leaves.append(_bytes_field(1, pub_key, always=True) + _varint_field(2, v.voting_power))
    return merkle_root(leaves)


def txs_hash(txs: Sequence[bytes]) -> bytes:
    """types.Txs.Hash(): a block's `data_hash`, the Merkle root over the SHA-256 of each transaction."""
    return merkle_root([hashlib.sha256(tx).digest() for tx in txs])


@dataclass(frozen=True)
class TxResult:
    """The deterministic part of an ExecTxResult: what `last_results_hash` commits to."""

    code: int
    data: bytes
    gas_wanted: int
    gas_used: int


def results_hash(results: Sequence[TxResult]) -> bytes:
    """types.ABCIResults.Hash(): the next header's `last_results_hash`, a Merkle root over
    each result's deterministic fields encoded as an ExecTxResult (code 1, data 2,
    gas_wanted 5, gas_used 6)."""
    return merkle_root([
        _varint_field(1, r.code) + _bytes_field(2, r.data) + _varint_field(5, r.gas_wanted) + _varint_field(6, r.gas_used)
        for r in results
    ])


# -- verification ---------------------------------------------------------------------------


def verify_commit(
    chain_id: str,
    signed_header: SignedHeader | Mapping[str, Any] | Any,
    validators: Sequence[Validator] | Mapping[str, Any] | Iterable[Any],
    trusted_validators_hash: bytes | str | None = None,
    *,
    height: int | None = None,
    all_signatures: bool = True,
) -> VerifiedCommit:
    """Check that more than 2/3 of `validators`' voting power signed this header; raise VerificationError otherwise.

    Checks, in order: the header and commit are well formed and for `chain_id` (and for
    `height`, when given); header and commit are for the same height; the header hashes to
    the block ID the commit signs; the validator set is well formed (addresses derive from
    ed25519 keys, no duplicates, positive powers) and hashes to the header's
    validators_hash (and to `trusted_validators_hash`, when given, e.g. the
    next_validators_hash of a header already trusted); the commit has one slot per
    validator, each from the validator at that index; then the signatures.

    `all_signatures=True` (default; types.VerifyCommit): every present signature, for the
    block or for nil, is verified, and any invalid one is an error even when the others
    would reach 2/3. A provider that serves one forged signature is not trusted for the
    rest, and the answer does not depend on the order of the signatures.

    `all_signatures=False` (types.VerifyCommitLight): only precommits for the block, in
    order, until more than 2/3 is reached; later slots (and nil votes) are never looked at,
    so a forged signature there goes unnoticed, while a forged one that is reached is an
    error. `signers` then lists only the validators that were checked.

    Only precommits for the block count towards the 2/3 (strictly more than
    total * 2 // 3, as CometBFT computes it).
    """
    sh = parse_signed_header(signed_header)
    vals = parse_validators(validators)
    header, commit = sh.header, sh.commit

    _check_header_basic(header)
    _check_commit_basic(commit)
    if header.chain_id != chain_id:
        raise VerificationError("chain_id", f"header is for chain {header.chain_id!r}, not {chain_id!r}")
    if header.height != commit.height:
        raise VerificationError("height", f"header is for height {header.height} but the commit is for height {commit.height}")
    if height is not None and header.height != height:
        raise VerificationError("height", f"header and commit are for height {header.height}, not the requested {height}")
    block_hash = header_hash(header)
    if block_hash != commit.block_id.hash:
        raise VerificationError(
            "header_hash", f"commit signs block {commit.block_id.hash.hex().upper()} but the header hashes to {block_hash.hex().upper()}"
        )

    total_power = _check_validator_set(vals)
    vals_hash = validator_set_hash(vals)
    if vals_hash != header.validators_hash:
        raise VerificationError(
            "validators_hash",
            f"validator set hashes to {vals_hash.hex().upper()}, header {header.height} has validators_hash "
            f"{header.validators_hash.hex().upper()}",
        )
    if trusted_validators_hash is not None:
        trusted = _hex(trusted_validators_hash, "trusted_validators_hash") if isinstance(trusted_validators_hash, str) else bytes(trusted_validators_hash)
        if vals_hash != trusted:
            raise VerificationError(
                "validators_hash", f"validator set hashes to {vals_hash.hex().upper()}, not the trusted {trusted.hex().upper()}"
            )
    if len(commit.signatures) != len(vals):
        raise VerificationError(
            "signature_count", f"commit has {len(commit.signatures)} signature slots for {len(vals)} validators"
        )

    index_of = {v.address: i for i, v in enumerate(vals)}
    needed = total_power * 2 // 3
    signed_power = 0
    signers: list[Signer] = []
    for idx, sig in enumerate(commit.signatures):
        if sig.block_id_flag == BlockIDFlag.ABSENT:
            continue
        if not all_signatures and sig.block_id_flag != BlockIDFlag.COMMIT:
            continue
        val = vals[idx]
        if sig.validator_address != val.address:
            owner = index_of.get(sig.validator_address)
            if owner is None:
                raise VerificationError(
                    "unknown_validator", f"signature #{idx} is from {sig.validator_address.hex().upper()}, which is not in the validator set"
                )
            if commit.signatures[owner].validator_address == sig.validator_address:
                raise VerificationError(
                    "duplicate_signature", f"validator {sig.validator_address.hex().upper()} signs twice (#{owner} and #{idx})"
                )
            raise VerificationError(
                "address_mismatch",
                f"signature #{idx} is from {sig.validator_address.hex().upper()}, but validator #{idx} is {val.address.hex().upper()}",
            )
        message = vote_sign_bytes(chain_id, sig, commit.height, commit.round, commit.block_id)
        if not _ed25519_valid(val.pub_key, message, sig.signature):
            kind = "for the block" if sig.block_id_flag == BlockIDFlag.COMMIT else "for nil"
            raise VerificationError(
                "bad_signature", f"wrong signature #{idx} (precommit {kind} by {val.address.hex().upper()})"
            )
        if sig.block_id_flag == BlockIDFlag.COMMIT:
            signed_power += val.voting_power
            signers.append(Signer(idx, val.address, val.voting_power, sig.timestamp))
            if not all_signatures and signed_power > needed:
                break
    if signed_power <= needed:
        raise VerificationError(
            "insufficient_power",
            f"valid precommits for the block carry {signed_power} of {total_power} voting power; more than {needed} is needed",
        )
    return VerifiedCommit(
        chain_id, commit.height, commit.round, commit.block_id, header, tuple(signers), signed_power, total_power, all_signatures
    )


def _ed25519_valid(pub_key: bytes, message: bytes, signature: bytes) -> bool:
    # libsodium's check is at least as strict as CometBFT's ZIP-215 rules: it never accepts
    # a signature CometBFT rejects (it may refuse an adversarial edge case CometBFT accepts).
    if len(signature) != 64:
        return False
    try:
        VerifyKey(pub_key).verify(message, signature)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


def _check_header_basic(h: Header) -> None:
    """The parts of types.Header.ValidateBasic that decide whether our encoding applies."""
    if h.version_block != BLOCK_PROTOCOL:
        raise VerificationError(
            "malformed", f"header uses block protocol {h.version_block}; this client checks protocol {BLOCK_PROTOCOL} (CometBFT v0.39)"
        )
    if len(h.chain_id.encode()) > MAX_CHAIN_ID_LEN:
        raise VerificationError("malformed", f"chain ID is longer than {MAX_CHAIN_ID_LEN} bytes")
    if h.height <= 0:
        raise VerificationError("malformed", f"header height {h.height} is not positive")
    for name in ("last_commit_hash", "data_hash", "validators_hash", "next_validators_hash", "consensus_hash",
                 "last_results_hash", "evidence_hash"):
        if len(getattr(h, name)) not in (0, HASH_SIZE):
            raise VerificationError("malformed", f"header {name} is {len(getattr(h, name))} bytes, not {HASH_SIZE}")
    if not h.validators_hash:
        raise VerificationError("malformed", "header has no validators_hash")
    for name, value in (("last_block_id hash", h.last_block_id.hash), ("last_block_id parts hash", h.last_block_id.part_set_header.hash)):
        if len(value) not in (0, HASH_SIZE):
            raise VerificationError("malformed", f"header {name} is {len(value)} bytes, not {HASH_SIZE}")
    if len(h.proposer_address) != ADDRESS_SIZE:
        raise VerificationError("malformed", f"header proposer_address is {len(h.proposer_address)} bytes, not {ADDRESS_SIZE}")


def _check_commit_basic(c: Commit) -> None:
    """types.Commit.ValidateBasic, CommitSig.ValidateBasic included."""
    if c.height <= 0:
        raise VerificationError("malformed", f"commit height {c.height} is not positive")
    if c.round < 0:
        raise VerificationError("malformed", f"commit round {c.round} is negative")
    if c.block_id.is_zero():
        raise VerificationError("malformed", "commit is for a nil block")
    if len(c.block_id.hash) != HASH_SIZE:
        raise VerificationError("malformed", f"commit block hash is {len(c.block_id.hash)} bytes, not {HASH_SIZE}")
    if len(c.block_id.part_set_header.hash) not in (0, HASH_SIZE):
        raise VerificationError("malformed", f"commit part set hash is {len(c.block_id.part_set_header.hash)} bytes, not {HASH_SIZE}")
    if not c.signatures:
        raise VerificationError("malformed", "commit has no signatures")
    for idx, sig in enumerate(c.signatures):
        if sig.block_id_flag == BlockIDFlag.ABSENT:
            if sig.validator_address or sig.signature or sig.timestamp != GO_ZERO_TIME:
                raise VerificationError("malformed", f"signature #{idx} is marked absent but carries an address, time or signature")
        elif sig.block_id_flag in (BlockIDFlag.COMMIT, BlockIDFlag.NIL):
            if len(sig.validator_address) != ADDRESS_SIZE:
                raise VerificationError("malformed", f"signature #{idx} has a {len(sig.validator_address)}-byte validator address")
            if not sig.signature:
                raise VerificationError("malformed", f"signature #{idx} is missing")
        else:
            raise VerificationError("malformed", f"signature #{idx} has unknown block_id_flag {sig.block_id_flag}")


def _check_validator_set(vals: Sequence[Validator]) -> int:
    """types.ValidatorSet.ValidateBasic plus the set's invariants; returns the total voting power."""
    if not vals:
        raise VerificationError("validator_set", "validator set is empty")
    seen: dict[bytes, int] = {}
    total = 0
    for idx, v in enumerate(vals):
        if v.key_type != ED25519:
            raise VerificationError("unsupported_key", f"validator #{idx} has a {v.key_type} key; only ed25519 is supported")
        if len(v.pub_key) != 32:
            raise VerificationError("validator_set", f"validator #{idx} has a {len(v.pub_key)}-byte ed25519 key")
        derived = hashlib.sha256(v.pub_key).digest()[:ADDRESS_SIZE]
        if v.address != derived:
            raise VerificationError(
                "validator_set", f"validator #{idx} address {v.address.hex().upper()} is not derived from its key ({derived.hex().upper()})"
            )
        if v.address in seen:
            raise VerificationError("validator_set", f"validator {v.address.hex().upper()} is listed twice (#{seen[v.address]} and #{idx})")
        seen[v.address] = idx
        if v.voting_power <= 0:
            raise VerificationError("validator_set", f"validator #{idx} has voting power {v.voting_power}")
        total += v.voting_power
    if total > MAX_TOTAL_VOTING_POWER:
        raise VerificationError("validator_set", f"total voting power {total} exceeds CometBFT's maximum {MAX_TOTAL_VOTING_POWER}")
    return total


# -- parsing: RPC JSON, generated protobuf messages, or our dataclasses ---------------------


def _is_proto(obj: Any) -> bool:
    return hasattr(obj, "DESCRIPTOR") and hasattr(obj, "SerializeToString")


def _unwrap(obj: Any) -> Any:
    """Accept a whole JSON-RPC response as well as its `result`."""
    if isinstance(obj, Mapping) and "jsonrpc" in obj:
        if "error" in obj:
            raise VerificationError("malformed", f"the RPC answered with an error: {obj['error']}")
        return obj.get("result")
    return obj


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise VerificationError("malformed", f"{where} is {type(obj).__name__}, not a JSON object")
    if key not in obj:
        raise VerificationError("malformed", f"{where} has no {key!r}")
    return obj[key]


def _int(value: Any, where: str, lo: int = -(2**63), hi: int = 2**63 - 1) -> int:
    """JSON integers: the RPC writes int64/uint64 as decimal strings and int32 as numbers."""
    if isinstance(value, bool):
        raise VerificationError("malformed", f"{where} is a boolean, not an integer")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        n = int(value)
    else:
        raise VerificationError("malformed", f"{where} is {value!r}, not an integer")
    if not lo <= n <= hi:
        raise VerificationError("malformed", f"{where} {n} is out of range")
    return n


_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})*")


def _hex(value: Any, where: str) -> bytes:
    """HexBytes fields (hashes, addresses): hex, upper case from the RPC, "" when empty."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise VerificationError("malformed", f"{where} is {type(value).__name__}, not a hex string")
    if not _HEX_RE.fullmatch(value):
        raise VerificationError("malformed", f"{where} {value!r} is not hex")
    return bytes.fromhex(value)


def _b64(value: Any, where: str) -> bytes:
    """[]byte fields (signatures, key values): standard base64, null when empty."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise VerificationError("malformed", f"{where} is {type(value).__name__}, not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("malformed", f"{where} {value!r} is not base64") from None


def _timestamp(value: Any, where: str) -> Timestamp:
    if isinstance(value, Timestamp):
        return value
    if _is_proto(value):
        return Timestamp(value.seconds, value.nanos)
    if isinstance(value, str):
        try:
            return Timestamp.parse(value)
        except VerificationError as exc:
            raise VerificationError("malformed", f"{where}: {exc}") from None
    raise VerificationError("malformed", f"{where} is {type(value).__name__}, not a time")


def _block_id(value: Any, where: str) -> BlockID:
    if isinstance(value, BlockID):
        return value
    if _is_proto(value):
        psh = value.part_set_header
        return BlockID(bytes(value.hash), PartSetHeader(psh.total, bytes(psh.hash)))
    parts = value.get("parts", value.get("part_set_header")) if isinstance(value, Mapping) else None
    if parts is None:
        raise VerificationError("malformed", f"{where} has no 'parts'")
    return BlockID(
        _hex(_get(value, "hash", where), f"{where}.hash"),
        PartSetHeader(
            _int(_get(parts, "total", f"{where}.parts"), f"{where}.parts.total", 0, 2**32 - 1),
            _hex(_get(parts, "hash", f"{where}.parts"), f"{where}.parts.hash"),
        ),
    )


def parse_header(obj: Header | Mapping[str, Any] | Any) -> Header:
    """A header from the RPC's JSON (e.g. `/commit` → signed_header.header, `/block` → block.header) or a types_pb2.Header."""
    if isinstance(obj, Header):
        return obj
    if _is_proto(obj):
        pb: Any = obj
        return Header(
            pb.version.block, pb.version.app, pb.chain_id, pb.height, Timestamp(pb.time.seconds, pb.time.nanos),
            _block_id(pb.last_block_id, "last_block_id"), bytes(pb.last_commit_hash), bytes(pb.data_hash),
            bytes(pb.validators_hash), bytes(pb.next_validators_hash), bytes(pb.consensus_hash), bytes(pb.app_hash),
            bytes(pb.last_results_hash), bytes(pb.evidence_hash), bytes(pb.proposer_address),
        )
    w = "header"
    version = _get(obj, "version", w)
    if not isinstance(version, Mapping):
        raise VerificationError("malformed", "header.version is not a JSON object")
    chain_id = _get(obj, "chain_id", w)
    if not isinstance(chain_id, str):
        raise VerificationError("malformed", "header.chain_id is not a string")
    return Header(
        # Consensus{block, app} are `omitempty` in Go's JSON: a missing one is zero.
        version_block=_int(version.get("block", 0), "header.version.block", 0, 2**64 - 1),
        version_app=_int(version.get("app", 0), "header.version.app", 0, 2**64 - 1),
        chain_id=chain_id,
        height=_int(_get(obj, "height", w), "header.height"),
        time=_timestamp(_get(obj, "time", w), "header.time"),
        last_block_id=_block_id(_get(obj, "last_block_id", w), "header.last_block_id"),
        **{
            name: _hex(_get(obj, name, w), f"header.{name}")
            for name in ("last_commit_hash", "data_hash", "validators_hash", "next_validators_hash", "consensus_hash",
                         "app_hash", "last_results_hash", "evidence_hash", "proposer_address")
        },
    )


def _commit_sig(obj: Any, where: str) -> CommitSig:
    if isinstance(obj, CommitSig):
        return obj
    if _is_proto(obj):
        return CommitSig(
            int(obj.block_id_flag), bytes(obj.validator_address), Timestamp(obj.timestamp.seconds, obj.timestamp.nanos),
            bytes(obj.signature),
        )
    return CommitSig(
        _int(_get(obj, "block_id_flag", where), f"{where}.block_id_flag", 0, 2**31 - 1),
        _hex(_get(obj, "validator_address", where), f"{where}.validator_address"),
        _timestamp(_get(obj, "timestamp", where), f"{where}.timestamp"),
        _b64(_get(obj, "signature", where), f"{where}.signature"),
    )


def _commit(obj: Any) -> Commit:
    if isinstance(obj, Commit):
        return obj
    if _is_proto(obj):
        return Commit(
            obj.height, obj.round, _block_id(obj.block_id, "commit.block_id"),
            tuple(_commit_sig(s, f"commit.signatures[{i}]") for i, s in enumerate(obj.signatures)),
        )
    signatures = _get(obj, "signatures", "commit")
    if not isinstance(signatures, list):
        raise VerificationError("malformed", "commit.signatures is not a list")
    return Commit(
        _int(_get(obj, "height", "commit"), "commit.height"),
        _int(_get(obj, "round", "commit"), "commit.round", -(2**31), 2**31 - 1),
        _block_id(_get(obj, "block_id", "commit"), "commit.block_id"),
        tuple(_commit_sig(s, f"commit.signatures[{i}]") for i, s in enumerate(signatures)),
    )


def parse_signed_header(obj: SignedHeader | Mapping[str, Any] | Any) -> SignedHeader:
    """A header and its commit from `/commit` (the response, its result, or result.signed_header) or a types_pb2.SignedHeader."""
    if isinstance(obj, SignedHeader):
        return obj
    obj = _unwrap(obj)
    if isinstance(obj, Mapping) and "signed_header" in obj:
        obj = obj["signed_header"]
    if _is_proto(obj):
        return SignedHeader(parse_header(obj.header), _commit(obj.commit))
    return SignedHeader(parse_header(_get(obj, "header", "signed_header")), _commit(_get(obj, "commit", "signed_header")))


def _validator(obj: Any, where: str) -> Validator:
    if isinstance(obj, Validator):
        return obj
    if _is_proto(obj):
        which = obj.pub_key.WhichOneof("sum")
        key_type = {"ed25519": ED25519, "secp256k1": "secp256k1", "bls12381": "bls12_381"}.get(which or "")
        if key_type is None:
            raise VerificationError("unsupported_key", f"{where} has no public key")
        return Validator(bytes(obj.address), bytes(getattr(obj.pub_key, which)), obj.voting_power, key_type)
    pub_key = _get(obj, "pub_key", where)
    type_name = _get(pub_key, "type", f"{where}.pub_key")
    if not isinstance(type_name, str) or type_name not in _KEY_TYPES:
        raise VerificationError("unsupported_key", f"{where} has an unknown key type {type_name!r}")
    return Validator(
        _hex(_get(obj, "address", where), f"{where}.address"),
        _b64(_get(pub_key, "value", f"{where}.pub_key"), f"{where}.pub_key.value"),
        _int(_get(obj, "voting_power", where), f"{where}.voting_power"),
        _KEY_TYPES[type_name][0],
    )


def parse_validators(obj: Sequence[Validator] | Mapping[str, Any] | Iterable[Any]) -> tuple[Validator, ...]:
    """A validator set from `/validators` (the response or its result), a list of its entries, or protobuf.

    Refuses one page of a paginated answer: a partial set can never hash to validators_hash,
    and saying so is clearer than a hash mismatch.
    """
    obj = _unwrap(obj)
    pb: Any = obj
    if _is_proto(pb) and pb.DESCRIPTOR.name == "ValidatorSet":
        obj = list(pb.validators)
    elif isinstance(obj, Mapping):
        entries = _get(obj, "validators", "validators result")
        if "total" in obj and "count" in obj and _int(obj["total"], "total") != _int(obj["count"], "count"):
            raise VerificationError(
                "validator_set", f"this is one page ({obj['count']} of {obj['total']} validators); fetch every page of /validators"
            )
        obj = entries
    if isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        raise VerificationError("malformed", f"validators is {type(obj).__name__}, not a list")
    return tuple(_validator(v, f"validators[{i}]") for i, v in enumerate(obj))
