"""PostGIS-only checks: migrations up and down, partitions, COPY loads, pool and timeouts, a real outage, the CLI,
and a whole twin moved GeoPackage → PostGIS → GeoPackage.

Each test that changes the schema works in a database of its own (created on the test server and dropped after),
so the contract suite's database is left alone.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from shapely.geometry import Point, box
from typer.testing import CliRunner

from layers import LAYERS
from tests.conftest import postgis_url
from tests.store.helpers import assert_same_frame
from twin import migrations
from twin.errors import Conflict, Unavailable, ValidationFailed
from twin.store.base import FeatureQuery, Filter, Op
from twin.store.pg_engine import PostGISSettings, driver_url
from twin.store.pg_schema import METADATA
from twin.store.postgis import PostGISStore

pytestmark = pytest.mark.postgis

T0 = pd.Timestamp("2026-11-25T08:00:00Z")


def _admin_engine(url: str) -> sa.Engine:
    admin = sa.make_url(driver_url(url)).set(database="postgres")
    return sa.create_engine(admin, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A fresh database with the PostGIS extension and nothing else, dropped after the test."""
    url = postgis_url()
    name = f"twin_pgtest_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.DBAPIError as err:
        admin.dispose()
        pytest.skip(f"cannot create a scratch database on the test server: {err.orig}")
    own = sa.make_url(driver_url(url)).set(database=name).render_as_string(hide_password=False)
    try:
        engine = sa.create_engine(own, poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
        yield own
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg(empty_database: str, tmp_path: Path) -> Iterator[PostGISStore]:
    """A migrated, empty PostGIS store in its own database."""
    store = PostGISStore.create(empty_database, raster_dir=tmp_path)
    yield store
    store.close()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(driver_url(url), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


# -- migrations ------------------------------------------------------------------------------------------------


def test_upgrade_creates_the_catalogue_and_downgrade_removes_it(empty_database: str) -> None:
    assert migrations.current(empty_database) is None
    migrations.upgrade(empty_database)
    assert migrations.current(empty_database) == "0001"
    tables = _tables(empty_database)
    assert {layer.id for layer in LAYERS} <= tables
    assert {"twin_layer_versions", "readings_default"} <= tables
    migrations.downgrade(empty_database, "base")
    assert migrations.current(empty_database) is None
    assert not ({layer.id for layer in LAYERS} | {"readings_default"}) & _tables(empty_database)
    migrations.upgrade(empty_database)  # and up again
    assert {layer.id for layer in LAYERS} <= _tables(empty_database)


def test_migrated_schema_matches_the_catalogue(pg: PostGISStore) -> None:
    """Fails when the catalogue changed without a migration: add a revision (see twin/migrations)."""
    with pg.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _ours, "compare_type": True})
        diff = compare_metadata(context, METADATA)
    assert diff == []


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # not PostGIS's own tables, the readings partitions or the alembic version table
    return not (type_ == "table" and reflected and compare_to is None)


def test_indexes_keys_and_partitioning(pg: PostGISStore) -> None:
    with pg.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")).all()
        partitioned = conn.execute(sa.text(
            "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c WHERE c.relkind = 'p'")).all()
        identity = conn.execute(sa.text(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'id' AND is_identity = 'YES' "
            "AND table_schema = current_schema()")).scalars().all()
    indexes = {(table, name): definition for table, name, definition in rows}
    assert "USING gist (geom)" in indexes[("buildings", "buildings_geom_gist")]
    assert "USING btree (height_m)" in indexes[("buildings", "buildings_height_m_idx")]
    assert "USING brin (ts)" in indexes[("readings", "readings_ts_brin")]
    assert "UNIQUE" in indexes[("readings", "readings_sensor_id_ts_key")]
    assert "UNIQUE" in indexes[("api_keys", "api_keys_key_hash_key")]
    assert dict(partitioned) == {"readings": "RANGE (ts)"}
    assert {layer.id for layer in LAYERS} <= set(identity)


def test_opening_a_database_without_the_tables_says_how_to_fix_it(empty_database: str) -> None:
    with pytest.raises(ValidationFailed, match="twin db upgrade"):
        PostGISStore(empty_database)


# -- partitions ------------------------------------------------------------------------------------------------


def _readings(sensor: int, start: pd.Timestamp, n: int, step: str = "1min") -> pd.DataFrame:
    return pd.DataFrame({"sensor_id": sensor, "ts": pd.date_range(start, periods=n, freq=step), "value": 1.0})


