"""The write side of the loop: submit a problem, run a step (reads are in `closeloop.views`).

Each use case is one transaction: the ticket change, its audit event and its notices commit
together or not at all. Concurrent changes to one ticket are caught by its version number: the
second writer gets a Conflict, never a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    exists,
    func,
    insert,
    select,
    update,
)

from closeloop import grid as grids_mod
from closeloop import outbox
from closeloop.app import App, StepRun
from closeloop.db import upsert_increment
from closeloop.evidence import StoredFile, store_file
from closeloop.grid import Grid
from closeloop.models import (
    escalations,
    evidence,
    grids,
    notifications,
    people,
    ref_counters,
    stages,
    ticket_events,
    ticket_links,
    tickets,
)
from closeloop.models import extensions as extension_rows
from closeloop.textguard import has_visible
from closeloop.tickets import (
    VERIFIER_STAGES,
    Actor,
    Change,
    Conflict,
    Invalid,
    NotFound,
    NotPermitted,
    StepInput,
    Ticket,
    authorize,
    check_requirements,
    enter_state,
)
from closeloop.views import load_actor
from closeloop.workflow import UnknownCategory

FUTURE_TOLERANCE = timedelta(minutes=5)


# --- loading -------------------------------------------------------------------------------


# Statements of the hot path are built once with bound parameters: building and hashing a new
# statement object per call costs more than SQLite takes to run it.
_TICKET = select(tickets).where(tickets.c.ref == bindparam("ref"))


def _ticket_row(conn: Connection, ref: str) -> Any:
    row = conn.execute(_TICKET, {"ref": ref}).first()
    if row is None:
        raise NotFound("ticket.not_found", ref=ref)
    return row


def get_ticket(conn: Connection, ref: str) -> Ticket:
    return Ticket.from_row(_ticket_row(conn, ref)._mapping)


# --- writing -------------------------------------------------------------------------------

_MUTABLE = (
    "grid_id",
    "responsible_grid_id",
    "assignee_id",
    "state",
    "stage",
    "stage_no",
    "stage_started_at",
    "due_at",
    "next_escalation_at",
    "next_check_at",
    "escalation_level",
    "escalation_round",
    "supervising_grid_id",
    "supervisor_id",
    "rework_count",
    "extension_count",
    "fixed_by_id",
    "closed_at",
    "updated_at",
    "urgent_at",
)


_SAVE = (
    update(tickets)
    .where(tickets.c.id == bindparam("_id"), tickets.c.version == bindparam("_version"))
    .values({**{k: bindparam(k) for k in _MUTABLE}, "version": bindparam("_new_version")})
)
_EVENT = insert(ticket_events).returning(ticket_events.c.id)


class StaleTicket(Conflict):
    """The ticket changed between reading and writing it (another step, or the sweep)."""


def save_ticket(conn: Connection, t: Ticket) -> None:
    """Write the changed ticket if nobody else changed it since it was read."""
    params = {k: getattr(t, k) for k in _MUTABLE}
    params.update(_id=t.id, _version=t.version, _new_version=t.version + 1)
    result = conn.execute(_SAVE, params)
    if result.rowcount != 1:
        raise StaleTicket("ticket.changed", ref=t.ref)
    t.version += 1


def record_event(
    conn: Connection,
    ticket_id: int,
    change: Change,
    *,
    at: datetime,
    recorded_at: datetime,
    actor: Actor | None,
    actor_label: str | None = None,
) -> int:
    params = {
        "ticket_id": ticket_id,
        "at": at,
        "recorded_at": recorded_at,
        "step": change.step,
        "actor_id": actor.id if actor else None,
        "actor_label": actor_label,
        "from_state": change.from_state,
        "to_state": change.to_state,
        "note": change.note,
        "data": change.data or None,
    }
    return int(conn.execute(_EVENT, params).scalar_one())


_STAGE_END = (
    update(stages)
    .where(
        stages.c.ticket_id == bindparam("b_ticket"),
        stages.c.stage_no == bindparam("b_stage_no"),
        stages.c.ended_at.is_(None),
    )
    .values(ended_at=bindparam("b_at"), ended_by=bindparam("b_step"))
)
_STAGE_START = insert(stages)


def verifier_grid(chain: Sequence[Grid]) -> Grid | None:
    """Who checks and closes a fix: the nearest led grid above the responsible one (the last of
    the zone-first `chain`); None when the responsible grid is the top led one."""
    return grids_mod.nearest_led(chain[:-1])


def record_stages(
    conn: Connection,
    t: Ticket,
    before: tuple[int, str | None],
    step: str,
    at: datetime,
    acting: tuple[int, int | None],
) -> None:
    """Keep `stages` in step with the ticket: the instance left ends at `at`, a new one starts
    with the deadline as set now and who must act in it (`acting`: grid id, person id, as
    `_acting` gives them). Written in the step's transaction; never rewritten."""
    stage_no, stage = before
    if (t.stage_no, t.stage) == (stage_no, stage):
        return
    if stage is not None:
        conn.execute(
            _STAGE_END, {"b_ticket": t.id, "b_stage_no": stage_no, "b_at": at, "b_step": step}
        )
    if t.stage_no == stage_no:
        return  # a state without a stage (closed, deferred, dismissed): nothing new starts
    if t.stage is not None and t.due_at is not None and t.stage_started_at is not None:
        conn.execute(
            _STAGE_START,
            {
                "ticket_id": t.id,
                "stage_no": t.stage_no,
                "stage": t.stage,
                "started_at": t.stage_started_at,
                "started_by": step,
                "due_at": t.due_at,
                "grid_id": acting[0],
                "owner_id": acting[1],
            },
        )


