"""Parsing device messages: topics, ids and codes, arrays, NDJSON, and every dead-letter reason."""

from __future__ import annotations

import orjson

from tests.iot.test_engine import T0, directory
from twin.iot.history import buckets, parse_bucket
from twin.iot.payload import Message, Parsed, parse_http, parse_messages, sensor_ref, topic_ref

NOW = T0 + 3600_000
TS = "2026-11-18T00:00:00Z"


def mqtt(*messages: tuple[str, object]) -> Parsed:
    raw = [Message(t, p if isinstance(p, bytes) else orjson.dumps(p)) for t, p in messages]
    return parse_messages(raw, directory(), prefix="twin", now_ms=NOW, max_future_s=300)


def test_sensor_references_digits_are_ids_anything_else_is_a_code() -> None:
    assert sensor_ref(17) == 17 and sensor_ref("17") == 17 and sensor_ref("YG1") == "YG1"
    assert sensor_ref(True) is None and sensor_ref("") is None and sensor_ref(1.5) is None
    assert topic_ref("twin/sensors/6/readings", "twin") == 6
    assert topic_ref("twin/sensors/XY6/readings", "twin") == "XY6"
    assert topic_ref("run-1/twin/sensors/6/readings", "run-1/twin") == 6
    assert topic_ref("twin/sensors/6/state", "twin") is None and topic_ref("other/sensors/6/readings", "twin") is None


def test_objects_arrays_ids_codes_and_gateway_items() -> None:
    parsed = mqtt(("twin/sensors/6/readings", {"ts": TS, "value": 0.5, "battery": 91}),
                  ("twin/sensors/XY7/readings", [{"ts": TS, "value": 1}, {"ts": "2026-11-18T08:00:01.5+08:00",
                                                                          "value": 2.5}]),
                  ("twin/sensors/gw-17/readings", [{"sensor_id": 8, "ts": TS, "value": 120},
                                                   {"sensor_id": "MC9", "ts": TS, "value": 0}]))
    assert parsed.dead == []
    assert parsed.readings.sensor_id.tolist() == [6, 7, 7, 8, 9]
    assert parsed.readings.value.tolist() == [0.5, 1.0, 2.5, 120.0, 0.0]
    assert parsed.readings.ts_ms[2] - parsed.readings.ts_ms[1] == 1500  # +08:00 handled, to the millisecond
    frame = parsed.readings.frame()
    assert str(frame["ts"].dtype).startswith("datetime64") and frame["sensor_id"].tolist()[0] == 6


def test_every_kind_of_garbage_is_dead_lettered_with_its_reason() -> None:
    parsed = mqtt(
        ("twin/sensors/6/readings", b"{not json"),
        ("twin/sensors/6/readings", b"\xff\xfe binary"),
        ("twin/sensors/404/readings", {"ts": TS, "value": 1}),
        ("twin/sensors/NOPE/readings", {"ts": TS, "value": 1}),
        ("twin/sensors/6/readings", {"ts": TS, "value": "high"}),
        ("twin/sensors/6/readings", {"ts": TS, "value": True}),
        ("twin/sensors/6/readings", {"ts": TS}),
        ("twin/sensors/6/readings", {"ts": "2026-11-18T00:00:00", "value": 1}),  # no offset
        ("twin/sensors/6/readings", {"ts": "yesterday", "value": 1}),
        ("twin/sensors/6/readings", {"ts": 1795000000, "value": 1}),
        ("twin/sensors/6/readings", {"ts": "2099-01-01T00:00:00Z", "value": 1}),
        ("twin/sensors/6/readings", [1, 2]),
        ("twin/sensors/6/readings", []),
        ("twin/devices/6/readings", {"ts": TS, "value": 1}),
        ("twin/sensors/6/readings", {"ts": TS, "value": 0.4}),  # the one good reading
    )
    assert parsed.readings.sensor_id.tolist() == [6]
    categories = sorted(d.category for d in parsed.dead)
    assert categories == sorted(["bad_json", "bad_json", "unknown_sensor", "unknown_sensor", "bad_value",
                                 "bad_value", "bad_value", "bad_timestamp", "bad_timestamp", "bad_timestamp",
                                 "future_timestamp", "bad_shape", "bad_shape", "bad_shape", "bad_topic"])
    unknown = [d for d in parsed.dead if d.category == "unknown_sensor"]
    assert {d.reason for d in unknown} == {"unknown_sensor: no sensor with id 404",
                                           "unknown_sensor: no sensor with code 'NOPE'"}
    binary = next(d for d in parsed.dead if "binary" in d.payload)
    assert binary.payload.startswith("\\xff") and binary.source == "mqtt" and binary.topic == "twin/sensors/6/readings"


def test_http_json_array_ndjson_and_bad_lines() -> None:
    body = orjson.dumps([{"sensor_id": 6, "ts": TS, "value": 0.5}, {"sensor_id": "SY8", "ts": TS, "value": 99}])
    parsed = parse_http(body, directory(), now_ms=NOW)
    assert parsed.readings.sensor_id.tolist() == [6, 8] and parsed.dead == []
    lines = b'{"sensor_id": 6, "ts": "%s", "value": 1}\n\n{oops\n{"sensor_id": 7, "ts": "%s", "value": 2}\n' % (
        TS.encode(), TS.encode())
    nd = parse_http(lines, directory(), now_ms=NOW)
    assert nd.readings.sensor_id.tolist() == [6, 7]
    assert [d.reason.split(":")[0] for d in nd.dead] == ["bad_json"] and "line 2" in nd.dead[0].reason
    assert nd.dead[0].source == "http"
    one = parse_http(orjson.dumps({"sensor_id": 6, "ts": TS, "value": 3}), directory(), now_ms=NOW, ndjson=False)
    assert one.readings.value.tolist() == [3.0]


def test_long_payloads_are_truncated_in_the_dead_letter() -> None:
    raw = [Message("twin/sensors/6/readings", b"x" * 10_000)]
    parsed = parse_messages(raw, directory(), prefix="twin", now_ms=NOW, max_payload=100)
    assert len(parsed.dead[0].payload) == 101


def test_buckets_and_bucket_sizes() -> None:
    assert parse_bucket("300") == 300 and parse_bucket("5m") == 300 and parse_bucket("PT1H") == 3600
    assert parse_bucket("1d") == 86400
    for bad in ("0", "-5m", "soon", "PT"):
        try:
            parse_bucket(bad)
        except Exception as err:
            assert "bucket" in str(err)
        else:
            raise AssertionError(bad)
    import numpy as np

    ts = np.array([0, 10_000, 59_000, 60_000, 125_000], np.int64)
    values = np.array([1.0, 3.0, 2.0, 10.0, 4.0])
    out = buckets(ts, values, 0, 60_000)
    assert [(b["min"], b["max"], b["mean"], b["count"]) for b in out] == [(1.0, 3.0, 2.0, 3), (10.0, 10.0, 10.0, 1),
                                                                          (4.0, 4.0, 4.0, 1)]
    assert out[2]["t"] == "1970-01-01T00:02:00Z"


def test_a_reading_repeated_in_a_batch_is_kept_once_the_first_time() -> None:
    import numpy as np

    from twin.iot.payload import Readings

    r = Readings(np.array([0, 1, 0, 2, 1]), np.array([1, 2, 1, 3, 2]), np.array([5, 5, 5, 5, 6]),
                 np.array([1.0, 2.0, 9.0, 3.0, 4.0]))
    once = r.first_of_each()
    assert once.sensor_id.tolist() == [1, 2, 3, 2] and once.value.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert r.first_of_each() is not r and once.first_of_each() is once  # nothing to drop: the same object
