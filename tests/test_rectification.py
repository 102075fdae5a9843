"""一村一月大整治: a record per village per month, its items from open tickets and recurrence hot
spots plus the village's own, ticked off to zero."""

from __future__ import annotations

import pytest

from closeloop import service
from closeloop.app import App
from closeloop.campaigns import rectification
from closeloop.models import rectification_items, rectifications
from closeloop.tickets import NotPermitted, StepInput
from tests.cli_support import refused, run, run_json
from tests.factories import count
from tests.report_data import REAL_NOW, build_week14, loop, submit, z


def test_plan_show_add_and_tick_to_zero(app: App) -> None:
    refs = build_week14(app)
    done = run_json(app, "rectify", "plan", "--month", "2026-05", "--focus", "乱堆乱放")
    assert done["records_created"] == 21  # every village of the example zone
    yantou = run_json(app, "rectify", "show", "JS-A1-V01", "--month", "2026-05")
    assert yantou["focus"] == "乱堆乱放"
    tickets_listed = {i["ref"] for i in yantou["items"] if i["source"] == "ticket"}
    # Yantou's open tickets (T4 assigned, T5 deferred, T6, T8, T10, D1 moved away to Donghe).
    assert {refs["T4"], refs["T5"], refs["T6"], refs["T8"], refs["T10"]} == tickets_listed
    hot = [i["title"] for i in yantou["items"] if i["source"] == "hotspot"]
    assert hot == ["堰头村第1户组 · 乱堆乱放 ×1"]  # R1, a recurrence of T7
    # Planning twice adds nothing.
    again = run_json(app, "rectify", "plan", "--month", "2026-05")
    assert again == {"month": "2026-05", "records_created": 0, "items_created": 0}

    added = run_json(app, "rectify", "add", "JS-A1-V01", "--month", "2026-05",
                     "--item", "村口空地围栏补种", "--item", "河埠头清淤")  # fmt: skip
    assert added["total"] == yantou["total"] + 2 and added["remaining"] == added["total"]
    own = [i["id"] for i in added["items"] if i["source"] != "ticket"]
    for item in own:
        run(app, "rectify", "tick", str(item), "--by", "yantou.lead")
    # The tickets are ticked off by closing them.
    for name in ("T4", "T6", "T8"):
        fixer = {"T4": "yantou.g1", "T6": "yantou.g3", "T8": "yantou.g4"}[name]
        loop(app, refs[name], fixer, "yantou.lead", z(4, 19, 9), z(4, 19, 12))
    service.run_step(
        app, refs["T5"], "resume", "duban.wang", StepInput(), REAL_NOW, at=z(4, 19, 13)
    )
    loop(app, refs["T5"], "yantou.g2", "yantou.lead", z(4, 19, 14), z(4, 19, 16))
    service.run_step(app, refs["T10"], "dismiss", "duban.wang", StepInput(reason="重复"),
                     REAL_NOW, at=z(4, 19, 17))  # fmt: skip
    final = run_json(app, "rectify", "show", "JS-A1-V01", "--month", "2026-05")
    assert (final["remaining"], final["done"]) == (0, final["total"])
    listed = run_json(app, "rectify", "list", "--month", "2026-05")
    assert len(listed) == 21 and listed[0]["grid"] == "JS-A1-V01" and listed[0]["remaining"] == 0


def test_bad_input_and_who_may_tick(app: App) -> None:
    submit(app, "JS-A1-V02-G01", "sanitation", z(4, 1, 9))
    assert "YYYY-MM" in refused(app, "rectify", "plan", "--month", "2026-5")
    assert "--level must be" in refused(
        app, "rectify", "plan", "--month", "2026-05", "--level", "1"
    )
    assert (count(app, rectifications), count(app, rectification_items)) == (0, 0)
    run(app, "rectify", "plan", "--month", "2026-05", "--level", "4")
    assert count(app, rectifications) == 293  # every micro grid
    assert "no rectification of JS-A1-V02 in 2026-05" in refused(
        app, "rectify", "show", "JS-A1-V02", "--month", "2026-05"
    )
    before = count(app, rectification_items)
    message = refused(app, "rectify", "add", "JS-A1-V02-G01", "--month", "2026-05",
                      "--item", "  ", "--item", "x" * 201)  # fmt: skip
    assert "item 1: empty" in message and "item 2: longer than 200" in message
    assert count(app, rectification_items) == before
    added = rectification.add_items(app, "JS-A1-V02-G01", "2026-05", ["清理柴堆"], REAL_NOW)
    own = next(i for i in added["items"] if i["source"] == "added")["id"]
    ticket_item = next(i for i in added["items"] if i["source"] == "ticket")["id"]
    with pytest.raises(NotPermitted, match="only its leader or members"):
        rectification.tick(app, own, "yantou.lead", REAL_NOW)  # another village's leader
    assert "is a ticket" in refused(app, "rectify", "tick", str(ticket_item), "--by", "caoyuan.g1")
    rectification.tick(app, own, "caoyuan.lead", REAL_NOW)  # the leader above
    assert "already ticked off" in refused(app, "rectify", "tick", str(own), "--by", "duban.wang")
