"""Fire-code checks on small hand-made buildings, where the right answer is known."""

from __future__ import annotations

import pandas as pd
import pytest

from twin.firecode import FireCodeRules, check_building, fire_lanes, refuge_equipment, refuge_floors, rescue_platforms

RULES = FireCodeRules()


def _levels(refuge_at: list[float], top: float = 200.0, storey: float = 5.0) -> pd.DataFrame:
    elevations = [i * storey for i in range(int(top / storey) + 1)]
    return pd.DataFrame({
        "name": [f"{i + 1}F" for i in range(len(elevations))],
        "elevation_m": elevations,
        "is_refuge": [e in refuge_at for e in elevations],
    }, index=pd.Index(range(1, len(elevations) + 1), name="id"))


TOWER = pd.Series({"height_m": 200.0})


def test_refuge_floors_within_the_limits_pass() -> None:
    findings = refuge_floors(TOWER, _levels([45.0, 90.0, 135.0, 180.0]), RULES)
    assert [f.passed for f in findings] == [True, True]


def test_first_refuge_floor_too_high_fails_and_says_where() -> None:
    [first, spacing] = refuge_floors(TOWER, _levels([55.0, 100.0, 150.0, 195.0]), RULES)
    assert not first.passed and "55.0 m" in first.detail
    assert spacing.passed


def test_gap_between_refuge_floors_too_large_fails() -> None:
    [first, spacing] = refuge_floors(TOWER, _levels([45.0, 100.0, 150.0, 195.0]), RULES)
    assert first.passed and not spacing.passed and "55.0 m" in spacing.detail


def test_top_floors_too_far_above_the_last_refuge_floor_fail() -> None:
    [_, spacing] = refuge_floors(TOWER, _levels([45.0, 90.0]), RULES)
    assert not spacing.passed


def test_no_refuge_floor_at_all_fails_but_low_buildings_are_not_checked() -> None:
    [missing] = refuge_floors(TOWER, _levels([]), RULES)
    assert not missing.passed
    assert refuge_floors(pd.Series({"height_m": 100.0}), _levels([]), RULES) == []


def test_thresholds_are_configurable() -> None:
    strict = FireCodeRules(first_refuge_max_m=40.0)
    [first, _] = refuge_floors(TOWER, _levels([45.0, 90.0, 135.0, 180.0]), strict)
    assert not first.passed


def test_refuge_floor_equipment_names_what_is_missing() -> None:
    levels = _levels([45.0], top=60.0)
    refuge_id = levels.index[levels["is_refuge"]][0]
    facilities = pd.DataFrame({"level_id": [refuge_id] * 3, "type": ["fire_elevator", "hydrant_box", "fire_phone"]})
    [finding] = refuge_equipment(levels, facilities, RULES)
    assert not finding.passed and "broadcast_speaker" in finding.detail


@pytest.mark.parametrize("height,length,width,ok", [(200.0, 20, 10, True), (200.0, 15, 10, False),
                                                     (120.0, 25, 9, False)])
def test_rescue_platform_size_depends_on_height(height: float, length: float, width: float, ok: bool) -> None:
    pads = pd.DataFrame({"length_m": [length], "width_m": [width], "status": ["normal"]}, index=[7])
    [finding] = rescue_platforms(pd.Series({"height_m": height}), pads, RULES)
    assert finding.passed is ok


def test_fire_lanes_narrower_than_4_m_fail() -> None:
    lanes = pd.DataFrame({"width_m": [4.0, 3.5], "clear_height_m": [4.5, 5.0], "status": ["normal", "normal"]},
                         index=[1, 2])
    assert [f.passed for f in fire_lanes(lanes, RULES)] == [True, False]


def test_check_building_collects_every_rule() -> None:
    levels = _levels([45.0, 90.0, 135.0, 180.0])
    findings = check_building(TOWER, levels, pd.DataFrame({"level_id": [], "type": []}),
                              pd.DataFrame(columns=["length_m", "width_m", "status"]),
                              pd.DataFrame(columns=["width_m", "clear_height_m", "status"]), 200.0)
    rules = {f.rule: f.passed for f in findings}
    assert rules["first_refuge_floor_height"] and rules["refuge_floor_spacing"]
    assert not rules["fire_elevator"] and not rules["rescue_platform_present"]
    assert not rules["outdoor_hydrant_cover"] and not rules["refuge_floor_equipment"]
