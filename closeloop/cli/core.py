"""Commands of the loop itself: init, grid, submit, ticket steps, inbox, tickets, demo."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from closeloop import feedback, service, views, zone
from closeloop.cli.common import fail, get_app, now, parse_time, print_json
from closeloop.geo import service as geo
from closeloop.tickets import StepInput

grid_app = typer.Typer(
    help="The four-level grid: import it from CSV, show it.", no_args_is_help=True
)
ticket_app = typer.Typer(
    help="One ticket: show it, or run a step of the loop on it.", no_args_is_help=True
)


def init(ctx: typer.Context) -> None:
    """Create or upgrade the database and load the zone from config. Safe to run twice."""
    a = get_app(ctx)
    result = zone.init(a, now(ctx))
    typer.echo(
        f"schema {result.revision}; zone {a.settings.zone_name}: "
        f"{result.grids.grids_created} grids created, {result.grids.grids_updated} updated; "
        f"{result.people_total} people"
        + (f"; geometry of {result.geometry} grids" if result.geometry else "")
    )


@grid_app.command("import")
def grid_import(ctx: typer.Context, file: Path = typer.Argument(..., help="CSV file")) -> None:
    """Import grids and their leaders from CSV; a bad file is refused whole."""
    a = get_app(ctx)
    summary = zone.import_grid_file(a, file, now(ctx))
    typer.echo(
        f"{file}: {summary.grids_created} grids created, {summary.grids_updated} updated; "
        f"{summary.people_created} people created, {summary.people_updated} updated"
    )


@grid_app.command("show")
def grid_show(
    ctx: typer.Context,
    code: str | None = typer.Argument(None, help="Grid code (default: the zone)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a grid, its leader, its place in the tree and the grids under it."""
    a = get_app(ctx)
    info = zone.describe(a, code)
    info["geometry"] = geo.geometry_of(a, info["code"])
    if as_json:
        print_json(info)
        return
    typer.echo(f"{info['code']}  {info['name']}  ({info['level_name']}, {info['kind']})")
    leader = info["leader"]
    if leader:
        typer.echo(
            f"  网格长 leader: {leader['name']} ({leader['handle']}) {leader['phone'] or ''}"
        )
    typer.echo("  上级 path: " + " / ".join(p["name"] for p in info["path"]))
    typer.echo(
        f"  下级 children: {len(info['children'])}; 全部下级 subtree: {info['subtree_size']}"
    )
    for child in info["children"]:
        lead = child["leader"] or "-"
        typer.echo(f"    {child['code']:<16} {child['name']}  [{lead}]")


