"""The read side: tickets as people read them (a listing row, `ticket show`, an inbox, a list).

Readers (the CLI, the web, escalation's overdue list, reports) import this module; it imports no
write-side module. Every read runs on a read-only connection (on SQLite it must not take the
write lock, which a plain connection's BEGIN does).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, false, func, or_, select, true

from closeloop import grid as grids_mod
from closeloop.app import App
from closeloop.db import read_only
from closeloop.grid import UnknownGrid, in_subtree, with_own_grids
from closeloop.models import (
    deferrals,
    escalations,
    evidence,
    extensions,
    grids,
    people,
    ticket_events,
    ticket_feedback,
    tickets,
)
from closeloop.tickets import Actor, Invalid, NotFound

# The person with one row per grid they lead or are a member of (`leads` tells which).
_ACTOR = with_own_grids(
    (people.c.id, people.c.handle, people.c.name, people.c.roles),
    people,
    people.c.handle == bindparam("handle"),
)


def load_actor(conn: Connection, handle: str) -> Actor:
    rows = conn.execute(_ACTOR, {"handle": handle}).all()
    if not rows:
        raise NotFound("person.unknown", handle=handle)
    person = rows[0]
    roles = frozenset(r for r in person.roles.split(",") if r)
    paths = tuple(r.path for r in rows if r.path is not None and r.leads)
    member = tuple(r.path for r in rows if r.path is not None and not r.leads)
    return Actor(person.id, person.handle, person.name, roles, paths, member)


HOME = grids.alias("home")
RESP = grids.alias("resp")


@functools.cache
def listing_select() -> Select[Any]:
    """Tickets with the codes and handles people read, in one query (no per-row lookups).

    Built once: its joins and aliases cost more to build than SQLite takes to run the query.
    Callers add to it (`.where()` returns a new statement; this one is never changed)."""
    home, resp = HOME, RESP
    sup = grids.alias("sup")
    assignee = people.alias("assignee")
    supervisor = people.alias("supervisor")
    earlier = tickets.alias("earlier")
    return select(
        tickets,
        home.c.code.label("grid_code"),
        home.c.name.label("grid_name"),
        resp.c.code.label("responsible_code"),
        resp.c.name.label("responsible_name"),
        resp.c.path.label("responsible_path"),
        assignee.c.handle.label("assignee_handle"),
        assignee.c.name.label("assignee_name"),
        sup.c.code.label("supervising_code"),
        sup.c.level.label("supervising_level"),
        supervisor.c.handle.label("supervisor_handle"),
        earlier.c.ref.label("recurrence_ref"),
    ).select_from(
        tickets.join(home, home.c.id == tickets.c.grid_id)
        .join(resp, resp.c.id == tickets.c.responsible_grid_id)
        .outerjoin(assignee, assignee.c.id == tickets.c.assignee_id)
        .outerjoin(sup, sup.c.id == tickets.c.supervising_grid_id)
        .outerjoin(supervisor, supervisor.c.id == tickets.c.supervisor_id)
        .outerjoin(earlier, earlier.c.id == tickets.c.recurrence_of_id)
    )


def iso(value: datetime | None, app: App) -> str | None:
    """A stored time in the zone's time, to the second (None stays None)."""
    return value.astimezone(app.tz).isoformat(timespec="seconds") if value else None


def lateness(due: datetime | None, now: datetime) -> tuple[bool, float]:
    """(overdue, hours since the deadline): a stage is late once its deadline has passed."""
    if due is None or due > now:
        return False, 0.0
    return True, round((now - due).total_seconds() / 3600, 1)


def ticket_summary(app: App, row: Any, now: datetime | None = None) -> dict[str, Any]:
    """A ticket as every listing shows it. `now` (default: the clock) judges lateness."""
    m = row._mapping
    wf = app.workflow
    late, late_hours = lateness(m["due_at"], now or app.now())
    return {
        "ref": m["ref"],
        "state": m["state"],
        "state_name": wf.states[m["state"]].label.get(app.settings.locale),
        "category": m["category"],
        "category_name": wf.category(m["category"]).label.get(app.settings.locale),
        "title": m["title"],
        "grid": m["grid_code"],
        "grid_name": m["grid_name"],
        "responsible_grid": m["responsible_code"],
        "assignee": m["assignee_handle"],
        "assignee_name": m["assignee_name"],
        "stage": m["stage"],
        "due_at": iso(m["due_at"], app),
        "next_escalation_at": iso(m["next_escalation_at"], app),
        "overdue": late,
        "overdue_hours": late_hours,
        "created_at": iso(m["created_at"], app),
        "updated_at": iso(m["updated_at"], app),
        "closed_at": iso(m["closed_at"], app),
        "rework_count": m["rework_count"],
        "extension_count": m["extension_count"],
        "recurrence_of": m["recurrence_ref"],
        "escalation_level": m["escalation_level"],
        "supervising_grid": m["supervising_code"],
        "supervising_level": m["supervising_level"],
        "supervisor": m["supervisor_handle"],
        "address": m["address"],
        "lat": m["lat"],
        "lon": m["lon"],
        "description": m["description"],
        "reporter": m["reporter_name"],
        "source": m["source"],
        "urgent": m["urgent_at"] is not None,
        "urgent_at": iso(m["urgent_at"], app),
    }


