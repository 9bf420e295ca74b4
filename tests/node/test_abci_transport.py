"""How a node and its CometBFT are wired (review issue 12, findings 1 and 2): a private unix
socket in the node's home, TCP only when the operator asks for it, and a frame limit from
the genesis' block size."""

from __future__ import annotations

import json
import logging
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from rtc.devnet import Devnet, cometbft
from rtc.devnet.manifest import NodeInfo
from rtc.node import runner
from rtc.node.config import NodeConfig


def node_home(tmp_path: Path, abci: str, block_max_bytes: str | None = None, **config: Any) -> Path:
    """A node home with rtc.json and a genesis, without CometBFT's keys."""
    home = tmp_path / "node"
    (home / "config").mkdir(parents=True)
    NodeConfig(abci=abci, backend="missing.wasm", **config).save(home)
    genesis: dict[str, Any] = {"chain_id": "c", "validators": [], "app_state": {"code_hash": "00" * 32}}
    if block_max_bytes is not None:
        genesis["consensus_params"] = {"block": {"max_bytes": block_max_bytes, "max_gas": "-1"}}
    (home / "config" / "genesis.json").write_text(json.dumps(genesis))
    return home


class Served:
    """Stands in for the ABCI server and the app, recording how the node would serve."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

        class App:
            watcher = None

            class store:  # noqa: N801 - mimics app.store.close()
                @staticmethod
                def close() -> None:
                    pass

        def run_server(app: object, address: str, **kwargs: Any) -> int:
            self.calls.append((address, kwargs))
            return 0

        monkeypatch.setattr(runner, "build_app", lambda home, eth_rpc=None: (App(), NodeConfig.load(home)))
        monkeypatch.setattr(runner, "history_uploader", lambda home, config, app: None)
        monkeypatch.setattr(runner, "checkpoint_poster", lambda config, app: None)
        monkeypatch.setattr(runner, "run_server", run_server)


def test_a_devnet_node_serves_abci_on_a_unix_socket_in_its_home(tmp_path: Path) -> None:
    home = cometbft.init_home(tmp_path / "node0", "node0").path
    info = NodeInfo("node0", str(home), 1, 2, 3, "id")
    Devnet(tmp_path, "c", [info], "00" * 32)._configure(info, [])
    address = f"unix://{home}/abci.sock"
    assert NodeConfig.load(home).abci == address
    assert tomllib.loads((home / "config" / "config.toml").read_text())["proxy_app"] == address
    assert stat.S_IMODE(home.stat().st_mode) & 0o077 == 0  # cometbft init makes the home private too


def test_the_node_refuses_tcp_abci_unless_the_operator_asks(tmp_path: Path) -> None:
    home = node_home(tmp_path, "tcp://127.0.0.1:26658")
    with pytest.raises(SystemExit, match="allow_tcp_abci") as refused:
        runner.run_node(home)
    assert "unix://" in str(refused.value)  # says what to use instead


def test_tcp_when_asked_is_loopback_only_and_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    served = Served(monkeypatch)
    caplog.set_level(logging.WARNING, logger="rtc.node")
    home = node_home(tmp_path, "tcp://127.0.0.1:26658", allow_tcp_abci=True)
    assert runner.run_node(home) == 0
    assert served.calls[0][0] == "tcp://127.0.0.1:26658"
    assert any("any local process" in r.getMessage() for r in caplog.records)
    NodeConfig(abci="tcp://0.0.0.0:26658", backend="x", allow_tcp_abci=True).save(home)
    with pytest.raises(SystemExit, match="loopback"):
        runner.run_node(home)


@pytest.mark.parametrize(("block_max_bytes", "frame"), [
    ("52428800", 51 * 1024 * 1024),  # a 50 MiB block and 1 MiB for the rest of the request
    (None, 22 * 1024 * 1024),  # CometBFT's default block size
    ("-1", 101 * 1024 * 1024),  # no limit in genesis: CometBFT's own cap
])
def test_the_frame_limit_comes_from_the_genesis_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_max_bytes: str | None, frame: int
) -> None:
    served = Served(monkeypatch)
    home = node_home(tmp_path, f"unix://{tmp_path}/abci.sock", block_max_bytes)
    assert runner.run_node(home) == 0
    assert served.calls[0][1]["max_frame_size"] == frame
