"""The exam's work after the plan: scoring a grid on the pages' service (save, resume, submit,
reopen), accountability cases opened by a board and closed by a supervisor, the fund ledger,
printable score sheets, and their commands. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest.mock import patch

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from closeloop import outbox
from closeloop.app import App
from closeloop.cli import app as cli_app
from closeloop.cli.common import State
from closeloop.db import read_only
from closeloop.evidence import StoredFile
from closeloop.exam import printing
from closeloop.exam import service as exam
from closeloop.exam.scoring import CSV_COLUMNS, read_exam_csv
from closeloop.models import (
    accountability_cases,
    exam_events,
    exam_lines,
    month_results,
    notifications,
    people,
)
from closeloop.notices import Notice, prepare
from closeloop.tickets import Actor, Conflict, Invalid, NotFound, NotPermitted
from closeloop.views import load_actor
from notifiers import Renderer
from tests.conftest import CONFIG
from tests.report_data import REAL_NOW

MONTH = "2026-04"
FULL = {
    "dead_corners": "15",
    "piling": "15",
    "roads": "10",
    "street_business": "10",
    "illegal_building": "20",
    "parking": "10",
    "tickets_closed": "10",
    "no_rebound": "10",
}


def actor(app: App, handle: str) -> Actor:
    with app.engine.connect() as conn:
        return load_actor(conn, handle)


def entered(points: Mapping[str, str], notes: Mapping[str, str] | None = None) -> dict:
    notes = notes or {}
    return {k: exam.Entered(v, notes.get(k)) for k, v in points.items()}


@pytest.fixture
def planned(app: App) -> dict[str, str]:
    """The April plan; returns each examined grid's inspecting grid."""
    plan = exam.make_plan(app, MONTH, REAL_NOW)
    return {x.grid: x.inspector_grid for x in plan.lines}


LEADS = {"JS-A1": "area1.lead", "JS-A2": "area2.lead", "JS-A3": "area3.lead"}


def inspected_by_area(planned: Mapping[str, str], area: str) -> list[str]:
    return sorted(g for g, i in planned.items() if i == area)


# --------------------------------------------------------------------------- scoring


def test_an_inspector_sees_their_grids_saves_resumes_and_submits(
    app: App, planned: dict[str, str]
) -> None:
    lead = actor(app, "area2.lead")
    mine = exam.inspector_grids(app, MONTH, lead)
    assert {s.grid for s in mine} == set(inspected_by_area(planned, "JS-A2"))
    assert 11 <= len(mine) <= 12 and {s.status for s in mine} == {"missing"}
    grid = mine[0].grid

    # save part of the sheet: in progress, resumable
    first = exam.save_grading(
        app, MONTH, grid, lead, entered({"roads": "8", "piling": "15"}), REAL_NOW
    )
    assert first.status == "in_progress"
    again = exam.grading_form(app, MONTH, grid, lead)
    assert {e.item.key: e.points for e in again.entries if e.points is not None} == {
        "roads": Decimal(8),
        "piling": Decimal(15),
    }
    statuses = {s.grid: s.status for s in exam.exam_status(app, MONTH)}
    assert statuses[grid] == "in_progress"

    # submitting with items missing and a deduction without a note is refused whole
    with pytest.raises(exam.ExamRefused) as info:
        exam.save_grading(
            app,
            MONTH,
            grid,
            lead,
            entered({**FULL, "roads": "8", "parking": ""}),
            REAL_NOW,
            submit=True,
        )
    assert info.value.problems == [
        "roads 道路路面: a deduction needs a note",
        "parking 乱停车: no points entered",
    ]
    photo = StoredFile("ab" * 32 + ".png", "corner.png", "image/png", 10)
    points = {**FULL, "roads": "8", "fencing": "3"}
    done = exam.save_grading(
        app,
        MONTH,
        grid,
        lead,
        {
            **entered(points, {"roads": "主路有泥泞积水"}),
            "roads": exam.Entered("8", "主路有泥泞积水", photo),
        },
        REAL_NOW + timedelta(hours=1),
        submit=True,
    )
    # (98 of 100) + bonus 3, capped at 100
    assert done.status == "submitted" and done.total == Decimal("100.00")
    roads = next(e for e in done.entries if e.item.key == "roads")
    assert (roads.points, roads.note, roads.photo_label) == (
        Decimal(8),
        "主路有泥泞积水",
        "corner.png",
    )
    with app.engine.connect() as conn:
        lines = conn.execute(
            select(exam_lines.c.item, exam_lines.c.entered_by, exam_lines.c.source).where(
                exam_lines.c.month == MONTH
            )
        ).all()
        kinds = conn.execute(select(exam_events.c.kind).order_by(exam_events.c.id)).scalars()
        assert list(kinds) == ["saved", "submitted"]
    assert len(lines) == 9 and {(ln[1], ln[2]) for ln in lines} == {("area2.lead", "web")}
    assert {s.grid: s.status for s in exam.exam_status(app, MONTH)}[grid] == "scored"

    # final: no more saving; a supervisor reopens with a reason, then it can be changed again
    with pytest.raises(Conflict, match="submitted"):
        exam.save_grading(app, MONTH, grid, lead, entered(FULL), REAL_NOW)
    with pytest.raises(NotPermitted):
        exam.reopen_grading(app, MONTH, grid, lead, "重新核对", REAL_NOW)
    sup = actor(app, "duban.wang")
    with pytest.raises(Invalid, match="reason"):
        exam.reopen_grading(app, MONTH, grid, sup, " ", REAL_NOW)
    reopened = exam.reopen_grading(app, MONTH, grid, sup, "照片与点位不符，重新核对", REAL_NOW)
    assert reopened.status == "in_progress"
    assert reopened.events[-1]["kind"] == "reopened"
    assert reopened.events[-1]["reason"] == "照片与点位不符，重新核对"
    with pytest.raises(Conflict, match="not submitted"):
        exam.reopen_grading(app, MONTH, grid, sup, "again", REAL_NOW)
    # the photo is kept when the item is saved again without a new one
    kept = exam.save_grading(app, MONTH, grid, lead, entered({"roads": "9"}), REAL_NOW)
    assert next(e for e in kept.entries if e.item.key == "roads").photo == photo.stored_name


