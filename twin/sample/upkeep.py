"""Upkeep of the fire facilities: inspection history, status and inspection dates.

A few thousand past inspections (about 88 % pass, 7 % fail, 5 % rectified) plus a yearly fire-safety check of
each tower. A facility whose latest inspection failed is in fault; the others are mostly normal, a few percent
faulty and a handful disabled. Inspections recur every 90 days (extinguishers, hydrant boxes), 180 days
(outdoor hydrants) or yearly, and some are overdue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.sample.common import FloatArray, IntArray
from twin.sample.facilities import PERIOD_DAYS, TYPES, Facilities
from twin.sample.names import person_names

N_INSPECTIONS = 3000
P_FAULT, P_DISABLED = 0.028, 0.004
RESULTS = ("pass", "fail", "rectified")
_PASS_NOTES = ("外观完好，功能正常", "压力正常", "标识清晰，通道畅通", "测试合格", "")
_FAIL_NOTES = {
    "hydrant_box": "栓口压力不足，水带老化", "extinguisher": "压力指针位于红区", "smoke_detector": "探测器污染，报故障",
    "heat_detector": "探测器报故障", "fire_door": "闭门器损坏，无法自行关闭", "evacuation_stair": "楼梯间堆放杂物",
    "manual_call_point": "按钮破损", "broadcast_speaker": "广播无声", "fire_phone": "通话不清",
    "sprinkler_valve": "信号阀未处于全开状态", "outdoor_hydrant": "消火栓被车辆遮挡", "roof_water_tank": "水位偏低",
}


@dataclass(frozen=True)
class Upkeep:
    """Facility status and dates (days since epoch), and the inspection rows (facility row -1: whole building)."""

    status: npt.NDArray[np.object_]
    last_inspected: FloatArray
    next_inspection: FloatArray
    insp_building: IntArray
    insp_facility: IntArray
    insp_inspector: npt.NDArray[np.object_]
    insp_at: FloatArray  # unix seconds
    insp_result: npt.NDArray[np.object_]
    insp_notes: npt.NDArray[np.object_]


def _local_day(seconds: FloatArray) -> FloatArray:
    """Calendar day (days since epoch) in Shenzhen (UTC+8) of a UTC instant."""
    return np.floor((seconds + 8 * 3600) / 86_400.0)


def upkeep(rng: np.random.Generator, fac: Facilities, building_of_tower: IntArray, now: dt.datetime) -> Upkeep:
    """Inspections of tower facilities and each facility's status and inspection dates."""
    now_s = now.timestamp()
    today = _local_day(np.array([now_s]))[0]
    n = len(fac.type)
    names = fac.type_name
    period = np.array([PERIOD_DAYS.get(t, 365) for t in TYPES], float)[fac.type]
    owned = np.flatnonzero(fac.tower >= 0)
    picked = np.sort(rng.choice(owned, min(N_INSPECTIONS, len(owned)), replace=False))
    towers = np.arange(len(building_of_tower))
    insp_fac = np.concatenate([picked, np.full(len(towers), -1)])
    insp_bld = np.concatenate([building_of_tower[fac.tower[picked]], building_of_tower[towers]])
    m = len(insp_fac)
    local_start = (_local_day(np.array([now_s]))[0] - rng.integers(1, 400, m)) * 86_400.0 - 8 * 3600
    at = np.floor(local_start + rng.uniform(9 * 3600, 17.5 * 3600, m))
    at = np.minimum(at, now_s - 3600)
    result = rng.choice(np.array(RESULTS, dtype=object), m, p=[0.88, 0.07, 0.05])
    kind = np.where(insp_fac >= 0, names[np.maximum(insp_fac, 0)], "building")
    notes = np.empty(m, dtype=object)
    notes[:] = rng.choice(np.array(_PASS_NOTES, dtype=object), m)
    fail = result == "fail"
    notes[fail] = [_FAIL_NOTES.get(str(k), "存在消防安全隐患，责令整改") for k in kind[fail]]
    notes[result == "rectified"] = "已整改，复查合格"
    notes[kind == "building"] = np.where(fail[kind == "building"], "年度消防安全检查：存在隐患，限期整改",
                                         "年度消防安全检查：合格")
    notes[notes == ""] = None
    inspectors = person_names(rng, 14)
    order = np.argsort(at, kind="stable")
    insp_fac, insp_bld, at, result, notes = insp_fac[order], insp_bld[order], at[order], result[order], notes[order]

    status = rng.choice(np.array(["normal", "fault", "disabled"], dtype=object), n,
                        p=[1 - P_FAULT - P_DISABLED, P_FAULT, P_DISABLED])
    last = today - np.floor(rng.random(n) * period * 1.08)
    has = insp_fac >= 0
    latest = np.full(n, np.nan)
    latest_result = np.empty(n, dtype=object)
    latest[insp_fac[has]] = _local_day(at[has])  # later rows overwrite earlier: the latest wins
    latest_result[insp_fac[has]] = result[has]
    inspected = ~np.isnan(latest)
    last[inspected] = latest[inspected]
    status[latest_result == "fail"] = "fault"
    return Upkeep(
        status=status, last_inspected=last, next_inspection=last + period, insp_building=insp_bld,
        insp_facility=insp_fac, insp_inspector=inspectors[rng.integers(0, len(inspectors), m)].astype(object),
        insp_at=at, insp_result=result, insp_notes=notes,
    )