def _acting(run: StepRun) -> tuple[int, int | None]:
    """The grid that must act in the ticket's stage and the person who must, as of now: the
    responsible grid and the assignee; for verify/close the verifier's grid and its leader
    (with no led grid above, the responsible grid and nobody named: a supervisor verifies)."""
    t = run.ticket
    if t.stage in VERIFIER_STAGES:
        if t.responsible_grid_id == run.extra["responsible"].id:
            chain = run.responsible_lineage()  # read already when the fix named its verifier
        else:
            responsible = grids_mod.get_grid_by_id(run.conn, t.responsible_grid_id)
            chain = grids_mod.lineage(run.conn, responsible)
        above = verifier_grid(chain)
        if above is not None:
            return above.id, above.leader_id
        return t.responsible_grid_id, None
    return t.responsible_grid_id, t.assignee_id


def _send_notices(
    app: App,
    conn: Connection,
    t: Ticket,
    change: Change,
    event_id: int,
    now: datetime,
    contacts: Mapping[int, outbox.Contact] | None = None,
) -> None:
    """Queue the change's notices; `contacts` are recipients' contacts read already."""
    defaults = app.settings.section("notifiers").get("default_channels", ["console"])
    urgent = t.urgent or app.workflow.category(t.category).urgent
    not_before = outbox.quiet_until(app.calendar, now, urgent=urgent)
    for kind, person_id in change.notices:
        outbox.enqueue(
            conn,
            kind=kind,
            recipient_id=person_id,
            key=f"{kind}:{t.ref}:{event_id}:{person_id}",
            now=now,
            default_channels=defaults,
            ticket_id=t.id,
            payload={"event_id": event_id, **change.data},
            not_before=not_before,
            contact=contacts.get(person_id) if contacts else None,
        )


DEFAULT_BACKFILL_LIMIT = timedelta(hours=2)


def backfill_limit(app: App) -> timedelta:
    """`[loop] backfill_limit` ("2h", "90m", "1d"): how far before the time the server records a
    step a leader may date it through the web and the API."""
    raw = app.settings.section("loop").get("backfill_limit", "2h")
    units = {"m": 60, "h": 3600, "d": 86400}
    text = str(raw).strip()
    try:
        value = float(text[:-1])
        seconds = value * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(
            f'[loop] backfill_limit must be like "2h", "90m" or "1d", not {raw!r}'
        ) from None
    if seconds < 0:
        raise ValueError("[loop] backfill_limit may not be negative")
    return timedelta(seconds=seconds)