def _partition_counts(store: PostGISStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT tableoid::regclass::text, count(*) FROM readings GROUP BY 1")).all()
    return {str(name): int(n) for name, n in rows}


def test_readings_go_to_monthly_partitions_created_as_needed(pg: PostGISStore) -> None:
    pg.insert("readings", _readings(1, T0, 3))
    assert pg.append("readings", _readings(2, pd.Timestamp("2026-12-31T23:59:00Z"), 3)) == 3
    assert _partition_counts(pg) == {"readings_p2026_11": 3, "readings_p2026_12": 1, "readings_p2027_01": 2}
    pg.update("readings", 1, {"ts": "2027-03-02T00:00:00Z"})  # moves the row to a new partition
    assert _partition_counts(pg)["readings_p2027_03"] == 1
    with pytest.raises(Conflict, match="same sensor_id, ts"):  # raised by the partition's copy of the constraint
        pg.insert("readings", _readings(2, pd.Timestamp("2027-01-01T00:00:00Z"), 1))
    got = pg.query("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, 2),)))
    assert list(got["ts"]) == list(_readings(2, pd.Timestamp("2026-12-31T23:59:00Z"), 3)["ts"].dt.as_unit("ms"))


def test_rows_stranded_in_the_default_partition_move_into_a_new_one(pg: PostGISStore) -> None:
    with pg.engine.begin() as conn:  # another tool wrote straight into the default partition
        conn.execute(sa.text("INSERT INTO readings (sensor_id, ts, value) VALUES (5, '2030-05-05T00:00:00Z', 1)"))
    assert _partition_counts(pg) == {"readings_default": 1}
    pg.insert("readings", _readings(6, pd.Timestamp("2030-05-01T00:00:00Z"), 2))
    assert _partition_counts(pg) == {"readings_p2030_05": 3}
    assert pg.count("readings") == 3


# -- bulk loads and ids ----------------------------------------------------------------------------------------


def test_copy_loads_are_fast_and_exact(pg: PostGISStore) -> None:
    n = 100_000
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"sensor_id": rng.integers(1, 5000, n), "ts": T0 + pd.to_timedelta(np.arange(n), "s"),
                          "value": rng.normal(20, 5, n)})
    started = time.perf_counter()
    assert pg.replace_layer("readings", frame) == n
    elapsed = time.perf_counter() - started
    assert n / elapsed > 20_000, f"replace_layer loaded only {n / elapsed:,.0f} rows/s"
    got = pg.query("readings")
    assert list(got.index) == list(range(1, n + 1))
    np.testing.assert_array_equal(got["value"].to_numpy(), frame["value"].to_numpy())
    assert (got["ts"].to_numpy() == frame["ts"].dt.as_unit("ms").to_numpy()).all()
    more = _readings(1, pd.Timestamp("2026-01-01T00:00:00Z"), 10_000, step="1s")
    started = time.perf_counter()
    assert pg.append("readings", more) == 10_000
    assert pg.append("readings", more) == 0  # a redelivery, through the ON CONFLICT path
    assert 10_000 / (time.perf_counter() - started) > 10_000
    [new_id] = pg.insert("readings", more.head(1).assign(sensor_id=9))
    assert new_id > int(pg.query("readings", FeatureQuery(filters=(Filter("id", Op.LT, new_id),))).index.max())


def test_text_round_trips_byte_for_byte(pg: PostGISStore) -> None:
    names = ["", "a,b", 'quote " inside', "tab\there", "line\nbreak", "back\\slash", "NULL", "北站 大厦", "\\N"]
    frame = gpd.GeoDataFrame({"name": names, "station_type": "small", "address": [None] * len(names)},
                             geometry=[Point(114.0 + i / 100, 22.6) for i in range(len(names))], crs=4326)
    pg.replace_layer("fire_stations", frame)
    got = pg.query("fire_stations")
    assert list(got["name"]) == names and got["address"].isna().all()
    pg.insert("fire_stations", frame.head(3))
    pg.append("fire_stations", frame.head(2).assign(id=[100, 101]).set_index("id"))
    assert list(pg.query("fire_stations", FeatureQuery(filters=(Filter("id", Op.GE, 100),)))["name"]) == names[:2]


