"""How far batch validation has got for a cluster: the lag a client weighs a result by (docs/validation.md).

`validated_height` is the highest checkpoint that k validators drawn from outside the
cluster re-executed and endorsed; everything at or below it has been re-checked, what is
above it has only the members' word (and their attestations). The seed asks for the lag
in transactions: `lag_txs` counts the clients' transactions committed above it.

Trust: the Validation contract as the Ethereum endpoint asked reports it (an endpoint that
lies can show any lag; ask one you trust), and the cluster's blocks as the node asked shows
them (only counted, never believed for a result: a lying node can only make the lag look
larger or smaller, not a result validated).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtc.cometbft import RPC
from rtc.protocol.envelope import MAGIC

if TYPE_CHECKING:
    from rtc.ethereum.validation import Validation

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
class ValidationStatus:
    cluster_id: int
    head_height: int
    validated_height: int
    lag_txs: int
    checkpoints: tuple[CheckpointStatus, ...]
    lag_txs_exact: bool = True  # False when more blocks than MAX_COUNTED_BLOCKS lag: lag_txs is a lower bound

    @property
    def lag_blocks(self) -> int:
        return max(0, self.head_height - self.validated_height)

    def covers(self, height: int) -> bool:
        """Whether the state after block `height` has been re-checked (a result of that block is validated)."""
        return 0 < height <= self.validated_height

    def to_json(self) -> dict[str, Any]:
        return {"cluster_id": self.cluster_id, "head_height": self.head_height,
                "validated_height": self.validated_height, "lag_blocks": self.lag_blocks, "lag_txs": self.lag_txs,
                "lag_txs_exact": self.lag_txs_exact, "checkpoints": [c.to_json() for c in self.checkpoints]}


def read_status(validation: Validation, cluster_id: int, rpc: RPC, recent: int = RECENT_CHECKPOINTS) -> ValidationStatus:
    """The cluster's validation as the contract and a node of the cluster show it now."""
    head = rpc.latest_height()
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
    low = validated + 1
    counted_from = max(low, head - MAX_COUNTED_BLOCKS + 1)
    lag_txs = client_txs(rpc, counted_from, head)
    return ValidationStatus(cluster_id, head, validated, lag_txs, tuple(checkpoints), counted_from == low)


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
