"""OGC API – Features Part 2 over real HTTP: ``crs``, ``bbox-crs``, ``Content-Crs``, axis order, GCJ-02 and BD-09."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import shape

from tests.api.features_fixtures import *  # noqa: F403 - the fixtures
from tests.api.features_fixtures import assert_ogc_error
from twin import chinacrs
from twin.store.base import BBox, FeatureQuery

EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GCJ02 = "urn:x-beizhan:def:crs:GCJ-02"
BD09 = "urn:x-beizhan:def:crs:BD-09"
PAGE = {"limit": 50, "sortby": "id"}


def _coords(http, crs: str | None, collection: str = "buildings", params: dict | None = None) -> tuple[np.ndarray,
                                                                                                       dict]:
    response = http.get(f"/collections/{collection}/items", params={**PAGE, **(params or {}),
                                                                     **({"crs": crs} if crs else {})})
    assert response.status_code == 200, response.text
    geoms = [shape(f["geometry"]) for f in response.json()["features"]]
    return shapely.get_coordinates(geoms), dict(response.headers)


def test_default_is_crs84_lon_lat(http):
    lonlat, headers = _coords(http, None)
    assert headers["content-crs"] == f"<{CRS84}>"
    assert ((lonlat[:, 0] > 113.9) & (lonlat[:, 0] < 114.2) & (lonlat[:, 1] > 22.5) & (lonlat[:, 1] < 22.7)).all()


@pytest.mark.parametrize("code", [4326, 4490])
def test_geographic_epsg_crs_put_latitude_first(http, code):
    lonlat, _ = _coords(http, None)
    latlon, headers = _coords(http, EPSG.format(code))
    assert headers["content-crs"] == f"<{EPSG.format(code)}>"
    np.testing.assert_allclose(latlon[:, ::-1], lonlat, atol=1e-7)  # CGCS2000 ≈ WGS 84 to centimetres


def test_epsg_4547_is_northing_first_and_matches_pyproj(http):
    lonlat, _ = _coords(http, None)
    northing_easting, headers = _coords(http, EPSG.format(4547))
    assert headers["content-crs"] == f"<{EPSG.format(4547)}>"
    east, north = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    np.testing.assert_allclose(northing_easting[:, 0], north, atol=1e-3)
    np.testing.assert_allclose(northing_easting[:, 1], east, atol=1e-3)
    assert (np.abs(northing_easting[:, 1] - 503_000) < 10_000).all()  # near the station, E 503012 N 2501282


def test_epsg_3857_matches_pyproj(http):
    lonlat, _ = _coords(http, None)
    xy, _ = _coords(http, "EPSG:3857")
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    np.testing.assert_allclose(xy, np.column_stack([x, y]), atol=1e-3)


@pytest.mark.parametrize(("uri", "forward", "low", "high"), [
    (GCJ02, chinacrs.wgs84_to_gcj02, 500, 700),
    (BD09, chinacrs.wgs84_to_bd09, 1100, 1400),
])
def test_chinese_basemap_crs_are_offset_as_expected(http, uri, forward, low, high):
    lonlat, _ = _coords(http, None)
    shifted, headers = _coords(http, uri)
    assert headers["content-crs"] == f"<{uri}>"
    expected = np.column_stack(forward(lonlat[:, 0], lonlat[:, 1]))
    np.testing.assert_allclose(shifted, expected, atol=1e-9)
    _, _, metres = Geod(ellps="WGS84").inv(lonlat[:, 0], lonlat[:, 1], shifted[:, 0], shifted[:, 1])
    assert (low < metres).all() and (metres < high).all()


def test_single_feature_in_another_crs(http):
    lonlat = shapely.get_coordinates(shape(http.get("/collections/buildings/items/3").json()["geometry"]))
    response = http.get("/collections/buildings/items/3", params={"crs": EPSG.format(4326)})
    assert response.headers["content-crs"] == f"<{EPSG.format(4326)}>"
    np.testing.assert_allclose(shapely.get_coordinates(shape(response.json()["geometry"]))[:, ::-1], lonlat)


def _ids(http, params: dict) -> list[int]:
    response = http.get("/collections/buildings/items", params={"limit": 10000, **params})
    assert response.status_code == 200, response.text
    return [f["id"] for f in response.json()["features"]]


def test_bbox_crs_in_lat_lon_order_for_epsg_4326(http):
    lonlat_box = "114.020,22.605,114.030,22.612"
    latlon_box = "22.605,114.020,22.612,114.030"
    expected = _ids(http, {"bbox": lonlat_box})
    assert expected
    assert _ids(http, {"bbox": latlon_box, "bbox-crs": EPSG.format(4326)}) == expected
    assert _ids(http, {"bbox": lonlat_box, "bbox-crs": CRS84}) == expected


def test_bbox_crs_in_metres_matches_pyproj(http, sample_store):
    north0, east0, north1, east1 = 2_500_500.0, 502_000.0, 2_501_800.0, 503_500.0
    lon0, lat0, lon1, lat1 = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform_bounds(
        east0, north0, east1, north1, densify_pts=100)
    expected = list(sample_store.query("buildings", FeatureQuery(bbox=BBox(lon0, lat0, lon1, lat1),
                                                                  properties=())).index)
    got = _ids(http, {"bbox": f"{north0},{east0},{north1},{east1}", "bbox-crs": EPSG.format(4547)})
    assert got == expected and len(expected) > 10


def test_bbox_crs_gcj02_finds_a_building_where_amap_shows_it(http, sample_store):
    building = sample_store.get("buildings", 3).geometry.iloc[0].representative_point()
    lon, lat = chinacrs.wgs84_to_gcj02(building.x, building.y)
    d = 0.00002
    box = f"{float(lon) - d},{float(lat) - d},{float(lon) + d},{float(lat) + d}"
    assert 3 in _ids(http, {"bbox": box, "bbox-crs": GCJ02})
    assert 3 not in _ids(http, {"bbox": box})  # the same numbers read as WGS 84 are ~600 m away


def test_round_trip_through_epsg_4547(http):
    metric = http.get("/collections/buildings/items/3", params={"crs": EPSG.format(4547)}).json()["geometry"]
    coords = shapely.get_coordinates(shape(metric))
    lon, lat = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform(coords[:, 1], coords[:, 0])
    lonlat = shapely.get_coordinates(shape(http.get("/collections/buildings/items/3").json()["geometry"]))
    np.testing.assert_allclose(np.column_stack([lon, lat]), lonlat, atol=1e-9)


def test_collection_advertises_its_crs(http):
    doc = http.get("/collections/buildings").json()
    assert doc["crs"][0] == CRS84 and doc["storageCrs"] in doc["crs"]
    for uri in (EPSG.format(4326), EPSG.format(4490), EPSG.format(4547), EPSG.format(3857), GCJ02, BD09):
        assert uri in doc["crs"]
        assert http.get("/collections/buildings/items", params={"crs": uri, "limit": 1}).status_code == 200


@pytest.mark.parametrize("param", ["crs", "bbox-crs", "filter-crs"])
@pytest.mark.parametrize("value", ["EPSG:0", "http://www.opengis.net/def/crs/EPSG/0/32650", "urn:x:nothing"])
def test_unknown_or_unoffered_crs_is_400(http, param, value):
    params = {param: value, "bbox": "114,22,115,23"}
    if param == "filter-crs":
        params = {param: value, "filter": "S_INTERSECTS(geometry, POINT(22.6 114.02))"}
    body = assert_ogc_error(http.get("/collections/buildings/items", params=params), 400)
    assert param in body["description"] or "CRS" in body["description"]
