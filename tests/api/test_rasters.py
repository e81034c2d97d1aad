"""Raster endpoints over real HTTP: metadata, PNG tiles, point values and zonal statistics."""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import morecantile
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from twin.store.base import FeatureQuery
from twin.store.geopackage import GeoPackageStore

STATION = (114.0239, 22.6119)
TO_GK = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)


def _png(data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG tile carries no georeference
        with MemoryFile(data) as memory, memory.open() as image:
            return image.read()


def test_rasters_are_listed_in_their_metric_crs(http: httpx.Client) -> None:
    docs = {doc["id"]: doc for doc in http.get("/rasters").json()["rasters"]}
    assert set(docs) == {"dem", "void_risk"}
    for doc in docs.values():
        assert doc["crs"].endswith("/4547")
        minx, miny, maxx, maxy = doc["bounds"]
        e, n = TO_GK.transform(*STATION)
        assert minx < e < maxx and miny < n < maxy


def test_tile_png_over_the_station(http: httpx.Client) -> None:
    tile = morecantile.tms.get("WebMercatorQuad").tile(*STATION, 15)
    response = http.get(f"/rasters/dem/tiles/WebMercatorQuad/15/{tile.y}/{tile.x}.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    pixels = _png(response.content)
    assert pixels.shape == (4, 256, 256)
    assert (pixels[3] == 255).mean() > 0.99  # the DEM covers the station's tile
    assert pixels[:3].std() > 0  # and it is not one flat colour
    again = http.get(f"/rasters/dem/tiles/WebMercatorQuad/15/{tile.y}/{tile.x}.png",
                     headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_tile_off_the_raster_is_transparent(http: httpx.Client) -> None:
    pixels = _png(http.get("/rasters/void_risk/tiles/WebMercatorQuad/15/0/0.png").content)
    assert (pixels[3] == 0).all()


def test_point_value_matches_rasterio(http: httpx.Client, sample_path: Path) -> None:
    body = http.get("/rasters/dem/point", params={"lon": STATION[0], "lat": STATION[1]}).json()
    with rasterio.open(sample_path.parent / "dem.tif") as dataset:
        expected = next(dataset.sample([TO_GK.transform(*STATION)]))[0]
    assert body["value"] == pytest.approx(float(expected))
    assert 40 <= body["value"] <= 200
    off = http.get("/rasters/dem/point", params={"lon": 100.0, "lat": 30.0}).json()
    assert off["value"] is None


def test_zonal_statistics_under_buildings(http: httpx.Client, sample_path: Path) -> None:
    with GeoPackageStore(sample_path, readonly=True) as store:
        towers = store.query("buildings", FeatureQuery(limit=20))
    ids = [int(i) for i in towers.index]
    response = http.post("/rasters/void_risk/zonal", json={"collection": "buildings", "ids": ids})
    zones = {zone["id"]: zone for zone in response.json()["zones"]}
    assert set(zones) == set(towers.index)
    for zone in zones.values():
        assert zone["count"] >= 1
        assert 0 <= zone["min"] <= zone["mean"] <= zone["max"] <= 1


def test_zonal_statistics_of_a_geojson_polygon(http: httpx.Client) -> None:
    lon, lat = STATION
    ring = [[lon - 0.002, lat - 0.002], [lon + 0.002, lat - 0.002], [lon + 0.002, lat + 0.002],
            [lon - 0.002, lat + 0.002], [lon - 0.002, lat - 0.002]]
    zone = http.post("/rasters/dem/zonal", json={"geometry": {"type": "Polygon", "coordinates": [ring]}}).json()
    stats = zone["zones"][0]
    # about 410 m × 440 m at 5 m pixels
    assert 5_000 < stats["count"] < 10_000 and stats["min"] <= stats["mean"] <= stats["max"]


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("GET", "/rasters/lidar", {}, 404),
    ("GET", "/rasters/dem/tiles/WebMercatorQuad/15/0/0.png?colormap=rainbow", {}, 400),
    ("GET", "/rasters/dem/tiles/WebMercatorQuad/15/0/0.png?rescale=1", {}, 400),
    ("GET", "/rasters/dem/tiles/WebMercatorQuad/3/0/9.png", {}, 400),
    ("GET", "/rasters/dem/point?lon=114&lat=abc", {}, 400),
    ("POST", "/rasters/dem/zonal", {"json": {"geometry": {"type": "Polygon", "coordinates": "x"}}}, 400),
    ("POST", "/rasters/dem/zonal", {"json": {"collection": "sensors", "ids": [1]}}, 400),
    ("POST", "/rasters/dem/zonal", {"json": {}}, 400),
])
def test_bad_raster_requests(http: httpx.Client, method: str, path: str, kwargs: dict, status: int) -> None:
    response = http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status
