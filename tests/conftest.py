"""Shared fixtures: the components `make setup` builds from source under build/wasm."""

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
