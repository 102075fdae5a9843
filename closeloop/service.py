"""Use cases of the loop: submit a problem, run a step, read a ticket, an inbox, a list.

Each use case is one transaction: the ticket change, its audit event and its notices commit
together or not at all. Concurrent changes to one ticket are caught by its version number: the
second writer gets a Conflict, never a silent overwrite.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)

from closeloop import grid as grids_mod
from closeloop import outbox
from closeloop.bootstrap import App
from closeloop.db import read_only, upsert_increment
from closeloop.evidence import StoredFile
from closeloop.grid import Grid, UnknownGrid, in_subtree, led_or_member
from closeloop.models import (
    escalations,
    evidence,
    grids,
    people,
    ref_counters,
    stages,
    ticket_events,
    ticket_links,
    tickets,
)
from closeloop.models import extensions as extension_rows
from closeloop.tickets import (
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
from closeloop.workflow import StepNotAllowed, UnknownCategory

# Steps the engine itself carries out; the escalation module registers the deadline steps
# (extension, deferral) into the same table.
Effect = Callable[["StepRun"], None]
EFFECTS: dict[str, Effect] = {}

FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass
class StepRun:
    """Everything a step effect may read and change, inside the step's transaction."""

    app: App
    conn: Connection
    ticket: Ticket
    actor: Actor | None
    given: StepInput
    now: datetime
    change: Change
    extra: dict[str, Any] = field(default_factory=dict)

    def enter(self) -> None:
        """Open the stage of the state the step led to (a fresh deadline, the ladder reset)."""
        enter_state(self.ticket, self.app.workflow, self.ticket.state, self.now, self.app.deadlines)


# Called after a step's effect, in its transaction, with the ticket's (stage_no, stage) from
# before the step: the escalation module closes the ladder of a stage instance that was left.
AfterStep = Callable[["StepRun", int, str | None], None]
AFTER_STEP: list[AfterStep] = []


def effect(step: str) -> Callable[[Effect], Effect]:
    def register(fn: Effect) -> Effect:
        EFFECTS[step] = fn
        return fn

    return register


# --- loading -------------------------------------------------------------------------------


# Statements of the hot path are built once with bound parameters: building and hashing a new
# statement object per call costs more than SQLite takes to run it.
# The person with one row per grid they lead or are a member of (`leads` tells which).
_ACTOR = (
    select(
        people.c.id,
        people.c.handle,
        people.c.name,
        people.c.roles,
        grids.c.path,
        (grids.c.leader_id == people.c.id).label("leads"),
    )
    .select_from(people.outerjoin(grids, led_or_member(people.c.id)))
    .where(people.c.handle == bindparam("handle"))
)
_TICKET = select(tickets).where(tickets.c.ref == bindparam("ref"))


def load_actor(conn: Connection, handle: str) -> Actor:
    rows = conn.execute(_ACTOR, {"handle": handle}).all()
    if not rows:
        raise NotFound(f"unknown person '{handle}'")
    person = rows[0]
    roles = frozenset(r for r in person.roles.split(",") if r)
    paths = tuple(r.path for r in rows if r.path is not None and r.leads)
    member = tuple(r.path for r in rows if r.path is not None and not r.leads)
    return Actor(person.id, person.handle, person.name, roles, paths, member)


def _ticket_row(conn: Connection, ref: str) -> Any:
    row = conn.execute(_TICKET, {"ref": ref}).first()
    if row is None:
        raise NotFound(f"no ticket {ref}")
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
        raise StaleTicket(f"{t.ref} was changed by someone else meanwhile; reload it and try again")
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
    acting_grid_id: int,
) -> None:
    """Keep `stages` in step with the ticket: the instance left ends at `at`, a new one starts
    with the deadline as set now. Written in the step's transaction; never rewritten."""
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
            insert(stages).values(
                ticket_id=t.id,
                stage_no=t.stage_no,
                stage=t.stage,
                started_at=t.stage_started_at,
                started_by=step,
                due_at=t.due_at,
                grid_id=acting_grid_id,
            )
        )


def _acting_grid(conn: Connection, t: Ticket) -> int:
    """The grid whose leader must act in the ticket's stage (the verifier's for verify/close)."""
    if t.stage in VERIFIER_STAGES:
        responsible = grids_mod.get_grid_by_id(conn, t.responsible_grid_id)
        above = verifier_grid(grids_mod.lineage(conn, responsible))
        if above is not None:
            return above.id
    return t.responsible_grid_id


