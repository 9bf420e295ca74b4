"""Fixtures for the light client tests: CometBFT's own reference values, and a real 4-node devnet."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rtc.devnet import Devnet
from tests.conftest import component_path

VECTORS = Path(__file__).parent / "vectors" / "cometbft_v0.39.4.json"
# This package's own port range, away from the cluster tests' 27000+.
DEVNET_PORT = int(os.environ.get("RTC_LIGHTCLIENT_TEST_PORT", "30000"))
DEVNET_HEIGHTS = 8  # blocks the devnet must reach before the tests read from it


@dataclass
class Sample:
    """One block's `/commit` and `/validators` results, as a node served them."""

    chain_id: str
    commit: dict[str, Any]
    validators: dict[str, Any]

    def copy(self) -> Sample:
        return Sample(self.chain_id, copy.deepcopy(self.commit), copy.deepcopy(self.validators))

    @property
    def header(self) -> dict[str, Any]:
        return self.commit["signed_header"]["header"]

    @property
    def signatures(self) -> list[dict[str, Any]]:
        return self.commit["signed_header"]["commit"]["signatures"]

    @property
    def height(self) -> int:
        return int(self.header["height"])


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())


def go_sample(vectors: dict[str, Any], name: str) -> Sample:
    scenario = next(s for s in vectors["scenarios"] if s["name"] == name)
    return Sample(scenario["chain_id"], scenario["commit"], scenario["validators"])


# Package scope: one devnet for this folder's tests, stopped before other folders' tests run.
@pytest.fixture(scope="package")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet.create(tmp_path_factory.mktemp("lightclient") / "net", 4, component_path("sum"), base_port=DEVNET_PORT)
    try:
        net.start(timeout=90)
        net.wait_for_height(DEVNET_HEIGHTS, timeout=60)
        yield net
    finally:
        net.stop()


def rpc_result(devnet: Devnet, path: str, **params: Any) -> dict[str, Any]:
    body = httpx.get(f"{devnet.nodes[0].rpc}/{path}", params=params, timeout=5).json()
    assert "error" not in body, body
    return body["result"]


def fetch_sample(devnet: Devnet, height: int) -> Sample:
    return Sample(
        devnet.chain_id,
        rpc_result(devnet, "commit", height=height),
        rpc_result(devnet, "validators", height=height, per_page=100),
    )


@pytest.fixture(scope="package")
def devnet_sample(devnet: Devnet) -> Sample:
    """A devnet block that all four validators signed for (a slow vote can make a slot nil or absent)."""
    for height in range(2, DEVNET_HEIGHTS + 1):
        sample = fetch_sample(devnet, height)
        if all(s["block_id_flag"] == 2 for s in sample.signatures):
            return sample
    raise AssertionError("no devnet block among the first heights has four precommits for the block")
