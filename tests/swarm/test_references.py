"""References exactly as Bee computes them: the shared vectors, Bee's own published vectors, the BMT itself."""

from __future__ import annotations

import json
import random

import pytest
from Crypto.Hash import keccak

from rtc.swarm import bytes_reference, chunk_address, chunk_count
from rtc.swarm.bmt import bmt_root, cac_address
from rtc.swarm.chunker import join, split

from .conftest import VECTORS

SHARED = json.loads(VECTORS.read_text())  # a missing file fails the run: these vectors are not optional
PATTERN = bytes(i % 255 for i in range(255))
C = 4096


def sequential(length: int) -> bytes:
    """data[i] = i % 255, the files of Bee's splitter vectors."""
    return (PATTERN * (length // 255 + 1))[:length]


@pytest.mark.parametrize("vector", SHARED["strings"], ids=lambda v: repr(v["data_utf8"]))
def test_shared_string_vectors(vector: dict[str, str]) -> None:
    assert bytes_reference(vector["data_utf8"].encode()).hex() == vector["reference"]


@pytest.mark.parametrize("vector", SHARED["sequential_files"]["vectors"], ids=lambda v: str(v["length"]))
def test_shared_sequential_file_vectors(vector: dict[str, int | str]) -> None:
    assert SHARED["sequential_files"]["about"] == "data[i] = i % 255 for i in range(length)"
    assert bytes_reference(sequential(int(vector["length"]))).hex() == vector["reference"]


def test_every_shared_vector_was_checked() -> None:
    """Guard against the file growing a section these tests do not read."""
    assert set(SHARED) == {"about", "strings", "sequential_files"}
    assert len(SHARED["strings"]) >= 5 and len(SHARED["sequential_files"]["vectors"]) >= 4


# Bee's splitter test vectors (pkg/file/testing/vector.go): lengths around every tree boundary,
# including a lone reference carried up one level (128*4096 + 31) and two levels (128*128*4096 + 32).
BEE_SPLITTER_VECTORS = [
    (31, "ece86edb20669cc60d142789d464d57bdf5e33cb789d443f608cbd81cfa5697d"),
    (32, "0be77f0bb7abc9cd0abed640ee29849a3072ccfd1020019fe03658c38f087e02"),
    (33, "3463b46d4f9d5bfcbf9a23224d635e51896c1daef7d225b86679db17c5fd868e"),
    (63, "95510c2ff18276ed94be2160aed4e69c9116573b6f69faaeed1b426fea6a3db8"),
    (64, "490072cc55b8ad381335ff882ac51303cc069cbcb8d8d3f7aa152d9c617829fe"),
    (65, "541552bae05e9a63a6cb561f69edf36ffe073e441667dbf7a0e9a3864bb744ea"),
    (C, "c10090961e7682a10890c334d759a28426647141213abda93b096b892824d2ef"),
    (C + 31, "91699c83ed93a1f87e326a29ccd8cc775323f9e7260035a5f014c975c5f3cd28"),
    (C + 32, "73759673a52c1f1707cbb61337645f4fcbd209cdc53d7e2cedaaa9f44df61285"),
    (C + 63, "db1313a727ffc184ae52a70012fbbf7235f551b9f2d2da04bf476abe42a3cb42"),
    (C + 64, "ade7af36ac0c7297dc1c11fd7b46981b629c6077bce75300f85b02a6153f161b"),
    (C * 2, "29a5fb121ce96194ba8b7b823a1f9c6af87e1791f824940a53b5a7efe3f790d9"),
    (C * 2 + 32, "61416726988f77b874435bdd89a419edc3861111884fd60e8adf54e2f299efd6"),
    (C * 128, "3047d841077898c26bbe6be652a2ec590a5d9bd7cd45d290ea42511b48753c09"),
    (C * 128 + 31, "e5c76afa931e33ac94bce2e754b1bb6407d07f738f67856783d93934ca8fc576"),
    (C * 128 + 32, "485a526fc74c8a344c43a4545a5987d17af9ab401c0ef1ef63aefcc5c2c086df"),
    (C * 128 + 64, "624b2abb7aefc0978f891b2a56b665513480e5dc195b4a66cd8def074a6d2e94"),
    (C * 129, "b8e1804e37a064d28d161ab5f256cc482b1423d5cd0a6b30fde7b0f51ece9199"),
    (C * 130, "59de730bf6c67a941f3b2ffa2f920acfaa1713695ad5deea12b4a121e5f23fa1"),
    (C * 128 * 128, "522194562123473dcfd7a457b18ee7dee8b7db70ed3cfa2b73f348a992fdfd3b"),
    (C * 128 * 128 + 32, "ed0cc44c93b14fef2d91ab3a3674eeb6352a42ac2f0bbe524711824aae1e7bcc"),
]


@pytest.mark.parametrize(("length", "reference"), BEE_SPLITTER_VECTORS, ids=lambda v: str(v)[:12])
def test_bee_splitter_vectors(length: int, reference: str) -> None:
    assert bytes_reference(sequential(length)).hex() == reference


def test_bee_cac_vectors() -> None:
    """pkg/cac tests: a chunk made from data, and one whose first 8 bytes are taken as its span."""
    assert chunk_address(15, b"greaterthanspan").hex() == "27913f1bdb6e8e52cbd5a5fd4ab577c857287edf6969b41efe926b51de0f4f23"
    assert cac_address(b"greaterthanspan").hex() == "95022e6af5c6d6a564ee55a67f8455a3e18c511b5697c932d9e44f07f2fb8c53"
    assert chunk_address(3, b"foo").hex() == "2387e8e7d8a48c2a9339c97c1dc3461a9a7aa07e994c5cb8b38fd7c1b3e6ea48"


def _keccak(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def _naive_bmt(payload: bytes) -> bytes:
    """The BMT straight from its definition, with pycryptodome's plain keccak object."""
    level = [(payload + bytes(C - len(payload)))[i : i + 32] for i in range(0, C, 32)]
    while len(level) > 1:
        level = [_keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


@pytest.mark.parametrize("length", [0, 1, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128, 129, 1000, 2047, 2048,
                                    2049, 3000, 4063, 4064, 4065, 4095, 4096])
def test_bmt_matches_its_definition(length: int) -> None:
    """The fast path (in-place pair hashing, zero subtrees skipped) against the plain definition."""
    payload = random.Random(length).randbytes(length)
    assert bmt_root(payload) == _naive_bmt(payload)
    assert chunk_address(length, payload) == _keccak(length.to_bytes(8, "little") + _naive_bmt(payload))


def test_bmt_rejects_oversized_payload() -> None:
    with pytest.raises(ValueError):
        bmt_root(bytes(C + 1))


def test_bmt_is_thread_safe() -> None:
    """Each thread hashes in its own scratch buffer."""
    from concurrent.futures import ThreadPoolExecutor

    payloads = [random.Random(i).randbytes(C) for i in range(64)]
    expected = [_naive_bmt(p) for p in payloads]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(bmt_root, payloads)) == expected


@pytest.mark.parametrize("length", [0, 1, C - 1, C, C + 1, C * 128 - 1, C * 128, C * 128 + 1, C * 129, C * 128 * 3 + 5])
def test_split_join_and_chunk_count(length: int) -> None:
    data = random.Random(length).randbytes(length)
    chunks: dict[bytes, bytes] = {}
    reference, count = split(data, chunks.__setitem__)
    assert reference == bytes_reference(data)
    assert count == len(chunks) == chunk_count(length)
    assert all(cac_address(chunk) == address for address, chunk in chunks.items())
    assert join(reference, chunks.__getitem__) == data


def test_split_accepts_any_buffer() -> None:
    data = sequential(C * 3 + 7)
    assert bytes_reference(bytearray(data)) == bytes_reference(memoryview(data)) == bytes_reference(data)
