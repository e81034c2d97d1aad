"""Alembic migrations of the PostGIS schema, configured in code (no ``alembic.ini`` needed at runtime).

``upgrade(url)`` brings a database to the newest revision (``twin db upgrade``), ``downgrade(url, revision)`` goes
back (``twin db downgrade``). The tables come from :mod:`twin.store.pg_schema`, that is from the layer catalogue.
When the catalogue changes, add a revision: ``alembic revision --autogenerate`` against
``twin.store.pg_schema.METADATA`` (see :func:`config`) writes its first draft, and ``tests/store/test_postgis.py``
fails while the migrated database and the catalogue differ.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from twin.store.pg_engine import PostGISSettings, driver_url, translated

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"


def config(url: str) -> Config:
    """An Alembic configuration for the database at ``url``, pointing at this package's scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", driver_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest)."""
    from alembic import command

    with translated(PostGISSettings()):
        command.upgrade(config(url), revision)


def downgrade(url: str, revision: str = "-1") -> None:
    """Migrate the database at ``url`` down to ``revision`` (default: one step; ``base`` removes every table)."""
    from alembic import command

    with translated(PostGISSettings()):
        command.downgrade(config(url), revision)


def current(url: str) -> str | None:
    """The database's revision, ``None`` before the first migration."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(driver_url(url), poolclass=sa.NullPool)
    try:
        with translated(PostGISSettings()), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


__all__ = ["config", "current", "downgrade", "upgrade"]
