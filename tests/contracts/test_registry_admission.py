"""Admission to a cluster: a node asks, and the cluster's owner or more than 2/3 of its members'
operators approve; at most one node is admitted per cluster per Ethereum block; requests can
be cancelled by their operator or refused by the owner; cluster ownership moves or is renounced."""

from __future__ import annotations

import hashlib

import pytest

from .helpers import MIN_DEPOSIT, ZERO_ADDRESS, block, events, key, refused, set_block

REFERENCE = hashlib.sha256(b"swarm reference of sum.wasm").digest()
CODE_HASH = hashlib.sha256(b"sum.wasm").digest()
CANCELLED_BY_OPERATOR, REFUSED_BY_OWNER, ENDED_BY_LEAVING = 1, 2, 3
NOT_AN_APPROVER = "caller is neither the cluster's owner nor the operator of one of its members"


def register(registry, accounts, n: int) -> int:
    return registry.register(key(n), value=MIN_DEPOSIT, sender=accounts.operators[n - 1])


def operator(accounts, n: int) -> str:
    return accounts.operators[n - 1]


def admit(registry, accounts, n: int, cluster_id: int) -> None:
    """Node n asks, and the cluster's owner approves it in the next block."""
    registry.request_join(n, cluster_id, sender=operator(accounts, n))
    set_block(block() + 1)
    assert registry.approve_join(n, sender=registry.cluster(cluster_id).owner)


@pytest.fixture
def cluster(registry, accounts) -> int:
    """A cluster owned by accounts.owner with members 1, 2, 3 and 4; 5 to 8 are registered."""
    cluster_id = registry.create_cluster(REFERENCE, CODE_HASH, 8, sender=accounts.owner)
    for n in range(1, 9):
        register(registry, accounts, n)
    for n in range(1, 5):
        admit(registry, accounts, n, cluster_id)
    set_block(block() + 1)
    return cluster_id


def test_funded_strangers_cannot_make_themselves_members(registry, accounts) -> None:
    """Issue 12: two registrations with keys nobody runs joined on their own and halted the cluster."""
    cluster = registry.create_cluster(REFERENCE, CODE_HASH, 8, sender=accounts.owner)
    for n in (1, 2):
        register(registry, accounts, n)
        try:
            ask = registry.request_join
        except AttributeError:  # the Registry before admission control: joining was open
            ask = registry.join_cluster
        ask(n, cluster, sender=operator(accounts, n))
        set_block(block() + 1)
    assert registry.members(cluster) == []
    assert not hasattr(registry, "join_cluster")
    for n in (1, 2):
        with refused(NOT_AN_APPROVER):
            registry.approve_join(n, sender=operator(accounts, n))
        with refused(NOT_AN_APPROVER):
            registry.approve_join(3 - n, sender=operator(accounts, n))  # nor each other
    assert registry.members(cluster) == []


def test_the_owner_approves_a_request(registry, accounts, cluster) -> None:
    set_block(50)
    registry.request_join(5, cluster, sender=operator(accounts, 5))
    assert events(registry) == [("JoinRequested", {
        "cluster_id": cluster, "node_id": 5, "operator": operator(accounts, 5), "validator_key": key(5)})]
    request = registry.join_request(5)
    assert (request.cluster_id, request.requested_block, request.approvals) == (cluster, 50, [])
    assert registry.members(cluster) == [1, 2, 3, 4] and registry.node(5).cluster_id == 0
    set_block(51)
    assert registry.approve_join(5, sender=accounts.owner) is True
    assert events(registry) == [
        ("JoinApproved", {"cluster_id": cluster, "node_id": 5, "approver": accounts.owner, "by_owner": True,
                          "approvals": 0, "needed": 3}),
        ("NodeJoined", {"cluster_id": cluster, "node_id": 5, "validator_key": key(5)}),
    ]
    assert registry.members(cluster) == [1, 2, 3, 4, 5]
    assert (registry.node(5).cluster_id, registry.node(5).member_since) == (cluster, 51)
    assert registry.join_request(5).cluster_id == 0
    with refused("no pending join request for this node"):
        registry.approve_join(5, sender=accounts.owner)


def test_more_than_two_thirds_of_the_members_operators_admit(registry, accounts, cluster) -> None:
    registry.request_join(5, cluster, sender=operator(accounts, 5))
    assert registry.approvals_needed(cluster) == 3  # more than 2/3 of 4
    for voter, count in ((2, 1), (4, 2)):
        assert registry.approve_join(5, sender=operator(accounts, voter)) is False
        assert events(registry) == [("JoinApproved", {
            "cluster_id": cluster, "node_id": 5, "approver": operator(accounts, voter), "by_owner": False,
            "approvals": count, "needed": 3})]
    assert registry.join_request(5).approvals == [2, 4]
    assert registry.members(cluster) == [1, 2, 3, 4]
    with refused("already approved (2 of the 3 approvals needed so far)"):
        registry.approve_join(5, sender=operator(accounts, 2))
    assert registry.approve_join(5, sender=operator(accounts, 1)) is True
    assert [name for name, _ in events(registry)] == ["JoinApproved", "NodeJoined"]
    assert registry.members(cluster) == [1, 2, 3, 4, 5]
    assert registry.approvals_needed(cluster) == 4  # more than 2/3 of 5


