"""Slashing (slasher only), ejection below the minimum, slashed funds (beneficiary or burned),
and the owner's administration."""

from __future__ import annotations

import boa
import pytest

from .helpers import (
    ACTIVE,
    COOLING_OFF,
    EJECTED,
    ETHER,
    LEAVING,
    LEFT_BY_EJECTION,
    MIN_DEPOSIT,
    WITHDRAWN,
    ZERO_ADDRESS,
    block,
    events,
    key,
    refused,
    set_block,
)


def register(registry, accounts, n: int, deposit: int = MIN_DEPOSIT) -> int:
    return registry.register(key(n), value=deposit, sender=accounts.operators[n - 1])


def assert_books_balance(registry) -> None:
    """Every wei the contract holds is a deposit, owed to the beneficiary, or burned."""
    assert boa.env.get_balance(registry.address) == (
        registry.total_deposits() + registry.pending_slashed() + registry.total_burned())


# --- who may slash ------------------------------------------------------------------------


def test_nobody_can_slash_before_a_slasher_is_set(registry, accounts) -> None:
    register(registry, accounts, 1)
    for who in (accounts.owner, accounts.stranger, accounts.operators[0], ZERO_ADDRESS):
        with refused("caller is not the slasher"):
            registry.slash(1, ETHER, "no slasher", sender=who)
    assert registry.node(1).deposit == MIN_DEPOSIT


def test_only_the_slasher_can_slash(slashable, accounts) -> None:
    register(slashable, accounts, 1)
    for who in (accounts.owner, accounts.stranger, accounts.operators[0], accounts.beneficiary):
        with refused("caller is not the slasher"):
            slashable.slash(1, ETHER, "not the slasher", sender=who)
    assert slashable.node(1).deposit == MIN_DEPOSIT
    assert slashable.total_burned() == 0


def test_a_replaced_slasher_can_no_longer_slash(slashable, accounts) -> None:
    register(slashable, accounts, 1)
    slashable.set_slasher(accounts.stranger, sender=accounts.owner)
    with refused("caller is not the slasher"):
        slashable.slash(1, 1, "old slasher", sender=accounts.slasher)
    assert slashable.slash(1, 1, "new slasher", sender=accounts.stranger) == 1


def test_slasher_can_be_a_contract(registry, attacker_deployer, accounts) -> None:
    register(registry, accounts, 1)
    dispute = attacker_deployer.deploy(registry.address)
    registry.set_slasher(dispute.address, sender=accounts.owner)
    calldata = registry.slash.prepare_calldata(1, 5, "dispute 1")
    dispute.call_target(calldata, 0)
    assert registry.node(1).deposit == MIN_DEPOSIT - 5


# --- what a slash does --------------------------------------------------------------------


def test_slash_takes_from_the_deposit_and_burns_without_a_beneficiary(slashable, accounts) -> None:
    register(slashable, accounts, 1, MIN_DEPOSIT + 3 * ETHER)
    register(slashable, accounts, 2)
    assert slashable.slash(1, 2 * ETHER, "dispute 7: wrong app_hash at height 12", sender=accounts.slasher) == 2 * ETHER
    assert events(slashable) == [("Slashed", {
        "node_id": 1, "operator": accounts.operators[0], "slasher": accounts.slasher, "amount": 2 * ETHER,
        "deposit": MIN_DEPOSIT + ETHER, "burned": True, "reason": "dispute 7: wrong app_hash at height 12"})]
    node = slashable.node(1)
    assert (node.deposit, node.status, node.leave_block, node.withdrawable_block) == (MIN_DEPOSIT + ETHER, ACTIVE, 0, 0)
    assert slashable.total_deposits() == 2 * MIN_DEPOSIT + ETHER
    assert slashable.total_burned() == 2 * ETHER
    assert slashable.pending_slashed() == 0
    assert slashable.node(2).deposit == MIN_DEPOSIT
    assert boa.env.get_balance(slashable.address) == 2 * MIN_DEPOSIT + 3 * ETHER  # burned wei stay locked
    assert_books_balance(slashable)


def test_slash_down_to_exactly_the_minimum_keeps_the_node_active(slashable, accounts) -> None:
    register(slashable, accounts, 1, MIN_DEPOSIT + 10)
    slashable.slash(1, 10, "", sender=accounts.slasher)
    assert [name for name, _ in events(slashable)] == ["Slashed"]
    assert (slashable.node(1).deposit, slashable.node(1).status) == (MIN_DEPOSIT, ACTIVE)


