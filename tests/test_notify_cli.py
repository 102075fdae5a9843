"""`closeloop deliver`, `outbox` and `notify` as scripts use them: real processes, both backends."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from closeloop import escalation, service
from closeloop.app import App
from closeloop.models import notifications
from tests.cli_support import config_copy, run_cli
from tests.conftest import NOW
from tests.notify_support import Walked, walk_the_loop

Run = Callable[..., subprocess.CompletedProcess[str]]

FIELDS = [
    "id",
    "ticket",
    "recipient",
    "channel",
    "kind",
    "status",
    "attempts",
    "last_error",
    "idempotency_key",
    "created_at",
    "not_before",
    "sent_at",
]


Setup = tuple[list[str], dict[str, str], Path]


def make_setup(app: App, tmp_path: Path) -> Setup:
    """A config copy whose file channel writes into the test's folder."""
    config = config_copy(tmp_path)
    notices = tmp_path / "notices.jsonl"
    text = config.read_text(encoding="utf-8")
    text = text.replace('path = "var/notices.jsonl"', f'path = "{notices}"')
    assert str(notices) in text
    config.write_text(text, encoding="utf-8")
    env = {**os.environ, "CLOSELOOP_DB": app.engine.url.render_as_string(hide_password=False)}
    return [sys.executable, "-m", "closeloop", "--config", str(config)], env, notices


def runner(setup: Setup) -> Run:
    command, env, _ = setup

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        # In this process (tests/cli_support.run_cli): the command's words after the interpreter
        # and `-m closeloop`; `deliver` until SIGTERM below runs as a real process.
        proc = run_cli([*command[3:], *args], env={"CLOSELOOP_DB": env["CLOSELOOP_DB"]})
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


@pytest.fixture
def setup(app: App, tmp_path: Path) -> Setup:
    return make_setup(app, tmp_path)


@pytest.fixture
def cli(setup: Setup) -> Run:
    """The command line on each backend."""
    return runner(setup)


@pytest.fixture
def sqlite_cli(sqlite_app: App, tmp_path: Path) -> Run:
    """The command line on SQLite, for what does not depend on the backend (previews: the
    contexts behind them are tested on both in test_notices.py)."""
    return runner(make_setup(sqlite_app, tmp_path))


@pytest.fixture
def walked(app: App) -> Walked:
    return walk_the_loop(app)


@pytest.fixture
def sqlite_walked(sqlite_app: App) -> Walked:
    return walk_the_loop(sqlite_app)


def expect_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr


def outbox(cli: Run, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(cli("outbox", "--json", "--limit", "500", *args).stdout)
    return rows


# --- preview ----------------------------------------------------------------------------------


def test_preview_every_kind_of_a_real_ticket(sqlite_cli: Run, sqlite_walked: Walked) -> None:
    cli, walked = sqlite_cli, sqlite_walked
    out = cli("notify", "preview", "assignment", "--ticket", walked.closed).stdout
    assert out.startswith(f"Subject: 【交办】{walked.closed} 乱堆乱放：村口河边堆放建筑垃圾\n")
    assert "王霞：" in out
    assert "金山经济开发区 / 第一农村工作片 / 堰头村 / 堰头村第3户组" in out
    assert "<" not in out

    html = cli("notify", "preview", "assignment", "--ticket", walked.closed, "--html").stdout
    assert "<!DOCTYPE html>" in html
    en = cli("notify", "preview", "assignment", "--ticket", walked.closed, "--locale", "en")
    assert en.stdout.startswith(f"Subject: [Assignment] {walked.closed} Random piling")

    rejection = cli("notify", "preview", "rejection", "--ticket", walked.closed).stdout
    assert "河堤下仍有碎砖，需返工" in rejection
    closure = cli("notify", "preview", "closure", "--ticket", walked.closed).stdout
    assert closure.startswith(f"Subject: 【已销号】{walked.closed}")
    assert "李大伯：" in closure

    supervision = cli("notify", "preview", "supervision", "--ticket", walked.late).stdout
    assert supervision.startswith(f"Subject: 【督办单】{walked.late} 曹园村")  # the newest one
    first = cli(
        "notify", "preview", "supervision", "--ticket", walked.late, "--to", "caoyuan.lead"
    ).stdout
    assert "谢燕超：" in first and "曹园村第2户组（负责人 梁涛磊" in first
    reminder = cli("notify", "preview", "reminder", "--ticket", walked.late).stdout
    # the newest reminder of a ticket that climbed the ladder is the one telling the late leader
    assert reminder.startswith(f"Subject: 【逾期提醒】{walked.late} 整改已超期")
    digest = cli("notify", "preview", "digest", "--ticket", walked.late, "--to", "caoyuan.lead")
    assert "【每日待办】" in digest.stdout and walked.late in digest.stdout
    verification = cli("notify", "preview", "verification_request", "--ticket", walked.closed)
    assert verification.stdout.startswith(f"Subject: 【待核查】{walked.closed}")


def test_preview_made_from_the_ticket_when_no_notice_was_written(
    sqlite_cli: Run, sqlite_app: App
) -> None:
    cli, app = sqlite_cli, sqlite_app
    ref = service.submit(
        app, service.NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="垃圾"), NOW
    )
    out = cli(
        "notify", "preview", "reminder", "--ticket", ref, "--now", "2026-04-01T21:00:00+08:00"
    )
    # 12 of 24 hours used at 21:00
    assert "时限已用去 50%，剩余 12小时" in out.stdout
    expect_error(
        cli("notify", "preview", "supervision", "--ticket", ref, ok=False), "never escalated"
    )
    expect_error(cli("notify", "preview", "rejection", "--ticket", ref, ok=False), "never rejected")


