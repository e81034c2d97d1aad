"""Tests of twin.crs and twin.chinacrs: GCJ-02/BD-09 maths, CRS resolution and transforms of coordinates and frames."""

from __future__ import annotations

import dataclasses
import threading

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon

from twin import chinacrs, crs
from twin.chinacrs import (
    CHINA_BOX,
    INVERSE_TOLERANCE_DEG,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from twin.crs import (
    BD09,
    BD09_URI,
    CGCS2000,
    CRS84,
    CRS84_URI,
    GCJ02,
    GCJ02_URI,
    METRIC,
    SUPPORTED_CRS_URIS,
    WEB_MERCATOR,
    WGS84,
    CrsRef,
    from_crs,
    metric_distance_m,
    resolve_crs,
    swap_axes,
    to_crs,
    to_metric,
    transform_bbox,
    transform_geometries,
    transform_geometry,
    transform_xy,
)
from twin.errors import InvalidQuery

GEOD = Geod(ellps="WGS84")
STATION = (114.0239, 22.6119)
# The same Gauss-Krüger projection as EPSG:4547, given as a user-supplied PROJ string (like a local grid would be).
TMERC = "+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
ROUND_TRIP_M = 0.01

PAIRS = [  # (forward, inverse)
    (wgs84_to_gcj02, gcj02_to_wgs84),
    (wgs84_to_bd09, bd09_to_wgs84),
    (gcj02_to_bd09, bd09_to_gcj02),
    (gcj02_to_wgs84, wgs84_to_gcj02),
    (bd09_to_wgs84, wgs84_to_bd09),
    (bd09_to_gcj02, gcj02_to_bd09),
]
ALL_FUNCTIONS = [f for pair in PAIRS[:3] for f in pair]


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres on WGS 84."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def shenzhen():
    return st.tuples(st.floats(113.75, 114.65), st.floats(22.4, 22.9))


def near_station():
    return st.tuples(st.floats(STATION[0] - 0.1, STATION[0] + 0.1), st.floats(STATION[1] - 0.1, STATION[1] + 0.1))


def china(margin: float = 0.05):
    # Away from the box edges: there the forward image of an inside point can fall outside the box, where by
    # definition the inverse is the identity, so a round trip is not expected to close.
    min_lon, min_lat, max_lon, max_lat = CHINA_BOX
    return st.tuples(st.floats(min_lon + margin, max_lon - margin), st.floats(min_lat + margin, max_lat - margin))


def outside_china():
    min_lon, min_lat, max_lon, max_lat = CHINA_BOX
    lon, lat = st.floats(-180, 180), st.floats(-90, 90)
    return st.one_of(
        st.tuples(st.floats(-180, np.nextafter(min_lon, -np.inf)), lat),
        st.tuples(st.floats(np.nextafter(max_lon, np.inf), 180), lat),
        st.tuples(lon, st.floats(-90, np.nextafter(min_lat, -np.inf))),
        st.tuples(lon, st.floats(np.nextafter(max_lat, np.inf), 90)),
    )


# --- GCJ-02 and BD-09 ------------------------------------------------------------------------------------------


def test_forward_transforms_match_published_reference_values():
    # The example widely used to check implementations of the closed-form algorithms (Tiananmen, Beijing).
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert (float(lon), float(lat)) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-11)
    lon, lat = gcj02_to_bd09(116.404, 39.915)
    assert (float(lon), float(lat)) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-11)


def test_offsets_at_the_station():
    gcj = wgs84_to_gcj02(*STATION)
    bd = wgs84_to_bd09(*STATION)
    assert float(metres(*STATION, *gcj)) == pytest.approx(605, abs=10)
    assert float(metres(*STATION, *bd)) == pytest.approx(1242, abs=15)


@pytest.mark.parametrize(("forward", "inverse"), PAIRS, ids=lambda f: f.__name__)
@settings(max_examples=150, deadline=None)
@given(point=shenzhen())
def test_round_trip_shenzhen(forward, inverse, point):
    back = inverse(*forward(*point))
    assert float(metres(*point, *back)) < ROUND_TRIP_M


