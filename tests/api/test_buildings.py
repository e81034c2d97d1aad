"""The inspectors' queries over real HTTP, against the sample twin and its planted imperfections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from api.main import create_app
from tests.api.backends import private_store
from tests.api.conftest import LiveServer
from twin.auth import create_key
from twin.inspection import SummaryCache, grid_summary
from twin.records import json_records
from twin.settings import Settings
from twin.store.base import FeatureQuery, Filter, Op, Store

TO_GK = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)


@pytest.fixture(scope="module")
def service(api_backend: str, sample_path: Path, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[tuple[str, dict, Store]]:
    """The service over a private copy of the sample in the backend's store, with inspector and device keys."""
    pg = request.getfixturevalue("pg_sample") if api_backend == "postgis" else None
    with private_store(api_backend, sample_path, tmp_path_factory.mktemp("inspect"), pg) as (store, _):
        keys = {role: {"X-API-Key": create_key(store, role, f"{role} 1")[1]} for role in ("inspector", "device")}
        with LiveServer(create_app(Settings(), store=store)) as live:
            yield live.url, keys, store


def _tower(store: Store, name: str) -> int:
    found = store.query("buildings", FeatureQuery(filters=(Filter("name", Op.EQ, name),)))
    return int(found.index[0])


def test_search_by_chinese_name_and_by_code(service) -> None:
    url, _, _ = service
    hits = httpx.get(f"{url}/buildings/search", params={"q": "汇德大厦"}).json()["buildings"]
    assert hits[0]["name"] == "汇德大厦" and hits[0]["height_m"] == 258.0
    code = hits[0]["code"]
    by_code = httpx.get(f"{url}/buildings/search", params={"q": code}).json()["buildings"]
    assert by_code[0]["code"] == code
    percent = httpx.get(f"{url}/buildings/search", params={"q": "%"}).json()["buildings"]
    assert percent == []  # LIKE wildcards in the text are matched literally


def test_fire_profile_of_a_tower(service) -> None:
    url, keys, store = service
    tower = _tower(store, "汇德大厦")
    assert httpx.get(f"{url}/buildings/{tower}/fire-profile").status_code == 401
    profile = httpx.get(f"{url}/buildings/{tower}/fire-profile", headers=keys["inspector"]).json()
    levels = profile["levels"]
    assert [lv["ordinal"] for lv in levels] == sorted(lv["ordinal"] for lv in levels)
    refuges = [lv for lv in levels if lv["is_refuge"]]
    assert refuges and profile["summary"]["refuge_floors"] == len(refuges)
    facilities = [f for lv in levels for f in lv["facilities"]]
    expected = store.count("fire_facilities", FeatureQuery(filters=(Filter("building_id", Op.EQ, tower),)))
    assert len(facilities) + len(profile["outdoor"]["facilities"]) == expected
    assert {"fire_control_room", "fire_pump_room", "roof_water_tank"} <= {f["type"] for f in facilities}
    roof = next(f for f in facilities if f["type"] == "roof_water_tank")
    assert roof["z_m"] > 200
    assert profile["summary"]["faulty"] == sum(f["status"] == "fault" for f in facilities)
    assert all(check["passed"] for check in profile["checks"] if check["rule"].startswith("refuge"))


def test_fire_profile_finds_the_tower_with_the_high_refuge_floor(service) -> None:
    url, keys, store = service
    tower = _tower(store, "君汇科技大厦")
    checks = httpx.get(f"{url}/buildings/{tower}/fire-profile", headers=keys["inspector"]).json()["checks"]
    failed = {c["rule"] for c in checks if not c["passed"]}
    assert "first_refuge_floor_height" in failed


def test_nearest_hydrants_to_a_building_are_measured_from_its_footprint(service) -> None:
    url, keys, store = service
    tower = _tower(store, "汇德大厦")
    body = httpx.get(f"{url}/buildings/{tower}/nearest", params={"type": "outdoor_hydrant", "k": 3},
                     headers=keys["inspector"]).json()["facilities"]
    assert len(body) == 3 and all(f["type"] == "outdoor_hydrant" for f in body)
    distances = [f["distance_m"] for f in body]
    assert distances == sorted(distances)
    footprint = shapely.transform(store.get("buildings", tower).geometry.iloc[0],
                                  lambda xy: np.column_stack(TO_GK.transform(xy[:, 0], xy[:, 1])))
    hydrant = shapely.Point(TO_GK.transform(body[0]["lon"], body[0]["lat"]))
    assert footprint.distance(hydrant) == pytest.approx(distances[0], abs=0.05)


def test_nearest_to_a_point(service) -> None:
    url, keys, _ = service
    body = httpx.get(f"{url}/nearest", params={"lon": 114.0239, "lat": 22.6119, "type": "outdoor_hydrant"},
                     headers=keys["inspector"]).json()["facilities"]
    assert len(body) == 5 and body[0]["distance_m"] <= body[-1]["distance_m"]


def test_grid_summary_adds_up(service) -> None:
    url, keys, store = service
    cells = httpx.get(f"{url}/grids/summary", params={"level": "community"}, headers=keys["inspector"]).json()["cells"]
    assert sum(c["buildings"] for c in cells) == store.count("buildings")
    assert sum(c["super_high_rises"] for c in cells) == 138
    one = httpx.get(f"{url}/grids/summary", params={"level": "community", "code": cells[0]["code"]},
                    headers=keys["inspector"]).json()["cells"]
    assert one == [cells[0]]


