"""One behaviour on both stores: the same request to the API over the GeoPackage sample and over the same sample in
PostGIS gets the same answer (status, content type, body; only the server's own address, ``timeStamp`` and the
key's identity may differ). Tiles are compared by their features and properties (the encoders differ in geometry
bytes only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import morecantile
import pytest

from api.main import create_app
from tests.api.backends import PostGISSample, private_store
from tests.api.conftest import LiveServer
from twin.auth import create_key
from twin.settings import Settings

pytestmark = pytest.mark.postgis

WMQ = morecantile.tms.get("WebMercatorQuad")
STATION = (114.0239, 22.6119)
BOX = "POLYGON((114.020 22.607, 114.028 22.607, 114.028 22.616, 114.020 22.616, 114.020 22.607))"
GK = "http://www.opengis.net/def/crs/EPSG/0/4547"


@dataclass
class Twin:
    """One server and an inspector's client on it."""

    url: str
    client: httpx.Client


@pytest.fixture(scope="module")
def twins(sample_path: Path, tmp_path_factory: pytest.TempPathFactory,
          pg_sample: PostGISSample) -> Iterator[dict[str, Twin]]:
    """The service over private copies of the sample in both stores, with an inspector key each."""
    made: dict[str, Twin] = {}
    with private_store("geopackage", sample_path, tmp_path_factory.mktemp("parity"), None) as (gpkg, _), \
            private_store("postgis", sample_path, Path(), pg_sample) as (pg, _):
        servers = {name: LiveServer(create_app(Settings(), store=store)) for name, store in
                   (("geopackage", gpkg), ("postgis", pg))}
        keys = {name: create_key(store, "inspector", "parity")[1] for name, store in
                (("geopackage", gpkg), ("postgis", pg))}
        for name, server in servers.items():
            server.__enter__()
            made[name] = Twin(server.url, httpx.Client(base_url=server.url, timeout=120,
                                                       headers={"X-API-Key": keys[name]}))
        try:
            yield made
        finally:
            for name, server in servers.items():
                made[name].client.close()
                server.__exit__(None, None, None)


def _normal(twin: Twin, response: httpx.Response) -> Any:
    """The response as comparable data: the server's root replaced, ``timeStamp`` dropped."""
    text = response.text.replace(twin.url, "ROOT")
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict):
        body.pop("timeStamp", None)
    return body


def _same(twins: dict[str, Twin], method: str, path: str, **kwargs: Any) -> Any:
    """The answer both servers give (asserting they give the same one)."""
    answers = {}
    for name, twin in twins.items():
        response = twin.client.request(method, path, **kwargs)
        answers[name] = (response.status_code, response.headers.get("content-type"), _normal(twin, response))
    gpkg, pg = answers["geopackage"], answers["postgis"]
    assert gpkg[:2] == pg[:2], (path, gpkg[:2], pg[:2], str(gpkg[2])[:300], str(pg[2])[:300])
    assert gpkg[2] == pg[2], _first_difference(gpkg[2], pg[2], path)
    return gpkg[2]


def _first_difference(a: Any, b: Any, where: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where}: geopackage {str(a)[:300]!r} vs postgis {str(b)[:300]!r}"


METADATA = ["/", "/conformance", "/collections", "/collections/buildings", "/collections/readings",
            "/collections/alarms", "/collections/inspections", "/collections/sensors", "/collections/grids",
            "/collections/buildings/queryables", "/collections/readings/sortables", "/styles", "/styles/twin",
            "/collections/buildings/tiles/WebMercatorQuad/tilejson.json", "/tiles/WebMercatorQuad/tilejson.json",
            "/rasters", "/rasters/dem"]


@pytest.mark.parametrize("path", METADATA)
def test_metadata_documents_are_the_same(twins, path):
    _same(twins, "GET", path)


LAYERS = ["grids", "buildings", "levels", "fire_facilities", "rescue_platforms", "fire_lanes", "sensors", "roads",
          "fire_stations", "readings", "alarms", "inspections"]


@pytest.mark.parametrize("layer", LAYERS)
def test_first_pages_of_every_layer_are_the_same(twins, layer):
    _same(twins, "GET", f"/collections/{layer}/items", params={"limit": 200})
    _same(twins, "GET", f"/collections/{layer}/items", params={"limit": 50, "offset": 150})
    _same(twins, "GET", f"/collections/{layer}/items/7")


@pytest.mark.parametrize("params", [
    {"limit": 500, "sortby": "-height_m,+name"},
    {"limit": 300, "sortby": "year_built,-floors_below", "properties": "name,year_built,floors_below"},
    {"limit": 1000, "filter": "height_m > 100 AND use IN ('office', 'mixed')"},
    {"limit": 1000, "filter": "name LIKE '%大厦%' OR NOT (floors_below < 3)"},
    {"limit": 1000, "filter": f"S_INTERSECTS(geometry, {BOX})", "sortby": "-height_m"},
    {"limit": 1000, "filter": "S_CONTAINS(geometry, POINT(114.0239 22.6119))"},
    {"limit": 1000, "filter": "S_CROSSES(geometry, LINESTRING(114.010 22.6119, 114.040 22.6119))"},
    {"limit": 1000, "filter": "floors_above < floors_below OR address IS NULL", "sortby": "-year_built"},
    {"limit": 1000, "filter-lang": "cql2-json", "filter": json.dumps(
        {"op": "and", "args": [{"op": ">", "args": [{"property": "height_m"}, 60]},
                               {"op": "s_intersects", "args": [{"property": "geometry"},
                                                               {"bbox": [114.02, 22.60, 114.03, 22.62]}]}]})},
    {"limit": 1000, "bbox": "114.02,22.605,114.03,22.615"},
    {"limit": 100, "bbox": "2500000,502000,2502000,504000", "bbox-crs": GK, "crs": GK},
    {"limit": 100, "crs": "urn:x-beizhan:def:crs:GCJ-02", "use": ["office", "mixed"]},
    {"limit": 100, "crs": "http://www.opengis.net/def/crs/EPSG/0/4326", "sortby": "name"},
    {"limit": 100, "filter": "S_WITHIN(geometry, BBOX(114.0280, 22.6090, 114.0300, 22.6110))",
     "filter-crs": "urn:x-beizhan:def:crs:BD-09"},
    {"limit": 100, "properties": ""},
    {"limit": 20, "filter": "height_m >"},
    {"limit": 20, "filter": "colour = 'red'"},
    {"limit": 20, "sortby": "geometry"},
])
def test_building_queries_are_the_same(twins, params):
    _same(twins, "GET", "/collections/buildings/items", params=params)


