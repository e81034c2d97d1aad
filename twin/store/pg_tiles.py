"""Mapbox Vector Tiles built in PostGIS: ``ST_AsMVTGeom`` / ``ST_AsMVT``, one MVT layer per requested layer.

For each layer drawn at the tile's zoom, one sub-select finds the features whose geometry overlaps the tile plus
its buffer (GiST ``&&`` on a lon/lat box: Web Mercator maps boxes to boxes, so the box is exact), simplifies lines
and polygons by half a tile unit *before* reprojecting them at low zooms (fewer vertices to transform), transforms
to EPSG:3857 and lets ``ST_AsMVTGeom`` clip, snap to the tile grid and drop what degenerates. The first
``max_features`` surviving features by id are encoded with ``ST_AsMVT``, feature id = the layer key; properties
are the catalogue fields, dates and datetimes as ISO text. The layers' tiles are concatenated in one statement
(an MVT is a sequence of layers, so concatenated tiles are a tile).

Per-request values are named bind parameters, so a statement is compiled once per layer set and simplification
choice (:func:`compiled_tile`) and then sent as plain SQL text: no expression tree is built per tile. A
:class:`PgTileReader` reads the layers' versions and builds the tile on one pooled connection in autocommit mode
(two statements, no BEGIN/ROLLBACK round trips); it reads the versions first, so a tile is never older than the
versions its cache key and ETag carry (each statement sees every write committed before it started).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from layers import FieldType, GeometryType, Layer
from twin.store.base import Store, TileReader, TileRequest
from twin.store.checks import spatial_layer
from twin.store.pg_schema import GEOMETRY_COLUMN, VERSIONS_TABLE, table_of

WEB_MERCATOR = 3857
#: Below this zoom, lines and polygons are simplified in lon/lat before they are reprojected.
SIMPLIFY_BELOW_ZOOM = 13
_MVT_GEOMETRY = "mvt_geom"

def _integer(name: str) -> sa.BindParameter[int]:
    return sa.bindparam(name, type_=sa.Integer())


def _double(name: str) -> sa.BindParameter[float]:
    return sa.bindparam(name, type_=sa.Double())


#: The per-request values of a tile statement, as named bind parameters.
_Z, _X, _Y = _integer("tile_z"), _integer("tile_x"), _integer("tile_y")
_EXTENT, _BUFFER, _LIMIT = _integer("extent"), _integer("buffer"), _integer("max_features")
_MARGIN, _TOLERANCE = _double("margin"), _double("tolerance")
_VERSIONS_SQL = f'SELECT layer_id, version FROM "{VERSIONS_TABLE}" WHERE layer_id = ANY(%(layer_ids)s)'


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


def layer_tile(layer: Layer, simplify: bool) -> sa.ScalarSelect[Any]:
    """A scalar sub-select: the MVT bytes of one layer (``''`` when it has no feature); values are bind parameters."""
    table = table_of(layer)
    bounds = sa.func.ST_TileEnvelope(_Z, _X, _Y)
    search = sa.func.ST_Transform(sa.func.ST_TileEnvelope(_Z, _X, _Y, sa.func.ST_TileEnvelope(0, 0, 0), _MARGIN),
                                  4326)
    geom: sa.ColumnElement[Any] = table.c[GEOMETRY_COLUMN]
    if simplify and layer.geometry_type is not GeometryType.POINT:
        geom = sa.func.ST_Simplify(geom, _TOLERANCE, True)
    mvt_geom = sa.func.ST_AsMVTGeom(sa.func.ST_Transform(geom, WEB_MERCATOR), bounds, _EXTENT, _BUFFER,
                                    True).label(_MVT_GEOMETRY)
    key = table.c[layer.key]
    # MATERIALIZED: each feature's tile geometry is computed once (else PostgreSQL evaluates it again after the sort)
    candidates = (sa.select(key.label(layer.key), mvt_geom, *(_property(layer, table, f.name) for f in layer.fields))
                  .where(table.c[GEOMETRY_COLUMN].op("&&")(search)).cte(f"{layer.id}_candidates")
                  .prefix_with("MATERIALIZED"))
    features = (sa.select(candidates).where(candidates.c[_MVT_GEOMETRY].is_not(None))
                .order_by(candidates.c[layer.key]).limit(_LIMIT).subquery(f"{layer.id}_features"))
    encoded = sa.func.ST_AsMVT(sa.text(features.name), sa.literal(layer.id, sa.Text()), _EXTENT,
                               sa.literal(_MVT_GEOMETRY, sa.Text()), sa.literal(layer.key, sa.Text()),
                               type_=sa.LargeBinary())
    return sa.select(sa.func.coalesce(encoded, b"")).select_from(features).scalar_subquery()


def simplifies(request: TileRequest) -> bool:
    """True when lines and polygons are simplified in lon/lat before they are reprojected (low zooms)."""
    return request.z < SIMPLIFY_BELOW_ZOOM


def tile_statement(layers: Sequence[Layer], simplify: bool) -> sa.Select[Any]:
    """One statement returning the whole tile: the layers' MVT bytes concatenated (values as bind parameters).

    Tiles are many small queries from concurrent requests, where a parallel worker per tile costs more CPU than
    it saves. The second column, ``set_config`` (a PARALLEL UNSAFE function), keeps the planner from any parallel
    plan for the statement, with no extra round trip and no setting left on the connection.
    """
    parts = [layer_tile(layer, simplify) for layer in layers]
    joined: sa.ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        joined = joined.op("||")(part)
    serial = sa.func.set_config("max_parallel_workers_per_gather", "0", True).label("serial")
    return sa.select(sa.type_coerce(joined, sa.LargeBinary()).label("tile"), serial)


@lru_cache(maxsize=256)
def compiled_tile(layer_ids: tuple[str, ...], simplify: bool) -> tuple[str, dict[str, Any]]:
    """The tile statement of these layers as psycopg SQL text, with its constant parameters."""
    compiled = tile_statement([spatial_layer(i) for i in layer_ids], simplify).compile(
        dialect=postgresql.psycopg.dialect())
    request_names = {p.key for p in (_Z, _X, _Y, _EXTENT, _BUFFER, _LIMIT, _MARGIN, _TOLERANCE)}
    constants = {name: value for name, value in compiled.params.items() if name not in request_names}
    return compiled.string, constants


def tile_parameters(request: TileRequest) -> dict[str, Any]:
    """The per-request values of a compiled tile statement."""
    return {"tile_z": request.z, "tile_x": request.x, "tile_y": request.y, "extent": request.extent,
            "buffer": request.buffer, "max_features": request.max_features,
            "margin": request.buffer / request.extent, "tolerance": _simplify_tolerance(request)}


def build(conn: sa.Connection, request: TileRequest) -> bytes:
    """The MVT of ``request`` (``b""`` when no requested layer is drawn at its zoom or it holds no feature)."""
    drawn = tuple(layer_id for layer_id in dict.fromkeys(request.layer_ids)
                  if drawn_at(spatial_layer(layer_id), request.z))
    if not drawn:
        return b""
    sql, constants = compiled_tile(drawn, simplifies(request))
    data = conn.exec_driver_sql(sql, {**constants, **tile_parameters(request)}).one()[0]
    return bytes(data or b"")


def versions(conn: sa.Connection, layer_ids: Sequence[str]) -> tuple[int, ...]:
    """The layers' change counters in one query (0 before a layer's first write)."""
    rows = conn.exec_driver_sql(_VERSIONS_SQL, {"layer_ids": list(layer_ids)}).all()
    found = {row[0]: row[1] for row in rows}
    return tuple(int(found.get(layer_id, 0)) for layer_id in layer_ids)


class PgTileReader(TileReader):
    """Layer versions and tiles read on one pooled connection (see :meth:`twin.store.base.Store.tile_reader`)."""

    def __init__(self, store: Store, conn: sa.Connection):
        super().__init__(store)
        self.conn = conn

    def versions(self, layer_ids: Sequence[str]) -> tuple[int, ...]:
        """The layers' change counters, in order."""
        return versions(self.conn, layer_ids)

    def tile(self, request: TileRequest) -> bytes:
        """The MVT of ``request``, built by PostGIS."""
        return build(self.conn, request)
