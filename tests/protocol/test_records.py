"""The records are consensus data: their bytes feed app_hash, so they are pinned here byte for byte
(the layouts of docs/protocol.md §5), and decoding is strict about what it accepts."""

from __future__ import annotations

import pytest

from rtc.protocol import RecordError, ResultRecord, SessionRecord, Status, keys, queries

TX = "AB" * 32


@pytest.mark.parametrize("record, encoded", [
    (ResultRecord.ok({"ok": 1.5}, 812), b'{"fuel":812,"height":7,"status":"ok","tx":"' + TX.encode() + b'","value":{"ok":1.5}}'),
    (ResultRecord.ok(None, 3), b'{"fuel":3,"height":7,"status":"ok","tx":"' + TX.encode() + b'","value":null}'),
    (ResultRecord.close(), b'{"closed":true,"height":7,"status":"ok","tx":"' + TX.encode() + b'","value":null}'),
    (ResultRecord.failed("out of fuel", 100), b'{"error":"out of fuel","fuel":100,"height":7,"status":"error","tx":"'
     + TX.encode() + b'"}'),
    (ResultRecord.queued("waits for counter 2"), b'{"height":7,"reason":"waits for counter 2","status":"queued","tx":"'
     + TX.encode() + b'"}'),
    (ResultRecord.skipped("call 1 failed: trap"), b'{"height":7,"reason":"call 1 failed: trap","status":"skipped","tx":"'
     + TX.encode() + b'"}'),
])
def test_result_records_encode_exactly_and_decode_back(record: ResultRecord, encoded: bytes) -> None:
    stamped = record.at(7, TX)
    assert stamped.encoded == encoded
    assert ResultRecord.decode(encoded) == stamped
    assert stamped.at(7, TX) is stamped  # already stamped: the same object, its encoding kept


def test_a_session_record_encodes_every_field_sorted() -> None:
    record = SessionRecord(next=3, status="failed", reason="call 2 failed: x", buffered=0, gap_deadline=None,
                           idle_deadline=10_005, last_height=5)
    assert record.encode() == (b'{"buffered":0,"gap_deadline":null,"idle_deadline":10005,"last_height":5,"next":3,'
                               b'"reason":"call 2 failed: x","status":"failed"}')
    assert SessionRecord.decode(record.encode()) == record


@pytest.mark.parametrize("data", [b"not json", b"[1]", b'{"status": "maybe", "height": 1, "tx": ""}',
                                  b'{"status": "ok", "tx": ""}', b'{"status": "ok", "height": "7", "tx": ""}',
                                  b'{"status": "error", "height": 1, "tx": "", "error": 5}'])
def test_malformed_result_records_are_refused(data: bytes) -> None:
    with pytest.raises(RecordError):
        ResultRecord.decode(data)


def test_final_and_why() -> None:
    assert ResultRecord.failed("e", 1).final and ResultRecord.failed("e", 1).why == "e"
    assert not ResultRecord.queued("w").final and ResultRecord.queued("w").why == "w"
    assert ResultRecord.ok(1, 1).status is Status.OK and ResultRecord.ok(1, 1).why is None


def test_query_paths_name_their_state_keys() -> None:
    session = bytes(range(48))
    assert queries.state_key(queries.result_path(session, 5)) == keys.result_key(session, 5)
    assert queries.state_key(queries.session_path(session)) == keys.session_key(session)
    assert queries.state_key(queries.state_path(b"k")) == keys.backend_key(b"k")
    assert queries.state_key(queries.MEMBERSHIP) == keys.MEMBERSHIP_KEY
    assert queries.state_key(queries.ENTRY_POINTS) is None and queries.state_key("/nope") is None
    for bad in ("/result/00/1", f"/result/{session.hex()}/-1", f"/result/{session.hex()}/{2**64}", "/state/zz",
                f"/session/{session.hex()}00"):
        with pytest.raises(ValueError):
            queries.state_key(bad)


@pytest.mark.parametrize("value", [None, 0, -1, 1.5, "x" * 300, {"ok": [1, 2, {"b": "é"}]}, {"err": "\u0000"}])
@pytest.mark.parametrize("height", [1, 9, 10, 123_456_789])
def test_the_result_limit_measures_the_record_without_its_stamp(value: object, height: int) -> None:
    """The rule the cluster has always applied: the size of {"fuel","status","value"} in canonical JSON."""
    from rtc.protocol import canonical_json

    record = ResultRecord.ok(value, 4321).at(height, TX)
    assert record.result_bytes == len(canonical_json({"status": "ok", "value": value, "fuel": 4321}))
