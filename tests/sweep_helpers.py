"""Helpers shared by the escalation, extension, scheduler and sweep tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from closeloop import views
from closeloop.app import App
from closeloop.models import escalations, grids, notifications, people, tickets
from tests.cli_support import invoke
from tests.conftest import REPO

CLOSELOOP = str(Path(sys.executable).with_name("closeloop"))


def cli(app: App, *args: str) -> Any:
    """Run a command in-process on the test's App (its engine, so no connection is left
    behind); JSON output is parsed."""
    result = invoke(app, "--db", app.settings.database_url, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def rungs(app: App, ref: str | None = None) -> list[tuple[Any, ...]]:
    """(ref, stage_no, level, round, grid, supervisor, deadline) of every escalation row."""
    g, p = grids.alias("g"), people.alias("p")
    q = (
        select(
            tickets.c.ref,
            escalations.c.stage_no,
            escalations.c.level,
            escalations.c.round,
            g.c.code,
            p.c.handle,
            escalations.c.deadline,
        )
        .select_from(
            escalations.join(tickets, tickets.c.id == escalations.c.ticket_id)
            .join(g, g.c.id == escalations.c.grid_id)
            .outerjoin(p, p.c.id == escalations.c.supervisor_id)
        )
        .order_by(tickets.c.ref, escalations.c.deadline, escalations.c.level.desc())
    )
    if ref is not None:
        q = q.where(tickets.c.ref == ref)
    with app.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(q)]


def notices(app: App, kind: str | None = None) -> list[dict[str, Any]]:
    p = people.alias("p")
    q = (
        select(
            notifications.c.kind,
            p.c.handle,
            notifications.c.payload,
            notifications.c.idempotency_key,
            tickets.c.ref,
        )
        .select_from(
            notifications.outerjoin(p, p.c.id == notifications.c.recipient_id).outerjoin(
                tickets, tickets.c.id == notifications.c.ticket_id
            )
        )
        .order_by(notifications.c.id)
    )
    if kind is not None:
        q = q.where(notifications.c.kind == kind)
    with app.engine.connect() as conn:
        return [
            {"kind": k, "to": h, "payload": pl, "key": key, "ref": ref}
            for k, h, pl, key, ref in conn.execute(q)
        ]


def ticket_row(app: App, ref: str) -> Any:
    with app.engine.connect() as conn:
        return conn.execute(select(tickets).where(tickets.c.ref == ref)).one()


def show(app: App, ref: str) -> dict[str, Any]:
    return views.show(app, ref)


def minimal_config(folder: Path, database_url: str, jobs: dict[str, str] | None = None) -> Path:
    """A config file for subprocesses: the example zone's workflow and calendar, given jobs."""
    workflow = (REPO / "workflows" / "environmental.toml").resolve()
    lines = [
        "[zone]",
        'name = "test zone"',
        'timezone = "Asia/Shanghai"',
        "[database]",
        f'url = "{database_url}"',
        "[workflow]",
        f'file = "{workflow}"',
        "[storage]",
        f'evidence_dir = "{folder / "evidence"}"',
        "[calendar]",
        'timezone = "Asia/Shanghai"',
        'hours = ["08:30-12:00", "13:30-17:30"]',
        "[escalation]",
        "reminders = [0.5, 0.8]",
        "batch_size = 100",
        "[notifiers]",
        'default_channels = ["file"]',
        "[scheduler.jobs]",
        *(f'{k} = "{v}"' for k, v in (jobs or {}).items()),
    ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spawn(config: Path, *args: str, db: str | None = None) -> subprocess.Popen[str]:
    """Start `closeloop` in a new process (its own process group, output piped)."""
    cmd = [CLOSELOOP, "--config", str(config), *(["--db", db] if db else []), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def poll(check: Callable[[], bool], *, limit: float = 60.0, every: float = 0.02) -> bool:
    """Wait until `check()` holds, looking every `every` seconds, for at most `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def copy_sqlite(template: Path, dest: Path) -> str:
    shutil.copy(template, dest)
    return f"sqlite:///{dest}"


def local(t: datetime, app: App) -> str:
    return t.astimezone(app.tz).isoformat(timespec="seconds")