@pytest.mark.parametrize(("forward", "inverse"), PAIRS, ids=lambda f: f.__name__)
@settings(max_examples=150, deadline=None)
@given(point=china())
def test_round_trip_china(forward, inverse, point):
    back = inverse(*forward(*point))
    assert float(metres(*point, *back)) < ROUND_TRIP_M


def test_round_trips_vectorised_over_a_china_grid():
    lon, lat = np.meshgrid(np.linspace(72.1, 137.7, 120), np.linspace(0.9, 55.7, 120))
    for forward, inverse in PAIRS:
        back_lon, back_lat = inverse(*forward(lon, lat))
        assert back_lon.shape == lon.shape
        assert metres(lon.ravel(), lat.ravel(), back_lon.ravel(), back_lat.ravel()).max() < 0.001


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
@settings(max_examples=100, deadline=None)
@given(point=outside_china())
def test_identity_outside_china(function, point):
    lon, lat = function(*point)
    assert (float(lon), float(lat)) == point


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
@settings(max_examples=50, deadline=None)
@given(points=st.lists(st.one_of(china(0.0), outside_china()), min_size=1, max_size=40))
def test_vectorised_equals_pointwise(function, points):
    lons, lats = function([p[0] for p in points], [p[1] for p in points])
    for (lon, lat), got_lon, got_lat in zip(points, lons, lats, strict=True):
        one_lon, one_lat = function(lon, lat)
        assert (got_lon, got_lat) == (float(one_lon), float(one_lat))


def test_box_edges_are_inside_and_nan_passes_through():
    min_lon, min_lat, _, _ = CHINA_BOX
    assert bool(chinacrs.in_china(min_lon, min_lat))
    assert float(wgs84_to_gcj02(min_lon, min_lat)[0]) != min_lon
    lon, lat = gcj02_to_wgs84([np.nan, 114.0], [22.6, np.nan])
    assert np.isnan(lon[0]) and lat[0] == 22.6 and lon[1] == 114.0 and np.isnan(lat[1])


def test_inverse_meets_its_tolerance():
    lon, lat = np.meshgrid(np.linspace(113.75, 114.65, 40), np.linspace(22.4, 22.9, 40))
    for forward, inverse in [(wgs84_to_gcj02, gcj02_to_wgs84), (gcj02_to_bd09, bd09_to_gcj02)]:
        image_lon, image_lat = forward(*inverse(lon, lat))
        assert np.abs(image_lon - lon).max() <= INVERSE_TOLERANCE_DEG
        assert np.abs(image_lat - lat).max() <= INVERSE_TOLERANCE_DEG


def test_iterative_inverse_beats_the_one_step_approximation():
    lon, lat = np.meshgrid(np.linspace(113.75, 114.65, 40), np.linspace(22.4, 22.9, 40))
    lon, lat = lon.ravel(), lat.ravel()
    # One step: subtract the offset measured at the GCJ-02 point itself.
    shifted_lon, shifted_lat = wgs84_to_gcj02(lon, lat)
    one_step = (2 * lon - shifted_lon, 2 * lat - shifted_lat)
    iterative = gcj02_to_wgs84(lon, lat)
    one_step_error = metres(*wgs84_to_gcj02(*one_step), lon, lat)
    iterative_error = metres(*wgs84_to_gcj02(*iterative), lon, lat)
    assert 1.0 < one_step_error.max() < 3.0
    assert iterative_error.max() < 0.001
    assert np.all(iterative_error * 1000 < np.maximum(one_step_error, 1e-3))
    at_station = gcj02_to_wgs84(*STATION)
    station_one_step = 2 * np.array(STATION) - np.array([float(v) for v in wgs84_to_gcj02(*STATION)])
    assert float(metres(*station_one_step, *at_station)) == pytest.approx(1.95, abs=0.1)


# --- resolving CRS references ----------------------------------------------------------------------------------

EPSG_4547_URI = "http://www.opengis.net/def/crs/EPSG/0/4547"


