"""IoT sensors (物联感知设备) on the tower floors, and — at Shenzhen scale — in ordinary buildings.

Smoke and heat sensors sit on (and link to) every sixth detector, door sensors on the stair fire doors, pressure
sensors on hydrant boxes and sprinkler valves, level sensors on the roof tank and the fire pool; electrical-fire
monitors (residual current, cable temperature) by each floor's distribution board. Thresholds follow domain.md
(residual current 300 mA, hydrant outlet ≥ 0.35 MPa for high-rises, ≥ 0.15 MPa at the roof from the tank …).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt

from twin.sample.common import BoolArray, FloatArray, IntArray
from twin.sample.facilities import TYPES, Facilities
from twin.sample.towers import Levels

SENSOR_TYPES = ("smoke", "heat", "residual_current", "cable_temperature", "hydrant_pressure", "sprinkler_pressure",
                "tank_level", "gas", "door_state")
#: type → unit, low threshold, high threshold, reporting interval (s), normal range, noise (σ), code prefix.
SPEC: dict[str, tuple[str, float, float, int, tuple[float, float], float, str]] = {
    "smoke": ("%/m", np.nan, 3.0, 300, (0.02, 0.35), 0.03, "YG"),
    "heat": ("°C", np.nan, 57.0, 300, (21.0, 30.0), 0.3, "WG"),
    "residual_current": ("mA", np.nan, 300.0, 60, (35.0, 170.0), 6.0, "SY"),
    "cable_temperature": ("°C", np.nan, 70.0, 60, (28.0, 46.0), 0.6, "XW"),
    "hydrant_pressure": ("MPa", 0.35, 0.70, 60, (0.40, 0.62), 0.006, "XY"),
    "sprinkler_pressure": ("MPa", 0.05, 1.20, 300, (0.25, 0.60), 0.006, "PY"),
    "tank_level": ("m", 2.0, 3.6, 300, (2.6, 3.2), 0.01, "SW"),
    "gas": ("%LEL", np.nan, 20.0, 60, (0.0, 2.5), 0.25, "RQ"),
    "door_state": ("state", np.nan, 0.5, 300, (0.0, 0.0), 0.0, "MC"),
}
#: Roof test hydrant: the roof tank's static pressure, ≥ 0.15 MPa for buildings over 100 m; fire pool level (m).
ROOF_HYDRANT = (0.15, (0.17, 0.30))
FIRE_POOL = (3.0, 5.0, (3.8, 4.6))
P_OFFLINE, P_FAULT = 0.02, 0.006


@dataclass(frozen=True)
class Sensors:
    """Sensor rows in id order (street-frame position, z above ground); building/level/facility -1 where none.

    ``building`` is a building row index (0 = station, 1–138 towers …); ``facility`` a facility row index.
    """

    type: IntArray
    building: IntArray
    level: IntArray
    facility: IntArray
    u: FloatArray
    v: FloatArray
    z: FloatArray
    low: FloatArray
    high: FloatArray
    interval: IntArray
    base: FloatArray  # the sensor's normal level
    status: npt.NDArray[np.object_]
    last_seen: FloatArray  # unix seconds
    last_value: FloatArray

    @property
    def type_name(self) -> npt.NDArray[np.object_]:
        """Type names."""
        return np.asarray(SENSOR_TYPES, dtype=object)[self.type]

    def take(self, rows: IntArray) -> Sensors:
        """The sensors at ``rows``, in that order."""
        return Sensors(*(getattr(self, f.name)[rows] for f in fields(self)))


def _pick(fac: Facilities, kind: str, mask: BoolArray | None = None) -> IntArray:
    hit = fac.type == TYPES.index(kind)
    return np.flatnonzero(hit if mask is None else hit & mask)


def on_towers(rng: np.random.Generator, lv: Levels, fac: Facilities) -> Sensors:
    """The tower sensors, by tower, level and type, linked to the facility they sit on (status: see :func:`finish`)."""
    ordinal = np.where(fac.level >= 0, lv.ordinal[np.maximum(fac.level, 0)], 0)
    use = np.where(fac.level >= 0, lv.use[np.maximum(fac.level, 0)], "")
    linked = [
        ("smoke", _pick(fac, "smoke_detector", fac.slot % 6 == 0)),
        ("heat", _pick(fac, "heat_detector", fac.slot % 6 == 0)),
        ("door_state", _pick(fac, "fire_door", fac.slot == 0)),
        ("sprinkler_pressure", _pick(fac, "sprinkler_valve", ordinal % 2 == 1)),
        ("hydrant_pressure", _pick(fac, "hydrant_box", (fac.slot == 0) & (ordinal % 4 == 0) & (use != "roof"))),
        ("hydrant_pressure", _pick(fac, "hydrant_box", use == "roof")),
        ("tank_level", _pick(fac, "roof_water_tank")),
        ("tank_level", _pick(fac, "fire_pump_room")),
    ]
    kinds = np.concatenate([np.full(len(rows), SENSOR_TYPES.index(k)) for k, rows in linked])
    facility = np.concatenate([rows for _, rows in linked])
    storey = np.flatnonzero(lv.use != "roof")
    kitchens = np.flatnonzero(np.isin(lv.use, ["commercial", "hotel"]))
    boards = [
        ("residual_current", storey, 0.55),
        ("cable_temperature", storey[lv.ordinal[storey] % 2 == 0], 0.58),
        ("gas", kitchens, 0.9),
        ("gas", kitchens, 0.84),
    ]
    b_kind = np.concatenate([np.full(len(rows), SENSOR_TYPES.index(k)) for k, rows, _ in boards])
    b_level = np.concatenate([rows for _, rows, _ in boards])
    b_fu = np.concatenate([np.full(len(rows), f) for _, rows, f in boards])
    r = lv.rect[b_level]
    b_u = r[:, 0] + b_fu * (r[:, 1] - r[:, 0])
    b_v = r[:, 2] + np.where(b_kind == SENSOR_TYPES.index("gas"), 0.9, 0.35) * (r[:, 3] - r[:, 2])
    kind = np.concatenate([kinds, b_kind]).astype(np.int64)
    level = np.concatenate([fac.level[facility], b_level])
    building = 1 + lv.tower[level]
    n = len(kind)
    low, high, interval, base = _spec_columns(rng, kind)
    roof = np.concatenate([np.isin(facility, _pick(fac, "hydrant_box", use == "roof")), np.zeros(len(b_kind), bool)])
    low[roof] = ROOF_HYDRANT[0]
    base[roof] = rng.uniform(*ROOF_HYDRANT[1], int(roof.sum()))
    pool = np.concatenate([np.isin(facility, _pick(fac, "fire_pump_room")), np.zeros(len(b_kind), bool)])
    low[pool], high[pool] = FIRE_POOL[0], FIRE_POOL[1]
    base[pool] = rng.uniform(*FIRE_POOL[2], int(pool.sum()))
    sensors = Sensors(
        type=kind, building=building.astype(np.int64), level=level.astype(np.int64),
        facility=np.concatenate([facility, np.full(len(b_kind), -1)]).astype(np.int64),
        u=np.concatenate([fac.u[facility], b_u]), v=np.concatenate([fac.v[facility], b_v]),
        z=np.concatenate([fac.z[facility], lv.elevation[b_level] + 1.5]), low=low, high=high, interval=interval,
        base=base, status=np.full(n, "online", dtype=object), last_seen=np.zeros(n), last_value=np.zeros(n),
    )
    return sensors.take(np.lexsort((sensors.facility, sensors.type, sensors.level, sensors.building)))


def _spec_columns(rng: np.random.Generator, kind: IntArray) -> tuple[FloatArray, FloatArray, IntArray, FloatArray]:
    specs = [SPEC[t] for t in SENSOR_TYPES]
    low = np.array([s[1] for s in specs])[kind]
    high = np.array([s[2] for s in specs])[kind]
    interval = np.array([s[3] for s in specs], np.int64)[kind]
    base = rng.uniform(np.array([s[4][0] for s in specs])[kind], np.array([s[4][1] for s in specs])[kind])
    return low, high, interval, base


def in_buildings(
    rng: np.random.Generator, n: int, rect: FloatArray, height: FloatArray, candidates: IntArray
) -> Sensors:
    """``n`` sensors in ordinary buildings (rental-housing smoke alarms, electrical monitors, kitchen gas)."""
    building = np.sort(rng.choice(candidates, n, replace=True))
    kind = rng.choice([SENSOR_TYPES.index(t) for t in ("smoke", "residual_current", "gas")], n, p=[0.7, 0.2, 0.1])
    r = rect[building]
    u = r[:, 0] + rng.uniform(0.1, 0.9, n) * (r[:, 1] - r[:, 0])
    v = r[:, 2] + rng.uniform(0.1, 0.9, n) * (r[:, 3] - r[:, 2])
    z = np.round(np.floor(rng.random(n) * np.maximum(height[building] / 3.0 - 1, 1)) * 3.0 + 2.8, 2)
    low, high, interval, base = _spec_columns(rng, kind.astype(np.int64))
    none = np.full(n, -1, np.int64)
    return Sensors(kind.astype(np.int64), building, none, none, u, v, z, low, high, interval, base,
                   np.full(n, "online", dtype=object), np.zeros(n), np.zeros(n))


def finish(rng: np.random.Generator, sensors: Sensors, now: dt.datetime, protected: IntArray) -> Sensors:
    """Statuses (a few offline and faulty, never the ``protected`` ones), last seen and last value."""
    n = len(sensors.type)
    now_s = now.timestamp()
    draw = rng.random(n)
    free = np.ones(n, bool)
    free[protected] = False
    status = np.where(free & (draw < P_OFFLINE), "offline", np.where(free & (draw < P_OFFLINE + P_FAULT), "fault",
                                                                    "online")).astype(object)
    interval = sensors.interval.astype(float)
    ago = np.where(status == "offline", interval * rng.uniform(5.0, 2500.0, n), rng.uniform(0.0, 1.0, n) * interval)
    last_seen = np.floor(now_s - ago)
    noise = np.array([SPEC[t][5] for t in SENSOR_TYPES])[sensors.type]
    value = sensors.base + rng.normal(0.0, 1.0, n) * noise
    value = np.where(status == "fault", np.nan, np.maximum(value, 0.0))
    return replace(sensors, status=status, last_seen=last_seen, last_value=np.round(value, 3).astype(np.float64))


def concat(first: Sensors, second: Sensors) -> Sensors:
    """Rows of ``first`` then ``second``."""
    return Sensors(*(np.concatenate([getattr(first, f.name), getattr(second, f.name)]) for f in fields(first)))
