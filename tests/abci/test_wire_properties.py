"""Properties of the ABCI framing (varint length prefix + payload), for any input Hypothesis finds.

- Any sequence of payloads, or of ABCI Requests, round-trips through encode_frame and a
  FrameDecoder fed in any split of the stream.
- A stream cut anywhere gives the frames before the cut, raises nothing and keeps the rest.
- Arbitrary bytes raise nothing but FrameError (FrameTooLargeError, MalformedVarintError),
  whose `frames` are the complete frames before the bad bytes; every frame returned is
  within the limit, and nothing is lost or invented.
- A server connection fed arbitrary bytes never raises: it answers, or closes the connection
  after a ResponseException.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtc.abci import ABCIServer, Application, abci_pb as pb
from rtc.abci import server as server_mod
from rtc.abci.wire import (
    FrameDecoder,
    FrameError,
    FrameTooLargeError,
    MalformedVarintError,
    decode_uvarint,
    encode_frame,
    encode_uvarint,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Small payloads, and large ones around 2**14 (where the length prefix grows to three bytes),
# made from a repeated byte: generating 16 KiB of random bytes is slow and adds nothing here.
large = st.builds(lambda n, b: bytes([b]) * n, st.integers(16380, 16390), st.integers(0, 255))
payloads = st.lists(st.binary(max_size=600) | large, max_size=12)


def feed_in_pieces(decoder: FrameDecoder, stream: bytes, cuts: list[int]) -> list[bytes]:
    """Feed `stream` split at `cuts` (sorted positions), collecting the frames returned."""
    frames: list[bytes] = []
    start = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        if cut > start:
            frames.extend(decoder.feed(stream[start:cut]))
            start = cut
    return frames


def cuts_for(draw: st.DrawFn, length: int) -> list[int]:
    return draw(st.lists(st.integers(min_value=0, max_value=length), max_size=20))


@SETTINGS
@given(data=st.data(), items=payloads)
def test_any_payloads_round_trip_in_any_split(data: st.DataObject, items: list[bytes]) -> None:
    stream = b"".join(encode_frame(p) for p in items)
    decoder = FrameDecoder()
    assert feed_in_pieces(decoder, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=20))) == items
    assert decoder.buffered == 0


def requests() -> st.SearchStrategy[pb.Request]:
    txs = st.lists(st.binary(max_size=300), max_size=8)
    return st.one_of(
        st.builds(lambda m: pb.Request(echo=pb.RequestEcho(message=m)), st.text(max_size=50)),
        st.just(pb.Request(flush=pb.RequestFlush())),
        st.builds(lambda v, h: pb.Request(info=pb.RequestInfo(version=v, block_version=h)),
                  st.text(max_size=20), st.integers(0, 2**64 - 1)),
        st.builds(lambda tx: pb.Request(check_tx=pb.RequestCheckTx(tx=tx)), st.binary(max_size=2000)),
        st.builds(lambda t, h: pb.Request(finalize_block=pb.RequestFinalizeBlock(txs=t, height=h)),
                  txs, st.integers(0, 2**63 - 1)),
        st.builds(lambda t, n: pb.Request(prepare_proposal=pb.RequestPrepareProposal(txs=t, max_tx_bytes=n)),
                  txs, st.integers(-(2**63), 2**63 - 1)),
        st.just(pb.Request(commit=pb.RequestCommit())),
        st.builds(lambda d, p, h, prove: pb.Request(query=pb.RequestQuery(data=d, path=p, height=h, prove=prove)),
                  st.binary(max_size=100), st.text(max_size=40), st.integers(-(2**63), 2**63 - 1), st.booleans()),
        st.builds(lambda c, s: pb.Request(apply_snapshot_chunk=pb.RequestApplySnapshotChunk(index=c, chunk=s)),
                  st.integers(0, 2**32 - 1), st.binary(max_size=5000)),
    )


@SETTINGS
@given(data=st.data(), messages=st.lists(requests(), max_size=10))
def test_any_requests_round_trip_in_any_split(data: st.DataObject, messages: list[pb.Request]) -> None:
    stream = b"".join(encode_frame(m.SerializeToString()) for m in messages)
    decoder = FrameDecoder()
    frames = feed_in_pieces(decoder, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    assert [pb.Request.FromString(f) for f in frames] == messages
    assert decoder.buffered == 0


@SETTINGS
@given(data=st.data(), items=st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_a_truncated_stream_gives_the_frames_before_the_cut(data: st.DataObject, items: list[bytes]) -> None:
    stream = b"".join(encode_frame(p) for p in items)
    cut = data.draw(st.integers(0, len(stream)))
    decoder = FrameDecoder()
    frames = feed_in_pieces(decoder, stream[:cut], data.draw(st.lists(st.integers(0, cut), max_size=10)))
    assert frames == items[: len(frames)]
    consumed = sum(len(encode_frame(p)) for p in frames)
    assert decoder.buffered == cut - consumed
    if len(frames) < len(items):
        assert consumed + len(encode_frame(items[len(frames)])) > cut  # the next frame was cut
    else:
        assert consumed == cut


@SETTINGS
@given(data=st.data(), noise=st.binary(max_size=3000), limit=st.integers(0, 4096))
def test_arbitrary_bytes_raise_nothing_but_frame_errors(data: st.DataObject, noise: bytes, limit: int) -> None:
    decoder = FrameDecoder(limit)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(noise)), max_size=10)))) + [len(noise)]
    frames: list[bytes] = []
    start = 0
    try:
        for cut in cuts:
            if cut > start:
                frames.extend(decoder.feed(noise[start:cut]))
                start = cut
    except FrameError as exc:
        assert isinstance(exc, (FrameTooLargeError, MalformedVarintError))
        frames.extend(exc.frames)
        assert all(len(f) <= limit for f in frames)
        # The frames before the error are exactly the stream's first frames.
        assert b"".join(encode_frame(f) for f in frames) == noise[: sum(len(encode_frame(f)) for f in frames)]
        return
    assert all(len(f) <= limit for f in frames)
    consumed = b"".join(encode_frame(f) for f in frames)
    assert noise.startswith(consumed)  # nothing lost or invented
    assert decoder.buffered == len(noise) - len(consumed)


@SETTINGS
@given(value=st.integers(0, 2**64 - 1), tail=st.binary(max_size=4))
def test_uvarints_round_trip(value: int, tail: bytes) -> None:
    encoded = encode_uvarint(value)
    assert decode_uvarint(encoded + tail) == (value, len(encoded))
    assert decode_uvarint(encoded[:-1]) is None  # cut short: wait for more


@SETTINGS
@given(noise=st.binary(max_size=16), pos=st.integers(0, 16))
def test_decode_uvarint_on_noise_answers_or_raises_the_documented_error(noise: bytes, pos: int) -> None:
    pos = min(pos, len(noise))
    try:
        decoded = decode_uvarint(noise, pos)
    except MalformedVarintError:
        return
    if decoded is not None:
        value, end = decoded
        assert 0 <= value < 2**64 and pos < end <= pos + 10
        assert encode_uvarint(value) == noise[pos:end] or noise[end - 1] == 0  # non-minimal forms decode too


class FakeTransport(asyncio.Transport):
    """What a _Connection needs of an asyncio transport, recording what it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "wrote after closing"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@SETTINGS
