"""The WebAssembly VM: load a backend component, check calls, run them deterministically."""

from .engine import (
    HOST_INTERFACES,
    WIT_PATH,
    Backend,
    BlockInfo,
    CallError,
    CallOutcome,
    DeployError,
    EntryPoint,
    HostFailure,
    Limits,
    Meter,
    PreparedCall,
    StateView,
)
from .marshal import ArgumentError
from .native import CoreUnavailable, NativeBackend, chosen_core, load_backend

__all__ = [
    "HOST_INTERFACES", "WIT_PATH", "ArgumentError", "Backend", "BlockInfo", "CallError", "CallOutcome", "CoreUnavailable",
    "DeployError", "EntryPoint", "HostFailure", "Limits", "Meter", "NativeBackend", "PreparedCall", "StateView",
    "chosen_core", "load_backend",
]