# Stages whose work is the verifier's (the leader above the responsible grid), not the fixer's.
VERIFIER_STAGES = ("verify", "close")


def _send_notices(
    app: App, conn: Connection, t: Ticket, change: Change, event_id: int, now: datetime
) -> None:
    defaults = app.settings.section("notifiers").get("default_channels", ["console"])
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


_LATEST_FACTS = (
    select(func.max(ticket_events.c.at)).where(ticket_events.c.ticket_id == bindparam("tid")),
    select(func.max(escalations.c.at)).where(escalations.c.ticket_id == bindparam("tid")),
    select(func.max(extension_rows.c.decided_at)).where(
        extension_rows.c.ticket_id == bindparam("tid")
    ),
)


def latest_fact(conn: Connection, t: Ticket) -> datetime:
    """The time of the ticket's latest recorded fact: its last event, an escalation rung, an
    extension decision. No step may be dated before it."""
    found = [t.updated_at, t.created_at]
    for q in _LATEST_FACTS:
        value = conn.execute(q, {"tid": t.id}).scalar()
        if value is not None:
            found.append(value)
    return max(found)


class BeforeLatestFact(Invalid):
    """A step dated before what is already recorded of the ticket: history runs forward."""


def _check_order(app: App, t: Ticket, when: datetime, latest: datetime) -> None:
    if when < latest:
        raise BeforeLatestFact(
            f"--at {when.astimezone(app.tz).isoformat(timespec='minutes')} is before the "
            f"ticket's last change (its latest recorded fact: an event, an escalation rung or an "
            f"extension decision); history runs forward: the earliest allowed time for "
            f"{t.ref} is {latest.astimezone(app.tz).isoformat(timespec='seconds')}"
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
            f"{actor.handle} may date a step at most {span} before it is recorded; "
            f"the earliest allowed time is "
            f"{(now - limit).astimezone(app.tz).isoformat(timespec='minutes')}"
        )
    reason = (given.reason or given.note or "").strip()
    if not reason:
        raise Invalid(f"a step dated more than {span} back needs a reason (--reason or --note)")
    return reason


def _check_time(at: datetime | None, real_now: datetime, after: datetime | None = None) -> datetime:
    if at is None:
        return real_now
    if at.tzinfo is None:
        raise Invalid("--at needs a time zone offset, e.g. 2026-04-01T09:30:00+08:00")
    if at > real_now + FUTURE_TOLERANCE:
        raise Invalid(
            f"--at {at.isoformat()} is in the future; a step is recorded when it happened"
        )
    if after is not None and at < after:
        raise Invalid(
            f"--at {at.isoformat()} is before the ticket's last change ({after.isoformat()}); "
            "history runs forward"
        )
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
    # Where it came from (public, patrol, meeting, campaign) and the record it is linked to:
    # ("patrol", patrol id), ("meeting", meeting id), ("campaign", campaign id).
    source: str = "public"
    link: tuple[str, int] | None = None
    # A deadline set by whoever hands the problem over (a meeting's decision), instead of the
    # category's limit for the first stage.
    due_at: datetime | None = None


SOURCES = ("public", "patrol", "meeting", "campaign")
LINK_KINDS = ("campaign", "patrol", "meeting")


def _check_problem(p: NewProblem) -> None:
    problems = []
    if p.source not in SOURCES:
        problems.append(f"unknown source {p.source!r}; sources: {', '.join(SOURCES)}")
    if p.link is not None and p.link[0] not in LINK_KINDS:
        problems.append(f"unknown link {p.link[0]!r}; links: {', '.join(LINK_KINDS)}")
    if p.due_at is not None and p.due_at.tzinfo is None:
        problems.append("the deadline needs a time zone offset")
    if not p.title.strip():
        problems.append("a title is needed")
    if len(p.title) > 200:
        problems.append("the title is longer than 200 characters")
    if len(p.description) > 5000:
        problems.append("the description is longer than 5000 characters")
    if (p.lat is None) != (p.lon is None):
        problems.append("give both --lat and --lon, or neither")
    if p.lat is not None and not -90 <= p.lat <= 90:
        problems.append("--lat must be between -90 and 90")
    if p.lon is not None and not -180 <= p.lon <= 180:
        problems.append("--lon must be between -180 and 180")
    if problems:
        raise Invalid("; ".join(problems))


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
    with app.engine.begin() as conn:
        ref = _submit_in(app, conn, problem, now, when, uploads)
        if also is not None:
            also(conn, ref)
        return ref


