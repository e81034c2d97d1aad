"""Contract: spatial reads — bbox and predicates, nearest-k, within-distance and aggregates by grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from tests.store.helpers import close, matches, metric, metric_geometry
from twin.errors import InvalidQuery
from twin.store.base import BBox, FeatureQuery, Filter, Op, Predicate, Sort

LAYERS = ["buildings", "sensors", "roads", "grids", "fire_lanes"]


def _random_boxes(n: int, seed: int) -> list[BBox]:
    rng = np.random.default_rng(seed)
    boxes = []
    for _ in range(n):
        x, y = 114.018 + rng.random() * 0.03, 22.598 + rng.random() * 0.024
        w, h = rng.random() * 0.01, rng.random() * 0.008
        boxes.append(BBox(x, y, x + w, y + h))
    return boxes


def _brute(frame, geometry, predicate=Predicate.INTERSECTS) -> list[int]:
    geoms = frame.geometry.to_numpy()
    if predicate is Predicate.INTERSECTS:
        hits = shapely.intersects(geoms, geometry)
    elif predicate is Predicate.WITHIN:
        hits = shapely.within(geoms, geometry)
    else:
        hits = shapely.contains(geoms, geometry)
    return list(frame.index[hits])


@pytest.mark.parametrize("layer_id", LAYERS)
def test_bbox_queries_match_brute_force(store, twin_data, layer_id):
    frame = twin_data.expected(layer_id)
    sizes = []
    for bbox in _random_boxes(25, seed=len(layer_id)):
        expected = _brute(frame, bbox.to_polygon())
        query = FeatureQuery(bbox=bbox)
        assert list(store.query(layer_id, query).index) == expected, bbox
        assert store.count(layer_id, query) == len(expected)
        sizes.append(len(expected))
    assert max(sizes) > 0 and min(sizes) < len(frame)


def test_bbox_cutting_through_envelopes_uses_the_exact_geometry(store, twin_data):
    # the box lies inside the bent road's envelope but does not touch the road
    road = twin_data.expected("roads").geometry.loc[3]
    corner = BBox(114.0415, 22.6150, 114.0420, 22.6160)
    assert corner.to_polygon().intersects(road.envelope) and not corner.to_polygon().intersects(road)
    assert store.count("roads", FeatureQuery(bbox=corner)) == 0
    assert len(store.query("roads", FeatureQuery(bbox=corner))) == 0
    assert len(store.query("roads", FeatureQuery(bbox=BBox(114.0415, 22.6150, 114.0440, 22.6160)))) == 1


def test_point_bbox_inside_a_building_finds_it(store):
    got = store.query("buildings", FeatureQuery(bbox=BBox(114.0207, 22.6016, 114.0207, 22.6016)))
    assert list(got.index) == [1]


def test_point_bbox_on_a_boundary_counts_as_intersecting(store, twin_data):
    corner = BBox(114.0205, 22.6015, 114.0205, 22.6015)  # the south-west corner of building 1
    assert list(store.query("buildings", FeatureQuery(bbox=corner)).index) == [1]
    edge = BBox(114.030, 22.605, 114.030, 22.605)  # on the C1/C2 boundary: both cells (and the parents) touch it
    expected = _brute(twin_data.expected("grids"), Point(114.030, 22.605))
    assert list(store.query("grids", FeatureQuery(bbox=edge)).index) == expected
    assert {"C1", "C2", "G11", "G21"} <= set(store.query("grids", FeatureQuery(bbox=edge))["code"])


def test_degenerate_bboxes_find_the_lines_they_touch(store, twin_data):
    # a point box on a road's vertex and a zero-height box crossing it must both find that road
    roads = twin_data.expected("roads")
    road_id = roads.index[0]
    x, y = roads.geometry.loc[road_id].coords[1]
    for bbox in (BBox(x, y, x, y), BBox(x - 0.001, y, x + 0.001, y), BBox(x, y - 0.001, x, y + 0.001)):
        assert road_id in set(store.query("roads", FeatureQuery(bbox=bbox)).index), bbox
        assert store.count("roads", FeatureQuery(bbox=bbox)) >= 1


def test_line_bboxes_match_brute_force(store, twin_data):
    frame = twin_data.expected("buildings")
    for bbox in (BBox(114.018, 22.6017, 114.050, 22.6017), BBox(114.0226, 22.599, 114.0226, 22.621)):
        expected = _brute(frame, bbox.to_polygon())
        assert len(expected) > 3
        assert list(store.query("buildings", FeatureQuery(bbox=bbox)).index) == expected


def test_bbox_outside_the_data_is_empty(store):
    query = FeatureQuery(bbox=BBox(120.0, 30.0, 120.1, 30.1))
    got = store.query("buildings", query)
    assert len(got) == 0 and got.crs.to_epsg() == 4326
    assert store.count("buildings", query) == 0
    assert store.count("sensors", FeatureQuery(bbox=BBox(114.0, 22.0, 114.01, 22.5))) == 0


@pytest.mark.parametrize("predicate", list(Predicate))
def test_bbox_with_a_predicate_and_no_geometry_applies_it_to_the_bbox(store, twin_data, predicate):
    # the second box cuts building 1 on its west side only: it intersects the box but is not within it
    for bbox in (BBox(114.020, 22.600, 114.0302, 22.6102), BBox(114.0207, 22.600, 114.0302, 22.6102)):
        for layer_id in ("buildings", "grids", "roads"):
            expected = _brute(twin_data.expected(layer_id), bbox.to_polygon(), predicate)
            query = FeatureQuery(bbox=bbox, predicate=predicate)
            assert list(store.query(layer_id, query).index) == expected
            assert store.count(layer_id, query) == len(expected)
    within = store.query("buildings", FeatureQuery(bbox=BBox(114.0207, 22.600, 114.0302, 22.6102),
                                                   predicate=Predicate.WITHIN))
    assert 1 not in within.index and 2 not in within.index and 11 in within.index


GEOMETRIES = [
    Polygon([(114.021, 22.601), (114.037, 22.603), (114.028, 22.618)]),
    LineString([(114.019, 22.599), (114.046, 22.621)]),
    Point(114.0355, 22.6155),
    box(114.030, 22.600, 114.040, 22.610),
]


@pytest.mark.parametrize("predicate", list(Predicate))
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: g.geom_type)
def test_geometry_predicates_match_brute_force(store, twin_data, predicate, geometry):
    for layer_id in ("buildings", "grids", "sensors", "roads"):
        expected = _brute(twin_data.expected(layer_id), geometry, predicate)
        query = FeatureQuery(geometry=geometry, predicate=predicate)
        assert list(store.query(layer_id, query).index) == expected, layer_id
        assert store.count(layer_id, query) == len(expected)


def test_grids_containing_a_point_are_its_whole_ancestry(store):
    got = store.query("grids", FeatureQuery(geometry=Point(114.0355, 22.6155), predicate=Predicate.CONTAINS))
    assert sorted(got["code"]) == ["C2", "D1", "G22", "S1"]


def test_bbox_and_geometry_together_must_both_hold(store, twin_data):
    triangle = GEOMETRIES[0]
    bbox = BBox(114.020, 22.600, 114.030, 22.610)
    frame = twin_data.expected("buildings")
    expected = sorted(set(_brute(frame, bbox.to_polygon())) & set(_brute(frame, triangle, Predicate.WITHIN)))
    query = FeatureQuery(bbox=bbox, geometry=triangle, predicate=Predicate.WITHIN)
    assert list(store.query("buildings", query).index) == expected
    assert 0 < len(expected) < len(_brute(frame, bbox.to_polygon()))


def test_spatial_filters_sort_and_page_together(store, twin_data):
    bbox = BBox(114.020, 22.600, 114.036, 22.615)
    filters = (Filter("height_m", Op.GE, 24.5),)
    frame = twin_data.expected("buildings")
    inside = frame.loc[_brute(frame, bbox.to_polygon())]
    passing = inside.loc[matches(inside, "buildings", filters)]
    expected = passing.sort_values(["height_m"], ascending=False, kind="stable")
    expected = expected.loc[sorted(expected.index, key=lambda i: (-expected.at[i, "height_m"], i))]
    query = FeatureQuery(bbox=bbox, filters=filters, sort=(Sort("height_m", descending=True),), limit=4, offset=3)
    assert list(store.query("buildings", query).index) == list(expected.index[3:7])
    assert store.count("buildings", query) == len(expected)


def test_bad_spatial_queries_are_invalid(store):
    bowtie = Polygon([(114.02, 22.60), (114.03, 22.61), (114.03, 22.60), (114.02, 22.61)])
    with pytest.raises(InvalidQuery):
        store.query("buildings", FeatureQuery(geometry=bowtie))
    with pytest.raises(InvalidQuery):
        store.query("readings", FeatureQuery(bbox=BBox(114, 22, 115, 23)))
    with pytest.raises(InvalidQuery):
        BBox(114.1, 22.6, 114.0, 22.7)


# -- nearest ---------------------------------------------------------------------------------------------------


def _nearest_brute(frame, point, k, filters=(), layer_id="buildings"):
    if filters:
        frame = frame.loc[matches(frame, layer_id, filters)]
    distances = metric(frame).distance(metric_geometry(point))
    order = sorted(frame.index, key=lambda i: (distances[i], i))[:k]
    return order, [distances[i] for i in order]


@pytest.mark.parametrize("point", [Point(114.0301, 22.6101), Point(114.0205, 22.6015), Point(114.05, 22.63),
                                   Point(113.9, 22.5)])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_nearest_matches_brute_force(store, twin_data, point, k):
    for layer_id in ("buildings", "sensors", "roads"):
        expected, distances = _nearest_brute(twin_data.expected(layer_id), point, k, layer_id=layer_id)
        got = store.nearest(layer_id, point, k=k)
        assert list(got.index) == expected, layer_id
        assert all(close(a, b) for a, b in zip(got["distance_m"], distances, strict=True))
        assert list(got["distance_m"]) == sorted(got["distance_m"])


def test_nearest_from_far_away_still_answers(store, twin_data):
    point = Point(100.0, 22.6)  # some 1,400 km west
    expected, _ = _nearest_brute(twin_data.expected("buildings"), point, 3)
    assert list(store.nearest("buildings", point, k=3).index) == expected
    other_side = store.nearest("fire_stations", Point(-70.0, 40.0), k=5)
    assert sorted(other_side.index) == [1, 2]


@pytest.mark.parametrize("point", [Point(114.2, 22.8), Point(114.03, 21.0), Point(113.99, 22.61), Point(120.0, 30.0)],
                         ids=["25 km NE", "180 km S", "4 km W", "1,000 km NE"])
@pytest.mark.parametrize("k", [1, 7])
def test_nearest_from_outside_the_district_matches_brute_force(store, twin_data, point, k):
    for layer_id, filters in (("buildings", ()), ("sensors", ()), ("buildings", (Filter("use", Op.EQ, "office"),))):
        expected, distances = _nearest_brute(twin_data.expected(layer_id), point, k, filters, layer_id=layer_id)
        got = store.nearest(layer_id, point, k=k, filters=filters)
        assert list(got.index) == expected, layer_id
        assert all(close(a, b) for a, b in zip(got["distance_m"], distances, strict=True))


def test_nearest_with_filters(store, twin_data):
    filters = (Filter("use", Op.EQ, "education"),)
    point = Point(114.0301, 22.6101)
    expected, _ = _nearest_brute(twin_data.expected("buildings"), point, 4, filters)
    got = store.nearest("buildings", point, k=4, filters=filters)
    assert list(got.index) == expected
    assert set(got["use"]) == {"education"}


def test_nearest_with_k_larger_than_the_layer_returns_everything_sorted(store, twin_data):
    point = Point(114.0301, 22.6101)
    expected, _ = _nearest_brute(twin_data.expected("fire_stations"), point, 50, layer_id="fire_stations")
    got = store.nearest("fire_stations", point, k=50)
    assert list(got.index) == expected and len(got) == 2
    few = store.nearest("buildings", point, k=5, filters=(Filter("name", Op.EQ, "Straddler"),))
    assert list(few.index) == [51]


def test_nearest_returns_full_rows_with_distance(store, twin_data):
    got = store.nearest("sensors", Point(114.0207, 22.6017), k=2)
    assert list(got.columns) == [*twin_data.expected("sensors").columns[:-1], "distance_m", "geometry"]
    assert got.crs.to_epsg() == 4326 and got.geometry.iloc[0].has_z
    assert got["distance_m"].dtype == np.float64


def test_nearest_on_an_empty_match_or_bad_input(store):
    assert len(store.nearest("buildings", Point(114.03, 22.61), k=3, filters=(Filter("code", Op.EQ, "none"),))) == 0
    for bad in (lambda: store.nearest("buildings", Point(114.03, 22.61), k=0),
                lambda: store.nearest("readings", Point(114.03, 22.61), k=1),
                lambda: store.nearest("buildings", box(114, 22, 115, 23), k=1)):
        with pytest.raises(InvalidQuery):
            bad()


# -- within distance -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [0.0, 50.0, 180.0, 420.0, 5000.0])
@pytest.mark.parametrize("geometry", [Point(114.0301, 22.6101), LineString([(114.022, 22.603), (114.033, 22.612)]),
                                      box(114.0250, 22.6050, 114.0280, 22.6080)], ids=lambda g: g.geom_type)
def test_within_distance_is_exact(store, twin_data, geometry, distance):
    for layer_id in ("buildings", "sensors", "roads", "fire_facilities"):
        frame = twin_data.expected(layer_id)
        distances = metric(frame).distance(metric_geometry(geometry))
        clear = (distances - distance).abs() > 1e-6
        expected = sorted(frame.index[distances <= distance], key=lambda i: (distances[i], i))
        got = store.within_distance(layer_id, geometry, distance)
        assert [i for i in got.index if clear[i]] == [i for i in expected if clear[i]], layer_id
        assert all(close(got.at[i, "distance_m"], distances[i]) for i in got.index)
        assert (got["distance_m"] <= distance + 1e-6).all()


def test_within_distance_selects_a_proper_subset(store, twin_data):
    got = store.within_distance("buildings", Point(114.0301, 22.6101), 420.0)
    assert 0 < len(got) < len(twin_data.expected("buildings"))
    assert list(got["distance_m"]) == sorted(got["distance_m"])


def test_within_distance_with_filters(store, twin_data):
    point, filters = Point(114.0301, 22.6101), (Filter("type", Op.IN, ["smoke", "heat"]),)
    frame = twin_data.expected("sensors")
    frame = frame.loc[matches(frame, "sensors", filters)]
    distances = metric(frame).distance(metric_geometry(point))
    expected = sorted(frame.index[distances <= 800], key=lambda i: (distances[i], i))
    assert list(store.within_distance("sensors", point, 800, filters=filters).index) == expected


def test_within_a_huge_distance_is_everything(store):
    got = store.within_distance("buildings", Point(114.0301, 22.6101), 1e8)
    assert sorted(got.index) == list(range(1, 52))


def test_within_distance_bad_input(store):
    for bad in (lambda: store.within_distance("buildings", Point(114.03, 22.61), -1),
                lambda: store.within_distance("buildings", Point(114.03, 22.61), float("nan")),
                lambda: store.within_distance("alarms", Point(114.03, 22.61), 10)):
        with pytest.raises(InvalidQuery):
            bad()


# -- aggregates by grid ----------------------------------------------------------------------------------------


def _cells(twin_data, level):
    grids = twin_data.expected("grids")
    return grids[grids["level"] == level].sort_values("code")


def _aggregate_brute(twin_data, layer_id, level, sums=(), filters=()):
    frame = twin_data.expected(layer_id)
    if filters:
        frame = frame.loc[matches(frame, layer_id, filters)]
    cells = _cells(twin_data, level)
    points = shapely.point_on_surface(frame.geometry.to_numpy())
    rows = []
    for code, cell in zip(cells["code"], cells.geometry, strict=True):
        inside = shapely.contains(cell, points)
        row = {"code": code, "count": int(inside.sum())}
        for name in sums:
            row[name] = frame.loc[inside, name].fillna(0).sum()
        rows.append(row)
    return pd.DataFrame(rows).set_index("code")


@pytest.mark.parametrize("level", ["grid", "community", "subdistrict", "district"])
def test_aggregate_buildings_by_grid_matches_brute_force(store, twin_data, level):
    expected = _aggregate_brute(twin_data, "buildings", level, sums=("residents", "height_m"))
    got = store.aggregate_by_grid("buildings", grid_level=level, sums=["residents", "height_m"])
    assert list(got.index) == list(expected.index) and got.index.name == "code"
    assert list(got["count"]) == list(expected["count"])
    assert list(got["residents"]) == [int(v) for v in expected["residents"]]
    np.testing.assert_allclose(got["height_m"], expected["height_m"].astype(float))
    assert got["count"].sum() == 51


def test_aggregate_includes_empty_cells_and_uses_representative_points(store, twin_data):
    got = store.aggregate_by_grid("buildings")
    assert got.loc["G23", "count"] == 0
    straddler = twin_data.expected("buildings").loc[51]
    assert straddler["grid_code"] == "G21"  # its representative point lies in G21, most of it too
    assert got.loc["G21", "count"] == _aggregate_brute(twin_data, "buildings", "grid").loc["G21", "count"]


def test_aggregate_with_filters_and_points(store, twin_data):
    filters = (Filter("status", Op.NE, "online"),)
    expected = _aggregate_brute(twin_data, "sensors", "grid", sums=("last_value",), filters=filters)
    got = store.aggregate_by_grid("sensors", filters=filters, sums=("last_value",))
    assert list(got["count"]) == list(expected["count"])
    np.testing.assert_allclose(got["last_value"], expected["last_value"])


def test_aggregate_a_table_by_grid_code_and_ancestors(store, twin_data):
    alarms = twin_data.expected("alarms")
    by_grid = store.aggregate_by_grid("alarms")
    direct = alarms["grid_code"].value_counts()
    assert {code: int(by_grid.loc[code, "count"]) for code in by_grid.index} == {
        code: int(direct.get(code, 0)) for code in ["G11", "G12", "G21", "G22", "G23"]}
    by_community = store.aggregate_by_grid("alarms", grid_level="community")
    parent = {"G11": "C1", "G12": "C1", "G21": "C2", "G22": "C2", "C1": "C1", "C2": "C2"}
    mapped = alarms["grid_code"].map(parent).value_counts()
    assert dict(by_community["count"]) == {"C1": mapped["C1"], "C2": mapped["C2"]}
    assert by_community["count"].sum() == 10  # the unknown code and the null one belong nowhere
    opened = store.aggregate_by_grid("alarms", grid_level="district", filters=(Filter("status", Op.EQ, "open"),))
    assert opened.loc["D1", "count"] == sum(
        1 for code, status in zip(alarms["grid_code"], alarms["status"], strict=True)
        if status == "open" and code in parent)


def test_aggregate_bad_input(store):
    for bad in (lambda: store.aggregate_by_grid("buildings", grid_level="province"),
                lambda: store.aggregate_by_grid("buildings", sums=["name"]),
                lambda: store.aggregate_by_grid("buildings", sums=["nope"]),
                lambda: store.aggregate_by_grid("readings")):
        with pytest.raises(InvalidQuery):
            bad()
