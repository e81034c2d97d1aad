"""Vector tiles over real HTTP: MVT content, several layers per tile, ETags, invalidation, TileJSON and styles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import pyogrio
import pytest

from api.main import create_app
from tests.api.conftest import LiveServer
from twin.settings import Settings
from twin.store.base import FeatureQuery, Store, TileRequest
from twin.store.geopackage import GeoPackageStore
from twin.tiles.build import query_bbox

WMQ = morecantile.tms.get("WebMercatorQuad")
STATION = (114.0239, 22.6119)


def _zyx(z: int, lon: float = STATION[0], lat: float = STATION[1]) -> tuple[int, int, int]:
    t = WMQ.tile(lon, lat, z)
    return z, t.y, t.x


def test_collection_tile_holds_the_buildings_of_the_tile(http: httpx.Client, sample_path: Path) -> None:
    z, y, x = _zyx(16)
    response = http.get(f"/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(response.content)
    with GeoPackageStore(sample_path, readonly=True) as store:
        expected = store.query("buildings", FeatureQuery(bbox=query_bbox(TileRequest(("buildings",), z, x, y))))
    assert {f["id"] for f in decoded["buildings"]["features"]} == set(expected.index)
    assert all("height_m" in f["properties"] for f in decoded["buildings"]["features"])


def test_gdal_reads_the_tile_at_the_right_place(http: httpx.Client, tmp_path: Path) -> None:
    z, y, x = _zyx(15)
    data = http.get(f"/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}").content
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    frame = pyogrio.read_dataframe(path, layer="buildings")
    bounds = WMQ.xy_bounds(x, y, z)
    minx, miny, maxx, maxy = frame.total_bounds
    margin = (bounds.right - bounds.left) * 64 / 4096 + 1
    assert len(frame) > 0
    assert bounds.left - margin <= minx and maxx <= bounds.right + margin
    assert bounds.bottom - margin <= miny and maxy <= bounds.top + margin


def test_several_collections_in_one_tile(http: httpx.Client) -> None:
    z, y, x = _zyx(15)
    response = http.get(f"/tiles/WebMercatorQuad/{z}/{y}/{x}", params={"collections": "buildings,grids,roads"})
    decoded = mapbox_vector_tile.decode(response.content)
    assert {"buildings", "grids", "roads"} <= set(decoded)


def test_etag_and_not_modified(http: httpx.Client) -> None:
    z, y, x = _zyx(15)
    url = f"/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}"
    first = http.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = http.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_empty_tile_is_204(http: httpx.Client) -> None:
    assert http.get("/collections/buildings/tiles/WebMercatorQuad/16/0/0").status_code == 204


@pytest.mark.parametrize("path,status", [
    ("/collections/sensors/tiles/WebMercatorQuad/16/0/0", 401),
    ("/collections/buildings/tiles/WorldCRS84Quad/16/0/0", 404),
    ("/collections/nope/tiles/WebMercatorQuad/16/0/0", 404),
    ("/collections/buildings/tiles/WebMercatorQuad/25/0/0", 400),
    ("/collections/buildings/tiles/WebMercatorQuad/3/9/0", 400),
    ("/collections/readings/tiles/WebMercatorQuad/3/0/0", 400),
    ("/tiles/WebMercatorQuad/3/0/0?collections=", 400),
])
def test_bad_tile_requests(http: httpx.Client, path: str, status: int) -> None:
    response = http.get(path)
    assert response.status_code == status
    assert response.json()["status"] == status


def test_tilejson_and_style_point_only_at_the_service(http: httpx.Client, sample_server: str) -> None:
    tj = http.get("/collections/buildings/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["tiles"][0].startswith(sample_server)
    assert tj["vector_layers"][0]["id"] == "buildings" and "height_m" in tj["vector_layers"][0]["fields"]
    minx, miny, maxx, maxy = tj["bounds"]
    assert minx < STATION[0] < maxx and miny < STATION[1] < maxy
    style = http.get("/styles/twin").json()
    assert style["version"] == 8
    source_url = style["sources"]["twin"]["url"]
    assert source_url.startswith(sample_server)
    multi = http.get(source_url).json()
    layer_ids = {v["id"] for v in multi["vector_layers"]}
    assert {layer["source-layer"] for layer in style["layers"] if "source-layer" in layer} <= layer_ids
    assert "fire_facilities" not in layer_ids  # not public
    assert "http" not in str([v for k, v in style.items() if k != "sources"])


def test_tile_matrix_set_document(http: httpx.Client) -> None:
    assert http.get("/tileMatrixSets").json()["tileMatrixSets"][0]["id"] == "WebMercatorQuad"
    doc = http.get("/tileMatrixSets/WebMercatorQuad").json()
    assert doc["id"] == "WebMercatorQuad" and len(doc["tileMatrices"]) >= 20


@pytest.fixture
def writable(private_sample: tuple[Store, str]) -> Iterator[tuple[str, Store]]:
    store, _ = private_sample
    with LiveServer(create_app(Settings(), store=store)) as live:
        yield live.url, store


def test_a_write_invalidates_cached_tiles(writable: tuple[str, Store]) -> None:
    url, store = writable
    z, y, x = _zyx(16)
    path = f"{url}/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}"
    first = httpx.get(path)
    decoded = mapbox_vector_tile.decode(first.content)["buildings"]["features"]
    target = decoded[0]["id"]
    store.update("buildings", target, {"height_m": 99.5})
    second = httpx.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
    changed = {f["id"]: f for f in mapbox_vector_tile.decode(second.content)["buildings"]["features"]}
    assert changed[target]["properties"]["height_m"] == pytest.approx(99.5)
