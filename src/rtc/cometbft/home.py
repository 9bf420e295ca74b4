"""A CometBFT node's home folder and its genesis, as types rather than paths and dicts.

`cometbft init` writes the home: `config/config.toml`, `config/genesis.json`, the
validator's key (`config/priv_validator_key.json`), the p2p key and the `data/` folder.
Our state machine keeps its own settings beside them (`rtc.json`, see rtc.node.config).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .lightclient import Validator, validator_set_hash


@dataclass(frozen=True)
class GenesisValidator:
    address: str  # upper-case hex, derived from the key
    pub_key: bytes  # ed25519
    power: int
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "name": self.name, "power": str(self.power),
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(self.pub_key).decode()}}


@dataclass(frozen=True)
class GenesisDoc:
    """CometBFT's genesis: the chain, its first validator set and the app's own genesis state."""

    chain_id: str
    validators: tuple[GenesisValidator, ...]
    app_state: dict[str, Any]
    document: dict[str, Any] = field(repr=False, compare=False)  # everything else, as CometBFT wrote it

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "GenesisDoc":
        """Strict: a document from an untrusted node either parses fully or raises ValueError."""
        try:
            validators = tuple(
                GenesisValidator(bytes.fromhex(v["address"]).hex().upper(), base64.b64decode(v["pub_key"]["value"],
                                 validate=True), int(v["power"]), str(v.get("name", "")))
                for v in doc.get("validators") or [])
            return cls(str(doc["chain_id"]), validators, dict(doc.get("app_state") or {}), doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a CometBFT genesis document: {exc}") from None

    @classmethod
    def read(cls, path: Path) -> "GenesisDoc":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is its folder a CometBFT node home?")
        return cls.from_json(json.loads(path.read_text()))

    def to_json(self) -> dict[str, Any]:
        return {**self.document, "chain_id": self.chain_id, "app_state": self.app_state,
                "validators": [v.to_json() for v in self.validators]}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    def with_chain(self, chain_id: str, validators: list[GenesisValidator], app_state: dict[str, Any],
                   initial_height: int = 1) -> "GenesisDoc":
        """`initial_height` above 1: the chain goes on from a state its nodes already hold (a
        restored cluster's first block is the height after the checkpoint it starts from)."""
        return replace(self, chain_id=chain_id, validators=tuple(validators), app_state=app_state,
                       document={**self.document, "initial_height": str(initial_height)})

    @property
    def initial_height(self) -> int:
        return int(self.document.get("initial_height") or 1)

    def with_vote_extensions(self, from_height: int) -> "GenesisDoc":
        """Vote extensions on from `from_height` (ABCI 2.0; a quoted integer, as CometBFT writes it)."""
        params = dict(self.document.get("consensus_params") or {})
        params["abci"] = {**(params.get("abci") or {}), "vote_extensions_enable_height": str(from_height)}
        return replace(self, document={**self.document, "consensus_params": params})

    def validators_hash(self) -> bytes:
        """The first validator set's hash, as header 1's validators_hash holds it (CometBFT orders
        the set by voting power, then address). Raises VerificationError for a set CometBFT
        could not hash (an unknown key type)."""
        ordered = sorted(self.validators, key=lambda v: (-v.power, bytes.fromhex(v.address)))
        return validator_set_hash([Validator(bytes.fromhex(v.address), v.pub_key, v.power) for v in ordered])


@dataclass(frozen=True)
class NodeHome:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config" / "config.toml"

    @property
    def genesis_file(self) -> Path:
        return self.path / "config" / "genesis.json"

    @property
    def validator_key_file(self) -> Path:
        return self.path / "config" / "priv_validator_key.json"

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    def genesis(self) -> GenesisDoc:
        return GenesisDoc.read(self.genesis_file)

    def validator(self, power: int = 10, name: str = "") -> GenesisValidator:
        """This node's validator: its address and public key (never the private key)."""
        if not self.validator_key_file.exists():
            raise FileNotFoundError(f"{self.validator_key_file} not found: is {self.path} a CometBFT node home?")
        key = json.loads(self.validator_key_file.read_text())
        return GenesisValidator(key["address"].upper(), base64.b64decode(key["pub_key"]["value"]), power, name)

    def validator_key(self) -> bytes:
        """The ed25519 public key this node signs blocks with."""
        return self.validator().pub_key

    def secret_key(self, name: str) -> bytes:
        """A 32-byte secret kept in config/`name`, made on first use and readable by its owner only
        (the keys our node signs with besides CometBFT's: its history feed, its attestations)."""
        path = self.path / "config" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        return bytes.fromhex(path.read_text().strip())

    def has_blocks(self) -> bool:
        return (self.data_dir / "blockstore.db").exists()

    def set_config(self, sections: dict[str, dict[str, Any]]) -> None:
        """Set keys in config.toml, section by section ("" is the top level), keeping everything else.
        Only keys that `cometbft init` wrote can be set, so a misspelt key is an error, not ignored."""
        set_toml_keys(self.config_file, sections)


def set_toml_keys(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Set existing keys of a TOML file in place, section by section ("" is the top level),
    keeping everything else (comments included); KeyError for a key the file does not have."""
    lines = path.read_text().splitlines()
    pending = {section: dict(values) for section, values in sections.items()}
    section = ""
    key_line = re.compile(r"^([A-Za-z0-9_\-]+)\s*=")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip()
            continue
        match = key_line.match(stripped)
        if match and match.group(1) in pending.get(section, {}):
            key = match.group(1)
            lines[i] = f"{key} = {_toml_value(pending[section].pop(key))}"
    missing = {s: list(v) for s, v in pending.items() if v}
    if missing:
        raise KeyError(f"{path} has no such keys: {missing}")
    path.write_text("\n".join(lines) + "\n")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))
