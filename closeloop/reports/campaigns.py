"""The month's concentrated campaign (一月一村大会战): record it, list it, measure its progress.

A campaign is a month, one or more villages (grids), a theme, the assault action it is about
(大清理 clean-up, 大整治 rectification, 大拆除 demolition, 大建设 construction) and optionally
a theme per week. A ticket belongs to a campaign when it was filed during the campaign month
(zone time) in the subtree of one of its grids. That is decided in SQL when the report is made
rather than stamped on the ticket when it is filed: a
campaign recorded on the 3rd still counts the problems found on the 1st, and filing a problem
needs no knowledge of campaigns.

Progress counts, per action (from each ticket's category) and per village: found (filed, not
dismissed), fixed (a fix recorded and not sent back: fixed, verified or closed) and still open
(assigned or deferred). found = fixed + open. States are those of now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, func, insert, select

from closeloop import grid as grid_mod
from closeloop.bootstrap import App
from closeloop.grid import UnknownGrid, in_subtree
from closeloop.models import campaign_grids, campaigns, grids, tickets
from closeloop.months import parse_month
from closeloop.reports.indicators import Period, month_period
from closeloop.tickets import Invalid
from closeloop.workflow import ACTIONS, Names

FIXED_STATES = ("fixed", "verified", "closed")
OPEN_STATES = ("assigned", "deferred")


@dataclass(frozen=True)
class Campaign:
    id: int
    month: str
    theme: str
    action: str
    weekly_themes: tuple[str, ...]
    grids: tuple[tuple[str, str, str], ...]  # (code, name, path)

    def week_theme(self, moment: datetime, app: App) -> str | None:
        """The theme of the week of the month holding ``moment`` (1st-7th is week 1)."""
        local = moment.astimezone(app.tz)
        if f"{local.year:04d}-{local.month:02d}" != self.month or not self.weekly_themes:
            return None
        index = (local.day - 1) // 7
        return self.weekly_themes[min(index, len(self.weekly_themes) - 1)]


@dataclass(frozen=True)
class Progress:
    key: str  # an action, or a grid code
    name: Names
    found: int
    fixed: int

    @property
    def open(self) -> int:
        return self.found - self.fixed


@dataclass(frozen=True)
class CampaignProgress:
    campaign: Campaign
    action_name: Names
    week_theme: str | None
    by_action: tuple[Progress, ...]
    by_grid: tuple[Progress, ...]
    total: Progress


def add_campaign(
    app: App,
    *,
    month: str,
    grid_codes: Sequence[str],
    theme: str,
    action: str,
    weekly_themes: Sequence[str] = (),
    now: datetime,
) -> Campaign:
    """Record a campaign; every problem is named at once and nothing is written on error."""
    problems = []
    try:
        parse_month(month)
    except ValueError as exc:
        problems.append(str(exc))
    if action not in ACTIONS:
        problems.append(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
    if not theme.strip():
        problems.append("a theme is needed")
    elif len(theme) > 200:
        problems.append("the theme is longer than 200 characters")
    if not grid_codes:
        problems.append("at least one --grid is needed")
    themes = tuple(t.strip() for t in weekly_themes if t.strip())
    if len(themes) > 5:
        problems.append("a month has at most 5 weekly themes")
    codes = list(dict.fromkeys(grid_codes))
    with app.engine.begin() as conn:
        found = []
        for code in codes:
            try:
                found.append(grid_mod.get_grid(conn, code))
            except UnknownGrid as exc:
                problems.append(str(exc))
        for g in found:
            if g.level < 2:
                problems.append(f"grid {g.code} is the whole zone, not a village")
        if found and not problems:
            taken = conn.execute(
                select(grids.c.code, campaigns.c.theme)
                .select_from(
                    campaign_grids.join(
                        campaigns, campaigns.c.id == campaign_grids.c.campaign_id
                    ).join(grids, grids.c.id == campaign_grids.c.grid_id)
                )
                .where(
                    campaign_grids.c.month == month,
                    campaign_grids.c.grid_id.in_([g.id for g in found]),
                )
            ).all()
            problems += [
                f"grid {code} already has the campaign '{other}' in {month}"
                for code, other in taken
            ]
        if problems:
            raise Invalid("; ".join(problems))
        campaign_id = conn.execute(
            insert(campaigns)
            .values(
                month=month,
                theme=theme.strip(),
                action=action,
                weekly_themes=list(themes),
                created_at=now,
            )
            .returning(campaigns.c.id)
        ).scalar_one()
        conn.execute(
            insert(campaign_grids),
            [{"campaign_id": campaign_id, "grid_id": g.id, "month": month} for g in found],
        )
    return Campaign(
        campaign_id,
        month,
        theme.strip(),
        action,
        themes,
        tuple((g.code, g.name, g.path) for g in found),
    )


def list_campaigns(conn: Connection, month: str | None = None) -> list[Campaign]:
    q = select(campaigns).order_by(campaigns.c.month, campaigns.c.id)
    if month is not None:
        q = q.where(campaigns.c.month == month)
    rows = conn.execute(q).all()
    members: dict[int, list[tuple[str, str, str]]] = {}
    if rows:
        for cid, code, name, path in conn.execute(
            select(campaign_grids.c.campaign_id, grids.c.code, grids.c.name, grids.c.path)
            .select_from(campaign_grids.join(grids, grids.c.id == campaign_grids.c.grid_id))
            .where(campaign_grids.c.campaign_id.in_([r.id for r in rows]))
            .order_by(grids.c.code)
        ):
            members.setdefault(cid, []).append((code, name, path))
    return [
        Campaign(
            r.id,
            r.month,
            r.theme,
            r.action,
            tuple(r.weekly_themes or ()),
            tuple(members.get(r.id, ())),
        )
        for r in rows
    ]


def _window(app: App, campaign: Campaign, until: datetime | None) -> Period:
    month = month_period(campaign.month, app.tz)
    end = month.end if until is None else min(month.end, until)
    return Period(campaign.month, month.start, end)


def progress(
    conn: Connection, app: App, campaign: Campaign, *, until: datetime | None = None
) -> CampaignProgress:
    """Found, fixed and open for the campaign's tickets filed before ``until`` (state now)."""
    window = _window(app, campaign, until)
    fixed = func.sum(case((tickets.c.state.in_(FIXED_STATES), 1), else_=0))
    wf = app.workflow
    by_action: dict[str, list[int]] = {a: [0, 0] for a in ACTIONS}
    by_grid: dict[str, list[int]] = {code: [0, 0] for code, _, _ in campaign.grids}
    # One query per campaign grid (a campaign has a handful): each is one subtree range.
    for code, _, path in campaign.grids:
        rows = conn.execute(
            select(tickets.c.category, func.count(), fixed)
            .select_from(tickets.join(grids, grids.c.id == tickets.c.grid_id))
            .where(
                in_subtree(grids.c.path, path),
                tickets.c.created_at >= window.start,
                tickets.c.created_at < window.end,
                tickets.c.state != "dismissed",
            )
            .group_by(tickets.c.category)
        )
        for category, n, n_fixed in rows:
            action = wf.categories[category].action if category in wf.categories else "other"
            counts = by_action.setdefault(action, [0, 0])
            for target in (counts, by_grid[code]):
                target[0] += int(n)
                target[1] += int(n_fixed or 0)
    names = {code: name for code, name, _ in campaign.grids}

    def action_name(a: str) -> Names:
        return wf.actions.get(a) or Names(a, a)

    action_rows = tuple(Progress(a, action_name(a), f, x) for a, (f, x) in by_action.items())
    grid_rows = tuple(Progress(c, Names(names[c], names[c]), f, x) for c, (f, x) in by_grid.items())
    total = Progress(
        "total",
        Names("合计", "Total"),
        sum(p.found for p in grid_rows),
        sum(p.fixed for p in grid_rows),
    )
    return CampaignProgress(
        campaign=campaign,
        action_name=action_name(campaign.action),
        # The last moment of the window: its end is exclusive.
        week_theme=campaign.week_theme(window.end - timedelta(seconds=1), app),
        by_action=action_rows,
        by_grid=grid_rows,
        total=total,
    )
