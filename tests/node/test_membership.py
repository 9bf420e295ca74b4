"""The validator set follows the Registry: Ethereum-sync transactions in one node, on a real anvil.

Proposing, voting (against this node's own endpoint) and applying a sync, and what a
node does with a forged, reorganized, unfinalized or stale one, or with its endpoint down.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from web3 import Web3

from rtc.abci import abci_pb
from rtc.ethereum import Anvil
from rtc.ethereum.registry import Registry
from rtc.membership import (
    EthereumSettings, EthereumSync, Membership, SyncError, Unconfirmed, apply_sync, decode_sync,
)
from rtc.membership.watcher import EthereumWatcher, step_toward
from rtc.node.app import ClusterApp
from rtc.node.config import ClusterSettings, GenesisAppState
from rtc.protocol import Code
from rtc.state import StateStore
from rtc.vm import Backend
from tests.conftest import component_path

ETHER = 10**18
ANVIL_PORT = 30650
KEYS = [bytes([i]) * 32 for i in range(1, 6)]
CONFIRMATIONS = 2
ACCEPT, REJECT = abci_pb.ResponseProcessProposal.ACCEPT, abci_pb.ResponseProcessProposal.REJECT


class Chain:
    def __init__(self, anvil: Anvil) -> None:
        self.url = anvil.url
        self.w3 = Web3(Web3.HTTPProvider(anvil.url))
        accounts = self.w3.eth.accounts
        self.owner, self.operators = accounts[0], accounts[1:8]
        self.registry = Registry.deploy(self.w3, self.owner, ETHER, 5)
        self.cluster_id = self.registry.create_cluster(self.owner, b"\x33" * 32, b"\x22" * 32, 16)
        self.node_ids = []
        for operator, key in zip(self.operators[:4], KEYS[:4]):
            node_id = self.registry.register(operator, key, 2 * ETHER)
            self.admit(operator, node_id)
            self.node_ids.append(node_id)
        self.settings = EthereumSettings(31337, self.registry.address, self.cluster_id, CONFIRMATIONS)

    def admit(self, operator: str, node_id: int) -> None:
        """The node asks to join and the cluster's owner approves (each transaction is its own block)."""
        self.registry.request_join(operator, node_id, self.cluster_id)
        assert self.registry.approve_join(self.owner, node_id)

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [blocks])


@pytest.fixture(scope="module")
def chain(anvil: Anvil) -> Chain:
    return Chain(anvil)


def make_app(path: Path, chain: Chain, watcher: EthereumWatcher | None) -> ClusterApp:
    settings = ClusterSettings(ethereum=chain.settings)
    app = ClusterApp(StateStore.open(path), Backend.from_file(component_path("sum"), settings.limits), settings, watcher)
    request = abci_pb.RequestInitChain(
        chain_id="t", app_state_bytes=orjson.dumps(GenesisAppState(app.backend.code_hash, settings).to_json()),
        validators=[abci_pb.ValidatorUpdate(power=10, pub_key={"ed25519": key}) for key in KEYS[:4]],
    )
    app.init_chain(request)
    return app


def finalize(app: ClusterApp, height: int, txs: list[bytes]) -> abci_pb.ResponseFinalizeBlock:
    response = app.finalize_block(abci_pb.RequestFinalizeBlock(height=height, txs=txs))
    app.commit(abci_pb.RequestCommit())
    return response


def vote(app: ClusterApp, height: int, txs: list[bytes]) -> int:
    return app.process_proposal(abci_pb.RequestProcessProposal(height=height, txs=txs)).status


def propose(app: ClusterApp, height: int) -> list[bytes]:
    return list(app.prepare_proposal(abci_pb.RequestPrepareProposal(height=height, max_tx_bytes=1 << 20)).txs)


