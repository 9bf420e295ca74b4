"""`make bench`: our cluster beside CometBFT's kvstore, same timers, same load, same run.

For each cluster size (1, 4 and 7 nodes by default) both systems are started in turn and
driven by the same load generator (bench/loadgen.py):

  light load      20 tx/s for 10 s: commit latency p50/p99
  saturation      a window of 2,000 transactions in flight: sustained tx/s
  50% and 90%     a fixed rate at that share of the system's own saturation: latency
  query           read one key with its Merkle proof over RPC, one at a time

plus the per-call VM overhead (a fresh instance per call) measured in-process, and (for 4
nodes) how far batch validation lags under the light load (bench/validation_lag.py). Writes
bench/results/latest.json, latest.md (the table the README shows) and latest.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cpu  # noqa: E402
import nodeprofile  # noqa: E402
import validation_lag  # noqa: E402
import wasmd  # noqa: E402
from kvstore import KvstoreCluster  # noqa: E402
from loadgen import KvTxs, LoadGenerator, PhaseResult, RtcTxs, percentile  # noqa: E402
from report import write_reports  # noqa: E402

from rtc.cometbft import NodeHome  # noqa: E402
from rtc.devnet import Devnet  # noqa: E402
from rtc.protocol import SigningDomain  # noqa: E402
from rtc.tools import cometbft_binary  # noqa: E402
from rtc.devnet import cometbft  # noqa: E402
from rtc.vm import BlockInfo, load_backend  # noqa: E402

WASM = ROOT / "build" / "wasm"
WORK = ROOT / "build" / "bench"
RESULTS = ROOT / "bench" / "results"

LIGHT_RATE, LIGHT_SECONDS = 20, 10
SATURATION_WINDOW, SATURATION_SECONDS, SATURATION_WARMUP = 2000, 20, 5
LOADED_SECONDS = 10
QUERIES = 300
# State snapshots for Swarm every this many blocks, as a node in service would take them (the
# devnet's default of 20 is for watching restores; each snapshot hashes the whole state).
SNAPSHOT_EVERY = 500
PROFILED_NODES = 4  # node0 of this cluster size is profiled under 50% load


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


# -- the VM alone --------------------------------------------------------------------


class MemoryState:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def iterate(self, start: bytes, end: bytes | None, meter: Any) -> Iterator[tuple[bytes, bytes]]:
        return iter(())  # neither measured call scans


def vm_overhead(component: str, call: dict[str, Any], core: str, n: int = 5000) -> dict[str, Any]:
    backend = load_backend(WASM / f"{component}.wasm", core=core)
    prepared = backend.prepare(call)
    state, block = MemoryState(), BlockInfo(1, 0)
    for _ in range(300):
        backend.execute(prepared, state, block)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        outcome = backend.execute(prepared, state, block)
        samples.append((time.perf_counter() - start) * 1e6)
        assert outcome.ok, outcome.error
    samples.sort()
    return {"call": call, "p50_us": round(percentile(samples, 0.5), 1), "p99_us": round(percentile(samples, 0.99), 1),
            "mean_us": round(statistics.fmean(samples), 1), "calls": n}


# -- one system at one size ----------------------------------------------------------


async def drive(rpc_urls: list[str], source: Any, capacity_hint: int, profile_pid: int = 0) -> dict[str, Any]:
    """The four load phases against a running cluster; `source` builds its transactions.
    With `profile_pid`, that process is then profiled (py-spy) through one more 50% phase."""
    figures: dict[str, Any] = {}
    async with LoadGenerator(rpc_urls) as load:
        await load.fixed_rate(source.take(source.sessions), rate=500)  # every session opened
        figures["light"] = (await load.fixed_rate(source.take(LIGHT_RATE * LIGHT_SECONDS), LIGHT_RATE)).summary()
        say(f"   light load: p50 {figures['light']['latency_p50_ms']} ms, p99 {figures['light']['latency_p99_ms']} ms")
        budget = capacity_hint * (SATURATION_SECONDS + SATURATION_WARMUP + 2)
        txs = source.take(budget)
        before, started = cpu.snapshot(), time.perf_counter()
        saturated = await load.saturate(txs, SATURATION_WINDOW, SATURATION_SECONDS, SATURATION_WARMUP)
        source.give_back(saturated.unsent)
        figures["saturation"] = saturated.summary()
        figures["saturation"]["cpu_cores"] = cores = cpu.cores_used(before, cpu.snapshot(), time.perf_counter() - started)
        peak = saturated.throughput_tps
        figures["saturation"].update(cpu.per_transaction(cores, peak, len(rpc_urls)))
        say(f"   saturation: {peak:.0f} tx/s ({figures['saturation']['txs_per_block']} tx per block)")
        for share in (50, 90):
            rate = max(1.0, peak * share / 100)
            phase: PhaseResult = await load.fixed_rate(source.take(int(rate * LOADED_SECONDS)), rate)
            figures[f"load_{share}"] = phase.summary()
            say(f"   {share}% load ({rate:.0f} tx/s): p50 {phase.summary()['latency_p50_ms']} ms, "
                f"p99 {phase.summary()['latency_p99_ms']} ms")
        if profile_pid:  # a phase of its own: sampling slows the node, so no figure above is taken under it
            rate = max(1.0, peak / 2)
            profiler = nodeprofile.start(profile_pid, LOADED_SECONDS - 2)
            await load.fixed_rate(source.take(int(rate * LOADED_SECONDS)), rate)
            figures["profile"] = {"load_tps": round(rate), **nodeprofile.finish(profiler, RESULTS / "profile-node0.txt")}
            say(f"   profiled node0 at {rate:.0f} tx/s: bench/results/profile-node0.txt")
    return figures


def query_latency(rpc_url: str, path: str, data: str = "", prove: bool = True) -> dict[str, Any]:
    """Read one key (with its proof, where the app gives one) over CometBFT's RPC, one request at
    a time, as a client would."""
    params = {"path": json.dumps(path), "prove": "true" if prove else "false"}
    if data:
        params["data"] = data
    samples = []
    with httpx.Client(base_url=rpc_url, timeout=10) as client:
        for i in range(QUERIES + 20):
            start = time.perf_counter()
            response = client.get("/abci_query", params=params).json()["result"]["response"]
            elapsed = (time.perf_counter() - start) * 1000
            if response.get("code", 0) or not response.get("value"):
                raise RuntimeError(f"query {path} {data} failed: {response}")
            if i >= 20:
                samples.append(elapsed)
    samples.sort()
    proof = bool(response.get("proofOps"))
    return {"p50_ms": round(percentile(samples, 0.5), 2), "p99_ms": round(percentile(samples, 0.99), 2),
            "queries": QUERIES, "with_proof": proof}


async def client_verification(rpc_url: str, genesis_file: Path, n: int = 200) -> dict[str, Any]:
    """What a client spends to verify one result itself: the commit's signatures, header and
    validator-set hashes, and the Merkle proof (the evidence fetched once, `verify` repeated)."""
    from rtc.client import AsyncClient, TrustPolicy, verify

    trust = TrustPolicy.from_genesis_file(genesis_file)
    async with AsyncClient(rpc_url, trust) as client:
        session = client.session()
        await session.call_and_wait({"function": "update_high", "symbol": "VERIFY", "value": 1.0})
        started = time.perf_counter()
        receipt = await session.verified(0)
        end_to_end_ms = (time.perf_counter() - started) * 1000
        evidence = await client.evidence(session.session_key, 0)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        verify(evidence, trust).raise_for_failure()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50_ms": round(percentile(samples, 0.5), 3), "p99_ms": round(percentile(samples, 0.99), 3),
            "validators": len(evidence.validators["validators"]), "checks": [c.name for c in receipt.checks],
            "end_to_end_ms_with_rpc": round(end_to_end_ms, 2)}


def cli_latency(rpc_url: str, runs: int = 7) -> dict[str, Any]:
    """`rtc call` and `rtc query` as a user runs them (a new process each time) against the running
    cluster. A call's own commit latency, which its JSON reports, is subtracted: what is left is
    what the command itself costs (start-up, imports, key, RPC)."""
    rtc = str(Path(sys.executable).with_name("rtc"))
    key = WORK / "cli-client.key"
    call_overhead, query = [], []
    for i in range(runs):
        started = time.perf_counter()
        done = subprocess.run([rtc, "call", "--node", rpc_url, "--key", str(key), "update_high", "symbol=CLI",
                               f"value={i}", "--json"], capture_output=True, text=True, check=True)
        call_overhead.append((time.perf_counter() - started) * 1000 - json.loads(done.stdout)["latency_ms"])
        started = time.perf_counter()
        subprocess.run([rtc, "query", "--node", rpc_url, "get_high", "symbol=CLI"], capture_output=True, check=True)
        query.append((time.perf_counter() - started) * 1000)
    return {"call_beyond_commit_p50_ms": round(statistics.median(call_overhead), 1),
            "query_p50_ms": round(statistics.median(query), 1), "runs": runs}


def count_failed_in_blocks(figures: dict[str, Any], rpc_url: str) -> None:
    """Each load phase's `failed_in_blocks` (its blocks' transactions whose result is not OK)."""
    for phase in ("saturation", "load_50", "load_90", "light"):
        if figures[phase]["blocks"]:
            figures[phase]["failed_in_blocks"] = failed_in_blocks(rpc_url, figures[phase]["heights"])


def failed_in_blocks(rpc_url: str, heights: list[int]) -> int:
    """Transactions a block holds whose result is not OK (ours must all run)."""
    failed = 0
    with httpx.Client(base_url=rpc_url, timeout=10) as client:
        for h in range(heights[0], heights[1] + 1):
            results = client.get("/block_results", params={"height": h}).json()["result"]["txs_results"] or []
            failed += sum(1 for r in results if r.get("code", 0))
    return failed


def bench_rtc(nodes: int, base_port: int) -> dict[str, Any]:
    home = WORK / f"rtc-{nodes}"
    Devnet.remove(home)
    devnet = Devnet.create(home, nodes, WASM / "stock.wasm", base_port=base_port, chain_id="rtc-bench",
                           snapshot_every=SNAPSHOT_EVERY)
    try:
        devnet.start()
        urls = [n.rpc for n in devnet.nodes]
        genesis = NodeHome(Path(devnet.nodes[0].home)).genesis()  # calls are signed for this cluster's domain
        source = RtcTxs(SigningDomain.from_genesis(genesis.chain_id, genesis.app_state))
        figures = asyncio.run(drive(urls, source, capacity_hint=5000,  # one node passed 2,500 tx/s
                                    profile_pid=devnet.nodes[0].app_pid if nodes == PROFILED_NODES else 0))
        count_failed_in_blocks(figures, urls[0])
        figures["query"] = query_latency(urls[0], "/state/" + b"high/B0".hex())
        figures["client_verification"] = asyncio.run(
            client_verification(urls[0], Path(devnet.nodes[0].home) / "config" / "genesis.json"))
        figures["cli"] = cli_latency(urls[0])
    finally:
        devnet.stop()
    return figures


def bench_kvstore(nodes: int, base_port: int, app: str = "kvstore") -> dict[str, Any]:
    cluster = KvstoreCluster(WORK / f"{app}-{nodes}", nodes, base_port, app=app)
    cluster.create()
    try:
        cluster.start()
        source = KvTxs(size=len(RtcTxs("rtc-bench", sessions=1).take(1)[0][0]))
        figures = asyncio.run(drive(cluster.rpc_urls, source, capacity_hint=12000))  # kvstore on 1 node passed 8,000 tx/s
        first_key = source.key_of(0)
        figures["query"] = query_latency(cluster.rpc_urls[0], "", data="0x" + first_key.hex())
    finally:
        cluster.stop()
    return figures


WASMD_SIZES = (1, 4)  # wasmd takes minutes to start and deploy; 1 and 4 nodes are the comparison
WASMD_ACCOUNTS = 256  # as many as our sessions


def bench_wasmd(nodes: int, base_port: int) -> dict[str, Any]:
    """wasmd with the update_high contract, driven by the same load generator (bench/wasmd.py)."""
    cluster = wasmd.WasmdCluster(WORK / f"wasmd-{nodes}", nodes, base_port)
    cluster.create(WASMD_ACCOUNTS)
    try:
        cluster.start()
        contract = cluster.deploy()
        source = wasmd.WasmdTxs(cluster.chain_id, contract, cluster.accounts)
        urls = cluster.rpc_urls
        figures = asyncio.run(drive(urls, source, capacity_hint=1500))
        count_failed_in_blocks(figures, urls[0])
        figures["query"] = query_latency(urls[0], "/cosmwasm.wasm.v1.Query/SmartContractState",
                                         data="0x" + wasmd.smart_query(contract, {"get_high": {"symbol": "B0"}}).hex(),
                                         prove=False)  # a contract query has no Merkle proof
    finally:
        cluster.stop()
    return figures


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    out: dict[str, float | None] = {"throughput": ratio(ours["saturation"]["throughput_tps"],
                                                        theirs["saturation"]["throughput_tps"])}
    for phase in ("light", "load_50", "load_90"):
        for q in ("p50", "p99"):
            out[f"{phase}_latency_{q}"] = ratio(ours[phase][f"latency_{q}_ms"], theirs[phase][f"latency_{q}_ms"])
    out["query_p50"] = ratio(ours["query"]["p50_ms"], theirs["query"]["p50_ms"])
    out["query_p99"] = ratio(ours["query"]["p99_ms"], theirs["query"]["p99_ms"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="1,4,7", help="cluster sizes, comma-separated (default 1,4,7; 16 fits "
                                                          "only on a machine with more cores)")
    parser.add_argument("--base-port", type=int, default=31000)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.nodes.split(",")]
    began = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([str(cometbft_binary()), "version"], capture_output=True, text=True).stdout.strip()
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "platform": platform.platform()},
        "cometbft": version, "timers": cometbft.TIMERS,
        "load": {"light_rate_tps": LIGHT_RATE, "light_seconds": LIGHT_SECONDS,
                 "saturation_window": SATURATION_WINDOW, "saturation_seconds": SATURATION_SECONDS,
                 "loaded_seconds": LOADED_SECONDS, "queries": QUERIES, "sessions": 256,
                 "rtc_call": "update_high on the stock example: reads and writes one key",
                 "kvstore_tx": "key=value of the same size as ours", "rtc_snapshot_every_blocks": SNAPSHOT_EVERY},
    }
    say("VM overhead per call (fresh instance)")

    def overheads(core: str) -> dict[str, Any]:
        return {"sum_no_state": vm_overhead("sum", {"function": "sum", "x": 5, "y": 3}, core),
                "update_high_two_state_accesses": vm_overhead(
                    "stock", {"function": "update_high", "symbol": "AAPL", "value": 1.0}, core)}

    report["vm_overhead"] = {**overheads("native"), "python_core": overheads("python")}
    say(f"   update_high: p50 {report['vm_overhead']['update_high_two_state_accesses']['p50_us']} µs on the compiled "
        f"core, {report['vm_overhead']['python_core']['update_high_two_state_accesses']['p50_us']} µs on the Python one")
    report["clusters"] = {}
    wasmd_unavailable = None
    if any(n in WASMD_SIZES for n in sizes):
        say("wasmd (CosmWasm on CometBFT)")
        try:
            wasmd.build(say)
        except (RuntimeError, OSError) as exc:  # said in the report, and the rest still runs
            wasmd_unavailable = f"wasmd could not be built here: {exc}"
            say(f"   {wasmd_unavailable}")
    for n in sizes:
        entry: dict[str, Any] = {}
        say(f"{n} node(s): CometBFT kvstore")
        entry["kvstore"] = bench_kvstore(n, args.base_port)
        say(f"{n} node(s): CometBFT persistent_kvstore (the same on disk)")
        entry["persistent_kvstore"] = bench_kvstore(n, args.base_port, "persistent_kvstore")
        say(f"{n} node(s): our cluster")
        entry["rtc"] = bench_rtc(n, args.base_port)
        entry["ratio"] = ratios(entry["rtc"], entry["kvstore"])
        if n in WASMD_SIZES:
            say(f"{n} node(s): wasmd")
            if wasmd_unavailable:
                entry["wasmd_unavailable"] = wasmd_unavailable
            else:
                entry["wasmd"] = bench_wasmd(n, args.base_port)
                entry["ratio_to_wasmd"] = ratios(entry["rtc"], entry["wasmd"])
        report["clusters"][str(n)] = entry
    if 4 in sizes:
        say("batch validation lag under the light load (4 nodes, 2 validators)")
        report["validation_lag"] = validation_lag.measure(args.base_port + 600)
        say(f"   lag p50 {report['validation_lag']['lag_blocks']['p50']} blocks, "
            f"{report['validation_lag']['lag_txs']['p50']} transactions")
    report["elapsed_s"] = round(time.monotonic() - began, 1)
    written = write_reports(report, RESULTS, ROOT / "README.md")
    for line in written:
        say(line)
    missed = [t for t in report["targets"] if t["met"] is False]
    say(f"targets: {len(report['targets']) - len(missed)} of {len(report['targets'])} met"
        + (f"; missed: {', '.join(t['name'] for t in missed)}" if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
