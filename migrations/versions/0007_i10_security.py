"""security: disabled people, the audit log of tokens and passwords, anonymous report quota

Revision ID: 0007_i10_security
Revises: 0006_i17_idempotency
Create Date: 2026-11-29 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import closeloop.db

revision = "0007_i10_security"
down_revision = "0006_i17_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled_at", closeloop.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
    op.create_table(
        "anonymous_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("at", closeloop.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("photo_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anonymous_reports")),
    )
    with op.batch_alter_table("anonymous_reports", schema=None) as batch_op:
        batch_op.create_index("ix_anonymous_reports_at", ["at"], unique=False)
        batch_op.create_index("ix_anonymous_reports_key", ["ip", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("anonymous_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_anonymous_reports_key")
        batch_op.drop_index("ix_anonymous_reports_at")
    op.drop_table("anonymous_reports")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_at")
    op.drop_table("audit_log")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