def test_a_new_member_is_proposed_confirmed_and_becomes_a_validator(tmp_path: Path, chain: Chain) -> None:
    watcher = EthereumWatcher(chain.url, chain.settings)
    app = make_app(tmp_path / "a", chain, watcher)
    other = make_app(tmp_path / "b", chain, EthereumWatcher(chain.url, chain.settings))  # a second node, own view
    chain.mine(CONFIRMATIONS)
    watcher.poll_once()
    first = propose(app, 1)
    assert len(first) == 1 and decode_sync(first[0]).members == tuple(sorted(KEYS[:4]))
    assert vote(other, 1, first) == ACCEPT
    response = finalize(app, 1, first)
    assert response.tx_results[0].code == Code.OK and list(response.validator_updates) == []  # unchanged set
    finalize(other, 1, first)
    assert propose(app, 2) == []  # nothing new to say

    node_id = chain.registry.register(chain.operators[4], KEYS[4], 2 * ETHER)
    chain.admit(chain.operators[4], node_id)
    chain.mine(CONFIRMATIONS)
    watcher.poll_once()
    txs = propose(app, 2)
    assert len(txs) == 1 and KEYS[4] in decode_sync(txs[0]).members
    assert vote(other, 2, txs) == ACCEPT
    updates = finalize(app, 2, txs).validator_updates
    assert [(u.pub_key.ed25519, u.power) for u in updates] == [(KEYS[4], 10)]
    assert finalize(other, 2, txs).app_hash == app.store.root
    membership = orjson.loads(app.query(abci_pb.RequestQuery(path="/membership")).value)
    assert len(membership["validators"]) == 5

    chain.registry.request_leave(chain.operators[0], chain.node_ids[0])
    chain.mine(CONFIRMATIONS)
    watcher.poll_once()
    txs = propose(app, 3)
    assert vote(other, 3, txs) == ACCEPT
    updates = finalize(app, 3, txs).validator_updates
    assert [(u.pub_key.ed25519, u.power) for u in updates] == [(KEYS[0], 0)]


def test_votes_against_forged_reorganized_or_unfinalized_syncs(tmp_path: Path, chain: Chain) -> None:
    app = make_app(tmp_path / "a", chain, EthereumWatcher(chain.url, chain.settings))
    chain.mine(CONFIRMATIONS + 1)
    final = chain.w3.eth.block_number - CONFIRMATIONS
    block_hash = bytes(chain.w3.eth.get_block(final)["hash"])
    members = tuple(sorted(bytes(k) for k in chain.registry.contract.functions.member_keys_at(chain.cluster_id, final).call()))
    honest = EthereumSync(final, block_hash, members)
    assert vote(app, 1, [honest.encode()]) == ACCEPT
    forged_members = replace(honest, members=tuple(sorted(members + (b"\xee" * 32,))), attesters=())
    assert vote(app, 1, [forged_members.encode()]) == REJECT
    forged_attester = replace(honest, attesters=(b"\xaa" * 20,) + honest.attesters[1:])  # none is registered
    assert vote(app, 1, [forged_attester.encode()]) == REJECT
    assert vote(app, 1, [replace(honest, block_hash=b"\x01" * 32).encode()]) == REJECT
    unfinal = chain.w3.eth.block_number
    tip = EthereumSync(unfinal, bytes(chain.w3.eth.get_block(unfinal)["hash"]), members)
    assert vote(app, 1, [tip.encode()]) == REJECT  # not yet CONFIRMATIONS deep
    assert vote(app, 1, [b"calls first", honest.encode()]) == REJECT  # a sync only opens a block
    assert vote(app, 1, [honest.encode(), honest.encode()]) == REJECT

    # A reorganization: the block the sync names is replaced by another one of the same number.
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    chain.mine(1)
    number = chain.w3.eth.block_number
    before = EthereumSync(number, bytes(chain.w3.eth.get_block(number)["hash"]), members)
    chain.w3.provider.make_request("evm_revert", [snapshot])
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [chain.w3.eth.get_block("latest")["timestamp"] + 7])
    chain.mine(CONFIRMATIONS + 1)
    assert bytes(chain.w3.eth.get_block(number)["hash"]) != before.block_hash
    assert vote(app, 1, [before.encode()]) == REJECT


def test_an_endpoint_that_is_down_refuses_to_vote_but_applying_needs_no_ethereum(tmp_path: Path, chain: Chain) -> None:
    live = make_app(tmp_path / "live", chain, EthereumWatcher(chain.url, chain.settings))
    dead = make_app(tmp_path / "dead", chain, EthereumWatcher("http://127.0.0.1:9", chain.settings))
    blind = make_app(tmp_path / "blind", chain, None)
    chain.mine(CONFIRMATIONS)
    live.watcher.poll_once()
    txs = propose(live, 1)
    assert vote(live, 1, txs) == ACCEPT
    assert vote(dead, 1, txs) == REJECT and vote(blind, 1, txs) == REJECT
    assert propose(dead, 1) == [] and propose(blind, 1) == []  # nothing seen, nothing proposed
    with pytest.raises(Unconfirmed, match="cannot reach"):
        dead.watcher.confirm(decode_sync(txs[0]))
    # The others decided the block: every node applies it from the transaction alone.
    hashes = {finalize(app, 1, txs).app_hash for app in (live, dead, blind)}
    assert len(hashes) == 1


