"""Raster tiles: a COG warped into one tile of a tile matrix set, coloured and encoded as PNG.

Why not rasterio's warper (or TiTiler): for EPSG:4547 every fresh PROJ transformation costs about 24 ms, and a
per-request warp sets several up. Here the CRS work is done once per (raster, tile matrix set) and per tile
only a small grid of tile pixel centres (17 × 17 by default) goes through one cached pyproj Transformer; the
source pixel position of every tile pixel is then interpolated bilinearly from that grid (over a tile a
projection is smooth enough that the error stays below a hundredth of a pixel — the tests bound it).
The right overview level is chosen for the tile's resolution, only the window the tile needs is read, and the
pixels are picked by nearest neighbour (or bilinear) numpy indexing.

Tiles that do not touch the raster come back as a fully transparent PNG of the requested size, which is what
map clients expect; a z/x/y outside the tile matrix is an ``InvalidQuery``.
"""

from __future__ import annotations

import operator
import struct
import zlib
from functools import lru_cache

import morecantile
import numpy as np
import numpy.typing as npt
from morecantile import TileMatrixSet
from rasterio.windows import Window

from twin.crs import CrsRef, resolve_crs, transform_bbox, transform_xy
from twin.errors import InvalidQuery
from twin.raster.colormap import check_colormap, check_value_range, colorize
from twin.raster.sampling import Level, RasterInput, RasterSource, apply_affine, open_raster

RESAMPLINGS = ("nearest", "bilinear")
#: Tile pixel centres per side that are projected exactly; the rest are interpolated between them.
GRID_NODES = 17
PNG_LEVEL = 2  # zlib level: 1–3 are within a few per cent in size here and several times faster than 6
_MIN_SIZE, _MAX_SIZE = 16, 1024
_FAR = 2.0**30  # pixel positions beyond this are clipped before they are turned into int32 indices

FloatArray = npt.NDArray[np.float64]


@lru_cache(maxsize=32)
def _tms(name: str) -> TileMatrixSet:
    try:
        return morecantile.tms.get(name)
    except morecantile.errors.InvalidIdentifier:
        raise InvalidQuery(f"unknown tile matrix set {name!r}; known: {', '.join(morecantile.tms.list())}") from None


@lru_cache(maxsize=32)
def _tms_crs(name: str) -> CrsRef:
    return resolve_crs(_tms(name).crs.srs)


def tile_bounds(z: int, x: int, y: int, tms: str = "WebMercatorQuad") -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a tile in its tile matrix set's CRS; ``InvalidQuery`` off the matrix."""
    matrix_set = _tms(tms)
    try:
        z, x, y = operator.index(z), operator.index(x), operator.index(y)
    except TypeError:
        raise InvalidQuery(f"tile z/x/y must be integers, got {z!r}/{x!r}/{y!r}") from None
    if not matrix_set.minzoom <= z <= matrix_set.maxzoom:
        raise InvalidQuery(f"zoom {z} is outside {tms} ({matrix_set.minzoom}–{matrix_set.maxzoom})")
    matrix = matrix_set.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
        raise InvalidQuery(
            f"tile {z}/{x}/{y} is outside the {tms} matrix at zoom {z} ({matrix.matrixWidth}×{matrix.matrixHeight})"
        )
    b = matrix_set.xy_bounds(morecantile.Tile(x, y, z))
    return (b.left, b.bottom, b.right, b.top)


@lru_cache(maxsize=64)
def _raster_bounds_in(source: RasterSource, tms: str) -> tuple[float, float, float, float]:
    """The raster's footprint as a bbox in the tile matrix set's CRS (computed once per pair)."""
    return transform_bbox(source.bounds, source.crs, _tms_crs(tms))


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@lru_cache(maxsize=16)
def _interpolation(size: int, nodes: int) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """For each of ``size`` pixel centres along an axis: the node before it and its fraction of the way on."""
    at = np.arange(size) * (nodes - 1) / (size - 1)
    before = np.minimum(np.floor(at).astype(np.intp), nodes - 2)
    fraction = at - before
    before.flags.writeable = fraction.flags.writeable = False
    return before, fraction


def _interpolate(grid: FloatArray, size: int) -> FloatArray:
    """Bilinear interpolation of a (nodes × nodes) grid to (size × size).

    Done with gathers, not matrix products: BLAS threads would fight a server's own threads for the cores.
    """
    before, fraction = _interpolation(size, grid.shape[0])
    along_x = grid[:, before] * (1.0 - fraction) + grid[:, before + 1] * fraction  # (nodes, size)
    column = fraction[:, None]
    out: FloatArray = along_x[before] * (1.0 - column) + along_x[before + 1] * column
    return out


def _node_grid(
    source: RasterSource, tms: str, bounds: tuple[float, float, float, float], size: int, nodes: int
) -> tuple[FloatArray, FloatArray]:
    """Source-CRS x, y of a (nodes × nodes) grid spanning the tile's first to last pixel centre."""
    left, bottom, right, top = bounds
    half_x, half_y = (right - left) / size / 2, (top - bottom) / size / 2
    xs = np.linspace(left + half_x, right - half_x, nodes)
    ys = np.linspace(top - half_y, bottom + half_y, nodes)
    gx, gy = np.meshgrid(xs, ys)
    return transform_xy(gx, gy, _tms_crs(tms), source.crs)


