"""WIT value types as plain, immutable Python objects.

wasmtime-py's type objects call into C on every property access; the cluster needs the
types on every call (validation in CheckTx, lowering, lifting), so they are read once
when a component is loaded and kept in this small, hashable form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from wasmtime import component as wc

PRIMITIVES = (
    "bool", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f32", "f64", "char", "string",
)


@dataclass(frozen=True, slots=True)
class Prim:
    name: str  # one of PRIMITIVES

    def wit(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListT:
    element: WitType

    def wit(self) -> str:
        return f"list<{self.element.wit()}>"


@dataclass(frozen=True, slots=True)
class RecordT:
    fields: tuple[tuple[str, WitType], ...]

    def wit(self) -> str:
        inner = ", ".join(f"{name}: {ty.wit()}" for name, ty in self.fields)
        return f"record {{ {inner} }}"


@dataclass(frozen=True, slots=True)
class TupleT:
    elements: tuple[WitType, ...]

    def wit(self) -> str:
        return f"tuple<{', '.join(ty.wit() for ty in self.elements)}>"


@dataclass(frozen=True, slots=True)
class VariantT:
    cases: tuple[tuple[str, WitType | None], ...]

    def wit(self) -> str:
        inner = ", ".join(name if ty is None else f"{name}({ty.wit()})" for name, ty in self.cases)
        return f"variant {{ {inner} }}"


@dataclass(frozen=True, slots=True)
class EnumT:
    names: tuple[str, ...]

    def wit(self) -> str:
        return f"enum {{ {', '.join(self.names)} }}"


@dataclass(frozen=True, slots=True)
class OptionT:
    payload: WitType

    def wit(self) -> str:
        return f"option<{self.payload.wit()}>"


@dataclass(frozen=True, slots=True)
class ResultT:
    ok: WitType | None
    err: WitType | None

    def wit(self) -> str:
        if self.ok is None and self.err is None:
            return "result"
        ok = "_" if self.ok is None else self.ok.wit()
        return f"result<{ok}>" if self.err is None else f"result<{ok}, {self.err.wit()}>"


@dataclass(frozen=True, slots=True)
class FlagsT:
    names: tuple[str, ...]

    def wit(self) -> str:
        return f"flags {{ {', '.join(self.names)} }}"


WitType = Union[Prim, ListT, RecordT, TupleT, VariantT, EnumT, OptionT, ResultT, FlagsT]


class UnsupportedType(Exception):
    """A component uses a WIT type a cluster entry point cannot carry (resources, streams...)."""


_PRIM_CLASSES: dict[type, str] = {
    wc.Bool: "bool", wc.S8: "s8", wc.S16: "s16", wc.S32: "s32", wc.S64: "s64",
    wc.U8: "u8", wc.U16: "u16", wc.U32: "u32", wc.U64: "u64",
    wc.F32: "f32", wc.F64: "f64", wc.Char: "char", wc.String: "string",
}


def from_wasmtime(ty: wc.ValType) -> WitType:
    """Convert a wasmtime-py value type into our immutable form."""
    prim = _PRIM_CLASSES.get(type(ty))
    if prim is not None:
        return Prim(prim)
    if isinstance(ty, wc.ListType):
        return ListT(from_wasmtime(ty.element))
    if isinstance(ty, wc.RecordType):
        return RecordT(tuple((name, from_wasmtime(t)) for name, t in ty.fields))
    if isinstance(ty, wc.TupleType):
        return TupleT(tuple(from_wasmtime(t) for t in ty.elements))
    if isinstance(ty, wc.VariantType):
        return VariantT(tuple((name, None if t is None else from_wasmtime(t)) for name, t in ty.cases))
    if isinstance(ty, wc.EnumType):
        return EnumT(tuple(ty.names))
    if isinstance(ty, wc.OptionType):
        return OptionT(from_wasmtime(ty.payload))
    if isinstance(ty, wc.ResultType):
        ok, err = ty.ok, ty.err
        return ResultT(None if ok is None else from_wasmtime(ok), None if err is None else from_wasmtime(err))
    if isinstance(ty, wc.FlagsType):
        return FlagsT(tuple(ty.names))
    raise UnsupportedType(f"WIT type {type(ty).__name__} cannot be passed to or from an entry point")


def snake(name: str) -> str:
    """WIT kebab-case to the snake_case used in JSON calls and results."""
    return name.replace("-", "_")


def kebab(name: str) -> str:
    return name.replace("_", "-")
