"""Who may talk to the ABCI server, and how much (review issue 12, findings 1 and 2).

CometBFT opens four connections (consensus, mempool, query, snapshot), each sending only
its own requests. Anything else that connects must not be able to drive FinalizeBlock and
Commit, make the server buffer without bound, or keep the node alive after CometBFT left.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from abci_testlib import request_frame

from rtc.abci import ABCIServer, AddressInUseError, Application, abci_pb as pb
from rtc.abci import server as server_mod
from rtc.abci.wire import DEFAULT_MAX_FRAME_SIZE, encode_uvarint

LOGGER = "rtc.abci"
FLUSH = request_frame(flush=pb.RequestFlush())


class Ledger(Application):
    """Records what reached the state machine."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        self.calls.append(("finalize_block", req.height))
        res = super().finalize_block(req)
        res.app_hash = req.height.to_bytes(8, "big")
        return res

    def commit(self, req: pb.RequestCommit) -> pb.ResponseCommit:
        self.calls.append(("commit", 0))
        return pb.ResponseCommit()


def block(height: int, *txs: bytes) -> bytes:
    return (request_frame(finalize_block=pb.RequestFinalizeBlock(height=height, txs=list(txs)))
            + request_frame(commit=pb.RequestCommit()) + FLUSH)


async def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


# ---- the socket file --------------------------------------------------------------------


async def test_the_unix_socket_is_never_reachable_by_other_users(sock_path: str) -> None:
    """Owner-only (0600) from the moment it has its name, whatever the umask: there is no
    window between bind and chmod in which another user could connect."""
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.add(stat.S_IMODE(os.stat(sock_path).st_mode))
            except FileNotFoundError:
                pass

    watcher = threading.Thread(target=watch)
    old_umask = os.umask(0)  # the worst case: bind() alone would make the socket 0777
    watcher.start()
    try:
        async with ABCIServer(Ledger(), f"unix://{sock_path}"):
            await asyncio.sleep(0.05)
            mode = stat.S_IMODE(os.stat(sock_path).st_mode)
    finally:
        os.umask(old_umask)
        stop.set()
        watcher.join()
    assert mode == 0o600
    assert seen == {0o600}, f"the socket was visible with modes {sorted(oct(m) for m in seen)}"
    assert not [p for p in os.listdir(os.path.dirname(sock_path)) if p.startswith(".")], "temporary files left behind"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file owned by another user")
async def test_a_stale_socket_of_another_user_is_not_removed(sock_path: str) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)
    stale.close()
    os.chown(sock_path, 65534, 65534)
    with pytest.raises(AddressInUseError, match="owned by uid 65534"):
        await ABCIServer(Ledger(), f"unix://{sock_path}").start()
    assert os.stat(sock_path).st_uid == 65534


