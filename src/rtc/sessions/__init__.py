"""Sessions: the happens-before ordering of each client's calls, kept in consensus state.

The signed envelope the calls arrive in is `rtc.protocol.envelope`.
"""

from .ordering import Refused, Runner, SessionRules, Sessions

__all__ = ["Refused", "Runner", "SessionRules", "Sessions"]
