"""Argument checks every store backend runs before it touches its engine, written once so both refuse alike.

Each returns the checked value in the form the backends use (an ``int`` id, a ``Layer``, a validated frame) or
raises :class:`twin.errors.InvalidQuery` / :class:`~twin.errors.NotFound` / :class:`~twin.errors.ValidationFailed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from layers import Field, FieldType, Layer, get_layer
from twin.cql2 import ast as cql2
from twin.errors import InvalidQuery, NotFound, ValidationFailed
from twin.store.base import FeatureQuery, Op


def check_query(layer: Layer, query: FeatureQuery) -> None:
    """Raise ``InvalidQuery`` if ``query`` names fields the layer does not have or asks space/time of a table."""
    known = set(layer.field_names) | {layer.key}
    for name in [f.field for f in query.filters] + [s.field for s in query.sort] + list(query.properties or ()):
        if name not in known:
            raise InvalidQuery(f"layer {layer.id!r} has no field {name!r}")
    if (query.bbox is not None or query.geometry is not None) and not layer.is_spatial:
        raise InvalidQuery(f"{layer.id!r} is a table without geometry; it takes no spatial filter")
    if query.time is not None and layer.temporal_field is None:
        raise InvalidQuery(f"layer {layer.id!r} has no time field; it takes no datetime filter")
    for f in query.filters:
        if f.op is Op.IN and (isinstance(f.value, str) or not isinstance(f.value, Sequence)):
            raise InvalidQuery(f"'in' on {f.field!r} needs a list of values")
    if query.expr is not None:
        geometry = {cql2.GEOMETRY_PROPERTY} if layer.is_spatial else set()
        for name in cql2.property_names(query.expr):
            if name not in known | geometry:
                raise InvalidQuery(f"layer {layer.id!r} has no queryable property {name!r}")
        if not layer.is_spatial and cql2.has_spatial(query.expr):
            raise InvalidQuery(f"{layer.id!r} is a table without geometry; it takes no spatial filter")


def spatial_layer(layer_id: str) -> Layer:
    """The catalogue entry of a layer with geometries; ``InvalidQuery`` for a table, ``NotFound`` if unknown."""
    layer = known_layer(layer_id)
    if not layer.is_spatial:
        raise InvalidQuery(f"{layer_id!r} is a table without geometry")
    return layer


def as_feature_id(value: Any) -> int:
    """A feature id as ``int``; ``InvalidQuery`` for anything that is not an integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidQuery(f"feature ids are integers, got {value!r}")
    return int(value)


def count_cap(cap: Any) -> int | None:
    """Check :meth:`Store.count`'s ``cap``: ``None`` or a positive integer."""
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 1:
        raise InvalidQuery(f"a count cap must be a positive integer, got {cap!r}")
    return int(cap)


def nearest_count(point: Point, k: Any) -> int:
    """Check :meth:`Store.nearest`'s arguments; returns ``k`` as ``int``."""
    if not isinstance(point, Point) or point.is_empty:
        raise InvalidQuery("nearest needs a non-empty shapely Point in lon/lat")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidQuery(f"k must be a positive integer, got {k!r}")
    return int(k)


def distance_metres(geometry: BaseGeometry, distance_m: Any) -> float:
    """Check :meth:`Store.within_distance`'s arguments; returns the distance as ``float``."""
    if not isinstance(geometry, BaseGeometry) or geometry.is_empty:
        raise InvalidQuery("within_distance needs a non-empty shapely geometry in lon/lat")
    try:
        distance = float(distance_m)
    except (TypeError, ValueError):
        raise InvalidQuery(f"distance must be a number of metres, got {distance_m!r}") from None
    if not np.isfinite(distance) or distance < 0:
        raise InvalidQuery(f"distance must be a finite, non-negative number of metres, got {distance_m!r}")
    return distance


def summed_fields(layer: Layer, grid_level: str, sums: Sequence[str]) -> list[Field]:
    """Check :meth:`Store.aggregate_by_grid`'s arguments; returns the numeric fields to sum."""
    levels = get_layer("grids").field("level").choices or ()
    if grid_level not in levels:
        raise InvalidQuery(f"grid level must be one of {', '.join(levels)}, got {grid_level!r}")
    fields = []
    for name in sums:
        if not layer.has_field(name):
            raise InvalidQuery(f"layer {layer.id!r} has no field {name!r}")
        field = layer.field(name)
        if field.type not in (FieldType.INTEGER, FieldType.REAL):
            raise InvalidQuery(f"can only sum numeric fields; {field.name!r} is {field.type.value}")
        fields.append(field)
    return fields


def update_frame(layer: Layer, frame: Any) -> pd.DataFrame:
    """``frame`` for :meth:`Store.update_many` validated: fields only (no geometry), ids as the index."""
    from twin.validate import has_ids, normalize_frame

    source = frame_source(frame, f"update of {layer.id}")
    if isinstance(frame, gpd.GeoDataFrame) or "geometry" in getattr(frame, "columns", ()):
        raise ValidationFailed("update_many changes fields only; move features with update()", source=source,
                               field="geometry")
    normalized = normalize_frame(layer, frame, source=source, partial=True)
    if len(normalized) and not has_ids(layer, normalized):
        raise ValidationFailed(f"update_many needs the feature ids (the index named {layer.key!r})", source=source)
    return normalized


def frame_source(frame: Any, default: str) -> str:
    """The name errors give for an input frame: ``frame.attrs["source"]`` (e.g. the imported file) or ``default``."""
    attrs = getattr(frame, "attrs", None)
    return str(attrs["source"]) if isinstance(attrs, dict) and attrs.get("source") else default


def known_layer(layer_id: str) -> Layer:
    """The catalogue entry for ``layer_id``, or ``NotFound``."""
    try:
        return get_layer(layer_id)
    except KeyError as err:
        raise NotFound(str(err.args[0])) from None
