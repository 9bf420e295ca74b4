"""Running one node's state machine process: config file in, ABCI server up, clean exit.

A node is two processes: CometBFT and this one. CometBFT connects to us over ABCI; when
it goes away we exit too, so a supervisor (the devnet, systemd) restarts them together.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rtc.abci import run_server
from rtc.state import StateStore
from rtc.vm import Backend

from .app import ClusterApp
from .config import ClusterSettings, NodeConfig, read_genesis_app_state

log = logging.getLogger("rtc.node")


def build_app(home: Path) -> tuple[ClusterApp, NodeConfig]:
    config = NodeConfig.load(home)
    genesis = read_genesis_app_state(home)
    settings = ClusterSettings.from_json(genesis.get("settings", {}))
    backend_path = (home / config.backend).resolve()
    backend = Backend.from_file(backend_path, settings.limits)
    if genesis.get("code_hash") != backend.code_hash.hex():
        raise SystemExit(
            f"{backend_path} has code hash {backend.code_hash.hex()}, but the cluster's genesis names "
            f"{genesis.get('code_hash')}; start the node with the component the cluster runs"
        )
    store = StateStore.open(home / config.state_dir)
    log.info(
        "node %s: backend %s (code hash %s), state at height %d",
        home.name, backend_path.name, backend.code_hash.hex()[:16], store.height or 0,
    )
    return ClusterApp(store, backend, settings), config


def run_node(home: Path) -> int:
    app, config = build_app(home)
    try:
        return run_server(app, config.abci)
    finally:
        app.store.close()
