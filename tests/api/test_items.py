"""OGC API – Features Part 1 over real HTTP: items pages, paging links, single features, formats, tables, errors."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import shape

from tests.api.features_fixtures import *  # noqa: F403 - the fixtures
from tests.api.features_fixtures import assert_ogc_error
from twin.store.base import BBox, FeatureQuery, Filter, Op

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
RFC3339_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def _links(doc: dict) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in doc["links"]}


def _walk(client: httpx.Client, url: str, params: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Every page reached through ``next`` links: (features, pages)."""
    features, pages = [], []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        features.extend(page["features"])
        nxt = _links(page).get("next")
        if nxt is None:
            return features, pages
        assert len(pages) < 1000
        response = client.get(nxt)


def test_items_page_is_geojson_by_default(http, sample_store):
    response = http.get("/collections/buildings/items")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    assert response.headers["content-crs"] == f"<{CRS84}>"
    doc = response.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"]) == 10  # the default limit
    assert doc["numberMatched"] == sample_store.count("buildings")
    stamp = dt.datetime.fromisoformat(doc["timeStamp"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 120
    links = _links(doc)
    assert {"self", "alternate", "next", "collection"} <= set(links) and "prev" not in links
    expected = sample_store.query("buildings", FeatureQuery(limit=10))
    assert [f["id"] for f in doc["features"]] == list(expected.index)
    first = doc["features"][0]
    assert first["type"] == "Feature" and first["properties"]["code"] == expected["code"].iloc[0]
    assert shape(first["geometry"]).equals_exact(expected.geometry.iloc[0], 1e-12)


def test_next_links_walk_the_whole_layer_exactly_once(http, sample_store):
    features, pages = _walk(http, "/collections/buildings/items", {"limit": 1000})
    ids = [f["id"] for f in features]
    assert len(ids) == len(set(ids)) == sample_store.count("buildings")
    assert ids == list(sample_store.query("buildings", FeatureQuery(properties=())).index)
    assert len(pages) == -(-len(ids) // 1000)
    assert all(p["numberMatched"] == len(ids) for p in pages)
    assert all("prev" in _links(p) for p in pages[1:]) and "next" not in _links(pages[-1])


def test_paging_keeps_filters_sort_and_crs(http, sample_store):
    params = {"limit": 25, "bbox": "114.015,22.600,114.035,22.620", "sortby": "-height_m,name", "use": "office",
              "crs": "http://www.opengis.net/def/crs/EPSG/0/4547"}
    features, pages = _walk(http, "/collections/buildings/items", params)
    query = FeatureQuery(bbox=BBox(114.015, 22.600, 114.035, 22.620), filters=(Filter("use", Op.EQ, "office"),))
    expected = sample_store.query("buildings", query)
    assert len(features) == len(expected) > 25 and len(pages) > 1
    heights = [f["properties"]["height_m"] for f in features]
    assert heights == sorted(heights, reverse=True)
    assert sorted(f["id"] for f in features) == sorted(expected.index)
    assert all(p["numberMatched"] == len(expected) for p in pages)
    x, _ = shapely.get_coordinates(shape(features[0]["geometry"]))[0]
    assert 2.49e6 < x < 2.51e6  # still northing first in EPSG:4547 on the later pages
    nxt = _links(pages[0])["next"]
    for part in ("bbox=", "sortby=", "use=office", "crs=", "offset=25", "limit=25"):
        assert part in nxt


def test_prev_link_goes_back_one_page(http):
    doc = http.get("/collections/roads/items", params={"limit": 20, "offset": 50}).json()
    prev = httpx.URL(_links(doc)["prev"])
    assert prev.params["offset"] == "30" and prev.params["limit"] == "20"
    near_start = http.get("/collections/roads/items", params={"limit": 20, "offset": 5}).json()
    assert httpx.URL(_links(near_start)["prev"]).params["offset"] == "0"


def test_limit_default_and_clamp_come_from_settings(small):
    default = small.get("/collections/buildings/items").json()
    assert default["numberReturned"] == 7
    clamped = small.get("/collections/buildings/items", params={"limit": 100000}).json()
    assert clamped["numberReturned"] == 50
    assert httpx.URL(_links(clamped)["next"]).params["limit"] == "50"


def test_last_partial_page_has_no_next_and_exact_count(http, sample_store):
    total = sample_store.count("roads")
    doc = http.get("/collections/roads/items", params={"limit": 100, "offset": total - 3}).json()
    assert doc["numberReturned"] == 3 and doc["numberMatched"] == total
    assert "next" not in _links(doc)
    past = http.get("/collections/roads/items", params={"offset": total + 10}).json()
    assert past["numberReturned"] == 0 and past["features"] == [] and past["numberMatched"] == total


def test_single_feature(http, sample_store):
    response = http.get("/collections/buildings/items/3")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/geo+json")
    doc = response.json()
    expected = sample_store.get("buildings", 3)
    assert doc["id"] == 3 and doc["type"] == "Feature"
    assert doc["properties"]["name"] == expected["name"].iloc[0]
    assert shape(doc["geometry"]).equals_exact(expected.geometry.iloc[0], 1e-12)
    assert {"self", "alternate", "collection"} <= set(_links(doc))


@pytest.mark.parametrize("feature_id", ["999999", "0", "abc", "-1", "1.5"])
def test_unknown_feature_is_404(http, feature_id):
    assert_ogc_error(http.get(f"/collections/buildings/items/{feature_id}"), 404)


def test_html_on_request(http):
    for response in (http.get("/collections/buildings/items", params={"f": "html", "limit": 3}),
                     http.get("/collections/buildings/items", headers={"Accept": "text/html"}),
                     http.get("/collections/buildings/items/3", params={"f": "html"})):
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert "<table>" in response.text and "height_m" in response.text
    assert http.get("/collections/buildings/items", headers={"Accept": "application/geo+json"}).json()["type"] \
        == "FeatureCollection"


def test_properties_parameter_selects_columns(http):
    doc = http.get("/collections/buildings/items", params={"properties": "name,height_m", "limit": 5}).json()
    assert all(set(f["properties"]) == {"name", "height_m"} for f in doc["features"])
    only_geometry = http.get("/collections/buildings/items", params={"properties": "", "limit": 2}).json()
    assert all(f["properties"] == {} and f["geometry"] for f in only_geometry["features"])


def test_property_filters_match_the_store(http, sample_store):
    single = http.get("/collections/buildings/items", params={"use": "office", "limit": 10000}).json()
    expected = sample_store.query("buildings", FeatureQuery(filters=(Filter("use", Op.EQ, "office"),)))
    assert [f["id"] for f in single["features"]] == list(expected.index) and len(expected) > 10
    both = http.get("/collections/buildings/items?use=office&use=education&limit=10000").json()
    either = sample_store.count("buildings", FeatureQuery(filters=(Filter("use", Op.IN, ["office", "education"]),)))
    assert both["numberMatched"] == len(both["features"]) == either > len(expected)
    typed = http.get("/collections/buildings/items", params={"floors_above": "32", "limit": 10000}).json()
    assert typed["features"] and all(f["properties"]["floors_above"] == 32 for f in typed["features"])


def test_bbox_matches_the_store(http, sample_store):
    doc = http.get("/collections/buildings/items", params={"bbox": "114.02,22.605,114.025,22.61",
                                                           "limit": 10000}).json()
    expected = sample_store.query("buildings", FeatureQuery(bbox=BBox(114.02, 22.605, 114.025, 22.61)))
    assert [f["id"] for f in doc["features"]] == list(expected.index) and doc["numberMatched"] == len(expected) > 0
    boxed = http.get("/collections/buildings/items", params={"bbox": "114.02,22.605,0,114.025,22.61,500",
                                                             "limit": 10000}).json()
    assert boxed["numberMatched"] == len(expected)


def test_staff_layers_need_a_key(http):
    body = assert_ogc_error(http.get("/collections/sensors/items"), 401)
    assert "inspector" in body["description"]
    assert_ogc_error(http.get("/collections/readings/items/1"), 401)


def test_tables_are_features_with_null_geometry(staff, sample_store):
    response = staff.get("/collections/readings/items", params={"limit": 5, "sortby": "-ts"})
    assert response.status_code == 200, response.text
    assert "content-crs" not in response.headers
    doc = response.json()
    assert doc["numberMatched"] == sample_store.count("readings") and doc["numberReturned"] == 5
    assert all(f["geometry"] is None for f in doc["features"])
    stamps = [f["properties"]["ts"] for f in doc["features"]]
    assert all(RFC3339_MS.fullmatch(s) for s in stamps) and stamps == sorted(stamps, reverse=True)
    assert staff.get("/collections/alarms/items/1").json()["geometry"] is None


@pytest.mark.parametrize("table", ["readings", "alarms", "inspections"])
def test_table_collections_describe_geojson_items_without_space(staff, table):
    doc = staff.get(f"/collections/{table}").json()
    assert doc["itemType"] == "feature"  # GeoJSON features with null geometry (not OGC API – Records records)
    assert "spatial" not in doc["extent"] and set(doc["extent"]) == {"temporal"}
    assert not {"crs", "storageCrs", "geometryType", "minZoom", "maxZoom"} & set(doc)
    items = [link for link in doc["links"] if link["rel"] == "items"]
    assert {link["type"] for link in items} == {"application/geo+json", "text/html"}
    geojson = next(link for link in items if link["type"] == "application/geo+json")
    page = staff.get(geojson["href"], params={"limit": 3})
    assert page.headers["content-type"] == "application/geo+json"  # what the link said it would be
    links = {link["rel"]: link for link in page.json()["links"]}
    assert links["self"]["type"] == links["next"]["type"] == "application/geo+json"
    assert links["alternate"]["type"] == "text/html" and links["collection"]["type"] == "application/json"
    assert staff.get(links["next"]["href"]).headers["content-type"] == "application/geo+json"
    one = staff.get(f"/collections/{table}/items/1")
    assert one.headers["content-type"] == "application/geo+json" and "content-crs" not in one.headers
    assert {link["rel"] for link in one.json()["links"]} == {"self", "alternate", "collection"}
    for params in ({"crs": "http://www.opengis.net/def/crs/EPSG/0/4547"}, {"bbox": "114,22,115,23"}):
        assert_ogc_error(staff.get(f"/collections/{table}/items", params=params), 400)
    assert staff.get(f"/collections/{table}/items", params={"crs": CRS84, "limit": 1}).status_code == 200


def test_dates_nulls_and_nan_are_json_values(staff, sample_store):
    frame = sample_store.query("sensors", FeatureQuery(limit=3000))
    doc = staff.get("/collections/sensors/items", params={"limit": 3000}).json()
    assert [f["id"] for f in doc["features"]] == list(frame.index)
    props = [f["properties"] for f in doc["features"]]
    seen = [None if pd.isna(v) else v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
            for v in frame["last_seen"]]
    assert [p["last_seen"] for p in props] == seen
    for name in ("last_value", "threshold_low", "threshold_high", "level_id", "facility_id"):
        expected = [None if pd.isna(v) else v for v in frame[name].tolist()]
        assert [p[name] for p in props] == expected, name
    assert any(p["threshold_low"] is None for p in props) and any(p["threshold_low"] is not None for p in props)
    facilities = staff.get("/collections/fire_facilities/items", params={"limit": 200}).json()["features"]
    dates = [f["properties"]["next_inspection"] for f in facilities]
    assert any(d is not None for d in dates)
    assert all(d is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in dates)
    z = shapely.get_coordinates(shape(facilities[0]["geometry"]), include_z=True)[0, 2]
    assert np.isfinite(z)


@pytest.mark.parametrize(("params", "words"), [
    ({"bbox": "114,22,115"}, "4 (or 6)"),
    ({"bbox": "a,b,c,d"}, "comma-separated numbers"),
    ({"bbox": "115,22,114,23"}, "lower-left"),
    ({"bbox": "114,22,115,nan"}, "finite"),
    ({"bbox-crs": "EPSG:4547", "bbox": "1,2,3,4,5"}, "4 (or 6)"),
    ({"limit": "0"}, "limit"),
    ({"limit": "-3"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"crs": "EPSG:999999"}, "unknown CRS"),
    ({"crs": "EPSG:32650"}, "not offered"),
    ({"bbox": "114,22,115,23", "bbox-crs": "nonsense"}, "unknown CRS"),
    ({"datetime": "2026-01-01/.."}, "no time field"),
    ({"properties": "height"}, "height"),
    ({"sortby": "-tallness"}, "tallness"),
    ({"sortby": "name,,"}, "empty key"),
    ({"nope": "1"}, "unknown query parameter"),
    ({"height_m": "tall"}, "height_m"),
    ({"f": "xml"}, "f="),
])
def test_bad_parameters_are_400(http, params, words):
    body = assert_ogc_error(http.get("/collections/buildings/items", params=params), 400)
    assert words in body["description"]


def test_bad_parameters_on_single_features_are_400(http):
    assert_ogc_error(http.get("/collections/buildings/items/3", params={"bbox": "1,2,3,4"}), 400)
    assert_ogc_error(http.get("/collections/buildings/items/3", params={"crs": "EPSG:1"}), 400)


@pytest.mark.parametrize(("value", "ids"), [
    ("2026-11-24T20:00:00Z/..", "after"),
    ("../2026-11-24T20:00:00+00:00", "before"),
    ("2026-11-24", "day"),
])
def test_datetime_on_a_temporal_layer(staff, sample_store, value, ids):
    frame = sample_store.query("readings", FeatureQuery(properties=("ts",)))
    doc = staff.get("/collections/readings/items", params={"datetime": value, "limit": 10000}).json()
    ts = frame["ts"]
    t0 = pd.Timestamp("2026-11-24T20:00:00Z")  # the sample's readings run 2026-11-24T08:00Z to 11-25T08:00Z
    keep = {"after": ts >= t0, "before": ts <= t0,
            "day": (ts >= pd.Timestamp("2026-11-24T00:00:00Z")) & (ts < pd.Timestamp("2026-11-25T00:00:00Z"))}[ids]
    expected = list(frame.index[keep.to_numpy(dtype=bool)])
    assert [f["id"] for f in doc["features"]] == expected[:10000] and len(expected) > 100
    # readings has more rows than EXACT_COUNT_LIMIT: a filtered numberMatched is a sampled estimate
    assert abs(doc["numberMatched"] - len(expected)) <= 0.05 * len(expected), (doc["numberMatched"], len(expected))


@pytest.mark.parametrize("value", ["yesterday", "2026-11-25T08:00:00", "2026-13-01", "../..", "/", "a/b/c",
                                   "2026-11-26T00:00:00Z/2026-11-25T00:00:00Z"])
def test_bad_datetimes_are_400(staff, value):
    assert_ogc_error(staff.get("/collections/readings/items", params={"datetime": value}), 400)
