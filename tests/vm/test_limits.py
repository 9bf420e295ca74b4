"""Per-call limits that hold whatever the component is made of (issue 12, findings 2-5):
memory over all of a call's linear memories, the result size while it is lifted, the
messages for out-of-range integers, and the smaller budget of read-only queries.

The components here are written in the component text format, so each hostile shape
(many memories, a huge result) is exactly what the test needs.
"""

from __future__ import annotations

import ctypes
from typing import Any

import orjson
import pytest

from rtc.protocol import ResultRecord
from rtc.protocol.canonical import JSONInputError, strict_json
from rtc.vm import Backend, BlockInfo, CallError, CallOutcome, DeployError, Limits, abi
from rtc.vm.marshal import ArgumentError, check_arguments
from rtc.vm.types import ListT, Prim
from tests.conftest import component_path
from tests.vm.test_vm import DictState

MIB = 1024 * 1024
BLOCK = BlockInfo(1, 0)


def run(backend: Backend, call: dict[str, Any]) -> CallOutcome:
    return backend.execute(backend.prepare(call), DictState(), BLOCK)


# -- memory: one bound over every linear memory of a call ------------------------------


def memories_component(count: int, pages: int) -> bytes:
    """`count` core modules, each with a memory of `pages` 64 KiB pages, and an entry point
    `grow(pages)` that grows every memory page by page, `pages` times or until a page is
    refused, and returns their total size in pages."""
    modules, imports, calls, links = [], [], [], []
    for i in range(count):
        modules.append(f'(core module $m{i} (memory {pages}) (func (export "grow") (param $n i32) (result i32) '
                       f'(block $full (loop $more (br_if $full (i32.eqz (local.get $n))) '
                       f'(br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) '
                       f'(local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $more))) memory.size)) '
                       f'(core instance $i{i} (instantiate $m{i}))')
        imports.append(f'(import "m{i}" "grow" (func $g{i} (param i32) (result i32)))')
        calls.append(f"(call $g{i} (local.get 0)) i32.add")
        links.append(f'(with "m{i}" (instance $i{i}))')
    return f"""(component {" ".join(modules)}
      (core module $main {" ".join(imports)}
        (func (export "grow") (param i32) (result i32) i32.const 0 {" ".join(calls)}))
      (core instance $main (instantiate $main {" ".join(links)}))
      (func (export "grow") (param "pages" u32) (result u32) (canon lift (core func $main "grow"))))""".encode()


def test_a_component_with_many_memories_cannot_multiply_the_memory_limit() -> None:
    """The report: 31 core modules of 64 MiB each took 2 GB on every node. With the default
    limits a call may create one linear memory, so such a component is refused at deploy."""
    with pytest.raises(DeployError, match=r"31 Wasm linear memories.*1 linear memory\(ies\) of up to 67108864 bytes"):
        Backend(memories_component(31, 1024))


def test_memory_limit_is_the_total_over_the_memories_a_call_may_create() -> None:
    limits = Limits(memory_bytes=16 * MIB, memories=4)
    backend = Backend(memories_component(4, 1), limits)
    outcome = run(backend, {"function": "grow", "pages": 1000})  # each memory would take 62.5 MiB
    assert outcome.ok, outcome.error
    assert outcome.value * 64 * 1024 == 16 * MIB  # 4 memories of 4 MiB: the total, not 4 x 16 MiB
    with pytest.raises(DeployError, match="5 Wasm linear memories"):
        Backend(memories_component(5, 1), limits)
    with pytest.raises(DeployError, match="does not fit"):  # one memory's initial size is over its share
        Backend(memories_component(1, 65), limits)


def test_one_memory_keeps_the_whole_limit() -> None:
    backend = Backend(memories_component(1, 1), Limits(memory_bytes=8 * MIB))
    assert run(backend, {"function": "grow", "pages": 1000}).value * 64 * 1024 == 8 * MIB


def test_limits_refuse_a_memory_share_below_one_page() -> None:
    with pytest.raises(ValueError, match="one 64 KiB page"):
        Limits(memory_bytes=64 * 1024, memories=2)


# -- results: refused while they are lifted --------------------------------------------

RESULTS = """(component
  (core module $m
    (memory (export "mem") 64)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)
    (func $fill (param $n i32) (result i32)
      (memory.fill (i32.const 16) (i32.const 120) (local.get $n))
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (local.get $n))
      i32.const 0)
    (func (export "text") (param i32) (result i32) (call $fill (local.get 0)))
    (func (export "bytes") (param i32) (result i32) (call $fill (local.get 0)))
    (func (export "spin") (result i32) (loop (br 0)) unreachable))
  (core instance $i (instantiate $m))
  (func $text (param "n" u32) (result string)
    (canon lift (core func $i "text") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
  (func $bytes (param "n" u32) (result (list u8))
    (canon lift (core func $i "bytes") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
  (func $query-text (param "n" u32) (result string)
    (canon lift (core func $i "text") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
  (func $query-spin (result u32) (canon lift (core func $i "spin")))
  (export "text" (func $text))
  (export "bytes" (func $bytes))
  (instance $q (export "query-text" (func $query-text)) (export "query-spin" (func $query-spin)))
  (export "queries" (instance $q)))
"""


