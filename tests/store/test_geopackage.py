"""GeoPackage-specific checks: the file is a valid OGC GeoPackage that GDAL reads the same way the store does,
opening errors, read-only use, crash safety, and the geometry blob codec."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from layers import LAYERS, FieldType, get_layer
from twin.errors import Conflict, Forbidden, NotFound, Unavailable, ValidationFailed
from twin.store import gpkg_geometry
from twin.store.base import BBox, FeatureQuery
from twin.store.geopackage import GeoPackageStore
from twin.store.gpkg_sql import like_to_glob

SPATIAL = [layer for layer in LAYERS if layer.is_spatial]
GDAL_TYPES = {"Point": "Point", "LineString": "LineString", "Polygon": "Polygon", "MultiPolygon": "MultiPolygon"}


@pytest.fixture
def gpkg(store) -> GeoPackageStore:
    if not isinstance(store, GeoPackageStore):
        pytest.skip("GeoPackage only")
    return store


def _sql(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_file_header_and_core_tables(gpkg):
    conn = sqlite3.connect(gpkg.path)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10400
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        srs = {r[0] for r in conn.execute("SELECT srs_id FROM gpkg_spatial_ref_sys")}
        assert {-1, 0, 4326} <= srs
        contents = dict(conn.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
        assert contents == {layer.id: "features" if layer.is_spatial else "attributes" for layer in LAYERS}
        columns = {r[0]: r[1:] for r in conn.execute(
            "SELECT table_name, column_name, geometry_type_name, srs_id, z, m FROM gpkg_geometry_columns")}
        assert columns == {layer.id: ("geom", layer.geometry_type.value.upper(), 4326, int(layer.has_z), 0)
                           for layer in SPATIAL}
        extensions = conn.execute(
            "SELECT table_name, column_name, extension_name, scope FROM gpkg_extensions").fetchall()
        assert sorted(extensions) == sorted((layer.id, "geom", "gpkg_rtree_index", "write-only") for layer in SPATIAL)
    finally:
        conn.close()


def test_tables_keys_indexes_and_rtree_triggers(gpkg):
    for layer in LAYERS:
        info = _sql(gpkg.path, f'PRAGMA table_info("{layer.id}")')
        assert info[0][1:6] == ("id", "INTEGER", 1, None, 1)
        ddl = _sql(gpkg.path, "SELECT sql FROM sqlite_master WHERE name = ?", (layer.id,))[0][0]
        assert "AUTOINCREMENT" in ddl
        indexes = {r[0] for r in _sql(gpkg.path, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
                                      " AND sql IS NOT NULL", (layer.id,))}
        own = {f"idx_{layer.id}_{f.name}" for f in layer.fields if f.indexed}
        served = {f"idx_{layer.id}_{layer.unique_key[0]}"} if layer.unique_key else set()
        assert own - served <= indexes and not served & indexes  # the unique index serves its leading field
        triggers = {r[0] for r in _sql(gpkg.path, "SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
                                       "tbl_name = ?", (layer.id,))}
        if layer.is_spatial:
            suffixes = ("insert", "update2", "update4", "update5", "update6", "update7", "delete")
            assert triggers == {f"rtree_{layer.id}_geom_{s}" for s in suffixes}
        else:
            assert triggers == set()
    unique = _sql(gpkg.path, "SELECT sql FROM sqlite_master WHERE name = 'uq_readings_sensor_id_ts'")
    assert "UNIQUE" in unique[0][0]


def _rtree_matches_table(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        for layer in SPATIAL:
            rows = conn.execute(f'SELECT t.id, t.geom, r.minx, r.maxx, r.miny, r.maxy FROM "{layer.id}" t '
                                f'LEFT JOIN "rtree_{layer.id}_geom" r ON r.id = t.id ORDER BY t.id').fetchall()
            assert len(rows) == conn.execute(f'SELECT count(*) FROM "rtree_{layer.id}_geom"').fetchone()[0]
            assert conn.execute("SELECT rtreecheck(?)", (f"rtree_{layer.id}_geom",)).fetchone()[0] == "ok"
            if not rows:
                continue
            bounds = shapely.bounds(gpkg_geometry.decode([r[1] for r in rows]))
            rtree = np.array([r[2:] for r in rows], dtype=float)
            slack = 5e-5  # float32, rounded outwards
            assert (rtree[:, 0] <= bounds[:, 0]).all() and (rtree[:, 0] > bounds[:, 0] - slack).all()
            assert (rtree[:, 1] >= bounds[:, 2]).all() and (rtree[:, 1] < bounds[:, 2] + slack).all()
            assert (rtree[:, 2] <= bounds[:, 1]).all() and (rtree[:, 3] >= bounds[:, 3]).all()
    finally:
        conn.close()


def test_rtree_follows_every_kind_of_write(gpkg, twin_data):
    _rtree_matches_table(gpkg.path)
    frame = twin_data.frames["buildings"].iloc[:3].reset_index(drop=True)
    gpkg.insert("buildings", frame.assign(code=["X1", "X2", "X3"]))
    gpkg.update("buildings", 4, {"geometry": box(114.0431, 22.6181, 114.0433, 22.6183)})
    gpkg.update("sensors", 2, {"geometry": Point(114.0432, 22.6182, 9.0), "status": "fault"})
    gpkg.delete("buildings", [5, 6])
    gpkg.replace_layer("roads", twin_data.frames["roads"].iloc[:2])
    _rtree_matches_table(gpkg.path)
    assert _sql(gpkg.path, "PRAGMA integrity_check")[0][0] == "ok"


# GDAL (pyogrio) links its own copy of SQLite. Two SQLite libraries in one process must not hold the same file at
# once: POSIX locks are per process, so GDAL's SQLite would believe it is alone, and on closing it would checkpoint
# and delete the WAL under the store's feet. So these tests take the store's answers, close the store, and only
# then let GDAL open the file. (QGIS or GDAL in another process are safe: see the subprocess test below.)


def test_gdal_lists_every_layer_with_its_geometry_type(gpkg):
    gpkg.close()
    listed = {name: kind for name, kind in pyogrio.list_layers(gpkg.path)}
    for layer in LAYERS:
        expected = None if not layer.is_spatial else (
            GDAL_TYPES[layer.geometry_type.value] + (" Z" if layer.has_z else ""))
        assert listed[layer.id] == expected


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_gdal_info_agrees_with_the_store(gpkg, layer):
    count = gpkg.count(layer.id)
    extent = gpkg.extent(layer.id).as_tuple() if layer.is_spatial else None
    gpkg.close()
    info = pyogrio.read_info(gpkg.path, layer=layer.id)
    assert info["features"] == count
    assert list(info["fields"]) == list(layer.field_names)
    assert info["fid_column"] == "id"
    if layer.is_spatial:
        assert info["crs"] == "EPSG:4326"
        assert info["geometry_name"] == "geom"
        np.testing.assert_allclose(info["total_bounds"], extent, atol=1e-12)


def _plain(value, kind: FieldType):
    """A value GDAL or the store returned, in one comparable form per field type."""
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if kind is FieldType.DATE:
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    if kind is FieldType.DATETIME:
        stamp = pd.Timestamp(value)
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).isoformat()
    if kind in (FieldType.INTEGER, FieldType.REAL, FieldType.BOOLEAN):
        return float(value)
    return value


def _assert_same(gdal: pd.DataFrame, ours: pd.DataFrame, layer_id: str) -> None:
    assert sorted(gdal.index) == list(ours.index)
    gdal = gdal.loc[ours.index]
    for name in get_layer(layer_id).field_names:
        kind = get_layer(layer_id).field(name).type
        assert [_plain(v, kind) for v in gdal[name]] == [_plain(v, kind) for v in ours[name]], name
    if get_layer(layer_id).is_spatial:
        assert shapely.equals_exact(gdal.geometry.to_numpy(), ours.geometry.to_numpy(), tolerance=0).all()
        assert (shapely.has_z(gdal.geometry.to_numpy()) == shapely.has_z(ours.geometry.to_numpy())).all()


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_gdal_reads_the_same_features(gpkg, layer):
    ours = gpkg.query(layer.id)
    gpkg.close()
    _assert_same(pyogrio.read_dataframe(gpkg.path, layer=layer.id, fid_as_index=True), ours, layer.id)


BOXES = (BBox(114.022, 22.603, 114.031, 22.611), BBox(114.043, 22.618, 114.0435, 22.6185))


def test_gdal_spatial_filter_and_reads_after_writes_agree(gpkg, twin_data):
    gpkg.insert("buildings", twin_data.frames["buildings"].iloc[:2].reset_index(drop=True).assign(code=["Q1", "Q2"]))
    gpkg.update("buildings", 9, {"geometry": box(114.0431, 22.6181, 114.0433, 22.6183), "height_m": 99})
    gpkg.delete("buildings", [10])
    ours = gpkg.query("buildings")
    in_boxes = [list(gpkg.query("buildings", FeatureQuery(bbox=b)).index) for b in BOXES]
    assert all(in_boxes)
    gpkg.close()
    _assert_same(pyogrio.read_dataframe(gpkg.path, layer="buildings", fid_as_index=True), ours, "buildings")
    for bbox, expected in zip(BOXES, in_boxes, strict=True):
        gdal = pyogrio.read_dataframe(gpkg.path, layer="buildings", bbox=bbox.as_tuple(), fid_as_index=True)
        assert sorted(gdal.index) == expected


def test_gdal_in_another_process_reads_while_the_store_is_open(gpkg):
    gpkg.update("buildings", 9, {"height_m": 77.5})
    gpkg.delete("buildings", [10])
    result = _run(f"""
        import pyogrio
        frame = pyogrio.read_dataframe({str(gpkg.path)!r}, layer="buildings", fid_as_index=True)
        print(len(frame), frame.loc[9, "height_m"], 10 in frame.index)
    """)
    assert result.stdout.split() == ["50", "77.5", "False"], result.stderr
    gpkg.update("buildings", 9, {"height_m": 12.0})  # the store carries on undisturbed
    assert gpkg.get("buildings", 9)["height_m"].iloc[0] == 12.0
    assert _sql(gpkg.path, "PRAGMA integrity_check")[0][0] == "ok"


def test_the_store_reads_what_gdal_appends(gpkg):
    gpkg.close()
    station = gpd.GeoDataFrame({"name": ["GDAL 站"], "station_type": ["small"], "address": [None], "engines": [1]},
                               geometry=[Point(114.0441, 22.6191)], crs=4326)
    pyogrio.write_dataframe(station, gpkg.path, layer="fire_stations", append=True)
    again = GeoPackageStore(gpkg.path)
    try:
        found = again.query("fire_stations", FeatureQuery(bbox=BBox(114.044, 22.619, 114.0442, 22.6192)))
        assert list(found["name"]) == ["GDAL 站"]
        assert found.geometry.iloc[0].equals(Point(114.0441, 22.6191))
        assert again.extent("fire_stations").maxx == 114.0441
        assert list(again.nearest("fire_stations", Point(114.0441, 22.6191), k=1)["name"]) == ["GDAL 站"]
    finally:
        again.close()


def test_opening_errors_are_clear(tmp_path):
    with pytest.raises(NotFound, match="no GeoPackage"):
        GeoPackageStore(tmp_path / "missing.gpkg")
    text = tmp_path / "notes.gpkg"
    text.write_text("hello, I am not a database" * 100)
    with pytest.raises(ValidationFailed, match="not a GeoPackage"):
        GeoPackageStore(text)
    plain = tmp_path / "plain.sqlite"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ValidationFailed, match="not a GeoPackage"):
        GeoPackageStore(plain)
    other = tmp_path / "other.gpkg"
    roads = gpd.GeoDataFrame({"name": ["a"]}, geometry=[LineString([(0, 0), (1, 1)])], crs=4326)
    pyogrio.write_dataframe(roads, other, layer="roads")
    with pytest.raises(ValidationFailed, match="lacks the catalogue tables grids, buildings"):
        GeoPackageStore(other)


def test_create_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "new.gpkg"
    GeoPackageStore.create(path).close()
    with pytest.raises(Conflict):
        GeoPackageStore.create(path)
    store = GeoPackageStore.create(path, overwrite=True)
    try:
        assert all(store.count(layer.id) == 0 for layer in LAYERS)
        assert store.extent("buildings") is None and store.time_extent("readings") == (None, None)
        assert store.aggregate_by_grid("buildings").empty
        assert store.nearest("buildings", Point(114, 22.6), k=3).empty
        assert store.within_distance("buildings", Point(114, 22.6), 100).empty
    finally:
        store.close()
    assert {name for name, _ in pyogrio.list_layers(path)} == {layer.id for layer in LAYERS}


def test_readonly_store_reads_but_refuses_writes(gpkg, twin_data):
    gpkg.close()
    readonly = GeoPackageStore(gpkg.path, readonly=True)
    try:
        assert readonly.count("buildings") == 51
        for write in (lambda: readonly.insert("buildings", twin_data.frames["buildings"].iloc[:1].reset_index()),
                      lambda: readonly.update("buildings", 1, {"height_m": 1}),
                      lambda: readonly.delete("buildings", [1]),
                      lambda: readonly.replace_layer("roads", twin_data.frames["roads"])):
            with pytest.raises(Forbidden):
                write()
        assert readonly.count("buildings") == 51 and readonly.get("buildings", 1)["height_m"].iloc[0] == 10.0
    finally:
        readonly.close()


def test_a_closed_store_is_unavailable(gpkg):
    gpkg.close()
    with pytest.raises(Unavailable):
        gpkg.count("buildings")


def test_each_thread_reads_through_its_own_connection(gpkg):
    seen = []
    barrier = threading.Barrier(3)

    def work() -> None:
        seen.append(id(gpkg._conn()))
        gpkg.count("buildings")
        barrier.wait()  # all three alive at once, so their connections cannot share an address

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 3 and id(gpkg._conn()) not in seen
    assert gpkg._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def _run(code: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(root)})


def test_a_committed_write_survives_the_process_being_killed(gpkg):
    gpkg.close()
    result = _run(f"""
        import os, signal
        from shapely.geometry import Point
        import geopandas as gpd
        from twin.store.geopackage import GeoPackageStore
        store = GeoPackageStore({str(gpkg.path)!r})
        frame = gpd.GeoDataFrame({{"name": ["killed"], "station_type": ["small"]}},
                                 geometry=[Point(114.03, 22.61)], crs=4326)
        store.insert("fire_stations", frame)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert result.returncode == -9, result.stderr
    again = GeoPackageStore(gpkg.path)
    try:
        assert list(again.query("fire_stations")["name"]) == ["民治消防站", "北站小型站", "killed"]
    finally:
        again.close()


