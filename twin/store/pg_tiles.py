"""Mapbox Vector Tiles built in PostGIS: ``ST_AsMVTGeom`` / ``ST_AsMVT``, one MVT layer per requested layer.

For each layer drawn at the tile's zoom, one sub-select finds the features whose geometry overlaps the tile plus
its buffer (GiST ``&&`` on a lon/lat box: Web Mercator maps boxes to boxes, so the box is exact), simplifies lines
and polygons by half a tile unit *before* reprojecting them at low zooms (fewer vertices to transform), transforms
to EPSG:3857 and lets ``ST_AsMVTGeom`` clip, snap to the tile grid and drop what degenerates. The first
``max_features`` surviving features by id are encoded with ``ST_AsMVT``, feature id = the layer key; properties
are the catalogue fields, dates and datetimes as ISO text. The layers' tiles are concatenated in one statement
(an MVT is a sequence of layers, so concatenated tiles are a tile).
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from layers import FieldType, GeometryType, Layer
from twin.store.base import TileRequest
from twin.store.pg_schema import GEOMETRY_COLUMN, table_of

WEB_MERCATOR = 3857
#: Below this zoom, lines and polygons are simplified in lon/lat before they are reprojected.
SIMPLIFY_BELOW_ZOOM = 13
_MVT_GEOMETRY = "mvt_geom"


def drawn_at(layer: Layer, z: int) -> bool:
    """True when the catalogue draws ``layer`` at zoom ``z``."""
    return layer.is_spatial and layer.zoom.min_zoom <= z <= layer.zoom.max_zoom


def _property(layer: Layer, table: sa.Table, name: str) -> sa.ColumnElement[Any]:
    column = table.c[name]
    kind = layer.field(name).type
    if kind is FieldType.DATE:
        return sa.func.to_char(column, "YYYY-MM-DD").label(name)
    if kind is FieldType.DATETIME:
        utc = sa.func.timezone("UTC", column)
        return sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"').label(name)
    return column.label(name)


def _simplify_tolerance(request: TileRequest) -> float:
    """Half a tile unit in degrees of longitude, shrunk by the cosine of the tile's northern edge latitude."""
    n = 2.0**request.z
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * request.y / n))))
    return 0.5 * 360.0 / n / request.extent * math.cos(math.radians(min(abs(lat), 85.0)))


def layer_tile(layer: Layer, request: TileRequest) -> sa.ScalarSelect[Any]:
    """A scalar sub-select: the MVT bytes of one layer for ``request`` (``''`` when it has no feature)."""
    table = table_of(layer)
    z, x, y = (sa.literal(v, sa.Integer()) for v in (request.z, request.x, request.y))
    bounds = sa.func.ST_TileEnvelope(z, x, y)
    margin: sa.ColumnElement[float] = sa.literal(request.buffer / request.extent, sa.Double())
    search = sa.func.ST_Transform(sa.func.ST_TileEnvelope(z, x, y, sa.func.ST_TileEnvelope(0, 0, 0), margin), 4326)
    geom: sa.ColumnElement[Any] = table.c[GEOMETRY_COLUMN]
    if request.z < SIMPLIFY_BELOW_ZOOM and layer.geometry_type is not GeometryType.POINT:
        geom = sa.func.ST_Simplify(geom, sa.literal(_simplify_tolerance(request), sa.Double()), True)
    mvt_geom = sa.func.ST_AsMVTGeom(sa.func.ST_Transform(geom, WEB_MERCATOR), bounds, request.extent,
                                    request.buffer, True).label(_MVT_GEOMETRY)
    key = table.c[layer.key]
    # MATERIALIZED: each feature's tile geometry is computed once (else PostgreSQL evaluates it again after the sort)
    candidates = (sa.select(key.label(layer.key), mvt_geom, *(_property(layer, table, f.name) for f in layer.fields))
                  .where(table.c[GEOMETRY_COLUMN].op("&&")(search)).cte(f"{layer.id}_candidates")
                  .prefix_with("MATERIALIZED"))
    features = (sa.select(candidates).where(candidates.c[_MVT_GEOMETRY].is_not(None))
                .order_by(candidates.c[layer.key]).limit(request.max_features).subquery(f"{layer.id}_features"))
    encoded = sa.func.ST_AsMVT(sa.text(features.name), layer.id, request.extent, _MVT_GEOMETRY, layer.key,
                               type_=sa.LargeBinary())
    return sa.select(sa.func.coalesce(encoded, b"")).select_from(features).scalar_subquery()


def tile_statement(layers: list[Layer], request: TileRequest) -> sa.Select[Any]:
    """One statement returning the whole tile: the layers' MVT bytes concatenated."""
    parts = [layer_tile(layer, request) for layer in layers]
    joined: sa.ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        joined = joined.op("||")(part)
    return sa.select(sa.type_coerce(joined, sa.LargeBinary()))
