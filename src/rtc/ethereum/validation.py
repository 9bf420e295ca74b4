"""The Validation contract from Python: checkpoints of a cluster's state with its members'
attestations, and the batch validators drawn to re-check them (contracts/Validation.vy,
docs/validation.md)."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from rtc.protocol.attestation import Attestation, AttestationDomain, split_signature

from .contract import Contract
from .registry import Registry


@dataclass(frozen=True)
class CheckpointState:
    cluster_id: int
    height: int
    app_hash: bytes
    record: bytes  # Swarm reference of the block's history record
    posted_block: int
    attesters: int  # members whose attestations were counted
    members: int  # the cluster's members when it was posted


@dataclass(frozen=True)
class Slot:
    """A validator drawn for a checkpoint: its deadline (an Ethereum block) and whether it endorsed."""

    node_id: int
    deadline: int
    endorsed: bool


@dataclass(frozen=True)
class Assignment:
    """A `ValidatorDrawn` event: `node_id` must re-check checkpoint `height` by `deadline`."""

    cluster_id: int
    height: int
    node_id: int
    slot: int
    deadline: int
    block: int  # the Ethereum block that drew it


@dataclass(frozen=True)
class Posted:
    """A checkpoint's transaction: where it landed and what it cost."""

    block: int
    gas_used: int


