"""The one place that touches wasmtime-py's private C bindings.

Why it exists: wasmtime-py's public component API converts every value through
generic Python wrappers and re-reads types through C on each call, which makes a
call about 20 times slower than walking `wasmtime_component_val_t` directly (see
abi.py). The raw bindings (`wasmtime._ffi`) and the private attributes that reach
them (`Func._func`, `Store._context()`, `Managed.ptr()`, `WasmtimeError._from_ptr`)
are not a stable API: they can change in any wasmtime-py release. So they are fenced
in here, behind small named functions, and the installed version is checked at
import: a wasmtime upgrade fails loudly in this one module instead of corrupting
memory somewhere in engine.py or abi.py.

Ownership follows the C API: a value filled by `lower`/`alloc_*`/`new_name` owns its
heap data until `delete_val` (or until it is moved into wasmtime), an error pointer
is owned by whoever holds it (`take_error_message` frees it, a host callback returns
it to wasmtime), and a host callback's function pointer must stay alive while any
linker or store that references it can run guest code (see `add_host_func`).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import re
from ctypes import byref
from typing import Any, TypeAlias

import wasmtime
from wasmtime import component as wc

#: The wasmtime-py release this module was written and tested against (requirements.txt).
WRITTEN_AGAINST = "50.0.1"
#: wasmtime-py versions this module accepts: the same major version, whose C API and
#: generated bindings keep their layout within a major release.
SUPPORTED_MAJOR = 50


class UnsupportedWasmtime(ImportError):
    """The installed wasmtime-py is not a version whose private bindings this module knows."""


def installed_version() -> str:
    """The installed wasmtime-py distribution's version, or "unknown" if it has no metadata."""
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def check_version(installed: str) -> None:
    """Refuse a wasmtime-py whose major version differs from SUPPORTED_MAJOR.

    Run before `wasmtime._ffi` is imported, so a release that renamed or removed the
    bindings gets this message rather than an AttributeError deep in a call."""
    match = re.match(r"(\d+)\.", installed)
    if match is not None and int(match.group(1)) == SUPPORTED_MAJOR:
        return
    raise UnsupportedWasmtime(
        f"rtc.vm needs wasmtime-py {SUPPORTED_MAJOR}.x (written against {WRITTEN_AGAINST}), "
        f"but wasmtime {installed} is installed. rtc.vm calls wasmtime's private C bindings for "
        f"speed, and they change between major versions. Run `make setup` to install the "
        f"pinned version from requirements.txt; to move to a new wasmtime, port "
        f"src/rtc/vm/capi.py to its bindings and update SUPPORTED_MAJOR and the pin together."
    )


check_version(installed_version())

from wasmtime import _ffi  # noqa: E402  (only once the version is known to fit)

# -- types ------------------------------------------------------------------------

#: `wasmtime_component_val_t`: one component value (kind tag + union payload).
Val: TypeAlias = _ffi.wasmtime_component_val_t
#: `wasm_byte_vec_t`: the owned UTF-8 buffer used for strings, names and enum cases.
ByteVec: TypeAlias = _ffi.wasm_byte_vec_t
#: `wasmtime_context_t *`: the store context a host callback receives.
Context: TypeAlias = Any
#: `wasmtime_error_t *`: NULL (falsy) for success; an owned error otherwise.
ErrorPtr: TypeAlias = Any
#: `wasmtime_component_val_t *`: a heap-allocated value (option/result/variant payload).
ValBox: TypeAlias = Any

#: The C type of a host function:
#: (env, context, func_type, args, nargs, results, nresults) -> wasmtime_error_t* as int (0: ok).
#: Build one with `HostCallback(python_function)`; keep the object alive (see add_host_func).
HostCallback: TypeAlias = _ffi.wasmtime_component_func_callback_t

_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_NO_FINALIZER = ctypes.cast(None, _FINALIZER)

# -- calls ------------------------------------------------------------------------


def call_func(func: wc.Func, store: wasmtime.Store, params: Any, nparams: int, result: Val | None) -> ErrorPtr:
    """Call an exported component function on already lowered `params` (an array of Val).

    `result` (if the function has one) receives the owned result value. Returns NULL on
    success, or the owned error (a trap), to be read with `take_error_message`."""
    if result is None:
        return _ffi.wasmtime_component_func_call(byref(func._func), store._context(), params, nparams, None, 0)
    return _ffi.wasmtime_component_func_call(byref(func._func), store._context(), params, nparams, byref(result), 1)


def take_error_message(error: ErrorPtr) -> str:
    """The message of an owned `wasmtime_error_t *`, which is freed here."""
    vec = ByteVec()
    try:
        _ffi.wasmtime_error_message(error, byref(vec))
        message = ctypes.string_at(vec.data, vec.size).decode("utf-8", "replace")
        _ffi.wasm_byte_vec_delete(byref(vec))
    finally:
        _ffi.wasmtime_error_delete(error)
    return message


def trap_error(reason: str) -> int:
    """A new `wasmtime_error_t *` (as an int) for a host callback to return: wasmtime takes
    ownership and traps the guest with `reason`."""
    error = _ffi.wasmtime_error_new(reason.encode("utf-8"))
    return ctypes.cast(error, ctypes.c_void_p).value or 0


