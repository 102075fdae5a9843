"""stage deadlines that never move with escalation; quiet hours for notices

- tickets.next_escalation_at: the time of the next rung, apart from the deadline (due_at).
- stages: one row per stage instance with the deadline as set when it started.
- notifications.not_before: the earliest moment a notice may be delivered.

Existing data: an escalated ticket's due_at had been moved one interval per rung; the deadline
it really missed is the earliest escalation deadline of its stage instance, so due_at goes back
to it and the moved time becomes next_escalation_at. Open stage instances get their row.

Revision ID: 0003_i9_deadlines
Revises: 0002_i13_grid_geometries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import closeloop.db

revision = "0003_i9_deadlines"
down_revision = "0002_i13_grid_geometries"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stages",
        sa.Column("id", Id, nullable=False),
        sa.Column("ticket_id", Id, nullable=False),
        sa.Column("stage_no", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("started_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=32), nullable=False),
        sa.Column("due_at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("grid_id", Id, nullable=False),
        sa.Column("ended_at", closeloop.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_stages_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_stages_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stages")),
        sa.UniqueConstraint("ticket_id", "stage_no", name="uq_stage_instance"),
    )
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.create_index("ix_stages_due", ["due_at"], unique=False)
        batch_op.create_index("ix_stages_open_due", ["ended_at", "due_at"], unique=False)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "next_escalation_at", closeloop.db.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("not_before", closeloop.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Existing tickets: the next rung is where due_at had been moved to; the deadline is the
    # first one the stage missed.
    op.execute("UPDATE tickets SET next_escalation_at = due_at WHERE due_at IS NOT NULL")
    op.execute(
        "UPDATE tickets SET due_at = (SELECT MIN(e.deadline) FROM escalations e"
        " WHERE e.ticket_id = tickets.id AND e.stage_no = tickets.stage_no)"
        " WHERE due_at IS NOT NULL AND EXISTS (SELECT 1 FROM escalations e"
        " WHERE e.ticket_id = tickets.id AND e.stage_no = tickets.stage_no)"
    )
    op.execute(
        "INSERT INTO stages (ticket_id, stage_no, stage, started_at, started_by, due_at, grid_id)"
        " SELECT id, stage_no, stage, stage_started_at, 'migrated', due_at, responsible_grid_id"
        " FROM tickets WHERE stage IS NOT NULL AND due_at IS NOT NULL"
        " AND stage_started_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE tickets SET due_at = next_escalation_at WHERE next_escalation_at IS NOT NULL"
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("not_before")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("next_escalation_at")
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.drop_index("ix_stages_open_due")
        batch_op.drop_index("ix_stages_due")
    op.drop_table("stages")
