"""The weekly report's summary for chat robots (DingTalk, WeCom, Feishu group robots).

The lines go into the `weekly_report` notice's payload (`summary`); its Markdown (a heading, the
lines, a link to the full report) is what the robots post (`notifiers.webhook`). Each platform's
documented limit, measured by tests/test_weekly_report.py on the request as it is sent:

- WeCom group robot: `markdown.content` "最长不超过4096个字节，必须是utf8编码" (群机器人配置说明,
  https://developer.work.weixin.qq.com/document/path/99110; longer is refused with errcode
  40058 "markdown.content exceed max length 4096"). The webhook channel cuts anything longer,
  which would cut the link at the end: the summary is sized so it never has to.
- DingTalk custom robot: its documentation of the markdown message
  (https://open.dingtalk.com/document/orgapp/custom-robot-access) states no length for
  `markdown.text`; the robot refuses a request body over 20,000 bytes, errcode 460101 "message
  too long, exceed 20000 bytes" ("body 大小不合法…请保持大小在 20000bytes 以内"), as reported
  in timonwong/prometheus-webhook-dingtalk#30 and ZhuLinsen/daily_stock_analysis#61. The
  budget is that body.
- Feishu custom robot: "请求体大小不能超过20k" (自定义机器人使用指南,
  https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot; refused with code 9499
  "Bad Request"); "20k" is read as 20,000 bytes, the stricter reading.

WeCom's 4096 bytes of Markdown is the smallest of the three by far, so it sets the budget:
`summary_lines` keeps the lines within `max_bytes` (by default what leaves room under 4096
bytes for the notice's heading and a long link): the lists shrink from five names to three to
one, then the last lines go, never the first (the zone's figures).
"""

from __future__ import annotations

from collections.abc import Mapping

from closeloop.reports.render import duration, example_why, labels, pct
from closeloop.reports.weekly import WeeklyReport

WECOM_MARKDOWN_BYTES = 4096  # markdown.content, UTF-8
DINGTALK_BODY_BYTES = 20_000  # the request body (errcode 460101 beyond)
FEISHU_BODY_BYTES = 20_000  # the request body, "20k" (code 9499 beyond)
# The notice's Markdown around the lines: its heading, the link (a URL of up to ~500 bytes)
# and the list marks; what is left of WeCom's 4096 bytes is for the lines.
SUMMARY_BYTES = 3000

CHAT_LABELS: Mapping[str, Mapping[str, str]] = {
    "zh_CN": {
        "zone": "应结案{due}件，结案{closed}件，按期结案率{rate}（较前{weeks}周{delta}个百分点）",
        "late": "超期未结{overdue}件，升级督办{escalations}次",
        "red": "红榜：{names}",
        "yellow": "黄榜：{names}",
        "example": "本周典型：{why}",
        "overdue": "超期最久：{items}",
        "hotspots": "复发热点：{items}",
        "campaign": "大会战{theme}：发现{found}，已整改{fixed}，未整改{open}",
        "decisions": "上次会议交办{n}件，未办结{open}件：{items}",
        "sep": "、",
        "none": "本周无",
    },
    "en": {
        "zone": "{due} due, {closed} closed, on-time rate {rate} ({delta} points against the"
        " previous {weeks} weeks)",
        "late": "{overdue} overdue open, {escalations} escalations",
        "red": "Red list: {names}",
        "yellow": "Yellow list: {names}",
        "example": "Example of the week: {why}",
        "overdue": "Oldest overdue: {items}",
        "hotspots": "Recurrence hot spots: {items}",
        "campaign": "Campaign {theme}: found {found}, fixed {fixed}, still open {open}",
        "decisions": "Previous meeting: {open} of its {n} decisions still open: {items}",
        "sep": ", ",
        "none": "none this week",
    },
}


def _lines(report: WeeklyReport, locale: str, n: int) -> list[str]:
    t = labels(locale)
    c = CHAT_LABELS[locale]
    sep = c["sep"]
    change = {ch.key: ch for ch in report.changes}["on_time_rate"]
    delta = "—" if change.delta is None else f"{change.delta * 100:+.1f}"
    zone = report.zone
    lines = [
        c["zone"].format(
            due=zone.due,
            closed=zone.closed,
            rate=pct(zone.on_time_rate),
            weeks=len(report.previous),
            delta=delta,
        ),
        c["late"].format(overdue=zone.overdue_open, escalations=zone.escalation_total),
    ]
    for key, rows in (("red", report.red), ("yellow", report.yellow)):
        names = sep.join(f"{r.name} {pct(r.figures.on_time_rate)}" for r in rows[:n])
        lines.append(c[key].format(names=names or c["none"]))
    if report.example is not None:
        # why, in its first two figures (one when the lists are cut to one)
        why = example_why(report.example, t, len(report.previous), most=min(n, 2))
        lines.append(c["example"].format(why=why))
    else:
        lines.append(t["no_example"])
    items = sep.join(
        f"{o.ref} {o.title}{t['p_open']}{o.grid_name}{t['p_comma']}{t['late']}"
        f" {duration(o.late, locale)}{t['p_close']}"
        for o in report.overdue[:n]
    )
    lines.append(c["overdue"].format(items=items or c["none"]))
    spots = sep.join(
        f"{h.grid_name}×{h.category_label.get(locale)} {h.count}" for h in report.hotspots[:n]
    )
    lines.append(c["hotspots"].format(items=spots or c["none"]))
    for p in report.campaigns[:n]:
        lines.append(
            c["campaign"].format(
                theme=p.campaign.theme, found=p.total.found, fixed=p.total.fixed, open=p.total.open
            )
        )
    meeting = report.previous_meeting
    if meeting is not None and meeting.open:
        items = sep.join(f"{d.ref} {d.title}" for d in meeting.open[:n])
        lines.append(
            c["decisions"].format(n=meeting.decisions, open=len(meeting.open), items=items)
        )
    return lines


def _size(lines: list[str]) -> int:
    return sum(len(f"- {line}\n".encode()) for line in lines)


def summary_lines(report: WeeklyReport, locale: str, max_bytes: int = SUMMARY_BYTES) -> list[str]:
    """The week in a few lines, within ``max_bytes`` of UTF-8 as Markdown list items."""
    for n in (5, 3, 1):
        lines = _lines(report, locale, n)
        if _size(lines) <= max_bytes:
            return lines
    while len(lines) > 1 and _size(lines) > max_bytes:
        lines.pop()
    if _size(lines) > max_bytes:  # one line longer than the budget: cut it
        room = max_bytes - len("- \n…".encode())
        lines = [lines[0].encode()[:room].decode(errors="ignore") + "…"]
    return lines
