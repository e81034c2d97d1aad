"""Nearest-k on the GeoPackage: R-tree envelopes bound the distances, and only the closest are decoded.

The search grows a metric square around the point until it holds ``k`` features and the k-th distance. Inside the
square, each candidate's R-tree envelope gives a lower bound of its distance (envelopes mapped to metres by the
projection's local affine approximation over the layer's extent, less that approximation's measured error); whole
geometries are decoded and measured only for candidates whose bound can still beat the k-th distance found so far.
From far outside the district the square covers all of it, but only the few features along its near edge are read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Point

from layers import Layer
from twin.store import gpkg_geometry
from twin.store.base import METRIC_CRS, STORAGE_CRS, Filter
from twin.store.gpkg_schema import GEOMETRY_COLUMN, quote, rtree_name
from twin.store.gpkg_spatial import WORLD, Window, metric_point, metric_window, to_metric, window_sql
from twin.store.gpkg_sql import where_clause

#: First search radius, metres; it grows until k features are certainly found.
START_M = 100.0
#: Candidates measured exactly in the first round (more than k, so the k-th distance is tight at once).
FIRST_ROUND = 64


@dataclass(frozen=True)
class _Affine:
    """lon/lat → metres near an extent: ``x = a·lon + b·lat + c``, ``y = d·lon + e·lat + f``, off by ≤ ``error_m``."""

    matrix: tuple[float, float, float, float, float, float]
    error_m: float

    def boxes(self, minx: np.ndarray, maxx: np.ndarray, miny: np.ndarray, maxy: np.ndarray) -> np.ndarray:
        """Metric boxes (n × 4: x0, y0, x1, y1) holding the images of lon/lat envelopes."""
        a, b, c, d, e, f = self.matrix
        lon = np.stack([minx, maxx, minx, maxx])
        lat = np.stack([miny, miny, maxy, maxy])
        x, y = a * lon + b * lat + c, d * lon + e * lat + f
        return np.column_stack([x.min(axis=0), y.min(axis=0), x.max(axis=0), y.max(axis=0)])


@lru_cache(maxsize=64)
def _affine(extent: Window) -> _Affine:
    """The least-squares affine map of the projection over ``extent``, with its largest error on a 21 × 21 grid."""
    grid = np.meshgrid(np.linspace(extent[0], extent[2], 21), np.linspace(extent[1], extent[3], 21))
    lon, lat = grid[0].ravel(), grid[1].ravel()
    x, y = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True).transform(lon, lat)
    design = np.column_stack([lon, lat, np.ones_like(lon)])
    (a, b, c), *_ = np.linalg.lstsq(design, x, rcond=None)
    (d, e, f), *_ = np.linalg.lstsq(design, y, rcond=None)
    error = float(np.hypot(design @ (a, b, c) - x, design @ (d, e, f) - y).max())
    # between grid points the error curves smoothly; doubling it and a metre on top keeps the bound safe
    return _Affine((a, b, c, d, e, f), 2 * error + 1.0)


def _envelopes(conn: sqlite3.Connection, layer: Layer, window: Window,
               filters: Sequence[Filter]) -> tuple[np.ndarray, np.ndarray]:
    """Ids and R-tree envelopes (n × 4: minx, maxx, miny, maxy) overlapping ``window`` that pass ``filters``."""
    if filters:
        where, params = where_clause(layer, filters, extra=[window_sql(window)])
        sql = (f"SELECT r.id, r.minx, r.maxx, r.miny, r.maxy FROM {quote(rtree_name(layer))} r "
               f"JOIN {quote(layer.id)} t ON t.{quote(layer.key)} = r.id {where}")
    else:
        condition, params = window_sql(window)
        sql = f"SELECT r.id, r.minx, r.maxx, r.miny, r.maxy FROM {quote(rtree_name(layer))} r WHERE {condition}"
    rows = np.array(conn.execute(sql, params).fetchall(), dtype="float64").reshape(-1, 5)
    return rows[:, 0].astype("int64"), rows[:, 1:]


def _measure(conn: sqlite3.Connection, layer: Layer, ids: np.ndarray, x: float, y: float) -> np.ndarray:
    """Exact metric distances from (x, y) to the features ``ids`` (in that order)."""
    rows = dict(conn.execute(
        f"SELECT {quote(layer.key)}, {quote(GEOMETRY_COLUMN)} FROM {quote(layer.id)} "
        f"WHERE {quote(layer.key)} IN (SELECT value FROM json_each(?))", (json.dumps(ids.tolist()),)).fetchall())
    geoms = gpkg_geometry.decode([rows[i] for i in ids.tolist()])
    return np.asarray(shapely.distance(to_metric(geoms), shapely.Point(x, y)), dtype="float64")


def _closest(conn: sqlite3.Connection, layer: Layer, ids: np.ndarray, bounds: np.ndarray, x: float, y: float,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates nearest (x, y), exactly, measuring only those whose lower ``bounds`` can still place."""
    order = np.argsort(bounds, kind="stable")
    ids, bounds = ids[order], bounds[order]
    measured = min(len(ids), max(k, FIRST_ROUND))
    distances = _measure(conn, layer, ids[:measured], x, y)
    while measured < len(ids):
        kth = np.partition(distances, k - 1)[k - 1] if len(distances) >= k else np.inf
        more = measured + int(np.searchsorted(bounds[measured:], kth, side="right"))
        if more == measured:
            break
        distances = np.concatenate([distances, _measure(conn, layer, ids[measured:more], x, y)])
        measured = more
    ids = ids[:measured]
    best = np.lexsort((ids, distances))[:k]
    return ids[best], distances[best]


