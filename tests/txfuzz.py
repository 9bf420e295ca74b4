"""Generated transactions for the `stock` backend, most of them broken in some way.

Each is a valid signed call mutated by one of a list of attacks: flipped or cut bytes,
junk, a forged or foreign signature, a call that is not JSON or not the right JSON
(wrong types, missing and extra arguments, duplicate keys, huge numbers, deep nesting,
odd Unicode), counters far ahead, close envelopes. The rest are valid calls on a few
sessions, so blocks also carry work that changes state. Deterministic in the seed.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator

import orjson
from nacl.signing import SigningKey

from rtc.protocol import Kind, sign
from rtc.protocol.envelope import SigningDomain


def _junk_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 4 else 6)
    if pick == 0:
        return rng.choice([0, -1, 2**63, 2**64 - 1, -(2**63), 1.5, -0.0, 1e308])
    if pick == 1:
        return "".join(rng.choice("aZ\u00e9\u4e2d\U0001f600\\\"\x00 ") for _ in range(rng.randrange(12)))
    if pick == 2:
        return rng.choice([True, False, None])
    if pick in (3, 4, 5):
        return rng.choice(["AAPL", "", "x" * rng.randrange(300), "\ud7ff"])
    if pick == 6:
        return [_junk_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["symbol", "value", "function", "x", ""]): _junk_json(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def _call_text(rng: random.Random) -> bytes:
    pick = rng.randrange(12)
    if pick == 0:
        return b'{"function":"update_high","function":"get_high","symbol":"A","value":1.0}'
    if pick == 1:
        return b'{"function":"update_high","symbol":"A","value":' + str(rng.choice([2**64, -(2**70), 10**30])).encode() + b"}"
    if pick == 2:
        return b"[" * rng.randrange(1, 5000) + b"]" * rng.randrange(0, 5000)
    if pick == 3:
        return rng.randbytes(rng.randrange(1, 200))
    if pick == 4:
        return b'{"function":"update_high","symbol":"\xff\xfe","value":1.0}'
    call: dict[str, Any] = {"function": rng.choice(["update_high", "get_high", "symbols", "nope", "", "update-high"])}
    for name in rng.sample(["symbol", "value", "extra", "Symbol"], rng.randrange(4)):
        call[name] = _junk_json(rng)
    try:
        return orjson.dumps(call)
    except TypeError:
        return b'{"function":"update_high"}'


class TxFuzzer:
    def __init__(self, domain: SigningDomain | str, seed: int, valid_sessions: int = 8) -> None:
        self.domain = domain
        self.rng = random.Random(seed)
        self.key = SigningKey(self.rng.randbytes(32))
        self.sessions = [[self.rng.randbytes(16), 0] for _ in range(valid_sessions)]
        self.attacks: list[Callable[[], bytes]] = [
            self._flip, self._cut, self._extend, self._junk, self._foreign, self._bad_call, self._far_ahead,
            self._close, self._bad_kind, self._forged,
        ]

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield self.next()

    def next(self) -> bytes:
        if self.rng.random() < 0.1:
            return self._valid()
        return self.rng.choice(self.attacks)()

    def _valid(self) -> bytes:
        entry = self.rng.choice(self.sessions)
        session, counter = entry
        entry[1] += 1
        call = b'{"function":"update_high","symbol":"F%d","value":%d.5}' % (self.rng.randrange(50), self.rng.randrange(10**6))
        return sign(self.key, self.domain, session, counter, call).encode()

    def _some(self) -> bytes:
        return sign(self.key, self.domain, self.rng.randbytes(16), self.rng.randrange(3),
                    b'{"function":"update_high","symbol":"A","value":1.0}').encode()

    def _flip(self) -> bytes:
        tx = bytearray(self._some())
        for _ in range(self.rng.randrange(1, 4)):
            tx[self.rng.randrange(len(tx))] ^= 1 << self.rng.randrange(8)
        return bytes(tx)

    def _cut(self) -> bytes:
        tx = self._some()
        return tx[: self.rng.randrange(1, len(tx))]

    def _extend(self) -> bytes:
        return self._some() + self.rng.randbytes(self.rng.randrange(1, 64))

    def _junk(self) -> bytes:
        return self.rng.randbytes(self.rng.randrange(1, 400))

    def _foreign(self) -> bytes:
        return sign(self.key, "another-cluster", self.rng.randbytes(16), 0, b'{"function":"symbols"}').encode()

    def _bad_call(self) -> bytes:
        return sign(self.key, self.domain, self.rng.randbytes(16), 0, _call_text(self.rng)).encode()

    def _far_ahead(self) -> bytes:
        return sign(self.key, self.domain, self.rng.randbytes(16), self.rng.choice([65, 10**6, 2**64 - 1]),
                    b'{"function":"update_high","symbol":"A","value":1.0}').encode()

    def _close(self) -> bytes:
        return sign(self.key, self.domain, self.rng.randbytes(16), self.rng.randrange(2), b"", Kind.CLOSE).encode()

    def _bad_kind(self) -> bytes:
        tx = bytearray(self._some())
        tx[4] = self.rng.randrange(2, 256)
        return bytes(tx)

    def _forged(self) -> bytes:
        tx = self._some()
        return tx[:-64] + self.rng.randbytes(64)
