"""Commands for the month's concentrated campaign (一月一村大会战): record one, file a campaign
day's findings in bulk, show its progress per village and per action, list them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from closeloop.campaigns import service as campaigns
from closeloop.cli.common import get_app, now, parse_time, print_json
from closeloop.csvfile import read_file
from closeloop.db import read_only

campaign_app = typer.Typer(
    help="The month's concentrated campaign (一月一村大会战).", no_args_is_help=True
)


def _print(c: dict[str, Any]) -> None:
    when = c["date"] or c["month"]
    typer.echo(
        f"campaign {c['id']} {when} {c['theme']} ({', '.join(c['actions'])}): "
        + ", ".join(f"{code} {c['grid_names'][code]}" for code in c["grids"])
    )
    if c["focus"]:
        typer.echo(f"  重点 focus: {c['focus']}")
    for team in c["teams"]:
        typer.echo(f"  {team['name']}: " + ", ".join(m["name"] for m in team["members"]))
    typer.echo(f"  found {c['found']}, fixed {c['fixed']}, open {c['open']}")


@campaign_app.command("add")
def campaign_add(
    ctx: typer.Context,
    grid: list[str] = typer.Option(..., "--grid", help="Village grid code (repeat for more)."),
    theme: str = typer.Option(..., "--theme"),
    action: list[str] = typer.Option(
        ..., "--action", help="clean-up | rectification | demolition | construction (repeat)"
    ),
    day: str | None = typer.Option(None, "--date", help="The campaign day, e.g. 2026-04-22."),
    month: str | None = typer.Option(None, "--month", help="Month (default: from --date)."),
    team: list[str] = typer.Option(
        [], "--team", help="A team: NAME:HANDLE,HANDLE... (repeat for each team)."
    ),
    focus: str | None = typer.Option(None, "--focus", help="The month's focus (每月一重点)."),
    weekly_themes: list[str] = typer.Option(
        [],
        "--weekly-themes",
        help="A theme per week of the month, in order: repeat it, or separate with commas.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a campaign day on one or more villages; bad input is refused whole."""
    a = get_app(ctx)
    # Repeated (--weekly-themes 清理 --weekly-themes 拆除) or in one value: "清理,拆除".
    themes = [t for value in weekly_themes for t in re.split(r"[,，;；]", value)]
    t = now(ctx)
    c = campaigns.add_campaign(
        a,
        month=month,
        day=day,
        grid_codes=grid,
        theme=theme,
        actions=action,
        weekly_themes=themes,
        teams=team,
        focus=focus,
        now=t,
    )
    shown = campaigns.show_campaign(a, c.id, t)
    print_json(shown) if as_json else _print(shown)


@campaign_app.command("findings")
def campaign_findings(
    ctx: typer.Context,
    campaign_id: int = typer.Argument(...),
    file: Path = typer.Argument(..., help="CSV: grid,category,title[,description,address,lat,lon]"),
    by: str | None = typer.Option(None, "--by", help="Handle of who found them (the reporter)."),
    at: str | None = typer.Option(None, "--at", help="When they were found (ISO 8601)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """File a campaign day's findings in bulk, each a ticket tagged to the campaign; a bad line
    refuses the whole file."""
    a = get_app(ctx)
    refs = campaigns.file_findings(
        a, campaign_id, read_file(file), now(ctx), by=by, at=parse_time(at)
    )
    if as_json:
        print_json({"campaign": campaign_id, "refs": refs})
        return
    typer.echo(f"campaign {campaign_id}: {len(refs)} findings filed: {', '.join(refs)}")


@campaign_app.command("show")
def campaign_show(
    ctx: typer.Context,
    campaign_id: int = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A campaign: found, fixed and still open per village and per action."""
    c = campaigns.show_campaign(get_app(ctx), campaign_id, now(ctx))
    if as_json:
        print_json(c)
        return
    _print(c)
    for code, n in c["by_grid"].items():
        typer.echo(f"    {code} {c['grid_names'][code]}: {n['found']}/{n['fixed']}/{n['open']}")
    for action, n in c["by_action"].items():
        typer.echo(f"    {action}: {n['found']}/{n['fixed']}/{n['open']}")


@campaign_app.command("list")
def campaign_list(
    ctx: typer.Context,
    month: str | None = typer.Option(None, "--month", help="Only this month."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The campaigns with their progress: found, fixed, still open."""
    a = get_app(ctx)
    t = now(ctx)
    with read_only(a.engine) as conn:
        shown = [campaigns.describe(conn, a, c, t) for c in campaigns.list_campaigns(conn, month)]
    if as_json:
        print_json(shown)
        return
    if not shown:
        typer.echo("no campaign" + (f" in {month}" if month else ""))
    for c in shown:
        _print(c)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(campaign_app, name="campaign")