def results_backend(**limits: Any) -> Backend:
    return Backend(RESULTS.encode(), Limits(**limits))


def test_the_result_limit_is_checked_on_the_json_before_the_node_sees_it() -> None:
    """"x" * n is n + 2 bytes of JSON; [120,...] is 4n + 1. One byte over the limit is refused
    by the VM, with a message that names the limit."""
    backend = results_backend(max_result_bytes=1000)
    assert run(backend, {"function": "text", "n": 998}).value == "x" * 998
    refused = run(backend, {"function": "text", "n": 999})
    assert not refused.ok and refused.writes == {}
    assert refused.error is not None and refused.error.startswith("result of at least 1001 bytes exceeds the limit of 1000 bytes")
    assert "max_result_bytes" in refused.error
    assert run(backend, {"function": "bytes", "n": 249}).ok  # 997 bytes
    assert not run(backend, {"function": "bytes", "n": 250}).ok  # 1001 bytes


def test_the_vm_measures_what_the_node_measures_within_the_record_fields() -> None:
    """The VM measures the value's canonical JSON; the node (ResultRecord.result_bytes) the
    record without height and tx, which is the value plus `{"fuel":F,"status":"ok","value":}`."""
    backend = results_backend()
    for n in (0, 1, 500, 4000):
        outcome = run(backend, {"function": "bytes", "n": n})
        value_bytes = len(orjson.dumps(outcome.value))
        record = ResultRecord.ok(outcome.value, outcome.fuel_used).at(BLOCK.height, "ab" * 32)
        assert record.result_bytes - value_bytes == len('{"fuel":,"status":"ok","value":}') + len(str(outcome.fuel_used))


def test_a_huge_result_is_refused_before_it_is_copied_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3 MiB string (and a 2 million element list) against a 1,000 byte limit: nothing
    near that size is copied out of wasmtime's value tree, nor turned into Python objects."""
    copied: list[int] = []
    real = ctypes.string_at

    def spy(address: Any, size: int = -1) -> bytes:
        copied.append(size)
        return real(address, size)

    monkeypatch.setattr(abi.ctypes, "string_at", spy)
    backend = results_backend(max_result_bytes=1000)
    for call in ({"function": "text", "n": 3 * MIB}, {"function": "bytes", "n": 2_000_000}):
        outcome = run(backend, call)
        assert not outcome.ok and "exceeds the limit of 1000 bytes" in (outcome.error or "")
    assert max(copied, default=0) < 1000


def test_lifting_counts_each_case_and_nesting_without_refusing_what_fits() -> None:
    """The lower bound grows at options, results, variants and nested lists; a value exactly
    at the limit passes."""
    backend = Backend.from_file(component_path("showcase"))
    call = {"function": "nested", "x": {"some": None}, "y": [["a"], [], ["b", "c"]], "z": {"err": "no"}}
    value = run(backend, call).value
    size = len(orjson.dumps(value))
    exact = Backend.from_file(component_path("showcase"), Limits(max_result_bytes=size))
    assert run(exact, call).value == value
    below = Backend.from_file(component_path("showcase"), Limits(max_result_bytes=size - 1))
    assert f"result of at least {size} bytes" in (run(below, call).error or "")


# -- queries: a smaller fuel budget and result cap ---------------------------------------


def test_queries_run_with_their_own_smaller_fuel_and_result_limits() -> None:
    limits = Limits()
    assert limits.query_fuel == 1_000_000 and limits.query_fuel * 10 <= limits.fuel
    assert limits.query_result_bytes <= limits.max_result_bytes
    backend = results_backend(query_result_bytes=100)
    assert backend.entry_points["query-text"].read_only
    spin = run(backend, {"function": "query_spin"})
    assert not spin.ok and spin.error == "out of fuel" and spin.fuel_used == 1_000_000
    assert run(backend, {"function": "query_text", "n": 98}).value == "x" * 98
    refused = run(backend, {"function": "query_text", "n": 99})
    assert not refused.ok and "exceeds the limit of 100 bytes (query_result_bytes" in (refused.error or "")
    assert run(backend, {"function": "text", "n": 99}).ok  # a transaction's limit is max_result_bytes


# -- integers out of range: the parameter, its WIT type and its range --------------------


SCALARS = {"b": True, "i8v": 0, "i16v": 0, "i32v": 0, "i64v": 0, "u8v": 0, "u16v": 0, "u32v": 0, "u64v": 0,
           "f32v": 0.5, "f64v": 0.5, "c": "a"}


def scalars_text(name: str, number: str) -> str:
    """A call of echo_scalars as JSON text, with `number` written as is for argument `name`."""
    text = orjson.dumps({"function": "echo_scalars", **{k: v for k, v in SCALARS.items() if k != name}}).decode()
    return text[:-1] + f',"{name}":{number}}}'


@pytest.fixture(scope="module")
def showcase() -> Backend:
    return Backend.from_file(component_path("showcase"))


