"""ContractCheck against a real anvil with the Registry deployed: who counts as a signer, and how many must sign.

Validator sets and signers are built from fresh ed25519 keys here (the check takes keys),
so no CometBFT cluster is needed; the end-to-end run is in test_lightclient_devnet.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from nacl.signing import SigningKey
from web3 import Web3

from rtc.cometbft.lightclient import VerificationError
from rtc.client.membership import ContractCheck, MembershipReport
from rtc.ethereum import Anvil
from rtc.ethereum.registry import Registry

ETHER = 10**18
COOLING_OFF = 50
ANVIL_PORT = 30510  # this file's ports: 30500-30599
DEAD_PORT = 30599  # nothing listens here


@pytest.fixture(scope="module")
def chain(anvil: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))



def verify_signers(contract: ContractCheck, validator_keys: list[bytes], signer_keys: list[bytes],
                   height: int | None = None) -> MembershipReport:
    """Read the contract, then judge: what the client's verify does with the evidence it fetched."""
    return contract.judge(contract.read(signer_keys), validator_keys, signer_keys, height)

@dataclass
class World:
    """A fresh Registry (so each test starts from no nodes) and its accounts."""

    chain: Web3
    registry: Registry
    owner: str
    accounts: list[str]

    def node(self, account: int, cluster_id: int | None, deposit: int = 10 * ETHER) -> tuple[bytes, int]:
        """Register a node with a new key for accounts[account]; the cluster's owner admits it to
        `cluster_id` unless None."""
        key = SigningKey.generate().verify_key.encode()
        operator = self.accounts[account]
        node_id = self.registry.register(operator, key, deposit)
        if cluster_id is not None:
            self.registry.request_join(operator, node_id, cluster_id)
            assert self.registry.approve_join(self.owner, node_id)
        return key, node_id

    def cluster(self, max_members: int = 16) -> int:
        return self.registry.create_cluster(self.owner, b"\x33" * 32, b"\x22" * 32, max_members)

    def mine(self, blocks: int) -> None:
        self.chain.provider.make_request("anvil_mine", [hex(blocks)])

    def send(self, sender: str, function: object) -> None:
        tx = function.transact({"from": sender})  # type: ignore[attr-defined]
        assert self.chain.eth.wait_for_transaction_receipt(tx)["status"] == 1


@pytest.fixture
def world(chain: Web3) -> World:
    owner, *accounts = chain.eth.accounts
    return World(chain, Registry.deploy(chain, owner, ETHER, COOLING_OFF), owner, accounts)


def stranger_key() -> bytes:
    return SigningKey.generate().verify_key.encode()


def address(key: bytes) -> str:
    return hashlib.sha256(key).digest()[:20].hex().upper()


async def test_all_signers_active_members_pass(world: World) -> None:
    cluster = world.cluster()
    nodes = [world.node(i, cluster) for i in range(4)]
    keys = [k for k, _ in nodes]
    report = verify_signers(ContractCheck(world.registry, cluster), keys, keys, height=7)
    assert isinstance(report, MembershipReport)
    assert (report.validator_set_size, report.active_members, report.needed) == (4, 4, 2)
    assert [(s.node_id, s.operator, s.deposit_wei, s.status, s.withdrawable_block, s.counted) for s in report.signers] == [
        (node_id, world.accounts[i], 10 * ETHER, "active", 0, True) for i, (_, node_id) in enumerate(nodes)
    ]
    assert report.signers[0].validator_address == address(keys[0])
    assert report.ethereum_block == world.chain.eth.block_number
    assert report.check_line() == (
        f"4 signers are active members of cluster {cluster} in Registry {world.registry.address} with deposits in "
        f"place (10.0 ETH each), more than 2/3 of the 4 active members (Ethereum block {report.ethereum_block}); "
        "no slasher is set in the Registry: nobody can slash these deposits"
    )
    assert report.not_counted == [] and report.to_json()["counted"] == 4


async def test_three_of_four_members_suffice_and_an_unregistered_signer_is_reported(world: World) -> None:
    cluster = world.cluster()
    members = [world.node(i, cluster)[0] for i in range(3)]
    stranger = stranger_key()
    report = verify_signers(ContractCheck(world.registry, cluster), members + [stranger], members + [stranger])
    assert len(report.counted) == 3 and report.needed == 2
    [outsider] = report.not_counted
    assert (outsider.validator_address, outsider.node_id, outsider.status) == (address(stranger), 0, "none")
    assert "no node registered" in outsider.reason
    assert "1 other signer was not counted" in report.check_line()
    assert report.to_json()["not_counted"][0]["validator_key"] == stranger.hex()


async def test_unregistered_signers_are_not_counted_and_too_few_is_refused(world: World) -> None:
    cluster = world.cluster()
    members = [world.node(i, cluster)[0] for i in range(2)]
    strangers = [stranger_key(), stranger_key()]
    keys = members + strangers
    with pytest.raises(VerificationError) as refused:
        verify_signers(ContractCheck(world.registry, cluster), keys, keys, height=12)
    assert refused.value.kind == "membership"
    message = str(refused.value)
    assert "only 2 of the 4 signers of header 12 are active members" in message
    assert "at least 3" in message and "no node registered this validator key" in message
    assert address(strangers[0]) in message and "ask another node" in message


