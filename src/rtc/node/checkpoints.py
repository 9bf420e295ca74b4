"""Posting checkpoints: every K-th height's attestations, from the block that carries them, to
the Validation contract (docs/validation.md).

Any member may post a checkpoint and the contract takes each height once, so the members
take turns: the signers of a height, in address order and rotated by the checkpoint's
number, are due TURN_SECONDS apart, and each posts only if nobody has yet. A member whose
Ethereum endpoint is down or out of funds just misses its turn; the next one posts.

A validated checkpoint covers every block before it (validators re-execute the whole
history up to it), so when several checkpoints are due at once, because blocks come faster
than Ethereum takes transactions, only the newest is posted: under load checkpoints thin
out instead of queueing, and the lag stays bounded.

The member that posted a checkpoint then keeps it: it asks the contract to draw the
validators once the seed block is mined (unless a newer kept checkpoint supersedes it), and
to replace any that let their deadline pass. Anyone may make those calls; the poster makes
them because it wants its cluster validated. This thread never touches consensus: it reads
what the app committed and talks to Ethereum.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from rtc.ethereum.types import ContractRefused
from rtc.ethereum.validation import Validation
from rtc.membership import EthereumSettings
from rtc.protocol.attestation import AttestationTx, address_of, is_attestation_tx

from .attesting import AttestationRules

log = logging.getLogger("rtc.checkpoints")

TURN_SECONDS = 4.0  # how long each member in line waits for the one before it
PENDING = 16  # blocks' attestations not yet looked at (the oldest are dropped: a later checkpoint supersedes them)
TICK_SECONDS = 0.5  # how often due checkpoints are posted and kept ones looked after
KEPT = 64  # checkpoints looked after at once (the oldest is let go)


class CheckpointPoster:
    def __init__(self, url: str, settings: EthereumSettings, rules: AttestationRules, key: bytes,
                 turn_seconds: float = TURN_SECONDS) -> None:
        if settings.validation is None:
            raise ValueError("the cluster names no Validation contract")
        self.url = url
        self.settings = settings
        self.rules = rules
        self.key = key
        self.turn_seconds = turn_seconds
        self._arrived: deque[AttestationTx] = deque(maxlen=PENDING)  # from the app's thread
        self._due: dict[int, tuple[float, AttestationTx]] = {}  # height -> (when this member's turn comes, batch)
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._interval = 0  # the cluster's checkpoint interval, read once the contract has one
        self._kept: deque[int] = deque(maxlen=KEPT)  # heights this member posted, not yet validated

    def committed(self, height: int, txs: list[bytes], results: list[object], app_hash: bytes) -> None:
        """The app's commit listener: picks out the block's attestations (the first or second transaction)."""
        for tx in txs[:2]:
            if is_attestation_tx(tx):
                try:
                    batch = AttestationTx.decode(tx)
                except ValueError:
                    return
                with self._wake:
                    self._arrived.append(batch)
                    self._wake.notify()
                return

    def start(self) -> "CheckpointPoster":
        self._thread = threading.Thread(target=self._run, name="checkpoint-poster", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        validation = Validation.connect(self.url, self.settings.validation or "", private_key=self.key)
        while not self._stop.is_set():
            with self._wake:
                self._wake.wait_for(lambda: self._arrived or self._stop.is_set(), timeout=TICK_SECONDS)
                if self._stop.is_set():
                    return
                arrived = list(self._arrived)
                self._arrived.clear()
            for batch in arrived:
                try:
                    self._schedule(validation, batch)
                except Exception as exc:  # noqa: BLE001 - Ethereum's failures only skip this checkpoint
                    log.warning("checkpoint at height %d not posted by this node: %s", batch.state.height, _short(exc))
            due = [height for height, (when, _) in self._due.items() if when <= time.monotonic()]
            if due:
                newest = max(due)
                batch = self._due[newest][1]
                for height in due:  # the newest supersedes the others
                    del self._due[height]
                try:
                    self._post(validation, batch)
                except Exception as exc:  # noqa: BLE001 - Ethereum's failures only skip this turn
                    log.warning("checkpoint at height %d not posted by this node: %s", newest, _short(exc))
            for height in list(self._kept):
                try:
                    if self._keep(validation, height):
                        self._kept.remove(height)
                except Exception as exc:  # noqa: BLE001 - tried again on the next round
                    log.debug("checkpoint %d: %s", height, _short(exc))

    def _schedule(self, validation: Validation, batch: AttestationTx) -> None:
        """A checkpoint height's attestations: due when this member's turn comes."""
        cluster = self.settings.cluster_id
        if not self._interval:
            self._interval = validation.checkpoint_interval(cluster)
        height = batch.state.height
        if not self._interval or height % self._interval:
            return
        signers = sorted(self.rules.signer(batch.state, signature) for signature in batch.signatures)
        members = validation.member_count(cluster)  # what the contract counts the quorum against
        if 3 * len(signers) <= 2 * members:
            log.warning("height %d: only %d of %d members attested; no checkpoint (the next one may have more)",
                        height, len(signers), members)
            return
        turn = self._turn(signers, height // self._interval)
        self._due[height] = (time.monotonic() + turn * self.turn_seconds, batch)

    def _post(self, validation: Validation, batch: AttestationTx) -> None:
        cluster, height = self.settings.cluster_id, batch.state.height
        if validation.checkpoint(cluster, height) is not None:
            return  # an earlier one in line posted it
        state = batch.state.attestation(self.rules.registry, cluster, self.rules.code_hash)
        posted = validation.post_checkpoint(validation.signer or "", state, list(batch.signatures))
        log.info("checkpoint at height %d posted with %d attestations (Ethereum block %d, %d gas)",
                 height, len(batch.signatures), posted.block, posted.gas_used)
        self._kept.append(height)

    def _keep(self, validation: Validation, height: int) -> bool:
        """Draw the checkpoint's validators or replace its no-shows, as due; True once there is nothing left to do."""
        cluster = self.settings.cluster_id
        slots = validation.drawn(cluster, height)
        sender = validation.signer or ""
        if not slots:
            if any(kept > height for kept in self._kept):
                return True  # a newer checkpoint supersedes it: validating that one covers this one
            try:
                done = validation.draw(sender, cluster, height)
            except ContractRefused as exc:
                if "no validator rules" in str(exc):
                    return True  # the cluster asked for no validators
                raise
            log.info("checkpoint %d: validators drawn (%d gas): %s", height, done.gas_used,
                     [slot.node_id for slot in validation.drawn(cluster, height)])
            return False
        if all(slot.endorsed for slot in slots):
            return True
        now = int(validation.w3.eth.block_number)
        for index, slot in enumerate(slots):
            if not slot.endorsed and now > slot.deadline + 1:  # the block after the deadline seeds the new draw
                done = validation.replace(sender, cluster, height, index)
                newcomer = validation.drawn(cluster, height)[index].node_id
                if newcomer != slot.node_id:
                    log.info("checkpoint %d: validator %d did not endorse by Ethereum block %d; replaced by %d "
                             "(%d gas)", height, slot.node_id, slot.deadline, newcomer, done.gas_used)
        return False

    def _turn(self, signers: list[bytes], number: int) -> int:
        """This member's place in line for checkpoint `number` (the last place if it did not sign)."""
        own = address_of(self.key)
        if own not in signers:
            return len(signers)
        return (signers.index(own) - number) % len(signers)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
