"""The sweep: reminders before a stage deadline, supervision up the grid after it (督办).

`sweep(app, now)` is what the scheduler runs every minute and what `closeloop sweep` runs once.
It reads only tickets whose `next_check_at` has passed (one range scan of its index), so its cost
grows with the due work, never with the tickets ever filed.

Rules, for a ticket in a stage with a deadline (`due_at`):
- Reminders (kind "reminder") go to the responsible leader (the assignee) when a configured share
  of the stage time has passed ([escalation] reminders, default 0.5 and 0.8), once each: the
  notice key is (ticket, stage_no, fraction). On the working clock they fall in working time
  (the calendar moves them to the next working moment). Reminder points are measured back from
  the current deadline by the share of the stage limit still left, so after an approved
  extension or a resumed deferral they follow the new deadline; for an untouched stage this is
  exactly `Deadlines.reminder_times`. A reminder whose moment has passed only when the deadline
  has passed too (the sweep ran late) is not sent: the supervision notice replaces it.
- When `due_at` passes, the ticket climbs one rung: the parent of the grid that failed (first
  the responsible grid, then the supervising grid) supervises it; its leader, or the nearest led
  grid above it, is the supervisor. One `escalations` row per rung, unique on
  (ticket, stage_no, level, round), with the missed deadline and the run time; a "supervision"
  notice {escalation_id} to the supervisor; a "reminder" notice to the late leader with
  {stage_no, fraction: 1.0, deadline: the stage deadline, late: true, escalation_id}. The
  deadline (`due_at`) never moves with escalation: the next rung (`next_escalation_at`) is one
  escalation interval (per category) after the previous one. At the zone (level 1) the
  supervision repeats each interval with round 1, 2, ... Who is told and when (the verifier in
  the verify and close stages, quiet hours, one summary per supervisor and working day for the
  repeats, one late reminder per ticket and working day) is `NoticePolicy` and `_acting` below.
- `tickets.escalation_level` counts the rungs climbed to a new grid level (0 = not escalated);
  `escalations.level` is the grid level supervising (3 small, 2 medium, 1 zone).
- Catch-up: after downtime a sweep climbs rung after rung in deadline order until the deadline
  is in the future again; each rung records the deadline it answers and the time it ran, so the
  rows equal those of a scheduler that never stopped (except their `at`).

Concurrency: each batch of tickets is one transaction. PostgreSQL claims rows with
`FOR UPDATE SKIP LOCKED`; SQLite serialises writers (BEGIN IMMEDIATE). On both, the ticket is
written with a compare-and-set on its version before anything else of the batch, and escalation
rows and notices are inserted with ON CONFLICT DO NOTHING, so two sweeps never write a rung twice.
A process killed mid-sweep loses at most its uncommitted batch, which the next sweep redoes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, literal, or_, select, update

from closeloop import outbox, views
from closeloop.app import App
from closeloop.calendar import WorkCalendar
from closeloop.db import insert_many, read_only
from closeloop.deadlines import Deadlines
from closeloop.grid import Grid, UnknownGrid, get_grid, grids_by_ids, in_subtree, nearest_led
from closeloop.models import (
    deferrals,
    escalations,
    grids,
    notifications,
    people,
    stages,
    tickets,
)
from closeloop.tickets import VERIFIER_STAGES, Invalid

DEFAULT_BATCH = 200
# Reminder moments computed two ways (forward from the stage start by enter_state, back from the
# deadline here) may differ by rounding; a point this close to the stored check is the same one.
_SAME_MOMENT = timedelta(seconds=1)


# --- pure rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rung:
    """One step up the ladder: who supervises from now on, and which deadline was missed."""

    grid: Grid  # the grid now supervising
    level: int  # its level (3 small, 2 medium, 1 zone)
    round: int  # 0 on arriving at a level; 1, 2, ... for the repeats at the zone
    supervisor_id: int | None
    failed_grid: Grid
    deadline: datetime  # the deadline that was missed
    new_due: datetime  # the deadline of the next rung


@dataclass(frozen=True)
class Plan:
    """What a sweep at `now` does to one ticket, and the ticket's fields afterwards."""

    reminders: tuple[tuple[float, datetime], ...]  # (fraction, deadline it reminds of)
    rungs: tuple[Rung, ...]
    next_escalation_at: datetime | None
    next_check_at: datetime | None
    escalation_level: int
    escalation_round: int
    supervising_grid_id: int | None
    supervisor_id: int | None