def test_stale_replayed_and_malformed_syncs_change_nothing(tmp_path: Path, chain: Chain) -> None:
    app = make_app(tmp_path / "a", chain, EthereumWatcher(chain.url, chain.settings))
    chain.mine(CONFIRMATIONS)
    app.watcher.poll_once()
    txs = propose(app, 1)
    finalize(app, 1, txs)
    replayed = finalize(app, 2, txs)  # a byzantine proposer repeats it: refused deterministically
    assert replayed.tx_results[0].code == Code.INVALID_SYNC and "not newer" in replayed.tx_results[0].log
    assert list(replayed.validator_updates) == []
    junk = [txs[0][:-1], txs[0][:44] + b"\x00", txs[0][:44] + b"\x02" + KEYS[1] + KEYS[0]]
    for height, tx in enumerate(junk, start=3):
        result = finalize(app, height, [tx]).tx_results[0]
        assert result.code == Code.INVALID_SYNC, tx
    assert Membership.from_json(orjson.loads(app.query(abci_pb.RequestQuery(path="/membership")).value)).block_number \
        == decode_sync(txs[0]).block_number
    refused = app.check_tx(abci_pb.RequestCheckTx(tx=txs[0]))
    assert refused.code == Code.NOT_FROM_CLIENTS and "proposers" in refused.log


def test_a_cluster_without_a_contract_ignores_syncs(tmp_path: Path, chain: Chain) -> None:
    settings = ClusterSettings()
    app = ClusterApp(StateStore.open(tmp_path / "a"), Backend.from_file(component_path("sum")), settings)
    app.init_chain(abci_pb.RequestInitChain(chain_id="t", app_state_bytes=orjson.dumps(
        GenesisAppState(app.backend.code_hash, settings).to_json())))
    sync = EthereumSync(10**6, b"\x01" * 32, (KEYS[0],))
    assert vote(app, 1, [sync.encode()]) == REJECT
    response = finalize(app, 1, [sync.encode()])
    assert response.tx_results[0].code == Code.INVALID_SYNC and list(response.validator_updates) == []


def test_apply_sync_updates_are_sorted_and_minimal() -> None:
    current = Membership(5, b"h" * 32, {KEYS[0]: 10, KEYS[1]: 10, KEYS[2]: 10})
    new, updates = apply_sync(current, EthereumSync(6, b"i" * 32, (KEYS[1], KEYS[2], KEYS[3])), height=9)
    assert updates == [(KEYS[0], 0), (KEYS[3], 10)]
    assert new.validators == {KEYS[1]: 10, KEYS[2]: 10, KEYS[3]: 10} and new.height == 9
    with pytest.raises(SyncError, match="not newer"):
        apply_sync(new, EthereumSync(6, b"i" * 32, (KEYS[1],)), height=10)


def test_a_sync_adds_at_most_one_validator_and_removes_any_number() -> None:
    """Issue 12: a sync that adds two unknown keys to four takes a third of the power at once."""
    current = Membership(5, b"h" * 32, {KEYS[0]: 10, KEYS[1]: 10, KEYS[2]: 10, KEYS[3]: 10})
    grown = EthereumSync(6, b"i" * 32, tuple(sorted(KEYS[:4] + [b"\xa1" * 32, b"\xa2" * 32])))
    with pytest.raises(SyncError, match="adds 2 validators; a sync adds at most 1"):
        apply_sync(current, grown, height=9)
    new, updates = apply_sync(current, EthereumSync(6, b"i" * 32, (KEYS[3], KEYS[4])), height=9)
    assert updates == [(KEYS[0], 0), (KEYS[1], 0), (KEYS[2], 0), (KEYS[4], 10)]  # three leave, one joins
    assert new.validators == {KEYS[3]: 10, KEYS[4]: 10}


