"""The compiled core's chunk hashing against the reference (rtc/swarm/bmt.py) and Bee's vectors.

`bmt.bmt_root` is the compiled core's when it is installed; tests/swarm checks it against
Bee's references. Here both implementations meet on random payloads of every length, and
the reference alone is held to the shared vectors too, so neither can drift.
"""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

import rtc_native
from rtc.swarm import bmt, chunker
from tests.swarm.test_references import SHARED, sequential


def test_the_node_hashes_with_the_compiled_core() -> None:
    assert bmt.bmt_root is not bmt.bmt_root_reference


@settings(max_examples=400, deadline=None)
@given(payload=st.binary(max_size=4096) | st.integers(0, 4096).map(lambda n: bytes([n % 251]) * n))
def test_bmt_roots_and_chunk_addresses_agree(payload: bytes) -> None:
    assert rtc_native.bmt_root(payload) == bmt.bmt_root_reference(payload)
    span = len(payload) * 3
    assert rtc_native.chunk_address(span, payload) == bmt.keccak256(bmt.encode_span(span) + bmt.bmt_root_reference(payload))


@given(data=st.binary(max_size=300))
def test_keccak256_is_ethereum_s(data: bytes) -> None:
    assert rtc_native.keccak256(data) == keccak.new(digest_bits=256, data=data).digest()


def test_an_oversize_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 4096 bytes"):
        rtc_native.bmt_root(bytes(4097))


def test_the_reference_still_computes_bee_s_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bmt, "bmt_root", bmt.bmt_root_reference)
    for vector in SHARED["strings"]:
        assert chunker.bytes_reference(vector["data_utf8"].encode()).hex() == vector["reference"]
    for vector in SHARED["sequential_files"]["vectors"]:
        assert chunker.bytes_reference(sequential(int(vector["length"]))).hex() == vector["reference"]
