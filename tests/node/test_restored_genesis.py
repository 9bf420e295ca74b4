"""A restored cluster's genesis: its nodes hold a convicted cluster's state at a checkpoint, and
InitChain of the new chain takes it over (new identity, same sessions and backend state) only if
it is exactly the state the genesis names; until then the node tells CometBFT it has no chain."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from rtc.abci import abci_pb
from rtc.node.app import ClusterApp
from rtc.node.config import ClusterSettings, GenesisAppState, RestoredFrom
from rtc.protocol import keys
from rtc.state import StateStore
from rtc.vm import Backend
from tests.conftest import component_path

KEY = b"\x05" * 32


def init(app: ClusterApp, chain_id: str, restored: RestoredFrom | None = None) -> abci_pb.ResponseInitChain:
    genesis = GenesisAppState(app.backend.code_hash, app.settings, restored)
    return app.init_chain(abci_pb.RequestInitChain(
        chain_id=chain_id, app_state_bytes=orjson.dumps(genesis.to_json()),
        validators=[abci_pb.ValidatorUpdate(power=10, pub_key={"ed25519": KEY})]))


def run_blocks(app: ClusterApp, first: int, count: int) -> None:
    for height in range(first, first + count):
        app.finalize_block(abci_pb.RequestFinalizeBlock(height=height))
        app.commit(abci_pb.RequestCommit())


@pytest.fixture
def convicted_state(tmp_path: Path) -> tuple[Path, bytes]:
    """A store holding 5 blocks of another chain (the convicted cluster's state at its checkpoint)."""
    store = StateStore.open(tmp_path / "state")
    app = ClusterApp(store, Backend.from_file(component_path("sum")), ClusterSettings())
    init(app, "convicted")
    run_blocks(app, 1, 5)
    root = store.root
    store.close()
    return tmp_path / "state", root


def open_app(path: Path, restored: RestoredFrom) -> ClusterApp:
    return ClusterApp(StateStore.open(path), Backend.from_file(component_path("sum")), ClusterSettings(),
                      restored_from=restored)


def test_the_new_chain_takes_over_the_checkpoints_state_and_goes_on_after_it(convicted_state) -> None:
    path, root = convicted_state
    restored = RestoredFrom("0x" + "11" * 20, 1, 5, root, b"\x22" * 32)
    app = open_app(path, restored)
    assert app.info(abci_pb.RequestInfo()).last_block_height == 0  # CometBFT must call InitChain
    first = init(app, "successor", restored)
    assert first.app_hash != root  # the same state under a new identity
    run_blocks(app, 6, 2)
    assert app.store.height == 7 and app.store.get(keys.CHAIN_ID_KEY) == b"successor"
    assert orjson.loads(app.store.get(keys.RESTORED_FROM_KEY))["height"] == 5
    app.store.close()
    again = open_app(path, restored)  # restarted: the chain is its own now
    assert again.info(abci_pb.RequestInfo()).last_block_height == 7 and again.chain_id == "successor"
    again.store.close()


def test_a_state_that_is_not_the_checkpoints_is_refused(convicted_state) -> None:
    path, root = convicted_state
    for wrong in (RestoredFrom("0x" + "11" * 20, 1, 5, b"\x01" * 32, b""), RestoredFrom("0x" + "11" * 20, 1, 4, root, b"")):
        app = open_app(path, wrong)
        with pytest.raises(RuntimeError, match="restore it with `rtc cluster restore`"):
            init(app, "successor", wrong)
        app.store.close()


def test_an_ordinary_genesis_never_initialises_over_existing_state(convicted_state) -> None:
    path, _ = convicted_state
    app = ClusterApp(StateStore.open(path), Backend.from_file(component_path("sum")), ClusterSettings())
    with pytest.raises(RuntimeError, match="holds state already"):
        init(app, "convicted")
    app.store.close()
