"""`rtc validator run`: watch the Validation contract for this node's draws, re-execute, endorse
or dispute; sit on the juries the Disputes contract draws it for.

The daemon's home holds `validator.json` (its Ethereum endpoint, the contracts, its Swarm
and its node id in the Registry), its attester key (`config/attester_key`, the address it
endorses from, registered with `Registry.set_attester`), one replica per cluster it
validated (`clusters/<id>/`), the evidence of every disagreement (`evidence/`), and how far
it read the contract's events (`cursor.json`).

Every failure of its own (Ethereum or Swarm down, a record not uploaded yet, out of disk)
means "cannot judge yet": it logs once, waits and tries again while the deadline lasts. A
drawn validator that misses its deadline is replaced, not slashed. Nothing is endorsed
that this daemon did not re-execute. A checkpoint that re-executes to another state is
disputed at once (with the members' signatures from the checkpoint's transaction, the
state this daemon computed, and the last validated checkpoint as the base). As a juror it
re-executes the disputed height the same way and commits VALID or INVALID with a salt it
saves first (so that a restart can still reveal); history still missing from Swarm after
the contract's availability deadline is INVALID (the accused owe it), before it "cannot
judge yet". It moves every open dispute on (`advance`) when a deadline passed: at once one it
takes part in, others after ADVANCE_GRACE_BLOCKS (a disputer that walks away must not hold
clients' results in doubt for ever).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rtc.cometbft import NodeHome
from rtc.ethereum.disputes import COMMIT, INVALID, OPEN, REVEAL, VALID, Disputes, DisputeState, commitment, new_salt
from rtc.ethereum.registry import Registry
from rtc.ethereum.types import ContractRefused
from rtc.ethereum.validation import Assignment, CheckpointState, Validation
from rtc.protocol.attestation import Attestation
from rtc.node.attesting import ATTESTER_KEY_NAME  # a validator keeps its attester key where a node does
from rtc.swarm import Swarm

from .replica import CannotJudge, ClusterSource, Judgement, Replica

log = logging.getLogger("rtc.validator")

CONFIG_NAME = "validator.json"
CURSOR_NAME = "cursor.json"
POLL_SECONDS = 1.0
LOOKBACK_BLOCKS = 10_000  # how far back a fresh daemon looks for draws it missed
ADVANCE_GRACE_BLOCKS = 3  # blocks a due dispute waits for its own participants before others move it on


@dataclass
class ValidatorConfig:
    eth_rpc: str
    registry: str
    validation: str
    swarm: str  # a folder (the embedded store) or a Bee API URL
    node_id: int
    swarm_batch: str | None = None
    disputes: str = ""  # the Disputes contract (empty: this validator only endorses)

    def save(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        (home / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, home: Path) -> "ValidatorConfig":
        path = home / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is {home} a validator home (`rtc devnet up --validators N` "
                                    "makes them)?")
        return cls(**json.loads(path.read_text()))


def attester_key(home: Path) -> bytes:
    """The validator's attester key, made on first use (owner-only)."""
    return NodeHome(home).secret_key(ATTESTER_KEY_NAME)


@dataclass(frozen=True)
class Open:
    """A draw this daemon still has to answer."""

    assignment: Assignment
    waiting_since: float
    reason: str = ""  # why it cannot judge yet (logged once per reason)


@dataclass
class JurySeat:
    """A jury seat this daemon holds: its vote and salt are saved before the commit is sent."""

    dispute_id: int
    round: int
    vote: int = 0  # VALID or INVALID once judged
    salt: str = ""
    committed: bool = False
    revealed: bool = False
    reason: str = ""  # why it cannot judge yet (logged once per reason)


