"""Point sampling and zonal statistics against the analytic raster and brute-force numpy/shapely computations."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer
from shapely.geometry import Point, box

from tests.raster.conftest import HOLE_E, HOLE_N, NODATA, RES, SIZE, STATION_E, STATION_N, X0, Y1, lonlat
from twin.crs import METRIC, WGS84, transform_geometries
from twin.errors import InvalidQuery, NotFound
from twin.raster import sample_points, zonal_stats
from twin.raster import sampling as sampling_module

TO_LONLAT = Transformer.from_crs(4547, 4326, always_xy=True)


@pytest.fixture(scope="module")
def metric_data(metric_cog: Path) -> np.ndarray:
    with rasterio.open(metric_cog) as dataset:
        return dataset.read(1)


def pixel_centres(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return X0 + (cols + 0.5) * RES, Y1 - (rows + 0.5) * RES


def test_sample_points_is_exact_on_pixel_centres(metric_cog: Path, metric_data: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    rows, cols = rng.integers(0, SIZE, 5000), rng.integers(0, SIZE, 5000)
    lons, lats = TO_LONLAT.transform(*pixel_centres(rows, cols))
    values = sample_points(metric_cog, lons, lats)
    expected = metric_data[rows, cols].astype(np.float64)
    expected[expected == NODATA] = np.nan
    assert values.dtype == np.float64 and values.shape == (5000,)
    assert np.isnan(values).any()  # some fell in the nodata disc
    np.testing.assert_array_equal(values, expected)


def test_sample_points_off_centre_takes_the_containing_pixel(metric_cog: Path, metric_data: np.ndarray) -> None:
    east, north = pixel_centres(np.array([10, 10, 10]), np.array([20, 20, 20]))
    east, north = east + np.array([-4.9, 0.0, 4.9]), north + np.array([4.9, -4.9, 0.0])
    values = sample_points(metric_cog, east, north, crs="EPSG:4547")
    assert np.all(values == metric_data[10, 20])


def test_sample_points_outside_and_nodata_are_nan(metric_cog: Path) -> None:
    outside = lonlat(X0 - 5, Y1 - 500)
    hole = lonlat(HOLE_E, HOLE_N)
    inside = lonlat(STATION_E, STATION_N)
    values = sample_points(metric_cog, [outside[0], hole[0], inside[0], 0.0], [outside[1], hole[1], inside[1], 0.0])
    assert np.isnan(values[[0, 1, 3]]).all()
    assert values[2] == pytest.approx((STATION_E - 498000) / 10 + (STATION_N - 2496000) / 10000, abs=1.0)


def test_sample_points_keeps_the_input_shape(metric_cog: Path) -> None:
    lon, lat = lonlat(STATION_E, STATION_N)
    assert sample_points(metric_cog, np.full((2, 3), lon), np.full((2, 3), lat)).shape == (2, 3)
    assert sample_points(metric_cog, lon, lat).shape == ()
    assert sample_points(metric_cog, [], []).shape == (0,)


def test_sample_points_reads_spread_points_block_by_block(
    metric_cog: Path, metric_data: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sampling_module, "_MAX_WINDOW_PIXELS", 100)
    rows, cols = np.array([3, 999, 500, 4, 998]), np.array([3, 999, 260, 5, 0])
    values = sample_points(metric_cog, *pixel_centres(rows, cols), crs="EPSG:4547")
    np.testing.assert_array_equal(values, metric_data[rows, cols])


def test_sample_points_on_a_geographic_raster(geographic_cog: Path) -> None:
    lons = 113.994 + (np.array([0, 599, 17]) + 0.5) * 0.0001
    lats = 22.637 - (np.array([0, 499, 70]) + 0.5) * 0.0001
    np.testing.assert_array_equal(sample_points(geographic_cog, lons, lats), [0, 71 * 700 + 599, 10 * 700 + 17])


def brute_force(data: np.ndarray, polygon_metric: shapely.Geometry, all_touched: bool) -> np.ndarray:
    """Values under a polygon by testing, with shapely, every pixel near its bounding box (2 pixels of margin)."""
    minx, miny, maxx, maxy = polygon_metric.bounds
    c0, c1 = max(int((minx - X0) // RES) - 2, 0), min(int((maxx - X0) // RES) + 3, SIZE)
    r0, r1 = max(int((Y1 - maxy) // RES) - 2, 0), min(int((Y1 - miny) // RES) + 3, SIZE)
    if c1 <= c0 or r1 <= r0:
        return np.empty(0)
    rows, cols = np.mgrid[r0:r1, c0:c1]
    if all_touched:
        boxes = shapely.box(X0 + cols * RES, Y1 - (rows + 1) * RES, X0 + (cols + 1) * RES, Y1 - rows * RES)
        inside = shapely.intersects(polygon_metric, boxes)
    else:
        inside = shapely.contains_xy(polygon_metric, *pixel_centres(rows, cols))
    values = data[rows[inside], cols[inside]]
    return values[values != NODATA].astype(np.float64)


def random_polygons(count: int, seed: int) -> list[shapely.Geometry]:
    """Rotated rectangles and blobs in EPSG:4547, some across the raster edge and the nodata disc."""
    rng = np.random.default_rng(seed)
    polygons = []
    for _ in range(count):
        cx, cy = rng.uniform(X0 - 300, X0 + SIZE * RES + 300), rng.uniform(Y1 - SIZE * RES - 300, Y1 + 300)
        shape = box(-rng.uniform(20, 400), -rng.uniform(20, 300), rng.uniform(20, 400), rng.uniform(20, 300))
        if rng.random() < 0.3:
            shape = Point(0, 0).buffer(rng.uniform(30, 500))
        polygons.append(shapely.affinity.translate(shapely.affinity.rotate(shape, rng.uniform(0, 90)), cx, cy))
    return polygons


@pytest.mark.parametrize("all_touched", [False, True])
def test_zonal_stats_match_brute_force(metric_cog: Path, metric_data: np.ndarray, all_touched: bool) -> None:
    polygons = random_polygons(40, seed=11)
    lonlat_polygons = transform_geometries(polygons, METRIC, WGS84)
    stats = ("count", "min", "max", "mean", "std", "sum", "median")
    frame = zonal_stats(metric_cog, lonlat_polygons, stats, all_touched=all_touched)
    assert list(frame.columns) == list(stats) and len(frame) == 40
    for i, polygon in enumerate(polygons):
        values = brute_force(metric_data, polygon, all_touched)
        row = frame.iloc[i]
        assert row["count"] == values.size, i
        if values.size:
            assert row["min"] == values.min() and row["max"] == values.max()
            assert row["mean"] == pytest.approx(values.mean(), rel=1e-9)
            assert row["std"] == pytest.approx(values.std(), rel=1e-6, abs=1e-9)
            assert row["sum"] == pytest.approx(values.sum(), rel=1e-9)
            assert row["median"] == pytest.approx(np.median(values), rel=1e-9)
        else:
            assert row[list(stats[1:])].isna().all()
    assert (frame["count"] > 0).sum() > 20 and (frame["count"] == 0).any()


def test_tiny_polygon_gets_the_value_of_its_pixel(metric_cog: Path, metric_data: np.ndarray) -> None:
    east, north = pixel_centres(np.array([400]), np.array([300]))
    tiny = box(east[0] + 1, north[0] + 1, east[0] + 3, north[0] + 3)  # 2 × 2 m, off the pixel centre
    tiny_lonlat = transform_geometries([tiny], METRIC, WGS84)
    centres = zonal_stats(metric_cog, tiny_lonlat, all_touched=False)
    assert centres.loc[0, "count"] == 0 and np.isnan(centres.loc[0, "mean"])
    for rule in (None, True):
        frame = zonal_stats(metric_cog, tiny_lonlat, all_touched=rule)
        assert frame.loc[0, "count"] == 1
        assert frame.loc[0, "mean"] == metric_data[400, 300]


def test_default_rule_uses_centres_when_the_polygon_holds_some(metric_cog: Path) -> None:
    square = box(STATION_E - 93, STATION_N - 93, STATION_E + 97, STATION_N + 97)  # holds 19 × 19 pixel centres
    big = transform_geometries([square], METRIC, WGS84)
    default = zonal_stats(metric_cog, big)["count"].iloc[0]
    assert default == zonal_stats(metric_cog, big, all_touched=False)["count"].iloc[0] == 19 * 19
    assert zonal_stats(metric_cog, big, all_touched=True)["count"].iloc[0] == 20 * 20


def test_outside_empty_and_missing_geometries(metric_cog: Path) -> None:
    outside = box(113.0, 22.0, 113.1, 22.1)
    hole = Point(*lonlat(HOLE_E, HOLE_N)).buffer(0.0005)  # entirely nodata
    frame = zonal_stats(metric_cog, [outside, None, shapely.Polygon(), hole])
    assert frame["count"].tolist() == [0, 0, 0, 0]
    assert frame[["min", "max", "mean", "std"]].isna().all().all()


def test_geoseries_index_and_crs_are_used(metric_cog: Path) -> None:
    metric = box(STATION_E - 50, STATION_N - 50, STATION_E + 50, STATION_N + 50)
    series = gpd.GeoSeries([metric, metric.buffer(100)], index=["a", "b"], crs="EPSG:4547")
    frame = zonal_stats(metric_cog, series, ("count", "mean"))
    assert list(frame.index) == ["a", "b"]
    assert frame.loc["a", "count"] == 100
    lonlat_frame = zonal_stats(metric_cog, series.to_crs(4326), ("count", "mean"))
    pd.testing.assert_frame_equal(frame, lonlat_frame)


def test_zonal_stats_reads_per_geometry_when_spread(
    metric_cog: Path, metric_data: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    polygons = random_polygons(10, seed=5)
    lonlat_polygons = transform_geometries(polygons, METRIC, WGS84)
    whole = zonal_stats(metric_cog, lonlat_polygons)
    monkeypatch.setattr(sampling_module, "_MAX_WINDOW_PIXELS", 100)
    pd.testing.assert_frame_equal(zonal_stats(metric_cog, lonlat_polygons), whole)


def test_thousands_of_buildings_in_a_couple_of_seconds(metric_cog: Path) -> None:
    rng = np.random.default_rng(2)
    east = rng.uniform(X0, X0 + SIZE * RES, 3000)
    north = rng.uniform(Y1 - SIZE * RES, Y1, 3000)
    footprints = shapely.box(east, north, east + rng.uniform(8, 60, 3000), north + rng.uniform(8, 40, 3000))
    buildings = transform_geometries(footprints, METRIC, WGS84)
    zonal_stats(metric_cog, buildings[:10])  # opened and warm
    started = time.perf_counter()
    frame = zonal_stats(metric_cog, buildings)
    elapsed = time.perf_counter() - started
    assert len(frame) == 3000 and (frame["count"] > 0).mean() > 0.95
    assert elapsed < 4.0, f"{elapsed:.2f} s for 3000 buildings"


def test_bad_input(metric_cog: Path, tmp_path: Path) -> None:
    square = box(114.02, 22.60, 114.03, 22.61)
    with pytest.raises(InvalidQuery):
        zonal_stats(metric_cog, [square], ("count", "mode"))
    with pytest.raises(InvalidQuery):
        zonal_stats(metric_cog, [square], ())
    with pytest.raises(InvalidQuery):
        sample_points(metric_cog, [114.0], [22.6], crs="EPSG:999999")
    with pytest.raises(NotFound):
        zonal_stats(tmp_path / "missing.tif", [square])
    with pytest.raises(NotFound):
        sample_points(tmp_path / "missing.tif", [114.0], [22.6])