async def test_signers_of_another_cluster_are_not_counted(world: World) -> None:
    ours, theirs = world.cluster(), world.cluster()
    members = [world.node(i, ours)[0] for i in range(2)]
    others = [world.node(2 + i, theirs) for i in range(2)]
    unjoined, unjoined_id = world.node(4, None)
    keys = members + [k for k, _ in others] + [unjoined]
    with pytest.raises(VerificationError, match=f"belongs to cluster {theirs}, not {ours}") as refused:
        verify_signers(ContractCheck(world.registry, ours), keys, keys)
    assert f"node {unjoined_id} never joined a cluster" in str(refused.value)
    # The same signers are fine for their own cluster only if enough of them are its members.
    with pytest.raises(VerificationError, match="only 2 of the 5 signers"):
        verify_signers(ContractCheck(world.registry, theirs), keys, keys)


async def test_a_withdrawn_signer_is_not_counted(world: World) -> None:
    cluster = world.cluster()
    nodes = [world.node(i, cluster) for i in range(4)]
    keys = [k for k, _ in nodes]
    gone_key, gone_id = nodes[3]
    world.registry.request_leave(world.accounts[3], gone_id)
    world.mine(COOLING_OFF)
    world.registry.withdraw(world.accounts[3], gone_id)
    assert world.registry.node(gone_id).status == "withdrawn"
    check = ContractCheck(world.registry, cluster)
    # The set still lists the four; one of the three remaining members did not sign.
    with pytest.raises(VerificationError) as refused:
        verify_signers(check, keys, [keys[0], keys[1], gone_key])
    assert refused.value.kind == "membership"
    assert f"node {gone_id} has withdrawn its deposit" in str(refused.value)
    assert "only 2 of the 3 signers" in str(refused.value)
    # All three remaining members signing is enough: more than 2/3 of 4.
    report = verify_signers(check, keys, keys)
    assert len(report.counted) == 3 and [s.node_id for s in report.not_counted] == [gone_id]
    assert report.not_counted[0].status == "withdrawn" and report.not_counted[0].deposit_wei == 0


async def test_a_leaving_node_no_longer_counts_while_the_set_catches_up(world: World) -> None:
    cluster = world.cluster()
    nodes = [world.node(i, cluster) for i in range(4)]
    keys = [k for k, _ in nodes]
    withdrawable = world.registry.request_leave(world.accounts[3], nodes[3][1])
    check = ContractCheck(world.registry, cluster)
    report = verify_signers(check, keys, keys)  # the set has not followed the contract yet
    assert (report.active_members, report.validator_set_size, len(report.counted)) == (3, 4, 3)
    leaving = report.not_counted[0]
    assert (leaving.node_id, leaving.status, leaving.withdrawable_block, leaving.deposit_wei, leaving.counted) == (
        nodes[3][1], "leaving", withdrawable, 10 * ETHER, False)
    assert "is leaving: it is no longer a member (it left at block" in leaving.reason
    assert f"in its cooling-off until block {withdrawable}" in leaving.reason
    line = report.check_line()
    assert "3 signers are active members" in line and "1 other signer was not counted" in line
    assert "more than 2/3 of the 4 validators in the header's set" in line
    # Without one of the remaining members the old set is short: the leaver cannot make up for it.
    with pytest.raises(VerificationError, match="only 2 of the 3 signers"):
        verify_signers(check, keys, [keys[0], keys[1], keys[3]])


