"""Patrols (巡查): recorded after the fact or walked on the phone; problems found become tickets
linked to the patrol; coverage lists every grid of a level, visited or not."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from closeloop import service, views
from closeloop.app import App
from closeloop.models import patrol_visits, patrols, ticket_links, tickets
from closeloop.patrols import service as patrols_service
from closeloop.patrols.service import CheckIn
from closeloop.tickets import Invalid, NotPermitted
from tests.cli_support import refused, run, run_json
from tests.report_data import REAL_NOW, z


def rows(app: App, table) -> int:  # type: ignore[no-untyped-def]
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def problem(grid: str, title: str = "路边垃圾") -> service.NewProblem:
    return service.NewProblem(grid=grid, category="random_piling", title=title)


def test_patrol_add_and_coverage(app: App) -> None:
    seen = service.submit(app, problem("JS-A1-V01-G02"), REAL_NOW, at=z(4, 1, 9))
    p = run_json(
        app, "patrol", "add", "--by", "yantou.lead", "--at", "2026-04-03T09:30:00+08:00",
        "--grid", "JS-A1-V01-G01@29.1,119.6", "--grid", "JS-A1-V01-G02",
        "--note", "村道两侧", "--found", seen,
    )  # fmt: skip
    assert p["id"] == 1 and p["by"] == "yantou.lead" and p["note"] == "村道两侧"
    assert [(v["grid"], v["lat"], v["lon"]) for v in p["visits"]] == [
        ("JS-A1-V01-G01", 29.1, 119.6),
        ("JS-A1-V01-G02", None, None),
    ]
    assert p["found"] == [
        {"ref": seen, "title": "路边垃圾", "state": "assigned", "filed_on_patrol": False}
    ]
    run(app, "patrol", "add", "--by", "zone.lead", "--at", "2026-04-10T15:00:00+08:00",
        "--grid", "JS-A1-V01")  # fmt: skip
    run(app, "patrol", "add", "--by", "zone.lead", "--at", "2026-05-02T15:00:00+08:00",
        "--grid", "JS-A1-V02")  # fmt: skip

    villages = run_json(app, "patrol", "coverage", "--month", "2026-04")
    assert len(villages) == 117  # every small grid of the example zone, visited or not
    by_code = {r["grid"]: r for r in villages}
    assert by_code["JS-A1-V01"] == {
        "grid": "JS-A1-V01",
        "name": "堰头村",
        "level": 3,
        "visits": 3,  # two micro grids by the village leader, the village by the zone's
        "visits_by_level": {"1": 1, "2": 0, "3": 2, "4": 0},
        "last_visit_at": "2026-04-10T15:00:00+08:00",
    }
    assert by_code["JS-A1-V02"]["visits"] == 0  # May's patrol is not April's
    assert by_code["JS-A1-V02"]["last_visit_at"] is None
    assert sum(r["visits"] > 0 for r in villages) == 1
    micro = run_json(app, "patrol", "coverage", "--month", "2026-04", "--level", "4")
    visited = {r["grid"]: r["visits"] for r in micro if r["visits"]}
    assert visited == {"JS-A1-V01-G01": 1, "JS-A1-V01-G02": 1}
    assert (
        run_json(app, "patrol", "coverage", "--month", "2026-04", "--level", "1")[0]["visits"] == 3
    )
    text = run(app, "patrol", "coverage", "--month", "2026-05")
    assert text.startswith("2026-05: 1 of 117 grids visited")
    assert [x["id"] for x in run_json(app, "patrol", "list", "--month", "2026-04")] == [1, 2]
    assert run_json(app, "patrol", "show", "1")["found"][0]["ref"] == seen
    with app.engine.connect() as conn:
        linked = conn.execute(select(ticket_links.c.kind, ticket_links.c.target_id)).all()
    assert [tuple(r) for r in linked] == [("patrol", 1)]


def test_bad_patrols_are_refused_whole(app: App) -> None:
    message = refused(
        app, "patrol", "add", "--by", "nobody", "--at", "2099-04-03T09:30:00+08:00",
        "--grid", "NOPE", "--grid", "JS-A1-V01@95,10", "--found", "EP-2026-999999",
    )  # fmt: skip
    for expected in (
        "is in the future",
        "unknown person 'nobody'",
        "unknown grid 'NOPE'",
        "JS-A1-V01: latitude must be between -90 and 90",
        "no ticket EP-2026-999999",
    ):
        assert expected in message, (expected, message)
    assert "--grid" in refused(app, "patrol", "add", "--by", "yantou.lead", "--at",
                               "2026-04-03T09:30:00+08:00")  # fmt: skip
    assert "given twice" in refused(
        app, "patrol", "add", "--by", "yantou.lead", "--at", "2026-04-03T09:30:00+08:00",
        "--grid", "JS-A1-V01", "--grid", "JS-A1-V01",
    )  # fmt: skip
    assert "CODE@LAT,LON" in refused(
        app, "patrol", "add", "--by", "yantou.lead", "--at", "2026-04-03T09:30:00+08:00",
        "--grid", "JS-A1-V01@north",
    )  # fmt: skip
    assert "YYYY-MM" in refused(app, "patrol", "coverage", "--month", "2026-13")
    assert "--level" in refused(app, "patrol", "coverage", "--month", "2026-04", "--level", "5")
    assert (rows(app, patrols), rows(app, patrol_visits), rows(app, ticket_links)) == (0, 0, 0)


def test_a_refused_patrol_names_every_problem_in_the_readers_language(app: App) -> None:
    with pytest.raises(Invalid) as info:
        patrols_service.add_patrol(
            app,
            by="yantou.lead",
            at=z(4, 3, 9),
            checkins=[CheckIn("JS-A1-V01", 95, 10), CheckIn("JS-A1-V01", None, None)],
            found=["EP-2026-999999"],
            now=REAL_NOW,
        )
    assert str(info.value) == (
        "grid JS-A1-V01 given twice; JS-A1-V01: latitude must be between -90 and 90; "
        "no ticket EP-2026-999999"
    )
    assert info.value.text("zh_CN") == (
        "巡查信息有误：网格 JS-A1-V01 重复；JS-A1-V01：纬度必须在 -90 到 90 之间；"
        "没有问题单 EP-2026-999999"
    )


def test_a_patrol_walked_on_the_phone(app: App) -> None:
    start = patrols_service.start_patrol(app, by="yantou.lead", now=z(4, 8, 9))
    pid = start["id"]
    patrols_service.check_in(
        app, pid, by="yantou.lead", checkin=CheckIn("JS-A1-V01-G03", 29.2, 119.7), now=z(4, 8, 9, 5)
    )
    with pytest.raises(Invalid, match="already checked in at JS-A1-V01-G03"):
        patrols_service.check_in(
            app, pid, by="yantou.lead", checkin=CheckIn("JS-A1-V01-G03"), now=z(4, 8, 9, 6)
        )
    with pytest.raises(NotPermitted, match="only they check in"):
        patrols_service.check_in(
            app, pid, by="caoyuan.lead", checkin=CheckIn("JS-A1-V02"), now=z(4, 8, 9, 6)
        )
    ref = patrols_service.report_problem(
        app, pid, by="yantou.lead", problem=problem("JS-A1-V01-G03", "柴堆占道"), now=z(4, 8, 9, 10)
    )
    shown = views.show(app, ref)
    assert shown["assignee"] == "yantou.g3" and shown["reporter"] == "陈霞桂"
    with app.engine.connect() as conn:
        assert conn.execute(select(tickets.c.source).where(tickets.c.ref == ref)).scalar() == (
            "patrol"
        )
    p = patrols_service.show_patrol(app, pid)
    assert [v["grid"] for v in p["visits"]] == ["JS-A1-V01-G03"]
    assert p["found"] == [
        {"ref": ref, "title": "柴堆占道", "state": "assigned", "filed_on_patrol": True}
    ]
    # A problem with a bad grid files nothing and links nothing.
    with pytest.raises(Invalid, match="unknown grid"):
        patrols_service.report_problem(app, pid, by="yantou.lead", problem=problem("NOPE"),
                                       now=z(4, 8, 9, 12))  # fmt: skip
    assert rows(app, ticket_links) == 1


def test_the_weekly_report_has_a_patrol_section(app: App) -> None:
    from closeloop.reports.render import render_weekly
    from closeloop.reports.weekly import build_weekly

    patrols_service.add_patrol(
        app, by="yantou.lead", at=z(3, 31, 9), now=REAL_NOW,
        checkins=[CheckIn("JS-A1-V01-G01"), CheckIn("JS-A1-V01-G02")],
    )  # fmt: skip
    patrols_service.add_patrol(
        app, by="zone.lead", at=z(4, 2, 15), now=REAL_NOW, checkins=[CheckIn("JS-A1-V02")]
    )
    patrols_service.add_patrol(  # the week after: not in W14
        app, by="zone.lead", at=z(4, 6, 15), now=REAL_NOW, checkins=[CheckIn("JS-A1-V03")]
    )
    report = build_weekly(app, now=REAL_NOW, week="2026-W14", level=3)
    assert (report.patrols.patrols, report.patrols.visits) == (2, 3)
    visited = {g.grid: g.visits for g in report.patrols.grids if g.visits}
    assert visited == {"JS-A1-V01": 2, "JS-A1-V02": 1}
    assert len(report.patrols.unvisited) == 115
    wf = app.workflow
    html = render_weekly(report, "html", locale="zh_CN", workflow=wf).decode()
    assert "七、本周巡查" in html
    assert (
        "本周巡查2次，签到3次；小网格（村、联企小网格、社区片区）共117个，已巡查2个，未巡查115个"
        in html
    )
    md = render_weekly(report, "md", locale="en", workflow=wf).decode()
    assert "7. Patrols of the week" in md and "- 堰头村: 2" in md
