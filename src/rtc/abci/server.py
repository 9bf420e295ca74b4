"""Asyncio ABCI socket server: the process boundary between CometBFT and our
state machine.

CometBFT opens four connections (consensus, mempool, query, snapshot) and
never says which is which, but each sends only its own kinds of request
(``proxy/app_conn.go``). So a connection takes the role of its first request
that names one (``ROLES``), keeps it, and no two live connections share a
role: something that connects besides CometBFT can never drive FinalizeBlock
and Commit while CometBFT's consensus connection is open. At most
``MAX_CONNECTIONS`` connections are accepted, and a unix socket is created
owner-only (0600) before it gets its name (see docs/architecture.md, "The
ABCI socket"). On each connection, requests are answered strictly in order. Replies are collected
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
import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

from google.protobuf.message import DecodeError

from rtc.abci._pb.tendermint.abci import types_pb2 as pb
from rtc.abci.application import Application
from rtc.abci.wire import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameError, encode_uvarint

__all__ = ["ABCIServer", "AddressInUseError", "MAX_CONNECTIONS", "ROLES", "run_server", "parse_address"]

log = logging.getLogger("rtc.abci")

# Requests the server answers itself; the rest go to the Application method of the same name.
_SERVER_HANDLED = frozenset({"echo", "flush"})
# Pending replies are pushed to the socket early once they exceed this, even without a Flush.
_MAX_PENDING_BYTES = 1 << 20
#: CometBFT's four connections, plus room for a readiness probe or a reconnect racing the old close.
MAX_CONNECTIONS = 6
#: Which of CometBFT's connections sends each request (its AppConnConsensus, AppConnMempool,
#: AppConnQuery and AppConnSnapshot). Echo and Flush go on any connection.
ROLES: dict[str, str] = {
    **dict.fromkeys(("init_chain", "prepare_proposal", "process_proposal", "extend_vote",
                     "verify_vote_extension", "finalize_block", "commit"), "consensus"),
    **dict.fromkeys(("check_tx", "insert_tx", "reap_txs"), "mempool"),
    **dict.fromkeys(("info", "query"), "query"),
    **dict.fromkeys(("list_snapshots", "offer_snapshot", "load_snapshot_chunk", "apply_snapshot_chunk"), "snapshot"),
}
# sun_path is 108 bytes on Linux, the last one the terminating NUL.
_MAX_UNIX_PATH = 107
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
    """Parse CometBFT's ``proxy_app`` syntax: ``unix:///path/abci.sock`` or ``tcp://host:port``.

    TCP is accepted on loopback only: anything that can reach the port can drive the state
    machine, so it must at least not be another machine.
    """
    if address.startswith("unix://"):
        path = address[len("unix://") :]
        if not path:
            raise ValueError(f"empty unix socket path in {address!r}")
        longest = len(os.fsencode(_temporary_name(path)))
        if longest > _MAX_UNIX_PATH:
            raise ValueError(f"{path} is too long for a unix socket ({longest} bytes while it is created, at most "
                             f"{_MAX_UNIX_PATH}): put the socket in a folder with a shorter path")
        return _Address("unix", path=path)
    if address.startswith("tcp://"):
        hostport = address[len("tcp://") :]
        host, sep, port = hostport.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected tcp://HOST:PORT, got {address!r}")
        host = host.strip("[]")
        if not _is_loopback(host):
            raise ValueError(f"ABCI over TCP listens on loopback only (127.0.0.1 or ::1), not {host or 'every address'!r} "
                             f"in {address!r}; better, use unix:///path/abci.sock in the node's home")
        return _Address("tcp", host=host, port=int(port))
    raise ValueError(f"unsupported ABCI address {address!r} (use unix:///path or tcp://127.0.0.1:port)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _temporary_name(path: str) -> str:
    """Where the socket is bound before it is renamed to `path`: a private folder beside it
    (its longest form: `mkdtemp` adds 8 characters to the prefix)."""
    return os.path.join(os.path.dirname(path) or ".", ".abci" + "x" * 8, "s")


def _bind_private_unix(path: str) -> socket.socket:
    """A unix socket bound at `path` that only its owner can connect to, from the moment it has that name.

    bind() creates the file with the umask's mode and a later chmod would leave a window in
    which anyone may connect; so the socket is bound inside a fresh 0700 folder, made 0600
    there, and only then renamed into place (rename keeps the socket: connect finds it by inode).
    """
    parent = os.path.dirname(path) or "."
    private = tempfile.mkdtemp(prefix=".abci", dir=parent)  # mode 0700, whatever the umask
    temporary = os.path.join(private, "s")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(temporary)
        os.chmod(temporary, 0o600)
        os.rename(temporary, path)
    except BaseException:
        sock.close()
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.rmdir(private)
    return sock


def _peer_of(transport: asyncio.Transport) -> tuple[str, int | None]:
    """A connection's name for the logs, and for a unix socket the peer's uid (SO_PEERCRED)."""
    peer = transport.get_extra_info("peername")
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX and hasattr(socket, "SO_PEERCRED"):
        try:
            pid, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            return f"pid {pid} (uid {uid})", uid
        except OSError:
            pass
    return (str(peer) if peer else "?"), None


def _prepare_unix_path(path: str) -> None:
    """Remove a stale socket file left by a crash of ours; refuse if a live server owns it, if it is
    not a socket (a symlink is not followed) or if another user owns it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AddressInUseError(f"{path} exists and is not a socket; refusing to replace it")
    if st.st_uid != os.geteuid():
        raise AddressInUseError(f"{path} is a socket owned by uid {st.st_uid}, not by this user ({os.geteuid()}); "
                                "refusing to remove it: check who made it, remove it yourself, then start again")
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


