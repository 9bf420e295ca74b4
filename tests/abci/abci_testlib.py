"""Helpers for the ABCI tests: request encoding and a raw asyncio ABCI client.

(A plain module rather than conftest.py, so tests can import it by a unique name.)
"""

from __future__ import annotations

import asyncio

from rtc.abci import abci_pb as pb
from rtc.abci.wire import FrameDecoder, encode_frame


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
