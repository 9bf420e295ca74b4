"""The records the state keeps per session and per call, as every node writes them.

Both are canonical JSON (`canonical_json`), so every node writes the same bytes and a
client checks them with a Merkle proof (`rtc.protocol.proof`). A result record is also
what a block's result for the transaction carries (`ExecTxResult.data`) and what the
client reads back by `(session, counter)`:

    {"status": "ok",      "value": <JSON>, "fuel": N,          "height": H, "tx": "<HEX>"}
    {"status": "ok",      "value": null,   "closed": true,     "height": H, "tx": "<HEX>"}
    {"status": "error",   "error": "<why>", "fuel": N,         "height": H, "tx": "<HEX>"}
    {"status": "queued",  "reason": "waits for counter K",     "height": H, "tx": "<HEX>"}
    {"status": "skipped", "reason": "<why the session ended>", "height": H, "tx": "<HEX>"}

`height` is the block that wrote the record and `tx` the CometBFT hash of the
transaction the record is for. "queued" is the only status that changes later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

import orjson

from .canonical import canonical_json


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"
    QUEUED = "queued"  # waits for its predecessor
    SKIPPED = "skipped"  # the session ended before its turn


FINAL = frozenset({Status.OK, Status.ERROR, Status.SKIPPED})


class SessionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # by the client's close envelope
    FAILED = "failed"  # a call failed, or a gap stayed open too long
    EXPIRED = "expired"  # no activity for too long


class RecordError(ValueError):
    """Bytes that are not a well-formed record; the message says what is wrong."""


@dataclass(frozen=True)
class ResultRecord:
    """What call k of a session gave; see the module docstring for its JSON."""

    status: Status
    height: int = 0
    tx: str = ""
    value: Any = None
    fuel: int | None = None
    error: str | None = None
    reason: str | None = None
    closed: bool = False

    @classmethod
    def ok(cls, value: Any, fuel: int) -> "ResultRecord":
        return cls(Status.OK, value=value, fuel=fuel)

    @classmethod
    def failed(cls, error: str, fuel: int) -> "ResultRecord":
        return cls(Status.ERROR, error=error, fuel=fuel)

    @classmethod
    def close(cls) -> "ResultRecord":
        return cls(Status.OK, closed=True)

    @classmethod
    def queued(cls, reason: str) -> "ResultRecord":
        return cls(Status.QUEUED, reason=reason)

    @classmethod
    def skipped(cls, reason: str) -> "ResultRecord":
        return cls(Status.SKIPPED, reason=reason)

    def at(self, height: int, tx: str) -> "ResultRecord":
        """The record as the block that wrote it stores it (itself when already stamped so,
        keeping its encoding)."""
        if self.height == height and self.tx == tx:
            return self
        return replace(self, height=height, tx=tx)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def why(self) -> str | None:
        """The error of a failed call, or the reason of a queued or skipped one."""
        return self.error if self.status is Status.ERROR else self.reason

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status.value, "height": self.height, "tx": self.tx}
        if self.status is Status.OK:
            data["value"] = self.value
            if self.closed:
                data["closed"] = True
            else:
                data["fuel"] = self.fuel
        elif self.status is Status.ERROR:
            data["error"] = self.error
            data["fuel"] = self.fuel
        else:
            data["reason"] = self.reason
        return data

    @cached_property
    def encoded(self) -> bytes:
        """Canonical JSON, computed once: the state, the block result and the size limit share it."""
        return canonical_json(self.to_json())

    @property
    def result_bytes(self) -> int:
        """What the cluster's result limit (`max_result_bytes`) measures: the record without the
        block's stamp, i.e. the length of `{"fuel":..,"status":"ok","value":..}`. Sorted keys put
        `,"height":H` and `,"tx":"X"` inside the encoding, so their exact length is taken off."""
        return len(self.encoded) - len(f',"height":{self.height},"tx":"{self.tx}"')

    @classmethod
    def decode(cls, data: bytes) -> "ResultRecord":
        raw = _object(data, "result record")
        try:
            status = Status(raw["status"])
            fuel = raw.get("fuel")
            record = cls(status, _int(raw["height"]), str(raw["tx"]), raw.get("value"),
                         None if fuel is None else _int(fuel), _text(raw.get("error")), _text(raw.get("reason")),
                         raw.get("closed") is True)
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"malformed result record: {exc}") from None
        return record


@dataclass(slots=True)
class SessionRecord:
    """A session's bookkeeping in state; changed only by `rtc.sessions` during a block."""

    next: int = 0  # the counter that runs next
    status: SessionStatus = SessionStatus.OPEN
    reason: str | None = None  # why it is no longer open
    buffered: int = 0  # early calls waiting in the queue
    gap_deadline: int | None = None  # the height at which a missing predecessor fails the session
    idle_deadline: int | None = None  # where the session sits in the deadline index for expiry
    last_height: int = 0  # the last block that touched it

    @property
    def open(self) -> bool:
        return self.status is SessionStatus.OPEN

    def deadlines(self) -> tuple[int | None, int | None]:
        return self.gap_deadline, self.idle_deadline

    def encode(self) -> bytes:
        return canonical_json(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> "SessionRecord":
        raw = _object(data, "session record")
        try:
            return cls(**{**raw, "status": SessionStatus(raw.get("status"))})
        except (TypeError, ValueError) as exc:
            raise RecordError(f"malformed session record: {exc}") from None


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"{what} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{what} is not a JSON object")
    return raw


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value
