"""Lowering checked values into wasmtime's C value structs and lifting results to JSON.

wasmtime-py's generic path re-reads every type through C and guesses variant shapes
from Python classes on each call; here the static WIT type drives a direct walk over
`wasmtime_component_val_t`, which is both faster and unambiguous. Values handed to
`lower` were already checked by `marshal.check`, so lowering cannot fail half-way.
The C calls themselves go through capi.py, the one module that uses wasmtime's private API.

Lifting a result is bounded by a size limit measured in canonical JSON bytes: a lower
bound of the result's JSON length is counted before each string or list is copied out of
wasmtime's value tree, so a result that cannot fit is refused before it is copied in full.
"""

from __future__ import annotations

import ctypes
import math
import struct
from typing import Any

import orjson

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
_U8 = Prim("u8")
_U8_KIND = bytes((K_U8,))
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
        if element == _U8:
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


class ResultTooLarge(Exception):
    """A result whose canonical JSON is longer than the limit; it is known to be at least `size` bytes."""

    def __init__(self, size: int) -> None:
        super().__init__(f"result of at least {size} bytes")
        self.size = size


_PRIM_SHORTEST = {"bool": 4, "f32": 3, "f64": 3, "char": 3, "string": 2}  # true, 0.0, "x", ""; integers: 1


# Of any value, the canonical JSON is at most this many times its shortest form as lift_json
# counts it (names, cases and structure exactly; an integer at most 20 characters for the 1
# counted, a float 24 for 3, a string's byte 6 for 1, a char 8 for 3).
_EXPANSION = 20


class Lifter:
    """Reads results out of wasmtime's value tree, within a size limit.

    It remembers the shortest JSON encoding of each type it met (and of each alternative of
    an option, result or variant), by the type's id: one Lifter serves one Backend, whose
    entry points keep those types alive, so the memory goes with the Backend instead of
    growing a module-wide cache."""

    __slots__ = ("_shortest", "_alternatives", "_limit", "_left")

    def __init__(self) -> None:
        self._shortest: dict[int, tuple[WitType, int]] = {}
        self._alternatives: dict[int, tuple[WitType, dict[Any, int]]] = {}
        self._limit = self._left = 0  # of the lift in progress (one at a time, as calls run)

    def lift_json(self, ty: WitType, val: Any, limit: int) -> Any:
        """Read the C value `val` of type `ty` into the JSON form documented in marshal.py,
        refusing (ResultTooLarge) a value whose canonical JSON is longer than `limit` bytes.

        The refusal comes as soon as a lower bound of the length passes the limit: the
        bound starts at the type's shortest encoding and grows by what each string, list
        and chosen case adds to it, counted before their contents are copied out; the
        exact length of what was lifted is checked at the end, unless the bound proves it
        fits."""
        hit = self._shortest.get(id(ty))
        shortest = hit[1] if hit is not None and hit[0] is ty else self.shortest(ty)
        if shortest > limit:
            raise ResultTooLarge(shortest)
        self._limit, self._left = limit, limit - shortest
        value = self._lift(ty, val)
        if (limit - self._left) * _EXPANSION > limit:  # it may not fit: measure it
            size = len(orjson.dumps(value))
            if size > limit:
                raise ResultTooLarge(size)
        return value

    def _spend(self, size: int) -> None:
        self._left -= size
        if self._left < 0:
            raise ResultTooLarge(self._limit - self._left)

    def shortest(self, ty: WitType) -> int:
        """The length of the shortest canonical JSON of any value of `ty` (lift_json's form)."""
        hit = self._shortest.get(id(ty))
        if hit is not None and hit[0] is ty:
            return hit[1]
        shortest = self.shortest
        if isinstance(ty, Prim):
            size = _PRIM_SHORTEST.get(ty.name, 1)
        elif isinstance(ty, (ListT, FlagsT)):
            size = 2  # []
        elif isinstance(ty, RecordT):  # {"name":v,...}
            size = 1 + sum(len(snake(name)) + 4 + shortest(field) for name, field in ty.fields)
        elif isinstance(ty, TupleT):  # [a,b]
            size = 1 + sum(1 + shortest(element) for element in ty.elements)
        elif isinstance(ty, OptionT):
            size = min(4, self._some_size(ty))
        elif isinstance(ty, ResultT):
            size = min(self._side_size("ok", ty.ok), self._side_size("err", ty.err))
        elif isinstance(ty, EnumT):
            size = min(len(snake(name)) + 2 for name in ty.names)
        elif isinstance(ty, VariantT):
            size = min(self._case_size(name, case) for name, case in ty.cases)
        else:  # pragma: no cover - types are closed
            raise TypeError(f"cannot size {ty!r}")
        self._shortest[id(ty)] = (ty, size)
        return size

    def beyond_shortest(self, ty: OptionT | ResultT | VariantT) -> dict[Any, int]:
        """What each alternative of `ty` adds to its shortest form: by presence (option), by
        is_ok (result), by case name (variant); computed once per type."""
        hit = self._alternatives.get(id(ty))
        if hit is not None and hit[0] is ty:
            return hit[1]
        shortest = self.shortest(ty)
        if isinstance(ty, OptionT):
            extra: dict[Any, int] = {False: 4 - shortest, True: self._some_size(ty) - shortest}
        elif isinstance(ty, ResultT):
            extra = {True: self._side_size("ok", ty.ok) - shortest, False: self._side_size("err", ty.err) - shortest}
        else:
            extra = {name: self._case_size(name, case) - shortest for name, case in ty.cases}
        self._alternatives[id(ty)] = (ty, extra)
        return extra

    def _some_size(self, ty: OptionT) -> int:
        payload = self.shortest(ty.payload)
        return payload + 9 if nullable(ty.payload) else payload  # {"some":v} or v

    def _side_size(self, side: str, ty: WitType | None) -> int:
        return len(side) + 5 + (4 if ty is None else self.shortest(ty))  # {"ok":v}

    def _case_size(self, name: str, ty: WitType | None) -> int:
        name_size = len(snake(name))
        return name_size + 2 if ty is None else name_size + 5 + self.shortest(ty)  # "case" or {"case":v}

    def _lift(self, ty: WitType, val: Any) -> Any:
        if isinstance(ty, Prim):
            name = ty.name
            if name == "string":
                self._spend(val.of.string.size)  # its bytes, beyond the two quotes
                return _text(val.of.string)
            if name == "char":
                return chr(val.of.character)
            if name == "f32":
                return float_json(shortest_f32(val.of.f32))
            if name == "f64":
                return float_json(val.of.f64)
            return getattr(val.of, _PRIM_FIELD[name])
        lift = self._lift
        if isinstance(ty, ListT):
            lst = val.of.list
            count = lst.size
            if count == 0:
                return []
            element = ty.element
            self._spend(count - 1 + count * self.shortest(element))  # commas, each element's shortest form
            if element == _U8:
                return list(_read_bytes(lst))
            return [lift(element, lst.data[i]) for i in range(count)]
        if isinstance(ty, RecordT):
            rec = val.of.record
            return {snake(name): lift(field_ty, rec.data[i].val) for i, (name, field_ty) in enumerate(ty.fields)}
        if isinstance(ty, TupleT):
            tup = val.of.tuple
            return [lift(element_ty, tup.data[i]) for i, element_ty in enumerate(ty.elements)]
        if isinstance(ty, OptionT):
            some = val.of.option
            self._spend(self.beyond_shortest(ty)[bool(some)])
            if not some:
                return None
            inner = lift(ty.payload, some.contents)
            return {"some": inner} if nullable(ty.payload) else inner
        if isinstance(ty, ResultT):
            res = val.of.result
            is_ok = bool(res.is_ok)
            self._spend(self.beyond_shortest(ty)[is_ok])
            side, payload_ty = ("ok", ty.ok) if is_ok else ("err", ty.err)
            return {side: None if payload_ty is None else lift(payload_ty, res.val.contents)}
        if isinstance(ty, EnumT):
            name = snake(_text(val.of.enumeration))
            self._spend(len(name) + 2 - self.shortest(ty))
            return name
        if isinstance(ty, VariantT):
            case = _text(val.of.variant.discriminant)
            case_ty = dict(ty.cases)[case]
            self._spend(self.beyond_shortest(ty)[case])
            if case_ty is None:
                return snake(case)
            return {snake(case): lift(case_ty, val.of.variant.val.contents)}
        if isinstance(ty, FlagsT):
            flags = val.of.flags
            chosen = {_text(flags.data[i]) for i in range(flags.size)}
            names = [snake(name) for name in ty.names if name in chosen]
            if names:
                self._spend(sum(len(name) + 3 for name in names) - 1)  # ["a","b"] beyond []
            return names
        raise TypeError(f"cannot lift {ty!r}")  # pragma: no cover


