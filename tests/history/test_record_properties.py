"""Properties of the history record and head parsers over generated input (Hypothesis).

Records come from Swarm, which anyone may write to: any bytes must either parse to a
record that encodes back to the same canonical bytes, or raise HistoryError.
"""

from __future__ import annotations

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rtc.history.record import FORMAT, HEAD_FORMAT, BlockRecord, Head, HistoryError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10)
hashes = st.binary(min_size=32, max_size=32)
records = st.builds(
    BlockRecord, chain_id=st.text(max_size=20), height=st.integers(1, 2**62),
    header=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    commit=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    validators=st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=3),
    txs=st.lists(st.binary(max_size=40), max_size=5),
    results=st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=3),
    app_hash=hashes, previous=st.none() | hashes, snapshot=st.none() | hashes)


@settings(max_examples=150, deadline=None)
@given(records)
def test_a_record_round_trips_to_the_same_canonical_bytes(record: BlockRecord) -> None:
    encoded = record.encode()
    assert BlockRecord.decode(encoded) == record
    assert BlockRecord.decode(encoded).encode() == encoded


def _mutations() -> st.SearchStrategy[bytes]:
    field_values = st.one_of(json_values, st.text(max_size=70), st.lists(st.text(max_size=10), max_size=3))
    mangled = st.builds(
        lambda fields, key, value: orjson.dumps({**fields, key: value}),
        st.fixed_dictionaries({"format": st.just(FORMAT), "chain_id": st.just("c"), "height": st.just(1),
                               "header": st.just({}), "commit": st.just({}), "validators": st.just([]),
                               "txs": st.just([]), "results": st.just([]), "app_hash": st.just("00" * 32),
                               "previous": st.none()}),
        st.sampled_from(["format", "chain_id", "height", "header", "commit", "validators", "txs", "results",
                         "app_hash", "previous", "snapshot"]),
        field_values)
    return st.one_of(st.binary(max_size=300), json_values.map(orjson.dumps), mangled)


@settings(max_examples=400, deadline=None)
@given(_mutations())
# Found by CI: bytes.fromhex reads "\r" as no bytes, so a record naming that as its previous decoded
# and encoded again as a different record.
@example(data=b'{"format":"rtc-history/1","chain_id":"","height":1,"header":{},"commit":{},"validators":[],"txs":[],'
              b'"results":[],"app_hash":"' + b"00" * 32 + b'","previous":"\\r"}')
def test_any_bytes_parse_to_a_record_or_raise_history_error(data: bytes) -> None:
    try:
        record = BlockRecord.decode(data)
    except HistoryError:
        return
    assert BlockRecord.decode(record.encode()) == record


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), json_values.map(orjson.dumps),
                 st.builds(lambda h, r, s: orjson.dumps({"format": HEAD_FORMAT, "chain_id": "c", "height": h,
                                                         "record": r, "snapshot": s}),
                           json_values, json_values, json_values)))
def test_any_bytes_parse_to_a_head_or_raise_history_error(data: bytes) -> None:
    try:
        head = Head.decode(data)
    except HistoryError:
        return
    assert Head.decode(head.encode()) == head
