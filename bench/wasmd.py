"""wasmd (CosmWasm on CometBFT) beside our cluster, on the same machine, timers and load.

What a user would pick instead of us: a WebAssembly VM, consensus and a Merkle store. Built
here from source like CometBFT: the pinned wasmd module from Go's proxy, built in a
writable copy (`go install` refuses its replace directives), with the wasmvm library its
module ships kept beside the binary; and `update_high` as a CosmWasm contract
(bench/wasmd/contract), compiled for the CPU CosmWasm accepts and lowered by binaryen's
wasm-opt (current rustc emits bulk-memory and sign-extension instructions wasmd refuses).

The cluster: `wasmd testnet init-files`, then every node moved onto loopback with our
ports and timers (`loopback_config`), no gas price, no API or gRPC servers; the load
generator's accounts funded in the genesis; the contract stored and instantiated with
transactions signed here (bench/cosmos.py), as every measured transaction is.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from coincurve import PrivateKey

from cosmos import Account, execute_contract, instantiate_contract, query_request, store_code
from kvstore import KvstoreCluster
from loadgen import UpdateHighTxs
from rtc.cometbft.home import NodeHome, set_toml_keys
from rtc.devnet import cometbft

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"
WASMD_VERSION = "v0.70.3"
WASMD = TOOLS / "bin" / "wasmd"
WASMD_STAMP = TOOLS / f"wasmd-{WASMD_VERSION}.installed"
CONTRACT = ROOT / "bench" / "wasmd" / "contract"
CONTRACT_WASM = ROOT / "build" / "wasmd" / "update_high.wasm"
BINARYEN = ROOT / "bench" / "wasmd"  # package.json pinning binaryen (wasm-opt)
DENOM = "stake"
EXECUTE_GAS = 200_000


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:4])}... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def _env() -> dict[str, str]:
    """wasmd finds libwasmvm beside itself."""
    return {"LD_LIBRARY_PATH": str(WASMD.parent)}


# -- building ---------------------------------------------------------------------------------


def build(say: Any) -> None:
    if not WASMD_STAMP.exists():
        say(f"   building wasmd {WASMD_VERSION} from its Go module (several minutes the first time)")
        module = json.loads(_run(["go", "mod", "download", "-json", f"github.com/CosmWasm/wasmd@{WASMD_VERSION}"]))
        source = TOOLS / "src" / f"wasmd-{WASMD_VERSION}"
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(module["Dir"], source)
        for path in [source, *source.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        _run(["go", "build", "-o", str(WASMD), "./cmd/wasmd"], cwd=source, env={"CGO_ENABLED": "1"})
        wasmvm = json.loads(_run(["go", "list", "-m", "-json", "github.com/CosmWasm/wasmvm/v3"], cwd=source))
        shutil.copyfile(Path(wasmvm["Dir"]) / "internal" / "api" / "libwasmvm.x86_64.so",
                        WASMD.parent / "libwasmvm.x86_64.so")
        WASMD_STAMP.touch()
    say(f"   {_run([str(WASMD), 'version'], env=_env()).strip() or WASMD_VERSION}")
    if not CONTRACT_WASM.exists() or CONTRACT_WASM.stat().st_mtime < (CONTRACT / "src" / "lib.rs").stat().st_mtime:
        say("   building the update_high contract (CosmWasm) and lowering it with wasm-opt")
        target = ROOT / "build" / "cargo-wasmd"
        _run(["cargo", "build", "--release", "--locked", "--target", "wasm32-unknown-unknown", "--target-dir",
              str(target), "--manifest-path", str(CONTRACT / "Cargo.toml")], env={"RUSTFLAGS": "-C target-cpu=mvp"})
        if not (BINARYEN / "node_modules" / ".bin" / "wasm-opt").exists():
            _run(["npm", "ci", "--prefix", str(BINARYEN), "--no-audit", "--no-fund", "--loglevel=error"])
        CONTRACT_WASM.parent.mkdir(parents=True, exist_ok=True)
        # Rust's precompiled std uses memory.copy/fill, sign extension and saturating conversions
        # whatever the CPU named: read them, then lower each to MVP instructions.
        _run([str(BINARYEN / "node_modules" / ".bin" / "wasm-opt"), "--enable-bulk-memory", "--enable-sign-ext",
              "--enable-nontrapping-float-to-int", "--enable-mutable-globals", "--llvm-memory-copy-fill-lowering",
              "--signext-lowering", "--llvm-nontrapping-fptoint-lowering", "-Os",
              str(target / "wasm32-unknown-unknown" / "release" / "update_high.wasm"), "-o", str(CONTRACT_WASM)])


# -- the load ----------------------------------------------------------------------------------


class WasmdTxs(UpdateHighTxs):
    """`update_high` executions signed by `sessions` accounts, each account's sequence in order."""

    def __init__(self, chain_id: str, contract: str, accounts: list[Account], symbols: int = 1000) -> None:
        super().__init__(len(accounts), symbols)
        self.chain_id = chain_id
        self.contract = contract
        self.accounts = accounts

    def _signed(self, session: int) -> bytes:
        account = self.accounts[session]
        k = account.sequence
        msg = orjson.dumps({"update_high": {"symbol": self.symbol(session, k), "value": k + 1}})
        return account.sign_tx([execute_contract(account.address, self.contract, msg)], self.chain_id, EXECUTE_GAS)


