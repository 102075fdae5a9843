"""Lateness that never disappears and history that cannot be rewritten (issue 9, parts 1-2).

The example of the issue: a random-parking ticket (2 h to fix, a rung every 4 h) reported on
Tuesday 2026-04-07 09:00 on Caoyuan's micro grid JS-A1-V02-G01 (leader caoyuan.g1), swept at
16:00. It is late since 11:00, wherever it is read.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from openpyxl import load_workbook
from sqlalchemy import func, select

from closeloop import escalation, service, views
from closeloop.app import App
from closeloop.models import escalations, metadata, stages, ticket_events, tickets
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from closeloop.service import NewProblem
from closeloop.tickets import Conflict, Invalid, NotPermitted, StepInput
from tests.factories import ZONE, cn
from tests.sweep_helpers import cli
from tests.webtools import Web, browser

PARKING = NewProblem(grid="JS-A1-V02-G01", category="random_parking", title="乱停车")
PILE = NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="河边垃圾堆")


def _late_parking(app: App) -> str:
    ref = service.submit(app, PARKING, cn(7, 9))
    escalation.sweep(app, cn(7, 16))  # rungs at 11:00 and 15:00; the next at 19:00
    return ref


# --------------------------------------------------------------------------- part 1


class TestLateStaysLate:
    def test_the_cli_lists_say_late_since_the_deadline(self, app: App) -> None:
        ref = _late_parking(app)
        pile = service.submit(app, PILE, cn(7, 15, 30))  # not late: due tomorrow
        with freeze_time(cn(7, 16)):
            shown = cli(app, "ticket", "show", ref, "--json")
            inbox = cli(app, "inbox", "caoyuan.g1", "--json")
            listed = {t["ref"]: t for t in cli(app, "tickets", "--json")}
            overdue = cli(app, "overdue", "--json")
        for item in (shown, inbox[0], listed[ref], overdue[0]):
            assert item["ref"] == ref
            assert item["due_at"] == "2026-04-07T11:00:00+08:00"  # not moved by the rungs
            assert item["next_escalation_at"] == "2026-04-07T19:00:00+08:00"
            assert (item["overdue"], item["overdue_hours"]) == (True, 5.0)
        assert (listed[pile]["overdue"], listed[pile]["overdue_hours"]) == (False, 0.0)
        assert shown["escalation_level"] == 2 and shown["supervising_level"] == 2
        assert [(e["stage"], e["failed_grid"]) for e in shown["escalations"]] == [
            ("fix", "JS-A1-V02-G01"),
            ("fix", "JS-A1-V02"),
        ]

    def test_the_api_and_the_inbox_page_show_it_late_first(self, app: App, web: Web) -> None:
        soon = service.submit(app, PARKING, cn(7, 15, 30))  # due 17:30: time left at 16:00
        ref = _late_parking(app)
        web.clock.set(cn(7, 16).astimezone(UTC))
        items = web.get("/api/inbox", "caoyuan.g1").json()["items"]
        assert [i["ref"] for i in items] == [ref, soon]  # the late one first
        assert (items[0]["overdue"], items[0]["overdue_hours"]) == (True, 5.0)
        assert items[0]["due_at"].startswith("2026-04-07T11:00:00")
        assert items[0]["next_escalation_at"].startswith("2026-04-07T19:00:00")
        assert items[0]["seconds_left"] == -5 * 3600
        assert (items[1]["overdue"], items[1]["overdue_hours"]) == (False, 0.0)
        detail = web.get(f"/api/tickets/{ref}", "caoyuan.g1").json()
        assert (detail["overdue"], detail["overdue_hours"], detail["escalation_level"]) == (
            True,
            5.0,
            2,
        )
        page = browser(web, "caoyuan.g1").get("/inbox").text
        late_card = page[page.index(ref) - 800 : page.index(ref)]
        assert "超时 5小时" in page and "剩 1小时30分" in page
        assert page.index("超时 5小时") < page.index("剩 1小时30分")  # late first
        assert "剩" not in late_card.split("<li>")[-1]
        assert "督办（" in page  # with its level of supervision

    def test_extension_and_resume_move_the_deadline_escalation_does_not(self, app: App) -> None:
        ref = _late_parking(app)
        service.run_step(
            app,
            ref,
            "request_extension",
            "caoyuan.g1",
            StepInput(reason="车主联系不上", until=cn(8, 12)),
            cn(7, 16, 5),
        )
        service.run_step(app, ref, "approve_extension", "duban.wang", StepInput(), cn(7, 16, 10))
        shown = views.show(app, ref, cn(7, 17))
        assert shown["due_at"] == shown["next_escalation_at"] == "2026-04-08T12:00:00+08:00"
        assert (shown["overdue"], shown["escalation_level"]) == (False, 2)  # the rungs stay
        escalation.sweep(app, cn(8, 12))
        later = views.show(app, ref, cn(8, 13))
        assert later["due_at"] == "2026-04-08T12:00:00+08:00"
        assert (later["overdue"], later["overdue_hours"]) == (True, 1.0)
        assert later["next_escalation_at"] == "2026-04-08T16:00:00+08:00"
        with app.engine.connect() as conn:
            rows = conn.execute(select(stages).order_by(stages.c.stage_no)).all()
        # the stage instance keeps the deadline as set when it started; the extension is an event
        assert [(r.stage, r.started_by, r.due_at) for r in rows] == [
            ("fix", "submit", cn(7, 11).astimezone(UTC))
        ]


def _week_with_escalations(app: App) -> tuple[str, str]:
    metadata.create_all(app.engine)
    late = service.submit(app, PILE, cn(1, 9))  # 24 h: due Thu 2 Apr 09:00
    fixed = service.submit(app, PILE, cn(1, 10))
    escalation.sweep(app, cn(3, 10))  # two rungs; the next one on Tue 7 Apr 09:00
    service.run_step(app, fixed, "fix", "yantou.g3", StepInput(note="已清理"), cn(3, 11))
    return late, fixed


class TestWeeklyReportGolden:
    """W14 (30 Mar - 5 Apr): an escalated ticket still open at the end of the week is overdue,
    with the deadline it missed (2 Apr 09:00), not the next rung's time (7 Apr 09:00)."""

    def test_every_format_lists_the_escalated_ticket_with_its_real_deadline(self, app: App) -> None:
        late, fixed = _week_with_escalations(app)
        weekly = build_weekly(app, now=cn(13, 9), week="2026-W14")
        assert weekly.zone.overdue_open == 1
        assert [(o.ref, o.due_at, o.escalation_level) for o in weekly.overdue] == [
            (late, cn(2, 9).astimezone(UTC), 2)
        ]
        wf = app.workflow
        data = json.loads(render_weekly(weekly, "json", locale="zh_CN", workflow=wf))
        assert data["zone"]["overdue_open"] == 1
        assert data["overdue"] == [
            {
                "ref": late,
                "grid": "JS-A1-V01-G03",
                "due_at": "2026-04-02T01:00:00+00:00",
                "late_hours": 87.0,  # 2 Apr 09:00 to 6 Apr 00:00
                "escalation_level": 2,
                "supervising_grid": "JS-A1",
                # the same people the page and the handout name, below
                "responsible": {
                    "grid": "JS-A1-V01-G03",
                    "grid_name": "堰头村第3户组",
                    "name": "王霞",
                    "phone": "13800000006",
                },
                "supervising": {
                    "grid": "JS-A1",
                    "grid_name": "第一农村工作片",
                    "name": "楼涛",
                    "phone": "13800000002",
                },
            }
        ]
        html = render_weekly(weekly, "html", locale="zh_CN", workflow=wf).decode()
        md = render_weekly(weekly, "md", locale="zh_CN", workflow=wf).decode()
        end = html.index('<section id="hotspots">')
        sections = {
            "html": html[html.index("超期未结案件（最久的）") : end],
            "md": md[md.index("### 四、超期未结案件") : md.index("### 五、")],
        }
        for section in sections.values():
            assert late in section and fixed not in section
            assert "04-02 09:00" in section and "3天15小时" in section  # late since the deadline
            assert "04-07" not in section  # the next rung is not a deadline
        assert '<td class="n">2</td>' in sections["html"]  # two rungs of supervision
        assert "超期未结：1" in md
        book = load_workbook(io.BytesIO(render_weekly(weekly, "xlsx", locale="zh_CN", workflow=wf)))
        # One sheet per section: its heading in A1, the table's header in row 2.
        rows = list(book["四、超期未结案件（最久的）"].iter_rows(values_only=True))
        assert rows[0][0] == "四、超期未结案件（最久的）"
        assert rows[2:] == [
            (
                late,
                "河边垃圾堆",
                "乱堆乱放",
                "堰头村第3户组",
                "2026-04-02 09:00",
                87,
                "堰头村第3户组 王霞 13800000006",
                "第一农村工作片 楼涛 13800000002",
                2,
            )
        ]


