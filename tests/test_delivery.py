"""The deliverer end to end: outbox rows written by real steps, sent to real SMTP and HTTP servers.

Nothing is mocked: mail is parsed back from what aiosmtpd received, webhook bodies and
signatures from what the HTTP server saw. Retries advance `now` past `next_attempt_at`; no test
sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from closeloop import delivery, scheduler, service, views
from closeloop.app import App
from closeloop.delivery import DeliveryReport, Policy, deliver_due
from closeloop.models import notifications
from closeloop.tickets import Conflict, NotFound, StepInput
from notifiers.email import message_id_for
from notifiers.webhook import WebhookChannel
from tests.conftest import NOW
from tests.notify_support import (  # noqa: F401  (fixtures)
    Mailbox,
    Receiver,
    add_notices,
    free_port,
    napp,
    no_smtp_login,
    receiver,
    set_person,
    smtp,
    statuses,
    walk_the_loop,
    with_notifiers,
)

PILE = service.NewProblem(
    grid="JS-A1-V01-G03",
    category="random_piling",
    title="村口河边堆放建筑垃圾",
    description="约两车建筑垃圾堆在河堤边",
    address="堰头村村口桥东",
    reporter="李大伯",
    reporter_email="li.dabo@example.org",
)
SENDER = "金山经济开发区网格办 <grid@jinshan.example.org>"
Make = Callable[..., Receiver]


def outbox_rows(app: App, **where: Any) -> list[Any]:
    q = select(notifications).order_by(notifications.c.id)
    for column, value in where.items():
        q = q.where(notifications.c[column] == value)
    with app.engine.connect() as conn:
        return list(conn.execute(q))


def webhook_app(app: App, address: str, handle: str = "yantou.g3") -> App:
    set_person(app, handle, channels="webhook", webhook=address)
    return with_notifiers(app, webhook={"timeout": 2, "trust_env": False})


# --- real servers, real rows ------------------------------------------------------------------


@pytest.mark.usefixtures("no_smtp_login")
def test_email_from_a_real_ticket_to_a_real_smtp_server(
    napp: App,  # noqa: F811
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    box, port = smtp
    app = with_notifiers(
        napp,
        email={"host": "127.0.0.1", "port": port, "security": "none", "sender": SENDER},
        base_url="https://closeloop.example.org",
    )
    set_person(app, "yantou.g3", channels="email")
    ref = service.submit(app, PILE, NOW)
    service.run_step(
        app, ref, "fix", "yantou.g3", StepInput(note="已清运"), NOW + timedelta(hours=1)
    )
    service.run_step(app, ref, "verify", "yantou.lead", StepInput(), NOW + timedelta(hours=2))
    service.run_step(app, ref, "close", "yantou.lead", StepInput(), NOW + timedelta(hours=3))

    report = deliver_due(app, NOW + timedelta(hours=3))
    assert (report.sent, report.retried, report.dead) == (3, 0, 0)
    mails = {m.rcpt_tos[0]: m for m in box.received}
    assert set(mails) == {"yantou.g3@example.org", "li.dabo@example.org"}

    assignment = mails["yantou.g3@example.org"].parsed()
    [to] = assignment["To"].addresses
    assert (to.display_name, to.addr_spec) == ("王霞", "yantou.g3@example.org")
    assert assignment["Subject"] == f"【交办】{ref} 乱堆乱放：村口河边堆放建筑垃圾"
    [row] = outbox_rows(app, kind="assignment")
    assert assignment["Message-ID"] == message_id_for(row.idempotency_key, "jinshan.example.org")
    assert assignment.get_content_type() == "multipart/alternative"
    text = assignment.get_body(("plain",))
    html = assignment.get_body(("html",))
    assert text is not None and html is not None
    body = text.get_content()
    assert "王霞：" in body
    assert "金山经济开发区 / 第一农村工作片 / 堰头村 / 堰头村第3户组" in body
    assert f"https://closeloop.example.org/tickets/{ref}" in body
    assert "<!DOCTYPE html>" in html.get_content()
    assert "村口河边堆放建筑垃圾" in html.get_content()

    closure = mails["li.dabo@example.org"].parsed()
    assert closure["Subject"].startswith(f"【已销号】{ref}")
    assert closure["To"].addresses[0].display_name == "李大伯"
    assert "感谢您的反映" in closure.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    sent = {r.kind: r for r in outbox_rows(app)}
    assert sent["assignment"].status == sent["closure"].status == "sent"
    assert sent["assignment"].sent_at >= NOW + timedelta(hours=3)
    assert sent["verification_request"].channel == "file"  # yantou.lead uses the zone default
    record = json.loads(Path(app.settings.section("notifiers")["file"]["path"]).read_text())
    assert record["kind"] == "verification_request"
    assert record["subject"].startswith(f"【待核查】{ref}")


DT_SECRET = "SECdingtalk+/=secret"


@pytest.mark.parametrize(
    ("fmt", "reply"),
    [
        ("json", {"ok": True}),
        ("dingtalk", {"errcode": 0, "errmsg": "ok"}),
        ("wecom", {"errcode": 0, "errmsg": "ok"}),
        ("feishu", {"code": 0, "msg": "success"}),
    ],
)
def test_each_webhook_format_receives_the_notice(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    reply: dict[str, Any],
) -> None:
    hook = receiver()
    hook.answer(200, reply)
    monkeypatch.setenv("DT_SECRET", DT_SECRET)
    fragment = "#secret_env=DT_SECRET" if fmt == "dingtalk" else ""
    app = webhook_app(napp, f"{fmt}+{hook.base}/robot/send?access_token=tok{fragment}")
    ref = service.submit(app, PILE, NOW)

    report = deliver_due(app, NOW)
    assert report.sent == 1, report.errors
    [seen] = hook.seen
    [row] = outbox_rows(app, kind="assignment")
    assert seen.key == row.idempotency_key == f"assignment:{ref}:1:{row.recipient_id}:webhook"
    body = seen.json()
    if fmt == "json":
        assert body["kind"] == "assignment"
        assert body["ticket_ref"] == ref
        assert body["recipient_name"] == "王霞"
        assert body["idempotency_key"] == row.idempotency_key
        assert ref in body["subject"] and "堰头村第3户组" in body["text"]
    elif fmt == "dingtalk":
        assert body["msgtype"] == "markdown"
        assert ref in body["markdown"]["title"]
        assert "**编号**" in body["markdown"]["text"]
        query = seen.query()
        timestamp = query["timestamp"][0]
        expected = base64.b64encode(
            hmac.new(
                DT_SECRET.encode(), f"{timestamp}\n{DT_SECRET}".encode(), hashlib.sha256
            ).digest()
        ).decode()
        assert query["sign"] == [expected]
        assert query["access_token"] == ["tok"]
    elif fmt == "wecom":
        assert body["msgtype"] == "markdown"
        assert ref in body["markdown"]["content"]
    else:
        post = body["content"]["post"]["zh_cn"]
        assert ref in post["title"]
        assert any(item["text"].startswith("王霞") for line in post["content"] for item in line)
    assert outbox_rows(app, kind="assignment")[0].status == "sent"


# --- failures ---------------------------------------------------------------------------------


def test_a_server_down_then_up_gets_the_notice_once_after_retries(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
) -> None:
    port = free_port()  # nothing listens there yet
    app = webhook_app(napp, f"http://127.0.0.1:{port}/hook")
    service.submit(app, PILE, NOW)

    first = deliver_due(app, NOW, rng=random.Random(1))
    assert (first.sent, first.retried, first.dead) == (0, 1, 0)
    [row] = outbox_rows(app)
    assert (row.status, row.attempts, row.claimed_until) == ("pending", 1, None)
    assert "unreachable" in row.last_error
    wait = row.next_attempt_at - NOW
    assert timedelta(seconds=24) <= wait <= timedelta(seconds=37)  # 30 s ± 20 %

    assert deliver_due(app, NOW + timedelta(seconds=20)).claimed == 0  # not due yet
    retry_at = row.next_attempt_at
    second = deliver_due(app, retry_at, rng=random.Random(1))
    assert second.retried == 1
    [row] = outbox_rows(app)
    assert row.attempts == 2
    assert timedelta(seconds=48) <= row.next_attempt_at - retry_at <= timedelta(seconds=73)

    hook = receiver(port)  # the server comes up
    third = deliver_due(app, row.next_attempt_at)
    assert third.sent == 1
    assert hook.keys() == Counter({row.idempotency_key: 1})
    [row] = outbox_rows(app)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert deliver_due(app, row.next_attempt_at + timedelta(hours=1)).claimed == 0
    assert len(hook.seen) == 1


@pytest.mark.parametrize(
    ("fmt", "status", "reply", "reason"),
    [
        ("json", 400, b"bad token: no such hook", "HTTP 400: bad token: no such hook"),
        ("dingtalk", 200, {"errcode": 310000, "errmsg": "sign not match"}, "sign not match"),
    ],
)
def test_a_permanent_refusal_is_dead_at_once_with_the_reason(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
    fmt: str,
    status: int,
    reply: Any,
    reason: str,
) -> None:
    hook = receiver()
    hook.answer(status, reply)
    app = webhook_app(napp, f"{fmt}+{hook.base}/hook")
    ref = service.submit(app, PILE, NOW)
    report = deliver_due(app, NOW)
    assert (report.sent, report.retried, report.dead) == (0, 0, 1)
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == ("dead", 1)
    assert reason in row.last_error
    # Shown to supervisors: the board reads dead_notices.
    [dead] = delivery.dead_notices(app)
    assert dead == {
        "id": row.id,
        "ticket": ref,
        "recipient": "yantou.g3",
        "channel": "webhook",
        "kind": "assignment",
        "status": "dead",
        "attempts": 1,
        "last_error": row.last_error,
        "idempotency_key": row.idempotency_key,
        "created_at": "2026-04-01T09:00:00+08:00",
        "not_before": "2026-04-01T09:00:00+08:00",  # working time: at once
        "sent_at": None,
    }
    assert deliver_due(app, NOW + timedelta(days=1)).claimed == 0  # dead stays dead

    # The token is fixed; a supervisor puts the notice back.
    hook.answer(200, {"errcode": 0, "errmsg": "ok"})
    back = delivery.retry(app, row.id, NOW + timedelta(days=1))
    assert (back["status"], back["attempts"]) == ("pending", 1)
    assert deliver_due(app, NOW + timedelta(days=1)).sent == 1
    assert [r.status for r in outbox_rows(app)] == ["sent"]
    assert len(hook.seen) == 2
    with pytest.raises(Conflict, match="is sent; only a dead notice can be retried"):
        delivery.retry(app, row.id, NOW)
    with pytest.raises(NotFound):
        delivery.retry(app, 9999, NOW)


def test_retries_back_off_and_stop_at_max_attempts(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
) -> None:
    hook = receiver()
    hook.answer(503, b"busy")
    app = with_notifiers(
        webhook_app(napp, f"{hook.base}/hook"),
        delivery={"max_attempts": 4, "backoff_base_seconds": 60, "jitter": 0.0},
    )
    service.submit(app, PILE, NOW)
    now, waits = NOW, []
    for _ in range(4):
        # The pass held at `now`: on a busy machine real seconds would leak into the waits.
        report = deliver_due(app, now, elapsed=lambda: 0.0)
        assert report.claimed == 1
        [row] = outbox_rows(app)
        if row.status == "dead":
            break
        waits.append(round((row.next_attempt_at - now).total_seconds()))
        now = row.next_attempt_at
    assert waits == [60, 120, 240]
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == ("dead", 4)
    assert "HTTP 503: busy" in row.last_error
    assert len(hook.seen) == 4
    assert len(set(hook.keys())) == 1


def test_backoff_is_exponential_capped_jittered_and_deterministic_with_a_seed() -> None:
    policy = Policy()
    waits = [policy.backoff(n, random.Random(42)).total_seconds() for n in range(1, 10)]
    assert waits == [policy.backoff(n, random.Random(42)).total_seconds() for n in range(1, 10)]
    for n, wait in enumerate(waits, start=1):
        nominal = min(30 * 2 ** (n - 1), 3600)
        assert nominal * 0.8 <= wait <= nominal * 1.2
    assert waits[-1] <= 3600 * 1.2
    rng = random.Random(7)
    spread = {round(policy.backoff(1, rng).total_seconds(), 3) for _ in range(50)}
    assert len(spread) > 40  # notices failing together do not retry together


def test_a_channel_missing_from_config_is_dead_with_a_clear_error(napp: App) -> None:  # noqa: F811
    set_person(napp, "yantou.g3", channels="email")
    service.submit(napp, PILE, NOW)
    assert deliver_due(napp, NOW).dead == 1
    [row] = outbox_rows(napp)
    assert row.last_error == "channel 'email' is not configured in [notifiers]"


def test_a_missing_address_is_dead_with_a_clear_error(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
) -> None:
    app = webhook_app(napp, "")
    set_person(app, "yantou.g3", webhook=None)
    service.submit(app, PILE, NOW)
    assert deliver_due(app, NOW).dead == 1
    [row] = outbox_rows(app)
    assert row.last_error == "王霞 (yantou.g3) has no webhook address for the webhook channel"


# --- claims -----------------------------------------------------------------------------------


def test_a_live_claim_is_left_alone_and_an_expired_one_is_taken_over(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
) -> None:
    hook = receiver()
    app = webhook_app(napp, f"{hook.base}/hook")
    service.submit(app, PILE, NOW)
    lease = delivery.policy(app).lease
    with app.engine.begin() as conn:  # a deliverer claims, then dies without a word
        [claimed] = delivery.claim(conn, NOW, 10, lease)
    assert claimed.attempts == 1
    assert deliver_due(app, NOW + lease - timedelta(seconds=1)).claimed == 0
    assert hook.seen == []
    report = deliver_due(app, NOW + lease + timedelta(seconds=1))
    assert report.sent == 1
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == ("sent", 2)

    # The dead deliverer's outcome, should it ever be written, does not undo the send.
    late = DeliveryReport()
    delivery._mark(
        app,
        [delivery._Outcome(claimed, error="timed out", permanent=False)],
        Policy(),
        random.Random(0),
        NOW,
        late,
    )
    assert late.lost_claims == 1
    assert outbox_rows(app)[0].status == "sent"


def test_no_send_starts_once_the_claim_is_about_to_expire(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
) -> None:
    hook = receiver()
    app = with_notifiers(webhook_app(napp, f"{hook.base}/hook"), delivery={"lease_seconds": 20})
    service.submit(app, PILE, NOW)
    keys = add_notices(app, views.list_tickets(app)[0]["ref"], 5, handle="yantou.g3",
                       channel="webhook")  # fmt: skip
    ticks = iter(range(0, 10_000, 3))  # every look at the clock is 3 s later
    report = deliver_due(app, NOW, elapsed=lambda: float(next(ticks)))
    # The lease is 20 s and sends stop 10 s before it ends: the first sends went out, the rest
    # were given back untried (pending, the attempt not counted), never left to a lease.
    assert report.claimed == 6
    assert report.sent + report.unsent == 6
    assert 0 < report.sent < 6
    assert statuses(app) == Counter({"sent": report.sent, "pending": report.unsent})
    with app.engine.connect() as conn:
        tries = conn.execute(
            select(notifications.c.attempts).where(notifications.c.status == "pending")
        ).scalars()
        assert set(tries) == {0}
    again = deliver_due(app, NOW)
    assert again.sent == report.unsent
    assert statuses(app) == Counter({"sent": 6})
    assert sorted(hook.keys().values()) == [1] * 6
    assert set(keys) < set(hook.keys())


def test_each_send_is_marked_before_the_next_and_a_mark_after_a_take_over_is_refused(
    napp: App,  # noqa: F811
) -> None:
    app = with_notifiers(napp, delivery={"lease_seconds": 60})
    service.submit(app, PILE, NOW)
    add_notices(app, views.list_tickets(app)[0]["ref"], 3, handle="yantou.g3", channel="file")

    class Watching:
        """A channel that looks at the outbox at each send, and lets another deliverer take
        the third notice over (its claim expired and re-claimed) while that one is sent."""

        name = "file"

        def __init__(self) -> None:
            self.seen: list[Counter[str]] = []

        def send(self, message: Any) -> None:
            self.seen.append(statuses(app))
            if len(self.seen) == 3:
                with app.engine.begin() as conn:
                    [taken] = delivery.claim(conn, NOW + timedelta(minutes=2), 1, Policy().lease)
                assert taken.attempts == 2

    channel = Watching()
    report = deliver_due(app, NOW, channels={"file": channel}, elapsed=lambda: 0.0)
    # At each send, every send before it is marked, but the third: its claim was taken over.
    assert [c["sent"] for c in channel.seen] == [0, 1, 2, 2]
    assert (report.sent, report.lost_claims) == (3, 1)
    rows = outbox_rows(app)
    assert [(r.status, r.attempts) for r in rows].count(("sending", 2)) == 1
    sent = [r for r in rows if r.status == "sent"]
    assert {r.sent_at for r in sent} == {NOW}
    assert {(r.attempts, r.claimed_until, r.last_error) for r in sent} == {(1, None, None)}


# PostgreSQL only: the marks' connection commits with synchronous_commit off.
@pytest.mark.parametrize(
    "app", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_marks_connection_goes_back_to_the_pool_with_durable_commits(
    napp: App,  # noqa: F811
) -> None:
    assert napp.engine.dialect.name == "postgresql"
    service.submit(napp, PILE, NOW)
    assert deliver_due(napp, NOW).sent >= 1
    pool = napp.engine.pool
    held = [napp.engine.connect() for _ in range(pool.checkedin())]
    try:
        assert held
        assert {c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in held} == {"on"}
    finally:
        for c in held:
            c.close()


@pytest.mark.parametrize(
    "app", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_marks_connection_lost_mid_pass_ends_the_pass_with_its_error_and_is_not_pooled(
    napp: App,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    service.submit(napp, PILE, NOW)
    add_notices(napp, views.list_tickets(napp)[0]["ref"], 3, handle="yantou.g3", channel="file")
    sent: list[str] = []

    class Cutting:
        """Sends nothing; at the second send the server ends the marks' connection."""

        name = "file"

        def send(self, message: Any) -> None:
            sent.append(message.idempotency_key)
            if len(sent) == 2:
                with napp.engine.begin() as conn:
                    cut = conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND query LIKE 'UPDATE notifications SET status%%'"
                    ).all()
                assert len(cut) == 1

    # The mark's own error ends the pass, not the cleanup's ("the connection is lost").
    with pytest.raises(psycopg.errors.AdminShutdown):
        deliver_due(napp, NOW, channels={"file": Cutting()}, elapsed=lambda: 0.0)
    assert "marks connection dropped, not pooled" in caplog.text
    # The first send is marked; the second, sent and unmarked, waits for its lease with the rest.
    assert statuses(napp) == Counter({"sent": 1, "sending": 3})
    later = NOW + delivery.policy(napp).lease + timedelta(seconds=1)
    assert deliver_due(napp, later, channels={"file": Cutting()}).sent == 3
    assert sent[1] in sent[2:]  # the one in flight went again, the only one
    assert len(sent) == 5


