"""Loading a backend component and running one entry-point call deterministically.

Every call gets a fresh Store and instance, a fuel budget and memory limits; state is
reached only through the host interface in wit/backend.wit, and the call's writes stay
in a buffer the caller applies only when the call returned normally.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import weakref
from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import wasmtime
from wasmtime import component as wc

from . import abi, capi
from .marshal import JSON_INT_RANGE, ArgumentError, check_arguments
from .types import ListT, OptionT, Prim, RecordT, TupleT, UnsupportedType, WitType, from_wasmtime, kebab, snake

HOST_PACKAGE = "rtc:backend"
HOST_VERSION = "0.1.0"
STATE_INTERFACE = f"{HOST_PACKAGE}/state@{HOST_VERSION}"
CONTEXT_INTERFACE = f"{HOST_PACKAGE}/context@{HOST_VERSION}"
HOST_INTERFACES = (STATE_INTERFACE, CONTEXT_INTERFACE)
WIT_PATH = Path(__file__).with_name("wit") / "backend.wit"

_BYTES = ListT(Prim("u8"))
_BLOCK_INFO = RecordT((("height", Prim("u64")), ("time-ms", Prim("u64"))))
_SCAN_RESULT = ListT(TupleT((_BYTES, _BYTES)))

# The host functions' signatures from wit/backend.wit: (parameter types, result type).
# A component is checked against them at deploy, because wasmtime lets a component
# declare any signature for an import and the host callbacks read the C values as these.
HOST_SIGNATURES: dict[str, dict[str, tuple[tuple[WitType, ...], WitType | None]]] = {
    STATE_INTERFACE: {
        "get": ((_BYTES,), OptionT(_BYTES)),
        "set": ((_BYTES, _BYTES), None),
        "remove": ((_BYTES,), None),
        "scan": ((_BYTES, OptionT(_BYTES), Prim("u32")), _SCAN_RESULT),
    },
    CONTEXT_INTERFACE: {
        "block": ((), _BLOCK_INFO),
        "caller": ((), _BYTES),
    },
}


WASM_PAGE = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-call resource limits; part of the cluster's configuration, identical on every node.

    Memory is bounded per call, over every linear memory the component's instance creates:
    at most `memories` of them, each growing to at most `memory_bytes // memories` (whole
    64 KiB pages), so together never more than `memory_bytes`. Tables hold at most
    `tables * table_elements` entries of 8 bytes. Everything the host does for a call
    (host functions, copying bytes, scanning state) is charged fuel, so its time is
    bounded by `fuel` too (docs/backends.md lists the charges).
    """

    fuel: int = 100_000_000
    memory_bytes: int = 64 * 1024 * 1024  # all linear memories of one call together
    memories: int = 1  # linear memories one call may create (a Rust backend has one)
    table_elements: int = 100_000  # per table
    tables: int = 8
    instances: int = 32  # core module instances per call
    max_wasm_stack: int = 512 * 1024
    max_key_bytes: int = 1024
    max_value_bytes: int = 64 * 1024
    max_writes: int = 10_000
    max_scan: int = 1_000
    max_scan_bytes: int = 1024 * 1024  # keys and values one scan returns (the host holds 32 bytes per byte)
    max_result_bytes: int = 256 * 1024  # the result record without height and tx (see result limit in docs)
    host_call_fuel: int = 3_000  # every host function call, and every read of the state a scan makes
    fuel_per_byte: int = 24  # every byte copied between guest and host (keys, values, scan bounds, caller)
    scan_entry_fuel: int = 3_000  # every entry a scan returns (on top of its bytes)
    scan_step_fuel: int = 150  # every entry a scan reads or steps over, in state or in the call's writes
    scan_byte_fuel: int = 1  # every byte of those entries (keys and values read from the store)
    query_fuel: int = 1_000_000  # read-only queries run on the node's event loop, outside consensus
    query_result_bytes: int = 64 * 1024  # a query's value as canonical JSON

    def __post_init__(self) -> None:
        # wasmtime's C API aborts the whole process above 2 MiB instead of returning an error.
        if not 64 * 1024 <= self.max_wasm_stack <= 2 * 1024 * 1024:
            raise ValueError("max_wasm_stack must be between 64 KiB and 2 MiB")
        if min(self.fuel, self.query_fuel, self.memories, self.tables, self.instances) <= 0:
            raise ValueError("fuel, query_fuel, memories, tables and instances must be positive")
        if self.memory_bytes < self.memories * WASM_PAGE:
            raise ValueError(f"memory_bytes must hold at least one 64 KiB page for each of the {self.memories} memories")
        if min(self.max_result_bytes, self.query_result_bytes) <= 0:
            raise ValueError("max_result_bytes and query_result_bytes must be positive")

    @property
    def memory_bytes_each(self) -> int:
        """How far each linear memory may grow: an equal share of memory_bytes, in whole pages."""
        return self.memory_bytes // self.memories // WASM_PAGE * WASM_PAGE


