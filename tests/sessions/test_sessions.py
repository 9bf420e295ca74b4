"""Signed envelopes and session ordering, against an in-memory key/value state."""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_left

import orjson
import pytest
from nacl.signing import SigningKey

from rtc.protocol import Code, EnvelopeError, Kind, ResultRecord, decode, sign
from rtc.sessions import Refused, SessionRules, Sessions

CHAIN = "rtc-test"
ALICE = SigningKey(b"\x01" * 32)
BOB = SigningKey(b"\x02" * 32)
SESSION = b"S" * 16


class DictKV:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        keys = sorted(self.data)
        out = []
        for key in keys[bisect_left(keys, start):]:
            if end is not None and key >= end or len(out) == limit:
                break
            out.append((key, self.data[key]))
        return out


def call(counter: int, value: int = 0, key: SigningKey = ALICE, session: bytes = SESSION):
    body = orjson.dumps({"function": "add", "n": value})
    return sign(key, CHAIN, session, counter, body)


class Backend:
    """Runs calls in the order it sees them; a negative n fails the call."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, envelope) -> ResultRecord:
        n = orjson.loads(envelope.call)["n"]
        self.seen.append(n)
        if n < 0:
            return ResultRecord.failed("negative", 1)
        return ResultRecord.ok(n, 1)


# -- envelope ---------------------------------------------------------------------------


def test_envelope_round_trip_and_signature() -> None:
    envelope = call(7, 3)
    decoded = decode(envelope.encode())
    assert decoded == envelope and decoded.counter == 7 and decoded.client == bytes(ALICE.verify_key)
    decoded.verify(CHAIN)


@pytest.mark.parametrize("offset", [4, 5, 40, 60, 64, 70, -1])
def test_any_altered_byte_breaks_the_signature_or_the_layout(offset: int) -> None:
    raw = bytearray(call(1, 5).encode())
    raw[offset] ^= 0x01
    with pytest.raises(EnvelopeError):
        decode(bytes(raw)).verify(CHAIN)


def test_signature_is_bound_to_the_chain() -> None:
    with pytest.raises(EnvelopeError, match="signature does not match"):
        decode(call(0).encode()).verify("another-chain")


def test_nobody_can_write_into_another_clients_session() -> None:
    """Bob signs a call but claims Alice's key: the session is named by the key, so it fails."""
    forged = call(0, key=BOB)
    raw = bytearray(forged.encode())
    raw[5:37] = bytes(ALICE.verify_key)
    with pytest.raises(EnvelopeError, match="signature does not match"):
        decode(bytes(raw)).verify(CHAIN)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda raw: raw[:50], "shorter than the minimum"),
        (lambda raw: b"XXXX" + raw[4:], "unknown envelope format"),
        (lambda raw: raw + b"\x00", "a field has the wrong size"),
        (lambda raw: raw[:-1], "a field has the wrong size"),
        (lambda raw: raw[:4] + b"\x09" + raw[5:], "unknown envelope kind"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(mutate, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode(mutate(call(0).encode()))


def test_session_id_of_the_wrong_size_is_refused_when_signing() -> None:
    with pytest.raises(EnvelopeError, match="16 bytes"):
        sign(ALICE, CHAIN, b"short", 0, b"{}")


def test_invalid_public_key_is_an_error_not_a_crash() -> None:
    raw = bytearray(call(0).encode())
    raw[5:37] = b"\xff" * 32  # not a point on the curve
    with pytest.raises(EnvelopeError):
        decode(bytes(raw)).verify(CHAIN)


# -- ordering ---------------------------------------------------------------------------


def test_calls_in_order_run_at_once() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv)
    for k in range(3):
        envelope = call(k, k)
        written = sessions.deliver(envelope, height=1, run=backend)
        digest = hashlib.sha256(envelope.encode()).hexdigest().upper()
        assert written == [(k, ResultRecord.ok(k, 1).at(1, digest))]
        assert orjson.loads(written[0][1].encoded) == {"status": "ok", "value": k, "fuel": 1, "height": 1, "tx": digest}
    assert backend.seen == [0, 1, 2]


def test_early_calls_wait_then_the_whole_chain_runs_in_one_block() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv)
    assert sessions.deliver(call(2, 20), 5, backend)[0][1].status == "queued"
    assert sessions.deliver(call(1, 10), 6, backend)[0][1].status == "queued"
    assert backend.seen == []
    written = sessions.deliver(call(0, 0), 7, backend)
    assert [(k, r.status, r.height) for k, r in written] == [(0, "ok", 7), (1, "ok", 7), (2, "ok", 7)]
    assert backend.seen == [0, 10, 20]
    assert not any(key.startswith(b"q/") for key in kv.data), "the buffer must be empty"


