"""The weekly example-meeting report (定期例会周报): the data, and the job that sends it.

`build_weekly` gathers everything the meeting looks at for one ISO week (by default the last
full week in the zone): zone totals with the change against the previous weeks, a table per
grid of the report level grouped by their medium grid, the red and yellow lists, the oldest
overdue tickets with their responsible and supervising leaders, recurrence hot spots, the
example of the week and the month's campaigns. `closeloop.reports.render` turns it into HTML,
Markdown, XLSX or JSON.

Rules decided here:

- Red list (红榜): the grids with at least `example_min_due` tickets due this week (net of
  deferrals) and an on-time rate above the zone's (never 0%), best on-time rate first, then
  fewest overdue, then most due, then code. Yellow list (黄榜): the grids with as many due and
  an on-time rate below the zone's, worst first. A rate cannot be both above and below the
  zone's, so no grid is on both; a grid with too few due is on neither (one late ticket out of
  one is no verdict on a village).
- Change against the previous weeks: for counts, this week minus the mean of the previous
  weeks; for rates, this week's rate minus the pooled rate of the previous weeks (their sums
  divided), in percentage points. Overdue open (a count at the end of a week) is shown
  without a change in the summary; the example compares it with its own previous weeks.
- Example of the week (本周典型): the grid whose on-time rate rose most over its own pooled
  rate of the previous weeks, among grids with at least `example_min_due` tickets due (net of
  deferrals) this week and some due before; ties go to the higher rate this week, then more
  due, then the code. No grid improved: no example.
- Why it is the example (`Example.reasons`): every figure of the grid that improved this week
  over its own previous weeks, in this order: the on-time rate and the closure rate (against
  the pooled rate of its previous weeks, with the zone's rate this week beside them), the
  problems closed (more than its weekly mean before), overdue open at the end of the week and
  escalations (fewer than its weekly mean before). A figure that did not improve is not named.
- Oldest overdue (超期最久): the stage instances late at the end of the week, oldest missed
  deadline first. 责任人 is who had to act in that stage as recorded when it started (the
  assignee for a fix, the verifier above for a verification or a closing) with the grid that
  had to act: a reassignment or a new grid leader after the week does not rewrite the week.
  督办人 is the supervisor of the stage's last rung by the end of the week; with no rung, the
  leader (today's: nobody was recorded) of the nearest led grid above the one that had to act,
  where its first rung goes.
- Recurrence hot spots: recurrences filed in this and the previous weeks, by grid of the
  report level and category, most first.
- Campaigns: those of the month holding the week's Thursday (the ISO rule for which month a
  week belongs to), tickets filed up to the end of the week, their states as of now.
- The previous meeting: the last meeting held before the end of the week (the example meeting
  that discussed the week before, usually), with its decisions (交办, tickets linked to it)
  not yet in a final state, as of now like the campaigns: what the next meeting follows up.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from closeloop.app import App
from closeloop.campaigns import service as campaigns_mod
from closeloop.campaigns.rules import CampaignProgress
from closeloop.db import read_only
from closeloop.evidence import EvidenceError, path_of
from closeloop.geo import mapdata
from closeloop.geo.svgmap import MapView
from closeloop.meetings.rules import KINDS, open_decision
from closeloop.models import (
    escalations,
    evidence,
    grids,
    meetings,
    people,
    ticket_events,
    ticket_links,
    tickets,
    weekly_examples,
)
from closeloop.patrols.service import PatrolPeriod, period_summary
from closeloop.reports import composite as composite_mod
from closeloop.reports.composite import Composite
from closeloop.reports.indicators import (
    Figures,
    GridRef,
    Item,
    Period,
    Query,
    last_full_week,
    late_stages,
    level_ancestor,
    month_of,
    pooled,
    recurrence_hotspots,
    week_period,
    weeks_before,
)
from closeloop.reports.settings import ReportSettings
from closeloop.tickets import Invalid, NotFound
from closeloop.views import listing_select
from closeloop.workflow import Names

COUNT_CHANGES = ("reported", "dispatched", "due", "closed", "closed_on_time", "recurrences")
RATE_CHANGES = ("closure_rate", "on_time_rate")
# Which way is good news: +1 more is better, -1 less is better, 0 neither (workload).
EXAMPLE_PHOTOS = 6  # the example's cleared problems shown with their photos
BETTER = {"closed": 1, "closed_on_time": 1, "recurrences": -1, "escalations": -1}


@dataclass(frozen=True)
class GridRow:
    code: str
    name: str
    kind: str
    level: int
    path: str
    group_code: str | None
    figures: Figures


@dataclass(frozen=True)
class GroupTable:
    code: str | None
    name: str
    rows: tuple[GridRow, ...]
    total: Figures


@dataclass(frozen=True)
class Change:
    key: str
    current: float | None
    previous: float | None
    delta: float | None
    is_rate: bool

    @property
    def tone(self) -> str:
        """How the change reads, for colour: good, bad or neither ("")."""
        better = 1 if self.is_rate else BETTER.get(self.key, 0)
        if self.delta is None or self.delta == 0 or better == 0:
            return ""
        return "good" if (self.delta > 0) == (better > 0) else "bad"


@dataclass(frozen=True)
class Leader:
    grid_code: str
    grid_name: str
    name: str | None
    phone: str | None


@dataclass(frozen=True)
class OverdueTicket:
    ref: str
    title: str
    category: Names
    state: Names
    grid_code: str
    grid_name: str
    due_at: datetime
    late: timedelta  # at the end of the week
    escalation_level: int
    # 责任人: who had to act in the late stage, as recorded when it started (`stages.owner_id`
    # on `stages.grid_id`): the assignee for a fix, the verifier for a check or a closing.
    responsible: Leader
    supervising: Leader | None


@dataclass(frozen=True)
class HotSpot:
    grid_code: str
    grid_name: str
    category: str
    category_label: Names
    count: int


@dataclass(frozen=True)
class Photo:
    stored_name: str  # in the evidence directory (`closeloop.evidence.path_of`)
    content_type: str
    data: bytes = b""  # read for the example's photos only (embedded in the HTML)

    @property
    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True)
class Cleared:
    """A problem the example's grid fixed and closed among the week's due tickets, with the
    reporter's photo (before) and the fixer's photo (after) when they gave one."""

    ref: str
    title: str
    category: Names
    closed_at: datetime | None
    on_time: bool
    before: Photo | None
    after: Photo | None


@dataclass(frozen=True)
class Reason:
    """A figure of the example's grid that improved: this week against its own previous weeks
    (a rate: their pooled rate; a count: their weekly mean) and, for rates, the zone's."""

    key: str  # on_time_rate, closure_rate, closed, overdue_open, escalations
    now: float
    then: float
    zone: float | None = None
    is_rate: bool = False