@pytest.mark.parametrize(
    ("spec", "uri"),
    [
        ("CRS84", CRS84_URI),
        ("OGC:CRS84", CRS84_URI),
        ("ogc:crs84", CRS84_URI),
        (CRS84_URI, CRS84_URI),
        ("[OGC:CRS84]", CRS84_URI),
        ("EPSG:4547", EPSG_4547_URI),
        ("epsg:4547", EPSG_4547_URI),
        (EPSG_4547_URI, EPSG_4547_URI),
        ("https://www.opengis.net/def/crs/EPSG/0/4547", EPSG_4547_URI),
        ("urn:ogc:def:crs:EPSG::4547", EPSG_4547_URI),
        ("[EPSG:4547]", EPSG_4547_URI),
        (" EPSG:4547 ", EPSG_4547_URI),
        ("EPSG:32650", "http://www.opengis.net/def/crs/EPSG/0/32650"),
        ("EPSG:4326", "http://www.opengis.net/def/crs/EPSG/0/4326"),
        (GCJ02_URI, GCJ02_URI),
        ("GCJ-02", GCJ02_URI),
        ("gcj02", GCJ02_URI),
        ("Gcj-02", GCJ02_URI),
        (BD09_URI, BD09_URI),
        ("BD-09", BD09_URI),
        ("bd09", BD09_URI),
        ("[BD-09]", BD09_URI),
    ],
)
def test_resolve_accepted_forms(spec, uri):
    ref = resolve_crs(spec)
    assert ref.uri == uri
    assert resolve_crs(ref.uri) == ref


def test_resolve_kinds_and_bases():
    assert (GCJ02.kind, BD09.kind, METRIC.kind) == ("gcj02", "bd09", "proj")
    assert GCJ02.crs.to_epsg() == 4326 and BD09.crs.to_epsg() == 4326
    assert METRIC.crs.to_epsg() == 4547 and CGCS2000.crs.to_epsg() == 4490 and WEB_MERCATOR.crs.to_epsg() == 3857
    assert CRS84.crs.to_authority() == ("OGC", "CRS84")
    assert "GCJ-02" in GCJ02.name and "BD-09" in BD09.name and "Gauss-Kruger" in METRIC.name


def test_resolve_custom_proj_string_and_wkt():
    tmerc = resolve_crs(TMERC)
    assert (tmerc.kind, tmerc.uri, tmerc.axis_swapped) == ("proj", TMERC, False)
    assert tmerc.crs.is_projected
    wkt = METRIC.crs.to_wkt()
    from_wkt = resolve_crs(wkt)
    assert from_wkt.kind == "proj" and from_wkt.crs.to_epsg() == 4547 and from_wkt.axis_swapped


def test_resolve_is_cached_and_refs_compare_by_uri():
    assert resolve_crs("EPSG:4547") is resolve_crs("EPSG:4547")
    assert resolve_crs("[EPSG:4326]") == WGS84 and hash(resolve_crs("[EPSG:4326]")) == hash(WGS84)
    assert WGS84 != CRS84 and GCJ02 != BD09
    with pytest.raises(dataclasses.FrozenInstanceError):
        WGS84.uri = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "garbage",
        "WGS84",
        "EPSG:",
        "EPSG:abc",
        "EPSG:99999999",
        "EPSG:5773",  # a vertical CRS
        "EPSG:4978",  # geocentric
        "urn:x-beizhan:def:crs:GCJ-03",
        "http://www.opengis.net/def/crs/OGC/1.3/CRS99",
        "+proj=nonsense",
        'PROJCS["junk"]',
        "{not json",
    ],
)
def test_resolve_rejects_garbage(spec):
    with pytest.raises(InvalidQuery) as err:
        resolve_crs(spec)
    message = str(err.value)
    assert repr(spec)[:50] in message and "\n" not in message


def test_resolve_error_for_long_wkt_is_one_short_line():
    with pytest.raises(InvalidQuery) as err:
        resolve_crs('PROJCRS["broken",\n' * 50)
    assert "\n" not in str(err.value) and len(str(err.value)) < 200


@pytest.mark.parametrize(
    ("ref", "swapped"),
    [
        (WGS84, True),
        (CGCS2000, True),
        (METRIC, True),
        (CRS84, False),
        (WEB_MERCATOR, False),
        (GCJ02, False),
        (BD09, False),
        (resolve_crs("EPSG:32650"), False),  # UTM 50N
        (resolve_crs("EPSG:2435"), True),  # Beijing 1954 / 3-degree Gauss-Kruger CM 114E
        (resolve_crs("EPSG:3031"), False),  # polar: both axes point "north", the first is still easting
        (resolve_crs(TMERC), False),
    ],
    ids=lambda v: v.uri if isinstance(v, CrsRef) else str(v),
)
def test_axis_swapped(ref, swapped):
    assert ref.axis_swapped is swapped


