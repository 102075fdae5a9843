"""The ticket indicators of Chinese digital city management (数字城管), per period and grid.

Every figure is a count of tickets (or escalation rows) computed by SQL aggregates over the
periods asked for, for all grids at once; a grid's figure covers its whole subtree. `items` lists
the tickets behind any figure, from the same SQL, so a number always equals its list.

Definitions, for a period [start, end) (boundaries are midnights in the zone's time zone):

- reported (受理数): tickets filed in the period (dismissed ones included: they were received).
- dispatched (派遣数): tickets dispatched in the period: filed (即交即办 assigns at once) or
  reassigned (改派) to another grid. A ticket dispatched twice in one period counts once.
- due (应结案数): tickets whose *case deadline* fell in the period, dismissed ones left out.
  The case deadline is the fix deadline stored when the ticket was last dispatched (submit or
  reassign: a reassigned ticket starts a fresh clock on its new grid) or resumed after a
  deferral (the clock restarts with the time that was left): the `stages` row of that fix-stage
  instance, as the engine set it then. A rejected fix (返工) or a reopened ticket does not earn
  new time. An approved extension (延期) replaces it by its `until` (the latest approved
  extension requested after that start wins, if decided before the end of the period). The
  deadlines are read as they were recorded, never recomputed from today's workflow limits: a
  zone that changes its limits in June does not re-judge March.
- deferred (缓办数): among the due, tickets deferred at the end of the period.
- closed (结案数): among the due, tickets closed (销号) before the end of the period.
- closed on time (按期结案数): among the closed, those whose accepted fix (the last `fix` step
  before the end of the period) was recorded by the case deadline. The fix time rather than the
  closing time is compared because verification and closing are other people's stages with
  deadlines of their own: judged by `closed_at`, a two-hour parking ticket could never be on time.
- closure rate (结案率) = closed / (due - deferred); on-time rate (按期结案率) = closed on time /
  (due - deferred); rework rate (返工率) = due tickets with a rejected fix (before the end of the
  period) / due; extension rate (延期率) = due tickets with an approved extension / due.
  A rate is None when its denominator is 0.
- overdue open (超期未结): tickets with a stage instance (fix, verify or close) whose deadline, as
  it stood at the end of the period (extensions approved by then included), passed before the
  end of the period, and which was not done by then: escalated or not. A deferral ends the
  instance, so a ticket deferred by then is not counted (net of deferrals).
- escalations (升级督办): escalation rows written in the period, by the level of the grid that took
  over supervision (3 small, 2 medium, 1 zone).
- recurrences (复发数): tickets filed in the period that the engine linked to an earlier closed
  ticket of the same category and grid (`recurrence_of_id`).

Figures are attributed to the grid a ticket sits on now (`tickets.grid_id`): a reassigned ticket
takes its history to its new grid. A ticket filed directly on a medium grid counts for that
medium grid and the zone, but for none of the small grids under it. Figures of earlier periods
in one call use what is known at the end of the last period.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
    union,
    union_all,
)

from closeloop.app import App
from closeloop.db import UTCDateTime
from closeloop.grid import in_subtree
from closeloop.models import (
    Id,
    deferrals,
    escalations,
    extensions,
    grids,
    people,
    stages,
    ticket_events,
    ticket_feedback,
    tickets,
)
from closeloop.months import add_months, parse_month
from closeloop.tickets import Invalid, NotFound

FIGURES: tuple[str, ...] = (
    "reported",
    "dispatched",
    "due",
    "deferred",
    "closed",
    "closed_on_time",
    "rework",
    "extended",
    "overdue_open",
    "escalations",
    "recurrences",
    # issue 16: the supervision office's figures (docs/indicators.md)
    "by_source",
    "by_category",
    "disposed",
    "disposed_on_time",
    "late_disposed",
    "late_closed",
    "failed_verifications",
    "urgent_due",
    "urgent_deferred",
    "urgent_closed",
    "verify_due",
    "verified_on_time",
    "supervision_due",
    "supervised_on_time",
    "answers",
    "satisfied",
    "solved",
)
OPEN_STATES = ("assigned", "fixed", "verified")
DISPATCH_STEPS = ("submit", "reassign")
NOT_DUE_BASED = (
    "reported",
    "recurrences",
    "dispatched",
    "overdue_open",
    "escalations",
    "by_source",
    "by_category",
    "verify_due",
    "verified_on_time",
    "supervision_due",
    "supervised_on_time",
    "answers",
    "satisfied",
    "solved",
)
# Figures counted by a key (one count per source, per category), like escalations by level.
KEYED = ("by_source", "by_category")
# Figures whose units carry a deadline of their own (a stage's, a supervision's).
OWN_DEADLINE = ("overdue_open", "verify_due", "verified_on_time", "supervision_due",
                "supervised_on_time")  # fmt: skip
# Figures whose units are stage instances with who had to act in them (`stages.owner_id`).
OWNED_STAGES = ("overdue_open", "verify_due", "verified_on_time")
# A verification stage is done when the verifier decides: passed (verify) or failed (reject).
VERIFY_DONE = ("verify", "reject")
# A supervised stage is done when its work is: the fix, the check, the closing.
STAGE_DONE = ("fix", "verify", "reject", "close")
FAILED_VERIFICATIONS = 3  # 金华: three or more failed checks of one case are penalised
SATISFIED = ("satisfied", "basic")  # 满意 + 基本满意, the 12345 hotlines' 满意率
FIX_STAGE = "fix"
ESCALATION_LEVELS = (3, 2, 1)
_WEEK_RE = re.compile(r"(\d{4})-W(\d{2})")


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A half-open interval of time [start, end), aware UTC, with the label people use."""

    label: str
    start: datetime
    end: datetime


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def week_period(label: str, tz: ZoneInfo) -> Period:
    """The ISO week ``YYYY-Www`` (Monday 00:00 to the next Monday 00:00, zone time)."""
    match = _WEEK_RE.fullmatch(label.strip()) if isinstance(label, str) else None
    if match is None:
        raise Invalid("report.bad_week", label=label)
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise NotFound("report.no_week", label=label) from None
    return Period(label.strip(), _midnight(monday, tz), _midnight(monday + timedelta(7), tz))


