"""JSON call arguments to checked WIT values, with errors that name the exact problem.

This runs in CheckTx for every transaction, before it is ordered, and again when the
block executes it, so it must be strict and deterministic. The JSON conventions are
documented in docs/backends.md:

| WIT                      | JSON                                                        |
|--------------------------|-------------------------------------------------------------|
| integers                 | number without fraction (range checked)                     |
| f32, f64                 | number, or "NaN" / "Infinity" / "-Infinity"                 |
| bool                     | true / false                                                |
| char                     | string holding exactly one Unicode scalar value             |
| string                   | string (no lone surrogates)                                 |
| list<T>                  | array                                                       |
| record                   | object with every field (snake_case or kebab-case names)    |
| tuple                    | array of exact length                                       |
| option<T>                | null or T; {"some": T} when T itself can be null            |
| result<T, E>             | {"ok": T} or {"err": E} (null payload when the side is `_`) |
| enum                     | case name                                                   |
| variant                  | {"case": payload}, or "case" for a case without payload     |
| flags                    | array of flag names                                         |

The checked ("canonical") values use: records and tuples as Python tuples, list<u8> as
bytes, option as None or a 1-tuple `(value,)`, result as `("ok"|"err", payload)`, variant
as `(case, payload)`, enum as its case name, flags as a tuple of names in declared order.
"""

from __future__ import annotations

import math
from typing import Any

from .types import EnumT, FlagsT, ListT, OptionT, Prim, RecordT, ResultT, TupleT, VariantT, WitType, kebab, snake

INT_RANGES: dict[str, tuple[int, int]] = {
    "s8": (-(2**7), 2**7 - 1),
    "s16": (-(2**15), 2**15 - 1),
    "s32": (-(2**31), 2**31 - 1),
    "s64": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}
#: What a JSON number written as an integer may be in a call (rtc.protocol's strict_json):
#: anything that fits s64 or u64. A larger one is refused for every type, floats included.
JSON_INT_RANGE = (-(2**63), 2**64 - 1)
SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
F32_MAX = 3.4028234663852886e38


