"""The Disputes contract from Python: raising a dispute over a cluster's attested state, a
juror's commit and reveal, moving a dispute on, and reading its story (contracts/Disputes.vy,
docs/disputes.md)."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any

from eth_utils import keccak
from web3 import Web3
from web3.logs import DISCARD

from rtc.protocol.attestation import Attestation, AttestationDomain

from .contract import Contract
from .validation import Posted, Validation, signature_arrays

OPEN, VALID, INVALID = 1, 2, 3
STATUS_NAMES = {OPEN: "open", VALID: "valid", INVALID: "invalid"}
DRAW, COMMIT, REVEAL, APPEAL, DONE = 1, 2, 3, 4, 5  # where an open dispute is (the contract's PHASE_*)
PHASE_NAMES = {DRAW: "drawing a jury", COMMIT: "jurors commit", REVEAL: "jurors reveal", APPEAL: "open to appeal",
               DONE: "settled"}


@dataclass(frozen=True)
class DisputeRules:
    """What a Disputes contract is deployed with (all immutable)."""

    bond_wei: int  # a disputer from outside the cluster posts it
    jury_size: int  # jurors of the first round (1-3); each later round 2n+1
    commit_blocks: int
    reveal_blocks: int
    appeal_blocks: int
    availability_blocks: int  # after opening, history missing from Swarm counts against the accused
    slash_bps: int = 10_000  # of each liar's deposit
    bounty_bps: int = 1_000  # of what the liars lost, for the disputer (at most 10%)
    member_penalty_bps: int = 1_000  # of a member's deposit when its dispute fails
    juror_penalty_bps: int = 1_000  # of a juror's deposit for no reveal or a vote against the ruling

    def arguments(self) -> tuple[int, ...]:
        return tuple(asdict(self).values())


@dataclass(frozen=True)
class DisputeState:
    dispute_id: int
    cluster_id: int
    height: int
    attested_app_hash: bytes
    record: bytes
    claimed_app_hash: bytes
    base: int  # the validated checkpoint the jurors replay from (0: genesis)
    disputer: int
    disputer_address: str
    bond_wei: int
    member_disputer: bool
    opened_block: int
    status: int
    phase: int
    round: int
    seed_block: int
    commit_deadline: int
    reveal_deadline: int
    appeal_deadline: int
    replacements: int
    whole_pool: bool
    tentative: int
    members: int
    agreed: bool  # more than 2/3 of the members attested it: the cluster's state, not one liar's
    slashed_wei: int
    bounty_wei: int

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "none")

    @property
    def phase_name(self) -> str:
        return PHASE_NAMES.get(self.phase, "unknown")


@dataclass(frozen=True)
class Juror:
    node_id: int
    committed: bool
    vote: int  # 0 until revealed; VALID or INVALID


@dataclass(frozen=True)
class Seat:
    """A `JurorDrawn` event: `node_id` sits on round `round` of `dispute_id`."""

    dispute_id: int
    round: int
    node_id: int
    block: int


@dataclass(frozen=True)
class Slash:
    """A deposit a ruling took (the Registry's `Slashed` event in the settling transaction)."""

    node_id: int
    operator: str
    amount_wei: int
    reason: str


VOTES = {VALID: "VALID", INVALID: "INVALID"}


@dataclass(frozen=True)
class Event:
    """One step of a dispute's story, as the contract logged it."""

    name: str
    block: int
    fields: dict[str, Any]

    def describe(self) -> str:
        """The step in words, as `rtc dispute show` and the demo tell a dispute's story."""
        f = self.fields
        match self.name:
            case "DisputeOpened":
                return (f"opened by node {f['disputer']} with a bond of {f['bond'] / 10**18:.4f} ETH, from height "
                        f"{f['base']}")
            case "EvidenceAdded":
                return f"evidence: node {f['node_id']} attested the disputed state"
            case "JurorDrawn":
                replaced = f", replacing node {f['replaced']}" if f["replaced"] else ""
                return (f"round {f['round']}: juror node {f['node_id']} drawn{replaced} (commit by block "
                        f"{f['commit_deadline']})")
            case "DrawRearmed":
                return f"the seed block was forgotten; the jury is drawn from block {f['seed_block']}"
            case "VoteCommitted":
                return f"round {f['round']}: node {f['node_id']} committed a hidden vote"
            case "RevealsOpened":
                return f"round {f['round']}: reveals open until block {f['reveal_deadline']}"
            case "VoteRevealed":
                return f"round {f['round']}: node {f['node_id']} revealed {VOTES.get(f['vote'], f['vote'])}"
            case "RoundTallied":
                outcome = VOTES.get(f["outcome"], "no 2/3: a larger jury")
                return (f"round {f['round']}: {f['valid']} VALID, {f['invalid']} INVALID of {f['jury']} jurors "
                        f"-> {outcome}")
            case "Appealed":
                return f"appealed by {f['appellant']} for {VOTES.get(f['side'])} with {f['amount'] / 10**18:.4f} ETH"
            case "DisputeSettled":
                frozen = "; the cluster is frozen at the base" if f["frozen"] else ""
                return (f"ruled {VOTES.get(f['status'])}: {f['slashed'] / 10**18:.4f} ETH slashed, bounty "
                        f"{f['bounty'] / 10**18:.4f} ETH{frozen}")
        return self.name


def commitment(dispute_id: int, round_: int, node_id: int, vote: int, salt: bytes) -> bytes:
    """What a juror commits: keccak256(abi_encode(dispute_id, round, node_id, vote, salt))."""
    if len(salt) != 32:
        raise ValueError("a salt is 32 bytes")
    # abi_encode of static types: each a 32-byte big-endian word
    return keccak(b"".join(n.to_bytes(32, "big") for n in (dispute_id, round_, node_id, vote)) + salt)


def new_salt() -> bytes:
    return secrets.token_bytes(32)


STORY_EVENTS = ("DisputeOpened", "EvidenceAdded", "JurorDrawn", "DrawRearmed", "VoteCommitted", "RevealsOpened",
                "VoteRevealed", "RoundTallied", "Appealed", "DisputeSettled")


class Disputes(Contract):
    NAME = "Disputes"
    _rules: DisputeRules | None = None  # read once (the contract's rules are immutable)

    @classmethod
    def deploy(cls, w3: Web3, deployer: str, registry: str, validation: str, rules: DisputeRules) -> "Disputes":
        return cls._deploy(w3, deployer, Web3.to_checksum_address(registry), Web3.to_checksum_address(validation),
                           *rules.arguments())

    def rules(self) -> DisputeRules:
        """The contract's rules (immutable: read once per client)."""
        if self._rules is None:
            f = self.contract.functions
            self._rules = DisputeRules(*(int(getattr(f, name)().call()) for name in (
                "bond", "jury_size", "commit_blocks", "reveal_blocks", "appeal_blocks", "availability_blocks",
                "slash_bps", "bounty_bps", "member_penalty_bps", "juror_penalty_bps")))
        return self._rules

    # -- raising one -------------------------------------------------------------------

    def open_dispute(self, sender: str, state: Attestation, signatures: list[bytes], claimed_app_hash: bytes,
                     base: int, disputer: int, bond_wei: int, domain: AttestationDomain) -> tuple[int, Posted]:
        """Dispute `state` with members' `signatures` of it (each recovered here; sent once each in
        ascending signer order). Returns the dispute's id and the transaction."""
        v, r, s = signature_arrays(state, signatures, domain)
        function = self.contract.functions.open_dispute(
            state.cluster_id, state.height, state.app_hash, state.record, v, r, s, claimed_app_hash, base, disputer)
        receipt = self._transact(sender, function, value=bond_wei)
        opened = self.contract.events.DisputeOpened().process_receipt(receipt, errors=DISCARD)
        return int(opened[0].args.dispute_id), Posted(int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    def dispute_unless_disputed(self, sender: str, validation: Validation, state: Attestation,
                                signatures: list[bytes], claimed_app_hash: bytes, disputer: int,
                                bond_wei: int) -> tuple[int, Posted] | None:
        """Dispute `state` as a validator or a member does on finding another app_hash: replaying
        from the highest validated checkpoint below it; None when a dispute covers its height already."""
        if self.dispute_at(state.cluster_id, state.height):
            return None
        base = validation.validated_below(state.cluster_id, state.height)
        return self.open_dispute(sender, state, signatures, claimed_app_hash, base, disputer, bond_wei,
                                 validation.domain())

    def add_evidence(self, sender: str, dispute_id: int, state: Attestation, signatures: list[bytes],
                     domain: AttestationDomain) -> Posted:
        v, r, s = signature_arrays(state, signatures, domain)
        return self._posted(sender, self.contract.functions.add_evidence(dispute_id, v, r, s))

    # -- moving it on ------------------------------------------------------------------

    def advance(self, sender: str, dispute_id: int) -> Posted:
        return self._posted(sender, self.contract.functions.advance(dispute_id))

    def commit_vote(self, attester: str, dispute_id: int, node_id: int, vote_commitment: bytes) -> Posted:
        return self._posted(attester, self.contract.functions.commit_vote(dispute_id, node_id, vote_commitment))

    def reveal_vote(self, attester: str, dispute_id: int, node_id: int, vote: int, salt: bytes) -> Posted:
        return self._posted(attester, self.contract.functions.reveal_vote(dispute_id, node_id, vote, salt))

    def appeal(self, sender: str, dispute_id: int) -> Posted:
        cost = int(self.contract.functions.appeal_cost(dispute_id).call())
        receipt = self._transact(sender, self.contract.functions.appeal(dispute_id), value=cost)
        return Posted(int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    def due(self, dispute: DisputeState, latest: int) -> bool:
        """Whether `advance` would move the dispute on at Ethereum block `latest` (a deadline
        passed, or every juror acted)."""
        if dispute.phase == DRAW:
            return latest > dispute.seed_block
        jury = self.jury(dispute.dispute_id, dispute.round)
        if dispute.phase == COMMIT:
            return latest > dispute.commit_deadline + 1 or all(j.committed for j in jury)
        if dispute.phase == REVEAL:
            return latest > dispute.reveal_deadline or all(j.vote for j in jury if j.committed)
        return dispute.phase == APPEAL and latest > dispute.appeal_deadline

    def claim(self, sender: str) -> Posted:
        return self._posted(sender, self.contract.functions.claim())

    def _posted(self, sender: str, function: Any) -> Posted:
        receipt = self._transact(sender, function)
        return Posted(int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    # -- reading -----------------------------------------------------------------------

    def count(self) -> int:
        return int(self.contract.functions.dispute_count().call())

    def dispute(self, dispute_id: int) -> DisputeState | None:
        fields = self.contract.functions.dispute(dispute_id).call()
        if not fields[0]:
            return None
        (cluster, height, attested, record, claimed, base, disputer, disputer_address, bond, member, opened, status,
         phase, round_, seed, commit_deadline, reveal_deadline, appeal_deadline, replacements, whole, tentative,
         members, agreed, slashed, bounty) = fields
        return DisputeState(dispute_id, int(cluster), int(height), bytes(attested), bytes(record), bytes(claimed),
                            int(base), int(disputer), Web3.to_checksum_address(disputer_address), int(bond),
                            bool(member), int(opened), int(status), int(phase), int(round_), int(seed),
                            int(commit_deadline), int(reveal_deadline), int(appeal_deadline), int(replacements),
                            bool(whole), int(tentative), int(members), bool(agreed), int(slashed), int(bounty))

    def dispute_at(self, cluster_id: int, height: int) -> int:
        """The dispute about that height of the cluster (0: none)."""
        return int(self.contract.functions.dispute_at(cluster_id, height).call())

    def disputes_of(self, cluster_id: int | None) -> list[DisputeState]:
        """Every dispute about the cluster (None: about any), oldest first."""
        found = [self.dispute(i) for i in range(1, self.count() + 1)]
        return [d for d in found if d is not None and (cluster_id is None or d.cluster_id == cluster_id)]

    def accused(self, dispute_id: int) -> list[int]:
        return [int(n) for n in self.contract.functions.accused(dispute_id).call()]

    def jury(self, dispute_id: int, round_: int) -> list[Juror]:
        return [Juror(int(node), any(bytes(c)), int(vote))
                for node, c, vote in self.contract.functions.jury(dispute_id, round_).call()]

    def holds(self, node_id: int) -> int:
        return int(self.contract.functions.holds(node_id).call())

    def claimable(self, account: str) -> int:
        return int(self.contract.functions.claimable(Web3.to_checksum_address(account)).call())

    def total_burned(self) -> int:
        return int(self.contract.functions.total_burned().call())

    def slashes(self, dispute_id: int) -> list[Slash]:
        """What the dispute's ruling took from whom (empty while it is open)."""
        from .registry import Registry

        settled = self.contract.events.DisputeSettled.get_logs(from_block=0, argument_filters={"dispute_id": dispute_id})
        if not settled:
            return []
        registry = Registry(self.w3, self.contract.functions.registry().call())
        receipt = self.w3.eth.get_transaction_receipt(settled[0].transactionHash)
        return [Slash(int(e.args.node_id), Web3.to_checksum_address(e.args.operator), int(e.args.amount), e.args.reason)
                for e in registry.contract.events.Slashed().process_receipt(receipt, errors=DISCARD)]

    def opened(self, from_block: int, to_block: int) -> list[int]:
        """The ids of every dispute opened in Ethereum blocks from_block..to_block."""
        logs = self.contract.events.DisputeOpened.get_logs(from_block=from_block, to_block=to_block)
        return [int(e.args.dispute_id) for e in logs]

    def seats(self, node_id: int, from_block: int, to_block: int) -> list[Seat]:
        """Every jury seat `node_id` was drawn to in Ethereum blocks from_block..to_block."""
        logs = self.contract.events.JurorDrawn.get_logs(
            from_block=from_block, to_block=to_block, argument_filters={"node_id": node_id})
        return [Seat(int(e.args.dispute_id), int(e.args.round), int(e.args.node_id), int(e.blockNumber)) for e in logs]

    def story(self, dispute_id: int, from_block: int = 0) -> list[Event]:
        """Every event of the dispute, in the order the chain logged them."""
        events: list[tuple[int, int, Event]] = []
        for name in STORY_EVENTS:
            for e in getattr(self.contract.events, name).get_logs(
                    from_block=from_block, argument_filters={"dispute_id": dispute_id}):
                fields = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in dict(e.args).items()}
                events.append((int(e.blockNumber), int(e.logIndex), Event(name, int(e.blockNumber), fields)))
        return [event for _, _, event in sorted(events, key=lambda item: item[:2])]

