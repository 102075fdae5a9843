"""Digests: digest-mode people get one notice per period instead of one per event, leaders get
the daily list of what is open and due, and nothing is collected or sent twice."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from closeloop import digest, outbox, scheduler, service, views
from closeloop.app import App
from closeloop.db import read_only
from closeloop.delivery import deliver_due
from closeloop.exam import accountability
from closeloop.models import notifications, people, tickets
from closeloop.tickets import StepInput
from tests.conftest import NOW
from tests.notify_support import (  # noqa: F401  (fixtures)
    napp,
    person_id,
    set_person,
    statuses,
    walk_the_loop,
    with_notifiers,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIVE_THIRTY = datetime(2026, 4, 1, 17, 30, tzinfo=SHANGHAI)  # the first digest time after NOW
DAY_BEFORE = datetime(2026, 3, 31, 17, 30, tzinfo=SHANGHAI)


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def rows(app: App, **where: object) -> list[Any]:
    q = select(notifications).order_by(notifications.c.id)
    for column, value in where.items():
        q = q.where(notifications.c[column] == value)
    with app.engine.connect() as conn:
        return list(conn.execute(q))


def submit(app: App, grid: str, title: str, at: datetime = NOW) -> str:
    return service.submit(
        app, service.NewProblem(grid=grid, category="random_piling", title=title), at
    )


def file_records(app: App) -> list[dict[str, Any]]:
    path = Path(app.settings.section("notifiers")["file"]["path"])
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- when -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "now", "start", "end"),
    [
        ("daily 17:30", local(2026, 4, 1, 9, 0), local(2026, 3, 30, 17, 30), DAY_BEFORE),
        ("daily 17:30", local(2026, 4, 1, 17, 30), DAY_BEFORE, FIVE_THIRTY),
        ("daily 17:30", local(2026, 4, 1, 23, 59), DAY_BEFORE, FIVE_THIRTY),
        ("daily 0:00", local(2026, 1, 1, 0, 5), local(2025, 12, 31, 0, 0), local(2026, 1, 1, 0, 0)),
        ("every 4h", local(2026, 4, 1, 9, 0), local(2026, 4, 1, 4, 0), local(2026, 4, 1, 8, 0)),
        ("every 30m", local(2026, 4, 1, 9, 10), local(2026, 4, 1, 8, 30), local(2026, 4, 1, 9, 0)),
    ],
)  # fmt: skip
def test_the_period_is_the_last_complete_one(
    spec: str, now: datetime, start: datetime, end: datetime
) -> None:
    schedule = digest.parse_schedule(spec)
    assert schedule is not None
    assert schedule.period(now.astimezone(UTC), SHANGHAI) == (start, end)


@pytest.mark.parametrize("spec", ["daily 25:00", "daily 7", "every 0h", "every 30s", "hourly", 5])
def test_a_bad_schedule_is_refused(spec: object) -> None:
    with pytest.raises(ValueError, match="schedule"):
        digest.parse_schedule(spec)


def test_off_and_bad_scope(napp: App) -> None:  # noqa: F811
    assert digest.parse_schedule("off") is None
    assert digest.collect(with_notifiers(napp, digest={"schedule": "off"}), NOW).digests == 0
    with pytest.raises(ValueError, match="daily_digest = 'some'"):
        digest.collect(with_notifiers(napp, daily_digest="some"), NOW)


# --- digest mode ------------------------------------------------------------------------------


def test_digest_mode_holds_notices_and_sends_them_as_one(napp: App) -> None:  # noqa: F811
    app = with_notifiers(napp, daily_digest="digest_only")
    set_person(app, "yantou.g3", digest=True)
    refs = [submit(app, "JS-A1-V01-G03", f"河边垃圾堆 {i}") for i in range(3)]
    other = submit(app, "JS-A1-V01-G01", "路边杂物")
    g3 = person_id(app, "yantou.g3")

    # One by one, only the person who is not in digest mode hears of their ticket.
    report = deliver_due(app, NOW + timedelta(hours=1))
    assert report.sent == 1
    assert [r["ticket_ref"] for r in file_records(app)] == [other]
    held = rows(app, recipient_id=g3)
    assert [r.status for r in held] == ["pending"] * 3

    # Before the digest time nothing is collected (the last complete period ended yesterday,
    # before these notices existed); at 17:30 one digest takes all three.
    off = with_notifiers(app, daily_digest="off")  # a digest only to carry held notices
    early = digest.collect(off, FIVE_THIRTY - timedelta(minutes=1))
    assert (early.digests, early.collected) == (0, 0)
    done = digest.collect(app, FIVE_THIRTY + timedelta(minutes=2))
    assert (done.digests, done.collected, done.people) == (1, 3, ["yantou.g3"])
    assert [r.status for r in held if r.kind != "digest"] == ["pending"] * 3  # (stale copy)
    after = rows(app, recipient_id=g3)
    assert [r.status for r in after if r.kind == "assignment"] == ["digested"] * 3
    [row] = [r for r in after if r.kind == "digest"]
    assert row.idempotency_key == f"digest:yantou.g3:{FIVE_THIRTY.isoformat()}:file"
    assert row.payload["collected"] == [r.id for r in held]
    assert row.payload["since"] == DAY_BEFORE.isoformat()
    assert row.payload["at"] == FIVE_THIRTY.isoformat()
    assert row.payload["until"] == (FIVE_THIRTY + timedelta(days=1)).isoformat()

    # The same period again, even from another process, makes nothing new.
    assert digest.collect(app, FIVE_THIRTY + timedelta(hours=3)).digests == 0

    sent = deliver_due(app, FIVE_THIRTY + timedelta(minutes=3))
    assert sent.sent == 1
    record = file_records(app)[-1]
    assert record["kind"] == "digest"
    assert record["subject"] == "【每日待办】2026-04-01 在办 3 件"
    for ref in refs:
        assert ref in record["text"]
    assert other not in record["text"]  # not on this leader's grid
    assert statuses(app) == {"sent": 2, "digested": 3}

    # A notice after the digest time waits for the next one.
    late = submit(app, "JS-A1-V01-G03", "又见垃圾", FIVE_THIRTY + timedelta(hours=1))
    assert deliver_due(app, FIVE_THIRTY + timedelta(hours=2)).claimed == 0
    nxt = digest.collect(app, FIVE_THIRTY + timedelta(days=1))
    assert (nxt.digests, nxt.collected) == (1, 1)
    assert deliver_due(app, FIVE_THIRTY + timedelta(days=1)).sent == 1
    record = file_records(app)[-1]
    assert record["subject"] == "【每日待办】2026-04-02 在办 4 件，已超期 3 件"
    assert late in record["text"]


def test_a_weekly_report_is_never_held(napp: App) -> None:  # noqa: F811
    set_person(napp, "zone.lead", digest=True)
    with napp.engine.begin() as conn:
        outbox.enqueue(
            conn,
            kind="weekly_report",
            recipient_id=conn.execute(
                select(people.c.id).where(people.c.handle == "zone.lead")
            ).scalar_one(),
            key="weekly_report:2026-W14:zone.lead",
            now=NOW,
            default_channels=["file"],
            payload={"week": "2026-W14", "file": None, "url": "https://example.org/r/2026-W14"},
        )
    assert deliver_due(napp, NOW).sent == 1
    assert file_records(napp)[0]["kind"] == "weekly_report"


def test_an_accountability_notice_is_never_held(napp: App) -> None:  # noqa: F811
    set_person(napp, "zone.lead", digest=True)
    case = accountability.payload(
        event="opened", case_id=3, grid="JS-A1-V03", grid_name="东河村", month="2026-03",
        due_on="2026-05-02", owner_name="王督查", basis="city", score="55.50", floor="60",
    )  # fmt: skip
    with napp.engine.begin() as conn:
        outbox.enqueue(
            conn,
            kind="accountability",
            recipient_id=conn.execute(
                select(people.c.id).where(people.c.handle == "zone.lead")
            ).scalar_one(),
            key=accountability.notice_key(3, "opened", "zone.lead"),
            now=NOW,
            default_channels=["file"],
            payload={**case, "role": "leader"},
        )
    # it is about no ticket: a digest could not list it, so it goes at once, alone
    assert digest.collect(napp, NOW + timedelta(days=1)).collected == 0
    assert deliver_due(napp, NOW).sent == 1
    [record] = file_records(napp)
    assert record["kind"] == "accountability"
    assert "55.50" in record["text"] and "市考核" in record["text"]


# --- the daily digest per leader --------------------------------------------------------------


def test_every_leader_with_something_open_gets_the_daily_digest(napp: App) -> None:  # noqa: F811
    w = walk_the_loop(napp)  # one closed ticket, one open (and late) in 曹园村
    assert digest.scope(napp) == "all"  # config.toml
    done = digest.collect(napp, local(2026, 4, 4, 17, 40))
    # The open ticket is on JS-A1-V02-G02: its leader and every leader above see it.
    assert sorted(done.people) == ["area1.lead", "caoyuan.g2", "caoyuan.lead", "zone.lead"]
    assert done.collected == 0
    deliver_due(napp, local(2026, 4, 4, 17, 41))
    digests = [r for r in file_records(napp) if r["kind"] == "digest"]
    assert len(digests) == 4
    for record in digests:
        assert w.late in record["text"]
        assert w.closed not in record["text"]
        assert "督办 2 级" in record["text"]  # escalated twice

    only = with_notifiers(napp, daily_digest="digest_only")
    assert digest.collect(only, local(2026, 4, 5, 17, 40)).digests == 0
    set_person(napp, "caoyuan.g2", digest=True)
    assert digest.collect(only, local(2026, 4, 5, 17, 40)).people == ["caoyuan.g2"]
    off = with_notifiers(napp, daily_digest="off")
    # Off: a digest only to carry held notices, and caoyuan.g2 has none pending.
    assert digest.collect(off, local(2026, 4, 6, 17, 40)).digests == 0


def test_the_digest_lists_what_the_inbox_shows(napp: App) -> None:  # noqa: F811
    walk_the_loop(napp)
    submit(napp, "JS-A1-V01-G02", "路口堆土")
    fixed = submit(napp, "JS-A1-V01-G04", "沟渠垃圾")
    service.run_step(
        napp, fixed, "fix", "yantou.g4", StepInput(note="已清"), NOW + timedelta(hours=1)
    )
    handles = [
        "zone.lead", "area1.lead", "yantou.lead", "yantou.g2", "yantou.g4",
        "caoyuan.lead", "caoyuan.g2", "duban.wang", "admin", "yantou.g1",
    ]  # fmt: skip
    with read_only(napp.engine) as conn:
        for handle in handles:
            pid = conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar_one()
            ids = digest.open_ticket_ids_for(conn, pid)
            refs = conn.execute(select(tickets.c.ref).where(tickets.c.id.in_(ids))).scalars()
            assert sorted(refs) == sorted(t["ref"] for t in views.inbox(napp, handle)), handle


def test_collectors_at_once_write_one_digest_each(napp: App) -> None:  # noqa: F811
    set_person(napp, "yantou.g3", digest=True)
    for i in range(5):
        submit(napp, "JS-A1-V01-G03", f"垃圾 {i}")
    reports: list[digest.DigestReport] = []
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        reports.append(digest.collect(napp, FIVE_THIRTY + timedelta(minutes=1)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.collected for r in reports) == 5
    per_person = [h for r in reports for h in r.people]
    assert sorted(per_person) == sorted(set(per_person))  # nobody twice
    assert len(rows(napp, kind="digest")) == len(per_person)
    assert statuses(napp)["digested"] == 5


def test_the_scheduler_runs_the_digest_job(napp: App) -> None:  # noqa: F811
    walk_the_loop(napp)
    [job] = [j for j in scheduler.JOBS if j.id == "digest"]
    result = scheduler.run_job(napp, job, now=lambda: local(2026, 4, 4, 18, 0).astimezone(UTC))
    assert result == {
        "period_end": local(2026, 4, 4, 17, 30).isoformat(),
        "digests": 4,
        "collected": 0,
    }
