"""Checkpoints: a cluster's state at every K-th height, posted by anyone with the EIP-712
attestations of more than 2/3 of its members, each recovered with ecrecover and matched to
the attester key a member registered. Forged, replayed, duplicated and outsiders'
attestations are refused."""

from __future__ import annotations

import dataclasses

import boa
import pytest

from rtc.protocol.attestation import AttestationDomain, attester_proof, split_signature

from .helpers import MIN_DEPOSIT, ZERO_ADDRESS, block, events, key, refused, set_block
from .validation_helpers import (
    APP_HASH, DISPUTE_WINDOW, INTERVAL, RECORD, attester, attester_key, domain_of, post, set_attester, signatures,
    state_at,
)


def test_the_contract_signs_over_the_same_eip712_digest_as_the_nodes(validation, registry, cluster) -> None:
    state = state_at(registry, cluster)
    assert validation.attestation_digest(cluster, 20, APP_HASH, RECORD) == state.digest(domain_of(validation))


def test_three_of_four_members_attestations_post_a_checkpoint_anyone_may_send(validation, registry, accounts, cluster) -> None:
    state = state_at(registry, cluster)
    post(validation, state, signatures(state, domain_of(validation), [1, 2, 4]), sender=accounts.stranger)
    assert events(validation)[-1] == ("CheckpointPosted", {
        "cluster_id": cluster, "height": 20, "app_hash": APP_HASH, "record": RECORD, "attesters": 3, "members": 4})
    checkpoint = validation.checkpoint(cluster, 20)
    assert (checkpoint.app_hash, checkpoint.record, checkpoint.attesters, checkpoint.members) == (APP_HASH, RECORD, 3, 4)
    assert checkpoint.posted_block == block()
    assert validation.last_checkpoint(cluster) == 20


def test_two_of_four_is_not_more_than_two_thirds(validation, registry, accounts, cluster) -> None:
    state = state_at(registry, cluster)
    with refused("attestations of more than 2/3 of the members are needed"):
        post(validation, state, signatures(state, domain_of(validation), [1, 2]), sender=accounts.stranger)


def test_an_outsiders_attestation_does_not_count(validation, registry, accounts, cluster) -> None:
    state = state_at(registry, cluster)
    with refused("a signer is not a member of the cluster"):  # node 5: registered, has an attester, not a member
        post(validation, state, signatures(state, domain_of(validation), [1, 2, 5]), sender=accounts.stranger)
    with refused("a signer is no node's attester"):  # a key no node registered
        post(validation, state, signatures(state, domain_of(validation), [1, 2, 9]), sender=accounts.stranger)


def test_a_member_that_left_no_longer_counts(validation, registry, accounts, cluster) -> None:
    registry.request_leave(4, sender=accounts.operators[3])
    state = state_at(registry, cluster)
    with refused("a signer is not a member of the cluster"):
        post(validation, state, signatures(state, domain_of(validation), [1, 2, 4]), sender=accounts.stranger)
    post(validation, state, signatures(state, domain_of(validation), [1, 2, 3]), sender=accounts.stranger)  # 3 of 3


def test_one_member_signing_twice_counts_once(validation, registry, accounts, cluster) -> None:
    state = state_at(registry, cluster)
    v, r, s = signatures(state, domain_of(validation), [1, 2])
    with refused("signers are not distinct and in ascending order"):
        post(validation, state, ([v[0], v[0], v[1]], [r[0], r[0], r[1]], [s[0], s[0], s[1]]), sender=accounts.stranger)
    with refused("signers are not distinct and in ascending order"):
        post(validation, state, (v[::-1], r[::-1], s[::-1]), sender=accounts.stranger)


@pytest.mark.parametrize("other", ["height", "app_hash", "record", "code_hash", "cluster", "contract"])
def test_attestations_of_another_state_cluster_or_contract_do_not_carry_over(
        validation, validation_deployer, registry, accounts, cluster, other: str) -> None:
    """Signed for something else, a signature recovers some other address: no node's attester."""
    state = state_at(registry, cluster)
    domain = domain_of(validation)
    if other == "height":
        signed = state_at(registry, cluster, height=30)
    elif other == "app_hash":
        signed = state_at(registry, cluster, app_hash=bytes(32))
    elif other == "record":
        signed = dataclasses.replace(state, record=bytes(32))
    elif other == "code_hash":
        signed = dataclasses.replace(state, code_hash=bytes(32))
    elif other == "cluster":
        signed = state_at(registry, cluster + 1)
    else:
        signed = state
        domain = AttestationDomain(domain.ethereum_chain_id, bytes.fromhex(registry.address[2:]))
    with refused("a signer is no node's attester"):
        post(validation, state, signatures(signed, domain, [1, 2, 3]), sender=accounts.stranger)


def test_a_malleated_signature_is_refused(validation, registry, accounts, cluster) -> None:
    state = state_at(registry, cluster)
    v, r, s = signatures(state, domain_of(validation), [1, 2, 3])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    v[0], s[0] = 55 - v[0], n - s[0]  # the same point, the other s: ecrecover alone would accept it
    with refused("signature s is in the upper half of the curve order"):
        post(validation, state, (v, r, s), sender=accounts.stranger)


