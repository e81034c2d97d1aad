"""Colour maps for single-band rasters: 256-entry RGBA lookup tables and the value → colour step.

``terrain`` is matplotlib's terrain ramp (used for the DEM), ``risk`` runs green → yellow → red (ColorBrewer
RdYlGn, reversed; used for the void-risk probability), ``gray`` black → white.

>>> lut = colormap_lut("risk")
>>> lut.shape, tuple(int(v) for v in lut[0]), tuple(int(v) for v in lut[-1])
((256, 4), (26, 150, 65, 255), (215, 25, 28, 255))
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from twin.errors import InvalidQuery

Stops = tuple[tuple[float, tuple[int, int, int]], ...]

#: Colour stops of each map: (position 0–1, RGB); the lookup table interpolates linearly between them.
COLORMAPS: dict[str, Stops] = {
    "terrain": (
        (0.00, (51, 51, 153)),
        (0.15, (0, 153, 255)),
        (0.25, (0, 204, 102)),
        (0.50, (255, 255, 153)),
        (0.75, (128, 92, 84)),
        (1.00, (255, 255, 255)),
    ),
    "risk": (
        (0.00, (26, 150, 65)),
        (0.25, (166, 217, 106)),
        (0.50, (255, 255, 191)),
        (0.75, (253, 174, 97)),
        (1.00, (215, 25, 28)),
    ),
    "gray": (
        (0.0, (0, 0, 0)),
        (1.0, (255, 255, 255)),
    ),
}
DEFAULT_COLORMAP = "gray"


def check_colormap(name: str | None) -> str:
    """The colour map's name (``gray`` for ``None``); ``InvalidQuery`` for an unknown one."""
    if name is None:
        return DEFAULT_COLORMAP
    if name not in COLORMAPS:
        raise InvalidQuery(f"unknown colormap {name!r}; known: {', '.join(COLORMAPS)}")
    return name


@cache
def colormap_lut(name: str) -> npt.NDArray[np.uint8]:
    """The (256, 4) RGBA lookup table of a colour map, fully opaque; read-only."""
    stops = COLORMAPS[check_colormap(name)]
    positions = np.array([p for p, _ in stops])
    colors = np.array([c for _, c in stops], dtype=np.float64)
    at = np.linspace(0.0, 1.0, 256)
    lut = np.full((256, 4), 255, dtype=np.uint8)
    for channel in range(3):
        lut[:, channel] = np.round(np.interp(at, positions, colors[:, channel])).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def check_value_range(value_range: tuple[float, float] | None) -> tuple[float, float] | None:
    """Validate a colour stretch ``(low, high)``: two finite numbers with low < high; ``None`` passes."""
    if value_range is None:
        return None
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise InvalidQuery(f"value range must be two numbers low,high, got {value_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise InvalidQuery(f"value range must be finite with low < high, got {low}, {high}")
    return low, high


def colorize(
    values: np.ndarray, valid: npt.NDArray[np.bool_], name: str, value_range: tuple[float, float]
) -> npt.NDArray[np.uint8]:
    """Map values to RGBA, shape ``values.shape + (4,)``, through the colour map ``name``.

    ``value_range`` is stretched over the table and clamped at both ends; pixels where ``valid`` is False come
    out fully transparent (0, 0, 0, 0).
    """
    low, high = value_range
    scale = np.float32(255.0 / (high - low))
    scaled = (values.astype(np.float32, copy=False) - np.float32(low)) * scale
    scaled += np.float32(0.5)  # round to the nearest entry
    np.clip(scaled, 0.0, 255.0, out=scaled)
    scaled[~valid] = 0.0
    index = scaled.astype(np.uint8)
    table = _lut32(name)
    packed = table[index]
    packed[~valid] = 0
    return packed.view(np.uint8).reshape((*values.shape, 4))


@cache
def _lut32(name: str) -> npt.NDArray[np.uint32]:
    """The lookup table with each RGBA entry packed into one uint32 (native byte order), for one-step indexing."""
    return np.ascontiguousarray(colormap_lut(name)).view(np.uint32).ravel()
