"""Framing: uvarint codec and the incremental FrameDecoder."""

from __future__ import annotations

import pytest
from google.protobuf.internal.decoder import _DecodeVarint  # reference implementation
from google.protobuf.internal.encoder import _VarintBytes

from rtc.abci.wire import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameDecoder,
    FrameTooLargeError,
    MalformedVarintError,
    decode_uvarint,
    encode_frame,
    encode_uvarint,
    max_frame_size_for,
)

VALUES = [0, 1, 127, 128, 255, 300, 16383, 16384, 2**21, 2**28 - 1, 2**32, 2**56 + 5, 2**63, 2**64 - 1]


@pytest.mark.parametrize("value", VALUES)
def test_uvarint_matches_protobuf(value: int) -> None:
    encoded = encode_uvarint(value)
    assert encoded == _VarintBytes(value)
    assert decode_uvarint(encoded) == (value, len(encoded))
    assert decode_uvarint(b"xx" + encoded + b"yy", 2) == (value, 2 + len(encoded))
    assert _DecodeVarint(encoded, 0)[0] == value


def test_uvarint_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        encode_uvarint(-1)
    with pytest.raises(ValueError):
        encode_uvarint(2**64)


def test_uvarint_incomplete_returns_none() -> None:
    assert decode_uvarint(b"") is None
    assert decode_uvarint(b"\x80") is None
    assert decode_uvarint(encode_uvarint(2**40)[:-1]) is None


def test_uvarint_malformed() -> None:
    with pytest.raises(MalformedVarintError, match="longer than 10"):
        decode_uvarint(b"\xff" * 11)
    with pytest.raises(MalformedVarintError, match="longer than 10"):
        decode_uvarint(b"\xff" * 10)  # 10th byte still says "more follows"
    with pytest.raises(MalformedVarintError, match="overflows"):
        decode_uvarint(b"\xff" * 9 + b"\x02")


def payloads() -> list[bytes]:
    return [b"", b"a", b"x" * 127, b"y" * 128, bytes(range(256)) * 3, b"z" * 20000, b"end"]


def stream() -> bytes:
    return b"".join(encode_frame(p) for p in payloads())


def test_many_frames_in_one_chunk() -> None:
    dec = FrameDecoder()
    assert dec.feed(stream()) == payloads()
    assert dec.buffered == 0


def test_every_two_chunk_split() -> None:
    data = stream()
    # Every split point near frame boundaries, and a stride through the big frame.
    points = sorted(set(range(0, 700)) | set(range(700, len(data) + 1, 97)) | {len(data) - 1, len(data)})
    for cut in points:
        dec = FrameDecoder()
        got = dec.feed(data[:cut]) + dec.feed(data[cut:])
        assert got == payloads(), cut
        assert dec.buffered == 0


def test_byte_by_byte() -> None:
    data = stream()
    dec = FrameDecoder()
    got: list[bytes] = []
    for i in range(len(data)):
        got.extend(dec.feed(data[i : i + 1]))
    assert got == payloads()


def test_varint_split_across_chunks() -> None:
    payload = b"q" * 300  # two-byte length prefix
    frame = encode_frame(payload)
    dec = FrameDecoder()
    assert dec.feed(frame[:1]) == []
    assert dec.feed(frame[1:2]) == []
    assert dec.feed(frame[2:]) == [payload]


def test_large_frame_in_many_chunks_is_linear() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    frame = encode_frame(payload) + encode_frame(b"tail")
    dec = FrameDecoder()
    got: list[bytes] = []
    for i in range(0, len(frame), 4096):
        got.extend(dec.feed(frame[i : i + 4096]))
    assert got == [payload, b"tail"]


def test_accepts_bytearray_and_memoryview() -> None:
    data = stream()
    dec = FrameDecoder()
    assert dec.feed(bytearray(data[:10])) + dec.feed(memoryview(data)[10:]) == payloads()


def test_oversize_frame_refused_on_prefix_alone() -> None:
    dec = FrameDecoder(max_frame_size=1000)
    assert dec.feed(encode_frame(b"k" * 1000)) == [b"k" * 1000]
    with pytest.raises(FrameTooLargeError, match="1001 bytes exceeds the maximum of 1000"):
        dec.feed(encode_uvarint(1001))  # no body needed to refuse it


def test_default_max_is_a_default_block_and_a_margin() -> None:
    assert DEFAULT_MAX_FRAME_SIZE == 21 * 1024 * 1024 + (1 << 20)
    dec = FrameDecoder()
    with pytest.raises(FrameTooLargeError):
        dec.feed(encode_uvarint(DEFAULT_MAX_FRAME_SIZE + 1))


def test_the_frame_limit_follows_the_block_size() -> None:
    assert max_frame_size_for(50 * 1024 * 1024) == 51 * 1024 * 1024
    assert max_frame_size_for(-1) == 101 * 1024 * 1024  # CometBFT's own cap
    assert max_frame_size_for(1024 * 1024) == 16_000_000 + (1 << 20)  # a state sync chunk from a peer still fits
    with pytest.raises(ValueError):
        max_frame_size_for(0)


def test_malformed_varint_refused() -> None:
    dec = FrameDecoder()
    with pytest.raises(MalformedVarintError):
        dec.feed(b"\xff" * 11)
    dec = FrameDecoder()  # same when it trickles in
    with pytest.raises(MalformedVarintError):
        for _ in range(11):
            dec.feed(b"\xff")


def test_error_carries_frames_decoded_before_it() -> None:
    dec = FrameDecoder(max_frame_size=100)
    with pytest.raises(FrameTooLargeError) as info:
        dec.feed(encode_frame(b"one") + encode_frame(b"two") + encode_uvarint(101))
    assert info.value.frames == [b"one", b"two"]
    with pytest.raises(MalformedVarintError) as info2:
        FrameDecoder().feed(encode_frame(b"x") + b"\xff" * 11)
    assert info2.value.frames == [b"x"]
