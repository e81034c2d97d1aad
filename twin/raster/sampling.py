"""Open rasters once and sample them: values at points and zonal statistics under polygons.

A ``RasterSource`` holds what the twin needs to know of a COG (CRS, nodata, the pixel grid of every overview
level) and hands each thread its own rasterio handles, since one GDAL dataset may not be read from two threads
at once. Sources are cached by path, modification time and size, so the work of opening a file and resolving
its CRS is done once per file, not once per request.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio
import shapely
from affine import Affine
from rasterio.errors import RasterioIOError
from rasterio.features import geometry_mask
from rasterio.io import DatasetReader
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from twin.crs import CrsRef, resolve_crs, transform_geometries, transform_xy
from twin.errors import InvalidQuery, NotFound

RasterInput: TypeAlias = "str | os.PathLike[str] | DatasetReader | RasterSource"
FloatArray = npt.NDArray[np.float64]

#: The statistics ``zonal_stats`` knows; ``std`` is the population standard deviation (ddof=0).
ZONAL_STATS = ("count", "min", "max", "mean", "std", "sum", "median")
DEFAULT_STATS = ("count", "min", "max", "mean", "std")

_MAX_SOURCES = 32
_MAX_WINDOW_PIXELS = 16_000_000  # read one window around all points/geometries up to this size, else per block
_SOURCES: OrderedDict[tuple[str, int, int], RasterSource] = OrderedDict()
_SOURCES_LOCK = threading.Lock()


@dataclass(frozen=True)
class Level:
    """One resolution level of a raster: 0 is the full resolution, 1, 2, … its overviews, each coarser."""

    index: int
    width: int
    height: int
    transform: Affine
    block_shape: tuple[int, int]

    @property
    def inverse(self) -> Affine:
        """The CRS → pixel (col, row) transform."""
        return ~self.transform


class RasterSource:
    """The first band of a raster file, opened once: CRS, nodata, levels, and per-thread dataset handles."""

    def __init__(self, path: str):
        self.path = path
        try:
            with rasterio.open(path) as dataset:
                self.crs = _crs_ref(dataset)
                self.nodata: float | None = dataset.nodata
                self.dtype = np.dtype(dataset.dtypes[0])
                left, bottom, right, top = dataset.bounds
                self.bounds = (float(left), float(bottom), float(right), float(top))
                levels = [_level(0, dataset)]
                for i in range(len(dataset.overviews(1))):
                    with rasterio.open(path, overview_level=i) as overview:
                        levels.append(_level(i + 1, overview))
        except RasterioIOError as err:
            raise NotFound(f"raster {os.path.basename(path)!r} cannot be opened") from err
        self.levels: tuple[Level, ...] = tuple(levels)
        self._local = threading.local()
        self._value_range: tuple[float, float] | None = None

    def __repr__(self) -> str:
        return f"RasterSource({self.path!r}, crs={self.crs.uri!r}, levels={len(self.levels)})"

    def dataset(self, level: int = 0) -> DatasetReader:
        """The calling thread's open handle on ``level`` (opened on first use)."""
        handles: dict[int, DatasetReader] | None = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        handle = handles.get(level)
        if handle is None:
            kwargs = {"overview_level": level - 1} if level else {}
            handle = handles[level] = rasterio.open(self.path, **kwargs)
        return handle

    def read(self, window: Window, level: int = 0) -> np.ndarray:
        """Band 1 inside ``window`` (row/col offsets of ``level``), in the raster's own dtype."""
        data: np.ndarray = self.dataset(level).read(1, window=window)
        return data

    def valid(self, values: np.ndarray) -> npt.NDArray[np.bool_]:
        """True where ``values`` hold data: not the nodata value and not NaN."""
        ok = np.ones(values.shape, dtype=bool) if self.nodata is None else values != self.nodata
        if values.dtype.kind == "f":
            ok &= ~np.isnan(values)
        return ok

    def value_range(self) -> tuple[float, float]:
        """Minimum and maximum of the data, read once from the coarsest level (a default colour stretch)."""
        if self._value_range is None:
            level = self.levels[-1]
            data = self.read(Window(0, 0, level.width, level.height), level.index)
            values = data[self.valid(data)]
            lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
            self._value_range = (lo, hi if hi > lo else lo + 1.0)
        return self._value_range


