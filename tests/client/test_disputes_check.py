"""The receipt's disputes check: "no open dispute covers height H", or the state is refused
naming the dispute; a freeze voids every result above the last valid checkpoint."""

from __future__ import annotations

from rtc.client.validation import DisputeFact, ValidationStatus
from rtc.client.verify import _Checks, _disputes, _Stop

COURT = "0x" + "c0" * 20


def status(*disputes: DisputeFact, frozen_at: int | None = None, court: str | None = COURT) -> ValidationStatus:
    return ValidationStatus(1, 40, 20, 0, (), court=court, disputes=disputes, frozen_at=frozen_at)


def judge(validation: ValidationStatus | None, height: int = 25):
    checks = _Checks()
    try:
        _disputes(validation, height, checks)
    except _Stop:
        pass
    (check,) = checks.items
    return check


def test_no_dispute_below_the_result_passes_and_says_so() -> None:
    check = judge(status(DisputeFact(1, 30, "open", True), DisputeFact(2, 10, "valid", True)))
    assert check.passed and check.detail == "no open dispute covers height 25"
    assert COURT in check.assumption and "1/3" in check.assumption


def test_an_open_dispute_at_or_below_the_result_refuses_it_by_name() -> None:
    check = judge(status(DisputeFact(3, 25, "open", False)))
    assert not check.passed and check.required and check.kind == "disputed"
    assert "dispute 3 about height 25 is open" in check.detail and "rtc dispute show 3" in check.detail


def test_an_agreed_state_ruled_invalid_refuses_and_a_lone_liars_conviction_does_not() -> None:
    assert "ruled the state there invalid" in judge(status(DisputeFact(4, 12, "invalid", True))).detail
    assert judge(status(DisputeFact(5, 12, "invalid", False))).passed


def test_a_freeze_voids_results_above_the_last_valid_checkpoint_only() -> None:
    check = judge(status(DisputeFact(6, 24, "invalid", True), frozen_at=20))
    assert not check.passed and "dispute 6 ruled" in check.detail and "froze it at height 20" in check.detail
    assert "void" in check.detail
    assert judge(status(frozen_at=20), height=20).passed


def test_without_a_court_or_a_readable_contract_the_receipt_says_what_it_rests_on() -> None:
    none = judge(status(court=None))
    assert none.passed and "names no Disputes contract" in none.detail and "costs the liars nothing" in none.assumption
    unread = judge(None)
    assert not unread.passed and not unread.required and "unknown" in unread.detail