def nearest(conn: sqlite3.Connection, layer: Layer, point: Point, k: int, filters: Sequence[Filter],
            extent: Window) -> tuple[np.ndarray, np.ndarray]:
    """Ids and metric distances of the ``k`` features nearest ``point`` (ties by id); ``extent`` holds them all."""
    x, y = metric_point(point)
    affine = _affine(extent)
    radius = START_M
    while True:
        window = metric_window((x, y, x, y), radius) if np.isfinite((x, y)).all() else WORLD
        covers_all = window == WORLD or (window[0] <= extent[0] and window[1] <= extent[1]
                                         and window[2] >= extent[2] and window[3] >= extent[3])
        ids, envelopes = _envelopes(conn, layer, window, filters)
        if len(ids) >= k or covers_all:
            if len(ids) == 0:
                return ids, np.empty(0)
            if not np.isfinite((x, y)).all():  # the projection cannot place the point: measure everything
                bounds = np.zeros(len(ids))
            else:
                boxes = affine.boxes(envelopes[:, 0], envelopes[:, 1], envelopes[:, 2], envelopes[:, 3])
                bounds = np.maximum(_gaps(boxes, x, y) - affine.error_m, 0.0)
            found, distances = _closest(conn, layer, ids, bounds, x, y, k)
            kth = float(distances[-1])
            if covers_all or kth <= radius:
                return found, distances
            radius = kth * (1 + 1e-9) + 1e-6
        else:  # nothing is closer than the extent: jump there rather than growing through empty country
            whole = affine.boxes(*(np.array([v]) for v in (extent[0], extent[2], extent[1], extent[3])))
            radius = max(radius * 4, float(_gaps(whole, x, y)[0]) - affine.error_m + START_M)


def _gaps(boxes: np.ndarray, x: float, y: float) -> np.ndarray:
    """Distances from (x, y) to metric boxes (n × 4: x0, y0, x1, y1); 0 inside."""
    gap_x = np.maximum(np.maximum(boxes[:, 0] - x, x - boxes[:, 2]), 0.0)
    gap_y = np.maximum(np.maximum(boxes[:, 1] - y, y - boxes[:, 3]), 0.0)
    return np.asarray(np.hypot(gap_x, gap_y))
