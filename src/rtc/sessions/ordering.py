"""Session ordering in consensus state: call k of a session runs only after call k-1.

Everything here lives in the authenticated state, so every node buffers, runs, fails
and expires sessions identically, and every status can be proven to a light client.
Time is counted in blocks, never on a clock.

State layout (all under the node's state, session key = client(32) || session(16)):

    s/<session key>                     session record (canonical JSON)
    q/<session key><counter u64 BE>     an early call waiting for its predecessor
    r/<session key><counter u64 BE>     the result record of call k
    d/<deadline u64 BE><session key>    index: sessions with a gap or idle deadline
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import orjson

from .envelope import Envelope, Kind, decode

SESSION_PREFIX = b"s/"
QUEUE_PREFIX = b"q/"
RESULT_PREFIX = b"r/"
DEADLINE_PREFIX = b"d/"
_U64 = struct.Struct(">Q")
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
    gap_timeout_blocks: int = 20  # a missing predecessor fails the session after this many blocks
    idle_expiry_blocks: int = 10_000  # a session with no activity expires after this many blocks

    def __post_init__(self) -> None:
        if not 1 <= self.max_buffered <= 1024:
            raise ValueError("max_buffered must be between 1 and 1024")
        if not 1 <= self.gap_timeout_blocks < self.idle_expiry_blocks:
            raise ValueError("gap_timeout_blocks must be at least 1 and less than idle_expiry_blocks")


class Refused(Exception):
    """The transaction cannot enter the session; nothing is written. `code` names the rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Runner = Callable[[Envelope], dict[str, Any]]


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def session_key_of(key: bytes) -> bytes:
    return key[len(SESSION_PREFIX):]


def result_key(session_key: bytes, counter: int) -> bytes:
    return RESULT_PREFIX + session_key + _U64.pack(counter)


def queue_key(session_key: bytes, counter: int) -> bytes:
    return QUEUE_PREFIX + session_key + _U64.pack(counter)


def _digest(tx: bytes) -> str:
    """The transaction's hash as CometBFT names it, so a client knows a result is its own call's."""
    return hashlib.sha256(tx).hexdigest().upper()


def _deadline_key(deadline: int, session_key: bytes) -> bytes:
    return DEADLINE_PREFIX + _U64.pack(deadline) + session_key


