"""Batch validators: nodes enroll, k are drawn per checkpoint from a block after it was posted
(never the cluster's own members), each endorses by its deadline or is replaced, and the k-th
endorsement validates the checkpoint (`validated_height`)."""

from __future__ import annotations

import pytest

from .helpers import MIN_DEPOSIT, block, events, key, refused, set_block
from .validation_helpers import (
    APP_HASH, DISPUTE_WINDOW, attester, domain_of, post, set_attester, signatures, state_at,
)

K = 2
RESPONSE = 5
GENESIS = b"\x9e" * 32  # the Swarm reference of the cluster's genesis
VALIDATORS = (7, 8, 9)  # node ids (and attester keys) of the enrolled validators


@pytest.fixture
def pool(validation, registry, accounts, cluster) -> list[int]:
    """Nodes 7-9 registered with attesters and enrolled; node 5 (an attester, no member) enrolled too."""
    validation.set_validator_rules(cluster, K, RESPONSE, GENESIS, sender=accounts.owner)
    for n in VALIDATORS:
        registry.register(key(n), value=MIN_DEPOSIT, sender=accounts.operators[n - 1])
        set_attester(registry, accounts, n, n)
        validation.enroll(n, sender=accounts.operators[n - 1])
    return list(VALIDATORS)


def posted(validation, registry, accounts, cluster, height: int = 20) -> int:
    state = state_at(registry, cluster, height)
    post(validation, state, signatures(state, domain_of(validation), [1, 2, 3]), sender=accounts.stranger)
    return block()


def drawn_ids(validation, cluster, height: int = 20) -> list[int]:
    return [slot.node_id for slot in validation.drawn(cluster, height)]


def endorse(validation, accounts, cluster, node: int, height: int = 20, app_hash: bytes = APP_HASH) -> None:
    validation.endorse(cluster, height, node, app_hash, sender=attester(node))


@pytest.fixture(autouse=True)
def fund_attesters(accounts) -> None:
    import boa

    for n in range(1, 10):
        boa.env.set_balance(attester(n), 10**18)


def test_enrolling_takes_the_operator_an_active_node_and_an_attester(validation, registry, accounts, cluster) -> None:
    registry.register(key(7), value=MIN_DEPOSIT, sender=accounts.operators[6])
    with refused("the node has no attester: set one first"):
        validation.enroll(7, sender=accounts.operators[6])
    set_attester(registry, accounts, 7, 7)
    with refused("caller is not the node's operator"):
        validation.enroll(7, sender=accounts.stranger)
    validation.enroll(7, sender=accounts.operators[6])
    assert events(validation)[-1] == ("Enrolled", {"node_id": 7})
    with refused("node is enrolled already"):
        validation.enroll(7, sender=accounts.operators[6])
    with refused("caller is not the node's operator"):  # no such node: nobody operates it
        validation.enroll(99, sender=accounts.operators[6])
    assert validation.pool_size() == 1 and validation.enrolled(7)
    registry.register(key(8), value=MIN_DEPOSIT, sender=accounts.operators[7])
    set_attester(registry, accounts, 8, 8)
    registry.request_leave(8, sender=accounts.operators[7])
    with refused("node is not active"):
        validation.enroll(8, sender=accounts.operators[7])


def test_the_rules_are_the_owners_to_set_once(validation, accounts, cluster) -> None:
    with refused("caller is not the cluster's owner"):
        validation.set_validator_rules(cluster, K, RESPONSE, GENESIS, sender=accounts.stranger)
    with refused("validators per checkpoint must be 1 to 8"):
        validation.set_validator_rules(cluster, 9, RESPONSE, GENESIS, sender=accounts.owner)
    with refused("response blocks must be 1 to 2**32"):
        validation.set_validator_rules(cluster, K, 0, GENESIS, sender=accounts.owner)
    with refused("the genesis reference is empty"):
        validation.set_validator_rules(cluster, K, RESPONSE, bytes(32), sender=accounts.owner)
    validation.set_validator_rules(cluster, K, RESPONSE, GENESIS, sender=accounts.owner)
    assert validation.genesis(cluster) == GENESIS and validation.response_blocks(cluster) == RESPONSE
    with refused("the validator rules are already set"):
        validation.set_validator_rules(cluster, 3, RESPONSE, GENESIS, sender=accounts.owner)


