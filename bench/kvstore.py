"""The reference: CometBFT's built-in kvstore on the same loopback cluster settings as ours.

Same binary, same timers and p2p settings (`rtc.devnet.cometbft.loopback_config`), same
port layout; the only difference is `proxy_app`, so the application runs inside the
CometBFT process and costs next to nothing. `kvstore` keeps its state in memory (the
ceiling); `persistent_kvstore` keeps it in a database on disk, so the two side by side
show what durability alone costs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from rtc.devnet import cometbft
from rtc.tools import cometbft_binary

PORTS_PER_NODE = 10


class KvstoreCluster:
    def __init__(self, home: Path, nodes: int, base_port: int, chain_id: str = "kvstore-bench",
                 app: str = "kvstore") -> None:
        self.app = app  # "kvstore" or "persistent_kvstore"
        self.home = home
        self.nodes = nodes
        self.base_port = base_port
        self.chain_id = chain_id
        self.processes: list[subprocess.Popen[bytes]] = []

    def ports(self, index: int) -> tuple[int, int]:
        start = self.base_port + PORTS_PER_NODE * index
        return start, start + 1  # p2p, rpc

    @property
    def rpc_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports(i)[1]}" for i in range(self.nodes)]

    def create(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        homes = [cometbft.init_home(self.home / f"node{i}", f"node{i}") for i in range(self.nodes)]
        ids = [cometbft.node_id(home) for home in homes]
        validators = [home.validator(10, f"node{i}") for i, home in enumerate(homes)]
        cometbft.write_genesis(homes, self.chain_id, validators, {})
        for i, home in enumerate(homes):
            peers = [f"{ids[j]}@127.0.0.1:{self.ports(j)[0]}" for j in range(self.nodes) if j != i]
            p2p, rpc = self.ports(i)
            home.set_config(cometbft.loopback_config(self.app, p2p, rpc, peers))

    def command(self, index: int) -> list[str]:
        """What runs node `index` (a subclass runs another binary)."""
        return [str(cometbft_binary()), "node", "--home", str(self.home / f"node{index}")]

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self, timeout: float = 60.0) -> None:
        for i in range(self.nodes):
            log = open(self.home / f"node{i}.log", "ab")
            self.processes.append(subprocess.Popen(
                self.command(i), env=self.environment(),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
            log.close()
        deadline = time.monotonic() + timeout
        while not all(height(url) >= 2 for url in self.rpc_urls):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                raise RuntimeError(f"the {self.app} cluster did not start; see {self.home}/node*.log")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = []


def height(rpc_url: str) -> int:
    try:
        return int(httpx.get(f"{rpc_url}/status", timeout=2).json()["result"]["sync_info"]["latest_block_height"])
    except (httpx.HTTPError, KeyError, ValueError):
        return 0
