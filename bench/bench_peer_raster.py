"""Raster PNG tiles over HTTP: the twin's raster route beside TiTiler's COG endpoint on the same EPSG:4547 COG.

Run: python bench/bench_peer_raster.py [--raster dem] [--tiles 200] [--rounds 2] [--clients 10]

The COG is the Shenzhen-scale set's ``dem.tif`` (EPSG:4547, 5 m, deflate, 256 px blocks; bench/out/, built with
the set). The same z14–z17 tiles over its footprint go to ``/rasters/dem/tiles/WebMercatorQuad/{z}/{y}/{x}.png``
on ``twin serve`` and to TiTiler's ``/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url=…`` with the same colour map
(terrain) and rescale (the catalogue's value range). Neither server caches tiles; each pass sends every tile once
from 10 concurrent clients, the two servers take turns and the order flips every round.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, shenzhen_gpkg
from bench.load import Pass, drive, load_average, ratio_line
from bench.peers import ensure_peers, titiler_server, twin_server
from layers import get_raster


def raster_tiles(path: Path, count: int) -> list[tuple[int, int, int]]:
    """About ``count`` distinct (z, x, y) at z14–z17 touching the COG: all of z14–z15, a seeded sample of z16–z17."""
    import morecantile
    import numpy as np
    import rasterio
    from pyproj import Transformer

    tms = morecantile.tms.get("WebMercatorQuad")
    with rasterio.open(path) as dataset:
        left, bottom, right, top = dataset.bounds
    to_lonlat = Transformer.from_crs(4547, 4326, always_xy=True)
    lons, lats = to_lonlat.transform([left, right, left, right], [bottom, bottom, top, top])
    rng = np.random.default_rng(42)
    by_zoom = {z: list(tms.tiles(min(lons), min(lats), max(lons), max(lats), [z])) for z in (14, 15, 16, 17)}
    tiles = [(t.z, t.x, t.y) for z in (14, 15) for t in by_zoom[z]]
    rest = max(count - len(tiles), 0)
    for z in (16, 17):
        pool = by_zoom[z]
        picks = rng.choice(len(pool), size=min(len(pool), rest // 2), replace=False)
        tiles.extend((pool[i].z, pool[i].x, pool[i].y) for i in sorted(picks))
    return tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raster", default="dem", help="dem (terrain colour map; TiTiler has no 'risk' map)")
    parser.add_argument("--tiles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    ensure_peers()
    gpkg = shenzhen_gpkg()
    meta = get_raster(args.raster)
    path = OUT / meta.filename
    tiles = raster_tiles(path, args.tiles)  # (z, x, y)
    low, high = meta.value_range
    query = f"url={path}&rescale={low:g},{high:g}&colormap_name={meta.colormap}"
    twin_paths = [f"/rasters/{meta.id}/tiles/WebMercatorQuad/{z}/{y}/{x}.png" for z, x, y in tiles]
    titiler_paths = [f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?{query}" for z, x, y in tiles]
    print(f"{path.name}: {len(tiles)} tiles z14–z17, colour map {meta.colormap}, rescale {low:g},{high:g}; "
          f"{args.clients} clients; load {load_average()}")
    twin, titiler = twin_server("twin-raster", str(gpkg)), titiler_server()
    servers = [(titiler, titiler_paths), (twin, twin_paths)]
    totals: dict[str, Pass] = {}
    with twin, titiler:
        print(f"started: twin {twin.started_s:.1f} s, TiTiler {titiler.started_s:.1f} s")
        drive(twin.url, [twin_paths[i] for i in range(0, len(tiles), 10)], "warm-up", clients=args.clients)
        drive(titiler.url, [titiler_paths[i] for i in range(0, len(tiles), 10)], "warm-up", clients=args.clients)
        for server, paths in servers:  # same image on both sides: size and PNG colour type (6 = RGBA)
            body = httpx.get(server.url + paths[len(paths) // 2], timeout=60).content
            width, height, depth, colour = struct.unpack(">IIBB", body[16:26])
            print(f"  {server.name}: {width}×{height} PNG, bit depth {depth}, colour type {colour}")
        for round_ in range(args.rounds):
            order = servers if round_ % 2 == 0 else servers[::-1]
            print(f"round {round_ + 1}: {' → '.join(s.name for s, _ in order)}")
            for server, paths in order:
                p = drive(server.url, paths, server.name, clients=args.clients)
                print(f"    {p.line('tiles')}   (load {load_average()})")
                totals[p.label] = totals[p.label].merged(p) if p.label in totals else p
    print(f"all rounds pooled (load at end {load_average()}):")
    for p in totals.values():
        print(f"  {p.line('tiles')}")
    print(ratio_line(totals["twin-raster"], totals["titiler"]))
    print("goal: 10× TiTiler's throughput")


if __name__ == "__main__":
    main()
