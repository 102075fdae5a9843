"""sources, urgent tickets, supervision deadlines, the reporter's feedback (issue 16)

Revision ID: 0009_i16_sources_urgent_feedback
Revises: 0008_i19_weekly_examples
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import closeloop.db

revision = "0009_i16_sources_urgent_feedback"
down_revision = "0008_i19_weekly_examples"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("urgent_at", closeloop.db.UTCDateTime(timezone=True)))
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("supervision_due", closeloop.db.UTCDateTime(timezone=True)))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16)))
    # A rung written before this revision: its supervision deadline is the deadline the next
    # rung of the same stage instance answered, when there is one (a stored fact); the last
    # rung of an instance keeps NULL rather than a limit recomputed from today's settings.
    op.execute(
        "UPDATE escalations SET supervision_due = ("
        " SELECT MIN(n.deadline) FROM escalations n"
        " WHERE n.ticket_id = escalations.ticket_id AND n.stage_no = escalations.stage_no"
        " AND n.deadline > escalations.deadline)"
    )
    op.create_index("ix_escalations_supervision_due", "escalations", ["supervision_due"])
    op.create_table(
        "ticket_feedback",
        sa.Column("id", _ID, nullable=False),
        sa.Column("ticket_id", _ID, nullable=False),
        sa.Column("at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("by_id", _ID, nullable=True),
        sa.Column("solved", sa.Boolean(), nullable=False),
        sa.Column("satisfaction", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["by_id"], ["people.id"], name=op.f("fk_ticket_feedback_by_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_feedback_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_feedback")),
    )
    op.create_index("ix_ticket_feedback_ticket", "ticket_feedback", ["ticket_id", "id"])
    op.create_index("ix_ticket_feedback_at", "ticket_feedback", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_feedback_at", table_name="ticket_feedback")
    op.drop_index("ix_ticket_feedback_ticket", table_name="ticket_feedback")
    op.drop_table("ticket_feedback")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("source")
    op.drop_index("ix_escalations_supervision_due", table_name="escalations")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("supervision_due")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("urgent_at")
