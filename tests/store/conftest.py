"""The store contract suite's fixtures: one small, deterministic twin, loaded fresh into every backend per test.

A backend joins the suite by adding an entry to ``BACKENDS``; every test in ``tests/store/test_contract_*.py``
then runs against it unchanged. The ``"postgis"`` entry carries ``pytest.mark.postgis`` (a skip fails a run with
``TWIN_REQUIRE_POSTGIS=1``): it migrates the ``TWIN_TEST_DATABASE_URL`` database from scratch once per session,
loads the fixture twin with ``replace_layer``, snapshots it into a schema and restores that snapshot before each
test (a few milliseconds, instead of a fresh database per test).

The fixture twin is built here from plain shapely geometries (not from the sample generator), so every expected
answer can be computed by brute force from ``twin_data``: a grid hierarchy (1 district, 1 subdistrict,
2 communities, 5 grid cells, one without buildings), 51 buildings, sensors and facilities with z, readings,
alarms (some on community or unknown codes), inspections, roads, lanes, platforms, levels and fire stations.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from layers import LAYERS, get_layer, get_raster
from layers.catalogue import BUILDING_USES, FACILITY_STATUSES, FACILITY_TYPES, SENSOR_STATUSES, SENSOR_TYPES
from twin.store.base import Store
from twin.validate import normalize_frame

T0 = pd.Timestamp("2026-11-25T08:00:00Z")


# -- the fixture twin --------------------------------------------------------------------------------------------


def _frame(records: list[dict], geometry: list | None = None) -> pd.DataFrame:
    ids = pd.Index(np.arange(1, len(records) + 1), name="id")
    frame = pd.DataFrame.from_records(records, index=ids) if records else pd.DataFrame(index=ids)
    if geometry is not None:
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, index=ids), crs="EPSG:4326")
    return frame


def _empty(layer_id: str) -> pd.DataFrame:
    """A table with the layer's columns and no rows."""
    return pd.DataFrame(columns=list(get_layer(layer_id).field_names), index=pd.Index([], dtype="int64", name="id"))


def _grids() -> pd.DataFrame:
    cells = [
        ("D1", None, "district", "龙华区", box(114.020, 22.600, 114.045, 22.620)),
        ("S1", "D1", "subdistrict", "民治街道", box(114.020, 22.600, 114.045, 22.620)),
        ("C1", "S1", "community", "北站社区", box(114.020, 22.600, 114.030, 22.620)),
        ("C2", "S1", "community", "民乐社区", box(114.030, 22.600, 114.045, 22.620)),
        ("G11", "C1", "grid", "北站一格", box(114.020, 22.600, 114.030, 22.610)),
        ("G12", "C1", "grid", "北站二格", box(114.020, 22.610, 114.030, 22.620)),
        ("G21", "C2", "grid", "民乐一格", box(114.030, 22.600, 114.040, 22.610)),
        ("G22", "C2", "grid", "民乐二格", box(114.030, 22.610, 114.040, 22.620)),
        ("G23", "C2", "grid", "民乐三格", box(114.040, 22.600, 114.045, 22.620)),
    ]
    records = [
        {"code": c, "parent_code": p, "level": lv, "name": n, "officer": None if i % 3 else f"officer {i}",
         "population": 1000 * (i + 1), "households": 400 * (i + 1)}
        for i, (c, p, lv, n, _) in enumerate(cells)
    ]
    # a mix of Polygons (promoted on load) and MultiPolygons
    geoms = [g if i % 2 else shapely.MultiPolygon([g]) for i, (*_, g) in enumerate(cells)]
    return _frame(records, geoms)


HEIGHTS = (10.0, 24.5, 36.0, 50.0, 100.0)


def _buildings() -> pd.DataFrame:
    records, geoms = [], []
    names = ["Tower A", "tower a", "Block_7", "Plaza 50%", "Tower B", None, "北站大厦"]
    for i in range(10):
        for j in range(5):
            n = len(records)
            x, y = 114.0205 + i * 0.0019, 22.6015 + j * 0.0037
            geoms.append(box(x, y, x + 0.0004 + (i % 3) * 0.0001, y + 0.0003 + (j % 2) * 0.0001))
            records.append({
                "code": f"B{n + 1:03d}", "name": names[n % len(names)],
                "address": None if n % 4 == 0 else f"{n + 1} Minzhi Road",
                "use": BUILDING_USES[n % len(BUILDING_USES)], "height_m": HEIGHTS[n % len(HEIGHTS)],
                "floors_above": 3 + n % 40, "floors_below": None if n % 5 == 0 else n % 4,
                "ground_elevation_m": 80.0 + (n % 9) * 1.5, "year_built": 1990 + n % 30,
                "residents": None if n % 6 == 0 else 20 * n, "rental_units": n % 11, "enterprises": n % 7,
                "grid_code": None,
            })
    # one footprint straddling the C1/C2 boundary (its representative point lies in G21)
    geoms.append(box(114.0295, 22.6050, 114.0315, 22.6056))
    records.append({**records[0], "code": "B051", "name": "Straddler", "height_m": 36.0, "residents": 7})
    return _frame(records, geoms)


