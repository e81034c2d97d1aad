"""The catalogue's tables: one per layer with its indexes (readings partitioned by month), and layer versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from layers import get_layer
from twin.store.pg_schema import build_metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: The layers this revision creates; a layer added to the catalogue later comes with its own revision.
LAYERS = ("grids", "buildings", "levels", "fire_facilities", "rescue_platforms", "fire_lanes", "sensors", "roads",
          "fire_stations", "readings", "alarms", "inspections", "dead_letters", "api_keys")


def _metadata() -> sa.MetaData:
    return build_metadata(tuple(get_layer(layer_id) for layer_id in LAYERS))


def upgrade() -> None:
    """Create the PostGIS extension (when missing), the tables, their indexes and the readings' default partition."""
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    _metadata().create_all(op.get_bind())


def downgrade() -> None:
    """Drop the tables (the partitions go with theirs); the PostGIS extension stays."""
    _metadata().drop_all(op.get_bind())
