"""The raster core: PNG tiles, point sampling and zonal statistics over the twin's COGs, as pure functions.

Each function takes a path (or an open rasterio dataset) and opens it through a small cache, so the file is
opened and its CRS resolved once per process, not once per call. For example::

    from twin.raster import render_tile, sample_points, zonal_stats

    png = render_tile("dem.tif", 16, 53525, 28540, colormap="terrain", value_range=(40, 200))
    heights = sample_points("dem.tif", [114.0239], [22.6119])        # NaN off the raster or on nodata
    risk = zonal_stats("void_risk.tif", buildings.geometry)           # count, min, max, mean, std per building

Errors are the twin's own: ``InvalidQuery`` for a bad colour map, tile or statistic, ``NotFound`` for a missing
file.
"""

from twin.raster.colormap import COLORMAPS, colorize, colormap_lut
from twin.raster.sampling import (
    DEFAULT_STATS,
    ZONAL_STATS,
    RasterSource,
    clear_cache,
    open_raster,
    sample_points,
    zonal_stats,
)
from twin.raster.tiles import (
    encode_png,
    render_tile,
    tile_bounds,
    tile_overview_level,
    transparent_png,
    warp_tile,
)

__all__ = [
    "COLORMAPS",
    "DEFAULT_STATS",
    "ZONAL_STATS",
    "RasterSource",
    "clear_cache",
    "colorize",
    "colormap_lut",
    "encode_png",
    "open_raster",
    "render_tile",
    "sample_points",
    "tile_bounds",
    "tile_overview_level",
    "transparent_png",
    "warp_tile",
    "zonal_stats",
]
