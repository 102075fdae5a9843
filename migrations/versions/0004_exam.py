"""The exam as the zone runs it (issue 11): the plan, scoring on the pages, the city's score,
accountability cases and the fund ledger.

Revision ID: 0004_i11_exam
Revises: 0003_i9_deadlines
Create Date: 2026-11-29 20:55:38.631072
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import closeloop.db

revision = "0004_i11_exam"
down_revision = "0003_i9_deadlines"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "accountability_cases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("leaders", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.String(length=10), nullable=False),
        sa.Column("opened_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", closeloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_accountability_cases_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accountability_cases")),
        sa.UniqueConstraint("grid_id", "month", name="uq_accountability_case"),
    )
    op.create_table(
        "city_scores",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=True),
        sa.Column("imported_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_city_scores_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_city_scores")),
        sa.UniqueConstraint("month", "grid_id", name="uq_city_score"),
    )
    op.create_table(
        "exam_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_exam_events_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exam_events")),
    )
    with op.batch_alter_table("exam_events", schema=None) as batch_op:
        batch_op.create_index("ix_exam_events_month", ["month", "grid_id"], unique=False)

    op.create_table(
        "exam_gradings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "inspector_grid_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", closeloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_exam_gradings_grid_id_grids")
        ),
        sa.ForeignKeyConstraint(
            ["inspector_grid_id"],
            ["grids.id"],
            name=op.f("fk_exam_gradings_inspector_grid_id_grids"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exam_gradings")),
        sa.UniqueConstraint("month", "grid_id", name="uq_exam_grading"),
    )
    op.create_table(
        "exam_plans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column(
            "inspector_grid_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_exam_plans_grid_id_grids")
        ),
        sa.ForeignKeyConstraint(
            ["inspector_grid_id"], ["grids.id"], name=op.f("fk_exam_plans_inspector_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exam_plans")),
        sa.UniqueConstraint("month", "grid_id", name="uq_exam_plan"),
    )
    op.create_table(
        "fund_projects",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("applied", sa.String(length=16), nullable=False),
        sa.Column("approved", sa.String(length=16), nullable=True),
        sa.Column("applied_by", sa.String(length=64), nullable=False),
        sa.Column("applied_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", closeloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_fund_projects_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_projects")),
    )
    with op.batch_alter_table("fund_projects", schema=None) as batch_op:
        batch_op.create_index("ix_fund_projects_month", ["month"], unique=False)

    op.create_table(
        "fund_payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("grid_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("amount", sa.String(length=16), nullable=False),
        sa.Column("paid_by", sa.String(length=64), nullable=False),
        sa.Column("paid_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_fund_payments_grid_id_grids")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["fund_projects.id"],
            name=op.f("fk_fund_payments_project_id_fund_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_payments")),
    )
    with op.batch_alter_table("fund_payments", schema=None) as batch_op:
        batch_op.create_index("ix_fund_payments_month", ["month"], unique=False)

    with op.batch_alter_table("exam_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("photo_label", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("entered_by", sa.String(length=64), nullable=True))

    with op.batch_alter_table("month_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("city_score", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("basis", sa.String(length=8), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("month_results", schema=None) as batch_op:
        batch_op.drop_column("basis")
        batch_op.drop_column("city_score")

    with op.batch_alter_table("exam_lines", schema=None) as batch_op:
        batch_op.drop_column("entered_by")
        batch_op.drop_column("photo_label")
        batch_op.drop_column("photo")

    with op.batch_alter_table("fund_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_fund_payments_month")

    op.drop_table("fund_payments")
    with op.batch_alter_table("fund_projects", schema=None) as batch_op:
        batch_op.drop_index("ix_fund_projects_month")

    op.drop_table("fund_projects")
    op.drop_table("exam_plans")
    op.drop_table("exam_gradings")
    with op.batch_alter_table("exam_events", schema=None) as batch_op:
        batch_op.drop_index("ix_exam_events_month")

    op.drop_table("exam_events")
    op.drop_table("city_scores")
    op.drop_table("accountability_cases")
