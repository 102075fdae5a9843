"""The one structure of the weekly report: its numbered sections and its appendices, in order.

`weekly_sections` is built once from the report data; the HTML, Markdown, XLSX (one sheet per
section) and JSON (`sections`) renderers all walk it, so every format has the same sections in
the same order with the same headings. A section with nothing to show is still there and says
so (`empty`).

What the example meeting goes through comes first (numbered); what is looked up comes after,
as appendices: the table of every grid (117 small grids in the demo zone, pages of them) and
the list of the week's due tickets. The handout (PDF) is the same document, so the appendices
start on pages of their own.
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
    "overdue",
    "hotspots",
    "campaigns",
    "patrols",
    "decisions",
    "assessment",
    "grids",
    "appendix",
)
APPENDICES = ("grids", "appendix")
ZH_NUMERALS = "一二三四五六七八九十"


@dataclass(frozen=True)
class Section:
    key: str
    number: int | None  # None: an appendix
    empty: bool  # nothing to show this week: the section says so
    appendix: int | None = None  # 1, 2 …: which appendix

    @property
    def ordinal(self) -> int:
        """The section's number, or the appendix's."""
        return self.number if self.number is not None else self.appendix or 0


def weekly_sections(report: WeeklyReport) -> tuple[Section, ...]:
    meeting = report.previous_meeting
    empty = {
        "summary": False,  # the zone's figures, zeros included, are always shown
        "boards": not report.red and not report.yellow,
        "example": report.example is None,
        "overdue": not report.overdue,
        "hotspots": not report.hotspots,
        "campaigns": not report.campaigns,
        "patrols": report.patrols.patrols == 0,
        "decisions": meeting is None or not meeting.open,
        "assessment": not report.groups,
        "grids": not report.groups,
        "appendix": not report.appendix,
    }
    out = []
    number = appendix = 0
    for key in SECTION_KEYS:
        if key in APPENDICES:
            appendix += 1
            out.append(Section(key, None, empty[key], appendix))
        else:
            number += 1
            out.append(Section(key, number, empty[key]))
    return tuple(out)


def heading(section: Section, t: Mapping[str, str], weeks: int) -> str:
    """The section's heading: "三、本周典型" / "3. Example of the week" / "附录一：各网格指标"."""
    title = t[section.key].format(weeks=weeks)
    zh = t["lang"] == "zh-CN"
    n = section.ordinal
    mark = ZH_NUMERALS[n - 1] if zh else str(n)
    if section.number is None:
        return t["appendix_prefix"].format(n=mark) + title
    return f"{mark}、{title}" if zh else f"{mark}. {title}"