def test_only_the_planned_inspector_or_a_supervisor_scores_a_grid(
    app: App, planned: dict[str, str]
) -> None:
    grid = inspected_by_area(planned, "JS-A2")[0]
    with pytest.raises(NotPermitted):
        exam.save_grading(app, MONTH, grid, actor(app, "area3.lead"), entered(FULL), REAL_NOW)
    # a village leader inside the inspecting area (苏溪村 in JS-A2) sees that area's grids
    suxi = actor(app, "suxi.lead")
    assert {s.grid for s in exam.inspector_grids(app, MONTH, suxi)} == set(
        inspected_by_area(planned, "JS-A2")
    )
    assert exam.inspector_grids(app, MONTH, actor(app, "ent13.lead")) == []  # JS-E13 inspects none
    sup = actor(app, "duban.zhao")
    assert exam.save_grading(app, MONTH, grid, sup, entered(FULL), REAL_NOW).status == (
        "in_progress"
    )
    with pytest.raises(NotFound, match="not in the plan"):
        exam.grading_form(app, MONTH, "JS-A1", sup)
    with pytest.raises(exam.ExamRefused) as info:
        exam.save_grading(app, MONTH, grid, sup, entered({"roads": "11", "piling": "x"}), REAL_NOW)
    assert info.value.problems == [
        "piling 乱堆乱放: 'x' is not a number",
        "roads 道路路面: 11 is out of range 0..10",
    ]


def test_page_scores_and_the_import_land_in_the_same_rows_and_make_the_board(
    app: App, planned: dict[str, str]
) -> None:
    lead = actor(app, "area2.lead")
    page_grid, *_ = inspected_by_area(planned, "JS-A2")
    exam.save_grading(app, MONTH, page_grid, lead, entered(FULL), REAL_NOW, submit=True)
    paper_grid = inspected_by_area(planned, "JS-A3")[0]
    rows = [",".join(CSV_COLUMNS)]
    rows += [
        f"{MONTH},JS-A3,{paper_grid},basic,{k},{v},,"
        for k, v in FULL.items()
        if k in ("dead_corners", "piling", "roads", "street_business")
    ]
    rows.append(f"{MONTH},JS-A3,{paper_grid},required,illegal_building,5,,")
    exam.import_exam(app, "\n".join(rows) + "\n", REAL_NOW)
    view = exam.publish_board(app, MONTH, REAL_NOW)
    # page: 100; paper: basic 50 + required 5 of (50 + 20) -> 55/70*100 = 78.57
    assert [(ln.result.grid, ln.result.exam) for ln in view.lines] == [
        (page_grid, Decimal("100.00")),
        (paper_grid, Decimal("78.57")),
    ]
    # the board is published: the page can no longer change its scores
    sup = actor(app, "duban.wang")
    exam.reopen_grading(app, MONTH, page_grid, sup, "复核", REAL_NOW)
    with pytest.raises(Conflict, match="published"):
        exam.save_grading(app, MONTH, page_grid, lead, entered(FULL), REAL_NOW)