# The figures that can make a grid the example, in the order they are told; +1: more is better.
REASON_FIGURES = (
    ("on_time_rate", 1),
    ("closure_rate", 1),
    ("closed", 1),
    ("overdue_open", -1),
    ("escalations", -1),
)


@dataclass(frozen=True)
class Example:
    row: GridRow
    baseline: Figures  # pooled figures of the previous weeks
    current_rate: float
    baseline_rate: float
    zone_rate: float | None = None  # the zone's on-time rate this week, for comparison
    cleared: tuple[Cleared, ...] = ()
    note: str | None = None  # why, when a supervisor picked the example (`report example`)
    reasons: tuple[Reason, ...] = ()  # what improved (`example_reasons`)

    @property
    def improvement(self) -> float:
        return self.current_rate - self.baseline_rate


@dataclass(frozen=True)
class OpenDecision:
    """A decision of the previous meeting (a ticket handed to a grid) not yet closed."""

    ref: str
    title: str
    grid_code: str
    grid_name: str
    state: Names
    due_at: datetime | None
    late: bool  # its deadline had passed at the end of the week


@dataclass(frozen=True)
class PreviousMeeting:
    id: int
    kind: Names
    at: datetime
    decisions: int  # how many it handed over
    open: tuple[OpenDecision, ...]


@dataclass(frozen=True)
class AppendixGroup:
    row: GridRow
    items: tuple[tuple[Item, str], ...]  # (ticket, outcome: on_time | late | open | deferred)


