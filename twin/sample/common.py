"""Shared plumbing of the sample generator: seeded streams, the street frame, CRS conversion and typed frames.

Everything is laid out in metres in EPSG:4547 (CGCS2000 3-degree Gauss-Krüger, CM 114E) and converted to lon/lat
once, at the end. Inside the generator most shapes are first drawn in a *street frame*: a local metric frame with
its origin at the centre of the station hall, ``v`` along the railway (NNW) and ``u`` across it (ENE), so that
the road grid, blocks, footprints and floor outlines are axis-aligned rectangles there.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import Transformer

from layers import FieldType, get_layer

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

METRIC_CRS = "EPSG:4547"
STORAGE_CRS = "EPSG:4326"
#: Centre of the Shenzhen North station hall, WGS84 lon/lat (domain.md; matches Wikipedia's 22°36′43″N 114°1′26″E).
STATION_LONLAT = (114.0239, 22.6119)
#: Bearing of the railway through the station, degrees clockwise from north (the tracks run NNW–SSE).
TRACK_BEARING_DEG = -18.0
#: The fixed "now" of the sample, so that every build is byte-for-byte the same.
REFERENCE_NOW = dt.datetime(2026, 11, 25, 8, 0, 0, tzinfo=dt.UTC)


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per component, so changing one part never reshuffles another."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


@lru_cache(maxsize=4)
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def to_lonlat(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """EPSG:4547 easting/northing → WGS84 lon/lat."""
    lon, lat = _transformer(METRIC_CRS, STORAGE_CRS).transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon, float), np.asarray(lat, float)


def to_metric(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS84 lon/lat → EPSG:4547 easting/northing."""
    x, y = _transformer(STORAGE_CRS, METRIC_CRS).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x, float), np.asarray(y, float)


@dataclass(frozen=True)
class StreetFrame:
    """The local frame aligned with the railway: ``u`` across the tracks (ENE), ``v`` along them (NNW)."""

    x0: float
    y0: float
    bearing_deg: float = TRACK_BEARING_DEG

    @classmethod
    def at_station(cls) -> StreetFrame:
        """The frame centred on the station hall."""
        x, y = to_metric([STATION_LONLAT[0]], [STATION_LONLAT[1]])
        return cls(float(x[0]), float(y[0]))

    def to_xy(self, u: npt.ArrayLike, v: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Street-frame metres → EPSG:4547 metres."""
        a = math.radians(self.bearing_deg)
        u, v = np.asarray(u, float), np.asarray(v, float)
        return self.x0 + u * math.cos(a) + v * math.sin(a), self.y0 - u * math.sin(a) + v * math.cos(a)

    def to_uv(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """EPSG:4547 metres → street-frame metres."""
        a = math.radians(self.bearing_deg)
        dx, dy = np.asarray(x, float) - self.x0, np.asarray(y, float) - self.y0
        return dx * math.cos(a) - dy * math.sin(a), dx * math.sin(a) + dy * math.cos(a)

    def to_lonlat(self, u: npt.ArrayLike, v: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Street-frame metres → WGS84 lon/lat."""
        return to_lonlat(*self.to_xy(u, v))


def rect_rings(u0: FloatArray, u1: FloatArray, v0: FloatArray, v1: FloatArray) -> FloatArray:
    """Closed counter-clockwise rings ``(n, 5, 2)`` of street-frame rectangles."""
    us = np.stack([u0, u1, u1, u0, u0], axis=1)
    vs = np.stack([v0, v0, v1, v1, v0], axis=1)
    return np.stack([us, vs], axis=2)


def rings_to_lonlat(frame: StreetFrame, rings: FloatArray) -> FloatArray:
    """Street-frame coordinate arrays ``(..., 2)`` → lon/lat arrays of the same shape."""
    lon, lat = frame.to_lonlat(rings[..., 0].ravel(), rings[..., 1].ravel())
    return np.stack([lon.reshape(rings.shape[:-1]), lat.reshape(rings.shape[:-1])], axis=-1)


def utc_ms(seconds: npt.ArrayLike) -> pd.Series:
    """Unix seconds (NaN for null) → a ``datetime64[ms, UTC]`` series."""
    values = np.asarray(seconds, float)
    ms = np.round(values * 1000.0)
    stamps = np.where(np.isnan(ms), np.iinfo(np.int64).min, np.nan_to_num(ms)).astype(np.int64)
    return pd.Series(stamps.view("datetime64[ms]")).dt.tz_localize("UTC")


def dates(days: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Days since 1970-01-01 (NaN for null) → ``datetime.date`` objects (``None`` for null)."""
    values = np.asarray(days, float)
    out = np.empty(values.shape, dtype=object)
    present = ~np.isnan(values)
    out[present] = values[present].astype(np.int64).astype("datetime64[D]").astype(object)
    return out


def _column(kind: FieldType, values: Any) -> Any:
    if kind is FieldType.DATETIME:
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        return series.dt.tz_convert("UTC").dt.as_unit("ms").array
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if kind is FieldType.INTEGER:
        array = np.asarray(values)
        if array.dtype == object:
            return pd.array(list(array), dtype="Int64")
        return pd.array(array.astype(float) if array.dtype.kind == "f" else array.astype(np.int64), dtype="Int64")
    if kind is FieldType.REAL:
        return np.asarray(values, dtype=np.float64)
    if kind is FieldType.TEXT:
        return pd.array(np.asarray(values, dtype=object), dtype="str")
    if kind is FieldType.BOOLEAN:
        return pd.array(np.asarray(values, dtype=bool), dtype="boolean")
    if kind is FieldType.DATE:
        return np.asarray(values, dtype=object)
    raise TypeError(f"unsupported field type {kind}")


def make_frame(
    layer_id: str, columns: Mapping[str, Any], geometry: npt.NDArray[np.object_] | None = None
) -> gpd.GeoDataFrame | pd.DataFrame:
    """A frame with exactly the layer's fields, in catalogue order and dtypes, indexed by ``id`` from 1.

    ``columns`` maps every field name to an array-like; DATETIME fields take a tz-aware series (see :func:`utc_ms`),
    DATE fields ``datetime.date`` objects. Spatial layers take ``geometry`` in lon/lat.
    """
    layer = get_layer(layer_id)
    unknown = set(columns) - set(layer.field_names)
    if unknown:
        raise KeyError(f"{layer_id}: unknown columns {sorted(unknown)}")
    n = len(geometry) if geometry is not None else len(columns[layer.fields[0].name])
    index = pd.Index(np.arange(1, n + 1, dtype=np.int64), name="id")
    data = {}
    for field in layer.fields:
        column = _column(field.type, columns[field.name])
        if len(column) != n:
            raise ValueError(f"{layer_id}.{field.name}: {len(column)} values for {n} rows")
        data[field.name] = pd.Series(column, index=index, name=field.name, copy=False)
    frame = pd.DataFrame(data, index=index)
    if not layer.is_spatial:
        return frame
    if geometry is None:
        raise ValueError(f"{layer_id} is spatial and needs geometries")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, index=index, crs=STORAGE_CRS), crs=STORAGE_CRS)