# --------------------------------------------------------------------------- accountability


def board_with_a_low_grid(app: App) -> tuple[str, str]:
    high, low = "JS-A1-V01", "JS-A1-V03"
    text = "\n".join(
        [
            ",".join(CSV_COLUMNS),
            f"{MONTH},JS-A2,{high},basic,roads,10,,",
            f"{MONTH},JS-A2,{low},basic,roads,4,,",
        ]
    )
    exam.import_exam(app, text + "\n", REAL_NOW)
    exam.publish_board(app, MONTH, REAL_NOW)
    return high, low


def test_a_below_floor_month_opens_a_case_that_a_supervisor_closes(app: App) -> None:
    _, low = board_with_a_low_grid(app)
    cases = exam.list_cases(app, only_open=True)
    assert len(cases) == 1
    case = cases[0]
    assert (case.grid, case.grid_name, case.month, case.owner) == (
        low,
        "东河村",
        MONTH,
        "duban.wang",
    )
    assert case.leaders == (
        {"grid": low, "handle": "donghe.lead", "name": case.leaders[0]["name"]},
    )
    assert "40.00" in case.reason and "60" in case.reason
    # due 30 days after the board (zone date 2026-04-20)
    assert case.due_on == "2026-05-20"
    # publishing again opens no second case
    exam.publish_board(app, MONTH, REAL_NOW)
    assert len(exam.list_cases(app)) == 1
    with pytest.raises(NotPermitted):
        exam.close_case(app, case.id, "donghe.lead", "约谈", REAL_NOW)
    with pytest.raises(Invalid, match="outcome"):
        exam.close_case(app, case.id, "duban.wang", "", REAL_NOW)
    closed = exam.close_case(app, case.id, "duban.wang", "约谈村支书，限期整改", REAL_NOW)
    assert (closed.closed_by, closed.outcome) == ("duban.wang", "约谈村支书，限期整改")
    assert exam.list_cases(app, only_open=True) == []
    with pytest.raises(Conflict, match="already closed"):
        exam.close_case(app, case.id, "duban.wang", "again", REAL_NOW)
    with pytest.raises(NotFound):
        exam.close_case(app, 999, "duban.wang", "x", REAL_NOW)


def test_a_case_closes_itself_when_a_republished_board_lifts_the_grid(app: App) -> None:
    _, low = board_with_a_low_grid(app)
    late = f"{','.join(CSV_COLUMNS)}\n{MONTH},JS-A3,{low},basic,roads,10,,\n"
    exam.import_exam(app, late, REAL_NOW)
    exam.publish_board(app, MONTH, REAL_NOW)  # (4 + 10) / 2 = 7 of 10 -> 70
    (case,) = exam.list_cases(app)
    assert case.closed_by == "closeloop" and "no longer below the floor" in (case.outcome or "")


def case_notices(app: App) -> list[tuple[str, str, dict]]:
    """(recipient handle, cause, payload) of each accountability notice, channels folded."""
    with app.engine.connect() as conn:
        found = conn.execute(
            select(people.c.handle, notifications.c.idempotency_key, notifications.c.payload)
            .join(people, people.c.id == notifications.c.recipient_id)
            .where(notifications.c.kind == "accountability")
            .order_by(notifications.c.id)
        ).all()
    seen: dict[str, tuple[str, str, dict]] = {}
    for handle, key, payload in found:
        cause = key.rsplit(":", 1)[0]  # the channel is the last part of the key
        seen.setdefault(cause, (handle, cause, payload))
    return list(seen.values())


def rendered(app: App, handle: str) -> list[tuple[str, str]]:
    """(locale, subject + text) of the accountability notices to ``handle``, rendered as the
    deliverer would, by ``app``'s settings."""
    with read_only(app.engine) as conn:
        batch = [
            Notice.from_row(r)
            for r in conn.execute(
                select(notifications)
                .join(people, people.c.id == notifications.c.recipient_id)
                .where(notifications.c.kind == "accountability", people.c.handle == handle)
                .order_by(notifications.c.id)
            )
        ]
        prepared = prepare(app, conn, batch, REAL_NOW, Renderer())
    out = []
    for p in prepared:
        assert p.error is None and p.message is not None
        out.append((p.notice.locale, f"{p.message.subject}\n{p.message.text}"))
    return out


