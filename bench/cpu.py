"""Where the machine's CPU went during a phase: cores used per kind of process, from /proc.

On one 2-core machine every node, CometBFT and the load generator share the same cores,
so this split is what bounds throughput; the report keeps it beside each saturation figure.
"""

from __future__ import annotations

import os
from collections import Counter

APP, COMETBFT = "our node", "CometBFT"
KINDS = (("rtc.node", APP), ("cometbft", COMETBFT), ("bin/wasmd", COMETBFT), ("bench/run.py", "load generator"),
         ("anvil", "anvil"))
TICKS = os.sysconf("SC_CLK_TCK")


def _kind(cmdline: str) -> str:
    for marker, kind in KINDS:
        if marker in cmdline:
            return kind
    return "other (kernel, I/O)"


def snapshot() -> dict[int, tuple[str, int]]:
    """pid -> (kind, CPU ticks so far)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline") as handle:
                cmdline = handle.read().replace("\0", " ")
        except OSError:
            continue
        out[int(name)] = (_kind(cmdline), int(fields[11]) + int(fields[12]))
    return out


def cores_used(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], seconds: float) -> dict[str, float]:
    used: Counter[str] = Counter()
    for pid, (kind, ticks) in after.items():
        used[kind] += ticks - before.get(pid, (kind, 0))[1]
    return {kind: round(ticks / TICKS / seconds, 2) for kind, ticks in sorted(used.items()) if ticks > 0}


def per_transaction(cores: dict[str, float], throughput_tps: float, nodes: int) -> dict[str, float | None]:
    """CPU time of each process kind per committed transaction per node, in µs: the cost the
    app and CometBFT each add to a transaction. A kind that did not run (kvstore's app lives
    inside CometBFT's process) is None."""
    def share(kind: str) -> float | None:
        if kind not in cores or throughput_tps <= 0:
            return None
        return round(cores[kind] * 1e6 / throughput_tps / nodes, 1)

    return {"app_cpu_us_per_tx_per_node": share(APP), "cometbft_cpu_us_per_tx_per_node": share(COMETBFT)}
