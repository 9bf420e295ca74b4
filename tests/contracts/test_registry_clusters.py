"""Clusters: creation, joining (admission itself: test_registry_admission.py), membership lists
after joins and leaves, membership at a given block, and a follower that rebuilds membership
from events alone."""

from __future__ import annotations

import hashlib

import pytest

from .helpers import (
    COOLING_OFF,
    LEFT_BY_EJECTION,
    LEFT_BY_LEAVE,
    MIN_DEPOSIT,
    ZERO_ADDRESS,
    block,
    events,
    key,
    refused,
    set_block,
)

REFERENCE = hashlib.sha256(b"swarm reference of sum.wasm").digest()
CODE_HASH = hashlib.sha256(b"sum.wasm").digest()


def register(registry, accounts, n: int) -> int:
    return registry.register(key(n), value=MIN_DEPOSIT, sender=accounts.operators[n - 1])


def join(registry, accounts, n: int, cluster_id: int) -> None:
    """Node n asks and the cluster's owner admits it: in this block, or in the next if the
    cluster admitted a node in this one already (one admission per cluster per block)."""
    registry.request_join(n, cluster_id, sender=accounts.operators[n - 1])
    history = registry.cluster_history(cluster_id)
    if history and registry.node(history[-1]).member_since == block():
        set_block(block() + 1)
    assert registry.approve_join(n, sender=registry.cluster(cluster_id).owner)


def leave(registry, accounts, n: int) -> None:
    registry.request_leave(n, sender=accounts.operators[n - 1])


@pytest.fixture
def cluster(registry, accounts) -> int:
    return registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.stranger)


# --- creation -----------------------------------------------------------------------------


def test_anyone_can_create_a_cluster(registry, accounts) -> None:
    set_block(42)
    assert registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.stranger) == 1
    assert events(registry) == [("ClusterCreated", {
        "cluster_id": 1, "creator": accounts.stranger, "code_hash": CODE_HASH, "code_reference": REFERENCE,
        "max_members": 4})]
    info = registry.cluster(1)
    assert (str(info.creator), info.code_hash, info.code_reference, info.max_members, info.created_block,
            info.members, str(info.owner)) == (accounts.stranger, CODE_HASH, REFERENCE, 4, 42, [], accounts.stranger)
    assert registry.cluster_count() == 1
    assert registry.create_cluster(REFERENCE, CODE_HASH, 16, sender=accounts.operators[0]) == 2
    assert registry.cluster(2).max_members == 16
    assert registry.cluster_count() == 2


def test_a_64_byte_encrypted_reference_is_accepted(registry, accounts) -> None:
    reference = REFERENCE + hashlib.sha256(b"decryption key").digest()
    cluster_id = registry.create_cluster(reference, CODE_HASH, 1, sender=accounts.owner)
    assert registry.cluster(cluster_id).code_reference == reference


@pytest.mark.parametrize(("reference", "code_hash", "max_members", "reason"), [
    (b"", CODE_HASH, 4, "code reference must be 32 or 64 bytes"),
    (REFERENCE[:31], CODE_HASH, 4, "code reference must be 32 or 64 bytes"),
    (REFERENCE + b"\x01", CODE_HASH, 4, "code reference must be 32 or 64 bytes"),
    (REFERENCE, b"\x00" * 32, 4, "code hash is zero"),
    (REFERENCE, CODE_HASH, 0, "max members must be 1 to 16"),
    (REFERENCE, CODE_HASH, 17, "max members must be 1 to 16"),
    (REFERENCE, CODE_HASH, 2**256 - 1, "max members must be 1 to 16"),
])
def test_create_cluster_refusals(registry, accounts, reference, code_hash, max_members, reason) -> None:
    with refused(reason):
        registry.create_cluster(reference, code_hash, max_members, sender=accounts.stranger)
    assert registry.cluster_count() == 0


def test_unknown_cluster_view_is_all_zero(registry) -> None:
    info = registry.cluster(3)
    assert (str(info.creator), info.code_hash, info.code_reference, info.max_members, info.created_block,
            info.members, str(info.owner)) == (ZERO_ADDRESS, b"\x00" * 32, b"", 0, 0, [], ZERO_ADDRESS)
    assert registry.members(3) == []
    assert registry.member_keys(3) == []
    assert registry.cluster_history(3) == []


# --- joining ------------------------------------------------------------------------------


def test_an_admitted_node_joins_a_cluster(registry, accounts, cluster) -> None:
    register(registry, accounts, 1)
    set_block(60)
    join(registry, accounts, 1, cluster)
    assert events(registry) == [
        ("JoinApproved", {"cluster_id": cluster, "node_id": 1, "approver": accounts.stranger, "by_owner": True,
                          "approvals": 0, "needed": 1}),
        ("NodeJoined", {"cluster_id": cluster, "node_id": 1, "validator_key": key(1)}),
    ]
    node = registry.node(1)
    assert (node.cluster_id, node.member_since, node.member_until) == (cluster, 60, 0)
    assert registry.members(cluster) == [1]
    assert registry.member_keys(cluster) == [key(1)]
    assert registry.cluster(cluster).members == [1]
    assert registry.cluster_history(cluster) == [1]
    assert registry.is_active_member(1, cluster)
    assert not registry.is_active_member(1, 0)
    assert not registry.is_active_member(1, cluster + 1)
    assert not registry.is_active_member(2, cluster)


