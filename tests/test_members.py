"""The people of a grid (members.csv): refused whole on bad lines; members see the grid's inbox
and act as its leader for the steps the workflow gives "responsible", and only those."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from closeloop import members, service, views
from closeloop.app import App
from closeloop.memberfile import MemberFileError
from closeloop.models import grid_members, people
from closeloop.tickets import NotPermitted, StepInput
from tests.cli_support import refused, run, run_json
from tests.factories import count
from tests.report_data import REAL_NOW, z

GOOD = """grid_code,handle,name,phone,email,role,duty
JS-A1-V01,yantou.fs,林第一,13900000101,yantou.fs@example.org,第一书记,
JS-A1-V01,yantou.liaison,吴联村,13900000102,,联村干部,垃圾分类
JS-A1-V01,yantou.sec,郑支书,,,村支书,
JS,zone.deputy,钱副主任,13900000104,,班子成员,分管东片
JS-A1-V02,yantou.liaison,吴联村,13900000102,,联村干部,停车整治
"""


def test_import_and_list(app: App, tmp_path: Path) -> None:
    f = tmp_path / "members.csv"
    f.write_text(GOOD, encoding="utf-8")
    assert run_json(app, "member", "import", str(f)) == {
        "grids": 3,
        "members": 5,
        "people_created": 4,
    }
    listed = run_json(app, "member", "list", "--grid", "JS-A1-V01")
    assert [(m["handle"], m["role"], m["duty"]) for m in listed] == [
        ("yantou.fs", "第一书记", None),
        ("yantou.liaison", "联村干部", "垃圾分类"),
        ("yantou.sec", "村支书", None),
    ]
    whole = run_json(app, "member", "list", "--grid", "JS-A1", "--subtree")
    assert [m["grid"] for m in whole] == ["JS-A1-V01"] * 3 + ["JS-A1-V02"]
    # Importing a grid again replaces its members; other grids keep theirs.
    f.write_text("grid_code,handle,name,role\nJS-A1-V01,yantou.fs,林第一,第一书记\n", "utf-8")
    run(app, "member", "import", str(f))
    assert [m["handle"] for m in run_json(app, "member", "list")] == [
        "zone.deputy",
        "yantou.fs",
        "yantou.liaison",
    ]


def test_a_bad_file_is_refused_whole_with_every_problem(app: App, tmp_path: Path) -> None:
    bad = GOOD + (
        "NOPE,someone,某人,,,党员代表,\n"
        "JS-A1-V02,Bad Handle,某人,,,党员代表,\n"
        "JS-A1-V02,ok.person,,12,not-an-email,,\n"
        "JS-A1-V01,yantou.fs,林第一,,,第一书记,\n"
        "JS-A1-V03,yantou.sec,另一个名字,,,村支书,\n"
    )
    f = tmp_path / "members.csv"
    f.write_text(bad, encoding="utf-8")
    message = refused(app, "member", "import", str(f))
    for expected in (
        "the members file is refused, 8 problems",
        "line 7: unknown grid 'NOPE'",
        "line 8: handle 'Bad Handle'",
        "line 9: name is empty",
        "line 9: role is empty",
        "line 9: phone '12'",
        "line 9: email 'not-an-email'",
        "line 10: yantou.fs is listed twice for JS-A1-V01 (line 2)",
        "line 11: yantou.sec is named '另一个名字' here and '郑支书' on line 4",
    ):
        assert expected in message, (expected, message)
    assert count(app, grid_members) == 0
    with app.engine.connect() as conn:
        assert (
            conn.execute(select(people.c.id).where(people.c.handle == "yantou.fs")).first() is None
        )
    with pytest.raises(MemberFileError, match=r"missing column\(s\) role"):
        members.import_members_text(app, "grid_code,handle,name\n", REAL_NOW)


def test_members_answer_for_their_grid(app: App) -> None:
    members.import_members_text(app, GOOD, REAL_NOW)
    # A problem on the village grid itself: its leader and its members answer for it.
    village = service.submit(
        app, service.NewProblem(grid="JS-A1-V01", category="sanitation", title="村口垃圾"),
        REAL_NOW, at=z(4, 10, 9),
    )  # fmt: skip
    on_micro = service.submit(
        app, service.NewProblem(grid="JS-A1-V01-G01", category="sanitation", title="户组垃圾"),
        REAL_NOW, at=z(4, 10, 9),
    )  # fmt: skip
    inbox = [t["ref"] for t in views.inbox(app, "yantou.fs")]
    assert inbox == [village, on_micro]  # the grid's inbox: its own and the grids below
    assert views.inbox(app, "caoyuan.lead") == []
    # Not the micro grid's own steps: that grid has its own leader.
    with pytest.raises(NotPermitted, match="leader \\(or a member\\) of the responsible grid"):
        service.run_step(app, on_micro, "fix", "yantou.fs", StepInput(note="x"), REAL_NOW)
    service.run_step(app, village, "fix", "yantou.liaison", StepInput(note="已清"), REAL_NOW)
    # Verifying is for a leader above (ancestor_leader) or a supervisor: a member is neither.
    service.run_step(app, on_micro, "fix", "yantou.g1", StepInput(note="已清"), REAL_NOW)
    with pytest.raises(NotPermitted):
        service.run_step(app, on_micro, "verify", "yantou.sec", StepInput(), REAL_NOW)
    service.run_step(app, on_micro, "verify", "yantou.lead", StepInput(), REAL_NOW)
    # The zone's leadership member shares the big grid: a problem on the zone grid is theirs.
    zone_ticket = service.submit(
        app, service.NewProblem(grid="JS", category="other", title="全区道路"), REAL_NOW
    )
    service.run_step(app, zone_ticket, "fix", "zone.deputy", StepInput(note="已办"), REAL_NOW)
    assert views.show(app, zone_ticket)["state"] == "fixed"
