"""Shared fixtures for the ABCI tests: generated stubs, short unix socket paths,
and an asyncio ABCI test client."""

from __future__ import annotations

import asyncio
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

from rtc.abci import abci_pb as pb  # noqa: E402
from rtc.abci.wire import FrameDecoder, encode_frame  # noqa: E402

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


def request_frame(**kwargs: object) -> bytes:
    """Encode one framed Request, e.g. ``request_frame(echo=pb.RequestEcho(message="x"))``."""
    return encode_frame(pb.Request(**kwargs).SerializeToString())


class ABCITestClient:
    """Minimal raw ABCI client: write bytes, read framed Responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._decoder = FrameDecoder()
        self._ready: list[bytes] = []

    @classmethod
    async def connect(cls, path: str) -> ABCITestClient:
        reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_responses(self, n: int, timeout: float = 5.0) -> list[pb.Response]:
        async def _read() -> list[pb.Response]:
            while len(self._ready) < n:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise EOFError(f"connection closed after {len(self._ready)} of {n} responses")
                self._ready.extend(self._decoder.feed(chunk))
            out, self._ready = self._ready[:n], self._ready[n:]
            return [pb.Response.FromString(b) for b in out]

        return await asyncio.wait_for(_read(), timeout)

    async def read_until_eof(self, timeout: float = 5.0) -> list[pb.Response]:
        async def _read() -> list[pb.Response]:
            while chunk := await self.reader.read(65536):
                self._ready.extend(self._decoder.feed(chunk))
            out, self._ready = self._ready, []
            return [pb.Response.FromString(b) for b in out]

        return await asyncio.wait_for(_read(), timeout)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass


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
