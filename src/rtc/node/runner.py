"""Running one node's state machine process: config file in, ABCI server up, clean exit.

A node is two processes: CometBFT and this one. CometBFT connects to us over ABCI (a unix
socket only this user can open, in the node's home); when it goes away we exit too, so a
supervisor (the devnet, systemd) restarts them together.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rtc.abci import run_server
from rtc.abci.server import parse_address
from rtc.abci.wire import COMETBFT_DEFAULT_BLOCK_BYTES, max_frame_size_for
from rtc.cometbft import GenesisDoc, NodeHome
from rtc.history import ExecutedBlocks, HistoryUploader, RecordReferences, Snapshots
from rtc.history.config import history_signer, open_swarm
from rtc.history.uploader import CURSOR_NAME
from rtc.state import StateStore, merkle
from rtc.swarm import bmt
from rtc.vm import load_backend

from .app import ClusterApp, CommitListener
from .attesting import ATTESTER_KEY_NAME, AttestationRules, Attestations, validator_address
from .checkpoints import CheckpointPoster
from .disputing import MemberDisputes
from .config import GenesisAppState, NodeConfig

log = logging.getLogger("rtc.node")


def build_app(home: Path, eth_rpc: str | None = None) -> tuple[ClusterApp, NodeConfig]:
    """The node's app from its home; `eth_rpc` overrides the endpoint in rtc.json."""
    config = NodeConfig.load(home)
    if eth_rpc:
        config.eth_rpc = eth_rpc
    genesis = GenesisAppState.read(NodeHome(home))
    settings = genesis.settings
    backend_path = (home / config.backend).resolve()
    backend = load_backend(backend_path, settings.limits, config.core)
    if backend.core == "python":  # the whole reference: the Merkle update and chunk hashing too
        merkle.use_reference()
        bmt.use_reference()
    if config.fault_injection and genesis.code_hash != backend.code_hash:
        log.warning("FAULT INJECTION: node %s runs %s (code hash %s) and claims the genesis' code hash %s: its "
                    "state is a lie that batch validators should dispute", home.name, backend_path.name,
                    backend.code_hash.hex()[:16], genesis.code_hash.hex()[:16])
        backend.code_hash = genesis.code_hash
    if genesis.code_hash != backend.code_hash:
        raise SystemExit(
            f"{backend_path} has code hash {backend.code_hash.hex()}, but the cluster's genesis names "
            f"{genesis.code_hash.hex()}; start the node with the component the cluster runs"
        )
    store = StateStore.open(home / config.state_dir)
    log.info(
        "node %s: backend %s (code hash %s) on the %s core, state at height %d",
        home.name, backend_path.name, backend.code_hash.hex()[:16], backend.core, store.height or 0,
    )
    watcher = None
    if settings.ethereum is not None:
        if config.eth_rpc:
            from rtc.membership.watcher import EthereumWatcher  # web3: only a node that follows a contract

            watcher = EthereumWatcher(config.eth_rpc, settings.ethereum)
            log.info("following cluster %d of Registry %s through %s", settings.ethereum.cluster_id,
                     settings.ethereum.registry, config.eth_rpc)
        else:
            log.warning("the cluster follows Registry %s but rtc.json names no eth_rpc endpoint: this node "
                        "will neither propose nor vote for membership changes", settings.ethereum.registry)
    snapshots = Snapshots(home / config.state_dir / "snapshots", config.snapshot_every) if config.swarm else None
    rules = AttestationRules.of(settings, backend.code_hash)
    attestations = None
    if rules is not None:
        node_home = NodeHome(home)
        # Without its own history records (no Swarm store) a node cannot say which record it attests.
        references = RecordReferences() if config.swarm else None
        attestations = Attestations(rules, store, references, node_home.secret_key(ATTESTER_KEY_NAME),
                                    node_home.validator_key())
        log.info("attesting the cluster's state to Validation %s as 0x%s%s", settings.ethereum.validation,
                 (attestations.address or b"").hex(), "" if references else " (not: this node keeps no history)")
    return ClusterApp(store, backend, settings, watcher, snapshots, attestations, genesis.restored_from), config


