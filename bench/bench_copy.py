"""What a readings COPY costs PostGIS: arrival order against key order, and two streams side by side.

Run: python bench/bench_copy.py --store postgresql+psycopg://…/db [--rows 26000] [--batches 8] [--warm 40]

The database is migrated (``twin.migrations.upgrade``) and its readings table used as the twin uses it: binary COPYs
of ``--rows`` readings (random sensors of 270,000, timestamps one millisecond apart in a month nobody else writes),
after ``--warm`` batches so the unique index is not trivially small. Printed: rows/s per way, and PostgreSQL's
``shared_buffers`` (the rate depends on it: see docs/iot.md).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENSORS = 270_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="a PostGIS URL (the database is migrated)")
    parser.add_argument("--rows", type=int, default=26_000, help="readings per COPY (a 2 MB batch of gateways)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--warm", type=int, default=40)
    args = parser.parse_args()

    import sqlalchemy as sa

    from layers import get_layer
    from twin.migrations import upgrade
    from twin.store import pg_copy
    from twin.store.postgis import PostGISStore
    from twin.validate import normalize_frame

    upgrade(args.store)
    store = PostGISStore(args.store)
    layer = get_layer("readings")
    rng = np.random.default_rng(int(time.time()))
    # a month of its own, two years back, at a random millisecond: no clash with earlier runs or the twin's readings
    clock = [int(pd.Timestamp("2024-11-02", tz="UTC").timestamp() * 1000) + int(rng.integers(0, 2 * 10**9))]
    lock = threading.Lock()

    def payload(sort: bool) -> pg_copy.Payload:
        with lock:
            start, clock[0] = clock[0], clock[0] + args.rows
        sensor = rng.integers(1, SENSORS + 1, args.rows)
        ts = start + np.arange(args.rows)
        if sort:
            order = np.lexsort((ts, sensor))
            sensor, ts = sensor[order], ts[order]
        frame = pd.DataFrame({"sensor_id": sensor, "ts": pd.to_datetime(ts, unit="ms", utc=True),
                              "value": rng.random(args.rows)})
        return pg_copy.encode(layer, normalize_frame(layer, frame), None)

    def copy(data: pg_copy.Payload) -> float:
        began = time.perf_counter()
        with store.engine.begin() as conn:
            pg_copy.copy_in(conn, "readings", data)
        return time.perf_counter() - began

    store.append("readings", normalize_frame(layer, pd.DataFrame({  # creates the month's partition
        "sensor_id": [1], "ts": pd.to_datetime([clock[0] - 1], unit="ms", utc=True), "value": [0.0]})))
    for _ in range(args.warm):
        copy(payload(True))
    with store.engine.connect() as conn:
        buffers = conn.execute(sa.text("SHOW shared_buffers")).scalar()
        rows = conn.execute(sa.text("SELECT count(*) FROM readings")).scalar()
    print(f"PostgreSQL shared_buffers {buffers}; readings table {rows:,} rows; COPYs of {args.rows:,} rows", flush=True)
    for label, sort in (("arrival order", False), ("key order (sensor, ts)", True)) * 2:
        seconds = sum(copy(payload(sort)) for _ in range(args.batches))
        print(f"  {label:<26} {args.rows * args.batches / seconds:>10,.0f} rows/s", flush=True)
    prepared = [[payload(True) for _ in range(args.batches)] for _ in range(2)]
    began = time.perf_counter()
    streams = [threading.Thread(target=lambda batch=batch: [copy(p) for p in batch]) for batch in prepared]
    for thread in streams:
        thread.start()
    for thread in streams:
        thread.join()
    print(f"  {'key order, two streams':<26} {2 * args.rows * args.batches / (time.perf_counter() - began):>10,.0f} "
          "rows/s together", flush=True)
    store.close()


if __name__ == "__main__":
    main()
