"""Building vector tiles over HTTP: the twin (PostGIS and GeoPackage stores) beside tipg on the same PostGIS table.

Run: python bench/bench_peer_tiles.py [--rounds 2] [--clients 10] [--skip-gpkg]

Data: the 1,000,000-building Shenzhen-scale set (bench/out/shenzhen.gpkg; its buildings in the PostGIS database
``twin_bench``, loaded once, table and indexes pre-warmed so that neither side pays the disk). Tiles: the distinct
z14–z16 tiles within about 4 km of the station (the dense core, the same pool as bench_tiles.py).

Each round starts every server afresh, warms it up on tiles outside the pool, then sends the pool once with 10
concurrent clients (``cold``: every tile built, none from a cache). tipg caches nothing, so its pass is the one
to put beside the twin's cold pass. The twin then gets the pool a second time (``cached``: served from its tile
cache), reported apart. The servers take turns within a round and the order flips every round, so the other
work on the machine falls on both alike. tipg is set to the twin's tile buffer (64) and feature cap (20,000).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import morecantile
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_tiles import tile_pool
from bench.common import shenzhen_gpkg
from bench.load import Pass, Server, drive, load_average, ratio_line
from bench.peers import FAIRNESS, bench_database, ensure_peers, tipg_server, twin_server

WMQ = morecantile.tms.get("WebMercatorQuad")


def warmup_tiles(pool: list[tuple[int, int, int]], count: int = 30) -> list[tuple[int, int, int]]:
    """``count`` z14–z16 tiles in a ring just outside the pool (same kind of work, never measured)."""
    rng, seen = np.random.default_rng(5), set(pool)
    taken: list[tuple[int, int, int]] = []
    while len(taken) < count:
        z = int(rng.integers(14, 17))
        angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.07)
        tile = WMQ.tile(114.0239 + reach * np.cos(angle), 22.6119 + reach * np.sin(angle), z)
        key = (tile.z, tile.y, tile.x)
        if key not in seen:
            seen.add(key)
            taken.append(key)
    return taken


def twin_paths(tiles: list[tuple[int, int, int]]) -> list[str]:
    return [f"/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, y, x in tiles]


def tipg_paths(tiles: list[tuple[int, int, int]]) -> list[str]:
    return [f"/collections/public.buildings/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, y, x in tiles]


def one_server(server: Server, paths: list[str], warm: list[str], clients: int, caches: bool) -> list[Pass]:
    with server:
        drive(server.url, warm, "warm-up", clients=clients)
        passes = [drive(server.url, paths, f"{server.name} cold", clients=clients)]
        if caches:
            passes.append(drive(server.url, paths, f"{server.name} cached", clients=clients))
        for p in passes:
            print(f"    {p.line('tiles')}   (load {load_average()})")
        return passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--skip-gpkg", action="store_true", help="leave out the twin on the GeoPackage store")
    args = parser.parse_args()
    ensure_peers()
    gpkg = shenzhen_gpkg()
    url = bench_database(gpkg)
    pool = tile_pool(np.random.default_rng(11), 3_000)
    warm = warmup_tiles(pool)
    print(f"{len(pool)} distinct building tiles z14–z16 over the core, {args.clients} concurrent clients, "
          f"{args.rounds} rounds; load at start {load_average()}")
    print(f"{FAIRNESS}; tipg with its asyncpg pool, the twin with its SQLAlchemy pool and thread pool")
    servers = [("tipg", lambda: tipg_server(url), tipg_paths, False),
               ("twin-postgis", lambda: twin_server("twin-postgis", url), twin_paths, True)]
    if not args.skip_gpkg:
        servers.append(("twin-gpkg", lambda: twin_server("twin-gpkg", str(gpkg)), twin_paths, True))
    totals: dict[str, Pass] = {}
    for round_ in range(args.rounds):
        order = servers if round_ % 2 == 0 else servers[::-1]
        print(f"round {round_ + 1}: {' → '.join(name for name, *_ in order)}")
        for _name, make, paths_of, caches in order:
            for p in one_server(make(), paths_of(pool), paths_of(warm), args.clients, caches):
                totals[p.label] = totals[p.label].merged(p) if p.label in totals else p
    print(f"all rounds pooled (load at end {load_average()}):")
    for p in totals.values():
        print(f"  {p.line('tiles')}")
    tipg = totals["tipg cold"]
    for label in ("twin-postgis cold", "twin-gpkg cold", "twin-postgis cached", "twin-gpkg cached"):
        if label in totals:
            print(ratio_line(totals[label], tipg))
    print("goal: twin cold ≥ 1.5× tipg's throughput at equal or lower p95 (cached figures are not the comparison)")


if __name__ == "__main__":
    main()
