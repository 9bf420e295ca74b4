"""The `abci_query` paths a node answers, and which state key each proven path reads.

    /result/<session key hex>/<counter>   a call's `ResultRecord`
    /session/<session key hex>            a session's `SessionRecord`
    /state/<backend key hex>              one of the backend's own keys
    /membership                           the validator set and the Ethereum block it follows
    /entry-points                         the backend's code hash and entry points (JSON)
    /call                                 data: a JSON call of a read-only entry point

The first four read one key of the authenticated state; with `prove=true` the answer
carries a Merkle proof as one `ProofOp` of type PROOF_OP_TYPE (`rtc.protocol.proof`'s
binary encoding), checked against the `app_hash` of header H+1 for an answer at height H.
"""

from __future__ import annotations

from . import keys

PROOF_OP_TYPE = "rtc:smt"
ENTRY_POINTS = "/entry-points"
CALL = "/call"
MEMBERSHIP = "/membership"


def result_path(session: bytes, counter: int) -> str:
    return f"/result/{session.hex()}/{counter}"


def session_path(session: bytes) -> str:
    return f"/session/{session.hex()}"


def state_path(key: bytes) -> str:
    return f"/state/{key.hex()}"


def state_key(path: str) -> bytes | None:
    """The state key a proven path reads, None for a path that reads no single key;
    ValueError (saying what is wrong) for a malformed one."""
    if path.startswith("/result/"):
        session, _, counter = path[len("/result/"):].partition("/")
        return keys.result_key(_session(session), _counter(counter))
    if path.startswith("/session/"):
        return keys.session_key(_session(path[len("/session/"):]))
    if path.startswith("/state/"):
        return keys.backend_key(bytes.fromhex(path[len("/state/"):]))
    if path == MEMBERSHIP:
        return keys.MEMBERSHIP_KEY
    return None


def _session(text: str) -> bytes:
    key = bytes.fromhex(text)
    if len(key) != keys.SESSION_KEY_BYTES:
        raise ValueError("a session key is 96 hex digits: the client's public key (32 bytes) then the session id (16)")
    return key


def _counter(text: str) -> int:
    counter = int(text)
    if not 0 <= counter < 2**64:
        raise ValueError("a counter is an integer from 0 to 2^64-1")
    return counter