def _check_category(app: App, problem: NewProblem) -> None:
    try:
        app.workflow.category(problem.category)
    except UnknownCategory as exc:
        raise Invalid(str(exc)) from None


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
            raise Invalid(f"problem {i}: {exc}") from None
    with app.engine.begin() as conn:
        refs = []
        for i, problem in enumerate(problems, start=1):
            try:
                refs.append(_submit_in(app, conn, problem, now, when, ()))
            except Invalid as exc:
                raise Invalid(f"problem {i}: {exc}") from None
        return refs


def _submit_in(
    app: App,
    conn: Connection,
    problem: NewProblem,
    now: datetime,
    when: datetime,
    uploads: Sequence[StoredFile],
) -> str:
    wf = app.workflow
    try:
        home = grids_mod.get_grid(conn, problem.grid)
    except UnknownGrid as exc:
        raise Invalid(str(exc)) from None
    chain = grids_mod.lineage(conn, home)
    led = grids_mod.nearest_led(chain)
    if led is None:
        raise Invalid(f"no grid from {home.code} up to the zone has a leader to assign to")
    ref = next_ref(conn, wf.ref_prefix, when.astimezone(app.tz).year)
    recurrence_of = _recurrence_of(conn, app, home.id, problem.category, when)
    t = Ticket(
        id=0,
        ref=ref,
        category=problem.category,
        title=problem.title.strip(),
        description=problem.description,
        grid_id=home.id,
        responsible_grid_id=led.id,
        assignee_id=led.leader_id,
        state=wf.initial,
        stage=None,
        stage_no=0,
        stage_started_at=None,
        due_at=None,
        next_check_at=None,
        escalation_level=0,
        escalation_round=0,
        supervising_grid_id=None,
        supervisor_id=None,
        rework_count=0,
        extension_count=0,
        fixed_by_id=None,
        recurrence_of_id=recurrence_of,
        created_at=when,
        updated_at=when,
        closed_at=None,
        version=1,
        address=problem.address,
        lat=problem.lat,
        lon=problem.lon,
        reporter_name=problem.reporter,
        reporter_phone=problem.reporter_phone,
        reporter_email=problem.reporter_email,
    )
    wf.fire(t, "submit")
    enter_state(t, wf, t.state, when, app.deadlines)
    if problem.due_at is not None:
        if problem.due_at <= when:
            raise Invalid(f"the deadline {problem.due_at.isoformat()} is not after {when}")
        t.due_at = problem.due_at
        t.next_check_at = min(t.next_check_at or problem.due_at, problem.due_at)
    values = {k: getattr(t, k) for k in Ticket.__dataclass_fields__ if k != "id"}
    values.update(
        workflow=wf.name,
        reporter_secret_hash=problem.reporter_secret_hash,
        source=problem.source,
    )
    t.id = conn.execute(insert(tickets).values(**values).returning(tickets.c.id)).scalar_one()
    record_stages(conn, t, (0, None), "submit", when, led.id)
    if problem.link is not None:
        kind, target_id = problem.link
        conn.execute(
            insert(ticket_links).values(
                ticket_id=t.id, kind=kind, target_id=target_id, created_at=now
            )
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
    _send_notices(app, conn, t, change, event_id, now)
    return ref


def link_ticket(conn: Connection, ref: str, kind: str, target_id: int, now: datetime) -> int:
    """Link an existing ticket to a record (a patrol that found it again), in the caller's
    transaction; linking twice stores it once. Returns the ticket's id."""
    if kind not in LINK_KINDS:
        raise Invalid(f"unknown link {kind!r}; links: {', '.join(LINK_KINDS)}")
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
            insert(ticket_links).values(
                ticket_id=ticket_id, kind=kind, target_id=target_id, created_at=now
            )
        )
    return int(ticket_id)


