"""Juries and rulings: a jury drawn from a later block's hash (never the cluster's members,
the disputer or the accused validators) commits and reveals; more than 2/3 decides, otherwise
or on appeal a larger jury rules; the ruling slashes whoever was wrong, pays the disputer at
most 10% and burns the rest, freezes a cluster whose agreed state was a lie."""

from __future__ import annotations

import boa

from .dispute_helpers import (
    APPEAL, APPEALING, BOND, BOUNTY_BPS, COMMITTING, DONE, INVALID, JUROR_PENALTY_BPS, MEMBER_PENALTY_BPS, POOL,
    REVEALING, SALT, VALID, Court, commitment_of,
)
from .helpers import EJECTED, MIN_DEPOSIT, block, events, refused, set_block
from .test_disputes_opening import validate
from .validation_helpers import APP_HASH, attester, domain_of, post, signatures, state_at


def lie_validated(court: Court) -> tuple[list[int], int]:
    """Members 1-3 post a checkpoint at 20 and the two validators drawn endorse it: the
    endorsers, and a pool validator that is not one of them, to dispute."""
    state = state_at(court.registry, court.cluster, 20)
    post(court.validation, state, signatures(state, domain_of(court.validation), [1, 2, 3]), court.accounts.stranger)
    set_block(block() + 2)
    court.validation.draw(court.cluster, 20, sender=court.accounts.stranger)
    endorsers = [slot.node_id for slot in court.validation.drawn(court.cluster, 20)]
    for node in endorsers:
        court.validation.endorse(court.cluster, 20, node, APP_HASH, sender=attester(node))
    assert court.validation.validated_height(court.cluster) == 20
    return endorsers, next(n for n in POOL if n not in endorsers)


def penalised(deposit: int, times: int) -> int:
    """A juror's deposit after `times` penalties, each a share of what is left."""
    for _ in range(times):
        deposit -= deposit * JUROR_PENALTY_BPS // 10_000
    return deposit


def invariant(court: Court) -> None:
    registry = court.registry
    assert boa.env.get_balance(registry.address) == (
        registry.total_deposits() + registry.pending_slashed() + registry.total_burned())


def test_a_cartel_is_ruled_invalid_slashed_and_frozen_and_the_disputer_paid_at_most_ten_percent(court: Court) -> None:
    endorsers, disputer = lie_validated(court)
    opened = court.open(signers=(1, 2, 3), disputer=disputer)
    jury = court.round(opened, lambda node: INVALID)
    assert len(jury) == 3 and not set(jury) & {1, 2, 3, 4, disputer, *endorsers}
    d = court.disputes.dispute(opened)
    assert (d.phase, d.tentative) == (APPEALING, INVALID) and d.appeal_deadline == block() + APPEAL
    with refused(f"appeals are open until block {d.appeal_deadline}"):
        court.disputes.advance(opened, sender=court.accounts.stranger)
    court.settle(opened)
    d = court.disputes.dispute(opened)
    slashed = 5 * MIN_DEPOSIT  # three members and two endorsers, 100% each
    bounty = slashed * BOUNTY_BPS // 10_000
    assert (d.status, d.phase, d.slashed, d.bounty) == (INVALID, DONE, slashed, bounty)
    assert [court.deposit(n) for n in (1, 2, 3, *endorsers)] == [0] * 5
    assert court.deposit(4) == MIN_DEPOSIT and all(court.deposit(n) == MIN_DEPOSIT for n in jury)
    assert court.registry.node(1).status == EJECTED and not court.registry.is_active_member(1, court.cluster)
    assert court.validation.frozen(court.cluster) and court.validation.frozen_at(court.cluster) == 0
    assert court.validation.validated_height(court.cluster) == 0
    assert court.disputes.claimable(attester(disputer)) == BOND + bounty
    assert court.disputes.total_burned() == slashed - bounty
    assert boa.env.get_balance(court.disputes.address) == BOND + slashed
    assert all(court.disputes.holds(n) == 0 for n in range(1, 17))
    invariant(court)
    before = boa.env.get_balance(attester(disputer))
    assert court.disputes.claim(sender=attester(disputer)) == BOND + bounty
    assert boa.env.get_balance(attester(disputer)) == before + BOND + bounty
    with refused("nothing to claim"):
        court.disputes.claim(sender=attester(disputer))
    state = state_at(court.registry, court.cluster, 30)
    with refused("the cluster is frozen: a dispute ruled its state invalid"):
        post(court.validation, state, signatures(state, domain_of(court.validation), [4]), court.accounts.stranger)
    with refused("the cluster is frozen already"):
        court.open(height=40, disputer=disputer)


