"""The validator: every catalogue rule, the dtype conventions and the error messages (source, row, field)."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from layers import get_layer
from twin.errors import ValidationFailed
from twin.validate import has_ids, normalize_changes, normalize_frame

BUILDINGS, GRIDS, SENSORS, READINGS, FACILITIES, LEVELS = (
    get_layer(n) for n in ("buildings", "grids", "sensors", "readings", "fire_facilities", "levels"))


def buildings(n: int = 3, **columns) -> gpd.GeoDataFrame:
    data = {"code": [f"B{i}" for i in range(n)], "use": ["office"] * n, "height_m": [10.0 * (i + 1) for i in range(n)],
            "floors_above": [3 + i for i in range(n)]}
    data.update(columns)
    geoms = [box(114.02 + i * 0.001, 22.60, 114.0205 + i * 0.001, 22.6005) for i in range(n)]
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")


def sensors(n: int = 2, **columns) -> gpd.GeoDataFrame:
    data = {"code": [f"S{i}" for i in range(n)], "type": ["smoke"] * n, "reporting_interval_s": [60] * n,
            "status": ["online"] * n}
    data.update(columns)
    return gpd.GeoDataFrame(data, geometry=[Point(114.02, 22.6, 5.0 + i) for i in range(n)], crs=4326)


def failure(layer, frame, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as err:
        normalize_frame(layer, frame, **kwargs)
    return err.value


def test_result_has_catalogue_columns_in_order_and_dtypes():
    out = normalize_frame(BUILDINGS, buildings())
    assert list(out.columns) == [*BUILDINGS.field_names, "geometry"]
    assert str(out["floors_above"].dtype) == "Int64" and str(out["residents"].dtype) == "Int64"
    assert out["height_m"].dtype == np.float64 and str(out["code"].dtype) == "str"
    assert out["residents"].isna().all() and out["name"].isna().all()
    assert out.crs.to_epsg() == 4326 and isinstance(out, gpd.GeoDataFrame)
    assert isinstance(out.index, pd.RangeIndex) and not has_ids(BUILDINGS, out)


def test_every_field_type_is_coerced():
    frame = sensors(3, last_seen=["2026-11-25T16:00:00.1234+08:00", None, "2026-11-25T08:00:00Z"],
                    last_value=["1.5", 2, None], building_id=[1.0, None, 3], threshold_high=[1, 2, 3])
    out = normalize_frame(SENSORS, frame)
    assert str(out["last_seen"].dtype) == "datetime64[ms, UTC]"
    assert out["last_seen"].iloc[0] == pd.Timestamp("2026-11-25T08:00:00.123Z")  # floored to the millisecond
    assert pd.isna(out["last_seen"].iloc[1])
    assert list(out["last_value"].fillna(-1)) == [1.5, 2.0, -1]
    assert list(out["building_id"].astype(object).where(out["building_id"].notna(), None)) == [1, None, 3]
    assert out["threshold_high"].dtype == np.float64
    facilities = gpd.GeoDataFrame(
        {"code": ["F1", "F2", "F3"], "type": ["hydrant_box"] * 3, "status": ["normal"] * 3,
         "last_inspected": ["2026-01-02", dt.date(2026, 2, 3), pd.Timestamp("2026-03-04")]},
        geometry=[Point(114, 22.6, 1)] * 3, crs=4326)
    out = normalize_frame(FACILITIES, facilities)
    assert list(out["last_inspected"]) == [dt.date(2026, 1, 2), dt.date(2026, 2, 3), dt.date(2026, 3, 4)]
    assert out["last_inspected"].dtype == object and out["next_inspection"].isna().all()
    levels = gpd.GeoDataFrame({"building_id": [1, 1, 1, 1], "ordinal": [0, 1, 2, 3], "name": ["a", "b", "c", "d"],
                               "elevation_m": [0, 4, 8, 12], "height_m": [4] * 4,
                               "is_refuge": [True, "false", 0, "TRUE"]}, geometry=[box(0, 0, 1, 1)] * 4, crs=4326)
    out = normalize_frame(LEVELS, levels)
    assert str(out["is_refuge"].dtype) == "boolean" and list(out["is_refuge"]) == [True, False, False, True]


def test_aware_datetime_columns_are_converted_to_utc():
    stamps = pd.Series(pd.to_datetime(["2026-11-25 16:00"]).tz_localize("Asia/Shanghai"))
    out = normalize_frame(READINGS, pd.DataFrame({"sensor_id": [1], "ts": stamps, "value": [1.0]}))
    assert out["ts"].iloc[0] == pd.Timestamp("2026-11-25T08:00:00Z") and str(out["ts"].dtype) == "datetime64[ms, UTC]"
    objects = pd.DataFrame({"sensor_id": [1], "ts": [dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)],
                            "value": [1]})
    assert normalize_frame(READINGS, objects)["ts"].iloc[0] == pd.Timestamp("2026-01-01T08:00Z")


@pytest.mark.parametrize("value", ["2026-11-25T08:00:00", "2026-11-25", "yesterday", dt.datetime(2026, 11, 25),
                                   dt.date(2026, 11, 25), 1700000000])
def test_datetimes_need_a_timezone(value):
    err = failure(READINGS, pd.DataFrame({"sensor_id": [1, 2], "ts": ["2026-11-25T08:00:00Z", value], "value": [1, 2]}))
    assert (err.row, err.field) == (2, "ts")


def test_naive_datetime_columns_are_refused():
    frame = pd.DataFrame({"sensor_id": [1], "ts": pd.to_datetime(["2026-11-25 08:00"]), "value": [1.0]})
    assert "timezone" in str(failure(READINGS, frame))


@pytest.mark.parametrize(("field", "values"), [
    ("floors_above", [3, "abc", 4]),
    ("floors_above", [3.0, 2.5, 4.0]),
    ("floors_above", [1, True, 2]),
    ("height_m", [1.0, "tall", 2.0]),
    ("height_m", [1.0, float("inf"), 2.0]),
    ("height_m", [1.0, True, 3.0]),
    ("code", ["a", 3.5, "c"]),
    ("code", ["a", {"x": 1}, "c"]),
    ("year_built", [2000, "20x0", 2001]),
])
def test_values_not_coercible_name_row_and_field(field, values):
    err = failure(BUILDINGS, buildings(3, **{field: values}), source="upload.csv")
    assert (err.row, err.field, err.source) == (2, field, "upload.csv")
    assert str(err).startswith("upload.csv, row 2, field ")


@pytest.mark.parametrize(("layer", "frame", "field"), [
    (LEVELS, gpd.GeoDataFrame({"building_id": [1], "ordinal": [0], "name": ["a"], "elevation_m": [0], "height_m": [4],
                               "is_refuge": ["maybe"]}, geometry=[box(0, 0, 1, 1)], crs=4326), "is_refuge"),
    (LEVELS, gpd.GeoDataFrame({"building_id": [1], "ordinal": [0], "name": ["a"], "elevation_m": [0], "height_m": [4],
                               "is_refuge": [2]}, geometry=[box(0, 0, 1, 1)], crs=4326), "is_refuge"),
    (FACILITIES, gpd.GeoDataFrame({"code": ["F"], "type": ["hydrant_box"], "status": ["normal"],
                                   "last_inspected": ["2026-13-01"]}, geometry=[Point(0, 0, 0)], crs=4326),
     "last_inspected"),
    (FACILITIES, gpd.GeoDataFrame({"code": ["F"], "type": ["hydrant_box"], "status": ["normal"],
                                   "last_inspected": ["25/11/2026"]}, geometry=[Point(0, 0, 0)], crs=4326),
     "last_inspected"),
    (FACILITIES, gpd.GeoDataFrame({"code": ["F"], "type": ["hydrant_box"], "status": ["normal"],
                                   "last_inspected": [pd.Timestamp("2026-11-25 08:30")]}, geometry=[Point(0, 0, 0)],
                                  crs=4326), "last_inspected"),
])
def test_booleans_and_dates_are_checked(layer, frame, field):
    err = failure(layer, frame)
    assert (err.row, err.field) == (1, field)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("use", "castle", "not one of"),
    ("floors_above", 201, "above the maximum 200"),
    ("floors_above", -1, "below the minimum 0"),
    ("height_m", 1000.5, "above the maximum"),
    ("year_built", 1899, "below the minimum 1900"),
    ("height_m", None, "required"),
])
def test_domain_rules(field, value, words):
    column = list(buildings(3)[field]) if field in buildings(3) else [2000, 2000, 2000]
    column[2] = value
    err = failure(BUILDINGS, buildings(3, **{field: column}))
    assert (err.row, err.field) == (3, field) and words in str(err)


def test_unknown_and_missing_columns():
    err = failure(BUILDINGS, buildings(2, colour=["red", "blue"]))
    assert err.field == "colour" and "unknown column" in str(err)
    err = failure(BUILDINGS, buildings(2).drop(columns=["use"]))
    assert err.field == "use" and err.row is None and "required field is missing" in str(err)


def test_partial_frames_keep_only_their_columns():
    out = normalize_frame(BUILDINGS, pd.DataFrame({"id": [4, 5], "height_m": ["12", 13]}), partial=True)
    assert list(out.columns) == ["height_m"] and list(out.index) == [4, 5] and has_ids(BUILDINGS, out)
    with pytest.raises(ValidationFailed):
        normalize_frame(BUILDINGS, pd.DataFrame({"height_m": [None]}), partial=True)  # given, so still required


def test_ids_come_from_an_id_column_or_an_id_index():
    out = normalize_frame(BUILDINGS, buildings(2, id=[7, 3]))
    assert list(out.index) == [7, 3] and out.index.name == "id" and out.index.dtype == np.int64
    indexed = buildings(2)
    indexed.index = pd.Index([11, 12], name="id")
    assert list(normalize_frame(BUILDINGS, indexed).index) == [11, 12]
    other = buildings(2)
    other.index = pd.Index([11, 12], name="something")
    assert not has_ids(BUILDINGS, normalize_frame(BUILDINGS, other))


@pytest.mark.parametrize(("ids", "row"), [([1, None], 2), ([1, 0], 2), ([1, 1.5], 2), ([4, 4], 2), (["a", 2], 1)])
def test_bad_ids_are_refused(ids, row):
    err = failure(BUILDINGS, buildings(2, id=ids))
    assert (err.row, err.field) == (row, "id")


def test_errors_name_the_id_when_the_input_has_ids():
    err = failure(BUILDINGS, buildings(2, id=[40, 42], use=["office", "castle"]))
    assert err.row == 2 and "(id 42)" in str(err)


def test_multipolygon_layers_promote_polygons():
    grids = gpd.GeoDataFrame({"code": ["a", "b"], "level": ["grid", "grid"], "name": ["A", "B"]},
                             geometry=[box(0, 0, 1, 1), MultiPolygon([box(2, 2, 3, 3), box(4, 4, 5, 5)])], crs=4326)
    out = normalize_frame(GRIDS, grids)
    assert list(out.geom_type) == ["MultiPolygon", "MultiPolygon"]
    assert out.geometry.iloc[0].equals(box(0, 0, 1, 1)) and len(out.geometry.iloc[1].geoms) == 2


@pytest.mark.parametrize(("geometry", "words"), [
    (Point(114.02, 22.6), "Point given, layer 'buildings' stores Polygon"),
    (MultiPolygon([box(114.02, 22.6, 114.03, 22.61)]), "MultiPolygon given"),
    (LineString([(114.02, 22.6), (114.03, 22.61)]), "LineString given"),
    (Polygon([(114.02, 22.60), (114.03, 22.61), (114.03, 22.60), (114.02, 22.61)]), "Self-intersection"),
    (Polygon(), "empty geometry"),
    (None, "missing geometry"),
    (box(500000, 2500000, 500010, 2500010), "outside lon/lat range"),
    (Polygon([(114.02, 22.6, 1), (114.03, 22.6, 1), (114.03, 22.61, 1)]), "has a z coordinate"),
    ("nan", "non-finite"),
])
def test_geometry_rules(geometry, words):
    if geometry == "nan":
        with np.errstate(invalid="ignore"):
            geometry = Polygon([(114.02, 22.6), (float("nan"), 22.6), (114.03, 22.61)])
    frame = buildings(3)
    frame = frame.set_geometry([*frame.geometry.iloc[:2], geometry], crs=4326)
    err = failure(BUILDINGS, frame)
    assert (err.row, err.field) == (3, "geometry") and words in str(err)


def test_invalid_geometry_message_uses_is_valid_reason():
    bowtie = Polygon([(114.02, 22.60), (114.03, 22.61), (114.03, 22.60), (114.02, 22.61)])
    err = failure(BUILDINGS, buildings(1).set_geometry([bowtie], crs=4326))
    assert shapely.is_valid_reason(bowtie) in str(err)


def test_three_d_layers_need_z():
    err = failure(SENSORS, sensors(2).set_geometry([Point(114, 22.6, 1), Point(114, 22.6)], crs=4326))
    assert (err.row, err.field) == (2, "geometry") and "no z coordinate" in str(err)
    out = normalize_frame(SENSORS, sensors(2))
    assert shapely.has_z(out.geometry.to_numpy()).all()


def test_crs_is_required_and_other_crs_are_reprojected():
    err = failure(BUILDINGS, buildings(2).set_crs(None, allow_override=True))
    assert err.field == "geometry" and "no CRS" in str(err)
    plain = pd.DataFrame(buildings(2))
    plain["geometry"] = list(plain["geometry"])
    assert "no CRS" in str(failure(BUILDINGS, plain))
    original = buildings(2)
    out = normalize_frame(BUILDINGS, original.to_crs("EPSG:4547"))
    assert out.crs.to_epsg() == 4326
    assert shapely.equals_exact(out.geometry.to_numpy(), original.geometry.to_numpy(), tolerance=1e-9).all()
    crs84 = normalize_frame(BUILDINGS, original.set_crs("OGC:CRS84", allow_override=True))
    assert shapely.equals_exact(crs84.geometry.to_numpy(), original.geometry.to_numpy(), tolerance=0).all()


def test_geometry_rules_for_spatial_and_non_spatial_layers():
    err = failure(BUILDINGS, pd.DataFrame(buildings(1).drop(columns="geometry")))
    assert err.field == "geometry" and "no geometry column" in str(err)
    table = gpd.GeoDataFrame({"sensor_id": [1], "ts": ["2026-01-01T00:00:00Z"], "value": [1]},
                             geometry=[Point(0, 0)], crs=4326)
    assert "table without geometry" in str(failure(READINGS, table))
    with pytest.raises(ValidationFailed, match="expected a DataFrame"):
        normalize_frame(BUILDINGS, [{"code": "x"}])  # type: ignore[arg-type]


def test_empty_frames_normalize_to_typed_empty_frames():
    out = normalize_frame(READINGS, pd.DataFrame({"sensor_id": [], "ts": [], "value": []}))
    assert len(out) == 0 and str(out["ts"].dtype) == "datetime64[ms, UTC]" and str(out["sensor_id"].dtype) == "Int64"


def test_large_frames_take_the_vectorised_path():
    n = 50_000
    rng = np.random.default_rng(0)
    x = 114 + rng.random(n) * 0.3
    frame = gpd.GeoDataFrame({"code": [f"B{i}" for i in range(n)], "use": ["office"] * n,
                              "height_m": rng.random(n) * 100, "floors_above": rng.integers(1, 50, n)},
                             geometry=shapely.box(x, 22.6, x + 0.0003, 22.6003), crs=4326)
    import time

    started = time.perf_counter()
    out = normalize_frame(BUILDINGS, frame)
    assert len(out) == n and time.perf_counter() - started < 5


def test_changes_are_coerced():
    changes = normalize_changes(SENSORS, {"last_seen": "2026-11-25T16:00:00+08:00", "last_value": "3.5",
                                          "building_id": 4.0, "status": "fault", "unit": None,
                                          "geometry": Point(114.02, 22.6, 3)})
    assert changes["last_seen"] == pd.Timestamp("2026-11-25T08:00:00Z")
    assert changes["last_value"] == 3.5 and changes["building_id"] == 4 and isinstance(changes["building_id"], int)
    assert changes["unit"] is None and changes["geometry"].z == 3
    grid = normalize_changes(GRIDS, {"geometry": box(0, 0, 1, 1)})
    assert grid["geometry"].geom_type == "MultiPolygon"
    levels = normalize_changes(LEVELS, {"is_refuge": "false"})
    assert levels == {"is_refuge": False}
    facilities = normalize_changes(FACILITIES, {"next_inspection": "2027-01-31"})
    assert facilities == {"next_inspection": dt.date(2027, 1, 31)}


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"height": 3}, "height", "unknown field"),
    ({"id": 3}, "id", "cannot be changed"),
    ({"height_m": None}, "height_m", "required"),
    ({"height_m": -3}, "height_m", "minimum"),
    ({"use": "castle"}, "use", "not one of"),
    ({"floors_above": "many"}, "floors_above", "not an integer"),
    ({"geometry": None}, "geometry", "missing geometry"),
    ({"geometry": "POINT (1 2)"}, "geometry", "shapely geometry"),
    ({"geometry": Point(114, 22.6)}, "geometry", "Point given"),
])
def test_bad_changes(changes, field, words):
    with pytest.raises(ValidationFailed) as err:
        normalize_changes(BUILDINGS, changes, feature_id=12)
    assert err.value.field == field and words in str(err.value) and "id 12" in str(err.value)


def test_changes_must_be_a_mapping():
    with pytest.raises(ValidationFailed):
        normalize_changes(BUILDINGS, [("height_m", 3)])  # type: ignore[arg-type]