def _recurrence_of(
    conn: Connection, app: App, grid_id: int, category: str, at: datetime
) -> int | None:
    window = timedelta(days=app.workflow.recurrence_window_days)
    return conn.execute(
        select(tickets.c.id)
        .where(
            tickets.c.grid_id == grid_id,
            tickets.c.category == category,
            tickets.c.state == "closed",
            tickets.c.closed_at >= at - window,
            tickets.c.closed_at <= at,
        )
        .order_by(tickets.c.closed_at.desc())
        .limit(1)
    ).scalar()


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
    step = app.workflow.steps.get(step_name)
    if step is None or step_name == "submit" or step_name not in EFFECTS:
        runnable = ", ".join(s for s in app.workflow.steps if s in EFFECTS)
        raise Invalid(f"unknown step '{step_name}'; steps: {runnable}")
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
    with app.engine.begin() as conn:
        t = get_ticket(conn, ref)
        when = _check_time(at, now)
        _check_order(app, t, when, latest_fact(conn, t))
        if not wf.may(t.state, step_name):
            raise Conflict(
                str(StepNotAllowed(step_name, t.state, step.sources)).replace("a ticket", ref)
            )
        actor = load_actor(conn, by)
        responsible = grids_mod.get_grid_by_id(conn, t.responsible_grid_id)
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
        run = StepRun(app, conn, t, actor, given, when, change, {"responsible": responsible})
        EFFECTS[step_name](run)
        if backfill_reason is not None:
            change.data["backfill_reason"] = backfill_reason
        for hook in AFTER_STEP:
            hook(run, *stage_before)
        t.updated_at = when
        save_ticket(conn, t)
        if (t.stage_no, t.stage) != stage_before:
            record_stages(conn, t, stage_before, step_name, when, _acting_grid(conn, t))
        event_id = record_event(conn, t.id, change, at=when, recorded_at=now, actor=actor)
        if given.evidence or uploads:
            _attach_evidence(app, conn, t.id, event_id, given.evidence, now, uploads)
        _send_notices(app, conn, t, change, event_id, now)
        if also is not None:
            also(conn, t)
    return t


def _attach_evidence(
    app: App,
    conn: Connection,
    ticket_id: int,
    event_id: int,
    files: Sequence[str],
    now: datetime,
    uploads: Sequence[StoredFile] = (),
) -> None:
    from closeloop.evidence import store_file

    stored_files = [store_file(app.settings.evidence_dir, path) for path in files]
    for stored in [*stored_files, *uploads]:
        conn.execute(
            insert(evidence).values(
                ticket_id=ticket_id,
                event_id=event_id,
                stored_name=stored.stored_name,
                original_name=stored.original_name,
                content_type=stored.content_type,
                size=stored.size,
                created_at=now,
            )
        )


def _verifier(conn: Connection, responsible: Grid) -> int | None:
    """Who is asked to check a fix: the nearest leader above the responsible grid."""
    above = grids_mod.lineage(conn, responsible)[:-1]
    led = grids_mod.nearest_led(above)
    return led.leader_id if led else None


@effect("fix")
def _fix(run: StepRun) -> None:
    t = run.ticket
    assert run.actor is not None
    t.fixed_by_id = run.actor.id
    run.enter()
    verifier = _verifier(run.conn, run.extra["responsible"])
    if verifier is not None and verifier != run.actor.id:
        run.change.notices.append(("verification_request", verifier))


@effect("reject")
def _reject(run: StepRun) -> None:
    t = run.ticket
    t.rework_count += 1
    run.enter()
    run.change.data["reason"] = run.given.reason
    if t.assignee_id is not None:
        run.change.notices.append(("rejection", t.assignee_id))


@effect("verify")
def _verify(run: StepRun) -> None:
    run.enter()


@effect("close")
def _close(run: StepRun) -> None:
    t = run.ticket
    run.enter()
    if t.reporter_email:
        outbox.enqueue_address(
            run.conn,
            kind="closure",
            address=t.reporter_email,
            channel="email",
            locale=run.app.settings.locale,
            key=f"closure:{t.ref}:{t.stage_no}:reporter",
            now=run.now,
            ticket_id=t.id,
        )


@effect("reopen")
def _reopen(run: StepRun) -> None:
    t = run.ticket
    run.enter()
    run.change.data["reason"] = run.given.reason
    if t.assignee_id is not None:
        run.change.notices.append(("assignment", t.assignee_id))


@effect("dismiss")
def _dismiss(run: StepRun) -> None:
    run.enter()
    run.change.data["reason"] = run.given.reason


