"""Read queries of the GeoPackage store, each a function of an open connection inside a read transaction.

Spatial reads join the layer's R-tree for candidates (envelope overlap in SQL, with the attribute filters and
the sort order), then apply the exact predicate with shapely to whole chunks of rows; only then are the offset and
limit applied, so paging and counts agree. Non-spatial reads are one SQL statement with ``LIMIT``/``OFFSET``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from itertools import compress
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from layers import FieldType, Layer, get_layer
from twin.errors import InvalidQuery
from twin.store import gpkg_cql, gpkg_geometry, gpkg_nearest
from twin.store.base import BBox, FeatureQuery, Filter
from twin.store.checks import summed_fields
from twin.store.gpkg_codec import decode_rows, select_columns, with_distance
from twin.store.gpkg_schema import GEOMETRY_COLUMN, quote, rtree_name
from twin.store.gpkg_spatial import (
    Condition,
    Window,
    conditions,
    exact_mask,
    inside_sql,
    metric_window,
    needs_geometry,
    to_metric,
    window_sql,
)
from twin.store.gpkg_sql import order_clause, where_clause

CHUNK_ROWS = 8192


def _spatial_from(layer: Layer) -> str:
    return f"FROM {quote(rtree_name(layer))} r JOIN {quote(layer.id)} t ON t.{quote(layer.key)} = r.id"


def _windows(conds: list[Condition]) -> list[tuple[str, list[float]]]:
    return [window_sql(c.window) for c in conds]


def count(conn: sqlite3.Connection, layer: Layer, query: FeatureQuery, cap: int | None = None) -> int:
    """Number of rows matching the query's filters, time range and spatial conditions (at most ``cap``)."""
    conds = conditions(query)
    cql = gpkg_cql.plan(layer, query.expr)
    if not conds and not cql.spatial:
        where, params = where_clause(layer, query.filters, query.time, extra=cql.where)
        if cap is None:
            return int(conn.execute(f"SELECT count(*) FROM {quote(layer.id)} t {where}", params).fetchone()[0])
        capped = f"SELECT count(*) FROM (SELECT 1 FROM {quote(layer.id)} t {where} LIMIT ?)"
        return int(conn.execute(capped, [*params, cap]).fetchone()[0])
    inside, inside_params = inside_sql(conds)
    geom, geom_params = f"t.{quote(GEOMETRY_COLUMN)}", []
    if not needs_geometry(conds) and not cql.spatial:  # rows inside every box need no geometry at all
        geom, geom_params = f"CASE WHEN {inside} THEN NULL ELSE {geom} END", inside_params
    where, params = where_clause(layer, query.filters, query.time, extra=[*_windows(conds), *cql.where])
    cursor = conn.execute(f"SELECT ({inside}), {geom}{cql.columns} {_spatial_from(layer)} {where}",
                          [*inside_params, *geom_params, *cql.column_params, *params])
    total = 0
    while chunk := cursor.fetchmany(CHUNK_ROWS):
        flags, blobs, *extra = zip(*chunk, strict=True)
        decoded = gpkg_geometry.decode(blobs)
        total += int((exact_mask(conds, decoded, np.array(flags, dtype=bool)) & cql.mask(extra, decoded)).sum())
        if cap is not None and total >= cap:
            return cap
    return total


def select(conn: sqlite3.Connection, layer: Layer, query: FeatureQuery) -> gpd.GeoDataFrame | pd.DataFrame:
    """The rows of :meth:`Store.query`."""
    columns, fields = select_columns(layer, query.properties)
    order = order_clause(layer, query.sort)
    conds = conditions(query)
    cql = gpkg_cql.plan(layer, query.expr)
    if not conds and not cql.spatial:
        where, params = where_clause(layer, query.filters, query.time, extra=cql.where)
        limit = -1 if query.limit is None else query.limit
        rows = conn.execute(f"SELECT {columns} FROM {quote(layer.id)} t {where} {order} LIMIT ? OFFSET ?",
                            [*params, limit, query.offset]).fetchall()
        return decode_rows(layer, fields, rows)
    where, params = where_clause(layer, query.filters, query.time, extra=[*_windows(conds), *cql.where])
    inside, inside_params = inside_sql(conds)
    flag = 2 + len(fields)  # the inside flag follows key, geometry and fields; the CQL2 columns follow it
    # Without sort keys or a limit, sorting by id in numpy afterwards is cheaper than SQLite's sorter.
    sort_in_sql = bool(query.sort) or query.limit is not None
    cursor = conn.execute(
        f"SELECT {columns}, ({inside}){cql.columns} {_spatial_from(layer)} {where} {order if sort_in_sql else ''}",
        [*inside_params, *cql.column_params, *params])
    wanted = None if query.limit is None else query.offset + query.limit
    kept: list[tuple[Any, ...]] = []
    geoms: list[np.ndarray] = []
    while (wanted is None or len(kept) < wanted) and (chunk := cursor.fetchmany(CHUNK_ROWS)):
        transposed = list(zip(*chunk, strict=True))
        decoded = gpkg_geometry.decode(transposed[1])
        mask = exact_mask(conds, decoded, np.array(transposed[flag], dtype=bool))
        mask &= cql.mask(transposed[flag + 1 :], decoded)
        kept.extend(compress(chunk, mask))
        geoms.append(decoded[mask])
    cursor.close()
    all_geoms = np.concatenate(geoms) if geoms else np.empty(0, dtype=object)
    if not sort_in_sql:
        by_id = np.argsort(np.array([row[0] for row in kept], dtype="int64"), kind="stable")
        kept, all_geoms = [kept[i] for i in by_id], all_geoms[by_id]
    stop = None if query.limit is None else query.offset + query.limit
    return decode_rows(layer, fields, kept[query.offset : stop], all_geoms[query.offset : stop])