@pytest.mark.parametrize("layer,params", [
    ("readings", {"limit": 1000, "datetime": "2026-11-24T20:00:00Z/..", "sortby": "-ts"}),
    ("readings", {"limit": 1000, "datetime": "2026-11-24", "filter": "value BETWEEN 20 AND 30"}),
    ("readings", {"limit": 500, "filter": "value > 50 AND T_AFTER(ts, TIMESTAMP('2026-11-25T00:00:00Z'))"}),
    ("alarms", {"limit": 100, "datetime": "../2026-11-25T08:00:00Z", "sortby": "-opened_at"}),
    ("alarms", {"limit": 100, "filter": "status IN ('open', 'acknowledged') AND acknowledged_at IS NULL"}),
    ("inspections", {"limit": 1000, "filter": "T_DURING(inspected_at, INTERVAL('2026-01-01T00:00:00Z', '..'))"}),
    ("inspections", {"limit": 200, "sortby": "-inspected_at,result"}),
    ("sensors", {"limit": 500, "filter": "status = 'offline' AND last_seen IS NOT NULL", "sortby": "last_seen"}),
    ("sensors", {"limit": 200, "datetime": "2026-11-25T00:00:00Z/2026-11-25T06:00:00Z"}),
    ("fire_facilities", {"limit": 500, "filter": "next_inspection < DATE('2026-06-01') AND status <> 'normal'"}),
    ("fire_facilities", {"limit": 500, "bbox": "114.020,22.606,114.028,22.616", "sortby": "-code"}),
    ("fire_facilities", {"limit": 200, "offset": 50000, "type": "smoke_detector"}),
    ("levels", {"limit": 300, "filter": "is_refuge = TRUE", "sortby": "building_id,ordinal"}),
    ("grids", {"limit": 400, "level": "community"}),
])
def test_layer_queries_are_the_same(twins, layer, params):
    _same(twins, "GET", f"/collections/{layer}/items", params=params)


def test_inspector_questions_are_the_same(twins):
    hits = _same(twins, "GET", "/buildings/search", params={"q": "大厦", "limit": 50})["buildings"]
    assert hits
    _same(twins, "GET", "/buildings/search", params={"q": hits[0]["code"]})
    for building in hits[:5]:
        found = _same(twins, "GET", "/collections/buildings/items", params={"code": building["code"]})
        building_id = found["features"][0]["id"]
        _same(twins, "GET", f"/buildings/{building_id}/fire-profile")
        _same(twins, "GET", f"/buildings/{building_id}/nearest", params={"type": "outdoor_hydrant", "k": 5})
    _same(twins, "GET", "/nearest", params={"lon": STATION[0], "lat": STATION[1], "k": 20})
    _same(twins, "GET", "/nearest", params={"lon": STATION[0], "lat": STATION[1], "type": "smoke_detector"})
    for level in ("district", "subdistrict", "community", "grid"):
        _same(twins, "GET", "/grids/summary", params={"level": level})


def test_raster_answers_are_the_same(twins):
    _same(twins, "GET", "/rasters/dem/point", params={"lon": STATION[0], "lat": STATION[1]})
    ring = [[114.022, 22.608], [114.026, 22.608], [114.026, 22.612], [114.022, 22.608]]
    _same(twins, "POST", "/rasters/void_risk/zonal", json={"geometry": {"type": "Polygon", "coordinates": [ring]}})


@pytest.mark.parametrize("z", [13, 15, 17])
def test_tiles_hold_the_same_features(twins, z):
    seen = 0
    tile = WMQ.tile(*STATION, z)
    path = f"/tiles/WebMercatorQuad/{z}/{tile.y}/{tile.x}"
    decoded = {}
    for name, twin in twins.items():
        response = twin.client.get(path, params={"collections": "buildings,grids,roads,sensors,fire_facilities"})
        assert response.status_code in (200, 204)
        layers = mapbox_vector_tile.decode(response.content) if response.status_code == 200 else {}
        decoded[name] = {layer: {f["id"]: f["properties"] for f in content["features"]}
                         for layer, content in layers.items()}
    assert decoded["geopackage"].keys() == decoded["postgis"].keys()
    for layer, features in decoded["geopackage"].items():
        other = decoded["postgis"][layer]
        assert features.keys() == other.keys(), (layer, len(features), len(other))
        seen += len(features)
        for fid, properties in features.items():
            assert _close(properties, other[fid]), (layer, fid, properties, other[fid])
    assert seen > 0


def _close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and abs(x - y) <= 1e-6 * max(1, abs(x)))
               for x, y in ((a[k], b[k]) for k in a))