#: Called by a state iteration once for every entry it steps over, returned or not (shadowed
#: or deleted by a write earlier in the block, say), with the entry's size in bytes; it raises
#: to stop the iteration of a call that is out of fuel.
Meter = Callable[[int], None]


class StateView(Protocol):
    """What a call sees of state: the node's block overlay (reads see earlier writes in the block).

    `iterate` yields the entries with start <= key < end in key order, reading only as far
    as they are taken, and calls `meter` for every entry it touches, so that a call pays for
    the work however many entries the iteration skips."""

    def get(self, key: bytes) -> bytes | None: ...
    def iterate(self, start: bytes, end: bytes | None, meter: Meter) -> Iterator[tuple[bytes, bytes]]: ...


@dataclass(frozen=True)
class BlockInfo:
    height: int
    time_ms: int


class DeployError(Exception):
    """The component cannot run on a cluster; the message names the reason."""


class HostFailure(RuntimeError):
    """The node itself failed while serving a call (storage error, bug); never recorded as a result.

    Such a failure is local to one node, so turning it into a committed "error" result
    would fork the cluster; it propagates instead and CometBFT replays the block.
    """


class CallError(ValueError):
    """A call does not match the backend (unknown function, bad arguments); refused before ordering."""


@dataclass(frozen=True)
class EntryPoint:
    name: str  # WIT kebab-case
    params: tuple[tuple[str, WitType], ...]
    result: WitType | None
    read_only: bool

    def signature(self) -> str:
        params = ", ".join(f"{snake(n)}: {t.wit()}" for n, t in self.params)
        result = "" if self.result is None else f" -> {self.result.wit()}"
        return f"{snake(self.name)}({params}){result}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": snake(self.name),
            "params": [{"name": snake(n), "type": t.wit()} for n, t in self.params],
            "result": None if self.result is None else self.result.wit(),
            "read_only": self.read_only,
        }


@dataclass(frozen=True)
class PreparedCall:
    entry: EntryPoint
    args: list[Any]


@dataclass
class CallOutcome:
    """What a call produced. `writes` maps key -> value (None: removed), in first-write order."""

    ok: bool
    value: Any = None
    error: str | None = None
    fuel_used: int = 0
    writes: dict[bytes, bytes | None] = field(default_factory=dict)


class _Trap(Exception):
    """Raised inside a host function to trap the guest with a deterministic message."""


TRAP_REASONS = (
    ("all fuel consumed", "out of fuel"),
    ("call stack exhausted", "stack overflow"),
    ("unreachable", "unreachable instruction executed (the backend panicked or aborted)"),
    ("out of bounds memory access", "out of bounds memory access"),
    ("integer divide by zero", "integer divide by zero"),
    ("integer overflow", "integer overflow"),
    ("invalid conversion to integer", "invalid conversion to integer"),
    ("indirect call type mismatch", "indirect call type mismatch"),
    ("undefined element", "undefined table element"),
    ("uninitialized element", "uninitialized table element"),
    ("cannot enter component instance", "component re-entered after a trap"),
)