@dataclass(frozen=True)
class WeeklyReport:
    zone_name: str
    week: Period
    previous: tuple[Period, ...]
    level: int
    generated_at: datetime
    zone: Figures
    zone_previous: tuple[Figures, ...]
    changes: tuple[Change, ...]
    groups: tuple[GroupTable, ...]
    red: tuple[GridRow, ...]
    yellow: tuple[GridRow, ...]
    overdue: tuple[OverdueTicket, ...]
    hotspots: tuple[HotSpot, ...]
    example: Example | None
    campaigns: tuple[CampaignProgress, ...]
    patrols: PatrolPeriod  # the week's patrols and every grid of the report's level
    appendix: tuple[AppendixGroup, ...]
    appendix_left_out: int  # due tickets not listed (appendix_rows reached)
    tz_name: str
    # The grids listed, on the map (on-time rate), with the overdue tickets and hot spots;
    # None when the zone has no geometry.
    map: MapView | None = None
    min_due: int = 3  # `[report] example_min_due`: the boards and the example need this many due
    previous_meeting: PreviousMeeting | None = None  # None: no meeting before the week's end
    composite: Composite = composite_mod.DEFAULT  # `[report.composite]`
    top: int = 5  # `[report] top_categories`: the 高发问题 listed
    # The same ISO week a year before (同比) and the zone's figures then; None when that week
    # does not exist or nothing was reported or due in it.
    year_ago: Period | None = None
    zone_year_ago: Figures | None = None

    def score(self, f: Figures) -> tuple[float | None, str | None]:
        """The composite score (综合指标值) of some figures and its grade."""
        value = self.composite.score(f)
        return value, self.composite.grade(value)

    def figures_json(self, f: Figures) -> dict[str, Any]:
        value, grade = self.score(f)
        return {**f.as_json(self.top), "composite": value, "grade": grade}

    @property
    def ranked(self) -> tuple[GridRow, ...]:
        """The grids with a composite score, best first (ties by code). Those without one
        (nothing due) are left out of the ranking: the report counts them (`ungraded`)."""
        scored = [(self.composite.score(r.figures), r) for r in self.rows]
        graded = [(score, r) for score, r in scored if score is not None]
        graded.sort(key=lambda p: (-p[0], p[1].code))
        return tuple(r for _, r in graded)

    @property
    def ungraded(self) -> int:
        return len(self.rows) - len(self.ranked)

    @property
    def rows(self) -> tuple[GridRow, ...]:
        return tuple(row for group in self.groups for row in group.rows)

    @property
    def trend(self) -> list[tuple[str, Figures]]:
        periods = [*self.previous, self.week]
        figures = [*self.zone_previous, self.zone]
        return [(p.label, f) for p, f in zip(periods, figures, strict=True)]

    def as_json(self) -> dict[str, Any]:
        """The figures for scripts: `zone`, `grids` by code, `red`, `yellow`, `example`, and the
        `overdue` tickets (oldest first) with the deadline their stage missed."""
        return {
            "week": self.week.label,
            "zone": self.figures_json(self.zone),
            "grids": {row.code: self.figures_json(row.figures) for row in self.rows},
            "year_ago": None
            if self.year_ago is None or self.zone_year_ago is None
            else {"week": self.year_ago.label, "zone": self.figures_json(self.zone_year_ago)},
            "red": [row.code for row in self.red],
            "yellow": [row.code for row in self.yellow],
            "example": self.example.row.code if self.example else None,
            "previous_meeting": (
                {
                    "id": self.previous_meeting.id,
                    "at": self.previous_meeting.at.isoformat(timespec="seconds"),
                    "decisions": self.previous_meeting.decisions,
                    "open": [d.ref for d in self.previous_meeting.open],
                }
                if self.previous_meeting
                else None
            ),
            "overdue": [
                {
                    "ref": o.ref,
                    "grid": o.grid_code,
                    "due_at": o.due_at.isoformat(timespec="seconds"),
                    "late_hours": round(o.late.total_seconds() / 3600, 1),
                    "escalation_level": o.escalation_level,
                    "supervising_grid": o.supervising.grid_code if o.supervising else None,
                    # The same 责任人 and supervising leader the page and handout name.
                    "responsible": _leader_json(o.responsible),
                    "supervising": _leader_json(o.supervising) if o.supervising else None,
                }
                for o in self.overdue
            ],
        }


def _leader_json(leader: Leader) -> dict[str, str | None]:
    return {
        "grid": leader.grid_code,
        "grid_name": leader.grid_name,
        "name": leader.name,
        "phone": leader.phone,
    }


