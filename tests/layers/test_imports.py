"""The packages' dependencies point one way (docs/architecture.md, "Layers").

Every `import` in src/rtc is read from the source, including imports inside functions and
under TYPE_CHECKING: a lazy import is still a dependency, it only moves when it is paid.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGES = sorted(p.name for p in (SRC / "rtc").iterdir() if p.is_dir() and (p / "__init__.py").exists())

# Which rtc packages each package may import (besides itself). Modules at the top of rtc
# (rtc.tools, rtc.demo) are named by their module name.
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "cometbft": set(),
    "swarm": set(),
    "vm": set(),
    "abci": set(),
    "ethereum": {"protocol", "tools"},
    "state": {"protocol"},
    "sessions": {"protocol"},
    "membership": {"ethereum"},
    "client": {"protocol", "cometbft", "ethereum"},
    "history": {"protocol", "cometbft", "swarm", "state"},
    "node": {"protocol", "cometbft", "abci", "vm", "state", "sessions", "membership", "history", "swarm", "ethereum",
             "tools"},
    "validator": {"protocol", "cometbft", "abci", "ethereum", "history", "node", "state", "swarm", "vm"},
    "devnet": {"protocol", "cometbft", "ethereum", "membership", "node", "vm", "history", "validator", "tools"},
    "cli": {"protocol", "cometbft", "client", "devnet", "ethereum", "history", "node", "swarm", "validator", "vm"},
}
TOP_MODULES = {"tools": set(), "demo": {"client", "cometbft", "devnet", "ethereum", "history"}}


def imports_of(path: Path, package: str) -> set[str]:
    """The rtc packages (or top modules) a source file imports, relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . / from .x: inside its own package
                modules = [f"rtc.{package}"]
            else:
                prefix = "rtc" if node.level else ""
                module = ".".join(part for part in (prefix, node.module or "") if part)
                # `from rtc import devnet` / `from .. import devnet` name the packages themselves
                modules = [f"rtc.{alias.name}" for alias in node.names] if module == "rtc" else [module]
        else:
            continue
        for name in modules:
            parts = name.split(".")
            if parts[0] == "rtc" and len(parts) > 1:
                found.add(parts[1])
    return found - {package}


def package_imports(package: str) -> dict[str, set[str]]:
    root = SRC / "rtc" / package
    return {str(path.relative_to(SRC)): imports_of(path, package) for path in sorted(root.rglob("*.py"))
            if "_pb" not in path.parts}


def test_every_package_has_a_rule() -> None:
    assert set(PACKAGES) == set(ALLOWED), "add the new package to ALLOWED (and to docs/architecture.md)"


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_its_layer_allows(package: str) -> None:
    wrong = {module: sorted(names - ALLOWED[package]) for module, names in package_imports(package).items()
             if names - ALLOWED[package]}
    assert not wrong, f"rtc.{package} may import only {sorted(ALLOWED[package])}: {wrong}"


def test_every_top_level_module_has_a_rule() -> None:
    modules = {p.stem for p in (SRC / "rtc").glob("*.py") if p.stem != "__init__"}
    assert modules == set(TOP_MODULES), "add the new module to TOP_MODULES"


@pytest.mark.parametrize("module", sorted(TOP_MODULES))
def test_top_level_modules(module: str) -> None:
    names = imports_of(SRC / "rtc" / f"{module}.py", module)
    assert names <= TOP_MODULES[module], sorted(names - TOP_MODULES[module])


def test_nothing_but_the_cli_and_the_demo_imports_devnet() -> None:
    users = {package for package, allowed in ALLOWED.items() if "devnet" in allowed}
    users |= {module for module, allowed in TOP_MODULES.items() if "devnet" in allowed}
    assert users == {"cli", "demo"}


def test_generated_protobuf_stays_inside_abci() -> None:
    offenders = [str(path.relative_to(SRC)) for path in (SRC / "rtc").rglob("*.py")
                 if "abci" not in path.relative_to(SRC / "rtc").parts[:1] and "abci._pb" in path.read_text()]
    assert not offenders


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The rule must be able to fail: a lazy import of the node inside the client is found."""
    source = tmp_path / "sample.py"
    source.write_text("from .rpc import x\nfrom ..node.app import ClusterApp\nfrom .. import state\n"
                      "def f():\n    import rtc.devnet\n    from rtc.history import reader\n    from rtc import vm\n")
    assert imports_of(source, "client") == {"node", "state", "devnet", "history", "vm"}


def _modules_after(code: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                            capture_output=True, text=True, check=True)
    return set(result.stdout.split())


HEAVY = ("web3", "eth_account", "wasmtime", "lmdb", "google.protobuf", "rtc.node", "rtc.state", "rtc.vm")


def test_the_sdk_loads_no_node_and_no_ethereum_until_asked() -> None:
    loaded = _modules_after("import rtc.client")
    assert not {m for m in loaded if m.startswith(HEAVY)}, sorted(m for m in loaded if m.startswith(HEAVY))


def test_commands_that_never_touch_ethereum_do_not_import_web3(tmp_path: Path) -> None:
    """`rtc call` and `rtc query` against a node (here one that is not there) load neither web3 nor the VM;
    tests/cluster/test_cli.py checks the same against a running devnet."""
    for argv in (["query", "--node", "http://127.0.0.1:9", "get_high", "symbol=X"],
                 ["call", "--node", "http://127.0.0.1:9", "--key", str(tmp_path / "key"), "sum", "x=1", "y=2"],
                 ["--help"]):
        loaded = _modules_after(f"from rtc.cli.main import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass")
        heavy = sorted(m for m in loaded if m.startswith(HEAVY))
        assert not heavy, (argv, heavy)