def test_a_lying_validator_that_disputes_a_correct_state_loses_its_bond(court: Court) -> None:
    opened = court.open(signers=(1, 2, 3), disputer=7)
    jury = court.round(opened, lambda node: VALID)
    court.settle(opened)
    d = court.disputes.dispute(opened)
    assert (d.status, d.slashed, d.bounty) == (VALID, 0, 0)
    assert court.disputes.total_burned() == BOND and court.disputes.claimable(attester(7)) == 0
    assert all(court.deposit(n) == MIN_DEPOSIT for n in (1, 2, 3, 7, *jury))
    assert not court.validation.frozen(court.cluster)
    assert all(court.disputes.holds(n) == 0 for n in range(1, 17))


def test_a_member_that_disputes_a_valid_state_loses_part_of_its_deposit(court: Court) -> None:
    opened = court.open(signers=(1, 2, 3), disputer=4, value=0)
    court.round(opened, lambda node: VALID)
    court.settle(opened)
    assert court.deposit(4) == MIN_DEPOSIT - MIN_DEPOSIT * MEMBER_PENALTY_BPS // 10_000
    assert court.disputes.total_burned() == MIN_DEPOSIT * MEMBER_PENALTY_BPS // 10_000


def test_an_honest_member_among_liars_disputes_and_wins(court: Court) -> None:
    opened = court.open(signers=(1, 2, 3), disputer=4, value=0)
    court.round(opened, lambda node: INVALID)
    court.settle(opened)
    assert court.disputes.dispute(opened).status == INVALID
    assert court.deposit(4) == MIN_DEPOSIT and court.validation.frozen(court.cluster)
    assert court.disputes.claimable(attester(4)) == 3 * MIN_DEPOSIT * BOUNTY_BPS // 10_000


def test_one_liar_alone_is_slashed_without_freezing_the_cluster(court: Court) -> None:
    opened = court.open(signers=(2,))
    court.round(opened, lambda node: INVALID)
    court.settle(opened)
    assert court.deposit(2) == 0 and court.deposit(1) == MIN_DEPOSIT
    assert not court.validation.frozen(court.cluster)
    state = state_at(court.registry, court.cluster, 30)
    post(court.validation, state, signatures(state, domain_of(court.validation), [1, 3, 4]), court.accounts.stranger)


def test_no_two_thirds_draws_a_larger_jury_and_the_jurors_against_the_ruling_pay(court: Court) -> None:
    opened = court.open(disputer=7)
    first = court.round(opened, lambda node: {0: INVALID}.get(sorted(court.jury(opened)).index(node), VALID))
    assert court.disputes.dispute(opened).round == 1  # 2 of 3 is not more than 2/3
    dissenter = sorted(first)[0]
    second = court.round(opened, lambda node: VALID if node != max(court.jury(opened)) else (VALID, False))
    assert len(second) == 7
    court.settle(opened)
    assert court.disputes.dispute(opened).status == VALID
    silent = max(second)
    for juror in {dissenter, silent}:  # one penalty each time: against the ruling, or silent
        assert court.deposit(juror) == penalised(MIN_DEPOSIT, 2 if dissenter == silent else 1)
    assert all(court.deposit(n) == MIN_DEPOSIT for n in set(first + second) - {dissenter, silent})


def test_the_whole_pool_rules_by_majority_when_no_jury_reaches_two_thirds(court: Court) -> None:
    opened = court.open(disputer=7)
    split = lambda node: INVALID if sorted(court.jury(opened)).index(node) % 2 == 0 else VALID  # noqa: E731
    assert len(court.round(opened, split)) == 3
    assert len(court.round(opened, split)) == 7
    whole = court.round(opened, split)
    assert len(whole) == len(POOL) - 1  # every eligible validator: the disputer is not one
    d = court.disputes.dispute(opened)
    assert d.whole_pool and d.phase == DONE and d.status == INVALID  # 5 of 9, no appeal left