async def test_an_ejected_node_does_not_count(world: World) -> None:
    cluster = world.cluster()
    nodes = [world.node(i, cluster, deposit=2 * ETHER) for i in range(4)]
    keys = [k for k, _ in nodes]
    world.send(world.owner, world.registry.contract.functions.set_slasher(world.owner))
    world.send(world.owner, world.registry.contract.functions.slash(nodes[0][1], 3 * ETHER // 2, "test"))
    report = verify_signers(ContractCheck(world.registry, cluster), keys, keys)
    ejected = report.not_counted[0]
    assert (ejected.status, ejected.deposit_wei, ejected.counted) == ("ejected", ETHER // 2, False)
    assert "is ejected: it is no longer a member (it was ejected at block" in ejected.reason
    assert len(report.counted) == 3 and f"slashable by {world.owner}" in report.check_line()


async def test_one_staked_member_with_a_fabricated_set_of_itself_is_refused(world: World) -> None:
    cluster = world.cluster()
    keys = [world.node(i, cluster)[0] for i in range(4)]
    check = ContractCheck(world.registry, cluster)
    # A perfect 1-of-1 commit as far as the served validator set goes.
    with pytest.raises(VerificationError) as refused:
        verify_signers(check, [keys[0]], [keys[0]], height=30)
    assert refused.value.kind == "membership"
    message = str(refused.value)
    assert "only 1 of the 1 signers of header 30 is an active member" in message
    assert "more than 2/3 of the 4 active members is needed, i.e. at least 3" in message
    assert "a set smaller than the cluster cannot stand for it" in message
    # Two colluding members with a set of themselves are still short of 3.
    with pytest.raises(VerificationError, match="at least 3"):
        verify_signers(check, keys[:2], keys[:2])


async def test_a_node_that_just_joined_raises_the_bar_until_the_set_follows(world: World) -> None:
    cluster = world.cluster()
    keys = [world.node(i, cluster)[0] for i in range(4)]
    world.node(4, cluster)  # joined in the contract; the validator set still has the old four
    check = ContractCheck(world.registry, cluster)
    report = verify_signers(check, keys, keys)
    assert report.basis == 5 and "more than 2/3 of the 5 active members" in report.check_line()
    with pytest.raises(VerificationError, match="at least 4"):
        verify_signers(check, keys, keys[:3])


async def test_wrong_cluster_id_says_so(world: World) -> None:
    cluster = world.cluster()
    keys = [world.node(i, cluster)[0] for i in range(4)]
    with pytest.raises(VerificationError, match="has no active members: is the cluster id right"):
        verify_signers(ContractCheck(world.registry, cluster + 1), keys, keys)


async def test_inconsistent_inputs_are_refused(world: World) -> None:
    cluster = world.cluster()
    keys = [world.node(i, cluster)[0] for i in range(3)]
    check = ContractCheck(world.registry, cluster)
    with pytest.raises(VerificationError) as refused:
        verify_signers(check, keys, keys + [stranger_key()])
    assert refused.value.kind == "unknown_validator"
    with pytest.raises(VerificationError) as refused:
        verify_signers(check, keys, [keys[0], keys[0], keys[1]])
    assert refused.value.kind == "duplicate_signature"


async def test_an_unreachable_endpoint_or_a_wrong_address_is_an_error_not_a_pass(world: World) -> None:
    keys = [stranger_key()]
    with pytest.raises(VerificationError) as refused:
        verify_signers(ContractCheck.connect(f"http://127.0.0.1:{DEAD_PORT}", world.registry.address, 1), keys, keys)
    assert refused.value.kind == "contract_unavailable" and "NOT verified" in str(refused.value)
    not_a_contract = Registry(world.chain, world.accounts[0])
    with pytest.raises(VerificationError) as refused:
        verify_signers(ContractCheck(not_a_contract, 1), keys, keys)
    assert refused.value.kind == "contract_unavailable"


async def test_nodes_by_keys_keeps_order_and_chunks_past_sixteen(world: World) -> None:
    cluster = world.cluster()
    nodes = [world.node(i, cluster) for i in range(3)]
    strangers = [stranger_key() for _ in range(15)]
    keys = [strangers[0], nodes[0][0], *strangers[1:8], nodes[1][0], *strangers[8:], nodes[2][0]]
    assert len(keys) == 18
    found = world.registry.nodes_by_keys(keys)
    assert len(found) == 18
    by_key = {k: node_id for k, node_id in nodes}
    assert [s.node_id if s else None for s in found] == [by_key.get(k) for k in keys]
    assert all(s.validator_key == k for s, k in zip(found, keys) if s is not None)
    assert world.registry.nodes_by_keys([]) == []
    with pytest.raises(ValueError, match="32 bytes"):
        world.registry.nodes_by_keys([b"\x01" * 31])


async def test_ex_members_in_cooling_off_cannot_vouch_for_a_forged_header(world: World) -> None:
    """Issue 12: three members leave (LEAVING, still inside their cooling-off) and sign a header
    whose validator set is just themselves; a leaving node is not a member, so it does not count."""
    cluster = world.cluster()
    nodes = [world.node(i, cluster) for i in range(4)]
    keys = [k for k, _ in nodes]
    for i in range(3):
        world.registry.request_leave(world.accounts[i], nodes[i][1])
    check = ContractCheck(world.registry, cluster)
    with pytest.raises(VerificationError) as refused:
        verify_signers(check, keys[:3], keys[:3], height=40)
    assert refused.value.kind == "membership"
    message = str(refused.value)
    assert "only 0 of the 3 signers of header 40" in message
    assert f"node {nodes[0][1]} is leaving: it is no longer a member" in message


async def test_the_check_names_who_can_slash(world: World) -> None:
    cluster = world.cluster()
    keys = [world.node(i, cluster)[0] for i in range(4)]
    check = ContractCheck(world.registry, cluster)
    report = verify_signers(check, keys, keys)
    assert report.slasher is None
    assert "no slasher is set in the Registry: nobody can slash these deposits" in report.check_line()
    assert "nobody can slash" in check.assumption(report.slasher)
    world.send(world.owner, world.registry.contract.functions.set_slasher(world.accounts[9]))
    report = verify_signers(check, keys, keys)
    assert report.slasher == world.accounts[9] and report.to_json()["slasher"] == world.accounts[9]
    assert f"slashable by {world.accounts[9]}" in report.check_line()
    assert world.accounts[9] in check.assumption(report.slasher)
