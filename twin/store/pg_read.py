r"""Read queries of the PostGIS store, each a function of an open SQLAlchemy connection.

Every predicate runs in the database: the exact spatial predicate (``ST_Intersects`` / ``ST_Within`` /
``ST_Contains``, index-assisted by GiST), attribute filters, sort, ``LIMIT``/``OFFSET``. Rows are taken straight
from the driver into one object array; geometries come back as WKB (``ST_AsBinary``) and are decoded by shapely a
whole column at a time, datetimes as epoch milliseconds, so building the frame needs no per-row Python work.

Distances are metres in EPSG:4547, computed in SQL (``ST_Distance`` of ``ST_Transform``\\ ed geometries). Nearest-k
seeds its search radius with the KNN operator ``<->`` on the GiST index, then takes every feature inside the
lon/lat box that holds that radius (the same conservative box the GeoPackage store uses) and ranks them by exact
metric distance, then id, so both stores return the same features in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from geopandas.array import from_shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from layers import Field, FieldType, Layer, get_layer
from twin.errors import InvalidQuery
from twin.store import pg_cql
from twin.store.base import STORAGE_CRS, BBox, FeatureQuery, Filter
from twin.store.checks import summed_fields
from twin.store.gpkg_codec import GEOMETRY, python_column, with_distance
from twin.store.gpkg_spatial import WORLD, metric_point, metric_window, to_metric
from twin.store.pg_schema import GEOMETRY_COLUMN, METADATA, table_of
from twin.store.pg_sql import envelope, geometry_param, order_by, spatial_exprs, where

METRIC_SRID = 4547
_CRS = gpd.GeoSeries([], crs=STORAGE_CRS).crs


def _select_list(layer: Layer, table: sa.Table, properties: Sequence[str] | None = None
                 ) -> tuple[list[sa.ColumnElement[Any]], list[Field]]:
    """The key, the geometry (as WKB) and the fields, and the fields in order."""
    if properties is None:
        fields = list(layer.fields)
    else:
        fields = [layer.field(name) for name in dict.fromkeys(p for p in properties if p != layer.key)]
    columns: list[sa.ColumnElement[Any]] = [table.c[layer.key]]
    if layer.is_spatial:
        columns.append(sa.func.ST_AsBinary(table.c[GEOMETRY_COLUMN], "NDR", type_=sa.LargeBinary())
                       .label(GEOMETRY_COLUMN))
    for field in fields:
        column = table.c[field.name]
        if field.type is FieldType.DATETIME:  # epoch milliseconds, floored as the store keeps them
            columns.append(sa.cast(sa.func.floor(sa.extract("epoch", column) * 1000), sa.BigInteger())
                           .label(field.name))
        else:
            columns.append(column)
    return columns, fields


def _column(field: Field, column: np.ndarray) -> Any:
    """One fetched column (an object array) as a column of ``field``'s catalogue dtype."""
    values = cast(Sequence[Any], column)  # python_column takes any sequence, arrays included
    if field.type is FieldType.DATE:
        return np.array(values, dtype=object)
    if field.type is FieldType.DATETIME:
        ms = python_column(Field(field.name, FieldType.INTEGER, "", ""), values)
        stamps = np.where(ms.isna(), np.iinfo(np.int64).min, ms.to_numpy(dtype="int64", na_value=0))
        return pd.DatetimeIndex(stamps.astype("datetime64[ms]")).tz_localize("UTC").array
    return python_column(field, values)


def fetch(conn: sa.Connection, statement: sa.Executable, width: int) -> np.ndarray:
    """The result rows as an ``(n, width)`` object array, straight from the driver (no per-row SQLAlchemy work)."""
    rows = conn.execute(statement).cursor.fetchall()  # the columns need no result processing
    if not rows:
        return np.empty((0, width), dtype=object)
    matrix = np.empty((len(rows), width), dtype=object)
    matrix[:] = rows
    return matrix


def decode(layer: Layer, fields: Sequence[Field], rows: np.ndarray) -> gpd.GeoDataFrame | pd.DataFrame:
    """A frame (catalogue dtypes, indexed by id) from the ``(n, k)`` rows fetched with :func:`_select_list`."""
    index = pd.Index(rows[:, 0].astype("int64"), name=layer.key)
    offset = 2 if layer.is_spatial else 1
    data = {f.name: _column(f, rows[:, offset + i]) for i, f in enumerate(fields)}
    if not layer.is_spatial:
        return pd.DataFrame(data, index=index)
    data[GEOMETRY] = from_shapely(shapely.from_wkb(rows[:, 1]), crs=_CRS)
    return gpd.GeoDataFrame(data, index=index, geometry=GEOMETRY)


def _conditions(layer: Layer, table: sa.Table, query: FeatureQuery) -> list[sa.ColumnElement[Any]]:
    clauses = where(layer, table, query.filters, query.time)
    if query.bbox is not None or query.geometry is not None:
        clauses.extend(spatial_exprs(table, query))
    if query.expr is not None:
        clauses.append(pg_cql.expression(layer, table, query.expr))
    return clauses