def _decimation(source: RasterSource, nx: FloatArray, ny: FloatArray, size: int) -> float:
    """Full-resolution source pixels per tile pixel (geometric mean of both axes)."""
    inverse = source.levels[0].inverse
    cols, rows = apply_affine(inverse, nx[[0, 0, -1], [0, -1, 0]], ny[[0, 0, -1], [0, -1, 0]])
    along_x = np.array([cols[1] - cols[0], rows[1] - rows[0]])
    along_y = np.array([cols[2] - cols[0], rows[2] - rows[0]])
    area = abs(along_x[0] * along_y[1] - along_x[1] * along_y[0]) / (size - 1) ** 2
    return float(np.sqrt(area))


def _choose_level(source: RasterSource, decimation: float) -> int:
    """The coarsest level whose pixels are no larger than a tile pixel (never coarser than needed)."""
    base = source.levels[0].transform
    base_res = np.sqrt(abs(base.determinant))
    chosen = 0
    for level in source.levels[1:]:
        factor = np.sqrt(abs(level.transform.determinant)) / base_res
        if factor <= decimation * (1 + 1e-9):
            chosen = level.index
    return chosen


def tile_overview_level(
    raster: RasterInput, z: int, x: int, y: int, *, tms: str = "WebMercatorQuad", size: int = 256
) -> int:
    """The level ``render_tile`` reads for a tile: 0 for full resolution, i for the i-th overview."""
    source = open_raster(raster)
    bounds = tile_bounds(z, x, y, tms)
    nx, ny = _node_grid(source, tms, bounds, _check_size(size), GRID_NODES)
    return _choose_level(source, _decimation(source, nx, ny, size))


def _check_size(size: int) -> int:
    try:
        checked = operator.index(size)
    except TypeError:
        checked = -1
    if not _MIN_SIZE <= checked <= _MAX_SIZE:
        raise InvalidQuery(f"tile size must be an integer from {_MIN_SIZE} to {_MAX_SIZE}, got {size!r}")
    return checked


def _pixel_positions(
    source: RasterSource, level: int, nx: FloatArray, ny: FloatArray, size: int
) -> tuple[FloatArray, FloatArray]:
    """Continuous (col, row) in ``level`` of every tile pixel centre, interpolated from the node grid."""
    cols, rows = apply_affine(source.levels[level].inverse, nx, ny)
    return _interpolate(cols, size), _interpolate(rows, size)


def warp_tile(
    raster: RasterInput,
    z: int,
    x: int,
    y: int,
    *,
    tms: str = "WebMercatorQuad",
    size: int = 256,
    resampling: str = "nearest",
) -> np.ma.MaskedArray:
    """Band 1 warped into tile z/x/y as a (size, size) float64 masked array, masked off the raster and on nodata.

    ``render_tile`` colours and encodes this.
    """
    if resampling not in RESAMPLINGS:
        raise InvalidQuery(f"unknown resampling {resampling!r}; known: {', '.join(RESAMPLINGS)}")
    values, valid = _warp(open_raster(raster), z, x, y, tms, _check_size(size), resampling)
    return np.ma.MaskedArray(values.astype(np.float64), mask=~valid)


def _warp(
    source: RasterSource, z: int, x: int, y: int, tms: str, size: int, resampling: str
) -> tuple[np.ndarray, npt.NDArray[np.bool_]]:
    bounds = tile_bounds(z, x, y, tms)
    empty = (np.zeros((size, size), dtype=source.dtype), np.zeros((size, size), dtype=bool))
    if not _intersects(bounds, _raster_bounds_in(source, tms)):
        return empty
    nx, ny = _node_grid(source, tms, bounds, size, GRID_NODES)
    if not (np.isfinite(nx).all() and np.isfinite(ny).all()):
        return empty
    level_index = _choose_level(source, _decimation(source, nx, ny, size))
    level = source.levels[level_index]
    cols, rows = _pixel_positions(source, level_index, nx, ny, size)
    if max(abs(cols.min()), abs(cols.max()), abs(rows.min()), abs(rows.max())) > _FAR:
        cols, rows = np.clip(cols, -2, level.width + 1), np.clip(rows, -2, level.height + 1)  # int32-safe
    if resampling == "bilinear":
        return _bilinear(source, level_index, cols - 0.5, rows - 0.5)  # floor() then picks the upper-left one
    col_idx, row_idx = np.floor(cols).astype(np.int32), np.floor(rows).astype(np.int32)
    # one unsigned comparison tests 0 <= i < n: negative indices wrap to huge values
    inside = (col_idx.view(np.uint32) < level.width) & (row_idx.view(np.uint32) < level.height)
    window = _window(level, cols, rows, pad=0)
    if window is None or not inside.any():
        return empty
    data = source.read(window, level_index)
    flat = (row_idx - int(window.row_off)) * data.shape[1] + (col_idx - int(window.col_off))
    flat = np.where(inside, flat, 0)
    return data.ravel().take(flat), inside & source.valid(data).ravel().take(flat)


