"""The ticket indicators of Chinese digital city management (数字城管), per period and grid.

Every figure is a count of tickets (or escalation rows) computed by SQL aggregates over the
periods asked for, for all grids at once; a grid's figure covers its whole subtree. `items` lists
the tickets behind any figure, from the same SQL, so a number always equals its list.

Definitions, for a period [start, end) (boundaries are midnights in the zone's time zone):

- reported (受理数): tickets filed in the period (dismissed ones included: they were received).
- dispatched (派遣数): tickets dispatched in the period: filed (即交即办 assigns at once) or
  reassigned (改派) to another grid. A ticket dispatched twice in one period counts once.
- due (应结案数): tickets whose *case deadline* fell in the period, dismissed ones left out.
  The case deadline is the fix deadline the engine sets when the ticket is dispatched: the
  fix-stage limit of its category (workflow) counted from its latest dispatch (submit or
  reassign: a reassigned ticket starts a fresh clock on its new grid, as the engine does).
  A rejected fix (返工) or a reopened ticket does not earn new time. An approved extension
  (延期) replaces it by its `until` (the latest approved extension requested after that
  dispatch wins). A deferral (缓办) that started before the deadline and was resumed adds the
  paused time to it; one still running leaves the deadline where it was.
  The deadline is recomputed from the workflow limits and the zone calendar, so no column needs
  to store it; the consequence is that a change of the limits in the workflow file also changes
  how past periods are judged.
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
- overdue open (超期未结): tickets open now (assigned, fixed, verified) whose current stage
  deadline (`tickets.due_at`) is before the end of the period.
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
from collections.abc import Iterable, Mapping, Sequence
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
    Table,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union,
)

from closeloop.bootstrap import App
from closeloop.db import UTCDateTime
from closeloop.grid import in_subtree
from closeloop.models import (
    Id,
    deferrals,
    escalations,
    extensions,
    grids,
    people,
    ticket_events,
    tickets,
)
from closeloop.reports.exam import add_months, parse_month
from closeloop.tickets import Invalid

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
)
OPEN_STATES = ("assigned", "fixed", "verified")
DISPATCH_STEPS = ("submit", "reassign")
NOT_DUE_BASED = ("reported", "recurrences", "dispatched", "overdue_open", "escalations")
FIX_STAGE = "fix"
ESCALATION_LEVELS = (3, 2, 1)
# How far before a period a deferral's resumption is still looked at (see `case_deadlines`).
_DEFERRAL_SLACK = timedelta(days=30)
_SEARCH_SPAN = timedelta(days=400)
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
        raise Invalid(f"week {label!r} is not an ISO week like 2026-W14")
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise Invalid(f"week {label!r} does not exist") from None
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
        raise Invalid(str(exc)) from None
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
    escalations: Mapping[int, int] = field(default_factory=dict)

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

    def __add__(self, other: Figures) -> Figures:
        levels = Counter(self.escalations)
        levels.update(other.escalations)
        return Figures(
            **{name: getattr(self, name) + getattr(other, name) for name in _COUNT_FIELDS},
            escalations=dict(levels),
        )

    def as_json(self) -> dict[str, Any]:
        """The figures under the keys scripts read (rates as fractions, 4 places)."""

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
        }


_COUNT_FIELDS = (
    "reported",
    "dispatched",
    "due",
    "deferred",
    "closed",
    "closed_on_time",
    "rework",
    "extended",
    "overdue_open",
    "recurrences",
)


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
    ) -> None:
        self.periods = tuple(periods)
        self.grids = dict(grid_refs)
        self._counts = counts
        self._escalations = escalation_counts
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


def earliest_dispatch(app: App, category: str, target: datetime) -> datetime:
    """A moment at most a second before the earliest dispatch whose fix deadline reaches ``target``.

    The deadline never moves back when the dispatch moves forward (the calendar is monotone),
    so a binary search over seconds finds it.
    """
    due = app.deadlines.due
    lo = target - _SEARCH_SPAN
    if due(category, FIX_STAGE, lo) >= target:
        return lo
    hi = target  # due(target) > target: every limit is positive
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if due(category, FIX_STAGE, mid) >= target:
            hi = mid
        else:
            lo = mid
    # `lo` is less than a second before the true moment: a safe lower bound for the search.
    return lo.replace(microsecond=0)


def case_deadlines(
    conn: Connection, app: App, start: datetime, end: datetime
) -> dict[int, datetime]:
    """Tickets (by id) whose case deadline falls in [start, end), with that deadline.

    Only tickets that can qualify are read: those dispatched since the earliest moment whose
    deadline can reach ``start``, those with an approved extension ending in the period, and
    those whose deferral was resumed not long before it. The cost grows with the period's work,
    not with the history.
    """
    categories = list(app.workflow.categories)
    # Per category, the dispatch times that can be due in [start, end): from `first` (at most a
    # second early) to `after` (at most a second late). Only those need the calendar arithmetic.
    first = {c: earliest_dispatch(app, c, start) for c in categories}
    after = {c: earliest_dispatch(app, c, end) + timedelta(seconds=1) for c in categories}
    a_min = min(first.values())
    ev, x, f, t = ticket_events, extensions, deferrals, tickets
    candidates = union(
        select(ev.c.ticket_id).where(
            ev.c.step.in_(DISPATCH_STEPS), ev.c.at >= a_min, ev.c.at < end
        ),
        select(x.c.ticket_id).where(x.c.status == "approved", x.c.until >= start, x.c.until < end),
        select(f.c.ticket_id).where(
            f.c.resumed_at >= a_min - _DEFERRAL_SLACK, f.c.resumed_at < end
        ),
    ).subquery()
    wanted = select(candidates.c.ticket_id)
    last_dispatch = (
        select(func.max(ev.c.at))
        .where(ev.c.ticket_id == t.c.id, ev.c.step.in_(DISPATCH_STEPS), ev.c.at < end)
        .scalar_subquery()
    )
    info = conn.execute(
        select(t.c.id, t.c.category, last_dispatch.label("dispatched_at")).where(
            t.c.id.in_(wanted), t.c.state != "dismissed"
        )
    ).all()
    approved: dict[int, list[Any]] = {}
    for ext in conn.execute(
        select(x.c.ticket_id, x.c.id, x.c.until, x.c.requested_at, x.c.decided_at).where(
            x.c.ticket_id.in_(wanted), x.c.status == "approved", x.c.decided_at < end
        )
    ):
        approved.setdefault(ext.ticket_id, []).append(ext)
    paused: dict[int, list[Any]] = {}
    for pause in conn.execute(
        select(f.c.ticket_id, f.c.at, f.c.resumed_at).where(
            f.c.ticket_id.in_(wanted),
            f.c.at < end,
            f.c.resumed_at.is_not(None),
            f.c.resumed_at < end,
        )
    ):
        paused.setdefault(pause.ticket_id, []).append(pause)

    due_fn = app.deadlines.due
    out: dict[int, datetime] = {}
    for row in info:
        if row.dispatched_at is None:
            continue
        granted = [e for e in approved.get(row.id, ()) if e.requested_at >= row.dispatched_at]
        plain = not granted and row.id not in paused and row.category in first
        if plain and not first[row.category] <= row.dispatched_at < after[row.category]:
            continue  # its deadline is outside the period: no need to compute it
        deadline = due_fn(row.category, FIX_STAGE, row.dispatched_at)
        anchor = row.dispatched_at
        if granted:
            latest = max(granted, key=lambda e: (e.decided_at, e.id))
            deadline, anchor = latest.until, latest.decided_at
        for d in sorted(paused.get(row.id, ()), key=lambda d: d.at):
            if anchor <= d.at < deadline:
                deadline += d.resumed_at - d.at
        if start <= deadline < end:
            out[row.id] = deadline
    return out


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
            # Bucket = the first period at whose end the ticket was already overdue; a ticket
            # overdue at the end of period k is overdue at the end of every later one too.
            whens = [(t.c.due_at < p.end, k) for k, p in enumerate(self.periods)]
            return self._scope(
                select(t.c.id.label("ticket_id"), t.c.grid_id, case(*whens).label("bucket")).where(
                    t.c.state.in_(OPEN_STATES), t.c.due_at < self.end
                )
            )
        if figure == "escalations":
            x = escalations
            return self._scope(
                select(x.c.ticket_id, t.c.grid_id, self.bucket(x.c.at).label("bucket"), x.c.level)
                .select_from(x.join(t, t.c.id == x.c.ticket_id))
                .where(x.c.at >= self.start, x.c.at < self.end)
            )
        if figure not in FIGURES:
            raise Invalid(f"unknown figure '{figure}'; figures: {', '.join(FIGURES)}")
        q = select(d.c.ticket_id, t.c.grid_id, d.c.bucket).select_from(
            d.join(t, t.c.id == d.c.ticket_id)
        )
        if figure == "deferred":
            q = q.where(self._deferred_at_end())
        elif figure in ("closed", "closed_on_time"):
            q = q.where(t.c.state == "closed", t.c.closed_at < d.c.period_end)
            if figure == "closed_on_time":
                q = q.where(self._fixed_at() <= d.c.deadline)
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
        if figure == "overdue_open":
            # From "first overdue at the end of k" to "overdue at the end of k".
            cumulative: Counter[tuple[int, int]] = Counter()
            for (k, grid_id), n in counter.items():
                for later in range(k, len(self.periods)):
                    cumulative[(later, grid_id)] += n
            return cumulative
        return counter

    def indicators(self) -> Indicators:
        counts = {name: self.counts(name) for name in FIGURES if name != "escalations"}
        return Indicators(self.periods, load_grids(self.conn), counts, self.escalation_counts())

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
    assignee_name: str | None
    created_at: datetime
    due_at: datetime | None  # the case deadline for due-based figures, else the stage deadline
    closed_at: datetime | None
    level: int | None = None  # escalations: the level that took over


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
        raise Invalid(f"unknown figure '{figure}'; figures: {', '.join(FIGURES)}")
    k = k % len(q.periods)
    if q.due_count == 0 and figure not in NOT_DUE_BASED:
        return []
    sub = q.select(figure).subquery()
    home = grids.alias("home")
    assignee = people.alias("assignee")
    t, d = tickets, q.due_table
    due_based = figure not in (
        "reported",
        "recurrences",
        "dispatched",
        "overdue_open",
        "escalations",
    )
    due_col: ColumnElement[Any] = d.c.deadline if due_based else t.c.due_at
    level_col = sub.c.level if figure == "escalations" else literal(None, Integer)
    joined = (
        sub.join(t, t.c.id == sub.c.ticket_id)
        .join(home, home.c.id == t.c.grid_id)
        .outerjoin(assignee, assignee.c.id == t.c.assignee_id)
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
        )
        .select_from(joined)
        .where(sub.c.bucket == k)
        .order_by(home.c.code, t.c.id, level_col)
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
