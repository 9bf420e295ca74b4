"""A node's own settings file, `rtc.json` beside CometBFT's config in the node home."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CONFIG_NAME = "rtc.json"


@dataclass
class NodeConfig:
    """The state machine's own settings, kept beside CometBFT's config in the node's home."""

    abci: str  # tcp://127.0.0.1:PORT or unix:///path
    backend: str  # path of the component, relative to the node home or absolute
    state_dir: str = "rtc-state"
    max_tx_bytes: int = 64 * 1024
    limits: dict[str, int] = field(default_factory=dict)

    def save(self, home: Path) -> None:
        (home / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, home: Path) -> "NodeConfig":
        path = home / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is {home} a node home created by `rtc devnet up`?")
        return cls(**json.loads(path.read_text()))
