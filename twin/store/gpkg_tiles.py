"""Tile rows straight from a GeoPackage: R-tree candidates → blobs and raw column values, no frame in between.

:func:`layer_rows` answers what ``Store.query(layer, FeatureQuery(bbox=box, limit=n))`` answers for a tile (the
features intersecting the box, the first ``n`` by id), but as a :class:`twin.tiles.build.LayerRows`: the geometries
decoded in one vectorised call and each property column left as the values SQLite returned, turned into what a
tile holds (booleans from 0/1, dates and datetimes as the ISO text the store writes) without building pandas
columns. Tiles built from these rows are byte-identical to tiles built from the query's frame.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from layers import Field, FieldType, Layer
from twin.store import gpkg_geometry
from twin.store.base import BBox, FeatureQuery
from twin.store.gpkg_codec import python_column, select_columns
from twin.store.gpkg_schema import quote, rtree_name
from twin.store.gpkg_spatial import conditions, exact_mask, inside_sql, window_sql
from twin.tiles.build import LayerRows
from twin.tiles.protobuf import Column

CHUNK_ROWS = 8192
_DATE_LENGTH, _DATETIME_LENGTH = len("2024-01-31"), len("2024-01-31T12:00:00.000Z")


def layer_rows(conn: sqlite3.Connection, layer: Layer, box: BBox, limit: int) -> LayerRows:
    """The features of ``layer`` intersecting ``box``, the first ``limit`` by id, with their tile properties."""
    conds = conditions(FeatureQuery(bbox=box))
    columns, fields = select_columns(layer)
    window, window_params = window_sql(conds[0].window)
    inside, inside_params = inside_sql(conds)
    cursor = conn.execute(
        f"SELECT {columns}, ({inside}) FROM {quote(rtree_name(layer))} r "
        f"JOIN {quote(layer.id)} t ON t.{quote(layer.key)} = r.id WHERE {window} ORDER BY t.{quote(layer.key)}",
        [*inside_params, *window_params])
    kept: list[tuple[Any, ...]] = []
    geoms: list[np.ndarray] = []
    flag = 2 + len(fields)
    while len(kept) < limit and (chunk := cursor.fetchmany(CHUNK_ROWS)):
        decoded = gpkg_geometry.decode([row[1] for row in chunk])
        mask = exact_mask(conds, decoded, np.fromiter((row[flag] for row in chunk), dtype=bool, count=len(chunk)))
        kept.extend(compress(chunk, mask))
        geoms.append(decoded[mask])
    cursor.close()
    kept = kept[:limit]
    if not kept:
        return LayerRows(np.empty(0, dtype=np.int64), np.empty(0, dtype=object), {})
    values = list(zip(*kept, strict=True))
    return LayerRows(np.array(values[0], dtype=np.int64), np.concatenate(geoms)[:limit],
                     {f.name: tile_column(f, values[2 + i]) for i, f in enumerate(fields)})


def tile_column(field: Field, values: Sequence[Any]) -> Column:
    """Fetched SQLite values as a tile property column (what :func:`twin.tiles.build.tile_properties` gives)."""
    kind = field.type
    if kind is FieldType.REAL:
        return np.array(values, dtype=np.float64)
    if kind is FieldType.BOOLEAN:
        return np.array([None if v is None else v != 0 for v in values], dtype=object)
    column = np.array(values, dtype=object)
    if kind is FieldType.DATE and not _canonical(column, _DATE_LENGTH):
        dates = python_column(field, values)
        return np.array([None if d is None else d.isoformat() for d in dates], dtype=object)
    if kind is FieldType.DATETIME and not _canonical(column, _DATETIME_LENGTH):
        stamps = pd.Series(python_column(field, values))
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
        return text.astype(object).where(stamps.notna(), None).to_numpy()
    return column


def _canonical(column: np.ndarray, length: int) -> bool:
    """True when every value is ``None`` or text of the store's own ISO format (as written: ``…Z`` for instants)."""
    for value in column:
        if value is not None and not (isinstance(value, str) and len(value) == length and (
                length == _DATE_LENGTH or (value[10] == "T" and value[-1] == "Z"))):
            return False
    return True

