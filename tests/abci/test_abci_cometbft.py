"""End to end: a real single-node `cometbft node` driving a tiny counter app
through our ABCIServer. Proves the framing, the four connections, Flush
handling and the clean shutdown against the actual Go client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from rtc.abci import ABCIServer, Application, abci_pb as pb
from rtc.abci.wire import encode_frame

ROOT = Path(__file__).resolve().parents[2]
COMETBFT = ROOT / ".tools" / "bin" / "cometbft"


class CounterApp(Application):
    """Counts committed transactions; app hash = count as 8 big-endian bytes."""

    def __init__(self) -> None:
        self.height = 0
        self.count = 0
        self.app_hash = b""
        self.checked: list[bytes] = []
        self.committed_txs: list[bytes] = []
        self.requests: set[str] = set()
        self._pending: tuple[int, int, list[bytes]] | None = None

    def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
        self.requests.add("info")
        return pb.ResponseInfo(
            data="counter", version="1", app_version=1,
            last_block_height=self.height, last_block_app_hash=self.app_hash,
        )

    def init_chain(self, req: pb.RequestInitChain) -> pb.ResponseInitChain:
        self.requests.add("init_chain")
        return pb.ResponseInitChain()

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        self.requests.add("check_tx")
        self.checked.append(req.tx)
        return pb.ResponseCheckTx(code=0)

    def prepare_proposal(self, req: pb.RequestPrepareProposal) -> pb.ResponsePrepareProposal:
        self.requests.add("prepare_proposal")
        return super().prepare_proposal(req)

    def process_proposal(self, req: pb.RequestProcessProposal) -> pb.ResponseProcessProposal:
        self.requests.add("process_proposal")
        return super().process_proposal(req)

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        self.requests.add("finalize_block")
        assert req.height == self.height + 1
        count = self.count + len(req.txs)
        self._pending = (req.height, count, list(req.txs))
        res = super().finalize_block(req)
        res.app_hash = count.to_bytes(8, "big")
        return res

    def commit(self, req: pb.RequestCommit) -> pb.ResponseCommit:
        self.requests.add("commit")
        assert self._pending is not None
        self.height, self.count, txs = self._pending
        self.committed_txs.extend(txs)
        self.app_hash = self.count.to_bytes(8, "big")
        self._pending = None
        return pb.ResponseCommit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_in_section(text: str, section: str, key: str, value: str) -> str:
    """Set `key = value` inside `[section]` of a TOML file (first occurrence)."""
    start = text.index(f"\n[{section}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end
    body, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", text[start:end], count=1)
    assert n == 1, (section, key)
    return text[:start] + body + text[end:]


def configure(home: Path, sock: str, rpc_port: int, p2p_port: int) -> None:
    cfg = home / "config" / "config.toml"
    text = cfg.read_text()
    text = re.sub(r'(?m)^proxy_app = .*$', f'proxy_app = "unix://{sock}"', text, count=1)
    text = set_in_section(text, "rpc", "laddr", f'"tcp://127.0.0.1:{rpc_port}"')
    text = set_in_section(text, "p2p", "laddr", f'"tcp://127.0.0.1:{p2p_port}"')
    text = set_in_section(text, "consensus", "timeout_commit", '"100ms"')
    text = set_in_section(text, "consensus", "timeout_propose", '"1s"')
    cfg.write_text(text)


def rpc_get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.load(resp)


async def until(cond, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}; cometbft log tail:\n{tail}")
        await asyncio.sleep(0.05)


async def init_home(sock_dir: Path, tmp_path: Path) -> tuple[Path, str, Path, int]:
    """A fresh CometBFT home wired to our socket; returns (home, socket, log path, rpc port)."""
    if not COMETBFT.exists():
        pytest.fail(f"{COMETBFT} is missing: run `make setup` to build CometBFT v0.39.4")
    home = tmp_path / "cmt"
    sock = str(sock_dir / "abci.sock")
    init = await asyncio.create_subprocess_exec(
        str(COMETBFT), "init", "--home", str(home),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await init.communicate()
    assert init.returncode == 0, err.decode()
    rpc_port = free_port()
    configure(home, sock, rpc_port, free_port())
    return home, sock, tmp_path / "cometbft.log", rpc_port


async def test_cometbft_single_node_produces_blocks(sock_dir: Path, tmp_path: Path) -> None:
    home, sock, log, rpc_port = await init_home(sock_dir, tmp_path)

    app = CounterApp()
    server = ABCIServer(app, f"unix://{sock}")
    await server.start()
    serving = asyncio.create_task(server.serve_forever())

    with log.open("wb") as logf:
        node = await asyncio.create_subprocess_exec(
            str(COMETBFT), "node", "--home", str(home), stdout=logf, stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await until(lambda: app.height >= 3, 60, "3 blocks", log)
        assert server.connection_count == 4  # consensus, mempool, query, snapshot

        tx = b"counter-tx-1"
        result = await asyncio.to_thread(rpc_get, rpc_port, f"/broadcast_tx_sync?tx=0x{tx.hex()}")
        assert result["result"]["code"] == 0, result
        await until(lambda: tx in app.committed_txs, 30, "the tx to be committed", log)
        assert app.checked.count(tx) >= 1
        assert {"info", "init_chain", "check_tx", "prepare_proposal", "process_proposal",
                "finalize_block", "commit"} <= app.requests

        query_height = app.height
        status = await asyncio.to_thread(rpc_get, rpc_port, "/status")
        assert int(status["result"]["sync_info"]["latest_block_height"]) >= query_height - 1
        assert not serving.done()
        # CometBFT's connections each took their own role (the snapshot one sends nothing without state sync).
        assert {c.role for c in server._connections} == {"consensus", "mempool", "query", None}

        # Something else on the socket cannot drive FinalizeBlock and Commit, and CometBFT goes on.
        reader, writer = await asyncio.open_unix_connection(sock)
        forged = [pb.Request(finalize_block=pb.RequestFinalizeBlock(height=app.height + 1, txs=[b"forged"])),
                  pb.Request(commit=pb.RequestCommit()), pb.Request(flush=pb.RequestFlush())]
        writer.write(b"".join(encode_frame(r.SerializeToString()) for r in forged))
        answer = await asyncio.wait_for(reader.read(), 5)  # read to EOF: the server closed it
        writer.close()
        assert b"consensus connection is already open" in answer
        height = app.height
        await until(lambda: app.height >= height + 2, 30, "2 more blocks after the intruder", log)
        assert b"forged" not in app.committed_txs
    finally:
        if node.returncode is None:
            node.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(node.wait(), 20)
        except asyncio.TimeoutError:
            node.kill()
            await node.wait()

    # CometBFT is gone: the server must notice and return by itself, cleanly.
    await asyncio.wait_for(serving, 10)
    assert server.stop_reason == "disconnected"
    assert server.app_error is None
    assert not os.path.exists(sock)


class FailingApp(CounterApp):
    """Breaks at height 3, as a state machine with a bug would."""

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        if req.height == 3:
            raise RuntimeError("state machine bug at height 3")
        return super().finalize_block(req)


async def test_cometbft_stops_on_application_exception(sock_dir: Path, tmp_path: Path) -> None:
    home, sock, log, _ = await init_home(sock_dir, tmp_path)

    app = FailingApp()
    server = ABCIServer(app, f"unix://{sock}")
    await server.start()
    serving = asyncio.create_task(server.serve_forever())
    with log.open("wb") as logf:
        node = await asyncio.create_subprocess_exec(
            str(COMETBFT), "node", "--home", str(home), stdout=logf, stderr=asyncio.subprocess.STDOUT,
        )
    try:
        # CometBFT must stop by itself after the ResponseException; the server then returns.
        await asyncio.wait_for(serving, 60)
        await asyncio.wait_for(node.wait(), 30)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    assert app.height == 2
    assert isinstance(server.app_error, RuntimeError)
    assert server.stop_reason == "disconnected"
    assert "state machine bug at height 3" in log.read_text(errors="replace")