def get_fuel(ctx: Context) -> int:
    """Fuel left in the store behind a host callback's context."""
    fuel = ctypes.c_uint64()
    error = _ffi.wasmtime_context_get_fuel(ctx, byref(fuel))
    if error:
        raise wasmtime.WasmtimeError(take_error_message(error))
    return fuel.value


def set_fuel(ctx: Context, fuel: int) -> None:
    """Set the fuel left in the store behind a host callback's context."""
    error = _ffi.wasmtime_context_set_fuel(ctx, fuel)
    if error:
        raise wasmtime.WasmtimeError(take_error_message(error))


# -- values -----------------------------------------------------------------------


def new_name(text: str) -> ByteVec:
    """An owned UTF-8 `wasm_byte_vec_t` for a string, field name, enum or variant case."""
    data = text.encode("utf-8")
    vec = ByteVec()
    _ffi.wasm_byte_vec_new_uninitialized(byref(vec), len(data))
    if data:
        ctypes.memmove(vec.data, data, len(data))
    return vec


def box_val(val: Val) -> ValBox:
    """Move `val`'s contents into a new heap value, as option/result/variant payloads need."""
    return _ffi.wasmtime_component_val_new(byref(val))


def alloc_list(out: Any, size: int) -> None:
    """Allocate `size` uninitialised elements in the `vallist` `out` (e.g. `val.of.list`)."""
    _ffi.wasmtime_component_vallist_new_uninit(byref(out), size)


def alloc_record(out: Any, size: int) -> None:
    """Allocate `size` uninitialised fields in the `valrecord` `out`."""
    _ffi.wasmtime_component_valrecord_new_uninit(byref(out), size)


def alloc_tuple(out: Any, size: int) -> None:
    """Allocate `size` uninitialised elements in the `valtuple` `out`."""
    _ffi.wasmtime_component_valtuple_new_uninit(byref(out), size)


def alloc_flags(out: Any, size: int) -> None:
    """Allocate `size` uninitialised names in the `valflags` `out`."""
    _ffi.wasmtime_component_valflags_new_uninit(byref(out), size)


def delete_val(val: Val) -> None:
    """Free everything `val` owns (not `val` itself, which Python owns)."""
    _ffi.wasmtime_component_val_delete(byref(val))


# -- engine and linker --------------------------------------------------------------


def use_pooling_allocator(
    config: wasmtime.Config,
    *,
    component_instances: int,
    core_instances: int,
    memories: int,
    tables: int,
    core_instances_per_component: int,
    memories_per_component: int,
    tables_per_component: int,
    table_elements: int,
    stacks: int,
    max_memory_size: int,
    max_unused_warm_slots: int,
) -> None:
    """Switch `config` to the pooling instance allocator with these slot counts and sizes
    (wasmtime-py exposes no setter for it)."""
    pool = _ffi.wasmtime_pooling_allocation_config_new()
    try:
        _ffi.wasmtime_pooling_allocation_config_total_component_instances_set(pool, component_instances)
        _ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, core_instances)
        _ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, memories)
        _ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, tables)
        _ffi.wasmtime_pooling_allocation_config_max_core_instances_per_component_set(pool, core_instances_per_component)
        _ffi.wasmtime_pooling_allocation_config_max_memories_per_component_set(pool, memories_per_component)
        _ffi.wasmtime_pooling_allocation_config_max_tables_per_component_set(pool, tables_per_component)
        _ffi.wasmtime_pooling_allocation_config_table_elements_set(pool, table_elements)
        _ffi.wasmtime_pooling_allocation_config_total_stacks_set(pool, stacks)
        _ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, max_memory_size)
        _ffi.wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pool, max_unused_warm_slots)
        _ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
    finally:
        _ffi.wasmtime_pooling_allocation_config_delete(pool)


def add_host_func(linker_instance: wc.LinkerInstance, name: str, callback: HostCallback) -> None:
    """Define `name` in `linker_instance` as the raw C callback `callback`, skipping
    wasmtime-py's generic value conversion.

    No data pointer and no finalizer are registered, so wasmtime never calls into Python
    except through `callback` itself, and only while guest code runs. wasmtime keeps the
    bare function pointer in the linker and in every instance (store) created from it:
    the caller must keep `callback` alive until that linker is closed and those stores
    are gone."""
    encoded = name.encode("utf-8")
    error = _ffi.wasmtime_component_linker_instance_add_func(
        linker_instance.ptr(), ctypes.create_string_buffer(encoded), len(encoded), callback, None, _NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError(take_error_message(error))


# -- the compiled core (rtc.vm.native) ------------------------------------------------


def address(managed: Any) -> int:
    """The C pointer a wasmtime-py object (Engine, Component, ExportIndex) wraps, as an int,
    for the compiled core, which borrows it while the Python object is alive."""
    return ctypes.cast(managed.ptr(), ctypes.c_void_p).value or 0


def library_path() -> str:
    """The wasmtime library wasmtime-py loaded; the compiled core calls the same one."""
    return str(_ffi.filename)
