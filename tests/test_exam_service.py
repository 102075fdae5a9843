"""The monthly exam in the database: import refused whole, boards published from stored lines
(with the ticket rates shown beside them), the three-month deduction across the year end,
history, commands.

Scoring (config.toml [exam]): the board score is the exam score; tiers 90/80/70 ->
30000/20000/10000 yuan; floor 60; each board at most half of the grids, the red one only at or
above the floor. Exam = (basic + required) / their max * 100 + bonus, at most 100; an item's
points are the mean over its inspectors. Items are those of workflows/exam.toml: 道路路面
(roads, basic, max 10), 乱停车 (parking, required, max 10), 空地围栏 (fencing, bonus, max 4).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest.mock import patch

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from closeloop.app import App
from closeloop.cli import app as cli_app
from closeloop.cli.common import State
from closeloop.exam import service as store
from closeloop.exam.render import render_board
from closeloop.models import city_scores, exam_lines, exam_plans, metadata, month_results
from closeloop.tickets import Invalid, NotFound
from tests.conftest import CONFIG
from tests.exam_data import APRIL, V, csv, sheet
from tests.factories import count, step
from tests.report_data import REAL_NOW, submit, z


@pytest.fixture
def exam_app(app: App) -> App:
    metadata.create_all(app.engine)
    return app


def caoyuan_tickets(app: App) -> None:
    """Two tickets due in April for 曹园: both closed, one fixed late -> on time 1/2, closed 2/2."""
    on_time = submit(app, f"{V[2]}-G01", "sanitation", z(4, 7, 9))
    step(app, on_time, "fix", "caoyuan.g1", z(4, 7, 15), now=REAL_NOW, note="ok")
    step(app, on_time, "verify", "caoyuan.lead", z(4, 7, 16), now=REAL_NOW)
    step(app, on_time, "close", "caoyuan.lead", z(4, 7, 17), now=REAL_NOW)
    late = submit(app, f"{V[2]}-G02", "sanitation", z(4, 8, 9))
    # 48 h: due after 24 h
    step(app, late, "fix", "caoyuan.g2", z(4, 10, 9), now=REAL_NOW, note="ok")
    step(app, late, "verify", "caoyuan.lead", z(4, 10, 10), now=REAL_NOW)
    step(app, late, "close", "caoyuan.lead", z(4, 10, 11), now=REAL_NOW)


# --------------------------------------------------------------------------- import


def test_import_stores_every_line(exam_app: App) -> None:
    result = store.import_exam(exam_app, APRIL, REAL_NOW, source="april.csv")
    assert (result.lines, result.months, result.grids) == (18, ("2026-04",), 5)
    assert count(exam_app, exam_lines) == 18
    with exam_app.engine.connect() as conn:
        lines = store.stored_lines(conn, "2026-04")
    assert {(ln.grid, ln.sheet, ln.item, ln.score) for ln in lines} >= {
        (V[1], "bonus", "fencing", Decimal(2)),
        (V[2], "basic", "roads", Decimal(9)),
    }


def test_a_bad_file_is_refused_whole_with_every_problem(exam_app: App) -> None:
    bad = csv(
        *sheet("2026-04", "JS-E01", V[1], 9, 8),  # lines 2-3: fine
        f"2026-04,{V[2]},{V[2]},basic,道路路面,9,10,",  # 4: scores itself
        "2026-04,JS-E01,JS-X99,basic,道路路面,9,10,",  # 5: unknown grid
        f"2026-04,JS-E01,{V[3]},basic,道路路面,11,10,",  # 6: out of range
        f"2026-04,JS-E01,{V[1]},basic,道路路面,7,10,",  # 7: duplicate of line 2
        "2026-04,JS-E01,JS-A1,basic,道路路面,7,10,",  # 8: a medium grid is not under exam
    )
    with pytest.raises(store.ExamRefused) as info:
        store.import_exam(exam_app, bad, REAL_NOW)
    assert info.value.problems == [
        f"line 4: grid '{V[2]}' is not an inspecting grid",
        f"line 4: grid '{V[2]}' scores itself",
        "line 5: unknown grid 'JS-X99'",
        "line 6: score 11 is out of range 0..10",
        "line 7: duplicate of line 2 (same month, inspector_grid, grid, sheet and item)",
        "line 8: grid 'JS-A1' is not under exam",
    ]
    assert str(info.value).startswith("exam file refused, 6 problems:")
    assert count(exam_app, exam_lines) == 0


def test_lines_already_imported_are_refused(exam_app: App) -> None:
    store.import_exam(exam_app, APRIL, REAL_NOW)
    more = csv(
        *sheet("2026-04", "JS-E03", V[1], 9, 9),  # new inspector: fine
        f"2026-04,JS-E01,{V[1]},basic,道路路面,9,10,",  # already stored
    )
    with pytest.raises(store.ExamRefused) as info:
        store.import_exam(exam_app, more, REAL_NOW)
    assert info.value.problems == [
        "line 4: already imported (same month, inspector_grid, grid, sheet and item)"
    ]
    assert count(exam_app, exam_lines) == 18


def test_only_the_configured_inspectors_may_inspect(exam_app: App) -> None:
    from dataclasses import replace

    raw = dict(exam_app.settings.raw)
    raw["exam"] = {**raw["exam"], "inspectors": ["JS-E01", "JS-E02"]}
    a = replace(exam_app, settings=replace(exam_app.settings, raw=raw))
    with pytest.raises(store.ExamRefused) as info:
        store.import_exam(a, APRIL, REAL_NOW)
    assert info.value.problems == [
        "line 18: grid 'JS-C1' is not an inspecting grid",
        "line 19: grid 'JS-C1' is not an inspecting grid",
    ]
    raw["exam"] = {**raw["exam"], "inspectors": ["JS-E99"]}
    with pytest.raises(Invalid, match="unknown grid"):
        store.import_exam(a, APRIL, REAL_NOW)


# --------------------------------------------------------------------------- boards


def test_april_board_golden(exam_app: App) -> None:
    caoyuan_tickets(exam_app)
    store.import_exam(exam_app, APRIL, REAL_NOW)
    view = store.publish_board(exam_app, "2026-04", REAL_NOW + timedelta(days=20))
    got = [
        (
            line.result.grid,
            line.result.rank,
            line.result.exam,
            line.result.score,
            line.result.tier_zh,
            line.result.reward,
            line.result.below_floor,
        )
        for line in view.lines
    ]
    assert got == [
        (V[4], 1, Decimal("100.00"), Decimal("100.00"), "一档", Decimal(30000), False),
        # the exam alone decides: one of 曹园's two tickets was late, which is shown, not mixed in
        (V[2], 2, Decimal("97.50"), Decimal("97.50"), "一档", Decimal(30000), False),
        (V[1], 3, Decimal("87.00"), Decimal("87.00"), "二档", Decimal(20000), False),
        (V[5], 4, Decimal("70.00"), Decimal("70.00"), "三档", Decimal(10000), False),
        (V[3], 5, Decimal("50.00"), Decimal("50.00"), None, Decimal(0), True),
    ]
    caoyuan = view.lines[1].result
    assert (caoyuan.on_time_rate, caoyuan.closure_rate) == (0.5, 1.0)
    assert view.lines[0].result.on_time_rate is None  # nothing due for 西塘
    # five grids: each board at most two
    assert [line.result.grid for line in view.red] == [V[4], V[2]]
    assert [line.result.grid for line in view.yellow] == [V[5], V[3]]
    data = view.as_json()
    assert data["accountability"] == [V[3]]
    assert data["penalties"] == []  # April's low score withholds May, June and July
    assert data["rows"][1]["score"] == 97.5 and data["rows"][0]["reward"] == 30000
    assert data["weights"] == {"exam": 1.0, "on_time_rate": 0.0, "closure_rate": 0.0}
    assert count(exam_app, month_results) == 5
    # publishing again replaces the month, never duplicates it
    store.publish_board(exam_app, "2026-04", REAL_NOW + timedelta(days=21))
    assert count(exam_app, month_results) == 5


YEAR_END = csv(
    # 2026-12: 东河 50 and 楼下 (6 + 5) / 20 = 55 fall below 60; 堰头 90
    *sheet("2026-12", "JS-E01", V[3], 5, 5),
    *sheet("2026-12", "JS-E01", V[5], 6, 5),
    *sheet("2026-12", "JS-E01", V[1], 9, 9),
    # 2027-01: 东河 95 (一档, but withheld), 堰头 80; 楼下 not examined
    *sheet("2027-01", "JS-E01", V[3], 10, 9),
    *sheet("2027-01", "JS-E01", V[1], 8, 8),
    # 2027-02: 东河 85, 堰头 80, 楼下 90: both still withheld
    *sheet("2027-02", "JS-E01", V[3], 9, 8),
    *sheet("2027-02", "JS-E01", V[1], 8, 8),
    *sheet("2027-02", "JS-E01", V[5], 9, 9),
    # 2027-03: 东河 75 and 楼下 90: the third and last month withheld
    *sheet("2027-03", "JS-E01", V[3], 8, 7),
    *sheet("2027-03", "JS-E01", V[5], 9, 9),
    # 2027-04: 东河 85 and 楼下 90 are paid again
    *sheet("2027-04", "JS-E01", V[3], 9, 8),
    *sheet("2027-04", "JS-E01", V[5], 9, 9),
)


def test_three_month_deduction_across_the_year_end(exam_app: App) -> None:
    store.import_exam(exam_app, YEAR_END, REAL_NOW)
    later = z(5, 5, 9, year=2027)
    # Publishing February publishes the unpublished December and January first.
    feb = store.publish_board(exam_app, "2027-02", later)
    with exam_app.engine.connect() as conn:
        published = sorted(set(conn.execute(select(month_results.c.month)).scalars()))
    assert published == ["2026-12", "2027-01", "2027-02"]

    dec = store.board_view(exam_app, "2026-12", later)
    assert [(ln.result.grid, ln.result.below_floor, ln.result.red) for ln in dec.lines] == [
        (V[1], False, True),
        (V[5], True, False),
        (V[3], True, False),
    ]

    jan = store.board_view(exam_app, "2027-01", later)
    d = {ln.result.grid: ln.result for ln in jan.lines}
    assert (d[V[3]].tier_zh, d[V[3]].reward, d[V[3]].reward_lost) == ("一档", 0, 30000)
    assert (d[V[3]].penalised, d[V[3]].penalty_source_month, d[V[3]].penalty_until) == (
        True,
        "2026-12",
        "2027-03",
    )
    assert d[V[3]].below_floor is False  # accountability started in December only
    assert (d[V[1]].reward, d[V[1]].penalised) == (20000, False)
    # 楼下 was not examined in January, yet its deduction is shown on January's board
    assert [(p.penalty.grid, p.penalty.examined) for p in jan.penalties] == [
        (V[3], True),
        (V[5], False),
    ]

    f = {ln.result.grid: ln.result for ln in feb.lines}
    assert (f[V[3]].reward, f[V[3]].reward_lost, f[V[3]].penalised) == (0, 20000, True)
    assert (f[V[5]].reward, f[V[5]].reward_lost, f[V[5]].penalised) == (0, 30000, True)

    mar = store.publish_board(exam_app, "2027-03", later)
    m = {ln.result.grid: ln.result for ln in mar.lines}
    assert (m[V[3]].penalised, m[V[3]].reward, m[V[3]].reward_lost) == (True, 0, 10000)
    assert (m[V[5]].penalised, m[V[5]].reward, m[V[5]].reward_lost) == (True, 0, 30000)

    apr = store.publish_board(exam_app, "2027-04", later)
    a = {ln.result.grid: ln.result for ln in apr.lines}
    assert (a[V[3]].penalised, a[V[3]].reward, a[V[3]].tier_zh) == (False, 20000, "二档")
    assert (a[V[5]].penalised, a[V[5]].reward) == (False, 30000)
    assert apr.penalties == ()

    name, history = store.grid_history(exam_app, V[3])
    assert name == "东河村"
    assert [(r.month, r.score, r.below_floor, r.penalised, r.reward) for r in history] == [
        ("2026-12", Decimal("50.00"), True, False, 0),
        ("2027-01", Decimal("95.00"), False, True, 0),
        ("2027-02", Decimal("85.00"), False, True, 0),
        ("2027-03", Decimal("75.00"), False, True, 0),
        ("2027-04", Decimal("85.00"), False, False, 20000),
    ]

    # Late lines for December lift 东河 above the floor: publishing December again frees it in
    # the three months after, which were published before.
    extra = csv(
        f"2026-12,JS-E02,{V[3]},basic,道路路面,10,10,",
        f"2026-12,JS-E02,{V[3]},required,乱停车,10,10,",
    )
    store.import_exam(exam_app, extra, later)
    store.publish_board(exam_app, "2026-12", later)
    _, history = store.grid_history(exam_app, V[3])
    # December: basic (5 + 10) / 2, required (5 + 10) / 2 -> 15 / 20 = 75 -> 三档
    assert [(r.month, r.score, r.penalised, r.reward) for r in history] == [
        ("2026-12", Decimal("75.00"), False, 10000),
        ("2027-01", Decimal("95.00"), False, 30000),
        ("2027-02", Decimal("85.00"), False, 20000),
        ("2027-03", Decimal("75.00"), False, 10000),
        ("2027-04", Decimal("85.00"), False, 20000),
    ]


def test_board_errors(exam_app: App) -> None:
    with pytest.raises(NotFound, match="no exam lines for 2026-05"):
        store.publish_board(exam_app, "2026-05", REAL_NOW)
    with pytest.raises(Invalid, match="YYYY-MM"):
        store.publish_board(exam_app, "2026-5", REAL_NOW)
    with pytest.raises(NotFound, match="not published"):
        store.board_view(exam_app, "2026-04", REAL_NOW)
    with pytest.raises(NotFound, match="unknown grid"):
        store.grid_history(exam_app, "NOPE")


def test_board_formats(exam_app: App) -> None:
    store.import_exam(exam_app, APRIL, REAL_NOW)
    view = store.publish_board(exam_app, "2026-04", REAL_NOW)
    html = render_board(view, "html", locale="zh_CN").decode()
    assert "<h1>金山经济开发区2026年4月月考红黄榜</h1>" in html
    assert "<h2>红榜</h2>" in html and "<h2>黄榜</h2>" in html and "启动问责" in html
    assert "总分即月考得分（红黄榜以此评定）" in html
    md = render_board(view, "md", locale="zh_CN").decode()
    assert "1. 西塘村 100.00（一档）" in md
    en = render_board(view, "html", locale="en").decode()
    assert "Accountability procedure" in en and "Tier 1" in en
    book = load_workbook(io.BytesIO(render_board(view, "xlsx", locale="zh_CN")))
    assert book.sheetnames == ["月考成绩", "红榜", "黄榜", "处罚与问责"]
    rows = list(book["月考成绩"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2], r[3]) for r in rows] == [
        (1, V[4], 100.0),
        (2, V[2], 97.5),
        (3, V[1], 87.0),
        (4, V[5], 70.0),
        (5, V[3], 50.0),
    ]
    assert json.loads(render_board(view, "json", locale="zh_CN")) == view.as_json()


# --------------------------------------------------------------------------- commands


def run(app: App, *args: str) -> str:
    with patch.object(State, "app", lambda _self: app):
        result = CliRunner().invoke(cli_app, ["--config", str(CONFIG), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_exam_commands(exam_app: App, tmp_path: Path) -> None:
    path = tmp_path / "april.csv"
    path.write_text("\ufeff" + APRIL, encoding="utf-8")
    assert "18 exam lines for 5 grids in 2026-04" in run(exam_app, "exam", "import", str(path))
    board = json.loads(run(exam_app, "exam", "board", "--month", "2026-04", "--format", "json"))
    assert board["red"] == [V[4], V[2]]
    out = tmp_path / "board.html"
    run(exam_app, "exam", "board", "--month", "2026-04", "--format", "html", "--out", str(out))
    assert "红榜" in out.read_text(encoding="utf-8")
    history = json.loads(run(exam_app, "exam", "history", V[3], "--json"))
    assert [(h["month"], h["score"], h["accountability"]) for h in history] == [
        ("2026-04", 50, True)
    ]
    text = run(exam_app, "exam", "history", V[3])
    assert "2026-04  #5" in text and "问责 accountability" in text


def test_exam_import_command_refuses_a_bad_file(
    exam_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from closeloop.cli import main

    path = tmp_path / "bad.csv"
    path.write_text(
        csv(f"2026-04,JS-A1,{V[1]},basic,x,5,10,", f"2026-04,JS-A1,{V[2]},bonus,fencing,5,,"),
        encoding="utf-8",
    )
    with (
        patch.object(State, "app", lambda _self: exam_app),
        patch("sys.argv", ["closeloop", "exam", "import", str(path)]),
        pytest.raises(SystemExit) as info,
    ):
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "error: exam file refused, 2 problems:\n"
        "line 2: unknown item 'x' of the basic sheet"
        " (its items: dead_corners, piling, roads, street_business)\n"
        "line 3: score 5 is out of range 0..4\n"
    )


# --------------------------------------------------------------------------- plan, status, city


def test_the_plan_is_stored_and_kept_and_the_next_month_repeats_no_pair(exam_app: App) -> None:
    april = store.make_plan(exam_app, "2026-04", REAL_NOW)
    assert len(april.lines) == 117 and april.repeats == 0 and april.own_medium == 0
    counts = sorted(len(v) for v in april.by_inspector().values())
    assert counts == [11] * 3 + [12] * 7
    with exam_app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(exam_plans)).scalar_one() == 117
    # asked again, the stored plan is the answer
    assert store.make_plan(exam_app, "2026-04", REAL_NOW).as_json() == april.as_json()
    assert store.plan_view(exam_app, "2026-04").as_json() == april.as_json()
    may = store.make_plan(exam_app, "2026-05", REAL_NOW)
    assert not {tuple(x.values()) for x in may.as_json()} & {
        tuple(x.values()) for x in april.as_json()
    }
    with pytest.raises(NotFound, match="no plan for 2026-06"):
        store.plan_view(exam_app, "2026-06")


def test_status_lists_scored_in_progress_and_missing(exam_app: App) -> None:
    plan = store.make_plan(exam_app, "2026-04", REAL_NOW)
    inspector = {x.grid: x.inspector_grid for x in plan.lines}
    text = csv(
        f"2026-04,{inspector[V[1]]},{V[1]},basic,roads,9,,",
        f"2026-04,{inspector[V[2]]},{V[2]},required,parking,8,,",
    )
    store.import_exam(exam_app, text, REAL_NOW)
    found = {s.grid: s for s in store.exam_status(exam_app, "2026-04")}
    assert len(found) == 117
    assert (found[V[1]].status, found[V[1]].lines, found[V[1]].inspector_grid) == (
        "scored",
        1,
        inspector[V[1]],
    )
    assert Counter(s.status for s in found.values()) == {"scored": 2, "missing": 115}


def test_city_scores_are_recorded_and_decide_the_tiers(exam_app: App) -> None:
    store.import_exam(exam_app, APRIL, REAL_NOW)
    city = "month,grid,score\n" + f"2026-04,{V[4]},72\n2026-04,{V[1]},58.5\n"
    result = store.import_city_scores(exam_app, city, REAL_NOW, source="city.csv")
    assert (result.rows, result.replaced, result.months) == (2, 0, ("2026-04",))
    view = store.publish_board(exam_app, "2026-04", REAL_NOW)
    got = {ln.result.grid: ln.result for ln in view.lines}
    # 西塘: exam 100, city 72 -> 三档; 堰头: exam 87, city 58.5 -> below the floor, 问责
    assert (got[V[4]].city_score, got[V[4]].tier_zh, got[V[4]].reward) == (72, "三档", 10000)
    assert (got[V[1]].below_floor, got[V[1]].reward, got[V[1]].red) == (True, 0, False)
    assert (got[V[2]].basis, got[V[2]].tier_zh) == ("exam", "一档")  # no city score
    # a second import of the same month and grid replaces the first
    again = store.import_city_scores(exam_app, f"month,grid,score\n2026-04,{V[1]},91\n", REAL_NOW)
    assert again.replaced == 1
    view = store.publish_board(exam_app, "2026-04", REAL_NOW)
    assert {ln.result.grid: ln.result.tier_zh for ln in view.lines}[V[1]] == "一档"


def test_a_bad_city_file_is_refused_whole(exam_app: App) -> None:
    bad = "month,grid,score\n" + "\n".join(
        [
            f"2026-04,{V[1]},80",
            f"2026-13,{V[2]},80",
            "2026-04,JS-X1,80",
            "2026-04,JS-A1,80",
            f"2026-04,{V[3]},101",
            f"2026-04,{V[1]},70",
        ]
    )
    with pytest.raises(store.ExamRefused) as info:
        store.import_city_scores(exam_app, bad + "\n", REAL_NOW)
    assert info.value.problems == [
        "line 3: month '2026-13' is not of the form YYYY-MM (e.g. 2026-04)",
        "line 4: unknown grid 'JS-X1'",
        "line 5: grid 'JS-A1' is not under exam",
        "line 6: score '101' is not a number within 0..100",
        "line 7: duplicate of line 2 (same month and grid)",
    ]
    assert count(exam_app, city_scores) == 0


def test_plan_sheets_status_and_city_commands(exam_app: App, tmp_path: Path) -> None:
    sheets = json.loads(run(exam_app, "exam", "sheets", "--json"))
    assert [i["key"] for i in sheets["bonus"]["items"]] == ["fencing", "greening", "village_rules"]
    assert sheets["basic"]["name_zh"] == "基础卷" and sheets["required"]["max"] == 50
    assert "乱搭乱建" in run(exam_app, "exam", "sheets")
    plan = json.loads(run(exam_app, "exam", "plan", "--month", "2026-04", "--json"))
    assert len(plan) == 117 and set(plan[0]) == {"inspector_grid", "grid"}
    assert "JS-A1 第一农村工作片:" in run(exam_app, "exam", "plan", "--month", "2026-04")
    status = json.loads(run(exam_app, "exam", "status", "--month", "2026-04", "--json"))
    assert {s["status"] for s in status} == {"missing"}
    assert "0 scored, 0 in_progress, 117 missing" in run(
        exam_app, "exam", "status", "--month", "2026-04"
    )
    path = tmp_path / "city.csv"
    path.write_text(f"month,grid,score\n2026-04,{V[1]},88\n", encoding="utf-8")
    assert "1 city scores in 2026-04" in run(exam_app, "exam", "city-import", str(path))
