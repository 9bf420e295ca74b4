"""Keccak-256 as Ethereum and Swarm use it (original padding, not SHA3-256), with little per-call cost.

A BMT costs 127 digests of 64 bytes per 4 KiB chunk. pycryptodome's `keccak.new` builds a
Python object per digest (about 9 µs each, 3.5 MB/s of chunk data), so on its cffi backend
we drive its C Keccak state directly (about 1.4 µs per digest), one state per thread since a
state cannot be shared.  Where pycryptodome runs on ctypes instead, `keccak.new` is used.
"""

from __future__ import annotations

import threading
from typing import Any

from Crypto.Hash import keccak as _pycryptodome_keccak
from Crypto.Util import _raw_api

__all__ = ["PairHasher", "keccak256", "pair_hasher"]

_LIB: Any = getattr(_pycryptodome_keccak, "_raw_keccak_lib")  # its cffi handle to the C Keccak
_FFI: Any = _raw_api.ffi if _raw_api.backend == "cffi" else None
_CAPACITY = 64  # bytes: Keccak-256's capacity is twice its digest
_ROUNDS = 24
_PADDING = 0x01  # Keccak's own padding byte (SHA3-256 uses 0x06)
_SCRATCH = 4096  # one chunk payload


def _keccak_object(data: Any) -> bytes:
    return _pycryptodome_keccak.new(digest_bits=256, data=data).digest()


class PairHasher:
    """One thread's Keccak state plus a 4 KiB scratch buffer the BMT hashes in place."""

    def __init__(self) -> None:
        self.scratch = bytearray(_SCRATCH)
        self._out = bytearray(32)
        if _FFI is None:
            return
        holder = _FFI.new("void **")
        if _LIB.keccak_init(holder, _CAPACITY, _ROUNDS):
            raise RuntimeError("could not initialise a Keccak state")
        # The state is freed with the hasher (threads do not come and go often).
        self._state = _FFI.gc(holder[0], _LIB.keccak_destroy)
        self._base = _FFI.cast("uint8_t *", _FFI.from_buffer(self.scratch))
        self._out_ptr = _FFI.cast("uint8_t *", _FFI.from_buffer(self._out))
        self._pairs_in = [self._base + 64 * i for i in range(_SCRATCH // 64)]
        self._pairs_out = [self._base + 32 * i for i in range(_SCRATCH // 64)]

    def digest(self, data: Any) -> bytes:
        """keccak256 of any contiguous buffer."""
        if _FFI is None:
            return _keccak_object(data)
        state = self._state
        _LIB.keccak_reset(state)
        _LIB.keccak_absorb(state, _FFI.from_buffer(data), len(data))
        _LIB.keccak_digest(state, self._out_ptr, 32, _PADDING)
        return bytes(self._out)

    def hash_pairs(self, count: int) -> None:
        """scratch[32i:32i+32] = keccak256(scratch[64i:64i+64]) for i < count, in place.

        Safe in place: pair i is fully absorbed before its digest overwrites bytes at or
        before 64i, and later pairs only read bytes after 64i + 63.
        """
        if _FFI is None:
            scratch = self.scratch
            for i in range(count):
                scratch[32 * i : 32 * i + 32] = _keccak_object(bytes(scratch[64 * i : 64 * i + 64]))
            return
        state, pairs_in, pairs_out = self._state, self._pairs_in, self._pairs_out
        reset, absorb, finish = _LIB.keccak_reset, _LIB.keccak_absorb, _LIB.keccak_digest
        for i in range(count):
            reset(state)
            absorb(state, pairs_in[i], 64)
            finish(state, pairs_out[i], 32, _PADDING)


_local = threading.local()


def pair_hasher() -> PairHasher:
    """This thread's hasher (made on first use)."""
    hasher: PairHasher | None = getattr(_local, "hasher", None)
    if hasher is None:
        hasher = _local.hasher = PairHasher()
    return hasher


def keccak256(*parts: bytes) -> bytes:
    """keccak256 of the concatenation of `parts`."""
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    return pair_hasher().digest(data)
