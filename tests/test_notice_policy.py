"""Notices people can bear, and the right person told (issue 9, parts 3-4).

The example of the issue: a random-parking ticket (2 h to fix, a rung every 4 h, day and night)
reported on Tuesday 2026-04-07 09:00 on Caoyuan's micro grid and left open until Sunday 21:00.
Before: 25 supervision notices to the zone's leader and 25 late reminders to the micro-grid
leader. The rungs keep their cadence; who is told, when and how often changes.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from closeloop import escalation, service, views
from closeloop.app import App
from closeloop.models import escalations, notifications, people
from closeloop.notices import Notice, context_for
from closeloop.service import NewProblem
from closeloop.tickets import StepInput
from tests.factories import cn
from tests.sweep_helpers import cli, rungs
from tests.webtools import Web, browser

PARKING = NewProblem(grid="JS-A1-V02-G01", category="random_parking", title="乱停车")
PILE = NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="河边垃圾堆")


def outbox_json(app: App, *args: str) -> list[dict[str, Any]]:
    return cli(app, "outbox", "--json", "--limit", "5000", *args)  # type: ignore[no-any-return]


def distinct(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One entry per notice, whatever its channels."""
    return {i["idempotency_key"].rsplit(":", 1)[0]: i for i in items}


def sweep_every_15_minutes(app: App, start: datetime, end: datetime) -> None:
    t = start
    while t <= end:
        escalation.sweep(app, t)
        t += timedelta(minutes=15)


class TestTheExampleTicket:
    def test_a_week_open_costs_at_most_ten_notices_each_in_working_time(self, app: App) -> None:
        ref = service.submit(app, PARKING, cn(7, 9))
        sweep_every_15_minutes(app, cn(7, 9), cn(12, 21))
        # The ladder is unchanged: L3 11:00, L2 15:00, the zone at 19:00 Tuesday, then every
        # 4 h day and night until Sunday 19:00: 30 repeats.
        ladder = rungs(app, ref)
        assert len(ladder) == 33
        assert [r[2:4] for r in ladder[:4]] == [(3, 0), (2, 0), (1, 0), (1, 1)]
        assert ladder[-1][6] == cn(12, 19).astimezone(UTC)
        rows = outbox_json(app, "--ticket", ref)
        supervision = distinct([r for r in rows if r["kind"] == "supervision"])
        late = distinct(
            [r for r in rows if r["kind"] == "reminder" and ":late:" in r["idempotency_key"]]
        )
        assert 3 <= len(supervision) <= 10, sorted(supervision)
        assert 1 <= len(late) <= 10, sorted(late)
        for r in rows:
            held = datetime.fromisoformat(r["not_before"])
            assert app.calendar.is_working_time(held), r
            assert held >= datetime.fromisoformat(r["created_at"])
        # Repeats at the zone: one summary per supervisor and working day.
        summaries = [k for k in supervision if k.startswith("supervision:summary:")]
        per_day = Counter((s["recipient"], s["not_before"][:10]) for s in supervision.values())
        assert summaries and max(per_day.values()) <= 2  # the zone's arrival and its summary
        assert len({k.rsplit(":", 1)[1] for k in summaries}) == len(summaries)
        # The late leader: one reminder per working day for this ticket.
        assert {r["recipient"] for r in late.values()} == {"caoyuan.g1"}
        days = [r["not_before"][:10] for r in late.values()]
        assert len(days) == len(set(days))

    def test_a_notice_made_at_night_waits_for_working_time_unless_urgent(
        self, app: App, web: Web
    ) -> None:
        web.clock.set(cn(7, 22).astimezone(UTC))  # Tuesday 22:00
        ref = web.submit(grid="JS-A1-V02-G01", category="random_parking")["ref"]
        [assignment] = outbox_json(app, "--ticket", ref)
        assert assignment["created_at"] == "2026-04-07T22:00:00+08:00"
        assert assignment["not_before"] == "2026-04-08T08:30:00+08:00"
        # The deliverer leaves it until then.
        with app.engine.connect() as conn:
            held = conn.execute(select(notifications.c.next_attempt_at)).scalar_one()
        assert held == cn(8, 8, 30).astimezone(UTC)

        category = app.workflow.categories["random_parking"]
        urgent_wf = dataclasses.replace(
            app.workflow,
            categories={
                **app.workflow.categories,
                "random_parking": dataclasses.replace(category, urgent=True),
            },
        )
        urgent = dataclasses.replace(app, workflow=urgent_wf)
        other = service.submit(urgent, PARKING, cn(7, 22))
        [now_sent] = outbox_json(app, "--ticket", other)
        assert now_sent["not_before"] == now_sent["created_at"] == "2026-04-07T22:00:00+08:00"

    def test_urgent_is_read_from_the_workflow_file(self, tmp_path: Any) -> None:
        from closeloop.workflow import WorkflowError, load_workflow
        from tests.conftest import REPO

        text = (REPO / "workflows" / "environmental.toml").read_text(encoding="utf-8")
        marked = text.replace(
            "[categories.random_parking]\n", "[categories.random_parking]\nurgent = true\n"
        )
        (tmp_path / "wf.toml").write_text(marked, encoding="utf-8")
        wf = load_workflow(tmp_path / "wf.toml")
        assert wf.categories["random_parking"].urgent is True
        assert wf.categories["random_piling"].urgent is False
        (tmp_path / "bad.toml").write_text(marked.replace("urgent = true", 'urgent = "yes"'))
        with pytest.raises(WorkflowError, match="urgent must be true or false"):
            load_workflow(tmp_path / "bad.toml")

    def test_the_summary_lists_every_late_ticket_new_first(self, app: App) -> None:
        first = service.submit(app, PARKING, cn(7, 9))
        second = service.submit(app, PARKING, cn(7, 10))
        sweep_every_15_minutes(app, cn(7, 9), cn(8, 9))
        with app.engine.connect() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.idempotency_key.like("supervision:summary:%"))
                .order_by(notifications.c.id)
            ).all()
        assert rows
        notice = Notice.from_row(rows[0])
        with app.engine.connect() as conn:
            ctx = context_for(app, conn, notice, cn(8, 9))
        summary = ctx["summary"]
        assert summary["day"] == "2026-04-08"
        assert [t["ref"] for t in summary["items"]] == [first, second]
        assert summary["new"] == [first, second]  # the first summary: all new
        from notifiers import Renderer

        out = Renderer().render("supervision", "zh_CN", ctx)
        assert "督办汇总" in out.subject and first in out.text and second in out.text