@pytest.mark.parametrize("threads", [4])
def test_deliverers_in_threads_never_send_a_notice_twice(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
    threads: int,
) -> None:
    hook = receiver()
    app = webhook_app(napp, f"{hook.base}/hook")
    ref = service.submit(app, PILE, NOW)
    add_notices(app, ref, 150, handle="yantou.g3", channel="webhook")
    reports: list[DeliveryReport] = []
    start = threading.Barrier(threads)

    def work() -> None:
        channel = WebhookChannel(timeout=5, trust_env=False)
        start.wait()
        try:
            reports.append(deliver_due(app, NOW, batch=7, channels={"webhook": channel}))
        finally:
            channel.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    counts = hook.keys()
    assert len(counts) == 151
    assert set(counts.values()) == {1}
    assert sum(r.sent for r in reports) == 151
    assert sum(1 for r in reports if r.sent) > 1  # the work was shared
    assert statuses(app) == Counter({"sent": 151})


def test_the_scheduler_job_delivers_to_the_file(napp: App) -> None:  # noqa: F811
    walk_the_loop(napp)
    [job] = [j for j in scheduler.JOBS if j.id == "deliver"]
    result = scheduler.run_job(napp, job)
    assert result is not None and result["sent"] > 5
    path = Path(napp.settings.section("notifiers")["file"]["path"])
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == result["sent"]
    assert {line["kind"] for line in lines} >= {"assignment", "reminder", "supervision"}
    # The reporter's closure goes to email, which this zone has not configured: dead, visible.
    [dead] = delivery.dead_notices(napp)
    assert (dead["kind"], dead["recipient"]) == ("closure", "li.dabo@example.org")
