"""Literal builders shared by the CQL2 text and JSON readers: geometries, bounding boxes, dates and instants.

Values raise ``ValueError`` with a user-facing reason; each reader turns it into a syntax error at its position.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any

import shapely
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
    box,
    shape,
)
from shapely.geometry.base import BaseGeometry

from twin.values import parse_instant

GEOMETRY_TYPES = frozenset(
    {"POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"}
)
_GEOJSON_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
                  "GeometryCollection"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date_value(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` calendar date."""
    if not _DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def instant_value(text: str) -> dt.datetime:
    """An RFC 3339 date-time with a timezone (``Z`` or an offset), as an aware UTC datetime (microseconds)."""
    stamp = parse_instant(text)
    return stamp.floor("us").to_pydatetime()


def make_bbox(values: Sequence[float]) -> BaseGeometry:
    """The polygon of ``BBOX(minx, miny, maxx, maxy)`` (a 6-number box drops its z values)."""
    numbers = [float(v) for v in values]
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise ValueError(f"BBOX needs 4 or 6 numbers, got {len(values)}")
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("BBOX values must be finite")
    minx, miny, maxx, maxy = numbers
    if minx > maxx or miny > maxy:
        raise ValueError(f"BBOX must be minx, miny, maxx, maxy with min <= max, got {numbers}")
    return box(minx, miny, maxx, maxy)


def build_geometry(parsed: tuple[str, Any]) -> BaseGeometry:
    """A shapely geometry from the reader's ``(WKT TYPE, nested coordinates)``; it must be valid."""
    geometry = _build(parsed)
    return _checked(geometry)


def _build(parsed: tuple[str, Any]) -> BaseGeometry:
    kind, coords = parsed
    try:
        if kind == "POINT":
            return Point(coords)
        if kind == "LINESTRING":
            return LineString(coords)
        if kind == "POLYGON":
            return Polygon(coords[0], coords[1:])
        if kind == "MULTIPOINT":
            return MultiPoint(coords)
        if kind == "MULTILINESTRING":
            return MultiLineString(coords)
        if kind == "MULTIPOLYGON":
            return MultiPolygon([Polygon(p[0], p[1:]) for p in coords])
        return GeometryCollection([_build(member) for member in coords])
    except (ValueError, TypeError, shapely.errors.GEOSException) as err:
        raise ValueError(f"invalid {kind}: {err}") from None


def from_geojson(value: dict[str, Any]) -> BaseGeometry:
    """A shapely geometry from a GeoJSON geometry object; it must be valid."""
    if value.get("type") not in _GEOJSON_TYPES:
        raise ValueError(f"unknown geometry type {value.get('type')!r}")
    try:
        geometry = shape(value)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.GEOSException) as err:
        raise ValueError(f"invalid GeoJSON {value.get('type')}: {err}") from None
    return _checked(geometry)


def _checked(geometry: BaseGeometry) -> BaseGeometry:
    if geometry.is_empty:
        raise ValueError("empty geometries are not supported")
    if not math.isfinite(sum(geometry.bounds)):
        raise ValueError("geometry coordinates must be finite")
    if not shapely.is_valid(geometry):
        raise ValueError(f"invalid geometry: {shapely.is_valid_reason(geometry)}")
    return geometry
