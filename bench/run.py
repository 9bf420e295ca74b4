"""`make bench`: measured figures, written to bench/results/latest.json.

For now: per-call VM overhead (fresh instance per call) and commit latency of single
calls on a local 4-node devnet. The full suite beside CometBFT's kvstore is issue 6.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtc.client import NodeClient  # noqa: E402
from rtc.devnet import Devnet  # noqa: E402
from rtc.vm import Backend, BlockInfo  # noqa: E402

WASM = ROOT / "build" / "wasm"


class MemoryState:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        return []


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def vm_overhead(component: str, call: dict, n: int = 5000) -> dict:
    backend = Backend.from_file(WASM / f"{component}.wasm")
    prepared = backend.prepare(call)
    state, block = MemoryState(), BlockInfo(1, 0)
    for _ in range(200):
        backend.execute(prepared, state, block)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        outcome = backend.execute(prepared, state, block)
        samples.append((time.perf_counter() - start) * 1e6)
        assert outcome.ok, outcome.error
    return {"call": call, "p50_us": round(percentile(samples, 0.5), 1), "p99_us": round(percentile(samples, 0.99), 1),
            "mean_us": round(statistics.fmean(samples), 1), "calls": n}


async def verification_cost(devnet: Devnet, n: int = 200) -> dict:
    """What a client spends to verify one result: Merkle proof plus the commit's signatures."""
    from nacl.signing import SigningKey

    from rtc.client import Session
    from rtc.client.lightclient import verify_commit
    from rtc.client.verify import TrustedValidators, verified_result
    from rtc.state import Proof, check_proof

    async with NodeClient(devnet.nodes[0].rpc) as client:
        trusted = await TrustedValidators.from_genesis(client)
        session = Session(client, SigningKey.generate())
        await session.call_and_wait({"function": "update_high", "symbol": "VERIFY", "value": 1.0})
        receipt = await verified_result(client, session.key_bytes, 0, trusted)
        response = await client.abci_query(f"/result/{session.key_bytes.hex()}/0", prove=True)
        commit = await client.rpc("commit", height=str(receipt.header_height))
        validators = await client.rpc("validators", height=str(receipt.header_height))
    import base64

    proof = Proof.from_bytes(base64.b64decode(response["proofOps"]["ops"][0]["data"]))
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        verified = verify_commit(trusted.chain_id, commit["signed_header"], validators, trusted.validators_hash)
        check_proof(verified.app_hash, proof)
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(percentile(samples, 0.5), 3), "p99_ms": round(percentile(samples, 0.99), 3),
            "validators": 4, "includes": "commit signatures (ed25519), header hash, validator set hash, Merkle proof",
            "end_to_end_ms_with_rpc": round(receipt.verify_ms, 2)}


async def commit_latency(devnet: Devnet, n: int = 100) -> dict:
    samples = []
    async with NodeClient(devnet.nodes[0].rpc) as client:
        for i in range(n):
            result = await client.call({"function": "update_high", "symbol": "BENCH", "value": float(i)})
            assert result.ok
            samples.append(result.latency_ms)
    return {"p50_ms": round(percentile(samples, 0.5), 1), "p99_ms": round(percentile(samples, 0.99), 1),
            "mean_ms": round(statistics.fmean(samples), 1), "calls": n, "load": "one call at a time"}


def main() -> int:
    report: dict = {"machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()}}
    print("==> VM overhead per call (fresh instance)", flush=True)
    report["vm_overhead"] = {
        "sum_no_state": vm_overhead("sum", {"function": "sum", "x": 5, "y": 3}),
        "update_high_two_state_accesses": vm_overhead("stock", {"function": "update_high", "symbol": "AAPL", "value": 1.0}),
    }
    print(json.dumps(report["vm_overhead"], indent=2))
    home = ROOT / "build" / "bench-devnet"
    Devnet.remove(home)
    print("==> commit latency on a 4-node devnet", flush=True)
    devnet = Devnet.create(home, 4, WASM / "stock.wasm", base_port=28600)
    try:
        devnet.start()
        report["commit_latency_4_nodes"] = asyncio.run(commit_latency(devnet))
        report["client_verification"] = asyncio.run(verification_cost(devnet))
    finally:
        devnet.stop()
    print(json.dumps({k: report[k] for k in ("commit_latency_4_nodes", "client_verification")}, indent=2))
    out = ROOT / "bench" / "results" / "latest.json"
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"==> wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
