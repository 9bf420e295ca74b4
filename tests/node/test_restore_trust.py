"""`rtc node restore --from-swarm` believes nothing it has not anchored (review issue 12, finding 3).

The history in Swarm is checked link by link and signature by signature, but a store (or a
Bee) serving a history of its own, signed by validators of its own, passes those checks: the
restore must start from something the operator trusts, or say that it trusted what it found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from rtc.cometbft import NodeHome
from rtc.history import HistoryError
from rtc.node.config import GenesisAppState
from rtc.node.restore import TrustAnchor, restore_state
from rtc.state import StateStore
from rtc.protocol import keys as state_keys
from rtc.swarm import LocalSwarm
from tests.conftest import component_path
from tests.helpers import rtc

from .history_forge import CHAIN_ID, History, make_history, make_node_home

FORGED_KEY = state_keys.BACKEND_PREFIX + b"balance/forger"
GENUINE = SigningKey(b"\x01" * 32)
FORGER = SigningKey(b"\x02" * 32)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    make_node_home(home, component_path("sum"), GENUINE)
    return home


def publish(home: Path, key: SigningKey, height: int = 4, snapshot_at: int = 2, forged: bool = False) -> History:
    """A history of `height` blocks in the node's Swarm store, signed by `key`."""
    app_state = GenesisAppState.read(NodeHome(home))
    with LocalSwarm.open(home / "swarm") as swarm:
        return make_history(home.parent / f"made-by-{key.verify_key.encode().hex()[:8]}", swarm,
                            component_path("sum"), app_state, key, height, snapshot_at,
                            {FORGED_KEY: b"1000000"} if forged else None)


def restore(home: Path, owner: bytes, anchor: TrustAnchor):  # type: ignore[no-untyped-def]
    with LocalSwarm.open(home / "swarm") as swarm:
        return restore_state(home, swarm, owner, CHAIN_ID, anchor)


def restored_state(home: Path) -> dict[bytes, bytes]:
    store = StateStore.open(home / "rtc-state")
    try:
        return {k: v for k in (FORGED_KEY,) if (v := store.get(k)) is not None}
    finally:
        store.close()


def test_a_restore_without_a_trust_anchor_is_refused_and_says_what_to_pass(node: Path) -> None:
    forged = publish(node, FORGER, forged=True)
    run = rtc("node", "restore", "--from-swarm", "--home", node, "--owner", forged.owner.hex(), "-J")
    assert run.code != 0, run
    for flag in ("--trust-height", "--trust-hash", "--anchor-genesis", "--trust-on-first-use"):
        assert flag in run.err, run.err
    assert not (node / "rtc-state").exists()  # nothing was restored


def test_a_forged_history_is_refused_against_the_genesis_validators(node: Path) -> None:
    forged = publish(node, FORGER, forged=True)
    run = rtc("node", "restore", "--from-swarm", "--home", node, "--owner", forged.owner.hex(), "--anchor-genesis")
    assert run.code != 0 and "validator set other than the trusted one" in run.err, run
    assert not (node / "rtc-state").exists()


def test_a_forged_history_is_refused_against_a_trusted_block_hash(node: Path) -> None:
    genuine = publish(node, GENUINE)
    forged = publish(node, FORGER, forged=True)
    for height in (1, 2, 4):  # before the snapshot, at it, and the newest record
        with pytest.raises(HistoryError, match=f"trusted block {height}"):
            restore(node, forged.owner, TrustAnchor.block(height, genuine.block_hashes[height]))
    assert not (node / "rtc-state").exists()


def test_a_genuine_history_restores_against_a_block_hash_before_the_snapshot(node: Path) -> None:
    genuine = publish(node, GENUINE)
    restored = restore(node, genuine.owner, TrustAnchor.block(1, genuine.block_hashes[1]))
    assert (restored.snapshot_height, restored.height, restored.app_hash) == (2, 4, genuine.app_hashes[4])
    assert "block 1" in restored.trusted


def test_a_trusted_height_beyond_the_history_is_refused(node: Path) -> None:
    genuine = publish(node, GENUINE)
    with pytest.raises(HistoryError, match="newest record in Swarm is 4"):
        restore(node, genuine.owner, TrustAnchor.block(9, b"\x00" * 32))


def test_trust_on_first_use_restores_and_prints_what_it_trusted(node: Path) -> None:
    forged = publish(node, FORGER, forged=True)
    run = rtc("node", "restore", "--from-swarm", "--home", node, "--owner", forged.owner.hex(), "--trust-on-first-use")
    assert run.code == 0, run
    # What was believed is printed, so the operator can compare it with a node they trust.
    assert forged.validators_hash.hex() in run.out and forged.block_hashes[2].hex() in run.out, run.out
    assert "trust on first use" in run.out
    assert restored_state(node) == {FORGED_KEY: b"1000000"}  # it was forged indeed: nothing said otherwise
    run_json = rtc("node", "restore", "--from-swarm", "--home", node, "--owner", forged.owner.hex(),
                   "--trust-on-first-use", "-J")
    assert run_json.code != 0  # the state is there now; a restore never overwrites it


def test_the_json_report_names_the_anchor(node: Path) -> None:
    genuine = publish(node, GENUINE)
    run = rtc("node", "restore", "--from-swarm", "--home", node, "--owner", genuine.owner.hex(), "-J",
              "--trust-height", "3", "--trust-hash", genuine.block_hashes[3].hex())
    assert run.code == 0, run
    trust = json.loads(run.out)["trust"]
    assert trust == {"anchor": "block hash", "height": 3, "block_hash": genuine.block_hashes[3].hex(),
                     "validators_hash": genuine.validators_hash.hex()}


def test_a_snapshot_that_no_signed_header_commits_to_yet_is_not_restored(node: Path) -> None:
    """Record S's app_hash is signed only by header S+1: with S the newest record, a validator-signed
    record could still carry a forged app_hash and snapshot, even with the genesis anchor."""
    forged = publish(node, GENUINE, height=2, snapshot_at=2, forged=True)
    run = rtc("node", "restore", "--from-swarm", "--home", node, "--owner", forged.owner.hex(), "--anchor-genesis")
    assert run.code != 0 and "wait for the next record" in run.err, run
    assert not (node / "rtc-state").exists()


def test_an_anchor_is_one_thing() -> None:
    with pytest.raises(ValueError):
        TrustAnchor()
    with pytest.raises(ValueError):
        TrustAnchor(height=1, block_hash=b"\x00" * 32, first_use=True)
    with pytest.raises(ValueError):
        TrustAnchor.block(0, b"\x00" * 32)
    with pytest.raises(ValueError):
        TrustAnchor.block(1, b"\x00" * 31)
