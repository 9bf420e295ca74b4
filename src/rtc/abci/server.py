"""Asyncio ABCI socket server: the process boundary between CometBFT and our
state machine.

CometBFT opens four connections (consensus, mempool, info/query, snapshot)
and never says which is which, so every connection is handled the same way.
On each one, requests are answered strictly in order. Replies are collected
and handed to the socket when CometBFT sends Flush (which it does after every
synchronous call and at most ~20 ms after asynchronous CheckTx calls), so a
burst of requests costs one write, not one per message.

The hot path is ``_Connection.data_received``: a protocol callback (no
coroutine per message), one ``ParseFromString`` per request, and responses
encoded by hand as ``tag + len + SerializeToString()`` of the inner message,
which is byte-for-byte what serializing the ``Response`` wrapper would give,
without copying the inner message into a wrapper first.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import stat
from dataclasses import dataclass
from typing import Any, Callable

from google.protobuf.message import DecodeError

from rtc.abci._pb.tendermint.abci import types_pb2 as pb
from rtc.abci.application import Application
from rtc.abci.wire import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameError, encode_uvarint

__all__ = ["ABCIServer", "AddressInUseError", "run_server", "parse_address"]

log = logging.getLogger("rtc.abci")

# Requests the server answers itself; the rest go to the Application method of the same name.
_SERVER_HANDLED = frozenset({"echo", "flush"})
# Pending replies are pushed to the socket early once they exceed this, even without a Flush.
_MAX_PENDING_BYTES = 1 << 20
_Request = pb.Request
_ResponseEcho = pb.ResponseEcho


class AddressInUseError(RuntimeError):
    """Another live ABCI server is listening on the requested address."""


def _tag(field_number: int) -> bytes:
    return encode_uvarint((field_number << 3) | 2)  # wire type 2: length-delimited


def _response_frame(kind: str, inner: bytes) -> bytes:
    body = _tag(pb.Response.DESCRIPTOR.fields_by_name[kind].number) + encode_uvarint(len(inner)) + inner
    return encode_uvarint(len(body)) + body


_FLUSH_FRAME = _response_frame("flush", b"")
_ECHO_TAG = _tag(pb.Response.DESCRIPTOR.fields_by_name["echo"].number)


def _exception_frame(text: str) -> bytes:
    return _response_frame("exception", pb.ResponseException(error=text).SerializeToString())


# --------------------------------------------------------------------------------------
# Addresses


@dataclass(frozen=True)
class _Address:
    scheme: str  # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0


def parse_address(address: str) -> _Address:
    """Parse CometBFT's ``proxy_app`` syntax: ``unix:///path/abci.sock`` or ``tcp://host:port``."""
    if address.startswith("unix://"):
        path = address[len("unix://") :]
        if not path:
            raise ValueError(f"empty unix socket path in {address!r}")
        return _Address("unix", path=path)
    if address.startswith("tcp://"):
        hostport = address[len("tcp://") :]
        host, sep, port = hostport.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected tcp://HOST:PORT, got {address!r}")
        host = host.strip("[]") or "0.0.0.0"
        return _Address("tcp", host=host, port=int(port))
    raise ValueError(f"unsupported ABCI address {address!r} (use unix:///path or tcp://host:port)")


