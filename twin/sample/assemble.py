"""Turn the generator's street-frame arrays into the catalogue's frames (lon/lat, catalogue dtypes, ids from 1)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from twin.sample.common import (
    FloatArray,
    IntArray,
    StreetFrame,
    dates,
    make_frame,
    rect_rings,
    rings_to_lonlat,
    to_lonlat,
    utc_ms,
)
from twin.sample.district import Roads
from twin.sample.facilities import ABBR, TYPES, Facilities
from twin.sample.history import History
from twin.sample.names import ints_to_str
from twin.sample.sensors import SENSOR_TYPES, SPEC, Sensors
from twin.sample.towers import Levels, TowerPlan
from twin.sample.upkeep import Upkeep

ObjArray = npt.NDArray[np.object_]


def polygons(frame: StreetFrame, rect: FloatArray) -> ObjArray:
    """Street-frame rectangles (u0, u1, v0, v1) → lon/lat polygons."""
    return np.asarray(shapely.polygons(rings_to_lonlat(frame, rect_rings(*rect.T))), dtype=object)


def metric_to_lonlat(geoms: ObjArray) -> ObjArray:
    """EPSG:4547 geometries → lon/lat."""
    return np.asarray(shapely.transform(geoms, lambda c: np.stack(to_lonlat(c[:, 0], c[:, 1]), axis=1)), dtype=object)


def points_z(frame: StreetFrame, u: FloatArray, v: FloatArray, z: FloatArray) -> ObjArray:
    """Street-frame points with height → lon/lat PointZ."""
    lon, lat = frame.to_lonlat(u, v)
    return np.asarray(shapely.points(np.stack([lon, lat, z], axis=1)), dtype=object)


def nullable(rows: IntArray, offset: int = 1) -> FloatArray:
    """Row indices → ids (row + offset), NaN where the row is -1."""
    return np.where(rows >= 0, rows + offset, np.nan)


def levels_frame(frame: StreetFrame, lv: Levels) -> pd.DataFrame:
    """The ``levels`` layer; tower ``t`` is building ``t + 2`` (id 1 is the station)."""
    return make_frame("levels", {
        "building_id": lv.tower + 2, "ordinal": lv.ordinal, "name": lv.name, "elevation_m": lv.elevation,
        "height_m": lv.height, "is_refuge": lv.is_refuge, "use": lv.use,
    }, polygons(frame, lv.rect))


def facility_codes(fac: Facilities, lv: Levels, building_code: ObjArray) -> ObjArray:
    """``<building code>-<level>-<type initials><nn>``; road hydrants ``SWXHS-<nnnnn>``; site ones ``…-SW-…``."""
    n = len(fac.type)
    group = np.where(fac.level >= 0, fac.level, -1 - fac.tower)  # sequence per level, or per tower outdoors
    order = np.lexsort((np.arange(n), fac.type, group))
    key = np.stack([group[order], fac.type[order]], axis=1)
    new = np.r_[True, (np.diff(key, axis=0) != 0).any(axis=1)]
    starts = np.flatnonzero(new)
    seq = np.empty(n, np.int64)
    seq[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) + 1
    abbr = np.asarray([ABBR[t] for t in TYPES])[fac.type]
    level_name = np.where(fac.level >= 0, lv.name[np.maximum(fac.level, 0)].astype(str), "SW")
    owner = building_code[np.maximum(fac.tower, 0) + 1].astype(str)
    body = np.strings.add(np.strings.add(owner, "-"), np.strings.add(level_name, "-"))
    codes = np.strings.add(np.strings.add(body, abbr), ints_to_str(seq, 2))
    road = (fac.tower < 0) & (fac.level < 0)
    codes[road] = np.strings.add("SWXHS-", ints_to_str(seq[road], 5))
    return codes.astype(object)


def facilities_frame(frame: StreetFrame, fac: Facilities, up: Upkeep, codes: ObjArray) -> pd.DataFrame:
    """The ``fire_facilities`` layer (PointZ)."""
    return make_frame("fire_facilities", {
        "code": codes, "type": fac.type_name, "building_id": nullable(fac.tower, 2), "level_id": nullable(fac.level),
        "status": up.status, "last_inspected": dates(up.last_inspected), "next_inspection": dates(up.next_inspection),
    }, points_z(frame, fac.u, fac.v, fac.z))


def platforms_frame(frame: StreetFrame, plan: TowerPlan, statuses: ObjArray) -> pd.DataFrame:
    """The ``rescue_platforms`` layer."""
    size = plan.platform_size
    return make_frame("rescue_platforms", {
        "building_id": np.arange(len(size)) + 2, "length_m": np.round(size[:, 0], 1),
        "width_m": np.round(size[:, 1], 1), "status": statuses,
    }, polygons(frame, plan.platform))


def lanes_frame(frame: StreetFrame, plan: TowerPlan, statuses: ObjArray) -> pd.DataFrame:
    """The ``fire_lanes`` layer: a closed ring around each tower's podium, passing outside its platform."""
    coords = rings_to_lonlat(frame, plan.lane_ring)
    return make_frame("fire_lanes", {
        "building_id": np.arange(len(coords)) + 2, "width_m": plan.lane_width,
        "clear_height_m": plan.lane_clear_height, "status": statuses,
    }, np.asarray(shapely.linestrings(coords), dtype=object))


