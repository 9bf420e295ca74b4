"""Node registry: registration, top-up, leaving, cooling-off and withdrawal, and every refusal."""

from __future__ import annotations

import boa
import pytest

from .helpers import (
    ACTIVE,
    COOLING_OFF,
    ETHER,
    LEAVING,
    MIN_DEPOSIT,
    NONE,
    WITHDRAWN,
    ZERO_ADDRESS,
    block,
    events,
    key,
    refused,
    set_block,
)


def node_tuple(node) -> tuple:
    return (str(node.operator), node.validator_key, node.deposit, node.status, node.cluster_id,
            node.registered_block, node.member_since, node.member_until, node.leave_block,
            node.withdrawable_block)


# --- construction -------------------------------------------------------------------------


def test_constructor_sets_parameters_owner_and_empty_roles(registry_deployer, accounts) -> None:
    registry = registry_deployer.deploy(MIN_DEPOSIT, COOLING_OFF, sender=accounts.owner)
    assert events(registry) == [
        ("OwnershipTransferred", {"previous_owner": ZERO_ADDRESS, "new_owner": accounts.owner})]
    assert registry.min_deposit() == MIN_DEPOSIT
    assert registry.cooling_off_blocks() == COOLING_OFF
    assert registry.owner() == accounts.owner
    assert registry.slasher() == ZERO_ADDRESS
    assert registry.beneficiary() == ZERO_ADDRESS
    assert (registry.node_count(), registry.cluster_count()) == (0, 0)
    assert (registry.total_deposits(), registry.pending_slashed(), registry.total_burned()) == (0, 0, 0)


def test_constants_are_exposed(registry) -> None:
    assert [registry.STATUS_NONE(), registry.STATUS_ACTIVE(), registry.STATUS_LEAVING(),
            registry.STATUS_EJECTED(), registry.STATUS_WITHDRAWN()] == [0, 1, 2, 3, 4]
    assert (registry.LEFT_BY_LEAVE(), registry.LEFT_BY_EJECTION()) == (1, 2)
    assert (registry.MAX_MEMBERS(), registry.MAX_CLUSTER_HISTORY()) == (16, 1024)


@pytest.mark.parametrize(("min_deposit", "cooling_off", "reason"), [
    (0, COOLING_OFF, "minimum deposit is zero"),
    (MIN_DEPOSIT, 0, "cooling-off period is zero"),
    (MIN_DEPOSIT, 2**64 + 1, "cooling-off period is too long"),
])
def test_constructor_refuses_bad_parameters(registry_deployer, min_deposit, cooling_off, reason) -> None:
    with refused(reason):
        registry_deployer.deploy(min_deposit, cooling_off)


def test_constructor_accepts_longest_cooling_off(registry_deployer) -> None:
    assert registry_deployer.deploy(1, 2**64).cooling_off_blocks() == 2**64


# --- register -----------------------------------------------------------------------------


def test_register_records_the_node_and_emits_an_event(registry, accounts) -> None:
    op = accounts.operators[0]
    set_block(50)
    balance = boa.env.get_balance(op)
    node_id = registry.register(key(1), value=MIN_DEPOSIT + 5, sender=op)
    assert node_id == 1
    assert events(registry) == [("NodeRegistered", {
        "node_id": 1, "operator": op, "validator_key": key(1), "deposit": MIN_DEPOSIT + 5})]
    assert node_tuple(registry.node(1)) == (op, key(1), MIN_DEPOSIT + 5, ACTIVE, 0, 50, 0, 0, 0, 0)
    assert registry.node_of_operator(op) == 1
    assert registry.node_of_key(key(1)) == 1
    assert registry.node_count() == 1
    assert registry.total_deposits() == MIN_DEPOSIT + 5
    assert boa.env.get_balance(registry.address) == MIN_DEPOSIT + 5
    assert boa.env.get_balance(op) == balance - MIN_DEPOSIT - 5


def test_register_numbers_nodes_in_order(registry, accounts) -> None:
    ids = [registry.register(key(i + 1), value=MIN_DEPOSIT, sender=op)
           for i, op in enumerate(accounts.operators[:3])]
    assert ids == [1, 2, 3]
    assert registry.node_count() == 3
    assert registry.total_deposits() == 3 * MIN_DEPOSIT
    assert [registry.node_of_key(key(i)) for i in (1, 2, 3, 4)] == [1, 2, 3, 0]