def test_supported_uris():
    assert SUPPORTED_CRS_URIS[0] == CRS84_URI
    assert len(set(SUPPORTED_CRS_URIS)) == 7
    assert {resolve_crs(uri).uri for uri in SUPPORTED_CRS_URIS} == set(SUPPORTED_CRS_URIS)
    assert {WGS84.uri, CGCS2000.uri, METRIC.uri, WEB_MERCATOR.uri, GCJ02_URI, BD09_URI} < set(SUPPORTED_CRS_URIS)


# --- transforming coordinates ----------------------------------------------------------------------------------


def test_station_in_epsg_4547():
    x, y = transform_xy(*STATION, WGS84, METRIC)
    # pyproj's value for 114.0239 E, 22.6119 N. (The E 503012, N 2501282 quoted in domain.md is the image of
    # 114.0293 E, 22.6094 N, about 620 m away: that figure and the station's lon/lat do not agree.)
    assert (float(x), float(y)) == pytest.approx((502457.2, 2501559.1), abs=3)
    tx, ty = transform_xy(*STATION, WGS84, resolve_crs(TMERC))
    assert (float(tx), float(ty)) == pytest.approx((float(x), float(y)), abs=0.001)


@pytest.mark.parametrize("spec", ["EPSG:4326", "EPSG:4490", "EPSG:4547", "EPSG:3857", "CRS84", TMERC])
@settings(max_examples=60, deadline=None)
@given(point=near_station())
def test_proj_round_trips_near_station(spec, point):
    ref = resolve_crs(spec)
    x, y = transform_xy(*point, WGS84, ref)
    back = transform_xy(x, y, ref, WGS84)
    assert float(metres(*point, *back)) < 0.001


@pytest.mark.parametrize("dst", [METRIC, WEB_MERCATOR, CRS84], ids=lambda r: r.uri)
@settings(max_examples=40, deadline=None)
@given(point=near_station())
def test_offset_systems_route_through_wgs84(dst, point):
    direct = transform_xy(*point, WGS84, dst)
    for ref, to_ref in [(GCJ02, wgs84_to_gcj02), (BD09, wgs84_to_bd09)]:
        via = transform_xy(*to_ref(*point), ref, dst)
        assert np.hypot(*(np.array(via) - np.array(direct))) < (0.001 if dst.crs.is_projected else 1e-8)


def test_gcj02_and_bd09_transform_directly_into_each_other():
    x, y = transform_xy([114.0, 114.1], [22.5, 22.7], GCJ02, BD09)
    expected = gcj02_to_bd09([114.0, 114.1], [22.5, 22.7])
    assert np.array_equal(x, expected[0]) and np.array_equal(y, expected[1])


def test_transform_xy_keeps_shape_and_does_not_alias_inputs():
    lon = np.full((3, 4), STATION[0])
    lat = np.full((3, 4), STATION[1])
    x, y = transform_xy(lon, lat, WGS84, WGS84)
    x[0, 0] = 0.0
    assert lon[0, 0] == STATION[0]
    x, y = transform_xy(lon, lat, WGS84, METRIC)
    assert x.shape == (3, 4) and y.shape == (3, 4) and np.all(x > 500000)


