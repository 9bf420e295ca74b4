"""What the Disputes contract's tests share: the contract wired to a Registry and a Validation
contract with a pool of validators, and the steps of a dispute as one call each."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import boa
from eth_abi import encode

from .helpers import ETHER, MIN_DEPOSIT, block, key, set_block
from .validation_helpers import APP_HASH, attester, domain_of, set_attester, signatures, state_at

DISPUTES_SOURCE = Path(__file__).resolve().parents[2] / "contracts" / "Disputes.vy"
BOND = ETHER
JURY = 3
COMMIT, REVEAL, APPEAL, AVAILABILITY = 5, 5, 4, 20
SLASH_BPS, BOUNTY_BPS, MEMBER_PENALTY_BPS, JUROR_PENALTY_BPS = 10_000, 1_000, 1_000, 1_000
K, RESPONSE, GENESIS = 2, 5, b"\x9e" * 32  # the cluster's validator rules
POOL = tuple(range(7, 17))  # node ids (and attester keys) of the enrolled validators
OPEN, VALID, INVALID = 1, 2, 3
DRAW, COMMITTING, REVEALING, APPEALING, DONE = 1, 2, 3, 4, 5
CLAIMED = hashlib.sha256(b"the state honest code reaches at 20").digest()
SALT = b"\x5a" * 32


@dataclass
class Court:
    disputes: object
    validation: object
    registry: object
    accounts: object
    cluster: int
    salts: dict = field(default_factory=dict)

    def open(self, signers=(1, 2, 3), height: int = 20, disputer: int = 7, value: int = BOND,
             base: int = 0, claimed: bytes = CLAIMED, app_hash: bytes = APP_HASH, sender: str | None = None) -> int:
        """Dispute the state `signers` attested at `height`, from validator `disputer`'s attester."""
        state = state_at(self.registry, self.cluster, height, app_hash)
        v, r, s = signatures(state, domain_of(self.validation), list(signers))
        return self.disputes.open_dispute(
            self.cluster, height, state.app_hash, state.record, v, r, s, claimed, base, disputer,
            value=value, sender=sender or attester(disputer))

    def draw(self, dispute_id: int) -> list[int]:
        set_block(max(block(), self.disputes.dispute(dispute_id).seed_block + 1))
        self.disputes.advance(dispute_id, sender=self.accounts.stranger)
        return self.jury(dispute_id)

    def jury(self, dispute_id: int) -> list[int]:
        round_ = self.disputes.dispute(dispute_id).round
        return [juror.node_id for juror in self.disputes.jury(dispute_id, round_)]

    def commit(self, dispute_id: int, node: int, vote: int, salt: bytes = SALT) -> None:
        round_ = self.disputes.dispute(dispute_id).round
        commitment = commitment_of(dispute_id, round_, node, vote, salt)
        self.disputes.commit_vote(dispute_id, node, commitment, sender=attester(node))

    def reveal(self, dispute_id: int, node: int, vote: int, salt: bytes = SALT) -> None:
        self.disputes.reveal_vote(dispute_id, node, vote, salt, sender=attester(node))

    def round(self, dispute_id: int, votes) -> list[int]:
        """Draw a jury and let each juror vote `votes(node)` (None: it does not commit; a pair
        (vote, False): it commits and does not reveal); then tally. Returns the jury."""
        jury = self.draw(dispute_id)
        plan = {node: votes(node) for node in jury}
        for node, vote in plan.items():
            if vote is not None:
                self.commit(dispute_id, node, vote[0] if isinstance(vote, tuple) else vote)
        if any(vote is None for vote in plan.values()):
            set_block(self.disputes.dispute(dispute_id).commit_deadline + 1)
        self.disputes.advance(dispute_id, sender=self.accounts.stranger)  # reveals open
        for node, vote in plan.items():
            if isinstance(vote, int):
                self.reveal(dispute_id, node, vote)
        if any(isinstance(vote, tuple) for vote in plan.values()):
            set_block(self.disputes.dispute(dispute_id).reveal_deadline + 1)
        self.disputes.advance(dispute_id, sender=self.accounts.stranger)  # tallied
        return jury

    def settle(self, dispute_id: int) -> None:
        set_block(self.disputes.dispute(dispute_id).appeal_deadline + 1)
        self.disputes.advance(dispute_id, sender=self.accounts.stranger)

    def deposit(self, node: int) -> int:
        return self.registry.node(node).deposit


def commitment_of(dispute_id: int, round_: int, node: int, vote: int, salt: bytes) -> bytes:
    from eth_utils import keccak

    return keccak(encode(["uint256", "uint256", "uint256", "uint8", "bytes32"], [dispute_id, round_, node, vote, salt]))


def deploy_court(deployer, validation, registry, accounts, cluster) -> Court:
    disputes = deployer.deploy(
        registry.address, validation.address, BOND, JURY, COMMIT, REVEAL, APPEAL, AVAILABILITY,
        SLASH_BPS, BOUNTY_BPS, MEMBER_PENALTY_BPS, JUROR_PENALTY_BPS, sender=accounts.owner)
    registry.set_slasher(disputes.address, sender=accounts.owner)
    registry.set_beneficiary(disputes.address, sender=accounts.owner)
    registry.set_validation(validation.address, sender=accounts.owner)
    validation.set_disputes(disputes.address, sender=accounts.owner)
    validation.set_validator_rules(cluster, K, RESPONSE, GENESIS, sender=accounts.owner)
    for n in POOL:
        registry.register(key(n), value=MIN_DEPOSIT, sender=accounts.operators[n - 1])
        set_attester(registry, accounts, n, n)
        validation.enroll(n, sender=accounts.operators[n - 1])
    for n in range(1, 17):
        boa.env.set_balance(attester(n), 100 * ETHER)
    return Court(disputes, validation, registry, accounts, cluster)
