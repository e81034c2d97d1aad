"""The servers of the peer benchmarks: the twin (PostGIS or GeoPackage store), tipg, pygeoapi and TiTiler.

The peers live in venvs of their own under bench/out/peers/ (``scripts/ensure_peers.sh``), never in the project's
.venv. The 1,000,000-building Shenzhen-scale set is built once into bench/out/shenzhen.gpkg and its buildings are
loaded once into the PostGIS database ``twin_bench`` on the local server (reused while its row count matches).
Every server is one process with one uvicorn worker, on a free port of 127.0.0.1, logging warnings only (no
per-request access log). The twin answers tiles from a thread pool (sync FastAPI routes); the peers are asyncio apps.
"""


from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import OUT
from bench.load import Server

ROOT = Path(__file__).resolve().parent.parent
PEERS = OUT / "peers"
HOST, PORT, USER = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432"), "postgres"
DATABASE = "twin_bench"
BENCH_URL = f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{DATABASE}"
#: How the servers are run, printed by the benchmarks beside their figures.
FAIRNESS = "every server: 1 process, 1 uvicorn worker, --log-level warning, 127.0.0.1"


def ensure_peers() -> None:
    """Install the peers' venvs (no-op when they are up to date)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure_peers.sh")], check=True, stdout=subprocess.DEVNULL)


def peer_python(name: str) -> str:
    return str(PEERS / name / "bin" / "python")


def bench_database(gpkg: Path) -> str:
    """The ``twin_bench`` database holding the set's buildings (created and loaded when missing or partial)."""
    from twin.store.geopackage import GeoPackageStore
    from twin.store.postgis import PostGISStore

    admin = sa.create_engine(f"postgresql+psycopg://{USER}@{HOST}:{PORT}/postgres", isolation_level="AUTOCOMMIT",
                             poolclass=sa.NullPool)
    with admin.connect() as conn:
        if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DATABASE}).first() is None:
            conn.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    source = GeoPackageStore(gpkg)
    expected = source.count("buildings")
    engine = sa.create_engine(BENCH_URL, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            have = conn.execute(sa.text("SELECT count(*) FROM buildings")).scalar_one()
    except sa.exc.ProgrammingError:
        have = -1
    if have != expected:
        started = time.perf_counter()
        pg = PostGISStore.create(BENCH_URL, raster_dir=OUT)
        pg.replace_layer("buildings", source.query("buildings"))
        pg.close()
        print(f"loaded {expected:,} buildings into {DATABASE}: {time.perf_counter() - started:.0f} s")
    source.close()
    with engine.begin() as conn:  # both sides read from memory, whoever comes first
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        relations = conn.execute(sa.text(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'buildings'::regclass")).scalars().all()
        for relation in ["buildings", *relations]:
            conn.execute(sa.text("SELECT pg_prewarm(:r)"), {"r": relation})
    engine.dispose()
    return BENCH_URL


def twin_server(name: str, store: str) -> Server:
    """``twin serve --store`` (a GeoPackage path or a PostGIS URL); rasters from bench/out."""
    return Server(name, [sys.executable, "-m", "twin.cli", "serve", "--store", store, "--port", "{port}",
                         "--log-level", "warning"],
                  env={"TWIN_SAMPLE_DIR": str(OUT)}, ready_path="/health", cwd=ROOT)


def tipg_server(url: str) -> Server:
    """tipg over the ``buildings`` table, with the twin's tile buffer (64) and feature cap (20,000)."""
    env = {"DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
           "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": '["public.buildings"]', "TIPG_DB_FUNCTIONS": "[]",
           "TIPG_TILE_BUFFER": "64", "TIPG_MAX_FEATURES_PER_TILE": "20000", "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    return Server("tipg", [peer_python("tipg"), "-m", "uvicorn", "tipg.main:app", "--port", "{port}",
                           "--log-level", "warning"], env=env, ready_path="/collections", cwd=OUT)


def pygeoapi_server(url: str) -> Server:
    """pygeoapi with its PostgreSQL provider on the ``buildings`` table (config and OpenAPI written to bench/out)."""
    config, openapi = OUT / "pygeoapi.config.yml", OUT / "pygeoapi.openapi.yml"
    server = Server("pygeoapi", [peer_python("pygeoapi"), "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--port",
                                 "{port}", "--log-level", "warning"],
                    env={"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)},
                    ready_path="/collections/buildings?f=json", cwd=OUT)
    config.write_text(PYGEOAPI_CONFIG.format(port=server.port, host=HOST, dbport=PORT, user=USER, db=DATABASE))
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run([str(PEERS / "pygeoapi" / "bin" / "pygeoapi"), "openapi", "generate", str(config),
                    "--output-file", str(openapi)], check=True, env=env, cwd=OUT, stdout=subprocess.DEVNULL)
    return server


def titiler_server() -> Server:
    """TiTiler's application (``/cog/tiles/...?url=``)."""
    return Server("titiler", [peer_python("titiler"), "-m", "uvicorn", "titiler.application.main:app", "--port",
                              "{port}", "--log-level", "warning"], ready_path="/healthz", cwd=OUT)


PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OSM}}
logging: {{level: ERROR}}
metadata:
  identification: {{title: twin bench, description: buildings, keywords: [bench], keywords_type: theme,
                    terms_of_service: none, url: 'http://127.0.0.1'}}
  license: {{name: CC-BY 4.0, url: 'https://creativecommons.org/licenses/by/4.0/'}}
  provider: {{name: bench, url: 'http://127.0.0.1'}}
  contact: {{name: bench}}
resources:
  buildings:
    type: collection
    title: buildings
    description: the 1,000,000-building Shenzhen-scale set
    keywords: [buildings]
    extents:
      spatial: {{bbox: [113.7, 22.4, 114.7, 22.9], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}
    providers:
      - type: feature
        name: PostgreSQL
        data: {{host: {host}, port: {dbport}, dbname: {db}, user: {user}, password: '', search_path: [public]}}
        id_field: id
        table: buildings
        geom_field: geom
"""
