"""The supervisors' registers the API lists: parked tickets (缓办挂账) and extension requests.

closeloop.extensions writes these rows (as steps); the lists are plain queries over them,
scoped like every other list to the tickets the caller may see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement

from closeloop import views
from closeloop.app import App
from closeloop.db import read_only
from closeloop.models import deferrals, extensions, people, tickets
from closeloop.web import access


def _iso(app: App, value: datetime | None) -> str | None:
    return value.astimezone(app.tz).isoformat(timespec="seconds") if value else None


def deferred(app: App, scope: ColumnElement[bool], now: datetime) -> list[dict[str, Any]]:
    """Tickets on the deferral register, the earliest review date first."""
    by = people.alias("deferred_by")
    q = (
        access.listing()
        .add_columns(
            deferrals.c.id.label("deferral_id"),
            deferrals.c.at.label("deferred_at"),
            deferrals.c.reason.label("deferral_reason"),
            deferrals.c.review_on,
            deferrals.c.remaining_seconds,
            by.c.handle.label("deferred_by"),
        )
        .join(deferrals, deferrals.c.ticket_id == tickets.c.id)
        .join(by, by.c.id == deferrals.c.by_id)
        .where(deferrals.c.resumed_at.is_(None), tickets.c.state == "deferred", scope)
        .order_by(deferrals.c.review_on, deferrals.c.id)
    )
    with read_only(app.engine) as conn:
        rows = conn.execute(q).all()
    return [
        {
            "id": r.deferral_id,
            "ticket": views.ticket_summary(app, r),
            "by": r.deferred_by,
            "at": _iso(app, r.deferred_at),
            "reason": r.deferral_reason,
            "review_on": _iso(app, r.review_on),
            "review_due": r.review_on <= now,
            "remaining_hours": (
                round(r.remaining_seconds / 3600, 2) if r.remaining_seconds is not None else None
            ),
        }
        for r in rows
    ]


def extension_requests(
    app: App, scope: ColumnElement[bool], status: str | None
) -> list[dict[str, Any]]:
    """Extension requests, the oldest first; `status` None gives all of them."""
    asker, decider = people.alias("asker"), people.alias("decider")
    q = (
        access.listing()
        .add_columns(
            extensions.c.id.label("extension_id"),
            extensions.c.stage_no.label("extension_stage_no"),
            extensions.c.requested_at,
            extensions.c.reason.label("extension_reason"),
            extensions.c.until,
            extensions.c.status.label("extension_status"),
            extensions.c.decided_at,
            extensions.c.decision_note,
            asker.c.handle.label("asked_by"),
            decider.c.handle.label("decided_by"),
        )
        .join(extensions, extensions.c.ticket_id == tickets.c.id)
        .join(asker, asker.c.id == extensions.c.requested_by_id)
        .outerjoin(decider, decider.c.id == extensions.c.decided_by_id)
        .where(scope)
        .order_by(extensions.c.requested_at, extensions.c.id)
    )
    if status is not None:
        q = q.where(extensions.c.status == status)
    with read_only(app.engine) as conn:
        rows = conn.execute(q).all()
    return [
        {
            "id": r.extension_id,
            "ticket": views.ticket_summary(app, r),
            "stage_no": r.extension_stage_no,
            "current_stage": r.extension_stage_no == r.stage_no,
            "requested_by": r.asked_by,
            "requested_at": _iso(app, r.requested_at),
            "reason": r.extension_reason,
            "until": _iso(app, r.until),
            "status": r.extension_status,
            "decided_by": r.decided_by,
            "decided_at": _iso(app, r.decided_at),
            "decision_note": r.decision_note,
        }
        for r in rows
    ]
