"""Alembic environment: runs the migrations on the configured URL (or on a connection handed in)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from twin.store.pg_schema import METADATA, PARTITIONED

config = context.config


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Compare only the catalogue's tables: not PostGIS's own, nor the partitions made at run time."""
    if type_ == "table" and reflected and compare_to is None:
        return False
    return not (type_ == "table" and name is not None and any(name.startswith(f"{p}_") for p in PARTITIONED))


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=METADATA, include_object=_ours,
                      compare_type=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Write the migration SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=METADATA,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on a connection: the one in ``config.attributes`` or a new one to the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.NullPool,
                              connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
