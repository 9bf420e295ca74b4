"""ABCIServer over real unix sockets, driven by raw asyncio clients."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from abci_testlib import ABCITestClient, request_frame

from rtc.abci import ABCIServer, AddressInUseError, Application, abci_pb as pb
from rtc.abci import server as server_mod
from rtc.abci.wire import encode_uvarint

LOGGER = "rtc.abci"
ROOT = Path(__file__).resolve().parents[2]


class RecordingApp(Application):
    """Echoes txs back in CheckTx.data; raises on the tx b"boom"."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
        self.calls.append("info")
        return pb.ResponseInfo(data="recording-app", last_block_height=7)

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        self.calls.append("check_tx")
        if req.tx == b"boom":
            raise ValueError("the tx exploded")
        return pb.ResponseCheckTx(code=0, data=req.tx)

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        self.calls.append("finalize_block")
        res = super().finalize_block(req)
        res.app_hash = req.height.to_bytes(8, "big")
        return res

    def commit(self, req: pb.RequestCommit) -> pb.ResponseCommit:
        self.calls.append("commit")
        return pb.ResponseCommit(retain_height=1)

    def query(self, req: pb.RequestQuery) -> pb.ResponseQuery:
        return pb.ResponseQuery(code=0, value=req.data[::-1])


# A stream exercising every kind of framing: tiny frames, two-byte prefixes, two Flushes.
# (All requests of the consensus connection: a connection keeps the role of its first one.)
STREAM_REQUESTS: list[dict[str, object]] = [
    {"echo": pb.RequestEcho(message="hello")},
    {"prepare_proposal": pb.RequestPrepareProposal(max_tx_bytes=5, txs=[b"aa", b"bbb", b"c"])},
    {"flush": pb.RequestFlush()},
    {"finalize_block": pb.RequestFinalizeBlock(txs=[b"a" * 150, b"b"], height=5)},
    {"commit": pb.RequestCommit()},
    {"process_proposal": pb.RequestProcessProposal(txs=[b"x"])},
    {"flush": pb.RequestFlush()},
]
STREAM = b"".join(request_frame(**r) for r in STREAM_REQUESTS)
STREAM_KINDS = ["echo", "prepare_proposal", "flush", "finalize_block", "commit", "process_proposal", "flush"]


def check_stream_responses(responses: list[pb.Response]) -> None:
    assert [r.WhichOneof("value") for r in responses] == STREAM_KINDS
    assert responses[0].echo.message == "hello"
    assert list(responses[1].prepare_proposal.txs) == [b"aa", b"bbb"]
    assert [t.code for t in responses[3].finalize_block.tx_results] == [0, 0]
    assert responses[3].finalize_block.app_hash == (5).to_bytes(8, "big")
    assert responses[4].commit.retain_height == 1
    assert responses[5].process_proposal.status == pb.ResponseProcessProposal.ACCEPT


@pytest.fixture
def app() -> RecordingApp:
    return RecordingApp()