def test_the_loser_appeals_with_a_growing_bond_and_gets_it_back_when_it_wins(court: Court) -> None:
    opened = court.open(disputer=7)
    court.round(opened, lambda node: INVALID)
    assert court.disputes.appeal_cost(opened) == 2 * BOND
    appellant = court.accounts.operators[0]
    with refused(f"an appeal needs {2 * BOND} wei"):
        court.disputes.appeal(opened, value=BOND, sender=appellant)
    court.disputes.appeal(opened, value=2 * BOND, sender=appellant)
    assert events(court.disputes)[-1] == ("Appealed", {
        "dispute_id": opened, "round": 0, "appellant": appellant, "amount": 2 * BOND, "side": VALID})
    second = court.round(opened, lambda node: VALID)
    assert len(second) == 7
    court.settle(opened)
    assert court.disputes.dispute(opened).status == VALID
    assert court.disputes.claimable(appellant) == 2 * BOND
    assert court.disputes.total_burned() >= BOND
    with refused("the dispute has no ruling to appeal"):
        court.disputes.appeal(opened, value=4 * BOND, sender=appellant)


def test_an_appeal_after_its_deadline_is_refused(court: Court) -> None:
    opened = court.open(disputer=7)
    court.round(opened, lambda node: INVALID)
    set_block(court.disputes.dispute(opened).appeal_deadline + 1)
    with refused("the appeal deadline has passed"):
        court.disputes.appeal(opened, value=2 * BOND, sender=court.accounts.stranger)


def test_a_juror_votes_once_and_reveals_only_what_it_committed(court: Court) -> None:
    opened = court.open(disputer=7)
    jury = court.draw(opened)
    juror, other = jury[0], jury[1]
    outsider = next(n for n in POOL if n not in jury and n != 7)
    with refused("the node is not in this round's jury"):
        court.commit(opened, outsider, INVALID)
    with refused("caller is not the node's attester"):
        court.disputes.commit_vote(opened, juror, b"\x01" * 32, sender=attester(other))
    with refused("the commitment is empty"):
        court.disputes.commit_vote(opened, juror, b"\x00" * 32, sender=attester(juror))
    court.commit(opened, juror, INVALID)
    with refused("the juror committed already"):
        court.commit(opened, juror, VALID)
    with refused("the dispute takes no reveals now"):
        court.reveal(opened, juror, INVALID)
    set_block(court.disputes.dispute(opened).commit_deadline + 1)
    with refused("the commit deadline has passed"):
        court.commit(opened, other, INVALID)
    set_block(court.disputes.dispute(opened).commit_deadline + 2)
    court.disputes.advance(opened, sender=court.accounts.stranger)  # the two that did not commit are replaced
    assert court.disputes.dispute(opened).phase == COMMITTING
    for node in court.jury(opened):
        if node != juror:
            court.commit(opened, node, INVALID)
    court.disputes.advance(opened, sender=court.accounts.stranger)
    assert court.disputes.dispute(opened).phase == REVEALING
    with refused("the vote and salt are not what the juror committed"):
        court.reveal(opened, juror, VALID)
    with refused("the vote and salt are not what the juror committed"):
        court.reveal(opened, juror, INVALID, salt=b"\x01" * 32)
    with refused("a vote is VALID (2) or INVALID (3)"):
        court.disputes.reveal_vote(opened, juror, 1, SALT, sender=attester(juror))
    court.reveal(opened, juror, INVALID)
    with refused("the juror revealed already"):
        court.reveal(opened, juror, INVALID)
    assert commitment_of(opened, 0, juror, INVALID, SALT) == court.disputes.jury(opened, 0)[0].commitment


