"""Helpers shared by the test folders: running the `rtc` command, waiting for a condition (the `anvil`
fixture is in conftest.py)."""

from __future__ import annotations

import contextlib
import io
import json
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
