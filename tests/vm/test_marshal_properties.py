"""Properties of the WIT marshaling (vm/marshal.py, vm/abi.py), over random WIT types and values.

- Round trip: a JSON value of any supported type, checked, lowered into wasmtime's C value
  structs and lifted back, is the same JSON (flags in declared order, f32 at f32 precision).
- Result sizes: lifting with a limit of exactly the value's canonical JSON length passes, one
  byte less is refused, and the lower bound used while lifting never exceeds the real length.
- Arbitrary JSON given as a call or as an argument raises nothing but the documented
  CallError (ArgumentError inside the marshaler), whatever its shape or numbers.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtc.vm import Backend, CallError, abi, capi
from rtc.vm.marshal import INT_RANGES, ArgumentError, check, check_arguments, nullable
from rtc.vm.types import EnumT, FlagsT, ListT, OptionT, Prim, RecordT, ResultT, TupleT, VariantT, WitType, snake
from tests.conftest import component_path

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- WIT types ------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z][a-z0-9]{0,4}){0,2}", fullmatch=True)
PRIMS = st.sampled_from(["bool", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f32", "f64", "char", "string"])


def _unique_names(min_size: int, max_size: int) -> st.SearchStrategy[list[str]]:
    # snake_case must keep names apart too ("a-b" and "a_b" are one JSON name)
    return st.lists(NAMES, min_size=min_size, max_size=max_size, unique_by=snake)


def _compound(inner: st.SearchStrategy[WitType]) -> st.SearchStrategy[WitType]:
    return st.one_of(
        st.builds(ListT, inner),
        _unique_names(1, 3).flatmap(lambda names: st.tuples(*[inner] * len(names)).map(
            lambda types: RecordT(tuple(zip(names, types))))),
        st.lists(inner, min_size=1, max_size=3).map(lambda types: TupleT(tuple(types))),
        st.builds(OptionT, inner),
        st.builds(ResultT, st.none() | inner, st.none() | inner),
        _unique_names(1, 4).map(lambda names: EnumT(tuple(names))),
        _unique_names(1, 3).flatmap(lambda names: st.tuples(*[st.none() | inner] * len(names)).map(
            lambda types: VariantT(tuple(zip(names, types))))),
        _unique_names(1, 5).map(lambda names: FlagsT(tuple(names))),
    )


TYPES: st.SearchStrategy[WitType] = st.recursive(PRIMS.map(Prim), _compound, max_leaves=6)

# -- JSON values of a type, in the documented encoding -----------------------------------

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


def _prim_json(name: str) -> st.SearchStrategy[Any]:
    if name in INT_RANGES:
        low, high = INT_RANGES[name]
        return st.integers(low, high)
    if name == "bool":
        return st.booleans()
    if name == "char":
        return st.characters(exclude_categories=["Cs"])
    if name == "string":
        return TEXT
    specials = st.sampled_from(["NaN", "Infinity", "-Infinity"])
    width, exact = (32, 2**24) if name == "f32" else (64, 2**53)
    return st.floats(width=width, allow_nan=False, allow_infinity=False) | st.integers(-exact, exact) | specials


def json_of(ty: WitType) -> st.SearchStrategy[Any]:
    if isinstance(ty, Prim):
        return _prim_json(ty.name)
    if isinstance(ty, ListT):
        return st.lists(json_of(ty.element), max_size=4)
    if isinstance(ty, RecordT):
        return st.fixed_dictionaries({snake(name): json_of(field) for name, field in ty.fields})
    if isinstance(ty, TupleT):
        return st.tuples(*[json_of(element) for element in ty.elements]).map(list)
    if isinstance(ty, OptionT):
        some = json_of(ty.payload).map(lambda v: {"some": v}) if nullable(ty.payload) else json_of(ty.payload)
        return st.none() | some
    if isinstance(ty, ResultT):
        ok = st.just(None) if ty.ok is None else json_of(ty.ok)
        err = st.just(None) if ty.err is None else json_of(ty.err)
        return ok.map(lambda v: {"ok": v}) | err.map(lambda v: {"err": v})
    if isinstance(ty, EnumT):
        return st.sampled_from([snake(name) for name in ty.names])
    if isinstance(ty, VariantT):
        return st.one_of(*[st.just(snake(name)) if case is None else json_of(case).map(lambda v, n=snake(name): {n: v})
                           for name, case in ty.cases])
    if isinstance(ty, FlagsT):
        return st.lists(st.sampled_from([snake(name) for name in ty.names]), unique=True)
    raise AssertionError(ty)


def expected_lift(ty: WitType, value: Any) -> Any:
    """What lifting gives back for a JSON input: flags in declared order, f32 at f32 precision."""
    if isinstance(ty, Prim):
        if ty.name in ("f32", "f64") and not isinstance(value, str):
            return float(value)
        return value
    if isinstance(ty, ListT):
        return [expected_lift(ty.element, v) for v in value]
    if isinstance(ty, RecordT):
        return {snake(n): expected_lift(f, value[snake(n)]) for n, f in ty.fields}
    if isinstance(ty, TupleT):
        return [expected_lift(t, v) for t, v in zip(ty.elements, value)]
    if isinstance(ty, OptionT):
        if value is None:
            return None
        if nullable(ty.payload):
            return {"some": expected_lift(ty.payload, value["some"])}
        return expected_lift(ty.payload, value)
    if isinstance(ty, ResultT):
        (side, payload), = value.items()
        payload_ty = ty.ok if side == "ok" else ty.err
        return {side: None if payload_ty is None else expected_lift(payload_ty, payload)}
    if isinstance(ty, VariantT):
        if isinstance(value, str):
            return value
        (case, payload), = value.items()
        return {case: expected_lift(dict((snake(n), t) for n, t in ty.cases)[case], payload)}
    if isinstance(ty, FlagsT):
        return [snake(n) for n in ty.names if snake(n) in value]
    return value


def same(ty: WitType, got: Any, want: Any) -> bool:
    """Equality, with f32 compared as the f32 it is."""
    if isinstance(ty, Prim) and ty.name == "f32" and isinstance(want, float):
        return isinstance(got, float) and struct.pack("<f", got) == struct.pack("<f", want)
    if isinstance(ty, Prim) and ty.name == "f64" and isinstance(want, float):
        return isinstance(got, float) and (got == want or (math.isnan(got) and math.isnan(want)))
    if isinstance(ty, (ListT, TupleT)):
        types = [ty.element] * len(want) if isinstance(ty, ListT) else list(ty.elements)
        return len(got) == len(want) and all(same(t, g, w) for t, g, w in zip(types, got, want))
    if isinstance(ty, RecordT):
        return got.keys() == want.keys() and all(same(f, got[snake(n)], want[snake(n)]) for n, f in ty.fields)
    if isinstance(ty, OptionT) and want is not None:
        if nullable(ty.payload):
            return isinstance(got, dict) and same(ty.payload, got.get("some"), want["some"])
        return same(ty.payload, got, want)
    if isinstance(ty, ResultT):
        (side, payload), = want.items()
        payload_ty = ty.ok if side == "ok" else ty.err
        return side in got and (payload_ty is None or same(payload_ty, got[side], payload))
    if isinstance(ty, VariantT) and isinstance(want, dict):
        (case, payload), = want.items()
        case_ty = dict((snake(n), t) for n, t in ty.cases)[case]
        return isinstance(got, dict) and case in got and same(case_ty, got[case], payload)
    return bool(got == want)


def lower_then_lift(ty: WitType, canonical: Any, limit: int) -> Any:
    val = capi.Val()
    abi.lower(ty, canonical, val)
    try:
        return abi.lift_json(ty, val, limit)
    finally:
        abi.delete(val)


@SETTINGS
@given(TYPES.flatmap(lambda ty: st.tuples(st.just(ty), json_of(ty))))
def test_every_value_round_trips_through_the_c_structs(case: tuple[WitType, Any]) -> None:
    ty, value = case
    canonical = check(ty, value, "argument 'x'")
    lifted = lower_then_lift(ty, canonical, 1 << 30)
    assert same(ty, lifted, expected_lift(ty, value)), (ty.wit(), value, lifted)


@SETTINGS
@given(TYPES.flatmap(lambda ty: st.tuples(st.just(ty), json_of(ty))))
def test_the_result_limit_is_exact_and_its_lower_bound_sound(case: tuple[WitType, Any]) -> None:
    ty, value = case
    canonical = check(ty, value, "argument 'x'")
    size = len(orjson.dumps(lower_then_lift(ty, canonical, 1 << 30)))
    assert abi.Lifter().shortest(ty) <= size
    assert same(ty, lower_then_lift(ty, canonical, size), expected_lift(ty, value))
    with pytest.raises(abi.ResultTooLarge) as info:
        lower_then_lift(ty, canonical, size - 1)
    assert size - 1 < info.value.size <= size  # never claims more than the value is


# -- arbitrary JSON ------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70), st.integers(-(10**30), 10**30),
    st.sampled_from([2**64, 2**64 - 1, -(2**63) - 1, 10**400, -(10**400)]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e20, -0.0, 5.0, 1.8446744073709552e19, 3.5e38]),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT | st.sampled_from(["NaN", "Infinity", "some", "ok", "err"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT | st.sampled_from(["some", "ok", "err"]), inner, max_size=3),
    max_leaves=12,
)


@SETTINGS
@given(TYPES.flatmap(lambda ty: st.tuples(st.just(ty), NUMBERS | JSON | json_of(ty))))
def test_any_json_for_any_type_is_accepted_or_refused_with_an_argument_error(case: tuple[WitType, Any]) -> None:
    ty, value = case
    try:
        canonical = check_arguments((("x", ty),), {"x": value}, "f")
    except ArgumentError as exc:
        assert str(exc).startswith(("argument 'x'", "f: "))
        return
    lower_then_lift(ty, canonical[0], 1 << 30)  # what was accepted can be lowered


@pytest.fixture(scope="module")
def showcase() -> Backend:
    return Backend.from_file(component_path("showcase"))


@SETTINGS
@given(st.data())
def test_any_json_call_is_prepared_or_refused_with_a_call_error(showcase: Backend, data: st.DataObject) -> None:
    names = sorted(showcase.entry_points)
    function = data.draw(st.sampled_from([snake(n) for n in names]) | JSON, label="function")
    entry = showcase.entry_points.get(str(function).replace("_", "-")) if isinstance(function, str) else None
    params = [snake(n) for n, _ in entry.params] if entry else []
    keys = st.sampled_from(params) | TEXT if params else TEXT
    args = data.draw(st.dictionaries(keys, JSON, max_size=len(params) + 2), label="args")
    call = data.draw(st.just({"function": function, **args}) | JSON, label="call")
    try:
        showcase.prepare(call)
    except CallError:
        pass
    text = data.draw(st.binary(max_size=40) | st.just(json.dumps(call).encode()), label="text")
    assert showcase.argument_error(text) is None or isinstance(showcase.argument_error(text), str)