def test_approvals_of_members_that_left_no_longer_count(registry, accounts, cluster) -> None:
    registry.request_join(5, cluster, sender=operator(accounts, 5))
    registry.approve_join(5, sender=operator(accounts, 1))
    registry.approve_join(5, sender=operator(accounts, 2))
    registry.request_leave(1, sender=operator(accounts, 1))
    registry.request_leave(2, sender=operator(accounts, 2))
    assert registry.join_request(5).approvals == []  # members 3 and 4 are left: 2 of them are needed
    assert registry.approvals_needed(cluster) == 2
    assert registry.approve_join(5, sender=operator(accounts, 3)) is False
    with refused(NOT_AN_APPROVER):
        registry.approve_join(5, sender=operator(accounts, 1))  # no longer a member
    assert registry.approve_join(5, sender=operator(accounts, 4)) is True
    assert registry.members(cluster) == [3, 4, 5]


def test_a_member_that_approved_completes_the_admission_once_enough_approvals_count(registry, accounts,
                                                                                    cluster) -> None:
    registry.request_join(5, cluster, sender=operator(accounts, 5))
    for voter in (1, 2):
        registry.approve_join(5, sender=operator(accounts, voter))
    registry.request_leave(4, sender=operator(accounts, 4))
    assert registry.approvals_needed(cluster) == 3  # more than 2/3 of 3
    registry.request_leave(3, sender=operator(accounts, 3))  # 2 members left, and both approved
    assert registry.approve_join(5, sender=operator(accounts, 2)) is True
    assert registry.members(cluster) == [1, 2, 5]


def test_who_may_not_approve(registry, accounts, cluster) -> None:
    other = registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.stranger)
    admit(registry, accounts, 6, other)  # a member of another cluster
    registry.request_join(5, cluster, sender=operator(accounts, 5))
    registry.request_join(7, cluster, sender=operator(accounts, 7))
    for who in (accounts.stranger, operator(accounts, 5), operator(accounts, 6), operator(accounts, 7),
                operator(accounts, 9), accounts.slasher):
        with refused(NOT_AN_APPROVER):
            registry.approve_join(5, sender=who)
    with refused("no pending join request for this node"):
        registry.approve_join(8, sender=accounts.owner)
    assert registry.members(cluster) == [1, 2, 3, 4]


def test_at_most_one_node_is_admitted_per_cluster_per_ethereum_block(registry, accounts, cluster) -> None:
    other = registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.stranger)
    for n in (5, 6):
        registry.request_join(n, cluster, sender=operator(accounts, n))
    registry.request_join(7, other, sender=operator(accounts, 7))
    set_block(70)
    registry.approve_join(5, sender=accounts.owner)
    with refused("the cluster admitted a node in this Ethereum block already: approve again in the next block"):
        registry.approve_join(6, sender=accounts.owner)
    registry.approve_join(7, sender=accounts.stranger)  # another cluster, same block: fine
    for voter in (1, 2, 3):  # the members' way is limited the same: 4 of the 5 members admit
        assert registry.approve_join(6, sender=operator(accounts, voter)) is False
    with refused("the cluster admitted a node in this Ethereum block already: approve again in the next block"):
        registry.approve_join(6, sender=operator(accounts, 4))
    set_block(71)
    assert registry.approve_join(6, sender=operator(accounts, 4)) is True
    assert [registry.node(n).member_since for n in (5, 6, 7)] == [70, 71, 70]
    assert registry.members_at(cluster, 70) == [1, 2, 3, 4, 5]


def test_the_operator_cancels_or_the_owner_refuses(registry, accounts, cluster) -> None:
    registry.request_join(5, cluster, sender=operator(accounts, 5))
    registry.approve_join(5, sender=operator(accounts, 1))
    for who in (accounts.stranger, operator(accounts, 1), operator(accounts, 6)):
        with refused("caller is neither the node's operator nor the cluster's owner"):
            registry.cancel_join(5, sender=who)
    registry.cancel_join(5, sender=operator(accounts, 5))
    assert events(registry) == [("JoinCancelled", {"cluster_id": cluster, "node_id": 5,
                                                   "by": operator(accounts, 5), "reason": CANCELLED_BY_OPERATOR})]
    assert registry.join_request(5).cluster_id == 0
    with refused("no pending join request for this node"):
        registry.cancel_join(5, sender=operator(accounts, 5))
    with refused("no pending join request for this node"):
        registry.approve_join(5, sender=accounts.owner)
    registry.request_join(5, cluster, sender=operator(accounts, 5))  # asking again starts from no approvals
    assert registry.join_request(5).approvals == []
    registry.cancel_join(5, sender=accounts.owner)
    assert events(registry)[0][1]["reason"] == REFUSED_BY_OWNER
    assert registry.members(cluster) == [1, 2, 3, 4]


