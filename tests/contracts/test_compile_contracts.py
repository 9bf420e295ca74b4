"""scripts/compile_contracts.py: outputs, incremental skipping, one progress line, errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import boa
import vyper

from .helpers import COOLING_OFF, MIN_DEPOSIT, REGISTRY_SOURCE, ROOT

SCRIPT = ROOT / "scripts" / "compile_contracts.py"

TINY = """# pragma version 0.4.3
value: public(uint256)

@deploy
def __init__(v: uint256):
    self.value = v
"""

BROKEN = """# pragma version 0.4.3
@external
def f() -> uint256:
    return undefined_name
"""


def run(compiler, capsys, sources: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    code = compiler.main(["--contracts", str(sources), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compiles_the_registry_into_a_deployable_artifact(compiled_registry, compiler, capsys) -> None:
    assert (compiled_registry.compiled, compiled_registry.up_to_date) == (["Disputes", "Registry", "Validation"], [])
    out_dir = compiled_registry.out_dir
    assert run(compiler, capsys, REGISTRY_SOURCE.parent, out_dir) == (
        0, f"contracts (vyper {vyper.__version__}): 3 up to date -> {out_dir}\n", "")
    artifact = json.loads((out_dir / "Registry.json").read_text())
    assert artifact == compiled_registry.artifact
    assert set(artifact) == {"abi", "bytecode", "bytecode_runtime", "vyper", "source_sha256", "imports_sha256"}
    assert artifact["vyper"] == vyper.__version__ == "0.4.3"
    assert artifact["source_sha256"] == hashlib.sha256(REGISTRY_SOURCE.read_bytes()).hexdigest()
    assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 1000
    names = {item.get("name") for item in artifact["abi"]}
    assert {"register", "top_up", "request_leave", "withdraw", "slash", "create_cluster", "request_join",
            "approve_join", "cancel_join", "join_request", "node", "members", "members_at", "NodeRegistered",
            "JoinRequested", "JoinApproved", "JoinCancelled", "NodeJoined", "NodeLeft", "Slashed"} <= names
    assert "join_cluster" not in names  # admission is approved by the cluster, never open
    # the artifact is what boa compiles, and it deploys and runs
    deployer = boa.load_partial(str(REGISTRY_SOURCE))
    assert bytes.fromhex(artifact["bytecode"][2:]) == deployer.compiler_data.bytecode
    ctor = boa.util.abi.abi_encode("(uint256,uint256)", (MIN_DEPOSIT, COOLING_OFF))
    address = boa.env.deploy_code(bytecode=bytes.fromhex(artifact["bytecode"][2:]) + ctor)[0]
    registry = deployer.at(address)
    assert (registry.min_deposit(), registry.cooling_off_blocks()) == (MIN_DEPOSIT, COOLING_OFF)
    # the code on chain is the runtime bytecode followed by the two immutables (min_deposit, cooling_off_blocks)
    ctor_words = MIN_DEPOSIT.to_bytes(32, "big") + COOLING_OFF.to_bytes(32, "big")
    assert boa.env.get_code(address) == bytes.fromhex(artifact["bytecode_runtime"][2:]) + ctor_words


def test_is_incremental(compiler, capsys, tmp_path) -> None:
    sources, out = tmp_path / "src", tmp_path / "out"
    sources.mkdir()
    (sources / "Tiny.vy").write_text(TINY)
    (sources / "Other.vy").write_text(TINY.replace("value", "other"))
    assert run(compiler, capsys, sources, out)[:2] == (0, f"contracts (vyper 0.4.3): compiled Other, Tiny -> {out}\n")
    first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert run(compiler, capsys, sources, out)[:2] == (0, f"contracts (vyper 0.4.3): 2 up to date -> {out}\n")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == first
    # an edited source is compiled again, the other one is not
    (sources / "Tiny.vy").write_text(TINY + "\n# edited\n")
    assert run(compiler, capsys, sources, out)[:2] == (
        0, f"contracts (vyper 0.4.3): compiled Tiny; 1 up to date -> {out}\n")
    assert json.loads((out / "Tiny.json").read_text())["source_sha256"] == hashlib.sha256(
        (TINY + "\n# edited\n").encode()).hexdigest()
    # an output from another vyper version is compiled again
    other = json.loads((out / "Other.json").read_text())
    other["vyper"] = "0.4.2"
    (out / "Other.json").write_text(json.dumps(other))
    assert run(compiler, capsys, sources, out)[1] == f"contracts (vyper 0.4.3): compiled Other; 1 up to date -> {out}\n"
    # a damaged output is compiled again; --force compiles everything
    (out / "Tiny.json").write_text("{")
    assert run(compiler, capsys, sources, out)[1] == f"contracts (vyper 0.4.3): compiled Tiny; 1 up to date -> {out}\n"
    assert run(compiler, capsys, sources, out, "--force")[1] == (
        f"contracts (vyper 0.4.3): compiled Other, Tiny -> {out}\n")
    assert sorted(p.name for p in out.iterdir()) == ["Other.json", "Tiny.json"]  # no temporary files left


def test_a_contract_is_compiled_again_when_a_source_it_imports_changes(compiler, capsys, tmp_path) -> None:
    """Validation uses the Registry's interface: an edited Registry must not leave it stale."""
    sources, out = tmp_path / "src", tmp_path / "out"
    sources.mkdir()
    (sources / "Tiny.vy").write_text(TINY)
    (sources / "User.vy").write_text("# pragma version 0.4.3\nimport Tiny\n\n@external\ndef f():\n    pass\n")
    assert run(compiler, capsys, sources, out)[1] == f"contracts (vyper 0.4.3): compiled Tiny, User -> {out}\n"
    (sources / "Tiny.vy").write_text(TINY + "\n# edited\n")
    assert run(compiler, capsys, sources, out)[1] == f"contracts (vyper 0.4.3): compiled Tiny, User -> {out}\n"
    assert run(compiler, capsys, sources, out)[1] == f"contracts (vyper 0.4.3): 2 up to date -> {out}\n"


def test_a_compiler_error_exits_non_zero_with_the_compilers_message(tmp_path) -> None:
    sources, out = tmp_path / "src", tmp_path / "out"
    sources.mkdir()
    (sources / "Broken.vy").write_text(BROKEN)
    (sources / "Good.vy").write_text(TINY)
    result = subprocess.run([sys.executable, str(SCRIPT), "--contracts", str(sources), "--out", str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("contracts: compile failed\nBroken.vy: ")
    assert "'undefined_name' has not been declared" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "Broken.json").exists()


def test_a_folder_without_contracts_is_an_error(compiler, capsys, tmp_path) -> None:
    code, out, err = run(compiler, capsys, tmp_path, tmp_path / "out")
    assert code == 1
    assert err == f"contracts: compile failed\nno contracts (*.vy) in {tmp_path}\n"
