"""Commands of deadlines and supervision: scheduler, sweep, overdue, replay."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from closeloop import escalation, logs
from closeloop.cli.common import get_app, locale_of, now, parse_time, print_json


def scheduler(
    ctx: typer.Context,
    list_jobs: bool = typer.Option(False, "--list", help="Print the job table and exit."),
) -> None:
    """Run the periodic jobs (the sweep every minute, ...) in the foreground until Ctrl-C or
    SIGTERM; a running job finishes first. Jobs and their times come from [scheduler.jobs]."""
    from closeloop import scheduler as scheduler_mod

    a = get_app(ctx)
    if list_jobs:
        for job in scheduler_mod.describe(a):
            typer.echo(f"{job['id']:<16} {job['trigger']:<22} {job['target']}  ({job['help']})")
        return
    logs.setup(a.tz)
    raise typer.Exit(scheduler_mod.run_forever(a, echo=lambda s: typer.echo(s, err=True)))


def sweep(
    ctx: typer.Context,
    at: str | None = typer.Option(
        None, "--now", help="Sweep as at this time (ISO 8601 with offset); default: now."
    ),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Tickets per transaction."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run one sweep: reminders before deadlines, escalation after them (what the job runs)."""
    a = get_app(ctx)
    when = parse_time(at, "--now") or now(ctx)
    result = escalation.sweep(a, when, batch=batch)
    out = result.as_dict()
    if as_json:
        print_json(out)
        return
    typer.echo(
        f"sweep {_local(a, when)}: {out['tickets_checked']} tickets checked, "
        f"{out['reminders']} reminders, {out['escalations']} escalations"
    )


def _local(a: escalation.App, t: datetime) -> str:
    return t.astimezone(a.tz).isoformat(timespec="seconds")


def overdue(
    ctx: typer.Context,
    grid: str | None = typer.Option(None, "--grid", help="Only this grid and the grids below."),
    level: int | None = typer.Option(
        None, "--level", min=0, help="Only this escalation level (0 = not escalated yet)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every ticket past its deadline, most overdue first (督办): the supervisors' view."""
    a = get_app(ctx)
    items = escalation.overdue(a, now(ctx), grid=grid, level=level)
    if as_json:
        print_json(items)
        return
    for t in items:
        sup = f"{t['supervising_grid']}/{t['supervisor']}" if t["supervising_grid"] else "-"
        ext = " 延期" if t["extended"] else ""
        typer.echo(
            f"{t['ref']}  {t['state']:<8} 超时 {t['overdue_hours']:>7.1f}h  "
            f"级别 {t['escalation_level']}  督办 {sup:<28} 责任 {t['acting_grid']}/"
            f"{t['acting'] or '-'}  期限 {t['due_at']}{ext}  {t['title']}"
        )
    typer.echo(f"{len(items)} overdue")


def replay(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV of historical service requests."),
    scenario: Path = typer.Option(..., "--scenario", help="Scenario TOML (columns, policy)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress on stderr."),
    notices: bool = typer.Option(
        False, "--notices", help="Store the notices' rows too (they are counted either way)."
    ),
    through_engine: bool = typer.Option(
        False,
        "--through-engine",
        help="Run every step and sweep as its own transaction, as a live zone does (slower).",
    ),
) -> None:
    """Replay historical requests through a fresh database under a deadline policy and report
    what it would have produced (an in-memory SQLite database unless --db is given); the
    skipped rows are said in --lang."""
    from closeloop import replay as replay_mod

    state = ctx.find_root().obj

    def progress(line: str) -> None:
        if not quiet:
            typer.echo(line, err=True)

    summary = replay_mod.run(
        file,
        scenario,
        config_path=Path(state.config) if state.config else None,
        database_url=state.db,
        progress=progress,
        through_engine=through_engine,
        store_notices=notices,
        locale=locale_of(state),
    )
    if as_json:
        print_json(summary)
        return
    for line in replay_mod.describe(summary, locale_of(state)):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.command()(scheduler)
    app.command()(sweep)
    app.command()(overdue)
    app.command()(replay)