def _sensors(buildings: pd.DataFrame) -> pd.DataFrame:
    records, geoms = [], []
    for n in range(30):
        c = buildings.geometry.iloc[n].centroid
        geoms.append(Point(c.x, c.y, 3.0 * (n % 10)))
        records.append({
            "code": f"S{n + 1:03d}", "type": SENSOR_TYPES[n % len(SENSOR_TYPES)], "building_id": n + 1,
            "level_id": None, "facility_id": None, "unit": "°C", "threshold_low": None, "threshold_high": 60.0,
            "reporting_interval_s": 60 * (1 + n % 5), "status": SENSOR_STATUSES[n % len(SENSOR_STATUSES)],
            "last_value": 20.0 + n, "last_seen": None if n % 7 == 3 else (T0 + pd.Timedelta(minutes=37 * n)),
        })
    return _frame(records, geoms)


def _facilities(buildings: pd.DataFrame) -> pd.DataFrame:
    records, geoms = [], []
    for n in range(20):
        c = buildings.geometry.iloc[2 * n].centroid
        geoms.append(Point(c.x + 0.00005, c.y, 1.5 * n))
        records.append({
            "code": f"F{n + 1:03d}", "type": FACILITY_TYPES[n % len(FACILITY_TYPES)], "building_id": 2 * n + 1,
            "level_id": None, "status": FACILITY_STATUSES[n % len(FACILITY_STATUSES)],
            "last_inspected": None if n % 4 == 1 else dt.date(2026, 1 + n % 12, 1 + n),
            "next_inspection": dt.date(2027, 1 + n % 12, 1 + n),
        })
    return _frame(records, geoms)


def _readings() -> pd.DataFrame:
    records = [
        {"sensor_id": s, "ts": T0 + pd.Timedelta(minutes=10 * m), "value": float(s * 100 + m)}
        for s in range(1, 6) for m in range(12)
    ]
    return _frame(records)


def _alarms() -> pd.DataFrame:
    codes = ["G11", "G12", "G21", "G22", "C1", "X9", None, "G11", "G21", "G21", "C2", "G12"]
    records = [
        {"sensor_id": 1 + i % 5, "building_id": 1 + i, "level_id": None, "grid_code": code,
         "alarm_type": "smoke" if i % 2 else "temperature", "severity": ("pre_alarm", "fire_alarm", "fault")[i % 3],
         "status": ("open", "acknowledged", "resolved")[i % 3], "message": f"alarm {i}",
         "opened_at": T0 + pd.Timedelta(hours=i), "acknowledged_at": None, "acknowledged_by": None,
         "resolved_at": None, "resolved_by": None}
        for i, code in enumerate(codes)
    ]
    return _frame(records)


def _inspections() -> pd.DataFrame:
    records = [
        {"building_id": 1 + i, "facility_id": None if i % 2 else 1 + i, "inspector": f"inspector {i % 2}",
         "inspected_at": T0 - pd.Timedelta(days=i), "result": ("pass", "fail", "rectified")[i % 3], "notes": None}
        for i in range(6)
    ]
    return _frame(records)


