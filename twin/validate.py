"""Validate and coerce data against the layer catalogue before any store writes it.

Every store backend calls :func:`normalize_frame` (inserts, bulk loads, imports) and :func:`normalize_changes`
(updates), so a bad value is refused with the same one-line message whatever the engine. A refused write raises
:class:`twin.errors.ValidationFailed` naming the source, the 1-based row (and the id, when the input carries ids)
and the field.

The dtypes of a normalized frame are the ones the whole project relies on:

=========  =====================================================================
INTEGER    pandas ``"Int64"``
REAL       ``float64``
TEXT       pandas ``"str"``
BOOLEAN    pandas ``"boolean"``
DATE       ``datetime.date`` objects (object dtype); ISO ``YYYY-MM-DD`` strings are accepted
DATETIME   ``datetime64[ms, UTC]``; RFC 3339 strings with an offset are accepted, naive values are refused
=========  =====================================================================

Times are kept to the millisecond, the precision of the GeoPackage datetime format. Geometries come out in
EPSG:4326 in a column called ``geometry``; Polygons given to a MultiPolygon layer are promoted.

The index of the result is ``int64`` named after ``layer.key`` when the input gives ids (an ``id`` column, or an
index already named ``id``); otherwise it is an unnamed ``RangeIndex`` and the store assigns the ids
(see :func:`has_ids`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pandas.api import types as ptypes
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from layers import Field, FieldType, GeometryType, Layer
from twin.errors import ValidationFailed
from twin.values import RFC3339, coerce_value

STORAGE_CRS = "EPSG:4326"
GEOMETRY = "geometry"
#: shapely type ids a layer accepts: Point 0, LineString 1, Polygon 3, MultiPolygon 6.
_ACCEPTED_TYPES = {
    GeometryType.POINT: {0},
    GeometryType.LINESTRING: {1},
    GeometryType.POLYGON: {3},
    GeometryType.MULTIPOLYGON: {3, 6},
}
_TYPE_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
               "GeometryCollection")


class _Bad(Exception):
    """A refused value at 0-based ``position``; converted to ``ValidationFailed`` by the caller."""

    def __init__(self, position: int, reason: str):
        super().__init__(reason)
        self.position = position
        self.reason = reason


def has_ids(layer: Layer, frame: pd.DataFrame) -> bool:
    """True when a normalized ``frame`` carries its own ids (an index named ``layer.key``)."""
    return frame.index.name == layer.key


def _column_elementwise(field: Field, series: pd.Series) -> pd.Series:
    values: list[Any] = []
    for position, value in enumerate(series.to_numpy(dtype=object)):
        try:
            values.append(coerce_value(field, value))
        except ValueError as err:
            raise _Bad(position, str(err)) from None
    return _typed(field, values)


def _typed(field: Field, values: list[Any]) -> pd.Series:
    """A column of ``field``'s dtype from already-coerced Python values (``None`` for nulls)."""
    kind = field.type
    if kind is FieldType.INTEGER:
        return pd.Series(pd.array(values, dtype="Int64"))
    if kind is FieldType.REAL:
        return pd.Series(np.array([np.nan if v is None else v for v in values], dtype="float64"))
    if kind is FieldType.TEXT:
        return pd.Series(values, dtype="str")
    if kind is FieldType.BOOLEAN:
        return pd.Series(pd.array(values, dtype="boolean"))
    if kind is FieldType.DATE:
        return pd.Series(np.array(values, dtype=object), dtype=object)
    return pd.Series(pd.to_datetime(pd.Series(values, dtype=object), utc=True)).dt.as_unit("ms")


