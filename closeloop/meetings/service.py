"""Use cases of meetings, one transaction each.

- `add_meeting` records a meeting with its attendees and its agenda: the weekly report of the
  week (late tickets, escalations, hot spots, the example and the lagging grids, campaign
  progress; read through `closeloop.reports.weekly.build_weekly`) and the decisions of the
  previous meeting whose tickets are still open;
- `decide` files a decision as a ticket on a grid through `closeloop.service.submit` (source
  "meeting", linked to the meeting, the deadline given): assignment, ladder and notices are
  those of any ticket;
- `send_minutes` queues the minutes for every attendee in the outbox (kind "meeting_minutes").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from closeloop import outbox, service, views
from closeloop.app import App
from closeloop.db import read_only
from closeloop.errors import CodedError
from closeloop.grid import UnknownGrid, get_grid
from closeloop.meetings.rules import (
    check_meeting,
    kind_name,
    minutes_summary,
    minutes_title,
    open_decision,
    render_minutes,
)
from closeloop.models import grids, meeting_attendees, meetings, people, ticket_links, tickets
from closeloop.reports.indicators import last_full_week
from closeloop.reports.weekly import WeeklyReport, build_weekly
from closeloop.tickets import Invalid, NotFound

AGENDA_ROWS = 10
DEFAULT_CATEGORY = "other"


def _iso(app: App, value: datetime | None) -> str | None:
    return value.astimezone(app.tz).isoformat(timespec="seconds") if value else None


def _agenda_from_report(app: App, report: WeeklyReport) -> dict[str, Any]:
    locale = app.settings.locale
    return {
        "late": [
            {
                "ref": t.ref,
                "title": t.title,
                "grid": t.grid_code,
                "grid_name": t.grid_name,
                "late_hours": int(t.late.total_seconds() // 3600),
                "escalation_level": t.escalation_level,
            }
            for t in report.overdue[:AGENDA_ROWS]
        ],
        "escalations": {str(k): v for k, v in sorted(report.zone.escalations.items())},
        "hotspots": [
            {
                "grid": h.grid_code,
                "grid_name": h.grid_name,
                "category": h.category_label.get(locale),
                "count": h.count,
            }
            for h in report.hotspots[:AGENDA_ROWS]
        ],
        "example": (
            {"grid": report.example.row.code, "name": report.example.row.name}
            if report.example
            else None
        ),
        "lagging": [{"grid": r.code, "name": r.name} for r in report.yellow],
        "campaigns": [
            {
                "id": c.campaign.id,
                "theme": c.campaign.theme,
                "found": c.total.found,
                "fixed": c.total.fixed,
                "open": c.total.open,
            }
            for c in report.campaigns
        ],
    }


def _decisions(conn: Connection, app: App, meeting_id: int) -> list[dict[str, Any]]:
    final = frozenset(s for s, st in app.workflow.states.items() if st.final)
    rows = conn.execute(
        select(
            ticket_links.c.id,
            tickets.c.ref,
            tickets.c.title,
            tickets.c.state,
            tickets.c.due_at,
            tickets.c.category,
            grids.c.code,
            grids.c.name,
        )
        .select_from(
            ticket_links.join(tickets, tickets.c.id == ticket_links.c.ticket_id).join(
                grids, grids.c.id == tickets.c.grid_id
            )
        )
        .where(ticket_links.c.kind == "meeting", ticket_links.c.target_id == meeting_id)
        .order_by(tickets.c.id)
    )
    wf = app.workflow
    locale = app.settings.locale
    return [
        {
            "id": r.id,
            "ref": r.ref,
            "title": r.title,
            "grid": r.code,
            "grid_name": r.name,
            "category": r.category,
            "state": r.state,
            "state_name": wf.states[r.state].label.get(locale),
            "due_at": _iso(app, r.due_at),
            "open": open_decision(r.state, final),
        }
        for r in rows
    ]


def add_meeting(
    app: App,
    *,
    kind: str,
    at: datetime,
    place: str,
    attendees: Sequence[str],
    now: datetime,
    week: str | None = None,
) -> dict[str, Any]:
    """Record a meeting; every problem of the input is named at once, nothing written on error."""
    problems: list[CodedError] = [*check_meeting(kind, attendees, week)]
    if at.tzinfo is None:
        problems.append(Invalid("meeting.at_naive"))
    report = None
    if not problems:
        label = week or last_full_week(min(at, now), app.tz).label
        try:
            report = build_weekly(app, now=now, week=label)
        except Invalid as exc:
            problems.append(exc)
    with app.engine.begin() as conn:
        place_grid = None
        try:
            place_grid = get_grid(conn, place)
        except UnknownGrid:
            problems.append(Invalid("meeting.unknown_place", code=place))
        ids = dict(
            conn.execute(
                select(people.c.handle, people.c.id).where(people.c.handle.in_(list(attendees)))
            ).all()
        )
        problems += [
            Invalid("meeting.unknown_attendee", handle=h)
            for h in dict.fromkeys(attendees)
            if h not in ids
        ]
        if problems:
            raise Invalid("meeting.problems", problems=problems)
        assert report is not None and place_grid is not None
        previous = conn.execute(
            select(meetings.c.id)
            .where(meetings.c.at <= at)
            .order_by(meetings.c.at.desc(), meetings.c.id.desc())
            .limit(1)
        ).scalar()
        agenda = _agenda_from_report(app, report)
        agenda["previous_meeting"] = previous
        agenda["open_decisions"] = (
            [d for d in _decisions(conn, app, previous) if d["open"]] if previous else []
        )
        meeting_id = conn.execute(
            insert(meetings)
            .values(
                kind=kind,
                at=at,
                place_grid_id=place_grid.id,
                week=report.week.label,
                agenda=agenda,
                created_at=now,
            )
            .returning(meetings.c.id)
        ).scalar_one()
        conn.execute(
            insert(meeting_attendees),
            [{"meeting_id": meeting_id, "person_id": ids[h]} for h in dict.fromkeys(attendees)],
        )
        return _describe(conn, app, meeting_id)


def decide(
    app: App,
    meeting_id: int,
    *,
    grid: str,
    title: str,
    due: datetime,
    now: datetime,
    category: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Record a decision: a ticket (交办) on `grid` linked to the meeting, due at `due`."""
    with read_only(app.engine) as conn:
        meeting = _meeting_row(conn, meeting_id)
    if due.tzinfo is None:
        raise Invalid("meeting.problems", problems=[Invalid("meeting.due_naive")])
    if due <= now:
        raise Invalid(
            "meeting.problems", problems=[Invalid("meeting.due_past", due=due.isoformat())]
        )
    label = kind_name(meeting.kind, app.settings.locale)
    ref = service.submit(
        app,
        service.NewProblem(
            grid=grid,
            category=category or DEFAULT_CATEGORY,
            title=title,
            description=description,
            reporter=f"{label} #{meeting_id}",
            source="meeting",
            link=("meeting", meeting_id),
            due_at=due,
        ),
        now,
    )
    shown = views.show(app, ref)
    with read_only(app.engine) as conn:
        decision_id = conn.execute(
            select(ticket_links.c.id)
            .join(tickets, tickets.c.id == ticket_links.c.ticket_id)
            .where(ticket_links.c.kind == "meeting", tickets.c.ref == ref)
        ).scalar_one()
    return {
        "id": int(decision_id),  # the decision (its link to the meeting)
        "meeting": meeting_id,
        "ref": ref,
        "title": shown["title"],
        "grid": shown["grid"],
        "category": shown["category"],
        "state": shown["state"],
        "assignee": shown["assignee"],
        "due_at": shown["due_at"],
    }