def count(conn: sa.Connection, layer: Layer, query: FeatureQuery, cap: int | None = None) -> int:
    """Number of rows matching the query's filters, time range and spatial conditions (at most ``cap``)."""
    table = table_of(layer)
    conditions = _conditions(layer, table, query)
    if cap is None:
        statement = sa.select(sa.func.count()).select_from(table).where(*conditions)
    else:
        matches = sa.select(sa.literal(1)).select_from(table).where(*conditions).limit(cap).subquery()
        statement = sa.select(sa.func.count()).select_from(matches)
    return int(conn.execute(statement).scalar_one())


def select(conn: sa.Connection, layer: Layer, query: FeatureQuery) -> gpd.GeoDataFrame | pd.DataFrame:
    """The rows of :meth:`Store.query`."""
    table = table_of(layer)
    columns, fields = _select_list(layer, table, query.properties)
    statement = (sa.select(*columns).where(*_conditions(layer, table, query))
                 .order_by(*order_by(layer, table, query.sort)).limit(query.limit).offset(query.offset or None))
    return decode(layer, fields, fetch(conn, statement, len(columns)))


def by_ids(conn: sa.Connection, layer: Layer, ids: Sequence[int]) -> gpd.GeoDataFrame | pd.DataFrame:
    """The rows with these ids, in the order given (unknown ids are left out)."""
    table = table_of(layer)
    columns, fields = _select_list(layer, table)
    key = table.c[layer.key]
    statement = sa.select(*columns).where(key == sa.any_(sa.literal([int(i) for i in ids], sa.ARRAY(sa.BigInteger()))))
    frame = decode(layer, fields, fetch(conn, statement, len(columns)))
    return frame.loc[[i for i in ids if i in frame.index]]


def _distance(table: sa.Table, target: sa.ColumnElement[Any]) -> sa.ColumnElement[float]:
    """Metres between the stored geometry and ``target`` (lon/lat), both in EPSG:4547."""
    return sa.func.ST_Distance(sa.func.ST_Transform(table.c[GEOMETRY_COLUMN], METRIC_SRID),
                               sa.func.ST_Transform(target, METRIC_SRID), type_=sa.Double())


def _ranked(conn: sa.Connection, layer: Layer, clauses: list[sa.ColumnElement[Any]],
            target: sa.ColumnElement[Any], limit: int | None, max_distance: float | None) -> gpd.GeoDataFrame:
    """Full rows matching ``clauses`` with ``distance_m`` to ``target``, nearest first, then by id."""
    table = table_of(layer)
    columns, fields = _select_list(layer, table)
    inner = sa.select(*columns, _distance(table, target).label("distance_m")).where(*clauses).subquery("ranked")
    statement = sa.select(*(inner.c[c.name] for c in columns), inner.c.distance_m)
    if max_distance is not None:
        statement = statement.where(inner.c.distance_m <= max_distance)
    statement = statement.order_by(inner.c.distance_m, inner.c[layer.key]).limit(limit)
    rows = fetch(conn, statement, len(columns) + 1)
    frame = decode(layer, fields, rows[:, :-1])
    assert isinstance(frame, gpd.GeoDataFrame)
    return with_distance(frame, rows[:, -1].astype("float64"))


def _window_clause(table: sa.Table, window: tuple[float, float, float, float]) -> list[sa.ColumnElement[Any]]:
    if window == WORLD:
        return []
    return [table.c[GEOMETRY_COLUMN].op("&&")(envelope(window))]


def nearest(conn: sa.Connection, layer: Layer, point: Point, k: int, filters: Sequence[Filter]) -> gpd.GeoDataFrame:
    """KNN-seeded nearest-k by exact metric distance (ties by id)."""
    table = table_of(layer)
    clauses = where(layer, table, filters)
    target = geometry_param(point)
    geom = table.c[GEOMETRY_COLUMN]
    seed = (sa.select(geom.label("g")).where(*clauses).order_by(geom.op("<->")(target)).limit(k)
            .subquery("seed"))
    radius: sa.ColumnElement[float] = sa.func.ST_Distance(sa.func.ST_Transform(seed.c.g, METRIC_SRID),
                                 sa.func.ST_Transform(target, METRIC_SRID), type_=sa.Double())
    found, kth = conn.execute(sa.select(sa.func.count(), sa.func.max(radius)).select_from(seed)).one()
    if found < k:  # fewer matching features than k: rank them all
        return _ranked(conn, layer, clauses, target, None, None)
    x, y = metric_point(point)
    finite = bool(np.isfinite((x, y, kth)).all())
    window = metric_window((x, y, x, y), float(kth) * (1 + 1e-9) + 1e-6) if finite else WORLD
    return _ranked(conn, layer, clauses + _window_clause(table, window), target, k, None)


