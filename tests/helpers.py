"""Helpers shared by the test folders: running the `rtc` command, waiting for a condition, random
calls of the hostile backend (the `anvil` fixture is in conftest.py)."""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
import time
from typing import Any, Callable, NamedTuple

RTC = [sys.executable, "-m", "rtc.cli.main"]


class CliRun(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def rtc(*argv: object) -> CliRun:
    """`rtc ARGV` in this process (fast; what a script sees on stdout and stderr, and the exit code)."""
    out, err = io.StringIO(), io.StringIO()
    from rtc.cli.main import main

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse and usage errors exit
            code = exc.code if isinstance(exc.code, int) else 1
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
    return CliRun(code, out.getvalue(), err.getvalue())


def rtc_process(*argv: object, check: bool = False, timeout: float = 180) -> CliRun:
    """`rtc ARGV` as its own process, as a user runs it (entry point, imports, exit code)."""
    result = subprocess.run([*RTC, *(str(a) for a in argv)], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"rtc {' '.join(map(str, argv))} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return CliRun(result.returncode, result.stdout, result.stderr)


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` twice a second until it holds; fail saying `what` did not happen in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.5)


def hostile_call(rng: random.Random) -> dict[str, Any]:
    """A random call of tests/fixtures/wasm/hostile: state written, removed, scanned and read,
    values up to (and one byte over) 8 KiB, fuel running out, results over a small limit, traps."""
    return rng.choice([
        {"function": "write_keys", "n": rng.randrange(0, 12), "value_len": rng.choice([0, 3, 900, 8192, 8193])},
        {"function": "remove_loop", "times": rng.randrange(1, 16)},
        {"function": "scan_loop", "prefill": rng.randrange(0, 30), "remove": rng.random() < 0.5,
         "times": rng.randrange(1, 3), "limit": rng.randrange(0, 40)},
        {"function": "get_loop", "times": rng.randrange(1, 30)},
        {"function": "set_loop", "times": rng.randrange(1, 30), "value_len": rng.randrange(0, 500)},
        {"function": "caller_loop", "times": rng.randrange(1, 30)},
        {"function": "spin_n", "n": rng.choice([5, 5_000, 10**7])},  # the last runs out of any test's fuel
        {"function": "big_output", "n": rng.choice([3, 1500, 5000])},  # the last is over a small result limit
        {"function": "read_missing"},
        {"function": "trap"},
    ])