def test_the_draw_waits_for_a_block_after_the_checkpoint_and_picks_k_distinct_non_members(
        validation, registry, accounts, cluster, pool) -> None:
    with refused("no checkpoint at this height"):
        validation.draw(cluster, 20, sender=accounts.stranger)
    at = posted(validation, registry, accounts, cluster)
    with refused("the seed block is not mined yet: draw from the second block after posting"):
        validation.draw(cluster, 20, sender=accounts.stranger)
    set_block(at + 2)
    validation.draw(cluster, 20, sender=accounts.stranger)
    logged = events(validation)
    chosen = drawn_ids(validation, cluster)
    assert len(chosen) == K and len(set(chosen)) == K and set(chosen) <= set(VALIDATORS)
    assert all(slot.deadline == block() + RESPONSE and not slot.endorsed for slot in validation.drawn(cluster, 20))
    assert [(name, fields["node_id"], fields["replaced"]) for name, fields in logged] == [
        ("ValidatorDrawn", node, 0) for node in chosen]
    with refused("the validators are drawn already"):
        validation.draw(cluster, 20, sender=accounts.stranger)


def test_a_member_of_the_cluster_is_never_drawn_even_when_enrolled(validation, registry, accounts, cluster) -> None:
    validation.set_validator_rules(cluster, K, RESPONSE, GENESIS, sender=accounts.owner)
    for member in (1, 2, 3, 4):
        validation.enroll(member, sender=accounts.operators[member - 1])
    registry.register(key(7), value=MIN_DEPOSIT, sender=accounts.operators[6])
    set_attester(registry, accounts, 7, 7)
    validation.enroll(7, sender=accounts.operators[6])
    at = posted(validation, registry, accounts, cluster)
    set_block(at + 2)
    with refused("not enough eligible validators in the pool"):  # only node 7 is not a member
        validation.draw(cluster, 20, sender=accounts.stranger)
    validation.enroll(5, sender=accounts.operators[4])  # node 5 never joined: eligible
    validation.draw(cluster, 20, sender=accounts.stranger)
    assert sorted(drawn_ids(validation, cluster)) == [5, 7]


def test_k_endorsements_validate_the_checkpoint_and_only_drawn_attesters_may_endorse(
        validation, registry, accounts, cluster, pool) -> None:
    set_block(posted(validation, registry, accounts, cluster) + 2)
    validation.draw(cluster, 20, sender=accounts.stranger)
    first, second = drawn_ids(validation, cluster)
    outsider = next(n for n in VALIDATORS if n not in (first, second))
    with refused("the node is not drawn for this checkpoint"):
        endorse(validation, accounts, cluster, outsider)
    with refused("caller is not the node's attester"):
        validation.endorse(cluster, 20, first, APP_HASH, sender=attester(second))
    with refused("app_hash differs from the checkpoint's: hold the evidence for a dispute instead"):
        endorse(validation, accounts, cluster, first, app_hash=b"\x01" * 32)
    endorse(validation, accounts, cluster, first)
    with refused("the node endorsed already"):
        endorse(validation, accounts, cluster, first)
    assert validation.validated_height(cluster) == 0 and validation.endorsements(cluster, 20) == 1
    endorse(validation, accounts, cluster, second)
    assert ("Validated", {"cluster_id": cluster, "height": 20}) in events(validation)
    assert validation.validated_height(cluster) == 20


def test_a_no_show_is_replaced_after_its_deadline_and_cannot_endorse_late(
        validation, registry, accounts, cluster, pool) -> None:
    set_block(posted(validation, registry, accounts, cluster) + 2)
    validation.draw(cluster, 20, sender=accounts.stranger)
    first, absent = drawn_ids(validation, cluster)
    endorse(validation, accounts, cluster, first)
    with refused("the validator endorsed"):
        validation.replace(cluster, 20, 0, sender=accounts.stranger)
    with refused("the validator's deadline has not passed"):
        validation.replace(cluster, 20, 1, sender=accounts.stranger)
    set_block(validation.drawn(cluster, 20)[1].deadline + 1)
    with refused("the deadline has passed"):
        endorse(validation, accounts, cluster, absent)
    with refused("the replacement's seed block is not mined yet: call in the next block"):
        validation.replace(cluster, 20, 1, sender=accounts.stranger)
    set_block(block() + 1)
    validation.replace(cluster, 20, 1, sender=accounts.stranger)
    assert events(validation)[-1][1]["replaced"] == absent
    newcomer = drawn_ids(validation, cluster)[1]
    assert newcomer not in (first, absent)
    endorse(validation, accounts, cluster, newcomer)
    assert validation.validated_height(cluster) == 20


