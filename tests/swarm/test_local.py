"""LocalSwarm: round trips at every tree boundary, verification on put and get, feeds, persistence."""

from __future__ import annotations

import random
from pathlib import Path

import lmdb
import pytest

from rtc.swarm import (
    ChunkInvalid,
    FeedConflict,
    FeedSigner,
    LocalSwarm,
    NotFound,
    Swarm,
    SwarmError,
    bytes_reference,
    feed_identifier,
    soc_address,
)
from rtc.swarm.base import find_latest
from rtc.swarm.bmt import encode_span
from rtc.swarm.chunker import split
from rtc.swarm.soc import feed_update_payload, make_soc

C = 4096
BOUNDARIES = [0, 1, C - 1, C, C + 1, 2 * C, 128 * C - 1, 128 * C, 128 * C + 1, 129 * C + 5]
SIGNER = FeedSigner(bytes(31) + b"\x2a")
TOPIC = bytes(range(32))


def data_of(length: int) -> bytes:
    return random.Random(length).randbytes(length)


def test_is_a_swarm(local: LocalSwarm) -> None:
    assert isinstance(local, Swarm)


@pytest.mark.parametrize("length", BOUNDARIES)
def test_round_trip(local: LocalSwarm, length: int) -> None:
    data = data_of(length)
    reference = local.upload(data)
    assert reference == bytes_reference(data)
    assert local.has(reference)
    assert local.download(reference) == data


def test_upload_is_idempotent_and_shares_chunks(local: LocalSwarm) -> None:
    data = data_of(3 * C)
    assert local.upload(data) == local.upload(data)
    assert local.download(local.upload(data + b"tail")) == data + b"tail"


def test_absent_reference(local: LocalSwarm) -> None:
    assert not local.has(bytes(32))
    with pytest.raises(NotFound):
        local.download(bytes(32))


def test_missing_inner_chunk_is_not_found(tmp_path: Path) -> None:
    data = data_of(3 * C)
    chunks: dict[bytes, bytes] = {}
    reference, _ = split(data, chunks.__setitem__)
    with LocalSwarm.open(tmp_path / "s") as swarm:
        for address, chunk in chunks.items():
            if address != reference and chunk[8:] != data[C : 2 * C]:
                swarm.put_chunk(address, chunk)
        swarm.put_chunk(reference, chunks[reference])
        assert swarm.has(reference)
        with pytest.raises(NotFound, match="missing"):
            swarm.download(reference)


def test_bad_references_are_value_errors(local: LocalSwarm) -> None:
    for bad in (b"", bytes(31), "00" * 32):
        with pytest.raises(ValueError):
            local.download(bad)  # type: ignore[arg-type]


def test_put_refuses_content_not_matching_its_address(local: LocalSwarm) -> None:
    chunk = encode_span(3) + b"foo"
    wrong_address = bytes(32)
    with pytest.raises(ChunkInvalid):
        local.put_chunk(wrong_address, chunk)
    with pytest.raises(NotFound):
        local.get_chunk(wrong_address)
    with pytest.raises(ChunkInvalid):
        local.put_chunk(wrong_address, b"short")


def _tamper(path: Path, address: bytes, change: bytes | None = None) -> None:
    """Rewrite a stored chunk behind the store's back (the store must be closed)."""
    env = lmdb.open(str(path), max_dbs=2)
    try:
        chunks = env.open_db(b"chunks")
        with env.begin(write=True, db=chunks) as txn:
            value = txn.get(address)
            assert value is not None
            txn.put(address, change if change is not None else value[:-1] + bytes([value[-1] ^ 0x01]))
    finally:
        env.close()


@pytest.mark.parametrize("which", ["root", "leaf"])
def test_get_refuses_tampered_chunk(tmp_path: Path, which: str) -> None:
    path = tmp_path / "s"
    data = data_of(2 * C + 9)
    chunks: dict[bytes, bytes] = {}
    reference, _ = split(data, chunks.__setitem__)
    target = reference if which == "root" else next(a for a, c in chunks.items() if c[8:] == data[:C])
    with LocalSwarm.open(path) as swarm:
        assert swarm.upload(data) == reference
    _tamper(path, target)
    with LocalSwarm.open(path) as swarm:
        with pytest.raises(ChunkInvalid):
            swarm.download(reference)
        with pytest.raises(ChunkInvalid):
            swarm.get_chunk(target)
        if which == "root":
            with pytest.raises(ChunkInvalid):
                swarm.has(reference)


