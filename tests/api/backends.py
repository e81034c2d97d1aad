"""The stores the API tests serve: the sample GeoPackage, and the same sample loaded into PostGIS.

The PostGIS side makes its databases beside ``TWIN_TEST_DATABASE_URL`` (on the same server, names derived from
it): a *template* database migrated with ``twin db upgrade`` and loaded once per session from the sample
GeoPackage with ``replace_layer`` (COPY), and copies of it made with ``CREATE DATABASE … TEMPLATE`` (a file copy,
about a second) — one read-only copy for the session's server and a private one for every test that writes.
Every database made here is dropped at the end of the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from twin.samplebuild import copy_sample
from twin.store.base import Store

#: Backend names, in the order tests run on them.
NAMES = ("geopackage", "postgis")


def _admin_engine(url: str) -> sa.Engine:
    from twin.store.pg_engine import driver_url

    admin = sa.make_url(driver_url(url)).set(database="postgres")
    return sa.create_engine(admin, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")


def _with_database(url: str, name: str) -> str:
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


class PostGISSample:
    """The sample twin in a template database, and copies of it on demand."""

    def __init__(self, base_url: str, sample_path: Path):
        self.base_url = base_url
        self.raster_dir = sample_path.parent
        self.prefix = f"{sa.make_url(base_url).database}_api"
        self.made: list[str] = []
        self.template = self._create(f"{self.prefix}_tpl")
        try:
            self._load(sample_path)
        except BaseException:
            self.close()
            raise

    def _create(self, name: str, template: str | None = None) -> str:
        engine = _admin_engine(self.base_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                clause = f' TEMPLATE "{template}"' if template else ""
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
        finally:
            engine.dispose()
        self.made.append(name)
        return _with_database(self.base_url, name)

    def _load(self, sample_path: Path) -> None:
        """Migrate the template and copy every layer of the sample GeoPackage into it, ids kept."""
        from twin.store.geopackage import GeoPackageStore
        from twin.store.postgis import PostGISStore
        from twin.transfer import copy_twin

        target = PostGISStore.create(self.template, raster_dir=self.raster_dir)
        try:
            with GeoPackageStore(sample_path, readonly=True) as source:
                copy_twin(source, target)
            with target.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        finally:
            target.close()
            target.engine.dispose()

    def copy(self) -> str:
        """A new database holding the sample (the caller's to write to); dropped with the rest at the end."""
        return self._create(f"{self.prefix}_{uuid.uuid4().hex[:10]}", template=sa.make_url(self.template).database)

    def drop(self, url: str) -> None:
        """Drop one database made here."""
        name = sa.make_url(url).database
        engine = _admin_engine(self.base_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            engine.dispose()
        if name in self.made:
            self.made.remove(name)

    def close(self) -> None:
        """Drop every database made here."""
        for name in list(self.made):
            self.drop(_with_database(self.base_url, name))


def open_gpkg_copy(sample_path: Path, folder: Path) -> Store:
    """A writable GeoPackage store over a private copy of the sample (GeoPackage and rasters) in ``folder``."""
    from twin.store.geopackage import GeoPackageStore

    copy_sample(sample_path, folder)
    return GeoPackageStore(folder / sample_path.name)


@contextmanager
def private_store(backend: str, sample_path: Path, folder: Path,
                  pg: PostGISSample | None) -> Iterator[tuple[Store, str]]:
    """A writable store of ``backend`` holding the sample, and where it lives (a path or a database URL)."""
    from twin.store.postgis import PostGISStore

    if backend == "geopackage":
        store = open_gpkg_copy(sample_path, folder)
        try:
            yield store, str(folder / sample_path.name)
        finally:
            store.close()
        return
    assert pg is not None
    url = pg.copy()
    store = PostGISStore(url, raster_dir=pg.raster_dir)
    try:
        yield store, url
    finally:
        store.close()
        store.engine.dispose()
        pg.drop(url)
