"""stage owner: who had to act in a stage instance, as it stood when the instance started

- stages.owner_id: the ticket's assignee in the fix stage, the verifier (the leader of the
  stage's grid) in verification and closing; NULL when nobody was named.

Reports named the person responsible for a late stage from today's ticket (its assignee now)
and today's grid leaders: a reassignment or a new leader rewrote last week's report. From this
revision the step that starts an instance writes who had to act. Rows written before are filled
from stored facts where they say it, in this order:

1. fix stage (any stage but verify and close), ticket not reassigned after the instance started:
   the ticket's assignee now. Only a dispatch (submit, reassign) sets the assignee, so it is
   the one the instance had.
2. fix stage of a ticket reassigned later: the recipient of the assignment notice (written with
   the event, in its transaction) of the last dispatch at or before the instance's start.
3. verification: the recipient of the verification request of the fix that opened it; with no
   request, and a grid other than the fix stage's before it, the fixer: the engine asks nobody
   when the verifier made the fix themselves.
4. closing: the owner of the verification just before it, when that was on the same grid.
5. Any row still without an owner: the leader of its grid today (the only fact left), except a
   verification or closing on the grid of the fix stage before it: no led grid was above, a
   supervisor verifies, and nobody is named.

Revision ID: 0010_stage_owner
Revises: 0009_i16_sources_urgent_feedback
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_stage_owner"
down_revision = "0009_i16_sources_urgent_feedback"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_FIX_LIKE = "stages.stage NOT IN ('verify', 'close')"
# The notice written for event `event_id` of the ticket: its idempotency key starts with
# "<kind>:<ref>:<event id>:" (closeloop.service._send_notices).
_NOTICE_OF = (
    "SELECT MIN(n.recipient_id) FROM notifications n JOIN tickets t ON t.id = n.ticket_id"
    " WHERE n.ticket_id = stages.ticket_id AND n.kind = '{kind}'"
    " AND n.idempotency_key LIKE '{kind}:' || t.ref || ':' || CAST(({event_id}) AS VARCHAR(20))"
    " || ':%'"
)
# The fix-stage instance before this one (the latest with a lower number).
_PREVIOUS_FIX = (
    "SELECT MAX(f.stage_no) FROM stages f WHERE f.ticket_id = stages.ticket_id"
    " AND f.stage NOT IN ('verify', 'close') AND f.stage_no < stages.stage_no"
)


def upgrade() -> None:
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", Id, nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_stages_owner_id_people"), "people", ["owner_id"], ["id"]
        )
    # 1. fix stage, no reassignment since: the assignee now.
    op.execute(
        "UPDATE stages SET owner_id = (SELECT t.assignee_id FROM tickets t"
        " WHERE t.id = stages.ticket_id)"
        f" WHERE {_FIX_LIKE} AND NOT EXISTS (SELECT 1 FROM ticket_events e"
        " WHERE e.ticket_id = stages.ticket_id AND e.step = 'reassign'"
        " AND e.at > stages.started_at)"
    )
    # 2. fix stage of a ticket reassigned later: the assignment notice of its dispatch.
    dispatch = (
        "SELECT MAX(d.id) FROM ticket_events d WHERE d.ticket_id = stages.ticket_id"
        " AND d.step IN ('submit', 'reassign') AND d.at <= stages.started_at"
    )
    op.execute(
        "UPDATE stages SET owner_id = ("
        + _NOTICE_OF.format(kind="assignment", event_id=dispatch)
        + f") WHERE owner_id IS NULL AND {_FIX_LIKE}"
    )
    # 3. verification: the request to verify sent with the fix that opened it ...
    opening_fix = (
        "SELECT MAX(e.id) FROM ticket_events e WHERE e.ticket_id = stages.ticket_id"
        " AND e.step = 'fix' AND e.at = stages.started_at"
    )
    op.execute(
        "UPDATE stages SET owner_id = ("
        + _NOTICE_OF.format(kind="verification_request", event_id=opening_fix)
        + ") WHERE stage = 'verify' AND started_by = 'fix'"
    )
    # ... or, with none, on a grid above the fix stage's: the fixer, who was the verifier.
    op.execute(
        "UPDATE stages SET owner_id = (SELECT e.actor_id FROM ticket_events e"
        f" WHERE e.id = ({opening_fix}))"
        " WHERE owner_id IS NULL AND stage = 'verify' AND started_by = 'fix'"
        " AND EXISTS (SELECT 1 FROM stages f WHERE f.ticket_id = stages.ticket_id"
        f" AND f.stage_no = ({_PREVIOUS_FIX}) AND f.grid_id <> stages.grid_id)"
    )
    # 4. closing: the verifier of the verification just before, on the same grid.
    op.execute(
        "UPDATE stages SET owner_id = (SELECT v.owner_id FROM stages v"
        " WHERE v.ticket_id = stages.ticket_id AND v.stage_no = stages.stage_no - 1"
        " AND v.stage = 'verify' AND v.grid_id = stages.grid_id)"
        " WHERE owner_id IS NULL AND stage = 'close'"
    )
    # 5. the rest: the grid's leader today, but nobody for a check with no led grid above.
    op.execute(
        "UPDATE stages SET owner_id = (SELECT g.leader_id FROM grids g"
        " WHERE g.id = stages.grid_id)"
        " WHERE owner_id IS NULL AND NOT (stages.stage IN ('verify', 'close') AND EXISTS ("
        " SELECT 1 FROM stages f WHERE f.ticket_id = stages.ticket_id"
        f" AND f.stage_no = ({_PREVIOUS_FIX}) AND f.grid_id = stages.grid_id))"
    )


def downgrade() -> None:
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_stages_owner_id_people"), type_="foreignkey")
        batch_op.drop_column("owner_id")
