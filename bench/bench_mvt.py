"""Mapbox Vector Tile encoding: twin.tiles.encode_tile against the reference mapbox-vector-tile package, same input.

Run: python bench/bench_mvt.py [--runs N]
Cases: 3,000 building footprints (rotated rectangles and L-shapes of 8–60 m, five properties) in the z15 tile at
114.02E 22.61N; 10,000 sensor points (three properties) in the same tile; and, for this encoder only, the same
buildings encoded into the z13 tile around them, where simplification and degenerate-part removal have work to do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import mapbox_vector_tile
import morecantile
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import summarize, time_ms
from twin.tiles import TileLayer, encode_tile, encode_tile_with_stats, tile_bounds

TMS = morecantile.tms.get("WebMercatorQuad")
USES = np.array(["住宅", "商业", "办公", "交通枢纽", "学校", "工业"], dtype=object)


def tile_at(zoom: int) -> morecantile.Tile:
    return TMS.tile(114.02, 22.61, zoom)


def bounds_at(zoom: int) -> tuple[float, float, float, float]:
    tile = tile_at(zoom)
    return tile_bounds(tile.z, tile.x, tile.y)


def buildings(n: int, rng: np.random.Generator) -> TileLayer:
    """Rotated rectangles and L-shapes, centres spread over the z15 tile (kept 60 m inside its edges)."""
    minx, miny, maxx, maxy = bounds_at(15)
    cx = rng.uniform(minx + 60, maxx - 60, n)
    cy = rng.uniform(miny + 60, maxy - 60, n)
    w, h = rng.uniform(8, 60, n), rng.uniform(8, 60, n)
    angle = rng.uniform(0, np.pi / 2, n)
    l_shape = rng.random(n) < 0.4
    # Unit outlines: a rectangle (as a degenerate L with the notch of size 0) or an L with a quarter notch.
    notch = np.where(l_shape, 0.5, 1.0)
    ux = np.stack([-0.5 * np.ones(n), 0.5 * np.ones(n), 0.5 * np.ones(n), notch - 0.5, notch - 0.5,
                   -0.5 * np.ones(n), -0.5 * np.ones(n)], axis=1)
    uy = np.stack([-0.5 * np.ones(n), -0.5 * np.ones(n), notch - 0.5, notch - 0.5, 0.5 * np.ones(n),
                   0.5 * np.ones(n), -0.5 * np.ones(n)], axis=1)
    x, y = ux * w[:, None], uy * h[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    coords = np.stack([cx[:, None] + x * cos - y * sin, cy[:, None] + x * sin + y * cos], axis=2)
    rings = [shapely.linearrings(c if is_l else c[[0, 1, 2, 5, 6]]) for c, is_l in zip(coords, l_shape, strict=True)]
    polygons = shapely.polygons(np.array(rings, dtype=object))
    levels = rng.integers(1, 60, n)
    return TileLayer(
        "buildings", polygons, np.arange(1, n + 1, dtype=np.uint64),
        {
            "name": np.array([f"北站片区{i}号楼" for i in range(n)], dtype=object),
            "use": USES[rng.integers(0, len(USES), n)],
            "levels": levels,
            "height_m": np.round(levels * rng.uniform(2.9, 4.2, n), 1),
            "high_rise": levels * 3.0 > 50,
        },
    )


def sensors(n: int, rng: np.random.Generator) -> TileLayer:
    minx, miny, maxx, maxy = bounds_at(15)
    points = shapely.points(rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n))
    return TileLayer(
        "sensors", points, np.arange(1, n + 1, dtype=np.uint64),
        {
            "kind": np.array(["smoke", "heat", "pressure", "flow"], dtype=object)[rng.integers(0, 4, n)],
            "value": np.round(rng.normal(20, 5, n), 2),
            "online": rng.random(n) < 0.95,
        },
    )


def reference_features(layer: TileLayer) -> list[dict]:
    columns = {key: np.asarray(values).tolist() for key, values in layer.properties.items()}
    assert layer.ids is not None
    return [
        {"geometry": geometry, "id": int(fid), "properties": {key: values[i] for key, values in columns.items()}}
        for i, (geometry, fid) in enumerate(zip(layer.geometries, layer.ids, strict=True))
    ]


def measure(label: str, fn: Callable[[], bytes], runs: int) -> float:
    fn()  # warm-up
    samples = [time_ms(fn)[0] for _ in range(runs)]
    size = len(fn())
    print(f"  {label:<22} {summarize(samples)}, {size / 1024:.0f} KiB")
    return float(np.median(samples))


def compare(title: str, layer: TileLayer, runs: int) -> None:
    bounds = bounds_at(15)
    features = reference_features(layer)
    options = {"quantize_bounds": bounds, "extents": 4096}
    print(title)
    ours = measure("twin.tiles", lambda: encode_tile([layer], bounds), runs)
    ref = measure("mapbox-vector-tile", lambda: mapbox_vector_tile.encode(
        [{"name": layer.name, "features": features}], default_options=options), runs)
    print(f"  ratio (reference / twin.tiles medians): {ref / ours:.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(20240615)
    tile = tile_at(15)
    print(f"tile z{tile.z}/{tile.x}/{tile.y}, {TMS.bounds(tile)} (lon/lat)")
    houses = buildings(3000, rng)
    compare("3,000 building polygons, 5 properties, z15", houses, args.runs)
    compare("10,000 sensor points, 3 properties, z15", sensors(10_000, rng), args.runs)
    z13 = bounds_at(13)
    stats = encode_tile_with_stats([houses], z13).layers[0]
    print(f"3,000 building polygons in the z13 tile, simplified to one unit ({stats.features} kept, "
          f"{stats.empty} dropped as degenerate)")
    measure("twin.tiles", lambda: encode_tile([houses], z13), args.runs)


if __name__ == "__main__":
    main()
