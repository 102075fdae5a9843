"""Commands for meetings (定期例会): record one with its agenda, decide, show, minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from closeloop.cli.common import get_app, now, parse_time, print_json
from closeloop.meetings import service as meetings

meeting_app = typer.Typer(
    help="Example, on-site, deployment and learning meetings; decisions become tickets.",
    no_args_is_help=True,
)


def _print(m: dict[str, Any]) -> None:
    names = ", ".join(a["name"] for a in m["attendees"])
    typer.echo(
        f"meeting {m['id']} {m['kind_name']} ({m['kind']}) {m['at']} at {m['place']['grid']} "
        f"{m['place']['name']}; week {m['week']}"
    )
    typer.echo(f"  参会 attendees: {names}")
    still = m["agenda"].get("open_decisions", [])
    if still:
        typer.echo("  上次未办结 still open from the last meeting:")
        for d in still:
            typer.echo(f"    {d['ref']} {d['title']} ({d['grid']}, {d['state']})")
    for d in m["decisions"]:
        typer.echo(
            f"  决定 decision {d['ref']} {d['title']} ({d['grid']}, due {d['due_at']}, "
            f"{d['state']})"
        )


@meeting_app.command("add")
def meeting_add(
    ctx: typer.Context,
    kind: str = typer.Option(..., "--kind", help="example | site | deployment | learning"),
    at: str = typer.Option(..., "--at", help="When (ISO 8601 with offset)."),
    place: str = typer.Option(..., "--place", help="Code of the grid where it is held."),
    attendee: list[str] = typer.Option([], "--attendee", help="Handle of an attendee (repeat)."),
    week: str | None = typer.Option(
        None, "--week", help="Weekly report the agenda is built from (default: the last full week)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a meeting; its agenda comes from the week's report and the previous meeting's
    decisions still open. Bad input is refused whole."""
    when = parse_time(at)
    assert when is not None
    m = meetings.add_meeting(
        get_app(ctx), kind=kind, at=when, place=place, attendees=attendee, now=now(ctx), week=week
    )
    print_json(m) if as_json else _print(m)


@meeting_app.command("decide")
def meeting_decide(
    ctx: typer.Context,
    meeting_id: int = typer.Argument(...),
    grid: str = typer.Option(..., "--grid", help="The grid that must do it."),
    title: str = typer.Option(..., "--title"),
    due: str = typer.Option(..., "--due", help="By when (ISO 8601 with offset)."),
    category: str | None = typer.Option(None, "--category", help="Category key (default other)."),
    description: str = typer.Option("", "--description"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a decision: a ticket (交办) on the grid, linked to the meeting."""
    when = parse_time(due, "--due")
    assert when is not None
    d = meetings.decide(
        get_app(ctx),
        meeting_id,
        grid=grid,
        title=title,
        due=when,
        now=now(ctx),
        category=category,
        description=description,
    )
    if as_json:
        print_json(d)
        return
    typer.echo(
        f"decision of meeting {meeting_id}: {d['ref']} {d['title']} → {d['grid']} "
        f"({d['assignee']}), due {d['due_at']}"
    )


@meeting_app.command("show")
def meeting_show(
    ctx: typer.Context,
    meeting_id: int = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A meeting: attendees, agenda, decisions with their tickets' current states."""
    m = meetings.show_meeting(get_app(ctx), meeting_id)
    print_json(m) if as_json else _print(m)


@meeting_app.command("list")
def meeting_list(
    ctx: typer.Context,
    kind: str | None = typer.Option(None, "--kind"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Meetings, oldest first."""
    rows = meetings.list_meetings(get_app(ctx), kind=kind)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no meeting")
    for m in rows:
        _print(m)


@meeting_app.command("minutes")
def meeting_minutes(
    ctx: typer.Context,
    meeting_id: int = typer.Argument(...),
    fmt: str = typer.Option("md", "--format", help="md | html"),
    locale: str | None = typer.Option(None, "--locale", help="zh_CN | en"),
    out: Path | None = typer.Option(None, "--out", help="Write to this file."),
    send: bool = typer.Option(False, "--send", help="Queue them for every attendee."),
) -> None:
    """The minutes as Markdown or HTML; --send queues them for the attendees (the outbox)."""
    a = get_app(ctx)
    text = meetings.minutes(a, meeting_id, fmt, locale)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    elif not send:
        typer.echo(text, nl=False)
    if send:
        n = meetings.send_minutes(a, meeting_id, now(ctx))
        typer.echo(f"minutes of meeting {meeting_id}: {n} notices queued")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(meeting_app, name="meeting")