def test_a_write_killed_before_commit_leaves_nothing(gpkg):
    gpkg.close()
    result = _run(f"""
        import os, signal
        import twin.store.geopackage as module
        from shapely.geometry import Point
        import geopandas as gpd
        store = module.GeoPackageStore({str(gpkg.path)!r})
        module.gpkg_write.touch = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
        frame = gpd.GeoDataFrame({{"name": ["half"] * 500, "station_type": ["small"] * 500}},
                                 geometry=[Point(114.03, 22.61)] * 500, crs=4326)
        store.insert("fire_stations", frame)
    """)
    assert result.returncode == -9, result.stderr
    again = GeoPackageStore(gpkg.path)
    try:
        assert again.count("fire_stations") == 2
        assert _sql(gpkg.path, "PRAGMA integrity_check")[0][0] == "ok"
    finally:
        again.close()


# -- the blob codec --------------------------------------------------------------------------------------------

GEOMETRIES = [Point(114.0, 22.6), Point(114.0, 22.6, 12.5), LineString([(114, 22), (115, 23), (115.5, 22.1)]),
              box(114, 22, 115, 23), MultiPolygon([box(0, 0, 1, 1), box(2, 2, 3, 4)]),
              Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])]


def test_blobs_round_trip_with_header_and_envelope():
    geoms = np.array(GEOMETRIES, dtype=object)
    blobs, bounds = gpkg_geometry.encode(geoms, has_z=False)
    for blob, geom, b in zip(blobs, geoms, bounds, strict=True):
        assert blob[:2] == b"GP" and blob[2] == 0 and blob[3] == 0b11
        assert struct.unpack_from("<i", blob, 4)[0] == 4326
        assert gpkg_geometry.envelope(blob) == (b[0], b[2], b[1], b[3]) == (
            geom.bounds[0], geom.bounds[2], geom.bounds[1], geom.bounds[3])
    decoded = gpkg_geometry.decode(blobs)
    assert all(shapely.equals_exact(decoded, shapely.force_2d(geoms), tolerance=0))
    z_blobs, _ = gpkg_geometry.encode(np.array([Point(1, 2, 3)], dtype=object), has_z=True)
    assert gpkg_geometry.decode(z_blobs)[0].z == 3
    assert gpkg_geometry.decode([None])[0] is None


