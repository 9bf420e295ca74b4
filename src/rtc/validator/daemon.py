"""`rtc validator run`: watch the Validation contract for this node's draws, re-execute, endorse.

The daemon's home holds `validator.json` (its Ethereum endpoint, the contracts, its Swarm
and its node id in the Registry), its attester key (`config/attester_key`, the address it
endorses from, registered with `Registry.set_attester`), one replica per cluster it
validated (`clusters/<id>/`), the evidence of every disagreement (`evidence/`), and how far
it read the contract's events (`cursor.json`).

Every failure of its own (Ethereum or Swarm down, a record not uploaded yet, out of disk)
means "cannot judge yet": it logs once, waits and tries again while the deadline lasts. A
drawn validator that misses its deadline is replaced, not slashed. Nothing is endorsed
that this daemon did not re-execute.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rtc.cometbft import NodeHome
from rtc.ethereum.registry import Registry
from rtc.ethereum.validation import Assignment, Validation
from rtc.node.attesting import ATTESTER_KEY_NAME  # a validator keeps its attester key where a node does
from rtc.swarm import Swarm

from .replica import CannotJudge, ClusterSource, Judgement, Replica

log = logging.getLogger("rtc.validator")

CONFIG_NAME = "validator.json"
CURSOR_NAME = "cursor.json"
POLL_SECONDS = 1.0
LOOKBACK_BLOCKS = 10_000  # how far back a fresh daemon looks for draws it missed


@dataclass
class ValidatorConfig:
    eth_rpc: str
    registry: str
    validation: str
    swarm: str  # a folder (the embedded store) or a Bee API URL
    node_id: int
    swarm_batch: str | None = None

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
        self._open: dict[tuple[int, int], Open] = {}
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
            self._cursor = latest
            self._save_cursor()
        answered = [key for key in sorted(self._open) if self._answer(self._open[key], latest)]
        for key in answered:
            del self._open[key]
        if answered:
            self._save_cursor()

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

    # -- where it left off -----------------------------------------------------------------

    def _load_cursor(self) -> int:
        path = self.home / CURSOR_NAME
        if not path.exists():
            return 0
        saved = json.loads(path.read_text())
        for fields in saved.get("open", []):
            assignment = Assignment(**fields)
            self._open[(assignment.cluster_id, assignment.height)] = Open(assignment, time.monotonic())
        return int(saved["block"])

    def _save_cursor(self) -> None:
        partial = self.home / (CURSOR_NAME + ".partial")
        partial.write_text(json.dumps({"block": self._cursor,
                                       "open": [asdict(o.assignment) for _, o in sorted(self._open.items())]}))
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
