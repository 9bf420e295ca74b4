"""The devnet's Ethereum side: an anvil chain with the Registry, every node registered with a
deposit and joined to the cluster that runs the devnet's backend."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from rtc.ethereum import Anvil
from rtc.ethereum.registry import Registry

ETHER = 10**18
MIN_DEPOSIT = 1 * ETHER
NODE_DEPOSIT = 10 * ETHER
COOLING_OFF_BLOCKS = 20
ANVIL_PORT_OFFSET = 165  # after the ports of 16 nodes


@dataclass
class EthereumInfo:
    url: str
    port: int
    registry: str
    cluster_id: int
    operators: list[str] = field(default_factory=list)  # anvil dev accounts, one per node
    node_ids: list[int] = field(default_factory=list)
    anvil_pid: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def state_file(home: Path) -> Path:
    """anvil writes its chain here when it stops and reads it back when it starts."""
    return home / "anvil-state.json"


def start_anvil(home: Path, port: int) -> Anvil:
    anvil = Anvil(port, block_time=1.0, log_path=home / "logs" / "anvil.log", state_path=state_file(home))
    return anvil.start()


def register_cluster(anvil: Anvil, code_hash: bytes, validator_keys: list[bytes]) -> EthereumInfo:
    """Deploy the Registry, create the cluster for the backend and register and join every node."""
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    accounts = w3.eth.accounts
    deployer, operators = accounts[0], accounts[1:1 + len(validator_keys)]
    registry = Registry.deploy(w3, deployer, MIN_DEPOSIT, COOLING_OFF_BLOCKS)
    cluster_id = registry.create_cluster(deployer, code_hash, code_hash, len(validator_keys) + 4)
    node_ids = []
    for operator, key in zip(operators, validator_keys):
        node_id = registry.register(operator, key, NODE_DEPOSIT)
        registry.join(operator, node_id, cluster_id)
        node_ids.append(node_id)
    return EthereumInfo(anvil.url, anvil.port, registry.address, cluster_id, list(operators), node_ids)