def test_a_juror_that_does_not_commit_is_replaced_unpunished(court: Court) -> None:
    opened = court.open(disputer=7)
    jury = court.draw(opened)
    absent = jury[2]
    assert court.disputes.holds(absent) == 1
    for node in jury[:2]:
        court.commit(opened, node, INVALID)
    deadline = court.disputes.dispute(opened).commit_deadline
    set_block(deadline + 1)
    with refused("the replacements' seed block is not mined yet: call in the next block"):
        court.disputes.advance(opened, sender=court.accounts.stranger)
    set_block(deadline + 2)
    court.disputes.advance(opened, sender=court.accounts.stranger)
    (name, fields), = events(court.disputes)
    assert name == "JurorDrawn" and fields["replaced"] == absent and fields["slot"] == 2
    newcomer = fields["node_id"]
    assert newcomer not in jury and court.jury(opened) == [*jury[:2], newcomer]
    assert court.disputes.holds(absent) == 0 and court.disputes.holds(newcomer) == 1
    assert court.disputes.dispute(opened).commit_deadline == block() + 5
    court.commit(opened, newcomer, INVALID)
    court.disputes.advance(opened, sender=court.accounts.stranger)
    for node in court.jury(opened):
        court.reveal(opened, node, INVALID)
    court.disputes.advance(opened, sender=court.accounts.stranger)
    court.settle(opened)
    assert court.deposit(absent) == MIN_DEPOSIT


def test_a_juror_that_commits_and_does_not_reveal_is_penalised(court: Court) -> None:
    opened = court.open(disputer=7)
    silent = []
    first = court.round(opened, lambda node: (INVALID, False) if not silent and not silent.append(node) else INVALID)
    assert court.disputes.dispute(opened).round == 1  # 2 of 3 revealed: not more than 2/3 of the jury
    second = court.round(opened, lambda node: INVALID if node != silent[0] else (INVALID, False))
    court.settle(opened)
    assert court.disputes.dispute(opened).status == INVALID
    assert court.deposit(silent[0]) == penalised(MIN_DEPOSIT, 2 if silent[0] in second else 1)
    assert all(court.deposit(n) == MIN_DEPOSIT for n in set(first + second) - {silent[0]})


def test_the_jury_is_never_the_clusters_members_even_when_they_enrolled(court: Court) -> None:
    for member in (1, 2, 3, 4):
        court.validation.enroll(member, sender=court.accounts.operators[member - 1])
    for height in (21, 22, 23, 24, 25):
        opened = court.open(height=height, disputer=7 + height - 21)
        assert not set(court.draw(opened)) & {1, 2, 3, 4, 7 + height - 21}


def test_a_seed_block_ethereum_forgot_is_rearmed_on_a_future_block(court: Court) -> None:
    opened = court.open(disputer=7)
    seed = court.disputes.dispute(opened).seed_block
    with refused(f"the jury's seed block {seed} is not mined yet"):
        court.disputes.advance(opened, sender=court.accounts.stranger)
    set_block(seed + 300)
    court.disputes.advance(opened, sender=court.accounts.stranger)
    assert events(court.disputes)[-1] == ("DrawRearmed", {"dispute_id": opened, "seed_block": block() + 1})
    assert court.jury(opened) == [] and court.disputes.dispute(opened).seed_block == block() + 1
    assert len(court.draw(opened)) == 3


def test_two_disputes_of_one_cluster_both_settle_and_the_freeze_keeps_the_lower_base(court: Court) -> None:
    """Found on a devnet: a second dispute, opened before the first was settled, could never settle
    (freezing an already frozen cluster reverted), holding its accused and jurors for ever."""
    validate(court, 10)
    endorsers = {slot.node_id for slot in court.validation.drawn(court.cluster, 10)}
    first, second = [n for n in POOL if n not in endorsers][:2]
    later = court.open(height=16, base=10, disputer=first)
    earlier = court.open(height=14, base=0, disputer=second)
    for opened in (later, earlier):
        court.round(opened, lambda node: INVALID)
        court.settle(opened)
        assert court.disputes.dispute(opened).status == INVALID
    assert court.validation.frozen_at(court.cluster) == 0
    assert all(court.disputes.holds(n) == 0 for n in range(1, 17))


def test_a_liar_that_turns_on_its_cartel_is_slashed_with_it(court: Court) -> None:
    """Found by review: the contract refused the disputer's own attestation as evidence, so a
    member of a cartel could dispute the lie it had signed, keep its deposit and take the bounty."""
    opened = court.open(signers=(1, 2, 3), disputer=3, value=0)
    assert sorted(court.disputes.accused(opened)) == [1, 2, 3]
    court.round(opened, lambda node: INVALID)
    court.settle(opened)
    assert [court.deposit(n) for n in (1, 2, 3)] == [0, 0, 0]
    slashed = 3 * MIN_DEPOSIT
    assert court.disputes.claimable(attester(3)) == slashed * BOUNTY_BPS // 10_000 < MIN_DEPOSIT
