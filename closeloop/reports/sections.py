"""The one structure of the weekly report: its numbered sections, in order.

`weekly_sections` is built once from the report data; the HTML, Markdown, XLSX (one sheet per
section) and JSON (`sections`) renderers all walk it, so every format has the same sections in
the same order with the same headings. A section with nothing to show is still there and says
so (`empty`); the appendix is the one section without a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from closeloop.reports.weekly import WeeklyReport

# The order of the report, everywhere.
SECTION_KEYS = (
    "summary",
    "boards",
    "example",
    "grids",
    "overdue",
    "hotspots",
    "campaigns",
    "patrols",
    "appendix",
)
UNNUMBERED = frozenset({"appendix"})
ZH_NUMERALS = "一二三四五六七八九十"


@dataclass(frozen=True)
class Section:
    key: str
    number: int | None  # None: the appendix
    empty: bool  # nothing to show this week: the section says so


def weekly_sections(report: WeeklyReport) -> tuple[Section, ...]:
    empty = {
        "summary": False,  # the zone's figures, zeros included, are always shown
        "boards": not report.red and not report.yellow,
        "example": report.example is None,
        "grids": not report.groups,
        "overdue": not report.overdue,
        "hotspots": not report.hotspots,
        "campaigns": not report.campaigns,
        "patrols": report.patrols.patrols == 0,
        "appendix": not report.appendix,
    }
    out = []
    number = 0
    for key in SECTION_KEYS:
        if key in UNNUMBERED:
            out.append(Section(key, None, empty[key]))
        else:
            number += 1
            out.append(Section(key, number, empty[key]))
    return tuple(out)


def heading(section: Section, t: Mapping[str, str], weeks: int) -> str:
    """The section's heading: "三、本周典型" / "3. Example of the week" / "附录：…"."""
    title = t[section.key].format(weeks=weeks)
    if section.number is None:
        return f"{t['appendix_prefix']}{title}"
    if t["lang"] == "zh-CN":
        return f"{ZH_NUMERALS[section.number - 1]}、{title}"
    return f"{section.number}. {title}"
