"""Members' attestations in consensus (rtc.node.attesting): what a node signs in its vote
extension, which extensions and attestation transactions it refuses, and what a proposer
gathers. Real state stores and signatures; the cluster-level path is in tests/cluster/test_validation.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rtc.history import RecordReferences
from rtc.membership import Membership
from rtc.node.attesting import AttestationRules, Attestations, validator_address
from rtc.protocol.attestation import (
    AttestationDomain, AttestationError, AttestationTx, AttestedState, VoteExtension, address_of,
)
from rtc.state import StateStore

VALIDATORS = [bytes([i]) * 32 for i in range(1, 5)]  # ed25519 validator keys (only their addresses matter here)
ATTESTER_KEYS = [hashlib.sha256(bytes([i])).digest() for i in range(1, 6)]  # the fifth is nobody's
RULES = AttestationRules(b"\x11" * 20, 7, b"\xcc" * 32, AttestationDomain(31337, b"\x22" * 20))
MEMBERSHIP = Membership(3, b"h" * 32, dict.fromkeys(VALIDATORS, 10), 1,
                        {key: address_of(attester) for key, attester in zip(VALIDATORS, ATTESTER_KEYS)})
HEIGHT = 6  # the precommits of block 6 attest height 4


def record_of(height: int) -> bytes:
    return hashlib.sha256(b"record %d" % height).digest()


@pytest.fixture
def store(tmp_path: Path):
    store = StateStore.open(tmp_path / "state")
    for height in range(1, HEIGHT):
        overlay = store.begin()
        overlay.set(b"k", str(height).encode())
        store.commit(overlay, height)
    yield store
    store.close()


@pytest.fixture
def references(store: StateStore) -> RecordReferences:
    references = RecordReferences()
    for height in range(1, HEIGHT - 1):
        references.add(height, record_of(height), store.root_at(height))
    return references


def node(store: StateStore, references: RecordReferences | None, index: int) -> Attestations:
    return Attestations(RULES, store, references, ATTESTER_KEYS[index], VALIDATORS[index])


def extensions(store: StateStore, references: RecordReferences) -> list[tuple[bytes, bytes]]:
    return [(validator_address(VALIDATORS[i]), node(store, references, i).extend(HEIGHT, MEMBERSHIP)) for i in range(4)]


def test_a_member_signs_the_state_two_heights_back_with_its_registered_attester(store, references) -> None:
    extension = VoteExtension.decode(node(store, references, 0).extend(HEIGHT, MEMBERSHIP))
    assert extension.state == AttestedState(HEIGHT - 2, store.root_at(HEIGHT - 2), record_of(HEIGHT - 2))
    assert RULES.signer(extension.state, extension.signature) == address_of(ATTESTER_KEYS[0])


def test_no_attestation_without_a_record_a_registered_attester_or_an_early_height(store, references) -> None:
    assert node(store, None, 0).extend(HEIGHT, MEMBERSHIP) == b""  # keeps no history
    assert node(store, RecordReferences(), 0).extend(HEIGHT, MEMBERSHIP) == b""  # its uploader lags
    unregistered = Membership(3, b"h" * 32, MEMBERSHIP.validators, 1, {})
    assert node(store, references, 0).extend(HEIGHT, unregistered) == b""
    assert node(store, references, 0).extend(2, MEMBERSHIP) == b""  # nothing to attest before height 1
    wrong_root = RecordReferences()
    wrong_root.add(HEIGHT - 2, record_of(HEIGHT - 2), b"\x00" * 32)  # a record of another state: not signed
    assert node(store, wrong_root, 0).extend(HEIGHT, MEMBERSHIP) == b""


def test_every_node_accepts_an_honest_extension(store, references) -> None:
    for validator, extension in extensions(store, references):
        assert node(store, references, 1).check_extension(HEIGHT, validator, extension, MEMBERSHIP)
        assert node(store, None, 2).check_extension(HEIGHT, validator, extension, MEMBERSHIP)  # no records: no compare


def _signed(state: AttestedState, key: bytes, rules: AttestationRules = RULES) -> bytes:
    return VoteExtension(state, rules.sign(key, state)).encode()


@pytest.mark.parametrize("forgery", [
    "another height", "another app_hash", "another record", "another member's key", "an outsider's key",
    "another cluster", "another contract", "malformed", "malleated",
])
def test_forged_or_replayed_extensions_are_refused(store, references, forgery: str) -> None:
    honest = AttestedState(HEIGHT - 2, store.root_at(HEIGHT - 2), record_of(HEIGHT - 2))
    key = ATTESTER_KEYS[0]
    extension = {
        "another height": lambda: _signed(AttestedState(HEIGHT - 3, store.root_at(HEIGHT - 3), record_of(HEIGHT - 3)), key),
        "another app_hash": lambda: _signed(AttestedState(HEIGHT - 2, b"\x01" * 32, record_of(HEIGHT - 2)), key),
        "another record": lambda: _signed(AttestedState(HEIGHT - 2, honest.app_hash, b"\x02" * 32), key),
        "another member's key": lambda: _signed(honest, ATTESTER_KEYS[1]),
        "an outsider's key": lambda: _signed(honest, ATTESTER_KEYS[4]),
        "another cluster": lambda: _signed(honest, key, AttestationRules(RULES.registry, 8, RULES.code_hash, RULES.domain)),
        "another contract": lambda: _signed(honest, key, AttestationRules(
            RULES.registry, RULES.cluster_id, RULES.code_hash, AttestationDomain(31337, b"\x23" * 20))),
        "malformed": lambda: _signed(honest, key)[:-1],
        "malleated": lambda: _malleate(_signed(honest, key)),
    }[forgery]()
    with pytest.raises(AttestationError):
        node(store, references, 1).check_extension(HEIGHT, validator_address(VALIDATORS[0]), extension, MEMBERSHIP)


def _malleate(extension: bytes) -> bytes:
    """The same signature in its second form (s -> n - s, v flipped), which ecrecover would also take."""
    from rtc.protocol.attestation import ORDER

    body, signature = extension[:-65], extension[-65:]
    s = int.from_bytes(signature[32:64], "big")
    return body + signature[:32] + (ORDER - s).to_bytes(32, "big") + bytes([55 - signature[64]])


def test_the_proposer_gathers_the_valid_ones_in_signer_order_and_everyone_accepts_the_block(store, references) -> None:
    votes = extensions(store, references)
    votes[3] = (votes[3][0], b"")  # one member made none
    honest = VoteExtension.decode(votes[0][1]).state
    votes.append((validator_address(VALIDATORS[2]), _signed(honest, ATTESTER_KEYS[4])))  # an outsider's, relayed
    tx = node(store, references, 0).gather(HEIGHT + 1, votes, MEMBERSHIP)
    batch = AttestationTx.decode(tx)
    signers = [RULES.signer(batch.state, s) for s in batch.signatures]
    assert signers == sorted(address_of(k) for k in ATTESTER_KEYS[:3])
    for index in range(4):
        assert node(store, references, index).check_tx(HEIGHT + 1, tx, MEMBERSHIP) == batch


@pytest.mark.parametrize("change", ["unsorted", "duplicated", "outsider", "height", "truncated"])
def test_an_attestation_transaction_no_honest_proposer_sends_is_refused(store, references, change: str) -> None:
    batch = AttestationTx.decode(node(store, references, 0).gather(HEIGHT + 1, extensions(store, references), MEMBERSHIP))
    signatures = batch.signatures
    state = batch.state
    forged = {
        "unsorted": lambda: AttestationTx(state, signatures[::-1]).encode(),
        "duplicated": lambda: AttestationTx(state, signatures[:1] * 2).encode(),
        "outsider": lambda: AttestationTx(state, (RULES.sign(ATTESTER_KEYS[4], state),)).encode(),
        "height": lambda: AttestationTx(AttestedState(state.height + 1, state.app_hash, state.record),
                                        signatures).encode(),
        "truncated": lambda: AttestationTx(state, signatures).encode()[:-1],
    }[change]()
    with pytest.raises(AttestationError):
        node(store, references, 1).check_tx(HEIGHT + 1, forged, MEMBERSHIP)


# -- the application's rules for the transactions and extensions ---------------------------


def _app_with_attestations(tmp_path: Path):
    """A ClusterApp of a cluster with a Validation contract, whose membership names the attesters
    (through a sync in block 1), at height 5, with node 0's key and records of heights 1-4."""
    import orjson

    from rtc.abci import PublicKey, abci_pb
    from rtc.membership import EthereumSettings, EthereumSync
    from rtc.node.app import ClusterApp
    from rtc.node.config import ClusterSettings, GenesisAppState
    from rtc.vm import Backend
    from tests.conftest import component_path

    settings = ClusterSettings(ethereum=EthereumSettings(31337, "0x" + "11" * 20, 7, 2, "0x" + "22" * 20))
    backend = Backend.from_file(component_path("stock"), settings.limits)
    store = StateStore.open(tmp_path / "app")
    rules = AttestationRules.of(settings, backend.code_hash)
    references = RecordReferences()
    app = ClusterApp(store, backend, settings, attestations=Attestations(rules, store, references, ATTESTER_KEYS[0],
                                                                         VALIDATORS[0]))
    genesis = GenesisAppState(backend.code_hash, settings).to_json()
    request = abci_pb.RequestInitChain(chain_id="t", app_state_bytes=orjson.dumps(genesis))
    for key in VALIDATORS:
        request.validators.append(abci_pb.ValidatorUpdate(pub_key=PublicKey(ed25519=key), power=10))
    app.init_chain(request)
    members = sorted(zip(VALIDATORS, (address_of(k) for k in ATTESTER_KEYS[:4])))
    sync = EthereumSync(3, b"h" * 32, tuple(k for k, _ in members), tuple(a for _, a in members)).encode()
    for height in range(1, HEIGHT):
        finalized = abci_pb.RequestFinalizeBlock(height=height, txs=[sync] if height == 1 else [])
        app.finalize_block(finalized)
        app.commit(abci_pb.RequestCommit())
        references.add(height, record_of(height), store.root_at(height))
    return app, abci_pb


