r"""Filters, time ranges, sort keys and spatial predicates as SQLAlchemy expressions over the PostGIS tables.

Identifiers come only from the catalogue's ``Table`` objects (SQLAlchemy quotes them); values are always bound
parameters. The semantics are the GeoPackage store's (see :mod:`twin.store.gpkg_sql`): comparisons and ``<>``
never match NULL; ``like`` is case-sensitive with ``%``/``_`` and ``\\`` as the escape character, on text fields
only; text compares and sorts in byte order (the columns are ``COLLATE "C"``); sorting puts NULLs last in either
direction and breaks ties by ascending id; instants compare at millisecond precision, rounded as the GeoPackage
store rounds them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from layers import Field, FieldType, Layer
from twin.errors import InvalidQuery
from twin.store.base import BBox, FeatureQuery, Filter, Op, Predicate, Sort, TimeRange
from twin.store.gpkg_spatial import conditions
from twin.store.gpkg_sql import lookup
from twin.store.pg_schema import GEOMETRY_COLUMN, SRID
from twin.values import coerce_value, parse_instant

ColumnExpr = sa.ColumnElement[Any]
_COMPARE = {
    Op.EQ: lambda c, v: c == v, Op.NE: lambda c, v: c != v, Op.LT: lambda c, v: c < v,
    Op.LE: lambda c, v: c <= v, Op.GT: lambda c, v: c > v, Op.GE: lambda c, v: c >= v,
}


def _instant(value: Any, op: Op) -> dt.datetime:
    """An instant rounded to the millisecond the way the GeoPackage store rounds (ceil for >= and <)."""
    stamp = parse_instant(value)
    rounded = stamp.ceil("ms") if op in (Op.GE, Op.LT) else stamp.floor("ms")
    return pd.Timestamp(rounded).to_pydatetime()


def _parameter(field: Field, value: Any, op: Op) -> Any:
    if value is None:
        raise InvalidQuery(f"filter on {field.name!r} compares with null; use is_null / not_null")
    try:
        if field.type is FieldType.DATETIME:
            return _instant(value, op)
        return coerce_value(field, value)
    except ValueError as err:
        raise InvalidQuery(f"filter on {field.name!r}: {err}") from None


def like_pattern(pattern: str) -> str:
    r"""A LIKE pattern PostgreSQL accepts: a dangling escape at the end matches a literal ``\\``."""
    escaped = False
    for char in pattern:
        escaped = not escaped and char == "\\"
    return pattern + "\\" if escaped else pattern


def filter_expr(layer: Layer, table: sa.Table, item: Filter) -> ColumnExpr:
    """One filter as a boolean expression."""
    field = lookup(layer, item.field)
    column = table.c[field.name]
    try:
        op = Op(item.op)
    except ValueError:
        raise InvalidQuery(f"unknown operator {item.op!r}; use one of {', '.join(o.value for o in Op)}") from None
    if op is Op.IS_NULL:
        return column.is_(None)
    if op is Op.NOT_NULL:
        return column.is_not(None)
    if op is Op.LIKE:
        if field.type is not FieldType.TEXT:
            raise InvalidQuery(f"'like' needs a text field; {field.name!r} is {field.type.value}")
        if not isinstance(item.value, str):
            raise InvalidQuery(f"'like' on {field.name!r} needs a text pattern")
        return column.like(like_pattern(item.value), escape="\\")
    if op is Op.IN:
        if isinstance(item.value, str | bytes) or not isinstance(item.value, Sequence):
            raise InvalidQuery(f"'in' on {field.name!r} needs a list of values")
        values = [_parameter(field, v, Op.EQ) for v in item.value]
        return column.in_(values) if values else sa.false()
    return _COMPARE[op](column, _parameter(field, item.value, op))


def time_exprs(layer: Layer, table: sa.Table, time: TimeRange | None) -> list[ColumnExpr]:
    """The closed interval on the layer's temporal field."""
    if time is None:
        return []
    if layer.temporal_field is None:
        raise InvalidQuery(f"layer {layer.id!r} has no time field; it takes no datetime filter")
    column = table.c[layer.temporal_field]
    clauses: list[ColumnExpr] = []
    if time.start is not None:
        clauses.append(column >= _instant(time.start, Op.GE))
    if time.end is not None:
        clauses.append(column <= _instant(time.end, Op.LE))
    return clauses


def where(layer: Layer, table: sa.Table, filters: Sequence[Filter] = (),
          time: TimeRange | None = None) -> list[ColumnExpr]:
    """The filters and the time range as a list of conditions (to AND together)."""
    return [filter_expr(layer, table, f) for f in filters] + time_exprs(layer, table, time)


def order_by(layer: Layer, table: sa.Table, sort: Sequence[Sort] = ()) -> list[sa.UnaryExpression[Any]]:
    """The sort keys (NULLs last), then the key ascending."""
    keys = []
    for item in sort:
        column = table.c[lookup(layer, item.field).name]
        keys.append((column.desc() if item.descending else column.asc()).nulls_last())
    keys.append(table.c[layer.key].asc())
    return keys


def geometry_param(geometry: BaseGeometry, srid: int = SRID) -> ColumnExpr:
    """A shapely geometry (2D) as a bound WKB parameter turned into a PostGIS geometry."""
    wkb = shapely.to_wkb(shapely.force_2d(geometry), byte_order=1)
    return sa.func.ST_GeomFromWKB(sa.literal(wkb, sa.LargeBinary()), srid)


def envelope(window: tuple[float, float, float, float]) -> ColumnExpr:
    """A lon/lat box as ``ST_MakeEnvelope`` with bound corners."""
    return sa.func.ST_MakeEnvelope(*(sa.literal(float(v), sa.Double()) for v in window), SRID)


def bbox_geometry(bbox: BBox) -> BaseGeometry:
    """The box as a geometry: a polygon, or the point or line it degenerates to.

    A degenerate box is sent as what it is: a zero-area polygon is not a valid geometry, and GEOS and PostGIS
    disagree on its predicates (PostGIS's point-in-polygon path finds no point in it).
    """
    minx, miny, maxx, maxy = bbox.as_tuple()
    if minx == maxx and miny == maxy:
        return Point(minx, miny)
    if minx == maxx or miny == maxy:
        return LineString([(minx, miny), (maxx, maxy)])
    return bbox.to_polygon()


def _predicate(predicate: Predicate, stored: ColumnExpr, other: ColumnExpr) -> ColumnExpr:
    if predicate is Predicate.INTERSECTS:
        return sa.func.ST_Intersects(stored, other)
    if predicate is Predicate.WITHIN:
        return sa.func.ST_Within(stored, other)
    return sa.func.ST_Contains(stored, other)


def spatial_exprs(table: sa.Table, query: FeatureQuery) -> list[ColumnExpr]:
    """The query's bbox and geometry conditions (validated as the GeoPackage store validates them).

    Without a geometry the predicate applies to the bbox; a bbox given together with a geometry always means
    "intersects the bbox". Every predicate implies an index-assisted ``&&`` on the stored geometry.
    """
    stored = table.c[GEOMETRY_COLUMN]
    checked = conditions(query)  # validates the query geometry; its last condition holds it in 2D
    clauses: list[ColumnExpr] = []
    if query.bbox is not None:
        predicate = Predicate(query.predicate) if query.geometry is None else Predicate.INTERSECTS
        clauses.append(_predicate(predicate, stored, geometry_param(bbox_geometry(query.bbox))))
    if query.geometry is not None:
        clauses.append(_predicate(Predicate(query.predicate), stored, geometry_param(checked[-1].geometry)))
    return clauses
