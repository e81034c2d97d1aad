"""Typed query-parameter groups of the OGC API – Features routes, each declared once as a small dependency.

Every group parses and checks its parameters and raises ``InvalidQuery`` (400) with a clear message: ``bbox`` and
``bbox-crs``, ``crs``, ``datetime``, ``limit``/``offset``, ``properties``, ``sortby``, ``filter``/``filter-lang``/
``filter-crs`` and the per-property equality filters (``?use=office``). Coordinates given in a CRS whose authority
axis order is latitude/northing first (EPSG:4326, EPSG:4490, EPSG:4547) are read in that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import shapely
from fastapi import Depends, Query, Request
from shapely.geometry.base import BaseGeometry

from api.deps import LayerDep, SettingsDep
from layers import Layer
from twin.cql2 import ast, parse_json, parse_text
from twin.crs import (
    CRS84,
    SUPPORTED_CRS_URIS,
    WGS84,
    CrsRef,
    resolve_crs,
    swap_axes,
    transform_bbox,
    transform_geometry,
)
from twin.errors import InvalidQuery
from twin.store.base import BBox, Filter, Op, Sort, TimeRange
from twin.values import parse_instant

#: Query parameters the items route understands; any other name must be a property of the collection.
ITEMS_PARAMETERS = frozenset({"f", "bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "properties", "sortby",
                              "filter", "filter-lang", "filter-crs"})
_DAY_END = pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)


def supported_crs(spec: str, parameter: str) -> CrsRef:
    """Resolve a CRS parameter; only the CRSs the collections advertise are accepted."""
    ref = resolve_crs(spec)
    if ref.uri not in SUPPORTED_CRS_URIS:
        raise InvalidQuery(f"{parameter}={spec!r} is not offered; use one of: {', '.join(SUPPORTED_CRS_URIS)}")
    return ref


def output_crs(
    layer: LayerDep,
    crs: Annotated[str | None, Query(description="CRS of the response geometries (URI); default CRS84")] = None,
) -> CrsRef:
    """The ``crs`` parameter (OGC API – Features Part 2); a table (no geometry, no ``crs`` list) takes only CRS84."""
    chosen = CRS84 if crs is None else supported_crs(crs, "crs")
    if not layer.is_spatial and chosen != CRS84:
        raise InvalidQuery(f"{layer.id!r} is a table without geometry; it takes no crs")
    return chosen


OutputCrsDep = Annotated[CrsRef, Depends(output_crs)]


def bbox_param(
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (or 6 numbers with heights), in bbox-crs",
                                      examples=["114.02,22.60,114.03,22.62"])] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="CRS of bbox (URI); default CRS84")] = None,
) -> BBox | None:
    """The ``bbox`` in lon/lat, transformed from ``bbox-crs`` (read in that CRS's axis order)."""
    if bbox is None:
        return None
    try:
        values = [float(v) for v in bbox.split(",")]
    except ValueError:
        raise InvalidQuery(f"bbox must be comma-separated numbers, got {bbox!r}") from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidQuery(f"bbox needs 4 (or 6) finite numbers, got {bbox!r}")
    ref = CRS84 if bbox_crs is None else supported_crs(bbox_crs, "bbox-crs")
    if ref.axis_swapped:
        values = [values[1], values[0], values[3], values[2]]
    if values[0] > values[2] or values[1] > values[3]:
        raise InvalidQuery(f"bbox corners must be lower-left then upper-right, got {bbox!r}")
    try:
        return BBox(*transform_bbox(values, ref, WGS84))
    except OverflowError:
        raise InvalidQuery(f"bbox {bbox!r} lies outside the area of {ref.uri}") from None


BBoxDep = Annotated[BBox | None, Depends(bbox_param)]


def _instant_bound(text: str, end: bool) -> pd.Timestamp | None:
    if text in ("", ".."):
        return None
    if len(text) == 10:  # a calendar date stands for its whole UTC day
        try:
            day = pd.Timestamp(text, tz="UTC")
        except ValueError:
            raise InvalidQuery(f"datetime: {text!r} is not a date") from None
        return day + _DAY_END if end else day
    try:
        return parse_instant(text)
    except ValueError as err:
        raise InvalidQuery(f"datetime: {err}") from None


def datetime_param(
    datetime: Annotated[str | None, Query(description="an instant, a date or an interval a/b with '..' for open ends",
                                          examples=["2026-11-25T08:00:00Z/.."])] = None,
) -> TimeRange | None:
    """The ``datetime`` parameter as a closed interval on the collection's temporal property."""
    if datetime is None:
        return None
    text = datetime.strip()
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        if "/" in end_text or (start_text in ("", "..") and end_text in ("", "..")):
            raise InvalidQuery(f"datetime interval {text!r} needs at least one bounded end")
        return TimeRange(_instant_bound(start_text, False), _instant_bound(end_text, True))
    if text in ("", ".."):
        raise InvalidQuery("datetime is empty")
    return TimeRange(_instant_bound(text, False), _instant_bound(text, True))


TimeDep = Annotated[TimeRange | None, Depends(datetime_param)]


@dataclass(frozen=True)
class Paging:
    """``limit`` (clamped to the maximum) and ``offset``."""

    limit: int
    offset: int


def paging(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, description="page size; larger values are clamped to the maximum")] = None,
    offset: Annotated[int, Query(ge=0, description="number of items to skip")] = 0,
) -> Paging:
    """Page size and start; a ``limit`` above ``TWIN_API_MAX_LIMIT`` is clamped to it (as the standard allows)."""
    wanted = settings.api.default_limit if limit is None else limit
    return Paging(min(wanted, settings.api.max_limit), offset)