def test_transformers_are_built_once_and_shared_by_threads():
    assert crs._transformer(WGS84, METRIC) is crs._transformer(WGS84, METRIC)
    lon = np.linspace(113.9, 114.1, 2000)
    lat = np.linspace(22.5, 22.7, 2000)
    expected = transform_xy(lon, lat, WGS84, METRIC)
    results: list[bool] = []

    def work() -> None:
        for _ in range(20):
            got = transform_xy(lon, lat, WGS84, METRIC)
            results.append(np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 160 and all(results)


# --- transforming geometries -----------------------------------------------------------------------------------


def test_transform_geometries_keeps_z_dimension_and_none():
    geoms = [Point(114.0, 22.6, 12.5), LineString([(114.0, 22.6), (114.1, 22.7)]), None, Point()]
    out = transform_geometries(geoms, WGS84, METRIC)
    assert out[0].has_z and out[0].z == 12.5 and out[0].x == pytest.approx(500000, abs=0.01)
    assert not out[1].has_z and out[1].coords[1][0] > 500000
    assert out[2] is None and out[3].is_empty
    x, y = transform_xy([114.0, 114.1], [22.6, 22.7], WGS84, METRIC)
    assert np.allclose(np.asarray(out[1].coords), np.column_stack([x, y]), rtol=0, atol=1e-9)


def test_transform_geometries_accepts_geoseries_and_polygons():
    ring = [(114.0, 22.6), (114.05, 22.6), (114.05, 22.65), (114.0, 22.6)]
    series = gpd.GeoSeries([Polygon(ring)], crs="EPSG:4326")
    out = transform_geometries(series, WGS84, GCJ02)
    first = np.asarray(out[0].exterior.coords)
    expected = np.column_stack(wgs84_to_gcj02(*np.asarray(ring).T))
    assert isinstance(out, np.ndarray) and np.array_equal(first, expected)


def test_transform_geometry_round_trip_through_bd09():
    line = LineString([(114.0, 22.6, 1.0), (114.02, 22.61, 2.0)])
    back = transform_geometry(transform_geometry(line, WGS84, BD09), BD09, WGS84)
    assert back.has_z and [c[2] for c in back.coords] == [1.0, 2.0]
    assert metres(*np.asarray(line.coords)[:, :2].T, *np.asarray(back.coords)[:, :2].T).max() < ROUND_TRIP_M


def test_swap_axes():
    assert swap_axes(Point(1, 2, 3)).equals(Point(2, 1, 3))
    assert swap_axes(Point(1, 2, 3)).z == 3
    out = swap_axes([LineString([(1, 2), (3, 4)]), None])
    assert list(out[0].coords) == [(2.0, 1.0), (4.0, 3.0)] and out[1] is None
    assert swap_axes(swap_axes(out))[0].equals(out[0])


def test_to_metric_and_metric_distance():
    a = [Point(*STATION)]
    b = [Point(STATION[0] + 0.01, STATION[1] + 0.005)]
    assert to_metric(a)[0].x == pytest.approx(502457.2, abs=3)
    geodesic = float(metres(*STATION, STATION[0] + 0.01, STATION[1] + 0.005))
    assert float(metric_distance_m(a, b)[0]) == pytest.approx(geodesic, rel=1e-4)


# --- bounding boxes --------------------------------------------------------------------------------------------


def edge_points(bbox, fractions):
    minx, miny, maxx, maxy = bbox
    f = np.asarray([0.0, 1.0, *fractions])
    along_x, along_y = minx + (maxx - minx) * f, miny + (maxy - miny) * f
    xs = np.concatenate([along_x, np.full_like(f, maxx), along_x, np.full_like(f, minx)])
    ys = np.concatenate([np.full_like(f, miny), along_y, np.full_like(f, maxy), along_y])
    return xs, ys


def boxes(center, half_size):
    cx, cy = center
    return st.tuples(
        st.floats(cx - half_size, cx), st.floats(cy - half_size, cy), st.floats(0, half_size), st.floats(0, half_size)
    ).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (WGS84, METRIC),
        (WGS84, WEB_MERCATOR),
        (WGS84, GCJ02),
        (WGS84, BD09),
        (GCJ02, METRIC),
        (BD09, GCJ02),
        (WGS84, resolve_crs(TMERC)),
    ],
    ids=lambda r: r.uri[-12:],
)
@settings(max_examples=40, deadline=None)
@given(bbox=boxes(STATION, 0.3), fractions=st.lists(st.floats(0, 1), max_size=10))
def test_transform_bbox_contains_transformed_edges(src, dst, bbox, fractions):
    out = transform_bbox(bbox, src, dst)
    x, y = transform_xy(*edge_points(bbox, fractions), src, dst)
    slack = 0.01 if dst.kind == "proj" and dst.crs.is_projected else 1e-7  # a centimetre
    assert out[0] <= out[2] and out[1] <= out[3]
    assert np.all(x >= out[0] - slack) and np.all(x <= out[2] + slack)
    assert np.all(y >= out[1] - slack) and np.all(y <= out[3] + slack)


