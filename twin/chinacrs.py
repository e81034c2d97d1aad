"""GCJ-02 (Amap, Tencent) and BD-09 (Baidu) coordinates: closed-form forward transforms and iterative inverses.

Chinese basemaps publish lon/lat in two legally mandated obfuscations of WGS 84: GCJ-02 ("Mars" coordinates)
adds a smooth, position-dependent shift of a few hundred metres, and BD-09 applies a further polar-coordinate
twist to GCJ-02. Both apply only inside China's bounding box; outside it every function here is the identity,
point by point. All functions take scalars or array-likes of longitudes and latitudes (degrees), broadcast them
together and return two float64 arrays of the broadcast shape. NaN passes through unchanged.

The forward transforms are closed-form. Their inverses have no closed form, so they are solved iteratively
(fixed-point iteration on the forward transform) until the forward image of the result lies within
``INVERSE_TOLERANCE_DEG`` of the target; the common one-step approximation is 1-2 m off in Shenzhen.

>>> lon, lat = wgs84_to_gcj02(114.0239, 22.6119)
>>> back = gcj02_to_wgs84(lon, lat)
>>> bool(abs(back[0] - 114.0239) < 1e-9 and abs(back[1] - 22.6119) < 1e-9)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

#: ``(min_lon, min_lat, max_lon, max_lat)`` of the area where the obfuscations apply.
CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)
#: An inverse stops when its forward image is this close to the target, per axis, in degrees (~0.1 mm).
INVERSE_TOLERANCE_DEG = 1e-9
#: Iteration cap of the inverses; convergence normally takes 3 to 5 steps.
MAX_ITERATIONS = 50

_KRASOVSKY_A = 6378245.0  # semi-major axis of the Krasovsky 1940 ellipsoid, metres
_KRASOVSKY_EE = 0.00669342162296594323  # its first eccentricity squared
_BD_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006

Array = npt.NDArray[np.float64]
Pair = tuple[Array, Array]


def in_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each point lies inside ``CHINA_BOX`` (edges included); False for NaN."""
    lon_a, lat_a = _as_arrays(lon, lat)
    min_lon, min_lat, max_lon, max_lat = CHINA_BOX
    return (lon_a >= min_lon) & (lon_a <= max_lon) & (lat_a >= min_lat) & (lat_a <= max_lat)


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Pair:
    """WGS 84 lon/lat to GCJ-02 lon/lat (closed form)."""
    return _inside_only(_gcj02_forward, *_as_arrays(lon, lat))


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Pair:
    """GCJ-02 lon/lat to WGS 84 lon/lat (iterative inverse, sub-millimetre)."""
    return _inside_only(lambda x, y: _invert(_gcj02_forward, x, y), *_as_arrays(lon, lat))


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Pair:
    """GCJ-02 lon/lat to BD-09 lon/lat (closed form)."""
    return _inside_only(_bd09_forward, *_as_arrays(lon, lat))


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Pair:
    """BD-09 lon/lat to GCJ-02 lon/lat (iterative inverse, sub-millimetre)."""
    return _inside_only(lambda x, y: _invert(_bd09_forward, x, y), *_as_arrays(lon, lat))


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Pair:
    """WGS 84 lon/lat to BD-09 lon/lat (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Pair:
    """BD-09 lon/lat to WGS 84 lon/lat (through GCJ-02, both steps iterative)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _as_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Pair:
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return np.array(lon_a), np.array(lat_a)  # writable, contiguous copies


def _inside_only(step: Callable[[Array, Array], Pair], lon: Array, lat: Array) -> Pair:
    """Apply ``step`` to the points inside China's box and leave the others as they are."""
    inside = in_china(lon, lat)
    if inside.any():
        lon[inside], lat[inside] = step(lon[inside], lat[inside])
    return lon, lat


def _gcj02_forward(lon: Array, lat: Array) -> Pair:
    """Apply the GCJ-02 shift, without the bounding-box test."""
    x = lon - 105.0
    y = lat - 35.0
    # Both shifts share a base wave in x; they are in "metres" of an auxiliary sphere until scaled below.
    wave_x = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    root = np.sqrt(np.abs(x))
    north = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * root + wave_x
    north += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    north += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    east = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * root + wave_x
    east += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    east += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    # Scale to degrees with the Krasovsky meridian and prime-vertical radii of curvature.
    phi = np.radians(lat)
    w2 = 1.0 - _KRASOVSKY_EE * np.sin(phi) ** 2
    w = np.sqrt(w2)
    meridian_radius = _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (w2 * w)
    parallel_radius = _KRASOVSKY_A / w * np.cos(phi)
    return lon + np.degrees(east / parallel_radius), lat + np.degrees(north / meridian_radius)


def _bd09_forward(lon: Array, lat: Array) -> Pair:
    """Apply the BD-09 twist to GCJ-02 coordinates, without the bounding-box test."""
    radius = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    angle = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return radius * np.cos(angle) + _BD_DLON, radius * np.sin(angle) + _BD_DLAT


def _invert(forward: Callable[[Array, Array], Pair], lon: Array, lat: Array) -> Pair:
    """Solve ``forward(x, y) == (lon, lat)`` by fixed-point iteration.

    The shifts vary slowly (their derivative is well below 1e-2), so ``p <- p - (forward(p) - target)`` is a
    strong contraction: each step gains two to three digits. A point stops as soon as its forward image is
    within ``INVERSE_TOLERANCE_DEG`` (so results do not depend on the batch), or after ``MAX_ITERATIONS``.
    """
    x, y = lon.copy(), lat.copy()
    active = np.arange(x.size)
    for _ in range(MAX_ITERATIONS):
        fx, fy = forward(x[active], y[active])
        dx, dy = fx - lon[active], fy - lat[active]
        moving = (np.abs(dx) > INVERSE_TOLERANCE_DEG) | (np.abs(dy) > INVERSE_TOLERANCE_DEG)
        active, dx, dy = active[moving], dx[moving], dy[moving]
        if active.size == 0:
            break
        x[active] -= dx
        y[active] -= dy
    return x, y
