"""Fixtures for the contract tests: the Registry compiled once per session, deployed
fresh (inside boa's per-test state anchor) for every test, with funded accounts."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import boa
import pytest

from .helpers import COOLING_OFF, ETHER, FIXTURES, MIN_DEPOSIT, REGISTRY_SOURCE, ROOT, block, key, set_block
from .validation_helpers import CODE_HASH, DISPUTE_WINDOW, INTERVAL, REFERENCE, VALIDATION_SOURCE, set_attester


@dataclass(frozen=True)
class Accounts:
    owner: str
    slasher: str
    beneficiary: str
    stranger: str
    operators: tuple[str, ...]


@pytest.fixture(scope="session")
def compiler():
    """scripts/compile_contracts.py as a module."""
    spec = importlib.util.spec_from_file_location("compile_contracts", ROOT / "scripts" / "compile_contracts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Compiled:
    out_dir: Path
    compiled: list[str]
    up_to_date: list[str]
    artifact: dict


@pytest.fixture(scope="session")
def compiled_registry(compiler, tmp_path_factory) -> Compiled:
    """contracts/ compiled once by the script into a temporary build folder."""
    out = tmp_path_factory.mktemp("contracts")
    compiled, current = compiler.compile_all(REGISTRY_SOURCE.parent, out)
    return Compiled(out, compiled, current, json.loads((out / "Registry.json").read_text()))


@pytest.fixture(scope="session")
def registry_deployer():
    return boa.load_partial(str(REGISTRY_SOURCE))


@pytest.fixture(scope="session")
def attacker_deployer():
    return boa.load_partial(str(FIXTURES / "ReentrantCaller.vy"))


@pytest.fixture(autouse=True)
def isolated_chain():
    """Every test starts from the same chain state and block number, and leaves no trace
    (boa's pytest plugin does this too; this keeps it true with `-p no:boa_test`)."""
    with boa.env.anchor():
        yield


@pytest.fixture
def accounts(isolated_chain) -> Accounts:
    def funded(alias: str) -> str:
        address = boa.env.generate_address(alias)
        boa.env.set_balance(address, 1000 * ETHER)
        return str(address)

    return Accounts(
        owner=funded("owner"),
        slasher=funded("slasher"),
        beneficiary=funded("beneficiary"),
        stranger=funded("stranger"),
        operators=tuple(funded(f"operator{i}") for i in range(1, 18)),
    )


@pytest.fixture
def registry(registry_deployer, accounts):
    return registry_deployer.deploy(MIN_DEPOSIT, COOLING_OFF, sender=accounts.owner)


@pytest.fixture
def slashable(registry, accounts):
    """The registry with `accounts.slasher` as its slasher."""
    registry.set_slasher(accounts.slasher, sender=accounts.owner)
    return registry


# -- the Validation contract ------------------------------------------------------


@pytest.fixture(scope="session")
def validation_deployer():
    return boa.load_partial(str(VALIDATION_SOURCE))


@pytest.fixture
def cluster(registry, accounts) -> int:
    """Members 1-4 with attesters; node 5 registered with an attester but not a member; node 6 without one."""
    cluster_id = registry.create_cluster(REFERENCE, CODE_HASH, 8, sender=accounts.owner)
    for n in range(1, 7):
        registry.register(key(n), value=MIN_DEPOSIT, sender=accounts.operators[n - 1])
        if n <= 5:
            set_attester(registry, accounts, n, n)
    for n in range(1, 5):
        registry.request_join(n, cluster_id, sender=accounts.operators[n - 1])
        set_block(block() + 1)
        assert registry.approve_join(n, sender=accounts.owner)
    set_block(block() + 1)
    return cluster_id


@pytest.fixture
def validation(validation_deployer, registry, accounts, cluster):
    contract = validation_deployer.deploy(registry.address, DISPUTE_WINDOW, sender=accounts.owner)
    contract.set_checkpoint_interval(cluster, INTERVAL, sender=accounts.owner)
    return contract


# -- the Disputes contract ---------------------------------------------------------


@pytest.fixture(scope="session")
def disputes_deployer():
    from .dispute_helpers import DISPUTES_SOURCE

    return boa.load_partial(str(DISPUTES_SOURCE))


@pytest.fixture
def court(disputes_deployer, validation, registry, accounts, cluster):
    """Disputes wired as the Registry's slasher and beneficiary and Validation's court, with
    validator rules and a pool of ten enrolled validators (nodes 7-16); `court.disputes`."""
    from .dispute_helpers import deploy_court

    return deploy_court(disputes_deployer, validation, registry, accounts, cluster)
