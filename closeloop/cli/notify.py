"""Commands of notices: deliver the outbox, list and repair it, preview a notice, make digests."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from typing import Any, NoReturn

import typer
from sqlalchemy import select

from closeloop import delivery, digest, logs
from closeloop.app import App
from closeloop.cli.common import Refused, fail, get_app, now, parse_time, print_json
from closeloop.db import read_only
from closeloop.errors import CodedError
from closeloop.models import escalations, notifications, people, ticket_events, tickets
from closeloop.notices import Notice, NoticeError
from closeloop.tickets import NotFound
from notifiers import KINDS

log = logging.getLogger("closeloop.deliver")

notify_app = typer.Typer(help="Notices: preview one, make the digests.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="The outbox: list notices (default), put a dead one back.",
    invoke_without_command=True,
)


def _refuse(exc: ValueError) -> NoReturn:
    """A bad [notifiers] setting: ours by its code; the notifiers package's own words framed."""
    fail(exc if isinstance(exc, CodedError) else Refused("config.notifiers", reason=str(exc)))


def _summary(report: delivery.DeliveryReport) -> str:
    out = f"{report.sent} sent, {report.retried} to retry, {report.dead} dead"
    if report.unsent or report.lost_claims:
        out += f", {report.unsent + report.lost_claims} left for a later pass"
    return out


def deliver(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="One pass over what is due, then exit."),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Notices per claim."),
) -> None:
    """Send the notices that are due (retries included). Without --once, keep looking every
    [notifiers.delivery] poll_seconds until SIGTERM or Ctrl-C; the batch in flight is finished."""
    a = get_app(ctx)
    try:
        delivery.policy(a)
        channels = delivery.make_channels(a)
    except ValueError as exc:
        _refuse(exc)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if not stopping.is_set():
            typer.echo(
                f"{signal.Signals(signum).name}: finishing the batch in flight, then stopping",
                err=True,
            )
        stopping.set()

    logs.setup(a.tz)  # a line per batch (closeloop.delivery), failures as warnings

    def on_pass(report: delivery.DeliveryReport) -> None:
        for error in report.errors:
            log.warning("failed: %s", error)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        total = delivery.run(
            a,
            once=once,
            batch=batch,
            should_stop=stopping.is_set,
            on_pass=on_pass,
            channels=channels,
            wait=stopping.wait,
        )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        delivery.close_channels(channels)
    typer.echo(f"notices: {_summary(total)}")


# --- outbox -----------------------------------------------------------------------------------