@given(data=st.data(), stream=st.one_of(
    st.binary(max_size=2000),
    st.lists(requests(), max_size=6).map(lambda ms: b"".join(encode_frame(m.SerializeToString()) for m in ms)),
    st.tuples(st.lists(requests(), max_size=4), st.binary(max_size=200)).map(
        lambda t: b"".join(encode_frame(m.SerializeToString()) for m in t[0]) + t[1]),
))
def test_a_connection_fed_anything_answers_or_closes_with_an_exception(data: st.DataObject, stream: bytes) -> None:
    server = ABCIServer(Application(), "unix:///tmp/rtc-never-bound.sock", max_frame_size=1024)
    connection = server_mod._Connection(server)
    transport = FakeTransport()
    connection.connection_made(transport)
    start = 0
    for cut in sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))) + [len(stream)]:
        if cut > start:
            connection.data_received(stream[start:cut])  # never raises
            start = cut
    connection.data_received(encode_frame(pb.Request(flush=pb.RequestFlush()).SerializeToString()))
    answers = [pb.Response.FromString(f) for f in FrameDecoder().feed(bytes(transport.written))]
    if transport.closed:
        assert answers and answers[-1].WhichOneof("value") == "exception"
    elif connection._decoder.buffered:
        pass  # a request is still incomplete (the Flush became part of it): it waits for the rest
    else:
        assert answers and answers[-1].WhichOneof("value") == "flush"
    assert server.app_error is None or transport.closed