_ACTOR_OF_EVENT = people.alias("actor")
_SHOW_EVENTS = (
    select(ticket_events, _ACTOR_OF_EVENT.c.handle.label("actor_handle"))
    .select_from(
        ticket_events.outerjoin(_ACTOR_OF_EVENT, _ACTOR_OF_EVENT.c.id == ticket_events.c.actor_id)
    )
    .where(ticket_events.c.ticket_id == bindparam("ticket_id"))
    .order_by(ticket_events.c.id)
)
_SHOW_FILES = (
    select(evidence).where(evidence.c.ticket_id == bindparam("ticket_id")).order_by(evidence.c.id)
)


def show(app: App, ref: str, now: datetime | None = None) -> dict[str, Any]:
    """The ticket with its whole timeline and evidence."""
    # A read: on SQLite it must not take the write lock (what a plain connection's BEGIN does).
    with read_only(app.engine) as conn:
        row = conn.execute(_by_ref(), {"b_ref": ref}).first()
        if row is None:
            raise NotFound("ticket.not_found", ref=ref)
        return show_row(app, conn, row, now)


def show_row(app: App, conn: Connection, row: Any, now: datetime | None = None) -> dict[str, Any]:
    """`show` of a row of `listing_select()` the caller has read already (the web checks who
    may see it with the same query), in the caller's transaction."""
    out = ticket_summary(app, row, now)
    events = conn.execute(_SHOW_EVENTS, {"ticket_id": row.id})
    out["events"] = [
        {
            "at": iso(e.at, app),
            "recorded_at": iso(e.recorded_at, app),
            "step": e.step,
            "by": e.actor_handle or e.actor_label,
            "from": e.from_state,
            "to": e.to_state,
            "note": e.note,
            "data": e.data or {},
        }
        for e in events
    ]
    files = conn.execute(_SHOW_FILES, {"ticket_id": row.id})
    out["evidence"] = [
        {
            "id": f.id,
            "name": f.original_name,
            "stored_name": f.stored_name,
            "content_type": f.content_type,
            "size": f.size,
            "event": f.event_id,
        }
        for f in files
    ]
    _deadlines(app, conn, row, out)
    out["feedback"] = _feedback(app, conn, row.id)
    return out


_FEEDBACK_BY = people.alias("caller")
_SHOW_FEEDBACK = (
    select(ticket_feedback, _FEEDBACK_BY.c.handle)
    .outerjoin(_FEEDBACK_BY, _FEEDBACK_BY.c.id == ticket_feedback.c.by_id)
    .where(ticket_feedback.c.ticket_id == bindparam("ticket_id"))
    .order_by(ticket_feedback.c.id)
)


def _feedback(app: App, conn: Connection, ticket_id: int) -> list[dict[str, Any]]:
    """The reporter's answers and the supervisors' call-backs (回访), oldest first."""
    return [
        {
            "at": iso(r.at, app),
            "channel": r.channel,
            "by": r.handle,
            "solved": r.solved,
            "satisfaction": r.satisfaction,
            "comment": r.comment,
        }
        for r in conn.execute(_SHOW_FEEDBACK, {"ticket_id": ticket_id})
    ]


OPEN_STATES = ("assigned", "fixed", "verified")


