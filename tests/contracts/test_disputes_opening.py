"""Opening a dispute: the contract checks the evidence itself (the accused attestations, the
claimed app_hash, the base checkpoint), refuses what is forged, mismatched, late or doubled,
and holds the deposits of every node the dispute names."""

from __future__ import annotations

import boa
import pytest

from .dispute_helpers import (
    BOND, CLAIMED, DRAW, OPEN, POOL, Court,
)
from .helpers import MIN_DEPOSIT, block, events, key, refused, set_block
from .validation_helpers import (
    APP_HASH, DISPUTE_WINDOW, attester, domain_of, post, signatures, state_at,
)


def test_a_validator_disputes_a_state_three_members_attested(court: Court) -> None:
    opened = court.open(signers=(1, 2, 3))
    names = [name for name, _ in events(court.disputes)]
    assert names == ["DisputeOpened", "EvidenceAdded", "EvidenceAdded", "EvidenceAdded"]
    d = court.disputes.dispute(opened)
    assert opened == 1 and court.disputes.dispute_count() == 1
    assert (d.cluster_id, d.height, d.attested_app_hash, d.claimed_app_hash) == (court.cluster, 20, APP_HASH, CLAIMED)
    assert (d.status, d.phase, d.round, d.seed_block, d.bond, d.disputer) == (OPEN, DRAW, 0, block() + 1, BOND, 7)
    assert d.agreed and d.members == 4 and not d.member_disputer
    assert sorted(court.disputes.accused(opened)) == [1, 2, 3]
    assert court.disputes.dispute_at(court.cluster, 20) == opened
    assert [court.disputes.holds(n) for n in (1, 2, 3, 4, 7)] == [1, 1, 1, 0, 1]


def test_one_liar_alone_is_not_the_clusters_state(court: Court) -> None:
    opened = court.open(signers=(2,))
    assert not court.disputes.dispute(opened).agreed
    court.disputes.add_evidence(opened, *signatures(state_at(court.registry, court.cluster),
                                                    domain_of(court.validation), [1, 3]), sender=court.accounts.stranger)
    assert court.disputes.dispute(opened).agreed and sorted(court.disputes.accused(opened)) == [1, 2, 3]
    with refused("a signer is accused already"):
        court.disputes.add_evidence(opened, *signatures(state_at(court.registry, court.cluster),
                                                        domain_of(court.validation), [2]), sender=court.accounts.stranger)


def test_forged_or_mismatched_evidence_is_refused(court: Court) -> None:
    with refused("a signer is no node's attester"):  # signed by a key nobody registered
        state = state_at(court.registry, court.cluster)
        v, r, s = signatures(state, domain_of(court.validation), [42])
        court.disputes.open_dispute(court.cluster, 20, APP_HASH, state.record, v, r, s, CLAIMED, 0, 7,
                                    value=BOND, sender=attester(7))
    with refused("a signer is no node's attester"):  # signatures of another state than the one named
        other = state_at(court.registry, court.cluster, 20, b"\x07" * 32)
        v, r, s = signatures(other, domain_of(court.validation), [1, 2, 3])
        court.disputes.open_dispute(court.cluster, 20, APP_HASH, other.record, v, r, s, CLAIMED, 0, 7,
                                    value=BOND, sender=attester(7))
    with refused("a signer never was a member of the cluster"):  # node 5 has an attester, never joined
        court.open(signers=(1, 5))
    with refused("no attestations: the evidence is the accused members' signatures"):
        court.disputes.open_dispute(court.cluster, 20, APP_HASH, b"\x00" * 32, [], [], [], CLAIMED, 0, 7,
                                    value=BOND, sender=attester(7))
    with refused("the claimed app_hash is the attested one: nothing to dispute"):
        court.open(claimed=APP_HASH)
    with refused("the claimed app_hash is empty"):
        court.open(claimed=b"\x00" * 32)
    with refused("the base is not a validated checkpoint"):
        court.open(base=10)
    with refused("the disputed height must be above the base checkpoint"):
        court.open(height=0)


