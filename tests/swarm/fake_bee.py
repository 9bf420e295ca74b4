"""A small stand-in for a Bee node's HTTP API, over a LocalSwarm, for testing BeeSwarm.

Serves on 127.0.0.1 from a thread (stdlib http.server).  Endpoints, as Bee answers them:
POST /bytes, GET /bytes/{ref}, POST /chunks, GET /chunks/{address},
POST /soc/{owner}/{id}?sig=..., GET /feeds/{owner}/{topic}.  Uploads require the
Swarm-Postage-Batch-Id header.

Switches for failure tests: `fail` (every request answers 503), `wrong_reference` (uploads
answer a reference other than the true one), `corrupt_downloads` (downloads and chunks come
back with one byte flipped).  `requests` records (method, path, headers) of every request.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rtc.swarm import ChunkInvalid, FeedConflict, LocalSwarm, NotFound
from rtc.swarm.bmt import cac_address
from rtc.swarm.soc import IDENTIFIER_SIZE, feed_identifier, parse_feed_update, parse_soc, soc_address

BATCH_HEADER = "Swarm-Postage-Batch-Id"


class FakeBee:
    """Start with `with FakeBee(swarm) as bee:`; `bee.url` is its API address."""

    def __init__(self, swarm: LocalSwarm) -> None:
        self.swarm = swarm
        self.fail = False
        self.wrong_reference = False
        self.corrupt_downloads = False
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-bee",
                                        daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeBee:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and close the socket: later requests are refused."""
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeBee:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._thread.is_alive():
            self.stop()


def _handler_for(bee: FakeBee) -> type[BaseHTTPRequestHandler]:
    class Handler(_BeeHandler):
        fake = bee

    return Handler


class _BeeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeBee

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.fake.connections.add(self.connection)

    def finish(self) -> None:
        self.fake.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        parts = [part for part in url.path.split("/") if part]
        self.fake.requests.append((method, url.path, dict(self.headers.items())))
        if self.fake.fail:
            return self._json(503, {"code": 503, "message": "Service Unavailable"})
        try:
            route = (method, parts[0] if parts else "", len(parts))
            if route == ("POST", "bytes", 1):
                return self._post_bytes(body)
            if route == ("GET", "bytes", 2):
                return self._get_bytes(_hex(parts[1]))
            if route == ("POST", "chunks", 1):
                return self._post_chunk(body)
            if route == ("GET", "chunks", 2):
                return self._get_chunk(_hex(parts[1]))
            if route == ("POST", "soc", 3):
                return self._post_soc(_hex(parts[1]), _hex(parts[2]), parse_qs(url.query).get("sig", [""])[0], body)
            if route == ("GET", "feeds", 3):
                return self._get_feed(_hex(parts[1]), _hex(parts[2]))
            return self._json(404, {"code": 404, "message": "Not Found"})
        except NotFound:
            return self._json(404, {"code": 404, "message": "Not Found"})
        except FeedConflict:
            return self._json(409, {"code": 409, "message": "chunk already exists"})
        except ChunkInvalid:
            return self._json(401, {"code": 401, "message": "invalid chunk"})
        except ValueError:
            return self._json(400, {"code": 400, "message": "bad request"})

    # -- endpoints ----------------------------------------------------------------------

    def _post_bytes(self, body: bytes) -> None:
        if not self._has_batch():
            return
        self._reference(self.fake.swarm.upload(body))

    def _get_bytes(self, reference: bytes) -> None:
        self._octets(self.fake.swarm.download(reference))

    def _post_chunk(self, body: bytes) -> None:
        if not self._has_batch():
            return
        address = cac_address(body)
        self.fake.swarm.put_chunk(address, body)
        self._reference(address)

    def _get_chunk(self, address: bytes) -> None:
        self._octets(self.fake.swarm.get_chunk(address))

    def _post_soc(self, owner: bytes, identifier: bytes, signature: str, body: bytes) -> None:
        if not self._has_batch():
            return
        if len(identifier) != IDENTIFIER_SIZE or not signature:
            raise ValueError("bad soc parameters")
        address = soc_address(identifier, owner)
        self.fake.swarm.put_chunk(address, identifier + bytes.fromhex(signature) + body)
        self._reference(address)

    def _get_feed(self, owner: bytes, topic: bytes) -> None:
        latest = self.fake.swarm.latest_feed(owner, topic)
        if latest is None:
            return self._json(404, {"code": 404, "message": "no update found"})
        index, reference = latest
        address = soc_address(feed_identifier(topic, index), owner)
        update = parse_soc(address, self.fake.swarm.get_chunk(address))
        parse_feed_update(update.payload)
        headers = {"Swarm-Feed-Index": index.to_bytes(8, "big").hex(),
                   "Swarm-Feed-Index-Next": (index + 1).to_bytes(8, "big").hex(),
                   "Swarm-Soc-Signature": update.signature.hex()}
        try:
            root = self.fake.swarm.get_chunk(reference)  # Bee resolves the legacy payload's reference
        except NotFound:
            return self._json(404, {"code": 404, "message": "wrapped chunk cannot be retrieved"})
        if self.headers.get("Swarm-Only-Root-Chunk", "").lower() == "true":
            return self._octets(root, headers)
        self._octets(self.fake.swarm.download(reference), headers)

    # -- answers ------------------------------------------------------------------------

    def _has_batch(self) -> bool:
        if self.headers.get(BATCH_HEADER):
            return True
        self._json(400, {"code": 400, "message": "invalid header params",
                         "reasons": [{"field": "swarm-postage-batch-id", "error": "want required:"}]})
        return False

    def _reference(self, reference: bytes) -> None:
        if self.fake.wrong_reference:
            reference = bytes(reversed(reference))
        self._json(201, {"reference": reference.hex()})

    def _octets(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        if self.fake.corrupt_downloads and data:
            data = bytes([data[0] ^ 1]) + data[1:]
        self._send(200, data, "application/octet-stream", headers or {})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", {})

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))

