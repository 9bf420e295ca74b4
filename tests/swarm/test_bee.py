"""BeeSwarm over Bee's HTTP API: against the fake server always, and a real Bee node when BEE_API_URL is set.

Tests taking `bee_swarm` run twice: against tests/swarm/fake_bee.py, and against the node
named by BEE_API_URL / BEE_POSTAGE_BATCH_ID (skipped, with the reason shown, when unset).
"""

from __future__ import annotations

import os
import secrets

import httpx
import pytest

from rtc.swarm import (
    BeeSwarm,
    ChunkInvalid,
    FeedSigner,
    LocalSwarm,
    NotFound,
    Swarm,
    SwarmError,
    SwarmUnavailable,
    bytes_reference,
    feed_identifier,
    soc_address,
)
from rtc.swarm.bmt import cac_address, encode_span
from rtc.swarm.soc import feed_update_payload, make_soc

from .conftest import BATCH
from .fake_bee import FakeBee

C = 4096
BOUNDARIES = [0, 1, C - 1, C, C + 1, 128 * C, 128 * C + 1]


def fresh_feed() -> tuple[FeedSigner, bytes]:
    """A new owner and topic per test, so runs against a real node never collide."""
    return FeedSigner(secrets.token_bytes(32)), secrets.token_bytes(32)


# -- against the fake, and a real node when configured ----------------------------------


def test_is_a_swarm(bee_swarm: BeeSwarm) -> None:
    assert isinstance(bee_swarm, Swarm)


@pytest.mark.parametrize("length", BOUNDARIES)
def test_round_trip(bee_swarm: BeeSwarm, length: int) -> None:
    data = os.urandom(length)
    reference = bee_swarm.upload(data)
    assert reference == bytes_reference(data)
    assert bee_swarm.has(reference)
    assert bee_swarm.download(reference) == data


def test_feed_updates_then_latest(bee_swarm: BeeSwarm) -> None:
    signer, topic = fresh_feed()
    assert bee_swarm.latest_feed(signer.owner, topic) is None
    references = [bee_swarm.upload(os.urandom(100 + i)) for i in range(4)]
    with pytest.raises(NotFound):
        bee_swarm.feed_at(signer.owner, topic, 0)
    try:
        bee_swarm.update_feed(signer, topic, 0, references[0])
    except SwarmError as exc:
        if "dev mode" in str(exc):  # `bee dev` answers POST /soc with 501: only full and light nodes take SOCs
            pytest.skip(f"this Bee node cannot store single-owner chunks: {exc}")
        raise
    for index, reference in enumerate(references):
        bee_swarm.update_feed(signer, topic, index, reference)
        assert bee_swarm.latest_feed(signer.owner, topic) == (index, reference)
    for index, reference in enumerate(references):
        assert bee_swarm.feed_at(signer.owner, topic, index) == reference
    with pytest.raises(NotFound):
        bee_swarm.feed_at(signer.owner, topic, len(references))


def test_absent_things_are_not_found(bee_swarm: BeeSwarm) -> None:
    missing = bytes_reference(os.urandom(64))
    assert not bee_swarm.has(missing)
    with pytest.raises(NotFound):
        bee_swarm.download(missing)


# -- the fake: what was sent, and every failure mode -----------------------------------


