"""The client's judgement of members' attestations (rtc.client.validation.judge_attestations): pure,
so every refusal is checked here with real signatures; the live path is in tests/cluster/test_validation.py."""

from __future__ import annotations

import hashlib

import pytest

from rtc.client.validation import AttestationFacts, ValidationStatus, judge_attestations
from rtc.cometbft.lightclient import VerificationError
from rtc.protocol.attestation import AttestationDomain, AttestationTx, AttestedState, address_of

KEYS = [hashlib.sha256(b"attester %d" % i).digest() for i in range(6)]  # 0-3 members, 4-5 outsiders
DOMAIN = AttestationDomain(31337, b"\x22" * 20)
FACTS = AttestationFacts(b"\x11" * 20, 3, b"\xcc" * 32, DOMAIN, tuple(address_of(k) for k in KEYS[:4]), 4, 100)
STATE = AttestedState(41, b"\xaa" * 32, b"\xbb" * 32)


def tx(signers: list[int], state: AttestedState = STATE, facts: AttestationFacts = FACTS) -> bytes:
    attestation = state.attestation(facts.registry, facts.cluster_id, facts.code_hash)
    signatures = sorted((address_of(KEYS[i]), attestation.sign(KEYS[i], facts.domain)) for i in signers)
    return AttestationTx(state, tuple(signature for _, signature in signatures)).encode()


def test_three_of_four_members_attesting_the_verified_state_pass() -> None:
    report = judge_attestations(FACTS, tx([0, 1, 3]), 41, STATE.app_hash)
    assert report.signers == tuple(sorted(address_of(KEYS[i]) for i in (0, 1, 3))) and report.record == STATE.record


@pytest.mark.parametrize("case", ["too few", "outsiders", "another state", "another height", "another cluster",
                                  "another contract", "garbage"])
def test_attestations_that_do_not_hold_are_refused(case: str) -> None:
    other = AttestationFacts(FACTS.registry, 4, FACTS.code_hash, DOMAIN, FACTS.attesters, 4, 100)
    moved = AttestationFacts(FACTS.registry, 3, FACTS.code_hash, AttestationDomain(31337, b"\x23" * 20),
                             FACTS.attesters, 4, 100)
    given, height, app_hash = {
        "too few": (tx([0, 1]), 41, STATE.app_hash),
        "outsiders": (tx([0, 4, 5]), 41, STATE.app_hash),  # only one member among them
        "another state": (tx([0, 1, 2]), 41, b"\x01" * 32),  # not the app_hash the client verified
        "another height": (tx([0, 1, 2]), 40, STATE.app_hash),
        "another cluster": (tx([0, 1, 2], facts=other), 41, STATE.app_hash),  # signed for cluster 4
        "another contract": (tx([0, 1, 2], facts=moved), 41, STATE.app_hash),
        "garbage": (b"ATT\x01" + bytes(80), 41, STATE.app_hash),
    }[case]
    with pytest.raises(VerificationError) as raised:
        judge_attestations(FACTS, given, height, app_hash)
    assert raised.value.kind == "attestations"


def test_a_result_is_validated_when_its_block_is_at_or_below_validated_height() -> None:
    status = ValidationStatus(3, head_height=57, validated_height=50, lag_txs=2, checkpoints=())
    assert status.lag_blocks == 7 and status.covers(50) and status.covers(1) and not status.covers(51)
    assert not ValidationStatus(3, 10, 0, 0, ()).covers(0)