def trap_reason(message: str, host_error: str | None) -> str:
    """A short, deterministic reason: never the backtrace, which names addresses and frames."""
    if host_error is not None:
        return host_error
    lowered = message.lower()
    for needle, reason in TRAP_REASONS:
        if needle in lowered:
            return reason
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "trap"
    return re.sub(r"0x[0-9a-f]+", "0x…", last)[:200]


class _Call:
    """The mutable context of the call in flight, reached by the host functions.

    `writes` keeps the call's buffered writes in first-write order (the order they are
    applied in); `order` holds the same keys sorted, so a scan merges them without sorting."""

    __slots__ = ("state", "block", "caller", "read_only", "writes", "order", "host_error", "failure")

    def __init__(self, state: StateView, block: BlockInfo, caller: bytes, read_only: bool) -> None:
        self.state = state
        self.block = block
        self.caller = caller
        self.read_only = read_only
        self.writes: dict[bytes, bytes | None] = {}
        self.order: list[bytes] = []
        self.host_error: str | None = None
        self.failure: BaseException | None = None


class _Meter:
    """The fuel of a call inside one host function: read once, spent as the work is done,
    written back once. It traps (out of fuel) before the work it cannot pay for."""

    __slots__ = ("ctx", "fuel", "step_fuel", "byte_fuel")

    def __init__(self, ctx: capi.Context, step_fuel: int, byte_fuel: int) -> None:
        self.ctx = ctx
        self.fuel = capi.get_fuel(ctx)
        self.step_fuel = step_fuel
        self.byte_fuel = byte_fuel

    def charge(self, cost: int) -> None:
        self.fuel -= cost
        if self.fuel < 0:
            capi.set_fuel(self.ctx, 0)
            raise _Trap("out of fuel")

    def __call__(self, size: int) -> None:
        """Charge one entry of `size` bytes read or stepped over (the state's Meter)."""
        self.fuel -= self.step_fuel + size * self.byte_fuel
        if self.fuel < 0:
            capi.set_fuel(self.ctx, 0)
            raise _Trap("out of fuel")

    def settle(self) -> None:
        capi.set_fuel(self.ctx, max(self.fuel, 0))  # 0 once a charge trapped