def test_the_app_refuses_attestations_from_clients_out_of_place_or_twice(tmp_path: Path) -> None:
    from rtc.protocol import Code

    app, abci_pb = _app_with_attestations(tmp_path)
    accept, reject = abci_pb.ResponseProcessProposal.ACCEPT, abci_pb.ResponseProcessProposal.REJECT
    extension = app.extend_vote(abci_pb.RequestExtendVote(height=HEIGHT)).vote_extension
    assert VoteExtension.decode(extension).state.height == HEIGHT - 2
    verdict = app.verify_vote_extension(abci_pb.RequestVerifyVoteExtension(
        height=HEIGHT, validator_address=validator_address(VALIDATORS[0]), vote_extension=extension))
    assert verdict.status == abci_pb.ResponseVerifyVoteExtension.ACCEPT
    stolen = app.verify_vote_extension(abci_pb.RequestVerifyVoteExtension(  # node 0's attestation as node 1's
        height=HEIGHT, validator_address=validator_address(VALIDATORS[1]), vote_extension=extension))
    assert stolen.status == abci_pb.ResponseVerifyVoteExtension.REJECT

    def attested(height: int) -> bytes:
        state = AttestedState(height, app.store.root_at(height), record_of(height))
        signed = sorted((address_of(k), app.attestations.rules.sign(k, state)) for k in ATTESTER_KEYS[:3])
        return AttestationTx(state, tuple(signature for _, signature in signed)).encode()

    def propose(txs: list[bytes]) -> int:
        return app.process_proposal(abci_pb.RequestProcessProposal(txs=txs, height=HEIGHT)).status

    assert app.check_tx(abci_pb.RequestCheckTx(tx=attested(HEIGHT - 3))).code == Code.NOT_FROM_CLIENTS
    assert propose([attested(HEIGHT - 2)]) == reject  # block 6 carries the attestations of 3, not of 4
    due = attested(HEIGHT - 3)
    assert propose([due]) == accept
    assert propose([due, due]) == reject
    from rtc.node.config import GenesisAppState
    from rtc.protocol import SigningDomain, canonical_json, sign
    from tests.node.test_app import KEY, SESSION

    genesis = GenesisAppState(app.backend.code_hash, app.settings).to_json()
    domain = SigningDomain.from_genesis("t", genesis)
    call = sign(KEY, domain, SESSION, 0, canonical_json({"function": "update_high", "symbol": "A", "value": 1.0})).encode()
    assert propose([due, call]) == accept
    assert propose([call, due]) == reject  # attestations open a block (after a sync), never follow calls
    result = app.finalize_block(abci_pb.RequestFinalizeBlock(height=HEIGHT, txs=[due])).tx_results[0]
    assert result.code == Code.OK and result.events[0].type == "rtc_attestation"
