"""Crash safety: kill -9 a committing process at random moments, then reopen."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from state_crash_writer import replay
from state_reference import root_of

import rtc.state
from rtc.state import StateStore

WRITER = Path(__file__).with_name("state_crash_writer.py")
# The child must import the same rtc package as this process, however it was found.
SOURCE_ROOT = str(Path(rtc.state.__file__).resolve().parents[2])


class Writer:
    """A writer child process plus a thread collecting the heights it reports."""

    def __init__(self, store_path: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE_ROOT, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), str(store_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: list[str] = []
        self.opened = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            if not raw.endswith(b"\n"):
                break  # a line cut short by the kill
            line = raw.decode().strip()
            self.lines.append(line)
            if line.startswith("open"):
                self.opened.set()

    def kill(self) -> tuple[int | None, int]:
        """SIGKILL the child; returns (last reported height or None, exit code)."""
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        committed = [int(line.split()[1]) for line in self.lines if line.startswith("committed")]
        return (committed[-1] if committed else None), code


def check_consistent(store_path: Path, allowed: set[int | None]) -> int | None:
    with StateStore.open(store_path) as store:
        assert store.height in allowed, (store.height, allowed)
        expected = replay(store.height or 0)
        assert store.scan() == sorted(expected.items())
        assert store.root == root_of(dict(store.scan())) == root_of(expected)
        assert store.get(b"never-committed") is None
        store.check_integrity()
        return store.height


def test_kill_during_commits_leaves_old_or_new_state(tmp_path: Path) -> None:
    store_path = tmp_path / "state"
    rng = random.Random(20240611)
    last_seen: int | None = None
    killed_mid_run = 0
    for round_number in range(12):
        writer = Writer(store_path)
        if round_number == 0:
            # Kill very early: possibly while the environment is being created.
            time.sleep(rng.uniform(0.0, 0.15))
        else:
            assert writer.opened.wait(timeout=60), writer.process.stderr.read() if writer.process.stderr else ""
            time.sleep(rng.uniform(0.05, 0.6))
        reported, code = writer.kill()
        stderr = writer.process.stderr.read().decode() if writer.process.stderr else ""
        assert code == -signal.SIGKILL, (code, stderr)
        # The last commit may have become durable before it was reported.
        latest = reported if reported is not None else last_seen
        allowed: set[int | None] = {latest, (latest or 0) + 1} if latest is not None else {None, 1}
        height = check_consistent(store_path, allowed)
        if reported is not None:
            killed_mid_run += 1
            assert height is not None and height >= reported
        last_seen = height
    assert killed_mid_run >= 8
    assert last_seen is not None and last_seen >= 10, "the writer should have committed a fair number of blocks"
    # The store still takes new commits normally after all this.
    with StateStore.open(store_path) as store:
        overlay = store.begin()
        overlay.set(b"after", b"crash")
        store.commit(overlay, last_seen + 1)
        store.check_integrity()
    assert os.path.exists(store_path / "data.mdb")
