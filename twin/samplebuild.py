"""Build the sample twin into a GeoPackage with its rasters beside it, once, atomically."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from layers import LAYERS
from twin.settings import SAMPLE_FILENAME

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def build_sample(
    directory: Path,
    *,
    seed: int = 20261125,
    scale: str = "district",
    n_buildings: int | None = None,
    n_sensors: int | None = None,
    filename: str = SAMPLE_FILENAME,
    progress: Progress = _quiet,
) -> Path:
    """Generate the sample twin and write it to ``directory/filename`` plus its COGs; returns the GeoPackage path.

    The files appear only when complete: everything is written to a scratch folder first, then moved in.
    """
    from twin.sample import generate, write_rasters
    from twin.store.geopackage import GeoPackageStore

    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory / f".build-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        started = time.perf_counter()
        sample = generate(seed=seed, scale=scale, n_buildings=n_buildings, n_sensors=n_sensors)
        progress(f"generated {scale} sample in {time.perf_counter() - started:.1f} s")
        gpkg = scratch / filename
        store = GeoPackageStore.create(gpkg, overwrite=True)
        try:
            for layer in LAYERS:
                if layer.id not in sample.frames:  # e.g. api_keys: created empty
                    continue
                t0 = time.perf_counter()
                rows = store.replace_layer(layer.id, sample.frames[layer.id])
                progress(f"wrote {layer.id}: {rows:,} rows in {time.perf_counter() - t0:.1f} s")
        finally:
            store.close()
        written = write_rasters(sample, scratch)
        progress(f"wrote rasters: {', '.join(p.name for p in written.values())}")
        for path in written.values():
            os.replace(path, directory / path.name)
        os.replace(gpkg, directory / filename)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return directory / filename


def ensure_sample(directory: Path, *, progress: Progress = _quiet) -> Path:
    """The sample GeoPackage in ``directory``, built first if it is not there (one builder at a time)."""
    target = directory / SAMPLE_FILENAME
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            progress(f"building the sample twin in {directory} (first use) …")
            build_sample(directory, progress=progress)
    return target


def copy_sample(sample: Path, folder: Path) -> Path:
    """Copy a built twin (its GeoPackage and the rasters beside it) into ``folder``; returns the copy's GeoPackage."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in sample.parent.iterdir():
        if item.suffix in (".gpkg", ".tif"):
            shutil.copy2(item, folder / item.name)
    return folder / sample.name