def submit(
    ctx: typer.Context,
    grid: str | None = typer.Option(
        None, "--grid", help="Code of the grid where the problem is (default: from --lat --lon)."
    ),
    category: str = typer.Option(..., "--category", help="Category key, e.g. random_piling."),
    title: str = typer.Option(..., "--title"),
    description: str = typer.Option("", "--description"),
    address: str | None = typer.Option(None, "--address"),
    lat: float | None = typer.Option(None, "--lat"),
    lon: float | None = typer.Option(None, "--lon"),
    reporter: str | None = typer.Option(None, "--reporter", help="Who reported it."),
    source: str = typer.Option(
        "public",
        "--source",
        help="Where it came from (案件来源): " + ", ".join(service.SOURCES) + ".",
    ),
    urgent: bool = typer.Option(
        False, "--urgent", help="Urgent (紧急件): the category's urgent limits apply."
    ),
    at: str | None = typer.Option(None, "--at", help="When it was reported (ISO 8601)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Report a problem; it is assigned at once to the leader of its grid (即交即办).

    Without --grid, the grid is the deepest one containing --lat --lon."""
    a = get_app(ctx)
    if grid is None:
        if lat is None or lon is None:
            fail("cli.grid_or_point")
        grid = geo.route(a, lat, lon)
    problem = service.NewProblem(
        grid=grid,
        category=category,
        title=title,
        description=description,
        address=address,
        lat=lat,
        lon=lon,
        reporter=reporter,
        source=source,
        urgent=urgent,
    )
    ref = service.submit(a, problem, now(ctx), at=parse_time(at))
    _print_ticket(a, ref, as_json, brief=True)


def _print_ticket(a: Any, ref: str, as_json: bool, *, brief: bool = False) -> None:
    data = views.show(a, ref)
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"{data['ref']}  {data['state_name']} ({data['state']})  {data['category_name']}  "
        f"{data['title']}"
    )
    typer.echo(
        f"  网格 grid {data['grid']} {data['grid_name']}; 责任人 assignee "
        f"{data['assignee_name']} ({data['assignee']}); 期限 due {_short(data['due_at'])}"
    )
    urgent = f"; 紧急件 urgent since {_short(data['urgent_at'])}" if data["urgent"] else ""
    typer.echo(f"  来源 source {data['source']}{urgent}")
    if data["recurrence_of"]:
        typer.echo(f"  复发 recurrence of {data['recurrence_of']}")
    if brief:
        return
    typer.echo(
        f"  返工 rework {data['rework_count']}; 督办级别 escalation level "
        f"{data['escalation_level']}"
    )
    for e in data.get("escalations", []):
        closed = f", closed {_short(e['closed_at'])}" if e["closed_at"] else ""
        typer.echo(
            f"  督办 escalation: {e['stage']} missed {_short(e['deadline'])} → level {e['level']} "
            f"{e['grid']} ({e['supervisor'] or '-'}), round {e['round']}{closed}"
        )
    for x in data.get("extensions", []):
        typer.echo(
            f"  延期 extension: {x['status']} until {_short(x['until'])} asked by "
            f"{x['requested_by']} — {x['reason']}"
        )
    if data.get("deferred"):
        d = data["deferred"]
        typer.echo(f"  缓办 deferred by {d['by']}, review {_short(d['review_on'])} — {d['reason']}")
    for f in data.get("feedback", []):
        solved = "已解决 solved" if f["solved"] else "未解决 not solved"
        comment = f" — {f['comment']}" if f["comment"] else ""
        typer.echo(
            f"  回访 feedback {_short(f['at'])} ({f['channel']}{', ' + f['by'] if f['by'] else ''})"
            f": {solved}, {f['satisfaction']}{comment}"
        )
    typer.echo("  时间线 timeline:")
    for e in data["events"]:
        note = f"  — {e['note']}" if e["note"] else ""
        typer.echo(
            f"    {_short(e['at'])}  {e['step']:<10} {e['from'] or '-'} → {e['to']}  "
            f"[{e['by'] or '-'}]{note}"
        )


@ticket_app.command("show")
def ticket_show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Ticket reference, e.g. EP-2026-000001"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a ticket and its timeline."""
    _print_ticket(get_app(ctx), ref, as_json)


def _step_command(step: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        ref: str = typer.Argument(..., help="Ticket reference"),
        by: str = typer.Option(..., "--by", help="Handle of the person acting."),
        note: str | None = typer.Option(None, "--note"),
        reason: str | None = typer.Option(None, "--reason"),
        evidence: list[str] = typer.Option([], "--evidence", help="Photo or PDF; repeatable."),
        to_grid: str | None = typer.Option(None, "--to-grid", help="For reassign."),
        until: str | None = typer.Option(None, "--until", help="New deadline (extension)."),
        review_on: str | None = typer.Option(None, "--review-on", help="Review date (defer)."),
        at: str | None = typer.Option(None, "--at", help="When it happened (ISO 8601)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        a = get_app(ctx)
        given = StepInput(
            note=note,
            reason=reason,
            to_grid=to_grid,
            until=parse_time(until, "--until"),
            review_on=parse_time(review_on, "--review-on"),
            evidence=tuple(evidence),
        )
        service.run_step(a, ref, step.replace("-", "_"), by, given, now(ctx), at=parse_time(at))
        _print_ticket(a, ref, as_json, brief=not as_json)

    command.__doc__ = help_text
    ticket_app.command(step)(command)


STEP_HELP = {
    "fix": "Record the fix (整改) with a note and optional evidence.",
    "reject": "Send a fix back for rework (退回返工) with a reason.",
    "verify": "Confirm on site that the fix holds (核查); not by the fixer.",
    "close": "Tick the ticket off (销号) after verification.",
    "reopen": "Reopen a closed ticket: the problem is back.",
    "dismiss": "Dismiss a duplicate or invalid report, with a reason.",
    "reassign": "Move a misrouted ticket to another grid (--to-grid).",
    "mark_urgent": "Make the ticket urgent (紧急件) with a reason (supervisor); the stages "
    "that start from now on take the category's urgent limits.",
    "request_extension": "Ask for more time (申请延期) with --reason and --until.",
    "approve_extension": "Approve the pending extension request (supervisor).",
    "refuse_extension": "Refuse the pending extension request with a reason (supervisor).",
    "defer": "Park the ticket on the deferral register (缓办) with --reason and --review-on.",
    "resume": "Take a deferred ticket back into work; its clock restarts.",
}
for _step, _help in STEP_HELP.items():
    _step_command(_step.replace("_", "-") if "_" in _step else _step, _help)


@ticket_app.command("callback")
def ticket_callback(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Ticket reference"),
    by: str = typer.Option(..., "--by", help="Handle of the supervisor who called."),
    solved: str = typer.Option(..., "--solved", help="What the reporter said: yes or no."),
    satisfaction: str = typer.Option(
        ..., "--satisfaction", help="satisfied (满意), basic (基本满意) or dissatisfied (不满意)."
    ),
    comment: str = typer.Option("", "--comment"),
    at: str | None = typer.Option(None, "--at", help="When the call was made (ISO 8601)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a phone call-back (电话回访) to the reporter of a closed ticket (supervisor).

    An answer "not solved" reopens nothing: it lists the ticket in `closeloop ticket unsolved`."""
    if solved not in ("yes", "no"):
        fail("cli.solved", solved=solved)
    a = get_app(ctx)
    answer = feedback.Answer(solved == "yes", satisfaction, comment)
    feedback.phone_callback(a, ref, by, answer, now(ctx), at=parse_time(at))
    _print_ticket(a, ref, as_json)


@ticket_app.command("unsolved")
def ticket_unsolved(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """Closed tickets whose reporter said "not solved" (latest answer or call-back), not
    reopened since: for a supervisor to look at."""
    rows = feedback.unsolved(get_app(ctx))
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo('没有 none: no closed ticket was answered "not solved"')
    for r in rows:
        comment = f" — {r['comment']}" if r["comment"] else ""
        typer.echo(
            f"{r['ref']}  {r['grid']} {r['title']}  {_short(r['answered_at'])} "
            f"({r['channel']}, {r['satisfaction']}){comment}"
        )


def inbox(
    ctx: typer.Context,
    handle: str = typer.Argument(..., help="Handle of the grid leader"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What this leader must handle, soonest deadline first."""
    a = get_app(ctx)
    items = views.inbox(a, handle)
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo(f"{handle}: 没有待办 nothing to handle")
    _print_rows(a, items)


def tickets_list(
    ctx: typer.Context,
    state: list[str] = typer.Option([], "--state", help="Only these states; repeatable."),
    grid: str | None = typer.Option(None, "--grid", help="Only this grid and the grids below."),
    limit: int | None = typer.Option(None, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List tickets; --grid includes its whole subtree."""
    a = get_app(ctx)
    items = views.list_tickets(a, states=state, grid=grid, limit=limit)
    if as_json:
        print_json(items)
        return
    _print_rows(a, items)
    typer.echo(f"{len(items)} tickets")


def _print_rows(a: Any, items: list[dict[str, Any]]) -> None:
    current = a.now()
    for t in items:
        due = t["due_at"]
        left = ""
        if due:
            delta = datetime.fromisoformat(due) - current
            hours = delta.total_seconds() / 3600
            left = f"剩 {hours:.1f}h" if hours >= 0 else f"超时 {-hours:.1f}h"
        typer.echo(
            f"{t['ref']}  {t['state_name']:<5} {t['category_name']:<5} {t['grid']:<14} "
            f"{(t['assignee'] or '-'):<14} {_short(due):<16} {left}  {t['title']}"
        )


def _short(iso: str | None) -> str:
    """A time as people read it: the zone's wall clock to the minute (JSON keeps the offset)."""
    return iso[:16].replace("T", " ") if iso else "-"


def demo(
    ctx: typer.Context,
    fresh: bool = typer.Option(False, "--fresh", help="Start from an empty database."),
) -> None:
    """Walk a few problems of the example zone through the loop and print what leaders see."""
    from closeloop import demo as demo_mod

    a = get_app(ctx)
    if fresh and not a.settings.database_url.startswith("sqlite"):
        fail("cli.fresh_sqlite")
    demo_mod.run(a, now(ctx), fresh=fresh, echo=typer.echo)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(grid_app, name="grid")
    app.add_typer(ticket_app, name="ticket")
    app.command()(init)
    app.command()(submit)
    app.command()(inbox)
    app.command("tickets")(tickets_list)
    app.command()(demo)