class Backend:
    """A compiled backend component with its entry points and host functions."""

    core = "python"  # which implementation runs the calls (rtc.vm.native)

    def __init__(self, wasm: bytes, limits: Limits = Limits()) -> None:
        self.limits = limits
        self.code_hash = hashlib.sha256(wasm).digest()
        self.engine = _engine(limits)
        try:
            self.component = wc.Component(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            reason = str(exc).splitlines()[0]
            if "pooling allocator" in reason:  # checked when wasmtime compiles it, against the instance slots
                raise DeployError(
                    f"the component needs more than one call may use: {reason}. A call may create "
                    f"{limits.memories} linear memory(ies) of up to {limits.memory_bytes_each} bytes each "
                    f"({limits.memory_bytes} bytes in all), {limits.tables} tables and {limits.instances} core "
                    f"instances (Limits.memories, memory_bytes, tables, instances)"
                ) from None
            raise DeployError(f"not a valid WebAssembly component: {reason}") from None
        component_type = self.component.type
        self._check_imports(component_type)
        self.entry_points: dict[str, EntryPoint] = {}
        self._export_index: dict[str, wc.ExportIndex] = {}
        self._load_exports(component_type)
        if not self.entry_points:
            raise DeployError("the component exports no functions, so it has no entry points")
        self._call: _Call | None = None
        self._lifter = abi.Lifter()
        # wasmtime's store limiter: memory size (each), table elements (each), instances,
        # tables, memories; with the counts these bound the call's total (Limits).
        self._store_limits = (limits.memory_bytes_each, limits.table_elements, limits.instances, limits.tables,
                              limits.memories)
        self._host_linker = _HostLinker(self.engine, self)

    @classmethod
    def from_file(cls, path: str | Path, limits: Limits = Limits()) -> "Backend":
        return cls(Path(path).read_bytes(), limits)

    # -- loading ---------------------------------------------------------------------

    def _check_imports(self, component_type: wc.ComponentType) -> None:
        imports = component_type.imports(self.engine)
        unknown = sorted(name for name in imports if name not in HOST_SIGNATURES)
        if unknown:
            raise DeployError(
                "the component imports what the cluster does not offer: " + ", ".join(unknown)
                + f"; a backend may import only {', '.join(HOST_INTERFACES)} (see {WIT_PATH.name})"
            )
        for interface, item in imports.items():
            expected = HOST_SIGNATURES[interface]
            instance_type = item.ty
            if not isinstance(instance_type, wc.ComponentInstanceType):
                raise DeployError(f"import {interface} must be an interface instance")
            for name, func_item in instance_type.exports(self.engine).items():
                func_type = func_item.ty
                if not isinstance(func_type, wc.FuncType):
                    continue  # a type the interface defines, such as block-info
                signature = expected.get(name)
                if signature is None:
                    raise DeployError(f"{interface} has no function '{name}' (see {WIT_PATH.name})")
                try:
                    params = tuple(from_wasmtime(t) for _, t in func_type.params)
                    result_type = func_type.result
                    result = None if result_type is None else from_wasmtime(result_type)
                except UnsupportedType:
                    params, result = (), None
                if (params, result) != signature:
                    raise DeployError(
                        f"{interface} function '{name}' is imported with a different signature than the host's; "
                        f"rebuild the component against {WIT_PATH.name} version {HOST_VERSION}"
                    )

    def _load_exports(self, component_type: wc.ComponentType) -> None:
        for name, item in component_type.exports(self.engine).items():
            ty = item.ty
            if isinstance(ty, wc.FuncType):
                self._add_entry(name, ty, None, read_only=False)
            elif isinstance(ty, wc.ComponentInstanceType) and _is_queries(name):
                instance_index = self.component.get_export_index(name)
                for func_name, func_item in ty.exports(self.engine).items():
                    if isinstance(func_item.ty, wc.FuncType):
                        self._add_entry(func_name, func_item.ty, instance_index, read_only=True)

    def _add_entry(self, name: str, ty: wc.FuncType, instance: wc.ExportIndex | None, read_only: bool) -> None:
        if name in self.entry_points:
            raise DeployError(f"entry point '{snake(name)}' is exported twice (as a call and as a query)")
        try:
            params = tuple((param, from_wasmtime(param_ty)) for param, param_ty in ty.params)
            result_ty = ty.result
            result = None if result_ty is None else from_wasmtime(result_ty)
        except UnsupportedType as exc:
            raise DeployError(f"entry point '{snake(name)}': {exc}") from None
        index = self.component.get_export_index(name, instance)
        if index is None:  # pragma: no cover - the type listed it
            raise DeployError(f"entry point '{snake(name)}' has no export index")
        self.entry_points[name] = EntryPoint(name, params, result, read_only)
        self._export_index[name] = index

    # -- calls -----------------------------------------------------------------------

    def prepare(self, call: dict[str, Any]) -> PreparedCall:
        """Check a JSON call `{"function": ..., <args>}` against the component's types."""
        if not isinstance(call, dict):
            raise CallError("a call is a JSON object like {\"function\": \"sum\", \"x\": 5, \"y\": 3}")
        function = call.get("function")
        if not isinstance(function, str):
            raise CallError("the call has no \"function\" name (a string)")
        entry = self.entry_points.get(kebab(function))
        if entry is None:
            known = ", ".join(sorted(snake(n) for n in self.entry_points))
            raise CallError(f"unknown function '{function}'; the backend exports: {known}")
        args = {key: value for key, value in call.items() if key != "function"}
        try:
            return PreparedCall(entry, check_arguments(entry.params, args, snake(entry.name)))
        except ArgumentError as exc:
            raise CallError(str(exc)) from None

    def argument_error(self, data: bytes | str) -> str | None:
        """For a JSON call holding an integer beyond 64 bits: the error of the argument it is
        in, naming the parameter, its WIT type and range ("argument 'amount': expected u64,
        got 18446744073709551616, out of range [0, 18446744073709551615]"). None for any other
        text, whose faults strict JSON names (not JSON, duplicate keys, NaN, infinities).

        For the node: strict JSON refuses such an integer before any type is known, and
        JSON readers would make it a float; here it is read at its exact size."""
        beyond = False

        def exact_int(text: str) -> int:
            nonlocal beyond
            number = int(text)
            beyond = beyond or not JSON_INT_RANGE[0] <= number <= JSON_INT_RANGE[1]
            return number

        try:
            call = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                              parse_float=_finite_float, parse_int=exact_int)
            if not beyond:
                return None
            self.prepare(call)
        except CallError as exc:
            return str(exc)
        except (ValueError, RecursionError):  # not JSON, a duplicate key, NaN, an infinity
            return None
        return None  # pragma: no cover - no WIT type takes an integer beyond 64 bits

    def execute(self, prepared: PreparedCall, state: StateView, block: BlockInfo, caller: bytes = b"") -> CallOutcome:
        """Run one call in a fresh instance; never raises for anything the guest does.

        An entry point of the `queries` interface runs with the query limits (`query_fuel`,
        `query_result_bytes`), any other with the call limits (`fuel`, `max_result_bytes`)."""
        entry = prepared.entry
        limits = self.limits
        call = _Call(state, block, caller, entry.read_only)
        if entry.read_only:
            fuel, result_limit, limit_name = limits.query_fuel, limits.query_result_bytes, "query_result_bytes"
        else:
            fuel, result_limit, limit_name = limits.fuel, limits.max_result_bytes, "max_result_bytes"
        params = (capi.Val * max(1, len(entry.params)))()
        lowered = 0
        result = capi.Val()
        has_result = entry.result is not None
        store = wasmtime.Store(self.engine)
        try:
            store.set_limits(*self._store_limits)
            store.set_fuel(fuel)
            self._call = call
            for (_, ty), value in zip(entry.params, prepared.args):
                abi.lower(ty, value, params[lowered])
                lowered += 1
            try:
                instance = self._host_linker.linker.instantiate(store, self.component)
            except wasmtime.WasmtimeError as exc:
                return self._failure(store, fuel, f"instantiation failed: {trap_reason(str(exc), call.host_error)}")
            func = instance.get_func(store, self._export_index[entry.name])
            assert func is not None
            error = capi.call_func(func, store, params, lowered, result if has_result else None)
            if call.failure is not None:
                if error:
                    capi.take_error_message(error)  # only freed: the host failure is what is reported
                elif has_result:
                    abi.delete(result)
                raise HostFailure(f"the host failed while serving {entry.name}") from call.failure
            if error:
                message = capi.take_error_message(error)
                return self._failure(store, fuel, trap_reason(message, call.host_error))
            if not has_result:
                return CallOutcome(True, None, None, fuel - store.get_fuel(), call.writes)
            try:
                value = self._lifter.lift_json(entry.result, result, result_limit)
            except abi.ResultTooLarge as exc:
                return self._failure(
                    store, fuel, f"result of at least {exc.size} bytes exceeds the limit of {result_limit} bytes "
                    f"({limit_name}; counted as canonical JSON, and refused before it was copied out in full)")
            finally:
                abi.delete(result)
            return CallOutcome(True, value, None, fuel - store.get_fuel(), call.writes)
        finally:
            self._call = None
            for i in range(lowered):
                abi.delete(params[i])
            # Deleted here rather than whenever the last reference goes (a traceback can
            # hold this frame): the store's instance points at the host callbacks, which
            # must not outlive this Backend (see _HostLinker).
            store.close()

    @staticmethod
    def _failure(store: wasmtime.Store, fuel: int, reason: str) -> CallOutcome:
        return CallOutcome(False, None, reason, fuel - store.get_fuel(), {})

    # -- host functions ------------------------------------------------------------

    def _current(self) -> _Call:
        call = self._call
        if call is None:  # pragma: no cover - host functions run only inside execute()
            raise _Trap("host function called outside a call")
        return call

    def _charge(self, ctx: capi.Context, nbytes: int) -> None:
        """One host call that copies `nbytes` between guest and host."""
        cost = self.limits.host_call_fuel + nbytes * self.limits.fuel_per_byte
        fuel = capi.get_fuel(ctx)
        if fuel < cost:
            capi.set_fuel(ctx, 0)
            raise _Trap("out of fuel")
        capi.set_fuel(ctx, fuel - cost)

    def _key(self, val: Any) -> bytes:
        """A key argument, its size checked before it is copied out of wasmtime."""
        lst = val.of.list
        if lst.size > self.limits.max_key_bytes:
            raise _Trap(f"state key of {lst.size} bytes exceeds the limit of {self.limits.max_key_bytes}")
        return abi.read_bytes(lst)

    def _host_get(self, ctx: capi.Context, args: Any, results: Any) -> None:
        call = self._current()
        key = self._key(args[0])
        writes = call.writes
        value = writes[key] if key in writes else call.state.get(key)
        self._charge(ctx, len(key) + (len(value) if value else 0))
        out = results[0]
        out.kind = abi.K_OPTION
        if value is None:
            out.of.option = None
        else:
            payload = capi.Val()
            abi.lower_bytes(value, payload)
            out.of.option = capi.box_val(payload)

    def _write(self, ctx: capi.Context, key_val: Any, value_val: Any | None) -> None:
        call = self._current()
        if call.read_only:
            raise _Trap("a query cannot change state")
        key = self._key(key_val)
        limits = self.limits
        value_list, size = None, 0
        if value_val is not None:
            value_list = value_val.of.list
            size = value_list.size
            if size > limits.max_value_bytes:
                raise _Trap(f"state value of {size} bytes exceeds the limit of {limits.max_value_bytes}")
        writes = call.writes
        new = key not in writes
        if new and len(writes) >= limits.max_writes:
            raise _Trap(f"a call may write at most {limits.max_writes} keys")
        self._charge(ctx, len(key) + size)
        if new:
            insort(call.order, key)  # the buffer in key order, for scans
        writes[key] = None if value_list is None else abi.read_bytes(value_list)

    def _host_set(self, ctx: capi.Context, args: Any, results: Any) -> None:
        self._write(ctx, args[0], args[1])

    def _host_remove(self, ctx: capi.Context, args: Any, results: Any) -> None:
        self._write(ctx, args[0], None)

    def _host_scan(self, ctx: capi.Context, args: Any, results: Any) -> None:
        call = self._current()
        limits = self.limits
        bound = args[1].of.option
        start_list = args[0].of.list
        end_list = bound.contents.of.list if bound else None
        meter = _Meter(ctx, limits.scan_step_fuel, limits.scan_byte_fuel)
        sizes = start_list.size + (end_list.size if end_list is not None else 0)
        meter.charge(limits.host_call_fuel + sizes * limits.fuel_per_byte)  # before the bounds are copied
        start = abi.read_bytes(start_list)
        end = abi.read_bytes(end_list) if end_list is not None else None
        limit = min(args[2].of.u32, limits.max_scan)
        try:
            entries, copied = _merged_scan(call, start, end, limit, limits.max_scan_bytes, meter)
        finally:
            meter.settle()  # what was read is paid for, also when the scan is refused
        meter.charge(len(entries) * limits.scan_entry_fuel + copied * limits.fuel_per_byte)
        meter.settle()
        abi.lower_entries(entries, results[0])

    def _host_block(self, ctx: capi.Context, args: Any, results: Any) -> None:
        call = self._current()
        self._charge(ctx, 0)
        abi.lower(_BLOCK_INFO, (call.block.height, call.block.time_ms), results[0])

    def _host_caller(self, ctx: capi.Context, args: Any, results: Any) -> None:
        call = self._current()
        self._charge(ctx, len(call.caller))
        abi.lower_bytes(call.caller, results[0])