def test_upload_headers(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    fake_bee_swarm.upload(b"hello world")
    method, path, headers = fake_bee.requests[-1]
    assert (method, path) == ("POST", "/bytes")
    assert headers["Swarm-Postage-Batch-Id"] == BATCH
    assert headers["Swarm-Redundancy-Level"] == "0"
    assert headers["Swarm-Encrypt"] == "false"


def test_same_chunks_as_local_store(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm, local: LocalSwarm) -> None:
    """The fake serves a LocalSwarm: a feed written through Bee's API reads back locally, bit for bit."""
    signer, topic = fresh_feed()
    reference = fake_bee_swarm.upload(b"record")
    fake_bee_swarm.update_feed(signer, topic, 0, reference)
    local.update_feed(signer, topic, 0, reference)
    address = soc_address(feed_identifier(topic, 0), signer.owner)
    assert fake_bee.swarm.get_chunk(address) == local.get_chunk(address)


def test_latest_uses_bee_hint_then_checks_it(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    signer, topic = fresh_feed()
    reference = fake_bee_swarm.upload(b"x")
    for index in range(40):
        fake_bee_swarm.update_feed(signer, topic, index, reference)
    fake_bee.requests.clear()
    assert fake_bee_swarm.latest_feed(signer.owner, topic) == (39, reference)
    paths = [path for _, path, _ in fake_bee.requests]
    assert paths[0].startswith("/feeds/") and len(paths) <= 4  # hint, hint present, next absent, the update


def test_latest_without_hint_searches(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    """Bee cannot resolve the feed (its reference's root chunk is missing): indexes are probed."""
    signer, topic = fresh_feed()
    absent = bytes_reference(b"never uploaded")
    for index in range(11):
        fake_bee_swarm.update_feed(signer, topic, index, absent)
    assert fake_bee_swarm.latest_feed(signer.owner, topic) == (10, absent)


def test_unavailable_then_recovers(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    signer, topic = fresh_feed()
    reference = fake_bee_swarm.upload(b"before")
    fake_bee.fail = True
    calls = [
        lambda: fake_bee_swarm.upload(b"during"),
        lambda: fake_bee_swarm.download(reference),
        lambda: fake_bee_swarm.has(reference),
        lambda: fake_bee_swarm.update_feed(signer, topic, 0, reference),
        lambda: fake_bee_swarm.feed_at(signer.owner, topic, 0),
        lambda: fake_bee_swarm.latest_feed(signer.owner, topic),
    ]
    for call in calls:
        with pytest.raises(SwarmUnavailable):
            call()
    fake_bee.fail = False  # what a caller's retry then sees
    fake_bee_swarm.update_feed(signer, topic, 0, reference)
    assert fake_bee_swarm.latest_feed(signer.owner, topic) == (0, reference)
    assert fake_bee_swarm.download(reference) == b"before"


def test_unreachable_is_unavailable(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    reference = fake_bee_swarm.upload(b"x")
    fake_bee.stop()
    with pytest.raises(SwarmUnavailable):
        fake_bee_swarm.download(reference)
    with pytest.raises(SwarmUnavailable):
        fake_bee_swarm.upload(b"y")


def test_timeout_is_unavailable(fake_bee: FakeBee) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with BeeSwarm(f"http://127.0.0.1:{silent.getsockname()[1]}", BATCH, timeout=0.3) as swarm:
            with pytest.raises(SwarmUnavailable):
                swarm.has(bytes(32))


def test_wrong_reference_is_caught(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    signer, topic = fresh_feed()
    fake_bee.wrong_reference = True
    with pytest.raises(ChunkInvalid):
        fake_bee_swarm.upload(b"data")
    with pytest.raises(ChunkInvalid):
        fake_bee_swarm.update_feed(signer, topic, 0, bytes_reference(b"data"))


def test_corrupt_downloads_are_caught(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    signer, topic = fresh_feed()
    reference = fake_bee_swarm.upload(os.urandom(3 * C))
    fake_bee_swarm.update_feed(signer, topic, 0, reference)
    fake_bee.corrupt_downloads = True
    with pytest.raises(ChunkInvalid):
        fake_bee_swarm.download(reference)
    with pytest.raises(ChunkInvalid):
        fake_bee_swarm.has(reference)
    with pytest.raises(ChunkInvalid):
        fake_bee_swarm.feed_at(signer.owner, topic, 0)
    with pytest.raises(ChunkInvalid):
        fake_bee_swarm.latest_feed(signer.owner, topic)


def test_fake_requires_batch_and_rejects_forgery(fake_bee: FakeBee) -> None:
    """The fake behaves as Bee: no batch header, 400; a forged SOC, 401 (BeeSwarm: ChunkInvalid)."""
    assert httpx.post(f"{fake_bee.url}/bytes", content=b"x").status_code == 400
    chunk = encode_span(3) + b"foo"
    answer = httpx.post(f"{fake_bee.url}/chunks", content=chunk, headers={"Swarm-Postage-Batch-Id": BATCH})
    assert answer.status_code == 201 and answer.json()["reference"] == cac_address(chunk).hex()
    owner, topic = fresh_feed()[0].owner, secrets.token_bytes(32)
    identifier = feed_identifier(topic, 0)
    _, forged = make_soc(identifier, feed_update_payload(bytes(32)), FeedSigner(secrets.token_bytes(32)))
    answer = httpx.post(f"{fake_bee.url}/soc/{owner.hex()}/{identifier.hex()}", params={"sig": forged[32:97].hex()},
                        content=forged[97:], headers={"Swarm-Postage-Batch-Id": BATCH})
    assert answer.status_code == 401


def test_read_only_client(fake_bee: FakeBee, fake_bee_swarm: BeeSwarm) -> None:
    reference = fake_bee_swarm.upload(b"shared")
    with BeeSwarm(fake_bee.url, "") as reader:
        assert reader.download(reference) == b"shared"
        with pytest.raises(SwarmError, match="read-only"):
            reader.upload(b"more")


def test_bad_batch_id() -> None:
    with pytest.raises(ValueError):
        BeeSwarm("http://127.0.0.1:1", "not-a-batch")
    assert BeeSwarm("http://127.0.0.1:1/", "0x" + "AB" * 32).postage_batch_id == "ab" * 32