class ValidatorDaemon:
    def __init__(self, home: Path, swarm: Swarm, poll_seconds: float = POLL_SECONDS) -> None:
        self.home = home
        self.config = ValidatorConfig.load(home)
        self.swarm = swarm
        self.poll_seconds = poll_seconds
        key = attester_key(home)
        self.validation = Validation.connect(self.config.eth_rpc, self.config.validation, private_key=key)
        self.registry = Registry.connect(self.config.eth_rpc, self.config.registry)
        self.attester = self.validation.signer or ""
        self.disputes = (Disputes.connect(self.config.eth_rpc, self.config.disputes, private_key=key)
                         if self.config.disputes else None)
        self._open: dict[tuple[int, int], Open] = {}
        self._seats: dict[tuple[int, int], JurySeat] = {}
        self._disputed: set[int] = set()  # disputes this daemon opened
        self._watched: set[int] = set()  # every open dispute, moved on until settled
        self._replicas: dict[int, Replica] = {}
        self._cursor = self._load_cursor()  # also reopens the draws a previous run had not answered
        self._ethereum_down = False
        self.judgements: list[Judgement] = []  # what this daemon decided, newest last (also in the log)

    @property
    def open_draws(self) -> list[Assignment]:
        """The draws this daemon still has to answer, oldest checkpoint first."""
        return [self._open[key].assignment for key in sorted(self._open)]

    @property
    def read_up_to(self) -> int:
        """The Ethereum block up to which it has read the contract's draws."""
        return self._cursor

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("validator node %d (attester %s) watching Validation %s", self.config.node_id, self.attester,
                 self.config.validation)
        while not stop.is_set():
            try:
                self.step()
                if self._ethereum_down:
                    log.info("Ethereum answers again; validating resumes")
                    self._ethereum_down = False
            except OSError as exc:  # requests' connection failures are OSErrors
                if not self._ethereum_down:
                    log.warning("cannot reach Ethereum at %s (%s); waiting, nothing is judged meanwhile",
                                self.config.eth_rpc, _short(exc))
                    self._ethereum_down = True
            except Exception as exc:  # noqa: BLE001 - a refused transaction, a bad answer: try again next round
                log.warning("validator step failed (%s); trying again", _short(exc))
            stop.wait(self.poll_seconds)

    def step(self) -> None:
        latest = int(self.validation.w3.eth.block_number)
        start = self._cursor + 1 if self._cursor else max(0, latest - LOOKBACK_BLOCKS)
        if latest >= start:
            for assignment in self.validation.assignments(self.config.node_id, start, latest):
                key = (assignment.cluster_id, assignment.height)
                self._open[key] = Open(assignment, time.monotonic())
                log.info("drawn for checkpoint %d of cluster %d (deadline: Ethereum block %d)", assignment.height,
                         assignment.cluster_id, assignment.deadline)
            if self.disputes is not None:
                self._watched.update(self.disputes.opened(start, latest))
                for seat in self.disputes.seats(self.config.node_id, start, latest):
                    self._seats.setdefault((seat.dispute_id, seat.round), JurySeat(seat.dispute_id, seat.round))
                    log.info("drawn as a juror of dispute %d, round %d", seat.dispute_id, seat.round)
            self._cursor = latest
            self._save_cursor()
        answered = [key for key in sorted(self._open) if self._answer(self._open[key], latest)]
        for key in answered:
            del self._open[key]
        if answered:
            self._save_cursor()
        if self.disputes is not None:
            self._serve_on_juries(self.disputes, latest)

    def _answer(self, open_: Open, latest: int) -> bool:
        """Judge and endorse one draw; True once it needs nothing more from this daemon."""
        assignment = open_.assignment
        cluster, height = assignment.cluster_id, assignment.height
        slots = self.validation.drawn(cluster, height)
        ours = [slot for slot in slots if slot.node_id == self.config.node_id]
        if not ours or ours[0].endorsed:
            return True  # replaced, or answered already
        if latest > ours[0].deadline:
            log.warning("checkpoint %d of cluster %d: the deadline passed before this validator could judge it (%s)",
                        height, cluster, open_.reason or "no reason recorded")
            return True
        checkpoint = self.validation.checkpoint(cluster, height)
        if checkpoint is None:
            return True
        try:
            replica = self._replica(cluster)
            judgement = replica.judge(height, checkpoint.record, checkpoint.app_hash,
                                      self.validation.checkpoint_interval(cluster))
        except CannotJudge as exc:
            if str(exc) != open_.reason:
                log.warning("checkpoint %d of cluster %d: cannot judge yet: %s", height, cluster, exc)
                self._open[(cluster, height)] = Open(assignment, open_.waiting_since, str(exc))
            return False
        self.judgements.append(judgement)
        if not judgement.agrees:
            self._hold_evidence(judgement, checkpoint.record, checkpoint.app_hash)
            self._dispute(judgement, checkpoint)
            return True
        done = self.validation.endorse(self.attester, cluster, height, self.config.node_id, judgement.app_hash)
        log.info("checkpoint %d of cluster %d: re-executed %d blocks, app_hash %s… matches; endorsed "
                 "(Ethereum block %d, %d gas)", height, cluster, judgement.replayed, judgement.app_hash.hex()[:16],
                 done.block, done.gas_used)
        return True

    def _replica(self, cluster: int) -> Replica:
        if cluster not in self._replicas:
            code_reference, code_hash = self.registry.code_of(cluster)
            genesis = self.validation.validator_rules(cluster)[2]
            if not any(genesis):
                raise CannotJudge("the cluster names no genesis for validators (Validation.set_validator_rules)")
            source = ClusterSource(cluster, code_reference, code_hash, genesis)
            self._replicas[cluster] = Replica(self.home / "clusters" / str(cluster), self.swarm, source)
        return self._replicas[cluster]

    def _hold_evidence(self, judgement: Judgement, record: bytes, app_hash: bytes) -> None:
        folder = self.home / "evidence"
        folder.mkdir(exist_ok=True)
        path = folder / f"cluster-{judgement.cluster_id}-height-{judgement.height}.json"
        path.write_text(json.dumps({**judgement.to_json(), "checkpoint_record": record.hex(),
                                    "checkpoint_app_hash": app_hash.hex()}, indent=2, sort_keys=True) + "\n")
        log.error("checkpoint %d of cluster %d does not re-execute: %s; not endorsed, evidence in %s",
                  judgement.height, judgement.cluster_id, judgement.detail, path)

    # -- disputes ------------------------------------------------------------------------

    def _dispute(self, judgement: Judgement, checkpoint: CheckpointState) -> None:
        """Dispute a checkpoint this daemon re-executed to another state, with the members'
        signatures it was posted with; the bond comes from the attester's account."""
        if self.disputes is None or not any(judgement.app_hash):
            return  # no court, or no state of its own to claim (a malformed record): the evidence stays on disk
        cluster, height = checkpoint.cluster_id, checkpoint.height
        _, code_hash = self.registry.code_of(cluster)
        state = Attestation(bytes.fromhex(self.config.registry[2:]), cluster, height, checkpoint.app_hash,
                            checkpoint.record, code_hash)
        opened = self.disputes.dispute_unless_disputed(
            self.attester, self.validation, state, self.validation.checkpoint_signatures(cluster, height),
            judgement.app_hash, self.config.node_id, self.disputes.rules().bond_wei)
        if opened is None:
            return
        dispute_id, posted = opened
        self._disputed.add(dispute_id)
        self._save_cursor()
        log.error("checkpoint %d of cluster %d: opened dispute %d (claimed app_hash %s…, from validated height %d; "
                  "Ethereum block %d, %d gas)", height, cluster, dispute_id, judgement.app_hash.hex()[:16],
                  self.disputes.dispute(dispute_id).base, posted.block, posted.gas_used)

    def _serve_on_juries(self, disputes: Disputes, latest: int) -> None:
        for key in sorted(self._seats):
            seat = self._seats[key]
            dispute = disputes.dispute(seat.dispute_id)
            if dispute is None or dispute.status != OPEN or dispute.round != seat.round:
                del self._seats[key]
                continue
            jurors = [j for j in disputes.jury(seat.dispute_id, seat.round) if j.node_id == self.config.node_id]
            if not jurors:  # replaced
                del self._seats[key]
                continue
            if dispute.phase == COMMIT and not seat.committed:
                self._commit(disputes, seat, dispute, latest)
            elif dispute.phase == REVEAL and seat.committed and not seat.revealed:
                disputes.reveal_vote(self.attester, seat.dispute_id, self.config.node_id, seat.vote,
                                     bytes.fromhex(seat.salt))
                seat.revealed = True
                self._save_cursor()
                log.info("dispute %d: revealed %s", seat.dispute_id, "VALID" if seat.vote == VALID else "INVALID")
        ours = {key[0] for key in self._seats} | self._disputed
        for dispute_id in sorted(self._watched | ours):
            dispute = disputes.dispute(dispute_id)
            if dispute is None or dispute.status != OPEN:
                if dispute is not None and dispute_id in ours:
                    log.info("dispute %d settled: the attested state is %s", dispute_id, dispute.status_name)
                self._disputed.discard(dispute_id)
                self._watched.discard(dispute_id)
                continue
            if disputes.due(dispute, latest - (0 if dispute_id in ours else ADVANCE_GRACE_BLOCKS)):
                try:
                    disputes.advance(self.attester, dispute_id)
                except ContractRefused:
                    pass  # another participant moved it on first, or it is not due after all

    def _commit(self, disputes: Disputes, seat: JurySeat, dispute: DisputeState, latest: int) -> None:
        if not seat.vote:
            try:
                judgement = self._replica(dispute.cluster_id).judge(
                    dispute.height, dispute.record, dispute.attested_app_hash,
                    self.validation.checkpoint_interval(dispute.cluster_id))
                seat.vote = VALID if judgement.agrees else INVALID
                log.info("dispute %d: re-executed height %d of cluster %d: %s", seat.dispute_id, dispute.height,
                         dispute.cluster_id, "the attested state is right" if judgement.agrees else judgement.detail)
            except CannotJudge as exc:
                if "not in Swarm" in str(exc) and latest > dispute.opened_block + disputes.rules().availability_blocks:
                    seat.vote = INVALID  # the accused owe the history: still missing after the deadline
                    log.warning("dispute %d: the history is still not in Swarm after the availability deadline: "
                                "INVALID", seat.dispute_id)
                else:
                    if str(exc) != seat.reason:
                        log.warning("dispute %d: cannot judge yet: %s", seat.dispute_id, exc)
                        seat.reason = str(exc)
                    return
            seat.salt = new_salt().hex()
            self._save_cursor()  # vote and salt on disk before the commitment is sent
        disputes.commit_vote(self.attester, seat.dispute_id, self.config.node_id,
                             commitment(seat.dispute_id, seat.round, self.config.node_id, seat.vote,
                                        bytes.fromhex(seat.salt)))
        seat.committed = True
        self._save_cursor()
        log.info("dispute %d: committed a hidden vote", seat.dispute_id)

    # -- where it left off -----------------------------------------------------------------

    def _load_cursor(self) -> int:
        path = self.home / CURSOR_NAME
        if not path.exists():
            return 0
        saved = json.loads(path.read_text())
        for fields in saved.get("open", []):
            assignment = Assignment(**fields)
            self._open[(assignment.cluster_id, assignment.height)] = Open(assignment, time.monotonic())
        for fields in saved.get("seats", []):
            seat = JurySeat(**fields)
            self._seats[(seat.dispute_id, seat.round)] = seat
        self._disputed = set(saved.get("disputed", []))
        self._watched = set(saved.get("watched", []))
        return int(saved["block"])

    def _save_cursor(self) -> None:
        partial = self.home / (CURSOR_NAME + ".partial")
        partial.write_text(json.dumps({"block": self._cursor,
                                       "open": [asdict(o.assignment) for _, o in sorted(self._open.items())],
                                       "seats": [asdict(seat) for _, seat in sorted(self._seats.items())],
                                       "disputed": sorted(self._disputed), "watched": sorted(self._watched)}))
        partial.replace(self.home / CURSOR_NAME)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def run_validator(home: Path) -> int:
    """Run the daemon of the validator at `home` until SIGTERM or SIGINT."""
    import signal

    from rtc.history.config import open_swarm

    config = ValidatorConfig.load(home)
    swarm = open_swarm(config.swarm, config.swarm_batch, home)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        ValidatorDaemon(home, swarm).run(stop)
    finally:
        swarm.close()
    return 0
