"""Reentrancy: a malicious operator contract whose fallback re-enters the registry while
withdraw pays it, and a malicious beneficiary that re-enters sweep_slashed."""

from __future__ import annotations

import boa
import pytest
from eth_abi import decode as abi_decode

from .helpers import (
    COOLING_OFF,
    ETHER,
    LEAVING,
    MIN_DEPOSIT,
    WITHDRAWN,
    block,
    key,
    refused,
    set_block,
)

NODE_TYPE = "(address,bytes32,uint256,uint8,uint256,uint256,uint256,uint256,uint256,uint256)"


@pytest.fixture
def attacker(registry, attacker_deployer, accounts):
    """A contract operator with a leaving node whose cooling-off is over, next to an honest node."""
    registry.register(key(2), value=MIN_DEPOSIT, sender=accounts.operators[1])  # honest node 1
    contract = attacker_deployer.deploy(registry.address)
    boa.env.set_balance(contract.address, 10 * ETHER)
    contract.call_target(registry.register.prepare_calldata(key(1)), MIN_DEPOSIT + ETHER)
    assert registry.node_of_operator(contract.address) == 2
    contract.call_target(registry.request_leave.prepare_calldata(2), 0)
    set_block(block() + COOLING_OFF)
    return contract


def withdraw(attacker, registry) -> None:
    attacker.call_target(registry.withdraw.prepare_calldata(2), 0)


def test_reentering_withdraw_makes_the_whole_withdrawal_fail(registry, attacker) -> None:
    attacker.arm(registry.withdraw.prepare_calldata(2), 0, True, b"")
    with pytest.raises(boa.BoaError):
        withdraw(attacker, registry)
    node = registry.node(2)
    assert (node.status, node.deposit) == (LEAVING, MIN_DEPOSIT + ETHER)
    assert attacker.received() == 0
    assert boa.env.get_balance(registry.address) == 2 * MIN_DEPOSIT + ETHER
    assert boa.env.get_balance(attacker.address) == 10 * ETHER - MIN_DEPOSIT - ETHER


def test_reentering_withdraw_is_stopped_by_the_lock_and_pays_once(registry, attacker) -> None:
    attacker.arm(registry.withdraw.prepare_calldata(2), 0, False, registry.node.prepare_calldata(2))
    withdraw(attacker, registry)
    assert attacker.reentry_attempted()
    assert not attacker.reentry_success()
    assert attacker.reentry_returned() == b""  # the reentrancy lock's bare revert, not a reason string
    assert attacker.payments() == 1
    assert attacker.received() == MIN_DEPOSIT + ETHER
    assert boa.env.get_balance(attacker.address) == 10 * ETHER
    assert boa.env.get_balance(registry.address) == MIN_DEPOSIT  # the honest node's deposit is intact
    assert registry.node(1).deposit == MIN_DEPOSIT
    assert registry.total_deposits() == MIN_DEPOSIT
    # checks-effects-interactions: while being paid, the registry already says withdrawn
    (seen,) = abi_decode([NODE_TYPE], attacker.probe_returned())
    assert (seen[2], seen[3]) == (0, WITHDRAWN)
    assert registry.node(2).status == WITHDRAWN


@pytest.mark.parametrize("function", ["register", "top_up", "request_leave", "withdraw_other", "request_join",
                                      "approve_join", "cancel_join", "create_cluster", "transfer_cluster_ownership",
                                      "sweep_slashed"])
def test_every_state_changing_function_is_locked_during_the_payment(registry, attacker, accounts, function) -> None:
    """The registry has already freed the operator slot when it pays, so without the lock
    re-registering from the fallback would work; the lock refuses every entry point."""
    registry.request_leave(1, sender=accounts.operators[1])
    data, value = {
        "register": (registry.register.prepare_calldata(key(9)), MIN_DEPOSIT),
        "top_up": (registry.top_up.prepare_calldata(2), ETHER),
        "request_leave": (registry.request_leave.prepare_calldata(2), 0),
        "withdraw_other": (registry.withdraw.prepare_calldata(1), 0),
        "request_join": (registry.request_join.prepare_calldata(2, 1), 0),
        "approve_join": (registry.approve_join.prepare_calldata(1), 0),
        "cancel_join": (registry.cancel_join.prepare_calldata(1), 0),
        "transfer_cluster_ownership": (registry.transfer_cluster_ownership.prepare_calldata(1, registry.address), 0),
        "create_cluster": (registry.create_cluster.prepare_calldata(b"\x01" * 32, b"\x02" * 32, 4), 0),
        "sweep_slashed": (registry.sweep_slashed.prepare_calldata(), 0),
    }[function]
    attacker.arm(data, value, False, b"")
    withdraw(attacker, registry)
    assert attacker.reentry_attempted()
    assert not attacker.reentry_success()
    assert attacker.reentry_returned() == b""
    assert registry.node_count() == 2
    assert registry.node_of_key(key(9)) == 0
    assert registry.cluster_count() == 0
    assert registry.node(1).status == LEAVING
    assert attacker.received() == MIN_DEPOSIT + ETHER


def test_the_same_call_outside_the_payment_is_not_refused_by_the_lock(registry, attacker) -> None:
    """Control for the test above: re-registering afterwards, not re-entrantly, works."""
    attacker.arm(b"", 0, False, b"")
    withdraw(attacker, registry)
    attacker.call_target(registry.register.prepare_calldata(key(9)), MIN_DEPOSIT)
    assert registry.node_of_operator(attacker.address) == 3


def test_a_contract_operator_that_refuses_payment_cannot_withdraw_and_keeps_its_deposit(registry, attacker) -> None:
    # a payment that reverts (here: the propagated failed re-entry) undoes the whole withdrawal
    attacker.arm(registry.register.prepare_calldata(key(9)), MIN_DEPOSIT, True, b"")
    with pytest.raises(boa.BoaError):
        withdraw(attacker, registry)
    assert registry.node(2).status == LEAVING
    attacker.arm(b"", 0, False, b"")
    withdraw(attacker, registry)
    assert registry.node(2).status == WITHDRAWN
    assert attacker.received() == MIN_DEPOSIT + ETHER


def test_stranger_contract_cannot_withdraw_the_attackers_node(registry, attacker, attacker_deployer) -> None:
    other = attacker_deployer.deploy(registry.address)
    with refused("caller is not the node's operator"):
        other.call_target(registry.withdraw.prepare_calldata(2), 0)


def test_a_beneficiary_reentering_sweep_is_paid_once(registry, attacker_deployer, accounts) -> None:
    beneficiary = attacker_deployer.deploy(registry.address)
    registry.set_slasher(accounts.slasher, sender=accounts.owner)
    registry.set_beneficiary(beneficiary.address, sender=accounts.owner)
    registry.register(key(1), value=5 * ETHER, sender=accounts.operators[0])
    registry.slash(1, 3 * ETHER, "for the beneficiary", sender=accounts.slasher)
    beneficiary.arm(registry.sweep_slashed.prepare_calldata(), 0, False, b"")
    assert registry.sweep_slashed(sender=accounts.stranger) == 3 * ETHER
    assert beneficiary.reentry_attempted()
    assert not beneficiary.reentry_success()
    assert beneficiary.reentry_returned() == b""
    assert beneficiary.payments() == 1
    assert boa.env.get_balance(beneficiary.address) == 3 * ETHER
    assert boa.env.get_balance(registry.address) == 2 * ETHER == registry.total_deposits()
    assert registry.pending_slashed() == 0