def apply_affine(transform: Affine, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Apply an affine transform to coordinate arrays (x → col and y → row for an inverse geotransform)."""
    a, b, c, d, e, f = transform[:6]
    return a * x + b * y + c, d * x + e * y + f


def _level(index: int, dataset: DatasetReader) -> Level:
    block_rows, block_cols = dataset.block_shapes[0]
    return Level(index, dataset.width, dataset.height, dataset.transform, (block_rows, block_cols))


def _crs_ref(dataset: DatasetReader) -> CrsRef:
    if dataset.crs is None:
        raise InvalidQuery(f"raster {os.path.basename(dataset.name)!r} has no CRS")
    code = dataset.crs.to_epsg()
    return resolve_crs(f"EPSG:{code}" if code else dataset.crs.to_wkt())


def open_raster(raster: RasterInput) -> RasterSource:
    """The cached ``RasterSource`` of a path (or of an open rasterio dataset's file); ``NotFound`` if missing.

    A file rewritten in place (new modification time or size) is opened afresh.
    """
    if isinstance(raster, RasterSource):
        return raster
    path = raster.name if isinstance(raster, DatasetReader) else os.fspath(raster)
    key = (path, 0, 0)
    if not path.startswith("/vsi") and "://" not in path:
        try:
            stat = os.stat(path)
        except OSError:
            raise NotFound(f"raster file {os.path.basename(path)!r} does not exist") from None
        key = (path, stat.st_mtime_ns, stat.st_size)
    with _SOURCES_LOCK:
        source = _SOURCES.get(key)
        if source is not None:
            _SOURCES.move_to_end(key)
            return source
    source = RasterSource(path)  # opened outside the lock; two threads may both open, one wins
    with _SOURCES_LOCK:
        source = _SOURCES.setdefault(key, source)
        while len(_SOURCES) > _MAX_SOURCES:
            _SOURCES.popitem(last=False)
    return source


def clear_cache() -> None:
    """Forget every cached source (their handles close when no thread holds them any more)."""
    with _SOURCES_LOCK:
        _SOURCES.clear()


def _pixel_indices(
    source: RasterSource, x: FloatArray, y: FloatArray
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Full-resolution (row, col) of the pixels holding CRS points, and whether each point is on the raster."""
    level = source.levels[0]
    cols, rows = apply_affine(level.inverse, x, y)
    inside = np.isfinite(cols) & np.isfinite(rows)
    inside &= (cols >= 0) & (cols < level.width) & (rows >= 0) & (rows < level.height)
    col_idx = np.floor(np.where(inside, cols, 0)).astype(np.int64)
    row_idx = np.floor(np.where(inside, rows, 0)).astype(np.int64)
    return row_idx, col_idx, inside


def _read_pixels(source: RasterSource, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]) -> FloatArray:
    """Values at full-resolution pixels, NaN where nodata: one window read, or one read per block if spread out."""
    out = np.full(rows.shape, np.nan)
    if not rows.size:
        return out
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    if (r1 - r0) * (c1 - c0) <= _MAX_WINDOW_PIXELS:
        groups = [(Window(c0, r0, c1 - c0, r1 - r0), np.arange(rows.size))]
    else:
        block_rows, block_cols = source.levels[0].block_shape
        keys = (rows // block_rows) * (source.levels[0].width // block_cols + 1) + cols // block_cols
        order = np.argsort(keys, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0])
        groups = []
        for members in np.split(order, starts[1:]):
            br, bc = rows[members[0]] // block_rows * block_rows, cols[members[0]] // block_cols * block_cols
            groups.append((Window(bc, br, block_cols, block_rows), members))
    level = source.levels[0]
    for window, members in groups:
        window = window.intersection(Window(0, 0, level.width, level.height))
        data = source.read(window)
        values = data[rows[members] - int(window.row_off), cols[members] - int(window.col_off)]
        out[members] = np.where(source.valid(values), values, np.nan)
    return out


def sample_points(
    raster: RasterInput, lons: npt.ArrayLike, lats: npt.ArrayLike, *, crs: str = "EPSG:4326"
) -> FloatArray:
    """Values of band 1 at points (lon/lat by default), as float64; NaN outside the raster or on nodata.

    Each point takes the value of the full-resolution pixel that contains it (no interpolation). ``crs`` names the
    CRS of the coordinates (x = lon/easting first, whatever the authority axis order).
    """
    source = open_raster(raster)
    x, y = transform_xy(lons, lats, resolve_crs(crs), source.crs)
    rows, cols, inside = _pixel_indices(source, x.ravel(), y.ravel())
    values = np.full(inside.shape, np.nan)
    values[inside] = _read_pixels(source, rows[inside], cols[inside])
    return values.reshape(x.shape)


def _check_stats(stats: Sequence[str]) -> tuple[str, ...]:
    names = (stats,) if isinstance(stats, str) else tuple(stats)
    unknown = [s for s in names if s not in ZONAL_STATS]
    if unknown or not names:
        raise InvalidQuery(f"unknown zonal statistic(s) {unknown}; known: {', '.join(ZONAL_STATS)}")
    return names


def _pixel_windows(level: Level, bounds: FloatArray) -> npt.NDArray[np.int64]:
    """(row0, row1, col0, col1) of the pixels each CRS bbox touches, clipped to the raster; empty if outside."""
    inverse = level.inverse
    corner_x = bounds[:, [0, 2, 2, 0]]
    corner_y = bounds[:, [1, 1, 3, 3]]
    cols, rows = apply_affine(inverse, corner_x, corner_y)
    with np.errstate(invalid="ignore"):
        out = np.stack(
            [np.floor(rows.min(axis=1)), np.floor(rows.max(axis=1)) + 1,
             np.floor(cols.min(axis=1)), np.floor(cols.max(axis=1)) + 1],
            axis=1,
        )
    out = np.nan_to_num(out, nan=0.0)
    out[:, 0:2] = np.clip(out[:, 0:2], 0, level.height)
    out[:, 2:4] = np.clip(out[:, 2:4], 0, level.width)
    return out.astype(np.int64)


def _statistics(values: np.ndarray, names: tuple[str, ...]) -> list[float]:
    if not values.size:
        return [0.0 if name == "count" else np.nan for name in names]
    values = values.astype(np.float64, copy=False)
    funcs: dict[str, Any] = {
        "count": lambda v: float(v.size), "min": np.min, "max": np.max, "mean": np.mean,
        "std": np.std, "sum": np.sum, "median": np.median,
    }
    return [float(funcs[name](values)) for name in names]


def zonal_stats(
    raster: RasterInput,
    geometries: Sequence[BaseGeometry | None] | npt.NDArray[np.object_] | gpd.GeoSeries,
    stats: Sequence[str] = DEFAULT_STATS,
    *,
    all_touched: bool | None = None,
    crs: str = "EPSG:4326",
) -> pd.DataFrame:
    """Statistics of band 1 under each geometry, one row per geometry (same index as a GeoSeries).

    Geometries are in ``crs`` (lon/lat EPSG:4326 by default; a GeoSeries' own ``.crs`` wins) and are projected
    to the raster's CRS. Pixels count when their centre is inside the geometry (``all_touched=False``), when the
    geometry touches them at all (``True``), or — the default, ``None`` — by centre, falling back to every
    touched pixel for a geometry that holds no pixel centre, so a building smaller than a pixel still gets the
    value under it. Nodata pixels are left out; a geometry off the raster, empty or ``None`` gets ``count`` 0
    and NaN elsewhere. Each geometry is rasterized on its own window only. ``std`` uses ddof=0.
    """
    names = _check_stats(stats)
    source = open_raster(raster)
    if isinstance(geometries, gpd.GeoSeries):
        index: pd.Index = geometries.index
        if geometries.crs is not None:
            crs = geometries.crs.to_string()
        geoms = np.asarray(geometries.values, dtype=object)
    else:
        geoms = np.asarray(list(geometries), dtype=object)
        index = pd.RangeIndex(len(geoms))
    projected = transform_geometries(geoms, resolve_crs(crs), source.crs)
    level = source.levels[0]
    bounds = shapely.bounds(projected)
    present = ~(shapely.is_missing(projected) | shapely.is_empty(projected))
    windows = _pixel_windows(level, np.where(present[:, None], bounds, np.nan))
    has_pixels = present & (windows[:, 1] > windows[:, 0]) & (windows[:, 3] > windows[:, 2])

    rows: list[list[float]] = [_statistics(np.empty(0), names)] * len(geoms)
    if has_pixels.any():
        r0, r1 = windows[has_pixels, 0].min(), windows[has_pixels, 1].max()
        c0, c1 = windows[has_pixels, 2].min(), windows[has_pixels, 3].max()
        whole = (r1 - r0) * (c1 - c0) <= _MAX_WINDOW_PIXELS
        data = source.read(Window(c0, r0, c1 - c0, r1 - r0)) if whole else None
        for i in np.flatnonzero(has_pixels):
            wr0, wr1, wc0, wc1 = (int(v) for v in windows[i])
            if data is not None:
                block = data[wr0 - r0 : wr1 - r0, wc0 - c0 : wc1 - c0]
            else:
                block = source.read(Window(wc0, wr0, wc1 - wc0, wr1 - wr0))
            inside = _inside(projected[i], block.shape, level.transform @ Affine.translation(wc0, wr0), all_touched)
            values = block[inside]
            rows[i] = _statistics(values[source.valid(values)], names)
    return pd.DataFrame(rows, index=index, columns=list(names))


def _inside(geom: BaseGeometry, shape: tuple[int, ...], transform: Affine, all_touched: bool | None) -> np.ndarray:
    """Which pixels of a window the geometry covers, by the ``zonal_stats`` rule."""
    mask: np.ndarray = geometry_mask([geom], out_shape=shape, transform=transform, all_touched=bool(all_touched),
                                     invert=True)
    if all_touched is None and not mask.any():
        mask = geometry_mask([geom], out_shape=shape, transform=transform, all_touched=True, invert=True)
    return mask
