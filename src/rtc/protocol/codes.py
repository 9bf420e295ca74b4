"""The result codes every node gives in CheckTx, in a block's results and in queries.

ABCI's convention: 0 is success; any other code is a refusal or a failure, with the reason
in `log`. Each code names one rule, so a client can act on it without reading the text.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    OK = 0
    MALFORMED = 1  # not a well-formed envelope, or the call is not UTF-8 JSON, or too large
    INVALID_CALL = 2  # unknown function, wrong arguments: refused before ordering
    EXECUTION_FAILED = 3  # the backend trapped, ran out of fuel or broke a host limit
    READ_ONLY = 4  # a query function sent as a transaction
    BAD_SIGNATURE = 5  # the signature does not match the client key and chain
    DUPLICATE = 6  # the counter was already used in this session (no replay)
    SESSION_ENDED = 7  # the session failed, expired or was closed
    TOO_EARLY = 8  # the counter is too far ahead, or the session's buffer is full
    NOT_FROM_CLIENTS = 9  # an Ethereum-sync transaction sent to the mempool: only proposers add them
    INVALID_SYNC = 10  # an Ethereum sync that is malformed or not newer than the last one
    BLOCK_FULL = 11  # the block's fuel budget was spent before this call's turn: send it again


CODESPACE = "rtc"  # ABCI's codespace of every non-zero code above
