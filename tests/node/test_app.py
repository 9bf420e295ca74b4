"""The ABCI application in-process: determinism, results in state, identity checks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from nacl.signing import SigningKey

from rtc.abci import abci_pb
from rtc.node.app import ClusterApp
from rtc.node.config import ClusterSettings, GenesisAppState
from rtc.protocol import Code, Proof, canonical_json, sign, verify_proof
from rtc.protocol.keys import result_key
from rtc.state import StateStore
from rtc.vm import Backend, Limits
from tests.conftest import component_path


def make_app(path: Path, component: str = "stock", settings: ClusterSettings = ClusterSettings()) -> ClusterApp:
    backend = Backend.from_file(component_path(component), settings.limits)
    return ClusterApp(StateStore.open(path), backend, settings)


def init(app: ClusterApp, settings: ClusterSettings = ClusterSettings()) -> bytes:
    state = GenesisAppState(app.backend.code_hash, settings).to_json()
    return app.init_chain(abci_pb.RequestInitChain(chain_id="t", app_state_bytes=orjson.dumps(state))).app_hash


def block(app: ClusterApp, height: int, txs: list[bytes]) -> abci_pb.ResponseFinalizeBlock:
    request = abci_pb.RequestFinalizeBlock(height=height, txs=txs)
    request.time.seconds = 1_700_000_000 + height
    response = app.finalize_block(request)
    app.commit(abci_pb.RequestCommit())
    return response


KEY = SigningKey(b"\x07" * 32)
SESSION = b"s" * 16
SESSION_KEY = bytes(KEY.verify_key) + SESSION


def signed(counter: int, call: dict | bytes, chain: str = "t") -> bytes:
    body = call if isinstance(call, bytes) else canonical_json(call)
    return sign(KEY, chain, SESSION, counter, body).encode()


TXS = [
    signed(0, {"function": "update_high", "symbol": "AAPL", "value": 10.0}),
    b"\xff not even an envelope",
    signed(1, {"function": "update_high", "symbol": "AAPL", "value": 5.0}),
    signed(2, {"function": "update_high", "symbol": "", "value": 5.0}),
    signed(3, {"function": "get_high", "symbol": "AAPL"}),
]


def test_two_nodes_compute_the_same_app_hash_and_results(tmp_path: Path) -> None:
    first, second = make_app(tmp_path / "a"), make_app(tmp_path / "b")
    assert init(first) == init(second)
    one, two = block(first, 1, TXS), block(second, 1, TXS)
    assert one.app_hash == two.app_hash and len(one.app_hash) == 32
    assert [r.SerializeToString() for r in one.tx_results] == [r.SerializeToString() for r in two.tx_results]
    codes = [r.code for r in one.tx_results]
    assert codes == [Code.OK, Code.MALFORMED, Code.OK, Code.OK, Code.READ_ONLY]
    assert orjson.loads(one.tx_results[2].data)["value"] == {"ok": 10.0}
    assert orjson.loads(one.tx_results[3].data)["value"] == {"err": "symbol must not be empty"}


def test_every_result_is_in_state_with_a_proof(tmp_path: Path) -> None:
    app = make_app(tmp_path / "a")
    init(app)
    response = block(app, 1, TXS)
    executed = [(0, response.tx_results[0]), (1, response.tx_results[2]), (2, response.tx_results[3])]
    for counter, result in executed:
        assert app.store.get(result_key(SESSION_KEY, counter)) == result.data
        query = app.query(abci_pb.RequestQuery(path=f"/result/{SESSION_KEY.hex()}/{counter}", prove=True))
        proof = Proof.from_bytes(query.proof_ops.ops[0].data)
        assert proof.value == result.data and verify_proof(response.app_hash, proof)
    missing = app.query(abci_pb.RequestQuery(path=f"/result/{SESSION_KEY.hex()}/3", prove=True))
    assert missing.value == b"" and verify_proof(response.app_hash, Proof.from_bytes(missing.proof_ops.ops[0].data))


def test_info_reports_the_committed_height_and_hash(tmp_path: Path) -> None:
    app = make_app(tmp_path / "a")
    assert app.info(abci_pb.RequestInfo()).last_block_height == 0
    init(app)
    response = block(app, 1, TXS[:1])
    info = app.info(abci_pb.RequestInfo())
    assert info.last_block_height == 1 and info.last_block_app_hash == response.app_hash


def test_a_node_refuses_state_built_by_other_code_or_settings(tmp_path: Path) -> None:
    app = make_app(tmp_path / "a")
    init(app)
    block(app, 1, TXS[:1])
    app.store.close()
    with pytest.raises(RuntimeError, match="state was built by backend"):
        make_app(tmp_path / "a", component="sum")
    with pytest.raises(RuntimeError, match="other cluster settings"):
        make_app(tmp_path / "a", settings=ClusterSettings(Limits(fuel=1_000_000)))
    make_app(tmp_path / "a").store.close()  # the right code and settings still open it


def test_genesis_with_other_code_or_settings_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path / "a")
    wrong_code = GenesisAppState(b"\x00" * 32, ClusterSettings()).to_json()
    with pytest.raises(RuntimeError, match="genesis names"):
        app.init_chain(abci_pb.RequestInitChain(app_state_bytes=orjson.dumps(wrong_code)))
    with pytest.raises(RuntimeError, match="other cluster settings"):
        init(app, ClusterSettings(max_tx_bytes=10))


def test_check_tx_refuses_before_ordering(tmp_path: Path) -> None:
    app = make_app(tmp_path / "a")
    init(app)
    ok = app.check_tx(abci_pb.RequestCheckTx(tx=TXS[0]))
    bad = app.check_tx(abci_pb.RequestCheckTx(tx=signed(0, {"function": "update_high", "symbol": 1, "value": 1.0})))
    other_chain = app.check_tx(abci_pb.RequestCheckTx(tx=signed(0, {"function": "update_high", "symbol": "A", "value": 1.0}, "x")))
    assert ok.code == Code.OK
    assert bad.code == Code.INVALID_CALL and "argument 'symbol': expected string, got number" in bad.log
    assert other_chain.code == Code.BAD_SIGNATURE
    block(app, 1, TXS[:1])
    replay = app.check_tx(abci_pb.RequestCheckTx(tx=TXS[0]))
    assert replay.code == Code.DUPLICATE
    recheck = app.check_tx(abci_pb.RequestCheckTx(tx=TXS[0], type=abci_pb.RECHECK))
    assert recheck.code == Code.DUPLICATE


def test_prepare_proposal_drops_what_cannot_execute(tmp_path: Path) -> None:
    app = make_app(tmp_path / "a")
    init(app)
    response = app.prepare_proposal(abci_pb.RequestPrepareProposal(txs=TXS, max_tx_bytes=1_000_000))
    assert list(response.txs) == [TXS[0], TXS[2], TXS[3]]
