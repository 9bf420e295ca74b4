"""Session ordering in consensus state: call k of a session runs only after call k-1.

Everything here lives in the authenticated state (`rtc.protocol.keys` names where), so
every node buffers, runs, fails and expires sessions identically, and every status can
be proven to a light client. Time is counted in blocks, never on a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from rtc.protocol import (
    Code, Envelope, Kind, ResultRecord, SessionRecord, SessionStatus, Status, decode, keys, tx_digest,
)

# State writes that ending sessions may cost per block; sessions due beyond it wait for
# the next block (still deterministic), so no block can be made arbitrarily expensive.
END_BLOCK_WRITE_BUDGET = 10_000


class KeyValue(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def set(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]: ...


@dataclass(frozen=True)
class SessionRules:
    """Cluster-wide bounds; part of the cluster settings, identical on every node."""

    max_buffered: int = 64  # early calls waiting per session; also how far ahead a counter may run
    # A missing predecessor fails the session after this many blocks. 80 covers a client's
    # failover and resend (docs/protocol.md §4): clients resend a call not in a block after an
    # eighth of it (10 blocks), so it lands several times over before the deadline; about 8 s
    # at the 10 blocks/s a loopback cluster can reach, far longer when blocks come slower.
    gap_timeout_blocks: int = 80
    idle_expiry_blocks: int = 10_000  # a session with no activity expires after this many blocks

    def __post_init__(self) -> None:
        if not 1 <= self.max_buffered <= 1024:
            raise ValueError("max_buffered must be between 1 and 1024")
        if not 1 <= self.gap_timeout_blocks < self.idle_expiry_blocks:
            raise ValueError("gap_timeout_blocks must be at least 1 and less than idle_expiry_blocks")


class Refused(Exception):
    """The transaction cannot enter the session; nothing is written. `code` names the rule."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


# Runs one call whose turn has come and says what it gave (a record not yet stamped with
# the block, `ResultRecord.at`); the caller applies the call's writes only if it succeeded.
Runner = Callable[[Envelope], ResultRecord]
Written = list[tuple[int, ResultRecord]]


