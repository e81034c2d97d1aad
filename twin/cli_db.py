"""``twin db``: the PostGIS database's schema, migrated with Alembic (``twin db upgrade``, ``twin db downgrade``)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from twin.errors import TwinError
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


db_app = app