def test_an_opened_case_tells_its_owner_and_the_leader_once(app: App) -> None:
    with app.engine.begin() as conn:
        conn.execute(update(people).where(people.c.handle == "donghe.lead").values(locale="en"))
    _, low = board_with_a_low_grid(app)
    (case,) = exam.list_cases(app)
    told = case_notices(app)
    assert [(h, cause) for h, cause, _ in told] == [
        ("duban.wang", f"accountability:{case.id}:opened:duban.wang"),
        ("donghe.lead", f"accountability:{case.id}:opened:donghe.lead"),
    ]
    facts = {k: told[0][2][k] for k in ("grid", "month", "basis", "score", "floor", "due_on")}
    assert facts == {
        "grid": low,
        "month": MONTH,
        "basis": "exam",
        "score": "40.00",
        "floor": "60",
        "due_on": "2026-05-20",
    }
    assert (told[0][2]["role"], told[1][2]["role"]) == ("owner", "leader")
    with app.engine.connect() as conn:
        count = conn.execute(
            select(func.count()).where(notifications.c.kind == "accountability")
        ).scalar_one()
    # publishing again (and again) opens nothing and tells nobody
    exam.publish_board(app, MONTH, REAL_NOW)
    exam.publish_board(app, MONTH, REAL_NOW + timedelta(days=1))
    with app.engine.connect() as conn:
        again = conn.execute(
            select(func.count()).where(notifications.c.kind == "accountability")
        ).scalar_one()
    assert again == count

    # zh for the owner, en for the leader who asked for it: the board's figures, the due date
    [(zh_locale, zh)] = rendered(app, "duban.wang")
    [(en_locale, en)] = rendered(app, "donghe.lead")
    assert (zh_locale, en_locale) == ("zh_CN", "en")
    for text in (zh, en):
        for fact in (low, "东河村", MONTH, "40.00", "60", "2026-05-20"):
            assert fact in text, fact
    assert "月考" in zh and "低于底线 60 分" in zh and "王督查" in zh
    assert "monthly exam" in en and "below the floor of 60" in en


def test_a_notice_keeps_the_floor_of_its_board_when_the_settings_change(app: App) -> None:
    board_with_a_low_grid(app)
    before = rendered(app, "duban.wang")
    raw = dict(app.settings.raw)
    raw["exam"] = {**raw["exam"], "floor": 45}
    lowered = dataclasses.replace(app, settings=dataclasses.replace(app.settings, raw=raw))
    assert exam.exam_settings(lowered).scoring.floor == 45
    after = rendered(lowered, "duban.wang")
    assert after == before
    assert "60" in after[0][1] and "45" not in after[0][1]


def test_a_failure_after_the_notices_leaves_no_case_and_no_notice(app: App) -> None:
    real = outbox.enqueue
    calls: list[tuple[str, int]] = []

    def enqueue_then_fail(*args: object, **kwargs: object) -> int:
        made = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append((str(kwargs["key"]), made))
        raise RuntimeError("injected after the notice was queued")

    with (
        patch.object(outbox, "enqueue", enqueue_then_fail),
        pytest.raises(RuntimeError, match="injected"),
    ):
        board_with_a_low_grid(app)
    # the notice rows were written, in the transaction that then failed
    [(key, made)] = calls
    assert key.startswith("accountability:") and made >= 1
    with app.engine.connect() as conn:
        for table in (accountability_cases, month_results, notifications):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_an_owner_without_a_person_row_is_skipped_the_leader_still_told(app: App) -> None:
    raw = dict(app.settings.raw)
    raw["exam"] = {**raw["exam"], "accountability_owner": "nobody.here"}
    a = dataclasses.replace(app, settings=dataclasses.replace(app.settings, raw=raw))
    board_with_a_low_grid(a)
    (case,) = exam.list_cases(a)
    assert case.owner == "nobody.here"
    told = case_notices(a)
    assert [h for h, _, _ in told] == ["donghe.lead"]
    assert told[0][2]["owner_name"] == "nobody.here"


