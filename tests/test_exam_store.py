"""The monthly exam in the database: import refused whole, boards published from stored lines
and ticket figures, the three-month penalty across the year end, history, commands.

Scoring (config.toml [exam]): score = 0.7 exam + 0.2 on-time rate + 0.1 closure rate (rates in
%, left out and the weights rescaled when nothing was due); tiers 90/80/70 -> 30000/20000/10000
yuan; floor 60; each board at most half of the grids. Exam = (basic + required) / their max *
100 + bonus, at most 100; an item's points are the mean over its inspectors.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest.mock import patch

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from closeloop.bootstrap import App
from closeloop.cli import app as cli_app
from closeloop.cli.common import State
from closeloop.models import exam_lines, metadata, month_results
from closeloop.reports import store
from closeloop.reports.render import render_board
from closeloop.tickets import Invalid, NotFound
from tests.conftest import CONFIG
from tests.report_data import REAL_NOW, step, submit, z

HEADER = "month,inspector_grid,grid,sheet,item,score,max_score,note"
V = {n: f"JS-A1-V0{n}" for n in range(1, 6)}  # 堰头 曹园 东河 西塘 楼下


def csv(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def sheet(month: str, inspector: str, grid: str, basic: float, required: float) -> list[str]:
    return [
        f"{month},{inspector},{grid},basic,环境卫生,{basic},10,",
        f"{month},{inspector},{grid},required,乱堆乱放整治,{required},10,",
    ]


APRIL = csv(
    # 堰头: basic (9+8)/2 = 8.5, required (8+9)/2 = 8.5 -> 17/20 = 85, bonus 2 -> exam 87
    *sheet("2026-04", "JS-E01", V[1], 9, 8),
    *sheet("2026-04", "JS-E02", V[1], 8, 9),
    f"2026-04,JS-E01,{V[1]},加分卷,亮点工作,2,5,示范点",
    # 曹园: basic 9.5, required 10 -> 97.5
    *sheet("2026-04", "JS-E01", V[2], 10, 10),
    *sheet("2026-04", "JS-E02", V[2], 9, 10),
    # 东河: 5 + 5 -> 50
    *sheet("2026-04", "JS-E01", V[3], 5, 5),
    # 西塘: basic 10, required 9.5 -> 97.5, bonus 5 -> 102.5, capped at 100
    *sheet("2026-04", "JS-E01", V[4], 10, 9),
    *sheet("2026-04", "JS-E02", V[4], 10, 10),
    f"2026-04,JS-E01,{V[4]},bonus,亮点工作,5,5,",
    # 楼下: 7 + 7 -> 70
    *sheet("2026-04", "JS-C1", V[5], 7, 7),
)


@pytest.fixture
def exam_app(app: App) -> App:
    metadata.create_all(app.engine)
    return app


def caoyuan_tickets(app: App) -> None:
    """Two tickets due in April for 曹园: both closed, one fixed late -> on time 1/2, closed 2/2."""
    on_time = submit(app, f"{V[2]}-G01", "sanitation", z(4, 7, 9))
    step(app, on_time, "fix", "caoyuan.g1", z(4, 7, 15), note="ok")
    step(app, on_time, "verify", "caoyuan.lead", z(4, 7, 16))
    step(app, on_time, "close", "caoyuan.lead", z(4, 7, 17))
    late = submit(app, f"{V[2]}-G02", "sanitation", z(4, 8, 9))
    step(app, late, "fix", "caoyuan.g2", z(4, 10, 9), note="ok")  # 48 h: due after 24 h
    step(app, late, "verify", "caoyuan.lead", z(4, 10, 10))
    step(app, late, "close", "caoyuan.lead", z(4, 10, 11))


def count(app: App, table) -> int:  # type: ignore[no-untyped-def]
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


# --------------------------------------------------------------------------- import


def test_import_stores_every_line(exam_app: App) -> None:
    result = store.import_exam(exam_app, APRIL, REAL_NOW, source="april.csv")
    assert (result.lines, result.months, result.grids) == (18, ("2026-04",), 5)
    assert count(exam_app, exam_lines) == 18
    with exam_app.engine.connect() as conn:
        lines = store.stored_lines(conn, "2026-04")
    assert {(ln.grid, ln.sheet, ln.item, ln.score) for ln in lines} >= {
        (V[1], "bonus", "亮点工作", Decimal(2)),
        (V[2], "basic", "环境卫生", Decimal(9)),
    }


def test_a_bad_file_is_refused_whole_with_every_problem(exam_app: App) -> None:
    bad = csv(
        *sheet("2026-04", "JS-E01", V[1], 9, 8),  # lines 2-3: fine
        f"2026-04,{V[2]},{V[2]},basic,环境卫生,9,10,",  # 4: scores itself
        "2026-04,JS-E01,JS-X99,basic,环境卫生,9,10,",  # 5: unknown grid
        f"2026-04,JS-E01,{V[3]},basic,环境卫生,11,10,",  # 6: out of range
        f"2026-04,JS-E01,{V[1]},basic,环境卫生,7,10,",  # 7: duplicate of line 2
        "2026-04,JS-E01,JS-A1,basic,环境卫生,7,10,",  # 8: a medium grid is not under exam
    )
    with pytest.raises(store.ExamRefused) as info:
        store.import_exam(exam_app, bad, REAL_NOW)
    assert info.value.problems == [
        f"line 4: grid '{V[2]}' scores itself",
        "line 5: unknown grid 'JS-X99'",
        "line 6: score 11 is out of range 0..10",
        "line 7: duplicate of line 2 (same month, inspector_grid, grid, sheet and item)",
        "line 8: grid 'JS-A1' is not under exam",
    ]
    assert str(info.value).startswith("exam file refused, 5 problems:")
    assert count(exam_app, exam_lines) == 0


def test_lines_already_imported_are_refused(exam_app: App) -> None:
    store.import_exam(exam_app, APRIL, REAL_NOW)
    more = csv(
        *sheet("2026-04", "JS-E03", V[1], 9, 9),  # new inspector: fine
        f"2026-04,JS-E01,{V[1]},basic,环境卫生,9,10,",  # already stored
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
        # 0.7 * 97.5 + 0.2 * 50 + 0.1 * 100 = 68.25 + 10 + 10
        (V[2], 2, Decimal("97.50"), Decimal("88.25"), "二档", Decimal(20000), False),
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
    assert data["penalties"] == [
        {"grid": V[3], "source_month": "2026-04", "until": "2026-06", "examined": True}
    ]
    assert data["rows"][1]["score"] == 88.25 and data["rows"][0]["reward"] == 30000
    assert count(exam_app, month_results) == 5
    # publishing again replaces the month, never duplicates it
    store.publish_board(exam_app, "2026-04", REAL_NOW + timedelta(days=21))
    assert count(exam_app, month_results) == 5


YEAR_END = csv(
    # 2026-12: 东河 50 and 楼下 (6 + 5) / 20 = 55 fall below 60; 堰头 90
    *sheet("2026-12", "JS-E01", V[3], 5, 5),
    *sheet("2026-12", "JS-E01", V[5], 6, 5),
    *sheet("2026-12", "JS-E01", V[1], 9, 9),
    # 2027-01: 东河 95 (一档, but penalised), 堰头 80; 楼下 not examined
    *sheet("2027-01", "JS-E01", V[3], 10, 9),
    *sheet("2027-01", "JS-E01", V[1], 8, 8),
    # 2027-02: 东河 85, 堰头 80, 楼下 90: both still penalised (until 2027-02)
    *sheet("2027-02", "JS-E01", V[3], 9, 8),
    *sheet("2027-02", "JS-E01", V[1], 8, 8),
    *sheet("2027-02", "JS-E01", V[5], 9, 9),
    # 2027-03: 东河 85 and 楼下 90 are free again
    *sheet("2027-03", "JS-E01", V[3], 9, 8),
    *sheet("2027-03", "JS-E01", V[5], 9, 9),
)


def test_three_month_penalty_across_the_year_end(exam_app: App) -> None:
    store.import_exam(exam_app, YEAR_END, REAL_NOW)
    later = z(4, 5, 9, year=2027)
    # Publishing February publishes the unpublished December and January first.
    feb = store.publish_board(exam_app, "2027-02", later)
    with exam_app.engine.connect() as conn:
        published = sorted(set(conn.execute(select(month_results.c.month)).scalars()))
    assert published == ["2026-12", "2027-01", "2027-02"]

    dec = store.board_view(exam_app, "2026-12", later)
    assert [(ln.result.grid, ln.result.below_floor) for ln in dec.lines] == [
        (V[1], False),
        (V[5], True),
        (V[3], True),
    ]

    jan = store.board_view(exam_app, "2027-01", later)
    d = {ln.result.grid: ln.result for ln in jan.lines}
    assert (d[V[3]].tier_zh, d[V[3]].reward, d[V[3]].reward_lost) == ("一档", 0, 30000)
    assert (d[V[3]].penalised, d[V[3]].penalty_source_month, d[V[3]].penalty_until) == (
        True,
        "2026-12",
        "2027-02",
    )
    assert d[V[3]].below_floor is False  # accountability started in December only
    assert (d[V[1]].reward, d[V[1]].penalised) == (20000, False)
    # 楼下 was not examined in January, yet its penalty is shown on January's board
    assert [(p.penalty.grid, p.penalty.examined) for p in jan.penalties] == [
        (V[3], True),
        (V[5], False),
    ]

    f = {ln.result.grid: ln.result for ln in feb.lines}
    assert (f[V[3]].reward, f[V[3]].reward_lost, f[V[3]].penalised) == (0, 20000, True)
    assert (f[V[5]].reward, f[V[5]].reward_lost, f[V[5]].penalised) == (0, 30000, True)

    mar = store.publish_board(exam_app, "2027-03", later)
    m = {ln.result.grid: ln.result for ln in mar.lines}
    assert (m[V[3]].penalised, m[V[3]].reward, m[V[3]].tier_zh) == (False, 20000, "二档")
    assert (m[V[5]].penalised, m[V[5]].reward) == (False, 30000)
    assert mar.penalties == ()

    name, history = store.grid_history(exam_app, V[3])
    assert name == "东河村"
    assert [(r.month, r.score, r.below_floor, r.penalised, r.reward) for r in history] == [
        ("2026-12", Decimal("50.00"), True, True, 0),
        ("2027-01", Decimal("95.00"), False, True, 0),
        ("2027-02", Decimal("85.00"), False, True, 0),
        ("2027-03", Decimal("85.00"), False, False, 20000),
    ]

    # Late lines for December lift 东河 above the floor: publishing December again frees it in
    # January and February too, which were published before.
    extra = csv(
        f"2026-12,JS-E02,{V[3]},basic,环境卫生,10,10,",
        f"2026-12,JS-E02,{V[3]},required,乱堆乱放整治,10,10,",
    )
    store.import_exam(exam_app, extra, later)
    store.publish_board(exam_app, "2026-12", later)
    _, history = store.grid_history(exam_app, V[3])
    # December: basic (5 + 10) / 2, required (5 + 10) / 2 -> 15 / 20 = 75 -> 三档
    assert [(r.month, r.score, r.penalised, r.reward) for r in history] == [
        ("2026-12", Decimal("75.00"), False, 10000),
        ("2027-01", Decimal("95.00"), False, 30000),
        ("2027-02", Decimal("85.00"), False, 20000),
        ("2027-03", Decimal("85.00"), False, 20000),
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
    assert "2026年4月得分低于60分，取消奖励至2026年6月" in html
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
    path.write_text(csv(f"2026-04,{V[1]},{V[1]},basic,x,5,10,"), encoding="utf-8")
    with (
        patch.object(State, "app", lambda _self: exam_app),
        patch("sys.argv", ["closeloop", "exam", "import", str(path)]),
        pytest.raises(SystemExit) as info,
    ):
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == (f"error: exam file refused, 1 problem:\nline 2: grid '{V[1]}' scores itself\n")
