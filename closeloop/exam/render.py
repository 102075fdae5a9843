"""Render the month's exam board as HTML, Markdown, XLSX or JSON.

The board's words are here; the spreadsheet helpers, the style sheet and the shared words
(rank, grid, rates) are the weekly report's (`closeloop.reports.render`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from closeloop.exam.service import BoardView
from closeloop.reports import render as report_render
from closeloop.reports.render import Book, Sheet, check_format

TEMPLATES = Path(__file__).parent / "templates"

BOARD_LABELS: Mapping[str, Mapping[str, str]] = {
    "zh_CN": {
        "board_title": "{zone}{month}月考红黄榜",
        "board_month": "{year}年{month}月",
        "score": "总分",
        "exam": "考核分",
        "tier": "奖励档次",
        "reward": "奖励（元）",
        "reward_lost": "取消奖励（元）",
        "penalty": "处罚",
        "penalty_text": "{source}得分低于{floor}分，取消奖励至{until}",
        "accountability": "启动问责",
        "penalties": "处罚与问责",
        "red_board": "红榜",
        "yellow_board": "黄榜",
        "results": "月考成绩",
        "not_examined": "本月未参加考核",
        "no_penalties": "本月无处罚。",
        "history_title": "{name}（{code}）历月成绩",
        "month": "月份",
        "yes": "是",
        "no": "否",
        "tiers_rule": "奖励档次：{tiers}；低于{floor}分取消三个月奖励并启动问责。",
        "weights_rule": "总分＝考核分×{exam}＋按期结案率×{on_time}＋结案率×{closure}"
        "（无应结案件时按比例折算）。",
        "city_score": "市考核得分",
        "weights_exam_only": "总分即月考得分（红黄榜以此评定）；按期结案率和结案率仅供参考。",
        "tiers_basis": "奖励档次和底线按市月度考核得分评定，无市考核得分的按月考得分。",
        "withheld_text": "{source}得分低于{floor}分，扣除{months}奖励",
    },
    "en": {
        "board_title": "{zone}: monthly exam {month}, red and yellow boards",
        "board_month": "{year}-{month:02d}",
        "score": "Score",
        "exam": "Exam",
        "tier": "Tier",
        "reward": "Reward (yuan)",
        "reward_lost": "Reward withheld (yuan)",
        "penalty": "Penalty",
        "penalty_text": "scored below {floor} in {source}: no reward until {until}",
        "accountability": "Accountability procedure",
        "penalties": "Penalties and accountability",
        "red_board": "Red board",
        "yellow_board": "Yellow board",
        "results": "Results",
        "not_examined": "not examined this month",
        "no_penalties": "No penalty this month.",
        "history_title": "{name} ({code}): monthly results",
        "month": "Month",
        "yes": "yes",
        "no": "no",
        "tiers_rule": "Tiers: {tiers}; below {floor}: no reward for three months and an"
        " accountability procedure.",
        "weights_rule": "Score = exam × {exam} + on-time rate × {on_time} + closure rate ×"
        " {closure} (rescaled when nothing was due).",
        "city_score": "City score",
        "weights_exam_only": "The score is the exam score (it decides the boards); the ticket"
        " rates are shown for reference.",
        "tiers_basis": "Tiers and the floor follow the city's monthly assessment where a grid has"
        " one, else the exam score.",
        "withheld_text": "below {floor} in {source}: reward of {months} withheld",
    },
}


def labels(locale: str) -> dict[str, str]:
    return {**report_render.labels(locale), **BOARD_LABELS[locale]}


def _env(autoescape: bool) -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(TEMPLATES), FileSystemLoader(report_render.TEMPLATES)]
        ),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = report_render.pct
    return env


def render_board(view: BoardView, fmt: str, *, locale: str) -> bytes:
    """The month's exam board as bytes in ``fmt``."""
    check_format(fmt)
    t = labels(locale)
    if fmt == "json":
        return (json.dumps(view.as_json(), ensure_ascii=False, indent=2) + "\n").encode()
    context = _board_context(view, locale, t)
    if fmt == "xlsx":
        return _board_xlsx(view, context, t)
    template = "board.html.j2" if fmt == "html" else "board.md.j2"
    return _env(fmt == "html").get_template(template).render(**context).encode()


def _month_text(month: str, t: Mapping[str, str]) -> str:
    return t["board_month"].format(year=int(month[:4]), month=int(month[5:]))


def _board_context(view: BoardView, locale: str, t: Mapping[str, str]) -> dict[str, Any]:
    cfg = view.config
    tiers = "，" if locale != "en" else "; "
    tier_text = tiers.join(
        f"{(tier.name_en if locale == 'en' else tier.name_zh)} ≥ {tier.min_score} ({tier.reward})"
        for tier in cfg.tiers
    )
    return {
        "t": t,
        "v": view,
        "locale": locale,
        "title": t["board_title"].format(zone=view.zone_name, month=_month_text(view.month, t)),
        "tier_name": lambda row: (row.tier_en if locale == "en" else row.tier_zh) or "—",
        "month_text": lambda m: _month_text(m, t) if m else "—",
        "tiers_rule": t["tiers_rule"].format(tiers=tier_text, floor=cfg.floor),
        "weights_rule": (
            t["weights_exam_only"]
            if cfg.weights["exam"] == 1
            else t["weights_rule"].format(
                exam=cfg.weights["exam"],
                on_time=cfg.weights["on_time_rate"],
                closure=cfg.weights["closure_rate"],
            )
        )
        + (t["tiers_basis"] if cfg.tiers_on == "city" else ""),
        "has_city": any(line.result.city_score is not None for line in view.lines),
        "penalty_text": lambda p: t["penalty_text"].format(
            source=_month_text(p.source_month, t),
            until=_month_text(p.until, t),
            floor=cfg.floor,
        ),
    }


def _board_xlsx(view: BoardView, context: Mapping[str, Any], t: Mapping[str, str]) -> bytes:
    book = Book()
    headers = [
        t["rank"],
        t["grid"],
        "code",
        t["score"],
        t["exam"],
        t["on_time_rate"],
        t["closure_rate"],
        t["city_score"],
        t["tier"],
        t["reward"],
        t["reward_lost"],
        t["penalty"],
        t["accountability"],
    ]

    def add(sheet: Sheet, rows: Iterable[Any]) -> None:
        for line in rows:
            r = line.result
            sheet.row(
                [
                    r.rank,
                    line.name,
                    r.grid,
                    float(r.score),
                    float(r.exam),
                    None if r.on_time_rate is None else float(r.on_time_rate),
                    None if r.closure_rate is None else float(r.closure_rate),
                    None if r.city_score is None else float(r.city_score),
                    context["tier_name"](r),
                    float(r.reward),
                    float(r.reward_lost),
                    context["month_text"](r.penalty_source_month) if r.penalised else "",
                    t["yes"] if r.below_floor else "",
                ],
                rate_columns=(5, 6),
            )

    add(book.sheet(t["results"], headers), view.lines)
    add(book.sheet(t["red_board"], headers), view.red)
    add(book.sheet(t["yellow_board"], headers), view.yellow)
    pen = book.sheet(t["penalties"], [t["grid"], "code", t["penalty"], t["accountability"]])
    for p in view.penalties:
        pen.row(
            [
                p.name,
                p.penalty.grid,
                context["penalty_text"](p.penalty),
                t["yes"] if p.penalty.source_month == view.month else "",
            ]
        )
    return book.save()
