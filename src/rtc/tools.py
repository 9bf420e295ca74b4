"""Where the project's own tools live: the programs `make setup` installs, found the same way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

COMETBFT_VERSION = "v0.39.4"


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def find_tool(name: str, env_var: str, installed: Path, install_hint: str) -> Path:
    """$env_var if set, else the copy setup installed, else one on PATH; a clear error otherwise."""
    override = os.environ.get(env_var)
    candidates = [Path(override)] if override else []
    candidates.append(installed)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"{name} not found; {install_hint} or set {env_var} to its path")


def cometbft_binary() -> Path:
    """The pinned binary that `make setup` installs into .tools/bin, or one named by $RTC_COMETBFT."""
    return find_tool("cometbft", "RTC_COMETBFT", project_root() / ".tools" / "bin" / "cometbft",
                     f"run `make setup` (it builds cometbft {COMETBFT_VERSION} into .tools/bin)")


def bootstrap_binary() -> Path:
    """tools/bootstrap built by `make setup`: CometBFT's state at a height restored offline."""
    return find_tool("rtc-bootstrap", "RTC_BOOTSTRAP", project_root() / ".tools" / "bin" / "rtc-bootstrap",
                     "run `make setup` (it builds tools/bootstrap into .tools/bin)")
