"""Contract: CQL2 filters (``FeatureQuery.expr``) — one behaviour on every store, checked against a brute-force oracle.

The expressions are written in CQL2 text and parsed by ``twin.cql2``; the expected answers come from
``tests.cql2.oracle``, which evaluates the raw AST row by row with three-valued logic.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.cql2.oracle import matching_ids
from twin.cql2 import parse_json, parse_text
from twin.errors import InvalidQuery
from twin.store.base import BBox, FeatureQuery, Filter, Op, Sort, TimeRange

T = "2026-11-25T"
B1 = "POLYGON((114.0205 22.6015, 114.0209 22.6015, 114.0209 22.6018, 114.0205 22.6018, 114.0205 22.6015))"

CASES = [
    ("buildings", "height_m > 36"),
    ("buildings", "height_m >= 24.5 AND use = 'office'"),
    ("buildings", "NOT (floors_below = 2)"),
    ("buildings", "NOT floors_below = 2 OR floors_below IS NULL"),
    ("buildings", "floors_below <> 2 OR residents > 500"),
    ("buildings", "NOT (floors_below <> 2 OR residents > 500)"),
    ("buildings", "name LIKE 'Tower%'"),
    ("buildings", "name NOT LIKE '%a'"),
    ("buildings", "name LIKE 'Block\\_7' OR name LIKE '%50\\%'"),
    ("buildings", "height_m BETWEEN 24.5 AND 50"),
    ("buildings", "height_m NOT BETWEEN 24.5 AND 50"),
    ("buildings", "floors_below BETWEEN 1 AND 2"),
    ("buildings", "use IN ('office', 'residential')"),
    ("buildings", "use NOT IN ('office')"),
    ("buildings", "floors_below NOT IN (1, 2)"),
    ("buildings", "id IN (1, 5, 999)"),
    ("buildings", "address IS NULL"),
    ("buildings", "address IS NOT NULL AND NOT (residents IS NULL)"),
    ("buildings", "floors_above > floors_below"),
    ("buildings", "rental_units = enterprises"),
    ("buildings", "10 < height_m"),
    ("buildings", "'Tower A' = name"),
    ("buildings", "1 = 1 AND height_m = 100"),
    ("buildings", "1 = 2 OR height_m = 100"),
    ("buildings", "TRUE"),
    ("buildings", "FALSE OR NOT TRUE"),
    ("buildings", "name = 'x''; DROP TABLE buildings; --'"),
    ("buildings", "S_INTERSECTS(geometry, BBOX(114.021, 22.602, 114.036, 22.615))"),
    ("buildings", "S_INTERSECTS(geometry, POLYGON((114.020 22.600, 114.040 22.605, 114.025 22.620, 114.020 22.600)))"),
    ("buildings", "S_WITHIN(geometry, POLYGON((114.020 22.600, 114.040 22.605, 114.025 22.620, 114.020 22.600)))"),
    ("buildings", "S_CONTAINS(geometry, POINT(114.0207 22.6016))"),
    ("buildings", "S_DISJOINT(geometry, BBOX(114.021, 22.602, 114.036, 22.615))"),
    ("buildings", "S_TOUCHES(geometry, LINESTRING(114.0205 22.6010, 114.0205 22.6030))"),
    ("buildings", "S_CROSSES(geometry, LINESTRING(114.0200 22.6016, 114.0400 22.6016))"),
    ("buildings", "S_OVERLAPS(geometry, BBOX(114.0207, 22.6010, 114.0300, 22.6017))"),
    ("buildings", f"S_EQUALS(geometry, {B1})"),
    ("buildings", "S_WITHIN(POINT(114.0207 22.6016), geometry)"),
    ("buildings", "NOT S_INTERSECTS(geometry, BBOX(114.021, 22.602, 114.036, 22.615)) AND height_m > 24.5"),
    ("buildings", "S_INTERSECTS(geometry, BBOX(114.021, 22.602, 114.036, 22.615)) OR name LIKE 'Tower%'"),
    ("buildings", "NOT (S_DISJOINT(geometry, BBOX(114.021, 22.602, 114.036, 22.615)) OR residents > 300)"),
    ("buildings", "S_INTERSECTS(geometry, BBOX(114.021, 22.602, 114.036, 22.615)) AND NOT (residents > 100)"),
    ("buildings", "S_INTERSECTS(geometry, MULTIPOINT((114.0207 22.6016), (114.0226 22.6053)))"),
    ("buildings", "S_INTERSECTS(geometry, GEOMETRYCOLLECTION(POINT(114.0207 22.6016), "
                  "LINESTRING(114.030 22.600, 114.030 22.620)))"),
    ("buildings", "S_INTERSECTS(POINT(1 2), POINT(1 2)) AND height_m = 10"),
    ("sensors", f"last_seen > TIMESTAMP('{T}10:00:00Z')"),
    ("sensors", f"last_seen <= '{T}12:00:00+02:00'"),
    ("sensors", f"T_AFTER(last_seen, TIMESTAMP('{T}12:00:00Z'))"),
    ("sensors", f"T_BEFORE(last_seen, TIMESTAMP('{T}12:00:00Z'))"),
    ("sensors", f"T_BEFORE(TIMESTAMP('{T}12:00:00Z'), last_seen)"),
    ("sensors", f"T_DURING(last_seen, INTERVAL('{T}09:00:00Z', '{T}14:00:00Z'))"),
    ("sensors", f"T_INTERSECTS(last_seen, INTERVAL('{T}09:00:00Z', '..'))"),
    ("sensors", f"T_INTERSECTS(last_seen, INTERVAL('..', '{T}09:00:00Z'))"),
    ("sensors", f"T_EQUALS(last_seen, TIMESTAMP('{T}08:37:00Z'))"),
    ("sensors", f"T_DISJOINT(last_seen, INTERVAL('{T}09:00:00Z', '{T}14:00:00Z'))"),
    ("sensors", "NOT T_AFTER(last_seen, INTERVAL('..', '..'))"),
    ("sensors", "T_INTERSECTS(last_seen, INTERVAL('..', '..'))"),
    ("sensors", "T_INTERSECTS(last_seen, DATE('2026-11-25'))"),
    ("sensors", "T_DURING(last_seen, INTERVAL('2026-11-25', '2026-11-26'))"),
    ("sensors", f"T_MEETS(last_seen, INTERVAL('{T}08:37:00Z', '..'))"),
    ("sensors", f"T_METBY(last_seen, INTERVAL('..', '{T}08:37:00Z'))"),
    ("sensors", f"T_STARTS(last_seen, INTERVAL('{T}08:37:00Z', '{T}20:00:00Z'))"),
    ("sensors", f"T_FINISHES(last_seen, INTERVAL('{T}07:00:00Z', '{T}09:14:00Z'))"),
    ("sensors", f"T_CONTAINS(last_seen, INTERVAL('{T}09:00:00Z', '{T}14:00:00Z'))"),
    ("sensors", f"NOT T_OVERLAPS(last_seen, INTERVAL('{T}09:00:00Z', '{T}14:00:00Z'))"),
    ("sensors", f"T_STARTEDBY(INTERVAL('{T}08:37:00Z', '{T}20:00:00Z'), last_seen)"),
    ("sensors", f"T_OVERLAPPEDBY(INTERVAL('{T}08:37:00Z', '{T}20:00:00Z'), INTERVAL('{T}08:00:00Z', '{T}09:00:00Z'))"),
    ("sensors", "status = 'online' AND S_INTERSECTS(geometry, BBOX(114.020, 22.600, 114.030, 22.620))"),
    ("fire_facilities", "last_inspected < DATE('2026-05-01')"),
    ("fire_facilities", "T_DURING(last_inspected, INTERVAL('2026-03-01', '2026-09-01'))"),
    ("fire_facilities", "T_AFTER(next_inspection, last_inspected)"),
    ("fire_facilities", "T_BEFORE(last_inspected, DATE('2026-06-06')) OR status = 'fault'"),
    ("levels", "is_refuge = TRUE"),
    ("levels", "is_refuge <> true"),
    ("readings", "sensor_id = 3 AND value >= 305"),
    ("readings", f"T_DURING(ts, INTERVAL('{T}08:15:00Z', '{T}09:05:00Z'))"),
    ("readings", f"T_INTERSECTS(ts, INTERVAL('{T}08:20:00Z', '{T}08:50:00Z')) AND sensor_id IN (1, 2)"),
    ("alarms", "grid_code IS NULL OR status = 'open'"),
    ("alarms", "acknowledged_at IS NULL AND NOT severity = 'fault'"),
    ("roads", "S_CROSSES(geometry, LINESTRING(114.025 22.600, 114.025 22.620))"),
    ("roads", "S_INTERSECTS(geometry, POINT(114.0302 22.61))"),
    ("grids", "S_CONTAINS(geometry, POINT(114.035 22.605)) AND level = 'grid'"),
    ("grids", "S_TOUCHES(geometry, POINT(114.030 22.605))"),
]


@pytest.mark.parametrize(("layer_id", "text"), CASES, ids=lambda v: str(v)[:70])
def test_filters_match_the_oracle(store, twin_data, layer_id, text):
    expr = parse_text(text)
    expected = matching_ids(twin_data.expected(layer_id), layer_id, expr)
    query = FeatureQuery(expr=expr)
    assert list(store.query(layer_id, query).index) == expected
    assert store.count(layer_id, query) == len(expected)


def test_the_cases_select_something_and_not_everything(twin_data):
    sizes = [(len(matching_ids(twin_data.expected(lid), lid, parse_text(t))), len(twin_data.frames[lid]))
             for lid, t in CASES]
    assert sum(1 for n, _ in sizes if n == 0) >= 3
    assert sum(1 for n, total in sizes if 0 < n < total) > len(CASES) * 2 // 3


def test_three_valued_logic_is_visible_in_the_fixture(twin_data):
    """NOT (x = 2) and x <> 2 both leave the NULL rows out, unlike 'not in the set where x = 2'."""
    frame = twin_data.expected("buildings")
    negated = matching_ids(frame, "buildings", parse_text("NOT (floors_below = 2)"))
    equal = matching_ids(frame, "buildings", parse_text("floors_below = 2"))
    nulls = frame.index[frame["floors_below"].isna()].tolist()
    assert nulls and set(negated).isdisjoint(nulls)
    assert len(negated) + len(equal) + len(nulls) == len(frame)


def test_text_and_json_filters_give_the_same_rows(store):
    text = parse_text("height_m >= 36 AND S_INTERSECTS(geometry, BBOX(114.021, 22.602, 114.036, 22.615))")
    json = parse_json({"op": "and", "args": [
        {"op": ">=", "args": [{"property": "height_m"}, 36]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [114.021, 22.602, 114.036, 22.615]}]},
    ]})
    assert text == json
    assert list(store.query("buildings", FeatureQuery(expr=json)).index) == list(
        store.query("buildings", FeatureQuery(expr=text)).index)


def test_expr_combines_with_filters_bbox_and_time(store, twin_data):
    expr = parse_text("status <> 'offline' OR last_value > 40")
    query = FeatureQuery(expr=expr, bbox=BBox(114.020, 22.600, 114.032, 22.620),
                         filters=(Filter("type", Op.NE, "gas"),), time=TimeRange(start=pd.Timestamp(f"{T}09:00:00Z")))
    frame = twin_data.expected("sensors")
    both = set(matching_ids(frame, "sensors", expr))
    both &= set(frame.index[frame.geometry.intersects(BBox(114.020, 22.600, 114.032, 22.620).to_polygon())])
    both &= set(frame.index[(frame["type"] != "gas") & (frame["last_seen"] >= pd.Timestamp(f"{T}09:00:00Z"))])
    assert 0 < len(both) < len(frame)
    assert list(store.query("sensors", query).index) == sorted(both)
    assert store.count("sensors", query) == len(both)


@pytest.mark.parametrize("text", [
    "height_m >= 24.5",
    "S_INTERSECTS(geometry, BBOX(114.021, 22.602, 114.036, 22.615)) OR height_m = 100",
])
def test_pages_of_a_filter_add_up_in_sort_order(store, text):
    expr = parse_text(text)
    sort = (Sort("height_m", descending=True), Sort("name"))
    whole = store.query("buildings", FeatureQuery(expr=expr, sort=sort))
    total = store.count("buildings", FeatureQuery(expr=expr, sort=sort, limit=3))
    assert total == len(whole) > 10
    pages = [store.query("buildings", FeatureQuery(expr=expr, sort=sort, limit=4, offset=o))
             for o in range(0, total, 4)]
    assert list(pd.concat(pages).index) == list(whole.index)
    heights = list(whole["height_m"])
    assert heights == sorted(heights, reverse=True)


def test_properties_with_a_spatial_filter(store):
    got = store.query("buildings", FeatureQuery(expr=parse_text("S_CONTAINS(geometry, POINT(114.0207 22.6016))"),
                                                properties=("code",)))
    assert list(got.columns) == ["code", "geometry"] and list(got["code"]) == ["B001"]


def test_injection_in_a_filter_leaves_the_table_alone(store):
    store.query("buildings", FeatureQuery(expr=parse_text("name = 'x''; DROP TABLE buildings; --'")))
    assert store.count("buildings") == 51


@pytest.mark.parametrize(("layer_id", "text"), [
    ("buildings", "nope = 1"),
    ("buildings", "height_m LIKE '1%'"),
    ("buildings", "height_m = 'tall'"),
    ("buildings", "floors_above = 2.5"),
    ("buildings", "geometry = 1"),
    ("buildings", "name = height_m"),
    ("buildings", "name LIKE code"),
    ("buildings", "S_INTERSECTS(height_m, POINT(1 2))"),
    ("buildings", "S_INTERSECTS(geometry, geometry)"),
    ("buildings", "T_AFTER(height_m, DATE('2020-01-01'))"),
    ("buildings", "1 = 'one'"),
    ("sensors", "last_seen > DATE('2026-01-01')"),
    ("sensors", "T_AFTER(last_seen, INTERVAL('2026-02-01T00:00:00Z', '2026-01-01T00:00:00Z'))"),
    ("fire_facilities", "last_inspected = TIMESTAMP('2026-01-01T00:00:00Z')"),
    ("fire_facilities", "T_AFTER(last_inspected, DATE('2026-01-01')) AND T_BEFORE(last_seen, DATE('2026-01-01'))"),
    ("readings", "S_INTERSECTS(geometry, POINT(114 22))"),
    ("readings", "T_AFTER(ts, sensor_id)"),
])
def test_filters_the_layer_cannot_answer_are_invalid(store, layer_id, text):
    query = FeatureQuery(expr=parse_text(text))
    with pytest.raises(InvalidQuery):
        store.query(layer_id, query)
    with pytest.raises(InvalidQuery):
        store.count(layer_id, query)