# --------------------------------------------------------------------------- pure rules


def _best_first(rows: Sequence[GridRow]) -> list[GridRow]:
    ranked = [r for r in rows if r.figures.on_time_rate is not None]
    ranked.sort(key=lambda r: r.code)
    ranked.sort(
        key=lambda r: (-(r.figures.on_time_rate or 0.0), r.figures.overdue_open, -r.figures.net_due)
    )
    return ranked


def red_and_yellow(
    rows: Sequence[GridRow],
    red_size: int,
    yellow_size: int,
    *,
    zone_rate: float | None,
    min_due: int,
) -> tuple[tuple[GridRow, ...], tuple[GridRow, ...]]:
    """The red list (best first) and the yellow list (worst first); see the module docstring."""
    if zone_rate is None:
        return (), ()
    ranked = [r for r in _best_first(rows) if r.figures.net_due >= min_due]
    red = [r for r in ranked if (r.figures.on_time_rate or 0.0) > max(zone_rate, 0.0)]
    yellow = [r for r in ranked[::-1] if (r.figures.on_time_rate or 0.0) < zone_rate]
    return tuple(red[:red_size]), tuple(yellow[:yellow_size])


def example_of_week(
    rows: Sequence[GridRow], baselines: Mapping[str, Figures], min_due: int
) -> Example | None:
    """The grid that improved most over its own previous weeks (None: nobody improved)."""
    best: tuple[Any, ...] | None = None
    chosen: Example | None = None
    for row in rows:
        now_rate = row.figures.on_time_rate
        base = baselines.get(row.code, Figures())
        then_rate = base.on_time_rate
        if now_rate is None or then_rate is None or row.figures.net_due < min_due:
            continue
        if now_rate <= then_rate:
            continue
        key = (-(now_rate - then_rate), -now_rate, -row.figures.net_due, row.code)
        if best is None or key < best:
            best, chosen = key, Example(row, base, now_rate, then_rate)
    return chosen


def example_reasons(
    current: Figures, previous: Sequence[Figures], zone: Figures
) -> tuple[Reason, ...]:
    """The figures of a grid that improved over its own previous weeks (module docstring)."""
    if not previous:
        return ()
    base = pooled(previous)
    out = []
    for key, better in REASON_FIGURES:
        if key.endswith("_rate"):
            now, then = getattr(current, key), getattr(base, key)
            if now is not None and then is not None and now > then:
                out.append(Reason(key, now, then, getattr(zone, key), is_rate=True))
            continue
        value = _escalations if key == "escalations" else attrgetter(key)
        count = float(value(current))
        mean = sum(float(value(f)) for f in previous) / len(previous)
        if (count - mean) * better > 0:
            out.append(Reason(key, count, mean))
    return tuple(out)


def _escalations(f: Figures) -> int:
    return f.escalation_total


def changes(current: Figures, previous: Sequence[Figures]) -> tuple[Change, ...]:
    out = []
    n = len(previous)
    for key in COUNT_CHANGES:
        now_value = float(getattr(current, key))
        mean = sum(float(getattr(f, key)) for f in previous) / n if n else None
        out.append(Change(key, now_value, mean, None if mean is None else now_value - mean, False))
    escalated = float(current.escalation_total)
    mean_esc = sum(f.escalation_total for f in previous) / n if n else None
    out.append(
        Change(
            "escalations",
            escalated,
            mean_esc,
            None if mean_esc is None else escalated - mean_esc,
            False,
        )
    )
    base = pooled(previous)
    for key in RATE_CHANGES:
        now_rate, then_rate = getattr(current, key), getattr(base, key)
        delta = None if now_rate is None or then_rate is None else now_rate - then_rate
        out.append(Change(key, now_rate, then_rate, delta, True))
    return tuple(out)


# --------------------------------------------------------------------------- building


def resolve_week(app: App, now: datetime, week: str | None) -> Period:
    return week_period(week, app.tz) if week else last_full_week(now, app.tz)


