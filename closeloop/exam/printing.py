"""Printed and filed forms of the exam: the inspectors' score sheets (HTML for A4, XLSX) and the
fund ledger (JSON, Markdown, XLSX for the finance office).

The score-sheet XLSX has exactly the columns of the exam CSV (``month,inspector_grid,grid,sheet,
item,score,max_score,note``), one row per item and grid: filled in on paper or in a spreadsheet
and saved as CSV, it is what `closeloop exam import` reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from markupsafe import escape

from closeloop.exam.funds import Ledger
from closeloop.exam.scoring import CSV_COLUMNS
from closeloop.exam.service import PlanView
from closeloop.exam.sheets import SHEETS, AnswerSheets, sheet_name
from closeloop.reports.render import Book
from closeloop.tickets import Invalid

WORDS: Mapping[str, Mapping[str, str]] = {
    "zh_CN": {
        "sheet_title": "{zone}{month}月考评分表",
        "inspector": "考核网格",
        "grid": "被考核网格",
        "item": "考核项目",
        "checks": "考核内容",
        "max": "满分",
        "points": "得分",
        "note": "扣分说明",
        "signed": "考核人签字：＿＿＿＿＿＿　日期：＿＿＿＿＿＿",
        "total": "合计",
        "ledger_title": "{zone}{month}奖励与项目资金台账",
        "rewards": "月度奖励",
        "projects": "项目资金（专款专用）",
        "tier": "档次",
        "earned": "应发奖励",
        "withheld": "扣除奖励",
        "withheld_by": "扣除原因",
        "withheld_text": "{month}得分低于底线",
        "paid": "已发放",
        "outstanding": "未发放",
        "project": "项目",
        "purpose": "用途",
        "applied": "申报金额",
        "approved": "批准金额",
        "disbursed": "已拨付",
        "remaining": "结余",
        "status": "状态",
        "applied_s": "已申报",
        "approved_s": "已批准",
        "refused_s": "未批准",
        "none": "无",
    },
    "en": {
        "sheet_title": "{zone}: exam score sheet {month}",
        "inspector": "Inspecting grid",
        "grid": "Grid examined",
        "item": "Item",
        "checks": "What is checked",
        "max": "Max",
        "points": "Points",
        "note": "Reason for a deduction",
        "signed": "Inspector's signature: ____________  Date: ____________",
        "total": "Total",
        "ledger_title": "{zone}: rewards and project funds {month}",
        "rewards": "Monthly rewards",
        "projects": "Project funds (earmarked)",
        "tier": "Tier",
        "earned": "Earned",
        "withheld": "Withheld",
        "withheld_by": "Withheld because",
        "withheld_text": "below the floor in {month}",
        "paid": "Paid",
        "outstanding": "Outstanding",
        "project": "Project",
        "purpose": "Purpose",
        "applied": "Applied for",
        "approved": "Approved",
        "disbursed": "Disbursed",
        "remaining": "Remaining",
        "status": "Status",
        "applied_s": "applied",
        "approved_s": "approved",
        "refused_s": "refused",
        "none": "none",
    },
}
LEDGER_FORMATS = ("json", "md", "xlsx")
SHEET_FORMATS = ("html", "xlsx")


def words(locale: str) -> Mapping[str, str]:
    if locale not in WORDS:
        raise Invalid("option.locale", locale=locale, locales=", ".join(WORDS))
    return WORDS[locale]


# --------------------------------------------------------------------------- score sheets


_A4_STYLE = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; font-size: 10.5pt; }
section.grid { page-break-after: always; break-after: page; }
section.grid:last-child { page-break-after: auto; break-after: auto; }
h1 { font-size: 14pt; margin: 0 0 4pt; }
p.who { margin: 0 0 6pt; }
table { border-collapse: collapse; width: 100%; margin-bottom: 6pt; }
th, td { border: 0.6pt solid #333; padding: 3pt 4pt; vertical-align: top; }
th { background: #eee; text-align: left; }
td.n { text-align: right; width: 9%; }
td.blank { width: 11%; }
td.note { width: 24%; }
caption { text-align: left; font-weight: bold; padding: 4pt 0; }
"""


def score_sheets_html(
    zone: str, plan: PlanView, sheets: AnswerSheets, *, locale: str, inspector: str | None = None
) -> bytes:
    """One A4 page per examined grid, grouped by inspector: items, maxima, blanks to fill."""
    w = words(locale)
    title = w["sheet_title"].format(zone=zone, month=plan.month)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"en" if locale == "en" else "zh-CN"}"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_A4_STYLE}</style></head><body>",
    ]
    for code, lines in plan.by_inspector().items():
        if inspector is not None and code != inspector:
            continue
        for line in lines:
            parts.append('<section class="grid">')
            parts.append(f"<h1>{escape(title)}</h1>")
            parts.append(
                f'<p class="who">{w["inspector"]}: {escape(line.inspector_name)} ({code})'
                f" &nbsp; {w['grid']}: <strong>{escape(line.grid_name)}</strong>"
                f" ({line.grid})</p>"
            )
            for sheet in SHEETS:
                items = sheets.of(sheet)
                if not items:
                    continue
                parts.append(f"<table><caption>{escape(sheet_name(sheet, locale))}</caption>")
                parts.append(
                    f"<tr><th>{w['item']}</th><th>{w['checks']}</th><th>{w['max']}</th>"
                    f"<th>{w['points']}</th><th>{w['note']}</th></tr>"
                )
                for item in items:
                    parts.append(
                        f"<tr><td>{escape(item.name(locale))}</td>"
                        f"<td>{escape(item.checks(locale))}</td>"
                        f'<td class="n">{item.max_points}</td><td class="blank"></td>'
                        '<td class="note"></td></tr>'
                    )
                parts.append("</table>")
            parts.append(f"<p>{w['signed']}</p></section>")
    parts.append("</body></html>")
    return "\n".join(parts).encode()


