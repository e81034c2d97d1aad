"""Contract: validated, transactional writes — insert, update, delete, replace, conflicts, threads, durability."""

from __future__ import annotations

import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from tests.store.conftest import T0
from tests.store.helpers import assert_same_frame
from twin.errors import Conflict, InvalidQuery, NotFound, ValidationFailed
from twin.store.base import BBox, FeatureQuery, Filter, Op

NEW_PLACE = box(114.0430, 22.6180, 114.0434, 22.6184)  # empty corner of the fixture


def _buildings(n: int = 3, **overrides) -> gpd.GeoDataFrame:
    records = [{"code": f"N{i}", "use": "office", "height_m": 30.0 + i, "floors_above": 10 + i, "name": f"new {i}"}
               for i in range(n)]
    frame = pd.DataFrame.from_records(records, columns=["code", "use", "height_m", "floors_above", "name"])
    for key, value in overrides.items():
        frame[key] = value
    geoms = [box(114.0425 + 0.0005 * i, 22.6005, 114.0428 + 0.0005 * i, 22.6008) for i in range(n)]
    return gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:4326")


def _snapshot(store):
    return {layer: store.query(layer) for layer in ("buildings", "grids", "sensors", "readings", "alarms")}


def _assert_unchanged(store, before):
    for layer, frame in before.items():
        assert_same_frame(store.query(layer), frame)


def test_insert_assigns_new_ids_and_stores_the_values(store):
    ids = store.insert("buildings", _buildings(3))
    assert ids == [52, 53, 54]
    assert store.count("buildings") == 54
    got = store.get("buildings", 53)
    assert got["code"].iloc[0] == "N1" and got["height_m"].iloc[0] == 31.0
    assert got.geometry.iloc[0].equals(_buildings(3).geometry.iloc[1])
    assert pd.isna(got["address"].iloc[0])


def test_inserted_features_are_found_by_spatial_queries(store):
    ids = store.insert("buildings", _buildings(2))
    found = store.query("buildings", FeatureQuery(bbox=BBox(114.0424, 22.6004, 114.0434, 22.6009)))
    assert list(found.index) == ids


def test_insert_with_explicit_ids(store):
    frame = _buildings(2)
    frame["id"] = [1000, 500]
    assert store.insert("buildings", frame) == [1000, 500]
    assert store.get("buildings", 500)["code"].iloc[0] == "N1"
    assert store.insert("buildings", _buildings(1)) == [1001]


def test_ids_of_deleted_rows_are_not_reused(store):
    assert store.delete("buildings", [51]) == 1
    assert store.insert("buildings", _buildings(1)) == [52]