def week_of(moment: datetime, tz: ZoneInfo) -> Period:
    """The ISO week holding ``moment`` in the zone."""
    year, week, _ = moment.astimezone(tz).isocalendar()
    return week_period(f"{year:04d}-W{week:02d}", tz)


def last_full_week(now: datetime, tz: ZoneInfo) -> Period:
    """The last ISO week that has ended by ``now`` (zone time)."""
    current = week_of(now, tz)
    return week_of(current.start - timedelta(seconds=1), tz)


def weeks_before(period: Period, n: int, tz: ZoneInfo) -> list[Period]:
    """The ``n`` weeks before ``period``, oldest first."""
    out: list[Period] = []
    cursor = period
    for _ in range(n):
        cursor = week_of(cursor.start - timedelta(seconds=1), tz)
        out.append(cursor)
    return out[::-1]


def month_period(month: str, tz: ZoneInfo) -> Period:
    """The calendar month ``YYYY-MM`` in the zone."""
    try:
        parse_month(month)
    except ValueError as exc:
        raise Invalid("month.malformed", reason=str(exc)) from None
    first = date(int(month[:4]), int(month[5:]), 1)
    after = add_months(month, 1)
    return Period(
        month, _midnight(first, tz), _midnight(date(int(after[:4]), int(after[5:]), 1), tz)
    )