def test_stranger_cannot_ask_for_another_node(registry, accounts, cluster) -> None:
    register(registry, accounts, 1)
    register(registry, accounts, 2)
    for who in (accounts.stranger, accounts.operators[1], accounts.owner):
        with refused("caller is not the node's operator"):
            registry.request_join(1, cluster, sender=who)
    assert registry.members(cluster) == [] and registry.join_request(1).cluster_id == 0


def test_a_node_joins_at_most_one_cluster_in_its_life(registry, accounts, cluster) -> None:
    other = registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.stranger)
    register(registry, accounts, 1)
    join(registry, accounts, 1, cluster)
    for cluster_id in (cluster, other):
        with refused("node already joined a cluster"):
            registry.request_join(1, cluster_id, sender=accounts.operators[0])
    assert registry.members(cluster) == [1]
    assert registry.members(other) == []


def test_leaving_ejected_and_withdrawn_nodes_cannot_join(slashable, accounts) -> None:
    registry = slashable
    cluster = registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.stranger)
    for n in (1, 2):
        register(registry, accounts, n)
    leave(registry, accounts, 1)
    with refused("node is not active"):
        registry.request_join(1, cluster, sender=accounts.operators[0])
    registry.slash(2, 1, "eject", sender=accounts.slasher)
    with refused("node is not active"):
        registry.request_join(2, cluster, sender=accounts.operators[1])
    set_block(block() + COOLING_OFF)
    registry.withdraw(1, sender=accounts.operators[0])
    with refused("node is not active"):
        registry.request_join(1, cluster, sender=accounts.operators[0])
    assert registry.members(cluster) == []


def test_a_full_cluster_refuses_members_until_one_leaves(registry, accounts) -> None:
    cluster = registry.create_cluster(REFERENCE, CODE_HASH, 16, sender=accounts.stranger)
    for n in range(1, 18):
        register(registry, accounts, n)
    for n in range(1, 17):
        join(registry, accounts, n, cluster)
    assert registry.members(cluster) == list(range(1, 17))
    with refused("cluster is full"):
        registry.request_join(17, cluster, sender=accounts.operators[16])
    leave(registry, accounts, 5)
    join(registry, accounts, 17, cluster)
    assert registry.members(cluster) == [n for n in range(1, 18) if n != 5]
    assert registry.cluster_history(cluster) == list(range(1, 18))


def test_a_small_cluster_is_full_at_its_own_maximum(registry, accounts) -> None:
    cluster = registry.create_cluster(REFERENCE, CODE_HASH, 2, sender=accounts.stranger)
    for n in (1, 2, 3):
        register(registry, accounts, n)
    join(registry, accounts, 1, cluster)
    join(registry, accounts, 2, cluster)
    with refused("cluster is full"):
        registry.request_join(3, cluster, sender=accounts.operators[2])


# --- membership lists ---------------------------------------------------------------------


def test_member_list_after_joins_and_leaves_keeps_joining_order(registry, accounts, cluster) -> None:
    for n in (1, 2, 3, 4):
        register(registry, accounts, n)
    for n in (3, 1, 4, 2):
        join(registry, accounts, n, cluster)
    assert registry.members(cluster) == [3, 1, 4, 2]
    set_block(block() + 1)
    assert block() <= 90
    set_block(90)
    leave(registry, accounts, 1)
    assert events(registry) == [
        ("NodeLeft", {"cluster_id": cluster, "node_id": 1, "validator_key": key(1), "reason": LEFT_BY_LEAVE}),
        ("LeaveRequested", {"node_id": 1, "operator": accounts.operators[0], "leave_block": 90,
                            "withdrawable_block": 90 + COOLING_OFF}),
    ]
    assert registry.members(cluster) == [3, 4, 2]
    assert registry.member_keys(cluster) == [key(3), key(4), key(2)]
    leave(registry, accounts, 2)
    assert registry.members(cluster) == [3, 4]
    leave(registry, accounts, 3)
    leave(registry, accounts, 4)
    assert registry.members(cluster) == []
    assert registry.cluster_history(cluster) == [3, 1, 4, 2]
    assert registry.node(1).member_until == 90
    assert [registry.is_active_member(n, cluster) for n in (1, 2, 3, 4)] == [False] * 4


def test_leaving_without_a_cluster_emits_no_node_left(registry, accounts) -> None:
    register(registry, accounts, 1)
    leave(registry, accounts, 1)
    assert [name for name, _ in events(registry)] == ["LeaveRequested"]
    assert registry.node(1).member_until == 0