def _latest_of(ticket_id: Any) -> tuple[Any, ...]:
    """The times of a ticket's recorded facts beyond its own row: its last event, escalation
    rung and extension decision."""
    return (
        select(func.max(ticket_events.c.at)).where(ticket_events.c.ticket_id == ticket_id),
        select(func.max(escalations.c.at)).where(escalations.c.ticket_id == ticket_id),
        select(func.max(extension_rows.c.decided_at)).where(
            extension_rows.c.ticket_id == ticket_id
        ),
    )


_LATEST_FACTS = _latest_of(bindparam("tid"))


def latest_fact(conn: Connection, t: Ticket) -> datetime:
    """The time of the ticket's latest recorded fact: its last event, an escalation rung, an
    extension decision. No step may be dated before it."""
    return _latest([conn.execute(q, {"tid": t.id}).scalar() for q in _LATEST_FACTS], t)


def _latest(found: Sequence[datetime | None], t: Ticket) -> datetime:
    return max([t.updated_at, t.created_at, *(v for v in found if v is not None)])


# What a step reads first, in one query: the ticket, its responsible grid (who may act, and
# from whom the verifier is found), the times `latest_fact` reads, and whether the stage
# instance it is in has what a step ending it must close (open escalation rows, a pending
# extension request, reminders waiting in the outbox; `extensions.stage_left`), as correlated
# subqueries: each the look-up its statement would make, without its round trip, and a write
# with nothing to write is not sent. The step's compare-and-set on the ticket keeps this
# exact: the sweep writes rungs and reminders only with the ticket's version moved, and a
# request is a step.
_RESP = grids.alias("resp")
_GRID_FIELDS = tuple(Grid.__dataclass_fields__)
_LATEST_LABELS = ("latest_event", "latest_rung", "latest_decision")
_STAGE_OPEN = {
    "open_rungs": exists().where(
        escalations.c.ticket_id == tickets.c.id,
        escalations.c.stage_no == tickets.c.stage_no,
        escalations.c.closed_at.is_(None),
    ),
    "pending_request": exists().where(
        extension_rows.c.ticket_id == tickets.c.id,
        extension_rows.c.stage_no == tickets.c.stage_no,
        extension_rows.c.status == "pending",
    ),
    # Any reminder of the ticket still pending (the update picks those of the stage left).
    "pending_reminders": exists().where(
        notifications.c.ticket_id == tickets.c.id,
        notifications.c.kind == "reminder",
        notifications.c.status == "pending",
    ),
}
_STEP_TICKET = (
    select(
        tickets,
        *(_RESP.c[k].label(f"resp_{k}") for k in _GRID_FIELDS),
        *(
            q.scalar_subquery().label(label)
            for q, label in zip(_latest_of(tickets.c.id), _LATEST_LABELS, strict=True)
        ),
        *(cond.label(label) for label, cond in _STAGE_OPEN.items()),
    )
    .select_from(tickets.outerjoin(_RESP, _RESP.c.id == tickets.c.responsible_grid_id))
    .where(tickets.c.ref == bindparam("ref"))
)


class BeforeLatestFact(Invalid):
    """A step dated before what is already recorded of the ticket: history runs forward."""


def _check_order(app: App, t: Ticket, when: datetime, latest: datetime) -> None:
    if when < latest:
        raise BeforeLatestFact(
            "step.before_latest",
            at=when.astimezone(app.tz).isoformat(timespec="minutes"),
            ref=t.ref,
            earliest=latest.astimezone(app.tz).isoformat(timespec="seconds"),
        )


