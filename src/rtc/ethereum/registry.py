"""The Registry contract from Python: deploy it, act as a node operator or a cluster's approver, read membership.

Every refusal of the contract surfaces as `ContractRefused` with the contract's own
reason (`contract.Contract`), so the CLI can show it as it is.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from web3 import Web3

from rtc.protocol.attestation import split_signature

from .contract import ARTIFACTS, Contract
from .contract import load_artifact as _load
from .types import STATUS_NAMES, JoinRequestState, NodeState

ARTIFACT: Traversable = ARTIFACTS / "Registry.json"


def load_artifact(path: Path | Traversable = ARTIFACT) -> dict[str, Any]:
    """The compiled Registry (abi, bytecode, ...), by default the one shipped in the package."""
    return _load(path)


class Registry(Contract):
    """One deployed Registry, reached through an Ethereum JSON-RPC endpoint."""

    NAME = "Registry"

    @classmethod
    def deploy(cls, w3: Web3, deployer: str, min_deposit_wei: int, cooling_off_blocks: int) -> "Registry":
        return cls._deploy(w3, deployer, min_deposit_wei, cooling_off_blocks)

    # -- operator actions (signed here with `account`, or by an account unlocked at the endpoint)

    def register(self, operator: str, validator_key: bytes, deposit_wei: int) -> int:
        self._transact(operator, self.contract.functions.register(validator_key), deposit_wei)
        return int(self.contract.functions.node_of_operator(operator).call())

    def create_cluster(self, creator: str, code_reference: bytes, code_hash: bytes, max_members: int) -> int:
        self._transact(creator, self.contract.functions.create_cluster(code_reference, code_hash, max_members))
        return int(self.contract.functions.cluster_count().call())

    def request_join(self, operator: str, node_id: int, cluster_id: int) -> None:
        """Ask to join; the cluster's owner, or more than 2/3 of its members' operators, must approve."""
        self._transact(operator, self.contract.functions.request_join(node_id, cluster_id))

    def approve_join(self, approver: str, node_id: int) -> bool:
        """Approve as the cluster's owner or a member's operator; True once the node is a member."""
        self._transact(approver, self.contract.functions.approve_join(node_id))
        return self.node(node_id).cluster_id != 0

    def cancel_join(self, sender: str, node_id: int) -> None:
        """Withdraw (the node's operator) or refuse (the cluster's owner) a pending join request."""
        self._transact(sender, self.contract.functions.cancel_join(node_id))

    def set_attester(self, operator: str, node_id: int, attester: str, proof: bytes) -> None:
        """Name the key the node signs attestations of its cluster's state with (once, never
        reused); `proof` is that key's `rtc.protocol.attestation.attester_proof`."""
        r, s, v = split_signature(proof)
        self._transact(operator, self.contract.functions.set_attester(node_id, Web3.to_checksum_address(attester), v, r, s))

    def set_validation(self, owner: str, validation: str) -> None:
        """The Validation contract that holds a leaving member's deposit until its attestations are validated (once)."""
        self._transact(owner, self.contract.functions.set_validation(Web3.to_checksum_address(validation)))

    def set_slasher(self, owner: str, slasher: str) -> None:
        self._transact(owner, self.contract.functions.set_slasher(Web3.to_checksum_address(slasher)))

    def set_beneficiary(self, owner: str, beneficiary: str) -> None:
        """Who receives slashed funds (the Disputes contract, which pays bounties from them)."""
        self._transact(owner, self.contract.functions.set_beneficiary(Web3.to_checksum_address(beneficiary)))

    def request_leave(self, operator: str, node_id: int) -> int:
        self._transact(operator, self.contract.functions.request_leave(node_id))
        return self.node(node_id).withdrawable_block

    def withdraw(self, operator: str, node_id: int) -> None:
        self._transact(operator, self.contract.functions.withdraw(node_id))

    # -- reads -----------------------------------------------------------------------

    def node(self, node_id: int, block: int | str = "latest") -> NodeState:
        fields = self.contract.functions.node(node_id).call(block_identifier=block)
        return _node_state(node_id, fields)

    def join_request(self, node_id: int, block: int | str = "latest") -> JoinRequestState | None:
        """The node's pending join request, None if it has none."""
        cluster_id, requested, approvals = self.contract.functions.join_request(node_id).call(block_identifier=block)
        if not cluster_id:
            return None
        needed = self.contract.functions.approvals_needed(cluster_id).call(block_identifier=block)
        return JoinRequestState(node_id, int(cluster_id), int(requested), tuple(int(a) for a in approvals), int(needed))

    def pending_requests(self, cluster_id: int, block: int | str = "latest") -> list[JoinRequestState]:
        """The join requests waiting for the cluster's approval, oldest first: the nodes that asked
        (JoinRequested events since the cluster was created) whose request is still pending."""
        if isinstance(block, str):
            block = int(self.w3.eth.get_block(block)["number"])
        created = int(self.contract.functions.cluster(cluster_id).call(block_identifier=block)[4])
        if not created:
            return []
        logs = self.contract.events.JoinRequested().get_logs(
            argument_filters={"cluster_id": cluster_id}, from_block=created, to_block=block)
        asked = dict.fromkeys(int(entry["args"]["node_id"]) for entry in logs)
        found = [self.join_request(node_id, block) for node_id in asked]
        return [r for r in found if r is not None and r.cluster_id == cluster_id]

    def cluster_owner(self, cluster_id: int, block: int | str = "latest") -> str | None:
        """Who admits nodes to the cluster alone (None: nobody, only its members do)."""
        owner = str(self.contract.functions.cluster(cluster_id).call(block_identifier=block)[6])
        return None if int(owner, 16) == 0 else Web3.to_checksum_address(owner)

    def code_of(self, cluster_id: int, block: int | str = "latest") -> tuple[bytes, bytes]:
        """(code reference in Swarm, code hash) of the cluster's backend."""
        cluster = self.contract.functions.cluster(cluster_id).call(block_identifier=block)
        return bytes(cluster[2]), bytes(cluster[1])

    def attester(self, node_id: int, block: int | str = "latest") -> str | None:
        """The address of the node's attestation key (None: not set yet)."""
        attester = str(self.contract.functions.attester_of(node_id).call(block_identifier=block))
        return None if int(attester, 16) == 0 else Web3.to_checksum_address(attester)

    def node_of_attester(self, attester: str) -> int:
        """The node that named `attester` (0: none)."""
        return int(self.contract.functions.node_of_attester(Web3.to_checksum_address(attester)).call())

    def slasher(self, block: int | str = "latest") -> str | None:
        """The only account that may slash (None: nobody can)."""
        slasher = str(self.contract.functions.slasher().call(block_identifier=block))
        return None if int(slasher, 16) == 0 else Web3.to_checksum_address(slasher)

    def member_count(self, cluster_id: int, block: int | str = "latest") -> int:
        return int(self.contract.functions.member_count(cluster_id).call(block_identifier=block))

    def members(self, cluster_id: int, block: int | str = "latest") -> list[NodeState]:
        ids = self.contract.functions.members(cluster_id).call(block_identifier=block)
        return [self.node(int(i), block) for i in ids]

    KEYS_PER_CALL = 16  # the contract's MAX_MEMBERS bounds nodes_by_keys' argument

    def slashed_wei(self, node_ids: list[int]) -> dict[int, int]:
        """What slashing took from each node so far (the `Slashed` events; 0 for the untouched)."""
        taken = {node_id: 0 for node_id in node_ids}
        if node_ids:
            for event in self.contract.events.Slashed.get_logs(from_block=0, argument_filters={"node_id": node_ids}):
                taken[int(event.args.node_id)] += int(event.args.amount)
        return taken

    def nodes_by_keys(self, keys: list[bytes], block: int | str = "latest") -> list[NodeState | None]:
        """The node of each validator key (None if no node ever registered it), in the keys' order.

        One `nodes_by_keys` call per 16 keys; with several calls and a block tag such as
        "latest", the tag is pinned to one block number first so all answers are from one state.
        """
        for key in keys:
            if len(key) != 32:
                raise ValueError(f"a validator key is 32 bytes, not {len(key)}: {key.hex()}")
        if len(keys) > self.KEYS_PER_CALL and isinstance(block, str):
            block = int(self.w3.eth.get_block(block)["number"])
        found: list[NodeState | None] = []
        for start in range(0, len(keys), self.KEYS_PER_CALL):
            chunk = [bytes(k) for k in keys[start:start + self.KEYS_PER_CALL]]
            ids, nodes = self.contract.functions.nodes_by_keys(chunk).call(block_identifier=block)
            found += [_node_state(int(i), fields) if int(i) else None for i, fields in zip(ids, nodes)]
        return found


def _node_state(node_id: int, fields: Any) -> NodeState:
    operator, key, deposit, status, cluster_id, _registered, since, until, leave, withdrawable = fields
    return NodeState(node_id, operator, bytes(key), int(deposit), STATUS_NAMES.get(int(status), str(status)),
                     int(cluster_id), int(since), int(until), int(leave), int(withdrawable))