def test_blobs_from_other_writers_decode():
    wkb = shapely.to_wkb(Point(114.5, 22.5), byte_order=0)
    no_envelope_big_endian = b"GP\x00\x00" + struct.pack(">i", 4326) + wkb
    assert gpkg_geometry.decode([no_envelope_big_endian])[0].equals(Point(114.5, 22.5))
    assert gpkg_geometry.envelope(no_envelope_big_endian) == (114.5, 114.5, 22.5, 22.5)
    xyz_envelope = b"GP\x00\x05" + struct.pack("<i", 4326) + struct.pack("<6d", 1, 2, 3, 4, 5, 6) + shapely.to_wkb(
        Point(1, 3, 5), byte_order=1, flavor="iso")
    assert gpkg_geometry.decode([xyz_envelope])[0].z == 5
    assert gpkg_geometry.envelope(xyz_envelope) == (1, 2, 3, 4)
    empty = gpkg_geometry.encode(np.array([Polygon()], dtype=object))[0][0]
    assert empty[3] & 0b1_0000 and gpkg_geometry.envelope(empty) is None
    with pytest.raises(ValueError):
        gpkg_geometry.decode([b"XX" + b"\x00" * 30])


def test_sqlite_functions_for_the_rtree_triggers():
    conn = sqlite3.connect(":memory:")
    gpkg_geometry.register_functions(conn)
    blob = gpkg_geometry.encode_one(box(1, 2, 3, 4))
    empty = gpkg_geometry.encode_one(Polygon())
    row = conn.execute("SELECT ST_MinX(?), ST_MaxX(?), ST_MinY(?), ST_MaxY(?), ST_IsEmpty(?), ST_IsEmpty(?), "
                       "ST_IsEmpty(NULL), ST_MinX(NULL)", (blob, blob, blob, blob, blob, empty)).fetchone()
    assert row == (1.0, 3.0, 2.0, 4.0, 0, 1, None, None)


