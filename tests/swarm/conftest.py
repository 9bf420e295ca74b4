"""Fixtures of the Swarm tests: a LocalSwarm, a fake Bee over another one, and a real Bee node when configured.

A real Bee node is used only when BEE_API_URL (and BEE_POSTAGE_BATCH_ID, a usable batch of
that node) are set; otherwise the tests that need one are skipped, saying so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtc.swarm import BeeSwarm, LocalSwarm

from .fake_bee import FakeBee

ROOT = Path(__file__).resolve().parents[2]
VECTORS = Path(os.environ.get("RTC_SWARM_VECTORS", ROOT.parent / "shared" / "vectors" / "swarm-references.json"))
"""The shared vectors file, read where it lives (never copied into the repository)."""

BEE_API_URL = os.environ.get("BEE_API_URL", "")
BEE_POSTAGE_BATCH_ID = os.environ.get("BEE_POSTAGE_BATCH_ID", "")
BATCH = "ab" * 32  # any id: the fake only checks that one is sent

requires_real_bee = pytest.mark.skipif(
    not (BEE_API_URL and BEE_POSTAGE_BATCH_ID),
    reason="no real Bee node: set BEE_API_URL (e.g. http://localhost:1633) and BEE_POSTAGE_BATCH_ID "
           "(a usable postage batch of that node) to run these against it")


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalSwarm]:
    with LocalSwarm.open(tmp_path / "store") as swarm:
        yield swarm


@pytest.fixture
def fake_bee(tmp_path: Path) -> Iterator[FakeBee]:
    with LocalSwarm.open(tmp_path / "bee-store") as backing, FakeBee(backing) as bee:
        yield bee


@pytest.fixture
def fake_bee_swarm(fake_bee: FakeBee) -> Iterator[BeeSwarm]:
    with BeeSwarm(fake_bee.url, BATCH, timeout=10.0) as swarm:
        yield swarm


@pytest.fixture(params=["fake", pytest.param("real", marks=requires_real_bee)])
def bee_swarm(request: pytest.FixtureRequest) -> Iterator[BeeSwarm]:
    """BeeSwarm against the fake server, and against a real Bee node when one is configured."""
    if request.param == "fake":
        yield request.getfixturevalue("fake_bee_swarm")
        return
    with BeeSwarm(BEE_API_URL, BEE_POSTAGE_BATCH_ID, timeout=120.0) as swarm:
        yield swarm