def _check_backfill(
    app: App, actor: Actor, given: StepInput, when: datetime, now: datetime, limit: timedelta
) -> str | None:
    """Web and API back-filling: a leader within `limit` of the recorded time; supervisors and
    administrators further, with a reason (returned, to be kept with the event)."""
    if when >= now - limit:
        return None
    span = f"{limit.total_seconds() / 3600:g} h"
    if not (actor.is_supervisor or "admin" in actor.roles):
        raise NotPermitted(
            "step.backdate_limit",
            handle=actor.handle,
            span=span,
            earliest=(now - limit).astimezone(app.tz).isoformat(timespec="minutes"),
        )
    reason = (given.reason or given.note or "").strip()
    if not reason:
        raise Invalid("step.backdate_reason", span=span)
    return reason


def _check_time(at: datetime | None, real_now: datetime, after: datetime | None = None) -> datetime:
    if at is None:
        return real_now
    if at.tzinfo is None:
        raise Invalid("step.at_naive")
    if at > real_now + FUTURE_TOLERANCE:
        raise Invalid("step.at_future", at=at.isoformat())
    if after is not None and at < after:
        raise Invalid("step.at_before_change", at=at.isoformat(), after=after.isoformat())
    return at


# --- submit --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewProblem:
    grid: str
    category: str
    title: str
    description: str = ""
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    reporter: str | None = None
    reporter_phone: str | None = None
    reporter_email: str | None = None
    reporter_secret_hash: str | None = None
    # Where it came from (`SOURCES`) and the record it is linked to:
    # ("patrol", patrol id), ("meeting", meeting id), ("campaign", campaign id).
    source: str = "public"
    # Urgent (紧急件) from the start: the category's urgent limits apply (an urgent category
    # makes every ticket urgent anyway).
    urgent: bool = False
    link: tuple[str, int] | None = None
    # A deadline set by whoever hands the problem over (a meeting's decision), instead of the
    # category's limit for the first stage.
    due_at: datetime | None = None


# Case sources (案件来源) as the supervision offices count them: the public (群众举报), patrols
# (巡查), the hotline (12345/12319), leaders' assignments (领导交办), the media (媒体曝光),
# meetings (会议交办), campaigns (大会战) and inspections (督查检查).
SOURCES = ("public", "patrol", "hotline", "leader", "media", "meeting", "campaign", "inspection")
LINK_KINDS = ("campaign", "patrol", "meeting")


def _check_problem(p: NewProblem) -> None:
    problems = []
    if p.source not in SOURCES:
        problems.append(Invalid("ticket.bad_source", source=p.source, known=", ".join(SOURCES)))
    if p.link is not None and p.link[0] not in LINK_KINDS:
        problems.append(Invalid("ticket.bad_link", kind=p.link[0], known=", ".join(LINK_KINDS)))
    if p.due_at is not None and p.due_at.tzinfo is None:
        problems.append(Invalid("ticket.due_naive"))
    if not has_visible(p.title):
        problems.append(Invalid("ticket.no_title"))
    if len(p.title) > 200:
        problems.append(Invalid("ticket.title_long"))
    if len(p.description) > 5000:
        problems.append(Invalid("ticket.description_long"))
    if (p.lat is None) != (p.lon is None):
        problems.append(Invalid("ticket.lat_lon_pair"))
    if p.lat is not None and not -90 <= p.lat <= 90:
        problems.append(Invalid("ticket.lat_range"))
    if p.lon is not None and not -180 <= p.lon <= 180:
        problems.append(Invalid("ticket.lon_range"))
    if problems:
        raise Invalid("ticket.problems", problems=problems)


def next_ref(conn: Connection, prefix: str, year: int) -> str:
    key = f"{prefix}-{year}"
    n = upsert_increment(conn, ref_counters, "prefix", key, "last")
    return f"{key}-{n:06d}"


def submit(
    app: App,
    problem: NewProblem,
    now: datetime,
    *,
    at: datetime | None = None,
    uploads: Sequence[StoredFile] = (),
    also: Callable[[Connection, str], None] | None = None,
) -> str:
    """Record a reported problem and assign it at once to its grid's leader (即交即办).

    `uploads` are photos already stored by content (the web form's); they are attached to the
    submit event in the same transaction. `also(conn, ref)` runs last inside that transaction
    (the web's idempotency record commits with the ticket, or neither does)."""
    _check_problem(problem)
    _check_category(app, problem)
    when = _check_time(at, now)
    with app.begin() as conn:
        ref = _submit_in(app, conn, problem, now, when, uploads)
        if also is not None:
            also(conn, ref)
        return ref


