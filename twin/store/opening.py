"""Choosing and opening the configured store."""

from __future__ import annotations

from pathlib import Path

from twin.settings import StoreSettings
from twin.store.base import Store


def is_database_url(location: str) -> bool:
    """True for a PostgreSQL URL such as ``postgresql+psycopg://host/db``."""
    return location.startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


def open_store(location: str | Path | None = None, *, settings: StoreSettings | None = None) -> Store:
    """Open the store at ``location`` (a GeoPackage path or a PostgreSQL URL), or the one ``settings`` names.

    A URL opens the PostGIS store (its tables made by ``twin db upgrade``; rasters are read from the sample
    folder). With neither, the sample twin is opened, built on first use.
    """
    from twin.store.geopackage import GeoPackageStore

    settings = settings or StoreSettings()
    if location is None:
        location = settings.database_url or settings.gpkg_path
    if location is None:
        from twin.samplebuild import ensure_sample

        return GeoPackageStore(ensure_sample(settings.sample_dir))
    if isinstance(location, str) and is_database_url(location):
        from twin.store.postgis import PostGISStore

        return PostGISStore(location, raster_dir=settings.sample_dir)
    return GeoPackageStore(Path(location))
