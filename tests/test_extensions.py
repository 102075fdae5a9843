"""Extension (延期) and deferral (缓办/挂账): the rules, the clock, and what `ticket show` says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from closeloop import escalation, service, views
from closeloop.app import App
from closeloop.models import deferrals, escalations, extensions
from closeloop.service import NewProblem
from closeloop.tickets import Conflict, Invalid, NotPermitted
from tests.conftest import NOW
from tests.factories import cn, count, hours, step
from tests.sweep_helpers import cli, notices, rungs, ticket_row

PILE = NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="河边垃圾堆")
SHED = NewProblem(grid="JS-A1-V01-G03", category="illegal_construction", title="违章铁皮棚")


def ask(app: App, ref: str, until: datetime, when: datetime, by: str = "yantou.g3") -> None:
    # in UTC, as the API's clients send it; the request's event keeps it as given
    step(app, ref, "request_extension", by, when, reason="等挖机进场", until=until.astimezone(UTC))


class TestExtension:
    def test_request_and_approve_move_the_deadline_and_count_the_ticket_extended(
        self, app: App
    ) -> None:
        ref = service.submit(app, PILE, NOW)  # due 2 April 09:00
        ask(app, ref, cn(3, 9), NOW + hours(1))
        assert ticket_row(app, ref).due_at == cn(2, 9)  # nothing moves before the decision
        step(app, ref, "approve_extension", "duban.wang", NOW + hours(2), note="同意")
        row = ticket_row(app, ref)
        assert (row.due_at, row.extension_count) == (cn(3, 9), 1)
        shown = views.show(app, ref)
        assert shown["extension_count"] == 1
        assert [
            (x["status"], x["until"], x["requested_by"], x["decided_by"], x["decision_note"])
            for x in shown["extensions"]
        ] == [("approved", "2026-04-03T09:00:00+08:00", "yantou.g3", "duban.wang", "同意")]
        events = [(e["step"], e["from"], e["to"], e["data"].get("until")) for e in shown["events"]]
        until = cn(3, 9).astimezone(UTC).isoformat()
        assert events[1:] == [
            ("request_extension", "assigned", "assigned", until),
            ("approve_extension", "assigned", "assigned", until),
        ]

    def test_the_extended_deadline_governs_reminders_and_escalation(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        ask(app, ref, cn(3, 9), NOW + hours(1))
        step(app, ref, "approve_extension", "duban.wang", NOW + hours(2))
        # reminders now count back from the new deadline: 12 h and 4.8 h before it
        assert ticket_row(app, ref).next_check_at == cn(2, 21)
        assert escalation.sweep(app, cn(2, 9)).escalations == 0  # the old deadline is gone
        assert escalation.sweep(app, cn(2, 21)).reminders == 1
        assert escalation.sweep(app, cn(3, 4, 12)).reminders == 1
        result = escalation.sweep(app, cn(3, 9))
        assert (result.reminders, result.escalations) == (0, 1)
        assert rungs(app, ref)[0][6] == cn(3, 9)
        payloads = [n["payload"] for n in notices(app, "reminder")]
        assert [(p["fraction"], p["deadline"]) for p in payloads[:2]] == [
            (0.5, cn(3, 9).astimezone(UTC).isoformat()),
            (0.8, cn(3, 9).astimezone(UTC).isoformat()),
        ]

    def test_a_reminder_already_sent_is_not_sent_again_after_an_extension(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        assert escalation.sweep(app, cn(1, 21)).reminders == 1  # half of the first 24 h
        ask(app, ref, cn(4, 9), cn(1, 22))
        step(app, ref, "approve_extension", "duban.wang", cn(1, 23))
        assert escalation.sweep(app, cn(3, 21)).reminders == 0  # the half point again: once only
        assert escalation.sweep(app, cn(4, 4, 12)).reminders == 1
        assert [n["payload"]["fraction"] for n in notices(app, "reminder")] == [0.5, 0.8]

    def test_the_new_deadline_must_be_later(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(Invalid, match="must be later than the current deadline"):
            ask(app, ref, cn(2, 9), NOW + hours(1))
        with pytest.raises(Invalid, match="needs --reason, --until"):
            step(app, ref, "request_extension", "yantou.g3", NOW + hours(1))
        assert count(app, extensions) == 0

    def test_one_pending_request_at_a_time(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        ask(app, ref, cn(3, 9), NOW + hours(1))
        with pytest.raises(Conflict, match="already has an extension request waiting"):
            ask(app, ref, cn(4, 9), NOW + hours(2), by="yantou.lead")

    def test_who_may_ask_and_who_may_decide(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(NotPermitted, match=r"caoyuan\.lead may not request_extension"):
            ask(app, ref, cn(3, 9), NOW + hours(1), by="caoyuan.lead")
        ask(app, ref, cn(3, 9), NOW + hours(1), by="yantou.lead")  # a leader above may ask
        with pytest.raises(NotPermitted, match="only a supervisor may"):
            step(app, ref, "approve_extension", "yantou.lead", NOW + hours(2))

    def test_refuse_needs_a_reason_and_leaves_the_deadline(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        ask(app, ref, cn(3, 9), NOW + hours(1))
        with pytest.raises(Invalid, match="needs --reason"):
            step(app, ref, "refuse_extension", "duban.wang", NOW + hours(2))
        step(app, ref, "refuse_extension", "duban.wang", NOW + hours(2), reason="理由不足")
        row = ticket_row(app, ref)
        assert (row.due_at, row.extension_count) == (cn(2, 9), 0)
        with pytest.raises(Conflict, match="no extension request waiting"):
            step(app, ref, "approve_extension", "duban.wang", NOW + hours(3))
        assert [x["status"] for x in views.show(app, ref)["extensions"]] == ["refused"]
        ask(app, ref, cn(2, 18), NOW + hours(4))  # a new request is allowed after a refusal

    def test_a_request_whose_deadline_has_passed_cannot_be_approved(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        ask(app, ref, cn(2, 12), NOW + hours(1))
        with pytest.raises(Invalid, match="has already passed"):
            step(app, ref, "approve_extension", "duban.wang", cn(2, 13))

    def test_a_pending_request_lapses_when_the_stage_ends(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        ask(app, ref, cn(3, 9), NOW + hours(1))
        step(app, ref, "fix", "yantou.g3", NOW + hours(2), note="清运完毕")
        assert [x["status"] for x in views.show(app, ref)["extensions"]] == ["lapsed"]
        with pytest.raises(Conflict, match="no extension request waiting"):
            step(app, ref, "approve_extension", "duban.wang", NOW + hours(3))

    def test_an_extension_after_escalation_keeps_the_supervision(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        escalation.sweep(app, cn(2, 9))
        ask(app, ref, cn(6, 9), cn(2, 10))
        step(app, ref, "approve_extension", "duban.wang", cn(2, 11))
        row = ticket_row(app, ref)
        assert (row.escalation_level, row.due_at, row.next_check_at) == (1, cn(6, 9), cn(6, 9))
        assert escalation.sweep(app, cn(5, 9)).escalations == 0
        assert [r[2] for r in rungs(app, ref)] == [3]
        assert escalation.sweep(app, cn(6, 9)).escalations == 1
        assert [r[2] for r in rungs(app, ref)] == [3, 2]

    def test_through_the_command_line(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with freeze_time(NOW + hours(1)):
            cli(
                app,
                "ticket",
                "request-extension",
                ref,
                "--by",
                "yantou.g3",
                "--reason",
                "等挖机",
                "--until",
                "2026-04-03T09:00:00+08:00",
            )
            shown = cli(app, "ticket", "approve-extension", ref, "--by", "duban.wang", "--json")
        assert shown["due_at"] == "2026-04-03T09:00:00+08:00"
        assert shown["extensions"][0]["status"] == "approved"


class TestDeferral:
    def test_the_clock_stops_and_restarts_with_the_time_that_was_left(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)  # 24 h of natural time
        step(
            app,
            ref,
            "defer",
            "duban.wang",
            NOW + hours(6),
            reason="需要专项资金",
            review_on=cn(20, 9),
        )
        row = ticket_row(app, ref)
        # No deadline; the sweep looks again only on the review date (to remind the supervisor).
        assert (row.state, row.due_at, row.next_check_at, row.stage) == (
            "deferred",
            None,
            cn(20, 9),
            None,
        )
        shown = views.show(app, ref)
        assert shown["deferred"] == {
            "at": "2026-04-01T15:00:00+08:00",
            "by": "duban.wang",
            "reason": "需要专项资金",
            "review_on": "2026-04-20T09:00:00+08:00",
            "remaining_hours": 18.0,
            "resumed_at": None,
            "resumed_by": None,
        }
        sweep = escalation.sweep(app, cn(15, 9))  # long past the old deadline: nothing happens
        assert (sweep.tickets_checked, sweep.reminders, sweep.escalations) == (0, 0, 0)
        assert escalation.overdue(app, cn(15, 9)) == []
        step(app, ref, "resume", "duban.wang", cn(15, 9))
        row = ticket_row(app, ref)
        assert (row.state, row.stage, row.stage_no, row.escalation_level) == (
            "assigned",
            "fix",
            2,
            0,
        )
        assert row.due_at == cn(15, 9) + hours(18)
        shown = views.show(app, ref)
        assert shown["deferred"] is None
        assert shown["deferrals"][0]["resumed_by"] == "duban.wang"
        # 6 of the 24 hours were used before the deferral: half the stage time is reached 6 h
        # after resuming, 80% after 13.2 h; the days parked count for nothing
        assert row.next_check_at == cn(15, 9) + hours(6)
        assert escalation.sweep(app, cn(15, 15)).reminders == 1
        assert escalation.sweep(app, cn(15, 22, 12)).reminders == 1
        assert escalation.sweep(app, cn(16, 2, 59)).escalations == 0
        assert escalation.sweep(app, cn(16, 3)).escalations == 1

    def test_working_time_left_is_counted_in_working_time(self, app: App) -> None:
        ref = service.submit(app, SHED, NOW)  # 5 working days: due Thursday 9 April 09:00
        step(app, ref, "defer", "duban.wang", cn(2, 10), reason="待评估", review_on=cn(10, 9))
        with app.engine.connect() as conn:
            left = conn.execute(select(deferrals.c.remaining_seconds)).scalar_one()
        # Thursday 6 h, Friday 7.5 h, (Qingming), Tuesday 7.5 h, Wednesday 7.5 h, Thursday 0.5 h
        assert left == 29 * 3600
        step(app, ref, "resume", "duban.wang", cn(10, 16))
        # Friday 16:00-17:30, Monday, Tuesday, Wednesday (22.5 h), Thursday 16 April 5 h
        assert ticket_row(app, ref).due_at == cn(16, 15)

    def test_deferring_an_escalated_ticket_closes_its_ladder(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        escalation.sweep(app, cn(3, 9))  # two rungs; the next one due Tuesday 7 April 09:00
        step(app, ref, "defer", "duban.wang", cn(3, 12), reason="需预算", review_on=cn(30, 9))
        with app.engine.connect() as conn:
            closed = conn.execute(select(escalations.c.closed_at)).scalars().all()
            left = conn.execute(select(deferrals.c.remaining_seconds)).scalar_one()
        assert closed == [cn(3, 12), cn(3, 12)]
        # The deadline (2 April 09:00) had passed: escalation does not move it, so no time was
        # left to keep; the next rung's time is not the fixer's time.
        assert left == 0.0
        step(app, ref, "resume", "duban.wang", cn(20, 9))
        row = ticket_row(app, ref)
        assert (row.escalation_level, row.supervisor_id) == (0, None)
        assert row.due_at == row.next_escalation_at == cn(20, 9)

    def test_who_may_defer_and_when(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(NotPermitted, match="only a supervisor may"):
            step(app, ref, "defer", "yantou.lead", NOW, reason="x", review_on=cn(9, 9))
        with pytest.raises(Invalid, match="needs --reason, --review-on"):
            step(app, ref, "defer", "duban.wang", NOW)
        with pytest.raises(Invalid, match="must be in the future"):
            step(app, ref, "defer", "duban.wang", NOW + hours(1), reason="x", review_on=NOW)
        with pytest.raises(Conflict, match="may run only from: deferred"):
            step(app, ref, "resume", "duban.wang", NOW + hours(1))
        step(app, ref, "fix", "yantou.g3", NOW + hours(1), note="done")
        with pytest.raises(Conflict, match="may run only from: assigned"):
            step(app, ref, "defer", "duban.wang", NOW + hours(2), reason="x", review_on=cn(9, 9))
        assert count(app, deferrals) == 0

    def test_a_deferred_ticket_cannot_ask_for_an_extension(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        step(app, ref, "defer", "duban.wang", NOW + hours(1), reason="x", review_on=cn(9, 9))
        with pytest.raises(Conflict, match="may run only from"):
            ask(app, ref, cn(9, 9), NOW + hours(2))