def test_validated_height_is_the_highest_validated_checkpoint(validation, registry, accounts, cluster, pool) -> None:
    for height in (20, 10):
        set_block(posted(validation, registry, accounts, cluster, height) + 2)
        validation.draw(cluster, height, sender=accounts.stranger)
        for node in drawn_ids(validation, cluster, height):
            state = state_at(registry, cluster, height)
            endorse(validation, accounts, cluster, node, height, state.app_hash)
    assert validation.validated_height(cluster) == 20


def test_a_leaving_member_is_released_only_after_its_last_checkpoint_is_validated_and_the_window_passed(
        validation, registry, accounts, cluster, pool) -> None:
    registry.set_validation(validation.address, sender=accounts.owner)
    with refused("the validation contract is already set"):
        registry.set_validation(validation.address, sender=accounts.owner)
    posted(validation, registry, accounts, cluster, 20)  # members 1-3 attest 20; member 4 nothing
    assert [validation.last_attested(n) for n in (1, 2, 3, 4)] == [20, 20, 20, 0]
    for node in (1, 4):
        registry.request_leave(node, sender=accounts.operators[node - 1])
    set_block(registry.node(1).withdrawable_block)
    registry.withdraw(4, sender=accounts.operators[3])  # attested no checkpoint: the cooling-off alone
    assert not validation.released(1, cluster)
    with refused("the checkpoints this node attested are not validated, their dispute window is still open,"
                 " or a dispute names it"):
        registry.withdraw(1, sender=accounts.operators[0])
    set_block(block() + 2)
    validation.draw(cluster, 20, sender=accounts.stranger)
    for node in drawn_ids(validation, cluster):
        endorse(validation, accounts, cluster, node)
    assert validation.validated_block(cluster, 20) == block() and not validation.released(1, cluster)
    set_block(block() + DISPUTE_WINDOW - 1)
    assert not validation.released(1, cluster)
    set_block(block() + 1)
    assert validation.released(1, cluster)
    registry.withdraw(1, sender=accounts.operators[0])


def test_a_later_validated_checkpoint_releases_an_earlier_attester(validation, registry, accounts, cluster, pool) -> None:
    """A validator re-executes everything before the checkpoint it endorses, so a validated 30
    covers an attestation of 20 that was never validated itself."""
    posted(validation, registry, accounts, cluster, 20)  # members 1-3
    later = state_at(registry, cluster, 30)
    post(validation, later, signatures(later, domain_of(validation), [2, 3, 4]), sender=accounts.stranger)
    assert validation.last_attested(1) == 20 and validation.last_attested(4) == 30
    set_block(block() + 2)
    validation.draw(cluster, 30, sender=accounts.stranger)
    assert not validation.released(1, cluster)  # nothing validated yet
    for node in drawn_ids(validation, cluster, 30):
        endorse(validation, accounts, cluster, node, 30, later.app_hash)
    assert validation.validated_height(cluster) == 30 and validation.validated_block(cluster, 20) == 0
    assert not validation.released(1, cluster)
    set_block(block() + DISPUTE_WINDOW)
    assert validation.released(1, cluster)


def test_a_cluster_without_validators_releases_on_the_cooling_off_alone(validation, registry, accounts, cluster) -> None:
    """Nothing would ever validate its checkpoints: holding deposits for it would lock them for good."""
    registry.set_validation(validation.address, sender=accounts.owner)
    posted(validation, registry, accounts, cluster, 20)
    assert validation.last_attested(1) == 20 and validation.validators_per_checkpoint(cluster) == 0
    assert validation.released(1, cluster)
    registry.request_leave(1, sender=accounts.operators[0])
    set_block(registry.node(1).withdrawable_block)
    registry.withdraw(1, sender=accounts.operators[0])