def test_preview_errors(sqlite_cli: Run, sqlite_walked: Walked) -> None:
    cli, walked = sqlite_cli, sqlite_walked
    expect_error(cli("notify", "preview", "assignment", "--ticket", "EP-1", ok=False), "no ticket")
    expect_error(
        cli("notify", "preview", "fanfare", "--ticket", walked.closed, ok=False),
        "unknown template 'fanfare'",
    )
    expect_error(
        cli("notify", "preview", "weekly_report", "--ticket", walked.closed, ok=False),
        "not about a ticket",
    )
    expect_error(
        cli("notify", "preview", "accountability", "--ticket", walked.closed, ok=False),
        "accountability notice is not about a ticket",
    )
    expect_error(
        cli("notify", "preview", "assignment", "--ticket", walked.closed, "--locale", "fr",
            ok=False),
        "unknown locale 'fr'",
    )  # fmt: skip
    expect_error(
        cli("notify", "preview", "assignment", "--ticket", walked.closed, "--to", "nobody",
            ok=False),
        "unknown person 'nobody'",
    )  # fmt: skip


# --- outbox and deliver -----------------------------------------------------------------------


def test_outbox_lists_delivers_and_retries(cli: Run, walked: Walked, setup: Setup) -> None:
    _, _, notices = setup
    rows = outbox(cli)
    assert rows and all(list(r) == FIELDS for r in rows)
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert {r["status"] for r in rows} == {"pending"}
    closed = outbox(cli, "--ticket", walked.closed)
    assert {r["ticket"] for r in closed} == {walked.closed}
    assert {r["kind"] for r in closed} == {
        "assignment",
        "verification_request",
        "rejection",
        "closure",
    }
    [reporter] = [r for r in closed if r["kind"] == "closure"]
    assert (reporter["recipient"], reporter["channel"]) == ("li.dabo@example.org", "email")
    [first] = outbox(cli, "--limit", "1")
    assert first == rows[0]
    assert first["created_at"].endswith("+08:00")

    done = cli("deliver", "--once")
    # Everything goes to the file, but the reporter's mail: this zone has no SMTP configured.
    assert done.stdout.strip() == f"notices: {len(rows) - 1} sent, 0 to retry, 1 dead"
    assert "channel 'email' is not configured" in done.stderr
    lines = notices.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(rows) - 1
    sent = outbox(cli, "--status", "sent")
    assert len(sent) == len(rows) - 1 and all(r["sent_at"] for r in sent)
    assert all(r["attempts"] == 1 and r["last_error"] is None for r in sent)

    [dead] = outbox(cli, "--status", "dead")
    assert dead["last_error"] == "channel 'email' is not configured in [notifiers]"
    text = cli("outbox", "--status", "dead").stdout
    assert "closure" in text and "channel 'email' is not configured" in text
    retried = cli("outbox", "retry", str(dead["id"]))
    assert retried.stdout.strip() == (
        f"notice {dead['id']} (closure to li.dabo@example.org) is pending again"
    )
    [again] = outbox(cli, "--status", "pending")
    assert (again["id"], again["attempts"]) == (dead["id"], 1)
    expect_error(
        cli("outbox", "retry", str(dead["id"]), ok=False),
        f"notice {dead['id']} is pending; only a dead notice can be retried",
    )
    expect_error(cli("outbox", "retry", "99999", ok=False), "no notice 99999")
    expect_error(cli("outbox", "--status", "lost", ok=False), "unknown status 'lost'")
    expect_error(cli("outbox", "--ticket", "EP-404", ok=False), "no ticket EP-404")


def test_deliver_runs_until_sigterm_and_finishes_its_batch(app: App, setup: Setup) -> None:
    command, env, notices = setup
    walk_the_loop(app)
    proc = subprocess.Popen(
        [*command, "deliver", "--batch", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not (notices.exists() and notices.read_text(encoding="utf-8").count("\n") >= 5):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the deliverer sent nothing"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM: finishing the batch in flight, then stopping" in err
    # A line per batch, in the scheduler's format: ISO 8601 in the zone's time, with its offset.
    batches = [line for line in err.splitlines() if "batch of " in line]
    line_start = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00 INFO closeloop\.delivery: batch of "
    assert batches and all(re.match(line_start + r"[123] in ", b) for b in batches), batches
    assert out.strip().splitlines()[-1].startswith("notices: ")
    with app.engine.connect() as conn:
        left = list(
            conn.execute(
                select(notifications.c.status).where(notifications.c.status == "sending")
            ).scalars()
        )
    assert left == []  # the batch in flight was finished and marked


def test_notify_digest(cli: Run, app: App) -> None:
    walk_the_loop(app)
    escalation.sweep(app, NOW + timedelta(hours=80))
    out = cli("notify", "digest", "--now", "2026-04-04T18:00:00+08:00").stdout
    assert (
        out.strip() == "digest period ending 2026-04-04 17:30: 4 digests, 0 held notices collected"
    )
    again = cli("notify", "digest", "--now", "2026-04-04T18:05:00+08:00", "--json").stdout
    assert json.loads(again) == {
        "period_end": "2026-04-04T17:30:00+08:00",
        "digests": 0,
        "collected": 0,
    }
    assert len(outbox(cli, "--status", "pending")) >= 4
