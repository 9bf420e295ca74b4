"""A malicious Bee cannot make a reader buffer an unbounded body (review issue 12, finding 4).

Every answer is read as a stream up to what it can legitimately be: a content-addressed chunk
4096+8 bytes, a single-owner chunk 32+65 more, data the span its root chunk commits to (and at
most `max_download_bytes`), a JSON answer 64 KiB; more is refused, with a clear error, after
reading at most one network read past the limit.
"""

from __future__ import annotations

import json
import tempfile
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rtc.swarm import BeeSwarm, ChunkInvalid, FeedSigner, LocalSwarm, SwarmError, bytes_reference
from rtc.swarm.bmt import cac_address, encode_span

from .conftest import BATCH

HUGE = 48 * 1024 * 1024  # what the hostile Bee sends, in 64 KiB pieces
PIECE = b"\x00" * 65536
# Peak memory a bounded read may take (a few network reads, the chunk, httpx's own buffers).
BOUNDED = 2 * 1024 * 1024

Answer = Callable[[BaseHTTPRequestHandler], None]


def endless(status: int = 200, length: bool = True, content_type: str = "application/octet-stream") -> Answer:
    """An answer of HUGE bytes, with a Content-Length or chunked; stops when the client hangs up."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        if length:
            handler.send_header("Content-Length", str(HUGE))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Swarm-Feed-Index", "0000000000000000")
        handler.end_headers()
        try:
            for _ in range(HUGE // len(PIECE)):
                if length:
                    handler.wfile.write(PIECE)
                else:
                    handler.wfile.write(b"%x\r\n" % len(PIECE) + PIECE + b"\r\n")
            if not length:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the reader gave up, as it should

    return answer


def octets(data: bytes) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return answer


class HostileBee:
    """Answers each request by the first path prefix that matches, in `routes`."""

    def __init__(self, routes: dict[str, Answer]) -> None:
        routes_ = routes

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                for prefix, answer in routes_.items():
                    if self.path.startswith(prefix):
                        return answer(self)
                body = json.dumps({"code": 404, "message": "Not Found"}).encode()
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hostile() -> Iterator[Callable[[dict[str, Answer]], BeeSwarm]]:
    opened: list[tuple[HostileBee, BeeSwarm]] = []

    def make(routes: dict[str, Answer]) -> BeeSwarm:
        bee = HostileBee(routes)
        swarm = BeeSwarm(bee.url, BATCH, timeout=10.0)
        opened.append((bee, swarm))
        return swarm

    yield make
    for bee, swarm in opened:
        swarm.close()
        bee.close()


def peak_while(call: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """What `call` raised (None if nothing) and the peak of memory allocated meanwhile."""
    tracemalloc.start()
    try:
        call()
        raised = None
    except BaseException as exc:  # noqa: BLE001 - returned for the test to judge
        raised = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, peak


REFERENCE = bytes_reference(b"some data")


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
def test_an_oversize_chunk_is_refused_without_buffering_it(hostile, length: bool) -> None:  # type: ignore[no-untyped-def]
    swarm = hostile({"/chunks/": endless(length=length)})
    raised, peak = peak_while(lambda: swarm.has(REFERENCE))
    assert isinstance(raised, ChunkInvalid) and "more than 4104 bytes" in str(raised), raised
    assert peak < BOUNDED, f"{peak} bytes allocated to refuse it"


def test_an_oversize_feed_update_is_refused_without_buffering_it(hostile) -> None:  # type: ignore[no-untyped-def]
    swarm = hostile({"/chunks/": endless(length=False)})
    owner, topic = FeedSigner(b"\x01" * 32).owner, b"\x02" * 32
    raised, peak = peak_while(lambda: swarm.feed_at(owner, topic, 0))
    assert isinstance(raised, ChunkInvalid) and "more than 4201 bytes" in str(raised), raised
    assert peak < BOUNDED


def test_data_longer_than_its_span_is_refused_without_buffering_it(hostile) -> None:  # type: ignore[no-untyped-def]
    data = bytes(range(256)) * 40  # 10240 bytes: three leaf chunks under the root
    reference = bytes_reference(data)
    with tempfile.TemporaryDirectory() as folder, LocalSwarm.open(Path(folder)) as local:
        local.upload(data)
        root = local.get_chunk(reference)  # the true root chunk
    assert root[:8] == encode_span(len(data)) and cac_address(root) == reference
    swarm = hostile({f"/chunks/{reference.hex()}": octets(root), "/bytes/": endless(length=False)})
    raised, peak = peak_while(lambda: swarm.download(reference))
    assert isinstance(raised, ChunkInvalid) and "more than 10240 bytes, all that" in str(raised), raised
    assert peak < BOUNDED


def test_data_beyond_the_download_limit_is_refused_before_it_is_fetched(hostile) -> None:  # type: ignore[no-untyped-def]
    """The span of the root chunk is authentic (the reference commits to it); too large is refused up front."""
    leaf_references = b"\x11" * 32 * 128
    root = encode_span(1 << 40) + leaf_references  # a 1 TiB file's root chunk
    reference = cac_address(root)
    requested: list[str] = []

    def counted(handler: BaseHTTPRequestHandler) -> None:
        requested.append(handler.path)
        endless()(handler)

    swarm = hostile({f"/chunks/{reference.hex()}": octets(root), "/bytes/": counted})
    with pytest.raises(SwarmError, match="max_download_bytes"):
        swarm.download(reference)
    assert requested == []


def test_a_huge_json_answer_is_refused(hostile) -> None:  # type: ignore[no-untyped-def]
    swarm = hostile({"/bytes": endless(status=201, length=False, content_type="application/json")})
    raised, peak = peak_while(lambda: swarm.upload(b"x"))
    assert isinstance(raised, SwarmError) and "more than 65536 bytes" in str(raised), raised
    assert peak < BOUNDED


def test_a_huge_error_body_is_cut_to_a_message(hostile) -> None:  # type: ignore[no-untyped-def]
    swarm = hostile({"/chunks/": endless(status=500)})
    raised, peak = peak_while(lambda: swarm.has(REFERENCE))
    assert isinstance(raised, SwarmError) and "answered 500" in str(raised), raised
    assert len(str(raised)) < 1000 and peak < BOUNDED


def test_the_feed_hint_reads_no_body(hostile) -> None:  # type: ignore[no-untyped-def]
    owner, topic = FeedSigner(b"\x01" * 32).owner, b"\x02" * 32
    swarm = hostile({"/feeds/": endless(length=False)})
    raised, peak = peak_while(lambda: swarm._feed_index_hint(owner, topic))
    assert raised is None and peak < BOUNDED
