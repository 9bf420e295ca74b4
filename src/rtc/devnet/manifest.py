"""What a devnet folder records about itself (`devnet.json`): its nodes, Ethereum side and Swarm.

Reading it needs nothing heavy, so commands that only look a node up (`rtc call --home`)
start fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "devnet.json"
MAX_NODES = 16
MAX_VALIDATORS = 7  # batch validators: anvil's accounts after the deployer and 16 operators
ANVIL_PORT_OFFSET = 165  # anvil's port after the base port: beyond the ports of 16 nodes


class DevnetError(RuntimeError):
    """Something the user can fix; the message says what."""


@dataclass
class NodeInfo:
    name: str
    home: str
    p2p_port: int
    rpc_port: int
    abci_port: int
    node_id: str = ""
    app_pid: int = 0
    cometbft_pid: int = 0
    fault_app: str = ""  # fault injection: the component it runs instead of the cluster's (devnet only)
    core: str = ""  # "python" or "native" (rtc.vm.native); "": the node's default

    @property
    def rpc(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"


@dataclass
class EthereumInfo:
    url: str
    port: int
    registry: str
    cluster_id: int
    operators: list[str] = field(default_factory=list)  # anvil dev accounts, one per node
    node_ids: list[int] = field(default_factory=list)
    anvil_pid: int = 0
    managed: bool = True  # anvil started by the devnet (False: an existing chain given with --eth-rpc)
    chain_id: int = 31337
    owner: str = ""  # deployed the Registry and owns the cluster (approves joins)
    validation: str = ""  # the Validation contract (checkpoints); empty in a manifest from before it existed
    disputes: str = ""  # the Disputes contract (the Registry's slasher); empty in a manifest from before it existed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidatorInfo:
    """A batch validator the devnet registered and runs (`rtc validator run`): outside the cluster."""

    name: str
    home: str
    node_id: int = 0  # in the Registry
    operator: str = ""
    pid: int = 0


@dataclass
class SwarmInfo:
    """Where the nodes upload their history."""

    store: str  # an embedded store's folder, or a Bee API URL
    batch: str | None = None  # postage batch id, for a Bee node
    snapshot_every: int = 20  # blocks; a devnet snapshots often so restores can be watched

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def state_file(home: Path) -> Path:
    """anvil writes the devnet's chain here when it stops and reads it back when it starts."""
    return home / "anvil-state.json"
