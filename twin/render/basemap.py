"""The screens' basemap, made from the twin's own DEM: a shaded-relief image in Web Mercator.

No public basemap is used: :func:`hillshade_png` reprojects the DEM to EPSG:3857, shades it (sun from the north-west)
over a dark elevation tint that suits the command-centre screens, and returns a PNG and its lon/lat bounds for a
deck.gl ``BitmapLayer``.
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from twin.raster import encode_png

#: Elevation tint, low → high (dark blue-green to slate), multiplied by the shade.
_TINT = np.array([(22, 48, 64), (34, 66, 72), (52, 80, 78), (74, 92, 88), (98, 104, 108)], dtype=np.float32)


#: Sampling of the basemap texture: bilinear without mipmaps (the relief is smooth; mipmaps cost software renderers).
BASEMAP_TEXTURE = {"minFilter": "linear", "magFilter": "linear", "mipmapFilter": "none"}
#: Longest side of the basemap image in pixels.
MAX_SIZE = 800


@dataclass(frozen=True)
class Basemap:
    """An image (URL or ``data:`` URI) and its bounds ``(west, south, east, north)`` in lon/lat."""

    image: str
    bounds: tuple[float, float, float, float]


def hillshade(elevation: npt.NDArray[np.floating], cell_x: float, cell_y: float, *, azimuth: float = 315.0,
              altitude: float = 45.0, exaggeration: float = 3.0) -> npt.NDArray[np.float32]:
    """Lambertian shade in 0..1 of a north-up grid (``cell_x``/``cell_y`` in metres; NaN where unknown)."""
    z = np.asarray(elevation, dtype=np.float32) * np.float32(exaggeration)
    filled = np.where(np.isfinite(z), z, np.nanmean(z) if np.isfinite(z).any() else 0.0).astype(np.float32)
    dz_dy, dz_dx = np.gradient(filled, cell_y, cell_x)
    slope = np.arctan(np.hypot(dz_dx, dz_dy))
    aspect = np.arctan2(-dz_dx, dz_dy)  # rows grow southwards, so north is -dy
    az, alt = np.radians(360.0 - azimuth + 90.0), np.radians(altitude)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0.0, 1.0).astype(np.float32)


def shaded_rgba(elevation: npt.NDArray[np.floating], cell_x: float, cell_y: float) -> npt.NDArray[np.uint8]:
    """RGBA of the tinted relief; transparent where the elevation is unknown."""
    valid = np.isfinite(elevation)
    shade = hillshade(elevation, cell_x, cell_y)
    low, high = (np.nanpercentile(elevation, [2, 98]) if valid.any() else (0.0, 1.0))
    scaled = np.clip((np.nan_to_num(elevation, nan=low) - low) / max(high - low, 1e-6), 0, 1) * (len(_TINT) - 1)
    index = np.minimum(scaled.astype(np.int32), len(_TINT) - 2)
    frac = (scaled - index)[..., None].astype(np.float32)
    tint = _TINT[index] * (1 - frac) + _TINT[index + 1] * frac
    rgb = tint * (0.45 + 0.75 * shade[..., None])
    rgba = np.zeros((*elevation.shape, 4), dtype=np.uint8)
    rgba[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.where(valid, 255, 0)
    return rgba


def hillshade_png(dem_path: str | Path, *, max_size: int = MAX_SIZE) -> tuple[bytes, tuple[float, float, float, float]]:
    """The DEM as a shaded-relief PNG in Web Mercator, at most ``max_size`` pixels a side, and its lon/lat bounds."""
    rgba, bounds = hillshade_rgba(dem_path, max_size=max_size)
    return encode_png(rgba), bounds


def hillshade_rgba(dem_path: str | Path, *,
                   max_size: int = MAX_SIZE) -> tuple[npt.NDArray[np.uint8], tuple[float, float, float, float]]:
    """The DEM's shaded relief as an RGBA array in Web Mercator (north up) and its lon/lat bounds."""
    with rasterio.open(dem_path) as source:
        with warnings.catch_warnings():  # rasterio's own Affine arithmetic warns on recent affine releases
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            transform, width, height = calculate_default_transform(
                source.crs, "EPSG:3857", source.width, source.height, *source.bounds)
        scale = max(width / max_size, height / max_size, 1.0)
        west, north = transform.c, transform.f
        east, south = west + transform.a * width, north + transform.e * height
        width, height = max(int(width / scale), 1), max(int(height / scale), 1)
        transform = Affine((east - west) / width, 0.0, west, 0.0, (south - north) / height, north)
        target = np.full((height, width), np.nan, dtype=np.float32)
        reproject(rasterio.band(source, 1), target, dst_transform=transform, dst_crs="EPSG:3857",
                  dst_nodata=np.nan, resampling=Resampling.bilinear)
        lonlat = transform_bounds("EPSG:3857", "EPSG:4326", west, south, east, north)
    # Web Mercator metres are stretched by 1/cos(latitude); shade with ground distances
    mid_lat = np.radians((lonlat[1] + lonlat[3]) / 2)
    cell = abs(transform.a) * float(np.cos(mid_lat))
    return shaded_rgba(target, cell, cell), (float(lonlat[0]), float(lonlat[1]), float(lonlat[2]), float(lonlat[3]))


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI (for standalone files)."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def basemap_from_dem(dem_path: str | Path, *, url: str | None = None, max_size: int = MAX_SIZE) -> Basemap:
    """A :class:`Basemap` of the DEM: the image inline as a data URI, or ``url`` where the service serves it."""
    png, bounds = hillshade_png(dem_path, max_size=max_size)
    return Basemap(url or data_uri(png), bounds)
