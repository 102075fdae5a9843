"""The rules of the loop at the service level, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from closeloop import service, views
from closeloop.app import App
from closeloop.models import notifications, ticket_events, tickets
from closeloop.service import NewProblem
from closeloop.tickets import Conflict, Invalid, NotFound, NotPermitted, StepInput
from tests.conftest import NOW
from tests.factories import count, minutes, step

PILE = NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="河边垃圾堆")


def events_of(app: App, ref: str) -> list[tuple[str, str | None, str]]:
    return [(e["step"], e["from"], e["to"]) for e in views.show(app, ref)["events"]]


class TestSubmit:
    def test_assigned_at_once_to_the_grid_leader(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        t = views.show(app, ref)
        assert ref == "EP-2026-000001"
        assert (t["state"], t["assignee"], t["responsible_grid"]) == (
            "assigned",
            "yantou.g3",
            "JS-A1-V01-G03",
        )
        # random piling: 24 h of natural time to fix
        assert t["due_at"] == "2026-04-02T09:00:00+08:00"
        assert events_of(app, ref) == [("submit", "reported", "assigned")]
        with app.engine.connect() as conn:
            kinds = conn.execute(select(notifications.c.kind, notifications.c.channel)).all()
        assert kinds == [("assignment", "file")]

    def test_working_time_deadline(self, app: App) -> None:
        ref = service.submit(
            app, NewProblem(grid="JS-A1-V01", category="illegal_construction", title="棚"), NOW
        )
        # 5 working days = 37.5 working hours from Wednesday 09:00. Wed 1 gives 7 h, Thu 2 7.5,
        # Fri 3 7.5 (22 h); Apr 4-6 is the Qingming holiday; Tue 7 (29.5 h), Wed 8 (37 h); the
        # last half hour is Thu 9 08:30-09:00.
        assert views.show(app, ref)["due_at"] == "2026-04-09T09:00:00+08:00"

    def test_refs_count_per_year(self, app: App) -> None:
        refs = [service.submit(app, PILE, NOW) for _ in range(3)]
        assert refs == ["EP-2026-000001", "EP-2026-000002", "EP-2026-000003"]

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"grid": "NOPE"}, "unknown grid 'NOPE'"),
            ({"category": "noise"}, "unknown category 'noise'"),
            ({"title": "  "}, "a title is needed"),
            ({"lat": 30.0}, "give both --lat and --lon"),
            ({"lat": 91.0, "lon": 120.0}, "--lat must be between"),
        ],
    )
    def test_bad_input_writes_nothing(self, app: App, change: dict, message: str) -> None:
        from dataclasses import replace

        with pytest.raises(Invalid, match=message):
            service.submit(app, replace(PILE, **change), NOW)
        assert count(app, tickets) == 0
        assert count(app, ticket_events) == 0

    def test_back_filled_time_cannot_be_in_the_future(self, app: App) -> None:
        with pytest.raises(Invalid, match="in the future"):
            service.submit(app, PILE, NOW, at=NOW + timedelta(days=1))

    def test_recurrence_links_to_the_closed_ticket(self, app: App) -> None:
        first = service.submit(app, PILE, NOW)
        step(app, first, "fix", "yantou.g3", NOW + minutes(60), note="清理完毕")
        step(app, first, "verify", "yantou.lead", NOW + minutes(90))
        step(app, first, "close", "yantou.lead", NOW + minutes(100))
        again = service.submit(app, PILE, NOW + timedelta(days=10))
        other_grid = service.submit(
            app,
            NewProblem(grid="JS-A1-V01-G02", category="random_piling", title="x"),
            NOW + timedelta(days=10),
        )
        other_cat = service.submit(
            app,
            NewProblem(grid="JS-A1-V01-G03", category="sanitation", title="x"),
            NOW + timedelta(days=10),
        )
        much_later = service.submit(app, PILE, NOW + timedelta(days=45))
        assert views.show(app, again)["recurrence_of"] == first
        assert views.show(app, other_grid)["recurrence_of"] is None
        assert views.show(app, other_cat)["recurrence_of"] is None
        assert views.show(app, much_later)["recurrence_of"] is None


class TestSteps:
    def test_the_whole_loop(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        step(app, ref, "fix", "yantou.g3", NOW + minutes(60), note="已清运")
        step(app, ref, "verify", "yantou.lead", NOW + minutes(120), note="核查通过")
        step(app, ref, "close", "duban.wang", NOW + minutes(130))
        t = views.show(app, ref)
        assert t["state"] == "closed" and t["due_at"] is None
        assert t["closed_at"] == "2026-04-01T11:10:00+08:00"
        assert events_of(app, ref) == [
            ("submit", "reported", "assigned"),
            ("fix", "assigned", "fixed"),
            ("verify", "fixed", "verified"),
            ("close", "verified", "closed"),
        ]
        assert [e["by"] for e in t["events"]][1:] == ["yantou.g3", "yantou.lead", "duban.wang"]

    def test_a_step_from_the_wrong_state_says_what_is_allowed(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(Conflict, match="'verify' may run only from: fixed"):
            step(app, ref, "verify", "yantou.lead", NOW + minutes(10))
        with pytest.raises(Conflict, match="may run only from: verified"):
            step(app, ref, "close", "yantou.lead", NOW + minutes(10))

    def test_the_fixer_never_verifies_even_as_an_ancestor_leader(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        # a leader above may fix
        step(app, ref, "fix", "yantou.lead", NOW + minutes(30), note="村里直接处理")
        with pytest.raises(NotPermitted, match="fixed EP-2026-000001 and so may not verify"):
            step(app, ref, "verify", "yantou.lead", NOW + minutes(40))
        with pytest.raises(NotPermitted, match="may not reject"):
            step(app, ref, "reject", "yantou.lead", NOW + minutes(40), reason="x")
        step(app, ref, "verify", "area1.lead", NOW + minutes(50))

    def test_outsiders_may_not_act(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(NotPermitted, match=r"caoyuan\.lead may not fix"):
            step(app, ref, "fix", "caoyuan.lead", NOW + minutes(10), note="x")
        with pytest.raises(NotPermitted, match=r"yantou\.g2 may not fix"):
            step(app, ref, "fix", "yantou.g2", NOW + minutes(10), note="x")  # a sibling grid
        with pytest.raises(NotFound, match="unknown person 'ghost'"):
            step(app, ref, "fix", "ghost", NOW + minutes(10), note="x")
        assert events_of(app, ref) == [("submit", "reported", "assigned")]

    def test_requirements(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(Invalid, match="'fix' needs --note"):
            step(app, ref, "fix", "yantou.g3", NOW + minutes(10))
        step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="ok")
        with pytest.raises(Invalid, match="'reject' needs --reason"):
            step(app, ref, "reject", "yantou.lead", NOW + minutes(20), reason=" ")

    def test_reject_sends_back_for_rework_with_a_new_deadline(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        step(app, ref, "fix", "yantou.g3", NOW + minutes(60), note="清了一半")
        step(app, ref, "reject", "yantou.lead", NOW + minutes(120), reason="没有清理干净")
        t = views.show(app, ref)
        assert (t["state"], t["rework_count"]) == ("assigned", 1)
        assert t["due_at"] == "2026-04-02T11:00:00+08:00"  # 24 h from the rejection
        assert t["events"][-1]["note"] == "没有清理干净"
        with app.engine.connect() as conn:
            kinds = sorted(conn.execute(select(notifications.c.kind)).scalars())
        assert kinds == ["assignment", "rejection", "verification_request"]

    def test_dismiss_and_reopen(self, app: App) -> None:
        dup = service.submit(app, PILE, NOW)
        step(app, dup, "dismiss", "yantou.lead", NOW + minutes(5), reason="重复上报")
        assert views.show(app, dup)["state"] == "dismissed"
        with pytest.raises(Conflict):
            step(app, dup, "fix", "yantou.g3", NOW + minutes(10), note="x")
        ref = service.submit(app, PILE, NOW)
        step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="x")
        step(app, ref, "verify", "yantou.lead", NOW + minutes(20))
        step(app, ref, "close", "yantou.lead", NOW + minutes(30))
        step(app, ref, "reopen", "yantou.lead", NOW + minutes(60), reason="垃圾又回来了")
        t = views.show(app, ref)
        assert (t["state"], t["closed_at"]) == ("assigned", None)

    def test_reassign_moves_the_ticket_to_the_right_grid(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        step(app, ref, "reassign", "yantou.lead", NOW + minutes(10), to_grid="JS-A1-V02-G01")
        t = views.show(app, ref)
        assert (t["grid"], t["assignee"]) == ("JS-A1-V02-G01", "caoyuan.g1")
        with pytest.raises(Invalid, match="unknown grid"):
            step(app, ref, "reassign", "duban.wang", NOW + minutes(20), to_grid="NOPE")
        # the old leader has no say any more
        with pytest.raises(NotPermitted):
            step(app, ref, "fix", "yantou.g3", NOW + minutes(30), note="x")

    def test_back_filled_steps_keep_history_in_order(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(Invalid, match="before the ticket's last change"):
            service.run_step(
                app,
                ref,
                "fix",
                "yantou.g3",
                StepInput(note="x"),
                NOW + timedelta(hours=2),
                at=NOW - timedelta(hours=1),
            )
        service.run_step(
            app,
            ref,
            "fix",
            "yantou.g3",
            StepInput(note="x"),
            NOW + timedelta(hours=2),
            at=NOW + timedelta(hours=1),
        )
        assert views.show(app, ref)["events"][-1]["at"] == "2026-04-01T10:00:00+08:00"

    def test_concurrent_steps_one_wins_the_other_gets_a_clear_error(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="x")
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def act(name: str, by: str, **given: object) -> None:
            barrier.wait()
            try:
                step(app, ref, name, by, NOW + minutes(20), **given)
                outcomes.append("ok")
            except (Conflict, NotPermitted) as exc:
                outcomes.append(type(exc).__name__)

        threads = [
            threading.Thread(target=act, args=("verify", "yantou.lead")),
            threading.Thread(target=act, args=("reject", "duban.wang"), kwargs={"reason": "r"}),
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(outcomes) == ["Conflict", "ok"]
        assert len(events_of(app, ref)) == 3


class TestReading:
    def test_inbox_soonest_first_and_subtree(self, app: App) -> None:
        parking = service.submit(
            app, NewProblem(grid="JS-A1-V01-G01", category="random_parking", title="p"), NOW
        )
        pile = service.submit(app, PILE, NOW)
        elsewhere = service.submit(
            app, NewProblem(grid="JS-A1-V02", category="random_piling", title="c"), NOW
        )
        assert [t["ref"] for t in views.inbox(app, "yantou.lead")] == [parking, pile]
        assert [t["ref"] for t in views.inbox(app, "yantou.g3")] == [pile]
        assert elsewhere in [t["ref"] for t in views.inbox(app, "area1.lead")]
        step(app, pile, "fix", "yantou.g3", NOW + minutes(10), note="x")
        # the fixer's own inbox drops it; the village leader now has it to verify
        assert views.inbox(app, "yantou.g3") == []
        assert pile in [t["ref"] for t in views.inbox(app, "yantou.lead")]

    def test_list_by_grid_subtree_and_state(self, app: App) -> None:
        a = service.submit(app, PILE, NOW)
        b = service.submit(app, NewProblem(grid="JS-A1-V02", category="road", title="r"), NOW)
        c = service.submit(app, NewProblem(grid="JS-E01", category="other", title="o"), NOW)
        assert [t["ref"] for t in views.list_tickets(app, grid="JS-A1")] == [a, b]
        assert [t["ref"] for t in views.list_tickets(app, grid="JS-A1-V01")] == [a]
        assert len(views.list_tickets(app, grid="JS")) == 3
        assert [t["ref"] for t in views.list_tickets(app, states=["assigned"], grid="JS-E01")] == [
            c
        ]
        with pytest.raises(Invalid, match="unknown state"):
            views.list_tickets(app, states=["open"])


class TestStorage:
    def test_insert_ignoring_duplicates_counts_new_rows_on_every_backend(self, app: App) -> None:
        from closeloop.db import insert_ignoring_duplicates

        def row(key: str) -> dict[str, object]:
            return {
                "channel": "file",
                "kind": "assignment",
                "locale": "zh_CN",
                "payload": {},
                "idempotency_key": key,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": NOW,
                "created_at": NOW,
            }

        with app.engine.begin() as conn:
            assert (
                insert_ignoring_duplicates(
                    conn, notifications, [row("a"), row("b")], "idempotency_key"
                )
                == 2
            )
            assert (
                insert_ignoring_duplicates(
                    conn, notifications, [row("b"), row("c"), row("a")], "idempotency_key"
                )
                == 1
            )
        assert count(app, notifications) == 3


class TestStaleReads:
    def test_a_step_that_met_a_concurrent_change_is_checked_again_and_runs(
        self, app: App, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ref = service.submit(app, PILE, NOW)
        real = service.save_ticket
        calls = []

        def stale_once(conn, t):  # type: ignore[no-untyped-def]
            calls.append(t.version)
            if len(calls) == 1:
                raise service.StaleTicket("ticket.changed", ref=t.ref)
            real(conn, t)

        monkeypatch.setattr(service, "save_ticket", stale_once)
        step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="x")
        assert len(calls) == 2
        assert events_of(app, ref)[-1] == ("fix", "assigned", "fixed")
        assert len(events_of(app, ref)) == 2

    def test_a_ticket_that_keeps_changing_gives_up_with_nothing_written(
        self, app: App, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ref = service.submit(app, PILE, NOW)

        def always_stale(conn, t):  # type: ignore[no-untyped-def]
            raise service.StaleTicket("ticket.changed", ref=t.ref)

        monkeypatch.setattr(service, "save_ticket", always_stale)
        with pytest.raises(Conflict, match="changed by someone else"):
            step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="x")
        assert events_of(app, ref) == [("submit", "reported", "assigned")]
