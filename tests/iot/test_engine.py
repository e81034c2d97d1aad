"""The pure alarm engine: thresholds, two-trigger confirmation, offline detection, debounce, undo, lifecycle keys."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from twin.iot.directory import Directory
from twin.iot.engine import EngineState, carry_over, step, sweep, unresolved_keys
from twin.iot.payload import Readings
from twin.iot.rules import thresholds
from twin.iot.settings import RuleSettings

T0 = 1_795_000_000_000  # ms
S = 1000

#: id, code, type, building, level, low, high, interval
SENSORS = [
    (1, "YG1", "smoke", 10, 100, np.nan, np.nan, 300),
    (2, "YG2", "smoke", 10, 100, np.nan, np.nan, 300),
    (3, "WG3", "heat", 10, 100, np.nan, np.nan, 300),
    (4, "YG4", "smoke", 10, 101, np.nan, np.nan, 300),  # another floor, same building
    (5, "YG5", "smoke", 11, 100, np.nan, np.nan, 300),  # another building
    (6, "XY6", "hydrant_pressure", 10, 100, 0.35, 0.70, 60),
    (7, "XY7", "hydrant_pressure", 10, 100, 0.15, np.nan, 60),  # roof hydrant: its own low threshold
    (8, "SY8", "residual_current", 10, 100, np.nan, np.nan, 60),
    (9, "MC9", "door_state", 10, 100, np.nan, 0.5, 300),
    (10, "YG10", "smoke", -1, -1, np.nan, np.nan, 300),  # no building: never confirms anything
    (11, "YG11", "smoke", -1, -1, np.nan, np.nan, 300),
]


def directory(status: str = "online", last_seen: float = np.nan) -> Directory:
    n = len(SENSORS)
    col = list(zip(*SENSORS, strict=True))
    return Directory(
        ids=np.array(col[0], np.int64), codes=np.array(col[1], object), types=np.array(col[2], object),
        building_id=np.array(col[3], np.int64), level_id=np.array(col[4], np.int64),
        grid_code=np.array(["440309004001001"] * n, object), unit=np.array(["%/m"] * n, object),
        low=np.array(col[5], float), high=np.array(col[6], float), interval_s=np.array(col[7], float),
        status=np.array([status] * n, object), last_value=np.full(n, np.nan), last_seen_ms=np.full(n, last_seen),
        building_name=np.array(["汇德大厦"] * n, object), level_name=np.array(["40F"] * n, object),
    )


def state(**rules: Any) -> EngineState:
    return EngineState(directory(), RuleSettings(**rules), live_since_ms=T0)


def readings(*items: tuple[int, float, float]) -> Readings:
    """(sensor id, seconds after T0, value)."""
    d = directory()
    ids = np.array([i for i, _, _ in items], np.int64)
    return Readings(d.rows_of_ids(ids), ids, np.array([T0 + int(t * S) for _, t, _ in items], np.int64),
                    np.array([v for _, _, v in items], float))


def kinds(outcome) -> list[tuple[int | None, str, str]]:
    return [(a.sensor_id, a.alarm_type, a.severity) for a in outcome.alarms]


def test_thresholds_use_the_sensor_own_values_first_then_the_type_defaults() -> None:
    t = thresholds(directory(), RuleSettings(residual_current_ma=450))
    d = directory()
    row = {int(i): r for r, i in enumerate(d.ids)}
    assert t.low[row[6]] == 0.35 and t.high[row[6]] == 0.70
    assert t.low[row[7]] == 0.15
    assert t.high[row[8]] == 450  # no own threshold: the setting
    assert t.high[row[1]] == 3.0  # smoke obscuration default
    assert t.fire_trigger[row[1]] and t.fire_trigger[row[3]] and not t.fire_trigger[row[6]]
    own = thresholds(d, RuleSettings(prefer_sensor_thresholds=False, hydrant_pressure_min_mpa=0.4))
    assert own.low[row[7]] == 0.4


def test_residual_current_setting_must_stay_in_the_gb_band() -> None:
    with pytest.raises(ValueError, match="300"):
        RuleSettings(residual_current_ma=250)


def test_normal_readings_raise_nothing_and_keep_sensors_online() -> None:
    s = state()
    out = step(s, readings((1, 0, 0.2), (6, 0, 0.5), (8, 0, 120), (9, 0, 0)), T0 + 10 * S)
    assert out.alarms == [] and out.evaluated == 4
    assert set(s.status) == {"online"}


def test_one_smoke_detector_alone_is_a_pre_alarm() -> None:
    s = state()
    out = step(s, readings((1, 0, 4.6)), T0)
    assert kinds(out) == [(1, "smoke", "pre_alarm")]
    assert out.alarms[0].message.startswith("汇德大厦 40F 烟感报警")
    assert s.status[0] == "alarm"


def test_a_second_detector_on_the_same_floor_within_the_window_confirms_a_fire_alarm() -> None:
    s = state(confirm_window_s=180)
    first = step(s, readings((1, 0, 4.6), (1, 60, 0.1)), T0 + 60 * S)  # triggered, then cleared
    assert kinds(first) == [(1, "smoke", "pre_alarm")]
    second = step(s, readings((3, 150, 70.0)), T0 + 150 * S)  # a heat detector, 150 s later
    assert kinds(second) == [(3, "heat", "fire_alarm")]
    assert (second.alarms[0].building_id, second.alarms[0].level_id) == (10, 100)
    assert second.alarms[0].key == ("floor", 10, 100)


def test_both_triggers_in_one_batch_are_taken_in_time_order() -> None:
    s = state()
    out = step(s, readings((2, 37, 4.1), (1, 0, 4.6)), T0 + 40 * S)
    assert kinds(out) == [(1, "smoke", "pre_alarm"), (2, "smoke", "fire_alarm")]


def test_no_confirmation_outside_the_window_across_floors_buildings_or_from_the_same_detector() -> None:
    s = state(confirm_window_s=60)
    step(s, readings((1, 0, 4.6), (1, 30, 0.1)), T0 + 30 * S)
    late = step(s, readings((2, 200, 4.2)), T0 + 200 * S)  # the first cleared 170 s before
    assert kinds(late) == [(2, "smoke", "pre_alarm")]
    other_floor = step(s, readings((4, 201, 4.0), (5, 201, 4.0)), T0 + 201 * S)
    assert sorted(a.severity for a in other_floor.alarms) == ["pre_alarm", "pre_alarm"]
    nowhere = step(s, readings((10, 0, 4.0), (11, 1, 4.0)), T0 + 201 * S)
    assert [a.severity for a in nowhere.alarms] == ["pre_alarm", "pre_alarm"]


def test_a_detector_still_in_alarm_confirms_even_after_the_window() -> None:
    s = state(confirm_window_s=60)
    step(s, readings((1, 0, 4.6)), T0)
    out = step(s, readings((2, 3600, 4.0)), T0 + 3600 * S)
    assert kinds(out) == [(2, "smoke", "fire_alarm")]


def test_one_fire_alarm_per_floor_until_resolved() -> None:
    s = state()
    step(s, readings((1, 0, 4.6), (2, 10, 4.6)), T0 + 10 * S)
    again = step(s, readings((3, 20, 80.0)), T0 + 20 * S)
    assert again.alarms == []
    s.bind(("floor", 10, 100), 77)
    s.resolved(77)
    step(s, readings((3, 30, 20.0)), T0 + 30 * S)
    assert kinds(step(s, readings((3, 40, 80.0)), T0 + 40 * S)) == [(3, "heat", "fire_alarm")]


def test_threshold_alarms_fire_on_the_rising_edge_only_and_not_while_unresolved() -> None:
    s = state()
    out = step(s, readings((6, 0, 0.30), (6, 60, 0.29), (6, 120, 0.28)), T0 + 120 * S)
    assert kinds(out) == [(6, "hydrant_pressure_low", "threshold")]
    assert out.alarms[0].value == pytest.approx(0.30)
    s.bind(out.alarms[0].key, 5)
    hover = step(s, readings((6, 180, 0.40), (6, 240, 0.30), (6, 300, 0.41), (6, 360, 0.29)), T0 + 360 * S)
    assert hover.alarms == []  # still unresolved: the hovering value raises nothing new
    s.resolved(5)
    assert kinds(step(s, readings((6, 420, 0.50), (6, 480, 0.20)), T0 + 480 * S)) == [
        (6, "hydrant_pressure_low", "threshold")]


def test_other_thresholds_roof_hydrant_high_pressure_residual_current_and_door() -> None:
    s = state()
    out = step(s, readings((7, 0, 0.20), (6, 0, 0.75), (8, 0, 300.0), (9, 0, 1.0)), T0)
    assert sorted(kinds(out)) == [(6, "hydrant_pressure_high", "threshold"), (8, "residual_current_high", "threshold"),
                                  (9, "fire_door_open", "threshold")]  # 0.20 MPa is fine for the roof hydrant


def test_old_and_duplicate_readings_change_nothing() -> None:
    s = state()
    step(s, readings((6, 100, 0.5)), T0 + 100 * S)
    out = step(s, readings((6, 50, 0.1), (6, 100, 0.1)), T0 + 100 * S)
    assert out.evaluated == 0 and out.alarms == []
    assert s.last_value[5] == 0.5
    dup = step(s, readings((6, 160, 0.2), (6, 160, 0.2)), T0 + 160 * S)
    assert dup.evaluated == 1


def test_silent_sensors_go_offline_once_and_a_flapping_one_raises_one_alarm() -> None:
    s = state(offline_after_intervals=3, offline_realarm_s=1800, offline_storm_fraction=1.0)
    for sensor in range(1, 12):
        step(s, readings((sensor, 0, 0.5 if sensor in (6, 7) else 0)), T0)
    assert sweep(s, T0 + 170 * S).alarms == []
    out = sweep(s, T0 + 181 * S)  # 60-s sensors past 3 intervals
    assert sorted(int(a.sensor_id or 0) for a in out.alarms) == [6, 7, 8]
    assert {a.severity for a in out.alarms} == {"offline"}
    assert s.status[5] == "offline"
    for key, alarm_id in zip([a.key for a in out.alarms], (1, 2, 3), strict=True):
        s.bind(key, alarm_id)
    s.resolved(1)  # sensor 6's offline alarm resolved; it flaps: back, then silent again
    step(s, readings((6, 300, 0.5)), T0 + 300 * S)
    assert s.status[5] == "online"
    flap = sweep(s, T0 + 500 * S)
    assert [a.sensor_id for a in flap.alarms if a.sensor_id == 6] == []  # debounced: within offline_realarm_s
    assert s.status[5] == "offline"
    later = sweep(s, T0 + 3000 * S)  # the 300-s sensors are silent too by now
    assert 6 not in [a.sensor_id for a in later.alarms]


def test_offline_is_counted_from_when_the_engine_went_live() -> None:
    d = directory(last_seen=T0 - 10 * 86400 * S)  # seen ten days ago, before the engine started
    s = EngineState(d, RuleSettings(offline_storm_fraction=1.0), live_since_ms=T0)
    assert sweep(s, T0 + 100 * S).alarms == []
    assert len(sweep(s, T0 + 181 * S).alarms) == 3


def test_many_sensors_silent_together_raise_one_outage_alarm() -> None:
    d = directory()
    n = 120
    many = Directory(**{**{k: v for k, v in d.__dict__.items() if not k.startswith("_")},
                        **{k: np.resize(v, n) for k, v in d.__dict__.items()
                           if not k.startswith("_") and k != "ids"}, "ids": np.arange(1, n + 1)})
    s = EngineState(many, RuleSettings(offline_storm_fraction=0.2), live_since_ms=T0)
    out = sweep(s, T0 + 10_000 * S)
    assert [(a.alarm_type, a.sensor_id) for a in out.alarms] == [("ingest_outage", None)]
    assert "120" in out.alarms[0].message
    assert (s.status == "offline").all()
    assert sweep(s, T0 + 20_000 * S).alarms == []  # nobody is monitored any more, and the outage is unresolved
    few = EngineState(directory(), RuleSettings(offline_storm_fraction=0.2), live_since_ms=T0)
    assert len(sweep(few, T0 + 10_000 * S).alarms) == 11  # below the 50-sensor floor of a storm: one each


def test_state_events_are_debounced_but_the_last_status_always_goes_out() -> None:
    s = state(state_event_min_s=30)
    first = step(s, readings((6, 0, 0.2)), T0)
    assert [(c.sensor_id, c.status, c.previous) for c in first.changes] == [(6, "alarm", "online")]
    quick = step(s, readings((6, 5, 0.5)), T0 + 5 * S)  # back to normal 5 s later: held back
    assert quick.changes == []
    again = step(s, readings((6, 10, 0.2)), T0 + 10 * S)  # and in alarm again: nothing to send, nothing changed
    assert again.changes == []
    step(s, readings((6, 15, 0.5)), T0 + 15 * S)
    settled = sweep(s, T0 + 31 * S)
    assert [(c.sensor_id, c.status) for c in settled.changes] == [(6, "online")]


def test_snapshot_restore_undoes_a_step() -> None:
    s = state()
    r = readings((1, 0, 4.6), (6, 0, 0.2))
    snap = s.snapshot(r.row)
    out = step(s, r, T0)
    assert len(out.alarms) == 2 and s.status[0] == "alarm"
    s.restore(snap)
    assert s.status[0] == "online" and not s.unresolved and np.isnan(s.last_value[0])
    assert len(step(s, r, T0).alarms) == 2  # the same batch raises the same alarms again


def test_fault_status_is_kept_and_unresolved_keys_come_from_stored_alarms() -> None:
    d = directory(status="fault")
    s = EngineState(d, RuleSettings(), T0)
    step(s, readings((6, 0, 0.2)), T0)
    assert s.status[5] == "fault"
    keys = unresolved_keys([
        {"id": 1, "status": "open", "severity": "fire_alarm", "building_id": 10, "level_id": 100,
         "alarm_type": "smoke", "sensor_id": 2},
        {"id": 2, "status": "acknowledged", "severity": "threshold", "alarm_type": "gas_leak", "sensor_id": 9},
        {"id": 3, "status": "resolved", "severity": "threshold", "alarm_type": "gas_leak", "sensor_id": 8},
    ])
    assert keys == {("floor", 10, 100): 1, ("sensor", 9, "gas_leak"): 2}


def test_carry_over_keeps_state_by_sensor_id() -> None:
    s = state()
    step(s, readings((6, 0, 0.2)), T0)
    d = directory()
    grown = Directory(**{name: np.append(value, value[-1:]) for name, value in d.__dict__.items()
                         if not name.startswith("_")})
    grown = Directory(**{**{k: v for k, v in grown.__dict__.items() if not k.startswith("_")},
                         "ids": np.append(d.ids, 12), "status": np.append(d.status, "online")})
    moved = carry_over(s, grown)
    assert moved.status[5] == "alarm" and moved.last_value[5] == 0.2
    assert moved.status[11] == "online" and np.isnan(moved.last_value[11])
    assert moved.unresolved == s.unresolved


def test_a_storm_building_up_over_several_sweeps_becomes_one_outage_alarm() -> None:
    d = directory()
    n = 120
    many = Directory(**{**{k: np.resize(v, n) for k, v in d.__dict__.items() if not k.startswith("_")},
                        "ids": np.arange(1, n + 1)})
    fast = int((many.interval_s == 60).sum())
    assert 0 < fast < 50
    s = EngineState(many, RuleSettings(offline_storm_fraction=0.2, offline_storm_window_s=1200), live_since_ms=T0)
    first = sweep(s, T0 + 181 * S)  # the 60-s sensors: fewer than a storm, one alarm each
    assert len(first.alarms) == fast and {a.alarm_type for a in first.alarms} == {"offline"}
    second = sweep(s, T0 + 901 * S)  # the 300-s sensors follow within the window: an outage
    assert [a.alarm_type for a in second.alarms] == ["ingest_outage"]
    assert (s.status == "offline").all()