def _prepare_unix_path(path: str) -> None:
    """Remove a stale socket file left by a crash; refuse if a live server owns it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AddressInUseError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.warning("removing stale ABCI socket %s (no server is listening on it)", path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    except OSError as e:
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)
            return
        raise AddressInUseError(f"cannot probe existing socket {path}: {e}") from e
    finally:
        probe.close()
    raise AddressInUseError(f"another ABCI server is already listening on {path}")


# --------------------------------------------------------------------------------------
# Per-connection protocol


def _build_dispatch(app: Application) -> dict[str, tuple[Callable[[Any], Any], type, bytes]]:
    """Map each Request oneof name to (bound app method, expected response class, response tag)."""
    table: dict[str, tuple[Callable[[Any], Any], type, bytes]] = {}
    response_fields = pb.Response.DESCRIPTOR.fields_by_name
    for field in pb.Request.DESCRIPTOR.oneofs_by_name["value"].fields:
        name = field.name
        if name in _SERVER_HANDLED:
            continue
        method = getattr(app, name, None)
        if method is None:
            raise TypeError(f"{type(app).__name__} has no method {name!r} (subclass rtc.abci.Application)")
        rfield = response_fields[name]
        table[name] = (method, getattr(pb, rfield.message_type.name), _tag(rfield.number))
    return table


class _Connection(asyncio.Protocol):
    """One CometBFT connection: decode, dispatch in order, batch replies until Flush."""

    def __init__(self, server: ABCIServer) -> None:
        self._server = server
        self._dispatch = server._dispatch
        self._decoder = FrameDecoder(server.max_frame_size)
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        self._closed = False
        self.peer = "?"
        self.spoke = False  # has sent at least one valid ABCI request

    # asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer) if peer else f"conn#{id(self) & 0xFFFF:04x}"
        self._server._connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if exc is not None:
            log.info("ABCI connection %s lost: %s", self.peer, exc)
        self._server._connection_lost(self)

    def pause_writing(self) -> None:
        # CometBFT is not reading our replies fast enough: stop reading its requests.
        if self._transport is not None and not self._closed:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()

    def eof_received(self) -> bool:
        return False  # close our side too

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            frames = self._decoder.feed(data)
        except FrameError as e:
            # Answer the complete requests that preceded the bad bytes, then give up.
            if not e.frames or self._handle(e.frames):
                self._protocol_error(f"invalid ABCI framing: {e}")
            return
        if frames:
            self._handle(frames)

    def _handle(self, frames: list[bytes]) -> bool:
        """Answer complete requests in order; False if the connection had to be closed."""
        out = self._out
        append = out.append
        dispatch = self._dispatch
        for payload in frames:
            req = _Request()
            try:
                req.ParseFromString(payload)
            except DecodeError as e:
                self._protocol_error(f"malformed ABCI request ({len(payload)} bytes, not a Request protobuf: {e})")
                return False
            kind = req.WhichOneof("value")
            entry = dispatch.get(kind) if kind is not None else None
            if entry is not None:
                method, rtype, tag = entry
                try:
                    res = method(getattr(req, kind))
                    if type(res) is not rtype:
                        raise TypeError(
                            f"{getattr(method, '__qualname__', kind)} returned {type(res).__name__}, "
                            f"expected {rtype.__name__}"
                        )
                    inner = res.SerializeToString()
                except Exception as e:  # noqa: BLE001 - every app failure must reach CometBFT
                    self._app_error(kind, e)
                    return False
                n = len(inner)
                body_len = len(tag) + len(encode_uvarint(n)) + n
                append(encode_uvarint(body_len) + tag + encode_uvarint(n))
                append(inner)
                self._out_size += body_len
            elif kind == "flush":
                append(_FLUSH_FRAME)
                self._write_out()
            elif kind == "echo":
                inner = _ResponseEcho(message=req.echo.message).SerializeToString()
                body = _ECHO_TAG + encode_uvarint(len(inner)) + inner
                append(encode_uvarint(len(body)) + body)
                self._out_size += len(body)
            else:
                what = f"oneof field {kind!r}" if kind else f"no known request field ({len(payload)} bytes)"
                self._protocol_error(f"unknown ABCI request: {what}")
                return False
        if not self.spoke:
            self._mark_spoke()
        if self._out_size > _MAX_PENDING_BYTES:
            self._write_out()
        return True

    def _mark_spoke(self) -> None:
        self.spoke = True
        self._server._connection_spoke(self)

    # helpers ------------------------------------------------------------------------

    def _write_out(self) -> None:
        if self._out:
            assert self._transport is not None
            self._transport.write(b"".join(self._out) if len(self._out) > 1 else self._out[0])
            self._out.clear()
        self._out_size = 0

    def _close_with(self, text: str) -> None:
        """Send everything already answered plus a ResponseException, then close."""
        self._out.append(_exception_frame(text))
        self._write_out()
        self._closed = True
        assert self._transport is not None
        self._transport.close()  # flushes the buffered bytes first

    def _protocol_error(self, text: str) -> None:
        log.error("ABCI connection %s: %s; closing the connection", self.peer, text)
        self._close_with(text)

    def _app_error(self, kind: str, exc: Exception) -> None:
        log.error(
            "ABCI %s raised %s; answering ResponseException (CometBFT will stop) and closing connection %s",
            kind,
            type(exc).__name__,
            self.peer,
            exc_info=exc,
        )
        self._server.app_error = exc
        if not self.spoke:
            self._mark_spoke()  # a request reached the app: this was CometBFT
        self._close_with(f"{kind}: {type(exc).__name__}: {exc}")

    def abort(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()


# --------------------------------------------------------------------------------------
# Server


class ABCIServer:
    """Serve an :class:`Application` to CometBFT over a unix or TCP socket.

    ``stop_on_disconnect`` (default): once CometBFT has connected and spoken,
    losing all its connections makes :meth:`serve_forever` return, so the node
    process exits with CometBFT instead of lingering. Pass False to keep
    serving (e.g. to let CometBFT restart and reconnect).
    """

    def __init__(
        self,
        app: Application,
        address: str,
        *,
        stop_on_disconnect: bool = True,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self.app = app
        self.address = address
        self._addr = parse_address(address)
        self.stop_on_disconnect = stop_on_disconnect
        self.max_frame_size = max_frame_size
        self._dispatch = _build_dispatch(app)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._spoken = False
        self._stopped = asyncio.Event()
        self._socket_id: tuple[int, int] | None = None
        #: Set when an application method raised (the node should exit non-zero).
        self.app_error: BaseException | None = None
        #: Why serve_forever returned ("disconnected", "stopped: ...").
        self.stop_reason: str | None = None

    @property
    def bound_address(self) -> str:
        """The address actually listened on (with the real port for ``tcp://host:0``)."""
        if self._addr.scheme == "tcp" and self._server is not None and self._server.sockets:
            host, port = self._server.sockets[0].getsockname()[:2]
            return f"tcp://{host}:{port}"
        return self.address

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        """Bind and start accepting connections (returns once listening)."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        if self._addr.scheme == "unix":
            path = self._addr.path
            _prepare_unix_path(path)
            self._server = await loop.create_unix_server(lambda: _Connection(self), path=path)
            st = os.stat(path)
            self._socket_id = (st.st_dev, st.st_ino)
        else:
            self._server = await loop.create_server(
                lambda: _Connection(self), self._addr.host, self._addr.port, reuse_address=True
            )
        log.info("ABCI server listening on %s", self.bound_address)

    async def serve_forever(self) -> None:
        """Serve until :meth:`stop` is called or CometBFT disconnects; always cleans up."""
        await self.start()
        try:
            await self._stopped.wait()
        finally:
            await self.close()

    def stop(self, reason: str = "stop requested") -> None:
        """Make :meth:`serve_forever` return (call from the event loop thread)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stopped.set()

    async def close(self) -> None:
        """Stop listening, close all connections, remove our unix socket file."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._connections):
            conn.abort()
        if self._addr.scheme == "unix":
            self._remove_socket_file()
        await server.wait_closed()
        # Let the transports run their connection_lost callbacks.
        await asyncio.sleep(0)

    async def __aenter__(self) -> ABCIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _remove_socket_file(self) -> None:
        path = self._addr.path
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == self._socket_id:
                os.unlink(path)
        except FileNotFoundError:
            pass

    # connection bookkeeping --------------------------------------------------------

    def _connection_made(self, conn: _Connection) -> None:
        self._connections.add(conn)
        log.debug("ABCI connection from %s (%d open)", conn.peer, len(self._connections))

    def _connection_spoke(self, conn: _Connection) -> None:
        if not self._spoken:
            log.info("CometBFT connected to the ABCI server")
        self._spoken = True

    def _connection_lost(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        log.debug("ABCI connection %s closed (%d open)", conn.peer, len(self._connections))
        if self._connections or not self._spoken or self._server is None:
            return
        if self.stop_on_disconnect:
            log.info("CometBFT disconnected; stopping ABCI server")
            self.stop("disconnected")
        else:
            log.info("CometBFT disconnected; waiting for it to reconnect")
            self._spoken = False


# --------------------------------------------------------------------------------------
# Runner


def run_server(
    app: Application,
    address: str,
    *,
    stop_on_disconnect: bool = True,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> int:
    """Run an ABCI server until CometBFT disconnects or SIGTERM/SIGINT arrives.

    Returns a process exit code: 0 for a normal stop, 1 if an application
    method raised (so a supervisor can tell a crash from a shutdown).
    """
    return asyncio.run(
        _run(app, address, stop_on_disconnect=stop_on_disconnect, max_frame_size=max_frame_size)
    )


async def _run(app: Application, address: str, **kwargs: Any) -> int:
    server = ABCIServer(app, address, **kwargs)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        log.info("received %s; stopping ABCI server", sig.name)
        server.stop(f"signal {sig.name}")

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / platform
            pass
    try:
        await server.start()  # after the handlers, so a signal is never missed once listening
        await server.serve_forever()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 1 if server.app_error is not None else 0