def test_binary_copy_of_fixed_width_columns(pg: PostGISStore) -> None:
    from layers import Field, FieldType, GeometryType, Layer
    from twin.store import pg_copy
    from twin.store.pg_schema import build_metadata
    from twin.validate import normalize_frame

    kinds = {"n": FieldType.INTEGER, "x": FieldType.REAL, "b": FieldType.BOOLEAN, "d": FieldType.DATE,
             "t": FieldType.DATETIME, "gone": FieldType.TEXT}
    layer = Layer("copy_probe", "探针", "Probe", "", GeometryType.NONE,
                  tuple(Field(name, kind, "", "") for name, kind in kinds.items()))
    frame = normalize_frame(layer, pd.DataFrame({
        "n": [-(2**62), 0, 7], "x": [-1.5, 1e300, 0.1], "b": [True, False, True],
        "d": [dt.date(1999, 12, 31), dt.date(2000, 1, 1), dt.date(2026, 11, 25)],
        "t": ["1970-01-01T00:00:00Z", "2000-01-01T00:00:00.001Z", "2026-11-25T08:00:00.123+08:00"]}))
    payload = pg_copy.encode(layer, frame, np.array([3, 1, 2]))
    assert payload.binary is not None and payload.columns == ["id", "n", "x", "b", "d", "t"]
    with pg.engine.begin() as conn:
        build_metadata((layer,)).tables["copy_probe"].create(conn)
        pg_copy.copy_in(conn, "copy_probe", payload)
        rows = conn.execute(sa.text("SELECT id, n, x, b, d, t, gone FROM copy_probe ORDER BY id")).all()
    assert [r[0] for r in rows] == [1, 2, 3]
    by_id = {r[0]: r[1:] for r in rows}
    for position, row_id in enumerate([3, 1, 2]):
        n, x, b, d, t, gone = by_id[row_id]
        assert (n, x, b, d, gone) == (frame["n"][position], frame["x"][position], frame["b"][position],
                                      frame["d"][position], None)
        assert pd.Timestamp(t) == frame["t"][position]


def test_explicit_ids_move_the_sequence_and_failed_writes_do_not_move_it_back(pg: PostGISStore) -> None:
    frame = gpd.GeoDataFrame({"name": ["a", "b"], "station_type": "small"},
                             geometry=[Point(114.0, 22.6), Point(114.1, 22.6)], crs=4326)
    assert pg.insert("fire_stations", frame.assign(id=[40, 7]).set_index("id")) == [40, 7]
    assert pg.insert("fire_stations", frame.head(1)) == [41]
    assert pg.replace_layer("fire_stations", frame) == 2
    assert pg.insert("fire_stations", frame.head(1)) == [3]


# -- connections -----------------------------------------------------------------------------------------------


def test_pool_stays_below_the_servers_connection_limit() -> None:
    url = postgis_url()
    store = PostGISStore(url, settings=PostGISSettings(pool_size=500, max_overflow=500))
    try:
        with store.engine.connect() as conn:
            limit = conn.execute(sa.text("SELECT current_setting('max_connections')::int - "
                                         "current_setting('superuser_reserved_connections')::int")).scalar_one()
        pool = store.engine.pool
        assert pool.size() >= 1 and pool.size() + pool._max_overflow < limit  # type: ignore[attr-defined]
        assert store.engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        store.close()


def test_statement_timeout_is_unavailable() -> None:
    store = PostGISStore(postgis_url(), settings=PostGISSettings(statement_timeout_s=0.2))
    try:
        with pytest.raises(Unavailable, match="did not answer"), store._reading() as conn:
            conn.execute(sa.text("SELECT pg_sleep(2)"))
        assert store.count("buildings") >= 0  # the connection is fine afterwards
    finally:
        store.close()


def test_unreachable_database_fails_fast() -> None:
    url = sa.make_url(driver_url(postgis_url())).set(host="127.0.0.1", port=1)
    started = time.perf_counter()
    with pytest.raises(Unavailable) as err:
        PostGISStore(url.render_as_string(hide_password=False))
    assert time.perf_counter() - started < 5
    assert err.value.retry_after_s > 0 and "127.0.0.1" not in str(err.value)


def _cluster(action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", action], check=True,
                   capture_output=True, timeout=60)