class TestTheRightPerson:
    def test_verification_reminders_and_ladder_belong_to_the_verifier(
        self, app: App, web: Web
    ) -> None:
        ref = service.submit(app, PILE, cn(7, 9))
        service.run_step(app, ref, "fix", "yantou.g3", StepInput(note="已清理"), cn(7, 10))
        # verification: 1 working day (7.5 h) from Tuesday 10:00: 6 h on Tuesday, 1.5 h on
        # Wednesday from 08:30 -> Wednesday 10:00
        escalation.sweep(app, cn(8, 10))
        with freeze_time(cn(8, 10, 30)):
            shown = cli(app, "ticket", "show", ref, "--json")
        assert shown["due_at"] == "2026-04-08T10:00:00+08:00" and shown["overdue"] is True
        assert [
            (e["stage"], e["failed_grid"], e["grid"], e["supervisor"]) for e in shown["escalations"]
        ] == [("verify", "JS-A1-V01", "JS-A1", "area1.lead")]
        rows = outbox_json(app, "--ticket", ref)
        verify_reminders = [
            r for r in rows if r["kind"] == "reminder" and ":2:" in r["idempotency_key"]
        ]
        assert verify_reminders and {r["recipient"] for r in verify_reminders} == {"yantou.lead"}
        web.clock.set(cn(8, 10).astimezone(UTC))
        detail = web.get(f"/api/tickets/{ref}", "yantou.lead").json()
        assert [(e["stage"], e["failed_grid"]) for e in detail["escalations"]] == [
            ("verify", "JS-A1-V01")
        ]

    def test_a_zone_tickets_verification_is_a_supervisors(self, app: App) -> None:
        ref = service.submit(
            app, NewProblem(grid="JS", category="random_piling", title="区里"), cn(7, 9)
        )
        service.run_step(app, ref, "fix", "zone.lead", StepInput(note="已清理"), cn(7, 10))
        escalation.sweep(app, cn(8, 10))
        rows = outbox_json(app, "--ticket", ref)
        told = {r["recipient"] for r in rows if r["kind"] == "reminder"}
        with app.engine.connect() as conn:
            roles = dict(conn.execute(select(people.c.handle, people.c.roles)).all())
        assert told and all("supervisor" in roles[h] for h in told)

    def test_a_deferrals_review_date_reminds_the_supervisor_who_deferred(
        self, app: App, web: Web
    ) -> None:
        ref = service.submit(app, PILE, cn(7, 9))
        service.run_step(
            app,
            ref,
            "defer",
            "duban.zhao",
            StepInput(reason="待拆迁", review_on=cn(15, 9)),
            cn(7, 10),
        )
        escalation.sweep(app, cn(15, 8, 59))
        assert [r for r in outbox_json(app, "--ticket", ref) if r["kind"] == "reminder"] == []
        escalation.sweep(app, cn(15, 9))
        escalation.sweep(app, cn(15, 10))  # once
        [review] = [r for r in outbox_json(app, "--ticket", ref) if r["kind"] == "reminder"]
        assert review["recipient"] == "duban.zhao"
        with app.engine.connect() as conn:
            row = conn.execute(
                select(notifications).where(notifications.c.id == review["id"])
            ).one()
            ctx = context_for(app, conn, Notice.from_row(row), cn(15, 9))
        assert ctx["reminder"]["review"] is True
        from notifiers import Renderer

        assert "缓办复核" in Renderer().render("reminder", "zh_CN", ctx).subject
        web.clock.set(cn(15, 9, 30).astimezone(UTC))
        page = browser(web, "duban.zhao").get("/deferred").text
        assert ref in page and "已到复查日期" in page

    def test_escalation_rows_keep_stage_and_failed_grid(self, app: App) -> None:
        ref = service.submit(app, PILE, cn(7, 9))
        escalation.sweep(app, cn(8, 9))
        with app.engine.connect() as conn:
            row = conn.execute(select(escalations)).one()
        assert (row.stage, row.deadline) == ("fix", cn(8, 9).astimezone(UTC))
        shown = views.show(app, ref)
        assert shown["escalations"][0]["failed_grid"] == "JS-A1-V01-G03"