@dataclass(frozen=True)
class TicketClock:
    """The fields of a ticket the rules read (a row of `tickets` fits)."""

    category: str
    stage: str | None
    stage_started_at: datetime | None
    due_at: datetime | None
    next_check_at: datetime | None
    escalation_level: int
    escalation_round: int
    supervising_grid_id: int | None
    supervisor_id: int | None
    next_escalation_at: datetime | None = None  # None: at the deadline
    urgent_at: datetime | None = None  # urgent (紧急件) since then: the urgent stage limits

    @property
    def urgent(self) -> bool:
        return self.urgent_at is not None

    @property
    def next_rung(self) -> datetime | None:
        """When the next rung is due: its own time once planned, else the deadline."""
        return self.next_escalation_at or self.due_at

    @classmethod
    def of(cls, row: Any) -> TicketClock:
        """From a `tickets` row or a `Ticket`."""
        return cls(*(getattr(row, k) for k in cls.__dataclass_fields__))


def retreat(calendar: WorkCalendar, t: datetime, amount: timedelta) -> datetime:
    """The moment `amount` of working time before `t` (UTC): the mirror of calendar.add."""
    t = t.astimezone(UTC)
    remaining = amount
    day = t.astimezone(calendar.tz).date()
    idle = 0
    while True:
        if calendar.is_working_day(day):
            idle = 0
            for start, end in reversed(calendar.hours):
                s = datetime.combine(day, start, tzinfo=calendar.tz).astimezone(UTC)
                e = datetime.combine(day, end, tzinfo=calendar.tz).astimezone(UTC)
                if s >= t:
                    continue
                hi = min(e, t)
                if remaining <= hi - s:
                    return hi - remaining
                remaining -= hi - s
        else:
            idle += 1
            if idle > 3660:
                raise ValueError(f"no working day in the ten years before {t.isoformat()}")
        day -= timedelta(days=1)


def reminder_points(
    deadlines: Deadlines,
    category: str,
    stage: str,
    started: datetime,
    due: datetime,
    *,
    urgent: bool = False,
) -> list[tuple[float, datetime]]:
    """(fraction, moment) of each reminder of a stage whose current deadline is `due`."""
    fractions = list(deadlines.reminder_points)
    if due == deadlines.due(category, stage, started, urgent=urgent):
        times = deadlines.reminder_times(category, stage, started, urgent=urgent)
        return list(zip(fractions, times, strict=True))
    limit = deadlines.limit(category, stage, urgent=urgent)
    cal = deadlines.calendar
    total = cal.duration(limit)
    points = []
    for f in fractions:
        left = total * (1 - f)
        if limit.clock == "natural":
            points.append((f, due - left))
        else:
            points.append((f, cal.next_working_moment(retreat(cal, due, left))))
    return points


def next_check(deadlines: Deadlines, t: TicketClock, after: datetime) -> datetime | None:
    """The next moment after `after` the sweep must look at the ticket (NULL: nothing due):
    a reminder before the deadline while not escalated, else the next rung."""
    due, rung = t.due_at, t.next_rung
    if t.stage is None or due is None or rung is None:
        return None
    if t.escalation_level == 0 and t.stage_started_at is not None:
        later = [
            p
            for _, p in reminder_points(
                deadlines, t.category, t.stage, t.stage_started_at, due, urgent=t.urgent
            )
            if after < p < min(due, rung)
        ]
        if later:
            return min(later)
    return rung


def climb(chain: Sequence[Grid], at: Grid | None) -> tuple[Grid, int, Grid]:
    """The next rung above `at` (None: not escalated yet) on the responsible grid's chain.

    Returns (grid now supervising, round increment, grid that failed). `chain` is zone first and
    ends with the responsible grid."""
    if at is None:
        failed, index = chain[-1], len(chain) - 1
    else:
        failed, index = at, next((i for i, g in enumerate(chain) if g.id == at.id), 0)
    if index == 0:
        return chain[0], 1, failed
    return chain[index - 1], 0, failed


