"""The fence around wasmtime's private C API (rtc.vm.capi) and the lifetime of host callbacks.

The VM calls wasmtime-py's raw bindings for speed; these tests keep that use in one
module behind a version check, and check that the ctypes callbacks a Backend registers
live exactly as long as the Backend instead of piling up for the life of the process.
"""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import weakref
from collections import deque
from typing import Any, Iterator

import pytest
import wasmtime

from rtc.vm import Backend, BlockInfo, HostFailure, capi
from tests.conftest import ROOT, component_path
from tests.vm.test_vm import DictState, run

SRC = ROOT / "src" / "rtc"
CAPI = SRC / "vm" / "capi.py"
BACKENDS = 50


# -- the version check -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["51.0.0", "49.0.1", "5.0.1", "500.0.0", "unknown", "", "fifty"])
def test_version_check_refuses_other_versions(version: str) -> None:
    with pytest.raises(capi.UnsupportedWasmtime) as caught:
        capi.check_version(version)
    message = str(caught.value)
    assert f"wasmtime {version} is installed" in message
    assert f"{capi.SUPPORTED_MAJOR}.x" in message and capi.WRITTEN_AGAINST in message
    assert "make setup" in message and "capi.py" in message


@pytest.mark.parametrize("version", ["50.0.1", "50.0.0", "50.1.2", "50.0.1.dev3"])
def test_version_check_accepts_the_supported_major(version: str) -> None:
    capi.check_version(version)


def test_refusal_is_an_import_error() -> None:
    assert issubclass(capi.UnsupportedWasmtime, ImportError)


def test_supported_version_matches_the_pin() -> None:
    pins = dict(
        line.split("#", 1)[0].strip().split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line.split("#", 1)[0]
    )
    assert pins["wasmtime"] == capi.WRITTEN_AGAINST
    assert capi.WRITTEN_AGAINST.split(".")[0] == str(capi.SUPPORTED_MAJOR)
    capi.check_version(capi.installed_version())


def test_importing_the_vm_with_another_wasmtime_fails_loudly() -> None:
    """The check runs at import, before any private binding is touched."""
    code = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '51.0.0' if name == 'wasmtime' else real(name)\n"
        "import rtc.vm\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode != 0
    assert "UnsupportedWasmtime" in done.stderr and "wasmtime 51.0.0 is installed" in done.stderr


# -- the fence ---------------------------------------------------------------------------

_PRIVATE = re.compile(r"_ffi|\._func\b|_context\(\)|_from_ptr|_consume\(|\.ptr\(\)")


def test_private_wasmtime_api_is_used_only_in_capi() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == CAPI:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _PRIVATE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "wasmtime's private API outside vm/capi.py:\n" + "\n".join(offenders)


# -- callback lifetime ---------------------------------------------------------------------


def _module_containers() -> dict[str, int]:
    """The size of every module-level container and cache in rtc.vm, by name."""
    sizes: dict[str, int] = {}
    for name, module in sorted(sys.modules.items()):
        if module is None or not (name == "rtc.vm" or name.startswith("rtc.vm.")):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, (list, dict, set, frozenset, deque, bytearray)):
                sizes[f"{name}.{attr}"] = len(value)
            elif hasattr(value, "cache_info"):
                sizes[f"{name}.{attr}()"] = value.cache_info().currsize
    return sizes


def _live_callbacks() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, capi.HostCallback))


def _update_and_read(backend: Backend, state: DictState, value: float) -> Any:
    outcome = run(backend, {"function": "update_high", "symbol": "AAPL", "value": value}, state)
    assert outcome.ok, outcome.error
    high = run(backend, {"function": "get_high", "symbol": "AAPL"}, state)
    assert high.ok, high.error
    return outcome.value, high.value


def _load_and_drop(count: int) -> Iterator[tuple[weakref.ref[Any], ...]]:
    """Load `count` backends, run a call on each, drop each; yields weak references to what went."""
    for i in range(count):
        backend = Backend.from_file(component_path("stock"))
        assert _update_and_read(backend, DictState(), float(i)) == ({"ok": float(i)}, float(i))
        host = backend._host_linker
        refs = (weakref.ref(backend), weakref.ref(host.linker),
                *(weakref.ref(callback) for callback in host._callbacks))
        del backend, host
        yield refs


def test_loading_and_dropping_backends_frees_their_callbacks() -> None:
    list(_load_and_drop(1))  # warm up: the engine cache, lazily created module state
    gc.collect()
    containers, callbacks = _module_containers(), _live_callbacks()
    refs = [ref for refs in _load_and_drop(BACKENDS) for ref in refs]
    gc.collect()
    assert [ref for ref in refs if ref() is not None] == []
    assert _module_containers() == containers
    assert _live_callbacks() == callbacks


def test_a_backend_is_freed_without_the_cycle_collector() -> None:
    """No Backend -> callback -> Backend cycle: the last `del` releases it at once."""
    backend = Backend.from_file(component_path("stock"))
    _update_and_read(backend, DictState(), 1.0)
    refs = (weakref.ref(backend), *(weakref.ref(callback) for callback in backend._host_linker._callbacks))
    gc.disable()
    try:
        del backend
        assert [ref for ref in refs if ref() is not None] == []
    finally:
        gc.enable()


def test_a_kept_linker_is_closed_with_its_backend() -> None:
    """Nothing can instantiate through a linker whose callbacks are gone."""
    backend = Backend.from_file(component_path("stock"))
    engine, linker, component = backend.engine, backend._host_linker.linker, backend.component
    del backend
    gc.collect()
    with pytest.raises(ValueError, match="closed"):
        linker.instantiate(wasmtime.Store(engine), component)


def test_a_backend_keeps_working_while_others_come_and_go() -> None:
    state = DictState()
    backend = Backend.from_file(component_path("stock"))
    assert _update_and_read(backend, state, 5.0) == ({"ok": 5.0}, 5.0)
    for _ in _load_and_drop(BACKENDS):
        pass
    gc.collect()
    assert _update_and_read(backend, state, 3.0) == ({"ok": 5.0}, 5.0)
    assert _update_and_read(backend, state, 7.5) == ({"ok": 7.5}, 7.5)
    assert run(backend, {"function": "symbols"}, state).value == ["AAPL"]
    assert run(Backend.from_file(component_path("sum")), {"function": "sum", "x": 5, "y": 3}).value == 8


class _BrokenState(DictState):
    def get(self, key: bytes) -> bytes | None:
        raise OSError("disk on fire")


def test_no_store_outlives_its_call() -> None:
    """Even a traceback that keeps execute()'s frame alive holds only a closed store."""
    backend = Backend.from_file(component_path("stock"))
    prepared = backend.prepare({"function": "update_high", "symbol": "AAPL", "value": 1.0})
    with pytest.raises(HostFailure) as caught:
        backend.execute(prepared, _BrokenState(), BlockInfo(1, 0))
    frames = []
    tb = caught.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    stores = [frame.f_locals["store"] for frame in frames if "store" in frame.f_locals]
    assert stores, "execute()'s frame is in the traceback"
    for store in stores:
        with pytest.raises(ValueError, match="closed"):
            store.get_fuel()
    assert isinstance(caught.value.__cause__, OSError)
    assert _update_and_read(backend, DictState(), 2.0) == ({"ok": 2.0}, 2.0)
