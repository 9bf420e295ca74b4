"""The benchmark's own parts on a real 1-node kvstore cluster: the load generator times
every transaction it sends, gives back what a phase did not send, and the report checks
targets and writes its table, plot and README section."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from kvstore import KvstoreCluster  # noqa: E402
from loadgen import KvTxs, LoadGenerator, RtcTxs  # noqa: E402
from report import README_END, README_START, write_reports  # noqa: E402

from rtc.protocol import decode  # noqa: E402

BASE_PORT = 30800


@pytest.fixture(scope="module")
def kvstore(tmp_path_factory: pytest.TempPathFactory):
    cluster = KvstoreCluster(tmp_path_factory.mktemp("kvstore"), 1, BASE_PORT)
    cluster.create()
    cluster.start()
    yield cluster
    cluster.stop()


def test_fixed_rate_and_saturation_commit_every_transaction_they_send(kvstore: KvstoreCluster) -> None:
    async def run():
        source = KvTxs(size=200, sessions=16)
        async with LoadGenerator(kvstore.rpc_urls, connections_per_node=4) as load:
            light = await load.fixed_rate(source.take(40), rate=40)
            saturated = await load.saturate(source.take(200_000), window=500, duration_s=2, warmup_s=1)
            source.give_back(saturated.unsent)
            after = source.take(5)
        return light, saturated, after

    light, saturated, after = asyncio.run(run())
    summary = light.summary()
    assert summary["sent"] == summary["committed"] == 40 and summary["rejected"] == 0
    assert 0 < summary["latency_p50_ms"] <= summary["latency_p99_ms"] < 5_000
    assert 1.5 < summary["throughput_tps"] < 80  # about the offered 40/s
    assert saturated.throughput_tps > 100 and saturated.committed > 0
    assert saturated.unsent and after == saturated.unsent[:5]  # the next phase sends them first


def test_session_transactions_keep_counter_order_per_session() -> None:
    source = RtcTxs("bench-chain", sessions=3)
    txs = source.take(7)
    envelopes = [decode(tx) for tx, _ in txs]
    assert [s for _, s in txs] == [0, 1, 2, 0, 1, 2, 0]
    assert [e.counter for e in envelopes] == [0, 0, 0, 1, 1, 1, 2]
    for envelope in envelopes:
        envelope.verify("bench-chain")
    source.give_back(txs[5:])
    assert source.take(2) == txs[5:]


def phase(tps: float, p50: float, p99: float) -> dict:
    return {"throughput_tps": tps, "latency_p50_ms": p50, "latency_p99_ms": p99}


def test_report_checks_targets_and_rewrites_the_readme_table(tmp_path: Path) -> None:
    def system(tps: float, p50: float, proof: bool) -> dict:
        return {"light": phase(20, p50, p50 * 2), "saturation": phase(tps, 900, 2000), "load_50": phase(tps / 2, 200, 400),
                "load_90": phase(tps * 0.9, 500, 900), "query": {"p50_ms": 1.0, "p99_ms": 2.0, "with_proof": proof}}

    ours, theirs = system(2400, 90, True), system(4000, 80, False)
    ours["saturation"].update(app_cpu_us_per_tx_per_node=150.0, cometbft_cpu_us_per_tx_per_node=140.0)
    ours["client_verification"] = {"p50_ms": 0.5, "p99_ms": 0.9, "validators": 4, "end_to_end_ms_with_rpc": 6.0}
    report = {
        "machine": {"cpus": 2, "python": "3.11"}, "cometbft": "0.39.4", "elapsed_s": 1.0,
        "vm_overhead": {"update_high_two_state_accesses": {"p50_us": 18.0}, "sum_no_state": {"p50_us": 9.0},
                        "python_core": {"update_high_two_state_accesses": {"p50_us": 60.0}, "sum_no_state": {"p50_us": 30.0}}},
        "clusters": {"4": {"rtc": ours, "kvstore": theirs, "wasmd": system(600, 110, False),
                           "ratio": {"throughput": 0.6, **{f"{p}_latency_{q}": 1.1 for p in ("light", "load_50", "load_90")
                                                            for q in ("p50", "p99")}, "query_p50": 1.0, "query_p99": 1.0}}},
    }
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\nrest\n")
    write_reports(report, tmp_path, readme)
    targets = {t["name"]: t["met"] for t in report["targets"]}
    assert targets == {"vm_overhead_us": True, "throughput_tps": True, "throughput_ratio_to_kvstore": True,
                       "throughput_ratio_to_kvstore_stretch": False, "light_latency_p50_ratio_to_kvstore": True,
                       "light_latency_p99_ms": True, "query_with_proof_p50_ms": True,
                       "app_cpu_us_per_tx_per_node": False, "throughput_ratio_to_wasmd": True}
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| 4 | ours | 2400 |" in text and "(no proof)" in text
    assert "on the Python reference 60.0 and 30.0 µs" in text
    assert "A client checking a result itself (4 validators): p50 0.5 ms" in text
    assert json.loads((tmp_path / "latest.json").read_text())["targets"]
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