def build_weekly(
    app: App,
    *,
    now: datetime,
    week: str | None = None,
    level: int | None = None,
    settings: ReportSettings | None = None,
) -> WeeklyReport:
    """Everything the weekly report shows, read in one transaction."""
    cfg = settings or ReportSettings.from_config(app.settings.section("report"))
    level = cfg.level if level is None else level
    if not 2 <= level <= 4:
        raise Invalid("report.level", level=level)
    period = resolve_week(app, now, week)
    if period.end > now:
        raise Invalid("report.week_open", label=period.label)
    previous = weeks_before(period, cfg.previous_weeks, app.tz)
    with read_only(app.engine) as conn, Query(conn, app, [*previous, period]) as q:
        result = q.indicators()
        refs = result.grids
        due_items = {
            name: q.items(name) for name in ("due", "deferred", "closed", "closed_on_time")
        }
        photos = _photos(conn, [i.ticket_id for i in due_items["closed"]])
        picked = conn.execute(
            select(grids.c.code, weekly_examples.c.note)
            .join(grids, grids.c.id == weekly_examples.c.grid_id)
            .where(weekly_examples.c.week == period.label)
        ).first()
        spots = recurrence_hotspots(conn, previous[0].start, period.end)
        overdue = _oldest_overdue(conn, app, period, refs, cfg.overdue_rows)
        month = month_of(period.start + timedelta(days=3), app.tz)
        progress = tuple(
            campaigns_mod.progress(conn, app, c, until=period.end)
            for c in campaigns_mod.list_campaigns(conn, month)
        )
        patrolled = period_summary(conn, period.start, period.end, level)
        meeting = _previous_meeting(conn, app, period)
        year_ago = same_week_a_year_before(period, app.tz)
        zone_year_ago = None
        if year_ago is not None:
            # Overdue open is a count of the week's end, not shown a year back; reading it
            # would scan every stage instance that ended in the year since.
            with Query(conn, app, [year_ago]) as before:
                then = before.indicators(skip=("overdue_open",)).figures(None)
            if then.reported or then.due:
                zone_year_ago = then

    listed = sorted((g for g in refs.values() if g.level == level), key=lambda g: g.code)
    group_level = 2 if level >= 3 else 1
    rows = [
        GridRow(
            code=g.code,
            name=g.name,
            kind=g.kind,
            level=g.level,
            path=g.path,
            group_code=(level_ancestor(g, group_level, refs) or g).code,
            figures=result.figures(g.path),
        )
        for g in listed
    ]
    groups = []
    for parent in sorted(
        (g for g in refs.values() if g.level == group_level), key=lambda g: g.code
    ):
        members = tuple(r for r in rows if r.group_code == parent.code)
        if members:
            groups.append(
                GroupTable(parent.code, parent.name, members, result.figures(parent.path))
            )
    baselines = {
        g.code: pooled(result.figures(g.path, k) for k in range(len(previous))) for g in listed
    }
    zone = result.figures(None)
    red, yellow = red_and_yellow(
        rows,
        cfg.red_size,
        cfg.yellow_size,
        zone_rate=zone.on_time_rate,
        min_due=cfg.example_min_due,
    )
    zone_previous = tuple(result.figures(None, k) for k in range(len(previous)))
    appendix, left_out = _appendix(rows, refs, level, due_items, cfg.appendix_rows)
    hotspots = _hotspots(app, spots, refs, level, cfg.hotspot_rows)
    return WeeklyReport(
        zone_name=app.settings.zone_name,
        week=period,
        previous=tuple(previous),
        level=level,
        generated_at=now,
        zone=zone,
        zone_previous=zone_previous,
        changes=changes(zone, zone_previous),
        groups=tuple(groups),
        red=red,
        yellow=yellow,
        overdue=overdue,
        hotspots=hotspots,
        example=_with_story(
            app,
            _picked(rows, baselines, picked.code, picked.note)
            if picked is not None
            else example_of_week(rows, baselines, cfg.example_min_due),
            zone,
            lambda path: tuple(result.figures(path, k) for k in range(len(previous))),
            refs,
            level,
            due_items,
            photos,
        ),
        campaigns=progress,
        patrols=patrolled,
        appendix=appendix,
        appendix_left_out=left_out,
        tz_name=app.tz.key,
        map=_map(app, level, rows, overdue, hotspots),
        min_due=cfg.example_min_due,
        previous_meeting=meeting,
        composite=cfg.composite,
        top=cfg.top_categories,
        year_ago=year_ago if zone_year_ago is not None else None,
        zone_year_ago=zone_year_ago,
    )