def history_uploader(home: Path, config: NodeConfig, app: ClusterApp) -> HistoryUploader | None:
    """The background uploader of this node's block history, when rtc.json names a Swarm store."""
    if not config.swarm:
        return None
    if not config.rpc:
        raise SystemExit(f"{home / 'rtc.json'} names a Swarm store but no \"rpc\" (this node's CometBFT RPC "
                         "address), which history is read from")
    swarm = open_swarm(config.swarm, config.swarm_batch, home, synced=False)  # the uploader flushes
    node_home = NodeHome(home)
    signer = history_signer(node_home)
    log.info("uploading block history to %s (feed owner %s)", config.swarm, signer.owner.hex())
    executed = ExecutedBlocks()
    app.on_commit = executed.add
    references = app.attestations.references if app.attestations is not None else None
    genesis = node_home.genesis()
    # Records are stored in turn by the validators (`uploader_of`); this node knows its turns by its address.
    address = validator_address(node_home.validator_key()).hex()
    return HistoryUploader(config.rpc, swarm, signer, genesis.chain_id, home / config.state_dir / CURSOR_NAME,
                           app.snapshots, executed=executed, references=references,
                           first_height=genesis.initial_height, address=address)


def checkpoint_poster(config: NodeConfig, app: ClusterApp) -> CheckpointPoster | None:
    """The thread that posts this member's turn of checkpoints, when it attests and reaches Ethereum."""
    attestations, ethereum = app.attestations, app.settings.ethereum
    if attestations is None or attestations.key is None or ethereum is None or not config.eth_rpc:
        return None
    poster = CheckpointPoster(config.eth_rpc, ethereum, attestations.rules, attestations.key)
    app.on_commit = _both(app.on_commit, poster.committed) if app.on_commit is not None else poster.committed
    return poster


def member_disputes(config: NodeConfig, app: ClusterApp, uploader: HistoryUploader | None) -> MemberDisputes | None:
    """The thread that disputes what the other members attest when this node computed otherwise:
    it needs to attest itself, Ethereum and the Swarm the records are in (the uploader's)."""
    if uploader is None:  # no Swarm: no records to read the others' attestations from
        return None
    attestations, ethereum = app.attestations, app.settings.ethereum
    if attestations is None or attestations.key is None or ethereum is None or not config.eth_rpc:
        return None
    watch = MemberDisputes(config.eth_rpc, ethereum, attestations.rules, attestations.key, uploader.swarm,
                           uploader.chain_id)
    app.on_commit = _both(app.on_commit, watch.committed) if app.on_commit is not None else watch.committed
    return watch


def _both(first: CommitListener, second: CommitListener) -> CommitListener:
    def listener(*block: Any) -> None:
        first(*block)
        second(*block)
    return listener


def abci_address(home: Path, config: NodeConfig) -> str:
    """The address to serve ABCI on, refusing TCP unless rtc.json says `allow_tcp_abci`."""
    try:
        scheme = parse_address(config.abci).scheme
    except ValueError as exc:
        raise SystemExit(f"{home / 'rtc.json'}: \"abci\": {exc}") from None
    if scheme == "tcp":
        if not config.allow_tcp_abci:
            raise SystemExit(
                f"{home / 'rtc.json'} serves ABCI on {config.abci}, where any local process could send the node "
                f"blocks to commit. Use \"abci\": \"unix://{home.resolve() / 'abci.sock'}\" (and the same proxy_app "
                "in config/config.toml), or set \"allow_tcp_abci\": true to accept that risk")
        log.warning("serving ABCI on %s: any local process can connect and drive this node's state machine; "
                    "use a unix socket unless CometBFT cannot reach one", config.abci)
    return config.abci


def block_max_bytes(genesis: GenesisDoc) -> int:
    """The genesis' consensus parameter block.max_bytes (CometBFT's default when it names none)."""
    params = genesis.document.get("consensus_params") or {}
    value = (params.get("block") or {}).get("max_bytes", COMETBFT_DEFAULT_BLOCK_BYTES)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SystemExit(f"the genesis' consensus_params.block.max_bytes is {value!r}, not a number") from None


def run_node(home: Path, eth_rpc: str | None = None) -> int:
    address = abci_address(home, NodeConfig.load(home))
    # The largest request CometBFT can send this chain bounds what one connection buffers.
    try:
        max_frame_size = max_frame_size_for(block_max_bytes(NodeHome(home).genesis()))
    except ValueError as exc:
        raise SystemExit(f"{NodeHome(home).genesis_file}: consensus_params: {exc}") from None
    app, config = build_app(home, eth_rpc)
    uploader = history_uploader(home, config, app)
    poster = checkpoint_poster(config, app)
    disputing = member_disputes(config, app, uploader)
    if app.watcher is not None:
        app.watcher.start()
    if uploader is not None:
        uploader.start()
    if poster is not None:
        poster.start()
    if disputing is not None:
        disputing.start()
    try:
        return run_server(app, address, max_frame_size=max_frame_size)
    finally:
        if disputing is not None:
            disputing.stop()
        if poster is not None:
            poster.stop()
        if app.watcher is not None:
            app.watcher.stop()
        if uploader is not None:
            uploader.stop()
            uploader.swarm.close()
        app.store.close()