def _window(level: Level, cols: FloatArray, rows: FloatArray, pad: int) -> Window | None:
    """The level's pixels under the tile (plus ``pad`` after the last), clipped to the level; None if none."""
    c0, c1 = max(int(np.floor(cols.min())), 0), min(int(np.floor(cols.max())) + 1 + pad, level.width)
    r0, r1 = max(int(np.floor(rows.min())), 0), min(int(np.floor(rows.max())) + 1 + pad, level.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _bilinear(
    source: RasterSource, level_index: int, cols: FloatArray, rows: FloatArray
) -> tuple[np.ndarray, npt.NDArray[np.bool_]]:
    """Bilinear interpolation, weights renormalised over valid neighbours; ``cols``/``rows`` are shifted by -0.5.

    A pixel is valid where its nearest source pixel is, so nodata edges stay where nearest resampling puts them.
    Computed in float32 (ample for elevations and probabilities).
    """
    level = source.levels[level_index]
    window = _window(level, cols, rows, pad=1)
    if window is None:
        return np.zeros(cols.shape), np.zeros(cols.shape, dtype=bool)
    data = source.read(window, level_index)
    # a one-pixel border of invalid cells lets every clipped position take its four neighbours unchecked
    data_valid = source.valid(data)
    valid_cells = np.pad(data_valid, 1).astype(np.float32)
    padded = np.pad(np.where(data_valid, data, 0).astype(np.float32), 1)
    height, width = padded.shape
    cols = np.clip(cols - (window.col_off - 1), 0.0, width - 1 - 1e-6).astype(np.float32)
    rows = np.clip(rows - (window.row_off - 1), 0.0, height - 1 - 1e-6).astype(np.float32)
    col_idx, row_idx = cols.astype(np.int32), rows.astype(np.int32)  # non-negative: truncation is floor
    fc, fr = cols - col_idx, rows - row_idx
    corner = row_idx * width + col_idx
    total = np.zeros(cols.shape, dtype=np.float32)
    weight = np.zeros(cols.shape, dtype=np.float32)
    for offset, w in ((0, (1 - fr) * (1 - fc)), (1, (1 - fr) * fc), (width, fr * (1 - fc)), (width + 1, fr * fc)):
        flat = corner + offset
        total += w * padded.take(flat)
        weight += w * valid_cells.take(flat)
    nearest = (rows + 0.5).astype(np.int32) * width + (cols + 0.5).astype(np.int32)
    valid = (valid_cells.take(nearest) > 0) & (weight > 0)
    return np.divide(total, weight, out=np.zeros(cols.shape, dtype=np.float32), where=valid), valid


def render_tile(
    raster: RasterInput,
    z: int,
    x: int,
    y: int,
    *,
    tms: str = "WebMercatorQuad",
    colormap: str | None = None,
    value_range: tuple[float, float] | None = None,
    size: int = 256,
    resampling: str = "nearest",
) -> bytes:
    """Tile z/x/y of band 1 as an RGBA PNG, coloured, with nodata and off-raster pixels transparent.

    ``value_range`` (default: the raster's min and max) is stretched over the colour map (``terrain``, ``risk``
    or ``gray``, the default). A tile that misses the raster is a fully transparent PNG. ``InvalidQuery`` for
    an unknown colour map, tile matrix set or resampling, or a tile outside the matrix; ``NotFound`` for a
    missing file.
    """
    name = check_colormap(colormap)
    stretch = check_value_range(value_range)
    if resampling not in RESAMPLINGS:
        raise InvalidQuery(f"unknown resampling {resampling!r}; known: {', '.join(RESAMPLINGS)}")
    source = open_raster(raster)
    values, valid = _warp(source, z, x, y, tms, _check_size(size), resampling)
    if not valid.any():
        return transparent_png(size)
    return encode_png(colorize(values, valid, name, stretch or source.value_range()))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(rgba: npt.NDArray[np.uint8], level: int = PNG_LEVEL) -> bytes:
    """Encode an (h, w, 4) uint8 array as an RGBA PNG (filter Up on every row, zlib ``level``)."""
    height, width, bands = rgba.shape
    if bands != 4 or rgba.dtype != np.uint8:
        raise ValueError("encode_png expects an (h, w, 4) uint8 array")
    rows = np.empty((height, width * 4 + 1), dtype=np.uint8)
    rows[:, 0] = 2  # PNG filter type 2 (Up): each byte minus the byte above it; smooth rasters give runs of 0
    flat = rgba.reshape(height, width * 4)
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", header),
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
        _chunk(b"IEND", b""),
    ))


@lru_cache(maxsize=8)
def transparent_png(size: int = 256) -> bytes:
    """A fully transparent size × size RGBA PNG (what a tile off the raster returns)."""
    return encode_png(np.zeros((size, size, 4), dtype=np.uint8), level=9)
