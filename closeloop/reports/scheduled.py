"""The weekly report as a scheduled job (named in `scheduler.JOBS`): build the last full week's
report, render it to a file and queue a `weekly_report` notice for every supervisor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, func, select

from closeloop import outbox
from closeloop.app import App
from closeloop.models import notifications, people
from closeloop.reports.chat import summary_lines
from closeloop.reports.render import render_weekly
from closeloop.reports.settings import ReportSettings
from closeloop.reports.weekly import build_weekly, report_path


@dataclass(frozen=True)
class Sent:
    week: str
    file: Path
    url: str
    notices: int  # rows newly queued (0 when the week was already sent)

    def __str__(self) -> str:
        return f"weekly report {self.week}: {self.file}, {self.notices} notices queued"


def send_weekly_report(app: App, now: datetime) -> Sent:
    """Render the last full week's report to a file and queue a `weekly_report` notice for every
    supervisor; idempotent per week (key "weekly_report:<week>:<person id>")."""
    cfg = ReportSettings.from_config(app.settings.section("report"))
    report = build_weekly(app, now=now, settings=cfg)
    week = report.week.label
    path = report_path(app, week, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = render_weekly(report, "html", locale=app.settings.locale, workflow=app.workflow)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(content)
    tmp.replace(path)  # readers never see half a file
    url = f"{cfg.base_url.rstrip('/')}/{path.name}" if cfg.base_url else path.as_uri()
    defaults = app.settings.section("notifiers").get("default_channels", ["console"])
    with app.engine.begin() as conn:
        recipients = [
            pid
            for pid, roles in conn.execute(
                select(people.c.id, people.c.roles).order_by(people.c.id)
            )
            if cfg.recipients_role in (roles or "").split(",")
        ]
        before = _queued(conn, week)
        for pid in recipients:
            outbox.enqueue(
                conn,
                kind="weekly_report",
                recipient_id=pid,
                key=f"weekly_report:{week}:{pid}",
                now=now,
                default_channels=defaults,
                payload={
                    "week": week,
                    "file": str(path),
                    "url": url,
                    # what the chat robots post, within their message limits
                    "summary": summary_lines(report, app.settings.locale),
                },
            )
        # Counted rather than summed from enqueue(): its row count is -1 on PostgreSQL.
        queued = _queued(conn, week) - before
    return Sent(week, path, url, queued)


def _queued(conn: Connection, week: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(notifications)
            .where(notifications.c.idempotency_key.like(f"weekly_report:{week}:%"))
        ).scalar_one()
    )
