"""Fire-code checks of one building's fire model, as pure functions over the frames the store returns.

Thresholds follow ``shared/domain.md`` (GB 50016 / GB 55037, GB 50974, GB 50116) and are all configurable through
:class:`FireCodeRules`. Each check returns :class:`Finding` objects, passed or not, so a report shows what was
checked as well as what failed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class FireCodeRules:
    """Thresholds of the checks (metres unless named otherwise)."""

    super_high_rise_m: float = 100.0
    first_refuge_max_m: float = 50.0  # GB 50016 5.5.23: first refuge floor ≤ 50 m above the rescue platform
    refuge_spacing_max_m: float = 50.0  # GB 50016 5.5.23: ≤ 50 m between refuge floors
    refuge_equipment: tuple[str, ...] = ("fire_elevator", "hydrant_box", "fire_phone", "broadcast_speaker")
    platform_tall_building_m: float = 50.0  # GB 50016 7.2.2: pads ≥ 20 × 10 m above 50 m, else ≥ 15 × 10 m
    platform_min_tall: tuple[float, float] = (20.0, 10.0)
    platform_min: tuple[float, float] = (15.0, 10.0)
    lane_min_width_m: float = 4.0  # GB 50016 7.1.8
    lane_min_clear_height_m: float = 4.0
    hydrant_radius_m: float = 150.0  # GB 50974: protection radius of an outdoor hydrant


@dataclass(frozen=True)
class Finding:
    """The outcome of one check."""

    rule: str
    clause: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def refuge_floors(building: pd.Series, levels: pd.DataFrame, rules: FireCodeRules) -> list[Finding]:
    """Refuge floors of a super high-rise: the first within reach of ladders, the rest close enough together."""
    clause = "GB 50016 5.5.23"
    if float(building["height_m"]) <= rules.super_high_rise_m:
        return []
    refuges = levels[levels["is_refuge"].fillna(False).astype(bool)].sort_values("elevation_m")
    if refuges.empty:
        return [Finding("refuge_floors_present", clause, False, "no refuge floor in a building over 100 m")]
    elevations = refuges["elevation_m"].astype(float).tolist()
    first = elevations[0]
    findings = [Finding(
        "first_refuge_floor_height", clause, first <= rules.first_refuge_max_m,
        f"first refuge floor {refuges['name'].iloc[0]} at {first:.1f} m (limit {rules.first_refuge_max_m:.0f} m)",
    )]
    gaps = [b - a for a, b in pairwise(elevations)]
    top = float(levels["elevation_m"].max())
    gaps.append(top - elevations[-1])  # from the highest refuge floor to the top floor
    worst = max(gaps)
    findings.append(Finding(
        "refuge_floor_spacing", clause, worst <= rules.refuge_spacing_max_m,
        f"largest gap between refuge floors {worst:.1f} m (limit {rules.refuge_spacing_max_m:.0f} m)",
    ))
    return findings


def refuge_equipment(levels: pd.DataFrame, facilities: pd.DataFrame, rules: FireCodeRules) -> list[Finding]:
    """Every refuge floor has a fire-elevator stop, a hydrant, a fire phone and broadcast."""
    refuge_ids = levels.index[levels["is_refuge"].fillna(False).astype(bool)]
    if len(refuge_ids) == 0:
        return []
    present = facilities.groupby("level_id")["type"].agg(set) if not facilities.empty else pd.Series(dtype=object)
    missing = []
    for level_id in refuge_ids:
        have = present.get(level_id, set())
        lacking = [t for t in rules.refuge_equipment if t not in have]
        if lacking:
            missing.append(f"{levels.loc[level_id, 'name']}: {', '.join(lacking)}")
    detail = "; ".join(missing) if missing else f"{len(refuge_ids)} refuge floors fully equipped"
    return [Finding("refuge_floor_equipment", "GB 50016 5.5.23", not missing, detail)]


def fire_elevators(building: pd.Series, facilities: pd.DataFrame, rules: FireCodeRules) -> list[Finding]:
    """High-rise buildings have at least one fire elevator."""
    count = int((facilities["type"] == "fire_elevator").sum()) if not facilities.empty else 0
    if float(building["height_m"]) <= 33.0:
        return []
    return [Finding("fire_elevator", "GB 50016 7.3.1", count >= 1, f"{count} fire elevator installations")]


def rescue_platforms(building: pd.Series, platforms: pd.DataFrame, rules: FireCodeRules) -> list[Finding]:
    """Every aerial-operation pad is large enough for the building's height, and at least one exists."""
    clause = "GB 50016 7.2.1–7.2.2"
    if float(building["height_m"]) <= rules.super_high_rise_m:
        return []
    if platforms.empty:
        return [Finding("rescue_platform_present", clause, False, "no rescue platform")]
    tall = float(building["height_m"]) > rules.platform_tall_building_m
    min_length, min_width = rules.platform_min_tall if tall else rules.platform_min
    findings = []
    for platform_id, pad in platforms.iterrows():
        length, width = float(pad["length_m"]), float(pad["width_m"])
        ok = length >= min_length and width >= min_width and pad["status"] == "normal"
        findings.append(Finding(
            "rescue_platform_size", clause, ok,
            f"pad {platform_id}: {length:.0f} × {width:.0f} m, {pad['status']} (needs ≥ {min_length:.0f} × "
            f"{min_width:.0f} m, normal)",
        ))
    return findings


def fire_lanes(lanes: pd.DataFrame, rules: FireCodeRules) -> list[Finding]:
    """Fire lanes are wide and high enough and in service."""
    findings = []
    for lane_id, lane in lanes.iterrows():
        width, height = float(lane["width_m"]), float(lane["clear_height_m"])
        ok = width >= rules.lane_min_width_m and height >= rules.lane_min_clear_height_m and lane["status"] == "normal"
        findings.append(Finding(
            "fire_lane_clearance", "GB 50016 7.1.8", ok,
            f"lane {lane_id}: {width:.1f} m wide, {height:.1f} m clear, {lane['status']} (needs ≥ "
            f"{rules.lane_min_width_m:.0f} × {rules.lane_min_clear_height_m:.0f} m)",
        ))
    return findings


def hydrant_cover(nearest_hydrant_m: float | None, rules: FireCodeRules) -> list[Finding]:
    """An outdoor hydrant lies within its protection radius of the building."""
    if nearest_hydrant_m is None:
        return [Finding("outdoor_hydrant_cover", "GB 50974", False, "no outdoor hydrant found")]
    return [Finding(
        "outdoor_hydrant_cover", "GB 50974", nearest_hydrant_m <= rules.hydrant_radius_m,
        f"nearest outdoor hydrant {nearest_hydrant_m:.0f} m away (radius {rules.hydrant_radius_m:.0f} m)",
    )]


def check_building(
    building: pd.Series,
    levels: pd.DataFrame,
    facilities: pd.DataFrame,
    platforms: pd.DataFrame,
    lanes: pd.DataFrame,
    nearest_hydrant_m: float | None,
    rules: FireCodeRules | None = None,
) -> list[Finding]:
    """Every check that applies to the building."""
    rules = rules or FireCodeRules()
    return [
        *refuge_floors(building, levels, rules),
        *refuge_equipment(levels, facilities, rules),
        *fire_elevators(building, facilities, rules),
        *rescue_platforms(building, platforms, rules),
        *fire_lanes(lanes, rules),
        *hydrant_cover(nearest_hydrant_m, rules),
    ]
