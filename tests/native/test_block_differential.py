"""Two nodes fed the same blocks, one on the Python reference and one on the compiled core:
the same results, events, state and app_hash at every height.

The blocks are random and hostile: many sessions whose calls arrive out of order (queued,
released, refused as duplicates or too early), closes, gaps that time out and sessions that
expire, traps, fuel running out, results over the limit, values up to the size limit,
deletes and scans, a per-block fuel budget that refuses the rest, junk bytes, and calls
that fail their checks. Every FinalizeBlock response is compared as bytes.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey

from rtc.abci import abci_pb
from rtc.node.app import ClusterApp
from rtc.node.config import ClusterSettings, GenesisAppState
from rtc.protocol import Kind, canonical_json, sign
from rtc.sessions import SessionRules
from rtc.state import StateStore
from rtc.vm import Backend, Limits, NativeBackend
from tests.conftest import component_path
from tests.helpers import hostile_call

CHAIN = "differential"
SETTINGS = ClusterSettings(
    limits=Limits(fuel=2_000_000, max_scan_bytes=16_384, max_result_bytes=2048, max_value_bytes=8192),
    sessions=SessionRules(max_buffered=6, gap_timeout_blocks=4, idle_expiry_blocks=12),
    block_fuel=4_000_000,
)


def node(path: Path, backend: Backend) -> ClusterApp:
    app = ClusterApp(StateStore.open(path), backend, SETTINGS)
    state = GenesisAppState(backend.code_hash, SETTINGS).to_json()
    app.init_chain(abci_pb.RequestInitChain(chain_id=CHAIN, app_state_bytes=orjson.dumps(state)))
    return app


def finalize(app: ClusterApp, height: int, txs: list[bytes]) -> bytes:
    request = abci_pb.RequestFinalizeBlock(height=height, txs=txs)
    request.time.seconds = 1_700_000_000 + height
    response = app.finalize_block(request)
    app.commit(abci_pb.RequestCommit())
    return response.SerializeToString(deterministic=True)


class Workload:
    """Random sessions of the hostile backend's calls, sent out of order, some twice."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.keys = [SigningKey(bytes([seed % 256, i]) * 16) for i in range(4)]
        self.sessions: list[list] = []  # [key, session id, next counter]: new ones keep coming
        self.sent: list[bytes] = []

    def tx(self) -> bytes:
        rng = self.rng
        pick = rng.random()
        if pick < 0.04 and self.sent:
            return rng.choice(self.sent)  # a duplicate
        if pick < 0.06:
            return rng.randbytes(rng.randrange(0, 120))  # junk
        if not self.sessions or rng.random() < 0.06:
            self.sessions.append([rng.choice(self.keys), rng.randbytes(16), self._counters()])
        key, session_id, counters = rng.choice(self.sessions[-6:])
        counter = counters.pop(0) if counters else rng.randrange(0, 200)
        if pick < 0.08:
            body, kind = b"", Kind.CLOSE
        elif pick < 0.10:
            body, kind = canonical_json({"function": "spin_n", "n": "many"}), Kind.CALL  # fails its check
        else:
            body, kind = canonical_json(hostile_call(rng)), Kind.CALL
        tx = sign(key, CHAIN, session_id, counter, body, kind=kind).encode()
        self.sent.append(tx)
        return tx

    def _counters(self) -> list[int]:
        """0, 1, 2... with neighbours swapped (queued, then released), now and then one left
        out (a gap that times out) or one far ahead (too early)."""
        rng = self.rng
        counters = [k for k in range(rng.randrange(3, 25)) if rng.random() > 0.03]
        for i in range(len(counters) - 1):
            if rng.random() < 0.3:
                counters[i], counters[i + 1] = counters[i + 1], counters[i]
        if rng.random() < 0.1:
            counters.insert(rng.randrange(len(counters) + 1), 50)
        return counters


@pytest.mark.parametrize("seed", range(4))
def test_native_and_python_blocks_are_identical(tmp_path: Path, seed: int) -> None:
    code = component_path("hostile").read_bytes()
    reference = node(tmp_path / "python", Backend(code, SETTINGS.limits))
    native = node(tmp_path / "native", NativeBackend(code, SETTINGS.limits))
    workload = Workload(seed)
    statuses: Counter[bytes] = Counter()
    for height in range(1, 61):
        txs = [workload.tx() for _ in range(workload.rng.randrange(0, 40))]
        expected = finalize(reference, height, txs)
        assert finalize(native, height, txs) == expected, f"height {height} differs"
        assert native.store.root == reference.store.root
        response = abci_pb.ResponseFinalizeBlock.FromString(expected)
        statuses.update(attribute.value.encode() for result in response.tx_results for event in result.events
                        for attribute in event.attributes if attribute.key == "status")
        statuses.update(str(result.code).encode() for result in response.tx_results)
    # the workload reached every kind of outcome
    assert {b"ok", b"error", b"queued", b"skipped"} <= set(statuses), statuses
    assert {b"6", b"7", b"8", b"11"} <= set(statuses), statuses  # duplicate, session ended, too early, block full
    assert dict(reference.store.iterate()) == dict(native.store.iterate())


def test_results_at_the_size_limit_agree(tmp_path: Path) -> None:
    """Around the result limit, to the byte: a result of exactly `max_result_bytes` is kept,
    one byte more is refused, on both cores (the record's own bytes are counted too)."""
    code = component_path("hostile").read_bytes()
    reference = node(tmp_path / "python", Backend(code, SETTINGS.limits))
    native = node(tmp_path / "native", NativeBackend(code, SETTINGS.limits))
    key = SigningKey(b"\x05" * 32)
    limit = SETTINGS.limits.max_result_bytes
    txs = [sign(key, CHAIN, bytes([n % 256]) * 16, 0, canonical_json({"function": "big_output", "n": n})).encode()
           for n in range(limit - 50, limit - 25)]
    expected = finalize(reference, 1, txs)
    assert finalize(native, 1, txs) == expected
    codes = [result.code for result in abci_pb.ResponseFinalizeBlock.FromString(expected).tx_results]
    assert 0 in codes and 3 in codes and codes == sorted(codes)  # kept up to the limit, refused beyond it