# --- membership at a block ----------------------------------------------------------------


def scenario(registry, accounts) -> int:
    """Block 10: 1 joins; 11: 2 joins; 20: 3 joins; 30: 2 leaves; 40: 1 is ejected; 50: 4 joins."""
    cluster = registry.create_cluster(REFERENCE, CODE_HASH, 4, sender=accounts.stranger)
    for n in (1, 2, 3, 4):
        register(registry, accounts, n)
    set_block(10)
    join(registry, accounts, 1, cluster)
    join(registry, accounts, 2, cluster)  # in block 11
    set_block(20)
    join(registry, accounts, 3, cluster)
    set_block(30)
    leave(registry, accounts, 2)
    set_block(40)
    registry.slash(1, MIN_DEPOSIT, "eject", sender=accounts.slasher)
    set_block(50)
    join(registry, accounts, 4, cluster)
    set_block(60)
    return cluster


EXPECTED_AT = {9: [], 10: [1], 11: [1, 2], 19: [1, 2], 20: [1, 2, 3], 29: [1, 2, 3], 30: [1, 3], 39: [1, 3],
               40: [3], 49: [3], 50: [3, 4], 60: [3, 4]}


def test_members_at_a_block(slashable, accounts) -> None:
    cluster = scenario(slashable, accounts)
    for at, expected in EXPECTED_AT.items():
        assert slashable.members_at(cluster, at) == expected, at
        assert slashable.member_keys_at(cluster, at) == [key(n) for n in expected], at
        for n in (1, 2, 3, 4):
            assert slashable.is_member_at(n, cluster, at) == (n in expected), (n, at)
    assert slashable.members(cluster) == EXPECTED_AT[60]
    assert not slashable.is_member_at(3, cluster + 1, 60)
    assert not slashable.is_member_at(3, 0, 60)
    assert slashable.members_at(cluster + 1, 60) == []


def test_membership_at_a_future_block_is_refused(slashable, accounts) -> None:
    cluster = scenario(slashable, accounts)
    assert block() == 60
    with refused("block is in the future"):
        slashable.members_at(cluster, 61)
    with refused("block is in the future"):
        slashable.member_keys_at(cluster, 61)
    with refused("block is in the future"):
        slashable.is_member_at(3, cluster, 61)


def test_joining_and_leaving_in_one_block_is_no_membership_at_that_block(registry, accounts, cluster) -> None:
    register(registry, accounts, 1)
    set_block(15)
    join(registry, accounts, 1, cluster)
    leave(registry, accounts, 1)
    node = registry.node(1)
    assert (node.member_since, node.member_until) == (15, 15)
    assert registry.members_at(cluster, 15) == []
    assert not registry.is_member_at(1, cluster, 15)
    assert registry.cluster_history(cluster) == [1]


def test_a_follower_rebuilds_membership_from_events(slashable, accounts) -> None:
    """Replaying NodeJoined/NodeLeft in log order up to block B gives members_at(B)."""
    registry = slashable
    log: list[tuple[int, str, dict]] = []

    def tx(fn, *args, **kwargs):
        result = fn(*args, **kwargs)
        log.extend((block(), name, fields) for name, fields in events(registry))
        return result

    cluster = tx(registry.create_cluster, REFERENCE, CODE_HASH, 4, sender=accounts.stranger)
    for n in range(1, 8):
        tx(registry.register, key(n), value=MIN_DEPOSIT, sender=accounts.operators[n - 1])
    steps = [(5, "join", 1), (6, "join", 2), (7, "join", 3), (7, "leave", 1), (8, "join", 4), (9, "slash", 3),
             (9, "join", 5), (10, "leave", 4), (10, "join", 6), (12, "leave", 2), (12, "join", 7)]
    for at, action, n in steps:
        set_block(at)
        if action == "join":
            tx(registry.request_join, n, cluster, sender=accounts.operators[n - 1])
            tx(registry.approve_join, n, sender=accounts.stranger)
        elif action == "leave":
            tx(registry.request_leave, n, sender=accounts.operators[n - 1])
        else:
            tx(registry.slash, n, MIN_DEPOSIT, "eject", sender=accounts.slasher)

    reasons = [fields["reason"] for _, name, fields in log if name == "NodeLeft"]
    assert reasons == [LEFT_BY_LEAVE, LEFT_BY_EJECTION, LEFT_BY_LEAVE, LEFT_BY_LEAVE]
    for at in range(0, block() + 1):
        members: list[int] = []
        for logged_at, name, fields in log:
            if logged_at > at or fields.get("cluster_id") != cluster:
                continue
            if name == "NodeJoined":
                members.append(fields["node_id"])
            elif name == "NodeLeft":
                members.remove(fields["node_id"])
        assert registry.members_at(cluster, at) == members, at
    assert registry.members(cluster) == [5, 6, 7]