def month_of(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


# --------------------------------------------------------------------------- figures


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


@dataclass(frozen=True)
class Figures:
    """The indicators of one grid (with its subtree) in one period."""

    reported: int = 0
    dispatched: int = 0
    due: int = 0
    deferred: int = 0
    closed: int = 0
    closed_on_time: int = 0
    rework: int = 0
    extended: int = 0
    overdue_open: int = 0
    recurrences: int = 0
    disposed: int = 0
    disposed_on_time: int = 0
    late_disposed: int = 0
    late_closed: int = 0
    failed_verifications: int = 0
    urgent_due: int = 0
    urgent_deferred: int = 0
    urgent_closed: int = 0
    verify_due: int = 0
    verified_on_time: int = 0
    supervision_due: int = 0
    supervised_on_time: int = 0
    answers: int = 0
    satisfied: int = 0
    solved: int = 0
    escalations: Mapping[int, int] = field(default_factory=dict)
    by_source: Mapping[str, int] = field(default_factory=dict)
    by_category: Mapping[str, int] = field(default_factory=dict)

    @property
    def net_due(self) -> int:
        """Due minus deferred: the denominator of the closure rates."""
        return self.due - self.deferred

    @property
    def closure_rate(self) -> float | None:
        return rate(self.closed, self.net_due)

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.closed_on_time, self.net_due)

    @property
    def rework_rate(self) -> float | None:
        return rate(self.rework, self.due)

    @property
    def extension_rate(self) -> float | None:
        return rate(self.extended, self.due)

    @property
    def escalation_total(self) -> int:
        return sum(self.escalations.values())

    @property
    def dispose_rate(self) -> float | None:
        """处置率: disposed / (due - deferred)."""
        return rate(self.disposed, self.net_due)

    @property
    def on_time_dispose_rate(self) -> float | None:
        """按期处置率: disposed by the case deadline / (due - deferred)."""
        return rate(self.disposed_on_time, self.net_due)

    @property
    def on_time_verify_rate(self) -> float | None:
        """按时核查率: checks decided by their deadline / checks due."""
        return rate(self.verified_on_time, self.verify_due)

    @property
    def supervised_on_time_rate(self) -> float | None:
        """督办按期完成率: supervisions answered by their deadline / supervisions due."""
        return rate(self.supervised_on_time, self.supervision_due)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率: (satisfied + basically satisfied) / answers."""
        return rate(self.satisfied, self.answers)

    @property
    def solved_rate(self) -> float | None:
        """解决率: answers "solved" / answers."""
        return rate(self.solved, self.answers)

    @property
    def urgent_closure_rate(self) -> float | None:
        """紧急件结案率: urgent closed / (urgent due - urgent deferred)."""
        return rate(self.urgent_closed, self.urgent_due - self.urgent_deferred)

    def top_categories(self, n: int) -> list[tuple[str, int]]:
        """高发问题: the `n` categories most reported, most first (ties by key)."""
        ranked = sorted(self.by_category.items(), key=lambda kv: (-kv[1], kv[0]))
        return ranked[:n]

    def __add__(self, other: Figures) -> Figures:
        levels = Counter(self.escalations)
        levels.update(other.escalations)
        sources = Counter(self.by_source)
        sources.update(other.by_source)
        categories = Counter(self.by_category)
        categories.update(other.by_category)
        return Figures(
            **{name: getattr(self, name) + getattr(other, name) for name in _COUNT_FIELDS},
            escalations=dict(levels),
            by_source=dict(sources),
            by_category=dict(categories),
        )

    def as_json(self, top: int = 5) -> dict[str, Any]:
        """The figures under the keys scripts read (rates as fractions, 4 places); `top`: how
        many categories `top_categories` lists."""

        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "reported": self.reported,
            "dispatched": self.dispatched,
            "due": self.due,
            "deferred": self.deferred,
            "closed": self.closed,
            "closed_on_time": self.closed_on_time,
            "closure_rate": r(self.closure_rate),
            "on_time_rate": r(self.on_time_rate),
            "rework_rate": r(self.rework_rate),
            "extension_rate": r(self.extension_rate),
            "overdue_open": self.overdue_open,
            "escalations": {
                str(level): self.escalations.get(level, 0) for level in ESCALATION_LEVELS
            },
            "recurrences": self.recurrences,
            "by_source": dict(sorted(self.by_source.items())),
            "dispose_rate": r(self.dispose_rate),
            "on_time_dispose_rate": r(self.on_time_dispose_rate),
            "late_disposed": self.late_disposed,
            "late_closed": self.late_closed,
            "on_time_verify_rate": r(self.on_time_verify_rate),
            "failed_verifications": self.failed_verifications,
            "urgent": {
                "due": self.urgent_due,
                "closed": self.urgent_closed,
                "closure_rate": r(self.urgent_closure_rate),
            },
            "supervised_on_time_rate": r(self.supervised_on_time_rate),
            "satisfaction_rate": r(self.satisfaction_rate),
            "solved_rate": r(self.solved_rate),
            "top_categories": [
                {"category": key, "count": n} for key, n in self.top_categories(top)
            ],
        }


# The figures that are plain counts, added as numbers when two grids' figures are pooled; the
# other three are counts by key, pooled key by key.
_BY_KEY = ("escalations", "by_source", "by_category")
_COUNT_FIELDS = tuple(name for name in FIGURES if name not in _BY_KEY)


def pooled(figures: Iterable[Figures]) -> Figures:
    """The sum of several periods' figures (rates of the sum, not means of rates)."""
    total = Figures()
    for f in figures:
        total = total + f
    return total


@dataclass(frozen=True)
class GridRef:
    id: int
    code: str
    name: str
    level: int
    kind: str
    path: str
    leader_id: int | None


def load_grids(conn: Connection) -> dict[int, GridRef]:
    rows = conn.execute(
        select(
            grids.c.id,
            grids.c.code,
            grids.c.name,
            grids.c.level,
            grids.c.kind,
            grids.c.path,
            grids.c.leader_id,
        )
    )
    return {r.id: GridRef(*r) for r in rows}


