"""OGC API – Features Part 3 over real HTTP: CQL2 text and JSON filters, filter-crs, queryables, sortby, errors.

Every filter's answer is compared with a brute-force evaluation of the same expression on the sample buildings
(``tests.cql2.oracle``: plain Python and shapely, row by row).
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from layers import get_layer
from tests.api.features_fixtures import *  # noqa: F403 - the fixtures
from tests.api.features_fixtures import assert_ogc_error
from tests.cql2.oracle import matching_ids
from twin import chinacrs
from twin.cql2 import parse_json, parse_text
from twin.store.base import FeatureQuery

STATION = "POLYGON((114.020 22.607, 114.028 22.607, 114.028 22.616, 114.020 22.616, 114.020 22.607))"

FILTERS = [
    "height_m > 100",
    "height_m > 100 AND use = 'office'",
    "use IN ('office', 'commercial') OR height_m BETWEEN 50 AND 60",
    "NOT (floors_below > 1) AND year_built >= 2015",
    "name LIKE '%大厦%'",
    "name NOT LIKE '%中心' AND address IS NOT NULL",
    "name IS NULL AND rental_units > 20",
    f"S_INTERSECTS(geometry, {STATION})",
    f"S_WITHIN(geometry, {STATION}) AND height_m >= 24",
    f"NOT S_INTERSECTS(geometry, {STATION}) AND height_m > 150",
    "S_CONTAINS(geometry, POINT(114.0239 22.6119))",
    "S_DISJOINT(geometry, BBOX(114.00, 22.59, 114.025, 22.62)) AND use = 'residential'",
    "S_CROSSES(geometry, LINESTRING(114.010 22.6119, 114.040 22.6119))",
    "S_INTERSECTS(geometry, BBOX(114.02, 22.60, 114.03, 22.62)) OR name = '深圳北站'",
    "floors_above > floors_below",
]


@pytest.fixture(scope="module")
def buildings(sample_store):
    return sample_store.query("buildings")


def _ids(client: httpx.Client, params: dict) -> list[int]:
    response = client.get("/collections/buildings/items", params={"limit": 10000, **params})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["numberMatched"] == doc["numberReturned"]
    return [f["id"] for f in doc["features"]]


@pytest.mark.parametrize("text", FILTERS)
def test_cql2_text_matches_brute_force(http, buildings, text):
    expected = matching_ids(buildings, "buildings", parse_text(text))
    assert _ids(http, {"filter": text}) == expected
    assert _ids(http, {"filter": text, "filter-lang": "cql2-text"}) == expected


def test_the_filters_are_selective(buildings):
    sizes = [len(matching_ids(buildings, "buildings", parse_text(t))) for t in FILTERS]
    assert all(0 < n < len(buildings) for n in sizes), sizes


@pytest.mark.parametrize("document", [
    {"op": "and", "args": [{"op": ">", "args": [{"property": "height_m"}, 100]},
                           {"op": "s_intersects", "args": [{"property": "geometry"},
                                                           {"type": "Polygon", "coordinates": [[
                                                               [114.020, 22.607], [114.028, 22.607], [114.028, 22.616],
                                                               [114.020, 22.616], [114.020, 22.607]]]}]}]},
    {"op": "or", "args": [{"op": "like", "args": [{"property": "name"}, "%广场%"]},
                          {"op": "in", "args": [{"property": "use"}, ["education", "public"]]}]},
    {"op": "not", "args": [{"op": "isNull", "args": [{"property": "name"}]}]},
])
def test_cql2_json_matches_brute_force(http, buildings, document):
    expected = matching_ids(buildings, "buildings", parse_json(document))
    assert 0 < len(expected) < len(buildings)
    assert _ids(http, {"filter": json.dumps(document), "filter-lang": "cql2-json"}) == expected


def test_filter_crs_reads_coordinates_in_that_crs(http, buildings):
    expected = _ids(http, {"filter": f"S_INTERSECTS(geometry, {STATION})"})
    latlon = shapely.transform(shapely.from_wkt(STATION), lambda c: c[:, ::-1])
    assert _ids(http, {"filter": f"S_INTERSECTS(geometry, {latlon.wkt})",
                       "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}) == expected
    to_metric = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    point = (114.0239, 22.6119)  # inside the station hall
    east, north = to_metric.transform(*point)
    in_metres = _ids(http, {"filter": f"S_CONTAINS(geometry, POINT({north} {east}))",
                            "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4547"})
    assert in_metres == _ids(http, {"filter": f"S_CONTAINS(geometry, POINT({point[0]} {point[1]}))"}) != []
    gx, gy = chinacrs.wgs84_to_gcj02(*point)
    assert _ids(http, {"filter": f"S_CONTAINS(geometry, POINT({float(gx)} {float(gy)}))",
                       "filter-crs": "urn:x-beizhan:def:crs:GCJ-02"}) == in_metres


def test_filter_combines_with_bbox_properties_and_paging(http, buildings):
    text = "height_m > 24"
    boxed = set(_ids(http, {"bbox": "114.02,22.60,114.03,22.62"}))
    expected = [i for i in matching_ids(buildings, "buildings", parse_text(text)) if i in boxed]
    seen, url = [], "/collections/buildings/items"
    params: dict | None = {"filter": text, "bbox": "114.02,22.60,114.03,22.62", "limit": 40, "properties": "height_m"}
    while url:
        doc = http.get(url, params=params).json()
        assert doc["numberMatched"] == len(expected)
        assert all(set(f["properties"]) == {"height_m"} for f in doc["features"])
        seen.extend(f["id"] for f in doc["features"])
        url, params = next((lk["href"] for lk in doc["links"] if lk["rel"] == "next"), None), None
    assert seen == expected and len(expected) > 40


def test_sortby_orders_with_nulls_last(http, buildings):
    doc = http.get("/collections/buildings/items", params={"sortby": "-residents,+name", "limit": 10000,
                                                           "properties": "residents,name"}).json()
    residents = [f["properties"]["residents"] for f in doc["features"]]
    present = [r for r in residents if r is not None]
    assert present == sorted(present, reverse=True)
    assert residents[len(present):] == [None] * (len(residents) - len(present))
    plus_as_space = http.get("/collections/buildings/items?sortby=+height_m&limit=50").json()
    heights = [f["properties"]["height_m"] for f in plus_as_space["features"]]
    assert heights == sorted(heights) and heights[0] == buildings["height_m"].min()


def test_queryables_and_sortables_describe_the_catalogue(http):
    response = http.get("/collections/buildings/queryables")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    layer = get_layer("buildings")
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert set(schema["properties"]) == {"id", "geometry", *layer.field_names}
    assert schema["properties"]["geometry"]["format"] == "geometry-polygon"
    assert schema["properties"]["use"]["enum"] == list(layer.field("use").choices)
    assert schema["properties"]["height_m"]["type"] == "number"
    sortables = http.get("/collections/buildings/sortables").json()
    assert "geometry" not in sortables["properties"] and "height_m" in sortables["properties"]
    links = {lk["rel"] for lk in http.get("/collections/buildings").json()["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/queryables" in links
    assert http.get("/collections/buildings/queryables", params={"f": "html"}).text.count("<tr>") == \
        len(schema["properties"]) + 1


def test_queryables_of_a_table_mark_its_time(staff):
    schema = staff.get("/collections/readings/queryables").json()
    assert "geometry" not in schema["properties"]
    assert schema["properties"]["ts"] == {**schema["properties"]["ts"], "format": "date-time",
                                          "x-ogc-role": "primary-instant"}


def test_temporal_filter_on_a_table(staff, sample_store):
    frame = sample_store.query("alarms")
    text = "T_AFTER(opened_at, TIMESTAMP('2026-11-24T12:00:00Z')) OR status = 'resolved'"
    expected = matching_ids(frame, "alarms", parse_text(text))
    doc = staff.get("/collections/alarms/items", params={"filter": text, "limit": 1000}).json()
    assert [f["id"] for f in doc["features"]] == expected and 0 < len(expected) < len(frame)


@pytest.mark.parametrize(("params", "words"), [
    ({"filter": "height_m >"}, "at position 11"),
    ({"filter": "height_m > 10 AND (use = 'office'"}, "at position 34"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))"}, "at position 24"),
    ({"filter": "{\"op\": \"=\", \"args\": [1", "filter-lang": "cql2-json"}, "at position 23"),
    ({"filter": "{\"op\": \"~\", \"args\": []}", "filter-lang": "cql2-json"}, "at /op"),
    ({"filter": "height_m > 1", "filter-lang": "cql-text"}, "filter-lang"),
    ({"filter": "tallness > 1"}, "tallness"),
    ({"filter": "height_m LIKE '1%'"}, "LIKE"),
    ({"filter": "height_m = 'tall'"}, "height_m"),
    ({"filter": "geometry = 1"}, "spatial function"),
    ({"filter": "T_AFTER(height_m, DATE('2020-01-01'))"}, "date"),
    ({"filter": "S_INTERSECTS(geometry, POINT(114 22))", "filter-crs": "EPSG:32650"}, "not offered"),
    ({"sortby": "tallness"}, "tallness"),
])
def test_bad_filters_are_400_with_a_reason(http, params, words):
    body = assert_ogc_error(http.get("/collections/buildings/items", params=params), 400)
    assert words in body["description"]


def test_spatial_filter_on_a_table_is_400(staff):
    assert_ogc_error(staff.get("/collections/readings/items", params={"filter": "S_INTERSECTS(geometry, "
                                                                                  "POINT(114 22))"}), 400)


def test_injection_through_a_filter_is_harmless(http, sample_store):
    before = sample_store.count("buildings")
    assert _ids(http, {"filter": "name = 'x''; DROP TABLE buildings; --'"}) == []
    assert sample_store.count("buildings") == before


def test_estimated_counts_still_page_through_everything(staff, sample_store):
    """readings is above the exact-count limit: numberMatched is sampled, but next links are exact."""
    text = "sensor_id <= 5000 AND value > 0"
    ids, url, params, matched = [], "/collections/readings/items", {"filter": text, "limit": 10000}, set()
    while url:
        doc = staff.get(url, params=params).json()
        matched.add(doc["numberMatched"])
        ids.extend(f["id"] for f in doc["features"])
        url, params = next((lk["href"] for lk in doc["links"] if lk["rel"] == "next"), None), None
    frame = sample_store.query("readings", FeatureQuery(properties=("sensor_id", "value")))
    exact = frame.index[(frame["sensor_id"] <= 5000).to_numpy(dtype=bool) & (frame["value"] > 0).to_numpy(dtype=bool)]
    assert ids == list(exact) and len(ids) > 20000
    assert all(abs(m - len(ids)) <= 0.1 * len(ids) for m in matched)
    assert np.all(np.diff(ids) > 0)