def by_ids(conn: sqlite3.Connection, layer: Layer, ids: Sequence[int]) -> gpd.GeoDataFrame | pd.DataFrame:
    """The rows with these ids, in the order given (unknown ids are left out)."""
    columns, fields = select_columns(layer)
    rows = conn.execute(
        f"SELECT {columns} FROM {quote(layer.id)} t WHERE t.{quote(layer.key)} IN (SELECT value FROM json_each(?))",
        (json.dumps([int(i) for i in ids]),),
    ).fetchall()
    frame = decode_rows(layer, fields, rows)
    present = [i for i in ids if i in frame.index]
    return frame.loc[present]


def _candidates(conn: sqlite3.Connection, layer: Layer, window: Window,
                filters: Sequence[Filter]) -> tuple[np.ndarray, np.ndarray]:
    """Ids and geometries of the features whose R-tree envelope overlaps ``window`` and that pass ``filters``."""
    where, params = where_clause(layer, filters, extra=[window_sql(window)])
    rows = conn.execute(f"SELECT t.{quote(layer.key)}, t.{quote(GEOMETRY_COLUMN)} {_spatial_from(layer)} {where}",
                        params).fetchall()
    if not rows:
        return np.empty(0, dtype="int64"), np.empty(0, dtype=object)
    ids, blobs = zip(*rows, strict=True)
    return np.array(ids, dtype="int64"), gpkg_geometry.decode(blobs)


def _with_distances(conn: sqlite3.Connection, layer: Layer, ids: np.ndarray, distances: np.ndarray
                    ) -> gpd.GeoDataFrame:
    frame = by_ids(conn, layer, ids.tolist())
    return with_distance(frame, distances)


def stored_extent(conn: sqlite3.Connection, layer: Layer) -> Window | None:
    """A box that holds every feature: ``gpkg_contents``'s extent (kept grown on writes) or the R-tree's."""
    row = conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?",
                       (layer.id,)).fetchone()
    if row is None or any(v is None for v in row):
        row = conn.execute(f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {quote(rtree_name(layer))}"
                           ).fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def nearest(conn: sqlite3.Connection, layer: Layer, point: Point, k: int,
            filters: Sequence[Filter]) -> gpd.GeoDataFrame:
    """The ``k`` features nearest ``point`` with their metric distances (see :mod:`twin.store.gpkg_nearest`)."""
    extent = stored_extent(conn, layer)
    if extent is None:
        return _with_distances(conn, layer, np.empty(0, dtype="int64"), np.empty(0))
    ids, distances = gpkg_nearest.nearest(conn, layer, point, k, filters, extent)
    return _with_distances(conn, layer, ids, distances)


def within_distance(conn: sqlite3.Connection, layer: Layer, geometry: BaseGeometry, distance_m: float,
                    filters: Sequence[Filter]) -> gpd.GeoDataFrame:
    """Features within ``distance_m`` metres of ``geometry``, nearest first."""
    target = to_metric(shapely.force_2d(geometry))
    window = metric_window(target.bounds, distance_m)
    ids, geoms = _candidates(conn, layer, window, filters)
    distances = np.asarray(shapely.distance(to_metric(geoms), target), dtype="float64") if len(ids) else np.empty(0)
    keep = distances <= distance_m
    ids, distances = ids[keep], distances[keep]
    order = np.lexsort((ids, distances))
    return _with_distances(conn, layer, ids[order], distances[order])


