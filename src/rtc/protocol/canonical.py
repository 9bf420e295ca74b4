"""The one JSON encoding used for anything hashed or compared between nodes.

Sorted keys, no spaces, shortest round-trip floats, integers of at most 64 bits: every
node must produce the same bytes for the same value, because those bytes feed `app_hash`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot encode as JSON: {exc} (integers are limited to 64 bits)") from None


class JSONInputError(ValueError):
    """JSON the cluster refuses to read; the message says what to change."""


MIN_INT, MAX_INT = -(2**63), 2**64 - 1


def strict_json(data: bytes | str) -> Any:
    """Parse JSON as every node reads a call.

    Duplicate keys are refused: a parser that keeps the last one would let a signed call mean
    something other than what its signer's tools showed. Integers beyond 64 bits are refused
    by name (orjson would silently turn them into floats). Canonical input, which is what
    our clients send, takes one fast parse; anything else is read a second time to look.
    """
    raw = data.encode() if isinstance(data, str) else data
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _inspect(raw)
        raise JSONInputError(f"not valid UTF-8 JSON: {exc}") from None
    if (isinstance(value, (dict, list, float))) and canonical_json(value) != raw:
        _inspect(raw)  # not canonical: it may hide a duplicate key or a big integer
    return value


def _inspect(raw: bytes) -> None:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONInputError(f"the key {key!r} appears twice in one object; give each key once")
            seen.add(key)
        return dict(pairs)

    def int_of_64_bits(text: str) -> int:
        number = int(text)
        if not MIN_INT <= number <= MAX_INT:
            raise JSONInputError(f"the integer {text[:40]} is beyond 64 bits: JSON numbers in calls run from -2^63 "
                                 "to 2^64-1 (send larger numbers as strings)")
        return number

    try:
        json.loads(raw, object_pairs_hook=no_duplicates, parse_int=int_of_64_bits)
    except JSONInputError:
        raise
    except (ValueError, RecursionError):
        pass  # not JSON at all: the caller says so
