"""The sample's rasters: a 5 m DEM and a 10 m ground-penetrating-radar void-risk grid, written as COGs.

Both grids are axis-aligned in EPSG:4547 and cover the North Station district (at Shenzhen scale too: the
radar survey and the fine DEM are local products). Ground elevation is a smooth analytic surface, so building
heights above sea level can be sampled anywhere, inside or outside the raster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from layers import get_raster
from twin.sample.common import METRIC_CRS, FloatArray, StreetFrame
from twin.sample.district import Roads
from twin.sample.terrain import elevation


@dataclass(frozen=True)
class RasterData:
    """One band of a raster in memory: values, the pixel → CRS transform, the CRS and the nodata value."""

    array: np.ndarray
    transform: Affine
    crs: str
    nodata: float | None


def _grid(frame: StreetFrame, half_u: float, half_v: float, resolution: float) -> tuple[Affine, int, int]:
    """A north-up grid in EPSG:4547 snapped to ``resolution`` that covers the rotated district square."""
    corners_u = np.array([-half_u, half_u, half_u, -half_u])
    corners_v = np.array([-half_v, -half_v, half_v, half_v])
    x, y = frame.to_xy(corners_u, corners_v)
    pad = 4 * resolution
    x0 = np.floor((x.min() - pad) / resolution) * resolution
    y1 = np.ceil((y.max() + pad) / resolution) * resolution
    width = int(np.ceil((x.max() + pad - x0) / resolution))
    height = int(np.ceil((y1 - (y.min() - pad)) / resolution))
    return Affine(resolution, 0.0, x0, 0.0, -resolution, y1), width, height


def _pixel_uv(frame: StreetFrame, transform: Affine, width: int, height: int) -> tuple[FloatArray, FloatArray]:
    cols = transform.c + (np.arange(width) + 0.5) * transform.a
    rows = transform.f + (np.arange(height) + 0.5) * transform.e
    x, y = np.meshgrid(cols, rows)
    return frame.to_uv(x, y)


def make_dem(frame: StreetFrame, half_u: float, half_v: float) -> RasterData:
    """The 5 m DEM of the district (float32, metres above sea level)."""
    transform, width, height = _grid(frame, half_u, half_v, get_raster("dem").resolution_m)
    u, v = _pixel_uv(frame, transform, width, height)
    return RasterData(elevation(u, v).astype(np.float32), transform, METRIC_CRS, -9999.0)


#: Known void hot spots: (road name, fraction along the road inside the district, amplitude).
_HOT_SPOTS = (
    ("民塘路", 0.38, 0.92),
    ("民塘路", 0.71, 0.66),
    ("留仙大道", 0.30, 0.81),
    ("留仙大道", 0.64, 0.58),
    ("致远中路", 0.22, 0.74),
    ("新区大道", 0.57, 0.69),
    ("民治大道", 0.45, 0.61),
)


def make_void_risk(
    frame: StreetFrame, half_u: float, half_v: float, roads: Roads, rng: np.random.Generator
) -> RasterData:
    """The 10 m void-risk grid (probability 0–1): low background, a faint band along roads, a few hot spots."""
    transform, width, height = _grid(frame, half_u, half_v, get_raster("void_risk").resolution_m)
    u, v = _pixel_uv(frame, transform, width, height)
    risk = 0.035 + 0.02 * (np.sin(u / 190.0 + 0.7) * np.cos(v / 230.0) + 1.0)
    reach = 1.45 * max(half_u, half_v)  # the rotated square's corners
    near = ~roads.curved & (np.abs(roads.pos) < reach) & (roads.lo < reach) & (roads.hi > -reach)
    for i in np.flatnonzero(near):
        across, along = (u, v) if roads.axis[i] == 0 else (v, u)
        d = np.abs(across - roads.pos[i])
        inside = (along >= roads.lo[i]) & (along <= roads.hi[i])
        band = 0.09 * np.exp(-((d / max(roads.width[i] / 2.0, 4.0)) ** 2))
        risk = np.maximum(risk, np.where(inside, band + 0.03, 0.0))
    for name, fraction, amp in _HOT_SPOTS:
        matches = np.flatnonzero(roads.name == name)
        if not len(matches):
            continue
        r = int(matches[0])
        half = half_v if roads.axis[r] == 0 else half_u
        lo, hi = max(roads.lo[r], -half), min(roads.hi[r], half)
        centre = lo + fraction * (hi - lo) + rng.normal(0.0, 20.0)
        across, along = (u, v) if roads.axis[r] == 0 else (v, u)
        sigma_along, sigma_across = rng.uniform(25.0, 55.0), rng.uniform(7.0, 11.0)
        offset = rng.uniform(-0.25, 0.25) * roads.width[r]
        spot = amp * np.exp(
            -((along - centre) ** 2) / (2 * sigma_along**2)
            - ((across - roads.pos[r] - offset) ** 2) / (2 * sigma_across**2)
        )
        risk = risk + spot
    return RasterData(np.clip(risk, 0.0, 0.98).astype(np.float32), transform, METRIC_CRS, -1.0)


def write_cog(data: RasterData, path: Path, *, resampling: str = "average") -> Path:
    """Write ``data`` as a Cloud-Optimized GeoTIFF (deflate, 256 px tiles, internal overviews)."""
    height, width = data.array.shape
    profile = {
        "driver": "COG",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": data.crs,
        "transform": data.transform,
        "nodata": data.nodata,
        "compress": "deflate",
        "predictor": "FLOATING_POINT",
        "blocksize": 256,
        "overviews": "AUTO",
        "overview_resampling": resampling,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data.array, 1)
    return path