def test_slash_below_the_minimum_ejects_the_node(slashable, accounts) -> None:
    op = accounts.operators[0]
    register(slashable, accounts, 1)
    set_block(300)
    slashable.slash(1, 1, "one wei short", sender=accounts.slasher)
    assert events(slashable) == [
        ("Slashed", {"node_id": 1, "operator": op, "slasher": accounts.slasher, "amount": 1,
                     "deposit": MIN_DEPOSIT - 1, "burned": True, "reason": "one wei short"}),
        ("NodeEjected", {"node_id": 1, "operator": op, "deposit": MIN_DEPOSIT - 1, "leave_block": 300,
                         "withdrawable_block": 300 + COOLING_OFF}),
    ]
    node = slashable.node(1)
    assert (node.status, node.deposit, node.leave_block, node.withdrawable_block) == (
        EJECTED, MIN_DEPOSIT - 1, 300, 300 + COOLING_OFF)
    # an ejected node cannot top up, leave again or join; it withdraws what is left after cooling-off
    with refused("node was ejected"):
        slashable.top_up(1, value=ETHER, sender=op)
    with refused("node was ejected"):
        slashable.request_leave(1, sender=op)
    set_block(300 + COOLING_OFF - 1)
    with refused(f"cooling-off not over: withdrawable at block {300 + COOLING_OFF}"):
        slashable.withdraw(1, sender=op)
    set_block(300 + COOLING_OFF)
    before = boa.env.get_balance(op)
    assert slashable.withdraw(1, sender=op) == MIN_DEPOSIT - 1
    assert boa.env.get_balance(op) == before + MIN_DEPOSIT - 1
    assert slashable.node(1).status == WITHDRAWN
    assert_books_balance(slashable)


def test_slash_ejecting_a_member_ends_its_membership(slashable, accounts) -> None:
    for n in (1, 2, 3):
        register(slashable, accounts, n)
    cluster = slashable.create_cluster(b"\x11" * 32, b"\x22" * 32, 4, sender=accounts.stranger)
    for n in (1, 2, 3):
        slashable.request_join(n, cluster, sender=accounts.operators[n - 1])
        set_block(block() + 1)
        slashable.approve_join(n, sender=accounts.stranger)
    set_block(77)
    slashable.slash(2, MIN_DEPOSIT, "all of it", sender=accounts.slasher)
    assert [name for name, _ in events(slashable)] == ["Slashed", "NodeLeft", "NodeEjected"]
    assert events(slashable)[1] == ("NodeLeft", {
        "cluster_id": cluster, "node_id": 2, "validator_key": key(2), "reason": LEFT_BY_EJECTION})
    assert slashable.members(cluster) == [1, 3]
    assert slashable.node(2).member_until == 77
    assert not slashable.is_active_member(2, cluster)
    assert slashable.node(2).cluster_id == cluster  # kept, as history


def test_slash_more_than_the_deposit_takes_the_whole_deposit(slashable, accounts) -> None:
    register(slashable, accounts, 1)
    assert slashable.slash(1, 10**30, "everything", sender=accounts.slasher) == MIN_DEPOSIT
    assert events(slashable)[0][1]["amount"] == MIN_DEPOSIT
    assert events(slashable)[0][1]["deposit"] == 0
    assert slashable.node(1).deposit == 0
    assert slashable.node(1).status == EJECTED
    assert slashable.total_burned() == MIN_DEPOSIT
    with refused("node has no deposit left"):
        slashable.slash(1, 1, "again", sender=accounts.slasher)
    assert_books_balance(slashable)


def test_slash_refuses_zero_unknown_and_withdrawn(slashable, accounts) -> None:
    op = accounts.operators[0]
    register(slashable, accounts, 1)
    with refused("slash amount is zero"):
        slashable.slash(1, 0, "zero", sender=accounts.slasher)
    for node_id in (0, 2):
        with refused("no such node"):
            slashable.slash(node_id, 1, "unknown", sender=accounts.slasher)
    slashable.request_leave(1, sender=op)
    set_block(block() + COOLING_OFF)
    slashable.withdraw(1, sender=op)
    with refused("node has withdrawn"):
        slashable.slash(1, 1, "too late", sender=accounts.slasher)


