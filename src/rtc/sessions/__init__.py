"""Sessions: signed envelopes and happens-before ordering of a client's calls in consensus state."""

from .envelope import Envelope, EnvelopeError, Kind, decode, sign
from .ordering import Refused, SessionRules, Sessions

__all__ = ["Envelope", "EnvelopeError", "Kind", "Refused", "SessionRules", "Sessions", "decode", "sign"]
