"""Commands for 一村一月大整治: plan the month's records, show, add items, tick them off."""

from __future__ import annotations

from typing import Any

import typer

from closeloop.campaigns import rectification
from closeloop.cli.common import get_app, now, print_json

rectify_app = typer.Typer(
    help="Every village, every month: a record ticked off to zero (一村一月大整治).",
    no_args_is_help=True,
)


def _print(r: dict[str, Any]) -> None:
    focus = f"  重点 focus: {r['focus']}" if r["focus"] else ""
    typer.echo(
        f"{r['grid']} {r['name']} {r['month']}: {r['done']} of {r['total']} done, "
        f"{r['remaining']} remaining{focus}"
    )
    for i in r.get("items", []):
        mark = "x" if i["done"] else " "
        typer.echo(f"  [{mark}] {i['id']:>5} {i['source']:<8} {i['title']}")


@rectify_app.command("plan")
def rectify_plan(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help="YYYY-MM"),
    level: int | None = typer.Option(
        None, "--level", help="Every grid of this level (default: every village)."
    ),
    focus: str | None = typer.Option(None, "--focus", help="The month's focus."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Open the month's record for every village with its items: open tickets and recurrence
    hot spots. Safe twice: only what is new is added."""
    done = rectification.plan(get_app(ctx), month, now(ctx), level=level, focus=focus)
    if as_json:
        print_json(done)
        return
    typer.echo(
        f"{month}: {done['records_created']} records opened, {done['items_created']} items added"
    )


@rectify_app.command("list")
def rectify_list(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help="YYYY-MM"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every record of the month: items done and remaining."""
    rows = rectification.list_month(get_app(ctx), month)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"no rectification in {month}")
    for r in rows:
        _print(r)


@rectify_app.command("show")
def rectify_show(
    ctx: typer.Context,
    grid: str = typer.Argument(...),
    month: str = typer.Option(..., "--month", help="YYYY-MM"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A village's record with its items."""
    r = rectification.show(get_app(ctx), grid, month)
    print_json(r) if as_json else _print(r)


@rectify_app.command("add")
def rectify_add(
    ctx: typer.Context,
    grid: str = typer.Argument(...),
    month: str = typer.Option(..., "--month", help="YYYY-MM"),
    item: list[str] = typer.Option([], "--item", help="An item the village adds (repeat)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add items of the village's own to its record."""
    r = rectification.add_items(get_app(ctx), grid, month, item, now(ctx))
    print_json(r) if as_json else _print(r)


@rectify_app.command("tick")
def rectify_tick(
    ctx: typer.Context,
    item_id: int = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="Who ticks it off."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Tick an item off (销号); a ticket's item is ticked off by closing the ticket."""
    r = rectification.tick(get_app(ctx), item_id, by, now(ctx))
    print_json(r) if as_json else _print(r)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(rectify_app, name="rectify")
