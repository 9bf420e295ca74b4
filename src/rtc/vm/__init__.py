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

__all__ = [
    "HOST_INTERFACES", "WIT_PATH", "ArgumentError", "Backend", "BlockInfo", "CallError", "CallOutcome",
    "DeployError", "EntryPoint", "HostFailure", "Limits", "Meter", "PreparedCall", "StateView",
]