# -- the cluster --------------------------------------------------------------------------------


class WasmdCluster(KvstoreCluster):
    """Nodes started, waited for and stopped as the kvstore cluster's are; made by wasmd."""

    def __init__(self, home: Path, nodes: int, base_port: int, chain_id: str = "wasmd-bench") -> None:
        super().__init__(home, nodes, base_port, chain_id, app="wasmd")
        self.deployer = Account(PrivateKey(b"\x01" * 32), 0)
        self.accounts: list[Account] = []
        self.contract = ""

    def command(self, index: int) -> list[str]:
        return [str(WASMD), "start", "--home", str(self.node_home(index))]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **_env()}

    def node_home(self, index: int) -> Path:
        return self.home / f"node{index}" / "wasmd"

    def create(self, accounts: int) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        _run([str(WASMD), "testnet", "init-files", "--v", str(self.nodes), "--output-dir", str(self.home),
              "--chain-id", self.chain_id, "--keyring-backend", "test", "--minimum-gas-prices", f"0{DENOM}",
              "--starting-ip-address", "127.0.0.1", "--node-daemon-home", "wasmd"], env=_env())
        homes = [NodeHome(self.node_home(i)) for i in range(self.nodes)]
        ids = [cometbft.node_id(home) for home in homes]
        genesis = json.loads(homes[0].genesis_file.read_text())
        self._fund(genesis, accounts)
        for i, home in enumerate(homes):
            home.genesis_file.write_text(json.dumps(genesis))
            peers = [f"{ids[j]}@127.0.0.1:{self.ports(j)[0]}" for j in range(self.nodes) if j != i]
            config = cometbft.loopback_config("", *self.ports(i), peers)
            del config[""]["proxy_app"]  # the app runs inside wasmd's process
            config["rpc"]["pprof_laddr"] = ""  # the nodes would all take 6060
            config["mempool"]["recheck"] = True  # the SDK's CheckTx needs it for account sequences
            home.set_config(config)
            set_toml_keys(home.path / "config" / "app.toml", {
                "": {"minimum-gas-prices": f"0{DENOM}"}, "api": {"enable": False}, "grpc": {"enable": False},
                "grpc-web": {"enable": False}, "telemetry": {"enabled": False}})

    def _fund(self, genesis: dict[str, Any], count: int) -> None:
        """The deployer and the load generator's accounts, numbered after the testnet's own."""
        app = genesis["app_state"]
        existing = app["auth"]["accounts"]
        first = max((int(a.get("account_number", 0)) for a in existing), default=-1) + 1
        self.deployer.number = first
        self.accounts = [Account(PrivateKey((i + 2).to_bytes(4, "big") * 8), first + 1 + i) for i in range(count)]
        for account in [self.deployer, *self.accounts]:
            existing.append({"@type": "/cosmos.auth.v1beta1.BaseAccount", "address": account.address,
                             "pub_key": None, "account_number": str(account.number), "sequence": "0"})
            app["bank"]["balances"].append({"address": account.address,
                                            "coins": [{"denom": DENOM, "amount": "1000000000000"}]})
        app["bank"]["supply"] = []  # recomputed from the balances

    def deploy(self) -> str:
        """Store and instantiate the contract; its address."""
        sender = self.deployer.address
        stored = self._submit(self.deployer.sign_tx([store_code(sender, CONTRACT_WASM.read_bytes())], self.chain_id,
                                                    30_000_000))
        code_id = int(_attribute(stored, "store_code", "code_id"))
        made = self._submit(self.deployer.sign_tx([instantiate_contract(sender, code_id, "bench", b"{}")],
                                                  self.chain_id, 1_000_000))
        self.contract = _attribute(made, "instantiate", "_contract_address")
        return self.contract

    def _submit(self, tx: bytes, timeout: float = 30.0) -> dict[str, Any]:
        """Broadcast and wait for the transaction's result in a block; its result."""
        url = self.rpc_urls[0]
        reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "broadcast_tx_sync",
                                      "params": {"tx": base64.b64encode(tx).decode()}}, timeout=30).json()
        result = reply.get("result") or {}
        if reply.get("error") or result.get("code"):
            raise RuntimeError(f"wasmd refused a deploy transaction: {reply.get('error') or result.get('log')}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = httpx.get(f"{url}/tx", params={"hash": "0x" + result["hash"]}, timeout=10).json()
            if "result" in found:
                outcome = found["result"]["tx_result"]
                if outcome.get("code"):
                    raise RuntimeError(f"a deploy transaction failed in its block: {outcome.get('log')}")
                return outcome
            time.sleep(0.3)
        raise RuntimeError("a deploy transaction was not committed in time")


def smart_query(contract: str, query: dict[str, Any]) -> bytes:
    """The abci_query data of a smart query (QuerySmartContractStateRequest)."""
    return query_request(contract, orjson.dumps(query))


def _attribute(result: dict[str, Any], event_type: str, key: str) -> str:
    for event in result.get("events") or []:
        if event.get("type") == event_type:
            for attribute in event.get("attributes") or []:
                if attribute.get("key") == key:
                    return str(attribute.get("value"))
    raise RuntimeError(f"no {event_type}.{key} in the transaction's events")