@pytest.mark.parametrize(
    "name, number, message",
    [
        # Floats that JSON readers make of big integers (JavaScript: 18446744073709552000).
        ("u64v", "1.8446744073709552e19", "argument 'u64v': expected u64, got 1.8446744073709552e+19, "
                                          "out of range [0, 18446744073709551615]"),
        ("u32v", "1e20", "argument 'u32v': expected u32, got 1e+20, out of range [0, 4294967295]"),
        ("i64v", "-9.223372036854775808e18", "argument 'i64v': expected s64, got -9.223372036854776e+18, a number too "
                                             "large to be exact: write integers in [-9223372036854775808, "
                                             "9223372036854775807] as plain digits"),
        ("i64v", "9223372036854775808", "argument 'i64v': expected s64, got 9223372036854775808, "
                                        "out of range [-9223372036854775808, 9223372036854775807]"),
        ("u32v", "-1", "argument 'u32v': expected u32, got -1, out of range [0, 4294967295]"),
        ("u8v", "256", "argument 'u8v': expected u8, got 256, out of range [0, 255]"),
        ("u8v", "5.0", "argument 'u8v': expected u8, got 5.0: write integers without a fraction"),
        ("f32v", "1e39", "argument 'f32v': expected f32, got 1e+39, out of f32 range"),
    ],
)
def test_out_of_range_numbers_name_the_parameter_type_and_range(showcase: Backend, name: str, number: str,
                                                                 message: str) -> None:
    """As the node reads a call: strict JSON, then the marshaler."""
    with pytest.raises(CallError) as info:
        showcase.prepare(strict_json(scalars_text(name, number)))
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "name, number, message",
    [
        ("u64v", "18446744073709551616", "argument 'u64v': expected u64, got 18446744073709551616, "
                                         "out of range [0, 18446744073709551615]"),
        ("i64v", "-9223372036854775809", "argument 'i64v': expected s64, got -9223372036854775809, "
                                         "out of range [-9223372036854775808, 9223372036854775807]"),
        ("u8v", "340282366920938463463374607431768211456", "argument 'u8v': expected u8, got "
                                                           "340282366920938463463374607431768211456, out of range [0, 255]"),
        ("f64v", "1180591620717411303424", "argument 'f64v': expected f64, got 1180591620717411303424, an integer "
                                           "beyond 64 bits: write it as a float"),
    ],
)
def test_an_integer_beyond_64_bits_is_named_by_its_parameter(showcase: Backend, name: str, number: str,
                                                             message: str) -> None:
    """strict JSON refuses integers beyond 64 bits before any type is known; argument_error
    reads them exactly, so the node can say which parameter, WIT type and range."""
    text = scalars_text(name, number)
    with pytest.raises(JSONInputError, match="beyond 64 bits"):
        strict_json(text)
    assert (showcase.argument_error(text) or "").startswith(message)


def test_argument_error_leaves_other_faults_to_strict_json(showcase: Backend) -> None:
    assert showcase.argument_error(orjson.dumps({"function": "echo_scalars", **SCALARS})) is None
    assert showcase.argument_error(scalars_text("u8v", "1").replace('"u8v":0,', "")) is None
    assert showcase.argument_error(scalars_text("u8v", "1")[:-1] + ',"u8v":1}') is None  # a duplicate key
    assert showcase.argument_error(b"[1, 2") is None
    assert showcase.argument_error(scalars_text("f64v", "NaN")) is None
    assert showcase.argument_error(scalars_text("f64v", "1e999999")) is None  # an infinity
    assert showcase.argument_error(scalars_text("c", '"\\ud800"')) is None  # strict JSON's to name
    assert showcase.argument_error(scalars_text("u8v", "300")) is None  # no integer beyond 64 bits


def test_integers_of_any_size_from_python_are_refused_as_call_errors(showcase: Backend) -> None:
    """Backend.prepare takes any JSON-like value: an integer too long to print, or beyond
    64 bits for a float, is a CallError like any other bad argument (they were a ValueError,
    an OverflowError, or accepted)."""
    for name, value, message in [
        ("i8v", 10**5000, "argument 'i8v': expected s8, got an integer of about 5001 digits, out of range [-128, 127]"),
        ("f64v", 10**400, "argument 'f64v': expected f64, got an integer of about 401 digits, an integer beyond 64 bits"),
        ("f64v", 2**64, "argument 'f64v': expected f64, got 18446744073709551616, an integer beyond 64 bits"),
    ]:
        with pytest.raises(CallError) as info:
            showcase.prepare({"function": "echo_scalars", **SCALARS, name: value})
        assert str(info.value).startswith(message)
    assert showcase.prepare({"function": "echo_scalars", **SCALARS, "f64v": 2**64 - 1}).args[10] == float(2**64 - 1)
    with pytest.raises(ArgumentError, match=r"argument 'values'\[1\]: expected u8, got 300, out of range \[0, 255\]"):
        check_arguments((("values", ListT(Prim("u8"))),), {"values": [1, 300]}, "f")