def test_a_burst_of_joins_is_proposed_one_member_at_a_time(tmp_path: Path, anvil: Anvil) -> None:
    """Two nodes admitted in successive Ethereum blocks: the proposer syncs to the block
    where only the first had joined, then to the newest; voters refuse a sync adding both."""
    chain = Chain(anvil)
    watcher = EthereumWatcher(chain.url, chain.settings)
    app = make_app(tmp_path / "a", chain, watcher)
    other = make_app(tmp_path / "b", chain, EthereumWatcher(chain.url, chain.settings))
    chain.mine(CONFIRMATIONS)
    watcher.poll_once()
    first = propose(app, 1)
    for node in (app, other):
        finalize(node, 1, first)

    newcomers = [b"\xb1" * 32, b"\xb2" * 32]
    for operator, key in zip(chain.operators[4:6], newcomers):
        chain.admit(operator, chain.registry.register(operator, key, 2 * ETHER))
    chain.mine(CONFIRMATIONS)
    watcher.poll_once()
    both = watcher.latest
    assert both is not None and set(newcomers) <= set(both.members)
    assert vote(other, 2, [both.encode()]) == REJECT  # confirmed on Ethereum, but two at once

    for height, expected in ((2, newcomers[0]), (3, newcomers[1])):
        txs = propose_after_poll(app, watcher, height)
        assert len(txs) == 1, height
        sync = decode_sync(txs[0])
        assert set(sync.members) - set(app_validators(app)) == {expected}
        assert vote(other, height, txs) == ACCEPT
        updates = finalize(app, height, txs).validator_updates
        assert [(u.pub_key.ed25519, u.power) for u in updates] == [(expected, 10)]
        finalize(other, height, txs)
    assert decode_sync(txs[0]).block_number == both.block_number
    assert propose_after_poll(app, watcher, 4) == []


def propose_after_poll(app: ClusterApp, watcher: EthereumWatcher, height: int) -> list[bytes]:
    """What the proposer offers once its watcher has polled after seeing the cluster's set
    (the step back to a block with one new member is found in the watcher's thread)."""
    txs = propose(app, height)
    if not txs:
        watcher.poll_once()
        txs = propose(app, height)
    return txs


def app_validators(app: ClusterApp) -> set[bytes]:
    return set(Membership.from_json(orjson.loads(app.query(abci_pb.RequestQuery(path="/membership")).value)).validators)


def test_step_toward_finds_a_block_with_one_new_member() -> None:
    current = Membership(10, b"h" * 32, {KEYS[0]: 10, KEYS[1]: 10})
    new = [b"\xc1" * 32, b"\xc2" * 32, b"\xc3" * 32]
    joined = {13: new[0], 17: new[1], 18: new[2]}  # one join per Ethereum block, as the Registry allows
    asked: list[int] = []

    def keys_at(block: int) -> tuple[bytes, ...]:
        asked.append(block)
        members = {KEYS[0], KEYS[1]} | {key for at, key in joined.items() if at <= block}
        if block >= 15:
            members.discard(KEYS[0])  # leaving does not count against the limit
        return tuple(sorted(members))

    step = step_toward(current, 40, keys_at)
    assert step is not None and 13 <= step < 17 and len(asked) <= 5
    after = Membership(step, b"i" * 32, dict.fromkeys(keys_at(step), 10))
    assert step_toward(after, 40, keys_at) == 17
    assert step_toward(current, 11, keys_at) is None  # nothing between the synced block and the next


def test_a_cluster_whose_members_are_all_gone_proposes_no_sync_and_keeps_producing_blocks(
        tmp_path: Path, anvil: Anvil) -> None:
    """A dispute that convicts every member ejects them all; a sync naming no members is refused
    by every node, so proposing one halted the convicted cluster (found on a cartel devnet)."""
    chain = Chain(anvil)  # its own Registry: the module's chain keeps its members
    watcher = EthereumWatcher(chain.url, chain.settings)
    app = make_app(tmp_path / "a", chain, watcher)
    for operator, node_id in zip(chain.operators, chain.node_ids):
        chain.registry.request_leave(operator, node_id)
    chain.mine(CONFIRMATIONS)
    watcher.poll_once()
    assert watcher.latest is not None and watcher.latest.members == ()
    assert propose(app, 1) == []
    assert finalize(app, 1, []).app_hash == app.store.root