def test_get_refuses_tampered_feed_update(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LocalSwarm.open(path) as swarm:
        swarm.update_feed(SIGNER, TOPIC, 0, bytes(32))
    _tamper(path, soc_address(feed_identifier(TOPIC, 0), SIGNER.owner))
    with LocalSwarm.open(path) as swarm:
        with pytest.raises(ChunkInvalid):
            swarm.feed_at(SIGNER.owner, TOPIC, 0)
        with pytest.raises(ChunkInvalid):
            swarm.latest_feed(SIGNER.owner, TOPIC)


def test_put_refuses_forged_soc(local: LocalSwarm) -> None:
    """An update signed by another key, at the owner's feed address."""
    identifier = feed_identifier(TOPIC, 0)
    _, forged = make_soc(identifier, feed_update_payload(bytes(32)), FeedSigner(bytes(31) + b"\x01"))
    address = soc_address(identifier, SIGNER.owner)
    with pytest.raises(ChunkInvalid):
        local.put_chunk(address, forged)
    with pytest.raises(NotFound):
        local.feed_at(SIGNER.owner, TOPIC, 0)
    assert local.latest_feed(SIGNER.owner, TOPIC) is None


def test_put_accepts_valid_soc(local: LocalSwarm) -> None:
    address, data = make_soc(bytes(32), b"payload", SIGNER)
    local.put_chunk(address, data)
    assert local.get_chunk(address) == data


@pytest.mark.parametrize("count", [1, 2, 3, 5, 16, 17, 100])
def test_feed_updates_then_latest(local: LocalSwarm, count: int) -> None:
    references = [bytes_reference(i.to_bytes(4, "big")) for i in range(count)]
    assert local.latest_feed(SIGNER.owner, TOPIC) is None
    for index, reference in enumerate(references):
        local.update_feed(SIGNER, TOPIC, index, reference)
        assert local.latest_feed(SIGNER.owner, TOPIC) == (index, reference)
    for index, reference in enumerate(references):
        assert local.feed_at(SIGNER.owner, TOPIC, index) == reference
    with pytest.raises(NotFound):
        local.feed_at(SIGNER.owner, TOPIC, count)
    assert local.latest_feed(SIGNER.owner, bytes(32)) is None  # another topic
    assert local.latest_feed(bytes(20), TOPIC) is None  # another owner


def test_feed_update_is_idempotent_and_conflicts_refused(local: LocalSwarm) -> None:
    local.update_feed(SIGNER, TOPIC, 0, b"\x01" * 32)
    local.update_feed(SIGNER, TOPIC, 0, b"\x01" * 32)  # the same update again: a no-op
    with pytest.raises(FeedConflict):
        local.update_feed(SIGNER, TOPIC, 0, b"\x02" * 32)
    with pytest.raises(FeedConflict):
        local.update_feed(SIGNER, TOPIC, 0, b"\x01" * 32, timestamp=5)
    assert local.feed_at(SIGNER.owner, TOPIC, 0) == b"\x01" * 32
    assert isinstance(FeedConflict("x"), SwarmError)


def test_feed_timestamp_is_stored(local: LocalSwarm) -> None:
    local.update_feed(SIGNER, TOPIC, 0, b"\x03" * 32, timestamp=1_700_000_000)
    chunk = local.get_chunk(soc_address(feed_identifier(TOPIC, 0), SIGNER.owner))
    assert int.from_bytes(chunk[105:113], "big") == 1_700_000_000


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s"
    data = data_of(128 * C + 1)
    with LocalSwarm.open(path) as swarm:
        reference = swarm.upload(data)
        for index in range(6):
            swarm.update_feed(SIGNER, TOPIC, index, reference)
    with LocalSwarm.open(path) as swarm:
        assert swarm.download(reference) == data
        assert swarm.latest_feed(SIGNER.owner, TOPIC) == (5, reference)


def test_closed_store_refuses(tmp_path: Path) -> None:
    swarm = LocalSwarm.open(tmp_path / "s")
    swarm.close()
    swarm.close()
    with pytest.raises(SwarmError):
        swarm.upload(b"x")


def test_map_grows_when_full(tmp_path: Path) -> None:
    with LocalSwarm.open(tmp_path / "s", map_size=1 << 20) as swarm:
        data = data_of(3 << 20)
        assert swarm.download(swarm.upload(data)) == data


def test_concurrent_uploads(local: LocalSwarm) -> None:
    from concurrent.futures import ThreadPoolExecutor

    blobs = [data_of(C * 3 + n) for n in range(8)]
    with ThreadPoolExecutor(4) as pool:
        references = list(pool.map(local.upload, blobs))
    assert [local.download(r) for r in references] == blobs


@pytest.mark.parametrize("latest", [None, 0, 1, 2, 3, 7, 8, 9, 1000, 12345])
@pytest.mark.parametrize("hint", [0, 1, 5, 20000])
def test_find_latest(latest: int | None, hint: int) -> None:
    probes: list[int] = []

    def present(index: int) -> bool:
        probes.append(index)
        return latest is not None and index <= latest

    assert find_latest(present, hint) == latest
    assert len(probes) <= 2 * 16 + 4


def test_find_latest_at_the_last_index() -> None:
    assert find_latest(lambda index: True) == 2**64 - 1
