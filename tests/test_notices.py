"""Notices rendered from what the database holds: every kind, every locale, real rows.

A ticket is walked through the loop (submit, fix, reject, fix, verify, close) and another is
left to go late (reminders, two escalations); the digest job and a weekly report add the last
kinds. Each outbox row is turned into its render context by closeloop.notices, checked key for
key against notifiers/context.py, and rendered by the real templates (StrictUndefined).
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from closeloop import digest, outbox, service
from closeloop.app import App
from closeloop.db import read_only
from closeloop.exam import accountability
from closeloop.models import escalations, notifications, people
from closeloop.notices import Notice, NoticeError, address_for, context_for, prepare
from notifiers import KINDS, Renderer
from notifiers.context import (
    CONTEXT_TYPES,
    EscalationView,
    HistoryEntry,
    Recipient,
    ReminderView,
    ReportView,
    TicketView,
)
from tests.conftest import NOW
from tests.notify_support import (  # noqa: F401  (fixtures)
    Walked,
    napp,
    person_id,
    set_person,
    walk_the_loop,
    with_notifiers,
)

LOCALES = ("zh_CN", "en")
LATER = NOW + timedelta(hours=72)  # when the notices are "sent"


def keys(td: type) -> set[str]:
    return set(typing.get_type_hints(td))


def required(td: type) -> set[str]:
    """The keys a context must have (NotRequired ones may be left out)."""
    hints = typing.get_type_hints(td, include_extras=True)
    return {k for k, v in hints.items() if typing.get_origin(v) is not typing.NotRequired}


def rows(app: App, kind: str | None = None, **where: Any) -> list[Notice]:
    q = select(notifications).order_by(notifications.c.id)
    if kind is not None:
        q = q.where(notifications.c.kind == kind)
    for column, value in where.items():
        q = q.where(notifications.c[column] == value)
    with app.engine.connect() as conn:
        return [Notice.from_row(r) for r in conn.execute(q)]


def context(app: App, notice: Notice, now: Any = LATER) -> dict[str, Any]:
    with read_only(app.engine) as conn:
        return context_for(app, conn, notice, now)


def check_keys(kind: str, ctx: dict[str, Any]) -> None:
    td = CONTEXT_TYPES[kind]
    assert required(td) <= set(ctx) <= keys(td), kind
    assert set(ctx["recipient"]) == keys(Recipient)
    views = [ctx["ticket"]] if "ticket" in ctx else ctx.get("items", [])
    for view in views:
        assert set(view) == keys(TicketView)
        for h in view["history"]:
            assert set(h) == keys(HistoryEntry)
    if "escalation" in ctx:
        assert set(ctx["escalation"]) == keys(EscalationView)
    if "reminder" in ctx:
        assert set(ctx["reminder"]) == keys(ReminderView)
    if "summary" in ctx:
        for view in ctx["summary"]["items"]:
            assert set(view) == keys(TicketView)
    if "report" in ctx:
        assert set(ctx["report"]) == keys(ReportView)


@pytest.fixture
def walked(napp: App, tmp_path: Path) -> tuple[App, Walked]:  # noqa: F811
    app = with_notifiers(napp, base_url="https://closeloop.example.org/")
    w = walk_the_loop(app)
    report = tmp_path / "周报-2026-W14.xlsx"
    report.write_bytes(b"PK\x03\x04 report")
    zone_lead = person_id(app, "zone.lead")
    with app.engine.begin() as conn:
        outbox.enqueue(
            conn,
            kind="weekly_report",
            recipient_id=zone_lead,
            key="weekly_report:2026-W14:zone.lead",
            now=LATER,
            default_channels=["file"],
            payload={"week": "2026-W14", "file": str(report), "url": None,
                     "summary": ["本周新增问题 2 件，销号 1 件"]},
        )  # fmt: skip
        outbox.enqueue(
            conn,
            kind="meeting_minutes",
            recipient_id=zone_lead,
            key="meeting_minutes:1:1:zone.lead",
            now=LATER,
            default_channels=["file"],
            payload={"meeting_id": 1, "title": "会议纪要 · 示范例会 · 2026-04-07",
                     "at": "2026-04-07T09:00:00+08:00", "place": "荆山夏村",
                     "summary": ["EP-2026-000001 清理垃圾 (JS-A1-V01)"],
                     "markdown": "# 会议纪要\n"},
        )  # fmt: skip
        case = accountability.payload(
            event="opened", case_id=1, grid="JS-A1-V03", grid_name="东河村", month="2026-03",
            due_on="2026-05-02", owner_name="王督查", basis="exam", score="52.50", floor="60",
        )  # fmt: skip
        outbox.enqueue(
            conn,
            kind="accountability",
            recipient_id=zone_lead,
            key=accountability.notice_key(1, "opened", "zone.lead"),
            now=LATER,
            default_channels=["file"],
            payload={**case, "role": "owner"},
        )
    digest.collect(app, LATER)
    return app, w


def test_every_kind_in_every_locale_renders_from_real_rows(walked: tuple[App, Walked]) -> None:
    app, _ = walked
    renderer = Renderer()
    seen = set()
    for notice in rows(app):
        for locale in LOCALES:
            n = dataclasses.replace(notice, locale=locale)
            ctx = context(app, n)
            check_keys(n.kind, ctx)
            out = renderer.render(n.kind, locale, ctx)
            for part in (out.subject, out.text, out.html, out.markdown):
                assert part.strip()
                assert "None" not in part, (n.kind, locale)
            if "ticket" in ctx:
                assert ctx["ticket"]["ref"] in out.subject
            seen.add(n.kind)
    assert seen == set(KINDS)


def test_prepare_makes_messages_for_every_row(walked: tuple[App, Walked]) -> None:
    app, _ = walked
    batch = rows(app)
    with read_only(app.engine) as conn:
        prepared = prepare(app, conn, batch, LATER, Renderer())
    assert [p.error for p in prepared] == [None] * len(batch)
    by_kind = {p.notice.kind: p.message for p in prepared}
    report = by_kind["weekly_report"]
    assert report is not None
    [attachment] = report.attachments
    assert attachment.filename == "周报-2026-W14.xlsx"
    assert attachment.data == b"PK\x03\x04 report"
    closure = by_kind["closure"]
    assert closure is not None and closure.address == "li.dabo@example.org"
    assert closure.channel == "email"


def test_the_ticket_as_it_is_when_sent(walked: tuple[App, Walked]) -> None:
    app, w = walked
    [closure] = rows(app, "closure")
    ctx = context(app, closure)
    t = ctx["ticket"]
    assert ctx["recipient"] == {"name": "李大伯", "handle": "li.dabo@example.org"}
    assert t["ref"] == w.closed
    assert (t["category_name"], t["action_name"]) == ("乱堆乱放", "大清理")
    assert t["grid_path"] == "金山经济开发区 / 第一农村工作片 / 堰头村 / 堰头村第3户组"
    assert (t["grid_code"], t["grid_name"]) == ("JS-A1-V01-G03", "堰头村第3户组")
    assert (t["responsible_grid_name"], t["assignee_name"]) == ("堰头村第3户组", "王霞")
    assert t["assignee_phone"] == "13800000006"
    assert (t["state"], t["state_name"], t["stage"], t["due_at"]) == (
        "closed",
        "已销号",
        None,
        None,
    )
    assert t["rework_count"] == 1
    assert t["url"] == f"https://closeloop.example.org/tickets/{w.closed}"
    # Six events; the last five, oldest first, in the recipient's language.
    assert [(h["step_name"], h["by_name"]) for h in t["history"]] == [
        ("整改完成", "王霞"),
        ("退回返工", "陈霞桂"),
        ("整改完成", "王霞"),
        ("核查通过", "陈霞桂"),
        ("销号", "陈霞桂"),
    ]
    assert t["history"][1]["note"] == "河堤下仍有碎砖，需返工"
    assert t["history"][0]["at"] == NOW + timedelta(hours=1)
    en = context(app, dataclasses.replace(closure, locale="en"))["ticket"]
    assert (en["category_name"], en["state_name"]) == ("Random piling", "Closed")
    assert en["history"][1]["step_name"] == "reject"


def test_no_link_without_a_base_url(napp: App) -> None:  # noqa: F811
    w = walk_the_loop(napp)
    [assignment, *_] = rows(napp, "assignment")
    ctx = context(napp, assignment)
    assert ctx["ticket"]["ref"] == w.closed
    assert ctx["ticket"]["url"] is None
    # [web] public_url serves when [notifiers] base_url is empty
    raw = dict(napp.settings.raw)
    raw["web"] = {**raw.get("web", {}), "public_url": "https://grid.example.org"}
    app = dataclasses.replace(napp, settings=dataclasses.replace(napp.settings, raw=raw))
    assert (
        context(app, assignment)["ticket"]["url"] == f"https://grid.example.org/tickets/{w.closed}"
    )


def test_the_reporter_history_entry_and_rejection_reason(walked: tuple[App, Walked]) -> None:
    app, _ = walked
    [rejection] = rows(app, "rejection")
    ctx = context(app, rejection, NOW + timedelta(hours=2))
    assert ctx["reason"] == "河堤下仍有碎砖，需返工"
    assert ctx["recipient"] == {"name": "王霞", "handle": "yantou.g3"}
    # The late ticket was reported without a name.
    [late] = rows(app, "assignment", ticket_id=rows(app, "supervision")[0].ticket_id)
    first = context(app, late)["ticket"]["history"][0]
    assert (first["step_name"], first["by_name"]) == ("上报", "匿名群众")
    ref = service.submit(
        app,
        service.NewProblem(grid="JS-A1-V01-G01", category="sanitation", title="垃圾桶满溢",
                           reporter="张阿姨"),
        NOW,
    )  # fmt: skip
    [fresh] = [
        n for n in rows(app, "assignment") if n.payload.get("assigned_grid") == "JS-A1-V01-G01"
    ]
    ctx = context(app, fresh)
    assert ctx["ticket"]["ref"] == ref
    assert [(h["step_name"], h["by_name"]) for h in ctx["ticket"]["history"]] == [
        ("上报", "张阿姨")
    ]


def test_reminder_says_deadline_time_left_and_share_used(walked: tuple[App, Walked]) -> None:
    app, w = walked
    half = [n for n in rows(app, "reminder") if n.payload["fraction"] == 0.5]
    [reminder] = half
    due = NOW + timedelta(hours=29)  # submitted at +5 h with 24 h to fix
    at = NOW + timedelta(hours=18)
    ctx = context(app, reminder, at)
    assert ctx["ticket"]["ref"] == w.late
    assert ctx["reminder"] == {
        "deadline": due,
        "remaining": due - at,
        "fraction": 0.5,
        "late_by": timedelta(0),
        "review": False,
    }
    assert ctx["recipient"]["handle"] == "caoyuan.g2"
    # Sent after the deadline, the time left is nothing, never negative; an ordinary reminder
    # does not turn into a late notice (only the sweep's `late` reminders do).
    after = context(app, reminder, due + timedelta(hours=3))["reminder"]
    assert (after["remaining"], after["late_by"]) == (timedelta(0), timedelta(0))


def test_the_late_leader_is_told_how_late(walked: tuple[App, Walked]) -> None:
    app, _ = walked
    late = [n for n in rows(app, "reminder") if n.payload.get("late")]
    assert late, "the sweep tells the leader who missed the deadline"
    first = late[0]
    deadline = datetime.fromisoformat(first.payload["deadline"])
    ctx = context(app, first, deadline + timedelta(hours=5))
    assert ctx["reminder"]["late_by"] == timedelta(hours=5)
    out = Renderer().render("reminder", "zh_CN", ctx)
    assert "已超期5小时" in out.subject and "剩余" not in out.subject


def test_supervision_names_who_failed_how_late_what_level_and_whom_to_call(
    walked: tuple[App, Walked],
) -> None:
    app, w = walked
    first, second, *_ = rows(app, "supervision")
    with app.engine.connect() as conn:
        deadline = conn.execute(
            select(escalations.c.deadline).where(escalations.c.id == first.payload["escalation_id"])
        ).scalar_one()
    ctx = context(app, first)
    esc = ctx["escalation"]
    assert ctx["ticket"]["ref"] == w.late
    assert ctx["recipient"] == {"name": "谢燕超", "handle": "caoyuan.lead"}
    assert (esc["level"], esc["level_name"], esc["round"]) == (3, "小网格", 1)
    assert esc["stage_name"] == "整改"
    assert esc["deadline"] == deadline == NOW + timedelta(hours=29)
    assert esc["late_by"] == LATER - deadline
    assert (esc["failed_grid_name"], esc["failed_leader_name"]) == ("曹园村第2户组", "梁涛磊")
    assert esc["failed_leader_phone"] == "13800000010"
    assert esc["supervising_grid_name"] == "曹园村"
    # [notifiers] supervision_contact = "duban.wang" in config.toml
    assert (esc["contact_name"], esc["contact_phone"]) == ("王督查", "13800009001")

    up = context(app, second)["escalation"]
    assert (up["level"], up["level_name"], up["round"]) == (2, "中网格", 2)
    assert (up["failed_grid_name"], up["supervising_grid_name"]) == ("曹园村", "第一农村工作片")
    assert context(app, dataclasses.replace(second, locale="en"))["escalation"]["level_name"] == (
        "medium grid"
    )

    # Without a configured contact, the leader who is late is the one to call.
    bare = with_notifiers(app, supervision_contact="")
    esc = context(bare, first)["escalation"]
    assert (esc["contact_name"], esc["contact_phone"]) == ("梁涛磊", "13800000010")


def test_addresses_per_channel(napp: App) -> None:  # noqa: F811
    walk_the_loop(napp)
    [notice, *_] = rows(napp, "assignment")
    with napp.engine.connect() as conn:
        person = conn.execute(select(people).where(people.c.id == notice.recipient_id)).one()
    assert address_for(notice, person) == ""  # file
    assert address_for(dataclasses.replace(notice, channel="console"), person) == ""
    email = dataclasses.replace(notice, channel="email")
    assert address_for(email, person) == "yantou.g3@example.org"
    webhook = dataclasses.replace(notice, channel="webhook")
    with pytest.raises(NoticeError, match=r"王霞 \(yantou.g3\) has no webhook address"):
        address_for(webhook, person)
    set_person(napp, "yantou.g3", webhook="dingtalk+https://oapi.example/robot?t=1", email=None)
    with napp.engine.connect() as conn:
        person = conn.execute(select(people).where(people.c.id == notice.recipient_id)).one()
    assert address_for(webhook, person) == "dingtalk+https://oapi.example/robot?t=1"
    with pytest.raises(NoticeError, match="has no email address"):
        address_for(email, person)
    with pytest.raises(NoticeError, match="unknown channel 'sms'"):
        address_for(dataclasses.replace(notice, channel="sms"), person)


def test_a_row_that_cannot_render_says_why(napp: App) -> None:  # noqa: F811
    walk_the_loop(napp)
    [sup, *_] = rows(napp, "supervision")
    broken = [
        dataclasses.replace(sup, payload={}),
        dataclasses.replace(sup, payload={"escalation_id": 9999}),
        dataclasses.replace(sup, locale="fr"),
        dataclasses.replace(sup, kind="rejection", payload={}),
    ]
    with read_only(napp.engine) as conn:
        prepared = prepare(napp, conn, broken, LATER, Renderer())
    errors = [p.error for p in prepared]
    assert all(p.message is None for p in prepared)
    assert "payload has no integer 'escalation_id'" in str(errors[0])
    assert "escalation 9999 does not exist" in str(errors[1])
    assert "unknown locale 'fr'" in str(errors[2])
    assert "payload has no 'reason'" in str(errors[3])


def test_an_accountability_notice_says_its_payload_and_links_owner_and_leader(
    walked: tuple[App, Walked],
) -> None:
    app, _ = walked
    [notice] = rows(app, "accountability")
    ctx = context(app, notice)
    assert ctx["case"] == {
        "event": "opened",
        "role": "owner",
        "grid_code": "JS-A1-V03",
        "grid_name": "东河村",
        "month": "2026-03",
        "basis_name": "月考",
        "score": "52.50",
        "floor": "60",
        "due_on": "2026-05-02",
        "owner_name": "王督查",
        "outcome": None,
        "url": "https://closeloop.example.org/accountability#case-1",
    }
    en = context(app, dataclasses.replace(notice, locale="en"))["case"]
    assert en["basis_name"] == "monthly exam"
    city = dataclasses.replace(notice, payload={**notice.payload, "basis": "city"})
    assert context(app, city)["case"]["basis_name"] == "市考核"
    # The grid's leader follows the case on the same page, so their notice links it too.
    leader = dataclasses.replace(notice, payload={**notice.payload, "role": "leader"})
    link = "https://closeloop.example.org/accountability#case-1"
    assert context(app, leader)["case"]["url"] == link
    for locale in LOCALES:
        told = dataclasses.replace(leader, locale=locale)
        with read_only(app.engine) as conn:
            [done] = prepare(app, conn, [told], LATER, Renderer())
        assert done.message is not None, done.error
        asked = "配合督查" if locale == "zh_CN" else "work with the supervisor"
        assert asked in done.message.text
        for body in (done.message.text, done.message.html, done.message.markdown):
            assert link in body
    broken = [
        dataclasses.replace(notice, payload={k: v for k, v in notice.payload.items() if k != k2})
        for k2 in ("score", "case_id")
    ]
    with read_only(app.engine) as conn:
        prepared = prepare(app, conn, broken, LATER, Renderer())
    assert "accountability notice" in str(prepared[0].error) and "score" in str(prepared[0].error)
    assert "payload has no integer 'case_id'" in str(prepared[1].error)


def test_a_batch_costs_a_few_queries_whatever_its_size(napp: App) -> None:  # noqa: F811
    walk_the_loop(napp)
    walk_the_loop(napp)  # twice: four tickets, 22 notices of six kinds
    batch = rows(napp)
    one_of_each = list({n.kind: n for n in batch}.values())
    assert len(batch) >= 3 * len(one_of_each)

    def count_queries(notices: list[Notice]) -> int:
        counted = 0

        def on_execute(*_: Any) -> None:
            nonlocal counted
            counted += 1

        event.listen(napp.engine, "before_cursor_execute", on_execute)
        try:
            with read_only(napp.engine) as conn:
                prepare(napp, conn, notices, LATER, Renderer())
        finally:
            event.remove(napp.engine, "before_cursor_execute", on_execute)
        return counted

    # One query per table (and one for the ancestors of the grids), not one per notice.
    assert len(batch) > 20
    assert count_queries(batch) <= 12
    assert count_queries(one_of_each) <= 12
