"""Properties of the envelope decoder over generated transactions (Hypothesis).

Every signed envelope round-trips and verifies in its own cluster only; arbitrary bytes
either decode to an envelope that encodes back to exactly them or raise EnvelopeError,
never anything else; and no single flipped bit leaves a transaction valid.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from rtc.protocol import EnvelopeError, Kind, decode, sign
from rtc.protocol.envelope import SigningDomain

KEY = SigningKey(b"\x11" * 32)
DOMAIN = SigningDomain("rtc-prop", 31337, b"\x22" * 20, 1)
domains = st.one_of(
    st.text(min_size=1, max_size=20).map(SigningDomain),
    st.builds(SigningDomain, st.text(min_size=1, max_size=20), st.integers(0, 2**64 - 1),
              st.binary(min_size=20, max_size=20), st.integers(0, 2**256 - 1)),
)
envelopes = st.builds(
    lambda session, counter, call, close: sign(KEY, DOMAIN, session, counter, b"" if close else call,
                                               Kind.CLOSE if close else Kind.CALL),
    st.binary(min_size=16, max_size=16), st.integers(0, 2**64 - 1), st.binary(min_size=1, max_size=300),
    st.booleans())


@settings(max_examples=100, deadline=None)
@given(envelopes, domains)
def test_a_signed_envelope_round_trips_and_holds_in_its_own_cluster_only(envelope, other: SigningDomain) -> None:
    tx = envelope.encode()
    decoded = decode(tx)
    assert decoded == envelope and decoded.raw == tx and decoded.encode() == tx
    decoded.verify(DOMAIN)
    if other.encode() != DOMAIN.encode():
        try:
            decoded.verify(other)
        except EnvelopeError:
            pass
        else:
            raise AssertionError(f"a signature for {DOMAIN.describe()} held for {other.describe()}")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=300).map(lambda b: b"RTC\x01" + b)))
def test_arbitrary_bytes_decode_exactly_or_raise_envelope_error(data: bytes) -> None:
    try:
        envelope = decode(data)
    except EnvelopeError:
        return
    assert envelope.encode() == data
    try:
        envelope.verify(DOMAIN)
    except EnvelopeError:
        return
    raise AssertionError("random bytes carried a valid signature")


@settings(max_examples=100, deadline=None)
@given(envelopes, st.data())
def test_no_flipped_bit_leaves_a_transaction_valid(envelope, data: st.DataObject) -> None:
    tx = bytearray(envelope.encode())
    at = data.draw(st.integers(0, len(tx) - 1))
    tx[at] ^= 1 << data.draw(st.integers(0, 7))
    try:
        decode(bytes(tx)).verify(DOMAIN)
    except EnvelopeError:
        return
    raise AssertionError(f"flipping a bit of byte {at} left the transaction valid")
