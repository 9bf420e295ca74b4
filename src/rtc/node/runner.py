"""Running one node's state machine process: config file in, ABCI server up, clean exit.

A node is two processes: CometBFT and this one. CometBFT connects to us over ABCI; when
it goes away we exit too, so a supervisor (the devnet, systemd) restarts them together.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rtc.abci import run_server
from rtc.state import StateStore
from rtc.vm import Backend, Limits

from .app import ClusterApp, NodeSettings
from .config import NodeConfig

log = logging.getLogger("rtc.node")

def build_app(home: Path) -> tuple[ClusterApp, NodeConfig]:
    config = NodeConfig.load(home)
    backend_path = (home / config.backend).resolve()
    backend = Backend.from_file(backend_path, Limits(**config.limits))
    store = StateStore.open(home / config.state_dir)
    log.info(
        "node %s: backend %s (code hash %s), state at height %d",
        home.name, backend_path.name, backend.code_hash.hex()[:16], store.height or 0,
    )
    return ClusterApp(store, backend, NodeSettings(max_tx_bytes=config.max_tx_bytes)), config


def run_node(home: Path) -> int:
    app, config = build_app(home)
    try:
        return run_server(app, config.abci)
    finally:
        app.store.close()