def _nulls(field: Field, length: int) -> pd.Series:
    """An all-null column of ``field``'s dtype."""
    kind = field.type
    if kind is FieldType.INTEGER:
        return pd.Series(pd.arrays.IntegerArray(np.zeros(length, dtype="int64"), np.ones(length, dtype=bool)))
    if kind is FieldType.BOOLEAN:
        return pd.Series(pd.arrays.BooleanArray(np.zeros(length, dtype=bool), np.ones(length, dtype=bool)))
    if kind is FieldType.REAL:
        return pd.Series(np.full(length, np.nan))
    if kind is FieldType.DATETIME:
        return pd.Series(np.full(length, np.datetime64("NaT"), dtype="datetime64[ms]")).dt.tz_localize("UTC")
    if kind is FieldType.DATE:
        return pd.Series(np.full(length, None, dtype=object), dtype=object)
    return pd.Series(np.full(length, np.nan), dtype="str")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _normalize_column(field: Field, series: pd.Series) -> pd.Series:
    """``series`` coerced to ``field``'s dtype and checked; raises ``_Bad`` at the first refused value."""
    kind, dtype = field.type, series.dtype
    null = series.isna().to_numpy()
    out: pd.Series | None = None
    if kind in (FieldType.INTEGER, FieldType.REAL) and ptypes.is_bool_dtype(dtype) and not null.all():
        raise _Bad(_first(~null), f"expected a number, got the boolean {series[~null].iloc[0]!r}")
    if kind is FieldType.INTEGER and ptypes.is_integer_dtype(dtype):
        out = series.astype("Int64")
    elif kind is FieldType.INTEGER and ptypes.is_float_dtype(dtype):
        number = series.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~null & (~np.isfinite(number) | (np.trunc(number) != number) | (np.abs(number) >= 2.0**63))
        if bad.any():
            raise _Bad(_first(bad), f"{number[bad][0]!r} is not an integer")
        out = pd.Series(pd.arrays.IntegerArray(np.where(null, 0, number).astype("int64"), null))
    elif kind is FieldType.REAL and ptypes.is_numeric_dtype(dtype) and not ptypes.is_bool_dtype(dtype):
        number = series.to_numpy(dtype="float64", na_value=np.nan)
        if np.isinf(number).any():
            raise _Bad(_first(np.isinf(number)), "infinity is not a finite number")
        out = pd.Series(number)
    elif kind is FieldType.TEXT and (ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype)) and (
        ptypes.infer_dtype(series, skipna=True) in ("string", "empty")
    ):
        out = series.astype("str")
    elif kind is FieldType.BOOLEAN and ptypes.is_bool_dtype(dtype):
        out = series.astype("boolean")
    elif kind is FieldType.DATETIME and isinstance(dtype, pd.DatetimeTZDtype):
        out = series.dt.tz_convert("UTC").dt.floor("ms").dt.as_unit("ms")
    elif kind is FieldType.DATETIME and ptypes.is_datetime64_dtype(dtype) and not null.all():
        raise _Bad(_first(~null), f"naive date-time {series[~null].iloc[0]} has no timezone (use Z for UTC)")
    elif kind is FieldType.DATETIME and ptypes.infer_dtype(series, skipna=True) == "string":
        text = series.astype("str")
        stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        bad = ~null & (~text.str.fullmatch(RFC3339).fillna(False).to_numpy(dtype=bool) | stamps.isna().to_numpy())
        if bad.any():
            raise _Bad(_first(bad), f"{text[bad].iloc[0]!r} is not an RFC 3339 date-time with a timezone")
        out = stamps.dt.floor("ms").dt.as_unit("ms")
    if out is None:
        out = _column_elementwise(field, series)
    out = out.reset_index(drop=True)
    _check_domain(field, out)
    return out


def _check_domain(field: Field, column: pd.Series) -> None:
    present = column.notna().to_numpy()
    if field.choices is not None:
        bad = present & ~column.isin(field.choices).to_numpy(dtype=bool)
        if bad.any():
            raise _Bad(_first(bad), f"{column[bad].iloc[0]!r} is not one of {', '.join(field.choices)}")
    if field.type in (FieldType.INTEGER, FieldType.REAL):
        number = column.to_numpy(dtype="float64", na_value=np.nan)
        if field.minimum is not None and (below := present & (number < field.minimum)).any():
            raise _Bad(_first(below), f"{column[below].iloc[0]} is below the minimum {field.minimum:g}")
        if field.maximum is not None and (above := present & (number > field.maximum)).any():
            raise _Bad(_first(above), f"{column[above].iloc[0]} is above the maximum {field.maximum:g}")


