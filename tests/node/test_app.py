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


def test_check_tx_keeps_only_admitted_calls_and_stays_within_its_byte_budget(tmp_path: Path) -> None:
    """Finding: refused calls (a counter far ahead) were cached; 2,000 of 65 KB took a node from
    99 to 351 MB in seconds, at no cost to the sender."""
    app = make_app(tmp_path / "a")
    init(app)
    padding = "x" * 60_000
    for counter in range(1_000, 1_200):  # far beyond the session's buffer: refused
        tx = signed(counter, {"function": "update_high", "symbol": padding, "value": 1.0})
        assert app.check_tx(abci_pb.RequestCheckTx(tx=tx)).code == Code.TOO_EARLY
    assert len(app._checked) == 0 and app._checked.bytes == 0
    app._checked.budget = 2_000_000
    for counter in range(60):  # admitted, but more than the budget holds
        tx = signed(counter, {"function": "update_high", "symbol": padding, "value": 1.0})
        assert app.check_tx(abci_pb.RequestCheckTx(tx=tx)).code == Code.OK
    assert 0 < app._checked.bytes <= 2_000_000 and len(app._checked) < 60


def test_a_block_spends_at_most_its_fuel_budget_and_refuses_the_rest(tmp_path: Path) -> None:
    """Finding: no per-block budget; a proposer could fill a block with calls that each burn the
    whole per-call limit and keep every node busy for minutes to hours."""
    settings = ClusterSettings(Limits(fuel=1_000_000), block_fuel=3_000_000)
    app = make_app(tmp_path / "a", "hostile", settings)
    init(app, settings)
    key = SigningKey(b"\x08" * 32)
    txs = [sign(key, "t", bytes([i]) * 16, 0, canonical_json({"function": "spin"})).encode() for i in range(10)]
    assert app.process_proposal(abci_pb.RequestProcessProposal(txs=txs, height=1)).status == \
        abci_pb.ResponseProcessProposal.ACCEPT
    results = block(app, 1, txs).tx_results
    assert [r.code for r in results] == [Code.EXECUTION_FAILED] * 3 + [Code.BLOCK_FULL] * 7
    assert sum(r.gas_used for r in results) == 3_000_000
    assert "send it again" in results[-1].log
    # the refused calls used no counter: resent in the next block, the first runs
    assert block(app, 2, txs[3:4]).tx_results[0].code == Code.EXECUTION_FAILED


def test_prepare_proposal_stops_near_the_budget_once_it_has_seen_what_calls_cost(tmp_path: Path) -> None:
    settings = ClusterSettings(Limits(fuel=1_000_000), block_fuel=3_000_000)
    app = make_app(tmp_path / "a", "hostile", settings)
    init(app, settings)
    key = SigningKey(b"\x08" * 32)
    txs = [sign(key, "t", bytes([i]) * 16, 0, canonical_json({"function": "spin_n", "n": 10})).encode()
           for i in range(10)]
    unseen = app.prepare_proposal(abci_pb.RequestPrepareProposal(txs=txs, max_tx_bytes=1_000_000)).txs
    assert len(unseen) == 3  # an entry point never run here may take all its fuel
    block(app, 1, txs[:1])
    assert len(app.prepare_proposal(abci_pb.RequestPrepareProposal(txs=txs, max_tx_bytes=1_000_000)).txs) == 10


def test_process_proposal_refuses_a_block_with_a_transaction_no_honest_proposer_sends(tmp_path: Path) -> None:
    """Finding: ProcessProposal accepted any transactions, so a Byzantine proposer could fill
    blocks with garbage that every node must decode and refuse."""
    app = make_app(tmp_path / "a")
    init(app)
    accept, reject = abci_pb.ResponseProcessProposal.ACCEPT, abci_pb.ResponseProcessProposal.REJECT
    assert app.process_proposal(abci_pb.RequestProcessProposal(txs=[TXS[0], TXS[2]], height=1)).status == accept
    for bad in (TXS[1], signed(5, {"function": "get_high", "symbol": "A"}),
                signed(6, {"function": "update_high", "symbol": "A", "value": 1.0}, chain="other")):
        assert app.process_proposal(abci_pb.RequestProcessProposal(txs=[TXS[0], bad], height=1)).status == reject
