"""Shared fixtures for the ABCI tests: generated stubs, short unix socket paths,
and an asyncio ABCI test client."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

try:
    import rtc.abci  # noqa: F401
except ImportError:  # stubs not generated yet (fresh clone without `make setup`)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py")], check=True)

from abci_testlib import ABCITestClient  # noqa: E402

# sun_path is 108 bytes on Linux; pytest's tmp_path can get longer than that.
_MAX_SOCK_PATH = 100


@pytest.fixture
def sock_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose socket paths fit in sun_path: tmp_path when short enough."""
    if len(str(tmp_path / "abci.sock")) <= _MAX_SOCK_PATH:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="abci-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def sock_path(sock_dir: Path) -> str:
    return str(sock_dir / "abci.sock")


@pytest.fixture
async def connect() -> AsyncIterator[object]:
    """Factory for test clients; closes them all at the end of the test."""
    clients: list[ABCITestClient] = []

    async def _connect(path: str) -> ABCITestClient:
        client = await ABCITestClient.connect(path)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        await client.close()
