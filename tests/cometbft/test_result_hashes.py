"""`results_hash` encodes each result's deterministic fields by hand (rtc.cometbft may not import
the generated protobuf); the generated ExecTxResult is the reference it must match byte for byte."""

from __future__ import annotations

import random

import pytest

from rtc.abci import abci_pb
from rtc.cometbft.lightclient import TxResult, merkle_root, results_hash


def reference(results: list[TxResult]) -> bytes:
    return merkle_root([abci_pb.ExecTxResult(code=r.code, data=r.data, gas_wanted=r.gas_wanted,
                                             gas_used=r.gas_used).SerializeToString() for r in results])


EDGES = [TxResult(0, b"", 0, 0), TxResult(3, b"\x00", -1, 2**63 - 1), TxResult(2**32 - 1, b"x" * 300, 1, -(2**63)),
         TxResult(1, bytes(range(256)), 127, 128)]


@pytest.mark.parametrize("seed", range(20))
def test_results_hash_matches_the_generated_protobuf(seed: int) -> None:
    rng = random.Random(seed)
    results = [TxResult(rng.choice([0, 1, 3, 10, 2**31, 2**32 - 1]), rng.randbytes(rng.choice([0, 1, 127, 128, 5000])),
                        rng.randint(-(2**63), 2**63 - 1), rng.randint(0, 2**40)) for _ in range(rng.randint(0, 9))]
    assert results_hash(results) == reference(results)


def test_edge_values() -> None:
    assert results_hash(EDGES) == reference(EDGES)
    assert results_hash([]) == reference([])
