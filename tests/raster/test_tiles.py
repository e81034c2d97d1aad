"""PNG raster tiles: decoding, transparency, agreement with GDAL's warper, overview choice, errors, threads."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.warp import Resampling

from tests.raster.conftest import (
    HOLE_E,
    HOLE_N,
    HOLE_R,
    NODATA,
    RES,
    SIZE,
    STATION_E,
    STATION_N,
    X0,
    Y1,
    exact_tile,
    lonlat,
    metric_value,
    reference_tile,
)
from tests.raster.conftest import decode_png as decode
from twin.errors import InvalidQuery, NotFound
from twin.raster import (
    colorize,
    encode_png,
    open_raster,
    render_tile,
    tile_bounds,
    tile_overview_level,
    transparent_png,
    warp_tile,
)
from twin.raster import tiles as tiles_module

WMQ = morecantile.tms.get("WebMercatorQuad")
INSIDE = lonlat(STATION_E, STATION_N)  # the metric raster's centre
NW_CORNER = lonlat(X0, Y1)
SE_CORNER = lonlat(X0 + SIZE * RES, Y1 - SIZE * RES)
HOLE_EDGE = lonlat(HOLE_E + HOLE_R, HOLE_N)  # on the rim of the nodata disc


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    tile = WMQ.tile(lon, lat, z)
    return tile.z, tile.x, tile.y


def agreement(ours: np.ma.MaskedArray, ref: np.ma.MaskedArray) -> tuple[float, float]:
    """(share of pixels whose mask agrees, share of both-valid pixels with identical values)."""
    same_mask = float(np.mean(ours.mask == ref.mask))
    both = ~ours.mask & ~ref.mask
    same_value = float(np.mean(ours.data[both] == ref.data[both])) if both.any() else 1.0
    return same_mask, same_value


def test_tile_is_a_256_rgba_png_with_the_colour_map(metric_cog: Path) -> None:
    png = render_tile(metric_cog, *tile_at(*INSIDE, 16), colormap="terrain", value_range=(0, 1000))
    image = decode(png)
    assert image.shape == (256, 256, 4)
    assert (image[..., 3] == 255).all()  # fully inside the raster, away from the nodata disc
    values = warp_tile(metric_cog, *tile_at(*INSIDE, 16))
    expected = colorize(values.data, ~values.mask, "terrain", (0, 1000))
    assert np.array_equal(image, expected)


@pytest.mark.parametrize("z", [15, 16, 17])
@pytest.mark.parametrize("where", [INSIDE, NW_CORNER, SE_CORNER, HOLE_EDGE])
def test_nearest_tile_matches_gdal_warp(metric_cog: Path, z: int, where: tuple[float, float]) -> None:
    zxy = tile_at(*where, z)
    assert tile_overview_level(metric_cog, *zxy) == 0
    ours, ref = warp_tile(metric_cog, *zxy), reference_tile(metric_cog, *zxy)
    same_mask, same_value = agreement(ours, ref)
    assert same_mask >= 0.99 and same_value >= 0.99, (same_mask, same_value)
    assert min(agreement(ours, exact_tile(metric_cog, *zxy))) >= 0.999


def test_edge_tile_is_transparent_off_the_raster(metric_cog: Path) -> None:
    zxy = tile_at(*NW_CORNER, 15)
    image = decode(render_tile(metric_cog, *zxy, colormap="gray"))
    ref = reference_tile(metric_cog, *zxy)
    opaque = image[..., 3] == 255
    assert 0.05 < opaque.mean() < 0.95
    assert set(np.unique(image[..., 3])) == {0, 255}
    assert np.mean(opaque == ~ref.mask) >= 0.99
    assert (image[~opaque] == 0).all()  # transparent pixels carry no colour


def test_png_matches_the_coloured_reference_within_one_dn(metric_cog: Path) -> None:
    zxy = tile_at(*HOLE_EDGE, 16)
    image = decode(render_tile(metric_cog, *zxy, colormap="risk", value_range=(200, 800)))
    ref = reference_tile(metric_cog, *zxy)
    expected = colorize(ref.filled(0), ~ref.mask, "risk", (200, 800))
    close = np.all(np.abs(image.astype(int) - expected.astype(int)) <= 1, axis=-1)
    assert (image[..., 3] == 0).any()  # the nodata disc is transparent
    assert close.mean() >= 0.99


def test_nodata_pixels_are_transparent(metric_cog: Path) -> None:
    zxy = tile_at(*lonlat(HOLE_E, HOLE_N), 17)  # inside the nodata disc
    assert (decode(render_tile(metric_cog, *zxy))[..., 3] == 0).all()
    assert warp_tile(metric_cog, *zxy).mask.all()


def test_tile_off_the_raster_is_transparent(metric_cog: Path) -> None:
    zxy = tile_at(113.5, 22.2, 15)
    png = render_tile(metric_cog, *zxy, colormap="terrain")
    assert png == transparent_png(256)
    image = decode(png)
    assert image.shape == (256, 256, 4) and (image == 0).all()


def test_overview_is_chosen_for_low_zooms(metric_cog: Path) -> None:
    with rasterio.open(metric_cog) as dataset:
        assert dataset.overviews(1) == [2, 4]
    levels = {z: tile_overview_level(metric_cog, *tile_at(*INSIDE, z)) for z in (10, 11, 12, 13, 14, 16)}
    # tile pixels at 22.6° N: z12 ≈ 35 m (3.5 source px), z11 ≈ 70 m, z13 ≈ 18 m
    assert levels == {10: 2, 11: 2, 12: 1, 13: 0, 14: 0, 16: 0}


@pytest.mark.parametrize(("z", "level"), [(11, 2), (12, 1)])
def test_low_zoom_tile_matches_a_warp_of_that_overview(metric_cog: Path, z: int, level: int) -> None:
    zxy = tile_at(*INSIDE, z)
    ours = warp_tile(metric_cog, *zxy)
    assert min(agreement(ours, exact_tile(metric_cog, *zxy, overview_level=level - 1))) >= 0.999
    # GDAL interpolates its transform along 2.4 km rows here: a few per cent of its pixels pick a neighbour
    same_mask, same_value = agreement(ours, reference_tile(metric_cog, *zxy, overview_level=level - 1))
    assert same_mask >= 0.99 and same_value >= 0.97
    if level:  # and it is not the full-resolution warp
        _, full_value = agreement(ours, reference_tile(metric_cog, *zxy))
        assert full_value < 0.9


def test_interpolated_pixel_positions_are_within_a_hundredth_of_a_pixel(metric_cog: Path) -> None:
    source = open_raster(metric_cog)
    to_metric = Transformer.from_crs(3857, 4547, always_xy=True)
    for z in (9, 12, 15, 18):
        zxy = tile_at(*INSIDE, z)
        level = tile_overview_level(metric_cog, *zxy)
        left, bottom, right, top = tile_bounds(*zxy)
        nx, ny = tiles_module._node_grid(source, "WebMercatorQuad", (left, bottom, right, top), 256, 17)
        cols, rows = tiles_module._pixel_positions(source, level, nx, ny, 256)
        step = (right - left) / 256
        gx, gy = np.meshgrid(left + (np.arange(256) + 0.5) * step, top - (np.arange(256) + 0.5) * step)
        exact_cols, exact_rows = ~source.levels[level].transform @ to_metric.transform(gx, gy)
        error = max(np.abs(cols - exact_cols).max(), np.abs(rows - exact_rows).max())
        assert error < 0.01, (z, level, error)  # in pixels of the level the tile reads


def test_bilinear_reproduces_a_linear_surface(metric_cog: Path) -> None:
    z, x, y = tile_at(*INSIDE, 17)
    ours = warp_tile(metric_cog, z, x, y, resampling="bilinear")
    left, _, right, top = tile_bounds(z, x, y)
    step = (right - left) / 256
    gx, gy = np.meshgrid(left + (np.arange(256) + 0.5) * step, top - (np.arange(256) + 0.5) * step)
    east, north = Transformer.from_crs(3857, 4547, always_xy=True).transform(gx, gy)
    assert not ours.mask.any()
    assert np.abs(ours.data - metric_value(east, north)).max() < 0.01  # float32 data, 0.1 per metre east
    nearest = warp_tile(metric_cog, z, x, y)
    assert np.abs(nearest.data - metric_value(east, north)).max() > 0.3  # nearest steps by up to half a pixel


def test_bilinear_keeps_nodata_edges_and_agrees_with_gdal(metric_cog: Path) -> None:
    zxy = tile_at(*HOLE_EDGE, 16)
    ours, ref = warp_tile(metric_cog, *zxy, resampling="bilinear"), reference_tile(
        metric_cog, *zxy, resampling=Resampling.bilinear
    )
    assert np.array_equal(ours.mask, warp_tile(metric_cog, *zxy).mask)
    both = ~ours.mask & ~ref.mask
    assert 0.05 < both.mean() < 0.95
    assert np.median(np.abs(ours.data[both] - ref.data[both])) < 0.05


def test_geographic_raster_matches_gdal_warp(geographic_cog: Path) -> None:
    for z in (15, 16):
        zxy = tile_at(114.01, 22.62, z)
        ours, ref = warp_tile(geographic_cog, *zxy), reference_tile(geographic_cog, *zxy)
        same_mask, same_value = agreement(ours, ref)
        assert same_mask >= 0.99 and same_value >= 0.99
    png = render_tile(geographic_cog, *tile_at(113.994, 22.637, 15), colormap="gray")  # the NW corner
    alpha = decode(png)[..., 3]
    assert 0 < (alpha == 255).mean() < 1


def test_other_tile_matrix_sets_and_sizes(metric_cog: Path) -> None:
    crs84 = morecantile.tms.get("WorldCRS84Quad").tile(*INSIDE, 14)
    image = decode(render_tile(metric_cog, crs84.z, crs84.x, crs84.y, tms="WorldCRS84Quad", size=512))
    assert image.shape == (512, 512, 4) and (image[..., 3] == 255).all()


def test_dataset_handle_and_numpy_integers_are_accepted(metric_cog: Path) -> None:
    zxy = tile_at(*INSIDE, 16)
    with rasterio.open(metric_cog) as dataset:
        assert render_tile(dataset, *zxy, colormap="risk") == render_tile(metric_cog, *zxy, colormap="risk")
    assert render_tile(metric_cog, *np.array(zxy)) == render_tile(metric_cog, *zxy)


def test_default_stretch_is_the_data_range(metric_cog: Path) -> None:
    zxy = tile_at(*INSIDE, 16)
    assert open_raster(metric_cog).value_range() == pytest.approx((0.0, 1000.0), abs=2.0)
    assert render_tile(metric_cog, *zxy) == render_tile(metric_cog, *zxy, value_range=open_raster(metric_cog)
                                                        .value_range())
    assert render_tile(metric_cog, *zxy) != render_tile(metric_cog, *zxy, value_range=(0, 2000))


def test_encode_png_round_trips() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    image[5:9] = image[4]  # some rows equal to the one above
    assert np.array_equal(decode(encode_png(image)), image)
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("zxy", "kwargs"),
    [
        ((16, 53525, 28540), {"colormap": "rainbow"}),
        ((-1, 0, 0), {}),
        ((25, 0, 0), {}),
        ((3, 8, 0), {}),
        ((3, 0, -1), {}),
        ((16, 53525, 28540), {"tms": "NoSuchMatrixSet"}),
        ((16, 53525, 28540), {"value_range": (5, 5)}),
        ((16, 53525, 28540), {"value_range": ("a", 1)}),
        ((16, 53525, 28540), {"resampling": "cubic"}),
        ((16, 53525, 28540), {"size": 8}),
        ((16, 53525.5, 28540), {}),
    ],
)
def test_bad_requests_are_invalid_queries(metric_cog: Path, zxy: tuple[int, int, int], kwargs: dict) -> None:
    with pytest.raises(InvalidQuery):
        render_tile(metric_cog, *zxy, **kwargs)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        render_tile(tmp_path / "nope.tif", 16, 53525, 28540)
    not_a_raster = tmp_path / "text.tif"
    not_a_raster.write_text("hello")
    with pytest.raises(NotFound):
        render_tile(not_a_raster, 16, 53525, 28540)


def test_threads_render_the_same_tiles(metric_cog: Path) -> None:
    zxys = [tile_at(*INSIDE, z) for z in (12, 13, 14, 15, 16, 17)] * 4
    expected = [render_tile(metric_cog, *zxy, colormap="terrain") for zxy in zxys]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda zxy: render_tile(metric_cog, *zxy, colormap="terrain"), zxys))
    assert got == expected


def test_a_rewritten_file_is_reopened(metric_cog: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.tif"
    shutil.copy(metric_cog, path)
    zxy = tile_at(*INSIDE, 16)
    first = open_raster(path)
    assert open_raster(path) is first
    before = render_tile(path, *zxy, value_range=(0, 1000))
    with rasterio.open(path) as dataset:
        profile, data = dataset.profile, dataset.read(1)
    profile.update(driver="COG", compress="deflate")
    profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.where(data == NODATA, data, 1000 - data), 1)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert open_raster(path) is not first
    assert render_tile(path, *zxy, value_range=(0, 1000)) != before