def test_checkpoint_heights_are_multiples_of_the_interval_each_posted_once(validation, registry, accounts, cluster) -> None:
    domain = domain_of(validation)
    off = state_at(registry, cluster, height=25)
    with refused("height is not a checkpoint height"):
        post(validation, off, signatures(off, domain, [1, 2, 3]), sender=accounts.stranger)
    state = state_at(registry, cluster)
    post(validation, state, signatures(state, domain, [1, 2, 3]), sender=accounts.stranger)
    again = state_at(registry, cluster, app_hash=bytes(32))
    with refused("already posted at this height"):
        post(validation, again, signatures(again, domain, [1, 2, 3, 4]), sender=accounts.stranger)
    earlier = state_at(registry, cluster, height=10)  # an earlier height not posted yet is still welcome
    post(validation, earlier, signatures(earlier, domain, [1, 2, 3]), sender=accounts.stranger)
    assert validation.last_checkpoint(cluster) == 20


def test_a_checkpoint_at_a_height_never_reached_blocks_no_later_one(validation, registry, accounts, cluster) -> None:
    """Review finding: with checkpoints only moving forward, a quorum of a small cluster could
    post at the largest uint64 multiple of the interval and stop every later checkpoint."""
    domain = domain_of(validation)
    far = state_at(registry, cluster, height=(2**64 - 1) // INTERVAL * INTERVAL)
    post(validation, far, signatures(far, domain, [1, 2, 3]), sender=accounts.stranger)
    state = state_at(registry, cluster)
    post(validation, state, signatures(state, domain, [1, 2, 3]), sender=accounts.stranger)
    assert validation.checkpoint(cluster, 20).attesters == 3


def test_signatures_that_are_not_well_formed_are_refused(validation, registry, accounts, cluster) -> None:
    state = state_at(registry, cluster)
    v, r, s = signatures(state, domain_of(validation), [1, 2, 3])
    with refused("v, r and s differ in length"):
        post(validation, state, (v, r, s[:2]), sender=accounts.stranger)
    with refused("a signature recovers no key"):
        post(validation, state, ([v[0] + 2] + v[1:], r, s), sender=accounts.stranger)


def test_the_interval_is_the_owners_to_set_once(validation_deployer, registry, accounts, cluster) -> None:
    validation = validation_deployer.deploy(registry.address, DISPUTE_WINDOW, sender=accounts.owner)
    state = state_at(registry, cluster)
    with refused("the cluster has no checkpoint interval"):
        post(validation, state, signatures(state, domain_of(validation), [1, 2, 3]), sender=accounts.stranger)
    with refused("caller is not the cluster's owner"):
        validation.set_checkpoint_interval(cluster, 5, sender=accounts.operators[0])
    with refused("no such cluster"):
        validation.set_checkpoint_interval(cluster + 7, 5, sender=accounts.owner)
    with refused("interval is zero"):
        validation.set_checkpoint_interval(cluster, 0, sender=accounts.owner)
    with refused("interval is longer than any height"):
        validation.set_checkpoint_interval(cluster, 2**64, sender=accounts.owner)
    validation.set_checkpoint_interval(cluster, 5, sender=accounts.owner)
    with refused("the interval is already set"):
        validation.set_checkpoint_interval(cluster, 10, sender=accounts.owner)


def test_an_attester_is_set_once_by_the_operator_and_never_reused(registry, accounts, cluster) -> None:
    assert registry.attester_of(1) == attester(1) and registry.node_of_attester(attester(1)) == 1
    with refused("the node already has an attester"):
        set_attester(registry, accounts, 1, 7)
    with refused("attester already used by a node"):
        set_attester(registry, accounts, 6, 1)
    with refused("caller is not the node's operator"):
        set_attester(registry, accounts, 6, 6, sender=accounts.stranger)
    with refused("attester is empty"):
        registry.set_attester(6, ZERO_ADDRESS, 27, 1, 1, sender=accounts.operators[5])
    set_attester(registry, accounts, 6, 6)
    assert events(registry)[-1] == ("AttesterSet", {"node_id": 6, "attester": attester(6)})
    assert registry.attester_of(6) == attester(6)


def test_nobody_can_claim_a_key_that_did_not_sign_their_node_id(registry, accounts, cluster) -> None:
    """Review finding: without a proof, an operator could register another node's attester
    key first (front-running it), so that node's attestations would count for the thief."""
    registry.register(key(7), value=MIN_DEPOSIT, sender=accounts.operators[6])
    proof_for_6 = split_signature(attester_proof(attester_key(6), bytes.fromhex(registry.address[2:]),
                                                 boa.env.evm.patch.chain_id, 6))
    r, s, v = proof_for_6
    with refused("the attester key did not sign this node's id"):  # node 6's proof, replayed for node 7
        registry.set_attester(7, attester(6), v, r, s, sender=accounts.operators[6])
    set_attester(registry, accounts, 6, 6)


def test_member_attesters_at_a_past_block_do_not_change_when_one_is_set_later(registry, accounts, cluster) -> None:
    """What a membership sync carries (rtc.membership.sync): the same answer for a block
    whenever it is asked, so every node confirms a proposed sync alike."""
    registry.register(key(7), value=MIN_DEPOSIT, sender=accounts.operators[6])
    registry.request_join(6, cluster, sender=accounts.operators[5])
    assert registry.approve_join(6, sender=accounts.owner)
    joined = block()
    set_block(joined + 1)
    set_attester(registry, accounts, 6, 6)
    set_block(block() + 1)
    keys_then = registry.member_keys_at(cluster, joined)
    assert registry.member_attesters_at(cluster, joined) == [attester(n) for n in (1, 2, 3, 4)] + [ZERO_ADDRESS]
    assert registry.member_attesters_at(cluster, block()) == [attester(n) for n in (1, 2, 3, 4, 6)]
    assert registry.member_keys_at(cluster, block()) == keys_then  # the same members, in the same order
    with refused("block is in the future"):
        registry.member_attesters_at(cluster, block() + 1)
