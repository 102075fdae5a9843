"""Use cases of the month's concentrated campaign (一月一村大会战), one transaction each.

A campaign is a day of a month, one or more villages (grids), one or more assault actions
(大清理 clean-up, 大整治 rectification, 大拆除 demolition, 大建设 construction), teams (兵分多路),
the month's focus and a theme per week. A ticket counts for a campaign when it was filed during
the campaign month (zone time) in the subtree of one of its grids, decided in SQL when progress
is read: a campaign recorded on the 3rd still counts the problems found on the 1st. The day's
findings are filed in bulk through `closeloop.service.submit_many`, tagged to the campaign
(ticket_links, source "campaign"), and counted apart as `tagged`.

Progress counts, per action (from each ticket's category) and per village: found (filed, not
dismissed), fixed (a fix recorded and not sent back: fixed, verified or closed) and still open.
found = fixed + open. States are those of now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, insert, select

from closeloop import service
from closeloop.app import App
from closeloop.campaigns.rules import (
    FIXED_STATES,
    Campaign,
    CampaignProgress,
    Progress,
    action_names,
    check_campaign,
    parse_teams,
    read_findings_csv,
    resolve_month,
)
from closeloop.csvfile import Problem, Problems, ProblemsRefused
from closeloop.db import read_only
from closeloop.errors import CodedError
from closeloop.grid import UnknownGrid, get_grid, in_subtree
from closeloop.models import (
    campaign_grids,
    campaign_team_members,
    campaigns,
    grids,
    people,
    ticket_links,
    tickets,
)
from closeloop.periods import month_bounds
from closeloop.tickets import Invalid, NotFound
from closeloop.workflow import ACTIONS, Names

__all__ = [
    "FIXED_STATES",
    "Campaign",
    "CampaignProgress",
    "Progress",
    "add_campaign",
    "file_findings",
    "get_campaign",
    "list_campaigns",
    "progress",
    "show_campaign",
]


def add_campaign(
    app: App,
    *,
    grid_codes: Sequence[str],
    theme: str,
    actions: Sequence[str],
    now: datetime,
    month: str | None = None,
    day: str | None = None,
    weekly_themes: Sequence[str] = (),
    teams: Sequence[str] = (),
    focus: str | None = None,
) -> Campaign:
    """Record a campaign; every problem is named at once and nothing is written on error.
    A village may have several campaigns in a month (一村一月 is `rectification`)."""
    month, problems = resolve_month(month, day)
    acts = list(dict.fromkeys(actions))
    problems += check_campaign(theme, acts, grid_codes, weekly_themes, focus)
    themes = tuple(t.strip() for t in weekly_themes if t.strip())
    team_handles, team_problems = parse_teams(teams)
    problems += team_problems
    codes = list(dict.fromkeys(grid_codes))
    with app.engine.begin() as conn:
        found = []
        for code in codes:
            try:
                found.append(get_grid(conn, code))
            except UnknownGrid:
                problems.append(Invalid("campaign.unknown_grid", code=code))
        problems += [Invalid("campaign.zone_grid", code=g.code) for g in found if g.level < 2]
        wanted = sorted({h for hs in team_handles.values() for h in hs})
        ids = {
            handle: pid
            for handle, pid in conn.execute(
                select(people.c.handle, people.c.id).where(people.c.handle.in_(wanted))
            )
        }
        problems += [Invalid("campaign.unknown_member", handle=h) for h in wanted if h not in ids]
        if problems:
            raise Invalid("campaign.problems", problems=problems)
        assert month is not None
        campaign_id = conn.execute(
            insert(campaigns)
            .values(
                month=month,
                day=day,
                theme=theme.strip(),
                action=acts[0],
                actions=acts,
                focus=(focus or "").strip() or None,
                weekly_themes=list(themes),
                created_at=now,
            )
            .returning(campaigns.c.id)
        ).scalar_one()
        conn.execute(
            insert(campaign_grids),
            [{"campaign_id": campaign_id, "grid_id": g.id, "month": month} for g in found],
        )
        members = [
            {"campaign_id": campaign_id, "team": team, "person_id": ids[h]}
            for team, handles in team_handles.items()
            for h in handles
        ]
        if members:
            conn.execute(insert(campaign_team_members), members)
        return _campaigns(conn, [campaign_id])[0]


def _campaigns(conn: Connection, ids: Sequence[int]) -> list[Campaign]:
    rows = conn.execute(
        select(campaigns)
        .where(campaigns.c.id.in_(list(ids)))
        .order_by(campaigns.c.month, campaigns.c.day, campaigns.c.id)
    ).all()
    members: dict[int, list[tuple[str, str, str]]] = {}
    teams: dict[int, dict[str, list[tuple[str, str]]]] = {}
    if rows:
        for cid, code, name, path in conn.execute(
            select(campaign_grids.c.campaign_id, grids.c.code, grids.c.name, grids.c.path)
            .select_from(campaign_grids.join(grids, grids.c.id == campaign_grids.c.grid_id))
            .where(campaign_grids.c.campaign_id.in_([r.id for r in rows]))
            .order_by(grids.c.code)
        ):
            members.setdefault(cid, []).append((code, name, path))
        for cid, team, handle, name in conn.execute(
            select(
                campaign_team_members.c.campaign_id,
                campaign_team_members.c.team,
                people.c.handle,
                people.c.name,
            )
            .select_from(
                campaign_team_members.join(people, people.c.id == campaign_team_members.c.person_id)
            )
            .where(campaign_team_members.c.campaign_id.in_([r.id for r in rows]))
            .order_by(campaign_team_members.c.id)
        ):
            teams.setdefault(cid, {}).setdefault(team, []).append((handle, name))
    return [
        Campaign(
            r.id,
            r.month,
            r.theme,
            r.action,
            tuple(r.weekly_themes or ()),
            tuple(members.get(r.id, ())),
            tuple(r.actions or (r.action,)),
            r.day,
            r.focus,
            tuple((t, tuple(hs)) for t, hs in teams.get(r.id, {}).items()),
        )
        for r in rows
    ]


def list_campaigns(conn: Connection, month: str | None = None) -> list[Campaign]:
    q = select(campaigns.c.id)
    if month is not None:
        q = q.where(campaigns.c.month == month)
    return _campaigns(conn, list(conn.execute(q).scalars()))


def get_campaign(conn: Connection, campaign_id: int) -> Campaign:
    found = _campaigns(conn, [campaign_id])
    if not found:
        raise NotFound("campaign.not_found", campaign_id=campaign_id)
    return found[0]


def progress(
    conn: Connection, app: App, campaign: Campaign, *, until: datetime | None = None
) -> CampaignProgress:
    """Found, fixed and open for the campaign's tickets filed before ``until`` (state now)."""
    start, end = month_bounds(campaign.month, app.tz)
    if until is not None:
        end = min(end, until)
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
                tickets.c.created_at >= start,
                tickets.c.created_at < end,
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
        action_name=action_names(campaign.actions or (campaign.action,), wf.actions),
        # The last moment of the window: its end is exclusive.
        week_theme=campaign.week_theme(end - timedelta(seconds=1), app.tz),
        by_action=action_rows,
        by_grid=grid_rows,
        total=total,
    )