def score_sheets_xlsx(
    plan: PlanView, sheets: AnswerSheets, *, locale: str, inspector: str | None = None
) -> bytes:
    """One worksheet per inspector with the exam CSV's columns, scores left blank."""
    book = Book()
    wanted = [
        (code, lines)
        for code, lines in plan.by_inspector().items()
        if inspector is None or code == inspector
    ]
    if not wanted:
        raise Invalid("exam.inspector_no_grid", month=plan.month, inspector=inspector)
    for code, lines in wanted:
        ws = book.sheet(code, list(CSV_COLUMNS))
        for line in lines:
            for item in sheets:
                ws.row(
                    [
                        plan.month,
                        code,
                        line.grid,
                        sheet_name(item.sheet, "zh_CN") if locale != "en" else item.sheet,
                        item.name(locale),
                        None,
                        float(item.max_points),
                        None,
                    ]
                )
    return book.save()


# --------------------------------------------------------------------------- the fund ledger


def _n(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def ledger_json(ledger: Ledger) -> dict[str, Any]:
    return {
        "month": ledger.month,
        "rewards": [
            {
                "grid": r.grid,
                "name": r.name,
                "tier": r.tier,
                "earned": _n(r.earned),
                "withheld": _n(r.withheld),
                "withheld_by": r.withheld_by,
                "paid": _n(r.paid),
                "outstanding": _n(r.outstanding),
            }
            for r in ledger.rewards
        ],
        "projects": [
            {
                "id": p.id,
                "grid": p.grid,
                "name": p.name,
                "project": p.project,
                "purpose": p.purpose,
                "applied": _n(p.applied),
                "approved": _n(p.approved),
                "disbursed": _n(p.disbursed),
                "remaining": _n(p.remaining),
                "status": p.status,
            }
            for p in ledger.projects
        ],
        "totals": {k: _n(v) for k, v in ledger.totals.items()},
    }


def render_ledger(ledger: Ledger, fmt: str, *, zone: str, locale: str) -> bytes:
    if fmt not in LEDGER_FORMATS:
        raise Invalid("option.format", fmt=fmt, formats=", ".join(LEDGER_FORMATS))
    w = words(locale)
    if fmt == "json":
        return (json.dumps(ledger_json(ledger), ensure_ascii=False, indent=2) + "\n").encode()
    reason = {
        r.grid: w["withheld_text"].format(month=r.withheld_by) if r.withheld_by else ""
        for r in ledger.rewards
    }
    reward_head = [
        w["grid"],
        "code",
        w["tier"],
        w["earned"],
        w["withheld"],
        w["withheld_by"],
        w["paid"],
        w["outstanding"],
    ]
    project_head = [
        "id",
        w["grid"],
        w["project"],
        w["purpose"],
        w["applied"],
        w["approved"],
        w["disbursed"],
        w["remaining"],
        w["status"],
    ]
    title = w["ledger_title"].format(zone=zone, month=ledger.month)
    if fmt == "xlsx":
        book = Book()
        rs = book.sheet(w["rewards"], reward_head)
        for r in ledger.rewards:
            rs.row(
                [
                    r.name,
                    r.grid,
                    r.tier or "",
                    _n(r.earned),
                    _n(r.withheld),
                    reason[r.grid],
                    _n(r.paid),
                    _n(r.outstanding),
                ]
            )
        ps = book.sheet(w["projects"], project_head)
        for p in ledger.projects:
            ps.row(
                [
                    p.id,
                    p.name,
                    p.project,
                    p.purpose,
                    _n(p.applied),
                    _n(p.approved),
                    _n(p.disbursed),
                    _n(p.remaining),
                    w[f"{p.status}_s"],
                ]
            )
        return book.save()
    out = [f"## {title}", "", f"**{w['rewards']}**", ""]
    if ledger.rewards:
        out.append("| " + " | ".join(reward_head) + " |")
        out.append("|" + "---|" * len(reward_head))
        for r in ledger.rewards:
            cells = [r.name, r.grid, r.tier or "—", r.earned, r.withheld, reason[r.grid] or "—"]
            cells += [r.paid, r.outstanding]
            out.append("| " + " | ".join(str(c) for c in cells) + " |")
    else:
        out.append(w["none"])
    out += ["", f"**{w['projects']}**", ""]
    if ledger.projects:
        out.append("| " + " | ".join(project_head) + " |")
        out.append("|" + "---|" * len(project_head))
        for p in ledger.projects:
            cells = [p.id, p.name, p.project, p.purpose, p.applied, p.approved or "—"]
            cells += [p.disbursed, p.remaining, w[f"{p.status}_s"]]
            out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    else:
        out.append(w["none"])
    return ("\n".join(out) + "\n").encode()