def test_closing_a_case_tells_the_leader_and_an_owner_who_did_not_close_it(app: App) -> None:
    board_with_a_low_grid(app)
    (case,) = exam.list_cases(app)
    exam.close_case(app, case.id, "duban.wang", "约谈村支书，限期整改", REAL_NOW)
    closing = [t for t in case_notices(app) if ":closed:" in t[1]]
    # the owner closed it: only the leader is told, with the outcome
    assert [h for h, _, _ in closing] == ["donghe.lead"]
    assert closing[0][2]["outcome"] == "约谈村支书，限期整改"
    [_, (_, text)] = rendered(app, "donghe.lead")
    assert "问责结案" in text and "约谈村支书，限期整改" in text


def test_a_case_closed_by_republication_tells_owner_and_leader_once(app: App) -> None:
    _, low = board_with_a_low_grid(app)
    late = f"{','.join(CSV_COLUMNS)}\n{MONTH},JS-A3,{low},basic,roads,10,,\n"
    exam.import_exam(app, late, REAL_NOW)
    exam.publish_board(app, MONTH, REAL_NOW)
    exam.publish_board(app, MONTH, REAL_NOW)
    closing = [t for t in case_notices(app) if ":closed:" in t[1]]
    assert [h for h, _, _ in closing] == ["duban.wang", "donghe.lead"]
    assert "no longer below the floor" in closing[0][2]["outcome"]


# --------------------------------------------------------------------------- funds


def test_the_fund_ledger(app: App) -> None:
    high, low = board_with_a_low_grid(app)  # high: 100 -> 一档 30000
    with pytest.raises(Invalid, match="no reward was earned"):
        exam.pay_reward(app, low, MONTH, "duban.wang", REAL_NOW)
    assert exam.pay_reward(app, high, MONTH, "duban.wang", REAL_NOW, "10000") == 10000
    with pytest.raises(Invalid, match="exceed the reward earned"):
        exam.pay_reward(app, high, MONTH, "duban.wang", REAL_NOW, "25000")
    assert exam.pay_reward(app, high, MONTH, "duban.wang", REAL_NOW) == 20000  # the rest

    pid = exam.apply_project(
        app, high, MONTH, "空地围栏绿化", "清理地块围栏和绿化", "50000", "yantou.lead", REAL_NOW
    )
    with pytest.raises(Invalid, match="not approved yet"):
        exam.disburse(app, pid, "1000", "duban.wang", REAL_NOW)
    with pytest.raises(Invalid, match=r"more than the 50000\.00 applied"):
        exam.decide_project(app, pid, "60000", "duban.wang", REAL_NOW)
    with pytest.raises(NotPermitted):
        exam.decide_project(app, pid, "40000", "yantou.lead", REAL_NOW)
    exam.decide_project(app, pid, "40000", "duban.wang", REAL_NOW)
    exam.disburse(app, pid, "25000", "duban.wang", REAL_NOW, "第一笔")
    with pytest.raises(Invalid, match="earmarked"):
        exam.disburse(app, pid, "20000", "duban.wang", REAL_NOW)
    with pytest.raises(Invalid, match="greater than 0"):
        exam.apply_project(app, high, MONTH, "x", "y", "-5", "yantou.lead", REAL_NOW)

    ledger = exam.ledger(app, MONTH)
    rows = {r.grid: r for r in ledger.rewards}
    assert (rows[high].earned, rows[high].paid, rows[high].outstanding) == (30000, 30000, 0)
    assert (rows[low].earned, rows[low].withheld) == (0, 0)
    (project,) = ledger.projects
    assert (project.applied, project.approved, project.disbursed, project.remaining) == (
        50000,
        40000,
        25000,
        15000,
    )
    assert project.status == "approved"
    data = json.loads(printing.render_ledger(ledger, "json", zone="Z", locale="zh_CN"))
    assert data["totals"] == {
        "earned": 30000,
        "withheld": 0,
        "paid": 30000,
        "applied": 50000,
        "approved": 40000,
        "disbursed": 25000,
    }
    md = printing.render_ledger(ledger, "md", zone="金山", locale="zh_CN").decode()
    assert "## 金山2026-04奖励与项目资金台账" in md and "| 空地围栏绿化 |" in md.replace(
        f"| {pid} | 堰头村 ", "| "
    )
    book = load_workbook(
        io.BytesIO(printing.render_ledger(ledger, "xlsx", zone="Z", locale="zh_CN"))
    )
    assert book.sheetnames == ["月度奖励", "项目资金（专款专用）"]
    first = next(book["月度奖励"].iter_rows(min_row=2, values_only=True))
    assert first == ("堰头村", high, "一档", 30000, 0, None, 30000, 0)