def _check_category(app: App, problem: NewProblem) -> None:
    try:
        app.workflow.category(problem.category)
    except UnknownCategory as exc:
        raise Invalid(exc.code, **exc.params) from None


def submit_many(
    app: App, problems: Sequence[NewProblem], now: datetime, *, at: datetime | None = None
) -> list[str]:
    """Several problems found together (a campaign day's findings) in one transaction: all are
    filed or none. A problem refused is named by its position (1 = the first)."""
    when = _check_time(at, now)
    for i, problem in enumerate(problems, start=1):
        try:
            _check_problem(problem)
            _check_category(app, problem)
        except Invalid as exc:
            raise Invalid("ticket.problem_line", n=i, problem=exc) from None
    with app.begin() as conn:
        refs = []
        for i, problem in enumerate(problems, start=1):
            try:
                refs.append(_submit_in(app, conn, problem, now, when, ()))
            except Invalid as exc:
                raise Invalid("ticket.problem_line", n=i, problem=exc) from None
        return refs


# Built once: a statement given its values per call (`.values(...)`) is built, coerced and
# hashed anew each time, which cost more than SQLite takes to run it.
_NEW_TICKET = insert(tickets).returning(tickets.c.id)
_NEW_LINK = insert(ticket_links)

# Where a problem is filed, in one query: the grid, its leader's contact (the assignment
# notice's recipient) and the ticket of the same category closed there most recently within
# the recurrence window (the new one is a recurrence, 复发, of it), if any.
_RECURRENCE = (
    select(tickets.c.id)
    .where(
        tickets.c.grid_id == grids.c.id,
        tickets.c.category == bindparam("category"),
        tickets.c.state == "closed",
        tickets.c.closed_at >= bindparam("since"),
        tickets.c.closed_at <= bindparam("at"),
    )
    .order_by(tickets.c.closed_at.desc())
    .limit(1)
)
_WHERE = (
    select(
        grids,
        people.c.channels.label("leader_channels"),
        people.c.locale.label("leader_locale"),
        _RECURRENCE.scalar_subquery().label("recurrence_of"),
    )
    .select_from(grids.outerjoin(people, people.c.id == grids.c.leader_id))
    .where(grids.c.code == bindparam("code"))
)