def _changes(before: list[dict], after: list[dict], field: str) -> dict[str, int]:
    """The cells whose ``field`` changed, and by how much."""
    old = {c["code"]: c[field] for c in before}
    return {c["code"]: c[field] - old[c["code"]] for c in after if c[field] != old[c["code"]]}


def test_grid_summary_is_cached_until_a_layer_it_counts_changes(service) -> None:
    url, keys, store = service
    get = lambda: httpx.get(f"{url}/grids/summary", headers=keys["inspector"]).json()["cells"]  # noqa: E731
    facility = store.query("fire_facilities", FeatureQuery(filters=(Filter("status", Op.EQ, "normal"),), limit=1))
    sensor = store.query("sensors", FeatureQuery(filters=(Filter("status", Op.EQ, "online"),), limit=1))
    before = get()
    assert get() == before  # the repeat (from the cache) is the same answer
    # a write through the API (fire_facilities) ...
    patched = httpx.patch(f"{url}/facilities/{int(facility.index[0])}", headers=keys["inspector"],
                          json={"status": "fault"})
    assert patched.status_code == 200
    after_patch = get()
    assert list(_changes(before, after_patch, "faulty_facilities").values()) == [1]
    # ... and a write straight to the store (sensors), as the IoT engine makes them
    store.update("sensors", int(sensor.index[0]), {"status": "offline"})
    after_sensor = get()
    assert list(_changes(after_patch, after_sensor, "offline_sensors").values()) == [1]
    assert _changes(after_patch, after_sensor, "faulty_facilities") == {}
    # a summary of another level is its own entry, and equals the summary computed afresh
    communities = httpx.get(f"{url}/grids/summary", params={"level": "community"}, headers=keys["inspector"])
    fresh = json_records(grid_summary(store, "community"), key="code")
    assert communities.json()["cells"] == fresh


def test_summary_cache_counts_hits_and_recomputes_after_a_write(service) -> None:
    _, _, store = service
    cache = SummaryCache()
    first = cache.summary(store, "grid")
    second = cache.summary(store, "grid")
    assert (cache.hits, cache.misses) == (1, 1)
    pd.testing.assert_frame_equal(first, second)
    second.loc[second.index[0], "buildings"] = -1  # a copy: changing it leaves the cache alone
    assert cache.summary(store, "grid").iloc[0]["buildings"] >= 0
    building = store.query("buildings", FeatureQuery(filters=(Filter("grid_code", Op.EQ, first.index[0]),), limit=1))
    store.update("buildings", int(building.index[0]), {"height_m": 150.0})
    third = cache.summary(store, "grid")
    assert cache.misses == 2
    assert third.iloc[0]["super_high_rises"] == first.iloc[0]["super_high_rises"] + \
        int(not building["height_m"].iloc[0] > 100)


def test_recording_an_inspection_and_a_facility_status(service) -> None:
    url, keys, store = service
    tower = _tower(store, "汇德大厦")
    facility = store.query("fire_facilities", FeatureQuery(
        filters=(Filter("building_id", Op.EQ, tower), Filter("type", Op.EQ, "hydrant_box")), limit=1))
    facility_id = int(facility.index[0])
    made = httpx.post(f"{url}/buildings/{tower}/inspections", headers=keys["inspector"],
                      json={"result": "fail", "facility_id": facility_id, "notes": "水带缺失"})
    assert made.status_code == 201
    stored = store.get("inspections", made.json()["id"]).iloc[0]
    assert stored["result"] == "fail" and stored["inspector"] == "inspector 1" and stored["notes"] == "水带缺失"
    patched = httpx.patch(f"{url}/facilities/{facility_id}", headers=keys["inspector"], json={"status": "fault"})
    assert patched.status_code == 200 and patched.json()["status"] == "fault"
    assert store.get("fire_facilities", facility_id).iloc[0]["status"] == "fault"


@pytest.mark.parametrize("method,path,body,role,status", [
    ("POST", "/buildings/{tower}/inspections", {"result": "pass"}, None, 401),
    ("POST", "/buildings/{tower}/inspections", {"result": "pass"}, "device", 403),
    ("POST", "/buildings/{tower}/inspections", {"result": "maybe"}, "inspector", 422),
    ("POST", "/buildings/{tower}/inspections", {"result": "pass", "colour": 1}, "inspector", 400),
    ("POST", "/buildings/{tower}/inspections", {"result": "pass", "facility_id": 1}, "inspector", 422),
    ("POST", "/buildings/99999999/inspections", {"result": "pass"}, "inspector", 404),
    ("PATCH", "/facilities/1", {"status": "broken"}, "inspector", 422),
    ("PATCH", "/facilities/1", {"code": "X"}, "inspector", 422),
    ("PATCH", "/facilities/99999999", {"status": "fault"}, "inspector", 404),
    ("GET", "/nearest?lon=114&lat=22.6&type=unicorn", None, "inspector", 400),
    ("GET", "/grids/summary?level=planet", None, "inspector", 400),
    ("GET", "/grids/summary?level=grid&code=nope", None, "inspector", 404),
])
def test_bad_inspection_requests(service, method, path, body, role, status) -> None:
    url, keys, store = service
    tower = _tower(store, "君汇科技大厦")
    assert store.get("fire_facilities", 1).iloc[0]["building_id"] != tower
    before = store.count("inspections")
    response = httpx.request(method, url + path.format(tower=tower), json=body,
                             headers=keys[role] if role else {})
    assert response.status_code == status, response.text
    assert response.json()["status"] == status
    assert store.count("inspections") == before
