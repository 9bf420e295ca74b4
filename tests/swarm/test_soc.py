"""Single-owner chunks and feed updates, signed and checked as Bee and bee-js do."""

from __future__ import annotations

import pytest

from rtc.swarm import ChunkInvalid, FeedSigner, feed_identifier, soc_address
from rtc.swarm.keccak import keccak256
from rtc.swarm.soc import (
    feed_update_payload,
    make_soc,
    parse_feed_update,
    parse_soc,
    recover_owner,
)

# bee-js test identity and its signer test ("same data as Bee Go client").
PRIVATE_KEY = bytes.fromhex("634fb5a872396d9693e5c9f9d7233cfa93f395c093371017ff44aa9ae6564cdd")
OWNER = bytes.fromhex("8d3766440f0d7b949a5e32995d09619a7f86e632")
SIGNED_DIGEST = bytes.fromhex("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
SIGNATURE = bytes.fromhex("336d24afef78c5883b96ad9a62552a8db3d236105cb059ddd04dc49680869dc1"
                          "6234f6852c277087f025d4114c4fac6b40295ecffd1194a84cdb91bd571769491b")
SOC_OF_1_2_3 = "9d453ebb73b2fedaaf44ceddcf7a0aa37f3e3d6453fea5841c31f0ea6d61dc85"  # bee-js soc test

SIGNER = FeedSigner(PRIVATE_KEY)
OTHER = FeedSigner(bytes(31) + b"\x07")


def test_signer_matches_bee_js_and_bee() -> None:
    assert SIGNER.owner == OWNER
    assert SIGNER.sign(SIGNED_DIGEST) == SIGNATURE
    assert recover_owner(SIGNATURE, SIGNED_DIGEST) == OWNER
    assert "634fb5" not in repr(SIGNER)


def test_soc_matches_bee_js() -> None:
    address, data = make_soc(bytes(32), bytes([1, 2, 3]), SIGNER)
    assert address.hex() == SOC_OF_1_2_3
    assert address == soc_address(bytes(32), OWNER) == keccak256(bytes(32) + OWNER)
    chunk = parse_soc(address, data)
    assert chunk.owner == OWNER and chunk.payload == bytes([1, 2, 3]) and chunk.identifier == bytes(32)
    assert data[:32] == bytes(32) and data[97:] == (3).to_bytes(8, "little") + bytes([1, 2, 3])
    assert data[96] in (27, 28)


def test_signing_is_deterministic() -> None:
    assert make_soc(bytes(32), b"x", SIGNER) == make_soc(bytes(32), b"x", SIGNER)


def _valid() -> tuple[bytes, bytes]:
    return make_soc(feed_identifier(bytes(32), 3), feed_update_payload(bytes(range(32))), SIGNER)


@pytest.mark.parametrize("where", [0, 31, 40, 95, 97, 104, 105, -1])
def test_any_flipped_byte_is_refused(where: int) -> None:
    """Identifier, signature, span or payload: every byte is bound to the address."""
    address, data = _valid()
    tampered = bytearray(data)
    tampered[where] ^= 0x01
    with pytest.raises(ChunkInvalid):
        parse_soc(address, bytes(tampered))


def test_forged_owner_is_refused() -> None:
    """Signed by OTHER but placed at SIGNER's address: the signature recovers OTHER, not the owner."""
    identifier = feed_identifier(bytes(32), 0)
    _, forged = make_soc(identifier, feed_update_payload(bytes(32)), OTHER)
    with pytest.raises(ChunkInvalid, match="not signed by the owner"):
        parse_soc(soc_address(identifier, SIGNER.owner), forged)


def test_signature_over_other_content_is_refused() -> None:
    """A genuine signature of the owner, moved onto different content."""
    address, good = _valid()
    _, other = make_soc(good[:32], feed_update_payload(bytes(32)), SIGNER)
    spliced = good[:32] + good[32:97] + other[97:]
    with pytest.raises(ChunkInvalid):
        parse_soc(address, spliced)


@pytest.mark.parametrize("v", [0, 1, 26, 29, 35, 255])
def test_bad_recovery_byte_is_refused(v: int) -> None:
    address, data = _valid()
    with pytest.raises(ChunkInvalid):
        parse_soc(address, data[:96] + bytes([v]) + data[97:])


def test_bee_style_v_31_32_accepted() -> None:
    """Bee's recovery (btcec compact signatures) also takes 31/32 for the same recovery ids."""
    address, data = _valid()
    assert parse_soc(address, data[:96] + bytes([data[96] + 4]) + data[97:]).owner == OWNER


@pytest.mark.parametrize("size", [0, 32, 104, 32 + 65 + 8 + 4097])
def test_malformed_sizes_are_refused(size: int) -> None:
    with pytest.raises(ChunkInvalid):
        parse_soc(bytes(32), bytes(size))


def test_zero_signature_is_refused() -> None:
    address, data = _valid()
    with pytest.raises(ChunkInvalid):
        parse_soc(address, data[:32] + bytes(64) + b"\x1b" + data[97:])


def test_feed_identifier_is_topic_and_big_endian_index() -> None:
    topic = bytes(range(32))
    assert feed_identifier(topic, 0) == keccak256(topic + bytes(8))
    assert feed_identifier(topic, 258) == keccak256(topic + bytes(6) + b"\x01\x02")
    assert feed_identifier(topic, 2**64 - 1) == keccak256(topic + b"\xff" * 8)
    for bad in (-1, 2**64, 1.0):
        with pytest.raises(ValueError):
            feed_identifier(topic, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        feed_identifier(bytes(31), 0)


def test_feed_update_payload_is_timestamp_then_reference() -> None:
    reference = bytes(range(32))
    assert feed_update_payload(reference) == bytes(8) + reference
    assert feed_update_payload(reference, 0x0102) == bytes(6) + b"\x01\x02" + reference
    assert parse_feed_update(feed_update_payload(reference, 5)) == (5, reference)
    with pytest.raises(ChunkInvalid):
        parse_feed_update(bytes(8) + reference + b"\x00")
    with pytest.raises(ValueError):
        feed_update_payload(bytes(31))


def test_feed_update_chunk_layout_matches_bee_getter() -> None:
    """Bee reads an update's timestamp at bytes 105..113 of the SOC data (feeds.UpdatedAt)."""
    _, data = make_soc(feed_identifier(bytes(32), 0), feed_update_payload(bytes(32), 1234567), SIGNER)
    assert int.from_bytes(data[105:113], "big") == 1234567
    assert len(data) == 32 + 65 + 8 + 40


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(32), b"\xff" * 32])
def test_bad_private_keys(key: bytes) -> None:
    with pytest.raises(ValueError):
        FeedSigner(key)
