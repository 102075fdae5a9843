"""grid geometries: a polygon per grid, for locating a point and drawing the map

Revision ID: 0002_i13_grid_geometries
Revises: 0001
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import closeloop.db

revision = "0002_i13_grid_geometries"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grid_geometries",
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("geojson", sa.Text(), nullable=False),
        sa.Column("updated_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_grid_geometries_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("grid_id", name=op.f("pk_grid_geometries")),
    )


def downgrade() -> None:
    op.drop_table("grid_geometries")
