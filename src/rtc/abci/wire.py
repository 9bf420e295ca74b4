"""ABCI socket framing: each protobuf message is prefixed by its length as an
unsigned varint (CometBFT's ``protoio`` delimited format, see
``abci/types/messages.go``).

The decoder is incremental because a socket read can end anywhere: in the
middle of a varint, in the middle of a payload, or after many whole frames.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "FRAME_MARGIN",
    "FrameDecoder",
    "FrameError",
    "FrameTooLargeError",
    "MalformedVarintError",
    "decode_uvarint",
    "encode_frame",
    "encode_uvarint",
    "max_frame_size_for",
]

# What CometBFT can send in one request: a block's transactions (FinalizeBlock,
# ProcessProposal, PrepareProposal), at most the genesis' block.max_bytes, or one state
# sync chunk from a peer (ApplySnapshotChunk), at most 16e6 bytes (statesync chunkMsgSize).
# The rest of a request (header fields, the last commit's votes, evidence, which block
# max_bytes counts too) fits in the margin.
FRAME_MARGIN = 1 << 20
COMETBFT_DEFAULT_BLOCK_BYTES = 22020096  # block.max_bytes of a genesis `cometbft init` writes (21 MiB)
COMETBFT_MAX_BLOCK_BYTES = 104857600  # types.MaxBlockSizeBytes: what block.max_bytes -1 means (100 MiB)
COMETBFT_MAX_SNAPSHOT_CHUNK = 16_000_000
DEFAULT_MAX_FRAME_SIZE = COMETBFT_DEFAULT_BLOCK_BYTES + FRAME_MARGIN
MAX_VARINT_LEN = 10  # a uint64 never needs more than 10 bytes

_SMALL_VARINTS = tuple(bytes((i,)) for i in range(128))


class FrameError(ValueError):
    """The byte stream is not valid ABCI framing; the connection must be dropped.

    ``frames`` holds the complete payloads that preceded the bad bytes in the
    same ``feed`` call, so a server can still answer them before closing.
    """

    frames: list[bytes] = []


class FrameTooLargeError(FrameError):
    """A frame announced a length above the configured maximum."""


class MalformedVarintError(FrameError):
    """A length prefix is longer than 10 bytes or overflows 64 bits."""


def encode_uvarint(value: int) -> bytes:
    """Encode a non-negative integer (< 2**64) as a protobuf unsigned varint."""
    if value < 128:
        if value < 0:
            raise ValueError("uvarint cannot encode a negative number")
        return _SMALL_VARINTS[value]
    if value >= 1 << 64:
        raise ValueError("uvarint cannot encode values of 2**64 or more")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """Decode a uvarint at ``data[pos:]``.

    Returns ``(value, next_pos)``, or ``None`` if the data ends before the
    varint does. Raises MalformedVarintError for more than 10 bytes or a value
    that overflows 64 bits.
    """
    result = 0
    shift = 0
    n = len(data)
    i = pos
    while i < n:
        b = data[i]
        i += 1
        if i - pos == MAX_VARINT_LEN:
            if b >= 0x80:
                raise MalformedVarintError(f"varint longer than {MAX_VARINT_LEN} bytes")
            if b > 1:
                raise MalformedVarintError("varint overflows 64 bits")
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
    return None


def max_frame_size_for(block_max_bytes: int) -> int:
    """The largest request CometBFT sends to a chain whose blocks hold at most `block_max_bytes`
    (its consensus parameter; -1 means CometBFT's own cap of 100 MiB), with the margin."""
    if block_max_bytes == -1 or block_max_bytes > COMETBFT_MAX_BLOCK_BYTES:
        block_max_bytes = COMETBFT_MAX_BLOCK_BYTES
    if block_max_bytes <= 0:
        raise ValueError(f"block.max_bytes is -1 or positive, not {block_max_bytes}")
    return max(block_max_bytes, COMETBFT_MAX_SNAPSHOT_CHUNK) + FRAME_MARGIN


def encode_frame(payload: bytes) -> bytes:
    """Length-prefix one serialized message."""
    return encode_uvarint(len(payload)) + payload


class FrameDecoder:
    """Incremental splitter of a byte stream into message payloads.

    ``feed(chunk)`` returns the payloads completed by this chunk, in order.
    Partial data is kept until the rest arrives; a large frame arriving in many
    reads is accumulated without re-scanning (cost stays linear in its size).
    A length above ``max_frame_size`` is refused as soon as its prefix is
    read, before any of the body is buffered.
    """

    __slots__ = ("max_frame_size", "_chunks", "_buffered", "_need")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 0:
            raise ValueError("max_frame_size must be >= 0")
        self.max_frame_size = max_frame_size
        self._chunks: list[bytes] = []  # unconsumed tail of the stream
        self._buffered = 0  # total length of _chunks
        self._need = 0  # bytes needed in _chunks before a parse can make progress

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a complete frame."""
        return self._buffered

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        if type(data) is not bytes:
            data = bytes(data)
        if self._chunks:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._need:
                return []
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
        frames: list[bytes] = []
        n = len(data)
        pos = 0
        limit = self.max_frame_size
        while pos < n:
            length = data[pos]
            start = pos + 1
            if length >= 0x80:
                try:
                    decoded = decode_uvarint(data, pos)
                except FrameError as e:
                    e.frames = frames
                    raise
                if decoded is None:
                    # Incomplete prefix: wait for at least one more byte.
                    self._keep(data, pos, n - pos + 1)
                    return frames
                length, start = decoded
            if length > limit:
                e = FrameTooLargeError(f"frame of {length} bytes exceeds the maximum of {limit} bytes")
                e.frames = frames
                raise e
            end = start + length
            if end > n:
                self._keep(data, pos, end - pos)
                return frames
            frames.append(data[start:end])
            pos = end
        self._need = 0
        return frames

    def _keep(self, data: bytes, pos: int, need: int) -> None:
        rest = data[pos:] if pos else data
        self._chunks.append(rest)
        self._buffered = len(rest)
        self._need = need
