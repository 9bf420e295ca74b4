"""Attesting the cluster's state on the members' Ethereum keys, inside consensus (docs/validation.md).

CometBFT's vote extensions carry them: with its precommit for height H, a member signs
(EIP-712, `rtc.protocol.attestation`) the state after height H-2, the newest whose history
record it can build then (record H-2 holds the canonical commit that block H-1 carries).
The proposer of H+1 gathers the extensions of H's precommits into one transaction of its
block, so the attestations land in the block's history record, and a member posts every
K-th height's to the Validation contract as a checkpoint (`rtc.node.checkpoints`).

What a node refuses must be refused alike by every correct node, or the chain loses
liveness, so each check rests on what the committed state decides: the signer is the
attester the membership names for that validator, and the height is the one due. The
app_hash and record are compared with this node's own when it has them (the roots of its
store's last commits, the records its uploader built): a correct member's always match, so
only a faulty member's attestation can meet different answers at different nodes. An
attestation that was not made (the node's uploader lags, or it has no attester yet) is an
empty extension, which is always accepted: checkpoints need more than 2/3 of the members,
not all of them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtc.membership import Membership
from rtc.protocol.attestation import (
    AttestationDomain, AttestationError, AttestationTx, AttestedState, VoteExtension, address_of,
)

if TYPE_CHECKING:
    from rtc.history import RecordReferences
    from rtc.state import StateStore

    from .config import ClusterSettings

log = logging.getLogger("rtc.node")

ATTESTER_KEY_NAME = "attester_key"  # in the node's config/: the secp256k1 key it attests with
ATTESTED_LAG = 2  # ExtendVote(H) attests the state after height H - 2
RECORD_WAIT_SECONDS = 0.05  # how long ExtendVote waits for the uploader to build the record it signs


def validator_address(key: bytes) -> bytes:
    """CometBFT's address of an ed25519 validator key (what vote infos name validators by)."""
    return hashlib.sha256(key).digest()[:20]


@dataclass(frozen=True)
class AttestationRules:
    """What an attestation of this cluster signs besides the state: from the genesis, alike on every node."""

    registry: bytes
    cluster_id: int
    code_hash: bytes
    domain: AttestationDomain

    @classmethod
    def of(cls, settings: ClusterSettings, code_hash: bytes) -> AttestationRules | None:
        """The cluster's rules, or None when its genesis names no Validation contract (no attestations)."""
        ethereum = settings.ethereum
        if ethereum is None or ethereum.validation is None:
            return None
        return cls(_address(ethereum.registry), ethereum.cluster_id, code_hash,
                   AttestationDomain(ethereum.chain_id, _address(ethereum.validation)))

    def sign(self, key: bytes, state: AttestedState) -> bytes:
        return state.attestation(self.registry, self.cluster_id, self.code_hash).sign(key, self.domain)

    def signer(self, state: AttestedState, signature: bytes) -> bytes:
        return state.attestation(self.registry, self.cluster_id, self.code_hash).signer(signature, self.domain)


