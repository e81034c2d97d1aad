"""The analyst's namespace: twin.open and the Twin's GeoDataFrames."""

from __future__ import annotations

import doctest
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
import shapely
from pyproj import Transformer

import twin
import twin.core
from twin.errors import NotFound


@pytest.fixture(scope="module")
def t(sample_path: Path):
    opened = twin.open(sample_path)
    yield opened
    opened.close()


def test_docstring_examples_run(sample_path: Path) -> None:
    for module in (twin, twin.core):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0


def test_layers_come_out_as_geodataframes_in_the_asked_crs(t: twin.Twin) -> None:
    lonlat = t.layer("buildings", limit=50)
    metric = t.layer("buildings", crs="EPSG:4547", limit=50)
    assert isinstance(lonlat, gpd.GeoDataFrame) and lonlat.crs.to_epsg() == 4326
    assert metric.crs.to_epsg() == 4547
    assert list(lonlat.index) == list(metric.index)
    assert metric.geometry.centroid.x.between(480_000, 530_000).all()
    back = metric.to_crs(4326)
    assert shapely.distance(back.geometry.values, lonlat.geometry.values).max() < 1e-8


def test_gcj02_frames_are_shifted_and_marked(t: twin.Twin) -> None:
    wgs = t.layer("fire_stations")
    gcj = t.layer("fire_stations", crs="GCJ-02")
    assert gcj.crs is None and gcj.attrs["crs_uri"].endswith("GCJ-02")
    assert (shapely.distance(wgs.geometry.values, gcj.geometry.values) > 0.002).all()


def test_where_and_bbox_filters(t: twin.Twin) -> None:
    towers = t.layer("buildings", where={"height_m": (">", 100)})
    assert len(towers) == 138 and (towers["height_m"] > 100).all()
    offices = t.layer("buildings", where={"use": ["office", "mixed"]})
    assert set(offices["use"]) <= {"office", "mixed"} and len(offices) > 0
    e, n = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True).transform(114.0239, 22.6119)
    near = t.layer("buildings", bbox=(e - 500, n - 500, e + 500, n + 500), bbox_crs="EPSG:4547")
    assert 0 < len(near) < len(t.layer("buildings"))


def test_nearest_and_within(t: twin.Twin) -> None:
    hydrants = t.nearest("fire_facilities", 114.0239, 22.6119, k=3, where={"type": "outdoor_hydrant"})
    assert len(hydrants) == 3 and (hydrants["type"] == "outdoor_hydrant").all()
    assert hydrants["distance_m"].is_monotonic_increasing
    radius = float(hydrants["distance_m"].iloc[-1]) + 0.01
    within = t.within("fire_facilities", shapely.Point(114.0239, 22.6119), radius, where={"type": "outdoor_hydrant"})
    assert set(hydrants.index) <= set(within.index)


def test_by_grid_counts_every_building(t: twin.Twin) -> None:
    per_grid = t.by_grid("buildings", sums=["residents"])
    buildings = t.layer("buildings")
    assert per_grid["count"].sum() == len(buildings)


def test_rasters_open_with_rasterio(t: twin.Twin) -> None:
    for raster_id in t.raster_ids:
        with rasterio.open(t.raster_path(raster_id)) as dataset:
            assert dataset.crs.to_epsg() == 4547


def test_unknown_layer_is_not_found(t: twin.Twin) -> None:
    with pytest.raises(NotFound):
        t.layer("houses")