def test_insert_into_tables(store):
    readings = pd.DataFrame({"sensor_id": [9, 9], "ts": ["2026-11-25T09:00:00Z", "2026-11-25T18:00:00.25+08:00"],
                             "value": [1.5, 2]})
    ids = store.insert("readings", readings)
    assert ids == [61, 62]
    got = store.query("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, 9),)))
    assert list(got.index) == ids
    assert list(got["ts"]) == [pd.Timestamp("2026-11-25T09:00:00Z"), pd.Timestamp("2026-11-25T10:00:00.250Z")]
    assert list(got["value"]) == [1.5, 2.0]


def test_readings_unique_key_is_a_conflict_and_writes_nothing(store):
    clash = pd.DataFrame({"sensor_id": [7, 1], "ts": [T0, T0], "value": [1.0, 2.0]})  # (1, T0) exists
    with pytest.raises(Conflict):
        store.insert("readings", clash)
    assert store.count("readings") == 60
    assert store.count("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, 7),))) == 0
    twice = pd.DataFrame({"sensor_id": [8, 8], "ts": [T0, T0], "value": [1.0, 2.0]})
    with pytest.raises(Conflict):
        store.insert("readings", twice)
    assert store.count("readings") == 60


def test_insert_reprojects_from_another_crs(store):
    frame = _buildings(1)
    metric = frame.to_crs("EPSG:4547")
    [new] = store.insert("buildings", metric)
    got = store.get("buildings", new).geometry.iloc[0]
    assert got.equals_exact(frame.geometry.iloc[0], tolerance=1e-9)
    assert 114 < got.centroid.x < 115


def test_polygons_are_promoted_in_multipolygon_layers(store):
    grid = gpd.GeoDataFrame({"code": ["G99"], "level": ["grid"], "name": ["新格"], "parent_code": ["C2"]},
                            geometry=[box(114.040, 22.600, 114.041, 22.601)], crs=4326)
    [new] = store.insert("grids", grid)
    assert store.get("grids", new).geometry.iloc[0].geom_type == "MultiPolygon"


def test_empty_insert_writes_nothing(store):
    assert store.insert("buildings", _buildings(0)) == []
    assert store.count("buildings") == 51


BOWTIE = Polygon([(114.0425, 22.6005), (114.0428, 22.6008), (114.0428, 22.6005), (114.0425, 22.6008)])

BAD_LAST_ROW = [
    ("geometry", BOWTIE, "Self-intersection"),
    ("geometry", Point(114.0425, 22.6005), "Point"),
    ("geometry", Polygon(), "empty"),
    ("geometry", None, "missing"),
    ("height_m", None, "required"),
    ("height_m", "tall", "number"),
    ("floors_above", 500, "maximum"),
    ("floors_above", -1, "minimum"),
    ("floors_above", 2.5, "integer"),
    ("use", "castle", "castle"),
    ("year_built", "1999x", "integer"),
]


@pytest.mark.parametrize(("field", "value", "reason"), BAD_LAST_ROW, ids=lambda v: str(v)[:20])
def test_a_bad_last_row_rejects_the_whole_batch(store, field, value, reason):
    before = _snapshot(store)
    frame = _buildings(4)
    if field == "geometry":
        frame = frame.set_geometry([*frame.geometry.iloc[:3], value], crs=4326)
    else:
        column = frame[field] if field in frame.columns else pd.Series([2000] * 4)
        frame[field] = column.astype(object)
        frame.loc[3, field] = value
    with pytest.raises(ValidationFailed) as err:
        store.insert("buildings", frame)
    assert err.value.row == 4 and err.value.field == field
    assert reason.lower() in str(err.value).lower()
    assert "row 4" in str(err.value)
    _assert_unchanged(store, before)


@pytest.mark.parametrize("frame", [
    _buildings(2).assign(colour="red"),
    _buildings(2).drop(columns=["height_m"]),
    _buildings(2).set_crs(None, allow_override=True),
    pd.DataFrame(_buildings(2).drop(columns="geometry")),
    _buildings(2).assign(id=[7, 7]),
], ids=["unknown-column", "missing-required", "no-crs", "no-geometry", "duplicate-ids-in-batch"])
def test_frames_that_do_not_match_the_catalogue_are_refused(store, frame):
    before = _snapshot(store)
    with pytest.raises(ValidationFailed):
        store.insert("buildings", frame)
    _assert_unchanged(store, before)


def test_wrong_dimension_and_naive_times_are_refused(store):
    before = _snapshot(store)
    sensor = gpd.GeoDataFrame({"code": ["S900"], "type": ["smoke"], "reporting_interval_s": [60], "status": ["online"]},
                              geometry=[Point(114.03, 22.61)], crs=4326)
    with pytest.raises(ValidationFailed, match="z coordinate"):
        store.insert("sensors", sensor)
    naive = sensor.set_geometry([Point(114.03, 22.61, 5)], crs=4326).assign(last_seen=[pd.Timestamp("2026-11-25")])
    with pytest.raises(ValidationFailed, match="timezone"):
        store.insert("sensors", naive)
    _assert_unchanged(store, before)


def test_existing_ids_are_a_conflict_and_nothing_is_written(store):
    before = _snapshot(store)
    frame = _buildings(3)
    frame["id"] = [900, 901, 5]
    with pytest.raises(Conflict, match="5"):
        store.insert("buildings", frame)
    _assert_unchanged(store, before)


def test_update_fields_and_geometry(store):
    store.update("buildings", 5, {"height_m": 88, "name": None, "geometry": NEW_PLACE, "year_built": "2001"})
    got = store.get("buildings", 5)
    assert got["height_m"].iloc[0] == 88.0 and pd.isna(got["name"].iloc[0]) and got["year_built"].iloc[0] == 2001
    assert got.geometry.iloc[0].equals(NEW_PLACE)
    new_box = BBox(*NEW_PLACE.bounds)
    assert list(store.query("buildings", FeatureQuery(bbox=new_box)).index) == [5]
    old = store.query("buildings", FeatureQuery(bbox=BBox(114.0206, 22.6165, 114.0207, 22.6166)))
    assert 5 not in old.index


def test_update_time_fields_and_tables(store):
    store.update("sensors", 1, {"last_seen": "2026-11-26T10:00:00+08:00", "status": "alarm"})
    got = store.get("sensors", 1)
    assert got["last_seen"].iloc[0] == pd.Timestamp("2026-11-26T02:00:00Z") and got["status"].iloc[0] == "alarm"
    store.update("alarms", 2, {"status": "resolved", "resolved_at": T0, "resolved_by": "operator 1"})
    assert store.get("alarms", 2)["resolved_by"].iloc[0] == "operator 1"


@pytest.mark.parametrize(("changes", "error"), [
    ({"height": 3}, ValidationFailed),
    ({"height_m": None}, ValidationFailed),
    ({"height_m": -5}, ValidationFailed),
    ({"use": "castle"}, ValidationFailed),
    ({"id": 99}, ValidationFailed),
    ({"geometry": Point(114.03, 22.61)}, ValidationFailed),
    ({"geometry": BOWTIE}, ValidationFailed),
    ({"height_m": 20, "floors_above": "many"}, ValidationFailed),
])
def test_bad_updates_change_nothing(store, changes, error):
    before = _snapshot(store)
    with pytest.raises(error):
        store.update("buildings", 5, changes)
    _assert_unchanged(store, before)


def test_update_unknown_id_is_not_found(store):
    with pytest.raises(NotFound):
        store.update("buildings", 999, {"height_m": 3})
    with pytest.raises(NotFound):
        store.update("buildings", 999, {})
    store.update("buildings", 5, {})
    assert store.count("buildings") == 51


def test_update_into_a_duplicate_key_is_a_conflict(store):
    before = _snapshot(store)
    with pytest.raises(Conflict):
        store.update("readings", 2, {"ts": T0})  # sensor 1 already has a reading at T0
    _assert_unchanged(store, before)


def test_delete_removes_rows_and_index_entries(store):
    assert store.delete("buildings", [1, 2, 999]) == 2
    assert store.count("buildings") == 49
    assert 1 not in store.query("buildings", FeatureQuery(bbox=BBox(114.0205, 22.6015, 114.021, 22.602))).index
    with pytest.raises(NotFound):
        store.get("buildings", 1)
    assert store.delete("buildings", [1]) == 0
    assert store.delete("buildings", []) == 0
    assert store.delete("readings", np.array([1, 2, 3])) == 3


def test_delete_bad_ids_are_invalid(store):
    with pytest.raises(InvalidQuery):
        store.delete("buildings", ["one"])
    with pytest.raises(InvalidQuery):
        store.delete("buildings", "1")
    assert store.count("buildings") == 51


def test_replace_layer_replaces_everything(store):
    frame = _buildings(5)
    assert store.replace_layer("buildings", frame) == 5
    got = store.query("buildings")
    assert list(got.index) == [1, 2, 3, 4, 5] and list(got["code"]) == list(frame["code"])
    assert store.count("buildings", FeatureQuery(bbox=BBox(114.0424, 22.6004, 114.0434, 22.6009))) == 2
    assert store.insert("buildings", _buildings(1)) == [6]


def test_replace_layer_keeps_given_ids_and_the_spatial_index(store, twin_data):
    frame = twin_data.frames["buildings"].iloc[::-1]
    assert store.replace_layer("buildings", frame) == 51
    assert_same_frame(store.query("buildings"), twin_data.expected("buildings"))
    probe = BBox(114.0205, 22.6015, 114.0210, 22.6020)
    assert list(store.query("buildings", FeatureQuery(bbox=probe)).index) == [1]
    store.update("buildings", 1, {"geometry": NEW_PLACE})
    assert list(store.query("buildings", FeatureQuery(bbox=BBox(*NEW_PLACE.bounds))).index) == [1]


def test_replace_layer_with_a_bad_row_keeps_the_old_content(store):
    before = _snapshot(store)
    frame = _buildings(4)
    frame.loc[3, "use"] = "castle"
    with pytest.raises(ValidationFailed):
        store.replace_layer("buildings", frame)
    readings = pd.DataFrame({"sensor_id": [1, 1], "ts": [T0, T0], "value": [1.0, 1.0]})
    with pytest.raises(Conflict):
        store.replace_layer("readings", readings)
    _assert_unchanged(store, before)


def test_replace_layer_with_nothing_empties_it(store):
    empty = gpd.GeoDataFrame({"name": [], "road_class": []}, geometry=gpd.GeoSeries([], crs=4326))
    assert store.replace_layer("roads", empty) == 0
    assert store.count("roads") == 0 and len(store.query("roads")) == 0
    assert store.nearest("roads", Point(114.03, 22.61), k=2).empty
    store.insert("roads", gpd.GeoDataFrame({"name": ["r"], "road_class": ["local"]},
                                           geometry=[LineString([(114.03, 22.6), (114.03, 22.7)])], crs=4326))
    assert list(store.nearest("roads", Point(114.03, 22.61), k=2).index) == [1]


def test_concurrent_writers_all_land(store):
    threads, errors, ids = [], [], []
    lock = threading.Lock()

    def writer(worker: int) -> None:
        try:
            for i in range(10):
                frame = _buildings(1, code=f"T{worker}-{i}")
                new = store.insert("buildings", frame)
                store.update("buildings", new[0], {"floors_above": worker})
                store.count("buildings", FeatureQuery(bbox=BBox(114.02, 22.60, 114.05, 22.62)))
                with lock:
                    ids.extend(new)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    for worker in range(8):
        threads.append(threading.Thread(target=writer, args=(worker,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ids) == len(set(ids)) == 80
    assert store.count("buildings") == 51 + 80
    written = store.query("buildings", FeatureQuery(filters=(Filter("code", Op.LIKE, "T%-%"),)))
    assert sorted(written.index) == sorted(ids)
    assert sorted(set(written["floors_above"])) == list(range(8))


def test_concurrent_readers_see_whole_transactions(store):
    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(store.count("buildings"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(10):
            store.insert("buildings", _buildings(5))
    finally:
        stop.set()
        thread.join()
    assert all((n - 51) % 5 == 0 for n in seen)
    assert store.count("buildings") == 101


def test_committed_writes_survive_closing_and_reopening(store, reopen):
    [new] = store.insert("buildings", _buildings(1))
    store.update("buildings", 3, {"height_m": 12.5})
    store.delete("alarms", [1])
    again = reopen(store)
    try:
        assert again.get("buildings", new)["code"].iloc[0] == "N0"
        assert again.get("buildings", 3)["height_m"].iloc[0] == 12.5
        assert again.count("alarms") == 11
    finally:
        again.close()


def test_raster_paths(store):
    path = store.raster_path("dem")
    assert path.is_file() and path.name == "dem.tif"
    with pytest.raises(NotFound):
        store.raster_path("void_risk")  # declared, but the fixture has no file for it
    with pytest.raises(NotFound):
        store.raster_path("nope")


def test_geometry_writes_keep_z(store):
    sensor = gpd.GeoDataFrame({"code": ["S900"], "type": ["smoke"], "reporting_interval_s": [60], "status": ["online"]},
                              geometry=[Point(114.03, 22.61, 42.5)], crs=4326)
    [new] = store.insert("sensors", sensor)
    assert store.get("sensors", new).geometry.iloc[0].z == 42.5
    store.update("sensors", new, {"geometry": Point(114.031, 22.611, 7.0)})
    point = store.get("sensors", new).geometry.iloc[0]
    assert (point.x, point.y, point.z) == (114.031, 22.611, 7.0)
    assert shapely.has_z(store.query("sensors").geometry).all()


def test_errors_name_the_source_file_when_the_frame_says_where_it_came_from(store):
    frame = _buildings(2)
    frame.loc[1, "use"] = "castle"
    frame.attrs["source"] = "buildings.geojson"
    with pytest.raises(ValidationFailed) as err:
        store.insert("buildings", frame)
    assert str(err.value).startswith("buildings.geojson, row 2, field 'use'")
    frame.attrs.clear()
    with pytest.raises(ValidationFailed, match=r"^insert into buildings, row 2, field 'use'"):
        store.insert("buildings", frame)
    assert store.count("buildings") == 51


def test_layer_version_grows_with_each_write_to_that_layer_only(store) -> None:
    buildings, grids = store.layer_version("buildings"), store.layer_version("grids")
    [new_id] = store.insert("buildings", _buildings(1))
    after_insert = store.layer_version("buildings")
    assert after_insert > buildings
    store.update("buildings", new_id, {"height_m": 44.0})
    after_update = store.layer_version("buildings")
    assert after_update > after_insert
    store.delete("buildings", [new_id])
    assert store.layer_version("buildings") > after_update
    assert store.layer_version("grids") == grids


def test_failed_write_leaves_the_version(store) -> None:
    before = store.layer_version("buildings")
    with pytest.raises(ValidationFailed):
        store.insert("buildings", _buildings(1, height_m=-5.0))
    assert store.layer_version("buildings") == before


def test_layer_version_survives_reopening(store, reopen) -> None:
    store.insert("buildings", _buildings(1))
    version = store.layer_version("buildings")
    again = reopen(store)
    try:
        assert again.layer_version("buildings") == version
    finally:
        again.close()