@pytest.mark.parametrize(("like", "glob"), [
    ("Tower%", "Tower*"), ("_a%", "?a*"), ("a\\%b", "a%b"), ("a\\_b", "a_b"), ("50*?[", "50[*][?][[]"),
    ("trailing\\", "trailing\\"),
])
def test_like_patterns_become_case_sensitive_globs(like, glob):
    assert like_to_glob(like) == glob


@pytest.mark.parametrize("n", [0, 1, 51, 52, 2_700, 40_000])
def test_bulk_loaded_rtree_is_valid_and_answers_like_brute_force(n):
    from twin.store.gpkg_rtree import bulk_load

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE r USING rtree(id, minx, maxx, miny, maxy)")
    rng = np.random.default_rng(n)
    x, y = 113.8 + rng.random(n) * 0.4, 22.4 + rng.random(n) * 0.36
    bounds = np.column_stack([x, y, x + 0.0003, y + 0.0003])
    bulk_load(conn, "r", np.arange(1, n + 1), bounds)
    assert conn.execute("SELECT rtreecheck('r')").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM r").fetchone()[0] == n
    for _ in range(20):
        qx, qy = 113.8 + rng.random() * 0.38, 22.4 + rng.random() * 0.34
        got = {r[0] for r in conn.execute("SELECT id FROM r WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?",
                                          (qx, qx + 0.02, qy, qy + 0.02))}
        hit = (bounds[:, 2] >= qx) & (bounds[:, 0] <= qx + 0.02) & (bounds[:, 3] >= qy) & (bounds[:, 1] <= qy + 0.02)
        expected = set((np.flatnonzero(hit) + 1).tolist())
        assert expected <= got and len(got - expected) <= 2  # float32 bounds rounded outwards: a superset
    stored = np.array(conn.execute("SELECT minx, maxx, miny, maxy FROM r ORDER BY id").fetchall()).reshape(-1, 4)
    if n:
        assert (stored[:, 0] <= bounds[:, 0]).all() and (stored[:, 1] >= bounds[:, 2]).all()
    conn.execute("INSERT INTO r VALUES (?, 114, 114.1, 22.5, 22.6)", (n + 1,))
    conn.execute("DELETE FROM r WHERE id <= ?", (n // 2,))
    assert conn.execute("SELECT rtreecheck('r')").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM r").fetchone()[0] == n - n // 2 + 1


def test_bulk_loads_order_entries_along_a_hilbert_curve():
    from twin.store.gpkg_write import hilbert_order as _hilbert_order

    rng = np.random.default_rng(5)
    x, y = 114 + rng.random(5000) * 0.1, 22.6 + rng.random(5000) * 0.1
    bounds = np.column_stack([x, y, x, y])
    expected = np.argsort(gpd.GeoSeries(gpd.points_from_xy(x, y)).hilbert_distance().to_numpy(), kind="stable")
    assert (_hilbert_order(bounds) == expected).all()
    assert list(_hilbert_order(bounds[:1])) == [0]


def _contents_extent(path: Path, layer_id: str) -> tuple:
    return _sql(path, "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?", (layer_id,))[0]


def test_gpkg_contents_extent_stays_exact_for_gdal_and_qgis(gpkg, twin_data):
    np.testing.assert_allclose(_contents_extent(gpkg.path, "buildings"), gpkg.extent("buildings").as_tuple())
    frame = twin_data.expected("buildings")
    west = list(frame.index[frame.geometry.bounds["minx"] == frame.geometry.bounds["minx"].min()])
    gpkg.delete("buildings", west)
    shrunk = gpkg.extent("buildings").as_tuple()
    assert shrunk[0] > frame.total_bounds[0]
    np.testing.assert_allclose(_contents_extent(gpkg.path, "buildings"), shrunk)
    gpkg.update("buildings", 40, {"geometry": box(114.0500, 22.6300, 114.0501, 22.6301)})
    np.testing.assert_allclose(_contents_extent(gpkg.path, "buildings")[2:], (114.0501, 22.6301))
    gpkg.delete("fire_stations", [1, 2])
    assert _contents_extent(gpkg.path, "fire_stations") == (None, None, None, None)
    extent = gpkg.extent("buildings").as_tuple()
    gpkg.close()
    np.testing.assert_allclose(pyogrio.read_info(gpkg.path, layer="buildings")["total_bounds"], extent)


def test_a_twin_file_from_before_the_catalogue_grew_is_upgraded_on_open(tmp_path):
    path = tmp_path / "old.gpkg"
    GeoPackageStore.create(path).close()
    with sqlite3.connect(path) as conn:  # as a file written before api_keys and the change counters existed
        conn.execute("DROP TABLE api_keys")
        conn.execute("DELETE FROM gpkg_contents WHERE table_name = 'api_keys'")
        conn.execute("DROP TABLE twin_layer_versions")
    store = GeoPackageStore(path)
    try:
        assert store.count("api_keys") == 0
        store.insert("buildings", gpd.GeoDataFrame(
            {"code": ["U1"], "use": ["office"], "height_m": [10.0], "floors_above": [3]},
            geometry=[shapely.box(114.02, 22.61, 114.0201, 22.6101)], crs=4326))
        assert store.layer_version("buildings") == 1
    finally:
        store.close()
    assert "api_keys" in pyogrio.list_layers(path)[:, 0]


def test_an_index_the_unique_key_serves_is_dropped_on_open_and_lookups_use_the_unique_one(tmp_path):
    path = tmp_path / "old.gpkg"
    GeoPackageStore.create(path).close()
    with sqlite3.connect(path) as conn:  # as written before: sensor_id indexed alone beside (sensor_id, ts)
        conn.execute('CREATE INDEX "idx_readings_sensor_id" ON "readings" ("sensor_id")')
    GeoPackageStore(path, readonly=True).close()
    assert _sql(path, "SELECT name FROM sqlite_master WHERE name = 'idx_readings_sensor_id'")  # read-only: kept
    GeoPackageStore(path).close()
    assert not _sql(path, "SELECT name FROM sqlite_master WHERE name = 'idx_readings_sensor_id'")
    plan = " ".join(str(r[-1]) for r in _sql(path, "EXPLAIN QUERY PLAN SELECT * FROM readings WHERE sensor_id = 7"))
    assert "uq_readings_sensor_id_ts" in plan, plan


def test_a_foreign_geopackage_is_never_modified(tmp_path):
    other = tmp_path / "other.gpkg"
    roads = gpd.GeoDataFrame({"name": ["a"]}, geometry=[LineString([(0, 0), (1, 1)])], crs=4326)
    pyogrio.write_dataframe(roads, other, layer="roads")
    def tables() -> list[str]:
        with sqlite3.connect(other) as conn:
            return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))

    before = tables()
    with pytest.raises(ValidationFailed):
        GeoPackageStore(other)
    assert tables() == before and "api_keys" not in before