def test_who_may_dispute_and_what_it_costs(court: Court) -> None:
    with refused(f"a dispute needs a bond of {BOND} wei"):
        court.open(value=BOND - 1)
    with refused("caller is not the disputer's operator or attester"):
        court.open(sender=court.accounts.stranger)
    with refused("the disputer is not an active node"):
        court.open(disputer=99, sender=court.accounts.stranger)
    member = court.open(signers=(1, 2, 3), disputer=4, value=0)  # a member of the cluster: no bond
    assert court.disputes.dispute(member).member_disputer and court.disputes.dispute(member).bond == 0


def test_a_second_dispute_on_the_same_height_is_refused(court: Court) -> None:
    first = court.open()
    with refused(f"dispute {first} covers this height already: add evidence to it"):
        court.open(disputer=8)
    court.open(height=21, disputer=8)  # another height is another dispute


def validate(court: Court, height: int) -> int:
    """Post the members' honest checkpoint at `height` and have its drawn validators endorse it."""
    state = state_at(court.registry, court.cluster, height)
    post(court.validation, state, signatures(state, domain_of(court.validation), [1, 2, 3, 4]), court.accounts.stranger)
    set_block(block() + 2)
    court.validation.draw(court.cluster, height, sender=court.accounts.stranger)
    for slot in court.validation.drawn(court.cluster, height):
        court.validation.endorse(court.cluster, height, slot.node_id, state.app_hash, sender=attester(slot.node_id))
    return block()


def test_a_validated_height_is_disputable_only_inside_its_window(court: Court) -> None:
    validated_at = validate(court, 20)
    assert court.validation.validated_height(court.cluster) == 20
    endorsers = [slot.node_id for slot in court.validation.drawn(court.cluster, 20)]
    disputer = next(n for n in POOL if n not in endorsers)
    set_block(validated_at + DISPUTE_WINDOW + 1)
    with refused("the height is validated and its dispute window has passed"):
        court.open(height=17, disputer=disputer)  # covered by the validation of 20
    court.open(height=21, disputer=disputer, base=20)  # above it: open, from the validated base


def test_the_validators_of_the_covering_checkpoint_are_named_and_held(court: Court) -> None:
    validate(court, 20)
    endorsers = [slot.node_id for slot in court.validation.drawn(court.cluster, 20)]
    disputer = next(n for n in POOL if n not in endorsers)
    court.open(height=15, disputer=disputer)
    assert all(court.disputes.holds(n) == 1 for n in endorsers)


def test_nobody_a_dispute_names_can_withdraw_until_the_ruling(court: Court) -> None:
    court.open(signers=(1, 2, 3))
    court.registry.request_leave(1, sender=court.accounts.operators[0])
    court.registry.request_leave(7, sender=court.accounts.operators[6])
    set_block(block() + 10_000)
    for node in (1, 7):
        assert not court.validation.released(node, court.registry.node(node).cluster_id)
        with refused("the checkpoints this node attested are not validated, their dispute window is still open,"
                     " or a dispute names it"):
            court.registry.withdraw(node, sender=court.accounts.operators[node - 1])


def test_only_the_deployer_names_the_court_and_only_the_court_freezes(court: Court) -> None:
    with refused("caller is not the disputes contract"):
        court.validation.freeze(court.cluster, 0, sender=court.accounts.owner)
    with refused("caller is not the deployer"):
        court.validation.set_disputes(court.accounts.stranger, sender=court.accounts.stranger)
    with refused("the disputes contract is already set"):
        court.validation.set_disputes(court.accounts.stranger, sender=court.accounts.owner)


def test_plain_ether_is_refused(court: Court) -> None:
    with pytest.raises(Exception, match="plain ether transfers are refused"):
        boa.env.raw_call(court.disputes.address, sender=court.accounts.stranger, value=1)


def test_a_node_without_an_attester_can_still_dispute_from_its_operator(court: Court) -> None:
    court.registry.register(key(17), value=MIN_DEPOSIT, sender=court.accounts.operators[16])
    assert court.open(disputer=17, sender=court.accounts.operators[16]) == 1