def _small_layers(buildings: pd.DataFrame) -> dict[str, pd.DataFrame]:
    b1 = buildings.geometry.iloc[0]
    return {
        "levels": _frame([
            {"building_id": 1, "ordinal": k, "name": f"{k}F", "elevation_m": 4.0 * k, "height_m": 4.0,
             "is_refuge": k == 2, "use": None} for k in range(4)
        ], [b1] * 4),
        "rescue_platforms": _frame([
            {"building_id": 1, "length_m": 15.0, "width_m": 10.0, "status": "normal"},
            {"building_id": 6, "length_m": 20.0, "width_m": 10.0, "status": "fault"},
        ], [box(114.0200, 22.6010, 114.0203, 22.6013), box(114.0221, 22.6010, 114.0224, 22.6013)]),
        "fire_lanes": _frame([
            {"building_id": 1, "width_m": 4.0, "clear_height_m": 4.5, "status": "normal"},
            {"building_id": None, "width_m": 6.0, "clear_height_m": 5.0, "status": "disabled"},
        ], [LineString([(114.0200, 22.6012), (114.0215, 22.6012)]),
            LineString([(114.0250, 22.6000), (114.0250, 22.6190)])]),
        "roads": _frame([
            {"name": "致远中路", "road_class": "arterial", "width_m": 40.0, "lanes": 6},
            {"name": "民塘路", "road_class": "secondary", "width_m": 24.0, "lanes": 4},
            {"name": "Local 1", "road_class": "local", "width_m": None, "lanes": None},
        ], [LineString([(114.020, 22.6105), (114.045, 22.6105)]),
            LineString([(114.0302, 22.600), (114.0302, 22.620)]),
            LineString([(114.041, 22.601), (114.044, 22.619), (114.0445, 22.6195)])]),
        "fire_stations": _frame([
            {"name": "民治消防站", "station_type": "standard", "address": "民治大道 1 号", "engines": 6},
            {"name": "北站小型站", "station_type": "small", "address": None, "engines": 2},
        ], [Point(114.0425, 22.6025), Point(114.0215, 22.6185)]),
    }


@dataclass
class FixtureTwin:
    """The fixture content per layer, as loaded (ids 1..n) and as the store must return it (``expected``)."""

    frames: dict[str, pd.DataFrame]

    def expected(self, layer_id: str) -> pd.DataFrame:
        """The layer's content normalized to the catalogue dtypes, indexed by id."""
        return normalize_frame(get_layer(layer_id), self.frames[layer_id], source="fixture")


def build_fixture_twin() -> FixtureTwin:
    buildings = _buildings()
    grids = _grids()
    cells = grids[grids["level"] == "grid"]
    points = shapely.point_on_surface(buildings.geometry.to_numpy())
    buildings["grid_code"] = [
        next((code for code, g in zip(cells["code"], cells.geometry, strict=True) if g.contains(p)), None)
        for p in points
    ]
    frames = {
        "grids": grids, "buildings": buildings, "sensors": _sensors(buildings),
        "fire_facilities": _facilities(buildings), "readings": _readings(), "alarms": _alarms(),
        "inspections": _inspections(), "api_keys": _empty("api_keys"),
        "dead_letters": _frame([
            {"received_at": T0 - pd.Timedelta(minutes=m), "source": src, "topic": topic, "payload": "{", "reason": r}
            for m, src, topic, r in ((5, "mqtt", "twin/sensors/9/readings", "bad_json: unexpected end"),
                                     (50, "http", "POST /ingest/readings", "unknown_sensor: no sensor 99"))
        ]), **_small_layers(buildings),
    }
    assert set(frames) == {layer.id for layer in LAYERS}
    return FixtureTwin(frames)


def write_rasters(directory: Path) -> None:
    """A tiny real DEM GeoTIFF (the void-risk raster is deliberately absent)."""
    import rasterio
    from affine import Affine

    data = np.arange(16, dtype="float32").reshape(4, 4) + 50
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "float32", "crs": "EPSG:4547",
               "transform": Affine(5, 0, 502000, 0, -5, 2503000)}
    with rasterio.open(directory / get_raster("dem").filename, "w", **profile) as dst:
        dst.write(data, 1)


# -- backends ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """How the suite makes stores of one engine.

    ``template`` loads the fixture twin once per session (returning a handle, e.g. a file or database name);
    ``fresh`` makes a private copy of it for one test; ``reopen`` closes a store and opens its data again.
    """

    template: Callable[[Path, FixtureTwin], object]
    fresh: Callable[[object, Path], Store]
    reopen: Callable[[Store], Store]


def _gpkg_template(directory: Path, twin: FixtureTwin) -> object:
    from twin.store.geopackage import GeoPackageStore

    path = directory / "fixture.gpkg"
    store = GeoPackageStore.create(path, overwrite=True)
    try:
        for layer_id, frame in twin.frames.items():
            store.replace_layer(layer_id, frame)
    finally:
        store.close()
    write_rasters(directory)
    return path


def _gpkg_fresh(template: object, tmp_path: Path) -> Store:
    from twin.store.geopackage import GeoPackageStore

    assert isinstance(template, Path)
    target = tmp_path / "twin.gpkg"
    shutil.copyfile(template, target)
    return GeoPackageStore(target, raster_dir=template.parent)


def _gpkg_reopen(store: Store) -> Store:
    from twin.store.geopackage import GeoPackageStore

    assert isinstance(store, GeoPackageStore)
    store.close()
    return GeoPackageStore(store.path, raster_dir=store.raster_dir)


@dataclass(frozen=True)
class PostGISTemplate:
    """The session's test database (``TWIN_TEST_DATABASE_URL``), loaded once; ``SNAPSHOT`` keeps a copy."""

    url: str
    raster_dir: Path


