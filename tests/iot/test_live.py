"""The live pipeline end to end: a real broker, the ingester, the store, the engine and the SSE stream over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from tests.iot.conftest import Live, SseReader, wait_until
from twin.iot.mqtt import MqttIngester
from twin.store.base import FeatureQuery, Filter, Op


def stamp(seconds_ago: float = 0.0) -> str:
    t = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_published_reading_is_stored_and_its_alarm_reaches_the_stream(live: Live) -> None:
    sensor = live.pick["smoke"]
    before = live.readings_of(sensor)
    sse = SseReader(live.url, live.headers("operator"))
    try:
        sent = time.monotonic()
        live.publisher.send(sensor, {"ts": stamp(), "value": 4.6})
        alarm = sse.wait_for(lambda e: e["event"] == "alarm" and e["json"]["sensor_id"] == sensor)
        latency = time.monotonic() - sent
        state = sse.wait_for(lambda e: e["event"] == "sensor" and e["json"]["sensor_id"] == sensor)
    finally:
        sse.close()
    assert alarm["json"]["severity"] == "pre_alarm" and alarm["json"]["alarm_type"] == "smoke"
    assert alarm["json"]["action"] == "opened" and alarm["json"]["status"] == "open"
    assert alarm["json"]["building_id"] is not None and alarm["json"]["grid_code"]
    assert state["json"]["status"] == "alarm" and state["json"]["previous"] == "online"
    assert int(state["id"]) > int(alarm["id"])
    assert latency < 5
    assert live.readings_of(sensor) == before + 1
    stored = live.store.get("alarms", alarm["json"]["id"]).iloc[0]
    assert stored["severity"] == "pre_alarm" and stored["status"] == "open"
    wait_until(lambda: live.store.get("sensors", sensor).iloc[0]["status"] == "alarm")  # the map colour


def test_two_detectors_on_one_floor_confirm_a_fire_alarm(live: Live) -> None:
    a, b = live.pick["smoke_a"], live.pick["smoke_b"]
    live.publisher.send(a, {"ts": stamp(40), "value": 4.6})
    live.publisher.send(b, {"ts": stamp(3), "value": 4.1})
    alarms = wait_until(lambda: [(r.sensor_id, r.severity) for r in live.store.query("alarms", FeatureQuery(
        filters=(Filter("sensor_id", Op.IN, [a, b]),))).itertuples()] if live.runtime.stats.alarms_opened >= 2
        else None)
    assert sorted(alarms) == sorted([(a, "pre_alarm"), (b, "fire_alarm")])


def test_readings_published_while_the_ingester_is_down_arrive_when_it_returns(live: Live) -> None:
    sensor = live.pick["hydrant_pressure"]
    runtime = live.runtime
    before = live.readings_of(sensor)
    runtime.ingester.stop()
    n = 1500  # more than Mosquitto's default queue of 1,000: needs the documented broker settings
    live.publisher.send_many([(live.publisher.topic(sensor), orjson.dumps({"ts": stamp(n - i), "value": 0.5}))
                              for i in range(n)])
    time.sleep(0.3)
    assert live.readings_of(sensor) == before  # nobody is listening
    runtime.ingester = MqttIngester(runtime, live.settings.mqtt)  # the same client id: the same session
    runtime.ingester.start()
    wait_until(lambda: live.readings_of(sensor) == before + n, timeout=30)
    time.sleep(0.5)
    assert live.readings_of(sensor) == before + n


def test_batches_stored_side_by_side_are_evaluated_and_acknowledged_in_arrival_order(live: Live) -> None:
    sensor = live.pick["hydrant_pressure"]
    runtime = live.runtime
    runtime.ingester.stop()
    settings = live.settings.mqtt.model_copy(update={"batch_messages": 3, "committers": 3})
    evaluated: list[list[int]] = []
    real_evaluate = runtime.evaluate

    def recording(batch: Any) -> Any:  # the real evaluate, noting the order batches reach it
        evaluated.append(batch.parsed.readings.ts_ms.tolist())
        return real_evaluate(batch)

    runtime.evaluate = recording  # type: ignore[method-assign]
    before = live.readings_of(sensor)
    n = 240
    live.publisher.send_many([(live.publisher.topic(sensor), orjson.dumps({"ts": stamp(n - i), "value": 0.5}))
                              for i in range(n)])  # while the ingester is away: it meets them all at once
    runtime.ingester = MqttIngester(runtime, settings)
    runtime.ingester.start()
    wait_until(lambda: live.readings_of(sensor) == before + n, timeout=30)
    wait_until(lambda: sum(len(b) for b in evaluated) >= n)
    stamps = [t for batch in evaluated for t in batch]
    assert len(evaluated) >= n // 3 and stamps == sorted(stamps) and len(set(stamps)) == n
    assert runtime.state().last_seen_ms[runtime.directory().rows_of_ids([sensor])[0]] == stamps[-1]
    assert runtime.ingester.committed_messages == n


def test_duplicates_are_stored_once(live: Live) -> None:
    sensor = live.pick["residual_current"]
    before = live.readings_of(sensor)
    reading = {"ts": stamp(5), "value": 120.0}
    for _ in range(4):
        live.publisher.send(sensor, reading)
    live.publisher.send(sensor, [reading, reading, {"ts": stamp(4), "value": 121.0}])
    wait_until(lambda: live.runtime.stats.duplicates >= 5)
    assert live.readings_of(sensor) == before + 2
    assert live.runtime.stats.stored == 2


def test_garbage_is_dead_lettered_with_a_reason_and_counted(live: Live) -> None:
    before = live.store.count("dead_letters")
    sensor = live.pick["gas"]
    live.publisher.send(sensor, b"{definitely not json", raw=True)
    live.publisher.send("NO-SUCH-SENSOR", {"ts": stamp(), "value": 1.0})
    live.publisher.send(sensor, {"ts": stamp(), "value": "lots"})
    live.publisher.send(sensor, {"ts": "2099-01-01T00:00:00Z", "value": 1.0})
    live.publisher.send(sensor, {"ts": stamp(), "value": 1.5})  # the ingester goes on
    wait_until(lambda: live.store.count("dead_letters") == before + 4)
    rows = live.store.query("dead_letters").iloc[before:]
    assert sorted(r.split(":")[0] for r in rows["reason"]) == ["bad_json", "bad_value", "future_timestamp",
                                                                "unknown_sensor"]
    assert set(rows["source"]) == {"mqtt"} and all(t.startswith(live.publisher.prefix) for t in rows["topic"])
    assert "definitely not json" in " ".join(rows["payload"])
    wait_until(lambda: live.readings_of(sensor) >= 1 and live.runtime.stats.stored >= 1)
    stats = httpx.get(f"{live.url}/ingest/stats", headers=live.headers("operator")).json()
    assert stats["dead_letters"] == 4 and stats["dead_letters_by_reason"]["unknown_sensor"] == 1
    assert stats["dead_letters_stored"] == before + 4 and stats["mqtt"]["connected"] is True


def test_http_ingest_json_and_ndjson_need_the_device_role(live: Live) -> None:
    sensor = live.pick["hydrant_pressure"]
    before = live.readings_of(sensor)
    body = [{"sensor_id": sensor, "ts": stamp(30), "value": 0.5}, {"sensor_id": sensor, "ts": stamp(20), "value": 0.2},
            {"sensor_id": 99_999_999, "ts": stamp(20), "value": 0.5}]
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/ingest/readings", json=body).status_code == 401
        assert client.post("/ingest/readings", json=body, headers=live.headers("inspector")).status_code == 403
        r = client.post("/ingest/readings", json=body, headers=live.headers("device"))
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["accepted"], out["stored"], out["dead_lettered"]) == (2, 1 + 1, 1)
        assert out["reasons"][0].startswith("unknown_sensor") and len(out["alarms"]) == 1
        again = client.post("/ingest/readings", json=body[:2], headers=live.headers("device")).json()
        assert again["stored"] == 0 and again["duplicates"] == 2
        lines = b"\n".join(orjson.dumps({"sensor_id": sensor, "ts": stamp(10 - i), "value": 0.6}) for i in range(5))
        nd = client.post("/ingest/readings", content=lines + b"\n{broken",
                         headers={**live.headers("device"), "Content-Type": "application/x-ndjson"}).json()
        assert nd["stored"] == 5 and nd["dead_lettered"] == 1 and nd["reasons"][0].startswith("bad_json")
    assert live.readings_of(sensor) == before + 7


def test_the_alarm_lifecycle_and_the_list(live: Live) -> None:
    sensor = live.pick["hydrant_pressure"]
    with httpx.Client(base_url=live.url, headers=live.headers("operator")) as client:
        r = client.post("/ingest/readings", json=[{"sensor_id": sensor, "ts": stamp(), "value": 0.1}],
                        headers=live.headers("device"))
        [alarm_id] = r.json()["alarms"]
        listed = client.get("/alarms", params={"status": "open", "type": "hydrant_pressure_low"}).json()
        assert alarm_id in [a["id"] for a in listed["alarms"]]
        assert all(a["status"] == "open" for a in listed["alarms"])
        grid = listed["alarms"][0]["grid_code"]
        assert client.get("/alarms", params={"grid": grid[:9]}).json()["numberMatched"] >= 1
        assert client.get("/alarms", params={"grid": "999"}).json()["numberMatched"] == 0
        page = client.get("/alarms", params={"limit": 5}).json()
        assert page["numberReturned"] == 5 and page["links"][0]["rel"] == "next"
        opened = [a["opened_at"] for a in page["alarms"]]
        assert opened == sorted(opened, reverse=True)
        recent = client.get("/alarms", params={"datetime": f"{stamp(600)}/.."}).json()["alarms"]
        assert alarm_id in [a["id"] for a in recent]
        assert client.post(f"/alarms/{alarm_id}/acknowledge", headers=live.headers("inspector")).status_code == 403
        ack = client.post(f"/alarms/{alarm_id}/acknowledge", json={"by": "王值班"}).json()
        assert ack["status"] == "acknowledged" and ack["acknowledged_by"] == "王值班" and ack["acknowledged_at"]
        assert client.post(f"/alarms/{alarm_id}/acknowledge").status_code == 409
        done = client.post(f"/alarms/{alarm_id}/resolve").json()
        assert done["status"] == "resolved" and done["resolved_by"] == "test operator"
        assert done["acknowledged_by"] == "王值班"
        assert client.post(f"/alarms/{alarm_id}/resolve").status_code == 409
        assert client.post("/alarms/99999999/resolve").status_code == 404
        history = client.get("/alarms", params={"status": "resolved", "type": "hydrant_pressure_low"}).json()
        assert alarm_id in [a["id"] for a in history["alarms"]]
    # resolved: the same condition may raise a new alarm
    again = httpx.post(f"{live.url}/ingest/readings", headers=live.headers("device"), json=[
        {"sensor_id": sensor, "ts": stamp(-1), "value": 0.5}, {"sensor_id": sensor, "ts": stamp(-2), "value": 0.1}])
    assert len(again.json()["alarms"]) == 1


def test_last_event_id_replays_what_a_client_missed(live: Live) -> None:
    first = SseReader(live.url, live.headers("operator"))
    device = live.headers("device")
    sensors = [live.pick["hydrant_pressure"], live.pick["residual_current"], live.pick["gas"]]
    values = {live.pick["hydrant_pressure"]: 0.1, live.pick["residual_current"]: 480.0, live.pick["gas"]: 60.0}
    httpx.post(f"{live.url}/ingest/readings", headers=device,
               json=[{"sensor_id": sensors[0], "ts": stamp(), "value": values[sensors[0]]}])
    seen = first.wait_for(lambda e: e["event"] == "alarm")
    first.close()
    for sensor in sensors[1:]:  # while the client is away
        httpx.post(f"{live.url}/ingest/readings", headers=device,
                   json=[{"sensor_id": sensor, "ts": stamp(), "value": values[sensor]}])
    back = SseReader(live.url, {**live.headers("operator"), "Last-Event-ID": seen["id"]})
    try:
        back.wait_for(lambda e: e["event"] == "alarm" and e["json"]["sensor_id"] == sensors[2])
    finally:
        back.close()
    ids = [int(e["id"]) for e in back.events]
    assert ids == sorted(ids) and ids[0] == int(seen["id"]) + 1
    missed = [e["json"]["sensor_id"] for e in back.events if e["event"] == "alarm"]
    assert missed == sensors[1:]
    stale = SseReader(live.url, {**live.headers("operator"), "Last-Event-ID": "5"})
    try:
        reset = stale.wait_for(lambda e: e["event"] == "reset")
    finally:
        stale.close()
    assert "reload" in reset["json"]["reason"]


def test_the_stream_filters_by_type_and_building(live: Live) -> None:
    gas, hydrant = live.pick["gas"], live.pick["hydrant_pressure"]
    only_gas = SseReader(live.url, live.headers("operator"), {"type": "gas_leak"})
    nowhere = SseReader(live.url, live.headers("operator"), {"building": "99999999"})
    try:
        httpx.post(f"{live.url}/ingest/readings", headers=live.headers("device"), json=[
            {"sensor_id": hydrant, "ts": stamp(), "value": 0.1}, {"sensor_id": gas, "ts": stamp(), "value": 50.0}])
        got = only_gas.wait_for(lambda e: e["event"] == "alarm")
        time.sleep(0.5)
    finally:
        only_gas.close()
        nowhere.close()
    assert got["json"]["sensor_id"] == gas
    assert {e["json"].get("alarm_type") for e in only_gas.events} == {"gas_leak"}
    assert nowhere.events == []


def test_reading_history_is_downsampled(live: Live) -> None:
    sensor = live.pick["residual_current"]
    now = datetime.now(UTC)
    base = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0) - timedelta(hours=2)
    body = [{"sensor_id": sensor, "ts": (base + timedelta(seconds=60 * i)).isoformat().replace("+00:00", "Z"),
             "value": float(i % 10)} for i in range(100)]
    assert httpx.post(f"{live.url}/ingest/readings", json=body, headers=live.headers("device")).json()["stored"] == 100
    params = {"start": base.isoformat().replace("+00:00", "Z"),
              "end": (base + timedelta(minutes=100)).isoformat().replace("+00:00", "Z")}
    with httpx.Client(base_url=live.url, headers=live.headers("inspector")) as client:
        raw = client.get(f"/sensors/{sensor}/readings", params=params).json()
        assert raw["bucket_s"] is None and raw["count"] == 100
        hourly = client.get(f"/sensors/{sensor}/readings", params={**params, "bucket": "10m"}).json()
        assert hourly["bucket_s"] == 600 and sum(p["count"] for p in hourly["points"]) == 100
        assert all(p["min"] <= p["mean"] <= p["max"] for p in hourly["points"])
        assert hourly["points"][0]["min"] == 0 and hourly["points"][0]["max"] == 9
        assert client.get(f"/sensors/{sensor}/readings", params={"bucket": "soon"}).status_code == 400
        assert client.get("/sensors/99999999/readings").status_code == 404
        for far in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
            response = client.get(f"/sensors/{sensor}/readings", params={"start": far, "end": far})
            assert response.status_code == 400 and "outside" in response.json()["description"], response.text


def test_readings_update_the_sensor_rows_the_tiles_draw(live: Live) -> None:
    sensor = live.pick["heat"]
    live.publisher.send(sensor, {"ts": stamp(), "value": 23.5})
    wait_until(lambda: live.store.get("sensors", sensor).iloc[0]["last_value"] == 23.5)
    row = live.store.get("sensors", sensor).iloc[0]
    assert row["status"] == "online" and abs((datetime.now(UTC) - row["last_seen"]).total_seconds()) < 30
    live.publisher.send(sensor, {"ts": stamp(-1), "value": 90.0})
    wait_until(lambda: live.store.get("sensors", sensor).iloc[0]["status"] == "alarm")