def _merged_scan(call: _Call, start: bytes, end: bytes | None, limit: int, max_bytes: int,
                 meter: _Meter) -> tuple[list[tuple[bytes, bytes]], int]:
    """Up to `limit` entries with start <= key < end, in key order: the state's, with the
    call's buffered writes laid over them; and the bytes they hold.

    Both sides are read only as far as the answer needs: the state through its iterator,
    the buffer (kept sorted by `_write`) from `start` on. Every entry stepped over on either
    side is charged through `meter`, and the answer may hold at most `max_bytes`, so a
    scan's time and memory follow its fuel however many writes the call has buffered.
    """
    writes, order = call.writes, call.order
    at = bisect_left(order, start)
    stop = len(order) if end is None else bisect_left(order, end)
    out: list[tuple[bytes, bytes]] = []
    held = 0
    if limit == 0:
        return out, held
    stored = call.state.iterate(start, end, meter)
    entry: tuple[bytes, bytes] | None = None
    done = False  # the state has nothing more in range
    try:
        while len(out) < limit:
            if entry is None and not done:
                entry = next(stored, None)
                done = entry is None
            if at < stop and (entry is None or order[at] <= entry[0]):  # the call's own write comes first
                key = order[at]
                at += 1
                own = writes[key]
                meter(len(key) + (len(own) if own is not None else 0))
                if entry is not None and entry[0] == key:
                    entry = None  # the stored entry it overwrites or removes
                if own is None:
                    continue
                value = own
            elif entry is not None:
                key, value = entry
                entry = None
            else:
                break
            held += len(key) + len(value)
            if held > max_bytes:
                raise _Trap(f"the first {len(out) + 1} entries of a scan hold {held} bytes, over the limit of "
                            f"{max_bytes} bytes per scan (max_scan_bytes); scan fewer entries at a time")
            out.append((key, value))
    finally:
        close = getattr(stored, "close", None)
        if close is not None:
            close()  # the store's cursor goes now, not whenever the generator is collected
    return out, held


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is not a finite number")
    return number


