"""The one JSON encoding used for anything hashed or compared between nodes.

Sorted keys, no spaces, shortest round-trip floats, integers of at most 64 bits: every
node must produce the same bytes for the same value, because those bytes feed `app_hash`.
"""

from __future__ import annotations

from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot encode as JSON: {exc} (integers are limited to 64 bits)") from None
