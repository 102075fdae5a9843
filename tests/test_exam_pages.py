"""The exam's pages over HTTP (TestClient), on SQLite and PostgreSQL: an inspector's list and
form, save / resume / submit with a photo, the supervisor's reopen, plan, publish, printable
sheets, accountability and the fund ledger, and who may see what.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.exam import service as exam
from closeloop.grid import set_leader
from closeloop.models import grids, people
from closeloop.web.app import create_app
from tests.report_data import REAL_NOW
from tests.webtools import PNG, Browser, ManualClock, Web, browser, flash, make_web

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


@pytest.fixture
def web(app: exam.App) -> Iterator[Web]:
    for w in make_web(app):
        w.clock.set(REAL_NOW)
        yield w


def grid_of(web: Web, inspector: str) -> str:
    plan = exam.plan_view(web.app, MONTH)
    return next(x.grid for x in plan.lines if x.inspector_grid == inspector)


def save(b: Browser, grid: str, fields: dict[str, str], action: str, **kw: object):  # type: ignore[no-untyped-def]
    token = b.csrf(f"/exam/{MONTH}/{grid}")
    data = {f"pts.{k}": v for k, v in fields.items()} | {"action": action}
    return b.post(f"/exam/{MONTH}/{grid}", data | dict(kw.pop("extra", {})), token=token, **kw)  # type: ignore[call-overload,arg-type]


def test_a_supervisor_makes_the_plan_and_an_inspector_scores_on_the_page(web: Web) -> None:
    sup = browser(web, "duban.wang")
    assert sup.get("/exam").headers["location"] == f"/exam/{MONTH}"
    page = sup.get(f"/exam/{MONTH}").text
    assert "还没有考核安排" in page and 'id="make-plan"' in page
    r = sup.post(f"/exam/{MONTH}/plan", token=sup.csrf(f"/exam/{MONTH}"))
    assert r.status_code == 303
    page = sup.get(f"/exam/{MONTH}").text
    assert page.count('class="card exam-missing"') == 117 and 'id="publish"' in page

    lead = browser(web, "area2.lead")
    home = lead.get(f"/exam/{MONTH}").text
    assert 'href="/exam"' in home  # the menu leads an inspector here
    listed = re.findall(r'data-grid="([^"]+)"', home)
    assert 11 <= len(listed) <= 12 and 'id="publish"' not in home
    grid = grid_of(web, "JS-A2")
    assert grid in listed
    form = lead.get(f"/exam/{MONTH}/{grid}").text
    assert form.count('inputmode="decimal"') == 11 and 'capture="environment"' in form

    # save part, come back: the points are there
    r = save(lead, grid, {"roads": "7", "piling": "15"}, "save")
    assert r.status_code == 303 and r.headers["location"].endswith("done=exam_saved")
    form = lead.get(f"/exam/{MONTH}/{grid}").text
    assert 'name="pts.roads" value="7"' in form and "打分中" in form

    # submit without the note of the deduction: refused, what was typed is kept
    r = save(lead, grid, {**FULL, "roads": "7"}, "submit")
    assert r.status_code == 422
    assert "roads 道路路面：扣分需要填写说明。" in flash(r) and "deduction" not in flash(r)
    assert 'name="pts.parking" value="10"' in r.text

    # with the note and a photo: submitted
    r = save(
        lead,
        grid,
        {**FULL, "roads": "7"},
        "submit",
        extra={"note.roads": "村口道路泥泞"},
        files=[("photo.roads", ("road.png", PNG, "image/png"))],
    )
    assert r.status_code == 303, flash(r)
    done = lead.get(f"/exam/{MONTH}/{grid}").text
    assert "已提交" in done and 'id="save"' not in done and "disabled" in done
    photo = lead.get(f"/exam/{MONTH}/{grid}/photo/roads")
    assert photo.status_code == 200 and photo.content == PNG
    # the final scores cannot be posted again
    r = save(lead, grid, FULL, "save")
    assert r.status_code == 409

    # another area's inspector sees neither the form nor the photo
    other = browser(web, "area3.lead")
    assert other.get(f"/exam/{MONTH}/{grid}").status_code == 403
    assert other.get(f"/exam/{MONTH}/{grid}/photo/roads").status_code == 403

    # the supervisor reopens with a reason; the inspector can change it again
    page = sup.get(f"/exam/{MONTH}/{grid}").text
    assert 'id="reopen-form"' in page
    r = sup.post(
        f"/exam/{MONTH}/{grid}/reopen",
        {"reason": "照片不清楚"},
        token=sup.csrf(f"/exam/{MONTH}/{grid}"),
    )
    assert r.status_code == 303
    again = lead.get(f"/exam/{MONTH}/{grid}").text
    assert "照片不清楚" in again and 'id="save"' in again
    assert (
        lead.post(
            f"/exam/{MONTH}/{grid}/reopen", {"reason": "x"}, token=lead.csrf(f"/exam/{MONTH}")
        ).status_code
        == 403
    )

    # printable sheets for the supervisor
    sheet = sup.get(f"/exam/{MONTH}/sheets.html?inspector=JS-A2")
    assert sheet.status_code == 200 and "size: A4" in sheet.text
    xlsx = sup.get(f"/exam/{MONTH}/sheets.xlsx")
    assert xlsx.content[:2] == b"PK"
    assert lead.get(f"/exam/{MONTH}/sheets.xlsx").status_code == 403


def test_publish_accountability_and_funds_pages(web: Web) -> None:
    exam.make_plan(web.app, MONTH, REAL_NOW)
    lead = browser(web, "area2.lead")
    graded = [x.grid for x in exam.plan_view(web.app, MONTH).lines if x.inspector_grid == "JS-A2"]
    good, low = graded[:2]
    assert save(lead, good, FULL, "submit").status_code == 303
    poor = {**{k: "2" for k in FULL}}
    notes = {f"note.{k}": "整改不到位" for k in FULL}
    assert save(lead, low, poor, "submit", extra=notes).status_code == 303

    sup = browser(web, "duban.wang")
    r = sup.post(f"/exam/{MONTH}/publish", token=sup.csrf(f"/exam/{MONTH}"))
    assert r.status_code == 303 and r.headers["location"].startswith(f"/reports?month={MONTH}")
    page = sup.get(r.headers["location"]).text
    red = page.split('id="red-board"')[1].split("</ol>")[0]
    assert red.count("<li>") == 1

    cases = sup.get("/accountability").text
    assert 'id="open-cases"' in cases and cases.count("data-case=") == 1
    case_id = re.search(r'data-case="(\d+)"', cases).group(1)  # type: ignore[union-attr]
    r = sup.post(
        f"/accountability/{case_id}/close",
        {"outcome": "约谈并限期整改"},
        token=sup.csrf("/accountability"),
    )
    assert r.status_code == 303
    assert "约谈并限期整改" in sup.get("/accountability").text
    # area2.lead leads a grid but none of the cases concerns it: an empty page, no close form
    theirs = lead.get("/accountability").text
    assert "data-case=" not in theirs and 'id="acc-leader-note"' in theirs

    exam.pay_reward(web.app, good, MONTH, "duban.wang", REAL_NOW)
    ledger = sup.get(f"/funds?month={MONTH}").text
    assert "30000" in ledger and 'id="funds-xlsx"' in ledger
    assert sup.get(f"/funds/{MONTH}.xlsx").content[:2] == b"PK"
    assert lead.get("/funds").status_code == 403
    # English
    assert "Fund ledger" in sup.get(f"/funds?month={MONTH}&lang=en").text


def leader_of(web: Web, code: str) -> str:
    with web.app.engine.connect() as conn:
        return str(
            conn.execute(
                select(people.c.handle)
                .select_from(grids.join(people, people.c.id == grids.c.leader_id))
                .where(grids.c.code == code)
            ).scalar_one()
        )


def test_a_grid_leader_follows_the_cases_of_their_grid_read_only(web: Web) -> None:
    exam.make_plan(web.app, MONTH, REAL_NOW)
    inspector = browser(web, "area2.lead")
    graded = [x.grid for x in exam.plan_view(web.app, MONTH).lines if x.inspector_grid == "JS-A2"]
    mine, theirs, spare, bystander = graded[:4]
    notes = {f"note.{k}": "整改不到位" for k in FULL}
    for low in (mine, theirs):
        r = save(inspector, low, {k: "2" for k in FULL}, "submit", extra=notes)
        assert r.status_code == 303
    sup = browser(web, "duban.wang")
    assert sup.post(f"/exam/{MONTH}/publish", token=sup.csrf(f"/exam/{MONTH}")).status_code == 303
    case = {c.grid: c for c in exam.list_cases(web.app)}
    assert set(case) == {mine, theirs}
    named = leader_of(web, mine)
    assert [x["handle"] for x in case[mine].leaders] == [named]

    # the supervisor's page as before: every case, each with its close form
    page = sup.get("/accountability").text
    assert page.count("data-case=") == 2 and page.count('action="/accountability/') == 2
    assert 'id="acc-leader-note"' not in page

    # the grid's leader: their case only, read-only, and the menu leads there
    leader = browser(web, named)
    r = leader.get("/accountability")
    assert r.status_code == 200
    assert re.findall(r'data-case="(\d+)"', r.text) == [str(case[mine].id)]
    assert 'action="/accountability/' not in r.text and "<textarea" not in r.text
    assert "仅供查看，由督查人员办结" in r.text and 'href="/accountability"' in r.text
    en = leader.get("/accountability?lang=en").text
    assert "The cases concerning the grid you lead, to follow; a supervisor closes them." in en
    # posting the close form anyway is refused and the case stays open
    r = leader.post(
        f"/accountability/{case[mine].id}/close",
        {"outcome": "自行结案"},
        token=leader.csrf("/accountability"),
    )
    assert r.status_code == 403
    assert [c.is_open for c in exam.list_cases(web.app) if c.grid == mine] == [True]

    # the grid changes hands: the new leader follows its case as well, the named one still does
    successor = leader_of(web, theirs)
    with web.app.engine.begin() as conn:
        set_leader(conn, mine, successor)
    now_led = browser(web, successor).get("/accountability").text
    assert sorted(re.findall(r'data-case="(\d+)"', now_led)) == sorted(
        str(c.id) for c in case.values()
    )
    still = leader.get("/accountability").text
    assert re.findall(r'data-case="(\d+)"', still) == [str(case[mine].id)]
    assert 'href="/accountability"' not in still  # the menu is for who leads a grid now

    # a leader of an unrelated grid sees none; who leads nothing and is named in none is refused
    other, idle = leader_of(web, spare), leader_of(web, bystander)
    assert "data-case=" not in browser(web, other).get("/accountability").text
    with web.app.engine.begin() as conn:
        set_leader(conn, bystander, other)
    r = browser(web, idle).get("/accountability")
    assert r.status_code == 403 and "不是督查人员" in flash(r)
    assert browser(web).get("/accountability").headers["location"].startswith("/login")


def test_a_bad_section_read_on_first_use_is_named_not_an_internal_error(
    app: exam.App, caplog: pytest.LogCaptureFixture
) -> None:
    """`[exam]` and `[report]` are read when first used: a bad value there is the
    administrator's to fix, and the page or the API says which key, in the reader's language,
    with the catalogue's code, instead of "internal error"."""
    raw = {
        **app.settings.raw,
        "exam": {**app.settings.section("exam"), "level": "three"},
        "report": {**app.settings.section("report"), "red_size": -1},
    }
    bad = dataclasses.replace(app, settings=dataclasses.replace(app.settings, raw=raw))
    clock = ManualClock(REAL_NOW)
    with TestClient(create_app(bad, clock=clock)) as client:
        sup = browser(Web(bad, clock, client), "duban.wang", raise_server_exceptions=False)
        page = sup.post(f"/exam/{MONTH}/plan", token=sup.csrf(f"/exam/{MONTH}"))
        assert page.status_code == 500
        assert "[exam] level：必须是不小于 1 的整数，现在是 'three'。" in html.unescape(page.text)
        api = sup.get("/api/reports/weekly?lang=en")
        assert api.status_code == 500
        assert api.json()["error"] == {
            "code": "config.whole",
            "message": "[report] red_size: must be a whole number >= 0, got -1",
        }
    assert "unhandled error on POST /exam/2026-04/plan" in caplog.text  # logged, with its traceback