def test_withheld_rewards_appear_in_the_ledger_with_the_low_month(app: App) -> None:
    _, low = board_with_a_low_grid(app)
    may = f"{','.join(CSV_COLUMNS)}\n2026-05,JS-A2,{low},basic,roads,10,,\n"
    exam.import_exam(app, may, REAL_NOW)
    exam.publish_board(app, "2026-05", REAL_NOW)
    (row,) = exam.ledger(app, "2026-05").rewards
    assert (row.earned, row.withheld, row.withheld_by) == (0, 30000, MONTH)
    md = printing.render_ledger(exam.ledger(app, "2026-05"), "md", zone="Z", locale="zh_CN")
    assert "2026-04得分低于底线" in md.decode()


# --------------------------------------------------------------------------- printing


def test_score_sheets_print_per_inspector_and_read_back_as_an_import(
    app: App, planned: dict[str, str]
) -> None:
    plan = exam.plan_view(app, MONTH)
    sheets = exam.answer_sheets(app)
    html = printing.score_sheets_html("金山", plan, sheets, locale="zh_CN", inspector="JS-A2")
    text = html.decode()
    mine = inspected_by_area(planned, "JS-A2")
    assert text.count('<section class="grid">') == len(mine)
    assert "size: A4" in text and "乱搭乱建" in text and "考核人签字" in text
    book = load_workbook(io.BytesIO(printing.score_sheets_xlsx(plan, sheets, locale="zh_CN")))
    assert len(book.sheetnames) == 10
    ws = book["JS-A2"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == CSV_COLUMNS and len(rows) == 1 + 11 * len(mine)
    # filled in and saved as CSV, the sheet is an import
    lines = [",".join(CSV_COLUMNS)]
    for r in rows[1:]:
        score = r[6]
        lines.append(",".join("" if v is None else str(v) for v in (*r[:5], score, r[6], r[7])))
    read = read_exam_csv("\n".join(lines) + "\n", [*planned, "JS-A2"], sheets=sheets)
    assert len(read) == 11 * len(mine)
    with pytest.raises(Invalid, match="no grid in the plan"):
        printing.score_sheets_xlsx(plan, sheets, locale="zh_CN", inspector="JS-E13")


# --------------------------------------------------------------------------- commands


def run(app: App, *args: str) -> str:
    with patch.object(State, "app", lambda _self: app):
        result = CliRunner().invoke(cli_app, ["--config", str(CONFIG), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_accountability_funds_and_print_commands(app: App, tmp_path: Path) -> None:
    high, low = board_with_a_low_grid(app)
    listed = json.loads(run(app, "accountability", "list", "--open", "--json"))
    assert [(c["grid"], c["month"], c["owner"]) for c in listed] == [(low, MONTH, "duban.wang")]
    out = run(
        app,
        "accountability",
        "close",
        str(listed[0]["id"]),
        "--by",
        "duban.wang",
        "--outcome",
        "约谈",
    )
    assert "closed by duban.wang: 约谈" in out
    assert run(app, "accountability", "list", "--open") == "no case open\n"
    assert "paid 30000" in run(
        app, "funds", "pay", "--grid", high, "--month", MONTH, "--by", "duban.wang"
    )
    assert "project 1" in run(
        app,
        "funds",
        "apply",
        "--grid",
        high,
        "--month",
        MONTH,
        "--project",
        "围栏",
        "--purpose",
        "空地围栏",
        "--amount",
        "8000",
        "--by",
        "yantou.lead",
    )
    run(app, "funds", "approve", "1", "--amount", "8000", "--by", "duban.wang")
    run(app, "funds", "disburse", "1", "--amount", "8000", "--by", "duban.wang")
    data = json.loads(run(app, "funds", "ledger", "--month", MONTH, "--format", "json"))
    assert data["totals"]["paid"] == 30000 and data["projects"][0]["disbursed"] == 8000
    xlsx = tmp_path / "ledger.xlsx"
    run(app, "funds", "ledger", "--month", MONTH, "--format", "xlsx", "--out", str(xlsx))
    assert xlsx.read_bytes()[:2] == b"PK"
    run(app, "exam", "plan", "--month", "2026-05")
    sheet = tmp_path / "sheets.html"
    run(app, "exam", "print", "--month", "2026-05", "--inspector", "JS-C1", "--out", str(sheet))
    assert "金山社区" in sheet.read_text(encoding="utf-8")
