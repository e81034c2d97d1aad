"""Vector tiles for stores that do not build tiles themselves (GeoPackage), from their rows or feature queries.

A tile is a straight line: the tile's bounds (plus buffer) in lon/lat → one bbox read per layer (:class:`LayerRows`:
ids, lon/lat geometries, tile-ready property columns) → Web Mercator → zoom-dependent thinning → the vectorised
encoder. :func:`build_tile_from` takes any reader of rows (the GeoPackage store reads raw rows, no frame);
:func:`build_tile` reads through ``Store.query`` and gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from layers import FieldType, Layer
from twin.crs import WEB_MERCATOR, WGS84, transform_bbox, transform_geometries
from twin.errors import InvalidQuery
from twin.store.base import BBox, FeatureQuery, TileRequest
from twin.store.checks import known_layer
from twin.tiles.encoder import TileLayer, encode_tile, tile_bounds
from twin.tiles.protobuf import Column

if TYPE_CHECKING:
    from twin.store.base import Store


_WORLD_M = 20037508.342789244  # half the Web Mercator world width; buffers stop at the world's edge


def tile_properties(layer: Layer, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The catalogue fields of ``frame`` as tile properties: dates and datetimes become ISO text."""
    properties: dict[str, pd.Series] = {}
    for f in layer.fields:
        if f.name not in frame.columns:
            continue
        column = frame[f.name]
        if f.type is FieldType.DATE:
            column = column.map(lambda d: None if d is None or pd.isna(d) else d.isoformat()).astype(object)
        elif f.type is FieldType.DATETIME:
            text = column.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
            column = text.astype(object).where(column.notna(), None)
        properties[f.name] = column
    return properties


def visible_at(layer: Layer, z: int) -> bool:
    """True when the catalogue draws ``layer`` at zoom ``z``."""
    return layer.zoom.min_zoom <= z <= layer.zoom.max_zoom


def query_bbox(request: TileRequest) -> BBox:
    """The lon/lat box covering the tile and its buffer."""
    minx, miny, maxx, maxy = tile_bounds(request.z, request.x, request.y)
    pad = (maxx - minx) * request.buffer / request.extent
    world = _WORLD_M
    padded = (max(minx - pad, -world), max(miny - pad, -world), min(maxx + pad, world), min(maxy + pad, world))
    lonlat = transform_bbox(padded, WEB_MERCATOR, WGS84)
    return BBox(*lonlat)


def _thin(geoms: np.ndarray, unit_m: float) -> np.ndarray:
    """Mask of geometries worth drawing: polygons and lines at least half a tile unit across."""
    bounds = shapely.bounds(geoms)
    size = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    points = shapely.get_type_id(geoms) == 0
    return points | (size >= unit_m / 2)


@dataclass(frozen=True)
class LayerRows:
    """A layer's features in a tile's query box, in id order: ids, lon/lat geometries, tile property columns.

    Property values are what the tile holds: numbers, booleans, text, dates and datetimes as ISO text (see
    :func:`tile_properties`); ``None``/NaN for missing.
    """

    ids: npt.NDArray[np.int64]
    geometries: npt.NDArray[np.object_]
    properties: dict[str, Column]


#: Reads ``layer``'s features intersecting the lon/lat box, the first ``limit`` by id.
RowReader = Callable[[Layer, BBox, int], LayerRows]


def frame_rows(layer: Layer, frame: pd.DataFrame) -> LayerRows:
    """The rows of a frame returned by ``Store.query``."""
    return LayerRows(frame.index.to_numpy(dtype="int64"), np.asarray(frame.geometry.values),
                     tile_properties(layer, frame))


def build_tile(store: Store, request: TileRequest) -> bytes:
    """Encode ``request`` from ``store.query``; see :meth:`twin.store.base.Store.tile` for the contract."""

    def read(layer: Layer, box: BBox, limit: int) -> LayerRows:
        return frame_rows(layer, store.query(layer.id, FeatureQuery(bbox=box, limit=limit)))

    return build_tile_from(request, read)


def build_tile_from(request: TileRequest, read: RowReader) -> bytes:
    """Encode ``request`` from the rows ``read`` gives; see :meth:`twin.store.base.Store.tile` for the contract."""
    bounds = tile_bounds(request.z, request.x, request.y)
    unit_m = (bounds[2] - bounds[0]) / request.extent
    box = query_bbox(request)
    tile_layers = []
    for layer_id in request.layer_ids:
        layer = known_layer(layer_id)
        if not layer.is_spatial:
            raise InvalidQuery(f"{layer_id!r} is a table without geometry; it has no tiles")
        if not visible_at(layer, request.z):
            continue
        rows = read(layer, box, request.max_features)
        if not len(rows.ids):
            continue
        geoms = transform_geometries(rows.geometries, WGS84, WEB_MERCATOR)
        keep = _thin(geoms, unit_m)
        tile_layers.append(TileLayer(
            name=layer_id,
            geometries=geoms[keep],
            ids=rows.ids[keep].astype("uint64"),
            properties={name: column[keep] for name, column in rows.properties.items()},
        ))
    return encode_tile(tile_layers, bounds, extent=request.extent, buffer=request.buffer,
                       max_features=request.max_features)
