"""What a call or a query gave, as the client hands it to its caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtc.protocol import Code, ResultRecord


class CallRejected(RuntimeError):
    """The cluster refused the call before running it (CheckTx, or inside a block); `code` names the rule."""

    def __init__(self, code: int, log: str) -> None:
        super().__init__(log)
        self.code = code
        self.log = log

    @property
    def rule(self) -> str:
        """The code's name (e.g. "DUPLICATE"), or the number for a code this client does not know."""
        try:
            return Code(self.code).name
        except ValueError:
            return str(self.code)


@dataclass(frozen=True)
class CallResult:
    """A call's outcome as the cluster's state records it under (session, counter)."""

    session: bytes  # client public key || session id
    counter: int
    record: ResultRecord
    latency_ms: float | None = None  # from sending (or subscribing) to the block's event

    @property
    def ok(self) -> bool:
        return self.record.status == "ok"

    @property
    def status(self) -> str:
        return self.record.status.value

    @property
    def value(self) -> Any:
        return self.record.value

    @property
    def error(self) -> str | None:
        """Why the call failed, or why it was skipped or is still waiting."""
        return self.record.why

    @property
    def height(self) -> int:
        return self.record.height

    @property
    def fuel(self) -> int | None:
        return self.record.fuel

    def to_json(self) -> dict[str, Any]:
        data = {"session": self.session.hex(), "counter": self.counter, "height": self.height, "status": self.status,
                "value": self.value, "error": self.error, "fuel": self.fuel, "tx": self.record.tx}
        if self.latency_ms is not None:
            data["latency_ms"] = round(self.latency_ms, 1)
        return data


@dataclass(frozen=True)
class QueryResult:
    """A read-only entry point's answer against committed state (no consensus, no proof)."""

    value: Any
    fuel: int
    height: int

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "fuel": self.fuel, "height": self.height}