class Sessions:
    """The rules of one block's session bookkeeping over the block's state overlay."""

    def __init__(self, kv: KeyValue, rules: SessionRules = SessionRules()) -> None:
        self.kv = kv
        self.rules = rules

    # -- reading ---------------------------------------------------------------------

    def record(self, session_key: bytes) -> dict[str, Any] | None:
        raw = self.kv.get(SESSION_PREFIX + session_key)
        return None if raw is None else orjson.loads(raw)

    def result(self, session_key: bytes, counter: int) -> dict[str, Any] | None:
        raw = self.kv.get(result_key(session_key, counter))
        return None if raw is None else orjson.loads(raw)

    def check(self, envelope: Envelope) -> None:
        """The admission rules alone (for CheckTx): raises Refused, writes nothing."""
        self._admit(envelope, self.record(envelope.session_key))

    def _admit(self, envelope: Envelope, record: dict[str, Any] | None) -> None:
        next_counter = 0 if record is None else record["next"]
        k = envelope.counter
        if record is not None and record["status"] != "open":
            raise Refused("session-ended", f"session is {record['status']}: {record['reason']}")
        if k < next_counter:
            raise Refused("duplicate", f"counter {k} of this session was already used (next is {next_counter})")
        if k > next_counter:
            if self.kv.get(queue_key(envelope.session_key, k)) is not None:
                raise Refused("duplicate", f"counter {k} is already waiting in this session")
            if k - next_counter > self.rules.max_buffered:
                raise Refused(
                    "too-early",
                    f"counter {k} is more than {self.rules.max_buffered} ahead of the next one ({next_counter})",
                )
            if record is not None and record["buffered"] >= self.rules.max_buffered:
                raise Refused("buffer-full", f"{record['buffered']} calls of this session already wait for counter {next_counter}")

    # -- block execution -------------------------------------------------------------

    def deliver(self, envelope: Envelope, height: int, run: Runner) -> list[tuple[int, dict[str, Any]]]:
        """Admit one transaction: run it (and every waiting successor it unblocks) or queue it.

        Returns the result records written, the transaction's own first. Raises Refused
        (with nothing written) for a duplicate, a closed session or a full buffer.
        """
        key = envelope.session_key
        record = self.record(key)
        self._admit(envelope, record)
        if record is None:
            record = {"next": 0, "status": "open", "reason": None, "buffered": 0, "gap_deadline": None,
                      "idle_deadline": None, "last_height": height}
        old_deadlines = (record["gap_deadline"], record["idle_deadline"])
        written: list[tuple[int, dict[str, Any]]] = []
        if envelope.counter > record["next"]:
            self.kv.set(queue_key(key, envelope.counter), envelope.encode())
            record["buffered"] += 1
            if record["gap_deadline"] is None:
                record["gap_deadline"] = height + self.rules.gap_timeout_blocks
            written.append(self._write_result(key, envelope.counter, {
                "status": "queued", "reason": f"waits for counter {record['next']}", "height": height,
                "tx": _digest(envelope.encode())}))
        else:
            written += self._run_chain(envelope, record, height, run)
        record["last_height"] = height
        # "idle_deadline" is where the session sits in the deadline index. It is set once and
        # moved by end_block when it comes due (to last_height + idle_expiry_blocks), so a busy
        # session costs no index update per call, yet expires at exactly the same height.
        if record["status"] != "open":
            record["idle_deadline"] = None
        elif record["idle_deadline"] is None:
            record["idle_deadline"] = height + self.rules.idle_expiry_blocks
        self._save(key, record, old_deadlines)
        return written

    def _run_chain(self, envelope: Envelope, record: dict[str, Any], height: int, run: Runner) -> list[tuple[int, dict[str, Any]]]:
        key = envelope.session_key
        written = []
        current: Envelope | None = envelope
        while current is not None:
            k = current.counter
            if current.kind is Kind.CLOSE:
                outcome = {"status": "ok", "value": None, "closed": True}
                record["status"], record["reason"] = "closed", f"closed by the client at counter {k}"
            else:
                outcome = run(current)
                if outcome["status"] != "ok":
                    record["status"] = "failed"
                    record["reason"] = f"call {k} failed: {outcome.get('error')}"
            written.append(self._write_result(key, k, {**outcome, "height": height, "tx": _digest(current.encode())}))
            record["next"] = k + 1
            current = None
            if record["status"] == "open":
                waiting = self.kv.get(queue_key(key, k + 1))
                if waiting is not None:
                    self.kv.delete(queue_key(key, k + 1))
                    record["buffered"] -= 1
                    current = decode(waiting)
        if record["status"] != "open":
            written += self._skip_waiting(key, record, height)
        record["gap_deadline"] = height + self.rules.gap_timeout_blocks if record["buffered"] else None
        return written

    def _skip_waiting(self, key: bytes, record: dict[str, Any], height: int) -> list[tuple[int, dict[str, Any]]]:
        """A session that ended takes its waiting calls with it; each says why."""
        written = []
        for queued_key, queued_tx in self.kv.scan(QUEUE_PREFIX + key, QUEUE_PREFIX + key + b"\xff" * 9, self.rules.max_buffered + 1):
            counter = _U64.unpack(queued_key[-8:])[0]
            self.kv.delete(queued_key)
            written.append(self._write_result(key, counter, {
                "status": "skipped", "reason": record["reason"], "height": height, "tx": _digest(queued_tx)}))
            record["next"] = max(record["next"], counter + 1)  # never reuse a counter that was seen
        record["buffered"] = 0
        return written

    def end_block(self, height: int) -> list[tuple[bytes, int, dict[str, Any]]]:
        """Fail sessions whose gap stayed open too long and expire idle ones (deadline <= height)."""
        written = []
        per_session = 2 * self.rules.max_buffered + 4  # queue deletes, result writes, record, index
        due = self.kv.scan(DEADLINE_PREFIX, DEADLINE_PREFIX + _U64.pack(height + 1), max(1, END_BLOCK_WRITE_BUDGET // per_session))
        for index_key, _ in due:
            key = index_key[len(DEADLINE_PREFIX) + 8:]
            record = self.record(key)
            if record is None or record["status"] != "open":
                self.kv.delete(index_key)
                continue
            old_deadlines = (record["gap_deadline"], record["idle_deadline"])
            if record["gap_deadline"] is not None and record["gap_deadline"] <= height:
                record["status"] = "failed"
                record["reason"] = (f"counter {record['next']} did not arrive within {self.rules.gap_timeout_blocks} blocks")
                written += [(key, k, r) for k, r in self._skip_waiting(key, record, height)]
            elif record["idle_deadline"] is not None and record["idle_deadline"] <= height:
                active_until = record["last_height"] + self.rules.idle_expiry_blocks
                if active_until > height:  # used since it was indexed: move it, not expire it
                    record["idle_deadline"] = active_until
                    self._save(key, record, old_deadlines)
                    continue
                record["status"] = "expired"
                record["reason"] = f"no activity for {self.rules.idle_expiry_blocks} blocks"
                written += [(key, k, r) for k, r in self._skip_waiting(key, record, height)]
            else:
                continue
            record["gap_deadline"] = record["idle_deadline"] = None
            self._save(key, record, old_deadlines)
        return written

    # -- storage ---------------------------------------------------------------------

    def _write_result(self, key: bytes, counter: int, result: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.kv.set(result_key(key, counter), _json(result))
        return counter, result

    def _save(self, key: bytes, record: dict[str, Any], old_deadlines: tuple[int | None, int | None]) -> None:
        new_deadlines = (record["gap_deadline"], record["idle_deadline"])
        for deadline in old_deadlines:
            if deadline is not None and deadline not in new_deadlines:
                self.kv.delete(_deadline_key(deadline, key))
        for deadline in new_deadlines:
            if deadline is not None and deadline not in old_deadlines:
                self.kv.set(_deadline_key(deadline, key), b"")
        self.kv.set(SESSION_PREFIX + key, _json(record))