def _submit_in(
    app: App,
    conn: Connection,
    problem: NewProblem,
    now: datetime,
    when: datetime,
    uploads: Sequence[StoredFile],
) -> str:
    wf = app.workflow
    window = timedelta(days=wf.recurrence_window_days)
    found = conn.execute(
        _WHERE,
        {"code": problem.grid, "category": problem.category, "since": when - window, "at": when},
    ).first()
    if found is None:
        raise Invalid("grid.unknown", code=problem.grid)
    home = grids_mod.grid_from_row(found)
    recurrence_of = found.recurrence_of
    contacts = {}
    # Most problems are filed on a grid with a leader: the grids above are read only when not.
    if home.leader_id is not None:
        led: Grid | None = home
        contacts[home.leader_id] = outbox.Contact(found.leader_channels, found.leader_locale)
    else:
        led = grids_mod.nearest_led(grids_mod.lineage(conn, home))
    if led is None:
        raise Invalid("ticket.no_leader", grid=home.code)
    ref = next_ref(conn, wf.ref_prefix, when.astimezone(app.tz).year)
    t = Ticket.reported(
        id=0,
        ref=ref,
        category=problem.category,
        title=problem.title,
        grid_id=home.id,
        responsible_grid_id=led.id,
        assignee_id=led.leader_id,
        state=wf.initial,
        recurrence_of_id=recurrence_of,
        when=when,
        description=problem.description,
        address=problem.address,
        lat=problem.lat,
        lon=problem.lon,
        reporter_name=problem.reporter,
        reporter_phone=problem.reporter_phone,
        reporter_email=problem.reporter_email,
        urgent_at=when if problem.urgent or wf.category(problem.category).urgent else None,
    )
    wf.fire(t, "submit")
    enter_state(t, wf, t.state, when, app.deadlines)
    if problem.due_at is not None:
        if problem.due_at <= when:
            raise Invalid("ticket.due_not_after", due=problem.due_at.isoformat(), when=when)
        # The given deadline replaces the category's: the first rung comes at it, and the sweep
        # looks at the ticket no later than then (reminders are placed before it).
        t.due_at = t.next_escalation_at = problem.due_at
        t.next_check_at = min(t.next_check_at or problem.due_at, problem.due_at)
    values = {k: getattr(t, k) for k in Ticket.__dataclass_fields__ if k != "id"}
    values.update(
        workflow=wf.name,
        reporter_secret_hash=problem.reporter_secret_hash,
        source=problem.source,
    )
    t.id = conn.execute(_NEW_TICKET, values).scalar_one()
    record_stages(conn, t, (0, None), "submit", when, (led.id, t.assignee_id))
    if problem.link is not None:
        kind, target_id = problem.link
        conn.execute(
            _NEW_LINK, {"ticket_id": t.id, "kind": kind, "target_id": target_id, "created_at": now}
        )
    change = Change("submit", wf.initial, t.state, problem.description or None)
    change.data = {"assigned_grid": led.code}
    if recurrence_of is not None:
        change.data["recurrence_of_id"] = recurrence_of
    if led.leader_id is not None:
        change.notices.append(("assignment", led.leader_id))
    event_id = record_event(
        conn,
        t.id,
        change,
        at=when,
        recorded_at=now,
        actor=None,
        actor_label=problem.reporter or None,
    )
    _attach_evidence(app, conn, t.id, event_id, (), now, uploads)
    _send_notices(app, conn, t, change, event_id, now, contacts)
    return ref


def link_ticket(conn: Connection, ref: str, kind: str, target_id: int, now: datetime) -> int:
    """Link an existing ticket to a record (a patrol that found it again), in the caller's
    transaction; linking twice stores it once. Returns the ticket's id."""
    if kind not in LINK_KINDS:
        raise Invalid("ticket.unknown_link", kind=kind, links=", ".join(LINK_KINDS))
    ticket_id = _ticket_row(conn, ref).id
    linked = conn.execute(
        select(ticket_links.c.id).where(
            ticket_links.c.ticket_id == ticket_id,
            ticket_links.c.kind == kind,
            ticket_links.c.target_id == target_id,
        )
    ).first()
    if linked is None:
        conn.execute(
            _NEW_LINK,
            {"ticket_id": ticket_id, "kind": kind, "target_id": target_id, "created_at": now},
        )
    return int(ticket_id)


# --- steps ---------------------------------------------------------------------------------


def run_step(
    app: App,
    ref: str,
    step_name: str,
    by: str,
    given: StepInput,
    now: datetime,
    *,
    at: datetime | None = None,
    uploads: Sequence[StoredFile] = (),
    backfill: timedelta | None = None,
    also: Callable[[Connection, Ticket], None] | None = None,
) -> Ticket:
    """Run one step of the workflow on a ticket for a person; all or nothing.

    `given.evidence` names files on disk (the CLI); `uploads` are files already stored by
    content (the web); both are attached to the step's event. A step dated `at` (back-filled)
    may not be earlier than the ticket's latest recorded fact, whoever runs it; `backfill`
    (the web and the API: `[loop] backfill_limit`) also bounds how far back a leader may date
    it, supervisors and administrators going further with a reason. None: the operator's CLI.
    `also(conn, ticket)` runs last inside the step's transaction."""
    effects = app.steps.effects
    step = app.workflow.steps.get(step_name)
    if step is None or step_name == "submit" or step_name not in effects:
        runnable = ", ".join(s for s in app.workflow.steps if s in effects)
        raise Invalid("step.unknown_name", step=step_name, steps=runnable)
    # A ticket changed under us (most often by the sweep moving its reminder time) is read
    # again and every rule checked afresh: a person acting a moment after the sweep must not
    # get an error, while a step that another person's step made impossible still fails.
    for attempt in range(STEP_ATTEMPTS):
        try:
            return _run_step_once(app, ref, step_name, by, given, now, at, uploads, backfill, also)
        except StaleTicket:
            if attempt == STEP_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