def _is_queries(name: str) -> bool:
    base = name.split("@", 1)[0]
    return base == "queries" or base.endswith("/queries")


@functools.lru_cache(maxsize=None)
def _engine(limits: Limits) -> wasmtime.Engine:
    """One engine per set of limits in a process, so its instance pool (reserved address
    space) is shared by every backend loaded with those limits."""
    config = wasmtime.Config()
    config.wasm_component_model = True
    config.consume_fuel = True
    config.cranelift_nan_canonicalization = True
    config.wasm_threads = False
    config.wasm_relaxed_simd = False
    config.wasm_memory64 = False
    config.max_wasm_stack = limits.max_wasm_stack
    _use_pooling_allocator(config, limits)
    return wasmtime.Engine(config)


# Instances alive at once in one engine. A node runs its calls one at a time, so a handful
# suffices (execute() deletes its store before returning); the margin is for processes
# (tests, tools) that hold several backends.
POOLED_COMPONENTS = 16


def _use_pooling_allocator(config: wasmtime.Config, limits: Limits) -> None:
    """Preallocated instance slots: a fresh instance per call then costs a slot reset, not
    an mmap and munmap per memory, which halves the per-call overhead. The slots are sized
    from the limits, so the pool never refuses what the limits allow."""
    capi.use_pooling_allocator(
        config,
        component_instances=POOLED_COMPONENTS,
        core_instances=POOLED_COMPONENTS * limits.instances,
        memories=POOLED_COMPONENTS * limits.memories,
        tables=POOLED_COMPONENTS * limits.tables,
        core_instances_per_component=limits.instances,
        memories_per_component=limits.memories,
        tables_per_component=limits.tables,
        table_elements=limits.table_elements,
        stacks=POOLED_COMPONENTS,
        max_memory_size=limits.memory_bytes_each,
        max_unused_warm_slots=POOLED_COMPONENTS,
    )


