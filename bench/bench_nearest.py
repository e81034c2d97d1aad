"""Nearest-k from inside and outside the district: the inspector's "nearest hydrants" and a cheap-to-abuse request.

Run: python bench/bench_nearest.py [--store PATH_OR_URL ...] [--repeat 3]
Default store: the sample GeoPackage. Each store answers the same points; printed per layer and distance band:
median and p95 of ``Store.nearest(k=5)`` in milliseconds. Load the sample into PostGIS first with
``twin db load sample_gis/beizhan.gpkg --url URL`` to compare the two stores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import summarize, time_ms
from twin.store.opening import open_store

#: Distance bands (km from the district's centre) and how many points in each.
BANDS = (("inside", 0.0, 2.0), ("2-5 km", 2.0, 5.0), ("5-50 km", 5.0, 50.0), ("500-2000 km", 500.0, 2000.0))
POINTS = 40
CENTRE = (114.029, 22.609)


def points_in(low_km: float, high_km: float, rng: np.random.Generator) -> list[shapely.Point]:
    """Points at random bearings between ``low_km`` and ``high_km`` from the centre (small-angle degrees)."""
    bearing = rng.uniform(0, 2 * np.pi, POINTS)
    reach = rng.uniform(low_km, high_km, POINTS) / 111.0
    lon = CENTRE[0] + reach * np.cos(bearing) / np.cos(np.radians(CENTRE[1]))
    lat = CENTRE[1] + reach * np.sin(bearing)
    return [shapely.Point(x, y) for x, y in zip(lon, lat, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", action="append", help="GeoPackage path or PostgreSQL URL (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    bands = [(name, points_in(low, high, rng)) for name, low, high in BANDS]
    for location in args.store or ["sample_gis/beizhan.gpkg"]:
        store = open_store(location)
        print(f"{location}:")
        try:
            for layer in ("fire_facilities", "sensors", "buildings"):
                store.nearest(layer, shapely.Point(*CENTRE), k=5)  # warm up
                for name, points in bands:
                    samples = [time_ms(lambda p=p, s=store, lay=layer: s.nearest(lay, p, k=5))[0]
                               for _ in range(args.repeat) for p in points]
                    print(f"  nearest-5 {layer:<15} {name:<12} {summarize(samples)}")
        finally:
            store.close()


if __name__ == "__main__":
    main()
