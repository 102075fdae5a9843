"""Pure rules of meetings: the kinds, what an agenda holds, the minutes as Markdown and HTML."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from closeloop.tickets import Invalid

KINDS: Mapping[str, tuple[str, str]] = {
    "example": ("示范例会", "example meeting"),
    "site": ("现场会", "on-site meeting"),
    "deployment": ("部署会", "deployment meeting"),
    "learning": ("取经交流会", "learning visit"),
}
WEEK_RE = re.compile(r"\d{4}-W\d{2}")
ATTENDEES_MAX = 200

WORDS = {
    "zh_CN": {
        "minutes": "会议纪要",
        "at": "时间",
        "place": "地点",
        "attendees": "参会人员",
        "agenda": "议程",
        "week": "依据周报",
        "late": "超期未办",
        "hotspots": "问题反复点",
        "example": "本周示范",
        "lagging": "落后网格",
        "campaigns": "大会战进展",
        "open_decisions": "上次会议未办结事项",
        "decisions": "会议决定（交办事项）",
        "none": "无",
        "due": "期限",
        "state": "状态",
        "found": "发现",
        "fixed": "已改",
        "open": "未改",
    },
    "en": {
        "minutes": "Minutes",
        "at": "When",
        "place": "Where",
        "attendees": "Attendees",
        "agenda": "Agenda",
        "week": "From the weekly report",
        "late": "Late tickets",
        "hotspots": "Recurring problems",
        "example": "Example of the week",
        "lagging": "Lagging grids",
        "campaigns": "Campaign progress",
        "open_decisions": "Decisions of the last meeting still open",
        "decisions": "Decisions (tickets handed over)",
        "none": "none",
        "due": "due",
        "state": "state",
        "found": "found",
        "fixed": "fixed",
        "open": "open",
    },
}


def kind_name(kind: str, locale: str = "zh_CN") -> str:
    zh, en = KINDS[kind]
    return en if locale.startswith("en") else zh


def check_meeting(kind: str, attendees: Sequence[str], week: str | None) -> list[Invalid]:
    problems = []
    if kind not in KINDS:
        problems.append(Invalid("meeting.unknown_kind", kind=kind, kinds=", ".join(KINDS)))
    if not attendees:
        problems.append(Invalid("meeting.no_attendee"))
    if len(attendees) > ATTENDEES_MAX:
        problems.append(Invalid("meeting.too_many", n=ATTENDEES_MAX))
    twice = sorted({a for a in attendees if list(attendees).count(a) > 1})
    if twice:
        problems.append(Invalid("meeting.attendee_twice", handles=", ".join(twice)))
    if week is not None and not WEEK_RE.fullmatch(week):
        problems.append(Invalid("meeting.bad_week", week=week))
    return problems


def open_decision(state: str, final_states: frozenset[str]) -> bool:
    """A decision is done when its ticket reached a final state (closed, dismissed)."""
    return state not in final_states


# The minutes' templates: minutes.md.j2 (not escaped) and minutes.html.j2 (escaped).
_ENV = Environment(
    loader=PackageLoader("closeloop.meetings", "templates"),
    autoescape=select_autoescape(["html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def minutes_title(meeting: Mapping[str, Any], locale: str) -> str:
    w = WORDS["en" if locale.startswith("en") else "zh_CN"]
    sep = " · "
    return f"{w['minutes']}{sep}{kind_name(meeting['kind'], locale)}{sep}{meeting['at'][:10]}"


def render_minutes(meeting: Mapping[str, Any], fmt: str, locale: str = "zh_CN") -> str:
    """The minutes of a meeting (as `service.show_meeting` describes it) in Markdown or HTML."""
    if fmt not in ("md", "html"):
        raise ValueError(f"unknown format {fmt!r}; formats: md, html")
    w = WORDS["en" if locale.startswith("en") else "zh_CN"]
    return _ENV.get_template(f"minutes.{fmt}.j2").render(
        title=minutes_title(meeting, locale), m=meeting, a=meeting["agenda"], w=w, locale=locale
    )


def minutes_summary(meeting: Mapping[str, Any], locale: str = "zh_CN") -> list[str]:
    """A few lines for the notice: the decisions with their grid and deadline."""
    w = WORDS["en" if locale.startswith("en") else "zh_CN"]
    lines = [
        f"{d['ref']} {d['title']} ({d['grid']}; {w['due']} {d['due_at']})"
        for d in meeting["decisions"]
    ]
    return lines or [f"{w['decisions']}: {w['none']}"]
