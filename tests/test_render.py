"""The pydeck renderers as pure functions: building states, colours, and what each screen draws."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from layers import Role
from twin.render import (
    TileSource,
    building_states,
    district_screen,
    grid_screen,
    load_district,
    load_grid,
    load_tower,
    tower_screen,
)
from twin.render.colors import RAMP, breaks, ramp_colors, worst_state
from twin.render.state import StateRules, status_shares
from twin.store.base import FeatureQuery, Filter, Op
from twin.store.geopackage import GeoPackageStore


@pytest.fixture(scope="module")
def store(sample_path: Path) -> GeoPackageStore:
    return GeoPackageStore(sample_path)


def test_building_states_take_the_most_urgent_rule() -> None:
    alarms = pd.DataFrame({"building_id": [1, 1, 2, 3, 4, None], "status": ["open", "acknowledged", "open",
                                                                             "resolved", "open", "open"],
                           "severity": ["pre_alarm", "fire_alarm", "threshold", "fire_alarm", "offline", "fault"]})
    faults = status_shares(pd.DataFrame({"building_id": [5, 5, 6, 6], "status": ["fault", "normal", "normal",
                                                                                 "normal"]}), "fault")
    offline = pd.Series({7: 0.5, 2: 0.9})
    states = building_states(alarms, faults, offline, StateRules(fault_share=0.05, offline_share=0.05))
    assert states.to_dict() == {1: "fire_alarm", 2: "fault", 4: "offline", 5: "fault", 7: "offline"}
    assert worst_state(["normal", "offline", "pre_alarm", "fault"]) == "pre_alarm"
    assert worst_state([]) == "normal"


def test_choropleth_breaks_and_colours() -> None:
    values = [0, 0, 0, 1, 2, 5, 10, 50, 100, float("nan")]
    cuts = breaks(values)
    assert len(cuts) == len(RAMP) - 1 and cuts == sorted(cuts)
    colours = ramp_colors(values, cuts)
    assert colours[0] == RAMP[0] and colours[8] == RAMP[-1] and colours[-1][3] < RAMP[0][3]
    assert breaks([3, 3, 3]) == sorted(breaks([3, 3, 3]))


def _layers(document: dict) -> dict[str, dict]:
    return {layer["id"]: layer for layer in document["deck"]["layers"]}


def test_district_screen_for_the_service_uses_tiles_and_no_basemap_provider(store: GeoPackageStore) -> None:
    data = load_district(store, role=Role.OPERATOR, figure="open_alarms", inline=False)
    document = district_screen(data, TileSource("/b/{z}/{y}/{x}", "/s/{z}/{y}/{x}")).to_dict()
    layers = _layers(document)
    assert layers["buildings"]["@@type"] == "MVTLayer" and layers["buildings"]["loadOptions"]["worker"] is False
    assert layers["sensors"]["minZoom"] == 15
    assert "mapStyle" not in document["deck"] and "mapProvider" not in document["deck"]
    text = json.dumps(document, ensure_ascii=False)
    assert "http://" not in text and "https://" not in text
    assert len(layers["towers"]["data"]) == 138
    assert document["twin"]["controls"]["figure"]["current"] == "open_alarms"
    assert "火警" in json.dumps(document["twin"]["legend"], ensure_ascii=False)
    assert document["twin"]["live"]["states"]


def test_district_screen_inline_colours_buildings_by_state(store: GeoPackageStore) -> None:
    data = load_district(store, role=Role.OPERATOR, inline=True)
    layers = _layers(district_screen(data).to_dict())
    features = layers["buildings"]["data"]["features"]
    assert len(features) == store.count("buildings")
    fire = [f for f in features if f["properties"]["state"] == "fire_alarm"]
    assert fire and "状态 火警" in fire[0]["properties"]["tip"]


def test_public_district_has_no_staff_data(store: GeoPackageStore) -> None:
    data = load_district(store, role=Role.PUBLIC, figure="open_alarms", inline=False)
    assert data.figure == "population" and data.hydrants is None and data.states.empty and not data.alarms


def test_tower_screen_has_floors_refuges_facilities_and_panels(store: GeoPackageStore) -> None:
    towers = store.query("buildings").sort_values("height_m", ascending=False)
    screen = tower_screen(load_tower(store, int(towers.index[0])))
    layers = _layers(screen.to_dict())
    slabs = layers["levels"]["data"]
    query = FeatureQuery(filters=(Filter("building_id", Op.EQ, int(towers.index[0])),))
    assert len(slabs) == store.count("levels", query)
    refuge = [s for s in slabs if s["refuge"]]
    assert refuge and all(len(point) == 3 for point in slabs[0]["polygon"])
    assert [s["polygon"][0][2] for s in slabs] == sorted(s["polygon"][0][2] for s in slabs)
    assert "消防设施" in "".join(refuge[0]["panel"]["lines"])
    assert all(len(f["position"]) == 3 for f in layers["facilities"]["data"])


def test_tower_screen_estimates_floors_of_a_building_without_a_floor_model(store: GeoPackageStore) -> None:
    low = store.query("buildings").sort_values("height_m").index[0]
    screen = tower_screen(load_tower(store, int(low)))
    assert screen.panel is not None and "按层数估算" in "".join(screen.panel["lines"])


def test_grid_screen_for_public_and_staff(store: GeoPackageStore) -> None:
    code = store.query("grids").query("level == 'grid'")["code"].iloc[0]
    public = _layers(grid_screen(load_grid(store, code, role=Role.PUBLIC)).to_dict())
    staff = _layers(grid_screen(load_grid(store, code, role=Role.INSPECTOR)).to_dict())
    assert "buildings" in public and "sensors" not in public
    assert set(public) <= set(staff)