class Validation(Contract):
    """One deployed Validation contract, reading the Registry at `registry()`."""

    NAME = "Validation"

    @classmethod
    def deploy(cls, w3: Web3, deployer: str, registry: str, dispute_window: int) -> "Validation":
        """`dispute_window`: Ethereum blocks after a checkpoint is validated before a member that
        attested it may take its deposit (Validation.released)."""
        return cls._deploy(w3, deployer, Web3.to_checksum_address(registry), dispute_window)

    def domain(self) -> AttestationDomain:
        """The EIP-712 domain members sign attestations in: this contract on this chain."""
        return AttestationDomain(int(self.w3.eth.chain_id), bytes.fromhex(self.address[2:]))

    def released(self, node_id: int, cluster_id: int) -> bool:
        return bool(self.contract.functions.released(node_id, cluster_id).call())

    def last_attested(self, node_id: int) -> int:
        return int(self.contract.functions.last_attested(node_id).call())

    def registry(self) -> str:
        return Web3.to_checksum_address(self.contract.functions.registry().call())

    def set_checkpoint_interval(self, owner: str, cluster_id: int, interval: int) -> None:
        """Checkpoints every `interval` blocks (the cluster's owner, once)."""
        self._transact(owner, self.contract.functions.set_checkpoint_interval(cluster_id, interval))

    def checkpoint_interval(self, cluster_id: int) -> int:
        return int(self.contract.functions.checkpoint_interval(cluster_id).call())

    def member_count(self, cluster_id: int) -> int:
        """The cluster's members now, in the Registry this contract reads: what a checkpoint's quorum is counted against."""
        return Registry(self.w3, self.registry()).member_count(cluster_id)

    def post_checkpoint(self, sender: str, state: Attestation, signatures: list[bytes]) -> Posted:
        """Post `state` with members' `signatures` of it. Each signer is recovered here, and they
        are sent once each in the ascending order the contract requires; a signature over
        another state raises AttestationError before anything is sent."""
        v, r, s = signature_arrays(state, signatures, self.domain())
        receipt = self._transact(sender, self.contract.functions.post_checkpoint(
            state.cluster_id, state.height, state.app_hash, state.record, v, r, s))
        return Posted(int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    def set_validator_rules(self, owner: str, cluster_id: int, validators: int, response_blocks: int,
                            genesis: bytes) -> None:
        """k validators per checkpoint, `response_blocks` for each to endorse, and the Swarm
        reference of the genesis they replay from (the cluster's owner, once)."""
        self._transact(owner, self.contract.functions.set_validator_rules(cluster_id, validators, response_blocks,
                                                                          genesis))

    def validator_rules(self, cluster_id: int) -> tuple[int, int, bytes]:
        """(validators per checkpoint, response blocks, genesis reference); zeros while unset."""
        functions = self.contract.functions
        return (int(functions.validators_per_checkpoint(cluster_id).call()),
                int(functions.response_blocks(cluster_id).call()), bytes(functions.genesis(cluster_id).call()))

    def enroll(self, operator: str, node_id: int) -> None:
        self._transact(operator, self.contract.functions.enroll(node_id))

    def pool(self) -> list[int]:
        return [int(self.contract.functions.pool(i).call()) for i in range(self.contract.functions.pool_size().call())]

    def draw(self, sender: str, cluster_id: int, height: int) -> Posted:
        receipt = self._transact(sender, self.contract.functions.draw(cluster_id, height))
        return Posted(int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    def replace(self, sender: str, cluster_id: int, height: int, slot: int) -> Posted:
        receipt = self._transact(sender, self.contract.functions.replace(cluster_id, height, slot))
        return Posted(int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    def endorse(self, attester: str, cluster_id: int, height: int, node_id: int, app_hash: bytes) -> Posted:
        receipt = self._transact(attester, self.contract.functions.endorse(cluster_id, height, node_id, app_hash))
        return Posted(int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    def drawn(self, cluster_id: int, height: int) -> list[Slot]:
        return [Slot(int(node), int(deadline), bool(endorsed))
                for node, deadline, endorsed in self.contract.functions.drawn(cluster_id, height).call()]

    def validated_height(self, cluster_id: int) -> int:
        return int(self.contract.functions.validated_height(cluster_id).call())

    def assignments(self, node_id: int, from_block: int, to_block: int) -> list[Assignment]:
        """Every draw of `node_id` in Ethereum blocks from_block..to_block."""
        logs = self.contract.events.ValidatorDrawn.get_logs(
            from_block=from_block, to_block=to_block, argument_filters={"node_id": node_id})
        return [Assignment(int(e.args.cluster_id), int(e.args.height), int(e.args.node_id), int(e.args.slot),
                           int(e.args.deadline), int(e.blockNumber)) for e in logs]

    def checkpoint(self, cluster_id: int, height: int) -> CheckpointState | None:
        app_hash, record, posted, attesters, members = self.contract.functions.checkpoint(cluster_id, height).call()
        if not posted:
            return None
        return CheckpointState(cluster_id, height, bytes(app_hash), bytes(record), int(posted), int(attesters), int(members))

    def last_checkpoint(self, cluster_id: int) -> int:
        """The height of the cluster's newest checkpoint (0: none)."""
        return int(self.contract.functions.last_checkpoint(cluster_id).call())

    def set_disputes(self, deployer: str, disputes: str) -> None:
        """Name the Disputes contract (the deployer, once)."""
        self._transact(deployer, self.contract.functions.set_disputes(Web3.to_checksum_address(disputes)))

    def disputes(self) -> str | None:
        address = self.contract.functions.disputes().call()
        return None if int(address, 16) == 0 else Web3.to_checksum_address(address)

    def frozen_at(self, cluster_id: int) -> int | None:
        """The last valid checkpoint of a cluster a dispute froze (None: not frozen)."""
        if not self.contract.functions.frozen(cluster_id).call():
            return None
        return int(self.contract.functions.frozen_at(cluster_id).call())

    def validated_block(self, cluster_id: int, height: int) -> int:
        """The Ethereum block checkpoint `height` was validated in (0: not validated)."""
        return int(self.contract.functions.validated_block(cluster_id, height).call())

    def validated_below(self, cluster_id: int, height: int) -> int:
        """The highest validated checkpoint below `height` (0: the genesis): where a dispute about
        `height` replays from."""
        interval = self.checkpoint_interval(cluster_id)
        candidate = min(self.validated_height(cluster_id), height - 1) // interval * interval
        while candidate > 0 and not self.validated_block(cluster_id, candidate):
            candidate -= interval
        return candidate

    def checkpoint_signatures(self, cluster_id: int, height: int) -> list[bytes]:
        """The members' signatures a checkpoint was posted with, read back from its transaction
        (the contract keeps only their count): the evidence a dispute about it needs."""
        logs = self.contract.events.CheckpointPosted.get_logs(
            from_block=0, argument_filters={"cluster_id": cluster_id, "height": height})
        if not logs:
            return []
        tx = self.w3.eth.get_transaction(logs[0].transactionHash)
        _, arguments = self.contract.decode_function_input(tx["input"])
        return [int(r).to_bytes(32, "big") + int(s).to_bytes(32, "big") + bytes([int(v)])
                for v, r, s in zip(arguments["v"], arguments["r"], arguments["s"])]


def signature_arrays(state: Attestation, signatures: list[bytes], domain: AttestationDomain) -> tuple[list, list, list]:
    """v, r and s in the ascending signer order the contracts want, each signer once; an
    AttestationError before anything is sent if a signature is of another state."""
    by_signer = {state.signer(signature, domain): signature for signature in signatures}
    parts = [split_signature(by_signer[signer]) for signer in sorted(by_signer)]
    return [v for _, _, v in parts], [r for r, _, _ in parts], [s for _, s, _ in parts]
