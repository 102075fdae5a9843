"""weekly examples: the 本周典型 a supervisor picked for a week, with why

Revision ID: 0008_i19_weekly_examples
Revises: 0007_i10_security
Create Date: 2026-11-29 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import closeloop.db

revision = "0008_i19_weekly_examples"
down_revision = "0007_i10_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "weekly_examples",
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("chosen_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_weekly_examples_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_weekly_examples")),
    )


def downgrade() -> None:
    op.drop_table("weekly_examples")
