"""The VM against real components built from the Rust sources in examples/ and tests/fixtures/."""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Callable, Iterator

import pytest

from rtc.vm import Backend, BlockInfo, CallError, DeployError, Limits
from tests.conftest import component_path

BLOCK = BlockInfo(height=7, time_ms=1_700_000_000_123)


class DictState:
    """A committed-state stand-in: sorted keys, like the real store's scan."""

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def iterate(self, start: bytes, end: bytes | None, meter: Callable[[int], None]) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(self.data)
        for key in keys[bisect_left(keys, start):]:
            meter(len(key) + len(self.data[key]))  # as the node's store: every entry read is charged
            if end is not None and key >= end:
                return
            yield key, self.data[key]

    def apply(self, writes: dict[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


@pytest.fixture(scope="module")
def showcase() -> Backend:
    return Backend.from_file(component_path("showcase"))


@pytest.fixture(scope="module")
def hostile() -> Backend:
    return Backend.from_file(component_path("hostile"), Limits(fuel=20_000_000))


def run(backend: Backend, call: dict, state: DictState | None = None):
    state = state if state is not None else DictState()
    outcome = backend.execute(backend.prepare(call), state, BLOCK, caller=b"\x01\x02")
    if outcome.ok:
        state.apply(outcome.writes)
    return outcome


def test_sum_entry_point_and_result() -> None:
    backend = Backend.from_file(component_path("sum"))
    entry = backend.entry_points["sum"]
    assert entry.describe() == {
        "name": "sum", "params": [{"name": "x", "type": "s32"}, {"name": "y", "type": "s32"}],
        "result": "s32", "read_only": False,
    }
    outcome = run(backend, {"function": "sum", "x": 5, "y": 3})
    assert outcome.ok and outcome.value == 8 and outcome.fuel_used > 0


def test_every_scalar_round_trips(showcase: Backend) -> None:
    args = {"b": True, "i8v": -128, "i16v": -32768, "i32v": -(2**31), "i64v": -(2**63), "u8v": 255,
            "u16v": 65535, "u32v": 2**32 - 1, "u64v": 2**64 - 1, "f32v": 0.1, "f64v": -2.5e-300, "c": "🦀"}
    outcome = run(showcase, {"function": "echo_scalars", **args})
    assert outcome.ok, outcome.error
    assert outcome.value == [True, -128, -32768, -(2**31), -(2**63), 255, 65535, 2**32 - 1, 2**64 - 1, 0.1, -2.5e-300, "🦀"]


def test_special_floats(showcase: Backend) -> None:
    args = {"b": False, "i8v": 0, "i16v": 0, "i32v": 0, "i64v": 0, "u8v": 0, "u16v": 0, "u32v": 0, "u64v": 0,
            "f32v": "Infinity", "f64v": "NaN", "c": "a"}
    outcome = run(showcase, {"function": "echo_scalars", **args})
    assert outcome.value[9] == "Infinity" and outcome.value[10] == "NaN"


def test_records_enums_flags_options_and_results(showcase: Backend) -> None:
    state = DictState()
    profile = {"name": "ada", "age": 36, "tags": ["math", "engines"], "email": None, "level": "admin",
               "permissions": ["write", "read"]}
    first = run(showcase, {"function": "put_profile", "profile": profile}, state)
    second = run(showcase, {"function": "put_profile", "profile": {**profile, "email": "ada@example.org"}}, state)
    assert first.value == {"ok": 1} and second.value == {"ok": 2}
    got = run(showcase, {"function": "get_profile", "name": "ada"}, state)
    assert got.value == {**profile, "email": "ada@example.org", "permissions": ["read", "write"]}
    assert run(showcase, {"function": "get_profile", "name": "nobody"}, state).value is None
    assert run(showcase, {"function": "put_profile", "profile": {**profile, "name": ""}}, state).value == {"err": "name must not be empty"}


def test_lists_options_of_options_variants(showcase: Backend) -> None:
    assert run(showcase, {"function": "stats", "values": []}).value is None
    summary = run(showcase, {"function": "stats", "values": [1.0, 2.0, 6.0]}).value
    assert summary == {"count": 3, "min": 1.0, "max": 6.0, "mean": 3.0}
    for x in (None, {"some": None}, {"some": 7}):
        value = run(showcase, {"function": "nested", "x": x, "y": [["a"], [], ["b", "c"]], "z": {"err": "no"}}).value
        assert value == [x, [["a"], [], ["b", "c"]], {"err": "no"}]
    assert run(showcase, {"function": "nested", "x": None, "y": [], "z": {"ok": None}}).value[2] == {"ok": None}
    assert run(showcase, {"function": "area", "s": {"circle": 1.0}}).value == pytest.approx(math.pi)
    assert run(showcase, {"function": "area", "s": {"rect": [2.0, 3.5]}}).value == 7.0
    assert run(showcase, {"function": "area", "s": "point"}).value == 0.0


def test_host_context_and_state(showcase: Backend) -> None:
    state = DictState()
    height, time_ms, caller = run(showcase, {"function": "block_info"}, state).value
    assert (height, time_ms, caller) == (7, 1_700_000_000_123, [1, 2])
    assert run(showcase, {"function": "counter_add", "n": 5}, state).value == 5
    assert run(showcase, {"function": "counter_add", "n": -7}, state).value == -2
    assert run(showcase, {"function": "counter_get"}, state).value == -2


@pytest.mark.parametrize(
    "call, message",
    [
        ({"function": "nope"}, "unknown function 'nope'"),
        ({"x": 1}, 'no "function"'),
        ({"function": "divide", "a": 1}, "missing argument 'b' (s64)"),
        ({"function": "divide", "a": 1, "b": 2, "c": 3}, "unexpected argument 'c'"),
        ({"function": "divide", "a": "1", "b": 2}, "argument 'a': expected s64, got string"),
        ({"function": "divide", "a": 1.5, "b": 2}, "argument 'a': expected s64, got number"),
        ({"function": "divide", "a": True, "b": 2}, "argument 'a': expected s64, got boolean"),
        ({"function": "divide", "a": 2**63, "b": 2}, "out of range"),
        ({"function": "greet", "name": "\ud800"}, "lone surrogate"),
        ({"function": "greet", "name": None}, "expected string, got null"),
        ({"function": "stats", "values": [1, "x"]}, "argument 'values'[1]: expected f64, got string"),
        ({"function": "area", "s": {"hexagon": 1}}, "unknown case 'hexagon'"),
        ({"function": "area", "s": "circle"}, "case 'circle' needs a value"),
        ({"function": "area", "s": {"rect": [1.0]}}, "got an array of 1 elements"),
        ({"function": "nested", "x": 5, "y": [], "z": {"ok": None}}, 'null or {"some": ...}'),
        ({"function": "nested", "x": None, "y": [], "z": {"maybe": 1}}, '{"ok": ...} or {"err": ...}'),
        ({"function": "put_profile", "profile": {"name": "x"}}, "missing field 'age'"),
        ({"function": "put_profile", "profile": {"name": "x", "age": 300, "tags": [], "email": None,
                                                 "level": "guest", "permissions": []}}, "out of range [0, 255]"),
        ({"function": "put_profile", "profile": {"name": "x", "age": 3, "tags": [], "email": None,
                                                 "level": "root", "permissions": []}}, "got 'root'"),
        ({"function": "put_profile", "profile": {"name": "x", "age": 3, "tags": [], "email": None,
                                                 "level": "guest", "permissions": ["fly"]}}, "unknown flag 'fly'"),
        ({"function": "echo_scalars", "b": True, "i8v": 0, "i16v": 0, "i32v": 0, "i64v": 0, "u8v": 0, "u16v": 0,
          "u32v": 0, "u64v": 0, "f32v": 1e39, "f64v": 0, "c": "ab"}, "out of f32 range"),
    ],
)
def test_invalid_calls_are_refused_with_a_precise_message(showcase: Backend, call: dict, message: str) -> None:
    with pytest.raises(CallError) as info:
        showcase.prepare(call)
    assert message in str(info.value)


def test_fuel_is_deterministic_and_metered(hostile: Backend) -> None:
    small = run(hostile, {"function": "spin_n", "n": 1000})
    again = run(hostile, {"function": "spin_n", "n": 1000})
    bigger = run(hostile, {"function": "spin_n", "n": 2000})
    assert small.ok and small.fuel_used == again.fuel_used and small.value == again.value
    assert bigger.fuel_used > small.fuel_used


@pytest.mark.parametrize(
    "call, reason",
    [
        ({"function": "spin"}, "out of fuel"),
        ({"function": "trap"}, "unreachable"),
        ({"function": "deep_recursion", "n": 10_000_000}, "stack overflow"),
    ],
)
def test_hostile_calls_trap_with_a_reason(hostile: Backend, call: dict, reason: str) -> None:
    outcome = run(hostile, call)
    assert not outcome.ok and reason in outcome.error and outcome.writes == {}


def test_unbounded_allocation_is_stopped_by_the_memory_limit() -> None:
    backend = Backend.from_file(component_path("hostile"), Limits(memory_bytes=8 * 1024 * 1024))
    outcome = run(backend, {"function": "alloc_forever"})
    assert not outcome.ok and outcome.writes == {}


def test_a_trap_after_a_write_changes_nothing(hostile: Backend) -> None:
    state = DictState({b"keep": b"1"})
    outcome = run(hostile, {"function": "write_then_trap", "key": "x"}, state)
    assert not outcome.ok and outcome.writes == {} and state.data == {b"keep": b"1"}


def test_write_limit_per_call() -> None:
    backend = Backend.from_file(component_path("hostile"), Limits(max_writes=100))
    assert run(backend, {"function": "write_many", "n": 100}).ok
    outcome = run(backend, {"function": "write_many", "n": 101})
    assert not outcome.ok and "at most 100 keys" in outcome.error


def test_queries_cannot_write() -> None:
    backend = Backend.from_file(component_path("showcase"))
    assert backend.entry_points["counter-get"].read_only
    assert not backend.entry_points["counter-add"].read_only


def test_missing_key_reads_as_none(hostile: Backend) -> None:
    assert run(hostile, {"function": "read_missing"}).value is True


def test_component_with_foreign_import_is_refused_by_name() -> None:
    with pytest.raises(DeployError, match="evil:net/socket"):
        Backend.from_file(component_path("bad-import"))


def test_garbage_is_not_a_component() -> None:
    with pytest.raises(DeployError, match="not a valid WebAssembly component"):
        Backend(b"\x00asm garbage")


def _importing(signature: str) -> bytes:
    """A tiny component (text format) that imports the state interface with `signature`."""
    return f"""
    (component
      (import "rtc:backend/state@0.1.0" (instance (export "get" (func {signature}))))
      (core module $m (func (export "f") (result i32) i32.const 1))
      (core instance $i (instantiate $m))
      (func (export "f") (result s32) (canon lift (core func $i "f"))))
    """.encode()


def test_host_imports_with_a_forged_signature_are_refused() -> None:
    """wasmtime accepts any declared signature; the host must not read a u64 as a byte list."""
    with pytest.raises(DeployError, match="different signature"):
        Backend(_importing('(param "key" u64) (result u32)'))
    with pytest.raises(DeployError, match="different signature"):
        Backend(_importing('(param "key" string) (result (option (list u8)))'))
    ok = Backend(_importing('(param "key" (list u8)) (result (option (list u8)))'))
    assert "f" in ok.entry_points


class FailingState(DictState):
    def get(self, key: bytes) -> bytes | None:
        raise OSError("disk on fire")


def test_a_node_local_failure_is_raised_not_recorded(showcase: Backend) -> None:
    """A storage error on one node must stop that node, never become a committed result."""
    from rtc.vm import HostFailure

    with pytest.raises(HostFailure) as info:
        showcase.execute(showcase.prepare({"function": "counter_add", "n": 1}), FailingState(), BLOCK)
    assert isinstance(info.value.__cause__, OSError)
    assert run(showcase, {"function": "counter_add", "n": 1}).ok  # the backend is still usable


def test_queries_get_their_own_smaller_fuel_budget() -> None:
    backend = Backend.from_file(component_path("showcase"), Limits(fuel=50_000_000, query_fuel=1_000))
    assert not run(backend, {"function": "counter_get"}).ok
    assert run(backend, {"function": "counter_add", "n": 1}).ok


def test_limits_refuse_a_stack_wasmtime_would_abort_on() -> None:
    with pytest.raises(ValueError, match="2 MiB"):
        Limits(max_wasm_stack=8 * 1024 * 1024)
