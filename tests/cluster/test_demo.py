"""`make demo` end to end, as the README tells a new user to run it: it must finish with every
node agreeing (it once died opening the embedded Swarm store a second time in one process), and
with a cartel caught."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.timeout(900)
def test_the_demo_runs_to_the_end_and_every_node_agrees() -> None:
    done = subprocess.run([sys.executable, "-m", "rtc.demo"], capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for shown in ("counter 5: update_high(MSFT", "is a validator", "node0's feed: records 1..", "all nodes agree",
                  "ruled INVALID", "ETH slashed", "the client refuses the result"):
        assert shown in done.stdout, done.stdout[-3000:]
