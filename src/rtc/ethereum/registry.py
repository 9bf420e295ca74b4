"""The Registry contract from Python: deploy it, act as a node operator, read membership.

Every refusal of the contract surfaces as `ContractRefused` with the contract's own
reason (for example "cooling-off not over: withdrawable at block 1234"), so the CLI can
show it as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import ContractLogicError

from rtc.tools import project_root

ARTIFACT = project_root() / "build" / "contracts" / "Registry.json"
STATUS_NAMES = {0: "none", 1: "active", 2: "leaving", 3: "ejected", 4: "withdrawn"}


class ContractRefused(RuntimeError):
    """The contract reverted; the message is its reason."""


@dataclass(frozen=True)
class NodeState:
    node_id: int
    operator: str
    validator_key: bytes
    deposit_wei: int
    status: str
    cluster_id: int
    member_since: int
    member_until: int
    leave_block: int
    withdrawable_block: int

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id, "operator": self.operator, "validator_key": self.validator_key.hex(),
            "deposit_wei": self.deposit_wei, "status": self.status, "cluster_id": self.cluster_id,
            "member_since": self.member_since, "member_until": self.member_until,
            "leave_block": self.leave_block, "withdrawable_block": self.withdrawable_block,
        }


def load_artifact(path: Path = ARTIFACT) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make setup` to compile the contracts")
    return json.loads(path.read_text())


class Registry:
    """One deployed Registry, reached through an Ethereum JSON-RPC endpoint."""

    def __init__(self, w3: Web3, address: str, artifact: dict[str, Any] | None = None) -> None:
        self.w3 = w3
        self.contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=(artifact or load_artifact())["abi"])

    @property
    def address(self) -> str:
        return self.contract.address

    @classmethod
    def connect(cls, url: str, address: str) -> "Registry":
        return cls(Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10})), address)

    @classmethod
    def deploy(cls, w3: Web3, deployer: str, min_deposit_wei: int, cooling_off_blocks: int) -> "Registry":
        artifact = load_artifact()
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = factory.constructor(min_deposit_wei, cooling_off_blocks).transact({"from": deployer})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise ContractRefused("deploying the Registry failed")
        return cls(w3, receipt["contractAddress"], artifact)

    # -- operator actions (accounts unlocked at the endpoint, as anvil's are) ----------

    def _transact(self, sender: str, function: Any, value: int = 0) -> Any:
        try:
            function.call({"from": sender, "value": value})  # the reason, if it would revert
            tx = function.transact({"from": sender, "value": value})
        except ContractLogicError as exc:
            raise ContractRefused(_reason(exc)) from None
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise ContractRefused("the transaction reverted")
        return receipt

    def register(self, operator: str, validator_key: bytes, deposit_wei: int) -> int:
        self._transact(operator, self.contract.functions.register(validator_key), deposit_wei)
        return int(self.contract.functions.node_of_operator(operator).call())

    def create_cluster(self, creator: str, code_reference: bytes, code_hash: bytes, max_members: int) -> int:
        self._transact(creator, self.contract.functions.create_cluster(code_reference, code_hash, max_members))
        return int(self.contract.functions.cluster_count().call())

    def join(self, operator: str, node_id: int, cluster_id: int) -> None:
        self._transact(operator, self.contract.functions.join_cluster(node_id, cluster_id))

    def request_leave(self, operator: str, node_id: int) -> int:
        self._transact(operator, self.contract.functions.request_leave(node_id))
        return self.node(node_id).withdrawable_block

    def withdraw(self, operator: str, node_id: int) -> None:
        self._transact(operator, self.contract.functions.withdraw(node_id))

    # -- reads -----------------------------------------------------------------------

    def node(self, node_id: int, block: int | str = "latest") -> NodeState:
        fields = self.contract.functions.node(node_id).call(block_identifier=block)
        return _node_state(node_id, fields)

    def members(self, cluster_id: int, block: int | str = "latest") -> list[NodeState]:
        ids = self.contract.functions.members(cluster_id).call(block_identifier=block)
        return [self.node(int(i), block) for i in ids]


def _node_state(node_id: int, fields: Any) -> NodeState:
    operator, key, deposit, status, cluster_id, _registered, since, until, leave, withdrawable = fields
    return NodeState(node_id, operator, bytes(key), int(deposit), STATUS_NAMES.get(int(status), str(status)),
                     int(cluster_id), int(since), int(until), int(leave), int(withdrawable))


def _reason(exc: ContractLogicError) -> str:
    message = str(exc.message if hasattr(exc, "message") else exc)
    return message.removeprefix("execution reverted: ") or "the contract refused (no reason given)"
