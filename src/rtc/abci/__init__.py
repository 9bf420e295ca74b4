"""Our own asyncio ABCI 2.0 socket server for CometBFT v0.39.

Public surface:

* :class:`Application` - subclass it; one sync method per ABCI request.
* :class:`ABCIServer` - serves an Application on ``unix:///path`` or ``tcp://host:port``.
* :func:`run_server` - blocking runner with SIGTERM/SIGINT handling; returns an exit code.
* ``abci_pb`` - the generated ``tendermint.abci`` protobuf module (``abci_pb.RequestCheckTx`` ...),
  and the two messages from other CometBFT packages an application fills in:
  ``PublicKey`` (validator updates) and ``ProofOp`` (query proofs).

The generated modules live in ``rtc.abci._pb`` (made by ``scripts/gen_proto.py``); only
this package and its tests reach into it.
"""

from __future__ import annotations

try:
    from rtc.abci._pb.tendermint.abci import types_pb2 as abci_pb
    from rtc.abci._pb.tendermint.crypto.keys_pb2 import PublicKey
    from rtc.abci._pb.tendermint.crypto.proof_pb2 import ProofOp
except ModuleNotFoundError as e:  # pragma: no cover - only without generated stubs
    if not (e.name or "").startswith("rtc.abci._pb"):
        raise
    raise ImportError(
        "rtc.abci protobuf stubs are missing: run `make setup` or "
        "`.venv/bin/python scripts/gen_proto.py --cometbft-version v0.39.4`"
    ) from e

from rtc.abci.application import CODE_NOT_SUPPORTED, CODE_OK, Application
from rtc.abci.server import ABCIServer, AddressInUseError, run_server
from rtc.abci.wire import FrameError, FrameTooLargeError, MalformedVarintError

__all__ = [
    "ABCIServer",
    "AddressInUseError",
    "Application",
    "CODE_NOT_SUPPORTED",
    "CODE_OK",
    "FrameError",
    "FrameTooLargeError",
    "MalformedVarintError",
    "ProofOp",
    "PublicKey",
    "abci_pb",
    "run_server",
]