class Attestations:
    """The app's part: making this node's extension, checking others', gathering them into a block."""

    def __init__(self, rules: AttestationRules, store: StateStore, references: RecordReferences | None,
                 key: bytes | None, validator_key: bytes | None) -> None:
        self.rules = rules
        self.store = store
        self.references = references  # None: this node builds no records, so it cannot attest
        self.key = key
        self.address = address_of(key) if key is not None else None
        self.validator_key = validator_key
        self._unregistered_logged = False

    # -- this node's own -------------------------------------------------------------

    def own_state(self, height: int, wait: float = 0.0) -> AttestedState | None:
        """The state after `height` as this node knows it: its store's root and its record."""
        root = self.store.root_at(height)
        if root is None or self.references is None:
            return None
        built = self.references.get(height, wait)
        if built is None or built[1] != root:
            return None
        return AttestedState(height, root, built[0])

    def extend(self, height: int, membership: Membership) -> bytes:
        """ExtendVote(height): this node's attestation of height - ATTESTED_LAG, or b"" when it makes none."""
        target = height - ATTESTED_LAG
        if target < 1 or self.key is None or self.validator_key is None:
            return b""
        named = membership.attesters.get(self.validator_key)
        if named != self.address:
            if not self._unregistered_logged:
                log.warning("this node attests with %s, but the Registry names %s for it; register the attester "
                            "(Registry.set_attester) to take part in checkpoints",
                            "0x" + (self.address or b"").hex(), "0x" + named.hex() if named else "no attester")
                self._unregistered_logged = True
            return b""
        state = self.own_state(target, RECORD_WAIT_SECONDS)
        if state is None:
            return b""
        return VoteExtension(state, self.rules.sign(self.key, state)).encode()

    # -- others' ----------------------------------------------------------------------

    def check_extension(self, height: int, validator: bytes, extension: bytes, membership: Membership) -> bytes:
        """VerifyVoteExtension(height) of a non-empty extension by `validator` (its address):
        the signer's address, or AttestationError saying why it is refused."""
        signed = VoteExtension.decode(extension)
        due = height - ATTESTED_LAG
        if signed.state.height != due:
            raise AttestationError(f"attests height {signed.state.height}; a precommit for {height} attests {due}")
        attester = next((membership.attesters.get(key) for key in membership.validators
                         if validator_address(key) == validator), None)
        if attester is None:
            raise AttestationError(f"validator {validator.hex()[:12]} has no attester in the cluster's membership")
        signer = self.rules.signer(signed.state, signed.signature)
        if signer != attester:
            raise AttestationError(f"signed by 0x{signer.hex()}, not by the validator's attester 0x{attester.hex()}")
        self._check_state(signed.state)
        return signer

    def _check_state(self, state: AttestedState) -> None:
        root = self.store.root_at(state.height)
        if root is not None and root != state.app_hash:
            raise AttestationError(f"attests app_hash {state.app_hash.hex()[:16]}… at height {state.height}, "
                                   f"where this node has {root.hex()[:16]}…")
        built = self.references.get(state.height) if self.references is not None else None
        if built is not None and built[0] != state.record:
            raise AttestationError(f"attests record {state.record.hex()[:16]}… of height {state.height}, "
                                   f"where this node built {built[0].hex()[:16]}…")

    def gather(self, height: int, votes: Iterable[tuple[bytes, bytes]], membership: Membership) -> bytes | None:
        """PrepareProposal(height): the attestation transaction of the extensions of height-1's
        precommits (`votes`: validator address, extension), or None when there are none.

        Precommits that arrived late reach the proposer without the app having checked them,
        so every one is checked here again; the signature by the member's attester is what
        makes an attestation count, not who relayed it."""
        by_state: dict[AttestedState, dict[bytes, bytes]] = {}
        for validator, extension in votes:
            if not extension:
                continue
            try:
                signer = self.check_extension(height - 1, validator, extension, membership)
            except AttestationError as exc:
                log.info("height %d: leaving out validator %s's attestation: %s", height, validator.hex()[:12], exc)
                continue
            signed = VoteExtension.decode(extension)
            by_state.setdefault(signed.state, {})[signer] = signed.signature
        if not by_state:
            return None
        state, signatures = max(by_state.items(), key=lambda item: len(item[1]))
        return AttestationTx(state, tuple(signatures[signer] for signer in sorted(signatures))).encode()

    def check_tx(self, height: int, tx: bytes, membership: Membership) -> AttestationTx:
        """ProcessProposal(height) of the block's attestation transaction; AttestationError if no
        honest proposer sends it."""
        batch = AttestationTx.decode(tx)
        due = height - 1 - ATTESTED_LAG
        if batch.state.height != due:
            raise AttestationError(f"attests height {batch.state.height}; block {height} carries those of {due}")
        attesters = set(membership.attesters.values())
        previous = b""
        for signature in batch.signatures:
            signer = self.rules.signer(batch.state, signature)
            if signer not in attesters:
                raise AttestationError(f"0x{signer.hex()} is not the attester of a member")
            if signer <= previous:
                raise AttestationError("the signatures are not by signers in strictly ascending order")
            previous = signer
        self._check_state(batch.state)
        return batch


def _address(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))
