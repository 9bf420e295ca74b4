"""The bench report: targets checked, then JSON, a Markdown table (also put into the
README between its bench markers) and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
TARGET_NODES = "4"


def _targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets for 4 nodes on one 2-core machine (docs/DESIGN §10, issues 6 and 15)."""
    vm = report["vm_overhead"]["update_high_two_state_accesses"]["p50_us"]
    rows: list[tuple[str, float | None, str, float]] = [("vm_overhead_us", vm, "<=", 20.0)]
    cluster = report["clusters"].get(TARGET_NODES)
    if cluster:
        ours = cluster["rtc"]
        saturation = ours["saturation"]
        rows += [
            ("throughput_tps", saturation["throughput_tps"], ">=", 2000.0),
            ("throughput_ratio_to_kvstore", cluster["ratio"]["throughput"], ">=", 0.5),
            ("throughput_ratio_to_kvstore_stretch", cluster["ratio"]["throughput"], ">=", 0.7),
            ("light_latency_p50_ratio_to_kvstore", cluster["ratio"]["light_latency_p50"], "<=", 1.1),
            ("light_latency_p99_ms", ours["light"]["latency_p99_ms"], "<=", 400.0),
            ("query_with_proof_p50_ms", ours["query"]["p50_ms"], "<=", 5.0),
        ]
        app, comet = saturation.get("app_cpu_us_per_tx_per_node"), saturation.get("cometbft_cpu_us_per_tx_per_node")
        if app is not None and comet is not None:  # the app costs a transaction no more than CometBFT does
            rows.append(("app_cpu_us_per_tx_per_node", app, "<=", comet))
        if "wasmd" in cluster:
            wasmd_tps = cluster["wasmd"]["saturation"]["throughput_tps"]
            rows.append(("throughput_ratio_to_wasmd", round(saturation["throughput_tps"] / wasmd_tps, 2), ">=", 3.0))
        if "cli" in ours:  # issue 11: a command costs little beyond the commit it waits for
            rows += [("cli_call_beyond_commit_ms", ours["cli"]["call_beyond_commit_p50_ms"], "<=", 300.0),
                     ("cli_query_ms", ours["cli"]["query_p50_ms"], "<=", 300.0)]
    out = []
    for name, value, op, bound in rows:
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        out.append({"name": name, "value": value, "target": f"{op} {bound:g}", "met": met})
    return out


