"""Real multi-node clusters on loopback: CometBFT processes plus our state machines."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from rtc.devnet import Devnet
from rtc.node.config import ClusterSettings
from tests.conftest import component_path

# Each cluster gets its own port range so clusters of different test modules never collide.
_PORTS = itertools.count(int(os.environ.get("RTC_TEST_BASE_PORT", "27000")), 200)


def start_cluster(home: Path, app: str, nodes: int = 4, settings: ClusterSettings | None = None,
                  validators: int = 0, cartel_app: str | None = None, node_apps: dict[str, str] | None = None) -> Devnet:
    """`cartel_app`, `node_apps`: fault injection (components by name), as `rtc devnet up` takes them."""
    devnet = Devnet.create(home, nodes, component_path(app), base_port=next(_PORTS), settings=settings,
                           validators=validators, cartel_app=component_path(cartel_app) if cartel_app else None,
                           node_apps={name: component_path(c) for name, c in (node_apps or {}).items()})
    try:
        devnet.start(timeout=90)
    except BaseException:
        devnet.stop()
        raise
    return devnet


@pytest.fixture(scope="module")
def stock_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("stock") / "devnet", "stock")
    yield devnet
    devnet.stop()


@pytest.fixture(scope="module")
def hostile_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = start_cluster(tmp_path_factory.mktemp("hostile") / "devnet", "hostile")
    yield devnet
    devnet.stop()


def app_hash_at(devnet: Devnet, index: int, height: int) -> str:
    """The app_hash in node `index`'s header at `height`: the state after block height-1."""
    url = devnet.nodes[index].rpc
    header = httpx.get(f"{url}/block", params={"height": height}, timeout=5).json()["result"]["block"]["header"]
    return header["app_hash"]


def assert_all_agree(devnet: Devnet, nodes: list[int] | None = None) -> int:
    indices = list(range(len(devnet.nodes))) if nodes is None else nodes
    height = max(s.height or 0 for s in devnet.status()) + 1
    devnet.wait_for_height(height, nodes=indices, timeout=60)
    hashes = {i: app_hash_at(devnet, i, height) for i in indices}
    assert len(set(hashes.values())) == 1, f"app_hash differs at height {height}: {hashes}"
    return height
