"""The members' attestations of a result's state, and how far batch validation has got: what a
client weighs a result by beyond the members' CometBFT signatures (docs/validation.md).

Attestations: more than 2/3 of the cluster's members signed, each with the secp256k1 key it
registered as its attester, the state (app_hash, history record) that holds the result;
the signers are recovered from the signatures (EIP-712) and matched against the
Registry's attesters of the cluster's current members. Trust: the Registry as the client's
own Ethereum endpoint reports it, and the members' attester keys.

Validation: `validated_height` is the highest checkpoint that k validators drawn from outside the
cluster re-executed and endorsed; everything at or below it has been re-checked, what is
above it has only the members' word (and their attestations). The seed asks for the lag
in transactions: `lag_txs` counts the clients' transactions committed above it.

Trust: the Validation contract the client names, as its own Ethereum endpoint reports it,
and the cluster's blocks as the node asked shows them (only counted for lag_txs, never
believed for a result: a lying node can make the lag look larger or smaller, but not a
result validated).

Disputes: the Disputes contract that Validation's deployer named. A dispute that is open about
a height at or below a result's block, or that ruled an agreed state there invalid, makes the
result unbelievable; so does a freeze below it (results above the last valid checkpoint of a
convicted cluster are void).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtc.cometbft import RPC
from rtc.cometbft.lightclient import VerificationError
from rtc.protocol.attestation import AttestationDomain, AttestationError, AttestationTx, is_attestation_tx
from rtc.protocol.envelope import MAGIC

if TYPE_CHECKING:
    from rtc.ethereum.registry import Registry
    from rtc.ethereum.validation import Validation

ATTESTATION_LAG = 3  # block H+3 carries the members' attestations of the state after H (rtc.node.attesting)

RECENT_CHECKPOINTS = 8  # how many of the newest checkpoints a status lists
MAX_COUNTED_BLOCKS = 2_000  # blocks read to count lag_txs (beyond: a lower bound, said so)
BLOCKCHAIN_PAGE = 20  # metas per /blockchain answer


@dataclass(frozen=True)
class CheckpointStatus:
    height: int
    app_hash: bytes
    status: str  # "posted" (no validators drawn yet), "drawn", or "validated"
    validators: tuple[int, ...]  # drawn node ids
    endorsements: int

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "app_hash": self.app_hash.hex(), "status": self.status,
                "validators": list(self.validators), "endorsements": self.endorsements}


@dataclass(frozen=True)
class DisputeFact:
    """A dispute about the cluster, as much of it as a result's receipt weighs."""

    dispute_id: int
    height: int
    status: str  # "open", "valid" or "invalid"
    agreed: bool  # more than 2/3 of the members attested the disputed state: the cluster's, not one liar's

    def covers(self, height: int) -> bool:
        """Whether it puts the state after block `height` in doubt: an open dispute at or below it, or
        an agreed state ruled invalid there (a lone liar's conviction leaves the cluster's state standing)."""
        return self.height <= height and (self.status == "open" or (self.status == "invalid" and self.agreed))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.dispute_id, "height": self.height, "status": self.status, "agreed": self.agreed}


@dataclass(frozen=True)
class ValidationStatus:
    cluster_id: int
    head_height: int
    validated_height: int
    lag_txs: int
    checkpoints: tuple[CheckpointStatus, ...]
    lag_txs_exact: bool = True  # False when more blocks than MAX_COUNTED_BLOCKS lag: lag_txs is a lower bound
    court: str | None = None  # the Disputes contract (None: none named, nobody can dispute)
    disputes: tuple[DisputeFact, ...] = ()
    frozen_at: int | None = None  # a dispute froze the cluster: nothing above this height is valid

    def dispute_covering(self, height: int) -> DisputeFact | None:
        return next((d for d in self.disputes if d.covers(height)), None)

    @property
    def lag_blocks(self) -> int:
        return max(0, self.head_height - self.validated_height)

    def covers(self, height: int) -> bool:
        """Whether the state after block `height` has been re-checked (a result of that block is validated)."""
        return 0 < height <= self.validated_height

    def to_json(self) -> dict[str, Any]:
        return {"cluster_id": self.cluster_id, "head_height": self.head_height,
                "validated_height": self.validated_height, "lag_blocks": self.lag_blocks, "lag_txs": self.lag_txs,
                "lag_txs_exact": self.lag_txs_exact, "checkpoints": [c.to_json() for c in self.checkpoints],
                "disputes": [d.to_json() for d in self.disputes], "frozen_at": self.frozen_at}


def read_status(validation: Validation, cluster_id: int, rpc: RPC, recent: int = RECENT_CHECKPOINTS) -> ValidationStatus:
    """The cluster's validation as the contract and a node of the cluster show it now."""
    sync_info = rpc.status()["sync_info"]
    head = int(sync_info["latest_block_height"])
    # A restored cluster's chain starts after the checkpoint it continues (its blocks before
    # do not exist); a pruned node's store starts later too.
    earliest = int(sync_info.get("earliest_block_height") or 1)
    validated = validation.validated_height(cluster_id)
    interval = validation.checkpoint_interval(cluster_id)
    checkpoints = []
    last = validation.last_checkpoint(cluster_id)
    for height in range(last, 0, -interval) if interval else ():
        if len(checkpoints) == recent:
            break
        posted = validation.checkpoint(cluster_id, height)
        if posted is None:
            continue
        slots = validation.drawn(cluster_id, height)
        endorsed = sum(slot.endorsed for slot in slots)
        status = "validated" if slots and endorsed == len(slots) else "drawn" if slots else "posted"
        checkpoints.append(CheckpointStatus(height, posted.app_hash, status, tuple(s.node_id for s in slots), endorsed))
    low = max(validated + 1, earliest)
    counted_from = max(low, head - MAX_COUNTED_BLOCKS + 1)
    lag_txs = client_txs(rpc, counted_from, head)
    court = validation.disputes()
    return ValidationStatus(cluster_id, head, validated, lag_txs, tuple(checkpoints), counted_from == low, court,
                            read_disputes(validation, court, cluster_id), validation.frozen_at(cluster_id))


