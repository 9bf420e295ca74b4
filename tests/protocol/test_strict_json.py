"""How every node reads a call's JSON: duplicate keys refused, big integers named."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtc.abci import abci_pb
from rtc.protocol import Code, JSONInputError, strict_json
from tests.node.test_app import init, make_app, signed


def test_canonical_and_plain_json_parse() -> None:
    assert strict_json(b'{"function":"sum","x":5,"y":3}') == {"function": "sum", "x": 5, "y": 3}
    assert strict_json('{ "b": [1, {"c": null}], "a": 2.5 }') == {"a": 2.5, "b": [1, {"c": None}]}
    assert strict_json(b"18446744073709551615") == 2**64 - 1


@pytest.mark.parametrize("text", [
    '{"function":"greet","function":"stats"}',
    '{"a": 1, "b": {"x": 1, "x": 2}}',
    '[{"k": 1, "k": 1}]',
])
def test_a_duplicate_key_is_refused_wherever_it_is(text: str) -> None:
    with pytest.raises(JSONInputError, match="appears twice"):
        strict_json(text)


def test_an_integer_beyond_64_bits_is_named_as_such() -> None:
    with pytest.raises(JSONInputError, match="beyond 64 bits"):
        strict_json(b'{"x": 18446744073709551616}')
    with pytest.raises(JSONInputError, match="not valid UTF-8 JSON"):
        strict_json(b'{"x": }')


def test_a_node_refuses_a_call_with_a_duplicate_function_key(tmp_path: Path) -> None:
    """Finding: `{"function":"greet","function":"stats"}` ran `stats`: what a signer's tools showed
    (the first key) was not what the cluster ran (the last)."""
    app = make_app(tmp_path / "a")
    init(app)
    tx = signed(0, b'{"function":"get_high","function":"update_high","symbol":"A","value":1.0}')
    response = app.check_tx(abci_pb.RequestCheckTx(tx=tx))
    assert response.code == Code.MALFORMED and "'function' appears twice" in response.log
    big = app.check_tx(abci_pb.RequestCheckTx(tx=signed(1, b'{"function":"get_high","symbol":1e999999}')))
    assert big.code == Code.MALFORMED
