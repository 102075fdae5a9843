"""The month's campaign (一月一村大会战): recording it, and its progress on the fixed week of
tests/report_data.py.

April campaign on 堰头村 and 曹园村. Tickets filed there from 1 April (zone time), not dismissed:
  堰头: T8 sanitation (open), T3 random_piling (closed), T4 sanitation (open), T5 sanitation
        (deferred), R1 random_piling (closed), T6 sanitation (open)   -> found 6, fixed 2
  曹园: W1 other (open), C3 sanitation (open), P1 random_parking (closed); X1 dismissed
                                                                       -> found 3, fixed 1
By action (from the category): clean-up = random_piling + sanitation: 6 + 1 = 7 found, 2 fixed;
rectification = other + random_parking: 2 found, 1 fixed. T1, T2, T10 (30-31 March) are not
counted, nor anything in 东河村.
"""

from __future__ import annotations

import json
from unittest.mock import patch

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from closeloop.app import App
from closeloop.campaigns import service as cmod
from closeloop.cli import app as cli_app
from closeloop.cli.common import State
from closeloop.db import read_only
from closeloop.models import campaign_grids, campaigns, metadata
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from closeloop.tickets import Invalid
from tests.conftest import CONFIG
from tests.factories import count
from tests.report_data import REAL_NOW, build_week14, submit, z

THEMES = ("清理垃圾", "拆除违建", "整治停车", "绿化建设")


@pytest.fixture
def camp_app(app: App) -> App:
    metadata.create_all(app.engine)
    return app


def add(app: App, **kwargs: object) -> cmod.Campaign:
    given: dict = {
        "month": "2026-04",
        "grid_codes": ["JS-A1-V01", "JS-A1-V02"],
        "theme": "堰头曹园环境大会战",
        "actions": ["clean-up"],
        "weekly_themes": THEMES,
        "now": REAL_NOW,
    }
    given.update(kwargs)
    return cmod.add_campaign(app, **given)  # type: ignore[arg-type]


def test_progress_by_village_and_action(camp_app: App) -> None:
    build_week14(camp_app)
    c = add(camp_app)
    assert [code for code, _, _ in c.grids] == ["JS-A1-V01", "JS-A1-V02"]
    with read_only(camp_app.engine) as conn:
        p = cmod.progress(conn, camp_app, c, until=z(4, 6, 0))
    assert [(g.key, g.found, g.fixed, g.open) for g in p.by_grid] == [
        ("JS-A1-V01", 6, 2, 4),
        ("JS-A1-V02", 3, 1, 2),
    ]
    assert [(a.key, a.found, a.fixed, a.open) for a in p.by_action] == [
        ("clean-up", 7, 2, 5),
        ("rectification", 2, 1, 1),
        ("demolition", 0, 0, 0),
        ("construction", 0, 0, 0),
    ]
    assert (p.total.found, p.total.fixed, p.total.open) == (9, 3, 6)
    assert p.action_name.zh == "大清理" and p.week_theme == "清理垃圾"  # 1-7 April: week 1
    # Only what was filed before `until` counts: at 07:30 on 3 April, P1 and R1 are not yet filed.
    with read_only(camp_app.engine) as conn:
        early = cmod.progress(conn, camp_app, c, until=z(4, 3, 7, 30))
    assert (early.total.found, early.total.fixed) == (6, 1)  # T8 T3 T4 T5 W1 C3; T3 fixed


def test_tickets_of_other_months_and_villages_do_not_count(camp_app: App) -> None:
    c = add(camp_app)
    submit(camp_app, "JS-A1-V01-G01", "sanitation", z(3, 31, 23, 59))  # March, zone time
    submit(camp_app, "JS-A1-V03-G01", "sanitation", z(4, 10, 9))  # another village
    inside = submit(camp_app, "JS-A1-V01", "sanitation", z(4, 1, 0))  # the village itself
    with read_only(camp_app.engine) as conn:
        p = cmod.progress(conn, camp_app, c)
    assert (p.total.found, p.total.open) == (1, 1)
    assert inside.startswith("EP-2026-")


