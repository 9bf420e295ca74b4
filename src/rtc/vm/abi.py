"""Lowering checked values into wasmtime's C value structs and lifting results to JSON.

wasmtime-py's generic path re-reads every type through C and guesses variant shapes
from Python classes on each call; here the static WIT type drives a direct walk over
`wasmtime_component_val_t`, which is both faster and unambiguous. Values handed to
`lower` were already checked by `marshal.check`, so lowering cannot fail half-way.
The C calls themselves go through capi.py, the one module that uses wasmtime's private API.
"""

from __future__ import annotations

import ctypes
import math
import struct
from typing import Any

from . import capi
from .capi import Val
from .types import EnumT, FlagsT, ListT, OptionT, Prim, RecordT, ResultT, TupleT, VariantT, WitType, snake
from .marshal import nullable

K_BOOL, K_S8, K_U8, K_S16, K_U16, K_S32, K_U32, K_S64, K_U64 = range(9)
K_F32, K_F64, K_CHAR, K_STRING, K_LIST, K_RECORD, K_TUPLE = range(9, 16)
K_VARIANT, K_ENUM, K_OPTION, K_RESULT, K_FLAGS = range(16, 21)

_PRIM_KIND = {
    "bool": K_BOOL, "s8": K_S8, "u8": K_U8, "s16": K_S16, "u16": K_U16, "s32": K_S32,
    "u32": K_U32, "s64": K_S64, "u64": K_U64, "f32": K_F32, "f64": K_F64, "char": K_CHAR,
    "string": K_STRING,
}
_PRIM_FIELD = {
    "bool": "boolean", "s8": "s8", "u8": "u8", "s16": "s16", "u16": "u16", "s32": "s32",
    "u32": "u32", "s64": "s64", "u64": "u64", "f32": "f32", "f64": "f64",
}


_name = capi.new_name  # an owned UTF-8 byte vector: strings, field names, cases


def _boxed(ty: WitType, value: Any) -> capi.ValBox:
    """A heap-allocated value, as option/result/variant payloads need."""
    tmp = Val()
    lower(ty, value, tmp)
    return capi.box_val(tmp)


def lower(ty: WitType, value: Any, out: Any) -> None:
    """Write the canonical `value` of type `ty` into the C struct `out` (ownership moves to it)."""
    if isinstance(ty, Prim):
        name = ty.name
        out.kind = _PRIM_KIND[name]
        if name == "string":
            out.of.string = _name(value)
        elif name == "char":
            out.of.character = ord(value)
        else:
            setattr(out.of, _PRIM_FIELD[name], value)
    elif isinstance(ty, ListT):
        out.kind = K_LIST
        element = ty.element
        capi.alloc_list(out.of.list, len(value))
        data = out.of.list.data
        if element == Prim("u8"):
            _fill_bytes(data, value)
        else:
            for i, item in enumerate(value):
                lower(element, item, data[i])
    elif isinstance(ty, RecordT):
        out.kind = K_RECORD
        capi.alloc_record(out.of.record, len(ty.fields))
        data = out.of.record.data
        for i, ((name, field_ty), item) in enumerate(zip(ty.fields, value)):
            data[i].name = _name(name)
            lower(field_ty, item, data[i].val)
    elif isinstance(ty, TupleT):
        out.kind = K_TUPLE
        capi.alloc_tuple(out.of.tuple, len(ty.elements))
        data = out.of.tuple.data
        for i, (element_ty, item) in enumerate(zip(ty.elements, value)):
            lower(element_ty, item, data[i])
    elif isinstance(ty, OptionT):
        out.kind = K_OPTION
        out.of.option = None if value is None else _boxed(ty.payload, value[0])
    elif isinstance(ty, ResultT):
        side, payload = value
        out.kind = K_RESULT
        out.of.result.is_ok = side == "ok"
        payload_ty = ty.ok if side == "ok" else ty.err
        out.of.result.val = None if payload_ty is None else _boxed(payload_ty, payload)
    elif isinstance(ty, EnumT):
        out.kind = K_ENUM
        out.of.enumeration = _name(value)
    elif isinstance(ty, VariantT):
        case, payload = value
        out.kind = K_VARIANT
        out.of.variant.discriminant = _name(case)
        case_ty = dict(ty.cases)[case]
        out.of.variant.val = None if case_ty is None else _boxed(case_ty, payload)
    elif isinstance(ty, FlagsT):
        out.kind = K_FLAGS
        capi.alloc_flags(out.of.flags, len(value))
        for i, name in enumerate(value):
            out.of.flags.data[i] = _name(name)
    else:  # pragma: no cover - types are closed
        raise TypeError(f"cannot lower {ty!r}")