def sensors_frame(frame: StreetFrame, s: Sensors) -> pd.DataFrame:
    """The ``sensors`` layer (PointZ)."""
    prefix = np.asarray([SPEC[t][6] for t in SENSOR_TYPES])[s.type]
    codes = np.strings.add(prefix, ints_to_str(np.arange(1, len(s.type) + 1), 7)).astype(object)
    units = np.asarray([SPEC[t][0] for t in SENSOR_TYPES], dtype=object)[s.type]
    return make_frame("sensors", {
        "code": codes, "type": s.type_name, "building_id": nullable(s.building), "level_id": nullable(s.level),
        "facility_id": nullable(s.facility), "unit": units, "threshold_low": s.low, "threshold_high": s.high,
        "reporting_interval_s": s.interval, "status": s.status, "last_value": s.last_value,
        "last_seen": utc_ms(s.last_seen),
    }, points_z(frame, s.u, s.v, s.z))


def roads_frame(frame: StreetFrame, roads: Roads) -> pd.DataFrame:
    """The ``roads`` layer."""
    lines = []
    for coords in roads.lines():
        lon, lat = frame.to_lonlat(coords[:, 0], coords[:, 1])
        lines.append(shapely.LineString(np.stack([lon, lat], axis=1)))
    return make_frame("roads", {
        "name": roads.name, "road_class": roads.road_class, "width_m": roads.width, "lanes": roads.lanes,
    }, np.asarray(lines, dtype=object))


def readings_frame(h: History) -> pd.DataFrame:
    """The ``readings`` table."""
    return make_frame("readings", {"sensor_id": h.sensor + 1, "ts": utc_ms(h.ts), "value": h.value})


def alarms_frame(
    h: History, s: Sensors, grid_code: ObjArray, building_name: ObjArray, level_name: ObjArray
) -> pd.DataFrame:
    """The ``alarms`` table, with a Chinese message naming the building, floor and reading."""
    a = h.alarms
    rows = np.asarray(a["sensor"], np.int64)
    building, level = s.building[rows], s.level[rows]
    units = np.asarray([SPEC[t][0] for t in SENSOR_TYPES], dtype=object)[s.type[rows]]
    messages = []
    for kind, severity, b, lvl, value, unit in zip(a["type"], a["severity"], building, level, a["value"], units,
                                                   strict=True):
        where = f"{building_name[b] or '建筑'}{'' if lvl < 0 else ' ' + str(level_name[lvl])}"
        text = _TEXT["fire_alarm"] if severity == "fire_alarm" else _TEXT.get(str(kind), str(kind))
        shown = "" if value is None or unit == "state" else f"（{value:g} {unit}）"
        messages.append(f"{where} {text}{shown}")
    times = {k: np.array([np.nan if t is None else t for t in a[k]], float) for k in ("opened", "ack", "res")}
    return make_frame("alarms", {
        "sensor_id": rows + 1, "building_id": building + 1, "level_id": nullable(level),
        "grid_code": grid_code[building],
        "alarm_type": a["type"], "severity": a["severity"], "status": a["status"], "message": messages,
        "opened_at": utc_ms(times["opened"]), "acknowledged_at": utc_ms(times["ack"]),
        "acknowledged_by": np.asarray(a["ack_by"], dtype=object), "resolved_at": utc_ms(times["res"]),
        "resolved_by": np.asarray(a["res_by"], dtype=object),
    })


_TEXT = {
    "fire_alarm": "火警：同层两只独立烟感相继报警",
    "smoke": "烟感报警",
    "heat": "温感报警",
    "hydrant_pressure_low": "消火栓管网压力低于下限",
    "residual_current_high": "剩余电流超限",
    "cable_temperature_high": "线缆温度超限",
    "fire_door_open": "常闭防火门未关闭",
    "tank_level_low": "消防水箱水位低",
    "sprinkler_pressure_low": "喷淋管网压力低",
    "gas_leak": "可燃气体浓度超限",
    "offline": "设备离线",
    "device_fault": "设备故障",
}


def inspections_frame(up: Upkeep) -> pd.DataFrame:
    """The ``inspections`` table."""
    return make_frame("inspections", {
        "building_id": up.insp_building + 1, "facility_id": nullable(up.insp_facility),
        "inspector": up.insp_inspector, "inspected_at": utc_ms(up.insp_at), "result": up.insp_result,
        "notes": up.insp_notes,
    })