@pytest.fixture
async def server(app: RecordingApp, sock_path: str) -> AsyncIterator[ABCIServer]:
    srv = ABCIServer(app, f"unix://{sock_path}", stop_on_disconnect=False)
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the chunks the server received, so tests can force separate reads."""
    sizes: list[int] = []
    original = server_mod._Connection.data_received

    def recording(self: server_mod._Connection, data: bytes) -> None:
        sizes.append(len(data))
        original(self, data)

    monkeypatch.setattr(server_mod._Connection, "data_received", recording)
    return sizes


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.0005)


async def send_and_wait_read(client: ABCITestClient, reads: list[int], data: bytes) -> None:
    """Send data and wait until the server has read exactly that much more."""
    target = sum(reads) + len(data)
    await client.send(data)
    await wait_for(lambda: sum(reads) >= target)


# --------------------------------------------------------------------------------------


async def test_whole_stream_in_one_read(server: ABCIServer, sock_path: str, connect, reads: list[int]) -> None:
    client = await connect(sock_path)
    await client.send(STREAM)
    check_stream_responses(await client.read_responses(len(STREAM_KINDS)))
    assert reads == [len(STREAM)]  # all eight requests arrived in one read


async def test_every_split_point(server: ABCIServer, sock_path: str, connect, reads: list[int]) -> None:
    for cut in range(1, len(STREAM)):
        reads.clear()
        client = await connect(sock_path)
        await send_and_wait_read(client, reads, STREAM[:cut])
        await send_and_wait_read(client, reads, STREAM[cut:])
        assert reads == [cut, len(STREAM) - cut], cut
        check_stream_responses(await client.read_responses(len(STREAM_KINDS)))
        await client.close()
        await wait_for(lambda: server.connection_count == 0)  # the consensus role is free again


async def test_byte_by_byte(server: ABCIServer, sock_path: str, connect, reads: list[int]) -> None:
    client = await connect(sock_path)
    for i in range(len(STREAM)):
        await send_and_wait_read(client, reads, STREAM[i : i + 1])
    assert len(reads) == len(STREAM)
    check_stream_responses(await client.read_responses(len(STREAM_KINDS)))


async def test_replies_in_request_order(server: ABCIServer, sock_path: str, connect) -> None:
    client = await connect(sock_path)
    n = 3000
    data = b"".join(request_frame(check_tx=pb.RequestCheckTx(tx=b"%d" % i)) for i in range(n))
    await client.send(data + request_frame(flush=pb.RequestFlush()))
    responses = await client.read_responses(n + 1)
    assert [r.check_tx.data for r in responses[:n]] == [b"%d" % i for i in range(n)]
    assert responses[n].WhichOneof("value") == "flush"


async def test_replies_wait_for_flush(server: ABCIServer, sock_path: str, connect) -> None:
    client = await connect(sock_path)
    await client.send(request_frame(check_tx=pb.RequestCheckTx(tx=b"t1")))
    await client.send(request_frame(echo=pb.RequestEcho(message="e")))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.reader.read(1), 0.2)  # batched until Flush
    await client.send(request_frame(flush=pb.RequestFlush()))
    responses = await client.read_responses(3)
    assert [r.WhichOneof("value") for r in responses] == ["check_tx", "echo", "flush"]
    assert responses[1].echo.message == "e"


async def test_large_pending_output_is_written_without_flush(
    server: ABCIServer, sock_path: str, connect
) -> None:
    client = await connect(sock_path)
    tx = b"x" * 4096
    count = 2 * (1 << 20) // len(tx) + 8  # > 2 MiB of replies, beyond the pending limit
    # Write without awaiting drain: the server applies backpressure (stops reading while
    # its replies are not read), so a client must read while it writes, as CometBFT does.
    client.writer.write(b"".join(request_frame(check_tx=pb.RequestCheckTx(tx=tx)) for _ in range(count)))
    responses = await client.read_responses(count // 2)  # arrive although no Flush was sent
    assert all(r.check_tx.data == tx for r in responses)


async def test_connections_are_independent(server: ABCIServer, sock_path: str, connect) -> None:
    clients = [await connect(sock_path) for _ in range(4)]  # like CometBFT's four connections
    for i, c in enumerate(clients):
        await c.send(request_frame(echo=pb.RequestEcho(message=f"conn{i}")) + request_frame(flush=pb.RequestFlush()))
    for i, c in enumerate(clients):
        responses = await c.read_responses(2)
        assert responses[0].echo.message == f"conn{i}"
    assert server.connection_count == 4


async def test_default_application_answers(sock_path: str, connect) -> None:
    async with ABCIServer(Application(), f"unix://{sock_path}"):
        flush = {"flush": pb.RequestFlush()}
        by_connection = [
            [
                {"prepare_proposal": pb.RequestPrepareProposal(max_tx_bytes=5, txs=[b"aa", b"bbb", b"c"])},
                {"process_proposal": pb.RequestProcessProposal()},
                {"verify_vote_extension": pb.RequestVerifyVoteExtension()},
                {"finalize_block": pb.RequestFinalizeBlock(txs=[b"1", b"2", b"3"])},
                {"init_chain": pb.RequestInitChain(chain_id="c")},
                flush,
            ],
            [{"insert_tx": pb.RequestInsertTx(tx=b"1")}, {"reap_txs": pb.RequestReapTxs()}, flush],
            [{"offer_snapshot": pb.RequestOfferSnapshot()}, {"list_snapshots": pb.RequestListSnapshots()}, flush],
        ]
        res = []
        for reqs in by_connection:
            client = await connect(sock_path)
            await client.send(b"".join(request_frame(**r) for r in reqs))
            res.append(await client.read_responses(len(reqs)))
        assert list(res[0][0].prepare_proposal.txs) == [b"aa", b"bbb"]
        assert res[0][1].process_proposal.status == pb.ResponseProcessProposal.ACCEPT
        assert res[0][2].verify_vote_extension.status == pb.ResponseVerifyVoteExtension.ACCEPT
        assert len(res[0][3].finalize_block.tx_results) == 3
        assert res[0][4].WhichOneof("value") == "init_chain"
        assert res[1][0].insert_tx.code != 0
        assert list(res[1][1].reap_txs.txs) == []
        assert res[2][0].offer_snapshot.result == pb.ResponseOfferSnapshot.ABORT
        assert res[2][1].WhichOneof("value") == "list_snapshots"


# ---- errors ------------------------------------------------------------------------


async def test_app_exception_becomes_response_exception(
    server: ABCIServer, sock_path: str, connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    client = await connect(sock_path)
    await client.send(
        request_frame(check_tx=pb.RequestCheckTx(tx=b"ok"))
        + request_frame(check_tx=pb.RequestCheckTx(tx=b"boom"))
        + request_frame(check_tx=pb.RequestCheckTx(tx=b"never"))
        + request_frame(flush=pb.RequestFlush())
    )
    responses = await client.read_until_eof()  # the server closes the connection
    assert [r.WhichOneof("value") for r in responses] == ["check_tx", "exception"]
    assert responses[0].check_tx.data == b"ok"
    assert "check_tx: ValueError: the tx exploded" == responses[1].exception.error
    assert isinstance(server.app_error, ValueError)
    records = [r for r in caplog.records if "ResponseException" in r.getMessage()]
    assert records and records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None  # traceback is logged
    assert "the tx exploded" in caplog.text and "Traceback" in caplog.text


async def test_wrong_return_type_is_an_app_error(sock_path: str, connect) -> None:
    class Wrong(Application):
        def info(self, req):  # type: ignore[override]
            return pb.ResponseQuery()

    async with ABCIServer(Wrong(), f"unix://{sock_path}") as srv:
        client = await connect(sock_path)
        await client.send(request_frame(info=pb.RequestInfo()) + request_frame(flush=pb.RequestFlush()))
        responses = await client.read_until_eof()
        assert responses[-1].exception.error.startswith("info: TypeError:")
        assert "expected ResponseInfo" in responses[-1].exception.error
        assert isinstance(srv.app_error, TypeError)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (encode_uvarint(2048), "exceeds the maximum of 1024 bytes"),
        (b"\xff" * 11, "longer than 10 bytes"),
        (b"\x03\xff\xff\xff", "malformed ABCI request"),  # frame with a non-protobuf body
        (b"\x05\xfa\x06\x02\x08\x01", "unknown ABCI request"),  # valid protobuf, field 111
        (b"\x00", "unknown ABCI request"),  # empty Request
    ],
    ids=["oversize", "bad-varint", "garbage-protobuf", "unknown-field", "empty"],
)
async def test_protocol_errors_close_the_connection(
    app: RecordingApp, sock_path: str, connect, caplog: pytest.LogCaptureFixture, raw: bytes, message: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with ABCIServer(app, f"unix://{sock_path}", max_frame_size=1024, stop_on_disconnect=False) as srv:
        client = await connect(sock_path)
        # A valid request first: its reply must still be delivered before the error.
        await client.send(request_frame(echo=pb.RequestEcho(message="before")) + raw)
        responses = await client.read_until_eof()
        assert responses[0].echo.message == "before"
        assert responses[-1].WhichOneof("value") == "exception"
        assert message in responses[-1].exception.error
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert message in errors[0].getMessage() and "closing the connection" in errors[0].getMessage()
        await wait_for(lambda: srv.connection_count == 0)
        assert srv.app_error is None
        # The server itself keeps working for other connections.
        other = await connect(sock_path)
        await other.send(request_frame(echo=pb.RequestEcho(message="still here")) + request_frame(flush=pb.RequestFlush()))
        assert (await other.read_responses(2))[0].echo.message == "still here"


# ---- lifecycle ------------------------------------------------------------------------


async def test_disconnect_stops_serve_forever(
    app: RecordingApp, sock_path: str, connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    srv = ABCIServer(app, f"unix://{sock_path}")
    task = asyncio.create_task(srv.serve_forever())
    await wait_for(lambda: os.path.exists(sock_path))
    # A connection that never speaks ABCI (e.g. a liveness probe) does not count as CometBFT.
    probe = await connect(sock_path)
    await probe.close()
    await asyncio.sleep(0.05)
    assert not task.done()

    clients = [await connect(sock_path) for _ in range(4)]
    # CometBFT's four connections, each with one of its requests.
    first_requests = [{"info": pb.RequestInfo()}, {"check_tx": pb.RequestCheckTx(tx=b"t")},
                      {"finalize_block": pb.RequestFinalizeBlock(height=1)}, {"list_snapshots": pb.RequestListSnapshots()}]
    for c, first in zip(clients, first_requests):
        await c.send(request_frame(**first) + request_frame(flush=pb.RequestFlush()))
        await c.read_responses(2)
    for c in clients[:3]:
        await c.close()
    await asyncio.sleep(0.05)
    assert not task.done()  # one connection is still open
    await clients[3].close()
    await asyncio.wait_for(task, 5)  # returns normally, no exception
    assert srv.stop_reason == "disconnected"
    assert not os.path.exists(sock_path)
    lines = [r.getMessage() for r in caplog.records if "disconnected" in r.getMessage()]
    assert lines == ["CometBFT disconnected; stopping ABCI server"]


async def test_keep_serving_after_disconnect(app: RecordingApp, sock_path: str, connect) -> None:
    srv = ABCIServer(app, f"unix://{sock_path}", stop_on_disconnect=False)
    task = asyncio.create_task(srv.serve_forever())
    await wait_for(lambda: os.path.exists(sock_path))
    for _ in range(2):  # CometBFT restarts and reconnects
        c = await connect(sock_path)
        await c.send(request_frame(echo=pb.RequestEcho(message="x")) + request_frame(flush=pb.RequestFlush()))
        await c.read_responses(2)
        await c.close()
        await asyncio.sleep(0.05)
        assert not task.done()
    srv.stop()
    await asyncio.wait_for(task, 5)
    assert not os.path.exists(sock_path)


async def test_stale_socket_file_is_replaced(app: RecordingApp, sock_path: str, connect) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)  # left behind as if by a crashed process
    stale.close()
    assert os.path.exists(sock_path)
    async with ABCIServer(app, f"unix://{sock_path}"):
        c = await connect(sock_path)
        await c.send(request_frame(echo=pb.RequestEcho(message="x")) + request_frame(flush=pb.RequestFlush()))
        assert (await c.read_responses(2))[0].echo.message == "x"


async def test_refuses_socket_held_by_live_server(app: RecordingApp, sock_path: str, connect) -> None:
    async with ABCIServer(app, f"unix://{sock_path}") as first:
        second = ABCIServer(app, f"unix://{sock_path}")
        with pytest.raises(AddressInUseError, match="already listening"):
            await second.start()
        # The probe did not disturb the first server, and its socket is still in place.
        c = await connect(sock_path)
        await c.send(request_frame(echo=pb.RequestEcho(message="x")) + request_frame(flush=pb.RequestFlush()))
        assert (await c.read_responses(2))[0].echo.message == "x"
        assert first.stop_reason is None


async def test_refuses_non_socket_file(app: RecordingApp, sock_path: str) -> None:
    Path(sock_path).write_text("precious")
    with pytest.raises(AddressInUseError, match="not a socket"):
        await ABCIServer(app, f"unix://{sock_path}").start()
    assert Path(sock_path).read_text() == "precious"


async def test_tcp_address(app: RecordingApp) -> None:
    async with ABCIServer(app, "tcp://127.0.0.1:0") as srv:
        host, port = srv.bound_address.removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        client = ABCITestClient(reader, writer)
        await client.send(request_frame(echo=pb.RequestEcho(message="tcp")) + request_frame(flush=pb.RequestFlush()))
        assert (await client.read_responses(2))[0].echo.message == "tcp"
        await client.close()


def test_bad_addresses() -> None:
    for bad in ["127.0.0.1:26658", "tcp://nohost", "http://x:1", "unix://"]:
        with pytest.raises(ValueError):
            ABCIServer(Application(), bad)


# ---- run_server in a real process -----------------------------------------------------

CHILD = textwrap.dedent(
    """
    import logging, sys
    from rtc.abci import Application, run_server, abci_pb as pb

    class App(Application):
        def check_tx(self, req):
            raise RuntimeError("broken state machine")

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    sys.exit(run_server(App(), "unix://" + sys.argv[1]))
    """
)


def start_child(sock_path: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, sock_path],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 20
    while not os.path.exists(sock_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"child server did not start: {proc.communicate()[1]}")
        time.sleep(0.01)
    return proc


async def child_exchange(sock_path: str, frames: bytes) -> None:
    reader, writer = await asyncio.open_unix_connection(sock_path)
    client = ABCITestClient(reader, writer)
    await client.send(frames)
    await client.read_responses(1)
    await client.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_server_signal_exits_zero(sock_path: str, sig: signal.Signals) -> None:
    proc = start_child(sock_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"received {sig.name}; stopping ABCI server" in err
    assert not os.path.exists(sock_path)


async def test_run_server_disconnect_exits_zero(sock_path: str) -> None:
    proc = start_child(sock_path)
    await child_exchange(sock_path, request_frame(info=pb.RequestInfo()) + request_frame(flush=pb.RequestFlush()))
    _, err = await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == 0, err
    assert "CometBFT disconnected; stopping ABCI server" in err
    assert not os.path.exists(sock_path)


async def test_run_server_app_error_exits_nonzero(sock_path: str) -> None:
    proc = start_child(sock_path)
    await child_exchange(sock_path, request_frame(check_tx=pb.RequestCheckTx(tx=b"x")) + request_frame(flush=pb.RequestFlush()))
    _, err = await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == 1, err
    assert "broken state machine" in err and "Traceback" in err
    assert not os.path.exists(sock_path)