def plan(
    deadlines: Deadlines,
    t: TicketClock,
    chain: Sequence[Grid],
    now: datetime,
) -> Plan:
    """Decide what a sweep at `now` does to a ticket; pure. The deadline (`due_at`) is never
    moved here: only the time of the next rung (`next_escalation_at`) is."""
    if t.stage is None or t.due_at is None or t.next_rung is None:
        return Plan(
            (),
            (),
            t.next_escalation_at,
            None,
            t.escalation_level,
            t.escalation_round,
            t.supervising_grid_id,
            t.supervisor_id,
        )
    reminders: list[tuple[float, datetime]] = []
    if t.escalation_level == 0 and t.stage_started_at is not None and now < t.due_at:
        cursor = (t.next_check_at or t.due_at) - _SAME_MOMENT
        for f, p in reminder_points(
            deadlines, t.category, t.stage, t.stage_started_at, t.due_at, urgent=t.urgent
        ):
            if cursor <= p <= now:
                reminders.append((f, t.due_at))
    rungs: list[Rung] = []
    due = t.next_rung
    assert due is not None
    level, rnd = t.escalation_level, t.escalation_round
    by_id = {g.id: g for g in chain}
    at = by_id.get(t.supervising_grid_id) if t.supervising_grid_id is not None else None
    if level > 0 and at is None:
        at = chain[0]  # the supervising grid left the chain (should not happen): go to the zone
    supervisor_id = t.supervisor_id
    interval = deadlines.escalation_interval(t.category)
    while due <= now:
        grid, repeat, failed = climb(chain, at if level > 0 else None)
        rnd = rnd + 1 if repeat else 0
        if not repeat or level == 0:  # a ticket of the zone itself: its first rung is level 1
            level += 1
        led = nearest_led(chain[: chain.index(grid) + 1])
        supervisor_id = led.leader_id if led else None
        new_due = deadlines.calendar.add(due, interval)
        rungs.append(Rung(grid, grid.level, rnd, supervisor_id, failed, due, new_due))
        at, due = grid, new_due
    supervising = at.id if at else t.supervising_grid_id
    after = TicketClock(
        t.category,
        t.stage,
        t.stage_started_at,
        t.due_at,
        t.next_check_at,
        level,
        rnd,
        supervising,
        supervisor_id,
        next_escalation_at=due,
        urgent_at=t.urgent_at,
    )
    return Plan(
        tuple(reminders),
        tuple(rungs),
        due,
        next_check(deadlines, after, now),
        level,
        rnd,
        after.supervising_grid_id,
        supervisor_id,
    )


# --- the sweep -------------------------------------------------------------------------------


@dataclass
class SweepResult:
    reminders: int = 0
    escalations: int = 0
    tickets_checked: int = 0
    batches: int = 0
    levels: dict[int, int] = field(default_factory=dict)  # grid level -> rungs written

    def add(self, other: SweepResult) -> None:
        self.reminders += other.reminders
        self.escalations += other.escalations
        self.tickets_checked += other.tickets_checked
        self.batches += other.batches
        for k, v in other.levels.items():
            self.levels[k] = self.levels.get(k, 0) + v

    def as_dict(self) -> dict[str, Any]:
        return {
            "reminders": self.reminders,
            "escalations": self.escalations,
            "tickets_checked": self.tickets_checked,
            "batches": self.batches,
        }


def batch_size(app: App) -> int:
    value = app.settings.section("escalation").get("batch_size", DEFAULT_BATCH)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"[escalation] batch_size must be a positive integer, not {value!r}")
    return value


def sweep(
    app: App,
    now: datetime,
    *,
    batch: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[SweepResult], None] | None = None,
) -> SweepResult:
    """Send due reminders and climb due escalation rungs, in batches of one transaction each.

    Stops when nothing due is left (or `should_stop()` says so between batches: the work left
    is still due and the next sweep does it)."""
    if now.tzinfo is None:
        raise ValueError("sweep needs an aware `now`")
    size = batch or batch_size(app)
    total = SweepResult()
    cache = SweepCache(app)
    ticket_by_ticket = False
    while True:
        try:
            with app.engine.begin() as conn:
                done = _sweep_batch(app, conn, now, size, cache, ticket_by_ticket)
        except _ChangedUnder:
            # Nothing of the batch was kept: claim it again and compare ticket by ticket.
            ticket_by_ticket = True
            continue
        ticket_by_ticket = False
        total.add(done)
        if on_batch is not None:
            on_batch(done)
        # A batch shorter than asked means nothing due is left that this process may take; a
        # batch without progress (every ticket changed under it) must not loop forever.
        if done.tickets_checked < size or done.batches == 0:
            break
        if should_stop is not None and should_stop():
            break
    return total