@pytest.mark.slow
def test_the_store_survives_a_real_database_restart(pg: PostGISStore) -> None:
    if subprocess.run(["which", "pg_ctlcluster"], capture_output=True).returncode != 0:
        pytest.skip("no local PostgreSQL cluster to stop (pg_ctlcluster)")
    [committed] = pg.insert("alarms", pd.DataFrame({"alarm_type": ["smoke"], "severity": ["fire_alarm"],
                                                    "status": ["open"], "opened_at": [T0]}))
    assert pg.count("alarms") == 1  # the pool holds a live connection now
    try:
        _cluster("stop")
        started = time.perf_counter()
        for call in (lambda: pg.count("alarms"), lambda: pg.get("alarms", committed),
                     lambda: pg.insert("alarms", pd.DataFrame({"alarm_type": ["x"], "severity": ["fault"],
                                                               "status": ["open"], "opened_at": [T0]}))):
            with pytest.raises(Unavailable):
                call()
        assert time.perf_counter() - started < 10, "requests must fail fast while the database is down"
    finally:
        _cluster("start")
    deadline = time.monotonic() + 30
    while True:  # recovers by itself: same store object, no reopening
        try:
            assert pg.count("alarms") == 1
            break
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert pg.get("alarms", committed)["alarm_type"].iloc[0] == "smoke"
    assert pg.insert("alarms", pd.DataFrame({"alarm_type": ["y"], "severity": ["fault"], "status": ["open"],
                                             "opened_at": [T0 + dt.timedelta(hours=1)]})) == [committed + 1]


# -- the command and the whole-twin round trip -------------------------------------------------------------------


def test_db_commands(empty_database: str) -> None:
    from twin.cli_db import app

    runner = CliRunner()
    result = runner.invoke(app, ["upgrade", "--url", empty_database])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["current", "--url", empty_database]).output.strip() == "0001"
    assert runner.invoke(app, ["downgrade", "--url", empty_database, "base"]).exit_code == 0
    assert runner.invoke(app, ["current", "--url", empty_database]).output.strip() == ""


def test_db_load_moves_a_twin_geopackage_in_and_refuses_to_overwrite_unless_asked(empty_database: str,
                                                                                   tmp_path: Path) -> None:
    from twin.cli_db import app
    from twin.store.geopackage import GeoPackageStore

    source = tmp_path / "small.gpkg"
    with GeoPackageStore.create(source) as gpkg:
        gpkg.insert("buildings", gpd.GeoDataFrame(
            {"code": ["L1", "L2"], "use": ["office", "residential"], "height_m": [120.0, 30.0],
             "floors_above": [30, 9]},
            geometry=[box(114.02, 22.61, 114.0203, 22.6103), box(114.03, 22.61, 114.0302, 22.6102)], crs=4326))
        gpkg.delete("buildings", [1])  # ids are kept as they are: 2 stays 2
    runner = CliRunner()
    result = runner.invoke(app, ["load", str(source), "--url", empty_database])
    assert result.exit_code == 0, result.output
    assert "buildings" in result.output and "loaded 1 features" in result.output
    loaded = PostGISStore(empty_database)
    try:
        assert loaded.get("buildings", 2)["code"].tolist() == ["L2"] and loaded.count("buildings") == 1
        again = runner.invoke(app, ["load", str(source), "--url", empty_database])
        assert isinstance(again.exception, Conflict) and "buildings 1" in str(again.exception)
        assert runner.invoke(app, ["load", str(source), "--url", empty_database, "--replace"]).exit_code == 0
        assert loaded.count("buildings") == 1
    finally:
        loaded.close()
    missing = runner.invoke(app, ["load", str(tmp_path / "absent.gpkg"), "--url", empty_database])
    assert missing.exit_code != 0 and "absent.gpkg" in str(missing.exception)


def test_open_store_picks_postgis_for_a_url(pg: PostGISStore) -> None:
    from twin.store.opening import open_store

    opened = open_store(pg.url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert isinstance(opened, PostGISStore) and opened.count("buildings") == 0
    finally:
        opened.close()


@pytest.mark.slow
def test_whole_twin_moves_geopackage_to_postgis_and_back(sample_copy: Path, pg: PostGISStore,
                                                         tmp_path: Path) -> None:
    from twin.store.geopackage import GeoPackageStore
    from twin.transfer import import_file

    source = GeoPackageStore(sample_copy)
    target = GeoPackageStore.create(tmp_path / "back.gpkg")
    try:
        for layer in LAYERS:
            if layer.id in ("api_keys", "dead_letters") and source.count(layer.id) == 0:
                continue
            # in through `twin import` (reading the file with GDAL), out through the store interface
            loaded = import_file(pg, sample_copy, layer.id, mode="replace", source_layer=layer.id)
            assert loaded == source.count(layer.id)
            target.replace_layer(layer.id, pg.query(layer.id))
            assert_same_frame(target.query(layer.id), source.query(layer.id))
            assert pg.extent(layer.id) == source.extent(layer.id) if layer.is_spatial else True
    finally:
        source.close()
        target.close()