# --------------------------------------------------------------------------- part 2


def _facts(app: App) -> tuple[int, int, int]:
    with app.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (ticket_events, escalations, stages)
        )


class TestHistoryRunsForward:
    def test_a_fix_dated_before_an_escalation_is_refused_for_everyone(self, app: App) -> None:
        ref = _late_parking(app)
        before = _facts(app)
        for who in ("caoyuan.g1", "caoyuan.lead", "duban.wang"):
            with pytest.raises(Invalid, match=r"earliest allowed time .*2026-04-07T16:00:00"):
                service.run_step(
                    app, ref, "fix", who, StepInput(note="早修好了"), cn(7, 17), at=cn(7, 10, 50)
                )
        assert _facts(app) == before
        row = views.show(app, ref)
        assert row["state"] == "assigned" and row["escalation_level"] == 2
        assert all(e["closed_at"] is None for e in row["escalations"])

    def test_the_cli_says_error_and_exits_2(self, app: App) -> None:
        import subprocess
        import sys

        from tests.conftest import CONFIG

        ref = _late_parking(app)
        before = _facts(app)
        result = subprocess.run(
            [
                *(sys.executable, "-m", "closeloop", "--config", str(CONFIG)),
                *("--db", app.settings.database_url, "ticket", "fix", ref, "--by", "caoyuan.g1"),
                *("--note", "x", "--at", "2026-04-07T10:50:00+08:00"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error:") and "2026-04-07T16:00:00+08:00" in result.stderr
        assert _facts(app) == before
        # The operator's CLI may date a step far back, as long as it is after the latest fact.
        with freeze_time(cn(9, 17)):
            cli(app, "ticket", "fix", ref, "--by", "caoyuan.g1", "--note", "x")
        events = views.show(app, ref)["events"]
        assert events[-1]["step"] == "fix"

    def test_the_cli_back_fills_past_the_web_limit(self, app: App) -> None:
        ref = _late_parking(app)
        with freeze_time(cn(9, 17)):
            cli(app, "ticket", "fix", ref, "--by", "caoyuan.g1", "--note", "x")
        ref2 = _late_parking(app)
        with freeze_time(cn(9, 17)):
            cli(
                app,
                "ticket",
                "fix",
                ref2,
                "--by",
                "caoyuan.g1",
                "--note",
                "x",
                "--at",
                "2026-04-07T16:30:00+08:00",
            )
        events = views.show(app, ref2)["events"]
        assert (events[-1]["at"], events[-1]["recorded_at"]) == (
            "2026-04-07T16:30:00+08:00",
            "2026-04-09T17:00:00+08:00",
        )

    def test_the_api_refuses_before_the_latest_fact_and_bounds_back_filling(
        self, app: App, web: Web
    ) -> None:
        ref = _late_parking(app)
        web.clock.set(cn(7, 22).astimezone(UTC))
        before = _facts(app)
        early = web.step(ref, "fix", "caoyuan.g1", note="x", at="2026-04-07T10:50:00+08:00")
        assert early.status_code in (409, 422), early.text
        assert "2026-04-07T16:00:00+08:00" in early.text
        # After the latest fact, but more than [loop] backfill_limit (2 h) before 22:00
        leader = web.step(ref, "fix", "caoyuan.g1", note="x", at="2026-04-07T17:00:00+08:00")
        assert leader.status_code == 403, leader.text
        assert "2026-04-07T20:00" in leader.text
        assert _facts(app) == before
        within = web.step(ref, "fix", "caoyuan.g1", note="x", at="2026-04-07T20:30:00+08:00")
        assert within.status_code == 200, within.text
        events = within.json()["ticket"]["events"]
        assert events[-1]["at"].startswith("2026-04-07T20:30")
        assert events[-1]["recorded_at"].startswith("2026-04-07T22:00")
        # A supervisor may date the verification further back, with a reason only.
        no_reason = web.step(ref, "verify", "duban.wang", at="2026-04-07T20:31:00+08:00")
        assert no_reason.status_code == 200  # within 2 h: no reason needed
        web.clock.set(cn(8, 12).astimezone(UTC))
        bare = web.step(ref, "close", "duban.wang", at="2026-04-07T21:00:00+08:00")
        assert bare.status_code == 422 and "reason" in bare.text
        ok = web.step(
            ref, "close", "duban.wang", at="2026-04-07T21:00:00+08:00", note="现场已核实，补录"
        )
        assert ok.status_code == 200, ok.text
        last = ok.json()["ticket"]["events"][-1]
        assert last["data"]["backfill_reason"] == "现场已核实，补录"

    def test_the_ticket_page_shows_both_times(self, app: App, web: Web) -> None:
        ref = service.submit(app, PILE, cn(7, 9))
        service.run_step(app, ref, "fix", "yantou.g3", StepInput(note="x"), cn(7, 15), at=cn(7, 14))
        web.clock.set(cn(7, 16).astimezone(UTC))
        page = browser(web, "yantou.g3").get(f"/tickets/{ref}").text
        assert "15:00 录入" in page


# --------------------------------------------------------------------------- the property


def _check_invariants(app: App, seen: dict[int, Any]) -> None:
    with app.engine.connect() as conn:
        rows = conn.execute(select(escalations).order_by(escalations.c.id)).all()
        for r in rows:
            assert r.closed_at is None or r.closed_at >= r.at, r
            if r.id in seen:
                old = seen[r.id]
                # never edited, except to record closed_at once
                assert {**r._mapping, "closed_at": None} == {**old._mapping, "closed_at": None}
                assert old.closed_at is None or old.closed_at == r.closed_at
            seen[r.id] = r
        for tid in conn.execute(select(tickets.c.id)).scalars():
            ats = (
                conn.execute(
                    select(ticket_events.c.at)
                    .where(ticket_events.c.ticket_id == tid)
                    .order_by(ticket_events.c.id)
                )
                .scalars()
                .all()
            )
            assert ats == sorted(ats)
        for s in conn.execute(select(stages)):
            assert s.ended_at is None or s.ended_at >= s.started_at
        # due_at is the current stage's stored deadline (no extensions here): never moved
        for t in conn.execute(select(tickets)):
            if t.stage is not None:
                due = conn.execute(
                    select(stages.c.due_at).where(
                        stages.c.ticket_id == t.id, stages.c.stage_no == t.stage_no
                    )
                ).scalar_one()
                assert t.due_at == due


STEP_BY = {
    "fix": "yantou.g3",
    "verify": "yantou.lead",
    "reject": "yantou.lead",
    "close": "yantou.lead",
    "reopen": "duban.wang",
}


def test_random_steps_with_random_times_keep_history_append_only(app: App) -> None:
    class History(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.now = cn(1, 9)
            self.ref = service.submit(app, PILE, self.now)
            self.seen: dict[int, Any] = {}

        @rule(minutes=st.integers(0, 900))
        def wait_and_sweep(self, minutes: int) -> None:
            self.now += timedelta(minutes=minutes)
            escalation.sweep(app, self.now)

        @rule(
            step=st.sampled_from(sorted(STEP_BY)),
            back=st.one_of(st.just(0), st.integers(0, 120), st.integers(0, 2000)),
            minutes=st.integers(0, 300),
        )
        def act(self, step: str, back: int, minutes: int) -> None:
            self.now += timedelta(minutes=minutes)
            at = self.now - timedelta(minutes=back)
            with app.engine.connect() as conn:
                t = service.get_ticket(conn, self.ref)
                latest = service.latest_fact(conn, t)
            before = _facts(app)
            given = StepInput(note="说明", reason="原因")
            try:
                service.run_step(app, self.ref, step, STEP_BY[step], given, self.now, at=at)
            except service.BeforeLatestFact as exc:
                assert at < latest
                assert latest.astimezone(ZONE).isoformat(timespec="seconds") in str(exc)
                assert _facts(app) == before
                return
            except (Conflict, NotPermitted, Invalid):
                assert _facts(app) == before
                return
            assert at >= latest

        @invariant()
        def append_only(self) -> None:
            _check_invariants(app, self.seen)

    History.TestCase.settings = settings(
        max_examples=12,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    History.TestCase().runTest()
