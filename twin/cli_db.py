"""``twin db``: the PostGIS database.

Its schema, migrated with Alembic (``upgrade``, ``downgrade``, ``current``), and a whole twin loaded into it from a
GeoPackage (``load``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from twin.errors import Conflict, TwinError
from twin.settings import StoreSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="The PostGIS database: create and migrate its tables (Alembic).")

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="postgresql+psycopg://user@host:port/db (default: TWIN_DATABASE_URL)"),
]


class NoDatabase(TwinError):
    """No PostgreSQL URL was given or configured."""

    code = "InvalidParameterValue"


def _url(url: str | None) -> str:
    from twin.store.opening import is_database_url

    chosen = url or StoreSettings().database_url
    if not chosen:
        raise NoDatabase("no database: pass --url postgresql+psycopg://… or set TWIN_DATABASE_URL")
    if not is_database_url(chosen):
        raise NoDatabase(f"not a PostgreSQL URL: {chosen!r}")
    return chosen


def _say(message: str) -> None:
    print(message, file=sys.stderr)


@app.command()
def upgrade(
    url: UrlOption = None,
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Create or migrate the twin's tables up to REVISION (default: the newest)."""
    from twin import migrations

    chosen = _url(url)
    before = migrations.current(chosen)
    migrations.upgrade(chosen, revision)
    _say(f"database schema: {before or 'empty'} → {migrations.current(chosen) or 'empty'}")


@app.command()
def downgrade(
    url: UrlOption = None,
    revision: Annotated[str, typer.Argument(help="target revision: -1 (one step back), a revision id or base")] = "-1",
) -> None:
    """Migrate the twin's tables down to REVISION (``base`` drops every table of the twin)."""
    from twin import migrations

    chosen = _url(url)
    before = migrations.current(chosen)
    migrations.downgrade(chosen, revision)
    _say(f"database schema: {before or 'empty'} → {migrations.current(chosen) or 'empty'}")


@app.command()
def current(url: UrlOption = None) -> None:
    """Print the database's schema revision (nothing before the first upgrade)."""
    from twin import migrations

    typer.echo(migrations.current(_url(url)) or "")


@app.command()
def load(
    source: Annotated[Path, typer.Argument(help="the twin GeoPackage to load (e.g. sample_gis/beizhan.gpkg)")],
    url: UrlOption = None,
    replace: Annotated[bool, typer.Option("--replace", help="replace a database that already holds features")] = False,
) -> None:
    """Load every layer of a twin GeoPackage into the database, ids kept (the schema is migrated first).

    Each layer is replaced in one transaction (COPY). A database that already holds features is left alone unless
    ``--replace`` is given; if a load stops half way, running it again with ``--replace`` completes it.
    """
    from layers import LAYERS
    from twin import migrations
    from twin.store.geopackage import GeoPackageStore
    from twin.store.postgis import PostGISStore
    from twin.transfer import copy_twin

    chosen = _url(url)
    reader = GeoPackageStore(source, readonly=True)  # a file that is not a twin GeoPackage fails here, first
    try:
        migrations.upgrade(chosen)
        target = PostGISStore(chosen)
        try:
            held = {layer.id: n for layer in LAYERS if (n := target.count(layer.id))}
            if held and not replace:
                listed = ", ".join(f"{layer} {n:,}" for layer, n in held.items())
                raise Conflict(f"the database already holds features ({listed}); pass --replace to overwrite them")
            started = time.perf_counter()
            copied = copy_twin(reader, target)
        finally:
            target.close()
    finally:
        reader.close()
    for layer_id, n in copied.items():
        _say(f"  {layer_id:<16} {n:>10,}")
    _say(f"loaded {sum(copied.values()):,} features from {source} in {time.perf_counter() - started:.1f} s")


db_app = app