def _previous_meeting(conn: Connection, app: App, period: Period) -> PreviousMeeting | None:
    """The last meeting before the week's end and its decisions still open (module docstring)."""
    m = conn.execute(
        select(meetings.c.id, meetings.c.kind, meetings.c.at)
        .where(meetings.c.at < period.end)
        .order_by(meetings.c.at.desc(), meetings.c.id.desc())
        .limit(1)
    ).first()
    if m is None:
        return None
    final = frozenset(s for s, st in app.workflow.states.items() if st.final)
    rows = conn.execute(
        select(
            tickets.c.ref,
            tickets.c.title,
            tickets.c.state,
            tickets.c.due_at,
            grids.c.code,
            grids.c.name,
        )
        .select_from(
            ticket_links.join(tickets, tickets.c.id == ticket_links.c.ticket_id).join(
                grids, grids.c.id == tickets.c.grid_id
            )
        )
        .where(ticket_links.c.kind == "meeting", ticket_links.c.target_id == m.id)
        .order_by(tickets.c.id)
    ).all()
    wf = app.workflow
    still_open = tuple(
        OpenDecision(
            r.ref,
            r.title,
            r.code,
            r.name,
            wf.states[r.state].label,
            r.due_at,
            r.due_at is not None and r.due_at < period.end,
        )
        for r in rows
        if open_decision(r.state, final)
    )
    zh, en = KINDS.get(m.kind, (m.kind, m.kind))
    return PreviousMeeting(m.id, Names(zh, en), m.at, len(rows), still_open)


def same_week_a_year_before(period: Period, tz: ZoneInfo) -> Period | None:
    """The ISO week of the same number a year before (同比); None when that year has no such
    week (a week 53)."""
    year, week, _ = period.start.astimezone(tz).isocalendar()
    try:
        return week_period(f"{year - 1:04d}-W{week:02d}", tz)
    except NotFound:
        return None


def _picked(
    rows: Sequence[GridRow], baselines: Mapping[str, Figures], code: str, note: str
) -> Example | None:
    """The example a supervisor picked; None when its grid is not listed at this level."""
    row = next((r for r in rows if r.code == code), None)
    if row is None:
        return None
    base = baselines.get(code, Figures())
    return Example(row, base, row.figures.on_time_rate or 0.0, base.on_time_rate or 0.0, note=note)


def pick_example(app: App, week: str, grid_code: str, note: str, now: datetime) -> None:
    """`report example`: a supervisor picks the week's example by hand, with why (one row per
    week; picking again replaces it)."""
    period = week_period(week, app.tz)
    if not note.strip():
        raise Invalid("report.example_note")
    with app.engine.begin() as conn:
        grid = conn.execute(
            select(grids.c.id, grids.c.level).where(grids.c.code == grid_code)
        ).first()
        if grid is None:
            raise Invalid("grid.unknown_quoted", code=grid_code)
        conn.execute(weekly_examples.delete().where(weekly_examples.c.week == period.label))
        conn.execute(
            weekly_examples.insert().values(
                week=period.label, grid_id=grid.id, note=note.strip(), chosen_at=now
            )
        )


def _photos(conn: Connection, ticket_ids: Sequence[int]) -> dict[int, tuple[Photo | None, ...]]:
    """Per ticket: (the first photo given at submission, the last photo given with a fix)."""
    if not ticket_ids:
        return {}
    before: dict[int, Photo] = {}
    after: dict[int, Photo] = {}
    for r in conn.execute(
        select(
            evidence.c.ticket_id,
            evidence.c.stored_name,
            evidence.c.content_type,
            ticket_events.c.step,
        )
        .join(ticket_events, ticket_events.c.id == evidence.c.event_id)
        .where(
            evidence.c.ticket_id.in_(ticket_ids),
            evidence.c.content_type.like("image/%"),
            ticket_events.c.step.in_(("submit", "fix")),
        )
        .order_by(evidence.c.id)
    ):
        photo = Photo(r.stored_name, r.content_type)
        if r.step == "submit":
            before.setdefault(r.ticket_id, photo)
        else:
            after[r.ticket_id] = photo
    return {t: (before.get(t), after.get(t)) for t in ticket_ids}


