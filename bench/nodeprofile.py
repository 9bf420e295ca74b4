"""A node under load, sampled with py-spy: where its CPU goes, function by function.

The raw collapsed stacks are kept (bench/results/profile-node0.txt, readable by speedscope
or flamegraph.pl); the report keeps the top entries, by own time and by time including
callees (our own functions only), with idle waits left out.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"
IDLE = ("Condition.wait", "Event.wait", "EpollSelector.select", "select (")
OUTER = ("rtc/abci/server.py", "rtc/node/runner.py", "rtc/node/__main__.py")  # every sample passes them
TOP = 20


def start(pid: int, seconds: int) -> tuple[subprocess.Popen[bytes], Path]:
    out = Path(f"/tmp/rtc-bench-profile-{pid}.txt")
    process = subprocess.Popen(
        [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, out


def finish(started: tuple[subprocess.Popen[bytes], Path], keep: Path) -> dict[str, Any]:
    process, out = started
    _, err = process.communicate(timeout=60)
    if process.returncode or not out.exists():
        return {"error": f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"}
    text = out.read_text()
    keep.write_text(text)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or any(marker in frames[-1] for marker in IDLE):
            continue
        samples = int(count)
        busy += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            if "(rtc/" in frame and not any(outer in frame for outer in OUTER):
                inclusive[frame] += samples

    def top(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"share": round(n / busy, 3), "function": name} for name, n in counter.most_common(TOP)]

    return {"busy_samples": busy, "own": top(own), "inclusive": top(inclusive), "raw": keep.name}
