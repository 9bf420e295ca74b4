"""Preparing CometBFT homes for a cluster on loopback: keys, one shared genesis, tuned config.

CometBFT writes its own keys and a default config with `cometbft init`; we then put
every validator into one genesis and rewrite the few config values a loopback cluster
needs (ports, peers, timers). The timers are tuned for commit latency on one machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from rtc.cometbft import GenesisValidator, NodeHome
from rtc.tools import cometbft_binary

from .manifest import DevnetError

# Consensus timers for a cluster on loopback (see docs/architecture.md, "Timers").
TIMERS = {
    "timeout_propose": "500ms",
    "timeout_propose_delta": "100ms",
    "timeout_prevote": "100ms",
    "timeout_prevote_delta": "100ms",
    "timeout_precommit": "100ms",
    "timeout_precommit_delta": "100ms",
    "timeout_commit": "40ms",
    "peer_gossip_sleep_duration": "10ms",
    "create_empty_blocks": True,
    "create_empty_blocks_interval": "1s",
}


def init_home(path: Path, moniker: str) -> NodeHome:
    subprocess.run(
        [str(cometbft_binary()), "init", "--home", str(path)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    home = NodeHome(path)
    home.set_config({"": {"moniker": moniker}})
    return home


def node_id(home: NodeHome) -> str:
    result = subprocess.run(
        [str(cometbft_binary()), "show-node-id", "--home", str(home.path)],
        check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


def write_genesis(homes: list[NodeHome], chain_id: str, validators: list[GenesisValidator],
                  app_state: dict[str, Any], vote_extensions: bool = False, initial_height: int = 1) -> None:
    """One genesis for every home: the first home's (as `cometbft init` wrote it) with our chain,
    validators and app state; `vote_extensions` turns them on from the first height (the members'
    attestations ride on them, rtc.node.attesting)."""
    genesis = homes[0].genesis().with_chain(chain_id, validators, app_state, initial_height)
    if vote_extensions:
        genesis = genesis.with_vote_extensions(initial_height)
    for home in homes:
        genesis.write(home.genesis_file)


def abci_socket(home: Path) -> str:
    """Where a node's state machine serves ABCI: a unix socket in its home (`proxy_app` syntax).
    A home too deep for a socket path is refused here, before anything starts."""
    from rtc.node.config import abci_socket

    try:
        return abci_socket(home)
    except ValueError as exc:
        raise DevnetError(f"{exc} (pick a shorter --home)") from None


def loopback_config(proxy_app: str, p2p_port: int, rpc_port: int, peers: list[str]) -> dict[str, dict[str, Any]]:
    """The config.toml values of one node of a cluster on loopback (`peers`: "id@host:port";
    `proxy_app`: the app's ABCI address, `abci_socket`, or the name of an app built into CometBFT).

    Shared by our devnet and the benchmark's kvstore cluster, so both run with the same timers.
    """
    return {
        "": {"proxy_app": proxy_app, "log_level": "error"},
        "rpc": {"laddr": f"tcp://127.0.0.1:{rpc_port}"},
        "p2p": {
            "laddr": f"tcp://127.0.0.1:{p2p_port}",
            "persistent_peers": ",".join(peers),
            "addr_book_strict": False,
            "allow_duplicate_ip": True,
        },
        "consensus": dict(TIMERS),
        "mempool": {"recheck": False},
        "instrumentation": {"prometheus": False},
    }
