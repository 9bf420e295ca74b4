"""What the Registry contract says about a node, as plain data (no web3 needed to hold or read it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STATUS_NAMES = {0: "none", 1: "active", 2: "leaving", 3: "ejected", 4: "withdrawn"}


class ContractRefused(RuntimeError):
    """The contract reverted; the message is its reason."""


@dataclass(frozen=True)
class NodeState:
    node_id: int
    operator: str
    validator_key: bytes
    deposit_wei: int
    status: str  # STATUS_NAMES
    cluster_id: int  # the cluster the node joined (0: none)
    member_since: int
    member_until: int  # 0 while a member
    leave_block: int
    withdrawable_block: int  # 0 while active

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id, "operator": self.operator, "validator_key": self.validator_key.hex(),
            "deposit_wei": self.deposit_wei, "status": self.status, "cluster_id": self.cluster_id,
            "member_since": self.member_since, "member_until": self.member_until,
            "leave_block": self.leave_block, "withdrawable_block": self.withdrawable_block,
        }


@dataclass(frozen=True)
class JoinRequestState:
    """A node's pending request to join a cluster: who approved so far and how many are needed."""

    node_id: int
    cluster_id: int
    requested_block: int
    approvals: tuple[int, ...]  # node ids of members whose operators approved (still members)
    needed: int  # members' approvals that admit it now (more than 2/3); the cluster's owner admits alone

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "cluster_id": self.cluster_id, "requested_block": self.requested_block,
                "approvals": list(self.approvals), "needed": self.needed}