async def test_a_symlink_in_place_of_the_socket_is_not_followed(sock_path: str, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep")
    os.symlink(target, sock_path)
    with pytest.raises(AddressInUseError, match="not a socket"):
        await ABCIServer(Ledger(), f"unix://{sock_path}").start()
    assert target.read_text() == "keep" and os.path.islink(sock_path)


def test_a_socket_path_too_long_for_the_kernel_is_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="too long for a unix socket"):
        ABCIServer(Ledger(), "unix:///tmp/" + "x" * 120 + "/abci.sock")


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:0", "tcp://:0", "tcp://10.1.2.3:26658", "tcp://[::]:0"])
def test_tcp_listens_on_loopback_only(address: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ABCIServer(Ledger(), address)


# ---- connections ------------------------------------------------------------------------


async def test_a_late_intruder_cannot_drive_finalize_block_and_commit(sock_path: str, connect) -> None:  # type: ignore[no-untyped-def]
    app = Ledger()
    async with ABCIServer(app, f"unix://{sock_path}", stop_on_disconnect=False):
        cometbft = await connect(sock_path)
        await cometbft.send(block(1, b"honest"))
        assert [r.WhichOneof("value") for r in await cometbft.read_responses(3)] == ["finalize_block", "commit", "flush"]
        intruder = await connect(sock_path)
        await intruder.send(block(2, b"forged"))
        answers = await intruder.read_until_eof()
        assert [r.WhichOneof("value") for r in answers] == ["exception"]
        assert "consensus connection is already open" in answers[0].exception.error
        assert app.calls == [("finalize_block", 1), ("commit", 0)]
        # CometBFT's own consensus connection goes on undisturbed.
        await cometbft.send(block(2, b"next"))
        await cometbft.read_responses(3)
        assert app.calls[-2:] == [("finalize_block", 2), ("commit", 0)]


async def test_each_connection_keeps_the_role_of_its_first_request(sock_path: str, connect) -> None:  # type: ignore[no-untyped-def]
    app = Ledger()
    async with ABCIServer(app, f"unix://{sock_path}", stop_on_disconnect=False):
        mempool = await connect(sock_path)
        await mempool.send(request_frame(check_tx=pb.RequestCheckTx(tx=b"t")) + block(1))
        answers = await mempool.read_until_eof()
        assert [r.WhichOneof("value") for r in answers] == ["check_tx", "exception"]
        assert "mempool connection" in answers[1].exception.error and "finalize_block" in answers[1].exception.error
        assert app.calls == []


async def test_the_consensus_role_is_free_again_once_its_connection_closed(sock_path: str, connect) -> None:  # type: ignore[no-untyped-def]
    app = Ledger()
    async with ABCIServer(app, f"unix://{sock_path}", stop_on_disconnect=False) as srv:
        first = await connect(sock_path)
        await first.send(block(1))
        await first.read_responses(3)
        await first.close()
        await wait_for(lambda: srv.connection_count == 0)
        again = await connect(sock_path)  # CometBFT restarted and reconnected
        await again.send(block(2))
        await again.read_responses(3)
        assert [c for c in app.calls if c[0] == "finalize_block"] == [("finalize_block", 1), ("finalize_block", 2)]


async def test_connections_beyond_the_cap_are_refused(
    sock_path: str, connect, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    async with ABCIServer(Ledger(), f"unix://{sock_path}", stop_on_disconnect=False) as srv:
        assert 4 <= srv.max_connections <= 8
        held = [await connect(sock_path) for _ in range(srv.max_connections)]
        for client in held:
            await client.send(request_frame(echo=pb.RequestEcho(message="x")) + FLUSH)
            await client.read_responses(2)
        extra = await connect(sock_path)
        try:
            await extra.send(request_frame(echo=pb.RequestEcho(message="one too many")) + FLUSH)
            assert await extra.read_until_eof() == []  # closed unanswered
        except ConnectionResetError:
            pass  # or reset, when the request was already queued as the server closed
        assert srv.connection_count == srv.max_connections
        assert any("refusing ABCI connection" in r.getMessage() for r in caplog.records)
        await held[0].close()
        await wait_for(lambda: srv.connection_count == srv.max_connections - 1)
        late = await connect(sock_path)  # a slot freed up
        await late.send(request_frame(echo=pb.RequestEcho(message="y")) + FLUSH)
        assert (await late.read_responses(2))[0].echo.message == "y"


async def test_an_idle_extra_connection_does_not_keep_the_node_alive(sock_path: str, connect) -> None:  # type: ignore[no-untyped-def]
    """The node exits with CometBFT even if something else holds a connection open."""
    srv = ABCIServer(Ledger(), f"unix://{sock_path}")
    task = asyncio.create_task(srv.serve_forever())
    await wait_for(lambda: os.path.exists(sock_path))
    lurker = await connect(sock_path)
    await lurker.send(request_frame(echo=pb.RequestEcho(message="hi")) + FLUSH)
    await lurker.read_responses(2)
    cometbft = await connect(sock_path)
    await cometbft.send(block(1))
    await cometbft.read_responses(3)
    await cometbft.close()
    await asyncio.wait_for(task, 5)
    assert srv.stop_reason == "disconnected"


# ---- frame size -------------------------------------------------------------------------


def test_the_default_frame_limit_is_a_block_and_a_margin() -> None:
    """CometBFT's default block (21 MiB) plus 1 MiB, not 64 MiB per connection."""
    assert DEFAULT_MAX_FRAME_SIZE == 22020096 + (1 << 20)
    assert ABCIServer(Ledger(), "unix:///tmp/x.sock").max_frame_size == DEFAULT_MAX_FRAME_SIZE


async def test_an_oversize_frame_closes_only_its_connection(
    sock_path: str, connect, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    app = Ledger()
    async with ABCIServer(app, f"unix://{sock_path}", stop_on_disconnect=False) as srv:
        cometbft = await connect(sock_path)
        await cometbft.send(block(1))
        await cometbft.read_responses(3)
        sender = await connect(sock_path)
        await sender.send(encode_uvarint(srv.max_frame_size + 1) + b"\x00" * 1024)
        answers = await sender.read_until_eof()
        assert "exceeds the maximum" in answers[-1].exception.error
        assert any("exceeds the maximum" in r.getMessage() and "closing the connection" in r.getMessage()
                   for r in caplog.records if r.levelno == logging.ERROR)
        await cometbft.send(block(2))
        await cometbft.read_responses(3)
        assert srv.app_error is None and srv.stop_reason is None


def test_every_request_kind_has_a_connection() -> None:
    """A request kind added to the protocol must be given a role, or the server refuses to start."""
    kinds = {f.name for f in pb.Request.DESCRIPTOR.oneofs_by_name["value"].fields} - {"echo", "flush"}
    assert kinds == set(server_mod.ROLES)
    assert set(server_mod.ROLES.values()) == {"consensus", "mempool", "query", "snapshot"}