def lift_json(ty: WitType, val: Any, limit: int) -> Any:
    """Lifter.lift_json with a Lifter of its own (tests, one-off use)."""
    return Lifter().lift_json(ty, val, limit)


# A list<u8> is an array of full-size value structs, one per byte; reading and writing
# it as a strided byte buffer avoids one ctypes access per byte.
_STRIDE = ctypes.sizeof(Val)
_PAYLOAD = Val.of.offset


def _read_bytes(lst: Any) -> bytes:
    if lst.size == 0:
        return b""
    raw = ctypes.string_at(lst.data, lst.size * _STRIDE)
    return raw[_PAYLOAD::_STRIDE]


_DIRECT_FILL = 512  # from this size on, the bytes are written straight into the C array


def _fill_bytes(data: Any, value: bytes) -> None:
    count = len(value)
    if count == 0:
        return
    if count >= _DIRECT_FILL:  # no second buffer of 32 bytes per byte to allocate and copy
        view = memoryview((ctypes.c_ubyte * (count * _STRIDE)).from_address(ctypes.addressof(data.contents))).cast("B")
        view[0::_STRIDE] = _U8_KIND * count
        view[_PAYLOAD::_STRIDE] = value
        return
    buffer = bytearray(count * _STRIDE)
    buffer[0::_STRIDE] = _U8_KIND * count
    buffer[_PAYLOAD::_STRIDE] = value
    ctypes.memmove(data, bytes(buffer), len(buffer))


def lift_bytes(val: Any) -> bytes:
    """A `list<u8>` argument of a host call."""
    return _read_bytes(val.of.list)


#: The bytes of a `list<u8>`'s vallist (`val.of.list`), whose `size` can be checked first.
read_bytes = _read_bytes


def lower_bytes(data: bytes, out: Any) -> None:
    out.kind = K_LIST
    capi.alloc_list(out.of.list, len(data))
    _fill_bytes(out.of.list.data, data)


def lower_entries(entries: list[tuple[bytes, bytes]], out: Any) -> None:
    """A scan's answer, `list<tuple<list<u8>, list<u8>>>`."""
    out.kind = K_LIST
    capi.alloc_list(out.of.list, len(entries))
    data = out.of.list.data
    for i, (key, value) in enumerate(entries):
        item = data[i]
        item.kind = K_TUPLE
        capi.alloc_tuple(item.of.tuple, 2)
        pair = item.of.tuple.data
        lower_bytes(key, pair[0])
        lower_bytes(value, pair[1])


def delete(val: Val) -> None:
    """Free what a lowered argument or a lifted result owns, once the call is done with it."""
    capi.delete_val(val)