def test_duplicates_and_replays_are_refused_forever() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv)
    sessions.deliver(call(0), 1, backend)
    sessions.deliver(call(2), 1, backend)
    with pytest.raises(Refused) as info:
        sessions.deliver(call(0), 2, backend)
    assert info.value.code == Code.DUPLICATE
    with pytest.raises(Refused, match="already waiting"):
        sessions.deliver(call(2), 2, backend)
    sessions.end_block(10_000_000)  # the session fails (gap) and is never reopened
    with pytest.raises(Refused) as info:
        sessions.deliver(call(0), 10_000_001, backend)
    assert info.value.code == Code.SESSION_ENDED


def test_a_full_buffer_refuses_one_call_not_the_session() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv, SessionRules(max_buffered=3))
    for k in (1, 2, 3):
        sessions.deliver(call(k), 1, backend)
    with pytest.raises(Refused) as info:
        sessions.deliver(call(4), 1, backend)
    assert info.value.code == Code.TOO_EARLY
    with pytest.raises(Refused, match="more than 3 ahead"):
        sessions.deliver(call(2**64 - 1), 1, backend)
    written = sessions.deliver(call(0), 2, backend)
    assert [k for k, _ in written] == [0, 1, 2, 3]
    assert sessions.deliver(call(4), 2, backend)[0][1].status == "ok"


def test_a_failed_call_stops_the_session_and_later_calls_say_why() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv)
    sessions.deliver(call(2, 2), 1, backend)
    sessions.deliver(call(3, 3), 1, backend)
    sessions.deliver(call(0, 0), 2, backend)
    written = sessions.deliver(call(1, -1), 3, backend)
    assert [(k, r.status) for k, r in written] == [(1, "error"), (2, "skipped"), (3, "skipped")]
    assert "call 1 failed: negative" in written[1][1].reason
    assert backend.seen == [0, -1]
    with pytest.raises(Refused, match="session is failed: call 1 failed"):
        sessions.deliver(call(4), 4, backend)
    assert sessions.record(bytes(ALICE.verify_key) + SESSION).next == 4  # skipped counters are used up


def test_a_gap_left_open_fails_the_session_deterministically() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv, SessionRules(gap_timeout_blocks=5))
    sessions.deliver(call(0), 10, backend)
    sessions.deliver(call(2), 11, backend)  # counter 1 never comes
    assert sessions.end_block(15) == []
    ended = sessions.end_block(16)
    assert [(k, r.status) for _, k, r in ended] == [(2, "skipped")]
    record = sessions.record(bytes(ALICE.verify_key) + SESSION)
    assert record.status == "failed" and "counter 1 did not arrive within 5 blocks" in record.reason
    with pytest.raises(Refused, match="session is failed"):
        sessions.deliver(call(1), 17, backend)