def _meeting_row(conn: Connection, meeting_id: int) -> Any:
    row = conn.execute(select(meetings).where(meetings.c.id == meeting_id)).first()
    if row is None:
        raise NotFound("meeting.not_found", meeting_id=meeting_id)
    return row


def _describe(conn: Connection, app: App, meeting_id: int) -> dict[str, Any]:
    m = _meeting_row(conn, meeting_id)
    place = conn.execute(select(grids.c.code, grids.c.name).where(grids.c.id == m.place_grid_id))
    code, name = place.one()
    attendees = conn.execute(
        select(people.c.handle, people.c.name)
        .select_from(meeting_attendees.join(people, people.c.id == meeting_attendees.c.person_id))
        .where(meeting_attendees.c.meeting_id == meeting_id)
        .order_by(meeting_attendees.c.id)
    )
    locale = app.settings.locale
    return {
        "id": m.id,
        "kind": m.kind,
        "kind_name": kind_name(m.kind, locale),
        "at": _iso(app, m.at),
        "place": {"grid": code, "name": name},
        "week": m.week,
        "attendees": [{"handle": h, "name": n} for h, n in attendees],
        "agenda": m.agenda,
        "decisions": _decisions(conn, app, meeting_id),
        "minutes_sent_at": _iso(app, m.minutes_sent_at),
    }


def show_meeting(app: App, meeting_id: int) -> dict[str, Any]:
    with read_only(app.engine) as conn:
        return _describe(conn, app, meeting_id)


def list_meetings(app: App, *, kind: str | None = None) -> list[dict[str, Any]]:
    with read_only(app.engine) as conn:
        q = select(meetings.c.id).order_by(meetings.c.at, meetings.c.id)
        if kind is not None:
            q = q.where(meetings.c.kind == kind)
        return [_describe(conn, app, i) for i in conn.execute(q).scalars()]


def minutes(app: App, meeting_id: int, fmt: str = "md", locale: str | None = None) -> str:
    return render_minutes(show_meeting(app, meeting_id), fmt, locale or app.settings.locale)


def send_minutes(app: App, meeting_id: int, now: datetime) -> int:
    """Queue the minutes for every attendee (their channels); returns how many notices are new.
    Sending again after new decisions sends the new minutes; the same minutes are sent once."""
    locale = app.settings.locale
    defaults = app.settings.section("notifiers").get("default_channels", ["console"])
    with app.engine.begin() as conn:
        m = _describe(conn, app, meeting_id)
        payload = {
            "meeting_id": meeting_id,
            "title": minutes_title(m, locale),
            "at": m["at"],
            "place": m["place"]["name"],
            "summary": minutes_summary(m, locale),
            "markdown": render_minutes(m, "md", locale),
        }
        version = len(m["decisions"])
        ids = conn.execute(
            select(meeting_attendees.c.person_id)
            .where(meeting_attendees.c.meeting_id == meeting_id)
            .order_by(meeting_attendees.c.id)
        ).scalars()
        queued = sum(
            outbox.enqueue(
                conn,
                kind="meeting_minutes",
                recipient_id=pid,
                key=f"meeting_minutes:{meeting_id}:{version}:{pid}",
                now=now,
                default_channels=defaults,
                payload=payload,
            )
            for pid in ids
        )
        conn.execute(
            update(meetings).where(meetings.c.id == meeting_id).values(minutes_sent_at=now)
        )
    return queued