STEP_ATTEMPTS = 3


def _run_step_once(
    app: App,
    ref: str,
    step_name: str,
    by: str,
    given: StepInput,
    now: datetime,
    at: datetime | None,
    uploads: Sequence[StoredFile],
    backfill: timedelta | None = None,
    also: Callable[[Connection, Ticket], None] | None = None,
) -> Ticket:
    wf = app.workflow
    step = wf.steps[step_name]
    with app.begin() as conn:
        row: Any = conn.execute(_STEP_TICKET, {"ref": ref}).first()
        if row is None:
            raise NotFound("ticket.not_found", ref=ref)
        m = row._mapping
        t = Ticket.from_row(m)
        when = _check_time(at, now)
        _check_order(app, t, when, _latest([m[k] for k in _LATEST_LABELS], t))
        if not wf.may(t.state, step_name):
            raise Conflict(
                "step.wrong_state",
                step=step_name,
                ticket=ref,
                state=t.state,
                sources=", ".join(step.sources),
            )
        actor = load_actor(conn, by)
        if m["resp_id"] is None:
            raise grids_mod.UnknownGrid("grid.unknown_id", grid_id=t.responsible_grid_id)
        responsible = Grid(*(m[f"resp_{k}"] for k in _GRID_FIELDS))
        authorize(step, t, actor, responsible.path)
        check_requirements(step, given)
        backfill_reason = (
            _check_backfill(app, actor, given, when, now, backfill)
            if backfill is not None
            else None
        )
        from_state, stage_before = t.state, (t.stage_no, t.stage)
        wf.fire(t, step_name)
        change = Change(step_name, from_state, t.state, given.note or given.reason)
        extra: dict[str, Any] = {"responsible": responsible}
        extra.update((k, bool(m[k])) for k in _STAGE_OPEN)
        run = StepRun(app, conn, t, actor, given, when, change, extra)
        app.steps.effects[step_name](run)
        if backfill_reason is not None:
            change.data["backfill_reason"] = backfill_reason
        for hook in app.steps.after_step:
            hook(run, *stage_before)
        t.updated_at = when
        save_ticket(conn, t)
        if (t.stage_no, t.stage) != stage_before:
            record_stages(conn, t, stage_before, step_name, when, _acting(run))
        event_id = record_event(conn, t.id, change, at=when, recorded_at=now, actor=actor)
        if given.evidence or uploads:
            _attach_evidence(app, conn, t.id, event_id, given.evidence, now, uploads)
        contacts = {
            person: outbox.Contact(*contact)
            for person, contact in run.extra.get("leader_contacts", {}).items()
        }
        _send_notices(app, conn, t, change, event_id, now, contacts)
        if also is not None:
            also(conn, t)
    return t


_EVIDENCE = insert(evidence)


def _attach_evidence(
    app: App,
    conn: Connection,
    ticket_id: int,
    event_id: int,
    files: Sequence[str],
    now: datetime,
    uploads: Sequence[StoredFile] = (),
) -> None:
    stored_files = [store_file(app.settings.evidence_dir, path) for path in files]
    for stored in [*stored_files, *uploads]:
        conn.execute(
            _EVIDENCE,
            {
                "ticket_id": ticket_id,
                "event_id": event_id,
                "stored_name": stored.stored_name,
                "original_name": stored.original_name,
                "content_type": stored.content_type,
                "size": stored.size,
                "created_at": now,
            },
        )
