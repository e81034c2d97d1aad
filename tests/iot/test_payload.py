"""Parsing device messages: topics, ids and codes, arrays, NDJSON, and every dead-letter reason."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import twin.iot.payload as payload_module
from tests.iot.test_engine import T0, directory
from twin.iot.directory import Directory
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


def test_a_batch_goes_in_key_order_with_a_repeated_reading_kept_once_the_first_time() -> None:
    import numpy as np

    from twin.iot.payload import Readings

    r = Readings(np.array([0, 1, 0, 2, 1]), np.array([1, 2, 1, 3, 2]), np.array([5, 5, 5, 5, 6]),
                 np.array([1.0, 2.0, 9.0, 3.0, 4.0]))
    once = r.in_key_order()  # sorted by sensor and time, each (sensor, time) once
    assert once.sensor_id.tolist() == [1, 2, 2, 3] and once.ts_ms.tolist() == [5, 5, 6, 5]
    assert once.value.tolist() == [1.0, 2.0, 4.0, 3.0] and once.row.tolist() == [0, 1, 1, 2]
    again = once.in_key_order()
    assert again.sensor_id.tolist() == once.sensor_id.tolist() and again.value.tolist() == once.value.tolist()


# -- the fast path (one C decode per message) must agree with the item-by-item path on every input --------------

_refs = st.one_of(st.integers(-3, 12), st.integers(2**62, 2**65),
                  st.sampled_from(["6", "07", "XY7", "MC9", "NOPE", ""]), st.booleans(), st.none(),
                  st.floats(allow_nan=False, allow_infinity=False))
_stamps = st.one_of(st.sampled_from([TS, "2026-11-18T08:00:01.5+08:00", "2026-11-18T00:00:00", "2099-01-01T00:00:00Z",
                                     "yesterday", "2026-11-18 00:00:00.123456z"]),
                    st.integers(0, 2**40), st.none())
_values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**70), 2**70), st.booleans(),
                    st.none(), st.text(max_size=3), st.lists(st.integers(), max_size=2))
_items = st.fixed_dictionaries({}, optional={"sensor_id": _refs, "ts": _stamps, "value": _values,
                                             "battery": st.integers(0, 100)})
_good_items = st.fixed_dictionaries({"sensor_id": st.sampled_from([6, 7, "8", "MC9"]), "ts": st.just(TS),
                                     "value": st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5))})
_batches = st.one_of(st.lists(_good_items, min_size=1, max_size=8), st.lists(st.one_of(_good_items, _items),
                                                                            min_size=1, max_size=8))
_payloads = st.one_of(_items, _batches, st.lists(_items, max_size=4), st.integers(), st.just([]))


def _both_ways(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Parsed]) -> tuple[Parsed, Parsed]:
    fast = run()
    with monkeypatch.context() as patched:
        patched.setattr(payload_module._Collector, "fast", lambda *_args: False)
        slow = run()
    return fast, slow


def _same(fast: Parsed, slow: Parsed) -> None:
    for name in ("row", "sensor_id", "ts_ms", "value"):
        assert getattr(fast.readings, name).tolist() == getattr(slow.readings, name).tolist(), name
    assert [(d.topic, d.reason, msgspec.json.decode(d.payload)) for d in fast.dead] == \
        [(d.topic, d.reason, msgspec.json.decode(d.payload)) for d in slow.dead]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["twin/sensors/6/readings", "twin/sensors/XY7/readings",
                                           "twin/sensors/404/readings", "twin/gateways/g1/readings"]), _payloads),
                min_size=1, max_size=6))
# a sensor id wider than 64 bits: orjson (once the slow path's decoder) read it as a float, msgspec as an integer
@example([("twin/sensors/6/readings", {"ts": "2026-11-18T00:00:00Z", "sensor_id": 2**64, "value": 0.0})])
def test_mqtt_fast_path_agrees_with_the_item_by_item_path(monkeypatch: pytest.MonkeyPatch,
                                                          messages: list[tuple[str, object]]) -> None:
    encoded = [(topic, msgspec.json.encode(body)) for topic, body in messages]  # orjson refuses > 64-bit integers
    _same(*_both_ways(monkeypatch, lambda: mqtt(*encoded)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_batches, st.booleans())
def test_http_fast_path_agrees_with_the_item_by_item_path(monkeypatch: pytest.MonkeyPatch,
                                                          items: list[dict[str, object]], ndjson: bool) -> None:
    body = b"\n".join(msgspec.json.encode(i) for i in items) if ndjson else msgspec.json.encode(items)
    _same(*_both_ways(monkeypatch, lambda: parse_http(body, directory(), now_ms=NOW, ndjson=ndjson)))


def test_readings_move_to_the_rows_of_a_reloaded_directory() -> None:
    parsed = mqtt(("twin/sensors/7/readings", {"ts": TS, "value": 1}),
                  ("twin/sensors/9/readings", {"ts": TS, "value": 2}))
    old = directory()
    fewer = Directory(**{name: getattr(old, name)[1:] for name in Directory.__dataclass_fields__})  # sensor 6 gone
    moved = parsed.readings.rows_in(fewer)
    assert moved.sensor_id.tolist() == [7, 9] and fewer.ids[moved.row].tolist() == [7, 9]
    assert moved.row.tolist() == (parsed.readings.row - 1).tolist()
    gone = Directory(**{name: getattr(old, name)[old.ids != 9] for name in Directory.__dataclass_fields__})
    assert parsed.readings.rows_in(gone).sensor_id.tolist() == [7]
