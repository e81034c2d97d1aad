"""PostGIS beside the embedded GeoPackage on the 1,000,000-building Shenzhen-scale set.

Run: python bench/bench_postgis.py [--url postgresql+psycopg://…] [--queries 200] [--keep]

Without ``--url`` a scratch database is created on the local server (127.0.0.1:5432, as scripts/ensure_postgis.sh
does) and dropped at the end (``--keep`` leaves it). The set is built once into bench/out/shenzhen.gpkg (about
20 s) and copied, so the benchmark never writes to it.

Printed: bulk load rate per layer (``replace_layer``: validation, COPY, index builds); readings insert rate through
``append`` in 10,000-row batches beside a bare COPY of the same batches into the same table, interleaved in the same
run; then, each beside the same call on the GeoPackage store: bbox queries returning about 1,000 buildings (median,
p95), nearest-10, aggregates by grid, and building tiles at z14–z16 over the densest square kilometre (median, p95,
bytes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import morecantile
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, shenzhen_gpkg, summarize, time_ms
from layers import LAYERS
from twin.store import pg_copy
from twin.store.base import BBox, FeatureQuery, Store, TileRequest
from twin.store.geopackage import GeoPackageStore
from twin.store.pg_engine import driver_url
from twin.store.postgis import PostGISStore
from twin.validate import normalize_frame

WMQ = morecantile.tms.get("WebMercatorQuad")
BATCH = 10_000


def scratch_database() -> tuple[str, Callable[[], None]]:
    host, port, user = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432"), "postgres"
    name = f"twin_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"postgresql+psycopg://{user}@{host}:{port}/postgres", isolation_level="AUTOCOMMIT",
                             poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"postgresql+psycopg://{user}@{host}:{port}/{name}", drop


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>9,.0f} rows/s"


# -- loading -----------------------------------------------------------------------------------------------------


def bench_load(gpkg: GeoPackageStore, pg: PostGISStore) -> None:
    print("bulk load (replace_layer: validate, COPY, build indexes, ANALYZE):")
    total_rows, total_s = 0, 0.0
    for layer in LAYERS:
        frame = gpkg.query(layer.id)
        if frame.empty:
            continue
        started = time.perf_counter()
        pg.replace_layer(layer.id, frame)
        seconds = time.perf_counter() - started
        total_rows, total_s = total_rows + len(frame), total_s + seconds
        if len(frame) >= 10_000:
            print(f"  {layer.id:16} {len(frame):>9,} rows in {seconds:6.2f} s  {rate(len(frame), seconds)}")
    print(f"  all layers       {total_rows:>9,} rows in {total_s:6.2f} s  {rate(total_rows, total_s)}")


def bench_readings_insert(pg: PostGISStore, batches: int = 30) -> None:
    """``append`` of 10,000-row batches beside a bare COPY of prepared CSV into the same table, interleaved."""
    rng = np.random.default_rng(11)
    start = pd.Timestamp("2027-02-01T00:00:00Z")

    def batch(k: int, sensor_base: int) -> pd.DataFrame:
        sensors = sensor_base + np.arange(BATCH) % 1000
        ts = start + pd.to_timedelta(k * 60 + np.arange(BATCH) // 1000, unit="s")
        return pd.DataFrame({"sensor_id": sensors, "ts": ts, "value": rng.normal(20, 3, BATCH)})

    appended = [batch(k, 1_000_000) for k in range(batches)]
    readings = next(layer for layer in pg.layers if layer.id == "readings")
    # the bare COPY gets the same bytes the store would send, prepared beforehand: no validation, no encoding
    bare = [pg_copy.encode(readings, normalize_frame(readings, batch(k, 2_000_000)), None) for k in range(batches)]
    pg.append("readings", appended[0].head(1))  # creates the month's partition before timing
    append_s, bare_s = 0.0, 0.0
    for k in range(batches):
        started = time.perf_counter()
        pg.append("readings", appended[k])
        append_s += time.perf_counter() - started
        started = time.perf_counter()
        with pg.engine.begin() as conn:
            pg_copy.copy_in(conn, "readings", bare[k])
        bare_s += time.perf_counter() - started
    rows = batches * BATCH
    print(f"readings insert, {batches} batches of {BATCH:,} (one transaction each): append {rate(rows, append_s)}, "
          f"bare COPY {rate(rows, bare_s)} → {100 * bare_s / append_s:.0f}% of the bare COPY rate")
    redelivered = appended[: batches // 3]
    started = time.perf_counter()
    for frame in redelivered:
        assert pg.append("readings", frame) == 0
    seconds = time.perf_counter() - started
    print(f"readings redelivered (all duplicates, the ON CONFLICT path): {rate(len(redelivered) * BATCH, seconds)}")


# -- reads -------------------------------------------------------------------------------------------------------


def side_by_side(label: str, calls: list[Callable[[Store], object]], stores: dict[str, Store],
                 size: Callable[[object], float] | None = None) -> None:
    for name, store in stores.items():
        calls[0](store)  # warm up
        samples, sizes = [], []
        for call in calls:
            ms, result = time_ms(lambda call=call, store=store: call(store))
            samples.append(ms)
            if size is not None:
                sizes.append(size(result))
        extra = f"; {statistics.median(sizes):,.0f} median" if sizes else ""
        print(f"  {label} [{name:10}] {summarize(samples)}{extra}")


def bench_queries(gpkg: GeoPackageStore, pg: PostGISStore, queries: int) -> None:
    stores: dict[str, Store] = {"geopackage": gpkg, "postgis": pg}
    rng = np.random.default_rng(7)
    centres = shapely.centroid(gpkg.query("buildings", FeatureQuery(properties=())).geometry.to_numpy())
    picks = centres[rng.integers(0, len(centres), queries)]
    extent = gpkg.extent("buildings")
    assert extent is not None
    side = float(np.sqrt((extent.maxx - extent.minx) * (extent.maxy - extent.miny) * 1000 / len(centres)))

    def box(p: shapely.Point, s: float) -> BBox:
        return BBox(p.x - s / 2, p.y - s / 2, p.x + s / 2, p.y + s / 2)

    for _ in range(3):  # size the box so that it holds about 1,000 buildings on average
        mean = np.mean([gpkg.count("buildings", FeatureQuery(bbox=box(p, side))) for p in picks[:40]])
        side *= float(np.sqrt(1000 / max(mean, 1.0)))
    print(f"queries over {len(centres):,} buildings:")
    boxes = [box(p, side) for p in picks]
    calls = [lambda s, b=b: s.query("buildings", FeatureQuery(bbox=b)) for b in boxes]
    side_by_side("bbox ~1,000 buildings", calls, stores, size=len)  # type: ignore[arg-type]
    near = [lambda s, p=p: s.nearest("buildings", p, k=10) for p in picks[:100]]
    side_by_side("nearest-10 buildings ", near, stores)
    sensors = [lambda s, p=p: s.nearest("sensors", p, k=10) for p in picks[:100]]
    side_by_side("nearest-10 sensors   ", sensors, stores)
    for level in ("grid", "community"):
        calls = [lambda s, lv=level: s.aggregate_by_grid("buildings", grid_level=lv, sums=["residents"])] * 3
        side_by_side(f"buildings by {level:9}", calls, stores)


def densest_point(store: Store) -> shapely.Point:
    """The centre of the densest ~1 km square of buildings."""
    centres = shapely.centroid(store.query("buildings", FeatureQuery(properties=())).geometry.to_numpy())
    xy = shapely.get_coordinates(centres)
    cell = 0.01
    keys = np.floor(xy / cell).astype(np.int64)
    uniques, counts = np.unique(keys, axis=0, return_counts=True)
    best = uniques[np.argmax(counts)]
    return shapely.Point((best[0] + 0.5) * cell, (best[1] + 0.5) * cell)


def bench_tiles(gpkg: GeoPackageStore, pg: PostGISStore) -> None:
    stores: dict[str, Store] = {"geopackage": gpkg, "postgis": pg}
    centre = densest_point(gpkg)
    print(f"building tiles around the densest area ({centre.x:.4f}, {centre.y:.4f}):")
    for z in (14, 15, 16):
        middle = WMQ.tile(centre.x, centre.y, z)
        reach = 1 if z == 14 else 2
        requests = [TileRequest(("buildings",), z, middle.x + dx, middle.y + dy)
                    for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)]
        calls = [lambda s, r=r: s.tile(r) for r in requests] * 3
        side_by_side(f"tile z{z} buildings", calls, stores, size=lambda data: len(data) / 1024)  # type: ignore
    print("  (sizes in KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="PostGIS database to use (its twin tables are replaced)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    source = shenzhen_gpkg()
    scratch = Path(tempfile.mkdtemp(prefix="twin-bench-"))
    copy = scratch / "shenzhen.gpkg"
    shutil.copyfile(source, copy)
    drop: Callable[[], None] | None = None
    if args.url:
        url = driver_url(args.url)
    else:
        url, drop = scratch_database()
    gpkg = GeoPackageStore(copy)
    pg = PostGISStore.create(url, raster_dir=OUT)
    try:
        bench_load(gpkg, pg)
        bench_readings_insert(pg)
        bench_queries(gpkg, pg, args.queries)
        bench_tiles(gpkg, pg)
    finally:
        gpkg.close()
        pg.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if drop is not None and not args.keep:
            drop()
        elif drop is not None:
            print(f"kept the database: {url}")


if __name__ == "__main__":
    main()