class Indicators:
    """Counts per (period, grid) from the SQL aggregates, rolled up along grid paths on demand."""

    def __init__(
        self,
        periods: Sequence[Period],
        grid_refs: Mapping[int, GridRef],
        counts: Mapping[str, Counter[tuple[int, int]]],
        escalation_counts: Counter[tuple[int, int, int]],
        keyed: Mapping[str, Counter[tuple[int, int, str]]] | None = None,
    ) -> None:
        self.periods = tuple(periods)
        self.grids = dict(grid_refs)
        self._counts = counts
        self._escalations = escalation_counts
        self._keyed = keyed or {}
        self._per_grid: dict[tuple[int, int], Figures] | None = None
        self._members: dict[str, list[int]] = {}

    def _grid_figures(self) -> dict[tuple[int, int], Figures]:
        if self._per_grid is None:
            values: dict[tuple[int, int], dict[str, Any]] = {}
            for name, counter in self._counts.items():
                for key, n in counter.items():
                    values.setdefault(key, {})[name] = n
            for (k, grid_id, level), n in self._escalations.items():
                values.setdefault((k, grid_id), {}).setdefault("escalations", {})[level] = n
            for name, keyed in self._keyed.items():
                for (k, grid_id, value), n in keyed.items():
                    values.setdefault((k, grid_id), {}).setdefault(name, {})[value] = n
            self._per_grid = {key: Figures(**v) for key, v in values.items()}
        return self._per_grid

    def _subtree(self, path: str | None) -> list[int]:
        key = path or ""
        if key not in self._members:
            self._members[key] = [
                g.id for g in self.grids.values() if path is None or g.path.startswith(path)
            ]
        return self._members[key]

    def figures(self, path: str | None = None, k: int = -1) -> Figures:
        """The figures of the grid with materialised ``path`` (None: everything) in period k."""
        k = k % len(self.periods)
        per = self._grid_figures()
        total = Figures()
        for grid_id in self._subtree(path):
            f = per.get((k, grid_id))
            if f is not None:
                total = total + f
        return total

    def series(self, path: str | None = None) -> list[Figures]:
        return [self.figures(path, k) for k in range(len(self.periods))]


# --------------------------------------------------------------------------- deadlines


# Stage instances that start a case's clock: a dispatch (submit, reassign), a resume after a
# deferral (the clock restarts with the time that was left), or a row carried over by the
# migration. A rework (reject) or a reopen earns no new time.
ANCHOR_STARTS = (*DISPATCH_STEPS, "resume", "migrated")


def case_deadlines(
    conn: Connection, app: App, start: datetime, end: datetime
) -> dict[int, datetime]:
    """Tickets (by id) whose case deadline falls in [start, end), with that deadline.

    Read from stored facts only (`stages`, `extensions`), never recomputed from the workflow
    limits: a zone that changes its limits later does not re-judge an earlier period. Only
    tickets that can qualify are read: those with a fix-stage deadline or an approved
    extension ending in the period. The cost grows with the period's work, not the history.
    """
    s, x, t = stages, extensions, tickets
    anchor = (s.c.stage == FIX_STAGE) & s.c.started_by.in_(ANCHOR_STARTS)
    candidates = union(
        select(s.c.ticket_id).where(anchor, s.c.due_at >= start, s.c.due_at < end),
        select(x.c.ticket_id).where(x.c.status == "approved", x.c.until >= start, x.c.until < end),
    ).subquery()
    wanted = (
        select(candidates.c.ticket_id)
        .join(t, t.c.id == candidates.c.ticket_id)
        .where(t.c.state != "dismissed")
    )
    latest: dict[int, Any] = {}
    for row in conn.execute(
        select(s.c.ticket_id, s.c.stage_no, s.c.started_at, s.c.due_at).where(
            s.c.ticket_id.in_(wanted), anchor, s.c.started_at < end
        )
    ):
        seen = latest.get(row.ticket_id)
        if seen is None or (row.started_at, row.stage_no) > (seen.started_at, seen.stage_no):
            latest[row.ticket_id] = row
    granted: dict[int, list[Any]] = {}
    for ext in conn.execute(
        select(x.c.ticket_id, x.c.id, x.c.until, x.c.requested_at, x.c.decided_at).where(
            x.c.ticket_id.in_(wanted), x.c.status == "approved", x.c.decided_at < end
        )
    ):
        granted.setdefault(ext.ticket_id, []).append(ext)
    out: dict[int, datetime] = {}
    for ticket_id, row in latest.items():
        deadline = row.due_at
        later = [e for e in granted.get(ticket_id, ()) if e.requested_at >= row.started_at]
        if later:
            deadline = max(later, key=lambda e: (e.decided_at, e.id)).until
        if start <= deadline < end:
            out[ticket_id] = deadline
    return out


