"""Raster tile benchmark: twin.raster.render_tile beside rio-tiler (TiTiler's engine) on an EPSG:4547 COG.

Run: python bench/bench_raster.py [--tiles 200] [--rounds 2] [--skip-rio-tiler]
A 4000 × 4000 float32 10 m DEM-like COG (40 km square around the station, deflate, 256 px blocks, overviews) is
written once to bench/out/ and reused. The same tiles at z14–z17 go through both engines, single-threaded, in
alternating rounds (twin, rio-tiler, twin, rio-tiler, …); the first and the last round are shown. rio-tiler
opens a Reader per tile, as a TiTiler request does; twin.raster keeps the dataset and its transformer open
across calls, which is the point of the design. Needs ``pip install rio-tiler``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, summarize, time_ms

STATION_E, STATION_N = 503012.0, 2501282.0
SIZE, RES = 4000, 10.0
VALUE_RANGE = (20.0, 200.0)
COLORMAP = "terrain"


def ensure_dem(path: Path) -> Path:
    """Write the benchmark DEM (float32 metres, nodata -9999 over a 'reservoir') unless it exists."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    x0, y1 = STATION_E - SIZE * RES / 2, STATION_N + SIZE * RES / 2
    offsets = (np.arange(SIZE) + 0.5) * RES - SIZE * RES / 2
    x, y = np.meshgrid(offsets, -offsets)
    dem = 90 + 45 * np.sin(x / 1700.0) * np.cos(y / 2300.0) + 25 * np.sin((x + y) / 5100.0) + 0.0008 * x
    dem += np.random.default_rng(1).normal(0.0, 0.3, dem.shape)
    dem[(x / 1000 + 8) ** 2 + (y / 1000 - 9) ** 2 < 4] = -9999.0
    profile = {
        "driver": "COG", "width": SIZE, "height": SIZE, "count": 1, "dtype": "float32", "crs": "EPSG:4547",
        "transform": Affine(RES, 0.0, x0, 0.0, -RES, y1), "nodata": -9999.0, "compress": "deflate",
        "predictor": "FLOATING_POINT", "blocksize": 256, "overviews": "AUTO", "overview_resampling": "average",
    }
    scratch = path.with_suffix(".tmp.tif")
    with rasterio.open(scratch, "w", **profile) as dataset:
        dataset.write(dem.astype(np.float32), 1)
    scratch.replace(path)
    return path


def pick_tiles(path: Path, count: int) -> list[tuple[int, int, int]]:
    """``count`` distinct tiles at z14–z17 (a quarter each) whose centres fall on the raster."""
    import morecantile
    from pyproj import Transformer

    tms = morecantile.tms.get("WebMercatorQuad")
    with rasterio.open(path) as dataset:
        left, bottom, right, top = dataset.bounds
    to_lonlat = Transformer.from_crs(4547, 4326, always_xy=True)
    rng = np.random.default_rng(42)
    tiles: list[tuple[int, int, int]] = []
    for z in (14, 15, 16, 17):
        seen: set[tuple[int, int, int]] = set()
        while len(seen) < count // 4:
            lon, lat = to_lonlat.transform(rng.uniform(left, right), rng.uniform(bottom, top))
            tile = tms.tile(lon, lat, z)
            seen.add((tile.z, tile.x, tile.y))
        tiles.extend(sorted(seen))
    return tiles


def run_twin(path: Path, tiles: list[tuple[int, int, int]]) -> tuple[list[float], int]:
    from twin.raster import render_tile

    samples, size = [], 0
    for z, x, y in tiles:
        ms, png = time_ms(lambda z=z, x=x, y=y: render_tile(path, z, x, y, colormap=COLORMAP, value_range=VALUE_RANGE))
        samples.append(ms)
        size += len(png)  # type: ignore[arg-type]
    return samples, size


def run_rio_tiler(path: Path, tiles: list[tuple[int, int, int]]) -> tuple[list[float], int]:
    from rio_tiler.colormap import cmap
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    colormap = cmap.get(COLORMAP)

    def one(z: int, x: int, y: int) -> bytes:
        with Reader(str(path)) as src:  # a TiTiler request opens the COG afresh
            try:
                image = src.tile(x, y, z)
            except TileOutsideBounds:
                return b""
            image.rescale(in_range=(VALUE_RANGE,))
            return image.render(img_format="PNG", colormap=colormap)

    samples, size = [], 0
    for z, x, y in tiles:
        ms, png = time_ms(lambda z=z, x=x, y=y: one(z, x, y))
        samples.append(ms)
        size += len(png)  # type: ignore[arg-type]
    return samples, size


def report(name: str, samples: list[float], size: int) -> float:
    rate = len(samples) / (sum(samples) / 1000)
    print(f"{name:<22} {rate:7.1f} tiles/s   {summarize(samples)}   mean PNG {size / len(samples) / 1024:.1f} KiB")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-rio-tiler", action="store_true")
    args = parser.parse_args()

    path = ensure_dem(OUT / "bench_dem_4547.tif")
    tiles = pick_tiles(path, args.tiles)
    print(f"COG {path.name}: {SIZE}×{SIZE} float32, {RES:g} m, EPSG:4547; {len(tiles)} tiles at z14–z17")

    from pyproj import Transformer

    setup_ms, _ = time_ms(lambda: Transformer.from_crs(3857, 4547, always_xy=True))
    print(f"one PROJ setup EPSG:3857 → EPSG:4547 on this machine: {setup_ms:.1f} ms")

    from twin.raster import clear_cache, render_tile

    clear_cache()
    first_ms, _ = time_ms(lambda: render_tile(path, *tiles[0], colormap=COLORMAP, value_range=VALUE_RANGE))
    print(f"twin.raster first tile (opens the COG, resolves the CRS, builds the transformer): {first_ms:.1f} ms")

    engines = [("twin.raster", run_twin)]
    try:
        import rio_tiler

        if not args.skip_rio_tiler:
            engines.append((f"rio-tiler {rio_tiler.__version__}", run_rio_tiler))
    except ImportError:
        print("rio-tiler is not installed (pip install rio-tiler): only twin.raster is measured")

    rounds: list[dict[str, tuple[list[float], int]]] = []
    started = time.perf_counter()
    for _ in range(max(args.rounds, 1)):
        rounds.append({name: run(path, tiles) for name, run in engines})
    print(f"{len(rounds)} alternating rounds in {time.perf_counter() - started:.0f} s")
    if len(rounds) > 1:
        print("first round (twin.raster decompresses each COG block the first time it is read):")
        for name, _ in engines:
            report(name, *rounds[0][name])
        print("last round:")
    rates = {name: report(name, *rounds[-1][name]) for name, _ in engines}
    if len(rates) == 2:
        ours, theirs = rates.values()
        print(f"throughput ratio twin.raster / rio-tiler (last round): {ours / theirs:.1f}×")


if __name__ == "__main__":
    main()
