"""Running one node's state machine process: config file in, ABCI server up, clean exit.

A node is two processes: CometBFT and this one. CometBFT connects to us over ABCI; when
it goes away we exit too, so a supervisor (the devnet, systemd) restarts them together.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rtc.abci import run_server
from rtc.state import StateStore
from rtc.vm import Backend, Limits

from .app import ClusterApp, NodeSettings

log = logging.getLogger("rtc.node")

CONFIG_NAME = "rtc.json"


@dataclass
class NodeConfig:
    """The state machine's own settings, kept beside CometBFT's config in the node's home."""

    abci: str  # tcp://127.0.0.1:PORT or unix:///path
    backend: str  # path of the component, relative to the node home or absolute
    state_dir: str = "rtc-state"
    max_tx_bytes: int = 64 * 1024
    limits: dict[str, int] = field(default_factory=dict)

    def save(self, home: Path) -> None:
        (home / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, home: Path) -> "NodeConfig":
        path = home / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is {home} a node home created by `rtc devnet up`?")
        return cls(**json.loads(path.read_text()))


def build_app(home: Path) -> tuple[ClusterApp, NodeConfig]:
    config = NodeConfig.load(home)
    backend_path = (home / config.backend).resolve()
    backend = Backend.from_file(backend_path, Limits(**config.limits))
    store = StateStore.open(home / config.state_dir)
    log.info(
        "node %s: backend %s (code hash %s), state at height %d",
        home.name, backend_path.name, backend.code_hash.hex()[:16], store.height,
    )
    return ClusterApp(store, backend, NodeSettings(max_tx_bytes=config.max_tx_bytes)), config


def run_node(home: Path) -> int:
    app, config = build_app(home)
    try:
        run_server(app, config.abci)
    finally:
        app.store.close()
    return 0
