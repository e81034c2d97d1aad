"""Real third-party clients against the live service: GDAL's OAPIF driver (through pyogrio) and OWSLib.

Both read the OpenAPI 3.0 document, the conformance declaration and the collections, and page with ``next`` links.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pyogrio
import pytest
import shapely

from tests.api.features_fixtures import *  # noqa: F403 - the fixtures
from twin.store.base import BBox, FeatureQuery, Filter, Op


def _owslib_features():
    return pytest.importorskip("owslib.ogcapi.features")  # a dev dependency (OWSLib)


def test_service_desc_is_a_valid_openapi_30_document(http):
    landing = http.get("/").json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    response = http.get(desc["href"])
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json;version=3.0")
    document = response.json()
    assert document["openapi"] == "3.0.3"
    pytest.importorskip("openapi_spec_validator").validate(document)  # raises on anything OpenAPI 3.0 does not allow
    names = {p["name"] for p in document["paths"]["/collections/buildings/items"]["get"]["parameters"]}
    assert {"bbox", "bbox-crs", "crs", "limit", "offset", "filter", "filter-lang", "sortby", "use"} <= names
    lang = next(p for p in document["paths"]["/collections/{collection_id}/items"]["get"]["parameters"]
                if p["name"] == "filter-lang")
    assert lang["schema"]["enum"] == ["cql2-text", "cql2-json"]


def _gdal_read(tmp_path: Path, url: str, **kwargs: object) -> gpd.GeoDataFrame:
    """``pyogrio.read_dataframe`` in a child process.

    GDAL holds the GIL while it downloads, so it cannot run in the process whose thread serves the requests.
    """
    out = tmp_path / f"gdal-{len(list(tmp_path.iterdir()))}.parquet"
    code = ("import sys, json, pyogrio; kwargs = json.loads(sys.argv[3]); "
            "kwargs.update({k: tuple(v) for k, v in kwargs.items() if isinstance(v, list)}); "
            "pyogrio.read_dataframe(sys.argv[1], fid_as_index=True, **kwargs).to_parquet(sys.argv[2])")
    done = subprocess.run([sys.executable, "-c", code, f"OAPIF:{url}", str(out), json.dumps(kwargs)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return gpd.read_parquet(out)


def test_gdal_lists_the_public_collections(sample_server):
    layers = dict(pyogrio.list_layers(f"OAPIF:{sample_server}").tolist())
    assert layers == {"grids": "MultiPolygon", "buildings": "Polygon", "roads": "LineString",
                      "fire_stations": "Point"}


def test_gdal_pages_through_every_building(sample_server, sample_store, tmp_path):
    got = _gdal_read(tmp_path, sample_server, layer="buildings", PAGE_SIZE=1000)
    expected = sample_store.query("buildings")
    assert list(got.index) == list(expected.index)
    assert list(got["code"]) == list(expected["code"])
    np.testing.assert_allclose(got["height_m"].to_numpy(), expected["height_m"].to_numpy())
    assert got.crs.to_epsg() == 4326
    assert shapely.equals_exact(got.geometry.to_numpy(), expected.geometry.to_numpy(), tolerance=1e-9).all()


def test_gdal_spatial_and_attribute_filters(sample_server, sample_store, tmp_path):
    box = (114.02, 22.60, 114.03, 22.62)
    boxed = _gdal_read(tmp_path, sample_server, layer="buildings", bbox=box)
    assert list(boxed.index) == list(sample_store.query("buildings", FeatureQuery(bbox=BBox(*box))).index)
    offices = _gdal_read(tmp_path, sample_server, layer="buildings", where="use = 'office'")
    expected = sample_store.query("buildings", FeatureQuery(filters=(Filter("use", Op.EQ, "office"),)))
    assert list(offices.index) == list(expected.index) and len(expected) > 10


def test_owslib_reads_collections_items_and_queryables(sample_server, sample_store):
    api = _owslib_features().Features(sample_server)
    ids = {c["id"] for c in api.collections()["collections"]}
    assert {"buildings", "grids", "roads", "fire_stations"} <= ids and "sensors" not in ids
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    assert api.api()["openapi"] == "3.0.3"
    page = api.collection_items("buildings", bbox=[114.02, 22.60, 114.03, 22.62], limit=500)
    expected = sample_store.query("buildings", FeatureQuery(bbox=BBox(114.02, 22.60, 114.03, 22.62)))
    assert [f["id"] for f in page["features"]] == list(expected.index)
    assert page["numberMatched"] == len(expected)
    filtered = api.collection_items("buildings", filter="height_m > 150", limit=500)
    tall = sample_store.query("buildings", FeatureQuery(filters=(Filter("height_m", Op.GT, 150),)))
    assert [f["id"] for f in filtered["features"]] == list(tall.index) and len(tall) > 0
    queryables = api.collection_queryables("buildings")
    assert "height_m" in queryables["properties"]


def test_owslib_single_feature(sample_server, sample_store):
    api = _owslib_features().Features(sample_server)
    feature = api.collection_item("buildings", "3")
    assert feature["id"] == 3 and feature["properties"]["code"] == sample_store.get("buildings", 3)["code"].iloc[0]


def test_conformance_lists_what_the_tests_cover(http):
    classes = set(httpx.get(f"{http.base_url}/conformance").json()["conformsTo"])
    for needed in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                   "ogcapi-features-1/1.0/conf/oas30", "ogcapi-features-2/1.0/conf/crs",
                   "ogcapi-features-3/1.0/conf/filter", "ogcapi-features-3/1.0/conf/features-filter",
                   "ogcapi-features-3/1.0/conf/queryables", "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json",
                   "cql2/1.0/conf/basic-cql2", "cql2/1.0/conf/spatial-functions", "cql2/1.0/conf/temporal-functions"):
        assert f"http://www.opengis.net/spec/{needed}" in classes
    for absent in ("case-insensitive-comparison", "accent-insensitive-comparison", "arithmetic", "array-functions",
                   "/functions"):
        assert not any(c.endswith(absent) for c in classes)