def _text(vec: Any) -> str:
    return ctypes.string_at(vec.data, vec.size).decode("utf-8")


def shortest_f32(value: float) -> float:
    """The shortest decimal that reads back as the same f32, so 0.1f prints as 0.1."""
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


def float_json(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def lift_json(ty: WitType, val: Any) -> Any:
    """Read the C value `val` of type `ty` into the JSON form documented in marshal.py."""
    if isinstance(ty, Prim):
        name = ty.name
        if name == "string":
            return _text(val.of.string)
        if name == "char":
            return chr(val.of.character)
        if name == "f32":
            return float_json(shortest_f32(val.of.f32))
        if name == "f64":
            return float_json(val.of.f64)
        return getattr(val.of, _PRIM_FIELD[name])
    if isinstance(ty, ListT):
        lst = val.of.list
        if ty.element == Prim("u8"):
            return list(_read_bytes(lst))
        return [lift_json(ty.element, lst.data[i]) for i in range(lst.size)]
    if isinstance(ty, RecordT):
        rec = val.of.record
        return {snake(name): lift_json(field_ty, rec.data[i].val) for i, (name, field_ty) in enumerate(ty.fields)}
    if isinstance(ty, TupleT):
        tup = val.of.tuple
        return [lift_json(element_ty, tup.data[i]) for i, element_ty in enumerate(ty.elements)]
    if isinstance(ty, OptionT):
        if not val.of.option:
            return None
        inner = lift_json(ty.payload, val.of.option.contents)
        return {"some": inner} if nullable(ty.payload) else inner
    if isinstance(ty, ResultT):
        res = val.of.result
        side, payload_ty = ("ok", ty.ok) if res.is_ok else ("err", ty.err)
        return {side: None if payload_ty is None else lift_json(payload_ty, res.val.contents)}
    if isinstance(ty, EnumT):
        return snake(_text(val.of.enumeration))
    if isinstance(ty, VariantT):
        case = _text(val.of.variant.discriminant)
        case_ty = dict(ty.cases)[case]
        if case_ty is None:
            return snake(case)
        return {snake(case): lift_json(case_ty, val.of.variant.val.contents)}
    if isinstance(ty, FlagsT):
        flags = val.of.flags
        chosen = {_text(flags.data[i]) for i in range(flags.size)}
        return [snake(name) for name in ty.names if name in chosen]
    raise TypeError(f"cannot lift {ty!r}")  # pragma: no cover


# A list<u8> is an array of full-size value structs, one per byte; reading and writing
# it as a strided byte buffer avoids one ctypes access per byte.
_STRIDE = ctypes.sizeof(Val)
_PAYLOAD = Val.of.offset


def _read_bytes(lst: Any) -> bytes:
    if lst.size == 0:
        return b""
    raw = ctypes.string_at(lst.data, lst.size * _STRIDE)
    return raw[_PAYLOAD::_STRIDE]


def _fill_bytes(data: Any, value: bytes) -> None:
    count = len(value)
    if count == 0:
        return
    buffer = bytearray(count * _STRIDE)
    buffer[0::_STRIDE] = bytes((K_U8,)) * count
    buffer[_PAYLOAD::_STRIDE] = value
    ctypes.memmove(data, bytes(buffer), len(buffer))


def lift_bytes(val: Any) -> bytes:
    """A `list<u8>` argument of a host call."""
    return _read_bytes(val.of.list)


def lower_bytes(data: bytes, out: Any) -> None:
    out.kind = K_LIST
    capi.alloc_list(out.of.list, len(data))
    _fill_bytes(out.of.list.data, data)


def delete(val: Val) -> None:
    """Free what a lowered argument or a lifted result owns, once the call is done with it."""
    capi.delete_val(val)