def sweep_job(
    app: App, now: datetime, *, should_stop: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """The scheduler's job: one sweep at `now`."""
    return sweep(app, now, should_stop=should_stop).as_dict()


# Statements built once: building and keying a statement costs more than running it on SQLite.
# The columns the sweep reads: a claimed row's title, texts and history times are never looked
# at, and converting them was a fifth of the reading.
_CLAIMED = [
    tickets.c[k]
    for k in (
        *TicketClock.__dataclass_fields__,
        "id",
        "ref",
        "version",
        "stage_no",
        "responsible_grid_id",
        "assignee_id",
    )
]
_CLOCK_WIDTH = len(TicketClock.__dataclass_fields__)
_CLAIM = (
    select(*_CLAIMED)
    .where(tickets.c.next_check_at <= bindparam("now"))
    .order_by(tickets.c.next_check_at, tickets.c.id)
    .limit(bindparam("size"))
)
_CLAIM_PG = _CLAIM.with_for_update(skip_locked=True, of=tickets)
_CAS = (
    update(tickets)
    .where(tickets.c.id == bindparam("b_id"), tickets.c.version == bindparam("b_version"))
    .values(
        next_escalation_at=bindparam("b_next_escalation_at"),
        next_check_at=bindparam("b_next_check_at"),
        escalation_level=bindparam("b_level"),
        escalation_round=bindparam("b_round"),
        supervising_grid_id=bindparam("b_grid"),
        supervisor_id=bindparam("b_supervisor"),
        version=bindparam("b_version") + 1,
    )
)
_RUNG_KEY = ("ticket_id", "stage_no", "level", "round")
_RUNG_IDS = select(
    escalations.c.ticket_id, escalations.c.level, escalations.c.round, escalations.c.id
).where(
    escalations.c.ticket_id.in_(bindparam("ids", expanding=True)),
    escalations.c.stage_no == bindparam("stage_no"),
)
_CLOSE_STAGE = (
    update(escalations)
    .where(
        escalations.c.ticket_id == bindparam("b_ticket"),
        escalations.c.stage_no == bindparam("b_stage_no"),
        escalations.c.closed_at.is_(None),
    )
    .values(closed_at=bindparam("b_now"))
)


_GRID_FIELDS = tuple(Grid.__dataclass_fields__)
_GRIDS = select(*(grids.c[k] for k in _GRID_FIELDS)).where(
    grids.c.id.in_(bindparam("ids", expanding=True))
)
_PEOPLE = select(people.c.id, people.c.channels, people.c.locale).where(
    people.c.id.in_(bindparam("ids", expanding=True))
)


class SweepCache:
    """What one sweep looks up once: grids, and people's channels and language."""

    def __init__(self, app: App) -> None:
        self.grids: dict[int, Grid] = {}
        self.people: dict[int, tuple[str, str]] = {}
        self.default_channels = app.settings.section("notifiers").get(
            "default_channels", ["console"]
        )
        self._supervisor: list[int | None] = []  # empty: not looked up yet
        # A person's channels text read once per sweep, not once per notice.
        self._channels: dict[str, list[str]] = {}

    def a_supervisor(self, conn: Connection) -> int | None:
        """A person with the supervisor role: the verifier of a ticket with no grid above."""
        if not self._supervisor:
            found = conn.execute(
                select(people.c.id)
                .where((literal(",") + people.c.roles + literal(",")).like("%,supervisor,%"))
                .order_by(people.c.id)
                .limit(1)
            ).scalar()
            self._supervisor = [int(found) if found is not None else None]
        return self._supervisor[0]

    def _load_grids(self, conn: Connection, ids: set[int]) -> None:
        wanted = ids - self.grids.keys()
        if wanted:
            for r in conn.execute(_GRIDS, {"ids": sorted(wanted)}):
                self.grids[r.id] = Grid(**{k: r._mapping[k] for k in _GRID_FIELDS})

    def chains(self, conn: Connection, rows: Iterable[Any]) -> dict[int, list[Grid]]:
        """Zone-first lineage of each responsible grid."""
        responsible = {r.responsible_grid_id for r in rows}
        self._load_grids(conn, responsible)
        self._load_grids(conn, {a for gid in responsible for a in self.grids[gid].ancestor_ids})
        return {
            gid: [self.grids[a] for a in (*self.grids[gid].ancestor_ids, gid)]
            for gid in responsible
        }

    def load_people(self, conn: Connection, ids: Iterable[int]) -> None:
        wanted = set(ids) - self.people.keys()
        if wanted:
            rows = conn.execute(_PEOPLE, {"ids": sorted(wanted)})
            self.people.update({r.id: (r.channels, r.locale) for r in rows})

    def notice_rows(
        self,
        kind: str,
        recipient_id: int,
        key: str,
        now: datetime,
        ticket_id: int,
        payload: dict[str, Any],
        not_before: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Outbox rows as `outbox.enqueue` writes them, one per channel of the recipient; held
        until `not_before` (quiet hours) when given."""
        own, locale = self.people[recipient_id]
        not_before = not_before or now
        channels = self._channels.get(own)
        if channels is None:
            channels = self._channels[own] = outbox.channels_for(own, self.default_channels)
        return [
            {
                "ticket_id": ticket_id,
                "recipient_id": recipient_id,
                "channel": channel,
                "kind": kind,
                "locale": locale,
                "payload": payload,
                "idempotency_key": f"{key}:{channel}",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": not_before,
                "not_before": not_before,
                "created_at": now,
            }
            for channel in channels
        ]


@dataclass(frozen=True)
class NoticePolicy:
    """When the sweep's notices may reach people: quiet hours are the zone's non-working time
    (a notice created then waits for the next working-time start, `not_before`), unless its
    category is `urgent = true` in the workflow file."""

    calendar: WorkCalendar
    urgent: frozenset[str]
    default_channels: tuple[str, ...] = ("console",)

    @classmethod
    def of(cls, app: App) -> NoticePolicy:
        urgent = frozenset(k for k, c in app.workflow.categories.items() if c.urgent)
        defaults = app.settings.section("notifiers").get("default_channels", ["console"])
        return cls(app.calendar, urgent, tuple(defaults))

    def not_before(self, now: datetime, category: str | None) -> datetime:
        return outbox.quiet_until(self.calendar, now, urgent=category in self.urgent)

    def workday(self, moment: datetime) -> str:
        """The zone date a notice held until `moment` belongs to (its working day)."""
        return moment.astimezone(self.calendar.tz).date().isoformat()


def acting_in_stage(
    chain: list[Grid], row: Any, a_supervisor: Callable[[], int | None]
) -> tuple[list[Grid], int | None]:
    """The ladder a stage climbs and the person who must act in it. The fix stage: the
    responsible grid and its leader (the assignee). Verification and closing: the verifier, the
    leader of the nearest led grid above the responsible one (or a supervisor when there is
    none); the ladder then starts from the verifier's grid."""
    if row.stage not in VERIFIER_STAGES:
        return chain, row.assignee_id
    verifier = nearest_led(chain[:-1])
    if verifier is None:
        return chain, a_supervisor()
    return chain[: chain.index(verifier) + 1], verifier.leader_id


def _sweep_batch(
    app: App,
    conn: Connection,
    now: datetime,
    size: int,
    cache: SweepCache,
    ticket_by_ticket: bool = False,
) -> SweepResult:
    claim = _CLAIM_PG if conn.dialect.name == "postgresql" else _CLAIM
    rows = conn.execute(claim, {"now": now, "size": size}).all()
    result = SweepResult(tickets_checked=len(rows))
    if not rows:
        return result
    chains = cache.chains(conn, rows)
    plans: list[tuple[Any, Plan]] = []
    acting: dict[int, int | None] = {}  # ticket id -> the person who must act in its stage
    for row in rows:
        chain, acting[row.id] = acting_in_stage(
            chains[row.responsible_grid_id], row, lambda: cache.a_supervisor(conn)
        )
        # The claim reads the clock's fields first, in order: the row's head is the clock.
        plans.append((row, plan(app.deadlines, TicketClock(*row[:_CLOCK_WIDTH]), chain, now)))
    # Compare-and-set first: if a ticket changed since it was read, nothing of it is written.
    done = _compare_and_set(conn, plans, ticket_by_ticket)
    result.batches = 1 if done else 0
    rung_rows = rung_records(done, now)
    if rung_rows:
        written = insert_many(conn, escalations, rung_rows, unique=_RUNG_KEY)
        result.escalations = written if written >= 0 else len(rung_rows)
        for r in rung_rows:
            result.levels[r["level"]] = result.levels.get(r["level"], 0) + 1
    ids = _rung_ids(conn, [row for row, p in done if p.rungs])
    cache.load_people(
        conn,
        [a for a in acting.values() if a is not None]
        + [r.supervisor_id for _, p in done for r in p.rungs if r.supervisor_id is not None],
    )
    policy = NoticePolicy.of(app)
    result.reminders, notices = batch_notices(
        done,
        acting,
        ids,
        now,
        policy,
        cache.notice_rows,
        lambda keys: _existing_keys(conn, keys),
    )
    notices += _review_reminders(conn, [row for row, _ in done if row.stage is None], now, policy)
    if notices:
        # One executemany without RETURNING: nothing here needs the rows written back.
        insert_many(conn, notifications, notices, unique=("idempotency_key",))
    return result


class _ChangedUnder(Exception):
    """A ticket of the batch changed between its claim and its compare-and-set."""


def _compare_and_set(
    conn: Connection, plans: list[tuple[Any, Plan]], ticket_by_ticket: bool = False
) -> list[tuple[Any, Plan]]:
    """Write each planned ticket's new fields if its version is still the one read; returns the
    tickets written. One executemany for the batch; if some ticket changed under it (its row
    was read in this transaction, so that does not happen on either backend today) the batch's
    transaction is given up (`_ChangedUnder`) and the sweep claims the batch again to compare
    it ticket by ticket, which learns which.

    No savepoint guards the executemany: on SQLite one would spill every later statement's
    journal of the transaction to a temporary file, a third of SQLite's time in a batch."""
    if ticket_by_ticket:
        return [
            (row, p) for row, p in plans if conn.execute(_CAS, _cas_params(row, p)).rowcount == 1
        ]
    if conn.dialect.name == "sqlite":
        written = _compare_and_set_sqlite(conn, plans)
    else:
        written = conn.execute(_CAS, [_cas_params(row, p) for row, p in plans]).rowcount
    if written != len(plans):
        raise _ChangedUnder
    return plans


def _cas_params(row: Any, p: Plan) -> dict[str, Any]:
    return {
        "b_id": row.id,
        "b_version": row.version,
        "b_next_escalation_at": p.next_escalation_at,
        "b_next_check_at": p.next_check_at,
        "b_level": p.escalation_level,
        "b_round": p.escalation_round,
        "b_grid": p.supervising_grid_id,
        "b_supervisor": p.supervisor_id,
    }


# `_CAS` as SQLite text with positional parameters: the batch goes to the driver as tuples,
# without the parameter dictionary SQLAlchemy builds and processes per row (which cost more
# than the UPDATE itself).
_CAS_SQLITE = (
    "UPDATE tickets SET next_escalation_at = ?, next_check_at = ?, escalation_level = ?,"
    " escalation_round = ?, supervising_grid_id = ?, supervisor_id = ?, version = ?"
    " WHERE id = ? AND version = ?"
)


def _compare_and_set_sqlite(conn: Connection, plans: list[tuple[Any, Plan]]) -> int:
    """The rows `_CAS` would write for these plans, written with one driver executemany."""
    dialect = conn.dialect
    moment = tickets.c.next_check_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert moment is not None  # UTCDateTime always converts
    params = [
        (
            moment(p.next_escalation_at),
            moment(p.next_check_at),
            p.escalation_level,
            p.escalation_round,
            p.supervising_grid_id,
            p.supervisor_id,
            row.version + 1,
            row.id,
            row.version,
        )
        for row, p in plans
    ]
    return int(conn.exec_driver_sql(_CAS_SQLITE, params).rowcount)


NoticeRows = Callable[..., list[dict[str, Any]]]


def rung_records(done: Sequence[tuple[Any, Plan]], now: datetime) -> list[dict[str, Any]]:
    """The `escalations` rows of the rungs planned for these tickets (rows as read), in order."""
    return [
        {
            "ticket_id": row.id,
            "stage_no": row.stage_no,
            "level": rung.level,
            "round": rung.round,
            "stage": row.stage,
            "grid_id": rung.grid.id,
            "supervisor_id": rung.supervisor_id,
            "failed_grid_id": rung.failed_grid.id,
            "deadline": rung.deadline,
            "supervision_due": rung.new_due,
            "at": now,
        }
        for row, p in done
        for rung in p.rungs
    ]


def batch_notices(
    done: Sequence[tuple[Any, Plan]],
    acting: Mapping[int, int | None],
    ids: Mapping[tuple[int, int, int, int], int],
    now: datetime,
    policy: NoticePolicy,
    notice_rows: NoticeRows,
    already: Callable[[list[str]], set[str]],
) -> tuple[int, list[dict[str, Any]]]:
    """The reminders counted and the outbox rows of a batch of planned tickets (rows as read
    before the batch wrote them); `ids` are the escalation ids of their rungs and `already`
    answers which of some idempotency keys the outbox holds. Pure but for those two, so the
    replay in memory writes the notices the sweep writes."""
    reminders = 0
    # Every notice of the batch is held by the same rule at the same `now`: one answer per
    # category (the moment and its working day), not one calendar walk per ticket.
    held: dict[str, tuple[datetime, str]] = {}

    def held_until(category: str) -> tuple[datetime, str]:
        if category not in held:
            when = policy.not_before(now, category)
            held[category] = when, policy.workday(when)
        return held[category]

    def not_before(category: str) -> datetime:
        return held_until(category)[0]

    notices: list[dict[str, Any]] = []
    # A reminder is once per (ticket, stage instance, fraction), whatever moved the deadline
    # since: one already in the outbox is neither written again (its key) nor counted.
    planned = [
        notice_rows(
            "reminder",
            who,
            f"reminder:{row.ref}:{row.stage_no}:{fraction:g}",
            now,
            row.id,
            {"stage_no": row.stage_no, "fraction": fraction, "deadline": deadline.isoformat()},
            not_before(row.category),
        )
        for row, p in done
        if (who := acting[row.id]) is not None
        for fraction, deadline in p.reminders
    ]
    sent = already([n["idempotency_key"] for rows_ in planned for n in rows_])
    for rows_ in planned:
        if not any(n["idempotency_key"] in sent for n in rows_):
            reminders += 1
            notices += rows_
    for row, p in done:
        when, day = held_until(row.category)
        late_leader = acting[row.id]
        for i, rung in enumerate(p.rungs):
            esc_id = ids[(row.id, row.stage_no, rung.level, rung.round)]
            key = f"{row.ref}:{row.stage_no}:{rung.level}:{rung.round}"
            # A repeat at the zone: not the first supervision of this stage, and not a climb to
            # a new level. Its supervisor gets one summary per working day instead.
            repeat = rung.round >= 1 and not (row.escalation_level == 0 and i == 0)
            if rung.supervisor_id is not None:
                if repeat:
                    notices += notice_rows(
                        "supervision",
                        rung.supervisor_id,
                        f"supervision:summary:{rung.supervisor_id}:{day}",
                        now,
                        row.id,
                        {"escalation_id": esc_id, "summary": True, "day": day},
                        when,
                    )
                else:
                    notices += notice_rows(
                        "supervision",
                        rung.supervisor_id,
                        f"supervision:{key}",
                        now,
                        row.id,
                        {"escalation_id": esc_id},
                        when,
                    )
            if late_leader is not None:
                # The late leader: one reminder per working day per ticket, however many rungs.
                notices += notice_rows(
                    "reminder",
                    late_leader,
                    f"reminder:{row.ref}:{row.stage_no}:late:{day}",
                    now,
                    row.id,
                    {
                        "stage_no": row.stage_no,
                        "fraction": 1.0,
                        "deadline": (row.due_at or rung.deadline).isoformat(),
                        "late": True,
                        "escalation_id": esc_id,
                    },
                    when,
                )
    return reminders, notices


def _review_reminders(
    conn: Connection, rows: Sequence[Any], now: datetime, policy: NoticePolicy
) -> list[dict[str, Any]]:
    """Deferred tickets whose review date came: a reminder to the supervisor who deferred."""
    if not rows:
        return []
    by_id = {r.id: r for r in rows}
    d, p = deferrals, people
    out: list[dict[str, Any]] = []
    for f in conn.execute(
        select(d.c.id, d.c.ticket_id, d.c.by_id, d.c.review_on, p.c.channels, p.c.locale)
        .join(p, p.c.id == d.c.by_id)
        .where(d.c.ticket_id.in_(list(by_id)), d.c.resumed_at.is_(None))
    ):
        row = by_id[f.ticket_id]
        when = policy.not_before(now, row.category)
        out += [
            {
                "ticket_id": row.id,
                "recipient_id": f.by_id,
                "channel": channel,
                "kind": "reminder",
                "locale": f.locale,
                "payload": {
                    "fraction": 1.0,
                    "deadline": f.review_on.isoformat(),
                    "review": True,
                    "deferral_id": f.id,
                },
                "idempotency_key": f"review:{row.ref}:{f.id}:{channel}",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": when,
                "not_before": when,
                "created_at": now,
            }
            for channel in outbox.channels_for(f.channels, policy.default_channels)
        ]
    return out


_SENT = select(notifications.c.idempotency_key).where(
    notifications.c.idempotency_key.in_(bindparam("keys", expanding=True))
)


def _existing_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Which of these idempotency keys are already in the outbox."""
    if not keys:
        return set()
    return set(conn.execute(_SENT, {"keys": list(keys)}).scalars())


def _rung_ids(conn: Connection, rows: Sequence[Any]) -> dict[tuple[int, int, int, int], int]:
    """Ids of the escalation rows of these tickets' current stages (new or written before)."""
    out: dict[tuple[int, int, int, int], int] = {}
    by_stage: dict[int, list[int]] = {}
    for row in rows:
        by_stage.setdefault(row.stage_no, []).append(row.id)
    for stage_no, ids in by_stage.items():
        for tid, level, rnd, esc_id in conn.execute(
            _RUNG_IDS, {"ids": ids, "stage_no": stage_no}
        ).all():
            out[(tid, stage_no, level, rnd)] = esc_id
    return out


def close_stage(conn: Connection, ticket_id: int, stage_no: int, now: datetime) -> int:
    """Mark the open escalation rows of a finished stage instance as closed at `now`."""
    return conn.execute(
        _CLOSE_STAGE, {"b_ticket": ticket_id, "b_stage_no": stage_no, "b_now": now}
    ).rowcount


# --- the supervisors' view ---------------------------------------------------------------------


def overdue(
    app: App, now: datetime, *, grid: str | None = None, level: int | None = None
) -> list[dict[str, Any]]:
    """Every ticket that missed the deadline of its current stage and is not done with it,
    most overdue first (by the first deadline the stage missed, `missed_deadline`): those past
    `due_at`, and those already escalated (an extension may have given them a later `due_at`).
    Deferred tickets have no deadline and are not in it. `overdue` and `overdue_hours` are
    measured from `due_at`, as in every listing.

    `acting_grid`, `acting` and `acting_name` say who must act in the late stage now, the person
    its reminders go to: the assignee for a fix; for a check or a closing, the leader today of
    the verifier's grid stored when it started (nobody when a supervisor verifies). `assignee`
    stays the ticket's, the fixer's leader.

    `grid` keeps the tickets of that grid and the grids below it; `level` keeps those with that
    escalation level (0 = not escalated yet, 1 = one rung up, ...). The query reads the open
    tickets through the (state, due_at) index, never the closed history."""
    stage_states = [s for s, st in app.workflow.states.items() if st.stage is not None]
    missed = (
        select(func.min(escalations.c.deadline))
        .where(
            escalations.c.ticket_id == tickets.c.id,
            escalations.c.stage_no == tickets.c.stage_no,
        )
        .scalar_subquery()
        .label("missed_at")
    )
    s, acting_grid, owner = stages, grids.alias("acting_grid"), people.alias("owner")
    # A grid's new leader takes over the checks waiting there (the sweep reminds them); the
    # assignee of a fix stays until a reassignment, which starts a new stage.
    now_acting = case(
        (s.c.stage.in_(VERIFIER_STAGES) & s.c.owner_id.is_not(None), acting_grid.c.leader_id),
        else_=s.c.owner_id,
    )
    with read_only(app.engine) as conn:
        q = (
            views.listing_select()
            .outerjoin(s, (s.c.ticket_id == tickets.c.id) & (s.c.stage_no == tickets.c.stage_no))
            .outerjoin(acting_grid, acting_grid.c.id == s.c.grid_id)
            .outerjoin(owner, owner.c.id == now_acting)
            .add_columns(
                missed,
                acting_grid.c.code.label("acting_code"),
                owner.c.handle.label("acting_handle"),
                owner.c.name.label("acting_name"),
            )
            .where(
                tickets.c.state.in_(stage_states),
                or_(tickets.c.due_at <= now, tickets.c.escalation_level > 0),
            )
        )
        if grid is not None:
            try:
                g = get_grid(conn, grid)
            except UnknownGrid as exc:
                raise Invalid(exc.code, **exc.params) from None
            q = q.where(in_subtree(views.HOME.c.path, g.path))
        if level is not None:
            q = q.where(tickets.c.escalation_level == level)
        rows = sorted(conn.execute(q), key=lambda r: (r.missed_at or r.due_at, r.id))
        supervising = grids_by_ids(conn, {r.supervising_grid_id for r in rows} - {None})
    out = []
    for row in rows:
        item = views.ticket_summary(app, row, now)
        since = row.missed_at or row.due_at
        out.append(
            {
                "ref": item["ref"],
                "state": item["state"],
                "category": item["category"],
                "title": item["title"],
                "stage": item["stage"],
                "due_at": item["due_at"],
                "next_escalation_at": item["next_escalation_at"],
                "missed_deadline": since.astimezone(app.tz).isoformat(timespec="seconds"),
                "overdue": item["overdue"],
                "overdue_hours": item["overdue_hours"],
                "escalation_level": item["escalation_level"],
                "supervising_grid": item["supervising_grid"],
                "supervising_level": (
                    supervising[row.supervising_grid_id].level
                    if row.supervising_grid_id in supervising
                    else None
                ),
                "supervisor": item["supervisor"],
                "grid": item["grid"],
                "responsible_grid": item["responsible_grid"],
                "assignee": item["assignee"],
                "assignee_name": item["assignee_name"],
                "acting_grid": row.acting_code or item["responsible_grid"],
                "acting": row.acting_handle if row.acting_code else item["assignee"],
                "acting_name": row.acting_name if row.acting_code else item["assignee_name"],
                "extended": item["extension_count"] > 0,
            }
        )
    return out
