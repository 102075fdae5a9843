"""Commands for patrols (巡查): record one, show and list them, coverage of a month."""

from __future__ import annotations

from typing import Any

import typer

from closeloop.cli.common import fail, get_app, now, parse_time, print_json
from closeloop.patrols import service as patrols

patrol_app = typer.Typer(
    help="Leaders' patrols down to villages and grids (巡查到村到网格).", no_args_is_help=True
)


def _checkin(text: str) -> patrols.CheckIn:
    """CODE or CODE@LAT,LON."""
    code, _, where = text.partition("@")
    if not where:
        return patrols.CheckIn(code)
    try:
        lat, lon = (float(x) for x in where.split(","))
    except ValueError:
        fail("cli.checkin_coordinates", text=text)
    return patrols.CheckIn(code, lat, lon)


def _print(p: dict[str, Any]) -> None:
    visits = ", ".join(v["grid"] for v in p["visits"]) or "-"
    found = ", ".join(f["ref"] for f in p["found"]) or "-"
    typer.echo(f"patrol {p['id']} by {p['by']} at {p['started_at']}: grids {visits}; found {found}")
    if p["note"]:
        typer.echo(f"  {p['note']}")


@patrol_app.command("add")
def patrol_add(
    ctx: typer.Context,
    by: str = typer.Option(..., "--by", help="Handle of the person who patrolled."),
    at: str = typer.Option(..., "--at", help="When (ISO 8601 with offset)."),
    grid: list[str] = typer.Option(
        [], "--grid", help="A grid checked in at: CODE or CODE@LAT,LON (repeat)."
    ),
    note: str | None = typer.Option(None, "--note"),
    found: list[str] = typer.Option([], "--found", help="A ticket the patrol found (repeat)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a patrol that happened; bad input is refused whole."""
    when = parse_time(at)
    assert when is not None
    p = patrols.add_patrol(
        get_app(ctx),
        by=by,
        at=when,
        checkins=[_checkin(g) for g in grid],
        now=now(ctx),
        note=note,
        found=found,
    )
    print_json(p) if as_json else _print(p)


@patrol_app.command("show")
def patrol_show(
    ctx: typer.Context,
    patrol_id: int = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One patrol: its check-ins and the tickets it found."""
    p = patrols.show_patrol(get_app(ctx), patrol_id)
    print_json(p) if as_json else _print(p)


@patrol_app.command("list")
def patrol_list(
    ctx: typer.Context,
    month: str | None = typer.Option(None, "--month", help="YYYY-MM"),
    by: str | None = typer.Option(None, "--by", help="Only this person's patrols."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Patrols, oldest first."""
    rows = patrols.list_patrols(get_app(ctx), month=month, by=by)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no patrol")
    for p in rows:
        _print(p)


@patrol_app.command("coverage")
def patrol_coverage(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help="YYYY-MM"),
    level: int = typer.Option(3, "--level", help="Grid level listed (1-4; default 3, villages)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every grid of the level, visited or not: visits in the month (its own and below), by the
    level of the patrolling leader, and the last visit."""
    rows = patrols.month_coverage(get_app(ctx), month, level)
    if as_json:
        print_json(rows)
        return
    unvisited = sum(1 for r in rows if r["visits"] == 0)
    typer.echo(f"{month}: {len(rows) - unvisited} of {len(rows)} grids visited")
    for r in rows:
        by_level = " ".join(f"L{k}:{v}" for k, v in r["visits_by_level"].items() if v)
        last = r["last_visit_at"] or "未巡查 never"
        typer.echo(f"{r['grid']:<16} {r['name']}  {r['visits']}  {by_level}  {last}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(patrol_app, name="patrol")