_Entry = tuple[Callable[[Any], Any], type, bytes, str]


def _build_dispatch(app: Application) -> dict[str, _Entry]:
    """Map each Request oneof name to (bound app method, expected response class, response tag, role)."""
    table: dict[str, _Entry] = {}
    response_fields = pb.Response.DESCRIPTOR.fields_by_name
    for field in pb.Request.DESCRIPTOR.oneofs_by_name["value"].fields:
        name = field.name
        if name in _SERVER_HANDLED:
            continue
        method = getattr(app, name, None)
        if method is None:
            raise TypeError(f"{type(app).__name__} has no method {name!r} (subclass rtc.abci.Application)")
        role = ROLES.get(name)
        if role is None:
            raise TypeError(f"ABCI request {name!r} has no connection in rtc.abci.server.ROLES; add it there")
        rfield = response_fields[name]
        table[name] = (method, getattr(pb, rfield.message_type.name), _tag(rfield.number), role)
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
        self.role: str | None = None  # "consensus", "mempool", "query" or "snapshot" once a request said which

    # asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer, uid = _peer_of(transport)
        self.peer = f"{peer} conn#{id(self) & 0xFFFF:04x}"
        refusal = self._server._admit(self, uid)
        if refusal is not None:
            log.warning("refusing ABCI connection from %s: %s", self.peer, refusal)
            self._closed = True
            transport.close()

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
                method, rtype, tag, role = entry
                if role != self.role and not self._take_role(role, kind):
                    return False
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
        if self._out_size > _MAX_PENDING_BYTES:
            self._write_out()
        return True

    def _take_role(self, role: str, kind: str) -> bool:
        """Make this the connection of `role`, or close it: False if it had to be closed."""
        if self.role is not None:
            self._protocol_error(f"the {self.role} connection sent {kind}, a request of the {role} connection")
            return False
        holder = self._server._role_holder(role)
        if holder is not None:
            self._protocol_error(f"{kind} on a second {role} connection: the {role} connection is already open "
                                 f"({holder.peer}); only CometBFT's own may send {role} requests")
            return False
        self.role = role
        self._server._role_taken(self)
        return True

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
    process exits with CometBFT instead of lingering (a connection that never
    took a role, say a probe, does not keep it alive). Pass False to keep
    serving (e.g. to let CometBFT restart and reconnect).

    ``max_frame_size`` bounds one request (and so what one connection buffers):
    the node passes its genesis' block size plus a margin
    (:func:`rtc.abci.wire.max_frame_size_for`). ``max_connections`` caps the
    connections open at once; more are closed as they arrive.
    """

    def __init__(
        self,
        app: Application,
        address: str,
        *,
        stop_on_disconnect: bool = True,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if max_connections < 4:
            raise ValueError("max_connections must be at least 4: CometBFT opens four connections")
        self.app = app
        self.address = address
        self._addr = parse_address(address)
        self.stop_on_disconnect = stop_on_disconnect
        self.max_frame_size = max_frame_size
        self.max_connections = max_connections
        self._dispatch = _build_dispatch(app)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._roles: dict[str, _Connection] = {}  # the live connection of each role
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
            sock = _bind_private_unix(path)
            try:
                self._server = await loop.create_unix_server(lambda: _Connection(self), sock=sock)
            except BaseException:
                sock.close()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                raise
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

    def _admit(self, conn: _Connection, uid: int | None) -> str | None:
        """Count a new connection in, or say why it is refused."""
        if uid is not None and uid not in (os.geteuid(), 0):
            return f"uid {uid} is neither this node's user nor root"
        if len(self._connections) >= self.max_connections:
            return (f"{len(self._connections)} connections are open already "
                    f"(CometBFT opens 4; at most {self.max_connections} are accepted)")
        self._connections.add(conn)
        log.debug("ABCI connection from %s (%d open)", conn.peer, len(self._connections))
        return None

    def _role_holder(self, role: str) -> _Connection | None:
        return self._roles.get(role)

    def _role_taken(self, conn: _Connection) -> None:
        assert conn.role is not None
        self._roles[conn.role] = conn
        log.debug("ABCI connection %s is the %s connection", conn.peer, conn.role)
        if not self._spoken:
            log.info("CometBFT connected to the ABCI server")
        self._spoken = True

    def _connection_lost(self, conn: _Connection) -> None:
        if conn not in self._connections:
            return  # refused when it arrived
        self._connections.discard(conn)
        if conn.role is not None and self._roles.get(conn.role) is conn:
            del self._roles[conn.role]
        log.debug("ABCI connection %s closed (%d open)", conn.peer, len(self._connections))
        if self._roles or not self._spoken or self._server is None:
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
    max_connections: int = MAX_CONNECTIONS,
) -> int:
    """Run an ABCI server until CometBFT disconnects or SIGTERM/SIGINT arrives.

    Returns a process exit code: 0 for a normal stop, 1 if an application
    method raised (so a supervisor can tell a crash from a shutdown).
    """
    return asyncio.run(
        _run(app, address, stop_on_disconnect=stop_on_disconnect, max_frame_size=max_frame_size,
             max_connections=max_connections)
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