def within_distance(conn: sa.Connection, layer: Layer, geometry: BaseGeometry, distance_m: float,
                    filters: Sequence[Filter]) -> gpd.GeoDataFrame:
    """Features within ``distance_m`` metres of ``geometry``, nearest first (ties by id)."""
    table = table_of(layer)
    flat = shapely.force_2d(geometry)
    window = metric_window(to_metric(flat).bounds, distance_m)
    clauses = where(layer, table, filters) + _window_clause(table, window)
    return _ranked(conn, layer, clauses, geometry_param(flat), None, distance_m)


def aggregate_by_grid(conn: sa.Connection, layer: Layer, filters: Sequence[Filter], grid_level: str,
                      sums: Sequence[str]) -> pd.DataFrame:
    """Counts and sums per grid cell of ``grid_level`` (cells without features get 0), computed in SQL."""
    grids_layer = get_layer("grids")
    numeric = summed_fields(layer, grid_level, sums)
    table, grids = table_of(layer), table_of(grids_layer)
    cells = sa.select(grids.c.id, grids.c.code, grids.c[GEOMETRY_COLUMN]).where(
        grids.c.level == grid_level).subquery("cells")
    clauses = where(layer, table, filters)
    if layer.is_spatial:
        geom = table.c[GEOMETRY_COLUMN]
        on = sa.and_(geom.op("&&")(cells.c[GEOMETRY_COLUMN]),
                     sa.func.ST_Within(sa.func.ST_PointOnSurface(geom), cells.c[GEOMETRY_COLUMN]), *clauses)
        joined = cells.outerjoin(table, on)
    elif layer.has_field("grid_code"):
        ancestry = _ancestry(grids, grid_level)
        rows = sa.select(table, ancestry.c.cell).join(ancestry, ancestry.c.start == table.c.grid_code)
        matched = rows.where(*clauses).subquery("matched")
        joined = cells.outerjoin(matched, matched.c.cell == cells.c.code)
        table = matched  # type: ignore[assignment]
    else:
        raise InvalidQuery(f"{layer.id!r} has neither geometry nor grid_code; it cannot be aggregated by grid")
    totals = [sa.func.coalesce(sa.func.sum(table.c[f.name]), 0).label(f.name) for f in numeric]
    statement = (sa.select(cells.c.code, sa.func.count(table.c[layer.key]).label("count"), *totals)
                 .select_from(joined).group_by(cells.c.id, cells.c.code).order_by(cells.c.code, cells.c.id))
    rows_out = conn.execute(statement).all()
    result = pd.DataFrame(index=pd.Index([r[0] for r in rows_out], dtype="str", name="code"))
    result["count"] = np.array([r[1] for r in rows_out], dtype="int64")
    for position, field in enumerate(numeric, start=2):
        values = [r[position] for r in rows_out]
        result[field.name] = (np.array([int(v) for v in values], dtype="int64") if field.type is FieldType.INTEGER
                              else np.array(values, dtype="float64"))
    return result


def _ancestry(grids: sa.Table, grid_level: str) -> sa.Subquery:
    """(start, cell): every grid code and its ancestor (or itself) at ``grid_level``, walking ``parent_code``."""
    base = sa.select(grids.c.code.label("start"), grids.c.code.label("code"), grids.c.level.label("level"),
                     sa.literal(0).label("depth")).cte("ancestry", recursive=True)
    parent = grids.alias("parent")
    child = grids.alias("child")
    step = (sa.select(base.c.start, parent.c.code, parent.c.level, (base.c.depth + 1).label("depth"))
            .join(child, child.c.code == base.c.code).join(parent, parent.c.code == child.c.parent_code)
            .where(base.c.level != grid_level, base.c.depth < 64))
    ancestry = base.union_all(step)
    return (sa.select(ancestry.c.start, ancestry.c.code.label("cell")).where(ancestry.c.level == grid_level)
            .distinct().subquery("up"))


def extent(conn: sa.Connection, layer: Layer) -> BBox | None:
    """The exact bounding box of the layer's geometries."""
    table = table_of(layer)
    box = sa.select(sa.func.ST_Extent(table.c[GEOMETRY_COLUMN]).label("box")).subquery("extent")
    row = conn.execute(sa.select(sa.func.ST_XMin(box.c.box), sa.func.ST_YMin(box.c.box),
                                 sa.func.ST_XMax(box.c.box), sa.func.ST_YMax(box.c.box))).one()
    if row[0] is None:
        return None
    return BBox(float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def time_range(conn: sa.Connection, layer: Layer) -> tuple[Any, Any]:
    """Earliest and latest value of the temporal field (driver values, ``None`` when there are none)."""
    assert layer.temporal_field is not None
    column = METADATA.tables[layer.id].c[layer.temporal_field]
    low, high = conn.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    return low, high
