"""The validator daemon's own failures are "cannot judge yet", never a verdict: with Ethereum down
it waits and says so once, and it resumes the draws it had open after a restart."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from pathlib import Path

import pytest

from rtc.ethereum.validation import Assignment
from rtc.swarm import ChunkInvalid, LocalSwarm, Swarm
from rtc.validator import ValidatorConfig, ValidatorDaemon


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "validator"
    ValidatorConfig(eth_rpc="http://127.0.0.1:9", registry="0x" + "11" * 20, validation="0x" + "22" * 20,
                    swarm=str(tmp_path / "swarm"), node_id=7).save(home)
    return home


def test_with_ethereum_down_it_waits_says_so_once_and_judges_nothing(home: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    swarm = LocalSwarm.open(tmp_path / "swarm")
    daemon = ValidatorDaemon(home, swarm, poll_seconds=0.05)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    with caplog.at_level(logging.WARNING, logger="rtc.validator"):
        runner.start()
        threading.Event().wait(1.0)
        stop.set()
        runner.join(timeout=10)
    swarm.close()
    assert not runner.is_alive()
    warnings = [r.getMessage() for r in caplog.records if "cannot reach Ethereum" in r.getMessage()]
    assert len(warnings) == 1 and "nothing is judged" in warnings[0]
    assert daemon.judgements == []


def test_a_restarted_daemon_reopens_the_draws_it_had_not_answered(home: Path, tmp_path: Path) -> None:
    open_draw = Assignment(cluster_id=1, height=20, node_id=7, slot=1, deadline=500, block=480)
    (home / "cursor.json").write_text(json.dumps({"block": 490, "open": [asdict(open_draw)]}))
    swarm = LocalSwarm.open(tmp_path / "swarm")
    try:
        daemon = ValidatorDaemon(home, swarm)
        assert daemon.open_draws == [open_draw] and daemon.read_up_to == 490
    finally:
        swarm.close()


class _LyingSwarm(Swarm):
    """A Swarm node whose answers do not match their addresses (what LocalSwarm and BeeSwarm
    report as ChunkInvalid after checking every chunk)."""

    def download(self, reference: bytes) -> bytes:
        raise ChunkInvalid(f"chunk {reference.hex()[:8]} does not hash to its address")


def test_a_chunk_that_does_not_match_its_address_is_a_reason_to_wait_not_a_verdict(tmp_path: Path) -> None:
    from rtc.validator import CannotJudge, ClusterSource, Replica

    replica = Replica(tmp_path / "replica", _LyingSwarm(), ClusterSource(1, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32))
    with pytest.raises(CannotJudge, match="not matching its address"):
        replica.judge(10, b"\x04" * 32, b"\x05" * 32, 10)


class _Court:
    """The Disputes contract as a juror's daemon uses it, recording the commitments sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int, bytes]] = []

    def rules(self):
        from rtc.ethereum.disputes import DisputeRules

        return DisputeRules(bond_wei=1, jury_size=3, commit_blocks=5, reveal_blocks=5, appeal_blocks=2,
                            availability_blocks=20)

    def commit_vote(self, attester: str, dispute_id: int, node_id: int, commitment: bytes) -> None:
        self.sent.append((dispute_id, node_id, commitment))


class _Unavailable:
    """A replica whose records are not in Swarm."""

    def judge(self, *args: object) -> None:
        from rtc.validator import CannotJudge

        raise CannotJudge("the checkpoint's record is not in Swarm yet: chunk not found")


def test_a_juror_waits_for_missing_history_until_the_availability_deadline_then_votes_invalid(
        home: Path, tmp_path: Path) -> None:
    """The accused owe their history: missing from Swarm is "cannot judge yet" until the contract's
    availability deadline, then INVALID; the vote and its salt are saved before the commitment is
    sent, so a restarted juror reveals what it committed."""
    from rtc.ethereum.disputes import INVALID, DisputeState, commitment
    from rtc.validator.daemon import JurySeat

    dispute = DisputeState(3, 1, 20, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 0, 8, "0x" + "33" * 20, 1, False,
                           100, 1, 2, 0, 101, 110, 0, 0, 0, False, 0, 4, True, 0, 0)
    swarm = LocalSwarm.open(tmp_path / "swarm")
    try:
        daemon = ValidatorDaemon(home, swarm)
        daemon._replicas[1] = _Unavailable()
        daemon.validation.checkpoint_interval = lambda cluster: 10
        court, seat = _Court(), JurySeat(3, 0)
        daemon._seats[(3, 0)] = seat
        daemon._commit(court, seat, dispute, latest=110)  # within the availability deadline (block 120)
        assert court.sent == [] and not seat.vote and "not in Swarm" in seat.reason
        daemon._commit(court, seat, dispute, latest=121)
        assert seat.vote == INVALID and seat.committed
        assert court.sent == [(3, 7, commitment(3, 0, 7, INVALID, bytes.fromhex(seat.salt)))]
        restarted = ValidatorDaemon(home, swarm)
        assert restarted._seats[(3, 0)] == seat  # the salt survives a restart: the reveal matches
    finally:
        swarm.close()


def test_a_seat_a_reorg_took_away_is_given_up(home: Path, tmp_path: Path) -> None:
    """After a reorg the dispute may not exist, or its jury may be another: the daemon drops the
    seat instead of committing or revealing for it."""
    from rtc.ethereum.disputes import DisputeState, Juror
    from rtc.validator.daemon import JurySeat

    class Court(_Court):
        def dispute(self, dispute_id: int):
            if dispute_id == 1:
                return None  # reorged away with the transaction that opened it
            return DisputeState(dispute_id, 1, 20, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 0, 8, "0x" + "33" * 20, 1,
                                False, 100, 1, 2, 0, 101, 110, 0, 0, 0, False, 0, 4, True, 0, 0)

        def jury(self, dispute_id: int, round_: int):
            return [Juror(9, False, 0), Juror(10, False, 0)]  # drawn again, without this node (7)

        def due(self, dispute, latest: int) -> bool:
            return False

    swarm = LocalSwarm.open(tmp_path / "swarm")
    try:
        daemon = ValidatorDaemon(home, swarm)
        daemon._seats = {(1, 0): JurySeat(1, 0), (2, 0): JurySeat(2, 0)}
        court = Court()
        daemon._serve_on_juries(court, latest=105)
        assert daemon._seats == {} and court.sent == []
    finally:
        swarm.close()
