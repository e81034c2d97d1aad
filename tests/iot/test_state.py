"""Sensor rows (status, last value, last seen) written from the engine in bulk, on both stores."""

from __future__ import annotations

import orjson
import pandas as pd

from tests.iot.conftest import TwinStore
from tests.iot.test_live import stamp
from twin.iot import IotRuntime, IotSettings
from twin.store.base import FeatureQuery, Filter, Op


def _hydrants(store, n: int) -> list[int]:
    frame = store.query("sensors", FeatureQuery(filters=(Filter("status", Op.EQ, "online"),
                                                         Filter("type", Op.EQ, "hydrant_pressure")), limit=n))
    return [int(i) for i in frame.index]


def _send(runtime: IotRuntime, values: dict[int, float], seconds_ago: float) -> None:
    body = orjson.dumps([{"sensor_id": s, "ts": stamp(seconds_ago), "value": v} for s, v in values.items()])
    result = runtime.commit(runtime.parse_http(body, ndjson=False))
    assert result.stored == len(values) and not result.dead_letters


def test_status_changes_go_at_once_and_last_values_in_passes(iot_store: TwinStore) -> None:
    store = iot_store.store
    runtime = IotRuntime(store, IotSettings(state_values_every_s=3600, state_write_chunk=7))
    ids = _hydrants(store, 20)
    _send(runtime, {s: 0.5 for s in ids}, 30)
    assert runtime.write_state(budget=None) == 0  # no status changed; the first values pass is an interval away
    assert runtime.write_state(budget=None, all_values=True) == 20  # as at shutdown: every row, in slices of 7
    rows = store.query("sensors").loc[ids]
    assert (rows["last_value"] == 0.5).all() and (rows["status"] == "online").all()
    assert (rows["last_seen"] > pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=1)).all()

    low = ids[3]
    _send(runtime, {**{s: 0.6 for s in ids}, low: 0.1}, 10)  # one falls below its threshold
    assert runtime.write_state(budget=1000) == 1  # values are not due for an hour: the status change only
    rows = store.query("sensors").loc[ids]
    assert rows.loc[low, "status"] == "alarm" and rows.loc[low, "last_value"] == 0.1
    assert (rows.drop(index=low)["last_value"] == 0.5).all()  # still the old values

    assert runtime.write_state(budget=None, all_values=True) == 19  # as at shutdown: everything
    rows = store.query("sensors").loc[ids]
    assert (rows.drop(index=low)["last_value"] == 0.6).all()
    assert runtime.write_state(budget=None, all_values=True) == 0  # nothing left dirty
    assert runtime.timings.summary()["state"]["n"] >= 5

    every_tick = IotRuntime(store, IotSettings(state_values_every_s=0))
    _send(every_tick, {s: 0.7 for s in ids if s != low}, 5)
    assert every_tick.write_state(budget=None) == 19  # values due at every call
    assert (store.query("sensors").loc[ids].drop(index=low)["last_value"] == 0.7).all()


def test_a_batch_parsed_before_the_directory_was_reloaded_commits_against_the_new_rows(iot_store: TwinStore) -> None:
    store = iot_store.store
    runtime = IotRuntime(store, IotSettings(directory_refresh_s=0))
    ids = _hydrants(store, 3)
    body = orjson.dumps([{"sensor_id": s, "ts": stamp(5), "value": 0.1 if s == ids[1] else 0.5} for s in ids])
    parsed = runtime.parse_http(body, ndjson=False)  # the MQTT parser works beside the committer like this
    before = runtime.directory()
    assert runtime.refresh_directory() and runtime.directory() is not before
    result = runtime.commit(parsed)
    assert result.stored == 3 and len(result.alarms) == 1
    alarm = store.get("alarms", result.alarms[0]).iloc[0]
    assert int(alarm["sensor_id"]) == ids[1] and alarm["alarm_type"] == "hydrant_pressure_low"
