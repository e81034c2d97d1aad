"""Import and export through the `twin` command and `twin.transfer`: round trips and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from twin.store.geopackage import GeoPackageStore
from twin.transfer import copy_twin, export_layer, import_file

TWIN = [sys.executable, "-m", "twin.cli"]


def run_twin(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*TWIN, *args], capture_output=True, text=True, timeout=300, env=env)


def _same_layer(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.index) == list(b.index)
    for column in a.columns:
        if column == "geometry":
            left = shapely.normalize(a.geometry.values)
            right = shapely.normalize(b.geometry.values)
            assert shapely.equals_exact(left, right, tolerance=1e-7).all()
        else:
            pd.testing.assert_series_equal(a[column], b[column], check_dtype=False, check_names=False)


@pytest.fixture(scope="module")
def sample_store(sample_path: Path):
    store = GeoPackageStore(sample_path)
    yield store
    store.close()


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet", ".shp"])
def test_buildings_round_trip(sample_store, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"buildings{suffix}"
    written = export_layer(sample_store, "buildings", out)
    original = sample_store.query("buildings")
    assert written == len(original) >= 3000
    target = GeoPackageStore.create(tmp_path / "fresh.gpkg")
    try:
        assert import_file(target, out, "buildings", mode="replace") == written
        _same_layer(original, target.query("buildings"))
    finally:
        target.close()


def test_sensors_round_trip_keeps_z_and_datetimes(sample_store, tmp_path: Path) -> None:
    out = tmp_path / "sensors.parquet"
    export_layer(sample_store, "sensors", out)
    target = GeoPackageStore.create(tmp_path / "fresh.gpkg")
    try:
        import_file(target, out, "sensors", mode="replace")
        original, copy = sample_store.query("sensors"), target.query("sensors")
        _same_layer(original, copy)
        assert shapely.has_z(copy.geometry.values).all()
    finally:
        target.close()


def test_export_in_cgcs2000_gk_is_metric(sample_store, tmp_path: Path) -> None:
    out = tmp_path / "stations.gpkg"
    export_layer(sample_store, "fire_stations", out, crs="EPSG:4547")
    info = pyogrio.read_info(out)
    assert "4547" in info["crs"]
    frame = pyogrio.read_dataframe(out)
    assert frame.geometry.x.between(480_000, 530_000).all()
    assert frame.geometry.y.between(2_480_000, 2_530_000).all()


def test_export_gcj02_then_import_back(sample_store, tmp_path: Path) -> None:
    out = tmp_path / "stations_gcj.geojson"
    export_layer(sample_store, "fire_stations", out, crs="GCJ-02")
    original = sample_store.query("fire_stations")
    shifted = json.loads(out.read_text())["features"][0]["geometry"]["coordinates"]
    first = original.geometry.iloc[0]
    assert abs(shifted[0] - first.x) > 0.003  # GCJ-02 is hundreds of metres off WGS84 here
    target = GeoPackageStore.create(tmp_path / "fresh.gpkg")
    try:
        import_file(target, out, "fire_stations", mode="replace", crs="GCJ-02")
        back = target.query("fire_stations")
        assert shapely.distance(back.geometry.values, original.geometry.values).max() < 1e-7
    finally:
        target.close()


def test_cli_missing_file_is_one_clear_line(sample_copy: Path, tmp_path: Path) -> None:
    result = run_twin("import", str(tmp_path / "nope.geojson"), "--layer", "buildings", "--store", str(sample_copy))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.geojson" in lines[0] and "no such file" in lines[0]


def _count(path: Path, layer: str) -> int:
    with GeoPackageStore(path) as store:
        return store.count(layer)


def test_cli_invalid_geometry_names_row_and_leaves_store_untouched(sample_copy: Path, tmp_path: Path) -> None:
    before = _count(sample_copy, "buildings")
    good = shapely.box(114.02, 22.61, 114.0202, 22.6102)
    bowtie = shapely.Polygon([(114.03, 22.62), (114.031, 22.621), (114.031, 22.62), (114.03, 22.621)])
    frame = gpd.GeoDataFrame(
        {"code": ["X1", "X2"], "use": ["office", "office"], "height_m": [20.0, 30.0], "floors_above": [5, 8]},
        geometry=[good, bowtie],
        crs="EPSG:4326",
    )
    path = tmp_path / "bad.geojson"
    frame.to_file(path)
    result = run_twin("import", str(path), "--layer", "buildings", "--store", str(sample_copy))
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "bad.geojson" in message and "row 2" in message and "geometry" in message
    assert _count(sample_copy, "buildings") == before


def test_cli_unknown_field_is_rejected(sample_copy: Path, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["X1"], "use": ["office"], "height_m": [20.0], "floors_above": [5], "colour": ["red"]},
        geometry=[shapely.box(114.02, 22.61, 114.0202, 22.6102)],
        crs="EPSG:4326",
    )
    path = tmp_path / "extra.geojson"
    frame.to_file(path)
    before = _count(sample_copy, "buildings")
    result = run_twin("import", str(path), "--layer", "buildings", "--store", str(sample_copy))
    assert result.returncode == 2
    assert "colour" in result.stderr
    assert _count(sample_copy, "buildings") == before


@pytest.mark.filterwarnings(
    "ignore:Column names longer", "ignore:'crs' was not provided", "ignore:Normalized/laundered"
)
def test_cli_missing_crs_is_rejected_and_crs_option_fixes_it(sample_copy: Path, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["X1"], "use": ["office"], "height_m": [20.0], "floors_above": [5]},
        geometry=[shapely.box(503000, 2501000, 503020, 2501020)],
    )
    path = tmp_path / "nocrs.shp"
    frame.to_file(path)
    before = _count(sample_copy, "buildings")
    result = run_twin("import", str(path), "--layer", "buildings", "--store", str(sample_copy))
    assert result.returncode == 2 and "CRS" in result.stderr
    assert _count(sample_copy, "buildings") == before
    result = run_twin("import", str(path), "--layer", "buildings", "--store", str(sample_copy), "--crs", "EPSG:4547")
    assert result.returncode == 0, result.stderr
    assert _count(sample_copy, "buildings") == before + 1


def test_cli_unknown_layer(sample_copy: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.geojson"
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(114, 22.6)], crs="EPSG:4326").to_file(path)
    result = run_twin("import", str(path), "--layer", "houses", "--store", str(sample_copy))
    assert result.returncode == 2 and "houses" in result.stderr


def test_cli_info_and_export(sample_copy: Path, tmp_path: Path) -> None:
    info = run_twin("info", "--store", str(sample_copy))
    assert info.returncode == 0, info.stderr
    counts = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in info.stdout.splitlines()}
    assert counts["buildings"] >= 3000 and counts["sensors"] >= 25000
    out = tmp_path / "grids.geojson"
    result = run_twin("export", "grids", str(out), "--store", str(sample_copy))
    assert result.returncode == 0, result.stderr
    assert len(json.loads(out.read_text())["features"]) == counts["grids"]


def test_copy_twin_moves_every_layer_with_its_ids(sample_path, tmp_path):
    source = GeoPackageStore(sample_path, readonly=True)
    target = GeoPackageStore.create(tmp_path / "copy.gpkg")
    try:
        copied = copy_twin(source, target)
        for layer_id, rows in copied.items():
            _same_layer(source.query(layer_id), target.query(layer_id))
            assert rows == target.count(layer_id)
        assert copied["buildings"] > 0 and copied["readings"] > 0
    finally:
        source.close()
        target.close()
