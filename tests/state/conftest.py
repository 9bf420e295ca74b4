"""Fixtures shared by the state tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rtc.state import StateStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(store_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(store_path)
    try:
        yield opened
    finally:
        opened.close()
