"""GeoJSON items pages over HTTP: the twin (PostGIS and GeoPackage stores) beside pygeoapi and tipg, same table.

Run: python bench/bench_peer_items.py [--pages 100] [--rounds 2] [--clients 10] [--skip-gpkg] [--skip-tipg]

Data: the buildings of the 1,000,000-building Shenzhen-scale set; pygeoapi (PostgreSQL provider, config written
to bench/out/pygeoapi.config.yml) and tipg read the PostGIS database ``twin_bench`` the twin-postgis reads.
Pages: ``--pages`` bbox boxes at random points of the dense core, each sized to hold about 2,000 buildings, asked
with ``limit=100`` and ``limit=1000`` (every answer carries its numberMatched). All servers stay up; within a
round each takes its turn (the order flips every round) for each page size, 10 concurrent clients. The twin has
no cache for items, so every pass is a full query.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import shenzhen_gpkg
from bench.load import Pass, drive, load_average, ratio_line
from bench.peers import (
    bench_database,
    ensure_peers,
    pygeoapi_server,
    tipg_server,
    twin_server,
)

CENTRE = (114.0239, 22.6119)
TARGET = 2_000


def page_boxes(gpkg: Path, pages: int) -> list[tuple[float, float, float, float]]:
    """``pages`` boxes around random points of the core, sized so that they hold about TARGET buildings."""
    from twin.store.base import BBox, FeatureQuery
    from twin.store.geopackage import GeoPackageStore

    rng = np.random.default_rng(23)
    xs = CENTRE[0] + rng.uniform(-0.04, 0.04, pages)
    ys = CENTRE[1] + rng.uniform(-0.035, 0.035, pages)
    store = GeoPackageStore(gpkg)
    side = 0.01
    try:
        for _ in range(3):
            counts = [store.count("buildings", FeatureQuery(bbox=BBox(x - side / 2, y - side / 2, x + side / 2,
                                                                      y + side / 2)))
                      for x, y in zip(xs[:20], ys[:20], strict=True)]
            side *= float(np.sqrt(TARGET / max(float(np.mean(counts)), 1.0)))
    finally:
        store.close()
    return [(x - side / 2, y - side / 2, x + side / 2, y + side / 2) for x, y in zip(xs, ys, strict=True)]


def where_the_time_goes(gpkg: Path, url: str, boxes: list[tuple[float, float, float, float]]) -> None:
    """In-process, per page of 100: the twin's query, its ``numberMatched`` and an exact count, on both stores."""
    import statistics
    import time

    from twin.store.base import BBox, FeatureQuery
    from twin.store.counting import number_matched
    from twin.store.geopackage import GeoPackageStore
    from twin.store.postgis import PostGISStore

    for name, store in (("postgis", PostGISStore(url)), ("geopackage", GeoPackageStore(gpkg))):
        timings: dict[str, list[float]] = {"query": [], "numberMatched": [], "exact count": []}
        try:
            for box in boxes:
                query = FeatureQuery(bbox=BBox(*box), limit=100)
                started = time.perf_counter()
                frame = store.query("buildings", query)
                queried = time.perf_counter()
                number_matched(store, "buildings", query, len(frame))
                matched = time.perf_counter()
                store.count("buildings", FeatureQuery(bbox=BBox(*box)))
                counted = time.perf_counter()
                for key, ms in zip(timings, (queried - started, matched - queried, counted - matched), strict=True):
                    timings[key].append(ms * 1000)
        finally:
            store.close()
        print(f"  twin {name:10} per page of 100, median: "
              + ", ".join(f"{key} {statistics.median(v[1:]):.1f} ms" for key, v in timings.items()))


def paths(prefix: str, boxes: list[tuple[float, float, float, float]], limit: int, extra: str = "") -> list[str]:
    return [f"{prefix}?bbox={','.join(f'{v:.6f}' for v in box)}&limit={limit}{extra}" for box in boxes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--skip-gpkg", action="store_true")
    parser.add_argument("--skip-tipg", action="store_true")
    parser.add_argument("--diagnose", type=int, default=10, help="pages timed in-process afterwards (0: none)")
    args = parser.parse_args()
    ensure_peers()
    gpkg = shenzhen_gpkg()
    url = bench_database(gpkg)
    boxes = page_boxes(gpkg, args.pages)
    print(f"{len(boxes)} bbox pages in the core ({(boxes[0][2] - boxes[0][0]) * 1000:.1f} milli-degrees square, about "
          f"{TARGET:,} buildings each), limit=100 and limit=1000, {args.clients} clients; load {load_average()}")
    servers = [(pygeoapi_server(url), "/collections/buildings/items", "&f=json"),
               (twin_server("twin-postgis", url), "/collections/buildings/items", "")]
    if not args.skip_gpkg:
        servers.append((twin_server("twin-gpkg", str(gpkg)), "/collections/buildings/items", ""))
    if not args.skip_tipg:
        servers.append((tipg_server(url), "/collections/public.buildings/items", "&f=geojson"))
    totals: dict[str, Pass] = {}
    started = []
    try:
        for server, _, _ in servers:
            started.append(server.__enter__())
        for server, prefix, extra in servers:  # warm-up: code paths, pools
            drive(server.url, paths(prefix, boxes[:20], 100, extra), "warm-up", clients=args.clients)
        for round_ in range(args.rounds):
            order = servers if round_ % 2 == 0 else servers[::-1]
            print(f"round {round_ + 1}: {' → '.join(s.name for s, *_ in order)}")
            for limit in (100, 1000):
                for server, prefix, extra in order:
                    p = drive(server.url, paths(prefix, boxes, limit, extra), f"{server.name} limit={limit}",
                              clients=args.clients)
                    print(f"    {p.line('pages')}   (load {load_average()})")
                    totals[p.label] = totals[p.label].merged(p) if p.label in totals else p
    finally:
        for server in started:
            server.__exit__()
    print(f"all rounds pooled (load at end {load_average()}):")
    for p in totals.values():
        print(f"  {p.line('pages')}")
    for limit in (100, 1000):
        theirs = [totals[f"{name} limit={limit}"] for name in ("pygeoapi", "tipg") if f"{name} limit={limit}" in totals]
        for ours in ("twin-postgis", "twin-gpkg"):
            if f"{ours} limit={limit}" in totals:
                for peer in theirs:
                    print(ratio_line(totals[f"{ours} limit={limit}"], peer))
    if args.diagnose:
        print("where the twin's time goes (in-process, one call at a time; numberMatched is counted exactly up to "
              "the exact-count limit, then estimated; pygeoapi and tipg always count exactly):")
        where_the_time_goes(gpkg, url, boxes[: args.diagnose + 1])


if __name__ == "__main__":
    main()
