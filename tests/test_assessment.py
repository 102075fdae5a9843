"""Golden tests of the supervision office's figures (issue 16) on a small week counted by hand,
on SQLite and PostgreSQL: case sources, 处置率 and 按期处置率, late disposals and closures, 按时
核查率, failed verifications, urgent cases, 督办 done on time, 满意率 and 解决率, the top
categories, the composite score and its grade, the year-on-year column; every figure equals
the length of its `report items` list.

The week, 2026-W14 (Mon 30 Mar to Sun 5 Apr, Asia/Shanghai), all on micro grid
JS-A1-V01-G03 of 堰头村 (random_piling: 24 h to fix, 4 h when urgent; verify and close one
working day; the ladder climbs one working day after a missed deadline):

  A  hotline  filed Mon 09:00, fixed Mon 15:00, verified Tue 10:00, closed Tue 11:00;
              call-back Wed 10:00: solved, satisfied
  B  patrol   filed Mon 09:00, fix deadline Tue 09:00 missed: the sweep at Tue 10:30 climbs
              a rung (supervision deadline Wed 09:00); fixed Tue 12:00 (late, but before the
              supervision deadline), verified Wed 16:00 (check due Wed 12:00: late), closed
              Wed 17:00; call-back Thu 10:00: not solved, dissatisfied
  C  public   urgent, filed Mon 09:00 (fix deadline Mon 13:00); fixed Mon 12:00, sent back
              Mon 14:00, fixed 15:00, sent back 16:00, fixed 17:00, sent back Tue 09:00, fixed
              Tue 10:00 (that fix stands: late); its fourth check, due Wed 10:00, never made
  D  leader   filed Mon 09:00, deferred Mon 10:00 (缓办)
  E  media    a damaged road filed Mon 09:00: 15 working days, not due this week
  F  public   random parking (2 h) filed Mon 09:00 by a reporter with a secret, fixed 10:00,
              verified 11:00, closed 11:30; the reporter answers Tue 09:00: solved, basically
              satisfied
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from closeloop import escalation, feedback, service
from closeloop.app import App
from closeloop.db import read_only
from closeloop.models import grids
from closeloop.reports import indicators as ind
from closeloop.reports.composite import Composite
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from closeloop.service import NewProblem
from closeloop.tickets import StepInput
from closeloop.web import access
from tests.cli_support import run, run_json

ZONE = ZoneInfo("Asia/Shanghai")
W14 = ind.week_period("2026-W14", ZONE)
MICRO = "JS-A1-V01-G03"
LEADER, VILLAGE, SUPERVISOR = "yantou.g3", "yantou.lead", "duban.wang"


def local(day: int, hour: int, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


MON, TUE, WED, THU = 30, 31, 1, 2  # 30, 31 March; 1, 2 April


def day(d: int) -> dict[str, int]:
    return {"day": d, "month": 3 if d >= 30 else 4}


def at(d: int, hour: int, minute: int = 0) -> datetime:
    return local(hour=hour, minute=minute, **day(d))


def step(app: App, ref: str, name: str, by: str, when: datetime, **given: Any) -> None:
    service.run_step(app, ref, name, by, StepInput(**given), when)


def problem(title: str, source: str, **kw: Any) -> NewProblem:
    return NewProblem(MICRO, kw.pop("category", "random_piling"), title, source=source, **kw)


@pytest.fixture
def week(app: App) -> dict[str, str]:
    filed = at(MON, 9)
    _, digest = access.new_reporter_secret()
    refs = {
        "A": service.submit(app, problem("A", "hotline"), filed),
        "B": service.submit(app, problem("B", "patrol"), filed),
        "C": service.submit(app, problem("C", "public", urgent=True), filed),
        "D": service.submit(app, problem("D", "leader"), filed),
        "E": service.submit(app, problem("E", "media", category="road"), filed),
        "F": service.submit(
            app,
            problem("F", "public", category="random_parking", reporter_secret_hash=digest),
            filed,
        ),
    }
    a, b, c, d, f = (refs[k] for k in "ABCDF")
    step(app, d, "defer", SUPERVISOR, at(MON, 10), reason="待拆迁", review_on=local(20, 9, month=4))
    step(app, f, "fix", LEADER, at(MON, 10), note="已挪车")
    step(app, f, "verify", VILLAGE, at(MON, 11))
    step(app, f, "close", VILLAGE, at(MON, 11, 30))
    step(app, c, "fix", LEADER, at(MON, 12), note="1")
    step(app, c, "reject", VILLAGE, at(MON, 14), reason="没清干净")
    step(app, a, "fix", LEADER, at(MON, 15), note="已清理")
    step(app, c, "fix", LEADER, at(MON, 15), note="2")
    step(app, c, "reject", VILLAGE, at(MON, 16), reason="还有")
    step(app, c, "fix", LEADER, at(MON, 17), note="3")
    step(app, c, "reject", VILLAGE, at(TUE, 9), reason="又堆了")
    feedback.reporter_answer(app, f, digest, feedback.Answer(True, "basic"), at(TUE, 9))
    step(app, a, "verify", VILLAGE, at(TUE, 10))
    step(app, c, "fix", LEADER, at(TUE, 10), note="4")
    escalation.sweep(app, at(TUE, 10, 30))
    step(app, a, "close", VILLAGE, at(TUE, 11))
    step(app, b, "fix", LEADER, at(TUE, 12), note="已清理")
    feedback.phone_callback(app, a, SUPERVISOR, feedback.Answer(True, "satisfied"), at(WED, 10))
    step(app, b, "verify", VILLAGE, at(WED, 16))
    step(app, b, "close", VILLAGE, at(WED, 17))
    feedback.phone_callback(
        app, b, SUPERVISOR, feedback.Answer(False, "dissatisfied", "没解决"), at(THU, 10)
    )
    return refs


def village_path(app: App) -> str:
    with app.engine.connect() as conn:
        return str(conn.execute(select(grids.c.path).where(grids.c.code == "JS-A1-V01")).scalar())


# Counted by hand from the module docstring.
EXPECTED_COUNTS = {
    "reported": 6,  # A-F
    "due": 5,  # A B C D F (E: a road, 15 working days)
    "deferred": 1,  # D
    "closed": 3,  # A B F
    "closed_on_time": 2,  # A F
    "late_closed": 1,  # B: fixed 3 h after its deadline, closed
    "disposed": 4,  # A B C F (C's last fix stands; D never fixed)
    "disposed_on_time": 2,  # A F
    "late_disposed": 2,  # B (Tue 12:00 > Tue 09:00), C (Tue 10:00 > Mon 13:00)
    "rework": 1,  # C
    "failed_verifications": 1,  # C, sent back three times
    "urgent_due": 1,  # C
    "urgent_deferred": 0,
    "urgent_closed": 0,
    # checks due: A (Tue 15:00), B (Wed 12:00), C x4 (Tue 12:00, Tue 15:00, Tue 17:00,
    # Wed 10:00), F (Tue 10:00); decided in time: A, C's three rejections, F
    "verify_due": 7,
    "verified_on_time": 5,
    "supervision_due": 1,  # B's rung, due Wed 09:00
    "supervised_on_time": 1,  # fixed Tue 12:00
    "answers": 3,  # F (reporter), A and B (call-backs)
    "satisfied": 2,  # A satisfied, F basically satisfied
    "solved": 2,  # A, F
}
EXPECTED_ITEMS = {
    "late_closed": ["B"],
    "disposed": ["A", "B", "C", "F"],
    "disposed_on_time": ["A", "F"],
    "late_disposed": ["B", "C"],
    "failed_verifications": ["C"],
    "urgent_due": ["C"],
    "urgent_closed": [],
    "verify_due": ["A", "B", "C", "C", "C", "C", "F"],
    "verified_on_time": ["A", "C", "C", "C", "F"],
    "supervision_due": ["B"],
    "supervised_on_time": ["B"],
    "answers": ["A", "B", "F"],
    "satisfied": ["A", "F"],
    "solved": ["A", "F"],
    "by_source": ["A", "B", "C", "D", "E", "F"],
    "by_category": ["A", "B", "C", "D", "E", "F"],
}


def test_figures_of_the_week(app: App, week: dict[str, str]) -> None:
    with read_only(app.engine) as conn:
        result = ind.compute(conn, app, [W14])
    for path in (village_path(app), None):  # the village and the zone: the same tickets
        f = result.figures(path)
        assert {k: getattr(f, k) for k in EXPECTED_COUNTS} == EXPECTED_COUNTS
        assert f.by_source == {"hotline": 1, "patrol": 1, "public": 2, "leader": 1, "media": 1}
        assert f.by_category == {"random_piling": 4, "road": 1, "random_parking": 1}
        assert f.dispose_rate == 1.0  # 4 / (5 - 1)
        assert f.on_time_dispose_rate == 0.5  # 2 / 4
        assert f.on_time_verify_rate == 5 / 7
        assert f.supervised_on_time_rate == 1.0
        assert f.satisfaction_rate == 2 / 3 and f.solved_rate == 2 / 3
        assert f.urgent_closure_rate == 0.0  # 0 / (1 - 0)
        assert f.top_categories(2) == [("random_piling", 4), ("random_parking", 1)]
    # 按期处置率 × 60 + 结案率 × 30 + (1 − 返工率) × 10 = 0.5 × 60 + 0.75 × 30 + 0.8 × 10
    assert Composite().score(result.figures(None)) == 60.5
    assert Composite().grade(60.5) == "C"
    other = result.figures("/nowhere/")
    assert other.dispose_rate is None and Composite().score(other) is None


def test_every_new_figure_lists_its_tickets(app: App, week: dict[str, str]) -> None:
    name = {ref: k for k, ref in week.items()}
    with read_only(app.engine) as conn:
        for figure, expected in EXPECTED_ITEMS.items():
            listed = ind.items(conn, app, W14, figure)
            assert sorted(name[i.ref] for i in listed) == expected, figure
        sources = {name[i.ref]: i.key for i in ind.items(conn, app, W14, "by_source")}
        late = {name[i.ref]: i.due_at for i in ind.items(conn, app, W14, "late_disposed")}
        checks = [i.due_at for i in ind.items(conn, app, W14, "verify_due") if name[i.ref] == "C"]
        supervised = ind.items(conn, app, W14, "supervised_on_time")
    assert sources == {"A": "hotline", "B": "patrol", "C": "public", "D": "leader",
                       "E": "media", "F": "public"}  # fmt: skip
    assert late == {"B": at(TUE, 9), "C": at(MON, 13)}  # the case deadlines (C: urgent, 4 h)
    assert sorted(checks) == [at(TUE, 12), at(TUE, 15), at(TUE, 17), at(WED, 10)]
    assert [i.due_at for i in supervised] == [at(WED, 9)]  # the supervision deadline


def test_the_weekly_report_shows_them_in_every_format(app: App, week: dict[str, str]) -> None:
    service.submit(app, problem("去年", "public"), local(1, 9, month=4, year=2025))  # 2025-W14
    report = build_weekly(app, now=at(THU, 12) + timedelta(days=7), week="2026-W14")
    data = report.as_json()
    village = data["grids"]["JS-A1-V01"]
    assert {
        k: village[k]
        for k in (
            "by_source",
            "dispose_rate",
            "on_time_dispose_rate",
            "late_disposed",
            "late_closed",
            "on_time_verify_rate",
            "failed_verifications",
            "composite",
            "grade",
            "urgent",
            "supervised_on_time_rate",
            "satisfaction_rate",
            "solved_rate",
            "top_categories",
        )
    } == {
        "by_source": {"hotline": 1, "leader": 1, "media": 1, "patrol": 1, "public": 2},
        "dispose_rate": 1.0,
        "on_time_dispose_rate": 0.5,
        "late_disposed": 2,
        "late_closed": 1,
        "on_time_verify_rate": 0.7143,
        "failed_verifications": 1,
        "composite": 60.5,
        "grade": "C",
        "urgent": {"due": 1, "closed": 0, "closure_rate": 0.0},
        "supervised_on_time_rate": 1.0,
        "satisfaction_rate": 0.6667,
        "solved_rate": 0.6667,
        "top_categories": [
            {"category": "random_piling", "count": 4},
            {"category": "random_parking", "count": 1},
            {"category": "road", "count": 1},
        ],
    }
    assert data["zone"]["composite"] == 60.5 and data["zone"]["grade"] == "C"
    assert data["grids"]["JS-A1-V02"]["composite"] is None  # nothing due: no score
    # 同比: the same ISO week a year before had one ticket filed and due.
    assert data["year_ago"]["week"] == "2025-W14"
    assert (data["year_ago"]["zone"]["reported"], data["year_ago"]["zone"]["due"]) == (1, 1)

    html = render_weekly(report, "html", locale="zh_CN", workflow=app.workflow).decode()
    assert "九、考核指标" in html and "综合指标值" in html and 'class="grade-C"' in html
    assert "--grid JS-A1-V01 --figure late_disposed" in html
    assert "去年同期 2025-W14" in html and "同比" in html
    assert "热线（12345/12319）" in html and "高发问题（前5类）" in html
    md = render_weekly(report, "md", locale="en", workflow=app.workflow).decode()
    assert "9. Assessment figures" in md and "Composite 60.5 (C)" in md
    assert "A year ago (2025-W14)" in md
    from io import BytesIO

    from openpyxl import load_workbook

    book = load_workbook(
        BytesIO(render_weekly(report, "xlsx", locale="zh_CN", workflow=app.workflow))
    )
    sheet = book["九、考核指标"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "九、考核指标"
    first = rows[2]
    assert first[:2] == ("堰头村", "JS-A1-V01")  # ranked first: the only grid with a score
    assert first[-2:] == (60.5, "C")
    summary = list(book["一、全区概况"].iter_rows(values_only=True))
    assert summary[1][-2:] == ("去年同期 2025-W14", "同比")


def test_composite_weights_and_grades_are_configuration() -> None:
    from closeloop.config import ConfigError

    c = Composite.from_config(
        {
            "closure_rate": 50,
            "satisfaction_rate": 50,
            "grades": {"优": 85, "良": 70},
            "lowest": "差",
        }
    )
    f = ind.Figures(due=4, closed=3, answers=2, satisfied=2)
    assert c.score(f) == 87.5 and c.grade(87.5) == "优"  # 0.75 × 50 + 1.0 × 50
    assert c.grade(69.9) == "差"
    with pytest.raises(ConfigError, match="not a rate"):
        Composite.from_config({"speed": 10})
    with pytest.raises(ConfigError, match="a weight >= 0"):
        Composite.from_config({"closure_rate": -1})


def test_report_items_traces_a_figure_on_the_command_line(app: App, week: dict[str, str]) -> None:
    rows = run_json(app, "report", "items", "--week", "2026-W14", "--figure", "by_source", "--json")
    assert sorted((r["ref"], r["key"]) for r in rows) == sorted(
        (week[k], s) for k, s in zip("ABCDEF", SOURCE_OF, strict=True)
    )
    text = run(app, "report", "items", "--week", "2026-W14", "--grid", "JS-A1-V01",
               "--figure", "supervised_on_time")  # fmt: skip
    assert text.splitlines()[0] == "supervised_on_time 2026-W14 JS-A1-V01: 1"
    assert week["B"] in text and "2026-04-01T09:00" in text  # the supervision deadline


SOURCE_OF = ("hotline", "patrol", "public", "leader", "media", "public")
