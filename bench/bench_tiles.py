"""Vector tile throughput over HTTP: 10 concurrent clients asking for building tiles z14–z16 over the dense area.

Run: python bench/bench_tiles.py [--store PATH|URL] [--seconds 20] [--clients 10]
Default store: the 1,000,000-building Shenzhen-scale set in bench/out/shenzhen.gpkg (built by bench_core.py).
The clients cycle through the distinct tiles of the core: the first request of each tile builds it (reported
apart), later ones are served from the tile cache, as a command-centre screen's repeated views are.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import morecantile
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, free_port, rss_mb, summarize

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
    latencies: list[float] = []
    cold: list[float] = []
    sizes: list[int] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    cursor = iter(range(10**9))

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.perf_counter() < deadline:
                with lock:
                    index = next(cursor)
                    z, y, x = tiles[index % len(tiles)]
                started = time.perf_counter()
                response = http.get(f"/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}")
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status_code in (200, 204):
                        latencies.append(elapsed)
                        if index < len(tiles):  # first request of each tile: built, not from the cache
                            cold.append(elapsed)
                        sizes.append(len(response.content))
                    else:
                        errors += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    print(f"{clients} clients, {len(latencies):,} tiles in {wall:.1f} s: {len(latencies) / wall:.0f} tiles/s, "
          f"{summarize(latencies)}, mean {np.mean(sizes) / 1024:.0f} KiB, errors {errors}")
    print(f"  first request of each tile (built, not cached): {summarize(cold)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default=str(OUT / "shenzhen.gpkg"))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "TWIN_API_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "serve", "--store", args.store], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{url}/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        tiles = tile_pool(np.random.default_rng(11), 3_000)  # the core holds about 270 tiles at z14–z16
        print(f"{len(tiles)} distinct tiles z14–z16 over the core")
        run(url, tiles, args.clients, args.seconds)
        print(f"service resident memory after the run: {rss_mb(proc.pid):.0f} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
