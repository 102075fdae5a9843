"""Reminders, the escalation ladder, catch-up after downtime and the overdue view.

Dates: 2026-04-01 is a Wednesday; 4-6 April is the Qingming holiday (Saturday to Monday), so a
deadline counted in working days from Friday 3 April lands on Tuesday 7 April.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import event, select, text, update

from closeloop import escalation, service, views
from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.calendar import Limit
from closeloop.config import load_settings
from closeloop.grid import Grid, set_leader
from closeloop.models import escalations, notifications, tickets
from closeloop.service import NewProblem
from closeloop.tickets import StepInput
from tests.conftest import CONFIG, NOW
from tests.factories import cn, count, hours
from tests.sweep_helpers import cli, notices, rungs, ticket_row

PILE = NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="河边垃圾堆")
SHED = NewProblem(grid="JS-A1-V01-G03", category="illegal_construction", title="违章铁皮棚")
PARKING = NewProblem(grid="JS-A1-V02-G01", category="random_parking", title="乱停车")


def utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def sweep_at(app: App, when: datetime) -> dict[str, int]:
    """`closeloop sweep --json` with the clock frozen at `when` (the command reads the clock)."""
    with freeze_time(when):
        out = cli(app, "sweep", "--json")
    return {k: out[k] for k in ("reminders", "escalations", "tickets_checked")}


class TestReminders:
    def test_natural_limit_reminds_at_half_and_eighty_percent_once_each(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)  # 24 h of natural time: due 2 April 09:00
        assert escalation.sweep(app, NOW + hours(11.9)).reminders == 0
        assert escalation.sweep(app, NOW + hours(12)).reminders == 1
        assert escalation.sweep(app, NOW + hours(12)).reminders == 0
        assert escalation.sweep(app, NOW + hours(19)).reminders == 0
        assert escalation.sweep(app, NOW + hours(19.2)).reminders == 1
        assert escalation.sweep(app, NOW + hours(23.9)).reminders == 0
        sent = notices(app, "reminder")
        due = utc(cn(2, 9)).isoformat()
        assert [(n["to"], n["ref"], n["payload"]) for n in sent] == [
            ("yantou.g3", ref, {"stage_no": 1, "fraction": 0.5, "deadline": due}),
            ("yantou.g3", ref, {"stage_no": 1, "fraction": 0.8, "deadline": due}),
        ]
        assert ticket_row(app, ref).next_check_at == utc(cn(2, 9))

    def test_working_time_reminders_wait_over_a_weekend_and_a_holiday(self, app: App) -> None:
        # 5 working days from Wednesday 09:00: half is Friday 14:15, 80% is Wednesday 8 April
        # 09:00 (Saturday to Monday are the Qingming holiday), the deadline Thursday 9 April 09:00.
        ref = service.submit(app, SHED, NOW)
        assert sweep_at(app, cn(3, 14, 14))["reminders"] == 0
        assert sweep_at(app, cn(3, 14, 15))["reminders"] == 1
        for day in (4, 5, 6):  # the holiday: nothing
            assert sweep_at(app, cn(day, 10)) == {
                "reminders": 0,
                "escalations": 0,
                "tickets_checked": 0,
            }
        assert sweep_at(app, cn(7, 17, 29))["reminders"] == 0
        assert sweep_at(app, cn(8, 8, 59))["reminders"] == 0
        assert sweep_at(app, cn(8, 9))["reminders"] == 1
        fractions = [n["payload"]["fraction"] for n in notices(app, "reminder")]
        assert fractions == [0.5, 0.8]
        assert ticket_row(app, ref).next_check_at == utc(cn(9, 9))

    def test_reminders_wait_for_working_time_at_night(self, app: App) -> None:
        # Submitted Thursday 16:00: one working day runs to Friday 15:30; its half (3.75 h) is
        # at Friday 10:15, not in the night.
        ref = service.submit(
            app, NewProblem(grid="JS-A1-V01-G03", category="other", title="x"), utc(cn(2, 16))
        )
        row = ticket_row(app, ref)
        points = escalation.reminder_points(
            app.deadlines, "other", "fix", row.stage_started_at, row.due_at
        )
        for _, p in points:
            assert app.calendar.is_working_time(p)
        assert escalation.sweep(app, utc(cn(3, 7))).reminders == 0

    def test_a_reminder_overtaken_by_its_deadline_is_not_sent(self, app: App) -> None:
        service.submit(app, PILE, NOW)
        result = escalation.sweep(app, NOW + hours(25))  # the sweep was down all along
        assert (result.reminders, result.escalations) == (0, 1)
        late = notices(app, "reminder")
        assert len(late) == 1 and late[0]["payload"]["late"] is True
        assert late[0]["payload"]["deadline"] == utc(cn(2, 9)).isoformat()


class TestLadder:
    def test_each_rung_across_a_weekend_and_a_holiday(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        assert sweep_at(app, cn(2, 8, 59)) == {
            "reminders": 2,
            "escalations": 0,
            "tickets_checked": 1,
        }
        assert sweep_at(app, cn(2, 9))["escalations"] == 1
        assert sweep_at(app, cn(3, 8, 59))["escalations"] == 0
        assert sweep_at(app, cn(3, 9))["escalations"] == 1
        for day in (4, 5, 6):  # Saturday to Monday: the interval is one working day
            assert sweep_at(app, cn(day, 12))["escalations"] == 0
        assert sweep_at(app, cn(7, 8, 59))["escalations"] == 0
        assert sweep_at(app, cn(7, 9))["escalations"] == 1
        assert sweep_at(app, cn(8, 9))["escalations"] == 1  # the zone again: round 1
        assert rungs(app, ref) == [
            (ref, 1, 3, 0, "JS-A1-V01", "yantou.lead", utc(cn(2, 9))),
            (ref, 1, 2, 0, "JS-A1", "area1.lead", utc(cn(3, 9))),
            (ref, 1, 1, 0, "JS", "zone.lead", utc(cn(7, 9))),
            (ref, 1, 1, 1, "JS", "zone.lead", utc(cn(8, 9))),
        ]
        row = ticket_row(app, ref)
        # The deadline stays the one the fixer missed; the next rung has a time of its own.
        assert (row.escalation_level, row.escalation_round) == (3, 1)
        assert (row.due_at, row.next_escalation_at) == (utc(cn(2, 9)), utc(cn(9, 9)))
        shown = views.show(app, ref)
        assert (shown["supervising_grid"], shown["supervisor"]) == ("JS", "zone.lead")
        assert [(e["level"], e["grid"], e["deadline"], e["at"]) for e in shown["escalations"]] == [
            (3, "JS-A1-V01", "2026-04-02T09:00:00+08:00", "2026-04-02T09:00:00+08:00"),
            (2, "JS-A1", "2026-04-03T09:00:00+08:00", "2026-04-03T09:00:00+08:00"),
            (1, "JS", "2026-04-07T09:00:00+08:00", "2026-04-07T09:00:00+08:00"),
            (1, "JS", "2026-04-08T09:00:00+08:00", "2026-04-08T09:00:00+08:00"),
        ]
        assert shown["escalation_level"] == 3

    def test_supervision_and_late_notices_name_the_rung(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        escalation.sweep(app, utc(cn(2, 9)))
        escalation.sweep(app, utc(cn(3, 9)))
        with app.engine.connect() as conn:
            ids = conn.execute(select(escalations.c.id).order_by(escalations.c.id)).scalars().all()
        supervision = notices(app, "supervision")
        assert [(n["to"], n["ref"], n["payload"]) for n in supervision] == [
            ("yantou.lead", ref, {"escalation_id": ids[0]}),
            ("area1.lead", ref, {"escalation_id": ids[1]}),
        ]
        late = [n for n in notices(app, "reminder") if n["payload"].get("late")]
        assert [
            (n["to"], n["payload"]["deadline"], n["payload"]["escalation_id"]) for n in late
        ] == [
            # late since the deadline the stage missed, whatever rung it is at
            ("yantou.g3", utc(cn(2, 9)).isoformat(), ids[0]),
            ("yantou.g3", utc(cn(2, 9)).isoformat(), ids[1]),
        ]

    def test_a_ticket_of_a_small_grid_starts_one_level_higher(self, app: App) -> None:
        ref = service.submit(
            app, NewProblem(grid="JS-A1-V01", category="random_piling", title="村里"), NOW
        )
        escalation.sweep(app, utc(cn(3, 9)))
        assert [r[2:6] for r in rungs(app, ref)] == [
            (2, 0, "JS-A1", "area1.lead"),
            (1, 0, "JS", "zone.lead"),
        ]

    def test_a_ticket_of_the_zone_repeats_at_the_zone(self, app: App) -> None:
        ref = service.submit(app, NewProblem(grid="JS", category="random_piling", title="z"), NOW)
        escalation.sweep(app, utc(cn(3, 9)))
        assert [r[2:6] for r in rungs(app, ref)] == [
            (1, 1, "JS", "zone.lead"),
            (1, 2, "JS", "zone.lead"),
        ]
        row = ticket_row(app, ref)
        assert (row.escalation_level, row.escalation_round) == (1, 2)

    def test_a_finished_stage_closes_its_rungs_and_the_next_stage_starts_at_the_bottom(
        self, app: App
    ) -> None:
        ref = service.submit(app, PILE, NOW)
        escalation.sweep(app, utc(cn(3, 9)))
        fixed_at = utc(cn(3, 10))
        service.run_step(app, ref, "fix", "yantou.g3", StepInput(note="清运完毕"), fixed_at)
        shown = views.show(app, ref)
        assert [e["closed_at"] for e in shown["escalations"]] == ["2026-04-03T10:00:00+08:00"] * 2
        row = ticket_row(app, ref)
        assert (row.stage, row.stage_no, row.escalation_level, row.supervisor_id) == (
            "verify",
            2,
            0,
            None,
        )
        # verification, 1 working day (7.5 h) from Friday 10:00: 6 h on Friday, the holiday,
        # then 1.5 h on Tuesday 7 April from 08:30
        assert row.due_at == utc(cn(7, 10))
        escalation.sweep(app, utc(cn(7, 10)))
        # The verification is Yantou village's (the grid above the fixer's): its ladder climbs
        # from there, to the work area.
        assert [r[1:5] for r in rungs(app, ref)][-1] == (2, 2, 0, "JS-A1")
        assert count(app, escalations, escalations.c.closed_at.is_(None)) == 1

    def test_reminders_still_in_the_outbox_are_cancelled_when_the_stage_ends(
        self, app: App
    ) -> None:
        ref = service.submit(app, PILE, NOW)
        other = service.submit(app, PILE, NOW)
        escalation.sweep(app, utc(cn(3, 9)))  # reminders and a late reminder for both

        def reminders(r: str) -> list[str]:
            with app.engine.connect() as conn:
                return list(
                    conn.execute(
                        select(notifications.c.status)
                        .join(tickets, tickets.c.id == notifications.c.ticket_id)
                        .where(tickets.c.ref == r, notifications.c.kind == "reminder")
                    ).scalars()
                )

        # two rungs in one sweep: one late reminder for that working day
        assert set(reminders(ref)) == {"pending"} and len(reminders(ref)) >= 1
        service.run_step(app, ref, "fix", "yantou.g3", StepInput(note="清运完毕"), utc(cn(3, 10)))
        assert set(reminders(ref)) == {"cancelled"}
        assert set(reminders(other)) == {"pending"}  # another ticket's stage is still open

    def test_twice_late_or_backwards_writes_each_rung_once(self, app: App) -> None:
        refs = [service.submit(app, PILE, NOW) for _ in range(3)]
        first = escalation.sweep(app, utc(cn(7, 9)))
        assert (first.escalations, first.tickets_checked) == (9, 3)
        before = (count(app, escalations), count(app, notifications))
        again = escalation.sweep(app, utc(cn(7, 9)))
        earlier = escalation.sweep(app, utc(cn(3, 9)))
        assert (again.escalations, again.tickets_checked) == (0, 0)
        assert (earlier.escalations, earlier.tickets_checked) == (0, 0)
        assert (count(app, escalations), count(app, notifications)) == before
        assert {r[0] for r in rungs(app)} == set(refs)

    def test_small_batches_give_the_same_rows(self, app: App) -> None:
        for _ in range(7):
            service.submit(app, PILE, NOW)
        result = escalation.sweep(app, utc(cn(3, 9)), batch=2)
        assert (result.escalations, result.tickets_checked, result.batches) == (14, 7, 4)

    def test_a_ticket_changed_under_its_batch_is_left_for_the_next_sweep(self, app: App) -> None:
        """The batch's compare-and-set finds a ticket whose version moved since the claim: the
        batch is claimed again and compared ticket by ticket, the others climb, that one waits."""
        refs = [service.submit(app, PILE, NOW) for _ in range(3)]
        moved = refs[1]
        claims: list[str] = []

        def move_it(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            # After each claim, just before its first compare-and-set (SQLite reads the claimed
            # rows only as they are fetched, so moving the ticket at the claim is too early).
            if statement.startswith("SELECT") and "tickets.next_check_at <=" in statement:
                claims.append(statement)
            elif statement.startswith("UPDATE tickets SET next_escalation_at") and claims[-1]:
                claims[-1] = ""
                conn.execute(
                    update(tickets)
                    .where(tickets.c.ref == moved)
                    .values(version=tickets.c.version + 1)
                )

        event.listen(app.engine, "before_cursor_execute", move_it)
        try:
            first = escalation.sweep(app, utc(cn(3, 9)), batch=10)
        finally:
            event.remove(app.engine, "before_cursor_execute", move_it)
        assert len(claims) == 2  # the batch, then the batch again ticket by ticket
        assert (first.escalations, first.tickets_checked, first.batches) == (4, 3, 1)
        assert {r[0] for r in rungs(app)} == {refs[0], refs[2]}
        second = escalation.sweep(app, utc(cn(3, 9)), batch=10)
        assert (second.escalations, second.tickets_checked) == (2, 1)
        assert {r[0] for r in rungs(app)} == set(refs)

    def test_the_sweep_reads_the_next_check_index(self, sqlite_app: App) -> None:
        with sqlite_app.engine.connect() as conn:
            compiled = escalation._CLAIM.compile(conn)
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled),
                tuple(compiled.construct_params({"now": NOW, "size": 10}).values()),
            ).all()
        assert any("ix_tickets_next_check" in str(step) for step in plan), plan


class TestCatchUp:
    def _submit_all(self, app: App) -> list[str]:
        refs = [service.submit(app, PILE, NOW), service.submit(app, SHED, NOW)]
        refs.append(service.submit(app, PARKING, NOW + hours(1)))
        refs.append(service.submit(app, PILE, NOW + hours(30)))
        return refs

    def test_a_three_day_outage_catches_up_as_if_never_down(
        self, app: App, sqlite_template: Path, tmp_path: Path
    ) -> None:
        end = NOW + timedelta(days=3, hours=10)
        # The reference: another database with a scheduler that never stopped (every 15 min).
        path = tmp_path / "always-on.db"
        path.write_bytes(sqlite_template.read_bytes())
        always = bootstrap(load_settings(CONFIG, f"sqlite:///{path}"))
        refs = self._submit_all(always)
        assert refs == self._submit_all(app)
        t = NOW
        while t <= end:
            escalation.sweep(always, t)
            t += timedelta(minutes=15)
        escalation.sweep(app, NOW + hours(0.5))
        caught = escalation.sweep(app, end)  # the first sweep after three days down
        assert caught.escalations == len(rungs(always))
        assert rungs(app) == rungs(always)
        with app.engine.connect() as conn:
            ats = set(conn.execute(select(escalations.c.at)).scalars())
            # the rungs of one ticket were written in deadline order
            order = conn.execute(
                select(escalations.c.ticket_id, escalations.c.deadline).order_by(escalations.c.id)
            ).all()
        assert ats == {end}
        for ref_id in {tid for tid, _ in order}:
            deadlines = [d for tid, d in order if tid == ref_id]
            assert deadlines == sorted(deadlines)
        fields = (
            "due_at",
            "next_escalation_at",
            "next_check_at",
            "escalation_level",
            "escalation_round",
            "stage_no",
        )
        for ref in refs:
            a, b = ticket_row(app, ref), ticket_row(always, ref)
            assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields], ref
        # Reminders the outage carried past their deadline are not sent late; the others are.
        # (Late reminders are one per ticket and working day: the catch-up sends one per late
        # ticket, on the day it finds them late.)
        sent = {n["key"] for n in notices(app, "reminder") if ":late:" not in n["key"]}
        sent_always = {n["key"] for n in notices(always, "reminder") if ":late:" not in n["key"]}
        assert sent < sent_always

        def late_refs(a: App) -> set[str]:
            return {n["ref"] for n in notices(a, "reminder") if n["payload"].get("late")}

        assert late_refs(app) == late_refs(always) != set()
        always.engine.dispose()

    def test_the_cli_sweep_at_a_given_time(self, app: App) -> None:
        service.submit(app, PILE, NOW)
        out = cli(app, "sweep", "--now", "2026-04-07T09:00:00+08:00", "--json")
        assert {k: out[k] for k in ("reminders", "escalations", "tickets_checked")} == {
            "reminders": 0,
            "escalations": 3,
            "tickets_checked": 1,
        }
        plain = cli(app, "sweep", "--now", "2026-04-07T09:00:00+08:00")
        assert "0 escalations" in plain


class TestPureRules:
    @pytest.mark.parametrize(
        "start",
        [cn(1, 9), cn(3, 16, 45), cn(3, 11, 59), cn(8, 13, 30), cn(30, 17), cn(7, 8, 30)],
    )
    @pytest.mark.parametrize("within", ["90m", "7.5h", "1d", "5d"])
    def test_retreat_mirrors_add(self, app: App, start: datetime, within: str) -> None:
        cal = app.calendar
        limit = Limit.parse(within, "working")
        start = cal.next_working_moment(start)
        due = cal.add(start, limit)
        assert cal.next_working_moment(escalation.retreat(cal, due, cal.duration(limit))) == start

    @pytest.mark.parametrize("category", ["illegal_construction", "random_piling", "road"])
    def test_reminders_from_the_deadline_match_the_stage_plan(
        self, app: App, category: str
    ) -> None:
        d = app.deadlines
        start = utc(cn(2, 15, 20))
        forward = d.reminder_times(category, "fix", start)
        # a deadline one second later takes the backward path; the points move by that second
        later = escalation.reminder_points(
            d, category, "fix", start, d.due(category, "fix", start) + timedelta(seconds=1)
        )
        for f, p in zip(forward, later, strict=True):
            assert abs((p[1] - f).total_seconds()) <= 1 or not app.calendar.is_working_time(f)

    def test_a_grid_without_leader_is_supervised_by_the_nearest_leader_above(
        self, app: App
    ) -> None:
        zone = Grid(1, "Z", "zone", 1, "zone", None, "/1/", 100)
        medium = Grid(2, "M", "medium", 2, "area", 1, "/1/2/", None)  # no leader
        small = Grid(3, "S", "small", 3, "village", 2, "/1/2/3/", 300)
        micro = Grid(4, "U", "micro", 4, "group", 3, "/1/2/3/4/", 400)
        clock = escalation.TicketClock(
            "random_parking", "fix", NOW, NOW + hours(2), NOW + hours(2), 0, 0, None, None
        )
        p = escalation.plan(app.deadlines, clock, [zone, medium, small, micro], NOW + hours(10.5))
        assert [(r.grid.code, r.level, r.round, r.supervisor_id) for r in p.rungs] == [
            ("S", 3, 0, 300),
            ("M", 2, 0, 100),
            ("Z", 1, 0, 100),
        ]
        assert [r.failed_grid.code for r in p.rungs] == ["U", "S", "M"]
        assert p.next_escalation_at == NOW + hours(14) and p.next_check_at == NOW + hours(14)
        assert (p.escalation_level, p.supervising_grid_id, p.supervisor_id) == (3, 1, 100)


class TestOverdue:
    def test_the_supervisors_view(self, app: App) -> None:
        pile = service.submit(app, PILE, NOW)
        parking = service.submit(app, PARKING, NOW)
        shed = service.submit(app, SHED, NOW)
        parked = service.submit(app, PILE, NOW)
        extended = service.submit(app, PILE, NOW)
        service.run_step(
            app,
            extended,
            "request_extension",
            "yantou.g3",
            StepInput(reason="等挖机", until=utc(cn(2, 20))),
            NOW + hours(1),
        )
        service.run_step(
            app, extended, "approve_extension", "duban.wang", StepInput(), NOW + hours(2)
        )
        service.run_step(
            app,
            parked,
            "defer",
            "duban.wang",
            StepInput(reason="需要预算", review_on=utc(cn(20, 9))),
            NOW + hours(3),
        )
        escalation.sweep(app, utc(cn(2, 12)))
        with freeze_time(cn(2, 21)):
            items = cli(app, "overdue", "--json")
            text_out = cli(app, "overdue")
        assert [i["ref"] for i in items] == [parking, pile, extended]
        first = items[0]
        assert first["overdue_hours"] == pytest.approx(34.0)  # due 1 April 11:00
        assert (first["escalation_level"], first["supervising_grid"], first["supervisor"]) == (
            3,
            "JS",
            "zone.lead",
        )
        assert (first["assignee"], first["responsible_grid"], first["grid"]) == (
            "caoyuan.g1",
            "JS-A1-V02-G01",
            "JS-A1-V02-G01",
        )
        assert (first["acting"], first["acting_grid"]) == ("caoyuan.g1", "JS-A1-V02-G01")
        assert items[1]["supervising_level"] == 3
        ext = items[2]
        assert (ext["due_at"], ext["extended"], ext["escalation_level"]) == (
            "2026-04-02T20:00:00+08:00",
            True,
            0,
        )
        assert shed not in text_out and "3 overdue" in text_out
        with freeze_time(cn(2, 21)):
            assert [i["ref"] for i in cli(app, "overdue", "--grid", "JS-A1-V01", "--json")] == [
                pile,
                extended,
            ]
            assert cli(app, "overdue", "--grid", "JS-A2", "--json") == []
            assert [i["ref"] for i in cli(app, "overdue", "--level", "1", "--json")] == [pile]
            assert [i["ref"] for i in cli(app, "overdue", "--level", "0", "--json")] == [extended]

    def test_a_late_check_names_the_verifier_as_who_must_act(self, app: App) -> None:
        """A fix waiting too long for its check is the village leader's to act on (as stored
        when the check started), not the fixer's; `assignee` stays the ticket's."""
        ref = service.submit(app, PILE, NOW)
        service.run_step(app, ref, "fix", "yantou.g3", StepInput(note="已清理"), NOW + hours(1))
        # verification: 1 working day, due 2 April 10:00
        items = escalation.overdue(app, utc(cn(2, 11)))
        assert [i["ref"] for i in items] == [ref]
        item = items[0]
        assert (item["acting_grid"], item["acting"], item["acting_name"]) == (
            "JS-A1-V01",
            "yantou.lead",
            "陈霞桂",
        )
        assert (item["assignee"], item["responsible_grid"]) == ("yantou.g3", "JS-A1-V01-G03")
        with freeze_time(cn(2, 11)):
            assert "责任 JS-A1-V01/yantou.lead" in cli(app, "overdue")
        # the village's new leader takes over the check waiting there (the sweep reminds them)
        with app.engine.begin() as conn:
            set_leader(conn, "JS-A1-V01", "caoyuan.lead")
        item = escalation.overdue(app, utc(cn(2, 11)))[0]
        assert (item["acting_grid"], item["acting"]) == ("JS-A1-V01", "caoyuan.lead")

    def test_an_unknown_grid_is_a_clear_error(self, app: App) -> None:
        from closeloop.tickets import Invalid

        with pytest.raises(Invalid, match="unknown grid 'NOPE'"):
            escalation.overdue(app, NOW, grid="NOPE")


def test_the_claim_has_no_outer_join_for_update(app: App) -> None:
    """PostgreSQL refuses FOR UPDATE on the nullable side of an outer join; the claim reads one
    table and locks only it."""
    with app.engine.connect() as conn:
        claim = escalation._CLAIM_PG if conn.dialect.name == "postgresql" else escalation._CLAIM
        sql = str(claim.compile(conn)).upper()
        conn.execute(text("SELECT 1"))
    assert "JOIN" not in sql
    if app.engine.dialect.name == "postgresql":
        assert "FOR UPDATE OF TICKETS SKIP LOCKED" in sql
    assert tickets.name in sql.lower()