def _normalize_geometry(layer: Layer, series: gpd.GeoSeries) -> gpd.GeoSeries:
    """Geometries checked against the layer and returned in EPSG:4326; raises ``_Bad`` for the first bad one."""
    if series.crs is None:
        raise _Bad(-1, "the geometries have no CRS; set one (EPSG:4326 for lon/lat)")
    geoms = np.asarray(series.to_numpy(), dtype=object)
    for mask, reason in ((shapely.is_missing(geoms), "missing geometry"), (shapely.is_empty(geoms), "empty geometry")):
        if mask.any():
            raise _Bad(_first(mask), reason)
    type_ids = shapely.get_type_id(geoms)
    bad_type = ~np.isin(type_ids, list(_ACCEPTED_TYPES[layer.geometry_type]))
    if bad_type.any():
        got = _TYPE_NAMES[type_ids[bad_type][0]]
        raise _Bad(_first(bad_type), f"{got} given, layer {layer.id!r} stores {layer.geometry_type.value}")
    has_z = shapely.has_z(geoms)
    if layer.has_z and not has_z.all():
        raise _Bad(_first(~has_z), f"geometry has no z coordinate; layer {layer.id!r} stores 3D geometries")
    if not layer.has_z and has_z.any():
        raise _Bad(_first(has_z), f"geometry has a z coordinate; layer {layer.id!r} stores 2D geometries")
    if not CRS.from_user_input(series.crs).equals(STORAGE_CRS, ignore_axis_order=True):
        geoms = np.asarray(series.to_crs(STORAGE_CRS).to_numpy(), dtype=object)
    if not np.isfinite(shapely.get_coordinates(geoms, include_z=layer.has_z)).all():
        coords, index = shapely.get_coordinates(geoms, include_z=layer.has_z, return_index=True)
        raise _Bad(int(index[~np.isfinite(coords).all(axis=1)][0]), "geometry has non-finite coordinates")
    bounds = shapely.bounds(geoms)
    outside = (bounds[:, 0] < -180) | (bounds[:, 2] > 180) | (bounds[:, 1] < -90) | (bounds[:, 3] > 90)
    if outside.any():
        raise _Bad(_first(outside), "coordinates outside lon/lat range; is the CRS right?")
    valid = shapely.is_valid(geoms)
    if not valid.all():
        position = _first(~valid)
        raise _Bad(position, f"invalid geometry: {shapely.is_valid_reason(geoms[position])}")
    if layer.geometry_type is GeometryType.MULTIPOLYGON and (polygons := type_ids == 3).any():
        geoms = geoms.copy()
        geoms[polygons] = shapely.multipolygons(geoms[polygons], indices=np.arange(int(polygons.sum())))
    return gpd.GeoSeries(geoms, crs=STORAGE_CRS, name=GEOMETRY)


def _geometry_column(frame: pd.DataFrame) -> str | None:
    if isinstance(frame, gpd.GeoDataFrame) and frame.active_geometry_name in frame.columns:
        return str(frame.active_geometry_name)
    return None


def _raise(err: _Bad, source: str, field: str | None, ids: np.ndarray | None) -> None:
    row = err.position + 1 if err.position >= 0 else None
    reason = err.reason
    if ids is not None and err.position >= 0:
        reason = f"{reason} (id {ids[err.position]})"
    raise ValidationFailed(reason, source=source, row=row, field=field) from None


def _ids(layer: Layer, frame: pd.DataFrame, source: str) -> np.ndarray | None:
    if layer.key in frame.columns:
        raw = frame[layer.key].reset_index(drop=True)
    elif frame.index.name == layer.key:
        raw = pd.Series(frame.index)
    else:
        return None
    try:
        ids = _normalize_column(Field(layer.key, FieldType.INTEGER, "", "", minimum=1), raw)
    except _Bad as err:
        _raise(err, source, layer.key, None)
    if ids.isna().any():
        raise ValidationFailed("missing id", source=source, row=_first(ids.isna().to_numpy()) + 1, field=layer.key)
    values = ids.to_numpy(dtype="int64")
    duplicated = pd.Series(values).duplicated().to_numpy()
    if duplicated.any():
        position = _first(duplicated)
        raise ValidationFailed(f"duplicate id {values[position]}", source=source, row=position + 1, field=layer.key)
    return values


