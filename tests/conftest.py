"""Shared fixtures: the components `make setup` builds from source under build/wasm.

Ports: tests that start servers use fixed ports below 32768, where Linux's range for
outgoing connections begins (a port there can be taken by any client socket): cluster
devnets from 27000 in steps of 200, single servers and the light-client devnet in
30000-30999 (one hundred per file, noted where they are set).
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
