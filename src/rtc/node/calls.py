"""A block's client calls, on the node's core: session ordering, execution, result records.

`ReferenceCalls` is the reference: `rtc.sessions.Sessions` running each call whose turn has
come through `Backend.execute`. `NativeCalls` does the same in the compiled core
(native/src/block.rs), over the same block overlay, and must write the same bytes in the
same order (tests/native/test_block_differential.py). The app picks one per block by its
backend's core (`Backend.core`).

Both take the transaction's checked envelope and give the results written, the
transaction's own first, as `Written` rows; or raise `Refused` with nothing written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from rtc.protocol import Code, Envelope, ResultRecord, keys
from rtc.sessions import Refused, Sessions, SessionRules
from rtc.vm import Backend, BlockInfo, HostFailure, Meter, PreparedCall

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rtc.vm import NativeBackend


class Written(NamedTuple):
    """A result record a block wrote, as the block's results and events show it."""

    counter: int
    status: str
    encoded: bytes
    error: str | None
    fuel: int


class BackendState:
    """The backend's view of a block overlay: its keys live under their own prefix."""

    __slots__ = ("overlay",)

    def __init__(self, overlay: Any) -> None:
        self.overlay = overlay

    def get(self, key: bytes) -> bytes | None:
        return self.overlay.get(keys.BACKEND_PREFIX + key)

    def iterate(self, start: bytes, end: bytes | None, meter: Meter) -> Iterator[tuple[bytes, bytes]]:
        """The backend's entries from `start`, read only as far as the VM takes them; `meter`
        charges the call for every entry the store steps over (see rtc.vm.StateView)."""
        prefix = keys.BACKEND_PREFIX
        upper = prefix + end if end is not None else prefix[:-1] + bytes([prefix[-1] + 1])
        cut = len(prefix)
        return ((key[cut:], value) for key, value in self.overlay.iterate(prefix + start, upper, meter))


# The checked call of an envelope whose turn has come, by its digest and bytes (the node's
# cache of checked calls first; raises the node's TxError if it no longer passes).
PrepareCall = Callable[[str, bytes], PreparedCall]


class ReferenceCalls:
    """`Sessions` with `run` as its runner, in Python."""

    def __init__(self, backend: Backend, overlay: Any, block: BlockInfo, rules: SessionRules,
                 prepare: PrepareCall, tx_error: type[Exception]) -> None:
        self.backend = backend
        self.overlay = overlay
        self.block = block
        self.sessions = Sessions(overlay, rules)
        self.prepare = prepare
        self.tx_error = tx_error
        self.state = BackendState(overlay)
        self.fuel_spent = 0
        self.fuel_seen: dict[str, int] = {}  # the fuel each entry point last burned

    def deliver(self, envelope: Envelope) -> list[Written]:
        return [_row(counter, record) for counter, record in
                self.sessions.deliver(envelope, self.block.height, self.run)]

    def end_block(self) -> list[tuple[bytes, int, str]]:
        return [(key, counter, record.status.value) for key, counter, record in self.sessions.end_block(self.block.height)]

    def run(self, envelope: Envelope) -> ResultRecord:
        """Execute one call whose turn has come; its writes apply only if it succeeds."""
        try:
            prepared = self.prepare(envelope.digest, envelope.raw)
        except self.tx_error as exc:  # it passed when it was queued; kept for safety
            return ResultRecord.failed(str(exc), 0)
        outcome = self.backend.execute(prepared, self.state, self.block, caller=envelope.client)
        self.fuel_spent += outcome.fuel_used
        self.fuel_seen[prepared.entry.name] = outcome.fuel_used
        if not outcome.ok:
            return ResultRecord.failed(outcome.error or "", outcome.fuel_used)
        record = ResultRecord.ok(outcome.value, outcome.fuel_used).at(self.block.height, envelope.digest)
        limit = self.backend.limits.max_result_bytes
        if record.result_bytes > limit:
            return ResultRecord.failed(f"result of {record.result_bytes} bytes exceeds the limit of {limit} bytes",
                                       outcome.fuel_used)
        overlay = self.overlay
        for key, value in outcome.writes.items():
            if value is None:
                overlay.delete(keys.backend_key(key))
            else:
                overlay.set(keys.backend_key(key), value)
        return record


def _row(counter: int, record: ResultRecord) -> Written:
    return Written(counter, record.status.value, record.encoded, record.error, record.fuel or 0)


class NativeCalls:
    """The same in the compiled core (`rtc_native.BlockCalls`)."""

    def __init__(self, backend: NativeBackend, overlay: Any, block: BlockInfo, rules: SessionRules,
                 prepare: PrepareCall, tx_error: type[Exception]) -> None:
        import rtc_native  # installed: the backend is a NativeBackend

        self._native = rtc_native
        entry_ids = backend.entry_ids
        self._names = {number: name for name, number in entry_ids.items()}

        def prepared_for(digest: str, raw: bytes) -> tuple[int, list[Any]]:
            prepared = prepare(digest, raw)
            return entry_ids[prepared.entry.name], prepared.args

        self._calls = rtc_native.BlockCalls(
            backend.vm, overlay, BackendState(overlay), prepared_for, tx_error, block.height, block.time_ms,
            (rules.max_buffered, rules.gap_timeout_blocks, rules.idle_expiry_blocks), backend.limits.max_result_bytes,
            (Code.DUPLICATE, Code.SESSION_ENDED, Code.TOO_EARLY))

    @property
    def fuel_spent(self) -> int:
        return self._calls.fuel_spent

    @property
    def fuel_seen(self) -> dict[str, int]:
        return {self._names[number]: fuel for number, fuel in self._calls.fuel_seen.items()}

    def deliver(self, envelope: Envelope) -> list[Written]:
        try:
            delivered = self._calls.deliver(int(envelope.kind), envelope.session_key, envelope.counter,
                                            envelope.digest, envelope.client, envelope.raw)
        except self._native.HostFailed as exc:  # the reference's HostFailure
            raise HostFailure("the host failed while serving a call") from exc.__cause__
        if isinstance(delivered, tuple):
            code, message = delivered
            raise Refused(Code(code), message)
        return [Written(*row) for row in delivered]

    def end_block(self) -> list[tuple[bytes, int, str]]:
        return self._calls.end_block()


def block_calls(backend: Backend, overlay: Any, block: BlockInfo, rules: SessionRules, prepare: PrepareCall,
                tx_error: type[Exception]) -> ReferenceCalls | NativeCalls:
    """The block's calls on the backend's core."""
    if backend.core == "native":
        return NativeCalls(backend, overlay, block, rules, prepare, tx_error)  # type: ignore[arg-type]
    return ReferenceCalls(backend, overlay, block, rules, prepare, tx_error)