def stage_deadline_at(moment: Any) -> ColumnElement[Any]:
    """The deadline of a stage instance (a `stages` row) as it stood at `moment`: the deadline
    set at its start, or the `until` of its latest extension approved before then."""
    s, x = stages, extensions
    extended = (
        select(x.c.until)
        .where(
            x.c.ticket_id == s.c.ticket_id,
            x.c.stage_no == s.c.stage_no,
            x.c.status == "approved",
            x.c.decided_at < moment,
        )
        .order_by(x.c.decided_at.desc(), x.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(extended, s.c.due_at)


def late_stages(moment: datetime) -> Any:
    """Stage instances late at `moment`: started before it, not ended by it, and their deadline
    (as it stood then) passed. Escalated or not; a deferral ends the instance, so a ticket
    deferred by then is not late. Columns: ticket_id, stage_no, stage, deadline, and who had to
    act in it as stored when it started: grid_id (the verifier's grid for a check) and owner_id.

    Two index ranges of (ended_at, due_at): the instances still open, and those ended after
    `moment`; never the whole history. An approved extension only moves a deadline later, so
    a stage due after `moment` as set cannot be late then."""
    s = stages
    deadline = stage_deadline_at(moment)

    def part(*ended: ColumnElement[bool]) -> Select[Any]:
        return select(
            s.c.ticket_id,
            s.c.stage_no,
            s.c.stage,
            deadline.label("deadline"),
            s.c.grid_id,
            s.c.owner_id,
        ).where(*ended, s.c.started_at < moment, deadline < moment)

    # The deadline as it stood is never before the one set (an extension only moves it later),
    # so `deadline < moment` implies `due_at < moment`. The open instances are read by that
    # range of (ended_at, due_at); those ended after `moment` by their end alone: given
    # `due_at < moment` too, SQLite walks the due_at index through the whole history.
    return union_all(
        part(s.c.ended_at.is_(None), s.c.due_at < moment), part(s.c.ended_at >= moment)
    )


# --------------------------------------------------------------------------- SQL facts


class Query:
    """One SELECT per figure giving the counted units: (ticket_id, grid_id, bucket[, level]).

    Use as a context manager around one connection. The aggregates (`indicators`) group these
    units and `items` lists them, so a figure always equals the length of its list. The due set
    lives in a temporary table filled from `case_deadlines`, so every due-based figure is a
    join, not a per-ticket lookup.
    """

    def __init__(
        self,
        conn: Connection,
        app: App,
        periods: Sequence[Period],
        *,
        within: str | None = None,
    ) -> None:
        if not periods:
            raise ValueError("at least one period is needed")
        for before, after in pairwise(periods):
            if before.end != after.start:
                raise ValueError(f"periods {before.label} and {after.label} are not contiguous")
        self.conn = conn
        self.app = app
        self.periods = list(periods)
        self.within = within
        self.due_count = 0
        self.start = periods[0].start
        self.end = periods[-1].end
        self.due_table = Table(
            f"report_due_{uuid.uuid4().hex[:12]}",
            MetaData(),
            Column("ticket_id", Id, primary_key=True),
            Column("deadline", UTCDateTime, nullable=False),
            Column("bucket", Integer, nullable=False),
            Column("period_end", UTCDateTime, nullable=False),
            prefixes=["TEMPORARY"],
        )

    def __enter__(self) -> Query:
        self.due_table.create(self.conn)
        rows = []
        for ticket_id, deadline in case_deadlines(
            self.conn, self.app, self.start, self.end
        ).items():
            k = self.bucket_of(deadline)
            rows.append(
                {
                    "ticket_id": ticket_id,
                    "deadline": deadline,
                    "bucket": k,
                    "period_end": self.periods[k].end,
                }
            )
        self.due_count = len(rows)
        if rows:
            self.conn.execute(self.due_table.insert(), rows)
            # Without statistics the planners take the temporary table for a big one: SQLite
            # then scans every ticket and probes it, a cost that grows with the history.
            self.conn.execute(text(f"ANALYZE {self.due_table.name}"))
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        # After an error the transaction rolls back, and the table with it (DDL is
        # transactional on both backends); dropping it then would only hide the error.
        if exc_type is None:
            self.due_table.drop(self.conn)

    def bucket_of(self, moment: datetime) -> int:
        for k, p in enumerate(self.periods):
            if moment < p.end:
                return k
        return len(self.periods) - 1

    def bucket(self, column: ColumnElement[Any]) -> ColumnElement[int]:
        if len(self.periods) == 1:
            return literal(0, Integer)
        whens = [(column < p.end, k) for k, p in enumerate(self.periods[:-1])]
        return case(*whens, else_=len(self.periods) - 1)

    def _scope(self, q: Select[Any]) -> Select[Any]:
        if self.within is None:
            return q
        return q.where(
            tickets.c.grid_id.in_(select(grids.c.id).where(in_subtree(grids.c.path, self.within)))
        )

    def select(self, figure: str) -> Select[Any]:
        t, ev, d = tickets, ticket_events, self.due_table
        if figure in ("reported", "recurrences"):
            q = select(
                t.c.id.label("ticket_id"), t.c.grid_id, self.bucket(t.c.created_at).label("bucket")
            ).where(t.c.created_at >= self.start, t.c.created_at < self.end)
            if figure == "recurrences":
                q = q.where(t.c.recurrence_of_id.is_not(None))
            return self._scope(q)
        if figure == "dispatched":
            return self._scope(
                select(ev.c.ticket_id, t.c.grid_id, self.bucket(ev.c.at).label("bucket"))
                .select_from(ev.join(t, t.c.id == ev.c.ticket_id))
                .where(ev.c.step.in_(DISPATCH_STEPS), ev.c.at >= self.start, ev.c.at < self.end)
                .distinct()
            )
        if figure == "overdue_open":
            # Per period, the tickets with a stage instance late at its end (one row per
            # ticket and period, with the deadline it missed).
            parts = []
            for k, p in enumerate(self.periods):
                late = late_stages(p.end).subquery()
                # A ticket has one stage instance open at a moment: grouping by its owner
                # keeps one row per ticket.
                parts.append(
                    select(
                        late.c.ticket_id,
                        t.c.grid_id,
                        literal(k, Integer).label("bucket"),
                        func.min(late.c.deadline).label("deadline"),
                        late.c.owner_id,
                    )
                    .select_from(late.join(t, t.c.id == late.c.ticket_id))
                    .group_by(late.c.ticket_id, t.c.grid_id, late.c.owner_id)
                )
            return self._scope(parts[0]) if len(parts) == 1 else self._scope_union(parts)
        if figure == "escalations":
            x = escalations
            return self._scope(
                select(x.c.ticket_id, t.c.grid_id, self.bucket(x.c.at).label("bucket"), x.c.level)
                .select_from(x.join(t, t.c.id == x.c.ticket_id))
                .where(x.c.at >= self.start, x.c.at < self.end)
            )
        if figure in KEYED:
            column = t.c.source if figure == "by_source" else t.c.category
            return self._scope(
                select(
                    t.c.id.label("ticket_id"),
                    t.c.grid_id,
                    self.bucket(t.c.created_at).label("bucket"),
                    column.label("key"),
                ).where(t.c.created_at >= self.start, t.c.created_at < self.end)
            )
        if figure in ("verify_due", "verified_on_time"):
            return self._verifications(done=figure == "verified_on_time")
        if figure in ("supervision_due", "supervised_on_time"):
            x, s = escalations, stages
            q = (
                select(
                    x.c.ticket_id,
                    t.c.grid_id,
                    self.bucket(x.c.supervision_due).label("bucket"),
                    x.c.supervision_due.label("deadline"),
                )
                .select_from(x.join(t, t.c.id == x.c.ticket_id))
                .where(x.c.supervision_due >= self.start, x.c.supervision_due < self.end)
            )
            if figure == "supervised_on_time":
                q = q.where(
                    exists().where(
                        s.c.ticket_id == x.c.ticket_id,
                        s.c.stage_no == x.c.stage_no,
                        s.c.ended_by.in_(STAGE_DONE),
                        s.c.ended_at <= x.c.supervision_due,
                    )
                )
            return self._scope(q)
        if figure in ("answers", "satisfied", "solved"):
            f = ticket_feedback
            q = (
                select(f.c.ticket_id, t.c.grid_id, self.bucket(f.c.at).label("bucket"))
                .select_from(f.join(t, t.c.id == f.c.ticket_id))
                .where(f.c.at >= self.start, f.c.at < self.end)
            )
            if figure == "satisfied":
                q = q.where(f.c.satisfaction.in_(SATISFIED))
            elif figure == "solved":
                q = q.where(f.c.solved.is_(True))
            return self._scope(q)
        if figure not in FIGURES:
            raise Invalid("report.unknown_figure", figure=figure, figures=", ".join(FIGURES))
        q = select(d.c.ticket_id, t.c.grid_id, d.c.bucket).select_from(
            d.join(t, t.c.id == d.c.ticket_id)
        )
        urgent = t.c.urgent_at < d.c.period_end  # urgent by the end of the period
        closed = (t.c.state == "closed") & (t.c.closed_at < d.c.period_end)
        if figure == "deferred":
            q = q.where(self._deferred_at_end())
        elif figure in ("closed", "closed_on_time"):
            q = q.where(closed)
            if figure == "closed_on_time":
                q = q.where(self._fixed_at() <= d.c.deadline)
        elif figure == "late_closed":
            q = q.where(closed, self._fixed_at() > d.c.deadline)
        elif figure in ("disposed", "disposed_on_time", "late_disposed"):
            q = q.where(self._disposed())
            if figure == "disposed_on_time":
                q = q.where(self._fixed_at() <= d.c.deadline)
            elif figure == "late_disposed":
                q = q.where(self._fixed_at() > d.c.deadline)
        elif figure == "failed_verifications":
            failed = (
                select(func.count())
                .where(
                    ev.c.ticket_id == d.c.ticket_id,
                    ev.c.step == "reject",
                    ev.c.at < d.c.period_end,
                )
                .scalar_subquery()
            )
            q = q.where(failed >= FAILED_VERIFICATIONS)
        elif figure == "urgent_due":
            q = q.where(urgent)
        elif figure == "urgent_deferred":
            q = q.where(urgent, self._deferred_at_end())
        elif figure == "urgent_closed":
            q = q.where(urgent, closed)
        elif figure == "rework":
            q = q.where(
                exists().where(
                    ev.c.ticket_id == d.c.ticket_id, ev.c.step == "reject", ev.c.at < d.c.period_end
                )
            )
        elif figure == "extended":
            x = extensions
            q = q.where(
                exists().where(
                    x.c.ticket_id == d.c.ticket_id,
                    x.c.status == "approved",
                    x.c.decided_at < d.c.period_end,
                )
            )
        return self._scope(q)

    def _scope_union(self, parts: Sequence[Select[Any]]) -> Select[Any]:
        """The union of per-period selects (each scoped), as one select of the same columns."""
        u = union_all(*(self._scope(q) for q in parts)).subquery()
        return select(*u.c)

    def _verifications(self, *, done: bool) -> Select[Any]:
        """Verification stage instances whose deadline (as it stood at the end of the last
        period) fell in a period; `done`: those the verifier decided (passed or failed) by it.
        Two index ranges: instances due in the periods as set, and those an approved extension
        moved into them."""
        s, t, x = stages, tickets, extensions
        deadline = stage_deadline_at(self.end)

        def part(where: ColumnElement[bool]) -> Select[Any]:
            q = (
                select(
                    s.c.ticket_id,
                    t.c.grid_id,
                    self.bucket(deadline).label("bucket"),
                    deadline.label("deadline"),
                    s.c.stage_no,
                    s.c.owner_id,
                )
                .select_from(s.join(t, t.c.id == s.c.ticket_id))
                .where(where, s.c.stage == "verify", deadline >= self.start, deadline < self.end)
            )
            if done:
                q = q.where(s.c.ended_by.in_(VERIFY_DONE), s.c.ended_at <= deadline)
            return self._scope(q)

        moved = select(x.c.ticket_id, x.c.stage_no).where(
            x.c.status == "approved",
            x.c.until >= self.start,
            x.c.until < self.end,
            x.c.decided_at < self.end,
        )
        u = union(
            part((s.c.due_at >= self.start) & (s.c.due_at < self.end)),
            part(tuple_(s.c.ticket_id, s.c.stage_no).in_(moved)),
        ).subquery()
        return select(u.c.ticket_id, u.c.grid_id, u.c.bucket, u.c.deadline, u.c.owner_id)

    def _disposed(self) -> ColumnElement[bool]:
        """处置: the last fix before the end of the period stands (no rework asked and no
        reopening after it by then)."""
        d, later = self.due_table, ticket_events.alias("later")
        fixed_at = self._fixed_at()
        undone = exists().where(
            later.c.ticket_id == d.c.ticket_id,
            later.c.step.in_(("reject", "reopen")),
            later.c.at >= fixed_at,
            later.c.at < d.c.period_end,
        )
        return fixed_at.is_not(None) & ~undone

    def _deferred_at_end(self) -> ColumnElement[bool]:
        d, f = self.due_table, deferrals
        return exists().where(
            f.c.ticket_id == d.c.ticket_id,
            f.c.at < d.c.period_end,
            or_(f.c.resumed_at.is_(None), f.c.resumed_at >= d.c.period_end),
        )

    def _fixed_at(self) -> ColumnElement[Any]:
        """When the accepted fix was recorded: the last fix before the end of the period."""
        d, ev = self.due_table, ticket_events
        return (
            select(func.max(ev.c.at))
            .where(ev.c.ticket_id == d.c.ticket_id, ev.c.step == "fix", ev.c.at < d.c.period_end)
            .scalar_subquery()
        )

    def counts(self, figure: str) -> Counter[tuple[int, int]]:
        if self.due_count == 0 and figure not in NOT_DUE_BASED:
            return Counter()  # nothing due: no query (and no plan that scans the tickets)
        sub = self.select(figure).subquery()
        rows = self.conn.execute(
            select(sub.c.bucket, sub.c.grid_id, func.count()).group_by(sub.c.bucket, sub.c.grid_id)
        )
        counter: Counter[tuple[int, int]] = Counter()
        for k, grid_id, n in rows:
            counter[(int(k), grid_id)] = int(n)
        return counter

    def indicators(self, *, skip: Collection[str] = ()) -> Indicators:
        """Every figure but those in `skip` (left at 0)."""
        plain = (n for n in FIGURES if n != "escalations" and n not in KEYED and n not in skip)
        counts = {name: self.counts(name) for name in plain}
        keyed = {name: self.keyed_counts(name) for name in KEYED}
        return Indicators(
            self.periods, load_grids(self.conn), counts, self.escalation_counts(), keyed
        )

    def keyed_counts(self, figure: str) -> Counter[tuple[int, int, str]]:
        sub = self.select(figure).subquery()
        rows = self.conn.execute(
            select(sub.c.bucket, sub.c.grid_id, sub.c.key, func.count()).group_by(
                sub.c.bucket, sub.c.grid_id, sub.c.key
            )
        )
        return Counter({(int(k), g, str(key)): int(n) for k, g, key, n in rows})

    def items(self, figure: str, k: int = -1) -> list[Item]:
        """The tickets behind ``figure`` in period ``k`` (default: the last)."""
        return _items(self, figure, k)

    def escalation_counts(self) -> Counter[tuple[int, int, int]]:
        sub = self.select("escalations").subquery()
        rows = self.conn.execute(
            select(sub.c.bucket, sub.c.grid_id, sub.c.level, func.count()).group_by(
                sub.c.bucket, sub.c.grid_id, sub.c.level
            )
        )
        return Counter({(int(k), g, int(level)): int(n) for k, g, level, n in rows})


def compute(
    conn: Connection,
    app: App,
    periods: Sequence[Period],
    *,
    within: str | None = None,
) -> Indicators:
    """All figures for the contiguous ``periods``, for every grid (or the subtree of the grid
    with path ``within``); roll them up with `Indicators.figures(path, k)`."""
    with Query(conn, app, periods, within=within) as q:
        return q.indicators()


@dataclass(frozen=True)
class Item:
    """A ticket behind a figure, with what that figure looked at."""

    ticket_id: int
    ref: str
    title: str
    category: str
    state: str
    grid_id: int
    grid_code: str
    grid_name: str
    # Who the figure holds to account: for a stage figure (OWNED_STAGES) who had to act in
    # that stage, as stored when it started; otherwise the ticket's assignee now (the figures
    # go with the ticket as it is now, like its grid).
    assignee_name: str | None
    created_at: datetime
    due_at: datetime | None  # the case deadline for due-based figures, else the stage deadline
    closed_at: datetime | None
    level: int | None = None  # escalations: the level that took over
    key: str | None = None  # by_source, by_category: the ticket's source or category


def items(
    conn: Connection,
    app: App,
    period: Period,
    figure: str,
    *,
    within: str | None = None,
) -> list[Item]:
    """The tickets counted in ``figure`` for ``period`` and the subtree of path ``within``.

    Their number equals the figure (for escalations: the rows of every level together).
    """
    with Query(conn, app, [period], within=within) as q:
        return q.items(figure)


def _items(q: Query, figure: str, k: int) -> list[Item]:
    figure = figure.replace("-", "_")
    if figure not in FIGURES:
        raise Invalid("report.unknown_figure", figure=figure, figures=", ".join(FIGURES))
    k = k % len(q.periods)
    if q.due_count == 0 and figure not in NOT_DUE_BASED:
        return []
    sub = q.select(figure).subquery()
    home = grids.alias("home")
    assignee = people.alias("assignee")
    t, d = tickets, q.due_table
    due_based = figure not in NOT_DUE_BASED
    due_col: ColumnElement[Any] = d.c.deadline if due_based else t.c.due_at
    if figure in OWN_DEADLINE:
        # the deadline of the late stage, the check or the supervision, as it stood then
        due_col = sub.c.deadline
    level_col = sub.c.level if figure == "escalations" else literal(None, Integer)
    key_col = sub.c.key if figure in KEYED else literal(None, String)
    person = sub.c.owner_id if figure in OWNED_STAGES else t.c.assignee_id
    joined = (
        sub.join(t, t.c.id == sub.c.ticket_id)
        .join(home, home.c.id == t.c.grid_id)
        .outerjoin(assignee, assignee.c.id == person)
    )
    if due_based:
        joined = joined.join(d, d.c.ticket_id == t.c.id)
    rows = q.conn.execute(
        select(
            t.c.id,
            t.c.ref,
            t.c.title,
            t.c.category,
            t.c.state,
            home.c.id.label("grid_id"),
            home.c.code,
            home.c.name,
            assignee.c.name.label("assignee_name"),
            t.c.created_at,
            due_col.label("deadline"),
            t.c.closed_at,
            level_col.label("level"),
            key_col.label("key"),
        )
        .select_from(joined)
        .where(sub.c.bucket == k)
        .order_by(home.c.code, t.c.id, level_col, due_col)
    ).all()
    return [
        Item(
            ticket_id=r.id,
            ref=r.ref,
            title=r.title,
            category=r.category,
            state=r.state,
            grid_id=r.grid_id,
            grid_code=r.code,
            grid_name=r.name,
            assignee_name=r.assignee_name,
            created_at=r.created_at,
            due_at=r.deadline,
            closed_at=r.closed_at,
            level=r.level,
            key=r.key,
        )
        for r in rows
    ]


def recurrence_hotspots(
    conn: Connection, start: datetime, end: datetime
) -> Counter[tuple[int, str]]:
    """Recurrences filed in [start, end) by (grid id, category)."""
    t = tickets
    rows = conn.execute(
        select(t.c.grid_id, t.c.category, func.count())
        .where(t.c.created_at >= start, t.c.created_at < end, t.c.recurrence_of_id.is_not(None))
        .group_by(t.c.grid_id, t.c.category)
    )
    return Counter({(g, c): int(n) for g, c, n in rows})


def level_ancestor(ref: GridRef, level: int, refs: Mapping[int, GridRef]) -> GridRef | None:
    """The grid's ancestor (or itself) at ``level``, read from its materialised path."""
    ids = [int(p) for p in ref.path.strip("/").split("/")]
    if len(ids) < level:
        return None
    return refs.get(ids[level - 1])
