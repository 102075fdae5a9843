"""The reporter's answer after closure and the supervisors' call-backs (回访): solved? and how
satisfied (three levels, the 12345 hotlines' practice), with a comment.

Once a ticket is closed its reporter may answer once on the follow-up page (through the
reference and its secret); a supervisor records a phone call-back any time after closure.
Rows are only added. An answer "not solved" reopens nothing by itself: it lists the ticket
(`unsolved`) until a supervisor reopens it or a later answer says it is solved.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select

from closeloop.app import App
from closeloop.db import read_only
from closeloop.models import grids, ticket_feedback, tickets
from closeloop.tickets import Conflict, Invalid, NotFound, NotPermitted
from closeloop.views import iso, load_actor

SATISFACTION = ("satisfied", "basic", "dissatisfied")  # 满意, 基本满意, 不满意
CHANNELS = ("reporter", "phone")
COMMENT_MAX = 1000


@dataclass(frozen=True)
class Answer:
    solved: bool
    satisfaction: str
    comment: str = ""


def _check(answer: Answer) -> None:
    if answer.satisfaction not in SATISFACTION:
        raise Invalid(
            "feedback.satisfaction", satisfaction=answer.satisfaction, known=", ".join(SATISFACTION)
        )
    if len(answer.comment) > COMMENT_MAX:
        raise Invalid("feedback.comment_long", n=COMMENT_MAX)


def _closed_ticket(conn: Connection, ref: str) -> Any:
    row = conn.execute(
        select(
            tickets.c.id, tickets.c.state, tickets.c.closed_at, tickets.c.reporter_secret_hash
        ).where(tickets.c.ref == ref)
    ).first()
    if row is None:
        raise NotFound("ticket.not_found", ref=ref)
    return row


def _insert(
    conn: Connection, ticket_id: int, channel: str, by_id: int | None, a: Answer, at: datetime
) -> None:
    conn.execute(
        insert(ticket_feedback).values(
            ticket_id=ticket_id,
            at=at,
            channel=channel,
            by_id=by_id,
            solved=a.solved,
            satisfaction=a.satisfaction,
            comment=a.comment.strip(),
        )
    )


def reporter_answer(app: App, ref: str, secret_hash: str, answer: Answer, now: datetime) -> None:
    """The reporter's answer, once per closure; `secret_hash` is the hash of the secret they
    gave (a wrong one reads as an unknown ticket, as on the follow-up page)."""
    _check(answer)
    with app.engine.begin() as conn:
        row = _closed_ticket(conn, ref)
        if not row.reporter_secret_hash or not hmac.compare_digest(
            row.reporter_secret_hash, secret_hash
        ):
            raise NotFound("ticket.not_found", ref=ref)
        if row.state != "closed":
            raise Conflict("feedback.not_closed", ref=ref)
        answered = conn.execute(
            select(func.count()).where(
                ticket_feedback.c.ticket_id == row.id,
                ticket_feedback.c.channel == "reporter",
                ticket_feedback.c.at >= row.closed_at,
            )
        ).scalar_one()
        if answered:
            raise Conflict("feedback.answered", ref=ref)
        _insert(conn, row.id, "reporter", None, answer, now)


def phone_callback(
    app: App, ref: str, handle: str, answer: Answer, now: datetime, *, at: datetime | None = None
) -> None:
    """A supervisor's phone call-back (电话回访) on a closed ticket, recorded with what the
    reporter said."""
    _check(answer)
    when = at or now
    if when.tzinfo is None:
        raise Invalid("step.at_naive")
    if when > now:
        raise Invalid("feedback.at_future", at=when.isoformat())
    with app.engine.begin() as conn:
        actor = load_actor(conn, handle)
        if not actor.is_supervisor:
            raise NotPermitted("feedback.supervisor_only", handle=handle)
        row = _closed_ticket(conn, ref)
        if row.state != "closed" or row.closed_at is None:
            raise Conflict("feedback.callback_not_closed", ref=ref)
        if when < row.closed_at:
            raise Invalid("feedback.before_closed", at=when.isoformat(), ref=ref)
        _insert(conn, row.id, "phone", actor.id, answer, when)


def reporter_may_answer(conn: Connection, ticket_id: int, closed_at: datetime | None) -> bool:
    """Whether the reporter of a closed ticket has not answered since its closure."""
    if closed_at is None:
        return False
    answered = conn.execute(
        select(func.count()).where(
            ticket_feedback.c.ticket_id == ticket_id,
            ticket_feedback.c.channel == "reporter",
            ticket_feedback.c.at >= closed_at,
        )
    ).scalar_one()
    return answered == 0


def unsolved(app: App) -> list[dict[str, Any]]:
    """Closed tickets whose latest answer or call-back says "not solved", and that nobody has
    reopened since: the supervisors' list to look at (most recent answer first)."""
    f = ticket_feedback
    latest = select(f.c.ticket_id, func.max(f.c.id).label("id")).group_by(f.c.ticket_id).subquery()
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(
                tickets.c.ref,
                tickets.c.title,
                tickets.c.category,
                tickets.c.closed_at,
                grids.c.code,
                grids.c.name,
                f.c.at,
                f.c.channel,
                f.c.satisfaction,
                f.c.comment,
            )
            .select_from(
                latest.join(f, f.c.id == latest.c.id)
                .join(tickets, tickets.c.id == f.c.ticket_id)
                .join(grids, grids.c.id == tickets.c.grid_id)
            )
            .where(
                and_(
                    f.c.solved.is_(False),
                    tickets.c.state == "closed",
                    f.c.at >= tickets.c.closed_at,  # about the closure that stands
                )
            )
            .order_by(f.c.at.desc(), tickets.c.id)
        ).all()
    return [
        {
            "ref": r.ref,
            "title": r.title,
            "category": r.category,
            "grid": r.code,
            "grid_name": r.name,
            "closed_at": iso(r.closed_at, app),
            "answered_at": iso(r.at, app),
            "channel": r.channel,
            "satisfaction": r.satisfaction,
            "comment": r.comment,
        }
        for r in rows
    ]