def test_a_leaving_node_can_be_slashed_during_and_after_cooling_off_until_it_withdraws(slashable, accounts) -> None:
    op = accounts.operators[0]
    register(slashable, accounts, 1, MIN_DEPOSIT + 4 * ETHER)
    set_block(1000)
    slashable.request_leave(1, sender=op)
    set_block(1000 + COOLING_OFF - 1)
    slashable.slash(1, 3 * ETHER, "during cooling-off", sender=accounts.slasher)
    assert [name for name, _ in events(slashable)] == ["Slashed"]  # a leaving node is not ejected again
    node = slashable.node(1)
    assert (node.status, node.deposit, node.withdrawable_block) == (LEAVING, MIN_DEPOSIT + ETHER, 1000 + COOLING_OFF)
    set_block(1000 + COOLING_OFF + 5)
    slashable.slash(1, MIN_DEPOSIT, "after cooling-off, before withdrawal", sender=accounts.slasher)
    node = slashable.node(1)
    assert (node.status, node.deposit, node.withdrawable_block) == (LEAVING, ETHER, 1000 + COOLING_OFF)
    before = boa.env.get_balance(op)
    assert slashable.withdraw(1, sender=op) == ETHER
    assert boa.env.get_balance(op) == before + ETHER
    assert_books_balance(slashable)


def test_a_fully_slashed_node_withdraws_zero_once(slashable, accounts) -> None:
    op = accounts.operators[0]
    register(slashable, accounts, 1)
    slashable.request_leave(1, sender=op)
    slashable.slash(1, MIN_DEPOSIT, "all", sender=accounts.slasher)
    set_block(block() + COOLING_OFF)
    before = boa.env.get_balance(op)
    assert slashable.withdraw(1, sender=op) == 0
    assert events(slashable) == [("Withdrawn", {"node_id": 1, "operator": op, "amount": 0})]
    assert boa.env.get_balance(op) == before
    assert slashable.node(1).status == WITHDRAWN
    assert slashable.node_of_operator(op) == 0
    with refused("node has already withdrawn"):
        slashable.withdraw(1, sender=op)


def test_slash_reason_longer_than_128_bytes_is_not_accepted(slashable, accounts) -> None:
    register(slashable, accounts, 1)
    slashable.slash(1, 1, "x" * 128, sender=accounts.slasher)
    with pytest.raises(Exception):
        slashable.slash(1, 1, "x" * 129, sender=accounts.slasher)
    assert slashable.node(1).deposit == MIN_DEPOSIT - 1


# --- slashed funds ------------------------------------------------------------------------


def test_slashed_funds_go_to_the_beneficiary_when_swept(slashable, accounts) -> None:
    register(slashable, accounts, 1, 5 * ETHER)
    slashable.set_beneficiary(accounts.beneficiary, sender=accounts.owner)
    assert events(slashable) == [("BeneficiaryChanged", {
        "previous_beneficiary": ZERO_ADDRESS, "new_beneficiary": accounts.beneficiary})]
    slashable.slash(1, ETHER, "one", sender=accounts.slasher)
    assert events(slashable)[0][1]["burned"] is False
    slashable.slash(1, 2, "two", sender=accounts.slasher)
    assert (slashable.pending_slashed(), slashable.total_burned()) == (ETHER + 2, 0)
    assert_books_balance(slashable)
    before = boa.env.get_balance(accounts.beneficiary)
    assert slashable.sweep_slashed(sender=accounts.stranger) == ETHER + 2  # anyone may trigger it
    assert events(slashable) == [("SlashedFundsSwept", {"beneficiary": accounts.beneficiary, "amount": ETHER + 2})]
    assert boa.env.get_balance(accounts.beneficiary) == before + ETHER + 2
    assert slashable.pending_slashed() == 0
    assert boa.env.get_balance(slashable.address) == 4 * ETHER - 2 == slashable.total_deposits()
    with refused("no slashed funds to sweep"):
        slashable.sweep_slashed(sender=accounts.stranger)


