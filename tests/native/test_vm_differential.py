"""The compiled core's calls against the reference's: identical outcomes, call by call.

Every case runs one call on `engine.Backend` (Python, the reference) and on
`native.NativeBackend` (Rust) over two copies of the same state, and demands the same
outcome: success, value (as canonical JSON), error text, fuel to the unit, and writes in
the same order. The workloads are random where a rule has edges (every entry point's types
with random values, fuel budgets that run out at every kind of host call, scans over random
overlays, result limits at the boundary), fixed where a case names a rule.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rtc_native
from rtc.vm import Backend, BlockInfo, HostFailure, Limits, NativeBackend, engine
from tests.conftest import component_path
from tests.vm.test_marshal_properties import json_of
from tests.vm.test_vm import DictState

BLOCK = BlockInfo(height=9, time_ms=1_700_000_000_777)
CALLER = bytes(range(32))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Pair = tuple[Backend, NativeBackend]


def pair(name: str, limits: Limits = Limits()) -> Pair:
    code = component_path(name).read_bytes()
    return Backend(code, limits), NativeBackend(code, limits)


@pytest.fixture(scope="module")
def showcase() -> Pair:
    return pair("showcase")


@pytest.fixture(scope="module")
def hostile() -> Pair:
    return pair("hostile", Limits(fuel=20_000_000, max_scan_bytes=4096))


def twin(backends: Pair, call: dict[str, Any], data: dict[bytes, bytes] | None = None) -> Any:
    """Run `call` on both cores over equal states; assert they agree; return the outcome."""
    reference, native = backends
    outcomes = []
    for backend in (reference, native):
        outcome = backend.execute(backend.prepare(call), DictState(data), BLOCK, caller=CALLER)
        outcomes.append(outcome)
    expected, got = outcomes
    assert (got.ok, got.error, got.fuel_used) == (expected.ok, expected.error, expected.fuel_used), call
    assert orjson.dumps(got.value) == orjson.dumps(expected.value), call
    assert list(got.writes.items()) == list(expected.writes.items()), call  # same order too
    return expected


# -- values through every type the showcase uses ------------------------------------------

@SETTINGS
@given(data=st.data())
def test_every_entry_point_with_random_arguments_agrees(showcase: Pair, data: st.DataObject) -> None:
    reference = showcase[0]
    name = data.draw(st.sampled_from(sorted(reference.entry_points)))
    entry = reference.entry_points[name]
    call = {"function": name}
    for param, ty in entry.params:
        call[param.replace("-", "_")] = data.draw(json_of(ty))
    twin(showcase, call, {b"counter": (41).to_bytes(8, "little", signed=True)})


def test_context_and_state_agree(showcase: Pair) -> None:
    assert twin(showcase, {"function": "block_info"}).value == [9, 1_700_000_000_777, list(CALLER)]
    twin(showcase, {"function": "counter_add", "n": -3})
    twin(showcase, {"function": "counter_get"})
    twin(showcase, {"function": "stats", "values": [1.5, float("nan"), 3.25]})


# -- hostile guests and every limit -------------------------------------------------------

@pytest.mark.parametrize("call", [
    {"function": "spin"},
    {"function": "spin_n", "n": 12345},
    {"function": "trap"},
    {"function": "deep_recursion", "n": 10_000_000},
    {"function": "write_then_trap", "key": "x"},
    {"function": "write_many", "n": 200},
    {"function": "read_missing"},
    {"function": "big_output", "n": 300_000},
    {"function": "write_keys", "n": 3, "value_len": 70_000},
    {"function": "scan_loop", "prefill": 300, "remove": False, "times": 2, "limit": 1000},
    {"function": "caller_loop", "times": 10},
])
def test_hostile_calls_agree(hostile: Pair, call: dict[str, Any]) -> None:
    twin(hostile, call, {b"w/" + i.to_bytes(4, "big"): b"stored" * 3 for i in range(0, 400, 3)})


def test_memory_and_write_limits_agree() -> None:
    twin(pair("hostile", Limits(memory_bytes=8 * 1024 * 1024)), {"function": "alloc_forever"})
    limited = pair("hostile", Limits(max_writes=100))
    twin(limited, {"function": "write_many", "n": 100})
    assert "at most 100 keys" in twin(limited, {"function": "write_many", "n": 101}).error


def test_result_limits_agree_at_the_boundary() -> None:
    size = len(orjson.dumps("x" * 1000))
    for limit in (size - 1, size, size + 1, 10, 1):
        twin(pair("hostile", Limits(max_result_bytes=limit)), {"function": "big_output", "n": 1000})


def test_queries_agree_on_their_own_budget() -> None:
    backends = pair("showcase", Limits(query_fuel=1_000))
    twin(backends, {"function": "counter_get"}, {b"counter": b"\x01" * 8})
    twin(pair("showcase"), {"function": "get_profile", "name": "nobody"})


@pytest.mark.parametrize("fuel_seed", range(6))
def test_fuel_running_out_at_every_kind_of_host_call_agrees(fuel_seed: int) -> None:
    """Budgets chosen so that calls die inside get, set, remove, scan and caller, at random points."""
    rng = random.Random(fuel_seed)
    backends = pair("hostile", Limits(fuel=rng.randrange(20_000, 400_000), max_scan_bytes=4096))
    data = {b"w/" + i.to_bytes(4, "big"): bytes(rng.randrange(40)) for i in range(0, 200, 2)}
    for _ in range(12):
        call = rng.choice([
            {"function": "get_loop", "times": rng.randrange(1, 200)},
            {"function": "set_loop", "times": rng.randrange(1, 200), "value_len": rng.randrange(0, 3000)},
            {"function": "remove_loop", "times": rng.randrange(1, 300)},
            {"function": "caller_loop", "times": rng.randrange(1, 300)},
            {"function": "scan_loop", "prefill": rng.randrange(0, 120), "remove": rng.random() < 0.5,
             "times": rng.randrange(1, 8), "limit": rng.randrange(0, 150)},
            {"function": "write_keys", "n": rng.randrange(0, 50), "value_len": rng.randrange(0, 500)},
        ])
        twin(backends, call, data)


@settings(max_examples=60, deadline=None)
@given(prefill=st.integers(0, 60), remove=st.booleans(), limit=st.integers(0, 80),
       stored=st.lists(st.integers(0, 80), max_size=60, unique=True))
def test_scans_over_a_call_s_own_writes_agree(hostile: Pair, prefill: int, remove: bool, limit: int,
                                               stored: list[int]) -> None:
    data = {b"w/" + i.to_bytes(4, "big"): b"s" * (i % 7) for i in stored}
    twin(hostile, {"function": "scan_loop", "prefill": prefill, "remove": remove, "times": 1, "limit": limit}, data)


# -- the node's own failures and the trap text -------------------------------------------

class BrokenState(DictState):
    def get(self, key: bytes) -> bytes | None:
        raise OSError("disk gone")


def test_a_host_failure_is_raised_by_both_not_recorded(hostile: Pair) -> None:
    for backend in hostile:
        with pytest.raises(HostFailure) as info:
            backend.execute(backend.prepare({"function": "get_loop", "times": 1}), BrokenState(), BLOCK)
        assert isinstance(info.value.__cause__, OSError)


PIECES = st.sampled_from(list("ab 0x9fz\n\r\t\x0b\x1c\x85\u2028é…") + [
    "all fuel consumed", "Unreachable", "0xdeadbeef", "wasm trap: ", "\r\n", "0x", "x" * 150])
MESSAGES = st.lists(PIECES, max_size=40).map("".join)


@SETTINGS
@given(message=MESSAGES | st.text(max_size=400), host_error=st.none() | st.text(max_size=20))
def test_trap_reasons_agree(message: str, host_error: str | None) -> None:
    assert rtc_native.trap_reason(message, host_error, list(engine.TRAP_REASONS)) == engine.trap_reason(message, host_error)


# -- components written to hit a limit: memories at instantiation, results while lifted ----

def test_a_memory_refused_at_instantiation_agrees() -> None:
    from tests.vm.test_limits import memories_component

    limits = Limits(memory_bytes=4 * 1024 * 1024, memories=4)
    code = memories_component(4, 1)
    backends = Backend(code, limits), NativeBackend(code, limits)
    for pages in (0, 1, 15, 16, 17, 100):
        twin(backends, {"function": "grow", "pages": pages})


@pytest.mark.parametrize("function", ["text", "bytes", "query_text"])
def test_results_lifted_up_to_the_limit_agree(function: str) -> None:
    from tests.vm.test_limits import RESULTS

    limits = Limits(max_result_bytes=1000, query_result_bytes=500)
    backends = Backend(RESULTS.encode(), limits), NativeBackend(RESULTS.encode(), limits)
    for n in (0, 1, 124, 125, 249, 250, 251, 497, 498, 499, 998, 999, 1000, 5000):
        twin(backends, {"function": function, "n": n})
    twin(backends, {"function": "query_spin"})
