"""A node's settings: its own (`rtc.json` beside CometBFT's config) and the cluster's (in genesis)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtc.cometbft import GenesisDoc, NodeHome
from rtc.membership.sync import EthereumSettings
from rtc.protocol import canonical_json
from rtc.sessions import SessionRules
from rtc.vm import Limits

CONFIG_NAME = "rtc.json"


@dataclass
class NodeConfig:
    """The state machine's own settings, kept beside CometBFT's config in the node's home."""

    abci: str  # unix:///NODE_HOME/abci.sock (owner-only); tcp://127.0.0.1:PORT only with allow_tcp_abci
    backend: str  # path of the component, relative to the node home or absolute
    state_dir: str = "rtc-state"
    eth_rpc: str | None = None  # this node's own Ethereum endpoint, to check membership syncs
    rpc: str | None = None  # this node's CometBFT RPC, which the history uploader reads blocks from
    swarm: str | None = None  # history store: a folder (embedded store) or a Bee API URL; None: no history
    swarm_batch: str | None = None  # postage batch id, for a Bee node
    snapshot_every: int = 1000  # blocks between state snapshots (0: none); each hashes the whole state
    # ABCI over TCP lets any local process drive the state machine (FinalizeBlock, Commit):
    # refused unless the operator sets this (loopback only even then; docs/architecture.md).
    allow_tcp_abci: bool = False
    # Fault injection, set only by `rtc devnet up --cartel-app/--node-app`: run `backend` but
    # present it under the genesis' code hash, as a node lying about its code would.
    fault_injection: bool = False
    # Which implementation executes calls: "python" (the reference) or "native" (the compiled
    # core); None: RTC_CORE, else native when it is built (rtc.vm.native.chosen_core).
    core: str | None = None

    def save(self, home: Path) -> None:
        (home / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, home: Path) -> "NodeConfig":
        path = home / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is {home} a node home created by `rtc devnet up`?")
        return cls(**json.loads(path.read_text()))


def abci_socket(home: Path) -> str:
    """The ABCI address of a node at `home`: `unix://HOME/abci.sock` (the state machine creates
    it owner-only). ValueError if the path is too long for a unix socket (107 bytes)."""
    from rtc.abci.server import parse_address

    address = f"unix://{home.resolve() / 'abci.sock'}"
    parse_address(address)
    return address


@dataclass(frozen=True)
class ClusterSettings:
    """What every node must agree on because it changes results: kept in genesis and in state.

    A node never takes these from its own config file; it reads them from the genesis
    that all validators share, and refuses to start if its state was built with others.
    """

    limits: Limits = field(default_factory=Limits)
    max_tx_bytes: int = 64 * 1024
    sessions: SessionRules = field(default_factory=SessionRules)
    ethereum: EthereumSettings | None = None  # None: a fixed validator set, no contract
    # Fuel one block may spend; once spent, the block's later calls are refused (BLOCK_FULL)
    # rather than run, so no proposer can make a block that takes the nodes minutes.
    block_fuel: int = 1_000_000_000

    def __post_init__(self) -> None:
        if self.block_fuel < self.limits.fuel:
            raise ValueError(f"block_fuel ({self.block_fuel}) must be at least one call's fuel ({self.limits.fuel})")

    def to_json(self) -> dict[str, Any]:
        data = {"limits": asdict(self.limits), "max_tx_bytes": self.max_tx_bytes, "sessions": asdict(self.sessions),
                "block_fuel": self.block_fuel}
        if self.ethereum is not None:
            data["ethereum"] = self.ethereum.to_json()
        return data

    def encode(self) -> bytes:
        """What the state keeps under `m/settings`, and what a restarted node compares."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ClusterSettings":
        return cls(
            Limits(**data.get("limits", {})),
            int(data.get("max_tx_bytes", cls.max_tx_bytes)),
            SessionRules(**data.get("sessions", {})),
            EthereumSettings.from_json(data["ethereum"]) if data.get("ethereum") else None,
            int(data.get("block_fuel", cls.block_fuel)),
        )


@dataclass(frozen=True)
class RestoredFrom:
    """A cluster that continues a convicted one from its last valid checkpoint: the state every
    node starts from is that cluster's at `height` (its app_hash `app_hash`, validated on
    Ethereum), and the chain goes on at height + 1 (docs/disputes.md)."""

    registry: str
    cluster_id: int
    height: int
    app_hash: bytes
    record: bytes  # Swarm reference of that height's record (empty for the genesis)

    def to_json(self) -> dict[str, Any]:
        return {"registry": self.registry, "cluster_id": self.cluster_id, "height": self.height,
                "app_hash": self.app_hash.hex(), "record": self.record.hex()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RestoredFrom":
        return cls(str(data["registry"]), int(data["cluster_id"]), int(data["height"]), bytes.fromhex(data["app_hash"]),
                   bytes.fromhex(data["record"]))


@dataclass(frozen=True)
class GenesisAppState:
    """Our part of CometBFT's genesis (`app_state`): the backend every node must run, by hash,
    the cluster settings, and for a restored cluster where its state comes from."""

    code_hash: bytes
    settings: ClusterSettings
    restored_from: RestoredFrom | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code_hash": self.code_hash.hex(), "settings": self.settings.to_json()}
        if self.restored_from is not None:
            data["restored_from"] = self.restored_from.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GenesisAppState":
        try:
            restored = data.get("restored_from")
            return cls(bytes.fromhex(data["code_hash"]), ClusterSettings.from_json(data.get("settings") or {}),
                       RestoredFrom.from_json(restored) if restored else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the genesis app_state is not this cluster's ({exc}); "
                             "was the genesis written by `rtc devnet up`?") from None

    @classmethod
    def of(cls, genesis: GenesisDoc) -> "GenesisAppState":
        return cls.from_json(genesis.app_state)

    @classmethod
    def read(cls, home: NodeHome) -> "GenesisAppState":
        return cls.of(home.genesis())
