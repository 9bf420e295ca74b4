#!/usr/bin/env python3
"""Compile the Vyper contracts (contracts/*.vy) into src/rtc/ethereum/contracts/<Name>.json.

The outputs are package data of `rtc` (pyproject.toml's package-data), so an SDK installed
from a wheel finds them with importlib.resources (rtc.ethereum.registry.load_artifact). They
are generated, like src/rtc/abci/_pb/, and git-ignored: `make setup` (re)writes them.

Each output holds what a deployer needs and what tells whether it is current:

    {"abi": [...], "bytecode": "0x...", "bytecode_runtime": "0x...",
     "vyper": "0.4.3", "source_sha256": "<hex of the .vy file>",
     "imports_sha256": "<hex over the sibling sources it imports>"}

Incremental: a contract whose output already records the same source hash, the same
imported sources and the same vyper version is not compiled again (``--force`` compiles everything). Prints one
progress line; on a compiler error prints the compiler's message and exits with 1.

Usage:  .venv/bin/python scripts/compile_contracts.py [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = PROJECT_ROOT / "contracts"
DEFAULT_OUT = PROJECT_ROOT / "src" / "rtc" / "ethereum" / "contracts"  # package data of rtc


class CompileError(RuntimeError):
    """A contract did not compile; the message is the compiler's."""


def vyper_version() -> str:
    try:
        import vyper
    except ImportError:
        raise CompileError("the vyper package is not installed: run `make setup` (requirements.txt pins it)") from None
    return vyper.__version__


def source_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


IMPORT = re.compile(r"^(?:import\s+(\w+)|from\s+\.\s+import\s+(\w+))", re.MULTILINE)


def imports_sha256(path: Path, seen: frozenset[Path] = frozenset()) -> str:
    """A digest of the sibling sources `path` imports, and theirs in turn: a contract that
    uses another's interface (Validation uses Registry's) is compiled again when it changes."""
    parts = []
    for match in IMPORT.finditer(path.read_text()):
        imported = path.with_name((match.group(1) or match.group(2)) + ".vy")
        if imported.exists() and imported not in seen:
            parts.append(f"{imported.name}:{source_sha256(imported)}:{imports_sha256(imported, seen | {path})}")
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()


def is_current(out_path: Path, digest: str, version: str, imports: str) -> bool:
    try:
        data = json.loads(out_path.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("source_sha256") == digest
        and data.get("vyper") == version
        and data.get("imports_sha256") == imports
        and isinstance(data.get("abi"), list)
        and isinstance(data.get("bytecode"), str)
        and data["bytecode"].startswith("0x")
    )


def compile_one(path: Path, search_dir: Path) -> dict:
    """Compile one .vy file; imports resolve against `search_dir`."""
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.exceptions import VyperException, VyperInternalException

    bundle = FilesystemInputBundle([search_dir])
    try:
        file_input = bundle.load_file(path)
        out = compile_from_file_input(file_input, input_bundle=bundle,
                                      output_formats=["abi", "bytecode", "bytecode_runtime"])
    except (VyperException, VyperInternalException) as exc:
        raise CompileError(f"{path.name}: {exc}") from None
    return {"abi": out["abi"], "bytecode": out["bytecode"], "bytecode_runtime": out["bytecode_runtime"]}


def write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would stick to the output (package data, readable by all)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_all(sources: Path, out_dir: Path, force: bool = False) -> tuple[list[str], list[str]]:
    """Compile every sources/*.vy that is not current; returns (compiled, up_to_date) names."""
    paths = sorted(sources.glob("*.vy"))
    if not paths:
        raise CompileError(f"no contracts (*.vy) in {sources}")
    version = vyper_version()
    compiled: list[str] = []
    current: list[str] = []
    for path in paths:
        name = path.stem
        out_path = out_dir / f"{name}.json"
        digest, imports = source_sha256(path), imports_sha256(path)
        if not force and is_current(out_path, digest, version, imports):
            current.append(name)
            continue
        result = compile_one(path, sources)
        result.update({"vyper": version, "source_sha256": digest, "imports_sha256": imports})
        write_atomic(out_path, result)
        compiled.append(name)
    return compiled, current


def shown(path: Path) -> str:
    """The path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=Path, default=DEFAULT_SOURCES, help="folder of *.vy sources")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for <Name>.json outputs")
    parser.add_argument("--force", action="store_true", help="compile even when the outputs are current")
    args = parser.parse_args(argv)
    try:
        compiled, current = compile_all(args.contracts, args.out, args.force)
    except CompileError as exc:
        print(f"contracts: compile failed\n{exc}", file=sys.stderr)
        return 1
    parts = []
    version = vyper_version()
    if compiled:
        parts.append("compiled " + ", ".join(compiled))
    if current:
        parts.append(f"{len(current)} up to date")
    print(f"contracts (vyper {version}): {'; '.join(parts)} -> {shown(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