# A host function: (backend, store context, C argument array, C result array).
HostFunc = Callable[[Backend, capi.Context, Any, Any], None]


class _HostLinker:
    """A Backend's component linker together with the ctypes callbacks it points at.

    Why this shape: wasmtime keeps only the bare C function pointers of the callbacks
    (no data pointer, no finalizer, see capi.add_host_func), in the linker and in each
    store's instance made from it. So the callbacks are owned here, next to the linker,
    and released with it when the Backend goes, instead of in a process-wide list that
    grew with every backend loaded. This is safe because:

    - wasmtime calls a callback only while guest code runs, that is inside
      Backend.execute(), whose frame holds the Backend and so this object;
    - execute() closes its store before returning, so no store outlives the call;
    - __del__ deletes the C linker while the callbacks are still alive, and they are
      released only afterwards with this object's slots; a Python reference to the
      Linker kept elsewhere is then closed too and cannot instantiate anything;
    - the callbacks reach the Backend through a weak reference, so there is no
      Backend -> linker -> callback -> Backend cycle: a Backend is freed as soon as
      its last user lets go, without waiting for the cyclic collector.
    """

    __slots__ = ("linker", "_callbacks")

    def __init__(self, engine: wasmtime.Engine, backend: Backend) -> None:
        self._callbacks: list[capi.HostCallback] = []
        self.linker = wc.Linker(engine)
        owner = weakref.ref(backend)
        with self.linker.root() as root:
            with root.add_instance(STATE_INTERFACE) as state:
                self._add(state, "get", owner, Backend._host_get)
                self._add(state, "set", owner, Backend._host_set)
                self._add(state, "remove", owner, Backend._host_remove)
                self._add(state, "scan", owner, Backend._host_scan)
            with root.add_instance(CONTEXT_INTERFACE) as context:
                self._add(context, "block", owner, Backend._host_block)
                self._add(context, "caller", owner, Backend._host_caller)

    def _add(self, instance: wc.LinkerInstance, name: str, owner: weakref.ref[Backend], func: HostFunc) -> None:
        callback = _host_callback(owner, name, func)
        self._callbacks.append(callback)  # before wasmtime sees the pointer
        capi.add_host_func(instance, name, callback)

    def __del__(self) -> None:
        linker = getattr(self, "linker", None)  # absent if __init__ failed early
        if linker is not None:
            linker.close()  # first the C linker, then (with the slots) the callbacks


def _host_callback(owner: weakref.ref[Backend], name: str, func: HostFunc) -> capi.HostCallback:
    """`func` as a raw C callback, skipping wasmtime-py's generic conversion; a _Trap or
    any other exception becomes a trap of the guest."""

    def callback(env: int | None, ctx: capi.Context, ty: Any, args: Any, nargs: int, results: Any, nresults: int) -> int:
        backend = owner()
        current = None if backend is None else backend._call
        try:
            if backend is None:  # pragma: no cover - execute() holds the backend while guest code runs
                raise _Trap("the backend was released during a call")
            func(backend, ctx, args, results)
            return 0
        except _Trap as exc:
            reason = str(exc)
            if current is not None and current.host_error is None:
                current.host_error = reason
        except BaseException as exc:  # unwind the guest; execute() re-raises it as HostFailure
            reason = f"host failure in {name}"
            if current is not None:
                current.failure = exc
        return capi.trap_error(reason)

    return capi.HostCallback(callback)
