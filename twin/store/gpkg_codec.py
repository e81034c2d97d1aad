"""Normalized frames to SQLite rows and back, one whole column at a time.

Writes take a frame from :func:`twin.validate.normalize_frame` and produce the tuples ``executemany`` binds;
reads take fetched rows and rebuild the catalogue dtypes (``Int64``, ``float64``, ``str``, ``boolean``,
``datetime.date`` objects, ``datetime64[ms, UTC]``) and a GeoDataFrame in EPSG:4326 indexed by ``id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
from geopandas.array import from_shapely
from pyproj import CRS

from layers import Field, FieldType, Layer
from twin.store import gpkg_geometry
from twin.store.base import STORAGE_CRS
from twin.store.gpkg_schema import GEOMETRY_COLUMN, quote

GEOMETRY = "geometry"
TEXT_DTYPE = pd.StringDtype(na_value=np.nan)  # pandas' default "str"
_CRS = CRS.from_user_input(STORAGE_CRS)


def _with_nulls(values: np.ndarray, null: np.ndarray) -> list[Any]:
    out = values.astype(object)
    out[null] = None
    return list(out.tolist())


def storage_column(field: Field, column: pd.Series) -> list[Any]:
    """A normalized column as Python values SQLite binds (NULL for missing)."""
    null = column.isna().to_numpy()
    kind = field.type
    if kind is FieldType.INTEGER:
        return _with_nulls(column.to_numpy(dtype="int64", na_value=0), null)
    if kind is FieldType.REAL:
        return _with_nulls(column.to_numpy(dtype="float64", na_value=np.nan), null)
    if kind is FieldType.TEXT:
        return list(column.to_numpy(dtype=object, na_value=None).tolist())
    if kind is FieldType.BOOLEAN:
        return _with_nulls(column.to_numpy(dtype="int64", na_value=0), null)
    if kind is FieldType.DATE:
        return [None if n else d.isoformat() for d, n in zip(column.to_numpy(dtype=object), null, strict=True)]
    stamps = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ms]")
    text = np.char.add(np.datetime_as_string(stamps, unit="ms"), "Z")
    return _with_nulls(text, null)


def encode_rows(
    layer: Layer, frame: pd.DataFrame, ids: np.ndarray
) -> tuple[str, list[tuple[Any, ...]], np.ndarray | None]:
    """``INSERT`` SQL, its rows and the geometry bounds (``None`` for tables) for a normalized frame.

    Columns that are null in every row are left out of the statement (they default to NULL), which makes bulk
    loads of sparsely filled layers bind far fewer values.
    """
    names = [layer.key]
    columns: list[list[Any]] = [ids.astype(object).tolist()]
    bounds = None
    if layer.is_spatial:
        blobs, bounds = gpkg_geometry.encode(frame.geometry.to_numpy(), has_z=layer.has_z)
        names.append(GEOMETRY_COLUMN)
        columns.append(blobs)
    for field in layer.fields:
        column = frame[field.name]
        if len(column) and column.isna().all():
            continue
        names.append(field.name)
        columns.append(storage_column(field, column))
    placeholders = ", ".join("?" * len(names))
    sql = f"INSERT INTO {quote(layer.id)} ({', '.join(quote(n) for n in names)}) VALUES ({placeholders})"
    return sql, list(zip(*columns, strict=True)), bounds


def select_columns(layer: Layer, properties: Sequence[str] | None = None, alias: str = "t") -> tuple[str, list[Field]]:
    """The select list (key, geometry, fields) and the fields it returns, in order."""
    if properties is None:
        fields = list(layer.fields)
    else:
        names = list(dict.fromkeys(p for p in properties if p != layer.key))
        fields = [layer.field(name) for name in names]
    parts = [f"{alias}.{quote(layer.key)}"]
    if layer.is_spatial:
        parts.append(f"{alias}.{quote(GEOMETRY_COLUMN)}")
    parts.extend(f"{alias}.{quote(f.name)}" for f in fields)
    return ", ".join(parts), fields


def _integers(values: Sequence[Any]) -> pd.arrays.IntegerArray:
    data = np.array(values, dtype=object)
    missing = np.asarray(data == None)  # noqa: E711 - elementwise comparison with None
    data[missing] = 0
    return pd.arrays.IntegerArray(data.astype("int64"), missing)


def _texts(values: Sequence[Any]) -> Any:
    if TEXT_DTYPE.storage == "pyarrow":  # the default where pyarrow is installed; 4x faster from an Arrow array
        return pd.array(pa.array(values, type=pa.large_string()), dtype=TEXT_DTYPE)
    return pd.array(values, dtype=TEXT_DTYPE)


def python_column(field: Field, values: Sequence[Any]) -> Any:
    """Fetched SQLite values as a column (an array) of ``field``'s catalogue dtype."""
    kind = field.type
    if kind is FieldType.INTEGER:
        return _integers(values)
    if kind is FieldType.REAL:
        return np.array(values, dtype="float64")
    if kind is FieldType.TEXT:
        return _texts(values)
    if kind is FieldType.BOOLEAN:
        integers = _integers(values)
        return pd.arrays.BooleanArray(integers.to_numpy(dtype="int64", na_value=0) != 0, integers.isna())
    if kind is FieldType.DATE:
        return np.array([None if v is None else dt.date.fromisoformat(v) for v in values], dtype=object)
    stamps = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True)
    return stamps.dt.as_unit("ms").array


def decode_rows(
    layer: Layer, fields: Sequence[Field], rows: Sequence[tuple[Any, ...]], geoms: np.ndarray | None = None
) -> gpd.GeoDataFrame | pd.DataFrame:
    """A frame from rows fetched with :func:`select_columns` (extra trailing columns are ignored).

    ``geoms`` are the rows' geometries when the caller has decoded them already.
    """
    width = 1 + int(layer.is_spatial) + len(fields)
    columns = list(zip(*rows, strict=True)) if rows else [()] * width
    index = pd.Index(np.array(columns[0], dtype="int64"), name=layer.key)
    offset = 2 if layer.is_spatial else 1
    data = {f.name: python_column(f, columns[offset + i]) for i, f in enumerate(fields)}
    if not layer.is_spatial:
        return pd.DataFrame(data, index=index)
    decoded = gpkg_geometry.decode(columns[1]) if geoms is None else geoms
    data[GEOMETRY] = from_shapely(decoded, crs=_CRS)
    return gpd.GeoDataFrame(data, index=index, geometry=GEOMETRY)


def with_distance(frame: gpd.GeoDataFrame, distances: np.ndarray) -> gpd.GeoDataFrame:
    """``frame`` with a ``distance_m`` column placed just before the geometry."""
    frame = frame.copy()
    frame.insert(len(frame.columns) - 1, "distance_m", np.asarray(distances, dtype="float64"))
    return frame
