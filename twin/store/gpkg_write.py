"""Write transactions of the GeoPackage store, each a function of a connection inside ``BEGIN IMMEDIATE``.

The store validates first (:mod:`twin.validate`) and owns the transaction; these functions only turn normalized
data into SQL. ``gpkg_contents`` (its ``last_change`` and the layer extent that GDAL and QGIS show) is kept exact
with every write.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from layers import Layer
from twin.errors import Conflict
from twin.store import gpkg_geometry, gpkg_read, gpkg_rtree
from twin.store.gpkg_codec import encode_rows, storage_column
from twin.store.gpkg_schema import (
    GEOMETRY_COLUMN,
    NOW,
    drop_rtree_triggers,
    quote,
    rtree_ddl,
    rtree_name,
    rtree_triggers,
)
from twin.store.gpkg_sql import lookup, storage_value
from twin.validate import GEOMETRY, has_ids


def insert(conn: sqlite3.Connection, layer: Layer, frame: pd.DataFrame) -> list[int]:
    """Insert a normalized frame; its own ids must be new (``Conflict``), else ids continue the sequence."""
    table, key = quote(layer.id), quote(layer.key)
    if has_ids(layer, frame):
        ids = frame.index.to_numpy(dtype="int64")
        clash = conn.execute(f"SELECT {key} FROM {table} WHERE {key} IN (SELECT value FROM json_each(?)) "
                             "ORDER BY 1 LIMIT 1", (json.dumps(ids.tolist()),)).fetchone()
        if clash:
            raise Conflict(f"{layer.id} already has a feature with id {clash[0]}")
    else:
        ids = np.arange(len(frame), dtype="int64") + next_id(conn, layer)
    sql, rows, bounds = encode_rows(layer, frame, ids)
    conn.executemany(sql, rows)
    touch(conn, layer, bounds)
    return [int(i) for i in ids]


def append(conn: sqlite3.Connection, layer: Layer, frame: pd.DataFrame) -> int:
    """Insert a normalized frame, skipping rows whose id or unique key is already stored; returns rows added."""
    ids = frame.index.to_numpy(dtype="int64") if has_ids(layer, frame) else (
        np.arange(len(frame), dtype="int64") + next_id(conn, layer))
    sql, rows, bounds = encode_rows(layer, frame, ids)
    # the frame is validated, so the only constraint an INSERT can still break is uniqueness
    cursor = conn.executemany(sql.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1), rows)
    added = int(cursor.rowcount)
    if added:
        touch(conn, layer, bounds)
    return added


def update(conn: sqlite3.Connection, layer: Layer, feature_id: int, changes: Mapping[str, Any]) -> bool:
    """Apply normalized changes to one row; False when there is no such row."""
    assignments, params, moved = [], [], False
    for name, value in changes.items():
        if name == GEOMETRY:
            assignments.append(f"{quote(GEOMETRY_COLUMN)} = ?")
            params.append(gpkg_geometry.encode_one(value, has_z=layer.has_z))
            moved = True
        else:
            assignments.append(f"{quote(name)} = ?")
            params.append(storage_value(lookup(layer, name), value))
    table, key = quote(layer.id), quote(layer.key)
    if not assignments:
        return conn.execute(f"SELECT 1 FROM {table} WHERE {key} = ?", (feature_id,)).fetchone() is not None
    cursor = conn.execute(f"UPDATE {table} SET {', '.join(assignments)} WHERE {key} = ?", [*params, feature_id])
    if cursor.rowcount:
        touch(conn, layer, recompute=moved)
    return cursor.rowcount > 0


def update_many(conn: sqlite3.Connection, layer: Layer, frame: pd.DataFrame) -> int:
    """Apply a normalized frame of changes (fields only, indexed by id) with one statement per row; rows updated."""
    names = [name for name in frame.columns if layer.has_field(name)]
    if not names or frame.empty:
        return 0
    columns = [storage_column(lookup(layer, name), frame[name]) for name in names]
    ids = frame.index.to_numpy(dtype="int64").tolist()
    assignments = ", ".join(f"{quote(name)} = ?" for name in names)
    cursor = conn.executemany(f"UPDATE {quote(layer.id)} SET {assignments} WHERE {quote(layer.key)} = ?",
                              list(zip(*columns, ids, strict=True)))
    updated = int(cursor.rowcount)
    if updated:
        touch(conn, layer)
    return updated


def delete(conn: sqlite3.Connection, layer: Layer, ids: list[int]) -> int:
    """Delete rows by id; returns how many there were."""
    cursor = conn.execute(
        f"DELETE FROM {quote(layer.id)} WHERE {quote(layer.key)} IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),))
    touch(conn, layer, recompute=cursor.rowcount > 0)
    return int(cursor.rowcount)


@dataclass
class Encoded:
    """A frame encoded for a bulk load (done before the transaction, so the write lock is held briefly)."""

    sql: str
    rows: list[tuple[Any, ...]]
    bounds: np.ndarray | None


def encode_bulk(layer: Layer, frame: pd.DataFrame, ids: np.ndarray) -> Encoded:
    """Encode a whole layer for :func:`replace`."""
    with gc_paused():  # a million small tuples would otherwise trigger many full collections
        return Encoded(*encode_rows(layer, frame, ids))


def replace(conn: sqlite3.Connection, layer: Layer, ids: np.ndarray, encoded: Encoded) -> None:
    """Replace a layer's rows: the bulk-load path.

    Indexes and R-tree triggers are dropped, the rows go in with one ``executemany``, the R-tree is bulk-loaded
    as a packed tree from the bounds computed while encoding (:mod:`twin.store.gpkg_rtree`, far faster than a
    million trigger-driven inserts or an ``INSERT … SELECT``), then indexes and triggers are recreated.
    """
    table = quote(layer.id)
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                           "AND sql IS NOT NULL", (layer.id,)).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {quote(name)}")
    if layer.is_spatial:
        for statement in drop_rtree_triggers(layer):
            conn.execute(statement)
        conn.execute(f"DROP TABLE IF EXISTS {quote(rtree_name(layer))}")
    conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (layer.id,))
    with gc_paused():
        conn.executemany(encoded.sql, encoded.rows)
    encoded.rows = []
    bounds = encoded.bounds
    if layer.is_spatial:
        conn.execute(rtree_ddl(layer))
        if bounds is not None and len(bounds):
            order = hilbert_order(bounds)
            gpkg_rtree.bulk_load(conn, rtree_name(layer), ids[order], bounds[order])
        for statement in rtree_triggers(layer):
            conn.execute(statement)
    for _, index_sql in indexes:
        conn.execute(index_sql)
    touch(conn, layer, bounds, exact=True)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (bulk encoding allocates millions of objects and no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def hilbert_order(bounds: np.ndarray, level: int = 16) -> np.ndarray:
    """Row order along a Hilbert curve through the envelope centres (packed R-trees built in this order are tight)."""
    if len(bounds) < 2:
        return np.arange(len(bounds))
    cx, cy = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    side = (1 << level) - 1

    def scale(values: np.ndarray) -> np.ndarray:
        low, high = float(values.min()), float(values.max())
        span = high - low if high > low else 1.0
        return np.clip(((values - low) / span * side).astype(np.int64), 0, side)

    x, y, distance = scale(cx), scale(cy), np.zeros(len(bounds), dtype=np.int64)
    s = 1 << (level - 1)
    while s > 0:
        rx, ry = (x & s) > 0, (y & s) > 0
        distance += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x, y = np.where(flip, side - x, x), np.where(flip, side - y, y)
        x, y = np.where(~ry, y, x), np.where(~ry, x, y)
        s >>= 1
    return np.argsort(distance, kind="stable")


def next_id(conn: sqlite3.Connection, layer: Layer) -> int:
    """The next AUTOINCREMENT id (never reuses the id of a deleted row)."""
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (layer.id,)).fetchone()
    top = conn.execute(f"SELECT max({quote(layer.key)}) FROM {quote(layer.id)}").fetchone()[0]
    return max(seq[0] if seq else 0, top or 0) + 1


def touch(conn: sqlite3.Connection, layer: Layer, bounds: np.ndarray | None = None, exact: bool = False,
          recompute: bool = False) -> None:
    """Record the change in ``gpkg_contents``: ``last_change`` and the layer extent, which GDAL and QGIS show.

    The extent grows with ``bounds`` (inserts), is set from ``bounds`` (``exact``, bulk loads) or is measured
    again (``recompute``, after deletes and geometry updates, which may shrink it).
    """
    conn.execute("INSERT INTO twin_layer_versions VALUES (?, 1) "
                 "ON CONFLICT (table_name) DO UPDATE SET version = version + 1", (layer.id,))
    if recompute and layer.is_spatial:
        box = gpkg_read.extent(conn, layer)
        bounds = None if box is None else np.array([box.as_tuple()])
        exact = True
    if bounds is None or not len(bounds):
        extent: list[float | None] = [None] * 4
    else:
        extent = [float(bounds[:, 0].min()), float(bounds[:, 1].min()),
                  float(bounds[:, 2].max()), float(bounds[:, 3].max())]
    if exact:
        conn.execute(f"UPDATE gpkg_contents SET last_change = {NOW}, min_x = ?, min_y = ?, max_x = ?, max_y = ? "
                     "WHERE table_name = ?", (*extent, layer.id))
    elif extent[0] is not None:
        conn.execute(
            f"UPDATE gpkg_contents SET last_change = {NOW}, min_x = min(coalesce(min_x, ?1), ?1), "
            "min_y = min(coalesce(min_y, ?2), ?2), max_x = max(coalesce(max_x, ?3), ?3), "
            "max_y = max(coalesce(max_y, ?4), ?4) WHERE table_name = ?5", (*extent, layer.id))
    else:
        conn.execute(f"UPDATE gpkg_contents SET last_change = {NOW} WHERE table_name = ?", (layer.id,))


def conflict(layer: Layer, err: sqlite3.IntegrityError) -> Conflict:
    """A readable ``Conflict`` for a violated unique constraint."""
    text = str(err)
    if "UNIQUE" in text and ":" in text:
        columns = ", ".join(c.strip().split(".")[-1] for c in text.split(":", 1)[1].split(","))
        return Conflict(f"{layer.id} already has a row with the same {columns}")
    return Conflict(f"{layer.id}: {text}")