def aggregate_by_grid(conn: sqlite3.Connection, layer: Layer, filters: Sequence[Filter], grid_level: str,
                      sums: Sequence[str]) -> pd.DataFrame:
    """Counts and sums per grid cell of ``grid_level`` (cells without features get 0)."""
    grids = get_layer("grids")
    numeric = summed_fields(layer, grid_level, sums)
    cells = conn.execute(f"SELECT code, {quote(GEOMETRY_COLUMN)} FROM {quote(grids.id)} WHERE level = ? ORDER BY code",
                         (grid_level,)).fetchall()
    codes = [c[0] for c in cells]
    sum_columns = "".join(f", t.{quote(f.name)}" for f in numeric)
    where, params = where_clause(layer, filters)
    if layer.is_spatial:
        rows = conn.execute(f"SELECT t.{quote(GEOMETRY_COLUMN)}{sum_columns} FROM {quote(layer.id)} t {where}",
                            params).fetchall()
        cell_of = _cells_of_points(rows, [c[1] for c in cells])
    elif layer.has_field("grid_code"):
        rows = conn.execute(f"SELECT t.grid_code{sum_columns} FROM {quote(layer.id)} t {where}", params).fetchall()
        cell_of = _cells_of_codes(conn, rows, codes, grid_level)
    else:
        raise InvalidQuery(f"{layer.id!r} has neither geometry nor grid_code; it cannot be aggregated by grid")
    row_index, cell_index = cell_of
    result = pd.DataFrame(index=pd.Index(codes, dtype="str", name="code"))
    result["count"] = np.bincount(cell_index, minlength=len(codes)).astype("int64")
    for position, field in enumerate(numeric, start=1):
        values = np.array([rows[i][position] for i in row_index], dtype="float64")
        values[np.isnan(values)] = 0.0
        total = np.bincount(cell_index, weights=values, minlength=len(codes))
        result[field.name] = np.round(total).astype("int64") if field.type is FieldType.INTEGER else total
    return result


def _cells_of_points(rows: list[tuple[Any, ...]], cell_blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(row, cell) pairs where the cell contains the row geometry's representative point."""
    if not rows or not cell_blobs:
        return np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
    points = shapely.point_on_surface(gpkg_geometry.decode([r[0] for r in rows]))
    tree = shapely.STRtree(gpkg_geometry.decode(cell_blobs))
    pairs = tree.query(points, predicate="within")
    return pairs[0].astype("int64"), pairs[1].astype("int64")


def _cells_of_codes(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], codes: list[str],
                    grid_level: str) -> tuple[np.ndarray, np.ndarray]:
    """(row, cell) pairs where the row's grid_code is the cell or lies below it in the hierarchy."""
    hierarchy = {code: (parent, level) for code, parent, level in
                 conn.execute("SELECT code, parent_code, level FROM grids")}
    position = {code: i for i, code in enumerate(codes)}
    resolved: dict[str, int] = {}

    def cell(code: str | None) -> int:
        seen = 0
        while code is not None and code in hierarchy and seen < 64:
            if hierarchy[code][1] == grid_level:
                return position.get(code, -1)
            code, seen = hierarchy[code][0], seen + 1
        return -1

    found = np.array([resolved.setdefault(r[0], cell(r[0])) if r[0] is not None else -1 for r in rows],
                     dtype="int64")
    row_index = np.flatnonzero(found >= 0)
    return row_index, found[row_index]


def extent(conn: sqlite3.Connection, layer: Layer) -> BBox | None:
    """The exact extent: the R-tree's (float32, rounded outwards), refined from the blob envelopes near each edge."""
    r, t = quote(rtree_name(layer)), quote(layer.id)
    row = conn.execute(f"SELECT min(minx), max(maxx), min(miny), max(maxy) FROM {r}").fetchone()
    if row is None or row[0] is None:
        return None
    join = f"FROM {r} r JOIN {t} t ON t.{quote(layer.key)} = r.id"
    geom = f"t.{quote(GEOMETRY_COLUMN)}"
    exact = []
    for value, column, function, aggregate, sign in (
        (row[0], "minx", "ST_MinX", "min", 1), (row[2], "miny", "ST_MinY", "min", 1),
        (row[1], "maxx", "ST_MaxX", "max", -1), (row[3], "maxy", "ST_MaxY", "max", -1),
    ):
        tolerance = max(abs(value), 1.0) * 2.0**-20
        limit = value + tolerance if sign > 0 else value - tolerance
        compare = "<=" if sign > 0 else ">="
        found = conn.execute(f"SELECT {aggregate}({function}({geom})) {join} WHERE r.{column} {compare} ?",
                             (limit,)).fetchone()[0]
        exact.append(float(found) if found is not None and math.isfinite(found) else float(value))
    return BBox(exact[0], exact[1], exact[2], exact[3])