def test_the_weekly_report_shows_the_month_campaign(camp_app: App) -> None:
    build_week14(camp_app)
    add(camp_app)
    report = build_weekly(camp_app, now=REAL_NOW, week="2026-W14")
    (shown,) = report.campaigns
    assert (shown.total.found, shown.total.fixed) == (9, 3)
    html = render_weekly(report, "html", locale="zh_CN", workflow=camp_app.workflow).decode()
    assert "堰头曹园环境大会战 · 大清理" in html and "本周主题：清理垃圾" in html
    march = build_weekly(camp_app, now=REAL_NOW, week="2026-W12")
    assert march.campaigns == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"actions": ["bulldoze"]}, "unknown action 'bulldoze'"),
        ({"actions": []}, "at least one --action"),
        ({"month": "2026-13"}, "YYYY-MM"),
        ({"grid_codes": ["NOPE"]}, "unknown grid 'NOPE'"),
        ({"grid_codes": []}, "at least one --grid"),
        ({"grid_codes": ["JS"]}, "the whole zone"),
        ({"theme": "  "}, "a theme is needed"),
        ({"weekly_themes": ["a", "b", "c", "d", "e", "f"]}, "at most 5 weekly themes"),
    ],
)
def test_bad_campaigns_write_nothing(camp_app: App, change: dict, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        add(camp_app, **change)
    assert count(camp_app, campaigns) == 0 and count(camp_app, campaign_grids) == 0


def test_several_campaigns_for_a_village_in_a_month(camp_app: App) -> None:
    add(camp_app)
    other = add(camp_app, grid_codes=["JS-A1-V02", "JS-A1-V03"], theme="另一场")
    assert [code for code, _, _ in other.grids] == ["JS-A1-V02", "JS-A1-V03"]
    assert count(camp_app, campaign_grids) == 4
    add(camp_app, month="2026-05", grid_codes=["JS-A1-V02"], theme="五月")
    with read_only(camp_app.engine) as conn:
        assert [c.month for c in cmod.list_campaigns(conn)] == ["2026-04", "2026-04", "2026-05"]
        assert [c.theme for c in cmod.list_campaigns(conn, "2026-05")] == ["五月"]


def run(app: App, *args: str) -> str:
    with patch.object(State, "app", lambda _self: app):
        result = CliRunner().invoke(cli_app, ["--config", str(CONFIG), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_campaign_commands(camp_app: App) -> None:
    build_week14(camp_app)
    out = run(
        camp_app,
        "campaign",
        "add",
        "--month",
        "2026-04",
        "--grid",
        "JS-A1-V01",
        "--grid",
        "JS-A1-V02",
        "--theme",
        "大会战",
        "--action",
        "demolition",
        "--weekly-themes",
        "拆",
        "--weekly-themes",
        "建，绿",
    )
    assert out.startswith("campaign 1 2026-04 大会战 (demolition): JS-A1-V01 堰头村, JS-A1-V02")
    listed = json.loads(run(camp_app, "campaign", "list", "--json"))
    assert [
        (c["grids"], c["weekly_themes"], c["found"], c["fixed"], c["open"]) for c in listed
    ] == [(["JS-A1-V01", "JS-A1-V02"], ["拆", "建", "绿"], 9, 3, 6)]
    assert listed[0]["by_action"]["clean-up"] == {"found": 7, "fixed": 2, "open": 5}
    assert "found 9, fixed 3, open 6" in run(camp_app, "campaign", "list", "--month", "2026-04")
    assert run(camp_app, "campaign", "list", "--month", "2026-06") == "no campaign in 2026-06\n"


def test_a_campaign_day_with_teams_and_its_findings(camp_app: App, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from freezegun import freeze_time

    from closeloop.models import ticket_links, tickets
    from tests.cli_support import refused, run_json

    with freeze_time("2026-04-22T00:30:00Z"):
        c = run_json(
            camp_app, "campaign", "add", "--date", "2026-04-22",
            "--grid", "JS-A1-V01", "--grid", "JS-A1-V02", "--grid", "JS-A1-V03",
            "--action", "clean-up", "--action", "demolition",
            "--team", "一组:zone.lead,area1.lead", "--team", "二组：duban.wang",
            "--theme", "四月大会战", "--focus", "乱堆乱放",
            "--weekly-themes", "清理,拆违,停车,绿化",
        )  # fmt: skip
        assert (c["id"], c["month"], c["date"], c["actions"]) == (
            1, "2026-04", "2026-04-22", ["clean-up", "demolition"],
        )  # fmt: skip
        assert c["teams"] == [
            {"name": "一组", "members": [{"handle": "zone.lead", "name": "彭琴"},
                                          {"handle": "area1.lead", "name": "楼涛"}]},
            {"name": "二组", "members": [{"handle": "duban.wang", "name": "王督查"}]},
        ]  # fmt: skip
        assert c["focus"] == "乱堆乱放" and c["week_theme"] == "绿化"  # 22nd: week 4
        f = tmp_path / "findings.csv"
        f.write_text(
            "grid,category,title,address\n"
            "JS-A1-V01-G01,random_piling,村口柴堆,堰头村口\n"
            "JS-A1-V02-G03,illegal_construction,违建棚,\n"
            "JS-A1-V03,sanitation,河边垃圾,\n",
            encoding="utf-8",
        )
        filed = run_json(camp_app, "campaign", "findings", "1", str(f), "--by", "zone.lead")
        assert len(filed["refs"]) == 3
        shown = run_json(camp_app, "campaign", "show", "1")
    assert (shown["found"], shown["fixed"], shown["open"]) == (3, 0, 3)
    assert shown["by_grid"] == {
        "JS-A1-V01": {"found": 1, "fixed": 0, "open": 1},
        "JS-A1-V02": {"found": 1, "fixed": 0, "open": 1},
        "JS-A1-V03": {"found": 1, "fixed": 0, "open": 1},
    }
    assert shown["by_action"]["clean-up"] == {"found": 2, "fixed": 0, "open": 2}
    assert shown["by_action"]["demolition"] == {"found": 1, "fixed": 0, "open": 1}
    assert [t["ref"] for t in shown["tagged"]] == filed["refs"]
    with camp_app.engine.connect() as conn:
        sources = conn.execute(select(tickets.c.source, tickets.c.reporter_name)).all()
        assert {tuple(s) for s in sources} == {("campaign", "彭琴")}

    # A bad file is refused whole: every line named, nothing filed.
    f.write_text(
        "grid,category,title,lat\n"
        "JS-A1-V01-G01,random_piling,好的一行,\n"
        "JS-A2-V08,random_piling,别的村,\n"
        "NOPE,nope,,north\n",
        encoding="utf-8",
    )
    message = refused(camp_app, "campaign", "findings", "1", str(f))
    for expected in (
        "line 3: grid JS-A2-V08 is not in the campaign's villages",
        "line 4: lat 'north' is not a number",
        "line 4: title is empty",
        "line 4: unknown grid 'NOPE'",
    ):
        assert expected in message, (expected, message)
    # The same problems by the same lines in Chinese, no English sentence among them.
    with pytest.raises(Invalid) as info:
        cmod.file_findings(camp_app, 1, f.read_text(encoding="utf-8"), REAL_NOW)
    chinese = info.value.text("zh_CN")
    assert chinese.startswith("问题清单未导入：第 3 行：网格 JS-A2-V08 不在本次大会战的村中"), (
        chinese
    )
    for expected in (
        "第 4 行：纬度 'north' 不是数字",
        "第 4 行：标题（title）为空",
        "第 4 行：没有网格 NOPE",
    ):
        assert expected in chinese, (expected, chinese)
    assert "line" not in chinese and "is not" not in chinese
    assert count(camp_app, ticket_links) == 3
    assert "no campaign 9" in refused(camp_app, "campaign", "show", "9")
    message = refused(
        camp_app, "campaign", "add", "--date", "2026-04-31", "--grid", "JS-A1-V01",
        "--action", "clean-up", "--theme", "x", "--team", "一组", "--team", "二组:nobody",
    )  # fmt: skip
    for expected in (
        "date '2026-04-31'",
        "--team '一组' is not NAME:HANDLE",
        "unknown person 'nobody'",
    ):
        assert expected in message, (expected, message)
    assert count(camp_app, campaigns) == 1
