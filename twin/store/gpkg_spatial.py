"""Spatial pieces of the GeoPackage store: R-tree windows, exact predicates and metric distances.

Reads first select candidates through the R-tree (envelope overlap, a superset: SQLite keeps R-tree bounds as
float32 rounded outwards) and then test the exact predicate with shapely on whole arrays. Distances are measured
in EPSG:4547 (CGCS2000 3-degree Gauss-Krüger, CM 114E), planimetric, after transforming vertices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from pyproj.exceptions import ProjError
from shapely.geometry.base import BaseGeometry

from twin.errors import InvalidQuery
from twin.store.base import METRIC_CRS, STORAGE_CRS, FeatureQuery, Predicate

#: Margin in degrees added around windows computed from metric extents (about 1 mm).
_WINDOW_MARGIN = 1e-8

Window = tuple[float, float, float, float]  # minx, miny, maxx, maxy in lon/lat


@cache
def _transformer(source: str, target: str) -> Transformer:
    # pyproj >= 3.1 transformers are safe to share between threads.
    return Transformer.from_crs(source, target, always_xy=True)


def to_metric(geoms: Any) -> Any:
    """Geometries (one or an array) from lon/lat to EPSG:4547 metres, in 2D."""
    transformer = _transformer(STORAGE_CRS, METRIC_CRS)

    def forward(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, forward)


WORLD: Window = (-180.0, -90.0, 180.0, 90.0)
#: Beyond this many metres a metric window is the whole world (and the projection has long stopped being useful).
_WORLD_M = 5_000_000.0


def metric_window(bounds: tuple[float, float, float, float], margin_m: float) -> Window:
    """The lon/lat box that holds every point of the metric box ``bounds`` grown by ``margin_m``."""
    minx, miny, maxx, maxy = bounds
    if margin_m > _WORLD_M or max(maxx - minx, maxy - miny) > _WORLD_M:
        return WORLD
    try:
        lon0, lat0, lon1, lat1 = _transformer(METRIC_CRS, STORAGE_CRS).transform_bounds(
            minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m, densify_pts=21
        )
    except ProjError:
        return WORLD
    if not all(np.isfinite((lon0, lat0, lon1, lat1))) or lon0 > lon1:
        return WORLD
    return lon0 - _WINDOW_MARGIN, lat0 - _WINDOW_MARGIN, lon1 + _WINDOW_MARGIN, lat1 + _WINDOW_MARGIN


def window_sql(window: Window, alias: str = "r") -> tuple[str, list[float]]:
    """R-tree envelope overlap with ``window`` as SQL and parameters."""
    minx, miny, maxx, maxy = window
    return (f"{alias}.maxx >= ? AND {alias}.minx <= ? AND {alias}.maxy >= ? AND {alias}.miny <= ?",
            [minx, maxx, miny, maxy])


@dataclass(frozen=True)
class Condition:
    """One spatial condition: ``predicate(stored, geometry)``; ``box`` allows the strictly-inside shortcut."""

    geometry: BaseGeometry
    predicate: Predicate
    window: Window
    box: Window | None = None


def conditions(query: FeatureQuery) -> list[Condition]:
    """The spatial conditions of a query.

    The predicate applies to ``query.geometry``; without a geometry it applies to the bbox. A bbox given together
    with a geometry always means "intersects the bbox".
    """
    result: list[Condition] = []
    if query.bbox is not None:
        predicate = query.predicate if query.geometry is None else Predicate.INTERSECTS
        geometry = query.bbox.to_polygon()
        shapely.prepare(geometry)
        box = query.bbox.as_tuple() if predicate in (Predicate.INTERSECTS, Predicate.WITHIN) else None
        result.append(Condition(geometry, predicate, query.bbox.as_tuple(), box))
    if query.geometry is not None:
        geometry = query.geometry
        if not isinstance(geometry, BaseGeometry) or geometry.is_empty:
            raise InvalidQuery("the query geometry must be a non-empty shapely geometry in lon/lat")
        if not shapely.is_valid(geometry):
            raise InvalidQuery(f"the query geometry is invalid: {shapely.is_valid_reason(geometry)}")
        geometry = shapely.force_2d(geometry)
        shapely.prepare(geometry)
        minx, miny, maxx, maxy = geometry.bounds
        result.append(Condition(geometry, Predicate(query.predicate), (minx, miny, maxx, maxy)))
    return result


def needs_geometry(conds: list[Condition]) -> bool:
    """False when every condition can use the envelope shortcut, so only straddling rows need their blobs."""
    return any(c.box is None for c in conds)


def inside_sql(conds: list[Condition], alias: str = "r") -> tuple[str, list[float]]:
    """SQL that is true when a row's R-tree envelope lies strictly inside every shortcut box (false without any)."""
    parts, params = [], []
    for cond in conds:
        if cond.box is None:
            continue
        minx, miny, maxx, maxy = cond.box
        parts.append(f"({alias}.minx > ? AND {alias}.maxx < ? AND {alias}.miny > ? AND {alias}.maxy < ?)")
        params.extend([minx, maxx, miny, maxy])
    return " AND ".join(parts) or "0", params


def exact_mask(conds: list[Condition], geoms: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
    """Which ``geoms`` satisfy every condition.

    ``inside`` flags the rows whose R-tree envelope lies strictly inside every shortcut box (see :func:`inside_sql`):
    they pass the box conditions without a geometry test, and only they may come without a geometry.
    """
    keep = np.ones(len(geoms), dtype=bool)
    for cond in conds:
        if cond.box is not None and inside is not None:
            passed = np.array(inside, dtype=bool)
        else:
            passed = np.zeros(len(geoms), dtype=bool)
        todo = ~passed & keep
        if todo.any():
            passed[todo] = _predicate(cond.predicate, geoms[todo], cond.geometry)
        keep &= passed
    return keep


def _predicate(predicate: Predicate, geoms: np.ndarray, other: BaseGeometry) -> np.ndarray:
    if predicate is Predicate.INTERSECTS:
        return np.asarray(shapely.intersects(other, geoms))
    if predicate is Predicate.WITHIN:
        return np.asarray(shapely.contains(other, geoms))
    return np.asarray(shapely.within(other, geoms))


def metric_point(point: BaseGeometry) -> tuple[float, float]:
    """A lon/lat point in EPSG:4547 metres."""
    x, y = _transformer(STORAGE_CRS, METRIC_CRS).transform(point.x, point.y)
    return float(x), float(y)