def _counts(p: Progress) -> dict[str, int]:
    return {"found": p.found, "fixed": p.fixed, "open": p.open}


def describe(conn: Connection, app: App, c: Campaign, now: datetime) -> dict[str, Any]:
    """A campaign with its progress (the whole month, states of now), as `campaign show --json`
    prints it; the week theme is that of `now`."""
    p = progress(conn, app, c)
    tagged = conn.execute(
        select(tickets.c.ref, tickets.c.state)
        .select_from(ticket_links.join(tickets, tickets.c.id == ticket_links.c.ticket_id))
        .where(ticket_links.c.kind == "campaign", ticket_links.c.target_id == c.id)
        .order_by(tickets.c.id)
    ).all()
    return {
        "id": c.id,
        "month": c.month,
        "date": c.day,
        "theme": c.theme,
        "focus": c.focus,
        "actions": list(c.actions),
        "action": c.action,
        "weekly_themes": list(c.weekly_themes),
        "week_theme": c.week_theme(now, app.tz),
        "grids": [code for code, _, _ in c.grids],
        "grid_names": {code: name for code, name, _ in c.grids},
        "teams": [
            {"name": team, "members": [{"handle": h, "name": n} for h, n in people_]}
            for team, people_ in c.teams
        ],
        **_counts(p.total),
        "by_grid": {g.key: _counts(g) for g in p.by_grid},
        "by_action": {a.key: _counts(a) for a in p.by_action},
        "tagged": [{"ref": r.ref, "state": r.state} for r in tagged],
    }