@pytest.mark.parametrize("first_round", [1, 64])
def test_nearest_prunes_by_envelope_bounds_without_losing_the_true_nearest(tmp_path, monkeypatch, first_round):
    from twin.store import gpkg_nearest
    from twin.store.gpkg_spatial import to_metric

    monkeypatch.setattr(gpkg_nearest, "FIRST_ROUND", first_round)  # 1: every answer rests on the bounds
    rng = np.random.default_rng(7)
    n = 3000
    lon, lat = rng.uniform(113.98, 114.08, n), rng.uniform(22.56, 22.66, n)
    size = rng.uniform(0.00005, 0.003, n)  # 5 m to 300 m footprints, long thin ones among them
    footprints = [box(x, y, x + w, y + w * r) for x, y, w, r in zip(lon, lat, size, rng.uniform(0.05, 3, n),
                                                                     strict=True)]
    store = GeoPackageStore.create(tmp_path / "many.gpkg")
    try:
        ids = store.insert("buildings", gpd.GeoDataFrame(
            {"code": [f"N{i}" for i in range(n)], "use": ["office"] * n, "height_m": [20.0] * n,
             "floors_above": [5] * n}, geometry=footprints, crs=4326))
        metric = to_metric(np.array(footprints, dtype=object))
        for point in [Point(rng.uniform(113.5, 114.6), rng.uniform(22.1, 23.1)) for _ in range(40)]:
            distances = shapely.distance(metric, to_metric(point))
            for k in (1, 5):
                expected = [ids[i] for i in np.lexsort((ids, distances))[:k]]
                assert list(store.nearest("buildings", point, k=k).index) == expected, (point, k)
    finally:
        store.close()