class ArgumentError(ValueError):
    """An argument does not fit the entry point's WIT type; the message says where and why."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fail(path: str, ty: WitType, value: Any, detail: str = "") -> ArgumentError:
    got = f"got {_kind(value)}" if not detail else detail
    return ArgumentError(f"{path}: expected {ty.wit()}, {got}")


def _shown(value: Any) -> str:
    """A value as an error message shows it: short, whatever its size (Python refuses to
    print an integer of more than 4300 digits, and a megabyte string helps no one)."""
    if type(value) is int and value.bit_length() > 256:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_text(path: str, text: str) -> None:
    # JSON escapes can smuggle in lone surrogates, which are not valid UTF-8 and which
    # the component model refuses; name them instead of failing deep inside the VM.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ArgumentError(f"{path}: string is not valid Unicode (lone surrogate at index {exc.start})") from None


def nullable(ty: WitType) -> bool:
    """Whether JSON null is a valid encoding of some value of `ty` (then option wraps with {"some": ...})."""
    return isinstance(ty, OptionT)


def check(ty: WitType, value: Any, path: str) -> Any:
    """Validate a JSON value against `ty` and return its canonical form."""
    if isinstance(ty, Prim):
        return _check_prim(ty, value, path)
    if isinstance(ty, ListT):
        if not isinstance(value, list):
            raise _fail(path, ty, value)
        element = ty.element
        if element == Prim("u8"):
            for i, item in enumerate(value):
                if type(item) is not int or not 0 <= item <= 255:
                    _check_prim(element, item, f"{path}[{i}]")  # raises, with the reason
                    raise _fail(f"{path}[{i}]", element, item, f"got {_shown(item)}")  # pragma: no cover
            return bytes(value)
        return [check(element, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(ty, RecordT):
        if not isinstance(value, dict):
            raise _fail(path, ty, value)
        return _check_fields(ty, value, path)
    if isinstance(ty, TupleT):
        if not isinstance(value, list):
            raise _fail(path, ty, value)
        if len(value) != len(ty.elements):
            raise _fail(path, ty, value, f"got an array of {len(value)} elements")
        return tuple(check(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(ty.elements, value)))
    if isinstance(ty, OptionT):
        if value is None:
            return None
        if nullable(ty.payload):
            if not (isinstance(value, dict) and len(value) == 1 and "some" in value):
                raise _fail(path, ty, value, 'a nested option is written null or {"some": ...}')
            return (check(ty.payload, value["some"], f"{path}.some"),)
        return (check(ty.payload, value, path),)
    if isinstance(ty, ResultT):
        if not (isinstance(value, dict) and len(value) == 1 and ("ok" in value or "err" in value)):
            raise _fail(path, ty, value, 'a result is written {"ok": ...} or {"err": ...}')
        side = "ok" if "ok" in value else "err"
        payload_ty = ty.ok if side == "ok" else ty.err
        payload = value[side]
        if payload_ty is None:
            if payload is not None:
                raise _fail(f"{path}.{side}", ty, payload, f"{side} carries no value, use null")
            return (side, None)
        return (side, check(payload_ty, payload, f"{path}.{side}"))
    if isinstance(ty, EnumT):
        if not isinstance(value, str) or kebab(value) not in ty.names:
            raise _fail(path, ty, value, f"got {_shown(value)}")
        return kebab(value)
    if isinstance(ty, VariantT):
        return _check_variant(ty, value, path)
    if isinstance(ty, FlagsT):
        if not isinstance(value, list):
            raise _fail(path, ty, value)
        chosen = set()
        for item in value:
            if not isinstance(item, str) or kebab(item) not in ty.names:
                raise _fail(path, ty, item, f"got unknown flag {_shown(item)}")
            if kebab(item) in chosen:
                raise _fail(path, ty, item, f"flag {_shown(item)} given twice")
            chosen.add(kebab(item))
        return tuple(name for name in ty.names if name in chosen)
    raise ArgumentError(f"{path}: unsupported type {ty!r}")


def _check_prim(ty: Prim, value: Any, path: str) -> Any:
    name = ty.name
    bounds = INT_RANGES.get(name)
    if bounds is not None:
        low, high = bounds
        if type(value) is int:
            if not low <= value <= high:
                raise _fail(path, ty, value, f"got {_shown(value)}, out of range [{low}, {high}]")
            return value
        if type(value) is float and value.is_integer():
            # JSON readers (orjson, JavaScript) turn an integer beyond 64 bits into a float.
            if not low <= value <= high:
                raise _fail(path, ty, value, f"got {value!r}, out of range [{low}, {high}]")
            if abs(value) >= 2.0**53:
                raise _fail(path, ty, value, f"got {value!r}, a number too large to be exact: write integers "
                            f"in [{low}, {high}] as plain digits")
            raise _fail(path, ty, value, f"got {value!r}: write integers without a fraction")
        raise _fail(path, ty, value)
    if name in ("f32", "f64"):
        if isinstance(value, str) and value in SPECIAL_FLOATS:
            return SPECIAL_FLOATS[value]
        if type(value) is float:
            number = value
        elif type(value) is int:
            low, high = JSON_INT_RANGE
            if not low <= value <= high:
                raise _fail(path, ty, value, f"got {_shown(value)}, an integer beyond 64 bits: write it "
                            "as a float, with a fraction or an exponent (1e30)")
            number = float(value)
        else:
            raise _fail(path, ty, value)
        if name == "f32" and math.isfinite(number) and abs(number) > F32_MAX:
            raise _fail(path, ty, value, f"got {_shown(value)}, out of f32 range [-{F32_MAX!r}, {F32_MAX!r}]")
        return number
    if name == "bool":
        if type(value) is not bool:
            raise _fail(path, ty, value)
        return value
    if name == "string":
        if not isinstance(value, str):
            raise _fail(path, ty, value)
        _check_text(path, value)
        return value
    if name == "char":
        if not isinstance(value, str) or len(value) != 1:
            raise _fail(path, ty, value, "got " + (f"a string of length {len(value)}" if isinstance(value, str) else _kind(value)))
        _check_text(path, value)
        return value
    raise ArgumentError(f"{path}: unsupported type {name}")


def _check_fields(ty: RecordT, value: dict[str, Any], path: str) -> tuple[Any, ...]:
    by_name = {kebab(key): key for key in value}
    if len(by_name) != len(value):
        raise ArgumentError(f"{path}: a field is given twice (snake_case and kebab-case)")
    out = []
    for name, field_ty in ty.fields:
        key = by_name.pop(name, None)
        if key is None:
            raise ArgumentError(f"{path}: missing field '{snake(name)}' ({field_ty.wit()})")
        out.append(check(field_ty, value[key], f"{path}.{snake(name)}"))
    if by_name:
        extra = ", ".join(sorted(repr(key) for key in by_name.values()))
        raise ArgumentError(f"{path}: unknown field {extra}; fields are {', '.join(snake(n) for n, _ in ty.fields)}")
    return tuple(out)


def _check_variant(ty: VariantT, value: Any, path: str) -> tuple[str, Any]:
    cases = dict(ty.cases)
    if isinstance(value, str):
        name, payload, has_payload = kebab(value), None, False
    elif isinstance(value, dict) and len(value) == 1:
        (key, payload), = value.items()
        name, has_payload = kebab(key), True
    else:
        raise _fail(path, ty, value, 'a variant is written "case" or {"case": payload}')
    if name not in cases:
        raise _fail(path, ty, value, f"got unknown case {snake(name)!r}")
    case_ty = cases[name]
    if case_ty is None:
        if has_payload and payload is not None:
            raise _fail(f"{path}.{snake(name)}", ty, payload, f"case {snake(name)!r} carries no value")
        return (name, None)
    if not has_payload:
        raise _fail(path, ty, value, f"case {snake(name)!r} needs a value ({case_ty.wit()})")
    return (name, check(case_ty, payload, f"{path}.{snake(name)}"))


def check_arguments(params: tuple[tuple[str, WitType], ...], args: dict[str, Any], function: str) -> list[Any]:
    """Match named JSON arguments to the entry point's parameters, in declared order."""
    by_name = {kebab(key): key for key in args}
    if len(by_name) != len(args):
        raise ArgumentError(f"{function}: an argument is given twice (snake_case and kebab-case)")
    out = []
    for name, ty in params:
        key = by_name.pop(name, None)
        if key is None:
            raise ArgumentError(f"{function}: missing argument '{snake(name)}' ({ty.wit()})")
        out.append(check(ty, args[key], f"argument '{snake(name)}'"))
    if by_name:
        extra = ", ".join(sorted(repr(key) for key in by_name.values()))
        expected = ", ".join(f"{snake(n)}: {t.wit()}" for n, t in params) or "none"
        raise ArgumentError(f"{function}: unexpected argument {extra}; parameters are ({expected})")
    return out