def _with_story(
    app: App,
    example: Example | None,
    zone: Figures,
    history: Callable[[str], tuple[Figures, ...]],
    refs: Mapping[int, GridRef],
    level: int,
    due_items: Mapping[str, list[Item]],
    photos: Mapping[int, tuple[Photo | None, ...]],
) -> Example | None:
    """The example with why (what improved over its previous weeks, given by ``history`` of a
    grid's path; the zone's figures beside its own) and the problems it cleared."""
    if example is None:
        return None
    on_time = {i.ticket_id for i in due_items["closed_on_time"]}
    cleared: list[Cleared] = []
    for item in due_items["closed"]:
        top = level_ancestor(refs[item.grid_id], level, refs)
        if top is None or top.code != example.row.code:
            continue
        before, after = (
            _read(app, p) if len(cleared) < EXAMPLE_PHOTOS else None
            for p in photos.get(item.ticket_id, (None, None))
        )
        cleared.append(
            Cleared(
                item.ref,
                item.title,
                app.workflow.category(item.category).label,
                item.closed_at,
                item.ticket_id in on_time,
                before,
                after,
            )
        )
    return replace(
        example,
        zone_rate=zone.on_time_rate,
        cleared=tuple(cleared),
        reasons=example_reasons(example.row.figures, history(example.row.path), zone),
    )


def _read(app: App, photo: Photo | None) -> Photo | None:
    if photo is None:
        return None
    try:
        data = path_of(app.settings.evidence_dir, photo.stored_name).read_bytes()
    except (OSError, EvidenceError):
        return None  # a file gone from the store: the problem is listed without its photo
    return replace(photo, data=data)


def _map(
    app: App,
    level: int,
    rows: Sequence[GridRow],
    overdue: Sequence[OverdueTicket],
    hotspots: Sequence[HotSpot],
) -> MapView | None:
    places = mapdata.Places(app)
    if not places.shapes:
        return None
    spots: Counter[str] = Counter()
    names: dict[str, list[str]] = {}
    for h in hotspots:
        spots[h.grid_code] += h.count
        names.setdefault(h.grid_code, []).append(f"{h.category_label.zh} {h.count}")
    return mapdata.build_view(
        app,
        level=level,
        metric="on_time",
        values={row.code: row.figures.on_time_rate for row in rows},
        late=[mapdata.Late(o.ref, o.title, o.grid_code, o.escalation_level) for o in overdue],
        recurring=[
            mapdata.Recurring(code, n, " · ".join([code, *names[code]]))
            for code, n in spots.items()
        ],
        places=places,
    )


def _appendix(
    rows: Sequence[GridRow],
    refs: Mapping[int, GridRef],
    level: int,
    due_items: Mapping[str, list[Item]],
    limit: int,
) -> tuple[tuple[AppendixGroup, ...], int]:
    on_time = {i.ticket_id for i in due_items["closed_on_time"]}
    closed = {i.ticket_id for i in due_items["closed"]}
    deferred = {i.ticket_id for i in due_items["deferred"]}
    by_grid: dict[str, list[tuple[Item, str]]] = {}
    for item in due_items["due"]:
        home = refs[item.grid_id]
        top = level_ancestor(home, level, refs)
        if top is None:
            continue
        outcome = (
            "on_time"
            if item.ticket_id in on_time
            else "late"
            if item.ticket_id in closed
            else "deferred"
            if item.ticket_id in deferred
            else "open"
        )
        by_grid.setdefault(top.code, []).append((item, outcome))
    groups = []
    shown = 0
    total = sum(len(v) for v in by_grid.values())
    for row in rows:
        listed = by_grid.get(row.code, [])
        if not listed or shown >= limit:
            continue
        take = listed[: limit - shown]
        shown += len(take)
        groups.append(AppendixGroup(row, tuple(take)))
    return tuple(groups), total - shown


def _hotspots(
    app: App,
    spots: Counter[tuple[int, str]],
    refs: Mapping[int, GridRef],
    level: int,
    limit: int,
) -> tuple[HotSpot, ...]:
    rolled: Counter[tuple[str, str]] = Counter()
    for (grid_id, category), n in spots.items():
        top = level_ancestor(refs[grid_id], level, refs)
        if top is not None:
            rolled[(top.code, category)] += n
    codes = {g.code: g for g in refs.values()}
    ordered = sorted(rolled.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))[:limit]
    wf = app.workflow
    return tuple(
        HotSpot(
            code,
            codes[code].name,
            category,
            wf.categories[category].label
            if category in wf.categories
            else Names(category, category),
            n,
        )
        for (code, category), n in ordered
    )