def _pair(phase: dict[str, Any]) -> str:
    return f"{phase['latency_p50_ms']} / {phase['latency_p99_ms']}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| nodes | system | tx/s at saturation | latency light load p50 / p99 ms | at 50% | at 90% | query with proof p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, cluster in report["clusters"].items():
        for system, label in (("rtc", "ours"), ("kvstore", "kvstore"), ("persistent_kvstore", "persistent kvstore"),
                              ("wasmd", "wasmd (CosmWasm)")):
            if system not in cluster:
                continue
            f = cluster[system]
            proof = "" if f["query"]["with_proof"] else " (no proof)"
            lines.append(f"| {n} | {label} | {f['saturation']['throughput_tps']:.0f} | {_pair(f['light'])} | "
                         f"{_pair(f['load_50'])} | {_pair(f['load_90'])} | "
                         f"{f['query']['p50_ms']} / {f['query']['p99_ms']}{proof} |")
        r = cluster["ratio"]
        if "ratio_to_wasmd" in cluster:
            w = cluster["ratio_to_wasmd"]
            lines.append(f"| {n} | ours / wasmd | {w['throughput']} | {w['light_latency_p50']} / {w['light_latency_p99']} | "
                         f"{w['load_50_latency_p50']} / {w['load_50_latency_p99']} | "
                         f"{w['load_90_latency_p50']} / {w['load_90_latency_p99']} | {w['query_p50']} / {w['query_p99']} |")
        lines.append(f"| {n} | ours / kvstore | {r['throughput']} | {r['light_latency_p50']} / {r['light_latency_p99']} | "
                     f"{r['load_50_latency_p50']} / {r['load_50_latency_p99']} | "
                     f"{r['load_90_latency_p50']} / {r['load_90_latency_p99']} | {r['query_p50']} / {r['query_p99']} |")
    vm = report["vm_overhead"]
    lines += [
        "",
        f"VM overhead per call, fresh instance, on the compiled core: `update_high` (two state accesses) p50 "
        f"{vm['update_high_two_state_accesses']['p50_us']} µs, `sum` p50 {vm['sum_no_state']['p50_us']} µs; on the "
        f"Python reference {vm['python_core']['update_high_two_state_accesses']['p50_us']} and "
        f"{vm['python_core']['sum_no_state']['p50_us']} µs (kvstore has no VM).",
    ]
    verification = report["clusters"].get(TARGET_NODES, {}).get("rtc", {}).get("client_verification")
    if verification:
        lines.append(f"A client checking a result itself ({verification['validators']} validators): "
                     f"p50 {verification['p50_ms']} ms for the commit's signatures, the header and validator-set "
                     f"hashes and the Merkle proof; {verification['end_to_end_ms_with_rpc']} ms end to end with its "
                     "RPC calls, most of it waiting for the next block, whose header commits the result's state.")
    cli = report["clusters"].get(TARGET_NODES, {}).get("rtc", {}).get("cli")
    if cli:
        lines.append(f"`rtc call` costs {cli['call_beyond_commit_p50_ms']} ms of wall time beyond the commit it waits "
                     f"for, `rtc query` {cli['query_p50_ms']} ms in all (p50 of {cli['runs']} runs, a new process each).")
    lag = report.get("validation_lag")
    if lag:
        lines.append(f"Batch validation under the light load ({lag['rate_tps']} tx/s for {lag['seconds']} s, 4 nodes, "
                     f"{lag['validators']} validators outside the cluster): validated_height lags the head by "
                     f"p50 {lag['lag_blocks']['p50']:g} blocks / {lag['lag_txs']['p50']:g} transactions (max "
                     f"{lag['lag_blocks']['max']:g} / {lag['lag_txs']['max']:g}); every call validated "
                     f"{lag['all_validated_s_after_last_call']} s after the last one.")
    lines += [
        "",
        "| target (4 nodes) | value | target | met |",
        "|---|---|---|---|",
    ]
    for t in report["targets"]:
        lines.append(f"| {t['name']} | {t['value']} | {t['target']} | {'yes' if t['met'] else 'no'} |")
    machine = report["machine"]
    lines += ["", f"{machine['cpus']} cores, Python {machine['python']}, CometBFT {report['cometbft']} (tools/cometbft patch); "
              f"the whole run took {report['elapsed_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(report["clusters"])
    systems = [(system, label, color) for system, label, color in (
        ("rtc", "ours", "#1f77b4"), ("kvstore", "CometBFT kvstore", "#999999"),
        ("persistent_kvstore", "persistent kvstore", "#cccccc"), ("wasmd", "wasmd (CosmWasm)", "#d62728"))
        if all(system in report["clusters"][n] for n in sizes)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(systems)
    for k, (system, label, color) in enumerate(systems):
        xs = [i + (k - (len(systems) - 1) / 2) * width for i in range(len(sizes))]
        left.bar(xs, [report["clusters"][n][system]["saturation"]["throughput_tps"] for n in sizes],
                 width, label=label, color=color)
        for phase, marker in (("light", "o"), ("load_50", "s"), ("load_90", "^")):
            right.plot(sizes, [report["clusters"][n][system][phase]["latency_p50_ms"] for n in sizes],
                       marker=marker, color=color, label=f"{label}, {phase.replace('load_', '')}{'%' if phase != 'light' else ''}")
    left.set_xticks(range(len(sizes)), [f"{n} node{'s' if n != '1' else ''}" for n in sizes])
    left.set_ylabel("tx/s at saturation")
    left.set_title("Sustained throughput")
    left.legend()
    right.set_xlabel("nodes")
    right.set_ylabel("commit latency p50 (ms)")
    right.set_title("Latency at light load, 50% and 90% of saturation")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(report: dict[str, Any], results: Path, readme: Path) -> list[str]:
    report["targets"] = _targets(report)
    json_path = results / "latest.json"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    table = markdown(report)
    (results / "latest.md").write_text(table)
    plot(report, results / "latest.png")
    written = [f"wrote {p}" for p in (json_path, results / "latest.md", results / "latest.png")]
    text = readme.read_text()
    if README_START in text and README_END in text:
        head, _, rest = text.partition(README_START)
        _, _, tail = rest.partition(README_END)
        readme.write_text(f"{head}{README_START}\n{table}{README_END}{tail}")
        written.append(f"updated the table in {readme.name}")
    return written