@outbox_app.callback()
def outbox(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, "--status", help="pending | sending | sent | dead | digested | cancelled"
    ),
    ticket: str | None = typer.Option(None, "--ticket", help="Only notices about this ticket."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List notices in the outbox, newest first (dead ones show their error)."""
    if ctx.invoked_subcommand is not None:
        return
    a = get_app(ctx)
    rows = delivery.list_outbox(a, status=status, ticket=ticket, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no notices")
        return
    for r in rows:
        when = (r["sent_at"] or r["created_at"])[:16].replace("T", " ")
        line = (
            f"{r['id']:>6} {r['status']:<9} {r['kind']:<20} {r['channel']:<8} "
            f"{r['recipient'] or '-':<16} {r['ticket'] or '-':<18} try {r['attempts']}  {when}"
        )
        typer.echo(line)
        if r["last_error"]:
            typer.echo(f"{'':>7}{r['last_error'][:200]}")


@outbox_app.command("retry")
def outbox_retry(
    ctx: typer.Context, notice_id: int = typer.Argument(..., help="Id of a dead notice.")
) -> None:
    """Put a dead notice back: pending, due now, attempts kept (one more try)."""
    a = get_app(ctx)
    row = delivery.retry(a, notice_id, now(ctx))
    typer.echo(f"notice {row['id']} ({row['kind']} to {row['recipient']}) is pending again")


# --- notify -----------------------------------------------------------------------------------


def _person(conn: Any, handle: str) -> Any:
    row = conn.execute(select(people).where(people.c.handle == handle)).first()
    if row is None:
        raise NotFound("person.unknown", handle=handle)
    return row


def _preview_notice(
    a: App, conn: Any, kind: str, t: Any, to: str | None, locale: str | None, at: datetime
) -> Notice:
    """The notice to preview: the newest outbox row of that kind about the ticket (for that
    person, when --to is given), else one made from the ticket as it is now."""
    if kind not in KINDS:
        raise NoticeError("notice.unknown_template", kind=kind, kinds=", ".join(KINDS))
    if kind == "weekly_report":
        raise NoticeError("notice.weekly_preview")
    if kind == "accountability":
        raise NoticeError("notice.case_preview")
    person = _person(conn, to) if to else None
    stored = (
        select(notifications)
        .where(notifications.c.ticket_id == t.id, notifications.c.kind == kind)
        .order_by(notifications.c.id.desc())
        .limit(1)
    )
    if person is not None:
        stored = stored.where(notifications.c.recipient_id == person.id)
    row = None if kind == "digest" else conn.execute(stored).first()
    if row is not None:
        n = Notice.from_row(row)
        return Notice(
            id=n.id,
            kind=n.kind,
            channel="console",
            locale=locale or n.locale,
            idempotency_key=n.idempotency_key,
            ticket_id=n.ticket_id,
            recipient_id=n.recipient_id,
            address=n.address,
            payload=n.payload,
        )
    recipient_id = person.id if person is not None else t.assignee_id
    address = None
    if kind == "closure" and person is None:
        recipient_id, address = None, t.reporter_email
    payload: dict[str, Any] = {}
    if kind == "rejection":
        event = conn.execute(
            select(ticket_events.c.note, ticket_events.c.data)
            .where(ticket_events.c.ticket_id == t.id, ticket_events.c.step == "reject")
            .order_by(ticket_events.c.id.desc())
            .limit(1)
        ).first()
        if event is None:
            raise NoticeError("notice.never_rejected", ref=t.ref)
        payload["reason"] = (event.data or {}).get("reason") or event.note or ""
    elif kind == "reminder":
        if t.due_at is None or t.stage_started_at is None:
            raise NoticeError("notice.no_deadline", ref=t.ref)
        span = (t.due_at - t.stage_started_at).total_seconds()
        used = (at - t.stage_started_at).total_seconds() / span if span > 0 else 1.0
        payload = {
            "stage_no": t.stage_no,
            "fraction": round(min(max(used, 0.0), 1.0), 2),
            "deadline": t.due_at.isoformat(),
        }
    elif kind == "supervision":
        esc = conn.execute(
            select(escalations.c.id)
            .where(escalations.c.ticket_id == t.id)
            .order_by(escalations.c.id.desc())
            .limit(1)
        ).scalar()
        if esc is None:
            raise NoticeError("notice.never_escalated", ref=t.ref)
        payload["escalation_id"] = esc
    elif kind == "digest":
        when = digest.schedule(a)
        start, end = when.period(at, a.tz) if when else (at - timedelta(days=1), at)
        until = when.following(end, a.tz) if when else at + timedelta(days=1)
        payload = {"since": start.isoformat(), "at": end.isoformat(), "until": until.isoformat()}
    if recipient_id is None and address is None:
        raise NoticeError("notice.nobody", ref=t.ref, kind=kind)
    if locale is None:
        locale = a.settings.locale
        if recipient_id is not None:
            locale = conn.execute(
                select(people.c.locale).where(people.c.id == recipient_id)
            ).scalar_one()
    return Notice(
        id=0,
        kind=kind,
        channel="console",
        locale=locale,
        idempotency_key=f"preview:{kind}:{t.ref}",
        ticket_id=t.id,
        recipient_id=recipient_id,
        address=address,
        payload=payload,
    )


@notify_app.command("preview")
def preview(
    ctx: typer.Context,
    template: str = typer.Argument(..., help="assignment, reminder, supervision, ..."),
    ticket: str = typer.Option(..., "--ticket", help="Reference of the ticket."),
    locale: str | None = typer.Option(None, "--locale", help="zh_CN or en."),
    to: str | None = typer.Option(None, "--to", help="Handle of the recipient."),
    html: bool = typer.Option(False, "--html", help="Print the HTML part instead of the text."),
    at: str | None = typer.Option(None, "--now", help="Render as at this time (ISO 8601)."),
) -> None:
    """Render a notice about a ticket to the terminal: its subject, then its text (or HTML)."""
    a = get_app(ctx)
    when = parse_time(at, "--now") or now(ctx)
    with read_only(a.engine) as conn:
        t = conn.execute(select(tickets).where(tickets.c.ref == ticket)).first()
        if t is None:
            raise NotFound("ticket.not_found", ref=ticket)
        notice = _preview_notice(a, conn, template, t, to, locale, when)
    message = delivery.preview_message(a, notice, when)
    typer.echo(f"Subject: {message.subject}\n")
    typer.echo(message.html if html else message.text)


@notify_app.command("digest")
def make_digests(
    ctx: typer.Context,
    at: str | None = typer.Option(None, "--now", help="As at this time (ISO 8601)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make the digests of the last complete digest period now (what the digest job does)."""
    a = get_app(ctx)
    when = parse_time(at, "--now") or now(ctx)
    try:
        report = digest.collect(a, when)
    except ValueError as exc:
        _refuse(exc)
    if as_json:
        print_json(report.as_dict())
        return
    if report.period_end is None:
        typer.echo("digests are off ([notifiers.digest] schedule)")
        return
    typer.echo(
        f"digest period ending {report.period_end.astimezone(a.tz):%Y-%m-%d %H:%M}: "
        f"{report.digests} digests, {report.collected} held notices collected"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(notify_app, name="notify")
    app.add_typer(outbox_app, name="outbox")
    app.command()(deliver)
