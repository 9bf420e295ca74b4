"""The local chain the devnet will use: anvil from the pinned npm package, started and stopped."""

from __future__ import annotations

import json
import urllib.request

from rtc.ethereum import Anvil


def rpc(url: str, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


def test_anvil_starts_with_funded_dev_accounts_and_stops(tmp_path) -> None:
    with Anvil(30745, log_path=tmp_path / "anvil.log") as chain:
        assert int(rpc(chain.url, "eth_chainId"), 16) == 31337
        accounts = rpc(chain.url, "eth_accounts")
        assert len(accounts) == 24  # the deployer, 16 operators of nodes, 7 of batch validators
        assert int(rpc(chain.url, "eth_getBalance", accounts[0], "latest"), 16) > 10**21
        pid = chain.process.pid
    import os

    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