@settings(max_examples=40, deadline=None)
@given(bbox=boxes((502457.0, 2501559.0), 15000.0), fractions=st.lists(st.floats(0, 1), max_size=10))
def test_transform_bbox_from_metric_contains_transformed_edges(bbox, fractions):
    for dst in (WGS84, GCJ02):
        out = transform_bbox(bbox, METRIC, dst)
        x, y = transform_xy(*edge_points(bbox, fractions), METRIC, dst)
        assert np.all((x >= out[0] - 1e-7) & (x <= out[2] + 1e-7) & (y >= out[1] - 1e-7) & (y <= out[3] + 1e-7))


def test_transform_bbox_is_exact_for_the_same_crs_and_rejects_bad_boxes():
    assert transform_bbox((1, 2, 3, 4), GCJ02, GCJ02) == (1.0, 2.0, 3.0, 4.0)
    for bad in [(1, 2, 0, 4), (1, 2, 3), (1, float("nan"), 3, 4)]:
        with pytest.raises(InvalidQuery):
            transform_bbox(bad, WGS84, METRIC)


# --- frames ----------------------------------------------------------------------------------------------------


@pytest.fixture
def frame() -> gpd.GeoDataFrame:
    geoms = [Point(114.0239, 22.6119, 30.0), LineString([(114.02, 22.61), (114.03, 22.62)])]
    out = gpd.GeoDataFrame({"name": ["station", "road"]}, geometry=geoms, crs="EPSG:4326", index=[7, 9])
    return out.rename_geometry("geom")


def test_to_crs_proj(frame):
    out = to_crs(frame, "EPSG:4547")
    assert out.crs.to_epsg() == 4547 and out.geometry.name == "geom" and list(out.index) == [7, 9]
    assert out.geometry.iloc[0].x == pytest.approx(502457.2, abs=3) and out.geometry.iloc[0].z == 30.0
    assert frame.crs.to_epsg() == 4326 and frame.geometry.iloc[0].x == 114.0239  # input untouched
    assert "crs_uri" not in out.attrs


@pytest.mark.parametrize("dst", [GCJ02, BD09], ids=lambda r: r.kind)
def test_to_crs_offset_systems_and_back(frame, dst):
    out = to_crs(frame, dst.uri)
    assert out.crs is None and out.attrs["crs_uri"] == dst.uri and list(out["name"]) == ["station", "road"]
    assert float(metres(*STATION, out.geometry.iloc[0].x, out.geometry.iloc[0].y)) > 500
    back = from_crs(out)
    assert back.crs.to_epsg() == 4326 and "crs_uri" not in back.attrs
    assert metres(*shapely.get_coordinates(back.geometry).T, *shapely.get_coordinates(frame.geometry).T).max() < 0.001


def test_from_crs_with_geometries(frame):
    metric = to_crs(frame, METRIC)
    assert from_crs(metric).geometry.iloc[0].x == pytest.approx(114.0239, abs=1e-9)
    geoms = from_crs(np.asarray(metric.geometry.values, dtype=object), "EPSG:4547")
    assert isinstance(geoms, np.ndarray) and geoms[0].y == pytest.approx(22.6119, abs=1e-9)
    assert from_crs(metric.geometry)[0].x == pytest.approx(114.0239, abs=1e-9)
    with pytest.raises(ValueError):
        from_crs([Point(1, 2)])


def test_frames_in_other_crss(frame):
    metric = to_crs(frame, METRIC)
    gcj = to_crs(metric, GCJ02)
    direct = to_crs(frame, GCJ02)
    assert gcj.geometry.iloc[0].distance(direct.geometry.iloc[0]) < 1e-9
    custom = to_crs(frame, TMERC)
    assert custom.crs.is_projected and custom.geometry.iloc[0].x == pytest.approx(502457.2, abs=3)
    back = from_crs(custom)
    assert metres(*shapely.get_coordinates(back.geometry).T, *shapely.get_coordinates(frame.geometry).T).max() < 0.001


def test_frame_without_crs_needs_src(frame):
    bare = frame.set_crs(None, allow_override=True)
    with pytest.raises(ValueError):
        to_crs(bare, METRIC)
    assert from_crs(bare, WGS84).geometry.iloc[0].equals(frame.geometry.iloc[0])
