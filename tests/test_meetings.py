"""Meetings (定期例会): the agenda from the week's report and the previous meeting's open
decisions; a decision is a ticket on a grid with the ladder and notices of any ticket; minutes
go to the attendees through the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from closeloop import service, views
from closeloop.app import App
from closeloop.db import read_only
from closeloop.meetings import service as meetings
from closeloop.models import meeting_attendees, notifications, people, tickets
from closeloop.models import meetings as meetings_table
from closeloop.notices import Notice, prepare
from closeloop.tickets import Invalid, NotFound, StepInput
from notifiers import Renderer
from tests.cli_support import refused, run, run_json
from tests.factories import count
from tests.report_data import REAL_NOW, build_week14, z

ATTEND = ("--attendee", "duban.wang", "--attendee", "yantou.lead", "--attendee", "zone.lead")


def test_a_meeting_its_decision_and_the_next_agenda(app: App) -> None:
    refs = build_week14(app)
    with freeze_time("2026-04-07T01:00:00Z"):
        m = run_json(
            app, "meeting", "add", "--kind", "example", "--at", "2026-04-07T09:00:00+08:00",
            "--place", "JS-A3-V15", *ATTEND, "--week", "2026-W14",
        )  # fmt: skip
        assert (m["id"], m["kind_name"], m["week"]) == (1, "示范例会", "2026-W14")
        assert m["place"] == {"grid": "JS-A3-V15", "name": "荆山夏村"}
        assert [a["handle"] for a in m["attendees"]] == ["duban.wang", "yantou.lead", "zone.lead"]
        agenda = m["agenda"]
        late = {t["ref"] for t in agenda["late"]}
        assert {refs["T4"], refs["C3"]} <= late
        assert agenda["open_decisions"] == [] and agenda["previous_meeting"] is None
        assert {(h["grid"], h["count"]) for h in agenda["hotspots"]} >= {("JS-A1-V01", 1)}
        assert agenda["lagging"] and "example" in agenda and agenda["campaigns"] == []

        d = run_json(
            app, "meeting", "decide", "1", "--grid", "JS-A1-V01", "--title", "清理村口垃圾堆",
            "--due", "2026-04-10T17:30:00+08:00", "--category", "random_piling",
        )  # fmt: skip
    ref = d["ref"]
    assert (d["id"], d["meeting"], d["grid"], d["assignee"], d["state"]) == (
        1, 1, "JS-A1-V01", "yantou.lead", "assigned",
    )  # fmt: skip
    assert d["due_at"] == "2026-04-10T17:30:00+08:00"
    shown = views.show(app, ref)
    assert shown["reporter"] == "示范例会 #1" and shown["category"] == "random_piling"
    with app.engine.connect() as conn:
        assert conn.execute(select(tickets.c.source).where(tickets.c.ref == ref)).scalar() == (
            "meeting"
        )
    with app.engine.connect() as conn:
        ticket_id = conn.execute(select(tickets.c.id).where(tickets.c.ref == ref)).scalar()
        notices = conn.execute(
            select(notifications.c.kind, people.c.handle)
            .join(people, people.c.id == notifications.c.recipient_id)
            .where(notifications.c.ticket_id == ticket_id)
        ).all()
    assert [tuple(n) for n in notices] == [("assignment", "yantou.lead")]
    assert [t["ref"] for t in views.inbox(app, "yantou.lead")].count(ref) == 1

    shown_m = run_json(app, "meeting", "show", "1")
    assert [(x["ref"], x["state"], x["open"]) for x in shown_m["decisions"]] == [
        (ref, "assigned", True)
    ]
    assert "decision" in run(app, "meeting", "show", "1")

    # The next meeting's agenda lists the decision as still open.
    with freeze_time("2026-04-14T01:00:00Z"):
        nxt = run_json(
            app, "meeting", "add", "--kind", "site", "--at", "2026-04-14T09:00:00+08:00",
            "--place", "JS-A1-V01", "--attendee", "yantou.lead",
        )  # fmt: skip
    assert nxt["week"] == "2026-W15"  # the last full week before the meeting
    assert nxt["agenda"]["previous_meeting"] == 1
    assert [(x["ref"], x["state"]) for x in nxt["agenda"]["open_decisions"]] == [(ref, "assigned")]

    # Done by the meeting after: fixed, verified, closed; no longer on the agenda.
    service.run_step(app, ref, "fix", "yantou.lead", StepInput(note="已清理"), REAL_NOW,
                     at=z(4, 14, 15))  # fmt: skip
    service.run_step(app, ref, "verify", "area1.lead", StepInput(), REAL_NOW, at=z(4, 14, 16))
    service.run_step(app, ref, "close", "area1.lead", StepInput(), REAL_NOW, at=z(4, 14, 17))
    third = meetings.add_meeting(
        app, kind="deployment", at=z(4, 20, 8), place="JS", attendees=["zone.lead"],
        now=REAL_NOW,
    )  # fmt: skip
    assert third["agenda"]["previous_meeting"] == 2 and third["agenda"]["open_decisions"] == []
    assert meetings.show_meeting(app, 1)["decisions"][0]["open"] is False
    assert [x["id"] for x in run_json(app, "meeting", "list", "--kind", "site")] == [2]


def test_minutes_are_rendered_and_sent_to_the_attendees(app: App) -> None:
    build_week14(app)
    m = meetings.add_meeting(
        app, kind="learning", at=z(4, 8, 14), place="JS-A3-V15",
        attendees=["yantou.lead", "caoyuan.lead"], now=z(4, 8, 15), week="2026-W14",
    )  # fmt: skip
    d = meetings.decide(app, m["id"], grid="JS-A1-V02", title="学习荆山夏村：空地即绿化",
                        due=z(4, 30, 17), now=z(4, 8, 15))  # fmt: skip
    md = run(app, "meeting", "minutes", str(m["id"]))
    assert md.startswith("# 会议纪要 · 取经交流会 · 2026-04-08")
    assert f"- {d['ref']} 学习荆山夏村：空地即绿化 (JS-A1-V02;" in md
    html = run(app, "meeting", "minutes", str(m["id"]), "--format", "html", "--locale", "en")
    assert html.startswith("<!DOCTYPE html>") and "Minutes · learning visit" in html
    out = run(app, "meeting", "minutes", str(m["id"]), "--send")
    assert out == f"minutes of meeting {m['id']}: 2 notices queued\n"  # one channel each
    assert "0 notices queued" in run(app, "meeting", "minutes", str(m["id"]), "--send")
    with app.engine.connect() as conn:
        rows = [
            Notice.from_row(r)
            for r in conn.execute(
                select(notifications).where(notifications.c.kind == "meeting_minutes")
            )
        ]
    with read_only(app.engine) as conn:
        prepared = prepare(app, conn, rows, REAL_NOW + timedelta(days=1), Renderer())
    assert [p.error for p in prepared] == [None, None]
    message = prepared[0].message
    assert message is not None and d["ref"] in message.text and "荆山夏村" in message.text
    [attachment] = message.attachments
    assert attachment.data.decode().startswith("# 会议纪要")
    assert meetings.show_meeting(app, m["id"])["minutes_sent_at"] is not None


def test_bad_meetings_and_decisions_are_refused_whole(app: App) -> None:
    message = refused(
        app, "meeting", "add", "--kind", "party", "--at", "2026-04-07T09:00:00+08:00",
        "--place", "NOPE", "--attendee", "nobody", "--attendee", "yantou.lead",
        "--attendee", "yantou.lead", "--week", "2026-14",
    )  # fmt: skip
    for expected in (
        "unknown kind 'party'",
        "attendee yantou.lead given twice",
        "week '2026-14' is not of the form",
        "unknown grid 'NOPE'",
        "unknown person 'nobody'",
    ):
        assert expected in message, (expected, message)
    assert "at least one --attendee" in refused(
        app, "meeting", "add", "--kind", "site", "--at", "2026-04-07T09:00:00+08:00",
        "--place", "JS",
    )  # fmt: skip
    assert "has not ended yet" in refused(
        app, "meeting", "add", "--kind", "site", "--at", "2026-04-07T09:00:00+08:00",
        "--place", "JS", "--attendee", "zone.lead", "--week", "2099-W01",
    )  # fmt: skip
    assert (count(app, meetings_table), count(app, meeting_attendees)) == (0, 0)
    with pytest.raises(Invalid) as info:
        meetings.add_meeting(
            app,
            kind="party",
            at=z(4, 7, 9),
            place="NOPE",
            attendees=["nobody", "zone.lead", "zone.lead"],
            now=REAL_NOW,
        )
    assert str(info.value) == (
        "unknown kind 'party'; kinds: example, site, deployment, learning; "
        "attendee zone.lead given twice; unknown grid 'NOPE'; unknown person 'nobody'"
    )
    assert info.value.text("zh_CN") == (
        "会议信息有误：没有 'party' 这种会议；可用：example, site, deployment, learning；"
        "参会人员 zone.lead 重复；没有网格 NOPE；没有账号 nobody"
    )

    m = meetings.add_meeting(app, kind="site", at=z(4, 7, 9), place="JS-A1-V01",
                             attendees=["yantou.lead"], now=REAL_NOW)  # fmt: skip
    before = count(app, tickets)
    with pytest.raises(NotFound, match="no meeting 99"):
        meetings.decide(app, 99, grid="JS-A1-V01", title="x", due=z(4, 30, 9), now=REAL_NOW)
    assert "is not in the future" in refused(
        app, "meeting", "decide", str(m["id"]), "--grid", "JS-A1-V01", "--title", "x",
        "--due", "2020-01-01T09:00:00+08:00",
    )  # fmt: skip
    with freeze_time("2026-04-07T01:00:00Z"):
        assert "unknown grid 'NOPE'" in refused(
            app, "meeting", "decide", str(m["id"]), "--grid", "NOPE", "--title", "x",
            "--due", "2026-04-30T09:00:00+08:00",
        )  # fmt: skip
        assert "unknown category" in refused(
            app, "meeting", "decide", str(m["id"]), "--grid", "JS-A1-V01", "--title", "x",
            "--due", "2026-04-30T09:00:00+08:00", "--category", "nope",
        )  # fmt: skip
    assert count(app, tickets) == before


def test_a_late_decision_climbs_the_ladder_like_any_ticket(app: App) -> None:
    from closeloop import escalation, views

    m = meetings.add_meeting(app, kind="deployment", at=z(4, 7, 9), place="JS",
                             attendees=["zone.lead"], now=z(4, 7, 10))  # fmt: skip
    # 'other' has 3 working days to fix; the meeting gives one afternoon.
    d = meetings.decide(app, m["id"], grid="JS-A1-V01-G02", title="今天下班前清运",
                        due=z(4, 7, 17, 30), now=z(4, 7, 10))  # fmt: skip
    assert d["assignee"] == "yantou.g2" and d["due_at"] == "2026-04-07T17:30:00+08:00"
    assert escalation.sweep(app, z(4, 7, 17, 29)).escalations == 0
    swept = escalation.sweep(app, z(4, 7, 17, 31))
    assert swept.escalations == 1
    shown = views.show(app, d["ref"])
    assert (shown["escalation_level"], shown["supervising_grid"]) == (1, "JS-A1-V01")  # one rung up