def show_campaign(app: App, campaign_id: int, now: datetime) -> dict[str, Any]:
    with read_only(app.engine) as conn:
        return describe(conn, app, get_campaign(conn, campaign_id), now)


def file_findings(
    app: App,
    campaign_id: int,
    text: str,
    now: datetime,
    *,
    by: str | None = None,
    at: datetime | None = None,
) -> list[str]:
    """A campaign day's findings from CSV (grid,category,title[,description,address,lat,lon]),
    each a ticket tagged to the campaign; a bad line refuses the whole file, every problem named
    with its line, and nothing is filed."""
    problems = Problems()
    rows = read_findings_csv(text, problems)
    wrong_by: list[Problem] = []
    with read_only(app.engine) as conn:
        c = get_campaign(conn, campaign_id)
        reporter = None
        if by is not None:
            reporter = conn.execute(select(people.c.name).where(people.c.handle == by)).scalar()
            if reporter is None:
                wrong_by.append(Problem(None, "findings.by_unknown", {"handle": by}))
        paths = [path for _, _, path in c.grids]
        for r in rows:
            if not r.grid:
                continue
            try:
                g = get_grid(conn, r.grid)
            except UnknownGrid:
                problems.add(r.line, "findings.unknown_grid", code=r.grid)
                continue
            if not any(g.path.startswith(p) for p in paths):
                problems.add(
                    r.line,
                    "campaign.grid_outside",
                    code=r.grid,
                    villages=", ".join(code for code, _, _ in c.grids),
                )
            if r.category not in app.workflow.categories:
                problems.add(
                    r.line,
                    "findings.category",
                    category=r.category,
                    known=", ".join(app.workflow.categories),
                )
    if problems or wrong_by:
        raise ProblemsRefused("campaign.findings_refused", problems=wrong_by + problems.found())
    found = [
        service.NewProblem(
            grid=r.grid,
            category=r.category,
            title=r.title,
            description=r.description,
            address=r.address,
            lat=r.lat,
            lon=r.lon,
            reporter=reporter or c.theme,
            source="campaign",
            link=("campaign", campaign_id),
        )
        for r in rows
    ]
    try:
        return service.submit_many(app, found, now, at=at)
    except Invalid as exc:
        # "problem N" is the N-th row of the file: name its line, and say its own error.
        inner = exc.params.get("problem")
        if exc.code != "ticket.problem_line" or not isinstance(inner, CodedError):
            raise
        at_line = Problems()
        at_line.add_error(rows[exc.params["n"] - 1].line, inner)
        raise ProblemsRefused("campaign.findings_refused", problems=at_line.found()) from None


def file_finding(
    app: App, campaign_id: int, problem: service.NewProblem, now: datetime, *, by: str
) -> str:
    """One finding of a campaign day from the phone form (the campaign preselected): a ticket
    tagged to the campaign, on a grid of one of its villages."""
    with read_only(app.engine) as conn:
        c = get_campaign(conn, campaign_id)
        name = conn.execute(select(people.c.name).where(people.c.handle == by)).scalar()
        try:
            g = get_grid(conn, problem.grid)
        except UnknownGrid as exc:
            raise Invalid(exc.code, **exc.params) from None
    if not any(g.path.startswith(path) for _, _, path in c.grids):
        raise Invalid(
            "campaign.grid_outside", code=g.code, villages=", ".join(code for code, _, _ in c.grids)
        )
    return service.submit(
        app,
        replace(problem, source="campaign", link=("campaign", c.id), reporter=name or by),
        now,
    )