def _oldest_overdue(
    conn: Connection, app: App, period: Period, refs: Mapping[int, GridRef], limit: int
) -> tuple[OverdueTicket, ...]:
    if limit == 0:
        return ()
    # From the stored stage deadlines: every stage instance late at the end of the week, escalated
    # or not, with the deadline it missed (not the time of its next rung).
    late = late_stages(period.end).subquery()
    rows = conn.execute(
        listing_select()
        .join(late, late.c.ticket_id == tickets.c.id)
        .add_columns(
            late.c.deadline.label("missed"),
            late.c.stage_no.label("late_stage_no"),
            late.c.grid_id.label("acting_grid_id"),
            late.c.owner_id.label("stage_owner_id"),
        )
        .order_by(late.c.deadline, tickets.c.id)
        .limit(limit)
    ).all()
    # The rungs those stage instances had climbed by the end of the week.
    x = escalations
    climbed: dict[tuple[int, int], list[Any]] = {}
    if rows:
        for e in conn.execute(
            select(x.c.ticket_id, x.c.stage_no, x.c.level, x.c.grid_id, x.c.supervisor_id)
            .where(x.c.ticket_id.in_([r.id for r in rows]), x.c.at < period.end)
            .order_by(x.c.at, x.c.id)
        ):
            climbed.setdefault((e.ticket_id, e.stage_no), []).append(e)
    wanted: set[int] = set()
    for r in rows:
        last = climbed.get((r.id, r.late_stage_no), [None])[-1]
        wanted.update(p for p in (r.stage_owner_id, last and last.supervisor_id) if p is not None)
        above = _nearest_led_above(refs[r.acting_grid_id], refs)
        if above is not None and above.leader_id is not None:
            wanted.add(above.leader_id)
    persons = (
        {
            p.id: p
            for p in conn.execute(
                select(people.c.id, people.c.name, people.c.phone).where(people.c.id.in_(wanted))
            )
        }
        if wanted
        else {}
    )

    def leader(grid: GridRef, person_id: int | None) -> Leader:
        p = persons.get(person_id) if person_id is not None else None
        return Leader(grid.code, grid.name, p.name if p else None, p.phone if p else None)

    wf = app.workflow
    out = []
    for r in rows:
        # Who had to act in the late stage, as stored when it started (the verifier in a check),
        # not the ticket's assignee or grid of today.
        acting_grid = refs[r.acting_grid_id]
        rungs = climbed.get((r.id, r.late_stage_no), [])
        if rungs:
            supervising: Leader | None = leader(refs[rungs[-1].grid_id], rungs[-1].supervisor_id)
        else:
            # No rung yet: the grid its first rung would go to (the ladder climbs from the grid
            # that must act) and that grid's leader today, as nobody was recorded.
            above = _nearest_led_above(acting_grid, refs)
            supervising = leader(above, above.leader_id) if above is not None else None
        out.append(
            OverdueTicket(
                ref=r.ref,
                title=r.title,
                category=wf.category(r.category).label,
                state=wf.states[r.state].label,
                grid_code=r.grid_code,
                grid_name=r.grid_name,
                due_at=r.missed,
                late=period.end - r.missed,
                escalation_level=len({e.level for e in rungs}),
                responsible=leader(acting_grid, r.stage_owner_id),
                supervising=supervising,
            )
        )
    return tuple(out)


def _nearest_led_above(grid: GridRef, refs: Mapping[int, GridRef]) -> GridRef | None:
    """The nearest grid above with a leader, read from the materialised path."""
    ids = [int(p) for p in grid.path.strip("/").split("/")][:-1]
    for gid in reversed(ids):
        g = refs.get(gid)
        if g is not None and g.leader_id is not None:
            return g
    return None


# --------------------------------------------------------------------------- the weekly job


def report_path(app: App, week: str, settings: ReportSettings | None = None) -> Path:
    cfg = settings or ReportSettings.from_config(app.settings.section("report"))
    return app.settings.resolve(cfg.out_dir) / f"weekly-{week}.html"


def grid_paths(conn: Connection) -> dict[str, str]:
    return dict(conn.execute(select(grids.c.code, grids.c.path)).all())
