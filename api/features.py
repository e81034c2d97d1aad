"""GeoJSON documents from store frames, built column by column and serialised with orjson; queryables schemas.

Geometries are transformed to the output CRS in one vectorised pass (axes swapped for CRSs whose authority order is
latitude/northing first) and written by GEOS (``shapely.to_geojson``) into ``orjson.Fragment`` pieces. Property
values are converted one column at a time: dates as ``YYYY-MM-DD``, instants as RFC 3339 UTC text with
milliseconds, NaN/NA as ``null``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import shapely

from layers import FieldType, GeometryType, Layer
from twin.cql2.ast import GEOMETRY_PROPERTY
from twin.crs import WGS84, CrsRef, swap_axes, transform_geometries

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_SCHEMA_TYPES = {FieldType.INTEGER: "integer", FieldType.REAL: "number", FieldType.TEXT: "string",
                 FieldType.BOOLEAN: "boolean", FieldType.DATE: "string", FieldType.DATETIME: "string"}
_GEOMETRY_FORMATS = {GeometryType.POINT: "geometry-point", GeometryType.LINESTRING: "geometry-linestring",
                     GeometryType.POLYGON: "geometry-polygon", GeometryType.MULTIPOLYGON: "geometry-multipolygon"}


def column_values(layer: Layer, name: str, column: pd.Series) -> list[Any]:
    """A frame column as JSON-ready Python values (``None`` for every kind of missing value)."""
    kind = layer.field(name).type
    if kind is FieldType.REAL:
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        out = numbers.astype(object)
        out[~np.isfinite(numbers)] = None
        return list(out.tolist())
    if kind is FieldType.DATETIME:
        stamps = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ms]")
        text = np.char.add(np.datetime_as_string(stamps, unit="ms"), "Z").astype(object)
        text[np.isnat(stamps)] = None
        return list(text.tolist())
    if kind is FieldType.DATE:
        return [None if v is None or v is pd.NaT or v != v else v.isoformat()
                for v in column.to_numpy(dtype=object)]
    return list(column.to_numpy(dtype=object, na_value=None).tolist())


def geometry_fragments(geoms: np.ndarray, crs: CrsRef) -> list[orjson.Fragment]:
    """GeoJSON geometry objects (as pre-serialised fragments) of lon/lat geometries, output in ``crs``."""
    if len(geoms) == 0:
        return []
    out = transform_geometries(geoms, WGS84, crs) if crs != WGS84 else np.asarray(geoms, dtype=object)
    if crs.axis_swapped:
        out = np.asarray(swap_axes(out), dtype=object)
    return [orjson.Fragment(text) for text in shapely.to_geojson(out).tolist()]


def features(layer: Layer, frame: pd.DataFrame, crs: CrsRef) -> list[dict[str, Any]]:
    """GeoJSON Feature objects of a store frame (tables get ``"geometry": null``)."""
    names = [c for c in frame.columns if c != "geometry" and layer.has_field(c)]
    columns = [column_values(layer, name, frame[name]) for name in names]
    ids = frame.index.to_numpy(dtype="int64").tolist()
    if layer.is_spatial and "geometry" in frame.columns:
        geometries: list[Any] = geometry_fragments(frame.geometry.to_numpy(), crs)
    else:
        geometries = [None] * len(ids)
    properties = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)] if names else \
        [{} for _ in ids]
    return [{"type": "Feature", "id": fid, "geometry": geometry, "properties": props}
            for fid, geometry, props in zip(ids, geometries, properties, strict=True)]


def dumps(document: Any) -> bytes:
    """Serialise a document (with fragments and numpy values) to JSON bytes."""
    return orjson.dumps(document, option=_OPTIONS)


def queryables(layer: Layer, url: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the properties a filter on ``layer`` may use (OGC API – Features Part 3)."""
    props: dict[str, Any] = {"id": {"title": "Id", "type": "integer", "x-ogc-role": "id"}}
    if layer.is_spatial:
        props[GEOMETRY_PROPERTY] = {"title": "Geometry", "format": _GEOMETRY_FORMATS[layer.geometry_type],
                                    "x-ogc-role": "primary-geometry"}
    for field in layer.fields:
        schema: dict[str, Any] = {"title": f"{field.title_zh} · {field.title_en}", "type": _SCHEMA_TYPES[field.type]}
        if field.description:
            schema["description"] = field.description
        if field.type is FieldType.DATE:
            schema["format"] = "date"
        if field.type is FieldType.DATETIME:
            schema["format"] = "date-time"
        if field.choices:
            schema["enum"] = list(field.choices)
        if field.minimum is not None:
            schema["minimum"] = field.minimum
        if field.maximum is not None:
            schema["maximum"] = field.maximum
        if field.name == layer.temporal_field:
            schema["x-ogc-role"] = "primary-instant"
        props[field.name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": f"{layer.title_zh} · {layer.title_en}",
        "properties": props,
        "additionalProperties": False,
    }
