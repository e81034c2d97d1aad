"""Foundation benchmarks: building and opening the sample, bbox queries at Shenzhen scale, memory of `twin serve`.

Run: python bench/bench_core.py [--skip-shenzhen]
The Shenzhen-scale set (1,000,000 buildings, 270,000 sensors) is built once into bench/out/ and reused.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port, rss_mb, shenzhen_gpkg, summarize, time_ms


def bench_build_sample(directory: Path) -> Path:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twin.cli", "sample", "--dir", str(directory)], check=True,
                   stderr=subprocess.DEVNULL)
    print(f"build district sample: {time.perf_counter() - started:.1f} s "
          f"({(directory / 'beizhan.gpkg').stat().st_size / 2**20:.0f} MiB GeoPackage)")
    return directory / "beizhan.gpkg"


OPEN_SCRIPT = """
import resource, sys, time
t0 = time.perf_counter()
import twin
t1 = time.perf_counter()
t = twin.open(sys.argv[1])
towers = t.layer("buildings", where={"height_m": (">", 100)})
t2 = time.perf_counter()
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{(t1 - t0) * 1000:.0f} {(t2 - t1) * 1000:.0f} {peak_mib:.0f} {len(towers)}")
"""


def bench_open(path: Path, runs: int = 5) -> None:
    imports, opens, mems = [], [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, str(path)], check=True, capture_output=True,
                             text=True).stdout.split()
        imports.append(float(out[0]))
        opens.append(float(out[1]))
        mems.append(float(out[2]))
    print(f"open sample (import twin): {summarize(imports)}")
    print(f"open sample + read the 138 towers: {summarize(opens)}; peak RSS {np.median(mems):.0f} MiB")


def bench_bbox(path: Path, queries: int = 200, target: int = 1000) -> None:
    import twin
    from twin.store.base import BBox, FeatureQuery

    t = twin.open(path)
    store = t.store
    total = store.count("buildings")
    extent = store.extent("buildings")
    assert extent is not None
    rng = np.random.default_rng(7)
    # size the box so that it holds about `target` buildings on average near the data
    side = np.sqrt((extent.maxx - extent.minx) * (extent.maxy - extent.miny) * target / total)
    centres = store.query("buildings", FeatureQuery(limit=None, properties=("height_m",)))
    picks = shapely.centroid(centres.geometry.to_numpy()[rng.integers(0, len(centres), queries)])
    del centres

    def count_in(point: shapely.Point, side: float) -> int:
        box = BBox(point.x - side / 2, point.y - side / 2, point.x + side / 2, point.y + side / 2)
        return store.count("buildings", FeatureQuery(bbox=box))

    for _ in range(3):  # calibrate the box so that it holds about `target` buildings on average
        mean = np.mean([count_in(p, side) for p in picks[:40]])
        side *= float(np.sqrt(target / max(mean, 1.0)))
    samples, counts = [], []
    for point in picks:
        box = BBox(point.x - side / 2, point.y - side / 2, point.x + side / 2, point.y + side / 2)
        ms, frame = time_ms(lambda box=box: store.query("buildings", FeatureQuery(bbox=box)))
        samples.append(ms)
        counts.append(len(frame))  # type: ignore[arg-type]
    print(f"bbox query over {total:,} buildings, {np.mean(counts):.0f} features on average "
          f"(median {np.median(counts):.0f}): {summarize(samples)}")
    t.close()


def bench_serve_memory(path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TWIN_API_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "serve", "--store", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = time.perf_counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while True:
                try:
                    client.get("/health").raise_for_status()
                    break
                except httpx.TransportError:
                    if time.perf_counter() - started > 60:
                        raise
                    time.sleep(0.05)
            ready = time.perf_counter() - started
            for _ in range(20):
                client.get("/collections").raise_for_status()
                client.get("/collections/buildings").raise_for_status()
        print(f"twin serve on the sample: ready in {ready:.2f} s, resident {rss_mb(proc.pid):.0f} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-shenzhen", action="store_true", help="skip the 1,000,000-building set")
    parser.add_argument("--only-shenzhen", action="store_true", help="only the 1,000,000-building bbox queries")
    args = parser.parse_args()
    if not args.only_shenzhen:
        with tempfile.TemporaryDirectory() as scratch:
            sample = bench_build_sample(Path(scratch))
            bench_open(sample)
            bench_serve_memory(sample)
    if not args.skip_shenzhen:
        bench_bbox(shenzhen_gpkg())


if __name__ == "__main__":
    main()