class Sessions:
    """The rules of one block's session bookkeeping over the block's state overlay."""

    def __init__(self, kv: KeyValue, rules: SessionRules = SessionRules()) -> None:
        self.kv = kv
        self.rules = rules

    # -- reading ---------------------------------------------------------------------

    def record(self, session: bytes) -> SessionRecord | None:
        raw = self.kv.get(keys.session_key(session))
        return None if raw is None else SessionRecord.decode(raw)

    def check(self, envelope: Envelope) -> None:
        """The admission rules alone (for CheckTx): raises Refused, writes nothing."""
        self._admit(envelope, self.record(envelope.session_key))

    def _admit(self, envelope: Envelope, record: SessionRecord | None) -> None:
        next_counter = 0 if record is None else record.next
        k = envelope.counter
        if record is not None and not record.open:
            raise Refused(Code.SESSION_ENDED, f"session is {record.status}: {record.reason}")
        if k < next_counter:
            raise Refused(Code.DUPLICATE, f"counter {k} of this session was already used (next is {next_counter})")
        if k > next_counter:
            if self.kv.get(keys.queue_key(envelope.session_key, k)) is not None:
                raise Refused(Code.DUPLICATE, f"counter {k} is already waiting in this session")
            if k - next_counter > self.rules.max_buffered:
                raise Refused(Code.TOO_EARLY,
                              f"counter {k} is more than {self.rules.max_buffered} ahead of the next one ({next_counter})")
            if record is not None and record.buffered >= self.rules.max_buffered:
                raise Refused(Code.TOO_EARLY, f"{record.buffered} calls of this session already wait for counter {next_counter}")

    # -- block execution -------------------------------------------------------------

    def deliver(self, envelope: Envelope, height: int, run: Runner) -> Written:
        """Admit one transaction: run it (and every waiting successor it unblocks) or queue it.

        Returns the result records written, the transaction's own first. Raises Refused
        (with nothing written) for a duplicate, a closed session or a full buffer.
        """
        key = envelope.session_key
        record = self.record(key)
        self._admit(envelope, record)
        if record is None:
            record = SessionRecord(last_height=height)
        old_deadlines = record.deadlines()
        written: Written = []
        if envelope.counter > record.next:
            self.kv.set(keys.queue_key(key, envelope.counter), envelope.raw)
            record.buffered += 1
            if record.gap_deadline is None:
                record.gap_deadline = height + self.rules.gap_timeout_blocks
            queued = ResultRecord.queued(f"waits for counter {record.next}").at(height, envelope.digest)
            written.append(self._write_result(key, envelope.counter, queued))
        else:
            written += self._run_chain(envelope, record, height, run)
        record.last_height = height
        # `idle_deadline` is where the session sits in the deadline index. It is set once and
        # moved by end_block when it comes due (to last_height + idle_expiry_blocks), so a busy
        # session costs no index update per call, yet expires at exactly the same height.
        if not record.open:
            record.idle_deadline = None
        elif record.idle_deadline is None:
            record.idle_deadline = height + self.rules.idle_expiry_blocks
        self._save(key, record, old_deadlines)
        return written

    def _run_chain(self, envelope: Envelope, record: SessionRecord, height: int, run: Runner) -> Written:
        key = envelope.session_key
        written: Written = []
        current: Envelope | None = envelope
        while current is not None:
            k = current.counter
            if current.kind is Kind.CLOSE:
                outcome = ResultRecord.close()
                record.status, record.reason = SessionStatus.CLOSED, f"closed by the client at counter {k}"
            else:
                outcome = run(current)
                if outcome.status is not Status.OK:
                    record.status, record.reason = SessionStatus.FAILED, f"call {k} failed: {outcome.error}"
            written.append(self._write_result(key, k, outcome.at(height, current.digest)))
            record.next = k + 1
            current = None
            if record.open:
                waiting = self.kv.get(keys.queue_key(key, k + 1))
                if waiting is not None:
                    self.kv.delete(keys.queue_key(key, k + 1))
                    record.buffered -= 1
                    current = decode(waiting)
        if not record.open:
            written += self._skip_waiting(key, record, height)
        record.gap_deadline = height + self.rules.gap_timeout_blocks if record.buffered else None
        return written

    def _skip_waiting(self, key: bytes, record: SessionRecord, height: int) -> Written:
        """A session that ended takes its waiting calls with it; each says why."""
        written: Written = []
        start, end = keys.queue_range(key)
        for queued_key, queued_tx in self.kv.scan(start, end, self.rules.max_buffered + 1):
            counter = keys.counter_of(queued_key)
            self.kv.delete(queued_key)
            skipped = ResultRecord.skipped(record.reason or "").at(height, tx_digest(queued_tx))
            written.append(self._write_result(key, counter, skipped))
            record.next = max(record.next, counter + 1)  # never reuse a counter that was seen
        record.buffered = 0
        return written

    def end_block(self, height: int) -> list[tuple[bytes, int, ResultRecord]]:
        """Fail sessions whose gap stayed open too long and expire idle ones (deadline <= height)."""
        written = []
        per_session = 2 * self.rules.max_buffered + 4  # queue deletes, result writes, record, index
        start, end = keys.deadlines_until(height)
        for index_key, _ in self.kv.scan(start, end, max(1, END_BLOCK_WRITE_BUDGET // per_session)):
            key = keys.session_of_deadline(index_key)
            record = self.record(key)
            if record is None or not record.open:
                self.kv.delete(index_key)
                continue
            old_deadlines = record.deadlines()
            if record.gap_deadline is not None and record.gap_deadline <= height:
                record.status = SessionStatus.FAILED
                record.reason = f"counter {record.next} did not arrive within {self.rules.gap_timeout_blocks} blocks"
            elif record.idle_deadline is not None and record.idle_deadline <= height:
                active_until = record.last_height + self.rules.idle_expiry_blocks
                if active_until > height:  # used since it was indexed: move it, not expire it
                    record.idle_deadline = active_until
                    self._save(key, record, old_deadlines)
                    continue
                record.status = SessionStatus.EXPIRED
                record.reason = f"no activity for {self.rules.idle_expiry_blocks} blocks"
            else:
                continue
            written += [(key, k, r) for k, r in self._skip_waiting(key, record, height)]
            record.gap_deadline = record.idle_deadline = None
            self._save(key, record, old_deadlines)
        return written

    # -- storage ---------------------------------------------------------------------

    def _write_result(self, key: bytes, counter: int, result: ResultRecord) -> tuple[int, ResultRecord]:
        self.kv.set(keys.result_key(key, counter), result.encoded)
        return counter, result

    def _save(self, key: bytes, record: SessionRecord, old_deadlines: tuple[int | None, int | None]) -> None:
        new_deadlines = record.deadlines()
        for deadline in old_deadlines:
            if deadline is not None and deadline not in new_deadlines:
                self.kv.delete(keys.deadline_key(deadline, key))
        for deadline in new_deadlines:
            if deadline is not None and deadline not in old_deadlines:
                self.kv.set(keys.deadline_key(deadline, key), b"")
        self.kv.set(keys.session_key(key), record.encode())