def inbox(app: App, handle: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """What a leader must handle: open tickets on the grids they lead and below, and the fixes
    waiting for them to verify; late ones first (the longest late at the top: the deadline never
    moves with escalation), then the soonest deadline."""
    with read_only(app.engine) as conn:
        actor = load_actor(conn, handle)
        if not actor.led_paths and not actor.member_paths and not actor.is_supervisor:
            return []
        q = _inbox_select(actor.led_paths, actor.member_paths, actor.is_supervisor)
        return [ticket_summary(app, r, now) for r in conn.execute(q, {"b_actor": actor.id})]


@functools.cache
def _by_ref() -> Select[Any]:
    """One ticket by its reference (bound as `b_ref`): one statement object, whose cache key
    SQLAlchemy computes once (a walk of the whole listing, which a statement built per call
    repeated on every request)."""
    return listing_select().where(tickets.c.ref == bindparam("b_ref"))


@functools.lru_cache(maxsize=1024)
def _inbox_select(
    led_paths: tuple[str, ...], member_paths: tuple[str, ...], is_supervisor: bool
) -> Select[Any]:
    """The inbox of a leader with these grids, one statement per set of grids (see `_by_ref`);
    the leader's id is bound as `b_actor`."""
    resp = RESP
    own = [in_subtree(resp.c.path, p) for p in (*led_paths, *member_paths)]
    # A fix waits for a leader strictly above the grid that fixed it.
    to_verify = [and_(in_subtree(resp.c.path, p), resp.c.path != p) for p in led_paths]
    return (
        listing_select()
        .where(
            or_(
                and_(tickets.c.state == "assigned", or_(false(), *own)),
                and_(tickets.c.state.in_(("fixed", "verified")), or_(false(), *to_verify)),
                and_(
                    tickets.c.state.in_(("fixed", "verified")),
                    tickets.c.fixed_by_id != bindparam("b_actor"),
                    true() if is_supervisor else false(),
                ),
            )
        )
        .order_by(tickets.c.due_at.is_(None), tickets.c.due_at, tickets.c.id)
    )


def list_tickets(
    app: App,
    *,
    states: Iterable[str] = (),
    grid: str | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    states = list(states)
    unknown = [s for s in states if s not in app.workflow.states]
    if unknown:
        raise Invalid(
            "ticket.unknown_state", states=", ".join(unknown), known=", ".join(app.workflow.states)
        )
    with read_only(app.engine) as conn:
        q = listing_select()
        if states:
            q = q.where(tickets.c.state.in_(states))
        if grid is not None:
            try:
                g = grids_mod.get_grid(conn, grid)
            except UnknownGrid as exc:
                raise Invalid(exc.code, **exc.params) from None
            q = q.where(in_subtree(HOME.c.path, g.path))
        q = q.order_by(tickets.c.id)
        if limit is not None:
            q = q.limit(limit)
        return [ticket_summary(app, r, now) for r in conn.execute(q)]


def count_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(tickets.c.state, func.count()).group_by(tickets.c.state))
    return {s: n for s, n in rows}


# --- ticket show: deadlines ---------------------------------------------------------------


def _rungs_select() -> Any:
    grid, failed = grids.alias("g"), grids.alias("failed")
    supervisor = people.alias("sup")
    return (
        select(
            escalations,
            grid.c.code.label("grid_code"),
            failed.c.code.label("failed_code"),
            supervisor.c.handle.label("supervisor_handle"),
        )
        .select_from(
            escalations.join(grid, grid.c.id == escalations.c.grid_id)
            .outerjoin(failed, failed.c.id == escalations.c.failed_grid_id)
            .outerjoin(supervisor, supervisor.c.id == escalations.c.supervisor_id)
        )
        .where(escalations.c.ticket_id == bindparam("ticket_id"))
        .order_by(escalations.c.deadline, escalations.c.id)
    )


def _asks_select() -> Any:
    asker, decider = people.alias("asker"), people.alias("decider")
    return (
        select(extensions, asker.c.handle.label("asker"), decider.c.handle.label("decider"))
        .select_from(
            extensions.join(asker, asker.c.id == extensions.c.requested_by_id).outerjoin(
                decider, decider.c.id == extensions.c.decided_by_id
            )
        )
        .where(extensions.c.ticket_id == bindparam("ticket_id"))
        .order_by(extensions.c.id)
    )


def _parks_select() -> Any:
    parker, resumer = people.alias("parker"), people.alias("resumer")
    return (
        select(deferrals, parker.c.handle.label("parker"), resumer.c.handle.label("resumer"))
        .select_from(
            deferrals.join(parker, parker.c.id == deferrals.c.by_id).outerjoin(
                resumer, resumer.c.id == deferrals.c.resumed_by_id
            )
        )
        .where(deferrals.c.ticket_id == bindparam("ticket_id"))
        .order_by(deferrals.c.id)
    )


# Built once: `ticket show` runs them for every ticket page and every step's answer.
_RUNGS, _ASKS, _PARKS = _rungs_select(), _asks_select(), _parks_select()


def _deadlines(app: App, conn: Connection, row: Any, out: dict[str, Any]) -> None:
    """What `ticket show` says about deadlines: the escalation ladder, extensions, deferrals."""
    key = {"ticket_id": row.id}
    out["escalations"] = [
        {
            "level": e.level,
            "round": e.round,
            "grid": e.grid_code,
            "supervisor": e.supervisor_handle,
            "failed_grid": e.failed_code,
            "stage": e.stage,
            "stage_no": e.stage_no,
            "deadline": iso(e.deadline, app),
            "at": iso(e.at, app),
            "closed_at": iso(e.closed_at, app),
        }
        for e in conn.execute(_RUNGS, key)
    ]
    out["extensions"] = [
        {
            "stage_no": x.stage_no,
            "status": x.status,
            "until": iso(x.until, app),
            "reason": x.reason,
            "requested_by": x.asker,
            "requested_at": iso(x.requested_at, app),
            "decided_by": x.decider,
            "decided_at": iso(x.decided_at, app),
            "decision_note": x.decision_note,
        }
        for x in conn.execute(_ASKS, key)
    ]
    out["deferrals"] = [
        {
            "at": iso(d.at, app),
            "by": d.parker,
            "reason": d.reason,
            "review_on": iso(d.review_on, app),
            "remaining_hours": round((d.remaining_seconds or 0.0) / 3600, 2),
            "resumed_at": iso(d.resumed_at, app),
            "resumed_by": d.resumer,
        }
        for d in conn.execute(_PARKS, key)
    ]
    open_ = [d for d in out["deferrals"] if d["resumed_at"] is None]
    out["deferred"] = open_[-1] if row.state == "deferred" and open_ else None