PagingDep = Annotated[Paging, Depends(paging)]


def properties_param(
    properties: Annotated[str | None, Query(description="comma-separated properties to return")] = None,
) -> tuple[str, ...] | None:
    """The ``properties`` list (empty: geometry only); unknown names are refused by the store."""
    if properties is None:
        return None
    return tuple(p.strip() for p in properties.split(",") if p.strip())


PropertiesDep = Annotated[tuple[str, ...] | None, Depends(properties_param)]


def sortby_param(
    sortby: Annotated[str | None, Query(description="sort keys: +name (ascending) or -name (descending)",
                                        examples=["-height_m,name"])] = None,
) -> tuple[Sort, ...]:
    """The ``sortby`` keys; a ``+`` that arrived as a space (form encoding) still means ascending."""
    if sortby is None:
        return ()
    keys = []
    for raw in sortby.split(","):
        item = raw.strip()
        if not item:
            raise InvalidQuery(f"sortby has an empty key: {sortby!r}")
        descending = item.startswith("-")
        name = item.lstrip("+-").strip()
        if not name:
            raise InvalidQuery(f"sortby key {raw!r} has no property name")
        keys.append(Sort(name, descending))
    return tuple(keys)


SortDep = Annotated[tuple[Sort, ...], Depends(sortby_param)]


def _to_lonlat(geometry: BaseGeometry, ref: CrsRef) -> BaseGeometry:
    if ref.axis_swapped:
        swapped = swap_axes(geometry)
        assert isinstance(swapped, BaseGeometry)
        geometry = swapped
    if ref in (CRS84, WGS84):
        return geometry
    minx, miny, maxx, maxy = geometry.bounds
    span = max(maxx - minx, maxy - miny)
    outside = InvalidQuery(f"a filter geometry lies outside the area of {ref.uri}")
    try:
        if span > 0 and not isinstance(geometry, shapely.Point | shapely.MultiPoint):
            geometry = shapely.segmentize(geometry, span / 64)  # curved edge images in the target CRS
        result = transform_geometry(geometry, ref, WGS84)
    except (OverflowError, shapely.errors.GEOSException):  # coordinates far beyond the CRS (1e300 m in EPSG:3857)
        raise outside from None
    if not np.isfinite(shapely.get_coordinates(result)).all():
        raise outside
    return result


def filter_param(
    filter: Annotated[str | None, Query(description="a CQL2 filter (text or JSON, see filter-lang)",
                                        examples=["height_m > 100 AND use = 'office'"])] = None,
    filter_lang: Annotated[Literal["cql2-text", "cql2-json"] | None,
                           Query(alias="filter-lang", description="cql2-text (default) or cql2-json")] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", description="CRS of the filter geometries (URI)")]
    = None,
) -> ast.Expr | None:
    """The parsed CQL2 filter with its geometry literals in lon/lat."""
    ref = CRS84 if filter_crs is None else supported_crs(filter_crs, "filter-crs")
    if filter is None:
        return None
    expr = parse_json(filter) if filter_lang == "cql2-json" else parse_text(filter)
    return ast.map_geometries(expr, lambda g: _to_lonlat(g, ref)) if ast.has_spatial(expr) else expr


FilterDep = Annotated[ast.Expr | None, Depends(filter_param)]


def property_filters(request: Request, layer: LayerDep) -> tuple[Filter, ...]:
    """``?name=value`` for the collection's properties (repeated: any of the values); other names are refused."""
    filters = []
    params = request.query_params
    for name in dict.fromkeys(params.keys()):
        if name in ITEMS_PARAMETERS:
            continue
        if not _queryable(layer, name):
            raise InvalidQuery(f"unknown query parameter {name!r}: neither an OGC API parameter nor a property of "
                               f"{layer.id!r}")
        values = params.getlist(name)
        filters.append(Filter(name, Op.EQ, values[0]) if len(values) == 1 else Filter(name, Op.IN, values))
    return tuple(filters)


def _queryable(layer: Layer, name: str) -> bool:
    return name == layer.key or layer.has_field(name)


PropertyFiltersDep = Annotated[tuple[Filter, ...], Depends(property_filters)]