def test_burned_funds_can_never_be_swept(slashable, accounts) -> None:
    register(slashable, accounts, 1, 5 * ETHER)
    slashable.slash(1, ETHER, "burned", sender=accounts.slasher)
    with refused("no beneficiary set"):
        slashable.sweep_slashed(sender=accounts.owner)
    slashable.set_beneficiary(accounts.beneficiary, sender=accounts.owner)
    with refused("no slashed funds to sweep"):
        slashable.sweep_slashed(sender=accounts.owner)
    assert slashable.total_burned() == ETHER
    assert boa.env.get_balance(slashable.address) == 5 * ETHER


def test_owed_funds_wait_while_the_beneficiary_is_unset(slashable, accounts) -> None:
    register(slashable, accounts, 1, 5 * ETHER)
    slashable.set_beneficiary(accounts.beneficiary, sender=accounts.owner)
    slashable.slash(1, ETHER, "owed", sender=accounts.slasher)
    slashable.set_beneficiary(ZERO_ADDRESS, sender=accounts.owner)
    slashable.slash(1, 2 * ETHER, "burned", sender=accounts.slasher)
    assert (slashable.pending_slashed(), slashable.total_burned()) == (ETHER, 2 * ETHER)
    with refused("no beneficiary set"):
        slashable.sweep_slashed(sender=accounts.owner)
    slashable.set_beneficiary(accounts.stranger, sender=accounts.owner)
    before = boa.env.get_balance(accounts.stranger)
    assert slashable.sweep_slashed(sender=accounts.owner) == ETHER
    assert boa.env.get_balance(accounts.stranger) == before + ETHER
    assert_books_balance(slashable)


# --- administration -----------------------------------------------------------------------


def test_owner_sets_the_slasher_with_an_event(registry, accounts) -> None:
    registry.set_slasher(accounts.slasher, sender=accounts.owner)
    assert events(registry) == [("SlasherChanged", {"previous_slasher": ZERO_ADDRESS, "new_slasher": accounts.slasher})]
    assert registry.slasher() == accounts.slasher
    registry.set_slasher(ZERO_ADDRESS, sender=accounts.owner)
    assert events(registry) == [("SlasherChanged", {"previous_slasher": accounts.slasher, "new_slasher": ZERO_ADDRESS})]
    assert registry.slasher() == ZERO_ADDRESS


@pytest.mark.parametrize("who", ["stranger", "slasher", "beneficiary"])
def test_only_the_owner_administers(registry, accounts, who) -> None:
    caller = getattr(accounts, who)
    with refused("caller is not the owner"):
        registry.set_slasher(caller, sender=caller)
    with refused("caller is not the owner"):
        registry.set_beneficiary(caller, sender=caller)
    with refused("caller is not the owner"):
        registry.transfer_ownership(caller, sender=caller)
    assert (registry.owner(), registry.slasher(), registry.beneficiary()) == (
        accounts.owner, ZERO_ADDRESS, ZERO_ADDRESS)


def test_transfer_ownership_hands_over_every_owner_right(registry, accounts) -> None:
    new_owner = accounts.stranger
    registry.transfer_ownership(new_owner, sender=accounts.owner)
    assert events(registry) == [("OwnershipTransferred", {"previous_owner": accounts.owner, "new_owner": new_owner})]
    assert registry.owner() == new_owner
    with refused("caller is not the owner"):
        registry.set_slasher(accounts.slasher, sender=accounts.owner)
    registry.set_slasher(accounts.slasher, sender=new_owner)
    registry.set_beneficiary(accounts.beneficiary, sender=new_owner)
    assert (registry.slasher(), registry.beneficiary()) == (accounts.slasher, accounts.beneficiary)


def test_transfer_ownership_refuses_the_zero_address(registry, accounts) -> None:
    with refused("new owner is the zero address"):
        registry.transfer_ownership(ZERO_ADDRESS, sender=accounts.owner)
    assert registry.owner() == accounts.owner


def test_the_owner_has_no_power_over_deposits(registry, accounts) -> None:
    op = accounts.operators[0]
    register(registry, accounts, 1)
    registry.request_leave(1, sender=op)
    set_block(block() + COOLING_OFF)
    with refused("caller is not the node's operator"):
        registry.withdraw(1, sender=accounts.owner)
    with refused("caller is not the slasher"):
        registry.slash(1, 1, "owner", sender=accounts.owner)
    assert registry.node(1).deposit == MIN_DEPOSIT
