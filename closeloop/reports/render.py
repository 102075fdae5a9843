"""Render the weekly report and the exam board as HTML, Markdown, XLSX or JSON.

- html: one self-contained file (inline CSS and SVG charts, no script, no font files: the
  browser picks a font with the Chinese glyphs), laid out for A4 portrait via `@page`. Every
  number in the grid tables carries the `closeloop report items` command that lists its tickets
  (tooltip), and due/closed figures link to the appendix listing the week's due tickets.
- md: a short version for chat groups (the zone, the lists, the example, the oldest overdue).
- xlsx: one sheet per table, numbers as numbers (rates as fractions with a percent format).
- json: `WeeklyReport.as_json()` / `BoardView.as_json()`.

Chinese (zh_CN) by default, English with locale "en". Templates live in `templates/`, Jinja2
with autoescaping for HTML.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from closeloop.geo import svgmap
from closeloop.reports import charts
from closeloop.reports.indicators import ESCALATION_LEVELS, Figures
from closeloop.reports.sections import heading, weekly_sections
from closeloop.reports.weekly import Example, PreviousMeeting, Reason, WeeklyReport
from closeloop.tickets import Invalid
from closeloop.workflow import Names, Workflow
from closeloop.xlsxsafe import safe_row

FORMATS = ("html", "md", "xlsx", "json")
LOCALES = ("zh_CN", "en")
TEMPLATES = Path(__file__).parent / "templates"

# Column order of the grid tables, everywhere.
GRID_COLUMNS = (
    "reported",
    "dispatched",
    "due",
    "deferred",
    "closed",
    "closed_on_time",
    "closure_rate",
    "on_time_rate",
    "rework_rate",
    "extension_rate",
    "overdue_open",
    "escalations",
    "recurrences",
)
RATES = ("closure_rate", "on_time_rate", "rework_rate", "extension_rate")
APPENDIX_FIGURES = ("due", "deferred", "closed", "closed_on_time")
# Columns of the assessment table (考核指标), everywhere, and the figure each one traces to
# (`closeloop report items --figure NAME`: a rate's numerator).
ASSESSMENT_COLUMNS = (
    "dispose_rate",
    "on_time_dispose_rate",
    "late_disposed",
    "late_closed",
    "on_time_verify_rate",
    "failed_verifications",
    "urgent",
    "supervised_on_time_rate",
    "satisfaction_rate",
    "solved_rate",
    "composite",
    "grade",
)
ASSESSMENT_RATES = (
    "dispose_rate",
    "on_time_dispose_rate",
    "on_time_verify_rate",
    "supervised_on_time_rate",
    "satisfaction_rate",
    "solved_rate",
)
ASSESSMENT_TRACE = {
    "dispose_rate": "disposed",
    "on_time_dispose_rate": "disposed_on_time",
    "late_disposed": "late_disposed",
    "late_closed": "late_closed",
    "on_time_verify_rate": "verified_on_time",
    "failed_verifications": "failed_verifications",
    "urgent": "urgent_closed",
    "supervised_on_time_rate": "supervised_on_time",
    "satisfaction_rate": "satisfied",
    "solved_rate": "solved",
}
SOURCES = ("public", "patrol", "hotline", "leader", "media", "meeting", "campaign", "inspection")

LABELS: Mapping[str, Mapping[str, str]] = {
    "zh_CN": {
        "lang": "zh-CN",
        # Punctuation differs between the languages (full-width in Chinese).
        "p_colon": "：",
        "p_open": "（",
        "p_close": "）",
        "p_comma": "，",
        "title": "{zone}环境整治工作周报",
        "week": "{year}年第{week}周（{start}至{end}）",
        "generated": "生成时间",
        "level_3": "小网格（村、联企小网格、社区片区）",
        "level_2": "中网格",
        "level_4": "微网格",
        "summary": "全区概况",
        "boards": "红榜与黄榜",
        "example": "本周典型",
        "grids": "各网格指标",
        "overdue": "超期未结案件（最久的）",
        "hotspots": "复发热点（近{weeks}周）",
        "map_caption": "本周各网格按期办结率；圆点为超期未结案件（颜色为督办级别），紫圈为复发热点",
        "campaigns": "本月大会战进展",
        "patrols": "本周巡查",
        "patrol_text": "本周巡查{patrols}次，签到{visits}次；{level}共{total}个，"
        "已巡查{seen}个，未巡查{unseen}个。",
        "patrol_visits": "签到次数",
        "patrol_by_level": "按巡查人层级（大/中/小/微网格）",
        "patrol_last": "最近一次",
        "patrol_unvisited": "本周未巡查",
        "patrol_more": "等{n}个",
        "decisions": "上次会议未办结事项",
        "no_meeting": "本周无上次会议事项：尚未登记会议。",
        "no_decisions": "本周无未办结事项：上次会议（{at} {kind}）交办的{n}件均已办结。",
        "meeting_line": "上次会议：{at} {kind}，交办{n}件，未办结{open}件。",
        "past_due": "已过期限",
        "appendix": "本周应结案件清单",
        "appendix_prefix": "附录{n}：",
        "trend_chart": "近{weeks}周全区结案率与按期结案率",
        "group_chart": "各中网格按期结案率",
        "heat_chart": "复发热点：网格 × 问题类别",
        "figure": "指标",
        "this_week": "本周",
        "previous_mean": "前{weeks}周平均",
        "previous_total": "前{weeks}周合计",
        "previous_weeks": "前{weeks}周",
        "change": "变化",
        "reported": "受理数",
        "dispatched": "派遣数",
        "due": "应结案数",
        "deferred": "缓办数",
        "closed": "结案数",
        "closed_on_time": "按期结案数",
        "closure_rate": "结案率",
        "on_time_rate": "按期结案率",
        "rework_rate": "返工率",
        "extension_rate": "延期率",
        "overdue_open": "超期未结",
        "escalations": "升级督办",
        "recurrences": "复发数",
        "grid": "网格",
        "group_total": "小计",
        "zone_total": "全区合计",
        "red": "红榜（按期结案率最高）",
        "yellow": "黄榜（按期结案率最低）",
        "rank": "名次",
        "none": "无",
        "no_red": "本周无符合条件的红榜网格（应结案数不少于{min_due}件且按期结案率高于全区）。",
        "no_yellow": "本周无符合条件的黄榜网格（应结案数不少于{min_due}件且按期结案率低于全区）。",
        "no_example": "本周无典型：没有网格的按期结案率高于其前几周水平。",
        "why_intro": "{name}（{code}）本周",
        "why_rate": "{figure}由前{weeks}周的{then}升至{now}（全区{zone}）",
        "why_closed": "结案{now}件，前{weeks}周平均每周{then}件",
        "why_overdue_open": "周末超期未结{now}件，前{weeks}周平均{then}件",
        "why_escalations": "升级督办{now}次，前{weeks}周平均每周{then}次",
        "why_sep": "；",
        "why_end": "。",
        "why_none": "按期结案率{now}，前{weeks}周合计{then}（全区{zone}）",
        "zone_this_week": "全区本周",
        "ref": "编号",
        "ticket": "问题",
        "category": "类别",
        "state": "状态",
        "deadline": "期限",
        "late": "已超期",
        "responsible": "责任人",
        "supervising": "督办人",
        "level": "督办级别",
        "count": "次数",
        "no_overdue": "本周无超期未结案件。",
        "no_hotspots": "本周无复发热点：近期无复发问题。",
        "no_campaigns": "本周无大会战：本月未登记大会战。",
        "theme": "主题",
        "action": "行动",
        "week_theme": "本周主题",
        "found": "发现",
        "fixed": "已整改",
        "open": "未整改",
        "by_action": "按行动",
        "by_grid": "按村",
        "outcome": "结果",
        "on_time": "按期结案",
        "on_time_short": "按期",
        "late_closed": "逾期结案",
        "open_outcome": "未结案",
        "deferred_outcome": "缓办",
        "closed_at": "结案时间",
        "left_out": "另有{n}件未列出，请用 closeloop report items 查询。",
        "trace": "表中每个数字都可追溯到具体案件：鼠标悬停可见查询命令，"
        "应结案、缓办、结案数链接到附录。",
        "definitions": "口径：应结案数为整改期限（含批准延期、扣除缓办暂停时间）落在本周的案件；"
        "结案率＝结案数÷（应结案数－缓办数）；按期结案指被采纳的整改在期限内完成；"
        "返工率＝被退回返工的应结案件÷应结案数；延期率＝获批延期的应结案件÷应结案数。",
        "days": "{d}天{h}小时",
        "hours": "{h}小时",
        "pp": "个百分点",
        "cleared": "本周整改的问题",
        "example_note": "督查选定理由",
        "no_cleared": "本周无已结案问题。",
        "photo_before": "整改前（上报照片）",
        "photo_after": "整改后（整改照片）",
        "no_patrols": "本周无巡查记录。",
        "no_grids": "本周无网格数据。",
        "no_appendix": "本周无应结案件。",
        "board": "榜",
        "group_line": "{name}：按期结案率{rate}，应结案{due}，超期未结{overdue}",
        "appendix_md": "本周应结案{n}件，清单见完整报告或：",
        "assessment": "考核指标",
        "a_dispose_rate": "处置率",
        "a_on_time_dispose_rate": "按期处置率",
        "a_late_disposed": "超期处置",
        "a_late_closed": "超期结案",
        "a_on_time_verify_rate": "按时核查率",
        "a_failed_verifications": "核查3次以上未通过",
        "a_urgent": "紧急件结案",
        "a_supervised_on_time_rate": "督办按期完成率",
        "a_satisfaction_rate": "满意率",
        "a_solved_rate": "解决率",
        "a_composite": "综合指标值",
        "a_grade": "等级",
        "sources": "案件来源",
        "source_public": "群众举报",
        "source_patrol": "巡查发现",
        "source_hotline": "热线（12345/12319）",
        "source_leader": "领导交办",
        "source_media": "媒体曝光",
        "source_meeting": "会议交办",
        "source_campaign": "大会战",
        "source_inspection": "督查检查",
        "top_categories": "高发问题（前{n}类）",
        "year_ago": "去年同期",
        "yoy": "同比",
        "no_assessment": "本周无网格数据。",
        "ungraded": "另有{n}个网格本周无应结案件，不评分（数据见附录一及 JSON）。",
        "assessment_definitions": "口径：处置率＝处置数÷（应结案数－缓办数），"
        "处置指最后一次整改未被退回或重新打开；"
        "按期处置率＝期限内处置数÷（应结案数－缓办数）；"
        "按时核查率＝在核查期限内作出核查结论（通过或退回）的核查÷应核查数；"
        "督办按期完成率＝在督办期限内完成的督办÷到期督办数；"
        "满意率＝（满意＋基本满意）÷回访数；解决率＝已解决÷回访数；"
        "紧急件结案率＝紧急件结案数÷（紧急件应结案数－缓办）；"
        "综合指标值＝{formula}，等级{grades}。",
    },
    "en": {
        "lang": "en",
        "p_colon": ": ",
        "p_open": " (",
        "p_close": ")",
        "p_comma": ", ",
        "title": "{zone}: weekly environmental work report",
        "week": "week {year}-W{week:02d} ({start} to {end})",
        "generated": "Generated",
        "level_3": "small grids (villages, enterprise grids, community sections)",
        "level_2": "medium grids",
        "level_4": "micro grids",
        "summary": "Zone summary",
        "boards": "Red and yellow lists",
        "example": "Example of the week",
        "grids": "Indicators by grid",
        "overdue": "Oldest overdue tickets",
        "hotspots": "Recurrence hot spots (last {weeks} weeks)",
        "map_caption": "On-time closure rate of the week by grid; dots are overdue tickets "
        "(colour: supervision level), purple rings recurrence hot spots",
        "campaigns": "The month's campaign",
        "patrols": "Patrols of the week",
        "patrol_text": "{patrols} patrols, {visits} check-ins this week; of {total} {level},"
        " {seen} visited and {unseen} not.",
        "patrol_visits": "Check-ins",
        "patrol_by_level": "By the patroller's level (zone/medium/small/micro)",
        "patrol_last": "Last",
        "patrol_unvisited": "Not visited this week",
        "patrol_more": "and {n} more",
        "decisions": "Open decisions of the previous meeting",
        "no_meeting": "None this week: no meeting recorded yet.",
        "no_decisions": "None this week: the {n} decisions of the previous meeting ({at} {kind})"
        " are all done.",
        "meeting_line": "Previous meeting: {at} {kind}; {n} decisions handed over, {open} still"
        " open.",
        "past_due": "past its deadline",
        "appendix": "Tickets due this week",
        "appendix_prefix": "Appendix {n}: ",
        "trend_chart": "Zone closure and on-time rates, last {weeks} weeks",
        "group_chart": "On-time closure by medium grid",
        "heat_chart": "Recurrence hot spots: grid × category",
        "figure": "Figure",
        "this_week": "This week",
        "previous_mean": "Previous {weeks} weeks",
        "previous_total": "Previous {weeks} weeks, total",
        "previous_weeks": "Previous {weeks} weeks",
        "change": "Change",
        "reported": "Reported",
        "dispatched": "Dispatched",
        "due": "Due",
        "deferred": "Deferred",
        "closed": "Closed",
        "closed_on_time": "Closed on time",
        "closure_rate": "Closure rate",
        "on_time_rate": "On-time rate",
        "rework_rate": "Rework rate",
        "extension_rate": "Extension rate",
        "overdue_open": "Overdue open",
        "escalations": "Escalations",
        "recurrences": "Recurrences",
        "grid": "Grid",
        "group_total": "Subtotal",
        "zone_total": "Zone total",
        "red": "Red list (best on-time closure)",
        "yellow": "Yellow list (lagging)",
        "rank": "Rank",
        "none": "none",
        "no_red": "None this week: no grid with at least {min_due} due and an on-time rate"
        " above the zone's.",
        "no_yellow": "None this week: no grid with at least {min_due} due and an on-time rate"
        " below the zone's.",
        "no_example": "None this week: no grid's on-time rate rose above its previous weeks.",
        "why_intro": "{name} ({code}) this week: ",
        "why_rate": "{figure} up from {then} over the previous {weeks} weeks to {now}"
        " (zone: {zone})",
        "why_closed": "{now} problems closed, against {then} a week over the previous {weeks}"
        " weeks",
        "why_overdue_open": "{now} overdue open at the end of the week, against {then} on average"
        " over the previous {weeks} weeks",
        "why_escalations": "{now} escalations, against {then} a week over the previous {weeks}"
        " weeks",
        "why_sep": "; ",
        "why_end": ".",
        "why_none": "on-time rate {now}, {then} over the previous {weeks} weeks (zone: {zone})",
        "zone_this_week": "Zone this week",
        "ref": "Ref",
        "ticket": "Problem",
        "category": "Category",
        "state": "State",
        "deadline": "Deadline",
        "late": "Late by",
        "responsible": "Responsible",
        "supervising": "Supervising",
        "level": "Level",
        "count": "Count",
        "no_overdue": "None this week: no overdue open ticket.",
        "no_hotspots": "None this week: no recurrence lately.",
        "no_campaigns": "None this week: no campaign recorded for this month.",
        "theme": "Theme",
        "action": "Action",
        "week_theme": "This week's theme",
        "found": "Found",
        "fixed": "Fixed",
        "open": "Still open",
        "by_action": "By action",
        "by_grid": "By village",
        "outcome": "Outcome",
        "on_time": "closed on time",
        "on_time_short": "On time",
        "late_closed": "closed late",
        "open_outcome": "open",
        "deferred_outcome": "deferred",
        "closed_at": "Closed",
        "left_out": "{n} more not listed; use closeloop report items.",
        "trace": "Every number traces to its tickets: hover for the command that lists them; due,"
        " deferred and closed figures link to the appendix.",
        "definitions": "Due: tickets whose fix deadline (with approved extensions, plus paused"
        " deferral time) fell this week. Closure rate = closed / (due - deferred); on time: the"
        " accepted fix was made by the deadline; rework rate = due tickets with a rejected fix /"
        " due; extension rate = due tickets with an approved extension / due.",
        "days": "{d} d {h} h",
        "hours": "{h} h",
        "pp": "points",
        "cleared": "Problems cleared this week",
        "example_note": " Picked by the supervisors",
        "no_cleared": "None this week: no problem closed.",
        "photo_before": "Before (reported)",
        "photo_after": "After (fixed)",
        "no_patrols": "None this week: no patrol recorded.",
        "no_grids": "None this week: no grid data.",
        "no_appendix": "None this week: no ticket was due.",
        "board": "List",
        "group_line": "{name}: on-time rate {rate}, due {due}, overdue open {overdue}",
        "appendix_md": "{n} tickets due this week; the list is in the full report or:",
        "assessment": "Assessment figures",
        "a_dispose_rate": "Dispose rate",
        "a_on_time_dispose_rate": "On-time dispose rate",
        "a_late_disposed": "Disposed late",
        "a_late_closed": "Closed late",
        "a_on_time_verify_rate": "On-time verify rate",
        "a_failed_verifications": "Failed checks ≥3",
        "a_urgent": "Urgent closed",
        "a_supervised_on_time_rate": "Supervised on time",
        "a_satisfaction_rate": "Satisfaction rate",
        "a_solved_rate": "Solved rate",
        "a_composite": "Composite",
        "a_grade": "Grade",
        "sources": "Case sources",
        "source_public": "the public",
        "source_patrol": "patrols",
        "source_hotline": "hotline (12345/12319)",
        "source_leader": "leaders' assignments",
        "source_media": "the media",
        "source_meeting": "meetings",
        "source_campaign": "campaigns",
        "source_inspection": "inspections",
        "top_categories": "Most frequent problems (top {n})",
        "year_ago": "A year ago",
        "yoy": "Year on year",
        "no_assessment": "None this week: no grid data.",
        "ungraded": "{n} more grids had nothing due this week and get no score (their figures"
        " are in appendix 1 and the JSON).",
        "assessment_definitions": "Dispose rate = disposed / (due - deferred), disposed: the"
        " last fix was neither sent back nor reopened; on-time dispose rate = disposed by the"
        " deadline / (due - deferred); on-time verify rate = checks decided (passed or sent"
        " back) by their deadline / checks due; supervised on time = supervisions answered by"
        " their deadline / supervisions due; satisfaction rate = (satisfied + basically"
        " satisfied) / answers; solved rate = solved / answers; urgent closure rate = urgent"
        " closed / (urgent due - deferred); composite = {formula}, graded {grades}.",
    },
}


def labels(locale: str) -> Mapping[str, str]:
    if locale not in LABELS:
        raise Invalid("option.locale", locale=locale, locales=", ".join(LOCALES))
    return LABELS[locale]


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Invalid("option.format", fmt=fmt, formats=", ".join(FORMATS))
    return fmt


# --------------------------------------------------------------------------- formatting


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def signed(value: float | None, *, rate: bool = False) -> str:
    if value is None:
        return "—"
    if rate:
        return f"{value * 100:+.1f}"
    return f"{value:+.0f}" if float(value).is_integer() else f"{value:+.1f}"


def plain(value: float | None, *, rate: bool = False) -> str:
    if value is None:
        return "—"
    if rate:
        return pct(value)
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def duration(value: timedelta, locale: str) -> str:
    hours = int(value.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    t = labels(locale)
    return t["days"].format(d=days, h=hours) if days else t["hours"].format(h=hours)


def assessment_cell(report: WeeklyReport, f: Figures, column: str) -> str:
    if column in ASSESSMENT_RATES:
        return pct(getattr(f, column))
    if column == "urgent":
        return f"{f.urgent_closed}/{f.urgent_due}" if f.urgent_due else "—"
    if column == "composite":
        value = report.composite.score(f)
        return "—" if value is None else f"{value:.1f}"
    if column == "grade":
        return report.score(f)[1] or "—"
    return str(getattr(f, column))


def assessment_value(report: WeeklyReport, f: Figures, column: str) -> Any:
    """The cell as a spreadsheet number (rates as fractions)."""
    if column == "urgent":
        return f.urgent_closure_rate
    if column == "composite":
        return report.composite.score(f)
    if column == "grade":
        return report.score(f)[1]
    return getattr(f, column)


def composite_text(report: WeeklyReport, t: Mapping[str, str]) -> str:
    """The formula and the grade limits as configured, in words of the report."""
    parts = []
    for name, weight in report.composite.weights:
        label = t.get(f"a_{name}", t.get(name, name))
        less = name in ("rework_rate", "extension_rate")
        parts.append(f"(1 − {label}) × {weight:g}" if less else f"{label} × {weight:g}")
    grades = ", ".join(f"{g} ≥ {limit:g}" for g, limit in report.composite.grades)
    return t["assessment_definitions"].format(
        formula=" + ".join(parts), grades=f"{grades}, {report.composite.lowest}"
    )


def year_on_year(report: WeeklyReport, key: str) -> tuple[float | None, float | None]:
    """(the zone's value a year ago, this week minus it) for a summary row; (None, None)
    without last year's week. Rates in fractions, like the change column."""
    then_f = report.zone_year_ago
    if then_f is None:
        return None, None
    if key == "escalations":
        now_v: float | None = float(report.zone.escalation_total)
        then_v: float | None = float(then_f.escalation_total)
    else:
        now_v, then_v = getattr(report.zone, key), getattr(then_f, key)
    delta = None if now_v is None or then_v is None else float(now_v) - float(then_v)
    return then_v, delta


def escalation_text(f: Figures) -> str:
    return "/".join(str(f.escalations.get(level, 0)) for level in ESCALATION_LEVELS)


def cell_value(f: Figures, column: str) -> str:
    if column in RATES:
        return pct(getattr(f, column))
    if column == "escalations":
        return str(f.escalation_total)
    return str(getattr(f, column))


@cache
def _env(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = pct
    env.filters["signed"] = signed
    env.filters["plain"] = plain
    return env


def _local(tz: ZoneInfo) -> Callable[[datetime | None, str], str]:
    def fmt(value: datetime | None, pattern: str = "%m-%d %H:%M") -> str:
        return "—" if value is None else value.astimezone(tz).strftime(pattern)

    return fmt


# --------------------------------------------------------------------------- weekly


def render_weekly(report: WeeklyReport, fmt: str, *, locale: str, workflow: Workflow) -> bytes:
    """The report as bytes in ``fmt`` (html, md, xlsx or json)."""
    check_format(fmt)
    t = labels(locale)
    if fmt == "json":
        data = {**report.as_json(), "sections": section_outline(report, t)}
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode()
    context = _weekly_context(report, locale, t, workflow)
    if fmt == "xlsx":
        return _weekly_xlsx(report, context, t, locale)
    template = "weekly.html.j2" if fmt == "html" else "weekly.md.j2"
    return _env(fmt == "html").get_template(template).render(**context).encode()


def section_outline(report: WeeklyReport, t: Mapping[str, str]) -> list[dict[str, Any]]:
    """The report's sections in order, with their headings: what every format walks."""
    weeks = len(report.previous) + 1  # the hot spots cover this week and the previous ones
    return [
        {
            "number": s.number,
            "key": s.key,
            "heading": heading(s, t, weeks),
            "empty": s.empty,
            "empty_text": empty_text(s.key, t, report) if s.empty else None,
        }
        for s in weekly_sections(report)
    ]


def empty_text(key: str, t: Mapping[str, str], report: WeeklyReport) -> str:
    """What an empty section says ("本周无…" / "None this week…")."""
    min_due = report.min_due
    if key == "boards":
        return t["no_red"].format(min_due=min_due) + t["no_yellow"].format(min_due=min_due)
    if key == "summary":
        return ""
    if key == "decisions":
        m = report.previous_meeting
        if m is None:
            return t["no_meeting"]
        return t["no_decisions"].format(**_meeting_words(m, t, report.tz_name))
    return t[f"no_{key}"]


def _meeting_words(m: PreviousMeeting, t: Mapping[str, str], tz_name: str) -> dict[str, Any]:
    locale = "zh_CN" if t["lang"] == "zh-CN" else "en"
    return {
        "at": m.at.astimezone(ZoneInfo(tz_name)).strftime("%Y-%m-%d %H:%M"),
        "kind": m.kind.get(locale),
        "n": m.decisions,
        "open": len(m.open),
    }


def reason_text(r: Reason, t: Mapping[str, str], weeks: int) -> str:
    """One figure that improved, in words: "按期结案率由前4周的25.0%升至100.0%（全区75.0%）"."""
    if r.is_rate:
        figure = t[r.key] if t["lang"] == "zh-CN" else t[r.key].lower()
        return t["why_rate"].format(
            figure=figure, then=pct(r.then), now=pct(r.now), zone=pct(r.zone), weeks=weeks
        )
    return t[f"why_{r.key}"].format(now=plain(r.now), then=plain(r.then), weeks=weeks)


def example_why(e: Example, t: Mapping[str, str], weeks: int, *, most: int | None = None) -> str:
    """Why the grid is the example: the figures that improved (at most ``most``), or, for a grid
    picked by hand where none did, its on-time rate beside its past and the zone's."""
    said = [reason_text(r, t, weeks) for r in e.reasons[:most]] or [
        t["why_none"].format(
            now=pct(e.current_rate), then=pct(e.baseline_rate), zone=pct(e.zone_rate), weeks=weeks
        )
    ]
    intro = t["why_intro"].format(name=e.row.name, code=e.row.code)
    return intro + t["why_sep"].join(said) + t["why_end"]


def _week_title(report: WeeklyReport, t: Mapping[str, str]) -> str:
    tz = ZoneInfo(report.tz_name)
    start = report.week.start.astimezone(tz)
    last = (report.week.end - timedelta(seconds=1)).astimezone(tz)
    year, week, _ = start.isocalendar()
    return t["week"].format(
        year=year, week=week, start=start.strftime("%m-%d"), end=last.strftime("%m-%d")
    )


def _weekly_context(
    report: WeeklyReport, locale: str, t: Mapping[str, str], workflow: Workflow
) -> dict[str, Any]:
    tz = ZoneInfo(report.tz_name)
    weeks = len(report.previous)
    trend = report.trend
    trend_chart = charts.line_chart(
        {
            t["closure_rate"]: [
                (label, None if f.closure_rate is None else f.closure_rate * 100)
                for label, f in trend
            ],
            t["on_time_rate"]: [
                (label, None if f.on_time_rate is None else f.on_time_rate * 100)
                for label, f in trend
            ],
        },
        title=t["trend_chart"].format(weeks=weeks + 1),
        unit="%",
        max_value=100,
        width=680,
        height=240,
        no_data=t["none"],
    )
    yellow_groups = {row.group_code for row in report.yellow}
    group_chart = charts.bar_chart(
        [
            (
                g.name,
                None if g.total.on_time_rate is None else g.total.on_time_rate * 100,
            )
            for g in report.groups
        ],
        title=t["group_chart"],
        max_value=100,
        width=680,
        highlight=[g.name for g in report.groups if g.code in yellow_groups],
        no_data=t["none"],
    )
    spot_rows = list(dict.fromkeys(h.grid_name for h in report.hotspots))
    spot_cols = list(dict.fromkeys(h.category_label.get(locale) for h in report.hotspots))
    values: list[list[float | None]] = [[0 for _ in spot_cols] for _ in spot_rows]
    for h in report.hotspots:
        values[spot_rows.index(h.grid_name)][spot_cols.index(h.category_label.get(locale))] = (
            h.count
        )
    heat_chart = charts.heatmap(
        spot_rows, spot_cols, values, title=t["heat_chart"], no_data=t["none"]
    )
    appendix_codes = {g.row.code for g in report.appendix}

    def command(code: str | None, figure: str) -> str:
        grid = f" --grid {code}" if code else ""
        return f"closeloop report items --week {report.week.label}{grid} --figure {figure}"

    return {
        "t": t,
        "locale": locale,
        "r": report,
        "sections": section_outline(report, t),
        "min_due": report.min_due,
        "example_why": example_why(report.example, t, weeks) if report.example else "",
        "meeting_line": (
            t["meeting_line"].format(**_meeting_words(report.previous_meeting, t, report.tz_name))
            if report.previous_meeting is not None
            else ""
        ),
        "title": t["title"].format(zone=report.zone_name),
        "week_title": _week_title(report, t),
        "level_name": t.get(f"level_{report.level}", str(report.level)),
        "weeks": weeks,
        "columns": GRID_COLUMNS,
        "rates": RATES,
        "appendix_figures": APPENDIX_FIGURES,
        "assessment_columns": ASSESSMENT_COLUMNS,
        "assessment_trace": ASSESSMENT_TRACE,
        "acell": lambda f, column: assessment_cell(report, f, column),
        "grade_of": lambda f: report.score(f)[1],
        "composite_text": composite_text(report, t),
        "yoy": lambda key: year_on_year(report, key),
        "sources": SOURCES,
        "appendix_codes": appendix_codes,
        "cell": cell_value,
        "esc": escalation_text,
        "command": command,
        "local": _local(tz),
        "duration": lambda d: duration(d, locale),
        "label": lambda names: names.get(locale) if isinstance(names, Names) else str(names),
        "state_label": lambda s: (
            workflow.states[s].label.get(locale) if s in workflow.states else s
        ),
        "category_label": lambda c: (
            workflow.categories[c].label.get(locale) if c in workflow.categories else c
        ),
        "charts": {
            "trend": Markup(trend_chart),
            "groups": Markup(group_chart),
            "heat": Markup(heat_chart),
            "map": Markup(
                svgmap.render_svg(report.map, locale=locale, element_id="weekly-map")
                if report.map is not None
                else ""
            ),
        },
        "outcome_label": {
            "on_time": t["on_time"],
            "late": t["late_closed"],
            "open": t["open_outcome"],
            "deferred": t["deferred_outcome"],
        },
    }


def _weekly_xlsx(
    report: WeeklyReport, context: Mapping[str, Any], t: Mapping[str, str], locale: str
) -> bytes:
    """One sheet per section, in the sections' order: the heading in A1, the table's header in
    row 2; an empty section's sheet says so in A3."""
    book = Book()
    weeks = len(report.previous)
    local = context["local"]
    headers = [t["grid"], "code", *(t[c] for c in GRID_COLUMNS)]

    def summary(sheet: Sheet) -> None:
        for change in report.changes:
            yoy = list(year_on_year(report, change.key)) if report.year_ago else []
            sheet.row(
                [t[change.key], change.current, change.previous, change.delta, *yoy],
                rate=change.is_rate,
            )
        sheet.row([t["overdue_open"], report.zone.overdue_open, None, None])

    def assessment(sheet: Sheet) -> None:
        rate_columns = [
            i + 2
            for i, c in enumerate(ASSESSMENT_COLUMNS)
            if c in ASSESSMENT_RATES or c == "urgent"
        ]
        for row in report.ranked:
            values = [assessment_value(report, row.figures, c) for c in ASSESSMENT_COLUMNS]
            sheet.row([row.name, row.code, *values], rate_columns=rate_columns)
        values = [assessment_value(report, report.zone, c) for c in ASSESSMENT_COLUMNS]
        sheet.row([t["zone_total"], "", *values], rate_columns=rate_columns)
        if report.ungraded:
            sheet.row([t["ungraded"].format(n=report.ungraded)])
        sheet.row([])
        for key in SOURCES:
            sheet.row([t["sources"], key, t[f"source_{key}"], report.zone.by_source.get(key, 0)])
        top = t["top_categories"].format(n=report.top)
        for key, n in report.zone.top_categories(report.top):
            sheet.row([top, key, context["category_label"](key), n])

    def boards(sheet: Sheet) -> None:
        for key, rows in (("red", report.red), ("yellow", report.yellow)):
            if not rows:
                sheet.row([t[key], t[f"no_{key}"].format(min_due=report.min_due)])
            for i, row in enumerate(rows, start=1):
                sheet.figures(row.name, row.code, row.figures, lead=[t[key], i])

    def example(sheet: Sheet) -> None:
        if report.example is not None:
            e = report.example
            values = [e.row.name, e.row.code, e.current_rate, e.baseline_rate, e.improvement]
            sheet.row([*values, e.zone_rate], rate=True)
            for r in e.reasons:
                sheet.row(
                    [t[r.key], "", r.now, r.then, r.now - r.then, r.zone],
                    rate_columns=(2, 3, 4, 5) if r.is_rate else (),
                )
            sheet.row([context["example_why"]])

    def grid_table(sheet: Sheet) -> None:
        for group in report.groups:
            for row in group.rows:
                sheet.figures(row.name, row.code, row.figures)
            sheet.figures(f"{group.name} {t['group_total']}", group.code or "", group.total)
        sheet.figures(t["zone_total"], "", report.zone)

    def overdue(sheet: Sheet) -> None:
        for o in report.overdue:
            sheet.row(
                [
                    o.ref,
                    o.title,
                    o.category.get(locale),
                    o.grid_name,
                    local(o.due_at, "%Y-%m-%d %H:%M"),
                    round(o.late.total_seconds() / 3600, 1),
                    _leader_text(o.responsible),
                    _leader_text(o.supervising),
                    o.escalation_level,
                ]
            )

    def hotspots(sheet: Sheet) -> None:
        for h in report.hotspots:
            sheet.row([h.grid_name, h.grid_code, h.category_label.get(locale), h.count])

    def campaigns(sheet: Sheet) -> None:
        for c in report.campaigns:
            for p in c.by_grid:
                sheet.row(
                    [c.campaign.theme, c.action_name.get(locale), p.name, p.found, p.fixed, p.open]
                )
            for p in c.by_action:
                if p.found:
                    sheet.row([c.campaign.theme, p.name.get(locale), "", p.found, p.fixed, p.open])

    def patrols(sheet: Sheet) -> None:
        for g in report.patrols.grids:
            if g.visits:
                by_level = "/".join(str(g.visits_by_level[str(k)]) for k in range(1, 5))
                sheet.row(
                    [g.name, g.grid, g.visits, by_level, local(g.last_visit_at, "%Y-%m-%d %H:%M")]
                )

    def decisions(sheet: Sheet) -> None:
        sheet.row([context["meeting_line"]])
        for d in report.previous_meeting.open if report.previous_meeting else ():
            sheet.row(
                [
                    d.ref,
                    d.title,
                    d.grid_name,
                    local(d.due_at, "%Y-%m-%d %H:%M"),
                    d.state.get(locale) + (f" {t['past_due']}" if d.late else ""),
                ]
            )

    outcome = context["outcome_label"]

    def appendix(sheet: Sheet) -> None:
        for listed in report.appendix:
            for item, result in listed.items:
                sheet.row(
                    [
                        listed.row.name,
                        item.ref,
                        item.title,
                        context["category_label"](item.category),
                        local(item.due_at, "%Y-%m-%d %H:%M"),
                        local(item.closed_at, "%Y-%m-%d %H:%M") if item.closed_at else None,
                        outcome[result],
                    ]
                )

    previous = t["previous_mean"].format(weeks=weeks)
    writers: dict[str, tuple[list[str], Callable[[Sheet], None]]] = {
        "summary": (
            [
                t["figure"],
                t["this_week"],
                previous,
                t["change"],
                *(
                    [f"{t['year_ago']} {report.year_ago.label}", t["yoy"]]
                    if report.year_ago
                    else []
                ),
            ],
            summary,
        ),
        "assessment": (
            [t["grid"], "code", *(t[f"a_{c}"] for c in ASSESSMENT_COLUMNS)],
            assessment,
        ),
        "boards": ([t["board"], t["rank"], *headers], boards),
        "example": (
            [
                t["grid"],
                "code",
                t["this_week"],
                t["previous_weeks"].format(weeks=weeks),  # pooled rates, weekly mean counts
                t["change"],
                t["zone_this_week"],
            ],
            example,
        ),
        "grids": (headers, grid_table),
        "overdue": (
            [
                t["ref"],
                t["ticket"],
                t["category"],
                t["grid"],
                t["deadline"],
                t["late"],
                t["responsible"],
                t["supervising"],
                t["level"],
            ],
            overdue,
        ),
        "hotspots": ([t["grid"], "code", t["category"], t["count"]], hotspots),
        "campaigns": (
            [t["theme"], t["action"], t["grid"], t["found"], t["fixed"], t["open"]],
            campaigns,
        ),
        "patrols": (
            [t["grid"], "code", t["patrol_visits"], t["patrol_by_level"], t["patrol_last"]],
            patrols,
        ),
        "decisions": ([t["ref"], t["ticket"], t["grid"], t["deadline"], t["state"]], decisions),
        "appendix": (
            [
                t["grid"],
                t["ref"],
                t["ticket"],
                t["category"],
                t["deadline"],
                t["closed_at"],
                t["outcome"],
            ],
            appendix,
        ),
    }
    for section in context["sections"]:
        columns, write = writers[section["key"]]
        sheet = book.sheet(section["heading"], columns, heading=section["heading"])
        if section["empty"] and section["key"] != "boards":
            sheet.row([section["empty_text"]])
        else:
            write(sheet)
    return book.save()


def _leader_text(leader: Any) -> str:
    if leader is None:
        return "—"
    who = leader.name or "—"
    phone = f" {leader.phone}" if leader.phone else ""
    return f"{leader.grid_name} {who}{phone}"


class Sheet:
    """One worksheet: a bold header row, then rows; rates get a percent format. Every value
    passes `closeloop.xlsxsafe.safe_row`, so text people typed is never a formula."""

    def __init__(self, ws: Any, headers: Sequence[str], heading: str | None = None) -> None:
        from openpyxl.styles import Font

        self.ws = ws
        if heading is not None:
            ws.append(safe_row([heading]))
            ws.cell(row=1, column=1).font = Font(bold=True, size=13)
        ws.append(safe_row(list(headers)))
        for c in ws[ws.max_row]:
            c.font = Font(bold=True)
        ws.freeze_panes = f"A{ws.max_row + 1}"
        for i, h in enumerate(headers, start=1):
            ws.column_dimensions[_column_letter(i)].width = max(8, min(40, len(str(h)) * 2 + 2))

    def row(
        self, values: Iterable[Any], *, rate: bool = False, rate_columns: Iterable[int] = ()
    ) -> None:
        values = list(values)
        self.ws.append(safe_row(values))
        marked = set(rate_columns)
        if rate:
            marked.update(i for i, v in enumerate(values) if isinstance(v, float))
        for i in marked:
            self.ws.cell(row=self.ws.max_row, column=i + 1).number_format = "0.0%"

    def figures(self, name: str, code: str, f: Figures, *, lead: Sequence[Any] = ()) -> None:
        values: list[Any] = [*lead, name, code]
        rate_cols = []
        for column in GRID_COLUMNS:
            if column in RATES:
                rate_cols.append(len(values))
                values.append(getattr(f, column))
            elif column == "escalations":
                values.append(f.escalation_total)
            else:
                values.append(getattr(f, column))
        self.row(values, rate_columns=rate_cols)


def _column_letter(i: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(i)


class Book:
    def __init__(self) -> None:
        from openpyxl import Workbook

        self.wb = Workbook()
        self._first = True

    def sheet(self, title: str, headers: Sequence[str], *, heading: str | None = None) -> Sheet:
        # Sheet titles: at most 31 characters, none of []:*?/\
        clean = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31] or "Sheet"
        if self._first:
            ws = self.wb.active
            ws.title = clean
            self._first = False
        else:
            ws = self.wb.create_sheet(clean)
        return Sheet(ws, headers, heading)

    def save(self) -> bytes:
        buf = io.BytesIO()
        self.wb.save(buf)
        return buf.getvalue()
