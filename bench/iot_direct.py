"""The in-process part of the IoT bench: gateway batches parsed and committed without the broker, and on PostGIS
``Store.append`` of readings beside a bare COPY."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.iot_clients import PREFIX


def direct_commit(location: str, ids: np.ndarray, normal: np.ndarray, batches: int, per: int) -> None:
    """Gateway batches (200 messages of ``per`` readings) parsed and committed in this process, no broker between:
    what the store, the parser and the engine sustain on their own."""
    from twin.iot import IotRuntime, IotSettings
    from twin.iot.payload import Message
    from twin.store.opening import open_store

    store = open_store(location)
    runtime = IotRuntime(store, IotSettings())
    runtime.state()
    rng = np.random.default_rng(1)
    prepared = []
    for b in range(batches):
        at = time.time() - 3600 + b  # an hour back: no clash with what the publishers stamped
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
        messages = []
        for m in range(200):
            ks = rng.integers(0, len(ids), per)
            stamp = f"{ts}.{m:03d}Z"
            messages.append(Message(f"{PREFIX}/sensors/gw-direct/readings", orjson.dumps(
                [{"sensor_id": int(ids[k]), "ts": stamp, "value": float(normal[k])} for k in ks])))
        prepared.append(messages)
    parse_s = commit_s = 0.0
    readings = 0
    for messages in prepared:
        started = time.perf_counter()
        parsed = runtime.parse_messages(messages)
        parsed_at = time.perf_counter()
        result = runtime.commit(parsed)
        commit_s += time.perf_counter() - parsed_at
        parse_s += parsed_at - started
        readings += result.accepted
    if "://" in location:
        append_vs_copy(store, ids, batches, per * 200)
    store.close()
    print(f"in-process gateway batches ({batches} × 200 messages × {per} readings, no broker): parse "
          f"{readings / parse_s:,.0f} readings/s, commit (store + engine) {readings / commit_s:,.0f} readings/s, "
          f"both {readings / (parse_s + commit_s):,.0f} readings/s", flush=True)


def append_vs_copy(store: Any, ids: np.ndarray, batches: int, size: int) -> None:
    """PostGIS only: ``Store.append`` of readings frames beside a bare COPY of the same kind of rows, interleaved."""
    from layers import get_layer
    from twin.store import pg_copy
    from twin.validate import normalize_frame

    layer = get_layer("readings")
    rng = np.random.default_rng(2)
    start = int((time.time() - 7200) * 1000)

    def frame(k: int) -> Any:
        import pandas as pd

        return pd.DataFrame({"sensor_id": ids[rng.integers(0, len(ids), size)],
                             "ts": pd.to_datetime(start + k * size + np.arange(size), unit="ms", utc=True),
                             "value": rng.random(size)})

    append_s = bare_s = 0.0
    for k in range(batches):
        rows = frame(2 * k)
        began = time.perf_counter()
        store.append("readings", rows)
        append_s += time.perf_counter() - began
        payload = pg_copy.encode(layer, normalize_frame(layer, frame(2 * k + 1)), None)  # prepared: no validation
        began = time.perf_counter()
        with store.engine.begin() as conn:
            pg_copy.copy_in(conn, "readings", payload)
        bare_s += time.perf_counter() - began
    total = batches * size
    print(f"readings into PostGIS, {batches} batches of {size:,}: Store.append {total / append_s:,.0f}/s, bare COPY "
          f"{total / bare_s:,.0f}/s ({100 * bare_s / append_s:.0f}% of the bare COPY rate)", flush=True)
