"""Preparing CometBFT homes: the pinned binary, keys, one shared genesis, tuned config.

CometBFT writes its own keys and a default config with `cometbft init`; we then put
every validator into one genesis and rewrite the few config values a loopback cluster
needs (ports, peers, timers). The timers are tuned for commit latency on one machine.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from rtc.tools import find_tool, project_root

COMETBFT_VERSION = "v0.39.4"

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


def cometbft_binary() -> Path:
    """The pinned binary that `make setup` installs into .tools/bin, or one named by $RTC_COMETBFT."""
    return find_tool("cometbft", "RTC_COMETBFT", project_root() / ".tools" / "bin" / "cometbft",
                     f"run `make setup` (it builds cometbft {COMETBFT_VERSION} into .tools/bin)")


def bootstrap_binary() -> Path:
    """tools/bootstrap built by `make setup`: CometBFT's state at a height restored offline."""
    return find_tool("rtc-bootstrap", "RTC_BOOTSTRAP", project_root() / ".tools" / "bin" / "rtc-bootstrap",
                     "run `make setup` (it builds tools/bootstrap into .tools/bin)")


def init_home(home: Path, moniker: str) -> None:
    subprocess.run(
        [str(cometbft_binary()), "init", "--home", str(home)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    set_config(home, {"": {"moniker": moniker}})


def node_id(home: Path) -> str:
    result = subprocess.run(
        [str(cometbft_binary()), "show-node-id", "--home", str(home)],
        check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


def validator_entry(home: Path, name: str, power: int = 10) -> dict[str, Any]:
    key = json.loads((home / "config" / "priv_validator_key.json").read_text())
    return {"address": key["address"], "pub_key": key["pub_key"], "power": str(power), "name": name}


def validator_pubkey(home: Path) -> bytes:
    key = json.loads((home / "config" / "priv_validator_key.json").read_text())
    return base64.b64decode(key["pub_key"]["value"])


def write_genesis(homes: list[Path], chain_id: str, validators: list[dict[str, Any]], app_state: dict[str, Any]) -> None:
    genesis = json.loads((homes[0] / "config" / "genesis.json").read_text())
    genesis["chain_id"] = chain_id
    genesis["initial_height"] = "1"
    genesis["validators"] = validators
    genesis["app_state"] = app_state
    text = json.dumps(genesis, indent=2, sort_keys=True) + "\n"
    for home in homes:
        (home / "config" / "genesis.json").write_text(text)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def set_config(home: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Set keys in config.toml, section by section ("" is the top level), keeping everything else."""
    path = home / "config" / "config.toml"
    lines = path.read_text().splitlines()
    pending = {section: dict(values) for section, values in sections.items()}
    section = ""
    key_line = re.compile(r"^([A-Za-z0-9_\-]+)\s*=")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip()
            continue
        match = key_line.match(stripped)
        if match and match.group(1) in pending.get(section, {}):
            key = match.group(1)
            lines[i] = f"{key} = {_toml_value(pending[section].pop(key))}"
    missing = {s: list(v) for s, v in pending.items() if v}
    if missing:
        raise KeyError(f"config.toml of {home} has no such keys: {missing}")
    path.write_text("\n".join(lines) + "\n")


def loopback_config(proxy_app: str, p2p_port: int, rpc_port: int, peers: list[str]) -> dict[str, dict[str, Any]]:
    """The config.toml values of one node of a cluster on loopback (`peers`: "id@host:port").

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
