"""Contract: reading layers — counts, filters with every operator, sorting, paging, properties, time, extents."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from layers import LAYERS, FieldType, get_layer
from tests.store.conftest import T0
from tests.store.helpers import assert_same_frame, matches, sorted_ids
from twin.errors import InvalidQuery, NotFound
from twin.store.base import BBox, FeatureQuery, Filter, Op, Sort, TimeRange

ALL = [layer.id for layer in LAYERS]
SPATIAL = [layer.id for layer in LAYERS if layer.is_spatial]
TABLES = [layer.id for layer in LAYERS if not layer.is_spatial]
DTYPES = {FieldType.INTEGER: "Int64", FieldType.REAL: "float64", FieldType.TEXT: "str",
          FieldType.BOOLEAN: "boolean", FieldType.DATE: "object", FieldType.DATETIME: "datetime64[ms, UTC]"}


@pytest.mark.parametrize("layer_id", ALL)
def test_count_is_the_number_of_rows_loaded(store, twin_data, layer_id):
    assert store.count(layer_id) == len(twin_data.frames[layer_id])


@pytest.mark.parametrize("layer_id", ALL)
def test_query_returns_every_row_by_id_with_catalogue_dtypes(store, twin_data, layer_id):
    got = store.query(layer_id)
    assert_same_frame(got, twin_data.expected(layer_id))
    for field in get_layer(layer_id).fields:
        assert str(got[field.name].dtype) == DTYPES[field.type], field.name


@pytest.mark.parametrize("layer_id", SPATIAL)
def test_spatial_layers_are_geodataframes_in_lon_lat(store, layer_id):
    got = store.query(layer_id)
    assert isinstance(got, gpd.GeoDataFrame)
    assert got.crs.to_epsg() == 4326
    assert got.geometry.name == "geometry" and list(got.columns)[-1] == "geometry"


@pytest.mark.parametrize("layer_id", TABLES)
def test_tables_are_plain_dataframes(store, layer_id):
    got = store.query(layer_id)
    assert not isinstance(got, gpd.GeoDataFrame)
    assert "geometry" not in got.columns


def test_values_round_trip_exactly(store):
    sensor = store.get("sensors", 2)
    assert sensor.geometry.iloc[0].has_z and sensor.geometry.iloc[0].z == 3.0
    assert sensor["last_seen"].iloc[0] == T0 + pd.Timedelta(minutes=37)
    facility = store.get("fire_facilities", 3)
    assert facility["last_inspected"].iloc[0] == dt.date(2026, 3, 3)
    assert pd.isna(store.get("fire_facilities", 2)["last_inspected"].iloc[0])
    level = store.query("levels", FeatureQuery(filters=(Filter("is_refuge", Op.EQ, True),)))
    assert list(level["ordinal"]) == [2]
    assert store.get("grids", 1).geometry.iloc[0].geom_type == "MultiPolygon"
    assert store.get("grids", 2).geometry.iloc[0].geom_type == "MultiPolygon"  # loaded as a Polygon


def test_get_returns_one_row(store, twin_data):
    got = store.get("buildings", 7)
    assert_same_frame(got, twin_data.expected("buildings").loc[[7]])
    assert_same_frame(store.get("alarms", 3), twin_data.expected("alarms").loc[[3]])


@pytest.mark.parametrize("feature_id", [0, 999, -1])
def test_get_unknown_id_is_not_found(store, feature_id):
    with pytest.raises(NotFound):
        store.get("buildings", feature_id)


@pytest.mark.parametrize("call", [
    lambda s: s.count("nope"), lambda s: s.query("nope"), lambda s: s.get("nope", 1),
    lambda s: s.extent("nope"), lambda s: s.time_extent("nope"), lambda s: s.delete("nope", [1]),
    lambda s: s.update("nope", 1, {}), lambda s: s.aggregate_by_grid("nope"),
    lambda s: s.insert("nope", pd.DataFrame()), lambda s: s.replace_layer("nope", pd.DataFrame()),
])
def test_unknown_layer_is_not_found(store, call):
    with pytest.raises(NotFound):
        call(store)


FILTERS = [
    ("buildings", [Filter("height_m", Op.EQ, 36.0)]),
    ("buildings", [Filter("height_m", Op.NE, 36)]),
    ("buildings", [Filter("height_m", Op.LT, 24.5)]),
    ("buildings", [Filter("height_m", Op.LE, 24.5)]),
    ("buildings", [Filter("height_m", Op.GT, "50")]),
    ("buildings", [Filter("height_m", Op.GE, 50)]),
    ("buildings", [Filter("height_m", Op.IN, [10, 100.0])]),
    ("buildings", [Filter("floors_below", Op.EQ, 2)]),
    ("buildings", [Filter("floors_below", Op.NE, 2)]),
    ("buildings", [Filter("floors_below", Op.LT, 2)]),
    ("buildings", [Filter("floors_below", Op.IS_NULL)]),
    ("buildings", [Filter("floors_below", Op.NOT_NULL)]),
    ("buildings", [Filter("name", Op.EQ, "Tower A")]),
    ("buildings", [Filter("name", Op.GT, "T")]),
    ("buildings", [Filter("name", Op.IN, ["Tower A", "Straddler", "none such"])]),
    ("buildings", [Filter("name", Op.LIKE, "Tower%")]),
    ("buildings", [Filter("name", Op.LIKE, "tower%")]),
    ("buildings", [Filter("name", Op.LIKE, "_ower _")]),
    ("buildings", [Filter("name", Op.LIKE, "%a")]),
    ("buildings", [Filter("name", Op.LIKE, "Block\\_7")]),
    ("buildings", [Filter("name", Op.LIKE, "%50\\%")]),
    ("buildings", [Filter("name", Op.LIKE, "北站%")]),
    ("buildings", [Filter("name", Op.LIKE, "[T]%")]),
    ("buildings", [Filter("id", Op.IN, [1, 5, 999])]),
    ("buildings", [Filter("id", Op.GT, 45)]),
    ("buildings", [Filter("height_m", Op.GE, 36), Filter("use", Op.IN, ["office", "residential"]),
                   Filter("name", Op.NOT_NULL)]),
    ("buildings", [Filter("name", Op.EQ, "x'; DROP TABLE buildings; --")]),
    ("buildings", [Filter("use", Op.IN, [])]),
    ("sensors", [Filter("last_seen", Op.GE, T0 + pd.Timedelta(hours=2))]),
    ("sensors", [Filter("last_seen", Op.LT, "2026-11-25T12:00:00+02:00")]),
    ("sensors", [Filter("last_seen", Op.EQ, "2026-11-25T08:37:00Z")]),
    ("sensors", [Filter("last_seen", Op.IS_NULL)]),
    ("sensors", [Filter("status", Op.NE, "online")]),
    ("fire_facilities", [Filter("last_inspected", Op.EQ, dt.date(2026, 3, 3))]),
    ("fire_facilities", [Filter("last_inspected", Op.LT, "2026-05-01")]),
    ("fire_facilities", [Filter("last_inspected", Op.GE, dt.date(2026, 6, 6))]),
    ("levels", [Filter("is_refuge", Op.EQ, True)]),
    ("levels", [Filter("is_refuge", Op.NE, True)]),
    ("readings", [Filter("sensor_id", Op.EQ, 3), Filter("value", Op.GE, 305)]),
    ("alarms", [Filter("grid_code", Op.IS_NULL)]),
    ("alarms", [Filter("status", Op.IN, ("open", "resolved"))]),
]


@pytest.mark.parametrize(("layer_id", "filters"), FILTERS, ids=lambda v: str(v)[:60])
def test_filters_match_brute_force(store, twin_data, layer_id, filters):
    expected = matches(twin_data.expected(layer_id), layer_id, filters)
    query = FeatureQuery(filters=tuple(filters))
    got = store.query(layer_id, query)
    assert list(got.index) == sorted(expected)
    assert store.count(layer_id, query) == len(expected)


def test_some_filters_select_something_and_some_nothing(twin_data):
    sizes = [len(matches(twin_data.expected(lid), lid, f)) for lid, f in FILTERS]
    assert min(sizes) == 0 and max(sizes) > 10  # the table above exercises both kinds of answer


def test_injection_attempt_leaves_the_table_alone(store):
    store.query("buildings", FeatureQuery(filters=(Filter("name", Op.EQ, "x'; DROP TABLE buildings; --"),)))
    assert store.count("buildings") == 51


@pytest.mark.parametrize("bad", [
    Filter("nope", Op.EQ, 1),
    Filter("height_m", Op.LIKE, "1%"),
    Filter("height_m", Op.EQ, "tall"),
    Filter("height_m", Op.EQ, None),
    Filter("use", Op.IN, "office"),
    Filter("floors_above", Op.EQ, 2.5),
    Filter("last_inspected", Op.EQ, "yesterday"),
    Filter("height_m", "~", 3),
])
def test_bad_filters_are_invalid_queries(store, bad):
    layer = "buildings" if bad.field != "last_inspected" else "fire_facilities"
    with pytest.raises(InvalidQuery):
        store.query(layer, FeatureQuery(filters=(bad,)))
    with pytest.raises(InvalidQuery):
        store.count(layer, FeatureQuery(filters=(bad,)))


def test_naive_datetime_filter_is_invalid(store):
    with pytest.raises(InvalidQuery):
        store.query("sensors", FeatureQuery(filters=(Filter("last_seen", Op.GT, dt.datetime(2026, 11, 25)),)))


SORTS = [
    ("buildings", (Sort("height_m"),)),
    ("buildings", (Sort("height_m", descending=True),)),
    ("buildings", (Sort("height_m", descending=True), Sort("name"))),
    ("buildings", (Sort("name", descending=True),)),
    ("buildings", (Sort("name"),)),
    ("buildings", (Sort("floors_below"), Sort("height_m", descending=True))),
    ("buildings", (Sort("id", descending=True),)),
    ("sensors", (Sort("last_seen", descending=True),)),
    ("fire_facilities", (Sort("last_inspected"),)),
    ("readings", (Sort("ts", descending=True), Sort("sensor_id"))),
    ("levels", (Sort("is_refuge", descending=True),)),
]


@pytest.mark.parametrize(("layer_id", "sort"), SORTS, ids=lambda v: str(v)[:60])
def test_sort_orders_with_nulls_last_and_ties_by_id(store, twin_data, layer_id, sort):
    got = store.query(layer_id, FeatureQuery(sort=sort))
    assert list(got.index) == sorted_ids(twin_data.expected(layer_id), sort)


def test_sort_ties_really_occur_in_the_fixture(twin_data):
    heights = twin_data.expected("buildings")["height_m"]
    assert heights.duplicated().sum() > 20


def test_sort_by_unknown_field_is_invalid(store):
    with pytest.raises(InvalidQuery):
        store.query("buildings", FeatureQuery(sort=(Sort("nope"),)))


@pytest.mark.parametrize("query", [
    FeatureQuery(sort=(Sort("height_m", descending=True),)),
    FeatureQuery(filters=(Filter("height_m", Op.GE, 24.5),), sort=(Sort("name"),)),
    FeatureQuery(bbox=BBox(114.021, 22.602, 114.036, 22.615), sort=(Sort("use"),)),
])
def test_pages_add_up_to_the_whole_and_to_the_count(store, query):
    whole = store.query("buildings", query)
    total = store.count("buildings", query)
    assert total == len(whole) > 7
    pages = []
    for offset in range(0, total + 7, 7):
        page = store.query("buildings", FeatureQuery(**{**query.__dict__, "limit": 7, "offset": offset}))
        assert len(page) == max(0, min(7, total - offset))
        assert store.count("buildings", FeatureQuery(**{**query.__dict__, "limit": 7, "offset": offset})) == total
        pages.append(page)
    assert list(pd.concat(pages).index) == list(whole.index)


def test_limit_zero_and_offset_past_the_end_are_empty_frames(store):
    for query in (FeatureQuery(limit=0), FeatureQuery(offset=500), FeatureQuery(bbox=BBox(114, 22, 115, 23), limit=0)):
        got = store.query("buildings", query)
        assert len(got) == 0
        assert isinstance(got, gpd.GeoDataFrame) and got.crs.to_epsg() == 4326
        assert list(got.columns) == [*get_layer("buildings").field_names, "geometry"]


def test_negative_paging_is_invalid():
    with pytest.raises(InvalidQuery):
        FeatureQuery(limit=-1)
    with pytest.raises(InvalidQuery):
        FeatureQuery(offset=-3)


def test_empty_result_keeps_columns_and_dtypes(store):
    got = store.query("sensors", FeatureQuery(filters=(Filter("code", Op.EQ, "none"),)))
    assert len(got) == 0 and got.index.name == "id"
    for field in get_layer("sensors").fields:
        assert str(got[field.name].dtype) == DTYPES[field.type]
    table = store.query("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, 999),)))
    assert list(table.columns) == ["sensor_id", "ts", "value"] and len(table) == 0


def test_properties_select_columns_in_the_order_asked(store, twin_data):
    got = store.query("buildings", FeatureQuery(properties=("height_m", "code", "id"), limit=5))
    assert list(got.columns) == ["height_m", "code", "geometry"]
    expected = twin_data.expected("buildings").iloc[:5]
    assert list(got["code"]) == list(expected["code"])
    table = store.query("readings", FeatureQuery(properties=("value",)))
    assert list(table.columns) == ["value"] and len(table) == 60
    only_geometry = store.query("roads", FeatureQuery(properties=()))
    assert list(only_geometry.columns) == ["geometry"] and len(only_geometry) == 3


def test_unknown_property_is_invalid(store):
    with pytest.raises(InvalidQuery):
        store.query("buildings", FeatureQuery(properties=("height",)))


def _readings_between(twin_data, start, end):
    frame = twin_data.expected("readings")
    keep = frame["ts"].notna()
    if start is not None:
        keep &= frame["ts"] >= start
    if end is not None:
        keep &= frame["ts"] <= end
    return list(frame.index[keep])


@pytest.mark.parametrize(("start", "end"), [
    (T0 + pd.Timedelta(minutes=20), T0 + pd.Timedelta(minutes=50)),
    (T0 + pd.Timedelta(minutes=20, microseconds=400), T0 + pd.Timedelta(minutes=50, microseconds=400)),
    (None, T0 + pd.Timedelta(minutes=10)),
    (T0 + pd.Timedelta(minutes=105), None),
    (T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(minutes=30)),
    (T0 + pd.Timedelta(days=1), None),
])
def test_time_range_is_a_closed_interval(store, twin_data, start, end):
    query = FeatureQuery(time=TimeRange(start, end))
    expected = _readings_between(twin_data, start, end)
    assert list(store.query("readings", query).index) == expected
    assert store.count("readings", query) == len(expected)


def test_time_range_ends_are_inclusive(store):
    start, end = T0 + pd.Timedelta(minutes=20), T0 + pd.Timedelta(minutes=50)
    got = store.query("readings", FeatureQuery(time=TimeRange(start, end), filters=(Filter("sensor_id", Op.EQ, 1),)))
    assert list(got["ts"]) == [T0 + pd.Timedelta(minutes=m) for m in (20, 30, 40, 50)]
    later = TimeRange(start + pd.Timedelta(microseconds=400), end + pd.Timedelta(microseconds=400))
    got = store.query("readings", FeatureQuery(time=later, filters=(Filter("sensor_id", Op.EQ, 1),)))
    assert list(got["ts"]) == [T0 + pd.Timedelta(minutes=m) for m in (30, 40, 50)]


def test_time_range_on_sensors_skips_null_times(store, twin_data):
    frame = twin_data.expected("sensors")
    got = store.query("sensors", FeatureQuery(time=TimeRange(start=T0)))
    assert list(got.index) == list(frame.index[frame["last_seen"].notna()])


def test_time_range_needs_a_temporal_layer_and_aware_datetimes(store):
    with pytest.raises(InvalidQuery):
        store.query("buildings", FeatureQuery(time=TimeRange(start=T0)))
    with pytest.raises(InvalidQuery):
        TimeRange(start=dt.datetime(2026, 1, 1))
    with pytest.raises(InvalidQuery):
        TimeRange(start=T0, end=T0 - pd.Timedelta(seconds=1))


@pytest.mark.parametrize("layer_id", SPATIAL)
def test_extent_is_the_exact_bounding_box(store, twin_data, layer_id):
    bbox = store.extent(layer_id)
    assert bbox is not None
    np.testing.assert_allclose(bbox.as_tuple(), twin_data.expected(layer_id).total_bounds, rtol=0, atol=1e-12)


def test_extent_follows_deletes_and_empty_layers(store, twin_data):
    frame = twin_data.expected("buildings")
    westmost = frame.geometry.bounds["minx"].idxmin()
    west_column = frame.index[frame.geometry.bounds["minx"] == frame.geometry.bounds["minx"].min()]
    assert westmost in west_column
    store.delete("buildings", list(west_column))
    rest = frame.drop(index=west_column)
    np.testing.assert_allclose(store.extent("buildings").as_tuple(), rest.total_bounds, atol=1e-12)
    store.replace_layer("fire_stations", gpd.GeoDataFrame({"name": [], "station_type": []},
                                                          geometry=gpd.GeoSeries([], crs=4326)))
    assert store.extent("fire_stations") is None


def test_extent_of_a_table_is_invalid(store):
    with pytest.raises(InvalidQuery):
        store.extent("readings")


@pytest.mark.parametrize("layer_id", [lid for lid in ALL if get_layer(lid).temporal_field])
def test_time_extent_is_min_and_max(store, twin_data, layer_id):
    values = twin_data.expected(layer_id)[get_layer(layer_id).temporal_field].dropna()
    low, high = store.time_extent(layer_id)
    assert isinstance(low, dt.datetime) and low.utcoffset() == dt.timedelta(0)
    assert (low, high) == (values.min(), values.max())


def test_time_extent_without_time_or_rows_is_none(store):
    assert store.time_extent("buildings") == (None, None)
    store.delete("inspections", list(range(1, 7)))
    assert store.time_extent("inspections") == (None, None)
