"""Vector tile throughput over HTTP: 10 concurrent clients asking for building tiles z14–z16 over the dense area.

Run: python bench/bench_tiles.py [--store PATH|URL] [--seconds 20] [--clients 10]
Default store: the 1,000,000-building Shenzhen-scale set in bench/out/shenzhen.gpkg (built by bench_core.py).
One pass over the distinct tiles of the core builds each tile (reported apart); passes over the same tiles then run
until the time is up, served from the tile cache, as a command-centre screen's repeated views are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import morecantile
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, rss_mb, summarize
from bench.load import Pass, Server, drive

CENTRE = (114.0239, 22.6119)


def tile_pool(rng: np.random.Generator, draws: int) -> list[tuple[int, int, int]]:
    """The distinct tiles among ``draws`` random ones at z14–z16 within about 4 km of the station (the dense core)."""
    wmq = morecantile.tms.get("WebMercatorQuad")
    tiles = set()
    for _ in range(draws):
        z = int(rng.integers(14, 17))
        lon = CENTRE[0] + rng.uniform(-0.04, 0.04)
        lat = CENTRE[1] + rng.uniform(-0.035, 0.035)
        t = wmq.tile(lon, lat, z)
        tiles.add((t.z, t.y, t.x))
    return list(tiles)


def run(url: str, tiles: list[tuple[int, int, int]], clients: int, seconds: float) -> None:
    """One pass over the distinct tiles (each built on first request), then cached passes until ``seconds`` are up."""
    paths = [f"/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, y, x in tiles]
    cold = drive(url, paths, "first request of each tile (built)", clients)
    cached = Pass("cached")
    while cold.wall_s + cached.wall_s < seconds:
        cached = cached.merged(drive(url, paths, "cached", clients))
    print(cold.line("tiles"))
    print(cached.line("tiles"))
    total = cold.merged(cached)
    print(f"{clients} clients, {total.ok:,} tiles in {total.wall_s:.1f} s: {total.rate:.0f} tiles/s, "
          f"{summarize(total.latencies_ms)}, errors {total.errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default=str(OUT / "shenzhen.gpkg"))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    argv = [sys.executable, "-m", "twin.cli", "serve", "--store", args.store, "--port", "{port}"]
    with Server("twin-tiles", argv, ready_path="/health") as server:
        tiles = tile_pool(np.random.default_rng(11), 3_000)  # the core holds about 270 tiles at z14–z16
        print(f"{len(tiles)} distinct tiles z14–z16 over the core")
        run(server.url, tiles, args.clients, args.seconds)
        assert server.proc is not None
        print(f"service resident memory after the run: {rss_mb(server.proc.pid):.0f} MiB")


if __name__ == "__main__":
    main()