@effect("reassign")
def _reassign(run: StepRun) -> None:
    t = run.ticket
    assert run.given.to_grid is not None
    try:
        target = grids_mod.get_grid(run.conn, run.given.to_grid)
    except UnknownGrid as exc:
        raise Invalid(str(exc)) from None
    if target.id == t.grid_id:
        raise Invalid(f"{t.ref} already belongs to grid {target.code}")
    led = grids_mod.nearest_led(grids_mod.lineage(run.conn, target))
    if led is None:
        raise Invalid(f"no grid from {target.code} up to the zone has a leader to assign to")
    run.change.data.update(from_grid_id=t.grid_id, to_grid=target.code)
    t.grid_id = target.id
    t.responsible_grid_id = led.id
    t.assignee_id = led.leader_id
    run.enter()
    if led.leader_id is not None:
        run.change.notices.append(("assignment", led.leader_id))


# --- reading -------------------------------------------------------------------------------


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


def _iso(value: datetime | None, app: App) -> str | None:
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
    late, late_hours = lateness(m["due_at"], now or datetime.now(UTC))
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
        "due_at": _iso(m["due_at"], app),
        "next_escalation_at": _iso(m["next_escalation_at"], app),
        "overdue": late,
        "overdue_hours": late_hours,
        "created_at": _iso(m["created_at"], app),
        "updated_at": _iso(m["updated_at"], app),
        "closed_at": _iso(m["closed_at"], app),
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
        row = conn.execute(listing_select().where(tickets.c.ref == ref)).first()
        if row is None:
            raise NotFound(f"no ticket {ref}")
        out = ticket_summary(app, row, now)
        events = conn.execute(_SHOW_EVENTS, {"ticket_id": row.id})
        out["events"] = [
            {
                "at": _iso(e.at, app),
                "recorded_at": _iso(e.recorded_at, app),
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
        for extend in EXTENDERS:
            extend(app, conn, row, out)
    return out


# Later modules (escalation, extensions) add their parts of `ticket show` here.
EXTENDERS: list[Callable[[App, Connection, Any, dict[str, Any]], None]] = []

OPEN_STATES = ("assigned", "fixed", "verified")


def inbox(app: App, handle: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """What a leader must handle: open tickets on the grids they lead and below, and the fixes
    waiting for them to verify; late ones first (the longest late at the top: the deadline never
    moves with escalation), then the soonest deadline."""
    with read_only(app.engine) as conn:
        actor = load_actor(conn, handle)
        if not actor.led_paths and not actor.member_paths and not actor.is_supervisor:
            return []
        resp = RESP
        own = [in_subtree(resp.c.path, p) for p in (*actor.led_paths, *actor.member_paths)]
        # A fix waits for a leader strictly above the grid that fixed it.
        to_verify = [and_(in_subtree(resp.c.path, p), resp.c.path != p) for p in actor.led_paths]
        q = (
            listing_select()
            .where(
                or_(
                    and_(tickets.c.state == "assigned", or_(false(), *own)),
                    and_(tickets.c.state.in_(("fixed", "verified")), or_(false(), *to_verify)),
                    and_(
                        tickets.c.state.in_(("fixed", "verified")),
                        tickets.c.fixed_by_id != actor.id,
                        true() if actor.is_supervisor else false(),
                    ),
                )
            )
            .order_by(tickets.c.due_at.is_(None), tickets.c.due_at, tickets.c.id)
        )
        return [ticket_summary(app, r, now) for r in conn.execute(q)]


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
            f"unknown state {', '.join(unknown)}; states: {', '.join(app.workflow.states)}"
        )
    with read_only(app.engine) as conn:
        q = listing_select()
        if states:
            q = q.where(tickets.c.state.in_(states))
        if grid is not None:
            try:
                g = grids_mod.get_grid(conn, grid)
            except UnknownGrid as exc:
                raise Invalid(str(exc)) from None
            q = q.where(in_subtree(HOME.c.path, g.path))
        q = q.order_by(tickets.c.id)
        if limit is not None:
            q = q.limit(limit)
        return [ticket_summary(app, r, now) for r in conn.execute(q)]


def count_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(tickets.c.state, func.count()).group_by(tickets.c.state))
    return {s: n for s, n in rows}


# The deadline steps (extension, deferral) and the escalation hooks register themselves here, so
# every entry point that runs steps (CLI, web, replay) has them.
from closeloop import extensions  # noqa: E402,F401