def normalize_frame(
    layer: Layer, frame: pd.DataFrame, *, source: str = "input", partial: bool = False
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Check ``frame`` against ``layer`` and return it coerced to the catalogue's types (see the module docs).

    With ``partial`` the frame may omit fields (required ones too); the result then holds only the given
    columns. Raises ``ValidationFailed`` naming ``source``, the row and the field of the first problem.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValidationFailed(f"expected a DataFrame or GeoDataFrame, got {type(frame).__name__}", source=source)
    geometry_name = _geometry_column(frame)
    allowed = {*layer.field_names, layer.key} | ({geometry_name} if geometry_name else set())
    for column in frame.columns:
        if column not in allowed:
            hint = "" if layer.is_spatial or column != GEOMETRY else f" ({layer.id!r} is a table without geometry)"
            if layer.is_spatial and column == GEOMETRY:
                hint = " (a plain column, not a GeoDataFrame geometry: the geometries have no CRS)"
            raise ValidationFailed(f"unknown column for layer {layer.id!r}{hint}", source=source, field=str(column))
    if geometry_name and not layer.is_spatial:
        raise ValidationFailed(f"layer {layer.id!r} is a table without geometry", source=source, field=geometry_name)
    ids = _ids(layer, frame, source)
    columns: dict[str, pd.Series] = {}
    for field in layer.fields:
        if field.name not in frame.columns:
            if field.required and not partial:
                raise ValidationFailed("required field is missing", source=source, field=field.name)
            if partial:
                continue
            column = _nulls(field, len(frame))
        else:
            try:
                column = _normalize_column(field, frame[field.name])
            except _Bad as err:
                _raise(err, source, field.name, ids)
        if field.required and (missing := column.isna().to_numpy()).any():
            _raise(_Bad(_first(missing), "required value is missing"), source, field.name, ids)
        columns[field.name] = column
    index = pd.Index(ids, dtype="int64", name=layer.key) if ids is not None else pd.RangeIndex(len(frame))
    out = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    if not layer.is_spatial:
        out.index = index
        return out
    if geometry_name is None:
        if not partial:
            raise ValidationFailed(f"no geometry column; layer {layer.id!r} stores {layer.geometry_type.value}",
                                   source=source, field=GEOMETRY)
        out.index = index
        return out
    try:
        geometry = _normalize_geometry(layer, frame[geometry_name].reset_index(drop=True))
    except _Bad as err:
        _raise(err, source, GEOMETRY, ids)
    result = gpd.GeoDataFrame(out, geometry=geometry, crs=STORAGE_CRS)
    result.index = index
    return result


def normalize_changes(
    layer: Layer, changes: Mapping[str, Any], *, source: str = "update", feature_id: int | None = None
) -> dict[str, Any]:
    """Check an update (field → value, ``geometry`` → shapely geometry in lon/lat) and return coerced values.

    Values come back as Python objects of the field's type (``int``, ``float``, ``str``, ``bool``,
    ``datetime.date``, a UTC ``pandas.Timestamp``, a shapely geometry) or ``None`` to clear an optional field.
    """
    where = source if feature_id is None else f"{source} of id {feature_id}"
    if not isinstance(changes, Mapping):
        raise ValidationFailed(f"changes must be a mapping of field to value, got {type(changes).__name__}",
                               source=where)
    result: dict[str, Any] = {}
    for name, value in changes.items():
        if name == layer.key:
            raise ValidationFailed("the id of a feature cannot be changed", source=where, field=name)
        if name == GEOMETRY and layer.is_spatial:
            if not isinstance(value, BaseGeometry):
                reason = "missing geometry" if value is None else f"expected a shapely geometry, got {value!r}"
                raise ValidationFailed(reason, source=where, field=name)
            try:
                result[name] = _normalize_geometry(layer, gpd.GeoSeries([value], crs=STORAGE_CRS)).iloc[0]
            except _Bad as err:
                raise ValidationFailed(err.reason, source=where, field=name) from None
            continue
        if not layer.has_field(name):
            raise ValidationFailed(f"unknown field for layer {layer.id!r}", source=where, field=name)
        field = layer.field(name)
        try:
            column = _normalize_column(field, pd.Series([value], dtype=object))
        except _Bad as err:
            raise ValidationFailed(err.reason, source=where, field=name) from None
        coerced = coerce_value(field, column.iloc[0])
        if coerced is None and field.required:
            raise ValidationFailed("required value is missing", source=where, field=name)
        result[name] = coerced
    return result
