"""The last 24 hours of readings and the alarms they raised, with a few stories for the alarm rules to find.

Stories (all relative to the sample's fixed "now"):

* a hydrant main losing pressure over five hours, below 0.35 MPa — open threshold alarm;
* a residual current creeping from ~160 mA past 300 mA over the day — acknowledged;
* two smoke detectors on the same floor of one tower, 37 s apart, 11 minutes ago — a pre-alarm, then a fire
  alarm once the second, independent detector confirms (GB 50116 4.1.6 AND logic);
* a single smoke detector spiking six hours ago (kitchen fumes) — pre-alarm, resolved as false;
* a cable over-temperature peak at 74 °C eighteen hours ago — resolved;
* a fire door propped open for two hours; a roof tank level sinking below 2 m — open / acknowledged;
* sensors offline for over a day and faulty ones — open device alarms; and a month of resolved alarms.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from twin.sample.common import FloatArray, IntArray
from twin.sample.names import person_names
from twin.sample.sensors import SENSOR_TYPES, SPEC, Sensors
from twin.sample.towers import Levels

DAY_S = 86_400
READINGS_BUDGET = 250_000
DYNAMIC = ("residual_current", "cable_temperature", "hydrant_pressure", "sprinkler_pressure", "tank_level", "gas")
#: Alarm type of a threshold breach, by sensor type.
THRESHOLD_ALARM = {
    "residual_current": "residual_current_high", "cable_temperature": "cable_temperature_high",
    "hydrant_pressure": "hydrant_pressure_low", "sprinkler_pressure": "sprinkler_pressure_low",
    "tank_level": "tank_level_low", "gas": "gas_leak", "door_state": "fire_door_open", "smoke": "smoke", "heat": "heat",
}
STORIES = ("pressure", "residual", "smoke_a", "smoke_b", "smoke_single", "cable", "door", "tank")


@dataclass(frozen=True)
class History:
    """Readings (sensor row, unix seconds, value) and alarm columns (sensor row, times in unix seconds)."""

    sensor: IntArray
    ts: FloatArray
    value: FloatArray
    alarms: dict[str, list[object]]


def _kind(s: Sensors, name: str) -> npt.NDArray[np.bool_]:
    return s.type == SENSOR_TYPES.index(name)


def choose_stories(rng: np.random.Generator, s: Sensors, lv: Levels) -> dict[str, int]:
    """Sensor rows that play the stories, each in a different tower other than 汇德大厦 (building 1)."""
    used: set[int] = {1}
    out: dict[str, int] = {}

    def take(name: str, mask: npt.NDArray[np.bool_]) -> int:
        rows = np.flatnonzero(mask & ~np.isin(s.building, list(used)))
        row = int(rng.choice(rows))
        used.add(int(s.building[row]))
        out[name] = row
        return row

    tower_level = (s.level >= 0) & (s.building > 0)
    take("pressure", _kind(s, "hydrant_pressure") & (s.low == 0.35) & tower_level)
    take("residual", _kind(s, "residual_current") & tower_level)
    smoke = _kind(s, "smoke") & tower_level
    levels, counts = np.unique(s.level[smoke], return_counts=True)
    busy = np.isin(s.level, levels[(counts >= 2) & np.isin(levels, np.flatnonzero(lv.use == "commercial"))])
    a = take("smoke_a", smoke & busy)
    out["smoke_b"] = int(np.flatnonzero(smoke & (s.level == s.level[a]) & (np.arange(len(s.type)) != a))[0])
    take("smoke_single", smoke)
    take("cable", _kind(s, "cable_temperature") & tower_level)
    take("door", _kind(s, "door_state") & tower_level)
    take("tank", _kind(s, "tank_level") & (s.low == 2.0) & tower_level)
    return out


def _stage(s: Sensors, story: dict[str, int], now_s: float, rng: np.random.Generator) -> Sensors:
    """Statuses and last-seen times of the story sensors before their readings are drawn."""
    status, last_seen = s.status.copy(), s.last_seen.copy()
    for name in ("pressure", "residual", "smoke_a", "smoke_b", "door", "tank"):
        status[story[name]] = "alarm"
    for name in ("smoke_single", "cable"):
        status[story[name]] = "online"
    t0 = np.floor(now_s - 11 * 60 - rng.uniform(0, 30))
    last_seen[story["smoke_a"]], last_seen[story["smoke_b"]] = t0, t0 + 37
    for name in ("pressure", "residual", "smoke_single", "cable", "door", "tank"):
        row = story[name]
        last_seen[row] = np.floor(now_s - rng.uniform(0, s.interval[row]))
    return replace(s, status=status, last_seen=last_seen)


def readings(rng: np.random.Generator, s: Sensors, story: dict[str, int], now: dt.datetime) -> tuple[Sensors, History]:
    """Draw the readings of a budgeted subset of sensors, play the stories, raise the alarms."""
    now_s = now.timestamp()
    s = _stage(s, story, now_s, rng)
    start = now_s - DAY_S
    rows = np.where(s.last_seen >= start, np.floor((s.last_seen - start) / s.interval) + 1, 0).astype(np.int64)
    rows[s.status == "fault"] = 0  # a faulty probe's readings are discarded at the gateway
    dynamic = np.isin(s.type, [SENSOR_TYPES.index(t) for t in DYNAMIC])
    stars = list(story.values())
    showcase = np.isin(s.building, [1, *s.building[stars].tolist()])
    priority = np.where(showcase & dynamic, 1, np.where(dynamic, 2, 3)) * 10 + rng.random(len(rows))
    priority[stars] = 0
    order = np.argsort(priority, kind="stable")
    chosen = order[np.cumsum(rows[order]) <= READINGS_BUDGET]
    idx = np.repeat(chosen, rows[chosen])
    k = np.arange(len(idx)) - np.repeat(np.cumsum(rows[chosen]) - rows[chosen], rows[chosen])
    ts = s.last_seen[idx] - k * s.interval[idx]
    noise = np.array([SPEC[t][5] for t in SENSOR_TYPES])[s.type[idx]]
    hour = ((ts / 3600.0) + 8.0) % 24.0  # local time, UTC+8
    load = np.sin(2 * np.pi * (hour - 8.0) / 24.0)
    value = s.base[idx] + rng.normal(0.0, 1.0, len(idx)) * noise
    value += np.where(s.type[idx] == SENSOR_TYPES.index("residual_current"), 0.25 * s.base[idx] * load, 0.0)
    value += np.where(s.type[idx] == SENSOR_TYPES.index("cable_temperature"), 3.0 * load, 0.0)
    value = _play(value, idx, ts, story, s, now_s, rng)
    value = np.round(np.maximum(value, 0.0), 3).astype(np.float64)
    latest = idx[k == 0]
    last_value = s.last_value.copy()
    last_value[latest] = value[k == 0]
    last_value[s.status == "fault"] = np.nan
    s = replace(s, last_value=last_value)
    sort = np.lexsort((ts, idx))
    return s, History(idx[sort], ts[sort], value[sort], _alarms(rng, s, story, idx, ts, value, now_s))


def _play(value: FloatArray, idx: IntArray, ts: FloatArray, story: dict[str, int], s: Sensors, now_s: float,
          rng: np.random.Generator) -> FloatArray:
    value = value.copy()
    m = idx == story["pressure"]
    drop = np.clip((ts - (now_s - 5 * 3600)) / (5 * 3600), 0, 1)
    value[m] = np.where(drop[m] > 0, s.base[story["pressure"]] + (0.27 - s.base[story["pressure"]]) * drop[m],
                        value[m])
    m = idx == story["residual"]
    value[m] = 160.0 + 175.0 * (ts[m] - (now_s - DAY_S)) / DAY_S + rng.normal(0, 3.0, int(m.sum()))
    for name, level in (("smoke_a", 4.6), ("smoke_b", 4.1)):
        m = (idx == story[name]) & (ts == s.last_seen[story[name]])
        value[m] = level
    m = (idx == story["smoke_single"]) & (ts > now_s - 6 * 3600) & (ts <= now_s - 6 * 3600 + 660)
    value[m] = 3.4
    m = idx == story["cable"]
    peak = np.exp(-(((ts[m] - (now_s - 18 * 3600)) / 900.0) ** 2))
    value[m] = value[m] + (74.5 - s.base[story["cable"]]) * peak
    m = (idx == story["door"]) & (ts > now_s - 2 * 3600)
    value[m] = 1.0
    m = idx == story["tank"]
    sink = np.clip((ts - (now_s - 8 * 3600)) / (8 * 3600), 0, 1)
    value[m] = np.where(sink[m] > 0, 2.9 - 1.05 * sink[m], value[m])
    return value


def _first(idx: IntArray, ts: FloatArray, mask: npt.NDArray[np.bool_], row: int) -> float:
    return float(ts[(idx == row) & mask].min())


def _alarms(rng: np.random.Generator, s: Sensors, story: dict[str, int], idx: IntArray, ts: FloatArray,
            value: FloatArray, now_s: float) -> dict[str, list[object]]:
    keys = ("sensor", "type", "severity", "status", "opened", "ack", "res", "value")
    cols: dict[str, list[object]] = {k: [] for k in keys}
    operators = person_names(rng, 6).tolist()

    def add(row: int, kind: str, severity: str, status: str, opened: float, ack: float | None = None,
            res: float | None = None) -> None:
        at = (idx == row) & (ts == opened)
        reading = float(value[at][0]) if at.any() else None
        for key, item in zip(keys, (row, kind, severity, status, opened, ack, res, reading), strict=True):
            cols[key].append(item)

    p, r, c = story["pressure"], story["residual"], story["cable"]
    add(p, "hydrant_pressure_low", "threshold", "open", _first(idx, ts, value < 0.35, p))
    opened = _first(idx, ts, value > 300.0, r)
    add(r, "residual_current_high", "threshold", "acknowledged", opened, opened + 360)
    a, b = story["smoke_a"], story["smoke_b"]
    add(a, "smoke", "pre_alarm", "acknowledged", s.last_seen[a], s.last_seen[a] + 52)
    add(b, "smoke", "fire_alarm", "open", s.last_seen[b])
    opened = _first(idx, ts, value >= 3.0, story["smoke_single"])
    add(story["smoke_single"], "smoke", "pre_alarm", "resolved", opened, opened + 95, opened + 1260)
    opened = _first(idx, ts, value > 70.0, c)
    add(c, "cable_temperature_high", "threshold", "resolved", opened, opened + 240,
        _first(idx, ts, (value < 70.0) & (ts > opened), c) + 120)
    add(story["door"], "fire_door_open", "threshold", "open", _first(idx, ts, value > 0.5, story["door"]))
    opened = _first(idx, ts, value < 2.0, story["tank"])
    add(story["tank"], "tank_level_low", "threshold", "acknowledged", opened, opened + 900)
    offline = np.flatnonzero((s.status == "offline") & (s.last_seen < now_s - DAY_S))
    for row in rng.choice(offline, min(6, len(offline)), replace=False):
        add(int(row), "offline", "offline", "open", float(s.last_seen[row] + 3 * s.interval[row]))
    faulty = np.flatnonzero(s.status == "fault")
    for i, row in enumerate(rng.choice(faulty, min(6, len(faulty)), replace=False)):
        opened = float(np.floor(now_s - rng.uniform(3600, 20 * 3600)))
        add(int(row), "device_fault", "fault", "acknowledged" if i % 2 else "open", opened,
            opened + 600 if i % 2 else None)
    past = rng.choice(np.flatnonzero(s.status == "online"), 24, replace=False)
    for row in past:
        kind = SENSOR_TYPES[int(s.type[row])]
        opened = float(np.floor(now_s - DAY_S - rng.uniform(0, 29 * DAY_S)))
        severity = "pre_alarm" if kind in ("smoke", "heat") else "fault" if rng.random() < 0.3 else "threshold"
        alarm_type = "device_fault" if severity == "fault" else THRESHOLD_ALARM[kind]
        add(int(row), alarm_type, severity, "resolved", opened, opened + np.floor(rng.uniform(60, 600)),
            opened + np.floor(rng.uniform(900, 7200)))
        if severity != "fault":  # the breach that raised it, long before the 24 h of readings kept
            low, high = s.low[row], s.high[row]
            cols["value"][-1] = round(float(low * rng.uniform(0.6, 0.9) if np.isfinite(low) and kind != "door_state"
                                            else 1.0 if kind == "door_state" else high * rng.uniform(1.05, 1.4)), 3)
    order = np.argsort(np.asarray(cols["opened"], float), kind="stable")
    out = {k: [v[i] for i in order] for k, v in cols.items()}
    out["ack_by"] = [None if t is None else operators[i % 6] for i, t in enumerate(out["ack"])]
    out["res_by"] = [None if t is None else operators[(i + 3) % 6] for i, t in enumerate(out["res"])]
    return out