def test_request_refusals(slashable, accounts) -> None:
    registry = slashable
    cluster = registry.create_cluster(REFERENCE, CODE_HASH, 1, sender=accounts.owner)
    for n in (1, 2, 3, 4):
        register(registry, accounts, n)
    with refused("caller is not the node's operator"):
        registry.request_join(1, cluster, sender=operator(accounts, 2))
    with refused("no such node"):
        registry.request_join(9, cluster, sender=operator(accounts, 1))
    for cluster_id in (0, cluster + 1):
        with refused("no such cluster"):
            registry.request_join(1, cluster_id, sender=operator(accounts, 1))
    registry.request_join(1, cluster, sender=operator(accounts, 1))
    with refused("node already requested to join a cluster"):
        registry.request_join(1, cluster, sender=operator(accounts, 1))
    registry.request_join(2, cluster, sender=operator(accounts, 2))  # two may wait for one seat
    set_block(block() + 1)
    registry.approve_join(1, sender=accounts.owner)
    set_block(block() + 1)
    with refused("cluster is full"):
        registry.approve_join(2, sender=accounts.owner)
    with refused("cluster is full"):
        registry.request_join(3, cluster, sender=operator(accounts, 3))
    with refused("node already joined a cluster"):
        registry.request_join(1, cluster, sender=operator(accounts, 1))
    registry.request_leave(4, sender=operator(accounts, 4))
    with refused("node is not active"):
        registry.request_join(4, cluster, sender=operator(accounts, 4))
    registry.slash(3, MIN_DEPOSIT, "eject", sender=accounts.slasher)
    with refused("node is not active"):
        registry.request_join(3, cluster, sender=operator(accounts, 3))


def test_leaving_or_ejection_ends_a_pending_request(slashable, accounts) -> None:
    registry = slashable
    cluster = registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.owner)
    for n in (1, 2):
        register(registry, accounts, n)
        registry.request_join(n, cluster, sender=operator(accounts, n))
    registry.request_leave(1, sender=operator(accounts, 1))
    assert [(name, fields.get("reason")) for name, fields in events(registry)] == [
        ("JoinCancelled", ENDED_BY_LEAVING), ("LeaveRequested", None)]
    registry.slash(2, MIN_DEPOSIT, "eject", sender=accounts.slasher)
    assert [name for name, _ in events(registry)] == ["Slashed", "JoinCancelled", "NodeEjected"]
    for n in (1, 2):
        assert registry.join_request(n).cluster_id == 0
        with refused("no pending join request for this node"):
            registry.approve_join(n, sender=accounts.owner)
    assert registry.members(cluster) == []


def test_cluster_ownership_moves_and_can_be_renounced(registry, accounts, cluster) -> None:
    assert registry.cluster(cluster).owner == accounts.owner == registry.cluster(cluster).creator
    with refused("caller is not the cluster's owner"):
        registry.transfer_cluster_ownership(cluster, accounts.stranger, sender=accounts.stranger)
    with refused("no such cluster"):
        registry.transfer_cluster_ownership(cluster + 1, accounts.stranger, sender=accounts.owner)
    registry.transfer_cluster_ownership(cluster, accounts.stranger, sender=accounts.owner)
    assert events(registry) == [("ClusterOwnershipTransferred", {
        "cluster_id": cluster, "previous_owner": accounts.owner, "new_owner": accounts.stranger})]
    registry.request_join(5, cluster, sender=operator(accounts, 5))
    with refused(NOT_AN_APPROVER):
        registry.approve_join(5, sender=accounts.owner)
    registry.transfer_cluster_ownership(cluster, ZERO_ADDRESS, sender=accounts.stranger)  # renounced
    assert registry.cluster(cluster).owner == ZERO_ADDRESS
    assert registry.cluster(cluster).creator == accounts.owner
    with refused(NOT_AN_APPROVER):
        registry.approve_join(5, sender=accounts.stranger)
    with refused("caller is not the cluster's owner"):
        registry.transfer_cluster_ownership(cluster, accounts.stranger, sender=accounts.stranger)
    for voter in (1, 2, 3):  # only the members admit now
        registry.approve_join(5, sender=operator(accounts, voter))
    assert registry.members(cluster) == [1, 2, 3, 4, 5]

