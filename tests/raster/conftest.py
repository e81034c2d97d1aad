"""Real COGs for the raster tests, written once per session, and helpers to decode PNGs and build references."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.warp import Resampling, reproject

from twin.raster import tile_bounds

STATION_E, STATION_N = 503012.0, 2501282.0
RES = 10.0
SIZE = 1000
X0 = STATION_E - SIZE * RES / 2  # 498012
Y1 = STATION_N + SIZE * RES / 2  # 2506282
NODATA = -9999.0
#: Centre and radius (m) of a disc of nodata in the metric raster.
HOLE_E, HOLE_N, HOLE_R = STATION_E + 2500.0, STATION_N - 2500.0, 600.0


def lonlat(easting: float, northing: float) -> tuple[float, float]:
    """Lon/lat of an EPSG:4547 point."""
    lon, lat = Transformer.from_crs(4547, 4326, always_xy=True).transform(easting, northing)
    return float(lon), float(lat)


def metric_value(easting: np.ndarray, northing: np.ndarray) -> np.ndarray:
    """The analytic pattern of the metric raster: linear in both axes, every pixel distinct."""
    return (easting - 498000.0) / 10.0 + (northing - 2496000.0) / 10000.0


def write_cog(path: Path, data: np.ndarray, transform: Affine, crs: str, nodata: float | None) -> Path:
    profile = {
        "driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1, "dtype": data.dtype.name,
        "crs": crs, "transform": transform, "nodata": nodata, "compress": "deflate", "blocksize": 256,
        "overviews": "AUTO", "overview_resampling": "nearest",
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data, 1)
    return path


def metric_array() -> np.ndarray:
    east = X0 + (np.arange(SIZE) + 0.5) * RES
    north = Y1 - (np.arange(SIZE) + 0.5) * RES
    e, n = np.meshgrid(east, north)
    values = metric_value(e, n).astype(np.float32)
    values[(e - HOLE_E) ** 2 + (n - HOLE_N) ** 2 < HOLE_R**2] = NODATA
    return values


@pytest.fixture(scope="session")
def metric_cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1000 × 1000 float32 COG at 10 m in EPSG:4547 centred on the station, with a nodata disc (overviews 2, 4)."""
    path = tmp_path_factory.mktemp("rasters") / "metric.tif"
    return write_cog(path, metric_array(), Affine(RES, 0, X0, 0, -RES, Y1), "EPSG:4547", NODATA)


@pytest.fixture(scope="session")
def geographic_cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 × 500 uint16 COG in EPSG:4326 (0.0001° pixels) around the station; value = 700·(row // 7) + col."""
    path = tmp_path_factory.mktemp("rasters") / "geographic.tif"
    rows, cols = np.mgrid[0:500, 0:600]
    data = ((rows // 7) * 700 + cols).astype(np.uint16)
    transform = Affine(0.0001, 0, 113.994, 0, -0.0001, 22.637)
    return write_cog(path, data, transform, "EPSG:4326", None)


def decode_png(data: bytes) -> np.ndarray:
    """Decode a PNG with GDAL's PNG driver (an independent decoder) into an (h, w, bands) uint8 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(data) as memory, memory.open() as dataset:
            assert dataset.driver == "PNG"
            return np.moveaxis(dataset.read(), 0, -1)


def tile_transform(z: int, x: int, y: int) -> Affine:
    left, bottom, right, top = tile_bounds(z, x, y)
    return Affine((right - left) / 256, 0, left, 0, -(top - bottom) / 256, top)


def reference_tile(
    path: Path,
    z: int,
    x: int,
    y: int,
    *,
    overview_level: int | None = None,
    resampling: Resampling = Resampling.nearest,
) -> np.ma.MaskedArray:
    """The tile as GDAL's warper makes it (rasterio.warp.reproject into the Web Mercator tile), masked on nodata."""
    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    sentinel = -32768.0
    destination = np.full((256, 256), sentinel, dtype=np.float64)
    with rasterio.open(path, **kwargs) as dataset:
        reproject(
            source=rasterio.band(dataset, 1),
            destination=destination,
            dst_transform=tile_transform(z, x, y),
            dst_crs="EPSG:3857",
            src_nodata=dataset.nodata,
            dst_nodata=sentinel,
            resampling=resampling,
        )
    return np.ma.masked_equal(destination, sentinel)


def exact_tile(path: Path, z: int, x: int, y: int, *, overview_level: int | None = None) -> np.ma.MaskedArray:
    """The nearest-neighbour tile by brute force: every tile pixel centre projected exactly with PROJ.

    GDAL's warper projects only some points per row and interpolates the rest (error up to 0.125 source pixel),
    so at low zooms a few per cent of its pixels take a neighbour; this reference has no such shortcut.
    """
    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(path, **kwargs) as dataset:
        data, transform, nodata, crs = dataset.read(1), dataset.transform, dataset.nodata, dataset.crs
    left, bottom, right, top = tile_bounds(z, x, y)
    step_x, step_y = (right - left) / 256, (top - bottom) / 256
    gx, gy = np.meshgrid(left + (np.arange(256) + 0.5) * step_x, top - (np.arange(256) + 0.5) * step_y)
    sx, sy = Transformer.from_crs(3857, crs, always_xy=True).transform(gx, gy)
    cols, rows = ~transform @ (sx, sy)
    cols, rows = np.floor(cols).astype(int), np.floor(rows).astype(int)
    inside = (cols >= 0) & (cols < data.shape[1]) & (rows >= 0) & (rows < data.shape[0])
    values = data[np.clip(rows, 0, data.shape[0] - 1), np.clip(cols, 0, data.shape[1] - 1)].astype(np.float64)
    if nodata is not None:
        inside &= values != nodata
    return np.ma.MaskedArray(values, mask=~inside)