#: Schema holding a copy of the loaded fixture twin, restored into the layer tables before each test.
SNAPSHOT = "twin_fixture_snapshot"


def _pg_tables() -> list[str]:
    from twin.store.pg_schema import VERSIONS_TABLE

    return [layer.id for layer in LAYERS] + [VERSIONS_TABLE]


def _pg_template(directory: Path, twin: FixtureTwin) -> object:
    """Migrate the test database from scratch, load the fixture twin with ``replace_layer`` and snapshot it."""
    import sqlalchemy as sa

    from tests.conftest import postgis_url
    from twin.migrations import downgrade, upgrade
    from twin.store.pg_engine import driver_url
    from twin.store.postgis import PostGISStore

    url = postgis_url()  # skips (and so fails a run that requires PostGIS) when there is no database
    engine = sa.create_engine(driver_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{SNAPSHOT}" CASCADE'))
        downgrade(url, "base")
        upgrade(url)
        write_rasters(directory)
        store = PostGISStore(url, raster_dir=directory)
        try:
            for layer_id, frame in twin.frames.items():
                store.replace_layer(layer_id, frame)
        finally:
            store.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{SNAPSHOT}"'))
            for table in _pg_tables():
                conn.execute(sa.text(f'CREATE TABLE "{SNAPSHOT}"."{table}" AS SELECT * FROM "{table}"'))
    finally:
        engine.dispose()
    return PostGISTemplate(url, directory)


def _pg_restore(url: str) -> None:
    """Put the snapshot back into the layer tables and restart each id sequence after its highest id."""
    import sqlalchemy as sa

    from twin.store.pg_engine import driver_url

    statements = []
    for table in _pg_tables():
        statements.append(f'DELETE FROM "{table}"')
        statements.append(f'INSERT INTO "{table}" SELECT * FROM "{SNAPSHOT}"."{table}"')
        if table in {layer.id for layer in LAYERS}:
            statements.append(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                              f'coalesce((SELECT max(id) FROM "{table}"), 0) + 1, false)')
    engine = sa.create_engine(driver_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("; ".join(statements))
    finally:
        engine.dispose()


def _pg_fresh(template: object, tmp_path: Path) -> Store:
    from twin.store.postgis import PostGISStore

    assert isinstance(template, PostGISTemplate)
    _pg_restore(template.url)
    return PostGISStore(template.url, raster_dir=template.raster_dir)


def _pg_reopen(store: Store) -> Store:
    from twin.store.postgis import PostGISStore

    assert isinstance(store, PostGISStore)
    store.close()
    return PostGISStore(store.url, raster_dir=store.raster_dir)


#: Backends of the contract suite, by name; the PostGIS one carries ``pytest.mark.postgis``.
BACKENDS: dict[str, Backend] = {
    "geopackage": Backend(_gpkg_template, _gpkg_fresh, _gpkg_reopen),
    "postgis": Backend(_pg_template, _pg_fresh, _pg_reopen),
}
#: Marks per backend (a skipped PostGIS test fails a run with TWIN_REQUIRE_POSTGIS=1).
_MARKS = {"postgis": [pytest.mark.postgis]}
#: Test modules that exercise one backend's own machinery, and that backend.
_ONLY = {"test_geopackage.py": "geopackage", "test_postgis.py": "postgis"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the backend-specific modules' tests parametrized with another backend (rather than skip them)."""
    keep, drop = [], []
    for item in items:
        only = _ONLY.get(item.path.name)
        chosen = getattr(item, "callspec", None) and item.callspec.params.get("backend")
        (drop if only is not None and chosen is not None and chosen != only else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def twin_data() -> FixtureTwin:
    """The fixture twin every store is loaded with."""
    return build_fixture_twin()


@pytest.fixture(scope="session", params=[pytest.param(name, marks=_MARKS.get(name, [])) for name in BACKENDS])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            twin_data: FixtureTwin) -> tuple[Backend, object]:
    """A backend and its loaded session template."""
    chosen = BACKENDS[request.param]
    return chosen, chosen.template(tmp_path_factory.mktemp(f"template-{request.param}"), twin_data)


@pytest.fixture
def store(backend: tuple[Backend, object], tmp_path: Path) -> Iterator[Store]:
    """A fresh store holding the fixture twin, closed after the test."""
    chosen, template = backend
    opened = chosen.fresh(template, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def reopen(backend: tuple[Backend, object]) -> Callable[[Store], Store]:
    """Close a store and open the same data again (the caller closes the result)."""
    return backend[0].reopen
