"""A local Ethereum chain for devnets and tests: anvil from the pinned npm package.

anvil's accounts come from a fixed mnemonic, so a devnet's operators have known,
funded keys; it mines a block per transaction, or, with `block_time`, on a timer only (so
that "finalized" advances while nothing happens; a transaction then waits for the next
tick, and `evm_setAutomine` switches back to a block per transaction).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from rtc.tools import find_tool, project_root

ANVIL_VERSION = "1.7.1"
MNEMONIC = "test test test test test test test test test test test junk"  # anvil's well-known dev mnemonic


class AnvilError(RuntimeError):
    """anvil is missing or did not start; the message says what to do."""


def anvil_binary() -> Path:
    """anvil from the npm package `make setup` installs into tools/, or one named by $RTC_ANVIL."""
    try:
        return find_tool("anvil", "RTC_ANVIL", project_root() / "tools" / "node_modules" / ".bin" / "anvil",
                         f"run `make setup` (it installs the npm package @foundry-rs/anvil {ANVIL_VERSION})")
    except FileNotFoundError as exc:
        raise AnvilError(str(exc)) from None


class Anvil:
    """One anvil process on loopback; stop() (or the context manager) ends it."""

    def __init__(self, port: int, block_time: float | None = None, log_path: Path | None = None,
                 state_path: Path | None = None) -> None:
        self.state_path = state_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.block_time = block_time
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> "Anvil":
        argv = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port), "--mnemonic", MNEMONIC,
                "--accounts", "24", "--chain-id", "31337", "--silent"]
        if self.block_time:
            argv += ["--block-time", str(self.block_time)]
        if self.state_path is not None:
            argv += ["--state", str(self.state_path)]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise AnvilError(f"anvil exited with code {self.process.returncode}" +
                                 (f"; see {self.log_path}" if self.log_path else ""))
            if time.monotonic() > deadline:
                self.stop()
                raise AnvilError(f"anvil did not answer on port {self.port} within {timeout:.0f}s")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                pass
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
            request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=1) as response:
                return "result" in json.loads(response.read())
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
