"""The compiled core (`rtc_native`, Rust) behind the same `Backend` interface.

`engine.Backend` is the reference: it loads and checks the component, knows its entry
points and checks calls. `NativeBackend` is that Backend with `execute` done by the
compiled core, which runs the very wasmtime library wasmtime-py loaded, on the engine and
component the reference compiled, with host functions in Rust that charge the same fuel in
the same order (native/src/vm.rs names the Python each rule mirrors). Both must agree
exactly; tests/native/ runs them side by side, and a cluster may mix them.

A node picks its core with RTC_CORE=python|native or "core" in its rtc.json (`load_backend`);
unset, it takes the native core when it is built (`make setup`), and its log names the core.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import capi
from .abi import Lifter
from .engine import TRAP_REASONS, CONTEXT_INTERFACE, STATE_INTERFACE, Backend, BlockInfo, CallOutcome, HostFailure, Limits, \
    PreparedCall, StateView
from .marshal import nullable
from .types import EnumT, FlagsT, ListT, OptionT, Prim, RecordT, ResultT, TupleT, VariantT, WitType, snake

try:
    import rtc_native
except ImportError as exc:  # not built: `make setup` builds it
    rtc_native = None
    _MISSING = str(exc)
else:
    _MISSING = ""

CORES = ("python", "native")


class CoreUnavailable(RuntimeError):
    """RTC_CORE asks for a core this installation does not have."""


def chosen_core(requested: str | None = None) -> str:
    """The core a node runs: `requested`, else RTC_CORE, else native when it is built."""
    name = (requested or os.environ.get("RTC_CORE") or "").strip().lower()
    if not name:
        return "native" if rtc_native is not None else "python"
    if name not in CORES:
        raise CoreUnavailable(f"RTC_CORE={name!r}: the core is one of {', '.join(CORES)}")
    if name == "native" and rtc_native is None:
        raise CoreUnavailable(f"RTC_CORE=native, but the compiled core is not installed ({_MISSING}); "
                              "run `make setup`, which builds it with cargo and maturin")
    return name


def load_backend(wasm: bytes | str | Path, limits: Limits = Limits(), core: str | None = None) -> Backend:
    """A backend on the chosen core (`chosen_core`), from component bytes or a file."""
    code = wasm if isinstance(wasm, bytes) else Path(wasm).read_bytes()
    if chosen_core(core) == "native":
        return NativeBackend(code, limits)
    return Backend(code, limits)


class NativeBackend(Backend):
    """A Backend whose calls run in the compiled core; everything else is the reference's."""

    core = "native"

    def __init__(self, wasm: bytes, limits: Limits = Limits()) -> None:
        if rtc_native is None:
            raise CoreUnavailable(f"the compiled core is not installed ({_MISSING}); run `make setup`")
        super().__init__(wasm, limits)
        lifter = Lifter()
        self.entry_ids: dict[str, int] = {}
        entries = []
        for name, entry in self.entry_points.items():
            self.entry_ids[name] = len(entries)
            result = None if entry.result is None else describe(entry.result, lifter)
            shortest = 0 if entry.result is None else lifter.shortest(entry.result)
            entries.append((capi.address(self._export_index[name]), tuple(describe(t, lifter) for _, t in entry.params),
                            result, shortest, entry.read_only))
        self.vm = rtc_native.NativeVm(
            capi.library_path(), self, capi.address(self.engine), capi.address(self.component), entries,
            _limits(limits), (STATE_INTERFACE, CONTEXT_INTERFACE), list(TRAP_REASONS))

    def execute(self, prepared: PreparedCall, state: StateView, block: BlockInfo, caller: bytes = b"") -> CallOutcome:
        try:
            ok, value, error, fuel_used, writes = self.vm.execute(
                self.entry_ids[prepared.entry.name], prepared.args, state, block.height, block.time_ms, caller)
        except rtc_native.HostFailed as exc:
            raise HostFailure(f"the host failed while serving {prepared.entry.name}") from exc.__cause__
        return CallOutcome(ok, value, error, fuel_used, writes)


def _limits(limits: Limits) -> dict[str, int]:
    fields = ("fuel", "query_fuel", "max_result_bytes", "query_result_bytes", "table_elements", "instances", "tables",
              "memories", "max_key_bytes", "max_value_bytes", "max_writes", "max_scan", "max_scan_bytes",
              "host_call_fuel", "fuel_per_byte", "scan_entry_fuel", "scan_step_fuel", "scan_byte_fuel")
    out = {name: getattr(limits, name) for name in fields}
    out["memory_bytes_each"] = limits.memory_bytes_each
    return out


def describe(ty: WitType, lifter: Lifter) -> tuple[Any, ...]:
    """`ty` as the core reads it (native/src/types.rs), with the JSON sizes the reference's
    Lifter computes for the result bound, so both bound a result by the same arithmetic."""
    if isinstance(ty, Prim):
        return ("prim", ty.name)
    if isinstance(ty, ListT):
        return ("list", describe(ty.element, lifter), lifter.shortest(ty.element))
    if isinstance(ty, RecordT):
        return ("record", tuple((name, snake(name), describe(t, lifter)) for name, t in ty.fields))
    if isinstance(ty, TupleT):
        return ("tuple", tuple(describe(t, lifter) for t in ty.elements))
    if isinstance(ty, OptionT):
        extra = lifter.beyond_shortest(ty)
        return ("option", describe(ty.payload, lifter), nullable(ty.payload), extra[False], extra[True])
    if isinstance(ty, ResultT):
        extra = lifter.beyond_shortest(ty)
        return ("result", _optional(ty.ok, lifter), _optional(ty.err, lifter), extra[True], extra[False])
    if isinstance(ty, EnumT):
        shortest = lifter.shortest(ty)
        return ("enum", tuple((name, snake(name), len(snake(name)) + 2 - shortest) for name in ty.names))
    if isinstance(ty, VariantT):
        extra = lifter.beyond_shortest(ty)
        return ("variant", tuple((name, snake(name), _optional(t, lifter), extra[name]) for name, t in ty.cases))
    if isinstance(ty, FlagsT):
        return ("flags", tuple((name, snake(name)) for name in ty.names))
    raise TypeError(f"cannot describe {ty!r}")  # pragma: no cover - types are closed


def _optional(ty: WitType | None, lifter: Lifter) -> tuple[Any, ...] | None:
    return None if ty is None else describe(ty, lifter)
