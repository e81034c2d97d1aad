"""Nearest-k on the GeoPackage: a best-first search over grid cells, with envelopes bounding the distances.

The layer's extent, in metres, is cut into a grid of cells; cells are read (one R-tree window each) in the order of
their distance from the point. Each candidate's R-tree envelope gives a lower bound of its distance (mapped to metres
by the projection's affine approximation over the extent, less that approximation's measured error), and whole
geometries are decoded and measured only for candidates whose bound can still beat the k-th distance found so far.
The search stops when the k-th distance is no farther than the next unread cell: from far outside the district only
the cells along its near edge are read, and inside it only those around the point.
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
from twin.store.gpkg_spatial import WORLD, Window, metric_point, to_metric, window_sql
from twin.store.gpkg_sql import where_clause

#: Grid cells per side of the layer's extent.
CELLS = 48
#: Cells read between two checks of the k-th distance.
CELLS_PER_ROUND = 4
#: Candidates measured at once while fewer than k are (more than k, so the k-th distance is tight at once).
FIRST_ROUND = 16


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

    def windows(self, boxes: np.ndarray) -> np.ndarray:
        """lon/lat windows (n × 4) holding every point whose metres fall in ``boxes`` (n × 4: x0, y0, x1, y1).

        Each box grows by ``error_m`` before the inverse map: the true point maps to within that of its image.
        """
        a, b, c, d, e, f = self.matrix
        inverse = np.linalg.inv(np.array([[a, b], [d, e]]))
        grown = boxes + np.array([-1, -1, 1, 1]) * self.error_m
        corners_x = np.stack([grown[:, 0], grown[:, 2], grown[:, 0], grown[:, 2]]) - c
        corners_y = np.stack([grown[:, 1], grown[:, 1], grown[:, 3], grown[:, 3]]) - f
        lon = inverse[0, 0] * corners_x + inverse[0, 1] * corners_y
        lat = inverse[1, 0] * corners_x + inverse[1, 1] * corners_y
        return np.column_stack([lon.min(axis=0), lat.min(axis=0), lon.max(axis=0), lat.max(axis=0)])


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


class _Candidates:
    """Features found so far, with lower bounds of their distances; the measured ones with exact distances."""

    def __init__(self, conn: sqlite3.Connection, layer: Layer, x: float, y: float, k: int):
        self.conn, self.layer, self.x, self.y, self.k = conn, layer, x, y, k
        self.seen: set[int] = set()
        self.waiting_ids = np.empty(0, dtype="int64")
        self.waiting_bounds = np.empty(0)
        self.ids = np.empty(0, dtype="int64")
        self.distances = np.empty(0)

    def add(self, ids: np.ndarray, bounds: np.ndarray) -> None:
        """Candidates from one more cell (those already found are skipped)."""
        fresh = np.fromiter((i not in self.seen for i in ids.tolist()), dtype=bool, count=len(ids))
        self.seen.update(ids[fresh].tolist())
        self.waiting_ids = np.concatenate([self.waiting_ids, ids[fresh]])
        self.waiting_bounds = np.concatenate([self.waiting_bounds, bounds[fresh]])

    def kth(self) -> float:
        """The k-th smallest measured distance (infinite while fewer than k are measured)."""
        if len(self.distances) < self.k:
            return float("inf")
        return float(np.partition(self.distances, self.k - 1)[self.k - 1])

    def measure(self) -> None:
        """Measure waiting candidates, closest bound first, while their bound can still beat the k-th distance."""
        while len(self.waiting_ids):
            order = np.argsort(self.waiting_bounds, kind="stable")
            ids, bounds = self.waiting_ids[order], self.waiting_bounds[order]
            if len(self.distances) < self.k:
                take = max(self.k - len(self.distances), FIRST_ROUND)
            else:
                take = int(np.searchsorted(bounds, self.kth(), side="right"))
            if take == 0:
                break
            taken = ids[:take]
            self.ids = np.concatenate([self.ids, taken])
            self.distances = np.concatenate([self.distances, _measure(self.conn, self.layer, taken, self.x, self.y)])
            self.waiting_ids, self.waiting_bounds = ids[take:], bounds[take:]

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest measured (ties by id)."""
        order = np.lexsort((self.ids, self.distances))[: self.k]
        return self.ids[order], self.distances[order]


def nearest(conn: sqlite3.Connection, layer: Layer, point: Point, k: int, filters: Sequence[Filter],
            extent: Window) -> tuple[np.ndarray, np.ndarray]:
    """Ids and metric distances of the ``k`` features nearest ``point`` (ties by id); ``extent`` holds them all."""
    x, y = metric_point(point)
    found = _Candidates(conn, layer, x, y, k)
    if not np.isfinite((x, y)).all():  # the projection cannot place the point: measure everything
        ids, _ = _envelopes(conn, layer, WORLD, filters)
        found.add(ids, np.zeros(len(ids)))
        found.measure()
        return found.best()
    affine = _affine(extent)
    whole = affine.boxes(*(np.array([v]) for v in (extent[0], extent[2], extent[1], extent[3])))[0]
    whole = whole + np.array([-1, -1, 1, 1]) * affine.error_m  # holds every feature, in metres
    xs, ys = np.linspace(whole[0], whole[2], CELLS + 1), np.linspace(whole[1], whole[3], CELLS + 1)
    grid = np.meshgrid(np.arange(CELLS), np.arange(CELLS))
    column, row = grid[0].ravel(), grid[1].ravel()
    cells = np.column_stack([xs[column], ys[row], xs[column + 1], ys[row + 1]])
    gaps = _gaps(cells, x, y)
    order = np.argsort(gaps, kind="stable")
    windows = affine.windows(cells[order])
    for start in range(0, len(order), CELLS_PER_ROUND):
        for window in windows[start:start + CELLS_PER_ROUND]:
            ids, envelopes = _envelopes(conn, layer, (window[0], window[1], window[2], window[3]), filters)
            if len(ids):
                boxes = affine.boxes(envelopes[:, 0], envelopes[:, 1], envelopes[:, 2], envelopes[:, 3])
                found.add(ids, np.maximum(_gaps(boxes, x, y) - affine.error_m, 0.0))
        found.measure()
        following = start + CELLS_PER_ROUND
        if following >= len(order) or found.kth() <= gaps[order[following]]:
            break  # nothing unread can be closer than the k-th found
    return found.best()


def _gaps(boxes: np.ndarray, x: float, y: float) -> np.ndarray:
    """Distances from (x, y) to metric boxes (n × 4: x0, y0, x1, y1); 0 inside."""
    gap_x = np.maximum(np.maximum(boxes[:, 0] - x, x - boxes[:, 2]), 0.0)
    gap_y = np.maximum(np.maximum(boxes[:, 1] - y, y - boxes[:, 3]), 0.0)
    return np.asarray(np.hypot(gap_x, gap_y))