def test_register_accepts_exactly_the_minimum(registry, accounts) -> None:
    registry.register(key(1), value=MIN_DEPOSIT, sender=accounts.operators[0])
    assert registry.node(1).deposit == MIN_DEPOSIT


@pytest.mark.parametrize("value", [0, 1, MIN_DEPOSIT - 1])
def test_register_refuses_a_deposit_below_the_minimum(registry, accounts, value) -> None:
    op = accounts.operators[0]
    with refused("deposit below minimum"):
        registry.register(key(1), value=value, sender=op)
    assert registry.node_count() == 0
    assert registry.node_of_operator(op) == 0
    assert boa.env.get_balance(registry.address) == 0


def test_register_refuses_a_zero_validator_key(registry, accounts) -> None:
    with refused("validator key is zero"):
        registry.register(b"\x00" * 32, value=MIN_DEPOSIT, sender=accounts.operators[0])


def test_register_refuses_a_second_node_for_the_same_operator(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    with refused("operator already has a node"):
        registry.register(key(2), value=MIN_DEPOSIT, sender=op)
    assert registry.node_count() == 1
    assert registry.node_of_key(key(2)) == 0


def test_register_refuses_a_validator_key_another_node_has(registry, accounts) -> None:
    registry.register(key(1), value=MIN_DEPOSIT, sender=accounts.operators[0])
    with refused("validator key already registered"):
        registry.register(key(1), value=MIN_DEPOSIT, sender=accounts.operators[1])
    assert registry.node_of_operator(accounts.operators[1]) == 0


def test_leaving_operator_cannot_register_another_node_until_withdrawn(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.request_leave(1, sender=op)
    with refused("operator already has a node"):
        registry.register(key(2), value=MIN_DEPOSIT, sender=op)
    set_block(block() + COOLING_OFF)
    registry.withdraw(1, sender=op)
    assert registry.register(key(2), value=MIN_DEPOSIT, sender=op) == 2
    assert registry.node_of_operator(op) == 2
    assert registry.node(1).status == WITHDRAWN
    assert registry.node(1).operator == op


def test_validator_key_is_never_reused_even_after_withdrawal(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.request_leave(1, sender=op)
    set_block(block() + COOLING_OFF)
    registry.withdraw(1, sender=op)
    for who in (op, accounts.operators[1]):
        with refused("validator key already registered"):
            registry.register(key(1), value=MIN_DEPOSIT, sender=who)
    assert registry.node_of_key(key(1)) == 1


# --- top up -------------------------------------------------------------------------------


def test_top_up_adds_to_the_deposit(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.top_up(1, value=3 * ETHER, sender=op)
    assert events(registry) == [("DepositAdded", {
        "node_id": 1, "operator": op, "amount": 3 * ETHER, "deposit": MIN_DEPOSIT + 3 * ETHER})]
    registry.top_up(1, value=7, sender=op)
    assert registry.node(1).deposit == MIN_DEPOSIT + 3 * ETHER + 7
    assert registry.node(1).status == ACTIVE
    assert registry.total_deposits() == MIN_DEPOSIT + 3 * ETHER + 7
    assert boa.env.get_balance(registry.address) == MIN_DEPOSIT + 3 * ETHER + 7


def test_top_up_refuses_zero(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    with refused("top-up amount is zero"):
        registry.top_up(1, value=0, sender=op)


def test_stranger_cannot_top_up_another_node(registry, accounts) -> None:
    registry.register(key(1), value=MIN_DEPOSIT, sender=accounts.operators[0])
    registry.register(key(2), value=MIN_DEPOSIT, sender=accounts.operators[1])
    for who in (accounts.stranger, accounts.operators[1], accounts.owner):
        with refused("caller is not the node's operator"):
            registry.top_up(1, value=ETHER, sender=who)
    assert registry.node(1).deposit == MIN_DEPOSIT
    assert registry.total_deposits() == 2 * MIN_DEPOSIT


@pytest.mark.parametrize("node_id", [0, 2, 2**256 - 1])
def test_top_up_refuses_an_unknown_node(registry, accounts, node_id) -> None:
    registry.register(key(1), value=MIN_DEPOSIT, sender=accounts.operators[0])
    with refused("no such node"):
        registry.top_up(node_id, value=ETHER, sender=accounts.operators[0])


def test_top_up_refuses_a_leaving_or_withdrawn_node(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.request_leave(1, sender=op)
    with refused("node is leaving"):
        registry.top_up(1, value=ETHER, sender=op)
    set_block(block() + COOLING_OFF)
    registry.withdraw(1, sender=op)
    with refused("node has withdrawn"):
        registry.top_up(1, value=ETHER, sender=op)


# --- request leave ------------------------------------------------------------------------


def test_request_leave_starts_the_cooling_off_period(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    set_block(1234)
    assert registry.request_leave(1, sender=op) == 1234 + COOLING_OFF
    assert events(registry) == [("LeaveRequested", {
        "node_id": 1, "operator": op, "leave_block": 1234, "withdrawable_block": 1234 + COOLING_OFF})]
    node = registry.node(1)
    assert (node.status, node.leave_block, node.withdrawable_block) == (LEAVING, 1234, 1234 + COOLING_OFF)
    assert node.deposit == MIN_DEPOSIT
    assert registry.total_deposits() == MIN_DEPOSIT
    assert registry.node_of_operator(op) == 1


def test_stranger_cannot_make_another_node_leave(registry, accounts) -> None:
    registry.register(key(1), value=MIN_DEPOSIT, sender=accounts.operators[0])
    registry.register(key(2), value=MIN_DEPOSIT, sender=accounts.operators[1])
    for who in (accounts.stranger, accounts.operators[1], accounts.owner):
        with refused("caller is not the node's operator"):
            registry.request_leave(1, sender=who)
    assert registry.node(1).status == ACTIVE


def test_request_leave_refuses_an_unknown_node(registry, accounts) -> None:
    with refused("no such node"):
        registry.request_leave(1, sender=accounts.operators[0])


def test_request_leave_refuses_twice_and_after_withdrawal(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    set_block(10)
    registry.request_leave(1, sender=op)
    set_block(20)
    with refused("node is leaving"):
        registry.request_leave(1, sender=op)
    assert registry.node(1).withdrawable_block == 10 + COOLING_OFF
    set_block(10 + COOLING_OFF)
    registry.withdraw(1, sender=op)
    with refused("node has withdrawn"):
        registry.request_leave(1, sender=op)


# --- withdraw -----------------------------------------------------------------------------


def test_withdraw_refuses_a_node_that_has_not_asked_to_leave(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    set_block(10**6)
    with refused("node has not requested to leave"):
        registry.withdraw(1, sender=op)


def test_withdraw_refuses_before_the_cooling_off_ends_with_the_block_it_ends(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    set_block(500)
    registry.request_leave(1, sender=op)
    for at in (500, 501, 500 + COOLING_OFF - 1):
        set_block(at)
        with refused(f"cooling-off not over: withdrawable at block {500 + COOLING_OFF}"):
            registry.withdraw(1, sender=op)
    assert registry.node(1).status == LEAVING
    assert registry.node(1).deposit == MIN_DEPOSIT
    assert boa.env.get_balance(registry.address) == MIN_DEPOSIT


def test_withdraw_pays_out_exactly_at_the_boundary_block(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.top_up(1, value=ETHER + 3, sender=op)
    set_block(500)
    registry.request_leave(1, sender=op)
    set_block(500 + COOLING_OFF)
    before = boa.env.get_balance(op)
    assert registry.withdraw(1, sender=op) == MIN_DEPOSIT + ETHER + 3
    assert events(registry) == [("Withdrawn", {"node_id": 1, "operator": op, "amount": MIN_DEPOSIT + ETHER + 3})]
    assert boa.env.get_balance(op) == before + MIN_DEPOSIT + ETHER + 3
    assert boa.env.get_balance(registry.address) == 0
    node = registry.node(1)
    assert (node.status, node.deposit, node.leave_block, node.withdrawable_block) == (
        WITHDRAWN, 0, 500, 500 + COOLING_OFF)
    assert registry.node_of_operator(op) == 0
    assert registry.node_of_key(key(1)) == 1
    assert registry.total_deposits() == 0


def test_withdraw_works_long_after_the_cooling_off(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.request_leave(1, sender=op)
    set_block(block() + 50 * COOLING_OFF)
    assert registry.withdraw(1, sender=op) == MIN_DEPOSIT


def test_withdraw_pays_out_only_once(registry, accounts) -> None:
    op = accounts.operators[0]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.register(key(2), value=MIN_DEPOSIT, sender=accounts.operators[1])
    registry.request_leave(1, sender=op)
    set_block(block() + COOLING_OFF)
    registry.withdraw(1, sender=op)
    before = boa.env.get_balance(op)
    with refused("node has already withdrawn"):
        registry.withdraw(1, sender=op)
    assert boa.env.get_balance(op) == before
    assert boa.env.get_balance(registry.address) == MIN_DEPOSIT  # the other node's deposit


def test_stranger_cannot_withdraw_another_nodes_deposit(registry, accounts) -> None:
    op, other = accounts.operators[0], accounts.operators[1]
    registry.register(key(1), value=MIN_DEPOSIT, sender=op)
    registry.register(key(2), value=MIN_DEPOSIT, sender=other)
    registry.request_leave(1, sender=op)
    registry.request_leave(2, sender=other)
    set_block(block() + COOLING_OFF)
    for who in (accounts.stranger, other, accounts.owner):
        before = boa.env.get_balance(who)
        with refused("caller is not the node's operator"):
            registry.withdraw(1, sender=who)
        assert boa.env.get_balance(who) == before
    assert registry.node(1).status == LEAVING
    assert registry.node(1).deposit == MIN_DEPOSIT
    assert registry.withdraw(1, sender=op) == MIN_DEPOSIT


def test_withdraw_refuses_an_unknown_node(registry, accounts) -> None:
    with refused("no such node"):
        registry.withdraw(7, sender=accounts.operators[0])


def test_one_node_leaving_leaves_the_others_untouched(registry, accounts) -> None:
    ops = accounts.operators[:3]
    for i, op in enumerate(ops):
        registry.register(key(i + 1), value=MIN_DEPOSIT + i, sender=op)
    registry.request_leave(2, sender=ops[1])
    set_block(block() + COOLING_OFF)
    assert registry.withdraw(2, sender=ops[1]) == MIN_DEPOSIT + 1
    assert [registry.node(i).status for i in (1, 2, 3)] == [ACTIVE, WITHDRAWN, ACTIVE]
    assert [registry.node(i).deposit for i in (1, 2, 3)] == [MIN_DEPOSIT, 0, MIN_DEPOSIT + 2]
    assert registry.total_deposits() == 2 * MIN_DEPOSIT + 2 == boa.env.get_balance(registry.address)


# --- views --------------------------------------------------------------------------------


def test_node_view_of_an_unknown_id_is_all_zero(registry) -> None:
    assert node_tuple(registry.node(5)) == (ZERO_ADDRESS, b"\x00" * 32, 0, NONE, 0, 0, 0, 0, 0, 0)


def test_nodes_by_keys_answers_for_each_key_in_order(registry, accounts) -> None:
    registry.register(key(1), value=MIN_DEPOSIT, sender=accounts.operators[0])
    registry.register(key(2), value=MIN_DEPOSIT + 1, sender=accounts.operators[1])
    registry.request_leave(2, sender=accounts.operators[1])
    ids, nodes = registry.nodes_by_keys([key(2), key(9), key(1)])
    assert ids == [2, 0, 1]
    assert [(str(n.operator), n.deposit, n.status) for n in nodes] == [
        (accounts.operators[1], MIN_DEPOSIT + 1, LEAVING), (ZERO_ADDRESS, 0, NONE),
        (accounts.operators[0], MIN_DEPOSIT, ACTIVE)]
    assert registry.nodes_by_keys([]) == ([], [])


def test_plain_ether_and_unknown_calls_are_refused(registry, accounts) -> None:
    """Every wei in the contract is accounted for: there is no fallback to send ether to."""
    for data in (b"", bytes.fromhex("deadbeef")):
        computation = boa.env.execute_code(to_address=registry.address, sender=accounts.stranger, value=ETHER,
                                           data=data)
        assert computation.is_error
    assert boa.env.get_balance(registry.address) == 0
