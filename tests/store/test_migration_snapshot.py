"""Migration 0001 must keep creating the schema that deployed databases got from it.

Revision 0001 builds its tables from the layer catalogue, so editing a layer's fields would silently change a
migration that databases in service already ran: they would never get the new column, while fresh ones would.
This test compiles 0001's DDL and compares it with the snapshot taken when 0001 was released.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

import twin.migrations

SNAPSHOT = Path(__file__).parent / "snapshots" / "0001_schema.sql"


def _ddl_of_0001() -> str:
    path = Path(twin.migrations.__file__).parent / "versions" / "0001_initial.py"
    spec = importlib.util.spec_from_file_location("migration_0001", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dialect = postgresql.dialect()
    statements = []
    for table in module._metadata().sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        statements.extend(str(CreateIndex(index).compile(dialect=dialect)).strip()
                          for index in sorted(table.indexes, key=lambda index: index.name or ""))
    return "\n\n".join(statements) + "\n"


def test_migration_0001_still_creates_the_released_schema():
    ddl = _ddl_of_0001()
    assert "CREATE TABLE buildings" in ddl and "readings" in ddl
    assert ddl == SNAPSHOT.read_text(encoding="utf-8"), (
        "the layer catalogue changed a table that migration 0001 creates: add revision 0002 (alembic) for the "
        "change, and make 0001 create its tables as in tests/store/snapshots/0001_schema.sql"
    )
