"""Where things live in the authenticated state: one tree, under prefixes.

The prefixes keep the backend's keys, the sessions' records and results, and the
cluster's metadata apart, so no backend write can ever forge a result record or the code
hash. A session key is `client public key (32) || session id (16)`; counters are u64
big-endian, so a session's entries sort in counter order.

    k/<backend key>                     the backend's own keys
    s/<session key>                     session record (`SessionRecord`)
    q/<session key><counter>            an early call waiting for its predecessor (its envelope)
    r/<session key><counter>            the result record of call k (`ResultRecord`)
    d/<deadline u64><session key>       index: sessions with a gap or idle deadline (empty value)
    m/code_hash, m/settings, m/chain_id, m/membership    the cluster's metadata
"""

from __future__ import annotations

import struct

BACKEND_PREFIX = b"k/"
SESSION_PREFIX = b"s/"
QUEUE_PREFIX = b"q/"
RESULT_PREFIX = b"r/"
DEADLINE_PREFIX = b"d/"
META_PREFIX = b"m/"

CODE_HASH_KEY = META_PREFIX + b"code_hash"  # SHA-256 of the backend component
SETTINGS_KEY = META_PREFIX + b"settings"  # canonical JSON of the cluster settings
CHAIN_ID_KEY = META_PREFIX + b"chain_id"  # signatures bind transactions to it
MEMBERSHIP_KEY = META_PREFIX + b"membership"  # the validator set and the Ethereum block it follows
RESTORED_FROM_KEY = META_PREFIX + b"restored_from"  # a cluster restored from another's last valid checkpoint

SESSION_KEY_BYTES = 48
_U64 = struct.Struct(">Q")


def backend_key(key: bytes) -> bytes:
    return BACKEND_PREFIX + key


def session_key(key: bytes) -> bytes:
    """The state key of a session's record."""
    return SESSION_PREFIX + key


def result_key(session: bytes, counter: int) -> bytes:
    return RESULT_PREFIX + session + _U64.pack(counter)


def queue_key(session: bytes, counter: int) -> bytes:
    return QUEUE_PREFIX + session + _U64.pack(counter)


def queue_range(session: bytes) -> tuple[bytes, bytes]:
    """[start, end) of a session's waiting calls."""
    return QUEUE_PREFIX + session, QUEUE_PREFIX + session + b"\xff" * 9


def deadline_key(deadline: int, session: bytes) -> bytes:
    return DEADLINE_PREFIX + _U64.pack(deadline) + session


def deadlines_until(height: int) -> tuple[bytes, bytes]:
    """[start, end) of the deadline index up to and including `height`."""
    return DEADLINE_PREFIX, DEADLINE_PREFIX + _U64.pack(height + 1)


def counter_of(key: bytes) -> int:
    """The counter that ends a queue or result key."""
    return _U64.unpack(key[-8:])[0]


def session_of_deadline(key: bytes) -> bytes:
    return key[len(DEADLINE_PREFIX) + 8:]
