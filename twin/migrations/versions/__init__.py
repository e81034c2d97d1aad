"""Alembic revisions of the PostGIS schema (a package, so that installs carry them)."""
