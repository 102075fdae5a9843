"""Pure rules of campaigns: checks of what is recorded, teams, weekly themes, progress rows."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from closeloop.csvfile import Problems, read_rows
from closeloop.months import parse_month
from closeloop.tickets import Invalid
from closeloop.workflow import ACTIONS, Names

FIXED_STATES = ("fixed", "verified", "closed")
OPEN_STATES = ("assigned", "deferred")
_TEAM_RE = re.compile(r"([^:：]{1,100})[:：](.+)")
THEME_MAX = 200
WEEKS_MAX = 5
FINDING_COLUMNS = ("grid", "category", "title", "description", "address", "lat", "lon")


@dataclass(frozen=True)
class Campaign:
    id: int
    month: str
    theme: str
    action: str  # the first of `actions`
    weekly_themes: tuple[str, ...]
    grids: tuple[tuple[str, str, str], ...]  # (code, name, path)
    actions: tuple[str, ...] = ()
    day: str | None = None  # YYYY-MM-DD
    focus: str | None = None
    teams: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # (team, ((handle, name)))

    def week_theme(self, moment: datetime, tz: ZoneInfo) -> str | None:
        """The theme of the week of the month holding ``moment`` (1st-7th is week 1)."""
        local = moment.astimezone(tz)
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


def check_month(month: str) -> list[Invalid]:
    try:
        parse_month(month)
    except ValueError:
        return [Invalid("campaign.bad_month", month=month)]
    return []


def resolve_month(month: str | None, day: str | None) -> tuple[str | None, list[Invalid]]:
    """The campaign month from --month and/or --date (they must agree)."""
    problems: list[Invalid] = []
    if day is not None:
        try:
            parsed = date.fromisoformat(day)
        except ValueError:
            return month, [Invalid("campaign.bad_date", day=day)]
        from_day = f"{parsed.year:04d}-{parsed.month:02d}"
        if month is not None and month != from_day:
            problems.append(Invalid("campaign.date_not_in_month", day=day, month=month))
        month = month or from_day
    if month is None:
        return None, [Invalid("campaign.no_date")]
    return month, problems + check_month(month)


def check_campaign(
    theme: str,
    actions: Sequence[str],
    grid_codes: Sequence[str],
    weekly_themes: Sequence[str],
    focus: str | None,
) -> list[Invalid]:
    problems = []
    known = ", ".join(ACTIONS)
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        problems += [Invalid("campaign.unknown_action", action=a, known=known) for a in unknown]
    if not actions:
        problems.append(Invalid("campaign.no_action", known=known))
    if not theme.strip():
        problems.append(Invalid("campaign.no_theme"))
    elif len(theme) > THEME_MAX:
        problems.append(Invalid("campaign.theme_long", n=THEME_MAX))
    if focus is not None and len(focus) > THEME_MAX:
        problems.append(Invalid("campaign.focus_long", n=THEME_MAX))
    if not grid_codes:
        problems.append(Invalid("campaign.no_grid"))
    if len([t for t in weekly_themes if t.strip()]) > WEEKS_MAX:
        problems.append(Invalid("campaign.weeks_many", n=WEEKS_MAX))
    return problems


def parse_teams(specs: Sequence[str]) -> tuple[dict[str, list[str]], list[Invalid]]:
    """`NAME:HANDLE,HANDLE...` per team; returns {team: handles} and the problems."""
    teams: dict[str, list[str]] = {}
    problems = []
    for spec in specs:
        m = _TEAM_RE.fullmatch(spec.strip())
        handles = [h.strip() for h in m.group(2).split(",") if h.strip()] if m else []
        if m is None or not handles:
            problems.append(Invalid("campaign.bad_team", spec=spec))
            continue
        name = m.group(1).strip()
        if name in teams:
            problems.append(Invalid("campaign.team_twice", name=name))
            continue
        teams[name] = list(dict.fromkeys(handles))
    return teams, problems


def action_names(actions: Sequence[str], known: Mapping[str, Names]) -> Names:
    names = [known.get(a) or Names(a, a) for a in actions]
    return Names("、".join(n.zh for n in names), ", ".join(n.en for n in names))


@dataclass(frozen=True)
class FindingRow:
    line: int
    grid: str
    category: str
    title: str
    description: str
    address: str | None
    lat: float | None
    lon: float | None


def read_findings_csv(text: str, problems: Problems) -> list[FindingRow]:
    """A campaign day's findings: grid,category,title[,description,address,lat,lon]. Returns
    the rows and adds every problem of the form to ``problems`` (the caller checks grids and
    categories)."""
    table = read_rows(text, FINDING_COLUMNS[:3], FINDING_COLUMNS[3:], problems=problems)
    rows = []
    for row in table.rows:
        coords: list[float | None] = []
        for name in ("lat", "lon"):
            raw = row[name]
            try:
                coords.append(float(raw) if raw else None)
            except ValueError:
                problems.add(
                    row.line, "findings.lat_nan" if name == "lat" else "findings.lon_nan", raw=raw
                )
                coords.append(None)
        if not row["title"]:
            problems.add(row.line, "findings.no_title")
        if not row["grid"]:
            problems.add(row.line, "findings.no_grid")
        rows.append(
            FindingRow(
                row.line,
                row["grid"],
                row["category"],
                row["title"],
                row["description"],
                row["address"] or None,
                coords[0],
                coords[1],
            )
        )
    return rows
