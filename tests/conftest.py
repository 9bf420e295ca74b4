"""Shared fixtures: the components `make setup` builds from source under build/wasm.

Ports: tests that start servers use fixed ports below 32768, where Linux's range for
outgoing connections begins (a port there can be taken by any client socket): cluster
devnets from 27000 in steps of 200, single servers and the light-client devnet in
30000-30999 (one hundred per file, noted where they are set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rtc.ethereum import Anvil

ROOT = Path(__file__).resolve().parents[1]
WASM = ROOT / "build" / "wasm"


def component_path(name: str) -> Path:
    path = WASM / f"{name}.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup` to build the example components")
    return path


@pytest.fixture(scope="session")
def wasm_dir() -> Path:
    return WASM


@pytest.fixture(scope="module")
def anvil(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    """A fresh anvil for the test module, on the port the module names as ANVIL_PORT."""
    port = getattr(request.module, "ANVIL_PORT", None)
    if port is None:
        pytest.fail(f"{request.module.__name__} uses the anvil fixture but sets no ANVIL_PORT")
    with Anvil(port, log_path=tmp_path_factory.mktemp("anvil") / "anvil.log") as chain:
        yield chain


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/cluster/ starts real clusters: mark it, so `-m "not cluster"` skips it."""
    for item in items:
        if Path(str(item.fspath)).is_relative_to(ROOT / "tests" / "cluster"):
            item.add_marker(pytest.mark.cluster)