def test_idle_sessions_expire_and_closed_sessions_refuse() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv, SessionRules(idle_expiry_blocks=100))
    sessions.deliver(call(0), 1, backend)
    sessions.end_block(100)
    assert sessions.record(bytes(ALICE.verify_key) + SESSION).status == "open"
    sessions.end_block(101)
    assert sessions.record(bytes(ALICE.verify_key) + SESSION).status == "expired"
    other = b"T" * 16
    sessions.deliver(call(0, session=other), 1, backend)
    close = sign(ALICE, CHAIN, other, 1, b"", Kind.CLOSE)
    assert sessions.deliver(close, 2, backend)[0][1].closed is True
    with pytest.raises(Refused, match="session is closed"):
        sessions.deliver(call(2, session=other), 3, backend)


def test_a_busy_session_expires_only_after_its_last_call_and_moves_its_index_rarely() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv, SessionRules(idle_expiry_blocks=100))
    key = bytes(ALICE.verify_key) + SESSION
    index_writes = 0
    set_before = kv.set

    def counting_set(k: bytes, v: bytes) -> None:
        nonlocal index_writes
        index_writes += k.startswith(b"d/")
        set_before(k, v)

    kv.set = counting_set  # type: ignore[method-assign]
    for height in range(1, 151):  # a call every block
        sessions.deliver(call(height - 1), height, backend)
        sessions.end_block(height)
    assert index_writes <= 3  # not one per call
    sessions.end_block(249)
    assert sessions.record(key).status == "open"  # last call at 150: idle until 250
    sessions.end_block(250)
    assert sessions.record(key).status == "expired"


def test_sessions_of_different_clients_are_independent() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv)
    sessions.deliver(call(1, 1, key=BOB), 1, backend)
    assert sessions.deliver(call(0, 0, key=ALICE), 1, backend)[0][1].status == "ok"
    assert [k for k, _ in sessions.deliver(call(0, 0, key=BOB), 2, backend)] == [0, 1]


def test_shuffled_delivery_gives_sequential_results_and_identical_state() -> None:
    """Two nodes, each seeing the same block order; and a random order equals the sequential run."""
    envelopes = [call(k, k * 7 % 11) for k in range(30)]
    rng = random.Random(5)
    shuffled = envelopes[:]
    rng.shuffle(shuffled)
    kvs = [DictKV(), DictKV()]
    for kv in kvs:
        sessions, backend = Sessions(kv, SessionRules(max_buffered=64)), Backend()
        for height, envelope in enumerate(shuffled, start=1):
            sessions.deliver(envelope, height, backend)
        assert backend.seen == [k * 7 % 11 for k in range(30)]
    assert kvs[0].data == kvs[1].data


def test_waiting_calls_end_with_the_session_before_it_could_expire() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv, SessionRules(gap_timeout_blocks=50, idle_expiry_blocks=60))
    sessions.deliver(call(0), 1, backend)
    sessions.deliver(call(2), 1, backend)  # waits; the gap fails it first
    ended = sessions.end_block(51)
    assert [(k, r.status) for _, k, r in ended] == [(2, "skipped")]
    assert not any(key.startswith(b"q/") for key in kv.data)


def test_rules_that_contradict_each_other_are_refused() -> None:
    with pytest.raises(ValueError, match="less than idle_expiry_blocks"):
        SessionRules(gap_timeout_blocks=100, idle_expiry_blocks=100)
    with pytest.raises(ValueError, match="max_buffered"):
        SessionRules(max_buffered=0)


def test_end_of_block_work_is_bounded() -> None:
    kv, backend = DictKV(), Backend()
    sessions = Sessions(kv, SessionRules(max_buffered=64, gap_timeout_blocks=5))
    keys = [SigningKey(bytes([i + 1]) * 32) for i in range(200)]
    for key in keys:
        sessions.deliver(call(1, key=key), 1, backend)
    first = sessions.end_block(6)
    assert 0 < len(first) < 200  # a budget per block, the rest in the next blocks
    later = sessions.end_block(7) + sessions.end_block(8) + sessions.end_block(9)
    assert len(first) + len(later) == 200