def read_disputes(validation: Validation, court: str | None, cluster_id: int) -> tuple[DisputeFact, ...]:
    """Every dispute about the cluster, oldest first (none without a court)."""
    if court is None:
        return ()
    from rtc.ethereum.disputes import Disputes

    disputes = Disputes(validation.w3, court)
    return tuple(DisputeFact(d.dispute_id, d.height, d.status_name, d.agreed) for d in disputes.disputes_of(cluster_id))


def client_txs(rpc: RPC, low: int, high: int) -> int:
    """Clients' transactions (signed envelopes; not the membership syncs and attestations that
    proposers add) committed in blocks low..high."""
    total = 0
    top = high
    while top >= low:
        bottom = max(low, top - BLOCKCHAIN_PAGE + 1)
        for meta in rpc.blockchain(bottom, top):
            if int(meta["num_txs"]):
                txs = rpc.block(int(meta["header"]["height"]))["data"]["txs"] or []
                total += sum(1 for tx in txs if base64.b64decode(tx)[:len(MAGIC)] == MAGIC)
        top = bottom - 1
    return total


def attestations_in(block: dict[str, Any]) -> bytes | None:
    """The attestation transaction a block carries (among its first two), as RPC JSON shows the block."""
    for tx in (block.get("data", {}).get("txs") or [])[:2]:
        raw = base64.b64decode(tx)
        if is_attestation_tx(raw):
            return raw
    return None


@dataclass(frozen=True)
class AttestationFacts:
    """What Ethereum says, at one block, about who may attest the cluster's state and to which contract."""

    registry: bytes
    cluster_id: int
    code_hash: bytes
    domain: AttestationDomain
    attesters: tuple[bytes, ...]  # of the cluster's current members (a member without one is left out)
    members: int
    ethereum_block: int


@dataclass(frozen=True)
class AttestationReport:
    """Attestations that passed: who signed which state."""

    height: int
    app_hash: bytes
    record: bytes  # the Swarm reference of the block's history record
    signers: tuple[bytes, ...]  # attester addresses, recovered from the signatures
    members: int

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "app_hash": self.app_hash.hex(), "record": self.record.hex(),
                "signers": ["0x" + s.hex() for s in self.signers], "members": self.members}


def judge_attestations(facts: AttestationFacts, tx: bytes, height: int, app_hash: bytes) -> AttestationReport:
    """Whether more than 2/3 of the members attested the state `app_hash` after `height`; pure.
    VerificationError (kind "attestations") says why not."""
    try:
        batch = AttestationTx.decode(tx)
        state = batch.state
        if state.height != height or state.app_hash != app_hash:
            raise AttestationError(f"they attest height {state.height} with app_hash {state.app_hash.hex()[:16]}…, "
                                   f"not the verified {height} with {app_hash.hex()[:16]}…")
        attestation = state.attestation(facts.registry, facts.cluster_id, facts.code_hash)
        signers = [attestation.signer(signature, facts.domain) for signature in batch.signatures]
    except AttestationError as exc:
        raise VerificationError("attestations", str(exc)) from None
    counted = sorted(set(signers) & set(facts.attesters))
    if 3 * len(counted) <= 2 * facts.members:
        raise VerificationError("attestations", f"{len(counted)} of the {facts.members} members' attesters signed "
                                                f"state {height}; more than 2/3 are needed")
    return AttestationReport(height, app_hash, state.record, tuple(counted), facts.members)


class ValidationCheck:
    """The cluster's Validation contract and Registry, as the client names them (its trust
    policy, never a node): reads attesters and the validation status through the client's own
    Ethereum endpoint."""

    def __init__(self, validation: Validation, registry: Registry, cluster_id: int) -> None:
        self.validation = validation
        self.registry = registry
        self.cluster_id = cluster_id

    @classmethod
    def connect(cls, url: str, validation: str, registry: str, cluster_id: int) -> "ValidationCheck":
        from rtc.ethereum.registry import Registry
        from rtc.ethereum.validation import Validation

        return cls(Validation.connect(url, validation), Registry.connect(url, registry), cluster_id)

    def assumption(self) -> str:
        return (f"your Ethereum endpoint reports the chain truthfully and {self.validation.address} is the "
                "cluster's Validation contract; a validated result is wrong only if every validator drawn for its "
                "checkpoint colluded with the members (fewer than 1/3 of the validator pool's stake colludes: "
                "about f^k for k validators)")

    def read_facts(self) -> AttestationFacts:
        """The members' attesters now (blocking web3 calls)."""
        w3 = self.registry.w3
        block = int(w3.eth.block_number)
        functions = self.registry.contract.functions
        attesters = functions.member_attesters_at(self.cluster_id, block).call(block_identifier=block)
        code_hash = bytes(functions.code_hash(self.cluster_id).call(block_identifier=block))
        named = tuple(bytes.fromhex(a[2:]) for a in attesters if int(a, 16))
        domain = AttestationDomain(int(w3.eth.chain_id), bytes.fromhex(self.validation.address[2:]))
        return AttestationFacts(bytes.fromhex(self.registry.address[2:]), self.cluster_id, code_hash, domain, named,
                                len(attesters), block)

    def read_status(self, node_url: str) -> ValidationStatus:
        with RPC(node_url) as rpc:
            return read_status(self.validation, self.cluster_id, rpc)
